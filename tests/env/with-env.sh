#!/usr/bin/env bash
# Runs a command with the test environment up: starts it when it is not running, runs the
# command, stops the environment again only if this script started it, and exits with the
# command's own status. tests/env/with-env.sh cargo test
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
started=0
if ! bash "$here/status.sh" >/dev/null 2>&1; then
  bash "$here/up.sh" || exit $?
  started=1
fi
"$@"
status=$?
if [ "$started" = 1 ]; then bash "$here/down.sh"; fi
exit "$status"
