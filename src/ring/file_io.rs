//! READ, WRITE, FSYNC and FALLOCATE on one fd, short transfers resubmitted.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::thread;

use io_uring::{opcode, types};

use super::chunk::{check_offset, chunk_offset, rw_len};
use super::{CURRENT_POSITION, EAGAIN_RETRIES, RingPool};

impl RingPool {
    /// Reads into `buf` at `offset` until it is full or EOF; returns the bytes read.
    ///
    /// Short reads are resubmitted for the rest: a FUSE read reply shorter than asked means EOF
    /// to the kernel (without direct_io), so a short read must only ever be a real EOF. For the
    /// same reason an error in a later chunk is returned as the error, not as a short count.
    /// `offset` may be [`CURRENT_POSITION`].
    ///
    /// # Errors
    ///
    /// The read's errno; `EINVAL` for an offset above `i64::MAX` (other than
    /// [`CURRENT_POSITION`]).
    pub fn read_at(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        check_offset(offset)?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.with_ring(|tr| {
            let mut done = 0usize;
            let mut eagain = 0u32;
            while let Some(rest) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
                let len = rw_len(rest.len());
                let entry = opcode::Read::new(types::Fd(fd.as_raw_fd()), rest.as_mut_ptr(), len)
                    .offset(chunk_offset(offset, done))
                    .build();
                // SAFETY: `rest` is the caller's exclusively borrowed buffer, alive for this whole
                // call, and run_one returns only after the CQE is reaped.
                let res = unsafe { self.run_one(tr, &entry) };
                match res.into_result() {
                    Ok(0) => break,
                    Ok(n) => done += n as usize,
                    Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {
                        eagain += 1;
                        if eagain > EAGAIN_RETRIES {
                            return Err(err);
                        }
                        thread::yield_now();
                    }
                    Err(err) => return Err(err),
                }
            }
            Ok(done)
        })
    }

    /// Writes `buf` at `offset`, resubmitting the rest after short writes; returns the bytes
    /// written.
    ///
    /// Like `write(2)`: if a later chunk fails after some bytes were written, the count so far
    /// is returned and the error is left for the next call to hit. `offset` may be
    /// [`CURRENT_POSITION`]; for an `O_APPEND` fd the kernel appends whatever the offset.
    ///
    /// # Errors
    ///
    /// The write's errno if nothing was written; `WriteZero` (EIO) if the kernel accepted 0
    /// bytes; `EINVAL` for an offset above `i64::MAX` (other than [`CURRENT_POSITION`]).
    pub fn write_at(&self, fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        check_offset(offset)?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.with_ring(|tr| {
            let mut done = 0usize;
            let mut eagain = 0u32;
            while let Some(rest) = buf.get(done..).filter(|rest| !rest.is_empty()) {
                let len = rw_len(rest.len());
                let entry = opcode::Write::new(types::Fd(fd.as_raw_fd()), rest.as_ptr(), len)
                    .offset(chunk_offset(offset, done))
                    .build();
                // SAFETY: `rest` borrows the caller's buffer for this whole call, and run_one
                // returns only after the CQE is reaped.
                let res = unsafe { self.run_one(tr, &entry) };
                match res.into_result() {
                    Ok(0) if done > 0 => break,
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "io_uring write accepted 0 bytes",
                        ));
                    }
                    Ok(n) => done += n as usize,
                    Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {
                        eagain += 1;
                        if eagain > EAGAIN_RETRIES {
                            return if done > 0 { Ok(done) } else { Err(err) };
                        }
                        thread::yield_now();
                    }
                    Err(_) if done > 0 => break,
                    Err(err) => return Err(err),
                }
            }
            Ok(done)
        })
    }

    /// Writes `buf` at the file position (the end, for an `O_APPEND` fd); same rules as
    /// [`RingPool::write_at`].
    ///
    /// # Errors
    ///
    /// As [`RingPool::write_at`].
    pub fn write_append(&self, fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        self.write_at(fd, buf, CURRENT_POSITION)
    }

    /// `fsync(2)`, or `fdatasync(2)` if `datasync`.
    ///
    /// # Errors
    ///
    /// The errno of the sync (`EIO` from writeback is the one that matters).
    pub fn fsync(&self, fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
        let flags = if datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        let entry = opcode::Fsync::new(types::Fd(fd.as_raw_fd()))
            .flags(flags)
            .build();
        // SAFETY: an fsync SQE points at no memory.
        unsafe { self.run_simple(&entry) }.map(drop)
    }

    /// `fallocate(2)` with `mode` (`FALLOC_FL_*`) over `offset..offset + len`.
    ///
    /// # Errors
    ///
    /// The errno of the fallocate (`EOPNOTSUPP` if the backing fs lacks the mode).
    pub fn fallocate(
        &self,
        fd: BorrowedFd<'_>,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let entry = opcode::Fallocate::new(types::Fd(fd.as_raw_fd()), len)
            .offset(offset)
            .mode(mode)
            .build();
        // SAFETY: a fallocate SQE points at no memory.
        unsafe { self.run_simple(&entry) }.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File, OpenOptions};
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::ring::test_support::{TempDir, errno, pattern, pool, rw};

    #[test]
    fn read_write_roundtrip() {
        let dir = TempDir::new("roundtrip");
        let file = rw(&dir.path("f"));
        let pool = pool();
        let data = pattern(300_000, 1);
        assert_eq!(
            pool.write_at(file.as_fd(), &data, 4096).expect("write"),
            data.len()
        );
        let mut back = vec![0u8; data.len()];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut back, 4096).expect("read"),
            data.len()
        );
        assert_eq!(back, data);
        let mut head = vec![0xffu8; 4096];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut head, 0).expect("read hole"),
            4096
        );
        assert!(head.iter().all(|&b| b == 0));
        assert_eq!(
            pool.read_at(file.as_fd(), &mut [], 0).expect("empty read"),
            0
        );
        assert_eq!(pool.write_at(file.as_fd(), &[], 0).expect("empty write"), 0);
    }

    #[test]
    fn short_read_at_eof_returns_available_bytes() {
        let dir = TempDir::new("eof");
        let path = dir.path("f");
        fs::write(&path, b"hello world").expect("seed");
        let file = File::open(&path).expect("open");
        let pool = pool();
        let mut buf = [0u8; 64];
        assert_eq!(pool.read_at(file.as_fd(), &mut buf, 6).expect("read"), 5);
        assert_eq!(&buf[..5], b"world");
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, 11)
                .expect("read at eof"),
            0
        );
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, 1 << 40)
                .expect("read past eof"),
            0
        );
    }

    #[test]
    fn write_past_eof_extends() {
        let dir = TempDir::new("extend");
        let path = dir.path("f");
        let file = rw(&path);
        let pool = pool();
        let off = 1 << 20;
        assert_eq!(pool.write_at(file.as_fd(), b"tail", off).expect("write"), 4);
        assert_eq!(fs::metadata(&path).expect("stat").len(), off + 4);
        let mut buf = [0u8; 8];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, off - 4).expect("read"),
            8
        );
        assert_eq!(&buf, b"\0\0\0\0tail");
    }

    #[test]
    fn write_append_and_current_position() {
        let dir = TempDir::new("append");
        let path = dir.path("f");
        fs::write(&path, b"abc").expect("seed");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open append");
        let pool = pool();
        assert_eq!(pool.write_append(file.as_fd(), b"def").expect("append"), 3);
        // O_APPEND wins over an explicit offset.
        assert_eq!(
            pool.write_at(file.as_fd(), b"ghi", 0).expect("append at 0"),
            3
        );
        assert_eq!(fs::read(&path).expect("read"), b"abcdefghi");

        // On a plain fd, CURRENT_POSITION reads and advances the file position.
        let mut file = File::open(&path).expect("open");
        let mut buf = [0u8; 4];
        assert_eq!(
            pool.read_at(file.as_fd(), &mut buf, CURRENT_POSITION)
                .expect("read"),
            4
        );
        assert_eq!(&buf, b"abcd");
        let mut rest = String::new();
        file.read_to_string(&mut rest).expect("read rest");
        assert_eq!(rest, "efghi");
    }

    #[test]
    fn bad_offset_and_bad_fd_map_to_errno() {
        let dir = TempDir::new("errno");
        let path = dir.path("f");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("open wronly");
        let pool = pool();
        let mut buf = [0u8; 8];
        let err = pool
            .read_at(file.as_fd(), &mut buf, 0)
            .expect_err("read wronly");
        assert_eq!(errno(&err), Some(libc::EBADF));
        let err = pool
            .write_at(file.as_fd(), b"x", u64::MAX - 1)
            .expect_err("bad offset");
        assert_eq!(errno(&err), Some(libc::EINVAL));
        let ro = File::open(&path).expect("open rdonly");
        let err = pool
            .write_at(ro.as_fd(), b"x", 0)
            .expect_err("write rdonly");
        assert_eq!(errno(&err), Some(libc::EBADF));
    }

    #[test]
    fn fsync_and_fdatasync() {
        let dir = TempDir::new("fsync");
        let file = rw(&dir.path("f"));
        let pool = pool();
        pool.write_at(file.as_fd(), b"data", 0).expect("write");
        pool.fsync(file.as_fd(), false).expect("fsync");
        pool.fsync(file.as_fd(), true).expect("fdatasync");
    }

    #[test]
    fn fallocate_keep_size_and_punch_hole() {
        let dir = TempDir::new("fallocate");
        let path = dir.path("f");
        let file = rw(&path);
        let pool = pool();
        let data = pattern(64 * 1024, 2);
        pool.write_at(file.as_fd(), &data, 0).expect("write");
        pool.fsync(file.as_fd(), false).expect("fsync");

        let before = fs::metadata(&path).expect("stat");
        pool.fallocate(file.as_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20)
            .expect("fallocate keep size");
        let after = fs::metadata(&path).expect("stat");
        assert_eq!(after.len(), data.len() as u64, "KEEP_SIZE keeps the size");
        assert!(after.blocks() > before.blocks(), "blocks were allocated");

        pool.fallocate(
            file.as_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            4096,
            8192,
        )
        .expect("punch hole");
        let mut back = vec![0u8; data.len()];
        pool.read_at(file.as_fd(), &mut back, 0).expect("read");
        assert_eq!(&back[..4096], &data[..4096]);
        assert!(
            back[4096..12288].iter().all(|&b| b == 0),
            "hole reads zeros"
        );
        assert_eq!(&back[12288..], &data[12288..]);

        pool.fallocate(file.as_fd(), 0, 0, 200_000)
            .expect("fallocate extend");
        assert_eq!(fs::metadata(&path).expect("stat").len(), 200_000);
    }
}
