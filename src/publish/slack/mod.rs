//! The Slack digest: one Block Kit message per run delivered to an incoming webhook, or,
//! as a Slack app, a summary in the channel with the details in its thread.
//!
//! [`render`] lays the message out inside Slack's limits whatever the input: every piece of
//! user data is escaped for mrkdwn and cut to a budget counted in serialized JSON
//! characters, so the whole payload stays under [`MAX_PAYLOAD_CHARS`] and what does not fit
//! is summarised with the `kubectl` command that shows everything.
//!
//! [`deliver`] posts it at most once: a POST is retried only when Slack certainly did not
//! act on it (connection refused, 429, 503), never after a timeout once the request left.
//! The webhook URL is a secret: it never appears in a message or a log.

mod app;
mod deliver;
mod layout;
mod lines;
mod mrkdwn;

pub use app::{App, DEFAULT_API_URL, Failure, MAX_REPLIES, PACE, advice};
pub use deliver::{ATTEMPT_TIMEOUT, Delivery, Outcome, RETRY, deliver, http_client};
pub use layout::{Thread, render, render_thread, with_note};

use crate::api::{NotifyPolicy, RunReport, RunResult};
use mrkdwn::plain;

/// Slack's limit on blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a section's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Slack's limit on a header's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Slack's limit on fields in a section.
pub const MAX_FIELDS: usize = 10;
/// Slack's limit on one field's text.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Our ceiling for the serialized payload, well under the ~12,000 Slack accepts.
pub const MAX_PAYLOAD_CHARS: usize = 10_000;

/// What the digest needs besides the report.
pub struct Digest<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// IANA zone the run time is shown in; UTC when unset or unknown.
    pub time_zone: Option<&'a str>,
    /// Added verbatim (not escaped) on a Critical result, e.g. `<!here>`.
    pub mentions: &'a [String],
    /// Where the whole result can be read, which the digest points to.
    pub origin: Origin,
}

/// Where a run's whole result is, for the digest's pointers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A MorningCheck in a cluster: `kubectl get mc -n NS NAME` shows it.
    Cluster,
    /// `morningcheck run` from a file: no object exists; the JSON report has everything.
    Local,
}

// ---------------------------------------------------------------------------------------
// Policy and URL.

/// Whether this run posts: `Always`; `OnFindings` unless Healthy and complete; `OnChange`
/// when the set of findings differs from the previous completed run's (a first run always
/// posts).
pub fn should_notify(policy: NotifyPolicy, report: &RunReport, previous_digest: Option<&str>) -> bool {
    match policy {
        NotifyPolicy::Always => true,
        NotifyPolicy::OnFindings => report.result != RunResult::Healthy || report.incomplete,
        NotifyPolicy::OnChange => previous_digest != Some(report.findings_digest.as_str()),
    }
}

/// Checks a webhook URL: https with a host. Plain http is accepted only for a loopback
/// host (127.0.0.0/8, ::1, localhost) so a local test receiver works; it never leaves the
/// machine. Errors never quote the URL: its path is the secret.
pub fn check_webhook_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("the webhook URL is not a valid URL ({e})"))?;
    let Some(host) = url.host() else {
        return Err("the webhook URL has no host".into());
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err("the webhook URL must use https (plain http only to a loopback host)".into()),
        other => Err(format!("the webhook URL must use https, not {}", plain(other, 20))),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        assert!(check_webhook_url("https://hooks.slack.com/services/T0/B0/x").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook_url("http://127.3.4.5/hook").is_ok());
        assert!(check_webhook_url("http://[::1]:9/hook").is_ok());
        assert!(check_webhook_url("http://LOCALHOST/hook").is_ok());
        for bad in [
            "http://hooks.slack.com/services/T0/B0/secretpath",
            "http://10.0.0.1/secretpath",
            "ftp://hooks.slack.com/secretpath",
            "https://",
            "https://:80/secretpath",
            "not a url secretpath",
            "file:///secretpath",
        ] {
            let e = check_webhook_url(bad).unwrap_err();
            assert!(!e.contains("secretpath"), "{e}");
        }
    }
}
