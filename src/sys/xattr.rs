//! Extended attributes: the `*xattrat` calls (6.13), their fallbacks through a per-thread cwd
//! at the pinned `/proc/self/fd`, and the probe for the newer syscalls.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::{EMPTY, check, check_long, check_size, unshare_fs};

/// `fchmodat2(2)`: the only chmod that works on an `O_PATH` fd (via `AT_EMPTY_PATH`).
pub(super) const SYS_FCHMODAT2: libc::c_long = 452;

/// The `*xattrat(2)` family (Linux 6.13); libc 0.2 does not name them yet.
const SYS_SETXATTRAT: libc::c_long = 463;

const SYS_GETXATTRAT: libc::c_long = 464;

const SYS_LISTXATTRAT: libc::c_long = 465;

const SYS_REMOVEXATTRAT: libc::c_long = 466;

/// `struct xattr_args` of the `*xattrat` syscalls (include/uapi/linux/xattr.h).
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// `setxattrat(2)` on `name` relative to `dirfd` (following it: used with `/proc/self/fd`).
///
/// # Errors
/// The errno of `setxattrat(2)`.
pub fn setxattrat(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    name: &CStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    let args = XattrArgs {
        value: value.as_ptr() as u64,
        size: value.len() as u32,
        flags: flags as u32,
    };
    // SAFETY: `args` points to `value`, which outlives the call; strings are NUL-terminated.
    check_long(unsafe {
        libc::syscall(
            SYS_SETXATTRAT,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            0,
            name.as_ptr(),
            &args as *const XattrArgs,
            size_of::<XattrArgs>(),
        )
    })?;
    Ok(())
}

/// `getxattrat(2)`; an empty `buf` asks for the size.
///
/// # Errors
/// The errno of `getxattrat(2)` (`ERANGE` when `buf` is too small, `ENODATA` when absent).
pub fn getxattrat(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    name: &CStr,
    buf: &mut [u8],
) -> io::Result<usize> {
    let args = XattrArgs {
        value: buf.as_mut_ptr() as u64,
        size: buf.len() as u32,
        flags: 0,
    };
    // SAFETY: `args` points to `buf`, writable for its length; strings are NUL-terminated.
    check_long(unsafe {
        libc::syscall(
            SYS_GETXATTRAT,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            0,
            name.as_ptr(),
            &args as *const XattrArgs,
            size_of::<XattrArgs>(),
        )
    })
    .map(|n| n as usize)
}

/// `listxattrat(2)`; an empty `buf` asks for the size.
///
/// # Errors
/// The errno of `listxattrat(2)`.
pub fn listxattrat(dirfd: BorrowedFd<'_>, path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length; `path` is NUL-terminated.
    check_long(unsafe {
        libc::syscall(
            SYS_LISTXATTRAT,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            0,
            buf.as_mut_ptr(),
            buf.len(),
        )
    })
    .map(|n| n as usize)
}

/// `removexattrat(2)`.
///
/// # Errors
/// The errno of `removexattrat(2)`.
pub fn removexattrat(dirfd: BorrowedFd<'_>, path: &CStr, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check_long(unsafe {
        libc::syscall(
            SYS_REMOVEXATTRAT,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            0,
            name.as_ptr(),
        )
    })?;
    Ok(())
}

/// The syscalls newer than the kernel floor (5.15) that the daemon uses, for the start-up probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewSyscall {
    /// `fchmodat2(2)`, Linux 6.6.
    Fchmodat2,
    /// `setxattrat(2)`, Linux 6.13.
    Setxattrat,
    /// `getxattrat(2)`, Linux 6.13.
    Getxattrat,
    /// `listxattrat(2)`, Linux 6.13.
    Listxattrat,
    /// `removexattrat(2)`, Linux 6.13.
    Removexattrat,
}

impl NewSyscall {
    /// The syscall's name.
    pub fn name(self) -> &'static str {
        match self {
            NewSyscall::Fchmodat2 => "fchmodat2",
            NewSyscall::Setxattrat => "setxattrat",
            NewSyscall::Getxattrat => "getxattrat",
            NewSyscall::Listxattrat => "listxattrat",
            NewSyscall::Removexattrat => "removexattrat",
        }
    }
}

/// Calls `call` with `at_flags`/`flags` no kernel accepts (bit 31) and a zero-sized
/// `xattr_args`, so a kernel that has it fails at its argument check with `EINVAL`, before
/// resolving a path or touching a file. A kernel without it answers `ENOSYS`, and so does a
/// seccomp filter that hides it (or `EPERM`, Docker's answer for what it does not know).
///
/// # Errors
/// What the call returned: `EINVAL` when the syscall exists.
pub fn probe_syscall(call: NewSyscall) -> io::Result<()> {
    const BAD_FLAGS: libc::c_uint = 1 << 31;
    let at_fdcwd = libc::c_long::from(libc::AT_FDCWD);
    let empty = EMPTY.as_ptr();
    let null = std::ptr::null::<u8>();
    // Sizes as `size_t`: `syscall(3)` reads every argument as a long.
    let zero: libc::size_t = 0;
    // SAFETY: every pointer is either the static empty string or NULL with a zero size; the
    // kernel rejects the flags before it reads any of them.
    check_long(unsafe {
        match call {
            NewSyscall::Fchmodat2 => libc::syscall(SYS_FCHMODAT2, at_fdcwd, empty, zero, BAD_FLAGS),
            NewSyscall::Setxattrat => libc::syscall(
                SYS_SETXATTRAT,
                at_fdcwd,
                empty,
                BAD_FLAGS,
                empty,
                null,
                zero,
            ),
            NewSyscall::Getxattrat => libc::syscall(
                SYS_GETXATTRAT,
                at_fdcwd,
                empty,
                BAD_FLAGS,
                empty,
                null,
                zero,
            ),
            NewSyscall::Listxattrat => {
                libc::syscall(SYS_LISTXATTRAT, at_fdcwd, empty, BAD_FLAGS, null, zero)
            }
            NewSyscall::Removexattrat => {
                libc::syscall(SYS_REMOVEXATTRAT, at_fdcwd, empty, BAD_FLAGS, empty)
            }
        }
    })?;
    Ok(())
}

/// Makes `dir` the calling thread's own cwd: the first call on a thread gives it its own
/// fs_struct (`unshare(CLONE_FS)`), so no other thread's cwd moves; later calls with the same
/// fd change nothing. Callers pass one dir fd for the life of the process (the daemon's pinned
/// `/proc/self/fd`), so a number that is still the same fd is the same directory.
fn chdir_thread(dir: BorrowedFd<'_>) -> io::Result<()> {
    let raw = dir.as_raw_fd();
    let now = THREAD_CWD.get();
    if now == raw {
        return Ok(());
    }
    if now == -1 {
        unshare_fs()?;
    }
    // SAFETY: plain fd argument; only this thread's (unshared) fs_struct changes.
    check(unsafe { libc::fchdir(raw) })?;
    THREAD_CWD.set(raw);
    Ok(())
}

/// [`setxattrat`] on a kernel without it (before 6.13): `setxattr(2)` of `path` relative to the
/// calling thread's cwd, made `dirfd` first ([`chdir_thread`]). With the pinned `/proc/self/fd`
/// and an fd number as `path`, the path call follows the fd's magic link to the inode the fd
/// pins, as `setxattrat(dirfd, path, 0, ...)` does: a symlink's own xattrs, not its target's
/// (`lsetxattr` would act on the `/proc` link itself). Never a lookup from the root.
///
/// # Errors
/// The errno of `unshare(2)`, `fchdir(2)` or `setxattr(2)`.
pub fn setxattr_cwd(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    name: &CStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    chdir_thread(dirfd)?;
    // SAFETY: `value` is readable for its length; both strings are NUL-terminated.
    check(unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })?;
    Ok(())
}

/// [`getxattrat`] on a kernel without it: `getxattr(2)` relative to the thread's cwd, as
/// [`setxattr_cwd`]; an empty `buf` asks for the size.
///
/// # Errors
/// The errno of `unshare(2)`, `fchdir(2)` or `getxattr(2)`.
pub fn getxattr_cwd(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    name: &CStr,
    buf: &mut [u8],
) -> io::Result<usize> {
    chdir_thread(dirfd)?;
    // SAFETY: `buf` is writable for its length; both strings are NUL-terminated.
    check_size(unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

/// [`listxattrat`] on a kernel without it: `listxattr(2)` relative to the thread's cwd, as
/// [`setxattr_cwd`]; an empty `buf` asks for the size.
///
/// # Errors
/// The errno of `unshare(2)`, `fchdir(2)` or `listxattr(2)`.
pub fn listxattr_cwd(dirfd: BorrowedFd<'_>, path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    chdir_thread(dirfd)?;
    // SAFETY: `buf` is writable for its length; `path` is NUL-terminated.
    check_size(unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// [`removexattrat`] on a kernel without it: `removexattr(2)` relative to the thread's cwd,
/// as [`setxattr_cwd`].
///
/// # Errors
/// The errno of `unshare(2)`, `fchdir(2)` or `removexattr(2)`.
pub fn removexattr_cwd(dirfd: BorrowedFd<'_>, path: &CStr, name: &CStr) -> io::Result<()> {
    chdir_thread(dirfd)?;
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) })?;
    Ok(())
}

thread_local! {
    /// The dir fd the calling thread's cwd was set to by [`chdir_thread`]; -1 before the
    /// first call, when the thread still shares the process's cwd.
    static THREAD_CWD: std::cell::Cell<RawFd> = const { std::cell::Cell::new(-1) };
}
