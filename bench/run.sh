#!/usr/bin/env bash
# The benchmark of issue 10, in one command:
#
#   bench/run.sh [--sizes small|full] [harness options, see bench/harness.py --help]
#
# Builds morningcheck in release, installs the Python virtualenv of the baseline and the
# harness (${MORNINGCHECK_CACHE:-~/.cache/morningcheck}/bench-venv, pinned in
# bench/requirements.txt), makes sure the test environment is up (tests/env/up.sh,
# idempotent), then runs bench/harness.py niced. Results: bench/results/latest.json, the
# table on stdout, docs/benchmarks.png. A benchmark, not a test: CI never runs it.
#
# By default the benchmark gets an instance of the test environment of its own
# (tests/env/up.sh with MORNINGCHECK_TESTENV=$CACHE/bench-env and other ports), so that
# 50,000 planted pods never slow down the integration tests, and scripts/test.sh, which
# starts and stops the default instance, never breaks a measurement.
# It is left running (stop it with MORNINGCHECK_TESTENV=$CACHE/bench-env tests/env/down.sh).
# BENCH_SHARED_ENV=1 uses the shared instance (.testenv) instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
CACHE="${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}"
VENV="$CACHE/bench-venv"
log() { echo "[bench] $*" >&2; }

cd "$repo"
log "building morningcheck (release)"
nice -n 10 cargo build --release --locked

if ! "$VENV/bin/python" -c 'import requests, urllib3, kubernetes, boto3, matplotlib, psutil' 2>/dev/null \
   || ! cmp -s "$here/requirements.txt" "$VENV/.requirements.txt"; then
  log "creating the virtualenv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q --only-binary=:all: -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$VENV/.requirements.txt"
fi

[ -x /usr/bin/time ] || { log "installing GNU time"; apt-get install -y -q time >/dev/null; }
command -v curl >/dev/null || { log "installing curl"; apt-get install -y -q curl >/dev/null; }

if [ "${BENCH_SHARED_ENV:-0}" != 1 ]; then
  export MORNINGCHECK_TESTENV="$CACHE/bench-env"
  export ETCD_PORT=24790 API_PORT=17443 PROM_PORT=20090 PROM_AUTH_PORT=20091 NODE_EXPORTER_PORT=20100 MOTO_PORT=16000
fi
log "test environment ${MORNINGCHECK_TESTENV:-$repo/.testenv}"
bash tests/env/up.sh

exec nice -n 10 "$VENV/bin/python" "$here/harness.py" "$@"
