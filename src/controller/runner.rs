//! The runner: each claimed run works in a task of its own, at most `max` at once across
//! all MorningChecks, so reconcile never holds a run for minutes.
//!
//! A run is admitted in three steps. Reconcile asks for a permit ([`Runner::admit`]);
//! when none is free the MorningCheck queues, holding no claim, and reconcile returns.
//! Once a permit frees, the queued key is granted it and woken; its next reconcile
//! claims the slot with the permit and hands the run to [`Runner::spawn`]. When the run
//! ends its key is woken again, so the completion is reconciled at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::mpsc;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinSet;
use tracing::error;

use crate::api::MorningCheck;

/// A MorningCheck, by namespace and name.
pub type Key = ObjectRef<MorningCheck>;

/// What a reconcile may do about a due run.
#[derive(Debug)]
pub enum Admission {
    /// Run it now, holding this permit.
    Run(OwnedSemaphorePermit),
    /// Wait: the key is woken when a permit is its own.
    Queued,
    /// The controller is shutting down: start nothing.
    Closed,
}

pub struct Runner {
    permits: Arc<Semaphore>,
    state: Arc<Mutex<State>>,
    wake: mpsc::UnboundedSender<Key>,
    woken: Mutex<Option<mpsc::UnboundedReceiver<Key>>>,
}

#[derive(Default)]
struct State {
    tasks: JoinSet<()>,
    /// Waiting for a permit.
    queued: HashSet<Key>,
    /// Granted a permit, not yet claimed: the key's next reconcile claims with it.
    granted: HashMap<Key, OwnedSemaphorePermit>,
    /// Running.
    running: HashSet<Key>,
    /// Runs that ended here without their result written: why, for the next attempt's note.
    unwritten: HashMap<Key, String>,
}

impl Runner {
    /// A runner of at most `max` runs at once.
    pub fn new(max: usize) -> Self {
        let (wake, woken) = mpsc::unbounded();
        Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
            state: Arc::default(),
            wake,
            woken: Mutex::new(Some(woken)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys to reconcile again: a permit granted, a run ended. Taken once, by the
    /// controller.
    pub fn woken(&self) -> Option<mpsc::UnboundedReceiver<Key>> {
        self.woken.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether a run of `key` is in progress in this process.
    pub fn busy(&self, key: &Key) -> bool {
        self.state().running.contains(key)
    }

    /// A permit for a run of `key` now, or a place in the queue.
    pub fn admit(&self, key: &Key) -> Admission {
        let mut s = self.state();
        if self.permits.is_closed() {
            s.granted.clear();
            return Admission::Closed;
        }
        if let Some(permit) = s.granted.remove(key) {
            return Admission::Run(permit);
        }
        if s.queued.contains(key) {
            return Admission::Queued;
        }
        // Free permits are only left over while nobody waits, so this never jumps the queue.
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => return Admission::Run(permit),
            Err(TryAcquireError::Closed) => return Admission::Closed,
            Err(TryAcquireError::NoPermits) => {}
        }
        s.queued.insert(key.clone());
        let (permits, state, wake, key) = (self.permits.clone(), self.state.clone(), self.wake.clone(), key.clone());
        s.tasks.spawn(async move {
            let permit = permits.acquire_owned().await;
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.queued.remove(&key);
            // Closed: shutting down, and the run stays due for the next controller.
            if let Ok(permit) = permit {
                s.granted.insert(key.clone(), permit);
                drop(s);
                let _ = wake.unbounded_send(key);
            }
        });
        Admission::Queued
    }

    /// Keeps a permit for `key`'s next reconcile: its claim did not go through this time.
    pub fn hold(&self, key: Key, permit: OwnedSemaphorePermit) {
        self.state().granted.insert(key, permit);
    }

    /// `key` has nothing due: a permit granted to it goes back.
    pub fn release(&self, key: &Key) {
        self.state().granted.remove(key);
    }

    /// Records that `key`'s run ended without its result written, and why.
    pub fn unwritten(&self, key: Key, why: String) {
        self.state().unwritten.insert(key, why);
    }

    /// Why `key`'s last run here ended without its result written, if it did.
    pub fn take_unwritten(&self, key: &Key) -> Option<String> {
        self.state().unwritten.remove(key)
    }

    /// Gives back the permits granted to MorningChecks that no longer exist.
    pub fn retain(&self, exists: impl Fn(&Key) -> bool) {
        let mut s = self.state();
        s.granted.retain(|k, _| exists(k));
        s.unwritten.retain(|k, _| exists(k));
    }

    /// Runs `run` for `key` in a task of its own, holding `permit` until it ends. The key
    /// is woken when it ends, however it ends.
    pub fn spawn(&self, key: Key, permit: OwnedSemaphorePermit, run: impl Future<Output = ()> + Send + 'static) {
        let mut s = self.state();
        while let Some(ended) = s.tasks.try_join_next() {
            report(ended);
        }
        s.running.insert(key.clone());
        let done = Done { state: self.state.clone(), wake: self.wake.clone(), key };
        s.tasks.spawn(async move {
            let _done = done;
            let _permit = permit;
            run.await;
        });
    }

    /// Starts nothing more: queued keys give up their place (their runs stay due, unclaimed).
    pub fn close(&self) {
        self.permits.close();
        self.state().granted.clear();
    }

    /// Closes, then waits for the runs in progress to end.
    pub async fn finish(&self) {
        self.close();
        let mut tasks = std::mem::take(&mut self.state().tasks);
        while let Some(ended) = tasks.join_next().await {
            report(ended);
        }
    }

    /// Stops every run where it stands, as a killed process would.
    pub fn abort(&self) {
        self.close();
        self.state().tasks.abort_all();
    }
}

fn report(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended
        && e.is_panic()
    {
        error!(error = %e, "a run panicked; its MorningCheck is run again as a new attempt");
    }
}

/// Marks a run over when its task ends, by completion, panic or abort.
struct Done {
    state: Arc<Mutex<State>>,
    wake: mpsc::UnboundedSender<Key>,
    key: Key,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).running.remove(&self.key);
        let _ = self.wake.unbounded_send(self.key.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;

    fn key(name: &str) -> Key {
        ObjectRef::new(name).within("ns")
    }

    fn permit(a: Admission) -> OwnedSemaphorePermit {
        match a {
            Admission::Run(p) => p,
            other => panic!("expected a permit, got {other:?}"),
        }
    }

    /// With one permit: a second key queues, is woken when the first run ends, and then
    /// holds the permit, which nobody else can take.
    #[tokio::test]
    async fn a_queued_key_is_woken_with_its_permit_when_a_run_ends() {
        let runner = Runner::new(1);
        let mut woken = runner.woken().unwrap();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        runner.spawn(key("a"), permit(runner.admit(&key("a"))), async move {
            let _ = wait.await;
        });
        assert!(runner.busy(&key("a")));
        assert!(matches!(runner.admit(&key("b")), Admission::Queued));
        assert!(matches!(runner.admit(&key("b")), Admission::Queued), "queued once");
        go.send(()).unwrap();
        let mut seen = vec![woken.next().await.unwrap(), woken.next().await.unwrap()];
        seen.sort_by_key(|k| k.name.clone());
        assert_eq!(seen, vec![key("a"), key("b")]);
        assert!(!runner.busy(&key("a")));
        assert!(matches!(runner.admit(&key("c")), Admission::Queued), "b's permit is b's");
        let p = permit(runner.admit(&key("b")));
        runner.hold(key("b"), p);
        runner.release(&key("b"));
        // Released: c, queued behind it, gets the permit.
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), woken.next()).await.unwrap(), Some(key("c")));
    }

    /// A run that panics still ends: its key is free and woken, and the permit returns.
    #[tokio::test]
    async fn a_panicking_run_frees_its_key_and_permit() {
        let runner = Runner::new(1);
        let mut woken = runner.woken().unwrap();
        runner.spawn(key("a"), permit(runner.admit(&key("a"))), async { panic!("boom") });
        assert_eq!(woken.next().await, Some(key("a")));
        assert!(!runner.busy(&key("a")));
        let _held = permit(runner.admit(&key("a")));
    }

    /// Shutdown: queued keys are never granted, finish waits for the run in progress.
    #[tokio::test]
    async fn finish_waits_for_runs_and_starts_none() {
        let runner = Runner::new(1);
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ended.clone();
        runner.spawn(key("a"), permit(runner.admit(&key("a"))), async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(matches!(runner.admit(&key("b")), Admission::Queued));
        runner.finish().await;
        assert!(ended.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(runner.admit(&key("b")), Admission::Closed));
    }
}
