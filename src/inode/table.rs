//! Adding and forgetting entries: a lookup of a known file adds one to its `nlookup`, a new
//! file gets its backing number as nodeid (or a remapped one), FORGET removes it at zero.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use lru::LruCache;
use parking_lot::{Mutex, RwLock};

use super::fd_lru::{fd_budget, probe_reopen_by_handle};
use super::{Identity, Inode, InodeKey, InodeTable, Maps, NewInode, REMAP_BASE, ROOT_ID};
use crate::sys;

impl InodeTable {
    /// A table holding only the root, whose nodeid is `ROOT_ID` whatever its backing number,
    /// keeping at most `fd_budget` other inodes' fds open if inodes can be reopened by file
    /// handle, and every inode's fd otherwise. Logs which, in one line, with the fd budget
    /// that follows.
    ///
    /// # Errors
    /// When the root cannot be opened for reading (its mount fd).
    pub fn new(root: NewInode, fd_budget: usize) -> io::Result<InodeTable> {
        let mount_fd = sys::openat(root.fd.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let reopen = probe_reopen_by_handle(root.fd.as_fd(), mount_fd.as_fd());
        match &reopen {
            Ok(()) => log::info!(
                "keeping at most {fd_budget} inode fds open; older ones are reopened by handle"
            ),
            Err(why) => {
                let nofile = sys::nofile_limit().unwrap_or(1024);
                let inodes = self::fd_budget(nofile);
                log::info!(
                    "inodes cannot be reopened by file handle ({why}), so every inode the kernel \
                     holds keeps its fd: RLIMIT_NOFILE {nofile} holds {inodes} inodes with {} \
                     fds left for open files and directories, and lookups and opens fail with \
                     EMFILE once all {nofile} are in use",
                    nofile.saturating_sub(inodes as u64)
                );
            }
        }
        Ok(InodeTable::with_mount_fd(
            root,
            mount_fd,
            fd_budget,
            reopen.is_ok(),
        ))
    }

    pub(super) fn with_mount_fd(
        root: NewInode,
        mount_fd: OwnedFd,
        fd_budget: usize,
        reopen_by_handle: bool,
    ) -> InodeTable {
        let root_dev = root.key.dev;
        let root_fd = Arc::new(root.fd);
        // The root's fd is never closed: it holds the mount.
        let mut maps = Maps::default();
        maps.by_key.insert(root.key, ROOT_ID);
        maps.by_id.insert(
            ROOT_ID,
            Arc::new(Inode {
                nodeid: ROOT_ID,
                key: root.key,
                generation: 0,
                file_type: libc::S_IFDIR,
                nlookup: AtomicU64::new(1),
                backing: Mutex::new(Weak::new()),
                fd: Mutex::new(Some(Arc::clone(&root_fd))),
                handle: None,
                forgotten: AtomicBool::new(false),
            }),
        );
        InodeTable {
            maps: RwLock::new(maps),
            root_dev,
            next_remap: AtomicU64::new(REMAP_BASE),
            mount_fd,
            lru: Mutex::new(LruCache::unbounded()),
            fd_budget: fd_budget.max(1),
            reopen_by_handle,
        }
    }

    /// The inode with `nodeid`.
    pub fn get(&self, nodeid: u64) -> Option<Arc<Inode>> {
        self.maps.read().by_id.get(&nodeid).cloned()
    }

    /// The known inode with backing identity `key`, if any.
    pub fn get_by_key(&self, key: &InodeKey) -> Option<Arc<Inode>> {
        let maps = self.maps.read();
        maps.by_key
            .get(key)
            .and_then(|id| maps.by_id.get(id))
            .cloned()
    }

    /// Adds one kernel lookup of `new`: the known entry for its `(dev, ino)` if that is still
    /// the same file, else a new entry. `identify()` is asked at most once, and not at all when
    /// the known entry's fd is open.
    pub fn add_lookup(
        &self,
        new: NewInode,
        identify: impl FnOnce(&NewInode) -> Identity,
    ) -> Arc<Inode> {
        // An entry whose fd is open pins its backing inode, so its number cannot have been
        // reused: it is the same file (and `new.fd` just closes).
        if let Some(inode) = self.ref_existing(&new.key, |i| i.fd.lock().is_some()) {
            return inode;
        }
        let Identity { handle, generation } = identify(&new);
        // A handle is opened relative to BACKING's root fd, so only inodes of its fs get one,
        // and only when the daemon may open handles at all: an inode without one is never
        // evicted (its fd could not come back).
        let handle = handle.filter(|_| self.reopen_by_handle && new.key.dev == self.root_dev);
        // The LRU closed the entry's fd, so the backing inode was free to go and its number to
        // be reused by another file: only the file handle (it carries the generation) tells.
        let same_file =
            |i: &Arc<Inode>| i.fd.lock().is_some() || (i.handle.is_some() && i.handle == handle);
        if let Some(inode) = self.ref_existing(&new.key, same_file) {
            self.adopt_fd(&inode, new.fd);
            return inode;
        }
        let inode = {
            let mut maps = self.maps.write();
            if let Some(known) = maps.by_key.get(&new.key).and_then(|id| maps.by_id.get(id)) {
                if same_file(known) {
                    // Another thread added it between the locks.
                    known.nlookup.fetch_add(1, Ordering::Relaxed);
                    let known = Arc::clone(known);
                    drop(maps);
                    self.adopt_fd(&known, new.fd);
                    return known;
                }
                // A different file now has this number. The old entry stays, for the lookups
                // the kernel holds on it, until FORGET; new lookups reach the new file, under a
                // remapped nodeid while the old one is in use.
                maps.by_key.remove(&new.key);
            }
            let nodeid = self.nodeid_for(&new.key, &maps);
            let inode = Arc::new(Inode {
                nodeid,
                key: new.key,
                generation,
                file_type: new.file_type,
                nlookup: AtomicU64::new(1),
                backing: Mutex::new(Weak::new()),
                fd: Mutex::new(Some(Arc::new(new.fd))),
                handle,
                forgotten: AtomicBool::new(false),
            });
            maps.by_key.insert(new.key, nodeid);
            maps.by_id.insert(nodeid, Arc::clone(&inode));
            inode
        };
        self.touch(&inode);
        inode
    }

    /// Keeps `fd` as the inode's fd if it has none open (saves a reopen); else closes it.
    fn adopt_fd(&self, inode: &Arc<Inode>, fd: OwnedFd) {
        let stored = {
            let mut slot = inode.fd.lock();
            if slot.is_none() {
                *slot = Some(Arc::new(fd));
                true
            } else {
                false
            }
        };
        if stored {
            self.touch(inode);
        }
    }

    /// The entry for `key` with one more lookup, if it passes `check`; under the maps lock so
    /// a concurrent FORGET cannot drop it in between.
    fn ref_existing(
        &self,
        key: &InodeKey,
        check: impl FnOnce(&Arc<Inode>) -> bool,
    ) -> Option<Arc<Inode>> {
        let maps = self.maps.read();
        let inode = maps.by_key.get(key).and_then(|id| maps.by_id.get(id))?;
        if !check(inode) {
            return None;
        }
        inode.nlookup.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(inode))
    }

    fn nodeid_for(&self, key: &InodeKey, maps: &Maps) -> u64 {
        let keeps_number = key.dev == self.root_dev
            && key.ino != ROOT_ID
            && key.ino < REMAP_BASE
            && !maps.by_id.contains_key(&key.ino);
        if keeps_number {
            key.ino
        } else {
            self.next_remap.fetch_add(1, Ordering::Relaxed)
        }
    }

    /// Drops `n` kernel lookups of `nodeid`; the entry (and its fd) goes at zero, and is
    /// returned. The root is never dropped. An underflow is a kernel/daemon disagreement:
    /// logged, saturated.
    pub fn forget(&self, nodeid: u64, n: u64) -> Option<Arc<Inode>> {
        if nodeid == ROOT_ID {
            return None;
        }
        let mut maps = self.maps.write();
        let Some(inode) = maps.by_id.get(&nodeid) else {
            log::error!("forget of unknown inode {nodeid}");
            return None;
        };
        let held = inode.nlookup.load(Ordering::Relaxed);
        if n > held {
            log::error!("forget({nodeid}, {n}) but only {held} lookups are held");
        }
        let left = held.saturating_sub(n);
        inode.nlookup.store(left, Ordering::Relaxed);
        if left == 0 {
            let key = inode.key;
            inode.forgotten.store(true, Ordering::Relaxed);
            let gone = maps.by_id.remove(&nodeid);
            if maps.by_key.get(&key) == Some(&nodeid) {
                maps.by_key.remove(&key);
            }
            self.lru.lock().pop(&nodeid);
            return gone;
        }
        None
    }

    /// Number of inodes in the table, the root included.
    pub fn inode_count(&self) -> usize {
        self.maps.read().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inode::BackingHandle;
    use crate::inode::test_support::{generation, new_inode, table, table_with};

    #[test]
    fn nodeid_is_the_backing_ino() {
        let t = table();
        let inode = t.add_lookup(new_inode(7, 1234), generation(5));
        assert_eq!(inode.nodeid, 1234);
        assert_eq!(inode.generation, 5);
        assert_eq!(t.get(1234).unwrap().key.ino, 1234);
    }

    #[test]
    fn hard_links_share_one_entry_and_count_lookups() {
        let t = table();
        let a = t.add_lookup(new_inode(7, 50), generation(0));
        let b = t.add_lookup(new_inode(7, 50), |_| panic!("identity asked twice"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.nlookup(), 2);
        t.forget(50, 1);
        assert!(t.get(50).is_some());
        t.forget(50, 1);
        assert!(t.get(50).is_none());
        assert!(t.get_by_key(&InodeKey { dev: 7, ino: 50 }).is_none());
    }

    #[test]
    fn ino_one_and_other_devices_are_remapped() {
        let t = table();
        let one = t.add_lookup(new_inode(7, 1), generation(0));
        let other_dev = t.add_lookup(new_inode(8, 1234), generation(0));
        assert!(one.nodeid >= REMAP_BASE && other_dev.nodeid >= REMAP_BASE);
        assert_ne!(one.nodeid, other_dev.nodeid);
        assert_ne!(one.nodeid, ROOT_ID);
    }

    #[test]
    fn forget_saturates_and_never_drops_the_root() {
        let t = table();
        t.add_lookup(new_inode(7, 9), generation(0));
        t.forget(9, 10);
        assert!(t.get(9).is_none());
        t.forget(ROOT_ID, 100);
        assert!(t.get(ROOT_ID).is_some());
        t.forget(4242, 1);
        assert_eq!(t.inode_count(), 1);
    }

    /// Once the LRU closed an entry's fd its number may be reused by another file: a lookup
    /// finding that number with another file handle gets a new entry, never the stale one.
    #[test]
    fn a_reused_number_with_another_handle_is_a_new_entry() {
        let t = table_with(1, true);
        let handle = |b: u8| {
            move |_: &NewInode| Identity {
                handle: Some(BackingHandle {
                    kind: 1,
                    bytes: vec![b; 8],
                }),
                generation: u64::from(b),
            }
        };
        let old = t.add_lookup(new_inode(7, 40), handle(1));
        t.add_lookup(new_inode(7, 41), handle(2));
        assert!(old.fd.lock().is_none(), "budget 1: the older fd was closed");
        let same = t.add_lookup(new_inode(7, 40), handle(1));
        assert!(Arc::ptr_eq(&same, &old), "same handle: same file");
        assert_eq!(old.nlookup(), 2);
        t.add_lookup(new_inode(7, 41), handle(2));
        assert!(old.fd.lock().is_none());
        let reused = t.add_lookup(new_inode(7, 40), handle(9));
        assert!(!Arc::ptr_eq(&reused, &old), "another handle: another file");
        assert!(
            reused.nodeid >= REMAP_BASE,
            "the old entry still holds nodeid 40"
        );
        assert_eq!(reused.generation, 9);
        assert!(
            t.get(40).is_some(),
            "the kernel's lookups on the old entry stay valid"
        );
        t.forget(40, 2);
        assert!(t.get(40).is_none());
        let found = t.get_by_key(&InodeKey { dev: 7, ino: 40 }).unwrap();
        assert!(
            Arc::ptr_eq(&found, &reused),
            "forgetting the old entry keeps the new mapping"
        );
    }
}
