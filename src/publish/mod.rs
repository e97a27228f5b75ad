//! Outputs of a run: the Slack digest, and the text and JSON reports of `morningcheck run`.

pub mod slack;
pub mod text;

use std::collections::BTreeMap;

use crate::api::{Finding, FindingRef, RunReport, RunResult, TargetReport};

/// Our own bookkeeping among a target's facts (list requests, API pages): kept in the
/// JSON report and the metrics, never shown to a person.
pub fn operational(fact: &str) -> bool {
    fact.ends_with("ListRequests") || fact.ends_with("Pages")
}

/// A target's kept findings as entries, one per subject (a pod with its containers'
/// findings and its Events), lead first: the evaluation keeps them in this order, and
/// every output shows them so.
pub fn entries(t: &TargetReport) -> Vec<&[Finding]> {
    let same = |a: &Finding, b: &Finding| {
        crate::evaluate::subject(t.area, &a.object) == crate::evaluate::subject(t.area, &b.object)
    };
    t.findings.chunk_by(same).collect()
}

/// Findings of the diff grouped as entries too: one per target and subject, the most
/// severe first.
pub fn ref_entries<'a>(report: &RunReport, refs: &'a [FindingRef]) -> Vec<Vec<&'a FindingRef>> {
    let area = |target: &str| report.targets.iter().find(|t| t.name == target).map(|t| t.area);
    let mut sorted: Vec<&FindingRef> = refs.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut entries: Vec<(String, String, Vec<&FindingRef>)> = Vec::new();
    for f in sorted {
        let subject = match area(&f.target) {
            Some(a) => crate::evaluate::subject(a, &f.object).into_owned(),
            None => f.object.clone(),
        };
        match entries.iter_mut().find(|(t, s, _)| *t == f.target && *s == subject) {
            Some((_, _, e)) => e.push(f),
            None => entries.push((f.target.clone(), subject, vec![f])),
        }
    }
    entries.into_iter().map(|(_, _, e)| e).collect()
}

/// Whether a target has findings to show: any that are not snoozed.
pub fn has_findings(t: &TargetReport) -> bool {
    t.counts.total > t.counts.snoozed || !t.findings.is_empty()
}

/// Targets that have findings or could not be checked, and the healthy rest: the
/// healthy take one line in every output.
pub fn split_healthy(report: &RunReport) -> (Vec<&TargetReport>, Vec<&TargetReport>) {
    report.targets.iter().partition(|t| has_findings(t) || !t.errors.is_empty())
}

/// The checks of a target by how many findings each has, most first, e.g.
/// "CrashLoopBackOff 1,067 · ImagePullBackOff 1,001 · NodeNotReady 3".
pub fn checks_phrase(checks: &BTreeMap<String, u64>, max: usize) -> String {
    let mut by_count: Vec<(&String, &u64)> = checks.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut parts: Vec<String> = by_count.iter().take(max).map(|(c, n)| format!("{c} {}", thousands(**n))).collect();
    if by_count.len() > max {
        parts.push(format!("+{} more checks", by_count.len() - max));
    }
    parts.join(" · ")
}

/// 1067 → "1,067".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a run is missing besides its verdict, e.g. " · 1 target unchecked": how the
/// digest's header and the text report's first line show that some targets could not be
/// checked. Nothing when every target was, or when nothing was (the verdict says Failed).
pub fn unchecked_suffix(report: &RunReport) -> String {
    match report.unchecked_targets {
        0 => String::new(),
        _ if report.result == RunResult::Failed => String::new(),
        1 => " · 1 target unchecked".to_string(),
        n => format!(" · {n} targets unchecked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_read_most_first_with_thousands() {
        let checks = BTreeMap::from([
            ("NodeNotReady".to_string(), 3),
            ("CrashLoopBackOff".to_string(), 1067),
            ("ImagePullBackOff".to_string(), 1001),
        ]);
        assert_eq!(checks_phrase(&checks, 5), "CrashLoopBackOff 1,067 · ImagePullBackOff 1,001 · NodeNotReady 3");
        assert_eq!(checks_phrase(&checks, 1), "CrashLoopBackOff 1,067 · +2 more checks");
        assert_eq!(
            (thousands(0), thousands(999), thousands(1_000_000)),
            ("0".into(), "999".into(), "1,000,000".into())
        );
        assert!(operational("daemonsetsListRequests") && operational("describeInstanceStatusPages"));
        assert!(!operational("instancesRunning") && !operational("pods"));
    }
}
