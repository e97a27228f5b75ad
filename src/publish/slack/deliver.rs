//! Delivery to an incoming webhook: at most once, retried only when Slack certainly did
//! not act on the request.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::check_webhook_url;
use crate::net::{self, Attempt, RetryPolicy};

// ---------------------------------------------------------------------------------------
// Delivery.

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Slack answered 2xx.
    Delivered,
    /// Slack refused it, or it could not be sent.
    Failed,
    /// Sent, but no answer: Slack may or may not have posted it; not repeated.
    Unknown,
}

impl From<Outcome> for crate::api::NotificationOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Delivered => Self::Delivered,
            Outcome::Failed => Self::Failed,
            Outcome::Unknown => Self::Unknown,
        }
    }
}

/// The result of [`deliver`]: outcome, a message without the URL, and POSTs attempted.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub outcome: Outcome,
    pub message: Option<String>,
    pub attempts: u32,
}

/// Longest wait for one attempt; the deadline bounds it further.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of [`deliver`]: only for requests Slack certainly did not act on.
pub const RETRY: RetryPolicy =
    RetryPolicy { base: Duration::from_millis(500), max: Duration::from_secs(5), attempts: 4 };

/// Posts `payload` to the webhook at `url` by `deadline`.
///
/// Retried: connection failures before the request was sent, 429 (after `Retry-After`
/// when the deadline allows) and 503. Not retried: other statuses (`Failed`, with Slack's
/// error body verbatim) and anything after the request was sent (`Unknown`).
pub async fn deliver(http: &reqwest::Client, url: &str, payload: &Value, deadline: Instant) -> Delivery {
    if let Err(e) = check_webhook_url(url) {
        return Delivery { outcome: Outcome::Failed, message: Some(e), attempts: 0 };
    }
    if Instant::now() >= deadline {
        return Delivery {
            outcome: Outcome::Failed,
            message: Some("deadline passed before sending".into()),
            attempts: 0,
        };
    }
    let body = match serde_json::to_vec(payload) {
        Ok(b) => b,
        Err(e) => return Delivery { outcome: Outcome::Failed, message: Some(format!("payload: {e}")), attempts: 0 },
    };
    let mut attempts = 0;
    let result = net::retry(RETRY, deadline, |_| {
        attempts += 1;
        // The attempt owns what it sends: a future borrowing through this closure is not
        // provably Send to the controller's spawned task.
        let (http, url, body) = (http.clone(), url.to_string(), body.clone());
        async move { post_once(&http, &url, body, deadline).await }
    })
    .await;
    let (outcome, message) = match result {
        Ok(()) => (Outcome::Delivered, None),
        Err(f) => (f.outcome, Some(f.message)),
    };
    match outcome {
        Outcome::Delivered => tracing::info!(attempts, "Slack digest delivered"),
        _ => {
            tracing::warn!(attempts, outcome = ?outcome, error = message.as_deref().unwrap_or(""), "Slack delivery did not succeed")
        }
    }
    Delivery { outcome, message, attempts }
}

/// Why an attempt did not deliver.
struct AttemptFailure {
    outcome: Outcome,
    message: String,
}

fn failure(outcome: Outcome, message: String) -> AttemptFailure {
    AttemptFailure { outcome, message: crate::redact::scrub(&message) }
}

async fn post_once(http: &reqwest::Client, url: &str, body: Vec<u8>, deadline: Instant) -> Attempt<(), AttemptFailure> {
    let timeout = ATTEMPT_TIMEOUT.min(net::remaining(deadline));
    let sent = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return request_error(e),
    };
    let status = resp.status();
    let retry_after = crate::net::retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    classify(status, retry_after, &text)
}

/// A connect error means nothing was sent: retry. Anything else happened after the
/// request may have reached Slack: unknown, never repeated.
fn request_error(e: reqwest::Error) -> Attempt<(), AttemptFailure> {
    let connect = e.is_connect();
    let timeout = e.is_timeout();
    let detail = crate::errors::error_chain(&e.without_url());
    if connect {
        Attempt::Retry(failure(Outcome::Failed, format!("could not connect to Slack: {detail}")), None)
    } else if timeout {
        Attempt::Fail(failure(
            Outcome::Unknown,
            format!("no answer from Slack in time after sending; it may have posted: {detail}"),
        ))
    } else {
        Attempt::Fail(failure(
            Outcome::Unknown,
            format!("connection lost after sending; Slack may have posted: {detail}"),
        ))
    }
}

fn classify(status: reqwest::StatusCode, retry_after: Option<Duration>, body: &str) -> Attempt<(), AttemptFailure> {
    if status.is_success() {
        return Attempt::Done(());
    }
    let message = format!("Slack answered HTTP {}: {}", status.as_u16(), slack_code(body));
    match status.as_u16() {
        429 => Attempt::Retry(failure(Outcome::Failed, message), Some(retry_after.unwrap_or(Duration::from_secs(1)))),
        503 => Attempt::Retry(failure(Outcome::Failed, message), retry_after),
        _ => Attempt::Fail(failure(Outcome::Failed, message)),
    }
}

/// Slack's error code (`no_service`, `invalid_blocks`, …) verbatim. Any other body is not
/// quoted: a webhook URL may point at any service, and an error page may echo the URL.
pub(super) fn slack_code(body: &str) -> String {
    let code = body.trim();
    let slack_like = (1..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match (code.is_empty(), slack_like) {
        (true, _) => "(empty body)".into(),
        (false, true) => code.into(),
        (false, false) => "(a body that is not a Slack error code; not shown)".into(),
    }
}

/// The HTTP client for Slack, built once: rustls with verification on, a 5 s connect
/// timeout, and no redirects (a POST with the digest goes to the webhook or nowhere).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("morningcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        use reqwest::StatusCode;
        assert!(matches!(classify(StatusCode::OK, None, "ok"), Attempt::Done(())));
        assert!(
            matches!(classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), ""), Attempt::Retry(_, Some(d)) if d == Duration::from_secs(2))
        );
        assert!(matches!(classify(StatusCode::SERVICE_UNAVAILABLE, None, ""), Attempt::Retry(_, None)));
        match classify(StatusCode::BAD_REQUEST, None, "invalid_blocks\n") {
            Attempt::Fail(f) => {
                assert_eq!(f.outcome, Outcome::Failed);
                assert_eq!(f.message, "Slack answered HTTP 400: invalid_blocks");
            }
            _ => panic!("400 is not retried"),
        }
        assert!(matches!(classify(StatusCode::INTERNAL_SERVER_ERROR, None, ""), Attempt::Fail(_)));
    }
}
