#!/usr/bin/env bash
# Starts the test environment on loopback: etcd, kube-apiserver (RBAC on), Prometheus with
# node-exporter, and moto's EC2/STS server. Writes, into $MORNINGCHECK_TESTENV (default
# .testenv/ in the repository):
#   kubeconfig   admin (system:masters) context "admin", plus "alice" (no rights) and "remote"
#   env          shell variables with every address and path, read by the tests
# Stop everything with tests/env/down.sh. Idempotent: a running environment is reused.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE="${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}"
ENVDIR="${MORNINGCHECK_TESTENV:-$repo/.testenv}"
MOTO_VERSION="5.1.22"
ETCD_PORT="${ETCD_PORT:-23790}"
API_PORT="${API_PORT:-16443}"
PROM_PORT="${PROM_PORT:-19090}"
PROM_AUTH_PORT="${PROM_AUTH_PORT:-19091}"
NODE_EXPORTER_PORT="${NODE_EXPORTER_PORT:-19100}"
MOTO_PORT="${MOTO_PORT:-15000}"
log() { echo "[env/up] $*" >&2; }

if [ -f "$ENVDIR/env" ] && "$here/status.sh" >/dev/null 2>&1; then
  log "already running ($ENVDIR)"
  exit 0
fi
"$here/down.sh" >/dev/null 2>&1 || true
mkdir -p "$ENVDIR"/{pki,logs,pids,etcd,prom,prom-auth}

start() { # name, command...
  local name=$1; shift
  setsid "$@" >"$ENVDIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$ENVDIR/pids/$name"
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "timed out waiting for $what"; return 1
}

# --- PKI: service-account signing key and tokens -------------------------------------------
pki="$ENVDIR/pki"
[ -f "$pki/sa.key" ] || openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
token() { [ -f "$pki/$1.token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pki/$1.token"; cat "$pki/$1.token"; }
ADMIN_TOKEN=$(token admin); ALICE_TOKEN=$(token alice); REMOTE_TOKEN=$(token remote)
cat >"$pki/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,system:masters
$ALICE_TOKEN,alice,alice
$REMOTE_TOKEN,remote,remote
EOF

# --- etcd --------------------------------------------------------------------------------
start etcd etcd --data-dir "$ENVDIR/etcd" --name mc-test \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-cluster "mc-test=http://127.0.0.1:$((ETCD_PORT + 10))" --unsafe-no-fsync
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ----------------------------------------------------------------------
start kube-apiserver "$CACHE/kube-apiserver-1.20.2" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
  --cert-dir "$pki" \
  --token-auth-file "$pki/tokens.csv" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --api-audiences https://kubernetes.default.svc \
  --service-cluster-ip-range 10.96.0.0/24 \
  --endpoint-reconciler-type none \
  --disable-admission-plugins ServiceAccount \
  --enable-priority-and-fairness=false \
  --event-ttl 24h
server="https://127.0.0.1:$API_PORT"
wait_for kube-apiserver 90 curl -fsS --cacert "$pki/apiserver.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$server/readyz"

kc="$ENVDIR/kubeconfig"
ca_b64=$(base64 -w0 <"$pki/apiserver.crt")
cat >"$kc" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $server
    certificate-authority-data: $ca_b64
users:
- name: admin
  user: {token: $ADMIN_TOKEN}
- name: alice
  user: {token: $ALICE_TOKEN}
- name: remote
  user: {token: $REMOTE_TOKEN}
contexts:
- name: admin
  context: {cluster: test, user: admin}
- name: alice
  context: {cluster: test, user: alice}
- name: remote
  context: {cluster: test, user: remote}
current-context: admin
EOF
chmod 600 "$kc"

# --- Prometheus and node-exporter --------------------------------------------------------
start node-exporter prometheus-node-exporter --web.listen-address "127.0.0.1:$NODE_EXPORTER_PORT"
cp "$here/prometheus/rules.yml" "$ENVDIR/prom/rules.yml"
prom_config() { # port
  cat <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files: ["$ENVDIR/prom/rules.yml"]
scrape_configs:
- job_name: node
  static_configs: [{targets: ["127.0.0.1:$NODE_EXPORTER_PORT"]}]
- job_name: prometheus
  static_configs: [{targets: ["127.0.0.1:$1"]}]
EOF
}
prom_config "$PROM_PORT" >"$ENVDIR/prom/prometheus.yml"
start prometheus prometheus --config.file "$ENVDIR/prom/prometheus.yml" --storage.tsdb.path "$ENVDIR/prom/data" \
  --web.listen-address "127.0.0.1:$PROM_PORT"
# A second Prometheus that enforces basic auth through its own --web.config.file.
PROM_AUTH_USER=morning PROM_AUTH_PASSWORD=$(token prom-password)
hash=$(htpasswd -nbB -C 10 x "$PROM_AUTH_PASSWORD" | cut -d: -f2)
printf 'basic_auth_users:\n  %s: %s\n' "$PROM_AUTH_USER" "$hash" >"$ENVDIR/prom-auth/web.yml"
prom_config "$PROM_AUTH_PORT" | sed '/job_name: prometheus/,$d' >"$ENVDIR/prom-auth/prometheus.yml"
start prometheus-auth prometheus --config.file "$ENVDIR/prom-auth/prometheus.yml" --storage.tsdb.path "$ENVDIR/prom-auth/data" \
  --web.listen-address "127.0.0.1:$PROM_AUTH_PORT" --web.config.file "$ENVDIR/prom-auth/web.yml"

# --- moto (EC2, STS) ---------------------------------------------------------------------
start moto "$CACHE/moto-$MOTO_VERSION/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"

wait_for prometheus 60 curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready"
wait_for prometheus-auth 60 curl -fsS -u "$PROM_AUTH_USER:$PROM_AUTH_PASSWORD" "http://127.0.0.1:$PROM_AUTH_PORT/-/ready"
wait_for node-exporter 30 curl -fsS "http://127.0.0.1:$NODE_EXPORTER_PORT/metrics"
wait_for moto 60 curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/"

cat >"$ENVDIR/env" <<EOF
MC_ENV_DIR=$ENVDIR
MC_KUBECONFIG=$kc
MC_KUBE_SERVER=$server
MC_KUBE_CA=$pki/apiserver.crt
MC_KUBE_SA_KEY=$pki/sa.key
MC_ADMIN_TOKEN=$ADMIN_TOKEN
MC_ALICE_TOKEN=$ALICE_TOKEN
MC_REMOTE_TOKEN=$REMOTE_TOKEN
MC_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT
MC_PROMETHEUS_AUTH_URL=http://127.0.0.1:$PROM_AUTH_PORT
MC_PROMETHEUS_AUTH_USER=$PROM_AUTH_USER
MC_PROMETHEUS_AUTH_PASSWORD=$PROM_AUTH_PASSWORD
MC_NODE_EXPORTER_URL=http://127.0.0.1:$NODE_EXPORTER_PORT
MC_MOTO_URL=http://127.0.0.1:$MOTO_PORT
MC_APISERVER_BIN=$CACHE/kube-apiserver-1.20.2
MC_PROMETHEUS_BIN=$(command -v prometheus)
EOF
log "ready: KUBECONFIG=$kc ($server), Prometheus :$PROM_PORT, moto :$MOTO_PORT"
