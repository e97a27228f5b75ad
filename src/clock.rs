//! The controller's clock, injected so schedule behaviour is tested without waiting.

use std::sync::Mutex;

use jiff::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Wall-clock time set off by a fixed amount: a machine whose clock is wrong (tests of
/// clock skew between replicas).
pub struct OffsetClock(pub jiff::SignedDuration);

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp::now().saturating_add(self.0).unwrap_or_else(|_| Timestamp::now())
    }
}

/// A clock that only moves when told to.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(t: Timestamp) -> Self {
        Self(Mutex::new(t))
    }

    pub fn set(&self, t: Timestamp) {
        *self.0.lock().expect("clock lock") = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}
