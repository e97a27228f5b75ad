//! Leader election on a coordination.k8s.io Lease: only the holder runs checks.
//!
//! The holder renews every `renew_every`; a replica that cannot renew within
//! `renew_deadline` (shorter than the lease) stops acting, so by the time another
//! replica may take the expired lease, the old one has already stopped.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaseConfig,
}

/// What a look at the lease says.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Mine,
    Free,
    Held(String),
}

fn verdict(lease: &Lease, me: &str, now: Timestamp) -> Verdict {
    let Some(spec) = &lease.spec else { return Verdict::Free };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() {
        return Verdict::Free;
    }
    if holder == me {
        return Verdict::Mine;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec.renew_time.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH);
    if now.duration_since(renewed).as_secs() > duration { Verdict::Free } else { Verdict::Held(holder) }
}

impl LeaderElector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Self {
        Self { api: Api::namespaced(client, &cfg.namespace), cfg }
    }

    fn spec(&self, previous: Option<&LeaseSpec>, taking_over: bool) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
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
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let existing = self.api.get_opt(&self.cfg.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.cfg.name.clone()), ..Default::default() },
                spec: Some(self.spec(None, true)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        match verdict(&lease, &self.cfg.identity, Timestamp::now()) {
            Verdict::Held(_) => Ok(false),
            v => {
                lease.spec = Some(self.spec(lease.spec.as_ref(), v == Verdict::Free));
                match self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
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
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await
            && verdict(&lease, &self.cfg.identity, Timestamp::now()) == Verdict::Mine
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            let _ = self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await;
        }
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
    fn verdicts() {
        let now: Timestamp = "2026-11-24T07:00:20Z".parse().unwrap();
        assert_eq!(verdict(&lease("a", "2026-11-24T07:00:10Z", 15), "a", now), Verdict::Mine);
        assert_eq!(verdict(&lease("b", "2026-11-24T07:00:10Z", 15), "a", now), Verdict::Held("b".into()));
        assert_eq!(verdict(&lease("b", "2026-11-24T07:00:04Z", 15), "a", now), Verdict::Free);
        assert_eq!(verdict(&lease("", "2026-11-24T07:00:19Z", 15), "a", now), Verdict::Free);
    }
}
