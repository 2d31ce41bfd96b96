//! Mount options whose effect shows only over time, in BACKING or in the requests: `noatime`,
//! the timeouts, the directory cache of `cache=always`.

mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// BACKING's atime of `p`, in seconds.
fn atime(p: &Path) -> i64 {
    fs::metadata(p).expect("stat").atime()
}

/// A file in BACKING whose atime is far in the past: natively (relatime) the next read
/// updates it.
fn old_file(g: &MountGuard, name: &str, owner: u32) {
    let p = g.b(name);
    fs::write(&p, b"contents").unwrap();
    chown(&p, owner, owner).unwrap();
    chmod(&p, 0o644).unwrap();
    utimensat(&p, [ts(946_684_800, 0), ts(946_684_800, 0)], 0).unwrap();
}

fn read_through(g: &MountGuard, name: &str) {
    let mut buf = Vec::new();
    fs::File::open(g.m(name))
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    assert_eq!(buf, b"contents");
}

/// `-o noatime`: reads through the mirror, by the owner or by another user (who may not set
/// O_NOATIME itself), leave BACKING's atimes alone; without it they update them as BACKING's
/// relatime mount does.
#[test]
fn noatime_keeps_backing_atimes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&["noatime", "cache=none"]);
    old_file(&g, "mine", USER);
    old_file(&g, "theirs", 0);
    as_user(USER, GROUP, || {
        read_through(&g, "mine");
        read_through(&g, "theirs");
    });
    read_through(&g, "theirs");
    assert_eq!(
        atime(&g.b("mine")),
        946_684_800,
        "the owner's read moved the atime"
    );
    assert_eq!(
        atime(&g.b("theirs")),
        946_684_800,
        "a reader's read moved the atime"
    );
    let mnt = mount_at(&g.mnt).expect("mounted");
    assert!(mnt.mount_opts.split(',').any(|o| o == "noatime"), "{mnt:?}");
    drop(g);

    let g = MountGuard::new(&["cache=none"]);
    old_file(&g, "f", USER);
    read_through(&g, "f");
    assert_ne!(
        atime(&g.b("f")),
        946_684_800,
        "without noatime a read updates the atime"
    );
}

/// `negative_timeout`: a missing name is remembered as missing for that long, so a file made
/// directly in BACKING meanwhile stays unseen; without it, it is seen at once. A create through
/// the mount is always seen.
#[test]
fn negative_timeout_caches_missing_names() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&["negative_timeout=600"]);
    let lookups = g.counters().requests("lookup");
    assert!(!g.m("later").exists());
    fs::write(g.b("later"), b"x").unwrap();
    assert!(!g.m("later").exists(), "the negative entry was not cached");
    assert_eq!(
        g.counters().requests("lookup") - lookups,
        1,
        "the second miss asked the daemon again"
    );
    assert!(!g.m("made").exists());
    fs::write(g.m("made"), b"y").unwrap();
    assert_eq!(fs::read(g.m("made")).unwrap(), b"y");
    drop(g);

    let g = MountGuard::new(&[]);
    assert!(!g.m("later").exists());
    fs::write(g.b("later"), b"x").unwrap();
    assert!(
        g.m("later").exists(),
        "without negative_timeout a miss is not cached"
    );
}

/// `attr_timeout=0` under `cache=always`: attributes are asked for every time (a size changed in
/// BACKING shows at once), while the data and names keep the preset's caching.
#[test]
fn attr_timeout_overrides_the_cache_preset() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&["cache=always", "attr_timeout=0"]);
    fs::write(g.b("f"), b"1234").unwrap();
    assert_eq!(fs::metadata(g.m("f")).unwrap().len(), 4);
    fs::write(g.b("f"), b"123456789").unwrap();
    assert_eq!(fs::metadata(g.m("f")).unwrap().len(), 9);
}

/// The names of `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn listing_requests(c: &Counters) -> u64 {
    c.requests("readdir") + c.requests("readdirplus")
}

/// `cache=always` keeps a directory's listing in the kernel across opens: listing it again
/// reaches the daemon with no READDIR, and every change made through the mount (create,
/// rename, unlink, mkdir) shows in the next listing, which then matches BACKING's.
#[test]
fn cache_always_keeps_listings_until_the_mount_changes_them() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["cache=always"], |b| {
        for i in 0..50 {
            fs::write(b.join(format!("f{i:02}")), b"x").unwrap();
        }
    });
    let first = listing(&g.m(""));
    assert_eq!(first, listing(&g.b("")));
    let before = g.counters();
    assert_eq!(listing(&g.m("")), first);
    let again = g.counters().since(&before);
    assert_eq!(
        listing_requests(&again),
        0,
        "a second listing under cache=always read the directory again: {}",
        again.line
    );
    let changes: [(&str, &dyn Fn()); 4] = [
        ("create", &|| fs::write(g.m("new"), b"y").unwrap()),
        ("rename", &|| {
            fs::rename(g.m("f00"), g.m("renamed")).unwrap()
        }),
        ("unlink", &|| fs::remove_file(g.m("f01")).unwrap()),
        ("mkdir", &|| fs::create_dir(g.m("sub")).unwrap()),
    ];
    for (what, change) in changes {
        change();
        assert_eq!(
            listing(&g.m("")),
            listing(&g.b("")),
            "the listing after a {what} through the mount"
        );
    }
}

/// Under the default `cache=auto` a directory is read afresh at every open: a name made in
/// BACKING shows in the very next listing.
#[test]
fn cache_auto_lists_backing_changes_at_once() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    fs::write(g.b("a"), b"x").unwrap();
    assert_eq!(listing(&g.m("")), listing(&g.b("")));
    fs::write(g.b("b"), b"x").unwrap();
    assert_eq!(listing(&g.m("")), vec!["a".to_string(), "b".to_string()]);
    fs::remove_file(g.b("a")).unwrap();
    assert_eq!(listing(&g.m("")), vec!["b".to_string()]);
}
