//! Extended attributes: set, get, list, remove.

use super::*;

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
