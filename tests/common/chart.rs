//! Helpers of tests/chart.rs, tests/rbac.rs and tests/cronjob.rs: the chart's renderer,
//! kubectl, SubjectAccessReviews, ServiceAccount tokens, and the binary in in-cluster mode.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{binary, var};

pub const CHART: &str = "charts/morningcheck";
/// Where kube-rs (like every Kubernetes client) reads a pod's ServiceAccount.
pub const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

// ---------------------------------------------------------------------------------------
// The chart and its documents

/// The renderer, built once per test binary by tools/helm-render/build.sh.
pub fn renderer() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(repo().join("tools/helm-render/build.sh")).output().expect("run build.sh");
        assert!(out.status.success(), "tools/helm-render/build.sh failed:\n{}", text(&out));
        let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(Path::new(&path).is_file(), "build.sh printed {path:?}, which is not a file");
        path
    })
}

/// Renders the chart as `helm template`; Err carries the renderer's message.
pub fn try_render(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(renderer())
        .arg(repo().join(CHART))
        .args([release, namespace])
        .args(args)
        .output()
        .expect("run helm-render");
    if out.status.success() { Ok(String::from_utf8(out.stdout).unwrap()) } else { Err(text(&out)) }
}

pub fn render(release: &str, namespace: &str, args: &[&str]) -> String {
    try_render(release, namespace, args).unwrap_or_else(|e| panic!("render {args:?} failed:\n{e}"))
}

/// The documents of a multi-document YAML stream, as JSON.
pub fn docs(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

pub fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "want exactly one {kind}, found {}", found.len());
    found[0]
}

pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// kubectl

/// kubectl as the test environment's admin.
pub fn kubectl(args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(["--context", "admin"])
        .args(args)
        .env("KUBECONFIG", var("MC_KUBECONFIG"))
        .stdin(Stdio::null())
        .output()
        .expect("kubectl on PATH")
}

/// `kubectl apply -f file`, which must succeed.
pub fn apply(file: &Path) -> Output {
    let out = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "kubectl apply:\n{}", text(&out));
    out
}

/// `kubectl apply --dry-run=server -f file`, which must succeed.
pub fn dry_run(file: &Path) -> Output {
    let out = kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "server-side dry run:\n{}", text(&out));
    out
}

/// `kubectl -n ns get kind name -o json`, which must succeed.
pub fn get_json(ns: &str, kind: &str, name: &str) -> Value {
    let out = kubectl(&["-n", ns, "get", kind, name, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Deletes objects when dropped (the cluster-scoped ones above all: namespaced ones go with
/// the test namespace).
pub struct Cleanup(Vec<String>);

impl Cleanup {
    /// The objects of a manifest file.
    pub fn file(path: &Path) -> Self {
        Self(vec!["-f".into(), path.to_str().unwrap().into()])
    }

    /// The objects named `name` of `kinds` (`clusterrolebinding,clusterrole`).
    pub fn named(kinds: &str, name: &str) -> Self {
        Self(vec![kinds.into(), name.into()])
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        args.extend(self.0.iter().map(String::as_str));
        let _ = kubectl(&args);
    }
}

/// Writes `yaml` to `dir/release.yaml`, whose objects are deleted when the Cleanup drops.
pub fn release_file(dir: &Path, yaml: &str) -> (PathBuf, Cleanup) {
    let file = dir.join("release.yaml");
    std::fs::write(&file, yaml).unwrap();
    let cleanup = Cleanup::file(&file);
    (file, cleanup)
}

// ---------------------------------------------------------------------------------------
// Rights

/// What a SubjectAccessReview asks: (verb, group, resource or resource/subresource,
/// namespace, name); empty strings for none.
pub type Access<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// (verb, group, resource, namespace, name, allowed): what the checks read, cluster-wide.
#[rustfmt::skip]
pub const CHECK_READS: [(&str, &str, &str, &str, &str, bool); 6] = [
    ("list", "", "pods", "", "", true),
    ("list", "", "events", "", "", true),
    ("list", "", "nodes", "", "", true),
    ("list", "apps", "deployments", "", "", true),
    ("list", "apps", "statefulsets", "", "", true),
    ("list", "apps", "daemonsets", "", "", true),
];

/// The groups of every ServiceAccount.
pub fn sa_groups() -> Vec<String> {
    vec!["system:serviceaccounts".into(), "system:authenticated".into()]
}

/// The groups of every ServiceAccount, and `system:serviceaccounts:<ns>`.
pub fn sa_groups_in(ns: &str) -> Vec<String> {
    vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}"), "system:authenticated".into()]
}

/// May `user`, in `groups`, do `access` (a SubjectAccessReview)?
pub async fn can(client: &Client, user: &str, groups: &[String], access: Access<'_>) -> bool {
    let (verb, group, resource, ns, name) = access;
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let sar: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource, "subresource": subresource,
                "namespace": ns, "name": name,
            },
        }
    }))
    .unwrap();
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let r = api.create(&PostParams::default(), &sar).await.expect("SubjectAccessReview");
    r.status.expect("status").allowed
}

/// Asserts a table of (verb, group, resource, namespace, name, allowed) for `user`, in the
/// groups `groups` gives for each row.
pub async fn assert_access(
    client: &Client,
    user: &str,
    groups: impl Fn(Access) -> Vec<String>,
    table: &[(&str, &str, &str, &str, &str, bool)],
) {
    let mut wrong = vec![];
    for &(verb, group, resource, ns, name, want) in table {
        let access = (verb, group, resource, ns, name);
        if can(client, user, &groups(access), access).await != want {
            let scope = if ns.is_empty() { "cluster-wide".to_string() } else { format!("in {ns}") };
            wrong.push(format!(
                "{verb} {group}/{resource} {name} {scope}: want {}",
                if want { "allowed" } else { "denied" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{user}:\n  {}", wrong.join("\n  "));
}

// ---------------------------------------------------------------------------------------
// In-cluster mode

/// A token of the ServiceAccount `ns/name` (TokenRequest, valid for an hour).
pub async fn token(client: &Client, ns: &str, name: &str) -> String {
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}})).unwrap();
    let issued: TokenRequest = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {ns}/{name}: {e}"));
    issued.status.expect("token").token
}

/// Writes a pod's ServiceAccount files (token, ca.crt, namespace) to `dir/serviceaccount`.
pub fn service_account_files(dir: &Path, token: &str, ns: &str) -> PathBuf {
    let files = dir.join("serviceaccount");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("token"), token).unwrap();
    std::fs::copy(var("MC_KUBE_CA"), files.join("ca.crt")).unwrap();
    std::fs::write(files.join("namespace"), ns).unwrap();
    files
}

/// Mounts a tmpfs on the deepest existing directory of the ServiceAccount path (creating
/// the rest inside it), copies the token, CA and namespace there, and execs the command.
/// It runs in a private mount namespace: nothing is written to the host's file system and
/// the mount vanishes with the process.
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

/// Asserts that this process may make a private mount namespace (`unshare`).
pub fn assert_unshare() {
    let probe = Command::new("unshare").args(["--mount", "--propagation", "private", "true"]).output();
    let probe = probe.expect("unshare (util-linux) on PATH");
    assert!(
        probe.status.success(),
        "this test needs a private mount namespace (run as root, or with CAP_SYS_ADMIN): {}",
        text(&probe)
    );
}

/// The binary with the ServiceAccount `files` at SA_DIR, in a private mount namespace,
/// with no environment but PATH and HOME (`home`, created). The caller adds the binary's
/// arguments and environment.
pub fn in_cluster(files: &Path, home: &Path) -> Command {
    std::fs::create_dir_all(home).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", MOUNT_SERVICE_ACCOUNT, "sh"])
        .arg(files)
        .arg(binary())
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", home)
        .stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------------------
// Slack

/// A Slack stand-in on loopback (webhook path `/services/T0/B0/<name>`): answers `ok` and
/// keeps every body it receives.
pub fn slack_receiver(name: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T0/B0/{name}", listener.local_addr().unwrap());
    let posts = Arc::new(Mutex::new(Vec::new()));
    let store = posts.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            // Headers, then as much body as Content-Length says.
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

/// The Secret `slack-webhook` in `ns`, with the webhook `url` under `url`.
pub async fn create_webhook_secret(client: &Client, ns: &str, url: &str) {
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "slack-webhook"}, "stringData": {"url": url}})).unwrap();
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await.unwrap();
}
