#!/usr/bin/env bash
# The operator's container image, assembled without a container engine.
#
# The image holds four files and the directories above them, nothing else (no shell, no
# libc, no package manager):
#   /usr/local/bin/morningcheck          the release binary, statically linked
#   /etc/ssl/certs/ca-certificates.crt   Debian's CA bundle, for Slack, Prometheus and AWS
#   /etc/passwd, /etc/group              the user and group nonroot, 65532
# It runs as 65532:65532 with the entrypoint `morningcheck controller`. Time-zone data is
# compiled into the binary.
#
#   scripts/image.sh               builds the binary and the image into target/image/:
#                                    oci/                       OCI image layout (`crane push` it)
#                                    morningcheck-VERSION.tar   the same image for `docker load`
#   scripts/image.sh --rootfs DIR  builds the binary and lays out the root file system in DIR
#                                  only: the Dockerfile's build stage uses it, so `docker
#                                  build` gives the same files.
#
# Assembling needs crane: $MORNINGCHECK_CRANE, else the one tests/env/build.sh builds. crane
# pushes to and pulls from a registry, so a throwaway in-memory one runs on loopback while
# the image is put together.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[image] $*" >&2; }

# The image's contract, in one place (the Dockerfile repeats USER, ENTRYPOINT and the
# labels; tests/image.rs checks that both agree).
IMAGE_USER=65532:65532
ENTRYPOINT=/usr/local/bin/morningcheck,controller
METRICS_PORT=8080
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
LABELS=(
  "org.opencontainers.image.title=morningcheck"
  "org.opencontainers.image.description=Kubernetes operator: the morning check of clusters, Prometheus and EC2, with one Slack digest"
  "org.opencontainers.image.licenses=Apache-2.0"
  "org.opencontainers.image.version=$VERSION"
)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# Builds the release binary, statically linked (glibc, +crt-static) so the image needs no
# libraries, and prints its path. `--target` keeps the static flag away from build scripts
# and proc macros, and the binary lands in target/<host triple>/release/.
build_binary() {
  local triple bin
  triple=$(rustc -vV | sed -n 's/^host: //p')
  log "cargo build --release --locked --target $triple (static, stripped)"
  CARGO_PROFILE_RELEASE_STRIP=symbols RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --bin morningcheck --target "$triple" >&2
  bin="${CARGO_TARGET_DIR:-target}/$triple/release/morningcheck"
  if LC_ALL=C readelf -l "$bin" | grep -q 'program interpreter'; then
    log "$bin is dynamically linked; the image has no libraries for it"
    exit 1
  fi
  echo "$bin"
}

# Lays out the root file system in $1 from the binary $2.
layout() {
  local root=$1 bin=$2
  [ -s "$CA_BUNDLE" ] || { log "$CA_BUNDLE missing (Debian's ca-certificates package)"; exit 1; }
  rm -rf "$root"
  install -d -m 0755 "$root" "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs" \
    "$root/usr" "$root/usr/local" "$root/usr/local/bin"
  install -m 0755 "$bin" "$root/usr/local/bin/morningcheck"
  install -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'nonroot:x:65532:\n' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

if [ "${1:-}" = --rootfs ]; then
  [ -n "${2:-}" ] || { log "usage: scripts/image.sh --rootfs DIR"; exit 64; }
  layout "$2" "$(build_binary)"
  exit 0
fi
[ $# -eq 0 ] || { log "usage: scripts/image.sh [--rootfs DIR]"; exit 64; }

crane=${MORNINGCHECK_CRANE:-}
if [ -z "$crane" ]; then
  # shellcheck source=tests/env/versions.sh
  source tests/env/versions.sh
  crane="$CRANE_DIR/crane"
  [ -x "$crane" ] || bash tests/env/build.sh crane
fi

t0=$(date +%s)
bin=$(build_binary)
log "binary built or up to date in $(($(date +%s) - t0)) s"

out=target/image
work="$out/.work"
rm -rf "$work" && mkdir -p "$work"
layout "$work/rootfs" "$bin"
# One layer; the same bytes for the same files: sorted names, owner root, time zero.
tar --create --file "$work/layer.tar" --directory "$work/rootfs" --format=gnu \
  --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 etc usr

"$crane" registry serve --address 127.0.0.1:0 2>"$work/registry.log" &
registry=$!
trap 'kill "$registry" 2>/dev/null || true; wait "$registry" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log")
  [ -n "$port" ] && break
  kill -0 "$registry" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { log "the local registry did not start"; cat "$work/registry.log" >&2; exit 1; }
ref="127.0.0.1:$port/morningcheck:$VERSION"

case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
label_args=()
for l in "${LABELS[@]}"; do label_args+=(--label "$l"); done
"$crane" append --oci-empty-base --new_layer "$work/layer.tar" --new_tag "$ref" >/dev/null 2>"$work/crane.log" ||
  { cat "$work/crane.log" >&2; exit 1; }
"$crane" mutate "$ref" --tag "$ref" --set-platform "linux/$arch" --user "$IMAGE_USER" \
  --entrypoint "$ENTRYPOINT" --workdir / --exposed-ports "$METRICS_PORT/tcp" "${label_args[@]}" \
  >/dev/null 2>"$work/crane.log" || { cat "$work/crane.log" >&2; exit 1; }

rm -rf "$out/oci" "$out"/morningcheck-*.tar
"$crane" pull --format oci "$ref" "$out/oci" 2>"$work/crane.log" || { cat "$work/crane.log" >&2; exit 1; }
"$crane" pull "$ref" "$out/morningcheck-$VERSION.tar" 2>"$work/crane.log" || { cat "$work/crane.log" >&2; exit 1; }
digest=$("$crane" digest "$ref")
compressed=$("$crane" manifest "$ref" | sed -n 's/.*"layers":\[{[^}]*"size":\([0-9]*\).*/\1/p')
unpacked=$(du -sb "$work/rootfs" | cut -f1)
rm -rf "$work"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "image   morningcheck:$VERSION $digest (linux/$arch)"
echo "files   $out/oci (OCI layout: crane push keeps this digest), $out/morningcheck-$VERSION.tar (docker load)"
echo "size    $(mib "$compressed") compressed (what a node pulls), $(mib "$unpacked") unpacked"
