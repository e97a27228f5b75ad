//! The chart's RBAC, proven on the RBAC-enforcing test apiserver: the chart is installed
//! for real by `helm install`, and the controller binary runs in in-cluster mode with a
//! token minted (TokenRequest) for the ServiceAccount helm created, the apiserver's CA and
//! the namespace at the in-cluster paths inside a private mount namespace (`unshare`), and
//! no kubeconfig. A MorningCheck with every check (the cluster, cluster-wide; Prometheus
//! with a query; EC2 on moto; Slack to a receiver on loopback) runs without a single 403;
//! then one rule at a time is removed and the next run fails exactly the check that needs
//! it, and nothing else.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::chart::{
    Access, InCluster, Release, SA_DIR, assert_unshare, can, create_webhook_secret, env_value, install_chart_crd,
    release_config, sa_groups_in, service_account_files, slack_receiver, token, web_identity,
};
use common::{TestNamespace, admin, eventually, var};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use morningcheck::api::{
    Area, ErrorTier, MorningCheck, MorningCheckStatus, NotificationOutcome, RunResult, TargetReport,
};
use serde_json::json;

const IDENTITY: &str = "morningcheck-rbac-proof";
const CHECK: &str = "proof";

/// Waits until the authorizer has caught up with an RBAC change.
async fn until_access(client: &Client, user: &str, access: Access<'_>, want: bool) {
    let (verb, group, resource, ns, name) = access;
    let what = format!("{verb} {group}/{resource} {name} in {ns:?} to be {}", if want { "allowed" } else { "denied" });
    eventually(30, &what, || async move { (can(client, user, &sa_groups_in(ns), access).await == want).then_some(()) })
        .await;
}

fn target(st: &MorningCheckStatus, area: Area) -> &TargetReport {
    let run = st.last_run.as_ref().expect("lastRun");
    let found: Vec<_> = run.targets.iter().filter(|t| t.area == area).collect();
    assert_eq!(found.len(), 1, "one {area:?} target in {:?}", run.targets.iter().map(|t| &t.name).collect::<Vec<_>>());
    found[0]
}

fn condition<'a>(st: &'a MorningCheckStatus, type_: &str) -> &'a morningcheck::api::Condition {
    st.conditions.iter().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_} condition"))
}

fn fact(t: &TargetReport, name: &str) -> u64 {
    *t.facts.get(name).unwrap_or_else(|| panic!("{} has no fact {name}: {:?}", t.name, t.facts))
}

fn assert_notified(st: &MorningCheckStatus, status: &str, reason: &str) {
    let c = condition(st, "Notified");
    assert_eq!((c.status.as_str(), c.reason.as_str()), (status, reason), "Notified: {}", c.message);
}

/// Occurrences of the Events about the check with `reason` (the recorder folds repeats
/// into a series).
async fn occurrences(client: &Client, ns: &str, reason: &str) -> i32 {
    events_about(client, ns, reason).await.iter().map(|e| e.series.as_ref().map_or(1, |s| s.count)).sum()
}

/// Every target checked, no error of any tier.
fn assert_no_target_errors(st: &MorningCheckStatus) {
    let run = st.last_run.as_ref().unwrap();
    assert_ne!(run.result, RunResult::Interrupted, "{}", run.run_id);
    let errors: Vec<String> = run
        .targets
        .iter()
        .flat_map(|t| t.errors.iter().map(move |e| format!("{}: {:?}: {}", t.name, e.tier, e.message)))
        .collect();
    assert!(errors.is_empty(), "target errors in {}:\n  {}", run.run_id, errors.join("\n  "));
}

/// The kubernetes target listed every kind of object: the list requests it made.
fn list_requests(t: &TargetReport) -> BTreeMap<&'static str, u64> {
    ["pods", "deployments", "statefulsets", "daemonsets", "nodes", "warningEvents"]
        .into_iter()
        .map(|k| (k, fact(t, &format!("{k}ListRequests"))))
        .collect()
}

async fn events_about(client: &Client, ns: &str, reason: &str) -> Vec<KubeEvent> {
    let list = Api::<KubeEvent>::namespaced(client.clone(), ns).list(&Default::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(CHECK))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

fn post_count(posts: &Arc<Mutex<Vec<String>>>) -> usize {
    posts.lock().unwrap().len()
}

#[tokio::test]
async fn the_controller_runs_every_check_with_exactly_the_charts_permissions() {
    assert_unshare();

    let client = admin().await;
    install_chart_crd(&client).await;
    let ns = TestNamespace::new(&client, "rbac").await;
    let n = ns.name.as_str();
    // The release is named after the namespace: its ClusterRoles and bindings are unique to this run.
    let release = ns.name.clone();
    let fullname = format!("{release}-morningcheck");
    let sa_user = format!("system:serviceaccount:{n}:{fullname}");
    let dir = tempfile::tempdir().unwrap();

    // The chart, installed by helm, with this namespace granted the operator's identity
    // (cluster-wide checks, its Secrets read by the operator) and endpoint overrides (moto).
    let grant = format!("tenancy.operatorIdentityNamespaces={{{n}}}");
    let (_release, _) =
        Release::install(&release, n, &["--set", &grant, "--set", "tenancy.aws.allowEndpointOverride=true"])
            .unwrap_or_else(|e| panic!("helm install:\n{e}"));
    let config = release_config(&client, n, &fullname, dir.path()).await;
    // The ServiceAccount helm created, and the Deployment's Lease name, as the apiserver has them.
    let sa =
        Api::<ServiceAccount>::namespaced(client.clone(), n).get(&fullname).await.expect("the chart's ServiceAccount");
    let managed_by = sa.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/managed-by"));
    assert_eq!(managed_by.map(String::as_str), Some("Helm"));
    let deployment = Api::<Deployment>::namespaced(client.clone(), n).get(&fullname).await.expect("the Deployment");
    let deployment = serde_json::to_value(&deployment).unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccountName"], fullname.as_str());
    let lease_name = env_value(container, "MORNINGCHECK_LEASE_NAME")
        .and_then(|e| e["value"].as_str())
        .expect("the Deployment's Lease name")
        .to_string();

    // A token of the chart's ServiceAccount (TokenRequest), and the in-cluster files.
    let token = token(&client, n, &fullname).await;
    let review: TokenReview = serde_json::from_value(json!({"spec": {"token": token}})).unwrap();
    let review = Api::<TokenReview>::all(client.clone()).create(&PostParams::default(), &review).await.unwrap();
    let status = review.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.unwrap();
    assert_eq!(user.username.as_deref(), Some(sa_user.as_str()), "the token is the ServiceAccount's");
    assert_eq!(user.uid, sa.metadata.uid, "bound to the very ServiceAccount object helm created");
    let files = service_account_files(dir.path(), &token, n);

    // The Slack webhook Secret, read by the controller in the MorningCheck's namespace.
    let (webhook, posts) = slack_receiver("rbacproof");
    create_webhook_secret(&client, n, &webhook).await;

    // The controller, in-cluster, with leader election on the chart's Lease.
    let metrics_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args: Vec<String> = [
        "controller",
        "--watch-namespace",
        n,
        "--leader-elect",
        "--lease-namespace",
        n,
        "--lease-name",
        &lease_name,
        "--identity",
        IDENTITY,
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
        "--config",
        config.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The operator's AWS identity as on EKS with IRSA: a web identity token and a role,
    // exchanged at moto's STS.
    let identity_token = dir.path().join("aws-token");
    std::fs::write(&identity_token, "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl").unwrap();
    let aws = web_identity(&identity_token, &var("MC_MOTO_URL"));
    let controller = InCluster::start(&files, &args, dir.path().join("controller.log"), &aws);
    let leases: Api<Lease> = Api::namespaced(client.clone(), n);
    let holder = eventually(60, "the controller to take the chart's Lease", || {
        let (leases, lease_name) = (leases.clone(), lease_name.clone());
        async move { leases.get_opt(&lease_name).await.ok()??.spec?.holder_identity }
    })
    .await;
    assert_eq!(holder, IDENTITY, "controller log:\n{}", controller.logs());
    assert!(
        !Path::new(SA_DIR).join("token").exists(),
        "the ServiceAccount files exist only inside the controller's mount namespace"
    );

    // A MorningCheck with every check, run now.
    let mcs: Api<MorningCheck> = Api::namespaced(client.clone(), n);
    let mc: MorningCheck = serde_json::from_value(json!({
        "apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": CHECK, "annotations": {"morningcheck.io/run-now": "full"}},
        "spec": {
            "schedule": "0 7 * * *",
            "timeoutSeconds": 90,
            "targets": {
                // Cluster-wide: no namespace include, so the lists need the ClusterRole.
                "kubernetes": [{"name": "cluster"}],
                "prometheus": [{"name": "prometheus", "url": var("MC_PROMETHEUS_URL"),
                                "queries": [{"name": "value", "query": "morningcheck:test_value", "warning": 1e9}]}],
                "aws": [{"name": "moto", "regions": ["ca-central-1"], "endpointUrl": var("MC_MOTO_URL")}],
            },
            "slack": {"webhookSecretRef": {"name": "slack-webhook", "key": "url"}, "notify": "Always"},
        }
    }))
    .unwrap();
    mcs.create(&PostParams::default(), &mc).await.unwrap();

    // 1. Everything allowed: a full run, no 403 anywhere.
    let st = common::run_finished(&mcs, CHECK, "full", 120).await;
    let logs = controller.logs();
    assert_no_target_errors(&st);
    let run = st.last_run.as_ref().unwrap();
    assert_eq!(run.targets.len(), 3, "{:?}", run.targets);
    let kube_target = target(&st, Area::Kubernetes);
    assert!(list_requests(kube_target).values().all(|&n| n >= 1), "every list made: {:?}", kube_target.facts);
    assert_eq!(fact(target(&st, Area::Prometheus), "queries"), 1);
    assert!(target(&st, Area::Aws).facts.contains_key("describeInstancesPages"), "{:?}", target(&st, Area::Aws).facts);
    assert_eq!(condition(&st, "Ready").status, "True");
    assert!(st.conditions.iter().any(|c| c.type_ == "Healthy"), "the verdict is written");
    assert!(!st.history.is_empty() && st.last_successful_time.is_some(), "the status was written");
    assert_notified(&st, "True", "Delivered");
    assert_eq!(post_count(&posts), 1, "one Slack post");
    assert_eq!(occurrences(&client, n, "SlackDeliveryFailed").await, 0);
    assert!(posts.lock().unwrap()[0].contains(CHECK), "the digest names the MorningCheck");
    let started = events_about(&client, n, "RunStarted").await;
    assert!(!started.is_empty(), "a RunStarted Event");
    assert_eq!(started[0].reporting_instance.as_deref(), Some(IDENTITY), "published by the in-cluster controller");
    let finished: Vec<_> = ["RunSucceeded", "RunFindings"].iter().map(|r| r.to_string()).collect();
    let list = Api::<KubeEvent>::namespaced(client.clone(), n).list(&Default::default()).await.unwrap();
    assert!(
        list.items.iter().any(|e| e.reason.as_ref().is_some_and(|r| finished.contains(r))),
        "an Event with the run's result"
    );
    let lease = leases.get(&lease_name).await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(IDENTITY), "the Lease is still held (renewed)");
    let lower = logs.to_ascii_lowercase();
    for bad in ["forbidden", "could not publish event", "lease renewal failed", "unauthorized"] {
        assert!(!lower.contains(bad), "`{bad}` in the controller's log:\n{logs}");
    }
    assert!(logs.contains("became leader"), "{logs}");

    // 2. Without `list pods` in the checks' ClusterRole: the pod check alone fails.
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let checks_role = format!("{fullname}-checks");
    let original = roles.get(&checks_role).await.unwrap();
    let mut without_pods = original.clone();
    for rule in without_pods.rules.as_mut().unwrap() {
        if let Some(resources) = rule.resources.as_mut() {
            resources.retain(|r| r != "pods");
        }
    }
    without_pods.rules.as_mut().unwrap().retain(|r| r.resources.as_ref().is_some_and(|r| !r.is_empty()));
    roles.replace(&checks_role, &PostParams::default(), &without_pods).await.unwrap();
    until_access(&client, &sa_user, ("list", "", "pods", "", ""), false).await;
    assert!(can(&client, &sa_user, &sa_groups_in(""), ("list", "", "events", "", "")).await, "events stay readable");

    common::run_now(&mcs, CHECK, "no-pods").await;
    let st = common::run_finished(&mcs, CHECK, "no-pods", 120).await;
    let k = target(&st, Area::Kubernetes);
    assert_eq!(k.errors.len(), 1, "{:?}", k.errors);
    assert_eq!(k.errors[0].tier, ErrorTier::Forbidden);
    assert!(k.errors[0].message.contains("list pods at cluster scope"), "{}", k.errors[0].message);
    let lists = list_requests(k);
    assert_eq!(lists["pods"], 0, "{lists:?}");
    for other in ["deployments", "statefulsets", "daemonsets", "nodes", "warningEvents"] {
        assert!(lists[other] >= 1, "{other} still listed: {lists:?}");
    }
    assert!(target(&st, Area::Prometheus).errors.is_empty() && target(&st, Area::Aws).errors.is_empty());
    let complete = condition(&st, "Complete");
    assert_eq!((complete.status.as_str(), complete.reason.as_str()), ("False", "TargetsUnchecked"));
    assert!(complete.message.contains("1 of 3 targets could not be checked"), "{}", complete.message);
    assert_notified(&st, "True", "Delivered");
    assert_eq!(post_count(&posts), 2, "Slack is unaffected");
    assert_eq!(occurrences(&client, n, "SlackDeliveryFailed").await, 0);

    let mut restored = roles.get(&checks_role).await.unwrap();
    restored.rules = original.rules.clone();
    roles.replace(&checks_role, &PostParams::default(), &restored).await.unwrap();
    until_access(&client, &sa_user, ("list", "", "pods", "", ""), true).await;

    // 3. Without the Secrets Role: the webhook cannot be read, so only the digest fails.
    let secret_roles: Api<Role> = Api::namespaced(client.clone(), n);
    let secrets_role = format!("{fullname}-secrets");
    let saved = secret_roles.get(&secrets_role).await.unwrap();
    secret_roles.delete(&secrets_role, &DeleteParams::default()).await.unwrap();
    until_access(&client, &sa_user, ("get", "", "secrets", n, "slack-webhook"), false).await;

    common::run_now(&mcs, CHECK, "no-secrets").await;
    let st = common::run_finished(&mcs, CHECK, "no-secrets", 120).await;
    assert_no_target_errors(&st);
    assert_notified(&st, "False", "DeliveryFailed");
    let denied =
        |message: &str| message.contains(&format!("get secret {n}/slack-webhook")) && message.contains("RBAC denies");
    let notified = condition(&st, "Notified");
    assert!(denied(&notified.message), "{}", notified.message);
    assert_eq!(st.notification.as_ref().unwrap().outcome, NotificationOutcome::Failed);
    assert_eq!(post_count(&posts), 2, "nothing posted");
    let failed = events_about(&client, n, "SlackDeliveryFailed").await;
    assert_eq!(failed.len(), 1, "a SlackDeliveryFailed Event");
    let note = failed[0].note.clone().unwrap_or_default();
    assert!(denied(&note), "the Event says the webhook Secret read was forbidden: {note}");

    let role = Role {
        metadata: ObjectMeta {
            name: saved.metadata.name.clone(),
            labels: saved.metadata.labels.clone(),
            annotations: saved.metadata.annotations.clone(),
            ..Default::default()
        },
        rules: saved.rules.clone(),
    };
    secret_roles.create(&PostParams::default(), &role).await.unwrap();
    until_access(&client, &sa_user, ("get", "", "secrets", n, "slack-webhook"), true).await;

    // 4. Rules restored: the full run again.
    common::run_now(&mcs, CHECK, "restored").await;
    let st = common::run_finished(&mcs, CHECK, "restored", 120).await;
    assert_no_target_errors(&st);
    assert_notified(&st, "True", "Delivered");
    assert_eq!(post_count(&posts), 3);
    assert_eq!(occurrences(&client, n, "SlackDeliveryFailed").await, 1, "no new delivery failure");
    let lease = leases.get(&lease_name).await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(IDENTITY));
    drop(controller);
    assert!(!Path::new(SA_DIR).join("token").exists(), "nothing left on the host");
}
