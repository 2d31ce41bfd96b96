//! Directories: large readdir, concurrent tree building, renames, and whole-tree copies with
//! cp/diff/rsync.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Long-ish names so 3000 entries need many readdir buffers (fuser replies are 4 KiB+).
fn big_name(i: usize) -> String {
    format!("entry-{i:05}-{}", "x".repeat(i % 40))
}

/// What [`readdir_with_seek`] returns: every (name, d_ino), and the names after seekdir.
type Listing = (Vec<(OsString, u64)>, Vec<OsString>);

/// All entries of `dir` via libc readdir, with d_ino, and a telldir cookie taken after
/// `mark` entries; then seekdir(cookie) and read the rest again.
fn readdir_with_seek(dir: &Path, mark: usize) -> io::Result<Listing> {
    let c = cpath(dir);
    // SAFETY: valid C string; the DIR* is closed below on every path.
    let d = unsafe { libc::opendir(c.as_ptr()) };
    if d.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut all = Vec::new();
    let mut cookie = None;
    let mut after_mark = Vec::new();
    loop {
        if all.len() == mark && cookie.is_none() {
            // SAFETY: d is an open DIR*.
            cookie = Some(unsafe { libc::telldir(d) });
        }
        // SAFETY: d is an open DIR*; the entry is copied out before the next readdir.
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let (name, ino) = unsafe {
            (
                OsStr::from_bytes(CStr::from_ptr((*e).d_name.as_ptr()).to_bytes()).to_owned(),
                (*e).d_ino,
            )
        };
        all.push((name, ino));
    }
    if let Some(cookie) = cookie {
        // SAFETY: d is open and the cookie came from telldir on it.
        unsafe { libc::seekdir(d, cookie) };
        loop {
            // SAFETY: as above.
            let e = unsafe { libc::readdir(d) };
            if e.is_null() {
                break;
            }
            // SAFETY: as above.
            after_mark.push(unsafe {
                OsStr::from_bytes(CStr::from_ptr((*e).d_name.as_ptr()).to_bytes()).to_owned()
            });
        }
    }
    // SAFETY: d is open and not used afterwards.
    unsafe { libc::closedir(d) };
    Ok((all, after_mark))
}

#[test]
fn readdir_of_3000_entries() {
    if !require_root_and_fuse() {
        return;
    }
    const N: usize = 3000;
    let g = MountGuard::with_setup(&[], |r| {
        fs::create_dir(r.join("big")).unwrap();
    });
    // Half created through the mount, half directly in the backing dir.
    both_ok(&g, "create entries", |r| {
        for i in (0..N).step_by(2) {
            fs::write(r.join("big").join(big_name(i)), b"")?;
        }
        fs::create_dir(r.join("big/subdir"))
    });
    for i in (1..N).step_by(2) {
        fs::write(g.b("big").join(big_name(i)), b"").unwrap();
        fs::write(g.n("big").join(big_name(i)), b"").unwrap();
    }
    let native = dir_names(&g.n("big")).unwrap();
    let mount = dir_names(&g.m("big")).unwrap();
    assert_eq!(native.len(), N + 1);
    let missing: Vec<_> = native.difference(&mount).take(10).collect();
    let extra: Vec<_> = mount.difference(&native).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "readdir of {} entries: {} missing (e.g. {missing:?}), {} extra (e.g. {extra:?})",
        N + 1,
        native.difference(&mount).count(),
        mount.difference(&native).count()
    );

    // d_ino from readdir equals the backing st_ino, and so does a stat through the mount.
    let mut bad_ino = Vec::new();
    for e in fs::read_dir(g.m("big")).unwrap() {
        let e = e.unwrap();
        let backing = fs::symlink_metadata(g.b("big").join(e.file_name())).unwrap();
        let through = fs::symlink_metadata(e.path()).unwrap();
        if e.ino() != backing.ino() || through.ino() != backing.ino() {
            bad_ino.push((e.file_name(), e.ino(), through.ino(), backing.ino()));
        }
    }
    assert!(
        bad_ino.is_empty(),
        "{} entries whose (d_ino, st_ino) differ from the backing st_ino, e.g. {:?}",
        bad_ino.len(),
        &bad_ino[..bad_ino.len().min(5)]
    );

    // "." and ".." are listed, no name twice, and telldir/seekdir resume where they were.
    let (all, after) = readdir_with_seek(&g.m("big"), 1700).unwrap();
    let names: Vec<&OsString> = all.iter().map(|(n, _)| n).collect();
    let unique: BTreeSet<&OsString> = names.iter().copied().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "readdir returned duplicate names"
    );
    assert!(unique.contains(&OsString::from(".")) && unique.contains(&OsString::from("..")));
    assert_eq!(names.len(), N + 3);
    let expect: Vec<&OsString> = names[1700..].to_vec();
    let got: Vec<&OsString> = after.iter().collect();
    assert!(
        got == expect,
        "after seekdir(telldir at 1700) got {} names, expected {} (first {:?} vs {:?})",
        got.len(),
        expect.len(),
        got.first(),
        expect.first()
    );
    let dot = all.iter().find(|(n, _)| n == ".").unwrap().1;
    assert_eq!(dot, fs::metadata(g.b("big")).unwrap().ino(), "d_ino of '.'");

    // Shrinking the directory is seen as well.
    both_ok(&g, "remove most entries", |r| {
        for i in 0..N - 5 {
            fs::remove_file(r.join("big").join(big_name(i)))?;
        }
        dir_names(&r.join("big"))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

/// The tree that `concurrent_writers_in_separate_subtrees` builds, file by file.
fn subtree_file(t: usize, i: usize) -> (PathBuf, Vec<u8>) {
    (
        PathBuf::from(format!("t{t}/d{}/f{i:03}", i % 7)),
        format!("thread {t} file {i} {}", "z".repeat(i)).into_bytes(),
    )
}

#[test]
fn concurrent_writers_in_separate_subtrees() {
    if !require_root_and_fuse() {
        return;
    }
    const THREADS: usize = 4;
    const FILES: usize = 200;
    let g = MountGuard::new(&[]);
    let build = |root: &Path, t: usize| -> io::Result<()> {
        for d in 0..7 {
            fs::create_dir_all(root.join(format!("t{t}/d{d}")))?;
        }
        for i in 0..FILES {
            let (rel, data) = subtree_file(t, i);
            fs::write(root.join(&rel), &data)?;
            if i % 50 == 0 {
                fs::rename(root.join(&rel), root.join(format!("t{t}/renamed{i}")))?;
                fs::write(root.join(&rel), &data)?;
            }
        }
        Ok(())
    };
    for t in 0..THREADS {
        build(&g.native, t).unwrap();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let mnt = g.mnt.clone();
                s.spawn(move || build(&mnt, t))
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            h.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("writer {t} failed: {e}"));
        }
    });
    for t in 0..THREADS {
        for i in 0..FILES {
            let (rel, data) = subtree_file(t, i);
            assert_eq!(
                fs::read(g.backing.join(&rel)).unwrap(),
                data,
                "{}",
                rel.display()
            );
        }
    }
    assert_mirror(&g);
}

#[test]
fn renames_across_directories() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "build", |r| {
        for d in ["a", "b", "c", "a/sub", "a/sub/deeper"] {
            fs::create_dir(r.join(d))?;
        }
        for i in 0..50 {
            fs::write(r.join(format!("a/f{i}")), format!("file {i}"))?;
        }
        fs::write(r.join("a/sub/deeper/leaf"), b"leaf")?;
        Ok(())
    });
    let ino = |rel: &str| fs::metadata(g.m(rel)).unwrap().ino();
    let leaf_ino = ino("a/sub/deeper/leaf");
    let f7_ino = ino("a/f7");
    both_ok(&g, "shuffle files between dirs", |r| {
        let mut rng = Rng(77);
        let dirs = ["a", "b", "c"];
        let mut at: BTreeMap<usize, &str> = (0..50).map(|i| (i, "a")).collect();
        for _ in 0..300 {
            let i = rng.below(50) as usize;
            let to = dirs[rng.below(3) as usize];
            let from = at[&i];
            fs::rename(r.join(format!("{from}/f{i}")), r.join(format!("{to}/f{i}")))?;
            at.insert(i, to);
        }
        Ok(at.into_iter().collect::<Vec<_>>())
    });
    both_ok(&g, "move a subtree, then rename its parent", |r| {
        fs::rename(r.join("a/sub"), r.join("c/moved"))?;
        fs::rename(r.join("c"), r.join("c2"))?;
        read_all(&r.join("c2/moved/deeper/leaf"))
    });
    assert_eq!(
        ino("c2/moved/deeper/leaf"),
        leaf_ino,
        "ino after moving the subtree"
    );
    both_err(&g, "old subtree path", libc::ENOENT, |r| {
        attr(&r.join("a/sub/deeper/leaf"))
    });
    // Every file is still readable through the mount with its original contents.
    for i in 0..50 {
        let found: Vec<_> = ["a", "b", "c2"]
            .iter()
            .filter_map(|d| fs::read(g.m(&format!("{d}/f{i}"))).ok())
            .collect();
        assert_eq!(found, vec![format!("file {i}").into_bytes()], "f{i}");
    }
    let f7_now = ["a", "b", "c2"]
        .iter()
        .find_map(|d| fs::metadata(g.m(&format!("{d}/f7"))).ok())
        .unwrap();
    assert_eq!(f7_now.ino(), f7_ino);
    // Directory nlink reflects moved subdirectories.
    both_ok(&g, "dir attrs", |r| {
        Ok((attr(&r.join("a"))?, attr(&r.join("c2"))?, attr(r)?))
    });
    assert_mirror(&g);
}

#[test]
fn lookups_after_the_kernel_forgets_inodes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        fs::create_dir(r.join("d")).unwrap();
        for i in 0..300 {
            fs::write(r.join(format!("d/f{i}")), format!("{i}")).unwrap();
        }
        for i in 0..50 {
            fs::hard_link(r.join(format!("d/f{i}")), r.join(format!("d/h{i}"))).unwrap();
        }
    });
    let held = fs::File::open(g.m("d/f7")).unwrap();
    // What the kernel must keep while `held` is open: the root, d and d/f7.
    const PINNED: u64 = 3;
    for round in 0..3 {
        // Look everything up (readdir + stat), then make the kernel forget it.
        let names = dir_names(&g.m("d")).unwrap();
        assert_eq!(names.len(), 350, "round {round}");
        for n in &names {
            let m = fs::symlink_metadata(g.m("d").join(n)).unwrap();
            let b = fs::symlink_metadata(g.b("d").join(n)).unwrap();
            assert_eq!(m.ino(), b.ino(), "round {round}: {n:?}");
        }
        for i in 0..50 {
            assert_eq!(
                fs::metadata(g.m(&format!("d/h{i}"))).unwrap().ino(),
                fs::metadata(g.m(&format!("d/f{i}"))).unwrap().ino(),
                "round {round}: hard links differ"
            );
        }
        // 300 distinct inodes (the hard links share theirs), d and the root.
        let looked_up = g.counters();
        assert!(
            looked_up.inodes >= 302,
            "round {round}: the daemon holds {} inodes after looking up 350 names: {}",
            looked_up.inodes,
            looked_up.line
        );
        forget_all_but_pinned(&g, PINNED, &format!("round {round}"));
        let mut s = String::new();
        use std::io::{Read, Seek};
        let mut f = &held;
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "7", "round {round}: an fd held across FORGET");
        assert_eq!(fs::read_to_string(g.m("d/f299")).unwrap(), "299");
    }
    // Renames and unlinks of forgotten inodes still work.
    forget_all_but_pinned(&g, PINNED, "before rename and unlink");
    fs::rename(g.m("d/f1"), g.m("d/renamed")).unwrap();
    fs::remove_file(g.m("d/f2")).unwrap();
    assert_eq!(fs::read_to_string(g.b("d/renamed")).unwrap(), "1");
    assert!(!g.b("d/f2").exists());
}

#[test]
fn readdir_during_concurrent_churn_lists_stable_entries_once() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        fs::create_dir(r.join("d")).unwrap();
        for i in 0..500 {
            fs::write(r.join(format!("d/stable{i:03}")), b"").unwrap();
        }
    });
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let a = g.m(&format!("d/churn{}", i % 50));
                let b = g.m(&format!("d/moved{}", i % 50));
                fs::write(&a, b"c")?;
                fs::rename(&a, &b)?;
                if i.is_multiple_of(3) {
                    fs::remove_file(&b)?;
                }
                i += 1;
            }
            io::Result::Ok(i)
        });
        for pass in 0..20 {
            let mut seen = BTreeMap::new();
            for e in fs::read_dir(g.m("d")).unwrap() {
                let name = e.unwrap().file_name();
                *seen.entry(name).or_insert(0) += 1;
            }
            let stable: Vec<_> = seen
                .iter()
                .filter(|(n, _)| n.to_string_lossy().starts_with("stable"))
                .collect();
            let dups: Vec<_> = seen.iter().filter(|&(_, &c)| c > 1).collect();
            assert!(dups.is_empty(), "pass {pass}: names listed twice: {dups:?}");
            assert_eq!(stable.len(), 500, "pass {pass}: stable entries missing");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let ops = churn.join().unwrap().expect("churn thread");
        assert!(ops > 0, "churn thread did nothing");
    });
}

/// Picks top-level entries of /usr/share/doc (sorted) up to about `budget` bytes.
fn doc_subset(budget: u64) -> Vec<PathBuf> {
    fn size(p: &Path) -> u64 {
        let Ok(md) = fs::symlink_metadata(p) else {
            return 0;
        };
        if md.is_dir() {
            fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0)
        } else {
            md.len()
        }
    }
    let mut entries: Vec<PathBuf> = fs::read_dir("/usr/share/doc")
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    let mut total = 0;
    let mut picked = Vec::new();
    for e in entries {
        let s = size(&e);
        if total + s <= budget {
            total += s;
            picked.push(e);
        }
    }
    picked
}

fn check_cmd(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cp_a_diff_and_rsync_round_trip() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    // Stage a copy on the same ext4 disk, with extra features cp -a must carry over.
    let src = g.root.join("src");
    fs::create_dir(&src).unwrap();
    let mut subset = doc_subset(12 << 20);
    if subset.is_empty() {
        // No docs on this machine: build something comparable.
        let seed = g.root.join("seed");
        fs::create_dir_all(seed.join("pkg/sub")).unwrap();
        for i in 0..200 {
            fs::write(seed.join(format!("pkg/sub/file{i}")), "doc ".repeat(i * 10)).unwrap();
        }
        subset.push(seed.join("pkg"));
    }
    let mut args: Vec<&OsStr> = vec![OsStr::new("-a")];
    args.extend(subset.iter().map(|p| p.as_os_str()));
    args.push(src.as_os_str());
    check_cmd("cp -a /usr/share/doc subset", &run("cp", &args));
    fs::create_dir(src.join("extras")).unwrap();
    fs::write(src.join("extras/hard1"), b"hard").unwrap();
    fs::hard_link(src.join("extras/hard1"), src.join("extras/hard2")).unwrap();
    fs::write(src.join("extras/xattr"), b"x").unwrap();
    lsetxattr(&src.join("extras/xattr"), "user.note", b"kept", 0).unwrap();
    std::os::unix::fs::symlink("hard1", src.join("extras/sym")).unwrap();
    chown(&src.join("extras/hard1"), USER, GROUP).unwrap();
    chmod(&src.join("extras/xattr"), 0o4711).unwrap();

    let copy_in = |dst: &Path| {
        check_cmd(
            "cp -a into the tree",
            &run(
                "cp",
                &[
                    OsStr::new("-a"),
                    src.as_os_str(),
                    dst.join("doc").as_os_str(),
                ],
            ),
        );
    };
    copy_in(&g.native);
    copy_in(&g.mnt);
    let diff = run(
        "diff",
        &[
            OsStr::new("-r"),
            OsStr::new("--no-dereference"),
            src.as_os_str(),
            g.m("doc").as_os_str(),
        ],
    );
    check_cmd("diff -r source vs mount", &diff);
    assert_trees_equal(
        &g.native,
        &g.backing,
        TreeOpts {
            mtime: true,
            ino: false,
        },
    );
    assert_trees_equal(
        &src,
        &g.m("doc"),
        TreeOpts {
            mtime: true,
            ino: false,
        },
    );

    // rsync back out, then a dry run must find nothing to do (in either direction).
    let out = g.root.join("out");
    let slash = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("/");
        s
    };
    let (m_doc, out_s, src_s) = (slash(&g.m("doc")), slash(&out), slash(&src));
    check_cmd(
        "rsync -aHX mount -> out",
        &run("rsync", &[OsStr::new("-aHX"), &m_doc, &out_s]),
    );
    for (what, from, to) in [
        ("rsync -ani mount -> out", &m_doc, &out_s),
        ("rsync -ani source -> mount", &src_s, &m_doc),
    ] {
        let dry = run("rsync", &[OsStr::new("-aniHX"), OsStr::new("-c"), from, to]);
        check_cmd(what, &dry);
        let itemized = String::from_utf8_lossy(&dry.stdout);
        assert!(
            itemized.trim().is_empty(),
            "{what} reports differences:\n{itemized}"
        );
    }
    assert_trees_equal(
        &src,
        &out,
        TreeOpts {
            mtime: true,
            ino: false,
        },
    );
}

/// More inodes than the daemon may keep fds for (`inode_fds=50`): the fd LRU closes the
/// least recently used and reopens them by handle, and every file still works, by name and
/// through fds opened long before. The daemon's open fds (`/proc/PID/fd`) stay within the
/// budget plus what it holds besides inode fds, while the kernel holds many more inodes.
#[test]
fn more_inodes_than_inode_fds() {
    if !require_root_and_fuse() {
        return;
    }
    const BUDGET: usize = 50;
    // Everything but inode fds, with two workers: stdin/out/err, BACKING (twice), /proc and
    // /proc/self/fd, a /dev/fuse fd per worker and the session's, an io_uring per worker and
    // the main thread's, the open file behind `early` and a file or directory a request
    // opens for its duration. Measured: 17; the rest is margin.
    const ALLOWANCE: usize = 24;
    let g = MountGuard::with_setup(&["inode_fds=50", "threads=2"], |r| {
        for d in 0..4 {
            fs::create_dir(r.join(format!("d{d}"))).unwrap();
            for f in 0..150 {
                fs::write(r.join(format!("d{d}/f{f}")), format!("{d}/{f}")).unwrap();
            }
        }
    });
    let early = fs::File::open(g.m("d0/f0")).unwrap();
    let mut peak: Vec<String> = g.daemon_fds();
    for round in 0..2 {
        for d in 0..4 {
            for f in 0..150 {
                let fds = g.daemon_fds();
                if fds.len() > peak.len() {
                    peak = fds;
                }
                let path = g.m(&format!("d{d}/f{f}"));
                let meta = fs::metadata(&path).unwrap();
                assert_eq!(
                    meta.ino(),
                    fs::metadata(g.b(&format!("d{d}/f{f}"))).unwrap().ino()
                );
                assert_eq!(
                    fs::read_to_string(&path).unwrap(),
                    format!("{d}/{f}"),
                    "round {round}"
                );
            }
        }
    }
    let held = g.counters();
    assert!(
        held.inodes > (BUDGET + ALLOWANCE) as u64,
        "the test's premise: the kernel should hold more inodes than the daemon may keep \
         fds for, but the daemon's table has {}: {}",
        held.inodes,
        held.line
    );
    assert!(
        peak.len() <= BUDGET + ALLOWANCE + uringfs::creds::STATUS_FILES,
        "the daemon had {} fds open with inode_fds={BUDGET} (allowance {ALLOWANCE}):\n{}",
        peak.len(),
        fd_summary(&peak)
    );
    fs::hard_link(g.m("d3/f149"), g.m("d0/link")).unwrap();
    std::os::unix::fs::chown(g.m("d1/f7"), Some(1000), Some(1000)).unwrap();
    fs::set_permissions(
        g.m("d2/f9"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &early, &mut text).unwrap();
    assert_eq!(text, "0/0");
    assert_eq!(fs::metadata(g.b("d3/f149")).unwrap().nlink(), 2);
    assert_eq!(fs::metadata(g.b("d1/f7")).unwrap().uid(), 1000);
    assert_eq!(fs::metadata(g.b("d2/f9")).unwrap().mode() & 0o777, 0o600);
    // Plus the status files of the daemon's last callers, a cache of fixed size.
    let fds = g.daemon_fds();
    assert!(
        fds.len() <= BUDGET + ALLOWANCE + uringfs::creds::STATUS_FILES,
        "the daemon has {} fds open at the end with inode_fds={BUDGET}:\n{}",
        fds.len(),
        fd_summary(&fds)
    );
    let daemon_log = g.log_text();
    assert!(
        !daemon_log.contains("ERROR"),
        "daemon errors:\n{daemon_log}"
    );
}

/// The targets of a list of fds, counted ("12 x /path/to/backing/d1/f7"-like lines, with
/// files under one directory folded into the directory).
fn fd_summary(fds: &[String]) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for target in fds {
        let kind = match target.rsplit_once('/') {
            Some((dir, _)) if target.contains("/backing/") => format!("{dir}/*"),
            _ => target.clone(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
        .iter()
        .map(|(kind, n)| format!("  {n:4} {kind}"))
        .collect::<Vec<_>>()
        .join("\n")
}
