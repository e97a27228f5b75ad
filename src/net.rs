//! Timeouts and retries shared by every collector: exponential backoff with full jitter,
//! bounded by the run's deadline, for errors the caller classifies as transient.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Backoff policy: the n-th retry waits a random time in `[0, min(max, base * 2^n)]`.
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
    /// The delay before retry number `n` (0-based): full jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let cap = self.base.saturating_mul(1u32 << n.min(16)).min(self.max);
        let millis = cap.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
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
    let mut n = 0;
    loop {
        match op(n).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry(e, hint) => {
                let wait = hint.unwrap_or_else(|| policy.delay(n));
                if n + 1 >= policy.attempts || Instant::now() + wait >= deadline {
                    return Err(e);
                }
                tracing::debug!(attempt = n + 1, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
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
    fn jitter_stays_within_cap() {
        let p = RetryPolicy { base: Duration::from_millis(100), max: Duration::from_millis(300), attempts: 5 };
        for n in 0..10 {
            let cap = Duration::from_millis((100u64 << n).min(300));
            assert!(p.delay(n) <= cap);
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
}
