//! Where data I/O and batched lookups go: the io_uring pool, or plain syscalls when the user
//! asked for `-o uring=off` (never as a silent fallback).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::attr::STATX_MASK;
use crate::ring::RingPool;
use crate::sys::{self, EMPTY};

/// How copy_file_range on the mount copies between backing files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// `copy_file_range(2)` on the backing fds: in-kernel, reflinks where the fs can.
    Kernel,
    /// Linked `IORING_OP_SPLICE` through a pipe on the ring.
    Splice,
}

/// The data path.
#[derive(Debug)]
pub enum DataPath {
    /// Every read, write, fsync, fallocate and readdirplus lookup batch on io_uring.
    Ring(RingPool),
    /// Plain syscalls (`-o uring=off`).
    Syscalls,
}

impl DataPath {
    /// Reads at `offset` until `buf` is full or EOF.
    ///
    /// # Errors
    /// The read's errno.
    pub fn read_at(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            DataPath::Ring(ring) => ring.read_at(fd, buf, offset),
            DataPath::Syscalls => {
                let mut done = 0;
                while done < buf.len() {
                    match sys::pread(fd, &mut buf[done..], offset + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => return Err(err),
                    }
                }
                Ok(done)
            }
        }
    }

    /// Writes all of `buf` at `offset`; a later failure returns the bytes written so far.
    ///
    /// # Errors
    /// The write's errno when nothing was written.
    pub fn write_at(&self, fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        match self {
            DataPath::Ring(ring) => ring.write_at(fd, buf, offset),
            DataPath::Syscalls => {
                let mut done = 0;
                while done < buf.len() {
                    match sys::pwrite(fd, &buf[done..], offset + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) if done == 0 => return Err(err),
                        Err(_) => break,
                    }
                }
                Ok(done)
            }
        }
    }

    /// `fsync`/`fdatasync`.
    ///
    /// # Errors
    /// The errno of the sync.
    pub fn fsync(&self, fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
        match self {
            DataPath::Ring(ring) => ring.fsync(fd, datasync),
            DataPath::Syscalls => sys::fsync(fd, datasync),
        }
    }

    /// `fallocate` with the kernel's mode bits (`KEEP_SIZE`, `PUNCH_HOLE`, `ZERO_RANGE`...).
    ///
    /// # Errors
    /// The errno of the fallocate.
    pub fn fallocate(
        &self,
        fd: BorrowedFd<'_>,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        match self {
            DataPath::Ring(ring) => ring.fallocate(fd, mode, offset, len),
            DataPath::Syscalls => sys::fallocate(fd, mode, offset, len),
        }
    }

    /// Copies between two backing files without passing the data through user space.
    ///
    /// # Errors
    /// The errno of the copy.
    pub fn copy(
        &self,
        method: CopyMethod,
        src: BorrowedFd<'_>,
        off_in: u64,
        dst: BorrowedFd<'_>,
        off_out: u64,
        len: usize,
    ) -> io::Result<usize> {
        match (self, method) {
            (DataPath::Ring(ring), CopyMethod::Splice) => {
                ring.splice_copy(src, off_in, dst, off_out, len)
            }
            _ => sys::copy_file_range(src, off_in, dst, off_out, len, 0),
        }
    }

    /// Opens every name in `dir` as `O_PATH|O_NOFOLLOW` and stats the fds it got: one batch
    /// of OPENAT and one of STATX on the ring. Stat'ing the opened fd, not the name again,
    /// pairs each fd with its own file's attributes even if a name is swapped meanwhile.
    pub fn lookup_batch(
        &self,
        dir: BorrowedFd<'_>,
        names: &[&CStr],
    ) -> Vec<io::Result<(OwnedFd, libc::statx)>> {
        let flags = libc::O_PATH | libc::O_NOFOLLOW;
        match self {
            DataPath::Ring(ring) => {
                let opened = ring.openat_batch(dir, names, flags);
                let fds: Vec<BorrowedFd<'_>> = opened
                    .iter()
                    .filter_map(|r| r.as_ref().ok().map(|fd| fd.as_fd()))
                    .collect();
                let mut stats = ring.statx_batch(&fds, STATX_MASK).into_iter();
                opened
                    .into_iter()
                    .map(|res| {
                        let fd = res?;
                        let stx = stats
                            .next()
                            .unwrap_or_else(|| Err(crate::error::os(libc::EIO)))?;
                        Ok((fd, stx))
                    })
                    .collect()
            }
            DataPath::Syscalls => names
                .iter()
                .map(|name| {
                    let fd = sys::openat(dir, name, flags, 0)?;
                    let stx = sys::statx(
                        fd.as_fd(),
                        EMPTY,
                        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                        STATX_MASK,
                    )?;
                    Ok((fd, stx))
                })
                .collect(),
        }
    }
}
