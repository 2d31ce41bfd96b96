//! I/O on open files: read/write at offsets, sync, allocation, seeking, copies, status flags,
//! inode flags (`chattr`), and closing with the error reported.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};

use super::{check, check_size};

/// `lseek(2)`.
///
/// # Errors
/// The errno of `lseek(2)` (`ENXIO` for `SEEK_DATA`/`SEEK_HOLE` past the data).
pub fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: plain integer arguments.
    let ret = unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `ftruncate(2)`.
///
/// # Errors
/// The errno of `ftruncate(2)`.
pub fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let size = i64::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
    Ok(())
}

/// `copy_file_range(2)`: the in-kernel copy, no data through user space.
///
/// # Errors
/// The errno of `copy_file_range(2)`.
pub fn copy_file_range(
    fd_in: BorrowedFd<'_>,
    off_in: u64,
    fd_out: BorrowedFd<'_>,
    off_out: u64,
    len: usize,
    flags: u32,
) -> io::Result<usize> {
    let mut off_in =
        i64::try_from(off_in).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut off_out =
        i64::try_from(off_out).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the offsets are valid, writable i64s for the duration of the call.
    check_size(unsafe {
        libc::copy_file_range(
            fd_in.as_raw_fd(),
            &mut off_in,
            fd_out.as_raw_fd(),
            &mut off_out,
            len,
            flags,
        )
    })
}

/// `read(2)` on a non-backing fd (the daemon's own pipes and `/proc` files).
///
/// # Errors
/// The errno of `read(2)`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    check_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)` on a non-backing fd (the readiness pipe).
///
/// # Errors
/// The errno of `write(2)`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its length.
    check_size(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// `pread(2)`, for the data path until every read is on the ring.
///
/// # Errors
/// The errno of `pread(2)`.
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    check_size(unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as i64,
        )
    })
}

/// `pwrite(2)`, for the data path until every write is on the ring.
///
/// # Errors
/// The errno of `pwrite(2)`.
pub fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its length.
    check_size(unsafe {
        libc::pwrite(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            offset as i64,
        )
    })
}

/// `fsync(2)` or `fdatasync(2)`.
///
/// # Errors
/// The errno of the call.
pub fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
    // SAFETY: plain integer argument.
    check(unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })?;
    Ok(())
}

/// `fallocate(2)`.
///
/// # Errors
/// The errno of `fallocate(2)`.
pub fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    let offset = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let len = i64::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset, len) })?;
    Ok(())
}

/// Adds `flags` (such as `O_NOATIME`) to an open file's status flags
/// (`fcntl(F_GETFL)`, then `F_SETFL`).
///
/// # Errors
/// The errno of `fcntl(2)`: `EPERM` for `O_NOATIME` without ownership or CAP_FOWNER.
pub fn add_status_flags(fd: BorrowedFd<'_>, flags: i32) -> io::Result<()> {
    // SAFETY: F_GETFL on a borrowed, open fd takes no pointer.
    let now = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: F_SETFL with an integer argument.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, now | flags) })?;
    Ok(())
}

/// `FS_IOC_GETFLAGS` (`_IOR('f', 1, long)`): the inode flags `lsattr` shows. The kernel reads
/// and writes an `int` whatever the encoded size says.
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;

/// `FS_IOC_SETFLAGS` (`_IOW('f', 2, long)`).
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;

/// `FS_IOC_FSGETXATTR` (`_IOR('X', 31, struct fsxattr)`).
const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801c_581f;

/// `FS_IOC_FSSETXATTR` (`_IOW('X', 32, struct fsxattr)`).
const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401c_5820;

/// `sizeof(struct fsxattr)`.
pub const FSXATTR_SIZE: usize = 28;

/// The inode flags of an open file (`ioctl(FS_IOC_GETFLAGS)`, what `lsattr` reads).
///
/// # Errors
/// The errno of `ioctl(2)`: `ENOTTY` where the filesystem has no such flags.
pub fn get_inode_flags(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int to the pointer, which is valid for it.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) })?;
    Ok(flags as u32)
}

/// Sets the inode flags of an open file (`ioctl(FS_IOC_SETFLAGS)`, what `chattr` does): the
/// owner or CAP_FOWNER, and CAP_LINUX_IMMUTABLE for append-only and immutable.
///
/// # Errors
/// The errno of `ioctl(2)`.
pub fn set_inode_flags(fd: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    let flags = flags as libc::c_int;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the pointer, which is valid for it.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_SETFLAGS, &flags) })?;
    Ok(())
}

/// The `struct fsxattr` of an open file (`ioctl(FS_IOC_FSGETXATTR)`), as its bytes.
///
/// # Errors
/// The errno of `ioctl(2)`.
pub fn fsgetxattr(fd: BorrowedFd<'_>) -> io::Result<[u8; FSXATTR_SIZE]> {
    let mut buf = [0u8; FSXATTR_SIZE];
    // SAFETY: FS_IOC_FSGETXATTR writes a struct fsxattr (FSXATTR_SIZE bytes) to the buffer.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FSGETXATTR, buf.as_mut_ptr()) })?;
    Ok(buf)
}

/// Sets the `struct fsxattr` of an open file (`ioctl(FS_IOC_FSSETXATTR)`).
///
/// # Errors
/// The errno of `ioctl(2)`.
pub fn fssetxattr(fd: BorrowedFd<'_>, attr: &[u8; FSXATTR_SIZE]) -> io::Result<()> {
    // SAFETY: FS_IOC_FSSETXATTR reads a struct fsxattr (FSXATTR_SIZE bytes) from the buffer.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FSSETXATTR, attr.as_ptr()) })?;
    Ok(())
}

/// `dup(2)`, close-on-exec.
///
/// # Errors
/// The errno of `fcntl(F_DUPFD_CLOEXEC)`.
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// `close(2)`, reporting its error (dropping an `OwnedFd` ignores it): a close is where
/// some filesystems report write-back failures deferred until then.
///
/// # Errors
/// The errno of `close(2)`; the fd is closed either way.
pub fn close(fd: OwnedFd) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` came from an `OwnedFd`, so it is open and owned by nobody else now.
    check(unsafe { libc::close(raw) })?;
    Ok(())
}
