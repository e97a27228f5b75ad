#!/usr/bin/env bash
# Stops every process of the test environment (started in their own sessions by up.sh).
ENVDIR="${MORNINGCHECK_TESTENV:-$(cd "$(dirname "$0")/../.." && pwd)/.testenv}"
for f in "$ENVDIR"/pids/*; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
done
for _ in $(seq 1 50); do
  alive=0
  for f in "$ENVDIR"/pids/*; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break; sleep 0.2
done
for f in "$ENVDIR"/pids/*; do [ -f "$f" ] && { kill -KILL -- "-$(cat "$f")" 2>/dev/null; rm -f "$f"; }; done
rm -rf "$ENVDIR/etcd" "$ENVDIR/prom" "$ENVDIR/prom-auth" "$ENVDIR/alertmanager" "$ENVDIR/env"
echo "[env/down] stopped" >&2
exit 0
