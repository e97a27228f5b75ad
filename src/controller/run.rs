//! One run of a claimed slot: collect, evaluate, write the result, then notify.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

use super::runner::Key;
use super::status::{self, HEALTHY, NOTIFIED, SCHEDULED, set_condition};
use super::write::{Guard, apply_status};
use super::{Context, Result, Series};
use crate::api::{
    ActiveRun, MorningCheck, MorningCheckStatus, NotificationOutcome as Outcome, NotificationStatus, RunReport,
    RunResult, SecretKeyRef, SlackApp, SlackMessageRef, SlackSpec, ThreadStatus,
};
use crate::collect::{LocalCluster, RunContext, SecretSource, collect_all};
use crate::evaluate::{RunMeta, Snoozes, build_report};
use crate::publish::slack;

pub(super) async fn execute(
    api: &Api<MorningCheck>,
    mc: &MorningCheck,
    ctx: &Context,
    active: ActiveRun,
    st: MorningCheckStatus,
) -> Result<()> {
    let ns = mc.namespace().unwrap_or_default();
    let span = info_span!("run", namespace = %ns, name = %mc.name_any(), run_id = %active.run_id);
    run_inner(api, mc, ctx, active, st, ns).instrument(span).await
}

async fn run_inner(
    api: &Api<MorningCheck>,
    mc: &MorningCheck,
    ctx: &Context,
    active: ActiveRun,
    mut st: MorningCheckStatus,
    ns: String,
) -> Result<()> {
    let t = &mc.spec.targets;
    let count = t.kubernetes.len() + t.prometheus.len() + t.aws.iter().map(|a| a.regions.len()).sum::<usize>();
    info!(trigger = %active.trigger, targets = count, "run started");
    ctx.event(
        mc,
        Series::Own,
        EventType::Normal,
        "RunStarted",
        "Run",
        format!("run {} started: {count} targets", active.run_id),
    )
    .await;

    let started = Instant::now();
    // The MorningCheck's own identity: its namespace's ServiceAccount, impersonated,
    // unless the admin lets the namespace use the operator's. Its Secrets are read as
    // that identity too.
    let grants = ctx.grants(&ns, &mc.spec);
    let recorded = st.known_findings.clone();
    let now = ctx.clock.now();
    let last_started = st.last_run.as_ref().map(|r| r.started_at.0);
    let snoozes = Arc::new(Snoozes::new(&mc.spec.snoozes, mc.spec.time_zone.as_deref(), now, last_started));
    let previous = Arc::new(super::known::load(ctx, mc, recorded.as_ref()).await);
    let client = ctx.client_for(&grants.identity).map_err(super::Error::Kube)?;
    let rc = RunContext {
        now,
        deadline: started + Duration::from_secs(mc.spec.timeout_seconds.max(1) as u64),
        secrets: SecretSource::Kubernetes { client: client.clone(), namespace: ns.clone() },
        local: LocalCluster::Client(client),
        connect_timeout: None,
        aws_env: crate::collect::AwsEnv::process(),
        grants,
        in_flight: crate::collect::in_flight(ctx.targets_in_flight),
        previous: previous.clone(),
        snoozes: snoozes.clone(),
    };
    let outcomes = collect_all(&mc.spec, &rc).await;
    let elapsed = SignedDuration::try_from(started.elapsed()).unwrap_or_default();
    let finished = active.started_at.0.checked_add(elapsed).unwrap_or(active.started_at.0);

    let completed_before = st.last_run.as_ref().filter(|r| r.result != RunResult::Interrupted);
    let previous_digest = completed_before.map(|r| r.findings_digest.clone());
    let meta = RunMeta {
        run_id: active.run_id.clone(),
        slot: active.slot.0,
        started_at: active.started_at.0,
        finished_at: finished,
    };
    let (mut report, known) = build_report(meta, outcomes, &previous, &snoozes);
    report.attempt = active.attempt;
    info!(result = ?report.result, findings = report.counts.total, seconds = report.duration_seconds, "run finished");

    record(mc, &mut st, &report, finished);
    // Kept before the status points to it; when it can't be, the next run compares with
    // nothing rather than with a run older than this one.
    st.known_findings = match super::known::store(ctx, mc, recorded.as_ref(), &report.run_id, &known).await {
        Ok(at) => Some(at),
        Err(e) => {
            let note = format!("the findings of run {} could not be kept for the next run's diff: {e}", report.run_id);
            ctx.event(mc, Series::Own, EventType::Warning, "FindingsNotKept", "Run", note).await;
            None
        }
    };
    let post = plan_notification(mc, &report, previous_digest.as_deref());
    // What an earlier attempt of this run posted as an app: edited in place, not repeated.
    let posted = st.notification.as_ref().filter(|n| n.run_id == report.run_id && n.slack_message.is_some()).cloned();
    match &post {
        Post::Send(_) => {
            let mut sending = notification(&report.run_id, Outcome::Sending, None, finished);
            if let Some(p) = &posted {
                (sending.slack_message, sending.thread) = (p.slack_message.clone(), p.thread.clone());
            }
            st.notification = Some(sending);
        }
        Post::Skip(why) => {
            st.notification = Some(notification(&report.run_id, Outcome::Skipped, Some(why.clone()), finished));
            set_condition(&mut st.conditions, NOTIFIED, true, "NotRequired", why, finished, mc.metadata.generation);
        }
        Post::NoSlack => {}
    }
    st.last_run = Some(report.clone());
    // Fenced by the run's claim: a controller that lost it writes nothing, posts nothing.
    let written = apply_status(api, mc, &st, Guard::Fenced).await?;
    // Counted once its result is on record, so the metrics say what the status says.
    ctx.metrics.observe_run(&report);
    ctx.metrics.observe_status(&written);
    announce(mc, ctx, &report).await;
    if !report.snoozes.refused.is_empty() {
        let refused: Vec<String> = report
            .snoozes
            .refused
            .iter()
            .map(|r| format!("{} {} ({})", r.check, r.object, r.note.as_deref().unwrap_or_default()))
            .collect();
        let note = format!("snoozes not applied: {}", refused.join("; "));
        ctx.event(mc, Series::Fold, EventType::Warning, "SnoozeRefused", "Run", note).await;
    }

    if let Post::Send(spec) = post {
        let mut written = written;
        let outcome = match (&spec.webhook_secret_ref, &spec.app) {
            (Some(hook), _) => notify(mc, ctx, &report, &rc, spec, hook).await,
            (None, Some(app)) => {
                let mut resume = AppResume { api, written: &mut written, st: &mut st, active: &active };
                notify_app(mc, ctx, &report, &rc, spec, app, &mut resume).await?
            }
            (None, None) => {
                let why = "spec.slack names neither webhookSecretRef nor app".to_string();
                notification(&report.run_id, Outcome::Failed, Some(why), ctx.clock.now())
            }
        };
        let now = ctx.clock.now().max(finished);
        let (ok, reason) = match outcome.outcome {
            Outcome::Delivered => (true, "Delivered"),
            Outcome::Unknown => (false, "DeliveryUnknown"),
            _ => (false, "DeliveryFailed"),
        };
        let msg = outcome.message.clone().unwrap_or_else(|| format!("digest of run {} posted to Slack", report.run_id));
        set_condition(&mut st.conditions, NOTIFIED, ok, reason, &msg, now, mc.metadata.generation);
        if !ok {
            ctx.event(mc, Series::Own, EventType::Warning, "SlackDeliveryFailed", "Notify", msg).await;
        }
        st.notification = Some(outcome);
        apply_status(api, &written, &st, Guard::Fenced).await?;
    }
    Ok(())
}

/// A run that could not finish its writes. Deposed: another controller has the run, and
/// this one keeps out of its way. Otherwise the run's claim stays in the status, so the
/// run is run again, and this process remembers why for that attempt's note.
pub(super) async fn failed(mc: &MorningCheck, ctx: &Context, key: Key, error: super::Error) {
    let (ns, name) = (mc.namespace().unwrap_or_default(), mc.name_any());
    if let super::Error::Deposed(holder) = &error {
        warn!(namespace = %ns, %name, %holder, "another controller took the run over; this one stops");
        return;
    }
    let why = crate::errors::error_chain(&error);
    error!(namespace = %ns, %name, error = %why, "the run's result could not be written");
    ctx.event(
        mc,
        Series::Own,
        EventType::Warning,
        "ResultNotRecorded",
        "Run",
        format!("the run's result could not be written: {why}"),
    )
    .await;
    ctx.runner.unwritten(key, why);
}

fn notification(run_id: &str, outcome: Outcome, message: Option<String>, at: Timestamp) -> NotificationStatus {
    NotificationStatus { run_id: run_id.into(), outcome, message, time: Time(at), slack_message: None, thread: None }
}

/// Writes a finished run into the status: last run, history, conditions.
fn record(mc: &MorningCheck, st: &mut MorningCheckStatus, report: &RunReport, finished: Timestamp) {
    let generation = mc.metadata.generation;
    if let Some(token) = st.active_run.take().and_then(|a| a.run_now_token) {
        st.last_run_now_token = Some(token);
    }
    status::push_history(st, status::record_of(report), mc.spec.history_limit);
    // A successful run checked every target, whatever it found: the "no successful run"
    // alert then means the morning check itself is not working.
    if !report.incomplete {
        st.last_successful_time = Some(Time(finished));
    }
    let failed: Vec<String> = report
        .targets
        .iter()
        .filter(|t| !t.errors.is_empty())
        .map(|t| format!("{} ({:?}: {})", t.name, t.errors[0].tier, t.errors[0].message))
        .collect();
    let c = &report.counts;
    let total = report.targets.len() as u32 + report.omitted_targets;
    let unchecked =
        format!("{} of {total} targets could not be checked: {}", report.unchecked_targets, failed.join("; "));
    // Healthy tells the worst finding; Complete, whether every target could be checked.
    let (healthy, reason, msg) = match report.result {
        RunResult::Healthy => (true, "Healthy", format!("no findings above info ({} info)", c.info)),
        RunResult::Warning => (false, "Warning", format!("{} warning findings", c.warning)),
        RunResult::Critical => {
            (false, "Critical", format!("{} critical and {} warning findings", c.critical, c.warning))
        }
        _ => (false, "NothingChecked", unchecked.clone()),
    };
    set_condition(&mut st.conditions, HEALTHY, healthy, reason, msg, finished, generation);
    let (complete, reason, msg) = if report.incomplete {
        (false, "TargetsUnchecked", unchecked)
    } else {
        (true, "AllChecked", format!("all {total} targets checked"))
    };
    set_condition(&mut st.conditions, status::COMPLETE, complete, reason, msg, finished, generation);
    if report.run_id.starts_with("scheduled-") {
        set_condition(
            &mut st.conditions,
            SCHEDULED,
            true,
            "OnTime",
            format!("slot {} ran", report.slot.0),
            finished,
            generation,
        );
    }
}

async fn announce(mc: &MorningCheck, ctx: &Context, report: &RunReport) {
    let c = &report.counts;
    // By severity; a run that could not check every target is a Warning Event whatever
    // it found, and a healthy one says it is incomplete.
    let (type_, reason) = match (report.result, report.incomplete) {
        (RunResult::Healthy, false) => (EventType::Normal, "RunSucceeded"),
        (RunResult::Healthy, true) => (EventType::Warning, "RunIncomplete"),
        (RunResult::Failed | RunResult::Interrupted, _) => (EventType::Warning, "RunFailed"),
        (RunResult::Critical, _) => (EventType::Warning, "RunFindings"),
        (RunResult::Warning, incomplete) => {
            (if incomplete { EventType::Warning } else { EventType::Normal }, "RunFindings")
        }
    };
    let failed = report.targets.iter().filter(|t| !t.errors.is_empty()).count();
    let note = format!(
        "run {} {:?} in {:.1}s: {} critical, {} warning, {} info; {failed} of {} targets failed; see kubectl get mc -n {} {} -o yaml",
        report.run_id,
        report.result,
        report.duration_seconds,
        c.critical,
        c.warning,
        c.info,
        report.targets.len(),
        mc.namespace().unwrap_or_default(),
        mc.name_any()
    );
    ctx.event(mc, Series::Own, type_, reason, "Run", note).await;
}

/// What a finished run does about Slack.
enum Post<'a> {
    /// The spec has no Slack section.
    NoSlack,
    /// The notify policy has nothing to post for this run: why.
    Skip(String),
    /// Post the digest.
    Send(&'a SlackSpec),
}

fn plan_notification<'a>(mc: &'a MorningCheck, report: &RunReport, previous_digest: Option<&str>) -> Post<'a> {
    let Some(slack) = mc.spec.slack.as_ref() else { return Post::NoSlack };
    if slack::should_notify(slack.notify, report, previous_digest) {
        Post::Send(slack)
    } else {
        Post::Skip(format!("notify policy {:?}: nothing to post for a {:?} run", slack.notify, report.result))
    }
}

async fn notify(
    mc: &MorningCheck,
    ctx: &Context,
    report: &RunReport,
    rc: &RunContext,
    spec: &SlackSpec,
    hook: &SecretKeyRef,
) -> NotificationStatus {
    let failed = |message: String| {
        ctx.metrics.slack(Outcome::Failed.as_str());
        notification(&report.run_id, Outcome::Failed, Some(message), ctx.clock.now())
    };
    let url = match rc.secrets.get_string(hook).await {
        Ok(u) => u,
        Err(e) => return failed(format!("webhook URL: {}", e.message)),
    };
    if let Err(e) = slack::check_webhook_url(&url) {
        return failed(format!("webhook URL in Secret {}: {e}", hook.name));
    }
    if let Some(e) = outbound_policy(&url, rc, "Slack webhook").await {
        return failed(e);
    }
    let name = mc.name_any();
    let payload = slack::render(report, &digest(mc, rc, spec, &name));
    let d = slack::deliver(&ctx.http, &url, &payload, Instant::now() + Duration::from_secs(60)).await;
    let outcome = Outcome::from(d.outcome);
    ctx.metrics.slack(outcome.as_str());
    notification(&report.run_id, outcome, d.message, ctx.clock.now())
}

fn digest<'a>(mc: &'a MorningCheck, rc: &'a RunContext, spec: &'a SlackSpec, name: &'a str) -> slack::Digest<'a> {
    slack::Digest {
        namespace: rc.secrets.namespace(),
        name,
        time_zone: mc.spec.time_zone.as_deref(),
        mentions: &spec.mention_on_critical,
        origin: slack::Origin::Cluster,
    }
}

/// The status a Slack app's delivery writes between the summary and its thread.
struct AppResume<'a> {
    api: &'a Api<MorningCheck>,
    written: &'a mut MorningCheck,
    st: &'a mut MorningCheckStatus,
    active: &'a ActiveRun,
}

/// Delivery as a Slack app: the summary (posted, or edited in place when an earlier
/// attempt of this run posted it), recorded in the status with the run still active, so
/// that a stop while the thread is posted runs the run again and edits rather than
/// reposts; then the thread, replacing what an earlier attempt left of it.
async fn notify_app(
    mc: &MorningCheck,
    ctx: &Context,
    report: &RunReport,
    rc: &RunContext,
    spec: &SlackSpec,
    app: &SlackApp,
    resume: &mut AppResume<'_>,
) -> Result<NotificationStatus> {
    let done =
        |outcome: Outcome, message: Option<String>, at: Option<SlackMessageRef>, thread: Option<ThreadStatus>| {
            ctx.metrics.slack(outcome.as_str());
            NotificationStatus {
                slack_message: at,
                thread,
                ..notification(&report.run_id, outcome, message, ctx.clock.now())
            }
        };
    let token = match rc.secrets.get_string(&app.token_secret_ref).await {
        Ok(t) => t,
        Err(e) => return Ok(done(Outcome::Failed, Some(format!("bot token: {}", e.message)), None, None)),
    };
    let client = match slack::App::new(app.api_url.as_deref(), &token, &app.channel) {
        Ok(c) => c,
        Err(e) => return Ok(done(Outcome::Failed, Some(format!("spec.slack.app: {e}")), None, None)),
    };
    if let Some(e) = outbound_policy(client.api.as_str(), rc, "Slack API").await {
        return Ok(done(Outcome::Failed, Some(e), None, None));
    }
    let name = mc.name_any();
    let messages = slack::render_thread(report, &digest(mc, rc, spec, &name));
    let deadline = messages.deadline();
    let earlier = resume.st.notification.as_ref().and_then(|n| n.slack_message.clone());
    let earlier_thread = resume.st.notification.as_ref().and_then(|n| n.thread.clone());
    let at = match client.summary(&ctx.http, &messages.summary, earlier.as_ref(), deadline).await {
        Ok(at) => at,
        Err(f) => return Ok(done(Outcome::from(f.outcome), Some(f.message), earlier, earlier_thread)),
    };
    let old: Vec<String> = earlier_thread.map(|t| t.replies).unwrap_or_default();
    resume.st.notification = Some(NotificationStatus {
        slack_message: Some(at.clone()),
        thread: Some(ThreadStatus { delivered: 0, total: messages.replies.len() as u32, replies: old.clone() }),
        ..notification(&report.run_id, Outcome::Sending, None, ctx.clock.now())
    });
    resume.st.active_run = Some(resume.active.clone());
    *resume.written = apply_status(resume.api, resume.written, resume.st, Guard::Fenced).await?;
    resume.st.active_run = None;
    let (thread, failure) = client.thread(&ctx.http, &at, &messages.replies, &old, deadline).await;
    let Some(f) = failure else {
        let msg =
            format!("summary of run {} and {} replies in its thread posted to Slack", report.run_id, thread.delivered);
        return Ok(done(Outcome::Delivered, Some(msg), Some(at), Some(thread)));
    };
    let note =
        format!("The thread is incomplete: {} of {} replies delivered. {}", thread.delivered, thread.total, f.message);
    // The summary says so; a failure to say it changes nothing of what is recorded.
    let _ = client.summary(&ctx.http, &slack::with_note(&messages.summary, &note), Some(&at), deadline).await;
    Ok(done(Outcome::from(f.outcome), Some(note), Some(at), Some(thread)))
}

/// The outbound policy on a Slack URL's host: a refusal's message, or `None` to post.
async fn outbound_policy(url: &str, rc: &RunContext, what: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    crate::collect::outbound::check(&rc.grants, &parsed, what).await.err().map(|e| e.message)
}
