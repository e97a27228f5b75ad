//! EC2 checks against the test environment's moto server, and against a local replay of
//! recorded AWS answers for what moto cannot produce.
//!
//! Only moto covers: paging over many reservations (moto pages `DescribeInstances` by
//! reservation) in two regions, exact counts of running, stopped and terminated instances
//! (moto never leaves an instance pending, stopping or shutting-down), the tag and state
//! filters, web identity (IRSA) through moto's STS `AssumeRoleWithWebIdentity`, `roleArn`
//! assumed across accounts, a region the endpoint cannot serve, and no credentials at all.
//!
//! Only the replay covers: impaired status checks, `insufficient-data` past the grace,
//! scheduled events and completed ones (moto reports every check `ok` and never schedules
//! events), the join of statuses with the tag-filtered instances, throttling retried with
//! backoff and throttling that outlasts the retries, access denied on one action, rejected
//! credentials, and a region that overruns the run's deadline.
//!
//! moto is shared with other tests: every test run tags what it plants with a random
//! `morningcheck-test` value and filters on it, and plants into accounts of its own (moto
//! keeps one backend per account; an assumed role reaches it). Runs never see each other's
//! instances, and moto stays fast: its tag filter is quadratic in a region's tags.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use jiff::Timestamp;
use morningcheck::api::{AwsTarget, ErrorTier, Severity};
use morningcheck::collect::{LocalCluster, RunContext, SecretSource, ec2};
use morningcheck::evaluate::TargetOutcome;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio::time::Instant;

const TAG: &str = "morningcheck-test";
const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.\
    eyJpc3MiOiJodHRwczovL2t1YmVybmV0ZXMuZGVmYXVsdC5zdmMiLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWM6bWMiLCJhdWQiOlsic3RzLmFtYXpvbmF3cy5jb20iXX0.\
    c2lnbmF0dXJl";

fn moto() -> String {
    common::var("MC_MOTO_URL")
}

fn target(v: Value) -> AwsTarget {
    serde_json::from_value(v).unwrap()
}

fn ctx_at(now: Timestamp, secs: u64, env: &[(&str, &str)]) -> RunContext {
    morningcheck::install_crypto_provider();
    RunContext {
        now,
        deadline: Instant::now() + Duration::from_secs(secs),
        secrets: SecretSource::Static { namespace: "default".into(), values: Arc::new(HashMap::new()) },
        local: LocalCluster::kubeconfig(None),
        connect_timeout: None,
        aws_env: morningcheck::collect::AwsEnv::vars(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
        grants: morningcheck::tenancy::Grants::unrestricted(),
        in_flight: morningcheck::collect::in_flight(morningcheck::collect::TARGETS_IN_FLIGHT),
        previous: Default::default(),
        snoozes: Default::default(),
    }
}

fn ctx(env: &[(&str, &str)]) -> RunContext {
    ctx_at(Timestamp::now(), 120, env)
}

/// Plain keys in the environment the chain reads (never in the spec); no IMDS probing.
const STATIC_ENV: &[(&str, &str)] =
    &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_EC2_METADATA_DISABLED", "true")];

/// A 12-digit account id of this run's own.
fn fresh_account() -> String {
    format!("{:012}", 100_000_000_000 + rand::random::<u64>() % 800_000_000_000)
}

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

fn fact(o: &TargetOutcome, key: &str) -> u64 {
    *o.facts.get(key).unwrap_or_else(|| panic!("{}: no fact {key} in {:?} (errors {:?})", o.name, o.facts, o.errors))
}

fn assert_no_errors(outcomes: &[TargetOutcome]) {
    for o in outcomes {
        assert!(o.errors.is_empty(), "{}: {:?}", o.name, o.errors);
    }
}

// ---------------------------------------------------------------------------------------
// Planting into moto (test-local config with dummy keys; never the code under test)

fn plant_config(region: &str, creds: Credentials) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new(region.to_string()))
        .endpoint_url(moto())
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .build()
}

fn dummy_keys() -> Credentials {
    Credentials::new("testing", "testing", None, None, "plant")
}

/// Keys of a role in `account`: moto files what they create under that account.
async fn assumed_keys(account: &str) -> Credentials {
    let sts = aws_sdk_sts::Client::new(&plant_config("eu-west-1", dummy_keys()));
    let out = sts
        .assume_role()
        .role_arn(role(account, "planter"))
        .role_session_name("planter")
        .send()
        .await
        .expect("assume role to plant");
    let c = out.credentials().expect("credentials");
    Credentials::new(c.access_key_id(), c.secret_access_key(), Some(c.session_token().to_string()), None, "plant")
}

/// What was planted in one region, in launch order.
struct Planted {
    region: &'static str,
    reservations: usize,
    /// (instance id, env tag)
    ids: Vec<(String, &'static str)>,
    stopped: usize,
    terminated: usize,
}

impl Planted {
    fn running(&self) -> u64 {
        (self.ids.len() - self.stopped - self.terminated) as u64
    }

    /// Stopped and terminated instances tagged `env=prod`.
    fn prod(&self) -> (u64, u64) {
        let prod = |r: std::ops::Range<usize>| self.ids[r].iter().filter(|(_, env)| *env == "prod").count() as u64;
        (prod(0..self.stopped), prod(self.stopped..self.stopped + self.terminated))
    }
}

/// One reservation of `count` instances, tagged with the run's tag, a Name and an env.
async fn run_reservation(client: &aws_sdk_ec2::Client, run: &str, n: usize, count: i32) -> Vec<(String, &'static str)> {
    let env = if n.is_multiple_of(3) { "prod" } else { "staging" };
    let tags = [(TAG, run.to_string()), ("Name", format!("web-{n}")), ("env", env.to_string())];
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()))
        .build();
    let out = client
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .tag_specifications(spec)
        .send()
        .await
        .expect("run instances");
    out.instances().iter().map(|i| (i.instance_id().unwrap().to_string(), env)).collect()
}

/// Plants `reservations` × `per` instances, stops the first `stopped` and terminates the
/// next `terminated`.
async fn plant(
    creds: Credentials,
    run: &str,
    region: &'static str,
    reservations: usize,
    per: i32,
    stopped: usize,
    terminated: usize,
) -> Planted {
    let client = aws_sdk_ec2::Client::new(&plant_config(region, creds));
    let batches: Vec<_> = futures::stream::iter(0..reservations)
        .map(|n| {
            let client = client.clone();
            async move { (n, run_reservation(&client, run, n, per).await) }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut batches = batches;
    batches.sort_by_key(|(n, _)| *n);
    let ids: Vec<(String, &'static str)> = batches.into_iter().flat_map(|(_, ids)| ids).collect();
    let just_ids = |r: std::ops::Range<usize>| ids[r].iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    for chunk in just_ids(0..stopped).chunks(100) {
        client.stop_instances().set_instance_ids(Some(chunk.to_vec())).send().await.expect("stop");
    }
    for chunk in just_ids(stopped..stopped + terminated).chunks(100) {
        client.terminate_instances().set_instance_ids(Some(chunk.to_vec())).send().await.expect("terminate");
    }
    Planted { region, reservations, ids, stopped, terminated }
}

/// This run's instances in one account.
struct Fleet {
    account: String,
    run: String,
    regions: Vec<Planted>,
}

impl Fleet {
    /// The role the checks assume to reach the fleet's account.
    fn role(&self) -> String {
        role(&self.account, "morningcheck")
    }
}

/// 1,050 instances over 420 reservations in two regions.
async fn fleet() -> &'static Fleet {
    static FLEET: OnceCell<Fleet> = OnceCell::const_new();
    FLEET
        .get_or_init(|| async {
            let (account, run) = (fresh_account(), format!("{:08x}", rand::random::<u32>()));
            let keys = assumed_keys(&account).await;
            let (a, b) = tokio::join!(
                plant(keys.clone(), &run, "eu-west-1", 210, 3, 123, 45),
                plant(keys, &run, "us-east-2", 210, 2, 17, 60),
            );
            Fleet { account, run, regions: vec![a, b] }
        })
        .await
}

/// A small fleet in eu-north-1 of another account, for the credential paths: the default
/// account (plain keys) has nothing there.
async fn small_fleet() -> &'static Fleet {
    static SMALL: OnceCell<Fleet> = OnceCell::const_new();
    SMALL
        .get_or_init(|| async {
            let (account, run) = (fresh_account(), format!("{:08x}", rand::random::<u32>()));
            let planted = plant(assumed_keys(&account).await, &run, "eu-north-1", 3, 3, 2, 1).await;
            Fleet { account, run, regions: vec![planted] }
        })
        .await
}

fn assert_counts(o: &TargetOutcome, p: &Planted) {
    assert_eq!(o.scope.as_deref(), Some(p.region));
    assert_eq!(fact(o, "instancesRunning"), p.running(), "{}", o.name);
    assert_eq!(fact(o, "instancesStopped"), p.stopped as u64, "{}", o.name);
    assert_eq!(fact(o, "instancesTerminated"), p.terminated as u64, "{}", o.name);
    for none in ["instancesPending", "instancesStopping", "instancesShuttingDown"] {
        assert_eq!(fact(o, none), 0, "{}: {none}", o.name);
    }
    assert_eq!(fact(o, "instancesTotal"), p.ids.len() as u64, "{}", o.name);
}

// ---------------------------------------------------------------------------------------
// moto

#[tokio::test]
async fn moto_counts_every_state_over_many_pages_in_two_regions() {
    let fleet = fleet().await;
    let t = target(json!({
        "name": "fleet", "regions": ["eu-west-1", "us-east-2"], "endpointUrl": moto(), "roleArn": fleet.role(),
        "tags": {TAG: fleet.run},
    }));
    let outcomes = ec2::check(&t, &ctx(STATIC_ENV)).await;
    assert_no_errors(&outcomes);
    assert_eq!(outcomes.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["fleet/eu-west-1", "fleet/us-east-2"]);
    let total: usize = fleet.regions.iter().map(|p| p.ids.len()).sum();
    assert!(total >= 1000, "{total} instances planted");
    for (o, p) in outcomes.iter().zip(&fleet.regions) {
        assert_counts(o, p);
        // moto pages by reservation: every page but the last is full.
        let pages = p.reservations.div_ceil(ec2::INSTANCES_PAGE_SIZE as usize) as u64;
        assert!(pages > 1);
        assert_eq!(fact(o, "describeInstancesPages"), pages, "{}", o.name);
        assert!(fact(o, "describeInstanceStatusPages") >= 1);
        // Stopped is intended unless the spec says otherwise; moto's checks are all ok.
        assert_eq!(o.sink.counts().total, 0, "{}: {:?}", o.name, o.sink);
    }
}

#[tokio::test]
async fn moto_reports_stopped_instances_only_when_asked() {
    let fleet = fleet().await;
    let t = target(json!({
        "name": "fleet", "regions": ["eu-west-1", "us-east-2"], "endpointUrl": moto(), "roleArn": fleet.role(),
        "tags": {TAG: fleet.run}, "reportStopped": true,
    }));
    let outcomes = ec2::check(&t, &ctx(STATIC_ENV)).await;
    assert_no_errors(&outcomes);
    for (o, p) in outcomes.into_iter().zip(&fleet.regions) {
        let counts = o.sink.counts();
        assert_eq!((counts.total, counts.warning), (p.stopped as u64, p.stopped as u64), "{}", o.name);
        let (kept, _, ids) = o.sink.into_parts();
        assert_eq!(ids.len(), p.stopped);
        assert_eq!(kept.len(), p.stopped.min(20), "findings are cut, counts are not");
        let stopped: Vec<&str> = p.ids[..p.stopped].iter().map(|(id, _)| id.as_str()).collect();
        for f in &kept {
            assert_eq!((f.check.as_str(), f.severity), ("InstanceStopped", Severity::Warning));
            let (id, name) = f.object.split_once(' ').expect("object is `id (Name)`");
            assert!(stopped.contains(&id), "{id} was not stopped");
            assert!(name.starts_with("(web-") && name.ends_with(')'), "{}", f.object);
            assert!(f.message.starts_with("stopped for "), "{}", f.message);
            assert!(f.message.contains(&format!("t3.micro in {}", p.region)), "{}", f.message);
            assert!(f.since.is_some(), "the stop time comes from the transition reason");
        }
    }
}

#[tokio::test]
async fn moto_filters_by_tag_and_state() {
    let fleet = fleet().await;
    let t = target(json!({
        "name": "prod", "regions": ["eu-west-1", "us-east-2"], "endpointUrl": moto(), "roleArn": fleet.role(),
        "tags": {TAG: fleet.run, "env": "prod"}, "instanceStates": ["stopped", "terminated"],
    }));
    let outcomes = ec2::check(&t, &ctx(STATIC_ENV)).await;
    assert_no_errors(&outcomes);
    for (o, p) in outcomes.iter().zip(&fleet.regions) {
        let (stopped, terminated) = p.prod();
        assert!(stopped > 0 && terminated > 0);
        assert_eq!(fact(o, "instancesStopped"), stopped, "{}", o.name);
        assert_eq!(fact(o, "instancesTerminated"), terminated, "{}", o.name);
        assert_eq!(fact(o, "instancesRunning"), 0, "{}", o.name);
        assert_eq!(fact(o, "instancesTotal"), stopped + terminated, "{}", o.name);
    }
}

#[tokio::test]
async fn moto_irsa_web_identity_only() {
    let small = small_fleet().await;
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), JWT).unwrap();
    let irsa_role = role(&small.account, "morningcheck-irsa");
    let moto = moto();
    // What EKS injects for IRSA, plus the endpoint and region; no keys anywhere.
    let env = [
        ("AWS_ROLE_ARN", irsa_role.as_str()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.path().to_str().unwrap()),
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_REGION", "eu-north-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let t = target(json!({"name": "irsa", "regions": ["eu-north-1"], "tags": {TAG: small.run}}));
    let outcomes = ec2::check(&t, &ctx(&env)).await;
    assert_no_errors(&outcomes);
    assert_counts(&outcomes[0], &small.regions[0]);

    // The same check with plain keys sees the default account, where nothing has this
    // tag: the instances above were reached through the web identity role only.
    let t = target(json!({"name": "plain", "regions": ["eu-north-1"], "endpointUrl": moto, "tags": {TAG: small.run}}));
    let plain = ec2::check(&t, &ctx(STATIC_ENV)).await;
    assert_no_errors(&plain);
    assert_eq!(fact(&plain[0], "instancesTotal"), 0);

    // A token file that is not there: no credentials, said so.
    let gone = token.path().with_extension("gone");
    let env = [
        ("AWS_ROLE_ARN", irsa_role.as_str()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", gone.to_str().unwrap()),
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let t = target(json!({"name": "irsa", "regions": ["eu-north-1"], "tags": {TAG: small.run}}));
    let failed = ec2::check(&t, &ctx(&env)).await;
    assert_eq!(failed[0].errors.len(), 1, "{:?}", failed[0].errors);
    assert_eq!(failed[0].errors[0].tier, ErrorTier::Unauthorized);
    assert!(failed[0].errors[0].message.starts_with("no AWS credentials: "), "{}", failed[0].errors[0].message);
}

#[tokio::test]
async fn moto_role_arn_is_assumed_on_top_of_the_chain() {
    let small = small_fleet().await;
    let t = target(json!({
        "name": "cross", "regions": ["eu-north-1"], "endpointUrl": moto(), "tags": {TAG: small.run},
        "roleArn": role(&small.account, "morningcheck-cross"), "externalId": "morning",
    }));
    let outcomes = ec2::check(&t, &ctx(STATIC_ENV)).await;
    assert_no_errors(&outcomes);
    assert_counts(&outcomes[0], &small.regions[0]);
    // A role in another account sees none of them.
    let mut other = t.clone();
    other.role_arn = Some(role(&fresh_account(), "morningcheck-cross"));
    let outcomes = ec2::check(&other, &ctx(STATIC_ENV)).await;
    assert_no_errors(&outcomes);
    assert_eq!(fact(&outcomes[0], "instancesTotal"), 0);
}

#[tokio::test]
async fn moto_a_failing_region_never_hides_the_other() {
    let fleet = fleet().await;
    // moto has no backend for a region that does not exist and answers 500.
    let t = target(json!({
        "name": "mixed", "regions": ["eu-west-1", "moon-1"], "endpointUrl": moto(), "roleArn": fleet.role(), "tags": {TAG: fleet.run},
    }));
    // An endpoint nobody listens on: the whole target is unreachable.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down =
        target(json!({"name": "down", "regions": ["eu-west-1"], "endpointUrl": format!("http://127.0.0.1:{port}")}));
    let c = ctx(STATIC_ENV);
    let (mixed, down) = tokio::join!(ec2::check(&t, &c), ec2::check(&down, &c));

    assert!(mixed[0].errors.is_empty(), "{:?}", mixed[0].errors);
    assert_counts(&mixed[0], &fleet.regions[0]);
    let moon = &mixed[1];
    assert_eq!((moon.name.as_str(), moon.scope.as_deref()), ("mixed/moon-1", Some("moon-1")));
    assert_eq!(moon.errors.len(), 1, "{:?}", moon.errors);
    assert_eq!(moon.errors[0].tier, ErrorTier::Api, "{:?}", moon.errors);
    assert_eq!(moon.errors[0].scope.as_deref(), Some("moon-1"));
    assert_eq!(moon.errors[0].message, "ec2:DescribeInstanceStatus: HTTP 500");
    assert!(!moon.facts.contains_key("instancesTotal"), "no counts from a failed region");

    assert_eq!(down[0].errors.len(), 1, "{:?}", down[0].errors);
    let e = &down[0].errors[0];
    assert_eq!(e.tier, ErrorTier::Unreachable, "{e:?}");
    assert!(e.message.contains("ec2:DescribeInstanceStatus") && e.message.contains("cannot reach"), "{}", e.message);
}

#[tokio::test]
async fn moto_without_credentials_is_unauthorized_per_region() {
    let t = target(json!({"name": "nokeys", "regions": ["eu-west-1", "us-east-2"], "endpointUrl": moto()}));
    let outcomes = ec2::check(&t, &ctx(&[("AWS_EC2_METADATA_DISABLED", "true")])).await;
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert_eq!(o.errors.len(), 1, "{}: {:?}", o.name, o.errors);
        let e = &o.errors[0];
        assert_eq!(e.tier, ErrorTier::Unauthorized, "{e:?}");
        assert!(e.message.starts_with("no AWS credentials: "), "{}", e.message);
        assert_eq!(e.scope, o.scope);
    }
}

// ---------------------------------------------------------------------------------------
// Replay of recorded AWS answers

/// Recorded `DescribeInstanceStatus` (times relative to [`replay_now`]). `i-0filtered`
/// is impaired but outside the target's tags, so `DescribeInstances` never returns it.
const STATUS_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>3be1508e-c444-4fef-89cc-0b1223c4f02f</requestId>
  <instanceStatusSet>
    <item>
      <instanceId>i-0impaired000001</instanceId>
      <availabilityZone>eu-west-1a</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>impaired</status>
        <details><item><name>reachability</name><status>failed</status><impairedSince>2026-11-24T05:30:00.000Z</impairedSince></item></details>
      </systemStatus>
      <instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>
    </item>
    <item>
      <instanceId>i-0retire0000002</instanceId>
      <availabilityZone>eu-west-1b</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></systemStatus>
      <instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>
      <eventsSet>
        <item>
          <instanceEventId>instance-event-0d59937288b749b32</instanceEventId>
          <code>instance-retirement</code>
          <description>The instance is running on degraded hardware</description>
          <notBefore>2026-11-27T00:00:00.000Z</notBefore>
        </item>
        <item>
          <instanceEventId>instance-event-0a1b2c3d4e5f60718</instanceEventId>
          <code>system-maintenance</code>
          <description>[Completed] Network maintenance</description>
          <notBefore>2026-11-10T00:00:00.000Z</notBefore>
          <notAfter>2026-11-10T04:00:00.000Z</notAfter>
        </item>
      </eventsSet>
    </item>
    <item>
      <instanceId>i-0reboot0000003</instanceId>
      <availabilityZone>eu-west-1a</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></systemStatus>
      <instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>
      <eventsSet>
        <item>
          <instanceEventId>instance-event-09d7e6f5a4b3c2d10</instanceEventId>
          <code>system-reboot</code>
          <description>scheduled reboot</description>
          <notBefore>2026-12-15T02:00:00.000Z</notBefore>
          <notAfter>2026-12-15T04:00:00.000Z</notAfter>
        </item>
      </eventsSet>
    </item>
    <item>
      <instanceId>i-0nodata0000004</instanceId>
      <availabilityZone>eu-west-1c</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></systemStatus>
      <instanceStatus><status>insufficient-data</status>
        <details><item><name>reachability</name><status>insufficient-data</status><impairedSince>2026-11-24T05:00:00.000Z</impairedSince></item></details>
      </instanceStatus>
    </item>
    <item>
      <instanceId>i-0fresh00000005</instanceId>
      <availabilityZone>eu-west-1c</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>insufficient-data</status><details><item><name>reachability</name><status>insufficient-data</status></item></details></systemStatus>
      <instanceStatus><status>insufficient-data</status><details><item><name>reachability</name><status>insufficient-data</status></item></details></instanceStatus>
    </item>
    <item>
      <instanceId>i-0stopped000006</instanceId>
      <availabilityZone>eu-west-1a</availabilityZone>
      <instanceState><code>80</code><name>stopped</name></instanceState>
      <systemStatus><status>not-applicable</status></systemStatus>
      <instanceStatus><status>not-applicable</status></instanceStatus>
    </item>
    <item>
      <instanceId>i-0stopevent0007</instanceId>
      <availabilityZone>eu-west-1b</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>ok</status></systemStatus>
      <instanceStatus><status>ok</status></instanceStatus>
      <eventsSet>
        <item>
          <instanceEventId>instance-event-07e8f9a0b1c2d3e4f</instanceEventId>
          <code>instance-stop</code>
          <description>The instance is running on degraded hardware</description>
          <notBefore>2026-12-20T00:00:00.000Z</notBefore>
        </item>
      </eventsSet>
    </item>
    <item>
      <instanceId>i-0filtered00008</instanceId>
      <availabilityZone>eu-west-1a</availabilityZone>
      <instanceState><code>16</code><name>running</name></instanceState>
      <systemStatus><status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details></systemStatus>
      <instanceStatus><status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details></instanceStatus>
    </item>
  </instanceStatusSet>
</DescribeInstanceStatusResponse>"#;

fn instance_xml(
    id: &str,
    name: Option<&str>,
    state: (u32, &str),
    kind: &str,
    az: &str,
    launch: &str,
    reason: &str,
) -> String {
    let name = name.map(|n| format!("<item><key>Name</key><value>{n}</value></item>")).unwrap_or_default();
    format!(
        "<item><instanceId>{id}</instanceId><imageId>ami-0abcdef1234567890</imageId>\
         <instanceState><code>{}</code><name>{}</name></instanceState><reason>{reason}</reason>\
         <instanceType>{kind}</instanceType><launchTime>{launch}</launchTime>\
         <placement><availabilityZone>{az}</availabilityZone><tenancy>default</tenancy></placement>\
         <tagSet>{name}<item><key>env</key><value>prod</value></item></tagSet></item>",
        state.0, state.1
    )
}

/// Recorded `DescribeInstances` of the same fleet, filtered on `env=prod`.
fn instances_xml() -> String {
    const RUNNING: (u32, &str) = (16, "running");
    let first = [
        instance_xml(
            "i-0impaired000001",
            Some("db-1"),
            RUNNING,
            "r6g.xlarge",
            "eu-west-1a",
            "2026-10-01T08:00:00.000Z",
            "",
        ),
        instance_xml(
            "i-0retire0000002",
            Some("web-2"),
            RUNNING,
            "m5.large",
            "eu-west-1b",
            "2026-09-01T08:00:00.000Z",
            "",
        ),
        instance_xml("i-0reboot0000003", None, RUNNING, "m5.large", "eu-west-1a", "2026-09-01T08:00:00.000Z", ""),
    ]
    .concat();
    let second = [
        instance_xml(
            "i-0nodata0000004",
            Some("batch-4"),
            RUNNING,
            "c6i.2xlarge",
            "eu-west-1c",
            "2026-11-01T08:00:00.000Z",
            "",
        ),
        instance_xml(
            "i-0fresh00000005",
            Some("fresh-5"),
            RUNNING,
            "t3.micro",
            "eu-west-1c",
            "2026-11-24T06:58:00.000Z",
            "",
        ),
        instance_xml(
            "i-0stopped000006",
            Some("old-6"),
            (80, "stopped"),
            "t3.small",
            "eu-west-1a",
            "2026-08-01T08:00:00.000Z",
            "User initiated (2026-11-20 09:00:00 GMT)",
        ),
        instance_xml(
            "i-0stopevent0007",
            Some("app-7"),
            RUNNING,
            "m5.large",
            "eu-west-1b",
            "2026-09-01T08:00:00.000Z",
            "",
        ),
    ]
    .concat();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
  <reservationSet>
    <item><reservationId>r-1234567890abcdef0</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>{first}</instancesSet></item>
    <item><reservationId>r-0fedcba0987654321</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>{second}</instancesSet></item>
  </reservationSet>
</DescribeInstancesResponse>"#
    )
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
         <Message>{message}</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
    )
}

/// What the replay answers, chosen by the region the request was signed for.
#[derive(Default)]
struct Replay {
    /// (region, action) of every request, in order.
    calls: Mutex<Vec<(String, String)>>,
}

impl Replay {
    fn calls(&self, region: &str, action: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|(r, a)| r == region && a == action).count()
    }
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml;charset=UTF-8")], body).into_response()
}

/// The region of a SigV4 request: `Credential=AKID/20261124/<region>/ec2/aws4_request`.
fn signed_region(headers: &HeaderMap) -> String {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    auth.split("Credential=").nth(1).and_then(|c| c.split('/').nth(2)).unwrap_or_default().to_string()
}

async fn answer(State(replay): State<Arc<Replay>>, headers: HeaderMap, body: String) -> Response {
    let region = signed_region(&headers);
    let action = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let nth = {
        let mut calls = replay.calls.lock().unwrap();
        calls.push((region.clone(), action.clone()));
        calls.iter().filter(|(r, a)| *r == region && *a == action).count()
    };
    let status_call = action == "DescribeInstanceStatus";
    // EC2 answers throttling with 503 and RequestLimitExceeded.
    let throttled =
        || xml(StatusCode::SERVICE_UNAVAILABLE, error_xml("RequestLimitExceeded", "Request limit exceeded."));
    match region.as_str() {
        "us-east-1" if nth <= 2 => throttled(),
        "ap-south-1" if status_call => throttled(),
        "eu-central-1" if status_call => xml(
            StatusCode::FORBIDDEN,
            error_xml(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/mc/x \
                 is not authorized to perform: ec2:DescribeInstanceStatus because no identity-based policy allows \
                 the ec2:DescribeInstanceStatus action. Encoded authorization failure message: 6Zk1bWNo",
            ),
        ),
        "us-west-2" => xml(
            StatusCode::UNAUTHORIZED,
            error_xml("AuthFailure", "AWS was not able to validate the provided access credentials"),
        ),
        "sa-east-1" => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            xml(StatusCode::OK, String::new())
        }
        _ if status_call => xml(StatusCode::OK, STATUS_XML.to_string()),
        _ => xml(StatusCode::OK, instances_xml()),
    }
}

async fn replay_server() -> (String, Arc<Replay>) {
    let replay = Arc::new(Replay::default());
    let app = Router::new().fallback(answer).with_state(replay.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, replay)
}

fn replay_now() -> Timestamp {
    "2026-11-24T07:00:00Z".parse().unwrap()
}

fn replay_target(url: &str, regions: &[&str]) -> AwsTarget {
    target(json!({
        "name": "replay", "regions": regions, "endpointUrl": url, "tags": {"env": "prod"}, "reportStopped": true,
    }))
}

#[tokio::test]
async fn replay_status_checks_and_scheduled_events() {
    let (url, replay) = replay_server().await;
    let outcomes = ec2::check(&replay_target(&url, &["eu-west-1"]), &ctx_at(replay_now(), 60, STATIC_ENV)).await;
    assert_no_errors(&outcomes);
    let o = outcomes.into_iter().next().unwrap();
    assert_eq!(fact(&o, "instancesRunning"), 6);
    assert_eq!(fact(&o, "instancesStopped"), 1);
    assert_eq!(fact(&o, "instancesTotal"), 7);
    let (findings, counts, _) = o.sink.into_parts();
    let got: Vec<(&str, Severity, &str)> =
        findings.iter().map(|f| (f.check.as_str(), f.severity, f.object.as_str())).collect();
    assert_eq!(
        got,
        [
            ("ScheduledInstanceRetirement", Severity::Critical, "i-0retire0000002 (web-2)"),
            ("SystemStatusImpaired", Severity::Critical, "i-0impaired000001 (db-1)"),
            ("InstanceStatusInsufficientData", Severity::Warning, "i-0nodata0000004 (batch-4)"),
            ("InstanceStopped", Severity::Warning, "i-0stopped000006 (old-6)"),
            ("ScheduledInstanceStop", Severity::Warning, "i-0stopevent0007 (app-7)"),
            ("ScheduledSystemReboot", Severity::Warning, "i-0reboot0000003"),
        ],
        "no finding for the completed event, the fresh instance or the filtered-out one"
    );
    assert_eq!((counts.critical, counts.warning, counts.total), (2, 4, 6));
    let by_check = |c: &str| findings.iter().find(|f| f.check == c).unwrap();
    assert_eq!(
        by_check("ScheduledInstanceRetirement").message,
        "instance-retirement from 2026-11-27 00:00 UTC (in 2d17h): The instance is running on degraded hardware; \
         m5.large in eu-west-1b, running for 83d23h"
    );
    assert_eq!(
        by_check("SystemStatusImpaired").message,
        "system status check impaired for 1h30m (reachability failed); r6g.xlarge in eu-west-1a, running for 53d23h"
    );
    assert_eq!(by_check("SystemStatusImpaired").since.as_ref().unwrap().0.to_string(), "2026-11-24T05:30:00Z");
    assert!(by_check("InstanceStatusInsufficientData").message.contains("for 2h"));
    assert!(by_check("InstanceStopped").message.starts_with("stopped for 3d22h (User initiated"));
    assert!(by_check("ScheduledSystemReboot").message.contains("until 2026-12-15 04:00 UTC"));
    assert_eq!(replay.calls("eu-west-1", "DescribeInstanceStatus"), 1);
    assert_eq!(replay.calls("eu-west-1", "DescribeInstances"), 1);
}

#[tokio::test]
async fn replay_throttling_denial_and_bad_credentials_per_region() {
    let (url, replay) = replay_server().await;
    let regions = ["us-east-1", "ap-south-1", "eu-central-1", "us-west-2"];
    let outcomes = ec2::check(&replay_target(&url, &regions), &ctx_at(replay_now(), 120, STATIC_ENV)).await;
    let by_region: HashMap<&str, &TargetOutcome> = outcomes.iter().map(|o| (o.scope.as_deref().unwrap(), o)).collect();

    // Throttled twice, then answered: retried with backoff, nothing lost.
    let retried = by_region["us-east-1"];
    assert!(retried.errors.is_empty(), "{:?}", retried.errors);
    assert_eq!(fact(retried, "instancesTotal"), 7);
    assert_eq!(retried.sink.counts().total, 6);
    assert_eq!(replay.calls("us-east-1", "DescribeInstanceStatus"), 3);

    // Throttled on every attempt: the Throttled tier, after all of them.
    let throttled = by_region["ap-south-1"];
    assert_eq!(throttled.errors.len(), 1, "{:?}", throttled.errors);
    assert_eq!(throttled.errors[0].tier, ErrorTier::Throttled);
    assert!(throttled.errors[0].message.contains("RequestLimitExceeded"), "{}", throttled.errors[0].message);
    assert_eq!(replay.calls("ap-south-1", "DescribeInstanceStatus"), ec2::MAX_ATTEMPTS as usize);

    // Denied one action: named, and the instances are still counted.
    let denied = by_region["eu-central-1"];
    assert_eq!(denied.errors.len(), 1, "{:?}", denied.errors);
    let e = &denied.errors[0];
    assert_eq!(e.tier, ErrorTier::Forbidden);
    assert_eq!(
        e.message,
        "access denied: missing permission ec2:DescribeInstanceStatus (UnauthorizedOperation): You are not \
         authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/mc/x is not authorized \
         to perform: ec2:DescribeInstanceStatus because no identity-based policy allows the \
         ec2:DescribeInstanceStatus action."
    );
    assert_eq!(fact(denied, "instancesTotal"), 7);
    assert_eq!(denied.sink.counts().total, 1, "only the stopped instance, without statuses");
    assert_eq!(replay.calls("eu-central-1", "DescribeInstanceStatus"), 1, "access denied is not retried");

    // Rejected credentials: Unauthorized, and no second call that would fail the same way.
    let rejected = by_region["us-west-2"];
    assert_eq!(rejected.errors.len(), 1, "{:?}", rejected.errors);
    assert_eq!(rejected.errors[0].tier, ErrorTier::Unauthorized);
    assert!(rejected.errors[0].message.contains("AuthFailure"), "{}", rejected.errors[0].message);
    assert_eq!(replay.calls("us-west-2", "DescribeInstances"), 0);
}

#[tokio::test]
async fn replay_region_past_the_deadline_is_reported_alone() {
    let (url, _replay) = replay_server().await;
    let started = Instant::now();
    let outcomes =
        ec2::check(&replay_target(&url, &["eu-west-1", "sa-east-1"]), &ctx_at(replay_now(), 3, STATIC_ENV)).await;
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    assert_eq!(fact(&outcomes[0], "instancesTotal"), 7);
    let slow = &outcomes[1];
    assert_eq!(slow.name, "replay/sa-east-1");
    assert_eq!(slow.errors.len(), 1, "{:?}", slow.errors);
    assert_eq!(slow.errors[0].tier, ErrorTier::Unreachable);
    assert_eq!(slow.errors[0].scope.as_deref(), Some("sa-east-1"));
}
