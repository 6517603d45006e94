//! One timer thread for a process layer.
//!
//! [`Timer::after`] runs a callback on the timer's one thread once a delay
//! has passed, unless its [`TimerHandle`] is cancelled first. The thread is
//! started by the first [`Timer::after`]; a timer that is never used costs
//! no thread. Dropping the [`Timer`] stops and joins the thread: a callback
//! still pending then never runs.
//!
//! Callbacks run one after another on that thread, outside the timer's
//! lock, so a callback may schedule or cancel others, but **it must not
//! block for long**: every later callback waits for it. A callback that has
//! real work to do that may block (I/O, a pipeline's state change) hands
//! it on to a thread of its own.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// Why [`Timer::after`] could not schedule a callback.
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// The timer's thread could not be started.
    #[error("cannot start the timer thread: {0}")]
    Spawn(#[source] std::io::Error),
}

#[derive(Default)]
struct State {
    /// Deadlines in order; an entry whose job is gone was cancelled.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    jobs: HashMap<u64, Job>,
    next_seq: u64,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so a poisoned lock still holds
        // a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One thread that runs callbacks after a delay (see the crate's
/// documentation: callbacks must not block for long).
#[derive(Debug)]
pub struct Timer {
    name: String,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A scheduled callback: [`TimerHandle::cancel`] keeps it from running.
/// Dropping the handle does not cancel it.
#[derive(Clone, Debug)]
pub struct TimerHandle {
    seq: u64,
    shared: Weak<Shared>,
}

impl TimerHandle {
    /// Keeps the callback from running; `true` if it had not run (nor
    /// started) yet.
    pub fn cancel(&self) -> bool {
        match self.shared.upgrade() {
            Some(shared) => shared.lock().jobs.remove(&self.seq).is_some(),
            None => false,
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Timer {
    /// A timer whose thread, once started, is named `name`.
    pub fn new(name: impl Into<String>) -> Timer {
        Timer {
            name: name.into(),
            shared: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Runs `f` on the timer's thread once `delay` has passed
    /// (`Duration::ZERO`: as soon as the thread gets to it, off the
    /// caller's thread). Callbacks due at the same instant run in the order
    /// they were scheduled. `f` must not block for long.
    pub fn after(
        &self,
        delay: Duration,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<TimerHandle, TimerError> {
        self.start()?;
        let deadline = Instant::now() + delay;
        let seq = {
            let mut state = self.shared.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.due.push(Reverse((deadline, seq)));
            state.jobs.insert(seq, Box::new(f));
            seq
        };
        self.shared.wake.notify_one();
        Ok(TimerHandle {
            seq,
            shared: Arc::downgrade(&self.shared),
        })
    }

    fn start(&self) -> Result<(), TimerError> {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_none() {
            let shared = Arc::clone(&self.shared);
            let handle = std::thread::Builder::new()
                .name(self.name.clone())
                .spawn(move || run(&shared))
                .map_err(TimerError::Spawn)?;
            *thread = Some(handle);
        }
        Ok(())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        let thread = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = thread.take() {
            // A callback may hold the last owner of the timer: then the
            // thread ends on its own when that callback returns.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

fn run(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        let now = Instant::now();
        let Some(&Reverse((deadline, seq))) = state.due.peek() else {
            state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        if deadline > now {
            state = shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            continue;
        }
        state.due.pop();
        let Some(job) = state.jobs.remove(&seq) else {
            continue; // cancelled
        };
        drop(state);
        // A panicking callback: the panic hook has printed it; the timer
        // goes on with the others.
        let _ = catch_unwind(AssertUnwindSafe(job));
        state = shared.lock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn runs_in_deadline_order_then_schedule_order() {
        let timer = Timer::new("test-timer");
        let (tx, rx) = mpsc::channel();
        for (delay, tag) in [(300, "c"), (100, "a"), (200, "b1"), (200, "b2"), (0, "now")] {
            let tx = tx.clone();
            timer
                .after(Duration::from_millis(delay), move || tx.send(tag).unwrap())
                .unwrap();
        }
        let got: Vec<_> = (0..5).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(got, ["now", "a", "b1", "b2", "c"]);
    }

    #[test]
    fn waits_for_the_delay() {
        let timer = Timer::new("test-timer");
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        timer
            .after(Duration::from_millis(50), move || tx.send(()).unwrap())
            .unwrap();
        rx.recv_timeout(WAIT).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_cancelled_callback_never_runs() {
        let timer = Timer::new("test-timer");
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let cancelled = timer
            .after(Duration::from_millis(200), move || {
                tx2.send("cancelled").unwrap()
            })
            .unwrap();
        let kept = timer
            .after(Duration::from_millis(300), move || tx.send("kept").unwrap())
            .unwrap();
        assert!(cancelled.cancel());
        assert!(!cancelled.cancel(), "a second cancel finds nothing");
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), "kept");
        assert!(!kept.cancel(), "too late: it ran");
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn drop_joins_the_thread_and_skips_pending_callbacks() {
        let timer = Timer::new("test-timer");
        let (tx, rx) = mpsc::channel();
        let (started_tx, started_rx) = mpsc::channel();
        let slow = tx.clone();
        timer
            .after(Duration::ZERO, move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                slow.send("running one finished").unwrap();
            })
            .unwrap();
        let pending = timer
            .after(Duration::from_millis(10), move || {
                tx.send("pending").unwrap()
            })
            .unwrap();
        started_rx.recv_timeout(WAIT).unwrap();
        drop(timer);
        // Joined: the callback running at the drop has finished...
        assert_eq!(rx.try_recv().unwrap(), "running one finished");
        // ...and the pending one never runs, even later.
        std::thread::sleep(Duration::from_millis(30));
        assert!(rx.try_recv().is_err());
        assert!(!pending.cancel(), "the timer is gone");
    }

    #[test]
    fn a_callback_can_schedule_another() {
        let timer = Arc::new(Timer::new("test-timer"));
        let (tx, rx) = mpsc::channel();
        let weak = Arc::downgrade(&timer);
        timer
            .after(Duration::ZERO, move || {
                tx.send("first").unwrap();
                let timer = weak.upgrade().unwrap();
                timer
                    .after(Duration::from_millis(10), move || {
                        tx.send("second").unwrap()
                    })
                    .unwrap();
            })
            .unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), "first");
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), "second");
    }

    #[test]
    fn a_callback_may_drop_the_last_owner_of_the_timer() {
        let timer = Arc::new(Timer::new("test-timer"));
        let (tx, rx) = mpsc::channel();
        let owner = Arc::clone(&timer);
        let never = tx.clone();
        let (go_tx, go_rx) = mpsc::channel();
        timer
            .after(Duration::from_millis(100), move || {
                never.send("never").unwrap()
            })
            .unwrap();
        timer
            .after(Duration::ZERO, move || {
                go_rx.recv().unwrap();
                drop(owner); // the last owner, dropped on the timer's thread
                tx.send("dropped").unwrap();
            })
            .unwrap();
        drop(timer);
        go_tx.send(()).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), "dropped");
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_timer() {
        let timer = Timer::new("test-timer");
        let (tx, rx) = mpsc::channel();
        timer.after(Duration::ZERO, || panic!("boom")).unwrap();
        timer
            .after(Duration::from_millis(10), move || tx.send(()).unwrap())
            .unwrap();
        rx.recv_timeout(WAIT).unwrap();
    }

    #[test]
    fn an_unused_timer_has_no_thread() {
        let timer = Timer::new("test-timer");
        assert!(timer.thread.lock().unwrap().is_none());
    }
}
