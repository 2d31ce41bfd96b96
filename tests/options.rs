//! Mount options whose effect shows only over time or in BACKING: `noatime`, the timeouts.

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
