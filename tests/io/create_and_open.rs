//! Creating and opening: O_EXCL, O_TRUNC, access modes of the fd, the umask.

use super::*;

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

/// Callers with different umasks, one after the other (each a shell with its own): every
/// file, directory and fifo gets its own caller's umask, as natively, whichever worker
/// served the caller before.
#[test]
fn each_caller_gets_its_own_umask() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    for (i, umask) in ["077", "000", "027", "077", "022"].iter().enumerate() {
        both_ok(&g, &format!("creations under umask {umask}"), |r| {
            let script =
                format!("umask {umask} && cd \"$1\" && touch f{i} && mkdir d{i} && mkfifo p{i}");
            let status = std::process::Command::new("sh")
                .args(["-c", &script, "sh"])
                .arg(r)
                .status()?;
            assert!(status.success(), "sh -c {script:?} in {}", r.display());
            ["f", "d", "p"]
                .map(|k| attr(&r.join(format!("{k}{i}"))).map(|a| a.mode))
                .into_iter()
                .collect::<io::Result<Vec<_>>>()
        });
    }
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}
