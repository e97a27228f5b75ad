//! Snoozes: findings someone already knows about, until a date. Pure: the spec's snoozes,
//! the run's time and the previous run's in; which apply, which just ended and which are
//! refused out.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use wildmatch::WildMatch;

use crate::api::{Finding, MAX_SNOOZE_DAYS, Snooze, SnoozeRef};

/// A snooze that applies to this run.
#[derive(Debug)]
struct Active {
    check: WildMatch,
    object: WildMatch,
    target: Option<WildMatch>,
    until: Timestamp,
    reason: String,
}

/// The snoozes of a run, ready to match findings.
#[derive(Debug, Default)]
pub struct Snoozes {
    active: Vec<Active>,
    /// Snoozes that ended since the previous run, said once.
    pub expired: Vec<SnoozeRef>,
    /// Snoozes not applied: past the horizon, or an `until` that is no time.
    pub refused: Vec<SnoozeRef>,
}

/// What a matching snooze says of a finding: why, and until when.
pub struct Match<'a> {
    pub reason: &'a str,
    pub until: Timestamp,
}

impl Snoozes {
    /// Sorts the spec's snoozes at `now`; `previous` is when the previous run started.
    pub fn new(spec: &[Snooze], zone: Option<&str>, now: Timestamp, previous: Option<Timestamp>) -> Self {
        let tz = zone.and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC);
        let horizon = now + SignedDuration::from_hours(24 * MAX_SNOOZE_DAYS);
        let mut out = Snoozes::default();
        for s in spec {
            let r = |until: Option<Timestamp>, note: Option<String>| SnoozeRef {
                check: s.check.clone(),
                object: s.object.clone(),
                target: s.target.clone(),
                until: until.map(Time),
                reason: s.reason.clone(),
                note,
            };
            let Some(until) = parse_until(&s.until, &tz) else {
                out.refused.push(r(None, Some(format!("until {:?} is neither a date nor an RFC 3339 time", s.until))));
                continue;
            };
            if until > horizon {
                let note = format!("until is more than {MAX_SNOOZE_DAYS} days ahead; snooze for less and renew it");
                out.refused.push(r(Some(until), Some(note)));
            } else if until > now {
                out.active.push(Active {
                    check: WildMatch::new(&s.check),
                    object: WildMatch::new(&s.object),
                    target: s.target.as_deref().map(WildMatch::new),
                    until,
                    reason: s.reason.clone(),
                });
            } else if previous.is_some_and(|p| until > p) {
                out.expired.push(r(Some(until), None));
            }
        }
        out
    }

    /// The snooze of `f` in `target`, if one applies.
    pub fn find(&self, target: &str, f: &Finding) -> Option<Match<'_>> {
        self.active
            .iter()
            .find(|a| {
                a.check.matches(&f.check)
                    && a.object.matches(&f.object)
                    && a.target.as_ref().is_none_or(|t| t.matches(target))
            })
            .map(|a| Match { reason: &a.reason, until: a.until })
    }
}

/// A date (the start of that day in `tz`) or an RFC 3339 time.
fn parse_until(raw: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Some(t);
    }
    let date: jiff::civil::Date = raw.parse().ok()?;
    date.to_zoned(tz.clone()).ok().map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Severity;
    use crate::evaluate::finding;

    fn snooze(check: &str, object: &str, until: &str) -> Snooze {
        Snooze {
            check: check.into(),
            object: object.into(),
            target: None,
            until: until.into(),
            reason: "JIRA-1".into(),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn globs_match_check_object_and_target() {
        let mut s = snooze("CrashLoop*", "batch/nightly-*", "2026-12-15");
        s.target = Some("prod".into());
        let z = Snoozes::new(&[s], None, ts("2026-12-01T07:00:00Z"), None);
        let f = finding(Severity::Critical, "CrashLoopBackOff", "batch/nightly-7f/app", "m", None);
        let m = z.find("prod", &f).expect("snoozed");
        assert_eq!((m.reason, m.until), ("JIRA-1", ts("2026-12-15T00:00:00Z")));
        assert!(z.find("staging", &f).is_none(), "another target");
        let other = finding(Severity::Critical, "CrashLoopBackOff", "web/api-1", "m", None);
        assert!(z.find("prod", &other).is_none());
    }

    /// A date ends the snooze as that day begins in the schedule's zone; a time, then.
    #[test]
    fn until_is_a_date_in_the_zone_or_a_time() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(parse_until("2026-12-15", &tz), Some(ts("2026-12-14T23:00:00Z")));
        assert_eq!(parse_until("2026-12-15T06:30:00Z", &tz), Some(ts("2026-12-15T06:30:00Z")));
        assert_eq!(parse_until("2026-13-15", &tz), None);
    }

    #[test]
    fn past_the_horizon_is_refused_and_an_ended_snooze_is_said_once() {
        let now = ts("2026-12-01T07:00:00Z");
        let spec = [snooze("A", "*", "2027-06-01"), snooze("B", "*", "2026-11-30"), snooze("C", "*", "2026-12-02")];
        let z = Snoozes::new(&spec, None, now, Some(ts("2026-11-29T07:00:00Z")));
        assert_eq!(z.refused.len(), 1);
        assert!(z.refused[0].note.as_deref().unwrap().contains("more than 90 days"));
        assert_eq!(z.expired.iter().map(|e| e.check.as_str()).collect::<Vec<_>>(), ["B"]);
        assert_eq!(z.active.len(), 1);
        // The run after: B ended before the previous run, so it is not said again.
        let z = Snoozes::new(&spec, None, ts("2026-12-02T07:00:00Z"), Some(now));
        assert_eq!(z.expired.iter().map(|e| e.check.as_str()).collect::<Vec<_>>(), ["C"]);
        assert!(z.active.is_empty());
    }
}
