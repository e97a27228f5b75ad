//! The Helm chart, its renderer and the plain manifests: tools/helm-render builds from
//! Debian's packages, the chart renders with defaults and with every option, its values
//! are documented and checked by the schema, the RBAC is least privilege (and commented
//! rule by rule), the alerts fire when they should (promtool), deploy/ matches a fresh
//! render, and the render installs on the RBAC-enforcing test apiserver, where
//! SubjectAccessReviews show what the operator's ServiceAccount may and may not do.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use common::chart::{
    CHART, CHECK_READS, apply, assert_access, docs, dry_run, env_value, get_json, kubectl, of_kind, one, read,
    release_file, render, renderer, repo, sa_groups, strings, text, try_render,
};
use common::{TestNamespace, admin, var};
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
// The renderer, the CRD copy and the plain manifests

#[test]
fn renderer_builds_and_explains_its_usage() {
    let out = Command::new(renderer()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("usage: helm-render CHART_DIR RELEASE NAMESPACE"), "{}", text(&out));
    let out = Command::new(renderer()).args([CHART, "Bad_Name", "ns"]).current_dir(repo()).output().unwrap();
    assert!(!out.status.success() && text(&out).contains("release name"), "{}", text(&out));
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
}

#[test]
fn deploy_manifests_match_a_fresh_render() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("morningcheck.yaml");
    let out = Command::new(repo().join("tools/render-deploy.sh")).arg(&fresh).output().unwrap();
    assert!(out.status.success(), "tools/render-deploy.sh failed:\n{}", text(&out));
    let fresh = std::fs::read_to_string(fresh).unwrap();
    let committed = read("deploy/morningcheck.yaml");
    if let Some((n, (want, got))) =
        fresh.lines().chain(["<end>"]).zip(committed.lines().chain(["<end>"])).enumerate().find(|(_, (a, b))| a != b)
    {
        panic!(
            "deploy/morningcheck.yaml drifted from the chart at line {}: run tools/render-deploy.sh and commit the \
             result\n  render:    {want}\n  committed: {got}",
            n + 1
        );
    }

    // What `kubectl apply -f deploy/` gets: the Namespace first, then the CRD, then the
    // operator with its defaults, all in namespace morningcheck.
    let all = docs(&fresh);
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
    for k in ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment"] {
        assert!(kinds.contains(k), "deploy/ has no {k}");
    }
    assert_eq!(one(&all, "Deployment")["metadata"]["name"], "morningcheck");

    // `kubectl apply -f deploy/morningcheck.yaml` reads it (a client-side dry run: a
    // server-side one would need the namespace to exist already). deploy/cronjob.yaml, the
    // alternative without an operator, is tested by tests/cronjob.rs.
    let deploy_file = repo().join("deploy/morningcheck.yaml");
    let out = kubectl(&["apply", "--dry-run=client", "-f", deploy_file.to_str().unwrap()]);
    assert!(out.status.success(), "kubectl apply --dry-run=client -f deploy/morningcheck.yaml:\n{}", text(&out));
    assert!(text(&out).contains("deployment.apps/morningcheck created (dry run)"), "{}", text(&out));
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

// ---------------------------------------------------------------------------------------
// RBAC

#[test]
fn default_rbac_is_least_privilege() {
    let all = docs(&render("morningcheck", "ops", &[]));
    let cluster_roles = of_kind(&all, "ClusterRole");
    let cluster = grants(&cluster_roles);
    let expected: BTreeSet<_> = [
        grant("morningcheck.io", "morningchecks", "get"),
        grant("morningcheck.io", "morningchecks", "list"),
        grant("morningcheck.io", "morningchecks", "watch"),
        grant("morningcheck.io", "morningchecks/status", "patch"),
        grant("events.k8s.io", "events", "create"),
        grant("events.k8s.io", "events", "patch"),
    ]
    .into_iter()
    .chain(check_grants())
    .collect();
    assert_eq!(cluster, expected, "cluster-wide rules");
    for (g, r, v, _) in &cluster {
        assert!(r != "secrets" && !r.starts_with("secrets/"), "a ClusterRole grants {v} on secrets");
        assert!(g != "*" && r != "*" && v != "*", "wildcard in a ClusterRole: {g} {r} {v}");
    }
    for role in cluster_roles {
        assert!(role["aggregationRule"].is_null(), "the chart's roles list their own rules");
    }

    let roles = of_kind(&all, "Role");
    assert_eq!(roles.len(), 2, "the Lease and the Secrets Roles");
    let secrets: Vec<_> = roles.iter().filter(|r| grants(&[r]).iter().any(|g| g.1 == "secrets")).collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["metadata"]["namespace"], "ops", "Secrets are read in the release namespace only");
    assert_eq!(grants(&[secrets[0]]), [grant("", "secrets", "get")].into_iter().collect());

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
    let all = docs(&render("mc", "ops", &["--set", "rbac.checkNamespaces={team-a,team-b,team-a}"]));
    let cluster = grants(&of_kind(&all, "ClusterRole"));
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
        &["--set", "rbac.secretNamespaces={team-a,team-b},rbac.secretNames={slack-webhook,remote-kubeconfig}"],
    ));
    let with_secrets: Vec<_> =
        of_kind(&all, "Role").into_iter().filter(|r| grants(&[r]).iter().any(|g| g.1 == "secrets")).collect();
    let namespaces: Vec<_> = with_secrets.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
    assert_eq!(namespaces, ["team-a", "team-b"], "the release namespace is no longer included");
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
    let rendered = render("mc", "ops", &["--set", "rbac.checkNamespaces={a},rbac.secretNames={s}"]);
    assert!(assert_rules_commented("render", &rendered) >= 9);
    assert!(assert_rules_commented("deploy/morningcheck.yaml", &read("deploy/morningcheck.yaml")) >= 9);
}

// ---------------------------------------------------------------------------------------
// Values and the schema

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
            // Keys inside a free-form value (a Kubernetes object given as a default) are the
            // value's content, documented by the comment on the value itself.
            let structured_parent = schema_at(&schema, &parent).is_some_and(|s| s.get("properties").is_some());
            if structured_parent {
                let path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
                let node = schema_at(&schema, &path).unwrap_or_else(|| {
                    panic!("values.yaml:{}: {} is not in values.schema.json", n + 1, path.join("."))
                });
                assert!(node["description"].is_string(), "values.schema.json: {} has no description", path.join("."));
                if node.get("properties").is_none() {
                    assert!(commented, "values.yaml:{}: `{}` has no comment", n + 1, path.join("."));
                    checked += 1;
                }
            }
        }
        commented = false;
    }
    assert!(checked >= 50, "only {checked} values checked");
}

#[test]
fn the_schema_rejects_bad_values() {
    for (set, why) in [
        ("replicaCount=two", "replicaCount: got string, want integer"),
        ("controller.logFormat=xml", "logFormat: xml is not one of"),
        ("replicaz=2", "additional property \"replicaz\" is not allowed"),
        ("rbac.secretNamespaces={Not_A_Namespace}", "does not match"),
        ("rbac.checkNamespaces=kube-system", "got string, want array"),
        ("image.pullPolicy=Sometimes", "is not one of"),
        ("controller.metricsPort=80", "violates minimum"),
    ] {
        let err = try_render("mc", "ops", &["--set", set]).expect_err(set);
        assert!(err.contains("values don't meet the specifications") && err.contains(why), "--set {set}:\n{err}");
    }
    // A values file is checked the same way, and a good one passes.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "replicaCount: 3\nrbac:\n  checkNamespaces: [prod]\ncontroller:\n  logFormat: plain\n")
        .unwrap();
    let all = docs(&render("mc", "ops", &["-f", good.to_str().unwrap()]));
    assert_eq!(one(&all, "Deployment")["spec"]["replicas"], 3);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "serviceAccount:\n  anotations: {}\n").unwrap();
    let err = try_render("mc", "ops", &["-f", bad.to_str().unwrap()]).unwrap_err();
    assert!(err.contains("\"anotations\" is not allowed"), "{err}");
}

#[test]
fn notes_tell_the_next_steps() {
    let notes = render("morningcheck", "ops", &["--notes"]);
    assert!(notes.contains("kubectl get mc"), "{notes}");
    assert!(notes.contains("examples/morningcheck.yaml"), "{notes}");
    assert!(notes.contains("rollout status deployment/morningcheck"), "{notes}");
    let notes = render("morningcheck", "ops", &["--notes", "--set", "rbac.checkNamespaces={a,b}"]);
    assert!(notes.contains("only in: a, b"), "{notes}");
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
                // A check succeeded at 0s; its pod went away after 2h (failover): the series
                // is gone, yet the alert fires after 25h, and names the MorningCheck.
                "interval": "1m",
                "input_series": [
                    {"series": "morningcheck_last_successful_run_timestamp_seconds{namespace=\"team-a\",name=\"daily\",pod=\"a\"}",
                     "values": "0x120 _x1800"},
                    {"series": "morningcheck_last_successful_run_timestamp_seconds{namespace=\"team-b\",name=\"fine\",pod=\"b\"}",
                     "values": "0+60x1920"},
                ],
                "alert_rule_test": [
                    {"eval_time": "24h", "alertname": "MorningCheckNoSuccessfulRun", "exp_alerts": []},
                    {"eval_time": "26h", "alertname": "MorningCheckNoSuccessfulRun", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "namespace": "team-a", "name": "daily"},
                        "exp_annotations": {
                            "summary": no_run,
                            "description": "MorningCheck team-a/daily last completed a run with every target checked \
                                            1d 2h 0m 0s ago. See kubectl describe mc -n team-a daily.",
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
    assert_eq!(np["spec"]["podSelector"]["matchLabels"], one(&all, "Deployment")["spec"]["selector"]["matchLabels"]);

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

/// The one ConfigMap's keys, parsed: the MorningCheck and the kubeconfig.
fn run_config(all: &[Value]) -> (morningcheck::api::MorningCheck, kube::config::Kubeconfig) {
    let cm = one(all, "ConfigMap");
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
    assert_eq!(volume["configMap"]["name"], one(&all, "ConfigMap")["metadata"]["name"]);
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

    // CronJob is batch/v1beta1 before Kubernetes 1.21.
    let old = docs(&render("mc", "ops", &["--set", "cronjob.enabled=true", "--kube-version", "v1.20.2"]));
    assert_eq!(one(&old, "CronJob")["apiVersion"], "batch/v1beta1");

    let err = try_render("mc", "ops", &["--set", "cronjob.failOn=sometimes"]).unwrap_err();
    assert!(err.contains("is not one of"), "{err}");
    let err = try_render("mc", "ops", &["--set", "cronjob.schedul=x"]).unwrap_err();
    assert!(err.contains("\"schedul\" is not allowed"), "{err}");
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

    let notes = render("mc", "ops", &["--notes", "--set", "cronjob.enabled=true,controller.enabled=false"]);
    assert!(notes.contains("create job --from=cronjob/mc-morningcheck-run"), "{notes}");
    assert!(!notes.contains("rollout status"), "{notes}");

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

/// deploy/cronjob.yaml is the chart's CronJob, written out: the same Job and pod, the same
/// kubeconfig, the same rights (with the Secret named), every rule commented.
#[test]
fn deploy_cronjob_is_the_charts_cronjob() {
    let text = read("deploy/cronjob.yaml");
    let standalone = docs(&text);
    let chart = docs(&render(
        "morningcheck",
        "morningcheck",
        &["--set", "cronjob.enabled=true,controller.enabled=false,rbac.secretNames={slack-webhook}"],
    ));
    let mut want = kinds(&chart);
    want.insert("Namespace".into());
    assert_eq!(kinds(&standalone), want);
    assert_eq!(standalone[0]["kind"], "Namespace", "the Namespace first");
    assert_eq!(standalone[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    for d in &standalone[1..] {
        let ns = &d["metadata"]["namespace"];
        assert!(ns.is_null() || ns == "morningcheck", "{} in namespace {ns}", d["kind"]);
    }

    let (a, b) = (one(&standalone, "CronJob"), one(&chart, "CronJob"));
    assert_eq!(a["apiVersion"], b["apiVersion"]);
    let scheduling = |cj: &Value| {
        let mut s = cj["spec"].clone();
        s.as_object_mut().unwrap().remove("jobTemplate");
        s
    };
    assert_eq!(scheduling(a), scheduling(b));
    let job = |cj: &Value| {
        let mut j = cj["spec"]["jobTemplate"]["spec"].clone();
        j["template"]["metadata"] = Value::Null;
        j["template"]["spec"]["serviceAccountName"] = Value::Null;
        j
    };
    assert_eq!(job(a), job(b), "the Job and its pod");
    let (sa, cm) = (one(&standalone, "ServiceAccount"), one(&standalone, "ConfigMap"));
    let pod = &a["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(pod["volumes"][0]["configMap"]["name"], cm["metadata"]["name"]);
    assert_eq!(cm["data"]["kubeconfig"], one(&chart, "ConfigMap")["data"]["kubeconfig"]);

    // The same rights, bound to its own ServiceAccount.
    assert_eq!(grants(&of_kind(&standalone, "ClusterRole")), grants(&of_kind(&chart, "ClusterRole")));
    assert_eq!(grants(&of_kind(&standalone, "Role")), grants(&of_kind(&chart, "Role")));
    assert_eq!(strings(&one(&standalone, "Role")["rules"][0]["resourceNames"]), ["slack-webhook"]);
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
    assert_eq!(check.spec.slack.as_ref().unwrap().webhook_secret_ref.name, "slack-webhook");
}

// ---------------------------------------------------------------------------------------
// On the test apiserver

/// The render applies to the RBAC-enforcing apiserver (server-side dry run with the CRD,
/// then for real), the objects exist, and the ServiceAccount's effective rights are
/// exactly what the checks need.
#[tokio::test]
async fn the_chart_installs_on_the_test_apiserver() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chart").await;
    let other = TestNamespace::new(&client, "chart-other").await;
    let release = ns.name.clone();
    let dir = tempfile::tempdir().unwrap();

    // Every optional object that the apiserver knows, with the CRD: a server-side dry run.
    let full = dir.path().join("full.yaml");
    let rendered = render(
        &release,
        &ns.name,
        &["--include-crds", "--set", "networkPolicy.enabled=true,networkPolicy.restrictEgress=true"],
    );
    std::fs::write(&full, &rendered).unwrap();
    let out = dry_run(&full);
    assert!(text(&out).contains("customresourcedefinition.apiextensions.k8s.io/morningchecks.morningcheck.io"));

    // For real, without the CRD (shared with the other tests, installed by them).
    let (manifest, _cleanup) = release_file(dir.path(), &render(&release, &ns.name, &[]));
    apply(&manifest);

    let fullname = format!("{release}-morningcheck");
    let deploy: Deployment = Api::namespaced(client.clone(), &ns.name).get(&fullname).await.expect("Deployment");
    let pod = deploy.spec.unwrap().template.spec.unwrap();
    let sc = pod.containers[0].security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_user, Some(65532));
    assert_eq!(pod.service_account_name.as_deref(), Some(fullname.as_str()));
    Api::<ServiceAccount>::namespaced(client.clone(), &ns.name).get(&fullname).await.expect("ServiceAccount");
    Api::<Service>::namespaced(client.clone(), &ns.name).get(&format!("{fullname}-metrics")).await.expect("Service");
    for suffix in ["controller", "checks"] {
        let name = format!("{fullname}-{suffix}");
        Api::<ClusterRole>::all(client.clone()).get(&name).await.expect("ClusterRole");
        Api::<ClusterRoleBinding>::all(client.clone()).get(&name).await.expect("ClusterRoleBinding");
    }
    for suffix in ["leader-election", "secrets"] {
        let name = format!("{fullname}-{suffix}");
        Api::<Role>::namespaced(client.clone(), &ns.name).get(&name).await.expect("Role");
        Api::<RoleBinding>::namespaced(client.clone(), &ns.name).get(&name).await.expect("RoleBinding");
    }

    let sa = format!("system:serviceaccount:{}:{fullname}", ns.name);
    let (n, o) = (ns.name.as_str(), other.name.as_str());
    let lease = format!("{fullname}-leader");
    let mc = "morningcheck.io";
    // The checks: list, cluster-wide, and nothing more.
    #[rustfmt::skip]
    let table = [CHECK_READS.as_slice(), &[
        ("list", "", "pods", o, "", true),
        ("watch", "", "pods", "", "", false),
        ("get", "", "pods", o, "p", false),
        ("delete", "", "pods", o, "p", false),
        ("create", "", "pods/exec", o, "p", false),
        ("list", "", "configmaps", "", "", false),
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
        // Secrets: get, in the release namespace only.
        ("get", "", "secrets", n, "slack-webhook", true),
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
    ]].concat();
    assert_access(&client, &sa, |_| sa_groups(), &table).await;
}

/// With rbac.checkNamespaces and rbac.secretNamespaces, the reads are confined to the
/// listed namespaces on the real apiserver.
#[tokio::test]
async fn namespaced_rbac_installs_and_confines_the_reads() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chartns").await;
    let team = TestNamespace::new(&client, "chartns-team").await;
    let other = TestNamespace::new(&client, "chartns-other").await;
    let release = ns.name.clone();
    let dir = tempfile::tempdir().unwrap();
    let set = format!(
        "rbac.checkNamespaces={{{t}}},rbac.secretNamespaces={{{t}}},rbac.secretNames={{slack-webhook}},replicaCount=1",
        t = team.name
    );
    let (manifest, _cleanup) = release_file(dir.path(), &render(&release, &ns.name, &["--set", &set]));
    dry_run(&manifest);
    apply(&manifest);

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

/// The chart in CronJob mode, rendered for the test apiserver's version (CronJob is
/// batch/v1beta1 before 1.21), installs for real, and its ServiceAccount may read what the
/// checks read and nothing the operator alone needs.
#[tokio::test]
async fn the_cronjob_chart_installs_on_the_test_apiserver() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "chartcron").await;
    let release = ns.name.clone();
    let version = client.apiserver_version().await.expect("server version");
    let minor: String = version.minor.chars().take_while(char::is_ascii_digit).collect();
    let kube_version = format!("v{}.{minor}.0", version.major);
    let dir = tempfile::tempdir().unwrap();
    let rendered = render(
        &release,
        &ns.name,
        &["--kube-version", &kube_version, "--set", "cronjob.enabled=true,controller.enabled=false"],
    );
    let (manifest, _cleanup) = release_file(dir.path(), &rendered);
    dry_run(&manifest);
    let out = apply(&manifest);
    let fullname = format!("{release}-morningcheck");
    assert!(text(&out).contains(&format!("cronjob.batch/{fullname}-run created")), "{}", text(&out));

    // What the apiserver stored: the restricted pod of the Job template, and the ConfigMap.
    let cj = get_json(&ns.name, "cronjob", &format!("{fullname}-run"));
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&pod["containers"][0]["securityContext"]["capabilities"]["drop"]), ["ALL"]);
    get_json(&ns.name, "configmap", &format!("{fullname}-run"));
    assert!(Api::<Deployment>::namespaced(client.clone(), &ns.name).get_opt(&fullname).await.unwrap().is_none());

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
