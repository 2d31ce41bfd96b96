//! The calls the tests compare: shell scripts as the unprivileged user, and raw xattr, chmod
//! and chown calls on paths.

use super::*;

/// `sh -c script` as uid/gid 1000 without groups or capabilities, in `root`, with `R=root`.
pub(super) fn as_user(script: &str, root: &Path) -> Output {
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
pub(super) fn run(program: &str, args: &[&str], root: &Path) -> io::Result<(Option<i32>, String)> {
    let out = Command::new(program)
        .args(args)
        .current_dir(root)
        .env("LC_ALL", "C")
        .output()?;
    let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    Ok((out.status.code(), text))
}

/// The value or the errno.
pub(super) fn outcome<T>(r: io::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.raw_os_error().unwrap_or(-1))
}

pub(super) fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(super) fn lsetxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
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
pub(super) fn lgetxattr(path: &Path, name: &str, size: usize) -> io::Result<Vec<u8>> {
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
pub(super) fn getxattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
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
pub(super) fn llistxattr(path: &Path) -> io::Result<Vec<String>> {
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

pub(super) fn lremovexattr(path: &Path, name: &str) -> io::Result<()> {
    let (p, n) = (cpath(path), CString::new(name).expect("name"));
    // SAFETY: valid strings.
    check(unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) })
}

/// `fchmodat2(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW)`: lchmod (the test is not filtered).
pub(super) fn lchmod(path: &Path, mode: u32) -> io::Result<()> {
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

pub(super) fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let p = cpath(path);
    // SAFETY: valid string.
    check(unsafe { libc::lchown(p.as_ptr(), uid, gid) })
}

/// Mode, uid and gid of `path` (not following a symlink).
pub(super) fn owner_and_mode(path: &Path) -> io::Result<(u32, u32, u32)> {
    let md = fs::symlink_metadata(path)?;
    Ok((md.mode(), md.uid(), md.gid()))
}

/// A file `f` (0644), a directory `d` (0755), a symlink `l -> f` and a fifo `p`.
pub(super) fn tree(root: &Path) {
    fs::write(root.join("f"), b"data").expect("f");
    fs::set_permissions(root.join("f"), fs::Permissions::from_mode(0o644)).expect("chmod f");
    fs::create_dir(root.join("d")).expect("d");
    fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o755)).expect("chmod d");
    std::os::unix::fs::symlink("f", root.join("l")).expect("l");
    let p = cpath(&root.join("p"));
    // SAFETY: valid string.
    check(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }).expect("p");
}
