//! Pure status bookkeeping: conditions, history, the interrupted-run record, and the
//! size budget that keeps the status small whatever the fleet.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ActiveRun, Condition, MorningCheckStatus, RunRecord, RunReport, RunResult};
use crate::clip::{Limit, clip_in_place};

pub const READY: &str = "Ready";
pub const HEALTHY: &str = "Healthy";
pub const NOTIFIED: &str = "Notified";
pub const COMPLETE: &str = "Complete";
pub const SCHEDULED: &str = "Scheduled";
/// The status is cut to stay below this many bytes of JSON (etcd allows 1.5 MiB).
pub const STATUS_BUDGET: usize = 60 * 1024;

/// A slot for a person, in the schedule's time zone: `2026-11-25 07:00 CET`.
pub fn display_time(t: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// Sets a condition; `lastTransitionTime` moves only when `status` changes. Returns
/// whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    now: Timestamp,
    generation: Option<i64>,
) -> bool {
    let status = if status { "True" } else { "False" }.to_string();
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let changed = c.status != status || c.reason != reason || c.message != message;
            if c.status != status {
                c.last_transition_time = Time(now);
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
            changed
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_string(),
                status,
                reason: reason.to_string(),
                message,
                last_transition_time: Time(now),
                observed_generation: generation,
            });
            true
        }
    }
}

pub fn condition<'a>(status: &'a MorningCheckStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// Adds a run to the front of the history, keeping `limit` entries.
pub fn push_history(status: &mut MorningCheckStatus, record: RunRecord, limit: i32) {
    status.history.insert(0, record);
    status.history.truncate(limit.max(0) as usize);
}

pub fn record_of(report: &RunReport) -> RunRecord {
    RunRecord {
        run_id: report.run_id.clone(),
        slot: report.slot.clone(),
        result: report.result,
        counts: report.counts,
        duration_seconds: report.duration_seconds,
        failed_targets: report.unchecked_targets,
    }
}

/// Attempts of one run, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long after a run-now was requested an interrupted attempt is still run again.
pub const RUN_NOW_RETRY_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// What becomes of a run the controller stopped in the middle of (killed, rolled out,
/// deposed). Its checks are read-only, and no digest of it was attempted (the record
/// of a post clears the run first), so running it again is safe.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Run it again, as the next attempt.
    Retry,
    /// Record it as interrupted: why it is not run again.
    GiveUp(String),
}

/// A scheduled slot is run again while inside `startingDeadlineSeconds` (when set) and
/// before the next slot; a run-now within [`RUN_NOW_RETRY_WINDOW`] of its request; either
/// for at most [`MAX_ATTEMPTS`] attempts.
pub fn recovery(
    active: &ActiveRun,
    starting_deadline: Option<i64>,
    next_slot: Option<Timestamp>,
    now: Timestamp,
) -> Recovery {
    if active.attempt >= MAX_ATTEMPTS {
        return Recovery::GiveUp(format!("after {} attempts", active.attempt));
    }
    let slot = active.slot.0;
    let closes = match active.trigger {
        crate::api::RunTrigger::RunNow => slot.checked_add(RUN_NOW_RETRY_WINDOW).ok(),
        crate::api::RunTrigger::Schedule => {
            let deadline = starting_deadline.and_then(|s| slot.checked_add(jiff::SignedDuration::from_secs(s)).ok());
            [deadline, next_slot].into_iter().flatten().min()
        }
    };
    match closes {
        Some(c) if now >= c => Recovery::GiveUp(format!("its window to run again closed at {c}")),
        _ => Recovery::Retry,
    }
}

/// The report of a run the controller stopped in the middle of, when it is not run
/// again. The findings of the run before it stay known for the diff.
pub fn interrupted_report(active: &ActiveRun, now: Timestamp) -> RunReport {
    let started = active.started_at.0;
    RunReport {
        result: RunResult::Interrupted,
        incomplete: true,
        attempt: active.attempt,
        ..crate::evaluate::empty_report(&active.run_id, active.slot.0, started, now.max(started))
    }
}

fn size(status: &MorningCheckStatus) -> usize {
    serde_json::to_vec(status).map_or(usize::MAX, |v| v.len())
}

/// The most a condition's or the notification's message holds, in bytes.
pub const MESSAGE_BYTES: usize = 1024;
/// What the cut keeps of a finding's object and message, in bytes.
const FINDING_TEXT_BYTES: usize = 512;

/// One cut: how much detail survives it. `fit` goes down this list until the status fits.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// At most this many findings per target, the most severe (they come sorted).
    Findings(usize),
    /// At most this many entries per diff list (`new`, `resolved`, `stillFailing`).
    DiffLists(usize),
    /// At most this many entries per snooze list (snoozed, expired, refused).
    Snoozes(usize),
    /// At most this many history lines.
    History(usize),
    /// Targets lose facts, scope, and all errors but the first, whose message is cut to
    /// this many bytes: what is left is name, area, result, tier and counts.
    TargetDetail(usize),
    /// Targets leave the list, the healthiest and last first, counted in `omittedTargets`.
    Targets,
}

/// The cuts in order: findings, diff lists, snooze lists, history, per-target detail,
/// then whole targets. Totals (`counts`, the diff's totals, history's counts) are never cut.
const CUTS: &[Cut] = &[
    Cut::Findings(10),
    Cut::Findings(5),
    Cut::Findings(2),
    Cut::Findings(1),
    Cut::Findings(0),
    Cut::DiffLists(10),
    Cut::DiffLists(5),
    Cut::DiffLists(1),
    Cut::DiffLists(0),
    Cut::Snoozes(5),
    Cut::Snoozes(0),
    Cut::History(5),
    Cut::History(1),
    Cut::TargetDetail(256),
    Cut::TargetDetail(64),
    Cut::TargetDetail(0),
    Cut::Targets,
];

/// Cuts the status until its JSON is at most [`STATUS_BUDGET`] bytes, in the order of
/// [`CUTS`]. Messages are bounded first, on char boundaries. Never panics.
pub fn fit(status: &mut MorningCheckStatus) {
    bound_text(status);
    for &cut in CUTS {
        let size = size(status);
        if size <= STATUS_BUDGET {
            return;
        }
        apply(status, cut, size);
    }
}

fn bound_text(status: &mut MorningCheckStatus) {
    for c in &mut status.conditions {
        clip_in_place(&mut c.message, Limit::Bytes(MESSAGE_BYTES));
    }
    if let Some(m) = status.notification.as_mut().and_then(|n| n.message.as_mut()) {
        clip_in_place(m, Limit::Bytes(MESSAGE_BYTES));
    }
    for t in status.last_run.iter_mut().flat_map(|r| &mut r.targets) {
        for e in &mut t.errors {
            clip_in_place(&mut e.message, Limit::Bytes(crate::errors::ERROR_MESSAGE_BYTES));
        }
        for f in &mut t.findings {
            clip_in_place(&mut f.object, Limit::Bytes(FINDING_TEXT_BYTES));
            clip_in_place(&mut f.message, Limit::Bytes(FINDING_TEXT_BYTES));
        }
    }
}

fn apply(status: &mut MorningCheckStatus, cut: Cut, size: usize) {
    if let Cut::History(n) = cut {
        status.history.truncate(n);
    }
    let Some(run) = &mut status.last_run else { return };
    match cut {
        Cut::Findings(n) => run.targets.iter_mut().for_each(|t| t.findings.truncate(n)),
        Cut::DiffLists(n) => {
            for list in [&mut run.diff.new, &mut run.diff.resolved, &mut run.diff.still_failing] {
                list.truncate(n);
            }
        }
        Cut::Snoozes(n) => {
            run.snoozes.findings.truncate(n);
            run.snoozes.expired.truncate(n);
            run.snoozes.refused.truncate(n);
        }
        Cut::TargetDetail(bytes) => {
            for t in &mut run.targets {
                t.facts.clear();
                t.checks.clear();
                t.scope = None;
                t.errors.truncate(1);
                for e in &mut t.errors {
                    e.scope = None;
                    clip_in_place(&mut e.message, Limit::Bytes(bytes));
                }
            }
        }
        Cut::Targets => omit_targets(run, size - STATUS_BUDGET),
        Cut::History(_) => {}
    }
}

/// Drops targets worth at least `excess` bytes of JSON: the healthiest first, the later
/// first among equals, so the list keeps the spec's order and the worst targets.
fn omit_targets(run: &mut crate::api::RunReport, excess: usize) {
    // Room for the `omittedTargets` field itself.
    let mut needed = excess + r#","omittedTargets":4294967295"#.len();
    let mut order: Vec<usize> = (0..run.targets.len()).collect();
    order.sort_by_key(|&i| (urgency(run.targets[i].result), std::cmp::Reverse(i)));
    let mut omit = vec![false; run.targets.len()];
    for i in order {
        if needed == 0 {
            break;
        }
        // The target's JSON and its comma.
        let bytes = serde_json::to_vec(&run.targets[i]).map_or(0, |v| v.len()) + 1;
        needed = needed.saturating_sub(bytes);
        omit[i] = true;
    }
    let mut i = 0;
    run.targets.retain(|_| {
        i += 1;
        !omit[i - 1]
    });
    run.omitted_targets += omit.iter().filter(|d| **d).count() as u32;
}

/// How much a target's verdict needs a person: the last to be cut. The digest's order.
fn urgency(result: RunResult) -> u8 {
    crate::evaluate::rank(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Area, Counts, Finding, Severity, TargetReport};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = Vec::new();
        assert!(set_condition(&mut c, READY, false, "InvalidSchedule", "bad", ts("2026-01-01T00:00:00Z"), Some(1)));
        assert!(!set_condition(&mut c, READY, false, "InvalidSchedule", "bad", ts("2026-01-02T00:00:00Z"), Some(1)));
        assert_eq!(c[0].last_transition_time.0, ts("2026-01-01T00:00:00Z"));
        assert!(set_condition(&mut c, READY, false, "InvalidTimeZone", "worse", ts("2026-01-03T00:00:00Z"), Some(2)));
        assert_eq!(c[0].last_transition_time.0, ts("2026-01-01T00:00:00Z"), "reason change is not a transition");
        assert!(set_condition(&mut c, READY, true, "Scheduled", "ok", ts("2026-01-04T00:00:00Z"), Some(3)));
        assert_eq!(c[0].last_transition_time.0, ts("2026-01-04T00:00:00Z"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn history_is_newest_first_and_capped() {
        let mut s = MorningCheckStatus::default();
        let active = ActiveRun {
            run_id: "a".into(),
            slot: Time(ts("2026-01-01T00:00:00Z")),
            started_at: Time(ts("2026-01-01T00:00:00Z")),
            trigger: crate::api::RunTrigger::Schedule,
            run_now_token: None,
            attempt: 1,
        };
        for i in 0..5 {
            let mut r = record_of(&interrupted_report(&active, ts("2026-01-01T00:00:10Z")));
            r.run_id = i.to_string();
            push_history(&mut s, r, 3);
        }
        assert_eq!(s.history.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["4", "3", "2"]);
        assert_eq!(s.history[0].result, RunResult::Interrupted);
        assert_eq!(s.history[0].duration_seconds, 10.0);
    }

    #[test]
    fn huge_status_is_cut_to_budget_keeping_totals() {
        let active = ActiveRun {
            run_id: "a".into(),
            slot: Time(ts("2026-01-01T00:00:00Z")),
            started_at: Time(ts("2026-01-01T00:00:00Z")),
            trigger: crate::api::RunTrigger::Schedule,
            run_now_token: None,
            attempt: 1,
        };
        let mut report = interrupted_report(&active, ts("2026-01-01T00:01:00Z"));
        for t in 0..100 {
            let findings: Vec<Finding> = (0..20)
                .map(|i| {
                    crate::evaluate::finding(
                        Severity::Critical,
                        "CrashLoopBackOff",
                        format!("ns-{t}/pod-{i}-{}", "x".repeat(100)),
                        "m".repeat(300),
                        None,
                    )
                })
                .collect();
            let mut counts = Counts::default();
            counts.add(Severity::Critical, 5000);
            report.targets.push(TargetReport {
                name: format!("t{t}"),
                area: Area::Kubernetes,
                scope: None,
                result: RunResult::Critical,
                errors: vec![],
                counts,
                facts: Default::default(),
                checks: Default::default(),
                findings,
                insecure: false,
            });
        }
        let mut s = MorningCheckStatus { last_run: Some(report), ..Default::default() };
        assert!(size(&s) > STATUS_BUDGET);
        fit(&mut s);
        assert!(size(&s) <= STATUS_BUDGET, "{}", size(&s));
        let run = s.last_run.unwrap();
        assert_eq!(run.targets.len(), 100);
        assert!(run.targets.iter().all(|t| t.counts.critical == 5000));
    }

    #[test]
    fn an_interrupted_run_is_retried_inside_its_window_up_to_three_attempts() {
        let active = |trigger, attempt| ActiveRun {
            run_id: "r".into(),
            slot: Time(ts("2026-01-01T07:00:00Z")),
            started_at: Time(ts("2026-01-01T07:00:00Z")),
            trigger,
            run_now_token: None,
            attempt,
        };
        let (sched, now_) = (crate::api::RunTrigger::Schedule, crate::api::RunTrigger::RunNow);
        let next = Some(ts("2026-01-02T07:00:00Z"));
        let at = ts("2026-01-01T07:05:00Z");
        assert_eq!(recovery(&active(sched, 1), None, next, at), Recovery::Retry);
        assert_eq!(recovery(&active(sched, 2), Some(600), next, at), Recovery::Retry);
        assert!(matches!(recovery(&active(sched, 3), None, next, at), Recovery::GiveUp(m) if m == "after 3 attempts"));
        assert!(
            matches!(recovery(&active(sched, 1), Some(60), next, at), Recovery::GiveUp(m) if m.contains("07:01:00"))
        );
        let tomorrow = ts("2026-01-02T07:00:01Z");
        assert!(
            matches!(recovery(&active(sched, 1), None, next, tomorrow), Recovery::GiveUp(_)),
            "not past the next slot"
        );
        assert_eq!(recovery(&active(now_, 1), Some(60), None, at), Recovery::Retry, "run-now ignores the deadline");
        assert!(matches!(recovery(&active(now_, 1), None, None, ts("2026-01-01T08:00:00Z")), Recovery::GiveUp(_)));
    }

    #[test]
    fn too_many_targets_keeps_the_worst_in_order_and_counts_the_rest() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let mut report = crate::evaluate::empty_report("r", t0, t0, t0);
        for i in 0..1200 {
            let result = if i % 100 == 7 { RunResult::Failed } else { RunResult::Healthy };
            report.targets.push(TargetReport {
                name: format!("{i:04}-{}", "n".repeat(58)),
                area: Area::Aws,
                scope: Some("é".repeat(500)),
                result,
                errors: vec![],
                counts: Counts::default(),
                facts: [("instances".to_string(), 3)].into(),
                checks: Default::default(),
                findings: vec![],
                insecure: false,
            });
        }
        let mut s = MorningCheckStatus { last_run: Some(report), ..Default::default() };
        fit(&mut s);
        assert!(size(&s) <= STATUS_BUDGET, "{}", size(&s));
        let run = s.last_run.unwrap();
        assert_eq!(run.targets.len() + run.omitted_targets as usize, 1200);
        assert!(run.omitted_targets > 0);
        let failed: Vec<&str> =
            run.targets.iter().filter(|t| t.result == RunResult::Failed).map(|t| &t.name[..4]).collect();
        assert_eq!(
            failed,
            ["0007", "0107", "0207", "0307", "0407", "0507", "0607", "0707", "0807", "0907", "1007", "1107"]
        );
        let names: Vec<&String> = run.targets.iter().map(|t| &t.name).collect();
        assert!(names.is_sorted(), "the spec's order is kept");
        assert!(run.targets.iter().all(|t| t.scope.is_none() && t.facts.is_empty()));
    }

    #[test]
    fn messages_are_bounded_on_char_boundaries() {
        let mut s = MorningCheckStatus::default();
        set_condition(&mut s.conditions, READY, false, "R", "日".repeat(5000), ts("2026-01-01T00:00:00Z"), None);
        fit(&mut s);
        let m = &s.conditions[0].message;
        assert!(m.len() <= MESSAGE_BYTES && m.ends_with('…'), "{}", m.len());
    }

    /// The most the schema lets snoozes say (100 of them, each field at its longest, all
    /// refused and all ended): the status still fits, and the count of snoozed findings
    /// is kept.
    #[test]
    fn the_longest_snoozes_fit() {
        use crate::api::{SnoozeRef, SnoozedFinding};
        let t = Time(ts("2026-01-01T00:00:00Z"));
        let r = SnoozeRef {
            check: "C".repeat(128),
            object: "ü".repeat(256),
            target: Some("t".repeat(128)),
            until: Some(t.clone()),
            reason: "r".repeat(256),
            note: Some("until is more than 90 days ahead; snooze for less and renew it".into()),
        };
        let f = SnoozedFinding {
            target: "t".repeat(63),
            severity: Severity::Critical,
            check: "C".repeat(128),
            object: "o".repeat(512),
            reason: "r".repeat(256),
            until: t.clone(),
        };
        let mut run = crate::evaluate::empty_report("r", t.0, t.0, t.0);
        run.counts.snoozed = 5000;
        run.snoozes.findings = vec![f; 20];
        run.snoozes.expired = vec![r.clone(); 100];
        run.snoozes.refused = vec![r; 100];
        let mut st = MorningCheckStatus { last_run: Some(run), ..Default::default() };
        fit(&mut st);
        assert!(serde_json::to_vec(&st).unwrap().len() <= STATUS_BUDGET);
        assert_eq!(st.last_run.unwrap().counts.snoozed, 5000);
    }
}
