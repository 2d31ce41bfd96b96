//! What a syscall tells about TOCTOU exposure: does it resolve a path from the cwd or the root
//! (path-based), or relative to an fd the daemon pinned (fd-relative)? Could it follow a
//! symlink? Is it data I/O on a backing file that should have gone through io_uring?
//!
//! The rules, precisely (docs/AUDIT.md repeats them):
//!
//! - **Path-based**: a syscall that takes only a path (`open`, `stat`, `chmod`, `getxattr`,
//!   `execve`, `umount2`, ... see [`PATH_ONLY`]), or a `*at` syscall whose dirfd is `AT_FDCWD`,
//!   or any path argument that is absolute (`/...`: the kernel ignores the dirfd then).
//! - **fd-relative**: a `*at` syscall with a real dirfd and a relative name. Sub-kinds: the
//!   name is `""`/`NULL` (`AT_EMPTY_PATH`: the call acts on the fd itself), the dirfd is a
//!   `/proc/PID/fd` directory (re-opening a pinned fd through its magic link), the dirfd is
//!   `/proc` (reading `/proc/TID/status`), or any other directory fd. A relative name resolved
//!   from the cwd (a path-only call, or `AT_FDCWD`) counts as fd-relative too when the calling
//!   thread's cwd is a pinned `/proc/PID/fd` (set by `fchdir` to it, seen in the trace or at
//!   attach) and the name is a bare fd number: the kernel-fallback xattr calls (see below).
//! - **Possible symlink follow**: a call whose last path component could be a symlink that the
//!   kernel follows: a non-empty name, not resolved under `/proc`, and none of `O_NOFOLLOW` (open
//!   flags), `AT_SYMLINK_NOFOLLOW` (the `*at` flags) or `RESOLVE_NO_SYMLINKS` (openat2); `linkat`
//!   follows only with `AT_SYMLINK_FOLLOW`; the path-only calls that always follow (`stat`,
//!   `chown`, `getxattr`, ...) count too, their `l*` twins do not. A name containing `/` is
//!   also counted: `O_NOFOLLOW` protects only the last component.
//! - **Direct data I/O on a backing file**: `read`/`write`/`pread64`/`pwrite64`/`readv`/`writev`/
//!   `preadv`/`pwritev`/`preadv2`/`pwritev2` on an fd whose `-y` path lies under BACKING (when
//!   BACKING is known), else on any fd path that is not `/dev/fuse`, not under `/proc`, not a
//!   pipe, socket or anon inode, and not the daemon's stdio (fds 0-2, its log).
//! - **Kernel fallbacks**: the calls the daemon makes only on a kernel that lacks `fchmodat2`
//!   (`fchmodat` through `/proc/self/fd/N`) or the `*xattrat` calls (the path xattr calls on
//!   `N` from the worker's cwd, after one `fchdir` to the pinned `/proc/self/fd`): their own
//!   category, [`Category::Fallback`], whatever their resolution says.

use super::trace::{Call, parse_fd, parse_string};

/// Syscalls that take a path and no dirfd: the index of each path argument, and whether the
/// call follows a symlink in the last component.
const PATH_ONLY: &[(&str, &[usize], bool)] = &[
    ("open", &[0], true),
    ("creat", &[0], true),
    ("stat", &[0], true),
    ("stat64", &[0], true),
    ("lstat", &[0], false),
    ("lstat64", &[0], false),
    ("access", &[0], true),
    ("readlink", &[0], false),
    ("chmod", &[0], true),
    ("chown", &[0], true),
    ("lchown", &[0], false),
    ("mkdir", &[0], false),
    ("rmdir", &[0], false),
    ("unlink", &[0], false),
    ("rename", &[0, 1], false),
    ("link", &[0, 1], false),
    ("symlink", &[1], false),
    ("mknod", &[0], false),
    ("truncate", &[0], true),
    ("utime", &[0], true),
    ("utimes", &[0], true),
    ("statfs", &[0], true),
    ("chdir", &[0], true),
    ("chroot", &[0], true),
    ("execve", &[0], true),
    ("setxattr", &[0], true),
    ("getxattr", &[0], true),
    ("listxattr", &[0], true),
    ("removexattr", &[0], true),
    ("lsetxattr", &[0], false),
    ("lgetxattr", &[0], false),
    ("llistxattr", &[0], false),
    ("lremovexattr", &[0], false),
    ("umount2", &[0], false),
    ("umount", &[0], false),
    ("mount", &[1], true),
    ("inotify_add_watch", &[1], true),
    ("swapon", &[0], true),
    ("acct", &[0], true),
    ("pivot_root", &[0, 1], true),
];

/// How a `*at` syscall decides whether to follow a symlink in the last component.
#[derive(Clone, Copy, Debug)]
enum Follow {
    /// Follows unless `O_NOFOLLOW` is in the flags argument at this index (`openat`).
    UnlessONofollow(usize),
    /// Follows unless `AT_SYMLINK_NOFOLLOW` is in the flags argument at this index.
    UnlessAtNofollow(usize),
    /// Follows unless `O_NOFOLLOW` or `RESOLVE_NO_SYMLINKS` is in the `open_how` at the index.
    OpenHow(usize),
    /// Follows only if `AT_SYMLINK_FOLLOW` is in the flags argument at this index (`linkat`).
    IfAtSymlinkFollowFlag(usize),
    /// Always follows (`fchmodat` ignores its flags; `execveat` without flags).
    Always,
    /// Never follows the last component (`mkdirat`, `unlinkat`, `renameat2`, `readlinkat`).
    Never,
}

/// One `*at` syscall: (name, [(dirfd index, path index)], index of the flags that may carry
/// `AT_EMPTY_PATH`, follow rule).
type AtCall = (
    &'static str,
    &'static [(usize, usize)],
    Option<usize>,
    Follow,
);

/// The `*at` syscalls.
const AT_CALLS: &[AtCall] = &[
    ("openat", &[(0, 1)], None, Follow::UnlessONofollow(2)),
    ("openat2", &[(0, 1)], None, Follow::OpenHow(2)),
    (
        "newfstatat",
        &[(0, 1)],
        Some(3),
        Follow::UnlessAtNofollow(3),
    ),
    ("fstatat64", &[(0, 1)], Some(3), Follow::UnlessAtNofollow(3)),
    ("statx", &[(0, 1)], Some(2), Follow::UnlessAtNofollow(2)),
    ("faccessat", &[(0, 1)], None, Follow::Always),
    (
        "faccessat2",
        &[(0, 1)],
        Some(3),
        Follow::UnlessAtNofollow(3),
    ),
    ("readlinkat", &[(0, 1)], None, Follow::Never),
    ("fchmodat", &[(0, 1)], None, Follow::Always),
    ("fchmodat2", &[(0, 1)], Some(3), Follow::UnlessAtNofollow(3)),
    ("fchownat", &[(0, 1)], Some(4), Follow::UnlessAtNofollow(4)),
    ("mkdirat", &[(0, 1)], None, Follow::Never),
    ("mknodat", &[(0, 1)], None, Follow::Never),
    ("unlinkat", &[(0, 1)], None, Follow::Never),
    ("renameat", &[(0, 1), (2, 3)], None, Follow::Never),
    ("renameat2", &[(0, 1), (2, 3)], None, Follow::Never),
    (
        "linkat",
        &[(0, 1), (2, 3)],
        Some(4),
        Follow::IfAtSymlinkFollowFlag(4),
    ),
    ("symlinkat", &[(1, 2)], None, Follow::Never),
    ("utimensat", &[(0, 1)], Some(3), Follow::UnlessAtNofollow(3)),
    ("futimesat", &[(0, 1)], None, Follow::Always),
    (
        "name_to_handle_at",
        &[(0, 1)],
        Some(4),
        Follow::IfAtSymlinkFollowFlag(4),
    ),
    ("execveat", &[(0, 1)], Some(4), Follow::UnlessAtNofollow(4)),
    ("open_tree", &[(0, 1)], Some(2), Follow::UnlessAtNofollow(2)),
    ("move_mount", &[(0, 1), (2, 3)], None, Follow::Never),
    (
        "mount_setattr",
        &[(0, 1)],
        Some(2),
        Follow::UnlessAtNofollow(2),
    ),
    ("fspick", &[(0, 1)], None, Follow::Always),
    (
        "setxattrat",
        &[(0, 1)],
        Some(2),
        Follow::UnlessAtNofollow(2),
    ),
    (
        "getxattrat",
        &[(0, 1)],
        Some(2),
        Follow::UnlessAtNofollow(2),
    ),
    (
        "listxattrat",
        &[(0, 1)],
        Some(2),
        Follow::UnlessAtNofollow(2),
    ),
    (
        "removexattrat",
        &[(0, 1)],
        Some(2),
        Follow::UnlessAtNofollow(2),
    ),
];

/// Data syscalls that must not touch a backing file (the ring does that I/O).
pub const DATA_CALLS: &[&str] = &[
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2",
];

/// `AT_EMPTY_PATH` (0x1000), `AT_SYMLINK_NOFOLLOW` (0x100), `AT_SYMLINK_FOLLOW` (0x400) and
/// `O_NOFOLLOW` as raw values, for syscalls strace prints undecoded.
const AT_EMPTY_PATH_BIT: u64 = libc::AT_EMPTY_PATH as u64;
const AT_SYMLINK_NOFOLLOW_BIT: u64 = libc::AT_SYMLINK_NOFOLLOW as u64;
const AT_SYMLINK_FOLLOW_BIT: u64 = libc::AT_SYMLINK_FOLLOW as u64;
const O_NOFOLLOW_BIT: u64 = libc::O_NOFOLLOW as u64;

/// How one path argument of a call is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    /// From the cwd (`AT_FDCWD` or a path-only syscall with a relative path).
    Cwd,
    /// An absolute path.
    Absolute,
    /// `""` or `NULL` with a real fd: the call acts on the fd itself (`AT_EMPTY_PATH`).
    EmptyPath,
    /// A name relative to a `/proc/PID/fd` directory fd: re-opening a pinned fd by number.
    ProcFd,
    /// A name relative to the `/proc` fd (`TID/status` of a caller).
    ProcRoot,
    /// A name relative to another directory fd.
    Dirfd,
    /// A bare fd number resolved from the calling thread's cwd, which is a pinned
    /// `/proc/PID/fd` (the xattr fallback on kernels without `*xattrat`).
    ProcFdCwd,
}

impl Resolution {
    /// True for the resolutions that start at the cwd or the root.
    pub fn is_path_based(self) -> bool {
        matches!(self, Resolution::Cwd | Resolution::Absolute)
    }

    /// Short label for the report.
    pub fn label(self) -> &'static str {
        match self {
            Resolution::Cwd => "from cwd / AT_FDCWD",
            Resolution::Absolute => "absolute path",
            Resolution::EmptyPath => "AT_EMPTY_PATH (the fd itself)",
            Resolution::ProcFd => "via pinned /proc/self/fd",
            Resolution::ProcRoot => "via pinned /proc",
            Resolution::Dirfd => "name relative to a dirfd",
            Resolution::ProcFdCwd => "fd number from a cwd = pinned /proc/self/fd",
        }
    }
}

/// What classification found about one call's path arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathUse {
    /// How each path argument is resolved (empty for calls without a path).
    pub resolutions: Vec<Resolution>,
    /// The call may follow a symlink in a name inside BACKING (see the module docs).
    pub may_follow: bool,
}

impl PathUse {
    /// True if any path argument is resolved from the cwd or the root.
    pub fn is_path_based(&self) -> bool {
        self.resolutions.iter().any(|r| r.is_path_based())
    }

    /// The worst resolution of the call (path-based first), for grouping.
    pub fn main(&self) -> Option<Resolution> {
        self.resolutions.iter().copied().min()
    }
}

/// Resolves fd numbers that strace could not annotate (raw syscalls) to paths.
pub trait FdPaths {
    /// The path of `fd`, if known.
    fn path_of(&self, fd: i64) -> Option<&str>;
}

impl FdPaths for std::collections::HashMap<i64, String> {
    fn path_of(&self, fd: i64) -> Option<&str> {
        self.get(&fd).map(String::as_str)
    }
}

/// Classifies the path arguments of `call`, made by a thread whose cwd is `cwd` (if known).
pub fn path_use_in(call: &Call, fds: &dyn FdPaths, cwd: Option<&str>) -> PathUse {
    let name = call.name.as_str();
    // A bare fd number from a cwd that is a pinned /proc/PID/fd: the magic link of an fd the
    // daemon holds, as with a /proc/self/fd dirfd; no name inside BACKING is resolved.
    let cwd_proc_fd = cwd.is_some_and(is_proc_fd_dir);
    let from_cwd = |path: Option<&str>| match path {
        Some(p) if cwd_proc_fd && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Resolution::ProcFdCwd
        }
        _ => Resolution::Cwd,
    };
    if let Some((_, idx, follows)) = PATH_ONLY.iter().find(|(n, _, _)| *n == name) {
        let mut out = PathUse::default();
        for &i in *idx {
            let path = parse_string(call.arg(i)).unwrap_or("");
            out.resolutions.push(if path.starts_with('/') {
                Resolution::Absolute
            } else {
                from_cwd(Some(path))
            });
        }
        out.may_follow = *follows && out.resolutions.iter().any(|r| *r != Resolution::ProcFdCwd);
        return out;
    }
    let Some((_, pairs, empty_idx, follow)) = AT_CALLS.iter().find(|(n, ..)| *n == name) else {
        return PathUse::default();
    };
    let empty_flag =
        empty_idx.is_some_and(|i| has_flag(call.arg(i), "AT_EMPTY_PATH", AT_EMPTY_PATH_BIT));
    let mut out = PathUse::default();
    for (pair, &(dirfd_idx, path_idx)) in pairs.iter().enumerate() {
        let raw_path = call.arg(path_idx);
        let path = parse_string(raw_path);
        let dirfd = parse_fd(call.arg(dirfd_idx));
        let dir_path = dirfd.and_then(|(fd, p)| p.or_else(|| fds.path_of(fd)));
        let resolution = match (path, dirfd) {
            (Some(p), _) if p.starts_with('/') => Resolution::Absolute,
            (_, Some((fd, _))) if fd == i64::from(libc::AT_FDCWD) => from_cwd(path),
            // `utimensat(fd, NULL, ...)` and `""` act on the fd itself.
            (Some(""), _) => Resolution::EmptyPath,
            (None, _) if raw_path == "NULL" => Resolution::EmptyPath,
            // An undecoded pointer with AT_EMPTY_PATH: the kernel ignores it when it is "".
            (None, _) if empty_flag && !raw_path.starts_with('"') => Resolution::EmptyPath,
            _ => match dir_path {
                Some(d) if is_proc_fd_dir(d) => Resolution::ProcFd,
                Some(d) if is_proc_root(d) => Resolution::ProcRoot,
                _ => Resolution::Dirfd,
            },
        };
        out.resolutions.push(resolution);
        let name_nonempty = !matches!(resolution, Resolution::EmptyPath);
        let under_proc = matches!(
            resolution,
            Resolution::ProcFd | Resolution::ProcRoot | Resolution::ProcFdCwd
        ) || dir_path.is_some_and(|d| d == "/proc" || d.starts_with("/proc/"));
        if name_nonempty && !under_proc {
            let multi_component = path.is_some_and(|p| p.trim_end_matches('/').contains('/'));
            // The follow rule is about the first name (linkat's source); a second name (the
            // new name of rename/link) is created or replaced, never followed.
            out.may_follow |= multi_component || (pair == 0 && follows_last(call, *follow));
        }
    }
    out
}

/// Whether the follow rule lets the kernel follow a symlink in the last component.
fn follows_last(call: &Call, follow: Follow) -> bool {
    match follow {
        Follow::UnlessONofollow(i) => !has_flag(call.arg(i), "O_NOFOLLOW", O_NOFOLLOW_BIT),
        Follow::UnlessAtNofollow(i) => {
            !has_flag(call.arg(i), "AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW_BIT)
        }
        Follow::OpenHow(i) => {
            let how = call.arg(i);
            !(how.contains("O_NOFOLLOW") || how.contains("RESOLVE_NO_SYMLINKS"))
        }
        Follow::IfAtSymlinkFollowFlag(i) => {
            has_flag(call.arg(i), "AT_SYMLINK_FOLLOW", AT_SYMLINK_FOLLOW_BIT)
        }
        Follow::Always => true,
        Follow::Never => false,
    }
}

/// True if a flags argument holds `name` (decoded) or `bit` (raw number, as strace prints the
/// arguments of syscalls it does not know).
fn has_flag(arg: &str, name: &str, bit: u64) -> bool {
    if arg.split('|').any(|f| f.trim() == name) {
        return true;
    }
    let arg = arg.trim();
    let raw = match arg.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => arg.parse::<u64>().ok(),
    };
    raw.is_some_and(|v| v & bit != 0)
}

/// `/proc/self/fd`, `/proc/PID/fd` or `/proc/PID/task/TID/fd`.
pub fn is_proc_fd_dir(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/proc/") else {
        return false;
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let is_id =
        |s: &str| s == "self" || s == "thread-self" || s.chars().all(|c| c.is_ascii_digit());
    match parts.as_slice() {
        [id, "fd"] => is_id(id),
        [id, "task", tid, "fd"] => is_id(id) && is_id(tid),
        _ => false,
    }
}

/// `/proc` itself.
fn is_proc_root(path: &str) -> bool {
    path.trim_end_matches('/') == "/proc"
}

/// Where a data syscall's fd points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataTarget {
    /// `/dev/fuse`: the FUSE channel.
    Fuse,
    /// A backing file: I/O that should have gone through io_uring.
    Backing,
    /// Anything else: the log on stderr, pipes, eventfds, `/proc`.
    Other,
}

impl DataTarget {
    /// Short label for the report.
    pub fn label(self) -> &'static str {
        match self {
            DataTarget::Fuse => "/dev/fuse (FUSE channel)",
            DataTarget::Backing => "backing files",
            DataTarget::Other => "other (log, pipes, /proc)",
        }
    }
}

/// For a data syscall (see [`DATA_CALLS`]), where its fd points; `None` for other calls.
/// `backing` is BACKING's canonical path when known.
pub fn data_target(call: &Call, fds: &dyn FdPaths, backing: Option<&str>) -> Option<DataTarget> {
    if !DATA_CALLS.contains(&call.name.as_str()) {
        return None;
    }
    let (fd, path) = parse_fd(call.arg(0))?;
    let path = path.or_else(|| fds.path_of(fd)).unwrap_or("");
    Some(classify_fd_path(fd, path, backing))
}

/// The [`DataTarget`] of fd number `fd` whose `-y` path is `path`.
pub fn classify_fd_path(fd: i64, path: &str, backing: Option<&str>) -> DataTarget {
    if path == "/dev/fuse" || path.starts_with("/dev/fuse<") {
        return DataTarget::Fuse;
    }
    if let Some(root) = backing {
        let root = root.trim_end_matches('/');
        let inside = path == root
            || path
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'));
        return if inside {
            DataTarget::Backing
        } else {
            DataTarget::Other
        };
    }
    let special = path.is_empty()
        || path.starts_with("/proc/")
        || path.starts_with("/dev/")
        || path.starts_with("pipe:")
        || path.starts_with("socket:")
        || path.starts_with("anon_inode:")
        || !path.starts_with('/');
    if special || (0..=2).contains(&fd) {
        DataTarget::Other
    } else {
        DataTarget::Backing
    }
}

/// The syscalls the daemon makes only as a kernel fallback (src/probe.rs): `fchmodat` instead
/// of `fchmodat2`, the path xattr calls and the `fchdir` that points a worker's cwd at the
/// pinned `/proc/self/fd` instead of the `*xattrat` calls. (`l*xattr` are listed too: the
/// daemon never makes them, so any would be a fallback gone wrong.)
pub const FALLBACK_CALLS: &[&str] = &[
    "fchmodat",
    "fchdir",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
    "lsetxattr",
    "lgetxattr",
    "llistxattr",
    "lremovexattr",
];

/// The report's syscall categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// `io_uring_setup`, `io_uring_enter`, `io_uring_register`.
    IoUring,
    /// Kernel fallbacks: see [`FALLBACK_CALLS`].
    Fallback,
    /// Attributes, permissions, times, xattrs, links read.
    Metadata,
    /// Names in directories: listing, creating, removing, renaming, linking.
    Directory,
    /// Opening, closing and moving bytes: the FUSE channel and any file data.
    FileIo,
    /// Mappings.
    Memory,
    /// Threads, futexes, scheduling, signals.
    Threading,
    /// Everything else.
    Other,
}

impl Category {
    /// All categories in report order.
    pub const ALL: [Category; 8] = [
        Category::IoUring,
        Category::Fallback,
        Category::Metadata,
        Category::Directory,
        Category::FileIo,
        Category::Memory,
        Category::Threading,
        Category::Other,
    ];

    /// Name for the report.
    pub fn label(self) -> &'static str {
        match self {
            Category::IoUring => "io_uring",
            Category::Fallback => "kernel fallbacks",
            Category::Metadata => "metadata",
            Category::Directory => "directory",
            Category::FileIo => "file I/O",
            Category::Memory => "memory",
            Category::Threading => "threading",
            Category::Other => "other",
        }
    }
}

/// The category of syscall `name`.
pub fn category(name: &str) -> Category {
    match name {
        n if n.starts_with("io_uring_") => Category::IoUring,
        n if FALLBACK_CALLS.contains(&n) => Category::Fallback,
        n if n.contains("xattr") => Category::Metadata,
        "statx" | "newfstatat" | "fstatat64" | "fstat" | "stat" | "lstat" | "stat64"
        | "lstat64" | "fchmodat2" | "fchmod" | "chmod" | "fchownat" | "fchown" | "chown"
        | "lchown" | "utimensat" | "futimesat" | "utime" | "utimes" | "name_to_handle_at"
        | "access" | "faccessat" | "faccessat2" | "readlink" | "readlinkat" | "statfs"
        | "fstatfs" | "truncate" | "ftruncate" => Category::Metadata,
        "getdents64" | "getdents" | "mkdir" | "mkdirat" | "mknod" | "mknodat" | "rmdir"
        | "unlink" | "unlinkat" | "rename" | "renameat" | "renameat2" | "link" | "linkat"
        | "symlink" | "symlinkat" => Category::Directory,
        "open" | "openat" | "openat2" | "creat" | "close" | "close_range" | "dup" | "dup2"
        | "dup3" | "lseek" | "fsync" | "fdatasync" | "fallocate" | "copy_file_range" | "splice"
        | "tee" | "sendfile" | "sync_file_range" | "fcntl" | "ioctl" | "pipe" | "pipe2" => {
            Category::FileIo
        }
        n if DATA_CALLS.contains(&n) => Category::FileIo,
        "mmap" | "munmap" | "mprotect" | "madvise" | "mremap" | "brk" | "mseal" => Category::Memory,
        n if n.starts_with("futex") || n.starts_with("sched_") => Category::Threading,
        "clone" | "clone3" | "exit" | "exit_group" | "set_robust_list" | "rseq" | "gettid"
        | "set_tid_address" | "sigaltstack" | "rt_sigprocmask" | "rt_sigtimedwait"
        | "rt_sigaction" | "rt_sigreturn" | "tgkill" | "nanosleep" | "clock_nanosleep" => {
            Category::Threading
        }
        _ => Category::Other,
    }
}

/// True for the syscalls counted as "statx" per file: the direct stat family.
pub fn is_stat(name: &str) -> bool {
    matches!(
        name,
        "statx" | "newfstatat" | "fstatat64" | "fstat" | "stat" | "lstat" | "stat64" | "lstat64"
    )
}

/// True for the syscalls counted as "open" per file.
pub fn is_open(name: &str) -> bool {
    matches!(name, "open" | "openat" | "openat2" | "creat")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::trace::Parser;
    use std::collections::HashMap;

    fn call(line: &str) -> Call {
        Parser::default()
            .line(&format!("1 1.0 {line}"))
            .expect("a call")
    }

    fn classify(line: &str) -> PathUse {
        let mut fds = HashMap::new();
        fds.insert(4, "/proc/77/fd".to_string());
        fds.insert(5, "/proc".to_string());
        fds.insert(3, "/srv/b".to_string());
        path_use_in(&call(line), &fds, None)
    }

    #[test]
    fn cwd_and_absolute_paths_are_path_based() {
        let u = classify("openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY|O_CLOEXEC) = 3 <0.1>");
        assert_eq!(u.resolutions, [Resolution::Absolute]);
        assert!(u.is_path_based() && u.may_follow);
        let u = classify("newfstatat(AT_FDCWD, \"x\", {st_mode=S_IFREG}, AT_SYMLINK_NOFOLLOW) = 0");
        assert_eq!(u.resolutions, [Resolution::Cwd]);
        assert!(!u.may_follow);
        let u = classify("statx(AT_FDCWD, \"a\", AT_STATX_SYNC_AS_STAT, STATX_ALL, 0x7f) = 0");
        assert!(u.is_path_based() && u.may_follow);
        // Absolute wins over a real dirfd.
        let u = classify("openat(3</srv/b>, \"/etc/shadow\", O_RDONLY|O_NOFOLLOW) = -1 ENOENT (x)");
        assert_eq!(u.resolutions, [Resolution::Absolute]);
        for line in [
            "stat(\"/srv/b/x\", {st_mode=S_IFREG}) = 0",
            "lstat(\"x\", {st_mode=S_IFREG}) = 0",
            "access(\"/dev/fuse\", R_OK|W_OK) = 0",
            "readlink(\"/proc/self/exe\", \"/x\", 4096) = 2",
            "chmod(\"/a\", 0644) = 0",
            "lgetxattr(\"/a\", \"user.x\", NULL, 0) = -1 ENODATA (No data available)",
            "umount2(\"/var/tmp/exp/m\", 0) = -1 EINVAL (Invalid argument)",
            "execve(\"/bin/sh\", [\"sh\"], 0x7ff /* 3 vars */) = 0",
            "renameat2(AT_FDCWD, \"a\", 3</srv/b>, \"b\", 0) = 0",
        ] {
            assert!(classify(line).is_path_based(), "{line}");
        }
        assert!(!classify("lstat(\"x\", {st_mode=S_IFREG}) = 0").may_follow);
        assert!(classify("stat(\"x\", {st_mode=S_IFREG}) = 0").may_follow);
    }

    #[test]
    fn real_dirfds_are_fd_relative() {
        let u = classify(
            "openat(9</srv/b/d1>, \"f1\", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_PATH) = -1 ENOENT (No such file or directory)",
        );
        assert_eq!(u.resolutions, [Resolution::Dirfd]);
        assert!(!u.is_path_based() && !u.may_follow);
        let u = classify(
            "statx(11</srv/b/d1/f1>, \"\", AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH, STATX_BASIC_STATS, {stx_mask=STATX_BASIC_STATS}) = 0",
        );
        assert_eq!(u.resolutions, [Resolution::EmptyPath]);
        assert!(!u.may_follow);
        let u = classify("utimensat(12</srv/b/f>, NULL, [{tv_sec=1}, {tv_sec=2}], 0) = 0");
        assert_eq!(u.resolutions, [Resolution::EmptyPath]);
        let u =
            classify("fchownat(9</srv/b/d1>, \"\", 0, 0, AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH) = 0");
        assert_eq!(u.resolutions, [Resolution::EmptyPath]);
        let u = classify("renameat2(3</srv/b>, \"a\", 9</srv/b/d>, \"b\", RENAME_NOREPLACE) = 0");
        assert_eq!(u.resolutions, [Resolution::Dirfd, Resolution::Dirfd]);
        assert!(!u.may_follow);
    }

    #[test]
    fn pinned_proc_fds_are_fd_relative_and_not_follows() {
        let u =
            classify("openat(4</proc/10603/fd>, \"11\", O_RDONLY|O_CLOEXEC|O_PATH) = 12</srv/b/f>");
        assert_eq!(u.resolutions, [Resolution::ProcFd]);
        assert!(!u.is_path_based() && !u.may_follow);
        let u = classify(
            "openat(5</proc>, \"1234/status\", O_RDONLY|O_CLOEXEC) = 6</proc/1234/status>",
        );
        assert_eq!(u.resolutions, [Resolution::ProcRoot]);
        assert!(!u.may_follow);
        let u =
            classify("linkat(4</proc/1/fd>, \"12\", 3</srv/b>, \"new\", AT_SYMLINK_FOLLOW) = 0");
        assert_eq!(u.resolutions, [Resolution::ProcFd, Resolution::Dirfd]);
        assert!(!u.may_follow, "the new name is never followed");
        // Raw xattrat (strace 6.1): fd 4 is the pinned /proc/self/fd from the fd table.
        let u = classify(
            "syscall_0x1d0(0x4, 0x7ff911001cd0, 0, 0x7ff911001cb0, 0x7ff9, 0x10) = -1 ENODATA (x)",
        );
        assert_eq!(u.resolutions, [Resolution::ProcFd]);
        let u = classify("syscall_0x1cf(0xffffff9c, 0x7ff911001cd0, 0, 0x7ff9, 0x7ff9, 0x10) = 0");
        assert_eq!(u.resolutions, [Resolution::Cwd]);
        assert!(u.may_follow);
    }

    #[test]
    fn possible_follows_are_names_without_nofollow() {
        assert!(classify("openat(3</srv/b>, \"f\", O_RDONLY|O_CLOEXEC) = 7</srv/b/f>").may_follow);
        assert!(
            classify("openat(3</srv/b>, \"d/f\", O_RDONLY|O_NOFOLLOW) = 7</srv/b/d/f>").may_follow
        );
        assert!(
            classify("statx(3</srv/b>, \"f\", AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, 0x7f) = 0")
                .may_follow
        );
        assert!(classify("fchmodat(3</srv/b>, \"f\", 0644) = 0").may_follow);
        assert!(!classify("fchmodat2(3</srv/b>, \"f\", 0644, AT_SYMLINK_NOFOLLOW) = 0").may_follow);
        assert!(
            classify(
                "openat2(3</srv/b>, \"f\", {flags=O_RDONLY, resolve=RESOLVE_BENEATH}, 24) = 7"
            )
            .may_follow
        );
        assert!(
            !classify(
                "openat2(3</srv/b>, \"f\", {flags=O_RDONLY, resolve=RESOLVE_NO_SYMLINKS}, 24) = 7"
            )
            .may_follow
        );
        assert!(!classify("mkdirat(3</srv/b>, \"d\", 0700) = 0").may_follow);
        assert!(!classify("unlinkat(3</srv/b>, \"d\", AT_REMOVEDIR) = 0").may_follow);
    }

    #[test]
    fn data_calls_are_split_by_target() {
        let fds: HashMap<i64, String> = HashMap::new();
        let target = |line: &str, backing| data_target(&call(line), &fds, backing);
        assert_eq!(
            target("read(7</dev/fuse>, \"x\", 16781312) = 56", None),
            Some(DataTarget::Fuse)
        );
        assert_eq!(
            target("pwrite64(12</srv/b/f>, \"x\", 1, 0) = 1", Some("/srv/b")),
            Some(DataTarget::Backing)
        );
        assert_eq!(
            target("write(2</srv/log>, \"stats\", 5) = 5", Some("/srv/b")),
            Some(DataTarget::Other)
        );
        assert_eq!(
            target("write(2</srv/log>, \"stats\", 5) = 5", None),
            Some(DataTarget::Other)
        );
        assert_eq!(
            target("read(9</srv/b/f>, \"\", 1) = 0", None),
            Some(DataTarget::Backing)
        );
        assert_eq!(
            target("read(9<pipe:[12]>, \"\", 1) = 0", None),
            Some(DataTarget::Other)
        );
        assert_eq!(target("statx(9</srv/b/f>, \"\", 0, 0, 0) = 0", None), None);
        assert_eq!(
            target("write(5</srv/bb/f>, \"x\", 1) = 1", Some("/srv/b")),
            Some(DataTarget::Other)
        );
    }

    #[test]
    fn fallback_calls_from_a_proc_fd_cwd_are_fd_relative() {
        let fds: HashMap<i64, String> = HashMap::new();
        let in_cwd = |line: &str, cwd| path_use_in(&call(line), &fds, cwd);
        let get = "getxattr(\"17\", \"user.a\", NULL, 0) = -1 ENODATA (No data available)";
        let u = in_cwd(get, Some("/proc/77/fd"));
        assert_eq!(u.resolutions, [Resolution::ProcFdCwd]);
        assert!(!u.is_path_based() && !u.may_follow);
        // The cwd unknown or elsewhere, or a name that is not an fd number: path-based.
        for cwd in [None, Some("/srv/b"), Some("/proc/77/fdinfo")] {
            let u = in_cwd(get, cwd);
            assert_eq!(u.resolutions, [Resolution::Cwd], "{cwd:?}");
            assert!(u.is_path_based() && u.may_follow);
        }
        let u = in_cwd(
            "getxattr(\"../17\", \"user.a\", NULL, 0) = 0",
            Some("/proc/77/fd"),
        );
        assert!(u.is_path_based());
        // The absolute form (what libfuse's examples do) is a lookup from the root.
        let u = in_cwd(
            "lgetxattr(\"/proc/self/fd/17\", \"user.a\", NULL, 0) = 0",
            Some("/proc/77/fd"),
        );
        assert_eq!(u.resolutions, [Resolution::Absolute]);
        let u = classify("fchmodat(4</proc/77/fd>, \"17\", 0640) = 0");
        assert_eq!(u.resolutions, [Resolution::ProcFd]);
        assert!(!u.may_follow);
        for name in ["fchmodat", "fchdir", "getxattr", "lsetxattr", "removexattr"] {
            assert_eq!(category(name), Category::Fallback, "{name}");
        }
        assert_eq!(category("fchmodat2"), Category::Metadata);
        assert_eq!(category("fgetxattr"), Category::Metadata);
    }

    #[test]
    fn categories_and_proc_dirs() {
        assert_eq!(category("io_uring_enter"), Category::IoUring);
        assert_eq!(category("getxattrat"), Category::Metadata);
        assert_eq!(category("statx"), Category::Metadata);
        assert_eq!(category("getdents64"), Category::Directory);
        assert_eq!(category("writev"), Category::FileIo);
        assert_eq!(category("munmap"), Category::Memory);
        assert_eq!(category("futex"), Category::Threading);
        assert_eq!(category("poll"), Category::Other);
        assert!(is_proc_fd_dir("/proc/self/fd"));
        assert!(is_proc_fd_dir("/proc/10603/fd"));
        assert!(is_proc_fd_dir("/proc/1/task/2/fd"));
        assert!(!is_proc_fd_dir("/proc/10603/fdinfo"));
        assert!(!is_proc_fd_dir("/srv/proc/1/fd"));
    }
}
