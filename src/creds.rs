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
use std::os::fd::{AsFd, OwnedFd};

use crate::sys;

/// Switches threads to callers' credentials; one per daemon.
#[derive(Debug)]
pub struct CredSwitcher {
    /// `/proc`, opened at start; the groups of a caller are read relative to it.
    proc_root: OwnedFd,
    /// False when the daemon is not root (it cannot switch; the backing fs sees the mounter).
    enabled: bool,
    /// The daemon's own groups, restored after each request.
    daemon_groups: Vec<u32>,
    /// The daemon's own capabilities, restored after each non-root request.
    daemon_caps: sys::ThreadCaps,
}

/// `CAP_SYS_ADMIN`: registering a passthrough backing file needs it (and nothing else does).
pub const CAP_SYS_ADMIN: u64 = 1 << 21;

/// Restores the daemon's credentials on this thread when dropped.
#[derive(Debug)]
#[must_use = "the credentials are restored when the guard drops"]
pub struct CredGuard<'a> {
    switcher: &'a CredSwitcher,
    /// What was switched: nothing, only the fsgid (a root caller), or everything.
    switched: Switched,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switched {
    Nothing,
    Gid,
    Ids,
    All,
}

impl CredSwitcher {
    /// A switcher reading groups relative to `proc_root`; enabled only when running as root.
    ///
    /// # Errors
    /// The errno of `getgroups(2)`.
    pub fn new(proc_root: OwnedFd) -> io::Result<CredSwitcher> {
        Ok(CredSwitcher {
            proc_root,
            enabled: sys::geteuid() == 0,
            daemon_groups: sys::getgroups()?,
            daemon_caps: sys::thread_caps()?,
        })
    }

    /// Switches the calling thread to (`uid`, `gid`, groups of `pid`) until the guard drops.
    ///
    /// # Errors
    /// The errno of `setgroups(2)`.
    pub fn enter(&self, uid: u32, gid: u32, pid: u32) -> io::Result<CredGuard<'_>> {
        let switched = if !self.enabled || (uid == 0 && gid == 0) {
            Switched::Nothing
        } else if uid == 0 {
            sys::setfsgid(gid);
            Switched::Gid
        } else {
            let groups = self.caller_groups(pid);
            sys::setgroups_thread(&groups)?;
            sys::setfsgid(gid);
            sys::setfsuid(uid);
            self.drop_caps(0);
            Switched::All
        };
        Ok(CredGuard {
            switcher: self,
            switched,
        })
    }

    /// Like `enter`, but keeps the daemon's groups: for I/O on an fd the caller already
    /// opened, where only the ids matter (ownership of blocks, the kernel's suid rules). Of the
    /// daemon's capabilities a non-root caller keeps only those in `keep`.
    pub fn enter_ids(&self, uid: u32, gid: u32, keep: u64) -> CredGuard<'_> {
        let switched = if !self.enabled || (uid == 0 && gid == 0) {
            Switched::Nothing
        } else {
            sys::setfsgid(gid);
            if uid == 0 {
                Switched::Gid
            } else {
                sys::setfsuid(uid);
                self.drop_caps(keep);
                Switched::Ids
            }
        };
        CredGuard {
            switcher: self,
            switched,
        }
    }

    /// Lowers this thread's effective capabilities to `keep`.
    fn drop_caps(&self, keep: u64) {
        let lowered = sys::ThreadCaps {
            effective: self.daemon_caps.effective & keep,
            ..self.daemon_caps
        };
        if let Err(err) = sys::set_thread_caps(&lowered) {
            log::error!("cannot drop capabilities for a caller: {err}");
        }
    }

    fn restore_caps(&self) {
        if let Err(err) = sys::set_thread_caps(&self.daemon_caps) {
            log::error!("cannot restore the daemon's capabilities: {err}");
        }
    }

    fn caller_groups(&self, pid: u32) -> Vec<u32> {
        if pid == 0 {
            return Vec::new();
        }
        let Ok(path) = CString::new(format!("{pid}/status")) else {
            return Vec::new();
        };
        let Ok(fd) = sys::openat(self.proc_root.as_fd(), &path, libc::O_RDONLY, 0) else {
            return Vec::new();
        };
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        while len < buf.len() {
            match sys::read(fd.as_fd(), &mut buf[len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
            if len == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        parse_groups(&buf[..len])
    }
}

impl Drop for CredGuard<'_> {
    fn drop(&mut self) {
        match self.switched {
            Switched::Nothing => {}
            Switched::Gid => sys::setfsgid(0),
            Switched::Ids => {
                self.switcher.restore_caps();
                sys::setfsuid(0);
                sys::setfsgid(0);
            }
            Switched::All => {
                // Capabilities first: setgroups needs CAP_SETGID back.
                self.switcher.restore_caps();
                sys::setfsuid(0);
                sys::setfsgid(0);
                if let Err(err) = sys::setgroups_thread(&self.switcher.daemon_groups) {
                    log::error!("cannot restore the daemon's groups: {err}");
                }
            }
        }
    }
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
            {
                let _guard = switcher.enter(1000, 1000, 0).expect("enter");
                assert_eq!(sys::thread_caps().unwrap().effective, 0);
            }
            assert_eq!(sys::thread_caps().unwrap(), before);
            {
                let _guard = switcher.enter_ids(1000, 1000, CAP_SYS_ADMIN);
                let effective = sys::thread_caps().unwrap().effective;
                assert_eq!(effective, before.effective & CAP_SYS_ADMIN);
            }
            assert_eq!(sys::thread_caps().unwrap(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn groups_line_is_parsed() {
        let status = b"Name:\tcat\nUid:\t0\t0\t0\t0\nGroups:\t4 24 1000 \nNgid:\t0\n";
        assert_eq!(parse_groups(status), vec![4, 24, 1000]);
        assert_eq!(parse_groups(b"Groups:\t\n"), Vec::<u32>::new());
        assert_eq!(parse_groups(b"Name:\tx\n"), Vec::<u32>::new());
    }
}
