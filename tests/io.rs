//! Data I/O through the mount, compared with the same calls on native ext4.

mod common;

use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fallocate(f: &File, mode: i32, offset: i64, len: i64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::fallocate(f.as_raw_fd(), mode, offset, len) })?;
    Ok(())
}

fn lseek(f: &File, offset: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: plain syscall on an fd we own.
    let rc = unsafe { libc::lseek(f.as_raw_fd(), offset, whence) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// copy_file_range with explicit offsets; returns bytes copied.
fn copy_file_range(
    src: &File,
    src_off: i64,
    dst: &File,
    dst_off: i64,
    len: usize,
) -> io::Result<usize> {
    let (mut so, mut d) = (src_off, dst_off);
    // SAFETY: fds we own and two live i64 offsets.
    let rc =
        unsafe { libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut d, len, 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn create_exclusive_and_truncate() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "O_CREAT|O_EXCL new", |r| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(r.join("f"))?;
        f.write_all(b"first contents")?;
        attr(&r.join("f"))
    });
    both_err(&g, "O_CREAT|O_EXCL existing", libc::EEXIST, |r| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(r.join("f"))
    });
    both_ok(&g, "mkdir for O_EXCL on a dir", |r| {
        fs::create_dir(r.join("d"))
    });
    both_err(&g, "O_CREAT|O_EXCL on a dir", libc::EEXIST, |r| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(r.join("d"))
    });
    both_err(&g, "O_CREAT on a dir", libc::EISDIR, |r| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(r.join("d"))
    });
    both_ok(&g, "O_CREAT without O_EXCL keeps data", |r| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(r.join("f"))?;
        read_all(&r.join("f"))
    });
    both_ok(&g, "O_TRUNC", |r| {
        let f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(r.join("f"))?;
        Ok((f.metadata()?.len(), attr(&r.join("f"))?))
    });
    assert_eq!(
        fs::metadata(g.b("f")).unwrap().len(),
        0,
        "backing not truncated"
    );
    both_ok(&g, "O_WRONLY|O_TRUNC empties the file", |r| {
        fs::write(r.join("g"), b"gg")?;
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(r.join("g"))?;
        read_all(&r.join("g"))
    });
    both_err(&g, "O_DIRECTORY on a file", libc::ENOTDIR, |r| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(r.join("g"))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

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

#[test]
fn fd_access_modes_and_umask() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "setup", |r| fs::write(r.join("f"), b"abc"));
    both_err(&g, "write on O_RDONLY", libc::EBADF, |r| {
        File::open(r.join("f"))?.write_all(b"x")
    });
    both_err(&g, "read on O_WRONLY", libc::EBADF, |r| {
        let mut buf = [0u8; 4];
        OpenOptions::new()
            .write(true)
            .open(r.join("f"))?
            .read(&mut buf)
    });
    both(&g, "ftruncate on O_RDONLY", |r| {
        File::open(r.join("f"))?.set_len(0)
    })
    .ok();
    both_ok(
        &g,
        "pwrite on an O_APPEND fd appends (pwrite(2) BUGS)",
        |r| {
            let f = OpenOptions::new().append(true).open(r.join("f"))?;
            f.write_at(b"Z", 0)?;
            read_all(&r.join("f"))
        },
    );
    // The process umask (022 under cargo) applies to creations through the mount as natively.
    both_ok(&g, "create and mkdir with mode 0777", |r| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o777)
            .open(r.join("m"))?;
        fs::DirBuilder::new().create(r.join("d"))?;
        mknod(&r.join("p"), libc::S_IFIFO | 0o777, 0)?;
        Ok((
            attr(&r.join("m"))?,
            attr(&r.join("d"))?,
            attr(&r.join("p"))?,
        ))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
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

#[test]
fn fallocate_modes_default() {
    fallocate_modes(&[]);
}

#[test]
fn fallocate_modes_passthrough() {
    fallocate_modes(&["passthrough"]);
}

fn fallocate_modes(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let before = g.counters();
    let state = |r: &Path| -> io::Result<(u64, String)> {
        Ok((
            fs::metadata(r.join("f"))?.len(),
            digest(&read_all(&r.join("f"))?),
        ))
    };
    both_ok(&g, "fallocate mode 0 extends", |r| {
        let f = File::create(r.join("f"))?;
        f.write_at(&pattern(8192, 1), 0)?;
        fallocate(&f, 0, 0, 65_536)?;
        state(r)
    });
    let (bn, bm) = (
        fs::metadata(g.n("f")).unwrap().blocks(),
        fs::metadata(g.b("f")).unwrap().blocks(),
    );
    assert_eq!(bm, bn, "allocated blocks after fallocate");
    both_ok(&g, "FALLOC_FL_KEEP_SIZE", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20)?;
        Ok((state(r)?, fs::metadata(r.join("f"))?.blocks() >= 2048))
    });
    both_ok(&g, "FALLOC_FL_PUNCH_HOLE", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            1000,
            5000,
        )?;
        state(r)
    });
    both_err(&g, "PUNCH_HOLE without KEEP_SIZE", libc::EOPNOTSUPP, |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        fallocate(&f, libc::FALLOC_FL_PUNCH_HOLE, 0, 4096)
    });
    both_ok(&g, "FALLOC_FL_ZERO_RANGE", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        f.write_at(&pattern(4096, 2), 20_000)?;
        fallocate(&f, libc::FALLOC_FL_ZERO_RANGE, 20_100, 3000)?;
        state(r)
    });
    both_ok(&g, "ZERO_RANGE past EOF extends", |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        fallocate(&f, libc::FALLOC_FL_ZERO_RANGE, 60_000, 10_000)?;
        state(r)
    });
    both_err(&g, "fallocate on O_RDONLY", libc::EBADF, |r| {
        fallocate(&File::open(r.join("f"))?, 0, 0, 10)
    });
    both_err(&g, "fallocate len 0", libc::EINVAL, |r| {
        let f = OpenOptions::new().write(true).open(r.join("f"))?;
        fallocate(&f, 0, 0, 0)
    });
    if opts.contains(&"passthrough") {
        // FALLOCATE itself is always the daemon's (passthrough covers reads, writes and
        // mmap); the writes and reads around it must not be.
        let d = g.assert_passthrough_since(&before, "fallocate workload");
        assert!(
            d.requests("fallocate") > 0,
            "no FALLOCATE reached the daemon"
        );
    }
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn lseek_data_and_hole() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let seeks = both_ok(&g, "SEEK_DATA/SEEK_HOLE", |r| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(r.join("sparse"))?;
        f.write_at(&[1u8; 4096], 0)?;
        f.write_at(&[2u8; 4096], 1 << 20)?;
        f.set_len((2 << 20) + 17)?;
        f.sync_all()?;
        Ok((
            lseek(&f, 0, libc::SEEK_DATA)?,
            lseek(&f, 0, libc::SEEK_HOLE)?,
            lseek(&f, 4096, libc::SEEK_DATA)?,
            lseek(&f, (1 << 20) + 10, libc::SEEK_HOLE)?,
            lseek(&f, (1 << 20) + 5000, libc::SEEK_DATA).map_err(|e| e.raw_os_error()),
            lseek(&f, 10 << 20, libc::SEEK_HOLE).map_err(|e| e.raw_os_error()),
        ))
    });
    assert_eq!(
        seeks,
        (
            0,
            4096,
            1 << 20,
            (1 << 20) + 4096,
            Err(Some(libc::ENXIO)),
            Err(Some(libc::ENXIO))
        ),
        "SEEK_DATA/SEEK_HOLE positions"
    );
    both_ok(&g, "SEEK_END/SEEK_CUR", |r| {
        let mut f = File::open(r.join("sparse"))?;
        Ok((
            f.seek(SeekFrom::End(-7))?,
            f.seek(SeekFrom::Current(3))?,
            f.seek(SeekFrom::Start(12))?,
        ))
    });
    both_err(&g, "negative seek", libc::EINVAL, |r| {
        File::open(r.join("sparse"))?.seek(SeekFrom::End(-(10 << 20)))
    });
}

#[test]
fn copy_file_range_inside_and_out_of_the_mount_default() {
    copy_file_range_inside_and_out_of_the_mount(&[]);
}

#[test]
fn copy_file_range_inside_and_out_of_the_mount_splice() {
    copy_file_range_inside_and_out_of_the_mount(&["copy=splice"]);
}

#[test]
fn copy_file_range_inside_and_out_of_the_mount_passthrough() {
    copy_file_range_inside_and_out_of_the_mount(&["passthrough"]);
}

fn copy_file_range_inside_and_out_of_the_mount(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let before = g.counters();
    let src_data = pattern(300_001, 3);
    both_ok(&g, "copy_file_range within the fs", |r| {
        fs::write(r.join("src"), &src_data)?;
        let src = File::open(r.join("src"))?;
        let dst = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(r.join("dst"))?;
        let mut done = 0;
        while done < 200_000 {
            let n = copy_file_range(
                &src,
                1000 + done as i64,
                &dst,
                7 + done as i64,
                200_000 - done,
            )?;
            assert!(n > 0, "copy_file_range returned 0 before EOF");
            done += n;
        }
        let past_eof = copy_file_range(&src, 400_000, &dst, 0, 10)?;
        Ok((
            past_eof,
            attr(&r.join("dst"))?,
            digest(&read_all(&r.join("dst"))?),
        ))
    });
    let dst = fs::read(g.m("dst")).unwrap();
    assert_eq!(&dst[7..], &src_data[1000..201_000]);
    assert_eq!(&dst[..7], &[0u8; 7]);

    // From the mount to a file outside it: the kernel may refuse across filesystems (EXDEV,
    // copy_file_range(2) since Linux 5.19); any other outcome must be a correct copy.
    let outside = g.root.join("outside-copy");
    let src = File::open(g.m("src")).unwrap();
    let out = File::create(&outside).unwrap();
    let mut done = 0;
    let copied_out = loop {
        match copy_file_range(&src, done as i64, &out, done as i64, src_data.len() - done) {
            Ok(0) => break true,
            Ok(n) => done += n,
            // A refusal is the kernel's policy, not the mount's; the rest still runs.
            Err(e) if done == 0 && e.raw_os_error() == Some(libc::EXDEV) => break false,
            Err(e) => panic!("copy_file_range mount -> outside after {done} bytes: {e}"),
        }
    };
    if copied_out {
        assert_eq!(done, src_data.len());
        assert!(
            fs::read(&outside).unwrap() == src_data,
            "outside copy differs"
        );
    }
    drop(src);
    let d = if opts.contains(&"passthrough") {
        // COPY_FILE_RANGE is always the daemon's (it copies between the backing files);
        // the writes and reads around it, and a splice fallback of the kernel's, must not be.
        g.assert_passthrough_since(&before, "copy_file_range workload")
    } else {
        g.counters().since(&before)
    };
    assert!(
        d.requests("copy_file_range") > 0,
        "the copies never reached the daemon as COPY_FILE_RANGE: {}",
        d.line
    );
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn unlink_while_open_stays_readable() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "unlink while open", |r| {
        fs::write(r.join("f"), b"still here")?;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(r.join("f"))?;
        fs::remove_file(r.join("f"))?;
        let gone = fs::metadata(r.join("f"))
            .map_err(|e| e.raw_os_error())
            .err();
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        f.write_all(b" and writable")?;
        let mut all = String::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_string(&mut all)?;
        let md = f.metadata()?;
        // A new file with the same name is a different file.
        fs::write(r.join("f"), b"new")?;
        let new = read_all(&r.join("f"))?;
        f.seek(SeekFrom::Start(0))?;
        let mut again = String::new();
        f.read_to_string(&mut again)?;
        Ok((gone, s, all, md.nlink(), md.len(), new, again))
    });
    assert_eq!(fs::read(g.b("f")).unwrap(), b"new");
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn rename_over_an_open_file() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "rename over open", |r| {
        fs::write(r.join("a"), b"new contents")?;
        fs::write(r.join("b"), b"old contents")?;
        let mut old = File::open(r.join("b"))?;
        fs::rename(r.join("a"), r.join("b"))?;
        let mut s = String::new();
        old.read_to_string(&mut s)?;
        let nlink_old = old.metadata()?.nlink();
        Ok((s, nlink_old, read_all(&r.join("b"))?))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn mmap_shared_read_write_default() {
    mmap_shared_read_write(&[]);
}

#[test]
fn mmap_shared_read_write_cache_none() {
    mmap_shared_read_write(&["cache=none"]);
}

#[test]
fn mmap_shared_read_write_passthrough() {
    mmap_shared_read_write(&["passthrough"]);
}

fn mmap_shared_read_write(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let before = g.counters();
    const LEN: usize = 64 * 1024 + 100;
    let initial = pattern(LEN, 4);
    let run = |r: &Path| -> io::Result<Vec<u8>> {
        fs::write(r.join("m"), &initial)?;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(r.join("m"))?;
        // SAFETY: fresh shared mapping of LEN bytes of a file at least LEN long; unmapped below
        // and not touched afterwards.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: p is a live LEN-byte mapping.
        let map = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), LEN) };
        let seen_ok = map[..] == initial[..];
        for (i, b) in map.iter_mut().enumerate().step_by(97) {
            *b = (i % 251) as u8;
        }
        // SAFETY: p/LEN is the mapping created above.
        let rc = unsafe { libc::msync(p, LEN, libc::MS_SYNC) };
        let err = io::Error::last_os_error();
        // SAFETY: as above; the slice is not used after this.
        unsafe { libc::munmap(p, LEN) };
        if rc != 0 {
            return Err(err);
        }
        assert!(seen_ok, "mmap read saw different data than was written");
        drop(f);
        read_all(&r.join("m"))
    };
    let n = run(&g.native).unwrap();
    let m = run(&g.mnt).expect("mmap through the mount");
    assert!(m == n, "file after mmap writes differs from native");
    assert!(
        fs::read(g.b("m")).unwrap() == n,
        "backing after mmap writes differs"
    );
    if opts.contains(&"passthrough") {
        g.assert_passthrough_since(&before, "mmap workload");
    }
}

/// Forks a child that opens `path` and tries `op` on it without blocking; returns the child's
/// errno (0 = success). The child only makes async-signal-safe calls.
fn try_lock_in_child(path: &Path, op: fn(i32) -> i32) -> i32 {
    let c = cpath(path);
    // SAFETY: the child only calls open/fcntl/flock/_exit (async-signal-safe) before exiting.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: async-signal-safe calls only; `c` was built before the fork.
        unsafe {
            let fd = libc::open(c.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                libc::_exit(100);
            }
            libc::_exit(op(fd));
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "lock child died: status {status}");
    let code = libc::WEXITSTATUS(status);
    assert_ne!(code, 100, "lock child could not open {}", path.display());
    code
}

fn errno_now() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(99)
}

fn setlk(fd: i32, kind: i32) -> i32 {
    // SAFETY: zeroed flock is valid; the fd is open.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: fcntl F_SETLK with a valid flock struct.
    if unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) } < 0 {
        errno_now()
    } else {
        0
    }
}

#[test]
fn posix_locks_conflict_between_processes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let both_sides = |root: &Path| -> (i32, i32, i32) {
        let p = root.join("locked");
        fs::write(&p, b"lock me").unwrap();
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        assert_eq!(setlk(f.as_raw_fd(), libc::F_WRLCK), 0, "parent F_SETLK");
        let held = try_lock_in_child(&p, |fd| setlk(fd, libc::F_WRLCK));
        let read_held = try_lock_in_child(&p, |fd| setlk(fd, libc::F_RDLCK));
        assert_eq!(setlk(f.as_raw_fd(), libc::F_UNLCK), 0, "parent unlock");
        let free = try_lock_in_child(&p, |fd| setlk(fd, libc::F_WRLCK));
        (held, read_held, free)
    };
    let n = both_sides(&g.native);
    let m = both_sides(&g.mnt);
    assert_eq!(n, (libc::EAGAIN, libc::EAGAIN, 0), "native");
    assert_eq!(m, n, "POSIX locks through the mount vs native");
}

fn flock_nb(fd: i32) -> i32 {
    // SAFETY: plain syscall on an open fd.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } < 0 {
        errno_now()
    } else {
        0
    }
}

#[test]
fn flock_conflicts_between_processes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let both_sides = |root: &Path| -> (i32, i32) {
        let p = root.join("flocked");
        fs::write(&p, b"flock me").unwrap();
        let f = File::open(&p).unwrap();
        // SAFETY: plain syscall on an open fd.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
        let held = try_lock_in_child(&p, flock_nb);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) }, 0);
        let free = try_lock_in_child(&p, flock_nb);
        (held, free)
    };
    let n = both_sides(&g.native);
    let m = both_sides(&g.mnt);
    assert_eq!(n, (libc::EWOULDBLOCK, 0), "native");
    assert_eq!(m, n, "flock through the mount vs native");
}

/// open(O_TRUNC) of a running executable fails with ETXTBSY and leaves it whole. With
/// FUSE_ATOMIC_O_TRUNC the daemon would truncate inside the open, before the VFS's
/// deny-write check, and the running program would lose its text.
#[test]
fn truncating_open_of_a_running_executable_is_etxtbsy() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let sleep = fs::read("/bin/sleep").expect("read /bin/sleep");
    for root in [g.n(""), g.m("")] {
        let exe = root.join("sleeper");
        fs::write(&exe, &sleep).unwrap();
        fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&exe).arg("10").spawn().unwrap();
        // Let the exec reach the point where the text is mapped.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let err = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_TRUNC)
            .open(&exe)
            .expect_err("open(O_TRUNC) of a running executable");
        assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{}", exe.display());
        assert_eq!(fs::metadata(&exe).unwrap().len(), sleep.len() as u64);
        assert!(child.try_wait().unwrap().is_none(), "the program died");
        child.kill().unwrap();
        child.wait().unwrap();
    }
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
