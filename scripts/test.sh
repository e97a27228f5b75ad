#!/usr/bin/env bash
# The test suite, exactly as CI runs it: installs what is missing (tests/env/install.sh),
# checks formatting and lints, assembles the container image, starts the real test environment (a current Kubernetes
# control plane with kwok nodes, Prometheus, Alertmanager, moto) unless it is already up,
# runs every unit and integration test, and stops the environment again if it started it.
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

echo "== the container image (the static release build is the long part: ~15 min cold)"
bash scripts/image.sh

echo "== cargo test"
exec bash tests/env/with-env.sh \
  cargo test --locked --no-fail-fast -- --test-threads "${MORNINGCHECK_TEST_THREADS:-4}"
