#!/usr/bin/env python3
"""Plants (and removes) benchmark fleets in the real test environment (tests/env/up.sh).

Kubernetes: namespaces `bench-<fleet>-NNN` (labelled `morningcheck-bench=<fleet>`) with pods
created through the REST API and then given a status by a patch of their `status`
subresource (about 40 % unhealthy: CrashLoopBackOff, ImagePullBackOff, restarts above 5,
Pending since long ago, Evicted), Warning and Normal events, and nodes `bench-<fleet>-node-NNN`
(some NotReady, under pressure or cordoned). Everything goes concurrently with the admin
token; no controller-manager runs, so removal deletes pods and events with grace period 0
and finalizes the namespaces itself.

EC2 (moto, shared with the integration tests): instances over many reservations in two
regions of their own (picked among regions nobody else uses and that hold no instance yet),
every instance tagged `morningcheck-bench=<fleet>`. Removal terminates them.

    plant.py plant --pods 1000 --instances 100 [--fleet ID]   # prints the fleet as JSON
    plant.py clean --fleet ID | --all
"""
import argparse
import base64
import concurrent.futures as cf
import datetime as dt
import json
import os
import random
import sys
import threading
import time

import requests
import urllib3

urllib3.disable_warnings()

LABEL = "morningcheck-bench"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Regions no integration test uses; each fleet takes two that hold no instance yet.
REGION_POOL = [
    "ap-northeast-1", "ap-southeast-1", "ca-central-1", "sa-east-1", "eu-north-1", "eu-west-3",
    "ap-northeast-2", "ap-southeast-2", "eu-west-2", "us-west-1", "ap-northeast-3", "eu-south-1",
    "me-south-1", "af-south-1", "ap-east-1", "eu-central-2", "ap-south-2", "il-central-1",
]
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
WORKERS = 32


def load_env():
    path = os.path.join(os.environ.get("MORNINGCHECK_TESTENV", os.path.join(REPO, ".testenv")), "env")
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """Plain REST against the test apiserver, one keep-alive session per thread."""

    def __init__(self, env):
        self.server = env["MC_KUBE_SERVER"]
        self.token = env["MC_ADMIN_TOKEN"]
        self.ca = env["MC_KUBE_CA"]
        self.local = threading.local()

    def s(self):
        if not hasattr(self.local, "s"):
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {self.token}"
            s.verify = self.ca
            self.local.s = s
        return self.local.s

    def call(self, method, path, body=None, ok=(200, 201, 202), ctype="application/json", params=None):
        for attempt in range(8):
            try:
                r = self.s().request(method, self.server + path, data=None if body is None else json.dumps(body),
                                     headers={"Content-Type": ctype}, params=params, timeout=120,
                                     verify=self.ca)  # explicit: REQUESTS_CA_BUNDLE would win over Session.verify
            except requests.RequestException:
                if attempt == 7:
                    raise
                time.sleep(0.5 * (attempt + 1))
                continue
            if r.status_code in ok:
                if r.status_code == 404 or not r.content:
                    return None
                return r.json()
            if r.status_code in (429, 500, 503, 504) or (r.status_code == 409 and method == "PUT"):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        raise RuntimeError(f"{method} {path}: gave up")


def run_all(fn, items, workers=WORKERS):
    with cf.ThreadPoolExecutor(workers) as ex:
        for f in cf.as_completed([ex.submit(fn, i) for i in items]):
            f.result()


# --- Kubernetes objects --------------------------------------------------------------------

def pod_body(fleet, ns, name, i, node):
    app = f"svc-{i % 40:02d}"
    env = [{"name": f"SETTING_{k}", "value": f"value-{k}-{i % 7}"} for k in range(8)]
    env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    container = {
        "name": "app", "image": f"registry.example.internal/{app}:1.{i % 9}.{i % 13}",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "tmp", "mountPath": "/tmp"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 15},
        "imagePullPolicy": "IfNotPresent",
    }
    sidecar = {
        "name": "proxy", "image": "registry.example.internal/envoy:1.28.0", "args": ["--config", "/etc/envoy/envoy.yaml"],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/envoy"}],
    }
    spec = {
        "containers": [container, sidecar],
        "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}}, {"name": "tmp", "emptyDir": {}}],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {"app": app, "pod-template-hash": "5d8f7c9b6d", "team": f"team-{i % 6}", LABEL: fleet},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                            "kubectl.kubernetes.io/restartedAt": "2026-11-20T06:00:00Z"},
        },
        "spec": spec,
    }


def kind_of(i):
    """The health of pod i: about 40 % unhealthy in the ways the checks know."""
    b = i % 100
    if b < 10:
        return "crashloop"
    if b < 18:
        return "imagepull"
    if b < 26:
        return "restarts"
    if b < 33:
        return "pending"
    if b < 40:
        return "evicted"
    return "healthy"


def pod_status(kind, i, now):
    started = iso(now - dt.timedelta(hours=3, minutes=i % 50))
    cond = lambda t, s="True", **kw: {"type": t, "status": s, "lastTransitionTime": started, **kw}
    ready_conds = [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")]
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

    def cs(name, image, ready=True, restarts=0, state=None, last=None):
        return {"name": name, "image": image, "imageID": f"docker-pullable://{image}@sha256:{'ab' * 32}",
                "containerID": f"containerd://{'%064x' % (i * 7919 + len(name))}", "ready": ready,
                "started": ready, "restartCount": restarts,
                "state": state or {"running": {"startedAt": started}}, "lastState": last or {}}

    app_img = f"registry.example.internal/svc-{i % 40:02d}:1.{i % 9}.{i % 13}"
    proxy = cs("proxy", "registry.example.internal/envoy:1.28.0")
    base = {"hostIP": "192.168.10.%d" % (i % 250), "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
            "qosClass": "Burstable"}
    if kind == "healthy":
        return {**base, "phase": "Running", "conditions": ready_conds, "containerStatuses": [cs("app", app_img), proxy]}
    if kind == "crashloop":
        st = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=app"}}
        last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}}
        return {**base, "phase": "Running",
                "conditions": [cond("Initialized"), cond("Ready", "False", reason="ContainersNotReady"),
                               cond("ContainersReady", "False"), cond("PodScheduled")],
                "containerStatuses": [cs("app", app_img, False, 12 + i % 30, st, last), proxy]}
    if kind == "imagepull":
        st = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{app_img}"'}}
        return {**base, "phase": "Pending",
                "conditions": [cond("Initialized"), cond("Ready", "False"), cond("PodScheduled")],
                "containerStatuses": [cs("app", app_img, False, 0, st), proxy]}
    if kind == "restarts":
        last = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": started, "finishedAt": started}}
        return {**base, "phase": "Running", "conditions": ready_conds,
                "containerStatuses": [cs("app", app_img, True, 6 + i % 20, None, last), proxy]}
    if kind == "pending":
        return {"phase": "Pending", "startTime": iso(now - dt.timedelta(hours=2)), "qosClass": "Burstable",
                "conditions": [cond("PodScheduled", "False", reason="Unschedulable",
                                    message="0/120 nodes are available: 120 Insufficient cpu.")]}
    if kind == "evicted":
        return {"phase": "Failed", "reason": "Evicted", "startTime": started,
                "message": "The node was low on resource: memory. Container app was using 600Mi, which exceeds its request of 128Mi."}
    raise ValueError(kind)


def event_body(fleet, ns, pod, i, now, warning):
    t = iso(now - dt.timedelta(minutes=i % 20, seconds=i % 60))
    reason, msg = [("BackOff", "Back-off restarting failed container app"),
                   ("Failed", "Error: ImagePullBackOff"),
                   ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                   ("FailedScheduling", "0/120 nodes are available: 120 Insufficient cpu.")][i % 4] if warning else \
        [("Pulled", "Container image already present on machine"), ("Started", "Started container app")][i % 2]
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{pod}.{i:x}{'w' if warning else 'n'}", "namespace": ns, "labels": {LABEL: fleet}},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": reason, "message": msg, "type": "Warning" if warning else "Normal",
        "source": {"component": "kubelet", "host": "node"}, "count": 1 + i % 9,
        "firstTimestamp": t, "lastTimestamp": t, "reportingComponent": "kubelet",
    }


def node_body(fleet, name, j):
    spec = {"unschedulable": True} if j % 20 == 3 else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {LABEL: fleet,
            "kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "m5.2xlarge"}}, "spec": spec}


def node_status(j, now):
    t = iso(now - dt.timedelta(days=3))
    c = lambda typ, st, reason: {"type": typ, "status": st, "reason": reason, "message": reason,
                                 "lastHeartbeatTime": iso(now), "lastTransitionTime": t}
    ready = c("Ready", "False", "KubeletNotReady") if j % 20 == 1 else c("Ready", "True", "KubeletReady")
    mem = c("MemoryPressure", "True" if j % 20 == 2 else "False", "KubeletHasSufficientMemory")
    return {"conditions": [mem, c("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                           c("PIDPressure", "False", "KubeletHasSufficientPID"), ready],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "7910m", "memory": "31Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.20.2", "osImage": "Bottlerocket", "kernelVersion": "5.10",
                         "containerRuntimeVersion": "containerd://1.6", "architecture": "amd64",
                         "operatingSystem": "linux", "machineID": "m", "systemUUID": "u", "bootID": "b",
                         "kubeProxyVersion": "v1.20.2"}}


def plant_kubernetes(kube, fleet, pods, log):
    now = now_utc()
    n_ns = max(5, pods // 200)
    n_nodes = max(5, pods // 100)
    namespaces = [f"bench-{fleet}-{k:03d}" for k in range(n_ns)]
    nodes = [f"bench-{fleet}-node-{j:03d}" for j in range(n_nodes)]
    t0 = time.monotonic()
    run_all(lambda ns: kube.call("POST", "/api/v1/namespaces",
                                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LABEL: fleet}}}),
            namespaces)

    def mk_node(j):
        kube.call("POST", "/api/v1/nodes", node_body(fleet, nodes[j], j))
        kube.call("PATCH", f"/api/v1/nodes/{nodes[j]}/status", {"status": node_status(j, now)},
                  ctype="application/merge-patch+json")
    run_all(mk_node, range(n_nodes))

    def mk_pod(i):
        ns = namespaces[i % n_ns]
        name = f"app-{i:06d}"
        kind = kind_of(i)
        node = None if kind == "pending" else nodes[i % n_nodes]
        kube.call("POST", f"/api/v1/namespaces/{ns}/pods", pod_body(fleet, ns, name, i, node))
        kube.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": pod_status(kind, i, now)},
                  ctype="application/merge-patch+json")
    run_all(mk_pod, range(pods))
    warn, normal = pods // 5, pods // 10

    def mk_event(k):
        warning = k < warn
        i = (k * 37) % pods
        ns = namespaces[i % n_ns]
        kube.call("POST", f"/api/v1/namespaces/{ns}/events", event_body(fleet, ns, f"app-{i:06d}", k, now, warning))
    run_all(mk_event, range(warn + normal))
    secs = time.monotonic() - t0
    log(f"planted {pods} pods in {n_ns} namespaces, {warn} warning + {normal} normal events, {n_nodes} nodes "
        f"in {secs:.1f}s ({(2 * pods + warn + normal + 2 * n_nodes) / secs:.0f} requests/s)")
    return {"pods": pods, "namespaces": namespaces, "nodes": n_nodes, "warningEvents": warn, "normalEvents": normal,
            "plantSeconds": round(secs, 2)}


def clean_kubernetes(kube, fleet=None, log=print):
    sel = f"{LABEL}={fleet}" if fleet else LABEL
    t0 = time.monotonic()
    nss = [n["metadata"]["name"] for n in kube.call("GET", "/api/v1/namespaces", params={"labelSelector": sel})["items"]]

    def wipe(ns):
        kube.call("DELETE", f"/apis/morningcheck.io/v1alpha1/namespaces/{ns}/morningchecks", ok=(200, 404))
        for res in ("pods", "events"):
            kube.call("DELETE", f"/api/v1/namespaces/{ns}/{res}", {"kind": "DeleteOptions", "apiVersion": "v1",
                      "gracePeriodSeconds": 0}, params={"gracePeriodSeconds": "0"})
        kube.call("DELETE", f"/api/v1/namespaces/{ns}", ok=(200, 202, 404, 409))
        # No namespace controller runs here: finalize the (now empty) namespace ourselves.
        for _ in range(5):
            obj = kube.call("GET", f"/api/v1/namespaces/{ns}", ok=(200, 404))
            if not obj or "status" not in obj:
                return
            obj["spec"] = {"finalizers": []}
            try:
                kube.call("PUT", f"/api/v1/namespaces/{ns}/finalize", obj, ok=(200, 201, 404))
                return
            except RuntimeError:
                time.sleep(0.5)
    run_all(wipe, nss, workers=8)
    kube.call("DELETE", "/api/v1/nodes", params={"labelSelector": sel})
    log(f"removed {len(nss)} namespaces and the nodes of {fleet or 'every fleet'} in {time.monotonic() - t0:.1f}s")


# --- EC2 in moto -----------------------------------------------------------------------------

def ec2_client(env, region):
    import boto3
    return boto3.client("ec2", region_name=region, endpoint_url=env["MC_MOTO_URL"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def free_regions(env, n=2):
    found = []
    for r in REGION_POOL:
        if not ec2_client(env, r).describe_instances(MaxResults=5).get("Reservations"):
            found.append(r)
            if len(found) == n:
                return found
    raise RuntimeError("no empty moto region left in the pool: restart moto (tests/env) when nobody else works")


def plant_ec2(env, fleet, instances, log):
    t0 = time.monotonic()
    regions = free_regions(env)
    per_region = [instances // 2 + instances % 2, instances // 2]
    jobs = []
    for region, n in zip(regions, per_region):
        k, left = 0, n
        while left > 0:  # reservations of 1 to 8 instances
            size = min(left, 1 + (k * 5) % 8)
            jobs.append((region, size, k))
            left -= size
            k += 1
    ids = {r: [] for r in regions}
    lock = threading.Lock()

    def launch(job):
        region, size, k = job
        c = ec2_client(env, region)
        res = c.run_instances(ImageId="ami-12c6146b", InstanceType=["t3.micro", "m5.large", "c5.xlarge"][k % 3],
                              MinCount=size, MaxCount=size,
                              TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                  {"Key": LABEL, "Value": fleet}, {"Key": "Name", "Value": f"bench-{k}"},
                                  {"Key": "team", "Value": f"team-{k % 6}"}]}])
        with lock:
            ids[region].extend(i["InstanceId"] for i in res["Instances"])
    run_all(launch, jobs, workers=8)
    stopped = 0
    for region in regions:
        some = ids[region][::10]  # 10 % stopped
        for chunk in range(0, len(some), 500):
            ec2_client(env, region).stop_instances(InstanceIds=some[chunk:chunk + 500])
        stopped += len(some)
    secs = time.monotonic() - t0
    log(f"planted {instances} EC2 instances in {len(jobs)} reservations in {regions} ({stopped} stopped) in {secs:.1f}s")
    return {"instances": instances, "regions": regions, "reservations": len(jobs), "stopped": stopped,
            "plantSeconds": round(secs, 2)}


def clean_ec2(env, fleet=None, regions=None, log=print):
    t0 = time.monotonic()
    n = 0
    for region in regions or REGION_POOL:
        c = ec2_client(env, region)
        filters = [{"Name": f"tag:{LABEL}", "Values": [fleet]}] if fleet else [{"Name": "tag-key", "Values": [LABEL]}]
        filters.append({"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]})
        ids = [i["InstanceId"] for page in c.get_paginator("describe_instances").paginate(Filters=filters)
               for r in page["Reservations"] for i in r["Instances"]]
        for chunk in range(0, len(ids), 500):
            c.terminate_instances(InstanceIds=ids[chunk:chunk + 500])
        n += len(ids)
    log(f"terminated {n} EC2 instances of {fleet or 'every fleet'} in {time.monotonic() - t0:.1f}s")


# --- the bench kubeconfig ------------------------------------------------------------------

def write_kubeconfig(env, path, contexts=("bench-1", "bench-2", "bench-3")):
    """Three contexts, all on the one test apiserver with the admin token: the lesson's
    'three clusters', each seeing the whole fleet."""
    with open(env["MC_KUBE_CA"], "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    lines = ["apiVersion: v1", "kind: Config", "clusters:"]
    for c in contexts:
        lines += [f"- name: {c}", "  cluster:", f"    server: {env['MC_KUBE_SERVER']}", f"    certificate-authority-data: {ca}"]
    lines += ["users:", "- name: bench-admin", f"  user: {{token: {env['MC_ADMIN_TOKEN']}}}", "contexts:"]
    for c in contexts:
        lines += [f"- name: {c}", f"  context: {{cluster: {c}, user: bench-admin}}"]
    lines += [f"current-context: {contexts[0]}", ""]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, 0o600)
    return list(contexts)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("plant")
    pl.add_argument("--pods", type=int, default=1000)
    pl.add_argument("--instances", type=int, default=100)
    pl.add_argument("--fleet", default=None)
    cl = sub.add_parser("clean")
    cl.add_argument("--fleet")
    cl.add_argument("--all", action="store_true")
    a = p.parse_args()
    env = load_env()
    kube = Kube(env)
    log = lambda m: print(f"[plant] {m}", file=sys.stderr, flush=True)
    if a.cmd == "plant":
        fleet = a.fleet or "%06x" % random.getrandbits(24)
        out = {"fleet": fleet, "kubernetes": plant_kubernetes(kube, fleet, a.pods, log),
               "ec2": plant_ec2(env, fleet, a.instances, log)}
        print(json.dumps(out, indent=1))
    else:
        if not (a.fleet or a.all):
            p.error("clean needs --fleet ID or --all")
        clean_kubernetes(kube, None if a.all else a.fleet, log)
        clean_ec2(env, None if a.all else a.fleet, None, log)


if __name__ == "__main__":
    main()
