//! Pure evaluation: objects and answers in, findings out; then grading and the diff
//! with the previous run. No IO here, so all of it is tested without peers.

pub mod ec2;
pub mod known;
pub mod kubernetes;
pub mod prometheus;
mod report;
pub mod snooze;

pub use known::KnownSet;
pub use report::{
    Counters, FindingSink, RunMeta, SCHEMA_VERSION, TargetOutcome, build_report, digest_keys, digest_text, rank,
};
pub use snooze::Snoozes;

use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ErrorTier, Finding, Severity, TargetError};
use crate::clip::{Limit, clip};

/// The most a target error's message holds, in bytes: a status carries hundreds of them.
pub const ERROR_MESSAGE_BYTES: usize = 1024;

/// A target's error: scrubbed of every secret the run holds, and bounded.
pub fn error(tier: ErrorTier, message: impl Into<String>) -> TargetError {
    let message = crate::redact::scrub(&message.into());
    TargetError { tier, scope: None, message: clip(&message, Limit::Bytes(ERROR_MESSAGE_BYTES)).into_owned() }
}

/// The error and its sources, joined: the useful part is often the innermost cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

/// Builds a finding; the key is `check/object`, unique within a target.
pub fn finding(
    severity: Severity,
    check: &str,
    object: impl Into<String>,
    message: impl Into<String>,
    since: Option<jiff::Timestamp>,
) -> Finding {
    let object = object.into();
    let mut key = String::with_capacity(check.len() + object.len() + 1);
    let _ = write!(key, "{check}/{object}");
    Finding { key, severity, check: check.to_string(), object, message: message.into(), since: since.map(Time) }
}

/// Human duration, e.g. `3h12m`, `45s`, `2d4h`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(-3), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600 + 5), "2d4h");
    }

    #[test]
    fn finding_key_is_check_and_object() {
        let f = finding(Severity::Critical, "CrashLoopBackOff", "prod/web-1", "boom", None);
        assert_eq!(f.key, "CrashLoopBackOff/prod/web-1");
        assert_eq!(f.object, "prod/web-1");
    }
}
