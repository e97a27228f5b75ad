//! Property tests (fuzzing with shrinking): no input makes the manifest parser, the
//! validator, the schedule engine or the Slack renderer panic, and the renderer's output
//! stays inside Slack's limits for any report.

use morningcheck::api::{
    Area, Condition, Counts, ErrorTier, Finding, FindingRef, KnownFindingsRef, MorningCheckStatus, NotificationStatus,
    RunDiff, RunRecord, RunReport, RunResult, Severity, TargetError, TargetReport,
};
use morningcheck::controller::status::{STATUS_BUDGET, fit};
use morningcheck::publish::slack::{self, Digest};
use morningcheck::schedule::Schedule;
use proptest::prelude::*;
use serde_json::Value;

const MANIFEST: &str = "apiVersion: morningcheck.io/v1alpha1\nkind: MorningCheck\nmetadata:\n  name: a\nspec:\n  schedule: '0 7 * * *'\n  timeZone: Europe/Berlin\n  targets:\n    kubernetes:\n    - name: local\n      namespaces: {include: [a, b]}\n    prometheus:\n    - name: p\n      url: http://p:9090\n      queries: [{name: q, query: up, warning: 1}]\n";

/// Any text: arbitrary unicode, YAML punctuation, control characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        "[-:{}\\[\\],&*#?|<>=!%@`'\" \n\t0-9a-z]{0,300}",
        proptest::collection::vec(any::<char>(), 0..100).prop_map(|c| c.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parser_never_panics(input in text()) {
        let _ = morningcheck::cli::input::parse("fuzz.yaml", &input);
    }

    #[test]
    fn mutated_manifests_never_panic(pos in 0usize..MANIFEST.len(), insert in text(), cut in 0usize..40) {
        let mut m = MANIFEST.to_string();
        let pos = (0..=pos).rev().find(|p| m.is_char_boundary(*p)).unwrap_or(0);
        let end = (pos + cut).min(m.len());
        let end = (end..=m.len()).find(|p| m.is_char_boundary(*p)).unwrap_or(m.len());
        m.replace_range(pos..end, &insert);
        if let Ok(docs) = morningcheck::cli::input::parse("fuzz.yaml", &m) {
            for d in docs {
                let _ = morningcheck::validate::validate(&d.check.spec, "ns");
            }
        }
    }

    #[test]
    fn schedules_never_panic(expr in text(), zone in prop_oneof![Just(None), Just(Some("Europe/Berlin".to_string())), text().prop_map(Some)],
                             secs in 0i64..4_102_444_800) {
        if let Ok(s) = Schedule::parse(&expr, zone.as_deref()) {
            let t = jiff::Timestamp::from_second(secs).unwrap();
            if let Some(next) = s.next_after(t) {
                prop_assert!(next > t);
            }
        }
    }

    #[test]
    fn slack_digest_always_fits(report in report(), name in "[a-z0-9-]{1,253}", zone in prop_oneof![Just(None), text().prop_map(Some)],
                                mentions in proptest::collection::vec(text(), 0..3)) {
        let d = Digest { namespace: "ns", name: &name, time_zone: zone.as_deref(), mentions: &mentions, origin: morningcheck::publish::slack::Origin::Cluster };
        let payload = slack::render(&report, &d);
        let blocks = payload["blocks"].as_array().cloned().unwrap_or_default();
        prop_assert!(blocks.len() <= slack::MAX_BLOCKS);
        prop_assert!(serde_json::to_string(&payload).unwrap().chars().count() <= slack::MAX_PAYLOAD_CHARS + 2_000);
        for b in &blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                let max = if b["type"] == "header" { slack::MAX_HEADER_TEXT } else { slack::MAX_SECTION_TEXT };
                prop_assert!(t.chars().count() <= max, "{} chars in a {} block", t.chars().count(), b["type"]);
            }
            let fields = b["fields"].as_array().cloned().unwrap_or_default();
            prop_assert!(fields.len() <= slack::MAX_FIELDS);
            for f in fields {
                prop_assert!(f["text"].as_str().unwrap_or_default().chars().count() <= slack::MAX_FIELD_TEXT);
            }
        }
        prop_assert!(payload["text"].is_string());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the run produced and however long its texts (multi-byte on every byte
    /// boundary), the cut status fits the budget, keeps every total, and keeps the kept
    /// targets in their order.
    #[test]
    fn status_always_fits(status in status()) {
        let before = status.clone();
        let mut cut = status;
        fit(&mut cut);
        let size = serde_json::to_vec(&cut).unwrap().len();
        prop_assert!(size <= STATUS_BUDGET, "{size} bytes");
        let (Some(was), Some(run)) = (&before.last_run, &cut.last_run) else { return Ok(()) };
        prop_assert_eq!(run.counts, was.counts);
        prop_assert_eq!(
            (run.diff.new_total, run.diff.resolved_total, run.diff.still_failing_total),
            (was.diff.new_total, was.diff.resolved_total, was.diff.still_failing_total)
        );
        prop_assert_eq!(run.targets.len() + run.omitted_targets as usize, was.targets.len());
        let mut rest = was.targets.iter();
        for t in &run.targets {
            let original = rest.find(|o| o.name == t.name && o.counts == t.counts);
            prop_assert!(original.is_some(), "target {} is out of order or its counts changed", t.name);
            prop_assert_eq!(t.result, original.unwrap().result);
        }
        for (h, w) in cut.history.iter().zip(&before.history) {
            prop_assert_eq!(h, w);
        }
    }
}

/// Long text in every script: cuts at any byte fall inside multi-byte characters.
fn long_text() -> impl Strategy<Value = String> {
    (prop_oneof![Just("é"), Just("日本"), Just("🚨"), Just("a"), Just("ǅ̈")], 0usize..700, text())
        .prop_map(|(unit, n, tail)| format!("{}{tail}", unit.repeat(n)))
}

fn failing_target() -> impl Strategy<Value = TargetReport> {
    ("[a-z0-9]{1,63}", long_text(), 0u64..10).prop_map(|(name, message, n)| {
        let mut counts = Counts::default();
        counts.add(Severity::Critical, n);
        TargetReport {
            name,
            area: Area::Prometheus,
            scope: Some(message.clone()),
            result: if n > 0 { RunResult::Critical } else { RunResult::Failed },
            errors: vec![TargetError { tier: ErrorTier::Unreachable, scope: Some("q".into()), message }; 3],
            counts,
            facts: [("alerts".to_string(), n)].into(),
            checks: Default::default(),
            findings: vec![],
            insecure: false,
        }
    })
}

fn status() -> impl Strategy<Value = MorningCheckStatus> {
    let t: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
    (
        report(),
        proptest::collection::vec(failing_target(), 0..800),
        proptest::collection::vec(long_text(), 0..4),
        0usize..60,
        0usize..600,
        proptest::option::of(long_text()),
    )
        .prop_map(move |(mut run, failing, messages, history, known, notice)| {
            for f in failing {
                run.counts.merge(&f.counts);
                run.targets.push(f);
            }
            let conditions = messages
                .into_iter()
                .enumerate()
                .map(|(i, message)| Condition {
                    type_: format!("T{i}"),
                    status: "False".into(),
                    reason: "R".into(),
                    message,
                    last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t),
                    observed_generation: None,
                })
                .collect();
            let record = RunRecord {
                run_id: "scheduled-1".into(),
                slot: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t),
                result: run.result,
                counts: run.counts,
                duration_seconds: 1.0,
                failed_targets: 1,
            };
            let known_findings = (known > 0).then(|| KnownFindingsRef {
                config_map: format!("morningcheck-known-{}", "u".repeat(36)),
                run_id: format!("run-now-{}", "t".repeat(128)),
                findings: known as u64,
            });
            MorningCheckStatus {
                conditions,
                history: vec![record; history],
                known_findings,
                notification: notice.map(|m| NotificationStatus {
                    run_id: "r".into(),
                    outcome: morningcheck::api::NotificationOutcome::Failed,
                    message: Some(m),
                    time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t),
                    slack_message: None,
                    thread: None,
                }),
                last_run: Some(run),
                ..Default::default()
            }
        })
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![Just(Severity::Info), Just(Severity::Warning), Just(Severity::Critical)]
}

fn finding() -> impl Strategy<Value = Finding> {
    (severity(), text(), text(), text()).prop_map(|(severity, check, object, message)| Finding {
        key: format!("{check}/{object}"),
        severity,
        check,
        object,
        message,
        since: None,
    })
}

fn target() -> impl Strategy<Value = TargetReport> {
    (text(), proptest::collection::vec(finding(), 0..30), proptest::option::of(text()), 0u64..100_000).prop_map(
        |(name, findings, error, extra)| {
            let mut counts = Counts::default();
            findings.iter().for_each(|f| counts.add(f.severity, 1));
            counts.add(Severity::Warning, extra);
            TargetReport {
                name,
                area: Area::Kubernetes,
                scope: None,
                result: if error.is_some() { RunResult::Failed } else { RunResult::Warning },
                errors: error
                    .map(|m| TargetError { tier: ErrorTier::Api, scope: None, message: m })
                    .into_iter()
                    .collect(),
                counts,
                facts: Default::default(),
                checks: Default::default(),
                findings,
                insecure: false,
            }
        },
    )
}

fn report() -> impl Strategy<Value = RunReport> {
    (proptest::collection::vec(target(), 0..60), proptest::collection::vec((text(), severity()), 0..30)).prop_map(
        |(targets, changed)| {
            let t: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
            let mut counts = Counts::default();
            targets.iter().for_each(|x| counts.merge(&x.counts));
            let refs: Vec<FindingRef> = changed
                .into_iter()
                .map(|(object, severity)| FindingRef {
                    target: object.clone(),
                    severity,
                    check: "C".into(),
                    object,
                    runs: Some(2),
                    since: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t)),
                })
                .collect();
            RunReport {
                result: RunResult::Critical,
                counts,
                targets,
                diff: RunDiff {
                    has_previous: true,
                    new_total: refs.len() as u64,
                    resolved_total: refs.len() as u64,
                    still_failing_total: 0,
                    new: refs.clone(),
                    resolved: refs,
                    still_failing: vec![],
                    ..RunDiff::default()
                },
                ..morningcheck::evaluate::empty_report("r", t, t, t)
            }
        },
    )
}

#[test]
fn reports_round_trip_through_json() {
    let t: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
    let report = RunReport {
        check: Some("ns/a".into()),
        ..morningcheck::evaluate::empty_report("r", t, t, t + jiff::SignedDuration::from_secs(1))
    };
    assert_eq!(report.duration_seconds, 1.0);
    let v: Value = serde_json::to_value(report).unwrap();
    let back: RunReport = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), v);
}
