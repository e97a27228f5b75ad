//! Status writes: every one by server-side apply of the whole status, fitted to its
//! budget and scrubbed, under a [`Guard`] that says what it may replace, and retried
//! through a short apiserver outage inside one deadline.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{Error, MANAGER, Result, status};
use crate::api::{MorningCheck, MorningCheckStatus};
use crate::net::{Attempt, RetryPolicy, retry};

/// What a status write requires of the object it replaces.
#[derive(Clone, Copy, Debug)]
pub(super) enum Guard<'a> {
    /// This version of the object: a write computed from a reconcile's (possibly stale)
    /// copy gets a conflict and a fresh reconcile, never overwrites newer status.
    Version(Option<&'a str>),
    /// This version, for a write that records a new claim: a conflict after a lost answer
    /// is recognised as our own write by the claim it left.
    Claim(Option<&'a str>),
    /// The run's own claim, still in the status: a run's later writes. A conflict reads
    /// the object again and, while the claim is still ours, writes again on its version.
    Fenced,
}

/// Writes the whole status by server-side apply, under `guard`.
pub(super) async fn apply_status(
    api: &Api<MorningCheck>,
    mc: &MorningCheck,
    st: &MorningCheckStatus,
    guard: Guard<'_>,
) -> Result<MorningCheck> {
    let mut st = st.clone();
    status::fit(&mut st);
    // Nothing a run held as a secret reaches the status, whichever path a message took.
    let mut body = serde_json::to_value(&st).expect("a status always serializes");
    crate::redact::scrub_json(&mut body);
    let name = mc.name_any();
    let mut version = match guard {
        Guard::Version(rv) | Guard::Claim(rv) => rv.map(str::to_string),
        Guard::Fenced => mc.resource_version(),
    };
    loop {
        let conflict = match patch_status(api, &name, &body, version.as_deref()).await {
            Err(Error::Kube(kube::Error::Api(s))) if s.code == 409 => Error::Kube(kube::Error::Api(s)),
            other => return other,
        };
        let ours = |current: &MorningCheck| {
            st.claim.is_some() && current.status.as_ref().and_then(|s| s.claim.as_ref()) == st.claim.as_ref()
        };
        match guard {
            Guard::Version(_) => return Err(conflict),
            Guard::Claim(_) => {
                let current = get_fresh(api, &name).await?;
                return if ours(&current) { Ok(current) } else { Err(conflict) };
            }
            Guard::Fenced => {
                let current = get_fresh(api, &name).await?;
                if !ours(&current) {
                    let holder = current.status.and_then(|s| s.claim).map(|c| c.holder).unwrap_or_default();
                    return Err(Error::Deposed(holder));
                }
                version = current.resource_version();
            }
        }
    }
}

/// One server-side apply of the status, conditional on `version` when given.
async fn patch_status(
    api: &Api<MorningCheck>,
    name: &str,
    status: &serde_json::Value,
    version: Option<&str>,
) -> Result<MorningCheck> {
    let mut metadata = json!({ "name": name });
    if let Some(rv) = version {
        metadata["resourceVersion"] = json!(rv);
    }
    let patch = json!({
        "apiVersion": MorningCheck::api_version(&()),
        "kind": MorningCheck::kind(&()),
        "metadata": metadata,
        "status": status,
    });
    let (params, patch) = (PatchParams::apply(MANAGER).force(), Patch::Apply(&patch));
    through_outage(|| api.patch_status(name, &params, &patch)).await
}

/// The object as the apiserver has it now.
async fn get_fresh(api: &Api<MorningCheck>, name: &str) -> Result<MorningCheck> {
    through_outage(|| api.get(name)).await
}

/// One API call, retried through a short apiserver outage so a finished run's result is
/// not lost, and never for longer than [`STATUS_WRITE_DEADLINE`] in all: the client's own
/// retries of 429 and 503 would otherwise wait for minutes.
pub(super) async fn through_outage<T, F, Fut>(call: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let policy = RetryPolicy { base: Duration::from_millis(500), max: Duration::from_secs(5), attempts: 12 };
    let deadline = tokio::time::Instant::now() + STATUS_WRITE_DEADLINE;
    let done = retry(policy, deadline, |_| {
        let call = tokio::time::timeout_at(deadline, call());
        async move {
            match call.await {
                Ok(Ok(v)) => Attempt::Done(v),
                Ok(Err(e)) if crate::collect::kube_transient(&e) => Attempt::Retry(Error::Kube(e), None),
                Ok(Err(e)) => Attempt::Fail(Error::Kube(e)),
                Err(_) => Attempt::Fail(Error::Timeout(STATUS_WRITE_DEADLINE)),
            }
        }
    })
    .await?;
    Ok(done)
}

/// How long a status write keeps retrying through an apiserver outage.
const STATUS_WRITE_DEADLINE: Duration = Duration::from_secs(60);
