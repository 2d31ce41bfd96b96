//! The kernel fallbacks of src/probe.rs, tested on this kernel by hiding the newer syscalls
//! from the daemon alone: a seccomp filter (tests/helpers/seccomp_wrap.rs, installed in a
//! `pre_exec` hook) makes `fchmodat2`, the `*xattrat` calls or `io_uring_*` fail with `ENOSYS`
//! (or `EPERM`, as Docker answers) in the daemon, exactly as a 6.1 or 6.8 kernel would, while
//! the test itself and the native comparison keep the whole kernel.
//!
//! Every operation is made on the mount and on a plain directory on the same ext4 disk, and the
//! outcomes (values, errno) must be equal. Self-contained on purpose: it shares no harness
//! with the other mount tests, only the `SKIP:` convention scripts/test counts.

#[path = "helpers/seccomp_wrap.rs"]
mod seccomp_wrap;

use std::ffi::CString;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a mount may take to appear, and a daemon to exit after the unmount.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The unprivileged user the permission cases run as.
const USER: &str = "1000";

/// The syscalls a 6.1 kernel lacks of those the daemon uses (6.8 has fchmodat2 but no
/// `*xattrat`); `io_uring` is added where the ring is the point.
const OLD_KERNEL: &str = "fchmodat2,xattrat";

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

/// The binary under test (as tests/common: `URINGFS_BIN` overrides).
fn bin() -> PathBuf {
    std::env::var_os("URINGFS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_uringfs")))
}

/// Whether the test can run: root and `/dev/fuse`. Without them it fails under `CI=true` and
/// writes a `SKIP:` line elsewhere (scripts/test counts those).
fn require_root_and_fuse() -> bool {
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
fn is_fuse_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = line.split(" - ").nth(1).and_then(|p| p.split(' ').next());
        fields.get(4).is_some_and(|mp| Path::new(mp) == path)
            && fstype.is_some_and(|t| t.starts_with("fuse"))
    })
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in test paths")
}

/// `umount2(path, flags)`.
fn umount(path: &Path, flags: i32) -> io::Result<()> {
    let c = cpath(path);
    // SAFETY: `c` is NUL-terminated and lives across the call.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `<target tmp>/scratch/fallbacks-<test>-<pid>-<n>` with `backing/`, `mnt/` and `native/`.
struct Dirs {
    root: PathBuf,
    backing: PathBuf,
    mnt: PathBuf,
    native: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
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
fn daemon_command(blocked: &str, errno: u32) -> Command {
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
struct Mount {
    dirs: Dirs,
    child: Option<Child>,
    log: PathBuf,
}

impl Mount {
    /// Runs `setup` on backing/ and native/, then mounts backing/ on mnt/.
    fn start(blocked: &str, errno: u32, opts: &[&str], setup: impl Fn(&Path)) -> Mount {
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

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Unmounts and waits for the daemon to exit; returns its log.
    fn stop(&mut self) -> String {
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
    fn probe_line(&self) -> String {
        self.log_text()
            .lines()
            .find(|l| l.contains("uringfs::probe") && l.contains(" kernel "))
            .unwrap_or_else(|| panic!("no probe line in the log:\n{}", self.log_text()))
            .to_string()
    }

    /// Runs `op` on the mount and on native/ with the same relative path and asserts equal
    /// outcomes; returns the mount's.
    #[track_caller]
    fn both<T: PartialEq + std::fmt::Debug>(
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
    fn both_as_user(&self, script: &str) -> (Option<i32>, String) {
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

/// `sh -c script` as uid/gid 1000 without groups or capabilities, in `root`, with `R=root`.
fn as_user(script: &str, root: &Path) -> Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .env("R", root)
        .env("LC_ALL", "C")
        .current_dir(root)
        .output()
        .expect("run setpriv")
}

/// A command's exit code and output, paths made relative.
fn run(program: &str, args: &[&str], root: &Path) -> io::Result<(Option<i32>, String)> {
    let out = Command::new(program)
        .args(args)
        .current_dir(root)
        .env("LC_ALL", "C")
        .output()?;
    let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    Ok((out.status.code(), text))
}

/// The value or the errno.
fn outcome<T>(r: io::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn lsetxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let (p, n) = (cpath(path), CString::new(name).expect("name"));
    // SAFETY: valid strings and a buffer of `value.len()` bytes.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
}

/// `lgetxattr` with a buffer of `size` bytes (0: the size query).
fn lgetxattr(path: &Path, name: &str, size: usize) -> io::Result<Vec<u8>> {
    let (p, n) = (cpath(path), CString::new(name).expect("name"));
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` is writable for `size` bytes.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), size) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(if size == 0 { 0 } else { len as usize });
    if size == 0 {
        buf = (len as usize).to_le_bytes().to_vec();
    }
    Ok(buf)
}

/// `getxattr` (following a symlink).
fn getxattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (p, n) = (cpath(path), CString::new(name).expect("name"));
    let mut buf = vec![0u8; 65536];
    // SAFETY: `buf` is writable for its length.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// `llistxattr`: the names, sorted.
fn llistxattr(path: &Path) -> io::Result<Vec<String>> {
    let p = cpath(path);
    let mut buf = vec![0u8; 65536];
    // SAFETY: `buf` is writable for its length.
    let len = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut names: Vec<String> = buf[..len as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn lremovexattr(path: &Path, name: &str) -> io::Result<()> {
    let (p, n) = (cpath(path), CString::new(name).expect("name"));
    // SAFETY: valid strings.
    check(unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) })
}

/// `fchmodat2(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW)`: lchmod (the test is not filtered).
fn lchmod(path: &Path, mode: u32) -> io::Result<()> {
    let p = cpath(path);
    // SAFETY: valid string, plain integers.
    let ret = unsafe {
        libc::syscall(
            452,
            libc::AT_FDCWD,
            p.as_ptr(),
            mode,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(ret as libc::c_int)
}

fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let p = cpath(path);
    // SAFETY: valid string.
    check(unsafe { libc::lchown(p.as_ptr(), uid, gid) })
}

/// Mode, uid and gid of `path` (not following a symlink).
fn owner_and_mode(path: &Path) -> io::Result<(u32, u32, u32)> {
    let md = fs::symlink_metadata(path)?;
    Ok((md.mode(), md.uid(), md.gid()))
}

/// A file `f` (0644), a directory `d` (0755), a symlink `l -> f` and a fifo `p`.
fn tree(root: &Path) {
    fs::write(root.join("f"), b"data").expect("f");
    fs::set_permissions(root.join("f"), fs::Permissions::from_mode(0o644)).expect("chmod f");
    fs::create_dir(root.join("d")).expect("d");
    fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o755)).expect("chmod d");
    std::os::unix::fs::symlink("f", root.join("l")).expect("l");
    let p = cpath(&root.join("p"));
    // SAFETY: valid string.
    check(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }).expect("p");
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

/// The daemon logs one line naming each missing feature and its replacement; Docker's EPERM
/// is taken as missing like ENOSYS.
#[test]
fn probe_line_names_each_fallback() {
    if !require_root_and_fuse() {
        return;
    }
    for errno in [seccomp_wrap::ENOSYS, seccomp_wrap::EPERM] {
        let mut m = Mount::start("fchmodat2,xattrat,io_uring", errno, &[], |_| {});
        let line = m.probe_line();
        assert!(line.contains(" WARN "), "{line}");
        for needle in [
            "lacks fchmodat2 (chmod: fchmodat on /proc/self/fd/N",
            "setxattrat/getxattrat/listxattrat/removexattrat (xattrs: ",
            "io_uring (io_uring_setup: ",
            "data I/O: plain syscalls)",
        ] {
            assert!(
                line.contains(needle),
                "errno {errno}: no {needle:?} in {line}"
            );
        }
        let log = m.stop();
        let probe_lines = log.lines().filter(|l| l.contains("uringfs::probe")).count();
        assert_eq!(probe_lines, 1, "one line:\n{log}");
    }
    // A 6.8 kernel: fchmodat2 is there, *xattrat is not.
    let m = Mount::start("xattrat", seccomp_wrap::ENOSYS, &[], |_| {});
    let line = m.probe_line();
    assert!(line.contains("lacks setxattrat/getxattrat/"), "{line}");
    assert!(line.contains("using fchmodat2, io_uring ("), "{line}");
    assert!(!line.contains("lacks fchmodat2"), "{line}");
}

/// chmod (fchmodat through the magic link) and chown as natively, for root and for a user.
#[test]
fn chmod_and_chown_match_native_without_fchmodat2() {
    if !require_root_and_fuse() {
        return;
    }
    let m = Mount::start(OLD_KERNEL, seccomp_wrap::ENOSYS, &[], tree);
    assert!(m.probe_line().contains("lacks fchmodat2"));
    let chmod = |mode: u32| {
        move |p: &Path| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
            owner_and_mode(p)
        }
    };
    for (rel, mode) in [
        ("f", 0o600),
        ("f", 0o4755),
        ("f", 0o2644),
        ("d", 0o700),
        ("d", 0o1777),
    ] {
        m.both("chmod", rel, chmod(mode)).expect("chmod");
    }
    m.both("chmod", "p", chmod(0o600)).expect("chmod fifo");
    m.both("chmod through the symlink", "l", chmod(0o640))
        .expect("chmod l");
    // lchmod of the symlink itself: EOPNOTSUPP (the kernel refuses before FUSE since 6.6;
    // an older kernel sends it, and the fallback refuses it the same way).
    assert_eq!(
        m.both("lchmod", "l", |p| lchmod(p, 0o600)
            .and_then(|()| owner_and_mode(p))),
        Err(libc::EOPNOTSUPP)
    );
    m.both("chmod missing", "nope", chmod(0o600)).unwrap_err();
    for rel in ["f", "d", "p"] {
        m.both("chown", rel, |p| {
            std::os::unix::fs::chown(p, Some(1000), Some(1000))?;
            owner_and_mode(p)
        })
        .expect("chown");
    }
    m.both("lchown", "l", |p| {
        lchown(p, 1000, 0).and_then(|()| owner_and_mode(p))
    })
    .expect("lchown");
    // As the owner (now 1000): allowed; setgid on a file of a group it is not in is dropped.
    m.both("chown to 1000:0", "f", |p| {
        std::os::unix::fs::chown(p, Some(1000), Some(0))?;
        owner_and_mode(p)
    })
    .expect("chown");
    let (code, _) = m.both_as_user("chmod 2750 \"$R/f\" && stat -c %a \"$R/f\"");
    assert_eq!(code, Some(0));
    let (code, out) = m.both_as_user("chmod 0777 \"$R/p\"; chmod 0777 \"$R/d\"");
    assert_eq!(code, Some(0), "{out}");
    m.both("state", "f", owner_and_mode).expect("stat");
    m.both("state", "d", owner_and_mode).expect("stat");
    // Not the owner: EPERM.
    m.both("chown back to root", "f", |p| {
        std::os::unix::fs::chown(p, Some(0), Some(0))
    })
    .expect("chown");
    let (code, out) = m.both_as_user("chmod 0777 \"$R/f\"");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    // BACKING got what native got.
    for rel in ["f", "d", "l", "p"] {
        assert_eq!(
            owner_and_mode(&m.dirs.backing.join(rel)).ok(),
            owner_and_mode(&m.dirs.native.join(rel)).ok(),
            "{rel} in BACKING"
        );
    }
}

/// Every xattr call on a file, a directory, a symlink and a fifo, through the cwd-relative
/// fallback: the same values and errnos as natively, and xattrs never switched off.
#[test]
fn xattrs_match_native_without_xattrat() {
    if !require_root_and_fuse() {
        return;
    }
    let m = Mount::start(OLD_KERNEL, seccomp_wrap::ENOSYS, &[], tree);
    assert!(
        m.probe_line().contains("lacks fchmodat2 (") && m.probe_line().contains("), setxattrat/")
    );
    let big = vec![b'v'; 4000];
    for rel in ["f", "d", "l", "p"] {
        // user.* exist only on files and directories (EPERM on a symlink or fifo, natively
        // too); trusted.* and security.* on every inode, for root.
        for name in ["user.a", "trusted.t", "security.s"] {
            let _ = m.both("set", rel, |p| lsetxattr(p, name, b"12", 0));
            m.both("create existing", rel, |p| {
                lsetxattr(p, name, b"x", libc::XATTR_CREATE)
            })
            .unwrap_err();
            let _ = m.both("replace", rel, |p| {
                lsetxattr(p, name, b"34", libc::XATTR_REPLACE)
            });
            let _ = m.both("size", rel, |p| lgetxattr(p, name, 0));
            let _ = m.both("get small", rel, |p| lgetxattr(p, name, 1));
            let _ = m.both("get", rel, |p| lgetxattr(p, name, 64));
        }
        m.both("replace missing", rel, |p| {
            lsetxattr(p, "trusted.none", b"x", libc::XATTR_REPLACE)
        })
        .unwrap_err();
        m.both("empty value", rel, |p| {
            lsetxattr(p, "trusted.empty", b"", 0)?;
            lgetxattr(p, "trusted.empty", 64)
        })
        .expect("empty value");
        m.both("big value", rel, |p| {
            lsetxattr(p, "trusted.big", &big, 0)?;
            lgetxattr(p, "trusted.big", 65536)
        })
        .expect("big value");
        m.both("list", rel, llistxattr).expect("list");
        m.both("list size", rel, |p| {
            let c = cpath(p);
            // SAFETY: the size query, no buffer.
            let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n)
            }
        })
        .expect("list size");
        m.both("remove", rel, |p| lremovexattr(p, "trusted.t"))
            .expect("remove");
        m.both("remove again", rel, |p| lremovexattr(p, "trusted.t"))
            .unwrap_err();
        m.both("get removed", rel, |p| lgetxattr(p, "trusted.t", 64))
            .unwrap_err();
        m.both("list after", rel, llistxattr).expect("list");
    }
    // Through the symlink (following it): its target's, not its own.
    m.both("get via symlink", "l", |p| getxattr(p, "user.a"))
        .expect("user.a of f");
    m.both("get via symlink", "l", |p| getxattr(p, "trusted.big"))
        .expect("f's");
    assert_eq!(
        lgetxattr(&m.dirs.backing.join("l"), "trusted.big", 65536).ok(),
        Some(big.clone()),
        "the symlink's own xattr is in BACKING, on the symlink"
    );
    // An unprivileged user: user.* need write/read permission, trusted.* are invisible.
    let (code, out) = m.both_as_user(
        "setfattr -n user.u -v 1 f; echo set=$?; getfattr -n user.a f; echo get=$?; \
         getfattr -d -m - f; setfattr -n trusted.x -v 1 f; echo t=$?",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("set=1") && out.contains("Permission denied"),
        "{out}"
    );
    // The kernel still asks: the fallback never answered ENOSYS.
    m.both("still on", "f", |p| lgetxattr(p, "user.a", 64))
        .expect("xattrs stay on");
    for rel in ["f", "d", "l", "p"] {
        assert_eq!(
            llistxattr(&m.dirs.backing.join(rel)).ok(),
            llistxattr(&m.dirs.native.join(rel)).ok(),
            "{rel} in BACKING"
        );
    }
}

/// POSIX ACLs (system.posix_acl_* through the fallback): setfacl/getfacl, a default ACL on a
/// new file, and the kernel's permission check from them, as natively.
#[test]
fn acls_match_native_without_xattrat() {
    if !require_root_and_fuse() {
        return;
    }
    let m = Mount::start(OLD_KERNEL, seccomp_wrap::ENOSYS, &[], |root| {
        tree(root);
        fs::write(root.join("secret"), b"s").expect("secret");
        fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).expect("0600");
    });
    assert!(m.probe_line().contains("setxattrat/getxattrat"));
    let both_run = |args: &[&str]| {
        let on_mount = run(args[0], &args[1..], &m.dirs.mnt).expect("run");
        assert_eq!(
            on_mount,
            run(args[0], &args[1..], &m.dirs.native).expect("run"),
            "{args:?}"
        );
        on_mount
    };
    let (code, out) = m.both_as_user("cat \"$R/secret\"");
    assert_ne!(code, Some(0), "no ACL yet: {out}");
    assert_eq!(
        both_run(&["setfacl", "-m", "u:1000:r", "secret"]).0,
        Some(0)
    );
    assert_eq!(
        both_run(&["setfacl", "-m", "u:1000:rwx,g::r-x", "d"]).0,
        Some(0)
    );
    assert_eq!(
        both_run(&["setfacl", "-d", "-m", "u:1000:r-x,o::-", "d"]).0,
        Some(0)
    );
    let (code, out) = both_run(&["getfacl", "-cn", "secret", "d", "f"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("user:1000:r--"), "{out}");
    let (code, out) = m.both_as_user("cat \"$R/secret\" && touch \"$R/d/byuser\"");
    assert_eq!((code, out.as_str()), (Some(0), "s"));
    // A new file inherits the default ACL (the umask yields to it).
    m.both("create under a default ACL", "d/new", |p| {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(p)
            .map(|_| ())?;
        owner_and_mode(p)
    })
    .expect("create");
    let (code, out) = both_run(&["getfacl", "-cn", "d/new", "d/byuser", "d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("default:user:1000:r-x"), "{out}");
    // On the symlink itself: getfacl -P answers for the link, setfacl -P refuses, as natively.
    both_run(&["getfacl", "-cnP", "l"]);
    both_run(&["setfacl", "-P", "-m", "u:1000:r", "l"]);
    // Removing them closes the door again.
    assert_eq!(both_run(&["setfacl", "-b", "secret"]).0, Some(0));
    let (code, _) = m.both_as_user("cat \"$R/secret\"");
    assert_ne!(code, Some(0));
    assert_eq!(both_run(&["getfacl", "-cn", "secret"]).0, Some(0));
}

/// io_uring_setup refused (ENOSYS, or Docker's EPERM): the daemon starts with plain syscalls
/// and one warning, and its data I/O works.
#[test]
fn without_io_uring_the_daemon_uses_plain_syscalls() {
    if !require_root_and_fuse() {
        return;
    }
    for errno in [seccomp_wrap::ENOSYS, seccomp_wrap::EPERM] {
        let mut m = Mount::start("io_uring", errno, &[], |_| {});
        let line = m.probe_line();
        assert!(line.contains(" WARN "), "{line}");
        assert!(line.contains("lacks io_uring (io_uring_setup: "), "{line}");
        assert!(line.contains("data I/O: plain syscalls)"), "{line}");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(m.dirs.mnt.join("f"), &data).expect("write through the mount");
        assert_eq!(fs::read(m.dirs.mnt.join("f")).expect("read"), data);
        assert_eq!(fs::read(m.dirs.backing.join("f")).expect("backing"), data);
        fs::create_dir(m.dirs.mnt.join("d")).expect("mkdir");
        for i in 0..50 {
            fs::write(m.dirs.mnt.join(format!("d/{i}")), b"x").expect("create");
        }
        assert_eq!(
            fs::read_dir(m.dirs.mnt.join("d")).expect("readdir").count(),
            50
        );
        let log = m.stop();
        assert!(log.contains("stats: ring: off"), "{log}");
        let warnings = log.lines().filter(|l| l.contains(" WARN ")).count();
        assert_eq!(warnings, 1, "one warning line:\n{log}");
    }
}

/// `-o uring=on` without io_uring: one line on stderr, exit 1, nothing mounted (in the
/// foreground and daemonized).
#[test]
fn uring_on_without_io_uring_is_one_line_and_exit_1() {
    if !require_root_and_fuse() {
        return;
    }
    let dirs = Dirs::new();
    for foreground in [true, false] {
        let mut cmd = daemon_command("io_uring", seccomp_wrap::ENOSYS);
        if foreground {
            cmd.arg("-f");
        }
        let out = cmd
            .args(["-o", "allow_other,uring=on"])
            .arg(&dirs.backing)
            .arg(&dirs.mnt)
            .stdin(Stdio::null())
            .output()
            .expect("run uringfs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "foreground {foreground}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.contains("io_uring") && stderr.contains("uring=on"),
            "{stderr}"
        );
        assert!(!is_fuse_mounted(&dirs.mnt));
    }
    // uring=off asks nothing of io_uring and starts.
    let mut m = Mount::start("io_uring", seccomp_wrap::ENOSYS, &["uring=off"], |_| {});
    assert!(m.probe_line().contains("io_uring off (-o uring=off)"));
    assert!(m.stop().contains("stats: ring: off"));
}
