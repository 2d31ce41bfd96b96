//! Each thread's own ring: made on first use, replaced for a pool of another depth, dropped
//! when an enter left it broken.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use io_uring::IoUring;
use log::{debug, error, warn};

use super::RingPool;
use super::stats::Counters;

/// Warn once, not once per thread, if the kernel rejects our optional setup flags.
static WARNED_SETUP_FLAGS: AtomicBool = AtomicBool::new(false);

/// Log a worker thread's failed ring setup once; each later request fails the same way.
static LOGGED_SETUP_FAILURE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's ring. `None` until first use, or after the ring was discarded as broken.
    /// Only touched through `RingPool::with_ring`, which holds the `RefCell` borrow for the
    /// whole operation.
    static THREAD_RING: RefCell<Option<ThreadRing>> = const { RefCell::new(None) };
}

/// One thread's ring and the bookkeeping that keeps CQEs matched to their call.
pub(super) struct ThreadRing {
    /// The ring. Empty SQ and CQ between calls (see the module comment).
    pub(super) ring: IoUring,
    /// Depth it was created with; a pool with another depth replaces the ring.
    pub(super) depth: u32,
    /// Tag in the high 32 bits of user_data, bumped per submitted chunk, so a CQE that somehow
    /// outlived its call can never be mistaken for one of ours.
    pub(super) seq: u32,
    /// Set (to the errno) when SQEs are stuck in the SQ after a failed enter; the ring is then
    /// dropped without ever entering it again, so those SQEs never reach the kernel.
    pub(super) broken: Option<i32>,
}

impl ThreadRing {
    fn new(depth: u32) -> io::Result<ThreadRing> {
        // COOP_TASKRUN: we always wait with GETEVENTS on the submitting thread, so completion
        // task work needs no IPI. SINGLE_ISSUER: true by construction (thread-local). Both are
        // optimizations (5.19 / 6.0), so fall back to a plain ring on EINVAL.
        let ring = match IoUring::builder()
            .setup_clamp()
            .setup_coop_taskrun()
            .setup_single_issuer()
            .build(depth)
        {
            Ok(ring) => ring,
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                if !WARNED_SETUP_FLAGS.swap(true, Ordering::Relaxed) {
                    warn!(
                        "io_uring: COOP_TASKRUN/SINGLE_ISSUER rejected ({err}), using a plain ring"
                    );
                }
                IoUring::builder().setup_clamp().build(depth)?
            }
            Err(err) => return Err(err),
        };
        debug!(
            "io_uring: ring created on {:?}, sq={} cq={}",
            thread::current().id(),
            ring.params().sq_entries(),
            ring.params().cq_entries()
        );
        Ok(ThreadRing {
            ring,
            depth,
            seq: 0,
            broken: None,
        })
    }
}

impl RingPool {
    /// Runs `f` on this thread's ring, creating it first if needed, and drops it afterwards if
    /// `f` left it broken.
    pub(super) fn with_ring<R>(
        &self,
        f: impl FnOnce(&mut ThreadRing) -> io::Result<R>,
    ) -> io::Result<R> {
        let counters = &self.inner.counters;
        let depth = self.inner.depth;
        THREAD_RING
            .try_with(|slot| {
                // Only a reentrant call could find it borrowed; none of our code calls back out.
                let mut slot = slot.try_borrow_mut().map_err(|_| {
                    error!("io_uring: thread ring already in use (reentrant call)");
                    io::Error::from_raw_os_error(libc::EDEADLK)
                })?;
                if !matches!(&*slot, Some(tr) if tr.depth == depth) {
                    // Dropping a previous ring is fine: nothing is in flight between calls.
                    let tr = ThreadRing::new(depth).inspect_err(|err| {
                        if !LOGGED_SETUP_FAILURE.swap(true, Ordering::Relaxed) {
                            error!(
                                "io_uring: cannot create ring on {:?}: {err}",
                                thread::current().id()
                            );
                        }
                    })?;
                    Counters::add(&counters.rings_created, 1);
                    *slot = Some(tr);
                }
                let Some(tr) = slot.as_mut() else {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                };
                let out = f(tr);
                if let Some(errno) = tr.broken {
                    warn!(
                        "io_uring: discarding ring on {:?} after enter failed: {}",
                        thread::current().id(),
                        io::Error::from_raw_os_error(errno)
                    );
                    Counters::add(&counters.rings_discarded, 1);
                    *slot = None;
                }
                out
            })
            .unwrap_or_else(|_| {
                Err(io::Error::other(
                    "io_uring: thread ring used during thread-local destruction",
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::os::fd::AsFd;
    use std::thread;

    use super::*;
    use crate::ring::test_support::{TempDir, pattern, pool, rw};

    #[test]
    fn one_ring_per_thread() {
        let dir = TempDir::new("threads");
        let path = dir.path("f");
        fs::write(&path, pattern(4096, 5)).expect("seed");
        let pool = pool();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                let path = path.clone();
                thread::spawn(move || {
                    let file = File::open(&path).expect("open");
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..10 {
                        assert_eq!(pool.read_at(file.as_fd(), &mut buf, 0).expect("read"), 4096);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
        let stats = pool.stats();
        assert_eq!(stats.rings_created, 1 + 4);
        assert_eq!(stats.sqes_submitted, 40);
    }

    #[test]
    fn pool_with_other_depth_replaces_thread_ring() {
        let small = RingPool::new(4).expect("small");
        let big = RingPool::new(64).expect("big");
        let dir = TempDir::new("redepth");
        let file = rw(&dir.path("f"));
        small.write_at(file.as_fd(), b"x", 0).expect("write small");
        big.write_at(file.as_fd(), b"y", 1).expect("write big");
        assert_eq!(
            small.stats().rings_created,
            2,
            "probe + recreate after big's probe"
        );
        assert_eq!(big.stats().rings_created, 2);
    }
}
