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
//! | restarts above the threshold (with the last termination reason) | warning |
//! | Running with containers not ready past the grace period | warning |
//! | workload with no available replicas / ProgressDeadlineExceeded | critical |
//! | workload below its desired replicas | warning |
//! | node NotReady | critical |
//! | node Memory/Disk/PID pressure | warning |
//! | node cordoned | info |
//! | Warning events in the window (aggregated) | warning |

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{finding, human_duration};
use crate::api::{Finding, KubernetesThresholds, Severity};

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

fn obj(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// Findings of one pod.
pub fn pod_findings(pod: &Pod, now: Timestamp, th: &KubernetesThresholds) -> Vec<Finding> {
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
    for (c, init) in containers {
        critical_waiting |= container_findings(&mut out, &pod_obj, c, init, th);
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
            format!("Pending for {}: {why}", human_duration(secs)),
            started,
        ));
    }
    if phase == "Running" && !critical_waiting {
        not_ready(&mut out, pod, &pod_obj, now, grace);
    }
    out
}

/// Adds the findings of one container; returns whether it is stuck in a critical wait.
fn container_findings(
    out: &mut Vec<Finding>,
    pod_obj: &str,
    c: &ContainerStatus,
    init: bool,
    th: &KubernetesThresholds,
) -> bool {
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
    if c.restart_count > th.restart_count {
        let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let mut text = format!("{kind} {} restarted {} times", c.name, c.restart_count);
        if let Some(t) = last {
            text.push_str(&format!("; last exit: {} (code {})", t.reason.as_deref().unwrap_or("unknown"), t.exit_code));
            if let Some(at) = &t.finished_at {
                text.push_str(&format!(" at {}", at.0));
            }
        }
        out.push(finding(Severity::Warning, "HighRestarts", &cobj, text, None));
    }
    critical
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
            format!("containers not ready for {}: {}", human_duration(secs), unready.join(", ")),
            since,
        ));
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

pub fn deployment_findings(d: &Deployment) -> Vec<Finding> {
    let (ns, name) =
        (d.metadata.namespace.as_deref().unwrap_or_default(), d.metadata.name.as_deref().unwrap_or_default());
    let spec = d.spec.as_ref();
    if spec.and_then(|s| s.paused).unwrap_or(false) {
        return Vec::new();
    }
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.as_ref();
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let mut out: Vec<Finding> =
        replicas_finding("Deployment", ns, name, desired, available, "available").into_iter().collect();
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

pub fn statefulset_findings(s: &StatefulSet) -> Option<Finding> {
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = s.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    replicas_finding(
        "StatefulSet",
        s.metadata.namespace.as_deref()?,
        s.metadata.name.as_deref()?,
        desired,
        ready,
        "ready",
    )
}

pub fn daemonset_findings(d: &DaemonSet) -> Option<Finding> {
    let st = d.status.as_ref()?;
    let available = st.number_available.unwrap_or(0);
    replicas_finding(
        "DaemonSet",
        d.metadata.namespace.as_deref()?,
        d.metadata.name.as_deref()?,
        st.desired_number_scheduled,
        available,
        "available",
    )
}

pub fn node_findings(node: &Node, now: Timestamp) -> Vec<Finding> {
    let mut out = Vec::new();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    for c in node.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        let since = ts(&c.last_transition_time);
        let dur = age(now, since).map(|s| format!(" for {}", human_duration(s))).unwrap_or_default();
        let detail = c.message.as_deref().filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default();
        match (c.type_.as_str(), c.status.as_str()) {
            ("Ready", "True") => {}
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
    count: u64,
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
        let count =
            e.series.as_ref().and_then(|s| s.count).map(|c| c as u64).or(e.count.map(|c| c as u64)).unwrap_or(1).max(1);
        let key = (ns, object, reason);
        if !self.groups.contains_key(&key) && self.groups.len() >= self.max_groups {
            self.dropped_groups += 1;
            return;
        }
        let g = self.groups.entry(key).or_insert_with(|| EventGroup { count: 0, last: at, message: String::new() });
        g.count += count;
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
                    format!("{reason} ×{}: {}", g.count, g.message),
                    Some(g.last),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn healthy_and_succeeded_pods_have_no_findings() {
        let ok = pod(
            json!({"metadata":{"name":"a","namespace":"n"},"status":{"phase":"Running","startTime":"2026-11-24T06:00:00Z",
            "containerStatuses":[{"name":"c","ready":true,"restartCount":5,"image":"i","imageID":""}]}}),
        );
        assert!(pod_findings(&ok, now(), &th()).is_empty(), "restarts equal to the threshold are fine");
        let done = pod(json!({"metadata":{"name":"j","namespace":"n"},"status":{"phase":"Succeeded"}}));
        assert!(pod_findings(&done, now(), &th()).is_empty());
    }

    #[test]
    fn crashloop_with_restarts_and_oom() {
        let p = pod(
            json!({"metadata":{"name":"web","namespace":"prod"},"status":{"phase":"Running","startTime":"2026-11-24T06:00:00Z",
            "containerStatuses":[{"name":"app","ready":false,"restartCount":6,"image":"i","imageID":"",
              "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s"}},
              "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","finishedAt":"2026-11-24T06:55:00Z"}}}]}}),
        );
        let f = pod_findings(&p, now(), &th());
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

    #[test]
    fn init_container_image_pull() {
        let p = pod(
            json!({"metadata":{"name":"p","namespace":"n"},"status":{"phase":"Pending","startTime":"2026-11-24T06:59:00Z",
            "initContainerStatuses":[{"name":"init","ready":false,"restartCount":0,"image":"i","imageID":"","state":{"waiting":{"reason":"ImagePullBackOff"}}}]}}),
        );
        assert_eq!(checks(&pod_findings(&p, now(), &th())), [("ImagePullBackOff", Severity::Critical, "n/p/init")]);
    }

    #[test]
    fn pending_only_past_grace() {
        let young = pod(
            json!({"metadata":{"name":"p","namespace":"n","creationTimestamp":"2026-11-24T06:50:00Z"},"status":{"phase":"Pending"}}),
        );
        assert!(pod_findings(&young, now(), &th()).is_empty(), "exactly at the grace period is not a finding");
        let old = pod(
            json!({"metadata":{"name":"p","namespace":"n","creationTimestamp":"2026-11-24T06:49:59Z"},"status":{"phase":"Pending",
            "conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes available"}]}}),
        );
        let f = pod_findings(&old, now(), &th());
        assert_eq!(checks(&f), [("PodPending", Severity::Warning, "n/p")]);
        assert!(f[0].message.contains("Unschedulable: 0/3 nodes available"));
    }

    #[test]
    fn failed_evicted_unknown() {
        let ev = pod(
            json!({"metadata":{"name":"e","namespace":"n"},"status":{"phase":"Failed","reason":"Evicted","message":"low on memory"}}),
        );
        assert_eq!(checks(&pod_findings(&ev, now(), &th())), [("PodEvicted", Severity::Warning, "n/e")]);
        let un = pod(json!({"metadata":{"name":"u","namespace":"n"},"status":{"phase":"Unknown"}}));
        assert_eq!(checks(&pod_findings(&un, now(), &th())), [("PodUnknown", Severity::Critical, "n/u")]);
    }

    #[test]
    fn not_ready_past_grace() {
        let p = pod(
            json!({"metadata":{"name":"r","namespace":"n"},"status":{"phase":"Running","startTime":"2026-11-24T05:00:00Z",
            "conditions":[{"type":"Ready","status":"False","lastTransitionTime":"2026-11-24T06:00:00Z"}],
            "containerStatuses":[{"name":"c","ready":false,"restartCount":0,"image":"i","imageID":"","state":{"running":{}}}]}}),
        );
        let f = pod_findings(&p, now(), &th());
        assert_eq!(checks(&f), [("ContainersNotReady", Severity::Warning, "n/r")]);
        assert!(f[0].message.contains("for 1h00m: c"));
    }

    #[test]
    fn workloads() {
        let d: Deployment = serde_json::from_value(json!({"metadata":{"name":"d","namespace":"n"},"spec":{"replicas":3,"selector":{},"template":{}},
            "status":{"availableReplicas":1,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet d-1 has timed out progressing."}]}})).unwrap();
        assert_eq!(
            checks(&deployment_findings(&d)),
            [
                ("DeploymentUnavailable", Severity::Warning, "n/d"),
                ("ProgressDeadlineExceeded", Severity::Critical, "n/d")
            ]
        );
        let paused: Deployment = serde_json::from_value(json!({"metadata":{"name":"d","namespace":"n"},"spec":{"paused":true,"replicas":3,"selector":{},"template":{}}})).unwrap();
        assert!(deployment_findings(&paused).is_empty());
        let zero: Deployment = serde_json::from_value(
            json!({"metadata":{"name":"d","namespace":"n"},"spec":{"replicas":0,"selector":{},"template":{}}}),
        )
        .unwrap();
        assert!(deployment_findings(&zero).is_empty());
        let s: StatefulSet = serde_json::from_value(json!({"metadata":{"name":"s","namespace":"n"},"spec":{"replicas":2,"selector":{},"template":{},"serviceName":"s"},"status":{"replicas":2}})).unwrap();
        assert_eq!(statefulset_findings(&s).map(|f| f.severity), Some(Severity::Critical));
        let ds: DaemonSet = serde_json::from_value(json!({"metadata":{"name":"x","namespace":"n"},"spec":{"selector":{},"template":{}},
            "status":{"desiredNumberScheduled":3,"numberAvailable":2,"currentNumberScheduled":3,"numberMisscheduled":0,"numberReady":2}})).unwrap();
        assert_eq!(daemonset_findings(&ds).map(|f| f.severity), Some(Severity::Warning));
    }

    #[test]
    fn nodes() {
        let n: Node = serde_json::from_value(json!({"metadata":{"name":"n1"},"spec":{"unschedulable":true},"status":{"conditions":[
            {"type":"Ready","status":"Unknown","lastTransitionTime":"2026-11-24T06:30:00Z","message":"Kubelet stopped posting node status."},
            {"type":"DiskPressure","status":"True"},{"type":"MemoryPressure","status":"False"}]}})).unwrap();
        let f = node_findings(&n, now());
        assert_eq!(
            checks(&f),
            [
                ("NodeNotReady", Severity::Critical, "n1"),
                ("DiskPressure", Severity::Warning, "n1"),
                ("NodeCordoned", Severity::Info, "n1")
            ]
        );
        assert_eq!(f[0].message, "Ready=Unknown for 30m: Kubelet stopped posting node status.");
    }

    #[test]
    fn events_aggregate_in_window_newest_first() {
        let ev = |name: &str, obj: &str, reason: &str, ty: &str, last: &str, count: i32| -> Event {
            serde_json::from_value(
                json!({"metadata":{"name":name,"namespace":"n"},"type":ty,"reason":reason,"message":format!("m-{name}"),
                "involvedObject":{"kind":"Pod","name":obj},"lastTimestamp":last,"count":count}),
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
                ("n/Pod/p5", "Unhealthy ×7: probe failed"),
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
