//! Attributes: getattr, chmod/chown/truncate, timestamps, statfs and access, as in BACKING.

use super::*;

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
