//! Bounded collection of findings, grading, and the diff with the previous run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::known::{Known, KnownSet, TargetCounters, TargetKnown};
use super::snooze::Snoozes;
use crate::api::{
    Area, Counts, Finding, FindingRef, RunDiff, RunReport, RunResult, SCHEMA_VERSION, Severity, SnoozeSummary,
    SnoozedFinding, TargetError, TargetReport,
};

/// Findings named per list of the diff.
const DIFF_LIST_CAP: usize = 20;
/// Checks counted by name per target; the rest are summed under [`OTHER_CHECKS`].
const CHECKS_CAP: usize = 50;
pub const OTHER_CHECKS: &str = "(other checks)";

/// A target's counts per check, the [`CHECKS_CAP`] largest by name and the rest summed:
/// Event reasons are the cluster's to choose, so their number has no bound of its own.
fn bounded_checks(checks: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    if checks.len() <= CHECKS_CAP {
        return checks;
    }
    let mut by_count: Vec<(String, u64)> = checks.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest: u64 = by_count.iter().skip(CHECKS_CAP - 1).map(|(_, n)| n).sum();
    let mut kept: BTreeMap<String, u64> = by_count.into_iter().take(CHECKS_CAP - 1).collect();
    kept.insert(OTHER_CHECKS.to_string(), rest);
    kept
}

/// Keeps the `cap` most severe findings of a target and counts all of them, so memory
/// stays bounded however many objects are evaluated. Given what the previous run knew of
/// the target, it also keeps the most severe findings that are new, wherever they rank.
#[derive(Debug, Clone)]
pub struct FindingSink {
    cap: usize,
    area: Area,
    kept: Vec<Finding>,
    counts: Counts,
    /// Id and severity of every finding, for the diff and the digest (16 bytes a finding).
    ids: Vec<(u64, Severity)>,
    target: String,
    previous: Option<Arc<TargetKnown>>,
    /// The most severe findings the previous run did not have.
    fresh: Vec<Finding>,
    snoozes: Option<Arc<Snoozes>>,
    /// The most severe snoozed findings.
    snoozed: Vec<SnoozedFinding>,
    /// The counters the previous run read of this target, and those of this run.
    previous_counters: Option<Arc<TargetCounters>>,
    counters: Vec<(u64, u64)>,
    /// Every finding (snoozed ones aside) by check.
    checks: BTreeMap<String, u64>,
}

/// Counters a check reads from its objects (a container's restarts), remembered for the
/// next run, so a check can count what happened since the previous one.
pub trait Counters {
    /// Records `value` under `key` for the next run; returns the value the previous run
    /// recorded under it, if it did.
    fn since(&mut self, key: &str, value: u64) -> Option<u64>;

    /// Records under `key` the earliest of `now` and what the previous run recorded, and
    /// returns it: when a state was first seen, across runs.
    fn first_seen(&mut self, key: &str, now: u64) -> u64;
}

impl Counters for FindingSink {
    fn since(&mut self, key: &str, value: u64) -> Option<u64> {
        let id = finding_id(&self.target, key);
        self.counters.push((id, value));
        self.previous_counters.as_ref().and_then(|p| p.get(&id).copied())
    }

    fn first_seen(&mut self, key: &str, now: u64) -> u64 {
        let id = finding_id(&self.target, key);
        let first = self.previous_counters.as_ref().and_then(|p| p.get(&id).copied()).unwrap_or(now).min(now);
        self.counters.push((id, first));
        first
    }
}

impl FindingSink {
    pub fn new(target: &str, area: Area, cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            area,
            kept: Vec::new(),
            counts: Counts::default(),
            ids: Vec::new(),
            target: target.to_string(),
            previous: None,
            fresh: Vec::new(),
            snoozes: None,
            snoozed: Vec::new(),
            previous_counters: None,
            counters: Vec::new(),
            checks: BTreeMap::new(),
        }
    }

    /// Reads the counters the previous run recorded of this target.
    pub fn counting(mut self, previous: Option<Arc<TargetCounters>>) -> Self {
        self.previous_counters = previous;
        self
    }

    /// Compares with what the previous run knew of this target (`None`: nothing, so
    /// nothing is new).
    pub fn against(mut self, previous: Option<Arc<TargetKnown>>) -> Self {
        self.previous = previous;
        self
    }

    /// Applies the run's snoozes: a finding one covers is counted as snoozed, not kept.
    pub fn snoozing(mut self, snoozes: Option<Arc<Snoozes>>) -> Self {
        self.snoozes = snoozes;
        self
    }

    pub fn push(&mut self, f: Finding) {
        let id = finding_id(&self.target, &f.key);
        self.ids.push((id, f.severity));
        let snoozed = self.snoozes.as_deref().and_then(|s| s.find(&self.target, &f)).map(|m| SnoozedFinding {
            target: self.target.clone(),
            severity: f.severity,
            check: f.check.clone(),
            object: f.object.clone(),
            reason: m.reason.to_string(),
            until: Time(m.until),
        });
        if let Some(s) = snoozed {
            self.counts.total += 1;
            self.counts.snoozed += 1;
            self.snoozed.push(s);
            bound_snoozed(&mut self.snoozed);
            return;
        }
        self.counts.add(f.severity, 1);
        match self.checks.get_mut(&f.check) {
            Some(n) => *n += 1,
            None => {
                self.checks.insert(f.check.clone(), 1);
            }
        }
        if self.previous.as_ref().is_some_and(|p| !p.contains_key(&id)) {
            self.fresh.push(f.clone());
            bound(&mut self.fresh, DIFF_LIST_CAP, None);
        }
        self.kept.push(f);
        bound(&mut self.kept, self.cap, Some(self.area));
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
        bound(&mut self.kept, self.cap, Some(self.area));
        self.fresh.extend(other.fresh);
        bound(&mut self.fresh, DIFF_LIST_CAP, None);
        self.snoozed.extend(other.snoozed);
        bound_snoozed(&mut self.snoozed);
        self.counters.extend(other.counters);
        for (check, n) in other.checks {
            *self.checks.entry(check).or_default() += n;
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The kept findings (most severe first), the counts and every finding's id.
    pub fn into_parts(self) -> (Vec<Finding>, Counts, Vec<u64>) {
        let p = self.finish();
        (p.kept, p.counts, p.ids.into_iter().map(|(id, _)| id).collect())
    }

    fn finish(mut self) -> Parts {
        trim(&mut self.kept, self.cap, Some(self.area));
        trim(&mut self.fresh, DIFF_LIST_CAP, None);
        trim_snoozed(&mut self.snoozed);
        Parts {
            kept: self.kept,
            fresh: self.fresh,
            counts: self.counts,
            ids: self.ids,
            snoozed: self.snoozed,
            counters: self.counters,
            checks: self.checks,
        }
    }
}

fn bound_snoozed(s: &mut Vec<SnoozedFinding>) {
    if s.len() >= DIFF_LIST_CAP * 2 {
        trim_snoozed(s);
    }
}

fn trim_snoozed(s: &mut Vec<SnoozedFinding>) {
    s.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.object.cmp(&b.object)));
    s.truncate(DIFF_LIST_CAP);
}

/// A sink's contents, for the report.
struct Parts {
    kept: Vec<Finding>,
    fresh: Vec<Finding>,
    counts: Counts,
    ids: Vec<(u64, Severity)>,
    snoozed: Vec<SnoozedFinding>,
    counters: Vec<(u64, u64)>,
    checks: BTreeMap<String, u64>,
}

/// Trims once twice the cap is kept, so sorting is amortized over many pushes.
fn bound(findings: &mut Vec<Finding>, cap: usize, grouped: Option<Area>) {
    if findings.len() >= cap * 2 {
        trim(findings, cap, grouped);
    }
}

/// The most findings of one subject an entry keeps: its lead and the facts beside it.
const PER_ENTRY: usize = 4;

/// Keeps at most `cap` findings, an entry at a time. An entry is what one subject has
/// (`grouped` by the subjects of that area: a pod with its containers and Events), or a
/// single finding. Entries rank by their lead, their most severe finding: by severity,
/// and within a severity round-robin across checks, so every check shows one example
/// before any shows a second and a rare critical is never hidden behind a thousand
/// common ones. The kept findings come entry by entry, each entry's lead first.
fn trim(findings: &mut Vec<Finding>, cap: usize, grouped: Option<Area>) {
    let worst_first = |a: &Finding, b: &Finding| {
        b.severity.cmp(&a.severity).then_with(|| a.check.cmp(&b.check)).then_with(|| a.key.cmp(&b.key))
    };
    let mut by_subject: HashMap<String, Vec<Finding>> = HashMap::new();
    for f in findings.drain(..) {
        let subject = match grouped {
            Some(area) => super::subject(area, &f.object).into_owned(),
            None => f.key.clone(),
        };
        by_subject.entry(subject).or_default().push(f);
    }
    let mut entries: Vec<(String, Vec<Finding>)> = by_subject.into_iter().collect();
    for (_, e) in &mut entries {
        e.sort_by(worst_first);
        e.truncate(PER_ENTRY);
    }
    entries.sort_by(|(sa, a), (sb, b)| worst_first(&a[0], &b[0]).then_with(|| sa.cmp(sb)));
    let mut round = Vec::with_capacity(entries.len());
    for (i, (_, e)) in entries.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &entries[p].1[0]);
        let same = prev.is_some_and(|p| p.severity == e[0].severity && p.check == e[0].check);
        round.push(if same { round[i - 1] + 1 } else { 0usize });
    }
    let mut ranked: Vec<(usize, (String, Vec<Finding>))> = round.into_iter().zip(entries).collect();
    ranked.sort_by(|(ra, (sa, a)), (rb, (sb, b))| {
        let (a, b) = (&a[0], &b[0]);
        b.severity.cmp(&a.severity).then(ra.cmp(rb)).then_with(|| a.check.cmp(&b.check)).then_with(|| sa.cmp(sb))
    });
    for (_, (_, e)) in ranked {
        let room = cap - findings.len();
        if room == 0 {
            break;
        }
        // Whole entries only, but never none: a first entry larger than the cap is cut.
        if e.len() <= room || findings.is_empty() {
            findings.extend(e.into_iter().take(room));
        }
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
            sink: FindingSink::new(name, area, cap),
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

/// A short stable digest of a text, e.g. to name it where only `[0-9a-f]` may go.
pub fn digest_text(s: &str) -> String {
    format!("{:016x}", fnv1a(&[s]))
}

fn finding_id(target: &str, key: &str) -> u64 {
    fnv1a(&[target, key])
}

/// Digest of a set of findings with their severities: equal sets, equal digests, whatever
/// the order; a finding whose severity changed changes it.
pub fn digest_keys(ids: &[(u64, Severity)]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (id, severity) in sorted {
        for b in id.to_le_bytes().into_iter().chain([severity as u8]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
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
fn cap(p: &mut Parts, ceiling: Severity) {
    for f in p.kept.iter_mut().chain(p.fresh.iter_mut()) {
        f.severity = f.severity.min(ceiling);
    }
    for (_, s) in p.ids.iter_mut() {
        *s = (*s).min(ceiling);
    }
    let c = &mut p.counts;
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

/// A report of no targets: the start of every report, and what an interrupted run records.
pub fn empty_report(
    run_id: &str,
    slot: jiff::Timestamp,
    started_at: jiff::Timestamp,
    finished_at: jiff::Timestamp,
) -> RunReport {
    RunReport {
        schema_version: SCHEMA_VERSION.to_string(),
        check: None,
        run_id: run_id.to_string(),
        slot: Time(slot),
        started_at: Time(started_at),
        finished_at: Time(finished_at),
        duration_seconds: (finished_at.duration_since(started_at).as_millis().max(0) as f64) / 1000.0,
        result: RunResult::Healthy,
        incomplete: false,
        unchecked_targets: 0,
        counts: Counts::default(),
        areas: BTreeMap::new(),
        targets: Vec::new(),
        omitted_targets: 0,
        diff: RunDiff::default(),
        snoozes: SnoozeSummary::default(),
        findings_digest: digest_keys(&[]),
        attempt: 1,
    }
}

/// Builds the run report and the known set to remember for the next run's diff.
///
/// The run is graded by its most severe finding (info findings alone are `Healthy`);
/// targets with errors make it `incomplete`, and it is `Failed` only when every target
/// had errors and nothing above info was found.
pub fn build_report(
    meta: RunMeta,
    outcomes: Vec<TargetOutcome>,
    previous: &KnownSet,
    snoozes: &Snoozes,
) -> (RunReport, KnownSet) {
    let mut counts = Counts::default();
    let mut areas: BTreeMap<String, Counts> = BTreeMap::new();
    let mut all_ids = Vec::new();
    let mut targets = Vec::with_capacity(outcomes.len());
    let mut diff = Diff::new(&meta, previous);
    let mut unchecked = 0u32;
    let mut snoozed = Vec::new();
    let total = outcomes.len();
    for o in outcomes {
        let mut parts = o.sink.finish();
        snoozed.append(&mut parts.snoozed);
        cap(&mut parts, o.ceiling);
        let c = parts.counts;
        counts.merge(&c);
        areas.entry(o.area.as_str().to_string()).or_default().merge(&c);
        unchecked += u32::from(!o.errors.is_empty());
        diff.target(&o.name, &parts, o.errors.is_empty());
        all_ids.extend(parts.ids);
        targets.push(TargetReport {
            result: grade(&c, !o.errors.is_empty()),
            name: o.name,
            area: o.area,
            scope: o.scope,
            errors: o.errors,
            counts: c,
            facts: o.facts,
            checks: bounded_checks(parts.checks),
            findings: parts.kept,
            insecure: o.insecure,
        });
    }
    let (diff, known) = diff.finish();
    trim_snoozed(&mut snoozed);
    let snoozes =
        SnoozeSummary { findings: snoozed, expired: snoozes.expired.clone(), refused: snoozes.refused.clone() };
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
        snoozes,
        findings_digest: digest_keys(&all_ids),
        attempt: 1,
    };
    (report, known)
}

fn finding_ref(target: &str, f: &Finding, known: Option<&Known>) -> FindingRef {
    FindingRef {
        target: target.to_string(),
        severity: f.severity,
        check: f.check.clone(),
        object: f.object.clone(),
        runs: known.map(|k| k.runs),
        since: known.and_then(|k| jiff::Timestamp::from_second(k.since).ok()).map(Time),
    }
}

/// The diff with the previous run, target by target, and the next known set.
///
/// A target the previous runs checked is compared with the last run that checked it: a
/// finding it lacked is new; one it had is still failing, its streak one longer; one it
/// had that is gone is resolved, if this run could check the target. If it could not,
/// what is gone is unknown and stays known as it was, so the next run that checks the
/// target compares with the last that did. A target no run has checked has nothing new.
struct Diff<'a> {
    d: RunDiff,
    previous: &'a KnownSet,
    now: i64,
    next: KnownSet,
    /// The previous known set was cut, so this diff is not exact either.
    previous_cut: bool,
}

impl<'a> Diff<'a> {
    fn new(meta: &RunMeta, previous: &'a KnownSet) -> Self {
        Self {
            d: RunDiff { has_previous: !previous.is_empty(), ..RunDiff::default() },
            previous,
            now: meta.started_at.as_second(),
            next: KnownSet::taken(meta.started_at.as_second()),
            previous_cut: previous.truncated,
        }
    }

    fn target(&mut self, name: &str, p: &Parts, checked: bool) {
        let prev = self.previous.target(name);
        let prev = prev.as_deref();
        let kept: std::collections::HashMap<u64, &Finding> =
            p.kept.iter().chain(&p.fresh).map(|f| (finding_id(name, &f.key), f)).collect();
        let mut next = TargetKnown::with_capacity(p.ids.len());
        for &(id, severity) in &p.ids {
            if next.contains_key(&id) {
                continue;
            }
            let before = prev.and_then(|m| m.get(&id));
            let k = match before {
                Some(b) => {
                    self.d.still_failing_total += 1;
                    self.d.severity_changed_total += u64::from(b.severity != severity);
                    Known { since: b.since, runs: b.runs.saturating_add(1), severity, name: None }
                }
                None => {
                    self.d.new_total += u64::from(prev.is_some());
                    Known { since: self.now, runs: 1, severity, name: None }
                }
            };
            let name_of = kept.get(&id).map(|f| (f.check.clone(), f.object.clone()));
            if let Some(f) = kept.get(&id) {
                match before {
                    Some(_) => self.d.still_failing.push(finding_ref(name, f, Some(&k))),
                    None if prev.is_some() => self.d.new.push(finding_ref(name, f, None)),
                    None => {}
                }
            }
            let name_of = name_of.or_else(|| before.and_then(|b| b.name.clone()));
            next.insert(id, Known { name: name_of, ..k });
        }
        for (id, b) in prev.into_iter().flatten() {
            if next.contains_key(id) {
                continue;
            }
            if checked {
                self.d.resolved_total += 1;
                if let Some((check, object)) = &b.name {
                    self.d.resolved.push(FindingRef {
                        target: name.to_string(),
                        severity: b.severity,
                        check: check.clone(),
                        object: object.clone(),
                        runs: Some(b.runs),
                        since: jiff::Timestamp::from_second(b.since).ok().map(Time),
                    });
                }
            } else {
                self.d.unknown_total += 1;
                next.insert(*id, b.clone());
            }
        }
        // A target no run could check yet stays out: the next run has nothing to compare.
        if checked || prev.is_some() {
            self.next.insert(name.to_string(), next);
        }
        // Counters of a target that could not be read in full keep their last values.
        let mut counters: TargetCounters = match self.previous.counters(name) {
            Some(c) if !checked => (*c).clone(),
            _ => TargetCounters::new(),
        };
        counters.extend(p.counters.iter().copied());
        self.next.insert_counters(name.to_string(), counters);
    }

    fn finish(mut self) -> (RunDiff, KnownSet) {
        let d = &mut self.d;
        for list in [&mut d.new, &mut d.resolved, &mut d.still_failing] {
            list.sort_by(|a, b| {
                b.severity.cmp(&a.severity).then_with(|| b.runs.cmp(&a.runs)).then_with(|| a.object.cmp(&b.object))
            });
            list.truncate(DIFF_LIST_CAP);
        }
        self.next.bound();
        d.approximate = self.next.truncated || self.previous_cut;
        (self.d, self.next)
    }
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
        against(name, findings, &KnownSet::default())
    }

    /// A target's outcome as a collector makes it: its sink compares with `previous`.
    fn against(name: &str, findings: &[(Severity, &str)], previous: &KnownSet) -> TargetOutcome {
        let mut o = TargetOutcome::new(name, Area::Kubernetes, 2);
        o.sink = FindingSink::new(name, Area::Prometheus, 2).against(previous.target(name));
        for (s, obj) in findings {
            o.sink.push(finding(*s, "Check", *obj, "m", None));
        }
        o
    }

    fn report(meta: RunMeta, outcomes: Vec<TargetOutcome>, previous: &KnownSet) -> (RunReport, KnownSet) {
        build_report(meta, outcomes, previous, &Snoozes::default())
    }

    fn none() -> KnownSet {
        KnownSet::default()
    }

    fn down(name: &str) -> TargetOutcome {
        TargetOutcome::failed(
            name,
            Area::Kubernetes,
            TargetError { tier: ErrorTier::Unreachable, scope: None, message: "down".into() },
        )
    }

    #[test]
    fn sink_keeps_most_severe_and_counts_all() {
        let mut s = FindingSink::new("t", Area::Prometheus, 2);
        for i in 0..100 {
            let sev = if i == 50 { Severity::Critical } else { Severity::Info };
            s.push(finding(sev, "C", format!("o{i:03}"), "m", None));
        }
        s.push(finding(Severity::Warning, "C", "w", "m", None));
        let (kept, counts, ids) = s.into_parts();
        assert_eq!(kept.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["o050", "w"]);
        assert_eq!(counts, Counts { total: 101, critical: 1, warning: 1, info: 99, snoozed: 0 });
        assert_eq!(ids.len(), 101);
    }

    #[test]
    fn merged_sinks_keep_every_count_and_id_and_the_worst_findings() {
        let mut a = FindingSink::new("t", Area::Prometheus, 2);
        let mut b = FindingSink::new("t", Area::Prometheus, 2);
        for i in 0..50 {
            a.push(finding(Severity::Info, "C", format!("a{i:02}"), "m", None));
            b.push(finding(Severity::Warning, "C", format!("b{i:02}"), "m", None));
        }
        b.push(finding(Severity::Critical, "C", "z", "m", None));
        a.merge(b);
        let (kept, counts, ids) = a.into_parts();
        assert_eq!(kept.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["z", "b00"]);
        assert_eq!(counts, Counts { total: 101, critical: 1, warning: 50, info: 50, snoozed: 0 });
        assert_eq!(ids.len(), 101);
    }

    #[test]
    fn grades_by_worst_finding_and_failure() {
        let (r, _) = report(meta(), vec![outcome("a", &[(Severity::Info, "x")])], &none());
        assert_eq!(r.result, RunResult::Healthy);
        let (r, _) =
            report(meta(), vec![outcome("a", &[(Severity::Warning, "x"), (Severity::Critical, "y")])], &none());
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
        let (r, _) = report(meta(), vec![outcome("a", &[(Severity::Critical, "y")]), failed()], &none());
        assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Critical, true, 1));
        assert_eq!(r.targets[0].result, RunResult::Critical);
        assert_eq!(r.targets[1].result, RunResult::Failed);
        assert_eq!(r.areas["kubernetes"].critical, 1);
        // Healthy where it could look, incomplete where it could not.
        let (r, _) = report(meta(), vec![outcome("a", &[(Severity::Info, "x")]), failed()], &none());
        assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Healthy, true, 1));
        // Failed only when nothing could be checked.
        let (r, _) = report(meta(), vec![failed(), failed()], &none());
        assert_eq!((r.result, r.incomplete, r.unchecked_targets), (RunResult::Failed, true, 2));
        let (r, _) = report(meta(), vec![outcome("a", &[(Severity::Info, "x")])], &none());
        assert_eq!((r.incomplete, r.unchecked_targets), (false, 0));
    }

    /// A target marked `critical: false`: its critical findings count as warnings, so the
    /// run is Warning; the findings keep their keys (the diff is unaffected).
    #[test]
    fn a_non_critical_target_is_capped_at_warning() {
        let staging =
            outcome("staging", &[(Severity::Critical, "x"), (Severity::Warning, "y")]).capped(Severity::Warning);
        let (r, known) = report(meta(), vec![staging, outcome("prod", &[(Severity::Info, "z")])], &none());
        assert_eq!(r.result, RunResult::Warning);
        assert_eq!(r.counts, Counts { total: 3, critical: 0, warning: 2, info: 1, snoozed: 0 });
        assert_eq!(r.targets[0].result, RunResult::Warning);
        assert!(r.targets[0].findings.iter().all(|f| f.severity == Severity::Warning));
        assert!(known.target("staging").unwrap().values().all(|k| k.severity == Severity::Warning));
        let (prod, _) = report(meta(), vec![outcome("prod", &[(Severity::Critical, "x")])], &none());
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
            report(meta(), vec![outcome("a", &[(Severity::Critical, "x"), (Severity::Warning, "y")])], &none());
        assert!(!first.diff.has_previous);
        assert!(first.diff.new.is_empty());
        let (second, known2) = report(
            later(1),
            vec![against("a", &[(Severity::Critical, "x"), (Severity::Warning, "z")], &known1)],
            &known1,
        );
        let d = &second.diff;
        assert!(d.has_previous);
        assert_eq!((d.new_total, d.resolved_total, d.still_failing_total), (1, 1, 1));
        assert_eq!(d.new[0].object, "z");
        assert_eq!(d.resolved[0].object, "y");
        assert_eq!(d.still_failing[0].object, "x");
        assert_eq!(d.still_failing[0].runs, Some(2));
        let (third, _) = report(later(2), vec![against("a", &[(Severity::Critical, "x")], &known2)], &known2);
        let x = &third.diff.still_failing[0];
        assert_eq!(x.runs, Some(3));
        assert_eq!(x.since, Some(Time(meta().started_at)), "failing since the first run that saw it");
        assert_ne!(first.findings_digest, second.findings_digest);
    }

    /// The run `days` after `meta()`'s.
    fn later(days: i64) -> RunMeta {
        let m = meta();
        let by = jiff::SignedDuration::from_hours(24 * days);
        RunMeta { started_at: m.started_at + by, finished_at: m.finished_at + by, slot: m.slot + by, ..m }
    }

    /// 15,000 findings, far past what is kept per target; two new ones among them, the
    /// least severe of all: exactly 2 new, both named.
    #[test]
    fn exact_at_any_size_and_the_new_are_named_wherever_they_rank() {
        let names: Vec<String> = (0..15_000).map(|i| format!("ns/pod-{i:05}")).collect();
        let fleet: Vec<(Severity, &str)> = names.iter().map(|n| (Severity::Critical, n.as_str())).collect();
        let (_, known) = report(meta(), vec![outcome("prod", &fleet)], &none());
        assert_eq!(known.len(), 15_000);
        let known = KnownSet::decode(&known.encode()).unwrap();

        let mut next = fleet.clone();
        next.push((Severity::Warning, "apps/web-unavailable"));
        next.push((Severity::Info, "ns/new-crashloop"));
        let (r, _) = report(later(1), vec![against("prod", &next, &known)], &known);
        let d = &r.diff;
        assert_eq!((d.new_total, d.still_failing_total, d.resolved_total), (2, 15_000, 0));
        assert!(!d.approximate);
        let new: Vec<&str> = d.new.iter().map(|f| f.object.as_str()).collect();
        assert_eq!(new, ["apps/web-unavailable", "ns/new-crashloop"]);
        assert_eq!(r.targets[0].findings.len(), 2, "what is listed per target stays capped");
    }

    /// A target that could not be checked: its previous findings are unknown, not
    /// resolved; the next run that checks it compares with the last that did.
    #[test]
    fn a_failed_targets_findings_are_unknown_until_it_is_checked_again() {
        let (_, k1) = report(
            meta(),
            vec![outcome("a", &[(Severity::Critical, "x"), (Severity::Warning, "y")]), outcome("b", &[])],
            &none(),
        );
        let (r2, k2) = report(later(1), vec![down("a"), against("b", &[], &k1)], &k1);
        let d = &r2.diff;
        assert_eq!((d.new_total, d.resolved_total, d.still_failing_total, d.unknown_total), (0, 0, 0, 2));
        let (r3, _) =
            report(later(2), vec![against("a", &[(Severity::Critical, "x")], &k2), against("b", &[], &k2)], &k2);
        let d = &r3.diff;
        assert_eq!((d.new_total, d.resolved_total, d.still_failing_total, d.unknown_total), (0, 1, 1, 0));
        assert_eq!(d.resolved[0].object, "y");
        assert_eq!(d.still_failing[0].runs, Some(2), "the run that could not look does not count");
    }

    /// A target no run could check yet has nothing new; once checked, it has.
    #[test]
    fn a_target_first_checked_has_nothing_new() {
        let (_, k1) = report(meta(), vec![outcome("a", &[]), down("b")], &none());
        assert!(k1.target("b").is_none());
        let (r2, _) =
            report(later(1), vec![against("a", &[], &k1), against("b", &[(Severity::Critical, "x")], &k1)], &k1);
        assert_eq!(r2.diff.new_total, 0);
    }

    /// The same findings at another severity: still failing, counted as changed, and the
    /// digest (which `OnChange` compares) differs.
    #[test]
    fn a_severity_change_is_a_change() {
        let (r1, k1) = report(meta(), vec![outcome("a", &[(Severity::Warning, "x")])], &none());
        let (r2, _) = report(later(1), vec![against("a", &[(Severity::Critical, "x")], &k1)], &k1);
        assert_eq!((r2.diff.still_failing_total, r2.diff.severity_changed_total, r2.diff.new_total), (1, 1, 0));
        assert_ne!(r1.findings_digest, r2.findings_digest);
    }

    #[test]
    fn digest_ignores_order() {
        let (a, b, c) = ((1, Severity::Info), (2, Severity::Info), (3, Severity::Info));
        assert_eq!(digest_keys(&[a, b, c]), digest_keys(&[c, a, b, b]));
        assert_ne!(digest_keys(&[a, b]), digest_keys(&[a, c]));
    }

    #[test]
    fn same_key_in_two_targets_is_two_findings() {
        let (r, known) = report(
            meta(),
            vec![outcome("a", &[(Severity::Warning, "x")]), outcome("b", &[(Severity::Warning, "x")])],
            &none(),
        );
        assert_eq!(known.len(), 2);
        assert_ne!(known.target("a").unwrap().keys().next(), known.target("b").unwrap().keys().next());
        assert_eq!(r.counts.warning, 2);
    }

    /// A snoozed finding counts as snoozed, not toward the result; it is listed with its
    /// reason and end; it stays known, so it is not "new" when the snooze ends.
    #[test]
    fn a_snoozed_finding_is_counted_and_listed_but_never_graded() {
        use crate::api::Snooze;
        let now = meta().started_at;
        let spec = [Snooze {
            check: "Check".into(),
            object: "batch-*".into(),
            target: None,
            until: "2026-12-01".into(),
            reason: "OPS-42".into(),
        }];
        let snoozes = Arc::new(Snoozes::new(&spec, None, now, None));
        let mut o = TargetOutcome::new("a", Area::Kubernetes, 2);
        o.sink = FindingSink::new("a", Area::Prometheus, 2).snoozing(Some(snoozes.clone()));
        o.sink.push(finding(Severity::Critical, "Check", "batch-1", "m", None));
        o.sink.push(finding(Severity::Warning, "Check", "web", "m", None));
        let (r, known) = build_report(meta(), vec![o], &none(), &snoozes);
        assert_eq!(r.result, RunResult::Warning, "the snoozed critical does not count");
        assert_eq!((r.counts.total, r.counts.critical, r.counts.warning, r.counts.snoozed), (2, 0, 1, 1));
        let s = &r.snoozes.findings[0];
        assert_eq!((s.object.as_str(), s.severity, s.reason.as_str()), ("batch-1", Severity::Critical, "OPS-42"));
        assert!(r.targets[0].findings.iter().all(|f| f.object != "batch-1"));

        // The snooze over: the finding is back, still failing (not new), and said once.
        let later = later(10);
        let snoozes = Snoozes::new(&spec, None, later.started_at, Some(now));
        let o = against("a", &[(Severity::Critical, "batch-1"), (Severity::Warning, "web")], &known);
        let (r, _) = build_report(later, vec![o], &known, &snoozes);
        assert_eq!((r.result, r.diff.new_total, r.diff.still_failing_total), (RunResult::Critical, 0, 2));
        assert_eq!(r.snoozes.expired.len(), 1);
    }

    /// A thousand crashloops and three NotReady nodes, all critical: every check shows
    /// an example before any shows a second, and the counts per check are exact.
    #[test]
    fn kept_findings_cover_every_check_and_checks_are_counted() {
        let mut s = FindingSink::new("t", Area::Kubernetes, 5);
        for i in 0..1000 {
            s.push(finding(Severity::Critical, "CrashLoopBackOff", format!("ns/pod-{i:04}"), "m", None));
            if i % 400 == 0 {
                s.push(finding(Severity::Critical, "NodeNotReady", format!("node-{i}"), "m", None));
            }
        }
        s.push(finding(Severity::Warning, "DeploymentUnavailable", "ns/web", "m", None));
        let p = s.finish();
        let kept: Vec<(&str, &str)> = p.kept.iter().map(|f| (f.check.as_str(), f.object.as_str())).collect();
        assert_eq!(
            kept,
            [
                ("CrashLoopBackOff", "ns/pod-0000"),
                ("NodeNotReady", "node-0"),
                ("CrashLoopBackOff", "ns/pod-0001"),
                ("NodeNotReady", "node-400"),
                ("CrashLoopBackOff", "ns/pod-0002"),
            ]
        );
        let checks: Vec<(&str, u64)> = p.checks.iter().map(|(c, n)| (c.as_str(), *n)).collect();
        assert_eq!(checks, [("CrashLoopBackOff", 1000), ("DeploymentUnavailable", 1), ("NodeNotReady", 3)]);
    }

    /// A pod's crashloop, its restarts and its BackOff Event are one entry, its lead
    /// first; entries are kept whole, and a rare check still gets its example.
    #[test]
    fn one_pods_findings_are_one_entry() {
        let mut s = FindingSink::new("t", Area::Kubernetes, 6);
        for i in 0..50 {
            let pod = format!("ns/pod-{i:02}");
            s.push(finding(Severity::Warning, "EventBackOff", format!("ns/Pod/pod-{i:02}"), "m", None));
            s.push(finding(Severity::Warning, "HighRestarts", format!("{pod}/app"), "m", None));
            s.push(finding(Severity::Critical, "CrashLoopBackOff", format!("{pod}/app"), "m", None));
        }
        s.push(finding(Severity::Critical, "NodeNotReady", "node-1", "m", None));
        s.push(finding(Severity::Warning, "EventNodeNotReady", "default/Node/node-1", "m", None));
        let p = s.finish();
        let kept: Vec<(&str, &str)> = p.kept.iter().map(|f| (f.check.as_str(), f.object.as_str())).collect();
        assert_eq!(
            kept,
            [
                ("CrashLoopBackOff", "ns/pod-00/app"),
                ("EventBackOff", "ns/Pod/pod-00"),
                ("HighRestarts", "ns/pod-00/app"),
                ("NodeNotReady", "node-1"),
                ("EventNodeNotReady", "default/Node/node-1"),
            ],
            "the second pod's three findings don't fit in the one place left"
        );
        assert_eq!(p.counts.total, 152);
    }

    #[test]
    fn checks_per_target_are_bounded_and_keep_their_total() {
        let checks: BTreeMap<String, u64> = (0..500u64).map(|i| (format!("EventReason{i:03}"), i + 1)).collect();
        let total: u64 = checks.values().sum();
        let b = bounded_checks(checks);
        assert_eq!(b.len(), CHECKS_CAP);
        assert_eq!(b.values().sum::<u64>(), total);
        assert_eq!(b["EventReason499"], 500, "the largest keep their names");
        assert!(b[OTHER_CHECKS] > 0);
    }
}
