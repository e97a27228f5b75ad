//! `morningcheck run` as a user runs it: the binary against the real test environment.
//! Golden files live in tests/golden/; `UPDATE_GOLDEN=1 cargo test --test cli` rewrites
//! them after an intended change.

mod common;

use std::net::TcpListener;
use std::sync::atomic::Ordering;

use assert_cmd::Command;
use common::{TestNamespace, admin, var};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn cmd(home: &std::path::Path) -> Command {
    let mut c = Command::new(common::binary());
    c.env("KUBECONFIG", var("MC_KUBECONFIG"))
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("MORNINGCHECK_OUTPUT")
        .env_remove("MORNINGCHECK_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    c
}

fn manifest(name: &str, ns: &str, extra_targets: &str) -> String {
    format!(
        "apiVersion: morningcheck.io/v1alpha1\nkind: MorningCheck\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  schedule: '0 7 * * *'\n  targets:\n    kubernetes:\n    - name: local\n      namespaces: {{include: [{ns}]}}\n      checks: {{nodes: false, events: false}}\n{extra_targets}"
    )
}

async fn plant(ns: &str) {
    let pods: Api<Pod> = Api::namespaced(admin().await, ns);
    for (name, status) in [
        (
            "web",
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 7, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}]}),
        ),
        ("batch", json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"})),
    ] {
        let p: Pod =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": common::planted_spec()})).unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await.unwrap();
    }
}

fn golden(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} missing; run with UPDATE_GOLDEN=1"));
    assert_eq!(actual, expected, "{name} differs from the golden file");
}

/// Replaces what changes between runs (times, the random namespace) with placeholders.
fn normalize_text(s: &str, ns: &str) -> String {
    let s = s.replace(ns, "NS");
    let re = regex::Regex::new(r"\(\d+\.\ds\)").unwrap();
    re.replace_all(&s, "(T)").to_string()
}

fn normalize_json(mut v: Value, ns: &str) -> String {
    for key in ["runId", "slot", "startedAt", "finishedAt", "durationSeconds", "findingsDigest"] {
        v[key] = json!("X");
    }
    serde_json::to_string_pretty(&v).unwrap().replace(ns, "NS") + "\n"
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn text_and_json_reports_match_golden_files() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "cli").await;
    plant(&ns.name).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.yaml");
    std::fs::write(&file, manifest("laptop", &ns.name, "")).unwrap();

    let out = cmd(dir.path()).args(["run", "-f"]).arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "no --fail-on: findings alone exit 0; {}",
        String::from_utf8_lossy(&out.stderr)
    );
    golden("cli-report.txt", &normalize_text(&stdout(&out), &ns.name));

    let out = cmd(dir.path()).args(["run", "-o", "json", "-f"]).arg(&file).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schemaVersion"], "morningcheck.io/v1alpha1");
    assert_eq!(v["counts"]["critical"], 1);
    golden("cli-report.json", &normalize_json(v, &ns.name));
    assert!(
        out.stderr.is_empty(),
        "logs go to stderr, and without -v there are none: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn exit_codes() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "exits").await;
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.yaml");
    std::fs::write(&healthy, manifest("ok", &ns.name, "")).unwrap();
    cmd(dir.path()).args(["run", "--fail-on", "warning", "-f"]).arg(&healthy).assert().code(0);

    let sick_ns = TestNamespace::new(&client, "exits-sick").await;
    plant(&sick_ns.name).await;
    let sick = dir.path().join("sick.yaml");
    std::fs::write(&sick, manifest("sick", &sick_ns.name, "")).unwrap();
    cmd(dir.path()).args(["run", "--fail-on", "critical", "-f"]).arg(&sick).assert().code(1);
    cmd(dir.path()).args(["run", "--fail-on", "warning", "-f"]).arg(&sick).assert().code(1);

    let unused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let broken = dir.path().join("broken.yaml");
    let prom = format!("    prometheus:\n    - name: down\n      url: http://127.0.0.1:{unused}\n");
    std::fs::write(&broken, manifest("broken", &sick_ns.name, &prom)).unwrap();
    cmd(dir.path()).args(["run", "--fail-on", "critical", "--timeout", "10", "-f"]).arg(&broken).assert().code(2);

    cmd(dir.path()).args(["run", "--no-such-flag", "-f"]).arg(&healthy).assert().code(64);
    cmd(dir.path()).args(["run", "-f", "/nonexistent/check.yaml"]).assert().code(66);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        manifest("bad", &ns.name, "").replace("schedule: '0 7 * * *'", "schedule: '0 7 * * *'\n  sechdule: x"),
    )
    .unwrap();
    let out = cmd(dir.path()).args(["run", "-f"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:8: unknown field `spec.sechdule`"), "{err}");
    let cron = dir.path().join("cron.yaml");
    std::fs::write(&cron, manifest("cron", &ns.name, "").replace("'0 7 * * *'", "'0 0 7 * * *'")).unwrap();
    let out = cmd(dir.path()).args(["run", "-f"]).arg(&cron).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("spec.schedule: invalid schedule \"0 0 7 * * *\": expected 5 fields")
    );
    let config = dir.path().join("bad-config.yaml");
    std::fs::write(&config, "outptu: json\n").unwrap();
    cmd(dir.path()).args(["run", "--config"]).arg(&config).arg("-f").arg(&healthy).assert().code(78);

    // Bytes that are not UTF-8 are a bad manifest (65), not an unreadable file (66).
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, b"apiVersion: morningcheck.io/v1alpha1\nkind: \xff\xfeMorningCheck\n").unwrap();
    let out = cmd(dir.path()).args(["run", "-f"]).arg(&binary).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2: not UTF-8 text"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Durations are bounded everywhere: the spec (65), the flags (64), the config file (78).
    for (field, value) in [("timeoutSeconds", "9223372036854775807"), ("timeoutSeconds", "-1")] {
        let f = dir.path().join("timeout.yaml");
        std::fs::write(
            &f,
            manifest("t", &ns.name, "").replace("  targets:", &format!("  {field}: {value}\n  targets:")),
        )
        .unwrap();
        let out = cmd(dir.path()).args(["run", "-f"]).arg(&f).output().unwrap();
        assert_eq!(out.status.code(), Some(65), "{field}: {value}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("spec.timeoutSeconds: Invalid value"));
    }
    for flag in ["--timeout", "--connect-timeout"] {
        cmd(dir.path()).args(["run", flag, "9223372036854775807", "-f"]).arg(&healthy).assert().code(64);
        cmd(dir.path()).args(["run", flag, "0", "-f"]).arg(&healthy).assert().code(64);
    }
    std::fs::write(&config, "timeout: 9223372036854775807\n").unwrap();
    let out = cmd(dir.path()).args(["run", "--config"]).arg(&config).arg("-f").arg(&healthy).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("timeout: 9223372036854775807 is out of range: must be 5 to 3600 seconds")
    );
    let help = cmd(dir.path()).args(["run", "--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit codes: 0 healthy, 1 findings at or above --fail-on, 2 a target failed"));
}

#[tokio::test]
async fn flag_beats_env_beats_config_file() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "layers").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.yaml");
    std::fs::write(&file, manifest("layers", &ns.name, "")).unwrap();
    // The default config file location under $HOME.
    std::fs::create_dir_all(dir.path().join(".config/morningcheck")).unwrap();
    std::fs::write(dir.path().join(".config/morningcheck/config.yaml"), "output: json\nfailOn: warning\n").unwrap();
    let is_json = |o: &std::process::Output| serde_json::from_slice::<Value>(&o.stdout).is_ok();

    let from_file = cmd(dir.path()).args(["run", "-f"]).arg(&file).output().unwrap();
    assert!(is_json(&from_file), "config file sets json");
    let from_env = cmd(dir.path()).env("MORNINGCHECK_OUTPUT", "text").args(["run", "-f"]).arg(&file).output().unwrap();
    assert!(
        !is_json(&from_env) && stdout(&from_env).starts_with("NS/layers: HEALTHY".replace("NS", &ns.name).as_str())
    );
    let from_flag = cmd(dir.path())
        .env("MORNINGCHECK_OUTPUT", "text")
        .args(["run", "-o", "json", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(is_json(&from_flag), "flag beats env");

    // An explicit --config replaces the default file.
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, "output: slack\n").unwrap();
    let out = cmd(dir.path()).args(["run", "--config"]).arg(&other).arg("-f").arg(&file).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["blocks"].is_array(), "slack output prints the payload");
}

#[tokio::test]
async fn dry_run_never_posts() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "dryrun").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.yaml");
    std::fs::write(&file, manifest("dry", &ns.name, "")).unwrap();
    let (url, hits) = common::counting_listener(
        "/services/T0/B0/secret",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    );

    let out = cmd(dir.path())
        .env("SLACK_WEBHOOK_URL", &url)
        .args(["run", "--dry-run", "-o", "slack", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let payload: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(payload["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    // A run from a file has no MorningCheck object to `kubectl get`: the digest points to
    // what exists, the JSON report.
    let text = payload.to_string();
    assert!(text.contains("everything: `morningcheck run -o json`"), "{text}");
    assert!(!text.contains("kubectl"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "--dry-run posts nothing");

    let out = cmd(dir.path()).env("SLACK_WEBHOOK_URL", &url).args(["run", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "without --dry-run the digest is posted once");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!logs.contains("secret"), "the webhook URL never reaches the logs: {logs}");

    // A digest that is not delivered is an exit code of its own, whatever was found: a
    // CronJob has nothing else to tell it.
    let (refusing, refused) = common::counting_listener(
        "/services/T0/B0/secret",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno_service",
    );
    let out = cmd(dir.path()).env("SLACK_WEBHOOK_URL", &refusing).args(["run", "-f"]).arg(&file).output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{logs}");
    assert_eq!(refused.load(Ordering::SeqCst), 1);
    assert!(logs.contains("no_service") && !logs.contains("secret"), "{logs}");
}

#[tokio::test]
async fn yaml_surprises_and_multi_document_files() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "yaml").await;
    let dir = tempfile::tempdir().unwrap();
    // Namespaces called `no`, `yes`, `on` and `0777` stay strings: as booleans or numbers
    // the manifest would not parse at all (`1.10` is covered by the parser's unit tests).
    let tricky = manifest("tricky", &ns.name, "")
        .replace(&format!("include: [{}]", ns.name), &format!("include: [{}, no, yes, on, 0777]", ns.name));
    let two = format!("{tricky}---\n{}", manifest("second", &ns.name, ""));
    let file = dir.path().join("two.yaml");
    std::fs::write(&file, &two).unwrap();
    let out = cmd(dir.path()).args(["run", "-o", "json", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: Vec<Value> =
        serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>().map(Result::unwrap).collect();
    let names: Vec<&str> = reports.iter().map(|r| r["check"].as_str().unwrap()).collect();
    assert_eq!(names, [format!("{}/tricky", ns.name), format!("{}/second", ns.name)]);
    assert!(reports.iter().all(|r| r["targets"][0]["errors"].is_null()), "all four namespaces were listed");

    // stdin works too.
    let out = cmd(dir.path())
        .args(["run", "-o", "json", "-f", "-"])
        .write_stdin(manifest("piped", &ns.name, ""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["check"], format!("{}/piped", ns.name));
}

/// A Prometheus that answers an instant query with ~120 MB of series: more than the
/// memory answers may hold under a 256 MiB limit. That query fails with the budget's
/// message, the answer is read no further, and the other targets still count.
#[tokio::test]
async fn an_answer_past_the_memory_budget_fails_alone() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "big-answer").await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).is_ok_and(|n| n == 1) {
                    head.push(b[0]);
                }
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[";
                if s.write_all(start.as_bytes()).is_err() {
                    return;
                }
                for chunk in 0..2000 {
                    let series: String = (0..1000)
                        .map(|i| format!("{{\"metric\":{{\"__name__\":\"up\",\"instance\":\"host-{chunk}-{i}\"}},\"value\":[1,\"1\"]}},"))
                        .collect();
                    if s.write_all(series.as_bytes()).is_err() {
                        return;
                    }
                    counted.fetch_add(series.len(), Ordering::SeqCst);
                }
                let _ = s.write_all(b"{\"metric\":{},\"value\":[1,\"1\"]}]}}");
            });
        }
    });
    let extra = format!(
        "    prometheus:\n    - name: big\n      url: http://127.0.0.1:{port}\n      alerts: {{enabled: false}}\n      queries: [{{name: up, query: up, warning: 2}}]\n    - name: real\n      url: {}\n",
        var("MC_PROMETHEUS_URL")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, manifest("big", &ns.name, &extra)).unwrap();
    let out = cmd(dir.path())
        .env("MORNINGCHECK_MEMORY_LIMIT_BYTES", (256u64 << 20).to_string())
        .args(["run", "-o", "json", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let target = |name: &str| report["targets"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap().clone();
    let big = target("big");
    let message = big["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "answer too large for the memory answers may hold (64 MiB, a quarter of the 256 MiB memory limit"
        ),
        "{big}"
    );
    assert_eq!(big["errors"][0]["scope"], "query up");
    assert!(target("real")["errors"].is_null(), "{}", target("real"));
    assert!(target("local")["errors"].is_null(), "{}", target("local"));
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent < 60 << 20, "the answer was read no further than the budget: {sent} bytes sent");
}
