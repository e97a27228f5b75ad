//! Helpers of tests/chart.rs, tests/rbac.rs and tests/cronjob.rs: helm and kubectl at the
//! versions tests/env builds, releases that uninstall themselves, kubeconform against the
//! test apiserver's own OpenAPI, SubjectAccessReviews, ServiceAccount tokens, and the
//! binary in in-cluster mode.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Map, Value, json};

use super::{binary, eventually, var};
use morningcheck::api::MorningCheck;

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
// The tools tests/env builds

/// The variables of tests/env/versions.sh (`HELM_DIR`, `K8S_OLDEST_SUPPORTED`, ...),
/// expanded as bash does (`$NAME`, `${NAME:-default}`, the environment).
pub fn versions() -> &'static HashMap<String, String> {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        let mut vars = HashMap::new();
        for line in read("tests/env/versions.sh").lines() {
            let line = line.split(" #").next().unwrap().trim();
            let Some((name, value)) = line.split_once('=') else { continue };
            if name.starts_with('#') || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            let value = expand(value.trim().trim_matches('"'), &vars);
            vars.insert(name.to_string(), value);
        }
        vars
    })
}

fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let lookup = |name: &str| vars.get(name).cloned().or_else(|| std::env::var(name).ok()).unwrap_or_default();
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(braced) = rest.strip_prefix('{') {
            let end = braced.find('}').expect("closing brace in versions.sh");
            let inner = &braced[..end];
            out.push_str(&match inner.split_once(":-") {
                Some((name, default)) => {
                    Some(lookup(name)).filter(|v| !v.is_empty()).unwrap_or_else(|| expand(default, vars))
                }
                None => lookup(inner),
            });
            rest = &braced[end + 1..];
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            out.push_str(&lookup(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out + rest
}

/// A variable of the running test environment (.testenv/env), if it is up and has it.
fn testenv(name: &str) -> Option<String> {
    let dir =
        std::env::var("MORNINGCHECK_TESTENV").unwrap_or_else(|_| format!("{}/.testenv", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(format!("{dir}/env")).ok()?;
    text.lines().filter_map(|l| l.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

/// A tool of the test environment: `env_var` of .testenv/env, else `file` in the cache
/// directory `dir_var` of versions.sh (where tests/env/build.sh puts it).
fn tool(env_var: &str, dir_var: &str, file: &str) -> String {
    let path = testenv(env_var).unwrap_or_else(|| {
        let dir = versions().get(dir_var).unwrap_or_else(|| panic!("{dir_var} not in tests/env/versions.sh"));
        Path::new(dir).join(file).to_str().unwrap().trim_end_matches('/').to_string()
    });
    assert!(Path::new(&path).exists(), "{path} missing: build it with tests/env/build.sh");
    path
}

/// helm, built from its Go module at the version of versions.sh.
pub fn helm_bin() -> String {
    tool("MC_HELM_BIN", "HELM_DIR", "helm")
}

/// kubectl at the test apiserver's minor version.
pub fn kubectl_bin() -> String {
    tool("MC_KUBECTL_BIN", "K8S_DIR", "kubectl")
}

pub fn kubeconform_bin() -> String {
    tool("MC_KUBECONFORM_BIN", "KUBECONFORM_DIR", "kubeconform")
}

/// The prometheus-operator's ServiceMonitor and PrometheusRule CRD files.
pub fn monitoring_crd_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(tool("MC_PROMETHEUS_OPERATOR_CRDS", "PROMETHEUS_OPERATOR_CRDS_DIR", ""));
    ["servicemonitors", "prometheusrules"]
        .iter()
        .map(|kind| dir.join(format!("monitoring.coreos.com_{kind}.yaml")))
        .inspect(|f| assert!(f.is_file(), "{} missing", f.display()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// helm

/// helm with a configuration, cache and data directory of the tests' own (no user's
/// repositories or plugins), and no cluster unless the arguments name one.
pub fn helm(args: &[&str]) -> Output {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    Command::new(helm_bin())
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run helm")
}

/// helm against the test apiserver as its admin.
pub fn helm_on_cluster(args: &[&str]) -> Output {
    let kubeconfig = var("MC_KUBECONFIG");
    let mut all = vec!["--kubeconfig", kubeconfig.as_str(), "--kube-context", "admin"];
    all.extend_from_slice(args);
    helm(&all)
}

pub fn chart_dir() -> String {
    repo().join(CHART).to_str().unwrap().to_string()
}

/// The newest Kubernetes minor the chart supports: the test apiserver's (`1.37`).
pub fn newest_supported() -> String {
    versions()["K8S_VERSION"].split('.').take(2).collect::<Vec<_>>().join(".")
}

/// `helm template RELEASE charts/morningcheck --namespace NAMESPACE ARGS`, for the newest
/// supported Kubernetes unless ARGS name a `--kube-version` (helm's own default is the
/// client-go minor it was built with, which `go install` does not record); Err carries
/// helm's message.
pub fn try_render(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    let (chart, newest) = (chart_dir(), newest_supported());
    let mut all = vec!["template", release, chart.as_str(), "--namespace", namespace];
    if !args.contains(&"--kube-version") {
        all.extend(["--kube-version", newest.as_str()]);
    }
    all.extend_from_slice(args);
    let out = helm(&all);
    if out.status.success() { Ok(String::from_utf8(out.stdout).unwrap()) } else { Err(text(&out)) }
}

pub fn render(release: &str, namespace: &str, args: &[&str]) -> String {
    try_render(release, namespace, args).unwrap_or_else(|e| panic!("helm template {args:?} failed:\n{e}"))
}

/// The release's NOTES, as `helm install` prints them (a dry run against the test
/// apiserver, which supplies the Kubernetes version).
pub fn notes(release: &str, namespace: &str, args: &[&str]) -> String {
    let chart = chart_dir();
    let mut all = vec!["install", release, chart.as_str(), "--namespace", namespace, "--dry-run=server"];
    all.extend_from_slice(args);
    let out = helm_on_cluster(&all);
    assert!(out.status.success(), "helm install --dry-run=server {args:?}:\n{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (_, notes) = stdout.split_once("\nNOTES:\n").unwrap_or_else(|| panic!("no NOTES in:\n{stdout}"));
    notes.to_string()
}

/// A release installed by `helm install` on the test apiserver, uninstalled when dropped
/// (its cluster-scoped objects above all: namespaced ones go with the test namespace).
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    /// `helm install NAME charts/morningcheck -n NAMESPACE ARGS`; Err carries helm's message.
    pub fn install(name: &str, namespace: &str, args: &[&str]) -> Result<(Self, String), String> {
        let chart = chart_dir();
        let mut all = vec!["install", name, chart.as_str(), "--namespace", namespace];
        all.extend_from_slice(args);
        let out = helm_on_cluster(&all);
        let release = Self { name: name.into(), namespace: namespace.into() };
        if out.status.success() { Ok((release, text(&out))) } else { Err(text(&out)) }
    }

    /// `helm upgrade NAME charts/morningcheck -n NAMESPACE ARGS`.
    pub fn upgrade(&self, args: &[&str]) -> Output {
        let chart = chart_dir();
        let mut all = vec!["upgrade", self.name.as_str(), chart.as_str(), "--namespace", self.namespace.as_str()];
        all.extend_from_slice(args);
        helm_on_cluster(&all)
    }

    /// `helm uninstall`, which must succeed.
    pub fn uninstall(&self, args: &[&str]) -> String {
        let mut all = vec!["uninstall", self.name.as_str(), "--namespace", self.namespace.as_str()];
        all.extend_from_slice(args);
        let out = helm_on_cluster(&all);
        assert!(out.status.success(), "helm uninstall {}:\n{}", self.name, text(&out));
        text(&out)
    }

    /// The release as helm stored it (`helm status -o json`).
    pub fn status(&self) -> Value {
        let out = helm_on_cluster(&["status", &self.name, "--namespace", &self.namespace, "-o", "json"]);
        assert!(out.status.success(), "helm status:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// What helm applied in the current revision (`helm get manifest`).
    pub fn manifest(&self) -> String {
        let out = helm_on_cluster(&["get", "manifest", &self.name, "--namespace", &self.namespace]);
        assert!(out.status.success(), "helm get manifest:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm_on_cluster(&["uninstall", &self.name, "--namespace", &self.namespace, "--ignore-not-found"]);
    }
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

/// kubectl (the server's minor version) as the test environment's admin.
pub fn kubectl(args: &[&str]) -> Output {
    Command::new(kubectl_bin())
        .args(["--context", "admin"])
        .args(args)
        .env("KUBECONFIG", var("MC_KUBECONFIG"))
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl")
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

/// The chart's CRD, applied idempotently (server-side apply, the field manager the other
/// tests use for the same CRD), and served.
pub async fn install_chart_crd(client: &Client) {
    let text = std::fs::read_to_string(repo().join(CHART).join("crds/morningcheck.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("the chart's CRD");
    let name = crd.metadata.name.clone().unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(&name, &PatchParams::apply("morningcheck-tests").force(), &Patch::Apply(&crd)).await.expect("CRD");
    let mcs: Api<MorningCheck> = Api::all(client.clone());
    eventually(30, "the CRD served", || {
        let mcs = mcs.clone();
        async move { mcs.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
}

/// The controller's config file as the installed release's ConfigMap holds it, written to
/// `dir`: the controller under test runs with the chart's own tenancy policy.
pub async fn release_config(client: &Client, ns: &str, fullname: &str, dir: &Path) -> PathBuf {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(&format!("{fullname}-config"))
        .await
        .expect("the release's config ConfigMap");
    let text = cm.data.and_then(|d| d.get("config.yaml").cloned()).expect("config.yaml in the ConfigMap");
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The AWS environment of a pod with IRSA: a web identity token file and a role, with STS
/// (and every other AWS API) at `endpoint`.
pub fn web_identity(token_file: &Path, endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/morningcheck-operator"),
        ("AWS_ROLE_SESSION_NAME", "morningcheck"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "ca-central-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The controller process in in-cluster mode (see [`in_cluster`]), killed when dropped.
pub struct InCluster {
    child: Child,
    log: PathBuf,
}

impl InCluster {
    /// Starts `morningcheck <args>` with the ServiceAccount files at the in-cluster paths
    /// and `env` as its only extra environment.
    pub fn start(files: &Path, args: &[String], log: PathBuf, env: &[(String, String)]) -> Self {
        let server = var("MC_KUBE_SERVER");
        let port = server.rsplit(':').next().unwrap().trim_end_matches('/').to_string();
        // No KUBECONFIG, no ~/.kube: the in-cluster configuration is all there is.
        let child = in_cluster(files, &files.join("home"))
            .args(args)
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", &port)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unshare");
        Self { child, log }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for InCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
            let body = super::slack_api::read_request(&mut s).map(|(_, b)| String::from_utf8_lossy(&b).to_string());
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

// ---------------------------------------------------------------------------------------
// CRDs the chart's optional objects need

/// The prometheus-operator's ServiceMonitor and PrometheusRule CRDs (server-side apply,
/// idempotent), established. Once per test binary.
pub async fn install_monitoring_crds() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        for file in monitoring_crd_files() {
            let out = kubectl(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager",
                "morningcheck-tests",
                "-f",
                file.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}:\n{}", file.display(), text(&out));
        }
        let out = kubectl(&[
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "60s",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ]);
        assert!(out.status.success(), "monitoring CRDs established:\n{}", text(&out));
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// kubeconform against the test apiserver's OpenAPI

/// GET `path` from the apiserver, as JSON.
pub async fn get_raw(client: &Client, path: &str) -> Value {
    let request = http::Request::get(path).body(vec![]).unwrap();
    let body = client.request_text(request).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Every group-version the apiserver publishes in /openapi/v3, with its document.
pub async fn openapi_v3(client: &Client) -> BTreeMap<(String, String), Value> {
    let index = get_raw(client, "/openapi/v3").await;
    let mut out = BTreeMap::new();
    for (path, entry) in index["paths"].as_object().expect("/openapi/v3 paths") {
        let gv = match path.split('/').collect::<Vec<_>>()[..] {
            ["api", version] => (String::new(), version.to_string()),
            ["apis", group, version] => (group.to_string(), version.to_string()),
            _ => continue,
        };
        let url = entry["serverRelativeURL"].as_str().expect("serverRelativeURL");
        out.insert(gv, get_raw(client, url).await);
    }
    out
}

/// The /openapi/v3 document of one group-version (`api/v1`, `apis/networking.k8s.io/v1`).
pub async fn openapi_doc(client: &Client, path: &str) -> Value {
    let index = get_raw(client, "/openapi/v3").await;
    let url = index["paths"][path]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("no {path} in /openapi/v3"));
    get_raw(client, url).await
}

/// One schema of an OpenAPI v3 document (`io.k8s.api.core.v1.SecurityContext`).
pub fn openapi_schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no {name} in the OpenAPI document");
    schema
}

/// An OpenAPI schema turned into the JSON Schema kubeconform validates with: refs into
/// `definitions`, int-or-string and nullable as JSON Schema types, and every object that
/// lists its properties closed (`additionalProperties: false`) unless Kubernetes keeps
/// unknown fields there, which is what kubeconform's strict mode means.
fn json_schema(node: &Value) -> Value {
    let Some(obj) = node.as_object() else { return node.clone() };
    let mut out = Map::new();
    for (k, v) in obj {
        let v = match k.as_str() {
            "$ref" => json!(v.as_str().unwrap().replace("#/components/schemas/", "#/definitions/")),
            "properties" | "patternProperties" => {
                Value::Object(v.as_object().unwrap().iter().map(|(p, s)| (p.clone(), json_schema(s))).collect())
            }
            "items" | "additionalProperties" | "not" => json_schema(v),
            "allOf" | "anyOf" | "oneOf" => Value::Array(v.as_array().unwrap().iter().map(json_schema).collect()),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let int_or_string = obj.get("format").and_then(Value::as_str) == Some("int-or-string")
        || obj.get("x-kubernetes-int-or-string") == Some(&json!(true));
    if int_or_string {
        out.remove("format");
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if obj.get("nullable") == Some(&json!(true))
        && let Some(t) = obj.get("type").and_then(Value::as_str)
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if obj.get("type").and_then(Value::as_str) == Some("object")
        && obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
        && !preserve
    {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

fn refs(node: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(obj) => {
            if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
                found.push(r.trim_start_matches("#/components/schemas/").to_string());
            }
            obj.values().for_each(|v| refs(v, found));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

/// A standalone JSON Schema file for the schema `name` of `doc`: the schema, and every
/// schema it reaches under `definitions`.
fn standalone(doc: &Value, name: &str) -> Value {
    let all = &doc["components"]["schemas"];
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if seen.insert(n.clone()) {
            let mut found = vec![];
            refs(&all[&n], &mut found);
            todo.extend(found);
        }
    }
    let mut root = json_schema(&all[name]);
    let definitions: Map<String, Value> = seen.iter().map(|n| (n.clone(), json_schema(&all[n]))).collect();
    root["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    root["definitions"] = Value::Object(definitions);
    root
}

/// Writes one JSON Schema per kind the apiserver serves into `dir`, at the path kubeconform's
/// `-schema-location` template [`KUBECONFORM_TEMPLATE`] names (the core group's files under
/// `v1/v1/`). Returns how many it wrote.
pub fn write_kubeconform_schemas(openapi: &BTreeMap<(String, String), Value>, dir: &Path) -> usize {
    let mut written = 0;
    for ((group, version), doc) in openapi {
        let Some(schemas) = doc["components"]["schemas"].as_object() else { continue };
        for (name, schema) in schemas {
            let Some(gvks) = schema["x-kubernetes-group-version-kind"].as_array() else { continue };
            for gvk in gvks.iter().filter(|g| g["group"] == group.as_str() && g["version"] == version.as_str()) {
                let kind = gvk["kind"].as_str().unwrap().to_ascii_lowercase();
                let group_dir = if group.is_empty() { version.as_str() } else { group.as_str() };
                let file = dir.join(group_dir).join(version).join(format!("{kind}.json"));
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, serde_json::to_vec(&standalone(doc, name)).unwrap()).unwrap();
                written += 1;
            }
        }
    }
    written
}

/// kubeconform's `-schema-location`, relative to the schema directory.
pub const KUBECONFORM_TEMPLATE: &str = "{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json";

/// The JSON Schemas of every kind the test apiserver serves, with the MorningCheck and the
/// monitoring CRDs installed and published: written once per test binary.
pub async fn server_schemas(client: &Client) -> &'static Path {
    static DIR: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    DIR.get_or_init(|| async {
        super::install_crd(client).await;
        install_monitoring_crds().await;
        // The aggregated OpenAPI catches up with new CRDs a little later.
        let openapi = eventually(60, "the CRDs in /openapi/v3", || async {
            let openapi = openapi_v3(client).await;
            let published = |g: &str, v: &str| openapi.contains_key(&(g.to_string(), v.to_string()));
            (published("morningcheck.io", "v1alpha1") && published("monitoring.coreos.com", "v1")).then_some(openapi)
        })
        .await;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kubeconform-schemas");
        let _ = std::fs::remove_dir_all(&dir);
        let written = write_kubeconform_schemas(&openapi, &dir);
        assert!(written > 100, "only {written} schemas from /openapi/v3");
        dir
    })
    .await
}

/// kubeconform, strict, against the test apiserver's own schemas and nothing else.
pub async fn kubeconform(client: &Client, files: &[&Path]) -> Output {
    let dir = server_schemas(client).await;
    let location = format!("{}/{KUBECONFORM_TEMPLATE}", dir.display());
    Command::new(kubeconform_bin())
        .args(["-strict", "-summary", "-schema-location", &location])
        .args(files)
        .stdin(Stdio::null())
        .output()
        .expect("run kubeconform")
}

// ---------------------------------------------------------------------------------------
// Label selectors

/// Does `selector` select `labels`? A LabelSelector (matchLabels, matchExpressions), or a
/// Service's plain map of labels.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let plain = selector.get("matchLabels").is_none() && selector.get("matchExpressions").is_none();
    let match_labels = if plain { selector } else { &selector["matchLabels"] };
    let by_labels = match_labels.as_object().map(|m| m.iter().all(|(k, v)| label(k) == v.as_str())).unwrap_or(true);
    let by_expressions = selector["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = strings(&e["values"]);
            let key = e["key"].as_str().unwrap();
            match e["operator"].as_str().unwrap() {
                "In" => label(key).is_some_and(|v| values.iter().any(|x| x == v)),
                "NotIn" => label(key).is_none_or(|v| values.iter().all(|x| x != v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                op => panic!("unknown selector operator {op}"),
            }
        })
    });
    by_labels && by_expressions
}
