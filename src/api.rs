//! The `MorningCheck` custom resource: what to check, when, and where to report.
//!
//! Everything the apiserver can validate is expressed in the schema (enums, minimums,
//! patterns, required fields); what it can't (cron syntax, time-zone names, PromQL)
//! is validated by the controller in [`crate::validate`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "morningcheck.io";
/// Annotation that triggers one run; its value is a token that runs at most once.
pub const RUN_NOW_ANNOTATION: &str = "morningcheck.io/run-now";

/// A morning check: targets to inspect on a cron schedule, with results written to
/// the status and a digest posted to Slack.
// Every printer column repeats `type_`; that is the attribute's shape, not a mistake.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "morningcheck.io",
    version = "v1alpha1",
    kind = "MorningCheck",
    plural = "morningchecks",
    shortname = "mc",
    namespaced,
    status = "MorningCheckStatus",
    derive = "PartialEq",
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Result", type_ = "string", json_path = ".status.lastRun.result"),
    printcolumn(name = "Findings", type_ = "integer", json_path = ".status.lastRun.counts.total"),
    printcolumn(name = "Last Run", type_ = "date", json_path = ".status.lastRun.startedAt"),
    printcolumn(name = "Next Run", type_ = "string", json_path = ".status.nextScheduleTime", priority = "1"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MorningCheckSpec {
    /// Cron schedule in standard 5-field form (minute hour day-of-month month day-of-week)
    /// or one of @hourly, @daily, @weekly, @monthly, @yearly. Evaluated in `timeZone`.
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,

    /// IANA time zone the schedule is evaluated in, e.g. Europe/Berlin. UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,

    /// Stop scheduling new runs. A run in progress finishes; run-now still works.
    #[serde(default)]
    pub suspend: bool,

    /// A slot missed by more than this many seconds is skipped and recorded as missed
    /// (as CronJob's field of the same name). Unset: a missed slot runs however late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub starting_deadline_seconds: Option<i64>,

    /// Deadline of one run; every target runs concurrently inside it.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 5, max = 3600))]
    pub timeout_seconds: i64,

    /// How many run summaries to keep in `status.history`.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 0, max = 50))]
    pub history_limit: i32,

    /// What to check.
    pub targets: Targets,

    /// Where to post the digest. No Slack post when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackSpec>,
}

fn default_timeout_seconds() -> i64 {
    300
}
fn default_history_limit() -> i32 {
    10
}
fn default_true() -> bool {
    true
}

/// The targets of a morning check, grouped by kind. Names are unique across all kinds.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// Kubernetes clusters: the operator's own, or remote ones through a kubeconfig Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<KubernetesTarget>,
    /// Prometheus-compatible query APIs (Prometheus, Thanos, Mimir, VictoriaMetrics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus: Vec<PrometheusTarget>,
    /// AWS accounts and regions whose EC2 fleet is checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws: Vec<AwsTarget>,
}

/// A key of a Secret in the MorningCheck's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Must be empty or the MorningCheck's own namespace: Secrets are never read elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One Kubernetes cluster to check.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesTarget {
    /// Name shown in the status and the digest.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
    /// Secret key holding a kubeconfig for a remote cluster (token or client-certificate
    /// auth; exec plugins and auth providers are refused). Unset: the operator's own cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<SecretKeyRef>,
    /// Kubeconfig context to use (`morningcheck run` only; the controller ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Which namespaces to look at. All when empty.
    #[serde(default)]
    pub namespaces: NamespaceFilter,
    /// Label selector applied to pods and workloads, e.g. `tier=prod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Which checks run.
    #[serde(default)]
    pub checks: KubernetesChecks,
    /// Thresholds and windows.
    #[serde(default)]
    pub thresholds: KubernetesThresholds,
}

/// Namespace include and exclude lists; exclude wins.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceFilter {
    /// Only these namespaces. All when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub include: Vec<String>,
    /// Never these namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub exclude: Vec<String>,
}

/// Switches for the Kubernetes checks; all on by default.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesChecks {
    /// Pod phases, waiting containers, restarts, readiness.
    #[serde(default = "default_true")]
    pub pods: bool,
    /// Deployments, StatefulSets and DaemonSets below their desired replicas.
    #[serde(default = "default_true")]
    pub workloads: bool,
    /// Node readiness, pressure conditions and cordons.
    #[serde(default = "default_true")]
    pub nodes: bool,
    /// Warning events inside the window.
    #[serde(default = "default_true")]
    pub events: bool,
}

impl Default for KubernetesChecks {
    fn default() -> Self {
        Self { pods: true, workloads: true, nodes: true, events: true }
    }
}

/// Thresholds of the Kubernetes checks.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesThresholds {
    /// A container restarted more than this many times is a finding.
    #[serde(default = "default_restarts")]
    #[schemars(range(min = 0))]
    pub restart_count: i32,
    /// A pod Pending, or Running with containers not ready, for longer than this is a finding.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 604800))]
    pub pending_grace_seconds: i64,
    /// Warning events newer than this are reported.
    #[serde(default = "default_event_window")]
    #[schemars(range(min = 60, max = 604800))]
    pub event_window_seconds: i64,
    /// At most this many findings of this target are written to the status (totals are
    /// always complete).
    #[serde(default = "default_max_findings")]
    #[schemars(range(min = 1, max = 200))]
    pub max_findings: i32,
}

fn default_restarts() -> i32 {
    5
}
fn default_grace() -> i64 {
    600
}
fn default_event_window() -> i64 {
    1800
}
fn default_max_findings() -> i32 {
    20
}

impl Default for KubernetesThresholds {
    fn default() -> Self {
        Self {
            restart_count: default_restarts(),
            pending_grace_seconds: default_grace(),
            event_window_seconds: default_event_window(),
            max_findings: default_max_findings(),
        }
    }
}

/// One Prometheus-compatible endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusTarget {
    /// Name shown in the status and the digest.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
    /// Base URL, with a path prefix when behind a proxy, e.g. https://thanos.example/prom.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://"))]
    pub url: String,
    /// Authentication. None when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PrometheusAuth>,
    /// PEM CA bundle used to verify the server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Turn off TLS verification. Off by default; shown in the status when on.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// Seconds to establish a connection.
    #[serde(default = "default_connect_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub connect_timeout_seconds: i64,
    /// Seconds to read one response.
    #[serde(default = "default_read_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub read_timeout_seconds: i64,
    /// Which alerts become findings.
    #[serde(default)]
    pub alerts: AlertFilter,
    /// Named PromQL instant queries with thresholds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<PromQuery>,
}

fn default_connect_timeout() -> i64 {
    5
}
fn default_read_timeout() -> i64 {
    30
}

/// Authentication to Prometheus: a bearer token or basic auth, each from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusAuth {
    /// Secret key holding a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
    /// Basic auth user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
}

/// Basic auth credentials from Secrets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name.
    #[schemars(length(min = 1, max = 253))]
    pub username: String,
    /// Secret key holding the password.
    pub password_secret_ref: SecretKeyRef,
}

/// Severity of a finding or an alert, in increasing order.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Which firing alerts become findings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertFilter {
    /// Read `/api/v1/alerts` at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Alerts below this severity are counted but not reported.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Severity given to an alert whose `severity` label is missing or not recognised.
    #[serde(default = "default_min_severity")]
    pub unlabeled_severity: Severity,
    /// Label values mapped to each severity, lowest first; an alert's `severity` label is
    /// matched case-insensitively. Defaults: info/none, warning/warn, critical/page/error.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity_labels: BTreeMap<String, Severity>,
    /// Only alerts matching all of these label matchers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<LabelMatcher>,
    /// Drop alerts matching any of these (e.g. alertname=Watchdog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// Label name.
    #[schemars(length(min = 1))]
    pub label: String,
    /// Value to match.
    pub value: String,
    /// Treat `value` as a regular expression anchored at both ends.
    #[serde(default)]
    pub regex: bool,
}

/// Built-in queries from the morning routine.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueryPreset {
    /// CPU busy above 80 % per instance.
    HotNodes,
    /// Filesystems predicted (linear over 6 h) to be full within 24 h.
    DisksFilling,
    /// HTTP 5xx rate per service above 0.1/s.
    #[serde(rename = "http-5xx")]
    Http5xx,
}

/// Whether crossing means going above or below the threshold.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Direction {
    #[default]
    Above,
    Below,
}

/// Unit used to display a query's values.
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromQuery {
    /// Name shown in the digest.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Start from a built-in query; fields set here override the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<QueryPreset>,
    /// PromQL expression (required unless `preset` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub query: Option<String>,
    /// Value at which a series becomes a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    /// Value at which a series becomes critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// Crossing means above (default) or below the thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Display name of a series built from its labels, e.g. `{{instance}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legend: Option<String>,
    /// Unit used to display values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
}

/// EC2 in one AWS account, in one or more regions.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsTarget {
    /// Name shown in the status and the digest.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
    /// Regions checked concurrently, e.g. eu-west-1.
    #[schemars(length(min = 1, max = 40))]
    pub regions: Vec<String>,
    /// Role to assume (cross-account) on top of the standard credential chain (IRSA,
    /// Pod Identity, environment, profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub role_arn: Option<String>,
    /// External ID passed when assuming `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Override of the EC2 and STS endpoint (other partitions, local testing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint_url: Option<String>,
    /// Only instances with all of these tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Only instances in these states (e.g. running). All when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_states: Vec<String>,
    /// Report stopped instances as findings (stopped is often intended, so off by default).
    #[serde(default)]
    pub report_stopped: bool,
    /// Status checks in `insufficient-data` for longer than this are a finding.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 604800))]
    pub insufficient_data_grace_seconds: i64,
}

/// Slack delivery.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlackSpec {
    /// Secret key holding the incoming-webhook URL (https only). Never logged.
    pub webhook_secret_ref: SecretKeyRef,
    /// When to post.
    #[serde(default)]
    pub notify: NotifyPolicy,
    /// Mentions added on a Critical result, e.g. `<!here>` or `<!subteam^S123>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub mention_on_critical: Vec<String>,
}

/// When a run posts to Slack.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NotifyPolicy {
    /// Every run.
    #[default]
    Always,
    /// Unless the result is Healthy.
    OnFindings,
    /// Only when the set of findings differs from the previous run's.
    OnChange,
}

// ---------------------------------------------------------------------------------------
// Status

/// Observed state: the schedule's bookkeeping, the last run's result, and its history.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MorningCheckStatus {
    /// Ready (spec valid, schedule computed), Healthy (the last run's verdict), Notified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The slot of the most recent run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The most recent slot skipped because it was missed by more than the starting deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_missed_time: Option<Time>,
    /// When the most recent run without a failed target finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The next slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The run in progress, recorded before its work starts so a restart never runs a
    /// slot twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run: Option<ActiveRun>,
    /// The last run-now token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now_token: Option<String>,
    /// The result of the last completed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunReport>,
    /// Findings of the last run with their streaks, for the next run's diff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_findings: Vec<KnownFinding>,
    /// Summaries of the most recent runs, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunRecord>,
    /// Outcome of the last Slack delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationStatus>,
}

/// A standard Kubernetes condition.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Healthy or Notified.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: Time,
    /// The generation this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A run in progress.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveRun {
    /// Deterministic id: the slot's time, or the run-now token.
    pub run_id: String,
    /// The slot being run (for run-now, the time it was requested).
    pub slot: Time,
    /// When the run started.
    pub started_at: Time,
    /// Schedule or RunNow.
    pub trigger: String,
}

/// The overall verdict of a run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RunResult {
    /// No findings above info.
    #[default]
    Healthy,
    /// Warning findings.
    Warning,
    /// Critical findings.
    Critical,
    /// At least one target could not be checked.
    Failed,
    /// The controller stopped while the run was in progress.
    Interrupted,
}

/// Finding counts by severity.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub total: u64,
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

impl Counts {
    pub fn add(&mut self, severity: Severity, n: u64) {
        self.total += n;
        match severity {
            Severity::Critical => self.critical += n,
            Severity::Warning => self.warning += n,
            Severity::Info => self.info += n,
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        self.add(Severity::Critical, other.critical);
        self.add(Severity::Warning, other.warning);
        self.add(Severity::Info, other.info);
    }
}

/// The area a target belongs to.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum Area {
    Kubernetes,
    Prometheus,
    Aws,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Kubernetes => "kubernetes",
            Area::Prometheus => "prometheus",
            Area::Aws => "aws",
        }
    }
}

/// Why a target (or one of its parts) could not be checked.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ErrorTier {
    /// DNS, connection, TLS or timeout.
    Unreachable,
    /// Credentials missing, expired or rejected (401).
    Unauthorized,
    /// Authenticated but not allowed (403, AccessDenied).
    Forbidden,
    /// Rate limited and still failing after retries.
    Throttled,
    /// The request was rejected as invalid (bad PromQL, bad filter).
    BadRequest,
    /// The target's configuration is unusable (missing Secret, bad kubeconfig).
    Config,
    /// Any other error answered by the peer.
    Api,
}

/// A target's error.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetError {
    pub tier: ErrorTier,
    /// What failed, e.g. the query, region or resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub message: String,
}

/// One thing an on-call engineer should look at.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable identity across runs: kind of problem and object.
    pub key: String,
    pub severity: Severity,
    /// The kind of problem, e.g. CrashLoopBackOff, NodeNotReady, AlertFiring.
    pub check: String,
    /// The object concerned, e.g. `prod/web-7d9f` or `i-0abc (web-1)`.
    pub object: String,
    /// Details for a person.
    pub message: String,
    /// Since when, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// The result of one target.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    pub name: String,
    pub area: Area,
    /// Region, context or endpoint checked, when it differs from the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub result: RunResult,
    /// Errors of the target or its parts; partial results are still reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<TargetError>,
    /// Counts of all findings, including those cut from `findings`.
    pub counts: Counts,
    /// Facts worth showing, e.g. instances by state or pods scanned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, u64>,
    /// Most severe findings first, cut at the target's limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// TLS verification was turned off for this target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// A finding named in a diff.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingRef {
    pub target: String,
    pub severity: Severity,
    pub check: String,
    pub object: String,
    /// Consecutive runs this finding has been present, this one included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
}

/// What changed since the previous run.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunDiff {
    /// Whether there was a previous run to compare with.
    pub has_previous: bool,
    pub new_total: u64,
    pub resolved_total: u64,
    pub still_failing_total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<FindingRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<FindingRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_failing: Vec<FindingRef>,
}

/// The full result of one run: the status' `lastRun`, and the JSON output of
/// `morningcheck run` (schema version in `schemaVersion`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub schema_version: String,
    /// `namespace/name` of the MorningCheck (in `morningcheck run` output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub run_id: String,
    pub slot: Time,
    pub started_at: Time,
    pub finished_at: Time,
    pub duration_seconds: f64,
    pub result: RunResult,
    pub counts: Counts,
    /// Counts per area.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub areas: BTreeMap<String, Counts>,
    pub targets: Vec<TargetReport>,
    #[serde(default)]
    pub diff: RunDiff,
    /// Hash of the full set of finding keys; equal hashes mean an unchanged set.
    pub findings_digest: String,
}

impl RunReport {
    /// A report of no targets: the start of every report, and what an interrupted run records.
    pub fn empty(
        run_id: &str,
        slot: jiff::Timestamp,
        started_at: jiff::Timestamp,
        finished_at: jiff::Timestamp,
    ) -> Self {
        Self {
            schema_version: crate::evaluate::SCHEMA_VERSION.to_string(),
            check: None,
            run_id: run_id.to_string(),
            slot: Time(slot),
            started_at: Time(started_at),
            finished_at: Time(finished_at),
            duration_seconds: (finished_at.duration_since(started_at).as_millis().max(0) as f64) / 1000.0,
            result: RunResult::Healthy,
            counts: Counts::default(),
            areas: BTreeMap::new(),
            targets: Vec::new(),
            diff: RunDiff::default(),
            findings_digest: crate::evaluate::digest_keys(&[]),
        }
    }
}

/// A finding of the last run with its streak, kept to diff the next run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownFinding {
    /// Hash of the finding key.
    pub id: String,
    /// Consecutive runs it has been present.
    pub runs: u32,
    pub target: String,
    pub severity: Severity,
    pub check: String,
    pub object: String,
}

/// A line of history.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub slot: Time,
    pub result: RunResult,
    pub counts: Counts,
    pub duration_seconds: f64,
    #[serde(default)]
    pub failed_targets: u32,
}

/// The outcome of a Slack delivery.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationStatus {
    pub run_id: String,
    /// Delivered, Skipped, Failed or Unknown (timed out after sending).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub time: Time,
}
