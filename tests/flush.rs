//! close(2) reports a deferred write error through the mount as it does natively.
//!
//! ext4 reports nothing at close, so its close would agree whatever the daemon did. The
//! backing filesystem here is a small FUSE filesystem made for the test (with fuser, in this
//! process) whose FLUSH fails with EDQUOT, as a quota-limited network filesystem's close does
//! when it writes back at close: close on it natively gives EDQUOT, and through a uringfs
//! mirror of it must give the same.

mod common;

use common::*;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request,
    WriteFlags,
};
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

const FILE: INodeNo = INodeNo(2);

/// One file, `f`, whose writes succeed and whose every FLUSH fails with EDQUOT.
#[derive(Default)]
struct DeferredErrorFs {
    size: AtomicU64,
}

impl DeferredErrorFs {
    fn attr(&self, ino: INodeNo) -> FileAttr {
        let (kind, perm, size) = if ino == FILE {
            (
                FileType::RegularFile,
                0o666,
                self.size.load(Ordering::Relaxed),
            )
        } else {
            (FileType::Directory, 0o755, 0)
        };
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind,
            perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
    }
}

const TTL: Duration = Duration::from_secs(1);

impl Filesystem for DeferredErrorFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == INodeNo::ROOT && name == "f" {
            reply.entry(&TTL, &self.attr(FILE), fuser::Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT || ino == FILE {
            reply.attr(&TTL, &self.attr(ino));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.size
            .fetch_max(offset + data.len() as u64, Ordering::Relaxed);
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EDQUOT);
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = [
            (INodeNo::ROOT, FileType::Directory, "."),
            (INodeNo::ROOT, FileType::Directory, ".."),
            (FILE, FileType::RegularFile, "f"),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// Writes to `dir/f` and closes it, returning close's outcome.
fn write_and_close(dir: &Path) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(dir.join("f"))?;
    f.write_all(b"data")?;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just released by the File, so this closes it exactly once.
    if unsafe { libc::close(fd) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[test]
fn close_reports_a_deferred_error_as_natively() {
    if !require_root_and_fuse() {
        return;
    }
    let dirs = Scratch::new();
    let mut config = fuser::Config::default();
    config
        .mount_options
        .push(MountOption::FSName("deferred-error".to_string()));
    // Declared first, dropped last: the mirror unmounts before its backing fs.
    let _backing = fuser::spawn_mount(DeferredErrorFs::default(), &dirs.backing, &config)
        .expect("mount the deferred-error fs");
    let backing = dirs.backing.clone();
    let g = MountGuard::start(dirs, &[], &[]);
    let native = write_and_close(&backing);
    assert_eq!(
        errno_of(&native),
        Some(libc::EDQUOT),
        "the test fs must fail close natively: {native:?}"
    );
    let mount = write_and_close(&g.mnt);
    assert_eq!(
        errno_of(&mount),
        Some(libc::EDQUOT),
        "close through the mount gave {mount:?}, natively EDQUOT"
    );
}
