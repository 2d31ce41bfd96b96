//! Offsets near i64::MAX and ext4's largest file.

use super::*;

fn huge_offsets(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    let max = ext4_max(&g);
    let (efbig, einval) = (libc::EFBIG, libc::EINVAL);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("f"), b"0123456789")?;
        fs::write(r.join("g"), b"")
    });
    let size = |r: &Path| fs::metadata(r.join("f")).map(|m| m.len());

    // pwrite: the VFS refuses a negative or overflowing range (EINVAL), ext4 a range past its
    // largest file (EFBIG), and a write that crosses it is cut short.
    both_err(&g, "pwrite at i64::MAX", einval, |r| {
        pwrite(&rw(&r.join("f"))?, b"x", i64::MAX)
    });
    both_err(&g, "pwrite of 2 bytes at i64::MAX - 1", einval, |r| {
        pwrite(&rw(&r.join("f"))?, b"xy", i64::MAX - 1)
    });
    both_err(&g, "pwrite at a negative offset", einval, |r| {
        pwrite(&rw(&r.join("f"))?, b"x", -1)
    });
    both_err(&g, "pwrite at i64::MIN", einval, |r| {
        pwrite(&rw(&r.join("f"))?, b"x", i64::MIN)
    });
    both_err(&g, "pwrite at i64::MAX - 4096", efbig, |r| {
        pwrite(&rw(&r.join("f"))?, b"x", i64::MAX - 4096)
    });
    both_err(&g, "pwrite at ext4's largest size", efbig, |r| {
        pwrite(&rw(&r.join("f"))?, b"x", max)
    });
    both_ok(&g, "the refused pwrites changed nothing", |r| {
        Ok((size(r)?, fs::read(r.join("f"))?))
    });
    both_ok(&g, "pwrite crossing ext4's largest size is short", |r| {
        let f = rw(&r.join("f"))?;
        let n = pwrite(&f, b"xyz", max - 1)?;
        let tail = pread(&f, 10, max - 2)?;
        Ok((n, size(r)?, tail))
    });
    both_ok(&g, "O_APPEND write at ext4's largest size", |r| {
        let f = OpenOptions::new().append(true).open(r.join("f"))?;
        Ok((errno_of(&pwrite(&f, b"a", 0)), size(r)?))
    });
    both_ok(&g, "truncate back", |r| {
        truncate(&r.join("f"), 10)?;
        size(r)
    });

    // fallocate: offset + len past the fs's largest size (or overflowing) is EFBIG in the VFS
    // (for the mount: in BACKING's VFS, as FUSE's own limit is larger).
    for (what, mode) in [
        ("mode 0", 0),
        ("KEEP_SIZE", libc::FALLOC_FL_KEEP_SIZE),
        ("ZERO_RANGE", libc::FALLOC_FL_ZERO_RANGE),
        (
            "PUNCH_HOLE",
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        ),
    ] {
        both_err(
            &g,
            &format!("fallocate {what}: offset+len overflows"),
            efbig,
            |r| fallocate(&rw(&r.join("f"))?, mode, i64::MAX - 10, 100),
        );
        both_err(
            &g,
            &format!("fallocate {what}: past ext4's largest"),
            efbig,
            |r| fallocate(&rw(&r.join("f"))?, mode, max - 4096, 8192),
        );
        both_err(
            &g,
            &format!("fallocate {what}: negative offset"),
            einval,
            |r| fallocate(&rw(&r.join("f"))?, mode, -4096, 4096),
        );
        both_err(
            &g,
            &format!("fallocate {what}: negative len"),
            einval,
            |r| fallocate(&rw(&r.join("f"))?, mode, 0, -1),
        );
    }
    both_ok(&g, "fallocate KEEP_SIZE up to ext4's largest size", |r| {
        fallocate(
            &rw(&r.join("f"))?,
            libc::FALLOC_FL_KEEP_SIZE,
            max - 4096,
            4096,
        )?;
        size(r)
    });

    // truncate and ftruncate.
    for len in [i64::MAX, max + 1, i64::MAX - 4095] {
        both_err(&g, &format!("truncate to {len}"), efbig, |r| {
            truncate(&r.join("f"), len)
        });
        both_err(&g, &format!("ftruncate to {len}"), efbig, |r| {
            ftruncate(&rw(&r.join("f"))?, len)
        });
    }
    for len in [-1, i64::MIN] {
        both_err(&g, &format!("truncate to {len}"), einval, |r| {
            truncate(&r.join("f"), len)
        });
        both_err(&g, &format!("ftruncate to {len}"), einval, |r| {
            ftruncate(&rw(&r.join("f"))?, len)
        });
    }
    both_ok(&g, "truncate to ext4's largest size and back", |r| {
        truncate(&r.join("f"), max)?;
        let big = size(r)?;
        let f = rw(&r.join("f"))?;
        ftruncate(&f, max)?;
        let tail = pread(&f, 16, max - 4)?;
        ftruncate(&f, 10)?;
        Ok((big, tail, size(r)?, fs::read(r.join("f"))?))
    });

    // copy_file_range near the limits.
    let cfr = |r: &Path, so: i64, d: i64, len: usize| {
        copy_range(&File::open(r.join("f"))?, so, &rw(&r.join("g"))?, d, len)
    };
    both_ok(&g, "copy_file_range from past EOF copies nothing", |r| {
        Ok((
            cfr(r, 11, 0, 100)?,
            cfr(r, max - 10, 0, 5)?,
            cfr(r, i64::MAX - 100, 0, 50)?,
        ))
    });
    for (what, so, d, len) in [
        ("src offset + len overflows", i64::MAX - 5, 0, 100),
        ("dst offset + len overflows", 0, i64::MAX - 5, 10),
        ("dst offset at i64::MAX", 0, i64::MAX, 1),
        ("dst offset at ext4's largest size", 0, max, 10),
        ("dst range crossing ext4's largest size", 0, max - 5, 10),
        ("negative src offset", -1, 0, 10),
        ("negative dst offset", 0, -1, 10),
        ("len usize::MAX", 0, 0, usize::MAX),
        ("len i64::MAX", 0, 0, i64::MAX as usize),
        ("len i64::MAX at dst 100", 0, 100, i64::MAX as usize),
    ] {
        seen(&g, &format!("copy_file_range: {what}"), |r| {
            cfr(r, so, d, len)
        });
    }
    both_ok(&g, "copy_file_range results", |r| {
        Ok((fs::read(r.join("f"))?, fs::metadata(r.join("g"))?.len()))
    });
    both_ok(&g, "truncate g", |r| truncate(&r.join("g"), 0));

    // lseek: SEEK_DATA and SEEK_HOLE at or past EOF are ENXIO.
    for off in [10, 11, 4096, max, i64::MAX, -1] {
        for (w, whence) in [
            ("SEEK_DATA", libc::SEEK_DATA),
            ("SEEK_HOLE", libc::SEEK_HOLE),
        ] {
            seen(&g, &format!("lseek {w} at {off}"), |r| {
                lseek(&File::open(r.join("f"))?, off, whence)
            });
        }
    }
    both_err(&g, "SEEK_DATA past EOF", libc::ENXIO, |r| {
        lseek(&File::open(r.join("f"))?, 11, libc::SEEK_DATA)
    });
    both_err(&g, "SEEK_HOLE past EOF", libc::ENXIO, |r| {
        lseek(&File::open(r.join("f"))?, 1 << 40, libc::SEEK_HOLE)
    });
    both_err(&g, "SEEK_DATA in an empty file", libc::ENXIO, |r| {
        lseek(&File::open(r.join("g"))?, 0, libc::SEEK_DATA)
    });
    both_ok(&g, "SEEK_HOLE inside the file", |r| {
        lseek(&File::open(r.join("f"))?, 3, libc::SEEK_HOLE)
    });
    for (what, off, whence) in [
        ("SEEK_SET to ext4's largest size", max, libc::SEEK_SET),
        ("SEEK_SET negative", -1, libc::SEEK_SET),
        ("SEEK_END + i64::MAX", i64::MAX, libc::SEEK_END),
        ("SEEK_CUR -1 at 0", -1, libc::SEEK_CUR),
        ("whence 5", 0, 5),
        ("whence -1", 0, -1),
    ] {
        seen(&g, &format!("lseek {what}"), |r| {
            lseek(&File::open(r.join("f"))?, off, whence)
        });
    }
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn huge_offsets_default() {
    huge_offsets(&[]);
}

#[test]
fn huge_offsets_devfuse() {
    huge_offsets(DEVFUSE);
}
