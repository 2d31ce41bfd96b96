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
    /// Data I/O on io_uring (`uring=off`: plain syscalls, for kernels without io_uring).
    pub uring: bool,
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
            uring: true,
            copy_splice: false,
            inode_fds: None,
            nosuid: false,
            nodev: false,
            noexec: false,
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
                ("nodev", None) => self.nodev = true,
                ("noexec", None) => self.noexec = true,
                ("uring", Some("on")) => self.uring = true,
                ("uring", Some("off")) => self.uring = false,
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
        Ok(())
    }
}

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
        assert!(!opts.uring && opts.copy_splice);
        opts.apply("nosuid,nodev,noexec").unwrap();
        assert!(opts.nosuid && opts.nodev && opts.noexec);
    }

    #[test]
    fn unknown_and_malformed_options_are_refused() {
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
