//! Faults: the daemon killed in the middle of a workload, and BACKING changed behind the
//! mount's back (also under inodes whose fd the LRU closed).
//!
//! Each test runs on both FUSE transports: `_default` takes the default (FUSE over io_uring
//! where the fuse module offers it), `_devfuse` forces `/dev/fuse`.

mod backing_changes;
#[path = "../common/mod.rs"]
mod common;
mod killed_daemon;
mod stale_inodes;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// How long a client may stay blocked after the daemon died before the test calls it hung.
/// A hang detector only: an aborted connection fails every request at once.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// The default cache's TTL (`cache=auto`), and how much later than it a change made in
/// BACKING may show through the mount: the slack is for a loaded machine, not a tolerance of
/// the daemon (a revalidation it answers takes milliseconds).
const TTL: Duration = Duration::from_secs(1);
const TTL_SLACK: Duration = Duration::from_secs(2);

/// The transport option of each test variant.
const DEFAULT: &[&str] = &[];
const DEVFUSE: &[&str] = &["transport=devfuse"];

/// Whether the daemon logged that it serves requests over FUSE over io_uring.
fn serves_over_io_uring(g: &MountGuard) -> bool {
    g.log_text().contains("FUSE transport: FUSE over io_uring")
}

/// `len` bytes that name `tag` over and over: two different tags never give the same bytes,
/// so whatever a read returns says which file (and which version of it) it came from.
fn content(tag: &str, len: usize) -> Vec<u8> {
    format!("<{tag}>").bytes().cycle().take(len).collect()
}

/// The errno of an error (-1 for an error without one).
fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// An errno's name, for messages.
fn errno_name(code: i32) -> String {
    let name = match code {
        libc::ENOENT => "ENOENT",
        libc::ESTALE => "ESTALE",
        libc::ENOTCONN => "ENOTCONN",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECANCELED => "ECANCELED",
        libc::EIO => "EIO",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        _ => "",
    };
    format!("{name}({code})")
}

/// Waits until `observe` (through the mount) returns what `want` says is the change: at once
/// (cache=none: the first observation must already show it), or within the TTL plus slack.
/// Panics with the last observation otherwise.
#[track_caller]
fn expect_seen<T: std::fmt::Debug>(
    what: &str,
    at_once: bool,
    mut observe: impl FnMut() -> T,
    want: impl Fn(&T) -> bool,
) {
    let start = Instant::now();
    loop {
        let got = observe();
        if want(&got) {
            return;
        }
        assert!(
            !at_once,
            "{what}: with cache=none the mount must show it at once; it shows {}",
            short_debug(&got)
        );
        assert!(
            start.elapsed() < TTL + TTL_SLACK,
            "{what}: not shown through the mount within {:?}; it shows {}",
            TTL + TTL_SLACK,
            short_debug(&got)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a path shows through the mount: the size and contents of the file it opens, or the
/// errno. Both come from the one open file: a `stat` of the path and a later open can meet two
/// different files when the name's cached entry expires in between.
fn file_view(p: &Path) -> Result<(u64, Vec<u8>), i32> {
    let mut file = File::open(p).map_err(|e| errno(&e))?;
    let size = file.metadata().map_err(|e| errno(&e))?.len();
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(|e| errno(&e))?;
    Ok((size, data))
}
