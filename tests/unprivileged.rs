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

mod common;

use common::*;
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
// /dev/fuse for everyone
// ---------------------------------------------------------------------------------------------

/// How many [`DevFuseForAll`] guards live, and the mode `/dev/fuse` had before the first.
static DEV_FUSE_USERS: Mutex<(usize, u32)> = Mutex::new((0, 0));

/// `/dev/fuse` is mode 0666 while any guard lives (the tests of this file run in parallel);
/// the last to drop restores the mode the first found, also when its test panicked.
struct DevFuseForAll;

impl DevFuseForAll {
    fn new() -> DevFuseForAll {
        let mut users = DEV_FUSE_USERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if users.0 == 0 {
            let mode = fs::metadata(DEV_FUSE).expect("stat /dev/fuse").mode() & 0o7777;
            fs::set_permissions(DEV_FUSE, fs::Permissions::from_mode(0o666))
                .expect("chmod 0666 /dev/fuse");
            users.1 = mode;
        }
        users.0 += 1;
        DevFuseForAll
    }
}

impl Drop for DevFuseForAll {
    fn drop(&mut self) {
        let mut users = DEV_FUSE_USERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        users.0 -= 1;
        if users.0 == 0
            && let Err(e) = fs::set_permissions(DEV_FUSE, fs::Permissions::from_mode(users.1))
        {
            // No panic: this may run while a failing test unwinds.
            eprintln!(
                "warning: cannot restore /dev/fuse to mode {:o}: {e}",
                users.1
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running as the mounter
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a new thread that really is `uid`/`gid` (real, effective and saved ids, no
/// supplementary groups, no capabilities), as a process of that user would be. The raw
/// syscalls change only the calling thread (glibc's wrappers would change every thread of
/// the test process); going from uid 0 to another uid clears the thread's capabilities.
fn as_real_user<T: Send>(uid: u32, gid: u32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: raw syscalls with integer arguments (and an empty group list) that
            // change only this thread's credentials.
            unsafe {
                let rc = libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                assert_eq!(rc, 0, "setgroups: {}", io::Error::last_os_error());
                let rc = libc::syscall(libc::SYS_setresgid, gid, gid, gid);
                assert_eq!(rc, 0, "setresgid: {}", io::Error::last_os_error());
                let rc = libc::syscall(libc::SYS_setresuid, uid, uid, uid);
                assert_eq!(rc, 0, "setresuid: {}", io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// [`as_real_user`] as the user who mounted.
fn as_mounter<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    as_real_user(USER, GROUP, f)
}

/// Runs `f` as the mounter on `native/` and then on `mnt/`, asserts both outcomes (value
/// or errno) are equal, and returns the mount's.
#[track_caller]
fn both_as_mounter<T: PartialEq + Debug + Send>(
    m: &UserMount,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Sync,
) -> Outcome<T> {
    let (native, mount) = as_mounter(|| (outcome(f(&m.native)), outcome(f(&m.mnt))));
    assert!(
        mount == native,
        "{what}: mount and native ext4 differ\n  mount:  {}\n  native: {}",
        short_debug(&mount),
        short_debug(&native)
    );
    mount
}

/// [`both_as_mounter`], and both must succeed.
#[track_caller]
fn both_ok_as_mounter<T: PartialEq + Debug + Send>(
    m: &UserMount,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Sync,
) -> T {
    both_as_mounter(m, what, f).unwrap_or_else(|e| panic!("{what}: failed on both: {e}"))
}

/// [`both_as_mounter`], and both must fail with `errno`.
#[track_caller]
fn both_err_as_mounter<T: PartialEq + Debug + Send>(
    m: &UserMount,
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T> + Sync,
) {
    let got = both_as_mounter(m, what, f);
    assert_eq!(
        got,
        outcome::<T>(Err(io::Error::from_raw_os_error(errno))),
        "{what}: both gave the same, but not errno {errno}"
    );
}

/// As the mounter: the trees under `native/` and `mnt/` are equal (names, types, modes,
/// owners, sizes, link counts, contents, symlink targets, xattrs).
#[track_caller]
fn assert_mount_equals_native(m: &UserMount) {
    let diffs = as_mounter(|| tree_diff(&m.native, &m.mnt, TreeOpts::default()));
    assert!(
        diffs.is_empty(),
        "mount and native differ:\n  {}",
        diffs.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The mount
// ---------------------------------------------------------------------------------------------

/// `uringfs -f [-o OPTS] backing mnt` run as uid 1000 on directories it owns. Derefs to its
/// [`Scratch`].
///
/// Drop unmounts with `fusermount3 -u` as the user (then, if that did not do it, lazily as
/// root), waits for the daemon (SIGKILL after a grace period) and removes the directories.
/// It also fails the test (unless it is failing already) if the daemon died during it or
/// logged a Rust panic.
struct UserMount {
    /// The directories, owned by the user; removed after the daemon is gone.
    dirs: Scratch,
    /// The daemon; `None` once [`UserMount::unmount`] reaped it.
    child: Option<Child>,
    /// The daemon's stdout and stderr.
    log: PathBuf,
}

impl std::ops::Deref for UserMount {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.dirs
    }
}

/// Scratch directories whose `backing/`, `mnt/` and `native/` belong to the user.
fn user_scratch() -> Scratch {
    let dirs = Scratch::new();
    for d in [&dirs.backing, &dirs.mnt, &dirs.native] {
        std::os::unix::fs::chown(d, Some(USER), Some(GROUP))
            .unwrap_or_else(|e| panic!("chown {}: {e}", d.display()));
    }
    dirs
}

/// Starts `uringfs -f [-o opts] backing mnt` as the user, its output in `log`.
fn spawn_as_user(dirs: &Scratch, opts: &[&str], log: &Path) -> Child {
    let logfile = File::create(log).expect("create daemon log");
    let mut cmd = Command::new(bin());
    cmd.arg("-f");
    if !opts.is_empty() {
        cmd.arg("-o").arg(opts.join(","));
    }
    // std drops the supplementary groups when a root process sets the uid.
    cmd.arg(&dirs.backing)
        .arg(&dirs.mnt)
        .uid(USER)
        .gid(GROUP)
        .current_dir("/")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(logfile.try_clone().expect("dup log fd"))
        .stderr(logfile);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?} as uid {USER}: {e}"))
}

/// `fusermount3 -u path` as the user: its exit status and stderr.
fn fusermount_unmount(path: &Path) -> (ExitStatus, String) {
    let out = Command::new("fusermount3")
        .arg("-u")
        .arg(path)
        .uid(USER)
        .gid(GROUP)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .expect("spawn fusermount3");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl UserMount {
    /// Mounts an empty backing dir as the user, with `-o opts` if any.
    fn new(opts: &[&str]) -> UserMount {
        let dirs = user_scratch();
        let log = dirs.root.join("uringfs.log");
        let child = spawn_as_user(&dirs, opts, &log);
        let mut m = UserMount {
            dirs,
            child: Some(child),
            log,
        };
        m.wait_mounted();
        m
    }

    fn wait_mounted(&mut self) {
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if is_fuse_mounted(&self.dirs.mnt) {
                return;
            }
            let child = self.child.as_mut().expect("child present while mounting");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                panic!(
                    "uringfs run as uid {USER} exited before the mount appeared ({status})\n\
                     --- daemon log ---\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "no FUSE mount at {} after {MOUNT_TIMEOUT:?}\n--- daemon log ---\n{}",
                    self.dirs.mnt.display(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's pid.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon already stopped").id()
    }

    /// What the daemon printed so far.
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }

    /// Sends `signal` to the daemon and waits (up to [`MOUNT_TIMEOUT`]) for it to exit.
    fn stop(&mut self, signal: i32) -> ExitStatus {
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

    /// Unmounts as the user with `fusermount3 -u`, which must succeed and leave no mount,
    /// and returns the daemon's exit status (it must exit by itself).
    #[track_caller]
    fn unmount(&mut self) -> ExitStatus {
        let (status, stderr) = fusermount_unmount(&self.dirs.mnt);
        assert!(
            status.success(),
            "fusermount3 -u as uid {USER}: {status}: {stderr}"
        );
        assert!(
            !is_mounted(&self.dirs.mnt),
            "still mounted after fusermount3 -u: {:?}",
            mount_at(&self.dirs.mnt)
        );
        let mut child = self.child.take().expect("daemon already stopped");
        match wait_timeout(&mut child, MOUNT_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "uringfs did not exit within {MOUNT_TIMEOUT:?} of fusermount3 -u\n\
                     --- daemon log ---\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// [`UserMount::unmount`], and the daemon must exit 0 with a clean log.
    #[track_caller]
    fn unmount_cleanly(mut self) {
        let status = self.unmount();
        let log = self.log_text();
        assert_eq!(
            status.code(),
            Some(0),
            "uringfs exit after fusermount3 -u\n--- daemon log ---\n{log}"
        );
        let noisy: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        assert!(
            noisy.is_empty(),
            "an unprivileged daemon warned or failed:\n{}",
            noisy.join("\n")
        );
    }
}

impl Drop for UserMount {
    fn drop(&mut self) {
        let mut problem = None;
        if let Some(mut child) = self.child.take() {
            if let Ok(Some(status)) = child.try_wait() {
                problem = Some(format!("uringfs exited during the test ({status})"));
            }
            if is_mounted(&self.dirs.mnt) {
                let _ = fusermount_unmount(&self.dirs.mnt);
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

/// One `Name:\tvalue` line of `/proc/PID/status`.
fn proc_status(pid: u32, name: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// The hard `RLIMIT_NOFILE` of this process: the daemon inherits it and, not being root,
/// can raise its soft limit only that far.
fn nofile_hard_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    lim.rlim_max
}

/// The log line an unprivileged daemon states its fd budget in.
fn fd_budget_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| l.contains("cannot be reopened by file handle"))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The daemon mounts as the user through fusermount3, runs with the user's ids and no
/// capabilities, states its fd budget, and exits 0 when the user unmounts.
#[test]
fn mounts_through_fusermount3_and_unmounts_with_it() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    let info = mount_at(&m.mnt).expect("mounted");
    assert_eq!(info.fstype, "fuse.uringfs", "{info:?}");
    assert_eq!(info.source, m.backing.to_string_lossy(), "{info:?}");
    let super_opts: Vec<&str> = info.super_opts.split(',').collect();
    for opt in [
        format!("user_id={USER}"),
        format!("group_id={GROUP}"),
        "default_permissions".to_string(),
    ] {
        assert!(super_opts.contains(&opt.as_str()), "{opt}: {info:?}");
    }
    assert!(!super_opts.contains(&"allow_other"), "{info:?}");
    let mount_opts: Vec<&str> = info.mount_opts.split(',').collect();
    assert!(
        mount_opts.contains(&"nosuid") && mount_opts.contains(&"nodev"),
        "a user mount is nosuid,nodev: {info:?}"
    );

    let pid = m.pid();
    let uid = proc_status(pid, "Uid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        [USER.to_string().as_str(); 4],
        "the daemon's real, effective, saved and fs uid"
    );
    assert_eq!(proc_status(pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status(pid, "CapPrm"), "0000000000000000");

    let log = m.log_text();
    let nofile = nofile_hard_limit();
    let inodes = uringfs::inode::fd_budget(nofile);
    let line = fd_budget_line(&log)
        .unwrap_or_else(|| panic!("no fd-budget line in the daemon's log:\n{log}"));
    let expected = format!(
        "RLIMIT_NOFILE {nofile} holds {inodes} inodes with {} fds left",
        nofile - inodes as u64
    );
    assert!(line.contains(&expected), "{line:?} lacks {expected:?}");
    assert!(line.contains("CAP_DAC_READ_SEARCH"), "{line:?}");

    both_ok_as_mounter(&m, "write and read a file", |r| {
        fs::write(r.join("hello"), b"hello from uid 1000\n")?;
        let md = fs::symlink_metadata(r.join("hello"))?;
        Ok((read_all(&r.join("hello"))?, attr_of(&md)))
    });
    assert_eq!(
        fs::metadata(m.backing.join("hello"))
            .expect("stat backing")
            .uid(),
        USER,
        "the backing file belongs to the user"
    );
    m.unmount_cleanly();
}

/// Contents: create, write, read, append, truncate, fsync and shared mappings.
#[test]
fn file_data_behaves_as_native() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    let data = pattern(200_000, 7);

    both_ok_as_mounter(&m, "create exclusively, write, read", |r| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(r.join("f"))?;
        f.write_all(&data)?;
        drop(f);
        let again = errno_of(
            &OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(r.join("f")),
        );
        Ok((digest(&read_all(&r.join("f"))?), again, attr(&r.join("f"))?))
    });
    both_ok_as_mounter(&m, "append", |r| {
        let mut f = OpenOptions::new().append(true).open(r.join("f"))?;
        f.write_all(b"tail")?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(b"appended again")?;
        drop(f);
        let all = read_all(&r.join("f"))?;
        Ok((all.len(), all[all.len() - 18..].to_vec()))
    });
    both_ok_as_mounter(&m, "read at offsets", |r| {
        let mut f = File::open(r.join("f"))?;
        let mut buf = vec![0u8; 5000];
        f.seek(SeekFrom::Start(131_000))?;
        f.read_exact(&mut buf)?;
        let mut end = Vec::new();
        f.seek(SeekFrom::End(-10))?;
        f.read_to_end(&mut end)?;
        Ok((digest(&buf), end))
    });
    both_ok_as_mounter(&m, "truncate shorter and longer", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        f.set_len(1000)?;
        let short = read_all(&r.join("f"))?;
        truncate(&r.join("f"), 70_000)?;
        let long = read_all(&r.join("f"))?;
        Ok((digest(&short), digest(&long), attr(&r.join("f"))?))
    });
    both_ok_as_mounter(&m, "O_TRUNC", |r| {
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(r.join("f"))?;
        f.write_all(b"new")?;
        drop(f);
        read_all(&r.join("f"))
    });
    both_ok_as_mounter(&m, "fsync and fdatasync", |r| {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(r.join("synced"))?;
        f.write_all(&data[..10_000])?;
        f.sync_data()?;
        f.write_all(b"more")?;
        f.sync_all()?;
        File::open(r)?.sync_all()?;
        Ok(digest(&read_all(&r.join("synced"))?))
    });
    both_ok_as_mounter(
        &m,
        "shared mapping: write through it, read through it",
        |r| {
            let initial = pattern(64 * 1024 + 100, 3);
            fs::write(r.join("mapped"), &initial)?;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(r.join("mapped"))?;
            let written = with_shared_mapping(&f, initial.len(), |map| {
                let seen = digest(map);
                for (i, b) in map.iter_mut().enumerate().step_by(4096) {
                    *b = (i / 4096) as u8 ^ 0x5a;
                }
                let last = map.len() - 1;
                map[last] = 0xee;
                seen
            })?;
            drop(f);
            let after = read_all(&r.join("mapped"))?;
            let reopened = OpenOptions::new()
                .read(true)
                .write(true)
                .open(r.join("mapped"))?;
            let reread = with_shared_mapping(&reopened, after.len(), |map| digest(map))?;
            Ok((written, digest(&after), reread))
        },
    );
    assert_mount_equals_native(&m);
    assert_trees_equal(&m.native, &m.backing, TreeOpts::default());
    m.unmount_cleanly();
}

/// Names: rename, link, symlink/readlink, mkdir/rmdir, unlink, and a directory of a few
/// hundred entries (more than one readdir reply).
#[test]
fn names_behave_as_native() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);

    both_ok_as_mounter(&m, "mkdir, nested", |r| {
        fs::create_dir(r.join("d"))?;
        fs::create_dir_all(r.join("d/e/f"))?;
        attr(&r.join("d/e"))
    });
    both_err_as_mounter(&m, "mkdir over a directory", libc::EEXIST, |r| {
        fs::create_dir(r.join("d"))
    });
    both_err_as_mounter(&m, "rmdir of a non-empty directory", libc::ENOTEMPTY, |r| {
        fs::remove_dir(r.join("d/e"))
    });
    both_ok_as_mounter(&m, "rmdir", |r| {
        fs::remove_dir(r.join("d/e/f"))?;
        Ok(fs::symlink_metadata(r.join("d/e/f"))
            .map_err(|e| e.raw_os_error())
            .err())
    });

    both_ok_as_mounter(&m, "rename a file, over a file, into a directory", |r| {
        fs::write(r.join("a"), b"a")?;
        fs::write(r.join("b"), b"b")?;
        fs::rename(r.join("a"), r.join("a2"))?;
        fs::rename(r.join("a2"), r.join("b"))?;
        fs::rename(r.join("b"), r.join("d/b"))?;
        Ok((
            fs::symlink_metadata(r.join("a")).is_err(),
            read_all(&r.join("d/b"))?,
        ))
    });
    both_err_as_mounter(&m, "RENAME_NOREPLACE onto a file", libc::EEXIST, |r| {
        fs::write(r.join("x"), b"x")?;
        renameat2(&r.join("x"), &r.join("d/b"), libc::RENAME_NOREPLACE)
    });
    both_ok_as_mounter(&m, "RENAME_EXCHANGE", |r| {
        renameat2(&r.join("x"), &r.join("d/b"), libc::RENAME_EXCHANGE)?;
        Ok((read_all(&r.join("x"))?, read_all(&r.join("d/b"))?))
    });
    both_err_as_mounter(&m, "rename a directory into itself", libc::EINVAL, |r| {
        fs::rename(r.join("d"), r.join("d/e/inside"))
    });

    both_ok_as_mounter(&m, "hard link", |r| {
        fs::hard_link(r.join("x"), r.join("x-link"))?;
        let (a, b) = (
            fs::symlink_metadata(r.join("x"))?,
            fs::symlink_metadata(r.join("x-link"))?,
        );
        Ok((a.ino() == b.ino(), attr_of(&a), attr_of(&b)))
    });
    both_err_as_mounter(&m, "hard link over a name", libc::EEXIST, |r| {
        fs::hard_link(r.join("x"), r.join("d/b"))
    });
    both_err_as_mounter(&m, "hard link of a directory", libc::EPERM, |r| {
        fs::hard_link(r.join("d"), r.join("d-link"))
    });
    both_ok_as_mounter(&m, "unlink one of two links", |r| {
        fs::remove_file(r.join("x"))?;
        attr(&r.join("x-link"))
    });

    both_ok_as_mounter(&m, "symlink and readlink", |r| {
        std::os::unix::fs::symlink("d/../x-link", r.join("s"))?;
        std::os::unix::fs::symlink("nowhere/at/all", r.join("dangling"))?;
        Ok((
            fs::read_link(r.join("s"))?,
            read_all(&r.join("s"))?,
            fs::read_link(r.join("dangling"))?,
            fs::metadata(r.join("dangling"))
                .map_err(|e| e.raw_os_error())
                .err(),
            attr(&r.join("s"))?,
        ))
    });
    both_err_as_mounter(&m, "readlink of a file", libc::EINVAL, |r| {
        fs::read_link(r.join("x-link"))
    });

    both_ok_as_mounter(&m, "readdir of 300 entries", |r| {
        fs::create_dir(r.join("many"))?;
        for i in 0..300 {
            let name = format!("entry-{i:03}-{}", "n".repeat(i % 40));
            if i % 10 == 0 {
                fs::create_dir(r.join("many").join(name))?;
            } else {
                fs::write(r.join("many").join(name), i.to_string())?;
            }
        }
        let names = dir_names(&r.join("many"))?;
        let kinds: Vec<(std::ffi::OsString, bool)> = {
            let mut v: Vec<_> = fs::read_dir(r.join("many"))?
                .map(|e| e.and_then(|e| Ok((e.file_name(), e.file_type()?.is_dir()))))
                .collect::<io::Result<_>>()?;
            v.sort();
            v
        };
        Ok((names.len(), names, kinds))
    });
    both_ok_as_mounter(&m, "readdir after removing half", |r| {
        for (i, e) in fs::read_dir(r.join("many"))?.enumerate() {
            let e = e?;
            if i % 2 == 0 && !e.file_type()?.is_dir() {
                fs::remove_file(e.path())?;
            }
        }
        Ok(dir_names(&r.join("many"))?.len())
    });
    assert_mount_equals_native(&m);
    assert_trees_equal(&m.native, &m.backing, TreeOpts::default());
    m.unmount_cleanly();
}

/// Metadata: chmod (setuid and setgid bits too), utimens, user.* xattrs, and chown, which a
/// user may only make to itself.
#[test]
fn metadata_behaves_as_native() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    both_ok_as_mounter(&m, "setup", |r| {
        fs::write(r.join("f"), b"data")?;
        fs::create_dir(r.join("d"))?;
        std::os::unix::fs::symlink("f", r.join("s"))
    });

    for mode in [0o600, 0o644, 0o4755, 0o2755, 0o1777, 0o000, 0o640] {
        both_ok_as_mounter(&m, &format!("chmod {mode:o}"), |r| {
            chmod(&r.join("f"), mode)?;
            chmod(&r.join("d"), mode | 0o700)?;
            Ok((attr(&r.join("f"))?, attr(&r.join("d"))?))
        });
    }
    both_ok_as_mounter(&m, "utimensat: explicit, omitted, now", |r| {
        utimensat(
            &r.join("f"),
            [ts(1_000_000_000, 1), ts(1_200_000_000, 999)],
            0,
        )?;
        let first = fs::metadata(r.join("f"))?;
        utimensat(
            &r.join("f"),
            [ts(0, libc::UTIME_OMIT), ts(1_300_000_000, 5)],
            0,
        )?;
        let second = fs::metadata(r.join("f"))?;
        utimensat(
            &r.join("s"),
            [ts(1_100_000_000, 0), ts(1_100_000_000, 7)],
            libc::AT_SYMLINK_NOFOLLOW,
        )?;
        let link = fs::symlink_metadata(r.join("s"))?;
        utimensat(
            &r.join("d"),
            [ts(0, libc::UTIME_NOW), ts(0, libc::UTIME_NOW)],
            0,
        )?;
        let now = fs::metadata(r.join("d"))?.mtime();
        let recent = (now
            - std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64)
            .abs()
            < 60;
        Ok((
            (
                first.atime(),
                first.atime_nsec(),
                first.mtime(),
                first.mtime_nsec(),
            ),
            (second.atime(), second.mtime(), second.mtime_nsec()),
            (link.mtime(), link.mtime_nsec()),
            recent,
        ))
    });

    both_ok_as_mounter(&m, "user.* xattrs: set, replace, list, get, remove", |r| {
        let f = r.join("f");
        chmod(&f, 0o644)?;
        lsetxattr(&f, "user.one", b"1", 0)?;
        lsetxattr(&f, "user.two", &[0u8, 1, 2, 255], 0)?;
        let create_again = errno_of(&lsetxattr(&f, "user.one", b"x", libc::XATTR_CREATE));
        let replace_missing = errno_of(&lsetxattr(&f, "user.nope", b"x", libc::XATTR_REPLACE));
        lsetxattr(&f, "user.one", b"uno", libc::XATTR_REPLACE)?;
        lsetxattr(&r.join("d"), "user.dir", &vec![7u8; 3000], 0)?;
        let listed = llistxattr(&f)?;
        let got = (lgetxattr(&f, "user.one")?, lgetxattr(&f, "user.two")?);
        let too_small = errno_of(&lgetxattr_sized(&f, "user.two", 2));
        let missing = errno_of(&lgetxattr(&f, "user.missing"));
        lremovexattr(&f, "user.two")?;
        let removed_twice = errno_of(&lremovexattr(&f, "user.two"));
        Ok((
            create_again,
            replace_missing,
            listed,
            got,
            too_small,
            missing,
            removed_twice,
            llistxattr(&f)?,
            lgetxattr(&r.join("d"), "user.dir")?.len(),
        ))
    });
    both_err_as_mounter(&m, "user.* xattr on a symlink", libc::EPERM, |r| {
        lsetxattr(&r.join("s"), "user.x", b"x", 0)
    });
    both_err_as_mounter(&m, "trusted.* xattr as a user", libc::EPERM, |r| {
        lsetxattr(&r.join("f"), "trusted.x", b"x", 0)
    });

    both_ok_as_mounter(&m, "chown to oneself", |r| {
        chown(&r.join("f"), USER, GROUP)?;
        lchown(&r.join("s"), u32::MAX, GROUP)?;
        Ok((attr(&r.join("f"))?, attr(&r.join("s"))?))
    });
    both_err_as_mounter(&m, "chown to another uid", libc::EPERM, |r| {
        chown(&r.join("f"), OTHER_USER, u32::MAX)
    });
    both_err_as_mounter(&m, "chown to root", libc::EPERM, |r| {
        lchown(&r.join("s"), 0, u32::MAX)
    });
    both_err_as_mounter(&m, "chgrp to a group one is not in", libc::EPERM, |r| {
        chown(&r.join("d"), u32::MAX, 0)
    });
    both_ok_as_mounter(&m, "a setgid file stays setgid after a no-op chown", |r| {
        chmod(&r.join("f"), 0o2755)?;
        chown(&r.join("f"), u32::MAX, GROUP)?;
        attr(&r.join("f"))
    });
    assert_mount_equals_native(&m);
    assert_trees_equal(&m.native, &m.backing, TreeOpts::default());
    m.unmount_cleanly();
}

/// Without `allow_other`, FUSE lets in only processes whose every uid and gid are the
/// mounter's: root gets EACCES, so does another user, and so does a root thread that only
/// switched its fsuid to the mounter's.
#[test]
fn only_the_mounter_gets_in_without_allow_other() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    as_mounter(|| fs::write(m.mnt.join("f"), b"mine")).expect("the mounter writes");

    let refused = |who: &str, r: &dyn Fn() -> Vec<Option<i32>>| {
        let errnos = r();
        assert!(
            errnos.iter().all(|&e| e == Some(libc::EACCES)),
            "{who}: expected EACCES everywhere, got {errnos:?}"
        );
    };
    let attempts = |mnt: &Path| -> Vec<Option<i32>> {
        vec![
            errno_of(&fs::metadata(mnt)),
            errno_of(&fs::read_dir(mnt)),
            errno_of(&fs::metadata(mnt.join("f"))),
            errno_of(&fs::read(mnt.join("f"))),
            errno_of(&fs::write(mnt.join("g"), b"x")),
            errno_of(&lgetxattr(&mnt.join("f"), "user.x")),
        ]
    };
    refused("root", &|| attempts(&m.mnt));
    refused("another user", &|| {
        as_real_user(OTHER_USER, OTHER_USER, || attempts(&m.mnt))
    });
    refused("root with the mounter's fsuid", &|| {
        as_user(USER, GROUP, || attempts(&m.mnt))
    });
    // The native equivalent of each refusal is a permission the user granted: the file
    // stays as the mounter left it.
    assert_eq!(
        fs::read(m.backing.join("f")).expect("read backing"),
        b"mine"
    );
    assert!(!m.backing.join("g").exists());
    m.unmount_cleanly();
}

/// The daemon cannot reopen an inode by file handle, so it must keep every inode's fd, past
/// any budget: with `-o inode_fds=4`, forty files looked up and used again all still work
/// (an evicted fd would come back as EPERM), and the daemon holds an fd for each.
#[test]
fn inodes_past_the_fd_budget_keep_their_fds() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&["inode_fds=4"]);
    const FILES: usize = 40;
    let use_all = |r: &Path| -> io::Result<Vec<(Vec<u8>, Attr)>> {
        (0..FILES)
            .map(|i| {
                let p = r.join(format!("f{i}"));
                Ok((read_all(&p)?, attr(&p)?))
            })
            .collect()
    };
    both_ok_as_mounter(&m, "create forty files", |r| {
        for i in 0..FILES {
            fs::write(r.join(format!("f{i}")), format!("file {i}"))?;
        }
        use_all(r)
    });
    // Twice more, in the same and the opposite order: every inode's first fd is long past
    // the budget of four.
    both_ok_as_mounter(&m, "use them all again", |r| {
        let mut again = use_all(r)?;
        for i in (0..FILES).rev() {
            chmod(&r.join(format!("f{i}")), 0o600)?;
            fs::write(r.join(format!("f{i}")), format!("again {i}"))?;
        }
        again.extend(use_all(r)?);
        Ok(again)
    });
    let backing = m.backing.to_string_lossy().into_owned();
    let held = fs::read_dir(format!("/proc/{}/fd", m.pid()))
        .expect("read the daemon's fds")
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|t| {
            t.to_string_lossy()
                .strip_prefix(&backing)
                .is_some_and(|rest| rest.starts_with("/f"))
        })
        .count();
    assert!(
        held >= FILES,
        "the daemon holds fds for {held} of the {FILES} files the kernel holds"
    );
    assert_mount_equals_native(&m);
    m.unmount_cleanly();
}

/// SIGTERM makes the user's daemon unmount itself, which for a user goes through
/// `fusermount3` (`umount2` is root's), and exit 0.
#[test]
fn sigterm_unmounts_through_fusermount3() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let mut m = UserMount::new(&[]);
    both_ok_as_mounter(&m, "a file", |r| fs::write(r.join("f"), b"x"));
    let status = m.stop(libc::SIGTERM);
    let log = m.log_text();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM\n{log}");
    assert!(
        !is_mounted(&m.mnt),
        "still mounted after SIGTERM: {:?}\n{log}",
        mount_at(&m.mnt)
    );
    assert!(!log.contains(" ERROR "), "{log}");
}

/// `uringfs SRC MNT` without `-f`, as a user runs it: the command returns 0 once the mount
/// is live, the daemon serves in the background as the user, and it exits once the user
/// unmounts with `fusermount3 -u`.
#[test]
fn background_mount_as_user() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let mut d = BackgroundDaemon {
        dirs: user_scratch(),
        pid: None,
    };
    let out = d.dirs.root.join("starter.out");
    let outfile = File::create(&out).expect("create starter output");
    let mut cmd = Command::new(bin());
    cmd.arg(&d.dirs.backing)
        .arg(&d.dirs.mnt)
        .uid(USER)
        .gid(GROUP)
        .current_dir("/")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(outfile.try_clone().expect("dup output fd"))
        .stderr(outfile);
    let mut starter = cmd.spawn().expect("spawn uringfs as the user");
    let status = wait_timeout(&mut starter, MOUNT_TIMEOUT);
    if status.is_none() {
        let _ = starter.kill();
        let _ = starter.wait();
    }
    let said = fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the starter's exit\n{said}"
    );
    assert!(
        is_fuse_mounted(&d.dirs.mnt),
        "the starter returned before the mount was live\n{said}"
    );
    let pid = daemon_serving(&d.dirs.mnt).expect("the background daemon's pid");
    d.pid = Some(pid);
    let uid = proc_status(pid as u32, "Uid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        [USER.to_string().as_str(); 4]
    );

    let native = d.dirs.native.clone();
    let mnt = d.dirs.mnt.clone();
    let run = |r: &Path| -> io::Result<(Vec<u8>, Attr)> {
        fs::write(r.join("f"), b"served in the background")?;
        Ok((read_all(&r.join("f"))?, attr(&r.join("f"))?))
    };
    let (n, m) = as_mounter(|| (outcome(run(&native)), outcome(run(&mnt))));
    assert_eq!(m, n, "mount vs native");
    assert!(m.is_ok(), "{m:?}");

    let (status, stderr) = fusermount_unmount(&d.dirs.mnt);
    assert!(status.success(), "fusermount3 -u: {status}: {stderr}");
    assert!(!is_mounted(&d.dirs.mnt));
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the background daemon {pid} still runs {MOUNT_TIMEOUT:?} after fusermount3 -u"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.pid = None;
}

/// A daemon running in the background, not this process's child: drop unmounts and
/// SIGKILLs it if a test failed before it was done.
struct BackgroundDaemon {
    /// Its directories, removed after it.
    dirs: Scratch,
    /// Its pid, once found; `None` once it exited.
    pid: Option<i32>,
}

impl Drop for BackgroundDaemon {
    fn drop(&mut self) {
        if is_mounted(&self.dirs.mnt) {
            let _ = fusermount_unmount(&self.dirs.mnt);
        }
        if is_mounted(&self.dirs.mnt) {
            lazy_unmount(&self.dirs.mnt);
        }
        if let Some(pid) = self.pid
            && daemon_serving(&self.dirs.mnt) == Some(pid)
        {
            // SAFETY: plain syscall on the pid just seen serving this test's mount point.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The pid of a live uringfs process run by the user with `mnt` on its command line.
fn daemon_serving(mnt: &Path) -> Option<i32> {
    let bin = bin();
    fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let ours = args.first() == Some(&bin.as_os_str().as_encoded_bytes())
            && args.contains(&mnt.as_os_str().as_encoded_bytes())
            && process_alive(pid);
        ours.then_some(pid)
    })
}

/// Whether `pid` exists and is not a zombie (a daemon the test did not start is reaped by
/// init, if at all).
fn process_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

/// Runs `uringfs -f -o OPTS` as the user, which must refuse to serve: exit 1 within the
/// mount timeout, leave no mount, and print exactly one `uringfs: ` error line, returned.
#[track_caller]
fn refused_as_user(opts: &[&str]) -> String {
    let dirs = user_scratch();
    let log = dirs.root.join("uringfs.log");
    let mut child = spawn_as_user(&dirs, opts, &log);
    let status = wait_timeout(&mut child, MOUNT_TIMEOUT);
    let mounted = is_mounted(&dirs.mnt);
    if mounted {
        let _ = fusermount_unmount(&dirs.mnt);
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(!mounted, "-o {opts:?} mounted for a user:\n{text}");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "exit status of -o {opts:?}\n{text}"
    );
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("uringfs: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{text}");
    errors[0].to_string()
}

/// `-o allow_other` is for users only where /etc/fuse.conf says `user_allow_other`
/// (fusermount3 checks). Without it the daemon fails before serving, with fusermount3's
/// reason on one line, and leaves no mount; with it, root gets in.
#[test]
fn allow_other_follows_fuse_conf() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let conf = fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if conf.lines().any(|l| l.trim() == "user_allow_other") {
        let m = UserMount::new(&["allow_other"]);
        let info = mount_at(&m.mnt).expect("mounted");
        assert!(info.super_opts.contains("allow_other"), "{info:?}");
        as_mounter(|| fs::write(m.mnt.join("f"), b"shared")).expect("the mounter writes");
        assert_eq!(fs::read(m.mnt.join("f")).expect("root reads"), b"shared");
        m.unmount_cleanly();
    } else {
        let error = refused_as_user(&["allow_other"]);
        assert!(
            error.contains("user_allow_other"),
            "the error names the setting: {error}"
        );
    }
}

/// `-o passthrough` needs CAP_SYS_ADMIN for every backing file: a user's daemon refuses it
/// before mounting, in one line, rather than mounting and failing each open.
#[test]
fn passthrough_as_user_is_one_error() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let error = refused_as_user(&["passthrough"]);
    assert!(
        error.contains("passthrough") && error.contains("root"),
        "the error says why: {error}"
    );
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
