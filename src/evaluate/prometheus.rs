//! Prometheus answers → findings. Pure: the collector fetches `/api/v1/alerts` and the
//! instant queries and hands the decoded `data` here.
//!
//! # Alerts
//! Only active alerts are returned by Prometheus. The include/exclude label matchers are
//! applied first (a missing label matches as the empty string, as in PromQL); dropped
//! alerts are counted in `alertsExcluded`. Of the rest, `pending` alerts are counted in
//! `alertsPending`, `firing` ones in `alertsFiring`; a firing alert below `minSeverity`
//! is counted in `alertsBelowMinSeverity`, every other one is an `AlertFiring` finding.
//!
//! The severity of an alert comes from its `severity` label, compared case-insensitively:
//!
//! | label value | severity |
//! |---|---|
//! | info, none, informational | info |
//! | warning, warn | warning |
//! | critical, page, error, high | critical |
//!
//! `severityLabels` overrides and extends this table. An alert whose label is missing
//! or not in the table gets `unlabeledSeverity` (warning by default), and its message
//! says so, so such alerts are never dropped silently.
//!
//! # Queries
//! Each series of an instant query (vector or scalar) is compared with the thresholds:
//! it crosses when strictly above (or, with direction `Below`, strictly below) the
//! critical, else the warning value. ±Inf compares as infinity, and its message says
//! what it usually means (a division by zero). Findings are `QueryThreshold` on
//! `<query>: <legend>`.
//!
//! No data is never silently healthy when the query says otherwise: an empty result, or
//! a series whose value is NaN (0/0, e.g. a ratio over no requests), is a `QueryNoData`
//! finding of the query's `onEmpty` severity (Warning for the presets, whose series come
//! from exporters that may not be scraped), whose message says which. With `onEmpty:
//! Healthy` (custom queries' default) an empty result finds nothing and a NaN series is
//! an info finding, so it is still seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::finding;
use crate::api::{AlertFilter, Direction, Finding, LabelMatcher, PromQuery, QueryPreset, Severity, Unit};
use crate::validate::matcher_regex;

pub const ALERT_FIRING: &str = "AlertFiring";
pub const QUERY_THRESHOLD: &str = "QueryThreshold";
pub const QUERY_NO_DATA: &str = "QueryNoData";

/// Labels that tell two alerts of the same name apart in a finding's object.
const IDENTIFYING: [&str; 4] = ["instance", "namespace", "job", "service"];

// ---------------------------------------------------------------------------------------
// Alerts

/// The `data` of `/api/v1/alerts`.
#[derive(Deserialize, Debug, Clone, Default)]
pub struct AlertsData {
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

/// One active alert.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub active_at: Option<String>,
    /// Silences that mute it (Alertmanager only).
    #[serde(skip)]
    pub silenced_by: Vec<String>,
    /// Alerts that inhibit it (Alertmanager only).
    #[serde(skip)]
    pub inhibited_by: Vec<String>,
}

/// One alert of Alertmanager's `GET /api/v2/alerts`.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedAlert {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub status: ManagedStatus,
}

/// Its state: `active`, `suppressed` (silenced or inhibited) or `unprocessed`.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStatus {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub silenced_by: Vec<String>,
    #[serde(default)]
    pub inhibited_by: Vec<String>,
}

impl From<ManagedAlert> for Alert {
    /// Alertmanager holds firing alerts only: active ones (and those it has not processed
    /// yet, which nothing has muted) fire; suppressed ones are muted.
    fn from(a: ManagedAlert) -> Self {
        let state = if a.status.state == "suppressed" { "suppressed" } else { "firing" };
        Alert {
            labels: a.labels,
            annotations: a.annotations,
            state: state.to_string(),
            active_at: a.starts_at,
            silenced_by: a.status.silenced_by,
            inhibited_by: a.status.inhibited_by,
        }
    }
}

/// A compiled label matcher.
#[derive(Debug, Clone)]
struct Matcher {
    label: String,
    value: String,
    regex: Option<Regex>,
}

impl Matcher {
    fn new(m: &LabelMatcher) -> Result<Self, String> {
        let regex = matcher_regex(m).map_err(|e| format!("label matcher {}=~{:?}: {e}", m.label, m.value))?;
        Ok(Self { label: m.label.clone(), value: m.value.clone(), regex })
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.label).map_or("", String::as_str);
        match &self.regex {
            Some(r) => r.is_match(v),
            None => v == self.value,
        }
    }
}

/// An [`AlertFilter`] ready to apply: severity table and compiled matchers.
#[derive(Debug, Clone)]
pub struct AlertRules {
    min: Severity,
    unlabeled: Severity,
    severities: HashMap<String, Severity>,
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
}

fn default_severities() -> HashMap<String, Severity> {
    let table = [
        (Severity::Info, &["info", "none", "informational"][..]),
        (Severity::Warning, &["warning", "warn"][..]),
        (Severity::Critical, &["critical", "page", "error", "high"][..]),
    ];
    table.iter().flat_map(|(s, names)| names.iter().map(|n| (n.to_string(), *s))).collect()
}

impl AlertRules {
    pub fn new(filter: &AlertFilter) -> Result<Self, String> {
        let mut severities = default_severities();
        for (label, s) in &filter.severity_labels {
            severities.insert(label.trim().to_lowercase(), *s);
        }
        let compile = |ms: &[LabelMatcher]| ms.iter().map(Matcher::new).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            min: filter.min_severity,
            unlabeled: filter.unlabeled_severity,
            severities,
            include: compile(&filter.include)?,
            exclude: compile(&filter.exclude)?,
        })
    }

    fn selected(&self, labels: &BTreeMap<String, String>) -> bool {
        self.include.iter().all(|m| m.matches(labels)) && !self.exclude.iter().any(|m| m.matches(labels))
    }

    /// The severity of an alert, and a note when the label did not decide it.
    fn severity(&self, labels: &BTreeMap<String, String>) -> (Severity, Option<String>) {
        let unlabeled = self.unlabeled.as_str();
        match labels.get("severity") {
            None => (self.unlabeled, Some(format!("no severity label, treated as {unlabeled}"))),
            Some(v) => match self.severities.get(&v.trim().to_lowercase()) {
                Some(s) => (*s, None),
                None => (self.unlabeled, Some(format!("unknown severity {v:?}, treated as {unlabeled}"))),
            },
        }
    }
}

/// What the alerts of one Prometheus amount to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertSummary {
    pub findings: Vec<Finding>,
    pub firing: u64,
    pub pending: u64,
    pub below_min: u64,
    pub excluded: u64,
    /// Muted in Alertmanager by a silence.
    pub silenced: u64,
    /// Muted in Alertmanager by another alert.
    pub inhibited: u64,
}

pub const ALERT_MUTED: &str = "AlertMuted";

/// Firing alerts → findings; everything else is counted. A muted (silenced or inhibited)
/// alert is never a finding: someone already knows; with `list_muted` it is an info one.
pub fn alert_findings(alerts: &[Alert], rules: &AlertRules, list_muted: bool) -> AlertSummary {
    let mut sum = AlertSummary::default();
    let mut findings = Vec::new();
    for a in alerts {
        if !rules.selected(&a.labels) {
            sum.excluded += 1;
            continue;
        }
        match a.state.as_str() {
            "pending" => sum.pending += 1,
            "firing" => {
                sum.firing += 1;
                let (severity, note) = rules.severity(&a.labels);
                if severity < rules.min {
                    sum.below_min += 1;
                } else {
                    findings.push(alert_finding(a, ALERT_FIRING, severity, note));
                }
            }
            "suppressed" => {
                let by = if a.silenced_by.is_empty() {
                    sum.inhibited += 1;
                    format!("inhibited by {}", a.inhibited_by.join(", "))
                } else {
                    sum.silenced += 1;
                    format!("silenced by {}", a.silenced_by.join(", "))
                };
                if list_muted {
                    findings.push(alert_finding(a, ALERT_MUTED, Severity::Info, Some(by)));
                }
            }
            _ => {}
        }
    }
    sum.findings = merge_same_key(findings, "alerts like this");
    sum
}

fn alert_finding(a: &Alert, check: &str, severity: Severity, note: Option<String>) -> Finding {
    let name = a.labels.get("alertname").map_or("(no alertname)", String::as_str);
    let ids = IDENTIFYING.iter().filter_map(|l| a.labels.get(*l).map(|v| format!("{l}={v:?}")));
    let ids: Vec<String> = ids.collect();
    let object = if ids.is_empty() { name.to_string() } else { format!("{name}{{{}}}", ids.join(", ")) };
    let text = a.annotations.get("summary").or_else(|| a.annotations.get("description"));
    let mut message = text.map_or_else(|| "firing".to_string(), |t| t.trim().to_string());
    if let Some(n) = note {
        message.push_str(&format!(" ({n})"));
    }
    let since = a.active_at.as_deref().and_then(|t| t.parse().ok());
    finding(severity, check, object, message, since)
}

/// Keeps one finding per key (the most severe; the first among equals) and says how many
/// more shared it, so keys stay unique within the target.
fn merge_same_key(findings: Vec<Finding>, what: &str) -> Vec<Finding> {
    let mut order: Vec<(Finding, u64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for f in findings {
        match index.get(&f.key) {
            Some(&i) => {
                let slot = &mut order[i];
                slot.1 += 1;
                if f.severity > slot.0.severity {
                    slot.0 = f;
                }
            }
            None => {
                index.insert(f.key.clone(), order.len());
                order.push((f, 0));
            }
        }
    }
    order
        .into_iter()
        .map(|(mut f, more)| {
            if more > 0 {
                f.message.push_str(&format!(" (+{more} more {what})"));
            }
            f
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Queries

/// A query with its preset applied: everything needed to run and judge it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQuery {
    pub name: String,
    pub query: String,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub direction: Direction,
    pub legend: Option<String>,
    pub unit: Unit,
    /// The severity of an answer without data; none: healthy.
    pub on_empty: Option<Severity>,
    /// The series the query reads, named when it finds no data: e.g. a preset's.
    pub reads: Option<&'static str>,
}

/// The built-in queries of the morning routine.
pub fn preset(p: QueryPreset) -> ResolvedQuery {
    let (query, warning, critical, direction, legend, unit, reads) = match p {
        QueryPreset::HotNodes => (
            r#"100 - (avg by(instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)"#,
            Some(80.0),
            None,
            Direction::Above,
            "{{instance}}",
            Unit::Percent,
            "node_cpu_seconds_total (node-exporter)",
        ),
        QueryPreset::DisksFilling => (
            r#"predict_linear(node_filesystem_free_bytes{fstype!~"tmpfs|overlay"}[6h], 24*3600)"#,
            None,
            Some(0.0),
            Direction::Below,
            "{{instance}} {{mountpoint}}",
            Unit::Bytes,
            "node_filesystem_free_bytes (node-exporter)",
        ),
        QueryPreset::Http5xx => (
            r#"sum by(service) (rate(http_requests_total{status=~"5.."}[5m]))"#,
            Some(0.1),
            None,
            Direction::Above,
            "{{service}}",
            Unit::RequestsPerSecond,
            "http_requests_total",
        ),
    };
    ResolvedQuery {
        name: String::new(),
        query: query.to_string(),
        warning,
        critical,
        direction,
        legend: Some(legend.to_string()),
        unit,
        on_empty: Some(Severity::Warning),
        reads: Some(reads),
    }
}

/// Applies the preset, if any, under the fields set in the spec.
pub fn resolve(q: &PromQuery) -> Result<ResolvedQuery, String> {
    let base = q.preset.map(preset);
    let query = q.query.clone().or_else(|| base.as_ref().map(|b| b.query.clone()));
    let Some(query) = query.filter(|s| !s.trim().is_empty()) else {
        return Err("no PromQL: set query or preset".to_string());
    };
    let b = base.as_ref();
    let r = ResolvedQuery {
        name: q.name.clone(),
        query,
        warning: q.warning.or(b.and_then(|b| b.warning)),
        critical: q.critical.or(b.and_then(|b| b.critical)),
        direction: q.direction.or(b.map(|b| b.direction)).unwrap_or_default(),
        legend: q.legend.clone().or_else(|| b.and_then(|b| b.legend.clone())),
        unit: q.unit.or(b.map(|b| b.unit)).unwrap_or_default(),
        on_empty: match q.on_empty {
            Some(o) => o.severity(),
            None => b.and_then(|b| b.on_empty),
        },
        reads: b.and_then(|b| b.reads),
    };
    if r.warning.is_none() && r.critical.is_none() {
        return Err("no threshold: set warning, critical or both".to_string());
    }
    Ok(r)
}

/// The `data` of `/api/v1/query`, parsed once, straight into its samples: `resultType`
/// comes first in Prometheus' answers, so nothing is buffered or copied on the way.
#[derive(Deserialize, Debug)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryData {
    Vector(Vec<Sample>),
    Scalar((IgnoredAny, String)),
    Matrix(IgnoredAny),
    String(IgnoredAny),
}

/// One series of an instant vector; native histograms carry no `value` and are skipped.
#[derive(Deserialize, Debug)]
pub struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(IgnoredAny, String)>,
}

/// The labels of a scalar.
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// What one query amounts to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOutcome {
    pub findings: Vec<Finding>,
    /// Series compared with the thresholds.
    pub series: u64,
}

/// Compares every series of an answer with the query's thresholds.
pub fn query_findings(q: &ResolvedQuery, data: &QueryData) -> Result<QueryOutcome, String> {
    let series: Vec<(&BTreeMap<String, String>, &str)> = match data {
        QueryData::Vector(samples) => {
            samples.iter().filter_map(|s| s.value.as_ref().map(|(_, v)| (&s.metric, v.as_str()))).collect()
        }
        QueryData::Scalar((_, v)) => vec![(&NO_LABELS, v.as_str())],
        QueryData::Matrix(_) | QueryData::String(_) => {
            let kind = if matches!(data, QueryData::Matrix(_)) { "matrix" } else { "string" };
            return Err(format!("the query returns a {kind}; thresholds need an instant vector or a scalar"));
        }
    };
    let mut out = QueryOutcome { series: series.len() as u64, ..Default::default() };
    let mut findings = Vec::new();
    for &(labels, raw) in &series {
        let v = parse_value(raw).ok_or_else(|| format!("sample value {raw:?} is not a number"))?;
        if let Some(f) = series_finding(q, labels, v) {
            findings.push(f);
        }
    }
    if series.is_empty()
        && let Some(severity) = q.on_empty
    {
        let missing = q.reads.map(|r| format!(": are the series of {r} scraped?")).unwrap_or_default();
        let message = format!("the query returned no series{missing}");
        findings.push(finding(severity, QUERY_NO_DATA, q.name.clone(), message, None));
    }
    out.findings = merge_same_key(findings, "series with the same legend");
    Ok(out)
}

/// Prometheus' sample values are strings; NaN and ±Inf are spelled out.
pub fn parse_value(raw: &str) -> Option<f64> {
    match raw {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => raw.parse::<f64>().ok(),
    }
}

/// Strictly past the threshold in the query's direction; NaN never is.
fn crosses(v: f64, threshold: f64, dir: Direction) -> bool {
    match dir {
        Direction::Above => v > threshold,
        Direction::Below => v < threshold,
    }
}

fn series_finding(q: &ResolvedQuery, labels: &BTreeMap<String, String>, v: f64) -> Option<Finding> {
    let legend = legend(q.legend.as_deref(), labels);
    let object = if legend.is_empty() { q.name.clone() } else { format!("{}: {legend}", q.name) };
    if v.is_nan() {
        let message = "value NaN: no data to compare with the thresholds (0/0, e.g. a ratio over no samples)";
        return Some(finding(q.on_empty.unwrap_or(Severity::Info), QUERY_NO_DATA, object, message, None));
    }
    let crossed = [(Severity::Critical, q.critical), (Severity::Warning, q.warning)]
        .into_iter()
        .find_map(|(s, t)| t.filter(|t| crosses(v, *t, q.direction)).map(|t| (s, t)));
    let (severity, threshold) = crossed?;
    let dir = match q.direction {
        Direction::Above => "above",
        Direction::Below => "below",
    };
    let mut message = format!(
        "value {} is {dir} the {} threshold of {}",
        format_value(v, q.unit),
        severity.as_str(),
        format_value(threshold, q.unit)
    );
    if v.is_infinite() {
        message.push_str(" (an infinite value: a division by zero in the query?)");
    }
    Some(finding(severity, QUERY_THRESHOLD, object, message, None))
}

/// `{{label}}` placeholders.
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}").expect("valid regex"));

/// Display name of a series: the legend template filled from its labels (a missing
/// label is empty), or, without a template or when it renders empty, all labels.
pub fn legend(template: Option<&str>, labels: &BTreeMap<String, String>) -> String {
    if let Some(t) = template {
        let rendered = PLACEHOLDER.replace_all(t, |c: &regex::Captures| labels.get(&c[1]).cloned().unwrap_or_default());
        let rendered = rendered.trim();
        if !rendered.is_empty() {
            return rendered.to_string();
        }
    }
    all_labels(labels)
}

/// `name{a="b", c="d"}` as Prometheus shows a series; empty for a scalar.
fn all_labels(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let pairs: Vec<String> =
        labels.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| format!("{k}={v:?}")).collect();
    if pairs.is_empty() { name.to_string() } else { format!("{name}{{{}}}", pairs.join(", ")) }
}

// ---------------------------------------------------------------------------------------
// Units

/// A value for a person, in the query's unit: `93.2%`, `1.5 GiB`, `2m03s`, `0.42/s`.
pub fn format_value(v: f64, unit: Unit) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    match unit {
        Unit::None => number(v),
        Unit::Percent => format!("{}%", number(v)),
        Unit::Bytes => bytes(v),
        Unit::Seconds => seconds(v),
        Unit::RequestsPerSecond => format!("{}/s", number(v)),
    }
}

/// Three significant digits without trailing zeros; exponent form when very large or small.
fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim_zeros(mantissa));
    }
    let decimals = (2 - magnitude).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let (mut scaled, mut i) = (v, 0);
    while scaled.abs() >= 1024.0 && i < UNITS.len() - 1 {
        scaled /= 1024.0;
        i += 1;
    }
    format!("{} {}", number(scaled), UNITS[i])
}

fn seconds(v: f64) -> String {
    let (sign, a) = if v < 0.0 { ("-", -v) } else { ("", v) };
    if a < 1.0 {
        return format!("{sign}{}ms", number(a * 1000.0));
    }
    if a < 60.0 {
        return format!("{sign}{}s", number(a));
    }
    let s = a.round() as u64;
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h) {
        (0, 0) => format!("{sign}{m}m{s:02}s"),
        (0, _) => format!("{sign}{h}h{m:02}m"),
        _ => format!("{sign}{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn alert(state: &str, pairs: &[(&str, &str)], summary: &str) -> Alert {
        Alert {
            labels: labels(pairs),
            annotations: labels(&[("summary", summary)]),
            state: state.to_string(),
            active_at: Some("2026-11-24T06:10:00.123Z".to_string()),
            ..Alert::default()
        }
    }

    fn filter(v: Value) -> AlertFilter {
        serde_json::from_value(v).unwrap()
    }

    fn objects(fs: &[Finding]) -> Vec<(Severity, &str, &str)> {
        fs.iter().map(|f| (f.severity, f.object.as_str(), f.message.as_str())).collect()
    }

    fn sample_alerts() -> Vec<Alert> {
        vec![
            alert(
                "firing",
                &[("alertname", "Disk"), ("severity", "CRITICAL"), ("instance", "db-1"), ("team", "x")],
                "full",
            ),
            alert(
                "firing",
                &[("alertname", "Lat"), ("severity", "warn"), ("service", "checkout"), ("job", "api")],
                "slow",
            ),
            alert("firing", &[("alertname", "NoSev")], "no label"),
            alert("firing", &[("alertname", "Odd"), ("severity", "sev2")], "odd"),
            alert("firing", &[("alertname", "Watchdog"), ("severity", "none")], "ok"),
            alert("pending", &[("alertname", "Slow"), ("severity", "critical")], "soon"),
        ]
    }

    #[test]
    fn firing_alerts_are_findings_and_the_rest_is_counted() {
        let rules = AlertRules::new(&AlertFilter::default()).unwrap();
        let s = alert_findings(&sample_alerts(), &rules, false);
        assert_eq!(
            objects(&s.findings),
            [
                (Severity::Critical, "Disk{instance=\"db-1\"}", "full"),
                (Severity::Warning, "Lat{job=\"api\", service=\"checkout\"}", "slow"),
                (Severity::Warning, "NoSev", "no label (no severity label, treated as warning)"),
                (Severity::Warning, "Odd", "odd (unknown severity \"sev2\", treated as warning)"),
            ]
        );
        assert_eq!((s.firing, s.pending, s.below_min, s.excluded), (5, 1, 1, 0));
        assert_eq!(s.findings[0].check, ALERT_FIRING);
        assert_eq!(s.findings[0].since.as_ref().unwrap().0.to_string(), "2026-11-24T06:10:00.123Z");
    }

    #[test]
    fn severity_table_is_overridden_and_matchers_filter() {
        let f = filter(json!({
            "minSeverity": "Critical",
            "unlabeledSeverity": "Info",
            "severityLabels": {"Sev2": "Critical", "warn": "Info"},
            "include": [{"label": "alertname", "value": "L.*|Odd|NoSev|Slow", "regex": true}],
            "exclude": [{"label": "team", "value": "x"}],
        }));
        let s = alert_findings(&sample_alerts(), &AlertRules::new(&f).unwrap(), false);
        assert_eq!(objects(&s.findings), [(Severity::Critical, "Odd", "odd")]);
        // Disk and Watchdog are not included; Lat (warn → info) and NoSev (info) are below.
        assert_eq!((s.firing, s.pending, s.below_min, s.excluded), (3, 1, 2, 2));
    }

    #[test]
    fn regex_matchers_are_anchored_and_missing_labels_are_empty() {
        let f = filter(json!({"exclude": [{"label": "alertname", "value": "Watch", "regex": true},
                                          {"label": "team", "value": ""}]}));
        let s = alert_findings(&sample_alerts(), &AlertRules::new(&f).unwrap(), false);
        assert_eq!(objects(&s.findings).iter().map(|o| o.1).collect::<Vec<_>>(), ["Disk{instance=\"db-1\"}"]);
        assert_eq!(s.excluded, 5);
        let bad = filter(json!({"include": [{"label": "a", "value": "(", "regex": true}]}));
        assert!(AlertRules::new(&bad).unwrap_err().starts_with("label matcher a=~\"(\""));
    }

    #[test]
    fn alerts_with_the_same_object_are_one_finding() {
        let alerts = vec![
            alert("firing", &[("alertname", "Pod"), ("severity", "warning"), ("pod", "a")], "a"),
            alert("firing", &[("alertname", "Pod"), ("severity", "critical"), ("pod", "b")], "b"),
            alert("firing", &[("alertname", "Pod"), ("severity", "warning"), ("pod", "c")], "c"),
        ];
        let s = alert_findings(&alerts, &AlertRules::new(&AlertFilter::default()).unwrap(), false);
        assert_eq!(objects(&s.findings), [(Severity::Critical, "Pod", "b (+2 more alerts like this)")]);
        assert_eq!(s.firing, 3);
    }

    fn vector(series: &[(&[(&str, &str)], &str)]) -> QueryData {
        let result: Vec<Value> =
            series.iter().map(|(l, v)| json!({"metric": labels(l), "value": [1700000000.5, v]})).collect();
        answer("vector", Value::Array(result))
    }

    fn answer(result_type: &str, result: Value) -> QueryData {
        serde_json::from_value(json!({"resultType": result_type, "result": result})).unwrap()
    }

    fn query(v: Value) -> ResolvedQuery {
        resolve(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn series_are_graded_per_threshold() {
        let q = query(json!({"name": "cpu", "query": "x", "warning": 80, "critical": 95, "unit": "percent",
                             "legend": "{{instance}}"}));
        let data = vector(&[
            (&[("instance", "a")], "96.04"),
            (&[("instance", "b")], "93.21"),
            (&[("instance", "c")], "80"),
            (&[("instance", "d")], "NaN"),
        ]);
        let out = query_findings(&q, &data).unwrap();
        assert_eq!(out.series, 4);
        assert_eq!(
            objects(&out.findings),
            [
                (Severity::Critical, "cpu: a", "value 96% is above the critical threshold of 95%"),
                (Severity::Warning, "cpu: b", "value 93.2% is above the warning threshold of 80%"),
                (
                    Severity::Info,
                    "cpu: d",
                    "value NaN: no data to compare with the thresholds (0/0, e.g. a ratio over no samples)"
                ),
            ]
        );
        assert_eq!(out.findings[2].check, QUERY_NO_DATA, "NaN is explained, not dropped");
        assert_eq!(out.findings[0].check, QUERY_THRESHOLD);
        assert_eq!(out.findings[0].key, "QueryThreshold/cpu: a");
    }

    #[test]
    fn below_infinities_and_empty_results() {
        let q = query(json!({"name": "free", "query": "x", "critical": 0, "direction": "Below", "unit": "bytes"}));
        let data = vector(&[
            (&[("__name__", "m"), ("mountpoint", "/"), ("instance", "h")], "-1610612736"),
            (&[("mountpoint", "/data")], "-Inf"),
            (&[("mountpoint", "/ok")], "+Inf"),
            (&[("mountpoint", "/zero")], "0"),
        ]);
        let out = query_findings(&q, &data).unwrap();
        assert_eq!(
            objects(&out.findings),
            [
                (
                    Severity::Critical,
                    "free: m{instance=\"h\", mountpoint=\"/\"}",
                    "value -1.5 GiB is below the critical threshold of 0 B"
                ),
                (
                    Severity::Critical,
                    "free: {mountpoint=\"/data\"}",
                    "value -Inf is below the critical threshold of 0 B (an infinite value: a division by zero in the query?)"
                ),
            ]
        );
        let empty = answer("vector", json!([]));
        assert_eq!(query_findings(&q, &empty).unwrap(), QueryOutcome::default());
        let up = query(json!({"name": "inf", "query": "x", "warning": 1e300}));
        let out = query_findings(&up, &vector(&[(&[], "+Inf")])).unwrap();
        assert_eq!(
            objects(&out.findings),
            [(
                Severity::Warning,
                "inf",
                "value +Inf is above the warning threshold of 1e300 (an infinite value: a division by zero in the query?)"
            )]
        );
    }

    /// No data: healthy for a custom query unless it says otherwise; a warning for a
    /// preset, naming the series that are missing.
    #[test]
    fn an_empty_answer_is_what_on_empty_says() {
        let empty = answer("vector", json!([]));
        let custom = query(json!({"name": "q", "query": "x", "warning": 1}));
        assert_eq!(query_findings(&custom, &empty).unwrap().findings, []);
        let strict = query(json!({"name": "q", "query": "x", "warning": 1, "onEmpty": "Critical"}));
        let out = query_findings(&strict, &empty).unwrap();
        assert_eq!(objects(&out.findings), [(Severity::Critical, "q", "the query returned no series")]);
        assert_eq!(out.findings[0].check, QUERY_NO_DATA);
        let disks = query(json!({"name": "disks", "preset": "disks-filling"}));
        assert_eq!(
            objects(&query_findings(&disks, &empty).unwrap().findings),
            [(
                Severity::Warning,
                "disks",
                "the query returned no series: are the series of node_filesystem_free_bytes (node-exporter) scraped?"
            )]
        );
        let quiet = query(json!({"name": "disks", "preset": "disks-filling", "onEmpty": "Healthy"}));
        assert_eq!(query_findings(&quiet, &empty).unwrap().findings, []);
        let nan = query_findings(&strict, &vector(&[(&[("job", "a")], "NaN")])).unwrap();
        assert_eq!(nan.findings[0].severity, Severity::Critical, "NaN is no data too");
    }

    #[test]
    fn scalars_and_other_result_types() {
        let q = query(json!({"name": "lag", "query": "x", "warning": 60, "unit": "seconds"}));
        let scalar = answer("scalar", json!([1700000000, "123"]));
        let out = query_findings(&q, &scalar).unwrap();
        assert_eq!(
            objects(&out.findings),
            [(Severity::Warning, "lag", "value 2m03s is above the warning threshold of 1m00s")]
        );
        let matrix = answer("matrix", json!([]));
        assert_eq!(
            query_findings(&q, &matrix).unwrap_err(),
            "the query returns a matrix; thresholds need an instant vector or a scalar"
        );
        let bad = answer("scalar", json!([1, "fast"]));
        assert_eq!(query_findings(&q, &bad).unwrap_err(), "sample value \"fast\" is not a number");
    }

    #[test]
    fn series_with_the_same_legend_are_merged() {
        let q = query(json!({"name": "q", "query": "x", "warning": 1, "legend": "{{job}}"}));
        let out =
            query_findings(&q, &vector(&[(&[("job", "a"), ("i", "1")], "2"), (&[("job", "a"), ("i", "2")], "3")]))
                .unwrap();
        assert_eq!(
            objects(&out.findings),
            [(
                Severity::Warning,
                "q: a",
                "value 2 is above the warning threshold of 1 (+1 more series with the same legend)"
            )]
        );
    }

    #[test]
    fn presets_fill_what_the_spec_leaves_out() {
        let hot = query(json!({"name": "hot", "preset": "hot-nodes"}));
        assert_eq!(hot.query, r#"100 - (avg by(instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)"#);
        assert_eq!(
            (hot.warning, hot.critical, hot.direction, hot.unit),
            (Some(80.0), None, Direction::Above, Unit::Percent)
        );
        assert_eq!(hot.legend.as_deref(), Some("{{instance}}"));
        let disks = query(json!({"name": "d", "preset": "disks-filling", "warning": 1e9, "legend": "{{device}}"}));
        assert_eq!((disks.warning, disks.critical, disks.direction), (Some(1e9), Some(0.0), Direction::Below));
        assert_eq!((disks.legend.as_deref(), disks.unit), (Some("{{device}}"), Unit::Bytes));
        assert!(disks.query.starts_with("predict_linear(node_filesystem_free_bytes"));
        let http = query(json!({"name": "h", "preset": "http-5xx", "query": "sum(x)", "unit": "none"}));
        assert_eq!((http.query.as_str(), http.warning, http.unit), ("sum(x)", Some(0.1), Unit::None));
        assert_eq!(http.legend.as_deref(), Some("{{service}}"));
        let none: PromQuery = serde_json::from_value(json!({"name": "n", "warning": 1})).unwrap();
        assert_eq!(resolve(&none).unwrap_err(), "no PromQL: set query or preset");
        let no_threshold: PromQuery = serde_json::from_value(json!({"name": "n", "query": "up"})).unwrap();
        assert_eq!(resolve(&no_threshold).unwrap_err(), "no threshold: set warning, critical or both");
    }

    #[test]
    fn legends_fill_labels_or_fall_back_to_all_of_them() {
        let l = labels(&[("instance", "a:9100"), ("mountpoint", "/"), ("__name__", "m")]);
        assert_eq!(legend(Some("{{instance}} {{ mountpoint }}"), &l), "a:9100 /");
        assert_eq!(legend(Some("{{missing}}"), &l), "m{instance=\"a:9100\", mountpoint=\"/\"}");
        assert_eq!(legend(Some("disk {{nope}}"), &l), "disk");
        assert_eq!(legend(None, &labels(&[("b", "2"), ("a", "1")])), "{a=\"1\", b=\"2\"}");
        assert_eq!(legend(None, &BTreeMap::new()), "");
    }

    #[test]
    fn values_read_in_their_unit() {
        assert_eq!(format_value(93.21, Unit::Percent), "93.2%");
        assert_eq!(format_value(1.5 * 1024.0 * 1024.0 * 1024.0, Unit::Bytes), "1.5 GiB");
        assert_eq!(format_value(1023.0, Unit::Bytes), "1023 B");
        assert_eq!(format_value(123.0, Unit::Seconds), "2m03s");
        assert_eq!(format_value(0.25, Unit::Seconds), "250ms");
        assert_eq!(format_value(12.34, Unit::Seconds), "12.3s");
        assert_eq!(format_value(3.0 * 3600.0 + 720.0, Unit::Seconds), "3h12m");
        assert_eq!(format_value(-2.0 * 86_400.0 - 4.0 * 3600.0, Unit::Seconds), "-2d4h");
        assert_eq!(format_value(0.4213, Unit::RequestsPerSecond), "0.421/s");
        assert_eq!(format_value(0.42, Unit::RequestsPerSecond), "0.42/s");
        assert_eq!(format_value(42.0, Unit::None), "42");
        assert_eq!(format_value(1234.4, Unit::None), "1234");
        assert_eq!(format_value(2.5e12, Unit::None), "2.5e12");
        assert_eq!(format_value(0.00001234, Unit::None), "1.23e-5");
        assert_eq!(format_value(f64::NAN, Unit::Percent), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY, Unit::Bytes), "-Inf");
    }

    #[test]
    fn sample_values_parse_explicitly() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("1e+00"), Some(1.0));
        assert_eq!(parse_value("x"), None);
        assert!(!crosses(f64::NAN, 0.0, Direction::Above) && !crosses(f64::NAN, 0.0, Direction::Below));
    }

    /// Alertmanager's view: silenced and inhibited alerts are counted, not findings, and
    /// listed as info findings on request; unprocessed ones fire.
    #[test]
    fn muted_alerts_are_counted_not_found() {
        let managed: Vec<ManagedAlert> = serde_json::from_value(json!([
            {"labels": {"alertname": "Disk", "severity": "critical", "instance": "db-1"},
             "annotations": {"summary": "full"}, "startsAt": "2026-12-01T06:00:00Z",
             "status": {"state": "suppressed", "silencedBy": ["s-1"], "inhibitedBy": []}},
            {"labels": {"alertname": "Lat", "severity": "warning"},
             "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": ["f-9"]}},
            {"labels": {"alertname": "Cpu", "severity": "critical"}, "status": {"state": "active"}},
            {"labels": {"alertname": "New", "severity": "warning"}, "status": {"state": "unprocessed"}},
        ]))
        .unwrap();
        let alerts: Vec<Alert> = managed.into_iter().map(Alert::from).collect();
        let rules = AlertRules::new(&AlertFilter::default()).unwrap();
        let s = alert_findings(&alerts, &rules, false);
        assert_eq!((s.firing, s.silenced, s.inhibited), (2, 1, 1));
        assert_eq!(s.findings.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Cpu", "New"]);
        let listed = alert_findings(&alerts, &rules, true);
        let muted: Vec<_> = listed.findings.iter().filter(|f| f.check == ALERT_MUTED).collect();
        assert_eq!(muted.len(), 2);
        assert!(muted.iter().all(|f| f.severity == Severity::Info));
        assert!(muted[0].message.contains("silenced by s-1"), "{}", muted[0].message);
    }
}
