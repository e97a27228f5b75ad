//! Prometheus targets: endpoint, authentication, alert filter and PromQL queries.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HTTP_URL, PRINTABLE_NAME, SecretKeyRef, Severity, TARGET_NAME, default_true};

/// One Prometheus-compatible endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = kube::core::Rule::new("!has(self.queries) || self.queries.all(q, self.queries.exists_one(r, r.name == q.name))")
    .message("query names must be unique within a Prometheus target: rename the query that repeats a name")
    .field_path(".queries"))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusTarget {
    /// Name shown in the status and the digest: lowercase letters, digits, `-` and `.`,
    /// at most 63 characters, unique across all targets. Required.
    #[schemars(length(min = 1, max = 63), regex(pattern = TARGET_NAME))]
    pub name: String,
    /// Base URL (http or https, with a host), with a path prefix when behind a proxy,
    /// e.g. https://thanos.example/prom. Never with credentials in it: use `auth`. The
    /// operator's admin may limit the hosts it may name. Required.
    #[schemars(length(min = 1, max = 2048), regex(pattern = HTTP_URL))]
    #[x_kube(validation = super::no_userinfo())]
    pub url: String,
    /// Authentication: exactly one of a bearer token or basic auth. Default: unset, no
    /// authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PrometheusAuth>,
    /// Secret key holding a PEM CA bundle used to verify the server certificate.
    /// Default: unset, the system's CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Turn off TLS verification; shown in the status and the digest when on.
    /// Default: false.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// Seconds to establish a connection. 1 to 300. Default: 5.
    #[serde(default = "default_connect_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub connect_timeout_seconds: i64,
    /// Seconds to read one response. 1 to 600. Default: 30.
    #[serde(default = "default_read_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub read_timeout_seconds: i64,
    /// Which firing alerts become findings. Default: each field's own default (alerts
    /// of severity Warning and above).
    #[serde(default)]
    pub alerts: AlertFilter,
    /// The Alertmanager this Prometheus sends its alerts to. When set, firing alerts come
    /// from its API v2 (`/api/v2/alerts`), so alerts someone silenced, or another alert
    /// inhibits, are counted (`alertsSilenced`, `alertsInhibited`) and never findings;
    /// pending alerts, which only Prometheus knows, are then not counted. Without it,
    /// silences are not seen. Reached with this target's auth, CA and timeouts.
    /// Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerEndpoint>,
    /// Named PromQL instant queries with thresholds; names unique within the target, at
    /// most 50. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub queries: Vec<PromQuery>,
    /// Whether this target's findings may be Critical: `false` (staging, say) caps them at
    /// Warning, so they never make the run Critical nor mention anyone. Default: true.
    #[serde(default, skip_serializing_if = "super::Criticality::is_default")]
    pub critical: super::Criticality,
}

/// An Alertmanager to read firing alerts from.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerEndpoint {
    /// Base URL (http or https, with a host), with a path prefix when behind a proxy.
    /// Never with credentials in it. The operator's admin may limit the hosts it may name.
    /// Required.
    #[schemars(length(min = 1, max = 2048), regex(pattern = HTTP_URL))]
    #[x_kube(validation = super::no_userinfo())]
    pub url: String,
    /// List silenced and inhibited alerts too, as info findings (`AlertMuted`) saying
    /// what mutes them. Default: false, they are only counted.
    #[serde(default)]
    pub list_muted: bool,
}

pub(crate) fn default_connect_timeout() -> i64 {
    5
}
pub(crate) fn default_read_timeout() -> i64 {
    30
}

/// Authentication to Prometheus: exactly one of a bearer token or basic auth, each from
/// a Secret in the MorningCheck's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = kube::core::Rule::new("has(self.bearerTokenSecretRef) != has(self.basic)")
    .message("set exactly one authentication method: bearerTokenSecretRef or basic"))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusAuth {
    /// Secret key holding a bearer token. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
    /// Basic auth user name and password. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
}

/// Basic auth credentials; the password from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name. Required; at most 253 characters.
    #[schemars(length(min = 1, max = 253))]
    pub username: String,
    /// Secret key holding the password. Required.
    pub password_secret_ref: SecretKeyRef,
}

/// Which firing alerts become findings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertFilter {
    /// Read `/api/v1/alerts` at all. Default: true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Alerts below this severity are counted but not reported: Info, Warning or
    /// Critical. Default: Warning.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Severity given to an alert whose `severity` label is missing or not recognised:
    /// Info, Warning or Critical. Default: Warning.
    #[serde(default = "default_min_severity")]
    pub unlabeled_severity: Severity,
    /// Extra `severity` label values and the severity (Info, Warning or Critical) each
    /// maps to, matched case-insensitively; at most 50. Always known: info/none, warning/
    /// warn, critical/page/error. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    pub severity_labels: BTreeMap<String, Severity>,
    /// Only alerts matching all of these label matchers; at most 50. Default: none,
    /// every alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub include: Vec<LabelMatcher>,
    /// Drop alerts matching any of these (e.g. alertname=Watchdog); at most 50.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub exclude: Vec<LabelMatcher>,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

impl Default for AlertFilter {
    fn default() -> Self {
        Self {
            enabled: true,
            min_severity: Severity::Warning,
            unlabeled_severity: Severity::Warning,
            severity_labels: BTreeMap::new(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// A label matcher: the label equals (or, with `regex`, fully matches) the value.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelMatcher {
    /// Label name, as Prometheus spells them (letters, digits, `_`; not starting with a
    /// digit). Required.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$"))]
    pub label: String,
    /// Value to match (the empty value matches a missing label). Required; at most 1024
    /// characters.
    #[schemars(length(max = 1024))]
    pub value: String,
    /// Treat `value` as a regular expression anchored at both ends; the controller
    /// refuses one that does not compile. Default: false.
    #[serde(default)]
    pub regex: bool,
}

/// Built-in queries from the morning routine: hot-nodes (CPU busy above 80 % per
/// instance), disks-filling (filesystems predicted, linearly over 6 h, to be full within
/// 24 h) or http-5xx (HTTP 5xx rate per service above 0.1/s).
// No doc comments on the variants: schemars would make them the field's description.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueryPreset {
    HotNodes,
    DisksFilling,
    #[serde(rename = "http-5xx")]
    Http5xx,
}

/// Whether crossing means going above or below the threshold: Above or Below.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Direction {
    #[default]
    Above,
    Below,
}

/// Unit used to display a query's values: none, percent, bytes, seconds or
/// requestsPerSecond.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Unit {
    #[default]
    None,
    Percent,
    Bytes,
    Seconds,
    RequestsPerSecond,
}

/// A named PromQL instant query; every series crossing a threshold is a finding.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = kube::core::Rule::new("has(self.query) || has(self.preset)")
    .message("set query (a PromQL expression) or preset"))]
#[x_kube(validation = kube::core::Rule::new("has(self.preset) || has(self.warning) || has(self.critical)")
    .message("a query without a preset needs a threshold: set warning, critical or both"))]
#[x_kube(validation = kube::core::Rule::new("!(has(self.warning) && has(self.critical)) || ((has(self.direction) && self.direction == 'Below') ? self.warning >= self.critical : self.warning <= self.critical)")
    .message("warning must be crossed before critical: with direction Above (the default) warning may not be above critical, with direction Below it may not be below critical"))]
#[serde(rename_all = "camelCase")]
pub struct PromQuery {
    /// Name shown in the digest; unique within the target, at most 63 characters, no
    /// `/` or control characters. Required.
    #[schemars(length(min = 1, max = 63), regex(pattern = PRINTABLE_NAME))]
    pub name: String,
    /// Start from a built-in query: hot-nodes (CPU busy above 80 % per instance),
    /// disks-filling (filesystems predicted to be full within 24 h) or http-5xx (HTTP 5xx
    /// rate per service above 0.1/s); fields set here override the preset's. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<QueryPreset>,
    /// PromQL expression (required unless `preset` is set); at most 16384 characters.
    /// Default: the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub query: Option<String>,
    /// Value at which a series becomes a warning (a warning or critical threshold is
    /// required unless `preset` is set). Default: the preset's, else unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    /// Value at which a series becomes critical; crossed after `warning` in `direction`.
    /// Default: the preset's, else unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// Crossing means going Above or Below the thresholds. Default: the preset's, else
    /// Above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Display name of a series built from its labels, e.g. `{{instance}}`; at most 256
    /// characters. Default: the preset's, else the series' labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub legend: Option<String>,
    /// Unit used to display values: none, percent, bytes, seconds or requestsPerSecond.
    /// Default: the preset's, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// What an answer without data means: Healthy, Warning or Critical. No data is an
    /// empty result (the series the query reads are missing, e.g. node-exporter is not
    /// scraped) or a NaN value (e.g. 0/0); either is a `QueryNoData` finding of this
    /// severity, which says which. Default: Warning for a preset, else Healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_empty: Option<OnEmpty>,
}

/// What a query without data means: Healthy, Warning or Critical.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OnEmpty {
    Healthy,
    Warning,
    Critical,
}

impl OnEmpty {
    /// The severity of the finding, or none for Healthy.
    pub fn severity(self) -> Option<Severity> {
        match self {
            OnEmpty::Healthy => None,
            OnEmpty::Warning => Some(Severity::Warning),
            OnEmpty::Critical => Some(Severity::Critical),
        }
    }
}
