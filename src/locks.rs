//! Locks forwarded to BACKING (`-o locks=forward`): who holds what, through which backing
//! open file description.
//!
//! The kernel names a lock's owner with an opaque id: for POSIX record locks its process's
//! file table, for `flock` locks its open file. Each (inode, owner, kind) gets one backing
//! open file description of its own, where the lock is placed as an OFD lock (`F_OFD_SETLK`)
//! or a `flock`: so owners exclude each other, and processes working on BACKING directly,
//! exactly as two processes would natively. The ranges each owner holds are kept too: an OFD
//! lock reports no pid, and `F_GETLK` must name the holder.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// The last byte a FUSE lock range can reach (`OFFSET_MAX`): "to the end of the file".
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// The two lock families the kernel forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// `fcntl` record locks (POSIX), owned by a process's file table.
    Posix,
    /// `flock` locks, owned by an open file.
    Flock,
}

/// A lock request as the kernel sends it: an inclusive byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRange {
    /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
    pub kind: i32,
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive; [`OFFSET_MAX`] for "to the end".
    pub end: u64,
}

impl LockRange {
    fn overlaps(&self, other: &LockRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Whether holding `self` keeps `other` from being taken.
    pub fn conflicts(&self, other: &LockRange) -> bool {
        self.overlaps(other) && (self.kind == libc::F_WRLCK || other.kind == libc::F_WRLCK)
    }
}

/// The ranges one owner holds, never overlapping: a new lock replaces whatever it covers,
/// splitting ranges it cuts through, as POSIX locks do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeldRanges(Vec<LockRange>);

impl HeldRanges {
    /// Records a successful lock or unlock of `range`.
    pub fn apply(&mut self, range: LockRange) {
        let mut kept = Vec::with_capacity(self.0.len() + 2);
        for held in self.0.drain(..) {
            if !held.overlaps(&range) {
                kept.push(held);
                continue;
            }
            if held.start < range.start {
                kept.push(LockRange {
                    end: range.start - 1,
                    ..held
                });
            }
            if held.end > range.end {
                kept.push(LockRange {
                    start: range.end + 1,
                    ..held
                });
            }
        }
        if range.kind != libc::F_UNLCK {
            kept.push(range);
        }
        self.0 = kept;
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a held range conflicts with `range`.
    pub fn conflicts(&self, range: &LockRange) -> bool {
        self.0.iter().any(|held| held.conflicts(range))
    }
}

/// One owner's locks on one inode.
#[derive(Debug)]
pub struct Holder {
    /// The backing open file description the locks are placed on.
    pub fd: OwnedFd,
    /// The open file (FUSE handle) the first lock came through. An open file description
    /// lock (`F_OFD_SETLK`) is owned by that file, and the kernel says nothing when it goes
    /// but RELEASE: its locks go with the handle.
    pub fh: u64,
    /// The pid the kernel gave with the owner's last lock, for `F_GETLK`.
    pub pid: u32,
    /// What the owner holds (POSIX locks; a `flock` is the whole file).
    pub ranges: HeldRanges,
}

/// Whose locks are where: (nodeid, owner, kind) to its holder.
pub type Holders = HashMap<(u64, u64, LockKind), Holder>;

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: i32, start: u64, end: u64) -> LockRange {
        LockRange { kind, start, end }
    }

    #[test]
    fn unlocking_the_middle_splits_a_range() {
        let mut held = HeldRanges::default();
        held.apply(range(libc::F_WRLCK, 0, 99));
        held.apply(range(libc::F_UNLCK, 10, 19));
        assert_eq!(
            held.0,
            vec![range(libc::F_WRLCK, 0, 9), range(libc::F_WRLCK, 20, 99)]
        );
        assert!(!held.conflicts(&range(libc::F_WRLCK, 10, 19)));
        assert!(held.conflicts(&range(libc::F_RDLCK, 15, 25)));
        held.apply(range(libc::F_UNLCK, 0, OFFSET_MAX));
        assert!(held.is_empty());
    }

    #[test]
    fn a_new_kind_replaces_what_it_covers() {
        let mut held = HeldRanges::default();
        held.apply(range(libc::F_RDLCK, 0, OFFSET_MAX));
        held.apply(range(libc::F_WRLCK, 100, 199));
        assert!(!held.conflicts(&range(libc::F_RDLCK, 0, 99)));
        assert!(held.conflicts(&range(libc::F_RDLCK, 150, 150)));
        assert!(held.conflicts(&range(libc::F_WRLCK, 5000, 5000)));
        assert_eq!(held.0.len(), 3);
    }
}
