//! Keeps secret values out of everything the operator writes: status, Events, logs,
//! metrics and CLI output.
//!
//! Two nets. By value: every secret the operator reads for a run (a Secret's value, the
//! credentials inside a kubeconfig, a webhook URL and its path, basic-auth pairs in their
//! encoded form) is [`remember`]ed, and [`scrub`] replaces each occurrence. By pattern:
//! `Bearer …`, `Basic …`, `Authorization: …`, `token: …`-style lines and credentials or
//! paths in URLs are cut whatever their value. Parse errors of anything read from a
//! Secret or a config file are told by [`parse_error`]: where and what kind, never the
//! source text.

use std::sync::{LazyLock, RwLock};

use aho_corasick::AhoCorasick;
use base64::Engine;
use regex::Regex;

/// What a secret is replaced by.
pub const REDACTED: &str = "[redacted]";
/// Shorter values are not remembered: they would cut ordinary words out of messages.
const MIN_LEN: usize = 6;
/// Values remembered at most; the oldest go first.
const MAX_VALUES: usize = 4096;

#[derive(Default)]
struct Registry {
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| RwLock::new(Registry::default()));

/// Remembers a secret value, and what a URL carries: its path and query (a webhook's
/// secret lives there) and its user info.
pub fn remember(value: &str) {
    let value = value.trim();
    let mut new = vec![value.to_string()];
    if let Ok(u) = url::Url::parse(value)
        && u.host_str().is_some()
    {
        let tail = &value[u[..url::Position::BeforePath].len()..];
        new.push(tail.to_string());
        new.push(u.path().to_string());
        new.extend(u.password().map(str::to_string));
    }
    add(new);
}

/// Remembers a basic-auth pair: the password, and `user:password` as it travels, in base64.
pub fn remember_basic(user: &str, password: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    add(vec![password.to_string(), encoded]);
}

fn add(values: Vec<String>) {
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let before = r.values.len();
    for v in values {
        if v.len() >= MIN_LEN && !r.values.contains(&v) {
            r.values.push(v);
        }
    }
    if r.values.len() == before {
        return;
    }
    if r.values.len() > MAX_VALUES {
        let extra = r.values.len() - MAX_VALUES;
        r.values.drain(..extra);
    }
    // Leftmost-longest: a value that contains another is replaced whole.
    r.matcher = AhoCorasick::builder().match_kind(aho_corasick::MatchKind::LeftmostLongest).build(&r.values).ok();
}

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Credentials in a URL's user info.
        (r"(?P<s>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s@]+@", "${s}[redacted]@"),
        // Headers and YAML/JSON keys that hold credentials.
        (
            r#"(?i)(?P<k>authorization|x-amz-security-token|x-amz-credential|x-amz-signature|token|password|passwd|client-key-data|secret|api[-_]?key)(?P<s>["']?\s*[:=]\s*["']?)(?:(?:bearer|basic)\s+)?[^\s"',}\[\]]+"#,
            "${k}${s}[redacted]",
        ),
        // HTTP authorization schemes.
        (r"(?i)\b(?P<s>bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}", "${s} [redacted]"),
    ]
    .into_iter()
    .map(|(p, r)| (Regex::new(p).expect("pattern compiles"), r))
    .collect()
});

/// `text` with every remembered secret, every credential-shaped pattern and every URL's
/// path and query replaced: for what is written about a run (status, Events, reports).
pub fn scrub(text: &str) -> String {
    secrets(&urls(text))
}

/// `text` with every remembered secret and every credential-shaped pattern replaced, URL
/// paths kept: for log lines, where the path of a request is what one debugs with.
pub fn secrets(text: &str) -> String {
    let by_value = {
        let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        match &r.matcher {
            Some(m) => m.replace_all(text, &vec![REDACTED; m.patterns_len()]),
            None => text.to_string(),
        }
    };
    let mut out = by_value;
    for (re, with) in PATTERNS.iter() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *with).into_owned();
        }
    }
    out
}

/// Scrubs every string of a JSON value, keys included.
pub fn scrub_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let clean = scrub(s);
            if clean != *s {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                scrub_json(&mut val);
                map.insert(scrub(&k), val);
            }
        }
        _ => {}
    }
}

/// Removes anything that looks like a URL's path and query from a message, so a secret
/// carried in a URL (a Slack webhook) never reaches a log, Event or status.
pub fn urls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("://") {
        let scheme_start = rest[..i]
            .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '-' && c != '.')
            .map_or(0, |p| p + 1);
        let after = &rest[i + 3..];
        let host_end = after
            .find(|c: char| c == '/' || c == '?' || c.is_whitespace() || c == ')' || c == '"')
            .unwrap_or(after.len());
        let tail_end = after.find(|c: char| c.is_whitespace() || c == ')' || c == '"').unwrap_or(after.len());
        out.push_str(&rest[..scheme_start]);
        out.push_str(&rest[scheme_start..i + 3]);
        out.push_str(&after[..host_end]);
        if tail_end > host_end {
            out.push_str("/[redacted]");
        }
        rest = &after[tail_end..];
    }
    out.push_str(rest);
    out
}

/// A YAML parse error told by where it is and what kind it is, never by the text it
/// quotes: the document may hold credentials on the very line that is wrong.
pub fn parse_error(e: &serde_saphyr::Error) -> String {
    let plain = e.without_snippet().to_string();
    let kind = plain
        .split(['"', '\'', '`', '\n'])
        .next()
        .unwrap_or_default()
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches([':', ',', ' ']);
    // A misspelt key is named: keys are the schema's words, not the document's values.
    let unknown = plain.strip_prefix("unknown field `").and_then(|r| r.split_once('`')).map(|(k, _)| k);
    let kind = match unknown {
        Some(k) if k.len() <= 64 => format!("unknown field `{k}`"),
        _ if kind.is_empty() => "not valid YAML".to_string(),
        _ => kind.to_string(),
    };
    match e.location() {
        Some(l) if l.line() > 0 => format!("{kind} at line {}, column {}", l.line(), l.column()),
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_are_scrubbed_wherever_they_appear() {
        remember("tok-9f8e7d6c5b4a-remembered");
        let s = scrub("401: got tok-9f8e7d6c5b4a-remembered from you; ünïcode tok-9f8e7d6c5b4a-remembered");
        assert_eq!(s, "401: got [redacted] from you; ünïcode [redacted]");
        remember("abc");
        assert_eq!(scrub("abc stays"), "abc stays", "short values are not remembered");
    }

    #[test]
    fn a_webhook_url_s_path_is_remembered_on_its_own() {
        remember("https://hooks.slack.com/services/T000/B000/XyZsecretPath123");
        assert_eq!(scrub("no_service for /services/T000/B000/XyZsecretPath123"), "no_service for [redacted]");
    }

    #[test]
    fn basic_auth_is_remembered_encoded() {
        remember_basic("prom-user", "pa55-w0rd-basic");
        let encoded = base64::engine::general_purpose::STANDARD.encode("prom-user:pa55-w0rd-basic");
        let s = scrub(&format!("you sent {encoded} and pa55-w0rd-basic"));
        assert!(!s.contains(&encoded) && !s.contains("pa55-w0rd-basic"), "{s}");
    }

    #[test]
    fn credential_patterns_are_cut_whatever_their_value() {
        assert_eq!(scrub("header was Bearer eyJhbGciOi.x.y"), "header was Bearer [redacted]");
        assert_eq!(scrub("Authorization: Basic dXNlcjpwYXNz"), "Authorization: [redacted]");
        assert_eq!(scrub("    token: eyJhbGciOi"), "    token: [redacted]");
        assert_eq!(scrub(r#"{"password":"hunter22"}"#), r#"{"password":"[redacted]"}"#);
        assert_eq!(
            scrub("connect https://u:p4ss@example.com/x failed"),
            "connect https://[redacted]@example.com/[redacted] failed"
        );
        assert_eq!(scrub("token expired or revoked"), "token expired or revoked");
        for once in ["Authorization: Bearer abcdefgh", "token: xyz123", "https://u:p@h/x", "Basic dXNlcjpwYXNz"] {
            assert_eq!(scrub(&scrub(once)), scrub(once), "scrubbing twice changes nothing: {once}");
        }
    }

    #[test]
    fn urls_are_redacted_to_their_host() {
        assert_eq!(
            urls("error sending request for url (https://hooks.slack.com/services/T0/B0/secret): timed out"),
            "error sending request for url (https://hooks.slack.com/[redacted]): timed out"
        );
        assert_eq!(urls("connect to http://127.0.0.1:9090 failed"), "connect to http://127.0.0.1:9090 failed");
        assert_eq!(urls("no url here"), "no url here");
    }

    #[test]
    fn json_is_scrubbed_throughout() {
        remember("json-secret-value-1");
        let mut v = serde_json::json!({"a": ["x json-secret-value-1"], "b": {"c": "Bearer abcdefgh"}, "n": 3});
        scrub_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x [redacted]"], "b": {"c": "Bearer [redacted]"}, "n": 3}));
    }

    #[test]
    fn parse_errors_say_where_not_what() {
        let bad = "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: eyJhbGciOiSECRET\n   client-key-data: Zm9v\n";
        let e = serde_saphyr::from_str::<serde_json::Value>(bad).unwrap_err();
        let m = parse_error(&e);
        assert!(!m.contains("eyJhbGciOiSECRET") && !m.contains("Zm9v"), "{m}");
        assert!(m.contains("line "), "{m}");
        let e =
            serde_saphyr::from_str::<std::collections::BTreeMap<String, String>>("eyJhbGciOiBARETOKEN").unwrap_err();
        let m = parse_error(&e);
        assert!(!m.contains("BARETOKEN"), "{m}");
    }
}
