//! The message's layout: header, summary, diff, snoozes, one section per target, the
//! targets that could not be checked and the context line, each within its budget.

use std::cmp::Reverse;

use serde_json::{Value, json};

use crate::api::{RunReport, RunResult, TargetReport};
use crate::clip::{Limit, clip};
use crate::publish::unchecked_suffix;

use super::app::MAX_REPLIES;
use super::lines::*;
use super::mrkdwn::*;
use super::{Digest, MAX_BLOCKS, MAX_FIELD_TEXT, MAX_FIELDS, MAX_HEADER_TEXT, MAX_PAYLOAD_CHARS, Origin};

// ---------------------------------------------------------------------------------------
// Budgets, in serialized JSON characters. Section budgets stay below the 3,000-character
// text limit; the fixed parts are small so the targets get most of the message.

pub(super) const HEADER_NAME_CHARS: usize = 100;
pub(super) const TEXT_FALLBACK_COST: usize = 600;
pub(super) const MENTIONS_COST: usize = 300;
pub(super) const SUMMARY_COST: usize = 700;
pub(super) const AREA_FIELD_COST: usize = 100;
pub(super) const DIFF_COST: usize = 1800;
pub(super) const SNOOZE_COST: usize = 900;
pub(super) const FAILED_COST: usize = 1600;
pub(super) const HEALTHY_COST: usize = 700;
pub(super) const TARGET_LINES_COST: usize = 2500;
pub(super) const OVERFLOW_COST: usize = 400;
pub(super) const CONTEXT_COST: usize = 700;
pub(super) const SECTION_MIN_COST: usize = 450;
pub(super) const SECTION_MAX_COST: usize = 2900;

// Caps of single pieces of user data.
pub(super) const NAME_COST: usize = 100;
pub(super) const SCOPE_COST: usize = 80;
pub(super) const CHECK_COST: usize = 60;
pub(super) const OBJECT_COST: usize = 120;
pub(super) const MESSAGE_COST: usize = 160;
pub(super) const ALSO_COST: usize = 60;
pub(super) const ERROR_COST: usize = 300;
pub(super) const K8S_NAME_COST: usize = 253;
pub(super) const FACTS_SHOWN: usize = 6;
pub(super) const CHECKS_SHOWN: usize = 8;
/// Entries a target shows at least, when it has fewer failing checks.
pub(super) const EXAMPLES: usize = 5;

/// Renders the digest: `{"text": <plain fallback>, "blocks": [...]}`. In order: the
/// verdict, what is new, what could not be checked, each target with findings (counts
/// per check and one entry per object), the healthy targets on one line, snoozes, and
/// where to read everything.
pub fn render(report: &RunReport, d: &Digest) -> Value {
    let layout = Layout::new(report, d);
    let mut msg = Message { text: layout.fallback_text(), ..Message::default() };
    msg.push(layout.header());
    msg.push(layout.summary());
    for b in [layout.diff(), layout.failed()].into_iter().flatten() {
        msg.push(b);
    }
    let tail: Vec<Value> = [layout.healthy(), layout.snoozed()].into_iter().flatten().collect();
    let context = layout.context();
    // What the targets may use: everything the other blocks leave, less the overflow note.
    let reserved_blocks = tail.len() + 2;
    let reserved_cost = tail.iter().map(|b| block_cost(b) + 1).sum::<usize>()
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
    for b in tail {
        msg.push(b);
    }
    msg.push(context);
    msg.into_value()
}

/// The messages of app mode: a one-screen summary for the channel and, for its thread,
/// one reply per target with findings (at most [`MAX_REPLIES`]), each within Slack's
/// limits.
pub struct Thread {
    pub summary: Value,
    pub replies: Vec<Value>,
}

impl Thread {
    /// When posting these messages must be done: a minute, and the pace of the replies.
    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + std::time::Duration::from_secs(60) + super::app::PACE * self.replies.len() as u32
    }
}

/// Renders app mode's summary and replies, in the digest's order: the verdict, what is
/// new, what could not be checked, one line per target with findings, the healthy, snoozes.
pub fn render_thread(report: &RunReport, d: &Digest) -> Thread {
    let layout = Layout::new(report, d);
    let with_findings: Vec<&TargetReport> = report.targets.iter().filter(|t| crate::publish::has_findings(t)).collect();
    let replies: Vec<Value> = with_findings.iter().take(MAX_REPLIES).map(|t| layout.reply(t)).collect();
    let mut msg = Message { text: layout.fallback_text(), ..Message::default() };
    msg.push(layout.header());
    msg.push(layout.summary());
    let blocks =
        [layout.diff(), layout.failed(), layout.target_lines(&with_findings), layout.healthy(), layout.snoozed()];
    for b in blocks.into_iter().flatten() {
        msg.push(b);
    }
    msg.push(layout.context());
    Thread { summary: msg.into_value(), replies }
}

/// The summary with a note before its context line, e.g. that its thread was cut short.
pub fn with_note(summary: &Value, note: &str) -> Value {
    let mut out = summary.clone();
    let mut text = Text::new(OVERFLOW_COST);
    text.push_line(&format!(":warning: {}", plain(note, OVERFLOW_COST - 20)));
    if let Some(blocks) = out["blocks"].as_array_mut() {
        let at = blocks.len().saturating_sub(1);
        blocks.insert(at, section(&text.into_string()));
    }
    out
}

/// The blocks and fallback text of a message, with their serialized size.
#[derive(Default)]
pub(super) struct Message {
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
pub(super) struct Layout<'a> {
    report: &'a RunReport,
    d: &'a Digest<'a>,
    /// Where everything is: `kubectl get mc -n NS NAME`, or the JSON report of a run
    /// from a file; escaped.
    everything: String,
    /// Where what a list leaves out is: the object as YAML, or the JSON report.
    in_full: String,
}

impl<'a> Layout<'a> {
    fn new(report: &'a RunReport, d: &'a Digest<'a>) -> Self {
        let (everything, in_full) = match d.origin {
            Origin::Cluster => {
                let get =
                    format!("kubectl get mc -n {} {}", plain(d.namespace, K8S_NAME_COST), plain(d.name, K8S_NAME_COST));
                (get.clone(), format!("{get} -o yaml"))
            }
            Origin::Local => ("morningcheck run -o json".to_string(), "morningcheck run -o json".to_string()),
        };
        Self { report, d, everything, in_full }
    }

    fn critical(&self) -> bool {
        self.report.result == RunResult::Critical
    }

    fn failed_targets(&self) -> impl Iterator<Item = &'a TargetReport> {
        self.report.targets.iter().filter(|t| !t.errors.is_empty())
    }

    /// "…and 12 more: `kubectl get mc -n NS NAME -o yaml`".
    fn more(&self, n: u64) -> String {
        format!("…and {n} more: `{}`", self.in_full)
    }

    fn header(&self) -> Value {
        let (emoji, word) = result_label(self.report.result);
        let name = plain(self.d.name, HEADER_NAME_CHARS);
        let unchecked = unchecked_suffix(self.report);
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
            unchecked_suffix(self.report),
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
        let entries = |refs: &'a [crate::api::FindingRef], resolved: bool| {
            crate::publish::ref_entries(self.report, refs)
                .into_iter()
                .map(move |e| (diff_entry(&e, resolved), e.len() as u64))
        };
        if diff.new_total > 0 {
            text.push_line("*New*");
            text.push_weighted(
                entries(&diff.new, false),
                diff.new_total,
                |n| format!("…and {n} more new"),
                resolved_reserve,
            );
        }
        if diff.resolved_total > 0 {
            text.push_line("*Resolved*");
            let reserve = if longest(diff).is_empty() { 0 } else { DIFF_COST / 4 };
            let lines = entries(&diff.resolved, true);
            text.push_weighted(lines, diff.resolved_total, |n| format!("…and {n} more resolved"), reserve);
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

    /// One line per target with findings, the worst first: its counts per check; the
    /// findings themselves are in the thread.
    fn target_lines(&self, targets: &[&TargetReport]) -> Option<Value> {
        if targets.is_empty() {
            return None;
        }
        let mut ranked = targets.to_vec();
        ranked.sort_by_key(|t| (Reverse(target_rank(t)), Reverse(t.counts.critical), Reverse(t.counts.warning)));
        let mut text = Text::new(TARGET_LINES_COST);
        text.push_line(&format!("*Findings by target* ({} in the thread)", ranked.len().min(MAX_REPLIES)));
        let lines = ranked.iter().map(|t| {
            let (emoji, _) = result_label(t.result);
            let mut line = format!("• {emoji} *{}* · {}", plain(&t.name, NAME_COST), counts_phrase(&t.counts));
            if !t.checks.is_empty() {
                line.push_str(" · ");
                line.push_str(&plain(&crate::publish::checks_phrase(&t.checks, 3), CHECK_COST * 3));
            }
            line
        });
        text.push_list(lines, ranked.len() as u64, |n| format!("…and {n} more targets: `{}`", self.in_full), 0);
        Some(section(&text.into_string()))
    }

    /// A reply of the thread: one target's section, with as many entries as fit.
    fn reply(&self, t: &TargetReport) -> Value {
        let section = self.target_section(t, SECTION_MAX_COST, usize::MAX);
        let fallback = format!("{}: {}", plain(&t.name, NAME_COST), counts_phrase(&t.counts));
        json!({"text": fallback, "blocks": [section]})
    }

    /// The healthy targets on one line: "✅ 3 healthy: local · thanos · main/eu-west-1".
    fn healthy(&self) -> Option<Value> {
        let (_, healthy) = crate::publish::split_healthy(self.report);
        if healthy.is_empty() {
            return None;
        }
        let mut text = Text::new(HEALTHY_COST);
        text.push_inline(&format!(":white_check_mark: *{} healthy:*", healthy.len()));
        let more = |n: usize| format!("…and {n} more");
        for (i, t) in healthy.iter().enumerate() {
            let sep = if i == 0 { " " } else { " · " };
            let unlock = if t.insecure { " :unlock:" } else { "" };
            let name = format!("*{}*{unlock}", plain(&t.name, NAME_COST));
            let last = i + 1 == healthy.len();
            let keep = if last { 0 } else { json_cost(&more(healthy.len())) + 3 };
            if !text.fits(&name, sep, keep) {
                text.push_with(&more(healthy.len() - i), " · ");
                break;
            }
            text.push_with(&name, sep);
        }
        Some(section(&text.into_string()))
    }

    /// Sections of the targets that fit in `slots` blocks and `left` characters, in report
    /// order; the most severe targets are kept first. Also returns the targets left out.
    fn targets(&self, slots: usize, left: usize) -> (Vec<Value>, Vec<&'a TargetReport>) {
        let mut candidates: Vec<(usize, &TargetReport)> =
            self.report.targets.iter().enumerate().filter(|(_, t)| crate::publish::has_findings(t)).collect();
        candidates
            .sort_by_key(|(i, t)| (Reverse(target_rank(t)), Reverse(t.counts.critical), Reverse(t.counts.warning), *i));
        let shown = candidates.len().min(slots).min(left / (SECTION_MIN_COST + 1));
        let needs: Vec<usize> = candidates[..shown].iter().map(|(_, t)| self.section_need(t)).collect();
        // One comma between blocks each.
        let budgets = share(&needs, left - shown);
        let mut sections: Vec<(usize, Value)> = candidates[..shown]
            .iter()
            .zip(budgets)
            .map(|((i, t), budget)| (*i, self.target_section(t, budget, EXAMPLES)))
            .collect();
        sections.sort_by_key(|(i, _)| *i);
        let hidden = candidates[shown..].iter().map(|(_, t)| *t).collect();
        (sections.into_iter().map(|(_, b)| b).collect(), hidden)
    }

    /// The size a target's section takes without pressure.
    fn section_need(&self, t: &TargetReport) -> usize {
        block_cost(&self.target_section(t, SECTION_MAX_COST, EXAMPLES))
    }

    /// A target's section within `budget` serialized characters: at most `examples`
    /// entries, or one per failing check when there are more checks.
    fn target_section(&self, t: &TargetReport, budget: usize, examples: usize) -> Value {
        let cap = budget.saturating_sub(block_cost(&section(""))).min(SECTION_MAX_COST);
        let mut text = Text::new(cap);
        text.push_line(&target_title(t));
        text.push_line(&target_counts(t));
        let total = (t.counts.total - t.counts.snoozed).max(t.findings.len() as u64);
        let entries = crate::publish::entries(t);
        // One example of every failing check (the kept entries come round-robin across
        // checks), and a few more when there are few checks: the rest is counted.
        let checks: std::collections::HashSet<&str> = entries.iter().map(|e| e[0].check.as_str()).collect();
        let shown = entries.len().min(checks.len().max(examples));
        let lines = entries.into_iter().take(shown).map(|e| (entry_line(e), e.len() as u64));
        text.push_weighted(lines, total, |n| self.more(n), 0);
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
            "…and {} more targets ({with_findings} with findings): `{}`",
            hidden.len(),
            self.in_full
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
            crate::duration::took(r.duration_seconds),
            self.everything
        ));
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text.into_string()}]})
    }
}
