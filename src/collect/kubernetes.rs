//! Kubernetes: pods, workloads, nodes and warning events, paged and evaluated page by
//! page so memory does not grow with the cluster.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, EventSeries, Node, NodeSpec, NodeStatus, ObjectReference, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use wildmatch::WildMatch;

use super::{LocalCluster, RunContext, config_error, kube_error, kube_transient};
use crate::api::{Area, KubernetesTarget, NamespaceFilter, TargetError};
use crate::evaluate::kubernetes as eval;
use crate::evaluate::{FindingSink, TargetOutcome};
use crate::net::{Attempt, RetryPolicy, retry};

/// Objects per list request.
pub const PAGE_SIZE: u32 = 500;
/// Distinct (namespace, object, reason) event groups kept per target.
const MAX_EVENT_GROUPS: usize = 5_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks one cluster. Each kind of object is listed concurrently; a failure of one list
/// is reported by tier and the others' findings are kept.
pub async fn check(target: &KubernetesTarget, ctx: &RunContext) -> TargetOutcome {
    let scoped = ctx.grants.scope(target);
    let target = &scoped;
    let mut out = ctx.outcome(&target.name, Area::Kubernetes, target.thresholds.max_findings as usize);
    let client = match client_for(target, ctx).await {
        Ok(c) => c,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let scan = Scan { client, target, ctx, namespaces: Namespaces::new(&target.namespaces) };
    let c = &target.checks;
    let (pods, workloads, nodes, events) = tokio::join!(
        async { if c.pods { Some(scan.pods().await) } else { None } },
        async { if c.workloads { Some(scan.workloads().await) } else { None } },
        async { if c.nodes.unwrap_or(true) { Some(scan.nodes().await) } else { None } },
        async { if c.events { Some(scan.events().await) } else { None } },
    );
    for part in [pods, workloads, nodes, events].into_iter().flatten() {
        for (fact, n) in part.facts {
            *out.facts.entry(fact).or_default() += n;
        }
        out.sink.merge(part.sink);
        out.errors.extend(part.errors);
    }
    out
}

/// Builds the client of a target: a kubeconfig from a Secret, the operator's own client,
/// or (from a laptop) a kubeconfig context.
async fn client_for(target: &KubernetesTarget, ctx: &RunContext) -> Result<Client, TargetError> {
    if let Some(r) = &target.kubeconfig_secret_ref {
        let raw = ctx.secrets.get_string(r).await?;
        let kc = parse_kubeconfig(&raw).map_err(|m| config_error(format!("kubeconfig in Secret {}: {m}", r.name)))?;
        let opts = KubeConfigOptions { context: target.context.clone(), ..Default::default() };
        let mut config = Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| config_error(format!("kubeconfig in Secret {}: {e}", r.name)))?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        // The policy first: the cluster (and any proxy) must be a host the admin allows.
        for uri in std::iter::once(&config.cluster_url).chain(config.proxy_url.as_ref()) {
            let url = url::Url::parse(&uri.to_string())
                .map_err(|e| config_error(format!("kubeconfig in Secret {}: server URL: {e}", r.name)))?;
            super::outbound::check(&ctx.grants, &url, "kubeconfig server").await?;
        }
        return Client::try_from(config).map_err(|e| kube_error(&e, "build client"));
    }
    match &ctx.local {
        LocalCluster::Client(c) => Ok(c.clone()),
        LocalCluster::Kubeconfig { default_context, clients } => {
            let context = target.context.clone().or_else(|| default_context.clone());
            // Held while the first target of a context builds its client: the others share it.
            let mut clients = clients.lock().await;
            if let Some(c) = clients.get(&context) {
                return Ok(c.clone());
            }
            let mut config = match &context {
                Some(c) => {
                    let opts = KubeConfigOptions { context: Some(c.clone()), ..Default::default() };
                    Config::from_kubeconfig(&opts)
                        .await
                        .map_err(|e| config_error(format!("kubeconfig context {c}: {e}")))?
                }
                // No context named: the current one, or the pod's service account inside a
                // cluster (a CronJob), as kubectl does.
                None => Config::infer().await.map_err(|e| config_error(format!("no Kubernetes configuration: {e}")))?,
            };
            config.connect_timeout = Some(CONNECT_TIMEOUT);
            let client = Client::try_from(config).map_err(|e| kube_error(&e, "build client"))?;
            clients.insert(context, client.clone());
            Ok(client)
        }
    }
}

/// Parses a kubeconfig held in a Secret, refusing anything that would execute code or
/// call out to an auth provider inside the operator.
pub fn parse_kubeconfig(raw: &str) -> Result<Kubeconfig, String> {
    let kc = Kubeconfig::from_yaml(raw).map_err(|e| match &e {
        // Where and what, never the line itself: it may be the one holding the token.
        kube::config::KubeconfigError::Parse(p) => format!("not a valid kubeconfig: {}", crate::redact::parse_error(p)),
        _ => "not a valid kubeconfig".to_string(),
    })?;
    for user in &kc.auth_infos {
        let Some(auth) = &user.auth_info else { continue };
        for secret in [&auth.token, &auth.password, &auth.client_key_data].into_iter().flatten() {
            crate::redact::remember(secrecy::ExposeSecret::expose_secret(secret));
        }
        if auth.exec.is_some() {
            return Err(format!(
                "user {:?} uses an exec plugin, which the operator never runs; use a token or client certificate",
                user.name
            ));
        }
        if auth.auth_provider.is_some() {
            return Err(format!(
                "user {:?} uses an auth provider, which the operator does not support; use a token or client certificate",
                user.name
            ));
        }
        if auth.token_file.is_some() || auth.client_certificate.is_some() || auth.client_key.is_some() {
            return Err(format!(
                "user {:?} refers to files; embed the token or certificate data in the kubeconfig",
                user.name
            ));
        }
    }
    let servers = kc.clusters.iter().filter_map(|c| c.cluster.as_ref()?.server.as_deref());
    if servers.filter_map(|s| url::Url::parse(s).ok()).any(|u| crate::validate::has_userinfo(&u)) {
        return Err(
            "a cluster's server URL carries credentials (user:password@); use a token or client certificate".into()
        );
    }
    if kc.clusters.iter().any(|c| c.cluster.as_ref().is_some_and(|c| c.certificate_authority.is_some())) {
        return Err("a cluster refers to a CA file; embed certificate-authority-data instead".into());
    }
    Ok(kc)
}

/// Findings, facts and errors of one kind of object. The findings go into a capped sink
/// as each page is evaluated, so a cluster full of unhealthy pods costs no more memory
/// than a healthy one.
struct Part {
    sink: FindingSink,
    facts: Vec<(String, u64)>,
    errors: Vec<TargetError>,
}

struct Scan<'a> {
    client: Client,
    target: &'a KubernetesTarget,
    ctx: &'a RunContext,
    namespaces: Namespaces,
}

/// The target's namespace filter, compiled: names and globs (`big-*`, `team-?`).
struct Namespaces {
    include: Vec<WildMatch>,
    exclude: Vec<WildMatch>,
    /// Every include is a plain name, so each can be listed on its own; a glob needs a
    /// list at cluster scope, filtered here.
    by_name: bool,
}

impl Namespaces {
    fn new(f: &NamespaceFilter) -> Self {
        let glob = |p: &String| p.contains(['*', '?']);
        Self {
            include: f.include.iter().map(|p| WildMatch::new(p)).collect(),
            exclude: f.exclude.iter().map(|p| WildMatch::new(p)).collect(),
            by_name: !f.include.is_empty() && !f.include.iter().any(glob),
        }
    }

    /// Exclude wins; an empty include takes every namespace.
    fn included(&self, ns: &str) -> bool {
        !self.exclude.iter().any(|e| e.matches(ns))
            && (self.include.is_empty() || self.include.iter().any(|i| i.matches(ns)))
    }
}

impl Scan<'_> {
    fn part(&self) -> Part {
        let cap = self.target.thresholds.max_findings as usize;
        Part { sink: self.ctx.sink(&self.target.name, Area::Kubernetes, cap), facts: Vec::new(), errors: Vec::new() }
    }

    fn included(&self, ns: Option<&str>) -> bool {
        self.namespaces.included(ns.unwrap_or_default())
    }

    /// Namespaced APIs to list: one per included namespace, or one across all of them.
    fn apis<K>(&self) -> Vec<(Api<K>, String)>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        let plural = K::plural(&()).to_string();
        if !self.namespaces.by_name {
            return vec![(Api::all(self.client.clone()), format!("list {plural} at cluster scope"))];
        }
        let unique: HashSet<&String> = self.target.namespaces.include.iter().collect();
        let mut namespaces: Vec<&String> = unique.into_iter().filter(|ns| self.included(Some(ns))).collect();
        namespaces.sort();
        namespaces
            .into_iter()
            .map(|ns| (Api::namespaced(self.client.clone(), ns), format!("list {plural} in namespace {ns}")))
            .collect()
    }

    fn params(&self, selector: bool) -> ListParams {
        let mut lp = ListParams::default().limit(PAGE_SIZE);
        if selector && let Some(s) = &self.target.label_selector {
            lp = lp.labels(s);
        }
        lp
    }

    /// Pages through one list, handing every page to `visit` and then dropping it.
    /// Returns the number of objects and of list requests.
    async fn each_page<K>(
        &self,
        api: &Api<K>,
        action: &str,
        lp: ListParams,
        mut visit: impl FnMut(ObjectList<K>),
    ) -> Result<(u64, u64), TargetError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut token: Option<String> = None;
        let (mut seen, mut pages) = (0, 0);
        loop {
            let mut page_params = lp.clone();
            page_params.continue_token = token.clone();
            let page = retry(RetryPolicy::default(), self.ctx.deadline, |_| {
                let (api, p) = (api.clone(), page_params.clone());
                async move {
                    match api.list(&p).await {
                        Ok(l) => Attempt::Done(l),
                        Err(e) if kube_transient(&e) => Attempt::Retry(e, None),
                        Err(e) => Attempt::Fail(e),
                    }
                }
            })
            .await
            .map_err(|e| kube_error(&e, action))?;
            seen += page.items.len() as u64;
            pages += 1;
            token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
            visit(page);
            if token.is_none() {
                return Ok((seen, pages));
            }
        }
    }

    async fn list_namespaced<K>(
        &self,
        part: &mut Part,
        fact: &'static str,
        selector: bool,
        mut eval: impl FnMut(K, &mut FindingSink),
    ) where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let (mut count, mut pages) = (0, 0);
        for (api, action) in self.apis::<K>() {
            let findings = &mut part.sink;
            let visit = |page: ObjectList<K>| {
                for obj in page.items.into_iter().filter(|o| self.included(o.meta().namespace.as_deref())) {
                    eval(obj, findings);
                }
            };
            match self.each_page(&api, &action, self.params(selector), visit).await {
                Ok((n, p)) => (count, pages) = (count + n, pages + p),
                Err(e) => part.errors.push(e),
            }
        }
        part.facts.push((fact.to_string(), count));
        part.facts.push((format!("{fact}ListRequests"), pages));
    }

    async fn pods(&self) -> Part {
        let mut part = self.part();
        let (now, th, since) = (self.ctx.now, &self.target.thresholds, self.ctx.window_start());
        self.list_namespaced::<SlimPod>(&mut part, "pods", true, |p, out| {
            let found = eval::pod_findings(&p.into(), now, th, &mut eval::RestartWindow { since, counters: out });
            out.extend(found)
        })
        .await;
        part
    }

    async fn workloads(&self) -> Part {
        let (mut d, mut s, mut ds) = (self.part(), self.part(), self.part());
        let (now, grace_seconds) = (self.ctx.now, self.target.thresholds.pending_grace_seconds);
        tokio::join!(
            self.list_namespaced::<Deployment>(&mut d, "deployments", true, |o, out| {
                let found = eval::deployment_findings(&o, &mut eval::Shortfall { now, grace_seconds, counters: out });
                out.extend(found)
            }),
            self.list_namespaced::<StatefulSet>(&mut s, "statefulsets", true, |o, out| {
                let found = eval::statefulset_findings(&o, &mut eval::Shortfall { now, grace_seconds, counters: out });
                out.extend(found)
            }),
            self.list_namespaced::<DaemonSet>(&mut ds, "daemonsets", true, |o, out| {
                let found = eval::daemonset_findings(&o, &mut eval::Shortfall { now, grace_seconds, counters: out });
                out.extend(found)
            }),
        );
        for other in [s, ds] {
            d.sink.merge(other.sink);
            d.facts.extend(other.facts);
            d.errors.extend(other.errors);
        }
        d
    }

    async fn nodes(&self) -> Part {
        let mut part = self.part();
        let api: Api<SlimNode> = Api::all(self.client.clone());
        let (now, grace) = (self.ctx.now, self.target.thresholds.pending_grace_seconds);
        let findings = &mut part.sink;
        let visit = |page: ObjectList<SlimNode>| {
            page.items.into_iter().for_each(|n| findings.extend(eval::node_findings(&n.into(), now, grace)))
        };
        match self.each_page(&api, "list nodes at cluster scope", ListParams::default().limit(PAGE_SIZE), visit).await {
            Ok((n, p)) => part.facts.extend([("nodes".to_string(), n), ("nodesListRequests".to_string(), p)]),
            Err(e) => part.errors.push(e),
        }
        part
    }

    async fn events(&self) -> Part {
        let mut part = self.part();
        let mut agg =
            eval::EventAggregator::new(self.ctx.now, self.target.thresholds.event_window_seconds, MAX_EVENT_GROUPS);
        let (mut count, mut pages) = (0, 0);
        for (api, action) in self.apis::<SlimEvent>() {
            let lp = ListParams::default().limit(PAGE_SIZE).fields("type=Warning");
            let visit = |page: ObjectList<SlimEvent>| {
                page.items
                    .into_iter()
                    .filter(|e| self.included(e.metadata.namespace.as_deref()))
                    .for_each(|e| agg.add(&e.into()))
            };
            match self.each_page(&api, &action, lp, visit).await {
                Ok((n, p)) => (count, pages) = (count + n, pages + p),
                Err(e) => part.errors.push(e),
            }
        }
        part.facts.extend([("warningEvents".to_string(), count), ("warningEventsListRequests".to_string(), pages)]);
        part.sink.extend(agg.into_findings());
        part
    }
}

/// Declares the part of an object the checks read, as a type that lists like the full
/// one. serde skips everything else (the pod spec, labels, annotations and above all
/// `managedFields`, which would be built as JSON value trees) without allocating it, which
/// roughly halves the CPU and the memory of a list.
macro_rules! slim {
    ($slim:ident => $full:ty { $($field:ident: $ty:ty = $json:literal),* $(,)? }) => {
        #[derive(Deserialize, Clone, Debug)]
        struct $slim {
            #[serde(deserialize_with = "slim_metadata")]
            metadata: ObjectMeta,
            $(#[serde(rename = $json, default)] $field: $ty,)*
        }

        impl k8s_openapi::Resource for $slim {
            const API_VERSION: &'static str = <$full as k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$full as k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$full as k8s_openapi::Resource>::KIND;
            const VERSION: &'static str = <$full as k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str = <$full as k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$full as k8s_openapi::Resource>::Scope;
        }

        impl k8s_openapi::Metadata for $slim {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl From<$slim> for $full {
            // A slim type may keep every field (Node does); the update is for those that don't.
            #[allow(clippy::needless_update)]
            fn from(s: $slim) -> Self {
                Self { metadata: s.metadata, $($field: s.$field,)* ..Default::default() }
            }
        }
    };
}

slim!(SlimPod => Pod { status: Option<PodStatus> = "status" });
slim!(SlimNode => Node { spec: Option<NodeSpec> = "spec", status: Option<NodeStatus> = "status" });
slim!(SlimEvent => Event {
    involved_object: ObjectReference = "involvedObject",
    type_: Option<String> = "type",
    reason: Option<String> = "reason",
    message: Option<String> = "message",
    count: Option<i32> = "count",
    series: Option<EventSeries> = "series",
    first_timestamp: Option<Time> = "firstTimestamp",
    last_timestamp: Option<Time> = "lastTimestamp",
    event_time: Option<MicroTime> = "eventTime",
});

/// The metadata the checks read: name, namespace, uid and creation time.
fn slim_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        creation_timestamp: Option<Time>,
    }
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        creation_timestamp: m.creation_timestamp,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_KC: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: 'AAAA'}\nusers:\n- name: u\n  user: {token: abc}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";

    fn meta() -> serde_json::Value {
        serde_json::json!({"name": "web", "namespace": "prod", "creationTimestamp": "2026-11-24T04:00:00Z",
            "uid": "u", "labels": {"app": "web"}, "annotations": {"a": "b"},
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}}}}}}]})
    }

    /// The slim types must carry everything the checks read: the same object, parsed in
    /// full and slim, gives the same findings, and the unread parts are not kept.
    #[test]
    fn slim_objects_give_the_same_findings_as_full_ones() {
        let now: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
        let th = crate::api::KubernetesThresholds::default();
        let pod = serde_json::json!({"metadata": meta(),
            "spec": {"containers": [{"name": "app", "image": "i", "env": [{"name": "X", "value": "1"}]}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes"}],
              "containerStatuses": [{"name": "app", "ready": false, "restartCount": 9, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-24T06:50:00Z"}}}]}});
        // Restarts are counted by the pod's uid: the slim metadata keeps it.
        let check = |p: &Pod| {
            let mut sink = FindingSink::new("t", Area::Kubernetes, 10);
            let since = now - jiff::SignedDuration::from_hours(24);
            eval::pod_findings(p, now, &th, &mut eval::RestartWindow { since, counters: &mut sink })
        };
        let full: Pod = serde_json::from_value(pod.clone()).unwrap();
        let slim: Pod = serde_json::from_value::<SlimPod>(pod).unwrap().into();
        let expected = check(&full);
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert_eq!(check(&slim), expected);
        assert_eq!(slim.metadata.uid.as_deref(), Some("u"));
        assert!(slim.spec.is_none() && slim.metadata.managed_fields.is_none() && slim.metadata.labels.is_none());
        // Pending for 3 h: only the creation time tells.
        let pending = serde_json::json!({"metadata": meta(), "status": {"phase": "Pending"}});
        let full: Pod = serde_json::from_value(pending.clone()).unwrap();
        let slim: Pod = serde_json::from_value::<SlimPod>(pending).unwrap().into();
        let expected = check(&full);
        assert_eq!(expected.len(), 1, "{expected:?}");
        assert_eq!(check(&slim), expected);

        let node = serde_json::json!({"metadata": meta(), "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-24T06:00:00Z"},
                {"type": "DiskPressure", "status": "True"}]}});
        let full: Node = serde_json::from_value(node.clone()).unwrap();
        let slim: Node = serde_json::from_value::<SlimNode>(node).unwrap().into();
        let expected = eval::node_findings(&full, now, 600);
        assert_eq!(expected.len(), 3, "{expected:?}");
        assert_eq!(eval::node_findings(&slim, now, 600), expected);

        let event = serde_json::json!({"metadata": meta(), "type": "Warning", "reason": "BackOff", "message": "restarting",
            "count": 4, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"},
            "firstTimestamp": "2026-11-24T06:40:00Z", "lastTimestamp": "2026-11-24T06:50:00Z",
            "source": {"component": "kubelet"}});
        let full: Event = serde_json::from_value(event.clone()).unwrap();
        let slim: Event = serde_json::from_value::<SlimEvent>(event).unwrap().into();
        let findings = |e: &Event| {
            let mut agg = eval::EventAggregator::new(now, 3600, 10);
            agg.add(e);
            agg.into_findings()
        };
        assert_eq!(findings(&full).len(), 1);
        assert_eq!(findings(&slim), findings(&full));
    }

    #[test]
    fn slim_types_list_at_the_full_types_paths() {
        use kube::Resource;
        assert_eq!(SlimPod::url_path(&(), Some("n")), Pod::url_path(&(), Some("n")));
        assert_eq!(SlimNode::url_path(&(), None), Node::url_path(&(), None));
        assert_eq!(SlimEvent::url_path(&(), None), Event::url_path(&(), None));
    }

    #[test]
    fn token_kubeconfig_is_accepted() {
        let kc = parse_kubeconfig(TOKEN_KC).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("x"));
    }

    #[test]
    fn exec_plugin_is_refused() {
        let raw = TOKEN_KC.replace(
            "user: {token: abc}",
            "user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token]}}",
        );
        let err = parse_kubeconfig(&raw).unwrap_err();
        assert!(err.contains("exec plugin"), "{err}");
    }

    #[test]
    fn auth_provider_and_files_are_refused() {
        let raw = TOKEN_KC.replace("user: {token: abc}", "user: {auth-provider: {name: gcp}}");
        assert!(parse_kubeconfig(&raw).unwrap_err().contains("auth provider"));
        let raw = TOKEN_KC.replace("user: {token: abc}", "user: {tokenFile: /var/run/secrets/token}");
        assert!(parse_kubeconfig(&raw).unwrap_err().contains("refers to files"));
        assert!(parse_kubeconfig("not: [yaml").is_err());
    }

    #[test]
    fn namespace_filters_take_names_and_globs() {
        let f = |include: &[&str], exclude: &[&str]| {
            Namespaces::new(&NamespaceFilter {
                include: include.iter().map(|s| s.to_string()).collect(),
                exclude: exclude.iter().map(|s| s.to_string()).collect(),
            })
        };
        let n = f(&["big-*", "web"], &["big-canary"]);
        assert!(n.included("big-1") && n.included("big-") && n.included("web"));
        assert!(!n.included("big-canary") && !n.included("webby") && !n.included("small-1"));
        assert!(!n.by_name, "a glob is listed at cluster scope and filtered");
        let n = f(&["a", "b"], &[]);
        assert!(n.by_name && n.included("a") && !n.included("c"));
        let n = f(&[], &["kube-*", "team-?"]);
        assert!(!n.by_name && n.included("default") && !n.included("kube-system") && !n.included("team-a"));
        assert!(n.included("team-ab"));
    }
}
