//! The ring counters: live atomics per pool, and the snapshot `uringfs` prints and the audit
//! reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Number of buckets in [`RingStats::batch_histogram`].
pub const BATCH_BUCKETS: usize = 7;

/// Labels of the [`RingStats::batch_histogram`] buckets: SQEs submitted by one enter.
pub const BATCH_BUCKET_LABELS: [&str; BATCH_BUCKETS] =
    ["1", "2-3", "4-7", "8-15", "16-31", "32-63", "64+"];

/// Snapshot of the ring counters of one [`RingPool`](super::RingPool), summed over all threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Rings created (one per thread that did I/O, plus re-creations after a discard).
    pub rings_created: u64,
    /// Rings dropped because `io_uring_enter` failed in a way that left SQEs unsubmittable.
    pub rings_discarded: u64,
    /// SQEs pushed onto a submission queue.
    pub sqes_submitted: u64,
    /// CQEs reaped.
    pub cqes_reaped: u64,
    /// `io_uring_enter` calls, successful or not (each submit/submit_and_wait/wait is one).
    pub enters: u64,
    /// Enters that failed with EINTR/EBUSY/EAGAIN and were retried.
    pub enter_retries: u64,
    /// Enters that submitted at least one SQE, bucketed by how many they submitted; see
    /// [`BATCH_BUCKET_LABELS`]. Wait-only enters are not counted here.
    pub batch_histogram: [u64; BATCH_BUCKETS],
}

/// Live counters behind [`RingStats`]. Relaxed atomics: they are statistics, nothing
/// synchronizes through them.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// See [`RingStats::rings_created`].
    pub(super) rings_created: AtomicU64,
    /// See [`RingStats::rings_discarded`].
    pub(super) rings_discarded: AtomicU64,
    /// See [`RingStats::sqes_submitted`].
    pub(super) sqes_submitted: AtomicU64,
    /// See [`RingStats::cqes_reaped`].
    pub(super) cqes_reaped: AtomicU64,
    /// See [`RingStats::enters`].
    pub(super) enters: AtomicU64,
    /// See [`RingStats::enter_retries`].
    pub(super) enter_retries: AtomicU64,
    /// See [`RingStats::batch_histogram`].
    pub(super) batch_histogram: [AtomicU64; BATCH_BUCKETS],
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn record_batch(&self, submitted: usize) {
        if submitted == 0 {
            return;
        }
        // Bucket k holds 2^k..2^(k+1)-1 SQEs; the last one is open-ended.
        let bucket =
            ((usize::BITS - 1 - submitted.leading_zeros()) as usize).min(BATCH_BUCKETS - 1);
        if let Some(counter) = self.batch_histogram.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn snapshot(&self) -> RingStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RingStats {
            rings_created: load(&self.rings_created),
            rings_discarded: load(&self.rings_discarded),
            sqes_submitted: load(&self.sqes_submitted),
            cqes_reaped: load(&self.cqes_reaped),
            enters: load(&self.enters),
            enter_retries: load(&self.enter_retries),
            batch_histogram: std::array::from_fn(|i| self.batch_histogram.get(i).map_or(0, load)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use crate::ring::test_support::{TempDir, pool, rw};

    #[test]
    fn counters_increase() {
        let dir = TempDir::new("counters");
        let file = rw(&dir.path("f"));
        let pool = pool();
        let start = pool.stats();
        assert_eq!(start.rings_created, 1, "the probe ring");
        pool.write_at(file.as_fd(), b"abc", 0).expect("write");
        let mut buf = [0u8; 3];
        pool.read_at(file.as_fd(), &mut buf, 0).expect("read");
        pool.fsync(file.as_fd(), true).expect("fdatasync");
        let end = pool.stats();
        assert_eq!(end.sqes_submitted - start.sqes_submitted, 3);
        assert_eq!(end.cqes_reaped - start.cqes_reaped, 3);
        assert_eq!(end.enters - start.enters, 3);
        assert_eq!(end.batch_histogram[0] - start.batch_histogram[0], 3);
        assert_eq!(end.rings_created, 1, "the ring is reused");
        assert_eq!(end.rings_discarded, 0);
    }
}
