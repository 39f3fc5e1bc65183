//! A timer finer than tokio's for the simulated engine's pacing.
//!
//! tokio's timer works in whole milliseconds and wakes a sleeper one to two milliseconds
//! after its deadline; a mock that claims a 50 ms time to first token would answer in 52. One
//! thread here keeps the deadlines in a heap and sleeps on a condition variable until the
//! earliest (the operating system wakes it within tens of microseconds), then wakes the tasks
//! that are due. One thread serves every stream of the process.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Where a sleeper's waker waits.
type Slot = Arc<Mutex<Option<Waker>>>;

/// A deadline in the heap (ordered by deadline, then by arrival).
struct Entry {
    at: Instant,
    order: u64,
    slot: Slot,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    order: u64,
}

struct Clock {
    timers: Mutex<Timers>,
    changed: Condvar,
}

/// The timer, or `None` if its thread could not start (then tokio's timer is used).
fn clock() -> Option<&'static Clock> {
    static CLOCK: OnceLock<Option<&'static Clock>> = OnceLock::new();
    *CLOCK.get_or_init(|| {
        let clock: &'static Clock = Box::leak(Box::new(Clock {
            timers: Mutex::new(Timers::default()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("vllm-mock-clock".into())
            .spawn(move || clock.run())
            .ok()
            .map(|_| clock)
    })
}

impl Clock {
    fn lock(&self) -> std::sync::MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut timers = self.lock();
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while timers.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
                if let Some(Reverse(entry)) = timers.heap.pop() {
                    due.push(entry.slot);
                }
            }
            if !due.is_empty() {
                drop(timers);
                for slot in due {
                    let waker = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
                timers = self.lock();
                continue;
            }
            timers = match timers.heap.peek().map(|Reverse(e)| e.at) {
                Some(at) => {
                    self.changed
                        .wait_timeout(timers, at.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(timers).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    fn add(&self, at: Instant, slot: Slot) {
        let mut timers = self.lock();
        let earliest = timers.heap.peek().is_none_or(|Reverse(e)| at < e.at);
        timers.order += 1;
        let order = timers.order;
        timers.heap.push(Reverse(Entry { at, order, slot }));
        drop(timers);
        if earliest {
            self.changed.notify_one();
        }
    }
}

/// Sleeps until `at`, woken within tens of microseconds of it.
pub(crate) fn sleep_until(at: tokio::time::Instant) -> Sleep {
    Sleep {
        at: at.into_std(),
        slot: None,
        fallback: clock()
            .is_none()
            .then(|| Box::pin(tokio::time::sleep_until(at))),
    }
}

/// A sleep on the fine timer.
pub(crate) struct Sleep {
    at: Instant,
    slot: Option<Slot>,
    /// tokio's timer, when the fine one's thread could not start.
    fallback: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep").field("at", &self.at).finish()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        if let Some(fallback) = self.fallback.as_mut() {
            return fallback.as_mut().poll(cx);
        }
        match &self.slot {
            Some(slot) => {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            }
            None => {
                let slot: Slot = Arc::new(Mutex::new(Some(cx.waker().clone())));
                if let Some(clock) = clock() {
                    clock.add(self.at, slot.clone());
                }
                self.slot = Some(slot);
            }
        }
        // The deadline may have passed while registering.
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

/// The machine's monotonic clock (`CLOCK_MONOTONIC`) in nanoseconds: the clock Rust's
/// `Instant` reads on Linux, and one every process on the machine shares.
#[cfg(unix)]
pub(crate) fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` only writes the `timespec` we pass, which lives for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (rc == 0).then(|| (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64)
}

#[cfg(not(unix))]
pub(crate) fn monotonic_ns() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleepers_wake_in_deadline_order_and_on_time() {
        let start = tokio::time::Instant::now();
        let mut handles = Vec::new();
        for ms in [30u64, 10, 20] {
            handles.push(tokio::spawn(async move {
                sleep_until(start + Duration::from_millis(ms)).await;
                (ms, start.elapsed())
            }));
        }
        for handle in handles {
            let (ms, took) = handle.await.unwrap();
            assert!(took >= Duration::from_millis(ms), "{ms}: {took:?}");
        }
        // A deadline in the past is ready at once.
        sleep_until(start).await;
    }
}
