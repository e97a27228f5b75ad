//! The controller against the real test apiserver: the CRD and its printer columns and
//! docs, validation, run-now, scheduled slots with an injected clock, exactly-once
//! across restarts, an interrupted run, leader election between two processes, and the
//! operator's own endpoints.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Fault, Running, TestNamespace, admin, binary, eventually, install_crd, var};
use jiff::SignedDuration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use morningcheck::api::{MorningCheck, MorningCheckStatus, RunResult};
use morningcheck::clock::{ManualClock, SystemClock};
use serde_json::{Value, json};

/// A MorningCheck whose only target is the test's own namespace of the test cluster.
fn spec(ns: &str, schedule: &str) -> Value {
    json!({
        "schedule": schedule,
        "targets": {"kubernetes": [{"name": "local", "namespaces": {"include": [ns]}, "checks": {"nodes": false}}]}
    })
}

async fn create(client: &Client, ns: &str, name: &str, spec: Value, annotations: Value) -> Api<MorningCheck> {
    let api: Api<MorningCheck> = Api::namespaced(client.clone(), ns);
    let mc: MorningCheck = serde_json::from_value(json!({
        "apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": name, "annotations": annotations}, "spec": spec
    }))
    .unwrap();
    api.create(&PostParams::default(), &mc).await.unwrap();
    api
}

async fn status_where(
    api: &Api<MorningCheck>,
    name: &str,
    what: &str,
    pred: impl Fn(&MorningCheckStatus) -> bool,
) -> MorningCheckStatus {
    eventually(60, what, || async {
        let mc = api.get(name).await.ok()?;
        mc.status.filter(|s| pred(s))
    })
    .await
}

async fn annotate(api: &Api<MorningCheck>, name: &str, key: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// Events about `name` with `reason`. The recorder folds repeats into a series, so count
/// occurrences with [`occurrences`].
async fn events(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<KubeEvent> {
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), ns);
    let list = api.list(&Default::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

fn occurrences(events: &[KubeEvent]) -> i32 {
    events.iter().map(|e| e.series.as_ref().map_or(1, |s| s.count)).sum()
}

fn kubectl(args: &[&str]) -> String {
    let out = common::kubectl_command().args(args).output().expect("kubectl");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn condition<'a>(st: &'a MorningCheckStatus, type_: &str) -> Option<&'a morningcheck::api::Condition> {
    st.conditions.iter().find(|c| c.type_ == type_)
}

#[tokio::test]
async fn printer_columns_and_field_docs() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "columns").await;
    let api =
        create(&client, &ns.name, "daily", spec(&ns.name, "0 7 * * *"), json!({"morningcheck.io/run-now": "a"})).await;
    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    status_where(&api, "daily", "a run", |s| s.last_run.is_some()).await;
    ctl.stop().await;

    let table = kubectl(&["get", "mc", "-n", &ns.name]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "SCHEDULE", "RESULT", "UNCHECKED", "FINDINGS", "LAST", "RUN", "STATUS", "AGE"]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..7], ["daily", "True", "0", "7", "*", "*", "*"]);
    assert_eq!(&row[7..10], ["Healthy", "0", "0"], "result, unchecked targets, findings: {table}");
    // STATUS is the Ready message; NEXT RUN (wide) names the same slot in the same words.
    let line = table.lines().nth(1).unwrap();
    assert!(line.contains("next run at ") && line.contains(" 07:00 UTC"), "{table}");
    let wide = kubectl(&["get", "mc", "-n", &ns.name, "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("NEXT RUN"), "{wide}");
    assert!(wide.contains("SUSPENDED") && wide.contains(" 07:00 UTC"), "next run shown: {wide}");

    let explain = eventually(60, "kubectl explain", || async {
        let out = common::kubectl_command().args(["explain", "morningcheck.spec.targets"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
    })
    .await;
    assert!(explain.contains("What to check: at least one target"), "{explain}");
    assert!(explain.contains("Kubernetes clusters: the operator's own, or remote ones"), "{explain}");
    let explain = kubectl(&["explain", "morningcheck.spec.schedule"]);
    assert!(explain.contains("Cron schedule in the standard 5-field form"), "{explain}");
}

#[tokio::test]
async fn invalid_schedule_gets_condition_and_warning_event_then_recovers() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "invalid").await;
    let api = create(&client, &ns.name, "bad", spec(&ns.name, "61 * * * *"), json!({})).await;
    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;

    let st =
        status_where(&api, "bad", "Ready=False", |s| condition(s, "Ready").is_some_and(|c| c.status == "False")).await;
    let ready = condition(&st, "Ready").unwrap();
    assert_eq!(ready.reason, "InvalidSchedule");
    assert!(ready.message.starts_with("spec.schedule: invalid schedule \"61 * * * *\""), "{}", ready.message);
    assert_eq!(st.next_schedule_time, None);
    assert_eq!(st.observed_generation, Some(1));
    let ev = eventually(30, "InvalidSpec event", || async {
        events(&client, &ns.name, "bad", "InvalidSpec").await.into_iter().next()
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(ev.note.as_deref().unwrap().contains("InvalidSchedule: spec.schedule: invalid schedule \"61 * * * *\""));

    // An unknown time zone is named too.
    let patch = json!({"spec": {"schedule": "0 7 * * *", "timeZone": "Europe/Atlantis"}});
    api.patch("bad", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let st = status_where(&api, "bad", "InvalidTimeZone", |s| {
        condition(s, "Ready").is_some_and(|c| c.reason == "InvalidTimeZone")
    })
    .await;
    assert_eq!(
        condition(&st, "Ready").unwrap().message,
        "spec.timeZone: invalid timeZone \"Europe/Atlantis\": not an IANA time zone name"
    );

    // Fixing the spec makes it Ready with the next slot, in its own time zone.
    let patch = json!({"spec": {"timeZone": "Europe/Berlin"}});
    api.patch("bad", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let st =
        status_where(&api, "bad", "Ready=True", |s| condition(s, "Ready").is_some_and(|c| c.status == "True")).await;
    assert!(condition(&st, "Ready").unwrap().message.starts_with("next run at "), "{:?}", st.conditions);
    assert!(condition(&st, "Ready").unwrap().message.ends_with(" CET"), "{:?}", st.conditions);
    assert_eq!(st.observed_generation, Some(3));
    assert!(st.next_schedule_time.is_some());
    ctl.stop().await;
}

#[tokio::test]
async fn run_now_runs_once_per_token() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "runnow").await;
    let api = create(&client, &ns.name, "mc", spec(&ns.name, "0 7 * * *"), json!({})).await;
    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    status_where(&api, "mc", "Ready", |s| condition(s, "Ready").is_some()).await;
    assert_eq!(ctl.runs(), 0, "no slot is due, nothing runs");

    annotate(&api, "mc", "morningcheck.io/run-now", "first").await;
    let st = status_where(&api, "mc", "first run", |s| s.history.len() == 1).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!(run.run_id, "run-now-first");
    assert_eq!(run.result, RunResult::Healthy);
    assert_eq!(st.last_run_now_token.as_deref(), Some("first"));
    assert_eq!(st.active_run, None);
    assert_eq!(condition(&st, "Healthy").unwrap().status, "True");
    assert_eq!(run.targets.len(), 1);
    assert_eq!(run.targets[0].facts.get("pods"), Some(&0));

    // Touching the object reconciles it again, but the token already ran.
    let before = ctl.reconciles();
    annotate(&api, "mc", "touched", "yes").await;
    eventually(30, "another reconcile", || async { (ctl.reconciles() > before).then_some(()) }).await;
    assert_eq!(api.get("mc").await.unwrap().status.unwrap().history.len(), 1);
    assert_eq!(ctl.counted_runs(1).await, 1);

    annotate(&api, "mc", "morningcheck.io/run-now", "second").await;
    let st = status_where(&api, "mc", "second run", |s| s.history.len() == 2).await;
    assert_eq!(st.history[0].run_id, "run-now-second");
    assert_eq!(st.history[1].run_id, "run-now-first");
    assert!(st.last_run.unwrap().diff.has_previous);
    assert_eq!(occurrences(&events(&client, &ns.name, "mc", "RunStarted").await), 2);
    // Each run's outcome is an Event of its own, with its own note: `kubectl get events`
    // shows the second run, not the first run's counts folded into a series.
    let outcomes = eventually(30, "an Event per run", || async {
        let mut notes: Vec<String> =
            events(&client, &ns.name, "mc", "RunSucceeded").await.into_iter().filter_map(|e| e.note).collect();
        notes.sort();
        (notes.len() == 2).then_some(notes)
    })
    .await;
    assert!(outcomes[0].starts_with("run run-now-first Healthy"), "{outcomes:?}");
    assert!(outcomes[1].starts_with("run run-now-second Healthy"), "{outcomes:?}");
    ctl.stop().await;
}

#[tokio::test]
async fn scheduled_slot_runs_once_across_restarts_with_injected_clock() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "slots").await;
    let api = create(&client, &ns.name, "mc", spec(&ns.name, "*/5 * * * *"), json!({})).await;
    let created = api.get("mc").await.unwrap().metadata.creation_timestamp.unwrap().0;
    let schedule = morningcheck::schedule::Schedule::parse("*/5 * * * *", None).unwrap();
    let slot1 = schedule.next_after(created).unwrap();
    let clock = Arc::new(ManualClock::new(slot1 + SignedDuration::from_secs(2)));

    let a = Running::start(&client, &ns.name, clock.clone()).await;
    let st = status_where(&api, "mc", "slot 1", |s| s.history.len() == 1).await;
    assert_eq!(st.last_run.as_ref().unwrap().run_id, format!("scheduled-{}", slot1.as_second()));
    assert_eq!(st.last_schedule_time.as_ref().unwrap().0, slot1);
    assert_eq!(st.next_schedule_time.as_ref().unwrap().0, slot1 + SignedDuration::from_mins(5));
    assert_eq!(condition(&st, "Scheduled").unwrap().reason, "OnTime");
    a.stop().await;

    // A restarted controller, still inside the same slot, does not run it again.
    clock.set(slot1 + SignedDuration::from_secs(30));
    let b = Running::start(&client, &ns.name, clock.clone()).await;
    eventually(30, "b's first reconcile", || async { (b.reconciles() >= 1).then_some(()) }).await;
    annotate(&api, "mc", "touch", "1").await;
    eventually(30, "b reconciled", || async { (b.reconciles() >= 2).then_some(()) }).await;
    assert_eq!(b.runs(), 0);
    assert_eq!(api.get("mc").await.unwrap().status.unwrap().history.len(), 1);

    // The next slot runs once.
    let slot2 = slot1 + SignedDuration::from_mins(5);
    clock.set(slot2 + SignedDuration::from_secs(1));
    annotate(&api, "mc", "touch", "2").await;
    let st = status_where(&api, "mc", "slot 2", |s| s.history.len() == 2).await;
    assert_eq!(st.history[0].run_id, format!("scheduled-{}", slot2.as_second()));
    assert_eq!(b.counted_runs(1).await, 1);

    // Down for three slots, then back: only the most recent missed slot runs.
    let slot5 = slot2 + SignedDuration::from_mins(15);
    clock.set(slot5 + SignedDuration::from_secs(3));
    annotate(&api, "mc", "touch", "3").await;
    let st = status_where(&api, "mc", "slot 5", |s| s.history.len() == 3).await;
    assert_eq!(st.history[0].run_id, format!("scheduled-{}", slot5.as_second()));
    b.stop().await;
}

#[tokio::test]
async fn missed_slot_beyond_deadline_is_recorded_not_run() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "missed").await;
    let mut s = spec(&ns.name, "0 * * * *");
    s["startingDeadlineSeconds"] = json!(60);
    let api = create(&client, &ns.name, "mc", s, json!({})).await;
    let created = api.get("mc").await.unwrap().metadata.creation_timestamp.unwrap().0;
    let slot = morningcheck::schedule::Schedule::parse("0 * * * *", None).unwrap().next_after(created).unwrap();
    let clock = Arc::new(ManualClock::new(slot + SignedDuration::from_secs(600)));
    let ctl = Running::start(&client, &ns.name, clock).await;
    let st = status_where(&api, "mc", "missed", |s| s.last_missed_time.is_some()).await;
    assert_eq!(st.last_missed_time.as_ref().unwrap().0, slot);
    let c = condition(&st, "Scheduled").unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "MissedSchedule"));
    assert!(c.message.contains("missed by 600s, more than startingDeadlineSeconds 60"), "{}", c.message);
    assert!(st.history.is_empty());
    assert_eq!(ctl.runs(), 0);
    let ev = eventually(30, "MissedSchedule event", || async {
        events(&client, &ns.name, "mc", "MissedSchedule").await.into_iter().next()
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    ctl.stop().await;
}

/// A TCP server that accepts connections and never answers: a run against it hangs
/// until its deadline.
fn hanging_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
            if held.len() > 5000 {
                break;
            }
        }
    });
    (port, h)
}

/// A Prometheus that answers every request, after `delay`, with no alerts firing: a run
/// against it is healthy and lasts at least `delay`.
fn slow_prometheus(delay: Duration) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                std::thread::sleep(delay);
                let body = r#"{"status":"success","data":{"alerts":[]}}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body.as_bytes()));
            });
        }
    });
    port
}

/// A remote cluster whose apiserver never answers: a run against it holds until its
/// deadline. The Secret `remote` holds its kubeconfig.
async fn hanging_cluster(client: &Client, ns: &str) -> std::thread::JoinHandle<()> {
    let (port, server) = hanging_server();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: hang\n  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: hang, user: u}}\ncurrent-context: c\n"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "remote"}, "stringData": {"kubeconfig": kubeconfig}}))
            .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    server
}

fn hanging_spec(timeout: u32) -> Value {
    json!({"schedule": "0 7 * * *", "timeoutSeconds": timeout, "targets": {"kubernetes": [
        {"name": "hanging", "kubeconfigSecretRef": {"name": "remote", "key": "kubeconfig"}}]}})
}

/// `mc` in `ns`: its only target hangs until the run's `timeout`, a run-now `token` is
/// asked of it, and every run posts its digest to a local Slack receiver, whose posts are
/// returned.
async fn hanging_check_posting(
    client: &Client,
    ns: &str,
    timeout: u32,
    token: &str,
) -> (Api<MorningCheck>, Arc<std::sync::Mutex<Vec<String>>>) {
    hanging_cluster(client, ns).await;
    let (webhook, posts) = common::chart::slack_receiver(token);
    common::chart::create_webhook_secret(client, ns, &webhook).await;
    let mut s = hanging_spec(timeout);
    s["slack"] = json!({"webhookSecretRef": {"name": "slack-webhook", "key": "url"}, "notify": "Always"});
    (create(client, ns, "mc", s, json!({"morningcheck.io/run-now": token})).await, posts)
}

/// Checks are read-only, so a run the controller was killed in the middle of is run again
/// by the next process; its digest is posted once, by the attempt that finished.
#[tokio::test]
async fn killed_mid_run_is_run_again_and_posts_once() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "interrupt").await;
    let (api, posts) = hanging_check_posting(&client, &ns.name, 8, "t1").await;

    let a = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    let st = status_where(&api, "mc", "run in progress", |s| s.active_run.is_some()).await;
    let first = st.active_run.clone().unwrap();
    assert_eq!((first.run_id.as_str(), first.attempt), ("run-now-t1", 1));
    // The claim is written before the run's first Event: kill once attempt 1 has told it started.
    eventually(30, "attempt 1 started", || async {
        (occurrences(&events(&client, &ns.name, "mc", "RunStarted").await) == 1).then_some(())
    })
    .await;
    a.kill();

    let b = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    let st = status_where(&api, "mc", "the second attempt running", |s| {
        s.active_run.as_ref().is_some_and(|r| r.attempt == 2)
    })
    .await;
    let second = st.active_run.unwrap();
    assert_eq!((second.run_id, second.slot), (first.run_id, first.slot), "the same run, the same slot");
    assert!(second.started_at.0 >= first.started_at.0, "(the status keeps whole seconds)");
    let st = common::run_finished(&api, "mc", "t1", 60).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.run_id.as_str(), run.result, run.attempt), ("run-now-t1", RunResult::Failed, 2));
    assert_eq!(st.history.len(), 1, "one run, in two attempts");
    assert_eq!(st.last_run_now_token.as_deref(), Some("t1"));
    assert_eq!(b.counted_runs(1).await, 1);
    assert_eq!(occurrences(&events(&client, &ns.name, "mc", "RunStarted").await), 2);
    let retried = events(&client, &ns.name, "mc", "RunRetried").await;
    assert_eq!(occurrences(&retried), 1);
    assert!(retried[0].note.as_deref().unwrap_or_default().contains("attempt 2 of 3"), "{:?}", retried[0].note);
    assert_eq!(st.notification.as_ref().map(|n| n.outcome), Some(morningcheck::api::NotificationOutcome::Delivered));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posts.lock().unwrap().len(), 1, "exactly one digest");
    b.stop().await;
}

/// A controller whose claim was taken over while its run was in progress (a deposed
/// leader, a stalled process) writes nothing and posts nothing when its run ends: the
/// result of the claim's holder stands. Here the usurper is a claim planted by hand, so
/// the controller, finding the run unfinished, runs it again as attempt 2, which posts.
#[tokio::test]
async fn a_deposed_run_writes_and_posts_nothing() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "deposed").await;
    let (api, posts) = hanging_check_posting(&client, &ns.name, 6, "t1").await;
    let a = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    let st = status_where(&api, "mc", "run in progress", |s| s.active_run.is_some()).await;
    let ours = st.claim.clone().expect("a claim with the run");
    assert_eq!(ours.holder, "test");
    let usurper = json!({"status": {"claim": {"id": "usurper-1", "holder": "another-controller"}}});
    api.patch_status("mc", &PatchParams::default(), &Patch::Merge(&usurper)).await.unwrap();

    let st = common::run_finished(&api, "mc", "t1", 90).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!(run.attempt, 2, "attempt 1's late result was dropped: {run:?}");
    let claim = st.claim.unwrap();
    assert!(claim.holder == "test" && claim.id != ours.id && claim.id != "usurper-1", "{claim:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posts.lock().unwrap().len(), 1, "only the claim's holder posted");
    a.stop().await;
}

/// MorningCheck `mc` in `ns`, with run-now `token` and its own namespace as its only
/// target, and a controller that reaches the apiserver through a [`common::faulty_proxy`].
/// `decide` sees each status write of `mc` (head and body) and counts in the returned
/// counter what it returns `Some` for; every other request passes.
async fn behind_faulty_proxy(
    client: &Client,
    ns: &str,
    token: &str,
    decide: impl Fn(&str, usize) -> Option<Fault> + Send + Sync + 'static,
) -> (Api<MorningCheck>, Running, Arc<std::sync::atomic::AtomicUsize>) {
    let path = format!("PATCH /apis/morningcheck.io/v1alpha1/namespaces/{ns}/morningchecks/mc/status");
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = seen.clone();
    let proxy = common::faulty_proxy(move |request| {
        if !request.starts_with(&path) {
            return Fault::Pass;
        }
        match decide(request, counted.load(std::sync::atomic::Ordering::SeqCst)) {
            Some(fault) => {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                fault
            }
            None => Fault::Pass,
        }
    })
    .await;
    let s = json!({"schedule": "0 7 * * *", "targets": {"kubernetes": [{"name": "local",
        "namespaces": {"include": [ns]}, "checks": {"nodes": false, "events": false}}]}});
    let api = create(client, ns, "mc", s, json!({"morningcheck.io/run-now": token})).await;
    let mut config = common::config_as("admin").await;
    config.cluster_url = proxy.url.parse().unwrap();
    let running = Running::start_on(config, ns, Arc::new(SystemClock), common::trusting(ns)).await;
    (api, running, seen)
}

/// The answer to a claim is lost on the way back (the write went through): the retried
/// write conflicts with the claim it made itself, which is recognised as ours by its id.
/// The run goes on as attempt 1; nothing is recorded as interrupted.
#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_recognised() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "lost-claim").await;
    let (api, a, lost) = behind_faulty_proxy(&client, &ns.name, "lost", |request, seen| {
        let claim = request.contains("\"activeRun\"") && request.contains("\"claim\"");
        claim.then_some(if seen == 0 { Fault::LoseAnswer } else { Fault::Pass })
    })
    .await;

    let st = common::run_finished(&api, "mc", "lost", 60).await;
    assert_eq!(lost.load(std::sync::atomic::Ordering::SeqCst), 2, "the claim sent twice: its answer lost, then again");
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.attempt, run.result), (1, RunResult::Healthy), "{run:?}");
    assert_eq!(st.history.len(), 1);
    assert!(events(&client, &ns.name, "mc", "RunRetried").await.is_empty(), "no false interruption");
    a.stop().await;
}

/// A finished run whose result the apiserver keeps refusing (503 through every retry of
/// the write) is not taken for an interrupted one: a Warning `ResultNotRecorded` Event
/// says what happened, the next attempt's `RunRetried` note says why it runs, and its
/// result is recorded and counted once.
#[tokio::test]
async fn a_result_that_could_not_be_written_is_told_as_such() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "unwritten").await;
    // The result of attempt 1 (a first attempt's report carries no attempt number).
    let (api, a, refused) = behind_faulty_proxy(&client, &ns.name, "late", |request, _| {
        let first_result =
            request.contains("\"lastRun\"") && !request.contains("\"activeRun\"") && !request.contains("\"attempt\":2");
        first_result.then_some(Fault::Refuse)
    })
    .await;

    let st = common::run_finished(&api, "mc", "late", 180).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.attempt, run.result), (2, RunResult::Healthy), "{run:?}");
    let unwritten = events(&client, &ns.name, "mc", "ResultNotRecorded").await;
    assert_eq!(occurrences(&unwritten), 1);
    assert!(unwritten[0].note.as_deref().unwrap_or_default().contains("503"), "{:?}", unwritten[0].note);
    let retried = events(&client, &ns.name, "mc", "RunRetried").await;
    let note = retried[0].note.clone().unwrap_or_default();
    assert!(note.contains("its result could not be written") && !note.contains("stopped"), "{note}");
    assert_eq!(a.counted_runs(1).await, 1, "counted once, when on record");
    assert!(refused.load(std::sync::atomic::Ordering::SeqCst) > 1, "the write was retried before it was given up");
    a.stop().await;
}

/// 300 MorningChecks due at once share 25 permits. The controller is killed halfway;
/// the next one runs every MorningCheck: the claimed ones again, the queued ones for the
/// first time. None is recorded as interrupted, and SIGTERM exits within the pod's grace.
#[tokio::test]
async fn three_hundred_due_at_once_survive_a_kill() {
    const N: usize = 300;
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "many-due").await;
    let _server = hanging_cluster(&client, &ns.name).await;
    let api: Api<MorningCheck> = Api::namespaced(client.clone(), &ns.name);
    for i in 0..N {
        create(&client, &ns.name, &format!("mc-{i:03}"), hanging_spec(5), json!({"morningcheck.io/run-now": "go"}))
            .await;
    }
    let finished = || async {
        let list = api.list(&Default::default()).await.unwrap().items;
        let statuses: Vec<MorningCheckStatus> = list.into_iter().map(|m| m.status.unwrap_or_default()).collect();
        let done = statuses.iter().filter(|s| s.last_run_now_token.as_deref() == Some("go")).count();
        (done, statuses)
    };
    let a = common::ControllerProcess::start(&ns.name, &["--max-concurrent-runs", "25"], "info");
    eventually(120, "a quarter of the runs over", || async { (finished().await.0 >= N / 4).then_some(()) }).await;
    let _ = a.stop();
    let (at_kill, _) = finished().await;
    assert!(at_kill < N, "the kill came while runs were still due ({at_kill} over)");

    let b = common::ControllerProcess::start(&ns.name, &["--max-concurrent-runs", "25"], "info");
    let statuses =
        eventually(240, "every run over", || async { Some(finished().await).filter(|(d, _)| *d == N).map(|(_, s)| s) })
            .await;
    let mut retried = 0;
    for st in &statuses {
        let run = st.last_run.as_ref().unwrap();
        assert_ne!(run.result, RunResult::Interrupted, "{run:?}");
        assert_eq!(st.history.len(), 1, "one run each");
        retried += usize::from(run.attempt == 2);
    }
    assert!(retried <= 25, "only runs holding a permit at the kill were claimed: {retried}");
    let (took, logs) = b.terminate();
    assert!(took < Duration::from_secs(30), "SIGTERM took {took:?}:\n{logs}");
}

/// The most targets the schema admits in every list (100 clusters, 100 Prometheus
/// endpoints with long non-ASCII paths, 100 AWS targets of 40 regions each), every one
/// failing: the result is written, under the status budget, and labelled Failed.
#[tokio::test]
async fn the_largest_spec_all_failing_is_written_under_budget() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "largest").await;
    let path: String = "ü/".repeat(600);
    let kubernetes: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("cluster-{i:03}"), "kubeconfigSecretRef": {"name": format!("missing-{i}"), "key": "kubeconfig"}}))
        .collect();
    let prometheus: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("prom-{i:03}"), "url": format!("http://127.0.0.1:9/{path}{i}")}))
        .collect();
    let regions: Vec<String> = (0..40).map(|r| format!("xx-test-{r}")).collect();
    let aws: Vec<Value> = (0..100).map(|i| json!({"name": format!("aws-{i:03}"), "regions": regions})).collect();
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 60,
        "targets": {"kubernetes": kubernetes, "prometheus": prometheus, "aws": aws}});
    let api = create(&client, &ns.name, "mc", spec, json!({"morningcheck.io/run-now": "big"})).await;
    // The tenant's default policy: AWS and loopback endpoints are refused, so every
    // target fails without waiting on the network.
    let a = Running::start_with(&ns.name, Arc::new(SystemClock), morningcheck::tenancy::Policy::default()).await;
    let st = common::run_finished(&api, "mc", "big", 120).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.result, run.unchecked_targets), (RunResult::Failed, 4200), "nothing could be checked");
    assert_eq!(run.targets.len() + run.omitted_targets as usize, 100 + 100 + 100 * 40, "every target counted");
    assert!(run.omitted_targets > 0, "targets past the budget are counted, not listed");
    let size = serde_json::to_vec(&st).unwrap().len();
    assert!(size <= morningcheck::controller::status::STATUS_BUDGET, "status of {size} bytes");
    assert_eq!(a.counted_runs(1).await, 1);
    a.stop().await;
}

/// A run of 50 local-cluster targets works through a client of its own: its connections
/// to the apiserver close when the run ends, leaving the controller's own (its watch).
#[tokio::test]
async fn a_runs_connections_to_the_apiserver_close_when_it_ends() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "conns").await;
    let kubernetes: Vec<Value> = (0..50)
        .map(|i| json!({"name": format!("local-{i:02}"), "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}}))
        .collect();
    // A Prometheus that answers after 5 s holds the run open, so its connections are seen.
    let prometheus =
        json!([{"name": "slow", "url": format!("http://127.0.0.1:{}", slow_prometheus(Duration::from_secs(5)))}]);
    let api = create(
        &client,
        &ns.name,
        "mc",
        json!({"schedule": "0 7 * * *", "targets": {"kubernetes": kubernetes, "prometheus": prometheus}}),
        json!({}),
    )
    .await;
    let port = url::Url::parse(&var("MC_KUBE_SERVER")).unwrap().port_or_known_default().unwrap();
    let ctl = common::ControllerProcess::start(&ns.name, &[], "info");
    status_where(&api, "mc", "reconciled", |s| condition(s, "Ready").is_some()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = common::connections_to(ctl.pid(), port);

    annotate(&api, "mc", "morningcheck.io/run-now", "many").await;
    let peak = std::cell::Cell::new(0);
    eventually(120, "the run over", || async {
        peak.set(peak.get().max(common::connections_to(ctl.pid(), port)));
        let st = api.get("mc").await.ok()?.status?;
        (st.last_run_now_token.as_deref() == Some("many")).then_some(())
    })
    .await;
    let st = api.get("mc").await.unwrap().status.unwrap();
    assert_eq!(st.last_run.as_ref().unwrap().result, RunResult::Healthy, "{:?}", st.last_run);
    // The run's Events may have taken one more connection of the controller's own.
    let after = eventually(30, "the run's connections closed", || async {
        let n = common::connections_to(ctl.pid(), port);
        (n <= idle + 1).then_some(n)
    })
    .await;
    let peak = peak.get();
    assert!(peak > after, "the run used connections of its own: idle {idle}, peak {peak}, after {after}");
}

/// A rollout during a run: SIGTERM makes the controller give its run the shutdown grace,
/// then exit well within the pod's grace period (30 s in the chart), leaving the claim; the
/// next controller runs it again and posts its digest once.
#[tokio::test]
async fn sigterm_hands_a_run_in_flight_to_the_next_controller() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "sigterm").await;
    let (api, posts) = hanging_check_posting(&client, &ns.name, 12, "roll").await;

    let a = common::ControllerProcess::start(&ns.name, &["--shutdown-grace-seconds", "3"], "info");
    status_where(&api, "mc", "the first attempt running", |s| s.active_run.as_ref().is_some_and(|r| r.attempt == 1))
        .await;
    let (took, logs) = a.terminate();
    assert!(took < Duration::from_secs(20), "SIGTERM took {took:?}:\n{logs}");
    assert!(logs.contains("the next leader runs them again"), "{logs}");
    let st = api.get("mc").await.unwrap().status.unwrap();
    assert!(st.active_run.is_some() && st.last_run.is_none(), "the claim is left for the next controller");

    let _b = common::ControllerProcess::start(&ns.name, &[], "info");
    let st = common::run_finished(&api, "mc", "roll", 90).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.result, run.attempt), (RunResult::Failed, 2));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posts.lock().unwrap().len(), 1, "exactly one digest");
}

/// A run waiting for a permit holds no claim: a restart finds it still due and runs it,
/// instead of recording a run that never started as interrupted.
#[tokio::test]
async fn a_queued_run_survives_a_restart() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "queued").await;
    let _server = hanging_cluster(&client, &ns.name).await;
    let one = create(&client, &ns.name, "one", hanging_spec(300), json!({"morningcheck.io/run-now": "go"})).await;
    create(&client, &ns.name, "two", hanging_spec(300), json!({"morningcheck.io/run-now": "go"})).await;

    let a = common::ControllerProcess::start(&ns.name, &["--max-concurrent-runs", "1"], "info");
    let first = eventually(60, "one run claimed", || async {
        let mut claimed = Vec::new();
        for name in ["one", "two"] {
            let st = one.get(name).await.ok()?.status.unwrap_or_default();
            if st.active_run.is_some() {
                claimed.push(name);
            }
        }
        (!claimed.is_empty()).then_some(claimed)
    })
    .await;
    assert_eq!(first.len(), 1, "one permit, one claim: {first:?}");
    let queued = if first[0] == "one" { "two" } else { "one" };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = one.get(queued).await.unwrap().status.unwrap_or_default();
    assert_eq!(
        (st.active_run, st.last_run, st.last_run_now_token),
        (None, None, None),
        "the queued run holds no claim"
    );
    let _ = a.stop();

    let _b = common::ControllerProcess::start(&ns.name, &["--max-concurrent-runs", "2"], "info");
    let st = status_where(&one, queued, "the queued run started", |s| s.active_run.is_some()).await;
    assert_eq!(st.active_run.unwrap().attempt, 1, "its first attempt");
    assert!(st.last_run.is_none(), "nothing recorded as interrupted");
    let st = status_where(&one, first[0], "the claimed run retried", |s| {
        s.active_run.as_ref().is_some_and(|r| r.attempt == 2)
    })
    .await;
    assert!(st.last_run.is_none(), "nothing recorded as interrupted");
}

/// The README's wait for a run-now returns once that token's run is over, with its result
/// in `lastRun`: never while it runs, and never with the run before.
#[tokio::test]
async fn waiting_for_a_run_now_token_returns_with_its_result() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "runnow-wait").await;
    let (port, _server) = hanging_server();
    let s = json!({"schedule": "0 7 * * *", "timeoutSeconds": 8, "targets": {
        "kubernetes": [{"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}}],
        "prometheus": [{"name": "slow", "url": format!("http://127.0.0.1:{port}"), "readTimeoutSeconds": 30}]}});
    let api = create(&client, &ns.name, "mc", s, json!({})).await;
    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    status_where(&api, "mc", "Ready", |s| condition(s, "Ready").is_some()).await;

    annotate(&api, "mc", "morningcheck.io/run-now", "slow").await;
    let mut wait = common::kubectl_command();
    wait.args(["-n", &ns.name, "wait", "mc/mc", "--for=jsonpath={.status.lastRunNowToken}=slow", "--timeout=90s"]);
    let waiting = tokio::task::spawn_blocking(move || wait.output().expect("kubectl wait"));
    let st = status_where(&api, "mc", "the run in progress", |s| s.active_run.is_some()).await;
    assert_eq!(st.active_run.as_ref().unwrap().run_now_token.as_deref(), Some("slow"));
    assert_eq!(st.last_run_now_token, None, "not before the run is over");
    assert!(!waiting.is_finished(), "kubectl wait returned while the run was in progress");

    let out = waiting.await.unwrap();
    assert!(out.status.success(), "kubectl wait: {}", String::from_utf8_lossy(&out.stderr));
    let st = api.get("mc").await.unwrap().status.unwrap();
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.run_id.as_str(), run.incomplete, run.unchecked_targets), ("run-now-slow", true, 1));
    assert!(run.duration_seconds >= 7.0, "{}", run.duration_seconds);
    assert_eq!(st.active_run, None);
    assert_eq!(ctl.counted_runs(1).await, 1);
    ctl.stop().await;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GETs `path` with the admin's token, which /metrics requires.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(var("MC_ADMIN_TOKEN"))
        .send()
        .await
        .ok()?;
    let code = r.status().as_u16();
    Some((code, r.text().await.ok()?))
}

/// A `morningcheck controller` process with leader election.
struct Replica {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
    _config: tempfile::NamedTempFile,
}

impl Replica {
    /// Starts a controller process whose metrics server binds a port the system picks (a
    /// port chosen here beforehand could be taken by a parallel test meanwhile), and reads
    /// the port from its log.
    fn start(ns: &str, identity: &str) -> Self {
        Self::start_env(ns, identity, &[])
    }

    /// A replica with extra environment variables.
    fn start_env(ns: &str, identity: &str, env: &[(&str, &str)]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let config = common::trusting_config(ns);
        let child = Command::new(binary())
            .args(["controller", "--leader-elect", "--lease-duration-seconds", "6", "--renew-deadline-seconds", "4"])
            .arg("--config")
            .arg(config.path())
            .args(["--identity", identity, "--lease-namespace", ns, "--watch-namespace", ns])
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .env("KUBECONFIG", var("MC_KUBECONFIG"))
            .env("RUST_LOG", "info,kube=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("controller process");
        let port = common::serving_port(log.path(), identity);
        Self { child, port, log, _config: config }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path).await
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(client: &Client, ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    leases.get_opt("morningcheck-leader").await.ok()??.spec?.holder_identity
}

#[tokio::test]
async fn two_replicas_elect_one_leader_that_runs_each_slot_once() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "ha").await;
    let api = create(&client, &ns.name, "mc", spec(&ns.name, "* * * * *"), json!({})).await;
    let mut replicas = vec![Replica::start(&ns.name, "replica-a"), Replica::start(&ns.name, "replica-b")];

    for r in &replicas {
        let (code, body) = eventually(30, "healthz", || r.get("/healthz")).await;
        assert_eq!((code, body.as_str()), (200, "ok"));
        eventually(30, "readyz", || async { r.get("/readyz").await.filter(|(c, _)| *c == 200) }).await;
    }
    let leader = eventually(30, "a leader", || holder(&client, &ns.name)).await;

    // The next per-minute slot runs exactly once, whichever replica leads.
    let st = status_where(&api, "mc", "a scheduled run", |s| !s.history.is_empty()).await;
    let first = st.history[0].run_id.clone();
    assert!(first.starts_with("scheduled-"), "{first}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = events(&client, &ns.name, "mc", "RunStarted").await;
    assert_eq!(occurrences(&runs), 1, "one RunStarted event for the slot");
    assert_eq!(runs[0].reporting_instance.as_deref(), Some(leader.as_str()));

    let (code, metrics) = replicas[0].get("/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("# TYPE morningcheck_runs counter"), "{metrics}");
    assert!(metrics.contains("morningcheck_reconciles_total"), "{metrics}");
    let leader_index = if leader == "replica-a" { 0 } else { 1 };
    let (_, leader_metrics) = replicas[leader_index].get("/metrics").await.unwrap();
    assert!(
        leader_metrics.contains(&format!(
            "morningcheck_last_successful_run_timestamp_seconds{{namespace=\"{}\",name=\"mc\"}}",
            ns.name
        )),
        "{leader_metrics}"
    );

    // Kill the leader: the other replica takes over within the lease and runs what comes.
    let mut dead = replicas.remove(leader_index);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let survivor = if leader == "replica-a" { "replica-b" } else { "replica-a" };
    eventually(30, "takeover", || async { holder(&client, &ns.name).await.filter(|h| h == survivor) }).await;
    annotate(&api, "mc", "morningcheck.io/run-now", "after-failover").await;
    let st = status_where(&api, "mc", "run by the new leader", |s| {
        s.last_run_now_token.as_deref() == Some("after-failover") && s.active_run.is_none()
    })
    .await;
    let ids: Vec<&str> = st.history.iter().map(|h| h.run_id.as_str()).collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "no run twice: {ids:?}");
    assert!(ids.contains(&"run-now-after-failover"));
    let started = events(&client, &ns.name, "mc", "RunStarted").await;
    assert_eq!(occurrences(&started) as usize, ids.len(), "one RunStarted per run: {ids:?}");
}

/// Two replicas; the leader is killed in the middle of a run. The standby takes the lease
/// over, runs the claimed run again as attempt 2 under its own claim, and posts once.
#[tokio::test]
async fn the_leader_killed_mid_run_hands_it_to_the_standby() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "ha-kill").await;
    let (api, posts) = hanging_check_posting(&client, &ns.name, 8, "ha").await;
    let mut replicas = vec![Replica::start(&ns.name, "replica-a"), Replica::start(&ns.name, "replica-b")];
    let st = status_where(&api, "mc", "the first attempt running", |s| {
        s.active_run.as_ref().is_some_and(|r| r.attempt == 1)
    })
    .await;
    let leader = holder(&client, &ns.name).await.expect("a leader");
    assert_eq!(st.claim.as_ref().map(|c| c.holder.as_str()), Some(leader.as_str()), "the leader claimed it");
    let index = if leader == "replica-a" { 0 } else { 1 };
    replicas.remove(index).kill();
    let survivor = if leader == "replica-a" { "replica-b" } else { "replica-a" };

    let st = common::run_finished(&api, "mc", "ha", 120).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.attempt, run.result), (2, RunResult::Failed), "{run:?}");
    assert_eq!(st.claim.as_ref().map(|c| c.holder.as_str()), Some(survivor));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posts.lock().unwrap().len(), 1, "exactly one digest");
    assert_eq!(occurrences(&events(&client, &ns.name, "mc", "RunRetried").await), 1);
    // The failed target is told in one warning line naming the MorningCheck and the target.
    let logs = replicas[0].logs();
    let warned: Vec<&str> = logs.lines().filter(|l| l.contains("target could not be fully checked")).collect();
    assert_eq!(warned.len(), 1, "{logs}");
    assert!(warned[0].contains("\"WARN\"") && warned[0].contains("\"target\":\"hanging\""), "{}", warned[0]);
    assert!(warned[0].contains(&ns.name) && warned[0].contains("run-now-ha"), "{}", warned[0]);
}

/// A leader whose wall clock is 30 s off, behind or ahead, writes renewTimes that are
/// far in the past or in the future. The standby judges the lease by whether it keeps
/// changing, on its own clock, so it never takes over a leader that renews, and takes
/// over within the lease once the leader is gone.
#[tokio::test]
async fn a_leader_with_a_wrong_clock_is_never_joined_by_a_second() {
    let client = admin().await;
    install_crd(&client).await;
    for offset in ["-30", "30"] {
        let ns = TestNamespace::new(&client, "skew").await;
        let skewed = Replica::start_env(&ns.name, "skewed", &[("MORNINGCHECK_TEST_CLOCK_OFFSET_SECONDS", offset)]);
        eventually(30, "the skewed replica leads", || async {
            holder(&client, &ns.name).await.filter(|h| h == "skewed")
        })
        .await;
        let standby = Replica::start(&ns.name, "standby");
        // Three lease durations (6 s) of renewals with a renewTime 30 s off.
        for _ in 0..36 {
            assert_eq!(holder(&client, &ns.name).await.as_deref(), Some("skewed"), "clock {offset}s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let logs = standby.logs();
        assert!(!logs.contains("became leader"), "the standby acted while the leader renewed:\n{logs}");
        skewed.kill();
        eventually(30, "the standby takes over", || async {
            holder(&client, &ns.name).await.filter(|h| h == "standby")
        })
        .await;
    }
}

#[test]
fn committed_crd_matches_the_rust_types() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/morningcheck.yaml")).unwrap();
    assert!(
        committed == morningcheck::crd::yaml(),
        "crds/morningcheck.yaml differs from the Rust types: run `cargo run -- crd > crds/morningcheck.yaml`"
    );
}

#[test]
fn crd_subcommand_prints_the_committed_file() {
    let out = Command::new(binary()).arg("crd").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/morningcheck.yaml")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

#[tokio::test]
async fn not_ready_until_the_crd_is_served() {
    // User alice may not read MorningChecks: to her the CRD is not served.
    let dir = tempfile::tempdir().unwrap();
    let kc = std::fs::read_to_string(var("MC_KUBECONFIG"))
        .unwrap()
        .replace("current-context: admin", "current-context: alice");
    let path = dir.path().join("alice.kubeconfig");
    std::fs::write(&path, kc).unwrap();
    let port = free_port();
    let mut child = Command::new(binary())
        .args(["controller", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (code, body) = eventually(30, "healthz", || http_get(port, "/healthz")).await;
    assert_eq!((code, body.as_str()), (200, "ok"), "alive");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, body) = http_get(port, "/readyz").await.unwrap();
    assert_eq!((code, body.as_str()), (503, "not ready"));
    let _ = child.kill();
    let _ = child.wait();
}
