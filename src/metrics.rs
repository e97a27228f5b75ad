//! The operator's own metrics, served as OpenMetrics on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::api::{RunReport, RunResult};

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
            "Unix time of the last run of a MorningCheck in which every target was checked",
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

    /// Records a finished run.
    pub fn observe_run(&self, namespace: &str, name: &str, report: &RunReport) {
        let result = format!("{:?}", report.result);
        self.runs.get_or_create(&ResultLabels { result }).inc();
        self.run_duration.observe(report.duration_seconds);
        for (area, counts) in &report.areas {
            for (severity, n) in [("critical", counts.critical), ("warning", counts.warning), ("info", counts.info)] {
                let labels = FindingLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                    area: area.clone(),
                    severity: severity.into(),
                };
                self.findings.get_or_create(&labels).set(n as i64);
            }
        }
        for t in &report.targets {
            for e in &t.errors {
                let labels = TierLabels { area: t.area.as_str().into(), tier: format!("{:?}", e.tier) };
                self.target_errors.get_or_create(&labels).inc();
            }
        }
        if report.result != RunResult::Failed {
            let at = report.finished_at.0.as_millisecond() as f64 / 1000.0;
            self.last_success.get_or_create(&CheckLabels { namespace: namespace.into(), name: name.into() }).set(at);
        }
    }

    pub fn slack(&self, outcome: &str) {
        self.slack_deliveries.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
    }
}

/// Renders the registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}
