//! Delivery as a Slack app through the Web API: `chat.postMessage` for the summary and
//! its thread, `chat.update` to edit the summary in place, `chat.delete` to replace the
//! replies of a retried run.
//!
//! The summary is posted at most once per run: a request Slack may have acted on (sent,
//! then no answer) is never repeated. Replies are paced to Slack's per-channel rate, and a
//! 429 or `ratelimited` waits as long as Slack says. The bot token is a secret: it is
//! remembered for scrubbing and never appears in a message or a log.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::deliver::{ATTEMPT_TIMEOUT, Outcome, RETRY, slack_code};
use crate::api::{SlackMessageRef, ThreadStatus};
use crate::clip::{Limit, clip};
use crate::net::{self, Attempt};

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";
/// The wait between two messages to one channel: Slack allows about one a second.
pub const PACE: Duration = Duration::from_secs(1);
/// Replies in one thread at most; the summary counts the rest.
pub const MAX_REPLIES: usize = 50;

/// Where and as whom the app posts.
#[derive(Clone)]
pub struct App {
    /// The Web API's base URL, with a trailing slash.
    pub api: url::Url,
    pub token: String,
    pub channel: String,
}

/// Why a call did not succeed: what became of it, and a message without the token.
#[derive(Debug, Clone)]
pub struct Failure {
    pub outcome: Outcome,
    pub message: String,
}

impl App {
    /// The app of `api_url` (Slack's own when unset): https, or http to a loopback host.
    pub fn new(api_url: Option<&str>, token: &str, channel: &str) -> Result<Self, String> {
        let raw = api_url.unwrap_or(DEFAULT_API_URL);
        super::check_webhook_url(raw).map_err(|e| e.replace("webhook URL", "Slack API URL"))?;
        let mut api = url::Url::parse(raw.trim()).map_err(|e| format!("the Slack API URL is not valid ({e})"))?;
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err("the bot token is empty".into());
        }
        crate::redact::remember(&token);
        Ok(Self { api, token, channel: channel.to_string() })
    }

    /// Posts the summary, or edits it in place when this run already posted one.
    pub async fn summary(
        &self,
        http: &reqwest::Client,
        message: &Value,
        posted: Option<&SlackMessageRef>,
        deadline: Instant,
    ) -> Result<SlackMessageRef, Failure> {
        match posted {
            Some(at) => {
                let body = with(message, json!({"channel": at.channel, "ts": at.ts}));
                self.call(http, "chat.update", &body, deadline).await.map(|_| at.clone())
            }
            None => {
                let body =
                    with(message, json!({"channel": self.channel, "unfurl_links": false, "unfurl_media": false}));
                let answer = self.call(http, "chat.postMessage", &body, deadline).await?;
                posted_at(&answer).ok_or_else(|| Failure {
                    outcome: Outcome::Unknown,
                    message: "Slack answered chat.postMessage without the message's channel and ts".into(),
                })
            }
        }
    }

    /// Replaces the thread under `at`: deletes the replies a previous attempt posted, then
    /// posts `replies` one a [`PACE`]. Stops at the first reply that fails; the status
    /// tells how many were delivered, and the failure why.
    pub async fn thread(
        &self,
        http: &reqwest::Client,
        at: &SlackMessageRef,
        replies: &[Value],
        old: &[String],
        deadline: Instant,
    ) -> (ThreadStatus, Option<Failure>) {
        let mut status = ThreadStatus { delivered: 0, total: replies.len() as u32, replies: Vec::new() };
        let mut last = Instant::now();
        for ts in old {
            // A reply already gone is no reason to stop.
            if let Err(f) = self.call(http, "chat.delete", &json!({"channel": at.channel, "ts": ts}), deadline).await
                && !f.message.contains("message_not_found")
            {
                return (status, Some(f));
            }
        }
        for reply in replies {
            tokio::time::sleep_until(last + PACE).await;
            last = Instant::now();
            let body = with(
                reply,
                json!({"channel": at.channel, "thread_ts": at.ts, "reply_broadcast": false,
                    "unfurl_links": false, "unfurl_media": false}),
            );
            match self.call(http, "chat.postMessage", &body, deadline).await {
                Ok(answer) => {
                    status.delivered += 1;
                    if let Some(r) = posted_at(&answer).filter(|_| status.replies.len() < MAX_REPLIES) {
                        status.replies.push(r.ts);
                    }
                }
                Err(f) => return (status, Some(f)),
            }
        }
        (status, None)
    }

    /// One Web API call, retried only when Slack certainly did not act on it: connection
    /// refused, 429 or `ratelimited` (after the wait Slack asks for), 503.
    async fn call(
        &self,
        http: &reqwest::Client,
        method: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        if Instant::now() >= deadline {
            return Err(Failure { outcome: Outcome::Failed, message: format!("{method}: the deadline passed first") });
        }
        let url = match self.api.join(method) {
            Ok(u) => u,
            Err(e) => return Err(Failure { outcome: Outcome::Failed, message: format!("{method}: {e}") }),
        };
        let body = serde_json::to_vec(body).unwrap_or_default();
        net::retry(RETRY, deadline, |_| {
            let (http, url, body, token) = (http.clone(), url.clone(), body.clone(), self.token.clone());
            let channel = self.channel.clone();
            async move { call_once(&http, url, &token, body, method, &channel, deadline).await }
        })
        .await
        .map_err(|f| Failure { outcome: f.outcome, message: crate::redact::scrub(&f.message) })
    }
}

/// The message's text and blocks with the call's own fields.
fn with(message: &Value, fields: Value) -> Value {
    let mut body = fields;
    body["text"] = message["text"].clone();
    body["blocks"] = message["blocks"].clone();
    body
}

/// Where Slack says it posted: bounded, as it goes to the status whatever the answer.
fn posted_at(answer: &Value) -> Option<SlackMessageRef> {
    let field = |k: &str| answer[k].as_str().map(|v| clip(v, Limit::Bytes(ANSWER_FIELD_BYTES)).into_owned());
    Some(SlackMessageRef { channel: field("channel")?, ts: field("ts")? })
}

/// The most of a channel ID or ts kept from Slack's answer (real ones are ~20 bytes).
const ANSWER_FIELD_BYTES: usize = 64;

async fn call_once(
    http: &reqwest::Client,
    url: url::Url,
    token: &str,
    body: Vec<u8>,
    method: &str,
    channel: &str,
    deadline: Instant,
) -> Attempt<Value, Failure> {
    let fail = |outcome, message: String| Failure { outcome, message: format!("{method}: {message}") };
    let sent = http
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body)
        .timeout(ATTEMPT_TIMEOUT.min(net::remaining(deadline)))
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            let why = crate::errors::error_chain(&e.without_url());
            return Attempt::Retry(fail(Outcome::Failed, format!("could not connect to Slack: {why}")), None);
        }
        Err(e) => {
            let why = crate::errors::error_chain(&e.without_url());
            return Attempt::Fail(fail(Outcome::Unknown, format!("no answer from Slack after sending: {why}")));
        }
    };
    let status = resp.status();
    let wait = net::retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    match status.as_u16() {
        429 => {
            let message =
                format!("HTTP 429 (rate limited{})", wait.map(|w| format!(", retry after {w:?}")).unwrap_or_default());
            return Attempt::Retry(fail(Outcome::Failed, message), Some(wait.unwrap_or(PACE)));
        }
        503 => return Attempt::Retry(fail(Outcome::Failed, "HTTP 503".into()), wait),
        s if !(200..300).contains(&s) => {
            return Attempt::Fail(fail(Outcome::Failed, format!("HTTP {s}: {}", slack_code(&text))));
        }
        _ => {}
    }
    let Ok(answer) = serde_json::from_str::<Value>(&text) else {
        return Attempt::Fail(fail(Outcome::Unknown, "an answer that is not Slack's JSON".into()));
    };
    if answer["ok"].as_bool() == Some(true) {
        return Attempt::Done(answer);
    }
    let code = slack_code(answer["error"].as_str().unwrap_or_default());
    if code == "ratelimited" {
        return Attempt::Retry(fail(Outcome::Failed, advice(&code, channel)), Some(wait.unwrap_or(PACE)));
    }
    Attempt::Fail(fail(Outcome::Failed, advice(&code, channel)))
}

/// Slack's error code verbatim, and what to do about it.
pub fn advice(code: &str, channel: &str) -> String {
    let channel = super::mrkdwn::plain(channel, 80);
    let what = match code {
        "not_in_channel" => format!("the app is not a member of {channel}: invite it there (`/invite @app` in {channel})"),
        "channel_not_found" => format!(
            "no channel {channel} for this app: check spec.slack.app.channel (an ID such as C0123ABCDEF, or #name) and invite the app"
        ),
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "the bot token was refused: put the app's current bot token (xoxb-…) in the Secret spec.slack.app.tokenSecretRef names".into()
        }
        "missing_scope" => "the app lacks the chat:write scope: add it under OAuth & Permissions and reinstall the app".into(),
        "msg_too_long" => "Slack refused the message as too long".into(),
        "ratelimited" => "Slack still rate limited the app after waiting as long as it asked".into(),
        "is_archived" => format!("channel {channel} is archived: unarchive it or name another"),
        _ => "see Slack's documentation of this error code".into(),
    };
    format!("Slack answered {code}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_say_what_to_fix() {
        let a = advice("not_in_channel", "#ops-morning");
        assert!(a.starts_with("Slack answered not_in_channel: ") && a.contains("invite it there"), "{a}");
        assert!(advice("missing_scope", "C1").contains("chat:write"));
        assert!(advice("invalid_auth", "C1").contains("tokenSecretRef"));
        assert!(advice("channel_not_found", "#x").contains("spec.slack.app.channel"));
    }

    #[test]
    fn what_slack_answers_is_bounded() {
        let long = "é".repeat(1000);
        let at = posted_at(&json!({"ok": true, "channel": long, "ts": "1.2"})).unwrap();
        assert!(at.channel.len() <= ANSWER_FIELD_BYTES && at.channel.starts_with('é'));
        assert_eq!(at.ts, "1.2");
        assert!(posted_at(&json!({"ok": true, "ts": "1.2"})).is_none());
    }

    #[test]
    fn the_api_url_is_checked_and_ends_with_a_slash() {
        let app = App::new(Some("http://127.0.0.1:9/api"), "xoxb-1234567890-abcdef", "C1").unwrap();
        assert_eq!(app.api.as_str(), "http://127.0.0.1:9/api/");
        assert_eq!(App::new(None, "xoxb-1234567890-abcdef", "C1").unwrap().api.as_str(), DEFAULT_API_URL);
        assert!(App::new(Some("http://slack.example/api/"), "xoxb-1234567890-abcdef", "C1").is_err());
        assert!(App::new(None, "  ", "C1").is_err());
    }
}
