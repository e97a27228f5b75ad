//! EC2 answers → facts, findings and error tiers. Pure: the collector pages through
//! `DescribeInstanceStatus` and `DescribeInstances` and hands every status and instance
//! here, keeping only counts, findings and the few statuses that need attention.
//!
//! Severities:
//! | check | severity |
//! |---|---|
//! | InstanceStatusImpaired, SystemStatusImpaired | critical |
//! | InstanceStatusInsufficientData, SystemStatusInsufficientData past `insufficientDataGraceSeconds` | warning |
//! | ScheduledInstanceRetirement, ScheduledInstanceStop starting within 7 days (or already due) | critical |
//! | ScheduledInstanceRetirement, ScheduledInstanceStop starting later | warning |
//! | ScheduledInstanceReboot, ScheduledSystemReboot, ScheduledSystemMaintenance (any other event too) | warning |
//! | InstanceStopped, only with `reportStopped` (stopped is often intended) | warning |
//!
//! Events whose description starts with `[Completed]` or `[Canceled]` are history and
//! ignored. `insufficient-data` is timed from the check detail's `impairedSince` when AWS
//! gives one, else from the instance's launch time, so an instance that has just been
//! launched (whose checks have no data yet) stays inside the grace period.
//!
//! "How long in that state": a running or pending instance counts from its launch time;
//! a stopped (stopping, shutting-down, terminated) one from the time in its state
//! transition reason, e.g. `User initiated (2026-11-20 10:00:00 GMT)`; unknown otherwise.

use aws_sdk_ec2::primitives::DateTime;
use aws_sdk_ec2::types::{
    EventCode, Instance, InstanceStateName, InstanceStatus, InstanceStatusEvent, InstanceStatusSummary, StatusType,
    SummaryStatus,
};
use jiff::Timestamp;

use super::finding;
use crate::api::{Finding, Severity};
use crate::duration::friendly;

/// A retirement or stop starting sooner than this is critical.
const SOON_SECS: i64 = 7 * 86_400;

// ---------------------------------------------------------------------------------------
// Instances

/// Instances by state, for the target's facts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: u64,
    pub running: u64,
    pub stopping: u64,
    pub stopped: u64,
    pub shutting_down: u64,
    pub terminated: u64,
    /// A state this version does not know; counted in the total only.
    pub other: u64,
}

impl StateCounts {
    pub fn add(&mut self, i: &Instance) {
        let slot = match state(i) {
            Some(InstanceStateName::Pending) => &mut self.pending,
            Some(InstanceStateName::Running) => &mut self.running,
            Some(InstanceStateName::Stopping) => &mut self.stopping,
            Some(InstanceStateName::Stopped) => &mut self.stopped,
            Some(InstanceStateName::ShuttingDown) => &mut self.shutting_down,
            Some(InstanceStateName::Terminated) => &mut self.terminated,
            _ => &mut self.other,
        };
        *slot += 1;
    }

    pub fn total(&self) -> u64 {
        self.pending + self.running + self.stopping + self.stopped + self.shutting_down + self.terminated + self.other
    }

    /// The counts as facts of the target's report.
    pub fn facts(&self) -> [(&'static str, u64); 7] {
        [
            ("instancesPending", self.pending),
            ("instancesRunning", self.running),
            ("instancesStopping", self.stopping),
            ("instancesStopped", self.stopped),
            ("instancesShuttingDown", self.shutting_down),
            ("instancesTerminated", self.terminated),
            ("instancesTotal", self.total()),
        ]
    }
}

fn state(i: &Instance) -> Option<&InstanceStateName> {
    i.state().and_then(|s| s.name())
}

fn ts(d: &DateTime) -> Option<Timestamp> {
    Timestamp::new(d.secs(), d.subsec_nanos() as i32).ok()
}

fn age(now: Timestamp, since: Timestamp) -> i64 {
    now.duration_since(since).as_secs()
}

fn day_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The instance's `Name` tag, when set.
pub fn name_tag(i: &Instance) -> Option<&str> {
    i.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()).filter(|v| !v.is_empty())
}

/// How findings name an instance: `i-0abc (web-1)`, or the bare id without a Name tag.
pub fn object(i: &Instance) -> String {
    let id = i.instance_id().unwrap_or("(no id)");
    match name_tag(i) {
        Some(name) => format!("{id} ({name})"),
        None => id.to_string(),
    }
}

/// Type and availability zone, e.g. `m5.large in eu-west-1a`.
fn placement(i: &Instance) -> String {
    let kind = i.instance_type().map_or("unknown type", |t| t.as_str());
    match i.placement().and_then(|p| p.availability_zone()) {
        Some(az) => format!("{kind} in {az}"),
        None => kind.to_string(),
    }
}

/// Placement and how long the instance has been in its state, e.g.
/// `m5.large in eu-west-1a, running for 84d1h`.
fn placement_and_age(i: &Instance, now: Timestamp) -> String {
    let state = state(i).map_or("in an unknown state", |s| s.as_str());
    match state_since(i) {
        Some(since) => format!("{}, {state} for {}", placement(i), friendly(age(now, since))),
        None => format!("{}, {state}", placement(i)),
    }
}

/// The time in a state transition reason such as `User initiated (2026-11-20 10:00:00 GMT)`.
pub fn transition_time(reason: &str) -> Option<Timestamp> {
    let open = reason.rfind('(')?;
    let inner = reason[open + 1..].strip_suffix(')')?.trim();
    let inner = inner.strip_suffix("GMT").or_else(|| inner.strip_suffix("UTC")).unwrap_or(inner).trim();
    format!("{}Z", inner.replacen(' ', "T", 1)).parse().ok()
}

/// Since when the instance is in its current state, when known.
pub fn state_since(i: &Instance) -> Option<Timestamp> {
    match state(i) {
        Some(InstanceStateName::Pending | InstanceStateName::Running) => i.launch_time().and_then(ts),
        _ => i.state_transition_reason().and_then(transition_time),
    }
}

/// A stopped instance as a finding (the caller asks only with `reportStopped`).
pub fn stopped_finding(i: &Instance, now: Timestamp) -> Option<Finding> {
    if state(i) != Some(&InstanceStateName::Stopped) {
        return None;
    }
    let since = state_since(i);
    let how_long = since.map(|s| format!(" for {}", friendly(age(now, s)))).unwrap_or_default();
    let reason = i.state_transition_reason().filter(|r| !r.is_empty()).map(|r| format!(" ({r})")).unwrap_or_default();
    let message = format!("stopped{how_long}{reason}; {}", placement(i));
    Some(finding(Severity::Warning, "InstanceStopped", object(i), message, since))
}

// ---------------------------------------------------------------------------------------
// Status checks and scheduled events

/// Names of one of the two status checks.
struct CheckNames {
    label: &'static str,
    impaired: &'static str,
    insufficient: &'static str,
}

const INSTANCE_CHECK: CheckNames = CheckNames {
    label: "instance",
    impaired: "InstanceStatusImpaired",
    insufficient: "InstanceStatusInsufficientData",
};
const SYSTEM_CHECK: CheckNames =
    CheckNames { label: "system", impaired: "SystemStatusImpaired", insufficient: "SystemStatusInsufficientData" };

fn summary_is(s: Option<&InstanceStatusSummary>, wanted: &[SummaryStatus]) -> bool {
    s.and_then(|s| s.status()).is_some_and(|st| wanted.contains(st))
}

/// Whether an event is still ahead or under way (AWS keeps finished ones for a while).
fn is_live(e: &InstanceStatusEvent) -> bool {
    let d = e.description().unwrap_or_default().trim_start();
    !(d.starts_with("[Completed]") || d.starts_with("[Canceled]"))
}

/// Whether a status may produce findings; only those are kept until the instance's
/// details (name, type, zone, tags) arrive from `DescribeInstances`.
pub fn needs_attention(s: &InstanceStatus) -> bool {
    let bad = [SummaryStatus::Impaired, SummaryStatus::InsufficientData];
    summary_is(s.instance_status(), &bad) || summary_is(s.system_status(), &bad) || s.events().iter().any(is_live)
}

/// Findings of one instance's status: failed checks and scheduled events.
pub fn status_findings(s: &InstanceStatus, i: &Instance, now: Timestamp, grace_seconds: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    for (names, summary) in [(&INSTANCE_CHECK, s.instance_status()), (&SYSTEM_CHECK, s.system_status())] {
        if let Some(f) = check_finding(names, summary, i, now, grace_seconds) {
            out.push(f);
        }
    }
    out.extend(s.events().iter().filter(|e| is_live(e)).map(|e| event_finding(e, i, now)));
    out
}

fn check_finding(
    names: &CheckNames,
    summary: Option<&InstanceStatusSummary>,
    i: &Instance,
    now: Timestamp,
    grace_seconds: i64,
) -> Option<Finding> {
    let summary = summary?;
    let details = summary.details();
    let failing: Vec<String> = details
        .iter()
        .filter(|d| d.status().is_some_and(|s| *s != StatusType::Passed))
        .map(|d| format!("{} {}", d.name().map_or("check", |n| n.as_str()), d.status().map_or("", |s| s.as_str())))
        .collect();
    let detail = if failing.is_empty() { String::new() } else { format!(" ({})", failing.join(", ")) };
    let impaired_since = details.iter().filter_map(|d| d.impaired_since()).filter_map(ts).min();
    let label = names.label;
    match summary.status()? {
        SummaryStatus::Impaired => {
            let how_long = impaired_since.map(|s| format!(" for {}", friendly(age(now, s)))).unwrap_or_default();
            let message = format!("{label} status check impaired{how_long}{detail}; {}", placement_and_age(i, now));
            Some(finding(Severity::Critical, names.impaired, object(i), message, impaired_since))
        }
        SummaryStatus::InsufficientData => {
            let since = impaired_since.or_else(|| i.launch_time().and_then(ts));
            let secs = since.map(|s| age(now, s));
            if secs.is_some_and(|s| s <= grace_seconds) {
                return None;
            }
            let how_long = secs.map_or_else(|| " for an unknown time".to_string(), |s| format!(" for {}", friendly(s)));
            let message = format!(
                "{label} status check has had insufficient data{how_long}{detail}; {}",
                placement_and_age(i, now)
            );
            Some(finding(Severity::Warning, names.insufficient, object(i), message, since))
        }
        _ => None,
    }
}

fn event_finding(e: &InstanceStatusEvent, i: &Instance, now: Timestamp) -> Finding {
    let not_before = e.not_before().and_then(ts);
    // Unknown start: assume it is close rather than hide it.
    let soon = not_before.is_none_or(|t| t.duration_since(now).as_secs() <= SOON_SECS);
    let disruptive = if soon { Severity::Critical } else { Severity::Warning };
    let (check, severity) = match e.code() {
        Some(EventCode::InstanceRetirement) => ("ScheduledInstanceRetirement", disruptive),
        Some(EventCode::InstanceStop) => ("ScheduledInstanceStop", disruptive),
        Some(EventCode::InstanceReboot) => ("ScheduledInstanceReboot", Severity::Warning),
        Some(EventCode::SystemReboot) => ("ScheduledSystemReboot", Severity::Warning),
        Some(EventCode::SystemMaintenance) => ("ScheduledSystemMaintenance", Severity::Warning),
        _ => ("ScheduledEvent", Severity::Warning),
    };
    let code = e.code().map_or("scheduled event", |c| c.as_str());
    let description = e.description().unwrap_or("no description");
    let message = format!(
        "{code} {}: {description}; {}",
        window(not_before, e.not_after().and_then(ts), now),
        placement_and_age(i, now)
    );
    finding(severity, check, object(i), message, None)
}

/// The dates of an event, e.g. `from 2026-11-26 07:00 UTC to 2026-11-26 09:00 UTC (in 2d)`.
fn window(not_before: Option<Timestamp>, not_after: Option<Timestamp>, now: Timestamp) -> String {
    let mut s = match not_before {
        Some(t) => format!("from {}", day_time(t)),
        None => "with no start date".to_string(),
    };
    if let Some(t) = not_after {
        s.push_str(&format!(" until {}", day_time(t)));
    }
    if let Some(t) = not_before {
        let secs = t.duration_since(now).as_secs();
        if secs > 0 {
            s.push_str(&format!(" (in {})", friendly(secs)));
        } else {
            s.push_str(&format!(" (due since {})", friendly(-secs)));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{InstanceState, InstanceStatusDetails, InstanceType, Placement, StatusName, Tag};

    fn now() -> Timestamp {
        "2026-11-24T07:00:00Z".parse().unwrap()
    }

    fn dt(s: &str) -> DateTime {
        let t: Timestamp = s.parse().unwrap();
        DateTime::from_secs(t.as_second())
    }

    fn instance(id: &str, name: Option<&str>, st: InstanceStateName) -> Instance {
        instance_builder(id, name, st).build()
    }

    fn instance_builder(
        id: &str,
        name: Option<&str>,
        st: InstanceStateName,
    ) -> aws_sdk_ec2::types::builders::InstanceBuilder {
        let mut b = Instance::builder()
            .instance_id(id)
            .instance_type(InstanceType::M5Large)
            .placement(Placement::builder().availability_zone("eu-west-1a").build())
            .state(InstanceState::builder().name(st).build())
            .launch_time(dt("2026-11-20T07:00:00Z"))
            .tags(Tag::builder().key("env").value("prod").build());
        if let Some(n) = name {
            b = b.tags(Tag::builder().key("Name").value(n).build());
        }
        b
    }

    fn summary(status: SummaryStatus, detail: StatusType, since: Option<&str>) -> InstanceStatusSummary {
        let mut d = InstanceStatusDetails::builder().name(StatusName::Reachability).status(detail);
        if let Some(s) = since {
            d = d.impaired_since(dt(s));
        }
        InstanceStatusSummary::builder().status(status).details(d.build()).build()
    }

    fn ok() -> InstanceStatusSummary {
        summary(SummaryStatus::Ok, StatusType::Passed, None)
    }

    fn event(code: EventCode, description: &str, not_before: &str) -> InstanceStatusEvent {
        InstanceStatusEvent::builder()
            .code(code)
            .description(description)
            .not_before(dt(not_before))
            .not_after(dt("2026-12-31T00:00:00Z"))
            .build()
    }

    fn checks(f: &[Finding]) -> Vec<(&str, Severity, &str)> {
        f.iter().map(|f| (f.check.as_str(), f.severity, f.object.as_str())).collect()
    }

    #[test]
    fn counts_every_state() {
        let mut c = StateCounts::default();
        for st in [
            InstanceStateName::Running,
            InstanceStateName::Running,
            InstanceStateName::Pending,
            InstanceStateName::Stopping,
            InstanceStateName::Stopped,
            InstanceStateName::ShuttingDown,
            InstanceStateName::Terminated,
            InstanceStateName::from("hibernated"),
        ] {
            c.add(&instance("i-1", None, st));
        }
        c.add(&Instance::builder().build());
        let facts: Vec<_> = c.facts().into_iter().collect();
        assert_eq!(
            facts,
            [
                ("instancesPending", 1),
                ("instancesRunning", 2),
                ("instancesStopping", 1),
                ("instancesStopped", 1),
                ("instancesShuttingDown", 1),
                ("instancesTerminated", 1),
                ("instancesTotal", 9),
            ]
        );
        assert_eq!(c.other, 2);
    }

    #[test]
    fn objects_name_the_instance() {
        assert_eq!(object(&instance("i-0abc", Some("web-1"), InstanceStateName::Running)), "i-0abc (web-1)");
        assert_eq!(object(&instance("i-0abc", None, InstanceStateName::Running)), "i-0abc");
        assert_eq!(object(&instance("i-0abc", Some(""), InstanceStateName::Running)), "i-0abc");
    }

    #[test]
    fn transition_reason_times_parse() {
        let t = transition_time("User initiated (2026-11-20 10:00:00 GMT)").unwrap();
        assert_eq!(t, "2026-11-20T10:00:00Z".parse::<Timestamp>().unwrap());
        assert!(transition_time("Server.InternalError").is_none());
        assert!(transition_time("").is_none());
    }

    #[test]
    fn stopped_instance_finding_tells_since_when() {
        let i = instance_builder("i-0s", Some("batch"), InstanceStateName::Stopped)
            .state_transition_reason("User initiated (2026-11-21 07:00:00 GMT)")
            .build();
        let f = stopped_finding(&i, now()).unwrap();
        assert_eq!(
            (f.check.as_str(), f.severity, f.object.as_str()),
            ("InstanceStopped", Severity::Warning, "i-0s (batch)")
        );
        assert!(f.message.starts_with("stopped for 3d (User initiated"), "{}", f.message);
        assert!(f.message.ends_with("m5.large in eu-west-1a"), "{}", f.message);
        assert_eq!(f.since.unwrap().0, "2026-11-21T07:00:00Z".parse::<Timestamp>().unwrap());
        assert!(stopped_finding(&instance("i-r", None, InstanceStateName::Running), now()).is_none());
        let unknown = stopped_finding(&instance("i-u", None, InstanceStateName::Stopped), now()).unwrap();
        assert_eq!(unknown.message, "stopped; m5.large in eu-west-1a");
    }

    #[test]
    fn impaired_checks_are_critical() {
        let s = InstanceStatus::builder()
            .instance_id("i-1")
            .instance_status(summary(SummaryStatus::Impaired, StatusType::Failed, Some("2026-11-24T05:00:00Z")))
            .system_status(summary(SummaryStatus::Impaired, StatusType::Failed, None))
            .build();
        assert!(needs_attention(&s));
        let i = instance("i-1", Some("db"), InstanceStateName::Running);
        let f = status_findings(&s, &i, now(), 600);
        assert_eq!(
            checks(&f),
            [
                ("InstanceStatusImpaired", Severity::Critical, "i-1 (db)"),
                ("SystemStatusImpaired", Severity::Critical, "i-1 (db)")
            ]
        );
        assert_eq!(
            f[0].message,
            "instance status check impaired for 2h (reachability failed); m5.large in eu-west-1a, running for 4d"
        );
        assert!(f[0].since.is_some());
        assert_eq!(
            f[1].message,
            "system status check impaired (reachability failed); m5.large in eu-west-1a, running for 4d"
        );
    }

    #[test]
    fn insufficient_data_counts_after_the_grace() {
        let status = |since: Option<&str>| {
            InstanceStatus::builder()
                .instance_status(summary(SummaryStatus::InsufficientData, StatusType::InsufficientData, since))
                .system_status(ok())
                .build()
        };
        let i = instance("i-2", None, InstanceStateName::Running);
        // 5 minutes by impairedSince: inside a 10-minute grace.
        assert!(status_findings(&status(Some("2026-11-24T06:55:00Z")), &i, now(), 600).is_empty());
        let f = status_findings(&status(Some("2026-11-24T06:00:00Z")), &i, now(), 600);
        assert_eq!(checks(&f), [("InstanceStatusInsufficientData", Severity::Warning, "i-2")]);
        assert!(f[0].message.contains("insufficient data for 1h (reachability insufficient-data)"), "{}", f[0].message);
        // No impairedSince: timed from the launch, four days ago.
        let f = status_findings(&status(None), &i, now(), 600);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("for 4d"), "{}", f[0].message);
        let fresh =
            instance_builder("i-2", None, InstanceStateName::Running).launch_time(dt("2026-11-24T06:58:00Z")).build();
        assert!(status_findings(&status(None), &fresh, now(), 600).is_empty());
    }

    #[test]
    fn healthy_status_needs_no_attention() {
        let s = InstanceStatus::builder()
            .instance_status(ok())
            .system_status(ok())
            .events(event(EventCode::SystemReboot, "[Completed] scheduled reboot", "2026-11-01T00:00:00Z"))
            .events(event(EventCode::InstanceRetirement, "[Canceled] retirement", "2026-11-25T00:00:00Z"))
            .build();
        assert!(!needs_attention(&s));
        assert!(status_findings(&s, &instance("i-3", None, InstanceStateName::Running), now(), 600).is_empty());
        let initializing = InstanceStatus::builder()
            .instance_status(summary(SummaryStatus::Initializing, StatusType::Initializing, None))
            .build();
        assert!(!needs_attention(&initializing));
    }

    #[test]
    fn scheduled_events_by_kind_and_date() {
        let s = InstanceStatus::builder()
            .instance_status(ok())
            .system_status(ok())
            .events(event(
                EventCode::InstanceRetirement,
                "The instance is running on degraded hardware",
                "2026-11-26T07:00:00Z",
            ))
            .events(event(
                EventCode::InstanceStop,
                "The instance is running on degraded hardware",
                "2026-12-20T00:00:00Z",
            ))
            .events(event(EventCode::SystemReboot, "scheduled reboot", "2026-12-20T00:00:00Z"))
            .events(event(EventCode::SystemMaintenance, "Network maintenance", "2026-11-25T00:00:00Z"))
            .events(event(EventCode::InstanceReboot, "[Completed] reboot", "2026-11-20T00:00:00Z"))
            .build();
        assert!(needs_attention(&s));
        let i = instance("i-4", Some("api"), InstanceStateName::Running);
        let f = status_findings(&s, &i, now(), 600);
        assert_eq!(
            checks(&f),
            [
                ("ScheduledInstanceRetirement", Severity::Critical, "i-4 (api)"),
                ("ScheduledInstanceStop", Severity::Warning, "i-4 (api)"),
                ("ScheduledSystemReboot", Severity::Warning, "i-4 (api)"),
                ("ScheduledSystemMaintenance", Severity::Warning, "i-4 (api)"),
            ]
        );
        assert_eq!(
            f[0].message,
            "instance-retirement from 2026-11-26 07:00 UTC until 2026-12-31 00:00 UTC (in 2d): \
             The instance is running on degraded hardware; m5.large in eu-west-1a, running for 4d"
        );
        let overdue =
            InstanceStatus::builder().events(event(EventCode::InstanceStop, "stop", "2026-11-23T07:00:00Z")).build();
        let f = status_findings(&overdue, &i, now(), 600);
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(f[0].message.contains("(due since 1d)"), "{}", f[0].message);
    }
}
