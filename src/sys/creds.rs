//! Per-thread credentials: fsuid, fsgid, supplementary groups, capabilities, umask.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::io;

use super::{check, check_long};

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
