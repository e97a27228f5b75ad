//! Kubernetes checks against the real test apiserver, on states planted by hand where the
//! exact times matter (a pod Pending 601 s against a grace of 600 s, events inside and
//! outside the window): pods, nodes and events are created and their `status` patched.
//! Planted pods name a scheduler that does not exist, so they are never bound to a node and
//! neither kwok nor a controller writes their status; planted nodes are tainted so that no
//! other test's pod lands on them. The same checks on states that
//! Kubernetes and kwok write themselves are in tests/kwok.rs.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{TestNamespace, admin, kubeconfig, var};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use morningcheck::api::{Area, ErrorTier, KubernetesTarget, Severity};
use morningcheck::collect::{RunContext, kubernetes};
use morningcheck::evaluate::build_report;
use serde_json::{Value, json};
use tokio::time::Instant;

fn ago(now: Timestamp, secs: i64) -> String {
    (now - SignedDuration::from_secs(secs)).to_string()
}

fn ctx(client: &Client, ns: &str, now: Timestamp) -> RunContext {
    common::run_context(client, ns, now)
}

fn target(v: Value) -> KubernetesTarget {
    serde_json::from_value(v).unwrap()
}

async fn create<K>(api: &Api<K>, v: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

async fn set_status<K>(api: &Api<K>, name: &str, status: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({ "status": status }))).await.unwrap();
}

async fn pod(api: &Api<Pod>, name: &str, status: Value) {
    let containers = json!([{"name": "app", "image": "registry.invalid/app:1"}]);
    let spec = if status.get("initContainerStatuses").is_some() {
        json!({"initContainers": [{"name": "init", "image": "registry.invalid/init:1"}], "containers": containers})
    } else {
        json!({"containers": containers})
    };
    let mut spec = spec;
    spec["schedulerName"] = json!(common::PLANTED_SCHEDULER);
    create(api, json!({"metadata": {"name": name}, "spec": spec})).await;
    set_status(api, name, status).await;
}

fn container(name: &str, ready: bool, restarts: i32, state: Value) -> Value {
    json!({"name": name, "ready": ready, "restartCount": restarts, "image": "i", "imageID": "", "state": state})
}

/// Plants one pod of every kind the checks know, and workloads, in `ns`.
async fn plant(client: &Client, ns: &str, now: Timestamp) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let running = json!({"running": {"startedAt": ago(now, 7200)}});
    let ready_cond =
        |status: &str, since: i64| json!([{"type": "Ready", "status": status, "lastTransitionTime": ago(now, since)}]);
    pod(
        &pods,
        "healthy",
        json!({"phase": "Running", "startTime": ago(now, 7200), "conditions": ready_cond("True", 7000),
        "containerStatuses": [container("app", true, 0, running.clone())]}),
    )
    .await;
    pod(
        &pods,
        "at-threshold",
        json!({"phase": "Running", "startTime": ago(now, 7200), "conditions": ready_cond("True", 7000),
        "containerStatuses": [container("app", true, 5, running.clone())]}),
    )
    .await;
    let mut crash = container(
        "app",
        false,
        6,
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}),
    );
    crash["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(now, 120)}});
    pod(
        &pods,
        "crashing",
        json!({"phase": "Running", "startTime": ago(now, 7200), "conditions": ready_cond("False", 3600),
        "containerStatuses": [crash]}),
    )
    .await;
    pod(&pods, "init-pull", json!({"phase": "Pending", "startTime": ago(now, 60),
        "initContainerStatuses": [container("init", false, 0, json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}))],
        "containerStatuses": [container("app", false, 0, json!({"waiting": {"reason": "PodInitializing"}}))]})).await;
    pod(&pods, "pending-old", json!({"phase": "Pending", "startTime": ago(now, 601),
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]})).await;
    pod(&pods, "pending-at-grace", json!({"phase": "Pending", "startTime": ago(now, 600)})).await;
    pod(
        &pods,
        "evicted",
        json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}),
    )
    .await;
    pod(&pods, "lost", json!({"phase": "Unknown"})).await;
    pod(&pods, "job-done", json!({"phase": "Succeeded"})).await;
    pod(
        &pods,
        "unready",
        json!({"phase": "Running", "startTime": ago(now, 7200), "conditions": ready_cond("False", 900),
        "containerStatuses": [container("app", false, 0, running.clone())]}),
    )
    .await;
    pod(
        &pods,
        "unready-young",
        json!({"phase": "Running", "startTime": ago(now, 7200), "conditions": ready_cond("False", 300),
        "containerStatuses": [container("app", false, 0, running)]}),
    )
    .await;

    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let event = |name: &str, obj: &str, reason: &str, type_: &str, last: i64, count: i32| {
        json!({"metadata": {"name": name}, "type": type_, "reason": reason, "message": format!("{reason} on {obj}"), "count": count,
            "involvedObject": {"kind": "Pod", "name": obj, "namespace": ns}, "firstTimestamp": ago(now, last + 60), "lastTimestamp": ago(now, last),
            "source": {"component": "kubelet"}})
    };
    create(&events, event("e1", "crashing", "BackOff", "Warning", 600, 3)).await;
    create(&events, event("e2", "crashing", "BackOff", "Warning", 60, 2)).await;
    create(&events, event("e3", "init-pull", "Failed", "Warning", 120, 1)).await;
    create(&events, event("e4", "crashing", "Pulled", "Normal", 30, 1)).await;
    create(&events, event("e5", "old", "BackOff", "Warning", 1801, 9)).await;
}

fn summary(findings: &[morningcheck::api::Finding]) -> BTreeSet<(String, Severity, String)> {
    findings.iter().map(|f| (f.check.clone(), f.severity, f.object.clone())).collect()
}

#[tokio::test]
async fn planted_state_gives_exact_findings() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "k8s").await;
    let now = Timestamp::now();
    plant(&client, &ns.name, now).await;

    let t = target(json!({"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false},
        "thresholds": {"maxFindings": 50}}));
    let out = kubernetes::check(&t, &ctx(&client, &ns.name, now)).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.facts["pods"], 11);
    assert_eq!(out.facts["deployments"], 0);
    let (findings, counts, _) = out.sink.into_parts();
    let n = &ns.name;
    let expected: BTreeSet<(String, Severity, String)> = [
        ("CrashLoopBackOff", Severity::Critical, format!("{n}/crashing/app")),
        ("HighRestarts", Severity::Warning, format!("{n}/crashing/app")),
        ("ImagePullBackOff", Severity::Critical, format!("{n}/init-pull/init")),
        ("PodPending", Severity::Warning, format!("{n}/pending-old")),
        ("PodEvicted", Severity::Warning, format!("{n}/evicted")),
        ("PodUnknown", Severity::Critical, format!("{n}/lost")),
        ("ContainersNotReady", Severity::Warning, format!("{n}/unready")),
        ("EventBackOff", Severity::Warning, format!("{n}/Pod/crashing")),
        ("EventFailed", Severity::Warning, format!("{n}/Pod/init-pull")),
    ]
    .into_iter()
    .map(|(c, s, o)| (c.to_string(), s, o))
    .collect();
    assert_eq!(summary(&findings), expected);
    assert_eq!((counts.critical, counts.warning, counts.info), (3, 6, 0));

    let by_key =
        |check: &str, suffix: &str| findings.iter().find(|f| f.check == check && f.object.ends_with(suffix)).unwrap();
    let restarts = &by_key("HighRestarts", "crashing/app").message;
    assert!(restarts.contains("restarted 6 times recently (6 in all); last exit: OOMKilled (code 137)"), "{restarts}");
    assert!(by_key("PodPending", "pending-old").message.contains("Unschedulable: 0/3 nodes are available"));
    let backoff = by_key("EventBackOff", "Pod/crashing");
    assert!(backoff.message.starts_with("BackOff ×5:"), "{}", backoff.message);
    // Newest events first: the init-pull event (2 min ago) after the BackOff (1 min ago).
    let order: Vec<&str> = findings.iter().filter(|f| f.check.starts_with("Event")).map(|f| f.check.as_str()).collect();
    assert_eq!(order, ["EventBackOff", "EventFailed"]);

    // Namespace exclude wins over include; a label selector narrows pods and workloads.
    let t = target(
        json!({"name": "local", "namespaces": {"include": [ns.name], "exclude": [ns.name]}, "checks": {"nodes": false}}),
    );
    let out = kubernetes::check(&t, &ctx(&client, &ns.name, now)).await;
    assert_eq!((out.facts["pods"], out.sink.counts().total), (0, 0));
    let t = target(json!({"name": "local", "namespaces": {"include": [ns.name]}, "labelSelector": "app=nothing",
        "checks": {"nodes": false, "events": false}}));
    let out = kubernetes::check(&t, &ctx(&client, &ns.name, now)).await;
    assert_eq!((out.facts["pods"], out.sink.counts().total), (0, 0));

    // Checks can be switched off one by one.
    let t = target(json!({"name": "local", "namespaces": {"include": [ns.name]},
        "checks": {"pods": false, "workloads": false, "nodes": false, "events": true}}));
    let out = kubernetes::check(&t, &ctx(&client, &ns.name, now)).await;
    assert_eq!(out.sink.counts().total, 2);
    assert!(!out.facts.contains_key("pods"));
}

#[tokio::test]
async fn nodes_not_ready_pressure_and_cordoned() {
    let client = admin().await;
    let now = Timestamp::now();
    let prefix = format!("node-{:06x}", rand::random::<u32>() & 0xffffff);
    let nodes: Api<Node> = Api::all(client.clone());
    let mk = |name: String, unschedulable: bool| {
        json!({"metadata": {"name": name}, "spec": {"unschedulable": unschedulable,
        "taints": [{"key": "morningcheck.test/planted", "effect": "NoSchedule"}]}})
    };
    let cond = |t: &str, s: &str, since: i64| json!({"type": t, "status": s, "lastTransitionTime": ago(now, since), "lastHeartbeatTime": ago(now, 10)});
    let plan = [
        ("ok", false, json!([cond("Ready", "True", 9000)])),
        ("down", false, json!([cond("Ready", "Unknown", 5400)])),
        (
            "full",
            false,
            json!([
                cond("Ready", "True", 9000),
                cond("DiskPressure", "True", 120),
                cond("MemoryPressure", "False", 9000)
            ]),
        ),
        ("drained", true, json!([cond("Ready", "True", 9000)])),
    ];
    for (suffix, cordoned, conds) in &plan {
        let name = format!("{prefix}-{suffix}");
        create(&nodes, mk(name.clone(), *cordoned)).await;
        set_status(&nodes, &name, json!({"conditions": conds})).await;
    }
    let t = target(json!({"name": "local", "checks": {"pods": false, "workloads": false, "events": false}}));
    let out = kubernetes::check(&t, &ctx(&client, "default", now)).await;
    for (suffix, _, _) in &plan {
        let _ = nodes.delete(&format!("{prefix}-{suffix}"), &DeleteParams::default()).await;
    }
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let (findings, _, _) = out.sink.into_parts();
    let mine: Vec<_> = findings.iter().filter(|f| f.object.starts_with(&prefix)).collect();
    let got: BTreeSet<(String, Severity, String)> =
        mine.iter().map(|f| (f.check.clone(), f.severity, f.object.clone())).collect();
    let want: BTreeSet<(String, Severity, String)> = [
        ("NodeNotReady", Severity::Critical, "down"),
        ("DiskPressure", Severity::Warning, "full"),
        ("NodeCordoned", Severity::Info, "drained"),
    ]
    .into_iter()
    .map(|(c, s, o)| (c.to_string(), s, format!("{prefix}-{o}")))
    .collect();
    assert_eq!(got, want);
    let down = mine.iter().find(|f| f.check == "NodeNotReady").unwrap();
    assert_eq!(down.message, "Ready=Unknown for 1h30m");
}

#[tokio::test]
async fn pods_are_listed_in_pages() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "paging").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let total = kubernetes::PAGE_SIZE as usize * 2 + 137;
    futures::stream::iter(0..total)
        .for_each_concurrent(16, |i| {
            let pods = pods.clone();
            async move {
                let p: Pod = serde_json::from_value(
                    json!({"metadata": {"name": format!("p{i:05}")}, "spec": common::planted_spec()}),
                )
                .unwrap();
                pods.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .await;
    // Every tenth pod is stuck pulling its image.
    futures::stream::iter((0..total).step_by(10))
        .for_each_concurrent(16, |i| {
            let pods = pods.clone();
            async move {
                let st = json!({"phase": "Pending", "startTime": Timestamp::now().to_string(),
                    "containerStatuses": [container("app", false, 0, json!({"waiting": {"reason": "ErrImagePull"}}))]});
                set_status(&pods, &format!("p{i:05}"), st).await;
            }
        })
        .await;
    let t = target(
        json!({"name": "big", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false, "events": false, "workloads": false},
        "thresholds": {"maxFindings": 10}}),
    );
    let out = kubernetes::check(&t, &ctx(&client, &ns.name, Timestamp::now())).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.facts["pods"], total as u64);
    assert_eq!(out.facts["podsListRequests"], 3, "{} pods in pages of {}", total, kubernetes::PAGE_SIZE);
    let (findings, counts, _) = out.sink.into_parts();
    assert_eq!(counts.critical, total.div_ceil(10) as u64, "totals are complete");
    assert_eq!(findings.len(), 10, "findings kept are capped");
}

async fn secret(client: &Client, ns: &str, name: &str, kubeconfig: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    create(&secrets, json!({"metadata": {"name": name}, "stringData": {"kubeconfig": kubeconfig}})).await;
}

#[tokio::test]
async fn remote_cluster_through_kubeconfig_secret_and_error_tiers() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "remote").await;
    let now = Timestamp::now();
    plant(&client, &ns.name, now).await;
    let server = var("MC_KUBE_SERVER");

    // User "remote" may list everything the checks read except pods.
    let role = format!("mc-test-remote-{}", ns.name);
    let roles: Api<ClusterRole> = Api::all(client.clone());
    create(
        &roles,
        json!({"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["nodes", "events"], "verbs": ["list"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["list"]}]}),
    )
    .await;
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    create(&bindings, json!({"metadata": {"name": role}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "remote"}]})).await;

    secret(&client, &ns.name, "remote", &kubeconfig(&server, &var("MC_REMOTE_TOKEN"))).await;
    secret(&client, &ns.name, "nobody", &kubeconfig(&server, &var("MC_ALICE_TOKEN"))).await;
    secret(&client, &ns.name, "badtoken", &kubeconfig(&server, "not-a-token")).await;
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    secret(&client, &ns.name, "down", &kubeconfig(&format!("https://127.0.0.1:{unused}"), "x")).await;
    let exec = kubeconfig(&server, "x")
        .replace("user: {token: 'x'}", "user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: sh}}");
    secret(&client, &ns.name, "exec", &exec).await;

    let remote = |secret: &str| {
        target(json!({"name": secret, "kubeconfigSecretRef": {"name": secret, "key": "kubeconfig"},
            "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}}))
    };
    let c = ctx(&client, &ns.name, now);

    let out = kubernetes::check(&remote("remote"), &c).await;
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert_eq!(out.errors[0].tier, ErrorTier::Forbidden);
    assert!(
        out.errors[0].message.starts_with(&format!("RBAC denies list pods in namespace {}", ns.name)),
        "{}",
        out.errors[0].message
    );
    let (findings, _, _) = out.sink.into_parts();
    let checks: BTreeSet<&str> = findings.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(checks, BTreeSet::from(["EventBackOff", "EventFailed"]), "the other checks still report");

    let out = kubernetes::check(&remote("nobody"), &c).await;
    assert_eq!(out.errors.len(), 5, "pods, 3 workloads, events: {:?}", out.errors);
    assert!(out.errors.iter().all(|e| e.tier == ErrorTier::Forbidden));

    let out = kubernetes::check(&remote("badtoken"), &c).await;
    assert!(!out.errors.is_empty() && out.errors.iter().all(|e| e.tier == ErrorTier::Unauthorized), "{:?}", out.errors);

    let mut short = c.clone();
    short.deadline = Instant::now() + Duration::from_secs(5);
    let out = kubernetes::check(&remote("down"), &short).await;
    assert!(!out.errors.is_empty() && out.errors.iter().all(|e| e.tier == ErrorTier::Unreachable), "{:?}", out.errors);

    let out = kubernetes::check(&remote("exec"), &c).await;
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].tier, ErrorTier::Config);
    assert!(out.errors[0].message.contains("exec plugin, which the operator never runs"), "{}", out.errors[0].message);

    let missing = target(json!({"name": "m", "kubeconfigSecretRef": {"name": "absent", "key": "kubeconfig"}}));
    let out = kubernetes::check(&missing, &c).await;
    assert_eq!(out.errors[0].message, format!("Secret {}/absent not found", ns.name));
    let elsewhere = target(
        json!({"name": "m", "kubeconfigSecretRef": {"name": "remote", "key": "kubeconfig", "namespace": "default"}}),
    );
    let out = kubernetes::check(&elsewhere, &c).await;
    assert!(out.errors[0].message.contains("is in another namespace"), "{}", out.errors[0].message);

    // One broken target never hides another's results in the run's report.
    let report_targets = vec![
        kubernetes::check(&remote("down"), &short).await,
        kubernetes::check(
            &target(json!({"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}})),
            &c,
        )
        .await,
    ];
    let meta = morningcheck::evaluate::RunMeta { run_id: "r".into(), slot: now, started_at: now, finished_at: now };
    let (report, _) = build_report(meta, report_targets, &Default::default(), &Default::default());
    assert_eq!(report.targets[0].area, Area::Kubernetes);
    assert!(!report.targets[0].errors.is_empty());
    assert_eq!(report.targets[1].counts.total, 9);

    let _ = bindings.delete(&role, &DeleteParams::default()).await;
    let _ = roles.delete(&role, &DeleteParams::default()).await;
}
