//! Names and inodes: opening, stat, chmod/chown/utimes on `O_PATH` fds, making and removing
//! entries, file handles, and the start-up path helpers.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::xattr::SYS_FCHMODAT2;
use super::{EMPTY, check, check_long, check_size, fd_name, owned};

/// Opens a directory by path from the cwd. Start-up only: BACKING and `/proc/self/fd`.
///
/// # Errors
/// The errno of `open(2)`.
pub fn open_dir_path(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    owned(unsafe { libc::open(path.as_ptr(), flags | libc::O_DIRECTORY | libc::O_CLOEXEC) })
}

/// `openat(2)`; `O_CLOEXEC` is always added.
///
/// # Errors
/// The errno of `openat(2)`.
pub fn openat(dirfd: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and lives across the call; dirfd is open.
    owned(unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })
}

/// An all-zero `statx` buffer.
pub fn statx_zeroed() -> libc::statx {
    // SAFETY: `statx` is plain old data; all-zero is a valid value.
    unsafe { MaybeUninit::<libc::statx>::zeroed().assume_init() }
}

/// `statx(2)` relative to `dirfd`; with `EMPTY` and `AT_EMPTY_PATH` it stats `dirfd` itself.
///
/// # Errors
/// The errno of `statx(2)`.
pub fn statx(dirfd: BorrowedFd<'_>, name: &CStr, flags: i32, mask: u32) -> io::Result<libc::statx> {
    let mut stx = statx_zeroed();
    // SAFETY: `name` is NUL-terminated; `stx` is a valid, writable statx buffer.
    check(unsafe { libc::statx(dirfd.as_raw_fd(), name.as_ptr(), flags, mask, &mut stx) })?;
    Ok(stx)
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`: chmod of the inode an `O_PATH` fd names.
///
/// # Errors
/// The errno of `fchmodat2(2)` (`EOPNOTSUPP` on a symlink, as natively).
pub fn fchmod_empty(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments and a static empty string.
    check_long(unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            mode as libc::c_uint,
            libc::AT_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// chmod of the inode an `O_PATH` fd names on a kernel without `fchmodat2` (before 6.6):
/// `fchmodat(proc_fd, "N", mode, 0)`, through the fd's magic link in the pinned
/// `/proc/self/fd` (a name relative to a dir fd, not a path from the root). `fchmodat` always
/// follows, and following a magic link ends on the inode the fd pins, a symlink included; but
/// Linux has no chmod of a symlink (6.6+ refuses it with `EOPNOTSUPP`, older kernels let ext4
/// change the mode and then fail), so a symlink is refused here with `EOPNOTSUPP`, as
/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)` refuses it, without calling `fchmodat`.
///
/// # Errors
/// `EOPNOTSUPP` on a symlink; else the errno of `statx(2)` or `fchmodat(2)`.
pub fn fchmodat_proc(proc_fd: BorrowedFd<'_>, fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let stx = statx(
        fd,
        EMPTY,
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        libc::STATX_TYPE,
    )?;
    if u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFLNK {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let name = fd_name(fd);
    // SAFETY: `name` is NUL-terminated and lives across the call; plain integers otherwise.
    // The raw syscall: glibc may route `fchmodat` through `fchmodat2`.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_fchmodat,
            proc_fd.as_raw_fd(),
            name.as_ptr(),
            mode as libc::c_uint,
        )
    })?;
    Ok(())
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)`; `u32::MAX` keeps an id.
///
/// # Errors
/// The errno of `fchownat(2)`.
pub fn fchown_empty(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments and a static empty string.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`; `UTIME_NOW`/`UTIME_OMIT` go in `tv_nsec`.
///
/// # Errors
/// The errno of `utimensat(2)`.
pub fn utimens_empty(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: `times` points to two valid timespecs.
    check(unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `readlinkat(fd, "")` of a symlink held as an `O_PATH|O_NOFOLLOW` fd.
///
/// # Errors
/// The errno of `readlinkat(2)`.
pub fn readlink_empty(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    let len = check_size(unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    buf.truncate(len);
    Ok(buf)
}

/// `mkdirat(2)`.
///
/// # Errors
/// The errno of `mkdirat(2)`.
pub fn mkdirat(dirfd: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mkdirat(dirfd.as_raw_fd(), name.as_ptr(), mode) })?;
    Ok(())
}

/// `mknodat(2)`; `rdev` is a `dev_t` made by `makedev`.
///
/// # Errors
/// The errno of `mknodat(2)`.
pub fn mknodat(dirfd: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u64) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mknodat(dirfd.as_raw_fd(), name.as_ptr(), mode, rdev) })?;
    Ok(())
}

/// `symlinkat(2)`.
///
/// # Errors
/// The errno of `symlinkat(2)`.
pub fn symlinkat(target: &CStr, dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(target.as_ptr(), dirfd.as_raw_fd(), name.as_ptr()) })?;
    Ok(())
}

/// `unlinkat(2)`; `flags` is 0 or `AT_REMOVEDIR`.
///
/// # Errors
/// The errno of `unlinkat(2)`.
pub fn unlinkat(dirfd: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::unlinkat(dirfd.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

/// `renameat2(2)` with `RENAME_NOREPLACE`/`RENAME_EXCHANGE`/`RENAME_WHITEOUT` flags.
///
/// # Errors
/// The errno of `renameat2(2)`.
pub fn renameat2(
    olddir: BorrowedFd<'_>,
    oldname: &CStr,
    newdir: BorrowedFd<'_>,
    newname: &CStr,
    flags: u32,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    check(unsafe {
        libc::renameat2(
            olddir.as_raw_fd(),
            oldname.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `linkat(2)`. To link an `O_PATH` inode without `CAP_DAC_READ_SEARCH`, callers pass the
/// `/proc/self/fd` dir fd, the fd's number and `AT_SYMLINK_FOLLOW` (the magic link).
///
/// # Errors
/// The errno of `linkat(2)`.
pub fn linkat(
    olddir: BorrowedFd<'_>,
    oldname: &CStr,
    newdir: BorrowedFd<'_>,
    newname: &CStr,
    flags: i32,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    check(unsafe {
        libc::linkat(
            olddir.as_raw_fd(),
            oldname.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `faccessat2(2)` (the raw syscall, so `AT_EACCESS` is honoured by the kernel, not glibc).
///
/// # Errors
/// The errno of `faccessat2(2)`.
pub fn faccessat2(dirfd: BorrowedFd<'_>, name: &CStr, mode: i32, flags: i32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            dirfd.as_raw_fd(),
            name.as_ptr(),
            mode,
            flags,
        )
    })?;
    Ok(())
}

/// `fstatfs(2)`; works on `O_PATH` fds.
///
/// # Errors
/// The errno of `fstatfs(2)`.
pub fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `st` is a writable statvfs buffer.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatvfs filled it on success.
    Ok(unsafe { st.assume_init() })
}

/// `getdents64(2)` into `buf`; returns the number of bytes filled (0 at the end).
///
/// # Errors
/// The errno of `getdents64(2)`.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    })
    .map(|n| n as usize)
}

/// `MAX_HANDLE_SZ` of `name_to_handle_at(2)`.
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct FileHandleBuf {
    bytes: u32,
    kind: i32,
    data: [u8; MAX_HANDLE_SZ],
}

/// `name_to_handle_at(fd, "", AT_EMPTY_PATH)`: the file handle, whose generation tells a
/// reused inode number from the old file. Returns (handle type, handle bytes).
///
/// # Errors
/// The errno of `name_to_handle_at(2)` (`EOPNOTSUPP` where the fs has no handles).
pub fn name_to_handle_empty(fd: BorrowedFd<'_>) -> io::Result<(i32, Vec<u8>)> {
    let mut handle = FileHandleBuf {
        bytes: MAX_HANDLE_SZ as u32,
        kind: 0,
        data: [0; MAX_HANDLE_SZ],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `handle` has the layout of `struct file_handle` with MAX_HANDLE_SZ bytes of
    // room, as `handle.bytes` tells the kernel.
    check(unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            (&mut handle as *mut FileHandleBuf).cast(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    })?;
    let len = (handle.bytes as usize).min(MAX_HANDLE_SZ);
    Ok((handle.kind, handle.data[..len].to_vec()))
}

/// `open_by_handle_at(2)`: reopens the inode a [`name_to_handle_empty`] handle names,
/// relative to `mount_fd` (any fd on the same fs). Needs CAP_DAC_READ_SEARCH.
///
/// # Errors
/// The errno of `open_by_handle_at(2)` (`ESTALE` when the file no longer exists).
pub fn open_by_handle_at(
    mount_fd: BorrowedFd<'_>,
    kind: i32,
    bytes: &[u8],
    flags: i32,
) -> io::Result<OwnedFd> {
    if bytes.len() > MAX_HANDLE_SZ {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut handle = FileHandleBuf {
        bytes: bytes.len() as u32,
        kind,
        data: [0; MAX_HANDLE_SZ],
    };
    handle.data[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `handle` has the layout of `struct file_handle` with `bytes` valid bytes.
    owned(unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&mut handle as *mut FileHandleBuf).cast(),
            flags | libc::O_CLOEXEC,
        )
    })
}

/// `access(2)` of a path from the cwd, for start-up checks such as `/dev/fuse`.
///
/// # Errors
/// The errno of `access(2)`.
pub fn access_path(path: &CStr, mode: i32) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::access(path.as_ptr(), mode) })?;
    Ok(())
}

/// `umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW)` — used by the signal thread when fuser's own
/// unmount fails; a symlink swapped in at the mount point is not followed.
///
/// # Errors
/// The errno of `umount2(2)`.
pub fn umount_detach(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) })?;
    Ok(())
}

/// `makedev(3)`.
pub fn makedev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}
