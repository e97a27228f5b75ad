//! Placeholder, replaced by the Prometheus issue.
use super::RunContext;
use crate::api::{Area, ErrorTier, PrometheusTarget};
use crate::evaluate::TargetOutcome;

pub async fn check(target: &PrometheusTarget, _ctx: &RunContext) -> TargetOutcome {
    TargetOutcome::failed(
        &target.name,
        Area::Prometheus,
        super::error(ErrorTier::Config, "Prometheus checks are not built yet"),
    )
}
