//! Raw calls: std takes unsigned offsets and lengths, these pass any value through.

use super::*;

pub(super) fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

pub(super) fn cvt_isize(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

pub(super) fn cvt_i64(rc: i64) -> io::Result<i64> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `open(path, flags, mode)` with any flag bits.
pub(super) fn open_raw(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let c = cpath(path);
    // SAFETY: a NUL-terminated path live during the call.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags, mode) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `openat2(AT_FDCWD, path, {flags, mode, resolve})`.
pub(super) fn openat2(path: &Path, flags: u64, mode: u64, resolve: u64) -> io::Result<File> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags,
        mode,
        resolve,
    };
    let c = cpath(path);
    // SAFETY: a NUL-terminated path and an open_how of the size passed, both live.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = cvt_i64(fd)?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

pub(super) fn rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// `pwrite(fd, data, off)`.
pub(super) fn pwrite(f: &File, data: &[u8], off: i64) -> io::Result<usize> {
    // SAFETY: an fd we own and a buffer of `data.len()` readable bytes.
    cvt_isize(unsafe { libc::pwrite(f.as_raw_fd(), data.as_ptr().cast(), data.len(), off) })
}

/// `pread(fd, len, off)`: what one call returned.
pub(super) fn pread(f: &File, len: usize, off: i64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    // SAFETY: an fd we own and a buffer of `len` writable bytes.
    let n = cvt_isize(unsafe { libc::pread(f.as_raw_fd(), buf.as_mut_ptr().cast(), len, off) })?;
    buf.truncate(n);
    Ok(buf)
}

pub(super) fn fallocate(f: &File, mode: i32, off: i64, len: i64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::fallocate(f.as_raw_fd(), mode, off, len) })?;
    Ok(())
}

pub(super) fn ftruncate(f: &File, len: i64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::ftruncate(f.as_raw_fd(), len) })?;
    Ok(())
}

pub(super) fn lseek(f: &File, off: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: plain syscall on an fd we own.
    cvt_i64(unsafe { libc::lseek(f.as_raw_fd(), off, whence) })
}

/// `copy_file_range` with explicit offsets: (bytes copied, both offsets afterwards).
pub(super) fn copy_range(
    src: &File,
    src_off: i64,
    dst: &File,
    dst_off: i64,
    len: usize,
) -> io::Result<(usize, i64, i64)> {
    let (mut so, mut d) = (src_off, dst_off);
    // SAFETY: fds we own and two live i64 offsets.
    let n = cvt_isize(unsafe {
        libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut d, len, 0)
    })?;
    Ok((n, so, d))
}

pub(super) fn flock(f: &File, op: i32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::flock(f.as_raw_fd(), op) })?;
    Ok(())
}

/// `fcntl(fd, cmd, &flock{type, SEEK_SET, start, len})`; returns the struct afterwards as
/// (type, start, len) — what F_GETLK/F_OFD_GETLK report.
pub(super) fn fcntl_lock(
    f: &File,
    cmd: i32,
    typ: i32,
    start: i64,
    len: i64,
) -> io::Result<(i32, i64, i64)> {
    // SAFETY: all-zero is a valid `struct flock`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = len;
    // SAFETY: an fd we own and a `struct flock` live during the call.
    cvt(unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) })?;
    Ok((i32::from(fl.l_type), fl.l_start, fl.l_len))
}

pub(super) fn getfl(f: &File) -> io::Result<i32> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) })
}

/// `linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, to, AT_SYMLINK_FOLLOW)`: names an open file.
pub(super) fn link_fd(f: &File, to: &Path) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd())).expect("no NUL");
    let to = cpath(to);
    // SAFETY: NUL-terminated paths live during the call.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })?;
    Ok(())
}

/// `lsetxattr(path, name, value, flags)` with a name given as bytes (it may be any length).
pub(super) fn setxattr(path: &Path, name: &[u8], value: &[u8], flags: i32) -> io::Result<()> {
    let (c, n) = (cpath(path), CString::new(name).expect("xattr name"));
    // SAFETY: NUL-terminated strings and a buffer of `value.len()` bytes, all live.
    cvt(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })?;
    Ok(())
}

/// `lgetxattr(path, name, buf of cap bytes)`: (the length returned, the bytes).
pub(super) fn getxattr(path: &Path, name: &[u8], cap: usize) -> io::Result<(usize, Vec<u8>)> {
    let (c, n) = (cpath(path), CString::new(name).expect("xattr name"));
    let mut buf = vec![0u8; cap];
    // SAFETY: NUL-terminated strings and `cap` writable bytes (NULL when 0).
    let len = cvt_isize(unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            n.as_ptr(),
            if cap == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            cap,
        )
    })?;
    buf.truncate(len.min(cap));
    Ok((len, buf))
}

pub(super) fn removexattr(path: &Path, name: &[u8]) -> io::Result<()> {
    let (c, n) = (cpath(path), CString::new(name).expect("xattr name"));
    // SAFETY: NUL-terminated strings live during the call.
    cvt(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) })?;
    Ok(())
}
