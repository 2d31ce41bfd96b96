//! chmod, chown, xattrs and ACLs without fchmodat2 and the `*xattrat` calls.

use super::*;

/// chmod (fchmodat through the magic link) and chown as natively, for root and for a user.
#[test]
fn chmod_and_chown_match_native_without_fchmodat2() {
    if !require_root_and_fuse() {
        return;
    }
    let m = Mount::start(OLD_KERNEL, seccomp_wrap::ENOSYS, &[], tree);
    assert!(m.probe_line().contains("lacks fchmodat2"));
    let chmod = |mode: u32| {
        move |p: &Path| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
            owner_and_mode(p)
        }
    };
    for (rel, mode) in [
        ("f", 0o600),
        ("f", 0o4755),
        ("f", 0o2644),
        ("d", 0o700),
        ("d", 0o1777),
    ] {
        m.both("chmod", rel, chmod(mode)).expect("chmod");
    }
    m.both("chmod", "p", chmod(0o600)).expect("chmod fifo");
    m.both("chmod through the symlink", "l", chmod(0o640))
        .expect("chmod l");
    // lchmod of the symlink itself: EOPNOTSUPP (the kernel refuses before FUSE since 6.6;
    // an older kernel sends it, and the fallback refuses it the same way).
    assert_eq!(
        m.both("lchmod", "l", |p| lchmod(p, 0o600)
            .and_then(|()| owner_and_mode(p))),
        Err(libc::EOPNOTSUPP)
    );
    m.both("chmod missing", "nope", chmod(0o600)).unwrap_err();
    for rel in ["f", "d", "p"] {
        m.both("chown", rel, |p| {
            std::os::unix::fs::chown(p, Some(1000), Some(1000))?;
            owner_and_mode(p)
        })
        .expect("chown");
    }
    m.both("lchown", "l", |p| {
        lchown(p, 1000, 0).and_then(|()| owner_and_mode(p))
    })
    .expect("lchown");
    // As the owner (now 1000): allowed; setgid on a file of a group it is not in is dropped.
    m.both("chown to 1000:0", "f", |p| {
        std::os::unix::fs::chown(p, Some(1000), Some(0))?;
        owner_and_mode(p)
    })
    .expect("chown");
    let (code, _) = m.both_as_user("chmod 2750 \"$R/f\" && stat -c %a \"$R/f\"");
    assert_eq!(code, Some(0));
    let (code, out) = m.both_as_user("chmod 0777 \"$R/p\"; chmod 0777 \"$R/d\"");
    assert_eq!(code, Some(0), "{out}");
    m.both("state", "f", owner_and_mode).expect("stat");
    m.both("state", "d", owner_and_mode).expect("stat");
    // Not the owner: EPERM.
    m.both("chown back to root", "f", |p| {
        std::os::unix::fs::chown(p, Some(0), Some(0))
    })
    .expect("chown");
    let (code, out) = m.both_as_user("chmod 0777 \"$R/f\"");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    // BACKING got what native got.
    for rel in ["f", "d", "l", "p"] {
        assert_eq!(
            owner_and_mode(&m.dirs.backing.join(rel)).ok(),
            owner_and_mode(&m.dirs.native.join(rel)).ok(),
            "{rel} in BACKING"
        );
    }
}

/// Every xattr call on a file, a directory, a symlink and a fifo, through the cwd-relative
/// fallback: the same values and errnos as natively, and xattrs never switched off.
#[test]
fn xattrs_match_native_without_xattrat() {
    if !require_root_and_fuse() {
        return;
    }
    let m = Mount::start(OLD_KERNEL, seccomp_wrap::ENOSYS, &[], tree);
    assert!(
        m.probe_line().contains("lacks fchmodat2 (") && m.probe_line().contains("), setxattrat/")
    );
    let big = vec![b'v'; 4000];
    for rel in ["f", "d", "l", "p"] {
        // user.* exist only on files and directories (EPERM on a symlink or fifo, natively
        // too); trusted.* and security.* on every inode, for root.
        for name in ["user.a", "trusted.t", "security.s"] {
            let _ = m.both("set", rel, |p| lsetxattr(p, name, b"12", 0));
            m.both("create existing", rel, |p| {
                lsetxattr(p, name, b"x", libc::XATTR_CREATE)
            })
            .unwrap_err();
            let _ = m.both("replace", rel, |p| {
                lsetxattr(p, name, b"34", libc::XATTR_REPLACE)
            });
            let _ = m.both("size", rel, |p| lgetxattr(p, name, 0));
            let _ = m.both("get small", rel, |p| lgetxattr(p, name, 1));
            let _ = m.both("get", rel, |p| lgetxattr(p, name, 64));
        }
        m.both("replace missing", rel, |p| {
            lsetxattr(p, "trusted.none", b"x", libc::XATTR_REPLACE)
        })
        .unwrap_err();
        m.both("empty value", rel, |p| {
            lsetxattr(p, "trusted.empty", b"", 0)?;
            lgetxattr(p, "trusted.empty", 64)
        })
        .expect("empty value");
        m.both("big value", rel, |p| {
            lsetxattr(p, "trusted.big", &big, 0)?;
            lgetxattr(p, "trusted.big", 65536)
        })
        .expect("big value");
        m.both("list", rel, llistxattr).expect("list");
        m.both("list size", rel, |p| {
            let c = cpath(p);
            // SAFETY: the size query, no buffer.
            let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n)
            }
        })
        .expect("list size");
        m.both("remove", rel, |p| lremovexattr(p, "trusted.t"))
            .expect("remove");
        m.both("remove again", rel, |p| lremovexattr(p, "trusted.t"))
            .unwrap_err();
        m.both("get removed", rel, |p| lgetxattr(p, "trusted.t", 64))
            .unwrap_err();
        m.both("list after", rel, llistxattr).expect("list");
    }
    // Through the symlink (following it): its target's, not its own.
    m.both("get via symlink", "l", |p| getxattr(p, "user.a"))
        .expect("user.a of f");
    m.both("get via symlink", "l", |p| getxattr(p, "trusted.big"))
        .expect("f's");
    assert_eq!(
        lgetxattr(&m.dirs.backing.join("l"), "trusted.big", 65536).ok(),
        Some(big.clone()),
        "the symlink's own xattr is in BACKING, on the symlink"
    );
    // An unprivileged user: user.* need write/read permission, trusted.* are invisible.
    let (code, out) = m.both_as_user(
        "setfattr -n user.u -v 1 f; echo set=$?; getfattr -n user.a f; echo get=$?; \
         getfattr -d -m - f; setfattr -n trusted.x -v 1 f; echo t=$?",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("set=1") && out.contains("Permission denied"),
        "{out}"
    );
    // The kernel still asks: the fallback never answered ENOSYS.
    m.both("still on", "f", |p| lgetxattr(p, "user.a", 64))
        .expect("xattrs stay on");
    for rel in ["f", "d", "l", "p"] {
        assert_eq!(
            llistxattr(&m.dirs.backing.join(rel)).ok(),
            llistxattr(&m.dirs.native.join(rel)).ok(),
            "{rel} in BACKING"
        );
    }
}

/// POSIX ACLs (system.posix_acl_* through the fallback): setfacl/getfacl, a default ACL on a
/// new file, and the kernel's permission check from them, as natively.
#[test]
fn acls_match_native_without_xattrat() {
    if !require_root_and_fuse() {
        return;
    }
    let m = Mount::start(OLD_KERNEL, seccomp_wrap::ENOSYS, &[], |root| {
        tree(root);
        fs::write(root.join("secret"), b"s").expect("secret");
        fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).expect("0600");
    });
    assert!(m.probe_line().contains("setxattrat/getxattrat"));
    let both_run = |args: &[&str]| {
        let on_mount = run(args[0], &args[1..], &m.dirs.mnt).expect("run");
        assert_eq!(
            on_mount,
            run(args[0], &args[1..], &m.dirs.native).expect("run"),
            "{args:?}"
        );
        on_mount
    };
    let (code, out) = m.both_as_user("cat \"$R/secret\"");
    assert_ne!(code, Some(0), "no ACL yet: {out}");
    assert_eq!(
        both_run(&["setfacl", "-m", "u:1000:r", "secret"]).0,
        Some(0)
    );
    assert_eq!(
        both_run(&["setfacl", "-m", "u:1000:rwx,g::r-x", "d"]).0,
        Some(0)
    );
    assert_eq!(
        both_run(&["setfacl", "-d", "-m", "u:1000:r-x,o::-", "d"]).0,
        Some(0)
    );
    let (code, out) = both_run(&["getfacl", "-cn", "secret", "d", "f"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("user:1000:r--"), "{out}");
    let (code, out) = m.both_as_user("cat \"$R/secret\" && touch \"$R/d/byuser\"");
    assert_eq!((code, out.as_str()), (Some(0), "s"));
    // A new file inherits the default ACL (the umask yields to it).
    m.both("create under a default ACL", "d/new", |p| {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(p)
            .map(|_| ())?;
        owner_and_mode(p)
    })
    .expect("create");
    let (code, out) = both_run(&["getfacl", "-cn", "d/new", "d/byuser", "d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("default:user:1000:r-x"), "{out}");
    // On the symlink itself: getfacl -P answers for the link, setfacl -P refuses, as natively.
    both_run(&["getfacl", "-cnP", "l"]);
    both_run(&["setfacl", "-P", "-m", "u:1000:r", "l"]);
    // Removing them closes the door again.
    assert_eq!(both_run(&["setfacl", "-b", "secret"]).0, Some(0));
    let (code, _) = m.both_as_user("cat \"$R/secret\"");
    assert_ne!(code, Some(0));
    assert_eq!(both_run(&["getfacl", "-cn", "secret"]).0, Some(0));
}
