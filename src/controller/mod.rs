//! The controller: watches MorningChecks and runs each one on its schedule, exactly once
//! per slot, writing the result into its status.
//!
//! Reconcile is a pipeline of small steps: validate the spec, recover a run a previous
//! process left unfinished, plan (pure, [`crate::schedule`]), claim the slot in the
//! status, run (collect → evaluate), write the result, notify.

pub mod leader;
mod run;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::api::{ActiveRun, MorningCheck, MorningCheckStatus, NotificationStatus, RUN_NOW_ANNOTATION};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::net::{Attempt, RetryPolicy, retry};
use crate::schedule::{self, PlanInput};
use crate::tenancy::{Grants, Identity, Policy};
use crate::validate::validate;
use status::{NOTIFIED, READY, SCHEDULED, set_condition};

/// The field manager of every status write.
pub const MANAGER: &str = "morningcheck-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("MorningCheck {0} has no namespace")]
    MissingNamespace(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "Conflict",
            Error::Kube(_) => "KubeError",
            Error::MissingNamespace(_) => "MissingNamespace",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shared state of every reconcile.
pub struct Context {
    pub client: Client,
    /// The operator's own configuration, from which each MorningCheck's impersonating
    /// client is made.
    config: kube::Config,
    /// What each namespace may use of the operator.
    pub policy: Policy,
    /// The operator's own namespace (the default of the AWS identity grant).
    pub operator_namespace: String,
    pub recorder: Recorder,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Bounds the runs in progress across all MorningChecks.
    pub run_permits: Arc<Semaphore>,
    /// Client for Slack webhooks.
    pub http: reqwest::Client,
}

impl Context {
    /// A context with the strict default [`Policy`]; see [`Context::with_policy`].
    pub fn new(
        config: kube::Config,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        max_concurrent_runs: usize,
        instance: Option<String>,
    ) -> Result<Self, kube::Error> {
        let client = Client::try_from(config.clone())?;
        let reporter = Reporter { controller: MANAGER.into(), instance };
        Ok(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            policy: Policy::default(),
            operator_namespace: "default".into(),
            clock,
            metrics,
            run_permits: Arc::new(Semaphore::new(max_concurrent_runs.max(1))),
            http: crate::publish::slack::http_client(),
        })
    }

    /// The admin's tenancy policy, and the namespace the operator runs in.
    pub fn with_policy(mut self, policy: Policy, operator_namespace: impl Into<String>) -> Self {
        self.policy = policy;
        self.operator_namespace = operator_namespace.into();
        self
    }

    /// What a MorningCheck of `namespace` may use.
    fn grants(&self, namespace: &str, spec: &crate::api::MorningCheckSpec) -> Grants {
        self.policy.grants(namespace, &self.operator_namespace, spec)
    }

    /// The client a MorningCheck's local checks and Secret reads use: its ServiceAccount,
    /// impersonated, or the operator's own client where the policy grants it.
    fn client_for(&self, identity: &Identity) -> Result<Client, kube::Error> {
        let Some(user) = identity.user() else { return Ok(self.client.clone()) };
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user);
        // The apiserver adds the ServiceAccount's own groups to an impersonated account.
        config.auth_info.impersonate_groups = None;
        Client::try_from(config)
    }

    async fn event(&self, mc: &MorningCheck, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(crate::redact::scrub(&note), 1000)),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &mc.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Writes the whole status by server-side apply. With `resource_version`, the write only
/// succeeds on that version of the object: two writers can never both claim a slot.
async fn apply_status(
    api: &Api<MorningCheck>,
    mc: &MorningCheck,
    st: &MorningCheckStatus,
    resource_version: Option<&str>,
) -> Result<MorningCheck> {
    let mut st = st.clone();
    status::fit(&mut st);
    // Nothing a run held as a secret reaches the status, whichever path a message took.
    let mut st = serde_json::to_value(&st).expect("a status always serializes");
    crate::redact::scrub_json(&mut st);
    let mut metadata = json!({ "name": mc.name_any() });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    let patch = json!({
        "apiVersion": MorningCheck::api_version(&()),
        "kind": MorningCheck::kind(&()),
        "metadata": metadata,
        "status": st,
    });
    // Retried through a short apiserver outage, so a finished run's result is not lost.
    let policy = RetryPolicy { base: Duration::from_millis(500), max: Duration::from_secs(5), attempts: 12 };
    let deadline = tokio::time::Instant::now() + STATUS_WRITE_DEADLINE;
    let name = mc.name_any();
    let written = retry(policy, deadline, |_| {
        let (api, name, patch) = (api.clone(), name.clone(), patch.clone());
        async move {
            match api.patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await {
                Ok(mc) => Attempt::Done(mc),
                Err(e) if crate::collect::kube_transient(&e) => Attempt::Retry(e, None),
                Err(e) => Attempt::Fail(e),
            }
        }
    })
    .await?;
    Ok(written)
}

/// How long a status write keeps retrying through an apiserver outage.
const STATUS_WRITE_DEADLINE: Duration = Duration::from_secs(60);

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    Schedule(Timestamp),
    RunNow(String),
}

/// The reconciler.
pub async fn reconcile(mc: Arc<MorningCheck>, ctx: Arc<Context>) -> Result<Action> {
    ctx.metrics.reconciles.inc();
    let ns = mc.namespace().ok_or_else(|| Error::MissingNamespace(mc.name_any()))?;
    let api: Api<MorningCheck> = Api::namespaced(ctx.client.clone(), &ns);
    let now = ctx.clock.now();
    let generation = mc.metadata.generation;
    let mut st = mc.status.clone().unwrap_or_default();
    let before = st.clone();
    st.observed_generation = generation;
    // Every write computed from this (possibly stale) copy is conditional on its version:
    // a stale copy gets a conflict and a fresh reconcile, never overwrites newer status.
    let rv = mc.resource_version();
    let mut notes = Vec::new();

    // 1. Validate: an invalid spec waits for a change, it never hot-loops.
    let schedule = match validate(&mc.spec, &ns) {
        Ok(s) => s,
        Err(invalid) => {
            let message = invalid.message();
            let changed = set_condition(&mut st.conditions, READY, false, invalid.reason, &message, now, generation);
            st.next_schedule_time = None;
            st.next_run = None;
            if st != before {
                apply_status(&api, &mc, &st, rv.as_deref()).await?;
            }
            if changed {
                ctx.event(&mc, EventType::Warning, "InvalidSpec", "Validate", format!("{}: {message}", invalid.reason))
                    .await;
            }
            return Ok(Action::await_change());
        }
    };

    // 2. A run or a Slack post a previous process left unfinished is recorded, not repeated.
    recover(&mc, &mut st, now, &mut notes);

    // 3. Plan.
    let cursor =
        [st.last_schedule_time.as_ref(), st.last_missed_time.as_ref(), mc.metadata.creation_timestamp.as_ref()]
            .into_iter()
            .flatten()
            .map(|t| t.0)
            .max()
            .unwrap_or(now);
    let plan = schedule::plan(
        &schedule,
        PlanInput {
            cursor,
            now,
            starting_deadline_seconds: mc.spec.starting_deadline_seconds,
            suspend: mc.spec.suspend,
        },
    );
    st.next_schedule_time = plan.next.map(Time);
    // The same words in the NEXT RUN column as in the Ready condition: the schedule's zone.
    st.next_run = plan.next.filter(|_| !mc.spec.suspend).map(|n| status::display_time(n, schedule.time_zone()));
    let ready_msg = match (mc.spec.suspend, &st.next_run) {
        (true, _) => "suspended: no scheduled runs until spec.suspend is false".to_string(),
        (false, Some(n)) => format!("next run at {n}"),
        (false, None) => "the schedule has no future slot".to_string(),
    };
    // Targets the admin's policy refuses: the MorningCheck is not Ready, and says why; the
    // other targets still run, and the refused ones fail as PolicyDenied.
    let refused = crate::tenancy::refusals(&mc.spec, &ctx.grants(&ns, &mc.spec));
    if refused.is_empty() {
        set_condition(
            &mut st.conditions,
            READY,
            true,
            if mc.spec.suspend { "Suspended" } else { "Scheduled" },
            ready_msg,
            now,
            generation,
        );
    } else {
        let problems = refused.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
        let msg = format!("{problems}; the other targets still run ({ready_msg})");
        let told = st.conditions.iter().any(|c| c.type_ == READY && c.message.starts_with(&problems));
        set_condition(&mut st.conditions, READY, false, "PolicyDenied", &msg, now, generation);
        if !told {
            notes.push(Note { reason: "PolicyDenied", action: "Validate", text: problems });
        }
    }
    if let Some(slot) = plan.missed {
        missed(&mc, &mut st, slot, now, &mut notes);
    }

    let token = mc.annotations().get(RUN_NOW_ANNOTATION).filter(|t| !t.is_empty()).cloned();
    let trigger = match (token, plan.run) {
        (Some(t), _) if st.last_run_now_token.as_deref() != Some(t.as_str()) => Some(Trigger::RunNow(t)),
        (_, Some(slot)) => Some(Trigger::Schedule(slot)),
        _ => None,
    };
    let Some(trigger) = trigger else {
        if st != before {
            apply_status(&api, &mc, &st, rv.as_deref()).await?;
            publish(&mc, &ctx, notes).await;
        }
        return Ok(requeue(plan.next, now));
    };
    if plan.skipped > 0 {
        info!(skipped = plan.skipped, "older missed slots skipped; only the most recent runs");
    }

    // 4. Claim the slot before any work: a restart sees it and never runs it again.
    let active = claim(&mut st, &trigger, now);
    let claimed = apply_status(&api, &mc, &st, rv.as_deref()).await?;
    publish(&mc, &ctx, notes).await;
    let permit = ctx.run_permits.clone().acquire_owned().await.expect("semaphore never closed");
    run::execute(&api, &claimed, &ctx, active, st).await?;
    drop(permit);
    // A run-now and a due slot at the same time: the slot runs right after.
    Ok(Action::requeue(Duration::from_millis(500)))
}

fn requeue(next: Option<Timestamp>, now: Timestamp) -> Action {
    match next {
        // Exactly until the next slot (plus a hair, so the slot is due when we wake).
        Some(n) => Action::requeue(Duration::from_millis(n.duration_since(now).as_millis().max(0) as u64 + 50)),
        None => Action::await_change(),
    }
}

fn claim(st: &mut MorningCheckStatus, trigger: &Trigger, now: Timestamp) -> ActiveRun {
    let (run_id, slot, kind) = match trigger {
        Trigger::Schedule(slot) => {
            st.last_schedule_time = Some(Time(*slot));
            (format!("scheduled-{}", slot.as_second()), *slot, "Schedule")
        }
        Trigger::RunNow(token) => {
            st.last_run_now_token = Some(token.clone());
            (format!("run-now-{}", sanitize(token)), now, "RunNow")
        }
    };
    let active = ActiveRun { run_id, slot: Time(slot), started_at: Time(now), trigger: kind.into() };
    st.active_run = Some(active.clone());
    active
}

fn sanitize(token: &str) -> String {
    token.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(63).collect()
}

/// A Warning Event about a status change, published once the change is written.
struct Note {
    reason: &'static str,
    action: &'static str,
    text: String,
}

async fn publish(mc: &MorningCheck, ctx: &Context, notes: Vec<Note>) {
    for n in notes {
        if n.reason == "MissedSchedule" {
            let labels =
                crate::metrics::CheckLabels { namespace: mc.namespace().unwrap_or_default(), name: mc.name_any() };
            ctx.metrics.missed_schedules.get_or_create(&labels).inc();
        }
        ctx.event(mc, EventType::Warning, n.reason, n.action, n.text).await;
    }
}

fn missed(mc: &MorningCheck, st: &mut MorningCheckStatus, slot: Timestamp, now: Timestamp, notes: &mut Vec<Note>) {
    st.last_missed_time = Some(Time(slot));
    let late = now.duration_since(slot).as_secs();
    let deadline = mc.spec.starting_deadline_seconds.unwrap_or_default();
    let msg = format!("slot {slot} missed by {late}s, more than startingDeadlineSeconds {deadline}; skipped");
    set_condition(&mut st.conditions, SCHEDULED, false, "MissedSchedule", &msg, now, mc.metadata.generation);
    notes.push(Note { reason: "MissedSchedule", action: "Schedule", text: msg });
}

/// Records a run left in progress by a previous process as interrupted, and a Slack post
/// left in flight as unknown: neither is repeated.
fn recover(mc: &MorningCheck, st: &mut MorningCheckStatus, now: Timestamp, notes: &mut Vec<Note>) {
    if let Some(active) = st.active_run.take() {
        warn!(run_id = %active.run_id, "run was interrupted by a controller restart; recording it, not repeating it");
        let report = status::interrupted_report(&active, now);
        status::push_history(st, status::record_of(&report), mc.spec.history_limit);
        st.last_run = Some(report);
        let msg = format!(
            "run {} (slot {}) was interrupted: the controller stopped while it was in progress; it is not repeated",
            active.run_id, active.slot.0
        );
        set_condition(&mut st.conditions, status::HEALTHY, false, "RunInterrupted", &msg, now, mc.metadata.generation);
        notes.push(Note { reason: "RunFailed", action: "Run", text: msg });
    }
    if let Some(n) = st.notification.as_mut().filter(|n| n.outcome == "Sending") {
        let msg =
            "the controller stopped while posting to Slack; the post is not repeated, to avoid a duplicate".to_string();
        *n = NotificationStatus {
            run_id: n.run_id.clone(),
            outcome: "Unknown".into(),
            message: Some(msg.clone()),
            time: Time(now),
        };
        set_condition(&mut st.conditions, NOTIFIED, false, "DeliveryUnknown", msg, now, mc.metadata.generation);
    }
}

/// Whether the MorningCheck CRD is served (and readable where we watch): `/readyz` waits for it.
pub async fn crd_installed(client: &Client, namespace: Option<&str>) -> bool {
    let api: Api<MorningCheck> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    api.list(&kube::api::ListParams::default().limit(1)).await.is_ok()
}

fn error_policy(mc: Arc<MorningCheck>, error: &Error, ctx: Arc<Context>) -> Action {
    if error.reason() == "Conflict" {
        // Expected: the cached copy was older than the object; a fresh reconcile follows.
        tracing::debug!(name = %mc.name_any(), "status write conflicted with a newer version; retrying");
    } else {
        warn!(name = %mc.name_any(), namespace = ?mc.namespace(), %error, "reconcile failed");
    }
    ctx.metrics.reconcile_errors.get_or_create(&crate::metrics::ReasonLabels { reason: error.reason().into() }).inc();
    let wait = if error.reason() == "Conflict" { 1 } else { 10 };
    Action::requeue(Duration::from_secs(wait))
}

/// Runs the controller until `shutdown` resolves. With `namespace`, only MorningChecks of
/// that namespace are watched.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: Arc<std::sync::atomic::AtomicBool>,
) {
    let api: Api<MorningCheck> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let controller = Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(200)))
        .graceful_shutdown_on(shutdown);
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    info!("controller started");
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile loop");
            }
        })
        .await;
    info!("controller stopped");
}
