//! The inodes' `O_PATH` fds within a budget: a request pins its inodes' fds (reopening by
//! file handle what the LRU closed), and each use may close the least recently used.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{BackingHandle, Inode, InodeTable, Pinned};
use crate::sys;

impl InodeTable {
    /// `inode` with its fd open, reopening it by handle if the LRU closed it.
    ///
    /// # Errors
    /// The errno of `open_by_handle_at` (`ESTALE` once the file is gone from BACKING).
    pub fn pin(&self, inode: Arc<Inode>) -> io::Result<Pinned> {
        let open = inode.fd.lock().clone();
        let fd = match open {
            Some(fd) => fd,
            None => {
                let handle = inode
                    .handle
                    .as_ref()
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::ESTALE))?;
                let reopened = match self.open_handle(handle, libc::O_PATH) {
                    Ok(fd) => Arc::new(fd),
                    Err(err) => {
                        if err.raw_os_error() == Some(libc::ESTALE) {
                            // The file is gone: its number may name a new file from now on.
                            let mut maps = self.maps.write();
                            if maps.by_key.get(&inode.key) == Some(&inode.nodeid) {
                                maps.by_key.remove(&inode.key);
                            }
                        }
                        return Err(err);
                    }
                };
                let mut slot = inode.fd.lock();
                Arc::clone(slot.get_or_insert(reopened))
            }
        };
        self.touch(&inode);
        Ok(Pinned { inode, fd })
    }

    /// Marks `inode` most recently used and closes the fds of the inodes past the budget.
    pub(super) fn touch(&self, inode: &Arc<Inode>) {
        // A request may still hold an entry FORGET removed, whose nodeid a new entry may have
        // by now: that one owns the LRU slot.
        if !inode.evictable() || inode.forgotten.load(Ordering::Relaxed) {
            return;
        }
        let victims: Vec<Weak<Inode>> = {
            let mut lru = self.lru.lock();
            lru.put(inode.nodeid, Arc::downgrade(inode));
            let excess = lru.len().saturating_sub(self.fd_budget);
            (0..excess)
                .filter_map(|_| lru.pop_lru().map(|(_, w)| w))
                .collect()
        };
        // Requests using a victim hold their own Arc to its fd: closing ours is safe.
        for victim in victims.iter().filter_map(Weak::upgrade) {
            victim.fd.lock().take();
        }
    }

    /// Takes `inode`'s fd out of the table, if the inode can be reopened by handle: for an
    /// inode whose last link is gone, so that closing it frees the file in the backing fs
    /// without waiting for the kernel's FORGET. Later uses reopen it by handle (ESTALE).
    pub fn take_fd(&self, inode: &Arc<Inode>) -> Option<Arc<OwnedFd>> {
        if !inode.evictable() {
            return None;
        }
        self.lru.lock().pop(&inode.nodeid);
        inode.fd.lock().take()
    }

    /// Opens `handle` (of a file in BACKING's fs) with `flags`.
    ///
    /// # Errors
    /// `open_by_handle_at`'s: `ESTALE` once the file is gone.
    pub fn open_handle(&self, handle: &BackingHandle, flags: i32) -> io::Result<OwnedFd> {
        sys::open_by_handle_at(self.mount_fd.as_fd(), handle.kind, &handle.bytes, flags)
    }

    /// Number of evictable inodes whose fd is open.
    #[cfg(test)]
    fn open_fds(&self) -> usize {
        self.lru.lock().len()
    }
}

/// The fd budget for a process allowed `nofile` fds: what is left after a quarter (at least
/// 512) is kept for open files, directory streams, rings and `/dev/fuse`.
pub fn fd_budget(nofile: u64) -> usize {
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    nofile.saturating_sub((nofile / 4).max(512)).max(64)
}

/// Whether an inode of BACKING's fs can be reopened by file handle: BACKING's own handle
/// opened relative to `mount_fd`. `open_by_handle_at` needs CAP_DAC_READ_SEARCH, so a daemon
/// that is not root (mounted through `fusermount3`) gets EPERM; a filesystem without
/// handles fails at `name_to_handle_at`. `Err` says why, for the log.
pub(super) fn probe_reopen_by_handle(
    root: BorrowedFd<'_>,
    mount_fd: BorrowedFd<'_>,
) -> Result<(), String> {
    let (kind, bytes) = sys::name_to_handle_empty(root)
        .map_err(|e| format!("BACKING's filesystem gives no file handles: {e}"))?;
    match sys::open_by_handle_at(mount_fd, kind, &bytes, libc::O_PATH) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            Err(format!("open_by_handle_at needs CAP_DAC_READ_SEARCH: {e}"))
        }
        Err(e) => Err(format!("open_by_handle_at: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inode::test_support::{new_inode, table_with};
    use crate::inode::{BackingHandle, Identity, InodeKey, NewInode, ROOT_ID};

    /// More inodes than the fd budget: the least recently used lose their fd and get it
    /// back by handle when next used, pointing at the same file.
    #[test]
    fn fds_past_the_budget_are_closed_and_reopened_by_handle() {
        // Reopening needs CAP_DAC_READ_SEARCH; without it the table closes no fd at all.
        if sys::geteuid() != 0 {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run this test as root"
            );
            eprintln!("SKIP: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("uringfs-lru-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir_c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let root_fd = sys::open_dir_path(&dir_c, libc::O_PATH).unwrap();
        let root_stx = sys::statx(
            root_fd.as_fd(),
            sys::EMPTY,
            libc::AT_EMPTY_PATH,
            libc::STATX_INO,
        )
        .unwrap();
        let dev = libc::makedev(root_stx.stx_dev_major, root_stx.stx_dev_minor);
        let t = InodeTable::new(
            NewInode {
                fd: root_fd,
                key: InodeKey {
                    dev,
                    ino: root_stx.stx_ino,
                },
                file_type: libc::S_IFDIR,
            },
            2,
        )
        .unwrap();
        let root = t.pin(t.get(ROOT_ID).unwrap()).unwrap();
        let mut inodes = Vec::new();
        for i in 0..3 {
            std::fs::write(dir.join(format!("f{i}")), format!("{i}")).unwrap();
            let name = std::ffi::CString::new(format!("f{i}")).unwrap();
            let fd = sys::openat(root.fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0).unwrap();
            let stx =
                sys::statx(fd.as_fd(), sys::EMPTY, libc::AT_EMPTY_PATH, libc::STATX_INO).unwrap();
            let (kind, bytes) = sys::name_to_handle_empty(fd.as_fd()).unwrap();
            let new = NewInode {
                fd,
                key: InodeKey {
                    dev,
                    ino: stx.stx_ino,
                },
                file_type: libc::S_IFREG,
            };
            inodes.push(t.add_lookup(new, |_| Identity {
                handle: Some(BackingHandle { kind, bytes }),
                generation: 0,
            }));
        }
        assert_eq!(t.open_fds(), 2);
        assert!(
            inodes[0].fd.lock().is_none(),
            "the least recently used lost its fd"
        );
        let pinned = t.pin(Arc::clone(&inodes[0])).unwrap();
        let stx = sys::statx(
            pinned.fd(),
            sys::EMPTY,
            libc::AT_EMPTY_PATH,
            libc::STATX_INO,
        )
        .unwrap();
        assert_eq!(stx.stx_ino, inodes[0].key.ino);
        assert_eq!(t.open_fds(), 2);
        assert!(
            inodes[1].fd.lock().is_none(),
            "pinning the first evicted the next oldest"
        );
        drop(pinned);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A daemon that cannot reopen by handle (not root) never closes an inode's fd, however
    /// far past the budget: a closed one could not come back (`open_by_handle_at` is EPERM).
    #[test]
    fn without_reopening_by_handle_every_inode_keeps_its_fd() {
        let t = table_with(1, false);
        let handle = |b: u8| {
            move |_: &NewInode| Identity {
                handle: Some(BackingHandle {
                    kind: 1,
                    bytes: vec![b; 8],
                }),
                generation: u64::from(b),
            }
        };
        let inodes: Vec<_> = (0..5u8)
            .map(|i| t.add_lookup(new_inode(7, 40 + u64::from(i)), handle(i)))
            .collect();
        assert_eq!(t.open_fds(), 0, "nothing is in the fd LRU");
        for inode in &inodes {
            assert!(
                inode.fd.lock().is_some(),
                "inode {} lost its fd",
                inode.nodeid
            );
            assert!(!inode.evictable());
            let pinned = t.pin(Arc::clone(inode)).expect("pin");
            drop(pinned);
        }
        assert!(inodes.iter().all(|i| i.fd.lock().is_some()));
        // The generation still comes from the handle.
        assert_eq!(inodes[3].generation, 3);
    }

    /// Run as root (CI), the probe finds that BACKING's inodes can be reopened; not as root,
    /// that they cannot.
    #[test]
    fn reopening_by_handle_needs_privileges() {
        use std::os::unix::ffi::OsStringExt;
        let dir = std::ffi::CString::new(std::env::temp_dir().into_os_string().into_vec())
            .expect("temp dir without NUL");
        let root = sys::open_dir_path(&dir, libc::O_PATH).expect("open the temp dir");
        let mount_fd = sys::open_dir_path(&dir, libc::O_RDONLY).expect("open the temp dir");
        let probe = probe_reopen_by_handle(root.as_fd(), mount_fd.as_fd());
        if sys::geteuid() == 0 {
            assert_eq!(probe, Ok(()));
        } else {
            let why = probe.expect_err("open_by_handle_at works without root");
            assert!(why.contains("CAP_DAC_READ_SEARCH"), "{why}");
        }
    }

    #[test]
    fn budget_keeps_room_for_other_fds() {
        assert_eq!(fd_budget(20_000), 15_000);
        assert_eq!(fd_budget(1024), 512);
        assert_eq!(fd_budget(100), 64);
    }
}
