//! The Slack digest: rendering inside Slack's limits, and delivery to a real local HTTP
//! receiver (an axum server on 127.0.0.1:0) that plays Slack's answers.
//!
//! Golden files: `tests/golden/slack-*.json` hold representative messages and are
//! compared exactly. After an intended change of the layout, rewrite them with
//!
//!     UPDATE_GOLDEN=1 cargo test --test slack
//!
//! and review the diff of the files before committing.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use morningcheck::api::{
    Area, Counts, ErrorTier, Finding, FindingRef, NotifyPolicy, RunDiff, RunReport, RunResult, Severity, TargetError,
    TargetReport,
};
use morningcheck::publish::slack::{
    self, Digest, MAX_BLOCKS, MAX_FIELD_TEXT, MAX_FIELDS, MAX_HEADER_TEXT, MAX_PAYLOAD_CHARS, MAX_SECTION_TEXT, Origin,
    Outcome,
};

// ---------------------------------------------------------------------------------------
// Reports built from the api types, with fixed times so the goldens are stable.

fn ts(s: &str) -> Time {
    Time(s.parse().expect("timestamp"))
}

fn finding(severity: Severity, check: &str, object: &str, message: &str) -> Finding {
    Finding {
        key: format!("{check}/{object}"),
        severity,
        check: check.into(),
        object: object.into(),
        message: message.into(),
        since: None,
    }
}

fn counts_of(findings: &[Finding]) -> Counts {
    let mut c = Counts::default();
    for f in findings {
        c.add(f.severity, 1);
    }
    c
}

/// The worst finding; Failed only when nothing could be checked (evaluate's rule).
fn grade(c: &Counts, checked_nothing: bool) -> RunResult {
    if c.critical > 0 {
        RunResult::Critical
    } else if c.warning > 0 {
        RunResult::Warning
    } else if checked_nothing {
        RunResult::Failed
    } else {
        RunResult::Healthy
    }
}

fn target(name: &str, area: Area, findings: Vec<Finding>) -> TargetReport {
    let counts = counts_of(&findings);
    TargetReport {
        name: name.into(),
        area,
        scope: None,
        result: grade(&counts, false),
        errors: Vec::new(),
        counts,
        facts: BTreeMap::new(),
        checks: Default::default(),
        findings,
        insecure: false,
    }
}

fn failed_target(name: &str, area: Area, tier: ErrorTier, message: &str) -> TargetReport {
    TargetReport {
        result: RunResult::Failed,
        errors: vec![TargetError { tier, scope: None, message: message.into() }],
        ..target(name, area, Vec::new())
    }
}

fn reference(target: &str, severity: Severity, check: &str, object: &str) -> FindingRef {
    FindingRef {
        target: target.into(),
        severity,
        check: check.into(),
        object: object.into(),
        runs: Some(1),
        since: None,
    }
}

/// A report over `targets`, graded and counted as `evaluate` does.
fn report(targets: Vec<TargetReport>, diff: RunDiff) -> RunReport {
    let mut counts = Counts::default();
    let mut areas: BTreeMap<String, Counts> = BTreeMap::new();
    for t in &targets {
        counts.merge(&t.counts);
        areas.entry(t.area.as_str().to_string()).or_default().merge(&t.counts);
    }
    let unchecked = targets.iter().filter(|t| !t.errors.is_empty()).count() as u32;
    let checked_nothing = !targets.is_empty() && unchecked as usize == targets.len();
    RunReport {
        schema_version: "morningcheck.io/v1alpha1".into(),
        check: None,
        run_id: "scheduled-20240502t0500z".into(),
        slot: ts("2024-05-02T05:00:00Z"),
        started_at: ts("2024-05-02T05:00:02Z"),
        finished_at: ts("2024-05-02T05:00:14.300Z"),
        duration_seconds: 12.3,
        result: grade(&counts, checked_nothing),
        incomplete: unchecked > 0,
        unchecked_targets: unchecked,
        counts,
        areas,
        targets,
        omitted_targets: 0,
        diff,
        snoozes: Default::default(),
        findings_digest: "0123456789abcdef".into(),
        attempt: 1,
    }
}

const MENTIONS: [&str; 2] = ["<!here>", "<!subteam^S0123ONCALL>"];

fn mentions() -> Vec<String> {
    MENTIONS.iter().map(|m| m.to_string()).collect()
}

fn render(r: &RunReport, mentions: &[String]) -> Value {
    let d = Digest {
        namespace: "ops",
        name: "prod-morning",
        time_zone: Some("Europe/Berlin"),
        mentions,
        origin: Origin::Cluster,
    };
    slack::render(r, &d)
}

fn healthy_report() -> RunReport {
    let mut k8s = target("prod-eu", Area::Kubernetes, Vec::new());
    k8s.facts = BTreeMap::from([("nodes".into(), 12), ("pods".into(), 340)]);
    let mut prom = target("thanos", Area::Prometheus, vec![finding(Severity::Info, "AlertFiring", "Watchdog", "")]);
    prom.scope = Some("https://thanos.example/prom".into());
    let mut aws = target("main", Area::Aws, Vec::new());
    aws.scope = Some("eu-west-1".into());
    aws.facts = BTreeMap::from([("running".into(), 41), ("stopped".into(), 3)]);
    let diff = RunDiff { has_previous: true, still_failing_total: 1, ..RunDiff::default() };
    report(vec![k8s, prom, aws], diff)
}

fn mixed_report() -> RunReport {
    let k8s = target(
        "prod-eu",
        Area::Kubernetes,
        vec![
            finding(Severity::Warning, "HighRestarts", "prod/api-5c8d9-x2x1", "container api restarted 14 times"),
            finding(Severity::Critical, "CrashLoopBackOff", "prod/web-7d9f-abcde", "back-off 5m0s restarting web"),
            finding(
                Severity::Critical,
                "NodeNotReady",
                "ip-10-0-3-17.eu-west-1.compute.internal",
                "kubelet stopped posting",
            ),
        ],
    );
    let mut prom = target(
        "thanos",
        Area::Prometheus,
        vec![finding(Severity::Warning, "DiskFilling", "node-7:/var", "predicted full in 9h (81 % used)")],
    );
    prom.facts = BTreeMap::from([("alerts".into(), 4)]);
    let mut aws = target(
        "main",
        Area::Aws,
        vec![finding(Severity::Warning, "StatusCheckFailed", "i-0abc123def (web-1)", "instance status check impaired")],
    );
    aws.scope = Some("eu-west-1".into());
    let mut staging = target("staging", Area::Kubernetes, Vec::new());
    staging.insecure = true;
    let diff = RunDiff {
        has_previous: true,
        new_total: 2,
        resolved_total: 1,
        still_failing_total: 2,
        new: vec![
            reference("prod-eu", Severity::Warning, "HighRestarts", "prod/api-5c8d9-x2x1"),
            reference("prod-eu", Severity::Critical, "CrashLoopBackOff", "prod/web-7d9f-abcde"),
        ],
        resolved: vec![reference("thanos", Severity::Critical, "AlertFiring", "KubeAPIDown")],
        still_failing: Vec::new(),
        ..RunDiff::default()
    };
    report(vec![k8s, prom, aws, staging], diff)
}

fn all_failed_report() -> RunReport {
    report(
        vec![
            failed_target("prod-eu", Area::Kubernetes, ErrorTier::Unauthorized, "Unauthorized: token expired"),
            failed_target("thanos", Area::Prometheus, ErrorTier::Unreachable, "connect timed out after 5s"),
            failed_target("main", Area::Aws, ErrorTier::Throttled, "RequestLimitExceeded after 5 attempts"),
        ],
        RunDiff::default(),
    )
}

// ---------------------------------------------------------------------------------------
// Mornings the evaluator makes, for the goldens: the objects and answers a run sees,
// through the functions a run uses (pods, nodes, Deployments; Alertmanager's alerts and a
// preset query; EC2 instances and statuses), graded, diffed against the morning before
// and snoozed as a run does.

mod morning {
    use aws_sdk_ec2::types::{
        Instance, InstanceState, InstanceStateName, InstanceStatus, InstanceStatusSummary, Placement, SummaryStatus,
        Tag,
    };
    use jiff::Timestamp;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use morningcheck::api::{
        AlertFilter, Area, ErrorTier, KubernetesThresholds, PromQuery, RunReport, Severity, Snooze,
    };
    use morningcheck::evaluate::kubernetes::{self as k8s, RestartWindow, Shortfall};
    use morningcheck::evaluate::prometheus as prom;
    use morningcheck::evaluate::{FindingSink, KnownSet, RunMeta, Snoozes, TargetOutcome, build_report, ec2};
    use serde_json::{Value, json};
    use std::sync::Arc;

    /// A morning: its time, and what the cluster, Prometheus and EC2 show.
    pub struct Day {
        pub at: &'static str,
        pub pods: Vec<Value>,
        pub deployments: Vec<Value>,
        pub nodes: Vec<Value>,
        /// Alertmanager's `/api/v2/alerts`.
        pub alerts: Value,
        /// The disks-filling preset's answer.
        pub disks: Value,
        /// Stopped instances and impaired ones, by id.
        pub stopped: Vec<&'static str>,
        pub impaired: Vec<&'static str>,
        /// Targets that cannot be reached this morning.
        pub down: Vec<(&'static str, Area, ErrorTier, &'static str)>,
        pub snoozes: Vec<Snooze>,
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sink(name: &str, area: Area, previous: &KnownSet, snoozes: &Arc<Snoozes>) -> FindingSink {
        FindingSink::new(name, area, 20)
            .against(previous.target(name))
            .counting(previous.counters(name))
            .snoozing(Some(snoozes.clone()))
    }

    fn outcome(name: &str, area: Area, sink: FindingSink) -> TargetOutcome {
        TargetOutcome { sink, ..TargetOutcome::new(name, area, 20) }
    }

    /// The run of `day`, compared with the known set of the morning before.
    pub fn run(day: &Day, previous: &KnownSet) -> (RunReport, KnownSet) {
        let now = ts(day.at);
        let since = previous.taken_at().unwrap_or(now - jiff::SignedDuration::from_hours(24));
        let snoozes = Arc::new(Snoozes::new(&day.snoozes, Some("Europe/Berlin"), now, previous.taken_at()));
        let mut outcomes = Vec::new();

        let th = KubernetesThresholds::default();
        let mut s = sink("prod-eu", Area::Kubernetes, previous, &snoozes);
        for p in &day.pods {
            let pod: Pod = serde_json::from_value(p.clone()).unwrap();
            let found = k8s::pod_findings(&pod, now, &th, &mut RestartWindow { since, counters: &mut s });
            s.extend(found);
        }
        for d in &day.deployments {
            let d: Deployment = serde_json::from_value(d.clone()).unwrap();
            let w = &mut Shortfall { now, grace_seconds: th.pending_grace_seconds, counters: &mut s };
            let found = k8s::deployment_findings(&d, w);
            s.extend(found);
        }
        for n in &day.nodes {
            let n: Node = serde_json::from_value(n.clone()).unwrap();
            s.extend(k8s::node_findings(&n, now, th.pending_grace_seconds));
        }
        let mut k = outcome("prod-eu", Area::Kubernetes, s);
        k.facts = [("pods".to_string(), day.pods.len() as u64), ("nodes".to_string(), day.nodes.len() as u64)].into();
        outcomes.push(k);

        let mut s = sink("thanos", Area::Prometheus, previous, &snoozes);
        let managed: Vec<prom::ManagedAlert> = serde_json::from_value(day.alerts.clone()).unwrap();
        let alerts: Vec<prom::Alert> = managed.into_iter().map(prom::Alert::from).collect();
        let summary = prom::alert_findings(&alerts, &prom::AlertRules::new(&AlertFilter::default()).unwrap(), false);
        s.extend(summary.findings);
        let q: PromQuery = serde_json::from_value(json!({"name": "disks-filling", "preset": "disks-filling"})).unwrap();
        let data: prom::QueryData = serde_json::from_value(day.disks.clone()).unwrap();
        s.extend(prom::query_findings(&prom::resolve(&q).unwrap(), &data).unwrap().findings);
        let mut p = outcome("thanos", Area::Prometheus, s);
        p.scope = Some("https://thanos.example/prom".into());
        p.facts = [
            ("alertsFiring".to_string(), summary.firing),
            ("alertsSilenced".to_string(), summary.silenced),
            ("alertsInhibited".to_string(), summary.inhibited),
        ]
        .into();
        outcomes.push(p);

        let mut s = sink("main/eu-west-1", Area::Aws, previous, &snoozes);
        for id in &day.stopped {
            s.extend(ec2::stopped_finding(&instance(id, InstanceStateName::Stopped), now));
        }
        for id in &day.impaired {
            let i = instance(id, InstanceStateName::Running);
            let impaired = InstanceStatusSummary::builder().status(SummaryStatus::Impaired).build();
            let st = InstanceStatus::builder().instance_id(*id).instance_status(impaired).build();
            s.extend(ec2::status_findings(&st, &i, now, 900));
        }
        let mut a = outcome("main/eu-west-1", Area::Aws, s);
        a.scope = Some("eu-west-1".into());
        outcomes.push(a);

        for (name, area, tier, message) in &day.down {
            outcomes.push(TargetOutcome::failed(name, *area, morningcheck::errors::error(*tier, *message)));
        }
        let meta = RunMeta {
            run_id: format!("scheduled-{}", now.as_second()),
            slot: now - jiff::SignedDuration::from_secs(2),
            started_at: now,
            finished_at: now + jiff::SignedDuration::from_millis(12_300),
        };
        build_report(meta, outcomes, previous, &snoozes)
    }

    fn instance(id: &str, state: InstanceStateName) -> Instance {
        Instance::builder()
            .instance_id(id)
            .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
            .placement(Placement::builder().availability_zone("eu-west-1a").build())
            .state(InstanceState::builder().name(state).build())
            .state_transition_reason("User initiated (2024-04-29 18:02:11 GMT)")
            .tags(Tag::builder().key("Name").value(format!("web-{}", &id[id.len() - 2..])).build())
            .build()
    }

    fn crashing(name: &str, uid: &str, restarts: u32, last: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "prod", "uid": uid}, "status": {"phase": "Running",
            "startTime": "2024-04-20T00:00:00Z", "containerStatuses": [{"name": "app", "ready": false,
            "restartCount": restarts, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": last}}}]}})
    }

    fn restarted(name: &str, uid: &str, restarts: u32, last: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "prod", "uid": uid}, "status": {"phase": "Running",
            "startTime": "2024-04-20T00:00:00Z", "containerStatuses": [{"name": "api", "ready": true,
            "restartCount": restarts, "image": "i", "imageID": "", "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": last}}}]}})
    }

    fn not_ready(name: &str, since: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": "Unknown",
            "lastTransitionTime": since, "message": "Kubelet stopped posting node status."}]}})
    }

    fn short(name: &str, available: i32, progress: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "prod", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"availableReplicas": available, "conditions": [{"type": "Progressing", "status": "True",
            "reason": "ReplicaSetUpdated", "lastUpdateTime": progress, "lastTransitionTime": progress}]}})
    }

    fn alert(name: &str, severity: &str, labels: Value, summary: &str, state: &str, silenced: &[&str]) -> Value {
        let mut l = labels;
        l["alertname"] = json!(name);
        l["severity"] = json!(severity);
        json!({"labels": l, "annotations": {"summary": summary}, "startsAt": "2024-05-01T22:14:00Z",
            "status": {"state": state, "silencedBy": silenced, "inhibitedBy": []}})
    }

    fn disks(free: &[(&str, &str)]) -> Value {
        let result: Vec<Value> = free
            .iter()
            .map(|(instance, v)| json!({"metric": {"instance": instance, "mountpoint": "/var"}, "value": [1714626000, v]}))
            .collect();
        json!({"resultType": "vector", "result": result})
    }

    /// The morning before: a crashloop, a container restarting, a node gone, an alert.
    pub fn yesterday() -> Day {
        Day {
            at: "2024-05-01T05:00:02Z",
            pods: vec![
                crashing("web-7d9f-abcde", "u-web", 31, "2024-05-01T04:55:00Z"),
                restarted("api-5c8d9-x2x1", "u-api", 14, "2024-05-01T03:10:00Z"),
            ],
            deployments: vec![short("web", 2, "2024-04-30T21:00:00Z")],
            nodes: vec![not_ready("ip-10-0-3-17.eu-west-1.compute.internal", "2024-05-01T02:40:00Z")],
            alerts: json!([alert(
                "KubeAPIErrorsHigh",
                "critical",
                json!({"job": "apiserver"}),
                "API server 5xx above 3%",
                "active",
                &[]
            )]),
            disks: disks(&[("node-7:9100", "120e9")]),
            stopped: vec!["i-0abc123def456701"],
            impaired: vec![],
            down: vec![],
            snoozes: vec![],
        }
    }

    /// This morning: the crashloop goes on; the restarts stopped; a new crashloop, a
    /// Deployment short after a stuck rollout, a disk filling, an impaired instance; the
    /// API alert resolved, a silenced one; the stopped instance snoozed; staging unreachable.
    pub fn today() -> Day {
        Day {
            at: "2024-05-02T05:00:02Z",
            pods: vec![
                crashing("web-7d9f-abcde", "u-web", 55, "2024-05-02T04:56:00Z"),
                restarted("api-5c8d9-x2x1", "u-api", 14, "2024-05-01T03:10:00Z"),
                crashing("checkout-6f5b-q8r2t", "u-checkout", 9, "2024-05-02T04:58:00Z"),
            ],
            deployments: vec![short("web", 2, "2024-05-01T21:00:00Z"), short("search", 3, "2024-05-02T04:58:00Z")],
            nodes: vec![not_ready("ip-10-0-3-17.eu-west-1.compute.internal", "2024-05-01T02:40:00Z")],
            alerts: json!([
                alert(
                    "HighLatency",
                    "warning",
                    json!({"service": "checkout", "job": "api"}),
                    "p99 latency of checkout above 2s",
                    "active",
                    &[]
                ),
                alert(
                    "CertExpiring",
                    "warning",
                    json!({"namespace": "ingress"}),
                    "certificate expires in 20 days",
                    "suppressed",
                    &["8c1d7e2a"]
                ),
            ]),
            disks: disks(&[("node-7:9100", "-4.2e9")]),
            stopped: vec!["i-0abc123def456701"],
            impaired: vec!["i-0feed5678beef902"],
            down: vec![(
                "staging",
                Area::Kubernetes,
                ErrorTier::Unauthorized,
                "Unauthorized: the token in Secret staging-kubeconfig expired",
            )],
            snoozes: vec![Snooze {
                check: "InstanceStopped".into(),
                object: "i-0abc123def456701*".into(),
                target: None,
                until: "2024-05-10".into(),
                reason: "decommissioned in OPS-1234".into(),
            }],
        }
    }

    /// A healthy morning: nothing but an info alert.
    pub fn quiet() -> Day {
        Day {
            at: "2024-05-02T05:00:02Z",
            pods: vec![restarted("api-5c8d9-x2x1", "u-api", 14, "2024-04-01T03:10:00Z")],
            deployments: vec![],
            nodes: vec![],
            alerts: json!([alert("Watchdog", "none", json!({}), "the alerting pipeline works", "active", &[])]),
            disks: disks(&[("node-7:9100", "120e9")]),
            stopped: vec![],
            impaired: vec![],
            down: vec![],
            snoozes: vec![],
        }
    }

    /// A morning where no target could be reached.
    pub fn unreachable() -> (RunReport, KnownSet) {
        let now = ts("2024-05-02T05:00:02Z");
        let failed = [
            ("prod-eu", Area::Kubernetes, ErrorTier::Unauthorized, "Unauthorized: token expired"),
            (
                "thanos",
                Area::Prometheus,
                ErrorTier::Unreachable,
                "https://thanos.example: no connection within the connect timeout of 5s",
            ),
            (
                "main/eu-west-1",
                Area::Aws,
                ErrorTier::Throttled,
                "DescribeInstances: RequestLimitExceeded after 5 attempts",
            ),
        ];
        let outcomes = failed
            .iter()
            .map(|(n, a, t, m)| TargetOutcome::failed(n, *a, morningcheck::errors::error(*t, *m)))
            .collect();
        let meta = RunMeta { run_id: "scheduled-1714626000".into(), slot: now, started_at: now, finished_at: now };
        build_report(meta, outcomes, &KnownSet::default(), &Snoozes::default())
    }

    /// Yesterday's run, then today's against it.
    pub fn two_days(today: Day) -> RunReport {
        let (_, known) = run(&yesterday(), &KnownSet::default());
        let known = KnownSet::decode(&known.encode()).unwrap();
        run(&today, &known).0
    }

    /// The severities a run found, to check the morning reads as written above.
    pub fn severities(r: &RunReport) -> Vec<(String, Severity, String)> {
        r.targets
            .iter()
            .flat_map(|t| t.findings.iter().map(|f| (f.check.clone(), f.severity, f.object.clone())))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Limits and escaping, checked on every rendered message.

/// Every limit of the brief, and that no `<`, `>` or `&` survives unescaped except in the
/// mentions we added ourselves.
fn assert_valid(payload: &Value, allowed_mentions: &[&str]) {
    assert_slack_models(payload);
    let serialized = serde_json::to_string(payload).unwrap();
    assert!(serialized.chars().count() <= MAX_PAYLOAD_CHARS, "payload {} chars", serialized.chars().count());
    let text = payload["text"].as_str().expect("text fallback");
    assert!(!text.trim().is_empty());
    let blocks = payload["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
    for b in blocks {
        assert_block(b);
    }
    assert_escaped(payload, allowed_mentions);
}

fn assert_slack_models(payload: &Value) {
    common::slack_models_accept(payload);
}

fn chars(v: &Value) -> usize {
    v.as_str().expect("a string").chars().count()
}

fn assert_block(b: &Value) {
    match b["type"].as_str().expect("block type") {
        "header" => {
            assert_eq!(b["text"]["type"], "plain_text");
            let n = chars(&b["text"]["text"]);
            assert!(n > 0 && n <= MAX_HEADER_TEXT, "header {n}");
        }
        "section" => {
            assert_eq!(b["text"]["type"], "mrkdwn");
            let n = chars(&b["text"]["text"]);
            assert!(n > 0 && n <= MAX_SECTION_TEXT, "section {n}");
            if let Some(fields) = b.get("fields") {
                let fields = fields.as_array().unwrap();
                assert!(!fields.is_empty() && fields.len() <= MAX_FIELDS, "{} fields", fields.len());
                for f in fields {
                    let n = chars(&f["text"]);
                    assert!(n > 0 && n <= MAX_FIELD_TEXT, "field {n}");
                }
            }
        }
        "context" => {
            let elements = b["elements"].as_array().unwrap();
            assert!(!elements.is_empty() && elements.len() <= 10);
            for e in elements {
                let n = chars(&e["text"]);
                assert!(n > 0 && n <= MAX_SECTION_TEXT, "context {n}");
            }
        }
        other => panic!("unexpected block type {other}"),
    }
}

fn assert_escaped(v: &Value, allowed: &[&str]) {
    match v {
        Value::String(s) => {
            let mut rest = s.clone();
            for m in allowed {
                rest = rest.replace(m, "");
            }
            assert!(!rest.contains('<') && !rest.contains('>'), "unescaped angle bracket in {s:?}");
            for (i, _) in rest.match_indices('&') {
                let tail = &rest[i..];
                assert!(["&amp;", "&lt;", "&gt;"].iter().any(|e| tail.starts_with(e)), "unescaped & in {s:?}");
            }
        }
        Value::Array(items) => items.iter().for_each(|i| assert_escaped(i, allowed)),
        Value::Object(map) => map.values().for_each(|i| assert_escaped(i, allowed)),
        _ => {}
    }
}

fn all_text(payload: &Value) -> String {
    serde_json::to_string(payload).unwrap()
}

fn section_texts(payload: &Value) -> Vec<String> {
    payload["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Golden files.

fn golden(name: &str, payload: &Value) {
    let path = format!("{}/tests/golden/slack-{name}.json", env!("CARGO_MANIFEST_DIR"));
    let actual = serde_json::to_string_pretty(payload).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"))).unwrap();
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} missing: run UPDATE_GOLDEN=1 cargo test --test slack"));
    assert_eq!(actual, expected, "{path} differs; if intended, rerun with UPDATE_GOLDEN=1 and review");
}

#[test]
fn golden_healthy() {
    let r = morning::two_days(morning::quiet());
    assert_eq!((r.result, r.incomplete, r.diff.resolved_total), (RunResult::Healthy, false, 7), "{:?}", r.diff);
    let payload = render(&r, &mentions());
    assert_valid(&payload, &[]);
    assert!(!all_text(&payload).contains("<!here>"), "mentions only on Critical");
    golden("healthy", &payload);
}

/// A mixed morning as the evaluator grades and diffs it: worst first, what is new, what
/// is unchecked, silenced and snoozed.
#[test]
fn golden_mixed_with_diff() {
    let r = morning::two_days(morning::today());
    assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Critical, true, 1));
    let found = morning::severities(&r);
    let has = |check: &str, object: &str| found.iter().any(|(c, _, o)| c == check && o.contains(object));
    assert!(has("CrashLoopBackOff", "checkout") && has("CrashLoopBackOff", "web-7d9f"), "{found:?}");
    assert!(!has("HighRestarts", "api-5c8d9"), "no restart since yesterday: {found:?}");
    assert!(has("DeploymentUnavailable", "prod/web") && !has("DeploymentUnavailable", "search"), "{found:?}");
    assert!(has("QueryThreshold", "node-7") && has("InstanceStatusImpaired", "i-0feed"), "{found:?}");
    assert!(!has("AlertFiring", "CertExpiring"), "silenced: {found:?}");
    let d = &r.diff;
    assert!(d.new_total >= 4 && d.resolved_total >= 2 && d.still_failing_total >= 3, "{d:?}");
    assert_eq!((r.counts.snoozed, r.snoozes.findings[0].reason.as_str()), (1, "decommissioned in OPS-1234"));
    let payload = render(&r, &mentions());
    assert_valid(&payload, &MENTIONS);
    let text = all_text(&payload);
    assert!(text.contains("Critical · 1 target unchecked") && text.contains("Snoozed:"), "{text}");
    golden("mixed", &payload);
    readme_shows(&r);
}

/// The README shows this morning as it reads: the picture of the digest, drawn from the
/// golden payload by tools/render_slack.py, and the text report of the same run.
fn readme_shows(r: &RunReport) {
    let root = env!("CARGO_MANIFEST_DIR");
    let report =
        morningcheck::publish::text::render("ops/prod-morning", r, morningcheck::publish::text::Style { color: false });
    let path = format!("{root}/tests/golden/text-mixed.txt");
    let update = std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1");
    if update {
        std::fs::write(&path, &report).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), report, "{path} differs; rerun with UPDATE_GOLDEN=1");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(&format!("```text\n{report}```\n")),
        "README.md shows tests/golden/text-mixed.txt as it is"
    );
    let mut draw = std::process::Command::new("python3");
    draw.arg(format!("{root}/tools/render_slack.py"));
    if !update {
        draw.arg("--check");
    }
    let out = draw
        .arg(format!("{root}/tests/golden/slack-mixed.json"))
        .arg(format!("{root}/docs/digest.svg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "docs/digest.svg is drawn from the golden: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn golden_all_targets_failing() {
    let (r, _) = morning::unreachable();
    assert_eq!(r.result, RunResult::Failed);
    let payload = render(&r, &mentions());
    assert_valid(&payload, &[]);
    golden("failed", &payload);
}

// ---------------------------------------------------------------------------------------
// Layout.

#[test]
fn header_names_the_check_and_result_with_an_emoji() {
    let cases = [
        (RunResult::Healthy, ":white_check_mark: prod-morning: Healthy"),
        (RunResult::Warning, ":warning: prod-morning: Warning"),
        (RunResult::Critical, ":red_circle: prod-morning: Critical"),
        (RunResult::Failed, ":x: prod-morning: Failed"),
        (RunResult::Interrupted, ":hourglass: prod-morning: Interrupted"),
    ];
    for (result, header) in cases {
        let mut r = healthy_report();
        r.result = result;
        let payload = render(&r, &[]);
        assert_eq!(payload["blocks"][0]["type"], "header");
        assert_eq!(payload["blocks"][0]["text"]["text"], header);
    }
}

#[test]
fn changes_come_before_the_targets() {
    let payload = render(&mixed_report(), &[]);
    let texts = section_texts(&payload);
    let diff = texts.iter().position(|t| t.starts_with("*Since the previous run:*")).expect("diff section");
    let first_target = texts.iter().position(|t| t.contains("*prod-eu* · Kubernetes")).expect("target section");
    assert!(diff < first_target);
    let d = &texts[diff];
    assert!(d.contains("2 new · 1 resolved"));
    // New findings are listed most severe first, with their objects.
    let crash = d.find("`prod/web-7d9f-abcde`").unwrap();
    let restarts = d.find("`prod/api-5c8d9-x2x1`").unwrap();
    let resolved = d.find("*Resolved*").unwrap();
    assert!(crash < restarts && restarts < resolved);
    assert!(d[resolved..].contains("`KubeAPIDown`"));
}

#[test]
fn first_run_has_no_diff() {
    let payload = render(&all_failed_report(), &[]);
    assert!(!all_text(&payload).contains("Since the previous run"));
}

#[test]
fn target_sections_show_counts_and_top_findings() {
    let payload = render(&mixed_report(), &[]);
    let texts = section_texts(&payload);
    let prod = texts.iter().find(|t| t.contains("*prod-eu*")).unwrap();
    assert!(prod.contains("2 critical · 1 warning · 0 info"));
    // In the evaluator's order (here the fixture's): the layout never reorders entries.
    let crash = prod.find("CrashLoopBackOff").unwrap();
    let restarts = prod.find("HighRestarts").unwrap();
    assert!(restarts < crash, "the report's order: {prod}");
    // A target without findings is on the healthy line, its TLS warning with it.
    let healthy = texts.iter().find(|t| t.contains("healthy:*")).unwrap();
    assert!(healthy.contains("*staging* :unlock:"), "{healthy}");
    assert_eq!(texts.iter().filter(|t| t.contains("staging")).count(), 1);
    let aws = texts.iter().find(|t| t.contains("*main* · AWS · eu-west-1")).unwrap();
    assert!(aws.contains("`i-0abc123def (web-1)`"));
    assert!(!texts.iter().any(|t| t.contains("Could not check")));
}

#[test]
fn partial_target_has_a_section_and_a_failure_line() {
    let mut aws = target(
        "main",
        Area::Aws,
        vec![finding(Severity::Critical, "InstanceStopped", "i-0abc (db-1)", "stopped by the scheduler")],
    );
    aws.scope = Some("us-east-1".into());
    // As evaluate grades it: its worst finding, errors or not.
    aws.result = RunResult::Critical;
    aws.errors = vec![TargetError {
        tier: ErrorTier::Forbidden,
        scope: Some("us-east-1".into()),
        message: "UnauthorizedOperation: ec2:DescribeInstanceStatus".into(),
    }];
    let r = report(vec![aws, target("prod-eu", Area::Kubernetes, Vec::new())], RunDiff::default());
    assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Critical, true, 1));
    let payload = render(&r, &mentions());
    assert_valid(&payload, &MENTIONS);
    // The header tells the severity and what could not be checked; the mention fires.
    assert_eq!(payload["blocks"][0]["text"]["text"], ":red_circle: prod-morning: Critical · 1 target unchecked");
    assert!(payload["text"].as_str().unwrap().contains("<!here>"), "{}", payload["text"]);
    let texts = section_texts(&payload);
    let section = texts.iter().find(|t| t.starts_with(":red_circle: *main* · AWS · us-east-1")).unwrap();
    assert!(section.contains("`i-0abc (db-1)`") && section.contains("incomplete (1 errors, see below)"));
    let failed = texts.iter().find(|t| t.contains("Could not check 1 of 2 targets")).unwrap();
    assert!(failed.contains("*main* (AWS): Forbidden `us-east-1` — UnauthorizedOperation: ec2:DescribeInstanceStatus"));
}

#[test]
fn failed_targets_list_tier_and_message() {
    let payload = render(&all_failed_report(), &[]);
    let texts = section_texts(&payload);
    let failed = texts.iter().find(|t| t.contains("Could not check 3 of 3 targets")).unwrap();
    assert!(failed.contains("Unauthorized — Unauthorized: token expired"));
    assert!(failed.contains("Unreachable — connect timed out after 5s"));
    assert!(failed.contains("Throttled — RequestLimitExceeded after 5 attempts"));
    // Failed targets without results get no section of their own.
    assert_eq!(texts.len(), 2, "summary and failed targets only: {texts:?}");
}

#[test]
fn context_shows_local_time_duration_and_kubectl() {
    let payload = render(&mixed_report(), &[]);
    let blocks = payload["blocks"].as_array().unwrap();
    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context");
    let text = context["elements"][0]["text"].as_str().unwrap();
    assert!(text.contains("2024-05-02 07:00 CEST"), "{text}");
    assert!(text.contains("took 12.3s"), "{text}");
    assert!(text.contains("`kubectl get mc -n ops prod-morning`"), "{text}");

    let d = Digest { namespace: "ops", name: "prod-morning", time_zone: None, mentions: &[], origin: Origin::Cluster };
    let utc = slack::render(&mixed_report(), &d);
    assert!(all_text(&utc).contains("2024-05-02 05:00 UTC"));
}

#[test]
fn mentions_only_on_critical_and_in_the_fallback() {
    let critical = render(&mixed_report(), &mentions());
    let text = critical["text"].as_str().unwrap();
    assert!(text.contains("<!here> <!subteam^S0123ONCALL>"), "{text}");
    assert!(section_texts(&critical)[0].contains("<!here>"));

    for r in [healthy_report(), all_failed_report()] {
        let payload = render(&r, &mentions());
        assert!(!all_text(&payload).contains("<!"), "no mentions on {:?}", r.result);
    }
    let mut warning = mixed_report();
    warning.result = RunResult::Warning;
    assert!(!all_text(&render(&warning, &mentions())).contains("<!here>"));
}

#[test]
fn fallback_text_summarises_the_run() {
    let payload = render(&all_failed_report(), &[]);
    assert_eq!(
        payload["text"],
        "MorningCheck prod-morning: Failed — 0 critical · 0 warning · 0 info in 3 targets, 3 could not be checked"
    );
}

// ---------------------------------------------------------------------------------------
// Huge and hostile inputs.

const HOSTILE: &str = "<!channel> <@U123> a&b *bold* _it_ ~st~ `tick` ``` \u{202E}evil\u{202C} 🚀👩‍👩‍👧 e\u{301}\u{301} \"q\" \\ new\nline\ttab\r\u{0}";

#[test]
fn ten_thousand_findings_in_one_target() {
    let findings: Vec<Finding> = (0..10_000)
        .map(|i| {
            let sev = [Severity::Info, Severity::Warning, Severity::Critical][i % 3];
            finding(sev, "CrashLoopBackOff", &format!("prod/web-{i:05}"), "back-off restarting failed container")
        })
        .collect::<Vec<_>>();
    // The evaluator keeps the most severe first.
    let mut findings = findings;
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let payload = render(&report(vec![target("prod-eu", Area::Kubernetes, findings)], RunDiff::default()), &[]);
    assert_valid(&payload, &[]);
    let texts = section_texts(&payload);
    let section = texts.iter().find(|t| t.contains("*prod-eu*")).unwrap();
    assert!(section.contains("3,333 critical · 3,333 warning · 3,334 info"));
    assert!(section.contains(":red_circle: *CrashLoopBackOff* `prod/web-00002`"), "most severe first");
    assert!(!section.contains(":information_source:"), "criticals fill the room before infos");
    let more = section.lines().last().unwrap();
    assert!(more.starts_with("…and ") && more.ends_with(" more: `kubectl get mc -n ops prod-morning -o yaml`"));
    let shown = section.lines().filter(|l| l.starts_with("• ")).count() as u64;
    let hidden: u64 = more["…and ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert_eq!(shown + hidden, 10_000);
}

/// 500 targets, 10,000 findings, 20 KB error messages, 5,000-character names, a diff of
/// thousands: still one valid message that says what it left out.
#[test]
fn five_hundred_targets_stay_within_every_limit() {
    let long_name = "ñ".repeat(5000);
    let huge_error = "connection refused; ".repeat(1000);
    let areas = [Area::Kubernetes, Area::Prometheus, Area::Aws];
    let targets: Vec<TargetReport> = (0..500)
        .map(|i| {
            let area = areas[i % 3];
            if i % 5 == 0 {
                let mut t = failed_target(&format!("{long_name}-{i}"), area, ErrorTier::Unreachable, &huge_error);
                t.errors.push(TargetError {
                    tier: ErrorTier::Api,
                    scope: Some(long_name.clone()),
                    message: huge_error.clone(),
                });
                t
            } else {
                let findings = (0..25)
                    .map(|j| {
                        let sev = if j % 4 == 0 { Severity::Critical } else { Severity::Warning };
                        finding(sev, &long_name, &format!("{long_name}/{i}-{j}"), &huge_error)
                    })
                    .collect();
                let mut t = target(&format!("t-{i}"), area, findings);
                t.scope = Some(long_name.clone());
                t.facts = (0..50).map(|k| (format!("{long_name}{k}"), k)).collect();
                t
            }
        })
        .collect();
    let refs: Vec<FindingRef> =
        (0..20).map(|i| reference(&long_name, Severity::Critical, &long_name, &format!("{long_name}{i}"))).collect();
    let diff = RunDiff {
        has_previous: true,
        new_total: 6000,
        resolved_total: 4000,
        still_failing_total: 4000,
        new: refs.clone(),
        resolved: refs,
        still_failing: Vec::new(),
        ..RunDiff::default()
    };
    let mut r = report(targets, diff);
    assert_eq!(r.counts.total, 400 * 25);
    r.run_id = long_name.clone();
    let d = Digest {
        namespace: &long_name,
        name: &long_name,
        time_zone: Some("Asia/Kolkata"),
        mentions: &mentions(),
        origin: Origin::Cluster,
    };
    for result in [RunResult::Failed, RunResult::Critical] {
        r.result = result;
        let payload = slack::render(&r, &d);
        assert_valid(&payload, &MENTIONS);
        let text = all_text(&payload);
        assert!(text.contains("more targets ("), "the overflow is summarised");
        assert!(text.contains(" more new") && text.contains(" more resolved"), "the diff is summarised");
        assert!(text.contains("more failed targets"), "failed targets are summarised");
    }

    // App mode: the summary and every reply of its thread inside the same limits; the
    // thread holds at most MAX_REPLIES replies, the summary counts the rest.
    let thread = slack::render_thread(&r, &d);
    assert_valid(&thread.summary, &MENTIONS);
    assert!(all_text(&thread.summary).contains("more targets: `kubectl get mc"), "the summary counts the rest");
    assert_eq!(thread.replies.len(), slack::MAX_REPLIES);
    for reply in &thread.replies {
        assert_valid(reply, &[]);
    }
}

/// 10,000 findings in one target as an app: one summary, one reply within Slack's
/// limits that says how many it leaves out.
#[test]
fn ten_thousand_findings_in_a_thread() {
    let mut findings: Vec<Finding> = (0..10_000)
        .map(|i| finding(Severity::Critical, "CrashLoopBackOff", &format!("prod/web-{i:05}"), "back-off restarting"))
        .collect();
    findings.truncate(200);
    let mut t = target("prod-eu", Area::Kubernetes, findings);
    t.counts = Default::default();
    t.counts.add(Severity::Critical, 10_000);
    let r = report(vec![t], RunDiff::default());
    let d = Digest { namespace: "ops", name: "prod-morning", time_zone: None, mentions: &[], origin: Origin::Cluster };
    let thread = slack::render_thread(&r, &d);
    assert_valid(&thread.summary, &[]);
    assert_eq!(thread.replies.len(), 1);
    assert_valid(&thread.replies[0], &[]);
    let reply = section_texts(&thread.replies[0]).join("\n");
    let shown = reply.lines().filter(|l| l.starts_with("• ")).count();
    assert!(shown > 5, "the thread shows more than the digest's five examples: {shown}");
    assert!(reply.contains(&format!("…and {} more", 10_000 - shown)), "{reply}");
}

#[test]
fn hostile_strings_are_escaped_and_bounded() {
    let f = finding(Severity::Critical, HOSTILE, HOSTILE, HOSTILE);
    let mut t = target(HOSTILE, Area::Kubernetes, vec![f.clone(), f]);
    t.scope = Some(HOSTILE.into());
    t.facts = BTreeMap::from([(HOSTILE.to_string(), 1)]);
    let mut failed = failed_target(HOSTILE, Area::Prometheus, ErrorTier::BadRequest, HOSTILE);
    failed.errors[0].scope = Some(HOSTILE.into());
    let r_ref = reference(HOSTILE, Severity::Critical, HOSTILE, HOSTILE);
    let diff = RunDiff {
        has_previous: true,
        new_total: 1,
        resolved_total: 1,
        new: vec![r_ref.clone()],
        resolved: vec![r_ref],
        ..RunDiff::default()
    };
    let mut r = report(vec![t, failed], diff);
    r.result = RunResult::Critical;
    r.run_id = HOSTILE.into();
    // Many areas with hostile names: at most 10 fields.
    r.areas =
        (0..25).map(|i| (format!("{HOSTILE}{i}"), Counts { total: 1, critical: 1, ..Counts::default() })).collect();
    let mentions = mentions();
    let d = Digest {
        namespace: HOSTILE,
        name: HOSTILE,
        time_zone: Some(HOSTILE),
        mentions: &mentions,
        origin: Origin::Cluster,
    };
    let payload = slack::render(&r, &d);
    assert_valid(&payload, &MENTIONS);
    let text = all_text(&payload);
    assert!(text.contains("&lt;!channel&gt;") && text.contains("&lt;@U123&gt;") && text.contains("a&amp;b"));
    assert!(!text.contains("<!channel>") && !text.contains("<@U123>"));
    assert_eq!(payload["blocks"][1]["fields"].as_array().unwrap().len(), MAX_FIELDS);
    // Newlines and control characters in user data never split a finding over lines.
    for s in section_texts(&payload) {
        for line in s.lines() {
            assert!(!line.starts_with("line"), "user newline leaked: {s:?}");
        }
    }
}

#[test]
fn empty_and_interrupted_runs_are_valid() {
    let mut r = report(Vec::new(), RunDiff::default());
    let payload = render(&r, &mentions());
    assert_valid(&payload, &[]);
    assert_eq!(section_texts(&payload), vec!["*No findings* in 0 targets".to_string()]);
    r.result = RunResult::Interrupted;
    r.duration_seconds = f64::NAN;
    let payload = render(&r, &mentions());
    assert_valid(&payload, &[]);
    assert!(all_text(&payload).contains("took ?"));
}

#[test]
fn long_unicode_is_cut_on_char_boundaries() {
    for unit in ["é", "🚀", "e\u{301}", "\u{5D0}", "👩‍👩‍👧", "&", "<"] {
        let name = unit.repeat(5000);
        let t = target(&name, Area::Aws, vec![finding(Severity::Warning, &name, &name, &name)]);
        let mut r = report(vec![t, failed_target(&name, Area::Aws, ErrorTier::Api, &name)], RunDiff::default());
        r.run_id = name.clone();
        let d = Digest { namespace: "ops", name: &name, time_zone: None, mentions: &[], origin: Origin::Cluster };
        let payload = slack::render(&r, &d);
        assert_valid(&payload, &[]);
        assert!(all_text(&payload).contains('…'), "cut text is marked");
    }
}

#[test]
fn oversized_mentions_are_dropped_whole_not_cut() {
    let mentions: Vec<String> = (0..10).map(|i| format!("<!subteam^S{}>", "9".repeat(40 + i))).collect();
    let allowed: Vec<&str> = mentions.iter().map(String::as_str).collect();
    let payload = render(&mixed_report(), &mentions);
    assert_valid(&payload, &allowed);
    let text = payload["text"].as_str().unwrap();
    assert!(text.contains(&mentions[0]));
    assert_eq!(text.matches("<!subteam^").count(), text.matches('>').count());
}

// ---------------------------------------------------------------------------------------
// Policy.

#[test]
fn notify_policy() {
    let healthy = healthy_report();
    let mixed = mixed_report();
    let digest = healthy.findings_digest.as_str();
    assert!(slack::should_notify(NotifyPolicy::Always, &healthy, Some(digest)));
    assert!(!slack::should_notify(NotifyPolicy::OnFindings, &healthy, None));
    assert!(slack::should_notify(NotifyPolicy::OnFindings, &mixed, Some(digest)));
    assert!(slack::should_notify(NotifyPolicy::OnFindings, &all_failed_report(), None));
    assert!(slack::should_notify(NotifyPolicy::OnChange, &healthy, None), "the first run notifies");
    assert!(!slack::should_notify(NotifyPolicy::OnChange, &mixed, Some(digest)));
    assert!(slack::should_notify(NotifyPolicy::OnChange, &mixed, Some("fedcba9876543210")));
}

// ---------------------------------------------------------------------------------------
// Delivery to a real local receiver.

const SECRET: &str = "XXsecretTOKENXX";

/// What the receiver answers to one POST.
#[derive(Clone)]
enum Reply {
    Status {
        code: u16,
        body: &'static str,
        retry_after: Option<&'static str>,
    },
    /// Read the request, then never answer.
    Hang,
}

fn status(code: u16, body: &'static str) -> Reply {
    Reply::Status { code, body, retry_after: None }
}

struct Received {
    at: std::time::Instant,
    path: String,
    content_type: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

struct Receiver {
    url: String,
    script: Arc<Script>,
}

impl Receiver {
    async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Script { replies: Mutex::new(replies.into()), ..Script::default() });
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url: webhook(addr), script }
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.script.received.lock().unwrap()
    }
}

fn webhook(addr: SocketAddr) -> String {
    format!("http://{addr}/services/T000/B000/{SECRET}")
}

async fn answer(State(script): State<Arc<Script>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(String::from);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let received = Received { at: std::time::Instant::now(), path: uri.path().to_string(), content_type, body };
    script.received.lock().unwrap().push(received);
    let reply = script.replies.lock().unwrap().pop_front().unwrap_or(status(500, "script exhausted"));
    match reply {
        Reply::Hang => std::future::pending().await,
        Reply::Status { code, body, retry_after } => {
            let mut r = Response::builder().status(StatusCode::from_u16(code).unwrap());
            if let Some(v) = retry_after {
                r = r.header("retry-after", v);
            }
            r.body(Body::from(body)).unwrap()
        }
    }
}

fn client() -> reqwest::Client {
    morningcheck::install_crypto_provider();
    slack::http_client()
}

fn in_secs(s: u64) -> Instant {
    Instant::now() + Duration::from_secs(s)
}

fn assert_no_secret(d: &slack::Delivery) {
    let m = d.message.as_deref().unwrap_or("");
    assert!(!m.contains(SECRET) && !m.contains("/services/"), "URL leaked: {m}");
}

#[tokio::test]
async fn delivers_the_payload() {
    let rx = Receiver::start(vec![status(200, "ok")]).await;
    let payload = render(&mixed_report(), &mentions());
    let d = slack::deliver(&client(), &rx.url, &payload, in_secs(10)).await;
    assert_eq!(d.outcome, Outcome::Delivered, "{:?}", d.message);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.message, None);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, payload);
    assert_eq!(got[0].path, format!("/services/T000/B000/{SECRET}"));
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after() {
    let rx = Receiver::start(vec![
        Reply::Status { code: 429, body: "rate_limited", retry_after: Some("1") },
        status(200, "ok"),
    ])
    .await;
    let started = std::time::Instant::now();
    let d = slack::deliver(&client(), &rx.url, &render(&healthy_report(), &[]), in_secs(20)).await;
    assert_eq!(d.outcome, Outcome::Delivered, "{:?}", d.message);
    assert_eq!(d.attempts, 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert!(got[1].at.duration_since(got[0].at) >= Duration::from_secs(1), "Retry-After honoured");
}

#[tokio::test]
async fn retry_after_past_the_deadline_gives_up() {
    let rx = Receiver::start(vec![Reply::Status { code: 429, body: "rate_limited", retry_after: Some("30") }]).await;
    let started = std::time::Instant::now();
    let d = slack::deliver(&client(), &rx.url, &render(&healthy_report(), &[]), in_secs(3)).await;
    assert_eq!(d.outcome, Outcome::Failed);
    assert_eq!(d.attempts, 1);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(d.message.as_deref(), Some("Slack answered HTTP 429: rate_limited"));
}

#[tokio::test]
async fn server_error_is_not_retried() {
    let rx = Receiver::start(vec![status(500, "internal_error"), status(200, "ok")]).await;
    let d = slack::deliver(&client(), &rx.url, &render(&healthy_report(), &[]), in_secs(10)).await;
    assert_eq!(d.outcome, Outcome::Failed);
    assert_eq!(d.attempts, 1);
    assert_eq!(rx.received().len(), 1);
    assert_eq!(d.message.as_deref(), Some("Slack answered HTTP 500: internal_error"));
    assert_no_secret(&d);
}

#[tokio::test]
async fn unavailable_is_retried() {
    let rx = Receiver::start(vec![status(503, "service unavailable"), status(200, "ok")]).await;
    let d = slack::deliver(&client(), &rx.url, &render(&healthy_report(), &[]), in_secs(10)).await;
    assert_eq!(d.outcome, Outcome::Delivered, "{:?}", d.message);
    assert_eq!(d.attempts, 2);
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test]
async fn hang_after_sending_is_unknown_and_not_repeated() {
    let rx = Receiver::start(vec![Reply::Hang, status(200, "ok")]).await;
    let started = std::time::Instant::now();
    let d = slack::deliver(&client(), &rx.url, &render(&healthy_report(), &[]), in_secs(2)).await;
    assert_eq!(d.outcome, Outcome::Unknown, "{:?}", d.message);
    assert_eq!(d.attempts, 1);
    assert!(started.elapsed() < Duration::from_millis(2500), "bounded by the deadline");
    assert_eq!(rx.received().len(), 1);
    assert!(d.message.as_deref().unwrap().contains("may have posted"));
    assert_no_secret(&d);
}

#[tokio::test]
async fn slack_errors_are_reported_verbatim() {
    for (code, body) in [
        (404, "no_service"),
        (400, "invalid_blocks"),
        (400, "invalid_payload"),
        (404, "channel_not_found"),
        (403, "action_prohibited"),
        (400, "no_text"),
    ] {
        let rx = Receiver::start(vec![status(code, body)]).await;
        let d = slack::deliver(&client(), &rx.url, &render(&healthy_report(), &[]), in_secs(10)).await;
        assert_eq!(d.outcome, Outcome::Failed);
        assert_eq!(d.attempts, 1);
        assert_eq!(d.message, Some(format!("Slack answered HTTP {code}: {body}")));
        assert_no_secret(&d);
    }
}

#[tokio::test]
async fn connection_refused_is_retried_then_fails() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let d = slack::deliver(&client(), &webhook(unused), &render(&healthy_report(), &[]), in_secs(20)).await;
    assert_eq!(d.outcome, Outcome::Failed);
    assert_eq!(d.attempts, slack::RETRY.attempts, "nothing was sent, so every attempt is made");
    let m = d.message.as_deref().unwrap();
    assert!(m.starts_with("could not connect to Slack"), "{m}");
    assert_no_secret(&d);
}

/// A peer that reads the whole request and closes without answering.
async fn drop_after_request(listener: tokio::net::TcpListener, accepted: Arc<Mutex<u32>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { return };
        *accepted.lock().unwrap() += 1;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = sock.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if request_complete(&buf) {
                break;
            }
        }
        let _ = sock.shutdown().await;
    }
}

fn request_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some(end) = text.find("\r\n\r\n") else { return false };
    let length = text[..end]
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
        .and_then(Result::ok)
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}

#[tokio::test]
async fn connection_dropped_after_sending_is_unknown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0));
    tokio::spawn(drop_after_request(listener, accepted.clone()));
    let d = slack::deliver(&client(), &webhook(addr), &render(&mixed_report(), &[]), in_secs(10)).await;
    assert_eq!(d.outcome, Outcome::Unknown, "{:?}", d.message);
    assert_eq!(d.attempts, 1);
    assert_eq!(*accepted.lock().unwrap(), 1, "not repeated");
    assert_no_secret(&d);
}

#[tokio::test]
async fn refuses_plain_http_to_a_remote_host_without_sending() {
    let url = format!("http://hooks.slack.com/services/T000/B000/{SECRET}");
    let d = slack::deliver(&client(), &url, &render(&healthy_report(), &[]), in_secs(5)).await;
    assert_eq!(d.outcome, Outcome::Failed);
    assert_eq!(d.attempts, 0);
    assert_no_secret(&d);
    assert!(slack::check_webhook_url(&url).unwrap_err().contains("https"));
}
