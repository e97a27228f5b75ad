//! Placeholder, replaced by the Slack issue.
use tokio::time::Instant;

use crate::api::{NotifyPolicy, RunReport, RunResult};

/// What the digest needs besides the report.
pub struct Digest<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub time_zone: Option<&'a str>,
    pub mentions: &'a [String],
}

pub fn render(report: &RunReport, d: &Digest) -> serde_json::Value {
    serde_json::json!({"text": format!("{}/{}: {:?}", d.namespace, d.name, report.result)})
}

pub fn should_notify(policy: NotifyPolicy, report: &RunReport, previous_digest: Option<&str>) -> bool {
    match policy {
        NotifyPolicy::Always => true,
        NotifyPolicy::OnFindings => report.result != RunResult::Healthy,
        NotifyPolicy::OnChange => previous_digest != Some(report.findings_digest.as_str()),
    }
}

pub fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") { Ok(()) } else { Err("the webhook URL must use https".into()) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub outcome: Outcome,
    pub message: Option<String>,
    pub attempts: u32,
}

pub async fn deliver(
    _http: &reqwest::Client,
    _url: &str,
    _payload: &serde_json::Value,
    _deadline: Instant,
) -> Delivery {
    Delivery { outcome: Outcome::Failed, message: Some("Slack delivery is not built yet".into()), attempts: 0 }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::new()
}
