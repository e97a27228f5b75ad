//! The CRD on the current apiserver: every schema bound and CEL rule refuses a bad
//! MorningCheck with its message on `kubectl create`, and `morningcheck run` refuses the
//! same manifest (exit 65) with the same message; a valid one is accepted by both. And
//! `kubectl explain` documents every field.

mod common;

use std::path::Path;
use std::process::Output;

use common::chart::kubectl;
use common::{TestNamespace, admin, install_crd, var};
use serde_json::{Value, json};

fn base(ns: &str) -> Value {
    json!({"schedule": "0 7 * * *", "targets": {"kubernetes": [
        {"name": "local", "namespaces": {"include": [ns]}, "checks": {"nodes": false, "events": false}}]}})
}

/// Sets `value` at a `/`-separated path of `spec` (numbers index arrays).
fn with(mut spec: Value, path: &str, value: Value) -> Value {
    let pointer = format!("/{path}");
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let mut cur = &mut spec;
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        cur = match part.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => {
                if cur.get(part).is_none() {
                    cur[part] = json!({});
                }
                &mut cur[part]
            }
        };
    }
    match key.parse::<usize>() {
        Ok(i) => cur[i] = value,
        Err(_) => cur[key] = value,
    }
    spec
}

fn prom(extra: Value) -> Value {
    let mut p = json!({"name": "prom", "url": "http://127.0.0.1:9"});
    p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!([p])
}

fn aws(extra: Value) -> Value {
    let mut a = json!({"name": "ec2", "regions": ["eu-west-1"]});
    a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!([a])
}

/// (case, spec, the message both the apiserver and `morningcheck run` give).
fn cases(ns: &str) -> Vec<(&'static str, Value, String)> {
    let b = || base(ns);
    let k = |field: &str, v: Value| with(b(), &format!("targets/kubernetes/0/{field}"), v);
    let name_pattern = "spec.targets.kubernetes[0].name in body should match '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'";
    let secret = |name: &str| json!({"name": name, "key": "k"});
    vec![
        // CEL rules
        (
            "externalId without roleArn",
            with(b(), "targets/aws", aws(json!({"externalId": "ext-1"}))),
            "spec.targets.aws[0].externalId: Forbidden: externalId is only sent when assuming roleArn: set roleArn or remove externalId".into(),
        ),
        (
            "warning above critical",
            with(b(), "targets/prometheus", prom(json!({"queries": [{"name": "q", "query": "up", "warning": 5, "critical": 1}]}))),
            "spec.targets.prometheus[0].queries[0]: Invalid value: warning must be crossed before critical: with direction Above (the default) warning may not be above critical, with direction Below it may not be below critical".into(),
        ),
        (
            "warning below critical going below",
            with(
                b(),
                "targets/prometheus",
                prom(json!({"queries": [{"name": "q", "query": "up", "warning": 1, "critical": 5, "direction": "Below"}]})),
            ),
            "spec.targets.prometheus[0].queries[0]: Invalid value: warning must be crossed before critical".into(),
        ),
        (
            "bearer and basic auth",
            with(
                b(),
                "targets/prometheus",
                prom(json!({"auth": {"bearerTokenSecretRef": secret("t"), "basic": {"username": "u", "passwordSecretRef": secret("p")}}})),
            ),
            "spec.targets.prometheus[0].auth: Invalid value: set exactly one authentication method: bearerTokenSecretRef or basic".into(),
        ),
        (
            "slack with both a webhook and an app",
            with(
                b(),
                "slack",
                json!({"webhookSecretRef": secret("hook"), "app": {"tokenSecretRef": secret("bot"), "channel": "#ops"}}),
            ),
            "spec.slack: Invalid value: set exactly one of webhookSecretRef (an incoming webhook) and app (a Slack app's bot token and channel)".into(),
        ),
        (
            "slack with neither a webhook nor an app",
            with(b(), "slack", json!({"notify": "Always"})),
            "spec.slack: Invalid value: set exactly one of webhookSecretRef (an incoming webhook) and app (a Slack app's bot token and channel)".into(),
        ),
        (
            "auth without a method",
            with(b(), "targets/prometheus", prom(json!({"auth": {}}))),
            "spec.targets.prometheus[0].auth: Invalid value: set exactly one authentication method: bearerTokenSecretRef or basic".into(),
        ),
        (
            "target name used twice across kinds",
            with(b(), "targets/aws", json!([{"name": "local", "regions": ["eu-west-1"]}])),
            "spec.targets: Invalid value: target names must be unique across kubernetes, prometheus and aws targets: rename the target that repeats a name".into(),
        ),
        (
            "no targets",
            with(b(), "targets", json!({"kubernetes": []})),
            "spec.targets: Required value: no targets: name at least one kubernetes, prometheus or aws target".into(),
        ),
        (
            "query without expression or preset",
            with(b(), "targets/prometheus", prom(json!({"queries": [{"name": "q", "warning": 1}]}))),
            "spec.targets.prometheus[0].queries[0]: Invalid value: set query (a PromQL expression) or preset".into(),
        ),
        (
            "query without threshold",
            with(b(), "targets/prometheus", prom(json!({"queries": [{"name": "q", "query": "up"}]}))),
            "spec.targets.prometheus[0].queries[0]: Invalid value: a query without a preset needs a threshold: set warning, critical or both".into(),
        ),
        (
            "query name used twice",
            with(
                b(),
                "targets/prometheus",
                prom(json!({"queries": [{"name": "hot", "preset": "hot-nodes"}, {"name": "hot", "preset": "disks-filling"}]})),
            ),
            "spec.targets.prometheus[0].queries: Invalid value: query names must be unique within a Prometheus target: rename the query that repeats a name".into(),
        ),
        (
            "region listed twice",
            with(b(), "targets/aws", json!([{"name": "ec2", "regions": ["eu-west-1", "eu-west-1"]}])),
            "spec.targets.aws[0].regions: Invalid value: each region may be listed once: remove the repeated region".into(),
        ),
        // Bounds and patterns of the schema
        (
            "maxFindings 100000",
            k("thresholds", json!({"maxFindings": 100000})),
            "spec.targets.kubernetes[0].thresholds.maxFindings: Invalid value: 100000: spec.targets.kubernetes[0].thresholds.maxFindings in body should be less than or equal to 200".into(),
        ),
        (
            "empty target name",
            k("name", json!("")),
            "spec.targets.kubernetes[0].name: Invalid value: \"\": spec.targets.kubernetes[0].name in body should be at least 1 chars long".into(),
        ),
        (
            "target name with a slash",
            k("name", json!("prod/eu")),
            format!("spec.targets.kubernetes[0].name: Invalid value: \"prod/eu\": {name_pattern}"),
        ),
        (
            "target name with a control character",
            k("name", json!("prod\u{7}")),
            format!("spec.targets.kubernetes[0].name: Invalid value: \"prod\\a\": {name_pattern}"),
        ),
        (
            "target name of 100k characters",
            k("name", json!("a".repeat(100_000))),
            "spec.targets.kubernetes[0].name: Too long: may not be more than 63 bytes".into(),
        ),
        (
            "query name with a slash",
            with(b(), "targets/prometheus", prom(json!({"queries": [{"name": "cpu/node", "preset": "hot-nodes"}]}))),
            "spec.targets.prometheus[0].queries[0].name: Invalid value: \"cpu/node\": spec.targets.prometheus[0].queries[0].name in body should match".into(),
        ),
        (
            "timeoutSeconds at the 64-bit maximum",
            with(b(), "timeoutSeconds", json!(i64::MAX)),
            "spec.timeoutSeconds: Invalid value: 9223372036854775807: spec.timeoutSeconds in body should be less than or equal to 3600".into(),
        ),
        (
            "negative timeoutSeconds",
            with(b(), "timeoutSeconds", json!(-1)),
            "spec.timeoutSeconds: Invalid value: -1: spec.timeoutSeconds in body should be greater than or equal to 5".into(),
        ),
        (
            "readTimeoutSeconds at the 64-bit maximum",
            with(b(), "targets/prometheus", prom(json!({"readTimeoutSeconds": i64::MAX}))),
            "spec.targets.prometheus[0].readTimeoutSeconds: Invalid value: 9223372036854775807: spec.targets.prometheus[0].readTimeoutSeconds in body should be less than or equal to 600".into(),
        ),
        (
            "connectTimeoutSeconds at the 64-bit maximum",
            with(b(), "targets/prometheus", prom(json!({"connectTimeoutSeconds": i64::MAX}))),
            "spec.targets.prometheus[0].connectTimeoutSeconds: Invalid value: 9223372036854775807: spec.targets.prometheus[0].connectTimeoutSeconds in body should be less than or equal to 300".into(),
        ),
        (
            "startingDeadlineSeconds past a day",
            with(b(), "startingDeadlineSeconds", json!(86401)),
            "spec.startingDeadlineSeconds: Invalid value: 86401: spec.startingDeadlineSeconds in body should be less than or equal to 86400".into(),
        ),
        (
            "101 kubernetes targets",
            with(
                b(),
                "targets/kubernetes",
                json!((0..101).map(|i| json!({"name": format!("c{i}")})).collect::<Vec<_>>()),
            ),
            "spec.targets.kubernetes: Too many: 101: must have at most 100 items".into(),
        ),
        (
            "namespace that is neither a name nor a glob of one",
            k("namespaces", json!({"include": ["Prod_1"]})),
            "spec.targets.kubernetes[0].namespaces.include[0]: Invalid value: \"Prod_1\": spec.targets.kubernetes[0].namespaces.include[0] in body should match '^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$'".into(),
        ),
        (
            "region that is not a region",
            with(b(), "targets/aws", json!([{"name": "ec2", "regions": ["mars"]}])),
            "spec.targets.aws[0].regions[0]: Invalid value: \"mars\": spec.targets.aws[0].regions[0] in body should match".into(),
        ),
        (
            "prometheus url that is not http",
            with(b(), "targets/prometheus", json!([{"name": "p", "url": "ftp://prom"}])),
            "spec.targets.prometheus[0].url: Invalid value: \"ftp://prom\": spec.targets.prometheus[0].url in body should match".into(),
        ),
        (
            "alert label that is not a label name",
            with(b(), "targets/prometheus", prom(json!({"alerts": {"exclude": [{"label": "alert-name", "value": "x"}]}}))),
            "spec.targets.prometheus[0].alerts.exclude[0].label: Invalid value: \"alert-name\": spec.targets.prometheus[0].alerts.exclude[0].label in body should match '^[a-zA-Z_][a-zA-Z0-9_]*$'".into(),
        ),
        (
            "unknown instance state",
            with(b(), "targets/aws", aws(json!({"instanceStates": ["sleeping"]}))),
            "spec.targets.aws[0].instanceStates[0]: Invalid value: \"sleeping\": spec.targets.aws[0].instanceStates[0] in body should match".into(),
        ),
        (
            "secret name that is not a DNS subdomain",
            k("kubeconfigSecretRef", json!({"name": "My_Secret", "key": "k"})),
            "spec.targets.kubernetes[0].kubeconfigSecretRef.name: Invalid value: \"My_Secret\": spec.targets.kubernetes[0].kubeconfigSecretRef.name in body should match".into(),
        ),
    ]
}

fn manifest(name: &str, ns: &str, spec: &Value) -> Value {
    json!({"apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn slug(case: &str) -> String {
    case.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn run(file: &Path, home: &Path) -> Output {
    std::process::Command::new(common::binary())
        .args(["run", "--dry-run", "-f"])
        .arg(file)
        .env("KUBECONFIG", var("MC_KUBECONFIG"))
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("MORNINGCHECK_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap()
}

/// The problems `morningcheck run` printed, without its `morningcheck: file (document 1): ` prefix.
fn cli_problems(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("(document 1): ").map(|(_, p)| p.to_string()))
        .collect()
}

#[tokio::test]
async fn the_apiserver_and_morningcheck_run_refuse_the_same_manifests_with_the_same_messages() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "crd").await;
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(&ns.name);
    let mut failures = Vec::new();
    for (case, spec, message) in &cases {
        let file = dir.path().join(format!("{}.json", slug(case)));
        std::fs::write(&file, serde_json::to_vec_pretty(&manifest(&slug(case), &ns.name, spec)).unwrap()).unwrap();

        let created = kubectl(&["create", "-f", file.to_str().unwrap()]);
        let server = text(&created);
        if created.status.success() {
            failures.push(format!("{case}: the apiserver accepted it"));
            continue;
        }
        if !server.contains(message.as_str()) {
            failures.push(format!("{case}: the apiserver's message lacks {message:?}:\n{server}"));
        }

        let out = run(&file, dir.path());
        let problems = cli_problems(&out);
        if out.status.code() != Some(65) {
            failures.push(format!("{case}: morningcheck run exited {:?}, not 65:\n{}", out.status.code(), text(&out)));
            continue;
        }
        if !problems.iter().any(|p| p.starts_with(message.as_str()) || p.contains(message.as_str())) {
            failures.push(format!("{case}: morningcheck run's message lacks {message:?}: {problems:#?}"));
        }
        // Word for word: each problem the command reports is one the apiserver reported.
        for p in &problems {
            if !server.contains(p.as_str()) {
                failures.push(format!("{case}: morningcheck run says {p:?}, the apiserver does not:\n{server}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n\n"));

    // A valid MorningCheck: created by the apiserver, run by the command.
    let valid = dir.path().join("valid.json");
    let mut spec = base(&ns.name);
    spec["targets"]["prometheus"] = prom(json!({"auth": {"bearerTokenSecretRef": {"name": "tok", "key": "token"}},
        "queries": [{"name": "hot", "preset": "hot-nodes"}, {"name": "up", "query": "up", "warning": 1, "critical": 0, "direction": "Below"}]}));
    spec["targets"]["aws"] = aws(json!({"roleArn": "arn:aws:iam::123456789012:role/check", "externalId": "ext-1"}));
    std::fs::write(&valid, serde_json::to_vec(&manifest("valid", &ns.name, &spec)).unwrap()).unwrap();
    let created = kubectl(&["create", "-f", valid.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created));
    let out = run(&valid, dir.path());
    assert!(cli_problems(&out).is_empty() && matches!(out.status.code(), Some(0..=2)), "{}", text(&out));
}

/// Every field path `kubectl explain --recursive` lists, explained on its own, has a description.
#[tokio::test]
async fn kubectl_explain_documents_every_field() {
    install_crd(&admin().await).await;
    // The apiserver publishes a new CRD's OpenAPI a moment after it is Established.
    let mut tree = kubectl(&["explain", "morningchecks", "--recursive"]);
    for _ in 0..30 {
        if tree.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        tree = kubectl(&["explain", "morningchecks", "--recursive"]);
    }
    assert!(tree.status.success(), "{}", text(&tree));
    let listing = String::from_utf8_lossy(&tree.stdout).to_string();
    let mut paths = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    for line in listing.lines().skip_while(|l| !l.starts_with("FIELDS:")).skip(1) {
        let indent = line.len() - line.trim_start().len();
        if indent < 2 {
            break;
        }
        // A field is `name<TAB><type>`; other lines (`enum: A, B`) describe the one above.
        let Some((name, _)) = line.trim_start().split_once("\t<") else { continue };
        let depth = (indent - 2) / 2;
        stack.truncate(depth);
        stack.push(name.to_string());
        // ObjectMeta is Kubernetes' own, documented by Kubernetes.
        if stack.len() > 1 && stack[0] == "metadata" {
            continue;
        }
        paths.push(stack.join("."));
    }
    for must in ["spec.targets.prometheus.auth", "spec.slack", "spec.timeZone", "status.nextRun"] {
        assert!(paths.iter().any(|p| p == must), "{must} not in the listing:\n{listing}");
    }
    let undocumented: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<&[String]> = paths.chunks(paths.len().div_ceil(4)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for p in chunk {
                        // kubectl fetches the OpenAPI document per call; a call that fails
                        // while the apiserver republishes it (another test installed the
                        // CRD) is asked again.
                        let documented = |out: &std::process::Output| {
                            let doc = String::from_utf8_lossy(&out.stdout).to_string();
                            let description = doc
                                .split_once("DESCRIPTION:")
                                .map(|(_, d)| d.split("FIELDS:").next().unwrap_or_default().trim().to_string())
                                .unwrap_or_default();
                            out.status.success() && !description.is_empty() && description != "<empty>"
                        };
                        let mut out = kubectl(&["explain", &format!("morningchecks.{p}")]);
                        for _ in 0..2 {
                            if documented(&out) {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_secs(2));
                            out = kubectl(&["explain", &format!("morningchecks.{p}")]);
                        }
                        if !documented(&out) {
                            bad.push(format!("{p}:\n{}", text(&out)));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        undocumented.is_empty(),
        "{} of {} fields without a description:\n{}",
        undocumented.len(),
        paths.len(),
        undocumented.join("\n")
    );
    // The top level is ours, not the derive's placeholder.
    let top = kubectl(&["explain", "morningchecks"]);
    let top = String::from_utf8_lossy(&top.stdout).to_string();
    assert!(top.contains("on-call engineer's morning round") && !top.contains("Auto-generated"), "{top}");
}

/// `kubectl get` shows the columns a person needs: ready, its reason, the next run in the
/// schedule's time zone; `kubectl get morningcheck` (the category) lists them too.
#[tokio::test]
async fn kubectl_get_shows_ready_and_status() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "columns").await;
    let crd = kubectl(&["get", "crd", "morningchecks.morningcheck.io", "-o", "json"]);
    let crd: Value = serde_json::from_slice(&crd.stdout).unwrap();
    let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Ready", "Schedule", "Suspended", "Result", "Unchecked", "Findings", "Last Run", "Next Run", "Status", "Age"]
    );
    assert_eq!(crd["spec"]["names"]["categories"], json!(["morningcheck"]));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&manifest("cols", &ns.name, &base(&ns.name))).unwrap()).unwrap();
    let created = kubectl(&["create", "-f", file.path().to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created));
    let listed = kubectl(&["-n", &ns.name, "get", "morningcheck"]);
    let header = String::from_utf8_lossy(&listed.stdout).lines().next().unwrap_or_default().to_string();
    for col in ["NAME", "READY", "SCHEDULE", "RESULT", "STATUS"] {
        assert!(header.contains(col), "{header}");
    }
}

/// The committed CRD applies the way a user applies it, again and again: kubectl's
/// client-side apply computes a patch against the live object the second time, which
/// failed on `null` among an enum's values.
#[tokio::test]
async fn the_committed_crd_applies_twice_with_kubectl() {
    let client = admin().await;
    install_crd(&client).await;
    let crd = format!("{}/crds/morningcheck.yaml", env!("CARGO_MANIFEST_DIR"));
    for _ in 0..2 {
        let out = kubectl(&["apply", "-f", &crd]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let dry = kubectl(&["apply", "--dry-run=client", "-f", &crd]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(!std::fs::read_to_string(&crd).unwrap().contains("- null"), "no null among enum values");
}
