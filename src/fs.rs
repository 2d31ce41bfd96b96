//! `UringFs`: the fuser `Filesystem`. Handlers are thin: each calls a `do_*` method that
//! returns `io::Result`, and `finish` turns the outcome into counters, a log line and the
//! reply's errno.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BackingId, BsdFileFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use log::{debug, error, warn};
use parking_lot::Mutex;

use crate::attr::{self, STATX_MASK};
use crate::buffer::{AlignedBuf, is_aligned};
use crate::creds::{CAP_SYS_ADMIN, Caller, CredGuard, CredSwitcher};
use crate::datapath::{CopyMethod, DataPath};
use crate::error::{ebadf, einval, enoent, errno, os};
use crate::handle::HandleTable;
use crate::inode::{
    BackingHandle, Identity, Inode, InodeKey, InodeTable, NewInode, Pinned, ROOT_ID,
};
use crate::openfile::{IoRequest, OpenFile};
use crate::options::{CacheMode, MountOptions};
use crate::stats::{Op, OpStats};
use crate::sys::{self, EMPTY};

/// Flags of every statx the daemon makes on an inode's own fd.
const STATX_EMPTY: i32 = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
/// The ids passthrough backing files are registered with (the kernel's overflow uid and gid,
/// `nobody`): with no groups and no capabilities beyond the CAP_SYS_ADMIN the registering
/// ioctl needs, they give every caller's passthrough I/O an ordinary user's rights.
const PASSTHROUGH_ID: u32 = 65534;
/// Setuid and setgid.
const SET_ID_BITS: u32 = libc::S_ISUID | libc::S_ISGID;
/// Bytes asked of `getdents64` at a time.
const DIRENT_BUF: usize = 32 * 1024;

/// An open directory stream.
#[derive(Debug)]
pub struct OpenDir {
    /// The inode it was opened on.
    nodeid: u64,
    /// A real `O_RDONLY|O_DIRECTORY` fd: `getdents64` needs one.
    fd: OwnedFd,
    /// Entries read but not yet given to the kernel; locked per readdir call.
    stream: Mutex<DirStream>,
}

/// One `getdents64` record.
#[derive(Debug, Clone)]
struct DirEntry {
    ino: u64,
    /// The offset of the entry after this one (what the kernel sends back to continue).
    next_offset: u64,
    d_type: u8,
    name: CString,
}

#[derive(Debug, Default)]
struct DirStream {
    /// Entries read ahead, in order.
    pending: VecDeque<DirEntry>,
    /// The kernel offset that `pending`'s first entry answers (0 on a fresh stream).
    offset: u64,
    /// The backing stream is at its end.
    eof: bool,
    /// Bytes of direntplus records the last readdirplus reply held when it filled up: the
    /// kernel's buffer size, which fuser does not tell (0 until a reply has filled).
    plus_reply_bytes: usize,
}

/// The passthrough filesystem.
#[derive(Debug)]
pub struct UringFs {
    /// Every inode the kernel holds.
    inodes: InodeTable,
    /// Open files.
    files: HandleTable<OpenFile>,
    /// Open directories.
    dirs: HandleTable<OpenDir>,
    /// `/proc/self/fd`, pinned at start: inodes are re-opened by fd number relative to it.
    proc_fd: OwnedFd,
    /// Switches threads to callers' credentials.
    creds: CredSwitcher,
    /// The mount options.
    opts: MountOptions,
    /// Per-operation counters.
    stats: Arc<OpStats>,
    /// Data reads/writes/syncs and readdirplus lookups: the ring pool.
    data: DataPath,
    /// Kernel passthrough asked for and granted by the kernel in `init`.
    passthrough: bool,
    /// The kernel granted `FUSE_HANDLE_KILLPRIV_V2`: it sends no kill-suid chmods, so a chmod
    /// the caller may not make is refused, with no exception.
    killpriv_v2: bool,
    /// POSIX ACLs are the kernel's to enforce (`FUSE_POSIX_ACL`), and creating requests carry
    /// the caller's umask unapplied (`FUSE_DONT_MASK`), for the backing fs to apply unless the
    /// parent has a default ACL.
    posix_acl: bool,
}

/// A new entry to reply with.
struct Entry {
    attr: FileAttr,
    generation: u64,
}

impl UringFs {
    /// A filesystem serving the directory `backing` (an `O_PATH` directory fd).
    ///
    /// # Errors
    /// When the backing directory cannot be stat'ed or the daemon's groups read.
    pub fn new(
        backing: OwnedFd,
        proc_self_fd: OwnedFd,
        proc_root: OwnedFd,
        opts: MountOptions,
        stats: Arc<OpStats>,
        data: DataPath,
        fd_budget: usize,
    ) -> io::Result<UringFs> {
        let stx = sys::statx(backing.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        let root = NewInode {
            fd: backing,
            key: key_of(&stx),
            file_type: libc::S_IFDIR,
        };
        Ok(UringFs {
            inodes: InodeTable::new(root, fd_budget)?,
            files: HandleTable::default(),
            dirs: HandleTable::default(),
            proc_fd: proc_self_fd,
            creds: CredSwitcher::new(proc_root)?,
            opts,
            stats,
            data,
            passthrough: false,
            killpriv_v2: false,
            posix_acl: false,
        })
    }

    /// The passthrough backing id for an open of `inode` whose backing file is `fd`: the one
    /// its open files share, or a new one registered from `fd`. `None` serves the open
    /// through the daemon, as its caller.
    ///
    /// The kernel keeps one backing file per inode while any passthrough file of it is open,
    /// does every passthrough read and write with the credentials captured at registration,
    /// and refuses a non-passthrough open of the inode meanwhile (EIO). So one backing file
    /// serves every caller, and it is registered with credentials that give no caller more
    /// than an ordinary user's rights: `nobody`, no groups, no capabilities that matter to a
    /// write. That is exact for every caller without capabilities; a capable caller (root)
    /// gets less than natively on passthrough files (see the README). Setuid and setgid
    /// files, where a capable writer keeps the bits natively, are served through the daemon
    /// with direct I/O when no backing file is live, so that a later passthrough open of the
    /// same inode is still allowed (only cached-mode opens block one).
    fn backing_for(
        &self,
        inode: &Inode,
        fd: BorrowedFd<'_>,
        register: impl FnOnce(BorrowedFd<'_>) -> io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        if !self.passthrough || inode.file_type != libc::S_IFREG {
            return None;
        }
        let mut slot = inode.backing.lock();
        if let Some(id) = slot.upgrade() {
            return Some(id);
        }
        match sys::statx(fd, EMPTY, libc::AT_EMPTY_PATH, libc::STATX_MODE) {
            Ok(stx) if u32::from(stx.stx_mode) & SET_ID_BITS == 0 => {}
            Ok(_) => return None,
            Err(err) => {
                warn!("statx of inode {} at open: {err}", inode.nodeid);
                return None;
            }
        }
        let nobody = Caller {
            uid: PASSTHROUGH_ID,
            gid: PASSTHROUGH_ID,
            groups: Vec::new(),
            caps: CAP_SYS_ADMIN,
        };
        let registered = self.creds.enter(&nobody).and_then(|_nobody| register(fd));
        match registered {
            Ok(id) => {
                let id = Arc::new(id);
                *slot = Arc::downgrade(&id);
                Some(id)
            }
            Err(err) => {
                warn!(
                    "passthrough refused for inode {}: {err}; serving it through the daemon",
                    inode.nodeid
                );
                None
            }
        }
    }

    /// Runs a data request on `file` with the credentials `IoRequest` gives it (an SQE carries
    /// its submitter's).
    fn io_as(
        &self,
        req: &Request,
        file: &OpenFile,
        kill_suidgid: bool,
    ) -> io::Result<CredGuard<'_>> {
        let creds = file.io_creds(
            IoRequest {
                uid: req.uid(),
                gid: req.gid(),
                pid: req.pid(),
                kill_suidgid,
            },
            self.creds.daemon_caps(),
        );
        self.creds.enter_io(creds.uid, creds.gid, creds.caps)
    }

    /// The attribute and entry TTL of `attr`. A setuid or setgid file is never cached: a
    /// write, truncate or chown by another process clears those bits in BACKING without the
    /// kernel seeing a new mode, and the kernel decides exec's setuid and its permission
    /// checks from the cached one.
    fn ttl_of(&self, attr: &FileAttr) -> Duration {
        if attr.kind == fuser::FileType::RegularFile && u32::from(attr.perm) & SET_ID_BITS != 0 {
            Duration::ZERO
        } else {
            self.ttl()
        }
    }

    fn ttl(&self) -> Duration {
        if self.opts.default_permissions {
            self.opts.cache.ttl()
        } else {
            // Without default_permissions the kernel checks no search permission on a cached
            // dentry, so one user's lookup would let another walk past a directory it may not
            // search. Uncached, every walk revalidates by a LOOKUP made as the walker.
            Duration::ZERO
        }
    }

    /// The open flags of a file served through the daemon. With passthrough on, that is a
    /// setuid/setgid file (see `backing_for`), opened for direct I/O: a cached-mode open
    /// would make the kernel refuse passthrough opens of the inode until it closes.
    fn daemon_open_flags(&self) -> FopenFlags {
        if self.passthrough {
            return FopenFlags::FOPEN_DIRECT_IO;
        }
        match self.opts.cache {
            CacheMode::None => FopenFlags::FOPEN_DIRECT_IO,
            CacheMode::Auto => FopenFlags::empty(),
            CacheMode::Always => FopenFlags::FOPEN_KEEP_CACHE,
        }
    }

    /// Counts and logs the outcome of `op` and turns an error into its errno.
    fn finish<T>(
        &self,
        op: Op,
        ino: u64,
        started: Instant,
        res: io::Result<T>,
    ) -> Result<T, Errno> {
        self.stats.record(op, started, res.is_err());
        res.map_err(|err| {
            match err.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE) => error!("{} ino={ino}: {err}", op.name()),
                Some(_) => debug!("{} ino={ino}: {err}", op.name()),
                None => warn!("{} ino={ino}: {err}", op.name()),
            }
            errno(&err)
        })
    }

    /// Answers a request whose reply is empty.
    fn reply_empty(
        &self,
        op: Op,
        ino: u64,
        started: Instant,
        res: io::Result<()>,
        reply: ReplyEmpty,
    ) {
        match self.finish(op, ino, started, res) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Answers a request that made or found an entry (one more lookup for the kernel).
    fn reply_entry(
        &self,
        op: Op,
        ino: u64,
        started: Instant,
        res: io::Result<Entry>,
        reply: ReplyEntry,
    ) {
        match self.finish(op, ino, started, res) {
            Ok(e) => reply.entry(&self.ttl_of(&e.attr), &e.attr, Generation(e.generation)),
            Err(e) => reply.error(e),
        }
    }

    /// The inode `nodeid` with its fd open for this request. Runs before the request takes
    /// its caller's credentials: reopening an fd the LRU closed needs the daemon's.
    fn inode(&self, nodeid: u64) -> io::Result<Pinned> {
        let inode = self.inodes.get(nodeid).ok_or_else(enoent)?;
        self.inodes.pin(inode)
    }

    fn file(&self, nodeid: u64, fh: FileHandle) -> io::Result<Arc<OpenFile>> {
        let file = self.files.get(fh.0).ok_or_else(ebadf)?;
        if file.nodeid != nodeid {
            return Err(ebadf());
        }
        Ok(file)
    }

    fn dir(&self, nodeid: u64, fh: FileHandle) -> io::Result<Arc<OpenDir>> {
        let dir = self.dirs.get(fh.0).ok_or_else(ebadf)?;
        if dir.nodeid != nodeid {
            return Err(ebadf());
        }
        Ok(dir)
    }

    /// The caller of `req`, with its groups and capabilities.
    fn caller(&self, req: &Request) -> Caller {
        self.creds.caller(req.uid(), req.gid(), req.pid())
    }

    /// Runs the rest of the request as its caller (fsuid, fsgid, groups, capabilities).
    fn as_caller(&self, req: &Request) -> io::Result<CredGuard<'_>> {
        self.creds.enter(&self.caller(req))
    }

    /// Re-opens `inode` for I/O through `/proc/self/fd/N`. The magic link skips the path
    /// walk, so this must run as the caller: the open itself then checks the file's mode.
    fn reopen(&self, inode: &Pinned, flags: i32) -> io::Result<OwnedFd> {
        let name = sys::fd_name(inode.fd());
        sys::openat(self.proc_fd.as_fd(), &name, flags & !libc::O_NOFOLLOW, 0)
    }

    /// Takes a freshly opened `O_PATH` fd and its statx into the table (one more lookup).
    fn adopt(&self, fd: OwnedFd, stx: &libc::statx) -> Entry {
        let new = NewInode {
            fd,
            key: key_of(stx),
            file_type: u32::from(stx.stx_mode) & libc::S_IFMT,
        };
        let inode = self
            .inodes
            .add_lookup(new, |new| identity_of(new.fd.as_fd()));
        self.stats.set_live_inodes(self.inodes.inode_count());
        Entry {
            attr: attr::to_file_attr(inode.nodeid, stx),
            generation: inode.generation,
        }
    }

    /// Looks `name` up in `parent`: one `openat(O_PATH|O_NOFOLLOW)`, then a statx of the fd
    /// it gave, so the attributes are those of the very file the fd pins.
    fn lookup_at(&self, parent: &Pinned, name: &CStr) -> io::Result<Entry> {
        let fd = sys::openat(parent.fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(self.adopt(fd, &stx))
    }

    fn do_lookup(&self, req: &Request, parent: u64, name: &OsStr) -> io::Result<Entry> {
        let parent = self.inode(parent)?;
        let bytes = name.as_bytes();
        if bytes == b"." || (bytes == b".." && parent.nodeid == ROOT_ID) {
            // The kernel resolves these itself; both name `parent`, and BACKING is never left.
            let stx = sys::statx(parent.fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
            let fd = self.reopen(&parent, libc::O_PATH)?;
            return Ok(self.adopt(fd, &stx));
        }
        let name = lookup_name(name)?;
        let _caller = self.as_caller(req)?;
        self.lookup_at(&parent, &name)
    }

    fn do_getattr(&self, ino: u64) -> io::Result<FileAttr> {
        let inode = self.inode(ino)?;
        let stx = sys::statx(inode.fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(attr::to_file_attr(inode.stat_ino(), &stx))
    }

    #[allow(clippy::too_many_arguments)]
    fn do_setattr(
        &self,
        req: &Request,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> io::Result<FileAttr> {
        let inode = self.inode(ino)?;
        let mut caller = self.as_caller(req)?;
        if let Some(mode) = mode {
            let perm = mode & 0o7777;
            match sys::fchmod_empty(inode.fd(), perm) {
                Err(err) if err.raw_os_error() == Some(libc::EPERM) && !self.killpriv_v2 => {
                    // A kernel without KILLPRIV_V2 sends its kill-suid on write/truncate/chown
                    // by a caller that may not chmod as a chmod: natively no permission check
                    // applies to it, so none does here (as the daemon).
                    drop(caller);
                    let current = sys::statx(inode.fd(), EMPTY, STATX_EMPTY, libc::STATX_MODE)?;
                    if !only_drops_set_id_bits(u32::from(current.stx_mode) & 0o7777, perm) {
                        return Err(err);
                    }
                    sys::fchmod_empty(inode.fd(), perm)?;
                    caller = self.as_caller(req)?;
                }
                other => other?,
            }
        }
        let _caller = caller;
        if uid.is_some() || gid.is_some() {
            sys::fchown_empty(inode.fd(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX))?;
        }
        if let Some(size) = size {
            match fh {
                Some(fh) => sys::ftruncate(self.file(ino, fh)?.fd.as_fd(), size)?,
                None => {
                    match inode.file_type {
                        libc::S_IFREG => {}
                        libc::S_IFDIR => return Err(os(libc::EISDIR)),
                        _ => return Err(einval()),
                    }
                    let fd = self.reopen(&inode, libc::O_WRONLY | libc::O_NONBLOCK)?;
                    sys::ftruncate(fd.as_fd(), size)?;
                }
            }
        }
        if atime.is_some() || mtime.is_some() {
            sys::utimens_empty(inode.fd(), &[timespec(atime), timespec(mtime)])?;
        }
        let stx = sys::statx(inode.fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(attr::to_file_attr(inode.stat_ino(), &stx))
    }

    fn do_readlink(&self, ino: u64) -> io::Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        sys::readlink_empty(inode.fd())
    }

    /// Makes an entry with `make(parent_fd, name)` as the caller (with the caller's `umask`),
    /// then looks it up.
    fn make_entry(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        umask: u32,
        make: impl FnOnce(BorrowedFd<'_>, &CStr) -> io::Result<()>,
    ) -> io::Result<Entry> {
        let parent = self.inode(parent)?;
        let name = entry_name(name)?;
        let _caller = self.as_caller(req)?;
        self.with_caller_umask(umask, || make(parent.fd(), &name))?;
        self.lookup_at(&parent, &name)
    }

    /// Runs a creating syscall under the caller's umask, when the kernel left it to us
    /// (POSIX ACLs): the backing fs then applies it, or the parent's default ACL instead, as
    /// natively. Each worker gets its own umask once (`unshare(CLONE_FS)`).
    fn with_caller_umask<T>(
        &self,
        umask: u32,
        create: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        if !self.posix_acl {
            return create();
        }
        thread_local! {
            static OWN_UMASK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if !OWN_UMASK.get() {
            sys::unshare_fs()?;
            OWN_UMASK.set(true);
        }
        sys::umask(umask & 0o777);
        let res = create();
        sys::umask(0);
        res
    }

    fn do_link(
        &self,
        req: &Request,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
    ) -> io::Result<Entry> {
        let inode = self.inode(ino)?;
        let source = sys::fd_name(inode.fd());
        // A link creates no mode: no umask applies.
        self.make_entry(req, newparent, newname, 0, |dir, name| {
            // Through the magic link: `AT_EMPTY_PATH` would need CAP_DAC_READ_SEARCH,
            // which a caller's fsuid does not carry.
            sys::linkat(
                self.proc_fd.as_fd(),
                &source,
                dir,
                name,
                libc::AT_SYMLINK_FOLLOW,
            )
        })
    }

    fn do_remove(&self, req: &Request, parent: u64, name: &OsStr, flags: i32) -> io::Result<()> {
        let parent = self.inode(parent)?;
        let name = entry_name(name)?;
        let _caller = self.as_caller(req)?;
        sys::unlinkat(parent.fd(), &name, flags)
    }

    #[allow(clippy::too_many_arguments)]
    fn do_rename(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> io::Result<()> {
        let olddir = self.inode(parent)?;
        let newdir = self.inode(newparent)?;
        let oldname = entry_name(name)?;
        let newname = entry_name(newname)?;
        let _caller = self.as_caller(req)?;
        sys::renameat2(olddir.fd(), &oldname, newdir.fd(), &newname, flags.bits())
    }

    fn do_open(
        &self,
        req: &Request,
        ino: u64,
        flags: i32,
    ) -> io::Result<(Pinned, OwnedFd, Caller)> {
        let inode = self.inode(ino)?;
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY);
        let caller = self.caller(req);
        let fd = {
            let _caller = self.creds.enter(&caller)?;
            self.reopen(&inode, flags)?
        };
        Ok((inode, fd, caller))
    }

    #[allow(clippy::too_many_arguments)]
    fn do_create(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> io::Result<(Entry, OwnedFd, Caller)> {
        let parent_inode = self.inode(parent)?;
        let name = entry_name(name)?;
        let flags = (flags & !libc::O_NOCTTY) | libc::O_CREAT | libc::O_NOFOLLOW;
        let caller = self.caller(req);
        let fd = {
            let _caller = self.creds.enter(&caller)?;
            self.with_caller_umask(umask, || sys::openat(parent_inode.fd(), &name, flags, mode))?
        };
        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        // The inode's own O_PATH fd comes from the open file, not from the name again,
        // which someone may have replaced meanwhile.
        let path_fd = sys::openat(
            self.proc_fd.as_fd(),
            &sys::fd_name(fd.as_fd()),
            libc::O_PATH,
            0,
        )?;
        Ok((self.adopt(path_fd, &stx), fd, caller))
    }

    fn do_read(
        &self,
        req: &Request,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let file = self.file(ino, fh)?;
        let _caller = self.io_as(req, &file, false)?;
        self.data.read_at(file.fd.as_fd(), buf, offset)
    }

    fn do_write(
        &self,
        req: &Request,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        flags: WriteFlags,
    ) -> io::Result<u32> {
        let file = self.file(ino, fh)?;
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

    /// A close of the file's descriptor reports the errors the backing fs deferred to it
    /// (write-back failures on NFS or FUSE, quota on some), as close(2) would natively; the
    /// file itself stays open until RELEASE, so a duplicate is what gets closed.
    fn do_flush(&self, req: &Request, ino: u64, fh: FileHandle) -> io::Result<()> {
        let file = self.file(ino, fh)?;
        let _caller = self.io_as(req, &file, false)?;
        sys::close(sys::dup(file.fd.as_fd())?)
    }

    fn do_opendir(&self, req: &Request, ino: u64) -> io::Result<u64> {
        let inode = self.inode(ino)?;
        let fd = {
            let _caller = self.as_caller(req)?;
            self.reopen(&inode, libc::O_RDONLY | libc::O_DIRECTORY)?
        };
        Ok(self.dirs.insert(OpenDir {
            nodeid: ino,
            fd,
            stream: Mutex::new(DirStream::default()),
        }))
    }

    /// Moves the stream to the kernel's `offset`, unless it is already there (the usual
    /// case: the kernel continues where the last reply ended).
    fn seek_dir(dir: &OpenDir, stream: &mut DirStream, offset: u64) -> io::Result<()> {
        if stream.offset != offset {
            let offset_i = i64::try_from(offset).map_err(|_| einval())?;
            sys::lseek(dir.fd.as_fd(), offset_i, libc::SEEK_SET)?;
            stream.pending.clear();
            stream.offset = offset;
            stream.eof = false;
        }
        Ok(())
    }

    /// Makes sure an entry is pending unless the directory is at its end.
    fn fill_pending(dir: &OpenDir, stream: &mut DirStream) -> io::Result<()> {
        if stream.pending.is_empty() && !stream.eof {
            let mut buf = vec![0u8; DIRENT_BUF];
            let len = sys::getdents64(dir.fd.as_fd(), &mut buf)?;
            if len == 0 {
                stream.eof = true;
            }
            stream
                .pending
                .extend(parse_dirents(&buf[..len.min(buf.len())]));
        }
        Ok(())
    }

    fn do_readdir(
        &self,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> io::Result<()> {
        let dir = self.dir(ino, fh)?;
        let mut stream = dir.stream.lock();
        Self::seek_dir(&dir, &mut stream, offset)?;
        let mut added = false;
        loop {
            if let Err(err) = Self::fill_pending(&dir, &mut stream) {
                // What was already added stands; the next call meets the error again.
                return if added { Ok(()) } else { Err(err) };
            }
            let Some(entry) = stream.pending.front() else {
                return Ok(());
            };
            let kind = attr::dirent_type(entry.d_type);
            let full = reply.add(
                INodeNo(entry.ino),
                entry.next_offset,
                kind,
                OsStr::from_bytes(entry.name.as_bytes()),
            );
            if full {
                return Ok(());
            }
            added = true;
            let next = entry.next_offset;
            stream.pending.pop_front();
            stream.offset = next;
        }
    }

    /// Looks up a reply's worth of `names` in `parent` as the caller: one OPENAT batch and one
    /// STATX batch on the ring. A name the caller may not look up (a directory it can read
    /// but not search) is looked up again as the daemon: its entry must still be listed, as
    /// getdents lists it natively, and the kernel hands its attributes to nobody who could not
    /// have searched the directory (default_permissions checks the walk; without it entries are
    /// not cached and every walk looks up as the walker).
    fn readdirplus_lookups(
        &self,
        req: &Request,
        parent: &Pinned,
        names: &[&CStr],
    ) -> io::Result<Vec<io::Result<(OwnedFd, libc::statx)>>> {
        let mut found = {
            let _caller = self.as_caller(req)?;
            self.data.lookup_batch(parent.fd(), names)
        };
        for (slot, name) in found.iter_mut().zip(names) {
            let denied = matches!(slot, Err(e) if e.raw_os_error() == Some(libc::EACCES));
            if denied {
                *slot = sys::openat(parent.fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                    .and_then(|fd| {
                        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
                        Ok((fd, stx))
                    });
            }
        }
        Ok(found)
    }

    fn do_readdirplus(
        &self,
        req: &Request,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        reply: &mut ReplyDirectoryPlus,
    ) -> io::Result<()> {
        let dir = self.dir(ino, fh)?;
        let parent = self.inode(ino)?;
        let mut stream = dir.stream.lock();
        let ttl = self.ttl();
        Self::seek_dir(&dir, &mut stream, offset)?;
        // Once an entry is in the reply its lookup is the kernel's: a later error must not
        // throw the reply (and those lookups) away.
        let mut added = false;
        // Batch by what the last full reply held; without one, start at a page and double
        // while the reply keeps taking more. After the learnt size, probe with one entry: the
        // reply is most likely full by then.
        let mut used = 0;
        let learnt = stream.plus_reply_bytes;
        let mut probed = false;
        let mut batch_bytes = if learnt == 0 {
            READDIRPLUS_FIRST_GUESS
        } else {
            learnt
        };
        loop {
            let looked_up = Self::fill_pending(&dir, &mut stream).and_then(|()| {
                let batch = reply_batch(&stream.pending, batch_bytes);
                let names: Vec<&CStr> = batch
                    .iter()
                    .filter(|e| !is_dot_or_dotdot(e.name.as_bytes()))
                    .map(|e| e.name.as_c_str())
                    .collect();
                let found = self.readdirplus_lookups(req, &parent, &names)?;
                Ok((batch, found))
            });
            let (batch, found) = match looked_up {
                Ok(done) => done,
                Err(err) => return if added { Ok(()) } else { Err(err) },
            };
            if batch.is_empty() {
                return Ok(());
            }
            let mut found = found.into_iter();
            for entry in &batch {
                let name = OsStr::from_bytes(entry.name.as_bytes());
                let full = if is_dot_or_dotdot(entry.name.as_bytes()) {
                    // The kernel makes no dentry for these and takes no lookup count.
                    let attr = dot_attr(entry);
                    reply.add(
                        INodeNo(entry.ino),
                        entry.next_offset,
                        name,
                        &ttl,
                        &attr,
                        Generation(0),
                    )
                } else {
                    match found.next() {
                        Some(Ok((fd, stx))) => {
                            let e = self.adopt(fd, &stx);
                            let full = reply.add(
                                e.attr.ino,
                                entry.next_offset,
                                name,
                                &self.ttl_of(&e.attr),
                                &e.attr,
                                Generation(e.generation),
                            );
                            if full {
                                // Not sent: the kernel never saw this lookup.
                                self.inodes.forget(e.attr.ino.0, 1);
                            }
                            full
                        }
                        // Gone since getdents: skip it, as a racing unlink would.
                        Some(Err(err)) if err.raw_os_error() == Some(libc::ENOENT) => false,
                        // Anything else (EMFILE, EIO...) fails the listing rather than
                        // silently shortening it; what is already in the reply stands.
                        Some(Err(err)) => {
                            if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                                error!("readdirplus {:?}: {err}", entry.name);
                            }
                            return if added { Ok(()) } else { Err(err) };
                        }
                        None => false,
                    }
                };
                if full {
                    // The fds looked up for entries after this one just close.
                    stream.plus_reply_bytes = used;
                    return Ok(());
                }
                added = true;
                used += direntplus_size(entry);
                stream.pending.pop_front();
                stream.offset = entry.next_offset;
            }
            batch_bytes = if learnt == 0 || probed {
                used.clamp(READDIRPLUS_FIRST_GUESS, 1 << 20)
            } else if used < learnt {
                learnt - used
            } else {
                probed = true;
                1
            };
        }
    }

    fn do_statfs(&self, ino: u64) -> io::Result<libc::statvfs> {
        let inode = self.inode(ino)?;
        sys::fstatvfs(inode.fd())
    }

    fn do_setxattr(
        &self,
        req: &Request,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> io::Result<()> {
        let inode = self.inode(ino)?;
        let name = sys::cstring(name)?;
        let _caller = self.as_caller(req)?;
        sys::setxattrat(
            self.proc_fd.as_fd(),
            &sys::fd_name(inode.fd()),
            &name,
            value,
            flags,
        )
    }

    fn do_getxattr(
        &self,
        req: &Request,
        ino: u64,
        name: &OsStr,
        size: u32,
    ) -> io::Result<XattrReply> {
        let inode = self.inode(ino)?;
        let name = sys::cstring(name)?;
        let path = sys::fd_name(inode.fd());
        let _caller = self.as_caller(req)?;
        let mut buf = vec![0u8; size as usize];
        let len = sys::getxattrat(self.proc_fd.as_fd(), &path, &name, &mut buf)?;
        Ok(xattr_reply(buf, len, size))
    }

    fn do_listxattr(&self, req: &Request, ino: u64, size: u32) -> io::Result<XattrReply> {
        let inode = self.inode(ino)?;
        let path = sys::fd_name(inode.fd());
        let _caller = self.as_caller(req)?;
        let mut buf = vec![0u8; size as usize];
        let len = sys::listxattrat(self.proc_fd.as_fd(), &path, &mut buf)?;
        Ok(xattr_reply(buf, len, size))
    }

    fn do_removexattr(&self, req: &Request, ino: u64, name: &OsStr) -> io::Result<()> {
        let inode = self.inode(ino)?;
        // The kernel removes file capabilities itself when a write, truncate or chown kills
        // privileges (security_inode_killpriv), by a REMOVEXATTR in the writer's name; natively
        // that removal is internal and checks nothing. An explicit removal has already passed
        // the VFS's own check of the caller (CAP_SETFCAP, cap_inode_removexattr) by the time
        // it gets here. So this one name is removed as the daemon, whoever asks.
        let _caller = if name.as_bytes() == b"security.capability" {
            None
        } else {
            Some(self.as_caller(req)?)
        };
        let name = sys::cstring(name)?;
        sys::removexattrat(self.proc_fd.as_fd(), &sys::fd_name(inode.fd()), &name)
    }

    fn do_access(&self, req: &Request, ino: u64, mask: i32) -> io::Result<()> {
        let inode = self.inode(ino)?;
        let _caller = self.as_caller(req)?;
        sys::faccessat2(
            self.proc_fd.as_fd(),
            &sys::fd_name(inode.fd()),
            mask,
            libc::AT_EACCESS,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn do_copy_file_range(
        &self,
        req: &Request,
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
}

/// What a getxattr/listxattr reply is: a size (the probe) or the data.
enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

fn xattr_reply(mut buf: Vec<u8>, len: usize, size: u32) -> XattrReply {
    if size == 0 {
        XattrReply::Size(u32::try_from(len).unwrap_or(u32::MAX))
    } else {
        buf.truncate(len);
        XattrReply::Data(buf)
    }
}

fn key_of(stx: &libc::statx) -> InodeKey {
    InodeKey {
        dev: attr::device(stx),
        ino: stx.stx_ino,
    }
}

/// The inode's file handle (to reopen it after the fd LRU closed its fd) and the generation
/// in it (ext4 and most local fs: type 1 or 2, `{u32 ino, u32 gen}`; 0 for other shapes).
/// One `name_to_handle_at`, made only for inodes new to the table.
fn identity_of(fd: BorrowedFd<'_>) -> Identity {
    match sys::name_to_handle_empty(fd) {
        Ok((kind, bytes)) => {
            let generation = match (kind, bytes.get(4..8)) {
                (1 | 2, Some(&[a, b, c, d])) => u64::from(u32::from_ne_bytes([a, b, c, d])),
                _ => 0,
            };
            Identity {
                handle: Some(BackingHandle { kind, bytes }),
                generation,
            }
        }
        Err(_) => Identity::default(),
    }
}

/// Whether `new` is `old` minus some of its setuid/setgid bits and nothing else: the shape of
/// the kernel's kill-suid setattr.
fn only_drops_set_id_bits(old: u32, new: u32) -> bool {
    let set_id = libc::S_ISUID | libc::S_ISGID;
    let dropped = old & !new;
    new != old && new & !old == 0 && dropped & !set_id == 0
}

fn timespec(time: Option<TimeOrNow>) -> libc::timespec {
    match time {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(time)) => match time.duration_since(UNIX_EPOCH) {
            Ok(d) => libc::timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(d.subsec_nanos()),
            },
            Err(before) => {
                let d = before.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => libc::timespec {
                        tv_sec: secs,
                        tv_nsec: 0,
                    },
                    n => libc::timespec {
                        tv_sec: secs - 1,
                        tv_nsec: i64::from(1_000_000_000 - n),
                    },
                }
            }
        },
    }
}

fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// A name to look up: one path component, never containing `/`.
fn lookup_name(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') {
        return Err(einval());
    }
    sys::cstring(name)
}

/// A name where an entry is made, removed or renamed: `.` and `..` never reach a syscall.
fn entry_name(name: &OsStr) -> io::Result<CString> {
    if is_dot_or_dotdot(name.as_bytes()) {
        return Err(einval());
    }
    lookup_name(name)
}

thread_local! {
    /// Each worker's read buffer, reused: a fresh zeroed one per READ cost a memset of the
    /// whole request. Only the bytes a read filled are ever sent.
    static READ_BUFFER: std::cell::RefCell<AlignedBuf> =
        std::cell::RefCell::new(AlignedBuf::zeroed(0));
}

/// The first guess at the kernel's readdirplus buffer: one page, its size on older kernels
/// (6.x sizes it from the reader's getdents buffer, often 32 KiB). A batch past the buffer
/// would look up entries only to forget them again.
const READDIRPLUS_FIRST_GUESS: usize = 4096;

/// The bytes one entry takes in a readdirplus reply: `fuse_entry_out` (128 bytes) plus
/// `fuse_dirent` (24 bytes and the name, padded to 8).
fn direntplus_size(entry: &DirEntry) -> usize {
    (152 + entry.name.as_bytes().len()).next_multiple_of(8)
}

/// The leading pending entries that fit in `budget` bytes (at least one).
fn reply_batch(pending: &VecDeque<DirEntry>, budget: usize) -> Vec<DirEntry> {
    let mut used = 0;
    let fits = pending
        .iter()
        .take_while(|e| {
            used += direntplus_size(e);
            used <= budget
        })
        .count();
    pending.iter().take(fits.max(1)).cloned().collect()
}

/// Attributes for a `.`/`..` readdirplus entry; the kernel only uses the type.
fn dot_attr(entry: &DirEntry) -> FileAttr {
    FileAttr {
        ino: INodeNo(entry.ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: fuser::FileType::Directory,
        perm: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The records of a `getdents64` buffer; a malformed record ends the list.
fn parse_dirents(buf: &[u8]) -> Vec<DirEntry> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const HEADER: usize = 19;
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos + HEADER <= buf.len() {
        let rec = &buf[pos..];
        let ino = u64::from_ne_bytes(rec[0..8].try_into().unwrap_or([0; 8]));
        let next_offset = u64::from_ne_bytes(rec[8..16].try_into().unwrap_or([0; 8]));
        let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
        let d_type = rec[18];
        if reclen < HEADER || reclen > rec.len() {
            break;
        }
        let name_bytes = &rec[HEADER..reclen];
        let name_len = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_bytes.len());
        if let Ok(name) = CString::new(&name_bytes[..name_len]) {
            entries.push(DirEntry {
                ino,
                next_offset,
                d_type,
                name,
            });
        }
        pos += reclen;
    }
    entries
}

impl Filesystem for UringFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let mut wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            // The backing fs clears setuid/setgid itself: writes, truncates and chowns run
            // with the caller's fsuid, which carries no CAP_FSETID. Without this the kernel
            // asks for security.capability before every write.
            | InitFlags::FUSE_HANDLE_KILLPRIV_V2
            | InitFlags::FUSE_MAX_PAGES;
        // Not FUSE_ATOMIC_O_TRUNC: with it the daemon truncates inside vfs_open, before the
        // VFS checks deny-write (handle_truncate), so open(O_TRUNC) of a running executable
        // would empty it and then fail with ETXTBSY. Without it the kernel strips O_TRUNC and
        // truncates by setattr only after that check, as natively.
        if self.opts.cache == CacheMode::None || self.opts.passthrough {
            // Direct I/O must still allow mmap (fsx's mapread/mapwrite, executables): with
            // cache=none every file, with passthrough the setuid/setgid ones, is direct.
            wanted |= InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        }
        if self.opts.cache == CacheMode::Always {
            wanted |= InitFlags::FUSE_CACHE_SYMLINKS;
        }
        for flag in wanted.iter() {
            if let Err(missing) = config.add_capabilities(flag) {
                warn!("kernel lacks FUSE capability {missing:?}");
            }
        }
        self.killpriv_v2 = config
            .capabilities()
            .contains(InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        // POSIX ACLs (only with default_permissions, which FUSE_POSIX_ACL implies): the kernel
        // enforces and caches them; FUSE_DONT_MASK leaves the umask to the backing fs, which
        // skips it under a default ACL, as natively.
        if self.opts.default_permissions {
            let acl = InitFlags::FUSE_POSIX_ACL | InitFlags::FUSE_DONT_MASK;
            match config.add_capabilities(acl) {
                Ok(()) => self.posix_acl = true,
                Err(missing) => warn!("kernel lacks {missing:?}: POSIX ACLs are not enforced"),
            }
        }
        if self.opts.passthrough {
            // Passthrough needs the capability and a stacking depth of at least 1 (0, the
            // default, disables it).
            let granted = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if granted {
                self.passthrough = true;
            } else {
                error!("kernel refuses FUSE passthrough; reads and writes go through the daemon");
            }
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let t = Instant::now();
        let res = self.do_lookup(req, parent.0, name);
        self.reply_entry(Op::Lookup, parent.0, t, res, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let t = Instant::now();
        self.inodes.forget(ino.0, nlookup);
        self.stats.set_live_inodes(self.inodes.inode_count());
        self.stats.record(Op::Forget, t, false);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let t = Instant::now();
        match self.finish(Op::GetAttr, ino.0, t, self.do_getattr(ino.0)) {
            Ok(attr) => reply.attr(&self.ttl_of(&attr), &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let t = Instant::now();
        let res = self.do_setattr(req, ino.0, mode, uid, gid, size, atime, mtime, fh);
        match self.finish(Op::SetAttr, ino.0, t, res) {
            Ok(attr) => reply.attr(&self.ttl_of(&attr), &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let t = Instant::now();
        match self.finish(Op::ReadLink, ino.0, t, self.do_readlink(ino.0)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let (major, minor) = attr::decode_dev(rdev);
        let res = self.make_entry(req, parent.0, name, umask, |dir, name| {
            sys::mknodat(dir, name, mode, sys::makedev(major, minor))
        });
        self.reply_entry(Op::MkNod, parent.0, t, res, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let res = self.make_entry(req, parent.0, name, umask, |dir, name| {
            sys::mkdirat(dir, name, mode)
        });
        self.reply_entry(Op::MkDir, parent.0, t, res, reply);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let t = Instant::now();
        match self.finish(
            Op::Unlink,
            parent.0,
            t,
            self.do_remove(req, parent.0, name, 0),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let t = Instant::now();
        let res = self.do_remove(req, parent.0, name, libc::AT_REMOVEDIR);
        self.reply_empty(Op::RmDir, parent.0, t, res, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let res = sys::cstring(target.as_os_str()).and_then(|target| {
            // Symlinks are always 0777: no umask applies.
            self.make_entry(req, parent.0, link_name, 0, |dir, name| {
                sys::symlinkat(&target, dir, name)
            })
        });
        self.reply_entry(Op::Symlink, parent.0, t, res, reply);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_rename(req, parent.0, name, newparent.0, newname, flags);
        self.reply_empty(Op::Rename, parent.0, t, res, reply);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let res = self.do_link(req, ino.0, newparent.0, newname);
        self.reply_entry(Op::Link, ino.0, t, res, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let t = Instant::now();
        let (inode, fd, caller) =
            match self.finish(Op::Open, ino.0, t, self.do_open(req, ino.0, flags.0)) {
                Ok(opened) => opened,
                Err(e) => return reply.error(e),
            };
        let backing = self.backing_for(&inode, fd.as_fd(), |fd| reply.open_backing(fd));
        let direct = flags.0 & libc::O_DIRECT != 0;
        let file = OpenFile::new(ino.0, fd, direct, caller, backing.clone());
        let fh = FileHandle(self.files.insert(file));
        match backing {
            Some(id) => {
                self.stats.record_passthrough_open();
                reply.opened_passthrough(fh, FopenFlags::empty(), &id)
            }
            None => reply.opened(fh, self.daemon_open_flags()),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let t = Instant::now();
        READ_BUFFER.with_borrow_mut(|buf| {
            buf.resize(size as usize);
            let res = self.do_read(req, ino.0, fh, offset, buf.as_mut_slice());
            match self.finish(Op::Read, ino.0, t, res) {
                Ok(len) => reply.data(buf.as_slice().get(..len).unwrap_or_default()),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let t = Instant::now();
        match self.finish(
            Op::Write,
            ino.0,
            t,
            self.do_write(req, ino.0, fh, offset, data, write_flags),
        ) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        // Locks are the kernel's (not negotiated), and data is never buffered here.
        self.reply_empty(Op::Flush, ino.0, t, self.do_flush(req, ino.0, fh), reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        // As the daemon: the close of a backing file consults no credentials, and releasing
        // the passthrough backing id needs CAP_SYS_ADMIN.
        let res = self.file(ino.0, fh).map(|_| {
            self.files.remove(fh.0);
        });
        self.reply_empty(Op::Release, ino.0, t, res, reply);
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.file(ino.0, fh).and_then(|file| {
            let _caller = self.io_as(req, &file, false)?;
            self.data.fsync(file.fd.as_fd(), datasync)
        });
        self.reply_empty(Op::Fsync, ino.0, t, res, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let t = Instant::now();
        match self.finish(Op::OpenDir, ino.0, t, self.do_opendir(req, ino.0)) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let t = Instant::now();
        let res = self.do_readdir(ino.0, fh, offset, &mut reply);
        match self.finish(Op::ReadDir, ino.0, t, res) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let t = Instant::now();
        let res = self.do_readdirplus(req, ino.0, fh, offset, &mut reply);
        match self.finish(Op::ReadDirPlus, ino.0, t, res) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.dir(ino.0, fh).map(|_| {
            self.dirs.remove(fh.0);
        });
        self.reply_empty(Op::ReleaseDir, ino.0, t, res, reply);
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self
            .dir(ino.0, fh)
            .and_then(|dir| self.data.fsync(dir.fd.as_fd(), datasync));
        self.reply_empty(Op::FsyncDir, ino.0, t, res, reply);
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let t = Instant::now();
        match self.finish(Op::StatFs, ino.0, t, self.do_statfs(ino.0)) {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                u32::try_from(st.f_bsize).unwrap_or(4096),
                u32::try_from(st.f_namemax).unwrap_or(255),
                u32::try_from(st.f_frsize).unwrap_or(4096),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_setxattr(req, ino.0, name, value, flags);
        self.reply_empty(Op::SetXattr, ino.0, t, res, reply);
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let t = Instant::now();
        let res = self.do_getxattr(req, ino.0, name, size);
        match self.finish(Op::GetXattr, ino.0, t, res) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(data)) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let t = Instant::now();
        match self.finish(Op::ListXattr, ino.0, t, self.do_listxattr(req, ino.0, size)) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(data)) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let t = Instant::now();
        match self.finish(
            Op::RemoveXattr,
            ino.0,
            t,
            self.do_removexattr(req, ino.0, name),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let t = Instant::now();
        let res = self.do_access(req, ino.0, mask.bits());
        self.reply_empty(Op::Access, ino.0, t, res, reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let t = Instant::now();
        let res = self.do_create(req, parent.0, name, mode, umask, flags);
        let (entry, fd, caller) = match self.finish(Op::Create, parent.0, t, res) {
            Ok(created) => created,
            Err(e) => return reply.error(e),
        };
        let nodeid = entry.attr.ino.0;
        let backing = self
            .inode(nodeid)
            .ok()
            .and_then(|inode| self.backing_for(&inode, fd.as_fd(), |fd| reply.open_backing(fd)));
        let direct = flags & libc::O_DIRECT != 0;
        let file = OpenFile::new(nodeid, fd, direct, caller, backing.clone());
        let fh = FileHandle(self.files.insert(file));
        let generation = Generation(entry.generation);
        if backing.is_some() {
            self.stats.record_passthrough_open();
        }
        match backing {
            Some(id) => reply.created_passthrough(
                &self.ttl_of(&entry.attr),
                &entry.attr,
                generation,
                fh,
                FopenFlags::empty(),
                &id,
            ),
            None => reply.created(
                &self.ttl_of(&entry.attr),
                &entry.attr,
                generation,
                fh,
                self.daemon_open_flags(),
            ),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.file(ino.0, fh).and_then(|file| {
            let _caller = self.io_as(req, &file, false)?;
            self.data.fallocate(file.fd.as_fd(), mode, offset, length)
        });
        self.reply_empty(Op::Fallocate, ino.0, t, res, reply);
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let t = Instant::now();
        let res = self
            .file(ino.0, fh)
            .and_then(|file| sys::lseek(file.fd.as_fd(), offset, whence));
        match self.finish(Op::Lseek, ino.0, t, res) {
            Ok(off) => reply.offset(off),
            Err(e) => reply.error(e),
        }
    }

    fn copy_file_range(
        &self,
        req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let t = Instant::now();
        let res = self.do_copy_file_range(
            req,
            ino_in.0,
            fh_in,
            offset_in,
            ino_out.0,
            fh_out,
            offset_out,
            len,
            flags.bits() as u32,
        );
        match self.finish(Op::CopyFileRange, ino_in.0, t, res) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_never_pass() {
        assert!(lookup_name(OsStr::new("a/b")).is_err());
        assert!(lookup_name(OsStr::new("")).is_err());
        assert!(entry_name(OsStr::new(".")).is_err());
        assert!(entry_name(OsStr::new("..")).is_err());
        assert!(entry_name(OsStr::new("../etc")).is_err());
        assert!(entry_name(OsStr::from_bytes(b"a\0b")).is_err());
        assert_eq!(entry_name(OsStr::new("...")).unwrap().as_bytes(), b"...");
    }

    #[test]
    fn kill_suid_shape() {
        assert!(only_drops_set_id_bits(0o4755, 0o755));
        assert!(only_drops_set_id_bits(0o6775, 0o775));
        assert!(only_drops_set_id_bits(0o6775, 0o4775));
        assert!(!only_drops_set_id_bits(0o755, 0o755));
        assert!(!only_drops_set_id_bits(0o4755, 0o700));
        assert!(!only_drops_set_id_bits(0o755, 0o4755));
    }

    #[test]
    fn times_before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(1500);
        let ts = timespec(Some(TimeOrNow::SpecificTime(t)));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (-2, 500_000_000));
        assert_eq!(timespec(None).tv_nsec, libc::UTIME_OMIT);
        assert_eq!(timespec(Some(TimeOrNow::Now)).tv_nsec, libc::UTIME_NOW);
    }

    #[test]
    fn dirents_parse_and_stop_at_garbage() {
        let mut buf = Vec::new();
        for (ino, off, name) in [(5u64, 1u64, &b"."[..]), (7, 2, b"file")] {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            let mut rec = vec![0u8; reclen];
            rec[0..8].copy_from_slice(&ino.to_ne_bytes());
            rec[8..16].copy_from_slice(&off.to_ne_bytes());
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[18] = libc::DT_REG;
            rec[19..19 + name.len()].copy_from_slice(name);
            buf.extend(rec);
        }
        buf.extend([0xff; 5]);
        let entries = parse_dirents(&buf);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].name.as_bytes(), b"file");
        assert_eq!((entries[1].ino, entries[1].next_offset), (7, 2));
    }
}
