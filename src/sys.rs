//! The only module (with `ring.rs`) that talks to libc: one small safe wrapper per syscall.
//!
//! Every wrapper takes borrowed fds and `&CStr` names and returns `io::Result`; errno is read
//! right after the call. Nothing here resolves a path from `AT_FDCWD` except the start-up
//! helpers whose names say so (`open_dir_path`), which run before the mount is live.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// `fchmodat2(2)`: the only chmod that works on an `O_PATH` fd (via `AT_EMPTY_PATH`).
const SYS_FCHMODAT2: libc::c_long = 452;
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

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The empty path used with `AT_EMPTY_PATH`.
pub const EMPTY: &CStr = c"";

/// Turns an `OsStr` into a `CString`; a NUL inside is `EINVAL`, as the kernel would say.
///
/// # Errors
/// `EINVAL` when `name` contains a NUL byte.
pub fn cstring(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The decimal name of an fd inside `/proc/self/fd`.
pub fn fd_name(fd: BorrowedFd<'_>) -> CString {
    // A decimal number never contains NUL.
    CString::new(fd.as_raw_fd().to_string()).unwrap_or_default()
}

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

/// The current `RLIMIT_NOFILE` soft limit.
///
/// # Errors
/// The errno of `getrlimit(2)`.
pub fn nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    Ok(lim.rlim_cur)
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

thread_local! {
    /// The dir fd the calling thread's cwd was set to by [`chdir_thread`]; -1 before the
    /// first call, when the thread still shares the process's cwd.
    static THREAD_CWD: std::cell::Cell<RawFd> = const { std::cell::Cell::new(-1) };
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

/// The running kernel's release (`uname -r`), for the start-up log line.
pub fn kernel_release() -> String {
    let mut uts = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uts` is a writable utsname buffer.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "?".to_string();
    }
    // SAFETY: uname filled it on success.
    let uts = unsafe { uts.assume_init() };
    // SAFETY: `release` is NUL-terminated by the kernel within its length.
    let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) };
    release.to_string_lossy().into_owned()
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

/// Sets this thread's fs uid (`setfsuid(2)` acts per thread). Going from 0 to another uid
/// drops the fs capabilities from the effective set; going back raises them again.
///
/// # Errors
/// `EPERM` when the fsuid did not change: `setfsuid` reports no error itself, so the value is
/// read back (a second call with -1, which changes nothing and returns the current fsuid).
pub fn setfsuid(uid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments; -1 only reads the current value.
    let now = unsafe {
        libc::syscall(libc::SYS_setfsuid, uid);
        libc::syscall(libc::SYS_setfsuid, -1i32)
    };
    if now == i64::from(uid) {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

/// Sets this thread's fs gid.
///
/// # Errors
/// `EPERM` when the fsgid did not change (read back as for `setfsuid`).
pub fn setfsgid(gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments; -1 only reads the current value.
    let now = unsafe {
        libc::syscall(libc::SYS_setfsgid, gid);
        libc::syscall(libc::SYS_setfsgid, -1i32)
    };
    if now == i64::from(gid) {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

/// Sets this thread's supplementary groups: the raw syscall, because glibc's `setgroups`
/// changes every thread of the process.
///
/// # Errors
/// The errno of `setgroups(2)`.
pub fn setgroups_thread(groups: &[u32]) -> io::Result<()> {
    // SAFETY: `groups` is readable for `groups.len()` gids.
    check_long(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })?;
    Ok(())
}

/// This process's supplementary groups.
///
/// # Errors
/// The errno of `getgroups(2)`.
pub fn getgroups() -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 65536];
    // SAFETY: `groups` is writable for its length.
    let n = check(unsafe { libc::getgroups(groups.len() as i32, groups.as_mut_ptr()) })?;
    groups.truncate(n as usize);
    Ok(groups)
}

/// A thread's capability sets (the 64-bit form of `capget(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadCaps {
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`; version 3 takes two of them (low and high 32 bits).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's capabilities (`capget(2)`, pid 0).
///
/// # Errors
/// The errno of `capget(2)`.
pub fn thread_caps() -> io::Result<ThreadCaps> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` and the two-element `data` array are what version 3 reads and writes.
    check_long(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(ThreadCaps {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// Sets the calling thread's capabilities (`capset(2)` acts per thread): lowering the
/// effective set is always allowed, raising it only within the permitted set.
///
/// # Errors
/// The errno of `capset(2)`.
pub fn set_thread_caps(caps: &ThreadCaps) -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(caps.effective);
    let (p0, p1) = split(caps.permitted);
    let (i0, i1) = split(caps.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: `header` and the two-element `data` array are what version 3 reads.
    check_long(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })?;
    Ok(())
}

/// `unshare(CLONE_FS)`: gives the calling thread its own umask (and cwd/root), so a umask set
/// for one request does not leak into another thread's.
///
/// # Errors
/// The errno of `unshare(2)`.
pub fn unshare_fs() -> io::Result<()> {
    // SAFETY: plain flag argument; only this thread's fs_struct is affected.
    check(unsafe { libc::unshare(libc::CLONE_FS) })?;
    Ok(())
}

/// `geteuid(2)`.
pub fn geteuid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() }
}

/// `umask(2)`; returns the previous mask.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: plain integer argument.
    unsafe { libc::umask(mask) }
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
///
/// # Errors
/// The errno of `pipe2(2)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two fds.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What `fork` returned.
#[derive(Debug)]
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `fork(2)`.
///
/// # Safety
/// The process must have one thread: the child of a threaded process inherits locks (the
/// allocator's among them) that threads it does not have hold, and may deadlock on them.
///
/// # Errors
/// The errno of `fork(2)`.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller promises a single-threaded process (see # Safety).
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
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

/// `setsid(2)`: the daemon leaves the terminal's session.
///
/// # Errors
/// The errno of `setsid(2)`.
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() })?;
    Ok(())
}

/// `dup2(2)`: points stdin/stdout/stderr of the daemon at `/dev/null` or a log.
///
/// # Errors
/// The errno of `dup2(2)`.
pub fn dup2(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: plain integer arguments; replacing a standard fd is what the caller wants.
    check(unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
    Ok(())
}

/// `waitpid(pid, 0)`: the child's exit code, or 128+signal.
///
/// # Errors
/// The errno of `waitpid(2)`.
pub fn waitpid(pid: i32) -> io::Result<i32> {
    let mut status = 0;
    // SAFETY: `status` is a valid int.
    check(unsafe { libc::waitpid(pid, &mut status, 0) })?;
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// Blocks `signals` in the calling thread (and in the threads it starts later).
///
/// # Errors
/// The errno of `pthread_sigmask(3)`.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is an initialised sigset.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Waits for one of `signals` (which must be blocked) and returns it.
///
/// # Errors
/// The errno of `sigwait(3)`.
pub fn sigwait(signals: &[i32]) -> io::Result<i32> {
    let set = sigset(signals)?;
    let mut sig = 0;
    // SAFETY: `set` is initialised; `sig` is writable.
    let ret = unsafe { libc::sigwait(&set, &mut sig) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(sig)
}

fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is writable; sigemptyset initialises it.
    check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    for &sig in signals {
        // SAFETY: `set` was initialised by sigemptyset.
        check(unsafe { libc::sigaddset(set.as_mut_ptr(), sig) })?;
    }
    // SAFETY: initialised above.
    Ok(unsafe { set.assume_init() })
}

/// `makedev(3)`.
pub fn makedev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}

/// The number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

/// Raises `RLIMIT_NOFILE` as far as it goes: to `ceiling` (the kernel's `fs.nr_open`) when
/// the process may raise its hard limit (root: CAP_SYS_RESOURCE), else to the hard limit.
/// Every inode the kernel holds pins an fd, so this is how many inodes the mount can serve.
///
/// # Errors
/// The errno of `getrlimit`/`setrlimit`.
pub fn raise_nofile_limit(ceiling: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if ceiling > lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: ceiling,
            rlim_max: ceiling,
        };
        // SAFETY: `raised` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(ceiling);
        }
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn statx_of_root_dir_is_a_directory() {
        let fd = open_dir_path(c"/", libc::O_PATH).expect("open /");
        let stx = statx(
            fd.as_fd(),
            EMPTY,
            libc::AT_EMPTY_PATH,
            libc::STATX_BASIC_STATS,
        )
        .expect("statx");
        assert_eq!(u32::from(stx.stx_mode) & libc::S_IFMT, libc::S_IFDIR);
    }

    #[test]
    fn caps_round_trip_on_this_thread() {
        let caps = thread_caps().expect("capget");
        std::thread::spawn(move || {
            let lowered = ThreadCaps {
                effective: 0,
                ..caps
            };
            set_thread_caps(&lowered).expect("lower");
            assert_eq!(thread_caps().unwrap().effective, 0);
            set_thread_caps(&caps).expect("restore");
            assert_eq!(thread_caps().unwrap(), caps);
        })
        .join()
        .unwrap();
        assert_eq!(thread_caps().unwrap(), caps, "other threads keep theirs");
    }

    #[test]
    fn cstring_rejects_nul() {
        let err = cstring(OsStr::from_bytes(b"a\0b")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    /// A scratch directory under the temp dir with a file `f`, a symlink `l -> f` and a
    /// directory `d`, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("uringfs-sys-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("d")).expect("mkdir");
            std::fs::write(dir.join("f"), b"x").expect("write f");
            std::os::unix::fs::symlink("f", dir.join("l")).expect("symlink");
            Scratch(dir)
        }

        /// An `O_PATH|O_NOFOLLOW` fd of `name`, as the daemon pins inodes.
        fn pin(&self, name: &str) -> OwnedFd {
            let path = CString::new(self.0.join(name).as_os_str().as_bytes()).expect("path");
            // SAFETY: test-only; `path` is NUL-terminated.
            owned(unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            })
            .expect("open O_PATH")
        }

        fn mode(&self, name: &str) -> u32 {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(self.0.join(name))
                .expect("lstat")
                .mode()
                & 0o7777
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn new_syscalls_answer_einval_or_enosys() {
        for call in [
            NewSyscall::Fchmodat2,
            NewSyscall::Setxattrat,
            NewSyscall::Getxattrat,
            NewSyscall::Listxattrat,
            NewSyscall::Removexattrat,
        ] {
            let errno = probe_syscall(call).unwrap_err().raw_os_error();
            assert!(
                matches!(errno, Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)),
                "{}: {errno:?}",
                call.name()
            );
        }
    }

    #[test]
    fn fchmodat_proc_changes_files_and_refuses_symlinks() {
        let s = Scratch::new("chmod");
        let proc_fd = open_dir_path(c"/proc/self/fd", libc::O_PATH).expect("/proc/self/fd");
        for name in ["f", "d"] {
            fchmodat_proc(proc_fd.as_fd(), s.pin(name).as_fd(), 0o640).expect("chmod");
            assert_eq!(s.mode(name), 0o640, "{name}");
        }
        let before = s.mode("l");
        let err = fchmodat_proc(proc_fd.as_fd(), s.pin("l").as_fd(), 0o600).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP));
        assert_eq!(s.mode("l"), before, "the symlink's mode is untouched");
        assert_eq!(s.mode("f"), 0o640, "and so is its target's");
    }

    #[test]
    fn xattr_cwd_calls_act_on_the_pinned_inode_on_their_own_thread() {
        let s = Scratch::new("xattr");
        let cwd = std::env::current_dir().expect("cwd");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let proc_fd = open_dir_path(c"/proc/self/fd", libc::O_PATH).expect("proc");
                let f = s.pin("f");
                let name = fd_name(f.as_fd());
                setxattr_cwd(proc_fd.as_fd(), &name, c"user.k", b"v", 0).expect("set");
                let mut buf = [0u8; 8];
                let n = getxattr_cwd(proc_fd.as_fd(), &name, c"user.k", &mut buf).expect("get");
                assert_eq!(&buf[..n], b"v");
                assert_eq!(
                    getxattr_cwd(proc_fd.as_fd(), &name, c"user.k", &mut []).unwrap(),
                    1
                );
                let n = listxattr_cwd(proc_fd.as_fd(), &name, &mut buf).expect("list");
                assert_eq!(&buf[..n], b"user.k\0");
                removexattr_cwd(proc_fd.as_fd(), &name, c"user.k").expect("remove");
                let err = getxattr_cwd(proc_fd.as_fd(), &name, c"user.k", &mut buf).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::ENODATA));
                // A symlink's fd: the symlink's own xattrs (user.* are refused on symlinks, as
                // natively), not its target's.
                let l = s.pin("l");
                let lname = fd_name(l.as_fd());
                let err = setxattr_cwd(proc_fd.as_fd(), &lname, c"user.k", b"v", 0).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EPERM));
                if geteuid() == 0 {
                    setxattr_cwd(proc_fd.as_fd(), &lname, c"trusted.k", b"l", 0).expect("set");
                    let err =
                        getxattr_cwd(proc_fd.as_fd(), &name, c"trusted.k", &mut buf).unwrap_err();
                    assert_eq!(err.raw_os_error(), Some(libc::ENODATA), "not on the target");
                    let n =
                        getxattr_cwd(proc_fd.as_fd(), &lname, c"trusted.k", &mut buf).expect("get");
                    assert_eq!(&buf[..n], b"l", "on the symlink itself");
                }
            });
        });
        assert_eq!(
            std::env::current_dir().expect("cwd"),
            cwd,
            "other threads keep theirs"
        );
    }

    #[test]
    fn fd_name_is_decimal() {
        let fd = open_dir_path(c"/", libc::O_PATH).expect("open /");
        assert_eq!(
            fd_name(fd.as_fd()).to_str().unwrap(),
            fd.as_raw_fd().to_string()
        );
    }
}
