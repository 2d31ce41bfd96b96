//! The daemon under audit: a scratch mount this process starts (and always tears down), or a
//! running daemon found by pid (which is left running).

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sys;

/// How long a mount may take to appear, and an unmounted daemon to exit.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds since the epoch, the clock strace's `-ttt` uses.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A daemon being audited.
#[derive(Debug)]
pub struct Daemon {
    /// The daemon's pid.
    pub pid: u32,
    /// Mount point (canonical).
    pub mnt: PathBuf,
    /// The directory it mirrors (canonical), if known.
    pub backing: Option<PathBuf>,
    /// A regular file receiving the daemon's stderr (its log), if there is one.
    pub log: Option<PathBuf>,
    /// The command that started it, for the report.
    pub command: String,
    /// Our child, when we started it; `None` when attached by `--pid`. Dropping the `Daemon`
    /// unmounts and kills only a daemon we started.
    child: Option<Child>,
}

impl Daemon {
    /// Starts `bin -f -o allow_other[,OPTIONS] BACKING MNT` with `RUST_LOG=info`, stderr to
    /// `log`, and waits until the mount shows in /proc/self/mountinfo.
    pub fn spawn(
        bin: &Path,
        backing: &Path,
        mnt: &Path,
        log: &Path,
        options: Option<&str>,
    ) -> Result<Daemon, String> {
        let log_file =
            File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let opts = match options.map(str::trim).filter(|o| !o.is_empty()) {
            Some(extra) => format!("allow_other,{extra}"),
            None => "allow_other".to_string(),
        };
        let child = Command::new(bin)
            .args(["-f", "-o", &opts])
            .arg(backing)
            .arg(mnt)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut daemon = Daemon {
            pid: child.id(),
            mnt: mnt.to_path_buf(),
            backing: Some(backing.to_path_buf()),
            log: Some(log.to_path_buf()),
            command: format!(
                "RUST_LOG=info {} -f -o {} {} {} 2>{}",
                super::workload::shell_quote(bin),
                super::workload::shell_quote(Path::new(&opts)),
                super::workload::shell_quote(backing),
                super::workload::shell_quote(mnt),
                super::workload::shell_quote(log)
            ),
            child: Some(child),
        };
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if fuse_mount_at(mnt).is_some() {
                return Ok(daemon);
            }
            if let Some(child) = daemon.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                daemon.child = None;
                let text = fs::read_to_string(log).unwrap_or_default();
                let last = text.lines().last().unwrap_or("no output");
                return Err(format!(
                    "the daemon exited ({status}) before the mount was live: {last}"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no FUSE mount at {} after {MOUNT_TIMEOUT:?}",
                    mnt.display()
                ));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Finds the running uringfs daemon `pid` and its mount. Errors if the process is not a
    /// uringfs daemon or has no live mount.
    pub fn attach(pid: u32) -> Result<Daemon, String> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let comm = fs::read_to_string(proc_dir.join("comm"))
            .map_err(|_| format!("no process with pid {pid}"))?;
        let comm = comm.trim().to_string();
        let exe = fs::read_link(proc_dir.join("exe")).ok();
        let exe_name = exe.as_deref().and_then(Path::file_name).map(|n| {
            n.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        });
        if comm != "uringfs" && exe_name.as_deref() != Some("uringfs") {
            return Err(format!(
                "pid {pid} is not a uringfs daemon (comm {comm:?}, exe {})",
                exe.as_deref()
                    .map_or("unknown".into(), |e| e.display().to_string())
            ));
        }
        let cmdline = fs::read(proc_dir.join("cmdline"))
            .map_err(|e| format!("cannot read the command line of pid {pid}: {e}"))?;
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let (backing, mnt) = positionals(args.get(1..).unwrap_or(&[])).ok_or_else(|| {
            format!("cannot find BACKING and MOUNTPOINT in the command line of pid {pid}")
        })?;
        let cwd = fs::read_link(proc_dir.join("cwd")).unwrap_or_else(|_| PathBuf::from("/"));
        let resolve = |p: &str| {
            let p = cwd.join(p);
            fs::canonicalize(&p).unwrap_or(p)
        };
        let (backing, mnt) = (resolve(&backing), resolve(&mnt));
        if fuse_mount_at(&mnt).is_none() {
            return Err(format!(
                "pid {pid} is a uringfs daemon, but nothing is mounted at {}",
                mnt.display()
            ));
        }
        // The log is readable only if stderr is a regular file (not /dev/null, a tty or a pipe).
        let log = fs::read_link(proc_dir.join("fd/2"))
            .ok()
            .filter(|p| fs::metadata(p).is_ok_and(|m| m.is_file()));
        Ok(Daemon {
            pid,
            mnt,
            backing: Some(backing),
            log,
            command: format!("# already running: {}", args.join(" ")),
            child: None,
        })
    }

    /// True if this process started the daemon (and will unmount it).
    pub fn owned(&self) -> bool {
        self.child.is_some()
    }

    /// Asks the daemon to log its counters now.
    pub fn request_counters(&self) -> Result<(), String> {
        signal(self.pid, "USR1")
    }

    /// Unmounts with `umount MNT` and waits for the daemon to exit. Returns the time the
    /// unmount was requested. Only for a daemon we started.
    pub fn unmount(&mut self) -> Result<f64, String> {
        let requested = now();
        let out = Command::new("umount")
            .arg(&self.mnt)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run umount: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "umount {} failed: {}",
                self.mnt.display(),
                err.lines().next().unwrap_or("").trim()
            ));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(requested);
        };
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    self.child = None;
                    return Ok(requested);
                }
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
                _ => return Err("the daemon did not exit after the unmount".to_string()),
            }
        }
    }

    /// The daemon's log so far ("" if there is none).
    pub fn log_text(&self) -> String {
        self.log
            .as_deref()
            .and_then(|l| fs::read_to_string(l).ok())
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // A failed audit must not leave a mount behind: detach it (never blocks on a hung
        // daemon), then make sure the daemon is gone.
        if fuse_mount_at(&self.mnt).is_some()
            && let Ok(path) = CString::new(self.mnt.as_os_str().as_bytes())
        {
            let _ = sys::umount_detach(&path);
        }
        let _ = signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends `SIG<name>` to `pid` with kill(1) (this module has no `unsafe` for kill(2)).
pub fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid} failed ({status})"))
    }
}

/// The last two positional arguments of a uringfs command line (BACKING, MOUNTPOINT).
fn positionals(args: &[String]) -> Option<(String, String)> {
    let mut found = Vec::new();
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        match a.as_str() {
            "-o" | "--threads" => {
                iter.next();
            }
            s if s.starts_with('-') => {}
            s => found.push(s.to_string()),
        }
    }
    let mnt = found.pop()?;
    let backing = found.pop()?;
    Some((backing, mnt))
}

/// The fstype of the FUSE mount at `path` (as /proc/self/mountinfo shows it), if any.
pub fn fuse_mount_at(path: &Path) -> Option<String> {
    mount_containing(path)
        .filter(|(point, fstype)| point == path && fstype.starts_with("fuse"))
        .map(|(_, fstype)| fstype)
}

/// The mount point and fstype of the mount that holds `path` (longest matching mount point).
pub fn mount_containing(path: &Path) -> Option<(PathBuf, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(PathBuf, String)> = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(point), Some(fstype)) = (left.split(' ').nth(4), right.split(' ').next()) else {
            continue;
        };
        let point = PathBuf::from(unescape_mountinfo(point));
        let longer = best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len());
        if path.starts_with(&point) && longer {
            best = Some((point, fstype.to_string()));
        }
    }
    best
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\'
            && let Some(oct) = bytes.get(i + 1..i + 4)
            && let Ok(s) = std::str::from_utf8(oct)
            && let Ok(v) = u8::from_str_radix(s, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_positionals() {
        let a = |v: &[&str]| positionals(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            a(&["-f", "-o", "allow_other", "/b", "/m"]),
            Some(("/b".into(), "/m".into()))
        );
        assert_eq!(
            a(&["--threads", "4", "b", "m", "-d"]),
            Some(("b".into(), "m".into()))
        );
        assert_eq!(a(&["-f", "/m"]), None);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/a\\x"), r"/a\\x");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn root_is_a_mount() {
        let (point, _) = mount_containing(Path::new("/")).expect("/ is mounted");
        assert_eq!(point, Path::new("/"));
    }
}
