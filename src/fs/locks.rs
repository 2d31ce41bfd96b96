//! POSIX and `flock` locks forwarded to BACKING (`-o locks=forward`; `crate::locks` has the
//! bookkeeping). Every attempt is non-blocking: a waiting `F_SETLKW` is retried by its
//! transport (a thread for `/dev/fuse`, a timeout on the queue's ring for io_uring), so no
//! worker or queue thread is pinned, and it ends with EINTR once its caller has a signal
//! pending, as natively.

use std::collections::hash_map::Entry;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{FileHandle, ReplyEmpty};
use log::error;

use crate::error::os;
use crate::locks::{HeldRanges, Holder, LockKind, LockRange, OFFSET_MAX};
use crate::stats::Op;
use crate::sys::{self, RecordLock};

use super::{DevFuse, UringFs};

/// The first retry of a waiting lock, and the longest pause between two.
const FIRST_RETRY: Duration = Duration::from_millis(1);
const LONGEST_RETRY: Duration = Duration::from_millis(50);

/// A lock request as the kernel sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockRequest {
    /// The inode.
    pub(crate) ino: u64,
    /// The open file it came through.
    pub(crate) fh: FileHandle,
    /// The kernel's lock owner id.
    pub(crate) owner: u64,
    /// POSIX or flock.
    pub(crate) kind: LockKind,
    /// What to lock, or unlock.
    pub(crate) range: LockRange,
    /// The locking process, for `F_GETLK` of another owner.
    pub(crate) pid: u32,
}

/// A `F_SETLKW` that could not be granted yet.
#[derive(Debug)]
pub(crate) struct LockWait {
    request: LockRequest,
    /// The waiting thread, whose signals end the wait.
    tid: u32,
    /// How long to wait before the next attempt.
    pub(crate) delay: Duration,
}

/// Where a lock request stands.
pub(crate) enum LockStep {
    /// Granted, or refused with this error.
    Done(io::Result<()>),
    /// Waiting for another holder: retry after `delay`.
    Wait(LockWait),
}

impl UringFs {
    /// `F_GETLK`: the first lock of another owner that conflicts with `range`, with its
    /// holder's pid; `range` with kind `F_UNLCK` when none does.
    pub(crate) fn do_getlk(
        &self,
        ino: u64,
        fh: FileHandle,
        owner: u64,
        range: LockRange,
    ) -> io::Result<(LockRange, u32)> {
        let file = self.file(ino, fh)?;
        let holders = self.locks.lock();
        // The owner's own description, so its own locks do not count; an owner without one
        // holds nothing, and the open file's description holds no lock either.
        let fd = holders
            .get(&(ino, owner, LockKind::Posix))
            .map_or(file.fd.as_fd(), |h| h.fd.as_fd());
        let found = sys::ofd_getlk(fd, &record_of(range))?;
        if found.kind == libc::F_UNLCK {
            return Ok((
                LockRange {
                    kind: libc::F_UNLCK,
                    ..range
                },
                0,
            ));
        }
        let conflict = range_of(&found);
        let pid = match u32::try_from(found.pid) {
            Ok(pid) if pid > 0 => pid,
            // An open file description lock (ours, or a process's on BACKING) carries no pid:
            // name the owner through the mount that holds it.
            _ => holders
                .iter()
                .find(|&(&(i, o, kind), holder)| {
                    i == ino
                        && o != owner
                        && kind == LockKind::Posix
                        && holder.ranges.conflicts(&LockRange {
                            kind: range.kind,
                            ..conflict
                        })
                })
                .map_or(0, |(_, holder)| holder.pid),
        };
        Ok((conflict, pid))
    }

    /// `F_SETLK`/`F_SETLKW` (or `flock`): granted, refused, or, for a waiting request that
    /// conflicts, a wait for the transport to retry with [`UringFs::retry_lock`].
    pub(crate) fn do_setlk(&self, request: LockRequest, wait: bool, tid: u32) -> LockStep {
        match self.try_lock(&request) {
            Err(err) if wait && is_conflict(&err) => LockStep::Wait(LockWait {
                request,
                tid,
                delay: FIRST_RETRY,
            }),
            res => LockStep::Done(res),
        }
    }

    /// Tries a waiting lock again: `None` while it still conflicts and its caller has no
    /// signal pending.
    pub(crate) fn retry_lock(&self, wait: &mut LockWait) -> Option<io::Result<()>> {
        match self.try_lock(&wait.request) {
            Err(err) if is_conflict(&err) => {
                if self.creds.interrupted(wait.tid) {
                    return Some(Err(os(libc::EINTR)));
                }
                wait.delay = (wait.delay * 2).min(LONGEST_RETRY);
                None
            }
            res => Some(res),
        }
    }

    /// Drops every lock of `kind` that `owner` holds on `ino` (FLUSH: a process closed a
    /// file, which drops its POSIX locks on it).
    pub(crate) fn release_locks(&self, ino: u64, owner: u64, kind: LockKind) {
        // Closing the holder's description releases what it holds.
        self.locks.lock().remove(&(ino, owner, kind));
    }

    /// Drops the locks owned by the open file `fh` of `ino`, which the kernel released: its
    /// `flock` locks (`flock_owner`) and open file description locks. A process's POSIX
    /// locks taken through it went at the FLUSH of that close already.
    pub(crate) fn release_file_locks(&self, ino: u64, fh: FileHandle, flock_owner: Option<u64>) {
        let mut holders = self.locks.lock();
        if let Some(owner) = flock_owner {
            holders.remove(&(ino, owner, LockKind::Flock));
        }
        holders.retain(|&(i, _, _), holder| i != ino || holder.fh != fh.0);
    }

    /// One non-blocking attempt, on the owner's own backing open file description.
    fn try_lock(&self, request: &LockRequest) -> io::Result<()> {
        let LockRequest {
            ino,
            fh,
            owner,
            kind,
            range,
            pid,
        } = *request;
        let key = (ino, owner, kind);
        let mut holders = self.locks.lock();
        let holder = match holders.entry(key) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(_) if range.kind == libc::F_UNLCK => return Ok(()),
            Entry::Vacant(slot) => slot.insert(Holder {
                fd: self.lock_description(ino)?,
                fh: fh.0,
                pid,
                ranges: HeldRanges::default(),
            }),
        };
        let res = match kind {
            LockKind::Posix => sys::ofd_setlk(holder.fd.as_fd(), &record_of(range)),
            LockKind::Flock => sys::flock(holder.fd.as_fd(), flock_op(range.kind)),
        };
        if res.is_ok() {
            let held = match kind {
                LockKind::Posix => range,
                LockKind::Flock => LockRange {
                    start: 0,
                    end: OFFSET_MAX,
                    ..range
                },
            };
            holder.ranges.apply(held);
            if range.kind != libc::F_UNLCK {
                holder.pid = pid;
            }
        }
        // An owner that holds nothing keeps its description until FLUSH or RELEASE: a
        // lock/unlock loop would otherwise open and close a backing file each time.
        res
    }

    /// A backing open file description of its own for one lock owner, opened by the daemon
    /// (the kernel checked the caller's file mode against the lock type already): read-write
    /// where possible, so it can hold both kinds of lock.
    fn lock_description(&self, ino: u64) -> io::Result<std::os::fd::OwnedFd> {
        let inode = self.inode(ino)?;
        if inode.file_type != libc::S_IFREG {
            // The kernel forwards locks on regular files only.
            return Err(os(libc::ENOLCK));
        }
        self.reopen(&inode, libc::O_RDWR | libc::O_CLOEXEC)
            .or_else(|_| self.reopen(&inode, libc::O_RDONLY | libc::O_CLOEXEC))
    }
}

impl DevFuse {
    /// Waits for `wait` on a thread of its own, then replies: a worker serves other requests
    /// meanwhile.
    pub(super) fn wait_for_lock(&self, mut wait: LockWait, started: Instant, reply: ReplyEmpty) {
        let core = Arc::clone(&self.core);
        let ino = wait.request.ino;
        let spawned = std::thread::Builder::new()
            .name("lock-wait".into())
            .spawn(move || {
                let res = loop {
                    std::thread::sleep(wait.delay);
                    if let Some(res) = core.retry_lock(&mut wait) {
                        break res;
                    }
                };
                core.reply_empty(Op::SetLk, ino, started, res, reply);
            });
        if let Err(err) = spawned {
            error!("cannot start a thread to wait for a lock: {err}");
        }
    }
}

/// A kernel range (inclusive end, `OFFSET_MAX` for "to the end") as `struct flock` has it.
fn record_of(range: LockRange) -> RecordLock {
    let start = i64::try_from(range.start).unwrap_or(i64::MAX);
    let len = if range.end >= OFFSET_MAX {
        0
    } else {
        i64::try_from(range.end - range.start + 1).unwrap_or(0)
    };
    RecordLock {
        kind: range.kind,
        start,
        len,
        pid: 0,
    }
}

/// A `struct flock` range as the kernel's inclusive one.
fn range_of(lock: &RecordLock) -> LockRange {
    let start = u64::try_from(lock.start).unwrap_or(0);
    let end = match u64::try_from(lock.len) {
        Ok(0) | Err(_) => OFFSET_MAX,
        Ok(len) => start.saturating_add(len - 1).min(OFFSET_MAX),
    };
    LockRange {
        kind: lock.kind,
        start,
        end,
    }
}

fn flock_op(kind: i32) -> i32 {
    let op = match kind {
        libc::F_RDLCK => libc::LOCK_SH,
        libc::F_WRLCK => libc::LOCK_EX,
        _ => libc::LOCK_UN,
    };
    op | libc::LOCK_NB
}

/// Another holder has it: what a waiting request retries on.
fn is_conflict(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EACCES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_convert_both_ways() {
        let whole = LockRange {
            kind: libc::F_WRLCK,
            start: 0,
            end: OFFSET_MAX,
        };
        assert_eq!(record_of(whole).len, 0);
        assert_eq!(range_of(&record_of(whole)), whole);
        let some = LockRange {
            kind: libc::F_RDLCK,
            start: 10,
            end: 19,
        };
        assert_eq!(record_of(some).len, 10);
        assert_eq!(range_of(&record_of(some)), some);
    }
}
