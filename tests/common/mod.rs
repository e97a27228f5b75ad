//! Shared helpers of the integration tests: the addresses of the real test environment
//! (tests/env/up.sh), clients, and namespaces of their own for each test.
#![allow(dead_code)]

pub mod chart;
pub mod slack_api;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use morningcheck::api::MorningCheck;
use morningcheck::api::{MorningCheckStatus, NotificationOutcome};
use morningcheck::clock::Clock;
use morningcheck::controller::{self, Context};
use morningcheck::metrics::Metrics;
use morningcheck::tenancy::Policy;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test environment's variables (`.testenv/env`). Panics with the command to run
/// when the environment is not up: these tests need the real peers.
pub fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::var("MORNINGCHECK_TESTENV")
            .unwrap_or_else(|_| format!("{}/.testenv", env!("CARGO_MANIFEST_DIR")));
        let path = format!("{dir}/env");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{path} missing: start the test environment with tests/env/up.sh"));
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    })
}

pub fn var(name: &str) -> String {
    env().get(name).cloned().unwrap_or_else(|| panic!("{name} not in the test environment"))
}

/// A client for a context of the test kubeconfig: admin, alice (no rights) or remote.
pub async fn client_as(context: &str) -> Client {
    Client::try_from(config_as(context).await).expect("client")
}

/// The configuration of a context of the test kubeconfig.
pub async fn config_as(context: &str) -> Config {
    morningcheck::install_crypto_provider();
    let kc = Kubeconfig::read_from(var("MC_KUBECONFIG")).expect("kubeconfig");
    let opts = KubeConfigOptions { context: Some(context.into()), ..Default::default() };
    Config::from_custom_kubeconfig(kc, &opts).await.expect("config")
}

/// A policy that lets `ns` use the operator's own identity, AWS identity, any role and
/// endpoint overrides: the tests that are not about tenancy run as the platform team's.
pub fn trusting(ns: &str) -> Policy {
    let mut p = Policy::default();
    p.kubernetes.operator_identity_namespaces = vec![ns.to_string()];
    p.aws.namespaces = Some(vec![ns.to_string()]);
    p.aws.assume_roles.insert(ns.to_string(), vec!["*".into()]);
    p.aws.allow_endpoint_override = true;
    p
}

pub async fn admin() -> Client {
    client_as("admin").await
}

/// A run's context against the test cluster as `client`, Secrets read from `ns`, with
/// the run's clock at `now` and a minute's deadline.
pub fn run_context(client: &Client, ns: &str, now: jiff::Timestamp) -> morningcheck::collect::RunContext {
    use morningcheck::collect::{LocalCluster, RunContext, SecretSource};
    RunContext {
        now,
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        secrets: SecretSource::Kubernetes { client: client.clone(), namespace: ns.to_string() },
        local: LocalCluster::Client(client.clone()),
        connect_timeout: None,
        aws_env: Default::default(),
        grants: morningcheck::tenancy::Grants::unrestricted(),
        in_flight: morningcheck::collect::in_flight(morningcheck::collect::TARGETS_IN_FLIGHT),
        previous: Default::default(),
        snoozes: Default::default(),
    }
}

/// Creates a namespace of its own for a test (`prefix-<random>`), deleted on drop.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.expect("create namespace");
        // ServiceAccount admission refuses pods until the controller-manager has made the
        // namespace's "default" ServiceAccount.
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        eventually(30, "the default ServiceAccount", || {
            let sas = sas.clone();
            async move { sas.get_opt("default").await.ok().flatten() }
        })
        .await;
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // A task spawned here would die with the test's runtime; kubectl outlives it. The
        // namespace controller deletes what is inside in the background.
        let _ = kubectl_command()
            .args(["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// The scheduler named by pods whose status a test plants by hand. No such scheduler
/// exists, so the pod is never bound to a node, and neither kwok nor a controller ever
/// writes its status: only the test does.
pub const PLANTED_SCHEDULER: &str = "morningcheck-test-planted";

/// The spec of a pod whose status a test plants by hand (see [`PLANTED_SCHEDULER`]).
pub fn planted_spec() -> serde_json::Value {
    serde_json::json!({"schedulerName": PLANTED_SCHEDULER, "containers": [{"name": "app", "image": "i"}]})
}

/// Polls `check` until it returns `Some`, or panics after `secs` with `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// kubectl at the test apiserver's own version (the machine's may be too old for its
/// skew), pointed at the test kubeconfig.
pub fn kubectl_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(var("MC_KUBECTL_BIN"));
    cmd.env("KUBECONFIG", var("MC_KUBECONFIG")).stdin(std::process::Stdio::null());
    cmd
}

/// Path of the built `morningcheck` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_morningcheck")
}

/// Installs the CRD generated from the Rust types, as a user would, and waits until served.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = morningcheck::crd::definition();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(&name, &PatchParams::apply("morningcheck-tests").force(), &Patch::Apply(&crd)).await.unwrap();
    let api: Api<MorningCheck> = Api::all(client.clone());
    eventually(30, "CRD served", || {
        let api = api.clone();
        async move { api.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
}

/// A controller config file holding [`trusting`]'s policy for `ns`, for controller
/// processes.
pub fn trusting_config(ns: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    let yaml = format!(
        "controller:\n  tenancy:\n    kubernetes: {{operatorIdentityNamespaces: [{ns}]}}\n    aws: {{namespaces: [{ns}], assumeRoles: {{{ns}: ['*']}}, allowEndpointOverride: true}}\n"
    );
    std::fs::write(f.path(), yaml).unwrap();
    f
}

/// The port a controller process with `--metrics-addr 127.0.0.1:0 --log-format json`
/// serves on, read from its log (a port chosen beforehand could be taken meanwhile).
pub fn serving_port(log: &std::path::Path, who: &str) -> u16 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let serving = text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find_map(|l| {
            let addr = l["fields"]["addr"]
                .as_str()
                .filter(|_| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("serving")))?;
            addr.rsplit(':').next()?.parse::<u16>().ok()
        });
        if let Some(port) = serving {
            return port;
        }
        assert!(std::time::Instant::now() < deadline, "{who} never said where it serves:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A controller running in this process, watching one namespace.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
    ctx: Arc<Context>,
    pub metrics: Metrics,
}

impl Running {
    /// The admin's controller: `ns` may use the operator's identity (see [`trusting`]).
    pub async fn start(_client: &Client, ns: &str, clock: Arc<dyn Clock>) -> Self {
        Self::start_with(ns, clock, trusting(ns)).await
    }

    /// A controller as admin, with the tenancy policy `policy`, watching `ns`.
    pub async fn start_with(ns: &str, clock: Arc<dyn Clock>, policy: Policy) -> Self {
        Self::start_on(config_as("admin").await, ns, clock, policy).await
    }

    /// A controller with the client configuration `config`.
    pub async fn start_on(config: Config, ns: &str, clock: Arc<dyn Clock>, policy: Policy) -> Self {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let ctx = Context::new(config, clock, metrics.clone(), 4, Some("test".into()))
            .expect("context")
            .with_policy(policy, "morningcheck-system");
        let ctx = Arc::new(ctx);
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let handle = tokio::spawn(controller::run(
            ctx.clone(),
            Some(ns.to_string()),
            shutdown,
            Arc::new(AtomicBool::new(false)),
        ));
        Self { stop: Some(tx), handle, ctx, metrics }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(120), self.handle).await.expect("controller stops").unwrap();
    }

    /// Kills the controller where it stands, as a SIGKILL would.
    pub fn kill(self) {
        self.handle.abort();
        self.ctx.runner.abort();
    }

    pub fn reconciles(&self) -> u64 {
        self.metrics.reconciles.get()
    }

    /// The runs counted, once `n` have been or ten seconds passed: a run is counted just
    /// after its status lands, so a test that saw the status may ask a moment early.
    pub async fn counted_runs(&self, n: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.runs() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.runs()
    }

    pub fn runs(&self) -> u64 {
        ["Healthy", "Warning", "Critical", "Failed"]
            .iter()
            .map(|r| {
                self.metrics.runs.get_or_create(&morningcheck::metrics::ResultLabels { result: r.to_string() }).get()
            })
            .sum()
    }
}

/// A kubeconfig for the test apiserver (or `server`) authenticating with `token`.
pub fn kubeconfig(server: &str, token: &str) -> String {
    let ca = base64(&std::fs::read(var("MC_KUBE_CA")).unwrap());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}', certificate-authority-data: '{ca}'}}\nusers:\n- name: u\n  user: {{token: '{token}'}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    )
}

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { T[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Creates MorningCheck `name` with `spec` in `ns`.
pub async fn create_check(client: &Client, ns: &str, name: &str, spec: Value) -> Api<MorningCheck> {
    let api: Api<MorningCheck> = Api::namespaced(client.clone(), ns);
    let mc: MorningCheck =
        serde_json::from_value(json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": name}, "spec": spec}))
        .unwrap();
    api.create(&PostParams::default(), &mc).await.unwrap();
    api
}

/// Creates Secret `name` in `ns` from string data.
pub async fn create_secret(client: &Client, ns: &str, name: &str, data: Value) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
    api.create(&PostParams::default(), &s).await.unwrap();
}

/// Asks for a run now, with `token`.
pub async fn run_now(api: &Api<MorningCheck>, name: &str, token: &str) {
    let patch = json!({"metadata": {"annotations": {"morningcheck.io/run-now": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// The status once the run of `token` finished and its Slack post settled.
pub async fn run_finished(api: &Api<MorningCheck>, name: &str, token: &str, secs: u64) -> MorningCheckStatus {
    eventually(secs, &format!("run {token} finished"), || async {
        let st = api.get(name).await.ok()?.status?;
        let run_id = format!("run-now-{token}");
        let done = st.last_run.as_ref().is_some_and(|r| r.run_id == run_id) && st.active_run.is_none();
        // The digest of this run, once its delivery is settled (none without Slack).
        let posted =
            st.notification.as_ref().is_none_or(|n| n.run_id == run_id && n.outcome != NotificationOutcome::Sending);
        (done && posted).then_some(st)
    })
    .await
}

/// A `morningcheck controller` process watching one namespace as the platform team's
/// ([`trusting_config`]), logging JSON lines at `RUST_LOG` level to a file; killed on drop.
pub struct ControllerProcess {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
    _config: tempfile::NamedTempFile,
}

impl ControllerProcess {
    pub fn start(ns: &str, extra: &[&str], rust_log: &str) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let config = trusting_config(ns);
        let child = std::process::Command::new(binary())
            .args(["controller", "--watch-namespace", ns, "--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .arg("--config")
            .arg(config.path())
            .args(extra)
            .env("KUBECONFIG", var("MC_KUBECONFIG"))
            .env("RUST_LOG", rust_log)
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("controller process");
        Self { child, log, _config: config }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port of its /metrics, /healthz and /readyz.
    pub fn port(&self) -> u16 {
        serving_port(self.log.path(), "the controller")
    }

    /// Sends it SIGTERM, as a rollout does, and waits up to a minute for it to exit: how
    /// long that took, and everything it logged.
    pub fn terminate(mut self) -> (Duration, String) {
        let started = std::time::Instant::now();
        let sent = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM");
        while self.child.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = started.elapsed();
        (took, self.stop())
    }

    /// Stops it and returns everything it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a namespaced object from JSON.
pub async fn create_object<K>(client: &Client, ns: &str, v: Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let obj: K = serde_json::from_value(v).unwrap();
    Api::<K>::namespaced(client.clone(), ns).create(&PostParams::default(), &obj).await.unwrap()
}

/// A listener on loopback that counts the connections it accepts and answers each, after
/// one read of the request, with `response`: its URL (`http://addr{path}`) and the count.
pub fn counting_listener(path: &str, response: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response.as_bytes());
        }
    });
    (url, count)
}

/// What a [`faulty_proxy`] does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it, and its answer back.
    Pass,
    /// Forward it, then close the connection before its answer: the write happens, the
    /// client never learns it did.
    LoseAnswer,
    /// Answer 503 without forwarding it, as an apiserver that is going away.
    Refuse,
}

/// A plain-HTTP door to the test apiserver: each request (head and body, as text) is
/// shown to `decide`, then forwarded over TLS, its answer lost, or refused.
pub struct FaultyProxy {
    pub url: String,
}

pub async fn faulty_proxy(decide: impl Fn(&str) -> Fault + Send + Sync + 'static) -> FaultyProxy {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    morningcheck::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(var("MC_KUBE_CA")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    let server = url::Url::parse(&var("MC_KUBE_SERVER")).unwrap();
    let (host, port) = (server.host_str().unwrap().to_string(), server.port_or_known_default().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let decide = Arc::new(decide);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (tls, host, decide) = (tls.clone(), host.clone(), decide.clone());
            tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from(host.clone()).unwrap();
                let Ok(upstream) = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await else { return };
                let (mut up_read, mut up_write) = tokio::io::split(upstream);
                let (down_read, down_write) = client.into_split();
                let down_write = Arc::new(tokio::sync::Mutex::new(down_write));
                // Answers stream back as they come; HTTP/1.1 sends the next request only once
                // the last answer is in, so a refusal never lands inside another answer.
                let back = down_write.clone();
                let (lost_tx, mut lost_rx) = tokio::sync::mpsc::channel::<()>(1);
                let downward = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = tokio::select! {
                            n = up_read.read(&mut buf) => match n { Ok(0) | Err(_) => return, Ok(n) => n },
                            _ = lost_rx.recv() => {
                                // Let the apiserver take the request in, then hang up.
                                let _ = tokio::time::timeout(Duration::from_secs(10), up_read.read(&mut buf)).await;
                                let _ = back.lock().await.shutdown().await;
                                return;
                            }
                        };
                        if back.lock().await.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut reader = tokio::io::BufReader::new(down_read);
                loop {
                    // One request: its head, then a body of Content-Length bytes.
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        match reader.read_until(b'\n', &mut head).await {
                            Ok(0) | Err(_) => {
                                downward.abort();
                                return;
                            }
                            Ok(_) => {}
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        downward.abort();
                        return;
                    }
                    let request = format!("{text}{}", String::from_utf8_lossy(&body));
                    match decide(&request) {
                        Fault::Refuse => {
                            let answer = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"refused by the test proxy","reason":"ServiceUnavailable","code":503}"#;
                            let reply = format!(
                                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                                answer.len()
                            );
                            if down_write.lock().await.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        fault => {
                            if up_write.write_all(&head).await.is_err() || up_write.write_all(&body).await.is_err() {
                                return;
                            }
                            if fault == Fault::LoseAnswer {
                                let _ = lost_tx.send(()).await;
                                let _ = downward.await;
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    FaultyProxy { url }
}

/// Established TCP connections of process `pid` to port `port` (read off /proc).
pub fn connections_to(pid: u32, port: u16) -> usize {
    let sockets: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect();
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = f.get(2).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if f.get(3) == Some(&"01") && remote_port == Some(port) && f.get(9).is_some_and(|i| sockets.contains(*i)) {
                n += 1;
            }
        }
    }
    n
}

/// Slack's own Block Kit models (slack_sdk, tests/slack_blocks.py) accept every block.
pub fn slack_models_accept(payload: &Value) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(payload).unwrap()).unwrap();
    let script = format!("{}/tests/slack_blocks.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(var("MC_SLACK_SDK_PYTHON"))
        .arg(script)
        .arg(file.path())
        .output()
        .expect("the slack_sdk venv (tests/env/install.sh)");
    assert!(
        out.status.success(),
        "slack_sdk refuses the message: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pod that kwok drives into CrashLoopBackOff.
pub async fn crashing_pod(client: &Client, ns: &str, name: &str) {
    create_object::<k8s_openapi::api::core::v1::Pod>(
        client,
        ns,
        json!({"metadata": {"name": name, "labels": {"morningcheck.test/state": "crashloop"}},
               "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}),
    )
    .await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    eventually(60, &format!("{ns}/{name} in CrashLoopBackOff"), || {
        let pods = pods.clone();
        async move {
            let status = serde_json::to_value(pods.get(name).await.ok()?.status?).ok()?;
            (status["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff").then_some(())
        }
    })
    .await;
}
