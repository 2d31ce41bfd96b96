//! Metadata operations, each run on the mount and on a native ext4 dir with the same
//! arguments; results (or errnos) and the final trees must match.

mod common;

use common::*;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn setup_basic(root: &Path) {
    fs::write(root.join("file"), b"0123456789").unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    fs::write(root.join("dir/inner"), b"inner").unwrap();
    symlink("file", root.join("link")).unwrap();
}

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
fn getattr_matches_backing_including_ino() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        setup_basic(r);
        mknod(&r.join("fifo"), libc::S_IFIFO | 0o640, 0).unwrap();
        fs::hard_link(r.join("file"), r.join("hard")).unwrap();
    });
    // Collect every mismatch first, so a wrong root number does not hide the rest.
    let mut bad = Vec::new();
    for rel in [".", "file", "dir", "dir/inner", "link", "fifo", "hard"] {
        let b = fs::symlink_metadata(g.b(rel)).unwrap();
        let m = fs::symlink_metadata(g.m(rel)).unwrap_or_else(|e| panic!("lstat {rel}: {e}"));
        if m.ino() != b.ino() {
            bad.push(format!(
                "{rel}: st_ino {} through the mount, {} in backing",
                m.ino(),
                b.ino()
            ));
        }
        if attr_of(&m) != attr_of(&b) {
            bad.push(format!(
                "{rel}: {:?} vs backing {:?}",
                attr_of(&m),
                attr_of(&b)
            ));
        }
        let (tm, tb) = (
            (m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()),
            (b.mtime(), b.mtime_nsec(), b.ctime(), b.ctime_nsec()),
        );
        if tm != tb {
            bad.push(format!("{rel}: mtime/ctime {tm:?} vs backing {tb:?}"));
        }
        if !b.is_dir() && m.blocks() != b.blocks() {
            bad.push(format!(
                "{rel}: st_blocks {} vs backing {}",
                m.blocks(),
                b.blocks()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "getattr through the mount differs:\n  {}",
        bad.join("\n  ")
    );
    // Following the symlink lands on the same inode as `file`.
    assert_eq!(
        fs::metadata(g.m("link")).unwrap().ino(),
        fs::metadata(g.b("file")).unwrap().ino()
    );
    assert_ne!(
        fs::metadata(&g.mnt).unwrap().dev(),
        fs::metadata(&g.backing).unwrap().dev(),
        "the mount point is not a separate filesystem"
    );
}

#[test]
fn chmod_chown_truncate() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    for mode in [0o600, 0o4755, 0o2711, 0o1777, 0o000, 0o644] {
        both_ok(&g, &format!("chmod {mode:o}"), |r| {
            chmod(&r.join("file"), mode)?;
            attr(&r.join("file"))
        });
    }
    both_ok(&g, "chmod dir", |r| {
        chmod(&r.join("dir"), 0o2750)?;
        attr(&r.join("dir"))
    });
    both_ok(&g, "chown file", |r| {
        chown(&r.join("file"), USER, GROUP)?;
        attr(&r.join("file"))
    });
    both_ok(&g, "chown gid only", |r| {
        chown(&r.join("file"), u32::MAX, 0)?;
        attr(&r.join("file"))
    });
    both_ok(&g, "chown via symlink follows it", |r| {
        chown(&r.join("link"), 1234, 1234)?;
        Ok((attr(&r.join("file"))?, attr(&r.join("link"))?))
    });
    both_ok(&g, "lchown symlink itself", |r| {
        lchown(&r.join("link"), 4321, 4321)?;
        Ok((attr(&r.join("file"))?, attr(&r.join("link"))?))
    });
    for len in [3, 0, 5000, 1 << 20, 7] {
        both_ok(&g, &format!("truncate {len}"), |r| {
            truncate(&r.join("file"), len)?;
            Ok((attr(&r.join("file"))?, read_all(&r.join("file"))?))
        });
    }
    both_ok(&g, "ftruncate on an open fd", |r| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(r.join("dir/inner"))?;
        f.set_len(2)?;
        Ok(f.metadata()?.len())
    });
    both_err(&g, "truncate a dir", libc::EISDIR, |r| {
        truncate(&r.join("dir"), 0)
    });
    both_err(&g, "truncate negative", libc::EINVAL, |r| {
        truncate(&r.join("file"), -1)
    });
    assert_mirror(&g);
}

fn times(path: &Path) -> io::Result<(i64, i64, i64, i64)> {
    let md = fs::symlink_metadata(path)?;
    Ok((md.atime(), md.atime_nsec(), md.mtime(), md.mtime_nsec()))
}

#[test]
fn utimensat_explicit_now_and_omit() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    both_ok(&g, "explicit times", |r| {
        utimensat(
            &r.join("file"),
            [
                ts(1_000_000_000, 123_456_789),
                ts(1_100_000_000, 987_654_321),
            ],
            0,
        )?;
        times(&r.join("file"))
    });
    both_ok(&g, "UTIME_OMIT atime, explicit mtime", |r| {
        utimensat(
            &r.join("file"),
            [ts(0, libc::UTIME_OMIT), ts(1_200_000_000, 5)],
            0,
        )?;
        times(&r.join("file"))
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (atime, mtime) = both_ok(&g, "UTIME_NOW mtime, UTIME_OMIT atime", |r| {
        utimensat(
            &r.join("file"),
            [ts(0, libc::UTIME_OMIT), ts(0, libc::UTIME_NOW)],
            0,
        )?;
        let t = times(&r.join("file"))?;
        // Native and mount get different "now"s: compare the parts that must agree.
        Ok(((t.0, t.1), (t.2 - now).abs() <= 5))
    });
    assert_eq!(atime, (1_000_000_000, 123_456_789), "atime must be kept");
    assert!(mtime, "UTIME_NOW did not set mtime to about now");
    both_ok(&g, "UTIME_NOW both", |r| {
        utimensat(
            &r.join("dir"),
            [ts(0, libc::UTIME_NOW), ts(0, libc::UTIME_NOW)],
            0,
        )?;
        let t = times(&r.join("dir"))?;
        Ok(((t.0 - now).abs() <= 5, (t.2 - now).abs() <= 5))
    });
    both_ok(&g, "AT_SYMLINK_NOFOLLOW on a symlink", |r| {
        let before = times(&r.join("file"))?;
        utimensat(
            &r.join("link"),
            [ts(1_300_000_000, 1), ts(1_300_000_000, 2)],
            libc::AT_SYMLINK_NOFOLLOW,
        )?;
        Ok((times(&r.join("link"))?, times(&r.join("file"))? == before))
    });
    both_ok(&g, "utimes through a symlink", |r| {
        utimensat(
            &r.join("link"),
            [ts(1_400_000_000, 0), ts(1_400_000_000, 0)],
            0,
        )?;
        times(&r.join("file"))
    });
    both_err(&g, "bad nsec", libc::EINVAL, |r| {
        utimensat(&r.join("file"), [ts(0, 1_000_000_000), ts(0, 0)], 0)
    });
    assert_mirror(&g);
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

#[test]
fn hard_links_share_the_inode() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    both_ok(&g, "link", |r| {
        fs::hard_link(r.join("file"), r.join("dir/alias"))?;
        Ok((attr(&r.join("file"))?, attr(&r.join("dir/alias"))?))
    });
    let a = fs::metadata(g.m("file")).unwrap();
    let b = fs::metadata(g.m("dir/alias")).unwrap();
    assert_eq!(a.ino(), b.ino(), "links differ in st_ino through the mount");
    assert_eq!(a.ino(), fs::metadata(g.b("file")).unwrap().ino());
    assert_eq!(a.nlink(), 2);
    both_ok(&g, "write via one name, read via the other", |r| {
        fs::write(r.join("dir/alias"), b"changed")?;
        read_all(&r.join("file"))
    });
    both_err(&g, "link a dir", libc::EPERM, |r| {
        fs::hard_link(r.join("dir"), r.join("dirlink"))
    });
    both_err(&g, "link onto an existing name", libc::EEXIST, |r| {
        fs::hard_link(r.join("file"), r.join("link"))
    });
    both_err(&g, "link missing source", libc::ENOENT, |r| {
        fs::hard_link(r.join("nope"), r.join("x"))
    });
    both_ok(&g, "unlink one name keeps the other", |r| {
        fs::remove_file(r.join("file"))?;
        Ok((attr(&r.join("dir/alias"))?, read_all(&r.join("dir/alias"))?))
    });
    assert_eq!(fs::metadata(g.m("dir/alias")).unwrap().nlink(), 1);
    assert_mirror(&g);
}

#[test]
fn renames_including_noreplace_and_exchange() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        setup_basic(r);
        fs::write(r.join("a"), b"A").unwrap();
        fs::write(r.join("b"), b"B").unwrap();
        fs::create_dir(r.join("empty")).unwrap();
        fs::create_dir(r.join("full")).unwrap();
        fs::write(r.join("full/x"), b"x").unwrap();
    });
    let ino_a = fs::metadata(g.m("a")).unwrap().ino();
    both_ok(&g, "plain rename", |r| {
        fs::rename(r.join("a"), r.join("a2"))?;
        read_all(&r.join("a2"))
    });
    assert_eq!(fs::metadata(g.m("a2")).unwrap().ino(), ino_a, "ino changed");
    both_err(&g, "old name gone", libc::ENOENT, |r| attr(&r.join("a")));
    both_ok(&g, "rename across dirs", |r| {
        fs::rename(r.join("a2"), r.join("dir/a3"))?;
        Ok((read_all(&r.join("dir/a3"))?, attr(&r.join("dir"))?))
    });
    assert_eq!(fs::metadata(g.m("dir/a3")).unwrap().ino(), ino_a);
    let ino_b = fs::metadata(g.m("b")).unwrap().ino();
    both_ok(&g, "rename over an existing file", |r| {
        fs::rename(r.join("dir/a3"), r.join("b"))?;
        Ok((read_all(&r.join("b"))?, attr(&r.join("b"))?))
    });
    let now_b = fs::metadata(g.m("b")).unwrap().ino();
    assert_eq!(now_b, ino_a);
    assert_ne!(now_b, ino_b);
    both_ok(&g, "rename a dir over an empty dir", |r| {
        fs::create_dir(r.join("moving"))?;
        fs::write(r.join("moving/f"), b"m")?;
        fs::rename(r.join("moving"), r.join("empty"))?;
        Ok((read_all(&r.join("empty/f"))?, attr(r)?))
    });
    both_err(
        &g,
        "rename a dir over a non-empty dir",
        libc::ENOTEMPTY,
        |r| fs::rename(r.join("empty"), r.join("full")),
    );
    both_err(&g, "rename a file over a dir", libc::EISDIR, |r| {
        fs::rename(r.join("b"), r.join("full"))
    });
    both_err(&g, "rename a dir over a file", libc::ENOTDIR, |r| {
        fs::rename(r.join("full"), r.join("b"))
    });
    both_err(&g, "rename a dir into itself", libc::EINVAL, |r| {
        fs::rename(r.join("full"), r.join("full/sub"))
    });
    both_err(&g, "rename missing", libc::ENOENT, |r| {
        fs::rename(r.join("nope"), r.join("x"))
    });
    both_err(
        &g,
        "RENAME_NOREPLACE onto an existing name",
        libc::EEXIST,
        |r| renameat2(&r.join("b"), &r.join("file"), libc::RENAME_NOREPLACE),
    );
    both_ok(&g, "RENAME_NOREPLACE to a free name", |r| {
        renameat2(&r.join("b"), &r.join("b2"), libc::RENAME_NOREPLACE)?;
        read_all(&r.join("b2"))
    });
    let (ino_file, ino_dir) = (
        fs::metadata(g.m("file")).unwrap().ino(),
        fs::metadata(g.m("dir")).unwrap().ino(),
    );
    both_ok(&g, "RENAME_EXCHANGE file <-> dir", |r| {
        renameat2(&r.join("file"), &r.join("dir"), libc::RENAME_EXCHANGE)?;
        Ok((attr(&r.join("file"))?, read_all(&r.join("dir"))?))
    });
    assert_eq!(fs::metadata(g.m("dir")).unwrap().ino(), ino_file);
    assert_eq!(fs::metadata(g.m("file")).unwrap().ino(), ino_dir);
    assert!(
        fs::metadata(g.m("file/inner")).is_ok(),
        "exchanged dir lost its contents"
    );
    both_err(
        &g,
        "RENAME_EXCHANGE with a missing target",
        libc::ENOENT,
        |r| renameat2(&r.join("b2"), &r.join("nope"), libc::RENAME_EXCHANGE),
    );
    both_err(&g, "RENAME_EXCHANGE|RENAME_NOREPLACE", libc::EINVAL, |r| {
        renameat2(
            &r.join("b2"),
            &r.join("dir"),
            libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE,
        )
    });
    both_ok(&g, "rename onto itself is a no-op", |r| {
        fs::rename(r.join("b2"), r.join("b2"))?;
        read_all(&r.join("b2"))
    });
    both_ok(&g, "rename a hard link onto its twin is a no-op", |r| {
        fs::hard_link(r.join("b2"), r.join("b3"))?;
        fs::rename(r.join("b2"), r.join("b3"))?;
        Ok((attr(&r.join("b2"))?, attr(&r.join("b3"))?))
    });
    assert_mirror(&g);
}

#[test]
fn xattrs_set_get_list_remove() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], setup_basic);
    let big = vec![b'v'; 4000];
    both_ok(&g, "setxattr", |r| {
        let f = r.join("file");
        lsetxattr(&f, "user.a", b"alpha", 0)?;
        lsetxattr(&f, "user.empty", b"", 0)?;
        lsetxattr(&f, "user.big", &big, 0)?;
        lsetxattr(&r.join("dir"), "user.d", b"on a dir", 0)
    });
    both_ok(&g, "getxattr", |r| {
        Ok((
            lgetxattr(&r.join("file"), "user.a")?,
            lgetxattr(&r.join("file"), "user.empty")?,
            lgetxattr(&r.join("file"), "user.big")?,
            lgetxattr(&r.join("dir"), "user.d")?,
        ))
    });
    both_ok(&g, "size probe (size 0)", |r| {
        Ok((
            lgetxattr_sized(&r.join("file"), "user.a", 0)?.0,
            lgetxattr_sized(&r.join("file"), "user.big", 0)?.0,
        ))
    });
    both_err(&g, "short buffer", libc::ERANGE, |r| {
        lgetxattr_sized(&r.join("file"), "user.a", 2)
    });
    both_ok(&g, "exact buffer", |r| {
        lgetxattr_sized(&r.join("file"), "user.a", 5)
    });
    both_ok(&g, "listxattr", |r| llistxattr(&r.join("file")));
    both_ok(&g, "listxattr size probe", |r| {
        Ok(llistxattr_sized(&r.join("file"), 0)?.0)
    });
    both_err(&g, "listxattr short buffer", libc::ERANGE, |r| {
        llistxattr_sized(&r.join("file"), 3)
    });
    both_err(&g, "XATTR_CREATE on an existing name", libc::EEXIST, |r| {
        lsetxattr(&r.join("file"), "user.a", b"again", libc::XATTR_CREATE)
    });
    both_err(&g, "XATTR_REPLACE on a missing name", libc::ENODATA, |r| {
        lsetxattr(&r.join("file"), "user.nope", b"x", libc::XATTR_REPLACE)
    });
    both_ok(&g, "XATTR_REPLACE on an existing name", |r| {
        lsetxattr(&r.join("file"), "user.a", b"beta", libc::XATTR_REPLACE)?;
        lgetxattr(&r.join("file"), "user.a")
    });
    both_ok(&g, "XATTR_CREATE on a new name", |r| {
        lsetxattr(&r.join("file"), "user.c", b"c", libc::XATTR_CREATE)?;
        llistxattr(&r.join("file"))
    });
    both_err(&g, "getxattr missing", libc::ENODATA, |r| {
        lgetxattr(&r.join("file"), "user.nope")
    });
    both_ok(&g, "removexattr", |r| {
        lremovexattr(&r.join("file"), "user.c")?;
        llistxattr(&r.join("file"))
    });
    both_err(&g, "removexattr missing", libc::ENODATA, |r| {
        lremovexattr(&r.join("file"), "user.c")
    });
    both_err(&g, "unknown namespace", libc::EOPNOTSUPP, |r| {
        lsetxattr(&r.join("file"), "bogus.x", b"1", 0)
    });
    both_err(&g, "getxattr on a missing file", libc::ENOENT, |r| {
        lgetxattr(&r.join("nope"), "user.a")
    });
    // Visible in the backing dir, and what is set there is visible through the mount.
    assert_eq!(lgetxattr(&g.b("file"), "user.a").unwrap(), b"beta");
    lsetxattr(&g.b("dir/inner"), "user.backing", b"b", 0).unwrap();
    assert_eq!(lgetxattr(&g.m("dir/inner"), "user.backing").unwrap(), b"b");
    lremovexattr(&g.b("dir/inner"), "user.backing").unwrap();
    assert_mirror(&g);
}

#[test]
fn statfs_matches_backing() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let b = statvfs(&g.backing).unwrap();
    let m = statvfs(&g.mnt).unwrap();
    assert_eq!(m.f_bsize, b.f_bsize, "f_bsize");
    assert_eq!(m.f_frsize, b.f_frsize, "f_frsize");
    assert_eq!(m.f_blocks, b.f_blocks, "f_blocks");
    assert_eq!(m.f_files, b.f_files, "f_files");
    assert_eq!(m.f_namemax, b.f_namemax, "f_namemax");
    // Free counts move with other activity on the disk; allow 1% of the disk.
    let slack = b.f_blocks / 100;
    assert!(
        m.f_bfree.abs_diff(b.f_bfree) <= slack,
        "f_bfree {} vs {}",
        m.f_bfree,
        b.f_bfree
    );
    assert!(
        m.f_bavail.abs_diff(b.f_bavail) <= slack,
        "f_bavail {} vs {}",
        m.f_bavail,
        b.f_bavail
    );
    // Also through a subdirectory of the mount.
    fs::create_dir(g.m("sub")).unwrap();
    assert_eq!(statvfs(&g.m("sub")).unwrap().f_blocks, b.f_blocks);
}

#[test]
fn access_as_root_and_as_user() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        fs::write(r.join("rw"), b"x").unwrap();
        fs::set_permissions(r.join("rw"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(r.join("exe"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(r.join("exe"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(r.join("secret"), b"s").unwrap();
        fs::set_permissions(r.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    });
    for (rel, mode) in [
        ("rw", libc::F_OK),
        ("rw", libc::R_OK | libc::W_OK),
        ("rw", libc::X_OK),
        ("exe", libc::X_OK),
        ("secret", libc::R_OK | libc::W_OK),
        ("missing", libc::F_OK),
    ] {
        both(&g, &format!("root access({rel}, {mode})"), |r| {
            access(&r.join(rel), mode)
        })
        .ok();
    }
    both_err(&g, "root X_OK on a 0644 file", libc::EACCES, |r| {
        access(&r.join("rw"), libc::X_OK)
    });
    // access(2) checks the real uid, so the unprivileged checks run in a child process.
    let script = |root: &Path| {
        let mut s = String::new();
        for (rel, flag) in [
            ("rw", "-r"),
            ("rw", "-w"),
            ("exe", "-x"),
            ("secret", "-r"),
            ("secret", "-w"),
            ("missing", "-e"),
        ] {
            s.push_str(&format!(
                "if test {flag} '{}'; then echo {rel}{flag}=yes; else echo {rel}{flag}=no; fi\n",
                root.join(rel).display()
            ));
        }
        s
    };
    let native = run_as(USER, GROUP, &script(&g.native));
    let mount = run_as(USER, GROUP, &script(&g.mnt));
    let (n, m) = (
        String::from_utf8_lossy(&native.stdout).into_owned(),
        String::from_utf8_lossy(&mount.stdout).into_owned(),
    );
    assert!(
        n.contains("rw-r=yes") && n.contains("secret-r=no"),
        "native: {n}"
    );
    assert_eq!(m, n, "access() as uid {USER}: mount vs native");
}

/// pjdfstest skips link/05.t on FUSE: glibc answers pathconf(_PC_LINK_MAX) from `f_type`,
/// and the kernel's FUSE magic is not in its table (127, "unknown"). The limit itself is
/// BACKING's: link until EMLINK on both sides and compare where it stops.
#[test]
fn link_count_stops_at_the_backing_limit() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "link until EMLINK", |r| {
        fs::create_dir(r.join("links"))?;
        let file = r.join("links/f");
        fs::write(&file, b"x")?;
        let mut made = 1u64;
        loop {
            match fs::hard_link(&file, r.join(format!("links/l{made}"))) {
                Ok(()) => made += 1,
                Err(e) if e.raw_os_error() == Some(libc::EMLINK) => break,
                Err(e) => return Err(e),
            }
        }
        Ok((made, fs::metadata(&file)?.nlink()))
    });
}
