//! The daemon's one line naming each missing feature.

use super::*;

/// The daemon logs one line naming each missing feature and its replacement; Docker's EPERM
/// is taken as missing like ENOSYS.
#[test]
fn probe_line_names_each_fallback() {
    if !require_root_and_fuse() {
        return;
    }
    for errno in [seccomp_wrap::ENOSYS, seccomp_wrap::EPERM] {
        let mut m = Mount::start("fchmodat2,xattrat,io_uring", errno, &[], |_| {});
        let line = m.probe_line();
        assert!(line.contains(" WARN "), "{line}");
        for needle in [
            "lacks fchmodat2 (chmod: fchmodat on /proc/self/fd/N",
            "setxattrat/getxattrat/listxattrat/removexattrat (xattrs: ",
            "io_uring (io_uring_setup: ",
            "data I/O: plain syscalls)",
        ] {
            assert!(
                line.contains(needle),
                "errno {errno}: no {needle:?} in {line}"
            );
        }
        let log = m.stop();
        let probe_lines = log.lines().filter(|l| l.contains("uringfs::probe")).count();
        assert_eq!(probe_lines, 1, "one line:\n{log}");
    }
    // A 6.8 kernel: fchmodat2 is there, *xattrat is not.
    let m = Mount::start("xattrat", seccomp_wrap::ENOSYS, &[], |_| {});
    let line = m.probe_line();
    assert!(line.contains("lacks setxattrat/getxattrat/"), "{line}");
    assert!(line.contains("using fchmodat2, io_uring ("), "{line}");
    assert!(!line.contains("lacks fchmodat2"), "{line}");
}
