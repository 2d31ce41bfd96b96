//! The only module (with `ring/`) that talks to libc: one small safe wrapper per syscall.
//!
//! Every wrapper takes borrowed fds and `&CStr` names and returns `io::Result`; errno is read
//! right after the call. Nothing here resolves a path from `AT_FDCWD` except the start-up
//! helpers whose names say so (`open_dir_path`), which run before the mount is live.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

mod creds;
mod fileio;
mod fuse;
mod locks;
mod names;
mod process;
mod xattr;

pub use creds::*;
pub use fileio::*;
pub use fuse::*;
pub use locks::*;
pub use names::*;
pub use process::*;
pub use xattr::*;

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

pub(super) fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(super) fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(super) fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

pub(super) fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The empty path used with `AT_EMPTY_PATH`.
pub const EMPTY: &CStr = c"";

/// Turns an `OsStr` into a `CString`; a NUL inside is `EINVAL`, as the kernel would say.
///
/// # Errors
/// `EINVAL` when `name` contains a NUL byte.
pub fn cstring(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The decimal name of an fd inside `/proc/self/fd`.
pub fn fd_name(fd: BorrowedFd<'_>) -> CString {
    // A decimal number never contains NUL.
    CString::new(fd.as_raw_fd().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn statx_of_root_dir_is_a_directory() {
        let fd = open_dir_path(c"/", libc::O_PATH).expect("open /");
        let stx = statx(
            fd.as_fd(),
            EMPTY,
            libc::AT_EMPTY_PATH,
            libc::STATX_BASIC_STATS,
        )
        .expect("statx");
        assert_eq!(u32::from(stx.stx_mode) & libc::S_IFMT, libc::S_IFDIR);
    }

    #[test]
    fn caps_round_trip_on_this_thread() {
        let caps = thread_caps().expect("capget");
        std::thread::spawn(move || {
            let lowered = ThreadCaps {
                effective: 0,
                ..caps
            };
            set_thread_caps(&lowered).expect("lower");
            assert_eq!(thread_caps().unwrap().effective, 0);
            set_thread_caps(&caps).expect("restore");
            assert_eq!(thread_caps().unwrap(), caps);
        })
        .join()
        .unwrap();
        assert_eq!(thread_caps().unwrap(), caps, "other threads keep theirs");
    }

    #[test]
    fn cstring_rejects_nul() {
        let err = cstring(OsStr::from_bytes(b"a\0b")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    /// A scratch directory under the temp dir with a file `f`, a symlink `l -> f` and a
    /// directory `d`, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("uringfs-sys-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("d")).expect("mkdir");
            std::fs::write(dir.join("f"), b"x").expect("write f");
            std::os::unix::fs::symlink("f", dir.join("l")).expect("symlink");
            Scratch(dir)
        }

        /// An `O_PATH|O_NOFOLLOW` fd of `name`, as the daemon pins inodes.
        fn pin(&self, name: &str) -> OwnedFd {
            let path = CString::new(self.0.join(name).as_os_str().as_bytes()).expect("path");
            // SAFETY: test-only; `path` is NUL-terminated.
            owned(unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            })
            .expect("open O_PATH")
        }

        fn mode(&self, name: &str) -> u32 {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(self.0.join(name))
                .expect("lstat")
                .mode()
                & 0o7777
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn new_syscalls_answer_einval_or_enosys() {
        for call in [
            NewSyscall::Fchmodat2,
            NewSyscall::Setxattrat,
            NewSyscall::Getxattrat,
            NewSyscall::Listxattrat,
            NewSyscall::Removexattrat,
        ] {
            let errno = probe_syscall(call).unwrap_err().raw_os_error();
            assert!(
                matches!(errno, Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)),
                "{}: {errno:?}",
                call.name()
            );
        }
    }

    #[test]
    fn fchmodat_proc_changes_files_and_refuses_symlinks() {
        let s = Scratch::new("chmod");
        let proc_fd = open_dir_path(c"/proc/self/fd", libc::O_PATH).expect("/proc/self/fd");
        for name in ["f", "d"] {
            fchmodat_proc(proc_fd.as_fd(), s.pin(name).as_fd(), 0o640).expect("chmod");
            assert_eq!(s.mode(name), 0o640, "{name}");
        }
        let before = s.mode("l");
        let err = fchmodat_proc(proc_fd.as_fd(), s.pin("l").as_fd(), 0o600).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP));
        assert_eq!(s.mode("l"), before, "the symlink's mode is untouched");
        assert_eq!(s.mode("f"), 0o640, "and so is its target's");
    }

    #[test]
    fn xattr_cwd_calls_act_on_the_pinned_inode_on_their_own_thread() {
        let s = Scratch::new("xattr");
        let cwd = std::env::current_dir().expect("cwd");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let proc_fd = open_dir_path(c"/proc/self/fd", libc::O_PATH).expect("proc");
                let f = s.pin("f");
                let name = fd_name(f.as_fd());
                setxattr_cwd(proc_fd.as_fd(), &name, c"user.k", b"v", 0).expect("set");
                let mut buf = [0u8; 8];
                let n = getxattr_cwd(proc_fd.as_fd(), &name, c"user.k", &mut buf).expect("get");
                assert_eq!(&buf[..n], b"v");
                assert_eq!(
                    getxattr_cwd(proc_fd.as_fd(), &name, c"user.k", &mut []).unwrap(),
                    1
                );
                let n = listxattr_cwd(proc_fd.as_fd(), &name, &mut buf).expect("list");
                assert_eq!(&buf[..n], b"user.k\0");
                removexattr_cwd(proc_fd.as_fd(), &name, c"user.k").expect("remove");
                let err = getxattr_cwd(proc_fd.as_fd(), &name, c"user.k", &mut buf).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::ENODATA));
                // A symlink's fd: the symlink's own xattrs (user.* are refused on symlinks, as
                // natively), not its target's.
                let l = s.pin("l");
                let lname = fd_name(l.as_fd());
                let err = setxattr_cwd(proc_fd.as_fd(), &lname, c"user.k", b"v", 0).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EPERM));
                if geteuid() == 0 {
                    setxattr_cwd(proc_fd.as_fd(), &lname, c"trusted.k", b"l", 0).expect("set");
                    let err =
                        getxattr_cwd(proc_fd.as_fd(), &name, c"trusted.k", &mut buf).unwrap_err();
                    assert_eq!(err.raw_os_error(), Some(libc::ENODATA), "not on the target");
                    let n =
                        getxattr_cwd(proc_fd.as_fd(), &lname, c"trusted.k", &mut buf).expect("get");
                    assert_eq!(&buf[..n], b"l", "on the symlink itself");
                }
            });
        });
        assert_eq!(
            std::env::current_dir().expect("cwd"),
            cwd,
            "other threads keep theirs"
        );
    }

    #[test]
    fn fd_name_is_decimal() {
        let fd = open_dir_path(c"/", libc::O_PATH).expect("open /");
        assert_eq!(
            fd_name(fd.as_fd()).to_str().unwrap(),
            fd.as_raw_fd().to_string()
        );
    }
}
