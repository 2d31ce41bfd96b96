//! `splice_copy`: a copy between two fds without a userspace buffer, through a pipe, with a
//! linked pair of SPLICE SQEs per pipe-full.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};
use log::debug;

use super::chunk::{check_offset, rw_len, splice_offset};
use super::submit::is_retryable;
use super::thread_ring::ThreadRing;
use super::{EAGAIN_RETRIES, RingPool};
use crate::sys;

/// Pipe size requested for splice_copy; the default `fs.pipe-max-size` allows it unprivileged.
const SPLICE_PIPE_SIZE: libc::c_int = 1 << 20;

/// Pipe size on Linux when F_SETPIPE_SZ/F_GETPIPE_SZ both fail (`pipe(7)`).
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

impl RingPool {
    /// Copies up to `len` bytes from `fd_in` at `off_in` to `fd_out` at `off_out` without a
    /// userspace buffer, through a pipe: linked SPLICE SQEs (in -> pipe, then pipe -> out) per
    /// chunk of the pipe's size. Stops early at EOF of `fd_in`; returns the bytes written to
    /// `fd_out`. Either offset may be [`CURRENT_POSITION`](super::CURRENT_POSITION) (required
    /// for a pipe/socket).
    ///
    /// # Errors
    ///
    /// The splice errno if nothing was copied (after some bytes, the count is returned, like
    /// `copy_file_range(2)`); `EINVAL` for an offset above `i64::MAX`; pipe creation errors.
    pub fn splice_copy(
        &self,
        fd_in: BorrowedFd<'_>,
        off_in: u64,
        fd_out: BorrowedFd<'_>,
        off_out: u64,
        len: usize,
    ) -> io::Result<usize> {
        check_offset(off_in)?;
        check_offset(off_out)?;
        if len == 0 {
            return Ok(0);
        }
        // A fresh pipe per call: after an error it may hold stray bytes, and a cached one would
        // then leak them into the next copy.
        let pipe = SplicePipe::new()?;
        self.with_ring(|tr| {
            let mut copy = SpliceCopy {
                pool: self,
                fd_in: fd_in.as_raw_fd(),
                off_in,
                fd_out: fd_out.as_raw_fd(),
                off_out,
                pipe: &pipe,
                moved_in: 0,
                copied: 0,
            };
            copy.run(tr, len)
        })
    }
}

/// The pipe a splice_copy goes through.
struct SplicePipe {
    /// Read end.
    read: OwnedFd,
    /// Write end.
    write: OwnedFd,
    /// Bytes the pipe holds; chunks are at most this, so splicing into it never blocks on a
    /// full pipe.
    capacity: usize,
}

impl SplicePipe {
    fn new() -> io::Result<SplicePipe> {
        let (read, write) = sys::pipe()?;
        // Best effort: a bigger pipe means fewer SQE pairs; above fs.pipe-max-size (or the
        // per-user pipe budget) it fails with EPERM and the default size does. This fcntl
        // belongs in sys/; it stays here until sys grows an F_SETPIPE_SZ wrapper.
        // SAFETY: F_SETPIPE_SZ/F_GETPIPE_SZ take an int and touch no memory.
        let size =
            match unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, SPLICE_PIPE_SIZE) } {
                size if size > 0 => size,
                _ => {
                    debug!(
                        "io_uring: F_SETPIPE_SZ failed: {}",
                        io::Error::last_os_error()
                    );
                    // SAFETY: as above.
                    unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) }
                }
            };
        let capacity = usize::try_from(size)
            .ok()
            .filter(|&size| size > 0)
            .unwrap_or(DEFAULT_PIPE_SIZE);
        Ok(SplicePipe {
            read,
            write,
            capacity,
        })
    }
}

/// State of one splice_copy: how far each side got.
struct SpliceCopy<'a> {
    /// Pool whose counters the SQEs count toward.
    pool: &'a RingPool,
    /// Source fd.
    fd_in: RawFd,
    /// Source start offset, or CURRENT_POSITION.
    off_in: u64,
    /// Destination fd.
    fd_out: RawFd,
    /// Destination start offset, or CURRENT_POSITION.
    off_out: u64,
    /// The pipe in between; empty at the start of each chunk.
    pipe: &'a SplicePipe,
    /// Bytes moved from fd_in into the pipe so far.
    moved_in: usize,
    /// Bytes moved from the pipe to fd_out so far (the result).
    copied: usize,
}

impl SpliceCopy<'_> {
    fn run(&mut self, tr: &mut ThreadRing, len: usize) -> io::Result<usize> {
        let mut retries = 0u32;
        while self.copied < len {
            let chunk = rw_len((len - self.copied).min(self.pipe.capacity));
            let to_pipe = opcode::Splice::new(
                types::Fd(self.fd_in),
                splice_offset(self.off_in, self.moved_in),
                types::Fd(self.pipe.write.as_raw_fd()),
                -1,
                chunk,
            )
            .build()
            .flags(squeue::Flags::IO_LINK);
            let from_pipe = opcode::Splice::new(
                types::Fd(self.pipe.read.as_raw_fd()),
                -1,
                types::Fd(self.fd_out),
                splice_offset(self.off_out, self.copied),
                chunk,
            )
            .build();
            // SAFETY: splice SQEs point at no memory, only at fds that outlive the call. The
            // kernel fails the link on a short first splice (io_splice: ret != len), so the
            // second never waits on an empty pipe whose writer we hold.
            let results = unsafe { self.pool.run_batch(tr, &[to_pipe, from_pipe]) };
            let (res_in, res_out) = match results.as_slice() {
                [res_in, res_out] => (res_in.into_result(), res_out.into_result()),
                _ => return Err(io::Error::from_raw_os_error(libc::EIO)),
            };
            let filled = match res_in {
                Ok(0) => break,
                Ok(n) => n as usize,
                // The link broke, so nothing reached the pipe: just redo the chunk.
                Err(err) if is_retryable(&err) && retries < EAGAIN_RETRIES => {
                    retries += 1;
                    continue;
                }
                Err(err) => return self.partial(err),
            };
            retries = 0;
            self.moved_in += filled;
            let mut pending = filled;
            match res_out {
                Ok(n) => {
                    let n = (n as usize).min(pending);
                    pending -= n;
                    self.copied += n;
                }
                // Expected after a short first splice; the drain below moves those bytes.
                Err(err)
                    if err.raw_os_error() == Some(libc::ECANCELED) && filled < chunk as usize => {}
                Err(err) if is_retryable(&err) => {}
                Err(err) => return self.partial(err),
            }
            if let Err(err) = self.drain(tr, pending) {
                return self.partial(err);
            }
        }
        Ok(self.copied)
    }

    /// Moves the `pending` bytes still in the pipe to fd_out, looping over short splices.
    /// Asking for exactly what the pipe holds means a splice never waits for more input.
    /// On error the pipe may still hold bytes; the caller stops and drops the pipe.
    fn drain(&mut self, tr: &mut ThreadRing, mut pending: usize) -> io::Result<()> {
        let mut retries = 0u32;
        while pending > 0 {
            let entry = opcode::Splice::new(
                types::Fd(self.pipe.read.as_raw_fd()),
                -1,
                types::Fd(self.fd_out),
                splice_offset(self.off_out, self.copied),
                rw_len(pending),
            )
            .build();
            // SAFETY: a splice SQE points at no memory.
            let res = unsafe { self.pool.run_one(tr, &entry) }.into_result();
            match res {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "splice to destination accepted 0 bytes",
                    ));
                }
                Ok(n) => {
                    let n = (n as usize).min(pending);
                    pending -= n;
                    self.copied += n;
                }
                Err(err) if is_retryable(&err) && retries < EAGAIN_RETRIES => retries += 1,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Ends the copy after a failure: the bytes copied so far if any (like
    /// `copy_file_range(2)`), else the error.
    fn partial(&self, err: io::Error) -> io::Result<usize> {
        if self.copied > 0 {
            debug!(
                "io_uring: splice_copy stopped after {} bytes: {err}",
                self.copied
            );
            Ok(self.copied)
        } else {
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File, OpenOptions};
    use std::io::Write;
    use std::os::fd::AsFd;

    use crate::ring::CURRENT_POSITION;
    use crate::ring::test_support::{TempDir, pattern, pool, rw};

    #[test]
    fn splice_copy_3mib_equals_source() {
        let dir = TempDir::new("splice");
        let src_path = dir.path("src");
        let dst_path = dir.path("dst");
        let data = pattern(3 << 20, 4);
        fs::write(&src_path, &data).expect("seed");
        let src = File::open(&src_path).expect("open src");
        let dst = rw(&dst_path);
        let pool = pool();
        let copied = pool
            .splice_copy(src.as_fd(), 0, dst.as_fd(), 0, data.len())
            .expect("splice");
        assert_eq!(copied, data.len());
        assert!(fs::read(&dst_path).expect("read dst") == data);

        // Unaligned offsets, and a length past EOF stops at EOF.
        let dst2_path = dir.path("dst2");
        let dst2 = rw(&dst2_path);
        let copied = pool
            .splice_copy(src.as_fd(), 12_345, dst2.as_fd(), 777, 10 << 20)
            .expect("splice to eof");
        assert_eq!(copied, data.len() - 12_345);
        let out = fs::read(&dst2_path).expect("read dst2");
        assert_eq!(out.len(), 777 + copied);
        assert!(out[777..] == data[12_345..]);

        // At EOF: nothing to copy.
        let copied = pool
            .splice_copy(src.as_fd(), data.len() as u64, dst2.as_fd(), 0, 100)
            .expect("splice at eof");
        assert_eq!(copied, 0);
    }

    #[test]
    fn splice_copy_to_append_fd_at_current_position() {
        let dir = TempDir::new("splice-append");
        let src_path = dir.path("src");
        let dst_path = dir.path("dst");
        fs::write(&src_path, b"0123456789").expect("seed");
        let mut dst = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&dst_path)
            .expect("open dst");
        dst.write_all(b">").expect("prefix");
        let src = File::open(&src_path).expect("open src");
        let pool = pool();
        let copied = pool
            .splice_copy(src.as_fd(), 2, dst.as_fd(), CURRENT_POSITION, 5)
            .expect("splice");
        assert_eq!(copied, 5);
        assert_eq!(fs::read(&dst_path).expect("read"), b">23456");
    }
}
