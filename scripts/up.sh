#!/usr/bin/env bash
# The main job on a fresh machine: set up, start the local Neo4j, bootstrap the schema, load the
# built-in domain graphs (medical, finance), train the models, create an API key and serve.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kgr up "$@"
