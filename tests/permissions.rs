//! Ownership and permission checks as root and as unprivileged users, each compared with the
//! same operation by the same user on native ext4.

mod common;

use common::*;
use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, symlink};
use std::path::Path;

/// Another unprivileged user, in none of [`GROUP`]'s groups.
const OTHER: u32 = 2000;

/// A group [`USER`] is in only as a *supplementary* group (its primary group is [`GROUP`]).
/// The kernel knows groups by number only, so no `/etc/group` entry is needed: a process or
/// thread whose group list holds it is in it.
const SUPP: u32 = 3000;

/// [`both`] run with the filesystem credentials of `uid`/`gid`.
#[track_caller]
fn user_both<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    uid: u32,
    gid: u32,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> io::Result<T> {
    let what = format!("{what} (as {uid}:{gid})");
    as_user(uid, gid, || both(g, &what, f))
}

/// [`both`] run with the filesystem credentials of `uid`/`gid` and the supplementary groups
/// `groups`.
#[track_caller]
fn groups_both<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    (uid, gid, groups): (u32, u32, &[u32]),
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> io::Result<T> {
    let what = format!("{what} (as {uid}:{gid}, groups {groups:?})");
    as_user_with_groups(uid, gid, groups, || both(g, &what, f))
}

#[track_caller]
fn groups_ok<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    who: (u32, u32, &[u32]),
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> T {
    groups_both(g, who, what, f).unwrap_or_else(|e| panic!("{what} as {who:?}: {e}"))
}

#[track_caller]
fn groups_err<T: Debug + Send>(
    g: &MountGuard,
    (uid, gid, groups): (u32, u32, &[u32]),
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) {
    let what = format!("{what} (as {uid}:{gid}, groups {groups:?})");
    as_user_with_groups(uid, gid, groups, || both_err(g, &what, errno, f))
}

#[track_caller]
fn user_ok<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    uid: u32,
    gid: u32,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> T {
    user_both(g, uid, gid, what, f).unwrap_or_else(|e| panic!("{what} as {uid}: {e}"))
}

#[track_caller]
fn user_err<T: Debug + Send>(
    g: &MountGuard,
    uid: u32,
    gid: u32,
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) {
    let what = format!("{what} (as {uid}:{gid})");
    as_user(uid, gid, || both_err(g, &what, errno, f))
}

fn mode_of(p: &Path) -> io::Result<u32> {
    Ok(fs::symlink_metadata(p)?.mode())
}

fn user_dir(r: &Path, name: &str, uid: u32, gid: u32, mode: u32) {
    fs::create_dir(r.join(name)).unwrap();
    chown(&r.join(name), uid, gid).unwrap();
    chmod(&r.join(name), mode).unwrap();
}

#[test]
fn created_files_are_owned_by_the_creator() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        user_dir(r, "u", USER, GROUP, 0o777);
    });
    let owners = user_ok(&g, USER, GROUP, "create file/dir/symlink/fifo", |r| {
        let u = r.join("u");
        fs::write(u.join("file"), b"mine")?;
        fs::create_dir(u.join("dir"))?;
        symlink("file", u.join("sym"))?;
        mknod(&u.join("fifo"), libc::S_IFIFO | 0o644, 0)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(u.join("excl"))?;
        fs::hard_link(u.join("file"), u.join("hard"))?;
        ["file", "dir", "sym", "fifo", "excl", "hard"]
            .iter()
            .map(|n| attr(&u.join(n)))
            .collect::<io::Result<Vec<_>>>()
    });
    for a in &owners {
        assert_eq!((a.uid, a.gid), (USER, GROUP), "{a:?}");
    }
    let root_owned = both_ok(&g, "root creates in the same dir", |r| {
        fs::write(r.join("u/rootfile"), b"root's")?;
        fs::create_dir(r.join("u/rootdir"))?;
        Ok((attr(&r.join("u/rootfile"))?, attr(&r.join("u/rootdir"))?))
    });
    assert_eq!((root_owned.0.uid, root_owned.0.gid), (0, 0));
    assert_eq!((root_owned.1.uid, root_owned.1.gid), (0, 0));
    // The backing files carry the same owners (not just a translated view).
    assert_eq!(fs::metadata(g.b("u/file")).unwrap().uid(), USER);
    assert_eq!(fs::metadata(g.b("u/rootfile")).unwrap().uid(), 0);
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

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

#[test]
fn search_permission_is_checked_on_cached_dentries_default() {
    search_permission_is_checked_on_cached_dentries(&[]);
}

#[test]
fn search_permission_is_checked_on_cached_dentries_without_default_permissions() {
    search_permission_is_checked_on_cached_dentries(&["nodefault_permissions"]);
}

fn search_permission_is_checked_on_cached_dentries(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(opts, |r| {
        fs::create_dir(r.join("d")).unwrap();
        chmod(&r.join("d"), 0o700).unwrap();
        fs::write(r.join("d/secret"), b"behind a 0700 dir").unwrap();
        chmod(&r.join("d/secret"), 0o644).unwrap();
    });
    // Root walks in first: d and d/secret are now cached dentries with cached attributes.
    let md = fs::metadata(g.m("d/secret")).expect("root stat d/secret");
    assert_eq!(md.ino(), fs::metadata(g.b("d/secret")).unwrap().ino());
    fs::read(g.m("d/secret")).unwrap();
    user_err(&g, USER, GROUP, "stat d/secret", libc::EACCES, |r| {
        fs::metadata(r.join("d/secret"))
    });
    user_err(&g, USER, GROUP, "open d/secret", libc::EACCES, |r| {
        fs::read(r.join("d/secret"))
    });
    user_err(&g, USER, GROUP, "readdir d", libc::EACCES, |r| {
        fs::read_dir(r.join("d"))
    });
    user_err(&g, USER, GROUP, "stat d/missing", libc::EACCES, |r| {
        fs::metadata(r.join("d/missing"))
    });
    // A chmod through the mount must take effect for the next permission check at once.
    both_ok(&g, "chmod d 0711", |r| chmod(&r.join("d"), 0o711));
    user_ok(&g, USER, GROUP, "stat d/secret after chmod 0711", |r| {
        attr(&r.join("d/secret"))
    });
    user_err(
        &g,
        USER,
        GROUP,
        "readdir d after chmod 0711",
        libc::EACCES,
        |r| fs::read_dir(r.join("d")),
    );
    both_ok(&g, "chmod d 0700 again", |r| chmod(&r.join("d"), 0o700));
    user_err(
        &g,
        USER,
        GROUP,
        "stat d/secret after chmod back",
        libc::EACCES,
        |r| fs::metadata(r.join("d/secret")),
    );
}

#[test]
fn setgid_directories_pass_their_group_on() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "make setgid dirs", |r| {
        for (name, mode) in [("g", 0o2775), ("open", 0o2777)] {
            fs::create_dir(r.join(name))?;
            chown(&r.join(name), 0, GROUP)?;
            chmod(&r.join(name), mode)?;
        }
        attr(&r.join("g"))
    });
    let (file, sub) = both_ok(&g, "root creates in a setgid dir", |r| {
        fs::write(r.join("g/file"), b"f")?;
        fs::create_dir(r.join("g/sub"))?;
        mknod(&r.join("g/fifo"), libc::S_IFIFO | 0o600, 0)?;
        symlink("file", r.join("g/sym"))?;
        let attrs = (attr(&r.join("g/file"))?, attr(&r.join("g/sub"))?);
        // mkdir gave 02755 (umask 022); let the group write for the next step.
        chmod(&r.join("g/sub"), 0o2775)?;
        Ok(attrs)
    });
    assert_eq!(file.gid, GROUP, "file did not inherit the dir's group");
    assert_eq!(sub.gid, GROUP, "subdir did not inherit the dir's group");
    assert!(
        u32::from_str_radix(&sub.mode, 8).unwrap() & libc::S_ISGID != 0,
        "subdir lost the setgid bit: {}",
        sub.mode
    );
    let nested = user_ok(&g, USER, GROUP, "member creates in the subdir", |r| {
        fs::write(r.join("g/sub/ufile"), b"u")?;
        fs::create_dir(r.join("g/sub/udir"))?;
        Ok((attr(&r.join("g/sub/ufile"))?, attr(&r.join("g/sub/udir"))?))
    });
    assert_eq!((nested.0.uid, nested.0.gid), (USER, GROUP));
    let outsider = user_ok(&g, OTHER, OTHER, "non-member creates setgid file", |r| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o2755)
            .open(r.join("open/o"))?;
        fs::create_dir(r.join("open/odir"))?;
        Ok((attr(&r.join("open/o"))?, attr(&r.join("open/odir"))?))
    });
    assert_eq!(
        outsider.0.gid, GROUP,
        "group not inherited for a non-member"
    );
    assert_eq!(outsider.0.uid, OTHER);
    assert!(
        u32::from_str_radix(&outsider.0.mode, 8).unwrap() & libc::S_ISGID == 0,
        "a non-member's new file kept S_ISGID: {}",
        outsider.0.mode
    );
    user_ok(&g, OTHER, OTHER, "non-member chmod g+s on own file", |r| {
        chmod(&r.join("open/o"), 0o2755)?;
        mode_of(&r.join("open/o"))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn setuid_is_cleared_on_write_truncate_and_chown_default() {
    setuid_is_cleared_on_write_truncate_and_chown(&[]);
}

#[test]
fn setuid_is_cleared_on_write_truncate_and_chown_passthrough() {
    setuid_is_cleared_on_write_truncate_and_chown(&["passthrough"]);
}

#[test]
fn setuid_is_cleared_on_write_truncate_and_chown_cache_none() {
    setuid_is_cleared_on_write_truncate_and_chown(&["cache=none"]);
}

fn setuid_is_cleared_on_write_truncate_and_chown(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let names = ["w", "t", "ft", "c", "uc", "rw", "sg", "nx", "ow"];
    let passthrough = opts.contains(&"passthrough");
    let g = MountGuard::new(opts);
    let before = g.counters();
    both_ok(&g, "root makes setuid files owned by the user", |r| {
        user_dir(r, "u", USER, GROUP, 0o755);
        // An ordinary file next to them, for the passthrough check below.
        fs::write(r.join("u/plain"), b"plain\n")?;
        chown(&r.join("u/plain"), USER, GROUP)?;
        for n in names {
            let p = r.join("u").join(n);
            fs::write(&p, b"#!/bin/sh\necho hi\n")?;
            chown(&p, USER, GROUP)?;
            let mode = match n {
                "sg" => 0o6775,
                "nx" => 0o6744, // setgid without group exec is mandatory locking, never killed
                "ow" => 0o6777, // writable by anyone: a non-owner's write must kill both bits
                _ => 0o4755,
            };
            chmod(&p, mode)?;
        }
        names
            .iter()
            .map(|n| mode_of(&r.join("u").join(n)))
            .collect::<io::Result<Vec<_>>>()
    });
    if passthrough {
        // The files are ordinary while root creates and writes them (chmod comes after), so
        // that part is passthrough. Writes to setuid/setgid files may legitimately go through
        // the daemon, which is why the rest of the test is not checked but for one more
        // ordinary file, written by its unprivileged owner.
        g.assert_passthrough_since(&before, "root creates and writes ordinary files");
    }
    let before = g.counters();
    user_ok(&g, USER, GROUP, "owner appends to an ordinary file", |r| {
        OpenOptions::new()
            .append(true)
            .open(r.join("u/plain"))?
            .write_all(b"more\n")?;
        fs::read(r.join("u/plain"))
    });
    if passthrough {
        g.assert_passthrough_since(&before, "an unprivileged owner writes an ordinary file");
    }
    let modes = |r: &Path| -> io::Result<Vec<(String, String)>> {
        names
            .iter()
            .map(|n| {
                Ok((
                    n.to_string(),
                    format!("{:o}", mode_of(&r.join("u").join(n))?),
                ))
            })
            .collect()
    };
    let after_write = user_ok(&g, USER, GROUP, "owner writes", |r| {
        OpenOptions::new()
            .append(true)
            .open(r.join("u/w"))?
            .write_all(b"# appended\n")?;
        for n in ["sg", "nx"] {
            OpenOptions::new()
                .write(true)
                .open(r.join("u").join(n))?
                .write_all(b"#")?;
        }
        mode_of(&r.join("u/w"))
    });
    assert_eq!(
        after_write & libc::S_ISUID,
        0,
        "S_ISUID survived a write by the owner (mode {after_write:o})"
    );
    let after_other_write = user_ok(&g, OTHER, OTHER, "non-owner writes", |r| {
        OpenOptions::new()
            .write(true)
            .open(r.join("u/ow"))?
            .write_all(b"#")?;
        mode_of(&r.join("u/ow"))
    });
    assert_eq!(
        after_other_write & (libc::S_ISUID | libc::S_ISGID),
        0,
        "S_ISUID/S_ISGID survived a write by a non-owner (mode {after_other_write:o})"
    );
    let after_truncate = user_ok(&g, USER, GROUP, "owner truncates by path", |r| {
        truncate(&r.join("u/t"), 3)?;
        mode_of(&r.join("u/t"))
    });
    assert_eq!(
        after_truncate & libc::S_ISUID,
        0,
        "S_ISUID survived truncate"
    );
    user_ok(&g, USER, GROUP, "owner ftruncates", |r| {
        OpenOptions::new()
            .write(true)
            .open(r.join("u/ft"))?
            .set_len(1)?;
        mode_of(&r.join("u/ft"))
    });
    let after_chown = both_ok(&g, "root chowns", |r| {
        chown(&r.join("u/c"), USER, GROUP)?;
        mode_of(&r.join("u/c"))
    });
    assert_eq!(after_chown & libc::S_ISUID, 0, "S_ISUID survived chown");
    user_ok(&g, USER, GROUP, "owner chgrps to own group", |r| {
        chown(&r.join("u/uc"), u32::MAX, GROUP)?;
        mode_of(&r.join("u/uc"))
    });
    let root_write = both_ok(&g, "root (CAP_FSETID) writes", |r| {
        OpenOptions::new()
            .append(true)
            .open(r.join("u/rw"))?
            .write_all(b"# root\n")?;
        mode_of(&r.join("u/rw"))
    });
    assert_ne!(
        root_write & libc::S_ISUID,
        0,
        "a write by root cleared S_ISUID"
    );
    both_ok(&g, "final modes", modes);
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn sticky_directory_protects_other_users_files() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        fs::create_dir(r.join("t")).unwrap();
        chmod(&r.join("t"), 0o1777).unwrap();
        fs::write(r.join("t/rootfile"), b"r").unwrap();
    });
    user_ok(&g, USER, GROUP, "create in sticky dir", |r| {
        fs::write(r.join("t/userfile"), b"u")
    });
    user_err(
        &g,
        OTHER,
        OTHER,
        "unlink another user's file",
        libc::EPERM,
        |r| fs::remove_file(r.join("t/userfile")),
    );
    user_err(
        &g,
        OTHER,
        OTHER,
        "rename another user's file",
        libc::EPERM,
        |r| fs::rename(r.join("t/userfile"), r.join("t/mine")),
    );
    user_err(&g, USER, GROUP, "unlink root's file", libc::EPERM, |r| {
        fs::remove_file(r.join("t/rootfile"))
    });
    user_ok(&g, USER, GROUP, "unlink own file", |r| {
        fs::remove_file(r.join("t/userfile"))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

/// A directory its owner may read but not search (mode 0644): listing it gives every name,
/// as natively, while stat of an entry is refused. Readdirplus must not drop the entries
/// the caller cannot look up.
#[test]
fn readable_but_unsearchable_directory_lists_every_name() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        user_dir(r, "d", USER, GROUP, 0o755);
        for n in ["a", "b", "c", "dd", "e"] {
            fs::write(r.join("d").join(n), n).unwrap();
        }
        chmod(&r.join("d"), 0o644).unwrap();
    });
    let names = user_ok(&g, USER, GROUP, "list d", |r| dir_names(&r.join("d")));
    assert_eq!(names.len(), 5, "{names:?}");
    user_err(&g, USER, GROUP, "stat d/a", libc::EACCES, |r| {
        fs::symlink_metadata(r.join("d/a"))
    });
}

/// POSIX ACLs work as natively: an ACL entry grants a user what the mode bits refuse, and a
/// directory's default ACL, not the creator's umask, decides the mode of what is made in it.
#[test]
fn posix_acls_grant_and_default_acls_override_the_umask() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    for root in [g.n(""), g.m("")] {
        let r = root.display();
        let setup = run_as(
            0,
            0,
            &format!(
                "set -e; echo secret > {r}/f; chmod 600 {r}/f; setfacl -m u:{USER}:r {r}/f; \
                 mkdir {r}/dd; setfacl -d -m u::rwx,g::rwx,o::rwx {r}/dd; mkdir {r}/plain"
            ),
        );
        assert!(setup.status.success(), "{r}: {setup:?}");
    }
    for root in [g.n(""), g.m("")] {
        let r = root.display();
        let read = run_as(USER, GROUP, &format!("cat {r}/f"));
        assert_eq!(
            String::from_utf8_lossy(&read.stdout),
            "secret\n",
            "{r}: {read:?}"
        );
        let made = run_as(
            0,
            0,
            &format!("umask 077; touch {r}/dd/new {r}/plain/new; mkdir {r}/dd/sub {r}/plain/sub"),
        );
        assert!(made.status.success(), "{r}: {made:?}");
    }
    for rel in ["dd/new", "dd/sub", "plain/new", "plain/sub"] {
        let native = mode_of(&g.n(rel)).unwrap();
        let mounted = mode_of(&g.m(rel)).unwrap();
        assert_eq!(
            mounted, native,
            "{rel}: mount {mounted:o}, native {native:o}"
        );
    }
    assert_eq!(
        mode_of(&g.n("dd/new")).unwrap() & 0o777,
        0o666,
        "default ACL wins over umask"
    );
    assert_eq!(
        mode_of(&g.n("plain/new")).unwrap() & 0o777,
        0o600,
        "umask applies without one"
    );
}

#[test]
fn supplementary_group_grants_access_like_natively_default() {
    supplementary_group_grants_access_like_natively(&[]);
}

#[test]
fn supplementary_group_grants_access_like_natively_without_default_permissions() {
    supplementary_group_grants_access_like_natively(&["nodefault_permissions"]);
}

/// Files of mode 0660 and 0640 and a directory of mode 0770, all owned by `root:SUPP`, are
/// open to [`USER`] only through its supplementary group [`SUPP`]: the same user without
/// that group is refused, as is [`OTHER`], on the mount exactly as natively. With
/// `default_permissions` the kernel checks the caller's groups (and the daemon, which runs
/// the open as the caller, needs them too); without it nothing but the daemon's switch to
/// the caller's groups (read from `/proc/TID/status`) can grant the access.
fn supplementary_group_grants_access_like_natively(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(opts, |r| {
        for (name, mode) in [("rw", 0o660), ("ro", 0o640)] {
            fs::write(r.join(name), format!("{name} by group\n")).unwrap();
            chown(&r.join(name), 0, SUPP).unwrap();
            chmod(&r.join(name), mode).unwrap();
        }
        fs::create_dir(r.join("gd")).unwrap();
        fs::write(r.join("gd/inner"), b"inside\n").unwrap();
        chmod(&r.join("gd/inner"), 0o644).unwrap();
        chown(&r.join("gd"), 0, SUPP).unwrap();
        chmod(&r.join("gd"), 0o770).unwrap();
    });
    let member: (u32, u32, &[u32]) = (USER, GROUP, &[SUPP]);
    let outsiders: [(u32, u32, &[u32]); 2] = [(USER, GROUP, &[]), (OTHER, OTHER, &[])];
    let refused = |round: &str| {
        for who in outsiders {
            let e = libc::EACCES;
            groups_err(&g, who, &format!("{round}: read 0660"), e, |r| {
                fs::read(r.join("rw"))
            });
            groups_err(
                &g,
                who,
                &format!("{round}: open 0660 for writing"),
                e,
                |r| OpenOptions::new().append(true).open(r.join("rw")),
            );
            groups_err(&g, who, &format!("{round}: read 0640"), e, |r| {
                fs::read(r.join("ro"))
            });
            groups_err(&g, who, &format!("{round}: stat in 0770 dir"), e, |r| {
                fs::symlink_metadata(r.join("gd/inner"))
            });
            groups_err(&g, who, &format!("{round}: read in 0770 dir"), e, |r| {
                fs::read(r.join("gd/inner"))
            });
            groups_err(&g, who, &format!("{round}: list 0770 dir"), e, |r| {
                fs::read_dir(r.join("gd"))
            });
            groups_err(&g, who, &format!("{round}: create in 0770 dir"), e, |r| {
                fs::write(r.join("gd/intruder"), b"x")
            });
        }
    };
    // Outsiders first, before anything is cached; again after the member has warmed the
    // caches, so no cached dentry or attribute lets them in either.
    refused("cold");
    groups_ok(&g, member, "read 0660", |r| fs::read(r.join("rw")));
    groups_ok(&g, member, "append to 0660, read back", |r| {
        OpenOptions::new()
            .append(true)
            .open(r.join("rw"))?
            .write_all(b"member\n")?;
        fs::read(r.join("rw"))
    });
    groups_ok(&g, member, "read 0640", |r| fs::read(r.join("ro")));
    groups_err(&g, member, "write 0640", libc::EACCES, |r| {
        OpenOptions::new().write(true).open(r.join("ro"))
    });
    groups_ok(&g, member, "stat and read in 0770 dir", |r| {
        Ok((attr(&r.join("gd/inner"))?, fs::read(r.join("gd/inner"))?))
    });
    let made = groups_ok(&g, member, "create in 0770 dir, list it", |r| {
        fs::write(r.join("gd/made"), b"by a member\n")?;
        Ok((attr(&r.join("gd/made"))?, dir_names(&r.join("gd"))?))
    });
    assert_eq!(
        (made.0.uid, made.0.gid),
        (USER, GROUP),
        "a new file takes the creator's primary group, not the supplementary one"
    );
    refused("warm");

    // The same as real processes of the user (real, effective and saved ids switched, several
    // supplementary groups), including access(2), which checks the real ids.
    let script = "set -e; cd \"$1\"; cat rw ro gd/inner; test -r rw; test -w rw; \
                  ! test -w ro; echo proc >> rw; touch gd/proc; ls gd";
    let shell = |groups: &[u32], dir: &Path| {
        let out = run_as_with_groups(
            USER,
            GROUP,
            groups,
            &format!("sh -c '{script}' sh '{}'", dir.display()),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).replace(&*dir.to_string_lossy(), "DIR"),
        )
    };
    let groups = [SUPP - 1, SUPP, SUPP + 1];
    let (native, mount) = (shell(&groups, &g.native), shell(&groups, &g.mnt));
    assert_eq!(mount, native, "member process: mount vs native");
    assert_eq!(
        native.0,
        Some(0),
        "member process failed natively: {native:?}"
    );
    let (native, mount) = (shell(&[], &g.native), shell(&[], &g.mnt));
    assert_eq!(mount, native, "process without the group: mount vs native");
    assert!(
        native.0 != Some(0) && native.2.contains("Permission denied"),
        "a process without the group got in natively: {native:?}"
    );
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

/// Listing a directory the caller may read but not search: over FUSE over io_uring the
/// daemon sends its entries without attributes (nodeid 0) and never looks them up as itself,
/// so the inode table does not grow; `ls -l` shows the names with `?` as natively. Over
/// /dev/fuse (fuser's reply cannot carry such an entry) they are looked up as the daemon.
#[test]
fn unsearchable_entries_are_not_looked_up_as_the_daemon_over_io_uring() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        user_dir(r, "d", USER, GROUP, 0o755);
        for i in 0..50 {
            fs::write(r.join("d").join(format!("f{i}")), b"x").unwrap();
        }
        chmod(&r.join("d"), 0o644).unwrap();
    });
    let over_ring = g.over_io_uring();
    let before = g.counters().inodes;
    let ls = |dir: &std::path::Path| {
        let out = run_as(
            USER,
            GROUP,
            &format!("ls -l '{}' 2>&1", dir.join("d").display()),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('-') || l.starts_with('?') || l.starts_with('d'))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let native = ls(&g.native);
    let mount = ls(&g.mnt);
    assert_eq!(mount.len(), 50, "{mount:?}");
    assert_eq!(
        mount, native,
        "ls -l as the user: mount differs from native"
    );
    let grown = g.counters().inodes - before;
    // The directory itself is looked up (the user may search the root); its 50 entries
    // must not be.
    if over_ring {
        assert!(
            grown < 10,
            "{grown} inodes: entries the user may not look up were looked up"
        );
    } else {
        assert!(
            grown >= 50,
            "over /dev/fuse the entries are looked up ({grown})"
        );
    }
}
