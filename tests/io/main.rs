//! Data I/O through the mount, compared with the same calls on native ext4.

#[path = "../common/mod.rs"]
mod common;
mod concurrency;
mod create_and_open;
mod locks;
mod mmap;
mod open_files;
mod ranges;
mod reads_writes;

use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fallocate(f: &File, mode: i32, offset: i64, len: i64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::fallocate(f.as_raw_fd(), mode, offset, len) })?;
    Ok(())
}

fn lseek(f: &File, offset: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: plain syscall on an fd we own.
    let rc = unsafe { libc::lseek(f.as_raw_fd(), offset, whence) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// copy_file_range with explicit offsets; returns bytes copied.
fn copy_file_range(
    src: &File,
    src_off: i64,
    dst: &File,
    dst_off: i64,
    len: usize,
) -> io::Result<usize> {
    let (mut so, mut d) = (src_off, dst_off);
    // SAFETY: fds we own and two live i64 offsets.
    let rc =
        unsafe { libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut d, len, 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}
