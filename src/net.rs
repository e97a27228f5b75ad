//! Timeouts and retries shared by every collector: backon's exponential backoff with
//! jitter, bounded by the run's deadline, for errors the caller classifies as transient,
//! with the peer's Retry-After taking the place of a computed delay.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

/// Backoff policy: the n-th retry (0-based) waits `d = min(max, base * 2^n)` plus a random
/// part of up to `d` (backon's jitter); at most `attempts` tries in all.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_millis(200), max: Duration::from_secs(5), attempts: 5 }
    }
}

impl RetryPolicy {
    /// The delays between tries: `attempts - 1` of them.
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }
}

/// What one attempt asks of the retry loop.
pub enum Attempt<T, E> {
    Done(T),
    /// Permanent failure: return it.
    Fail(E),
    /// Transient failure; `Some(wait)` when the peer said how long (Retry-After).
    Retry(E, Option<Duration>),
}

/// Runs `op` until it succeeds, fails permanently, runs out of attempts, or the next
/// wait would pass `deadline`; the last error is returned.
pub async fn retry<T, E, F, Fut>(policy: RetryPolicy, deadline: Instant, mut op: F) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut backoff = policy.backoff();
    let mut n = 0;
    loop {
        match op(n).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry(e, hint) => {
                // Out of attempts, or the wait would pass the deadline: the last error stands.
                let Some(computed) = backoff.next() else { return Err(e) };
                let wait = hint.unwrap_or(computed);
                if Instant::now() + wait >= deadline {
                    return Err(e);
                }
                tracing::debug!(attempt = n + 1, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// The wait a 429 or 503 asks for, from `Retry-After`: delay-seconds or an HTTP date
/// (a date in the past is no wait). The one parser every peer's answer goes through.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Time left until `deadline`, at least a millisecond so a timeout is always set.
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_stop_at_the_attempts() {
        let p = RetryPolicy { base: Duration::from_millis(100), max: Duration::from_millis(300), attempts: 6 };
        let delays: Vec<Duration> = p.backoff().collect();
        assert_eq!(delays.len(), 5, "attempts - 1 waits");
        for (n, d) in delays.into_iter().enumerate() {
            let floor = Duration::from_millis((100u64 << n).min(300));
            assert!(d >= floor && d <= floor * 2, "retry {n}: {d:?}");
        }
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let calls = AtomicU32::new(0);
        let p = RetryPolicy { base: Duration::from_millis(1), max: Duration::from_millis(2), attempts: 5 };
        let r: Result<u32, &str> = retry(p, Instant::now() + Duration::from_secs(5), |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 2 { Attempt::Retry("503", None) } else { Attempt::Done(n) } }
        })
        .await;
        assert_eq!(r, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = retry(RetryPolicy::default(), Instant::now() + Duration::from_secs(5), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Attempt::Fail("bad_data") }
        })
        .await;
        assert_eq!(r, Err("bad_data"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn deadline_stops_retries() {
        let calls = AtomicU32::new(0);
        let p = RetryPolicy { base: Duration::from_secs(10), max: Duration::from_secs(10), attempts: 50 };
        let r: Result<(), &str> = retry(p, Instant::now() + Duration::from_millis(50), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Attempt::Retry("503", Some(Duration::from_secs(1))) }
        })
        .await;
        assert_eq!(r, Err("503"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        h.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(wait > Duration::from_secs(115) && wait <= Duration::from_secs(120), "{wait:?}");
    }
}
