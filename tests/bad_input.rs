//! Malformed MorningChecks against the real apiserver and controller: each is rejected at
//! apply time by the schema, or reported by the controller with a False condition and a
//! Warning Event whose message names the field and the problem — while a valid
//! MorningCheck in the same namespace keeps running.

mod common;

use std::sync::Arc;

use common::{Running, TestNamespace, admin, eventually, install_crd};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use morningcheck::api::{MorningCheck, MorningCheckStatus, NotificationOutcome};
use morningcheck::clock::SystemClock;
use serde_json::{Value, json};

fn base(ns: &str) -> Value {
    json!({"schedule": "0 7 * * *", "targets": {"kubernetes": [{"name": "local", "namespaces": {"include": [ns]}, "checks": {"nodes": false}}]}})
}

/// Sets `value` at a `/`-separated path of `spec` (numbers index arrays).
fn with(mut spec: Value, path: &str, value: Value) -> Value {
    let mut cur = &mut spec;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let next = match p.parse::<usize>() {
            Ok(n) => &mut cur[n],
            Err(_) => {
                if cur.get(*p).is_none() && !last {
                    cur[*p] = json!({});
                }
                &mut cur[*p]
            }
        };
        if last {
            *next = value;
            return spec;
        }
        cur = next;
    }
    spec
}

fn without(mut spec: Value, key: &str) -> Value {
    spec.as_object_mut().unwrap().remove(key);
    spec
}

fn prom(queries: Value) -> Value {
    json!([{"name": "prom", "url": "http://127.0.0.1:9", "queries": queries}])
}

/// Rejected by the apiserver's schema: (case, spec, a piece of the 422 message).
fn schema_cases(ns: &str) -> Vec<(&'static str, Value, &'static str)> {
    let b = || base(ns);
    vec![
        ("negative deadline", with(b(), "startingDeadlineSeconds", json!(-5)), "spec.startingDeadlineSeconds"),
        ("huge deadline", with(b(), "startingDeadlineSeconds", json!(10_000_000)), "spec.startingDeadlineSeconds"),
        ("zero timeout", with(b(), "timeoutSeconds", json!(0)), "spec.timeoutSeconds"),
        ("history too long", with(b(), "historyLimit", json!(500)), "spec.historyLimit"),
        ("missing schedule", without(b(), "schedule"), "spec.schedule"),
        ("empty schedule", with(b(), "schedule", json!("")), "spec.schedule"),
        (
            "uppercase target name",
            with(b(), "targets/kubernetes/0/name", json!("Prod")),
            "spec.targets.kubernetes[0].name",
        ),
        (
            "very long target name",
            with(b(), "targets/kubernetes/0/name", json!("a".repeat(100))),
            "spec.targets.kubernetes[0].name",
        ),
        (
            "non-http prometheus url",
            with(b(), "targets/prometheus", json!([{"name": "p", "url": "ftp://prom"}])),
            "spec.targets.prometheus[0].url",
        ),
        (
            "unknown preset",
            with(b(), "targets/prometheus", prom(json!([{"name": "q", "preset": "cpu-melt"}]))),
            "spec.targets.prometheus[0].queries[0].preset",
        ),
        (
            "unknown min severity",
            with(
                b(),
                "targets/prometheus",
                json!([{"name": "p", "url": "http://p", "alerts": {"minSeverity": "Urgent"}}]),
            ),
            "minSeverity",
        ),
        (
            "unknown notify policy",
            with(b(), "slack", json!({"webhookSecretRef": {"name": "s", "key": "url"}, "notify": "Sometimes"})),
            "spec.slack.notify",
        ),
        (
            "webhook ref without key",
            with(b(), "slack", json!({"webhookSecretRef": {"name": "s"}})),
            "spec.slack.webhookSecretRef.key",
        ),
        ("no regions", with(b(), "targets/aws", json!([{"name": "a", "regions": []}])), "spec.targets.aws[0].regions"),
        (
            "bad role arn",
            with(b(), "targets/aws", json!([{"name": "a", "regions": ["eu-west-1"], "roleArn": "admin"}])),
            "spec.targets.aws[0].roleArn",
        ),
        (
            "thousands of namespaces",
            with(
                b(),
                "targets/kubernetes/0/namespaces/include",
                json!((0..1500).map(|i| format!("ns-{i}")).collect::<Vec<_>>()),
            ),
            "spec.targets.kubernetes[0].namespaces.include",
        ),
        (
            "string as threshold",
            with(b(), "targets/prometheus", prom(json!([{"name": "q", "query": "up", "warning": "high"}]))),
            "spec.targets.prometheus[0].queries[0].warning",
        ),
    ]
}

/// Accepted by the schema, reported by the controller: (case, spec, reason, message piece).
fn controller_cases(ns: &str) -> Vec<(&'static str, Value, &'static str, String)> {
    let b = || base(ns);
    vec![
        (
            "invalid cron",
            with(b(), "schedule", json!("61 * * * *")),
            "InvalidSchedule",
            "spec.schedule: invalid schedule \"61 * * * *\"".into(),
        ),
        (
            "six-field cron",
            with(b(), "schedule", json!("0 0 7 * * *")),
            "InvalidSchedule",
            "expected 5 fields (minute hour day-of-month month day-of-week), found 6".into(),
        ),
        ("unknown macro", with(b(), "schedule", json!("@reboot")), "InvalidSchedule", "unknown macro".into()),
        (
            "schedule that never fires",
            with(b(), "schedule", json!("0 0 31 2 *")),
            "InvalidSchedule",
            "spec.schedule: invalid schedule \"0 0 31 2 *\": it never fires".into(),
        ),
        (
            "selector with two operators",
            with(b(), "targets/kubernetes/0/labelSelector", json!("app=!=x")),
            "InvalidSpec",
            "spec.targets.kubernetes[0].labelSelector: invalid label selector \"app=!=x\": found '!=' after app=, expected a value"
                .into(),
        ),
        (
            "selector value over 63 characters",
            with(b(), "targets/kubernetes/0/labelSelector", json!(format!("app={}", "v".repeat(64)))),
            "InvalidSpec",
            "is longer than 63 characters".into(),
        ),
        (
            "unknown time zone",
            with(b(), "timeZone", json!("Mars/Olympus_Mons")),
            "InvalidTimeZone",
            "spec.timeZone: invalid timeZone \"Mars/Olympus_Mons\"".into(),
        ),
        (
            "secret in another namespace",
            with(
                b(),
                "targets/kubernetes/0/kubeconfigSecretRef",
                json!({"name": "kc", "key": "k", "namespace": "kube-system"}),
            ),
            "InvalidSpec",
            "spec.targets.kubernetes[0].kubeconfigSecretRef.namespace: Secret kube-system/kc is in another namespace"
                .into(),
        ),
        (
            "bad alert regex",
            with(
                b(),
                "targets/prometheus",
                json!([{"name": "p", "url": "http://p", "alerts": {"exclude": [{"label": "alertname", "value": "(", "regex": true}]}}]),
            ),
            "InvalidSpec",
            "spec.targets.prometheus[0].alerts.exclude[0].value: invalid regular expression".into(),
        ),
    ]
}

async fn create(api: &Api<MorningCheck>, name: &str, spec: Value) -> Result<(), kube::Error> {
    let mc: Value = json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck", "metadata": {"name": name}, "spec": spec});
    // Posted as raw JSON, so what the Rust types would refuse still reaches the apiserver.
    let req =
        http::Request::post(format!("/apis/morningcheck.io/v1alpha1/namespaces/{}/morningchecks", api_namespace(api)))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&mc).unwrap())
            .unwrap();
    admin().await.request::<Value>(req).await.map(|_| ())
}

fn api_namespace(api: &Api<MorningCheck>) -> String {
    api.resource_url().split('/').nth(5).unwrap().to_string()
}

fn slug(case: &str) -> String {
    case.to_ascii_lowercase().replace(' ', "-").replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
}

async fn ready(api: &Api<MorningCheck>, name: &str) -> MorningCheckStatus {
    eventually(60, &format!("Ready condition of {name}"), || async {
        let st = api.get(name).await.ok()?.status?;
        st.conditions.iter().any(|c| c.type_ == "Ready").then_some(st)
    })
    .await
}

#[tokio::test]
async fn malformed_morningchecks_are_rejected_or_reported_and_nothing_else_stops() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "badinput").await;
    let api: Api<MorningCheck> = Api::namespaced(client.clone(), &ns.name);

    let schema = schema_cases(&ns.name);
    for (case, spec, field) in &schema {
        let err = create(&api, &slug(case), spec.clone()).await.expect_err(case);
        match err {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 422, "{case}: {}", s.message);
                assert!(s.message.contains(field), "{case}: 422 message names {field}: {}", s.message);
            }
            other => panic!("{case}: {other}"),
        }
    }

    let cases = controller_cases(&ns.name);
    for (case, spec, _, _) in &cases {
        create(&api, &slug(case), spec.clone()).await.unwrap_or_else(|e| panic!("{case}: the schema accepts it: {e}"));
    }
    create(&api, "valid", base(&ns.name)).await.unwrap();

    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;

    for (case, _, reason, piece) in &cases {
        let st = ready(&api, &slug(case)).await;
        let c = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", *reason), "{case}: {}", c.message);
        assert!(c.message.contains(piece.as_str()), "{case}: message {:?} names {piece:?}", c.message);
        assert!(st.history.is_empty() && st.active_run.is_none(), "{case}: never runs");
    }
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), &ns.name);
    eventually(30, "an InvalidSpec Warning event for every case", || async {
        let list = events.list(&Default::default()).await.ok()?;
        let warned: std::collections::HashSet<String> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.regarding.as_ref()?.name.clone())
            .collect();
        cases.iter().all(|(c, _, _, _)| warned.contains(&slug(c))).then_some(())
    })
    .await;

    // The valid one still runs, on demand.
    let patch = json!({"metadata": {"annotations": {"morningcheck.io/run-now": "go"}}});
    api.patch("valid", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let st = eventually(60, "the valid MorningCheck runs", || async {
        api.get("valid").await.ok()?.status.filter(|s| s.last_run.is_some() && s.active_run.is_none())
    })
    .await;
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
    // NEXT RUN and the Ready message name the same time, in the schedule's zone.
    let next = st.next_run.as_deref().expect("status.nextRun");
    assert_eq!(ready.message, format!("next run at {next}"));
    assert!(next.ends_with(" UTC"), "{next}");
    // The rules the apiserver enforces (unique names, thresholds, auth, …) are in tests/crd.rs.
    assert_eq!(schema.len() + cases.len(), 26);
    ctl.stop().await;
}

#[tokio::test]
async fn runtime_problems_are_reported_per_target_with_their_cause() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "runtime").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let mk = |name: &str, data: Value| {
        serde_json::from_value::<Secret>(json!({"metadata": {"name": name}, "stringData": data})).unwrap()
    };
    secrets.create(&PostParams::default(), &mk("kc", json!({"other": "x"}))).await.unwrap();
    let exec = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: sh}}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
    secrets.create(&PostParams::default(), &mk("exec", json!({"kubeconfig": exec}))).await.unwrap();
    secrets
        .create(&PostParams::default(), &mk("hook", json!({"url": "http://hooks.example.com/services/T0/B0/secret"})))
        .await
        .unwrap();

    // A hostile string flows from the cluster into a finding.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let p: Pod =
        serde_json::from_value(json!({"metadata": {"name": "hostile"}, "spec": common::planted_spec()})).unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let hostile = format!("<!channel> & *bold* `code` \u{202e}evil ✓ {}", "é".repeat(3000));
    let status = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": hostile}}}]}});
    pods.patch_status("hostile", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();

    let spec = json!({"schedule": "0 7 * * *", "targets": {"kubernetes": [
        {"name": "local", "namespaces": {"include": [ns.name]}, "checks": {"nodes": false}},
        {"name": "missing-secret", "kubeconfigSecretRef": {"name": "absent", "key": "kubeconfig"}},
        {"name": "missing-key", "kubeconfigSecretRef": {"name": "kc", "key": "kubeconfig"}},
        {"name": "exec-plugin", "kubeconfigSecretRef": {"name": "exec", "key": "kubeconfig"}}]},
        "slack": {"webhookSecretRef": {"name": "hook", "key": "url"}}});
    let api: Api<MorningCheck> = Api::namespaced(client.clone(), &ns.name);
    create(&api, "mc", spec).await.unwrap();
    let patch = json!({"metadata": {"annotations": {"morningcheck.io/run-now": "go"}}});
    api.patch("mc", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();

    let ctl = Running::start(&client, &ns.name, Arc::new(SystemClock)).await;

    let st = eventually(60, "the run and its notification", || async {
        api.get("mc")
            .await
            .ok()?
            .status
            .filter(|s| s.notification.as_ref().is_some_and(|n| n.outcome != NotificationOutcome::Sending))
    })
    .await;
    let run = st.last_run.as_ref().unwrap();
    let error_of = |name: &str| run.targets.iter().find(|t| t.name == name).unwrap().errors[0].message.clone();
    assert_eq!(error_of("missing-secret"), format!("Secret {}/absent not found", ns.name));
    assert_eq!(error_of("missing-key"), format!("Secret {}/kc has no key \"kubeconfig\"", ns.name));
    assert!(error_of("exec-plugin").contains("exec plugin, which the operator never runs"));
    let complete = st.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    assert_eq!((complete.status.as_str(), complete.reason.as_str()), ("False", "TargetsUnchecked"));
    assert!(complete.message.contains("3 of 4 targets could not be checked"), "{}", complete.message);
    assert_eq!((run.incomplete, run.unchecked_targets), (true, 3));

    // The hostile message is kept as data in the status, whole characters only.
    let local = run.targets.iter().find(|t| t.name == "local").unwrap();
    assert!(local.findings[0].message.contains("<!channel> & *bold*"));

    // A plain-http webhook is refused before anything is sent, and the URL is not shown.
    let notified = st.conditions.iter().find(|c| c.type_ == "Notified").unwrap();
    assert_eq!((notified.status.as_str(), notified.reason.as_str()), ("False", "DeliveryFailed"));
    assert!(notified.message.contains("webhook URL in Secret hook"), "{}", notified.message);
    let everything = serde_json::to_string(&st).unwrap();
    assert!(!everything.contains("/services/T0/B0/secret"), "the webhook URL never reaches the status");
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), &ns.name);
    let all = serde_json::to_string(&events.list(&Default::default()).await.unwrap().items).unwrap();
    assert!(!all.contains("/services/T0/B0/secret"), "nor an Event");
    // The local target was checked: the run's Event goes by what it found, and it is a
    // Warning because three targets could not be checked.
    let reason = if run.result == morningcheck::api::RunResult::Healthy { "RunIncomplete" } else { "RunFindings" };
    assert!(all.contains("SlackDeliveryFailed") && all.contains(reason) && !all.contains("RunFailed"), "{all}");

    ctl.stop().await;
}
