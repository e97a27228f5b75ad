//! A digest that reads in ten seconds at any fleet size: a few rare problems among
//! thousands of common ones are never hidden, the counts per check are exact, one
//! object's findings are one entry, our own bookkeeping stays out, the healthy take one
//! line, and the order is what is new, what could not be checked, then the rest.
//!
//! Once on the real test environment (kwok pods, the real controller-manager, the
//! controller and a local Slack receiver), and once at three clusters of 10,000 pods
//! through the evaluator a run uses.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{TestNamespace, admin, eventually};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use morningcheck::api::{Area, ErrorTier, KubernetesThresholds, RunReport, TargetReport};
use morningcheck::evaluate::kubernetes::{self as k8s, RestartWindow, Shortfall};
use morningcheck::evaluate::{FindingSink, KnownSet, RunMeta, Snoozes, TargetOutcome, build_report};
use morningcheck::publish::slack::{self, Digest, Origin};
use morningcheck::publish::text;
use serde_json::{Value, json};

/// The label kwok's stages act on (see tests/env/kwok/stages.yaml).
const STATE: &str = "morningcheck.test/state";

/// Text a person reads never carries our list requests and pages.
fn assert_no_bookkeeping(out: &str) {
    for counter in ["ListRequests", "Pages", "listRequests", "pages "] {
        assert!(!out.contains(counter), "{counter} in:\n{out}");
    }
}

/// The Slack blocks' texts, in order.
fn block_texts(payload: &Value) -> Vec<String> {
    payload["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let t = b["text"]["text"].as_str().or_else(|| b["elements"][0]["text"].as_str()).unwrap_or_default();
            t.to_string()
        })
        .collect()
}

/// The index of the first block whose text contains `what`.
fn block_with(blocks: &[String], what: &str) -> usize {
    blocks.iter().position(|b| b.contains(what)).unwrap_or_else(|| panic!("no block with {what:?}: {blocks:#?}"))
}

/// The index of the first line of `text` that contains `what`.
fn line_with(text: &str, what: &str) -> usize {
    text.lines().position(|l| l.contains(what)).unwrap_or_else(|| panic!("no line with {what:?}:\n{text}"))
}

fn digest(origin: Origin) -> Digest<'static> {
    Digest { namespace: "ops", name: "fleet", time_zone: None, mentions: &[], origin }
}

// ---------------------------------------------------------------------------------------
// Three clusters of 10,000 pods, through the evaluator a run uses.

fn crashing(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns, "uid": name}, "status": {"phase": "Running",
        "startTime": "2026-11-20T00:00:00Z", "containerStatuses": [{"name": "app", "ready": false,
        "restartCount": 2, "image": "i", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}]}})
}

fn pulling(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns, "uid": name}, "status": {"phase": "Pending",
        "startTime": "2026-11-20T00:00:00Z", "containerStatuses": [{"name": "app", "ready": false,
        "restartCount": 0, "image": "registry.invalid/app:1", "imageID": "",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}})
}

fn running(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns, "uid": name}, "status": {"phase": "Running",
        "startTime": "2026-11-20T00:00:00Z", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
        "state": {"running": {}}}]}})
}

fn not_ready(name: &str) -> Value {
    json!({"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": "Unknown",
        "lastTransitionTime": "2026-11-30T02:40:00Z", "message": "Kubelet stopped posting node status."}]}})
}

fn unavailable(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"replicas": 3, "selector": {}, "template": {}},
        "status": {"availableReplicas": 0, "conditions": [{"type": "Available", "status": "False",
        "reason": "MinimumReplicasUnavailable", "lastTransitionTime": "2026-11-30T01:00:00Z"}]}})
}

/// One cluster's morning: 10,000 pods of which 1,067 crashloop and 1,001 can't pull
/// their image, three NotReady nodes and one unavailable Deployment; `extra` more
/// crashloops that the morning before did not have.
fn cluster(name: &str, at: Timestamp, previous: &KnownSet, extra: usize) -> TargetOutcome {
    let th = KubernetesThresholds::default();
    let snoozes = Arc::new(Snoozes::default());
    let mut s = FindingSink::new(name, Area::Kubernetes, th.max_findings as usize)
        .against(previous.target(name))
        .counting(previous.counters(name))
        .snoozing(Some(snoozes));
    let since = at - jiff::SignedDuration::from_hours(24);
    for i in 0..10_000 + extra {
        let ns = format!("big-{}", i % 40);
        let pod = match i {
            0..1_067 => crashing(&ns, &format!("crash-{i:05}")),
            1_067..2_068 => pulling(&ns, &format!("pull-{i:05}")),
            10_000.. => crashing(&ns, &format!("crash-new-{i:05}")),
            _ => running(&ns, &format!("web-{i:05}")),
        };
        let pod: Pod = serde_json::from_value(pod).unwrap();
        let found = k8s::pod_findings(&pod, at, &th, &mut RestartWindow { since, counters: &mut s });
        s.extend(found);
    }
    let d: Deployment = serde_json::from_value(unavailable("big-0", "checkout")).unwrap();
    let found = k8s::deployment_findings(&d, &mut Shortfall { now: at, grace_seconds: 600, counters: &mut s });
    s.extend(found);
    for n in 0..3 {
        let node: Node = serde_json::from_value(not_ready(&format!("{name}-node-{n}"))).unwrap();
        s.extend(k8s::node_findings(&node, at, 600));
    }
    let mut o = TargetOutcome { sink: s, ..TargetOutcome::new(name, Area::Kubernetes, th.max_findings as usize) };
    o.facts = BTreeMap::from([("pods".into(), 10_000 + extra as u64), ("podsListRequests".into(), 20)]);
    o
}

fn morning(at: &str, previous: &KnownSet, extra: usize) -> (RunReport, KnownSet) {
    let at: Timestamp = at.parse().unwrap();
    let mut outcomes: Vec<TargetOutcome> =
        ["eu", "us", "ap"].iter().map(|n| cluster(n, at, previous, if *n == "us" { extra } else { 0 })).collect();
    let quiet = TargetOutcome::new("quiet", Area::Prometheus, 20);
    outcomes.push(quiet);
    let down = morningcheck::errors::error(ErrorTier::Unauthorized, "the token in Secret staging-kubeconfig expired");
    outcomes.push(TargetOutcome::failed("staging", Area::Kubernetes, down));
    let meta = RunMeta { run_id: at.to_string(), slot: at, started_at: at, finished_at: at };
    build_report(meta, outcomes, previous, &Snoozes::default())
}

/// At 3 × 10,000 pods the digest shows, in order: what is new, what could not be
/// checked, the counts per check, one example of every failing check, and nothing of our
/// own bookkeeping; the text report the same.
#[test]
fn three_clusters_of_ten_thousand_pods_read_in_order() {
    let (_, known) = morning("2026-11-30T06:00:00Z", &KnownSet::default(), 0);
    let (report, _) = morning("2026-12-01T06:00:00Z", &known, 2);

    let counts = |t: &TargetReport| t.checks.iter().map(|(c, n)| (c.clone(), *n)).collect::<BTreeMap<_, _>>();
    for t in report.targets.iter().filter(|t| t.area == Area::Kubernetes && t.errors.is_empty()) {
        let crashloops = if t.name == "us" { 1_069 } else { 1_067 };
        let want = BTreeMap::from([
            ("CrashLoopBackOff".to_string(), crashloops),
            ("ImagePullBackOff".to_string(), 1_001),
            ("NodeNotReady".to_string(), 3),
            ("DeploymentUnavailable".to_string(), 1),
        ]);
        assert_eq!(counts(t), want, "exact counts per check of {}", t.name);
        for check in want.keys() {
            assert!(t.findings.iter().any(|f| &f.check == check), "{check} is kept in {}: {:?}", t.name, t.findings);
        }
    }
    assert_eq!(report.diff.new_total, 2, "{:?}", report.diff);

    let payload = slack::render(&report, &digest(Origin::Cluster));
    common::slack_models_accept(&payload);
    let blocks = block_texts(&payload);
    let all = blocks.join("\n");
    assert_no_bookkeeping(&all);
    let new = block_with(&blocks, "*New*");
    let unchecked = block_with(&blocks, "Could not check 1 of 5 targets");
    let eu = block_with(&blocks, "*eu* · Kubernetes cluster");
    let healthy = block_with(&blocks, ":white_check_mark: *1 healthy:* *quiet*");
    assert!(new < unchecked && unchecked < eu && eu < healthy, "{blocks:#?}");
    assert!(blocks[new].contains("crash-new-10000"), "the new crashloop is named: {}", blocks[new]);
    for cluster in ["eu", "us", "ap"] {
        let section = &blocks[block_with(&blocks, &format!("*{cluster}* · Kubernetes cluster"))];
        let crashloops = if cluster == "us" { "1,069" } else { "1,067" };
        let counts = format!(
            "CrashLoopBackOff {crashloops} · ImagePullBackOff 1,001 · NodeNotReady 3 · DeploymentUnavailable 1"
        );
        assert!(section.contains(&counts), "{section}");
        for check in ["CrashLoopBackOff", "ImagePullBackOff", "NodeNotReady", "DeploymentUnavailable"] {
            assert!(section.contains(&format!("*{check}* `")), "an example of {check} in {section}");
        }
    }
    assert_eq!(blocks.iter().filter(|b| b.contains("quiet")).count(), 1, "the healthy target takes one line");

    let out = text::render("ops/fleet", &report, text::Style { color: false });
    assert_no_bookkeeping(&out);
    let (new, unchecked, eu) = (
        line_with(&out, "since the last run: 2 new"),
        line_with(&out, "could not check 1 of 5 targets"),
        line_with(&out, "KUBERNETES eu"),
    );
    assert!(new < unchecked && unchecked < eu, "{out}");
    assert!(out.contains(
        "  checks: CrashLoopBackOff 1,069 · ImagePullBackOff 1,001 · NodeNotReady 3 · DeploymentUnavailable 1\n"
    ));
    assert!(out.ends_with("HEALTHY (1): quiet (prometheus)\n"), "{out}");
    for check in ["CrashLoopBackOff", "ImagePullBackOff", "NodeNotReady", "DeploymentUnavailable"] {
        let examples = out.lines().filter(|l| l.split_whitespace().nth(1) == Some(check)).count();
        assert!(examples >= 3, "an example of {check} in each cluster:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------
// The real test environment.

/// Pods in the fleet: half crashloop, half run and are ready.
const FLEET_PODS: usize = 2_000;

fn fleet_pod(name: &str, state: Option<&str>) -> Pod {
    let mut labels = json!({"app": "fleet"});
    if let Some(s) = state {
        labels[STATE] = json!(s);
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}))
    .unwrap()
}

async fn delete_nodes(nodes: &Api<Node>, prefix: &str) {
    let lp = ListParams::default().labels("morningcheck.test/fleet=true");
    for n in nodes.list(&lp).await.unwrap().items {
        let name = n.metadata.name.unwrap_or_default();
        if name.starts_with(prefix) {
            let _ = nodes.delete(&name, &DeleteParams::default()).await;
        }
    }
}

/// Thousands of kwok pods, a thousand of them crashlooping, three NotReady nodes and one
/// unavailable Deployment, checked by the controller: the rare problems are in the
/// status, the digest and the text report; the counts per check are exact; each
/// crashlooping pod's findings are one entry; no bookkeeping counter is shown; the
/// healthy target takes one line; Slack's block models accept the digest.
#[tokio::test]
async fn a_planted_fleet_shows_its_rare_problems_everywhere() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "fleet").await;
    let quiet = TestNamespace::new(&client, "quiet").await;
    let n = ns.name.as_str();
    let nodes: Api<Node> = Api::all(client.clone());
    delete_nodes(&nodes, "fleet-").await;
    for i in 0..3 {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": format!("fleet-down-{i}"),
            "labels": {"kubernetes.io/hostname": format!("fleet-down-{i}"), STATE: "not-ready", "morningcheck.test/fleet": "true"},
            "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": {"taints": [{"key": "morningcheck.test/extra", "effect": "NoSchedule"}]}}))
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    futures::stream::iter(0..FLEET_PODS)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let (name, state) = if i % 2 == 0 {
                    (format!("crash-{i:04}"), Some("crashloop"))
                } else {
                    (format!("web-{i:04}"), None)
                };
                pods.create(&PostParams::default(), &fleet_pod(&name, state)).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    common::create_object::<Deployment>(
        &client,
        n,
        json!({"metadata": {"name": "checkout"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout"}},
            "template": {"metadata": {"labels": {"app": "checkout", STATE: "imagepull"}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/checkout:1"}]}}}}),
    )
    .await;
    eventually(300, "kwok runs the fleet and marks the nodes NotReady", || {
        let (pods, nodes) = (pods.clone(), nodes.clone());
        async move {
            let list = pods.list(&ListParams::default()).await.ok()?;
            let waiting = |p: &Pod, reason: &str| {
                p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| {
                    c.iter().any(|c| {
                        c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref())
                            == Some(reason)
                    })
                })
            };
            let ready = |p: &Pod| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            };
            let crashing = list.items.iter().filter(|p| waiting(p, "CrashLoopBackOff")).count();
            let running = list.items.iter().filter(|p| ready(p)).count();
            let pulling = list.items.iter().filter(|p| waiting(p, "ImagePullBackOff")).count();
            let down = nodes.list(&ListParams::default().labels("morningcheck.test/fleet=true")).await.ok()?;
            let not_ready = down.items.iter().filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status != "True"))
            });
            (crashing == FLEET_PODS / 2 && running == FLEET_PODS / 2 && pulling == 1 && not_ready.count() == 3)
                .then_some(())
        }
    })
    .await;

    let (webhook, posts) = common::chart::slack_receiver("fleet");
    common::chart::create_webhook_secret(&client, n, &webhook).await;
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 120, "targets": {"kubernetes": [
            {"name": "fleet", "namespaces": {"include": ["fleet-*"], "exclude": [quiet.name]},
                "checks": {"nodes": true, "events": false}, "thresholds": {"pendingGraceSeconds": 0}},
            {"name": "quiet", "namespaces": {"include": [quiet.name]}, "checks": {"nodes": false, "events": false}}]},
        "slack": {"webhookSecretRef": {"name": "slack-webhook", "key": "url"}, "notify": "Always"}});
    let api = common::create_check(&client, n, "fleet", spec).await;
    let ctl = common::Running::start_with(n, Arc::new(morningcheck::clock::SystemClock), common::trusting(n)).await;
    common::run_now(&api, "fleet", "one").await;
    let st = common::run_finished(&api, "fleet", "one", 180).await;
    ctl.stop().await;
    delete_nodes(&nodes, "fleet-").await;

    let run = st.last_run.expect("a run");
    let fleet = run.targets.iter().find(|t| t.name == "fleet").unwrap();
    assert!(fleet.errors.is_empty(), "{:?}", fleet.errors);
    assert_eq!(fleet.facts.get("pods").copied(), Some(FLEET_PODS as u64 + 1), "the glob takes the fleet's namespace");
    assert_eq!(fleet.checks.get("CrashLoopBackOff"), Some(&(FLEET_PODS as u64 / 2)), "{:?}", fleet.checks);
    assert_eq!(fleet.checks.get("NodeNotReady"), Some(&3), "{:?}", fleet.checks);
    assert_eq!(fleet.checks.get("DeploymentUnavailable"), Some(&1), "{:?}", fleet.checks);
    assert_eq!(fleet.checks.get("ImagePullBackOff"), Some(&1), "{:?}", fleet.checks);
    for check in ["NodeNotReady", "DeploymentUnavailable", "ImagePullBackOff", "CrashLoopBackOff"] {
        assert!(fleet.findings.iter().any(|f| f.check == check), "{check} kept in the status: {:?}", fleet.findings);
    }
    // A crashlooping pod's findings are one entry: its crashloop and its restarts.
    let entries = morningcheck::publish::entries(fleet);
    let crash = entries.iter().find(|e| e[0].check == "CrashLoopBackOff").expect("a crashloop entry");
    assert!(crash.iter().any(|f| f.check == "HighRestarts"), "{crash:?}");

    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    let payload: Value = serde_json::from_str(&posts[0]).unwrap();
    common::slack_models_accept(&payload);
    let blocks = block_texts(&payload);
    let all = blocks.join("\n");
    assert_no_bookkeeping(&all);
    let section = &blocks[block_with(&blocks, "*fleet* · Kubernetes cluster")];
    assert!(section.contains("CrashLoopBackOff 1,000 · HighRestarts 1,000 ·"), "{section}");
    for check in ["NodeNotReady", "DeploymentUnavailable", "ImagePullBackOff", "CrashLoopBackOff"] {
        assert!(section.contains(&format!("*{check}* `")), "an example of {check} in {section}");
    }
    assert!(section.contains("_also_ *HighRestarts*"), "one line per pod: {section}");
    assert_eq!(blocks.iter().filter(|b| b.contains("quiet")).count(), 1, "the healthy target takes one line: {all}");
    assert!(all.contains(":white_check_mark: *1 healthy:* *quiet*"), "{all}");

    let out = text::render("fleet", &run, text::Style { color: false });
    assert_no_bookkeeping(&out);
    for check in ["NodeNotReady", "DeploymentUnavailable", "ImagePullBackOff", "CrashLoopBackOff"] {
        assert!(out.contains(&format!(" {check} ")), "{check} in the text report:\n{out}");
    }
    assert!(out.contains("       also HighRestarts: "), "{out}");
    assert!(out.trim_end().ends_with("HEALTHY (1): quiet (kubernetes)"), "{out}");
}
