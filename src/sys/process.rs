//! The process: forking and detaching, signals, limits, the kernel release.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::check;

/// The running kernel's release (`uname -r`), for the start-up log line.
pub fn kernel_release() -> String {
    let mut uts = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uts` is a writable utsname buffer.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "?".to_string();
    }
    // SAFETY: uname filled it on success.
    let uts = unsafe { uts.assume_init() };
    // SAFETY: `release` is NUL-terminated by the kernel within its length.
    let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

/// The current `RLIMIT_NOFILE` soft limit.
///
/// # Errors
/// The errno of `getrlimit(2)`.
pub fn nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    Ok(lim.rlim_cur)
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
///
/// # Errors
/// The errno of `pipe2(2)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two fds.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What `fork` returned.
#[derive(Debug)]
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `fork(2)`.
///
/// # Safety
/// The process must have one thread: the child of a threaded process inherits locks (the
/// allocator's among them) that threads it does not have hold, and may deadlock on them.
///
/// # Errors
/// The errno of `fork(2)`.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller promises a single-threaded process (see # Safety).
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// `setsid(2)`: the daemon leaves the terminal's session.
///
/// # Errors
/// The errno of `setsid(2)`.
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() })?;
    Ok(())
}

/// `dup2(2)`: points stdin/stdout/stderr of the daemon at `/dev/null` or a log.
///
/// # Errors
/// The errno of `dup2(2)`.
pub fn dup2(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: plain integer arguments; replacing a standard fd is what the caller wants.
    check(unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
    Ok(())
}

/// `waitpid(pid, 0)`: the child's exit code, or 128+signal.
///
/// # Errors
/// The errno of `waitpid(2)`.
pub fn waitpid(pid: i32) -> io::Result<i32> {
    let mut status = 0;
    // SAFETY: `status` is a valid int.
    check(unsafe { libc::waitpid(pid, &mut status, 0) })?;
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// Blocks `signals` in the calling thread (and in the threads it starts later).
///
/// # Errors
/// The errno of `pthread_sigmask(3)`.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is an initialised sigset.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Waits for one of `signals` (which must be blocked) and returns it.
///
/// # Errors
/// The errno of `sigwait(3)`.
pub fn sigwait(signals: &[i32]) -> io::Result<i32> {
    let set = sigset(signals)?;
    let mut sig = 0;
    // SAFETY: `set` is initialised; `sig` is writable.
    let ret = unsafe { libc::sigwait(&set, &mut sig) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(sig)
}

fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is writable; sigemptyset initialises it.
    check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    for &sig in signals {
        // SAFETY: `set` was initialised by sigemptyset.
        check(unsafe { libc::sigaddset(set.as_mut_ptr(), sig) })?;
    }
    // SAFETY: initialised above.
    Ok(unsafe { set.assume_init() })
}

/// The number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Restricts the calling thread to CPU `cpu` (`sched_setaffinity(0, ...)`).
///
/// # Errors
/// `EINVAL` when `cpu` is outside the set the process may use (offline, or excluded by a
/// cgroup or an affinity mask it started with).
pub fn pin_thread_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain old data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: a valid set of the size given, for the calling thread (0).
    check(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) })
        .map(drop)
}

/// Raises `RLIMIT_NOFILE` as far as it goes: to `ceiling` (the kernel's `fs.nr_open`) when
/// the process may raise its hard limit (root: CAP_SYS_RESOURCE), else to the hard limit.
/// Every inode the kernel holds pins an fd, so this is how many inodes the mount can serve.
///
/// # Errors
/// The errno of `getrlimit`/`setrlimit`.
pub fn raise_nofile_limit(ceiling: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if ceiling > lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: ceiling,
            rlim_max: ceiling,
        };
        // SAFETY: `raised` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(ceiling);
        }
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    Ok(lim.rlim_cur)
}
