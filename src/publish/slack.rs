//! The Slack digest: one Block Kit message per run, and its delivery to an incoming webhook.
//!
//! [`render`] lays the message out inside Slack's limits whatever the input: every piece of
//! user data is escaped for mrkdwn and cut to a budget counted in serialized JSON
//! characters, so the whole payload stays under [`MAX_PAYLOAD_CHARS`] and what does not fit
//! is summarised with the `kubectl` command that shows everything.
//!
//! [`deliver`] posts it at most once: a POST is retried only when Slack certainly did not
//! act on it (connection refused, 429, 503), never after a timeout once the request left.
//! The webhook URL is a secret: it never appears in a message or a log.

use std::cmp::Reverse;
use std::error::Error as _;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{
    Area, Counts, ErrorTier, Finding, FindingRef, NotifyPolicy, RunDiff, RunReport, RunResult, Severity, TargetReport,
};
use crate::clip::{Limit, clip};
use crate::net::{self, Attempt, RetryPolicy};

/// Slack's limit on blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a section's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Slack's limit on a header's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Slack's limit on fields in a section.
pub const MAX_FIELDS: usize = 10;
/// Slack's limit on one field's text.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Our ceiling for the serialized payload, well under the ~12,000 Slack accepts.
pub const MAX_PAYLOAD_CHARS: usize = 10_000;

/// What the digest needs besides the report.
pub struct Digest<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// IANA zone the run time is shown in; UTC when unset or unknown.
    pub time_zone: Option<&'a str>,
    /// Added verbatim (not escaped) on a Critical result, e.g. `<!here>`.
    pub mentions: &'a [String],
}

// ---------------------------------------------------------------------------------------
// Budgets, in serialized JSON characters. Section budgets stay below the 3,000-character
// text limit; the fixed parts are small so the targets get most of the message.

const HEADER_NAME_CHARS: usize = 100;
const TEXT_FALLBACK_COST: usize = 600;
const MENTIONS_COST: usize = 300;
const SUMMARY_COST: usize = 700;
const AREA_FIELD_COST: usize = 100;
const DIFF_COST: usize = 1800;
const SNOOZE_COST: usize = 900;
const FAILED_COST: usize = 1600;
const OVERFLOW_COST: usize = 400;
const CONTEXT_COST: usize = 700;
const SECTION_MIN_COST: usize = 450;
const SECTION_MAX_COST: usize = 2900;

// Caps of single pieces of user data.
const NAME_COST: usize = 100;
const SCOPE_COST: usize = 80;
const CHECK_COST: usize = 60;
const OBJECT_COST: usize = 120;
const MESSAGE_COST: usize = 160;
const ERROR_COST: usize = 300;
const K8S_NAME_COST: usize = 253;
const FACTS_SHOWN: usize = 6;

/// Renders the digest: `{"text": <plain fallback>, "blocks": [...]}`.
pub fn render(report: &RunReport, d: &Digest) -> Value {
    let layout = Layout::new(report, d);
    let mut msg = Message { text: layout.fallback_text(), ..Message::default() };
    msg.push(layout.header());
    msg.push(layout.summary());
    if let Some(b) = layout.diff() {
        msg.push(b);
    }
    if let Some(b) = layout.snoozed() {
        msg.push(b);
    }
    let failed = layout.failed();
    let context = layout.context();
    // What the targets may use: everything the other blocks leave, less the overflow note.
    let reserved_blocks = failed.is_some() as usize + 2;
    let reserved_cost = failed.as_ref().map_or(0, |b| block_cost(b) + 1)
        + block_cost(&context)
        + 1
        + block_cost(&section(""))
        + OVERFLOW_COST
        + 1;
    let slots = MAX_BLOCKS.saturating_sub(msg.blocks.len() + reserved_blocks);
    let left = MAX_PAYLOAD_CHARS.saturating_sub(msg.cost() + reserved_cost);
    let (sections, hidden) = layout.targets(slots, left);
    for b in sections {
        msg.push(b);
    }
    if let Some(b) = layout.overflow(&hidden) {
        msg.push(b);
    }
    if let Some(b) = failed {
        msg.push(b);
    }
    msg.push(context);
    msg.into_value()
}

/// The blocks and fallback text of a message, with their serialized size.
#[derive(Default)]
struct Message {
    text: String,
    blocks: Vec<Value>,
    blocks_cost: usize,
}

impl Message {
    fn push(&mut self, block: Value) {
        self.blocks_cost += block_cost(&block) + 1;
        self.blocks.push(block);
    }

    /// Serialized length of `{"blocks":[...],"text":"..."}`.
    fn cost(&self) -> usize {
        r#"{"blocks":[],"text":""}"#.len() + self.blocks_cost + json_cost(&self.text)
    }

    fn into_value(self) -> Value {
        json!({"text": self.text, "blocks": self.blocks})
    }
}

/// The report with what rendering needs, shared by every block.
struct Layout<'a> {
    report: &'a RunReport,
    d: &'a Digest<'a>,
    /// `kubectl get mc -n NS NAME`, escaped.
    kubectl: String,
}

impl<'a> Layout<'a> {
    fn new(report: &'a RunReport, d: &'a Digest<'a>) -> Self {
        let kubectl =
            format!("kubectl get mc -n {} {}", plain(d.namespace, K8S_NAME_COST), plain(d.name, K8S_NAME_COST));
        Self { report, d, kubectl }
    }

    fn critical(&self) -> bool {
        self.report.result == RunResult::Critical
    }

    fn failed_targets(&self) -> impl Iterator<Item = &'a TargetReport> {
        self.report.targets.iter().filter(|t| !t.errors.is_empty())
    }

    /// "…and 12 more: `kubectl get mc -n NS NAME -o yaml`".
    fn more(&self, n: u64) -> String {
        format!("…and {n} more: `{} -o yaml`", self.kubectl)
    }

    fn header(&self) -> Value {
        let (emoji, word) = result_label(self.report.result);
        let name = plain(self.d.name, HEADER_NAME_CHARS);
        let unchecked = super::unchecked_suffix(self.report);
        let text = clip(&format!("{emoji} {name}: {word}{unchecked}"), Limit::Chars(MAX_HEADER_TEXT)).into_owned();
        json!({"type": "header", "text": {"type": "plain_text", "text": text, "emoji": true}})
    }

    /// The plain fallback shown in notifications; mentions go here too so they ping.
    fn fallback_text(&self) -> String {
        let (_, word) = result_label(self.report.result);
        let mut text = Text::new(TEXT_FALLBACK_COST);
        let line = format!(
            "MorningCheck {}: {word}{} — {}{}",
            plain(self.d.name, NAME_COST),
            super::unchecked_suffix(self.report),
            counts_phrase(&self.report.counts),
            self.targets_phrase()
        );
        text.push_inline(&line);
        if self.critical() {
            text.push_inline(&self.mentions());
        }
        text.into_string()
    }

    /// " in 4 targets, 1 could not be checked".
    fn targets_phrase(&self) -> String {
        let n = self.report.targets.len();
        let failed = self.failed_targets().count();
        let s = if n == 1 { "" } else { "s" };
        if failed == 0 {
            format!(" in {n} target{s}")
        } else {
            format!(" in {n} target{s}, {failed} could not be checked")
        }
    }

    /// The configured mentions, verbatim, as many whole ones as fit.
    fn mentions(&self) -> String {
        let mut out = Text::new(MENTIONS_COST);
        for m in self.d.mentions {
            let m: String = m.chars().filter(|c| !c.is_control()).collect();
            let m = m.trim();
            // A cut mention would be broken markup: only whole ones.
            if !m.is_empty() && out.fits(m, " ", 0) {
                out.push_inline(m);
            }
        }
        out.into_string()
    }

    fn summary(&self) -> Value {
        let c = &self.report.counts;
        let mut text = Text::new(SUMMARY_COST);
        let headline = if c.total == 0 { "*No findings*".to_string() } else { format!("*{}*", counts_phrase(c)) };
        text.push_line(&format!("{headline}{}", self.targets_phrase()));
        if self.critical() {
            let mentions = self.mentions();
            if !mentions.is_empty() {
                text.push_line(&mentions);
            }
        }
        let mut block = section(&text.into_string());
        // Per-area counts only help when there is something to locate.
        if self.report.areas.len() > 1 && c.critical + c.warning > 0 {
            block["fields"] = Value::Array(self.area_fields());
        }
        block
    }

    /// One field per area with its counts, at most [`MAX_FIELDS`].
    fn area_fields(&self) -> Vec<Value> {
        self.report
            .areas
            .iter()
            .take(MAX_FIELDS)
            .map(|(area, c)| {
                let mut t = Text::new(AREA_FIELD_COST.min(MAX_FIELD_TEXT));
                t.push_line(&format!("*{}*", plain(area_title(area), NAME_COST / 2)));
                t.push_line(&counts_phrase(c));
                json!({"type": "mrkdwn", "text": t.into_string()})
            })
            .collect()
    }

    /// New and resolved findings since the previous run; none on a first run.
    fn diff(&self) -> Option<Value> {
        let diff = &self.report.diff;
        if !diff.has_previous {
            return None;
        }
        let mut text = Text::new(DIFF_COST);
        text.push_line(&diff_headline(diff));
        let resolved_reserve = if diff.resolved_total > 0 { DIFF_COST / 3 } else { 0 };
        if diff.new_total > 0 {
            text.push_line("*New*");
            let lines = by_severity(&diff.new).into_iter().map(|f| diff_line(f, false));
            text.push_list(lines, diff.new_total, |n| format!("…and {n} more new"), resolved_reserve);
        }
        if diff.resolved_total > 0 {
            text.push_line("*Resolved*");
            let lines = by_severity(&diff.resolved).into_iter().map(|f| diff_line(f, true));
            let reserve = if longest(diff).is_empty() { 0 } else { DIFF_COST / 4 };
            text.push_list(lines, diff.resolved_total, |n| format!("…and {n} more resolved"), reserve);
        }
        let longest = longest(diff);
        if !longest.is_empty() {
            text.push_line("*Failing longest*");
            let zone = self.d.time_zone;
            let lines = longest.iter().map(|f| {
                let since = f.since.as_ref().map(|t| format!(", since {}", local_day(t.0, zone))).unwrap_or_default();
                format!("{} — {} runs{since}", diff_line(f, false), f.runs.unwrap_or(1))
            });
            text.push_list(lines, longest.len() as u64, |n| format!("…and {n} more"), 0);
        }
        Some(section(&text.into_string()))
    }

    /// Snoozed findings with reason and end; snoozes that just ended or were refused.
    fn snoozed(&self) -> Option<Value> {
        let s = &self.report.snoozes;
        let n = self.report.counts.snoozed;
        if n == 0 && s.expired.is_empty() && s.refused.is_empty() {
            return None;
        }
        let zone = self.d.time_zone;
        let mut text = Text::new(SNOOZE_COST);
        let (ended, refused) = (s.expired.len() as u64, s.refused.len() as u64);
        let reserve = if ended + refused > 0 { SNOOZE_COST / 3 } else { 0 };
        if n > 0 {
            text.push_line(&format!("*Snoozed:* {n}"));
            let lines = s.findings.iter().map(|f| {
                format!(
                    "• :zzz: *{}* `{}` on {} — {}, until {}",
                    plain(&f.check, CHECK_COST),
                    code(&f.object, OBJECT_COST),
                    plain(&f.target, NAME_COST),
                    plain(&f.reason, MESSAGE_COST),
                    local_day(f.until.0, zone)
                )
            });
            text.push_list(lines, n, |n| format!("…and {n} more snoozed"), reserve);
        }
        let snooze_line = |r: &crate::api::SnoozeRef, what: &str| {
            let why = r.note.as_deref().map(|n| format!(": {}", plain(n, MESSAGE_COST))).unwrap_or_default();
            format!(
                "• *{what}* {} `{}` — {}{why}",
                plain(&r.check, CHECK_COST),
                code(&r.object, OBJECT_COST),
                plain(&r.reason, MESSAGE_COST)
            )
        };
        let lines = s.expired.iter().map(|r| snooze_line(r, "Snooze expired:"));
        text.push_list(lines, ended, |n| format!("…and {n} more snoozes expired"), 0);
        let lines = s.refused.iter().map(|r| snooze_line(r, "Snooze refused:"));
        text.push_list(lines, refused, |n| format!("…and {n} more snoozes refused"), 0);
        Some(section(&text.into_string()))
    }

    /// The targets that could not be checked, with tier and message.
    fn failed(&self) -> Option<Value> {
        let failed: Vec<&TargetReport> = self.failed_targets().collect();
        if failed.is_empty() {
            return None;
        }
        let mut text = Text::new(FAILED_COST);
        let n = self.report.targets.len();
        text.push_line(&format!(":x: *Could not check {} of {n} targets*", failed.len()));
        let lines = failed.iter().copied().map(failed_line);
        text.push_list(lines, failed.len() as u64, |n| format!("…and {n} more failed targets"), 0);
        Some(section(&text.into_string()))
    }

    /// Sections of the targets that fit in `slots` blocks and `left` characters, in report
    /// order; the most severe targets are kept first. Also returns the targets left out.
    fn targets(&self, slots: usize, left: usize) -> (Vec<Value>, Vec<&'a TargetReport>) {
        let mut candidates: Vec<(usize, &TargetReport)> =
            self.report.targets.iter().enumerate().filter(|(_, t)| has_section(t)).collect();
        candidates
            .sort_by_key(|(i, t)| (Reverse(target_rank(t)), Reverse(t.counts.critical), Reverse(t.counts.warning), *i));
        let shown = candidates.len().min(slots).min(left / (SECTION_MIN_COST + 1));
        let needs: Vec<usize> = candidates[..shown].iter().map(|(_, t)| self.section_need(t)).collect();
        // One comma between blocks each.
        let budgets = share(&needs, left - shown);
        let mut sections: Vec<(usize, Value)> = candidates[..shown]
            .iter()
            .zip(budgets)
            .map(|((i, t), budget)| (*i, self.target_section(t, budget)))
            .collect();
        sections.sort_by_key(|(i, _)| *i);
        let hidden = candidates[shown..].iter().map(|(_, t)| *t).collect();
        (sections.into_iter().map(|(_, b)| b).collect(), hidden)
    }

    /// The size a target's section takes without pressure.
    fn section_need(&self, t: &TargetReport) -> usize {
        block_cost(&self.target_section(t, SECTION_MAX_COST))
    }

    /// A target's section within `budget` serialized characters.
    fn target_section(&self, t: &TargetReport, budget: usize) -> Value {
        let cap = budget.saturating_sub(block_cost(&section(""))).min(SECTION_MAX_COST);
        let mut text = Text::new(cap);
        text.push_line(&target_title(t));
        text.push_line(&target_counts(t));
        let total = t.counts.total.max(t.findings.len() as u64);
        let lines = by_severity(&t.findings).into_iter().map(finding_line);
        text.push_list(lines, total, |n| self.more(n), 0);
        section(&text.into_string())
    }

    /// "…and 480 more targets (12 with findings): `kubectl …`" for targets without a section.
    fn overflow(&self, hidden: &[&TargetReport]) -> Option<Value> {
        if hidden.is_empty() {
            return None;
        }
        let with_findings = hidden.iter().filter(|t| t.counts.total > 0).count();
        let mut text = Text::new(OVERFLOW_COST);
        text.push_line(&format!(
            "…and {} more targets ({with_findings} with findings): `{} -o yaml`",
            hidden.len(),
            self.kubectl
        ));
        Some(section(&text.into_string()))
    }

    /// Run time in the schedule's zone, duration, and where to see everything.
    fn context(&self) -> Value {
        let r = self.report;
        let mut text = Text::new(CONTEXT_COST);
        text.push_inline(&format!(
            "Run `{}` started {} · took {} · everything: `{}`",
            code(&r.run_id, NAME_COST),
            local_time(r.started_at.0, self.d.time_zone),
            duration(r.duration_seconds),
            self.kubectl
        ));
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text.into_string()}]})
    }
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn block_cost(block: &Value) -> usize {
    serde_json::to_string(block).map_or(usize::MAX / 4, |s| s.chars().count())
}

/// A target gets a section unless it failed without producing anything.
fn has_section(t: &TargetReport) -> bool {
    t.errors.is_empty() || t.counts.total > 0 || !t.findings.is_empty()
}

/// Which targets keep their section when not all fit: the worst first.
fn target_rank(t: &TargetReport) -> u8 {
    crate::evaluate::rank(t.result)
}

/// Max-min fair split of `total` among `needs`: small needs are met in full, the rest
/// share what is left equally.
fn share(needs: &[usize], total: usize) -> Vec<usize> {
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

fn result_label(r: RunResult) -> (&'static str, &'static str) {
    match r {
        RunResult::Healthy => (":white_check_mark:", "Healthy"),
        RunResult::Warning => (":warning:", "Warning"),
        RunResult::Critical => (":red_circle:", "Critical"),
        RunResult::Failed => (":x:", "Failed"),
        RunResult::Interrupted => (":hourglass:", "Interrupted"),
    }
}

fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    }
}

fn area_name(a: Area) -> &'static str {
    match a {
        Area::Kubernetes => "Kubernetes cluster",
        Area::Prometheus => "Prometheus",
        Area::Aws => "AWS",
    }
}

/// Display name of a key of `RunReport.areas`.
fn area_title(key: &str) -> &str {
    match key {
        "kubernetes" => "Kubernetes",
        "prometheus" => "Prometheus",
        "aws" => "AWS",
        other => other,
    }
}

fn tier_name(t: ErrorTier) -> &'static str {
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
fn counts_phrase(c: &Counts) -> String {
    let snoozed = if c.snoozed > 0 { format!(" · {} snoozed", c.snoozed) } else { String::new() };
    format!("{} critical · {} warning · {} info{snoozed}", c.critical, c.warning, c.info)
}

fn diff_headline(diff: &RunDiff) -> String {
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
fn longest(diff: &RunDiff) -> Vec<&FindingRef> {
    let mut l: Vec<&FindingRef> = diff.still_failing.iter().filter(|f| f.runs.unwrap_or(1) > 1).collect();
    l.sort_by(|a, b| b.runs.cmp(&a.runs).then(b.severity.cmp(&a.severity)));
    l.truncate(3);
    l
}

/// Anything with a severity, to list the most severe first.
trait Severe {
    fn severity(&self) -> Severity;
}

impl Severe for Finding {
    fn severity(&self) -> Severity {
        self.severity
    }
}

impl Severe for FindingRef {
    fn severity(&self) -> Severity {
        self.severity
    }
}

/// Most severe first, keeping the given order among equals.
fn by_severity<T: Severe>(items: &[T]) -> Vec<&T> {
    let mut v: Vec<&T> = items.iter().collect();
    v.sort_by_key(|f| Reverse(f.severity()));
    v
}

/// "• :red_circle: *CrashLoopBackOff* `prod/web` on prod".
fn diff_line(f: &FindingRef, resolved: bool) -> String {
    let emoji = if resolved { ":white_check_mark:" } else { severity_emoji(f.severity) };
    format!(
        "• {emoji} *{}* `{}` on {}",
        plain(&f.check, CHECK_COST),
        code(&f.object, OBJECT_COST),
        plain(&f.target, NAME_COST)
    )
}

/// "• :red_circle: *CrashLoopBackOff* `prod/web` — back-off restarting".
fn finding_line(f: &Finding) -> String {
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

/// "*:red_circle: prod* · Kubernetes cluster · eu-west-1".
fn target_title(t: &TargetReport) -> String {
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
fn target_counts(t: &TargetReport) -> String {
    let mut parts = vec![if t.counts.total == 0 { "No findings".to_string() } else { counts_phrase(&t.counts) }];
    for (k, v) in t.facts.iter().take(FACTS_SHOWN) {
        parts.push(format!("{} {v}", plain(k, CHECK_COST / 2)));
    }
    if !t.errors.is_empty() {
        parts.push(format!(":x: incomplete ({} errors, see below)", t.errors.len()));
    }
    parts.join(" · ")
}

/// "• *prom-eu* (Prometheus): Unreachable [scope] — connection refused (+1 more error)".
fn failed_line(t: &TargetReport) -> String {
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
fn local_time(at: jiff::Timestamp, zone: Option<&str>) -> String {
    local(at, zone, "%Y-%m-%d %H:%M %Z")
}

/// "2026-11-20", the day in the given zone.
fn local_day(at: jiff::Timestamp, zone: Option<&str>) -> String {
    local(at, zone, "%Y-%m-%d")
}

fn local(at: jiff::Timestamp, zone: Option<&str>, format: &str) -> String {
    let tz = zone.and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC);
    at.to_zoned(tz).strftime(format).to_string()
}

/// "12.3s", "4m 05s", "1h 02m".
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    if s < 3600 { format!("{}m {:02}s", s / 60, s % 60) } else { format!("{}h {:02}m", s / 3600, s % 3600 / 60) }
}

// ---------------------------------------------------------------------------------------
// Text within a budget.

/// Lines of mrkdwn text whose serialized JSON length stays within `cap`.
struct Text {
    buf: String,
    cost: usize,
    cap: usize,
}

impl Text {
    fn new(cap: usize) -> Self {
        Self { buf: String::new(), cost: 0, cap }
    }

    fn added_cost(&self, piece: &str, sep: &str) -> usize {
        json_cost(piece) + if self.buf.is_empty() { 0 } else { json_cost(sep) }
    }

    fn fits(&self, piece: &str, sep: &str, reserve: usize) -> bool {
        self.cost + self.added_cost(piece, sep) + reserve <= self.cap
    }

    /// Appends `piece` after `sep`, cut to what is left. Pieces are already escaped, so
    /// the cut happens at a space or a char boundary before any entity it would split.
    fn push_with(&mut self, piece: &str, sep: &str) -> bool {
        let piece = if self.fits(piece, sep, 0) {
            piece.to_string()
        } else {
            let room = self.cap.saturating_sub(self.cost + if self.buf.is_empty() { 0 } else { json_cost(sep) });
            cut_escaped(piece, room)
        };
        if piece.is_empty() || !self.fits(&piece, sep, 0) {
            return false;
        }
        self.cost += self.added_cost(&piece, sep);
        if !self.buf.is_empty() {
            self.buf.push_str(sep);
        }
        self.buf.push_str(&piece);
        true
    }

    fn push_line(&mut self, line: &str) -> bool {
        self.push_with(line, "\n")
    }

    fn push_inline(&mut self, piece: &str) -> bool {
        self.push_with(piece, " ")
    }

    /// Lines while they fit, keeping room for the "…and N more" line and `reserve`; then
    /// that line when `total` is more than what was shown.
    fn push_list(
        &mut self,
        lines: impl Iterator<Item = String>,
        total: u64,
        more: impl Fn(u64) -> String,
        reserve: usize,
    ) {
        let room_for_more = json_cost(&more(total)) + 2;
        let mut shown = 0u64;
        for line in lines {
            let last = shown + 1 == total;
            let keep = reserve + if last { 0 } else { room_for_more };
            if shown >= total || !self.fits(&line, "\n", keep) {
                break;
            }
            self.push_line(&line);
            shown += 1;
        }
        if shown < total {
            self.push_line(&more(total - shown));
        }
    }

    fn into_string(self) -> String {
        self.buf
    }
}

/// Length of `s` once serialized as (the inside of) a JSON string by serde_json.
fn json_cost(s: &str) -> usize {
    s.chars().map(json_char_cost).sum()
}

fn json_char_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        c if (c as u32) < 0x20 => 6,
        _ => 1,
    }
}

/// User data for mrkdwn: control characters (newlines) become spaces, `&`, `<` and `>`
/// become entities so nothing is a mention or a link, and the result is cut on a char
/// boundary to `max` serialized characters, ending in "…" when cut.
fn plain(raw: &str, max: usize) -> String {
    escape_within(raw.chars().map(|c| if c.is_control() { ' ' } else { c }), max)
}

/// Like [`plain`] for the inside of a `code span`: backticks would end it early.
fn code(raw: &str, max: usize) -> String {
    let s = escape_within(
        raw.chars().map(|c| {
            if c.is_control() {
                ' '
            } else if c == '`' {
                '\''
            } else {
                c
            }
        }),
        max,
    );
    if s.trim().is_empty() { "-".into() } else { s }
}

fn escape_within(chars: impl Iterator<Item = char>, max: usize) -> String {
    let chars: Vec<char> = chars.collect();
    let total: usize = chars.iter().map(|&c| escaped_cost(c)).sum();
    let budget = if total <= max { max } else { max.saturating_sub(1) };
    let mut out = String::new();
    let mut cost = 0;
    for &c in &chars {
        let n = escaped_cost(c);
        if cost + n > budget {
            out.push('…');
            return out;
        }
        cost += n;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn escaped_cost(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        c => json_char_cost(c),
    }
}

/// Cuts already-escaped text to `max` serialized characters without splitting an entity.
fn cut_escaped(s: &str, max: usize) -> String {
    if json_cost(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut cost = 0;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let token =
            ["&amp;", "&lt;", "&gt;"].into_iter().find(|e| rest.starts_with(e)).unwrap_or(&rest[..c.len_utf8()]);
        let n = json_cost(token);
        if cost + n + 1 > max {
            out.push('…');
            return out;
        }
        cost += n;
        out.push_str(token);
        rest = &rest[token.len()..];
    }
    out
}

// ---------------------------------------------------------------------------------------
// Policy and URL.

/// Whether this run posts: `Always`; `OnFindings` unless Healthy and complete; `OnChange`
/// when the set of findings differs from the previous completed run's (a first run always
/// posts).
pub fn should_notify(policy: NotifyPolicy, report: &RunReport, previous_digest: Option<&str>) -> bool {
    match policy {
        NotifyPolicy::Always => true,
        NotifyPolicy::OnFindings => report.result != RunResult::Healthy || report.incomplete,
        NotifyPolicy::OnChange => previous_digest != Some(report.findings_digest.as_str()),
    }
}

/// Checks a webhook URL: https with a host. Plain http is accepted only for a loopback
/// host (127.0.0.0/8, ::1, localhost) so a local test receiver works; it never leaves the
/// machine. Errors never quote the URL: its path is the secret.
pub fn check_webhook_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("the webhook URL is not a valid URL ({e})"))?;
    let Some(host) = url.host() else {
        return Err("the webhook URL has no host".into());
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err("the webhook URL must use https (plain http only to a loopback host)".into()),
        other => Err(format!("the webhook URL must use https, not {}", plain(other, 20))),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

// ---------------------------------------------------------------------------------------
// Delivery.

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Slack answered 2xx.
    Delivered,
    /// Slack refused it, or it could not be sent.
    Failed,
    /// Sent, but no answer: Slack may or may not have posted it; not repeated.
    Unknown,
}

impl From<Outcome> for crate::api::NotificationOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Delivered => Self::Delivered,
            Outcome::Failed => Self::Failed,
            Outcome::Unknown => Self::Unknown,
        }
    }
}

/// The result of [`deliver`]: outcome, a message without the URL, and POSTs attempted.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub outcome: Outcome,
    pub message: Option<String>,
    pub attempts: u32,
}

/// Longest wait for one attempt; the deadline bounds it further.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of [`deliver`]: only for requests Slack certainly did not act on.
pub const RETRY: RetryPolicy =
    RetryPolicy { base: Duration::from_millis(500), max: Duration::from_secs(5), attempts: 4 };

/// Posts `payload` to the webhook at `url` by `deadline`.
///
/// Retried: connection failures before the request was sent, 429 (after `Retry-After`
/// when the deadline allows) and 503. Not retried: other statuses (`Failed`, with Slack's
/// error body verbatim) and anything after the request was sent (`Unknown`).
pub async fn deliver(http: &reqwest::Client, url: &str, payload: &Value, deadline: Instant) -> Delivery {
    if let Err(e) = check_webhook_url(url) {
        return Delivery { outcome: Outcome::Failed, message: Some(e), attempts: 0 };
    }
    if Instant::now() >= deadline {
        return Delivery {
            outcome: Outcome::Failed,
            message: Some("deadline passed before sending".into()),
            attempts: 0,
        };
    }
    let body = match serde_json::to_vec(payload) {
        Ok(b) => b,
        Err(e) => return Delivery { outcome: Outcome::Failed, message: Some(format!("payload: {e}")), attempts: 0 },
    };
    let mut attempts = 0;
    let result = net::retry(RETRY, deadline, |_| {
        attempts += 1;
        // The attempt owns what it sends: a future borrowing through this closure is not
        // provably Send to the controller's spawned task.
        let (http, url, body) = (http.clone(), url.to_string(), body.clone());
        async move { post_once(&http, &url, body, deadline).await }
    })
    .await;
    let (outcome, message) = match result {
        Ok(()) => (Outcome::Delivered, None),
        Err(f) => (f.outcome, Some(f.message)),
    };
    match outcome {
        Outcome::Delivered => tracing::info!(attempts, "Slack digest delivered"),
        _ => {
            tracing::warn!(attempts, outcome = ?outcome, error = message.as_deref().unwrap_or(""), "Slack delivery did not succeed")
        }
    }
    Delivery { outcome, message, attempts }
}

/// Why an attempt did not deliver.
struct AttemptFailure {
    outcome: Outcome,
    message: String,
}

fn failure(outcome: Outcome, message: String) -> AttemptFailure {
    AttemptFailure { outcome, message: crate::redact::scrub(&message) }
}

async fn post_once(http: &reqwest::Client, url: &str, body: Vec<u8>, deadline: Instant) -> Attempt<(), AttemptFailure> {
    let timeout = ATTEMPT_TIMEOUT.min(net::remaining(deadline));
    let sent = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return request_error(e),
    };
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    classify(status, retry_after, &text)
}

/// A connect error means nothing was sent: retry. Anything else happened after the
/// request may have reached Slack: unknown, never repeated.
fn request_error(e: reqwest::Error) -> Attempt<(), AttemptFailure> {
    let connect = e.is_connect();
    let timeout = e.is_timeout();
    let detail = error_chain(&e.without_url());
    if connect {
        Attempt::Retry(failure(Outcome::Failed, format!("could not connect to Slack: {detail}")), None)
    } else if timeout {
        Attempt::Fail(failure(
            Outcome::Unknown,
            format!("no answer from Slack in time after sending; it may have posted: {detail}"),
        ))
    } else {
        Attempt::Fail(failure(
            Outcome::Unknown,
            format!("connection lost after sending; Slack may have posted: {detail}"),
        ))
    }
}

fn classify(status: reqwest::StatusCode, retry_after: Option<Duration>, body: &str) -> Attempt<(), AttemptFailure> {
    if status.is_success() {
        return Attempt::Done(());
    }
    let message = format!("Slack answered HTTP {}: {}", status.as_u16(), body_excerpt(body));
    match status.as_u16() {
        429 => Attempt::Retry(failure(Outcome::Failed, message), Some(retry_after.unwrap_or(Duration::from_secs(1)))),
        503 => Attempt::Retry(failure(Outcome::Failed, message), retry_after),
        _ => Attempt::Fail(failure(Outcome::Failed, message)),
    }
}

/// `Retry-After` in seconds (Slack sends seconds; an HTTP date is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Slack's error code (`no_service`, `invalid_blocks`, …) verbatim. Any other body is not
/// quoted: a webhook URL may point at any service, and an error page may echo the URL.
fn body_excerpt(body: &str) -> String {
    let code = body.trim();
    let slack_like = (1..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match (code.is_empty(), slack_like) {
        (true, _) => "(empty body)".into(),
        (false, true) => code.into(),
        (false, false) => "(a body that is not a Slack error code; not shown)".into(),
    }
}

/// An error and its sources, "a: b: c", without repeats.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The HTTP client for Slack, built once: rustls with verification on, a 5 s connect
/// timeout, and no redirects (a POST with the digest goes to the webhook or nowhere).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("morningcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cost_matches_serde() {
        for s in ["plain", "quote \" back \\ slash", "new\nline\ttab\r\u{1}\u{1f}", "émoji 🚀 עברית é", ""] {
            assert_eq!(json_cost(s) + 2, serde_json::to_string(s).unwrap().chars().count(), "{s:?}");
        }
    }

    #[test]
    fn plain_escapes_and_cuts_on_char_boundaries() {
        assert_eq!(plain("a & <b> \n c", 100), "a &amp; &lt;b&gt;   c");
        assert_eq!(plain("<!channel>", 100), "&lt;!channel&gt;");
        let cut = plain(&"🚀é".repeat(100), 11);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
        // Never splits an entity.
        let cut = plain("&&&&", 12);
        assert_eq!(cut, "&amp;&amp;…");
        assert!(json_cost(&plain(&"&".repeat(1000), 50)) <= 50);
    }

    #[test]
    fn code_spans_have_no_backticks() {
        assert_eq!(code("a`b", 10), "a'b");
        assert_eq!(code("", 10), "-");
    }

    #[test]
    fn text_respects_its_cap() {
        let mut t = Text::new(40);
        assert!(t.push_line("first line"));
        assert!(t.push_line(&"x".repeat(100)));
        assert!(!t.push_line("no room"));
        let s = t.into_string();
        assert!(json_cost(&s) <= 40);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn cut_escaped_keeps_entities_whole() {
        assert_eq!(cut_escaped("a&amp;b", 5), "a…");
        assert_eq!(cut_escaped("a&amp;bc", 7), "a&amp;…");
        assert_eq!(cut_escaped("abc", 3), "abc");
    }

    #[test]
    fn share_is_max_min_fair() {
        assert_eq!(share(&[100, 5000, 5000], 3100), vec![100, 1500, 1500]);
        assert_eq!(share(&[10, 20], 1000), vec![10, 20]);
        assert!(share(&[], 10).is_empty());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(3725.0), "1h 02m");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn local_time_uses_the_zone() {
        let at: jiff::Timestamp = "2024-05-02T05:00:00Z".parse().unwrap();
        assert_eq!(local_time(at, Some("Europe/Berlin")), "2024-05-02 07:00 CEST");
        assert_eq!(local_time(at, None), "2024-05-02 05:00 UTC");
        assert_eq!(local_time(at, Some("Not/AZone")), "2024-05-02 05:00 UTC");
    }

    #[test]
    fn webhook_urls() {
        assert!(check_webhook_url("https://hooks.slack.com/services/T0/B0/x").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook_url("http://127.3.4.5/hook").is_ok());
        assert!(check_webhook_url("http://[::1]:9/hook").is_ok());
        assert!(check_webhook_url("http://LOCALHOST/hook").is_ok());
        for bad in [
            "http://hooks.slack.com/services/T0/B0/secretpath",
            "http://10.0.0.1/secretpath",
            "ftp://hooks.slack.com/secretpath",
            "https://",
            "https://:80/secretpath",
            "not a url secretpath",
            "file:///secretpath",
        ] {
            let e = check_webhook_url(bad).unwrap_err();
            assert!(!e.contains("secretpath"), "{e}");
        }
    }

    #[test]
    fn retry_classification() {
        use reqwest::StatusCode;
        assert!(matches!(classify(StatusCode::OK, None, "ok"), Attempt::Done(())));
        assert!(
            matches!(classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), ""), Attempt::Retry(_, Some(d)) if d == Duration::from_secs(2))
        );
        assert!(matches!(classify(StatusCode::SERVICE_UNAVAILABLE, None, ""), Attempt::Retry(_, None)));
        match classify(StatusCode::BAD_REQUEST, None, "invalid_blocks\n") {
            Attempt::Fail(f) => {
                assert_eq!(f.outcome, Outcome::Failed);
                assert_eq!(f.message, "Slack answered HTTP 400: invalid_blocks");
            }
            _ => panic!("400 is not retried"),
        }
        assert!(matches!(classify(StatusCode::INTERNAL_SERVER_ERROR, None, ""), Attempt::Fail(_)));
    }
}
