//! The inode table: every inode the kernel knows, with its pinned `O_PATH` fd.
//!
//! fuser 0.18 uses `FileAttr::ino` as the FUSE nodeid, so the nodeid is the backing
//! `st_ino` (hard links share one entry; `find -inum` and `rsync -H` see backing numbers).
//! Two cases cannot keep their number and get one from a remap range above 2^63: an entry
//! whose backing `st_ino` is 1 (the FUSE root id) and an entry on another device than BACKING
//! (a mount inside it), whose number could collide with one of BACKING's own.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use fuser::BackingId;
use parking_lot::{Mutex, RwLock};

/// The FUSE root nodeid.
pub const ROOT_ID: u64 = 1;
/// First nodeid of the remap range.
const REMAP_BASE: u64 = 1 << 63;

/// What identifies a backing inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InodeKey {
    /// `st_dev` of the backing inode.
    pub dev: u64,
    /// `st_ino` of the backing inode.
    pub ino: u64,
}

/// One inode the kernel holds a reference to.
#[derive(Debug)]
pub struct Inode {
    /// The FUSE nodeid and the `st_ino` reported for it.
    pub nodeid: u64,
    /// `O_PATH|O_NOFOLLOW` fd of the backing inode: every operation is relative to it.
    pub fd: OwnedFd,
    /// Backing identity.
    pub key: InodeKey,
    /// Backing generation (from the file handle), so a reused number is a new file.
    pub generation: u64,
    /// `S_IFMT` bits of the inode, fixed for its life.
    pub file_type: u32,
    /// Lookups the kernel holds ("leaked to the kernel, returned by FORGET").
    nlookup: AtomicU64,
    /// The kernel passthrough backing id while a file of this inode is open with one: the
    /// kernel allows one backing file per inode at a time. Open files hold the strong refs.
    pub backing: Mutex<Weak<BackingId>>,
}

impl Inode {
    /// The pinned fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The `st_ino` a getattr reports. The root's nodeid must be 1, but getattr's inode number
    /// is not a nodeid (the kernel copies it into `stat`), so the root shows BACKING's own.
    pub fn stat_ino(&self) -> u64 {
        if self.nodeid == ROOT_ID {
            self.key.ino
        } else {
            self.nodeid
        }
    }

    /// Whether the inode is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type == libc::S_IFDIR
    }

    /// Lookups currently held by the kernel.
    pub fn nlookup(&self) -> u64 {
        self.nlookup.load(Ordering::Relaxed)
    }
}

/// A freshly opened backing inode, not yet in the table.
#[derive(Debug)]
pub struct NewInode {
    /// Its `O_PATH` fd.
    pub fd: OwnedFd,
    /// Its identity.
    pub key: InodeKey,
    /// `S_IFMT` bits.
    pub file_type: u32,
}

#[derive(Debug, Default)]
struct Maps {
    by_id: HashMap<u64, Arc<Inode>>,
    by_key: HashMap<InodeKey, u64>,
}

/// Nodeid -> inode, and backing identity -> nodeid.
#[derive(Debug)]
pub struct InodeTable {
    /// Both maps under one lock, so they never disagree.
    maps: RwLock<Maps>,
    /// Device of BACKING: entries on other devices are remapped.
    root_dev: u64,
    /// Next nodeid of the remap range; never reused.
    next_remap: AtomicU64,
}

impl InodeTable {
    /// A table holding only the root, whose nodeid is `ROOT_ID` whatever its backing number.
    pub fn new(root: NewInode) -> InodeTable {
        let root_dev = root.key.dev;
        let mut maps = Maps::default();
        maps.by_key.insert(root.key, ROOT_ID);
        maps.by_id.insert(
            ROOT_ID,
            Arc::new(Inode {
                nodeid: ROOT_ID,
                fd: root.fd,
                key: root.key,
                generation: 0,
                file_type: libc::S_IFDIR,
                nlookup: AtomicU64::new(1),
                backing: Mutex::new(Weak::new()),
            }),
        );
        InodeTable {
            maps: RwLock::new(maps),
            root_dev,
            next_remap: AtomicU64::new(REMAP_BASE),
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

    /// Adds one kernel lookup of `new`: the known entry (whose fd is kept; `new.fd` closes)
    /// or a new one with `generation()` asked only then.
    pub fn add_lookup(
        &self,
        new: NewInode,
        generation: impl FnOnce(&NewInode) -> u64,
    ) -> Arc<Inode> {
        if let Some(inode) = self.ref_existing(&new.key) {
            return inode;
        }
        let generation = generation(&new);
        let mut maps = self.maps.write();
        // Another thread may have added it between the two locks.
        if let Some(inode) = maps.by_key.get(&new.key).and_then(|id| maps.by_id.get(id)) {
            inode.nlookup.fetch_add(1, Ordering::Relaxed);
            return Arc::clone(inode);
        }
        let nodeid = self.nodeid_for(&new.key, &maps);
        let inode = Arc::new(Inode {
            nodeid,
            fd: new.fd,
            key: new.key,
            generation,
            file_type: new.file_type,
            nlookup: AtomicU64::new(1),
            backing: Mutex::new(Weak::new()),
        });
        maps.by_key.insert(new.key, nodeid);
        maps.by_id.insert(nodeid, Arc::clone(&inode));
        inode
    }

    fn ref_existing(&self, key: &InodeKey) -> Option<Arc<Inode>> {
        let maps = self.maps.read();
        let inode = maps.by_key.get(key).and_then(|id| maps.by_id.get(id))?;
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

    /// Drops `n` kernel lookups of `nodeid`; the entry (and its fd) goes at zero. The root is
    /// never dropped. An underflow is a kernel/daemon disagreement: logged, saturated.
    pub fn forget(&self, nodeid: u64, n: u64) {
        if nodeid == ROOT_ID {
            return;
        }
        let mut maps = self.maps.write();
        let Some(inode) = maps.by_id.get(&nodeid) else {
            log::error!("forget of unknown inode {nodeid}");
            return;
        };
        let held = inode.nlookup.load(Ordering::Relaxed);
        if n > held {
            log::error!("forget({nodeid}, {n}) but only {held} lookups are held");
        }
        let left = held.saturating_sub(n);
        inode.nlookup.store(left, Ordering::Relaxed);
        if left == 0 {
            let key = inode.key;
            maps.by_id.remove(&nodeid);
            if maps.by_key.get(&key) == Some(&nodeid) {
                maps.by_key.remove(&key);
            }
        }
    }

    /// Number of inodes in the table, the root included.
    #[cfg(test)]
    fn inode_count(&self) -> usize {
        self.maps.read().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;

    fn new_inode(dev: u64, ino: u64) -> NewInode {
        NewInode {
            fd: sys::open_dir_path(c"/", libc::O_PATH).expect("open /"),
            key: InodeKey { dev, ino },
            file_type: libc::S_IFREG,
        }
    }

    fn table() -> InodeTable {
        let root = new_inode(7, 2);
        InodeTable::new(NewInode {
            file_type: libc::S_IFDIR,
            ..root
        })
    }

    #[test]
    fn nodeid_is_the_backing_ino() {
        let t = table();
        let inode = t.add_lookup(new_inode(7, 1234), |_| 5);
        assert_eq!(inode.nodeid, 1234);
        assert_eq!(inode.generation, 5);
        assert_eq!(t.get(1234).unwrap().key.ino, 1234);
    }

    #[test]
    fn hard_links_share_one_entry_and_count_lookups() {
        let t = table();
        let a = t.add_lookup(new_inode(7, 50), |_| 0);
        let b = t.add_lookup(new_inode(7, 50), |_| panic!("generation asked twice"));
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
        let one = t.add_lookup(new_inode(7, 1), |_| 0);
        let other_dev = t.add_lookup(new_inode(8, 1234), |_| 0);
        assert!(one.nodeid >= REMAP_BASE && other_dev.nodeid >= REMAP_BASE);
        assert_ne!(one.nodeid, other_dev.nodeid);
        assert_ne!(one.nodeid, ROOT_ID);
    }

    #[test]
    fn forget_saturates_and_never_drops_the_root() {
        let t = table();
        t.add_lookup(new_inode(7, 9), |_| 0);
        t.forget(9, 10);
        assert!(t.get(9).is_none());
        t.forget(ROOT_ID, 100);
        assert!(t.get(ROOT_ID).is_some());
        t.forget(4242, 1);
        assert_eq!(t.inode_count(), 1);
    }
}
