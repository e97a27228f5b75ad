//! Bounded collection of findings, grading, and the diff with the previous run.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    Area, Counts, Finding, FindingRef, KnownFinding, RunDiff, RunReport, RunResult, Severity, TargetError, TargetReport,
};

/// The JSON schema version of [`RunReport`].
pub const SCHEMA_VERSION: &str = "morningcheck.io/v1alpha1";
/// Findings remembered for the next run's diff, most severe first.
pub const KNOWN_CAP: usize = 200;
/// Findings named per list of the diff.
const DIFF_LIST_CAP: usize = 20;

/// Keeps the `cap` most severe findings of a target and counts all of them, so memory
/// stays bounded however many objects are evaluated.
#[derive(Debug, Clone)]
pub struct FindingSink {
    cap: usize,
    kept: Vec<Finding>,
    counts: Counts,
    /// Hashes of every finding key, for the diff and the digest (8 bytes a finding).
    ids: Vec<u64>,
    target: String,
}

impl FindingSink {
    pub fn new(target: &str, cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            kept: Vec::new(),
            counts: Counts::default(),
            ids: Vec::new(),
            target: target.to_string(),
        }
    }

    pub fn push(&mut self, f: Finding) {
        self.counts.add(f.severity, 1);
        self.ids.push(finding_id(&self.target, &f.key));
        self.kept.push(f);
        self.bound();
    }

    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for f in findings {
            self.push(f);
        }
    }

    /// Takes in another sink of the same target: its counts and ids in full, its kept
    /// findings under this sink's cap.
    pub fn merge(&mut self, other: FindingSink) {
        self.counts.merge(&other.counts);
        self.ids.extend(other.ids);
        self.kept.extend(other.kept);
        self.bound();
    }

    /// Trims once twice the cap is kept, so sorting is amortized over many pushes.
    fn bound(&mut self) {
        if self.kept.len() >= self.cap * 2 {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.kept.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.key.cmp(&b.key)));
        self.kept.truncate(self.cap);
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The kept findings, most severe first.
    pub fn into_parts(mut self) -> (Vec<Finding>, Counts, Vec<u64>) {
        self.trim();
        (self.kept, self.counts, self.ids)
    }
}

/// What a collector hands to the evaluation: its findings and errors.
#[derive(Debug)]
pub struct TargetOutcome {
    pub name: String,
    pub area: Area,
    pub scope: Option<String>,
    pub errors: Vec<TargetError>,
    pub facts: BTreeMap<String, u64>,
    pub sink: FindingSink,
    pub insecure: bool,
    /// The most severe its findings may be: Warning for a target marked `critical: false`.
    pub ceiling: Severity,
}

impl TargetOutcome {
    pub fn new(name: &str, area: Area, cap: usize) -> Self {
        Self {
            name: name.to_string(),
            area,
            scope: None,
            errors: Vec::new(),
            facts: BTreeMap::new(),
            sink: FindingSink::new(name, cap),
            insecure: false,
            ceiling: Severity::Critical,
        }
    }

    /// Its findings capped at `ceiling`.
    pub fn capped(mut self, ceiling: Severity) -> Self {
        self.ceiling = ceiling;
        self
    }

    pub fn failed(name: &str, area: Area, error: TargetError) -> Self {
        let mut t = Self::new(name, area, 1);
        t.errors.push(error);
        t
    }
}

/// Stable 64-bit FNV-1a: the same on every machine and version, unlike std's hasher.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0x1f).wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn finding_id(target: &str, key: &str) -> u64 {
    fnv1a(&[target, key])
}

fn id_hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Digest of a set of finding ids: equal sets, equal digests, whatever the order.
pub fn digest_keys(ids: &[u64]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for id in sorted {
        for b in id.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    id_hex(h)
}

/// The verdict of a run or a target: its worst finding, whatever could not be checked;
/// `Failed` when nothing could be checked (every target had errors) and nothing worse
/// than info was found.
fn grade(counts: &Counts, checked_nothing: bool) -> RunResult {
    if counts.critical > 0 {
        RunResult::Critical
    } else if counts.warning > 0 {
        RunResult::Warning
    } else if checked_nothing {
        RunResult::Failed
    } else {
        RunResult::Healthy
    }
}

/// How bad a result is, worst highest: the one order of the digest, the text report and
/// the status's cuts. Severity first; a target that could not be checked ranks below a
/// critical one and above a warning.
pub fn rank(r: RunResult) -> u8 {
    match r {
        RunResult::Critical => 4,
        RunResult::Failed => 3,
        RunResult::Warning => 2,
        RunResult::Interrupted => 1,
        RunResult::Healthy => 0,
    }
}

/// Lowers findings above `ceiling` to it, and moves their counts along.
fn cap(findings: &mut [Finding], c: &mut Counts, ceiling: Severity) {
    for f in findings.iter_mut() {
        f.severity = f.severity.min(ceiling);
    }
    if ceiling < Severity::Critical {
        c.warning += std::mem::take(&mut c.critical);
    }
    if ceiling < Severity::Warning {
        c.info += std::mem::take(&mut c.warning);
    }
}

/// Identity of a run.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub run_id: String,
    pub slot: jiff::Timestamp,
    pub started_at: jiff::Timestamp,
    pub finished_at: jiff::Timestamp,
}

/// Builds the run report and the findings to remember for the next run's diff.
///
/// The run is graded by its most severe finding (info findings alone are `Healthy`);
/// targets with errors make it `incomplete`, and it is `Failed` only when every target
/// had errors and nothing above info was found.
pub fn build_report(
    meta: RunMeta,
    outcomes: Vec<TargetOutcome>,
    previous: Option<&[KnownFinding]>,
) -> (RunReport, Vec<KnownFinding>) {
    let mut counts = Counts::default();
    let mut areas: BTreeMap<String, Counts> = BTreeMap::new();
    let mut all_ids = Vec::new();
    let mut targets = Vec::with_capacity(outcomes.len());
    let mut unchecked = 0u32;
    let total = outcomes.len();
    for o in outcomes {
        let (mut findings, mut c, ids) = o.sink.into_parts();
        cap(&mut findings, &mut c, o.ceiling);
        counts.merge(&c);
        areas.entry(o.area.as_str().to_string()).or_default().merge(&c);
        all_ids.extend(ids);
        unchecked += u32::from(!o.errors.is_empty());
        targets.push(TargetReport {
            result: grade(&c, !o.errors.is_empty()),
            name: o.name,
            area: o.area,
            scope: o.scope,
            errors: o.errors,
            counts: c,
            facts: o.facts,
            findings,
            insecure: o.insecure,
        });
    }
    let (diff, known) = diff(&targets, &all_ids, previous);
    let report = RunReport {
        schema_version: SCHEMA_VERSION.to_string(),
        check: None,
        run_id: meta.run_id,
        slot: Time(meta.slot),
        started_at: Time(meta.started_at),
        finished_at: Time(meta.finished_at),
        duration_seconds: (meta.finished_at.duration_since(meta.started_at).as_millis() as f64) / 1000.0,
        result: grade(&counts, total > 0 && unchecked as usize == total),
        incomplete: unchecked > 0,
        unchecked_targets: unchecked,
        counts,
        areas,
        targets,
        omitted_targets: 0,
        diff,
        findings_digest: digest_keys(&all_ids),
        attempt: 1,
    };
    (report, known)
}

fn finding_ref(target: &str, f: &Finding, runs: Option<u32>) -> FindingRef {
    FindingRef {
        target: target.to_string(),
        severity: f.severity,
        check: f.check.clone(),
        object: f.object.clone(),
        runs,
    }
}

fn diff(targets: &[TargetReport], all_ids: &[u64], previous: Option<&[KnownFinding]>) -> (RunDiff, Vec<KnownFinding>) {
    let prev: HashMap<&str, &KnownFinding> = previous.unwrap_or_default().iter().map(|k| (k.id.as_str(), k)).collect();
    let current: HashSet<String> = all_ids.iter().map(|id| id_hex(*id)).collect();
    let mut d = RunDiff { has_previous: previous.is_some(), ..RunDiff::default() };

    d.new_total = current.iter().filter(|id| !prev.contains_key(id.as_str())).count() as u64;
    d.still_failing_total = current.len() as u64 - d.new_total;
    let mut known = Vec::new();
    for t in targets {
        for f in &t.findings {
            let id = id_hex(finding_id(&t.name, &f.key));
            let runs = prev.get(id.as_str()).map_or(1, |k| k.runs.saturating_add(1));
            if runs == 1 {
                d.new.push(finding_ref(&t.name, f, None));
            } else {
                d.still_failing.push(finding_ref(&t.name, f, Some(runs)));
            }
            known.push(KnownFinding {
                id,
                runs,
                target: t.name.clone(),
                severity: f.severity,
                check: f.check.clone(),
                object: f.object.clone(),
            });
        }
    }
    for k in previous.unwrap_or_default() {
        if !current.contains(&k.id) {
            d.resolved_total += 1;
            d.resolved.push(FindingRef {
                target: k.target.clone(),
                severity: k.severity,
                check: k.check.clone(),
                object: k.object.clone(),
                runs: Some(k.runs),
            });
        }
    }
    if !d.has_previous {
        // Nothing to compare with: nothing is "new" in the morning sense.
        d.new.clear();
        d.new_total = 0;
    }
    for list in [&mut d.new, &mut d.resolved, &mut d.still_failing] {
        list.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.object.cmp(&b.object)));
        list.truncate(DIFF_LIST_CAP);
    }
    known.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| b.runs.cmp(&a.runs)).then_with(|| a.id.cmp(&b.id)));
    known.truncate(KNOWN_CAP);
    (d, known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ErrorTier, Severity};
    use crate::evaluate::finding;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn meta() -> RunMeta {
        RunMeta {
            run_id: "r1".into(),
            slot: ts("2026-11-24T07:00:00Z"),
            started_at: ts("2026-11-24T07:00:01Z"),
            finished_at: ts("2026-11-24T07:00:03.5Z"),
        }
    }

    fn outcome(name: &str, findings: &[(Severity, &str)]) -> TargetOutcome {
        let mut o = TargetOutcome::new(name, Area::Kubernetes, 2);
        for (s, obj) in findings {
            o.sink.push(finding(*s, "Check", *obj, "m", None));
        }
        o
    }

    #[test]
    fn sink_keeps_most_severe_and_counts_all() {
        let mut s = FindingSink::new("t", 2);
        for i in 0..100 {
            let sev = if i == 50 { Severity::Critical } else { Severity::Info };
            s.push(finding(sev, "C", format!("o{i:03}"), "m", None));
        }
        s.push(finding(Severity::Warning, "C", "w", "m", None));
        let (kept, counts, ids) = s.into_parts();
        assert_eq!(kept.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["o050", "w"]);
        assert_eq!(counts, Counts { total: 101, critical: 1, warning: 1, info: 99 });
        assert_eq!(ids.len(), 101);
    }

    #[test]
    fn merged_sinks_keep_every_count_and_id_and_the_worst_findings() {
        let mut a = FindingSink::new("t", 2);
        let mut b = FindingSink::new("t", 2);
        for i in 0..50 {
            a.push(finding(Severity::Info, "C", format!("a{i:02}"), "m", None));
            b.push(finding(Severity::Warning, "C", format!("b{i:02}"), "m", None));
        }
        b.push(finding(Severity::Critical, "C", "z", "m", None));
        a.merge(b);
        let (kept, counts, ids) = a.into_parts();
        assert_eq!(kept.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["z", "b00"]);
        assert_eq!(counts, Counts { total: 101, critical: 1, warning: 50, info: 50 });
        assert_eq!(ids.len(), 101);
    }

    #[test]
    fn grades_by_worst_finding_and_failure() {
        let (r, _) = build_report(meta(), vec![outcome("a", &[(Severity::Info, "x")])], None);
        assert_eq!(r.result, RunResult::Healthy);
        let (r, _) =
            build_report(meta(), vec![outcome("a", &[(Severity::Warning, "x"), (Severity::Critical, "y")])], None);
        assert_eq!(r.result, RunResult::Critical);
        assert_eq!(r.counts.total, 2);
        assert_eq!(r.duration_seconds, 2.5);
        let failed = || {
            TargetOutcome::failed(
                "b",
                Area::Aws,
                TargetError { tier: ErrorTier::Unreachable, scope: None, message: "down".into() },
            )
        };
        // A target that could not be checked never hides the critical finding of another:
        // the run is Critical, and incomplete.
        let (r, _) = build_report(meta(), vec![outcome("a", &[(Severity::Critical, "y")]), failed()], None);
        assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Critical, true, 1));
        assert_eq!(r.targets[0].result, RunResult::Critical);
        assert_eq!(r.targets[1].result, RunResult::Failed);
        assert_eq!(r.areas["kubernetes"].critical, 1);
        // Healthy where it could look, incomplete where it could not.
        let (r, _) = build_report(meta(), vec![outcome("a", &[(Severity::Info, "x")]), failed()], None);
        assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Healthy, true, 1));
        // Failed only when nothing could be checked.
        let (r, _) = build_report(meta(), vec![failed(), failed()], None);
        assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Failed, true, 2));
        let (r, _) = build_report(meta(), vec![outcome("a", &[(Severity::Info, "x")])], None);
        assert_eq!((r.incomplete, r.unchecked_targets), (false, 0));
    }

    /// A target marked `critical: false`: its critical findings count as warnings, so the
    /// run is Warning; the findings keep their keys (the diff is unaffected).
    #[test]
    fn a_non_critical_target_is_capped_at_warning() {
        let staging =
            outcome("staging", &[(Severity::Critical, "x"), (Severity::Warning, "y")]).capped(Severity::Warning);
        let (r, known) = build_report(meta(), vec![staging, outcome("prod", &[(Severity::Info, "z")])], None);
        assert_eq!(r.result, RunResult::Warning);
        assert_eq!(r.counts, Counts { total: 3, critical: 0, warning: 2, info: 1 });
        assert_eq!(r.targets[0].result, RunResult::Warning);
        assert!(r.targets[0].findings.iter().all(|f| f.severity == Severity::Warning));
        assert!(known.iter().all(|k| k.severity != Severity::Critical));
        let (prod, _) = build_report(meta(), vec![outcome("prod", &[(Severity::Critical, "x")])], None);
        assert_eq!(prod.result, RunResult::Critical, "the default: findings may be Critical");
    }

    #[test]
    fn one_rank_worst_first() {
        let mut all =
            [RunResult::Healthy, RunResult::Failed, RunResult::Interrupted, RunResult::Critical, RunResult::Warning];
        all.sort_by_key(|r| std::cmp::Reverse(rank(*r)));
        assert_eq!(
            all,
            [RunResult::Critical, RunResult::Failed, RunResult::Warning, RunResult::Interrupted, RunResult::Healthy]
        );
    }

    #[test]
    fn diff_tells_new_resolved_and_streaks() {
        let (first, known1) =
            build_report(meta(), vec![outcome("a", &[(Severity::Critical, "x"), (Severity::Warning, "y")])], None);
        assert!(!first.diff.has_previous);
        assert!(first.diff.new.is_empty());
        let (second, known2) = build_report(
            meta(),
            vec![outcome("a", &[(Severity::Critical, "x"), (Severity::Warning, "z")])],
            Some(&known1),
        );
        let d = &second.diff;
        assert!(d.has_previous);
        assert_eq!((d.new_total, d.resolved_total, d.still_failing_total), (1, 1, 1));
        assert_eq!(d.new[0].object, "z");
        assert_eq!(d.resolved[0].object, "y");
        assert_eq!(d.still_failing[0].object, "x");
        assert_eq!(d.still_failing[0].runs, Some(2));
        let (third, _) = build_report(meta(), vec![outcome("a", &[(Severity::Critical, "x")])], Some(&known2));
        assert_eq!(third.diff.still_failing[0].runs, Some(3));
        assert_ne!(first.findings_digest, second.findings_digest);
    }

    #[test]
    fn digest_ignores_order() {
        assert_eq!(digest_keys(&[1, 2, 3]), digest_keys(&[3, 1, 2, 2]));
        assert_ne!(digest_keys(&[1, 2]), digest_keys(&[1, 3]));
    }

    #[test]
    fn same_key_in_two_targets_is_two_findings() {
        let (r, known) = build_report(
            meta(),
            vec![outcome("a", &[(Severity::Warning, "x")]), outcome("b", &[(Severity::Warning, "x")])],
            None,
        );
        assert_eq!(known.len(), 2);
        assert_ne!(known[0].id, known[1].id);
        assert_eq!(r.counts.warning, 2);
    }
}
