//! Reads and writes against native: short reads and holes, a big file at odd offsets, fsync,
//! O_DIRECT.

use super::*;

#[test]
fn short_reads_at_eof_and_holes_past_eof_default() {
    short_reads_at_eof_and_holes_past_eof(&[]);
}

#[test]
fn short_reads_at_eof_and_holes_past_eof_passthrough() {
    short_reads_at_eof_and_holes_past_eof(&["passthrough"]);
}

#[test]
fn short_reads_at_eof_and_holes_past_eof_uring_off() {
    short_reads_at_eof_and_holes_past_eof(&["uring=off"]);
}

fn short_reads_at_eof_and_holes_past_eof(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let before = g.counters();
    both_ok(&g, "write 10 bytes", |r| {
        fs::write(r.join("f"), b"0123456789")
    });
    both_ok(&g, "pread across, at and past EOF", |r| {
        let f = File::open(r.join("f"))?;
        let mut buf = [0u8; 100];
        let a = f.read_at(&mut buf, 5)?;
        let first = buf[..a].to_vec();
        Ok((
            a,
            first,
            f.read_at(&mut buf, 10)?,
            f.read_at(&mut buf, 1000)?,
        ))
    });
    both_ok(&g, "sequential read hits EOF", |r| {
        let mut f = File::open(r.join("f"))?;
        let mut buf = [0u8; 7];
        Ok((f.read(&mut buf)?, f.read(&mut buf)?, f.read(&mut buf)?))
    });
    both_ok(&g, "write past EOF leaves a hole", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        f.write_at(b"X", (1 << 20) + 3)?;
        let data = read_all(&r.join("f"))?;
        let zeros = data[10..(1 << 20) + 3].iter().all(|&b| b == 0);
        Ok((
            data.len(),
            zeros,
            data[(1 << 20) + 3],
            &data[..10] == b"0123456789",
        ))
    });
    let b = fs::metadata(g.b("f")).unwrap();
    let n = fs::metadata(g.n("f")).unwrap();
    assert_eq!(b.len(), n.len());
    assert!(
        b.blocks() <= n.blocks() + 8,
        "hole filled in: backing has {} blocks, native {}",
        b.blocks(),
        n.blocks()
    );
    if opts.contains(&"passthrough") {
        g.assert_passthrough_since(&before, "short reads and holes");
    }
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn big_file_at_odd_offsets_matches_native() {
    big_file_at_odd_offsets(&[]);
}

#[test]
fn big_file_at_odd_offsets_cache_none() {
    big_file_at_odd_offsets(&["cache=none"]);
}

#[test]
fn big_file_at_odd_offsets_cache_always() {
    big_file_at_odd_offsets(&["cache=always"]);
}

fn big_file_at_odd_offsets(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let size: u64 = (1 << 20) + 333_333;
    let ops = |root: &Path| -> io::Result<Vec<(usize, Vec<u8>)>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join("big"))?;
        let mut rng = Rng(0x5eed);
        let mut reads = Vec::new();
        for i in 0..300 {
            let off = rng.below(size);
            let len = 1 + rng.below(70_000) as usize;
            let data = pattern(len, rng.next());
            f.write_at(&data, off)?;
            if i % 10 == 0 {
                let mut buf = vec![0u8; 1 + rng.below(200_000) as usize];
                let n = f.read_at(&mut buf, rng.below(size + 100_000))?;
                buf.truncate(n);
                reads.push((n, buf));
            }
        }
        f.sync_all()?;
        Ok(reads)
    };
    let n = ops(&g.native).unwrap();
    let m = ops(&g.mnt).unwrap();
    assert_eq!(m.len(), n.len());
    for (i, (a, b)) in m.iter().zip(&n).enumerate() {
        assert!(
            a == b,
            "read {i} differs: mount {} bytes, native {} bytes",
            a.0,
            b.0
        );
    }
    let (bn, bm, bb) = (
        fs::read(g.n("big")).unwrap(),
        fs::read(g.m("big")).unwrap(),
        fs::read(g.b("big")).unwrap(),
    );
    assert_eq!(bm.len(), bn.len(), "size through the mount");
    assert!(bm == bn, "contents through the mount differ from native");
    assert!(bb == bn, "backing contents differ from native");
    // Large sequential reads with an odd buffer size.
    let mut f = File::open(g.m("big")).unwrap();
    let mut all = Vec::new();
    let mut buf = vec![0u8; 131_071];
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        all.extend_from_slice(&buf[..k]);
    }
    assert!(all == bn, "sequential read differs");
    // One write and one read much larger than max_write/max_read, at an odd offset.
    let huge = pattern(3 << 20, 9);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(g.m("big"))
        .unwrap();
    f.write_all_at(&huge, 12_345).unwrap();
    let mut back = vec![0u8; huge.len() + 10];
    let n = f.read_at(&mut back, 12_345).unwrap();
    assert_eq!(n, huge.len(), "short read in the middle of a file");
    assert!(back[..n] == huge[..], "3 MiB write/read round trip differs");
    drop(f);
    let b = fs::read(g.b("big")).unwrap();
    assert!(
        b[12_345..12_345 + huge.len()] == huge[..],
        "backing after 3 MiB write"
    );
}

#[test]
fn fsync_and_fdatasync() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "fsync/fdatasync file and dir", |r| {
        let mut f = File::create(r.join("f"))?;
        f.write_all(b"durable")?;
        f.sync_all()?;
        f.write_all(b" more")?;
        f.sync_data()?;
        let d = File::open(r)?;
        d.sync_all()?;
        d.sync_data()?;
        // fsync of a read-only fd is allowed too.
        File::open(r.join("f"))?.sync_all()?;
        read_all(&r.join("f"))
    });
    assert_eq!(fs::read(g.b("f")).unwrap(), b"durable more");
}

/// O_DIRECT reads and writes work as natively: the daemon opens the backing file O_DIRECT too,
/// so its own buffers must be aligned whatever the request's were.
#[test]
fn o_direct_reads_and_writes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    const ALIGN: usize = 4096;
    let data = pattern(64 * 1024, 9);
    both_ok(&g, "O_DIRECT write then read", |r| {
        let mut storage = vec![0u8; data.len() + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN);
        let buf = &mut storage[start..start + data.len()];
        buf.copy_from_slice(&data);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(r.join("direct"))?;
        f.write_all_at(buf, 0)?;
        f.write_all_at(&buf[..ALIGN], 3 * 65536)?;
        buf.fill(0);
        let n = f.read_at(&mut buf[..8192], 4096)?;
        Ok((n, digest(&buf[..n]), fs::metadata(r.join("direct"))?.len()))
    });
    assert_eq!(
        fs::read(g.m("direct")).unwrap(),
        fs::read(g.n("direct")).unwrap()
    );
}
