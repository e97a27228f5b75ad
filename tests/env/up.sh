#!/usr/bin/env bash
# Starts the test environment on loopback: a current Kubernetes control plane (etcd,
# kube-apiserver with RBAC and ServiceAccount admission, kube-controller-manager,
# kube-scheduler) with kwok's fake nodes, Prometheus with node-exporter sending alerts to
# Alertmanager, a second Prometheus enforcing basic auth, and moto (EC2, STS). Writes, into
# $MORNINGCHECK_TESTENV (default .testenv/ in the repository):
#   kubeconfig   admin (system:masters) context "admin", plus "alice" (no rights) and "remote"
#   env          shell variables with every address, path and binary, read by the tests
# Stop everything with tests/env/down.sh. Idempotent: a running environment is reused.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/env/versions.sh
source "$here/versions.sh"
ENVDIR="${MORNINGCHECK_TESTENV:-$repo/.testenv}"
ETCD_PORT="${ETCD_PORT:-23790}"
API_PORT="${API_PORT:-16443}"
PROM_PORT="${PROM_PORT:-19090}"
PROM_AUTH_PORT="${PROM_AUTH_PORT:-19091}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-19093}"
NODE_EXPORTER_PORT="${NODE_EXPORTER_PORT:-19100}"
MOTO_PORT="${MOTO_PORT:-15000}"
KWOK_NODES="${KWOK_NODES:-3}"
log() { echo "[env/up] $*" >&2; }

if [ -f "$ENVDIR/env" ] && "$here/status.sh" >/dev/null 2>&1; then
  log "already running ($ENVDIR)"
  exit 0
fi
"$here/down.sh" >/dev/null 2>&1 || true
mkdir -p "$ENVDIR"/{pki,logs,pids,etcd,prom,prom-auth,alertmanager,kube}

start() { # name, command...
  local name=$1; shift
  setsid "$@" >"$ENVDIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$ENVDIR/pids/$name"
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "timed out waiting for $what; last lines of its log:"
  tail -n 20 "$ENVDIR/logs/$what.log" >&2 2>/dev/null || true
  return 1
}

# --- PKI: a CA, the apiserver's serving certificate, the service-account key, tokens ------
pki="$ENVDIR/pki"
if [ ! -f "$pki/ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=morningcheck-test-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
fi
if [ ! -f "$pki/apiserver.crt" ]; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$pki/apiserver.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
fi
[ -f "$pki/sa.key" ] || openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
token() { [ -f "$pki/$1.token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pki/$1.token"; cat "$pki/$1.token"; }
ADMIN_TOKEN=$(token admin); ALICE_TOKEN=$(token alice); REMOTE_TOKEN=$(token remote)
cat >"$pki/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,system:masters
$ALICE_TOKEN,alice,alice
$REMOTE_TOKEN,remote,remote
$(token kube-controller-manager),system:kube-controller-manager,kube-controller-manager
$(token kube-scheduler),system:kube-scheduler,kube-scheduler
$(token kwok),kwok,kwok,system:masters
EOF

# --- etcd --------------------------------------------------------------------------------
start etcd "$ETCD_DIR/etcd" --data-dir "$ENVDIR/etcd" --name mc-test \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-cluster "mc-test=http://127.0.0.1:$((ETCD_PORT + 10))" --unsafe-no-fsync \
  --listen-metrics-urls "" --log-level warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ----------------------------------------------------------------------
start kube-apiserver "$K8S_DIR/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --token-auth-file "$pki/tokens.csv" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --api-audiences https://kubernetes.default.svc \
  --service-cluster-ip-range 10.96.0.0/24 \
  --endpoint-reconciler-type none \
  --event-ttl 24h
server="https://127.0.0.1:$API_PORT"
wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$server/readyz"

ca_b64=$(base64 -w0 <"$pki/ca.crt")
kubeconfig() { # file, then user=token pairs; the first user is the current context
  local file=$1 first=""; shift
  {
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: %s\n    certificate-authority-data: %s\nusers:\n' "$server" "$ca_b64"
    for ut in "$@"; do printf -- '- name: %s\n  user: {token: %s}\n' "${ut%%=*}" "${ut#*=}"; done
    printf 'contexts:\n'
    for ut in "$@"; do printf -- '- name: %s\n  context: {cluster: test, user: %s}\n' "${ut%%=*}" "${ut%%=*}"; first=${first:-${ut%%=*}}; done
    printf 'current-context: %s\n' "$first"
  } >"$file"
  chmod 600 "$file"
}
kc="$ENVDIR/kubeconfig"
kubeconfig "$kc" "admin=$ADMIN_TOKEN" "alice=$ALICE_TOKEN" "remote=$REMOTE_TOKEN"
for c in kube-controller-manager kube-scheduler kwok; do kubeconfig "$ENVDIR/kube/$c.kubeconfig" "$c=$(token "$c")"; done

# --- kube-controller-manager and kube-scheduler ------------------------------------------
start kube-controller-manager "$K8S_DIR/kube-controller-manager" \
  --kubeconfig "$ENVDIR/kube/kube-controller-manager.kubeconfig" \
  --controllers '*' --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
  --node-monitor-grace-period 40s
start kube-scheduler "$K8S_DIR/kube-scheduler" \
  --kubeconfig "$ENVDIR/kube/kube-scheduler.kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0
KUBECTL=("$K8S_DIR/kubectl" --kubeconfig "$kc")
# Every namespace gets its "default" ServiceAccount from the controller-manager.
wait_for kube-controller-manager 60 "${KUBECTL[@]}" -n default get serviceaccount default
# The operator namespace of the controllers the tests run in-process: their known findings.
"${KUBECTL[@]}" create namespace morningcheck-system --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >/dev/null

# --- kwok: fake nodes whose pods really run through their lifecycle ---------------------
start kwok "$KWOK_DIR/kwok" --kubeconfig "$ENVDIR/kube/kwok.kubeconfig" \
  --config "$here/kwok/stages.yaml" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds 40 --cidr 10.244.0.0/16 --node-ip 10.200.0.1 \
  --server-address 127.0.0.1:0
for i in $(seq 0 $((KWOK_NODES - 1))); do
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
---
EOF
done | "${KUBECTL[@]}" apply -f - >/dev/null
wait_for kwok 60 bash -c "[ \"\$('${K8S_DIR}/kubectl' --kubeconfig '$kc' get nodes -l type=kwok -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | wc -w)\" = $KWOK_NODES ] && ! '${K8S_DIR}/kubectl' --kubeconfig '$kc' get nodes -l type=kwok -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | grep -qv True"

# --- Prometheus, node-exporter and Alertmanager -------------------------------------------
# Its textfile collector serves what tests write into $ENVDIR/textfile (*.prom): series by
# the thousand, for the diff at scale.
mkdir -p "$ENVDIR/textfile"
start node-exporter prometheus-node-exporter --web.listen-address "127.0.0.1:$NODE_EXPORTER_PORT" \
  --collector.textfile.directory "$ENVDIR/textfile"
cat >"$ENVDIR/alertmanager/alertmanager.yml" <<EOF
route: {receiver: none, group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers: [{name: none}]
EOF
start alertmanager "$ALERTMANAGER_DIR/alertmanager" --config.file "$ENVDIR/alertmanager/alertmanager.yml" \
  --storage.path "$ENVDIR/alertmanager/data" --web.listen-address "127.0.0.1:$ALERTMANAGER_PORT" \
  --cluster.listen-address ""
cp "$here/prometheus/rules.yml" "$ENVDIR/prom/rules.yml"
prom_config() { # port
  cat <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files: ["$ENVDIR/prom/rules.yml"]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$ALERTMANAGER_PORT"]}]}]
scrape_configs:
- job_name: node
  static_configs: [{targets: ["127.0.0.1:$NODE_EXPORTER_PORT"]}]
- job_name: prometheus
  static_configs: [{targets: ["127.0.0.1:$1"]}]
EOF
}
prom_config "$PROM_PORT" >"$ENVDIR/prom/prometheus.yml"
start prometheus prometheus --config.file "$ENVDIR/prom/prometheus.yml" --storage.tsdb.path "$ENVDIR/prom/data" \
  --web.listen-address "127.0.0.1:$PROM_PORT" --rules.alert.resend-delay 2s
# A second Prometheus that enforces basic auth through its own --web.config.file.
PROM_AUTH_USER=morning PROM_AUTH_PASSWORD=$(token prom-password)
hash=$(htpasswd -nbB -C 10 x "$PROM_AUTH_PASSWORD" | cut -d: -f2)
printf 'basic_auth_users:\n  %s: %s\n' "$PROM_AUTH_USER" "$hash" >"$ENVDIR/prom-auth/web.yml"
prom_config "$PROM_AUTH_PORT" | sed -e '/job_name: prometheus/,$d' -e '/^alerting:/,+1d' >"$ENVDIR/prom-auth/prometheus.yml"
start prometheus-auth prometheus --config.file "$ENVDIR/prom-auth/prometheus.yml" --storage.tsdb.path "$ENVDIR/prom-auth/data" \
  --web.listen-address "127.0.0.1:$PROM_AUTH_PORT" --web.config.file "$ENVDIR/prom-auth/web.yml"

# --- moto (EC2, STS) ---------------------------------------------------------------------
start moto "$MOTO_DIR/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"

wait_for prometheus 60 curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready"
wait_for prometheus-auth 60 curl -fsS -u "$PROM_AUTH_USER:$PROM_AUTH_PASSWORD" "http://127.0.0.1:$PROM_AUTH_PORT/-/ready"
wait_for alertmanager 60 curl -fsS "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"
wait_for node-exporter 30 curl -fsS "http://127.0.0.1:$NODE_EXPORTER_PORT/metrics"
wait_for moto 60 curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/"
# The test rules fire at once; wait until Prometheus has delivered them to Alertmanager.
wait_for alertmanager 60 bash -c "curl -fsS 'http://127.0.0.1:$ALERTMANAGER_PORT/api/v2/alerts' | grep -q alertname"

cat >"$ENVDIR/env" <<EOF
MC_ENV_DIR=$ENVDIR
MC_KUBECONFIG=$kc
MC_KUBE_SERVER=$server
MC_KUBE_CA=$pki/ca.crt
MC_KUBE_SA_KEY=$pki/sa.key
MC_K8S_VERSION=$K8S_VERSION
MC_K8S_OLDEST_SUPPORTED=$K8S_OLDEST_SUPPORTED
MC_KWOK_NODES=$KWOK_NODES
MC_ADMIN_TOKEN=$ADMIN_TOKEN
MC_ALICE_TOKEN=$ALICE_TOKEN
MC_REMOTE_TOKEN=$REMOTE_TOKEN
MC_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT
MC_PROMETHEUS_AUTH_URL=http://127.0.0.1:$PROM_AUTH_PORT
MC_PROMETHEUS_AUTH_USER=$PROM_AUTH_USER
MC_PROMETHEUS_AUTH_PASSWORD=$PROM_AUTH_PASSWORD
MC_ALERTMANAGER_URL=http://127.0.0.1:$ALERTMANAGER_PORT
MC_NODE_EXPORTER_URL=http://127.0.0.1:$NODE_EXPORTER_PORT
MC_MOTO_URL=http://127.0.0.1:$MOTO_PORT
MC_APISERVER_BIN=$K8S_DIR/kube-apiserver
MC_KUBECTL_BIN=$K8S_DIR/kubectl
MC_HELM_BIN=$HELM_DIR/helm
MC_KUBECONFORM_BIN=$KUBECONFORM_DIR/kubeconform
MC_CRANE_BIN=$CRANE_DIR/crane
MC_PROMETHEUS_OPERATOR_CRDS=$PROMETHEUS_OPERATOR_CRDS_DIR
MC_PROMETHEUS_BIN=$(command -v prometheus)
MC_PROMTOOL_BIN=$(command -v promtool)
MC_SLACK_SDK_PYTHON=$SLACK_SDK_DIR/bin/python
EOF
log "ready: KUBECONFIG=$kc ($server, Kubernetes v$K8S_VERSION, $KWOK_NODES kwok nodes), Prometheus :$PROM_PORT, Alertmanager :$ALERTMANAGER_PORT, moto :$MOTO_PORT"
