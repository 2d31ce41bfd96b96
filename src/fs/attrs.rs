//! Attributes: getattr, setattr (chmod, chown, truncate, utimes), statfs, access.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::UNIX_EPOCH;

use fuser::{FileAttr, FileHandle, TimeOrNow};

use crate::attr::{self, STATX_MASK};
use crate::error::{einval, os};
use crate::inode::Pinned;
use crate::sys::{self, EMPTY};

use super::{Ctx, STATX_EMPTY, UringFs};

impl UringFs {
    pub(crate) fn do_getattr(&self, ino: u64) -> io::Result<FileAttr> {
        let inode = self.inode(ino)?;
        let stx = sys::statx(inode.fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(attr::to_file_attr(inode.stat_ino(), &stx))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_setattr(
        &self,
        req: &Ctx,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> io::Result<FileAttr> {
        let inode = self.inode(ino)?;
        let mut caller = self.as_caller(req)?;
        if let Some(mode) = mode {
            let perm = mode & 0o7777;
            match self.chmod(&inode, perm) {
                Err(err)
                    if err.raw_os_error() == Some(libc::EPERM)
                        && !self.killpriv_v2.load(Relaxed) =>
                {
                    // A kernel without KILLPRIV_V2 sends its kill-suid on write/truncate/chown
                    // by a caller that may not chmod as a chmod: natively no permission check
                    // applies to it, so none does here (as the daemon).
                    drop(caller);
                    let current = sys::statx(inode.fd(), EMPTY, STATX_EMPTY, libc::STATX_MODE)?;
                    if !only_drops_set_id_bits(u32::from(current.stx_mode) & 0o7777, perm) {
                        return Err(err);
                    }
                    self.chmod(&inode, perm)?;
                    caller = self.as_caller(req)?;
                }
                other => other?,
            }
        }
        let _caller = caller;
        if uid.is_some() || gid.is_some() {
            sys::fchown_empty(inode.fd(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX))?;
        }
        if let Some(size) = size {
            match fh {
                Some(fh) => sys::ftruncate(self.file(ino, fh)?.fd.as_fd(), size)?,
                None => {
                    match inode.file_type {
                        libc::S_IFREG => {}
                        libc::S_IFDIR => return Err(os(libc::EISDIR)),
                        _ => return Err(einval()),
                    }
                    let fd = self.reopen(&inode, libc::O_WRONLY | libc::O_NONBLOCK)?;
                    sys::ftruncate(fd.as_fd(), size)?;
                }
            }
        }
        if atime.is_some() || mtime.is_some() {
            sys::utimens_empty(inode.fd(), &[timespec(atime), timespec(mtime)])?;
        }
        let stx = sys::statx(inode.fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
        Ok(attr::to_file_attr(inode.stat_ino(), &stx))
    }

    /// chmod of `inode`: `fchmodat2`, or on a kernel without it (before 6.6) `fchmodat`
    /// through the fd's magic link, which refuses a symlink as `fchmodat2` does.
    fn chmod(&self, inode: &Pinned, perm: u32) -> io::Result<()> {
        if self.kernel.fchmodat2 {
            sys::fchmod_empty(inode.fd(), perm)
        } else {
            sys::fchmodat_proc(self.proc_fd.as_fd(), inode.fd(), perm)
        }
    }

    pub(crate) fn do_statfs(&self, ino: u64) -> io::Result<libc::statvfs> {
        let inode = self.inode(ino)?;
        self.settle_releases();
        sys::fstatvfs(inode.fd())
    }

    pub(crate) fn do_access(&self, req: &Ctx, ino: u64, mask: i32) -> io::Result<()> {
        let inode = self.inode(ino)?;
        let _caller = self.as_caller(req)?;
        sys::faccessat2(
            self.proc_fd.as_fd(),
            &sys::fd_name(inode.fd()),
            mask,
            libc::AT_EACCESS,
        )
    }
}

/// Whether `new` is `old` minus some of its setuid/setgid bits and nothing else: the shape of
/// the kernel's kill-suid setattr.
fn only_drops_set_id_bits(old: u32, new: u32) -> bool {
    let set_id = libc::S_ISUID | libc::S_ISGID;
    let dropped = old & !new;
    new != old && new & !old == 0 && dropped & !set_id == 0
}

fn timespec(time: Option<TimeOrNow>) -> libc::timespec {
    match time {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(time)) => match time.duration_since(UNIX_EPOCH) {
            Ok(d) => libc::timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(d.subsec_nanos()),
            },
            Err(before) => {
                let d = before.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => libc::timespec {
                        tv_sec: secs,
                        tv_nsec: 0,
                    },
                    n => libc::timespec {
                        tv_sec: secs - 1,
                        tv_nsec: i64::from(1_000_000_000 - n),
                    },
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kill_suid_shape() {
        assert!(only_drops_set_id_bits(0o4755, 0o755));
        assert!(only_drops_set_id_bits(0o6775, 0o775));
        assert!(only_drops_set_id_bits(0o6775, 0o4775));
        assert!(!only_drops_set_id_bits(0o755, 0o755));
        assert!(!only_drops_set_id_bits(0o4755, 0o700));
        assert!(!only_drops_set_id_bits(0o755, 0o4755));
    }

    #[test]
    fn times_before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(1500);
        let ts = timespec(Some(TimeOrNow::SpecificTime(t)));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (-2, 500_000_000));
        assert_eq!(timespec(None).tv_nsec, libc::UTIME_OMIT);
        assert_eq!(timespec(Some(TimeOrNow::Now)).tv_nsec, libc::UTIME_NOW);
    }
}
