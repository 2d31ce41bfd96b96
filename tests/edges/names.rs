//! Names of 255 and 256 bytes.

use super::*;

fn long_names(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    let too_long = libc::ENAMETOOLONG;
    let (f255, f256) = (name('f', 255), name('f', 256));
    both_ok(&g, "create a 255-byte name", |r| {
        File::create(r.join(&f255))?;
        attr(&r.join(&f255))
    });
    both_err(&g, "create a 256-byte name", too_long, |r| {
        File::create(r.join(&f256))
    });
    both_err(&g, "O_CREAT|O_EXCL a 256-byte name", too_long, |r| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(r.join(&f256))
    });
    both_err(&g, "mknod a FIFO with a 256-byte name", too_long, |r| {
        mknod(&r.join(&f256), libc::S_IFIFO | 0o644, 0)
    });
    // 85 three-byte characters are 255 bytes; 86 are 258.
    let (euro85, euro86) = ("€".repeat(85), "€".repeat(86));
    both_ok(&g, "create a 255-byte UTF-8 name", |r| {
        fs::write(r.join(&euro85), b"euro")?;
        fs::read(r.join(&euro85))
    });
    both_err(&g, "create a 258-byte UTF-8 name", too_long, |r| {
        fs::write(r.join(&euro86), b"euro")
    });

    let (d255, d256) = (name('d', 255), name('d', 256));
    both_ok(&g, "mkdir a 255-byte name", |r| {
        fs::create_dir(r.join(&d255))?;
        // Two 255-byte components under one another.
        fs::write(r.join(&d255).join(&f255), b"deep")?;
        fs::read(r.join(&d255).join(&f255))
    });
    both_err(&g, "mkdir a 256-byte name", too_long, |r| {
        fs::create_dir(r.join(&d256))
    });
    both_err(&g, "mkdir a 256-byte name inside", too_long, |r| {
        fs::create_dir(r.join(&d255).join(&d256))
    });

    let (r255, r256) = (name('r', 255), name('r', 256));
    both_ok(&g, "rename to a 255-byte name", |r| {
        fs::write(r.join("src"), b"renamed")?;
        fs::rename(r.join("src"), r.join(&r255))?;
        Ok((fs::read(r.join(&r255))?, r.join("src").exists()))
    });
    both_err(&g, "rename to a 256-byte name", too_long, |r| {
        fs::rename(r.join(&r255), r.join(&r256))
    });
    both_err(&g, "rename from a 256-byte name", too_long, |r| {
        fs::rename(r.join(&r256), r.join("x"))
    });
    both_err(&g, "RENAME_NOREPLACE to a 256-byte name", too_long, |r| {
        renameat2(&r.join(&r255), &r.join(&r256), libc::RENAME_NOREPLACE)
    });
    both_err(&g, "rename a dir to a 256-byte name", too_long, |r| {
        fs::rename(r.join(&d255), r.join(&d256))
    });
    both_ok(&g, "the source of a refused rename stays", |r| {
        Ok((fs::read(r.join(&r255))?, attr(&r.join(&d255))?))
    });

    let (l255, l256) = (name('l', 255), name('l', 256));
    both_ok(&g, "link to a 255-byte name", |r| {
        fs::hard_link(r.join(&r255), r.join(&l255))?;
        Ok((attr(&r.join(&l255))?, fs::read(r.join(&l255))?))
    });
    both_err(&g, "link to a 256-byte name", too_long, |r| {
        fs::hard_link(r.join(&r255), r.join(&l256))
    });
    both_err(&g, "link from a 256-byte name", too_long, |r| {
        fs::hard_link(r.join(&l256), r.join("x"))
    });

    let (s255, s256) = (name('s', 255), name('s', 256));
    both_ok(&g, "symlink with a 255-byte name", |r| {
        std::os::unix::fs::symlink(&r255, r.join(&s255))?;
        Ok((fs::read_link(r.join(&s255))?, fs::read(r.join(&s255))?))
    });
    both_err(&g, "symlink with a 256-byte name", too_long, |r| {
        std::os::unix::fs::symlink("t", r.join(&s256))
    });
    // A target may be longer than a name, up to PATH_MAX with its NUL (and ext4 holds a block).
    let (t4095, t4096) = (name('t', 4095), name('t', 4096));
    both_ok(&g, "symlink to a 256-byte name", |r| {
        std::os::unix::fs::symlink(&r256, r.join("to256"))?;
        Ok((
            fs::read_link(r.join("to256"))?,
            errno_of(&fs::metadata(r.join("to256"))),
        ))
    });
    both_ok(&g, "symlink with a 4095-byte target", |r| {
        std::os::unix::fs::symlink(&t4095, r.join("t4095"))?;
        Ok((
            fs::read_link(r.join("t4095"))?.as_os_str().len(),
            attr(&r.join("t4095"))?,
            errno_of(&fs::metadata(r.join("t4095"))),
        ))
    });
    both_err(&g, "symlink with a 4096-byte target", too_long, |r| {
        std::os::unix::fs::symlink(&t4096, r.join("t4096"))
    });

    both_ok(&g, "stat of 255-byte names", |r| {
        Ok((
            attr(&r.join(&f255))?,
            attr(&r.join(&d255))?,
            attr(&r.join(&l255))?,
            attr(&r.join(&s255))?,
        ))
    });
    both_err(&g, "stat of a missing 255-byte name", libc::ENOENT, |r| {
        fs::symlink_metadata(r.join(name('m', 255)))
    });
    for (what, n) in [("file", &f256), ("dir", &d256), ("symlink", &s256)] {
        both_err(
            &g,
            &format!("stat of a 256-byte {what} name"),
            too_long,
            |r| fs::symlink_metadata(r.join(n)),
        );
    }
    both_err(&g, "stat of a 256-byte name under a dir", too_long, |r| {
        fs::symlink_metadata(r.join(&d255).join(&f256))
    });
    both_err(&g, "open of a 256-byte name", too_long, |r| {
        File::open(r.join(&f256))
    });
    both_err(&g, "unlink of a 256-byte name", too_long, |r| {
        fs::remove_file(r.join(&f256))
    });
    both_err(&g, "rmdir of a 256-byte name", too_long, |r| {
        fs::remove_dir(r.join(&d256))
    });
    both_err(&g, "xattr of a 256-byte name", too_long, |r| {
        lgetxattr(&r.join(&f256), "user.x")
    });
    both_ok(&g, "readdir lists the 255-byte names", |r| {
        Ok((dir_names(r)?, dir_names(&r.join(&d255))?))
    });
    assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
    both_ok(&g, "unlink and rmdir of 255-byte names", |r| {
        fs::remove_file(r.join(&d255).join(&f255))?;
        fs::remove_dir(r.join(&d255))?;
        for n in [&f255, &r255, &l255, &s255, &euro85] {
            fs::remove_file(r.join(n))?;
        }
        dir_names(r)
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn long_names_default() {
    long_names(&[]);
}

#[test]
fn long_names_devfuse() {
    long_names(DEVFUSE);
}
