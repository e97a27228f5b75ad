//! Placeholder, replaced by the EC2 issue.
use super::RunContext;
use crate::api::{Area, AwsTarget, ErrorTier};
use crate::evaluate::TargetOutcome;

pub async fn check(target: &AwsTarget, _ctx: &RunContext) -> Vec<TargetOutcome> {
    vec![TargetOutcome::failed(
        &target.name,
        Area::Aws,
        super::error(ErrorTier::Config, "EC2 checks are not built yet"),
    )]
}
