#!/usr/bin/env bash
# Prepares a fresh machine for kgr: Java + Maven (for Neo4j), a virtual environment with kgr and
# its dependencies, and the Neo4j jars. Safe to run again; later runs only check.
# KGR_BENCH=1 also installs the benchmarks' extra (PyKEEN, for bench/encoder_vs_pykeen.py and
# bench/qa_custom.py); kgr itself and its tests do not need it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "[setup] installing OpenJDK 17 and Maven (Neo4j needs them)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven
  else sudo apt-get update -qq && sudo apt-get install -y -qq openjdk-17-jdk-headless maven; fi
fi

# Debian's chromium for the graph view's browser test (tests/integration/test_ui.py, driven by
# Playwright with executable_path: no browser download); without it that test skips.
if [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing chromium (the /ui browser test)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      || echo "[setup] chromium could not be installed: the /ui browser test will skip"
  elif command -v sudo >/dev/null; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      || echo "[setup] chromium could not be installed: the /ui browser test will skip"
  fi
fi

# cytoscape.js for /ui is committed in api/static/vendor/; rebuild it only if it is missing
if [ ! -f api/static/vendor/cytoscape.min.js ]; then
  bash scripts/build_ui.sh
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
extras=dev
if [ "${KGR_BENCH:-0}" = 1 ]; then extras=dev,bench; fi
# one stamp per set of extras: asking for the bench extra later installs it then
stamp=".venv/.kgr-installed-${extras/,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing kgr and its dependencies ($extras; torch is large: a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
echo "[setup] fetching the Neo4j jars (first time only)"
.venv/bin/kgr neo4j build
