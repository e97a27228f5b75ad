//! deploy/cronjob.yaml, the way to run `morningcheck run` as a Kubernetes CronJob: it
//! installs on the RBAC-enforcing test apiserver (server-side dry run, then for real, in a
//! test namespace), its ServiceAccount may read exactly what the checks read, and the
//! container's command line, run as written against the ConfigMap's MorningCheck, gives the
//! exit code and report the CronJob relies on: first with the test kubeconfig, then in
//! in-cluster mode with a token of the manifest's own ServiceAccount and the ConfigMap's
//! kubeconfig (token and CA at the in-cluster paths, inside a private mount namespace).
//! The chart's `cronjob.enabled` render is checked against this file by tests/chart.rs.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::{TestNamespace, admin, binary, var};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

const MANIFEST: &str = "deploy/cronjob.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn kubectl(args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(["--context", "admin"])
        .args(args)
        .env("KUBECONFIG", var("MC_KUBECONFIG"))
        .stdin(Stdio::null())
        .output()
        .expect("kubectl on PATH")
}

/// The documents of deploy/cronjob.yaml, as JSON.
fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(MANIFEST)).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap().into_iter().filter(|d| !d.is_null()).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "want one {kind} in {MANIFEST}");
    found[0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default()
}

fn pod_spec(docs: &[Value]) -> &Value {
    &one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
}

/// The manifest moved into namespace `ns` (its Namespace object dropped: the test's exists),
/// with its cluster-scoped objects renamed for this run, and the CronJob in the version the
/// server serves (batch/v1 from Kubernetes 1.21; the 1.20 test apiserver serves only
/// batch/v1beta1, whose CronJob has the same fields). Returns the List and the renamed
/// cluster-scoped name.
async fn for_namespace(client: &Client, docs: &[Value], ns: &str) -> (Value, String) {
    assert_eq!(docs[0]["kind"], "Namespace");
    let cluster_name = format!("morningcheck-run-{ns}");
    let batch_v1_cronjob = client
        .list_api_group_resources("batch/v1")
        .await
        .map(|l| l.resources.iter().any(|r| r.name == "cronjobs"))
        .unwrap_or(false);
    let mut items = vec![];
    for d in &docs[1..] {
        let mut d = d.clone();
        match d["kind"].as_str().unwrap() {
            "ClusterRole" => d["metadata"]["name"] = json!(cluster_name),
            "ClusterRoleBinding" => {
                d["metadata"]["name"] = json!(cluster_name);
                d["roleRef"]["name"] = json!(cluster_name);
            }
            _ => {
                assert_eq!(d["metadata"]["namespace"], "morningcheck", "{}", d["kind"]);
                d["metadata"]["namespace"] = json!(ns);
            }
        }
        if let Some(subjects) = d["subjects"].as_array_mut() {
            for s in subjects {
                s["namespace"] = json!(ns);
            }
        }
        if d["kind"] == "CronJob" && !batch_v1_cronjob {
            d["apiVersion"] = json!("batch/v1beta1");
        }
        items.push(d);
    }
    (json!({"apiVersion": "v1", "kind": "List", "items": items}), cluster_name)
}

/// Deletes the cluster-scoped objects of a test install when dropped.
struct ClusterScoped(String);

impl Drop for ClusterScoped {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "--ignore-not-found", "--wait=false", "clusterrolebinding,clusterrole", &self.0]);
    }
}

async fn can(client: &Client, user: &str, verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> bool {
    let sar: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": ns, "name": name},
        }
    }))
    .unwrap();
    let r = Api::<SubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &sar).await.unwrap();
    r.status.unwrap().allowed
}

/// A Slack stand-in on loopback: answers `ok` and keeps every body it receives.
fn slack_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T0/B0/cronjob", listener.local_addr().unwrap());
    let posts = Arc::new(Mutex::new(Vec::new()));
    let store = posts.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                break Some(String::from_utf8_lossy(&buf[end + 4..]).to_string());
            };
            if let Some(body) = body {
                store.lock().unwrap().push(body);
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            );
        }
    });
    (url, posts)
}

/// What the rewritten check's Kubernetes target sees, so that its findings are known.
enum Scope<'a> {
    /// Only this namespace.
    Namespace(&'a str),
    /// Every namespace (lists at cluster scope), only objects with this label.
    Selector(&'a str),
}

/// The ConfigMap's MorningCheck pointed at the test environment: the check in `ns` (where
/// its Slack Secret is read), its Kubernetes target narrowed by `scope`, and its
/// Prometheus target at the test Prometheus. `exclude_alerts` are added to the alert filter.
fn rewritten_check(docs: &[Value], ns: &str, scope: Scope, exclude_alerts: &[&str]) -> String {
    let cm = one(docs, "ConfigMap");
    let mut check: Value = serde_saphyr::from_str(cm["data"]["check.yaml"].as_str().unwrap()).unwrap();
    check["metadata"]["namespace"] = json!(ns);
    let t = &mut check["spec"]["targets"];
    assert_eq!(t["kubernetes"].as_array().unwrap().len(), 1);
    match scope {
        Scope::Namespace(only) => t["kubernetes"][0]["namespaces"] = json!({"include": [only]}),
        Scope::Selector(selector) => t["kubernetes"][0]["labelSelector"] = json!(selector),
    }
    assert_eq!(t["prometheus"].as_array().unwrap().len(), 1);
    t["prometheus"][0]["url"] = json!(var("MC_PROMETHEUS_URL"));
    let exclude = t["prometheus"][0]["alerts"]["exclude"].as_array_mut().unwrap();
    exclude.extend(exclude_alerts.iter().map(|a| json!({"label": "alertname", "value": a})));
    serde_json::to_string_pretty(&check).unwrap()
}

/// The container's command line and environment, with the ConfigMap's files materialized
/// under `root` as the kubelet mounts them (one file per key) and every argument under the
/// ConfigMap's mountPath resolved there. `check` replaces the check.yaml key.
struct Container {
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn container(docs: &[Value], root: &Path, check: &str) -> Container {
    let pod = pod_spec(docs);
    let c = &pod["containers"][0];
    assert_eq!(strings(&c["command"]), ["/usr/local/bin/morningcheck"], "the image's binary, not its entrypoint");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| !v["configMap"].is_null()).unwrap();
    let cm = one(docs, "ConfigMap");
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);
    let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume["name"]).unwrap();
    let mount_path = mount["mountPath"].as_str().unwrap();
    std::fs::create_dir_all(root).unwrap();
    for (key, value) in cm["data"].as_object().unwrap() {
        let content = if key == "check.yaml" { check } else { value.as_str().unwrap() };
        std::fs::write(root.join(key), content).unwrap();
    }
    let resolve = |s: &str| match s.strip_prefix(mount_path).and_then(|rest| rest.strip_prefix('/')) {
        Some(key) => {
            assert!(root.join(key).is_file(), "{s} is not a key of the ConfigMap");
            root.join(key).to_str().unwrap().to_string()
        }
        None => s.to_string(),
    };
    let args = strings(&c["args"]).iter().map(|a| resolve(a)).collect();
    let env = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), resolve(e["value"].as_str().expect("a plain value"))))
        .collect();
    Container { args, env }
}

/// A Deployment with no available replica (no controller-manager runs here): critical.
/// It carries the label `morningcheck-test=<ns>`.
async fn plant_unavailable_deployment(client: &Client, ns: &str) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"morningcheck-test": ns}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns).create(&PostParams::default(), &d).await.unwrap();
}

async fn create_webhook_secret(client: &Client, ns: &str, url: &str) {
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "slack-webhook"}, "stringData": {"url": url}})).unwrap();
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await.unwrap();
}

/// `morningcheck run` with the container's arguments as written (only the ConfigMap's
/// mountPath, `/config`, resolved to where its keys are materialized, as the kubelet's
/// volume does) and the test kubeconfig in place of the in-cluster one. Critical findings fail the Job (exit 1); warnings alone
/// do not (exit 0); the report is on stdout and the digest is posted.
#[tokio::test]
async fn the_containers_command_line_runs_the_configmaps_check() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "cron").await;
    let quiet = TestNamespace::new(&client, "cron-quiet").await;
    let docs = manifest();
    let (url, posts) = slack_receiver();
    plant_unavailable_deployment(&client, &ns.name).await;
    create_webhook_secret(&client, &ns.name, &url).await;
    let dir = tempfile::tempdir().unwrap();

    let run = |c: Container| {
        let (home, kubeconfig) = (dir.path().join("home"), var("MC_KUBECONFIG"));
        std::fs::create_dir_all(&home).unwrap();
        assert!(c.env.contains_key("KUBECONFIG"), "the container names its kubeconfig");
        Command::new(binary())
            .args(&c.args)
            .env_clear()
            .envs(&c.env)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .output()
            .unwrap()
    };

    // Critical: the unavailable Deployment and the firing DiskAlmostFull alert.
    let c = container(
        &docs,
        &dir.path().join("config-1"),
        &rewritten_check(&docs, &ns.name, Scope::Namespace(&ns.name), &[]),
    );
    assert_eq!(c.args[..2], ["run", "-f"]);
    assert_eq!(c.args[3..], ["--fail-on", "critical"]);
    let out = run(c);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "critical findings fail the Job\n{stdout}\n{stderr}");
    assert!(stdout.starts_with(&format!("{}/platform: CRITICAL", ns.name)), "{stdout}");
    assert!(stdout.contains(&format!("{}/web", ns.name)) && stdout.contains("DiskAlmostFull"), "{stdout}");
    assert!(!stdout.contains("Watchdog"), "the check's own alert filter applies: {stdout}");
    assert!(!stderr.contains("morningcheck:"), "no error: {stderr}");
    assert!(!stdout.contains("\n  ERR "), "no target error: {stdout}");
    assert_eq!(posts.lock().unwrap().len(), 1, "the digest is posted once");
    assert!(posts.lock().unwrap()[0].contains("platform"), "{:?}", posts.lock().unwrap());

    // Warnings only: an empty namespace and the critical alert excluded. The Job succeeds.
    let c = container(
        &docs,
        &dir.path().join("config-2"),
        &rewritten_check(&docs, &quiet.name, Scope::Namespace(&quiet.name), &["DiskAlmostFull"]),
    );
    create_webhook_secret(&client, &quiet.name, &url).await;
    let out = run(c);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "warnings do not fail with --fail-on critical\n{stdout}\n{stderr}");
    assert!(stdout.starts_with(&format!("{}/platform: WARNING", quiet.name)), "{stdout}");
    assert!(stdout.contains("HighLatency") && !stdout.contains("DiskAlmostFull"), "{stdout}");
    assert!(!stderr.contains("morningcheck:"), "no error: {stderr}");
    assert!(!stdout.contains("\n  ERR "), "no target error: {stdout}");
    assert_eq!(posts.lock().unwrap().len(), 2);
}

/// Mounts a tmpfs on the deepest existing directory of the ServiceAccount path (creating
/// the rest inside it), copies the token and CA there, and execs the command. It runs in a
/// private mount namespace: nothing is written to the host's file system.
const MOUNT_SERVICE_ACCOUNT: &str = r#"set -eu
src="$1"; shift
sa=/var/run/secrets/kubernetes.io/serviceaccount
top="$sa"
while [ ! -d "$top" ]; do top=$(dirname "$top"); done
case "$top" in /|/var) echo "refusing to mount a tmpfs over $top" >&2; exit 97;; esac
mount -n -t tmpfs -o size=1m,mode=0755 morningcheck-sa "$top"
mkdir -p "$sa"
cp "$src/token" "$src/ca.crt" "$src/namespace" "$sa/"
exec "$@"
"#;

/// deploy/cronjob.yaml installs into a namespace (server-side dry run, then for real); its
/// ServiceAccount may list what the checks list and read the named Secret, nothing else;
/// and with only those rights, the container's command line and the ConfigMap's own
/// kubeconfig (pointed at the test apiserver, the token and CA at the in-cluster paths)
/// run the check to its end.
#[tokio::test]
async fn the_manifest_installs_and_runs_with_exactly_its_rights() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "cronrbac").await;
    let n = ns.name.as_str();
    let docs = manifest();
    let (list, cluster_name) = for_namespace(&client, &docs, n).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cronjob.json");
    std::fs::write(&file, serde_json::to_string_pretty(&list).unwrap()).unwrap();
    let _cleanup = ClusterScoped(cluster_name.clone());

    let out = kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "server-side dry run:\n{}", text(&out));
    let out = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "kubectl apply:\n{}", text(&out));
    for object in [
        "serviceaccount/morningcheck-run",
        "configmap/morningcheck-run",
        "cronjob.batch/morningcheck-run",
        "role.rbac.authorization.k8s.io/morningcheck-run",
        &format!("clusterrole.rbac.authorization.k8s.io/{cluster_name}"),
    ] {
        assert!(text(&out).contains(&format!("{object} created")), "{object}:\n{}", text(&out));
    }
    let out = kubectl(&["-n", n, "get", "cronjob", "morningcheck-run", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(stored["spec"]["startingDeadlineSeconds"], 600);
    let pod = &stored["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"], pod_spec(&docs)["securityContext"]);
    assert_eq!(pod["containers"][0]["securityContext"], pod_spec(&docs)["containers"][0]["securityContext"]);
    assert_eq!(pod["containers"][0]["args"], pod_spec(&docs)["containers"][0]["args"]);

    let sa = format!("system:serviceaccount:{n}:morningcheck-run");
    #[rustfmt::skip]
    let table = [
        ("list", "", "pods", "", "", true),
        ("list", "", "events", "", "", true),
        ("list", "", "nodes", "", "", true),
        ("list", "apps", "deployments", "", "", true),
        ("list", "apps", "statefulsets", "", "", true),
        ("list", "apps", "daemonsets", "", "", true),
        ("get", "", "secrets", n, "slack-webhook", true),
        ("get", "", "secrets", n, "other", false),
        ("list", "", "secrets", n, "", false),
        ("get", "", "secrets", "default", "slack-webhook", false),
        ("watch", "", "pods", "", "", false),
        ("get", "", "pods", n, "p", false),
        ("get", "", "configmaps", n, "morningcheck-run", false),
        ("list", "morningcheck.io", "morningchecks", "", "", false),
        ("create", "events.k8s.io", "events", n, "", false),
        ("create", "", "events", n, "", false),
        ("create", "coordination.k8s.io", "leases", n, "", false),
        ("create", "batch", "jobs", n, "", false),
        ("create", "", "serviceaccounts/token", n, "morningcheck-run", false),
    ];
    let mut wrong = vec![];
    for (verb, group, resource, ns_, name, want) in table {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        let allowed = if sub.is_empty() {
            can(&client, &sa, verb, group, resource, ns_, name).await
        } else {
            let sar: SubjectAccessReview = serde_json::from_value(json!({"spec": {"user": sa, "groups": ["system:serviceaccounts"],
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns_, "name": name}}}))
            .unwrap();
            let r = Api::<SubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &sar).await.unwrap();
            r.status.unwrap().allowed
        };
        if allowed != want {
            wrong.push(format!("{verb} {group}/{resource} {name} in {ns_:?}: want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{sa}:\n  {}", wrong.join("\n  "));

    // In-cluster: the manifest's ServiceAccount token and the ConfigMap's kubeconfig.
    let probe = Command::new("unshare").args(["--mount", "--propagation", "private", "true"]).output();
    let probe = probe.expect("unshare (util-linux) on PATH");
    assert!(probe.status.success(), "a private mount namespace is needed (root or CAP_SYS_ADMIN): {}", text(&probe));
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}})).unwrap();
    let issued: TokenRequest = Api::<ServiceAccount>::namespaced(client.clone(), n)
        .create_subresource("token", "morningcheck-run", &PostParams::default(), &request)
        .await
        .expect("TokenRequest");
    let sa_files = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa_files).unwrap();
    std::fs::write(sa_files.join("token"), issued.status.unwrap().token).unwrap();
    std::fs::copy(var("MC_KUBE_CA"), sa_files.join("ca.crt")).unwrap();
    std::fs::write(sa_files.join("namespace"), n).unwrap();

    let (url, posts) = slack_receiver();
    plant_unavailable_deployment(&client, n).await;
    create_webhook_secret(&client, n, &url).await;
    let config = dir.path().join("config");
    // Cluster-wide, as in the manifest (the ClusterRole is what is proven), but only the
    // objects of this test by label, so that other tests' objects do not change the verdict.
    let selector = format!("morningcheck-test={n}");
    let c = container(&docs, &config, &rewritten_check(&docs, n, Scope::Selector(&selector), &[]));
    // The only change to the ConfigMap's kubeconfig: the API server's address (the pod
    // reaches it as https://kubernetes.default.svc).
    let kubeconfig_path = c.env["KUBECONFIG"].clone();
    let kubeconfig = std::fs::read_to_string(&kubeconfig_path).unwrap();
    assert_eq!(kubeconfig.matches("server: https://kubernetes.default.svc\n").count(), 1);
    let kubeconfig = kubeconfig.replace("https://kubernetes.default.svc", &var("MC_KUBE_SERVER"));
    std::fs::write(&kubeconfig_path, kubeconfig).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", MOUNT_SERVICE_ACCOUNT, "sh"])
        .arg(&sa_files)
        .arg(binary())
        .args(&c.args)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(&c.env)
        .env("HOME", &home)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "critical findings, no failed target\n{stdout}\n{stderr}");
    assert!(stdout.starts_with(&format!("{n}/platform: CRITICAL")), "{stdout}");
    assert!(stdout.contains(&format!("{n}/web")), "the Deployment was listed with the token: {stdout}");
    // Exit 1, not 2, and no target error: every list and the Secret read were allowed.
    // (stdout may quote other tests' Warning events, so only stderr is searched for words.)
    assert!(!stdout.contains("\n  ERR "), "no target error: {stdout}");
    for bad in ["forbidden", "unauthorized", "morningcheck:"] {
        assert!(!stderr.to_ascii_lowercase().contains(bad), "`{bad}` on stderr:\n{stderr}");
    }
    assert_eq!(posts.lock().unwrap().len(), 1, "the webhook Secret was read with the token, the digest posted");
    assert!(!Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists(), "nothing left on the host");
}
