//! OPENAT and STATX in batches: one SQE per name or fd, one enter per SQ-full, results in
//! input order. Readdirplus looks up a reply's entries with these.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::RingPool;

impl RingPool {
    /// Opens every name relative to `dirfd` with `flags | O_CLOEXEC` (mode 0, so not meant for
    /// `O_CREAT`), one SQE each, submitted together: one enter per `depth` names. Results are in
    /// input order; a failing name does not affect the others.
    ///
    /// `O_CLOEXEC` is forced because an fd leaked into a child would pin the file.
    pub fn openat_batch(
        &self,
        dirfd: BorrowedFd<'_>,
        names: &[&CStr],
        flags: i32,
    ) -> Vec<io::Result<OwnedFd>> {
        let entries: Vec<squeue::Entry> = names
            .iter()
            .map(|name| {
                opcode::OpenAt::new(types::Fd(dirfd.as_raw_fd()), name.as_ptr())
                    .flags(flags | libc::O_CLOEXEC)
                    .mode(0)
                    .build()
            })
            .collect();
        // SAFETY: each SQE points at a caller-borrowed `CStr` that outlives this call.
        let results = unsafe { self.run_batch_retrying(&entries) };
        results
            .into_iter()
            .map(|res| {
                res.into_result().map(|fd| {
                    // SAFETY: a successful OPENAT CQE carries a new fd that nobody else owns.
                    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
                })
            })
            .collect()
    }

    /// `statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, mask)` for every fd, batched like
    /// [`RingPool::openat_batch`]; results in input order.
    pub fn statx_batch(&self, fds: &[BorrowedFd<'_>], mask: u32) -> Vec<io::Result<libc::statx>> {
        let targets: Vec<(RawFd, &CStr)> = fds.iter().map(|fd| (fd.as_raw_fd(), c"")).collect();
        self.statx_many(
            &targets,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            mask,
        )
    }

    /// `statx(dirfd, name, AT_SYMLINK_NOFOLLOW, mask)` for every name, batched like
    /// [`RingPool::openat_batch`]; results in input order.
    pub fn statx_at_batch(
        &self,
        dirfd: BorrowedFd<'_>,
        names: &[&CStr],
        mask: u32,
    ) -> Vec<io::Result<libc::statx>> {
        let targets: Vec<(RawFd, &CStr)> = names
            .iter()
            .map(|name| (dirfd.as_raw_fd(), *name))
            .collect();
        self.statx_many(&targets, libc::AT_SYMLINK_NOFOLLOW, mask)
    }

    /// Shared body of `statx_batch` and `statx_at_batch`.
    fn statx_many(
        &self,
        targets: &[(RawFd, &CStr)],
        flags: i32,
        mask: u32,
    ) -> Vec<io::Result<libc::statx>> {
        // Allocated once and never resized, so the pointers taken below stay valid.
        let mut bufs: Vec<libc::statx> = targets
            .iter()
            .map(|_| {
                // SAFETY: `statx` is plain integers, for which all-zero is a valid value.
                unsafe { std::mem::zeroed::<libc::statx>() }
            })
            .collect();
        let entries: Vec<squeue::Entry> = targets
            .iter()
            .zip(bufs.iter_mut())
            .map(|((fd, path), buf)| {
                let buf: *mut libc::statx = buf;
                opcode::Statx::new(types::Fd(*fd), path.as_ptr(), buf.cast::<types::statx>())
                    .flags(flags)
                    .mask(mask)
                    .build()
            })
            .collect();
        // SAFETY: the paths are borrowed for this call and `bufs` lives until after it returns;
        // nothing reads `bufs` until then.
        let results = unsafe { self.run_batch_retrying(&entries) };
        results
            .into_iter()
            .zip(bufs)
            .map(|(res, buf)| res.into_result().map(|_| buf))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::fs::{self, File};
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::ring::test_support::{TempDir, errno, pattern, pool};

    #[test]
    fn openat_batch_missing_name_is_enoent_for_that_entry_only() {
        let dir = TempDir::new("openat");
        fs::write(dir.path("a"), b"A").expect("a");
        fs::write(dir.path("c"), b"C").expect("c");
        let dirfile = File::open(&dir.0).expect("open dir");
        let pool = pool();
        let names = [c"a", c"missing", c"c"];
        let results = pool.openat_batch(dirfile.as_fd(), &names, libc::O_RDONLY);
        assert_eq!(results.len(), 3);
        let mut it = results.into_iter();
        let a = it.next().expect("a").expect("a opens");
        let missing = it.next().expect("missing").expect_err("missing fails");
        let c = it.next().expect("c").expect("c opens");
        assert_eq!(errno(&missing), Some(libc::ENOENT));
        let mut buf = [0u8; 1];
        pool.read_at(a.as_fd(), &mut buf, 0).expect("read a");
        assert_eq!(&buf, b"A");
        pool.read_at(c.as_fd(), &mut buf, 0).expect("read c");
        assert_eq!(&buf, b"C");
        // SAFETY: F_GETFD on an fd we own touches no memory.
        let fd_flags = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fd_flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        assert!(pool.openat_batch(dirfile.as_fd(), &[], 0).is_empty());
    }

    fn make_files(dir: &TempDir, n: usize) -> Vec<CString> {
        (0..n)
            .map(|i| {
                let name = format!("f{i}");
                fs::write(dir.path(&name), name.as_bytes()).expect("seed file");
                CString::new(name).expect("no nul")
            })
            .collect()
    }

    #[test]
    fn batch_of_100_openats_is_one_enter() {
        let dir = TempDir::new("batch100");
        let names = make_files(&dir, 100);
        let refs: Vec<&CStr> = names.iter().map(|n| n.as_c_str()).collect();
        let dirfile = File::open(&dir.0).expect("open dir");
        let pool = RingPool::new(128).expect("ring");
        let before = pool.stats();
        let results = pool.openat_batch(dirfile.as_fd(), &refs, libc::O_RDONLY);
        let after = pool.stats();
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(after.enters - before.enters, 1);
        assert_eq!(after.sqes_submitted - before.sqes_submitted, 100);
        assert_eq!(after.cqes_reaped - before.cqes_reaped, 100);
        assert_eq!(after.batch_histogram[6] - before.batch_histogram[6], 1);
        // Results are in input order: each fd reads back its own name.
        for (fd, name) in results.into_iter().zip(&names) {
            let fd = fd.expect("open");
            let mut buf = vec![0u8; name.as_bytes().len()];
            pool.read_at(fd.as_fd(), &mut buf, 0).expect("read");
            assert_eq!(buf, name.as_bytes());
        }
    }

    #[test]
    fn batch_larger_than_sq_is_chunked() {
        let dir = TempDir::new("chunked");
        let names = make_files(&dir, 20);
        let refs: Vec<&CStr> = names.iter().map(|n| n.as_c_str()).collect();
        let dirfile = File::open(&dir.0).expect("open dir");
        let pool = RingPool::new(8).expect("ring");
        let before = pool.stats();
        let results = pool.openat_batch(dirfile.as_fd(), &refs, libc::O_RDONLY);
        let after = pool.stats();
        assert_eq!(results.len(), 20);
        assert!(results.iter().all(|r| r.is_ok()));
        // 8 + 8 + 4.
        assert_eq!(after.enters - before.enters, 3);
        assert_eq!(after.batch_histogram[3] - before.batch_histogram[3], 2);
        assert_eq!(after.batch_histogram[2] - before.batch_histogram[2], 1);
    }

    #[test]
    fn statx_batch_matches_metadata() {
        let dir = TempDir::new("statx");
        fs::write(dir.path("small"), b"12345").expect("small");
        fs::write(dir.path("big"), pattern(70_000, 3)).expect("big");
        std::os::unix::fs::symlink("small", dir.path("link")).expect("symlink");
        let small = File::open(dir.path("small")).expect("open small");
        let big = File::open(dir.path("big")).expect("open big");
        let pool = pool();
        let mask = libc::STATX_BASIC_STATS;
        let results = pool.statx_batch(&[small.as_fd(), big.as_fd()], mask);
        for (res, name) in results.into_iter().zip(["small", "big"]) {
            let stx = res.expect("statx");
            let md = fs::metadata(dir.path(name)).expect("metadata");
            assert_eq!(stx.stx_ino, md.ino());
            assert_eq!(stx.stx_size, md.len());
            assert_eq!(u32::from(stx.stx_mode), md.mode());
        }

        let dirfile = File::open(&dir.0).expect("open dir");
        let results = pool.statx_at_batch(dirfile.as_fd(), &[c"link", c"nope", c"big"], mask);
        let mut it = results.into_iter();
        let link = it.next().expect("link").expect("statx link");
        let link_md = fs::symlink_metadata(dir.path("link")).expect("lstat");
        assert_eq!(link.stx_ino, link_md.ino(), "AT_SYMLINK_NOFOLLOW");
        assert_eq!(u32::from(link.stx_mode) & libc::S_IFMT, libc::S_IFLNK);
        let nope = it.next().expect("nope").expect_err("missing");
        assert_eq!(errno(&nope), Some(libc::ENOENT));
        let big_stx = it.next().expect("big").expect("statx big");
        assert_eq!(big_stx.stx_size, 70_000);
    }
}
