//! `UringFs`: the filesystem's state and what every operation shares. The operations live in
//! the submodules, one concern each (`entry`, `attrs`, `xattr`, `file`, `dir`), as `do_*`
//! methods returning `io::Result`; `handlers` is the fuser `Filesystem` impl, where each
//! request calls one and `finish` turns the outcome into counters, a log line and the errno.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use fuser::{Errno, FileAttr, FileHandle, Generation, ReplyEmpty, ReplyEntry, Request};
use log::{debug, error, warn};
use parking_lot::Mutex;

use crate::attr::{self, STATX_MASK};
use crate::creds::{Caller, CredGuard, CredSwitcher};
use crate::datapath::DataPath;
use crate::error::{ebadf, einval, enoent, errno};
use crate::handle::HandleTable;
use crate::inode::{BackingHandle, Identity, InodeKey, InodeTable, NewInode, Pinned};
use crate::openfile::OpenFile;
use crate::options::MountOptions;
use crate::stats::{Op, OpStats};
use crate::sys::{self, EMPTY};
use crate::transport::uring::queue::Prepared;
use crate::transport::uring::setup::RingPlan;

mod attrs;
pub(crate) mod dir;
mod entry;
mod export;
pub(crate) mod file;
mod fileattr;
mod fuser_replies;
mod handlers;
mod init;
pub(crate) mod locks;
pub(crate) mod passthrough;
mod releaser;
pub(crate) mod xattr;

pub use dir::OpenDir;
use dir::is_dot_or_dotdot;

/// Flags of every statx the daemon makes on an inode's own fd.
const STATX_EMPTY: i32 = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
/// Setuid and setgid.
const SET_ID_BITS: u32 = libc::S_ISUID | libc::S_ISGID;

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
    passthrough: AtomicBool,
    /// The kernel granted `FUSE_HANDLE_KILLPRIV_V2`: it sends no kill-suid chmods, so a chmod
    /// the caller may not make is refused, with no exception.
    killpriv_v2: AtomicBool,
    /// POSIX ACLs are the kernel's to enforce (`FUSE_POSIX_ACL`), and creating requests carry
    /// the caller's umask unapplied (`FUSE_DONT_MASK`), for the backing fs to apply unless the
    /// parent has a default ACL.
    posix_acl: AtomicBool,
    /// Which syscalls newer than the kernel floor this kernel has (`probe::syscalls`, probed
    /// once per process): chmod and the xattr operations use a fallback for each one missing.
    kernel: crate::probe::Syscalls,
    /// With `-o locks=forward`: the backing open file descriptions holding forwarded locks.
    locks: Mutex<crate::locks::Holders>,
    /// Sends the kernel invalidations (`/dev/fuse` notifications, for either transport); set
    /// once the session exists.
    notifier: std::sync::OnceLock<fuser::Notifier>,
    /// With `-o export`: the handles of forgotten inodes, which exported file handles name.
    forgotten: Option<export::ForgottenHandles>,
    /// Closes the last fds of unlinked files off the request's path.
    releaser: releaser::Releaser,
}

/// The attributes of a negative lookup reply: nodeid 0 tells the kernel the name does not
/// exist (fuser takes the nodeid from `ino`); nothing else is read.
fn negative_entry_attr() -> FileAttr {
    FileAttr {
        ino: fuser::INodeNo(0),
        size: 0,
        blocks: 0,
        atime: std::time::UNIX_EPOCH,
        mtime: std::time::UNIX_EPOCH,
        ctime: std::time::UNIX_EPOCH,
        crtime: std::time::UNIX_EPOCH,
        kind: fuser::FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

/// Who sent a request, as its FUSE header says: what the operations need of it, whichever
/// transport carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// The caller's fsuid.
    pub uid: u32,
    /// The caller's fsgid.
    pub gid: u32,
    /// The calling thread; 0 when the kernel sends the request on nobody's behalf.
    pub pid: u32,
}

impl From<&Request> for Ctx {
    fn from(req: &Request) -> Ctx {
        Ctx {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        }
    }
}

/// Which TTL a reply carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ttl {
    /// A lookup's: the name and its attributes.
    Entry,
    /// A getattr's or setattr's.
    Attr,
}

/// The `/dev/fuse` transport: fuser's session serves requests read from `/dev/fuse` through
/// this `Filesystem` (fs/handlers.rs), over the core it shares with any other transport. It
/// also negotiates INIT, which always comes over `/dev/fuse`, and so starts the io_uring
/// transport when the plan asks for it.
#[derive(Debug)]
pub struct DevFuse {
    core: Arc<UringFs>,
    /// The io_uring transport to prepare at INIT, if chosen at start.
    ring: Option<RingStart>,
}

/// What preparing the io_uring transport at INIT needs, and where it leaves the queues for
/// the daemon to start once the session (and its `/dev/fuse` fd) exists: fuser negotiates
/// INIT inside `Session::new`, before it hands out the fd.
#[derive(Debug)]
pub struct RingStart {
    /// Queues and depth, decided before mounting.
    pub plan: RingPlan,
    /// The prepared queues, when INIT accepted `FUSE_OVER_IO_URING`.
    pub prepared: Arc<Mutex<Option<Prepared>>>,
}

impl DevFuse {
    /// The `/dev/fuse` transport of `core`, which prepares the io_uring transport `ring` at
    /// INIT if the kernel offers it.
    pub fn new(core: Arc<UringFs>, ring: Option<RingStart>) -> DevFuse {
        DevFuse { core, ring }
    }
}

impl std::ops::Deref for DevFuse {
    type Target = UringFs;

    fn deref(&self) -> &UringFs {
        &self.core
    }
}

/// A new entry to reply with.
pub(crate) struct Entry {
    pub(crate) attr: FileAttr,
    pub(crate) generation: u64,
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
            locks: Mutex::default(),
            notifier: std::sync::OnceLock::new(),
            forgotten: opts.export.then(export::ForgottenHandles::default),
            releaser: releaser::Releaser::new(),
            opts,
            stats,
            data,
            passthrough: AtomicBool::new(false),
            killpriv_v2: AtomicBool::new(false),
            posix_acl: AtomicBool::new(false),
            kernel: crate::probe::syscalls(),
        })
    }

    /// Waits until the files this mount unlinked are freed in the backing fs: before a
    /// request that allocates space (or reports it), so that it finds the space an earlier
    /// unlink freed, as it would natively (see `releaser`).
    pub(crate) fn settle_releases(&self) {
        self.releaser.settle();
    }

    /// How long the kernel may cache a name's lookup (`entry`) or the attributes (`attr`) of
    /// `attr`'s inode. A setuid or setgid file is never cached: a write, truncate or chown by
    /// another process clears those bits in BACKING without the kernel seeing a new mode, and
    /// the kernel decides exec's setuid and its permission checks from the cached one.
    pub(crate) fn ttl_of(&self, attr: &FileAttr, ttl: Ttl) -> Duration {
        if attr.kind == fuser::FileType::RegularFile && u32::from(attr.perm) & SET_ID_BITS != 0 {
            return Duration::ZERO;
        }
        if !self.opts.default_permissions {
            // Without default_permissions the kernel checks no search permission on a cached
            // dentry, so one user's lookup would let another walk past a directory it may not
            // search. Uncached, every walk revalidates by a LOOKUP made as the walker.
            return Duration::ZERO;
        }
        match ttl {
            // fuser's entry replies carry one TTL for the name and the attributes: the shorter
            // one, so neither is cached past its timeout.
            Ttl::Entry => self.opts.entry_ttl().min(self.opts.attr_ttl()),
            Ttl::Attr => self.opts.attr_ttl(),
        }
    }

    /// With `-o noatime`, marks a freshly opened backing fd `O_NOATIME`, so reads and
    /// listings through it leave BACKING's atimes alone. Set by fcntl as the daemon (after the
    /// open made as the caller): O_NOATIME needs the file's owner or CAP_FOWNER, and a reader
    /// who is neither must not change atimes either.
    fn keep_atime(&self, fd: BorrowedFd<'_>) {
        if self.opts.noatime
            && let Err(err) = sys::add_status_flags(fd, libc::O_NOATIME)
        {
            warn!("cannot set O_NOATIME on a backing file: {err}");
        }
    }

    /// Gives the filesystem the session's notifier, once it exists.
    pub fn set_notifier(&self, notifier: fuser::Notifier) {
        let _ = self.notifier.set(notifier);
    }

    /// Tells the kernel to drop the attributes it caches for `ino`: for a change it cannot
    /// know of, such as what a failed request did after all.
    fn drop_cached_attrs(&self, ino: u64) {
        if let Some(notifier) = self.notifier.get()
            && let Err(err) = notifier.inval_inode(fuser::INodeNo(ino), -1, 0)
        {
            debug!("invalidating the attributes of inode {ino}: {err}");
        }
    }

    /// How long a name that does not exist may be cached as missing, if at all.
    pub(crate) fn negative_ttl(&self) -> Option<Duration> {
        let ttl = self.opts.negative_timeout;
        (self.opts.default_permissions && !ttl.is_zero()).then_some(ttl)
    }

    /// Counts and logs the outcome of `op` and turns an error into its errno.
    fn finish<T>(
        &self,
        op: Op,
        ino: u64,
        started: Instant,
        res: io::Result<T>,
    ) -> Result<T, Errno> {
        self.account(op, ino, started, res)
            .map_err(|err| errno(&err))
    }

    /// Counts and logs the outcome of `op`; what every transport does with every result.
    pub(crate) fn account<T>(
        &self,
        op: Op,
        ino: u64,
        started: Instant,
        res: io::Result<T>,
    ) -> io::Result<T> {
        self.stats.record(op, started, res.is_err());
        if let Err(err) = &res {
            match err.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE) => error!("{} ino={ino}: {err}", op.name()),
                Some(_) => debug!("{} ino={ino}: {err}", op.name()),
                None => warn!("{} ino={ino}: {err}", op.name()),
            }
        }
        res
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
            Ok(e) => reply.entry(
                &self.ttl_of(&e.attr, Ttl::Entry),
                &e.attr,
                Generation(e.generation),
            ),
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
    fn caller(&self, req: &Ctx) -> Caller {
        self.creds.caller(req.uid, req.gid, req.pid)
    }

    /// Runs the rest of the request as its caller (fsuid, fsgid, groups, capabilities).
    fn as_caller(&self, req: &Ctx) -> io::Result<CredGuard<'_>> {
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
}
