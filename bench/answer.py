#!/usr/bin/env python3
"""Peak memory of `morningcheck run` against one Prometheus whose instant query answers
with N MB of series, under several memory limits (MORNINGCHECK_MEMORY_LIMIT_BYTES).

    bench/answer.py [--binary PATH] [--mb 40] [--limits 256Mi,1Gi,4Gi]

A benchmark, not a test: it prints one row per limit (the query's outcome and the peak
RSS that GNU time reports) and writes bench/results/answer.json. It needs /usr/bin/time
(apt package `time`) and nothing else of the test environment.
"""
import argparse
import http.server
import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading

UNITS = {"Mi": 1 << 20, "Gi": 1 << 30}


def serve(megabytes):
    series = b'{"metric":{"__name__":"up","instance":"host-%08d"},"value":[1,"1"]},'
    count = megabytes * (1 << 20) // len(series % 0)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
                for i in range(count):
                    self.wfile.write(series % i)
                self.wfile.write(b'{"metric":{},"value":[1,"1"]}]}}')
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main():
    here = pathlib.Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=str(here.parent / "target/release/morningcheck"))
    p.add_argument("--mb", type=int, default=40)
    p.add_argument("--limits", default="256Mi,1Gi,4Gi")
    a = p.parse_args()
    port = serve(a.mb)
    spec = f"""apiVersion: morningcheck.io/v1alpha1
kind: MorningCheck
metadata: {{name: big, namespace: bench}}
spec:
  schedule: '0 7 * * *'
  timeoutSeconds: 300
  targets:
    prometheus:
    - name: big
      url: http://127.0.0.1:{port}
      readTimeoutSeconds: 300
      alerts: {{enabled: false}}
      queries: [{{name: up, query: up, warning: 2}}]
"""
    rows = []
    with tempfile.TemporaryDirectory() as d:
        f = pathlib.Path(d) / "big.yaml"
        f.write_text(spec)
        for limit in a.limits.split(","):
            n, unit = int(limit[:-2]), limit[-2:]
            env = dict(os.environ, MORNINGCHECK_MEMORY_LIMIT_BYTES=str(n * UNITS[unit]), NO_COLOR="1")
            out = subprocess.run(["/usr/bin/time", "-v", a.binary, "run", "-o", "json", "-f", str(f)],
                                 env=env, capture_output=True, text=True)
            rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
            target = json.loads(out.stdout)["targets"][0]
            errors = target.get("errors") or []
            outcome = errors[0]["message"][:90] if errors else f"{target['facts'].get('querySeries')} series read"
            rows.append({"limit": limit, "answerMB": a.mb, "peakRssMiB": round(rss / 1024, 1), "outcome": outcome})
            print(f"{limit:>6}  answer {a.mb} MB  peak RSS {rss / 1024:7.1f} MiB  {outcome}")
    out = here / "results" / "answer.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
