//! The Helm chart and the plain manifests, with helm itself (built from its Go module by
//! tests/env/build.sh): `helm lint --strict`; `helm template` with defaults, with every
//! option, and at the oldest and newest Kubernetes the chart supports; values.schema.json
//! enforced by helm (typos refused); the RBAC least privilege and commented rule by rule;
//! selectors that keep the operator's and the CronJob's pods apart; the alerts unit-tested
//! with promtool; deploy/ rendered by helm and checked for drift; every render validated by
//! kubeconform against the test apiserver's own OpenAPI (the MorningCheck and monitoring
//! CRDs included); and `helm install`, `upgrade` and `uninstall` on the RBAC-enforcing test
//! apiserver with its controllers, where the pods really run (kwok), the PodDisruptionBudget
//! and the Service see only the operator's pods, and SubjectAccessReviews show what the
//! ServiceAccount helm created may and may not do.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use common::chart::{
    CHART, CHECK_READS, Release, assert_access, docs, env_value, get_json, helm, install_monitoring_crds, kubeconform,
    kubectl, newest_supported, notes, of_kind, one, openapi_schema, read, render, repo, sa_groups, selects, strings,
    text, try_render, versions,
};
use common::{TestNamespace, admin, eventually, var};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use serde_json::{Value, json};

/// (apiGroup, resource, verb, resourceNames)
type Grant = (String, String, String, Vec<String>);

/// Every rule of the given roles, flattened.
fn grants(roles: &[&Value]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for role in roles {
        for rule in role["rules"].as_array().expect("rules") {
            let names = strings(&rule["resourceNames"]);
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        out.insert((g.clone(), r.clone(), v, names.clone()));
                    }
                }
            }
        }
    }
    out
}

fn grant(g: &str, r: &str, v: &str) -> Grant {
    (g.into(), r.into(), v.into(), vec![])
}

/// What the checks list in each namespace they read.
fn namespaced_check_grants() -> BTreeSet<Grant> {
    [
        grant("", "pods", "list"),
        grant("", "events", "list"),
        grant("apps", "deployments", "list"),
        grant("apps", "statefulsets", "list"),
        grant("apps", "daemonsets", "list"),
    ]
    .into_iter()
    .collect()
}

/// What the checks list, cluster-wide: nodes and the namespaced kinds.
fn check_grants() -> BTreeSet<Grant> {
    let mut reads = namespaced_check_grants();
    reads.insert(grant("", "nodes", "list"));
    reads
}

// ---------------------------------------------------------------------------------------
// helm itself, the CRD copy, the supported Kubernetes versions and the plain manifests

/// Values that turn on every optional template and pass a value of every kind through;
/// `ns` is the release namespace and `team` the namespace whose pods and Secrets the checks
/// may read as well. (No nodeSelector or priorityClassName: the release is installed for
/// real, and its pods must schedule on the test cluster's nodes.)
fn every_option(ns: &str, team: &str) -> String {
    format!(
        r#"replicaCount: 2
leaderElection:
  leaseDurationSeconds: 20
image:
  repository: registry.example.com/platform/morningcheck
  tag: "1.2.3"
  digest: sha256:{digest}
imagePullSecrets: [{{name: regcred}}]
controller:
  logFormat: plain
  extraEnv: [{{name: AWS_REGION, value: eu-west-1}}]
serviceAccount:
  annotations: {{eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/morningcheck"}}
  labels: {{team: platform}}
rbac:
  checkNamespaces: [{ns}, {team}]
  secretNames: [slack-webhook]
tenancy:
  operatorIdentityNamespaces: [{ns}, {team}]
  aws: {{namespaces: [{ns}], assumeRoles: {{{team}: ["arn:aws:iam::123456789012:role/team-*"]}}, allowEndpointOverride: true, endpointHosts: ["*.amazonaws.com"]}}
  outbound: {{allowedHosts: ["*.svc"], allowedCidrs: [10.0.0.0/8]}}
podAnnotations: {{example.com/owner: platform}}
podLabels: {{team: platform}}
tolerations: [{{key: example.com/dedicated, operator: Exists, effect: NoSchedule}}]
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector: {{matchLabels: {{app.kubernetes.io/component: controller}}}}
service:
  annotations: {{example.com/scrape: "true"}}
podDisruptionBudget:
  minAvailable: 1
serviceMonitor:
  enabled: true
  labels: {{release: kps}}
prometheusRule:
  enabled: true
  labels: {{release: kps}}
  alertLabels: {{team: platform}}
networkPolicy:
  enabled: true
  restrictEgress: true
  metricsFrom: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: monitoring}}}}}}]
  extraEgress: [{{to: [{{ipBlock: {{cidr: 10.0.0.0/8}}}}], ports: [{{port: 9090, protocol: TCP}}]}}]
cronjob:
  enabled: true
  timeZone: Europe/Berlin
  extraArgs: [--output, json]
  extraEnv: [{{name: AWS_REGION, value: eu-west-1}}]
"#,
        digest = "a".repeat(64)
    )
}

fn write_values(dir: &Path, name: &str, yaml: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn helm_lints_the_chart_strictly() {
    let chart = repo().join(CHART);
    let chart = chart.to_str().unwrap();
    let out = helm(&["lint", "--strict", chart]);
    assert!(out.status.success(), "helm lint --strict:\n{}", text(&out));
    assert!(text(&out).contains("1 chart(s) linted, 0 chart(s) failed"), "{}", text(&out));

    // Every option, at both ends of the supported versions. (The monitoring objects need
    // their API, which lint cannot be told about: helm template below renders them.)
    let dir = tempfile::tempdir().unwrap();
    let all =
        every_option("ops", "team-a").replace("serviceMonitor:\n  enabled: true", "serviceMonitor:\n  enabled: false");
    let all = all.replace("prometheusRule:\n  enabled: true", "prometheusRule:\n  enabled: false");
    let values = write_values(dir.path(), "all.yaml", &all);
    for kube in [&versions()["K8S_OLDEST_SUPPORTED"], &newest_supported()] {
        let out = helm(&["lint", "--strict", chart, "--values", &values, "--kube-version", kube]);
        assert!(out.status.success(), "helm lint --strict, every option, Kubernetes {kube}:\n{}", text(&out));
    }

    // A typo fails the lint, through the schema.
    let typo = write_values(dir.path(), "typo.yaml", "securityContext:\n  readOnlyRootFileSystem: true\n");
    let out = helm(&["lint", "--strict", chart, "--values", &typo]);
    assert!(!out.status.success(), "a typo passes the lint:\n{}", text(&out));
    assert!(text(&out).contains("readOnlyRootFileSystem"), "{}", text(&out));
}

#[test]
fn the_chart_ships_the_generated_crd() {
    // crds/ itself is checked against the Rust types by tests/controller.rs.
    let chart_crd = read("charts/morningcheck/crds/morningcheck.yaml");
    assert!(
        chart_crd == read("crds/morningcheck.yaml"),
        "charts/morningcheck/crds/morningcheck.yaml differs from crds/morningcheck.yaml: \
         cp crds/morningcheck.yaml charts/morningcheck/crds/ && tools/render-deploy.sh"
    );
    let chart: Value = serde_saphyr::from_str(&read("charts/morningcheck/Chart.yaml")).unwrap();
    assert_eq!((chart["apiVersion"].as_str(), chart["name"].as_str()), (Some("v2"), Some("morningcheck")));
    assert_eq!((chart["version"].as_str(), chart["appVersion"].as_str()), (Some("0.1.0"), Some("0.1.0")));
    let oldest = &versions()["K8S_OLDEST_SUPPORTED"];
    assert_eq!(chart["kubeVersion"], format!(">={oldest}.0-0"), "Chart.yaml's kubeVersion is the oldest supported");
}

/// The chart renders the same at the oldest supported Kubernetes and at the newest (the
/// test apiserver's), with every option; helm refuses an older cluster.
#[test]
fn renders_at_both_ends_of_the_supported_versions_and_refuses_older() {
    let dir = tempfile::tempdir().unwrap();
    let values = write_values(dir.path(), "all.yaml", &every_option("ops", "team-a"));
    let (oldest, newest) = (versions()["K8S_OLDEST_SUPPORTED"].clone(), newest_supported());
    let at = |kube: &str| {
        render(
            "mc",
            "ops",
            &[
                "--values",
                &values,
                "--api-versions",
                "monitoring.coreos.com/v1",
                "--kube-version",
                kube,
                "--include-crds",
            ],
        )
    };
    let (old, new) = (at(&oldest), at(&newest));
    assert!(old == new, "the render differs between Kubernetes {oldest} and {newest}");
    let kinds: BTreeSet<String> = docs(&old).iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect();
    for k in ["CustomResourceDefinition", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "NetworkPolicy"] {
        assert!(kinds.contains(k), "every option renders a {k}: {kinds:?}");
    }
    assert!(kinds.contains("CronJob") && kinds.contains("Deployment"), "{kinds:?}");

    let (major, minor_number) = oldest.split_once('.').unwrap();
    let older = format!("{major}.{}", minor_number.parse::<u32>().unwrap() - 1);
    let err = try_render("mc", "ops", &["--kube-version", &older]).unwrap_err();
    assert!(err.contains("incompatible with Kubernetes") && err.contains(&older), "{err}");
}

/// deploy/ is what tools/render-deploy.sh (helm template) makes of the chart today.
#[test]
fn deploy_manifests_match_a_fresh_render() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("tools/render-deploy.sh")).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "tools/render-deploy.sh failed:\n{}", text(&out));
    for file in ["morningcheck.yaml", "cronjob.yaml"] {
        let fresh = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let committed = read(&format!("deploy/{file}"));
        if let Some((n, (want, got))) = fresh
            .lines()
            .chain(["<end>"])
            .zip(committed.lines().chain(["<end>"]))
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            panic!(
                "deploy/{file} drifted from the chart at line {}: run tools/render-deploy.sh and commit the \
                 result\n  render:    {want}\n  committed: {got}",
                n + 1
            );
        }
    }

    // What `kubectl apply -f deploy/morningcheck.yaml` gets: the Namespace first, then the
    // CRD, then the operator with its defaults, all in namespace morningcheck.
    let all = docs(&read("deploy/morningcheck.yaml"));
    assert_eq!(all[0]["kind"], "Namespace");
    assert_eq!(all[0]["metadata"]["name"], "morningcheck");
    assert_eq!(all[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(all[1]["kind"], "CustomResourceDefinition");
    assert_eq!(all[1]["metadata"]["name"], "morningchecks.morningcheck.io");
    for d in &all[2..] {
        let ns = &d["metadata"]["namespace"];
        assert!(ns.is_null() || ns == "morningcheck", "{} in namespace {ns}", d["kind"]);
    }
    let kinds: BTreeSet<&str> = all.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(k), "deploy/ has no {k}");
    }
    assert_eq!(one(&all, "Deployment")["metadata"]["name"], "morningcheck");

    // The two files can be applied to one cluster: no object of one is an object of the other.
    let key = |d: &Value| format!("{}/{}/{}", d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]);
    let operator: BTreeSet<String> = all[1..].iter().map(key).collect();
    let cron: BTreeSet<String> = docs(&read("deploy/cronjob.yaml"))[1..].iter().map(key).collect();
    assert!(operator.is_disjoint(&cron), "shared: {:?}", operator.intersection(&cron).collect::<Vec<_>>());

    // kubectl reads both and knows every kind (a client-side dry run of create: a
    // server-side one would need the namespace to exist already, and apply's client-side
    // dry run cannot merge the CRD's `enum: [.., null]` locally when the CRD exists;
    // kubeconform checks both files against the server's schemas below).
    for (file, objects) in [("deploy/morningcheck.yaml", all.len()), ("deploy/cronjob.yaml", cron.len() + 1)] {
        let path = repo().join(file);
        let out = kubectl(&["create", "--dry-run=client", "-o", "name", "-f", path.to_str().unwrap()]);
        assert!(out.status.success(), "kubectl create --dry-run=client -f {file}:\n{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), objects, "{}", text(&out));
    }
}

// ---------------------------------------------------------------------------------------
// The Deployment

#[test]
fn defaults_render_a_hardened_deployment() {
    let all = docs(&render("morningcheck", "ops", &[]));
    let d = one(&all, "Deployment");
    assert_eq!(d["metadata"]["namespace"], "ops");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "morningcheck");

    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "morningcheck:0.1.0", "the tag defaults to the appVersion");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert!(sc["runAsUser"].is_u64() && sc["runAsUser"] == 65532, "numeric runAsUser: {sc}");
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc["privileged"].is_null() || sc["privileged"] == false);

    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["limits"]["memory"].is_string());

    assert_eq!(strings(&c["args"]), ["--leader-elect"]);
    for (name, path) in [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")] {
        let e = env_value(c, name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], path, "{name} from the downward API");
    }
    assert_eq!(env_value(c, "MORNINGCHECK_LOG_FORMAT").unwrap()["value"], "json");
    assert_eq!(env_value(c, "MORNINGCHECK_METRICS_ADDR").unwrap()["value"], "0.0.0.0:8080");
    assert_eq!(env_value(c, "MORNINGCHECK_LEASE_NAME").unwrap()["value"], "morningcheck-leader");

    let svc = one(&all, "Service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(svc["spec"]["selector"], d["spec"]["selector"]["matchLabels"]);
    assert_eq!(one(&all, "ServiceAccount")["metadata"]["name"], "morningcheck");
    for optional in ["ServiceMonitor", "PrometheusRule", "NetworkPolicy"] {
        assert!(of_kind(&all, optional).is_empty(), "{optional} is off by default");
    }

    // Values reach the container: log format, image digest, IRSA annotation.
    let all = docs(&render(
        "morningcheck",
        "ops",
        &[
            "--set",
            "controller.logFormat=plain,image.tag=1.2.3",
            "--set-string",
            &format!("image.digest=sha256:{}", "a".repeat(64)),
            "--set",
            r"serviceAccount.annotations.eks\.amazonaws\.com/role-arn=arn:aws:iam::123456789012:role/mc",
        ],
    ));
    let c = &one(&all, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(env_value(c, "MORNINGCHECK_LOG_FORMAT").unwrap()["value"], "plain");
    assert_eq!(c["image"], format!("morningcheck:1.2.3@sha256:{}", "a".repeat(64)));
    assert_eq!(
        one(&all, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/mc"
    );
}

#[test]
fn leader_election_follows_the_replicas() {
    let single = docs(&render("mc", "ops", &["--set", "replicaCount=1"]));
    let d = one(&single, "Deployment");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert!(c["args"].is_null(), "no --leader-elect with one replica: {}", c["args"]);
    assert!(env_value(c, "MORNINGCHECK_LEASE_NAME").is_none());
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate", "two unelected operators must never overlap");
    assert!(
        of_kind(&single, "Role").iter().all(|r| !r["metadata"]["name"].as_str().unwrap().ends_with("-leader-election")),
        "no Lease rights without leader election"
    );

    let forced =
        docs(&render("mc", "ops", &["--set", "replicaCount=1,leaderElection.enabled=true,leaderElection.leaseName=x"]));
    let c = &one(&forced, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(strings(&c["args"]), ["--leader-elect"]);
    assert_eq!(env_value(c, "MORNINGCHECK_LEASE_NAME").unwrap()["value"], "x");

    let err = try_render("mc", "ops", &["--set", "leaderElection.renewDeadlineSeconds=15"]).unwrap_err();
    assert!(err.contains("renewDeadlineSeconds must be less than"), "{err}");
}

/// The Deployment's selector, the Service's, the PodDisruptionBudget's and the
/// anti-affinity term select the operator's pods and never the CronJob's, which the
/// operator's selector labels would otherwise match (the same name and instance).
#[test]
fn the_operators_and_the_cronjobs_pods_are_selected_apart() {
    let all = docs(&render("mc", "ops", &["--set", "cronjob.enabled=true,podLabels.team=platform"]));
    let deployment = one(&all, "Deployment");
    let operator_pod = &deployment["spec"]["template"]["metadata"]["labels"];
    let run_pod = &one(&all, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"];
    assert_eq!(operator_pod["app.kubernetes.io/component"], "controller");
    assert_eq!(run_pod["app.kubernetes.io/component"], "run");
    assert_eq!((operator_pod["team"].as_str(), run_pod["team"].as_str()), (Some("platform"), Some("platform")));
    let anti_affinity = &deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"]["labelSelector"];
    for (what, selector) in [
        ("the Deployment", &deployment["spec"]["selector"]),
        ("the Service", &one(&all, "Service")["spec"]["selector"]),
        ("the PodDisruptionBudget", &one(&all, "PodDisruptionBudget")["spec"]["selector"]),
        ("the anti-affinity", anti_affinity),
    ] {
        assert!(selects(selector, operator_pod), "{what} selects the operator's pods: {selector}");
        assert!(!selects(selector, run_pod), "{what} selects the CronJob's pods too: {selector}");
    }
    // The NetworkPolicy covers both on purpose: the CronJob's egress is restricted too.
    let np = docs(&render("mc", "ops", &["--set", "cronjob.enabled=true,networkPolicy.enabled=true"]));
    let policy = &one(&np, "NetworkPolicy")["spec"]["podSelector"];
    assert!(selects(policy, operator_pod) && selects(policy, run_pod), "{policy}");

    // Extra pod labels cannot take over the selectors' labels.
    for key in ["app.kubernetes.io/component", "app.kubernetes.io/instance", "app.kubernetes.io/name"] {
        let err = try_render("mc", "ops", &["--set-string", &format!("podLabels.{}=x", key.replace('.', "\\."))])
            .unwrap_err();
        assert!(err.contains(&format!("podLabels may not set {key}")), "{err}");
    }
}

/// With more than one replica, a PodDisruptionBudget keeps a standby through drains; with
/// one it would block every drain, so there is none.
#[test]
fn a_disruption_budget_guards_more_than_one_replica() {
    let all = docs(&render("mc", "ops", &[]));
    let pdb = one(&all, "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["metadata"]["namespace"], "ops");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow", "a crashlooping replica never blocks a drain");
    assert_eq!(pdb["spec"]["selector"], one(&all, "Deployment")["spec"]["selector"]);

    let three = docs(&render("mc", "ops", &["--set", "replicaCount=3,podDisruptionBudget.minAvailable=2"]));
    assert_eq!(one(&three, "PodDisruptionBudget")["spec"]["minAvailable"], 2);
    for set in [
        "replicaCount=1",
        "podDisruptionBudget.enabled=false",
        "controller.enabled=false,cronjob.enabled=true",
        "replicaCount=0",
    ] {
        let none = docs(&render("mc", "ops", &["--set", set]));
        assert!(of_kind(&none, "PodDisruptionBudget").is_empty(), "--set {set} renders a PodDisruptionBudget");
    }
    let err = try_render("mc", "ops", &["--set", "podDisruptionBudget.minAvailable=2"]).unwrap_err();
    assert!(err.contains("podDisruptionBudget.minAvailable must be less than replicaCount"), "{err}");
}

// ---------------------------------------------------------------------------------------
// RBAC

/// The ClusterRoles the release binds to the operator's ServiceAccount.
fn bound(all: &[Value]) -> Vec<&Value> {
    let names: BTreeSet<&str> =
        of_kind(all, "ClusterRoleBinding").iter().filter_map(|b| b["roleRef"]["name"].as_str()).collect();
    of_kind(all, "ClusterRole")
        .into_iter()
        .filter(|r| names.contains(r["metadata"]["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn default_rbac_is_least_privilege() {
    let all = docs(&render("morningcheck", "ops", &[]));
    let cluster_roles = bound(&all);
    let cluster = grants(&cluster_roles);
    // Nothing a MorningCheck author could borrow: no read of pods, workloads, events, nodes
    // or Secrets; the checks run as each namespace's own ServiceAccount, impersonated.
    let expected: BTreeSet<_> = [
        grant("morningcheck.io", "morningchecks", "get"),
        grant("morningcheck.io", "morningchecks", "list"),
        grant("morningcheck.io", "morningchecks", "watch"),
        grant("morningcheck.io", "morningchecks/status", "patch"),
        grant("events.k8s.io", "events", "create"),
        grant("events.k8s.io", "events", "patch"),
        grant("", "serviceaccounts", "impersonate"),
        grant("authentication.k8s.io", "tokenreviews", "create"),
        grant("authorization.k8s.io", "subjectaccessreviews", "create"),
    ]
    .into_iter()
    .collect();
    assert_eq!(cluster, expected, "cluster-wide rules");
    for (g, r, v, _) in &cluster {
        assert!(r != "secrets" && !r.starts_with("secrets/"), "a ClusterRole grants {v} on secrets");
        assert!(g != "*" && r != "*" && v != "*", "wildcard in a ClusterRole: {g} {r} {v}");
    }
    for role in cluster_roles {
        assert!(role["aggregationRule"].is_null(), "the operator's roles list their own rules");
    }
    // For namespace admins to bind: the aggregated checker (its base gives the namespaced
    // reads), the node reader and the metrics reader; none bound by the chart.
    let unbound: BTreeSet<&str> = of_kind(&all, "ClusterRole")
        .iter()
        .filter(|r| !bound(&all).iter().any(|b| b["metadata"]["name"] == r["metadata"]["name"]))
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = [
        "morningcheck-checker",
        "morningcheck-checker-base",
        "morningcheck-node-reader",
        "morningcheck-metrics-reader",
    ]
    .into_iter()
    .collect();
    assert_eq!(unbound, want);
    let named = |n: &str| *of_kind(&all, "ClusterRole").iter().find(|r| r["metadata"]["name"] == n).unwrap();
    let checker = named("morningcheck-checker");
    assert_eq!(
        checker["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.morningcheck.io/aggregate-to-checker"],
        "true"
    );
    let base = named("morningcheck-checker-base");
    assert_eq!(base["metadata"]["labels"]["rbac.morningcheck.io/aggregate-to-checker"], "true");
    assert_eq!(grants(&[base]), namespaced_check_grants());
    assert_eq!(grants(&[named("morningcheck-node-reader")]), [grant("", "nodes", "list")].into_iter().collect());
    assert_eq!(
        named("morningcheck-metrics-reader")["rules"],
        json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    );

    let roles = of_kind(&all, "Role");
    assert_eq!(
        roles.len(),
        2,
        "the Lease's and the known findings' Roles only: no Secret is read by the operator itself"
    );
    let known = roles.iter().find(|r| r["metadata"]["name"] == "morningcheck-known-findings").unwrap();
    assert_eq!(known["metadata"]["namespace"], "ops");
    let want: BTreeSet<_> =
        ["get", "list", "create", "update", "delete"].into_iter().map(|v| grant("", "configmaps", v)).collect();
    assert_eq!(grants(&[known]), want);
    let lease = roles.iter().find(|r| r["metadata"]["name"] == "morningcheck-leader-election").unwrap();
    assert_eq!(lease["metadata"]["namespace"], "ops");
    let named = vec!["morningcheck-leader".to_string()];
    let want: BTreeSet<_> = [
        ("coordination.k8s.io".into(), "leases".into(), "get".into(), named.clone()),
        ("coordination.k8s.io".into(), "leases".into(), "update".into(), named),
        grant("coordination.k8s.io", "leases", "create"),
    ]
    .into_iter()
    .collect();
    assert_eq!(grants(&[lease]), want);

    // Every binding gives its role to the operator's ServiceAccount and nobody else.
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for b in of_kind(&all, kind) {
            assert_eq!(b["subjects"], json!([{"kind": "ServiceAccount", "name": "morningcheck", "namespace": "ops"}]));
            assert_eq!(b["roleRef"]["kind"], if kind == "RoleBinding" { "Role" } else { "ClusterRole" });
            assert_eq!(b["roleRef"]["name"], b["metadata"]["name"]);
        }
    }
}

#[test]
fn check_namespaces_scope_the_reads_to_roles() {
    let set = "rbac.checkNamespaces={team-a,team-b,team-a},tenancy.operatorIdentityNamespaces={ops}";
    let all = docs(&render("mc", "ops", &["--set", set]));
    let cluster = grants(&bound(&all));
    assert!(cluster.contains(&grant("", "nodes", "list")), "nodes are cluster-scoped and stay readable");
    for (group, r) in
        [("", "pods"), ("", "events"), ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets")]
    {
        assert!(!cluster.iter().any(|g| g.0 == group && g.1 == r), "{r} must not be readable cluster-wide");
    }
    assert!(cluster.contains(&grant("events.k8s.io", "events", "create")), "Events are still published anywhere");
    let checks: Vec<_> =
        of_kind(&all, "Role").into_iter().filter(|r| r["metadata"]["name"] == "mc-morningcheck-checks").collect();
    let namespaces: Vec<_> = checks.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
    assert_eq!(namespaces, ["team-a", "team-b"], "one Role per listed namespace, duplicates dropped");
    let want = namespaced_check_grants();
    for r in &checks {
        assert_eq!(grants(&[r]), want);
    }
    let bindings: Vec<_> = of_kind(&all, "RoleBinding")
        .into_iter()
        .filter(|b| b["metadata"]["name"] == "mc-morningcheck-checks")
        .map(|b| b["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(bindings, ["team-a", "team-b"]);
}

#[test]
fn secrets_are_readable_only_where_listed() {
    let all = docs(&render(
        "mc",
        "ops",
        &[
            "--set",
            "tenancy.operatorIdentityNamespaces={team-a,team-b},rbac.secretNames={slack-webhook,remote-kubeconfig}",
        ],
    ));
    let with_secrets: Vec<_> =
        of_kind(&all, "Role").into_iter().filter(|r| grants(&[r]).iter().any(|g| g.1 == "secrets")).collect();
    let namespaces: Vec<_> = with_secrets.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
    assert_eq!(namespaces, ["team-a", "team-b"], "only the namespaces granted the operator's identity");
    for r in with_secrets {
        assert_eq!(r["rules"].as_array().unwrap().len(), 1);
        assert_eq!(strings(&r["rules"][0]["verbs"]), ["get"]);
        assert_eq!(strings(&r["rules"][0]["resourceNames"]), ["slack-webhook", "remote-kubeconfig"]);
    }
    assert!(!grants(&of_kind(&all, "ClusterRole")).iter().any(|g| g.1 == "secrets"));

    let none = docs(&render("mc", "ops", &["--set", "rbac.create=false"]));
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(of_kind(&none, kind).is_empty(), "rbac.create=false renders no {kind}");
    }
}

/// A rule item of an RBAC object (`- apiGroups:`), preceded by a `# ` comment saying why.
fn assert_rules_commented(source: &str, text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("- apiGroups:") {
            rules += 1;
            let prev = if i > 0 { lines[i - 1].trim_start() } else { "" };
            assert!(
                prev.starts_with("# ") && prev.len() > 12,
                "{source}:{}: the rule `{}` is not preceded by a `# ` comment saying why it is needed",
                i + 1,
                line.trim()
            );
        }
    }
    rules
}

#[test]
fn every_rbac_rule_is_commented() {
    let mut rules = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(repo().join(CHART).join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("rbac.authorization.k8s.io") || text.contains("rules:") {
            files += 1;
            rules += assert_rules_commented(&path.display().to_string(), &text);
        }
    }
    assert!(files >= 4 && rules >= 10, "found {rules} rules in {files} templates");
    // The comments survive rendering, so they are in deploy/ too.
    let set = "rbac.checkNamespaces={a},rbac.secretNames={s},tenancy.operatorIdentityNamespaces={a}";
    let rendered = render("mc", "ops", &["--set", set]);
    assert!(assert_rules_commented("render", &rendered) >= 9);
    assert!(assert_rules_commented("deploy/morningcheck.yaml", &read("deploy/morningcheck.yaml")) >= 9);
}

// ---------------------------------------------------------------------------------------
// Values and the schema

/// The values that are Kubernetes objects (or lists of them): the schema lists their
/// fields, and refuses others, so that a misspelt field is an error rather than a field the
/// apiserver drops. Path in values.schema.json (`[]` for the items of a list), and the
/// OpenAPI schema of the object: the same fields, as the test apiserver serves them.
const KUBERNETES_VALUES: &[(&str, &str, &str)] = &[
    ("podSecurityContext", "", "io.k8s.api.core.v1.PodSecurityContext"),
    ("podSecurityContext.seccompProfile", "", "io.k8s.api.core.v1.SeccompProfile"),
    ("securityContext", "", "io.k8s.api.core.v1.SecurityContext"),
    ("securityContext.capabilities", "", "io.k8s.api.core.v1.Capabilities"),
    ("securityContext.seccompProfile", "", "io.k8s.api.core.v1.SeccompProfile"),
    ("resources", "", "io.k8s.api.core.v1.ResourceRequirements"),
    ("affinity", "", "io.k8s.api.core.v1.Affinity"),
    ("imagePullSecrets[]", "", "io.k8s.api.core.v1.LocalObjectReference"),
    ("controller.extraEnv[]", "", "io.k8s.api.core.v1.EnvVar"),
    ("cronjob.extraEnv[]", "", "io.k8s.api.core.v1.EnvVar"),
    ("tolerations[]", "", "io.k8s.api.core.v1.Toleration"),
    ("topologySpreadConstraints[]", "", "io.k8s.api.core.v1.TopologySpreadConstraint"),
    ("networkPolicy.metricsFrom[]", "networking.k8s.io", "io.k8s.api.networking.v1.NetworkPolicyPeer"),
    ("networkPolicy.extraEgress[]", "networking.k8s.io", "io.k8s.api.networking.v1.NetworkPolicyEgressRule"),
];

/// The node of values.schema.json at a dotted path, `[]` stepping into a list's items.
fn schema_node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut node = schema;
    for part in path.split('.') {
        let (key, items) = part.strip_suffix("[]").map_or((part, false), |k| (k, true));
        node = &node["properties"][key];
        if items {
            node = &node["items"];
        }
    }
    assert!(node.is_object(), "values.schema.json has no {path}");
    node
}

fn property_names(node: &Value) -> BTreeSet<String> {
    node["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = schema;
    for p in path {
        node = node.get("properties")?.get(p)?;
    }
    Some(node)
}

#[test]
fn every_value_is_documented() {
    let schema: Value = serde_json::from_str(&read("charts/morningcheck/values.schema.json")).unwrap();
    let text = read("charts/morningcheck/values.yaml");
    // The fields of a Kubernetes object, and of the MorningCheck in cronjob.check, are
    // documented by the API; the value itself is documented here.
    let mut api_objects: Vec<&str> = KUBERNETES_VALUES.iter().map(|(p, _, _)| *p).collect();
    api_objects.push("cronjob.check");
    let mut stack: Vec<(usize, String)> = vec![];
    let mut commented = false;
    let mut checked = 0;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') {
            commented = true;
            continue;
        }
        let indent = line.len() - trimmed.len();
        let key = trimmed.split(':').next().unwrap();
        let is_key = !trimmed.starts_with('-')
            && trimmed.contains(':')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/' || c == '-');
        if is_key {
            stack.retain(|(i, _)| *i < indent);
            let parent: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
            stack.push((indent, key.to_string()));
            // Keys inside a free-form value or an API object given as a default are the
            // value's content, documented by the comment on the value itself.
            let in_api_object = api_objects.iter().any(|o| parent.join(".").starts_with(o));
            let structured_parent =
                !in_api_object && schema_at(&schema, &parent).is_some_and(|s| s.get("properties").is_some());
            if structured_parent {
                let path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
                let node = schema_at(&schema, &path).unwrap_or_else(|| {
                    panic!("values.yaml:{}: {} is not in values.schema.json", n + 1, path.join("."))
                });
                assert!(node["description"].is_string(), "values.schema.json: {} has no description", path.join("."));
                let own_fields = node.get("properties").is_some() && !api_objects.contains(&path.join(".").as_str());
                if !own_fields {
                    assert!(commented, "values.yaml:{}: `{}` has no comment", n + 1, path.join("."));
                    checked += 1;
                }
            }
        }
        commented = false;
    }
    assert!(checked >= 50, "only {checked} values checked");
}

/// Every object of the chart's own values, and every Kubernetes object value, refuses
/// fields it does not know: helm stops a typo before anything reaches the cluster.
#[test]
fn the_schema_closes_every_object() {
    let schema: Value = serde_json::from_str(&read("charts/morningcheck/values.schema.json")).unwrap();
    fn walk(node: &Value, path: &str, open: &mut Vec<String>) {
        if node["type"] == "object" && node.get("properties").is_some() && node["additionalProperties"] != false {
            open.push(path.to_string());
        }
        for (k, v) in node["properties"].as_object().into_iter().flatten() {
            walk(v, &format!("{path}.{k}"), open);
        }
        if node["items"].is_object() {
            walk(&node["items"], &format!("{path}[]"), open);
        }
    }
    let mut open = vec![];
    walk(&schema, "", &mut open);
    assert!(open.is_empty(), "objects that take any field: {open:?}");
    for (path, _, _) in KUBERNETES_VALUES {
        assert_eq!(schema_node(&schema, path)["additionalProperties"], false, "{path}");
    }
    // cronjob.check takes the MorningCheck spec's fields, as the chart's CRD lists them.
    let crd: Value = serde_saphyr::from_str(&read("charts/morningcheck/crds/morningcheck.yaml")).unwrap();
    let versions = crd["spec"]["versions"].as_array().unwrap();
    let served = versions.iter().find(|v| v["storage"] == true).expect("a storage version");
    let spec = &served["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(property_names(schema_node(&schema, "cronjob.check")), property_names(spec));
}

/// Values helm refuses, through values.schema.json, with what it says; `helm template`,
/// `helm install` and `helm upgrade` all check them (the last two on the test apiserver,
/// below).
const REFUSED: &[(&str, &str)] = &[
    ("replicaCount=two", "replicaCount"),
    ("controller.logFormat=xml", "logFormat"),
    ("replicaz=2", "replicaz"),
    ("tenancy.operatorIdentityNamespaces={Not_A_Namespace}", "operatorIdentityNamespaces"),
    ("rbac.checkNamespaces=kube-system", "checkNamespaces"),
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("controller.metricsPort=80", "metricsPort"),
    ("podDisruptionBudget.minAvailable=0", "minAvailable"),
    // Misspelt fields of Kubernetes objects, which the apiserver would drop with a warning.
    ("securityContext.readOnlyRootFileSystem=true", "readOnlyRootFileSystem"),
    ("podSecurityContext.runAsNonroot=true", "runAsNonroot"),
    ("securityContext.capabilities.dropp={ALL}", "dropp"),
    ("resources.limit.memory=1Gi", "limit"),
    ("tolerations[0].efect=NoSchedule", "efect"),
    ("controller.extraEnv[0].name=A,controller.extraEnv[0].valu=b", "valu"),
    ("networkPolicy.metricsFrom[0].podselector.matchLabels.a=b", "podselector"),
    ("cronjob.check.schedul=@daily", "schedul"),
];

#[test]
fn the_schema_rejects_bad_values() {
    for (set, field) in REFUSED {
        let err = try_render("mc", "ops", &["--set", set]).expect_err(set);
        assert!(err.contains("values don't meet the specifications") && err.contains(field), "--set {set}:\n{err}");
    }
    // A values file is checked the same way, and a good one passes.
    let dir = tempfile::tempdir().unwrap();
    let good = write_values(
        dir.path(),
        "good.yaml",
        "replicaCount: 3\nrbac:\n  checkNamespaces: [prod]\ncontroller:\n  logFormat: plain\n",
    );
    let all = docs(&render("mc", "ops", &["-f", &good]));
    assert_eq!(one(&all, "Deployment")["spec"]["replicas"], 3);
    let bad = write_values(dir.path(), "bad.yaml", "serviceAccount:\n  anotations: {}\n");
    let err = try_render("mc", "ops", &["-f", &bad]).unwrap_err();
    assert!(err.contains("values don't meet the specifications") && err.contains("anotations"), "{err}");
}

#[test]
fn notes_tell_the_next_steps() {
    let text = notes("morningcheck", "ops", &[]);
    assert!(text.contains("kubectl get mc"), "{text}");
    assert!(text.contains("examples/morningcheck.yaml"), "{text}");
    assert!(text.contains("rollout status deployment/morningcheck"), "{text}");
    let text = notes("morningcheck", "ops", &["--set", "rbac.checkNamespaces={a,b}"]);
    assert!(text.contains("only in: a, b"), "{text}");
    let text = notes("mc", "ops", &["--set", "cronjob.enabled=true,controller.enabled=false"]);
    assert!(text.contains("create job --from=cronjob/mc-morningcheck-run"), "{text}");
    assert!(!text.contains("rollout status"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Monitoring and network policy

#[test]
fn monitoring_needs_the_prometheus_operator_api() {
    for set in ["serviceMonitor.enabled=true", "prometheusRule.enabled=true"] {
        let err = try_render("mc", "ops", &["--set", set]).expect_err(set);
        assert!(err.contains("monitoring.coreos.com/v1"), "{err}");
    }
    let all = docs(&render(
        "mc",
        "ops",
        &[
            "--api-versions",
            "monitoring.coreos.com/v1",
            "--set",
            "serviceMonitor.enabled=true,prometheusRule.enabled=true,serviceMonitor.labels.release=kps",
        ],
    ));
    let sm = one(&all, "ServiceMonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "kps");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["honorLabels"], true, "keeps the MorningCheck's namespace label");
    assert_eq!(sm["spec"]["selector"]["matchLabels"], one(&all, "Service")["spec"]["selector"]);
    let rules = one(&all, "PrometheusRule");
    let alerts: Vec<_> = rules["spec"]["groups"][0]["rules"].as_array().unwrap().iter().map(|r| &r["alert"]).collect();
    assert_eq!(alerts, ["MorningCheckNoSuccessfulRun", "MorningCheckSlackDeliveryFailing"]);
}

/// The alerts, unit-tested with promtool: they fire when they should and not otherwise.
#[test]
fn alerts_fire_when_they_should() {
    let all = docs(&render(
        "mc",
        "ops",
        &["--api-versions", "monitoring.coreos.com/v1", "--set", "prometheusRule.enabled=true"],
    ));
    let dir = tempfile::tempdir().unwrap();
    let rules = serde_json::to_string_pretty(&one(&all, "PrometheusRule")["spec"]).unwrap();
    std::fs::write(dir.path().join("rules.json"), rules).unwrap();
    let no_run = "No successful morning check for 25 hours.";
    let slack = "A morning check digest was not delivered to Slack.";
    let slack_desc = "1 Slack digest(s) failed or ended in an unknown state in the last 25h. The outcome is in each \
                      MorningCheck's status.notification; check the webhook Secret and egress to Slack.";
    let tests = json!({
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [
            {
                // A check succeeded at 0s, then failed every run. Its pod went away after 2h
                // (a restart); the new leader derives the same value from the status. The alert
                // fires after 25h and names the MorningCheck. A second check, failing as long,
                // is deleted at 30h: its series goes, and its alert resolves.
                "interval": "1m",
                "input_series": [
                    {"series": "morningcheck_last_successful_run_timestamp_seconds{namespace=\"team-a\",name=\"daily\",pod=\"a\"}",
                     "values": "0x120"},
                    {"series": "morningcheck_last_successful_run_timestamp_seconds{namespace=\"team-a\",name=\"daily\",pod=\"b\"}",
                     "values": "_x121 0x1800"},
                    {"series": "morningcheck_last_successful_run_timestamp_seconds{namespace=\"team-c\",name=\"gone\",pod=\"a\"}",
                     "values": "0x1800"},
                    {"series": "morningcheck_last_successful_run_timestamp_seconds{namespace=\"team-b\",name=\"fine\",pod=\"b\"}",
                     "values": "0+60x1920"},
                ],
                "alert_rule_test": [
                    {"eval_time": "24h", "alertname": "MorningCheckNoSuccessfulRun", "exp_alerts": []},
                    {"eval_time": "26h", "alertname": "MorningCheckNoSuccessfulRun", "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning", "namespace": "team-a", "name": "daily"},
                            "exp_annotations": {
                                "summary": no_run,
                                "description": "MorningCheck team-a/daily last completed a run with every target checked \
                                                1d 2h 0m 0s ago. See kubectl describe mc -n team-a daily.",
                            },
                        },
                        {
                            "exp_labels": {"severity": "warning", "namespace": "team-c", "name": "gone"},
                            "exp_annotations": {
                                "summary": no_run,
                                "description": "MorningCheck team-c/gone last completed a run with every target checked \
                                                1d 2h 0m 0s ago. See kubectl describe mc -n team-c gone.",
                            },
                        },
                    ]},
                    {"eval_time": "31h", "alertname": "MorningCheckNoSuccessfulRun", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "namespace": "team-a", "name": "daily"},
                        "exp_annotations": {
                            "summary": no_run,
                            "description": "MorningCheck team-a/daily last completed a run with every target checked \
                                            1d 7h 0m 0s ago. See kubectl describe mc -n team-a daily.",
                        },
                    }]},
                ],
            },
            {
                // Deliveries succeed; one fails at 1h, counted by a series born at 1 (which
                // increase() alone would miss). The alert holds for the window, then clears.
                "interval": "1m",
                "input_series": [
                    {"series": "morningcheck_slack_deliveries_total{outcome=\"Delivered\",pod=\"a\"}", "values": "1+1x1800"},
                    {"series": "morningcheck_slack_deliveries_total{outcome=\"Failed\",pod=\"a\"}", "values": "_x60 1x1800"},
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "MorningCheckSlackDeliveryFailing", "exp_alerts": []},
                    {"eval_time": "2h", "alertname": "MorningCheckSlackDeliveryFailing", "exp_alerts": [{
                        "exp_labels": {"severity": "warning"},
                        "exp_annotations": {"summary": slack, "description": slack_desc},
                    }]},
                    {"eval_time": "27h", "alertname": "MorningCheckSlackDeliveryFailing", "exp_alerts": []},
                ],
            },
            {
                // An Unknown outcome (timed out after sending) after a restart counts too.
                "interval": "1m",
                "input_series": [
                    {"series": "morningcheck_slack_deliveries_total{outcome=\"Unknown\",pod=\"b\"}", "values": "0x60 1x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "2h", "alertname": "MorningCheckSlackDeliveryFailing", "exp_alerts": [{
                        "exp_labels": {"severity": "warning"},
                        "exp_annotations": {"summary": slack, "description": slack_desc},
                    }]},
                ],
            },
        ],
    });
    std::fs::write(dir.path().join("tests.json"), serde_json::to_string_pretty(&tests).unwrap()).unwrap();
    let check = Command::new("promtool").args(["check", "rules", "rules.json"]).current_dir(dir.path()).output();
    let check = check.expect("promtool (Debian's prometheus package, installed by tests/env/install.sh)");
    assert!(check.status.success(), "promtool check rules:\n{}", text(&check));
    let out = Command::new("promtool").args(["test", "rules", "tests.json"]).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "promtool test rules:\n{}", text(&out));
}

#[test]
fn network_policy_opens_only_the_metrics_port() {
    let all = docs(&render("mc", "ops", &["--set", "networkPolicy.enabled=true"]));
    let np = one(&all, "NetworkPolicy");
    assert_eq!(strings(&np["spec"]["policyTypes"]), ["Ingress"]);
    assert_eq!(np["spec"]["ingress"], json!([{"ports": [{"port": "metrics", "protocol": "TCP"}]}]));
    assert!(
        selects(&np["spec"]["podSelector"], &one(&all, "Deployment")["spec"]["template"]["metadata"]["labels"]),
        "the NetworkPolicy covers the operator's pods"
    );

    let all = docs(&render(
        "mc",
        "ops",
        &[
            "--set",
            "networkPolicy.enabled=true,networkPolicy.restrictEgress=true",
            "--set",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
        ],
    ));
    let np = one(&all, "NetworkPolicy");
    assert_eq!(strings(&np["spec"]["policyTypes"]), ["Ingress", "Egress"]);
    assert_eq!(np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["name"], "monitoring");
    let ports: BTreeSet<String> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ports"].as_array().unwrap().iter())
        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap()))
        .collect();
    let want: BTreeSet<String> = ["53/UDP", "53/TCP", "443/TCP", "6443/TCP"].iter().map(|s| s.to_string()).collect();
    assert_eq!(ports, want);
}

// ---------------------------------------------------------------------------------------
// The CronJob (`morningcheck run` on a schedule)

/// The CronJob's ConfigMap (the one with `check.yaml`; the operator has its own config).
fn run_configmap(all: &[Value]) -> &Value {
    let found: Vec<_> = of_kind(all, "ConfigMap").into_iter().filter(|c| c["data"]["check.yaml"].is_string()).collect();
    assert_eq!(found.len(), 1, "one ConfigMap with check.yaml");
    found[0]
}

/// The CronJob ConfigMap's keys, parsed: the MorningCheck and the kubeconfig.
fn run_config(all: &[Value]) -> (morningcheck::api::MorningCheck, kube::config::Kubeconfig) {
    let cm = run_configmap(all);
    let docs = morningcheck::cli::input::parse("check.yaml", cm["data"]["check.yaml"].as_str().expect("check.yaml"))
        .unwrap_or_else(|e| panic!("the ConfigMap's check.yaml: {e:?}"));
    assert_eq!(docs.len(), 1);
    let kc = kube::config::Kubeconfig::from_yaml(cm["data"]["kubeconfig"].as_str().expect("kubeconfig")).unwrap();
    (docs.into_iter().next().unwrap().check, kc)
}

fn kinds(all: &[Value]) -> BTreeSet<String> {
    all.iter().filter_map(|d| d["kind"].as_str()).map(str::to_string).collect()
}

/// The CronJob's restricted security context is the Deployment's, the command line is
/// `morningcheck run -f /config/check.yaml --fail-on critical` against the ConfigMap, and
/// the ConfigMap holds a MorningCheck the binary's own parser accepts and an in-cluster
/// kubeconfig.
#[test]
fn cronjob_renders_hardened_with_the_run_command() {
    let operator = docs(&render("morningcheck", "ops", &[]));
    let deployment_pod = &one(&operator, "Deployment")["spec"]["template"]["spec"];
    let all = docs(&render("morningcheck", "ops", &["--set", "cronjob.enabled=true"]));
    assert_eq!(of_kind(&all, "Deployment").len(), 1, "in addition to the operator by default");
    let cj = one(&all, "CronJob");
    assert_eq!(cj["apiVersion"], "batch/v1");
    assert_eq!(
        (cj["metadata"]["name"].as_str(), cj["metadata"]["namespace"].as_str()),
        (Some("morningcheck-run"), Some("ops"))
    );
    let s = &cj["spec"];
    assert_eq!(s["schedule"], "0 7 * * 1-5");
    assert!(s["timeZone"].is_null(), "no timeZone unless asked (Kubernetes 1.27+)");
    assert_eq!(s["concurrencyPolicy"], "Forbid");
    assert_eq!(s["startingDeadlineSeconds"], 600);
    assert_eq!((s["successfulJobsHistoryLimit"].as_u64(), s["failedJobsHistoryLimit"].as_u64()), (Some(3), Some(3)));
    let job = &s["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0, "a retry would post a second digest");
    assert_eq!(job["activeDeadlineSeconds"], 900);
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "morningcheck");
    assert_eq!(job["template"]["metadata"]["labels"]["app.kubernetes.io/component"], "run");

    // Restricted: exactly the Deployment's pod and container security contexts.
    assert_eq!(pod["securityContext"], deployment_pod["securityContext"]);
    let psc = &pod["securityContext"];
    assert_eq!((psc["runAsNonRoot"].as_bool(), psc["runAsUser"].as_u64()), (Some(true), Some(65532)));
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["securityContext"], deployment_pod["containers"][0]["securityContext"]);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["image"], deployment_pod["containers"][0]["image"]);
    assert_eq!(c["resources"], deployment_pod["containers"][0]["resources"]);

    // The command line, and the files it names are the ConfigMap's keys.
    assert_eq!(strings(&c["command"]), ["/usr/local/bin/morningcheck"], "not the image's `controller` entrypoint");
    assert_eq!(strings(&c["args"]), ["run", "-f", "/config/check.yaml", "--fail-on", "critical"]);
    assert_eq!(env_value(c, "KUBECONFIG").unwrap()["value"], "/config/kubeconfig");
    let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["mountPath"] == "/config").unwrap();
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert_eq!(volume["configMap"]["name"], run_configmap(&all)["metadata"]["name"]);
    assert!(c["volumeMounts"].as_array().unwrap().iter().any(|m| m["mountPath"] == "/tmp"));

    let (check, kc) = run_config(&all);
    assert_eq!(check.metadata.name.as_deref(), Some("morningcheck"));
    assert_eq!(check.metadata.namespace.as_deref(), Some("ops"), "Secrets are read in the release namespace");
    assert_eq!(check.spec.schedule, "0 7 * * 1-5", "spec.schedule defaults to cronjob.schedule");
    assert_eq!(check.spec.timeout_seconds, 300);
    assert_eq!(check.spec.targets.kubernetes[0].namespaces.exclude, ["kube-system"]);
    morningcheck::validate::validate(&check.spec, "ops").unwrap_or_else(|e| panic!("{:?}", e.problems));
    assert_eq!(kc.current_context.as_deref(), Some("in-cluster"));
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some("https://kubernetes.default.svc"));
    assert_eq!(cluster.certificate_authority.as_deref(), Some("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"));
    let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
    assert_eq!(user.token_file.as_deref(), Some("/var/run/secrets/kubernetes.io/serviceaccount/token"));
    assert!(user.token.is_none() && user.exec.is_none());

    // Values reach it.
    let all = docs(&render(
        "mc",
        "ops",
        &[
            "--set",
            "cronjob.enabled=true,cronjob.timeZone=Europe/Berlin,cronjob.failOn=warning,cronjob.extraArgs={-o,json}",
            "--set",
            "cronjob.check.schedule=@daily,cronjob.extraEnv[0].name=AWS_REGION,cronjob.extraEnv[0].value=eu-west-1",
        ],
    ));
    let cj = one(&all, "CronJob");
    assert_eq!(cj["spec"]["timeZone"], "Europe/Berlin");
    let c = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(strings(&c["args"]), ["run", "-f", "/config/check.yaml", "--fail-on", "warning", "-o", "json"]);
    assert_eq!(env_value(c, "AWS_REGION").unwrap()["value"], "eu-west-1");
    assert_eq!(run_config(&all).0.spec.schedule, "@daily", "a schedule in the check is kept");
    let all = docs(&render("mc", "ops", &["--set", "cronjob.enabled=true", "--set-string", "cronjob.failOn="]));
    let c = &one(&all, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(strings(&c["args"]), ["run", "-f", "/config/check.yaml"], "no --fail-on: only failed targets fail");

    let err = try_render("mc", "ops", &["--set", "cronjob.failOn=sometimes"]).unwrap_err();
    assert!(err.contains("/cronjob/failOn': value must be one of"), "{err}");
    let err = try_render("mc", "ops", &["--set", "cronjob.schedul=x"]).unwrap_err();
    assert!(err.contains("additional properties 'schedul' not allowed"), "{err}");
}

/// With `controller.enabled=false` the release is the CronJob alone: no Deployment,
/// Service, Lease or controller rights, only what `morningcheck run` reads.
#[test]
fn cronjob_instead_of_the_operator_renders_only_what_it_needs() {
    let all = docs(&render("mc", "ops", &["--set", "cronjob.enabled=true,controller.enabled=false,replicaCount=3"]));
    let want: BTreeSet<String> =
        ["ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "CronJob"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert_eq!(kinds(&all), want);
    assert_eq!(grants(&of_kind(&all, "ClusterRole")), check_grants(), "the checks' reads and nothing else");
    let roles = of_kind(&all, "Role");
    assert_eq!(roles.len(), 1, "no Lease Role without the operator");
    assert_eq!(grants(&roles), [grant("", "secrets", "get")].into_iter().collect());
    assert_eq!(roles[0]["metadata"]["namespace"], "ops");
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for b in of_kind(&all, kind) {
            assert_eq!(
                b["subjects"],
                json!([{"kind": "ServiceAccount", "name": "mc-morningcheck", "namespace": "ops"}])
            );
        }
    }
    let pod = &one(&all, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], one(&all, "ServiceAccount")["metadata"]["name"]);

    let err = try_render("mc", "ops", &["--set", "controller.enabled=false"]).unwrap_err();
    assert!(err.contains("nothing to run"), "{err}");
    let err = try_render(
        "mc",
        "ops",
        &[
            "-a",
            "monitoring.coreos.com/v1",
            "--set",
            "controller.enabled=false,cronjob.enabled=true,serviceMonitor.enabled=true",
        ],
    )
    .unwrap_err();
    assert!(err.contains("serviceMonitor.enabled needs controller.enabled"), "{err}");
}

/// deploy/cronjob.yaml, rendered by helm (the drift test above) from
/// tools/deploy-cronjob.values.yaml: the CronJob alone, its restricted pod, a check that
/// validates and names the one Secret its Role lets it read, every rule commented.
#[test]
fn deploy_cronjob_is_the_cronjob_alone() {
    let text = read("deploy/cronjob.yaml");
    let standalone = docs(&text);
    let want: BTreeSet<String> = [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "CronJob",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(kinds(&standalone), want);
    assert_eq!(standalone[0]["kind"], "Namespace", "the Namespace first");
    assert_eq!(standalone[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    for d in &standalone[1..] {
        let ns = &d["metadata"]["namespace"];
        assert!(ns.is_null() || ns == "morningcheck", "{} in namespace {ns}", d["kind"]);
    }
    let cj = one(&standalone, "CronJob");
    assert_eq!(cj["metadata"]["name"], "morningcheck-cron-run");
    assert!(text.contains("create job --from=cronjob/morningcheck-cron-run"), "the header names the CronJob");
    let sa = one(&standalone, "ServiceAccount");
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&pod["containers"][0]["args"]), ["run", "-f", "/config/check.yaml", "--fail-on", "critical"]);

    // The checks' reads, and the named Secret, bound to its own ServiceAccount.
    assert_eq!(grants(&of_kind(&standalone, "ClusterRole")), check_grants());
    let named: Grant = ("".into(), "secrets".into(), "get".into(), vec!["slack-webhook".into()]);
    assert_eq!(grants(&of_kind(&standalone, "Role")), [named].into_iter().collect());
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        let b = one(&standalone, kind);
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "morningcheck"}])
        );
        assert_eq!(b["roleRef"]["name"], one(&standalone, kind.trim_end_matches("Binding"))["metadata"]["name"]);
    }
    assert_eq!(assert_rules_commented("deploy/cronjob.yaml", &text), 4);

    // Its MorningCheck is valid, and names the Secret the Role lets it read.
    let (check, _) = run_config(&standalone);
    let ns = check.metadata.namespace.clone().unwrap();
    assert_eq!(ns, "morningcheck");
    morningcheck::validate::validate(&check.spec, &ns).unwrap_or_else(|e| panic!("{:?}", e.problems));
    assert_eq!(check.spec.slack.as_ref().unwrap().webhook_secret_ref.as_ref().unwrap().name, "slack-webhook");
    assert_eq!(check.spec.targets.prometheus.len(), 1);
}

// ---------------------------------------------------------------------------------------
// On the test apiserver

/// `helm install` with the defaults on the RBAC-enforcing apiserver: the objects exist as
/// helm created them, and the ServiceAccount's effective rights are exactly what the
/// operator needs.
#[tokio::test]
async fn the_chart_installs_on_the_test_apiserver() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chart").await;
    let other = TestNamespace::new(&client, "chart-other").await;
    let release = ns.name.clone();
    let (_release, _) = Release::install(&release, &ns.name, &[]).unwrap_or_else(|e| panic!("helm install:\n{e}"));

    let fullname = format!("{release}-morningcheck");
    let deploy: Deployment = Api::namespaced(client.clone(), &ns.name).get(&fullname).await.expect("Deployment");
    let pod = deploy.spec.unwrap().template.spec.unwrap();
    let sc = pod.containers[0].security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_user, Some(65532));
    assert_eq!(pod.service_account_name.as_deref(), Some(fullname.as_str()));
    Api::<ServiceAccount>::namespaced(client.clone(), &ns.name).get(&fullname).await.expect("ServiceAccount");
    Api::<Service>::namespaced(client.clone(), &ns.name).get(&format!("{fullname}-metrics")).await.expect("Service");
    let name = format!("{fullname}-controller");
    Api::<ClusterRole>::all(client.clone()).get(&name).await.expect("ClusterRole");
    Api::<ClusterRoleBinding>::all(client.clone()).get(&name).await.expect("ClusterRoleBinding");
    for suffix in ["checker", "checker-base", "node-reader", "metrics-reader"] {
        let name = format!("{fullname}-{suffix}");
        Api::<ClusterRole>::all(client.clone()).get(&name).await.expect("ClusterRole for admins to bind");
    }
    // The aggregation controller fills the checker from its base.
    let checker = format!("{fullname}-checker");
    let filled = eventually(30, "the aggregated checker ClusterRole", || {
        let (client, checker) = (client.clone(), checker.clone());
        async move {
            let role = Api::<ClusterRole>::all(client).get(&checker).await.ok()?;
            role.rules.filter(|r| !r.is_empty())
        }
    })
    .await;
    assert!(filled.iter().any(|r| r.resources.as_ref().is_some_and(|r| r.contains(&"pods".to_string()))));
    for suffix in ["leader-election", "known-findings"] {
        let name = format!("{fullname}-{suffix}");
        Api::<Role>::namespaced(client.clone(), &ns.name).get(&name).await.expect("Role");
        Api::<RoleBinding>::namespaced(client.clone(), &ns.name).get(&name).await.expect("RoleBinding");
    }

    let sa = format!("system:serviceaccount:{}:{fullname}", ns.name);
    let (n, o) = (ns.name.as_str(), other.name.as_str());
    let lease = format!("{fullname}-leader");
    let mc = "morningcheck.io";
    // Nothing a MorningCheck author could borrow: the checks run as each namespace's own
    // ServiceAccount, which the operator impersonates.
    let unborrowable: Vec<_> = CHECK_READS.iter().map(|&(v, g, r, ns, name, _)| (v, g, r, ns, name, false)).collect();
    #[rustfmt::skip]
    let table = [unborrowable.as_slice(), &[
        ("impersonate", "", "serviceaccounts", o, "morningcheck", true),
        ("create", "authentication.k8s.io", "tokenreviews", "", "", true),
        ("create", "authorization.k8s.io", "subjectaccessreviews", "", "", true),
        ("list", "", "pods", o, "", false),
        ("watch", "", "pods", "", "", false),
        ("get", "", "pods", o, "p", false),
        ("delete", "", "pods", o, "p", false),
        ("create", "", "pods/exec", o, "p", false),
        ("list", "", "configmaps", "", "", false),
        // ConfigMaps: the known findings, in the release namespace only.
        ("get", "", "configmaps", n, "morningcheck-known-x", true),
        ("update", "", "configmaps", n, "morningcheck-known-x", true),
        ("create", "", "configmaps", n, "", true),
        ("get", "", "configmaps", o, "x", false),
        ("update", "", "configmaps", o, "x", false),
        ("create", "", "configmaps", o, "", false),
        ("list", "batch", "jobs", "", "", false),
        // MorningChecks: read, and write the status only.
        ("list", mc, "morningchecks", "", "", true),
        ("watch", mc, "morningchecks", "", "", true),
        ("get", mc, "morningchecks", o, "x", true),
        ("patch", mc, "morningchecks/status", o, "x", true),
        ("update", mc, "morningchecks/status", o, "x", false),
        ("patch", mc, "morningchecks", o, "x", false),
        ("update", mc, "morningchecks", o, "x", false),
        ("delete", mc, "morningchecks", o, "x", false),
        ("create", mc, "morningchecks", o, "", false),
        // Events, published where the MorningCheck lives.
        ("create", "events.k8s.io", "events", o, "", true),
        ("patch", "events.k8s.io", "events", o, "e", true),
        ("delete", "events.k8s.io", "events", o, "e", false),
        ("create", "", "events", o, "", false),
        // Secrets: none; a namespace's Secrets are read as its own ServiceAccount.
        ("get", "", "secrets", n, "slack-webhook", false),
        ("get", "", "secrets", o, "slack-webhook", false),
        ("get", "", "secrets", "", "", false),
        ("list", "", "secrets", n, "", false),
        ("watch", "", "secrets", n, "", false),
        ("list", "", "secrets", "", "", false),
        // The Lease: its own, in the release namespace.
        ("get", "coordination.k8s.io", "leases", n, lease.as_str(), true),
        ("update", "coordination.k8s.io", "leases", n, lease.as_str(), true),
        ("create", "coordination.k8s.io", "leases", n, "", true),
        ("update", "coordination.k8s.io", "leases", n, "someone-elses", false),
        ("get", "coordination.k8s.io", "leases", n, "someone-elses", false),
        ("delete", "coordination.k8s.io", "leases", n, lease.as_str(), false),
        ("create", "coordination.k8s.io", "leases", o, "", false),
        ("update", "coordination.k8s.io", "leases", o, lease.as_str(), false),
        // Nothing that escalates.
        ("create", "rbac.authorization.k8s.io", "rolebindings", n, "", false),
        ("create", "", "serviceaccounts/token", n, fullname.as_str(), false),
        ("impersonate", "", "users", "", "admin", false),
        ("impersonate", "", "groups", "", "system:masters", false),
    ]].concat();
    assert_access(&client, &sa, |_| sa_groups(), &table).await;
}

/// With rbac.checkNamespaces and a namespace granted the operator's identity, the reads are confined to the
/// listed namespaces on the real apiserver.
#[tokio::test]
async fn namespaced_rbac_installs_and_confines_the_reads() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chartns").await;
    let team = TestNamespace::new(&client, "chartns-team").await;
    let other = TestNamespace::new(&client, "chartns-other").await;
    let release = ns.name.clone();
    let set = format!(
        "rbac.checkNamespaces={{{t}}},tenancy.operatorIdentityNamespaces={{{t}}},rbac.secretNames={{slack-webhook}},replicaCount=1",
        t = team.name
    );
    let (_release, _) =
        Release::install(&release, &ns.name, &["--set", &set]).unwrap_or_else(|e| panic!("helm install:\n{e}"));

    let fullname = format!("{release}-morningcheck");
    Api::<Role>::namespaced(client.clone(), &team.name).get(&format!("{fullname}-checks")).await.expect("Role");
    let sa = format!("system:serviceaccount:{}:{fullname}", ns.name);
    let (n, t, o) = (ns.name.as_str(), team.name.as_str(), other.name.as_str());
    #[rustfmt::skip]
    let table = [
        ("list", "", "pods", t, "", true),
        ("list", "", "events", t, "", true),
        ("list", "apps", "deployments", t, "", true),
        ("list", "apps", "statefulsets", t, "", true),
        ("list", "apps", "daemonsets", t, "", true),
        ("list", "", "nodes", "", "", true),
        ("list", "", "pods", "", "", false),
        ("list", "", "pods", o, "", false),
        ("list", "", "events", "", "", false),
        ("list", "apps", "deployments", "", "", false),
        ("list", "apps", "deployments", o, "", false),
        ("get", "", "secrets", t, "slack-webhook", true),
        ("get", "", "secrets", t, "other-secret", false),
        ("get", "", "secrets", n, "slack-webhook", false),
        ("get", "", "secrets", o, "slack-webhook", false),
        ("list", "", "secrets", t, "", false),
        // One replica, no leader election: no Lease rights at all.
        ("create", "coordination.k8s.io", "leases", n, "", false),
        ("list", "morningcheck.io", "morningchecks", "", "", true),
        ("patch", "morningcheck.io", "morningchecks/status", o, "x", true),
    ];
    assert_access(&client, &sa, |_| sa_groups(), &table).await;
}

/// A `morningcheck controller` process, killed when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary accepts the Deployment's args and environment exactly as rendered (the pod's
/// fields filled in as the downward API would), serves its probes' paths on the metrics
/// port, logs JSON, and takes the Lease the chart's Role names. It runs with the admin
/// kubeconfig, confined to a namespace of its own; the RBAC proof runs it in-cluster with
/// the ServiceAccount's token.
/// A binary-suffixed memory quantity (`256Mi`) in bytes.
fn quantity_bytes(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let unit = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => panic!("unexpected unit {other} in {q}"),
    };
    n.parse::<u64>().unwrap() * unit
}

#[tokio::test]
async fn the_binary_accepts_the_deployments_configuration() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chartrun").await;
    let all = docs(&render("morningcheck", &ns.name, &[]));
    let deploy = one(&all, "Deployment");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");

    let mut cmd = Command::new(common::binary());
    // The image's entrypoint is `morningcheck controller`; the Deployment adds its args.
    cmd.arg("controller").args(strings(&c["args"])).env_clear().env("KUBECONFIG", var("MC_KUBECONFIG"));
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            // The container's memory limit in bytes, as the kubelet gives it.
            None if e["valueFrom"]["resourceFieldRef"].is_object() => {
                let r = &e["valueFrom"]["resourceFieldRef"];
                assert_eq!((&r["resource"], &r["containerName"]), (&json!("limits.memory"), &c["name"]), "{e}");
                quantity_bytes(c["resources"]["limits"]["memory"].as_str().expect("a memory limit")).to_string()
            }
            Some("metadata.name") => "morningcheck-7d9f-abcde".to_string(),
            Some("metadata.namespace") => ns.name.clone(),
            Some(other) => panic!("unexpected fieldRef {other}"),
            None => e["value"].as_str().unwrap_or_else(|| panic!("{name} has no string value")).to_string(),
        };
        cmd.env(name, value);
    }
    // Only the listening address differs (another process may hold 8080 here), and the
    // watch stays in the test namespace so that no other test's MorningCheck is run.
    cmd.env("MORNINGCHECK_METRICS_ADDR", format!("127.0.0.1:{port}"));
    cmd.env("MORNINGCHECK_WATCH_NAMESPACE", &ns.name);
    // The config file where the pod mounts it from the release's ConfigMap: here, in dir.
    let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "config").expect("config mount");
    let file = format!("{}/config.yaml", mount["mountPath"].as_str().unwrap());
    assert_eq!(env_value(c, "MORNINGCHECK_CONFIG").unwrap()["value"], file.as_str());
    let config = of_kind(&all, "ConfigMap").into_iter().find(|m| m["data"]["config.yaml"].is_string()).unwrap();
    let local = dir.path().join("config.yaml");
    std::fs::write(&local, config["data"]["config.yaml"].as_str().unwrap()).unwrap();
    cmd.env("MORNINGCHECK_CONFIG", &local);
    let _process = Process(
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().expect("controller process"),
    );

    for probe in ["livenessProbe", "readinessProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().unwrap().to_string();
        assert_eq!(c[probe]["httpGet"]["port"], c["ports"][0]["name"], "{probe} on the metrics port");
        let url = format!("http://127.0.0.1:{port}{path}");
        common::eventually(30, &format!("{path} answers 200"), || {
            let url = url.clone();
            async move { reqwest::get(&url).await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        })
        .await;
    }
    let lease_name = env_value(c, "MORNINGCHECK_LEASE_NAME").unwrap()["value"].as_str().unwrap().to_string();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), &ns.name);
    let holder = common::eventually(30, "the Lease", || {
        let (leases, name) = (leases.clone(), lease_name.clone());
        async move { leases.get_opt(&name).await.ok()??.spec?.holder_identity }
    })
    .await;
    assert_eq!(holder, "morningcheck-7d9f-abcde", "POD_NAME is the identity in the Lease");

    let logs = std::fs::read_to_string(&log).unwrap();
    let first = logs.lines().next().unwrap_or_else(|| panic!("no log lines"));
    let line: Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {first}"));
    assert!(line["level"].is_string() && line["fields"].is_object(), "{first}");
}

/// `helm install` in CronJob mode: the CronJob and its ConfigMap as the apiserver stored
/// them, and a ServiceAccount that may read what the checks read and nothing the operator
/// alone needs.
#[tokio::test]
async fn the_cronjob_chart_installs_on_the_test_apiserver() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chartcron").await;
    let release = ns.name.clone();
    let (_release, out) =
        Release::install(&release, &ns.name, &["--set", "cronjob.enabled=true,controller.enabled=false"])
            .unwrap_or_else(|e| panic!("helm install:\n{e}"));
    assert!(out.contains("STATUS: deployed"), "{out}");
    let fullname = format!("{release}-morningcheck");

    // What the apiserver stored: the restricted pod of the Job template, and the ConfigMap.
    let cj = get_json(&ns.name, "cronjob", &format!("{fullname}-run"));
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&pod["containers"][0]["securityContext"]["capabilities"]["drop"]), ["ALL"]);
    assert!(Api::<Deployment>::namespaced(client.clone(), &ns.name).get_opt(&fullname).await.unwrap().is_none());

    // The MorningCheck the Jobs run is one the apiserver itself accepts (schema and CEL
    // rules: a server-side dry run, with the CRD installed).
    common::install_crd(&client).await;
    let cm = get_json(&ns.name, "configmap", &format!("{fullname}-run"));
    let dir = tempfile::tempdir().unwrap();
    let check = dir.path().join("check.yaml");
    std::fs::write(&check, cm["data"]["check.yaml"].as_str().unwrap()).unwrap();
    let out = kubectl(&["apply", "--dry-run=server", "-f", check.to_str().unwrap()]);
    assert!(out.status.success(), "the ConfigMap's check:\n{}", text(&out));
    assert!(
        text(&out).contains(&format!("morningcheck.morningcheck.io/{fullname} created (server dry run)")),
        "{}",
        text(&out)
    );

    let sa = format!("system:serviceaccount:{}:{fullname}", ns.name);
    let n = ns.name.as_str();
    #[rustfmt::skip]
    let table = [CHECK_READS.as_slice(), &[
        ("get", "", "secrets", n, "slack-webhook", true),
        ("list", "", "secrets", n, "", false),
        ("get", "", "configmaps", n, "x", false),
        // Nothing only the operator needs.
        ("list", "morningcheck.io", "morningchecks", "", "", false),
        ("patch", "morningcheck.io", "morningchecks/status", n, "x", false),
        ("create", "events.k8s.io", "events", n, "", false),
        ("create", "coordination.k8s.io", "leases", n, "", false),
        ("create", "batch", "jobs", n, "", false),
    ]].concat();
    assert_access(&client, &sa, |_| sa_groups(), &table).await;
}

/// The Kubernetes objects of values.schema.json list exactly the fields the test
/// apiserver's API has for them (a new field is added to the schema, a misspelt one never).
#[tokio::test]
async fn the_schemas_kubernetes_objects_have_the_apis_fields() {
    let client = admin().await;
    let schema: Value = serde_json::from_str(&read("charts/morningcheck/values.schema.json")).unwrap();
    let mut docs = BTreeMap::new();
    let mut wrong = vec![];
    for (path, group, name) in KUBERNETES_VALUES {
        let gv = if group.is_empty() { "api/v1".to_string() } else { format!("apis/{group}/v1") };
        if !docs.contains_key(&gv) {
            docs.insert(gv.clone(), common::chart::openapi_doc(&client, &gv).await);
        }
        let api = property_names(openapi_schema(&docs[&gv], name));
        let ours = property_names(schema_node(&schema, path));
        if api != ours {
            wrong.push(format!(
                "{path} ({name}): the API has {:?} that the schema lacks, the schema has {:?} that the API lacks",
                api.difference(&ours).collect::<Vec<_>>(),
                ours.difference(&api).collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "values.schema.json:\n  {}", wrong.join("\n  "));
}

/// Every render (defaults, every option, the CronJob alone, no RBAC; at the oldest and the
/// newest supported Kubernetes; with the CRD) and both files of deploy/ pass kubeconform in
/// strict mode against the JSON Schemas of the test apiserver's own /openapi/v3, with the
/// MorningCheck and monitoring CRDs: no unknown field, no wrong type, no missing required
/// field. The MorningCheck each CronJob runs is validated as a MorningCheck. Objects with a
/// misspelt field are refused, so the check has teeth.
#[tokio::test]
async fn kubeconform_accepts_every_render_against_the_servers_openapi() {
    let client = admin().await;
    let dir = tempfile::tempdir().unwrap();
    let values = write_values(dir.path(), "all.yaml", &every_option("ops", "team-a"));
    let (oldest, newest) = (versions()["K8S_OLDEST_SUPPORTED"].clone(), newest_supported());
    let mut files = vec![repo().join("deploy/morningcheck.yaml"), repo().join("deploy/cronjob.yaml")];
    let mut checks = 0;
    for kube in [&oldest, &newest] {
        for (name, args) in [
            ("defaults", vec![]),
            ("every-option", vec!["--values", values.as_str(), "--api-versions", "monitoring.coreos.com/v1"]),
            ("cronjob-only", vec!["--set", "cronjob.enabled=true,controller.enabled=false"]),
            (
                "no-rbac",
                vec!["--set", "rbac.create=false,serviceAccount.create=false,serviceAccount.name=mc,replicaCount=1"],
            ),
            ("node-selector", vec!["--set", "nodeSelector.kubernetes\\.io/os=linux,priorityClassName=critical"]),
        ] {
            let mut all = args.clone();
            all.extend(["--kube-version", kube.as_str(), "--include-crds"]);
            let rendered = render("mc", "ops", &all);
            let file = dir.path().join(format!("{name}-{kube}.yaml"));
            std::fs::write(&file, &rendered).unwrap();
            files.push(file);
            for cm in of_kind(&docs(&rendered), "ConfigMap").into_iter().filter(|c| c["data"]["check.yaml"].is_string())
            {
                let check = dir.path().join(format!("{name}-{kube}-check.yaml"));
                std::fs::write(&check, cm["data"]["check.yaml"].as_str().unwrap()).unwrap();
                files.push(check);
                checks += 1;
            }
        }
    }
    assert!(checks >= 4, "the CronJob's check is validated too");
    let paths: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    let out = kubeconform(&client, &paths).await;
    let report = text(&out);
    assert!(out.status.success(), "kubeconform:\n{report}");
    let summary = report.lines().find(|l| l.starts_with("Summary:")).unwrap_or_else(|| panic!("{report}"));
    assert!(summary.ends_with("Invalid: 0, Errors: 0, Skipped: 0"), "{summary}");
    let valid: usize = summary.split("Valid: ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(valid > 100, "{summary}");

    // A misspelt field in the Deployment, the ServiceMonitor and a MorningCheck; a wrong
    // type in the PodDisruptionBudget.
    let every = docs(&render("mc", "ops", &["--values", &values, "--api-versions", "monitoring.coreos.com/v1"]));
    let mut deployment = one(&every, "Deployment").clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = json!(true);
    let mut monitor = one(&every, "ServiceMonitor").clone();
    monitor["spec"]["endpoints"][0]["scrapeTimout"] = json!("10s");
    let mut pdb = one(&every, "PodDisruptionBudget").clone();
    pdb["spec"]["minAvailable"] = json!(true);
    let mut check: Value =
        serde_saphyr::from_str(run_configmap(&every)["data"]["check.yaml"].as_str().unwrap()).unwrap();
    check["spec"]["timeoutSecond"] = json!(300);
    for (what, object, complaint) in [
        ("Deployment", deployment, "readOnlyRootFileSystem"),
        ("ServiceMonitor", monitor, "scrapeTimout"),
        ("PodDisruptionBudget", pdb, "minAvailable"),
        ("MorningCheck", check, "timeoutSecond"),
    ] {
        let file = dir.path().join(format!("bad-{what}.json"));
        std::fs::write(&file, serde_json::to_string(&object).unwrap()).unwrap();
        let out = kubeconform(&client, &[&file]).await;
        assert!(!out.status.success(), "kubeconform accepts a bad {what}:\n{}", text(&out));
        assert!(text(&out).contains(complaint), "{what}:\n{}", text(&out));
    }
}

/// The tolerations a pod needs to be scheduled on the test cluster's nodes (kwok's fake
/// nodes may carry a taint).
async fn node_tolerations(client: &kube::Client) -> Vec<Value> {
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()).list(&Default::default()).await.unwrap();
    let mut taints = BTreeSet::new();
    for node in nodes.items {
        for t in node.spec.and_then(|s| s.taints).unwrap_or_default() {
            taints.insert((t.key, t.effect));
        }
    }
    taints.into_iter().map(|(key, effect)| json!({"key": key, "operator": "Exists", "effect": effect})).collect()
}

/// Pods in `ns` that `selector` (a LabelSelector or a Service's map) selects, by name.
async fn pods_selected(client: &kube::Client, ns: &str, selector: &Value) -> BTreeSet<String> {
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns);
    let list = pods.list(&Default::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|p| selects(selector, &json!(p.metadata.labels.clone().unwrap_or_default())))
        .map(|p| p.metadata.name.unwrap())
        .collect()
}

fn exists(kind: &str, ns: &str, name: &str) -> bool {
    let mut args = vec!["get", kind, name, "-o", "name"];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    let out = kubectl(&args);
    assert!(out.status.success() || text(&out).contains("NotFound"), "kubectl get {kind} {name}:\n{}", text(&out));
    out.status.success()
}

/// helm installs the chart with every optional template on the test apiserver, whose
/// controllers and kwok nodes really run it: the pods meet the restricted Pod Security
/// Standard (the namespace enforces it) and become available; the disruption controller
/// counts exactly the operator's two pods; a Job started from the CronJob runs beside them
/// and neither the Service's endpoints nor the budget take it in. `helm upgrade` to one
/// replica without the optional objects removes them (the garbage collector takes the
/// CronJob's Job); a misspelt value is refused and leaves the release as it was; `helm
/// uninstall` removes every object, the cluster-scoped ones and those in other namespaces
/// too, and leaves the CRDs.
#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_every_optional_object() {
    let client = admin().await;
    common::install_crd(&client).await;
    install_monitoring_crds().await;
    let ns = TestNamespace::new(&client, "helm").await;
    let team = TestNamespace::new(&client, "helm-team").await;
    let n = ns.name.as_str();
    let out = kubectl(&["label", "namespace", n, "pod-security.kubernetes.io/enforce=restricted"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let values = write_values(dir.path(), "all.yaml", &every_option(n, &team.name));
    let mut tolerations = node_tolerations(&client).await;
    tolerations.push(json!({"key": "example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}));
    let tolerations = format!("tolerations={}", serde_json::to_string(&tolerations).unwrap());
    let fullname = format!("{n}-morningcheck");

    // Install, and wait for the Deployment to be available.
    let started = std::time::Instant::now();
    let (release, out) =
        Release::install(n, n, &["--values", &values, "--set-json", &tolerations, "--wait", "--timeout", "180s"])
            .unwrap_or_else(|e| panic!("helm install:\n{e}"));
    eprintln!("helm install --wait, every option: {:.1} s", started.elapsed().as_secs_f64());
    assert!(out.contains("STATUS: deployed") && out.contains("REVISION: 1"), "{out}");
    assert!(out.contains("NOTES:"), "{out}");
    let installed = docs(&release.manifest());
    let want: BTreeSet<String> = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
        "CronJob",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(kinds(&installed), want);
    for d in &installed {
        let (kind, name) = (d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap());
        let namespace = d["metadata"]["namespace"].as_str().unwrap_or_default();
        assert!(exists(kind, namespace, name), "helm installed {kind} {namespace}/{name}, which is not there");
    }
    for suffix in ["checks", "secrets"] {
        assert!(exists("role", &team.name, &format!("{fullname}-{suffix}")), "the {suffix} Role in {}", team.name);
    }

    // The operator's pods run (on kwok's nodes), admitted under the restricted standard.
    let deployment = get_json(n, "deployment", &fullname);
    assert_eq!(deployment["status"]["availableReplicas"], 2, "{}", deployment["status"]);
    let selector = deployment["spec"]["selector"].clone();
    let operator_pods = pods_selected(&client, n, &selector).await;
    assert_eq!(operator_pods.len(), 2, "{operator_pods:?}");

    // The disruption controller counts the two, and allows one eviction.
    let pdb = eventually(60, "the PodDisruptionBudget's status", || async {
        let pdb = get_json(n, "poddisruptionbudget", &fullname);
        (pdb["status"]["expectedPods"] == 2 && pdb["status"]["currentHealthy"] == 2).then_some(pdb)
    })
    .await;
    assert_eq!(
        (pdb["status"]["desiredHealthy"].as_i64(), pdb["status"]["disruptionsAllowed"].as_i64()),
        (Some(1), Some(1))
    );

    // A Job from the CronJob: its pod runs beside the operator's, and only the NetworkPolicy
    // selects both.
    let job = format!("{fullname}-now");
    let out = kubectl(&["-n", n, "create", "job", &format!("--from=cronjob/{fullname}-run"), &job]);
    assert!(out.status.success(), "{}", text(&out));
    let job_pod = eventually(90, "the Job's pod", || async {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), n);
        let list = pods.list(&kube::api::ListParams::default().labels(&format!("job-name={job}"))).await.ok()?;
        list.items.into_iter().next().map(|p| (p.metadata.name.unwrap(), p.metadata.labels.unwrap_or_default()))
    })
    .await;
    assert_eq!(job_pod.1.get("app.kubernetes.io/component").map(String::as_str), Some("run"));
    let service = get_json(n, "service", &format!("{fullname}-metrics"));
    assert_eq!(pods_selected(&client, n, &service["spec"]["selector"]).await, operator_pods, "the Service's pods");
    assert_eq!(pods_selected(&client, n, &pdb["spec"]["selector"]).await, operator_pods, "the budget's pods");
    let policy = get_json(n, "networkpolicy", &fullname);
    let covered = pods_selected(&client, n, &policy["spec"]["podSelector"]).await;
    assert!(covered.contains(&job_pod.0) && operator_pods.is_subset(&covered), "{covered:?}");
    // The endpoints the Service publishes are the operator's pods.
    let endpoints = eventually(60, "the Service's endpoints", || async {
        let out = kubectl(&[
            "-n",
            n,
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={fullname}-metrics"),
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        let pods: BTreeSet<String> = list["items"]
            .as_array()?
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["targetRef"]["name"].as_str().map(str::to_string))
            .collect();
        (pods.len() >= 2).then_some(pods)
    })
    .await;
    assert_eq!(endpoints, operator_pods);
    let monitor = get_json(n, "servicemonitor", &fullname);
    assert!(
        selects(&monitor["spec"]["selector"], &service["metadata"]["labels"]),
        "the ServiceMonitor finds the Service"
    );

    // Upgrade: one replica, no CronJob, NetworkPolicy or ServiceMonitor.
    let started = std::time::Instant::now();
    let off = "replicaCount=1,cronjob.enabled=false,networkPolicy.enabled=false,serviceMonitor.enabled=false";
    let out = release.upgrade(&[
        "--values",
        &values,
        "--set-json",
        &tolerations,
        "--set",
        off,
        "--wait",
        "--timeout",
        "180s",
    ]);
    eprintln!("helm upgrade --wait: {:.1} s", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "helm upgrade:\n{}", text(&out));
    assert_eq!(release.status()["version"], 2);
    let deployment = get_json(n, "deployment", &fullname);
    assert_eq!(
        (deployment["spec"]["replicas"].as_i64(), deployment["status"]["availableReplicas"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    for (kind, name) in [
        ("poddisruptionbudget", fullname.clone()),
        ("role", format!("{fullname}-leader-election")),
        ("rolebinding", format!("{fullname}-leader-election")),
        ("networkpolicy", fullname.clone()),
        ("cronjob", format!("{fullname}-run")),
        ("configmap", format!("{fullname}-run")),
        ("servicemonitor", fullname.clone()),
    ] {
        assert!(!exists(kind, n, &name), "the upgrade left {kind} {name}");
    }
    assert!(exists("prometheusrule", n, &fullname), "the PrometheusRule stays");
    eventually(90, "the garbage collector to delete the CronJob's Job", || async {
        (!exists("job", n, &job)).then_some(())
    })
    .await;

    // A misspelt value: refused by the schema, the release untouched.
    let out = release.upgrade(&["--reuse-values", "--set", "securityContext.readOnlyRootFileSystem=true"]);
    assert!(!out.status.success(), "helm upgrade with a typo:\n{}", text(&out));
    assert!(
        text(&out).contains("values don't meet the specifications") && text(&out).contains("readOnlyRootFileSystem")
    );
    let status = release.status();
    assert_eq!((status["version"].as_i64(), status["info"]["status"].as_str()), (Some(2), Some("deployed")));

    // Uninstall: every object helm installed is gone, wherever it was; the CRDs stay.
    let started = std::time::Instant::now();
    let out = release.uninstall(&["--wait", "--timeout", "120s"]);
    eprintln!("helm uninstall --wait: {:.1} s", started.elapsed().as_secs_f64());
    assert!(out.contains("uninstalled"), "{out}");
    for d in &installed {
        let (kind, name) = (d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap());
        let namespace = d["metadata"]["namespace"].as_str().unwrap_or_default();
        assert!(!exists(kind, namespace, name), "helm uninstall left {kind} {namespace}/{name}");
    }
    for role in ["checks", "secrets"] {
        assert!(!exists("role", &team.name, &format!("{fullname}-{role}")));
    }
    for crd in [
        "morningchecks.morningcheck.io",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        assert!(exists("crd", "", crd), "{crd} stays");
    }
    let out = common::chart::helm_on_cluster(&["status", n, "--namespace", n]);
    assert!(!out.status.success() && text(&out).contains("not found"), "{}", text(&out));
}

/// A misspelt value is refused by `helm install` before anything reaches the cluster.
#[tokio::test]
async fn helm_install_refuses_a_misspelt_value() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "helmtypo").await;
    for (set, field) in REFUSED {
        let err = Release::install(&ns.name, &ns.name, &["--set", set]).map(|_| ()).expect_err(set);
        assert!(err.contains("values don't meet the specifications") && err.contains(field), "--set {set}:\n{err}");
    }
    let out = common::chart::helm_on_cluster(&["list", "--namespace", &ns.name, "--all", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "no release was recorded");
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), &ns.name);
    assert!(sa.get_opt(&format!("{}-morningcheck", ns.name)).await.unwrap().is_none(), "nothing was created");
}

/// Runs in flight get the pod's grace period less 10 s (to give up the Lease) on SIGTERM.
#[test]
fn runs_in_flight_finish_within_the_pods_grace_period() {
    for (set, grace, shutdown) in [
        (None, 30, "20"),
        (Some("terminationGracePeriodSeconds=90"), 90, "80"),
        (Some("terminationGracePeriodSeconds=5"), 5, "1"),
    ] {
        let args: Vec<&str> = set.map(|s| vec!["--set", s]).unwrap_or_default();
        let all = docs(&render("mc", "ops", &args));
        let pod = &one(&all, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["terminationGracePeriodSeconds"], grace);
        let env = pod["containers"][0]["env"].as_array().unwrap();
        let value = env.iter().find(|e| e["name"] == "MORNINGCHECK_SHUTDOWN_GRACE_SECONDS").map(|e| &e["value"]);
        assert_eq!(value, Some(&serde_json::json!(shutdown)), "{set:?}");
    }
}
