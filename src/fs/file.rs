//! Open files: open, create, read, write, flush, copy_file_range.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use fuser::{FileHandle, FopenFlags, WriteFlags};

use crate::attr::STATX_MASK;
use crate::buffer::{AlignedBuf, is_aligned};
use crate::creds::{Caller, CredGuard};
use crate::datapath::CopyMethod;
use crate::error::einval;
use crate::inode::Pinned;
use crate::locks::LockKind;
use crate::openfile::{IoRequest, OpenFile};
use crate::options::CacheMode;
use crate::sys::{self, EMPTY};

use super::passthrough::BackingFile;
use super::{Ctx, Entry, STATX_EMPTY, UringFs, entry_name};

/// `__FMODE_EXEC` among an open's flags: the kernel opens the file to execute it.
const FMODE_EXEC: i32 = 0x20;

impl UringFs {
    /// Runs a data request on `file` with the credentials `IoRequest` gives it (an SQE carries
    /// its submitter's).
    pub(super) fn io_as(
        &self,
        req: &Ctx,
        file: &OpenFile,
        kill_suidgid: bool,
    ) -> io::Result<CredGuard<'_>> {
        let creds = file.io_creds(
            IoRequest {
                uid: req.uid,
                gid: req.gid,
                pid: req.pid,
                kill_suidgid,
            },
            self.creds.daemon_caps(),
        );
        self.creds
            .enter_io(creds.uid, creds.gid, creds.groups, creds.caps)
    }

    /// The open flags of a file served through the daemon. With passthrough on, that is a
    /// setuid/setgid file (see `backing_for`), opened for direct I/O: a cached-mode open
    /// would make the kernel refuse passthrough opens of the inode until it closes.
    pub(super) fn daemon_open_flags(&self) -> FopenFlags {
        if self.passthrough.load(Relaxed) {
            return FopenFlags::FOPEN_DIRECT_IO;
        }
        match self.opts.cache {
            CacheMode::None => FopenFlags::FOPEN_DIRECT_IO,
            CacheMode::Auto => FopenFlags::empty(),
            CacheMode::Always => FopenFlags::FOPEN_KEEP_CACHE,
        }
    }

    /// The open flags of a directory. Under `cache=always` (names and attributes cached for
    /// a day, BACKING changed only through the mount) the kernel keeps a directory's listing
    /// across opens: the mount's own changes to the directory reset it (the kernel bumps
    /// the directory's version), so a `find` or `ls -R` run again costs no READDIR. Under
    /// `auto` a listing is read afresh at every open, so a change made in BACKING shows at
    /// once; and a cached listing carries no attributes, so one listed again after the 1 s
    /// TTL would cost a LOOKUP per entry instead of one READDIRPLUS.
    pub(crate) fn dir_open_flags(&self) -> FopenFlags {
        match self.opts.cache {
            CacheMode::Always => FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            CacheMode::None | CacheMode::Auto => FopenFlags::empty(),
        }
    }

    pub(crate) fn do_open(
        &self,
        req: &Ctx,
        ino: u64,
        flags: i32,
    ) -> io::Result<(Pinned, OwnedFd, Caller)> {
        let inode = self.inode(ino)?;
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY);
        let caller = self.caller(req);
        let fd = if flags & FMODE_EXEC != 0 && flags & libc::O_ACCMODE == libc::O_RDONLY {
            // The kernel opens a file to execute it (do_open_execat): natively that needs
            // execute permission, not read, so an execute-only binary runs. Execute is
            // checked as the caller; the read-only fd, opened as the daemon, only serves the
            // kernel's reads for the exec (a later open to read it is the caller's again).
            {
                let _caller = self.creds.enter(&caller)?;
                let name = sys::fd_name(inode.fd());
                sys::faccessat2(self.proc_fd.as_fd(), &name, libc::X_OK, libc::AT_EACCESS)?;
            }
            self.reopen(&inode, flags & !FMODE_EXEC)?
        } else {
            let _caller = self.creds.enter(&caller)?;
            self.reopen(&inode, flags)?
        };
        self.keep_atime(fd.as_fd());
        Ok((inode, fd, caller))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_create(
        &self,
        req: &Ctx,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> io::Result<(Entry, OwnedFd, Caller)> {
        let parent_inode = self.inode(parent)?;
        let name = entry_name(name)?;
        let flags = (flags & !libc::O_NOCTTY) | libc::O_CREAT | libc::O_NOFOLLOW;
        self.settle_releases();
        let caller = self.caller(req);
        let fd = {
            let _caller = self.creds.enter(&caller)?;
            self.with_caller_umask(umask, || sys::openat(parent_inode.fd(), &name, flags, mode))?
        };
        self.keep_atime(fd.as_fd());
        Ok((self.adopt_open(&fd)?, fd, caller))
    }

    /// Takes the inode of a file just created and opened into the table (one more lookup).
    /// Its own O_PATH fd comes from the open file, not from a name again, which someone may
    /// have replaced meanwhile (or which it does not have: O_TMPFILE).
    fn adopt_open(&self, fd: &OwnedFd) -> io::Result<Entry> {
        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        let path_fd = sys::openat(
            self.proc_fd.as_fd(),
            &sys::fd_name(fd.as_fd()),
            libc::O_PATH,
            0,
        )?;
        Ok(self.adopt(path_fd, &stx))
    }

    /// `O_TMPFILE` in directory `parent`: an unnamed file opened with `flags`, made as the
    /// caller under its umask. LINK can name it later: the link goes through the magic link
    /// of its fd, which is how linkat(2) names an `O_TMPFILE` file natively. Only the ring
    /// transport can ask for one (fuser has no TMPFILE operation).
    pub(crate) fn tmpfile_file(
        &self,
        ctx: &Ctx,
        parent: u64,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> io::Result<(Entry, Opened)> {
        let parent_inode = self.inode(parent)?;
        let flags = (flags & !(libc::O_CREAT | libc::O_NOCTTY)) | libc::O_TMPFILE;
        self.settle_releases();
        let caller = self.caller(ctx);
        let fd = {
            let _caller = self.creds.enter(&caller)?;
            self.with_caller_umask(umask, || sys::openat(parent_inode.fd(), c".", flags, mode))?
        };
        self.keep_atime(fd.as_fd());
        let entry = self.adopt_open(&fd)?;
        let nodeid = entry.attr.ino.0;
        Ok((entry, self.insert_file(nodeid, fd, flags, caller, None)))
    }

    pub(crate) fn do_read(
        &self,
        req: &Ctx,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let file = self.file(ino, fh)?;
        let _caller = self.io_as(req, &file, false)?;
        self.data.read_at(file.fd.as_fd(), buf, offset)
    }

    pub(crate) fn do_write(
        &self,
        req: &Ctx,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        flags: WriteFlags,
    ) -> io::Result<u32> {
        let file = self.file(ino, fh)?;
        self.settle_releases();
        let kill_suidgid = flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        let written = if flags.contains(WriteFlags::FUSE_WRITE_CACHE) {
            // Writeback of mapped pages: never through O_DIRECT, whatever the opener asked.
            let fd = file.writeback_fd(self.proc_fd.as_fd())?;
            let _caller = self.io_as(req, &file, kill_suidgid)?;
            self.data.write_at(fd, data, offset)?
        } else {
            let bounce = (file.direct && !is_aligned(data)).then(|| AlignedBuf::copy_of(data));
            let data = bounce.as_ref().map_or(data, AlignedBuf::as_slice);
            let _caller = self.io_as(req, &file, kill_suidgid)?;
            self.data.write_at(file.fd.as_fd(), data, offset)?
        };
        u32::try_from(written).map_err(|_| einval())
    }

    /// What a READ or WRITE on open file `fh` needs to run asynchronously, on the transport's
    /// own ring: the file (kept open until the completion), the fd to use (a writeback of
    /// an O_DIRECT file goes through its buffered twin), and the identity the SQE must carry
    /// (as a registered personality: the thread's credentials at submission are not the
    /// caller's). `None` when the request must run synchronously instead: an unaligned write
    /// to an O_DIRECT file needs a bounce buffer.
    pub(crate) fn io_target(
        &self,
        ctx: &Ctx,
        ino: u64,
        fh: FileHandle,
        write: Option<(WriteFlags, &[u8])>,
    ) -> io::Result<Option<IoTarget>> {
        let file = self.file(ino, fh)?;
        if write.is_some() {
            self.settle_releases();
        }
        let kill_suidgid =
            write.is_some_and(|(flags, _)| flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID));
        let creds = file.io_creds(
            IoRequest {
                uid: ctx.uid,
                gid: ctx.gid,
                pid: ctx.pid,
                kill_suidgid,
            },
            self.creds.daemon_caps(),
        );
        let identity = Caller {
            uid: creds.uid,
            gid: creds.gid,
            groups: creds.groups.to_vec(),
            caps: creds.caps & self.creds.daemon_caps(),
        };
        let fd = match write {
            Some((flags, _)) if flags.contains(WriteFlags::FUSE_WRITE_CACHE) => {
                file.writeback_fd(self.proc_fd.as_fd())?.as_raw_fd()
            }
            Some((_, data)) if file.direct && !is_aligned(data) => return Ok(None),
            _ => file.fd.as_raw_fd(),
        };
        Ok(Some(IoTarget { file, fd, identity }))
    }

    /// Runs `register` with `identity`'s credentials on this thread: how a transport's ring
    /// registers a personality for it.
    ///
    /// # Errors
    /// Switching the credentials, or what `register` returns.
    pub(crate) fn as_identity<T>(
        &self,
        identity: &Caller,
        register: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let _creds = self.creds.enter(identity)?;
        register()
    }

    /// A close of the file's descriptor reports the errors the backing fs deferred to it
    /// (write-back failures on NFS or FUSE, quota on some), as close(2) would natively; the
    /// file itself stays open until RELEASE, so a duplicate is what gets closed.
    /// A close of the file by process file table `lock_owner`: drops that process's
    /// forwarded POSIX locks on the inode, as any close does natively, and reports what the
    /// backing fs defers to close.
    pub(crate) fn do_flush(
        &self,
        req: &Ctx,
        ino: u64,
        fh: FileHandle,
        lock_owner: u64,
    ) -> io::Result<()> {
        let file = self.file(ino, fh)?;
        if self.opts.forward_locks {
            self.release_locks(ino, lock_owner, LockKind::Posix);
        }
        let _caller = self.io_as(req, &file, false)?;
        sys::close(sys::dup(file.fd.as_fd())?)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_copy_file_range(
        &self,
        req: &Ctx,
        ino_in: u64,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: u64,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: u32,
    ) -> io::Result<u32> {
        let src = self.file(ino_in, fh_in)?;
        let dst = self.file(ino_out, fh_out)?;
        self.settle_releases();
        // The reply carries a u32: copy at most what it can count.
        let len = usize::try_from(len.min(u64::from(u32::MAX) & !0xfff)).unwrap_or(0);
        if flags != 0 {
            return Err(einval());
        }
        let method = if self.opts.copy_splice {
            CopyMethod::Splice
        } else {
            CopyMethod::Kernel
        };
        let _caller = self.io_as(req, &dst, false)?;
        let copied = self.data.copy(
            method,
            src.fd.as_fd(),
            offset_in,
            dst.fd.as_fd(),
            offset_out,
            len,
        )?;
        u32::try_from(copied).map_err(|_| einval())
    }

    /// Opens inode `ino` for `ctx` with `flags`: the file handle, and the backing id when
    /// `register` gave one for kernel passthrough. `register` is the transport's way to make
    /// one (fuser's reply, over /dev/fuse); it is not called when passthrough is off.
    pub(crate) fn open_file(
        &self,
        ctx: &Ctx,
        ino: u64,
        flags: i32,
        register: impl FnOnce(BorrowedFd<'_>) -> io::Result<BackingFile>,
    ) -> io::Result<Opened> {
        let (inode, fd, caller) = self.do_open(ctx, ino, flags)?;
        let backing = self.backing_for(&inode, fd.as_fd(), register);
        Ok(self.insert_file(ino, fd, flags, caller, backing))
    }

    /// Creates and opens `name` in `parent`: its entry and the open file, as `open_file`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_file(
        &self,
        ctx: &Ctx,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        register: impl FnOnce(BorrowedFd<'_>) -> io::Result<BackingFile>,
    ) -> io::Result<(Entry, Opened)> {
        let (entry, fd, caller) = self.do_create(ctx, parent, name, mode, umask, flags)?;
        let nodeid = entry.attr.ino.0;
        let backing = self
            .inode(nodeid)
            .ok()
            .and_then(|inode| self.backing_for(&inode, fd.as_fd(), register));
        Ok((entry, self.insert_file(nodeid, fd, flags, caller, backing)))
    }

    fn insert_file(
        &self,
        nodeid: u64,
        fd: OwnedFd,
        flags: i32,
        caller: Caller,
        backing: Option<Arc<BackingFile>>,
    ) -> Opened {
        let direct = flags & libc::O_DIRECT != 0;
        let file = OpenFile::new(nodeid, fd, direct, caller, backing.clone());
        let fh = FileHandle(self.files.insert(file));
        let flags = if backing.is_some() {
            self.stats.record_passthrough_open();
            FopenFlags::empty()
        } else {
            self.daemon_open_flags()
        };
        Opened { fh, flags, backing }
    }

    /// fsync/fdatasync of open file `fh`, as its caller.
    pub(crate) fn do_fsync(
        &self,
        ctx: &Ctx,
        ino: u64,
        fh: FileHandle,
        datasync: bool,
    ) -> io::Result<()> {
        let file = self.file(ino, fh)?;
        let _caller = self.io_as(ctx, &file, false)?;
        self.data.fsync(file.fd.as_fd(), datasync)
    }

    /// fallocate(2) on open file `fh`, as its caller.
    pub(crate) fn do_fallocate(
        &self,
        ctx: &Ctx,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> io::Result<()> {
        let file = self.file(ino, fh)?;
        self.settle_releases();
        let _caller = self.io_as(ctx, &file, false)?;
        let res = self.data.fallocate(file.fd.as_fd(), mode, offset, length);
        if res.is_err() && mode & libc::FALLOC_FL_KEEP_SIZE == 0 {
            // ext4 keeps what a failing fallocate allocated, size included, and the kernel
            // refreshes its cached attributes only after a successful FALLOCATE.
            self.drop_cached_attrs(ino);
        }
        res
    }

    /// lseek(2) on open file `fh` (SEEK_DATA and SEEK_HOLE reach here).
    pub(crate) fn do_lseek(
        &self,
        ino: u64,
        fh: FileHandle,
        offset: i64,
        whence: i32,
    ) -> io::Result<i64> {
        let file = self.file(ino, fh)?;
        sys::lseek(file.fd.as_fd(), offset, whence)
    }

    /// The last close of open file `fh` of `ino`; `flock_owner` is set when its forwarded
    /// `flock` locks go with it (`FUSE_RELEASE_FLOCK_UNLOCK`). As the daemon: the close of a
    /// backing file consults no credentials, and releasing the passthrough backing id needs
    /// CAP_SYS_ADMIN.
    pub(crate) fn release_file(
        &self,
        ino: u64,
        fh: FileHandle,
        flock_owner: Option<u64>,
    ) -> io::Result<()> {
        self.file(ino, fh)?;
        if self.opts.forward_locks {
            self.release_file_locks(ino, fh, flock_owner);
        }
        self.files.remove(fh.0);
        Ok(())
    }
}

/// An open file as a transport answers it.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The handle the kernel sends back with each request on the file.
    pub fh: FileHandle,
    /// `FOPEN_*` to answer with.
    pub flags: FopenFlags,
    /// The kernel passthrough backing id, when the file has one.
    pub backing: Option<Arc<BackingFile>>,
}

/// An open file's read or write, ready for a transport's own ring.
pub(crate) struct IoTarget {
    /// The open file, kept open until the completion.
    pub file: Arc<OpenFile>,
    /// The fd the SQE names (the file's, or its buffered twin for writeback).
    pub fd: RawFd,
    /// Whose rights the SQE runs with.
    pub identity: Caller,
}
