#!/usr/bin/env bash
# Vendors the graph view's JavaScript library (cytoscape.js, pinned in ui/package.json and
# ui/package-lock.json) into api/static/vendor/, so that the page served at /ui loads nothing
# from a CDN. The result is committed; run this again only after changing the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null || { echo "[build_ui] npm is needed (apt-get install -y npm)" >&2; exit 1; }
npm ci --prefix ui --no-audit --no-fund --silent
vendor=api/static/vendor
mkdir -p "$vendor"
cp ui/node_modules/cytoscape/dist/cytoscape.min.js "$vendor/cytoscape.min.js"
cp ui/node_modules/cytoscape/LICENSE "$vendor/cytoscape.LICENSE"
version="$(node -p "require('./ui/node_modules/cytoscape/package.json').version")"
echo "cytoscape $version" > "$vendor/VERSION"
echo "[build_ui] vendored cytoscape $version into $vendor"
