//! Stale inodes, also of inodes whose fd the LRU closed.

use super::*;

/// How many files the stale-inode test touches: more than twice the `inode_fds=16` budget.
const STALE_FILES: usize = 40;

/// Version `generation` of file `i`: a different length for every file and version, and
/// contents that name both.
fn version(i: usize, generation: usize) -> Vec<u8> {
    content(
        &format!("f{i:02} v{generation}"),
        3000 + i * 37 + generation * 1001,
    )
}

/// What a path shows through the mount, classified: which version of which file its size and
/// contents are, or the errno.
#[derive(Debug, Clone, PartialEq)]
enum View {
    /// The size and contents of `(file, version)`.
    Is(usize, usize),
    /// An errno from stat or read.
    Errno(i32),
    /// Anything else: another file's data, or a mix.
    Other(String),
}

fn view_of(p: &Path) -> View {
    match file_view(p) {
        Err(code) => View::Errno(code),
        Ok((size, data)) => {
            for i in 0..STALE_FILES {
                for generation in 0..2 {
                    let v = version(i, generation);
                    if data == v && size == v.len() as u64 {
                        return View::Is(i, generation);
                    }
                }
            }
            View::Other(format!(
                "size {size}, data {}",
                short_debug(&String::from_utf8_lossy(&data[..data.len().min(40)]))
            ))
        }
    }
}

/// Files stat'ed and read through a mount with `inode_fds=16`, so the LRU closes the fds of
/// the early ones, are then deleted, replaced or renamed over directly in BACKING and looked
/// at through the mount again. Each look must answer ENOENT, ESTALE, the path's current file
/// in BACKING or (only while the default cache's TTL runs) the file it named before, never
/// another file's data or a mix; within the TTL plus slack it must answer what BACKING has.
/// Fds opened through the mount before the change go on reading the file they opened, as
/// natively. The daemon must serve on afterwards.
fn stale_inodes(opts: &[&str], cache_none: bool) {
    if !require_root_and_fuse() {
        return;
    }
    let mut all = vec!["inode_fds=16"];
    all.extend_from_slice(opts);
    let g = MountGuard::new(&all);
    let name = |i: usize| format!("f{i:02}");
    for i in 0..STALE_FILES {
        fs::write(g.b(&name(i)), version(i, 0)).expect("create in BACKING");
    }
    // Two held open through the mount, then every file stat'ed and read.
    let held: Vec<File> = (0..2)
        .map(|i| File::open(g.m(&name(i))).expect("open through the mount"))
        .collect();
    for i in 0..STALE_FILES {
        assert_eq!(
            view_of(&g.m(&name(i))),
            View::Is(i, 0),
            "{} first read",
            name(i)
        );
    }
    // The LRU closed the early inodes' fds: no daemon fd names f02..f09 any more.
    let fds = g.daemon_fds();
    for i in 2..10 {
        let p = g.b(&name(i)).to_string_lossy().into_owned();
        assert!(
            !fds.contains(&p),
            "{} still has an fd in the daemon with inode_fds=16: {fds:?}",
            name(i)
        );
    }

    // What each name must come to show; `None` = gone.
    let mut expected: BTreeMap<usize, Option<(usize, usize)>> = BTreeMap::new();
    let before: BTreeMap<usize, u64> = (0..STALE_FILES)
        .map(|i| (i, fs::metadata(g.b(&name(i))).expect("stat").ino()))
        .collect();
    // Held open (fd evicted from the LRU or not): replaced, and deleted.
    fs::remove_file(g.b(&name(0))).expect("unlink");
    fs::write(g.b(&name(0)), version(0, 1)).expect("replace");
    expected.insert(0, Some((0, 1)));
    fs::remove_file(g.b(&name(1))).expect("unlink");
    expected.insert(1, None);
    // Evicted, only stat'ed and read: replaced (the new files may reuse the inode numbers),
    // deleted, and renamed over (f08 becomes f09's file).
    for i in 2..6 {
        fs::remove_file(g.b(&name(i))).expect("unlink");
        fs::write(g.b(&name(i)), version(i, 1)).expect("replace");
        expected.insert(i, Some((i, 1)));
    }
    for i in 6..8 {
        fs::remove_file(g.b(&name(i))).expect("unlink");
        expected.insert(i, None);
    }
    fs::rename(g.b(&name(9)), g.b(&name(8))).expect("rename over");
    expected.insert(8, Some((9, 0)));
    expected.insert(9, None);
    // Recent, fd still open in the daemon: replaced and deleted.
    fs::remove_file(g.b(&name(35))).expect("unlink");
    fs::write(g.b(&name(35)), version(35, 1)).expect("replace");
    expected.insert(35, Some((35, 1)));
    fs::remove_file(g.b(&name(36))).expect("unlink");
    expected.insert(36, None);
    // Which names now hold an inode number a deleted file had (ext4 reuses them at once):
    // there only the generation in the daemon's file handle tells the files apart.
    let reused: Vec<String> = (0..STALE_FILES)
        .filter_map(|i| {
            let ino = fs::metadata(g.b(&name(i))).ok()?.ino();
            let (&was, _) = before.iter().find(|&(&j, &old)| old == ino && j != i)?;
            Some(format!("{} has {}'s", name(i), name(was)))
        })
        .chain(
            expected
                .iter()
                .filter(|&(&i, e)| {
                    e.is_some_and(|(f, _)| f == i)
                        && fs::metadata(g.b(&name(i))).is_ok_and(|m| m.ino() == before[&i])
                })
                .map(|(&i, _)| format!("{} has its own old one", name(i))),
        )
        .collect();
    eprintln!("stale_inodes: replacements that reuse an inode number: {reused:?}");

    // The held fds read the files they opened, as natively.
    let mut buf = vec![0; 20_000];
    for (i, f) in held.iter().enumerate() {
        let n = f.read_at(&mut buf, 0).expect("read a held fd");
        assert!(
            buf[..n] == version(i, 0)[..],
            "{} held open before the change reads {}",
            name(i),
            digest(&buf[..n])
        );
    }

    // Every changed name: allowed answers only, until BACKING's.
    for (&i, &want) in &expected {
        let p = g.m(&name(i));
        let old = View::Is(i, 0);
        let want = want.map_or(View::Errno(libc::ENOENT), |(f, v)| View::Is(f, v));
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let v = view_of(&p);
            if !seen.contains(&v) {
                seen.push(v.clone());
            }
            if v == want {
                break;
            }
            let allowed =
                matches!(v, View::Errno(libc::ENOENT | libc::ESTALE)) || (v == old && !cache_none);
            assert!(
                allowed,
                "{} after its change in BACKING: {v:?} (expected {want:?}; seen {seen:?})",
                name(i)
            );
            assert!(
                start.elapsed() < TTL + TTL_SLACK,
                "{} shows {v:?}, not {want:?}, {:?} after its change in BACKING (seen {seen:?})",
                name(i),
                TTL + TTL_SLACK
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        if seen.len() > 1 {
            eprintln!("stale_inodes: {} answered {seen:?}", name(i));
        }
    }

    // The untouched files (all evicted long ago or not) still read right, and the daemon
    // serves new work.
    for i in (10..STALE_FILES).filter(|i| !expected.contains_key(i)) {
        assert_eq!(
            view_of(&g.m(&name(i))),
            View::Is(i, 0),
            "untouched {}",
            name(i)
        );
    }
    drop(held);
    fs::write(g.m("new"), b"new").expect("create through the mount");
    assert_eq!(fs::read(g.b("new")).expect("read in BACKING"), b"new");
}

#[test]
fn stale_inodes_after_lru_eviction_default() {
    stale_inodes(DEFAULT, false);
}

#[test]
fn stale_inodes_after_lru_eviction_devfuse() {
    stale_inodes(DEVFUSE, false);
}

#[test]
fn stale_inodes_after_lru_eviction_cache_none_default() {
    stale_inodes(&["cache=none"], true);
}

#[test]
fn stale_inodes_after_lru_eviction_cache_none_devfuse() {
    stale_inodes(&["cache=none", "transport=devfuse"], true);
}
