//! Locks on directories.

use super::*;

fn directory_locks(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = mount(opts);
    both_ok(&g, "setup", |r| fs::create_dir(r.join("d")));
    let d = |r: &Path| File::open(r.join("d"));
    let _ = both_ok(&g, "flock on a directory", |r| {
        let (a, b) = (d(r)?, d(r)?);
        flock(&a, libc::LOCK_EX)?;
        let ex_nb = errno_of(&flock(&b, libc::LOCK_EX | libc::LOCK_NB));
        let sh_nb = errno_of(&flock(&b, libc::LOCK_SH | libc::LOCK_NB));
        flock(&a, libc::LOCK_SH)?;
        let sh_after = outcome(flock(&b, libc::LOCK_SH | libc::LOCK_NB));
        flock(&a, libc::LOCK_UN)?;
        flock(&b, libc::LOCK_UN)?;
        let ex_after = outcome(flock(&b, libc::LOCK_EX | libc::LOCK_NB));
        Ok((ex_nb, sh_nb, sh_after, ex_after))
    });
    for op in [0, libc::LOCK_SH | libc::LOCK_EX, 1 << 10] {
        both_err(
            &g,
            &format!("flock op {op:#x} on a directory"),
            libc::EINVAL,
            |r| flock(&d(r)?, op),
        );
    }
    both_ok(&g, "fcntl read lock on an O_RDONLY directory", |r| {
        let f = d(r)?;
        fcntl_lock(&f, libc::F_SETLK, libc::F_RDLCK, 0, 0)?;
        let unlock = fcntl_lock(&f, libc::F_SETLK, libc::F_UNLCK, 0, 0)?;
        Ok((unlock, fcntl_lock(&f, libc::F_GETLK, libc::F_WRLCK, 0, 10)?))
    });
    both_err(
        &g,
        "fcntl write lock on an O_RDONLY directory",
        libc::EBADF,
        |r| fcntl_lock(&d(r)?, libc::F_SETLK, libc::F_WRLCK, 0, 0),
    );
    both_err(
        &g,
        "F_SETLKW write lock on an O_RDONLY directory",
        libc::EBADF,
        |r| fcntl_lock(&d(r)?, libc::F_SETLKW, libc::F_WRLCK, 0, 0),
    );
    let _ = both_ok(&g, "OFD locks on a directory", |r| {
        let (a, b) = (d(r)?, d(r)?);
        fcntl_lock(&a, libc::F_OFD_SETLK, libc::F_RDLCK, 0, 100)?;
        let conflict = fcntl_lock(&b, libc::F_OFD_GETLK, libc::F_WRLCK, 0, 10)?;
        let wr = errno_of(&fcntl_lock(&b, libc::F_OFD_SETLK, libc::F_WRLCK, 0, 10));
        let rd = outcome(fcntl_lock(&b, libc::F_OFD_SETLK, libc::F_RDLCK, 50, 10));
        Ok((conflict, wr, rd))
    });
    both_err(&g, "fcntl lock of type 7", libc::EINVAL, |r| {
        fcntl_lock(&d(r)?, libc::F_SETLK, 7, 0, 0)
    });
    both_err(&g, "fcntl lock with a negative start", libc::EINVAL, |r| {
        fcntl_lock(&d(r)?, libc::F_SETLK, libc::F_RDLCK, -1, 10)
    });
    both_err(&g, "fcntl lock on an O_PATH directory", libc::EBADF, |r| {
        fcntl_lock(
            &open_raw(&r.join("d"), libc::O_PATH, 0)?,
            libc::F_SETLK,
            libc::F_RDLCK,
            0,
            0,
        )
    });
    both_ok(&g, "flock on an O_PATH directory", |r| {
        Ok(errno_of(&flock(
            &open_raw(&r.join("d"), libc::O_PATH, 0)?,
            libc::LOCK_SH,
        )))
    });
}

#[test]
fn directory_locks_default() {
    directory_locks(&[]);
}

#[test]
fn directory_locks_devfuse() {
    directory_locks(DEVFUSE);
}
