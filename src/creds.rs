//! Running a request with the caller's credentials.
//!
//! Creating operations must leave files owned as natively (fsuid/fsgid, setgid directories)
//! and the backing fs must check permissions as the caller, so each such request switches
//! the handler thread's fsuid, fsgid and supplementary groups. The FUSE request carries no
//! supplementary groups: they are read from `/proc/TID/status` of the calling thread (via a
//! `/proc` fd pinned at start), best-effort: when the caller is gone, it gets none.
//!
//! `setfsuid` drops only the filesystem capabilities; a non-root caller's request also runs
//! with an empty effective capability set (per-thread `capset`), or root's CAP_SYS_RESOURCE
//! would let any user write into ext4's reserved blocks and past quotas.

use std::ffi::CString;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::sys;

/// Who a request runs as: what the backing fs consults for permission checks, the ownership
/// of new files, setuid/setgid clearing and the reserved blocks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// fsuid.
    pub uid: u32,
    /// fsgid.
    pub gid: u32,
    /// Supplementary groups (empty when they could not be read).
    pub groups: Vec<u32>,
    /// Effective capabilities (`CapEff`).
    pub caps: u64,
}

/// Switches threads to callers' credentials; one per daemon.
#[derive(Debug)]
pub struct CredSwitcher {
    /// `/proc`, opened at start; the groups and capabilities of a caller are read relative
    /// to it.
    proc_root: OwnedFd,
    /// False when the daemon is not root (it cannot switch; the backing fs sees the mounter).
    enabled: bool,
    /// The daemon's own groups, restored after each request.
    daemon_groups: Vec<u32>,
    /// The daemon's own capabilities, restored after each request that lowered them.
    daemon_caps: sys::ThreadCaps,
    /// `/proc/TID/status` of recent callers, kept open: a status file is bound to its task,
    /// so a read from offset 0 gives the task's present credentials, and an error once the
    /// task is gone (a new task with the same number gets a fresh open). Saves an open and
    /// a close per request.
    status_files: Mutex<LruCache<u32, Arc<OwnedFd>>>,
}

/// How many callers' status files stay open (they count against the daemon's fd limit).
pub const STATUS_FILES: usize = 32;

/// `CAP_SYS_ADMIN`: registering a passthrough backing file needs it (and nothing else does).
pub const CAP_SYS_ADMIN: u64 = 1 << 21;
/// `CAP_FSETID`: keeps setuid/setgid on a write, truncate or chown.
pub const CAP_FSETID: u64 = 1 << 4;

/// Restores the daemon's credentials on this thread when dropped: exactly what was changed.
#[derive(Debug)]
#[must_use = "the credentials are restored when the guard drops"]
pub struct CredGuard<'a> {
    switcher: &'a CredSwitcher,
    groups: bool,
    fsgid: bool,
    fsuid: bool,
    caps: bool,
}

impl CredSwitcher {
    /// A switcher reading callers relative to `proc_root`; enabled only when running as root.
    ///
    /// # Errors
    /// The errno of `getgroups(2)` or `capget(2)`.
    pub fn new(proc_root: OwnedFd) -> io::Result<CredSwitcher> {
        Ok(CredSwitcher {
            proc_root,
            enabled: sys::geteuid() == 0,
            daemon_groups: sys::getgroups()?,
            daemon_caps: sys::thread_caps()?,
            status_files: Mutex::new(LruCache::new(
                NonZeroUsize::new(STATUS_FILES).unwrap_or(NonZeroUsize::MIN),
            )),
        })
    }

    /// The daemon's own effective capabilities: the most any caller runs with.
    pub fn daemon_caps(&self) -> u64 {
        self.daemon_caps.effective
    }

    /// The caller (`uid`, `gid`) of a request from thread `pid`, with the supplementary
    /// groups and effective capabilities read from `/proc/PID/status` (the request carries
    /// neither). Best-effort: when the thread is gone, or the request has none (`pid` 0, the
    /// kernel's own), the caller has no groups, and capabilities only if it is root.
    pub fn caller(&self, uid: u32, gid: u32, pid: u32) -> Caller {
        let status = if self.enabled && pid != 0 {
            self.read_status(pid)
        } else {
            None
        };
        let full = if uid == 0 {
            self.daemon_caps.effective
        } else {
            0
        };
        match status {
            Some(status) => Caller {
                uid,
                gid,
                groups: parse_groups(&status),
                caps: parse_cap_eff(&status).unwrap_or(full),
            },
            None => Caller {
                uid,
                gid,
                groups: Vec::new(),
                caps: full,
            },
        }
    }

    /// Switches the calling thread to `caller` until the guard drops: fsuid, fsgid,
    /// supplementary groups and effective capabilities (never more than the daemon's).
    ///
    /// # Errors
    /// The errno of `setgroups(2)`, `setfsuid(2)`, `setfsgid(2)` or `capset(2)`; what was
    /// switched before the error is restored.
    pub fn enter(&self, caller: &Caller) -> io::Result<CredGuard<'_>> {
        self.switch(caller.uid, caller.gid, &caller.groups, caller.caps)
    }

    /// Switches to these ids, groups and capabilities: for I/O on an fd the caller already
    /// opened, where no permission check is made but the ids, groups and capabilities matter
    /// (ownership of blocks, the kernel's setuid rules, ext4's reserved blocks).
    ///
    /// # Errors
    /// As `enter`.
    pub fn enter_io(
        &self,
        uid: u32,
        gid: u32,
        groups: &[u32],
        caps: u64,
    ) -> io::Result<CredGuard<'_>> {
        self.switch(uid, gid, groups, caps)
    }

    fn switch(&self, uid: u32, gid: u32, groups: &[u32], caps: u64) -> io::Result<CredGuard<'_>> {
        let mut guard = CredGuard {
            switcher: self,
            groups: false,
            fsgid: false,
            fsuid: false,
            caps: false,
        };
        if !self.enabled {
            return Ok(guard);
        }
        let caps = caps & self.daemon_caps.effective;
        let all_caps = caps == self.daemon_caps.effective;
        // Also for root: DAC override makes groups moot for permission checks, but not for
        // ext4's reserved blocks (its resgid) or quotas.
        if groups != self.daemon_groups {
            sys::setgroups_thread(groups)?;
            guard.groups = true;
        }
        if gid != 0 {
            guard.fsgid = true;
            sys::setfsgid(gid)?;
        }
        if uid != 0 {
            // This drops the fs capabilities from the effective set; capset sets it below.
            guard.fsuid = true;
            sys::setfsuid(uid)?;
        }
        if !all_caps || guard.fsuid {
            guard.caps = true;
            sys::set_thread_caps(&sys::ThreadCaps {
                effective: caps,
                ..self.daemon_caps
            })?;
        }
        Ok(guard)
    }

    /// Whether thread `tid` has a signal pending that it does not block, or is gone: a
    /// request it waits on should end with EINTR. (fuser answers the kernel's INTERRUPT
    /// with ENOSYS, so the kernel stops sending them; a fatal signal, such as an unhandled
    /// SIGINT, shows as a pending SIGKILL.)
    pub fn interrupted(&self, tid: u32) -> bool {
        let Some(status) = self.read_status(tid) else {
            return true;
        };
        let field = |name: &str| status_hex(&status, name).unwrap_or(0);
        let pending = field("SigPnd:") | field("ShdPnd:");
        let sigkill = 1 << (libc::SIGKILL - 1);
        pending & (!field("SigBlk:") | sigkill) != 0
    }

    /// The `/proc/PID/status` text of thread `pid`, if it is still there.
    fn read_status(&self, pid: u32) -> Option<Vec<u8>> {
        let cached = self.status_files.lock().get(&pid).cloned();
        if let Some(fd) = cached {
            if let Some(text) = read_whole(fd.as_fd()) {
                return Some(text);
            }
            // That task is gone: `pid` may be another one's now.
            self.status_files.lock().pop(&pid);
        }
        let path = CString::new(format!("{pid}/status")).ok()?;
        let fd = Arc::new(sys::openat(self.proc_root.as_fd(), &path, libc::O_RDONLY, 0).ok()?);
        let text = read_whole(fd.as_fd())?;
        self.status_files.lock().put(pid, fd);
        Some(text)
    }
}

impl Drop for CredGuard<'_> {
    fn drop(&mut self) {
        let daemon = self.switcher;
        // Capabilities first: setgroups needs CAP_SETGID back.
        if self.caps
            && let Err(err) = sys::set_thread_caps(&daemon.daemon_caps)
        {
            log::error!("cannot restore the daemon's capabilities: {err}");
        }
        if self.fsuid
            && let Err(err) = sys::setfsuid(0)
        {
            log::error!("cannot restore fsuid 0: {err}");
        }
        if self.fsgid
            && let Err(err) = sys::setfsgid(0)
        {
            log::error!("cannot restore fsgid 0: {err}");
        }
        if self.groups
            && let Err(err) = sys::setgroups_thread(&daemon.daemon_groups)
        {
            log::error!("cannot restore the daemon's groups: {err}");
        }
    }
}

/// A procfs file's text, read from offset 0 (procfs makes it anew at each such read); `None`
/// when the read fails or is empty (the task is gone).
fn read_whole(fd: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    loop {
        let len = sys::pread(fd, &mut buf, 0).ok()?;
        // procfs hands out all of the file that fits at once: a short read is all of it.
        if len < buf.len() {
            buf.truncate(len);
            return (len > 0).then_some(buf);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// A hexadecimal line (`CapEff:`, `SigPnd:`...) of a `/proc/PID/status` file.
fn status_hex(status: &[u8], name: &str) -> Option<u64> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix(name))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// The `CapEff:` line of a `/proc/PID/status` file (hexadecimal).
fn parse_cap_eff(status: &[u8]) -> Option<u64> {
    status_hex(status, "CapEff:")
}

/// The `Groups:` line of a `/proc/PID/status` file.
fn parse_groups(status: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(status)
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|list| {
            list.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-root caller's request runs without the daemon's capabilities, which come back
    /// after it. (Needs root: without it the switcher is disabled and there is nothing to see.)
    #[test]
    fn a_caller_runs_without_the_daemons_capabilities() {
        if sys::geteuid() != 0 {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run this test as root"
            );
            eprintln!("SKIP: needs root");
            return;
        }
        std::thread::spawn(|| {
            let proc_root = sys::open_dir_path(c"/proc", libc::O_PATH).expect("open /proc");
            let switcher = CredSwitcher::new(proc_root).expect("switcher");
            let before = sys::thread_caps().unwrap();
            let user = switcher.caller(1000, 1000, 0);
            assert_eq!(user.caps, 0);
            {
                let _guard = switcher.enter(&user).expect("enter");
                assert_eq!(sys::thread_caps().unwrap().effective, 0);
            }
            assert_eq!(sys::thread_caps().unwrap(), before);
            {
                let _guard = switcher
                    .enter_io(1000, 1000, &[], CAP_SYS_ADMIN)
                    .expect("enter");
                let effective = sys::thread_caps().unwrap().effective;
                assert_eq!(effective, before.effective & CAP_SYS_ADMIN);
            }
            assert_eq!(sys::thread_caps().unwrap(), before);
            // A root caller keeps only the capabilities it has itself.
            {
                let _guard = switcher
                    .enter_io(
                        0,
                        0,
                        &switcher.daemon_groups,
                        before.effective & !CAP_FSETID,
                    )
                    .unwrap();
                let effective = sys::thread_caps().unwrap().effective;
                assert_eq!(effective, before.effective & !CAP_FSETID);
            }
            assert_eq!(sys::thread_caps().unwrap(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn cap_eff_line_is_parsed() {
        let status = b"Name:\tcat\nCapPrm:\t000001ffffffffff\nCapEff:\t0000000000000010\n";
        assert_eq!(parse_cap_eff(status), Some(CAP_FSETID));
        assert_eq!(parse_cap_eff(b"CapEff:\tzz\n"), None);
        assert_eq!(parse_cap_eff(b"Name:\tx\n"), None);
    }

    /// Reading a live thread's status gives its groups and capabilities.
    #[test]
    fn a_live_caller_is_read_from_proc() {
        let proc_root = sys::open_dir_path(c"/proc", libc::O_PATH).expect("open /proc");
        let switcher = CredSwitcher::new(proc_root).expect("switcher");
        let caller = switcher.caller(0, 0, std::process::id());
        if switcher.enabled {
            assert_eq!(caller.caps, sys::thread_caps().unwrap().effective);
        }
        assert_eq!(caller.groups, sys::getgroups().unwrap());
    }

    #[test]
    fn a_gone_caller_is_interrupted_a_quiet_one_is_not() {
        let proc_root = sys::open_dir_path(c"/proc", libc::O_PATH).expect("open /proc");
        let switcher = CredSwitcher::new(proc_root).expect("switcher");
        assert!(!switcher.interrupted(std::process::id()));
        assert!(switcher.interrupted(u32::MAX));
        let status = b"SigPnd:\t0000000000000000\nShdPnd:\t0000000000000002\nSigBlk:\t0\n";
        assert_eq!(status_hex(status, "ShdPnd:"), Some(2));
    }

    #[test]
    fn groups_line_is_parsed() {
        let status = b"Name:\tcat\nUid:\t0\t0\t0\t0\nGroups:\t4 24 1000 \nNgid:\t0\n";
        assert_eq!(parse_groups(status), vec![4, 24, 1000]);
        assert_eq!(parse_groups(b"Groups:\t\n"), Vec::<u32>::new());
        assert_eq!(parse_groups(b"Name:\tx\n"), Vec::<u32>::new());
    }
}
