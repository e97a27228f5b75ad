//! The Kubernetes checks read states that Kubernetes itself writes: kwok plays the kubelet
//! on fake nodes (its stages are tests/env/kwok/stages.yaml), and the real
//! controller-manager and scheduler run Deployments, StatefulSets, DaemonSets, Jobs and
//! Events. Nothing here patches a status by hand: each test creates ordinary objects,
//! waits until the cluster has converged, and asserts the exact findings.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{TestNamespace, admin, eventually};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use morningcheck::api::{Finding, KubernetesTarget, RunResult, Severity};
use morningcheck::collect::{RunContext, kubernetes};
use serde_json::{Value, json};

/// The label kwok's stages act on (see tests/env/kwok/stages.yaml).
const STATE: &str = "morningcheck.test/state";

fn ctx(client: &Client, ns: &str) -> RunContext {
    common::run_context(client, ns, Timestamp::now())
}

/// Runs the checks of `target` and returns its findings; the target must not fail.
async fn findings_of(client: &Client, ns: &str, target: &KubernetesTarget) -> (Vec<Finding>, u64) {
    let out = kubernetes::check(target, &ctx(client, ns)).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let pods = out.facts.get("pods").copied().unwrap_or_default();
    (out.sink.into_parts().0, pods)
}

/// A target on namespace `ns` that reports pending and unready pods at once: kwok's
/// states are seconds old, not past the default ten-minute grace.
fn target(ns: &str, checks: Value) -> KubernetesTarget {
    serde_json::from_value(json!({"name": "kwok", "namespaces": {"include": [ns]}, "checks": checks,
        "thresholds": {"pendingGraceSeconds": 0, "maxFindings": 100}}))
    .unwrap()
}

use common::create_object as create;

fn pod(name: &str, state: Option<&str>, annotations: Value, spec: Value) -> Value {
    let mut labels = json!({"app": name});
    if let Some(s) = state {
        labels[STATE] = json!(s);
    }
    json!({"metadata": {"name": name, "labels": labels, "annotations": annotations}, "spec": spec})
}

fn containers(name: &str) -> Value {
    json!({"containers": [{"name": name, "image": format!("registry.invalid/{name}:1")}]})
}

/// Polls the pod until `ok` holds for its status, as kwok or a controller writes it.
async fn pod_reaches(client: &Client, ns: &str, name: &str, what: &str, ok: impl Fn(&Value) -> bool) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    eventually(60, &format!("pod {name}: {what}"), || {
        let pods = pods.clone();
        let ok = &ok;
        async move {
            let p = pods.get(name).await.ok()?;
            let status = serde_json::to_value(p.status?).ok()?;
            ok(&status).then_some(())
        }
    })
    .await;
}

fn waiting_reason(status: &Value) -> Option<&str> {
    status["containerStatuses"][0]["state"]["waiting"]["reason"].as_str()
}

fn summary(findings: &[Finding]) -> BTreeSet<(String, Severity, String)> {
    findings.iter().map(|f| (f.check.clone(), f.severity, f.object.clone())).collect()
}

fn set(ns: &str, items: &[(&str, Severity, &str)]) -> BTreeSet<(String, Severity, String)> {
    items.iter().map(|(c, s, o)| (c.to_string(), *s, format!("{ns}/{o}"))).collect()
}

#[tokio::test]
async fn pod_states_written_by_kwok() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "kwok-pods").await;
    let n = ns.name.as_str();
    let oom = json!({"morningcheck.test/restarts": "9", "morningcheck.test/last-reason": "OOMKilled",
        "morningcheck.test/exit-code": "137"});
    create::<Pod>(&client, n, pod("crashing", Some("crashloop"), oom, containers("app"))).await;
    create::<Pod>(&client, n, pod("pulling", Some("imagepull"), json!({}), containers("app"))).await;
    create::<Pod>(&client, n, pod("evicted", Some("evicted"), json!({}), containers("app"))).await;
    create::<Pod>(&client, n, pod("failed", Some("failed"), json!({}), containers("app"))).await;
    create::<Pod>(&client, n, pod("lost", Some("unknown"), json!({}), containers("app"))).await;
    create::<Pod>(&client, n, pod("unready", Some("unready"), json!({}), containers("app"))).await;
    create::<Pod>(&client, n, pod("held", Some("pending"), json!({}), containers("app"))).await;
    create::<Pod>(&client, n, pod("healthy", None, json!({}), containers("app"))).await;
    // A native sidecar: an init container with restartPolicy Always keeps running, and
    // that is healthy, not an init container stuck.
    let sidecar = json!({"initContainers": [{"name": "proxy", "image": "registry.invalid/proxy:1", "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": "registry.invalid/app:1"}]});
    create::<Pod>(&client, n, pod("with-sidecar", None, json!({}), sidecar)).await;
    // A Job's pod runs and completes (kwok's pod-complete stage): Succeeded is healthy.
    create::<Job>(
        &client,
        n,
        json!({"metadata": {"name": "nightly"}, "spec": {"backoffLimit": 0, "template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": "registry.invalid/job:1"}]}}}}),
    )
    .await;

    pod_reaches(&client, n, "crashing", "CrashLoopBackOff", |s| waiting_reason(s) == Some("CrashLoopBackOff")).await;
    pod_reaches(&client, n, "pulling", "ImagePullBackOff", |s| waiting_reason(s) == Some("ImagePullBackOff")).await;
    pod_reaches(&client, n, "evicted", "Failed", |s| s["phase"] == "Failed").await;
    pod_reaches(&client, n, "failed", "Failed", |s| s["phase"] == "Failed").await;
    pod_reaches(&client, n, "lost", "Unknown", |s| s["phase"] == "Unknown").await;
    pod_reaches(&client, n, "unready", "running, not ready", |s| {
        s["phase"] == "Running" && s["containerStatuses"][0]["ready"] == false
    })
    .await;
    pod_reaches(&client, n, "held", "scheduled, still Pending", |s| {
        s["phase"] == "Pending"
            && s["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "PodScheduled" && c["status"] == "True"))
    })
    .await;
    pod_reaches(&client, n, "healthy", "Running", |s| s["phase"] == "Running").await;
    pod_reaches(&client, n, "with-sidecar", "Running with its sidecar started", |s| {
        s["phase"] == "Running" && s["initContainerStatuses"][0]["state"]["running"].is_object()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    eventually(60, "the Job's pod Succeeded", || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default().labels("job-name=nightly")).await.ok()?;
            list.items
                .iter()
                .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past a grace of 0 s

    let (findings, pods) =
        findings_of(&client, n, &target(n, json!({"nodes": false, "workloads": false, "events": false}))).await;
    assert_eq!(pods, 10);
    assert_eq!(
        summary(&findings),
        set(
            n,
            &[
                ("CrashLoopBackOff", Severity::Critical, "crashing/app"),
                ("HighRestarts", Severity::Warning, "crashing/app"),
                ("ImagePullBackOff", Severity::Critical, "pulling/app"),
                ("PodEvicted", Severity::Warning, "evicted"),
                ("PodFailed", Severity::Warning, "failed"),
                ("PodUnknown", Severity::Critical, "lost"),
                ("ContainersNotReady", Severity::Warning, "unready"),
                ("PodPending", Severity::Warning, "held"),
            ]
        ),
        "{findings:#?}"
    );
    let message = |check: &str| findings.iter().find(|f| f.check == check).unwrap().message.clone();
    assert!(
        message("HighRestarts").contains("restarted 9 times recently (9 in all); last exit: OOMKilled (code 137)"),
        "{}",
        message("HighRestarts")
    );
    assert!(
        message("CrashLoopBackOff").contains("back-off 5m0s restarting failed container"),
        "{}",
        message("CrashLoopBackOff")
    );
    assert!(
        message("PodEvicted").starts_with("Evicted: The node was low on resource: memory."),
        "{}",
        message("PodEvicted")
    );
}

#[tokio::test]
async fn workload_states_written_by_the_controllers() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "kwok-workloads").await;
    let n = ns.name.as_str();
    let template = |app: &str, state: Option<&str>| {
        let mut labels = json!({"app": app});
        if let Some(s) = state {
            labels[STATE] = json!(s);
        }
        json!({"metadata": {"labels": labels}, "spec": {"nodeSelector": {"type": "kwok"},
            "containers": [{"name": "app", "image": format!("registry.invalid/{app}:1")}]}})
    };
    let selector = |app: &str| json!({"matchLabels": {"app": app}});
    // Pods that never become ready: the Deployment controller gives up by itself.
    create::<Deployment>(
        &client,
        n,
        json!({"metadata": {"name": "stuck"}, "spec": {"replicas": 2, "progressDeadlineSeconds": 3,
        "selector": selector("stuck"), "template": template("stuck", Some("unready"))}}),
    )
    .await;
    create::<Deployment>(
        &client,
        n,
        json!({"metadata": {"name": "fine"}, "spec": {"replicas": 2,
        "selector": selector("fine"), "template": template("fine", None)}}),
    )
    .await;
    create::<Deployment>(
        &client,
        n,
        json!({"metadata": {"name": "paused"}, "spec": {"replicas": 2, "paused": true,
        "selector": selector("paused"), "template": template("paused", Some("unready"))}}),
    )
    .await;
    // kwok holds these pods Pending, so the sets stay below their desired count.
    create::<StatefulSet>(
        &client,
        n,
        json!({"metadata": {"name": "db"}, "spec": {"replicas": 2, "serviceName": "db",
        "selector": selector("db"), "template": template("db", Some("pending"))}}),
    )
    .await;
    create::<DaemonSet>(
        &client,
        n,
        json!({"metadata": {"name": "agent"}, "spec": {
        "selector": selector("agent"), "template": template("agent", Some("pending"))}}),
    )
    .await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
    eventually(90, "stuck: ProgressDeadlineExceeded, fine: 2 available", || {
        let deployments = deployments.clone();
        async move {
            let stuck = deployments.get("stuck").await.ok()?.status?;
            let exceeded = stuck.conditions?.iter().any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
            let fine = deployments.get("fine").await.ok()?.status?.available_replicas == Some(2);
            (exceeded && fine).then_some(())
        }
    })
    .await;
    let daemons: Api<DaemonSet> = Api::namespaced(client.clone(), n);
    let nodes = common::var("MC_KWOK_NODES").parse::<i32>().unwrap();
    eventually(60, "agent: one pod per kwok node, none available", || {
        let daemons = daemons.clone();
        async move {
            let st = daemons.get("agent").await.ok()?.status?;
            (st.desired_number_scheduled == nodes && st.current_number_scheduled == nodes).then_some(())
        }
    })
    .await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), n);
    eventually(60, "db: its first pod created", || {
        let sets = sets.clone();
        async move { (sets.get("db").await.ok()?.status?.replicas >= 1).then_some(()) }
    })
    .await;

    let (findings, _) =
        findings_of(&client, n, &target(n, json!({"pods": false, "nodes": false, "events": false}))).await;
    assert_eq!(
        summary(&findings),
        set(
            n,
            &[
                ("DeploymentUnavailable", Severity::Critical, "stuck"),
                ("ProgressDeadlineExceeded", Severity::Critical, "stuck"),
                ("StatefulSetUnavailable", Severity::Critical, "db"),
                ("DaemonSetUnavailable", Severity::Critical, "agent"),
            ]
        ),
        "{findings:#?}"
    );
    let message = |check: &str| findings.iter().find(|f| f.check == check).unwrap().message.clone();
    assert!(
        message("ProgressDeadlineExceeded").contains("has timed out progressing"),
        "{}",
        message("ProgressDeadlineExceeded")
    );
    assert_eq!(message("DaemonSetUnavailable"), format!("DaemonSet 0/{nodes} replicas available"));
    assert_eq!(message("StatefulSetUnavailable"), "StatefulSet 0/2 replicas ready");
}

#[tokio::test]
async fn node_conditions_written_by_kwok_and_a_real_cordon() {
    let client = admin().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let prefix = format!("kwok-extra-{:06x}", rand::random::<u32>() & 0xffffff);
    let node = |name: &str, state: Option<&str>| {
        let mut labels = json!({"kubernetes.io/hostname": name});
        if let Some(s) = state {
            labels[STATE] = json!(s);
        }
        // Tainted, so that no other test's pod lands on a node this test deletes.
        serde_json::from_value::<Node>(json!({"metadata": {"name": name, "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": {"taints": [{"key": "morningcheck.test/extra", "effect": "NoSchedule"}]}}))
        .unwrap()
    };
    let (down, drained, full) = (format!("{prefix}-down"), format!("{prefix}-drained"), format!("{prefix}-full"));
    nodes.create(&PostParams::default(), &node(&down, Some("not-ready"))).await.unwrap();
    nodes.create(&PostParams::default(), &node(&full, Some("disk-pressure"))).await.unwrap();
    nodes.create(&PostParams::default(), &node(&drained, None)).await.unwrap();
    let condition = |name: String, type_: &'static str, want: &'static str| {
        let nodes = nodes.clone();
        async move {
            let n = nodes.get(&name).await.ok()?;
            let c = n.status?.conditions?.into_iter().find(|c| c.type_ == type_)?;
            (c.status == want).then_some(())
        }
    };
    eventually(60, "kwok marks the node NotReady", || condition(down.clone(), "Ready", "False")).await;
    eventually(60, "kwok initialises the other node", || condition(drained.clone(), "Ready", "True")).await;
    eventually(60, "kwok reports disk pressure", || condition(full.clone(), "DiskPressure", "True")).await;
    // What `kubectl cordon` does.
    nodes
        .patch(&drained, &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": true}})))
        .await
        .unwrap();

    let target = |grace: i64| -> KubernetesTarget {
        serde_json::from_value(json!({"name": "kwok", "checks": {"pods": false, "workloads": false, "events": false},
            "thresholds": {"pendingGraceSeconds": grace}}))
        .unwrap()
    };
    // NotReady for seconds: inside the default grace (a kubelet restarting), not a finding.
    let within = kubernetes::check(&target(600), &ctx(&client, "default")).await;
    let (findings, _, _) = within.sink.into_parts();
    assert!(!findings.iter().any(|f| f.object == down && f.check == "NodeNotReady"), "{findings:#?}");
    let out = kubernetes::check(&target(0), &ctx(&client, "default")).await;
    for name in [&down, &drained, &full] {
        let _ = nodes.delete(name, &DeleteParams::default()).await;
    }
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let (findings, _, _) = out.sink.into_parts();
    let mine: Vec<Finding> = findings.into_iter().filter(|f| f.object.starts_with(&prefix)).collect();
    let want: BTreeSet<(String, Severity, String)> = [
        ("NodeNotReady", Severity::Critical, &down),
        ("NodeCordoned", Severity::Info, &drained),
        ("DiskPressure", Severity::Warning, &full),
    ]
    .into_iter()
    .map(|(c, s, o)| (c.to_string(), s, o.clone()))
    .collect();
    assert_eq!(summary(&mine), want, "{mine:#?}");
    let not_ready = mine.iter().find(|f| f.check == "NodeNotReady").unwrap();
    assert!(not_ready.message.starts_with("Ready=False"), "{}", not_ready.message);
}

#[tokio::test]
async fn warning_events_written_by_the_scheduler() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "kwok-events").await;
    let n = ns.name.as_str();
    // No node has this label: the scheduler records FailedScheduling and the pod stays Pending.
    let spec = json!({"nodeSelector": {"morningcheck.test/nowhere": "true"},
        "containers": [{"name": "app", "image": "registry.invalid/app:1"}]});
    create::<Pod>(&client, n, pod("homeless", None, json!({}), spec)).await;
    pod_reaches(&client, n, "homeless", "Unschedulable", |s| {
        s["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["reason"] == "Unschedulable"))
    })
    .await;
    let t = target(n, json!({"nodes": false, "workloads": false}));
    let findings = eventually(60, "the scheduler's FailedScheduling event and the pod Pending", || {
        // A fresh context each time: its clock is the run's "now".
        let (t, c) = (t.clone(), ctx(&client, n));
        async move {
            let out = kubernetes::check(&t, &c).await;
            let (findings, _, _) = out.sink.into_parts();
            // The event, and the pod past a grace of 0 s (its age counts in whole seconds).
            let both = ["EventFailedScheduling", "PodPending"].iter().all(|c| findings.iter().any(|f| f.check == *c));
            both.then_some(findings)
        }
    })
    .await;
    assert_eq!(
        summary(&findings),
        set(
            n,
            &[
                ("PodPending", Severity::Warning, "homeless"),
                ("EventFailedScheduling", Severity::Warning, "Pod/homeless")
            ]
        ),
        "{findings:#?}"
    );
    let pending = findings.iter().find(|f| f.check == "PodPending").unwrap();
    assert!(pending.message.contains("Unschedulable: 0/"), "{}", pending.message);
    let event = findings.iter().find(|f| f.check == "EventFailedScheduling").unwrap();
    assert!(event.message.contains("didn't match Pod's node affinity/selector"), "{}", event.message);
}

/// Three crashlooping pods in a fresh namespace, watched by MorningCheck `mc` with
/// `targets`, whose digest goes to a local Slack receiver with the `<!here>` mention, and
/// a controller; the status after run-now `token`, and the posts.
async fn crashloops_checked(
    client: &Client,
    n: &str,
    targets: impl FnOnce(&str) -> Value,
    token: &str,
) -> (morningcheck::api::MorningCheckStatus, Vec<String>) {
    for name in ["crash-a", "crash-b", "crash-c"] {
        create::<Pod>(client, n, pod(name, Some("crashloop"), json!({}), containers("app"))).await;
    }
    for name in ["crash-a", "crash-b", "crash-c"] {
        pod_reaches(client, n, name, "CrashLoopBackOff", |s| waiting_reason(s) == Some("CrashLoopBackOff")).await;
    }
    let (webhook, posts) = common::chart::slack_receiver(token);
    common::chart::create_webhook_secret(client, n, &webhook).await;
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 30, "targets": targets(n),
        "slack": {"webhookSecretRef": {"name": "slack-webhook", "key": "url"}, "notify": "Always",
            "mentionOnCritical": ["<!here>"]}});
    let api: Api<morningcheck::api::MorningCheck> = Api::namespaced(client.clone(), n);
    let mc = serde_json::from_value(json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": "mc", "annotations": {"morningcheck.io/run-now": token}}, "spec": spec}))
    .unwrap();
    api.create(&PostParams::default(), &mc).await.unwrap();
    let ctl = common::Running::start(client, n, std::sync::Arc::new(morningcheck::clock::SystemClock)).await;
    let st = common::run_finished(&api, "mc", token, 90).await;
    ctl.stop().await;
    let posts = posts.lock().unwrap().clone();
    (st, posts)
}

/// Three crashlooping pods and an unreachable Prometheus: the run is Critical and says it
/// is incomplete; the failed target never hides the critical findings, the mention fires,
/// and the digest's header tells both.
#[tokio::test]
async fn a_critical_finding_is_never_hidden_by_an_unchecked_target() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "severity").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (st, posts) = crashloops_checked(
        &client,
        &ns.name,
        |n| {
            json!({"kubernetes": [{"name": "local", "namespaces": {"include": [n]}, "checks": {"nodes": false, "events": false}}],
                "prometheus": [{"name": "prom", "url": format!("http://127.0.0.1:{dead}")}]})
        },
        "sev",
    )
    .await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.result, run.incomplete, run.unchecked_targets), (RunResult::Critical, true, 1), "{run:?}");
    assert_eq!(run.counts.critical, 3);
    let condition = |t: &str| st.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
    assert_eq!((condition("Healthy").status, condition("Healthy").reason), ("False".into(), "Critical".into()));
    let complete = condition("Complete");
    assert_eq!((complete.status.as_str(), complete.reason.as_str()), ("False", "TargetsUnchecked"));
    assert!(
        complete.message.contains("1 of 2 targets could not be checked: prom (Unreachable"),
        "{}",
        complete.message
    );
    assert!(st.last_successful_time.is_none(), "a run that could not check everything is not a success");
    assert_eq!(posts.len(), 1);
    assert!(posts[0].contains("mc: Critical · 1 target unchecked"), "{}", posts[0]);
    assert!(posts[0].contains("<!here>"), "the mention follows the severity: {}", posts[0]);
}

/// The same crashloops in a cluster marked `critical: false` (staging): Warning at most,
/// and nobody is mentioned.
#[tokio::test]
async fn a_non_critical_cluster_never_mentions() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "staging").await;
    let (st, posts) = crashloops_checked(
        &client,
        &ns.name,
        |n| {
            json!({"kubernetes": [{"name": "staging", "critical": false, "namespaces": {"include": [n]},
                "checks": {"nodes": false, "events": false}}]})
        },
        "staging",
    )
    .await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.result, run.incomplete), (RunResult::Warning, false), "{run:?}");
    // Three crashloops capped at Warning, and the three pods' restart warnings.
    assert_eq!((run.counts.critical, run.counts.warning), (0, 6));
    let crashloops: Vec<_> = run.targets[0].findings.iter().filter(|f| f.check == "CrashLoopBackOff").collect();
    assert_eq!(crashloops.len(), 3);
    assert!(crashloops.iter().all(|f| f.severity == morningcheck::api::Severity::Warning), "{crashloops:?}");
    assert!(st.last_successful_time.is_some(), "every target checked: a success, whatever it found");
    assert_eq!(posts.len(), 1);
    assert!(posts[0].contains("mc: Warning"), "{}", posts[0]);
    assert!(!posts[0].contains("<!here>"), "no mention for a non-critical target: {}", posts[0]);
}

/// 64 persistent crashloops, the same state run twice: the second run has nothing new and
/// nothing resolved, and every finding is still failing, though only 20 are listed.
#[tokio::test]
async fn sixty_four_crashloops_are_still_failing_not_new_on_the_second_run() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "crash64").await;
    let n = ns.name.as_str();
    let names: Vec<String> = (0..64).map(|i| format!("crash-{i:02}")).collect();
    for name in &names {
        create::<Pod>(&client, n, pod(name, Some("crashloop"), json!({}), containers("app"))).await;
    }
    for name in &names {
        pod_reaches(&client, n, name, "CrashLoopBackOff", |s| waiting_reason(s) == Some("CrashLoopBackOff")).await;
    }
    // Restarts keep climbing between the runs: only the crashloops are counted here.
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 60, "targets": {"kubernetes": [{"name": "local",
        "namespaces": {"include": [n]}, "checks": {"nodes": false, "events": false},
        "thresholds": {"restartCount": 100000}}]}});
    let api = common::create_check(&client, n, "mc", spec).await;
    let ctl = common::Running::start(&client, n, std::sync::Arc::new(morningcheck::clock::SystemClock)).await;
    common::run_now(&api, "mc", "one").await;
    let first = common::run_finished(&api, "mc", "one", 90).await.last_run.unwrap();
    let crashloops = |r: &morningcheck::api::RunReport| r.counts.critical;
    assert!(first.targets[0].findings.iter().all(|f| f.check == "CrashLoopBackOff"));
    assert_eq!((crashloops(&first), first.counts.total), (64, 64), "{:?}", first.counts);
    assert!(first.targets[0].findings.len() <= 20, "the listed findings stay capped");

    common::run_now(&api, "mc", "two").await;
    let second = common::run_finished(&api, "mc", "two", 90).await.last_run.unwrap();
    assert_eq!((crashloops(&second), second.counts.total), (64, 64), "{:?}", second.counts);
    let d = &second.diff;
    assert_eq!((d.new_total, d.resolved_total, d.unknown_total, d.still_failing_total), (0, 0, 0, 64), "{d:?}");
    assert!(d.still_failing.iter().all(|f| f.runs == Some(2)));
    ctl.stop().await;
}

/// The restart check counts restarts since the previous run: a pod whose restart count
/// does not change between runs is flagged on the first run (its last restart an hour
/// ago) and not on the second; seven more restarts flag it again. The pod's status is
/// written as a kubelet would (kwok leaves pods of this state alone).
#[tokio::test]
async fn restarts_are_counted_since_the_previous_run() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "restarts").await;
    let n = ns.name.as_str();
    let mut spec = containers("app");
    spec["nodeName"] = json!("kwok-node-0");
    create::<Pod>(&client, n, pod("flappy", Some("manual"), json!({}), spec)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    let restarted = |count: u32, minutes_ago: i64| {
        let at = Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago);
        json!({"status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "containerStatuses": [{
            "name": "app", "ready": true, "restartCount": count, "image": "registry.invalid/app:1", "imageID": "",
            "state": {"running": {"startedAt": at.to_string()}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": at.to_string()}}}]}})
    };
    let write = |status: Value| {
        let pods = pods.clone();
        async move { pods.patch_status("flappy", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap() }
    };
    write(restarted(7, 60)).await;

    let spec = json!({"schedule": "0 7 * * *", "targets": {"kubernetes": [{"name": "local",
        "namespaces": {"include": [n]}, "checks": {"nodes": false, "events": false, "workloads": false}}]}});
    let api = common::create_check(&client, n, "mc", spec).await;
    let ctl = common::Running::start(&client, n, std::sync::Arc::new(morningcheck::clock::SystemClock)).await;
    let restarts = |st: morningcheck::api::MorningCheckStatus| {
        let run = st.last_run.unwrap();
        run.targets[0]
            .findings
            .iter()
            .filter(|f| f.check == "HighRestarts")
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
    };
    common::run_now(&api, "mc", "one").await;
    let first = restarts(common::run_finished(&api, "mc", "one", 90).await);
    assert_eq!(first.len(), 1, "seven restarts, the last an hour ago, on a first run");
    assert!(first[0].starts_with("container app restarted 7 times recently (7 in all)"), "{}", first[0]);

    common::run_now(&api, "mc", "two").await;
    assert_eq!(restarts(common::run_finished(&api, "mc", "two", 90).await), Vec::<String>::new(), "no restart since");

    write(restarted(14, 1)).await;
    common::run_now(&api, "mc", "three").await;
    let third = restarts(common::run_finished(&api, "mc", "three", 90).await);
    assert_eq!(third.len(), 1);
    assert!(third[0].starts_with("container app restarted 7 times since the previous run (14 in all)"), "{}", third[0]);
    ctl.stop().await;
}
