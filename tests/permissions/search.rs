//! Directory search permission: on cached dentries, for listings, and never bypassed by the
//! daemon's own lookups.

use super::*;

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
