//! Extended attributes: flags, sizes, names.

use super::*;

fn xattr_edges(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("f"), b"x")?;
        fs::create_dir(r.join("d"))
    });
    let f = |r: &Path| r.join("f");
    let (create, replace) = (libc::XATTR_CREATE, libc::XATTR_REPLACE);
    for flags in [4, 8, 1 << 30, -1, create | 4] {
        both_err(
            &g,
            &format!("setxattr flags {flags:#x}"),
            libc::EINVAL,
            |r| setxattr(&f(r), b"user.a", b"v", flags),
        );
    }
    both_err(&g, "CREATE|REPLACE on a missing name", libc::ENODATA, |r| {
        setxattr(&f(r), b"user.a", b"v", create | replace)
    });
    both_err(&g, "REPLACE on a missing name", libc::ENODATA, |r| {
        setxattr(&f(r), b"user.a", b"v", replace)
    });
    both_ok(&g, "CREATE on a missing name", |r| {
        setxattr(&f(r), b"user.a", b"v1", create)?;
        getxattr(&f(r), b"user.a", 100)
    });
    both_err(&g, "CREATE on an existing name", libc::EEXIST, |r| {
        setxattr(&f(r), b"user.a", b"v", create)
    });
    both_err(
        &g,
        "CREATE|REPLACE on an existing name",
        libc::EEXIST,
        |r| setxattr(&f(r), b"user.a", b"v", create | replace),
    );
    both_ok(&g, "REPLACE on an existing name", |r| {
        setxattr(&f(r), b"user.a", b"v2", replace)?;
        getxattr(&f(r), b"user.a", 100)
    });
    both_ok(&g, "an empty value", |r| {
        setxattr(&f(r), b"user.empty", b"", 0)?;
        Ok((
            getxattr(&f(r), b"user.empty", 0)?,
            getxattr(&f(r), b"user.empty", 10)?,
        ))
    });

    // Sizes: the VFS takes at most 64 KiB (XATTR_SIZE_MAX); ext4 holds what fits its inode and
    // one block (or an EA inode, with the ea_inode feature).
    for len in [4000, 4096, 8192, 65_535, 65_536] {
        let value = pattern(len, len as u64);
        seen(&g, &format!("setxattr of {len} bytes"), |r| {
            setxattr(&f(r), b"user.big", &value, 0)?;
            let (n, got) = getxattr(&f(r), b"user.big", 65_536)?;
            Ok((n, digest(&got)))
        });
    }
    seen(&g, "remove the big value", |r| {
        removexattr(&f(r), b"user.big")
    });
    both_err(&g, "setxattr of 64 KiB + 1", libc::E2BIG, |r| {
        setxattr(&f(r), b"user.huge", &vec![7u8; 65_537], 0)
    });
    both_err(&g, "setxattr of 1 MiB", libc::E2BIG, |r| {
        setxattr(&f(r), b"user.huge", &vec![7u8; 1 << 20], 0)
    });
    both_ok(&g, "getxattr buffers", |r| {
        let p = f(r);
        Ok((
            getxattr(&p, b"user.a", 0)?,
            errno_of(&getxattr(&p, b"user.a", 1)),
            getxattr(&p, b"user.a", 2)?,
            getxattr(&p, b"user.a", 65_537)?,
            getxattr(&p, b"user.a", 1 << 20)?,
        ))
    });
    both_ok(&g, "listxattr buffers", |r| {
        let (len, _) = llistxattr_sized(&f(r), 0)?;
        Ok((
            len,
            errno_of(&llistxattr_sized(&f(r), len - 1)),
            llistxattr(&f(r))?,
        ))
    });

    // Names: at most 255 bytes with the prefix (XATTR_NAME_MAX); 256 is ERANGE in the VFS.
    let long = |n: usize| {
        let mut v = b"user.".to_vec();
        v.extend(std::iter::repeat_n(b'n', n - v.len()));
        v
    };
    both_ok(&g, "a 255-byte xattr name", |r| {
        setxattr(&f(r), &long(255), b"long", 0)?;
        Ok((getxattr(&f(r), &long(255), 10)?, llistxattr(&f(r))?))
    });
    both_err(&g, "setxattr with a 256-byte name", libc::ERANGE, |r| {
        setxattr(&f(r), &long(256), b"v", 0)
    });
    both_err(&g, "getxattr with a 256-byte name", libc::ERANGE, |r| {
        getxattr(&f(r), &long(256), 10)
    });
    both_err(&g, "removexattr with a 256-byte name", libc::ERANGE, |r| {
        removexattr(&f(r), &long(256))
    });
    both_err(&g, "setxattr with an empty name", libc::ERANGE, |r| {
        setxattr(&f(r), b"", b"v", 0)
    });
    for n in [&b"user."[..], b"foo.bar", b"nonamespace", b"user"] {
        seen(
            &g,
            &format!("setxattr name {:?}", String::from_utf8_lossy(n)),
            |r| setxattr(&f(r), n, b"v", 0),
        );
        seen(
            &g,
            &format!("getxattr name {:?}", String::from_utf8_lossy(n)),
            |r| getxattr(&f(r), n, 10),
        );
    }
    both_err(&g, "removexattr of a missing name", libc::ENODATA, |r| {
        removexattr(&f(r), b"user.missing")
    });
    both_ok(&g, "removexattr of the long name", |r| {
        removexattr(&f(r), &long(255))?;
        llistxattr(&f(r))
    });
    // user.* xattrs are only for regular files and dirs: a symlink refuses them.
    let _ = both_ok(&g, "xattrs on a dir and a symlink", |r| {
        std::os::unix::fs::symlink("f", r.join("l"))?;
        Ok((
            outcome(setxattr(&r.join("d"), b"user.d", &[1; 3000], 0)),
            errno_of(&setxattr(&r.join("l"), b"user.l", b"v", 0)),
            llistxattr(&r.join("d"))?,
        ))
    });
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn xattr_edges_default() {
    xattr_edges(&[]);
}

#[test]
fn xattr_edges_devfuse() {
    xattr_edges(DEVFUSE);
}
