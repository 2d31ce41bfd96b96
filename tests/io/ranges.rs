//! Range operations: fallocate modes, SEEK_DATA/SEEK_HOLE, copy_file_range.

use super::*;

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
