//! Hard links and renames, and the backing fs's link count limit.

use super::*;

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
