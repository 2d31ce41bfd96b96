//! Shared harness for the integration tests.
//!
//! Every test gets its own scratch directory on the target disk (ext4, not a tmpfs `/tmp`)
//! holding `backing/` (what uringfs mirrors), `mnt/` (the mount point) and `native/` (a plain
//! directory on the same disk that receives the same operations, so the mount can be compared
//! with what Linux itself does). [`MountGuard`] owns the running `uringfs -f` child and tears
//! everything down on drop, also when the test panicked.
//!
//! Set `URINGFS_BIN` to run the suite against another binary with the same command line (used to
//! check the suite itself against a reference passthrough); CI never sets it.

// Each test crate includes this module and uses a different subset of it.
#![allow(dead_code)]

pub mod loopfs;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Debug;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a mount may take to appear, and a signalled daemon to exit.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the daemon may take to log its counters after SIGUSR1, and the kernel to deliver
/// the FORGETs of a cache drop. Only a deadline for polling, never a timed assertion: a
/// working daemon answers in milliseconds.
pub const COUNTERS_TIMEOUT: Duration = Duration::from_secs(30);

/// The unprivileged user the permission tests act as (exists as `cloudsdk` here, but only the
/// number matters: the tests never need a passwd entry).
pub const USER: u32 = 1000;
/// The unprivileged user's primary group.
pub const GROUP: u32 = 1000;

/// The binary under test.
pub fn bin() -> PathBuf {
    std::env::var_os("URINGFS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_uringfs")))
}

/// Whether mount tests can run. Without root or `/dev/fuse` they cannot: under `CI=true` that
/// is a broken CI and panics loudly; elsewhere the test reports the skip (see [`skip`]) and
/// returns early.
pub fn require_root_and_fuse() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return skip(&format!(
            "not running as root (euid {euid}); FUSE integration tests need root and /dev/fuse"
        ));
    }
    if !Path::new("/dev/fuse").exists() {
        return skip("/dev/fuse is missing; FUSE integration tests need root and /dev/fuse");
    }
    true
}

/// Whether `CI=true` is set: then nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// A test cannot run its premise for `reason`. Under `CI=true` that is a broken CI: this
/// panics, so the test fails instead of reporting skipped work as passed. Elsewhere it writes
/// `SKIP: <test>: <reason>` straight to the runner's stderr and returns `false` (the caller
/// returns early). `eprintln!` would not do: libtest captures it and shows nothing for a
/// test that passes, which is what a skipped test looks like to it. `scripts/test` counts
/// these lines and fails under CI if there is any.
pub fn skip(reason: &str) -> bool {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if in_ci() {
        panic!("!!! CI=true but {test} cannot run: {reason}. Refusing to skip under CI. !!!");
    }
    // One write of the whole line, so parallel tests do not interleave inside it.
    let line = format!("SKIP: {test}: {reason}\n");
    let _ = io::Write::write_all(&mut io::stderr(), line.as_bytes());
    false
}

// ---------------------------------------------------------------------------------------------
// Scratch directories
// ---------------------------------------------------------------------------------------------

/// A fresh directory `<target tmp>/scratch/<test>-<pid>-<n>` with `backing/`, `mnt/` and
/// `native/`, all mode 0755 so other uids can reach them. Removed on drop (after lazily
/// unmounting `mnt` if something is still mounted there).
pub struct Scratch {
    /// The scratch directory itself (canonical path).
    pub root: PathBuf,
    /// Directory mirrored by the mount.
    pub backing: PathBuf,
    /// Mount point.
    pub mnt: PathBuf,
    /// Plain directory for side-by-side comparison.
    pub native: PathBuf,
}

impl Scratch {
    /// Creates the directory triple.
    pub fn new() -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scratch");
        fs::create_dir_all(&base).expect("create scratch base");
        let name: String = std::thread::current()
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let root = base.join(format!(
            "{}-{}-{}",
            name,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if root.exists() {
            // Left over from a crashed run with the same pid; it cannot be mounted any more.
            let _ = fs::remove_dir_all(&root);
        }
        fs::create_dir(&root).expect("create scratch root");
        let root = root.canonicalize().expect("canonicalize scratch root");
        // The path down to the scratch dir must be searchable by the unprivileged user.
        set_mode(Path::new(env!("CARGO_TARGET_TMPDIR")), 0o755);
        set_mode(&base, 0o755);
        let s = Scratch {
            backing: root.join("backing"),
            mnt: root.join("mnt"),
            native: root.join("native"),
            root,
        };
        for d in [&s.root, &s.backing, &s.mnt, &s.native] {
            if d != &s.root {
                fs::create_dir(d).expect("create scratch subdir");
            }
            set_mode(d, 0o755);
        }
        s
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if is_mounted(&self.mnt) {
            lazy_unmount(&self.mnt);
        }
        // A test may have mounted another fs as the backing dir (after the mirror is gone).
        if is_mounted(&self.backing) {
            lazy_unmount(&self.backing);
        }
        if let Err(e) = fs::remove_dir_all(&self.root) {
            eprintln!("warning: could not remove {}: {e}", self.root.display());
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

// ---------------------------------------------------------------------------------------------
// Mount table
// ---------------------------------------------------------------------------------------------

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub struct MountInfo {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,...`).
    pub mount_opts: String,
    /// Filesystem type (`fuse`, `fuse.uringfs`, ...).
    pub fstype: String,
    /// The source field (fsname).
    pub source: String,
    /// Superblock options (`rw,user_id=0,...`).
    pub super_opts: String,
}

fn unescape_mountinfo(field: &str) -> OsString {
    // The kernel escapes space, tab, newline and backslash as \ooo.
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    OsString::from_vec(out)
}

/// All current mounts, as this process sees them.
pub fn mounts() -> Vec<MountInfo> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountInfo {
                mount_point: PathBuf::from(unescape_mountinfo(pre.get(4)?)),
                mount_opts: pre.get(5)?.to_string(),
                fstype: post.first()?.to_string(),
                source: unescape_mountinfo(post.get(1)?)
                    .to_string_lossy()
                    .into_owned(),
                super_opts: post.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The topmost mount at exactly `path`, if any.
pub fn mount_at(path: &Path) -> Option<MountInfo> {
    mounts().into_iter().rev().find(|m| m.mount_point == path)
}

/// Whether a FUSE filesystem is mounted at exactly `path`.
pub fn is_fuse_mounted(path: &Path) -> bool {
    mount_at(path).is_some_and(|m| m.fstype == "fuse" || m.fstype.starts_with("fuse."))
}

/// Whether anything is mounted at exactly `path`.
pub fn is_mounted(path: &Path) -> bool {
    mount_at(path).is_some()
}

/// `umount2(path, MNT_DETACH)`; never blocks on a hung daemon.
pub fn lazy_unmount(path: &Path) {
    let c = cpath(path);
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        eprintln!(
            "warning: umount2({}, MNT_DETACH): {}",
            path.display(),
            io::Error::last_os_error()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The mount
// ---------------------------------------------------------------------------------------------

/// A running `uringfs -f -o allow_other,<opts> backing mnt`. Derefs to its [`Scratch`].
///
/// Drop unmounts (lazily), waits for the daemon (SIGKILL after a grace period), and removes the
/// scratch dirs. Drop also fails the test (unless it is already failing) if the daemon died
/// before the test ended or its log shows a Rust panic: both are bugs even when every
/// assertion passed.
pub struct MountGuard {
    /// The directories; dropped (removed) after the daemon is gone.
    pub dirs: Scratch,
    /// The daemon; `None` once [`MountGuard::stop`] reaped it.
    child: Option<Child>,
    /// The daemon's stdout and stderr.
    pub log: PathBuf,
}

impl std::ops::Deref for MountGuard {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.dirs
    }
}

impl MountGuard {
    /// Mounts an empty backing dir with the extra `-o` options `opts`.
    pub fn new(opts: &[&str]) -> MountGuard {
        MountGuard::start(Scratch::new(), &[], opts)
    }

    /// Runs `setup` on both `backing/` and `native/` before mounting, so both start equal.
    pub fn with_setup(opts: &[&str], setup: impl Fn(&Path)) -> MountGuard {
        let dirs = Scratch::new();
        setup(&dirs.backing);
        setup(&dirs.native);
        MountGuard::start(dirs, &[], opts)
    }

    /// Spawns `uringfs -f <extra_args> -o allow_other,<opts> backing mnt` on `dirs` and waits
    /// until the mount is live. Panics with the daemon's log if it exits or times out first.
    pub fn start(dirs: Scratch, extra_args: &[&str], opts: &[&str]) -> MountGuard {
        let log = dirs.root.join("uringfs.log");
        let logfile = fs::File::create(&log).expect("create daemon log");
        let mut all_opts = vec!["allow_other"];
        all_opts.extend_from_slice(opts);
        let mut cmd = Command::new(bin());
        cmd.arg("-f")
            .args(extra_args)
            .arg("-o")
            .arg(all_opts.join(","))
            .arg(&dirs.backing)
            .arg(&dirs.mnt)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log fd"))
            .stderr(logfile);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd));
        let mut g = MountGuard {
            dirs,
            child: Some(child),
            log,
        };
        g.wait_mounted(&cmd);
        g
    }

    fn wait_mounted(&mut self, cmd: &Command) {
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if is_fuse_mounted(&self.dirs.mnt) {
                return;
            }
            let child = self.child.as_mut().expect("child present while mounting");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                panic!(
                    "uringfs exited before the mount appeared ({status}); command {cmd:?}\n\
                     --- daemon log ---\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "no FUSE mount at {} after {MOUNT_TIMEOUT:?}; command {cmd:?}\n\
                     --- daemon log ---\n{}",
                    self.dirs.mnt.display(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon already stopped").id()
    }

    /// What the daemon printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }

    /// Whether the daemon serves FUSE requests over io_uring (else over /dev/fuse). The queues
    /// start just after the mount is live, so this waits for the daemon's line saying which;
    /// the deadline only bounds a wait for a line that never comes.
    pub fn over_io_uring(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log_text();
            if log.contains("serving FUSE requests over io_uring") {
                return true;
            }
            if log.contains("FUSE transport: /dev/fuse") || log.contains("stay on /dev/fuse") {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon never said which FUSE transport it serves:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to the daemon and waits (up to [`MOUNT_TIMEOUT`]) for it to exit.
    /// Panics if it does not exit in time.
    pub fn stop(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        // SAFETY: plain syscall on the pid of our own unreaped child (it cannot be recycled).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
        match wait_timeout(&mut child, MOUNT_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "uringfs did not exit within {MOUNT_TIMEOUT:?} of signal {signal}\n\
                     --- daemon log ---\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// Path `rel` inside the mount.
    pub fn m(&self, rel: &str) -> PathBuf {
        self.dirs.mnt.join(rel)
    }

    /// Path `rel` inside the backing dir.
    pub fn b(&self, rel: &str) -> PathBuf {
        self.dirs.backing.join(rel)
    }

    /// Path `rel` inside the native dir.
    pub fn n(&self, rel: &str) -> PathBuf {
        self.dirs.native.join(rel)
    }

    /// The daemon's counters now: sends SIGUSR1 and waits for the `stats:` line it logs (at
    /// info level, the default; a `RUST_LOG` below info hides it). Polls the log until a new
    /// complete line appears, with a deadline only a hung daemon reaches.
    pub fn counters(&self) -> Counters {
        let seen = stats_lines(&self.log_text()).len();
        // SAFETY: plain syscall on the pid of our own unreaped child (it cannot be recycled).
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGUSR1) };
        assert_eq!(rc, 0, "kill SIGUSR1: {}", io::Error::last_os_error());
        let deadline = Instant::now() + COUNTERS_TIMEOUT;
        loop {
            let log = self.log_text();
            let lines = stats_lines(&log);
            if lines.len() > seen {
                let line = lines[lines.len() - 1];
                return Counters::parse(line)
                    .unwrap_or_else(|| panic!("cannot parse the daemon's counters: {line:?}"));
            }
            assert!(
                Instant::now() < deadline,
                "no new stats line in the daemon's log within {COUNTERS_TIMEOUT:?} of SIGUSR1 \
                 (it is logged at info level: is RUST_LOG set lower?)\n--- daemon log ---\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts that what ran since `before` was served by kernel passthrough: at least one
    /// open got a backing id, every open and create that succeeded did (a per-file fallback
    /// would be served by the daemon), and no READ or WRITE request reached the daemon.
    /// Returns the difference.
    #[track_caller]
    pub fn assert_passthrough_since(&self, before: &Counters, what: &str) -> Counters {
        let now = self.counters();
        let d = now.since(before);
        let opened =
            d.requests("open") - d.errors("open") + d.requests("create") - d.errors("create");
        assert!(
            d.passthrough_opens > 0,
            "{what}: no open got a passthrough backing id\n  before: {}\n  after:  {}\n\
             --- daemon log ---\n{}",
            before.line,
            now.line,
            self.log_text()
        );
        assert_eq!(
            d.passthrough_opens,
            opened,
            "{what}: {opened} opens and creates succeeded but only {} got a backing id\n  \
             before: {}\n  after:  {}\n--- daemon log ---\n{}",
            d.passthrough_opens,
            before.line,
            now.line,
            self.log_text()
        );
        assert_eq!(
            (d.requests("read"), d.requests("write")),
            (0, 0),
            "{what}: READ/WRITE requests reached the daemon despite passthrough\n  \
             before: {}\n  after:  {}",
            before.line,
            now.line
        );
        d
    }

    /// What each of the daemon's open fds (`/proc/PID/fd`) links to.
    pub fn daemon_fds(&self) -> Vec<String> {
        let dir = PathBuf::from(format!("/proc/{}/fd", self.pid()));
        fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .filter_map(|e| {
                // An fd closed between readdir and readlink is simply gone.
                let e = e.ok()?;
                Some(fs::read_link(e.path()).map_or_else(
                    |_| "<closed>".to_string(),
                    |t| t.to_string_lossy().into_owned(),
                ))
            })
            .collect()
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let mut problem = None;
        if let Some(mut child) = self.child.take() {
            if let Ok(Some(status)) = child.try_wait() {
                problem = Some(format!("uringfs exited during the test ({status})"));
            }
            if is_mounted(&self.dirs.mnt) {
                lazy_unmount(&self.dirs.mnt);
            }
            if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
                if problem.is_none() {
                    problem = Some("uringfs did not exit within 5 s of the unmount".into());
                }
            }
        } else if is_mounted(&self.dirs.mnt) {
            lazy_unmount(&self.dirs.mnt);
        }
        let log = self.log_text();
        if problem.is_none() && log.contains("panicked at") {
            problem = Some("uringfs logged a Rust panic".into());
        }
        if std::thread::panicking() {
            eprintln!("--- uringfs log ({}) ---\n{log}", self.log.display());
        } else if let Some(problem) = problem {
            panic!("{problem}\n--- daemon log ---\n{log}");
        }
    }
}

/// The complete (newline-terminated) counters lines in a daemon log: the SIGUSR1 ones and
/// the one at unmount.
fn stats_lines(log: &str) -> Vec<&str> {
    log.split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && l.contains(" stats: ring"))
        .collect()
}

/// The daemon's counters, from one `stats:` line of its log (`stats: ring: ... ops: inodes=N
/// passthrough_opens=N lookup=requests/errors/microseconds ...`).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Inodes the kernel holds in the daemon's table, the root included (a gauge).
    pub inodes: u64,
    /// Opens and creates answered with a kernel passthrough backing id.
    pub passthrough_opens: u64,
    /// Per op name as logged (`lookup`, `read`, `write`, ...): (requests, errors). Ops that
    /// were never requested are not logged and not here.
    pub ops: BTreeMap<String, (u64, u64)>,
    /// The line it was parsed from, for failure messages.
    pub line: String,
}

impl Counters {
    /// Parses the `ops:` part of a stats line; `None` if the gauges are missing.
    pub fn parse(line: &str) -> Option<Counters> {
        let (_, ops) = line.split_once(" ops: ")?;
        let mut c = Counters {
            line: line.trim_end().to_string(),
            ..Counters::default()
        };
        let (mut inodes, mut passthrough) = (None, None);
        for field in ops.split_whitespace() {
            let (name, value) = field.split_once('=')?;
            match name {
                "inodes" => inodes = Some(value.parse().ok()?),
                "passthrough_opens" => passthrough = Some(value.parse().ok()?),
                _ => {
                    let mut parts = value.split('/');
                    let requests = parts.next()?.parse().ok()?;
                    let errors = parts.next()?.parse().ok()?;
                    c.ops.insert(name.to_string(), (requests, errors));
                }
            }
        }
        c.inodes = inodes?;
        c.passthrough_opens = passthrough?;
        Some(c)
    }

    /// Requests of `op` (0 if it never came).
    pub fn requests(&self, op: &str) -> u64 {
        self.ops.get(op).map_or(0, |&(r, _)| r)
    }

    /// Failed requests of `op`.
    pub fn errors(&self, op: &str) -> u64 {
        self.ops.get(op).map_or(0, |&(_, e)| e)
    }

    /// What happened between `earlier` and `self`: the counts as differences, the `inodes`
    /// gauge as it is now.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            inodes: self.inodes,
            passthrough_opens: self.passthrough_opens - earlier.passthrough_opens,
            ops: self
                .ops
                .iter()
                .map(|(op, &(r, e))| {
                    let (r0, e0) = earlier.ops.get(op).copied().unwrap_or((0, 0));
                    (op.clone(), (r - r0, e - e0))
                })
                .collect(),
            line: format!("{} (since: {})", self.line, earlier.line),
        }
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Native-vs-mount comparison
// ---------------------------------------------------------------------------------------------

/// An outcome comparable across the two runs: the value or the errno (as text).
pub type Outcome<T> = Result<T, String>;

/// Turns an error into its errno, so results compare by errno (`"ENOENT (2)"`-like text).
pub fn outcome<T>(r: io::Result<T>) -> Outcome<T> {
    r.map_err(|e| match e.raw_os_error() {
        Some(code) => format!("errno {code} ({})", io::Error::from_raw_os_error(code)),
        None => format!("non-OS error: {e}"),
    })
}

/// The errno of a failed call, `None` on success.
pub fn errno_of<T>(r: &io::Result<T>) -> Option<i32> {
    r.as_ref().err().map(|e| e.raw_os_error().unwrap_or(-1))
}

/// Runs `f` against `native/` and then against `mnt/`, asserts both outcomes (value or errno)
/// are equal, and returns the mount's result.
#[track_caller]
pub fn both<T: PartialEq + Debug>(
    g: &MountGuard,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T>,
) -> io::Result<T> {
    let native = f(&g.native);
    let mount = f(&g.mnt);
    let (n, m) = (outcome(native), outcome(mount));
    if m != n {
        panic!(
            "{what}: mount and native ext4 differ\n  mount:  {}\n  native: {}",
            short_debug(&m),
            short_debug(&n)
        );
    }
    m.map_err(io::Error::other)
}

/// `{:?}` of `v`, cut to a readable length (file contents can be megabytes).
pub fn short_debug<T: Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.len() <= 1500 {
        return s;
    }
    let mut cut = 1500;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} more chars)", &s[..cut], s.len() - cut)
}

/// A short fingerprint of a byte string (length, FNV-1a hash, count of non-zero bytes), for
/// comparing big contents with readable failure messages.
pub fn digest(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let nonzero = data.iter().filter(|&&b| b != 0).count();
    format!("len={} fnv={h:016x} nonzero={nonzero}", data.len())
}

/// [`both`], and both must succeed.
#[track_caller]
pub fn both_ok<T: PartialEq + Debug>(
    g: &MountGuard,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T>,
) -> T {
    match both(g, what, f) {
        Ok(v) => v,
        Err(e) => panic!("{what}: failed on both native and mount: {e}"),
    }
}

/// [`both`], and both must fail with `errno`.
#[track_caller]
pub fn both_err<T: Debug>(
    g: &MountGuard,
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T>,
) {
    let native = f(&g.native);
    let mount = f(&g.mnt);
    assert_eq!(
        errno_of(&native),
        Some(errno),
        "{what}: native ext4 gave {native:?}, the test expects errno {errno} ({})",
        io::Error::from_raw_os_error(errno)
    );
    assert_eq!(
        errno_of(&mount),
        Some(errno),
        "{what}: mount gave {mount:?}, native gave errno {errno} ({})",
        io::Error::from_raw_os_error(errno)
    );
}

/// The comparable part of an `lstat` (no inode number, device or times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Full `st_mode` (type and permission bits) in octal.
    pub mode: String,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size; `None` for directories, whose size depends on ext4's history.
    pub size: Option<u64>,
    /// Link count.
    pub nlink: u64,
    /// Device number, for device nodes.
    pub rdev: u64,
}

/// `lstat(path)` reduced to [`Attr`].
pub fn attr(path: &Path) -> io::Result<Attr> {
    Ok(attr_of(&fs::symlink_metadata(path)?))
}

/// Reduces metadata to [`Attr`].
pub fn attr_of(md: &fs::Metadata) -> Attr {
    Attr {
        mode: format!("{:o}", md.mode()),
        uid: md.uid(),
        gid: md.gid(),
        size: (!md.is_dir()).then(|| md.size()),
        nlink: md.nlink(),
        rdev: if md.file_type().is_block_device() || md.file_type().is_char_device() {
            md.rdev()
        } else {
            0
        },
    }
}

/// Options for [`tree_diff`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TreeOpts {
    /// Also compare mtime (seconds and nanoseconds) of everything but symlinks.
    pub mtime: bool,
    /// Also compare inode numbers, except the root's (only meaningful for mount vs backing).
    pub ino: bool,
}

/// Walks `a` and `b` and lists every difference: names, file type, mode, uid, gid, size
/// (not for dirs), nlink, rdev, contents, symlink targets, xattrs (and optionally mtime/ino).
pub fn tree_diff(a: &Path, b: &Path, opts: TreeOpts) -> Vec<String> {
    let mut diffs = Vec::new();
    diff_entry(a, b, Path::new("."), opts, &mut diffs);
    diffs
}

/// Panics listing all differences between the trees at `a` and `b`.
#[track_caller]
/// The native tree equals the backing one, and the mount shows the backing tree exactly,
/// mtimes and inode numbers included.
pub fn assert_mirror(g: &MountGuard) {
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
    assert_trees_equal(
        &g.backing,
        &g.mnt,
        TreeOpts {
            mtime: true,
            ino: true,
        },
    );
}

pub fn assert_trees_equal(a: &Path, b: &Path, opts: TreeOpts) {
    let diffs = tree_diff(a, b, opts);
    assert!(
        diffs.is_empty(),
        "trees differ: {} vs {}:\n  {}",
        a.display(),
        b.display(),
        diffs.join("\n  ")
    );
}

fn diff_entry(a_root: &Path, b_root: &Path, rel: &Path, opts: TreeOpts, diffs: &mut Vec<String>) {
    let (a, b) = (a_root.join(rel), b_root.join(rel));
    let r = rel.display();
    let (ma, mb) = match (fs::symlink_metadata(&a), fs::symlink_metadata(&b)) {
        (Ok(ma), Ok(mb)) => (ma, mb),
        (ea, eb) => {
            diffs.push(format!("{r}: lstat {:?} vs {:?}", ea.err(), eb.err()));
            return;
        }
    };
    let (aa, ab) = (attr_of(&ma), attr_of(&mb));
    if aa != ab {
        diffs.push(format!("{r}: {aa:?} vs {ab:?}"));
    }
    // The root's st_ino is checked once, by metadata::getattr_matches_backing_including_ino,
    // so that one wrong root number does not hide every other difference.
    if opts.ino && rel != Path::new(".") && ma.ino() != mb.ino() {
        diffs.push(format!("{r}: ino {} vs {}", ma.ino(), mb.ino()));
    }
    let is_link = ma.file_type().is_symlink();
    // The roots are different directories, created at different times.
    if opts.mtime
        && rel != Path::new(".")
        && !is_link
        && (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec())
    {
        diffs.push(format!(
            "{r}: mtime {}.{:09} vs {}.{:09}",
            ma.mtime(),
            ma.mtime_nsec(),
            mb.mtime(),
            mb.mtime_nsec()
        ));
    }
    let (xa, xb) = (xattrs(&a), xattrs(&b));
    if xa != xb {
        diffs.push(format!("{r}: xattrs {xa:?} vs {xb:?}"));
    }
    if ma.file_type() != mb.file_type() {
        return;
    }
    if is_link {
        let (la, lb) = (fs::read_link(&a).ok(), fs::read_link(&b).ok());
        if la != lb {
            diffs.push(format!("{r}: symlink target {la:?} vs {lb:?}"));
        }
    } else if ma.is_file() {
        match (fs::read(&a), fs::read(&b)) {
            (Ok(ca), Ok(cb)) if ca != cb => {
                let first = ca.iter().zip(&cb).position(|(x, y)| x != y);
                diffs.push(format!(
                    "{r}: contents differ (len {} vs {}, first difference at {first:?})",
                    ca.len(),
                    cb.len()
                ));
            }
            (Ok(_), Ok(_)) => {}
            (ea, eb) => diffs.push(format!("{r}: read {:?} vs {:?}", ea.err(), eb.err())),
        }
    } else if ma.is_dir() {
        let (na, nb) = match (dir_names(&a), dir_names(&b)) {
            (Ok(na), Ok(nb)) => (na, nb),
            (ea, eb) => {
                diffs.push(format!("{r}: readdir {:?} vs {:?}", ea.err(), eb.err()));
                return;
            }
        };
        for n in na.difference(&nb) {
            diffs.push(format!(
                "{}: only in {}",
                rel.join(n).display(),
                a_root.display()
            ));
        }
        for n in nb.difference(&na) {
            diffs.push(format!(
                "{}: only in {}",
                rel.join(n).display(),
                b_root.display()
            ));
        }
        for n in na.intersection(&nb) {
            diff_entry(a_root, b_root, &rel.join(n), opts, diffs);
        }
    }
}

/// The sorted names in a directory (without `.` and `..`).
pub fn dir_names(dir: &Path) -> io::Result<std::collections::BTreeSet<OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running as another user
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a new thread whose filesystem credentials are `uid`/`gid` with no supplementary
/// groups. Linux keeps fsuid, fsgid and groups per thread when set by the raw syscalls, and
/// the thread's effective capabilities are cleared too (capset(2) is per thread), so file
/// operations, permission checks and the uid/gid in FUSE request headers are those of `uid`. `access(2)` checks the real uid: use
/// [`run_as`] for it.
pub fn as_user<T: Send>(uid: u32, gid: u32, f: impl FnOnce() -> T + Send) -> T {
    as_user_with_groups(uid, gid, &[], f)
}

/// [`as_user`] with the supplementary groups `groups` (the thread's own, as `/proc/TID/status`
/// shows them in `Groups:`, where the daemon reads a caller's groups).
pub fn as_user_with_groups<T: Send>(
    uid: u32,
    gid: u32,
    groups: &[u32],
    f: impl FnOnce() -> T + Send,
) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: raw syscalls (not the glibc wrappers that broadcast to all threads);
            // the group list is `groups.len()` valid gids, live during the call.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()),
                    0,
                    "setgroups: {}",
                    io::Error::last_os_error()
                );
                libc::syscall(libc::SYS_setfsgid, gid);
                libc::syscall(libc::SYS_setfsuid, uid);
                // setfs[ug]id return the previous id; an invalid id (-1) changes nothing.
                assert_eq!(libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32, gid);
                assert_eq!(libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32, uid);
            }
            drop_effective_caps();
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Clears this thread's effective capability set (capset(2) is per thread), so that also the
/// capabilities setfsuid keeps (CAP_SYS_ADMIN for trusted.* xattrs, CAP_SYS_RESOURCE, ...)
/// are gone and the thread is as unprivileged as a real user's process.
fn drop_effective_caps() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and a 2-element data array as capget(2) requires for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", io::Error::last_os_error());
    for d in &mut data {
        d.effective = 0;
    }
    // SAFETY: as above; pid 0 = this thread only.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", io::Error::last_os_error());
}

/// Runs `sh -c script` as `uid`/`gid` (real and effective; std drops the supplementary groups
/// when it changes the uid of a root process).
pub fn run_as(uid: u32, gid: u32, script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .output()
        .expect("spawn sh as another user")
}

/// Runs `sh -c script` as a process of `uid`/`gid` (real, effective and saved) whose
/// supplementary groups are exactly `groups`, as after a login of a user in those groups.
pub fn run_as_with_groups(uid: u32, gid: u32, groups: &[u32], script: &str) -> Output {
    let groups = groups.to_vec();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe syscalls (setgroups, setresgid, setresuid) on memory allocated
    // before the fork. The groups are set while still root, the uid last.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(uid, uid, uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("spawn sh as another user with groups")
}

/// Runs a command (program + args) and returns its output, panicking if it cannot start.
pub fn run(program: &str, args: &[&OsStr]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Thin libc wrappers (the std library has no safe API for these)
// ---------------------------------------------------------------------------------------------

/// A path as a C string.
pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_size(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// `utimensat(AT_FDCWD, path, times, flags)`.
pub fn utimensat(path: &Path, times: [libc::timespec; 2], flags: i32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string and a 2-element timespec array, both live during the call.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) })?;
    Ok(())
}

/// A `timespec` with the given fields (also for `UTIME_NOW`/`UTIME_OMIT` in `nsec`).
pub fn ts(sec: i64, nsec: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    }
}

/// `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)`.
pub fn renameat2(from: &Path, to: &Path, flags: u32) -> io::Result<()> {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: valid C strings, live during the call.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `mknod(path, mode, dev)`.
pub fn mknod(path: &Path, mode: u32, dev: u64) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string, live during the call.
    cvt(unsafe { libc::mknod(c.as_ptr(), mode, dev) })?;
    Ok(())
}

/// `lchown(path, uid, gid)` (`u32::MAX` = unchanged).
pub fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string, live during the call.
    cvt(unsafe { libc::lchown(c.as_ptr(), uid, gid) })?;
    Ok(())
}

/// `chown(path, uid, gid)` (`u32::MAX` = unchanged).
pub fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string, live during the call.
    cvt(unsafe { libc::chown(c.as_ptr(), uid, gid) })?;
    Ok(())
}

/// `chmod(path, mode)` (std's `set_permissions` cannot set the file type bits, but this one
/// also just passes the mode through).
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string, live during the call.
    cvt(unsafe { libc::chmod(c.as_ptr(), mode) })?;
    Ok(())
}

/// `truncate(path, len)`.
pub fn truncate(path: &Path, len: i64) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string, live during the call.
    cvt(unsafe { libc::truncate(c.as_ptr(), len) })?;
    Ok(())
}

/// `access(path, mode)`.
pub fn access(path: &Path, mode: i32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: valid C string, live during the call.
    cvt(unsafe { libc::access(c.as_ptr(), mode) })?;
    Ok(())
}

/// `lsetxattr(path, name, value, flags)`.
pub fn lsetxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let (c, n) = (cpath(path), CString::new(name).expect("xattr name"));
    // SAFETY: valid C strings and a buffer of `value.len()` bytes, all live during the call.
    cvt(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })?;
    Ok(())
}

/// `lgetxattr(path, name, buf of size cap)`: with `cap == 0` this is the size probe, and the
/// returned vector is empty but its reported length is in the `usize`.
pub fn lgetxattr_sized(path: &Path, name: &str, cap: usize) -> io::Result<(usize, Vec<u8>)> {
    let (c, n) = (cpath(path), CString::new(name).expect("xattr name"));
    let mut buf = vec![0u8; cap];
    // SAFETY: valid C strings; `buf` has `cap` writable bytes (NULL-equivalent when 0).
    let len = cvt_size(unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            n.as_ptr(),
            if cap == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            cap,
        )
    })?;
    buf.truncate(len.min(cap));
    Ok((len, buf))
}

/// The whole value of xattr `name` (probe, then read).
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (len, _) = lgetxattr_sized(path, name, 0)?;
    Ok(lgetxattr_sized(path, name, len + 64)?.1)
}

/// `llistxattr(path, buf of size cap)`; returns the length and the raw NUL-separated list.
pub fn llistxattr_sized(path: &Path, cap: usize) -> io::Result<(usize, Vec<u8>)> {
    let c = cpath(path);
    let mut buf = vec![0u8; cap];
    // SAFETY: valid C string; `buf` has `cap` writable bytes (NULL when 0).
    let len = cvt_size(unsafe {
        libc::llistxattr(
            c.as_ptr(),
            if cap == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            cap,
        )
    })?;
    buf.truncate(len.min(cap));
    Ok((len, buf))
}

/// Sorted xattr names of `path` (not following symlinks).
pub fn llistxattr(path: &Path) -> io::Result<Vec<String>> {
    let (len, _) = llistxattr_sized(path, 0)?;
    let (_, raw) = llistxattr_sized(path, len + 256)?;
    let mut names: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// `lremovexattr(path, name)`.
pub fn lremovexattr(path: &Path, name: &str) -> io::Result<()> {
    let (c, n) = (cpath(path), CString::new(name).expect("xattr name"));
    // SAFETY: valid C strings, live during the call.
    cvt(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) })?;
    Ok(())
}

/// All xattrs (name -> value) of `path`, or the errno text if listing fails.
pub fn xattrs(path: &Path) -> Outcome<Vec<(String, Vec<u8>)>> {
    outcome(llistxattr(path).and_then(|names| {
        names
            .into_iter()
            .map(|n| lgetxattr(path, &n).map(|v| (n, v)))
            .collect()
    }))
}

/// `statvfs(path)`.
pub fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    let c = cpath(path);
    // SAFETY: all-zero is a valid statvfs; the kernel fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a writable statvfs, live during the call.
    cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    Ok(st)
}

/// Reads all of `path` (convenience for comparisons).
pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    fs::File::open(path)?.read_to_end(&mut v)?;
    Ok(v)
}

/// A small deterministic PRNG (xorshift64*), so native and mount get identical "random" ops.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Asks the kernel to drop unused dentries and inodes, which sends FORGETs to the daemon.
pub fn drop_dentries_and_inodes() {
    fs::write("/proc/sys/vm/drop_caches", b"2").expect("write /proc/sys/vm/drop_caches");
}

/// Drops the kernel's caches until the daemon's inode table is down to `pinned` entries (what
/// open fds keep, the root included). FORGETs arrive asynchronously, and one cache drop may
/// leave dentries that were briefly busy, so this repeats both, up to a deadline that only
/// a daemon that never shrinks its table reaches.
#[track_caller]
pub fn forget_all_but_pinned(g: &MountGuard, pinned: u64, what: &str) {
    let deadline = std::time::Instant::now() + COUNTERS_TIMEOUT;
    loop {
        drop_dentries_and_inodes();
        let c = g.counters();
        if c.inodes <= pinned {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the daemon still holds {} inodes ({pinned} pinned) {COUNTERS_TIMEOUT:?} \
             after the kernel was told to drop its caches: {}",
            c.inodes,
            c.line
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether the fuse module offers FUSE over io_uring now (`enable_uring`), so that a mount
/// with the default transport serves over it.
pub fn ring_enabled() -> bool {
    fs::read_to_string("/sys/module/fuse/parameters/enable_uring").is_ok_and(|v| v.trim() == "Y")
}
