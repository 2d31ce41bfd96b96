//! Who owns what a caller creates: the creator, and the group a setgid directory passes on.

use super::*;

#[test]
fn created_files_are_owned_by_the_creator() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&[], |r| {
        user_dir(r, "u", USER, GROUP, 0o777);
    });
    let owners = user_ok(&g, USER, GROUP, "create file/dir/symlink/fifo", |r| {
        let u = r.join("u");
        fs::write(u.join("file"), b"mine")?;
        fs::create_dir(u.join("dir"))?;
        symlink("file", u.join("sym"))?;
        mknod(&u.join("fifo"), libc::S_IFIFO | 0o644, 0)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(u.join("excl"))?;
        fs::hard_link(u.join("file"), u.join("hard"))?;
        ["file", "dir", "sym", "fifo", "excl", "hard"]
            .iter()
            .map(|n| attr(&u.join(n)))
            .collect::<io::Result<Vec<_>>>()
    });
    for a in &owners {
        assert_eq!((a.uid, a.gid), (USER, GROUP), "{a:?}");
    }
    let root_owned = both_ok(&g, "root creates in the same dir", |r| {
        fs::write(r.join("u/rootfile"), b"root's")?;
        fs::create_dir(r.join("u/rootdir"))?;
        Ok((attr(&r.join("u/rootfile"))?, attr(&r.join("u/rootdir"))?))
    });
    assert_eq!((root_owned.0.uid, root_owned.0.gid), (0, 0));
    assert_eq!((root_owned.1.uid, root_owned.1.gid), (0, 0));
    // The backing files carry the same owners (not just a translated view).
    assert_eq!(fs::metadata(g.b("u/file")).unwrap().uid(), USER);
    assert_eq!(fs::metadata(g.b("u/rootfile")).unwrap().uid(), 0);
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}

#[test]
fn setgid_directories_pass_their_group_on() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    both_ok(&g, "make setgid dirs", |r| {
        for (name, mode) in [("g", 0o2775), ("open", 0o2777)] {
            fs::create_dir(r.join(name))?;
            chown(&r.join(name), 0, GROUP)?;
            chmod(&r.join(name), mode)?;
        }
        attr(&r.join("g"))
    });
    let (file, sub) = both_ok(&g, "root creates in a setgid dir", |r| {
        fs::write(r.join("g/file"), b"f")?;
        fs::create_dir(r.join("g/sub"))?;
        mknod(&r.join("g/fifo"), libc::S_IFIFO | 0o600, 0)?;
        symlink("file", r.join("g/sym"))?;
        let attrs = (attr(&r.join("g/file"))?, attr(&r.join("g/sub"))?);
        // mkdir gave 02755 (umask 022); let the group write for the next step.
        chmod(&r.join("g/sub"), 0o2775)?;
        Ok(attrs)
    });
    assert_eq!(file.gid, GROUP, "file did not inherit the dir's group");
    assert_eq!(sub.gid, GROUP, "subdir did not inherit the dir's group");
    assert!(
        u32::from_str_radix(&sub.mode, 8).unwrap() & libc::S_ISGID != 0,
        "subdir lost the setgid bit: {}",
        sub.mode
    );
    let nested = user_ok(&g, USER, GROUP, "member creates in the subdir", |r| {
        fs::write(r.join("g/sub/ufile"), b"u")?;
        fs::create_dir(r.join("g/sub/udir"))?;
        Ok((attr(&r.join("g/sub/ufile"))?, attr(&r.join("g/sub/udir"))?))
    });
    assert_eq!((nested.0.uid, nested.0.gid), (USER, GROUP));
    let outsider = user_ok(&g, OTHER, OTHER, "non-member creates setgid file", |r| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o2755)
            .open(r.join("open/o"))?;
        fs::create_dir(r.join("open/odir"))?;
        Ok((attr(&r.join("open/o"))?, attr(&r.join("open/odir"))?))
    });
    assert_eq!(
        outsider.0.gid, GROUP,
        "group not inherited for a non-member"
    );
    assert_eq!(outsider.0.uid, OTHER);
    assert!(
        u32::from_str_radix(&outsider.0.mode, 8).unwrap() & libc::S_ISGID == 0,
        "a non-member's new file kept S_ISGID: {}",
        outsider.0.mode
    );
    user_ok(&g, OTHER, OTHER, "non-member chmod g+s on own file", |r| {
        chmod(&r.join("open/o"), 0o2755)?;
        mode_of(&r.join("open/o"))
    });
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
}
