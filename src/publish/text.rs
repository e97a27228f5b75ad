//! The terminal report of `morningcheck run`: readable in ten seconds, grouped by area
//! and target, most severe first. Colour only on a terminal, and never with `NO_COLOR`.

use std::fmt::Write as _;

use crate::api::{Finding, RunReport, RunResult, Severity, TargetReport};
use crate::clip::{Limit, clip};
use crate::duration::friendly;

/// Findings shown per target; the rest are counted.
const PER_TARGET: usize = 10;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: std::io::stdout().is_terminal() && !no_color }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }

    fn severity(&self, s: Severity) -> String {
        match s {
            Severity::Critical => self.paint("1;31", "CRIT"),
            Severity::Warning => self.paint("33", "WARN"),
            Severity::Info => self.paint("2", "INFO"),
        }
    }

    fn result(&self, r: RunResult) -> String {
        let (code, text) = match r {
            RunResult::Healthy => ("32", "HEALTHY"),
            RunResult::Warning => ("33", "WARNING"),
            RunResult::Critical => ("1;31", "CRITICAL"),
            RunResult::Failed => ("1;35", "FAILED"),
            RunResult::Interrupted => ("35", "INTERRUPTED"),
        };
        self.paint(code, text)
    }
}

/// Renders one run of the MorningCheck `name`, in the digest's order: what is new, what
/// could not be checked, then each target with findings (counts per check and one entry
/// per object), and the healthy targets on one line.
pub fn render(name: &str, report: &RunReport, style: Style) -> String {
    let mut out = String::new();
    let c = &report.counts;
    let _ = writeln!(
        out,
        "{}: {}{}  {} critical, {} warning, {} info  ({})",
        safe(name),
        style.result(report.result),
        super::unchecked_suffix(report),
        super::thousands(c.critical),
        super::thousands(c.warning),
        super::thousands(c.info),
        crate::duration::took(report.duration_seconds)
    );
    new_since(&mut out, report, style);
    unchecked(&mut out, report, style);
    snoozed(&mut out, report);
    let (mut with_findings, healthy) = super::split_healthy(report);
    with_findings.retain(|t| super::has_findings(t));
    with_findings.sort_by_key(|t| (t.area, std::cmp::Reverse(crate::evaluate::rank(t.result))));
    for t in with_findings {
        out.push('\n');
        target(&mut out, t, report.started_at.0, style);
    }
    if !healthy.is_empty() {
        let names: Vec<String> = healthy.iter().map(|t| format!("{} ({})", safe(&t.name), t.area.as_str())).collect();
        let _ = writeln!(out, "\n{} ({}): {}", style.result(RunResult::Healthy), healthy.len(), names.join(", "));
    }
    out
}

/// "since the last run: 2 new, 1 resolved", and the new findings.
fn new_since(out: &mut String, report: &RunReport, style: Style) {
    let d = &report.diff;
    if !d.has_previous || (d.new_total == 0 && d.resolved_total == 0 && d.unknown_total == 0) {
        return;
    }
    let _ = write!(out, "since the last run: {} new, {} resolved", d.new_total, d.resolved_total);
    if d.unknown_total > 0 {
        let _ = write!(out, ", {} unknown (target unchecked)", d.unknown_total);
    }
    out.push('\n');
    for entry in super::ref_entries(report, &d.new) {
        let f = entry[0];
        let (check, object, target) = (safe(&f.check), safe(&f.object), safe(&f.target));
        let also: Vec<String> = entry[1..].iter().map(|f| safe(&f.check)).collect();
        let also = if also.is_empty() { String::new() } else { format!(", also {}", also.join(", ")) };
        let _ = writeln!(out, "  {} {check:<26} {object}  on {target}{also}", style.severity(f.severity));
    }
    let shown = d.new.len() as u64;
    if d.new_total > shown {
        let _ = writeln!(out, "  … and {} more new", d.new_total - shown);
    }
}

/// The targets that could not be (fully) checked, each error with its tier.
fn unchecked(out: &mut String, report: &RunReport, style: Style) {
    let failed: Vec<&TargetReport> = report.targets.iter().filter(|t| !t.errors.is_empty()).collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(out, "could not check {} of {} targets:", failed.len(), report.targets.len());
    for t in failed {
        let _ = writeln!(out, "  {}{}", title(t), if t.insecure { "  (TLS verification is off)" } else { "" });
        for e in &t.errors {
            let scope = e.scope.as_deref().map(|s| format!(" {}", safe(s))).unwrap_or_default();
            let _ = writeln!(out, "    {} {:?}{scope}: {}", style.paint("1;35", "ERR "), e.tier, one_line(&e.message));
        }
    }
}

fn snoozed(out: &mut String, report: &RunReport) {
    if report.counts.snoozed > 0 {
        let _ = writeln!(out, "snoozed: {}", report.counts.snoozed);
        for f in &report.snoozes.findings {
            let line = format!("{} {} on {}: {} (until {})", f.check, f.object, f.target, f.reason, f.until.0);
            let _ = writeln!(out, "  {}", safe(&line));
        }
    }
    for r in &report.snoozes.expired {
        let _ = writeln!(out, "snooze expired: {}", safe(&format!("{} {} ({})", r.check, r.object, r.reason)));
    }
    for r in &report.snoozes.refused {
        let why = r.note.as_deref().unwrap_or_default();
        let _ = writeln!(out, "snooze refused: {}", safe(&format!("{} {}: {why}", r.check, r.object)));
    }
}

/// "KUBERNETES local (scope)".
fn title(t: &TargetReport) -> String {
    let scope = t.scope.as_deref().map(|s| format!(" ({})", safe(s))).unwrap_or_default();
    format!("{} {}{scope}", t.area.as_str().to_uppercase(), safe(&t.name))
}

fn target(out: &mut String, t: &TargetReport, at: jiff::Timestamp, style: Style) {
    let facts: Vec<String> = t
        .facts
        .iter()
        .filter(|(k, _)| !super::operational(k))
        .map(|(k, v)| format!("{} {}", safe(k), super::thousands(*v)))
        .collect();
    let _ = writeln!(
        out,
        "{}: {}  {}/{}/{}{}",
        title(t),
        style.result(t.result),
        t.counts.critical,
        t.counts.warning,
        t.counts.info,
        if facts.is_empty() { String::new() } else { format!("  [{}]", facts.join(", ")) }
    );
    if !t.checks.is_empty() {
        let _ = writeln!(out, "  checks: {}", safe(&super::checks_phrase(&t.checks, 8)));
    }
    if t.insecure {
        let _ = writeln!(out, "  ! TLS verification is off for this target");
    }
    if !t.errors.is_empty() {
        let _ = writeln!(out, "  ! incomplete: {} errors, listed above", t.errors.len());
    }
    let mut shown = 0u64;
    for entry in super::entries(t).into_iter().take(PER_TARGET) {
        finding(out, &entry[0], at, style);
        if entry.len() > 1 {
            let also: Vec<String> =
                entry[1..].iter().map(|f| format!("{}: {}", safe(&f.check), one_line(&f.message))).collect();
            let _ = writeln!(out, "       also {}", clip(&also.join(" · "), Limit::Chars(200)));
        }
        shown += entry.len() as u64;
    }
    if t.counts.total > shown + t.counts.snoozed {
        let _ = writeln!(out, "  … and {} more", t.counts.total - t.counts.snoozed - shown);
    }
}

/// A finding's line; how long it has been failing is told as of the run's start `at`.
fn finding(out: &mut String, f: &Finding, at: jiff::Timestamp, style: Style) {
    let since = f
        .since
        .as_ref()
        .map(|s| format!(" (since {})", friendly(at.duration_since(s.0).as_secs())))
        .unwrap_or_default();
    let (check, object) = (safe(&f.check), safe(&f.object));
    let _ = writeln!(out, "  {} {check:<26} {object}  {}{since}", style.severity(f.severity), one_line(&f.message));
}

/// A field as the terminal may print it: cluster data can't drive the terminal, so every
/// control character (escape sequences included) becomes a space.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn one_line(s: &str) -> String {
    clip(&safe(s), Limit::Chars(160)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Area, Counts, ErrorTier, RunDiff, TargetError};
    use crate::evaluate::finding;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn report() -> RunReport {
        let t0: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
        let mut counts = Counts::default();
        counts.add(Severity::Critical, 12);
        let k = TargetReport {
            name: "local".into(),
            area: Area::Kubernetes,
            scope: None,
            result: RunResult::Critical,
            errors: vec![],
            counts,
            facts: [("pods".to_string(), 40), ("podsListRequests".to_string(), 1)].into(),
            checks: Default::default(),
            findings: (0..12)
                .map(|i| {
                    finding(
                        Severity::Critical,
                        "CrashLoopBackOff",
                        format!("prod/web-{i}/app"),
                        "back-off\nrestarting",
                        None,
                    )
                })
                .collect(),
            insecure: false,
        };
        let a = TargetReport {
            name: "prod/eu-west-1".into(),
            area: Area::Aws,
            scope: Some("eu-west-1".into()),
            result: RunResult::Failed,
            errors: vec![TargetError { tier: ErrorTier::Unauthorized, scope: None, message: "ExpiredToken".into() }],
            counts: Counts::default(),
            facts: Default::default(),
            checks: Default::default(),
            findings: vec![],
            insecure: true,
        };
        RunReport {
            schema_version: "v".into(),
            check: None,
            run_id: "r".into(),
            slot: Time(t0),
            started_at: Time(t0),
            finished_at: Time(t0),
            duration_seconds: 1.25,
            result: RunResult::Critical,
            incomplete: true,
            unchecked_targets: 1,
            counts,
            areas: Default::default(),
            targets: vec![a, k],
            omitted_targets: 0,
            diff: RunDiff { has_previous: true, new_total: 2, resolved_total: 1, ..Default::default() },
            snoozes: Default::default(),
            findings_digest: "d".into(),
            attempt: 1,
        }
    }

    /// New first, then what could not be checked, then each target with counts per check
    /// and one entry per object, the healthy on one line; no bookkeeping counter.
    #[test]
    fn plain_report_in_the_digests_order() {
        let mut r = report();
        let k = &mut r.targets[1];
        k.findings.insert(1, finding(Severity::Warning, "HighRestarts", "prod/web-0/app", "12 restarts", None));
        k.counts.add(Severity::Warning, 1);
        k.checks = [("CrashLoopBackOff".to_string(), 12), ("HighRestarts".to_string(), 1)].into();
        let mut healthy = r.targets[1].clone();
        (healthy.name, healthy.findings, healthy.counts, healthy.result) =
            ("quiet".into(), vec![], Counts::default(), RunResult::Healthy);
        r.targets.push(healthy);
        r.diff.new = vec![crate::api::FindingRef {
            target: "local".into(),
            severity: Severity::Critical,
            check: "CrashLoopBackOff".into(),
            object: "prod/web-0/app".into(),
            runs: None,
            since: None,
        }];
        let text = render("default/platform", &r, Style { color: false });
        let expected = "\
default/platform: CRITICAL · 1 target unchecked  12 critical, 0 warning, 0 info  (1.2s)
since the last run: 2 new, 1 resolved
  CRIT CrashLoopBackOff           prod/web-0/app  on local
  … and 1 more new
could not check 1 of 3 targets:
  AWS prod/eu-west-1 (eu-west-1)  (TLS verification is off)
    ERR  Unauthorized: ExpiredToken

KUBERNETES local: CRITICAL  12/1/0  [pods 40]
  checks: CrashLoopBackOff 12 · HighRestarts 1
  CRIT CrashLoopBackOff           prod/web-0/app  back-off restarting
       also HighRestarts: 12 restarts
  CRIT CrashLoopBackOff           prod/web-1/app  back-off restarting
";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("  … and 2 more\n"), "{text}");
        assert!(text.ends_with("\nHEALTHY (1): quiet (kubernetes)\n"), "{text}");
        assert!(!text.contains("ListRequests") && !text.contains('\x1b'), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        let text = render("x", &report(), Style { color: true });
        assert!(text.contains("\x1b[1;31mCRIT\x1b[0m"));
    }

    /// Cluster data can't drive the terminal: no escape or control character of a target
    /// name, check, object, scope or error reaches the output.
    #[test]
    fn no_field_reaches_the_terminal_raw() {
        let mut r = report();
        let evil = "Evil\u{1b}[31mReason\r\n\u{7}";
        for t in &mut r.targets {
            t.name = format!("t{evil}");
            t.scope = Some(evil.into());
            t.facts.insert(format!("f{evil}"), 1);
            t.checks.insert(format!("Event{evil}"), 2);
            for e in &mut t.errors {
                e.message = evil.into();
                e.scope = Some(evil.into());
            }
            for f in &mut t.findings {
                f.check = format!("Event{evil}");
                f.object = evil.into();
            }
        }
        let out = render(evil, &r, Style { color: false });
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("Evil [31mReason"), "{out}");
    }
}
