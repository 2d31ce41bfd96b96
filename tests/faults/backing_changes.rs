//! BACKING changed behind the mount's back.

use super::*;

/// Files written, truncated, renamed, chmodded and deleted, and directory entries added and
/// removed, directly in BACKING while mounted: each change shows through the mount, at once
/// with `cache=none`, within the TTL with the default cache. Every path is looked at through
/// the mount before it changes, so the kernel has it cached.
fn backing_changes(opts: &[&str], at_once: bool) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let f = g.m("file");
    let has = |data: &[u8]| {
        let data = data.to_vec();
        move |v: &Result<(u64, Vec<u8>), i32>| v == &Ok((data.len() as u64, data.clone()))
    };

    // Looked up (and not found) first, then created in BACKING.
    assert_eq!(file_view(&f), Err(libc::ENOENT));
    fs::write(g.b("file"), b"one").expect("create in BACKING");
    expect_seen("a new file", at_once, || file_view(&f), has(b"one"));

    // Written (grown), held open through the mount meanwhile.
    let held = File::open(&f).expect("open through the mount");
    let mut grown = b"one".to_vec();
    grown.extend(content("grown", 100_000));
    fs::write(g.b("file"), &grown).expect("rewrite in BACKING");
    expect_seen("a rewritten file", at_once, || file_view(&f), has(&grown));
    if at_once {
        // Direct I/O: an fd opened before the change reads the new data too.
        let mut buf = vec![0; grown.len() + 10];
        let n = held.read_at(&mut buf, 0).expect("read the held fd");
        assert!(
            buf[..n] == grown[..],
            "the held fd reads {}",
            digest(&buf[..n])
        );
    }
    drop(held);

    // Truncated, then chmodded.
    truncate(&g.b("file"), 2).expect("truncate in BACKING");
    expect_seen("a truncated file", at_once, || file_view(&f), has(b"on"));
    fs::set_permissions(g.b("file"), fs::Permissions::from_mode(0o600)).expect("chmod");
    expect_seen(
        "a chmodded file",
        at_once,
        || {
            fs::metadata(&f)
                .map(|m| m.mode() & 0o7777)
                .map_err(|e| errno(&e))
        },
        |v| *v == Ok(0o600),
    );

    // Renamed: the old name goes, the new one comes with the data.
    let r = g.m("renamed");
    assert_eq!(file_view(&r), Err(libc::ENOENT));
    fs::rename(g.b("file"), g.b("renamed")).expect("rename in BACKING");
    expect_seen(
        "a rename's old name",
        at_once,
        || file_view(&f),
        |v| *v == Err(libc::ENOENT),
    );
    expect_seen("a rename's new name", at_once, || file_view(&r), has(b"on"));
    let names = |p: &Path| {
        dir_names(p).map(|n| {
            n.into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
    };
    expect_seen(
        "a rename in a listing",
        at_once,
        || names(&g.mnt).map_err(|e| errno(&e)),
        |v| *v == Ok(vec!["renamed".to_string()]),
    );

    // Deleted.
    fs::remove_file(g.b("renamed")).expect("unlink in BACKING");
    expect_seen(
        "a deleted file",
        at_once,
        || file_view(&r),
        |v| *v == Err(libc::ENOENT),
    );
    expect_seen(
        "a deletion in a listing",
        at_once,
        || names(&g.mnt).map_err(|e| errno(&e)),
        |v| *v == Ok(vec![]),
    );

    // A directory's entries, and the directory itself.
    fs::create_dir(g.b("d")).expect("mkdir in BACKING");
    expect_seen(
        "a new directory",
        at_once,
        || names(&g.m("d")).map_err(|e| errno(&e)),
        |v| *v == Ok(vec![]),
    );
    fs::write(g.b("d/x"), b"x").expect("create in BACKING");
    expect_seen(
        "an entry in a directory",
        at_once,
        || names(&g.m("d")).map_err(|e| errno(&e)),
        |v| *v == Ok(vec!["x".to_string()]),
    );
    fs::remove_file(g.b("d/x")).expect("unlink in BACKING");
    fs::remove_dir(g.b("d")).expect("rmdir in BACKING");
    expect_seen(
        "a deleted directory",
        at_once,
        || names(&g.m("d")).map_err(|e| errno(&e)),
        |v| *v == Err(libc::ENOENT),
    );

    // And the daemon still serves.
    fs::write(g.m("last"), b"last").expect("create through the mount");
    assert_eq!(fs::read(g.b("last")).expect("read in BACKING"), b"last");
}

#[test]
fn backing_changes_show_at_once_with_cache_none_default() {
    backing_changes(&["cache=none"], true);
}

#[test]
fn backing_changes_show_at_once_with_cache_none_devfuse() {
    backing_changes(&["cache=none", "transport=devfuse"], true);
}

#[test]
fn backing_changes_show_within_the_ttl_default() {
    backing_changes(DEFAULT, false);
}

#[test]
fn backing_changes_show_within_the_ttl_devfuse() {
    backing_changes(DEVFUSE, false);
}
