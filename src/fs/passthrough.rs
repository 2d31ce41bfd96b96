//! Kernel passthrough: which opens get a backing file, registered as whom, by which
//! transport.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use log::{debug, warn};

use crate::creds::{CAP_SYS_ADMIN, Caller};
use crate::inode::Inode;
use crate::sys::{self, EMPTY};

use super::{SET_ID_BITS, UringFs};

/// The ids passthrough backing files are registered with (the kernel's overflow uid and gid,
/// `nobody`): with no groups and no capabilities beyond the CAP_SYS_ADMIN the registering
/// ioctl needs, they give every caller's passthrough I/O an ordinary user's rights.
const PASSTHROUGH_ID: u32 = 65534;

/// A backing file registered for passthrough; the registration ends when it is dropped (the
/// last open file of the inode closed).
#[derive(Debug)]
pub enum BackingFile {
    /// Registered through fuser's reply, on the `/dev/fuse` transport.
    Fuser(fuser::BackingId),
    /// Registered by the io_uring transport on its own `/dev/fuse` fd.
    Ring {
        /// The kernel's backing id.
        id: u32,
        /// The connection it belongs to.
        dev: Arc<OwnedFd>,
    },
}

impl BackingFile {
    /// Registers `file` on the FUSE connection of `dev` (the io_uring transport's way).
    ///
    /// # Errors
    /// The registering ioctl's.
    pub fn register(dev: &Arc<OwnedFd>, file: BorrowedFd<'_>) -> io::Result<BackingFile> {
        let id = sys::fuse_backing_open(dev.as_fd(), file)?;
        Ok(BackingFile::Ring {
            id,
            dev: Arc::clone(dev),
        })
    }
}

impl Drop for BackingFile {
    fn drop(&mut self) {
        if let BackingFile::Ring { id, dev } = self
            && let Err(err) = sys::fuse_backing_close(dev.as_fd(), *id)
        {
            // After the connection's end the kernel has dropped them all.
            debug!("closing passthrough backing id {id}: {err}");
        }
    }
}

impl UringFs {
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
    pub(super) fn backing_for(
        &self,
        inode: &Inode,
        fd: BorrowedFd<'_>,
        register: impl FnOnce(BorrowedFd<'_>) -> io::Result<BackingFile>,
    ) -> Option<Arc<BackingFile>> {
        if !self.passthrough.load(Relaxed) || inode.file_type != libc::S_IFREG {
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
}
