//! The status: conditions, the schedule's bookkeeping, the last run's report
//! ([`super::RunReport`]) and history.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Counts, RunReport, RunResult};

/// Observed state: the schedule's bookkeeping, the last run's result, and its history.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MorningCheckStatus {
    /// Conditions: Ready (spec valid and scheduled), Healthy (the last run's worst finding),
    /// Complete (whether it could check every target), Scheduled (False after a missed
    /// slot) and Notified (the last Slack delivery).
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
    /// The next slot (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The next slot for a person, in the schedule's time zone, e.g. `2026-11-25 07:00
    /// CET`: the form of the Ready condition's message. Unset while suspended or invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The run in progress, recorded before its work starts so a restart never runs a
    /// slot twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run: Option<ActiveRun>,
    /// Who claimed the most recent run. Every later write of that run requires this claim
    /// still to be here, so a controller that lost its claim (a deposed leader, a stalled
    /// process) can never overwrite the record of the one that took over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// The last run-now token whose run is over: its result is in `lastRun`, so
    /// `kubectl wait --for=jsonpath='{.status.lastRunNowToken}'=T` returns with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now_token: Option<String>,
    /// The result of the last completed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunReport>,
    /// Where every finding of the last run is kept with its streak, for the next run's
    /// diff: a ConfigMap in the operator's namespace, compact (about 8 bytes a finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_findings: Option<KnownFindingsRef>,
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
    /// Ready, Healthy, Scheduled or Notified.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// Machine-readable reason in CamelCase, e.g. Scheduled, InvalidSchedule.
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
    /// What started the run: Schedule or RunNow.
    pub trigger: RunTrigger,
    /// The run-now token being run; `lastRunNowToken` takes it when the run is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_now_token: Option<String>,
    /// Which attempt this is: a run the controller stopped in the middle of is run again
    /// (checks are read-only), up to three attempts.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// A controller's claim of a run: the fence of the run's status writes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// Unique to one claim: no two claims, of any process, share it.
    #[schemars(length(max = 64))]
    pub id: String,
    /// The controller that made it (its leader-election identity, the pod's name).
    #[schemars(length(max = 253))]
    pub holder: String,
}

/// What started a run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunTrigger {
    /// A slot of the schedule.
    Schedule,
    /// The `morningcheck.io/run-now` annotation.
    RunNow,
}

impl std::fmt::Display for RunTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Where the known set of a run is kept.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownFindingsRef {
    /// The ConfigMap, in the operator's namespace (not readable by the MorningCheck's).
    pub config_map: String,
    /// The run whose findings it holds.
    pub run_id: String,
    /// How many findings it holds.
    pub findings: u64,
}

/// A line of history.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Id of the run.
    pub run_id: String,
    /// The slot run.
    pub slot: Time,
    /// The verdict, by the worst finding: Healthy, Warning or Critical; Failed when nothing
    /// could be checked; Interrupted when the run never finished.
    pub result: RunResult,
    /// Counts of all findings.
    pub counts: Counts,
    /// How long the run took, in seconds.
    pub duration_seconds: f64,
    /// Targets that could not be checked.
    #[serde(default)]
    pub failed_targets: u32,
}

/// The outcome of a Slack delivery.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationStatus {
    /// The run whose digest it was.
    pub run_id: String,
    /// Sending, Delivered, Skipped, Failed or Unknown (timed out after sending).
    pub outcome: NotificationOutcome,
    /// Slack's answer or the error, when not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the delivery ended.
    pub time: Time,
    /// App mode: the summary message, once Slack answered with it; a retried attempt of
    /// the run edits it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_message: Option<SlackMessageRef>,
    /// App mode: the replies in the summary's thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadStatus>,
}

/// A message Slack posted: its channel ID and timestamp.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SlackMessageRef {
    /// The channel's ID, as Slack answered it.
    pub channel: String,
    /// The message's timestamp, its ID within the channel.
    pub ts: String,
}

/// The replies of a summary's thread: how many of how many were delivered, and their
/// timestamps (at most 50), to replace them when the run is retried.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ThreadStatus {
    /// Replies Slack accepted.
    pub delivered: u32,
    /// Replies the run had to post: one per target with findings, at most 50.
    pub total: u32,
    /// The accepted replies' timestamps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<String>,
}

/// What became of a run's digest.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum NotificationOutcome {
    /// Recorded before the POST: a restart that finds it never posts again.
    Sending,
    /// Slack answered 2xx.
    Delivered,
    /// The notify policy had nothing to post for this run.
    Skipped,
    /// Slack refused it, or it could not be sent.
    Failed,
    /// Sent without an answer, or interrupted while sending: not repeated.
    Unknown,
}

impl NotificationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "Sending",
            Self::Delivered => "Delivered",
            Self::Skipped => "Skipped",
            Self::Failed => "Failed",
            Self::Unknown => "Unknown",
        }
    }
}
