//! Open files whose name changes: unlinked, renamed over, or a running executable opened
//! with O_TRUNC.

use super::*;

#[test]
fn unlink_while_open_stays_readable() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "unlink while open", |r| {
        fs::write(r.join("f"), b"still here")?;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(r.join("f"))?;
        fs::remove_file(r.join("f"))?;
        let gone = fs::metadata(r.join("f"))
            .map_err(|e| e.raw_os_error())
            .err();
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        f.write_all(b" and writable")?;
        let mut all = String::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_string(&mut all)?;
        let md = f.metadata()?;
        // A new file with the same name is a different file.
        fs::write(r.join("f"), b"new")?;
        let new = read_all(&r.join("f"))?;
        f.seek(SeekFrom::Start(0))?;
        let mut again = String::new();
        f.read_to_string(&mut again)?;
        Ok((gone, s, all, md.nlink(), md.len(), new, again))
    });
    assert_eq!(fs::read(g.b("f")).unwrap(), b"new");
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn rename_over_an_open_file() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "rename over open", |r| {
        fs::write(r.join("a"), b"new contents")?;
        fs::write(r.join("b"), b"old contents")?;
        let mut old = File::open(r.join("b"))?;
        fs::rename(r.join("a"), r.join("b"))?;
        let mut s = String::new();
        old.read_to_string(&mut s)?;
        let nlink_old = old.metadata()?.nlink();
        Ok((s, nlink_old, read_all(&r.join("b"))?))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

/// open(O_TRUNC) of a running executable fails with ETXTBSY and leaves it whole. With
/// FUSE_ATOMIC_O_TRUNC the daemon would truncate inside the open, before the VFS's
/// deny-write check, and the running program would lose its text.
#[test]
fn truncating_open_of_a_running_executable_is_etxtbsy() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let sleep = fs::read("/bin/sleep").expect("read /bin/sleep");
    for root in [g.n(""), g.m("")] {
        let exe = root.join("sleeper");
        fs::write(&exe, &sleep).unwrap();
        fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&exe).arg("10").spawn().unwrap();
        // Let the exec reach the point where the text is mapped.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let err = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_TRUNC)
            .open(&exe)
            .expect_err("open(O_TRUNC) of a running executable");
        assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{}", exe.display());
        assert_eq!(fs::metadata(&exe).unwrap().len(), sleep.len() as u64);
        assert!(child.try_wait().unwrap().is_none(), "the program died");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
