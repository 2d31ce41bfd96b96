//! Shared mappings read and written through the mount.

use super::*;

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
