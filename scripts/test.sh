#!/usr/bin/env bash
# Install everything the tests need, run ruff and mypy, then the whole suite. Extra arguments go to pytest.
# System packages (strace for the I/O-error injection tests, chromium and chromium-driver for
# the web UI's browser tests, postgresql for the PostgreSQL store's tests) come from Debian's apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v strace >/dev/null 2>&1 || need+=(strace)
# headless Chromium and its driver for the web UI's browser tests (tests/ui/)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if ((${#need[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${need[*]} with apt-get" >&2
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[dev,postgres,server,s3,models]'

# Linters first: a finding fails the script before the (long) suite starts.
python3 -m ruff check .
python3 -m mypy

# A real PostgreSQL server for the PostgreSQL half of the contract and integration suites.
source scripts/postgres.sh
start_postgres
trap stop_postgres EXIT
python3 -m pytest --durations=30 "$@"
