#!/usr/bin/env bash
# The main job on the local embedded environment: brings up a real kube-apiserver,
# Prometheus and an EC2 peer, installs the CRD, applies examples/morningcheck.yaml (its
# endpoints pointed at the local peers), runs the controller, triggers a run and shows
# what `kubectl get morningchecks` and the status say. Stop the environment afterwards
# with tests/env/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/env/install.sh
bash tests/env/up.sh
# shellcheck disable=SC1091
source .testenv/env
export KUBECONFIG="$MC_KUBECONFIG"
cargo build --locked --quiet
bin=target/debug/morningcheck

echo "== installing the CRD"
$bin crd | kubectl apply -f -
kubectl wait --for condition=established --timeout=30s crd/morningchecks.morningcheck.io >/dev/null

# A webhook receiver standing in for Slack; it prints what it receives.
receiver_port=18099
python3 tests/env/slack_receiver.py "$receiver_port" .testenv/slack.jsonl &
receiver=$!
kubectl create secret generic slack-webhook --from-literal=url="http://127.0.0.1:$receiver_port/services/demo" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null

echo "== planting a small broken fleet (no kubelet runs here, so statuses are patched in)"
kubectl create namespace shop --dry-run=client -o yaml | kubectl apply -f - >/dev/null
plant_pod() { # name, status JSON
  kubectl -n shop run "$1" --image=registry.invalid/shop:1 --restart=Never --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n shop patch pod "$1" --subresource=status --type=merge -p "{\"status\": $2}" >/dev/null
}
plant_pod checkout '{"phase":"Running","containerStatuses":[{"name":"checkout","ready":false,"restartCount":12,"image":"i","imageID":"","state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container"}},"lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled"}}}]}'
plant_pod cart '{"phase":"Pending","containerStatuses":[{"name":"cart","ready":false,"restartCount":0,"image":"i","imageID":"","state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}}}]}'
kubectl -n shop create deployment search --image=registry.invalid/search:1 --replicas=2 --dry-run=client -o yaml | kubectl apply -f - >/dev/null
"${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}/moto-5.1.22/bin/python" - "$MC_MOTO_URL" <<'PY'
import sys, boto3
ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=sys.argv[1], aws_access_key_id="demo", aws_secret_access_key="demo")
if not ec2.describe_instances(Filters=[{"Name": "tag:demo", "Values": ["shop"]}])["Reservations"]:
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=3, MaxCount=3,
           TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "demo", "Value": "shop"}]}])["Instances"]]
    ec2.stop_instances(InstanceIds=ids[:1])
PY

echo "== applying examples/morningcheck.yaml (endpoints pointed at the local peers)"
sed -e "s#http://prometheus-operated.monitoring.svc:9090#$MC_PROMETHEUS_URL#" \
    -e "s#regions: \[eu-west-1, eu-central-1\]#regions: [eu-west-1, eu-central-1]\n      endpointUrl: $MC_MOTO_URL#" \
    examples/morningcheck.yaml | kubectl apply -f -

echo "== running the controller"
# moto accepts any keys; on a real cluster the controller uses IRSA instead.
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo RUST_LOG=info,kube=warn \
  $bin controller --metrics-addr 127.0.0.1:18080 >.testenv/logs/controller.log 2>&1 &
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
