//! Pure schedule engine with CronJob semantics: next slot, the most recent due slot,
//! missed slots, the starting deadline and daylight-saving transitions.
//!
//! Nothing here reads a clock: `now` is always a parameter, so the controller injects
//! its clock and the tests walk through DST days without waiting.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// More missed slots than this are reported as "at least" (CronJob caps at 100 too).
pub const MISSED_CAP: u32 = 100;
/// Bound on civil-time steps when resolving one slot; only DST folds need more than one.
const MAX_STEPS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule {expr:?}: {reason}")]
    InvalidSchedule { expr: String, reason: String },
    #[error("invalid timeZone {name:?}: not an IANA time zone name")]
    InvalidTimeZone { name: String },
}

/// A parsed cron schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

impl Schedule {
    /// Parses a 5-field cron expression or an @-macro in an IANA time zone (UTC if unset).
    pub fn parse(expr: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidSchedule { expr: expr.to_string(), reason };
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err(invalid("the schedule is empty".into()));
        }
        if !trimmed.starts_with('@') {
            let fields = trimmed.split_whitespace().count();
            if fields != 5 {
                return Err(invalid(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
                )));
            }
        } else if !["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
            .contains(&trimmed.to_ascii_lowercase().as_str())
        {
            return Err(invalid("unknown macro; use @hourly, @daily, @weekly, @monthly or @yearly".into()));
        }
        let normalized = if trimmed.eq_ignore_ascii_case("@midnight") { "@daily" } else { trimmed };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(normalized)
            .map_err(|e| invalid(e.to_string()))?;
        let tz = match time_zone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| ScheduleError::InvalidTimeZone { name: name.to_string() })?,
        };
        let schedule = Self { cron, tz };
        // Cron slots repeat (at the latest every 28 years), so a schedule with no slot
        // after any instant never fires at all.
        if schedule.next_after(Timestamp::UNIX_EPOCH).is_none() {
            return Err(invalid("it never fires: no date matches all its fields (e.g. 31 February)".into()));
        }
        Ok(schedule)
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The first slot strictly after `after`.
    ///
    /// Slots are wall-clock times in the time zone. A slot inside a DST gap (the skipped
    /// hour) runs at the end of the gap; a slot inside a fold (the repeated hour) runs at
    /// its first occurrence only. Slots that land on the same instant run once.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let mut civil = after.to_zoned(self.tz.clone()).datetime();
        for _ in 0..MAX_STEPS {
            civil = self.cron.find_next_occurrence(&civil, false).ok()?;
            let at = self.resolve(civil)?;
            if at > after {
                return Some(at);
            }
        }
        None
    }

    /// The instant a wall-clock slot runs at.
    fn resolve(&self, civil: DateTime) -> Option<Timestamp> {
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
            // The earlier of the two instants: the slot runs in the first pass only.
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).ok(),
            // The slot does not exist; run at the first valid instant, the transition.
            AmbiguousOffset::Gap { after, .. } => {
                let just_before = after.to_timestamp(civil).ok()?;
                self.tz.following(just_before).next().map(|t| t.timestamp())
            }
        }
    }

    /// The most recent slot in `(since, now]`, and how many slots in that interval came
    /// before it (capped at [`MISSED_CAP`]).
    pub fn latest_due(&self, since: Timestamp, now: Timestamp) -> Option<Due> {
        let slot = self.latest_slot(since, now)?;
        let mut earlier = 0;
        let mut cursor = since;
        while earlier < MISSED_CAP {
            match self.next_after(cursor) {
                Some(t) if t < slot => {
                    earlier += 1;
                    cursor = t;
                }
                _ => break,
            }
        }
        Some(Due { slot, earlier_missed: earlier })
    }

    /// The last slot in `(since, now]`, searched in growing windows so a long downtime
    /// with a per-minute schedule costs a bounded number of steps.
    fn latest_slot(&self, since: Timestamp, now: Timestamp) -> Option<Timestamp> {
        const WINDOWS: [i64; 5] = [3_600, 86_400, 32 * 86_400, 367 * 86_400, 5 * 367 * 86_400];
        for window in WINDOWS {
            let start = since.max(now.checked_sub(SignedDuration::from_secs(window)).ok()?);
            let mut last = None;
            let mut cursor = start;
            while let Some(t) = self.next_after(cursor).filter(|t| *t <= now) {
                last = Some(t);
                cursor = t;
            }
            if last.is_some() || start == since {
                return last;
            }
        }
        None
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, None)
    }
}

/// A slot that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub slot: Timestamp,
    /// Older slots in the same interval that will not run (only the latest runs).
    pub earlier_missed: u32,
}

/// What the controller should do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Run this slot now.
    pub run: Option<Timestamp>,
    /// The latest slot was missed by more than the starting deadline: record, don't run.
    pub missed: Option<Timestamp>,
    /// Older slots skipped (only the most recent missed slot ever runs, as CronJob).
    pub skipped: u32,
    /// The next slot after `now`; the controller requeues exactly until then.
    pub next: Option<Timestamp>,
}

/// Inputs of [`plan`] taken from the object.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput {
    /// Slots at or before this were already handled (last scheduled, last missed, or the
    /// object's creation).
    pub cursor: Timestamp,
    pub now: Timestamp,
    pub starting_deadline_seconds: Option<i64>,
    pub suspend: bool,
}

/// Decides, as CronJob does, whether a slot is due now.
///
/// Slots that pass while suspended count as missed: after `suspend` is lifted, the most
/// recent one still runs if it is within the starting deadline.
pub fn plan(schedule: &Schedule, input: PlanInput) -> Plan {
    let next = schedule.next_after(input.now);
    if input.suspend {
        return Plan { next, ..Plan::default() };
    }
    let Some(due) = schedule.latest_due(input.cursor, input.now) else {
        return Plan { next, ..Plan::default() };
    };
    let late = input.now.duration_since(due.slot).as_secs();
    let too_late = input.starting_deadline_seconds.is_some_and(|d| late > d);
    Plan {
        run: (!too_late).then_some(due.slot),
        missed: too_late.then_some(due.slot),
        skipped: due.earlier_missed,
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn slots(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut t = ts(from);
        for _ in 0..n {
            t = s.next_after(t).unwrap();
            out.push(t.to_string());
        }
        out
    }

    #[test]
    fn parses_five_fields_and_macros() {
        for ok in
            ["* * * * *", "0 7 * * 1-5", "*/15 6-9 * * MON-FRI", "@daily", "@hourly", "@weekly", "@monthly", "@yearly"]
        {
            Schedule::parse(ok, None).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_expressions_with_reason() {
        let six = Schedule::parse("0 0 7 * * *", None).unwrap_err();
        assert!(six.to_string().contains("expected 5 fields"), "{six}");
        let junk = Schedule::parse("61 * * * *", None).unwrap_err();
        assert!(matches!(junk, ScheduleError::InvalidSchedule { .. }), "{junk}");
        let empty = Schedule::parse("  ", None).unwrap_err();
        assert!(empty.to_string().contains("empty"));
        let mac = Schedule::parse("@reboot", None).unwrap_err();
        assert!(mac.to_string().contains("unknown macro"));
        let never = Schedule::parse("0 0 31 2 *", None).unwrap_err();
        assert_eq!(
            never.to_string(),
            "invalid schedule \"0 0 31 2 *\": it never fires: no date matches all its fields (e.g. 31 February)"
        );
        Schedule::parse("0 0 29 2 *", None).expect("29 February comes every four years");
        let tz = Schedule::parse("@daily", Some("Mars/Olympus")).unwrap_err();
        assert_eq!(tz.to_string(), "invalid timeZone \"Mars/Olympus\": not an IANA time zone name");
    }

    #[test]
    fn daily_in_a_time_zone() {
        let s = Schedule::parse("0 7 * * *", Some("Europe/Berlin")).unwrap();
        // 07:00 CET is 06:00 UTC in winter.
        assert_eq!(slots(&s, "2026-01-10T12:00:00Z", 2), ["2026-01-11T06:00:00Z", "2026-01-12T06:00:00Z"]);
    }

    #[test]
    fn berlin_spring_forward_slot_in_gap_runs_once_at_gap_end() {
        // 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist.
        let s = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            slots(&s, "2026-03-28T12:00:00Z", 2),
            // 03:00 CEST = 01:00 UTC; the day after, 02:30 CEST = 00:30 UTC
            ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
        );
    }

    #[test]
    fn slots_collapsing_into_the_gap_end_run_once() {
        let s = Schedule::parse("*/30 * * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            slots(&s, "2026-03-29T00:15:00Z", 3),
            // 01:30 CET, then 02:00 and 02:30 (gap) and 03:00 all land on 03:00 CEST, then 03:30
            ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]
        );
    }

    #[test]
    fn berlin_fall_back_repeated_hour_runs_once() {
        // 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            slots(&s, "2026-10-24T12:00:00Z", 2),
            // first 02:30 (CEST, 00:30 UTC); the next day 02:30 CET = 01:30 UTC
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // Asking from inside the second pass does not produce the repeated slot again.
        assert_eq!(s.next_after(ts("2026-10-25T01:10:00Z")).unwrap(), ts("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn new_york_dst_days() {
        let s = Schedule::parse("30 2 * * *", Some("America/New_York")).unwrap();
        // 2026-03-08 spring forward at 02:00 EST -> 03:00 EDT (07:00 UTC).
        assert_eq!(s.next_after(ts("2026-03-08T05:00:00Z")).unwrap(), ts("2026-03-08T07:00:00Z"));
        // 2026-11-01 fall back at 02:00 EDT -> 01:00 EST; 02:30 exists once (EST), 01:30 twice.
        assert_eq!(s.next_after(ts("2026-11-01T04:00:00Z")).unwrap(), ts("2026-11-01T07:30:00Z"));
        let s = Schedule::parse("30 1 * * *", Some("America/New_York")).unwrap();
        assert_eq!(slots(&s, "2026-11-01T04:00:00Z", 2), ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]);
    }

    fn input(cursor: &str, now: &str, deadline: Option<i64>) -> PlanInput {
        PlanInput { cursor: ts(cursor), now: ts(now), starting_deadline_seconds: deadline, suspend: false }
    }

    #[test]
    fn nothing_due_requeues_until_next_slot() {
        let s = Schedule::parse("0 7 * * *", None).unwrap();
        let p = plan(&s, input("2026-11-24T07:00:00Z", "2026-11-24T08:00:00Z", None));
        assert_eq!(p, Plan { next: Some(ts("2026-11-25T07:00:00Z")), ..Plan::default() });
    }

    #[test]
    fn due_slot_within_deadline_runs() {
        let s = Schedule::parse("0 7 * * *", None).unwrap();
        let p = plan(&s, input("2026-11-23T07:00:00Z", "2026-11-24T07:00:30Z", Some(60)));
        assert_eq!(p.run, Some(ts("2026-11-24T07:00:00Z")));
        assert_eq!(p.missed, None);
        assert_eq!(p.skipped, 0);
    }

    #[test]
    fn slot_beyond_deadline_is_missed_not_run() {
        let s = Schedule::parse("0 7 * * *", None).unwrap();
        let p = plan(&s, input("2026-11-23T07:00:00Z", "2026-11-24T07:02:00Z", Some(60)));
        assert_eq!(p.run, None);
        assert_eq!(p.missed, Some(ts("2026-11-24T07:00:00Z")));
    }

    #[test]
    fn after_downtime_only_the_most_recent_slot_runs() {
        let s = Schedule::parse("0 * * * *", None).unwrap();
        let p = plan(&s, input("2026-11-24T01:00:00Z", "2026-11-24T05:10:00Z", None));
        assert_eq!(p.run, Some(ts("2026-11-24T05:00:00Z")));
        assert_eq!(p.skipped, 3); // 02:00, 03:00, 04:00
        assert_eq!(p.next, Some(ts("2026-11-24T06:00:00Z")));
    }

    #[test]
    fn missed_count_is_capped_after_long_downtime() {
        let s = Schedule::parse("* * * * *", None).unwrap();
        let p = plan(&s, input("2026-01-01T00:00:00Z", "2026-11-24T07:00:20Z", None));
        assert_eq!(p.run, Some(ts("2026-11-24T07:00:00Z")));
        assert_eq!(p.skipped, MISSED_CAP);
    }

    #[test]
    fn suspend_runs_nothing_but_still_shows_next() {
        let s = Schedule::parse("0 7 * * *", None).unwrap();
        let mut i = input("2026-11-23T07:00:00Z", "2026-11-24T07:00:10Z", None);
        i.suspend = true;
        assert_eq!(plan(&s, i), Plan { next: Some(ts("2026-11-25T07:00:00Z")), ..Plan::default() });
    }

    #[test]
    fn slot_exactly_at_cursor_is_not_run_again() {
        let s = Schedule::parse("0 7 * * *", None).unwrap();
        let p = plan(&s, input("2026-11-24T07:00:00Z", "2026-11-24T07:00:00Z", None));
        assert_eq!(p.run, None);
    }

    #[test]
    fn rare_schedule_found_after_long_gap() {
        let s = Schedule::parse("@yearly", None).unwrap();
        let p = plan(&s, input("2024-06-01T00:00:00Z", "2026-11-24T07:00:00Z", None));
        assert_eq!(p.run, Some(ts("2026-01-01T00:00:00Z")));
        assert_eq!(p.skipped, 1);
    }
}
