//! A full disk through the mount, compared with native ext4 errno for errno (issue 12, "Full
//! disk").
//!
//! Each test makes two ext4 images from the same [`Mkfs`] spec (64 MiB, 4 KiB blocks, no
//! root reserve, a fixed UUID and hash seed): the native directory lives on one, the mount's
//! BACKING on the other, so both start from the same free space and the same operations meet
//! the same limits. Every test runs on the default FUSE transport, which scripts/test makes FUSE
//! over io_uring in one pass of the suite and `/dev/fuse` in the other. The writer is the test's own root thread; the
//! reserve and the writers' rights are tests/limits.rs's subject.
//!
//! Exactness. The number of inodes is fixed by mkfs, so running out of inodes is compared
//! exactly. Running out of blocks is decided by ext4 from per-CPU counters and the delayed
//! allocation reservations of the moment (it also switches to nodelalloc near full, and a
//! journal commit can free blocks held by the previous transaction), so where a byte count is
//! compared, the two sides may stop [`TOLERANCE`] apart; the errno must always be the same.
//! Two native runs on this machine differ by a few blocks for the same reason.
//!
//! User quotas (EDQUOT) are not tested: this kernel has `CONFIG_QUOTA=y` but neither
//! `CONFIG_QFMT_V2` nor `CONFIG_XFS_QUOTA` nor `CONFIG_TMPFS_QUOTA` (`/proc/config.gz`), so no
//! filesystem here can enforce a user quota (docs/RELIABILITY.md has the evidence).

mod common;

use common::loopfs::*;
use common::*;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Size of each image: small, so filling it takes a second, big enough for ext4's journal.
const IMAGE_BYTES: u64 = 64 << 20;

/// Block size of the images.
const BLOCK: u64 = 4096;

/// The unit of each `pwrite(2)`: one block, so both sides stop at a block boundary.
const CHUNK: usize = BLOCK as usize;

/// How far apart in bytes the native and the mounted run may stop when blocks run out (see
/// the header): 64 blocks, 0.4 % of the image. Measured differences were a few blocks.
const TOLERANCE: u64 = 64 * BLOCK;

/// Mount options: the default transport, which is FUSE over io_uring when the fuse module's
/// `enable_uring` is on and `/dev/fuse` otherwise. scripts/test runs the suite once each way.
const DEFAULT_TRANSPORT: &[&str] = &[];

/// The images' spec; `inodes` for the tests that run out of inodes.
fn spec(inodes: Option<u32>) -> Mkfs {
    Mkfs {
        bytes: IMAGE_BYTES,
        block: BLOCK,
        reserved_percent: 0,
        inodes,
        deterministic: true,
    }
}

/// A mount whose BACKING is `d/` on one fresh image and whose native twin is `d/` on another.
/// Fields drop in order: the mount first, then the filesystems under it.
struct FullDisk {
    /// The mount; `g.native` and `g.backing` are on the images.
    g: MountGuard,
    /// The image holding the native directory.
    native_fs: LoopExt4,
    /// The image holding BACKING.
    backing_fs: LoopExt4,
}

impl FullDisk {
    /// Makes both images from `spec` and mounts uringfs with `opts` on the second.
    fn new(spec: &Mkfs, opts: &[&str]) -> FullDisk {
        let native_fs = LoopExt4::new(spec, "");
        let backing_fs = LoopExt4::new(spec, "");
        let mut dirs = Scratch::new();
        dirs.native = native_fs.subdir("d");
        dirs.backing = backing_fs.subdir("d");
        let g = MountGuard::start(dirs, &[], opts);
        let want_ring = match opts.iter().find_map(|o| o.strip_prefix("transport=")) {
            Some(forced) => forced == "io_uring",
            None => ring_enabled(),
        };
        assert_eq!(
            g.over_io_uring(),
            want_ring,
            "the daemon does not serve over the transport asked for ({opts:?}):\n{}",
            g.log_text()
        );
        FullDisk {
            g,
            native_fs,
            backing_fs,
        }
    }

    /// Synced free space of the native image and of BACKING's.
    fn spaces(&self) -> (Space, Space) {
        (self.native_fs.space(), self.backing_fs.space())
    }
}

/// `f(native dir)` and `f(mount)`, in that order.
fn pair<T>(fd: &FullDisk, f: impl Fn(&Path) -> T) -> (T, T) {
    (f(&fd.g.native), f(&fd.g.mnt))
}

/// The errno of an error as text, for messages and comparisons.
fn errno_text<T>(r: &io::Result<T>) -> Option<String> {
    r.as_ref()
        .err()
        .map(|e| format!("{e} ({})", e.raw_os_error().unwrap_or(-1)))
}

/// `fallocate(fd, mode, offset, len)`.
fn fallocate(f: &File, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd `f` keeps open.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), mode, offset as i64, len as i64) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `copy_file_range(src, &off_in, dst, &off_out, len, 0)`; returns what it copied.
fn copy_file_range(src: &File, off_in: u64, dst: &File, off_out: u64, len: u64) -> io::Result<u64> {
    let (mut i, mut o) = (off_in as i64, off_out as i64);
    // SAFETY: two fds the Files keep open and two writable offsets, live during the call.
    let rc = unsafe {
        libc::copy_file_range(
            src.as_raw_fd(),
            &mut i,
            dst.as_raw_fd(),
            &mut o,
            len as usize,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as u64)
}

/// Opens `path` for writing, created new.
fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// How filling a file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fill {
    /// Bytes acknowledged.
    written: u64,
    /// The errno that stopped it.
    error: Option<String>,
    /// The file's size afterwards (`stat`).
    size: u64,
    /// What `fsync` of the file said afterwards.
    fsync: Option<String>,
}

/// Creates `path` and `pwrite`s [`CHUNK`]s of `0x5a` until one fails (or the image's size is
/// written, which cannot happen), then fsyncs it.
fn fill(path: &Path) -> Fill {
    let f = create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let buf = vec![0x5a_u8; CHUNK];
    let mut written = 0;
    let mut error = None;
    while written < IMAGE_BYTES {
        match f.write_at(&buf, written) {
            Ok(0) => {
                error = Some("pwrite returned 0".into());
                break;
            }
            Ok(n) => written += n as u64,
            Err(e) => {
                error = errno_text::<()>(&Err(e));
                break;
            }
        }
    }
    let fsync = errno_text(&f.sync_all());
    drop(f);
    let size = fs::metadata(path).map_or(0, |m| m.len());
    Fill {
        written,
        error,
        size,
        fsync,
    }
}

/// What [`precious`] wrote: name -> digest.
type Precious = Vec<(String, String)>;

/// Writes a few files of different sizes (and an xattr on the first) on both sides and
/// fsyncs each, before the disk fills; returns their digests.
fn precious(fd: &FullDisk) -> Precious {
    let mut rng = Rng(0x00f0_11d1_5c00_0001);
    let mut out = Vec::new();
    for i in 0..8 {
        let len = 1 + rng.below(600 << 10) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let name = format!("precious{i}");
        for dir in [&fd.g.native, &fd.g.mnt] {
            let f = create(&dir.join(&name)).expect("create a precious file");
            f.write_all_at(&data, 0).expect("write a precious file");
            f.sync_all().expect("fsync a precious file");
            if i == 0 {
                lsetxattr(&dir.join(&name), "user.precious", b"kept", 0)
                    .expect("setxattr on a precious file");
            }
        }
        out.push((name, digest(&data)));
    }
    out
}

/// Every precious file under `dir` has its digest (and the first its xattr).
#[track_caller]
fn assert_precious(dir: &Path, files: &Precious, when: &str) {
    for (name, want) in files {
        let got = read_all(&dir.join(name)).map(|d| digest(&d));
        assert_eq!(
            got.as_ref().ok(),
            Some(want),
            "{when}: {}/{name} is not what was fsynced ({got:?})",
            dir.display()
        );
    }
    assert_eq!(
        lgetxattr(&dir.join("precious0"), "user.precious").ok(),
        Some(b"kept".to_vec()),
        "{when}: the xattr of {}/precious0 is gone",
        dir.display()
    );
}

/// The same outcome on both sides, or a panic naming `what`.
#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(what: &str, n: io::Result<T>, m: io::Result<T>) {
    let (n, m) = (outcome(n), outcome(m));
    assert_eq!(
        m, n,
        "{what}: the mount (left) and native ext4 (right) differ"
    );
}

/// [`same`], and both must succeed.
#[track_caller]
fn same_ok<T: PartialEq + std::fmt::Debug>(what: &str, n: io::Result<T>, m: io::Result<T>) {
    assert!(n.is_ok(), "{what}: failed natively: {n:?}");
    same(what, n, m);
}

/// [`same`], and natively it must fail with ENOSPC (the premise of the comparison).
#[track_caller]
fn same_enospc<T: PartialEq + std::fmt::Debug>(what: &str, n: io::Result<T>, m: io::Result<T>) {
    assert_eq!(
        errno_of(&n),
        Some(libc::ENOSPC),
        "{what}: natively this did not fail with ENOSPC on the full disk: {n:?}"
    );
    same(what, n, m);
}

/// Fills, on both sides, whatever a journal commit or the end of a delayed allocation freed
/// since the disk filled (ext4 hands back reserved blocks asynchronously), so the next check
/// meets a disk that is full on both sides, not one with a few blocks free on one of them.
fn full_again(fd: &FullDisk) {
    pair(fd, top_up);
}

/// Appends [`CHUNK`]s to `dir/top-up` until ENOSPC, syncs, and repeats until a write right
/// after a sync fails too.
fn top_up(dir: &Path) {
    use std::io::Write as _;
    let path = dir.join("top-up");
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let buf = vec![0x11_u8; CHUNK];
    for _ in 0..20 {
        let _ = f.sync_all();
        let mut wrote = false;
        while (&f).write_all(&buf).is_ok() {
            wrote = true;
        }
        if !wrote {
            return;
        }
    }
}

/// Both sides stopped within [`TOLERANCE`] bytes of each other.
#[track_caller]
fn assert_close(what: &str, n: u64, m: u64) {
    assert!(
        n.abs_diff(m) <= TOLERANCE,
        "{what}: the mount stopped at {m} bytes, native ext4 at {n} ({} apart, tolerance \
         {TOLERANCE})",
        n.abs_diff(m)
    );
}

/// The mount keeps serving while the disk is full: stat, read, readdir, getxattr, statfs.
#[track_caller]
fn assert_serving(fd: &FullDisk, files: &Precious) {
    assert_precious(
        &fd.g.mnt,
        files,
        "read through the mount while the disk is full",
    );
    let (n, m) = pair(fd, |d| dir_names(d).map_err(|e| e.to_string()));
    assert_eq!(m, n, "readdir while full: mount vs native");
    let (n, m) = pair(fd, |d| attr(&d.join("precious3")));
    same("stat while full", n, m);
    // statfs through the mount is BACKING's own.
    fd.backing_fs.sync();
    let (b, mnt) = (
        statvfs(&fd.backing_fs.root).expect("statvfs backing fs"),
        statvfs(&fd.g.mnt).expect("statvfs mount"),
    );
    assert_eq!(
        (mnt.f_blocks, mnt.f_bfree, mnt.f_files, mnt.f_ffree),
        (b.f_blocks, b.f_bfree, b.f_files, b.f_ffree),
        "statfs through the full mount is not BACKING's"
    );
}

/// After the test: the daemon stopped (its unmount), BACKING's image remounted so everything
/// is read from disk, and every precious file is still intact there.
fn assert_precious_after_unmount(mut fd: FullDisk, files: &Precious) {
    fd.g.stop(libc::SIGTERM);
    fd.backing_fs.remount();
    assert_precious(&fd.g.backing, files, "in BACKING after unmount");
}

/// Unlinks `names` on both sides (through the mount on one), then waits until BACKING's
/// filesystem has freed their inodes. Natively an unlink of a file nobody holds open frees
/// its inode and blocks at once. Through FUSE the daemon holds an `O_PATH` fd of every
/// inode the kernel knows, and closes it when the kernel's FORGET arrives, which the kernel
/// sends asynchronously after the unlink (over `/dev/fuse` on both transports); until then
/// ext4 keeps the inode as an orphan. The wait is a poll for that FORGET, not a timing
/// check: its deadline is only reached if the daemon never lets the inode go.
fn unlink_both(fd: &FullDisk, names: &[&str]) {
    let ffree = || {
        statvfs(&fd.backing_fs.root)
            .expect("statvfs backing fs")
            .f_ffree
    };
    let before = ffree();
    for name in names {
        let (n, m) = pair(fd, |d| fs::remove_file(d.join(name)));
        same_ok(&format!("unlink {name}"), n, m);
    }
    let start = Instant::now();
    while ffree() < before + names.len() as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the inodes of {names:?}, unlinked through the mount, are still not free in \
             BACKING after 30 s: the daemon holds them\n{}",
            fd.g.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    if !start.elapsed().is_zero() {
        eprintln!(
            "unlink {names:?}: BACKING freed the inodes {:?} after the unlink returned",
            start.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// pwrite until the disk is full: the same ENOSPC at (nearly) the same byte as natively;
/// fsync afterwards the same; then, on the full disk, creating a file, writing, mkdir,
/// fallocate, copy_file_range, a long symlink and a big xattr fail as natively; the daemon
/// keeps serving; unlinking the fill through the mount makes writes and mkdir work again;
/// files fsynced before are intact through the mount, in BACKING and on disk after unmount.
fn write_until_full(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    let fd = FullDisk::new(&spec(None), opts);
    let files = precious(&fd);
    let (sn, sm) = fd.spaces();
    assert_close("free space before filling", sn.free, sm.free);

    let (n, m) = pair(&fd, |d| fill(&d.join("fill")));
    eprintln!("fill {opts:?}: native {n:?}, mount {m:?}");
    assert_eq!(
        n.error.as_deref(),
        errno_text::<()>(&Err(io::Error::from_raw_os_error(libc::ENOSPC))).as_deref(),
        "native ext4 did not stop with ENOSPC: {n:?}"
    );
    assert_eq!(
        (&m.error, &m.fsync),
        (&n.error, &n.fsync),
        "filling: the mount ended otherwise than native\n  native: {n:?}\n  mount:  {m:?}"
    );
    assert_close("pwrite until ENOSPC", n.written, m.written);
    assert_eq!((n.size, m.size), (n.written, m.written), "size != written");

    // The disk is full now.
    let one = vec![0xa5_u8; CHUNK];
    full_again(&fd);
    let (n, m) = pair(&fd, |d| create(&d.join("more"))?.write_at(&one, 0));
    same_enospc("pwrite to a new file on the full disk", n, m);
    full_again(&fd);
    let (n, m) = pair(&fd, |d| fs::create_dir(d.join("newdir")));
    same_enospc("mkdir on the full disk", n, m);
    full_again(&fd);
    let (n, m) = pair(&fd, |d| {
        fallocate(&create(&d.join("falloc"))?, 0, 0, 1 << 20)
    });
    same_enospc("fallocate 1 MiB on the full disk", n, m);
    full_again(&fd);
    let (n, m) = pair(&fd, |d| {
        let src = File::open(d.join("precious1"))?;
        let len = src.metadata()?.len();
        copy_file_range(&src, 0, &create(&d.join("copy"))?, 0, len)
    });
    same_enospc("copy_file_range on the full disk", n, m);
    // A symlink target longer than the 60 bytes an inode holds needs a block.
    full_again(&fd);
    let (n, m) = pair(&fd, |d| {
        std::os::unix::fs::symlink("t".repeat(200), d.join("longlink"))
    });
    same_enospc("symlink with a 200-byte target on the full disk", n, m);
    // An xattr too big for the inode's own space needs a block.
    full_again(&fd);
    let (n, m) = pair(&fd, |d| {
        lsetxattr(&d.join("precious2"), "user.big", &[7; 2048], 0)
    });
    same_enospc("setxattr of 2 KiB on the full disk", n, m);
    // What needs no block still works: a short symlink, a hard link, a rename, a small xattr.
    let (n, m) = pair(&fd, |d| {
        std::os::unix::fs::symlink("short", d.join("shortlink"))
    });
    same("symlink with a short target on the full disk", n, m);
    let (n, m) = pair(&fd, |d| {
        fs::hard_link(d.join("precious4"), d.join("hardlink"))
    });
    same("link on the full disk", n, m);
    let (n, m) = pair(&fd, |d| fs::rename(d.join("hardlink"), d.join("renamed")));
    same("rename on the full disk", n, m);

    assert_serving(&fd, &files);
    assert_precious(&fd.g.backing, &files, "in BACKING while the disk is full");

    // Freeing space through the mount makes writes work again.
    unlink_both(&fd, &["fill", "top-up"]);
    let big = vec![0x3c_u8; 4 << 20];
    let (n, m) = pair(&fd, |d| {
        let f = create(&d.join("after"))?;
        f.write_all_at(&big, 0)?;
        f.sync_all()
    });
    same_ok("write and fsync 4 MiB after freeing space", n, m);
    let (n, m) = pair(&fd, |d| fs::create_dir(d.join("newdir")));
    same_ok("mkdir after freeing space", n, m);
    assert_eq!(
        read_all(&fd.g.backing.join("after"))
            .map(|d| digest(&d))
            .ok(),
        Some(digest(&big)),
        "the write after freeing space is not in BACKING"
    );
    assert_trees_equal(&fd.g.native, &fd.g.mnt, TreeOpts::default());
    assert_precious_after_unmount(fd, &files);
}

#[test]
fn write_until_full_as_natively() {
    write_until_full(DEFAULT_TRANSPORT);
}

// ---------------------------------------------------------------------------------------------
// fallocate
// ---------------------------------------------------------------------------------------------

/// The size and allocated bytes of `path`.
fn size_and_blocks(path: &Path) -> io::Result<(u64, u64)> {
    let md = fs::metadata(path)?;
    Ok((md.len(), md.blocks() * 512))
}

/// The size and allocated bytes of `path` asked from the filesystem itself
/// (`statx(AT_STATX_FORCE_SYNC)`: through FUSE a GETATTR, never the kernel's cached
/// attributes).
fn size_and_blocks_synced(path: &Path) -> io::Result<(u64, u64)> {
    let c = cpath(path);
    // SAFETY: all-zero is a valid statx; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a writable statx, live during the call.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_FORCE_SYNC,
            libc::STATX_SIZE | libc::STATX_BLOCKS,
            &mut stx,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stx.stx_size, stx.stx_blocks * 512))
}

/// fallocate until the disk is full: 1 MiB steps stop with ENOSPC after the same number of
/// steps (give or take the tolerance); a KEEP_SIZE fallocate on the full disk fails the same;
/// a fallocate bigger than the disk fails with ENOSPC and leaves the same size and (nearly)
/// the same allocation; freeing space makes fallocate work again.
fn fallocate_until_full(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    let fd = FullDisk::new(&spec(None), opts);
    let files = precious(&fd);
    const STEP: u64 = 1 << 20;
    let (n, m) = pair(&fd, |d| {
        let f = create(&d.join("steps")).expect("create steps");
        let mut done = 0;
        let err = loop {
            if let Err(e) = fallocate(&f, 0, done, STEP) {
                break e;
            }
            done += STEP;
        };
        (done, err.raw_os_error())
    });
    eprintln!("fallocate steps {opts:?}: native {n:?}, mount {m:?}");
    assert_eq!(
        n.1,
        Some(libc::ENOSPC),
        "native fallocate steps ended with {n:?}"
    );
    assert_eq!(m.1, n.1, "fallocate steps: mount {m:?}, native {n:?}");
    assert_close("fallocate in 1 MiB steps", n.0, m.0);
    let (n, m) = pair(&fd, |d| size_and_blocks(&d.join("steps")));
    let (n, m) = (n.expect("stat steps"), m.expect("stat steps"));
    assert_close("size after the fallocate steps", n.0, m.0);
    assert_close("allocation after the fallocate steps", n.1, m.1);

    let (n, m) = pair(&fd, |d| {
        fallocate(
            &create(&d.join("keep"))?,
            libc::FALLOC_FL_KEEP_SIZE,
            0,
            STEP,
        )
    });
    same_enospc("fallocate KEEP_SIZE 1 MiB on the full disk", n, m);
    assert_serving(&fd, &files);

    // Free it, then ask for more than the whole disk.
    unlink_both(&fd, &["steps"]);
    let (n, m) = pair(&fd, |d| {
        let f = create(&d.join("huge"))?;
        fallocate(&f, 0, 0, 2 * IMAGE_BYTES)
    });
    same_enospc("fallocate of twice the disk", n, m);
    // A failed fallocate may have allocated part of what it was asked for (ext4 keeps what
    // it got, and the size grows with it). BACKING must hold what native holds; the mount
    // must report BACKING's values when asked (statx FORCE_SYNC). Its cached attributes do
    // not: the kernel's fuse_file_fallocate invalidates them only when FALLOCATE succeeds,
    // so a plain stat shows the old size until the attribute timeout (docs/RELIABILITY.md).
    let native = size_and_blocks(&fd.g.native.join("huge")).expect("stat native huge");
    let backing = size_and_blocks(&fd.g.backing.join("huge")).expect("stat backing huge");
    // The cached view first: the FORCE_SYNC statx refreshes the cache.
    let cached = size_and_blocks(&fd.g.mnt.join("huge")).expect("stat mount huge");
    let synced = size_and_blocks_synced(&fd.g.mnt.join("huge")).expect("statx mount huge");
    eprintln!(
        "after the huge fallocate {opts:?}: native {native:?}, backing {backing:?}, mount \
         (FORCE_SYNC) {synced:?}, mount (cached) {cached:?}"
    );
    assert_close("size after the failed huge fallocate", native.0, backing.0);
    assert_close(
        "allocation after the failed huge fallocate",
        native.1,
        backing.1,
    );
    assert_eq!(
        synced, backing,
        "statx(FORCE_SYNC) through the mount after the failed fallocate is not BACKING's"
    );

    unlink_both(&fd, &["huge"]);
    let (n, m) = pair(&fd, |d| fallocate(&create(&d.join("again"))?, 0, 0, STEP));
    same_ok("fallocate 1 MiB after freeing space", n, m);
    assert_precious(&fd.g.mnt, &files, "through the mount after the fallocates");
    assert_precious_after_unmount(fd, &files);
}

#[test]
fn fallocate_until_full_as_natively() {
    fallocate_until_full(DEFAULT_TRANSPORT);
}

// ---------------------------------------------------------------------------------------------
// copy_file_range
// ---------------------------------------------------------------------------------------------

/// copy_file_range of a 4 MiB file into new files until the disk is full: the last call fails
/// with the same errno, after (nearly) the same number of bytes; every complete copy equals
/// its source; after freeing space a copy works again.
fn copy_file_range_until_full(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    let fd = FullDisk::new(&spec(None), opts);
    let files = precious(&fd);
    let src_data: Vec<u8> = {
        let mut rng = Rng(0xc0b1_0000_0000_0001);
        (0..4 << 20).map(|_| rng.next() as u8).collect()
    };
    let len = src_data.len() as u64;
    pair(&fd, |d| {
        let f = create(&d.join("src")).expect("create src");
        f.write_all_at(&src_data, 0).expect("write src");
        f.sync_all().expect("fsync src");
    });
    // Returns (bytes copied in all, complete copies, the errno that stopped it).
    let (n, m) = pair(&fd, |d| {
        let src = File::open(d.join("src")).expect("open src");
        let mut total = 0;
        for copy in 0.. {
            let dst = match create(&d.join(format!("copy{copy}"))) {
                Ok(f) => f,
                Err(e) => return (total, copy, e.raw_os_error()),
            };
            let mut off = 0;
            while off < len {
                match copy_file_range(&src, off, &dst, off, len - off) {
                    Ok(0) => return (total, copy, Some(0)),
                    Ok(k) => {
                        off += k;
                        total += k;
                    }
                    Err(e) => return (total, copy, e.raw_os_error()),
                }
            }
        }
        unreachable!()
    });
    eprintln!("copy_file_range {opts:?}: native {n:?}, mount {m:?}");
    assert_eq!(
        n.2,
        Some(libc::ENOSPC),
        "natively the copies ended with {n:?}"
    );
    assert_eq!(m.2, n.2, "copy_file_range: mount {m:?}, native {n:?}");
    assert_close("copy_file_range until ENOSPC", n.0, m.0);
    for (dir, complete) in [(&fd.g.native, n.1), (&fd.g.mnt, m.1)] {
        for copy in 0..complete {
            let p = dir.join(format!("copy{copy}"));
            assert_eq!(
                read_all(&p).map(|d| digest(&d)).ok(),
                Some(digest(&src_data)),
                "{} is not a copy of src",
                p.display()
            );
        }
    }
    assert_serving(&fd, &files);
    // Free two copies' worth, then a copy fits again.
    unlink_both(&fd, &["copy0", "copy1"]);
    let (n, m) = pair(&fd, |d| {
        let src = File::open(d.join("src"))?;
        let dst = create(&d.join("again"))?;
        let mut off = 0;
        while off < len {
            off += copy_file_range(&src, off, &dst, off, len - off)?;
        }
        dst.sync_all()
    });
    same_ok("copy_file_range after freeing space", n, m);
    assert_eq!(
        read_all(&fd.g.backing.join("again"))
            .map(|d| digest(&d))
            .ok(),
        Some(digest(&src_data)),
        "the copy after freeing space is not in BACKING"
    );
    assert_precious_after_unmount(fd, &files);
}

#[test]
fn copy_file_range_until_full_as_natively() {
    copy_file_range_until_full(DEFAULT_TRANSPORT);
}

// ---------------------------------------------------------------------------------------------
// Inodes
// ---------------------------------------------------------------------------------------------

/// Inodes run out: on images with 64 inodes, creating empty files stops with ENOSPC after
/// exactly as many files as natively; then mkdir, a symlink and a FIFO fail the same, a hard
/// link (no new inode) works, and unlinking one file lets exactly one more be created.
fn inodes_run_out(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    let fd = FullDisk::new(&spec(Some(64)), opts);
    let (n, m) = pair(&fd, |d| {
        let mut made = 0u32;
        loop {
            match create(&d.join(format!("e{made}"))) {
                Ok(_) => made += 1,
                Err(e) => break (made, e.raw_os_error()),
            }
            assert!(made < 100_000, "never ran out of inodes");
        }
    });
    eprintln!("empty files until out of inodes {opts:?}: native {n:?}, mount {m:?}");
    assert_eq!(
        n.1,
        Some(libc::ENOSPC),
        "natively creation ended with {n:?}"
    );
    assert_eq!(
        m, n,
        "creating files until the inodes run out: mount vs native"
    );
    let (n, m) = pair(&fd, |d| fs::create_dir(d.join("dir")));
    same_enospc("mkdir without inodes", n, m);
    let (n, m) = pair(&fd, |d| std::os::unix::fs::symlink("e0", d.join("link")));
    same_enospc("symlink without inodes", n, m);
    let (n, m) = pair(&fd, |d| mknod(&d.join("fifo"), libc::S_IFIFO | 0o644, 0));
    same_enospc("mkfifo without inodes", n, m);
    let (n, m) = pair(&fd, |d| fs::hard_link(d.join("e0"), d.join("hard")));
    same_ok("link without inodes", n, m);
    // statfs through the mount shows BACKING's inode counts.
    let (b, mnt) = (
        statvfs(&fd.backing_fs.root).expect("statvfs backing fs"),
        statvfs(&fd.g.mnt).expect("statvfs mount"),
    );
    assert_eq!(
        (mnt.f_files, mnt.f_ffree),
        (b.f_files, b.f_ffree),
        "inode counts through the mount"
    );
    assert_eq!(
        b.f_ffree, 0,
        "BACKING's fs still has free inodes: {}",
        b.f_ffree
    );

    // The inode of a removed file comes back once its last link is gone.
    unlink_both(&fd, &["e1"]);
    let (n, m) = pair(&fd, |d| create(&d.join("new1")).map(|_| ()));
    same_ok("create after an unlink", n, m);
    let (n, m) = pair(&fd, |d| create(&d.join("new2")).map(|_| ()));
    same_enospc("create once the freed inode is used", n, m);
    assert_trees_equal(&fd.g.native, &fd.g.mnt, TreeOpts::default());
}

#[test]
fn inodes_run_out_as_natively() {
    inodes_run_out(DEFAULT_TRANSPORT);
}

// ---------------------------------------------------------------------------------------------
// Unlink frees at once
// ---------------------------------------------------------------------------------------------

/// Natively, unlinking a file nobody holds open frees its inode at once, so on a filesystem
/// out of inodes a create right after an unlink always succeeds. The daemon's `O_PATH` fd of
/// the inode would keep it as an orphan until the kernel's FORGET arrives (asynchronously, a
/// few ms later; the create then failed with ENOSPC 8 to 17 times in 1,000 tries), so the
/// unlink closes that fd itself.
fn create_right_after_unlink(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    const TRIES: usize = 1000;
    let fd = FullDisk::new(&spec(Some(64)), opts);
    let (n, m) = pair(&fd, |d| {
        let mut made = 0;
        while create(&d.join(format!("e{made}"))).is_ok() {
            made += 1;
        }
        let mut failed = Vec::new();
        for k in 0..TRIES {
            let victim = d.join(format!("e{}", k % made));
            fs::remove_file(&victim).expect("unlink");
            if let Err(e) = create(&victim) {
                failed.push((k, e.raw_os_error()));
                // Let the FORGET arrive, so the next try starts out of inodes again.
                let start = Instant::now();
                while create(&victim).is_err() {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "inode never freed"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        failed
    });
    assert!(
        n.is_empty(),
        "natively a create right after an unlink failed: {n:?}"
    );
    assert!(
        m.is_empty(),
        "{opts:?}: through the mount, {} of {TRIES} creates right after an unlink failed \
         (try, errno): {m:?}",
        m.len()
    );
}

#[test]
fn create_right_after_unlink_as_natively() {
    create_right_after_unlink(DEFAULT_TRANSPORT);
}

/// Natively `df` right after an unlink counts the freed inode. The daemon closes the last fd
/// of an unlinked file on a thread of its own, off the unlink's path; a STATFS through the
/// mount waits for those closes, so it counts the inode as well, every time.
fn statfs_right_after_unlink(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    const TRIES: usize = 300;
    let fd = FullDisk::new(&spec(Some(64)), opts);
    let (n, m) = pair(&fd, |d| {
        let mut made = 0;
        while create(&d.join(format!("e{made}"))).is_ok() {
            made += 1;
        }
        let mut miscounted = Vec::new();
        for k in 0..TRIES {
            let victim = d.join(format!("e{}", k % made));
            fs::remove_file(&victim).expect("unlink");
            let free = statvfs(d).expect("statvfs").f_ffree;
            if free != 1 {
                miscounted.push((k, free));
            }
            create(&victim).expect("create into the freed inode");
        }
        miscounted
    });
    assert!(
        n.is_empty(),
        "natively: free inodes right after an unlink {n:?}"
    );
    assert!(
        m.is_empty(),
        "{opts:?}: through the mount, {} of {TRIES} statfs right after an unlink did not \
         count the freed inode (try, free inodes): {m:?}",
        m.len()
    );
}

#[test]
fn statfs_right_after_unlink_as_natively() {
    statfs_right_after_unlink(DEFAULT_TRANSPORT);
}

// ---------------------------------------------------------------------------------------------
// A failed fallocate's partial allocation
// ---------------------------------------------------------------------------------------------

/// A fallocate that fails with ENOSPC may still have allocated part of the range and grown
/// the file (ext4 keeps what it got). Natively the next `stat` shows it. The kernel's
/// `fuse_file_fallocate` invalidates its cached attributes only when FALLOCATE succeeds, so
/// the daemon invalidates them itself after a failed one (`FUSE_NOTIFY_INVAL_INODE`); without
/// that a plain `stat` showed the old size until the attribute timeout.
fn stat_after_failed_fallocate(opts: &[&str]) {
    if !require_loop_ext4() {
        return;
    }
    let fd = FullDisk::new(&spec(None), opts);
    let (n, m) = pair(&fd, |d| {
        let f = create(&d.join("huge"))?;
        fallocate(&f, 0, 0, 2 * IMAGE_BYTES)
    });
    same_enospc("fallocate of twice the disk", n, m);
    let (n, m) = pair(&fd, |d| size_and_blocks(&d.join("huge")));
    same(
        "stat (size, allocated bytes) right after the failed fallocate",
        n,
        m,
    );
}

#[test]
fn stat_after_failed_fallocate_as_natively() {
    stat_after_failed_fallocate(DEFAULT_TRANSPORT);
}
