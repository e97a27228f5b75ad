//! The controller: watches MorningChecks and runs each one on its schedule, exactly once
//! per slot, writing the result into its status.
//!
//! Reconcile is a pipeline of small steps: validate the spec, recover a run a previous
//! process left unfinished, plan (pure, [`crate::schedule`]), claim the slot in the
//! status, run (collect → evaluate), write the result, notify.

mod known;
pub mod leader;
mod run;
pub mod runner;
pub mod status;
mod write;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{info, warn};

use crate::api::{
    ActiveRun, Claim, MorningCheck, MorningCheckStatus, NotificationOutcome, NotificationStatus, RUN_NOW_ANNOTATION,
    RunTrigger,
};
use crate::clip::{Limit, clip};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::schedule::{self, PlanInput};
use crate::tenancy::{Grants, Identity, Policy};
use crate::validate::validate;
use runner::{Admission, Key, Runner};
use status::{NOTIFIED, READY, SCHEDULED, set_condition};
use write::{Guard, apply_status};

/// The field manager of every status write.
pub const MANAGER: &str = "morningcheck-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("MorningCheck {0} has no namespace")]
    MissingNamespace(String),
    /// The apiserver did not answer within the write's deadline.
    #[error("no answer from the apiserver within {0:?}")]
    Timeout(Duration),
    /// The run's claim is gone from the status: another controller took the run over.
    #[error("the run's claim was taken over by {0:?}; this controller's result is dropped")]
    Deposed(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "Conflict",
            Error::Kube(_) => "KubeError",
            Error::MissingNamespace(_) => "MissingNamespace",
            Error::Timeout(_) => "Timeout",
            Error::Deposed(_) => "Deposed",
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
    reporter: Reporter,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Runs claimed runs, at most `max_concurrent_runs` at once across all MorningChecks.
    pub runner: Runner,
    /// Who this controller is, in the claims it writes.
    holder: String,
    /// Makes each claim's id unique: this process's start, and a counter.
    claims: (i128, AtomicU64),
    /// Targets one run checks at once.
    pub targets_in_flight: usize,
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
        // The controller's own calls retry on their own terms, inside their own deadlines
        // (status writes, the lease, the watch's backoff): the client's built-in retry of
        // 429 and 503, for up to 15 times with waits growing to minutes, would hide the
        // apiserver's answer and outlast them.
        let mut own = config.clone();
        own.default_retry = false;
        let client = Client::try_from(own)?;
        let holder = instance.clone().unwrap_or_else(|| MANAGER.into());
        let reporter = Reporter { controller: MANAGER.into(), instance };
        Ok(Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            config,
            policy: Policy::default(),
            operator_namespace: "default".into(),
            clock,
            metrics,
            runner: Runner::new(max_concurrent_runs),
            holder,
            claims: (Timestamp::now().as_nanosecond(), AtomicU64::new(0)),
            targets_in_flight: crate::collect::TARGETS_IN_FLIGHT,
            http: crate::publish::slack::http_client(),
        })
    }

    /// The admin's tenancy policy, and the namespace the operator runs in.
    pub fn with_policy(mut self, policy: Policy, operator_namespace: impl Into<String>) -> Self {
        self.policy = policy;
        self.operator_namespace = operator_namespace.into();
        self
    }

    /// How many targets one run checks at once.
    pub fn with_targets_in_flight(mut self, n: usize) -> Self {
        self.targets_in_flight = n.max(1);
        self
    }

    /// A claim no other claim shares.
    fn new_claim(&self) -> Claim {
        let n = self.claims.1.fetch_add(1, Ordering::Relaxed);
        Claim { id: format!("{:x}-{n}", self.claims.0), holder: self.holder.clone() }
    }

    /// What a MorningCheck of `namespace` may use.
    fn grants(&self, namespace: &str, spec: &crate::api::MorningCheckSpec) -> Grants {
        self.policy.grants(namespace, &self.operator_namespace, spec)
    }

    /// The client a MorningCheck's local checks and Secret reads use: its ServiceAccount,
    /// impersonated, or the operator's own identity where the policy grants it. A client
    /// of the run's own, shared by its targets: its connections close when the run ends.
    fn client_for(&self, identity: &Identity) -> Result<Client, kube::Error> {
        let mut config = self.config.clone();
        // The checks keep the client's retry of 429 and 503: the run's deadline bounds it.
        config.default_retry = true;
        if let Some(user) = identity.user() {
            config.auth_info.impersonate = Some(user);
            // The apiserver adds the ServiceAccount's own groups to an impersonated account.
            config.auth_info.impersonate_groups = None;
        }
        Client::try_from(config)
    }

    async fn event(
        &self,
        mc: &MorningCheck,
        series: Series,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(clip(&crate::redact::scrub(&note), Limit::Bytes(EVENT_NOTE_BYTES)).into_owned()),
            action: action.into(),
            secondary: None,
        };
        let reference = mc.object_ref(&());
        let published = match series {
            Series::Fold => tokio::time::timeout(EVENT_TIMEOUT, self.recorder.publish(&ev, &reference)).await,
            // A recorder of its own has nothing to fold the Event into.
            Series::Own => {
                let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
                tokio::time::timeout(EVENT_TIMEOUT, recorder.publish(&ev, &reference)).await
            }
        };
        match published {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, reason, "could not publish event"),
            Err(_) => warn!(reason, "could not publish event within {EVENT_TIMEOUT:?}"),
        }
    }
}

/// How long publishing one Event may take: an Event is never worth holding a run for.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most an Event's note holds: the Events API allows 1 kB.
const EVENT_NOTE_BYTES: usize = 1000;

/// How an Event relates to earlier ones of the same reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Series {
    /// Repeats within minutes fold into one Event's series, which keeps the first note:
    /// the same problem with the spec, told again.
    Fold,
    /// Its own Event with its own note: what happened to one run or one slot.
    Own,
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq)]
enum Trigger {
    Schedule(Timestamp),
    RunNow(String),
    /// The next attempt of a run a previous process left unfinished.
    Retry(ActiveRun),
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
    ctx.metrics.observe_status(&mc);
    let key = Key::new(&mc.name_any()).within(&ns);
    // A run of it is in progress here: its end wakes the key, and reconcile goes on then.
    if ctx.runner.busy(&key) {
        return Ok(Action::await_change());
    }
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
            ctx.runner.release(&key);
            if st != before {
                apply_status(&api, &mc, &st, Guard::Version(rv.as_deref())).await?;
            }
            if changed {
                ctx.event(
                    &mc,
                    Series::Fold,
                    EventType::Warning,
                    "InvalidSpec",
                    "Validate",
                    format!("{}: {message}", invalid.reason),
                )
                .await;
            }
            return Ok(Action::await_change());
        }
    };

    // 2. A run a previous process left unfinished is run again (or, out of attempts or
    //    past its window, recorded); a Slack post it left in flight is never repeated.
    let unwritten = ctx.runner.take_unwritten(&key);
    let retry = recover(&mc, &schedule, &mut st, now, unwritten.as_deref(), &mut notes);

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
            notes.push(Note { series: Series::Fold, reason: "PolicyDenied", action: "Validate", text: problems });
        }
    }
    if let Some(slot) = plan.missed {
        missed(&mc, &mut st, slot, now, &mut notes);
    }

    let token = run_now_token(&mc, &ctx).await;
    let trigger = match (retry, token, plan.run) {
        (Some(active), _, _) => Some(Trigger::Retry(active)),
        (None, Some(t), _) if !run_now_taken(&st, &t) => Some(Trigger::RunNow(t)),
        (None, _, Some(slot)) => Some(Trigger::Schedule(slot)),
        _ => None,
    };
    let Some(trigger) = trigger else {
        ctx.runner.release(&key);
        if st != before {
            apply_status(&api, &mc, &st, Guard::Version(rv.as_deref())).await?;
            publish(&mc, &ctx, notes).await;
        }
        return Ok(requeue(plan.next, now));
    };
    if plan.skipped > 0 {
        info!(skipped = plan.skipped, "older missed slots skipped; only the most recent runs");
    }

    // 4. A run permit first, then the claim, before any work: a queued run holds no claim,
    //    so a restart finds it still due; a claimed one is run again after a restart. A
    //    queued key writes nothing: it is woken, and reconciled afresh, once a permit is its.
    let permit = match ctx.runner.admit(&key) {
        Admission::Run(permit) => permit,
        Admission::Queued | Admission::Closed => return Ok(Action::await_change()),
    };
    let active = claim(&mut st, &trigger, ctx.clock.now(), ctx.new_claim());
    let claimed = match apply_status(&api, &mc, &st, Guard::Claim(rv.as_deref())).await {
        Ok(claimed) => claimed,
        Err(e) => {
            ctx.runner.hold(key, permit);
            return Err(e);
        }
    };
    publish(&mc, &ctx, notes).await;
    // 5. The run works in the runner; its end wakes the key, whose next reconcile plans
    //    the next slot (or runs a run-now that came in meanwhile).
    let run_ctx = ctx.clone();
    ctx.runner.spawn(key.clone(), permit, async move {
        if let Err(e) = run::execute(&api, &claimed, &run_ctx, active, st).await {
            run::failed(&claimed, &run_ctx, key, e).await;
        }
    });
    Ok(Action::await_change())
}

fn requeue(next: Option<Timestamp>, now: Timestamp) -> Action {
    match next {
        // Exactly until the next slot (plus a hair, so the slot is due when we wake).
        Some(n) => Action::requeue(Duration::from_millis(n.duration_since(now).as_millis().max(0) as u64 + 50)),
        None => Action::await_change(),
    }
}

/// The run-now annotation's token, if it asks for a run. The status keeps the token, so
/// one longer than [`RUN_NOW_TOKEN_BYTES`] is refused with a Warning Event, never run.
async fn run_now_token(mc: &MorningCheck, ctx: &Context) -> Option<String> {
    let token = mc.annotations().get(RUN_NOW_ANNOTATION).filter(|t| !t.is_empty())?;
    if token.len() <= RUN_NOW_TOKEN_BYTES {
        return Some(token.clone());
    }
    let note = format!(
        "annotation {RUN_NOW_ANNOTATION} is {} bytes, more than {RUN_NOW_TOKEN_BYTES}: no run; use a short token such as $(date +%s)",
        token.len()
    );
    ctx.event(mc, Series::Fold, EventType::Warning, "InvalidRunNow", "Validate", note).await;
    None
}

/// The longest run-now token acted on.
pub const RUN_NOW_TOKEN_BYTES: usize = 128;

/// Whether a run-now token has been acted on: its run is over, or in progress.
fn run_now_taken(st: &MorningCheckStatus, token: &str) -> bool {
    st.last_run_now_token.as_deref() == Some(token)
        || st.active_run.as_ref().and_then(|a| a.run_now_token.as_deref()) == Some(token)
}

fn claim(st: &mut MorningCheckStatus, trigger: &Trigger, now: Timestamp, claim: Claim) -> ActiveRun {
    let active = match trigger {
        Trigger::Schedule(slot) => {
            st.last_schedule_time = Some(Time(*slot));
            ActiveRun {
                run_id: format!("scheduled-{}", slot.as_second()),
                slot: Time(*slot),
                started_at: Time(now),
                trigger: RunTrigger::Schedule,
                run_now_token: None,
                attempt: 1,
            }
        }
        Trigger::RunNow(token) => ActiveRun {
            run_id: format!("run-now-{}", sanitize(token)),
            slot: Time(now),
            started_at: Time(now),
            trigger: RunTrigger::RunNow,
            run_now_token: Some(token.clone()),
            attempt: 1,
        },
        Trigger::Retry(previous) => {
            ActiveRun { started_at: Time(now), attempt: previous.attempt + 1, ..previous.clone() }
        }
    };
    st.active_run = Some(active.clone());
    st.claim = Some(claim);
    active
}

fn sanitize(token: &str) -> String {
    token.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(63).collect()
}

/// A Warning Event about a status change, published once the change is written.
struct Note {
    series: Series,
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
        ctx.event(mc, n.series, EventType::Warning, n.reason, n.action, n.text).await;
    }
}

fn missed(mc: &MorningCheck, st: &mut MorningCheckStatus, slot: Timestamp, now: Timestamp, notes: &mut Vec<Note>) {
    st.last_missed_time = Some(Time(slot));
    let late = now.duration_since(slot).as_secs();
    let deadline = mc.spec.starting_deadline_seconds.unwrap_or_default();
    let msg = format!("slot {slot} missed by {late}s, more than startingDeadlineSeconds {deadline}; skipped");
    set_condition(&mut st.conditions, SCHEDULED, false, "MissedSchedule", &msg, now, mc.metadata.generation);
    notes.push(Note { series: Series::Own, reason: "MissedSchedule", action: "Schedule", text: msg });
}

/// A run left in progress by a previous process is returned to run again, or recorded
/// as interrupted when out of attempts or past its window ([`status::recovery`]). A Slack
/// post left in flight is recorded as unknown, never repeated.
fn recover(
    mc: &MorningCheck,
    schedule: &crate::schedule::Schedule,
    st: &mut MorningCheckStatus,
    now: Timestamp,
    unwritten: Option<&str>,
    notes: &mut Vec<Note>,
) -> Option<ActiveRun> {
    let mut retry = None;
    if let Some(active) = st.active_run.take() {
        // In this process a run that ended without its result written says so; otherwise
        // the process that ran it is gone.
        let (cause, reason) = match unwritten {
            Some(e) => (format!("its result could not be written: {e}"), "ResultNotRecorded"),
            None => (
                "the controller running it stopped, restarted or lost its leadership first".to_string(),
                "RunInterrupted",
            ),
        };
        let next_slot = schedule.next_after(active.slot.0);
        match status::recovery(&active, mc.spec.starting_deadline_seconds, next_slot, now) {
            status::Recovery::Retry => {
                let msg = format!(
                    "run {} (slot {}) did not finish attempt {}: {cause}; running it again as attempt {} of {}",
                    active.run_id,
                    active.slot.0,
                    active.attempt,
                    active.attempt + 1,
                    status::MAX_ATTEMPTS
                );
                warn!(run_id = %active.run_id, attempt = active.attempt + 1, "interrupted run retried");
                notes.push(Note { series: Series::Own, reason: "RunRetried", action: "Run", text: msg });
                retry = Some(active);
            }
            status::Recovery::GiveUp(why) => {
                if active.run_now_token.is_some() {
                    st.last_run_now_token = active.run_now_token.clone();
                }
                warn!(run_id = %active.run_id, %why, "interrupted run recorded, not run again");
                let report = status::interrupted_report(&active, now);
                status::push_history(st, status::record_of(&report), mc.spec.history_limit);
                st.last_run = Some(report);
                let msg = format!(
                    "run {} (slot {}) did not finish: {cause}; not run again {why}",
                    active.run_id, active.slot.0
                );
                set_condition(&mut st.conditions, status::HEALTHY, false, reason, &msg, now, mc.metadata.generation);
                notes.push(Note { series: Series::Own, reason: "RunFailed", action: "Run", text: msg });
            }
        }
    }
    // A Slack app's summary on record for the run retried is edited by the retry, not lost.
    let resumed = |n: &NotificationStatus| {
        n.slack_message.is_some() && retry.as_ref().is_some_and(|a: &ActiveRun| a.run_id == n.run_id)
    };
    if let Some(n) = st.notification.as_mut().filter(|n| n.outcome == NotificationOutcome::Sending && !resumed(n)) {
        let msg =
            "the controller stopped while posting to Slack; the post is not repeated, to avoid a duplicate".to_string();
        *n = NotificationStatus {
            run_id: n.run_id.clone(),
            outcome: NotificationOutcome::Unknown,
            message: Some(msg.clone()),
            time: Time(now),
            slack_message: n.slack_message.take(),
            thread: n.thread.take(),
        };
        set_condition(&mut st.conditions, NOTIFIED, false, "DeliveryUnknown", msg, now, mc.metadata.generation);
    }
    retry
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
    let mut controller = Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(200)))
        .graceful_shutdown_on(shutdown);
    // The runner wakes a key when a permit is its, and when its run ends.
    if let Some(woken) = ctx.runner.woken() {
        controller = controller.reconcile_on(woken);
    }
    // A deleted MorningCheck is never reconciled again: its series, and a permit granted
    // to it, go when it leaves the cache.
    let store = controller.store();
    let forgetting = ctx.clone();
    let forget_deleted = async move {
        for round in 0u64.. {
            tokio::time::sleep(Duration::from_secs(15)).await;
            forgetting.metrics.retain(|ns, name| store.get(&ObjectRef::new(name).within(ns)).is_some());
            forgetting.runner.retain(|key| store.get(key).is_some());
            // The known findings of deleted MorningChecks, every ten minutes.
            if round % 40 == 0 {
                known::sweep(&forgetting).await;
            }
        }
    };
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    info!("controller started");
    let reconciling = controller.run(reconcile, error_policy, ctx.clone()).for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "reconcile loop");
        }
    });
    tokio::select! {
        () = reconciling => {}
        () = forget_deleted => {}
    }
    // Stopped taking runs; the runs in progress finish (the caller bounds how long).
    ctx.runner.finish().await;
    info!("controller stopped");
}
