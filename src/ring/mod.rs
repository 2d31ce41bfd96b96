//! Per-thread io_uring rings for the data path.
//!
//! Every OS thread that does I/O gets its own `IoUring`, created lazily in a `thread_local!`.
//! Two reasons, both about correctness rather than speed:
//!
//! - Credentials: FUSE handler threads switch fsuid/fsgid/groups to the caller's before doing
//!   I/O. io_uring issues inline work with the submitting task's creds, and work punted to io-wq
//!   carries the creds captured at punt time (`io_prep_async_work`). So an SQE must be submitted by
//!   the very thread that holds the caller's creds. A shared ring or a reaper thread would run
//!   everything as whoever submits. For the same reason `IORING_SETUP_SQPOLL` is never used: the
//!   SQ thread would submit with the ring creator's creds.
//! - `&mut`: pushing SQEs and reaping CQEs need exclusive access; a per-thread ring needs no lock.
//!
//! Every public method blocks until all the CQEs of the SQEs it pushed are reaped, even on error
//! paths. That is the memory-safety argument for pointing SQEs at borrowed buffers (and why
//! there is no op slab here, unlike the style guide's async model): nothing is ever in flight
//! once a method returns, so the CQ is empty at the start of each call, and dropping a ring never
//! has to cancel anything.
//!
//! With `sys/`, the only module allowed `unsafe`: pushing an SQE hands the kernel raw
//! pointers, which no safe wrapper can check. Inside it, only the files that push SQEs (or own
//! the fds CQEs return) allow it.
//!
//! The pieces, one file each:
//!
//! - `thread_ring.rs`: the thread-local ring, created on first use, replaced when broken.
//! - `submit.rs`: pushing SQEs, entering, reaping their CQEs; the `unsafe` contract lives here.
//! - `file_io.rs`: READ, WRITE, FSYNC, FALLOCATE on one fd.
//! - `batch.rs`: OPENAT and STATX batches, one enter per SQ-full (readdirplus lookups).
//! - `splice.rs`: copying between two fds through a pipe, with linked SPLICE pairs.
//! - `chunk.rs`: offsets and lengths of the chunks a long transfer is cut into.
//! - `stats.rs`: the counters every ring adds to.
#![deny(unsafe_op_in_unsafe_fn)]

mod batch;
mod chunk;
mod file_io;
mod splice;
mod stats;
mod submit;
#[cfg(test)]
mod test_support;
mod thread_ring;

use std::io;
use std::sync::Arc;

use stats::Counters;
pub use stats::{BATCH_BUCKET_LABELS, BATCH_BUCKETS, RingStats};

/// Ring depth (SQ entries per thread) used when the config does not say otherwise.
pub const DEFAULT_RING_DEPTH: u32 = 256;

/// Offset meaning "use and advance the file position" (io_uring's `-1`).
///
/// Pass it to [`RingPool::read_at`], [`RingPool::write_at`] or [`RingPool::splice_copy`]. For a
/// file opened with `O_APPEND` the kernel appends whatever the offset is (see `pwrite(2)`, BUGS).
pub const CURRENT_POSITION: u64 = u64::MAX;

/// Regular files never return -EAGAIN to us (io_uring punts to io-wq instead), but an
/// `O_NONBLOCK` pipe or socket would, and retrying that forever would spin.
const EAGAIN_RETRIES: u32 = 64;

/// Shared state of a [`RingPool`].
#[derive(Debug)]
struct Inner {
    /// SQ entries per thread ring (at least 2, so a linked splice pair fits in one submit).
    depth: u32,
    /// Counters over all threads using this pool.
    counters: Counters,
}

/// Handle to the per-thread io_uring rings; every data-path syscall of the fs goes through it.
///
/// Cheap to clone (`Arc` inside), `Send + Sync`. All methods block the calling thread until the
/// kernel has completed every SQE they pushed, and run with the calling thread's credentials.
#[derive(Clone, Debug)]
pub struct RingPool {
    /// Depth and counters, shared by all clones and threads.
    inner: Arc<Inner>,
}

impl RingPool {
    /// Creates a pool whose thread rings have `depth` SQ entries (rounded up to a power of two,
    /// clamped to the kernel maximum, at least 2), and creates the calling thread's ring right
    /// away so that a kernel without usable io_uring fails at start, not on the first read.
    ///
    /// # Errors
    ///
    /// `EINVAL` for `depth == 0`; the `io_uring_setup(2)` error, with a hint, if the probe ring
    /// cannot be created (io_uring disabled by sysctl or seccomp, `ENOSYS`, memlock limit).
    pub fn new(depth: u32) -> io::Result<RingPool> {
        if depth == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "io_uring ring depth must be at least 1",
            ));
        }
        let pool = RingPool {
            inner: Arc::new(Inner {
                depth: depth.max(2),
                counters: Counters::default(),
            }),
        };
        pool.with_ring(|_| Ok(())).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "io_uring_setup failed: {err} (is kernel.io_uring_disabled set? \
                     is io_uring blocked by seccomp, or RLIMIT_MEMLOCK too low?)"
                ),
            )
        })?;
        Ok(pool)
    }

    /// SQ entries requested per thread ring.
    pub fn depth(&self) -> u32 {
        self.inner.depth
    }

    /// Current counters, summed over all threads.
    pub fn stats(&self) -> RingStats {
        self.inner.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<RingPool>();
    }

    #[test]
    fn zero_depth_is_einval() {
        let err = RingPool::new(0).expect_err("depth 0 rejected");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
