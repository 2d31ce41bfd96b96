//! The inode table: every inode the kernel knows, with its pinned `O_PATH` fd.
//!
//! fuser 0.18 uses `FileAttr::ino` as the FUSE nodeid, so the nodeid is the backing
//! `st_ino` (hard links share one entry; `find -inum` and `rsync -H` see backing numbers).
//! Two cases cannot keep their number and get one from a remap range above 2^63: an entry
//! whose backing `st_ino` is 1 (the FUSE root id) and an entry on another device than BACKING
//! (a mount inside it), whose number could collide with one of BACKING's own.

use std::collections::HashMap;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::fs::passthrough::BackingFile;
use lru::LruCache;
use parking_lot::{Mutex, RwLock};

use crate::sys;

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

    fn with_mount_fd(
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
    fn touch(&self, inode: &Arc<Inode>) {
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

    /// Opens `handle` (of a file in BACKING's fs) with `flags`.
    ///
    /// # Errors
    /// `open_by_handle_at`'s: `ESTALE` once the file is gone.
    pub fn open_handle(&self, handle: &BackingHandle, flags: i32) -> io::Result<OwnedFd> {
        sys::open_by_handle_at(self.mount_fd.as_fd(), handle.kind, &handle.bytes, flags)
    }

    /// Number of inodes in the table, the root included.
    pub fn inode_count(&self) -> usize {
        self.maps.read().by_id.len()
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
fn probe_reopen_by_handle(root: BorrowedFd<'_>, mount_fd: BorrowedFd<'_>) -> Result<(), String> {
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

    fn new_inode(dev: u64, ino: u64) -> NewInode {
        NewInode {
            fd: sys::open_dir_path(c"/", libc::O_PATH).expect("open /"),
            key: InodeKey { dev, ino },
            file_type: libc::S_IFREG,
        }
    }

    fn table() -> InodeTable {
        let root = new_inode(7, 2);
        InodeTable::new(
            NewInode {
                file_type: libc::S_IFDIR,
                ..root
            },
            100,
        )
        .expect("table")
    }

    /// A table on a fake root (`/` as device 7) whose inodes can (`reopen`) or cannot be
    /// reopened by handle, whatever the test's own privileges.
    fn table_with(fd_budget: usize, reopen: bool) -> InodeTable {
        let root = new_inode(7, 2);
        let mount_fd = sys::open_dir_path(c"/", libc::O_RDONLY).expect("open /");
        InodeTable::with_mount_fd(
            NewInode {
                file_type: libc::S_IFDIR,
                ..root
            },
            mount_fd,
            fd_budget,
            reopen,
        )
    }

    fn generation(generation: u64) -> impl FnOnce(&NewInode) -> Identity {
        move |_| Identity {
            handle: None,
            generation,
        }
    }

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
