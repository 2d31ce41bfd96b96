//! Space limits through the mount, compared with the same writes on native ext4.
//!
//! Each test makes its own small ext4 on a loop device ([`LoopExt4`]) with 20 % of its blocks
//! reserved for root, and puts both the native directory and the mount's BACKING on it. The
//! native run goes first; its files are then deleted and the fs synced, so the run through the
//! mount starts from the same free space (asserted) and meets the same limits. Every writer is
//! the same on both sides: a thread with fsuid 1000 and no capabilities ([`as_user`]), a
//! forked child that really is uid 1000 (for the page faults of a shared mapping), a root
//! thread with no effective capabilities, or the test's own root thread with all of them.
//!
//! ext4 lets a writer into the reserved blocks when it has CAP_SYS_RESOURCE, or its fsuid is
//! the fs's `resuid` (default 0), or it is in the group `resgid` (if not 0)
//! (`ext4_has_free_clusters`). Besides the `-m` reserve, ext4 keeps 2 % (at most 4096
//! clusters) for its own metadata that even root cannot use; `statvfs` counts both as not
//! available.
//!
//! User quotas (`mkfs.ext4 -O quota`, `setquota`) are not tested: this kernel is built without
//! `CONFIG_QFMT_V2`, and ext4 refuses to mount a fs with the quota feature ("The kernel was not
//! built with CONFIG_QUOTA and CONFIG_QFMT_V2").

mod common;

use common::loopfs::*;
use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Size of each loop fs. Small, so filling it takes well under a second, but big enough that
/// ext4's 2 % metadata reserve and the journal leave a usable fs.
const IMAGE_BYTES: u64 = 64 << 20;

/// `mkfs.ext4 -m`: the share of blocks reserved for root.
const RESERVED_PERCENT: u32 = 20;

/// Block size of the loop fs (mkfs would pick 1 KiB for a fs this small).
const BLOCK: u64 = 4096;

/// The unit of each `write(2)`: one block, so no write is short on either side and both stop
/// at a block boundary.
const CHUNK: usize = BLOCK as usize;

/// How far the native and the mounted run may stop apart, in bytes. ext4 decides ENOSPC from
/// per-CPU counters and the delalloc reservations of the moment (and switches to nodelalloc
/// near full), so even two native runs can differ by a few blocks; the difference measured
/// here was under 10 blocks. 64 blocks is small next to the reserve (~3,300 blocks), the
/// quantity the tests are about.
const TOLERANCE: u64 = 64 * BLOCK;

/// What root writes into its reserve once a limited writer is stopped.
const ROOT_EXTRA: u64 = 1 << 20;

/// A fresh loop fs of [`IMAGE_BYTES`] with [`RESERVED_PERCENT`] reserved, mounted with `opts`.
fn limits_fs(opts: &str) -> LoopExt4 {
    LoopExt4::new(
        &Mkfs {
            bytes: IMAGE_BYTES,
            block: BLOCK,
            reserved_percent: RESERVED_PERCENT,
            inodes: None,
            deterministic: false,
        },
        opts,
    )
}

/// `a` and `b` are within [`TOLERANCE`] of each other.
fn close_to(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= TOLERANCE
}

/// A [`MountGuard`] whose BACKING and native directories are `backing` and `native` (on a loop
/// fs); its mount point and log stay in an ordinary scratch directory.
fn mount_on(backing: PathBuf, native: PathBuf) -> MountGuard {
    let mut dirs = Scratch::new();
    dirs.backing = backing;
    dirs.native = native;
    MountGuard::start(dirs, &[], &[])
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// Who writes.
#[derive(Debug, Clone, Copy)]
enum Writer {
    /// fsuid/fsgid 1000, no capabilities.
    User,
    /// The same user with one supplementary group.
    UserInGroup(u32),
    /// fsuid/fsgid 0 with an empty effective capability set.
    CaplessRoot,
    /// The test's own thread: root with the test process's capabilities (a sandbox may lack
    /// some, CAP_SYS_RESOURCE here).
    Root,
}

impl Writer {
    fn run<T: Send>(self, f: impl FnOnce() -> T + Send) -> T {
        match self {
            Writer::User => as_user(USER, GROUP, f),
            Writer::UserInGroup(group) => as_user_with_groups(USER, GROUP, &[group], f),
            Writer::CaplessRoot => as_user(0, 0, f),
            Writer::Root => f(),
        }
    }
}

/// How a sequence of writes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fill {
    /// Bytes the writes reported written.
    written: u64,
    /// The error that stopped them (`None`: the limit was not reached).
    error: Option<String>,
    /// The error of close(2), if any.
    close: Option<String>,
    /// The file's size afterwards.
    size: u64,
}

/// Creates `path` and writes [`CHUNK`]s to it until a write fails or `limit` bytes are written.
fn write_until(path: &Path, limit: u64) -> Fill {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let buf = vec![0x5a_u8; CHUNK];
    let mut written = 0;
    let mut error = None;
    while written < limit {
        match f.write(&buf) {
            Ok(0) => {
                error = Some("write returned 0".to_string());
                break;
            }
            Ok(n) => written += n as u64,
            Err(e) => {
                error = outcome::<()>(Err(e)).err();
                break;
            }
        }
    }
    // std's drop ignores close errors: close by hand.
    let fd = std::os::fd::IntoRawFd::into_raw_fd(f);
    // SAFETY: we own fd (just taken out of the File) and close it once.
    let close = (unsafe { libc::close(fd) } != 0)
        .then(|| outcome::<()>(Err(io::Error::last_os_error())).unwrap_err());
    let size = fs::metadata(path).map_or(0, |m| m.len());
    Fill {
        written,
        error,
        close,
        size,
    }
}

/// One writer filling `dir` until ENOSPC, then root writing [`ROOT_EXTRA`] into the reserve.
#[derive(Debug)]
struct Run {
    /// Free space before.
    before: Space,
    /// The limited writer.
    fill: Fill,
    /// Free space once it was stopped.
    after_fill: Space,
    /// Root's write afterwards.
    root: Fill,
}

/// Runs `writer` filling `dir/fill`, then root writing `dir/root`, measuring the loop fs.
fn run_fill(lo: &LoopExt4, dir: &Path, writer: Writer) -> Run {
    let before = lo.space();
    let path = dir.join("fill");
    let fill = writer.run(|| write_until(&path, IMAGE_BYTES));
    let after_fill = lo.space();
    let root = write_until(&dir.join("root"), ROOT_EXTRA);
    Run {
        before,
        fill,
        after_fill,
        root,
    }
}

/// Deletes what a run left in the native directory and checks the fs is as free as `fresh`.
fn clean_native(lo: &LoopExt4, native: &Path, fresh: Space) {
    for e in fs::read_dir(native).expect("read native dir") {
        let e = e.expect("native dir entry");
        fs::remove_file(e.path()).expect("remove a native file");
    }
    // A process forked by a parallel test may hold a copy of the fd for a moment (until its
    // close_range), keeping the blocks allocated: give it time.
    let mut now = lo.space();
    for _ in 0..100 {
        if close_to(now.free, fresh.free) && close_to(now.avail, fresh.avail) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
        now = lo.space();
    }
    panic!(
        "deleting the native run's files did not give its space back: {now:?} vs fresh {fresh:?}"
    );
}

/// The assertions all fill tests share: the mount stopped where native did, with the same
/// error, and root's extra megabyte afterwards fared the same on both sides (and fit, if
/// `root_fits`).
#[track_caller]
fn assert_same_stop(what: &str, native: &Run, mount: &Run, root_fits: bool) {
    assert!(
        close_to(native.before.avail, mount.before.avail)
            && close_to(native.before.free, mount.before.free),
        "{what}: the runs did not start from the same free space: native {:?}, mount {:?}",
        native.before,
        mount.before
    );
    assert_eq!(
        native.fill.error.as_deref(),
        Some(enospc().as_str()),
        "{what}: native ext4 did not stop with ENOSPC: {native:?}"
    );
    assert_eq!(
        mount.fill.error, native.fill.error,
        "{what}: the mount stopped with another error\n  native: {native:?}\n  mount:  {mount:?}"
    );
    assert_eq!(
        mount.fill.close, native.fill.close,
        "{what}: close(2) differs\n  native: {native:?}\n  mount:  {mount:?}"
    );
    for (side, run) in [("natively", native), ("through the mount", mount)] {
        assert_eq!(
            run.fill.written, run.fill.size,
            "{what}: {side} the file size is not what the writes reported: {run:?}"
        );
    }
    assert!(
        close_to(native.fill.written, mount.fill.written),
        "{what}: the mount stopped {} bytes {} native (tolerance {TOLERANCE})\n  \
         native: {native:?}\n  mount:  {mount:?}",
        native.fill.written.abs_diff(mount.fill.written),
        if mount.fill.written > native.fill.written {
            "after"
        } else {
            "before"
        },
    );
    assert!(
        close_to(native.after_fill.free, mount.after_fill.free),
        "{what}: a different amount of space is left for root\n  native: {native:?}\n  \
         mount:  {mount:?}"
    );
    // Where the limited writer stopped a block earlier, root finds that block free.
    assert!(
        (&mount.root.error, &mount.root.close) == (&native.root.error, &native.root.close)
            && close_to(native.root.written, mount.root.written),
        "{what}: root's write afterwards differs\n  native: {native:?}\n  mount:  {mount:?}"
    );
    if root_fits {
        assert_eq!(
            (native.root.written, &native.root.error, &native.root.close),
            (ROOT_EXTRA, &None, &None),
            "{what}: natively, root could not write into its reserve: {native:?}"
        );
    }
}

fn enospc() -> String {
    outcome::<()>(Err(io::Error::from_raw_os_error(libc::ENOSPC))).unwrap_err()
}

/// The writer did not reach the reserve: it stopped with (nearly) nothing available to it,
/// and everything the reserve held is still free.
#[track_caller]
fn assert_kept_out_of_reserve(what: &str, fresh: Space, run: &Run) {
    assert!(
        run.after_fill.avail <= TOLERANCE,
        "{what}: stopped with {} bytes still available to it: {run:?}",
        run.after_fill.avail
    );
    assert!(
        run.after_fill.free + TOLERANCE >= fresh.reserve(),
        "{what}: ate {} bytes into root's reserve of {}: {run:?}",
        fresh.reserve() - run.after_fill.free,
        fresh.reserve()
    );
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// An unprivileged user writing until ENOSPC stops at the end of the non-reserved space on
/// the mount exactly as natively (its writes run as fsuid 1000 without CAP_SYS_RESOURCE), and
/// root can still write into the reserve afterwards on both sides.
#[test]
fn user_write_stops_at_the_reserved_blocks() {
    if !require_loop_ext4() {
        return;
    }
    let lo = limits_fs("");
    let native = lo.subdir("native");
    let g = mount_on(lo.subdir("backing"), native.clone());
    let fresh = lo.space();
    assert!(
        fresh.reserve() > IMAGE_BYTES / 10,
        "mkfs -m {RESERVED_PERCENT} left a reserve of only {} bytes: {fresh:?}",
        fresh.reserve()
    );

    let n = run_fill(&lo, &native, Writer::User);
    clean_native(&lo, &native, fresh);
    let m = run_fill(&lo, &g.mnt, Writer::User);

    report("user 1000", fresh, &n, &m);
    assert_same_stop("user 1000 writing", &n, &m, true);
    assert_kept_out_of_reserve("user 1000 writing natively", fresh, &n);
    assert_kept_out_of_reserve("user 1000 writing through the mount", fresh, &m);
}

/// A root thread with no effective capabilities, writing until ENOSPC.
///
/// ext4 opens the reserve to CAP_SYS_RESOURCE *or* an fsuid equal to the fs's `resuid`, which
/// is 0 unless set. So with the default resuid, fsuid 0 alone takes it into the reserve
/// natively (down to ext4's own 2 %, leaving nothing for root's extra write afterwards), and
/// so it must on the mount: the daemon runs it as fsuid 0 with an empty capability set, not
/// as a user. With `resuid=65534` (as this machine's own root fs is mounted) it stops where a
/// user stops, natively and on the mount, and root's extra write fits if root holds
/// CAP_SYS_RESOURCE.
#[test]
fn capless_root_write_meets_the_reserve_as_natively() {
    if !require_loop_ext4() {
        return;
    }
    // resuid 0 (default): fsuid 0 may use the reserve, capabilities or not.
    {
        let lo = limits_fs("");
        let native = lo.subdir("native");
        let g = mount_on(lo.subdir("backing"), native.clone());
        let fresh = lo.space();
        let n = run_fill(&lo, &native, Writer::CaplessRoot);
        clean_native(&lo, &native, fresh);
        let m = run_fill(&lo, &g.mnt, Writer::CaplessRoot);
        report("capless root, resuid 0", fresh, &n, &m);
        assert_same_stop("capless root writing (resuid 0)", &n, &m, false);
        for (side, run) in [("natively", &n), ("through the mount", &m)] {
            assert!(
                run.fill.written > fresh.avail + fresh.reserve() / 2,
                "capless root with fsuid = resuid 0 did not get into the reserve {side}: \
                 {run:?}, fresh {fresh:?}"
            );
        }
    }
    // resuid 65534: only CAP_SYS_RESOURCE opens the reserve.
    {
        let lo = limits_fs("resuid=65534");
        let native = lo.subdir("native");
        let g = mount_on(lo.subdir("backing"), native.clone());
        let fresh = lo.space();
        let n = run_fill(&lo, &native, Writer::CaplessRoot);
        clean_native(&lo, &native, fresh);
        let m = run_fill(&lo, &g.mnt, Writer::CaplessRoot);
        report("capless root, resuid 65534", fresh, &n, &m);
        assert_same_stop(
            "capless root writing (resuid 65534)",
            &n,
            &m,
            has_cap_sys_resource(),
        );
        assert_kept_out_of_reserve("capless root writing natively", fresh, &n);
        assert_kept_out_of_reserve("capless root writing through the mount", fresh, &m);
    }
}

/// Root with all the capabilities it holds writes until ENOSPC: into the reserve when its
/// fsuid is the fs's `resuid` (default 0), and with `resuid=65534` only if it holds
/// CAP_SYS_RESOURCE (this machine's root does not: its bounding set lacks it). The daemon
/// must give a root caller exactly its own rights: neither drop them nor add its own.
#[test]
fn root_write_uses_the_reserve_as_natively() {
    if !require_loop_ext4() {
        return;
    }
    for (opts, reserve_open) in [("", true), ("resuid=65534", has_cap_sys_resource())] {
        let lo = limits_fs(opts);
        let native = lo.subdir("native");
        let g = mount_on(lo.subdir("backing"), native.clone());
        let fresh = lo.space();
        let n = run_fill(&lo, &native, Writer::Root);
        clean_native(&lo, &native, fresh);
        let m = run_fill(&lo, &g.mnt, Writer::Root);
        let what = format!("root writing (mount options {opts:?})");
        report(&what, fresh, &n, &m);
        // After root's own fill, its extra write has no room either way.
        assert_same_stop(&what, &n, &m, false);
        for (side, run) in [("natively", &n), ("through the mount", &m)] {
            if reserve_open {
                assert!(
                    run.fill.written > fresh.avail + fresh.reserve() / 2,
                    "{what}: root did not get into the reserve {side}: {run:?}, fresh {fresh:?}"
                );
            } else {
                assert_kept_out_of_reserve(&format!("{what} {side}"), fresh, run);
            }
        }
    }
}

/// Whether this thread holds CAP_SYS_RESOURCE in its effective set (a sandbox's root may not).
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = fs::read_to_string("/proc/thread-self/status").expect("read own status");
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapEff in /proc/thread-self/status");
    eff & (1 << CAP_SYS_RESOURCE) != 0
}

/// Prints what both sides did (shown with `--nocapture` or when the test fails).
fn report(what: &str, fresh: Space, n: &Run, m: &Run) {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "{what}: fresh fs: {:.3} MiB free, {:.3} MiB available; stopped after {:.3} MiB \
         natively, {:.3} MiB on the mount ({} bytes apart); left free {:.3} / {:.3} MiB; \
         root's extra write {:?} / {:?}",
        mib(fresh.free),
        mib(fresh.avail),
        mib(n.fill.written),
        mib(m.fill.written),
        n.fill.written.abs_diff(m.fill.written),
        mib(n.after_fill.free),
        mib(m.after_fill.free),
        n.root.error.as_deref().unwrap_or("ok"),
        m.root.error.as_deref().unwrap_or("ok"),
    );
}

// ---------------------------------------------------------------------------------------------
// Shared mappings
// ---------------------------------------------------------------------------------------------

/// How a child writing through a shared mapping ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MapWrite {
    /// Pages the child finished writing before it stopped (or was killed).
    pages: u64,
    /// The signal that killed it (SIGBUS natively, when ext4's page_mkwrite finds no space).
    signal: Option<i32>,
    /// Its exit code, if it exited.
    exit: Option<i32>,
    /// errno of each step, 0 = success, -1 = not reached: open, ftruncate, mmap, msync,
    /// munmap, close.
    steps: [i64; 6],
}

impl MapWrite {
    /// Every page written, msync, munmap and close succeeded.
    fn complete(&self, pages: u64) -> bool {
        self.pages == pages && self.exit == Some(0) && self.steps == [0; 6]
    }
}

/// Forks a child that becomes uid/gid `uid` (real, effective and fs ids; the supplementary
/// `groups`; no capabilities), creates `path`, ftruncates it to `len`, maps it `MAP_SHARED`,
/// fills every page, then msyncs, munmaps and closes it. A fork, not a thread, so a SIGBUS
/// kills the child, not the test. The child makes only async-signal-safe calls (raw syscalls,
/// stores into memory) and reports through a shared anonymous page.
fn map_write_as(uid: u32, groups: &[u32], path: &Path, len: u64) -> MapWrite {
    const PAGE: usize = 4096;
    const NSTEPS: usize = 6;
    let c = cpath(path);
    let len = usize::try_from(len).expect("length fits usize");
    // SAFETY: a fresh anonymous shared mapping; no existing memory is touched.
    let report = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(report, libc::MAP_FAILED, "mmap report page");
    let report = report.cast::<i64>();
    // report[0]: pages done, report[1..=6]: the steps.
    for i in 0..=NSTEPS {
        // SAFETY: within the page mapped above.
        unsafe { report.add(i).write_volatile(if i == 0 { 0 } else { -1 }) };
    }
    // SAFETY: the child only makes raw syscalls and stores into the two mappings before
    // _exit; `c` and `report` were made before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above. Every pointer is into a live mapping of the given length.
        unsafe {
            let errno = || -> i64 { i64::from(*libc::__errno_location()) };
            let step = |i: usize, v: i64| report.add(1 + i).write_volatile(v);
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
            // The fds the test process had open (other tests' files among them) would keep
            // deleted files' blocks allocated for as long as this child runs.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setresgid, uid, uid, uid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                libc::_exit(101);
            }
            let fd = libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o644,
            );
            step(0, if fd < 0 { errno() } else { 0 });
            if fd < 0 {
                libc::_exit(1);
            }
            let rc = libc::ftruncate(fd, len as libc::off_t);
            step(1, if rc < 0 { errno() } else { 0 });
            if rc < 0 {
                libc::_exit(1);
            }
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            step(2, if p == libc::MAP_FAILED { errno() } else { 0 });
            if p == libc::MAP_FAILED {
                libc::_exit(1);
            }
            let p = p.cast::<u8>();
            for page in 0..len / PAGE {
                std::ptr::write_bytes(p.add(page * PAGE), 0xa5, PAGE);
                report.write_volatile(page as i64 + 1);
            }
            let rc = libc::msync(p.cast(), len, libc::MS_SYNC);
            step(3, if rc < 0 { errno() } else { 0 });
            let rc = libc::munmap(p.cast(), len);
            step(4, if rc < 0 { errno() } else { 0 });
            let rc = libc::close(fd);
            step(5, if rc < 0 { errno() } else { 0 });
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
    let read = |i: usize| {
        // SAFETY: within the report page, which the child no longer writes.
        unsafe { report.add(i).read_volatile() }
    };
    let mut steps = [0i64; NSTEPS];
    for (i, s) in steps.iter_mut().enumerate() {
        *s = read(1 + i);
    }
    let result = MapWrite {
        pages: u64::try_from(read(0)).unwrap_or(0),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        exit: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        steps,
    };
    // SAFETY: the report page mapped above, not used any more.
    unsafe { libc::munmap(report.cast(), PAGE) };
    assert_ne!(
        result.exit,
        Some(101),
        "the child could not become uid {uid}"
    );
    result
}

/// The whole of one shared-mapping run: what the child saw, what reached the disk.
#[derive(Debug)]
struct MapRun {
    before: Space,
    child: MapWrite,
    /// Blocks the file holds on the loop fs (read there, not through the mount).
    allocated: u64,
    after: Space,
    /// Root's write into the reserve afterwards.
    root: Fill,
}

/// User 1000 (with the supplementary `groups`) writes a `len`-byte file through a shared
/// mapping at `dir/map`; `on_disk` is where
/// the file shows up on the loop fs itself.
fn run_map(lo: &LoopExt4, dir: &Path, on_disk: &Path, groups: &[u32], len: u64) -> MapRun {
    let before = lo.space();
    let child = map_write_as(USER, groups, &dir.join("map"), len);
    // Whatever the child left dirty is written out before the fs is measured.
    let after = lo.space();
    let allocated = fs::metadata(on_disk.join("map"))
        .expect("stat map")
        .blocks()
        * 512;
    let root = write_until(&dir.join("root"), ROOT_EXTRA);
    MapRun {
        before,
        child,
        allocated,
        after,
        root,
    }
}

/// User 1000 dirties, through a shared mapping, more pages than it has space for. Natively
/// ext4 reserves the blocks at the page fault (page_mkwrite, as the faulting user), finds none
/// left outside the reserve and kills the writer with SIGBUS. Through FUSE the fault reserves
/// nothing: the pages are written back later by the kernel on nobody's behalf (pid 0), which
/// the daemon must run as the opener (fsuid 1000, no capabilities), not as its own root with
/// CAP_SYS_RESOURCE. So on the mount the writeback fails with ENOSPC, reported by msync (or
/// close) rather than SIGBUS.
///
/// Allowed difference: *how* the writer learns it (SIGBUS natively; an msync/munmap/close
/// error, EIO or ENOSPC, on the mount, where the page faults themselves cannot fail).
/// Must be equal: the whole write does not succeed on either side, the file holds about as
/// many blocks (what the user may have) on both, the reserve stays free, and root can still
/// write into it afterwards.
#[test]
fn user_shared_mapping_stays_out_of_the_reserve() {
    if !require_loop_ext4() {
        return;
    }
    let lo = limits_fs("");
    let native = lo.subdir("native");
    let backing = lo.subdir("backing");
    let g = mount_on(backing.clone(), native.clone());
    let fresh = lo.space();
    // More than the user may have, less than the user plus the reserve: were the writeback
    // done as root, all of it would fit, in the reserve.
    let len = (fresh.avail + fresh.reserve() / 2) / BLOCK * BLOCK;
    let pages = len / 4096;

    let n = run_map(&lo, &native, &native, &[], len);
    clean_native(&lo, &native, fresh);
    let m = run_map(&lo, &g.mnt, &backing, &[], len);
    let what = format!("shared mapping of {len} bytes by user 1000, {fresh:?}");
    eprintln!("{what}:\n  native: {n:?}\n  mount:  {m:?}");

    assert!(
        close_to(n.before.free, m.before.free) && close_to(n.before.avail, m.before.avail),
        "{what}: the runs did not start from the same free space\n  native: {n:?}\n  mount:  {m:?}"
    );
    assert!(
        !n.child.complete(pages),
        "{what}: natively the whole write succeeded: {n:?}"
    );
    assert!(
        !m.child.complete(pages),
        "{what}: through the mount the whole write succeeded (written back as root?): {m:?}"
    );
    // The part of native's outcome the test relies on: the writer is stopped at the fault.
    assert_eq!(
        n.child.signal,
        Some(libc::SIGBUS),
        "{what}: native ext4 did not SIGBUS the writer: {n:?}"
    );
    // On the mount the faults succeed and the error comes with the writeback.
    let m_failed_step = m.child.steps[3..].iter().any(|&e| e > 0);
    assert!(
        m.child.signal == Some(libc::SIGBUS) || m_failed_step,
        "{what}: the mount reported no error to the writer: {m:?}"
    );
    assert!(
        close_to(n.allocated, m.allocated),
        "{what}: the file got {} bytes on disk through the mount, {} natively\n  native: {n:?}\n  \
         mount:  {m:?}",
        m.allocated,
        n.allocated
    );
    for (side, run) in [("natively", &n), ("through the mount", &m)] {
        assert!(
            run.after.avail <= TOLERANCE && run.after.free + TOLERANCE >= fresh.reserve(),
            "{what}: {side} the user's mapped writes reached root's reserve: {run:?}"
        );
        assert!(
            run.allocated <= run.before.avail + TOLERANCE,
            "{what}: {side} the file holds more than the user had: {run:?}"
        );
        assert_eq!(
            (run.root.written, &run.root.error, &run.root.close),
            (ROOT_EXTRA, &None, &None),
            "{what}: {side} root could not write into its reserve afterwards: {run:?}"
        );
    }
}

/// The loop fs guard leaves nothing behind, also when the test using it panics.
#[test]
fn loop_fs_is_gone_after_a_panic() {
    if !require_loop_ext4() {
        return;
    }
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lo = limits_fs("");
        *seen.lock().expect("lock") = Some((lo.dir.clone(), lo.root.clone(), lo.dev.clone()));
        fs::write(lo.root.join("x"), b"x").expect("write on the loop fs");
        panic!("deliberate panic with the loop fs mounted");
    }));
    assert!(result.is_err());
    let (dir, root, dev) = seen
        .into_inner()
        .expect("lock")
        .expect("the loop fs was made");
    assert!(!is_mounted(&root), "{} still mounted", root.display());
    assert!(!dir.exists(), "{} still exists", dir.display());
    let dev = dev.expect("a loop device was attached");
    let list = run_ok("losetup", &["-a".as_ref()]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list
            .lines()
            .any(|l| l.starts_with(&format!("{dev}:")) && l.contains(&*dir.to_string_lossy())),
        "{dev} still attached to the image: {list}"
    );
}

/// A supplementary group no test user has by default; the fs's `resgid` in the tests below.
const RESGID: u32 = 3000;

/// ext4 also opens the reserve to members of the group `resgid` (fsgid or a supplementary
/// group). A user whose supplementary group it is writes into the reserve natively; through
/// the mount its writes must too, so the daemon's data I/O needs the caller's groups, not its
/// own.
#[test]
fn user_in_resgid_group_write_uses_the_reserve_as_natively() {
    if !require_loop_ext4() {
        return;
    }
    let lo = limits_fs(&format!("resgid={RESGID}"));
    let native = lo.subdir("native");
    let g = mount_on(lo.subdir("backing"), native.clone());
    let fresh = lo.space();
    let n = run_fill(&lo, &native, Writer::UserInGroup(RESGID));
    clean_native(&lo, &native, fresh);
    let m = run_fill(&lo, &g.mnt, Writer::UserInGroup(RESGID));
    report("user 1000 in group resgid", fresh, &n, &m);
    assert_same_stop("user 1000 in group resgid writing", &n, &m, false);
    assert!(
        n.fill.written > fresh.avail + fresh.reserve() / 2,
        "natively a member of resgid did not get into the reserve: {n:?}, fresh {fresh:?}"
    );
}

/// The same user writing through a shared mapping: natively the page faults reserve blocks as
/// the user, group included, so the whole write fits; on the mount the writeback runs as the
/// opener, and must count the opener's groups too.
#[test]
fn user_in_resgid_group_shared_mapping_uses_the_reserve_as_natively() {
    if !require_loop_ext4() {
        return;
    }
    let lo = limits_fs(&format!("resgid={RESGID}"));
    let native = lo.subdir("native");
    let backing = lo.subdir("backing");
    let g = mount_on(backing.clone(), native.clone());
    let fresh = lo.space();
    let len = (fresh.avail + fresh.reserve() / 2) / BLOCK * BLOCK;
    let pages = len / 4096;
    let n = run_map(&lo, &native, &native, &[RESGID], len);
    clean_native(&lo, &native, fresh);
    let m = run_map(&lo, &g.mnt, &backing, &[RESGID], len);
    let what = format!("shared mapping of {len} bytes by user 1000 in group resgid, {fresh:?}");
    eprintln!("{what}:\n  native: {n:?}\n  mount:  {m:?}");
    assert!(
        n.child.complete(pages),
        "{what}: natively the write did not fit: {n:?}"
    );
    assert_eq!(
        (m.child.complete(pages), m.child.signal, m.child.steps),
        (true, None, [0; 6]),
        "{what}: the mount refused what native allowed\n  native: {n:?}\n  mount:  {m:?}"
    );
    assert!(
        close_to(n.allocated, m.allocated) && close_to(n.after.free, m.after.free),
        "{what}: different space used\n  native: {n:?}\n  mount:  {m:?}"
    );
}

/// A `uringfs -f -o allow_other BACKING MNT` started with the supplementary `groups` (as a
/// daemon run by a root in more groups than root, or by a service manager's
/// `SupplementaryGroups=`, would have). [`MountGuard`] cannot set them. Drop unmounts (lazily),
/// reaps the daemon (SIGKILL after a grace period) and removes the mount point's scratch dir.
struct GroupDaemon {
    /// Mount point (`mnt`), log and unused `backing`/`native`.
    dirs: Scratch,
    /// The daemon, until reaped.
    child: Option<std::process::Child>,
}

impl GroupDaemon {
    fn start(backing: &Path, groups: &[u32]) -> GroupDaemon {
        use std::os::unix::process::CommandExt;
        let dirs = Scratch::new();
        let log = dirs.root.join("uringfs.log");
        let logfile = File::create(&log).expect("create daemon log");
        let groups = groups.to_vec();
        let mut cmd = Command::new(bin());
        cmd.args(["-f", "-o", "allow_other"])
            .arg(backing)
            .arg(&dirs.mnt)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log fd"))
            .stderr(logfile);
        // SAFETY: the closure only makes the setgroups syscall (async-signal-safe) on a vector
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let mut d = GroupDaemon {
            dirs,
            child: Some(child),
        };
        let deadline = std::time::Instant::now() + MOUNT_TIMEOUT;
        while !is_fuse_mounted(&d.dirs.mnt) {
            let exited = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "uringfs ({exited:?}) did not mount {}: {}",
                d.dirs.mnt.display(),
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for GroupDaemon {
    fn drop(&mut self) {
        if is_mounted(&self.dirs.mnt) {
            lazy_unmount(&self.dirs.mnt);
        }
        if let Some(mut child) = self.child.take()
            && wait_timeout(&mut child, Duration::from_secs(5)).is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The other side of the same coin: a user in none of the daemon's groups must not get the
/// reserve because the *daemon* is in group `resgid`. Natively user 1000 (no supplementary
/// groups) stops at the non-reserved space; through a mount whose daemon has `resgid` among
/// its supplementary groups it must stop at the same point.
#[test]
fn daemon_groups_do_not_open_the_reserve_to_a_user() {
    if !require_loop_ext4() {
        return;
    }
    let lo = limits_fs(&format!("resgid={RESGID}"));
    let native = lo.subdir("native");
    let backing = lo.subdir("backing");
    let d = GroupDaemon::start(&backing, &[RESGID]);
    let fresh = lo.space();
    let n = run_fill(&lo, &native, Writer::User);
    clean_native(&lo, &native, fresh);
    let m = run_fill(&lo, &d.dirs.mnt, Writer::User);
    report("user 1000, daemon in group resgid", fresh, &n, &m);
    assert_same_stop("user 1000 writing, daemon in group resgid", &n, &m, false);
    assert_kept_out_of_reserve("user 1000 writing natively", fresh, &n);
    assert_kept_out_of_reserve("user 1000 writing through the mount", fresh, &m);
}
