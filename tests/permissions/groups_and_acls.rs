//! POSIX ACLs and supplementary groups grant access as natively.

use super::*;

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
