//! Concurrent writers and readers: O_APPEND from many threads, parallel preads and pwrites.

use super::*;

#[test]
fn concurrent_o_append_does_not_interleave_default() {
    concurrent_o_append_does_not_interleave(&[]);
}

#[test]
fn concurrent_o_append_does_not_interleave_passthrough() {
    concurrent_o_append_does_not_interleave(&["passthrough"]);
}

#[test]
fn concurrent_o_append_does_not_interleave_uring_off() {
    concurrent_o_append_does_not_interleave(&["uring=off"]);
}

fn concurrent_o_append_does_not_interleave(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    const THREADS: usize = 4;
    const RECORDS: usize = 400;
    const LEN: usize = 64;
    let g = MountGuard::new(opts);
    let before = g.counters();
    let path = g.m("log");
    fs::write(&path, b"").unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let path = &path;
            s.spawn(move || {
                let mut f = OpenOptions::new().append(true).open(path).unwrap();
                for i in 0..RECORDS {
                    let mut rec = format!("t{t} r{i:05} ").into_bytes();
                    rec.resize(LEN - 1, b'a' + t as u8);
                    rec.push(b'\n');
                    f.write_all(&rec).unwrap();
                }
            });
        }
    });
    for data in [fs::read(&path).unwrap(), fs::read(g.b("log")).unwrap()] {
        assert_eq!(data.len(), THREADS * RECORDS * LEN, "total size");
        let mut next = [0usize; THREADS];
        for (n, rec) in data.chunks(LEN).enumerate() {
            let text = String::from_utf8_lossy(rec);
            let t: usize = text[1..2]
                .parse()
                .unwrap_or_else(|_| panic!("record {n}: {text:?}"));
            let expect = {
                let mut r = format!("t{t} r{:05} ", next[t]).into_bytes();
                r.resize(LEN - 1, b'a' + t as u8);
                r.push(b'\n');
                r
            };
            assert_eq!(
                rec,
                &expect[..],
                "record {n} torn or out of order: {text:?}"
            );
            next[t] += 1;
        }
        assert_eq!(next, [RECORDS; THREADS]);
    }
    if opts.contains(&"passthrough") {
        g.assert_passthrough_since(&before, "concurrent O_APPEND writers");
    }
}

#[test]
fn parallel_preads_and_pwrites() {
    if !require_root_and_fuse() {
        return;
    }
    const SIZE: usize = 4 << 20;
    let g = MountGuard::new(&[]);
    let data = pattern(SIZE, 11);
    fs::write(g.m("p"), &data).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (path, data) = (g.m("p"), &data);
            s.spawn(move || {
                let f = File::open(path).unwrap();
                let mut rng = Rng(t + 100);
                for _ in 0..200 {
                    let off = rng.below(SIZE as u64) as usize;
                    let len = 1 + rng.below(100_000) as usize;
                    let mut buf = vec![0u8; len];
                    let n = f.read_at(&mut buf, off as u64).unwrap();
                    let want = &data[off..(off + len).min(SIZE)];
                    assert_eq!(n, want.len(), "thread {t}: short pread at {off}");
                    assert!(
                        buf[..n] == *want,
                        "thread {t}: pread at {off} returned wrong data"
                    );
                }
            });
        }
    });
    let expect = std::sync::Mutex::new(data.clone());
    // Then writers on disjoint quarters of the file.
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (path, expect) = (g.m("p"), &expect);
            s.spawn(move || {
                let f = OpenOptions::new().write(true).open(path).unwrap();
                let mut rng = Rng(t as u64 + 200);
                let base = t * (SIZE / 4);
                for _ in 0..100 {
                    let off = base + rng.below((SIZE / 4 - 70_000) as u64) as usize;
                    let chunk = pattern(1 + rng.below(65_536) as usize, rng.next());
                    f.write_all_at(&chunk, off as u64).unwrap();
                    expect.lock().unwrap()[off..off + chunk.len()].copy_from_slice(&chunk);
                }
            });
        }
    });
    let expect = expect.into_inner().unwrap();
    assert!(
        fs::read(g.m("p")).unwrap() == expect,
        "file after parallel pwrites"
    );
    assert!(
        fs::read(g.b("p")).unwrap() == expect,
        "backing after parallel pwrites"
    );
}
