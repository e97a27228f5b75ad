#!/usr/bin/env bash
# Installs what the test environment needs: etcd, a kube-apiserver built from
# Debian's kubernetes source package, Prometheus, node-exporter and moto's server.
# Idempotent; slow artefacts are cached outside the repository.
set -euo pipefail

CACHE="${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}"
MOTO_VERSION="5.1.22"
mkdir -p "$CACHE"
log() { echo "[env/install] $*" >&2; }

apt_packages=(etcd-server prometheus prometheus-node-exporter jq curl rsync openssl apache2-utils util-linux iproute2)
build_packages=(golang-go golang-github-modern-go-reflect2-dev)

need_apt=()
for p in "${apt_packages[@]}" "${build_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
command -v kubectl >/dev/null || need_apt+=(kubernetes-client)

# deb-src entries mirror the machine's own deb entries, so no host is named here.
add_deb_src() {
  local src=/etc/apt/sources.list.d/debian.sources out=/etc/apt/sources.list.d/morningcheck-src.sources
  [ -f "$out" ] && return 0
  grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && return 0
  grep -qs '^deb-src' /etc/apt/sources.list && return 0
  [ -f "$src" ] || { log "no $src to derive deb-src entries from"; return 1; }
  sed 's/^Types: deb$/Types: deb-src/' "$src" >"$out"
  return 1
}

apiserver="$CACHE/kube-apiserver-1.20.2"
updated=0
if ! add_deb_src || [ ${#need_apt[@]} -gt 0 ] || [ ! -x "$apiserver" ]; then
  log "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  updated=1
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian may start these as services on their default ports; the tests run their own
  # instances on other ports. Stop them only now: their init scripts match on the
  # executable and would also stop a running test environment.
  for svc in etcd prometheus prometheus-node-exporter; do
    case " ${need_apt[*]} " in *" $svc-server "* | *" $svc "*) ;; *) continue ;; esac
    systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  done
fi

build_apiserver() {
  local work="$CACHE/kubernetes-src"
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  [ "$updated" = 1 ] || DEBIAN_FRONTEND=noninteractive apt-get update -qq
  log "downloading Debian's kubernetes source package"
  apt-get source --download-only kubernetes >/dev/null
  local orig
  orig=$(ls kubernetes_*.orig.tar.* | head -n1)
  mkdir tree && tar -xf "$orig" -C tree --strip-components=1
  # The vendored reflect2 1.0.1 crashes ("fatal error: fault") under Go >= 1.18.
  rm -rf tree/vendor/github.com/modern-go/reflect2
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 tree/vendor/github.com/modern-go/reflect2
  rm -f tree/vendor/github.com/modern-go/reflect2/go.mod
  mkdir -p .go/src/k8s.io && ln -s "$work/tree" .go/src/k8s.io/kubernetes
  log "building kube-apiserver (a few minutes)"
  (cd .go/src/k8s.io/kubernetes && GOPATH="$work/.go" GO111MODULE=off CGO_ENABLED=0 \
    make WHAT=cmd/kube-apiserver >"$work/build.log" 2>&1) || { tail -n 40 "$work/build.log" >&2; return 1; }
  cp tree/_output/bin/kube-apiserver "$apiserver.tmp" && mv "$apiserver.tmp" "$apiserver"
  cd "$CACHE" && rm -rf "$work"
}
[ -x "$apiserver" ] || build_apiserver

venv="$CACHE/moto-$MOTO_VERSION"
if [ ! -f "$venv/.complete" ]; then
  log "installing moto[server]==$MOTO_VERSION"
  rm -rf "$venv" && python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  touch "$venv/.complete"
fi
log "ready: $apiserver, $venv"
