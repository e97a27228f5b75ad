//! Faults with the real peers: the apiserver restarted while idle and during a run, peers
//! down, slow and rate-limiting, the controller killed while posting, and secrets that
//! must never reach a log line, the status or an Event.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Running, TestNamespace, admin, base64, eventually, install_crd, kubeconfig, var};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::{Api, Client};
use morningcheck::api::{ErrorTier, MorningCheck, NotificationOutcome, RunResult};
use morningcheck::clock::SystemClock;
use serde_json::json;
use tokio::sync::RwLock;

/// Tests that restart the apiserver take this exclusively; the others share it.
static APISERVER: RwLock<()> = RwLock::const_new(());

use common::{create_check as create, create_secret as secret, run_finished as finished, run_now};

/// Restarts a component of the test environment, waiting off the runtime's thread: the
/// controller under test runs on this test's runtime, and a blocking wait would freeze it
/// (and its run's deadline) for as long as the component is down.
async fn restart(component: &'static str, seconds_down: u32) {
    let ok = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(format!("{}/tests/env/restart.sh", env!("CARGO_MANIFEST_DIR")))
            .args([component, &seconds_down.to_string()])
            .status()
            .unwrap()
            .success()
    })
    .await
    .unwrap();
    assert!(ok, "restart {component}");
}

async fn apiserver_ready(client: &Client) {
    let api: Api<MorningCheck> = Api::all(client.clone());
    eventually(90, "apiserver back", || {
        let api = api.clone();
        async move { api.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
}

/// A kubeconfig whose server accepts connections and never answers.
fn hanging_kubeconfig() -> (String, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let kc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: hang\n  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: hang, user: u}}\ncurrent-context: c\n"
    );
    (kc, listener)
}

#[tokio::test]
async fn apiserver_restart_while_idle_and_during_a_run() {
    let _exclusive = APISERVER.write().await;
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "restart").await;
    let (kc, _hang) = hanging_kubeconfig();
    secret(&client, &ns.name, "hang", json!({"kubeconfig": kc})).await;
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 12, "targets": {"kubernetes": [
        {"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}},
        {"name": "slow", "kubeconfigSecretRef": {"name": "hang", "key": "kubeconfig"}}]}});
    let api = create(&client, &ns.name, "mc", spec).await;
    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    eventually(30, "first reconcile", || async { (ctl.reconciles() >= 1).then_some(()) }).await;

    // Idle: the watch recovers after the apiserver comes back.
    restart("kube-apiserver", 2).await;
    apiserver_ready(&client).await;
    run_now(&api, "mc", "after-idle-restart").await;
    let st = finished(&api, "mc", "after-idle-restart", 120).await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!((run.incomplete, run.unchecked_targets), (true, 1), "the slow target times out: {run:?}");

    // During a run: the apiserver is down when the run finishes; the result is still written.
    run_now(&api, "mc", "during").await;
    eventually(30, "run in progress", || async {
        api.get("mc").await.ok()?.status?.active_run.filter(|a| a.run_id == "run-now-during")
    })
    .await;
    restart("kube-apiserver", 14).await;
    apiserver_ready(&client).await;
    let st = finished(&api, "mc", "during", 120).await;
    let run = st.last_run.as_ref().unwrap();
    assert_ne!(run.result, RunResult::Interrupted, "completed, not Interrupted");
    assert_eq!((run.incomplete, run.unchecked_targets), (true, 1), "{run:?}");
    let slow = run.targets.iter().find(|t| t.name == "slow").unwrap();
    assert_eq!(slow.errors[0].tier, ErrorTier::Unreachable);
    let local = run.targets.iter().find(|t| t.name == "local").unwrap();
    assert!(local.errors.is_empty(), "{:?}", local.errors);
    assert_eq!(st.history.iter().filter(|h| h.run_id == "run-now-during").count(), 1);
    assert!(run.duration_seconds < 20.0, "the run kept its deadline: {}", run.duration_seconds);
    ctl.stop().await;
}

/// A Slack stand-in: the first request gets 429 with Retry-After: 1, every later one 200.
fn flaky_slack() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T0/B0/faultsecret", listener.local_addr().unwrap());
    let (requests, delivered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, d) = (requests.clone(), delivered.clone());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = vec![0u8; 1 << 20];
            let _ = s.read(&mut buf);
            let answer: &[u8] = if r.fetch_add(1, Ordering::SeqCst) == 0 {
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 12\r\nConnection: close\r\n\r\nrate_limited"
            } else {
                d.fetch_add(1, Ordering::SeqCst);
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            };
            let _ = s.write_all(answer);
        }
    });
    (url, requests, delivered)
}

#[tokio::test]
async fn peers_down_slow_and_rate_limiting_give_partial_results_on_time() {
    let _shared = APISERVER.read().await;
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "peers").await;
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let (url, requests, delivered) = flaky_slack();
    secret(&client, &ns.name, "hook", json!({"url": url})).await;
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 20, "targets": {
        "kubernetes": [{"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}}],
        "prometheus": [
            {"name": "prom-down", "url": format!("http://127.0.0.1:{dead}")},
            {"name": "prom-slow", "url": format!("http://127.0.0.1:{slow_port}"), "readTimeoutSeconds": 2}],
        "aws": [{"name": "ec2", "regions": ["eu-west-1"], "endpointUrl": format!("http://127.0.0.1:{dead}")}]},
        "slack": {"webhookSecretRef": {"name": "hook", "key": "url"}}});
    let api = create(&client, &ns.name, "mc", spec).await;
    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;

    run_now(&api, "mc", "one").await;
    let st = finished(&api, "mc", "one", 90).await;
    let run = st.last_run.as_ref().unwrap();
    assert_ne!(run.result, RunResult::Failed, "the local target was checked");
    assert_eq!((run.incomplete, run.unchecked_targets), (true, 3), "prom-down, prom-slow, ec2/eu-west-1");
    assert!(run.duration_seconds < 20.0, "inside the deadline: {}", run.duration_seconds);
    let tiers = |name: &str| -> Vec<ErrorTier> {
        run.targets.iter().filter(|t| t.name.starts_with(name)).flat_map(|t| t.errors.iter().map(|e| e.tier)).collect()
    };
    assert!(tiers("local").is_empty(), "the healthy target reports normally");
    assert!(!tiers("prom-down").is_empty() && tiers("prom-down").iter().all(|t| *t == ErrorTier::Unreachable));
    assert!(!tiers("prom-slow").is_empty() && tiers("prom-slow").iter().all(|t| *t == ErrorTier::Unreachable));
    assert!(!tiers("ec2").is_empty(), "the EC2 region failed with a tier");
    let notified = st.conditions.iter().find(|c| c.type_ == "Notified").unwrap();
    assert_eq!((notified.status.as_str(), notified.reason.as_str()), ("True", "Delivered"));
    assert_eq!(
        (requests.load(Ordering::SeqCst), delivered.load(Ordering::SeqCst)),
        (2, 1),
        "429 retried once, posted once"
    );

    // The next run goes on normally and posts once more.
    run_now(&api, "mc", "two").await;
    finished(&api, "mc", "two", 90).await;
    assert_eq!(delivered.load(Ordering::SeqCst), 2);
    assert_eq!(ctl.counted_runs(2).await, 2);
    drop(slow);
    ctl.stop().await;
}

#[tokio::test]
async fn killed_while_posting_is_never_posted_twice() {
    let _shared = APISERVER.read().await;
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "posting").await;
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T0/B0/x", hang.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    secret(&client, &ns.name, "hook", json!({"url": url})).await;
    let spec = json!({"schedule": "0 7 * * *", "targets": {"kubernetes": [{"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}}]},
        "slack": {"webhookSecretRef": {"name": "hook", "key": "url"}}});
    let api = create(&client, &ns.name, "mc", spec).await;
    run_now(&api, "mc", "t1").await;
    let a = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    eventually(60, "posting", || async {
        api.get("mc").await.ok()?.status?.notification.filter(|n| n.outcome == NotificationOutcome::Sending)
    })
    .await;
    eventually(10, "the POST reached the receiver", || async {
        (connections.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    a.kill();

    let b = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;
    let st = eventually(60, "unknown delivery recorded", || async {
        api.get("mc")
            .await
            .ok()?
            .status
            .filter(|s| s.notification.as_ref().is_some_and(|n| n.outcome == NotificationOutcome::Unknown))
    })
    .await;
    let n = st.notification.as_ref().unwrap();
    assert_eq!(n.run_id, "run-now-t1");
    assert!(n.message.as_deref().unwrap().contains("not repeated"));
    assert_eq!(st.conditions.iter().find(|c| c.type_ == "Notified").unwrap().reason, "DeliveryUnknown");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1, "no second post for the run");
    assert_eq!(b.runs(), 0);
    b.stop().await;
}

#[tokio::test]
async fn secrets_never_reach_logs_status_or_events_at_trace_level() {
    let _shared = APISERVER.read().await;
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "secrets").await;
    let remote_token = var("MC_REMOTE_TOKEN");
    let password = var("MC_PROMETHEUS_AUTH_PASSWORD");
    let webhook_secret_part = "T0SECRET/B0SECRET/wh00ksecretpart";
    let ca = base64(&std::fs::read(var("MC_KUBE_CA")).unwrap());
    let kc = kubeconfig(&var("MC_KUBE_SERVER"), &remote_token);
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/services/{webhook_secret_part}", receiver.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in receiver.incoming().flatten() {
            let mut buf = vec![0u8; 1 << 20];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    secret(&client, &ns.name, "kc", json!({"kubeconfig": kc})).await;
    secret(&client, &ns.name, "prom", json!({"password": password})).await;
    secret(&client, &ns.name, "hook", json!({"url": hook})).await;
    let spec = json!({"schedule": "0 7 * * *", "targets": {
        "kubernetes": [{"name": "remote", "kubeconfigSecretRef": {"name": "kc", "key": "kubeconfig"}, "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}}],
        "prometheus": [{"name": "prom", "url": var("MC_PROMETHEUS_AUTH_URL"),
            "auth": {"basic": {"username": var("MC_PROMETHEUS_AUTH_USER"), "passwordSecretRef": {"name": "prom", "key": "password"}}}}]},
        "slack": {"webhookSecretRef": {"name": "hook", "key": "url"}}});
    // The same as a Slack app, whose thread's second reply is refused.
    let bot_token = "xoxb-4444444444-5555555555-b0tSECRETtokenpart";
    let stand_in = common::slack_api::SlackApi::start(bot_token);
    stand_in.fail_with(Some("not_in_channel"), 2);
    secret(&client, &ns.name, "bot", json!({"token": bot_token})).await;
    let mut app_spec = spec.clone();
    app_spec["slack"] = json!({"app": {"tokenSecretRef": {"name": "bot", "key": "token"},
        "channel": common::slack_api::CHANNEL_ID, "apiUrl": stand_in.url}});
    let api = create(&client, &ns.name, "mc", spec).await;
    let app_api = create(&client, &ns.name, "app", app_spec).await;
    run_now(&api, "mc", "trace").await;
    run_now(&app_api, "app", "trace").await;

    let controller = common::ControllerProcess::start(&ns.name, &[], "trace");
    let st = finished(&api, "mc", "trace", 90).await;
    let app_st = finished(&app_api, "app", "trace", 90).await;
    eventually(60, "the app's thread is settled", || async {
        let n = app_api.get("app").await.ok()?.status?.notification?;
        (n.outcome != NotificationOutcome::Sending).then_some(())
    })
    .await;
    assert!(!stand_in.summaries().is_empty(), "the app posted: {:?}", app_st.notification);
    let logs = controller.stop();
    let app_status = serde_json::to_string(&app_api.get("app").await.unwrap().status).unwrap();
    assert!(!app_status.contains("b0tSECRET"), "the bot token in the status");
    assert!(!logs.contains("b0tSECRET"), "the bot token in the logs");
    assert!(logs.lines().count() > 50, "trace logging is on");
    let status = serde_json::to_string(&st).unwrap();
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), &ns.name);
    let events = serde_json::to_string(&events.list(&Default::default()).await.unwrap().items).unwrap();
    for (what, secret) in [
        ("remote cluster token", remote_token.as_str()),
        ("controller's own token", var("MC_ADMIN_TOKEN").as_str()),
        ("Prometheus password", password.as_str()),
        ("webhook URL path", webhook_secret_part),
        ("kubeconfig CA data", &ca[..40]),
        ("Slack bot token", bot_token),
    ] {
        assert!(!logs.contains(secret), "{what} in the logs");
        assert!(!status.contains(secret), "{what} in the status");
        assert!(!events.contains(secret), "{what} in an Event");
    }
    assert_eq!(st.notification.as_ref().unwrap().outcome, NotificationOutcome::Delivered);
}
