//! The memory answers may hold: one process-wide budget, a quarter of the memory limit,
//! shared by every answer being read and parsed. A tenant's query that returns more than
//! its share fails as that query's error; it never takes the operator down.
//!
//! The limit is `MORNINGCHECK_MEMORY_LIMIT_BYTES` (the chart sets it from the container's
//! memory limit), else the cgroup's `memory.max`, else 1 GiB.

use std::sync::{Arc, LazyLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The environment variable of the memory limit, in bytes.
pub const MEMORY_LIMIT_ENV: &str = "MORNINGCHECK_MEMORY_LIMIT_BYTES";

/// What reading and parsing an answer takes, in multiples of its text: the text itself
/// and every series' label map and strings. Measured (bench/answer.py): a 40 MB vector
/// answer of 580,000 two-label series peaked at 508 MiB, 12.2 times; rounded up.
const PARSE_FACTOR: usize = 13;

/// Answers in flight together may hold this share of the memory limit.
const SHARE: u64 = 4;

const KIB: usize = 1024;

/// The budget: permits of one KiB each.
pub struct Budget {
    permits: Arc<Semaphore>,
    /// The limit it was made from, for messages.
    limit: u64,
}

/// Memory held for one answer until it is dropped.
pub struct Held(Option<OwnedSemaphorePermit>);

impl Budget {
    /// A budget of a quarter of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        let kib = (limit / SHARE / KIB as u64).clamp(1, u64::from(u32::MAX >> 3)) as usize;
        Self { permits: Arc::new(Semaphore::new(kib)), limit }
    }

    /// The process's budget.
    pub fn process() -> &'static Budget {
        static BUDGET: LazyLock<Budget> = LazyLock::new(|| Budget::new(memory_limit()));
        &BUDGET
    }

    fn bytes(&self) -> usize {
        (self.limit / SHARE) as usize
    }

    /// Nothing held yet.
    pub fn hold(&self) -> Held {
        Held(None)
    }

    /// Adds `bytes` of answer text (and its parse) to `held`, or says why it can't.
    pub fn grow(&self, held: &mut Held, bytes: usize) -> Result<(), String> {
        let kib = (bytes * PARSE_FACTOR).div_ceil(KIB);
        let more = u32::try_from(kib).ok().and_then(|n| self.permits.clone().try_acquire_many_owned(n).ok());
        let Some(more) = more else {
            return Err(format!(
                "answer too large for the memory answers may hold ({} MiB, a quarter of the {} MiB memory limit, shared by all answers in flight); narrow the query",
                self.bytes() >> 20,
                self.limit >> 20
            ));
        };
        match &mut held.0 {
            Some(p) => p.merge(more),
            none => *none = Some(more),
        }
        Ok(())
    }
}

/// The memory limit: the environment's, the cgroup's, or 1 GiB.
fn memory_limit() -> u64 {
    let env = std::env::var(MEMORY_LIMIT_ENV).ok().and_then(|v| v.trim().parse().ok());
    let cgroup =
        || std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|v| v.trim().parse::<u64>().ok());
    env.or_else(cgroup).filter(|&b| b > 0).unwrap_or(1 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_share_a_quarter_of_the_limit() {
        let b = Budget::new(64 << 20);
        // 16 MiB of budget: answers of 1.2 MiB of text at most, parsed.
        let mut first = b.hold();
        b.grow(&mut first, 512 << 10).unwrap();
        b.grow(&mut first, 512 << 10).unwrap();
        let mut second = b.hold();
        let e = b.grow(&mut second, 512 << 10).unwrap_err();
        assert!(e.contains("(16 MiB, a quarter of the 64 MiB memory limit"), "{e}");
        drop(first);
        b.grow(&mut second, 1200 << 10).unwrap();
        assert!(b.grow(&mut second, 100 << 10).is_err());
    }
}
