//! Leader election on a coordination.k8s.io Lease: only the holder runs checks.
//!
//! The holder renews every `retry_period`; a replica that cannot renew within
//! `renew_deadline` (shorter than the lease) stops acting, so by the time another
//! replica may take the expired lease, the old one has already stopped.
//!
//! Expiry is judged as client-go does: from when this replica last saw the lease's
//! record change, on its own monotonic clock, never from the remote `renewTime` against
//! the local wall clock. A replica whose clock runs ahead or behind can't take a lease
//! that is still being renewed. (kube-lease-manager, the maintained crate for kube 5,
//! compares `renewTime` with the local clock, which is why this module stays.) Every
//! call to the apiserver has a timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::clock::Clock;

#[derive(Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// The wall clock of the times written into the Lease (never used to judge it).
    pub clock: Arc<dyn Clock>,
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// The last lease record seen, and when this replica first saw it.
    observed: Mutex<Option<(LeaseSpec, Instant)>>,
}

/// What a look at the lease says.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Mine,
    Free,
    Held(String),
}

/// `unchanged_for`: how long this replica has seen the same record.
fn verdict(lease: &Lease, me: &str, unchanged_for: Duration) -> Verdict {
    let Some(spec) = &lease.spec else { return Verdict::Free };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() {
        return Verdict::Free;
    }
    if holder == me {
        return Verdict::Mine;
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
    if unchanged_for > duration { Verdict::Free } else { Verdict::Held(holder) }
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("no answer from the apiserver within {0:?}")]
    Timeout(Duration),
}

impl LeaderElector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Self {
        Self { api: Api::namespaced(client, &cfg.namespace), cfg, observed: Mutex::new(None) }
    }

    /// Each call's bound: half the renew deadline, so a hung call can't outlast it.
    async fn call<T>(&self, call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, CallError> {
        let limit = self.cfg.renew_deadline / 2;
        Ok(tokio::time::timeout(limit, call).await.map_err(|_| CallError::Timeout(limit))??)
    }

    /// How long the lease's record has been the same, as this replica has seen it.
    fn unchanged_for(&self, lease: &Lease) -> Duration {
        let spec = lease.spec.clone().unwrap_or_default();
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match observed.as_ref() {
            Some((seen, at)) if *seen == spec => at.elapsed(),
            _ => {
                *observed = Some((spec, Instant::now()));
                Duration::ZERO
            }
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>, taking_over: bool) -> LeaseSpec {
        let now = MicroTime(self.cfg.clock.now());
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
            acquire_time: if taking_over { Some(now.clone()) } else { previous.and_then(|p| p.acquire_time.clone()) },
            renew_time: Some(now),
            lease_transitions: Some(if taking_over { transitions + 1 } else { transitions }),
            ..Default::default()
        }
    }

    /// One attempt to take or renew the lease. Optimistic concurrency: a concurrent
    /// writer makes `replace` fail with a conflict, and the attempt simply fails.
    async fn try_acquire_or_renew(&self) -> Result<bool, CallError> {
        let existing = self.call(self.api.get_opt(&self.cfg.name)).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.cfg.name.clone()), ..Default::default() },
                spec: Some(self.spec(None, true)),
            };
            return conflict_is_no(self.call(self.api.create(&PostParams::default(), &lease)).await);
        };
        match verdict(&lease, &self.cfg.identity, self.unchanged_for(&lease)) {
            Verdict::Held(_) => Ok(false),
            v => {
                lease.spec = Some(self.spec(lease.spec.as_ref(), v == Verdict::Free));
                conflict_is_no(self.call(self.api.replace(&self.cfg.name, &PostParams::default(), &lease)).await)
            }
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        let mut announced = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    info!(identity = %self.cfg.identity, lease = %self.cfg.name, "became leader");
                    return;
                }
                Ok(false) if !announced => {
                    info!(lease = %self.cfg.name, "another replica leads; standing by");
                    announced = true;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "lease acquisition failed"),
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Renews the lease until renewal fails for longer than the renew deadline; then
    /// returns, and the caller must stop acting as leader.
    pub async fn hold(&self) {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    warn!("lease taken by another replica");
                    return;
                }
                Err(e) => warn!(error = %e, "lease renewal failed"),
            }
            if last_ok.elapsed() > self.cfg.renew_deadline {
                warn!("could not renew the lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up on a clean shutdown so another replica takes over at once.
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.call(self.api.get_opt(&self.cfg.name)).await
            && verdict(&lease, &self.cfg.identity, Duration::ZERO) == Verdict::Mine
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            let _ = self.call(self.api.replace(&self.cfg.name, &PostParams::default(), &lease)).await;
        }
    }
}

/// A write that lost the race (409) means someone else holds the lease.
fn conflict_is_no<T>(written: Result<T, CallError>) -> Result<bool, CallError> {
    match written {
        Ok(_) => Ok(true),
        Err(CallError::Kube(kube::Error::Api(s))) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str, secs: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(secs),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn verdicts_go_by_how_long_the_record_stood_still() {
        let s = Duration::from_secs;
        assert_eq!(verdict(&lease("a", "2026-11-24T07:00:10Z", 15), "a", s(99)), Verdict::Mine);
        assert_eq!(verdict(&lease("b", "2026-11-24T07:00:10Z", 15), "a", s(10)), Verdict::Held("b".into()));
        assert_eq!(verdict(&lease("b", "2026-11-24T07:00:10Z", 15), "a", s(16)), Verdict::Free);
        assert_eq!(verdict(&lease("", "2026-11-24T07:00:19Z", 15), "a", s(0)), Verdict::Free);
    }

    /// A renewTime far in the past (the holder's clock runs behind, or ours ahead) does not
    /// make a lease that keeps changing look expired; one that stops changing expires after
    /// its duration on our own clock, whatever renewTime says.
    #[tokio::test(start_paused = true)]
    async fn clock_skew_does_not_free_a_renewed_lease() {
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let cfg = LeaseConfig {
            namespace: "n".into(),
            name: "l".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            clock: Arc::new(crate::clock::SystemClock),
        };
        let e = LeaderElector::new(client, cfg);
        let mut held = lease("b", "2020-01-01T00:00:00Z", 15);
        for i in 0..20 {
            // Renewed every 2 s, with a renewTime an hour behind.
            let spec = held.spec.as_mut().unwrap();
            spec.renew_time = Some(MicroTime(format!("2020-01-01T00:00:{:02}Z", i * 2).parse().unwrap()));
            assert_eq!(verdict(&held, "a", e.unchanged_for(&held)), Verdict::Held("b".into()));
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        // Its holder stops renewing (last seen changing 2 s ago): free once it has stood
        // still for longer than the lease duration, on our clock.
        assert_eq!(verdict(&held, "a", e.unchanged_for(&held)), Verdict::Held("b".into()));
        tokio::time::advance(Duration::from_secs(12)).await;
        assert_eq!(verdict(&held, "a", e.unchanged_for(&held)), Verdict::Held("b".into()));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(verdict(&held, "a", e.unchanged_for(&held)), Verdict::Free);
    }
}
