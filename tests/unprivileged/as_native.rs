//! Contents, names and metadata through the user's mount, as on the user's native directory.

use super::*;

/// Contents: create, write, read, append, truncate, fsync and shared mappings.
#[test]
fn file_data_behaves_as_native() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    let data = pattern(200_000, 7);

    both_ok_as_mounter(&m, "create exclusively, write, read", |r| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(r.join("f"))?;
        f.write_all(&data)?;
        drop(f);
        let again = errno_of(
            &OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(r.join("f")),
        );
        Ok((digest(&read_all(&r.join("f"))?), again, attr(&r.join("f"))?))
    });
    both_ok_as_mounter(&m, "append", |r| {
        let mut f = OpenOptions::new().append(true).open(r.join("f"))?;
        f.write_all(b"tail")?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(b"appended again")?;
        drop(f);
        let all = read_all(&r.join("f"))?;
        Ok((all.len(), all[all.len() - 18..].to_vec()))
    });
    both_ok_as_mounter(&m, "read at offsets", |r| {
        let mut f = File::open(r.join("f"))?;
        let mut buf = vec![0u8; 5000];
        f.seek(SeekFrom::Start(131_000))?;
        f.read_exact(&mut buf)?;
        let mut end = Vec::new();
        f.seek(SeekFrom::End(-10))?;
        f.read_to_end(&mut end)?;
        Ok((digest(&buf), end))
    });
    both_ok_as_mounter(&m, "truncate shorter and longer", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        f.set_len(1000)?;
        let short = read_all(&r.join("f"))?;
        truncate(&r.join("f"), 70_000)?;
        let long = read_all(&r.join("f"))?;
        Ok((digest(&short), digest(&long), attr(&r.join("f"))?))
    });
    both_ok_as_mounter(&m, "O_TRUNC", |r| {
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(r.join("f"))?;
        f.write_all(b"new")?;
        drop(f);
        read_all(&r.join("f"))
    });
    both_ok_as_mounter(&m, "fsync and fdatasync", |r| {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(r.join("synced"))?;
        f.write_all(&data[..10_000])?;
        f.sync_data()?;
        f.write_all(b"more")?;
        f.sync_all()?;
        File::open(r)?.sync_all()?;
        Ok(digest(&read_all(&r.join("synced"))?))
    });
    both_ok_as_mounter(
        &m,
        "shared mapping: write through it, read through it",
        |r| {
            let initial = pattern(64 * 1024 + 100, 3);
            fs::write(r.join("mapped"), &initial)?;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(r.join("mapped"))?;
            let written = with_shared_mapping(&f, initial.len(), |map| {
                let seen = digest(map);
                for (i, b) in map.iter_mut().enumerate().step_by(4096) {
                    *b = (i / 4096) as u8 ^ 0x5a;
                }
                let last = map.len() - 1;
                map[last] = 0xee;
                seen
            })?;
            drop(f);
            let after = read_all(&r.join("mapped"))?;
            let reopened = OpenOptions::new()
                .read(true)
                .write(true)
                .open(r.join("mapped"))?;
            let reread = with_shared_mapping(&reopened, after.len(), |map| digest(map))?;
            Ok((written, digest(&after), reread))
        },
    );
    assert_mount_equals_native(&m);
    assert_trees_equal(&m.native, &m.backing, TreeOpts::default());
    m.unmount_cleanly();
}

/// Names: rename, link, symlink/readlink, mkdir/rmdir, unlink, and a directory of a few
/// hundred entries (more than one readdir reply).
#[test]
fn names_behave_as_native() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);

    both_ok_as_mounter(&m, "mkdir, nested", |r| {
        fs::create_dir(r.join("d"))?;
        fs::create_dir_all(r.join("d/e/f"))?;
        attr(&r.join("d/e"))
    });
    both_err_as_mounter(&m, "mkdir over a directory", libc::EEXIST, |r| {
        fs::create_dir(r.join("d"))
    });
    both_err_as_mounter(&m, "rmdir of a non-empty directory", libc::ENOTEMPTY, |r| {
        fs::remove_dir(r.join("d/e"))
    });
    both_ok_as_mounter(&m, "rmdir", |r| {
        fs::remove_dir(r.join("d/e/f"))?;
        Ok(fs::symlink_metadata(r.join("d/e/f"))
            .map_err(|e| e.raw_os_error())
            .err())
    });

    both_ok_as_mounter(&m, "rename a file, over a file, into a directory", |r| {
        fs::write(r.join("a"), b"a")?;
        fs::write(r.join("b"), b"b")?;
        fs::rename(r.join("a"), r.join("a2"))?;
        fs::rename(r.join("a2"), r.join("b"))?;
        fs::rename(r.join("b"), r.join("d/b"))?;
        Ok((
            fs::symlink_metadata(r.join("a")).is_err(),
            read_all(&r.join("d/b"))?,
        ))
    });
    both_err_as_mounter(&m, "RENAME_NOREPLACE onto a file", libc::EEXIST, |r| {
        fs::write(r.join("x"), b"x")?;
        renameat2(&r.join("x"), &r.join("d/b"), libc::RENAME_NOREPLACE)
    });
    both_ok_as_mounter(&m, "RENAME_EXCHANGE", |r| {
        renameat2(&r.join("x"), &r.join("d/b"), libc::RENAME_EXCHANGE)?;
        Ok((read_all(&r.join("x"))?, read_all(&r.join("d/b"))?))
    });
    both_err_as_mounter(&m, "rename a directory into itself", libc::EINVAL, |r| {
        fs::rename(r.join("d"), r.join("d/e/inside"))
    });

    both_ok_as_mounter(&m, "hard link", |r| {
        fs::hard_link(r.join("x"), r.join("x-link"))?;
        let (a, b) = (
            fs::symlink_metadata(r.join("x"))?,
            fs::symlink_metadata(r.join("x-link"))?,
        );
        Ok((a.ino() == b.ino(), attr_of(&a), attr_of(&b)))
    });
    both_err_as_mounter(&m, "hard link over a name", libc::EEXIST, |r| {
        fs::hard_link(r.join("x"), r.join("d/b"))
    });
    both_err_as_mounter(&m, "hard link of a directory", libc::EPERM, |r| {
        fs::hard_link(r.join("d"), r.join("d-link"))
    });
    both_ok_as_mounter(&m, "unlink one of two links", |r| {
        fs::remove_file(r.join("x"))?;
        attr(&r.join("x-link"))
    });

    both_ok_as_mounter(&m, "symlink and readlink", |r| {
        std::os::unix::fs::symlink("d/../x-link", r.join("s"))?;
        std::os::unix::fs::symlink("nowhere/at/all", r.join("dangling"))?;
        Ok((
            fs::read_link(r.join("s"))?,
            read_all(&r.join("s"))?,
            fs::read_link(r.join("dangling"))?,
            fs::metadata(r.join("dangling"))
                .map_err(|e| e.raw_os_error())
                .err(),
            attr(&r.join("s"))?,
        ))
    });
    both_err_as_mounter(&m, "readlink of a file", libc::EINVAL, |r| {
        fs::read_link(r.join("x-link"))
    });

    both_ok_as_mounter(&m, "readdir of 300 entries", |r| {
        fs::create_dir(r.join("many"))?;
        for i in 0..300 {
            let name = format!("entry-{i:03}-{}", "n".repeat(i % 40));
            if i % 10 == 0 {
                fs::create_dir(r.join("many").join(name))?;
            } else {
                fs::write(r.join("many").join(name), i.to_string())?;
            }
        }
        let names = dir_names(&r.join("many"))?;
        let kinds: Vec<(std::ffi::OsString, bool)> = {
            let mut v: Vec<_> = fs::read_dir(r.join("many"))?
                .map(|e| e.and_then(|e| Ok((e.file_name(), e.file_type()?.is_dir()))))
                .collect::<io::Result<_>>()?;
            v.sort();
            v
        };
        Ok((names.len(), names, kinds))
    });
    both_ok_as_mounter(&m, "readdir after removing half", |r| {
        for (i, e) in fs::read_dir(r.join("many"))?.enumerate() {
            let e = e?;
            if i % 2 == 0 && !e.file_type()?.is_dir() {
                fs::remove_file(e.path())?;
            }
        }
        Ok(dir_names(&r.join("many"))?.len())
    });
    assert_mount_equals_native(&m);
    assert_trees_equal(&m.native, &m.backing, TreeOpts::default());
    m.unmount_cleanly();
}

/// Metadata: chmod (setuid and setgid bits too), utimens, user.* xattrs, and chown, which a
/// user may only make to itself.
#[test]
fn metadata_behaves_as_native() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    both_ok_as_mounter(&m, "setup", |r| {
        fs::write(r.join("f"), b"data")?;
        fs::create_dir(r.join("d"))?;
        std::os::unix::fs::symlink("f", r.join("s"))
    });

    for mode in [0o600, 0o644, 0o4755, 0o2755, 0o1777, 0o000, 0o640] {
        both_ok_as_mounter(&m, &format!("chmod {mode:o}"), |r| {
            chmod(&r.join("f"), mode)?;
            chmod(&r.join("d"), mode | 0o700)?;
            Ok((attr(&r.join("f"))?, attr(&r.join("d"))?))
        });
    }
    both_ok_as_mounter(&m, "utimensat: explicit, omitted, now", |r| {
        utimensat(
            &r.join("f"),
            [ts(1_000_000_000, 1), ts(1_200_000_000, 999)],
            0,
        )?;
        let first = fs::metadata(r.join("f"))?;
        utimensat(
            &r.join("f"),
            [ts(0, libc::UTIME_OMIT), ts(1_300_000_000, 5)],
            0,
        )?;
        let second = fs::metadata(r.join("f"))?;
        utimensat(
            &r.join("s"),
            [ts(1_100_000_000, 0), ts(1_100_000_000, 7)],
            libc::AT_SYMLINK_NOFOLLOW,
        )?;
        let link = fs::symlink_metadata(r.join("s"))?;
        utimensat(
            &r.join("d"),
            [ts(0, libc::UTIME_NOW), ts(0, libc::UTIME_NOW)],
            0,
        )?;
        let now = fs::metadata(r.join("d"))?.mtime();
        let recent = (now
            - std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64)
            .abs()
            < 60;
        Ok((
            (
                first.atime(),
                first.atime_nsec(),
                first.mtime(),
                first.mtime_nsec(),
            ),
            (second.atime(), second.mtime(), second.mtime_nsec()),
            (link.mtime(), link.mtime_nsec()),
            recent,
        ))
    });

    both_ok_as_mounter(&m, "user.* xattrs: set, replace, list, get, remove", |r| {
        let f = r.join("f");
        chmod(&f, 0o644)?;
        lsetxattr(&f, "user.one", b"1", 0)?;
        lsetxattr(&f, "user.two", &[0u8, 1, 2, 255], 0)?;
        let create_again = errno_of(&lsetxattr(&f, "user.one", b"x", libc::XATTR_CREATE));
        let replace_missing = errno_of(&lsetxattr(&f, "user.nope", b"x", libc::XATTR_REPLACE));
        lsetxattr(&f, "user.one", b"uno", libc::XATTR_REPLACE)?;
        lsetxattr(&r.join("d"), "user.dir", &vec![7u8; 3000], 0)?;
        let listed = llistxattr(&f)?;
        let got = (lgetxattr(&f, "user.one")?, lgetxattr(&f, "user.two")?);
        let too_small = errno_of(&lgetxattr_sized(&f, "user.two", 2));
        let missing = errno_of(&lgetxattr(&f, "user.missing"));
        lremovexattr(&f, "user.two")?;
        let removed_twice = errno_of(&lremovexattr(&f, "user.two"));
        Ok((
            create_again,
            replace_missing,
            listed,
            got,
            too_small,
            missing,
            removed_twice,
            llistxattr(&f)?,
            lgetxattr(&r.join("d"), "user.dir")?.len(),
        ))
    });
    both_err_as_mounter(&m, "user.* xattr on a symlink", libc::EPERM, |r| {
        lsetxattr(&r.join("s"), "user.x", b"x", 0)
    });
    both_err_as_mounter(&m, "trusted.* xattr as a user", libc::EPERM, |r| {
        lsetxattr(&r.join("f"), "trusted.x", b"x", 0)
    });

    both_ok_as_mounter(&m, "chown to oneself", |r| {
        chown(&r.join("f"), USER, GROUP)?;
        lchown(&r.join("s"), u32::MAX, GROUP)?;
        Ok((attr(&r.join("f"))?, attr(&r.join("s"))?))
    });
    both_err_as_mounter(&m, "chown to another uid", libc::EPERM, |r| {
        chown(&r.join("f"), OTHER_USER, u32::MAX)
    });
    both_err_as_mounter(&m, "chown to root", libc::EPERM, |r| {
        lchown(&r.join("s"), 0, u32::MAX)
    });
    both_err_as_mounter(&m, "chgrp to a group one is not in", libc::EPERM, |r| {
        chown(&r.join("d"), u32::MAX, 0)
    });
    both_ok_as_mounter(&m, "a setgid file stays setgid after a no-op chown", |r| {
        chmod(&r.join("f"), 0o2755)?;
        chown(&r.join("f"), u32::MAX, GROUP)?;
        attr(&r.join("f"))
    });
    assert_mount_equals_native(&m);
    assert_trees_equal(&m.native, &m.backing, TreeOpts::default());
    m.unmount_cleanly();
}
