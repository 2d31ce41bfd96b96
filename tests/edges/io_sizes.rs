//! Zero-length and huge reads and writes.

use super::*;

/// (seconds, nanoseconds) of a timestamp.
type Stamp = (i64, i64);

/// (size, mtime, ctime) of `path`, to see whether a call touched it.
fn stamps(path: &Path) -> io::Result<(u64, Stamp, Stamp)> {
    let m = fs::metadata(path)?;
    Ok((
        m.len(),
        (m.mtime(), m.mtime_nsec()),
        (m.ctime(), m.ctime_nsec()),
    ))
}

fn zero_and_huge_io(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    let max = ext4_max(&g);
    let big = pattern(3 << 20, 7);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("f"), b"0123456789")?;
        fs::write(r.join("big"), &big)?;
        fs::create_dir(r.join("d"))
    });
    let f = |r: &Path| File::open(r.join("f"));

    let _ = both_ok(&g, "reads of 0 bytes", |r| {
        let f = f(r)?;
        Ok([0, 5, 10, 11, 1 << 40, max, i64::MAX].map(|off| outcome(pread(&f, 0, off))))
    });
    both_err(
        &g,
        "read of 0 bytes at a negative offset",
        libc::EINVAL,
        |r| pread(&f(r)?, 0, -1),
    );
    both_err(&g, "read of 0 bytes on an O_WRONLY fd", libc::EBADF, |r| {
        pread(&OpenOptions::new().write(true).open(r.join("f"))?, 0, 0)
    });
    both_err(&g, "read of 0 bytes on a directory", libc::EISDIR, |r| {
        pread(&File::open(r.join("d"))?, 0, 0)
    });
    // A write of nothing changes nothing, neither the size nor the times.
    let _ = both_ok(&g, "writes of 0 bytes", |r| {
        let f = rw(&r.join("f"))?;
        let before = stamps(&r.join("f"))?;
        std::thread::sleep(Duration::from_millis(30));
        let done = [0, 10, 11, 1 << 40, max, i64::MAX].map(|off| outcome(pwrite(&f, b"", off)));
        let after = stamps(&r.join("f"))?;
        Ok((done, before == after, after.0))
    });
    both_err(
        &g,
        "write of 0 bytes at a negative offset",
        libc::EINVAL,
        |r| pwrite(&rw(&r.join("f"))?, b"", -1),
    );
    both_err(&g, "write of 0 bytes on an O_RDONLY fd", libc::EBADF, |r| {
        pwrite(&f(r)?, b"", 0)
    });
    both_ok(&g, "O_APPEND write of 0 bytes", |r| {
        let f = OpenOptions::new().append(true).open(r.join("f"))?;
        Ok((pwrite(&f, b"", 0)?, lseek(&f, 0, libc::SEEK_CUR)?))
    });

    // One read asking for 64 MiB returns what there is, in one call.
    let huge = 64 << 20;
    both_ok(&g, "64 MiB read of a 10-byte file", |r| {
        pread(&f(r)?, huge, 0)
    });
    let _ = both_ok(&g, "64 MiB read at offsets inside, at and past EOF", |r| {
        let f = f(r)?;
        Ok([3, 9, 10, 11, 1 << 30, max, i64::MAX - 1].map(|off| outcome(pread(&f, huge, off))))
    });
    both_ok(&g, "64 MiB read of a 3 MiB file", |r| {
        let f = File::open(r.join("big"))?;
        Ok((
            digest(&pread(&f, huge, 0)?),
            digest(&pread(&f, huge, 12_345)?),
            digest(&pread(&f, huge, (3 << 20) - 1)?),
        ))
    });
    both_ok(&g, "64 MiB read(2) then read(2) at EOF", |r| {
        let mut f = File::open(r.join("big"))?;
        let mut buf = vec![0u8; huge];
        let first = io::Read::read(&mut f, &mut buf)?;
        let second = io::Read::read(&mut f, &mut buf)?;
        Ok((first, second, lseek(&f, 0, libc::SEEK_CUR)?))
    });
    both_ok(&g, "8 MiB write in one call", |r| {
        let data = pattern(8 << 20, 9);
        let f = File::create(r.join("w"))?;
        let n = pwrite(&f, &data, 4095)?;
        Ok((n, digest(&fs::read(r.join("w"))?)))
    });
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn zero_and_huge_io_default() {
    zero_and_huge_io(&[]);
}

#[test]
fn zero_and_huge_io_devfuse() {
    zero_and_huge_io(DEVFUSE);
}
