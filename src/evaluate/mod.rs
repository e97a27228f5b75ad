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
    Counters, FindingSink, RunMeta, TargetOutcome, build_report, digest_keys, digest_text, empty_report, rank,
};
pub use snooze::Snoozes;

use std::borrow::Cow;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Area, Finding, Severity};

/// What a finding of a target in `area` is about: a target's findings of one subject are
/// one entry of every output (a pod with its containers' findings and its Events).
pub fn subject(area: Area, object: &str) -> Cow<'_, str> {
    match area {
        Area::Kubernetes => kubernetes::subject(object),
        Area::Prometheus | Area::Aws => Cow::Borrowed(object),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_key_is_check_and_object() {
        let f = finding(Severity::Critical, "CrashLoopBackOff", "prod/web-1", "boom", None);
        assert_eq!(f.key, "CrashLoopBackOff/prod/web-1");
        assert_eq!(f.object, "prod/web-1");
    }
}
