//! The kernel fallbacks of src/probe.rs, tested on this kernel by hiding the newer syscalls
//! from the daemon alone: a seccomp filter (tests/helpers/seccomp_wrap.rs, installed in a
//! `pre_exec` hook) makes `fchmodat2`, the `*xattrat` calls or `io_uring_*` fail with `ENOSYS`
//! (or `EPERM`, as Docker answers) in the daemon, exactly as a 6.1 or 6.8 kernel would, while
//! the test itself and the native comparison keep the whole kernel.
//!
//! Every operation is made on the mount and on a plain directory on the same ext4 disk, and the
//! outcomes (values, errno) must be equal. Self-contained on purpose: it shares no harness
//! with the other mount tests, only the `SKIP:` convention scripts/test counts.

#[path = "../helpers/seccomp_wrap.rs"]
mod seccomp_wrap;

mod calls;
mod chmod_and_xattrs;
mod io_uring;
mod mount;
mod probe_line;

use calls::*;
use mount::*;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a mount may take to appear, and a daemon to exit after the unmount.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The unprivileged user the permission cases run as.
const USER: &str = "1000";

/// The syscalls a 6.1 kernel lacks of those the daemon uses (6.8 has fchmodat2 but no
/// `*xattrat`); `io_uring` is added where the ring is the point.
const OLD_KERNEL: &str = "fchmodat2,xattrat";
