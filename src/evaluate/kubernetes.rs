//! Kubernetes objects → findings. Pure: the collector pages through lists and hands
//! each object here, so nothing of the cluster is kept but the findings.
//!
//! Severities:
//! | check | severity |
//! |---|---|
//! | CrashLoopBackOff, ImagePullBackOff, ErrImagePull, Create/RunContainer errors, InvalidImageName | critical |
//! | pod phase Unknown | critical |
//! | pod phase Failed (Evicted included) | warning |
//! | Pending past the grace period | warning |
//! | restarts since the previous run above the threshold (with the last termination reason) | warning |
//! | Running with containers not ready past the grace period | warning |
//! | workload with no available replicas / ProgressDeadlineExceeded | critical |
//! | workload below its desired replicas | warning |
//! | node NotReady | critical |
//! | node Memory/Disk/PID pressure | warning |
//! | node cordoned | info |
//! | Warning events in the window (aggregated) | warning |

use std::borrow::Cow;
use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Counters, finding};
use crate::api::{Finding, KubernetesThresholds, Severity};
use crate::duration::friendly;

/// What a pod's restarts are counted against: the previous run's counts (`counters`),
/// and the time it started (`since`; a day ago on a first run).
pub struct RestartWindow<'a> {
    pub since: Timestamp,
    pub counters: &'a mut dyn Counters,
}

/// Waiting reasons that mean the container cannot start on its own.
const CRITICAL_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "InvalidImageName",
    "ErrImageNeverPull",
];

fn ts(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

fn age(now: Timestamp, since: Option<Timestamp>) -> Option<i64> {
    since.map(|s| now.duration_since(s).as_secs())
}

/// Whether a state that began at `since` is still inside a grace of `grace_seconds` (none
/// when 0): a rollout, a scale-up or a kubelet restart in progress is not a finding yet.
fn in_grace(now: Timestamp, since: Option<Timestamp>, grace_seconds: i64) -> bool {
    grace_seconds > 0 && age(now, since).is_some_and(|a| a <= grace_seconds)
}

/// What a finding is about, to group a target's findings into one entry per object:
/// a pod for its own and its containers' findings (`ns/pod/container` → `ns/pod`), and
/// an Event's involved object (`ns/Kind/name` → `ns/name`; a Node's → its name, as
/// the node's own findings name it). Any other object is its own subject.
pub fn subject(object: &str) -> Cow<'_, str> {
    let kind = |s: &str| s.starts_with(|c: char| c.is_ascii_uppercase());
    let mut parts = object.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some("Node"), Some(name), None) | (Some("Node"), Some(name), None, None) => Cow::Borrowed(name),
        (Some(ns), Some(k), Some(name), None) if kind(k) => Cow::Owned(format!("{ns}/{name}")),
        (Some(ns), Some(pod), Some(_container), None) => Cow::Borrowed(&object[..ns.len() + 1 + pod.len()]),
        _ => Cow::Borrowed(object),
    }
}

fn obj(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// Findings of one pod.
pub fn pod_findings(pod: &Pod, now: Timestamp, th: &KubernetesThresholds, w: &mut RestartWindow) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let Some(status) = &pod.status else { return out };
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    let started = ts(&status.start_time).or_else(|| ts(&pod.metadata.creation_timestamp));
    let grace = th.pending_grace_seconds;
    let pod_obj = obj(ns, name);

    match phase {
        "Succeeded" => return out,
        "Failed" => {
            let reason = status.reason.as_deref().unwrap_or("Failed");
            let msg = status.message.as_deref().unwrap_or("pod failed");
            let check = if reason == "Evicted" { "PodEvicted" } else { "PodFailed" };
            out.push(finding(Severity::Warning, check, &pod_obj, format!("{reason}: {msg}"), None));
            return out;
        }
        "Unknown" => {
            out.push(finding(
                Severity::Critical,
                "PodUnknown",
                &pod_obj,
                "pod phase Unknown: its node stopped reporting",
                None,
            ));
            return out;
        }
        _ => {}
    }

    let containers = status.init_container_statuses.iter().flatten().map(|c| (c, true));
    let containers = containers.chain(status.container_statuses.iter().flatten().map(|c| (c, false)));
    let mut critical_waiting = false;
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    for (c, init) in containers {
        critical_waiting |= container_findings(&mut out, &pod_obj, c, init);
        restart_findings(&mut out, &pod_obj, uid, c, init, th, w);
    }

    if phase == "Pending"
        && !critical_waiting
        && let Some(secs) = age(now, started).filter(|s| *s > grace)
    {
        let why = pending_reason(pod).unwrap_or_else(|| "not scheduled or not started".into());
        out.push(finding(
            Severity::Warning,
            "PodPending",
            &pod_obj,
            format!("Pending for {}: {why}", friendly(secs)),
            started,
        ));
    }
    if phase == "Running" && !critical_waiting {
        not_ready(&mut out, pod, &pod_obj, now, grace);
    }
    out
}

/// Adds the findings of one container; returns whether it is stuck in a critical wait.
fn container_findings(out: &mut Vec<Finding>, pod_obj: &str, c: &ContainerStatus, init: bool) -> bool {
    let kind = if init { "init container" } else { "container" };
    let cobj = format!("{pod_obj}/{}", c.name);
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let mut critical = false;
    if let Some(reason) = waiting.and_then(|w| w.reason.as_deref())
        && CRITICAL_WAITING.contains(&reason)
    {
        critical = true;
        let msg = waiting.and_then(|w| w.message.as_deref()).unwrap_or_default();
        let text = if msg.is_empty() {
            format!("{kind} {} waiting: {reason}", c.name)
        } else {
            format!("{kind} {} waiting: {reason}: {msg}", c.name)
        };
        out.push(finding(Severity::Critical, reason, &cobj, text, None));
    }
    critical
}

/// Restarts since the previous run, above the threshold, are a warning: a container that
/// restarted many times last quarter and never since is not flagged every morning.
///
/// The previous run recorded each container's restart count (by pod uid), so the count
/// since is the difference. A container the previous run did not see (a first run, a new
/// pod) counts all its restarts if the last one ended after `since`, none otherwise.
fn restart_findings(
    out: &mut Vec<Finding>,
    pod_obj: &str,
    uid: &str,
    c: &ContainerStatus,
    init: bool,
    th: &KubernetesThresholds,
    w: &mut RestartWindow,
) {
    let total = c.restart_count.max(0) as u64;
    if total == 0 {
        return;
    }
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let last_at = last.and_then(|t| ts(&t.finished_at));
    let previous = w.counters.since(&format!("restarts/{uid}/{pod_obj}/{}", c.name), total);
    let (since, when) = match previous {
        Some(before) if total >= before => (total - before, "since the previous run"),
        // The count went down: a new container of the same name.
        Some(_) => (total, "since the previous run"),
        None if last_at.is_some_and(|t| t >= w.since) => (total, "recently"),
        None => (0, ""),
    };
    if since <= th.restart_count.max(0) as u64 {
        return;
    }
    let kind = if init { "init container" } else { "container" };
    let mut text = format!("{kind} {} restarted {since} times {when} ({total} in all)", c.name);
    if let Some(t) = last {
        text.push_str(&format!("; last exit: {} (code {})", t.reason.as_deref().unwrap_or("unknown"), t.exit_code));
        if let Some(at) = last_at {
            text.push_str(&format!(" at {at}"));
        }
    }
    out.push(finding(Severity::Warning, "HighRestarts", format!("{pod_obj}/{}", c.name), text, None));
}

fn pending_reason(pod: &Pod) -> Option<String> {
    let conds = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conds.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    Some(format!("{}: {}", c.reason.as_deref().unwrap_or("Unschedulable"), c.message.as_deref().unwrap_or_default()))
}

fn not_ready(out: &mut Vec<Finding>, pod: &Pod, pod_obj: &str, now: Timestamp, grace: i64) {
    let Some(status) = &pod.status else { return };
    let unready: Vec<&str> =
        status.container_statuses.iter().flatten().filter(|c| !c.ready).map(|c| c.name.as_str()).collect();
    if unready.is_empty() {
        return;
    }
    let ready_cond = status.conditions.iter().flatten().find(|c| c.type_ == "Ready");
    let since = ready_cond.and_then(|c| ts(&c.last_transition_time)).or_else(|| ts(&status.start_time));
    if let Some(secs) = age(now, since).filter(|s| *s > grace) {
        out.push(finding(
            Severity::Warning,
            "ContainersNotReady",
            pod_obj,
            format!("containers not ready for {}: {}", friendly(secs), unready.join(", ")),
            since,
        ));
    }
}

/// When a workload's shortfall began, and the grace it gets, for [`replicas_finding`].
pub struct Shortfall<'a> {
    pub now: Timestamp,
    pub grace_seconds: i64,
    pub counters: &'a mut dyn Counters,
}

impl Shortfall<'_> {
    /// Whether a shortfall that began at `since` is still inside the grace period: a
    /// rollout or scale-up in progress at 07:00 is not a warning.
    fn in_grace(&self, since: Option<Timestamp>) -> bool {
        in_grace(self.now, since, self.grace_seconds)
    }

    /// When this run or an earlier one first saw the workload short.
    fn first_seen(&mut self, kind: &str, ns: &str, name: &str) -> Option<Timestamp> {
        let now = self.now.as_second().max(0) as u64;
        let first = self.counters.first_seen(&format!("short/{kind}/{ns}/{name}"), now);
        Timestamp::from_second(first as i64).ok()
    }
}

fn replicas_finding(kind: &str, ns: &str, name: &str, desired: i32, available: i32, what: &str) -> Option<Finding> {
    if desired <= 0 || available >= desired {
        return None;
    }
    let severity = if available == 0 { Severity::Critical } else { Severity::Warning };
    Some(finding(
        severity,
        &format!("{kind}Unavailable"),
        obj(ns, name),
        format!("{kind} {available}/{desired} replicas {what}"),
        None,
    ))
}

/// A Deployment below its desired replicas is a finding once its last progress (the
/// `Progressing` condition's update, `Available`'s transition) is older than the grace.
pub fn deployment_findings(d: &Deployment, w: &mut Shortfall) -> Vec<Finding> {
    let (ns, name) =
        (d.metadata.namespace.as_deref().unwrap_or_default(), d.metadata.name.as_deref().unwrap_or_default());
    let spec = d.spec.as_ref();
    if spec.and_then(|s| s.paused).unwrap_or(false) {
        return Vec::new();
    }
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.as_ref();
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let progress = conditions.iter().flat_map(|c| match c.type_.as_str() {
        "Progressing" => [ts(&c.last_update_time), ts(&c.last_transition_time)],
        "Available" => [ts(&c.last_transition_time), None],
        _ => [None, None],
    });
    let since = progress.chain([ts(&d.metadata.creation_timestamp)]).flatten().max();
    let mut out: Vec<Finding> = if w.in_grace(since) {
        Vec::new()
    } else {
        replicas_finding("Deployment", ns, name, desired, available, "available").into_iter().collect()
    };
    let stuck = status.and_then(|s| s.conditions.as_ref()).and_then(|c| {
        c.iter().find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    });
    if let (Some(c), true) = (stuck, desired > 0) {
        out.push(finding(
            Severity::Critical,
            "ProgressDeadlineExceeded",
            obj(ns, name),
            c.message.clone().unwrap_or_else(|| "rollout stuck".into()),
            ts(&c.last_transition_time),
        ));
    }
    out
}

/// StatefulSets and DaemonSets have no condition that dates their progress. A shortfall
/// is in its grace while the object is new, or while a rollout is under way (`rolling`)
/// that the runs first saw short within the grace; a stuck rollout is flagged after it.
struct Workload<'a> {
    kind: &'a str,
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    desired: i32,
    have: i32,
    what: &'a str,
    rolling: bool,
}

fn dated_shortfall(o: Workload, w: &mut Shortfall) -> Option<Finding> {
    let (ns, name) = (o.meta.namespace.as_deref()?, o.meta.name.as_deref()?);
    if o.desired <= 0 || o.have >= o.desired {
        return None;
    }
    let new = w.in_grace(ts(&o.meta.creation_timestamp));
    let seen = w.first_seen(o.kind, ns, name);
    if new || (o.rolling && w.in_grace(seen)) {
        return None;
    }
    replicas_finding(o.kind, ns, name, o.desired, o.have, o.what)
}

pub fn statefulset_findings(s: &StatefulSet, w: &mut Shortfall) -> Option<Finding> {
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = s.status.as_ref();
    let ready = st.and_then(|s| s.ready_replicas).unwrap_or(0);
    let rolling = st.is_some_and(|st| {
        (st.update_revision.is_some() && st.update_revision != st.current_revision)
            || st.updated_replicas.is_some_and(|u| u < st.replicas)
    });
    let what = "ready";
    dated_shortfall(Workload { kind: "StatefulSet", meta: &s.metadata, desired, have: ready, what, rolling }, w)
}

pub fn daemonset_findings(d: &DaemonSet, w: &mut Shortfall) -> Option<Finding> {
    let st = d.status.as_ref()?;
    let (desired, have) = (st.desired_number_scheduled, st.number_available.unwrap_or(0));
    let rolling = st.updated_number_scheduled.is_some_and(|u| u < desired);
    let what = "available";
    dated_shortfall(Workload { kind: "DaemonSet", meta: &d.metadata, desired, have, what, rolling }, w)
}

/// A node NotReady for no longer than `grace_seconds` (a kubelet restart, a node still
/// joining) is not a finding yet.
pub fn node_findings(node: &Node, now: Timestamp, grace_seconds: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    for c in node.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        let since = ts(&c.last_transition_time);
        let dur = age(now, since).map(|s| format!(" for {}", friendly(s))).unwrap_or_default();
        let detail = c.message.as_deref().filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default();
        match (c.type_.as_str(), c.status.as_str()) {
            ("Ready", "True") => {}
            ("Ready", _) if in_grace(now, since, grace_seconds) => {}
            ("Ready", status) => out.push(finding(
                Severity::Critical,
                "NodeNotReady",
                name,
                format!("Ready={status}{dur}{detail}"),
                since,
            )),
            (p @ ("MemoryPressure" | "DiskPressure" | "PIDPressure"), "True") => {
                out.push(finding(Severity::Warning, p, name, format!("{p}{dur}{detail}"), since))
            }
            _ => {}
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        out.push(finding(Severity::Info, "NodeCordoned", name, "cordoned (unschedulable)", None));
    }
    out
}

/// The time an event last happened: `series.lastObservedTime`, `lastTimestamp` or
/// `eventTime`, whichever the event has (newest wins).
pub fn event_time(e: &Event) -> Option<Timestamp> {
    let series = e.series.as_ref().and_then(|s| s.last_observed_time.as_ref()).map(|t| t.0);
    [series, ts(&e.last_timestamp), e.event_time.as_ref().map(|t| t.0), ts(&e.first_timestamp)]
        .into_iter()
        .flatten()
        .max()
}

#[derive(Debug, Clone)]
struct EventGroup {
    /// Occurrences inside the window: exact when `all_inside`, else at least this many.
    count: u64,
    /// Occurrences over the events' lifetimes.
    lifetime: u64,
    /// Every event began inside the window, so `count` is exact.
    all_inside: bool,
    last: Timestamp,
    message: String,
}

/// Aggregates Warning events in the window by namespace, involved object and reason.
/// Its size is bounded by the distinct groups, capped at `max_groups`.
#[derive(Debug)]
pub struct EventAggregator {
    since: Timestamp,
    max_groups: usize,
    groups: HashMap<(String, String, String), EventGroup>,
    pub dropped_groups: u64,
}

impl EventAggregator {
    pub fn new(now: Timestamp, window_seconds: i64, max_groups: usize) -> Self {
        let since = now.checked_sub(jiff::SignedDuration::from_secs(window_seconds)).unwrap_or(now);
        Self { since, max_groups, groups: HashMap::new(), dropped_groups: 0 }
    }

    pub fn add(&mut self, e: &Event) {
        if e.type_.as_deref() != Some("Warning") {
            return;
        }
        let Some(at) = event_time(e).filter(|t| *t >= self.since) else { return };
        let io = &e.involved_object;
        let ns = e.metadata.namespace.clone().or_else(|| io.namespace.clone()).unwrap_or_default();
        let object = format!("{}/{}", io.kind.as_deref().unwrap_or("Object"), io.name.as_deref().unwrap_or_default());
        let reason = e.reason.clone().unwrap_or_else(|| "Unknown".into());
        let lifetime =
            e.series.as_ref().and_then(|s| s.count).map(|c| c as u64).or(e.count.map(|c| c as u64)).unwrap_or(1).max(1);
        // The count is the event's lifetime total: all of it is inside the window only when
        // the event began inside it (or happened once, its last time being inside).
        let first = ts(&e.first_timestamp).or_else(|| e.event_time.as_ref().map(|t| t.0));
        let inside = lifetime == 1 || first.is_some_and(|f| f >= self.since);
        let key = (ns, object, reason);
        if !self.groups.contains_key(&key) && self.groups.len() >= self.max_groups {
            self.dropped_groups += 1;
            return;
        }
        let g = self.groups.entry(key).or_insert_with(|| EventGroup {
            count: 0,
            lifetime: 0,
            all_inside: true,
            last: at,
            message: String::new(),
        });
        g.count += if inside { lifetime } else { 1 };
        g.lifetime += lifetime;
        g.all_inside &= inside;
        if at >= g.last || g.message.is_empty() {
            g.last = at;
            g.message = e.message.clone().unwrap_or_default();
        }
    }

    /// One finding per group, newest first.
    pub fn into_findings(self) -> Vec<Finding> {
        let mut groups: Vec<_> = self.groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.last.cmp(&a.1.last).then_with(|| a.0.cmp(&b.0)));
        groups
            .into_iter()
            .map(|((ns, object, reason), g)| {
                let target = if ns.is_empty() { object } else { format!("{ns}/{object}") };
                finding(
                    Severity::Warning,
                    &format!("Event{reason}"),
                    target,
                    if g.all_inside {
                        format!("{reason} ×{}: {}", g.count, g.message)
                    } else {
                        format!("{reason} ×{}+ in the window ({} in all): {}", g.count, g.lifetime, g.message)
                    },
                    Some(g.last),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_containers_and_events_share_its_subject() {
        assert_eq!(subject("prod/web-1"), "prod/web-1");
        assert_eq!(subject("prod/web-1/app"), "prod/web-1");
        assert_eq!(subject("prod/Pod/web-1"), "prod/web-1");
        assert_eq!(subject("prod/Deployment/web"), "prod/web");
        assert_eq!(subject("default/Node/ip-10-0-3-17"), "ip-10-0-3-17");
        assert_eq!(subject("Node/ip-10-0-3-17"), "ip-10-0-3-17");
        assert_eq!(subject("ip-10-0-3-17"), "ip-10-0-3-17");
        assert_eq!(subject("a/b/c/d"), "a/b/c/d");
    }
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-24T07:00:00Z".parse().unwrap()
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn checks(f: &[Finding]) -> Vec<(&str, Severity, &str)> {
        f.iter().map(|f| (f.check.as_str(), f.severity, f.object.as_str())).collect()
    }

    fn th() -> KubernetesThresholds {
        KubernetesThresholds::default()
    }

    /// Counters in memory: what the previous run recorded, and what this one does.
    #[derive(Default)]
    struct Memory {
        before: HashMap<String, u64>,
        now: HashMap<String, u64>,
    }

    impl Counters for Memory {
        fn since(&mut self, key: &str, value: u64) -> Option<u64> {
            self.now.insert(key.to_string(), value);
            self.before.get(key).copied()
        }

        fn first_seen(&mut self, key: &str, now: u64) -> u64 {
            let first = self.before.get(key).copied().unwrap_or(now).min(now);
            self.now.insert(key.to_string(), first);
            first
        }
    }

    impl Memory {
        /// The next run's memory: this run's counts.
        fn next(self) -> Self {
            Self { before: self.now, now: HashMap::new() }
        }
    }

    /// A pod's findings on a first run, whose window is the day before `now()`.
    fn check(p: &Pod) -> Vec<Finding> {
        check_with(p, &mut Memory::default(), "2026-11-23T07:00:00Z")
    }

    fn check_with(p: &Pod, memory: &mut Memory, since: &str) -> Vec<Finding> {
        pod_findings(p, now(), &th(), &mut RestartWindow { since: since.parse().unwrap(), counters: memory })
    }

    #[test]
    fn healthy_and_succeeded_pods_have_no_findings() {
        let ok = pod(
            json!({"metadata":{"name":"a","namespace":"n"},"status":{"phase":"Running","startTime":"2026-11-24T06:00:00Z",
            "containerStatuses":[{"name":"c","ready":true,"restartCount":5,"image":"i","imageID":""}]}}),
        );
        assert!(check(&ok).is_empty(), "restarts equal to the threshold are fine");
        let done = pod(json!({"metadata":{"name":"j","namespace":"n"},"status":{"phase":"Succeeded"}}));
        assert!(check(&done).is_empty());
    }

    #[test]
    fn crashloop_with_restarts_and_oom() {
        let p = pod(
            json!({"metadata":{"name":"web","namespace":"prod"},"status":{"phase":"Running","startTime":"2026-11-24T06:00:00Z",
            "containerStatuses":[{"name":"app","ready":false,"restartCount":6,"image":"i","imageID":"",
              "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s"}},
              "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","finishedAt":"2026-11-24T06:55:00Z"}}}]}}),
        );
        let f = check(&p);
        assert_eq!(
            checks(&f),
            [
                ("CrashLoopBackOff", Severity::Critical, "prod/web/app"),
                ("HighRestarts", Severity::Warning, "prod/web/app")
            ]
        );
        assert!(f[0].message.contains("back-off 5m0s"));
        assert!(f[1].message.contains("OOMKilled (code 137) at 2026-11-24T06:55:00Z"), "{}", f[1].message);
    }

    /// Restarts are counted since the previous run: a count that does not move is not
    /// flagged again; one that grows past the threshold again is; on a first run the
    /// restarts count only if the last one is inside the window.
    #[test]
    fn restarts_count_since_the_previous_run() {
        let restarted = |count: u32, last: &str| {
            pod(json!({"metadata":{"name":"api","namespace":"n","uid":"u-1"},"status":{"phase":"Running",
                "startTime":"2026-08-01T00:00:00Z","containerStatuses":[{"name":"c","ready":true,"restartCount":count,
                "image":"i","imageID":"","state":{"running":{}},
                "lastState":{"terminated":{"exitCode":1,"reason":"Error","finishedAt":last}}}]}}))
        };
        let old = restarted(6, "2026-09-01T00:00:00Z");
        assert!(check(&old).is_empty(), "six restarts last quarter, none since");
        let fresh = restarted(6, "2026-11-24T06:00:00Z");
        let f = check(&fresh);
        assert_eq!(checks(&f), [("HighRestarts", Severity::Warning, "n/api/c")]);
        assert!(f[0].message.starts_with("container c restarted 6 times recently (6 in all)"), "{}", f[0].message);

        let mut memory = Memory::default();
        assert_eq!(check_with(&fresh, &mut memory, "2026-11-23T07:00:00Z").len(), 1);
        let mut memory = memory.next();
        assert!(check_with(&fresh, &mut memory, "2026-11-24T07:00:00Z").is_empty(), "the same count the next day");
        let mut memory = memory.next();
        let more = restarted(13, "2026-11-24T06:59:00Z");
        let f = check_with(&more, &mut memory, "2026-11-24T07:00:00Z");
        assert!(
            f[0].message.starts_with("container c restarted 7 times since the previous run (13 in all)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn init_container_image_pull() {
        let p = pod(
            json!({"metadata":{"name":"p","namespace":"n"},"status":{"phase":"Pending","startTime":"2026-11-24T06:59:00Z",
            "initContainerStatuses":[{"name":"init","ready":false,"restartCount":0,"image":"i","imageID":"","state":{"waiting":{"reason":"ImagePullBackOff"}}}]}}),
        );
        assert_eq!(checks(&check(&p)), [("ImagePullBackOff", Severity::Critical, "n/p/init")]);
    }

    #[test]
    fn pending_only_past_grace() {
        let young = pod(
            json!({"metadata":{"name":"p","namespace":"n","creationTimestamp":"2026-11-24T06:50:00Z"},"status":{"phase":"Pending"}}),
        );
        assert!(check(&young).is_empty(), "exactly at the grace period is not a finding");
        let old = pod(
            json!({"metadata":{"name":"p","namespace":"n","creationTimestamp":"2026-11-24T06:49:59Z"},"status":{"phase":"Pending",
            "conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes available"}]}}),
        );
        let f = check(&old);
        assert_eq!(checks(&f), [("PodPending", Severity::Warning, "n/p")]);
        assert!(f[0].message.contains("Unschedulable: 0/3 nodes available"));
    }

    #[test]
    fn failed_evicted_unknown() {
        let ev = pod(
            json!({"metadata":{"name":"e","namespace":"n"},"status":{"phase":"Failed","reason":"Evicted","message":"low on memory"}}),
        );
        assert_eq!(checks(&check(&ev)), [("PodEvicted", Severity::Warning, "n/e")]);
        let un = pod(json!({"metadata":{"name":"u","namespace":"n"},"status":{"phase":"Unknown"}}));
        assert_eq!(checks(&check(&un)), [("PodUnknown", Severity::Critical, "n/u")]);
    }

    #[test]
    fn not_ready_past_grace() {
        let p = pod(
            json!({"metadata":{"name":"r","namespace":"n"},"status":{"phase":"Running","startTime":"2026-11-24T05:00:00Z",
            "conditions":[{"type":"Ready","status":"False","lastTransitionTime":"2026-11-24T06:00:00Z"}],
            "containerStatuses":[{"name":"c","ready":false,"restartCount":0,"image":"i","imageID":"","state":{"running":{}}}]}}),
        );
        let f = check(&p);
        assert_eq!(checks(&f), [("ContainersNotReady", Severity::Warning, "n/r")]);
        assert!(f[0].message.contains("for 1h: c"));
    }

    /// A workload's shortfall, judged with the default grace (10 min) and `memory`.
    fn shortfall(memory: &mut Memory) -> Shortfall<'_> {
        Shortfall { now: now(), grace_seconds: th().pending_grace_seconds, counters: memory }
    }

    #[test]
    fn workloads() {
        let mut memory = Memory::default();
        let mut w = shortfall(&mut memory);
        let d: Deployment = serde_json::from_value(json!({"metadata":{"name":"d","namespace":"n"},"spec":{"replicas":3,"selector":{},"template":{}},
            "status":{"availableReplicas":1,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet d-1 has timed out progressing."}]}})).unwrap();
        assert_eq!(
            checks(&deployment_findings(&d, &mut w)),
            [
                ("DeploymentUnavailable", Severity::Warning, "n/d"),
                ("ProgressDeadlineExceeded", Severity::Critical, "n/d")
            ]
        );
        let paused: Deployment = serde_json::from_value(json!({"metadata":{"name":"d","namespace":"n"},"spec":{"paused":true,"replicas":3,"selector":{},"template":{}}})).unwrap();
        assert!(deployment_findings(&paused, &mut w).is_empty());
        let zero: Deployment = serde_json::from_value(
            json!({"metadata":{"name":"d","namespace":"n"},"spec":{"replicas":0,"selector":{},"template":{}}}),
        )
        .unwrap();
        assert!(deployment_findings(&zero, &mut w).is_empty());
        let s: StatefulSet = serde_json::from_value(json!({"metadata":{"name":"s","namespace":"n"},"spec":{"replicas":2,"selector":{},"template":{},"serviceName":"s"},"status":{"replicas":2}})).unwrap();
        assert_eq!(statefulset_findings(&s, &mut w).map(|f| f.severity), Some(Severity::Critical));
        let ds: DaemonSet = serde_json::from_value(json!({"metadata":{"name":"x","namespace":"n"},"spec":{"selector":{},"template":{}},
            "status":{"desiredNumberScheduled":3,"numberAvailable":2,"currentNumberScheduled":3,"numberMisscheduled":0,"numberReady":2}})).unwrap();
        assert_eq!(daemonset_findings(&ds, &mut w).map(|f| f.severity), Some(Severity::Warning));
    }

    /// A rollout or scale-up in progress at 07:00 is not a warning; past the grace, or
    /// with nothing rolling out, it is.
    #[test]
    fn workloads_get_a_grace_period() {
        let mut memory = Memory::default();
        let mut w = shortfall(&mut memory);
        let rolling: Deployment = serde_json::from_value(json!({"metadata":{"name":"d","namespace":"n",
            "creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{"replicas":3,"selector":{},"template":{}},
            "status":{"availableReplicas":2,"conditions":[{"type":"Progressing","status":"True","reason":"ReplicaSetUpdated",
            "lastUpdateTime":"2026-11-24T06:58:00Z","lastTransitionTime":"2026-11-20T00:00:00Z"}]}})).unwrap();
        assert!(deployment_findings(&rolling, &mut w).is_empty(), "progress two minutes ago");
        let mut stale = rolling.clone();
        let c = &mut stale.status.as_mut().unwrap().conditions.as_mut().unwrap()[0];
        c.last_update_time = Some(Time("2026-11-24T05:00:00Z".parse().unwrap()));
        assert_eq!(checks(&deployment_findings(&stale, &mut w)), [("DeploymentUnavailable", Severity::Warning, "n/d")]);

        let sts = |rev: &str| -> StatefulSet {
            serde_json::from_value(
                json!({"metadata":{"name":"s","namespace":"n","creationTimestamp":"2026-01-01T00:00:00Z"},
                "spec":{"replicas":2,"selector":{},"template":{},"serviceName":"s"},
                "status":{"replicas":2,"readyReplicas":1,"currentRevision":"s-1","updateRevision":rev}}),
            )
            .unwrap()
        };
        assert!(statefulset_findings(&sts("s-2"), &mut w).is_none(), "rolling out, first seen now");
        assert!(statefulset_findings(&sts("s-1"), &mut w).is_some(), "nothing rolling out: flagged at once");
        // The next run, an hour on, still rolling: past the grace since first seen.
        let mut memory = memory.next();
        let mut later =
            Shortfall { now: "2026-11-24T08:00:00Z".parse().unwrap(), grace_seconds: 600, counters: &mut memory };
        assert!(statefulset_findings(&sts("s-2"), &mut later).is_some(), "a stuck rollout");
    }

    #[test]
    fn nodes() {
        let n: Node = serde_json::from_value(json!({"metadata":{"name":"n1"},"spec":{"unschedulable":true},"status":{"conditions":[
            {"type":"Ready","status":"Unknown","lastTransitionTime":"2026-11-24T06:30:00Z","message":"Kubelet stopped posting node status."},
            {"type":"DiskPressure","status":"True"},{"type":"MemoryPressure","status":"False"}]}})).unwrap();
        let f = node_findings(&n, now(), 600);
        assert_eq!(
            checks(&f),
            [
                ("NodeNotReady", Severity::Critical, "n1"),
                ("DiskPressure", Severity::Warning, "n1"),
                ("NodeCordoned", Severity::Info, "n1")
            ]
        );
        assert_eq!(f[0].message, "Ready=Unknown for 30m: Kubelet stopped posting node status.");
        let restarting = node_findings(&n, now(), 3600);
        assert!(restarting.iter().all(|f| f.check != "NodeNotReady"), "NotReady for less than the grace");
    }

    #[test]
    fn events_aggregate_in_window_newest_first() {
        let ev = |name: &str, obj: &str, reason: &str, ty: &str, last: &str, count: i32| -> Event {
            serde_json::from_value(
                json!({"metadata":{"name":name,"namespace":"n"},"type":ty,"reason":reason,"message":format!("m-{name}"),
                "involvedObject":{"kind":"Pod","name":obj},"firstTimestamp":last,"lastTimestamp":last,"count":count}),
            )
            .unwrap()
        };
        let mut agg = EventAggregator::new(now(), 1800, 100);
        agg.add(&ev("a", "p1", "BackOff", "Warning", "2026-11-24T06:40:00Z", 3));
        agg.add(&ev("b", "p1", "BackOff", "Warning", "2026-11-24T06:50:00Z", 2));
        agg.add(&ev("c", "p2", "FailedMount", "Warning", "2026-11-24T06:55:00Z", 1));
        agg.add(&ev("d", "p3", "Pulled", "Normal", "2026-11-24T06:55:00Z", 1));
        agg.add(&ev("e", "p4", "BackOff", "Warning", "2026-11-24T06:29:59Z", 9));
        let series: Event = serde_json::from_value(json!({"metadata":{"name":"s","namespace":"n"},"type":"Warning","reason":"Unhealthy","message":"probe failed",
            "involvedObject":{"kind":"Pod","name":"p5"},"eventTime":"2026-11-24T05:00:00.000000Z","series":{"count":7,"lastObservedTime":"2026-11-24T06:58:00.000000Z"}})).unwrap();
        agg.add(&series);
        let f = agg.into_findings();
        assert_eq!(
            f.iter().map(|f| (f.object.as_str(), f.message.as_str())).collect::<Vec<_>>(),
            [
                // It began two hours ago: seven in its lifetime, at least one in the window.
                ("n/Pod/p5", "Unhealthy ×1+ in the window (7 in all): probe failed"),
                ("n/Pod/p2", "FailedMount ×1: m-c"),
                ("n/Pod/p1", "BackOff ×5: m-b")
            ]
        );
    }

    #[test]
    fn event_groups_are_capped() {
        let mut agg = EventAggregator::new(now(), 1800, 2);
        for i in 0..5 {
            let e: Event = serde_json::from_value(
                json!({"metadata":{"name":format!("e{i}"),"namespace":"n"},"type":"Warning","reason":"X",
                "involvedObject":{"kind":"Pod","name":format!("p{i}")},"lastTimestamp":"2026-11-24T06:59:00Z"}),
            )
            .unwrap();
            agg.add(&e);
        }
        assert_eq!(agg.dropped_groups, 3);
        assert_eq!(agg.into_findings().len(), 2);
    }
}
