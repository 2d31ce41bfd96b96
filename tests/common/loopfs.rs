//! A small ext4 on a loop device, for tests that need a filesystem they can fill: the space
//! limits (tests/limits.rs) and a full disk (tests/full_disk.rs). [`LoopExt4`] makes the
//! image, attaches and mounts it, and its `Drop` unmounts, detaches and removes everything,
//! also when the test panicked.

use super::*;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The UUID (and directory hash seed) of a [`Mkfs::deterministic`] image.
const FIXED_UUID: &str = "5e1f0c2a-7d3b-4c8e-9a61-0f2d3c4b5a69";

/// How to make the ext4 of a [`LoopExt4`].
#[derive(Debug, Clone)]
pub struct Mkfs {
    /// Size of the image in bytes.
    pub bytes: u64,
    /// Block size (`mkfs.ext4 -b`; mkfs would pick 1 KiB for a small fs).
    pub block: u64,
    /// `mkfs.ext4 -m`: the share of blocks reserved for root.
    pub reserved_percent: u32,
    /// `mkfs.ext4 -N`: how many inodes at least (mkfs rounds up to fill its groups).
    pub inodes: Option<u32>,
    /// A fixed UUID and hash seed instead of random ones.
    pub deterministic: bool,
}

// ---------------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------------

/// `name` in `$PATH` or the sbin directories (which a root `$PATH` may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether these tests can run: root, `/dev/fuse` ([`require_root_and_fuse`]) and loop devices,
/// `losetup`, `mkfs.ext4`, `mount`. Under `CI=true` a missing piece panics (a silent skip would
/// hide a broken CI); elsewhere the test prints why it skips.
pub fn require_loop_ext4() -> bool {
    if !require_root_and_fuse() {
        return false;
    }
    let mut missing: Vec<String> = ["losetup", "mkfs.ext4", "mount"]
        .into_iter()
        .filter(|t| find_tool(t).is_none())
        .map(|t| format!("{t} (not in $PATH, /usr/sbin or /sbin)"))
        .collect();
    if !Path::new("/dev/loop-control").exists() {
        missing.push("/dev/loop-control".into());
    }
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "missing {}; tests on a loop-device ext4 need loop devices and e2fsprogs",
        missing.join(", ")
    );
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("!!! CI=true but {test} cannot run: {reason}. Refusing to skip. !!!");
    }
    // Straight to stderr: libtest captures eprintln! of a passing test.
    let _ = io::stderr().write_all(format!("SKIP: {test}: {reason}\n").as_bytes());
    false
}

/// Runs `program args` and panics with its output unless it succeeds.
pub fn run_ok(program: &str, args: &[&OsStr]) -> Output {
    let path = find_tool(program).unwrap_or_else(|| PathBuf::from(program));
    let out = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The loop fs
// ---------------------------------------------------------------------------------------------

/// A fresh ext4 in an image file under `/var/tmp`, on a loop device, mounted on a directory
/// beside the image. Drop unmounts it, detaches the loop device and removes the image, also
/// when the test panicked, and whatever part of the setup was done: the fields record it.
pub struct LoopExt4 {
    /// `/var/tmp/uringfs-loopfs-<pid>-<n>`: holds the image and the mount point.
    pub dir: PathBuf,
    /// The image file.
    pub image: PathBuf,
    /// Where the fs is mounted.
    pub root: PathBuf,
    /// The loop device (`/dev/loopN`), once attached.
    pub dev: Option<String>,
    /// Whether `root` is mounted.
    pub mounted: bool,
    /// The extra mount options it was mounted with.
    pub opts: String,
}

impl LoopExt4 {
    /// Makes an ext4 as `spec` says, attaches it and mounts it with the extra mount options
    /// `opts` (`""` for none).
    pub fn new(spec: &Mkfs, opts: &str) -> LoopExt4 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(format!(
            "/var/tmp/uringfs-loopfs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            // Left over from a crashed run with the same pid (its mount and loop device die
            // with the machine's state, not with the directory).
            let _ = fs::remove_dir_all(&dir);
        }
        fs::create_dir_all(&dir).expect("create the loop fs directory");
        let mut lo = LoopExt4 {
            image: dir.join("ext4.img"),
            root: dir.join("fs"),
            dir,
            dev: None,
            mounted: false,
            opts: opts.to_string(),
        };
        fs::create_dir(&lo.root).expect("create the loop fs mount point");
        for d in [&lo.dir, &lo.root] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        }
        File::create(&lo.image)
            .and_then(|f| f.set_len(spec.bytes))
            .expect("create the image");
        let reserved = spec.reserved_percent.to_string();
        let block = spec.block.to_string();
        // Inode tables and journal initialised now, not by a kernel thread after mount.
        let mut extended = "lazy_itable_init=0,lazy_journal_init=0,nodiscard".to_string();
        let mut args: Vec<OsString> = ["-q", "-F", "-m", &reserved, "-b", &block]
            .map(OsString::from)
            .to_vec();
        if let Some(inodes) = spec.inodes {
            args.extend(["-N".into(), inodes.to_string().into()]);
        }
        if spec.deterministic {
            // The same UUID and directory hash seed each time, so two images made from one
            // spec lay out the same names in the same directory blocks.
            args.extend(["-U".into(), FIXED_UUID.into()]);
            extended.push_str(",hash_seed=");
            extended.push_str(FIXED_UUID);
        }
        args.extend(["-E".into(), extended.into(), lo.image.clone().into()]);
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        run_ok("mkfs.ext4", &args);
        let out = run_ok(
            "losetup",
            &["--find".as_ref(), "--show".as_ref(), lo.image.as_os_str()],
        );
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(dev.starts_with("/dev/loop"), "losetup printed {dev:?}");
        lo.dev = Some(dev);
        lo.mount();
        lo
    }

    /// Mounts the attached device on `root`.
    fn mount(&mut self) {
        let dev = self.dev.clone().expect("a loop device is attached");
        let mut args: Vec<&OsStr> = vec!["-t".as_ref(), "ext4".as_ref()];
        if !self.opts.is_empty() {
            args.extend([OsStr::new("-o"), OsStr::new(&self.opts)]);
        }
        args.extend([OsStr::new(&dev), self.root.as_os_str()]);
        run_ok("mount", &args);
        self.mounted = true;
        assert!(
            mount_at(&self.root).is_some_and(|m| m.fstype == "ext4"),
            "no ext4 mounted at {}",
            self.root.display()
        );
    }

    /// Unmounts the fs and mounts it again, so what is read afterwards comes from the disk,
    /// not from the page cache. Panics if the fs stays busy (a FUSE daemon still holding
    /// files on it) for 10 s.
    pub fn remount(&mut self) {
        let c = cpath(&self.root);
        let mut tries = 0;
        // SAFETY: valid C string, live during the call.
        while unsafe { libc::umount2(c.as_ptr(), libc::UMOUNT_NOFOLLOW) } != 0 {
            let e = io::Error::last_os_error();
            tries += 1;
            assert!(
                e.raw_os_error() == Some(libc::EBUSY) && tries < 200,
                "umount {}: {e}",
                self.root.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.mounted = false;
        self.mount();
    }

    /// A new world-writable directory `name` on the fs.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let d = self.root.join(name);
        fs::create_dir(&d).expect("create a directory on the loop fs");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).expect("chmod 777");
        d
    }

    /// Writes everything out (and commits the journal, so freed blocks count as free).
    pub fn sync(&self) {
        let dir = File::open(&self.root).expect("open the loop fs root");
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
        assert_eq!(rc, 0, "syncfs: {}", io::Error::last_os_error());
    }

    /// Synced free space.
    pub fn space(&self) -> Space {
        self.sync();
        Space::of(&self.root)
    }
}

impl Drop for LoopExt4 {
    fn drop(&mut self) {
        // Never panics: a panic while the test is already unwinding would abort.
        if self.mounted {
            let c = cpath(&self.root);
            let mut unmounted = false;
            // The daemon may take a moment after its own unmount to close its fds.
            for _ in 0..100 {
                // SAFETY: valid C string, live during the call.
                if unsafe { libc::umount2(c.as_ptr(), libc::UMOUNT_NOFOLLOW) } == 0 {
                    unmounted = true;
                    break;
                }
                if io::Error::last_os_error().raw_os_error() != Some(libc::EBUSY) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !unmounted {
                eprintln!(
                    "warning: {} still busy, unmounting lazily",
                    self.root.display()
                );
                lazy_unmount(&self.root);
            }
        }
        if let Some(dev) = &self.dev {
            // After a lazy unmount the kernel detaches the device when its last user goes
            // (losetup -d sets autoclear on a busy device).
            match Command::new(find_tool("losetup").unwrap_or_else(|| "losetup".into()))
                .args(["-d", dev])
                .stdin(Stdio::null())
                .output()
            {
                Ok(out) if out.status.success() => wait_detached(dev),
                Ok(out) => eprintln!(
                    "warning: losetup -d {dev}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => eprintln!("warning: losetup -d {dev}: {e}"),
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// Waits until loop device `dev` has no backing file. `LOOP_CLR_FD` only marks a device that
/// someone else still has open (a parallel `mount` or `losetup` probing it) for detaching
/// at its last close, so `losetup -d` can return before the device is free.
pub fn wait_detached(dev: &str) {
    let name = dev.trim_start_matches("/dev/");
    let bound = PathBuf::from(format!("/sys/block/{name}/loop/backing_file"));
    for _ in 0..200 {
        if !bound.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("warning: {dev} still bound 10 s after losetup -d");
}

/// Free space of a fs, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    /// Free for root (`f_bfree`): includes the `-m` reserve and ext4's own 2 %.
    pub free: u64,
    /// Free for everyone else (`f_bavail`).
    pub avail: u64,
}

impl Space {
    pub fn of(path: &Path) -> Space {
        let st = statvfs(path).expect("statvfs");
        Space {
            free: st.f_bfree * st.f_frsize,
            avail: st.f_bavail * st.f_frsize,
        }
    }

    /// What only a writer with a right to the reserve may use.
    pub fn reserve(&self) -> u64 {
        self.free - self.avail
    }
}
