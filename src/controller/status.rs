//! Pure status bookkeeping: conditions, history, the interrupted-run record, and the
//! size budget that keeps the status small whatever the fleet.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ActiveRun, Condition, MorningCheckStatus, RunRecord, RunReport, RunResult};

pub const READY: &str = "Ready";
pub const HEALTHY: &str = "Healthy";
pub const NOTIFIED: &str = "Notified";
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
        failed_targets: report.targets.iter().filter(|t| !t.errors.is_empty()).count() as u32,
    }
}

/// The report of a run the controller stopped in the middle of (killed, lost its lease).
/// Its slot is not run again; the findings of the run before it stay known for the diff.
pub fn interrupted_report(active: &ActiveRun, now: Timestamp) -> RunReport {
    let started = active.started_at.0;
    RunReport {
        result: RunResult::Interrupted,
        ..RunReport::empty(&active.run_id, active.slot.0, started, now.max(started))
    }
}

fn size(status: &MorningCheckStatus) -> usize {
    serde_json::to_vec(status).map_or(usize::MAX, |v| v.len())
}

/// Cuts lists (findings per target, known findings, diff lists, history) until the
/// status fits the budget. Totals are never cut.
pub fn fit(status: &mut MorningCheckStatus) {
    let mut keep = 20usize;
    while size(status) > STATUS_BUDGET && keep > 0 {
        keep /= 2;
        if let Some(run) = &mut status.last_run {
            for t in &mut run.targets {
                t.findings.truncate(keep);
                for e in &mut t.errors {
                    e.message.truncate(1024);
                }
            }
            run.diff.new.truncate(keep);
            run.diff.resolved.truncate(keep);
            run.diff.still_failing.truncate(keep);
        }
        status.known_findings.truncate(keep * 10);
        status.history.truncate(keep.max(1));
    }
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
            trigger: "Schedule".into(),
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
            trigger: "Schedule".into(),
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
}
