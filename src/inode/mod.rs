//! The inode table: every inode the kernel knows, with its pinned `O_PATH` fd.
//!
//! fuser 0.18 uses `FileAttr::ino` as the FUSE nodeid, so the nodeid is the backing
//! `st_ino` (hard links share one entry; `find -inum` and `rsync -H` see backing numbers).
//! Two cases cannot keep their number and get one from a remap range above 2^63: an entry
//! whose backing `st_ino` is 1 (the FUSE root id) and an entry on another device than BACKING
//! (a mount inside it), whose number could collide with one of BACKING's own.
//!
//! The pieces: this file holds what an inode is and the table's state (with its lock order);
//! `table.rs` adds and forgets entries (the nodeid rules above); `fd_lru.rs` keeps the open
//! `O_PATH` fds within the fd budget, reopening closed ones by file handle.

mod fd_lru;
mod table;
#[cfg(test)]
mod test_support;

use std::collections::HashMap;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::fs::passthrough::BackingFile;
use lru::LruCache;
use parking_lot::{Mutex, RwLock};

pub use fd_lru::fd_budget;

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

/// A backing file handle (`name_to_handle_at`), from which a closed `O_PATH` fd is reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingHandle {
    /// `handle_type`.
    pub kind: i32,
    /// `f_handle`.
    pub bytes: Vec<u8>,
}

/// What the table asks about a new inode, once.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Its file handle, when the fs gives one.
    pub handle: Option<BackingHandle>,
    /// Its generation, so a reused inode number is a new file.
    pub generation: u64,
}

/// One inode the kernel holds a reference to.
#[derive(Debug)]
pub struct Inode {
    /// The FUSE nodeid and the `st_ino` reported for it.
    pub nodeid: u64,
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
    pub backing: Mutex<Weak<BackingFile>>,
    /// The `O_PATH|O_NOFOLLOW` fd every operation is relative to, while open. The fd LRU
    /// closes it (`None`) when the kernel holds more inodes than the fd budget; it is then
    /// reopened from `handle`. Never held while taking the LRU lock.
    fd: Mutex<Option<Arc<OwnedFd>>>,
    /// How to reopen the fd; `None` (no handle: another device, or an fs without handles)
    /// keeps the fd open for the inode's life.
    handle: Option<BackingHandle>,
    /// Set when FORGET removed the entry from the table (under the maps write lock).
    forgotten: AtomicBool,
}

impl Inode {
    /// The `st_ino` a getattr reports. The root's nodeid must be 1, but getattr's inode number
    /// is not a nodeid (the kernel copies it into `stat`), so the root shows BACKING's own.
    pub fn stat_ino(&self) -> u64 {
        if self.nodeid == ROOT_ID {
            self.key.ino
        } else {
            self.nodeid
        }
    }

    /// Lookups currently held by the kernel.
    pub fn nlookup(&self) -> u64 {
        self.nlookup.load(Ordering::Relaxed)
    }

    /// Its backing file handle, if it has one.
    pub fn handle(&self) -> Option<&BackingHandle> {
        self.handle.as_ref()
    }

    /// Whether the fd LRU may close this inode's fd.
    fn evictable(&self) -> bool {
        self.handle.is_some() && self.nodeid != ROOT_ID
    }
}

/// An inode with its fd held open for the length of one request, whatever the LRU does.
#[derive(Debug, Clone)]
pub struct Pinned {
    inode: Arc<Inode>,
    fd: Arc<OwnedFd>,
}

impl Pinned {
    /// The inode's `O_PATH` fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Deref for Pinned {
    type Target = Inode;

    fn deref(&self) -> &Inode {
        &self.inode
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

/// Nodeid -> inode, and backing identity -> nodeid, with an LRU of the inodes' open fds.
///
/// The kernel may hold more inodes than the process may hold fds (RLIMIT_NOFILE, whose hard
/// limit an unprivileged-in-practice root may not raise). Inodes with a file handle keep
/// their fd only while among the `fd_budget` most recently used; the others are reopened by
/// `open_by_handle_at` when next used, relative to BACKING's root fd (needs
/// CAP_DAC_READ_SEARCH, so `pin` runs before a request switches to its caller's fsuid).
/// A daemon that cannot reopen by handle (not root, as under `fusermount3`) keeps every
/// inode's fd for as long as the kernel holds the inode, as for inodes without a handle.
#[derive(Debug)]
pub struct InodeTable {
    /// Both maps under one lock, so they never disagree. Lock order: before `lru`.
    maps: RwLock<Maps>,
    /// Device of BACKING: entries on other devices are remapped.
    root_dev: u64,
    /// Next nodeid of the remap range; never reused.
    next_remap: AtomicU64,
    /// BACKING's root opened for reading: the mount fd handles are opened relative to
    /// (`open_by_handle_at` refuses an `O_PATH` one with EBADF).
    mount_fd: OwnedFd,
    /// Evictable inodes whose fd is open, least recently used first.
    lru: Mutex<LruCache<u64, Weak<Inode>>>,
    /// How many evictable fds may be open at once.
    fd_budget: usize,
    /// Whether `open_by_handle_at` works here (probed once at start); without it no inode
    /// gets a handle, so none is evictable.
    reopen_by_handle: bool,
}
