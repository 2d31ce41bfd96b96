//! uringfs started by mount(8) from an fstab line, through mount.fuse3, with the options
//! fstab lines carry (`defaults`, `nofail`, `noatime`, `_netdev`, `x-systemd.*`, ...).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// mount(8) runs helpers with a fixed PATH, so `fuse.uringfs` finds `uringfs` only in a system
/// directory: this puts a symlink to the binary under test there, and removes it on drop.
struct OnSystemPath {
    link: PathBuf,
}

impl OnSystemPath {
    fn new() -> OnSystemPath {
        let link = PathBuf::from("/usr/local/bin/uringfs");
        if let Ok(target) = fs::read_link(&link) {
            assert_eq!(
                target,
                bin(),
                "{} exists and is not the binary under test",
                link.display()
            );
        } else if link.exists() {
            panic!("{} exists and is not ours to replace", link.display());
        }
        let _ = fs::remove_file(&link);
        symlink(bin(), &link).expect("link uringfs into /usr/local/bin");
        OnSystemPath { link }
    }
}

impl Drop for OnSystemPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.link);
    }
}

/// Unmounts `mnt` on drop if a test left it mounted.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        if is_mounted(self.0) {
            lazy_unmount(self.0);
        }
    }
}

fn mount_fstab(fstab: &Path) -> std::process::Output {
    Command::new("mount")
        .arg("--fstab")
        .arg(fstab)
        .arg("-a")
        .output()
        .expect("run mount")
}

/// The daemon serving `mnt` (background mode: no child of ours), if it still runs.
fn daemon_of(mnt: &Path) -> Option<u32> {
    let needle = mnt.as_os_str().to_string_lossy().into_owned();
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_uringfs = args.first().is_some_and(|a| a.ends_with("uringfs"));
        (is_uringfs && args.contains(&needle)).then_some(pid)
    })
}

/// Mounts by `mount --fstab FILE -a`, checks the mirror and the mount flags, unmounts with
/// umount(8), and waits for the daemon to go.
fn fstab_round_trip(dirs: &Scratch, line: &str) {
    fs::write(dirs.backing.join("x"), b"through fstab").unwrap();
    let fstab = dirs.root.join("fstab");
    fs::write(&fstab, format!("{line}\n")).unwrap();
    let _unmount = Unmount(&dirs.mnt);
    let out = mount_fstab(&fstab);
    assert!(
        out.status.success(),
        "mount --fstab {line:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let info = mount_at(&dirs.mnt).expect("the fstab line mounted nothing");
    assert!(info.fstype.starts_with("fuse"), "{info:?}");
    assert!(
        info.mount_opts.split(',').any(|o| o == "noatime"),
        "noatime not passed on: {info:?}"
    );
    assert!(info.super_opts.contains("allow_other"), "{info:?}");
    assert_eq!(fs::read(dirs.mnt.join("x")).unwrap(), b"through fstab");
    fs::write(dirs.mnt.join("y"), b"back").unwrap();
    assert_eq!(fs::read(dirs.backing.join("y")).unwrap(), b"back");
    let pid = daemon_of(&dirs.mnt).expect("no daemon serves the fstab mount");
    let out = Command::new("umount").arg(&dirs.mnt).output().unwrap();
    assert!(out.status.success(), "umount: {out:?}");
    assert!(!is_mounted(&dirs.mnt));
    // The daemon exits once the kernel ends the session; the deadline only bounds the wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon {pid} outlived its mount"
    );
}

/// Root, /dev/fuse and mount.fuse3 (from fuse3): what mounting from fstab needs.
fn require_mount_helper() -> bool {
    if !require_root_and_fuse() {
        return false;
    }
    let helper = ["/sbin/mount.fuse3", "/usr/sbin/mount.fuse3"];
    if !helper.iter().any(|p| Path::new(p).exists()) {
        return skip("mount.fuse3 is missing (apt-get install fuse3)");
    }
    true
}

const FSTAB_OPTIONS: &str = "defaults,nofail,noatime,_netdev,x-systemd.automount,x-systemd.idle-timeout=60,\
     relatime,nodev,nosuid,allow_other,cache=auto";

/// An fstab line of type `fuse.uringfs`, as the README shows it.
#[test]
fn an_fstab_line_of_type_fuse_uringfs_mounts_and_unmounts() {
    if !require_mount_helper() {
        return;
    }
    let _path = OnSystemPath::new();
    let dirs = Scratch::new();
    let line = format!(
        "{} {} fuse.uringfs {FSTAB_OPTIONS} 0 0",
        dirs.backing.display(),
        dirs.mnt.display()
    );
    fstab_round_trip(&dirs, &line);
}

/// The `PROGRAM#SOURCE` form of type `fuse`, which needs no copy on the system PATH.
#[test]
fn an_fstab_line_naming_the_program_mounts_and_unmounts() {
    if !require_mount_helper() {
        return;
    }
    let dirs = Scratch::new();
    let line = format!(
        "{}#{} {} fuse {FSTAB_OPTIONS} 0 0",
        bin().display(),
        dirs.backing.display(),
        dirs.mnt.display()
    );
    fstab_round_trip(&dirs, &line);
}

/// A misspelled uringfs option still fails the mount, with the option named.
#[test]
fn a_misspelled_option_in_fstab_fails_the_mount() {
    if !require_mount_helper() {
        return;
    }
    let dirs = Scratch::new();
    let fstab = dirs.root.join("fstab");
    fs::write(
        &fstab,
        format!(
            "{}#{} {} fuse defaults,cache=sometimes 0 0\n",
            bin().display(),
            dirs.backing.display(),
            dirs.mnt.display()
        ),
    )
    .unwrap();
    let _unmount = Unmount(&dirs.mnt);
    let out = mount_fstab(&fstab);
    assert!(!out.status.success(), "a bad option mounted: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cache mode 'sometimes'"), "{stderr}");
    assert!(!is_mounted(&dirs.mnt));
}

/// `auto_unmount`: a daemon killed by SIGKILL leaves no mount behind (fusermount3 watches it
/// and unmounts), so the mount point is usable again at once; without it the dead mount stays
/// and answers ENOTCONN.
#[test]
fn auto_unmount_unmounts_after_sigkill() {
    if !require_root_and_fuse() {
        return;
    }
    let mut g = MountGuard::new(&["auto_unmount"]);
    fs::write(g.m("f"), b"x").unwrap();
    g.stop(libc::SIGKILL);
    // fusermount3 unmounts once it sees the daemon's end of the socket close; the deadline
    // only bounds the wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    while is_mounted(&g.mnt) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!is_mounted(&g.mnt), "the mount outlived its killed daemon");
    assert!(
        !g.mnt.join("f").exists(),
        "the mount point still shows the mirror"
    );
}
