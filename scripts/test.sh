#!/usr/bin/env bash
# The test suite, exactly as CI runs it: installs what is missing, checks formatting and
# lints, starts the real test environment (etcd, kube-apiserver, Prometheus, moto), runs
# every unit and integration test, and stops the environment again.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-shot run gains nothing from incremental state, which would take gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
echo "== disk: $(df -h . | awk 'NR==2 {print $4 " free on " $6}')"

bash tests/env/install.sh
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

started=0
if ! bash tests/env/status.sh >/dev/null 2>&1; then
  bash tests/env/up.sh
  started=1
fi
stop() { [ "$started" = 1 ] && bash tests/env/down.sh; }
trap stop EXIT

echo "== cargo test"
cargo test --locked --no-fail-fast -- --test-threads "${MORNINGCHECK_TEST_THREADS:-4}"
