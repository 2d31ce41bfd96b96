//! Invalid flag bits: open, rename, fallocate.

use super::*;

fn open_flags(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("f"), b"abc")?;
        fs::create_dir(r.join("d"))?;
        std::os::unix::fs::symlink("f", r.join("lf"))?;
        std::os::unix::fs::symlink("d", r.join("ld"))?;
        std::os::unix::fs::symlink("missing", r.join("dangling"))
    });
    let (rdonly, wronly, rdwr) = (libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR);
    let dir = libc::O_DIRECTORY;
    both_err(&g, "O_DIRECTORY on a file", libc::ENOTDIR, |r| {
        open_raw(&r.join("f"), rdonly | dir, 0)
    });
    both_err(
        &g,
        "O_DIRECTORY on a symlink to a file",
        libc::ENOTDIR,
        |r| open_raw(&r.join("lf"), rdonly | dir, 0),
    );
    both_ok(&g, "O_DIRECTORY on a symlink to a dir", |r| {
        getfl(&open_raw(&r.join("ld"), rdonly | dir, 0)?)
    });
    both_err(&g, "O_NOFOLLOW on a symlink", libc::ELOOP, |r| {
        open_raw(&r.join("lf"), rdonly | libc::O_NOFOLLOW, 0)
    });
    seen(&g, "O_DIRECTORY|O_NOFOLLOW on a symlink to a dir", |r| {
        open_raw(&r.join("ld"), rdonly | dir | libc::O_NOFOLLOW, 0).map(|_| ())
    });
    both_ok(&g, "O_PATH|O_NOFOLLOW on a symlink", |r| {
        getfl(&open_raw(
            &r.join("lf"),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
        )?)
    });
    // Since Linux 6.4 O_CREAT|O_DIRECTORY is EINVAL, whether the name exists or not.
    for n in ["new", "f", "d"] {
        both_err(
            &g,
            &format!("O_CREAT|O_DIRECTORY on {n}"),
            libc::EINVAL,
            |r| open_raw(&r.join(n), rdwr | libc::O_CREAT | dir, 0o644),
        );
    }
    both_ok(&g, "O_CREAT|O_DIRECTORY created nothing", |r| {
        Ok(r.join("new").exists())
    });
    both_err(
        &g,
        "O_CREAT|O_EXCL on a dangling symlink",
        libc::EEXIST,
        |r| {
            open_raw(
                &r.join("dangling"),
                wronly | libc::O_CREAT | libc::O_EXCL,
                0o644,
            )
        },
    );
    both_err(&g, "O_WRONLY on a dir", libc::EISDIR, |r| {
        open_raw(&r.join("d"), wronly, 0)
    });
    both_err(&g, "O_CREAT on a dir", libc::EISDIR, |r| {
        open_raw(&r.join("d"), wronly | libc::O_CREAT, 0o644)
    });
    // open(2) ignores bits it does not know; F_GETFL shows what was kept.
    for bits in [1 << 30, 1 << 29, 0x0080_0000, 0x0100_0000] {
        both_ok(&g, &format!("open with unknown bits {bits:#x}"), |r| {
            let f = open_raw(&r.join("f"), rdwr | bits, 0)?;
            Ok((getfl(&f)?, pread(&f, 10, 0)?))
        });
    }
    both_ok(&g, "O_EXCL without O_CREAT is ignored", |r| {
        getfl(&open_raw(&r.join("f"), rdonly | libc::O_EXCL, 0)?)
    });
    // O_ACCMODE 3: neither readable nor writable, yet it needs both permissions.
    both_ok(&g, "access mode 3", |r| {
        let f = open_raw(&r.join("f"), libc::O_ACCMODE, 0)?;
        Ok((
            getfl(&f)? & libc::O_ACCMODE,
            errno_of(&pread(&f, 1, 0)),
            errno_of(&pwrite(&f, b"x", 0)),
        ))
    });
    both_ok(&g, "O_RDONLY|O_TRUNC truncates", |r| {
        fs::write(r.join("t"), b"to be truncated")?;
        let f = open_raw(&r.join("t"), rdonly | libc::O_TRUNC, 0)?;
        Ok((getfl(&f)?, fs::metadata(r.join("t"))?.len()))
    });
    // openat2(2) refuses what open(2) ignores.
    both_err(&g, "openat2 with unknown flag bits", libc::EINVAL, |r| {
        openat2(&r.join("f"), 1 << 40, 0, 0)
    });
    both_err(
        &g,
        "openat2 with a mode but no O_CREAT",
        libc::EINVAL,
        |r| openat2(&r.join("f"), rdonly as u64, 0o644, 0),
    );
    both_err(
        &g,
        "openat2 O_CREAT with mode bits past 07777",
        libc::EINVAL,
        |r| openat2(&r.join("n2"), (wronly | libc::O_CREAT) as u64, 0o10644, 0),
    );
    both_err(&g, "openat2 with unknown resolve bits", libc::EINVAL, |r| {
        openat2(&r.join("f"), rdonly as u64, 0, 1 << 40)
    });
    both_err(
        &g,
        "openat2 RESOLVE_NO_SYMLINKS on a symlink",
        libc::ELOOP,
        |r| openat2(&r.join("lf"), rdonly as u64, 0, 0x04),
    );
    both_ok(&g, "openat2 O_CREAT with a valid mode", |r| {
        openat2(&r.join("n3"), (wronly | libc::O_CREAT) as u64, 0o640, 0)?;
        attr(&r.join("n3"))
    });
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
}

#[test]
fn open_flags_default() {
    open_flags(&[]);
}

#[test]
fn open_flags_devfuse() {
    open_flags(DEVFUSE);
}

fn rename_flags(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("a"), b"aaa")?;
        fs::write(r.join("b"), b"bbbb")?;
        fs::create_dir(r.join("d"))?;
        fs::write(r.join("d/in"), b"in")?;
        fs::create_dir(r.join("e"))
    });
    let (noreplace, exchange, whiteout) = (
        libc::RENAME_NOREPLACE,
        libc::RENAME_EXCHANGE,
        libc::RENAME_WHITEOUT,
    );
    for flags in [1 << 3, 1 << 5, 1 << 31, noreplace | (1 << 8)] {
        both_err(
            &g,
            &format!("renameat2 flags {flags:#x}"),
            libc::EINVAL,
            |r| renameat2(&r.join("a"), &r.join("c"), flags),
        );
    }
    both_err(&g, "NOREPLACE|EXCHANGE", libc::EINVAL, |r| {
        renameat2(&r.join("a"), &r.join("b"), noreplace | exchange)
    });
    both_err(&g, "WHITEOUT|EXCHANGE", libc::EINVAL, |r| {
        renameat2(&r.join("a"), &r.join("b"), whiteout | exchange)
    });
    both_err(&g, "EXCHANGE with a missing target", libc::ENOENT, |r| {
        renameat2(&r.join("a"), &r.join("missing"), exchange)
    });
    both_err(&g, "EXCHANGE with a missing source", libc::ENOENT, |r| {
        renameat2(&r.join("missing"), &r.join("a"), exchange)
    });
    both_err(&g, "NOREPLACE onto an existing file", libc::EEXIST, |r| {
        renameat2(&r.join("a"), &r.join("b"), noreplace)
    });
    both_err(&g, "NOREPLACE onto an existing dir", libc::EEXIST, |r| {
        renameat2(&r.join("d"), &r.join("e"), noreplace)
    });
    both_err(
        &g,
        "EXCHANGE of a dir with its own child",
        libc::EINVAL,
        |r| renameat2(&r.join("d"), &r.join("d/in"), exchange),
    );
    both_err(&g, "rename a dir into itself", libc::EINVAL, |r| {
        fs::rename(r.join("d"), r.join("d/sub"))
    });
    both_err(
        &g,
        "rename a dir over a non-empty dir",
        libc::ENOTEMPTY,
        |r| fs::rename(r.join("e"), r.join("d")),
    );
    both_err(&g, "rename a file over a dir", libc::EISDIR, |r| {
        fs::rename(r.join("a"), r.join("e"))
    });
    both_err(&g, "rename a dir over a file", libc::ENOTDIR, |r| {
        fs::rename(r.join("e"), r.join("a"))
    });
    both_ok(&g, "nothing moved so far", |r| {
        Ok((
            fs::read(r.join("a"))?,
            fs::read(r.join("b"))?,
            dir_names(r)?,
        ))
    });
    both_ok(&g, "EXCHANGE a file and a dir", |r| {
        renameat2(&r.join("a"), &r.join("d"), exchange)?;
        Ok((
            attr(&r.join("a"))?,
            fs::read(r.join("d"))?,
            dir_names(&r.join("a"))?,
        ))
    });
    both_ok(&g, "EXCHANGE a name with itself", |r| {
        renameat2(&r.join("b"), &r.join("b"), exchange)?;
        fs::read(r.join("b"))
    });
    both_ok(&g, "NOREPLACE onto a free name", |r| {
        renameat2(&r.join("b"), &r.join("c"), noreplace)?;
        Ok((fs::read(r.join("c"))?, r.join("b").exists()))
    });
    seen(&g, "RENAME_WHITEOUT", |r| {
        renameat2(&r.join("c"), &r.join("w"), whiteout)?;
        Ok((attr(&r.join("c"))?, fs::read(r.join("w"))?))
    });
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn rename_flags_default() {
    rename_flags(&[]);
}

#[test]
fn rename_flags_devfuse() {
    rename_flags(DEVFUSE);
}

fn fallocate_flags(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    let data = pattern(16 << 10, 3);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("f"), &data)?;
        fs::create_dir(r.join("d"))
    });
    let state = |r: &Path| -> io::Result<(u64, String)> {
        let f = fs::read(r.join("f"))?;
        Ok((f.len() as u64, digest(&f)))
    };
    let (keep, punch, zero) = (
        libc::FALLOC_FL_KEEP_SIZE,
        libc::FALLOC_FL_PUNCH_HOLE,
        libc::FALLOC_FL_ZERO_RANGE,
    );
    for mode in [0x100, 1 << 30, i32::MIN, keep | 0x200, -1] {
        both_err(
            &g,
            &format!("fallocate mode {mode:#x}"),
            libc::EOPNOTSUPP,
            |r| fallocate(&rw(&r.join("f"))?, mode, 0, 4096),
        );
    }
    both_err(&g, "PUNCH_HOLE without KEEP_SIZE", libc::EOPNOTSUPP, |r| {
        fallocate(&rw(&r.join("f"))?, punch, 0, 4096)
    });
    for (what, mode) in [
        ("PUNCH_HOLE|ZERO_RANGE", punch | zero | keep),
        ("NO_HIDE_STALE", FALLOC_FL_NO_HIDE_STALE),
        (
            "NO_HIDE_STALE|PUNCH_HOLE",
            FALLOC_FL_NO_HIDE_STALE | punch | keep,
        ),
        ("UNSHARE_RANGE", FALLOC_FL_UNSHARE_RANGE),
        ("WRITE_ZEROES|KEEP_SIZE", FALLOC_FL_WRITE_ZEROES | keep),
    ] {
        seen(&g, &format!("fallocate {what}"), |r| {
            fallocate(&rw(&r.join("f"))?, mode, 0, 4096)?;
            state(r)
        });
    }
    both_err(&g, "fallocate len 0", libc::EINVAL, |r| {
        fallocate(&rw(&r.join("f"))?, 0, 0, 0)
    });
    both_err(&g, "fallocate on an O_RDONLY fd", libc::EBADF, |r| {
        fallocate(&File::open(r.join("f"))?, 0, 0, 10)
    });
    both_err(&g, "fallocate on a dir fd", libc::EBADF, |r| {
        fallocate(&File::open(r.join("d"))?, 0, 0, 10)
    });
    both_ok(&g, "fallocate on an O_APPEND fd", |r| {
        let f = OpenOptions::new().append(true).open(r.join("f"))?;
        Ok((errno_of(&fallocate(&f, keep, 0, 100)), state(r)?))
    });
    both_ok(&g, "ZERO_RANGE|KEEP_SIZE past EOF", |r| {
        fallocate(&rw(&r.join("f"))?, zero | keep, 20_000, 10_000)?;
        state(r)
    });
    both_ok(&g, "PUNCH_HOLE|KEEP_SIZE past EOF", |r| {
        fallocate(&rw(&r.join("f"))?, punch | keep, 1 << 20, 4096)?;
        state(r)
    });
    both_ok(&g, "the refused modes left the data", |r| state(r));
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
}

#[test]
fn fallocate_flags_default() {
    fallocate_flags(&[]);
}

#[test]
fn fallocate_flags_devfuse() {
    fallocate_flags(DEVFUSE);
}
