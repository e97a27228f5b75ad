#!/usr/bin/env python3
"""The benchmark harness of issue 10 (run it through bench/run.sh).

For each fleet size: plants the fleet (bench/plant.py), then measures, each at least
--repeats times in rotating order,
  morningcheck  `morningcheck run -o json` with the fleet's manifest (3 contexts, Prometheus
                with the three presets, EC2 in the fleet's two regions)
  baseline      bench/baseline.py, the lesson's Part 12 check
  floor         bench/floor.sh, the same API calls by curl, concurrently, no processing
for the whole run and for each area alone (a manifest / flag with only that area), and
  controller    one run of a MorningCheck with the same targets, triggered by the run-now
                annotation, on a `morningcheck controller` started here
recording wall time, peak RSS, CPU time (user+sys) and API requests. Then the controller
side: N MorningChecks in one namespace, idle RSS once all are reconciled, and the time for a
run-now of all of them at once to finish under --max-concurrent-runs.

Writes bench/results/latest.json, prints the table and draws docs/benchmarks.png.
"""
import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import plant  # noqa: E402

CACHE = os.environ.get("MORNINGCHECK_CACHE", os.path.expanduser("~/.cache/morningcheck"))
BIN = os.path.join(REPO, "target", "release", "morningcheck")
SIZES = {"tiny": [(300, 20)], "10k": [(10000, 1000)], "flat": [(5000, 1000), (50000, 5000)], "small": [(1000, 100), (5000, 1000)], "full": [(1000, 100), (10000, 1000), (50000, 5000)]}
AREAS = ["kubernetes", "prometheus", "aws"]
CONTEXTS = ["bench-1", "bench-2", "bench-3"]
MC_API = "/apis/morningcheck.io/v1alpha1"
RUN_NOW = "morningcheck.io/run-now"


def log(msg):
    print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- measuring one process ---------------------------------------------------------------

def measure(cmd, env, timeout=1200):
    """Runs cmd under GNU time -v; polls the RSS of its whole process tree every 20 ms."""
    fd, tfile = tempfile.mkstemp(prefix="mc-bench-time.")
    os.close(fd)
    t0 = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-v", "-o", tfile] + cmd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    peak_tree = 0
    stop = threading.Event()

    def poll():
        nonlocal peak_tree
        try:
            root = psutil.Process(p.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            for q in procs:
                try:
                    if q.name() != "time":
                        total += q.memory_info().rss
                except psutil.Error:
                    pass
            peak_tree = max(peak_tree, total)
            stop.wait(0.02)
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    with open(tfile) as f:
        tv = f.read()
    os.unlink(tfile)
    field = lambda name: float(re.search(rf"{re.escape(name)}: ([0-9.]+)", tv).group(1))
    return {
        "wall": wall,
        "cpu": field("User time (seconds)") + field("System time (seconds)"),
        "maxrssMiB": field("Maximum resident set size (kbytes)") / 1024,  # largest single process
        "treeRssMiB": peak_tree / 2**20,  # sum over the process tree (the floor runs many curls)
        "rc": p.returncode, "stdout": out, "stderr": err[-2000:],
    }


# --- contenders --------------------------------------------------------------------------------

def manifest(fleet, env, areas, name="bench", namespace="default", contexts=True, schedule="@daily"):
    t = {}
    if "kubernetes" in areas:
        t["kubernetes"] = [dict({"name": f"c{i + 1}"}, **({"context": c} if contexts else {}))
                           for i, c in enumerate(CONTEXTS)]
    if "prometheus" in areas:
        t["prometheus"] = [{"name": "prom", "url": env["MC_PROMETHEUS_URL"], "queries": [
            {"name": "hot-nodes", "preset": "hot-nodes"}, {"name": "disks-filling", "preset": "disks-filling"},
            {"name": "http-5xx", "preset": "http-5xx"}]}]
    if "aws" in areas:
        t["aws"] = [{"name": "ec2", "regions": fleet["ec2"]["regions"], "endpointUrl": env["MC_MOTO_URL"],
                     "tags": {plant.LABEL: fleet["fleet"]}}]
    return {"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"schedule": schedule, "timeoutSeconds": 900, "targets": t}}


def report_requests(targets):
    """API requests of a morningcheck report, from its facts."""
    n = {a: 0 for a in AREAS}
    for t in targets:
        f = t.get("facts") or {}
        area = t.get("area", "").lower()
        if any(k.endswith("ListRequests") for k in f):
            n["kubernetes"] += sum(v for k, v in f.items() if k.endswith("ListRequests"))
        elif "alertsFiring" in f or "queries" in f:
            n["prometheus"] += (1 if "alertsFiring" in f else 0) + f.get("queries", 0)
        elif "describeInstancesPages" in f or area == "aws":
            n["aws"] += f.get("describeInstancesPages", 0) + f.get("describeInstanceStatusPages", 0)
    return n


def check_report(rep, what):
    bad = [f"{t['name']}: {t.get('errors')}" for t in rep.get("targets", []) if t.get("errors")]
    if bad:
        log(f"WARNING {what}: target errors {bad}")


class Contenders:
    def __init__(self, env, fleet, workdir):
        self.env, self.fleet, self.workdir = env, fleet, workdir
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.base_env = dict(os.environ, KUBECONFIG=self.kubeconfig, **plant.AWS_ENV)
        self.manifests = {}
        for scope in ["all"] + AREAS:
            path = os.path.join(workdir, f"check-{fleet['fleet']}-{scope}.json")
            with open(path, "w") as f:
                json.dump(manifest(fleet, env, AREAS if scope == "all" else [scope]), f)
            self.manifests[scope] = path

    def morningcheck(self, scope):
        r = measure([BIN, "run", "-f", self.manifests[scope], "-o", "json", "-q"], self.base_env)
        rep = json.loads(r["stdout"])
        check_report(rep, f"morningcheck {scope}")
        r["requests"] = report_requests(rep["targets"])
        r["facts"] = {t["name"]: t.get("facts") for t in rep["targets"]}
        r["reportSeconds"] = rep.get("durationSeconds")
        return r

    def baseline(self, scope):
        e = self.env
        cmd = [sys.executable, os.path.join(HERE, "baseline.py"), "--kubeconfig", self.kubeconfig,
               "--prometheus-url", e["MC_PROMETHEUS_URL"], "--endpoint-url", e["MC_MOTO_URL"],
               "--tag", f"{plant.LABEL}={self.fleet['fleet']}", "--areas", ",".join(AREAS if scope == "all" else [scope])]
        for c in CONTEXTS:
            cmd += ["-c", c]
        for reg in self.fleet["ec2"]["regions"]:
            cmd += ["-r", reg]
        r = measure(cmd, self.base_env)
        if r["rc"] != 0:
            raise RuntimeError(f"baseline failed: {r['stderr']}")
        out = json.loads(r["stdout"])
        port = lambda url: url.rstrip("/").rsplit(":", 1)[1]
        ports = {port(e["MC_KUBE_SERVER"]): "kubernetes", port(e["MC_PROMETHEUS_URL"]): "prometheus",
                 port(e["MC_MOTO_URL"]): "aws"}
        r["requests"] = {a: 0 for a in AREAS}
        for hostport, n in out["_bench"]["requests"].items():
            area = ports.get(hostport.rsplit(":", 1)[1])
            if area:
                r["requests"][area] += n
        r["areaSeconds"] = out["_bench"]["seconds"]
        return r

    def floor(self, scope):
        e = self.env
        fenv = dict(self.base_env, FLOOR_AREAS=" ".join(AREAS if scope == "all" else [scope]),
                    FLOOR_CONTEXTS=str(len(CONTEXTS)), FLOOR_KUBE_SERVER=e["MC_KUBE_SERVER"],
                    FLOOR_TOKEN=e["MC_ADMIN_TOKEN"], FLOOR_CA=e["MC_KUBE_CA"], FLOOR_PROM=e["MC_PROMETHEUS_URL"],
                    FLOOR_MOTO=e["MC_MOTO_URL"], FLOOR_REGIONS=" ".join(self.fleet["ec2"]["regions"]),
                    FLOOR_TAG=f"{plant.LABEL}={self.fleet['fleet']}")
        r = measure(["bash", os.path.join(HERE, "floor.sh")], fenv)
        r["requests"] = {a: 0 for a in AREAS}
        for line in r["stdout"].splitlines():
            _, area, n = line.split()
            r["requests"][area] = int(n)
        if "failed" in r["stderr"]:
            log(f"WARNING floor: {r['stderr'][:300]}")
        return r


# --- the controller ----------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ensure_crd(kube, env):
    if kube.call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/morningchecks.morningcheck.io",
                 ok=(200, 404)) is not None:
        return
    crd = subprocess.run([BIN, "crd"], capture_output=True, text=True, check=True).stdout
    subprocess.run(["kubectl", "--kubeconfig", env["MC_KUBECONFIG"], "--context", "admin", "apply", "-f", "-"],
                   input=crd, text=True, check=True, capture_output=True)
    time.sleep(2)


class Controller:
    def __init__(self, kubeconfig, namespace, max_runs=10):
        self.port = free_port()
        env = dict(os.environ, KUBECONFIG=kubeconfig, **plant.AWS_ENV)
        self.logf = open(os.path.join(os.path.dirname(kubeconfig), f"controller-{namespace}.log"), "w")
        self.p = subprocess.Popen([BIN, "controller", "--watch-namespace", namespace, "--metrics-addr",
                                   f"127.0.0.1:{self.port}", "--log-level", "warn",
                                   "--max-concurrent-runs", str(max_runs)],
                                  env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        self.proc = psutil.Process(self.p.pid)
        import urllib.request
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status == 200:
                    return
            except Exception:
                pass
            if self.p.poll() is not None:
                raise RuntimeError("controller exited at start")
            time.sleep(0.1)
        raise RuntimeError("controller not ready after 30 s")

    def cpu(self):
        t = self.proc.cpu_times()
        return t.user + t.system

    def status_kib(self, key):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.logf.close()


def mc_path(ns, name=""):
    return f"{MC_API}/namespaces/{ns}/morningchecks" + (f"/{name}" if name else "")


def annotate(kube, ns, name, token):
    kube.call("PATCH", mc_path(ns, name), {"metadata": {"annotations": {RUN_NOW: token}}},
              ctype="application/merge-patch+json")


def run_done(mc, token):
    st = mc.get("status") or {}
    return st.get("lastRunNowToken") == token and not st.get("activeRun") and (st.get("lastRun") or {}).get(
        "runId", "").endswith(token)


def controller_runs(kube, env, fleet, workdir, repeats):
    ns = f"bench-{fleet['fleet']}-ctl"
    ensure_crd(kube, env)
    kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns, "labels": {plant.LABEL: fleet["fleet"]}}})
    kube.call("POST", mc_path(ns), manifest(fleet, env, AREAS, name="fleet", namespace=ns, contexts=False,
                                           schedule="0 0 1 1 *"))
    ctl = Controller(os.path.join(workdir, "kubeconfig"), ns)
    runs = []
    try:
        for _ in range(100):
            mc = kube.call("GET", mc_path(ns, "fleet"))
            if (mc.get("status") or {}).get("conditions"):
                break
            time.sleep(0.1)
        time.sleep(1)
        idle = ctl.status_kib("VmRSS") / 1024
        for k in range(repeats):
            token = f"bench{k}{random.getrandbits(20):05x}"
            cpu0, t0 = ctl.cpu(), time.monotonic()
            annotate(kube, ns, "fleet", token)
            while True:
                mc = kube.call("GET", mc_path(ns, "fleet"))
                if run_done(mc, token):
                    break
                if time.monotonic() - t0 > 900:
                    raise RuntimeError("controller run did not finish in 900 s")
                time.sleep(0.05)
            wall = time.monotonic() - t0
            last = mc["status"]["lastRun"]
            errs = [t["name"] for t in last.get("targets", []) if t.get("errors")]
            if errs:
                log(f"WARNING controller run: target errors in {errs}")
            runs.append({"wall": wall, "cpu": ctl.cpu() - cpu0, "maxrssMiB": ctl.status_kib("VmHWM") / 1024,
                         "treeRssMiB": ctl.status_kib("VmHWM") / 1024, "idleRssMiB": idle,
                         "reportSeconds": last.get("durationSeconds"), "requests": report_requests(last.get("targets", [])),
                         "result": last.get("result")})
    finally:
        ctl.stop()
    return runs


def controller_many(kube, env, workdir, count, max_runs):
    """N MorningChecks in one namespace: idle RSS once reconciled, then run-now on all at once."""
    fleet_id = "ctlmany%04x" % random.getrandbits(16)
    ensure_crd(kube, env)
    ns = f"bench-{fleet_id}"
    kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns, "labels": {plant.LABEL: fleet_id}}})
    body = lambda i: {"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
                      "metadata": {"name": f"mc-{i:04d}", "namespace": ns},
                      "spec": {"schedule": "0 0 1 1 *", "timeoutSeconds": 120, "targets": {
                          "kubernetes": [{"name": "own-namespace", "namespaces": {"include": [ns]}}],
                          "prometheus": [{"name": "prom", "url": env["MC_PROMETHEUS_URL"],
                                          "queries": [{"name": "hot-nodes", "preset": "hot-nodes"}]}]}}}
    t0 = time.monotonic()
    plant.run_all(lambda i: kube.call("POST", mc_path(ns), body(i)), range(count))
    created = time.monotonic() - t0

    def all_mcs():
        items, cont = [], None
        while True:
            params = {"limit": "500", **({"continue": cont} if cont else {})}
            page = kube.call("GET", mc_path(ns), params=params)
            items += page["items"]
            cont = page["metadata"].get("continue")
            if not cont:
                return items

    ctl = Controller(os.path.join(workdir, "kubeconfig"), ns, max_runs)
    out = {"count": count, "maxConcurrentRuns": max_runs, "createSeconds": round(created, 2),
           "trigger": "run-now annotation on all MorningChecks at once (32 concurrent PATCHes)"}
    try:
        t0 = time.monotonic()
        while True:
            mcs = all_mcs()
            ready = sum(1 for m in mcs if any(c.get("type") == "Ready" and c.get("status") == "True"
                                                for c in (m.get("status") or {}).get("conditions", [])))
            if ready == count:
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"only {ready}/{count} MorningChecks reconciled after 600 s")
            time.sleep(0.5)
        out["reconcileAllSeconds"] = round(time.monotonic() - t0, 2)
        time.sleep(10)
        out["idleRssMiB"] = round(ctl.status_kib("VmRSS") / 1024, 1)
        out["idlePeakRssMiB"] = round(ctl.status_kib("VmHWM") / 1024, 1)
        token = f"many{random.getrandbits(20):05x}"
        cpu0, t0 = ctl.cpu(), time.monotonic()
        plant.run_all(lambda i: annotate(kube, ns, f"mc-{i:04d}", token), range(count))
        out["annotateSeconds"] = round(time.monotonic() - t0, 2)
        while True:
            mcs = all_mcs()
            done = [m for m in mcs if run_done(m, token)]
            if len(done) == count:
                break
            if time.monotonic() - t0 > 1200:
                raise RuntimeError(f"only {len(done)}/{count} runs finished after 1200 s")
            time.sleep(0.5)
        out["allRunsSeconds"] = round(time.monotonic() - t0, 2)
        out["cpuSeconds"] = round(ctl.cpu() - cpu0, 2)
        out["peakRssMiB"] = round(ctl.status_kib("VmHWM") / 1024, 1)
        out["rssAfterMiB"] = round(ctl.status_kib("VmRSS") / 1024, 1)
        durs = sorted((m["status"]["lastRun"].get("durationSeconds") or 0) for m in mcs)
        out["runSecondsMedian"] = round(statistics.median(durs), 3)
        out["runSecondsMax"] = round(durs[-1], 3)
        out["results"] = {r: sum(1 for m in mcs if m["status"]["lastRun"].get("result") == r)
                          for r in {m["status"]["lastRun"].get("result") for m in mcs}}
    finally:
        ctl.stop()
        plant.clean_kubernetes(kube, fleet_id, log)
    return out


# --- statistics, table, plot ---------------------------------------------------------------------

def summarize(runs):
    s = {"n": len(runs)}
    for k in ("wall", "cpu", "maxrssMiB", "treeRssMiB"):
        v = [r[k] for r in runs]
        s[k] = {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
    s["peakRssMiB"] = s["treeRssMiB"] if max(r["treeRssMiB"] for r in runs) > max(r["maxrssMiB"] for r in runs) \
        else s["maxrssMiB"]
    s["requests"] = runs[-1]["requests"]
    return s


def fmt(x, unit=""):
    return f"{x['median']:.2f}{unit} ({x['min']:.2f}–{x['max']:.2f})"


def rows(results):
    """(fleet, scope, contender, measurement, API requests) for every measurement, in table order."""
    for f in results["fleets"]:
        for scope in ["all"] + AREAS:
            for c in ("morningcheck", "controller", "baseline", "floor"):
                s = f["measurements"].get(c, {}).get(scope)
                if not s:
                    continue
                req = s["requests"] if scope == "all" else {scope: s["requests"].get(scope, 0)}
                yield f, scope, c, s, sum(req.values()) if isinstance(req, dict) else req


def table(results):
    lines = []
    hdr = f"{'fleet':<22} {'scope':<11} {'contender':<13} {'wall s median (min–max)':<26} {'peak RSS MiB':<24} {'CPU s':<22} requests"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for f, scope, c, s, req in rows(results):
        label = f"{f['pods']} pods/{f['instances']} EC2"
        lines.append(f"{label:<22} {scope:<11} {c:<13} {fmt(s['wall']):<26} {fmt(s['peakRssMiB']):<24} "
                     f"{fmt(s['cpu']):<22} {req}")
    return "\n".join(lines)


def markdown(results):
    """The table as Markdown, for docs/BENCHMARKS.md."""
    out = ["| fleet (pods per context ×3 / EC2) | scope | contender | wall s, median (min–max) | peak RSS MiB, median (min–max) | CPU s, median | API requests |",
           "|---|---|---|---|---|---|---|"]
    for f, scope, c, s, req in rows(results):
        label = f"{f['pods']:,} / {f['instances']:,}"
        w, m = s["wall"], s["peakRssMiB"]
        out.append(f"| {label} | {'whole run' if scope == 'all' else scope} | {c} | {w['median']:.2f} ({w['min']:.2f}–{w['max']:.2f}) "
                   f"| {m['median']:.0f} ({m['min']:.0f}–{m['max']:.0f}) | {s['cpu']['median']:.2f} | {req} |")
    return "\n".join(out)


def targets(results):
    """The issue's targets, as far as this run's sizes and contenders measure them."""
    try:
        return _targets(results)
    except KeyError as e:
        return {"incomplete": f"contender or scope {e} not measured in this run"}


def _targets(results):
    out = {}
    fl = results["fleets"]
    g = lambda f, c, s, k="wall": f["measurements"][c][s][k]["median"] if k == "wall" else \
        f["measurements"][c][s]["peakRssMiB"]["median"]
    big = fl[-1]
    out["wholeRunVsFloor"] = {f"{f['pods']}": round(g(f, "morningcheck", "all") / g(f, "floor", "all"), 2) for f in fl}
    out["kubernetesVsBaseline"] = {f"{f['pods']}": round(g(f, "baseline", "kubernetes") / g(f, "morningcheck", "kubernetes"), 1)
                                   for f in fl}
    out["kubernetesVsFloor"] = {f"{f['pods']}": round(g(f, "morningcheck", "kubernetes") / g(f, "floor", "kubernetes"), 2)
                                for f in fl}
    out["peakMemoryBaselineOverMorningcheck"] = {
        f"{f['pods']}": round(g(f, "baseline", "all", "rss") / g(f, "morningcheck", "all", "rss"), 1) for f in fl}
    out["peakMemoryGrowth"] = {"from": fl[0]["pods"], "to": big["pods"],
                               "ratio": round(g(big, "morningcheck", "all", "rss") / g(fl[0], "morningcheck", "all", "rss"), 2)}
    return out


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fl = results["fleets"]
    x = [f["pods"] for f in fl]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"morningcheck": ("tab:blue", "o"), "controller": ("tab:cyan", "v"), "baseline": ("tab:red", "s"),
              "floor": ("tab:gray", "^")}
    for ax, key, ylabel in ((axes[0], "wall", "wall time, s"), (axes[1], "peakRssMiB", "peak RSS, MiB")):
        for c, (color, marker) in styles.items():
            for scope, ls in (("all", "-"), ("kubernetes", ":")):
                # A contender may have been measured at some sizes only (no baseline at 50,000).
                pts = [(f["pods"], f["measurements"][c][scope]) for f in fl
                       if f["measurements"].get(c, {}).get(scope)]
                if not pts:
                    continue
                xs, s = [p for p, _ in pts], [v for _, v in pts]
                med = [v[key]["median"] for v in s]
                err = [[m - v[key]["min"] for m, v in zip(med, s)], [v[key]["max"] - m for m, v in zip(med, s)]]
                ax.errorbar(xs, med, yerr=err, color=color, marker=marker, linestyle=ls, capsize=3,
                            label=f"{c} ({'whole run' if scope == 'all' else 'Kubernetes only'})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pods per context (×3 contexts); EC2 instances: " + ", ".join(str(f["instances"]) for f in fl))
        ax.set_ylabel(ylabel)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{p:,}" for p in x])
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("Wall time (median, bars min–max)")
    axes[1].set_title("Peak RSS (median, bars min–max)")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(f"morningcheck benchmark ({results['sizes']} sizes, {results['started'][:16]} UTC)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as e:
            return str(e)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {"nproc": sh("nproc"), "cpu": cpu, "memory": sh("free -h | sed -n 2p"), "kernel": platform.release(),
            "loadavgAtStart": open("/proc/loadavg").read().split()[:3],
            "morningcheck": sh(f"{BIN} --version"), "commit": sh(f"git -C {REPO} describe --always --dirty"),
            "rustc": sh("rustc --version"), "python": platform.python_version(),
            "kube-apiserver": "1.20.2", "moto": "5.1.22", "prometheus": sh("prometheus --version 2>&1 | head -1"),
            "curl": sh("curl --version | head -1"),
            "testenv": os.environ.get("MORNINGCHECK_TESTENV", os.path.join(REPO, ".testenv")),
            "pythonPackages": sh(f"{sys.executable} -m pip freeze 2>/dev/null | grep -iE '^(requests|urllib3|kubernetes|boto3|botocore|matplotlib)=='").split("\n")}


def combine(paths):
    runs = [json.load(open(p)) for p in paths]
    fleets = {f["pods"]: f for r in runs for f in r["fleets"]}
    return {"started": max(r["started"] for r in runs), "sizes": "+".join(r["sizes"] for r in runs),
            "repeats": runs[-1]["repeats"], "machine": runs[-1]["machine"], "contexts": runs[-1]["contexts"],
            "fleets": [fleets[p] for p in sorted(fleets)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", choices=sorted(SIZES), default="small")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--many", type=int, default=1000, help="MorningChecks of the controller-side test (0: skip)")
    ap.add_argument("--max-concurrent-runs", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="leave the last fleet planted")
    ap.add_argument("--contenders", default="morningcheck,controller,baseline,floor",
                    help="comma-separated subset (the baseline takes ~10 min a run at 50,000 pods)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--plot", default=os.path.join(REPO, "docs", "benchmarks.png"))
    ap.add_argument("--report-only", action="store_true", help="print the table and redraw the plot of --out")
    ap.add_argument("--markdown", action="store_true", help="with --report-only: the table as Markdown, no plot")
    ap.add_argument("--combine", nargs="+", metavar="RESULTS",
                    help="with --report-only: the fleets of these result files as one (a later file's fleet of "
                         "the same size wins), for the plot across runs")
    a = ap.parse_args()
    if a.report_only:
        results = combine(a.combine) if a.combine else json.load(open(a.out))
        if a.markdown:
            print(markdown(results))
            return
        print(table(results))
        plot(results, a.plot)
        return
    env = plant.load_env()
    kube = plant.Kube(env)
    workdir = os.path.join(CACHE, "bench")
    os.makedirs(workdir, exist_ok=True)
    plant.write_kubeconfig(env, os.path.join(workdir, "kubeconfig"), CONTEXTS)
    ensure_crd(kube, env)
    results = {"started": dt.datetime.now(dt.timezone.utc).isoformat(), "sizes": a.sizes, "repeats": a.repeats,
               "machine": machine(), "contexts": "3 contexts, all on the one test apiserver with the admin token, "
               "each seeing the whole fleet", "fleets": []}
    log(f"machine: {results['machine']['nproc']} cores, {results['machine']['cpu']}, load {results['machine']['loadavgAtStart']}")
    for pods, instances in SIZES[a.sizes]:
        fleet_id = "%06x" % random.getrandbits(24)
        log(f"planting fleet {fleet_id}: {pods} pods, {instances} EC2 instances")
        fleet = {"fleet": fleet_id, "kubernetes": plant.plant_kubernetes(kube, fleet_id, pods, log),
                 "ec2": plant.plant_ec2(env, fleet_id, instances, log)}
        entry = {"pods": pods, "instances": instances, "fleet": fleet, "measurements": {}}
        try:
            c = Contenders(env, fleet, workdir)
            wanted = a.contenders.split(",")
            order = [n for n in ("morningcheck", "baseline", "floor") if n in wanted]
            raw = {name: {s: [] for s in ["all"] + AREAS} for name in order}
            for k in range(a.repeats):
                for scope in ["all"] + AREAS:
                    for name in order[k % len(order):] + order[:k % len(order)]:
                        r = getattr(c, name)(scope)
                        raw[name][scope].append({kk: v for kk, v in r.items() if kk not in ("stdout",)})
                        log(f"{pods} pods, repeat {k + 1}, {scope:<10} {name:<12} {r['wall']:7.2f} s "
                            f"{max(r['maxrssMiB'], r['treeRssMiB']):7.1f} MiB cpu {r['cpu']:6.2f} s req {r['requests']}")
            if "controller" in wanted:
                log("controller runs")
                ctl = controller_runs(kube, env, fleet, workdir, a.repeats)
                for r in ctl:
                    log(f"{pods} pods, controller run {r['wall']:.2f} s, peak {r['maxrssMiB']:.1f} MiB, idle {r['idleRssMiB']:.1f} MiB")
                raw["controller"] = {"all": ctl}
                entry["controllerIdleRssMiB"] = round(ctl[0]["idleRssMiB"], 1)
            entry["raw"] = raw
            entry["measurements"] = {n: {s: summarize(v) for s, v in d.items() if v} for n, d in raw.items()}
        finally:
            if not a.keep:
                plant.clean_kubernetes(kube, fleet_id, log)
                plant.clean_ec2(env, fleet_id, fleet["ec2"]["regions"], log)
        results["fleets"].append(entry)
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    if a.many:
        log(f"controller side: {a.many} MorningChecks")
        results["controllerMany"] = controller_many(kube, env, workdir, a.many, a.max_concurrent_runs)
        log(f"controller side: {results['controllerMany']}")
    results["targets"] = targets(results)
    results["finished"] = dt.datetime.now(dt.timezone.utc).isoformat()
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print(table(results))
    print(json.dumps({"targets": results["targets"], "controllerMany": results.get("controllerMany")}, indent=1))
    plot(results, a.plot)
    log(f"wrote {a.out} and {a.plot}")


if __name__ == "__main__":
    main()
