//! `morningcheck run`: the same checks once, from a laptop or a CronJob.

pub mod config;
pub mod input;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgMatches, Args, ValueEnum};
use kube::ResourceExt;
use tokio::time::Instant;

use crate::api::{AwsTarget, KubernetesTarget, MorningCheck, PrometheusTarget, RunReport, Severity};
use crate::collect::{LocalCluster, RunContext, SecretSource, collect_all};
use crate::evaluate::{RunMeta, Snoozes, build_report};
use crate::publish::{slack, text};
use config::{FileConfig, layer};

/// Exit codes, documented in the README.
pub mod exit {
    pub const HEALTHY: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const TARGET_FAILED: u8 = 2;
    /// Command line usage error.
    pub const USAGE: u8 = 64;
    /// Invalid manifest.
    pub const DATA: u8 = 65;
    /// A manifest file could not be read.
    pub const NO_INPUT: u8 = 66;
    /// The digest was not delivered: Slack refused it, it could not be sent (a missing
    /// Secret, a refused URL), or it was sent without an answer.
    pub const NOT_DELIVERED: u8 = 75;
    /// The config file is invalid.
    pub const CONFIG: u8 = 78;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Slack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warning,
    Critical,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  morningcheck run -f examples/morningcheck.yaml --dry-run     # check and print; post nothing to Slack
  morningcheck run -f examples/morningcheck.yaml
  morningcheck run -f check.yaml --context prod-us-east-1 --context prod-eu-west-1 -o json > report.json
  morningcheck run -f check.yaml --region us-east-1 --region eu-west-1 --fail-on critical
  morningcheck run -f check.yaml --output slack --dry-run      # print the Slack payload, post nothing

Exit codes: 0 healthy, 1 findings at or above --fail-on, 2 a target failed,
64 usage error, 65 invalid manifest, 66 unreadable file, 75 the Slack digest was not
delivered (refused, not sendable, or no answer after sending), 78 invalid config file.")]
pub struct RunArgs {
    /// MorningCheck manifest (YAML or JSON; every document of a multi-document file runs). `-` reads stdin.
    #[arg(short = 'f', long = "file", required = true)]
    pub files: Vec<PathBuf>,
    /// Kubeconfig context to check (repeatable); replaces the file's Kubernetes targets.
    #[arg(long = "context", env = "MORNINGCHECK_CONTEXT", value_delimiter = ',')]
    pub contexts: Vec<String>,
    /// Prometheus URL (repeatable): overrides the file's Prometheus URLs in order; extra ones are added.
    #[arg(long = "prometheus-url", env = "MORNINGCHECK_PROMETHEUS_URL", value_delimiter = ',')]
    pub prometheus_urls: Vec<String>,
    /// AWS region (repeatable): replaces the regions of the file's AWS targets (adds one if none).
    #[arg(long = "region", env = "MORNINGCHECK_REGION", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Slack webhook URL, instead of reading the spec's Secret.
    #[arg(long = "slack-webhook-url", env = "SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub slack_webhook_url: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, env = "MORNINGCHECK_OUTPUT", value_enum, default_value = "text")]
    pub output: Output,
    /// Never post to Slack.
    #[arg(long, env = "MORNINGCHECK_DRY_RUN")]
    pub dry_run: bool,
    /// Exit 1 when findings at or above this severity exist.
    #[arg(long, env = "MORNINGCHECK_FAIL_ON", value_enum)]
    pub fail_on: Option<FailOn>,
    /// Seconds the whole run may take, 5 to 3600 as the spec's timeoutSeconds (default: the spec's).
    #[arg(long, env = "MORNINGCHECK_TIMEOUT", value_parser = clap::value_parser!(u64).range(TIMEOUT_RANGE))]
    pub timeout: Option<u64>,
    /// Seconds to establish each connection to Prometheus, 1 to 300 as connectTimeoutSeconds.
    #[arg(long, env = "MORNINGCHECK_CONNECT_TIMEOUT", value_parser = clap::value_parser!(u64).range(CONNECT_TIMEOUT_RANGE))]
    pub connect_timeout: Option<u64>,
    /// Config file (default ~/.config/morningcheck/config.yaml when present).
    #[arg(long, env = "MORNINGCHECK_CONFIG")]
    pub config: Option<PathBuf>,
    /// More logs on stderr (-v info, -vv debug).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Bounds of `--timeout`, as `spec.timeoutSeconds`.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 5..=3600;
/// Bounds of `--connect-timeout`, as `connectTimeoutSeconds`.
pub const CONNECT_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=300;

fn bounded(key: &str, v: Option<u64>, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, String> {
    match v {
        Some(x) if !range.contains(&x) => {
            Err(format!("{key}: {x} is out of range: must be {} to {} seconds", range.start(), range.end()))
        }
        _ => Ok(v),
    }
}

/// Settings after layering flags, environment and the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub output: Output,
    pub dry_run: bool,
    pub fail_on: Option<FailOn>,
    pub timeout: Option<u64>,
    pub connect_timeout: Option<u64>,
    pub contexts: Vec<String>,
    pub prometheus_urls: Vec<String>,
    pub regions: Vec<String>,
    pub slack_webhook_url: Option<String>,
}

fn parse_enum<T: ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, true).map_err(|_| format!("invalid value {s:?}"))
}

/// Layers the config file under flags and environment.
pub fn settings(args: &RunArgs, m: &ArgMatches, file: FileConfig) -> Result<Settings, String> {
    let file_output = file.output.as_deref().map(parse_enum::<Output>).transpose()?;
    let output = layer(m, "output", args.output, file_output);
    let file_fail_on = file.fail_on.as_deref().map(parse_enum::<FailOn>).transpose()?;
    let fail_on = layer(m, "fail_on", args.fail_on, file_fail_on.map(Some));
    let file_timeout = bounded("timeout", file.timeout, TIMEOUT_RANGE)?;
    let file_connect_timeout = bounded("connectTimeout", file.connect_timeout, CONNECT_TIMEOUT_RANGE)?;
    Ok(Settings {
        output,
        dry_run: layer(m, "dry_run", args.dry_run, file.dry_run),
        fail_on,
        timeout: layer(m, "timeout", args.timeout, file_timeout.map(Some)),
        connect_timeout: layer(m, "connect_timeout", args.connect_timeout, file_connect_timeout.map(Some)),
        contexts: layer(m, "contexts", args.contexts.clone(), file.contexts),
        prometheus_urls: layer(m, "prometheus_urls", args.prometheus_urls.clone(), file.prometheus_urls),
        regions: layer(m, "regions", args.regions.clone(), file.regions),
        slack_webhook_url: layer(
            m,
            "slack_webhook_url",
            args.slack_webhook_url.clone(),
            file.slack_webhook_url.map(Some),
        ),
    })
}

/// Applies `--context`, `--prometheus-url` and `--region` to a spec.
pub fn apply_overrides(check: &mut MorningCheck, s: &Settings) {
    let t = &mut check.spec.targets;
    if !s.contexts.is_empty() {
        let template = t.kubernetes.first().cloned().unwrap_or_default();
        t.kubernetes = s
            .contexts
            .iter()
            .map(|c| KubernetesTarget {
                name: target_name(c),
                context: Some(c.clone()),
                kubeconfig_secret_ref: None,
                ..template.clone()
            })
            .collect();
    }
    for (i, url) in s.prometheus_urls.iter().enumerate() {
        match t.prometheus.get_mut(i) {
            Some(p) => p.url = url.clone(),
            None => t.prometheus.push(PrometheusTarget {
                name: format!("prometheus-{}", i + 1),
                url: url.clone(),
                connect_timeout_seconds: 5,
                read_timeout_seconds: 30,
                ..Default::default()
            }),
        }
    }
    if !s.regions.is_empty() {
        if t.aws.is_empty() {
            t.aws.push(AwsTarget { name: "aws".into(), insufficient_data_grace_seconds: 600, ..Default::default() });
        }
        t.aws.iter_mut().for_each(|a| a.regions = s.regions.clone());
    }
}

/// Every reason the apiserver (admission: schema and CEL rules) or the controller
/// (schedule, time zone, Secrets, selectors, expressions) would refuse a document, as
/// lines for a person; empty when it is valid. Checked after the command line's
/// overrides, on the object that would be applied.
pub fn problems(check: &MorningCheck) -> Vec<String> {
    let object = serde_json::to_value(check).expect("a MorningCheck serializes");
    let admission: Vec<String> = crate::admission::admit(&object).iter().map(ToString::to_string).collect();
    if !admission.is_empty() {
        return admission;
    }
    let ns = check.namespace().unwrap_or_else(|| "default".into());
    match crate::validate::validate(&check.spec, &ns) {
        Ok(_) => Vec::new(),
        Err(invalid) => invalid.problems.iter().map(|p| format!("{p} ({})", invalid.reason)).collect(),
    }
}

/// A context name made into a target name (lowercase, `[-a-z0-9.]`).
fn target_name(context: &str) -> String {
    let name: String = context
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    name.trim_matches(|c| c == '-' || c == '.').chars().take(63).collect()
}

/// The exit code for a set of reports.
pub fn exit_code(reports: &[RunReport], fail_on: Option<FailOn>) -> u8 {
    if reports.iter().any(|r| r.incomplete) {
        return exit::TARGET_FAILED;
    }
    let worst = reports
        .iter()
        .map(|r| {
            if r.counts.critical > 0 {
                Some(Severity::Critical)
            } else if r.counts.warning > 0 {
                Some(Severity::Warning)
            } else {
                None
            }
        })
        .max()
        .flatten();
    let threshold = fail_on.map(|f| match f {
        FailOn::Warning => Severity::Warning,
        FailOn::Critical => Severity::Critical,
    });
    match (worst, threshold) {
        (Some(w), Some(t)) if w >= t => exit::FINDINGS,
        _ => exit::HEALTHY,
    }
}

/// Where a spec's Secrets come from: values given on the command line, else the cluster
/// of the current kubeconfig context.
async fn secret_source(check: &MorningCheck) -> SecretSource {
    let namespace = check.namespace().unwrap_or_else(|| "default".into());
    match kube::Client::try_default().await {
        Ok(client) => SecretSource::Kubernetes { client, namespace },
        Err(_) => SecretSource::Static { namespace, values: Arc::new(HashMap::new()) },
    }
}

fn needs_cluster_secrets(check: &MorningCheck) -> bool {
    let t = &check.spec.targets;
    t.kubernetes.iter().any(|k| k.kubeconfig_secret_ref.is_some())
        || t.prometheus.iter().any(|p| p.auth.is_some() || p.ca_secret_ref.is_some())
}

/// Runs one MorningCheck once.
pub async fn run_once(check: &MorningCheck, s: &Settings) -> RunReport {
    let secrets = if needs_cluster_secrets(check) {
        secret_source(check).await
    } else {
        SecretSource::Static {
            namespace: check.namespace().unwrap_or_else(|| "default".into()),
            values: Arc::new(HashMap::new()),
        }
    };
    // Both are bounded (3600 s) by then; the fallback only keeps an Instant from overflowing.
    let timeout = s.timeout.unwrap_or(u64::try_from(check.spec.timeout_seconds).unwrap_or(300));
    let now = jiff::Timestamp::now();
    let started = Instant::now();
    let snoozes = Arc::new(Snoozes::new(&check.spec.snoozes, check.spec.time_zone.as_deref(), now, None));
    let ctx = RunContext {
        now,
        deadline: started.checked_add(Duration::from_secs(timeout)).unwrap_or(started + Duration::from_secs(3600)),
        secrets,
        local: LocalCluster::kubeconfig(None),
        connect_timeout: s.connect_timeout.map(Duration::from_secs),
        aws_env: crate::collect::AwsEnv::process(),
        grants: crate::tenancy::Grants::unrestricted(),
        in_flight: crate::collect::in_flight(crate::collect::TARGETS_IN_FLIGHT),
        previous: Default::default(),
        snoozes: snoozes.clone(),
    };
    let outcomes = collect_all(&check.spec, &ctx).await;
    let finished =
        now.checked_add(jiff::SignedDuration::try_from(started.elapsed()).unwrap_or_default()).unwrap_or(now);
    let run_id = format!("cli-{}", now.as_second());
    let meta = RunMeta { run_id, slot: now, started_at: now, finished_at: finished };
    let (mut report, _) = build_report(meta, outcomes, &Default::default(), &snoozes);
    report.check = Some(format!("{}/{}", check.namespace().unwrap_or_else(|| "default".into()), check.name_any()));
    report
}

/// Posts the digest unless dry-run; returns an error line for stderr when it failed.
pub async fn post(check: &MorningCheck, report: &RunReport, s: &Settings) -> Option<String> {
    post_inner(check, report, s).await.map(|m| crate::redact::scrub(&m))
}

async fn post_inner(check: &MorningCheck, report: &RunReport, s: &Settings) -> Option<String> {
    if s.dry_run {
        return None;
    }
    let spec = check.spec.slack.as_ref();
    if let (None, Some(app)) = (&s.slack_webhook_url, spec.and_then(|s| s.app.as_ref())) {
        return post_app(check, report, app).await;
    }
    let url = match (&s.slack_webhook_url, spec.and_then(|s| s.webhook_secret_ref.as_ref())) {
        (Some(u), _) => {
            crate::redact::remember(u);
            u.clone()
        }
        (None, Some(hook)) => match secret_source(check).await.get_string(hook).await {
            Ok(u) => u,
            Err(e) => return Some(format!("slack: webhook URL: {}", e.message)),
        },
        (None, None) => return None,
    };
    if let Err(e) = slack::check_webhook_url(&url) {
        return Some(format!("slack: {e}"));
    }
    let payload = digest(check, report);
    let d = slack::deliver(&slack::http_client(), &url, &payload, Instant::now() + Duration::from_secs(60)).await;
    match d.outcome {
        slack::Outcome::Delivered => None,
        other => Some(format!("slack: {other:?}: {}", d.message.unwrap_or_default())),
    }
}

/// Posts as a Slack app: the summary, then its thread.
async fn post_app(check: &MorningCheck, report: &RunReport, app: &crate::api::SlackApp) -> Option<String> {
    let token = match secret_source(check).await.get_string(&app.token_secret_ref).await {
        Ok(t) => t,
        Err(e) => return Some(format!("slack: bot token: {}", e.message)),
    };
    let client = match slack::App::new(app.api_url.as_deref(), &token, &app.channel) {
        Ok(c) => c,
        Err(e) => return Some(format!("slack: {e}")),
    };
    let messages = thread(check, report);
    let http = slack::http_client();
    let deadline = messages.deadline();
    let at = match client.summary(&http, &messages.summary, None, deadline).await {
        Ok(at) => at,
        Err(f) => return Some(format!("slack: {:?}: {}", f.outcome, f.message)),
    };
    match client.thread(&http, &at, &messages.replies, &[], deadline).await {
        (_, None) => None,
        (t, Some(f)) => Some(format!("slack: thread cut short, {} of {} replies: {}", t.delivered, t.total, f.message)),
    }
}

/// What goes to stdout for one report.
pub fn render(check: &MorningCheck, report: &RunReport, output: Output) -> String {
    let name = format!("{}/{}", check.namespace().unwrap_or_else(|| "default".into()), check.name_any());
    match output {
        Output::Text => crate::redact::scrub(&text::render(&name, report, text::Style::detect())),
        Output::Json => pretty_scrubbed(serde_json::to_value(report).expect("a report always serializes")),
        Output::Slack if check.spec.slack.as_ref().is_some_and(|s| s.app.is_some()) => {
            let t = thread(check, report);
            pretty_scrubbed(serde_json::json!({"summary": t.summary, "thread": t.replies}))
        }
        Output::Slack => pretty_scrubbed(digest(check, report)),
    }
}

/// App mode's messages of a run from a file.
fn thread(check: &MorningCheck, report: &RunReport) -> slack::Thread {
    with_digest(check, |d| slack::render_thread(report, d))
}

/// The Slack digest of a run from a file.
fn digest(check: &MorningCheck, report: &RunReport) -> serde_json::Value {
    with_digest(check, |d| slack::render(report, d))
}

/// What a digest of a run from a file needs: it points to the JSON report, as no
/// MorningCheck object exists to `kubectl get`.
fn with_digest<T>(check: &MorningCheck, f: impl FnOnce(&slack::Digest) -> T) -> T {
    let ns = check.namespace().unwrap_or_else(|| "default".into());
    let name = check.name_any();
    let mentions = check.spec.slack.as_ref().map(|s| s.mention_on_critical.clone()).unwrap_or_default();
    let digest = slack::Digest {
        namespace: &ns,
        name: &name,
        time_zone: check.spec.time_zone.as_deref(),
        mentions: &mentions,
        origin: slack::Origin::Local,
    };
    f(&digest)
}

/// JSON for stdout, with every secret the run held scrubbed from its strings.
fn pretty_scrubbed(mut v: serde_json::Value) -> String {
    crate::redact::scrub_json(&mut v);
    serde_json::to_string_pretty(&v).expect("JSON always serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Counts, RunResult};

    fn report(result: RunResult, critical: u64, warning: u64) -> RunReport {
        let t: jiff::Timestamp = "2026-11-24T07:00:00Z".parse().unwrap();
        let counts = Counts { total: critical + warning, critical, warning, ..Counts::default() };
        let incomplete = result == RunResult::Failed;
        RunReport { result, counts, incomplete, ..crate::evaluate::empty_report("r", t, t, t) }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&[report(RunResult::Healthy, 0, 0)], Some(FailOn::Warning)), 0);
        assert_eq!(exit_code(&[report(RunResult::Warning, 0, 2)], None), 0);
        assert_eq!(exit_code(&[report(RunResult::Warning, 0, 2)], Some(FailOn::Critical)), 0);
        assert_eq!(exit_code(&[report(RunResult::Warning, 0, 2)], Some(FailOn::Warning)), 1);
        assert_eq!(
            exit_code(&[report(RunResult::Healthy, 0, 0), report(RunResult::Critical, 1, 0)], Some(FailOn::Critical)),
            1
        );
        assert_eq!(
            exit_code(&[report(RunResult::Critical, 1, 0), report(RunResult::Failed, 0, 0)], Some(FailOn::Warning)),
            2
        );
    }

    #[test]
    fn context_names_become_target_names() {
        assert_eq!(target_name("arn:aws:eks:eu-west-1:123:cluster/Prod"), "arn-aws-eks-eu-west-1-123-cluster-prod");
        assert_eq!(target_name("kind-kind"), "kind-kind");
    }

    #[test]
    fn overrides_replace_and_add() {
        let mut mc: MorningCheck = serde_json::from_value(serde_json::json!({
            "apiVersion": "morningcheck.io/v1alpha1", "kind": "MorningCheck", "metadata": {"name": "a"},
            "spec": {"schedule": "@daily", "targets": {
                "kubernetes": [{"name": "x", "thresholds": {"restartCount": 9}}],
                "prometheus": [{"name": "p", "url": "http://old:9090"}]}}
        }))
        .unwrap();
        let s = Settings {
            output: Output::Text,
            dry_run: true,
            fail_on: None,
            timeout: None,
            connect_timeout: None,
            contexts: vec!["prod".into(), "staging".into()],
            prometheus_urls: vec!["http://new:9090".into(), "http://extra:9090".into()],
            regions: vec!["eu-west-1".into()],
            slack_webhook_url: None,
        };
        apply_overrides(&mut mc, &s);
        let t = &mc.spec.targets;
        assert_eq!(
            t.kubernetes.iter().map(|k| (k.name.as_str(), k.context.as_deref())).collect::<Vec<_>>(),
            [("prod", Some("prod")), ("staging", Some("staging"))]
        );
        assert_eq!(t.kubernetes[1].thresholds.restart_count, 9, "settings of the file's first target are kept");
        assert_eq!(
            t.prometheus.iter().map(|p| p.url.as_str()).collect::<Vec<_>>(),
            ["http://new:9090", "http://extra:9090"]
        );
        assert_eq!(t.aws[0].regions, ["eu-west-1"]);
    }
}
