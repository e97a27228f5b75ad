#!/usr/bin/env bash
# The main job on the local environment: brings up a current Kubernetes control plane with kwok's fake nodes,
# Prometheus and an EC2 peer, installs the CRD, applies examples/morningcheck.yaml (its
# endpoints pointed at the local peers), runs the controller, triggers a run and shows
# what `kubectl get morningchecks` and the status say. Stop the environment afterwards
# with tests/env/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/env/install.sh
bash tests/env/up.sh
# shellcheck source=tests/env/versions.sh
source tests/env/versions.sh
export PATH="$K8S_DIR:$PATH"   # kubectl at the server's version
# shellcheck disable=SC1091
source .testenv/env
export KUBECONFIG="$MC_KUBECONFIG"
cargo build --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/morningcheck"

echo "== installing the CRD"
$bin crd | kubectl apply -f -
# A CRD created a moment ago may have no conditions yet, and kubectl wait then fails at once
# ("conditions accessor error") instead of waiting: ask until the apiserver serves it.
for _ in $(seq 1 60); do
  [ "$(kubectl get crd morningchecks.morningcheck.io -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ] && break
  sleep 0.5
done
kubectl wait --for condition=established --timeout=30s crd/morningchecks.morningcheck.io >/dev/null

# A webhook receiver standing in for Slack; it prints what it receives.
receiver_port=18099
python3 tests/env/slack_receiver.py "$receiver_port" .testenv/slack.jsonl &
receiver=$!
kubectl create secret generic slack-webhook --from-literal=url="http://127.0.0.1:$receiver_port/services/demo" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null

echo "== planting a small broken fleet on kwok's fake nodes (kwok plays the kubelet)"
kubectl create namespace shop --dry-run=client -o yaml | kubectl apply -f - >/dev/null
until kubectl -n shop get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
kubectl -n shop apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: checkout
  labels: {app: checkout, morningcheck.test/state: crashloop}
  annotations: {morningcheck.test/restarts: "12", morningcheck.test/last-reason: OOMKilled, morningcheck.test/exit-code: "137"}
spec:
  containers: [{name: checkout, image: registry.invalid/shop/checkout:1}]
---
apiVersion: v1
kind: Pod
metadata:
  name: cart
  labels: {app: cart, morningcheck.test/state: imagepull}
spec:
  containers: [{name: cart, image: registry.invalid/shop/cart:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: search
spec:
  replicas: 2
  progressDeadlineSeconds: 10
  selector: {matchLabels: {app: search}}
  template:
    metadata:
      labels: {app: search, morningcheck.test/state: unready}
    spec:
      containers: [{name: search, image: registry.invalid/shop/search:1}]
YAML
"$MOTO_DIR/bin/python" - "$MC_MOTO_URL" <<'PY'
import sys, boto3
ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=sys.argv[1], aws_access_key_id="demo", aws_secret_access_key="demo")
if not ec2.describe_instances(Filters=[{"Name": "tag:demo", "Values": ["shop"]}])["Reservations"]:
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=3, MaxCount=3,
           TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "demo", "Value": "shop"}]}])["Instances"]]
    ec2.stop_instances(InstanceIds=ids[:1])
PY

kubectl -n shop wait pod/checkout --timeout=60s --for=jsonpath='{.status.containerStatuses[0].state.waiting.reason}'=CrashLoopBackOff >/dev/null
kubectl -n shop wait pod/cart --timeout=60s --for=jsonpath='{.status.containerStatuses[0].state.waiting.reason}'=ImagePullBackOff >/dev/null
echo "   waiting for the Deployment controller to give up on search (progressDeadlineSeconds: 10)"
kubectl -n shop wait deployment/search --timeout=90s \
  --for=jsonpath='{.status.conditions[?(@.type=="Progressing")].reason}'=ProgressDeadlineExceeded >/dev/null
kubectl -n shop get pods,deployments

echo "== applying examples/morningcheck.yaml (endpoints pointed at the local peers)"
sed -e "s#http://prometheus-operated.monitoring.svc:9090#$MC_PROMETHEUS_URL#" \
    -e "s#regions: \[eu-west-1, eu-central-1\]#regions: [eu-west-1, eu-central-1]\n      endpointUrl: $MC_MOTO_URL#" \
    examples/morningcheck.yaml | kubectl apply -f -

echo "== running the controller"
# The platform team's namespace (default) checks the whole cluster with the operator's
# own identity, and may point AWS at moto; every other namespace would run as its own
# ServiceAccount (see "Multi-tenancy" in the README).
cat >.testenv/demo-config.yaml <<'YAML'
controller:
  tenancy:
    kubernetes: {operatorIdentityNamespaces: [default]}
    aws: {namespaces: [default], allowEndpointOverride: true}
YAML
# moto accepts any keys; on a real cluster the controller uses IRSA instead.
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo RUST_LOG=info,kube=warn \
  $bin controller --config .testenv/demo-config.yaml --metrics-addr 127.0.0.1:18080 >.testenv/logs/controller.log 2>&1 &
controller=$!
trap 'kill $controller $receiver 2>/dev/null || true' EXIT

kubectl annotate mc platform morningcheck.io/run-now="demo-$(date +%s)" --overwrite >/dev/null
for _ in $(seq 1 120); do
  [ -n "$(kubectl get mc platform -o jsonpath='{.status.lastRun.runId}' 2>/dev/null)" ] &&
    [ -z "$(kubectl get mc platform -o jsonpath='{.status.activeRun.runId}' 2>/dev/null)" ] && break
  sleep 0.5
done
sleep 1

echo
echo "== kubectl get morningchecks -o wide"
kubectl get morningchecks -o wide
echo
echo "== conditions"
kubectl get mc platform -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
echo
echo "== last run, per target"
kubectl get mc platform -o jsonpath='{range .status.lastRun.targets[*]}{.name}: {.result}, {.counts.total} findings{"\n"}{end}'
echo
echo "== findings"
kubectl get mc platform -o jsonpath='{range .status.lastRun.targets[*].findings[*]}{.severity}	{.check}	{.object}: {.message}{"\n"}{end}' | cut -c1-150
echo
echo "== events"
kubectl get events --field-selector involvedObject.name=platform -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message 2>/dev/null | head -10
echo
echo "== the Slack digest that was posted (to the local receiver)"
tail -n 1 .testenv/slack.jsonl 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d.get("text","")); print(len(d.get("blocks",[])), "blocks")' || echo "(none)"
echo
echo "The full status: kubectl get mc platform -o yaml   (KUBECONFIG=$KUBECONFIG)"
echo "Stop the environment: tests/env/down.sh"
