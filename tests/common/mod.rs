//! Shared helpers of the integration tests: the addresses of the real test environment
//! (tests/env/up.sh), clients, and namespaces of their own for each test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

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
    morningcheck::install_crypto_provider();
    let kc = Kubeconfig::read_from(var("MC_KUBECONFIG")).expect("kubeconfig");
    let opts = KubeConfigOptions { context: Some(context.into()), ..Default::default() };
    let config = Config::from_custom_kubeconfig(kc, &opts).await.expect("config");
    Client::try_from(config).expect("client")
}

pub async fn admin() -> Client {
    client_as("admin").await
}

/// Creates a namespace of its own for a test (`prefix-<random>`), deleted on drop.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.expect("create namespace");
        Self { name, client: client.clone() }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // Best effort: no controller-manager runs, so the namespace stays Terminating,
        // which is harmless for the other tests.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = Api::<Namespace>::all(client).delete(&name, &DeleteParams::default()).await;
            });
        }
    }
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

/// Path of the built `morningcheck` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_morningcheck")
}
