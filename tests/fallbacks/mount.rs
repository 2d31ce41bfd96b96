//! The harness: scratch directories, and the daemon run under the seccomp filter on them
//! ([`Mount`]), compared with the native directory.

use super::*;

/// The binary under test (as tests/common: `URINGFS_BIN` overrides).
pub(super) fn bin() -> PathBuf {
    std::env::var_os("URINGFS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_uringfs")))
}

/// Whether the test can run: root and `/dev/fuse`. Without them it fails under `CI=true` and
/// writes a `SKIP:` line elsewhere (scripts/test counts those).
pub(super) fn require_root_and_fuse() -> bool {
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    let reason = if euid != 0 {
        format!("not root (euid {euid})")
    } else if !Path::new("/dev/fuse").exists() {
        "/dev/fuse is missing".to_string()
    } else {
        return true;
    };
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("!!! CI=true but {test} cannot run: {reason}. Refusing to skip under CI. !!!");
    }
    let _ = io::stderr().write_all(format!("SKIP: {test}: {reason}\n").as_bytes());
    false
}

/// Whether a FUSE filesystem is mounted at `path` (mountinfo field 5; the scratch paths
/// contain no characters mountinfo escapes).
pub(super) fn is_fuse_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = line.split(" - ").nth(1).and_then(|p| p.split(' ').next());
        fields.get(4).is_some_and(|mp| Path::new(mp) == path)
            && fstype.is_some_and(|t| t.starts_with("fuse"))
    })
}

pub(super) fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in test paths")
}

/// `umount2(path, flags)`.
pub(super) fn umount(path: &Path, flags: i32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: `c` is NUL-terminated and lives across the call.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `<target tmp>/scratch/fallbacks-<test>-<pid>-<n>` with `backing/`, `mnt/` and `native/`.
pub(super) struct Dirs {
    root: PathBuf,
    pub(super) backing: PathBuf,
    pub(super) mnt: PathBuf,
    pub(super) native: PathBuf,
}

impl Dirs {
    pub(super) fn new() -> Dirs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name: String = std::thread::current()
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("scratch")
            .join(format!(
                "fallbacks-{name}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
        let _ = fs::remove_dir_all(&root);
        let dirs = Dirs {
            backing: root.join("backing"),
            mnt: root.join("mnt"),
            native: root.join("native"),
            root,
        };
        for dir in [&dirs.root, &dirs.backing, &dirs.mnt, &dirs.native] {
            fs::create_dir_all(dir).expect("create scratch dir");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
        }
        dirs
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        if is_fuse_mounted(&self.mnt) {
            let _ = umount(&self.mnt, libc::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The daemon under a seccomp filter, with `-f -o allow_other,OPTS`.
pub(super) fn daemon_command(blocked: &str, errno: u32) -> Command {
    let numbers = seccomp_wrap::syscall_numbers(blocked).expect("syscall list");
    let prog = seccomp_wrap::filter(&numbers, errno);
    let mut cmd = Command::new(bin());
    // SAFETY: `install` only calls prctl on a program built before the fork; it allocates
    // nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || seccomp_wrap::install(&prog));
    }
    cmd
}

/// A mounted daemon that has `blocked` hidden. Drop unmounts, waits for the daemon (SIGKILL
/// after the timeout) and removes the directories, also when the test failed.
pub(super) struct Mount {
    pub(super) dirs: Dirs,
    child: Option<Child>,
    log: PathBuf,
}

impl Mount {
    /// Runs `setup` on backing/ and native/, then mounts backing/ on mnt/.
    pub(super) fn start(blocked: &str, errno: u32, opts: &[&str], setup: impl Fn(&Path)) -> Mount {
        let dirs = Dirs::new();
        setup(&dirs.backing);
        setup(&dirs.native);
        let log = dirs.root.join("uringfs.log");
        let logfile = fs::File::create(&log).expect("create log");
        let mut all = vec!["allow_other"];
        all.extend_from_slice(opts);
        let mut cmd = daemon_command(blocked, errno);
        cmd.arg("-f")
            .arg("-o")
            .arg(all.join(","))
            .arg(&dirs.backing)
            .arg(&dirs.mnt)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log"))
            .stderr(logfile);
        let child = cmd.spawn().expect("spawn uringfs");
        let mut m = Mount {
            dirs,
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + TIMEOUT;
        while !is_fuse_mounted(&m.dirs.mnt) {
            let child = m.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait") {
                m.child = None;
                panic!(
                    "uringfs exited ({status}) before mounting:\n{}",
                    m.log_text()
                );
            }
            assert!(Instant::now() < deadline, "no mount:\n{}", m.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub(super) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Unmounts and waits for the daemon to exit; returns its log.
    pub(super) fn stop(&mut self) -> String {
        if is_fuse_mounted(&self.dirs.mnt) && umount(&self.dirs.mnt, 0).is_err() {
            let _ = umount(&self.dirs.mnt, libc::MNT_DETACH);
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + TIMEOUT;
            while child.try_wait().expect("try_wait").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "uringfs did not exit after the unmount:\n{}",
                        self.log_text()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.log_text()
    }

    /// The start-up line of src/probe.rs.
    pub(super) fn probe_line(&self) -> String {
        self.log_text()
            .lines()
            .find(|l| l.contains("uringfs::probe") && l.contains(" kernel "))
            .unwrap_or_else(|| panic!("no probe line in the log:\n{}", self.log_text()))
            .to_string()
    }

    /// Runs `op` on the mount and on native/ with the same relative path and asserts equal
    /// outcomes; returns the mount's.
    #[track_caller]
    pub(super) fn both<T: PartialEq + std::fmt::Debug>(
        &self,
        what: &str,
        rel: &str,
        op: impl Fn(&Path) -> io::Result<T>,
    ) -> Result<T, i32> {
        let on_mount = outcome(op(&self.dirs.mnt.join(rel)));
        let native = outcome(op(&self.dirs.native.join(rel)));
        assert_eq!(on_mount, native, "{what} {rel}: mount vs native");
        on_mount
    }

    /// Runs `sh -c script` as the unprivileged user in the mount and in native/ (`$R` is the
    /// root) and asserts equal exit codes and output (with the root replaced by `$R`).
    #[track_caller]
    pub(super) fn both_as_user(&self, script: &str) -> (Option<i32>, String) {
        let run = |root: &Path| {
            let out = as_user(script, root);
            let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat())
                .replace(root.to_str().expect("utf-8 path"), "$R");
            (out.status.code(), text)
        };
        let on_mount = run(&self.dirs.mnt);
        assert_eq!(on_mount, run(&self.dirs.native), "as user {USER}: {script}");
        on_mount
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
        }
    }
}
