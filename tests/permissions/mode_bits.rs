//! Setuid, setgid and sticky bits: cleared on write, truncate and chown; sticky directories.

use super::*;

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
