//! A stand-in for the three methods of Slack's Web API a Slack app's digest calls:
//! `chat.postMessage`, `chat.update` and `chat.delete`, as Slack documents them.
//!
//! - Every call needs `Authorization: Bearer <the app's token>`: none is `not_authed`, another
//!   `invalid_auth`.
//! - Answers are HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": <code>}`.
//! - A posted message gets a `ts`; a reply names its parent in `thread_ts` (an unknown
//!   one is `thread_not_found`); `chat.update` edits the stored message, `chat.delete`
//!   removes it (`message_not_found` when there is none).
//! - The channel is its ID or `#name`; an unknown one is `channel_not_found`.
//! - Messages to one channel faster than the limit get HTTP 429 with `Retry-After`.
//! - More than 50 blocks is `invalid_blocks`; text over 40,000 characters `msg_too_long`.
//! - An error code can be ordered for the next posts (`not_in_channel`, `missing_scope`, …).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The channel the stand-in knows: its ID and its name.
pub const CHANNEL_ID: &str = "C0MORNING";
pub const CHANNEL_NAME: &str = "#ops-morning";

/// A message as the stand-in holds it.
#[derive(Debug, Clone)]
pub struct Message {
    pub ts: String,
    pub thread_ts: Option<String>,
    /// The request's body as posted (`text`, `blocks`, flags), with later edits applied.
    pub body: Value,
    pub edits: u32,
    pub deleted: bool,
    pub at: Instant,
}

#[derive(Default)]
pub struct State {
    pub messages: Vec<Message>,
    /// Every request: method and HTTP status answered.
    pub calls: Vec<(String, u16)>,
    /// Answered instead of posting, from the `fail_after`-th post on.
    pub fail_with: Option<String>,
    pub fail_after: usize,
    /// The least time between two messages to the channel; faster ones get 429.
    pub min_interval: Duration,
    pub rate_limited: usize,
    /// How long a reply (a post with `thread_ts`) waits for its answer.
    pub reply_delay: Duration,
    posts: usize,
    last_post: Option<Instant>,
    next_ts: u64,
}

pub struct SlackApi {
    /// The Web API's base URL, e.g. `http://127.0.0.1:41234/api/`.
    pub url: String,
    pub token: String,
    pub state: Arc<Mutex<State>>,
}

impl SlackApi {
    pub fn start(token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State { min_interval: Duration::from_millis(900), ..State::default() }));
        let (shared, token_owned) = (state.clone(), token.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, token) = (shared.clone(), token_owned.clone());
                std::thread::spawn(move || serve(stream, &state, &token));
            }
        });
        Self { url, token: token.to_string(), state }
    }

    /// Top-level messages not deleted.
    pub fn summaries(&self) -> Vec<Message> {
        self.state.lock().unwrap().messages.iter().filter(|m| m.thread_ts.is_none() && !m.deleted).cloned().collect()
    }

    /// Replies under `ts` not deleted.
    pub fn replies(&self, ts: &str) -> Vec<Message> {
        let st = self.state.lock().unwrap();
        st.messages.iter().filter(|m| m.thread_ts.as_deref() == Some(ts) && !m.deleted).cloned().collect()
    }

    /// Orders `code` as the answer to every post from the `after`-th on (0: the next).
    pub fn fail_with(&self, code: Option<&str>, after: usize) {
        let mut st = self.state.lock().unwrap();
        st.fail_with = code.map(str::to_string);
        st.fail_after = st.posts + after;
    }

    /// Every message received, validated with Slack's own block models.
    pub fn validate_all(&self) {
        let bodies: Vec<Value> = self.state.lock().unwrap().messages.iter().map(|m| m.body.clone()).collect();
        for b in bodies {
            super::slack_models_accept(&json!({"text": b["text"], "blocks": b["blocks"]}));
        }
    }
}

fn serve(mut s: TcpStream, state: &Mutex<State>, token: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let Some((head, body)) = read_request(&mut s) else { return };
    let delay = state.lock().unwrap().reply_delay;
    if !delay.is_zero() && String::from_utf8_lossy(&body).contains("\"thread_ts\"") {
        std::thread::sleep(delay);
    }
    let method = head.lines().next().and_then(|l| l.split(' ').nth(1)).unwrap_or_default().trim_start_matches("/api/");
    let auth = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("authorization").then(|| v.trim().to_string())
    });
    let (status, retry_after, answer) = answer(state, method, auth.as_deref(), token, &body);
    state.lock().unwrap().calls.push((method.to_string(), status));
    let text = answer.to_string();
    let extra = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// One HTTP request: its head, then as much body as Content-Length says.
pub fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Some((head, buf[end + 4..].to_vec()));
    }
}

fn error(code: &str) -> (u16, Option<u64>, Value) {
    (200, None, json!({"ok": false, "error": code}))
}

fn answer(
    state: &Mutex<State>,
    method: &str,
    auth: Option<&str>,
    token: &str,
    body: &[u8],
) -> (u16, Option<u64>, Value) {
    if !["chat.postMessage", "chat.update", "chat.delete"].contains(&method) {
        return (404, None, json!({"ok": false, "error": "unknown_method"}));
    }
    match auth.and_then(|a| a.strip_prefix("Bearer ")) {
        None => return error("not_authed"),
        Some(t) if t != token => return error("invalid_auth"),
        Some(_) => {}
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else { return error("invalid_json") };
    let channel = match body["channel"].as_str() {
        Some(CHANNEL_ID) | Some(CHANNEL_NAME) => CHANNEL_ID,
        Some(_) => return error("channel_not_found"),
        None => return error("channel_not_found"),
    };
    let mut st = state.lock().unwrap();
    let now = Instant::now();
    if method != "chat.delete" {
        if st.last_post.is_some_and(|last| now.duration_since(last) < st.min_interval) {
            st.rate_limited += 1;
            return (429, Some(1), json!({"ok": false, "error": "ratelimited"}));
        }
        if body["blocks"].as_array().is_some_and(|b| b.len() > 50) {
            return error("invalid_blocks");
        }
        if body["text"].as_str().is_some_and(|t| t.chars().count() > 40_000) {
            return error("msg_too_long");
        }
        st.last_post = Some(now);
    }
    match method {
        "chat.postMessage" => {
            st.posts += 1;
            if let Some(code) = st.fail_with.clone().filter(|_| st.posts > st.fail_after) {
                return error(&code);
            }
            let thread_ts = body["thread_ts"].as_str().map(str::to_string);
            if let Some(parent) = &thread_ts
                && !st.messages.iter().any(|m| &m.ts == parent && m.thread_ts.is_none() && !m.deleted)
            {
                return error("thread_not_found");
            }
            st.next_ts += 1;
            let ts = format!("1764658800.{:06}", st.next_ts);
            st.messages.push(Message { ts: ts.clone(), thread_ts, body, edits: 0, deleted: false, at: now });
            (200, None, json!({"ok": true, "channel": channel, "ts": ts}))
        }
        "chat.update" => {
            let ts = body["ts"].as_str().unwrap_or_default().to_string();
            let Some(m) = st.messages.iter_mut().find(|m| m.ts == ts && !m.deleted) else {
                return error("message_not_found");
            };
            m.body["text"] = body["text"].clone();
            m.body["blocks"] = body["blocks"].clone();
            m.edits += 1;
            (200, None, json!({"ok": true, "channel": channel, "ts": ts}))
        }
        _ => {
            let ts = body["ts"].as_str().unwrap_or_default().to_string();
            let Some(m) = st.messages.iter_mut().find(|m| m.ts == ts && !m.deleted) else {
                return error("message_not_found");
            };
            m.deleted = true;
            (200, None, json!({"ok": true, "channel": channel, "ts": ts}))
        }
    }
}
