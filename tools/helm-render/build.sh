#!/usr/bin/env bash
# Builds tools/helm-render (a helm-compatible chart renderer; this machine has no helm)
# into the cache, outside the repository, and prints the binary's path on stdout.
#   ${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}/helm-render/helm-render-<hash of main.go>
# Uses Debian's Go and its packaged sprig and yaml.v3 (GOPATH mode, no module download);
# installs them with apt-get when missing. Safe to run concurrently.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache="${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}/helm-render"
gopath=/usr/share/gocode
log() { echo "[helm-render/build] $*" >&2; }

mkdir -p "$cache"
hash=$(sha256sum "$here/main.go" | cut -c1-16)
bin="$cache/helm-render-$hash"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

exec 9>"$cache/.lock"
flock 9
if [ -x "$bin" ]; then # built by a concurrent caller while we waited
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1 || [ ! -d "$gopath/src/github.com/Masterminds/sprig" ] \
  || [ ! -d "$gopath/src/gopkg.in/yaml.v3" ]; then
  pkgs="golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing $pkgs"
  $sudo apt-get install -y -qq $pkgs >&2 || { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq $pkgs >&2; }
fi

log "building $bin"
tmp="$bin.tmp.$$"
(cd "$here" && GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOCACHE="$cache/gocache" \
  go build -trimpath -o "$tmp" main.go)
mv "$tmp" "$bin"
echo "$bin"
