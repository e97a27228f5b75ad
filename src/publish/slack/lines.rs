//! One line or phrase of the message: titles, counts, finding and diff lines, times.

use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::api::{Area, Counts, ErrorTier, Finding, FindingRef, RunDiff, RunResult, Severity, TargetReport};

use super::layout::*;
use super::mrkdwn::*;

pub(super) fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

pub(super) fn block_cost(block: &Value) -> usize {
    serde_json::to_string(block).map_or(usize::MAX / 4, |s| s.chars().count())
}

/// Which targets keep their section when not all fit: the worst first.
pub(super) fn target_rank(t: &TargetReport) -> u8 {
    crate::evaluate::rank(t.result)
}

/// Max-min fair split of `total` among `needs`: small needs are met in full, the rest
/// share what is left equally.
pub(super) fn share(needs: &[usize], total: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..needs.len()).collect();
    order.sort_by_key(|&i| needs[i]);
    let mut out = vec![0; needs.len()];
    let mut left = total;
    for (k, &i) in order.iter().enumerate() {
        let fair = left / (needs.len() - k);
        out[i] = needs[i].min(fair);
        left -= out[i];
    }
    out
}

pub(super) fn result_label(r: RunResult) -> (&'static str, &'static str) {
    match r {
        RunResult::Healthy => (":white_check_mark:", "Healthy"),
        RunResult::Warning => (":warning:", "Warning"),
        RunResult::Critical => (":red_circle:", "Critical"),
        RunResult::Failed => (":x:", "Failed"),
        RunResult::Interrupted => (":hourglass:", "Interrupted"),
    }
}

pub(super) fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    }
}

pub(super) fn area_name(a: Area) -> &'static str {
    match a {
        Area::Kubernetes => "Kubernetes cluster",
        Area::Prometheus => "Prometheus",
        Area::Aws => "AWS",
    }
}

/// Display name of a key of `RunReport.areas`.
pub(super) fn area_title(key: &str) -> &str {
    match key {
        "kubernetes" => "Kubernetes",
        "prometheus" => "Prometheus",
        "aws" => "AWS",
        other => other,
    }
}

pub(super) fn tier_name(t: ErrorTier) -> &'static str {
    match t {
        ErrorTier::Unreachable => "Unreachable",
        ErrorTier::Unauthorized => "Unauthorized",
        ErrorTier::Forbidden => "Forbidden",
        ErrorTier::Throttled => "Throttled",
        ErrorTier::BadRequest => "BadRequest",
        ErrorTier::Config => "Config",
        ErrorTier::Api => "Api",
        ErrorTier::PolicyDenied => "PolicyDenied",
    }
}

/// "2 critical · 3 warning · 1 info".
pub(super) fn counts_phrase(c: &Counts) -> String {
    use crate::publish::thousands;
    let snoozed = if c.snoozed > 0 { format!(" · {} snoozed", thousands(c.snoozed)) } else { String::new() };
    format!(
        "{} critical · {} warning · {} info{snoozed}",
        thousands(c.critical),
        thousands(c.warning),
        thousands(c.info)
    )
}

pub(super) fn diff_headline(diff: &RunDiff) -> String {
    let still = diff.still_failing_total;
    let mut line = if diff.new_total == 0 && diff.resolved_total == 0 {
        format!("*Since the previous run:* no change · {still} still present")
    } else {
        format!(
            "*Since the previous run:* {} new · {} resolved · {still} still present",
            diff.new_total, diff.resolved_total
        )
    };
    if diff.unknown_total > 0 {
        line.push_str(&format!(" · {} unknown (target unchecked)", diff.unknown_total));
    }
    if diff.approximate {
        line.push_str(" · approximate: more findings than are remembered");
    }
    line
}

/// The findings failing for the most runs (two at least), worst first: at most three.
pub(super) fn longest(diff: &RunDiff) -> Vec<&FindingRef> {
    let mut l: Vec<&FindingRef> = diff.still_failing.iter().filter(|f| f.runs.unwrap_or(1) > 1).collect();
    l.sort_by(|a, b| b.runs.cmp(&a.runs).then(b.severity.cmp(&a.severity)));
    l.truncate(3);
    l
}

/// "• :red_circle: *CrashLoopBackOff* `prod/web` on prod".
pub(super) fn diff_line(f: &FindingRef, resolved: bool) -> String {
    let emoji = if resolved { ":white_check_mark:" } else { severity_emoji(f.severity) };
    format!(
        "• {emoji} *{}* `{}` on {}",
        plain(&f.check, CHECK_COST),
        code(&f.object, OBJECT_COST),
        plain(&f.target, NAME_COST)
    )
}

/// A diff entry: its first finding's line, and the checks of the same object after
/// "also": "• :red_circle: *CrashLoopBackOff* `prod/web/app` on prod · _also_ *HighRestarts*".
pub(super) fn diff_entry(entry: &[&FindingRef], resolved: bool) -> String {
    let mut line = diff_line(entry[0], resolved);
    for (i, f) in entry.iter().enumerate().skip(1) {
        line.push_str(if i == 1 { " · _also_ " } else { " · " });
        line.push_str(&format!("*{}*", plain(&f.check, CHECK_COST)));
    }
    line
}

/// "• :red_circle: *CrashLoopBackOff* `prod/web` — back-off restarting".
pub(super) fn finding_line(f: &Finding) -> String {
    let mut line = format!(
        "• {} *{}* `{}`",
        severity_emoji(f.severity),
        plain(&f.check, CHECK_COST),
        code(&f.object, OBJECT_COST)
    );
    let message = plain(&f.message, MESSAGE_COST);
    if !message.trim().is_empty() {
        line.push_str(" — ");
        line.push_str(&message);
    }
    line
}

/// An entry: its lead's line, then the other findings of its object after "also", on
/// the same line: one broken pod is one line.
pub(super) fn entry_line(entry: &[Finding]) -> String {
    let mut line = finding_line(&entry[0]);
    for (i, f) in entry.iter().enumerate().skip(1) {
        line.push_str(if i == 1 { " · _also_ " } else { " · " });
        let message = plain(&f.message, ALSO_COST);
        line.push_str(&format!("*{}*", plain(&f.check, CHECK_COST)));
        if !message.trim().is_empty() {
            line.push_str(": ");
            line.push_str(&message);
        }
    }
    line
}

/// "*:red_circle: prod* · Kubernetes cluster · eu-west-1".
pub(super) fn target_title(t: &TargetReport) -> String {
    let (emoji, _) = result_label(t.result);
    let mut title = format!("{emoji} *{}* · {}", plain(&t.name, NAME_COST), area_name(t.area));
    if let Some(scope) = t.scope.as_deref().filter(|s| !s.is_empty()) {
        title.push_str(" · ");
        title.push_str(&plain(scope, SCOPE_COST));
    }
    if t.insecure {
        title.push_str(" · :unlock: TLS verification off");
    }
    title
}

/// Counts, a few facts, and a note when the target is incomplete.
pub(super) fn target_counts(t: &TargetReport) -> String {
    let mut parts = vec![if t.counts.total == 0 { "No findings".to_string() } else { counts_phrase(&t.counts) }];
    if !t.checks.is_empty() {
        parts.push(plain(&crate::publish::checks_phrase(&t.checks, CHECKS_SHOWN), CHECK_COST * CHECKS_SHOWN));
    }
    for (k, v) in t.facts.iter().filter(|(k, _)| !crate::publish::operational(k)).take(FACTS_SHOWN) {
        parts.push(format!("{} {}", plain(k, CHECK_COST / 2), crate::publish::thousands(*v)));
    }
    if !t.errors.is_empty() {
        parts.push(format!(":x: incomplete ({} errors, see below)", t.errors.len()));
    }
    parts.join(" · ")
}

/// "• *prom-eu* (Prometheus): Unreachable [scope] — connection refused (+1 more error)".
pub(super) fn failed_line(t: &TargetReport) -> String {
    let e = &t.errors[0];
    let mut line = format!("• *{}* ({}): {}", plain(&t.name, NAME_COST), area_name(t.area), tier_name(e.tier));
    if let Some(scope) = e.scope.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" `{}`", code(scope, SCOPE_COST)));
    }
    line.push_str(" — ");
    line.push_str(&plain(&e.message, ERROR_COST));
    if t.errors.len() > 1 {
        line.push_str(&format!(" (+{} more errors)", t.errors.len() - 1));
    }
    line
}

/// "2024-05-02 07:00 CEST", in the given zone (UTC when unset or unknown).
pub(super) fn local_time(at: jiff::Timestamp, zone: Option<&str>) -> String {
    local(at, zone, "%Y-%m-%d %H:%M %Z")
}

/// "2026-11-20", the day in the given zone.
pub(super) fn local_day(at: jiff::Timestamp, zone: Option<&str>) -> String {
    local(at, zone, "%Y-%m-%d")
}

pub(super) fn local(at: jiff::Timestamp, zone: Option<&str>, format: &str) -> String {
    let tz = zone.and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC);
    at.to_zoned(tz).strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_is_max_min_fair() {
        assert_eq!(share(&[100, 5000, 5000], 3100), vec![100, 1500, 1500]);
        assert_eq!(share(&[10, 20], 1000), vec![10, 20]);
        assert!(share(&[], 10).is_empty());
    }

    #[test]
    fn local_time_uses_the_zone() {
        let at: jiff::Timestamp = "2024-05-02T05:00:00Z".parse().unwrap();
        assert_eq!(local_time(at, Some("Europe/Berlin")), "2024-05-02 07:00 CEST");
        assert_eq!(local_time(at, None), "2024-05-02 05:00 UTC");
        assert_eq!(local_time(at, Some("Not/AZone")), "2024-05-02 05:00 UTC");
    }
}
