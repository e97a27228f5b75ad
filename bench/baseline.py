#!/usr/bin/env python3
"""The baseline: the lesson's Part 12 morning check ("Python: Automating Everything"),
written for the harness with the lesson's own libraries and patterns, and nothing more:

- a requests Session with urllib3 Retry (Part 1) for Prometheus: /api/v1/alerts and the
  instant queries (Part 6; the three PromQL of the operator's presets);
- the kubernetes client (Part 5): per kubeconfig context, load_kube_config(context=...),
  list_pod_for_all_namespaces() and list_event_for_all_namespaces(), judged as in
  get_unhealthy_pods() and get_recent_warnings();
- boto3 (Part 7): the describe_instances paginator per region, and
  describe_instance_status (paginated) for impaired instances;
- sequential, as in the lesson (Exercise 4's threads are not done), JSON output.

Pointed at the harness's peers: --kubeconfig with the bench contexts, moto through
endpoint_url with dummy static credentials, and the fleet's tag as the only instance filter.

The harness reads the `_bench` key it adds: HTTP requests made, counted per peer in a hook
on urllib3 (which requests, the kubernetes client and botocore all use), and each area's time.
"""
import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import boto3
import requests
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# --- counting (the harness's addition) -------------------------------------------------------
REQUESTS = {}
_orig_make_request = urllib3.connectionpool.HTTPConnectionPool._make_request


def _counting_make_request(self, conn, method, url, *args, **kwargs):
    key = f"{self.host}:{self.port}"
    REQUESTS[key] = REQUESTS.get(key, 0) + 1
    return _orig_make_request(self, conn, method, url, *args, **kwargs)


urllib3.connectionpool.HTTPConnectionPool._make_request = _counting_make_request


# --- Part 1 ---------------------------------------------------------------------------------
def get_session(retries=3, backoff_factor=0.5, timeout=10):
    """Create a requests session with automatic retries."""
    session = requests.Session()
    retry = Retry(
        total=retries,
        backoff_factor=backoff_factor,
        status_forcelist=[500, 502, 503, 504],
        allowed_methods=["GET", "HEAD"],
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- Part 10 --------------------------------------------------------------------------------
def setup_logging(verbosity=0):
    levels = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.setLevel(levels.get(verbosity, logging.DEBUG))
    root.addHandler(handler)
    for noisy in ("urllib3", "kubernetes", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger("morning-check")


# --- Part 5 ---------------------------------------------------------------------------------
def get_unhealthy_pods():
    """Find pods that aren't running happily (across all namespaces)."""
    v1 = k8s_client.CoreV1Api()
    pods = v1.list_pod_for_all_namespaces()
    unhealthy = []
    for pod in pods.items:
        issues = []
        if pod.status.phase not in ("Running", "Succeeded"):
            issues.append(f"phase={pod.status.phase}")
        if pod.status.container_statuses:
            for cs in pod.status.container_statuses:
                if cs.restart_count > 5:
                    issues.append(f"{cs.name}: {cs.restart_count} restarts")
                if cs.state.waiting:
                    issues.append(f"{cs.name}: waiting ({cs.state.waiting.reason})")
        if issues:
            unhealthy.append({"name": pod.metadata.name, "namespace": pod.metadata.namespace, "issues": issues})
    return unhealthy, len(pods.items)


def get_recent_warnings(minutes=30):
    """Get warning events from the last N minutes."""
    v1 = k8s_client.CoreV1Api()
    events = v1.list_event_for_all_namespaces()
    cutoff = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    warnings = []
    for event in events.items:
        if event.type != "Warning":
            continue
        event_time = event.last_timestamp or event.event_time
        if event_time and event_time.replace(tzinfo=timezone.utc) > cutoff:
            warnings.append({
                "namespace": event.metadata.namespace,
                "object": event.involved_object.name,
                "reason": event.reason,
                "message": event.message,
                "count": event.count or 1,
            })
    return warnings, len(events.items)


# --- Part 6 ---------------------------------------------------------------------------------
def query_prometheus(session, prom_url, query, timeout=10):
    response = session.get(f"{prom_url}/api/v1/query", params={"query": query}, timeout=timeout)
    response.raise_for_status()
    data = response.json()
    if data["status"] != "success":
        raise RuntimeError(f"Prometheus query failed: {data.get('error', 'unknown')}")
    return data["data"]["result"]


def get_firing_alerts(session, prom_url):
    response = session.get(f"{prom_url}/api/v1/alerts", timeout=10)
    response.raise_for_status()
    data = response.json()
    firing = []
    for alert in data["data"]["alerts"]:
        if alert["state"] == "firing":
            firing.append({
                "name": alert["labels"]["alertname"],
                "severity": alert["labels"].get("severity", "unknown"),
                "summary": alert["annotations"].get("summary", ""),
                "since": alert["activeAt"],
            })
    return firing


QUERIES = {  # the operator's presets
    "hot_nodes": '100 - (avg by(instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100) > 80',
    "filling_disks": 'predict_linear(node_filesystem_free_bytes{fstype!~"tmpfs|overlay"}[6h], 24*3600) < 0',
    "http_5xx": 'sum by(service) (rate(http_requests_total{status=~"5.."}[5m])) > 0.1',
}


# --- Part 7 ---------------------------------------------------------------------------------
def get_instance_summary(region, endpoint_url, tag):
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    paginator = ec2.get_paginator("describe_instances")
    summary = {"running": 0, "stopped": 0, "terminated": 0, "other": 0}
    problems = []
    for page in paginator.paginate(Filters=[{"Name": f"tag:{tag[0]}", "Values": [tag[1]]}]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                state = instance["State"]["Name"]
                summary[state] = summary.get(state, 0) + 1
    statuses = ec2.get_paginator("describe_instance_status")
    for page in statuses.paginate(Filters=[{"Name": "instance-status.status", "Values": ["impaired"]}]):
        for status in page.get("InstanceStatuses", []):
            problems.append({
                "instance_id": status["InstanceId"],
                "status": status["InstanceStatus"]["Status"],
                "system": status["SystemStatus"]["Status"],
            })
    return summary, problems


# --- Part 12 --------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description="Morning infrastructure health check (the lesson's baseline)")
    parser.add_argument("--cluster", "-c", action="append", help="K8s context (repeatable)")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--region", "-r", action="append", help="AWS region (repeatable)")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--tag", default="morningcheck-bench=none", help="KEY=VALUE instance filter")
    parser.add_argument("--prometheus-url", default=os.environ.get("PROMETHEUS_URL", "http://prometheus.internal:9090"))
    parser.add_argument("--areas", default="kubernetes,prometheus,aws")
    parser.add_argument("--verbose", "-v", action="count", default=0)
    args = parser.parse_args()
    areas = set(args.areas.split(","))
    log = setup_logging(args.verbose)
    session = get_session()
    clusters = args.cluster or ["prod-us-east-1"]
    regions = args.region or ["us-east-1"]
    results = {"timestamp": datetime.now(timezone.utc).isoformat(), "kubernetes": [], "prometheus": {}, "aws": []}
    seconds = {}

    t = time.monotonic()
    if "kubernetes" in areas:
        for cluster in clusters:
            log.info("Checking K8s cluster: %s", cluster)
            try:
                k8s_config.load_kube_config(config_file=args.kubeconfig, context=cluster)
                unhealthy, pods = get_unhealthy_pods()
                warnings, events = get_recent_warnings()
                results["kubernetes"].append({"cluster": cluster, "pods": pods, "events": events,
                                              "unhealthy": unhealthy, "warnings": warnings})
            except Exception as e:
                results["kubernetes"].append({"cluster": cluster, "error": str(e)})
        seconds["kubernetes"] = time.monotonic() - t

    t = time.monotonic()
    if "prometheus" in areas:
        log.info("Checking Prometheus")
        results["prometheus"] = {"firing_alerts": get_firing_alerts(session, args.prometheus_url)}
        for name, q in QUERIES.items():
            results["prometheus"][name] = query_prometheus(session, args.prometheus_url, q)
        seconds["prometheus"] = time.monotonic() - t

    t = time.monotonic()
    if "aws" in areas:
        tag = tuple(args.tag.split("=", 1))
        for region in regions:
            log.info("Checking AWS %s", region)
            summary, problems = get_instance_summary(region, args.endpoint_url, tag)
            results["aws"].append({"region": region, "summary": summary, "problems": problems})
        seconds["aws"] = time.monotonic() - t

    results["_bench"] = {"requests": REQUESTS, "seconds": seconds}
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
