//! The mount: [`UserMount`], the daemon run as the user through fusermount3.

use super::*;

/// `uringfs -f [-o OPTS] backing mnt` run as uid 1000 on directories it owns. Derefs to its
/// [`Scratch`].
///
/// Drop unmounts with `fusermount3 -u` as the user (then, if that did not do it, lazily as
/// root), waits for the daemon (SIGKILL after a grace period) and removes the directories.
/// It also fails the test (unless it is failing already) if the daemon died during it or
/// logged a Rust panic.
pub(super) struct UserMount {
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
pub(super) fn user_scratch() -> Scratch {
    let dirs = Scratch::new();
    for d in [&dirs.backing, &dirs.mnt, &dirs.native] {
        std::os::unix::fs::chown(d, Some(USER), Some(GROUP))
            .unwrap_or_else(|e| panic!("chown {}: {e}", d.display()));
    }
    dirs
}

/// Starts `uringfs -f [-o opts] backing mnt` as the user, its output in `log`.
pub(super) fn spawn_as_user(dirs: &Scratch, opts: &[&str], log: &Path) -> Child {
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
///
/// EBUSY is retried for a while: the tests of this binary run in parallel threads, and a
/// child another test forks holds copies of this test's open fds (some on this mount) until
/// it execs, which keeps the mount busy for that moment.
pub(super) fn fusermount_unmount(path: &Path) -> (ExitStatus, String) {
    let deadline = std::time::Instant::now() + MOUNT_TIMEOUT;
    loop {
        let out = Command::new("fusermount3")
            .arg("-u")
            .arg(path)
            .uid(USER)
            .gid(GROUP)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .expect("spawn fusermount3");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let busy = !out.status.success() && stderr.contains("Device or resource busy");
        if !busy || std::time::Instant::now() > deadline {
            return (out.status, stderr);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl UserMount {
    /// Mounts an empty backing dir as the user, with `-o opts` if any.
    pub(super) fn new(opts: &[&str]) -> UserMount {
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

    pub(super) fn wait_mounted(&mut self) {
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
    pub(super) fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon already stopped").id()
    }

    /// What the daemon printed so far.
    pub(super) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }

    /// Sends `signal` to the daemon and waits (up to [`MOUNT_TIMEOUT`]) for it to exit.
    pub(super) fn stop(&mut self, signal: i32) -> ExitStatus {
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
    pub(super) fn unmount(&mut self) -> ExitStatus {
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
    pub(super) fn unmount_cleanly(mut self) {
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
pub(super) fn proc_status(pid: u32, name: &str) -> String {
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
pub(super) fn nofile_hard_limit() -> u64 {
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
pub(super) fn fd_budget_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| l.contains("cannot be reopened by file handle"))
}
