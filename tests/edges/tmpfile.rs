//! O_TMPFILE corners (tests/tmpfile.rs has the plain case).

use super::*;

fn tmpfile_edges(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let ring = over_ring(&g, opts);
    both_ok(&g, "setup", |r| {
        fs::write(r.join("f"), b"file")?;
        fs::create_dir(r.join("d"))
    });
    const TMP: i32 = libc::O_TMPFILE;
    // Refused by the VFS before the fs is asked: the same on both transports.
    both_err(&g, "O_TMPFILE read-only", libc::EINVAL, |r| {
        open_raw(r, TMP | libc::O_RDONLY, 0o600)
    });
    both_err(&g, "O_TMPFILE|O_CREAT", libc::EINVAL, |r| {
        open_raw(r, TMP | libc::O_CREAT | libc::O_RDWR, 0o600)
    });
    both_err(&g, "O_TMPFILE on a file", libc::ENOTDIR, |r| {
        open_raw(&r.join("f"), TMP | libc::O_RDWR, 0o600)
    });
    both_err(&g, "O_TMPFILE in a missing dir", libc::ENOENT, |r| {
        open_raw(&r.join("missing"), TMP | libc::O_RDWR, 0o600)
    });

    // What the fs itself answers. Over /dev/fuse the kernel has no TMPFILE to send and says
    // EOPNOTSUPP (tests/tmpfile.rs); natively and over io_uring these must agree.
    type Case = fn(&Path) -> io::Result<Vec<String>>;
    let cases: [(&str, Case); 4] = [
        ("O_TMPFILE|O_EXCL then linkat is ENOENT", |r| {
            let f = open_raw(&r.join("d"), TMP | libc::O_RDWR | libc::O_EXCL, 0o600)?;
            pwrite(&f, b"never named", 0)?;
            let linked = outcome(link_fd(&f, &r.join("d/x")));
            Ok(vec![
                format!("{linked:?}"),
                format!("{:?}", dir_names(&r.join("d"))?),
            ])
        }),
        ("O_TMPFILE linked twice, then onto an existing name", |r| {
            let f = open_raw(&r.join("d"), TMP | libc::O_WRONLY, 0o640)?;
            pwrite(&f, b"twice", 0)?;
            let nlink0 = f.metadata()?.nlink();
            link_fd(&f, &r.join("d/one"))?;
            link_fd(&f, &r.join("d/two"))?;
            let again = outcome(link_fd(&f, &r.join("f")));
            Ok(vec![
                format!("{nlink0}"),
                format!("{:?}", attr(&r.join("d/one"))?),
                format!("{again:?}"),
                format!("{:?}", fs::read(r.join("d/two"))?),
            ])
        }),
        ("O_TMPFILE: attributes and changes before the link", |r| {
            let f = open_raw(&r.join("d"), TMP | libc::O_RDWR, 0o7777)?;
            let before = attr_of(&f.metadata()?);
            ftruncate(&f, 5000)?;
            fallocate(
                &f,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                4096,
            )?;
            pwrite(&f, b"tail", 4996)?;
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o604))?;
            link_fd(&f, &r.join("d/named"))?;
            Ok(vec![
                format!("{before:?}"),
                format!("{:?}", attr(&r.join("d/named"))?),
                digest(&fs::read(r.join("d/named"))?),
            ])
        }),
        ("O_TMPFILE: zero-length and huge I/O", |r| {
            let f = open_raw(&r.join("d"), TMP | libc::O_RDWR, 0o600)?;
            Ok(vec![
                format!("{:?}", outcome(pwrite(&f, b"", 0))),
                format!("{:?}", outcome(pread(&f, 64 << 20, 0))),
                format!("{:?}", outcome(pwrite(&f, b"x", i64::MAX))),
                format!("{:?}", outcome(ftruncate(&f, i64::MAX))),
                format!("{:?}", outcome(lseek(&f, 0, libc::SEEK_DATA))),
            ])
        }),
    ];
    for (what, case) in cases {
        if ring {
            both_ok(&g, what, case);
        } else {
            case(&g.native).unwrap_or_else(|e| panic!("{what}: native: {e}"));
            let mount = case(&g.mnt);
            assert_eq!(
                errno_of(&mount),
                Some(libc::EOPNOTSUPP),
                "{what}: over /dev/fuse: {mount:?}"
            );
        }
    }
    if ring {
        assert_trees_equal(&g.native, &g.mnt, TreeOpts::default());
    }
    assert_eq!(
        dir_names(&g.backing).unwrap(),
        dir_names(&g.mnt).unwrap(),
        "BACKING and the mount list the same names"
    );
}

#[test]
fn tmpfile_edges_default() {
    tmpfile_edges(&[]);
}

#[test]
fn tmpfile_edges_devfuse() {
    tmpfile_edges(DEVFUSE);
}
