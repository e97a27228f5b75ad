//! The spec: schedule, targets of each kind, Slack.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DNS_LABEL, DNS_SUBDOMAIN, HTTP_URL, MorningCheckStatus, NAMESPACE_GLOB, PRINTABLE_NAME, PrometheusTarget,
    TARGET_NAME, default_true,
};

/// A morning check: the clusters, Prometheus endpoints and AWS accounts to inspect on a
/// cron schedule. Each run's verdict and findings are written to the status; a digest of
/// what is wrong and what changed since the previous run is posted to Slack.
// Every printer column repeats `type_`; that is the attribute's shape, not a mistake.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "morningcheck.io",
    version = "v1alpha1",
    kind = "MorningCheck",
    plural = "morningchecks",
    shortname = "mc",
    category = "morningcheck",
    namespaced,
    status = "MorningCheckStatus",
    derive = "PartialEq",
    doc = "MorningCheck runs the on-call engineer's morning round on a cron schedule: it checks Kubernetes clusters (crashlooping pods, unavailable workloads, NotReady nodes, warning events), Prometheus (firing alerts, PromQL thresholds) and AWS EC2 (impaired instances, scheduled events), writes the verdict and findings to its status, and posts one Slack digest. Annotate it with morningcheck.io/run-now=<token> to run it once now.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the spec is valid and scheduled"
    ),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule", description = "Cron schedule"),
    printcolumn(
        name = "Suspended",
        type_ = "boolean",
        json_path = ".spec.suspend",
        priority = 1,
        description = "No scheduled runs while true"
    ),
    printcolumn(
        name = "Result",
        type_ = "string",
        json_path = ".status.lastRun.result",
        description = "Verdict of the last run"
    ),
    printcolumn(
        name = "Unchecked",
        type_ = "integer",
        json_path = ".status.lastRun.uncheckedTargets",
        description = "Targets the last run could not check"
    ),
    printcolumn(
        name = "Findings",
        type_ = "integer",
        json_path = ".status.lastRun.counts.total",
        description = "Findings of the last run"
    ),
    printcolumn(
        name = "Last Run",
        type_ = "date",
        json_path = ".status.lastRun.startedAt",
        description = "When the last run started"
    ),
    printcolumn(
        name = "Next Run",
        type_ = "string",
        json_path = ".status.nextRun",
        priority = 1,
        description = "The next slot, in the schedule's time zone"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        description = "Why the MorningCheck is (not) ready, or when it runs next"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MorningCheckSpec {
    /// Cron schedule in the standard 5-field form (minute hour day-of-month month
    /// day-of-week), or one of @hourly, @daily, @weekly, @monthly, @yearly; evaluated in
    /// `timeZone`. A schedule that never fires (e.g. 31 February) is refused by the
    /// controller (Ready=False, InvalidSchedule). Required; at most 128 characters.
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,

    /// IANA time zone the schedule is evaluated in, e.g. Europe/Berlin. Default: UTC.
    /// A slot in the hour skipped by a daylight-saving change runs once at the end of
    /// the gap; a slot in the repeated hour runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,

    /// Stop scheduling new runs; a run in progress finishes and run-now still works.
    /// Slots passed while suspended count as missed, as for CronJob. Default: false.
    #[serde(default)]
    pub suspend: bool,

    /// A slot missed by more than this many seconds is skipped and recorded as missed
    /// (Scheduled=False, MissedSchedule), as CronJob's field of the same name. 0 to 86400.
    /// Default: unset, a missed slot runs however late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub starting_deadline_seconds: Option<i64>,

    /// Deadline of one run in seconds; every target runs concurrently inside it, and a
    /// target still running at the deadline fails with "run deadline exceeded". 5 to 3600.
    /// Default: 300.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 5, max = 3600))]
    pub timeout_seconds: i64,

    /// How many run summaries `status.history` keeps. 0 to 50. Default: 10.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 0, max = 50))]
    pub history_limit: i32,

    /// What to check: at least one target; names unique across all kinds. Required.
    pub targets: Targets,

    /// Where to post the digest. Default: unset, no Slack post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackSpec>,

    /// ServiceAccount of this namespace whose permissions the checks of the operator's own
    /// cluster, and the reads of the Secrets this spec names, use: the operator
    /// impersonates it, so a MorningCheck never reads more than its namespace may. Bind
    /// the chart's `morningcheck-checker` ClusterRole to it with a RoleBinding, and grant
    /// it `get` on the Secrets named here. Default: the operator's configured default,
    /// `morningcheck`; in a namespace the admin lets use the operator's own identity, unset
    /// means that identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub service_account_name: Option<String>,

    /// Findings someone already knows about, until a date: a snoozed finding is counted
    /// (`counts.snoozed`) and listed with its reason and end, but never makes the run
    /// Warning or Critical and never mentions anyone. The first run after a snooze ends
    /// says so once. `until` may be at most 90 days ahead: the controller refuses (and
    /// reports) a longer one, since the schema has no clock. At most 100. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub snoozes: Vec<Snooze>,
}

/// Longest a snooze may last, from the run that applies it.
pub const MAX_SNOOZE_DAYS: i64 = 90;

/// One snooze: findings of `check` on objects matching `object`, until `until`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snooze {
    /// The finding's check, e.g. CrashLoopBackOff or AlertFiring; `*` and `?` are
    /// wildcards. Required; at most 128 characters.
    #[schemars(length(min = 1, max = 128))]
    pub check: String,
    /// The finding's object, e.g. `batch/nightly-*` or `i-0abc*`; `*` matches any run of
    /// characters (`/` included) and `?` one. Required; at most 512 characters.
    #[schemars(length(min = 1, max = 512))]
    pub object: String,
    /// Only findings of this target (a name; wildcards allowed). Default: every target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub target: Option<String>,
    /// When the snooze ends: a date (`2026-12-15`, the snooze ends as that day begins in
    /// the schedule's time zone) or an RFC 3339 time. At most 90 days ahead. Required.
    #[schemars(length(min = 10, max = 64), regex(pattern = r"^\d{4}-\d{2}-\d{2}([Tt ].+)?$"))]
    pub until: String,
    /// Why, for the digest: a ticket, who is on it. Required; at most 256 characters.
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
}

fn default_timeout_seconds() -> i64 {
    300
}
fn default_history_limit() -> i32 {
    10
}

/// The targets of a morning check, grouped by kind: at least one target, and every name
/// unique across all kinds.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.kubernetes) ? size(self.kubernetes) : 0) + (has(self.prometheus) ? size(self.prometheus) : 0) + (has(self.aws) ? size(self.aws) : 0) > 0"
).message("no targets: name at least one kubernetes, prometheus or aws target").reason(kube::core::Reason::FieldValueRequired))]
// Each name against its own list and the lists after it: at most 60,000 comparisons for
// the largest spec the schema admits, well inside the apiserver's cost limit per rule
// (a rule that rebuilt the joined list for every name went past it at 300 targets).
#[x_kube(validation = kube::core::Rule::new(concat!(
    "(!has(self.kubernetes) || self.kubernetes.all(k, self.kubernetes.exists_one(u, u.name == k.name)",
    " && (!has(self.prometheus) || !self.prometheus.exists(p, p.name == k.name))",
    " && (!has(self.aws) || !self.aws.exists(a, a.name == k.name))))",
    " && (!has(self.prometheus) || self.prometheus.all(p, self.prometheus.exists_one(u, u.name == p.name)",
    " && (!has(self.aws) || !self.aws.exists(a, a.name == p.name))))",
    " && (!has(self.aws) || self.aws.all(a, self.aws.exists_one(u, u.name == a.name)))"
)).message("target names must be unique across kubernetes, prometheus and aws targets: rename the target that repeats a name"))]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// Kubernetes clusters: the operator's own, or remote ones through a kubeconfig
    /// Secret. At most 100. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub kubernetes: Vec<KubernetesTarget>,
    /// Prometheus-compatible query APIs (Prometheus, Thanos, Mimir, VictoriaMetrics).
    /// At most 100. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub prometheus: Vec<PrometheusTarget>,
    /// AWS accounts whose EC2 fleet is checked, in one or more regions each. At most 100.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub aws: Vec<AwsTarget>,
}

/// A key of a Secret in the MorningCheck's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret (a DNS subdomain). Required.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub name: String,
    /// Key inside the Secret's data (letters, digits, `-`, `_`, `.`). Required.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
    /// Namespace of the Secret: must be the MorningCheck's own, as Secrets are never read
    /// elsewhere (the controller refuses another with Ready=False). Default: the
    /// MorningCheck's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL))]
    pub namespace: Option<String>,
}

/// One Kubernetes cluster to check.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesTarget {
    /// Name shown in the status and the digest: lowercase letters, digits, `-` and `.`,
    /// at most 63 characters, unique across all targets. Required.
    #[schemars(length(min = 1, max = 63), regex(pattern = TARGET_NAME))]
    pub name: String,
    /// Secret key holding a kubeconfig for a remote cluster (token or client-certificate
    /// auth; exec plugins and auth providers are refused). Default: unset, the operator's
    /// own cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<SecretKeyRef>,
    /// Kubeconfig context to use (`morningcheck run` only; the controller ignores it).
    /// Default: the kubeconfig's current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub context: Option<String>,
    /// Which namespaces to look at. Default: all namespaces; for the operator's own cluster
    /// checked as a namespace's ServiceAccount (see `spec.serviceAccountName`), the
    /// MorningCheck's own namespace.
    #[serde(default)]
    pub namespaces: NamespaceFilter,
    /// Label selector applied to pods and workloads, in kubectl's syntax, e.g.
    /// `tier=prod,app in (web,api),!canary`. The controller refuses a selector the
    /// apiserver would (Ready=False). Default: unset, every pod and workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub label_selector: Option<String>,
    /// Which checks run. Default: all of them.
    #[serde(default)]
    pub checks: KubernetesChecks,
    /// Thresholds and windows. Default: each field's own default.
    #[serde(default)]
    pub thresholds: KubernetesThresholds,
    /// Whether this target's findings may be Critical: `false` (staging, say) caps them at
    /// Warning, so they never make the run Critical nor mention anyone. Default: true.
    #[serde(default, skip_serializing_if = "Criticality::is_default")]
    pub critical: Criticality,
}

/// Namespace include and exclude lists; exclude wins.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceFilter {
    /// Only these namespaces: names or globs, where `*` matches any run of characters and
    /// `?` one (`team-a`, `big-*`); at most 1000. Names are listed namespace by namespace;
    /// a glob needs the right to list at cluster scope. Default: empty, all namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 63), regex(pattern = NAMESPACE_GLOB)))]
    pub include: Vec<String>,
    /// Never these namespaces: names or globs (`kube-*`); at most 1000. Default: empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 63), regex(pattern = NAMESPACE_GLOB)))]
    pub exclude: Vec<String>,
}

/// Switches for the Kubernetes checks; all on by default.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesChecks {
    /// Pod phases, waiting containers, restarts and readiness. Default: true.
    #[serde(default = "default_true")]
    pub pods: bool,
    /// Deployments, StatefulSets and DaemonSets below their desired replicas. Default: true.
    #[serde(default = "default_true")]
    pub workloads: bool,
    /// Node readiness, pressure conditions and cordons. Nodes are cluster-scoped, which a
    /// namespace's ServiceAccount may not list unless granted the chart's node-reader
    /// ClusterRole. Default: true with the operator's identity or a kubeconfig Secret,
    /// false for the operator's own cluster checked as a namespace's ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<bool>,
    /// Warning events inside `thresholds.eventWindowSeconds`. Default: true.
    #[serde(default = "default_true")]
    pub events: bool,
}

impl Default for KubernetesChecks {
    fn default() -> Self {
        Self { pods: true, workloads: true, nodes: None, events: true }
    }
}

/// Thresholds of the Kubernetes checks.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesThresholds {
    /// A container restarted more than this many times is a warning finding. 0 to
    /// 100000. Default: 5.
    #[serde(default = "default_restarts")]
    #[schemars(range(min = 0, max = 100000))]
    pub restart_count: i32,
    /// The grace period, in seconds: a pod Pending, or Running with containers not ready,
    /// a workload below its desired replicas (a rollout or scale-up in progress) and a
    /// node NotReady are findings only once they have been so for longer. 0 to 604800 (a
    /// week). Default: 600.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 604800))]
    pub pending_grace_seconds: i64,
    /// Warning events newer than this many seconds are reported. 60 to 604800 (a week).
    /// Default: 1800.
    #[serde(default = "default_event_window")]
    #[schemars(range(min = 60, max = 604800))]
    pub event_window_seconds: i64,
    /// At most this many findings of this target are written to the status, most severe
    /// first (totals are always complete). 1 to 200. Default: 20.
    #[serde(default = "default_max_findings")]
    #[schemars(range(min = 1, max = 200))]
    pub max_findings: i32,
}

fn default_restarts() -> i32 {
    5
}
pub(crate) fn default_grace() -> i64 {
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

/// EC2 in one AWS account, in one or more regions.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = kube::core::Rule::new("!has(self.externalId) || has(self.roleArn)")
    .message("externalId is only sent when assuming roleArn: set roleArn or remove externalId")
    .field_path(".externalId")
    .reason(kube::core::Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct AwsTarget {
    /// Name shown in the status and the digest: lowercase letters, digits, `-` and `.`,
    /// at most 63 characters, unique across all targets. Required.
    #[schemars(length(min = 1, max = 63), regex(pattern = TARGET_NAME))]
    pub name: String,
    /// Regions checked concurrently, e.g. eu-west-1; each listed once, at most 40.
    /// Required.
    #[schemars(
        length(min = 1, max = 40),
        inner(length(min = 1, max = 32), regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*-[0-9]+$"))
    )]
    #[x_kube(validation = kube::core::Rule::new("self.all(r, self.exists_one(s, s == r))").message("each region may be listed once: remove the repeated region"))]
    pub regions: Vec<String>,
    /// ARN of an IAM role to assume (cross-account) on top of the standard credential
    /// chain (IRSA, Pod Identity, environment, profile), where the operator's admin allows
    /// this namespace that role. Default: unset, no role assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub role_arn: Option<String>,
    /// External ID passed when assuming `roleArn` (only with `roleArn`). 2 to 1224
    /// characters. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[\w+=,.@:/-]+$"))]
    pub external_id: Option<String>,
    /// Override of the EC2 and STS endpoint URL (other partitions, VPC endpoints, local
    /// testing), honoured only where the operator's admin allows endpoint overrides.
    /// Default: unset, AWS's own endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = HTTP_URL))]
    #[x_kube(validation = super::no_userinfo())]
    pub endpoint_url: Option<String>,
    /// Only instances with all of these tags (key: value), at most 50. Default: none,
    /// every instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    pub tags: BTreeMap<String, String>,
    /// Only instances in these states: pending, running, shutting-down, terminated,
    /// stopping, stopped. Default: empty, every state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 6),
        inner(regex(pattern = r"^(pending|running|shutting-down|terminated|stopping|stopped)$"))
    )]
    pub instance_states: Vec<String>,
    /// Report stopped instances as findings (stopped is often intended). Default: false.
    #[serde(default)]
    pub report_stopped: bool,
    /// Status checks in `insufficient-data` for longer than this many seconds are a
    /// finding. 0 to 604800 (a week). Default: 600.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 604800))]
    pub insufficient_data_grace_seconds: i64,
    /// Whether this target's findings may be Critical: `false` (staging, say) caps them at
    /// Warning, so they never make the run Critical nor mention anyone. Default: true.
    #[serde(default, skip_serializing_if = "Criticality::is_default")]
    pub critical: Criticality,
}

/// Whether a target's findings may be Critical (`true`, the default) or are capped at
/// Warning (`false`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct Criticality(pub bool);

impl Default for Criticality {
    fn default() -> Self {
        Self(true)
    }
}

impl Criticality {
    pub fn is_default(&self) -> bool {
        self.0
    }

    /// The most severe a finding of the target may be.
    pub fn ceiling(self) -> Severity {
        if self.0 { Severity::Critical } else { Severity::Warning }
    }
}

/// Slack delivery: an incoming webhook (one message per run) or a Slack app (a summary
/// in the channel, the details in its thread); exactly one of the two.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = kube::core::Rule::new("has(self.webhookSecretRef) != has(self.app)")
    .message("set exactly one of webhookSecretRef (an incoming webhook) and app (a Slack app's bot token and channel)")
    .reason(kube::core::Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct SlackSpec {
    /// Secret key holding the incoming-webhook URL (https only), in the MorningCheck's
    /// namespace. Never logged. Either this or `app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_ref: Option<SecretKeyRef>,
    /// A Slack app posts the summary with `chat.postMessage` and the details in its
    /// thread, and edits them in place when a run is retried. Either this or
    /// `webhookSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<SlackApp>,
    /// When to post: Always (every run), OnFindings (unless the result is Healthy) or
    /// OnChange (only when the set of findings differs from the previous run's).
    /// Default: Always.
    #[serde(default)]
    pub notify: NotifyPolicy,
    /// Mentions added on a Critical result, e.g. `<!here>` or `<!subteam^S123>`; at most
    /// 10. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 1, max = 128)))]
    pub mention_on_critical: Vec<String>,
}

/// A Slack app: its bot token and the channel it posts to.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlackApp {
    /// Secret key holding the app's bot token (`xoxb-…`, scope `chat:write`), in the
    /// MorningCheck's namespace. Never logged. Required.
    pub token_secret_ref: SecretKeyRef,
    /// The channel: its ID (`C0123ABCDEF`) or name (`#ops-morning`). The app must be a
    /// member (`/invite @app`). Required.
    #[schemars(length(min = 1, max = 80), regex(pattern = PRINTABLE_NAME))]
    pub channel: String,
    /// Base URL of Slack's Web API (GovSlack, an enterprise proxy), subject to the
    /// operator's outbound policy. Default: `https://slack.com/api/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = HTTP_URL))]
    #[x_kube(validation = super::no_userinfo())]
    pub api_url: Option<String>,
}

/// When a run posts to Slack: Always, OnFindings or OnChange.
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

/// Severity of a finding or an alert, in increasing order: Info, Warning, Critical.
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
