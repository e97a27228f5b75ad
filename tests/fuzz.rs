//! Property tests (fuzzing with shrinking): no input makes the manifest parser, the
//! validator, the schedule engine or the Slack renderer panic, and the renderer's output
//! stays inside Slack's limits for any report.

use morningcheck::api::{
    Area, Counts, ErrorTier, Finding, FindingRef, RunDiff, RunReport, RunResult, Severity, TargetError, TargetReport,
};
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
        let d = Digest { namespace: "ns", name: &name, time_zone: zone.as_deref(), mentions: &mentions };
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
                },
                ..RunReport::empty("r", t, t, t)
            }
        },
    )
}

#[test]
fn reports_round_trip_through_json() {
    let t: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
    let report =
        RunReport { check: Some("ns/a".into()), ..RunReport::empty("r", t, t, t + jiff::SignedDuration::from_secs(1)) };
    assert_eq!(report.duration_seconds, 1.0);
    let v: Value = serde_json::to_value(report).unwrap();
    let back: RunReport = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), v);
}
