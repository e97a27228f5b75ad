//! Slack app mode against a stand-in for Slack's Web API (tests/common/slack_api.rs): a
//! summary in the channel, one reply per target with findings in its thread, edited in
//! place when a run is retried; replies paced to the channel's rate, 429 honoured, every
//! error code in the `Notified` condition, and the bot token in no output.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::slack_api::{CHANNEL_ID, CHANNEL_NAME, SlackApi};
use common::{Running, TestNamespace, admin, eventually, trusting};
use kube::Api;
use morningcheck::api::{MorningCheck, MorningCheckStatus};
use morningcheck::clock::SystemClock;
use morningcheck::publish::slack;
use serde_json::{Value, json};

const TOKEN: &str = "xoxb-1111111111-2222222222-t0kenSECRETvalue";

/// A namespace with two crashlooping pods (kwok), the bot token's Secret, and a
/// MorningCheck `mc` posting as an app to `api`: two targets with findings (the cluster,
/// and a Prometheus query that always crosses its threshold) and a healthy one.
async fn app_check(client: &kube::Client, ns: &str, api: &SlackApi) -> Api<MorningCheck> {
    for name in ["crash-a", "crash-b"] {
        common::crashing_pod(client, ns, name).await;
    }
    common::create_secret(client, ns, "slack-bot", json!({"token": TOKEN})).await;
    let spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 60, "targets": {
            "kubernetes": [{"name": "local", "namespaces": {"include": [ns]}, "checks": {"nodes": false, "events": false}},
                {"name": "quiet", "namespaces": {"include": ["kube-node-lease"]}, "checks": {"nodes": false, "events": false}}],
            "prometheus": [{"name": "prom", "url": common::var("MC_PROMETHEUS_URL"), "alerts": {"enabled": false},
                "queries": [{"name": "always", "query": "vector(5)", "warning": 1}]}]},
        "slack": {"app": {"tokenSecretRef": {"name": "slack-bot", "key": "token"}, "channel": CHANNEL_NAME, "apiUrl": api.url},
            "notify": "Always"}});
    common::create_check(client, ns, "mc", spec).await
}

/// A namespace of its own named after `prefix`, a stand-in, and the MorningCheck of
/// [`app_check`] posting to it.
async fn setup(prefix: &str) -> (TestNamespace, SlackApi, Api<MorningCheck>) {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let stand_in = SlackApi::start(TOKEN);
    let api = app_check(&client, &ns.name, &stand_in).await;
    (ns, stand_in, api)
}

fn notified(st: &MorningCheckStatus) -> (String, String) {
    let c = st.conditions.iter().find(|c| c.type_ == "Notified").expect("a Notified condition");
    (c.reason.clone(), c.message.clone())
}

/// A mixed run: one summary in the channel and one reply per target with findings,
/// threaded under it; the status records where the summary is and what the thread holds.
#[tokio::test]
async fn a_mixed_run_posts_one_summary_and_a_reply_per_target() {
    let (ns, stand_in, api) = setup("slackapp").await;
    let ctl = Running::start_with(&ns.name, Arc::new(SystemClock), trusting(&ns.name)).await;
    common::run_now(&api, "mc", "one").await;
    common::run_finished(&api, "mc", "one", 120).await;
    let st = eventually(30, "the thread is posted", || {
        let api = api.clone();
        async move {
            let st = api.get("mc").await.ok()?.status?;
            let n = st.notification.as_ref()?;
            (n.outcome != morningcheck::api::NotificationOutcome::Sending).then_some(st)
        }
    })
    .await;
    ctl.stop().await;

    let (reason, message) = notified(&st);
    assert_eq!(reason, "Delivered", "{message}");
    let summaries = stand_in.summaries();
    assert_eq!(summaries.len(), 1, "one summary");
    let summary = &summaries[0];
    let n = st.notification.as_ref().unwrap();
    let at = n.slack_message.as_ref().expect("the summary's ts on record");
    assert_eq!((at.channel.as_str(), at.ts.as_str()), (CHANNEL_ID, summary.ts.as_str()));
    let replies = stand_in.replies(&summary.ts);
    assert_eq!(replies.len(), 2, "one reply per target with findings, the healthy one none");
    let thread = n.thread.as_ref().unwrap();
    assert_eq!((thread.delivered, thread.total, thread.replies.len()), (2, 2, 2));
    for m in std::iter::once(summary).chain(&replies) {
        assert_eq!((m.body["unfurl_links"].as_bool(), m.body["unfurl_media"].as_bool()), (Some(false), Some(false)));
    }
    assert!(replies.iter().all(|r| r.body["reply_broadcast"] == json!(false)));
    let text = summary.body.to_string();
    assert!(text.contains("*Findings by target*") && text.contains("*local*") && text.contains("*prom*"), "{text}");
    assert!(text.contains("1 healthy:* *quiet*"), "{text}");
    let local =
        replies.iter().find(|r| r.body.to_string().contains("*local* · Kubernetes")).expect("the cluster's reply");
    assert!(local.body.to_string().contains("CrashLoopBackOff"), "{}", local.body);
    // Replies were paced: none came faster than the channel allows.
    assert_eq!(stand_in.state.lock().unwrap().rate_limited, 0);
    assert!(replies[1].at.duration_since(replies[0].at) >= Duration::from_millis(900));
    stand_in.validate_all();
}

/// The controller stops after the summary is on record and before the thread is done:
/// the run is run again, and its attempt edits the summary and replaces the thread; the
/// channel never gets a second summary.
#[tokio::test]
async fn a_retried_run_edits_its_summary_instead_of_posting_anew() {
    let (ns, stand_in, api) = setup("slackretry").await;
    // Slow replies keep the first controller inside the thread when it is stopped.
    stand_in.state.lock().unwrap().reply_delay = Duration::from_secs(3);
    let first = Running::start_with(&ns.name, Arc::new(SystemClock), trusting(&ns.name)).await;
    common::run_now(&api, "mc", "one").await;
    eventually(120, "the summary is on record", || {
        let api = api.clone();
        async move { api.get("mc").await.ok()?.status?.notification?.slack_message }
    })
    .await;
    first.kill();
    let summaries = stand_in.summaries();
    assert_eq!(summaries.len(), 1);
    let before = stand_in.replies(&summaries[0].ts).len();
    assert!(before < 2, "stopped before the thread was complete ({before} replies)");

    stand_in.state.lock().unwrap().reply_delay = Duration::ZERO;
    let second = Running::start_with(&ns.name, Arc::new(SystemClock), trusting(&ns.name)).await;
    let st = eventually(120, "the retried run delivers", || {
        let api = api.clone();
        async move {
            let st = api.get("mc").await.ok()?.status?;
            let n = st.notification.as_ref()?;
            (n.outcome == morningcheck::api::NotificationOutcome::Delivered).then_some(st)
        }
    })
    .await;
    second.stop().await;
    assert_eq!(st.last_run.as_ref().unwrap().attempt, 2, "run again as attempt 2");
    let summaries = stand_in.summaries();
    assert_eq!(summaries.len(), 1, "edited in place, not posted anew");
    assert!(summaries[0].edits >= 1, "the retry edited the summary");
    assert_eq!(stand_in.replies(&summaries[0].ts).len(), 2, "the thread replaced, not doubled");
    stand_in.validate_all();
}

/// Every error code Slack answers ends up in the `Notified` condition, verbatim, with
/// what to fix; and a thread cut short is said in the summary and the status.
#[tokio::test]
async fn every_error_code_is_told_in_the_condition() {
    let (ns, stand_in, api) = setup("slackerr").await;
    let ctl = Running::start_with(&ns.name, Arc::new(SystemClock), trusting(&ns.name)).await;
    let cases = [
        ("not_in_channel", "invite it there"),
        ("channel_not_found", "spec.slack.app.channel"),
        ("invalid_auth", "tokenSecretRef"),
        ("missing_scope", "chat:write"),
        ("msg_too_long", "too long"),
        ("ratelimited", "rate limited"),
    ];
    for (i, (code, fix)) in cases.iter().enumerate() {
        stand_in.fail_with(Some(code), 0);
        let token = format!("e{i}");
        common::run_now(&api, "mc", &token).await;
        let st = eventually(120, code, || {
            let api = api.clone();
            let run = format!("run-now-{token}");
            async move {
                let st = api.get("mc").await.ok()?.status?;
                let n = st.notification.as_ref()?;
                (n.run_id == run && n.outcome != morningcheck::api::NotificationOutcome::Sending).then_some(st)
            }
        })
        .await;
        let (reason, message) = notified(&st);
        assert_eq!(reason, "DeliveryFailed", "{code}: {message}");
        assert!(message.contains(&format!("Slack answered {code}: ")) && message.contains(fix), "{code}: {message}");
    }

    // The summary goes through, the second reply fails: the status and the summary say so.
    stand_in.fail_with(Some("not_in_channel"), 2);
    common::run_now(&api, "mc", "cut").await;
    let st = eventually(120, "a thread cut short", || {
        let api = api.clone();
        async move {
            let st = api.get("mc").await.ok()?.status?;
            let n = st.notification.as_ref()?;
            (n.run_id == "run-now-cut" && n.outcome != morningcheck::api::NotificationOutcome::Sending).then_some(st)
        }
    })
    .await;
    ctl.stop().await;
    let thread = st.notification.as_ref().unwrap().thread.clone().unwrap();
    assert_eq!((thread.delivered, thread.total), (1, 2));
    let (_, message) = notified(&st);
    assert!(message.contains("1 of 2 replies delivered") && message.contains("not_in_channel"), "{message}");
    let summary = stand_in.summaries().into_iter().last().unwrap();
    assert!(
        summary.body.to_string().contains("The thread is incomplete: 1 of 2 replies delivered"),
        "{}",
        summary.body
    );
    stand_in.validate_all();
}

/// A burst of replies is paced to the channel's rate; a channel slower than the pace
/// answers 429, and its Retry-After is honoured: every reply arrives once.
#[tokio::test]
async fn a_burst_is_paced_and_429_is_honoured() {
    let stand_in = SlackApi::start(TOKEN);
    let app = slack::App::new(Some(&stand_in.url), TOKEN, CHANNEL_ID).unwrap();
    let http = slack::http_client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let message = |i: usize| json!({"text": format!("reply {i}"), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("reply {i}")}}]});
    let at = app.summary(&http, &message(0), None, deadline).await.unwrap();
    let replies: Vec<Value> = (1..=5).map(message).collect();
    let (thread, failure) = app.thread(&http, &at, &replies, &[], deadline).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!((thread.delivered, stand_in.state.lock().unwrap().rate_limited), (5, 0));
    let got = stand_in.replies(&at.ts);
    assert!(got.windows(2).all(|w| w[1].at.duration_since(w[0].at) >= Duration::from_millis(900)));

    // Slower than our pace: Slack says 429, we wait as long as it asks, nothing is lost.
    stand_in.state.lock().unwrap().min_interval = Duration::from_millis(1500);
    let (thread, failure) = app.thread(&http, &at, &replies, &thread.replies, deadline).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(thread.delivered, 5);
    assert!(stand_in.state.lock().unwrap().rate_limited > 0, "the stand-in rate limited us");
    assert_eq!(stand_in.replies(&at.ts).len(), 5, "the old thread replaced, each reply once");
    stand_in.validate_all();
}

/// `morningcheck run` in app mode: the preview shows the summary and its thread; a real
/// post goes to the stand-in; a refusal exits 75; the token appears in no output, even at
/// trace level.
#[tokio::test]
async fn the_cli_previews_posts_and_never_shows_the_token() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "slackcli").await;
    let stand_in = SlackApi::start(TOKEN);
    common::create_secret(&client, &ns.name, "slack-bot", json!({"token": TOKEN})).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.yaml");
    let manifest = json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": "cli", "namespace": ns.name},
        "spec": {"schedule": "0 7 * * *", "targets": {"prometheus": [{"name": "prom", "url": common::var("MC_PROMETHEUS_URL"),
            "alerts": {"enabled": false}, "queries": [{"name": "always", "query": "vector(5)", "warning": 1}]}]},
            "slack": {"app": {"tokenSecretRef": {"name": "slack-bot", "key": "token"}, "channel": CHANNEL_ID, "apiUrl": stand_in.url}}}});
    std::fs::write(&file, serde_json::to_string(&manifest).unwrap()).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::binary())
            .env("KUBECONFIG", common::var("MC_KUBECONFIG"))
            .env("HOME", dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "trace")
            .env_remove("SLACK_WEBHOOK_URL")
            .args(args)
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = run(&["run", "--dry-run", "-o", "slack", "-f"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let preview: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(preview["summary"]["blocks"].is_array() && preview["thread"].as_array().is_some_and(|t| t.len() == 1));
    assert!(stand_in.summaries().is_empty(), "a preview posts nothing");

    let out = run(&["run", "-f"]);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    let summaries = stand_in.summaries();
    assert_eq!((summaries.len(), stand_in.replies(&summaries[0].ts).len()), (1, 1));
    assert!(!all.contains(TOKEN) && !all.contains("t0kenSECRET"), "the token in the output");

    stand_in.fail_with(Some("invalid_auth"), 0);
    let out = run(&["run", "-f"]);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(75), "{all}");
    assert!(all.contains("Slack answered invalid_auth"), "{all}");
    assert!(!all.contains("t0kenSECRET"), "the token in the output: {all}");
    stand_in.validate_all();
}
