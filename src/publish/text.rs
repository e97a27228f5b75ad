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

/// Renders one run of the MorningCheck `name`.
pub fn render(name: &str, report: &RunReport, style: Style) -> String {
    let mut out = String::new();
    let c = &report.counts;
    let _ = writeln!(
        out,
        "{}: {}{}  {} critical, {} warning, {} info  ({:.1}s)",
        safe(name),
        style.result(report.result),
        super::unchecked_suffix(report),
        c.critical,
        c.warning,
        c.info,
        report.duration_seconds
    );
    let d = &report.diff;
    if d.has_previous && (d.new_total > 0 || d.resolved_total > 0 || d.unknown_total > 0) {
        let _ = write!(out, "since the last run: {} new, {} resolved", d.new_total, d.resolved_total);
        if d.unknown_total > 0 {
            let _ = write!(out, ", {} unknown (target unchecked)", d.unknown_total);
        }
        out.push('\n');
    }
    if c.snoozed > 0 {
        let _ = writeln!(out, "snoozed: {}", c.snoozed);
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
    let mut targets: Vec<&TargetReport> = report.targets.iter().collect();
    targets.sort_by_key(|t| (t.area, std::cmp::Reverse(crate::evaluate::rank(t.result))));
    for t in targets {
        out.push('\n');
        target(&mut out, t, style);
    }
    out
}

fn target(out: &mut String, t: &TargetReport, style: Style) {
    let scope = t.scope.as_deref().map(|s| format!(" ({})", safe(s))).unwrap_or_default();
    let facts: Vec<String> =
        t.facts.iter().filter(|(k, _)| !super::operational(k)).map(|(k, v)| format!("{} {v}", safe(k))).collect();
    let _ = writeln!(
        out,
        "{} {}{scope}: {}  {}/{}/{}{}",
        t.area.as_str().to_uppercase(),
        safe(&t.name),
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
    for e in &t.errors {
        let scope = e.scope.as_deref().map(|s| format!(" {}", safe(s))).unwrap_or_default();
        let _ = writeln!(out, "  {} {:?}{scope}: {}", style.paint("1;35", "ERR "), e.tier, one_line(&e.message));
    }
    for f in t.findings.iter().take(PER_TARGET) {
        finding(out, f, style);
    }
    let shown = t.findings.len().min(PER_TARGET) as u64;
    if t.counts.total > shown {
        let _ = writeln!(out, "  … and {} more", t.counts.total - shown);
    }
}

fn finding(out: &mut String, f: &Finding, style: Style) {
    let since = f
        .since
        .as_ref()
        .map(|s| format!(" (since {})", friendly(jiff::Timestamp::now().duration_since(s.0).as_secs())))
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

    #[test]
    fn plain_report_groups_by_area_and_caps_findings() {
        let text = render("default/platform", &report(), Style { color: false });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "default/platform: CRITICAL · 1 target unchecked  12 critical, 0 warning, 0 info  (1.2s)");
        assert_eq!(lines[1], "since the last run: 2 new, 1 resolved");
        assert_eq!(lines[3], "KUBERNETES local: CRITICAL  12/0/0  [pods 40]");
        assert_eq!(lines[4].trim_end(), "  CRIT CrashLoopBackOff           prod/web-0/app  back-off restarting");
        assert!(text.contains("  … and 2 more\n"));
        assert!(text.contains("AWS prod/eu-west-1 (eu-west-1): FAILED  0/0/0\n  ! TLS verification is off for this target\n  ERR  Unauthorized: ExpiredToken\n"));
        assert!(!text.contains('\x1b'));
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
