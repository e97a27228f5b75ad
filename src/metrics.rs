//! The operator's own metrics, served as OpenMetrics on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use kube::ResourceExt;

use crate::api::{Area, MorningCheck, RunReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub namespace: String,
    pub name: String,
    pub area: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub area: String,
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Every metric of the operator.
#[derive(Clone)]
pub struct Metrics {
    pub runs: Family<ResultLabels, Counter>,
    pub run_duration: Histogram,
    pub findings: Family<FindingLabels, Gauge>,
    pub target_errors: Family<TierLabels, Counter>,
    pub slack_deliveries: Family<OutcomeLabels, Counter>,
    pub last_success: Family<CheckLabels, Gauge<f64, AtomicU64>>,
    pub missed_schedules: Family<CheckLabels, Counter>,
    pub reconcile_errors: Family<ReasonLabels, Counter>,
    pub reconciles: Counter,
    /// The MorningChecks with series of their own, so a deleted one's can be removed.
    checks: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl Metrics {
    /// Creates the metrics and registers them under the `morningcheck` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            runs: Family::default(),
            run_duration: Histogram::new(exponential_buckets(0.25, 2.0, 12)),
            findings: Family::default(),
            target_errors: Family::default(),
            slack_deliveries: Family::default(),
            last_success: Family::default(),
            missed_schedules: Family::default(),
            reconcile_errors: Family::default(),
            reconciles: Counter::default(),
            checks: Arc::default(),
        };
        let r = registry.sub_registry_with_prefix("morningcheck");
        r.register("runs", "Completed runs by result", m.runs.clone());
        r.register("run_duration_seconds", "Duration of runs", m.run_duration.clone());
        r.register("findings", "Findings of the last run by MorningCheck, area and severity", m.findings.clone());
        r.register(
            "target_errors",
            "Targets that could not be checked, by area and error tier",
            m.target_errors.clone(),
        );
        r.register("slack_deliveries", "Slack deliveries by outcome", m.slack_deliveries.clone());
        r.register(
            "last_successful_run_timestamp_seconds",
            "Unix time the last run of a MorningCheck in which every target was checked finished (status.lastSuccessfulTime; its creation time before the first such run)",
            m.last_success.clone(),
        );
        r.register(
            "missed_schedules",
            "Slots skipped because they were missed by more than the starting deadline",
            m.missed_schedules.clone(),
        );
        r.register("reconcile_errors", "Reconcile errors by reason", m.reconcile_errors.clone());
        r.register("reconciles", "Reconciles started", m.reconciles.clone());
        m
    }

    /// Records a finished run: counters and the duration. The per-MorningCheck gauges
    /// follow the status ([`Metrics::observe_status`]).
    pub fn observe_run(&self, report: &RunReport) {
        let result = format!("{:?}", report.result);
        self.runs.get_or_create(&ResultLabels { result }).inc();
        self.run_duration.observe(report.duration_seconds);
        for t in &report.targets {
            for e in &t.errors {
                let labels = TierLabels { area: t.area.as_str().into(), tier: format!("{:?}", e.tier) };
                self.target_errors.get_or_create(&labels).inc();
            }
        }
    }

    /// Sets a MorningCheck's gauges from its status, on every reconcile: they agree with
    /// the status and survive a restart or failover. `created` stands in for the last
    /// success before the first one, so a check that never succeeds still alerts. A
    /// suspended MorningCheck has no last-success series: not running is intended.
    pub fn observe_status(&self, mc: &MorningCheck) {
        let (namespace, name) = (mc.namespace().unwrap_or_default(), mc.name_any());
        let check = CheckLabels { namespace: namespace.clone(), name: name.clone() };
        self.checks.lock().unwrap_or_else(|e| e.into_inner()).insert((namespace.clone(), name.clone()));
        let status = mc.status.clone().unwrap_or_default();
        let created = mc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        match status.last_successful_time.as_ref().map(|t| t.0).or(created) {
            Some(at) if !mc.spec.suspend => {
                self.last_success.get_or_create(&check).set(at.as_millisecond() as f64 / 1000.0);
            }
            _ => {
                self.last_success.remove(&check);
            }
        }
        let Some(run) = &status.last_run else { return };
        for area in AREAS {
            let counts = run.areas.get(area.as_str()).copied().unwrap_or_default();
            for (severity, n) in [("critical", counts.critical), ("warning", counts.warning), ("info", counts.info)] {
                self.findings.get_or_create(&finding_labels(&namespace, &name, area, severity)).set(n as i64);
            }
        }
    }

    /// Removes the series of every MorningCheck that no longer `exists`.
    pub fn retain(&self, exists: impl Fn(&str, &str) -> bool) {
        let mut checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        checks.retain(|(namespace, name)| {
            if exists(namespace, name) {
                return true;
            }
            let check = CheckLabels { namespace: namespace.clone(), name: name.clone() };
            self.last_success.remove(&check);
            self.missed_schedules.remove(&check);
            for area in AREAS {
                for severity in ["critical", "warning", "info"] {
                    self.findings.remove(&finding_labels(namespace, name, area, severity));
                }
            }
            false
        });
    }

    pub fn slack(&self, outcome: &str) {
        self.slack_deliveries.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
    }
}

const AREAS: [Area; 3] = [Area::Kubernetes, Area::Prometheus, Area::Aws];

fn finding_labels(namespace: &str, name: &str, area: Area, severity: &str) -> FindingLabels {
    FindingLabels {
        namespace: namespace.into(),
        name: name.into(),
        area: area.as_str().into(),
        severity: severity.into(),
    }
}

/// Renders the registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}
