//! Secrets are never echoed. Each kind of secret the operator holds is planted (kubeconfig
//! tokens and passwords, Prometheus bearer and basic credentials, the Slack webhook's
//! path, a config file's webhook URL), each error path that used to repeat one is provoked
//! (YAML parse errors quoting the line, peers echoing our Authorization header or the
//! webhook path, trace logs of URLs with credentials), and every output is searched for
//! the values: the status, the Events, the controller's trace log, and the CLI's stdout
//! and stderr.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use base64::Engine;
use common::chart::{kubectl, text};
use common::{TestNamespace, admin, binary, create_check, create_secret, run_finished, run_now, var};
use serde_json::json;

const KUBECONFIG_TOKEN: &str = "kc-token-SECRET-8c1f3a";
const BARE_TOKEN: &str = "eyJhbGciOiBARE-SECRET-TOKEN-42";
const SERVER_PASSWORD: &str = "server-pass-SECRET-77";
const BEARER: &str = "prom-bearer-SECRET-5e2d";
const BASIC_USER: &str = "prom-user";
const BASIC_PASSWORD: &str = "basic-pass-SECRET-19af";
const HOOK_SECRET: &str = "hookpath-SECRET-d41d";
const FILE_HOOK_SECRET: &str = "filehook-SECRET-0b9e";

/// Every value that must never be written, in every form it travels in.
fn planted() -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{BASIC_USER}:{BASIC_PASSWORD}"));
    [KUBECONFIG_TOKEN, BARE_TOKEN, SERVER_PASSWORD, BEARER, BASIC_PASSWORD, HOOK_SECRET, FILE_HOOK_SECRET]
        .iter()
        .map(|s| s.to_string())
        .chain([basic])
        .collect()
}

fn assert_clean(what: &str, output: &str) {
    for secret in planted() {
        assert!(!output.contains(&secret), "{what} repeats a secret ({secret}):\n{output}");
    }
}

/// A peer that answers every request 401 with what it was sent: Prometheus' error
/// envelope quoting our Authorization header, or (for Slack) an error page quoting the path.
fn echoing_peer(prometheus_style: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split_whitespace().nth(1).unwrap_or_default().to_string();
            let auth = request
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .map(|l| l["authorization:".len()..].trim().to_string())
                .unwrap_or_default();
            let (status, body) = if prometheus_style {
                (
                    "401 Unauthorized",
                    json!({"status": "error", "errorType": "unauthorized", "error": format!("bad credentials {auth}")})
                        .to_string(),
                )
            } else {
                ("404 Not Found", format!("no such hook {path}"))
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(response.as_bytes());
        }
    });
    url
}

fn kubeconfig_with(user: &str, server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: '{server}'\nusers:\n- name: u\n  user:\n{user}contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    )
}

#[tokio::test]
async fn no_secret_reaches_any_output() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "secrets").await;
    let n = ns.name.as_str();
    let prometheus = echoing_peer(true);
    let slack = echoing_peer(false);

    // One line mis-indented, right below the token.
    let misindented = kubeconfig_with(
        &format!("    token: {KUBECONFIG_TOKEN}\n   client-key-data: Zm9vYmFy\n"),
        "https://127.0.0.1:1",
    );
    let userinfo = kubeconfig_with("    token: short\n", &format!("https://admin:{SERVER_PASSWORD}@127.0.0.1:1"));
    create_secret(&client, n, "kc-misindented", json!({"kubeconfig": misindented})).await;
    create_secret(&client, n, "kc-bare", json!({"kubeconfig": BARE_TOKEN})).await;
    create_secret(&client, n, "kc-userinfo", json!({"kubeconfig": userinfo})).await;
    create_secret(&client, n, "prom", json!({"token": BEARER, "password": BASIC_PASSWORD})).await;
    create_secret(&client, n, "hook", json!({"url": format!("{slack}/services/T0/B0/{HOOK_SECRET}")})).await;

    let kube = |name: &str, secret: &str| json!({"name": name, "kubeconfigSecretRef": {"name": secret, "key": "kubeconfig"}, "checks": {"nodes": false}});
    let spec = json!({
        "schedule": "0 7 * * *",
        "timeoutSeconds": 30,
        "targets": {
            "kubernetes": [kube("misindented", "kc-misindented"), kube("bare", "kc-bare"), kube("userinfo", "kc-userinfo")],
            "prometheus": [
                {"name": "bearer", "url": prometheus, "auth": {"bearerTokenSecretRef": {"name": "prom", "key": "token"}}},
                {"name": "basic", "url": prometheus,
                 "auth": {"basic": {"username": BASIC_USER, "passwordSecretRef": {"name": "prom", "key": "password"}}}},
            ],
        },
        "slack": {"webhookSecretRef": {"name": "hook", "key": "url"}},
    });
    let api = create_check(&client, n, "leaky", spec.clone()).await;

    // The controller, logging everything (trace), as the platform team's.
    let controller = common::ControllerProcess::start(n, &[], "trace");
    run_now(&api, "leaky", "echo").await;
    let st = run_finished(&api, "leaky", "echo", 90).await;
    let logs = controller.stop();

    // Each error path was taken, and says what is wrong without the secret.
    let run = st.last_run.as_ref().unwrap();
    let error = |name: &str| {
        let t = run.targets.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("target {name}"));
        t.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")
    };
    assert!(error("misindented").contains("line "), "the parse error says where: {}", error("misindented"));
    assert!(error("bare").contains("not a valid kubeconfig"), "{}", error("bare"));
    assert!(error("userinfo").contains("carries credentials"), "{}", error("userinfo"));
    assert!(error("bearer").contains("bad credentials"), "Prometheus' own error is kept: {}", error("bearer"));
    assert!(error("basic").contains("bad credentials"), "{}", error("basic"));
    let notified = st.conditions.iter().find(|c| c.type_ == "Notified").unwrap();
    assert_eq!(notified.reason, "DeliveryFailed", "{}", notified.message);
    assert!(notified.message.contains("404"), "{}", notified.message);

    let events = kubectl(&["get", "events", "-n", n, "-o", "json"]);
    assert!(logs.lines().count() > 50, "a trace log was written");
    assert_clean("the status", &serde_json::to_string(&st).unwrap());
    assert_clean("the Events", &text(&events));
    assert_clean("the controller's trace log", &logs);

    // The CLI, as a person runs it: verbose, JSON, posting to the same Slack stand-in.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("leaky.yaml");
    let doc = json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": "leaky", "namespace": n}, "spec": spec});
    std::fs::write(&manifest, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = Command::new(binary())
        .args(["run", "-vv", "-o", "json", "-f"])
        .arg(&manifest)
        .env("KUBECONFIG", var("MC_KUBECONFIG"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("\"targets\""), "a JSON report: {stdout}");
    assert_clean("`morningcheck run -vv -o json`", &format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));

    // A config file with a bad line next to the webhook URL.
    let bad = dir.path().join("config.yaml");
    std::fs::write(
        &bad,
        format!(
            "output: json\nslackWebhookUrl: https://hooks.slack.com/services/T0/B0/{FILE_HOOK_SECRET}\n  dryRun: true\n"
        ),
    )
    .unwrap();
    let out = Command::new(binary()).args(["run", "--config"]).arg(&bad).arg("-f").arg(&manifest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && stderr.contains("config"), "the bad config is refused: {stderr}");
    assert!(stderr.contains("line "), "it says where: {stderr}");
    assert_clean("the config file's error", &stderr);
}
