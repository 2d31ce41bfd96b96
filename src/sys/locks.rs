//! Record locks (open file description locks) and `flock(2)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

/// One byte range lock, as `struct flock` has it: `len` 0 reaches to the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLock {
    /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
    pub kind: i32,
    /// First byte.
    pub start: i64,
    /// Length; 0 for "to the end of the file, however it grows".
    pub len: i64,
    /// The holder's pid (`F_GETLK`); -1 for an open file description lock.
    pub pid: i32,
}

fn to_flock(lock: &RecordLock) -> libc::flock {
    // SAFETY: `flock` is plain old data; all zeroes is a valid value.
    let mut raw: libc::flock = unsafe { std::mem::zeroed() };
    raw.l_type = lock.kind as libc::c_short;
    raw.l_whence = libc::SEEK_SET as libc::c_short;
    raw.l_start = lock.start;
    raw.l_len = lock.len;
    raw
}

/// `fcntl(fd, cmd, lock)` for a lock command: `F_SETLK`, `F_SETLKW`, `F_GETLK` or their
/// `F_OFD_*` forms. Returns the lock as the kernel left it: for a `GETLK`, the first
/// conflicting lock of another holder, or `lock` with kind `F_UNLCK` when none would conflict.
///
/// # Errors
/// `EAGAIN` (or `EACCES`) when a `SETLK` conflicts; `EBADF` when `fd` is not open for the
/// access the lock needs; `EINTR` when a `SETLKW` was interrupted.
pub fn fcntl_lock(fd: BorrowedFd<'_>, cmd: i32, lock: &RecordLock) -> io::Result<RecordLock> {
    let mut raw = to_flock(lock);
    // SAFETY: `raw` is a valid `struct flock` that outlives the call, which may write into it.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut raw) })?;
    Ok(RecordLock {
        kind: i32::from(raw.l_type),
        start: raw.l_start,
        len: raw.l_len,
        pid: raw.l_pid,
    })
}

/// `F_OFD_SETLK`: takes or drops `lock` for the open file description of `fd`, without
/// waiting.
///
/// # Errors
/// As [`fcntl_lock`].
pub fn ofd_setlk(fd: BorrowedFd<'_>, lock: &RecordLock) -> io::Result<()> {
    fcntl_lock(fd, libc::F_OFD_SETLK, lock).map(drop)
}

/// `F_OFD_GETLK`: the first lock of another holder that would conflict with `lock`.
///
/// # Errors
/// As [`fcntl_lock`].
pub fn ofd_getlk(fd: BorrowedFd<'_>, lock: &RecordLock) -> io::Result<RecordLock> {
    fcntl_lock(fd, libc::F_OFD_GETLK, lock)
}

/// `flock(fd, op)` (`LOCK_SH`, `LOCK_EX` or `LOCK_UN`, with `LOCK_NB`).
///
/// # Errors
/// `EWOULDBLOCK` when another open file description holds a conflicting lock.
pub fn flock(fd: BorrowedFd<'_>, op: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a borrowed fd.
    check(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(drop)
}
