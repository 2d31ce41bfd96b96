//! FUSE-over-io_uring queues: the kernel hands requests to the daemon through io_uring instead
//! of `read(2)` on `/dev/fuse` (Linux 6.14+, `FUSE_OVER_IO_URING`).
//!
//! One queue per possible CPU (the kernel picks the queue from the CPU the application runs
//! on), each served by one thread that owns one `SQE128` ring: the kernel fills an entry as
//! task work of the task that submitted it, so a ring is submitted and waited on by its own
//! thread only. Each queue registers `depth` entries (REGISTER: a header buffer and a payload
//! buffer the kernel keeps pointers to until teardown); a completion with result 0 means the
//! entry holds a request, and one COMMIT_AND_FETCH SQE both answers it and re-arms the entry.
//! A completion of `-ENOTCONN` is the connection's end.
//!
//! With `sys/` and `ring/`, one of the modules allowed `unsafe`: a URING_CMD hands the
//! kernel buffer pointers it keeps, which no safe wrapper can check. The buffers live in the
//! `Entry`s, which the queue thread owns for its whole life, so they outlive every command that
//! points at them (the kernel drops its pointers when the connection ends, which is when the
//! thread stops).
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use log::{debug, error, info};

use crate::buffer::AlignedBuf;
use crate::creds::Caller;

use super::queue_stats::QueueStats;

/// `sizeof(struct fuse_uring_req_header)`: `in_out[128]`, `op_in[128]`, `ring_ent_in_out[32]`.
pub const HEADER_SIZE: usize = 288;
/// Where `struct fuse_uring_ent_in_out` starts in the header.
const ENT_IN_OUT: usize = 256;
/// `FUSE_IO_URING_CMD_REGISTER`.
const CMD_REGISTER: u32 = 1;
/// `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`.
const CMD_COMMIT_AND_FETCH: u32 = 2;
/// Byte offset of `len` in an SQE: REGISTER wants the iovec count there, and the io-uring
/// crate's `UringCmd80` has no setter for it.
const SQE_LEN_OFFSET: usize = 24;

/// Serves the request an entry holds: `header` has the `fuse_in_header` in `in_out`, the
/// per-op header in `op_in` and the payload's size in `ring_ent_in_out`; the request's other
/// arguments are in `payload`. A served request leaves the `fuse_out_header` in `in_out`, the
/// reply's body in `payload` and its size in `ring_ent_in_out.payload_sz`.
pub trait Serve: Send + Sync + 'static {
    /// Serves one request on queue `qid`: at once, or by a read or write the queue runs on
    /// its own ring first.
    fn serve(&self, qid: u16, header: &mut [u8; HEADER_SIZE], payload: &mut [u8]) -> Served;

    /// Runs `register`, which registers a personality on the queue's ring, with the
    /// credentials of `identity`, and returns its id.
    ///
    /// # Errors
    /// Switching credentials, or the registration's.
    fn register_personality(
        &self,
        identity: &Caller,
        register: &mut dyn FnMut() -> io::Result<u16>,
    ) -> io::Result<u16>;

    /// Finishes a request whose read or write completed with `result` (bytes, or a negative
    /// errno): writes its reply into the entry.
    fn complete(
        &self,
        header: &mut [u8; HEADER_SIZE],
        payload: &mut [u8],
        io: AsyncIo,
        result: i32,
    );

    /// Retries `deferred`: `true` when the reply is in the entry (commit it), `false` to
    /// retry again after `deferred.delay`.
    fn retry(
        &self,
        header: &mut [u8; HEADER_SIZE],
        payload: &mut [u8],
        deferred: &mut Deferred,
    ) -> bool;
}

/// What serving a request came to.
pub enum Served {
    /// The reply is in the entry: commit it.
    Done,
    /// Run this read or write on the queue's ring, then `Serve::complete`.
    Io(AsyncIo),
    /// Not answerable yet (a lock another process holds): `Serve::retry` it after a while.
    Later(Deferred),
}

/// A request waiting on something no SQE can wait for, retried on a timer of the queue's
/// ring: the queue serves its other entries meanwhile.
pub struct Deferred {
    /// How long until the next retry.
    pub delay: Duration,
    /// What the server needs to retry it.
    pub state: Box<dyn Any + Send>,
}

/// A read into, or a write from, the start of an entry's payload, run on the queue's ring with
/// the caller's credentials (a registered personality), several per queue at once.
pub struct AsyncIo {
    /// A write (of the payload's first `len` bytes) rather than a read (into them).
    pub write: bool,
    /// The backing fd.
    pub fd: RawFd,
    /// The file offset.
    pub offset: u64,
    /// Bytes asked for.
    pub len: u32,
    /// Bytes done so far (a short write is resubmitted for the rest).
    pub done: u32,
    /// Whose rights the SQE carries.
    pub identity: Caller,
    /// Keeps the backing fd open until the completion.
    pub keep: Box<dyn Any + Send>,
    /// The request's unique id, inode and start, for the reply and the counters.
    pub unique: u64,
    /// The inode, for the counters and the log.
    pub ino: u64,
    /// When the request started.
    pub started: Instant,
}

/// A header buffer, aligned as the kernel's struct.
#[repr(C, align(8))]
struct Header([u8; HEADER_SIZE]);

/// One registered entry: the buffers the kernel reads requests into and replies out of.
struct Entry {
    header: Box<Header>,
    payload: AlignedBuf,
    /// The two iovecs REGISTER points at (read once, at REGISTER).
    iov: Box<[libc::iovec; 2]>,
    /// The read or write in flight for the request this entry holds, and its commit id.
    pending: Option<(AsyncIo, u64)>,
    /// The request waiting for its retry timer, its commit id, and the timer's duration
    /// (the TIMEOUT SQE points at it until its completion).
    deferred: Option<(Deferred, u64, Box<types::Timespec>)>,
}

// SAFETY: the iovecs' raw pointers point into the entry's own heap buffers (the boxed
// header and the payload's storage), which move with it; nothing else aliases them.
unsafe impl Send for Entry {}

impl Entry {
    fn new(payload_size: usize) -> Entry {
        let mut header = Box::new(Header([0; HEADER_SIZE]));
        let mut payload = AlignedBuf::zeroed(payload_size);
        let iov = Box::new([
            libc::iovec {
                iov_base: header.0.as_mut_ptr().cast(),
                iov_len: HEADER_SIZE,
            },
            libc::iovec {
                iov_base: payload.as_mut_slice().as_mut_ptr().cast(),
                iov_len: payload_size,
            },
        ]);
        Entry {
            header,
            payload,
            iov,
            pending: None,
            deferred: None,
        }
    }

    /// The `commit_id` the kernel put in `ring_ent_in_out` for the request this entry holds.
    fn commit_id(&self) -> u64 {
        let at = ENT_IN_OUT + 8;
        self.header.0[at..at + 8]
            .try_into()
            .map(u64::from_ne_bytes)
            .unwrap_or(0)
    }
}

/// The running queues: their threads end when the connection does.
pub struct Queues {
    threads: Vec<JoinHandle<()>>,
    stats: Arc<QueueStats>,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// Queues made and allocated, not yet bound to a connection.
pub struct Prepared {
    queues: Vec<(u16, IoUring<squeue::Entry128, cqueue::Entry>, Vec<Entry>)>,
    depth: u16,
    payload_size: usize,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("queues", &self.queues.len())
            .field("depth", &self.depth)
            .field("payload_size", &self.payload_size)
            .finish()
    }
}

impl Prepared {
    /// Makes `nr_queues` rings of `depth` entries with `payload_size`-byte payload buffers.
    /// Everything that can fail (ring setup, allocation) fails here, before the daemon
    /// accepts `FUSE_OVER_IO_URING`: after that, a queue that never registers would block
    /// every request of the mount.
    ///
    /// # Errors
    /// The errno of `io_uring_setup(2)`.
    pub fn new(nr_queues: u16, depth: u16, payload_size: usize) -> io::Result<Prepared> {
        let mut queues = Vec::with_capacity(usize::from(nr_queues));
        for qid in 0..nr_queues {
            let ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
                .build(u32::from(depth) * 2)?;
            let entries: Vec<Entry> = (0..depth).map(|_| Entry::new(payload_size)).collect();
            queues.push((qid, ring, entries));
        }
        Ok(Prepared {
            queues,
            depth,
            payload_size,
        })
    }

    /// Starts the queues' threads on the FUSE connection `dev` (the session's `/dev/fuse`
    /// fd): they register their entries and serve requests with `serve` until the
    /// connection ends.
    ///
    /// # Errors
    /// The errno of `dup(2)` or of spawning a thread; the caller must then end the daemon,
    /// since the kernel waits for these queues.
    pub fn start(self, dev: BorrowedFd<'_>, serve: Arc<dyn Serve>) -> io::Result<Queues> {
        let nr_queues = self.queues.len();
        let mut threads = Vec::with_capacity(nr_queues);
        let stats = Arc::new(QueueStats::default());
        for (qid, ring, entries) in self.queues {
            let serve = Arc::clone(&serve);
            let dev = dev.try_clone_to_owned()?;
            let stats = Arc::clone(&stats);
            let thread = thread::Builder::new()
                .name(format!("fuse-uring-{qid}"))
                .spawn(move || run_queue(qid, ring, entries, &dev, &*serve, &stats))?;
            threads.push(thread);
        }
        info!(
            "serving FUSE requests over io_uring: {nr_queues} queues of {} entries, \
             {}-byte payloads",
            self.depth, self.payload_size
        );
        Ok(Queues { threads, stats })
    }
}

impl Queues {
    /// The queues' counters.
    pub fn stats(&self) -> Arc<QueueStats> {
        Arc::clone(&self.stats)
    }

    /// Waits for every queue thread (they end with the connection).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The `fuse_uring_cmd_req` of a command on queue `qid`.
fn cmd_req(qid: u16, commit_id: u64) -> [u8; 80] {
    let mut cmd = [0u8; 80];
    cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
    cmd[16..18].copy_from_slice(&qid.to_ne_bytes());
    cmd
}

/// The REGISTER command of entry `index`.
fn register_sqe(dev: &OwnedFd, qid: u16, index: usize, entry: &Entry) -> squeue::Entry128 {
    let sqe = opcode::UringCmd80::new(types::Fd(dev.as_raw_fd()), CMD_REGISTER)
        .cmd(cmd_req(qid, 0))
        .addr(Some(entry.iov.as_ptr() as u64))
        .build()
        .user_data(index as u64);
    // SAFETY: Entry128 is #[repr(C)] of two 64-byte halves (the crate asserts its size is
    // 128), so its bytes are the SQE's; `len` (u32 at offset 24) is the iovec count REGISTER
    // requires.
    let mut bytes: [u8; 128] = unsafe { std::mem::transmute(sqe) };
    bytes[SQE_LEN_OFFSET..SQE_LEN_OFFSET + 4].copy_from_slice(&2u32.to_ne_bytes());
    // SAFETY: the same bytes with one field changed are still a valid SQE.
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(bytes) }
}

/// Marks the `user_data` of a read or write SQE (the rest is the entry's index).
const IO_TAG: u64 = 1 << 63;
/// Marks the `user_data` of a deferred request's retry timer.
const RETRY_TAG: u64 = 1 << 62;
/// At most this many personalities per ring; past it they are all dropped and registered
/// again as needed (callers are few in practice).
const MAX_PERSONALITIES: usize = 1024;

/// The READ or WRITE SQE of `io` on entry `index`'s payload, with `personality`.
fn io_sqe(io: &AsyncIo, payload: &mut [u8], index: usize, personality: u16) -> squeue::Entry128 {
    let done = io.done as usize;
    let rest = io.len.saturating_sub(io.done);
    let start = done.min(payload.len());
    let buf = payload[start..].as_mut_ptr();
    let offset = io.offset + u64::from(io.done);
    let sqe = if io.write {
        opcode::Write::new(types::Fd(io.fd), buf, rest)
            .offset(offset)
            .build()
    } else {
        opcode::Read::new(types::Fd(io.fd), buf, rest)
            .offset(offset)
            .build()
    };
    sqe.personality(personality)
        .user_data(IO_TAG | index as u64)
        .into()
}

/// Parks entry `index`'s request as `deferred` and arms its retry timer.
fn defer(
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    entry: &mut Entry,
    index: usize,
    deferred: Deferred,
    commit_id: u64,
) -> io::Result<()> {
    let timer = Box::new(types::Timespec::from(deferred.delay));
    let sqe = opcode::Timeout::new(&*timer)
        .build()
        .user_data(RETRY_TAG | index as u64)
        .into();
    entry.deferred = Some((deferred, commit_id, timer));
    push(ring, &sqe)
}

/// The COMMIT_AND_FETCH command answering the request entry `index` holds.
fn commit_sqe(dev: &OwnedFd, qid: u16, index: usize, commit_id: u64) -> squeue::Entry128 {
    opcode::UringCmd80::new(types::Fd(dev.as_raw_fd()), CMD_COMMIT_AND_FETCH)
        .cmd(cmd_req(qid, commit_id))
        .build()
        .user_data(index as u64)
}

/// Pushes `sqe`, submitting what is queued first when the SQ is full.
fn push(
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    sqe: &squeue::Entry128,
) -> io::Result<()> {
    loop {
        // SAFETY: the buffers `sqe` points at (an entry's iovecs and, through them, its
        // header and payload) belong to the queue thread's `entries`, which outlive the ring's
        // use of them (see the module comment).
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

/// One queue's thread: registers every entry, then serves and commits until the connection
/// ends. A queue that stops while the connection lives would leave requests stuck, so a
/// failure ends the process: the kernel then aborts the connection (ENOTCONN), never hangs.
fn run_queue(
    qid: u16,
    mut ring: IoUring<squeue::Entry128, cqueue::Entry>,
    mut entries: Vec<Entry>,
    dev: &OwnedFd,
    serve: &dyn Serve,
    stats: &QueueStats,
) {
    // The kernel hands a request to the queue of the CPU its caller runs on and wakes that
    // queue's thread; on another CPU every request would also migrate the work (measured:
    // `ls -lR` of a warm 5,000-file tree took 2.7 times as long unpinned).
    if let Err(err) = crate::sys::pin_thread_to_cpu(usize::from(qid)) {
        debug!("FUSE io_uring queue {qid} stays unpinned: {err}");
    }
    if let Err(err) = serve_queue(qid, &mut ring, &mut entries, dev, serve, stats) {
        error!("FUSE io_uring queue {qid} failed: {err}; ending the daemon");
        std::process::exit(1);
    }
    debug!("FUSE io_uring queue {qid}: connection ended");
    // The kernel has dropped its pointers: the entries may go now (after the ring).
    drop(ring);
    drop(entries);
}

fn serve_queue(
    qid: u16,
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    entries: &mut [Entry],
    dev: &OwnedFd,
    serve: &dyn Serve,
    stats: &QueueStats,
) -> io::Result<()> {
    for (index, entry) in entries.iter().enumerate() {
        push(ring, &register_sqe(dev, qid, index, entry))?;
    }
    let mut personalities: HashMap<Caller, u16> = HashMap::new();
    let mut live = entries.len();
    let mut completions = Vec::with_capacity(entries.len());
    while live > 0 {
        stats.entered(ring.submission().len());
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => return Err(err),
        }
        completions.clear();
        completions.extend(ring.completion().map(|cqe| (cqe.user_data(), cqe.result())));
        for &(user_data, result) in &completions {
            let index = usize::try_from(user_data & !(IO_TAG | RETRY_TAG)).unwrap_or(usize::MAX);
            let Some(entry) = entries.get_mut(index) else {
                error!("FUSE io_uring queue {qid}: completion for unknown entry {user_data}");
                continue;
            };
            if user_data & RETRY_TAG != 0 {
                stats.retries.fetch_add(1, Relaxed);
                let Some((mut deferred, commit_id, _timer)) = entry.deferred.take() else {
                    error!("FUSE io_uring queue {qid}: retry timer for idle entry {index}");
                    continue;
                };
                let header = &mut entry.header.0;
                if serve.retry(header, entry.payload.as_mut_slice(), &mut deferred) {
                    push(ring, &commit_sqe(dev, qid, index, commit_id))?;
                } else {
                    defer(ring, entry, index, deferred, commit_id)?;
                }
                continue;
            }
            if user_data & IO_TAG != 0 {
                stats.io.fetch_add(1, Relaxed);
                io_done(
                    qid,
                    ring,
                    entry,
                    index,
                    dev,
                    serve,
                    &mut personalities,
                    result,
                )?;
                continue;
            }
            match result {
                0 => {
                    stats.requests.fetch_add(1, Relaxed);
                    let commit_id = entry.commit_id();
                    match serve.serve(qid, &mut entry.header.0, entry.payload.as_mut_slice()) {
                        Served::Done => push(ring, &commit_sqe(dev, qid, index, commit_id))?,
                        Served::Io(io) => {
                            let personality =
                                personality_for(ring, &mut personalities, serve, &io.identity)?;
                            let sqe = io_sqe(&io, entry.payload.as_mut_slice(), index, personality);
                            entry.pending = Some((io, commit_id));
                            push(ring, &sqe)?;
                        }
                        Served::Later(deferred) => {
                            defer(ring, entry, index, deferred, commit_id)?;
                        }
                    }
                }
                // REGISTER before the kernel has finished INIT: try again shortly.
                r if r == -libc::EAGAIN => {
                    thread::sleep(Duration::from_millis(1));
                    push(ring, &register_sqe(dev, qid, index, entry))?;
                }
                // The connection ends (unmount, abort) or the daemon's file is going away.
                r if r == -libc::ENOTCONN || r == -libc::ECANCELED || r == -libc::ENODEV => {
                    live -= 1;
                }
                r => {
                    return Err(io::Error::from_raw_os_error(-r));
                }
            }
        }
    }
    Ok(())
}

/// The personality of `identity` on this queue's ring, registered on first use.
fn personality_for(
    ring: &IoUring<squeue::Entry128, cqueue::Entry>,
    personalities: &mut HashMap<Caller, u16>,
    serve: &dyn Serve,
    identity: &Caller,
) -> io::Result<u16> {
    if let Some(&id) = personalities.get(identity) {
        return Ok(id);
    }
    let submitter = ring.submitter();
    if personalities.len() >= MAX_PERSONALITIES {
        for (_, id) in personalities.drain() {
            let _ = submitter.unregister_personality(id);
        }
    }
    let id = serve.register_personality(identity, &mut || submitter.register_personality())?;
    personalities.insert(identity.clone(), id);
    Ok(id)
}

/// A read or write of entry `index` completed with `result`: resubmits what is left of a
/// short write (or an interrupted one), else replies and commits.
#[allow(clippy::too_many_arguments)]
fn io_done(
    qid: u16,
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    entry: &mut Entry,
    index: usize,
    dev: &OwnedFd,
    serve: &dyn Serve,
    personalities: &mut HashMap<Caller, u16>,
    result: i32,
) -> io::Result<()> {
    let Some((mut io, commit_id)) = entry.pending.take() else {
        error!("FUSE io_uring queue {qid}: I/O completion for idle entry {index}");
        return Ok(());
    };
    let again = result == -libc::EAGAIN || result == -libc::EINTR;
    let partial = io.write && result > 0 && io.done + result.unsigned_abs() < io.len;
    if again || partial {
        if partial {
            io.done += result.unsigned_abs();
        }
        let personality = personality_for(ring, personalities, serve, &io.identity)?;
        let sqe = io_sqe(&io, entry.payload.as_mut_slice(), index, personality);
        entry.pending = Some((io, commit_id));
        return push(ring, &sqe);
    }
    let total = if result >= 0 {
        i32::try_from(io.done)
            .unwrap_or(i32::MAX)
            .saturating_add(result)
    } else {
        result
    };
    serve.complete(&mut entry.header.0, entry.payload.as_mut_slice(), io, total);
    push(ring, &commit_sqe(dev, qid, index, commit_id))
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`, such as `0-1`): the
/// kernel makes one queue per possible CPU and waits for every one of them. Read at start,
/// before the mount is live.
///
/// # Errors
/// When the file cannot be read or parsed.
pub fn possible_cpus(text: &str) -> io::Result<u16> {
    let mut count: u32 = 0;
    for range in text.trim().split(',').filter(|r| !r.is_empty()) {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let lo: u32 = lo.parse().map_err(|_| invalid(text))?;
        let hi: u32 = hi.parse().map_err(|_| invalid(text))?;
        count += hi.checked_sub(lo).ok_or_else(|| invalid(text))? + 1;
    }
    u16::try_from(count)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(text))
}

fn invalid(text: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot parse the possible CPUs {text:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possible_cpu_lists_are_counted() {
        assert_eq!(possible_cpus("0-1\n").unwrap(), 2);
        assert_eq!(possible_cpus("0").unwrap(), 1);
        assert_eq!(possible_cpus("0-3,8-11").unwrap(), 8);
        assert!(possible_cpus("").is_err());
        assert!(possible_cpus("3-1").is_err());
        assert!(possible_cpus("x").is_err());
    }

    #[test]
    fn register_sets_the_iovec_count() {
        let dev = crate::sys::open_dir_path(c"/", libc::O_PATH).expect("an fd");
        let entry = Entry::new(8192);
        let sqe = register_sqe(&dev, 1, 3, &entry);
        // SAFETY: as in register_sqe: Entry128 is 128 plain bytes.
        let bytes: [u8; 128] = unsafe { std::mem::transmute(sqe) };
        assert_eq!(
            &bytes[SQE_LEN_OFFSET..SQE_LEN_OFFSET + 4],
            &2u32.to_ne_bytes()
        );
        // The command area starts at byte 48: qid at offset 16 of it.
        assert_eq!(&bytes[48 + 16..48 + 18], &1u16.to_ne_bytes());
        assert_eq!(bytes[0], 46, "IORING_OP_URING_CMD");
    }

    #[test]
    fn commit_id_is_read_from_the_header() {
        let mut entry = Entry::new(8192);
        entry.header.0[ENT_IN_OUT + 8..ENT_IN_OUT + 16].copy_from_slice(&77u64.to_ne_bytes());
        assert_eq!(entry.commit_id(), 77);
    }
}
