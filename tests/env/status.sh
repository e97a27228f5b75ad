#!/usr/bin/env bash
# Exits 0 when every process of the test environment is alive.
ENVDIR="${MORNINGCHECK_TESTENV:-$(cd "$(dirname "$0")/../.." && pwd)/.testenv}"
ok=0
for f in "$ENVDIR"/pids/*; do
  [ -f "$f" ] || { ok=1; break; }
  if kill -0 "$(cat "$f")" 2>/dev/null; then echo "up   $(basename "$f")"; else echo "down $(basename "$f")"; ok=1; fi
done
exit $ok
