//! Ctrl-C and the release: before phase 2 an interruption stops the process at once (nothing
//! a deploy follows has moved); during phase 2 the first Ctrl-C asks the release to stop
//! moving tags and put back the ones it moved, and a second one stops at once, listing what
//! is left. The signal handler runs on its own thread; this is what it shares with the
//! release.

use crate::events::Phase;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    phase: Mutex<Option<Phase>>,
    requested: AtomicBool,
    /// Moving tags moved by this run and not (yet) put back: `repository:tag`.
    left: Mutex<Vec<String>>,
    notify: tokio::sync::Notify,
}

/// A handle shared by the release and the signal handler.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<State>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// The phase the release is in, when it has started one.
    pub fn phase(&self) -> Option<Phase> {
        *self.0.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn enter(&self, phase: Phase) {
        *self.0.phase.lock().unwrap_or_else(|e| e.into_inner()) = Some(phase);
    }

    /// Asks a release in phase 2 to stop and restore. Returns `false` when no release is
    /// moving tags (or one was asked already): the caller then stops the process itself.
    pub fn request(&self) -> bool {
        if self.phase() != Some(Phase::Moving) {
            return false;
        }
        if self.0.requested.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.0.notify.notify_waiters();
        true
    }

    pub fn requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Waits until an interruption is requested.
    pub(crate) async fn wait(&self) {
        let notified = self.0.notify.notified();
        if self.requested() {
            return;
        }
        notified.await
    }

    /// The moving tags this run moved and has not put back (`repository:tag`).
    pub fn left(&self) -> Vec<String> {
        self.0
            .left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_left(&self, left: Vec<String>) {
        *self.0.left.lock().unwrap_or_else(|e| e.into_inner()) = left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_release_moving_tags_takes_the_request() {
        let i = Interrupt::new();
        assert!(!i.request(), "nothing to restore before phase 2");
        i.enter(Phase::Identity);
        assert!(!i.request());
        i.enter(Phase::Moving);
        assert!(i.request());
        assert!(i.requested());
        assert!(!i.request(), "a second Ctrl-C stops at once");
    }

    #[tokio::test]
    async fn a_request_wakes_the_release() {
        let i = Interrupt::new();
        i.enter(Phase::Moving);
        let waiter = {
            let i = i.clone();
            tokio::spawn(async move { i.wait().await })
        };
        tokio::task::yield_now().await;
        assert!(i.request());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
