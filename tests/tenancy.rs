//! Tenancy on the RBAC-enforcing test apiserver: the chart is installed by `helm install`
//! with its default values, and the operator binary runs in-cluster with the chart's
//! ServiceAccount and the chart's own config (its tenancy policy). A tenant namespace gets
//! a ServiceAccount bound to the chart's checker ClusterRole and nothing else; its
//! MorningCheck sees its own namespace, is refused another namespace by the apiserver, and
//! cannot use the operator's AWS identity, roles, endpoint overrides or network position.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::chart::{
    InCluster, Release, assert_unshare, create_webhook_secret, install_chart_crd, kubectl, release_config,
    service_account_files, slack_receiver, text, token, web_identity,
};
use common::{TestNamespace, admin, eventually};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::PostParams;
use kube::{Api, Client};
use morningcheck::api::{ErrorTier, MorningCheck, MorningCheckStatus, TargetReport};
use serde_json::{Value, json};

/// A pod name of the other namespace: it must never appear in anything the tenant sees.
const PRIVATE_POD: &str = "payroll-db-crashing";
/// The body of an internal service a Prometheus URL is aimed at.
const INTERNAL_BODY: &str = "internal-admin-console-7f3a";

fn internal_service() -> &'static str {
    // A plain HTTP service that is not Prometheus: its page must not reach the status.
    Box::leak(
        format!(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n<html>{INTERNAL_BODY}</html>",
            INTERNAL_BODY.len() + 13
        )
        .into_boxed_str(),
    )
}

/// A controller, in-cluster as the chart's ServiceAccount with the chart's config,
/// watching `watch`; the operator's namespace is `operator_ns`.
fn controller(files: &Path, config: &Path, watch: &str, operator_ns: &str, aws: &[(String, String)]) -> InCluster {
    let args: Vec<String> = [
        "controller",
        "--watch-namespace",
        watch,
        "--metrics-addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut env = aws.to_vec();
    env.push(("POD_NAMESPACE".into(), operator_ns.into()));
    InCluster::start(files, &args, files.join(format!("controller-{watch}.log")), &env)
}

/// The controller's /metrics, read with the admin's token (the chart lets the operator
/// review tokens).
async fn metrics_of(c: &InCluster) -> String {
    let port = common::serving_port(c.log_path(), "the controller");
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(common::var("MC_ADMIN_TOKEN"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

/// Runs `name` now as `token`; its status once the run and its digest are settled.
async fn run_now(client: &Client, ns: &str, name: &str, token: &str) -> MorningCheckStatus {
    let api: Api<MorningCheck> = Api::namespaced(client.clone(), ns);
    common::run_now(&api, name, token).await;
    common::run_finished(&api, name, token, 120).await
}

fn target<'a>(st: &'a MorningCheckStatus, name: &str) -> &'a TargetReport {
    let run = st.last_run.as_ref().unwrap();
    run.targets.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no target {name}: {:?}", run.targets))
}

fn only_error(t: &TargetReport) -> (ErrorTier, String) {
    assert_eq!(t.errors.len(), 1, "{}: {:?}", t.name, t.errors);
    (t.errors[0].tier, t.errors[0].message.clone())
}

async fn events_text(client: &Client, ns: &str) -> String {
    let list = Api::<KubeEvent>::namespaced(client.clone(), ns).list(&Default::default()).await.unwrap();
    serde_json::to_string(&list.items).unwrap()
}

fn mc(name: &str, targets: Value, slack: bool) -> MorningCheck {
    let mut spec = json!({"schedule": "0 7 * * *", "timeoutSeconds": 60, "targets": targets});
    if slack {
        spec["slack"] = json!({"webhookSecretRef": {"name": "slack-webhook", "key": "url"}});
    }
    serde_json::from_value(json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

/// `kubectl auth can-i` as the operator's ServiceAccount.
fn operator_can(sa: &str, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", sa]);
    let out = kubectl(&all);
    text(&out).trim().lines().last() == Some("yes")
}

#[tokio::test]
async fn a_tenant_gets_its_own_namespace_and_nothing_of_the_operator() {
    assert_unshare();
    let client = admin().await;
    install_chart_crd(&client).await;
    let platform = TestNamespace::new(&client, "platform").await;
    let tenant = TestNamespace::new(&client, "tenant").await;
    let other = TestNamespace::new(&client, "other").await;
    let (p, t, o) = (platform.name.as_str(), tenant.name.as_str(), other.name.as_str());
    let release = platform.name.clone();
    let fullname = format!("{release}-morningcheck");
    let dir = tempfile::tempdir().unwrap();

    // The chart with its default values.
    let (_release, _) = Release::install(&release, p, &[]).unwrap_or_else(|e| panic!("helm install:\n{e}"));
    let config = release_config(&client, p, &fullname, dir.path()).await;
    let operator = format!("system:serviceaccount:{p}:{fullname}");

    // The operator's effective permissions: nothing a tenant could borrow.
    assert!(operator_can(&operator, &["impersonate", "serviceaccounts", "-n", t]), "it may impersonate");
    for denied in [
        vec!["list", "pods", "--all-namespaces"],
        vec!["list", "pods", "-n", t],
        vec!["list", "pods", "-n", o],
        vec!["list", "events", "-n", o],
        vec!["list", "deployments.apps", "-n", o],
        vec!["list", "nodes"],
        vec!["get", "secrets", "-n", t],
        vec!["get", "secrets", "-n", p],
        vec!["impersonate", "users"],
        vec!["impersonate", "groups"],
    ] {
        assert!(!operator_can(&operator, &denied), "the operator may not {denied:?}");
    }

    // The tenant's namespace admin grants its ServiceAccount the checker role and its
    // webhook Secret: one RoleBinding each, nothing cluster-wide.
    let (webhook, posts) = slack_receiver("tenant");
    create_webhook_secret(&client, t, &webhook).await;
    let sa = format!("--serviceaccount={t}:morningcheck");
    let checker = format!("--clusterrole={fullname}-checker");
    for args in [
        vec!["-n", t, "create", "serviceaccount", "morningcheck"],
        vec!["-n", t, "create", "rolebinding", "checker", &checker, &sa],
        vec!["-n", t, "create", "role", "webhook", "--verb=get", "--resource=secrets", "--resource-name=slack-webhook"],
        vec!["-n", t, "create", "rolebinding", "webhook", "--role=webhook", &sa],
    ] {
        let out = kubectl(&args);
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    }
    common::crashing_pod(&client, t, "mine-crashing").await;
    common::crashing_pod(&client, o, PRIVATE_POD).await;

    // AWS answers at a listener that counts connections: none may be made.
    let (aws_url, aws_connections) =
        common::counting_listener("", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    let (internal_url, _) = common::counting_listener("", internal_service());
    let token_file = dir.path().join("aws-token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl").unwrap();
    let aws_env = web_identity(&token_file, &aws_url);

    let sa_token = token(&client, p, &fullname).await;
    let files = service_account_files(dir.path(), &sa_token, p);
    let tenant_controller = controller(&files, &config, t, p, &aws_env);
    let platform_controller = controller(&files, &config, p, p, &aws_env);

    let mcs: Api<MorningCheck> = Api::namespaced(client.clone(), t);
    let spec = mc(
        "team",
        json!({
            "kubernetes": [{"name": "own"}, {"name": "other", "namespaces": {"include": [o]}}],
            "prometheus": [{"name": "internal", "url": internal_url}],
            "aws": [{"name": "borrowed", "regions": ["ca-central-1"]}],
        }),
        true,
    );
    mcs.create(&PostParams::default(), &spec).await.unwrap();
    let st = run_now(&client, t, "team", "first").await;

    // Its own namespace, as its ServiceAccount: the crashlooping pod is found.
    let own = target(&st, "own");
    assert!(own.errors.is_empty(), "{:?}", own.errors);
    let objects: Vec<&str> = own.findings.iter().map(|f| f.object.as_str()).collect();
    assert!(objects.iter().any(|o| o.starts_with(&format!("{t}/mine-crashing/"))), "{objects:?}");
    assert!(!own.facts.contains_key("nodesListRequests"), "nodes are not listed as a tenant: {:?}", own.facts);
    // Another namespace: the apiserver refuses the tenant's ServiceAccount, verb and resource named.
    let refused = &target(&st, "other").errors;
    assert!(refused.iter().all(|e| e.tier == ErrorTier::Forbidden), "{refused:?}");
    let lists: Vec<&str> = refused.iter().map(|e| e.message.split(':').next().unwrap()).collect();
    for kind in ["pods", "deployments", "statefulsets", "daemonsets", "events"] {
        assert!(lists.contains(&format!("RBAC denies list {kind} in namespace {o}").as_str()), "{lists:?}");
    }
    let user = format!("User \"system:serviceaccount:{t}:morningcheck\" cannot list resource");
    assert!(refused.iter().all(|e| e.message.contains(&user)), "{refused:?}");
    // The operator's AWS identity: refused before any request.
    let (tier, message) = only_error(target(&st, "borrowed/ca-central-1"));
    assert_eq!(tier, ErrorTier::PolicyDenied, "{message}");
    assert!(message.contains("tenancy.aws.namespaces"), "{message}");
    // An internal service behind a Prometheus URL: a status code, never its body.
    let (_, message) = only_error(target(&st, "internal"));
    assert!(message.contains("502"), "{message}");
    // The spec-level refusal: Ready=False and a Warning Event.
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "PolicyDenied"), "{}", ready.message);
    assert!(ready.message.contains("spec.targets.aws[0]"), "{}", ready.message);
    let events = eventually(30, "a PolicyDenied Event", || async {
        let e = events_text(&client, t).await;
        e.contains("PolicyDenied").then_some(e)
    })
    .await;
    // The digest was posted, as the tenant's ServiceAccount read the webhook.
    let notified = st.conditions.iter().find(|c| c.type_ == "Notified").unwrap();
    assert_eq!(notified.reason, "Delivered", "{}", notified.message);
    let digest = posts.lock().unwrap().join("\n");

    // Nothing of the other namespace, nor of the internal service, anywhere.
    let status = serde_json::to_string(&st).unwrap();
    let logs = tenant_controller.logs();
    let metrics = metrics_of(&tenant_controller).await;
    assert!(metrics.contains("morningcheck_runs_total"), "{metrics}");
    let outputs =
        [("status", &status), ("events", &events), ("digest", &digest), ("log", &logs), ("metrics", &metrics)];
    for (what, text) in outputs {
        assert!(!text.contains(PRIVATE_POD), "{what} names a pod of another namespace:\n{text}");
        assert!(!text.contains(INTERNAL_BODY), "{what} holds the internal service's body:\n{text}");
    }
    assert_eq!(aws_connections.load(Ordering::SeqCst), 0, "no AWS request was sent");

    // In the operator's own namespace the AWS identity is allowed, but a role outside the
    // allowed patterns and an endpoint override are refused before STS or EC2 is called.
    let platform_mcs: Api<MorningCheck> = Api::namespaced(client.clone(), p);
    let spec = mc(
        "platform",
        json!({"aws": [
            {"name": "role", "regions": ["ca-central-1"], "roleArn": "arn:aws:iam::123456789012:role/admin"},
            {"name": "endpoint", "regions": ["ca-central-1"], "endpointUrl": aws_url},
        ]}),
        false,
    );
    platform_mcs.create(&PostParams::default(), &spec).await.unwrap();
    let st = run_now(&client, p, "platform", "first").await;
    let (tier, message) = only_error(target(&st, "role/ca-central-1"));
    assert_eq!(tier, ErrorTier::PolicyDenied);
    assert!(message.contains("tenancy.aws.assumeRoles"), "{message}");
    let (tier, message) = only_error(target(&st, "endpoint/ca-central-1"));
    assert_eq!(tier, ErrorTier::PolicyDenied);
    assert!(message.contains("tenancy.aws.allowEndpointOverride"), "{message}");
    assert_eq!(aws_connections.load(Ordering::SeqCst), 0, "no AWS request was sent: {}", platform_controller.logs());

    // A URL with credentials in it is refused at admission, with a message that says why.
    let with_userinfo =
        mc("userinfo", json!({"prometheus": [{"name": "p", "url": "https://u:hunter2@prom.example"}]}), false);
    let err = mcs.create(&PostParams::default(), &with_userinfo).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!("{err}") };
    assert_eq!(s.code, 422);
    assert!(s.message.contains("carries credentials"), "{}", s.message);
}
