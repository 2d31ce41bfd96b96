//! NFS export (`-o export`): what the kernel's exportfs needs from the daemon.
//!
//! A FUSE file handle is the nodeid and generation of an inode (fs/fuse/inode.c,
//! `fuse_encode_fh`). When the kernel no longer holds that inode, it asks the daemon to look
//! up `.` in the nodeid itself, and it finds a directory's parent by looking up `..` in it
//! (`fuse_get_dentry`, `fuse_get_parent`; only with `FUSE_EXPORT_SUPPORT`). Nodeids are the
//! backing inode numbers, so a nodeid stays meaningful after FORGET: the table keeps the
//! forgotten inode's backing file handle, and `.` reopens the file by it. A file deleted
//! since answers ESTALE, as natively.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;

use parking_lot::Mutex;

use crate::attr::STATX_MASK;
use crate::error::os;
use crate::inode::{BackingHandle, ROOT_ID};
use crate::sys::{self, EMPTY};

use super::{Entry, STATX_EMPTY, UringFs};

/// The backing file handles of the inodes FORGET dropped, by nodeid: what an exported
/// file handle the kernel no longer resolves itself is reopened by.
#[derive(Debug, Default)]
pub(crate) struct ForgottenHandles {
    handles: Mutex<HashMap<u64, BackingHandle>>,
}

impl ForgottenHandles {
    fn remember(&self, nodeid: u64, handle: BackingHandle) {
        self.handles.lock().insert(nodeid, handle);
    }

    fn get(&self, nodeid: u64) -> Option<BackingHandle> {
        self.handles.lock().get(&nodeid).cloned()
    }

    fn drop_handle(&self, nodeid: u64) {
        self.handles.lock().remove(&nodeid);
    }
}

impl UringFs {
    /// Drops `n` kernel lookups of `nodeid`; an exported mount keeps the handle of an inode
    /// that goes.
    pub(crate) fn forget_lookups(&self, nodeid: u64, n: u64) {
        let gone = self.inodes.forget(nodeid, n);
        if let (Some(forgotten), Some(inode)) = (&self.forgotten, gone)
            && let Some(handle) = inode.handle()
        {
            forgotten.remember(nodeid, handle.clone());
        }
        self.stats.set_live_inodes(self.inodes.inode_count());
    }

    /// `.` looked up in `nodeid`: the inode itself, reopened by its handle if FORGET dropped
    /// it. ESTALE for a file deleted since, even one the table still holds (its fd pins it
    /// until the kernel's FORGET arrives): natively a deleted file's handle is stale at once.
    pub(super) fn lookup_self(&self, nodeid: u64) -> io::Result<Entry> {
        let fd = match self.inodes.get(nodeid) {
            Some(inode) => {
                let pinned = self.inodes.pin(inode)?;
                self.reopen(&pinned, libc::O_PATH)?
            }
            None => {
                let forgotten = self.forgotten.as_ref().ok_or_else(estale)?;
                let handle = forgotten.get(nodeid).ok_or_else(estale)?;
                match self.inodes.open_handle(&handle, libc::O_PATH) {
                    Ok(fd) => fd,
                    Err(err) => {
                        if err.raw_os_error() == Some(libc::ESTALE) {
                            forgotten.drop_handle(nodeid);
                        }
                        return Err(err);
                    }
                }
            }
        };
        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        if stx.stx_nlink == 0 && nodeid != ROOT_ID {
            return Err(estale());
        }
        let entry = self.adopt(fd, &stx);
        if let Some(forgotten) = &self.forgotten {
            forgotten.drop_handle(nodeid);
        }
        Ok(entry)
    }

    /// `..` looked up in the directory `nodeid`: its parent, as the daemon (the kernel's
    /// exportfs reconnects a directory handle's path; no caller's search permission is
    /// involved, as natively). The root's parent is the root: BACKING is never left.
    pub(super) fn lookup_parent(&self, nodeid: u64) -> io::Result<Entry> {
        if nodeid == ROOT_ID {
            return self.lookup_self(ROOT_ID);
        }
        let dir = self.inode(nodeid)?;
        let fd = sys::openat(
            dir.fd(),
            c"..",
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY,
            0,
        )?;
        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(self.adopt(fd, &stx))
    }
}

fn estale() -> io::Error {
    os(libc::ESTALE)
}
