#!/usr/bin/env bash
# Builds the test environment's Go components from their Go modules with the plain go
# command, each cached outside the repository in $MORNINGCHECK_CACHE/<name>-<version>/, so
# only a new machine builds them. Usage: build.sh [component...] (default: all of them).
#   kubernetes   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   etcd kwok helm crane kubeconform alertmanager prometheus-operator-crds
# Prints one line per component with the seconds it took; nothing when it is cached.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/env/versions.sh
source "$here/versions.sh"
mkdir -p "$CACHE"
log() { echo "[env/build] $*" >&2; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Runs "$@" to build component $1 into $2 unless $2/.complete exists; times it.
cached() { # name, dir, function
  local name=$1 dir=$2 fn=$3 t0
  [ -f "$dir/.complete" ] && return 0
  t0=$(date +%s)
  log "building $name (cold; cached afterwards in $dir)"
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
  "$fn" "$dir.tmp"
  touch "$dir.tmp/.complete" && mv "$dir.tmp" "$dir"
  log "built $name in $(($(date +%s) - t0)) s, $(du -sh "$dir" | cut -f1)"
}

# A module whose go.mod replaces modules with local paths can't be `go install`ed. A
# throwaway main module requires it and replaces each module that its own go.mod (read from
# the downloaded release, not hard-coded) points at a local path with its published twin.
go_build_replacing() { # out, module, version, twin version, ldflags, packages...
  local out=$1 module=$2 version=$3 twin=$4 ldflags=$5 work mod
  shift 5
  work=$(mktemp -d)
  (
    cd "$work"
    go mod init morningcheck.test/build >/dev/null 2>&1
    mod=$(go mod download -json "$module@v$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    [ -f "$mod" ] || { log "no go.mod for $module@v$version"; exit 1; }
    go mod edit -require "$module@v$version"
    grep -v FORBIDDEN_DEPENDENCY "$mod" |
      sed -n 's#^\s*\(replace \)\{0,1\}\([a-z0-9./-]*\) => \.\{1,2\}/[A-Za-z0-9/._-]*$#\2#p' |
      while read -r m; do go mod edit -replace "$m=$m@v$twin"; done
    local pinned=("${@/%/@v$version}")   # `go get` of a bare path would take the newest release
    go get "${pinned[@]}" >/dev/null 2>&1 || go get "${pinned[@]}"
    go list -m "$module" | grep -qx "$module v$version" || { log "resolved $(go list -m "$module"), not v$version"; exit 1; }
    go build -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@"
  )
  rm -rf "$work"
}

# k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with ./staging paths;
# each is published as v0.<minor>.<patch>. The version is set through -ldflags, so that
# `--version` tells the truth.
build_kubernetes() {
  local minor=${K8S_VERSION#1.} ldflags=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=${minor%%.*}"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  go_build_replacing "$1" k8s.io/kubernetes "$K8S_VERSION" "0.$minor" "$ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

# etcd's server module replaces its sibling modules (api, client, pkg) with ../ paths.
build_etcd() {
  go_build_replacing "$1" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION" \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" go.etcd.io/etcd/server/v3
  mv "$1/server" "$1/etcd"   # go names a /v3 module's binary after its parent directory
}

# A module whose main package installs with `go install`.
go_install() { # out, package@version, [ldflags]
  GOBIN="$1" go install -trimpath -ldflags "-s -w ${3:-}" "$2"
}

build_kwok() {
  go_install "$1" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION"
}
# helm's Makefile also tells it which Kubernetes its client-go speaks (the minor of the
# client-go in helm's own go.mod); without it, helm assumes v1.20 where no cluster says.
build_helm() {
  local gomod minor flags
  gomod=$(go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  minor=$(sed -n 's#^\s*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod")
  [ -n "$minor" ] || { log "no k8s.io/client-go in helm's go.mod"; return 1; }
  flags="-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    flags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  go_install "$1" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" "$flags"
}
build_crane() { go_install "$1" "github.com/google/go-containerregistry/cmd/crane@v$CRANE_VERSION"; }
build_kubeconform() { go_install "$1" "github.com/yannh/kubeconform/cmd/kubeconform@v$KUBECONFORM_VERSION"; }
build_alertmanager() {
  go_install "$1" "github.com/prometheus/alertmanager/cmd/alertmanager@v$ALERTMANAGER_VERSION" \
    "-X github.com/prometheus/common/version.Version=$ALERTMANAGER_VERSION"
}
# ServiceMonitor and PrometheusRule CRDs, as the prometheus-operator module ships them.
build_prometheus-operator-crds() {
  local dir
  dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$1/"
}

declare -A dirs=(
  [kubernetes]="$K8S_DIR" [etcd]="$ETCD_DIR" [kwok]="$KWOK_DIR" [helm]="$HELM_DIR"
  [crane]="$CRANE_DIR" [kubeconform]="$KUBECONFORM_DIR" [alertmanager]="$ALERTMANAGER_DIR"
  [prometheus-operator-crds]="$PROMETHEUS_OPERATOR_CRDS_DIR"
)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(kubernetes etcd kwok helm crane kubeconform alertmanager prometheus-operator-crds)
for c in "${want[@]}"; do
  [ -n "${dirs[$c]:-}" ] || { log "unknown component $c"; exit 64; }
  cached "$c" "${dirs[$c]}" "build_$c"
done
