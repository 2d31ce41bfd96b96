//! The `/dev/fuse` ioctls: registering backing files for kernel passthrough.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

/// `struct fuse_backing_map` (include/uapi/linux/fuse.h).
#[repr(C)]
struct FuseBackingMap {
    fd: i32,
    flags: u32,
    padding: u64,
}

/// `_IOW(FUSE_DEV_IOC_MAGIC, 1, struct fuse_backing_map)`.
const FUSE_DEV_IOC_BACKING_OPEN: libc::c_ulong = 0x4010_e501;
/// `_IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)`.
const FUSE_DEV_IOC_BACKING_CLOSE: libc::c_ulong = 0x4004_e502;

/// `FUSE_DEV_IOC_BACKING_OPEN`: registers `file` as a passthrough backing file on the FUSE
/// connection of `dev`, with the calling thread's credentials; returns its backing id.
///
/// # Errors
/// The ioctl's: `EPERM` without CAP_SYS_ADMIN, `EOPNOTSUPP` when passthrough was not
/// negotiated, `ELOOP` when `file` is too deeply stacked.
pub fn fuse_backing_open(dev: BorrowedFd<'_>, file: BorrowedFd<'_>) -> io::Result<u32> {
    let map = FuseBackingMap {
        fd: file.as_raw_fd(),
        flags: 0,
        padding: 0,
    };
    // SAFETY: `map` is a valid `struct fuse_backing_map` that outlives the call.
    let id = check(unsafe { libc::ioctl(dev.as_raw_fd(), FUSE_DEV_IOC_BACKING_OPEN, &map) })?;
    u32::try_from(id).map_err(|_| io::Error::from_raw_os_error(libc::EIO))
}

/// `FUSE_DEV_IOC_BACKING_CLOSE`: drops the registration `id`.
///
/// # Errors
/// The ioctl's (`ENOENT` for an unknown id; the connection's end drops them all).
pub fn fuse_backing_close(dev: BorrowedFd<'_>, id: u32) -> io::Result<()> {
    // SAFETY: the argument is a valid `u32` that outlives the call.
    check(unsafe { libc::ioctl(dev.as_raw_fd(), FUSE_DEV_IOC_BACKING_CLOSE, &id) }).map(drop)
}
