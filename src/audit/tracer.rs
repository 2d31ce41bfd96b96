//! The strace process attached to the daemon.
//!
//! `strace -f -p PID` attaches to every thread the process has and follows new ones. It cannot
//! attach to io_uring's `iou-wrk-*`/`iou-sqp-*` workers: they are kernel threads that show in
//! /proc/PID/task but make no syscalls of their own.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::daemon::signal;
use super::workload::shell_quote;

/// How long strace may take to attach, and to exit once asked.
const TRACE_TIMEOUT: Duration = Duration::from_secs(10);

/// The strace arguments, without `-p PID -o FILE`. `-s 64` keeps the buffers of the
/// `/dev/fuse` reads short; paths are printed whole whatever `-s` says.
pub const STRACE_ARGS: [&str; 7] = ["-f", "-qq", "-y", "-ttt", "-T", "-s", "64"];

/// One thread of the daemon as seen when strace attached.
#[derive(Clone, Debug)]
pub struct Task {
    /// Thread id.
    pub tid: u32,
    /// Its comm (`uringfs`, `fuser-3`, `iou-wrk-1234`).
    pub comm: String,
    /// True for io_uring kernel workers, which strace cannot trace.
    pub io_worker: bool,
}

/// A running strace; dropping it stops it.
#[derive(Debug)]
pub struct Tracer {
    /// The strace process.
    child: Option<Child>,
    /// strace's own stderr.
    err: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// The daemon's threads at attach time.
    pub tasks: Vec<Task>,
    /// The daemon's fds at attach time (fd -> path), for syscalls strace prints undecoded.
    pub fds: HashMap<i64, String>,
    /// Each thread's cwd at attach time (tid -> path): a worker that moved its cwd to the
    /// pinned `/proc/self/fd` before the attach (the xattr fallback) resolves fd numbers there.
    pub cwds: HashMap<u32, String>,
    /// The daemon's io_uring fds at attach time and their SQ entries (`SqMask` + 1 in
    /// `/proc/PID/fdinfo`): tells the ring transport's queue rings from the data rings.
    pub ring_entries: HashMap<i64, u32>,
}

/// Checks that strace can be run and returns its version line; the error says how to install it.
pub fn check_installed() -> Result<String, String> {
    match Command::new("strace")
        .arg("-V")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("strace")
            .trim()
            .to_string()),
        Ok(out) => Err(format!("strace -V failed ({})", out.status)),
        Err(e) => Err(format!(
            "strace is not installed or not runnable ({e}); install it (apt-get install -y strace)"
        )),
    }
}

impl Tracer {
    /// Attaches strace to every thread of `pid`, writing `out`, and waits until each thread
    /// that can be traced has strace as its tracer.
    pub fn attach(pid: u32, out: &Path, err: &Path) -> Result<Tracer, String> {
        let err_file =
            File::create(err).map_err(|e| format!("cannot create {}: {e}", err.display()))?;
        let fds = fd_table(pid);
        let cwds = cwd_table(pid);
        let ring_entries = ring_table(pid, &fds);
        let child = Command::new("strace")
            .args(STRACE_ARGS)
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot start strace: {e}"))?;
        let strace_pid = child.id();
        let mut tracer = Tracer {
            child: Some(child),
            err: err.to_path_buf(),
            command: format!(
                "strace {} -p {pid} -o {}",
                STRACE_ARGS.join(" "),
                shell_quote(out)
            ),
            tasks: Vec::new(),
            fds,
            cwds,
            ring_entries,
        };
        let deadline = Instant::now() + TRACE_TIMEOUT;
        loop {
            let tasks = tasks(pid);
            let untraced = tasks
                .iter()
                .filter(|t| !t.io_worker && tracer_of(pid, t.tid) != Some(strace_pid))
                .count();
            if !tasks.is_empty() && untraced == 0 {
                tracer.tasks = tasks;
                return Ok(tracer);
            }
            if let Some(child) = tracer.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                tracer.child = None;
                return Err(format!(
                    "strace exited ({status}): {}",
                    tracer.stderr_line()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "strace did not attach to all threads of pid {pid} within {TRACE_TIMEOUT:?}"
                ));
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Waits for strace to exit by itself (the traced process exited); stops it after the
    /// timeout.
    pub fn wait_exit(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let deadline = Instant::now() + TRACE_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return Ok(());
            }
            sleep(Duration::from_millis(20));
        }
        self.stop()
    }

    /// Detaches strace and waits for it to write the rest of the trace.
    ///
    /// The signal is SIGPIPE, one of the fatal signals on which strace detaches and exits
    /// (HUP, INT, QUIT, PIPE, TERM): strace inherits this process's blocked SIGINT, SIGTERM
    /// and SIGHUP (the audit's own stop signals; std's spawn leaves the mask as it is), and
    /// with `-p` it waits for events with its start-up mask, so those three stay pending
    /// forever. SIGPIPE is never blocked here and, unlike SIGQUIT, dumps no core.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = signal(child.id(), "PIPE");
        let deadline = Instant::now() + TRACE_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
            sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("strace did not stop when asked; killed it".to_string())
    }

    /// The first line strace wrote to its stderr.
    fn stderr_line(&self) -> String {
        fs::read_to_string(&self.err)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
            .unwrap_or_else(|| "no message".to_string())
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The threads of `pid`.
pub fn tasks(pid: u32) -> Vec<Task> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<Task> = dir
        .flatten()
        .filter_map(|e| {
            let tid = e.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let comm = comm.trim().to_string();
            let io_worker = comm.starts_with("iou-");
            Some(Task {
                tid,
                comm,
                io_worker,
            })
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

/// The TracerPid of thread `tid` of `pid` (`None` if 0 or unreadable).
fn tracer_of(pid: u32, tid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|&v| v != 0)
}

/// tid -> cwd of every thread of `pid`.
fn cwd_table(pid: u32) -> HashMap<u32, String> {
    tasks(pid)
        .into_iter()
        .filter_map(|t| {
            let cwd = fs::read_link(format!("/proc/{pid}/task/{}/cwd", t.tid)).ok()?;
            Some((t.tid, cwd.to_string_lossy().into_owned()))
        })
        .collect()
}

/// io_uring fd -> SQ entries, for the io_uring fds among `fds` (fd -> path) of `pid`.
fn ring_table(pid: u32, fds: &HashMap<i64, String>) -> HashMap<i64, u32> {
    fds.iter()
        .filter(|(_, path)| path.as_str() == "anon_inode:[io_uring]")
        .filter_map(|(&fd, _)| {
            let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
            Some((fd, sq_entries_of(&info)?))
        })
        .collect()
}

/// SQ entries from an io_uring fdinfo text (`SqMask:\t0x1f` -> 32).
fn sq_entries_of(fdinfo: &str) -> Option<u32> {
    let mask = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("SqMask:"))?
        .trim();
    let mask = u32::from_str_radix(mask.trim_start_matches("0x"), 16).ok()?;
    mask.checked_add(1)
}

/// fd -> path of every open fd of `pid`.
fn fd_table(pid: u32) -> HashMap<i64, String> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_from_fdinfo() {
        let info = "pos:\t0\nflags:\t02000002\nSqMask:\t0x1f\nSqHead:\t16\nCqMask:\t0x3f\n";
        assert_eq!(sq_entries_of(info), Some(32));
        assert_eq!(sq_entries_of("SqMask:\t0xff\n"), Some(256));
        assert_eq!(sq_entries_of("pos:\t0\n"), None);
    }

    #[test]
    fn this_process_has_threads() {
        let me = tasks(std::process::id());
        assert!(me.iter().any(|t| t.tid == std::process::id()));
    }
}
