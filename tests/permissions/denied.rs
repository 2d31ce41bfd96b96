//! An unprivileged caller is denied what it is denied natively.

use super::*;

#[test]
fn unprivileged_user_is_denied_like_natively_default() {
    unprivileged_user_is_denied_like_natively(&[]);
}

#[test]
fn unprivileged_user_is_denied_like_natively_passthrough() {
    unprivileged_user_is_denied_like_natively(&["passthrough"]);
}

fn unprivileged_user_is_denied_like_natively(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(opts, |r| {
        fs::write(r.join("secret"), b"root only").unwrap();
        chmod(&r.join("secret"), 0o600).unwrap();
        fs::write(r.join("public"), b"everyone reads").unwrap();
        chmod(&r.join("public"), 0o644).unwrap();
        user_dir(r, "u", USER, GROUP, 0o755);
        fs::write(r.join("u/users"), b"1000's").unwrap();
        chown(&r.join("u/users"), USER, GROUP).unwrap();
        chmod(&r.join("u/users"), 0o640).unwrap();
    });
    let before = g.counters();
    // Root reads it first, so the kernel has everything cached when the user tries.
    assert_eq!(fs::read(g.m("secret")).unwrap(), b"root only");
    user_err(
        &g,
        USER,
        GROUP,
        "read a root 0600 file",
        libc::EACCES,
        |r| fs::read(r.join("secret")),
    );
    user_err(
        &g,
        USER,
        GROUP,
        "open a root 0600 file O_WRONLY",
        libc::EACCES,
        |r| OpenOptions::new().write(true).open(r.join("secret")),
    );
    user_ok(&g, USER, GROUP, "read a 0644 file", |r| {
        fs::read(r.join("public"))
    });
    user_err(
        &g,
        USER,
        GROUP,
        "write a root 0644 file",
        libc::EACCES,
        |r| OpenOptions::new().write(true).open(r.join("public")),
    );
    user_err(
        &g,
        USER,
        GROUP,
        "chmod someone else's file",
        libc::EPERM,
        |r| chmod(&r.join("public"), 0o666),
    );
    user_err(&g, USER, GROUP, "chown to self", libc::EPERM, |r| {
        chown(&r.join("public"), USER, GROUP)
    });
    user_err(&g, USER, GROUP, "give away own file", libc::EPERM, |r| {
        chown(&r.join("u/users"), OTHER, u32::MAX)
    });
    user_err(
        &g,
        USER,
        GROUP,
        "create in a root 0755 dir",
        libc::EACCES,
        |r| fs::write(r.join("new"), b"x"),
    );
    user_err(
        &g,
        USER,
        GROUP,
        "unlink in a root 0755 dir",
        libc::EACCES,
        |r| fs::remove_file(r.join("public")),
    );
    user_err(
        &g,
        USER,
        GROUP,
        "rename out of a root dir",
        libc::EACCES,
        |r| fs::rename(r.join("public"), r.join("u/stolen")),
    );
    user_err(
        &g,
        USER,
        GROUP,
        "explicit utimes on a foreign file",
        libc::EPERM,
        |r| utimensat(&r.join("public"), [ts(1, 0), ts(1, 0)], 0),
    );
    user_err(
        &g,
        USER,
        GROUP,
        "UTIME_NOW without write access",
        libc::EACCES,
        |r| {
            utimensat(
                &r.join("public"),
                [ts(0, libc::UTIME_NOW), ts(0, libc::UTIME_NOW)],
                0,
            )
        },
    );
    user_err(
        &g,
        USER,
        GROUP,
        "user xattr on a foreign file",
        libc::EACCES,
        |r| lsetxattr(&r.join("public"), "user.x", b"1", 0),
    );
    user_err(&g, USER, GROUP, "trusted xattr", libc::EPERM, |r| {
        lsetxattr(&r.join("u/users"), "trusted.x", b"1", 0)
    });
    user_err(
        &g,
        OTHER,
        OTHER,
        "read a 0640 file of another group",
        libc::EACCES,
        |r| fs::read(r.join("u/users")),
    );
    user_ok(
        &g,
        USER,
        GROUP,
        "owner may chmod, chgrp to own group",
        |r| {
            chmod(&r.join("u/users"), 0o600)?;
            chown(&r.join("u/users"), u32::MAX, GROUP)?;
            attr(&r.join("u/users"))
        },
    );
    user_ok(
        &g,
        USER,
        GROUP,
        "owner may set times and user xattrs",
        |r| {
            utimensat(&r.join("u/users"), [ts(5, 0), ts(6, 0)], 0)?;
            lsetxattr(&r.join("u/users"), "user.mine", b"yes", 0)?;
            lgetxattr(&r.join("u/users"), "user.mine")
        },
    );
    if opts.contains(&"passthrough") {
        g.assert_passthrough_since(&before, "root's and the user's reads");
    }
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}
