//! The report of one run: its verdict and counts, each target's findings and errors, and
//! the diff with the previous run. The status holds the last one (`status.lastRun`), and
//! `morningcheck run -o json` prints it: this is also the CLI's JSON schema.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Severity;

/// The overall verdict of a run: Healthy, Warning, Critical, Failed or Interrupted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RunResult {
    /// No findings above info.
    #[default]
    Healthy,
    /// Warning findings.
    Warning,
    /// Critical findings.
    Critical,
    /// Nothing could be checked: every target failed, and no finding was made. A run that
    /// checked anything is graded by its worst finding, and says `incomplete` when some
    /// targets could not be checked.
    Failed,
    /// The controller stopped while the run was in progress.
    Interrupted,
}

/// Finding counts by severity.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// All findings.
    pub total: u64,
    /// Critical findings.
    pub critical: u64,
    /// Warning findings.
    pub warning: u64,
    /// Info findings.
    pub info: u64,
    /// Findings a snooze covers: in `total`, not in any severity.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub snoozed: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A snoozed finding, listed with why and until when.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnoozedFinding {
    /// The target's name.
    pub target: String,
    /// Its severity, were it not snoozed.
    pub severity: Severity,
    /// The kind of problem, e.g. CrashLoopBackOff.
    pub check: String,
    /// The object concerned.
    pub object: String,
    /// The snooze's reason.
    pub reason: String,
    /// When the snooze ends.
    pub until: Time,
}

/// A snooze of the spec, as a run saw it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnoozeRef {
    /// The snooze's check pattern.
    pub check: String,
    /// The snooze's object pattern.
    pub object: String,
    /// The snooze's target pattern, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When it ends (ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// The snooze's reason.
    pub reason: String,
    /// Why it was refused, for a refused one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the snoozes did in a run.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnoozeSummary {
    /// Snoozed findings, most severe first (cut to fit; `counts.snoozed` has them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<SnoozedFinding>,
    /// Snoozes that ended since the previous run: their findings count again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired: Vec<SnoozeRef>,
    /// Snoozes not applied: more than 90 days ahead, or an `until` that is no time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<SnoozeRef>,
}

impl SnoozeSummary {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.expired.is_empty() && self.refused.is_empty()
    }
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
        self.total += other.snoozed;
        self.snoozed += other.snoozed;
    }
}

/// The area a target belongs to: Kubernetes, Prometheus or Aws.
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

/// Why a target (or one of its parts) could not be checked: Unreachable, Unauthorized,
/// Forbidden, Throttled, BadRequest, Config, Api or PolicyDenied.
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
    /// The operator's tenancy policy refused the target before anything was sent: the
    /// message names the setting and how the admin grants it.
    PolicyDenied,
}

/// A target's error.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetError {
    /// The kind of failure: Unreachable, Unauthorized, Forbidden, Throttled, BadRequest,
    /// Config, Api or PolicyDenied.
    pub tier: ErrorTier,
    /// What failed, e.g. the query, region or resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The error, for a person (never a credential).
    pub message: String,
}

/// One thing an on-call engineer should look at.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable identity across runs: kind of problem and object.
    pub key: String,
    /// Info, Warning or Critical.
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
    /// The target's name from the spec.
    pub name: String,
    /// Kubernetes, Prometheus or Aws.
    pub area: Area,
    /// Region, context or endpoint checked, when it differs from the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The target's verdict: Healthy, Warning, Critical or Failed.
    pub result: RunResult,
    /// Errors of the target or its parts; partial results are still reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<TargetError>,
    /// Counts of all findings, including those cut from `findings`.
    pub counts: Counts,
    /// Facts worth showing, e.g. instances by state or pods scanned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, u64>,
    /// How many findings of each check (snoozed ones aside), e.g. CrashLoopBackOff: 1067;
    /// exact, like `counts`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, u64>,
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
    /// The target's name.
    pub target: String,
    /// Info, Warning or Critical.
    pub severity: Severity,
    /// The kind of problem, e.g. CrashLoopBackOff.
    pub check: String,
    /// The object concerned.
    pub object: String,
    /// Consecutive runs this finding has been present, this one included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
    /// When this streak began: the first of those runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// What changed since the previous run.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunDiff {
    /// Whether there was a previous run to compare with.
    pub has_previous: bool,
    /// Findings not in the previous run.
    pub new_total: u64,
    /// Findings of the previous run that are gone.
    pub resolved_total: u64,
    /// Findings present in both runs.
    pub still_failing_total: u64,
    /// Of those, findings whose severity changed.
    #[serde(default)]
    pub severity_changed_total: u64,
    /// Findings of the previous run whose target could not be checked this time: neither
    /// resolved nor still failing. The next run that checks the target compares them.
    #[serde(default)]
    pub unknown_total: u64,
    /// More findings than the known set holds (50,000): the totals are approximate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
    /// New findings, most severe first (cut to fit the status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<FindingRef>,
    /// Resolved findings, most severe first (cut to fit the status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<FindingRef>,
    /// Findings still failing with their streaks, most severe first (cut to fit the status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_failing: Vec<FindingRef>,
}

/// The full result of one run: the status' `lastRun`, and the JSON output of
/// `morningcheck run` (schema version in `schemaVersion`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Version of this report's shape, e.g. morningcheck.io/v1alpha1.
    pub schema_version: String,
    /// `namespace/name` of the MorningCheck (in `morningcheck run` output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Deterministic id of the run: `scheduled-<unix seconds>` or `run-now-<token>`.
    pub run_id: String,
    /// The slot run (for run-now, the time it was requested).
    pub slot: Time,
    /// When the run started.
    pub started_at: Time,
    /// When the run finished.
    pub finished_at: Time,
    /// How long the run took, in seconds.
    pub duration_seconds: f64,
    /// The verdict, by the worst finding: Healthy, Warning or Critical; Failed when nothing
    /// could be checked; Interrupted when the run never finished.
    pub result: RunResult,
    /// Whether some targets could not be (fully) checked: the verdict covers the rest.
    #[serde(default)]
    pub incomplete: bool,
    /// How many targets could not be (fully) checked: those with errors.
    #[serde(default)]
    pub unchecked_targets: u32,
    /// Counts of all findings of all targets.
    pub counts: Counts,
    /// Counts per area.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub areas: BTreeMap<String, Counts>,
    /// One report per target, in the spec's order. A status too large for its budget keeps
    /// the worst targets; `omittedTargets` counts the others, which `counts` still includes.
    pub targets: Vec<TargetReport>,
    /// Targets left out of `targets` to fit the status (the healthiest, last first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_targets: u32,
    /// What changed since the previous run.
    #[serde(default)]
    pub diff: RunDiff,
    /// Snoozed findings, and snoozes that ended or were refused.
    #[serde(default, skip_serializing_if = "SnoozeSummary::is_empty")]
    pub snoozes: SnoozeSummary,
    /// Hash of the full set of finding keys; equal hashes mean an unchanged set.
    pub findings_digest: String,
    /// The attempt that produced this report, when not the first: earlier ones were
    /// stopped by a controller restart, rollout or failover.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first")]
    pub attempt: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn first_attempt() -> u32 {
    1
}

fn is_first(n: &u32) -> bool {
    *n <= 1
}
