//! uringfs run by an ordinary user, as sshfs and bindfs are: `uringfs ~/src ~/mnt`.
//!
//! The daemon runs as uid 1000 ([`UserMount`]). `mount(2)` refuses it, so fuser mounts through
//! the setuid `fusermount3` (package fuse3), and the test unmounts with `fusermount3 -u` as
//! that user. Such a daemon runs single-user: it switches no credentials (the backing fs sees
//! the mounter, who is the only caller FUSE lets in without `allow_other`), has no
//! passthrough (CAP_SYS_ADMIN) and cannot reopen inodes by file handle (CAP_DAC_READ_SEARCH),
//! so it keeps every inode's fd and says so in its log.
//!
//! `/dev/fuse` must be usable by the user: distributions ship it 0666, this machine 0600, so
//! [`DevFuseForAll`] opens it up for the tests and restores the mode it found.
//!
//! FUSE lets a process in only if its real, effective and saved uid and gid are the mounter's
//! (`fuse_allow_current_process`); a thread that only changed its fsuid (`as_user`) is still
//! root there and refused. Every operation on the mount therefore runs on a thread that
//! really is uid 1000 ([`as_mounter`]), and is compared with the same operation, on the same
//! thread, on a native directory the user owns.

mod access;
mod as_mounter;
mod as_native;
#[path = "../common/mod.rs"]
mod common;
mod dev_fuse;
mod fd_budget;
mod mounting;
mod refusals;
mod user_mount;

use as_mounter::*;
use common::*;
use dev_fuse::*;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use user_mount::*;

const DEV_FUSE: &str = "/dev/fuse";

/// Another ordinary user, neither the mounter nor root.
const OTHER_USER: u32 = 1001;

// ---------------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------------

/// Whether these tests can run: root (to open up `/dev/fuse` and to become uid 1000),
/// `/dev/fuse`, and a setuid-root `fusermount3`. Under `CI=true` a missing one panics.
fn require_unprivileged_mount() -> bool {
    if !require_root_and_fuse() {
        return false;
    }
    let Some(fusermount) = fusermount3() else {
        return skip("fusermount3 is not in PATH (apt-get install fuse3)");
    };
    let md = fs::metadata(&fusermount).expect("stat fusermount3");
    if md.uid() != 0 || md.mode() & 0o4000 == 0 {
        return skip(&format!(
            "{} is not setuid root (mode {:o}, owner {})",
            fusermount.display(),
            md.mode(),
            md.uid()
        ));
    }
    true
}

/// `fusermount3` as fuser finds it: the first in `PATH`.
fn fusermount3() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("fusermount3"))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `len` bytes of a pattern that differs per `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// Maps `len` bytes of `file` (open for reading and writing) shared, runs `f` on them, then
/// `msync`s and unmaps: the page faults and the writeback go through the mount.
fn with_shared_mapping<T>(
    file: &File,
    len: usize,
    f: impl FnOnce(&mut [u8]) -> T,
) -> io::Result<T> {
    // SAFETY: a fresh shared mapping of an open file; the kernel picks the address.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `addr` maps `len` writable bytes, alive until the munmap below; nothing else
    // in this process aliases them.
    let map = unsafe { std::slice::from_raw_parts_mut(addr.cast::<u8>(), len) };
    let out = f(map);
    // SAFETY: `addr`/`len` are the mapping made above.
    let synced = unsafe { libc::msync(addr, len, libc::MS_SYNC) };
    let err = (synced != 0).then(io::Error::last_os_error);
    // SAFETY: as above; `map` is not used after this.
    unsafe { libc::munmap(addr, len) };
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
