//! Lock-free sliding windows over recent outcomes.
//!
//! Both windows keep running totals, so recording an outcome and reading the rates are
//! O(1); memory is fixed at construction whatever the call rate.

use std::sync::atomic::Ordering::*;

use crate::core::sync::{AtomicI64, AtomicU64};

use crate::clock::{to_nanos, Nanos};
use crate::config::Window;

/// Totals over the live part of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WindowStats {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
    /// Set on the outcome that filled a count window's last slot: the window holds
    /// `size` calls none of which an earlier such outcome saw (once per `size` calls).
    pub(crate) completed: bool,
}

impl WindowStats {
    pub(crate) fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    pub(crate) fn slow_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }
}

pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A count or time window.
#[derive(Debug)]
pub(crate) enum SlidingWindow {
    /// Boxed: its cache-line padding would otherwise grow every breaker, windowed or
    /// not, by three lines.
    Count(Box<CountWindow>),
    Time(TimeWindow),
}

impl SlidingWindow {
    pub(crate) fn new(window: Window) -> SlidingWindow {
        match window {
            Window::Count(size) => SlidingWindow::Count(Box::new(CountWindow::new(size))),
            Window::Time { length, buckets } => {
                SlidingWindow::Time(TimeWindow::new(to_nanos(length), buckets))
            }
        }
    }

    /// Whether recording needs the current time.
    pub(crate) fn is_timed(&self) -> bool {
        matches!(self, SlidingWindow::Time(_))
    }

    /// Records one counted outcome at `now` and returns the totals including it.
    pub(crate) fn record(&self, now: Nanos, failure: bool, slow: bool) -> WindowStats {
        match self {
            SlidingWindow::Count(window) => window.record(failure, slow),
            SlidingWindow::Time(window) => window.record(now, failure, slow),
        }
    }

    /// The totals at `now`, without changing the window.
    pub(crate) fn stats(&self, now: Nanos) -> WindowStats {
        match self {
            SlidingWindow::Count(window) => window.stats(),
            SlidingWindow::Time(window) => window.stats(now),
        }
    }

    /// Whether one more success would change nothing (see
    /// [`CountWindow::absorbs_success`]); never for a time window, whose totals count
    /// every call.
    #[inline]
    pub(crate) fn absorbs_success(&self) -> bool {
        match self {
            SlidingWindow::Count(window) => window.absorbs_success(),
            SlidingWindow::Time(_) => false,
        }
    }

    /// Forgets every outcome.
    pub(crate) fn reset(&self) {
        match self {
            SlidingWindow::Count(window) => window.reset(),
            SlidingWindow::Time(window) => window.reset(),
        }
    }
}

/// The last `size` outcomes as a ring of bits (one bit per call for "failed", one for
/// "slow") plus running counts of set bits.
///
/// Every bit change is made with an atomic read-modify-write whose returned old value
/// decides the count's delta, so the counts always converge to the number of set bits:
/// racing writers, lapping writers and [`reset`](Self::reset) cannot make them drift.
///
/// Threads sharing a breaker each write `head` on every recorded call, and the counts
/// only when a failure or slow call enters or leaves; the rest is read-only. Each of
/// the three groups has its own cache line, so a call's reads of the read-only part
/// and of the counts do not wait for the line another thread's `head` bump took.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u64,
    failure_bits: Box<[AtomicU64]>,
    slow_bits: Box<[AtomicU64]>,
    /// Outcomes ever recorded since the last reset; the next slot is `head % size`.
    head: OwnLine<AtomicU64>,
    counts: OwnLine<SetBits>,
}

/// The number of set bits in each ring of a [`CountWindow`].
#[derive(Debug)]
struct SetBits {
    failures: AtomicI64,
    slow: AtomicI64,
}

/// A value alone on its cache line(s): nothing else shares the line a writer takes.
#[derive(Debug)]
#[repr(align(64))]
struct OwnLine<T>(T);

// What the `CountWindow` doc comment relies on: each padded group fills whole lines.
const _: () = assert!(std::mem::align_of::<OwnLine<AtomicU64>>() == 64);
#[cfg(not(tcb_loom))]
const _: () = assert!(std::mem::size_of::<OwnLine<SetBits>>() == 64);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> CountWindow {
        let words = (size as usize).div_ceil(64);
        CountWindow {
            size: u64::from(size.max(1)),
            head: OwnLine(AtomicU64::new(0)),
            failure_bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            slow_bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            counts: OwnLine(SetBits {
                failures: AtomicI64::new(0),
                slow: AtomicI64::new(0),
            }),
        }
    }

    fn record(&self, failure: bool, slow: bool) -> WindowStats {
        let position = self.head.fetch_add(1, AcqRel);
        let slot = position % self.size;
        set_bit(&self.failure_bits, slot, failure, &self.counts.failures);
        set_bit(&self.slow_bits, slot, slow, &self.counts.slow);
        WindowStats {
            completed: slot + 1 == self.size,
            ..self.totals(position.saturating_add(1))
        }
    }

    fn stats(&self) -> WindowStats {
        self.totals(self.head.load(Acquire))
    }

    /// Whether recording one more success would change nothing: the window is full
    /// and holds neither a failure nor a slow call, so every slot holds a success and
    /// writing one more only turns a ring of identical slots. Such a success is not
    /// recorded at all, which keeps the common closed path read-only here (threads
    /// sharing a breaker do not take this line from each other) and free of a locked
    /// instruction. A failure recorded later still ages out after exactly `size`
    /// recorded calls, since no success is skipped while one is in the window.
    ///
    /// Racing a failure being recorded (its slot taken, its count not yet raised), the
    /// success is ordered before that failure, which concurrent calls allow; the bits
    /// are untouched, so the counts still converge to them.
    #[inline]
    fn absorbs_success(&self) -> bool {
        self.counts.failures.load(Relaxed) == 0
            && self.counts.slow.load(Relaxed) == 0
            && self.head.load(Relaxed) >= self.size
    }

    fn totals(&self, recorded: u64) -> WindowStats {
        let calls = recorded.min(self.size);
        WindowStats {
            calls,
            failures: clamp(self.counts.failures.load(Acquire), calls),
            slow: clamp(self.counts.slow.load(Acquire), calls),
            completed: false,
        }
    }

    fn reset(&self) {
        self.head.store(0, Release);
        clear_bits(&self.failure_bits, &self.counts.failures);
        clear_bits(&self.slow_bits, &self.counts.slow);
    }
}

fn set_bit(bits: &[AtomicU64], slot: u64, value: bool, count: &AtomicI64) {
    let word = &bits[(slot / 64) as usize];
    let mask = 1u64 << (slot % 64);
    // Reading first skips the write when the slot already holds the value, which is
    // the common case (a success replacing a success).
    let current = word.load(Relaxed) & mask != 0;
    if current == value {
        return;
    }
    if value {
        if word.fetch_or(mask, AcqRel) & mask == 0 {
            count.fetch_add(1, AcqRel);
        }
    } else if word.fetch_and(!mask, AcqRel) & mask != 0 {
        count.fetch_sub(1, AcqRel);
    }
}

fn clear_bits(bits: &[AtomicU64], count: &AtomicI64) {
    for word in bits {
        let cleared = word.swap(0, AcqRel).count_ones();
        count.fetch_sub(i64::from(cleared), AcqRel);
    }
}

fn clamp(count: i64, calls: u64) -> u64 {
    u64::try_from(count).unwrap_or(0).min(calls)
}

/// The outcomes of the last `buckets * bucket_nanos` nanoseconds in a ring of time
/// buckets, with running totals over the live buckets.
///
/// `head` is the newest bucket epoch (`now / bucket_nanos`) prepared for writing. The
/// thread that advances it clears the buckets that fell out of the window and subtracts
/// their counts from the totals, at most `buckets` of them, each once per period: O(1)
/// amortized per call. A write racing that clearing may be dropped from both the
/// bucket and the totals together, so the totals never drift.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: Box<[Bucket]>,
    head: AtomicU64,
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

#[derive(Debug, Default)]
struct Bucket {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

impl TimeWindow {
    pub(crate) fn new(length_nanos: u64, buckets: u32) -> TimeWindow {
        let count = u64::from(buckets.max(1));
        TimeWindow {
            bucket_nanos: (length_nanos / count).max(1),
            buckets: (0..count).map(|_| Bucket::default()).collect(),
            head: AtomicU64::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn bucket(&self, epoch: u64) -> &Bucket {
        &self.buckets[(epoch % self.len()) as usize]
    }

    fn record(&self, now: Nanos, failure: bool, slow: bool) -> WindowStats {
        let epoch = now / self.bucket_nanos;
        self.advance(epoch);
        let bucket = self.bucket(epoch);
        bucket.calls.fetch_add(1, AcqRel);
        self.calls.fetch_add(1, AcqRel);
        if failure {
            bucket.failures.fetch_add(1, AcqRel);
            self.failures.fetch_add(1, AcqRel);
        }
        if slow {
            bucket.slow.fetch_add(1, AcqRel);
            self.slow.fetch_add(1, AcqRel);
        }
        self.totals()
    }

    /// Makes `epoch` the newest bucket, clearing the ones that left the window.
    fn advance(&self, epoch: u64) {
        let mut head = self.head.load(Acquire);
        while epoch > head {
            match self
                .head
                .compare_exchange_weak(head, epoch, AcqRel, Acquire)
            {
                Ok(_) => {
                    let first = (head + 1).max((epoch + 1).saturating_sub(self.len()));
                    for stale in first..=epoch {
                        self.clear(self.bucket(stale));
                    }
                    return;
                }
                Err(actual) => head = actual,
            }
        }
    }

    fn clear(&self, bucket: &Bucket) {
        for (cell, total) in [
            (&bucket.calls, &self.calls),
            (&bucket.failures, &self.failures),
            (&bucket.slow, &self.slow),
        ] {
            let removed = cell.swap(0, AcqRel);
            total.fetch_sub(i64::try_from(removed).unwrap_or(i64::MAX), AcqRel);
        }
    }

    fn totals(&self) -> WindowStats {
        let calls = u64::try_from(self.calls.load(Acquire)).unwrap_or(0);
        WindowStats {
            calls,
            failures: clamp(self.failures.load(Acquire), calls),
            slow: clamp(self.slow.load(Acquire), calls),
            completed: false,
        }
    }

    /// Totals at `now`, leaving out buckets that have expired but were not cleared yet
    /// because no call came since.
    fn stats(&self, now: Nanos) -> WindowStats {
        let epoch = now / self.bucket_nanos;
        let head = self.head.load(Acquire);
        if epoch <= head {
            return self.totals();
        }
        let oldest_live = (epoch + 1).saturating_sub(self.len());
        let first = oldest_live.max((head + 1).saturating_sub(self.len()));
        let mut stats = WindowStats::default();
        for live in first..=head {
            let bucket = self.bucket(live);
            stats.calls += bucket.calls.load(Acquire);
            stats.failures += bucket.failures.load(Acquire);
            stats.slow += bucket.slow.load(Acquire);
        }
        stats.failures = stats.failures.min(stats.calls);
        stats.slow = stats.slow.min(stats.calls);
        stats
    }

    fn reset(&self) {
        for bucket in self.buckets.iter() {
            self.clear(bucket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_slides_out_old_outcomes() {
        let window = CountWindow::new(4);
        for _ in 0..4 {
            window.record(true, false);
        }
        assert_eq!(window.stats().failures, 4);
        window.record(false, false);
        window.record(false, true);
        let stats = window.stats();
        assert_eq!((stats.calls, stats.failures, stats.slow), (4, 2, 1));
        for _ in 0..4 {
            window.record(false, false);
        }
        assert_eq!(
            window.stats(),
            WindowStats {
                calls: 4,
                failures: 0,
                slow: 0,
                completed: false
            }
        );
    }

    #[test]
    fn count_window_of_one_holds_only_the_last_call() {
        let window = CountWindow::new(1);
        assert_eq!(window.record(true, false).failures, 1);
        assert_eq!(window.record(false, false).failures, 0);
        assert_eq!(window.stats().calls, 1);
    }

    #[test]
    fn count_window_reset_keeps_counts_consistent() {
        let window = CountWindow::new(70);
        for i in 0..100 {
            window.record(i % 3 == 0, i % 5 == 0);
        }
        window.reset();
        assert_eq!(window.stats(), WindowStats::default());
        for _ in 0..70 {
            window.record(true, false);
        }
        assert_eq!(window.stats().failures, 70);
    }

    #[test]
    fn time_window_expires_whole_buckets() {
        // 10 s in 10 buckets of 1 s.
        let second = 1_000_000_000;
        let window = TimeWindow::new(10 * second, 10);
        window.record(0, true, false);
        window.record(second / 2, false, false);
        window.record(5 * second, true, true);
        assert_eq!(
            window.stats(9 * second),
            WindowStats {
                calls: 3,
                failures: 2,
                slow: 1,
                completed: false
            }
        );
        // At 10.x s the first bucket (0..1 s) has left the window.
        assert_eq!(
            window.stats(10 * second),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 1,
                completed: false
            }
        );
        // Recording clears it for good.
        let stats = window.record(10 * second, false, false);
        assert_eq!(
            stats,
            WindowStats {
                calls: 2,
                failures: 1,
                slow: 1,
                completed: false
            }
        );
        // Far in the future everything has expired.
        assert_eq!(window.stats(100 * second), WindowStats::default());
        assert_eq!(window.record(100 * second, false, false).calls, 1);
    }

    #[test]
    fn time_window_memory_does_not_grow_with_calls() {
        let window = TimeWindow::new(1_000, 10);
        for t in 0..100_000u64 {
            window.record(t, t % 2 == 0, false);
        }
        assert_eq!(window.buckets.len(), 10);
        let stats = window.stats(99_999);
        assert!(stats.calls <= 1_000 && stats.calls >= 900, "{stats:?}");
    }
}
