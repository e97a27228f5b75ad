//! Where each MorningCheck's known set lives between runs: a ConfigMap of the operator's
//! own namespace, one per MorningCheck (by uid), never in the tenant's namespace and never
//! readable there.
//!
//! It holds at most two entries, keyed by run: the one the status points to
//! (`status.knownFindings.runId`, the last run whose result is on record) and the run being
//! recorded. The new entry is written before the run's status, so an attempt that dies in
//! between leaves the recorded entry in place, and its retry compares with it again.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::write::through_outage;
use super::{Context, Error};
use crate::api::{KnownFindingsRef, MorningCheck};
use crate::evaluate::KnownSet;

/// Marks the ConfigMaps this module owns.
const LABEL: &str = "morningcheck.io/known-findings";
/// `namespace/name` of the MorningCheck a ConfigMap belongs to.
const CHECK: &str = "morningcheck.io/check";
const UID: &str = "morningcheck.io/uid";
/// Most bytes of the ConfigMap's data: the apiserver refuses more than 1 MiB.
const MAX_BYTES: usize = 1000 * 1024;

fn name(mc: &MorningCheck) -> String {
    format!("morningcheck-known-{}", mc.uid().unwrap_or_default())
}

/// The entry key of a run: run ids hold any character, keys only `[-._a-zA-Z0-9]`.
fn key(run_id: &str) -> String {
    format!("run-{}", crate::evaluate::digest_text(run_id))
}

/// One call, retried through a short outage; its error says what failed.
async fn call<T, F, Fut>(what: &str, f: F) -> Result<T, Failed>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    through_outage(f).await.map_err(|e| match e {
        Error::Kube(kube::Error::Api(s)) if s.code == 409 => Failed::Conflict,
        e => Failed::Other(format!("{what}: {}", crate::errors::error_chain(&e))),
    })
}

enum Failed {
    /// Another write came between.
    Conflict,
    Other(String),
}

impl Failed {
    fn message(self) -> String {
        match self {
            Failed::Conflict => "conflicting writes".into(),
            Failed::Other(m) => m,
        }
    }
}

fn api(ctx: &Context) -> Api<ConfigMap> {
    Api::namespaced(ctx.client.clone(), &ctx.operator_namespace)
}

/// The known set of the last recorded run, or an empty one (nothing to compare with) when
/// there is none or it can't be read: never a wrong one.
pub(super) async fn load(ctx: &Context, mc: &MorningCheck, at: Option<&KnownFindingsRef>) -> KnownSet {
    let Some(at) = at else { return KnownSet::default() };
    let api = api(ctx);
    let cm = match call("get known findings", || api.get_opt(&at.config_map)).await.map_err(Failed::message) {
        Ok(cm) => cm,
        Err(e) => {
            warn!(error = %e, "the previous run's findings could not be read; this run has nothing to compare with");
            return KnownSet::default();
        }
    };
    let bytes = cm
        .filter(|cm| cm.annotations().get(UID).map(String::as_str) == mc.uid().as_deref())
        .and_then(|cm| cm.binary_data?.remove(&key(&at.run_id)));
    let Some(bytes) = bytes else {
        warn!(configmap = %at.config_map, run_id = %at.run_id, "the previous run's findings are gone; this run has nothing to compare with");
        return KnownSet::default();
    };
    KnownSet::decode(&bytes.0).unwrap_or_else(|e| {
        warn!(error = %e, "the previous run's findings could not be read; this run has nothing to compare with");
        KnownSet::default()
    })
}

/// Writes run `run_id`'s known set beside the recorded one (`at`), dropping any other.
pub(super) async fn store(
    ctx: &Context,
    mc: &MorningCheck,
    at: Option<&KnownFindingsRef>,
    run_id: &str,
    known: &KnownSet,
) -> Result<KnownFindingsRef, String> {
    let api = api(ctx);
    let cm_name = name(mc);
    // Half the ConfigMap: the recorded run's set stays beside it.
    let encoded = known.encode_within(MAX_BYTES / 2);
    if encoded.len() > MAX_BYTES {
        return Err(format!("{} findings take {} bytes, more than a ConfigMap holds", known.len(), encoded.len()));
    }
    let this = key(run_id);
    // A conflict means another write came between: read again and retry.
    for _ in 0..3 {
        let existing = call("get known findings", || api.get_opt(&cm_name)).await.map_err(Failed::message)?;
        let mut data = BTreeMap::new();
        if let (Some(at), Some(cm)) = (at, &existing) {
            let kept = key(&at.run_id);
            let old = cm.binary_data.as_ref().and_then(|d| d.get(&kept)).filter(|_| kept != this);
            if let Some(old) = old.filter(|old| old.0.len() + encoded.len() <= MAX_BYTES) {
                data.insert(kept, old.clone());
            }
        }
        data.insert(this.clone(), ByteString(encoded.clone()));
        let pp = PostParams::default();
        let written = match existing {
            Some(mut cm) => {
                cm.binary_data = Some(data);
                cm.data = None;
                call("update known findings", || api.replace(&cm_name, &pp, &cm)).await
            }
            None => {
                let cm = ConfigMap {
                    metadata: metadata(mc, cm_name.clone()),
                    binary_data: Some(data),
                    ..ConfigMap::default()
                };
                call("create known findings", || api.create(&pp, &cm)).await
            }
        };
        match written {
            Ok(_) => {
                return Ok(KnownFindingsRef {
                    config_map: cm_name,
                    run_id: run_id.into(),
                    findings: known.len() as u64,
                });
            }
            Err(Failed::Conflict) => continue,
            Err(e) => return Err(e.message()),
        }
    }
    Err("update known findings: conflicting writes, three times".into())
}

fn metadata(mc: &MorningCheck, name: String) -> ObjectMeta {
    let check = format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any());
    ObjectMeta {
        name: Some(name),
        labels: Some(BTreeMap::from([
            (LABEL.into(), "true".into()),
            ("app.kubernetes.io/managed-by".into(), "morningcheck".into()),
        ])),
        annotations: Some(BTreeMap::from([(CHECK.into(), check), (UID.into(), mc.uid().unwrap_or_default())])),
        ..ObjectMeta::default()
    }
}

/// Deletes the known sets of MorningChecks that are gone (or were recreated: a new uid).
/// Each is confirmed by a read of the MorningCheck, not the cache, so a set is never
/// deleted for a MorningCheck the cache has not seen yet.
pub(super) async fn sweep(ctx: &Context) {
    let api = api(ctx);
    let lp = ListParams::default().labels(LABEL);
    let list = match call("list known findings", || api.list_metadata(&lp)).await {
        Ok(l) => l,
        Err(e) => return warn!(error = %e.message(), "known findings of deleted MorningChecks not swept"),
    };
    for cm in list {
        let annotations = cm.annotations();
        let (Some((ns, name)), Some(uid)) =
            (annotations.get(CHECK).and_then(|c| c.split_once('/')), annotations.get(UID))
        else {
            continue;
        };
        let mcs: Api<MorningCheck> = Api::namespaced(ctx.client.clone(), ns);
        let gone = match call("get MorningCheck", || mcs.get_opt(name)).await {
            Ok(found) => found.is_none_or(|mc| mc.uid().as_deref() != Some(uid)),
            Err(_) => false,
        };
        if gone {
            let cm_name = cm.name_any();
            let dp = DeleteParams::default();
            match call("delete known findings", || api.delete(&cm_name, &dp)).await {
                Ok(_) => {
                    info!(configmap = %cm_name, check = %format!("{ns}/{name}"), "deleted the known findings of a deleted MorningCheck")
                }
                Err(e) => warn!(error = %e.message(), "known findings of a deleted MorningCheck not deleted"),
            }
        }
    }
}
