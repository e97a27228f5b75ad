//! `/metrics` is served only to a client the cluster vouches for: a bearer token the
//! apiserver authenticates (TokenReview) whose user RBAC allows `get` on `/metrics`
//! (SubjectAccessReview). Proven with the operator binary against the test apiserver.

mod common;

use common::chart::{kubectl, text, token};
use common::{ControllerProcess, TestNamespace, admin, var};

/// GETs `path` of the controller on `port`, with `token` as bearer when given.
async fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("the controller answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn metrics_need_a_token_the_cluster_authorizes() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "metrics-auth").await;
    let n = ns.name.as_str();
    // A scraper's ServiceAccount, bound to a ClusterRole that allows get on /metrics.
    let role = format!("{n}-metrics-reader");
    for args in [
        vec!["-n", n, "create", "serviceaccount", "scraper"],
        vec!["create", "clusterrole", &role, "--verb=get", "--non-resource-url=/metrics"],
    ] {
        let out = kubectl(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let binding = format!("--serviceaccount={n}:scraper");
    let clusterrole = format!("--clusterrole={role}");
    let out = kubectl(&["create", "clusterrolebinding", &role, &clusterrole, &binding]);
    assert!(out.status.success(), "{}", text(&out));
    let scraper = token(&client, n, "scraper").await;

    let controller = ControllerProcess::start(n, &[], "info");
    let port = controller.port();
    assert_eq!(get(port, "/metrics", None).await.0, 401, "no token");
    assert_eq!(get(port, "/metrics", Some("not-a-token")).await.0, 401, "a token the apiserver does not know");
    assert_eq!(get(port, "/metrics", Some(&var("MC_ALICE_TOKEN"))).await.0, 403, "authenticated, not authorized");
    let (code, body) = get(port, "/metrics", Some(&scraper)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("morningcheck_"), "{body}");
    // Cached: the same answer again.
    assert_eq!(get(port, "/metrics", Some(&scraper)).await.0, 200);
    assert_eq!(get(port, "/healthz", None).await, (200, "ok".to_string()), "probes need no token");
    common::eventually(30, "/readyz without a token", || async move {
        (get(port, "/readyz", None).await.0 == 200).then_some(())
    })
    .await;

    let open = ControllerProcess::start(n, &["--metrics-auth", "none"], "info");
    let open_port = open.port();
    // (the protected one keeps running beside it: both only watch this namespace)
    let (code, body) = get(open_port, "/metrics", None).await;
    assert_eq!(code, 200);
    assert!(body.contains("morningcheck_"), "{body}");
    let _ = kubectl(&["delete", "clusterrole,clusterrolebinding", &role, "--ignore-not-found"]);
}

/// The value of `morningcheck_last_successful_run_timestamp_seconds` for `ns/name`.
fn last_success(metrics: &str, ns: &str, name: &str) -> Option<f64> {
    let series = format!("morningcheck_last_successful_run_timestamp_seconds{{namespace=\"{ns}\",name=\"{name}\"}}");
    metrics.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok())
}

/// The gauges follow each MorningCheck's status, so a fresh process (a restart, a new
/// leader) has them before any run; a deleted MorningCheck's series goes.
#[tokio::test]
async fn metrics_follow_the_status_and_forget_deleted_checks() {
    let client = admin().await;
    common::install_crd(&client).await;
    let ns = TestNamespace::new(&client, "metrics-status").await;
    let n = ns.name.as_str();
    // Slots on 1 January only: nothing runs during the test.
    let spec = serde_json::json!({"schedule": "0 7 1 1 *", "targets": {"kubernetes": [{"name": "local"}]}});
    let api = common::create_check(&client, n, "succeeded", spec.clone()).await;
    common::create_check(&client, n, "never", spec.clone()).await;
    let mut suspended = spec;
    suspended["suspend"] = true.into();
    common::create_check(&client, n, "suspended", suspended).await;
    let status = serde_json::json!({"status": {"lastSuccessfulTime": "2026-01-02T03:04:05Z"}});
    api.patch_status("succeeded", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&status)).await.unwrap();
    let created = api.get("never").await.unwrap().metadata.creation_timestamp.unwrap().0;

    let controller = ControllerProcess::start(n, &["--metrics-auth", "none"], "info");
    let port = controller.port();
    let metrics = common::eventually(30, "gauges of both MorningChecks", || async move {
        let body = get(port, "/metrics", None).await.1;
        (last_success(&body, n, "succeeded").is_some() && last_success(&body, n, "never").is_some()).then_some(body)
    })
    .await;
    assert_eq!(last_success(&metrics, n, "succeeded"), Some(1_767_323_045.0), "status.lastSuccessfulTime");
    assert_eq!(last_success(&metrics, n, "never"), Some(created.as_second() as f64), "its creation time");
    // Once the suspended one is reconciled (its Ready reason says so), it has no series.
    let checks = api.clone();
    common::eventually(30, "the suspended MorningCheck reconciled", || async {
        let st = checks.get("suspended").await.ok()?.status?;
        st.conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "Suspended").then_some(())
    })
    .await;
    let metrics = get(port, "/metrics", None).await.1;
    assert_eq!(last_success(&metrics, n, "suspended"), None, "not running is intended");

    api.delete("never", &Default::default()).await.unwrap();
    common::eventually(60, "the deleted MorningCheck's series removed", || async move {
        let body = get(port, "/metrics", None).await.1;
        (last_success(&body, n, "never").is_none() && last_success(&body, n, "succeeded").is_some()).then_some(())
    })
    .await;
}
