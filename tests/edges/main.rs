//! Bad input (issue 12): edge values through the mount, compared errno for errno with the same
//! calls on native ext4 — names of 255 and 256 bytes, offsets near `i64::MAX` and near ext4's
//! largest file, zero-length and huge I/O, invalid flag bits, oversized xattrs, `O_TMPFILE`
//! corners, locks on directories — and a seeded random mix of all of them.
//!
//! Every test runs on both FUSE transports: `_default` over FUSE over io_uring (what the daemon
//! picks when the fuse module's `enable_uring` is on) and `_devfuse` over `/dev/fuse`.
//!
//! Left out, because the kernel's FUSE answers them itself, differently from ext4 (no request
//! reaches the daemon, so no daemon can match): the kernel's largest FUSE file is
//! `MAX_LFS_FILESIZE`, not ext4's 16 TiB - 4 KiB, so `lseek` SEEK_SET/SEEK_END past ext4's
//! largest size succeeds on the mount (natively EINVAL), and `copy_file_range` with nothing to
//! copy to a destination offset past it returns 0 (natively EFBIG); FUSE passes only
//! KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE to `fallocate` (COLLAPSE_RANGE and INSERT_RANGE are
//! EOPNOTSUPP); `preadv2(RWF_NOWAIT)` is EOPNOTSUPP (no FMODE_NOWAIT); a directory is
//! positioned by `generic_file_llseek` (SEEK_END + 5000: natively EINVAL, the mount
//! i_size + 5000).

#[path = "../common/mod.rs"]
mod common;
mod dir_locks;
mod flags;
mod io_sizes;
mod names;
mod offsets;
mod random_ops;
mod raw;
mod tmpfile;
mod xattrs;

use common::*;
use raw::*;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The `-o` option of the `/dev/fuse` variants.
const DEVFUSE: &[&str] = &["transport=devfuse"];

/// `fallocate(2)` mode bits the libc crate may not have.
const FALLOC_FL_NO_HIDE_STALE: i32 = 0x04;
const FALLOC_FL_UNSHARE_RANGE: i32 = 0x40;
const FALLOC_FL_WRITE_ZEROES: i32 = 0x80;

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// A name of `len` bytes, all `c`.
fn name(c: char, len: usize) -> String {
    std::iter::repeat_n(c, len).collect()
}

/// ext4's largest file size (`s_maxbytes` of an extent-mapped file: 2^32 - 1 blocks), from the
/// block size of the native dir's fs. Files through the mount have the FUSE limit
/// (`MAX_LFS_FILESIZE`) in the kernel, so only BACKING's ext4 can refuse what lies past this.
fn ext4_max(g: &MountGuard) -> i64 {
    let bsize = statvfs(&g.native).expect("statvfs native").f_bsize as i64;
    (i64::from(u32::MAX)) * bsize
}

/// Whether the daemon serves this mount over FUSE over io_uring, and that it is the transport
/// the options asked for. The daemon logs which one it serves on, the io_uring line once its
/// queues run, which may be just after the mount appeared: so this waits for the verdict.
fn over_ring(g: &MountGuard, opts: &[&str]) -> bool {
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    let ring = loop {
        let log = g.log_text();
        if log.contains("serving FUSE requests over io_uring") {
            break true;
        }
        if log.contains("FUSE transport: /dev/fuse")
            || log.contains("FUSE requests stay on /dev/fuse")
        {
            break false;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon logged no FUSE transport within {MOUNT_TIMEOUT:?}\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    if opts.contains(&"transport=devfuse") {
        assert!(!ring, "transport=devfuse, yet served over io_uring");
    } else if fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .is_ok_and(|s| s.trim() == "Y")
    {
        assert!(
            ring,
            "enable_uring is on but the daemon serves over /dev/fuse\n{}",
            g.log_text()
        );
    }
    ring
}

/// [`both`] for a case whose outcome native ext4 decides (the test states no errno): the
/// mount must agree, whatever it is; `--nocapture` shows what it was.
#[track_caller]
fn seen<T: PartialEq + std::fmt::Debug>(
    g: &MountGuard,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T>,
) {
    let r = both(g, what, f);
    eprintln!("{what}: {}", short_debug(&outcome(r)));
}

/// Mounts with `opts` and checks the transport.
fn mount(opts: &[&str]) -> MountGuard {
    let g = MountGuard::new(opts);
    over_ring(&g, opts);
    g
}

/// A deterministic pattern of `len` bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}
