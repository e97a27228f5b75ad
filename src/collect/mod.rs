//! IO at the edge: one file per source. Each collector turns one target into a
//! [`TargetOutcome`]; it never fails as a whole, it reports errors by tier instead, so
//! one broken target never hides the others.

pub mod budget;
pub mod ec2;
pub mod kubernetes;
pub mod outbound;
pub mod prometheus;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use crate::api::{Area, ErrorTier, MorningCheckSpec, SecretKeyRef, TargetError};
use crate::evaluate::{FindingSink, KnownSet, Snoozes, TargetOutcome};

/// Where the Secrets a spec references are read from.
#[derive(Clone)]
pub enum SecretSource {
    /// The MorningCheck's own namespace; nothing outside it is ever read.
    Kubernetes { client: kube::Client, namespace: String },
    /// Values given directly (flags, environment), keyed by (secret name, key).
    Static { namespace: String, values: Arc<HashMap<(String, String), Vec<u8>>> },
}

impl SecretSource {
    pub fn namespace(&self) -> &str {
        match self {
            SecretSource::Kubernetes { namespace, .. } | SecretSource::Static { namespace, .. } => namespace,
        }
    }

    /// Reads one key. Errors name the Secret and key, never the value, and the value is
    /// remembered so that nothing the operator writes can repeat it.
    pub async fn get(&self, r: &SecretKeyRef) -> Result<Vec<u8>, TargetError> {
        let value = self.read(r).await?;
        crate::redact::remember(&String::from_utf8_lossy(&value));
        Ok(value)
    }

    async fn read(&self, r: &SecretKeyRef) -> Result<Vec<u8>, TargetError> {
        let ns = self.namespace();
        if let Some(other) = r.namespace.as_deref().filter(|o| *o != ns) {
            return Err(config_error(format!(
                "Secret {other}/{} is in another namespace; Secrets are only read from the MorningCheck's own namespace {ns:?}",
                r.name
            )));
        }
        match self {
            SecretSource::Static { values, .. } => values
                .get(&(r.name.clone(), r.key.clone()))
                .cloned()
                .ok_or_else(|| config_error(format!("Secret {ns}/{} key {:?} was not given", r.name, r.key))),
            SecretSource::Kubernetes { client, .. } => {
                let api: Api<Secret> = Api::namespaced(client.clone(), ns);
                let secret = match api.get_opt(&r.name).await {
                    Ok(Some(s)) => s,
                    Ok(None) => return Err(config_error(format!("Secret {ns}/{} not found", r.name))),
                    Err(e) => return Err(kube_error(&e, &format!("get secret {ns}/{}", r.name))),
                };
                let data = secret.data.unwrap_or_default();
                data.get(&r.key)
                    .map(|b| b.0.clone())
                    .ok_or_else(|| config_error(format!("Secret {ns}/{} has no key {:?}", r.name, r.key)))
            }
        }
    }

    /// Reads one key as UTF-8 text, trimmed.
    pub async fn get_string(&self, r: &SecretKeyRef) -> Result<String, TargetError> {
        let bytes = self.get(r).await?;
        String::from_utf8(bytes).map(|s| s.trim().to_string()).map_err(|_| {
            config_error(format!("Secret {}/{} key {:?} is not UTF-8 text", self.namespace(), r.name, r.key))
        })
    }
}

/// How Kubernetes targets without a kubeconfig Secret are reached.
#[derive(Clone)]
pub enum LocalCluster {
    /// The controller's client for this MorningCheck: its namespace's ServiceAccount,
    /// impersonated, or the operator's own where the admin grants that.
    Client(kube::Client),
    /// `morningcheck run`: kubeconfig contexts; `None` is the current context. One client
    /// per context, shared by the run's targets: see [`LocalCluster::kubeconfig`].
    Kubeconfig { default_context: Option<String>, clients: Arc<tokio::sync::Mutex<ContextClients>> },
}

/// The clients of a run's kubeconfig contexts, by context name.
pub type ContextClients = std::collections::HashMap<Option<String>, kube::Client>;

impl LocalCluster {
    /// Kubeconfig contexts, `default_context` (or the current one) for targets naming none.
    pub fn kubeconfig(default_context: Option<String>) -> Self {
        Self::Kubeconfig { default_context, clients: Arc::default() }
    }
}

/// The environment the AWS credential chain reads: the process's own, or (built with the
/// `test-hooks` feature, for tests only) a given set of variables.
#[derive(Clone, Debug, Default)]
pub struct AwsEnv {
    #[cfg(feature = "test-hooks")]
    vars: Option<Vec<(String, String)>>,
}

impl AwsEnv {
    /// The process environment: what the controller and the CLI use.
    pub fn process() -> Self {
        Self::default()
    }

    /// These variables instead of the process environment.
    #[cfg(feature = "test-hooks")]
    pub fn vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { vars: Some(vars.into_iter().collect()) }
    }

    /// The loader, reading this environment.
    pub(crate) fn apply(&self, loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
        #[cfg(feature = "test-hooks")]
        if let Some(vars) = &self.vars {
            return loader.env(vars.iter().cloned().collect::<std::collections::HashMap<_, _>>().into());
        }
        loader
    }
}

/// Everything a run's collectors share.
#[derive(Clone)]
pub struct RunContext {
    pub now: Timestamp,
    pub deadline: Instant,
    pub secrets: SecretSource,
    pub local: LocalCluster,
    /// Overrides every Prometheus target's connect timeout (`morningcheck run --connect-timeout`).
    pub connect_timeout: Option<Duration>,
    /// The environment the AWS credential chain and region settings read.
    pub aws_env: AwsEnv,
    /// What the MorningCheck's namespace may use: checked before anything is sent.
    pub grants: crate::tenancy::Grants,
    /// Bounds the targets (and AWS regions) of the run checked at once: see [`in_flight`].
    pub in_flight: Arc<Semaphore>,
    /// What the previous runs know of each target's findings: the sinks keep the new ones.
    pub previous: Arc<KnownSet>,
    /// The spec's snoozes at this run's time.
    pub snoozes: Arc<Snoozes>,
}

impl RunContext {
    /// The outcome of target `name`: its findings compared with the previous run's and
    /// snoozed as the spec says.
    pub fn outcome(&self, name: &str, area: Area, cap: usize) -> TargetOutcome {
        TargetOutcome { sink: self.sink(name, area, cap), ..TargetOutcome::new(name, area, cap) }
    }

    /// A sink for part of target `name`, judged as [`RunContext::outcome`]'s, with the
    /// counters the previous run read of it.
    pub fn sink(&self, name: &str, area: Area, cap: usize) -> FindingSink {
        FindingSink::new(name, area, cap)
            .against(self.previous.target(name))
            .counting(self.previous.counters(name))
            .snoozing(Some(self.snoozes.clone()))
    }

    /// Where "since the previous run" begins: that run's start, or a day ago on a first
    /// run.
    pub fn window_start(&self) -> Timestamp {
        self.previous.taken_at().unwrap_or_else(|| self.now - jiff::SignedDuration::from_hours(24))
    }
}

/// Targets (AWS regions count one each) a run checks at once by default.
pub const TARGETS_IN_FLIGHT: usize = 16;

/// The bound of a run's targets in flight.
pub fn in_flight(n: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(n.max(1)))
}

/// Runs `fut` once the run has room for one more target in flight.
pub(crate) async fn limited<T>(ctx: &RunContext, fut: impl Future<Output = T>) -> T {
    let _permit = ctx.in_flight.acquire().await;
    fut.await
}

pub use crate::errors::{config_error, error, error_chain, kube_error, kube_transient};

/// Runs every target of the spec concurrently inside the run's deadline. The order of
/// the outcomes is the spec's: Kubernetes, Prometheus, then AWS regions.
pub async fn collect_all(spec: &MorningCheckSpec, ctx: &RunContext) -> Vec<TargetOutcome> {
    let t = &spec.targets;
    let kube = t.kubernetes.iter().map(|k| async move {
        guard(&k.name, Area::Kubernetes, ctx.deadline, limited(ctx, kubernetes::check(k, ctx)))
            .await
            .capped(k.critical.ceiling())
    });
    let prom = t.prometheus.iter().map(|p| async move {
        guard(&p.name, Area::Prometheus, ctx.deadline, limited(ctx, prometheus::check(p, ctx)))
            .await
            .capped(p.critical.ceiling())
    });
    let aws = t.aws.iter().map(|a| async move {
        let regions = ec2::check(a, ctx).instrument(info_span!("target", target = %a.name)).await;
        regions.into_iter().map(|o| o.capped(a.critical.ceiling())).collect::<Vec<_>>()
    });
    let (k, p, a) = tokio::join!(join_all(kube), join_all(prom), join_all(aws));
    k.into_iter().chain(p).chain(a.into_iter().flatten()).collect()
}

/// Backstop for a collector that overruns the deadline: its target is reported as timed
/// out instead of holding the run.
///
/// Every log line of the target's work (a client library's too) carries its name, in
/// the run's span, which names the MorningCheck.
async fn guard(name: &str, area: Area, deadline: Instant, fut: impl Future<Output = TargetOutcome>) -> TargetOutcome {
    let span = info_span!("target", target = %name);
    let out = match tokio::time::timeout_at(deadline, fut).instrument(span.clone()).await {
        Ok(o) => o,
        Err(_) => TargetOutcome::failed(
            name,
            area,
            error(ErrorTier::Unreachable, "run deadline exceeded before the target answered"),
        ),
    };
    span.in_scope(|| log_errors(&out));
    out
}

/// One warning line per target that had errors, its first error in short; all of them in
/// full at debug.
pub(crate) fn log_errors(out: &TargetOutcome) {
    let Some(first) = out.errors.first() else { return };
    let short = crate::clip::clip(&first.message, crate::clip::Limit::Chars(LOGGED_ERROR_CHARS));
    tracing::warn!(tier = ?first.tier, errors = out.errors.len(), error = %short, "target could not be fully checked");
    tracing::debug!(errors = ?out.errors, "target errors in full");
}

/// The first error of a target, as the warning line quotes it.
const LOGGED_ERROR_CHARS: usize = 300;
