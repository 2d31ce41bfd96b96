//! `O_TMPFILE`: an unnamed file that `linkat` can name later, as on ext4. Over FUSE over
//! io_uring the daemon serves FUSE_TMPFILE; over `/dev/fuse` fuser cannot, and the kernel
//! answers `EOPNOTSUPP`, which programs take as "no O_TMPFILE here" (documented).

mod common;

use common::*;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Opens an unnamed file in `dir` with `O_TMPFILE`, writes `data`, then names it `name` with
/// linkat through its `/proc/self/fd` link: (its nlink before the link, the named file's
/// contents, size and mode).
fn tmpfile_then_link(dir: &Path, name: &str, data: &[u8]) -> io::Result<(u64, Vec<u8>, u32)> {
    let cdir = cpath(dir);
    // SAFETY: a NUL-terminated path and plain flags.
    let fd = unsafe { libc::open(cdir.as_ptr(), libc::O_TMPFILE | libc::O_RDWR, 0o640) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(data)?;
    let nlink = file.metadata()?.nlink();
    let proc_path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
    let target = cpath(&dir.join(name));
    // SAFETY: NUL-terminated paths; AT_SYMLINK_FOLLOW follows the magic link to the file.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(file);
    let named = dir.join(name);
    let mode = fs::symlink_metadata(&named)?.mode() & 0o7777;
    Ok((nlink, fs::read(&named)?, mode))
}

fn tmpfile(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let over_ring = g.over_io_uring();
    let data = b"made unnamed, named later";
    let native = tmpfile_then_link(&g.native, "named", data).expect("native O_TMPFILE");
    assert_eq!(native, (0, data.to_vec(), 0o640));
    let mount = tmpfile_then_link(&g.mnt, "named", data);
    if over_ring {
        assert_eq!(mount.expect("O_TMPFILE over io_uring"), native);
        assert_eq!(
            fs::read(g.b("named")).unwrap(),
            data,
            "BACKING has the named file"
        );
        // Unlinked again, and an unnamed file never linked, leave nothing behind.
        fs::remove_file(g.m("named")).unwrap();
        let cdir = cpath(&g.mnt);
        // SAFETY: a NUL-terminated path and plain flags.
        let fd = unsafe { libc::open(cdir.as_ptr(), libc::O_TMPFILE | libc::O_WRONLY, 0o600) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: the fd just opened, closed once.
        unsafe { libc::close(fd) };
        assert_eq!(dir_names(&g.backing).unwrap().len(), 0);
    } else {
        assert_eq!(
            errno_of(&mount),
            Some(libc::EOPNOTSUPP),
            "over /dev/fuse O_TMPFILE is refused (fuser has no TMPFILE): {mount:?}"
        );
    }
}

#[test]
fn o_tmpfile_then_linkat_default() {
    tmpfile(&[]);
}

#[test]
fn o_tmpfile_then_linkat_cache_none() {
    tmpfile(&["cache=none"]);
}
