#!/usr/bin/env bash
# Restarts one process of the test environment with the same command line, for fault
# tests: tests/env/restart.sh kube-apiserver [seconds-down]
set -euo pipefail
ENVDIR="${MORNINGCHECK_TESTENV:-$(cd "$(dirname "$0")/../.." && pwd)/.testenv}"
name=$1
down=${2:-0}
pidfile="$ENVDIR/pids/$name"
pid=$(cat "$pidfile")
mapfile -d '' cmd <"/proc/$pid/cmdline"
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
sleep "$down"
setsid "${cmd[@]}" >>"$ENVDIR/logs/$name.log" 2>&1 </dev/null &
echo $! >"$pidfile"
