//! Open regular files: the backing fd, who opened it, and whose credentials its I/O runs with.
//!
//! An SQE runs with the credentials of the thread that submits it, so each data request
//! switches the worker to an fsuid, fsgid and capability set first. A request from a process
//! runs as that process; the requests the kernel sends on nobody's behalf (`pid` 0: the
//! writeback of dirty shared-mmap pages, FLUSH, RELEASE) run as the opener, never as the
//! daemon's root.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use crate::fs::passthrough::BackingFile;

use crate::creds::{CAP_FSETID, Caller};
use crate::sys;

/// An open regular file.
#[derive(Debug)]
pub struct OpenFile {
    /// The inode it was opened on (a handle used with another inode is `EBADF`).
    pub nodeid: u64,
    /// The real (not `O_PATH`) backing fd.
    pub fd: OwnedFd,
    /// Opened with `O_DIRECT`: its buffers must be aligned.
    pub direct: bool,
    /// Who opened it (ids, groups and capabilities at open time).
    pub opener: Caller,
    /// For `O_DIRECT` files: the same file opened without `O_DIRECT`, made on first use, for
    /// the kernel's writeback of mapped pages, whose lengths are not block multiples.
    buffered: OnceLock<OwnedFd>,
    /// Keeps the inode's passthrough backing id registered while this file is open.
    pub backing: Option<Arc<BackingFile>>,
}

/// The credentials one data request on an open file runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoCreds<'a> {
    /// fsuid.
    pub uid: u32,
    /// fsgid.
    pub gid: u32,
    /// Supplementary groups: ext4 lets a member of its `resgid` group into the reserved
    /// blocks, so the daemon's own must never stand in for the caller's.
    pub groups: &'a [u32],
    /// Effective capabilities.
    pub caps: u64,
}

/// What the kernel says of one data request: its caller and whether the write must clear
/// setuid/setgid (`FUSE_WRITE_KILL_SUIDGID`: the writer lacks CAP_FSETID).
#[derive(Debug, Clone, Copy)]
pub struct IoRequest {
    /// `uid` of the request header.
    pub uid: u32,
    /// `gid` of the request header.
    pub gid: u32,
    /// `pid` of the request header; 0 when the kernel sends it on nobody's behalf.
    pub pid: u32,
    /// The write must drop setuid/setgid as a writer without CAP_FSETID would.
    pub kill_suidgid: bool,
}

impl OpenFile {
    /// A file `fd` of inode `nodeid`, opened by `opener`.
    pub fn new(
        nodeid: u64,
        fd: OwnedFd,
        direct: bool,
        opener: Caller,
        backing: Option<Arc<BackingFile>>,
    ) -> OpenFile {
        OpenFile {
            nodeid,
            fd,
            direct,
            opener,
            buffered: OnceLock::new(),
            backing,
        }
    }

    /// The credentials `req` runs with on this file. `root_caps` are what a root caller other
    /// than the opener is assumed to hold (the request does not say).
    ///
    /// The groups and capabilities come from the open, where the caller's status was read:
    /// reading it again per write would cost a `/proc` read per request. A request by another
    /// uid than the opener's (a shared fd) gets no groups, and root's capabilities or none.
    pub fn io_creds(&self, req: IoRequest, root_caps: u64) -> IoCreds<'_> {
        let opener = &self.opener;
        let (uid, gid, groups, caps) = if req.pid == 0 {
            (opener.uid, opener.gid, &opener.groups[..], opener.caps)
        } else if req.uid == opener.uid {
            (req.uid, req.gid, &opener.groups[..], opener.caps)
        } else if req.uid == 0 {
            (req.uid, req.gid, &[][..], root_caps)
        } else {
            (req.uid, req.gid, &[][..], 0)
        };
        let caps = if req.kill_suidgid {
            caps & !CAP_FSETID
        } else {
            caps
        };
        IoCreds {
            uid,
            gid,
            groups,
            caps,
        }
    }

    /// The fd the kernel's writeback of mapped pages goes through: without `O_DIRECT`, whose
    /// alignment rules a page at the end of the file does not meet (`msync` would fail with
    /// `EINVAL`). The twin is opened once, through the magic link of the file's own fd, as
    /// the daemon: the opener's permission was checked when the file was opened.
    ///
    /// # Errors
    /// The errno of reopening the file.
    pub fn writeback_fd(&self, proc_self_fd: BorrowedFd<'_>) -> io::Result<BorrowedFd<'_>> {
        if !self.direct {
            return Ok(self.fd.as_fd());
        }
        if let Some(fd) = self.buffered.get() {
            return Ok(fd.as_fd());
        }
        let fd = sys::openat(
            proc_self_fd,
            &sys::fd_name(self.fd.as_fd()),
            libc::O_RDWR | libc::O_CLOEXEC,
            0,
        )?;
        // A racing writeback may have set it first; its fd is as good as ours.
        Ok(self.buffered.get_or_init(|| fd).as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(opener: Caller) -> OpenFile {
        let fd = sys::open_dir_path(c"/", libc::O_PATH).expect("open /");
        OpenFile::new(2, fd, false, opener, None)
    }

    fn req(uid: u32, pid: u32, kill_suidgid: bool) -> IoRequest {
        IoRequest {
            uid,
            gid: uid,
            pid,
            kill_suidgid,
        }
    }

    #[test]
    fn writeback_runs_as_the_opener() {
        let user = Caller {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 3000],
            caps: 0,
        };
        let f = file(user);
        let creds = f.io_creds(req(0, 0, false), u64::MAX);
        assert_eq!((creds.uid, creds.gid, creds.caps), (1000, 1000, 0));
        assert_eq!(creds.groups, [1000, 3000]);
    }

    #[test]
    fn a_root_writer_without_cap_fsetid_kills_suid() {
        let root = Caller {
            uid: 0,
            gid: 0,
            groups: vec![],
            caps: u64::MAX,
        };
        let f = file(root);
        assert_eq!(f.io_creds(req(0, 7, false), 0).caps, u64::MAX);
        assert_eq!(f.io_creds(req(0, 7, true), 0).caps, !CAP_FSETID);
        // Another user writing through the same (shared) fd gets no capabilities.
        assert_eq!(f.io_creds(req(1000, 7, false), u64::MAX).caps, 0);
    }
}
