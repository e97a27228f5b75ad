//! deploy/cronjob.yaml (the chart's CronJob alone, rendered by helm), the way to run
//! `morningcheck run` as a Kubernetes CronJob: it installs on the RBAC-enforcing test
//! apiserver (server-side dry run, then for real, in a test namespace), its ServiceAccount
//! may read exactly what the checks read, and the
//! container's command line, run as written against the ConfigMap's MorningCheck, gives the
//! exit code and report the CronJob relies on: first with the test kubeconfig, then in
//! in-cluster mode with a token of the manifest's own ServiceAccount and the ConfigMap's
//! kubeconfig (token and CA at the in-cluster paths, inside a private mount namespace).
//! tests/chart.rs checks that this file is what helm renders from the chart today.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::chart::{
    Access, CHECK_READS, Cleanup, SA_DIR, apply, assert_access, assert_unshare, create_webhook_secret, docs, dry_run,
    get_json, in_cluster, one, read, sa_groups_in, service_account_files, slack_receiver, strings, text, token,
};
use common::{TestNamespace, admin, binary, var};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

const MANIFEST: &str = "deploy/cronjob.yaml";

/// The documents of deploy/cronjob.yaml, as JSON.
fn manifest() -> Vec<Value> {
    docs(&read(MANIFEST))
}

fn pod_spec(docs: &[Value]) -> &Value {
    &one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
}

/// The manifest moved into namespace `ns` (its Namespace object dropped: the test's exists),
/// with its cluster-scoped objects renamed for this run. Returns the List and the renamed
/// cluster-scoped name.
fn for_namespace(docs: &[Value], ns: &str) -> (Value, String) {
    assert_eq!(docs[0]["kind"], "Namespace");
    let cluster_name = format!("morningcheck-cron-{ns}");
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
        items.push(d);
    }
    (json!({"apiVersion": "v1", "kind": "List", "items": items}), cluster_name)
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
    // The test's Deployment is seconds old: no grace, so its shortfall is reported at once.
    t["kubernetes"][0]["thresholds"]["pendingGraceSeconds"] = json!(0);
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

/// A Deployment with no available replica, critical: its pod asks for a node that does
/// not exist, so the scheduler leaves it Pending. It carries the label
/// `morningcheck-test=<ns>`.
async fn plant_unavailable_deployment(client: &Client, ns: &str) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"morningcheck-test": ns}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"nodeSelector": {"morningcheck.io/test-node": "none"},
                                       "containers": [{"name": "web", "image": "web"}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns).create(&PostParams::default(), &d).await.unwrap();
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
    let (url, posts) = slack_receiver("cronjob");
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
    assert!(stdout.starts_with(&format!("{}/morningcheck-cron: CRITICAL", ns.name)), "{stdout}");
    assert!(stdout.contains(&format!("{}/web", ns.name)) && stdout.contains("DiskAlmostFull"), "{stdout}");
    assert!(!stdout.contains("Watchdog"), "the check's own alert filter applies: {stdout}");
    assert!(!stderr.contains("morningcheck:"), "no error: {stderr}");
    assert!(!stdout.contains("\n  ERR "), "no target error: {stdout}");
    assert_eq!(posts.lock().unwrap().len(), 1, "the digest is posted once");
    assert!(posts.lock().unwrap()[0].contains("morningcheck-cron"), "{:?}", posts.lock().unwrap());

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
    assert!(stdout.starts_with(&format!("{}/morningcheck-cron: WARNING", quiet.name)), "{stdout}");
    assert!(stdout.contains("HighLatency") && !stdout.contains("DiskAlmostFull"), "{stdout}");
    assert!(!stderr.contains("morningcheck:"), "no error: {stderr}");
    assert!(!stdout.contains("\n  ERR "), "no target error: {stdout}");
    assert_eq!(posts.lock().unwrap().len(), 2);
}

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
    let (list, cluster_name) = for_namespace(&docs, n);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cronjob.json");
    std::fs::write(&file, serde_json::to_string_pretty(&list).unwrap()).unwrap();
    let _cleanup = Cleanup::named("clusterrolebinding,clusterrole", &cluster_name);

    dry_run(&file);
    let out = apply(&file);
    for object in [
        "serviceaccount/morningcheck-cron",
        "configmap/morningcheck-cron-run",
        "cronjob.batch/morningcheck-cron-run",
        "role.rbac.authorization.k8s.io/morningcheck-cron-secrets",
        &format!("clusterrole.rbac.authorization.k8s.io/{cluster_name}"),
    ] {
        assert!(text(&out).contains(&format!("{object} created")), "{object}:\n{}", text(&out));
    }
    let stored = get_json(n, "cronjob", "morningcheck-cron-run");
    assert_eq!(stored["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(stored["spec"]["startingDeadlineSeconds"], 600);
    let pod = &stored["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"], pod_spec(&docs)["securityContext"]);
    assert_eq!(pod["containers"][0]["securityContext"], pod_spec(&docs)["containers"][0]["securityContext"]);
    assert_eq!(pod["containers"][0]["args"], pod_spec(&docs)["containers"][0]["args"]);

    let sa = format!("system:serviceaccount:{n}:morningcheck-cron");
    #[rustfmt::skip]
    let table = [CHECK_READS.as_slice(), &[
        ("get", "", "secrets", n, "slack-webhook", true),
        ("get", "", "secrets", n, "other", false),
        ("list", "", "secrets", n, "", false),
        ("get", "", "secrets", "default", "slack-webhook", false),
        ("watch", "", "pods", "", "", false),
        ("get", "", "pods", n, "p", false),
        ("get", "", "configmaps", n, "morningcheck-cron-run", false),
        ("list", "morningcheck.io", "morningchecks", "", "", false),
        ("create", "events.k8s.io", "events", n, "", false),
        ("create", "", "events", n, "", false),
        ("create", "coordination.k8s.io", "leases", n, "", false),
        ("create", "batch", "jobs", n, "", false),
        ("create", "", "serviceaccounts/token", n, "morningcheck-cron", false),
    ]].concat();
    // A subresource is asked about with the group system:serviceaccounts alone.
    let groups = |(_, _, resource, ns, _): Access| {
        if resource.contains('/') { vec!["system:serviceaccounts".to_string()] } else { sa_groups_in(ns) }
    };
    assert_access(&client, &sa, groups, &table).await;

    // In-cluster: the manifest's ServiceAccount token and the ConfigMap's kubeconfig.
    assert_unshare();
    let token = token(&client, n, "morningcheck-cron").await;
    let sa_files = service_account_files(dir.path(), &token, n);

    let (url, posts) = slack_receiver("cronjob");
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
    let out = in_cluster(&sa_files, &dir.path().join("home")).args(&c.args).envs(&c.env).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "critical findings, no failed target\n{stdout}\n{stderr}");
    assert!(stdout.starts_with(&format!("{n}/morningcheck-cron: CRITICAL")), "{stdout}");
    assert!(stdout.contains(&format!("{n}/web")), "the Deployment was listed with the token: {stdout}");
    // Exit 1, not 2, and no target error: every list and the Secret read were allowed.
    // (stdout may quote other tests' Warning events, so only stderr is searched for words.)
    assert!(!stdout.contains("\n  ERR "), "no target error: {stdout}");
    for bad in ["forbidden", "unauthorized", "morningcheck:"] {
        assert!(!stderr.to_ascii_lowercase().contains(bad), "`{bad}` on stderr:\n{stderr}");
    }
    assert_eq!(posts.lock().unwrap().len(), 1, "the webhook Secret was read with the token, the digest posted");
    assert!(!Path::new(SA_DIR).join("token").exists(), "nothing left on the host");
}
