//! NFS export (`-o export`): file handles of the mount, taken with `name_to_handle_at` and
//! reopened with `open_by_handle_at`, the two kernel paths nfsd uses (this kernel has no
//! nfsd). A handle must keep naming its file after the kernel and the daemon forgot the
//! inode, after a rename, and must turn stale when the file is deleted, as on ext4.

mod common;

use common::*;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use uringfs::sys;

/// A file handle as `name_to_handle_at` gives it.
struct FileHandle {
    kind: i32,
    bytes: Vec<u8>,
}

fn handle_of(path: &Path) -> io::Result<FileHandle> {
    let file = fs::File::open(path)?;
    let (kind, bytes) = sys::name_to_handle_empty(file.as_fd())?;
    Ok(FileHandle { kind, bytes })
}

/// Opens `handle` relative to the fs mounted at (or holding) `mount`.
fn open_by_handle(mount: &Path, handle: &FileHandle, flags: i32) -> io::Result<OwnedFd> {
    let mount_fd = fs::File::open(mount)?;
    sys::open_by_handle_at(mount_fd.as_fd(), handle.kind, &handle.bytes, flags)
}

fn contents(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    fs::File::from(fd).read_to_end(&mut data)?;
    Ok(data)
}

/// The path the kernel gives an fd: a directory opened by handle shows its place in the tree
/// only once exportfs reconnected it (through `..` lookups).
fn fd_path(fd: &OwnedFd) -> PathBuf {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("readlink /proc/self/fd")
}

fn errno_of_open(mount: &Path, handle: &FileHandle) -> Option<i32> {
    errno_of(&open_by_handle(mount, handle, libc::O_RDONLY))
}

fn make_tree(root: &Path) {
    fs::write(root.join("f"), b"first file").unwrap();
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("d/sub/g"), b"second file").unwrap();
}

#[test]
fn handles_outlive_the_inode_caches_and_follow_renames() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["export"], make_tree);
    let file = handle_of(&g.m("f")).unwrap();
    let dir = handle_of(&g.m("d/sub")).unwrap();
    let root = handle_of(&g.mnt).unwrap();

    // Only the root stays: every other inode is gone from the kernel and the daemon.
    forget_all_but_pinned(&g, 1, "after taking the handles");
    let fd = open_by_handle(&g.mnt, &file, libc::O_RDONLY).unwrap();
    assert_eq!(contents(fd).unwrap(), b"first file");
    forget_all_but_pinned(&g, 1, "after reopening the file");
    let fd = open_by_handle(&g.mnt, &dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    assert_eq!(
        fd_path(&fd),
        g.m("d/sub"),
        "the directory was not reconnected to its place under the mount"
    );
    let names = dir_names(&fd_path(&fd)).unwrap();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["g"]);
    drop(fd);
    let fd = open_by_handle(&g.mnt, &root, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    assert_eq!(fd_path(&fd), g.mnt);
    drop(fd);

    fs::rename(g.m("f"), g.m("d/moved")).unwrap();
    forget_all_but_pinned(&g, 1, "after the rename");
    // (A file opened by handle may stay a disconnected dentry, natively too: no path check.)
    let fd = open_by_handle(&g.mnt, &file, libc::O_RDONLY).unwrap();
    assert_eq!(contents(fd).unwrap(), b"first file");
    assert_eq!(fs::read(g.b("d/moved")).unwrap(), b"first file");

    fs::rename(g.m("d/sub"), g.m("sub2")).unwrap();
    forget_all_but_pinned(&g, 1, "after renaming the directory");
    let fd = open_by_handle(&g.mnt, &dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    assert_eq!(fd_path(&fd), g.m("sub2"));
}

#[test]
fn a_deleted_file_is_stale_as_natively() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["export"], make_tree);
    let through_mount = [
        handle_of(&g.m("f")).unwrap(),
        handle_of(&g.m("d/sub/g")).unwrap(),
    ];
    let native = [
        handle_of(&g.n("f")).unwrap(),
        handle_of(&g.n("d/sub/g")).unwrap(),
    ];

    // Deleted through the mount while the kernel still knew the inode.
    fs::remove_file(g.m("f")).unwrap();
    fs::remove_file(g.n("f")).unwrap();
    assert_eq!(errno_of_open(&g.native, &native[0]), Some(libc::ESTALE));
    assert_eq!(errno_of_open(&g.mnt, &through_mount[0]), Some(libc::ESTALE));

    // Deleted in BACKING after the daemon forgot the inode.
    forget_all_but_pinned(&g, 1, "before deleting behind the mount's back");
    fs::remove_file(g.b("d/sub/g")).unwrap();
    fs::remove_file(g.n("d/sub/g")).unwrap();
    assert_eq!(errno_of_open(&g.native, &native[1]), Some(libc::ESTALE));
    assert_eq!(errno_of_open(&g.mnt, &through_mount[1]), Some(libc::ESTALE));

    // A directory removed while forgotten.
    let dir = handle_of(&g.m("d/sub")).unwrap();
    let native_dir = handle_of(&g.n("d/sub")).unwrap();
    forget_all_but_pinned(&g, 1, "before removing the directory");
    fs::remove_dir(g.m("d/sub")).unwrap();
    fs::remove_dir(g.n("d/sub")).unwrap();
    assert_eq!(errno_of_open(&g.native, &native_dir), Some(libc::ESTALE));
    assert_eq!(errno_of_open(&g.mnt, &dir), Some(libc::ESTALE));
    // The daemon keeps serving.
    assert_eq!(dir_names(&g.m("d")).unwrap().len(), 0);
}

/// Without the option the kernel resolves only the inodes it still holds: what `export` is for.
#[test]
fn without_export_a_forgotten_inode_is_stale() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], make_tree);
    let file = handle_of(&g.m("f")).unwrap();
    let held = fs::File::open(g.m("f")).unwrap();
    let fd = open_by_handle(&g.mnt, &file, libc::O_RDONLY).unwrap();
    assert_eq!(contents(fd).unwrap(), b"first file");
    drop(held);
    forget_all_but_pinned(&g, 1, "after closing the file");
    assert_eq!(errno_of_open(&g.mnt, &file), Some(libc::ESTALE));
}
