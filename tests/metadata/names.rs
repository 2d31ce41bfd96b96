//! Names: lookups of missing names, mknod, mkdir/rmdir, unlink, symlinks.

use super::*;

#[test]
fn lookup_of_missing_names() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    both_err(&g, "stat missing", libc::ENOENT, |r| attr(&r.join("nope")));
    both_err(&g, "stat missing/deeper", libc::ENOENT, |r| {
        attr(&r.join("nope/deeper"))
    });
    both_err(&g, "stat dir/missing", libc::ENOENT, |r| {
        attr(&r.join("dir/missing"))
    });
    both_err(&g, "stat file/child", libc::ENOTDIR, |r| {
        attr(&r.join("file/child"))
    });
    both_err(&g, "open missing", libc::ENOENT, |r| {
        fs::File::open(r.join("nope"))
    });
    let long = "n".repeat(256);
    both_err(&g, "stat a 256-byte name", libc::ENAMETOOLONG, |r| {
        attr(&r.join(&long))
    });
    both_err(&g, "create a 256-byte name", libc::ENAMETOOLONG, |r| {
        fs::write(r.join(&long), b"")
    });
    both_ok(&g, "create a 255-byte name", |r| {
        fs::write(r.join(&long[..255]), b"ok")?;
        attr(&r.join(&long[..255]))
    });
    // A negative lookup must not stick once the name exists.
    both_ok(&g, "create after ENOENT", |r| {
        fs::write(r.join("nope"), b"now")
    });
    both_ok(&g, "stat after create", |r| attr(&r.join("nope")));
    // Names that exist in the backing dir only after mounting must show up too.
    fs::write(g.b("late"), b"late").unwrap();
    assert_eq!(fs::read(g.m("late")).unwrap(), b"late");
}

#[test]
fn mknod_fifo_socket_chardev() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "mkfifo", |r| {
        mknod(&r.join("fifo"), libc::S_IFIFO | 0o644, 0)?;
        attr(&r.join("fifo"))
    });
    both_ok(&g, "mknod socket", |r| {
        mknod(&r.join("sock"), libc::S_IFSOCK | 0o600, 0)?;
        attr(&r.join("sock"))
    });
    both_ok(&g, "mknod char dev 1:3", |r| {
        mknod(&r.join("null"), libc::S_IFCHR | 0o666, libc::makedev(1, 3))?;
        attr(&r.join("null"))
    });
    both_ok(&g, "mknod block dev 7:0", |r| {
        mknod(&r.join("blk"), libc::S_IFBLK | 0o600, libc::makedev(7, 0))?;
        attr(&r.join("blk"))
    });
    both_ok(&g, "mknod regular", |r| {
        mknod(&r.join("reg"), libc::S_IFREG | 0o640, 0)?;
        attr(&r.join("reg"))
    });
    both_err(&g, "mknod existing", libc::EEXIST, |r| {
        mknod(&r.join("fifo"), libc::S_IFIFO | 0o644, 0)
    });
    // Device nodes work unless the mount is nodev (a mount policy, not a filesystem semantic).
    fs::write(g.n("null"), b"discarded").expect("write native /dev/null copy");
    let nodev = mount_at(&g.mnt).is_some_and(|m| m.mount_opts.split(',').any(|o| o == "nodev"));
    let through = fs::write(g.m("null"), b"discarded");
    if nodev {
        assert_eq!(
            errno_of(&through),
            Some(libc::EACCES),
            "open a device on a nodev mount"
        );
    } else {
        through.expect("write to the char dev node (/dev/null) through the mount");
    }
    // The fifo works through the mount: a writer thread and a reader meet in the kernel.
    let fifo = g.m("fifo");
    let writer = std::thread::spawn(move || fs::write(fifo, b"through the pipe"));
    assert_eq!(fs::read(g.m("fifo")).unwrap(), b"through the pipe");
    writer.join().unwrap().unwrap();
    assert_eq!(
        fs::metadata(g.m("null")).unwrap().rdev(),
        fs::metadata(g.b("null")).unwrap().rdev()
    );
    assert_mirror(&g);
}

#[test]
fn mkdir_rmdir_errors() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    both_ok(&g, "mkdir 0750", |r| {
        fs::DirBuilder::new().mode(0o750).create(r.join("d"))?;
        Ok((attr(&r.join("d"))?, attr(r)?))
    });
    both_err(&g, "mkdir existing", libc::EEXIST, |r| {
        fs::create_dir(r.join("d"))
    });
    both_err(&g, "mkdir over a file", libc::EEXIST, |r| {
        fs::create_dir(r.join("file"))
    });
    both_err(&g, "mkdir under a file", libc::ENOTDIR, |r| {
        fs::create_dir(r.join("file/sub"))
    });
    both_err(&g, "mkdir missing parent", libc::ENOENT, |r| {
        fs::create_dir(r.join("nope/sub"))
    });
    both_ok(&g, "mkdir nested (parent nlink)", |r| {
        fs::create_dir(r.join("d/e"))?;
        Ok((attr(&r.join("d"))?, attr(&r.join("d/e"))?))
    });
    both_err(&g, "rmdir non-empty", libc::ENOTEMPTY, |r| {
        fs::remove_dir(r.join("d"))
    });
    both_err(&g, "rmdir a file", libc::ENOTDIR, |r| {
        fs::remove_dir(r.join("file"))
    });
    both_err(&g, "rmdir missing", libc::ENOENT, |r| {
        fs::remove_dir(r.join("nope"))
    });
    both_err(&g, "rmdir .", libc::EINVAL, |r| {
        fs::remove_dir(r.join("d/."))
    });
    both_ok(&g, "rmdir leaf", |r| {
        fs::remove_dir(r.join("d/e"))?;
        attr(&r.join("d"))
    });
    both_err(&g, "stat removed dir", libc::ENOENT, |r| {
        attr(&r.join("d/e"))
    });
    both_ok(&g, "rmdir now empty", |r| {
        fs::remove_dir(r.join("d"))?;
        attr(r)
    });
    both_ok(&g, "mkdir again after rmdir", |r| {
        fs::create_dir(r.join("d"))?;
        attr(&r.join("d"))
    });
    assert_mirror(&g);
}

#[test]
fn unlink_files_and_errors() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    both_ok(&g, "unlink file", |r| {
        fs::remove_file(r.join("dir/inner"))?;
        attr(&r.join("dir"))
    });
    both_err(&g, "stat unlinked", libc::ENOENT, |r| {
        attr(&r.join("dir/inner"))
    });
    both_err(&g, "unlink a dir", libc::EISDIR, |r| {
        fs::remove_file(r.join("dir"))
    });
    both_err(&g, "unlink missing", libc::ENOENT, |r| {
        fs::remove_file(r.join("nope"))
    });
    both_err(&g, "unlink under a file", libc::ENOTDIR, |r| {
        fs::remove_file(r.join("file/x"))
    });
    both_ok(&g, "unlink symlink, not its target", |r| {
        fs::remove_file(r.join("link"))?;
        attr(&r.join("file"))
    });
    assert_mirror(&g);
}

#[test]
fn symlinks_outside_backing_are_resolved_by_the_client() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    // A target outside the backing dir that the test owns, so a daemon that wrongly follows
    // symlinks damages nothing but scratch.
    let outside = g.root.join("outside");
    fs::write(&outside, b"outside").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
    let out = outside.clone();
    both_ok(&g, "symlink to /etc/passwd", |r| {
        symlink("/etc/passwd", r.join("passwd"))?;
        symlink(&out, r.join("out"))?;
        symlink("../../escape/up", r.join("rel-up"))?;
        symlink("dangling-target", r.join("dangling"))?;
        Ok(())
    });
    both_ok(&g, "readlink", |r| {
        Ok((
            fs::read_link(r.join("passwd"))?,
            fs::read_link(r.join("out"))?,
            fs::read_link(r.join("rel-up"))?,
            fs::read_link(r.join("dangling"))?,
        ))
    });
    let etc = fs::metadata("/etc/passwd").unwrap();
    let through = fs::metadata(g.m("passwd")).expect("stat through the symlink");
    assert_eq!(
        (through.dev(), through.ino()),
        (etc.dev(), etc.ino()),
        "stat of mnt/passwd must resolve to the client's /etc/passwd"
    );
    assert_eq!(
        fs::read(g.m("passwd")).unwrap(),
        fs::read("/etc/passwd").unwrap()
    );
    both_err(&g, "stat dangling", libc::ENOENT, |r| {
        fs::metadata(r.join("dangling"))
    });
    both_ok(&g, "lstat dangling", |r| attr(&r.join("dangling")));
    both_err(&g, "O_NOFOLLOW open of a symlink", libc::ELOOP, |r| {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(r.join("out"))
    });
    // Operations on the link itself must not reach the target.
    let before = fs::metadata(&outside).unwrap();
    both_ok(&g, "lchown the link", |r| {
        lchown(&r.join("out"), USER, GROUP)?;
        attr(&r.join("out"))
    });
    both_err(&g, "user xattr on a symlink", libc::EPERM, |r| {
        lsetxattr(&r.join("out"), "user.x", b"1", 0)
    });
    both_ok(&g, "lutimes the link", |r| {
        utimensat(
            &r.join("out"),
            [ts(1_000_000, 0), ts(1_000_000, 0)],
            libc::AT_SYMLINK_NOFOLLOW,
        )
    });
    let after = fs::metadata(&outside).unwrap();
    assert_eq!(
        (after.uid(), after.gid(), after.mtime(), after.mode()),
        (before.uid(), before.gid(), before.mtime(), before.mode()),
        "an operation on the symlink changed its target outside the backing dir"
    );
    assert!(
        llistxattr(&outside).unwrap().is_empty(),
        "xattr landed on the symlink target"
    );
    assert_eq!(fs::read(&outside).unwrap(), b"outside");
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}
