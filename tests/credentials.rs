//! Every request runs exactly as its caller: setuid/setgid and file capabilities are dropped by
//! writers as natively, the kernel sees the new mode at once, passthrough I/O never runs with
//! another caller's rights, and a root caller without capabilities gets what native gives it.
//! Each case runs the same calls on native ext4 and on the mount and compares the outcomes.

mod common;

use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A second unprivileged user with write access through the "other" bits.
const OTHER: u32 = 2000;
/// `security.capability` with `cap_setuid=ep` (VFS_CAP_REVISION_2, effective flag).
const CAP_SETUID_EP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, // magic_etc: revision 2 | effective
    0x80, 0x00, 0x00, 0x00, // permitted[0]: CAP_SETUID (7)
    0x00, 0x00, 0x00, 0x00, // inheritable[0]
    0x00, 0x00, 0x00, 0x00, // permitted[1]
    0x00, 0x00, 0x00, 0x00, // inheritable[1]
];

fn cvt(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn fallocate(f: &File, mode: i32, offset: i64, len: i64) -> io::Result<()> {
    // SAFETY: a valid fd and plain integers.
    cvt(unsafe { libc::fallocate(f.as_raw_fd(), mode, offset, len) })
}

/// The permission bits `stat -c %a` shows: a statx asking for the mode alone. After a write
/// the kernel refreshes what the write changed (size, times) but not the mode, so a fuller
/// request (std's metadata, lstat) would refetch everything and hide a stale cached mode,
/// which is what permission checks and exec's setuid decision use.
fn mode_of(p: &Path) -> io::Result<u32> {
    let path = cpath(p);
    // SAFETY: an all-zero `statx` is a valid value to be overwritten.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable statx buffer.
    cvt(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MODE,
            &mut stx,
        )
    })?;
    Ok(u32::from(stx.stx_mode) & 0o7777)
}

/// Who makes a call.
#[derive(Debug, Clone, Copy)]
enum Who {
    Owner,
    OtherUser,
    Root,
    /// Root with an empty effective capability set (no CAP_FSETID, no DAC override).
    RootWithoutCaps,
}

impl Who {
    fn run<T: Send>(self, f: impl FnOnce() -> T + Send) -> T {
        match self {
            Who::Owner => as_user(USER, GROUP, f),
            Who::OtherUser => as_user(OTHER, OTHER, f),
            Who::Root => f(),
            Who::RootWithoutCaps => as_user(0, 0, f),
        }
    }
}

/// The calls that clear setuid/setgid natively (for a writer without CAP_FSETID).
#[derive(Debug, Clone, Copy)]
enum Change {
    Write,
    DirectWrite,
    Truncate,
    OpenTrunc,
    Fallocate,
    PunchHole,
    ZeroRange,
    CopyInto,
    Chown,
}

const CHANGES: [Change; 9] = [
    Change::Write,
    Change::DirectWrite,
    Change::Truncate,
    Change::OpenTrunc,
    Change::Fallocate,
    Change::PunchHole,
    Change::ZeroRange,
    Change::CopyInto,
    Change::Chown,
];

impl Change {
    fn apply(self, path: &Path, source: &Path, who: Who) -> io::Result<()> {
        let write = || OpenOptions::new().write(true).open(path);
        match self {
            Change::Write => write()?.write_all_at(b"x", 0),
            Change::DirectWrite => {
                let f = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)?;
                let buf = AlignedPage::filled(b'd');
                f.write_all_at(buf.bytes(), 0)
            }
            Change::Truncate => truncate(path, 100),
            Change::OpenTrunc => OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map(drop),
            Change::Fallocate => fallocate(&write()?, 0, 0, 16384),
            Change::PunchHole => fallocate(
                &write()?,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                4096,
            ),
            Change::ZeroRange => fallocate(&write()?, libc::FALLOC_FL_ZERO_RANGE, 0, 4096),
            Change::CopyInto => {
                let src = File::open(source)?;
                let dst = write()?;
                let mut off_in: i64 = 0;
                let mut off_out: i64 = 0;
                // SAFETY: valid fds and offsets that outlive the call.
                let n = unsafe {
                    libc::copy_file_range(
                        src.as_raw_fd(),
                        &mut off_in,
                        dst.as_raw_fd(),
                        &mut off_out,
                        100,
                        0,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }
            Change::Chown => {
                let (uid, gid) = match who {
                    Who::OtherUser => (OTHER, OTHER),
                    _ => (USER, GROUP),
                };
                chown(path, uid, gid)
            }
        }
    }
}

/// One page, page-aligned, for O_DIRECT.
#[repr(C, align(4096))]
struct AlignedPage([u8; 4096]);

impl AlignedPage {
    fn filled(byte: u8) -> Box<AlignedPage> {
        Box::new(AlignedPage([byte; 4096]))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A file owned by `USER:GROUP` with `mode` and 8 KiB of data, made (as root) in `setup_dir`
/// and seen through `dir`, whose stat also puts the mode in the kernel's cache.
///
/// For the mount, `setup_dir` is BACKING: a file written through a passthrough mount would
/// keep its (ordinary, pre-chmod) passthrough backing file in the daemon until the kernel's
/// asynchronous RELEASE arrives, and an open racing that RELEASE shares it (see README,
/// Passthrough).
fn target_file(dir: &Path, setup_dir: &Path, name: &str, mode: u32) -> PathBuf {
    let made = setup_dir.join(name);
    fs::write(&made, vec![b'a'; 8192]).expect("create target");
    chown(&made, USER, GROUP).expect("chown target");
    chmod(&made, mode).expect("chmod target");
    let p = dir.join(name);
    assert_eq!(mode_of(&p).expect("stat target"), mode);
    p
}

/// What one change leaves behind, as seen right after it through the same tree.
#[derive(Debug, PartialEq)]
struct After {
    outcome: Outcome<()>,
    mode: Outcome<u32>,
    capability: Option<i32>,
}

fn after(path: &Path, res: io::Result<()>) -> After {
    After {
        outcome: outcome(res),
        mode: outcome(mode_of(path)),
        capability: errno_of(&lgetxattr(path, "security.capability")),
    }
}

/// Runs every change by every writer on a file with `mode`, natively and through the mount,
/// and returns the cases whose outcome differs. `with_caps` gives the file `cap_setuid=ep`.
fn mismatches(g: &MountGuard, mode: u32, with_caps: bool) -> Vec<String> {
    let mut diffs = Vec::new();
    let writers = [Who::Owner, Who::OtherUser, Who::Root, Who::RootWithoutCaps];
    for (i, change) in CHANGES.iter().enumerate() {
        for (j, who) in writers.iter().enumerate() {
            let name = format!("f{mode:o}-{with_caps}-{i}-{j}");
            let run = |dir: &Path, setup_dir: &Path| {
                let source = dir.join("source");
                if !source.exists() {
                    fs::write(&source, vec![b's'; 4096]).expect("source");
                    chmod(&source, 0o644).expect("chmod source");
                }
                let p = target_file(dir, setup_dir, &name, mode);
                if with_caps {
                    // After the chown and chmod, which would drop it.
                    lsetxattr(
                        &setup_dir.join(&name),
                        "security.capability",
                        &CAP_SETUID_EP,
                        0,
                    )
                    .expect("setcap");
                    assert!(lgetxattr(&p, "security.capability").is_ok(), "setcap");
                }
                let res = who.run(|| change.apply(&p, &source, *who));
                after(&p, res)
            };
            let native = run(&g.native, &g.native);
            let mount = run(&g.mnt, &g.backing);
            // BACKING must hold what native holds, not only the kernel's view of it.
            let backing_mode = outcome(mode_of(&g.backing.join(&name)));
            if native != mount || backing_mode != native.mode {
                diffs.push(format!(
                    "{change:?} by {who:?} on {mode:o}: native {native:?}, mount {mount:?}, \
                     BACKING mode {backing_mode:?}"
                ));
            }
        }
    }
    diffs
}

fn kill_privileges_matrix(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let mut all = vec!["allow_other"];
    all.extend_from_slice(opts);
    let g = MountGuard::new(&all);
    let mut diffs = mismatches(&g, 0o6777, false);
    diffs.extend(mismatches(&g, 0o6666, false));
    diffs.extend(mismatches(&g, 0o777, true));
    assert!(
        diffs.is_empty(),
        "differences from native:\n{}",
        diffs.join("\n")
    );
}

/// Every call that drops setuid, setgid or file capabilities natively, by the owner, another
/// user, root and root without capabilities, leaves the same mode (seen at once through the
/// mount, and in BACKING) and the same `security.capability` as natively.
#[test]
fn writers_drop_privileges_as_natively_default() {
    kill_privileges_matrix(&[]);
}

#[test]
fn writers_drop_privileges_as_natively_cache_always() {
    kill_privileges_matrix(&["cache=always"]);
}

#[test]
fn writers_drop_privileges_as_natively_cache_none() {
    kill_privileges_matrix(&["cache=none"]);
}

#[test]
fn writers_drop_privileges_as_natively_passthrough() {
    kill_privileges_matrix(&["passthrough"]);
}

/// The issue's repro: root holds a 6777 file of another user open; an ordinary user appends.
/// Natively `stat` right after shows 777; so must the mount, in every cache mode, and with
/// passthrough BACKING itself must be cleared (no passthrough I/O as the first opener).
fn append_by_a_user_while_root_holds_the_file(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let mut all = vec!["allow_other"];
    all.extend_from_slice(opts);
    let g = MountGuard::new(&all);
    // The file is made in BACKING behind the mount's back, as in the report, and the user is
    // a real process (a thread with dropped capabilities makes the kernel send its own
    // kill-suid SETATTR first, whose reply refreshes the cache).
    for dir in [&g.native, &g.backing] {
        let p = dir.join("f");
        fs::write(&p, b"x").unwrap();
        chown(&p, OTHER, OTHER).unwrap();
        chmod(&p, 0o6777).unwrap();
    }
    let modes = both_ok(&g, "append while root holds it open", |dir| {
        let p = dir.join("f");
        mode_of(&p)?;
        let _held = OpenOptions::new().read(true).write(true).open(&p)?;
        let out = run_as(USER, GROUP, &format!("printf y >> '{}'", p.display()));
        if !out.status.success() {
            return Err(io::Error::other(format!("append failed: {out:?}")));
        }
        mode_of(&p)
    });
    assert_eq!(modes, 0o777);
    assert_eq!(mode_of(&g.b("f")).unwrap(), 0o777, "BACKING keeps setuid");
}

#[test]
fn append_by_a_user_while_root_holds_the_file_default() {
    append_by_a_user_while_root_holds_the_file(&[]);
}

#[test]
fn append_by_a_user_while_root_holds_the_file_cache_always() {
    append_by_a_user_while_root_holds_the_file(&["cache=always"]);
}

#[test]
fn append_by_a_user_while_root_holds_the_file_passthrough() {
    append_by_a_user_while_root_holds_the_file(&["passthrough"]);
}

/// The reverse: an ordinary user opens first and holds the file; root writes later. Natively
/// root (CAP_FSETID) keeps setuid; on an ordinary file its write succeeds. Passthrough must
/// not have tied the inode to the user's identity, nor root's writes to the user's rights.
#[test]
fn root_writes_after_a_user_opened_the_file_passthrough() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&["allow_other", "passthrough"]);
    for mode in [0o6777, 0o666] {
        let what = format!("root appends to a {mode:o} file a user holds open");
        let (mode_after, data) = both_ok(&g, &what, |dir| {
            let p = dir.join(format!("f{mode:o}"));
            fs::write(&p, b"x")?;
            chown(&p, USER, GROUP)?;
            chmod(&p, mode)?;
            // The user only opens (a write of its own would clear the bits first).
            let held = as_user(USER, GROUP, || {
                OpenOptions::new().read(true).write(true).open(&p)
            })?;
            OpenOptions::new().append(true).open(&p)?.write_all(b"r")?;
            drop(held);
            Ok((mode_of(&p)?, fs::read(&p)?))
        });
        assert_eq!(mode_after, mode, "{what}");
        assert_eq!(data, b"xr", "{what}");
    }
    // The ordinary file went through passthrough (so the case above tested it).
    let c = g.counters();
    assert!(c.passthrough_opens > 0, "no passthrough open: {}", c.line);
}

/// Root without capabilities: refused another user's private file, and `trusted.*` xattrs,
/// exactly as natively, with and without the kernel's permission checks.
fn root_without_capabilities(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let mut all = vec!["allow_other"];
    all.extend_from_slice(opts);
    let g = MountGuard::new(&all);
    for dir in [&g.native, &g.mnt] {
        let p = dir.join("private");
        fs::write(&p, b"secret").unwrap();
        chown(&p, USER, GROUP).unwrap();
        chmod(&p, 0o600).unwrap();
        lsetxattr(&p, "trusted.t", b"v", 0).unwrap();
    }
    both_err(
        &g,
        "capability-less root reads a 0600 file",
        libc::EACCES,
        |d| as_user(0, 0, || fs::read(d.join("private"))),
    );
    both_err(&g, "capability-less root writes it", libc::EACCES, |d| {
        as_user(0, 0, || {
            OpenOptions::new().write(true).open(d.join("private"))
        })
    });
    both_err(
        &g,
        "capability-less root sets trusted.*",
        libc::EPERM,
        |d| as_user(0, 0, || lsetxattr(&d.join("private"), "trusted.u", b"v", 0)),
    );
    both(&g, "capability-less root reads trusted.*", |d| {
        as_user(0, 0, || lgetxattr(&d.join("private"), "trusted.t"))
    })
    .expect_err("trusted.* must stay hidden");
    // Root with its capabilities still may.
    both_ok(&g, "root reads it", |d| fs::read(d.join("private")));
}

#[test]
fn root_without_capabilities_is_refused_default() {
    root_without_capabilities(&[]);
}

#[test]
fn root_without_capabilities_is_refused_nodefault_permissions() {
    root_without_capabilities(&["nodefault_permissions"]);
}

/// `O_RDWR|O_DIRECT`, ftruncate to 0x69490, map it shared, write the last 0x490 bytes, msync:
/// the writeback of that partial page must not go through O_DIRECT.
fn msync_of_a_mapped_direct_file(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    const LEN: usize = 0x69490;
    let data = both_ok(&g, "msync of a mapped O_DIRECT file", |dir| {
        let p = dir.join("mapped");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&p)?;
        f.set_len(LEN as u64)?;
        // SAFETY: a fresh shared mapping of LEN bytes of an fd that stays open until munmap.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the mapping is LEN bytes long and writable.
        let bytes = unsafe { std::slice::from_raw_parts_mut(map.cast::<u8>(), LEN) };
        bytes[LEN - 0x490..].fill(0x5a);
        // SAFETY: `map` is the mapping made above, LEN bytes.
        let synced = cvt(unsafe { libc::msync(map, LEN, libc::MS_SYNC) });
        // SAFETY: as above; nothing uses `bytes` afterwards.
        let unmapped = cvt(unsafe { libc::munmap(map, LEN) });
        synced?;
        unmapped?;
        drop(f);
        Ok(digest(&fs::read(&p)?))
    });
    let mut expected = vec![0u8; LEN];
    expected[LEN - 0x490..].fill(0x5a);
    assert_eq!(data, digest(&expected));
}

#[test]
fn msync_of_a_mapped_direct_file_default() {
    msync_of_a_mapped_direct_file(&[]);
}

#[test]
fn msync_of_a_mapped_direct_file_cache_none() {
    msync_of_a_mapped_direct_file(&["cache=none"]);
}

/// Root opens a 6777 file with every capability, then writes from a thread that has dropped
/// them: natively the write clears setuid/setgid (the writer's CAP_FSETID counts, not the
/// opener's). The kernel marks that write FUSE_WRITE_KILL_SUIDGID; the daemon must honour the
/// mark although the open carried root's capabilities.
fn write_marked_kill_suidgid_by_a_root_opener(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let mode = both_ok(&g, "capability-less write through root's fd", |dir| {
        let p = dir.join("f");
        fs::write(&p, b"x")?;
        chmod(&p, 0o6777)?;
        mode_of(&p)?;
        let f = OpenOptions::new().write(true).open(&p)?;
        as_user(0, 0, || f.write_all_at(b"y", 1))?;
        mode_of(&p)
    });
    assert_eq!(mode, 0o777);
}

#[test]
fn write_marked_kill_suidgid_by_a_root_opener_default() {
    write_marked_kill_suidgid_by_a_root_opener(&[]);
}

#[test]
fn write_marked_kill_suidgid_by_a_root_opener_cache_none() {
    write_marked_kill_suidgid_by_a_root_opener(&["cache=none"]);
}
