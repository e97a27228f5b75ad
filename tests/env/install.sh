#!/usr/bin/env bash
# Installs what the test environment needs: Debian's Prometheus, node-exporter and tools;
# the Kubernetes control plane, kubectl, etcd, kwok, Alertmanager, helm, crane and
# kubeconform built from their Go modules (tests/env/build.sh); moto's server and Slack's
# SDK (its Block Kit models validate the digests) in venvs.
# Idempotent; the slow parts are cached outside the repository, keyed by version.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/env/versions.sh
source "$here/versions.sh"
mkdir -p "$CACHE"
log() { echo "[env/install] $*" >&2; }

apt_packages=(prometheus prometheus-node-exporter jq curl openssl apache2-utils util-linux iproute2 python3-venv shellcheck)
need_apt=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts these as services on their default ports; the tests run their own
  # instances on other ports. Stop them only now: their init scripts match on the
  # executable and would also stop a running test environment.
  for svc in prometheus prometheus-node-exporter; do
    case " ${need_apt[*]} " in *" $svc "*) ;; *) continue ;; esac
    systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  done
fi

command -v go >/dev/null || { log "the go command is missing: Go 1.26 or newer builds the Kubernetes components"; exit 1; }
bash "$here/build.sh"

if [ ! -f "$MOTO_DIR/.complete" ]; then
  log "installing moto[server]==$MOTO_VERSION"
  rm -rf "$MOTO_DIR" && python3 -m venv "$MOTO_DIR"
  "$MOTO_DIR/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  touch "$MOTO_DIR/.complete"
fi

if [ ! -f "$SLACK_SDK_DIR/.complete" ]; then
  log "installing slack_sdk==$SLACK_SDK_VERSION"
  rm -rf "$SLACK_SDK_DIR" && python3 -m venv "$SLACK_SDK_DIR"
  "$SLACK_SDK_DIR/bin/pip" install -q "slack_sdk==$SLACK_SDK_VERSION"
  touch "$SLACK_SDK_DIR/.complete"
fi
log "ready: Kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION, kwok v$KWOK_VERSION, helm v$HELM_VERSION, Alertmanager v$ALERTMANAGER_VERSION in $CACHE"
