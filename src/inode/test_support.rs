//! What the inode table's unit tests share: fake inodes and tables on a fake root.

use super::{Identity, InodeKey, InodeTable, NewInode};
use crate::sys;

pub(super) fn new_inode(dev: u64, ino: u64) -> NewInode {
    NewInode {
        fd: sys::open_dir_path(c"/", libc::O_PATH).expect("open /"),
        key: InodeKey { dev, ino },
        file_type: libc::S_IFREG,
    }
}

pub(super) fn table() -> InodeTable {
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
pub(super) fn table_with(fd_budget: usize, reopen: bool) -> InodeTable {
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

pub(super) fn generation(generation: u64) -> impl FnOnce(&NewInode) -> Identity {
    move |_| Identity {
        handle: None,
        generation,
    }
}
