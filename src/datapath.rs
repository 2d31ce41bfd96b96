//! Where data I/O and batched lookups go: the io_uring pool, or plain syscalls when the user
//! asked for `-o uring=off` or the kernel gives no ring (never silently: the start-up line of
//! `probe::Features::log` says so).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use log::warn;

use crate::attr::STATX_MASK;
use crate::options::UringMode;
use crate::probe::{Features, Uring};
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
    Ring {
        /// The per-thread rings.
        pool: RingPool,
        /// The kernel has `IORING_OP_SPLICE`, so `copy=splice` can splice on the ring.
        splice: bool,
    },
    /// Plain syscalls (`-o uring=off`, or no ring from the kernel).
    Syscalls,
}

impl DataPath {
    /// The data path the probe allows: the ring pool (whose first ring is created now, on the
    /// calling thread) when the kernel gives one, else plain syscalls. A pool that still cannot
    /// be set up (a deeper ring than the probe's over a memory limit) falls back too, with a
    /// warning, unless `-o uring=on` demands the ring.
    ///
    /// # Errors
    /// One line when `-o uring=on` and the ring pool cannot be set up.
    pub fn start(features: &Features, depth: u32) -> Result<DataPath, String> {
        let Uring::Usable { splice } = features.uring else {
            return Ok(DataPath::Syscalls);
        };
        match RingPool::new(depth) {
            Ok(pool) => Ok(DataPath::Ring { pool, splice }),
            Err(err) if features.uring_mode == UringMode::On => Err(format!(
                "{err}; -o uring=on demands io_uring (uring=auto or uring=off: plain syscalls)"
            )),
            Err(err) => {
                warn!("{err}; data I/O uses plain syscalls");
                Ok(DataPath::Syscalls)
            }
        }
    }

    /// The ring pool, when data I/O goes through it (for its counters).
    pub fn ring(&self) -> Option<&RingPool> {
        match self {
            DataPath::Ring { pool, .. } => Some(pool),
            DataPath::Syscalls => None,
        }
    }

    /// Reads at `offset` until `buf` is full or EOF.
    ///
    /// # Errors
    /// The read's errno.
    pub fn read_at(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            DataPath::Ring { pool, .. } => pool.read_at(fd, buf, offset),
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
            DataPath::Ring { pool, .. } => pool.write_at(fd, buf, offset),
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
            DataPath::Ring { pool, .. } => pool.fsync(fd, datasync),
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
            DataPath::Ring { pool, .. } => pool.fallocate(fd, mode, offset, len),
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
            (DataPath::Ring { pool, splice: true }, CopyMethod::Splice) => {
                pool.splice_copy(src, off_in, dst, off_out, len)
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
            DataPath::Ring { pool, .. } => {
                let opened = pool.openat_batch(dir, names, flags);
                let fds: Vec<BorrowedFd<'_>> = opened
                    .iter()
                    .filter_map(|r| r.as_ref().ok().map(|fd| fd.as_fd()))
                    .collect();
                let mut stats = pool.statx_batch(&fds, STATX_MASK).into_iter();
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
