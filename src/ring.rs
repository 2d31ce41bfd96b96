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
//! pointers, which no safe wrapper can check.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::cell::RefCell;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use io_uring::{EnterFlags, IoUring, opcode, squeue, types};
use log::{debug, error, warn};

use crate::sys;

/// Ring depth (SQ entries per thread) used when the config does not say otherwise.
pub const DEFAULT_RING_DEPTH: u32 = 256;

/// Offset meaning "use and advance the file position" (io_uring's `-1`).
///
/// Pass it to [`RingPool::read_at`], [`RingPool::write_at`] or [`RingPool::splice_copy`]. For a
/// file opened with `O_APPEND` the kernel appends whatever the offset is (see `pwrite(2)`, BUGS).
pub const CURRENT_POSITION: u64 = u64::MAX;

/// Number of buckets in [`RingStats::batch_histogram`].
pub const BATCH_BUCKETS: usize = 7;

/// Labels of the [`RingStats::batch_histogram`] buckets: SQEs submitted by one enter.
pub const BATCH_BUCKET_LABELS: [&str; BATCH_BUCKETS] =
    ["1", "2-3", "4-7", "8-15", "16-31", "32-63", "64+"];

/// Largest length one read/write moves (`MAX_RW_COUNT` in the kernel); larger requests are
/// short, so we ask for no more and loop.
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// Regular files never return -EAGAIN to us (io_uring punts to io-wq instead), but an
/// `O_NONBLOCK` pipe or socket would, and retrying that forever would spin.
const EAGAIN_RETRIES: u32 = 64;

/// How often a submit that fails with EBUSY/EAGAIN is retried, with nothing in flight, before
/// the ring is given up as broken.
const BUSY_RETRIES: u32 = 1000;

/// Pipe size requested for splice_copy; the default `fs.pipe-max-size` allows it unprivileged.
const SPLICE_PIPE_SIZE: libc::c_int = 1 << 20;

/// Pipe size on Linux when F_SETPIPE_SZ/F_GETPIPE_SZ both fail (`pipe(7)`).
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

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

/// Snapshot of the ring counters of one [`RingPool`], summed over all threads.
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
struct Counters {
    /// See [`RingStats::rings_created`].
    rings_created: AtomicU64,
    /// See [`RingStats::rings_discarded`].
    rings_discarded: AtomicU64,
    /// See [`RingStats::sqes_submitted`].
    sqes_submitted: AtomicU64,
    /// See [`RingStats::cqes_reaped`].
    cqes_reaped: AtomicU64,
    /// See [`RingStats::enters`].
    enters: AtomicU64,
    /// See [`RingStats::enter_retries`].
    enter_retries: AtomicU64,
    /// See [`RingStats::batch_histogram`].
    batch_histogram: [AtomicU64; BATCH_BUCKETS],
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn record_batch(&self, submitted: usize) {
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

    fn snapshot(&self) -> RingStats {
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

/// A raw CQE result: bytes/fd on success, `-errno` on failure.
#[derive(Clone, Copy, Debug)]
struct CqeResult(i32);

impl From<CqeResult> for io::Result<u32> {
    fn from(CqeResult(res): CqeResult) -> Self {
        u32::try_from(res).map_err(|_| io::Error::from_raw_os_error(res.saturating_neg()))
    }
}

impl CqeResult {
    fn into_result(self) -> io::Result<u32> {
        self.into()
    }
}

/// The errno to report for `err`; an error without one becomes EIO, never 0.
fn errno_of(err: &io::Error) -> i32 {
    err.raw_os_error().unwrap_or(libc::EIO)
}

fn is_retryable(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EINTR | libc::EAGAIN))
}

/// io_uring takes an offset as a signed `loff_t`: `-1` (our [`CURRENT_POSITION`]) means the file
/// position, every other negative value is EINVAL. Rejecting those here also means
/// `offset + done` can never overflow.
fn check_offset(offset: u64) -> io::Result<()> {
    if offset == CURRENT_POSITION || i64::try_from(offset).is_ok() {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// Offset of the next chunk after `done` bytes: the file position advances by itself.
fn chunk_offset(offset: u64, done: usize) -> u64 {
    if offset == CURRENT_POSITION {
        CURRENT_POSITION
    } else {
        offset.saturating_add(done as u64)
    }
}

/// Length for one read/write/splice SQE: at most `MAX_RW_COUNT`, which fits a `u32`.
fn rw_len(len: usize) -> u32 {
    u32::try_from(len.min(MAX_RW_COUNT)).unwrap_or(u32::MAX >> 1)
}

/// `chunk_offset` as the `i64` that `Splice` wants (`-1` for the file position).
fn splice_offset(offset: u64, done: usize) -> i64 {
    i64::try_from(chunk_offset(offset, done)).unwrap_or(-1)
}

/// One thread's ring and the bookkeeping that keeps CQEs matched to their call.
struct ThreadRing {
    /// The ring. Empty SQ and CQ between calls (see the module comment).
    ring: IoUring,
    /// Depth it was created with; a pool with another depth replaces the ring.
    depth: u32,
    /// Tag in the high 32 bits of user_data, bumped per submitted chunk, so a CQE that somehow
    /// outlived its call can never be mistaken for one of ours.
    seq: u32,
    /// Set (to the errno) when SQEs are stuck in the SQ after a failed enter; the ring is then
    /// dropped without ever entering it again, so those SQEs never reach the kernel.
    broken: Option<i32>,
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

    /// Reads into `buf` at `offset` until it is full or EOF; returns the bytes read.
    ///
    /// Short reads are resubmitted for the rest: a FUSE read reply shorter than asked means EOF
    /// to the kernel (without direct_io), so a short read must only ever be a real EOF. For the
    /// same reason an error in a later chunk is returned as the error, not as a short count.
    /// `offset` may be [`CURRENT_POSITION`].
    ///
    /// # Errors
    ///
    /// The read's errno; `EINVAL` for an offset above `i64::MAX` (other than
    /// [`CURRENT_POSITION`]).
    pub fn read_at(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        check_offset(offset)?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.with_ring(|tr| {
            let mut done = 0usize;
            let mut eagain = 0u32;
            while let Some(rest) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
                let len = rw_len(rest.len());
                let entry = opcode::Read::new(types::Fd(fd.as_raw_fd()), rest.as_mut_ptr(), len)
                    .offset(chunk_offset(offset, done))
                    .build();
                // SAFETY: `rest` is the caller's exclusively borrowed buffer, alive for this whole
                // call, and run_one returns only after the CQE is reaped.
                let res = unsafe { self.run_one(tr, &entry) };
                match res.into_result() {
                    Ok(0) => break,
                    Ok(n) => done += n as usize,
                    Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {
                        eagain += 1;
                        if eagain > EAGAIN_RETRIES {
                            return Err(err);
                        }
                        thread::yield_now();
                    }
                    Err(err) => return Err(err),
                }
            }
            Ok(done)
        })
    }

    /// Writes `buf` at `offset`, resubmitting the rest after short writes; returns the bytes
    /// written.
    ///
    /// Like `write(2)`: if a later chunk fails after some bytes were written, the count so far
    /// is returned and the error is left for the next call to hit. `offset` may be
    /// [`CURRENT_POSITION`]; for an `O_APPEND` fd the kernel appends whatever the offset.
    ///
    /// # Errors
    ///
    /// The write's errno if nothing was written; `WriteZero` (EIO) if the kernel accepted 0
    /// bytes; `EINVAL` for an offset above `i64::MAX` (other than [`CURRENT_POSITION`]).
    pub fn write_at(&self, fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        check_offset(offset)?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.with_ring(|tr| {
            let mut done = 0usize;
            let mut eagain = 0u32;
            while let Some(rest) = buf.get(done..).filter(|rest| !rest.is_empty()) {
                let len = rw_len(rest.len());
                let entry = opcode::Write::new(types::Fd(fd.as_raw_fd()), rest.as_ptr(), len)
                    .offset(chunk_offset(offset, done))
                    .build();
                // SAFETY: `rest` borrows the caller's buffer for this whole call, and run_one
                // returns only after the CQE is reaped.
                let res = unsafe { self.run_one(tr, &entry) };
                match res.into_result() {
                    Ok(0) if done > 0 => break,
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "io_uring write accepted 0 bytes",
                        ));
                    }
                    Ok(n) => done += n as usize,
                    Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {
                        eagain += 1;
                        if eagain > EAGAIN_RETRIES {
                            return if done > 0 { Ok(done) } else { Err(err) };
                        }
                        thread::yield_now();
                    }
                    Err(_) if done > 0 => break,
                    Err(err) => return Err(err),
                }
            }
            Ok(done)
        })
    }

    /// Writes `buf` at the file position (the end, for an `O_APPEND` fd); same rules as
    /// [`RingPool::write_at`].
    ///
    /// # Errors
    ///
    /// As [`RingPool::write_at`].
    pub fn write_append(&self, fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        self.write_at(fd, buf, CURRENT_POSITION)
    }

    /// `fsync(2)`, or `fdatasync(2)` if `datasync`.
    ///
    /// # Errors
    ///
    /// The errno of the sync (`EIO` from writeback is the one that matters).
    pub fn fsync(&self, fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
        let flags = if datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        let entry = opcode::Fsync::new(types::Fd(fd.as_raw_fd()))
            .flags(flags)
            .build();
        // SAFETY: an fsync SQE points at no memory.
        unsafe { self.run_simple(&entry) }.map(drop)
    }

    /// `fallocate(2)` with `mode` (`FALLOC_FL_*`) over `offset..offset + len`.
    ///
    /// # Errors
    ///
    /// The errno of the fallocate (`EOPNOTSUPP` if the backing fs lacks the mode).
    pub fn fallocate(
        &self,
        fd: BorrowedFd<'_>,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let entry = opcode::Fallocate::new(types::Fd(fd.as_raw_fd()), len)
            .offset(offset)
            .mode(mode)
            .build();
        // SAFETY: a fallocate SQE points at no memory.
        unsafe { self.run_simple(&entry) }.map(drop)
    }

    /// Opens every name relative to `dirfd` with `flags | O_CLOEXEC` (mode 0, so not meant for
    /// `O_CREAT`), one SQE each, submitted together: one enter per `depth` names. Results are in
    /// input order; a failing name does not affect the others.
    ///
    /// `O_CLOEXEC` is forced because an fd leaked into a child would pin the file.
    pub fn openat_batch(
        &self,
        dirfd: BorrowedFd<'_>,
        names: &[&CStr],
        flags: i32,
    ) -> Vec<io::Result<OwnedFd>> {
        let entries: Vec<squeue::Entry> = names
            .iter()
            .map(|name| {
                opcode::OpenAt::new(types::Fd(dirfd.as_raw_fd()), name.as_ptr())
                    .flags(flags | libc::O_CLOEXEC)
                    .mode(0)
                    .build()
            })
            .collect();
        // SAFETY: each SQE points at a caller-borrowed `CStr` that outlives this call.
        let results = unsafe { self.run_batch_retrying(&entries) };
        results
            .into_iter()
            .map(|res| {
                res.into_result().map(|fd| {
                    // SAFETY: a successful OPENAT CQE carries a new fd that nobody else owns.
                    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
                })
            })
            .collect()
    }

    /// `statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, mask)` for every fd, batched like
    /// [`RingPool::openat_batch`]; results in input order.
    pub fn statx_batch(&self, fds: &[BorrowedFd<'_>], mask: u32) -> Vec<io::Result<libc::statx>> {
        let targets: Vec<(RawFd, &CStr)> = fds.iter().map(|fd| (fd.as_raw_fd(), c"")).collect();
        self.statx_many(
            &targets,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            mask,
        )
    }

    /// `statx(dirfd, name, AT_SYMLINK_NOFOLLOW, mask)` for every name, batched like
    /// [`RingPool::openat_batch`]; results in input order.
    pub fn statx_at_batch(
        &self,
        dirfd: BorrowedFd<'_>,
        names: &[&CStr],
        mask: u32,
    ) -> Vec<io::Result<libc::statx>> {
        let targets: Vec<(RawFd, &CStr)> = names
            .iter()
            .map(|name| (dirfd.as_raw_fd(), *name))
            .collect();
        self.statx_many(&targets, libc::AT_SYMLINK_NOFOLLOW, mask)
    }

    /// Copies up to `len` bytes from `fd_in` at `off_in` to `fd_out` at `off_out` without a
    /// userspace buffer, through a pipe: linked SPLICE SQEs (in -> pipe, then pipe -> out) per
    /// chunk of the pipe's size. Stops early at EOF of `fd_in`; returns the bytes written to
    /// `fd_out`. Either offset may be [`CURRENT_POSITION`] (required for a pipe/socket).
    ///
    /// # Errors
    ///
    /// The splice errno if nothing was copied (after some bytes, the count is returned, like
    /// `copy_file_range(2)`); `EINVAL` for an offset above `i64::MAX`; pipe creation errors.
    pub fn splice_copy(
        &self,
        fd_in: BorrowedFd<'_>,
        off_in: u64,
        fd_out: BorrowedFd<'_>,
        off_out: u64,
        len: usize,
    ) -> io::Result<usize> {
        check_offset(off_in)?;
        check_offset(off_out)?;
        if len == 0 {
            return Ok(0);
        }
        // A fresh pipe per call: after an error it may hold stray bytes, and a cached one would
        // then leak them into the next copy.
        let pipe = SplicePipe::new()?;
        self.with_ring(|tr| {
            let mut copy = SpliceCopy {
                pool: self,
                fd_in: fd_in.as_raw_fd(),
                off_in,
                fd_out: fd_out.as_raw_fd(),
                off_out,
                pipe: &pipe,
                moved_in: 0,
                copied: 0,
            };
            copy.run(tr, len)
        })
    }

    /// Runs `f` on this thread's ring, creating it first if needed, and drops it afterwards if
    /// `f` left it broken.
    fn with_ring<R>(&self, f: impl FnOnce(&mut ThreadRing) -> io::Result<R>) -> io::Result<R> {
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

    /// One SQE, retried on EINTR/EAGAIN, on this thread's ring.
    ///
    /// # Safety
    ///
    /// Memory `entry` points to must stay valid until this returns.
    unsafe fn run_simple(&self, entry: &squeue::Entry) -> io::Result<u32> {
        self.with_ring(|tr| {
            let mut attempts = 0u32;
            loop {
                // SAFETY: forwarded from our caller's contract.
                let res = unsafe { self.run_one(tr, entry) }.into_result();
                match res {
                    Err(err) if is_retryable(&err) && attempts < EAGAIN_RETRIES => attempts += 1,
                    res => return res,
                }
            }
        })
    }

    /// # Safety
    ///
    /// Memory `entry` points to must stay valid until this returns.
    unsafe fn run_one(&self, tr: &mut ThreadRing, entry: &squeue::Entry) -> CqeResult {
        // SAFETY: forwarded from our caller's contract.
        let results = unsafe { self.run_batch(tr, std::slice::from_ref(entry)) };
        results.first().copied().unwrap_or(CqeResult(-libc::EIO))
    }

    /// `run_batch` on this thread's ring, re-running entries that came back EINTR/EAGAIN.
    ///
    /// # Safety
    ///
    /// As [`RingPool::run_batch`]; the entries must be safe to re-issue.
    unsafe fn run_batch_retrying(&self, entries: &[squeue::Entry]) -> Vec<CqeResult> {
        let outcome = self.with_ring(|tr| {
            // SAFETY: forwarded from our caller's contract.
            let mut results = unsafe { self.run_batch(tr, entries) };
            for _ in 0..EAGAIN_RETRIES {
                let retry: Vec<usize> = results
                    .iter()
                    .enumerate()
                    .filter(|(_, res)| matches!(-res.0, libc::EINTR | libc::EAGAIN))
                    .map(|(i, _)| i)
                    .collect();
                if retry.is_empty() {
                    break;
                }
                let again: Vec<squeue::Entry> = retry
                    .iter()
                    .filter_map(|&i| entries.get(i).cloned())
                    .collect();
                // SAFETY: forwarded from our caller's contract.
                let redone = unsafe { self.run_batch(tr, &again) };
                for (i, res) in retry.into_iter().zip(redone) {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = res;
                    }
                }
            }
            Ok(results)
        });
        outcome.unwrap_or_else(|err| vec![CqeResult(-errno_of(&err)); entries.len()])
    }

    /// Pushes `entries` in chunks of the SQ size, one enter per chunk, and waits for all their
    /// CQEs. Returns one result per entry, in order; entries that never reached the kernel
    /// (ring broken) get the enter's errno.
    ///
    /// # Safety
    ///
    /// Every pointer in `entries` (buffer, path, statx buffer) must stay valid, and not be
    /// accessed by anyone else, until this returns. Entries must produce exactly one CQE each
    /// (no multishot, no CQE_SKIP_SUCCESS) and must not set user_data (it is overwritten). A
    /// link chain must not straddle a multiple of the SQ size.
    unsafe fn run_batch(&self, tr: &mut ThreadRing, entries: &[squeue::Entry]) -> Vec<CqeResult> {
        let mut slots: Vec<Option<i32>> = vec![None; entries.len()];
        if tr.broken.is_none() {
            let capacity = tr.ring.params().sq_entries().max(1) as usize;
            for (chunk, chunk_slots) in entries.chunks(capacity).zip(slots.chunks_mut(capacity)) {
                tr.seq = tr.seq.wrapping_add(1);
                let seq = tr.seq;
                let mut pushed = 0usize;
                {
                    let mut sq = tr.ring.submission();
                    for (index, entry) in chunk.iter().enumerate() {
                        let entry = entry.clone().user_data(user_data(seq, index));
                        // SAFETY: our caller keeps what `entry` points to alive until we return,
                        // and `drive` below does not return while any pushed SQE is in flight.
                        if unsafe { sq.push(&entry) }.is_err() {
                            break;
                        }
                        pushed += 1;
                    }
                }
                Counters::add(&self.inner.counters.sqes_submitted, pushed);
                if let Err(err) = self.drive(tr, seq, pushed, chunk_slots) {
                    tr.broken = Some(errno_of(&err));
                    break;
                }
                if pushed < chunk.len() {
                    // The SQ is empty at the start of each chunk, so this is a broken invariant.
                    error!(
                        "io_uring: SQ full with {pushed} of {} SQEs pushed",
                        chunk.len()
                    );
                    tr.broken = Some(libc::EBUSY);
                    break;
                }
            }
        }
        let fallback = tr.broken.unwrap_or(libc::EIO);
        slots
            .into_iter()
            .map(|slot| CqeResult(slot.unwrap_or(-fallback)))
            .collect()
    }

    /// Submits what is in the SQ and reaps until all `pushed` SQEs of chunk `seq` have their
    /// CQE in `slots`, or were left unsubmitted in the SQ by an enter error (then `Err`, and
    /// the ring must be discarded). Never returns while one of them is in flight.
    fn drive(
        &self,
        tr: &mut ThreadRing,
        seq: u32,
        pushed: usize,
        slots: &mut [Option<i32>],
    ) -> io::Result<()> {
        let counters = &self.inner.counters;
        let mut reaped = 0usize;
        let mut submit_error: Option<io::Error> = None;
        let mut busy = 0u32;
        let mut wait_failures = 0u32;
        loop {
            let in_sq = tr.ring.submission().len();
            // Consumed by the kernel, CQE not reaped yet: the ones we must wait for.
            let in_flight = pushed.saturating_sub(reaped).saturating_sub(in_sq);
            if in_flight == 0 && (in_sq == 0 || submit_error.is_some()) {
                return match submit_error {
                    Some(err) if in_sq > 0 => Err(err),
                    _ => Ok(()),
                };
            }
            let submitting = in_sq > 0 && submit_error.is_none();
            let want = in_flight + if submitting { in_sq } else { 0 };
            Counters::add(&counters.enters, 1);
            let ret = if submitting {
                // If the kernel stops early (an SQE failed to prep), it skips the wait and
                // returns the count consumed; the loop then submits the rest.
                tr.ring.submit_and_wait(want)
            } else {
                // Wait without submitting: after a failed submit the SQ leftovers must never
                // reach the kernel, but what is in flight must still be waited for.
                // SAFETY: to_submit is 0 so no SQE is consumed, and no argument pointer is
                // passed.
                unsafe {
                    tr.ring.submitter().enter::<libc::sigset_t>(
                        0,
                        u32::try_from(want).unwrap_or(u32::MAX),
                        EnterFlags::GETEVENTS.bits(),
                        None,
                    )
                }
            };
            match ret {
                Ok(submitted) => {
                    if submitting {
                        counters.record_batch(submitted);
                    }
                    busy = 0;
                }
                Err(err) => match err.raw_os_error() {
                    Some(libc::EINTR) => Counters::add(&counters.enter_retries, 1),
                    // EBUSY: the CQ overflow backlog is full; reaping below makes room.
                    // EAGAIN: the kernel is short of memory for requests; back off.
                    Some(libc::EBUSY | libc::EAGAIN) => {
                        Counters::add(&counters.enter_retries, 1);
                        busy += 1;
                        if submitting && in_flight == 0 && busy > BUSY_RETRIES {
                            submit_error = Some(err);
                        } else if busy > 16 {
                            thread::sleep(Duration::from_micros(100));
                        }
                    }
                    _ if submitting => {
                        error!("io_uring: submit failed with {in_flight} in flight: {err}");
                        submit_error = Some(err);
                    }
                    _ => {
                        // Returning now would free buffers the kernel may still write to, so
                        // keep waiting, however long it takes.
                        wait_failures += 1;
                        if wait_failures == 1 {
                            error!(
                                "io_uring: waiting for {in_flight} CQEs failed: {err}; retrying"
                            );
                        }
                        thread::sleep(Duration::from_millis(u64::from(wait_failures.min(100))));
                    }
                },
            }
            let mut completed = 0usize;
            for cqe in tr.ring.completion() {
                let tag = cqe.user_data();
                let slot = slots.get_mut((tag & u64::from(u32::MAX)) as usize);
                match slot {
                    Some(slot) if tag >> 32 == u64::from(seq) && slot.is_none() => {
                        *slot = Some(cqe.result());
                        reaped += 1;
                    }
                    _ => error!(
                        "io_uring: stray CQE user_data={tag:#x} res={}",
                        cqe.result()
                    ),
                }
                completed += 1;
            }
            Counters::add(&counters.cqes_reaped, completed);
        }
    }

    /// Shared body of `statx_batch` and `statx_at_batch`.
    fn statx_many(
        &self,
        targets: &[(RawFd, &CStr)],
        flags: i32,
        mask: u32,
    ) -> Vec<io::Result<libc::statx>> {
        // Allocated once and never resized, so the pointers taken below stay valid.
        let mut bufs: Vec<libc::statx> = targets
            .iter()
            .map(|_| {
                // SAFETY: `statx` is plain integers, for which all-zero is a valid value.
                unsafe { std::mem::zeroed::<libc::statx>() }
            })
            .collect();
        let entries: Vec<squeue::Entry> = targets
            .iter()
            .zip(bufs.iter_mut())
            .map(|((fd, path), buf)| {
                let buf: *mut libc::statx = buf;
                opcode::Statx::new(types::Fd(*fd), path.as_ptr(), buf.cast::<types::statx>())
                    .flags(flags)
                    .mask(mask)
                    .build()
            })
            .collect();
        // SAFETY: the paths are borrowed for this call and `bufs` lives until after it returns;
        // nothing reads `bufs` until then.
        let results = unsafe { self.run_batch_retrying(&entries) };
        results
            .into_iter()
            .zip(bufs)
            .map(|(res, buf)| res.into_result().map(|_| buf))
            .collect()
    }
}

/// user_data of entry `index` of chunk `seq`.
fn user_data(seq: u32, index: usize) -> u64 {
    (u64::from(seq) << 32) | (index as u64 & u64::from(u32::MAX))
}

/// The pipe a splice_copy goes through.
struct SplicePipe {
    /// Read end.
    read: OwnedFd,
    /// Write end.
    write: OwnedFd,
    /// Bytes the pipe holds; chunks are at most this, so splicing into it never blocks on a
    /// full pipe.
    capacity: usize,
}

impl SplicePipe {
    fn new() -> io::Result<SplicePipe> {
        let (read, write) = sys::pipe()?;
        // Best effort: a bigger pipe means fewer SQE pairs; above fs.pipe-max-size (or the
        // per-user pipe budget) it fails with EPERM and the default size does. This fcntl
        // belongs in sys/; it stays here until sys grows an F_SETPIPE_SZ wrapper.
        // SAFETY: F_SETPIPE_SZ/F_GETPIPE_SZ take an int and touch no memory.
        let size =
            match unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, SPLICE_PIPE_SIZE) } {
                size if size > 0 => size,
                _ => {
                    debug!(
                        "io_uring: F_SETPIPE_SZ failed: {}",
                        io::Error::last_os_error()
                    );
                    // SAFETY: as above.
                    unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) }
                }
            };
        let capacity = usize::try_from(size)
            .ok()
            .filter(|&size| size > 0)
            .unwrap_or(DEFAULT_PIPE_SIZE);
        Ok(SplicePipe {
            read,
            write,
            capacity,
        })
    }
}

/// State of one splice_copy: how far each side got.
struct SpliceCopy<'a> {
    /// Pool whose counters the SQEs count toward.
    pool: &'a RingPool,
    /// Source fd.
    fd_in: RawFd,
    /// Source start offset, or CURRENT_POSITION.
    off_in: u64,
    /// Destination fd.
    fd_out: RawFd,
    /// Destination start offset, or CURRENT_POSITION.
    off_out: u64,
    /// The pipe in between; empty at the start of each chunk.
    pipe: &'a SplicePipe,
    /// Bytes moved from fd_in into the pipe so far.
    moved_in: usize,
    /// Bytes moved from the pipe to fd_out so far (the result).
    copied: usize,
}

impl SpliceCopy<'_> {
    fn run(&mut self, tr: &mut ThreadRing, len: usize) -> io::Result<usize> {
        let mut retries = 0u32;
        while self.copied < len {
            let chunk = rw_len((len - self.copied).min(self.pipe.capacity));
            let to_pipe = opcode::Splice::new(
                types::Fd(self.fd_in),
                splice_offset(self.off_in, self.moved_in),
                types::Fd(self.pipe.write.as_raw_fd()),
                -1,
                chunk,
            )
            .build()
            .flags(squeue::Flags::IO_LINK);
            let from_pipe = opcode::Splice::new(
                types::Fd(self.pipe.read.as_raw_fd()),
                -1,
                types::Fd(self.fd_out),
                splice_offset(self.off_out, self.copied),
                chunk,
            )
            .build();
            // SAFETY: splice SQEs point at no memory, only at fds that outlive the call. The
            // kernel fails the link on a short first splice (io_splice: ret != len), so the
            // second never waits on an empty pipe whose writer we hold.
            let results = unsafe { self.pool.run_batch(tr, &[to_pipe, from_pipe]) };
            let (res_in, res_out) = match results.as_slice() {
                [res_in, res_out] => (res_in.into_result(), res_out.into_result()),
                _ => return Err(io::Error::from_raw_os_error(libc::EIO)),
            };
            let filled = match res_in {
                Ok(0) => break,
                Ok(n) => n as usize,
                // The link broke, so nothing reached the pipe: just redo the chunk.
                Err(err) if is_retryable(&err) && retries < EAGAIN_RETRIES => {
                    retries += 1;
                    continue;
                }
                Err(err) => return self.partial(err),
            };
            retries = 0;
            self.moved_in += filled;
            let mut pending = filled;
            match res_out {
                Ok(n) => {
                    let n = (n as usize).min(pending);
                    pending -= n;
                    self.copied += n;
                }
                // Expected after a short first splice; the drain below moves those bytes.
                Err(err)
                    if err.raw_os_error() == Some(libc::ECANCELED) && filled < chunk as usize => {}
                Err(err) if is_retryable(&err) => {}
                Err(err) => return self.partial(err),
            }
            if let Err(err) = self.drain(tr, pending) {
                return self.partial(err);
            }
        }
        Ok(self.copied)
    }

    /// Moves the `pending` bytes still in the pipe to fd_out, looping over short splices.
    /// Asking for exactly what the pipe holds means a splice never waits for more input.
    /// On error the pipe may still hold bytes; the caller stops and drops the pipe.
    fn drain(&mut self, tr: &mut ThreadRing, mut pending: usize) -> io::Result<()> {
        let mut retries = 0u32;
        while pending > 0 {
            let entry = opcode::Splice::new(
                types::Fd(self.pipe.read.as_raw_fd()),
                -1,
                types::Fd(self.fd_out),
                splice_offset(self.off_out, self.copied),
                rw_len(pending),
            )
            .build();
            // SAFETY: a splice SQE points at no memory.
            let res = unsafe { self.pool.run_one(tr, &entry) }.into_result();
            match res {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "splice to destination accepted 0 bytes",
                    ));
                }
                Ok(n) => {
                    let n = (n as usize).min(pending);
                    pending -= n;
                    self.copied += n;
                }
                Err(err) if is_retryable(&err) && retries < EAGAIN_RETRIES => retries += 1,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Ends the copy after a failure: the bytes copied so far if any (like
    /// `copy_file_range(2)`), else the error.
    fn partial(&self, err: io::Error) -> io::Result<usize> {
        if self.copied > 0 {
            debug!(
                "io_uring: splice_copy stopped after {} bytes: {err}",
                self.copied
            );
            Ok(self.copied)
        } else {
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::ffi::CString;
    use std::fs::{self, File, OpenOptions};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicUsize;

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("uringfs-ring-{}-{n}-{name}", std::process::id()));
            fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn pool() -> RingPool {
        RingPool::new(DEFAULT_RING_DEPTH).expect("io_uring available")
    }

    fn rw(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("open rw")
    }

    /// Deterministic non-repeating bytes (xorshift), so misplaced chunks are caught.
    fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn errno(err: &io::Error) -> Option<i32> {
        err.raw_os_error()
    }

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

    #[test]
    fn read_write_roundtrip() {
        let dir = TempDir::new("roundtrip");
        let file = rw(&dir.path("f"));
        let pool = pool();
        let data = pattern(300_000, 1);
        assert_eq!(
            pool.write_at(file.as_fd(), &data, 4096).expect("write"),
            data.len()
        );
        let mut back = vec![0u8; data.len()];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut back, 4096).expect("read"),
            data.len()
        );
        assert_eq!(back, data);
        let mut head = vec![0xffu8; 4096];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut head, 0).expect("read hole"),
            4096
        );
        assert!(head.iter().all(|&b| b == 0));
        assert_eq!(
            pool.read_at(file.as_fd(), &mut [], 0).expect("empty read"),
            0
        );
        assert_eq!(pool.write_at(file.as_fd(), &[], 0).expect("empty write"), 0);
    }

    #[test]
    fn short_read_at_eof_returns_available_bytes() {
        let dir = TempDir::new("eof");
        let path = dir.path("f");
        fs::write(&path, b"hello world").expect("seed");
        let file = File::open(&path).expect("open");
        let pool = pool();
        let mut buf = [0u8; 64];
        assert_eq!(pool.read_at(file.as_fd(), &mut buf, 6).expect("read"), 5);
        assert_eq!(&buf[..5], b"world");
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, 11)
                .expect("read at eof"),
            0
        );
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, 1 << 40)
                .expect("read past eof"),
            0
        );
    }

    #[test]
    fn write_past_eof_extends() {
        let dir = TempDir::new("extend");
        let path = dir.path("f");
        let file = rw(&path);
        let pool = pool();
        let off = 1 << 20;
        assert_eq!(pool.write_at(file.as_fd(), b"tail", off).expect("write"), 4);
        assert_eq!(fs::metadata(&path).expect("stat").len(), off + 4);
        let mut buf = [0u8; 8];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, off - 4).expect("read"),
            8
        );
        assert_eq!(&buf, b"\0\0\0\0tail");
    }

    #[test]
    fn write_append_and_current_position() {
        let dir = TempDir::new("append");
        let path = dir.path("f");
        fs::write(&path, b"abc").expect("seed");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open append");
        let pool = pool();
        assert_eq!(pool.write_append(file.as_fd(), b"def").expect("append"), 3);
        // O_APPEND wins over an explicit offset.
        assert_eq!(
            pool.write_at(file.as_fd(), b"ghi", 0).expect("append at 0"),
            3
        );
        assert_eq!(fs::read(&path).expect("read"), b"abcdefghi");

        // On a plain fd, CURRENT_POSITION reads and advances the file position.
        let mut file = File::open(&path).expect("open");
        let mut buf = [0u8; 4];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, CURRENT_POSITION)
                .expect("read"),
            4
        );
        assert_eq!(&buf, b"abcd");
        let mut rest = String::new();
        file.read_to_string(&mut rest).expect("read rest");
        assert_eq!(rest, "efghi");
    }

    #[test]
    fn bad_offset_and_bad_fd_map_to_errno() {
        let dir = TempDir::new("errno");
        let path = dir.path("f");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("open wronly");
        let pool = pool();
        let mut buf = [0u8; 8];
        let err = pool
            .read_at(file.as_fd(), &mut buf, 0)
            .expect_err("read wronly");
        assert_eq!(errno(&err), Some(libc::EBADF));
        let err = pool
            .write_at(file.as_fd(), b"x", u64::MAX - 1)
            .expect_err("bad offset");
        assert_eq!(errno(&err), Some(libc::EINVAL));
        let ro = File::open(&path).expect("open rdonly");
        let err = pool
            .write_at(ro.as_fd(), b"x", 0)
            .expect_err("write rdonly");
        assert_eq!(errno(&err), Some(libc::EBADF));
    }

    #[test]
    fn fsync_and_fdatasync() {
        let dir = TempDir::new("fsync");
        let file = rw(&dir.path("f"));
        let pool = pool();
        pool.write_at(file.as_fd(), b"data", 0).expect("write");
        pool.fsync(file.as_fd(), false).expect("fsync");
        pool.fsync(file.as_fd(), true).expect("fdatasync");
    }

    #[test]
    fn fallocate_keep_size_and_punch_hole() {
        let dir = TempDir::new("fallocate");
        let path = dir.path("f");
        let file = rw(&path);
        let pool = pool();
        let data = pattern(64 * 1024, 2);
        pool.write_at(file.as_fd(), &data, 0).expect("write");
        pool.fsync(file.as_fd(), false).expect("fsync");

        let before = fs::metadata(&path).expect("stat");
        pool.fallocate(file.as_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20)
            .expect("fallocate keep size");
        let after = fs::metadata(&path).expect("stat");
        assert_eq!(after.len(), data.len() as u64, "KEEP_SIZE keeps the size");
        assert!(after.blocks() > before.blocks(), "blocks were allocated");

        pool.fallocate(
            file.as_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            4096,
            8192,
        )
        .expect("punch hole");
        let mut back = vec![0u8; data.len()];
        pool.read_at(file.as_fd(), &mut back, 0).expect("read");
        assert_eq!(&back[..4096], &data[..4096]);
        assert!(
            back[4096..12288].iter().all(|&b| b == 0),
            "hole reads zeros"
        );
        assert_eq!(&back[12288..], &data[12288..]);

        pool.fallocate(file.as_fd(), 0, 0, 200_000)
            .expect("fallocate extend");
        assert_eq!(fs::metadata(&path).expect("stat").len(), 200_000);
    }

    #[test]
    fn openat_batch_missing_name_is_enoent_for_that_entry_only() {
        let dir = TempDir::new("openat");
        fs::write(dir.path("a"), b"A").expect("a");
        fs::write(dir.path("c"), b"C").expect("c");
        let dirfile = File::open(&dir.0).expect("open dir");
        let pool = pool();
        let names = [c"a", c"missing", c"c"];
        let results = pool.openat_batch(dirfile.as_fd(), &names, libc::O_RDONLY);
        assert_eq!(results.len(), 3);
        let mut it = results.into_iter();
        let a = it.next().expect("a").expect("a opens");
        let missing = it.next().expect("missing").expect_err("missing fails");
        let c = it.next().expect("c").expect("c opens");
        assert_eq!(errno(&missing), Some(libc::ENOENT));
        let mut buf = [0u8; 1];
        pool.read_at(a.as_fd(), &mut buf, 0).expect("read a");
        assert_eq!(&buf, b"A");
        pool.read_at(c.as_fd(), &mut buf, 0).expect("read c");
        assert_eq!(&buf, b"C");
        // SAFETY: F_GETFD on an fd we own touches no memory.
        let fd_flags = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fd_flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        assert!(pool.openat_batch(dirfile.as_fd(), &[], 0).is_empty());
    }

    fn make_files(dir: &TempDir, n: usize) -> Vec<CString> {
        (0..n)
            .map(|i| {
                let name = format!("f{i}");
                fs::write(dir.path(&name), name.as_bytes()).expect("seed file");
                CString::new(name).expect("no nul")
            })
            .collect()
    }

    #[test]
    fn batch_of_100_openats_is_one_enter() {
        let dir = TempDir::new("batch100");
        let names = make_files(&dir, 100);
        let refs: Vec<&CStr> = names.iter().map(|n| n.as_c_str()).collect();
        let dirfile = File::open(&dir.0).expect("open dir");
        let pool = RingPool::new(128).expect("ring");
        let before = pool.stats();
        let results = pool.openat_batch(dirfile.as_fd(), &refs, libc::O_RDONLY);
        let after = pool.stats();
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(after.enters - before.enters, 1);
        assert_eq!(after.sqes_submitted - before.sqes_submitted, 100);
        assert_eq!(after.cqes_reaped - before.cqes_reaped, 100);
        assert_eq!(after.batch_histogram[6] - before.batch_histogram[6], 1);
        // Results are in input order: each fd reads back its own name.
        for (fd, name) in results.into_iter().zip(&names) {
            let fd = fd.expect("open");
            let mut buf = vec![0u8; name.as_bytes().len()];
            pool.read_at(fd.as_fd(), &mut buf, 0).expect("read");
            assert_eq!(buf, name.as_bytes());
        }
    }

    #[test]
    fn batch_larger_than_sq_is_chunked() {
        let dir = TempDir::new("chunked");
        let names = make_files(&dir, 20);
        let refs: Vec<&CStr> = names.iter().map(|n| n.as_c_str()).collect();
        let dirfile = File::open(&dir.0).expect("open dir");
        let pool = RingPool::new(8).expect("ring");
        let before = pool.stats();
        let results = pool.openat_batch(dirfile.as_fd(), &refs, libc::O_RDONLY);
        let after = pool.stats();
        assert_eq!(results.len(), 20);
        assert!(results.iter().all(|r| r.is_ok()));
        // 8 + 8 + 4.
        assert_eq!(after.enters - before.enters, 3);
        assert_eq!(after.batch_histogram[3] - before.batch_histogram[3], 2);
        assert_eq!(after.batch_histogram[2] - before.batch_histogram[2], 1);
    }

    #[test]
    fn statx_batch_matches_metadata() {
        let dir = TempDir::new("statx");
        fs::write(dir.path("small"), b"12345").expect("small");
        fs::write(dir.path("big"), pattern(70_000, 3)).expect("big");
        std::os::unix::fs::symlink("small", dir.path("link")).expect("symlink");
        let small = File::open(dir.path("small")).expect("open small");
        let big = File::open(dir.path("big")).expect("open big");
        let pool = pool();
        let mask = libc::STATX_BASIC_STATS;
        let results = pool.statx_batch(&[small.as_fd(), big.as_fd()], mask);
        for (res, name) in results.into_iter().zip(["small", "big"]) {
            let stx = res.expect("statx");
            let md = fs::metadata(dir.path(name)).expect("metadata");
            assert_eq!(stx.stx_ino, md.ino());
            assert_eq!(stx.stx_size, md.len());
            assert_eq!(u32::from(stx.stx_mode), md.mode());
        }

        let dirfile = File::open(&dir.0).expect("open dir");
        let results = pool.statx_at_batch(dirfile.as_fd(), &[c"link", c"nope", c"big"], mask);
        let mut it = results.into_iter();
        let link = it.next().expect("link").expect("statx link");
        let link_md = fs::symlink_metadata(dir.path("link")).expect("lstat");
        assert_eq!(link.stx_ino, link_md.ino(), "AT_SYMLINK_NOFOLLOW");
        assert_eq!(u32::from(link.stx_mode) & libc::S_IFMT, libc::S_IFLNK);
        let nope = it.next().expect("nope").expect_err("missing");
        assert_eq!(errno(&nope), Some(libc::ENOENT));
        let big_stx = it.next().expect("big").expect("statx big");
        assert_eq!(big_stx.stx_size, 70_000);
    }

    #[test]
    fn splice_copy_3mib_equals_source() {
        let dir = TempDir::new("splice");
        let src_path = dir.path("src");
        let dst_path = dir.path("dst");
        let data = pattern(3 << 20, 4);
        fs::write(&src_path, &data).expect("seed");
        let src = File::open(&src_path).expect("open src");
        let dst = rw(&dst_path);
        let pool = pool();
        let copied = pool
            .splice_copy(src.as_fd(), 0, dst.as_fd(), 0, data.len())
            .expect("splice");
        assert_eq!(copied, data.len());
        assert!(fs::read(&dst_path).expect("read dst") == data);

        // Unaligned offsets, and a length past EOF stops at EOF.
        let dst2_path = dir.path("dst2");
        let dst2 = rw(&dst2_path);
        let copied = pool
            .splice_copy(src.as_fd(), 12_345, dst2.as_fd(), 777, 10 << 20)
            .expect("splice to eof");
        assert_eq!(copied, data.len() - 12_345);
        let out = fs::read(&dst2_path).expect("read dst2");
        assert_eq!(out.len(), 777 + copied);
        assert!(out[777..] == data[12_345..]);

        // At EOF: nothing to copy.
        let copied = pool
            .splice_copy(src.as_fd(), data.len() as u64, dst2.as_fd(), 0, 100)
            .expect("splice at eof");
        assert_eq!(copied, 0);
    }

    #[test]
    fn splice_copy_to_append_fd_at_current_position() {
        let dir = TempDir::new("splice-append");
        let src_path = dir.path("src");
        let dst_path = dir.path("dst");
        fs::write(&src_path, b"0123456789").expect("seed");
        let mut dst = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&dst_path)
            .expect("open dst");
        dst.write_all(b">").expect("prefix");
        let src = File::open(&src_path).expect("open src");
        let pool = pool();
        let copied = pool
            .splice_copy(src.as_fd(), 2, dst.as_fd(), CURRENT_POSITION, 5)
            .expect("splice");
        assert_eq!(copied, 5);
        assert_eq!(fs::read(&dst_path).expect("read"), b">23456");
    }

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
