//! Mount-style `-o` options and the daemon's settings derived from them.

use std::time::Duration;

/// How long the kernel may cache entries, attributes and file data (libfuse passthrough_hp's
/// `--cache` meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// No entry/attr caching and direct I/O: every access reaches the backing fs.
    None,
    /// Short TTLs; page cache dropped on each open.
    Auto,
    /// Long TTLs and the page cache kept across opens: for a BACKING nobody else changes.
    Always,
}

impl CacheMode {
    /// The entry and attribute TTL.
    pub fn ttl(self) -> Duration {
        match self {
            CacheMode::None => Duration::ZERO,
            CacheMode::Auto => Duration::from_secs(1),
            CacheMode::Always => Duration::from_secs(86_400),
        }
    }
}

/// Whether data I/O goes through io_uring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UringMode {
    /// `uring=auto` (the default): the ring if the kernel gives one, else plain syscalls and
    /// one warning (io_uring disabled by `kernel.io_uring_disabled` or a seccomp profile).
    Auto,
    /// `uring=on`: the ring or nothing; a kernel that refuses it is an error at start.
    On,
    /// `uring=off`: plain syscalls.
    Off,
}

/// How the kernel hands FUSE requests to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportMode {
    /// `transport=auto` (the default): io_uring when the kernel offers it, else `/dev/fuse`,
    /// with one line saying why.
    Auto,
    /// `transport=io_uring`: FUSE over io_uring, or an error before mounting.
    IoUring,
    /// `transport=devfuse`: `read(2)`/`write(2)` on `/dev/fuse`.
    DevFuse,
}

/// Everything `-o` can set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Mount read-only.
    pub read_only: bool,
    /// Let users other than the mounter in (fuser's `SessionACL::All`).
    pub allow_other: bool,
    /// Let the kernel check permissions from the cached mode/uid/gid (on by default: without
    /// it a dentry cached by one user's lookup lets another walk past a directory it may not
    /// search).
    pub default_permissions: bool,
    /// The name shown in /proc/mounts.
    pub fsname: Option<String>,
    /// FUSE worker threads.
    pub threads: Option<usize>,
    /// Caching policy.
    pub cache: CacheMode,
    /// Kernel FUSE passthrough of reads and writes.
    pub passthrough: bool,
    /// Data I/O on io_uring: when the kernel gives a ring (default), always, or never.
    pub uring: UringMode,
    /// How FUSE requests reach the daemon.
    pub transport: TransportMode,
    /// copy_file_range by splice on the ring instead of the in-kernel copy.
    pub copy_splice: bool,
    /// At most this many inode `O_PATH` fds open (default: from RLIMIT_NOFILE).
    pub inode_fds: Option<usize>,
    /// Refuse setuid/setgid execution even where BACKING's mount allows it.
    pub nosuid: bool,
    /// Refuse device files even where BACKING's mount allows them.
    pub nodev: bool,
    /// Refuse execution even where BACKING's mount allows it.
    pub noexec: bool,
    /// Let root in as well as the mounter (libfuse's `allow_root`).
    pub allow_root: bool,
    /// Unmount when the daemon dies, even by SIGKILL (`fusermount3` watches it).
    pub auto_unmount: bool,
    /// The mount's `noatime`: reads through it do not change atimes in BACKING either.
    pub noatime: bool,
    /// Forward POSIX and flock locks to BACKING instead of keeping them in the kernel.
    pub forward_locks: bool,
    /// NFS export support: exported file handles stay valid after the kernel and the daemon
    /// forgot their inodes.
    pub export: bool,
    /// The mount's `sync`: every write is synchronous.
    pub sync: bool,
    /// The mount's `dirsync`: directory changes are synchronous.
    pub dirsync: bool,
    /// How long the kernel may cache a name's lookup (default: the cache mode's).
    pub entry_timeout: Option<Duration>,
    /// How long the kernel may cache attributes (default: the cache mode's).
    pub attr_timeout: Option<Duration>,
    /// How long the kernel may cache that a name does not exist (0: not at all).
    pub negative_timeout: Duration,
    /// Options accepted for mount(8)'s or the kernel's sake that uringfs does nothing with,
    /// each with the reason, for one log line at start.
    pub ignored: Vec<(String, &'static str)>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            allow_other: false,
            default_permissions: true,
            fsname: None,
            threads: None,
            cache: CacheMode::Auto,
            passthrough: false,
            uring: UringMode::Auto,
            transport: TransportMode::Auto,
            copy_splice: false,
            inode_fds: None,
            nosuid: false,
            nodev: false,
            noexec: false,
            allow_root: false,
            auto_unmount: false,
            noatime: false,
            export: false,
            forward_locks: false,
            sync: false,
            dirsync: false,
            entry_timeout: None,
            attr_timeout: None,
            negative_timeout: Duration::ZERO,
            ignored: Vec::new(),
        }
    }
}

impl MountOptions {
    /// Applies one `-o` argument (`OPT[,OPT...]`) on top of `self`.
    ///
    /// # Errors
    /// A one-line message naming the option that is unknown or malformed.
    pub fn apply(&mut self, list: &str) -> Result<(), String> {
        for opt in list.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, value) {
                ("ro", None) => self.read_only = true,
                ("rw", None) => self.read_only = false,
                ("allow_other", None) => self.allow_other = true,
                ("default_permissions", None) => self.default_permissions = true,
                ("nodefault_permissions" | "no_default_permissions", None) => {
                    self.default_permissions = false;
                }
                ("passthrough", None) => self.passthrough = true,
                ("nosuid", None) => self.nosuid = true,
                ("suid", None) => self.nosuid = false,
                ("nodev", None) => self.nodev = true,
                ("dev", None) => self.nodev = false,
                ("noexec", None) => self.noexec = true,
                ("exec", None) => self.noexec = false,
                ("allow_root", None) => self.allow_root = true,
                ("auto_unmount", None) => self.auto_unmount = true,
                ("noatime", None) => self.noatime = true,
                ("atime", None) => self.noatime = false,
                ("export", None) => self.export = true,
                ("locks", Some("local")) => self.forward_locks = false,
                ("locks", Some("forward")) => self.forward_locks = true,
                ("locks", Some(other)) => {
                    return Err(format!(
                        "invalid locks '{other}' (expected local or forward)"
                    ));
                }
                ("sync", None) => self.sync = true,
                ("async", None) => self.sync = false,
                ("dirsync", None) => self.dirsync = true,
                ("entry_timeout", Some(t)) => self.entry_timeout = Some(parse_seconds(key, t)?),
                ("attr_timeout", Some(t)) => self.attr_timeout = Some(parse_seconds(key, t)?),
                ("negative_timeout", Some(t)) => self.negative_timeout = parse_seconds(key, t)?,
                _ if let Some(reason) = ignored_reason(key, value) => {
                    self.ignored.push((opt.to_string(), reason));
                }
                ("transport", Some("auto")) => self.transport = TransportMode::Auto,
                ("transport", Some("io_uring")) => self.transport = TransportMode::IoUring,
                ("transport", Some("devfuse")) => self.transport = TransportMode::DevFuse,
                ("transport", Some(other)) => {
                    return Err(format!(
                        "invalid transport '{other}' (expected auto, io_uring or devfuse)"
                    ));
                }
                ("uring", Some("auto")) => self.uring = UringMode::Auto,
                ("uring", Some("on")) => self.uring = UringMode::On,
                ("uring", Some("off")) => self.uring = UringMode::Off,
                ("copy", Some("kernel")) => self.copy_splice = false,
                ("copy", Some("splice")) => self.copy_splice = true,
                ("fsname", Some(name)) if !name.is_empty() => self.fsname = Some(name.into()),
                ("threads", Some(n)) => self.threads = Some(parse_threads(n)?),
                ("inode_fds", Some(n)) => match n.parse::<usize>() {
                    Ok(n) if n >= 1 => self.inode_fds = Some(n),
                    _ => {
                        return Err(format!(
                            "invalid inode_fds '{n}' (expected a positive number)"
                        ));
                    }
                },
                ("cache", Some("none" | "never")) => self.cache = CacheMode::None,
                ("cache", Some("auto")) => self.cache = CacheMode::Auto,
                ("cache", Some("always")) => self.cache = CacheMode::Always,
                ("cache", Some(other)) => {
                    return Err(format!(
                        "invalid cache mode '{other}' (expected none, auto or always)"
                    ));
                }
                _ => return Err(format!("unknown mount option '{opt}'")),
            }
        }
        if self.allow_other && self.allow_root {
            return Err("allow_other and allow_root are mutually exclusive".to_string());
        }
        Ok(())
    }

    /// The entry TTL (how long a looked-up name stays valid).
    pub fn entry_ttl(&self) -> Duration {
        self.entry_timeout.unwrap_or_else(|| self.cache.ttl())
    }

    /// The attribute TTL.
    pub fn attr_ttl(&self) -> Duration {
        self.attr_timeout.unwrap_or_else(|| self.cache.ttl())
    }
}

/// Why an option that mount(8), mount.fuse3 or fstab may pass is accepted and left alone;
/// `None` for an option uringfs does not know (an error: a misspelled option must not pass).
fn ignored_reason(key: &str, value: Option<&str>) -> Option<&'static str> {
    match (key, value) {
        (
            "defaults" | "auto" | "noauto" | "nofail" | "_netdev" | "user" | "nouser" | "users"
            | "owner" | "group",
            None,
        ) => Some("mount(8)'s own"),
        ("comment", Some(_)) => Some("mount(8)'s own"),
        (key, _) if key.starts_with("x-") => Some("for systemd and mount(8)"),
        (
            "relatime" | "strictatime" | "nostrictatime" | "diratime" | "nodiratime" | "lazytime"
            | "nolazytime",
            None,
        ) => Some(
            "FUSE inodes keep no atime of their own: atimes are BACKING's, updated as its \
             mount says (only noatime changes that)",
        ),
        ("iversion" | "noiversion" | "mand" | "nomand" | "silent" | "loud", None) => {
            Some("no meaning for a FUSE mount")
        }
        _ => None,
    }
}

/// Parses a timeout in seconds (`1`, `0.5`): finite and not negative.
///
/// # Errors
/// A one-line message naming the option.
fn parse_seconds(key: &str, text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.0..1e12).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "invalid {key} '{text}' (expected seconds, such as 1 or 0.5)"
        )),
    }
}

/// Every `-o` option with its default, for `--help`.
pub const OPTIONS_HELP: &str = "\
Mount options (-o OPT[,OPT...]), with their defaults:
  allow_other            let other users in (off)
  allow_root             let root in as well as the mounter (off)
  default_permissions    the kernel checks permissions (on; nodefault_permissions: off)
  ro, rw                 read-only or read-write (rw)
  nosuid, nodev, noexec  refuse setuid, devices, execution (as BACKING's mount; suid, dev,
                         exec undo them, within what BACKING's mount allows)
  noatime, atime         reads through the mount change no atime in BACKING (atime)
  sync, async, dirsync   synchronous writes / directory changes (async)
  auto_unmount           unmount when the daemon dies, even by SIGKILL (off)
  fsname=NAME            the source in /proc/mounts (BACKING's path)
  export                 NFS export support: file handles outlive the kernel's inode cache (off)
  locks=local|forward    POSIX and flock locks kept in the kernel, or forwarded to BACKING
                         so processes on BACKING see them (local)
  cache=none|auto|always caching preset: TTL 0 and direct I/O / 1 s / 1 day (auto)
  entry_timeout=SECS     how long a name's lookup is cached (the cache preset's)
  attr_timeout=SECS      how long attributes are cached (the cache preset's)
  negative_timeout=SECS  how long a missing name is cached (0)
  passthrough            kernel FUSE passthrough of reads and writes (off; root only)
  transport=auto|io_uring|devfuse
                         how the kernel hands requests over: FUSE over io_uring where
                         the kernel offers it, else /dev/fuse (auto)
  uring=auto|on|off      data I/O on io_uring: when the kernel gives a ring, else plain
                         syscalls / the ring or an error / plain syscalls (auto)
  copy=kernel|splice     how copy_file_range copies (kernel)
  threads=N              FUSE worker threads (the number of CPUs)
  inode_fds=N            most inode O_PATH fds kept open (3/4 of RLIMIT_NOFILE)
Accepted and ignored, for mount(8) and fstab: defaults, auto, noauto, nofail, _netdev,
user, users, nouser, owner, group, comment=..., x-*, relatime, strictatime, nodiratime,
lazytime (atimes are BACKING's).";

/// Parses a thread count: a positive integer, at most 1024.
///
/// # Errors
/// A one-line message when `text` is not such a number.
pub fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid thread count '{text}' (expected 1 to 1024)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_permissions_in_the_kernel() {
        let opts = MountOptions::default();
        assert!(opts.default_permissions);
        assert_eq!(opts.cache, CacheMode::Auto);
    }

    #[test]
    fn lists_apply_in_order() {
        let mut opts = MountOptions::default();
        opts.apply("ro,allow_other,cache=none,threads=3,fsname=src,inode_fds=100")
            .unwrap();
        assert_eq!(opts.inode_fds, Some(100));
        assert!(opts.read_only && opts.allow_other);
        assert_eq!(opts.cache, CacheMode::None);
        assert_eq!(opts.threads, Some(3));
        assert_eq!(opts.fsname.as_deref(), Some("src"));
        opts.apply("rw,nodefault_permissions,uring=off,copy=splice")
            .unwrap();
        assert!(!opts.read_only && !opts.default_permissions);
        assert!(opts.uring == UringMode::Off && opts.copy_splice);
        opts.apply("transport=io_uring").unwrap();
        assert_eq!(opts.transport, TransportMode::IoUring);
        assert!(opts.apply("transport=ring").is_err());
        opts.apply("uring=on").unwrap();
        assert_eq!(opts.uring, UringMode::On);
        opts.apply("uring=auto").unwrap();
        assert_eq!(opts.uring, UringMode::Auto);
        opts.apply("nosuid,nodev,noexec").unwrap();
        assert!(opts.nosuid && opts.nodev && opts.noexec);
    }

    /// What an fstab line and mount.fuse3 pass (`rw,noatime,dev,suid`, `x-systemd.*`, ...).
    #[test]
    fn fstab_and_mount_helper_options_are_accepted() {
        let mut opts = MountOptions::default();
        opts.apply("defaults,nofail,noatime,_netdev,noauto,user,users,x-systemd.automount")
            .unwrap();
        opts.apply("rw,relatime,dev,suid,exec,comment=x,auto,strictatime,nodiratime")
            .unwrap();
        assert!(opts.noatime && !opts.nodev && !opts.nosuid && !opts.noexec);
        let ignored: Vec<&str> = opts.ignored.iter().map(|(o, _)| o.as_str()).collect();
        assert!(ignored.contains(&"x-systemd.automount") && ignored.contains(&"nofail"));
        assert!(!ignored.contains(&"noatime"));
        opts.apply("nodev,nosuid,noexec,sync,dirsync,auto_unmount,allow_root")
            .unwrap();
        assert!(opts.nodev && opts.nosuid && opts.noexec && opts.sync && opts.dirsync);
        assert!(opts.auto_unmount && opts.allow_root);
        assert!(
            opts.apply("allow_other").is_err(),
            "allow_other with allow_root"
        );
    }

    #[test]
    fn timeouts_override_the_cache_preset() {
        let mut opts = MountOptions::default();
        opts.apply("cache=always,attr_timeout=0.5,negative_timeout=2")
            .unwrap();
        assert_eq!(opts.attr_ttl(), Duration::from_millis(500));
        assert_eq!(opts.entry_ttl(), Duration::from_secs(86_400));
        assert_eq!(opts.negative_timeout, Duration::from_secs(2));
        assert!(opts.apply("entry_timeout=-1").is_err());
        assert!(opts.apply("attr_timeout=inf").is_err());
        assert!(opts.apply("negative_timeout=").is_err());
    }

    #[test]
    fn unknown_and_malformed_options_are_refused() {
        assert!(MountOptions::default().apply("noatim").is_err());
        assert!(
            MountOptions::default()
                .apply("x_systemd.automount")
                .is_err()
        );
        let mut opts = MountOptions::default();
        assert!(opts.apply("bogus").unwrap_err().contains("bogus"));
        assert!(opts.apply("cache=sometimes").is_err());
        assert!(opts.apply("threads=0").is_err());
        assert!(opts.apply("threads=x").is_err());
        assert!(opts.apply("ro=1").is_err());
        assert!(opts.apply("uring=maybe").is_err());
        assert!(opts.apply("inode_fds=0").is_err());
    }
}
