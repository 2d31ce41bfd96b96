//! Names: lookup, making entries (mknod, mkdir, symlink, link), unlink/rmdir, rename.

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering::Relaxed;

use fuser::RenameFlags;

use crate::attr::STATX_MASK;
use crate::inode::{InodeKey, Pinned, ROOT_ID};
use crate::sys::{self, EMPTY};

use super::{Ctx, Entry, STATX_EMPTY, UringFs, entry_name, key_of, lookup_name};

impl UringFs {
    /// Looks `name` up in `parent`: one `openat(O_PATH|O_NOFOLLOW)`, then a statx of the fd
    /// it gave, so the attributes are those of the very file the fd pins.
    pub(super) fn lookup_at(&self, parent: &Pinned, name: &CStr) -> io::Result<Entry> {
        let fd = sys::openat(parent.fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(self.adopt(fd, &stx))
    }

    pub(crate) fn do_lookup(&self, req: &Ctx, parent: u64, name: &OsStr) -> io::Result<Entry> {
        let bytes = name.as_bytes();
        // Only exportfs sends these (`FUSE_EXPORT_SUPPORT`): `.` names a nodeid the kernel no
        // longer holds, `..` a directory's parent.
        if self.forgotten.is_some() && bytes == b"." {
            return self.lookup_self(parent);
        }
        if self.forgotten.is_some() && bytes == b".." {
            return self.lookup_parent(parent);
        }
        let parent = self.inode(parent)?;
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

    pub(crate) fn do_readlink(&self, ino: u64) -> io::Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        sys::readlink_empty(inode.fd())
    }

    /// Makes an entry with `make(parent_fd, name)` as the caller (with the caller's `umask`),
    /// then looks it up.
    pub(crate) fn make_entry(
        &self,
        req: &Ctx,
        parent: u64,
        name: &OsStr,
        umask: u32,
        make: impl FnOnce(BorrowedFd<'_>, &CStr) -> io::Result<()>,
    ) -> io::Result<Entry> {
        let parent = self.inode(parent)?;
        let name = entry_name(name)?;
        self.settle_releases();
        let _caller = self.as_caller(req)?;
        self.with_caller_umask(umask, || make(parent.fd(), &name))?;
        self.lookup_at(&parent, &name)
    }

    /// Runs a creating syscall under the caller's umask, when the kernel left it to us
    /// (POSIX ACLs): the backing fs then applies it, or the parent's default ACL instead, as
    /// natively. Each worker gets its own umask once (`unshare(CLONE_FS)`), and keeps the
    /// last caller's until another caller's differs: every creating syscall a worker makes
    /// comes through here, and most callers share one umask, so a create costs no umask(2).
    pub(super) fn with_caller_umask<T>(
        &self,
        umask: u32,
        create: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        if !self.posix_acl.load(Relaxed) {
            return create();
        }
        thread_local! {
            /// The worker's own umask, once it has one.
            static OWN_UMASK: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
        }
        let umask = umask & 0o777;
        match OWN_UMASK.get() {
            Some(current) if current == umask => {}
            Some(_) => {
                sys::umask(umask);
                OWN_UMASK.set(Some(umask));
            }
            None => {
                sys::unshare_fs()?;
                sys::umask(umask);
                OWN_UMASK.set(Some(umask));
            }
        }
        create()
    }

    pub(crate) fn do_link(
        &self,
        req: &Ctx,
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

    pub(crate) fn do_remove(
        &self,
        req: &Ctx,
        parent: u64,
        name: &OsStr,
        flags: i32,
    ) -> io::Result<()> {
        let parent = self.inode(parent)?;
        let name = entry_name(name)?;
        let _caller = self.as_caller(req)?;
        let victim = self.identify_name(parent.fd(), &name);
        sys::unlinkat(parent.fd(), &name, flags)?;
        drop(_caller);
        self.let_go_if_unlinked(victim);
        Ok(())
    }

    /// What `name` in `dir` is, and whether it has one link only, before an unlink or a
    /// rename over it removes a link.
    fn identify_name(&self, dir: BorrowedFd<'_>, name: &CStr) -> Option<(InodeKey, bool)> {
        sys::statx(
            dir,
            name,
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_INO | libc::STATX_NLINK,
        )
        .ok()
        .map(|stx| (key_of(&stx), stx.stx_nlink <= 1))
    }

    /// After an unlink or a rename over it: the table's `O_PATH` fd of a file whose last
    /// link is gone is all that keeps it (and its blocks) in the backing fs until the
    /// kernel's FORGET arrives, some milliseconds later; natively the space is free at once.
    /// So that fd leaves the table now, unless a file of the inode is open (its getattr still
    /// reads the fd), and the releaser closes it; requests that allocate or report space
    /// wait for that first (`settle_releases`). Later uses of the inode reopen it by handle:
    /// ESTALE, as for a deleted file.
    /// (Should a link have been made meanwhile, the closed fd is one the LRU could have
    /// closed: it comes back by handle.) Not for directories: a removed directory may still
    /// be a process's working directory, whose `stat .` natively succeeds.
    fn let_go_if_unlinked(&self, victim: Option<(InodeKey, bool)>) {
        let Some((key, true)) = victim else {
            return;
        };
        let Some(inode) = self.inodes.get_by_key(&key) else {
            return;
        };
        if inode.file_type == libc::S_IFDIR || self.files.any(|f| f.nodeid == inode.nodeid) {
            return;
        }
        let Some(fd) = self.inodes.take_fd(&inode) else {
            return;
        };
        if self.passthrough.load(Relaxed) {
            // Passthrough writes reach BACKING without a request that could wait for the
            // releaser: the space must be free when the unlink returns.
            drop(fd);
        } else {
            self.releaser.close_later(fd);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_rename(
        &self,
        req: &Ctx,
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
        self.settle_releases();
        let _caller = self.as_caller(req)?;
        let exchange = flags.bits() & libc::RENAME_EXCHANGE != 0;
        let victim = (!exchange)
            .then(|| self.identify_name(newdir.fd(), &newname))
            .flatten();
        sys::renameat2(olddir.fd(), &oldname, newdir.fd(), &newname, flags.bits())?;
        drop(_caller);
        self.let_go_if_unlinked(victim);
        Ok(())
    }
}
