//! EC2: instance states, status checks and scheduled events in every region of an AWS
//! target, the regions concurrently and each inside the run's deadline.
//!
//! Credentials come from the standard chain of aws-config (IRSA web identity, EKS Pod
//! Identity, environment, profile, IMDS), with `roleArn` optionally assumed on top through
//! STS. The chain's own STS calls (web identity) go to the first region's endpoint, or to
//! `AWS_ENDPOINT_URL(_STS)` when set; `endpointUrl` of the target overrides EC2 and the STS
//! of `roleArn`. [`RunContext::aws_env`] replaces the process environment for the whole
//! chain; files (the web identity token) are still read from the real disk.
//!
//! Per region, statuses are paged first and only those that need attention are kept;
//! then instances are paged, counted by state and joined with those statuses, so that
//! findings name the instance and honour the tag filter (which `DescribeInstanceStatus`
//! does not support). Nothing else of the fleet stays in memory.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::SharedCredentialsProvider;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, InstanceStatus};
use futures::future::join_all;
use jiff::Timestamp;
use tokio::time::Instant;

use super::{RunContext, config_error, error};
use crate::api::{Area, AwsTarget, ErrorTier, TargetError};
use crate::evaluate::TargetOutcome;
use crate::evaluate::ec2 as eval;
use crate::net::remaining;

/// Attempts per call, the first included; throttling and transient errors are retried.
pub const MAX_ATTEMPTS: u32 = 5;
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `MaxResults` of DescribeInstances (AWS: 5–1000 instances; moto counts reservations).
pub const INSTANCES_PAGE_SIZE: i32 = 200;
/// `MaxResults` of DescribeInstanceStatus: only statuses needing attention are kept.
const STATUS_PAGE_SIZE: i32 = 1000;
/// Findings kept per region (counts are always complete).
const MAX_FINDINGS: usize = 20;
const SESSION_NAME: &str = "morningcheck";

/// Pinned so that an SDK upgrade never changes defaults silently.
fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Checks every region of one target; one outcome per region, named `<target>/<region>`.
pub async fn check(target: &AwsTarget, ctx: &RunContext) -> Vec<TargetOutcome> {
    let Some(first) = target.regions.first() else {
        return vec![TargetOutcome::failed(&target.name, Area::Aws, config_error("no regions to check"))];
    };
    // The policy first: a refused target loads no credentials and sends no request.
    if let Err(d) = ctx.grants.aws(target) {
        return target
            .regions
            .iter()
            .map(|r| {
                let mut out = TargetOutcome::failed(
                    &format!("{}/{r}", target.name),
                    Area::Aws,
                    super::outbound::denied(d.to_string()),
                );
                out.scope = Some(r.clone());
                out
            })
            .collect();
    }
    // Loading reads the environment and profile files only: credential problems show up
    // per region, at the first call.
    let base = shared_config(target, ctx, first).await;
    join_all(target.regions.iter().map(|r| super::limited(ctx, check_region(target, ctx, &base, r)))).await
}

fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Timeouts of one call, bounded by what is left of the run.
fn timeout_config(deadline: Instant) -> TimeoutConfig {
    let left = remaining(deadline);
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(left))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(left))
        .operation_timeout(left)
        .build()
}

/// The credential chain, retries and endpoint shared by the target's regions (and so
/// one credentials cache for all of them).
async fn shared_config(target: &AwsTarget, ctx: &RunContext, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(behavior_version())
        .region(Region::new(region.to_string()))
        .retry_config(retry_config())
        .timeout_config(timeout_config(ctx.deadline));
    loader = ctx.aws_env.apply(loader);
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let Some(role) = &target.role_arn else { return base };
    let mut assume = AssumeRoleProvider::builder(role).session_name(SESSION_NAME).configure(&base);
    if let Some(id) = &target.external_id {
        assume = assume.external_id(id);
    }
    let provider = SharedCredentialsProvider::new(assume.build().await);
    base.into_builder().credentials_provider(provider).build()
}

/// Filters of DescribeInstances: every tag (`tag:K`) and the wanted states.
pub fn instance_filters(target: &AwsTarget) -> Vec<Filter> {
    let tags = target.tags.iter().map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build());
    tags.chain(state_filter(target)).collect()
}

/// The `instance-state-name` filter, which DescribeInstanceStatus supports too.
fn state_filter(target: &AwsTarget) -> Option<Filter> {
    (!target.instance_states.is_empty())
        .then(|| Filter::builder().name("instance-state-name").set_values(Some(target.instance_states.clone())).build())
}

async fn check_region(target: &AwsTarget, ctx: &RunContext, base: &SdkConfig, region: &str) -> TargetOutcome {
    let name = format!("{}/{region}", target.name);
    let mut out = ctx.outcome(&name, Area::Aws, MAX_FINDINGS);
    out.scope = Some(region.to_string());
    let scan = Scan { client: client(base, region, ctx.deadline), target, now: ctx.now, region };
    // Backstop: what was found before the deadline is kept, with the timeout as error.
    if tokio::time::timeout_at(ctx.deadline, scan.run(&mut out)).await.is_err() {
        let e =
            error(ErrorTier::Unreachable, format!("region {region}: the run's deadline passed before EC2 answered"));
        out.errors.push(TargetError { scope: Some(region.to_string()), ..e });
    }
    tracing::debug!(region, facts = ?out.facts, errors = out.errors.len(), "ec2 region checked");
    super::log_errors(&out);
    out
}

fn client(base: &SdkConfig, region: &str, deadline: Instant) -> Client {
    let conf = aws_sdk_ec2::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .timeout_config(timeout_config(deadline))
        .build();
    Client::from_conf(conf)
}

struct Scan<'a> {
    client: Client,
    target: &'a AwsTarget,
    now: Timestamp,
    region: &'a str,
}

impl Scan<'_> {
    async fn run(&self, out: &mut TargetOutcome) {
        let attention = match self.statuses(out).await {
            Ok(a) => a,
            Err(e) => {
                // Instances are still worth counting when only this call is refused; any
                // other error would just repeat itself.
                let go_on = matches!(e.tier, ErrorTier::Forbidden | ErrorTier::BadRequest);
                out.errors.push(e);
                if !go_on {
                    return;
                }
                HashMap::new()
            }
        };
        if let Err(e) = self.instances(out, attention).await {
            out.errors.push(e);
        }
    }

    fn error<E>(&self, e: &SdkError<E, HttpResponse>, action: &str) -> TargetError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut err = crate::errors::sdk_error(e, action);
        if let (Some(role), ErrorTier::Unauthorized) = (&self.target.role_arn, err.tier) {
            err.message = format!("{} (assuming {role})", err.message);
        }
        err.scope = Some(self.region.to_string());
        err
    }

    /// Pages through the statuses; keeps, by instance id, those that may be findings.
    async fn statuses(&self, out: &mut TargetOutcome) -> Result<HashMap<String, InstanceStatus>, TargetError> {
        let mut keep = HashMap::new();
        let mut pages = self
            .client
            .describe_instance_status()
            .include_all_instances(true)
            .set_filters(state_filter(self.target).map(|f| vec![f]))
            .into_paginator()
            .page_size(STATUS_PAGE_SIZE)
            .send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(&e, "ec2:DescribeInstanceStatus"))?;
            count += 1;
            for s in page.instance_statuses.unwrap_or_default() {
                if let Some(id) = s.instance_id().filter(|_| eval::needs_attention(&s)) {
                    keep.insert(id.to_string(), s);
                }
            }
        }
        out.facts.insert("describeInstanceStatusPages".into(), count);
        Ok(keep)
    }

    /// Pages through the instances: counts by state, stopped instances when asked, and
    /// the findings of the statuses kept for them.
    async fn instances(
        &self,
        out: &mut TargetOutcome,
        mut attention: HashMap<String, InstanceStatus>,
    ) -> Result<(), TargetError> {
        let filters = instance_filters(self.target);
        let mut pages = self
            .client
            .describe_instances()
            .set_filters((!filters.is_empty()).then_some(filters))
            .into_paginator()
            .page_size(INSTANCES_PAGE_SIZE)
            .send();
        let (mut counts, mut count) = (eval::StateCounts::default(), 0);
        let grace = self.target.insufficient_data_grace_seconds;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(&e, "ec2:DescribeInstances"))?;
            count += 1;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                counts.add(i);
                if self.target.report_stopped {
                    out.sink.extend(eval::stopped_finding(i, self.now));
                }
                if let Some(s) = i.instance_id().and_then(|id| attention.remove(id)) {
                    out.sink.extend(eval::status_findings(&s, i, self.now, grace));
                }
            }
        }
        out.facts.insert("describeInstancesPages".into(), count);
        out.facts.extend(counts.facts().into_iter().map(|(k, v)| (k.to_string(), v)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_values(f: &[Filter]) -> Vec<(&str, Vec<&str>)> {
        f.iter().map(|f| (f.name().unwrap(), f.values().iter().map(String::as_str).collect())).collect()
    }

    #[test]
    fn filters_from_tags_and_states() {
        let mut t = AwsTarget { name: "a".into(), regions: vec!["eu-west-1".into()], ..Default::default() };
        assert!(instance_filters(&t).is_empty());
        t.tags.insert("env".into(), "prod".into());
        t.tags.insert("team".into(), "core".into());
        t.instance_states = vec!["running".into(), "stopped".into()];
        assert_eq!(
            names_and_values(&instance_filters(&t)),
            [
                ("tag:env", vec!["prod"]),
                ("tag:team", vec!["core"]),
                ("instance-state-name", vec!["running", "stopped"])
            ]
        );
    }

    #[test]
    fn timeouts_never_pass_the_deadline() {
        let t = timeout_config(Instant::now() + Duration::from_secs(2));
        assert!(t.operation_timeout().unwrap() <= Duration::from_secs(2));
        assert!(t.operation_attempt_timeout().unwrap() <= Duration::from_secs(2));
        let far = timeout_config(Instant::now() + Duration::from_secs(3600));
        assert_eq!(far.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(far.connect_timeout(), Some(CONNECT_TIMEOUT));
    }

    #[test]
    fn retries_are_explicit() {
        let r = retry_config();
        assert_eq!(r.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(r.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(r.max_backoff(), MAX_BACKOFF);
    }
}
