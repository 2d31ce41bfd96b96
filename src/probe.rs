//! What the running kernel offers above uringfs's floor, probed once at start.
//!
//! The floor is Linux 5.15: everything the daemon needs unconditionally is older (`faccessat2`
//! and `utimensat(AT_EMPTY_PATH)` 5.8, the io_uring opcodes 5.6/5.7, `FUSE_HANDLE_KILLPRIV_V2`
//! 5.11, and the rest much older). Newer features are used where the kernel has them and
//! replaced where it does not; README's "Kernels" table lists them. The replacements are chosen
//! here, once, never by trying the new call per request:
//!
//! - `fchmodat2` (6.6): chmod by `fchmodat` through `/proc/self/fd/N` ([`sys::fchmodat_proc`]).
//! - `setxattrat`/`getxattrat`/`listxattrat`/`removexattrat` (6.13): the path calls on `N`
//!   relative to the worker thread's cwd, the pinned `/proc/self/fd` ([`sys::getxattr_cwd`]).
//! - io_uring (disabled by `kernel.io_uring_disabled`, a seccomp profile such as Docker's, or an
//!   opcode missing): plain syscalls, unless `-o uring=on` demands the ring.
//!
//! A seccomp filter that makes a syscall fail with `ENOSYS` looks exactly like a kernel without
//! it, which is how `tests/fallbacks/` and the referees' `fallbacks` mode test all of this.

use std::sync::OnceLock;

use io_uring::{IoUring, Probe, opcode};
use log::{info, warn};

use crate::options::UringMode;
use crate::sys::{self, NewSyscall};

/// The oldest kernel uringfs supports.
pub const KERNEL_FLOOR: &str = "5.15";

/// The syscalls newer than the floor that the filesystem calls, and whether the kernel has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscalls {
    /// `fchmodat2` (6.6). Without it: `fchmodat` on the fd's magic link, symlinks refused.
    pub fchmodat2: bool,
    /// All four `*xattrat` calls (6.13). Without them: the path calls from the thread's cwd.
    pub xattrat: bool,
}

/// The `*xattrat` family: used only when the kernel has all four.
const XATTRAT: [NewSyscall; 4] = [
    NewSyscall::Setxattrat,
    NewSyscall::Getxattrat,
    NewSyscall::Listxattrat,
    NewSyscall::Removexattrat,
];

/// The probed syscalls of this process (a seccomp filter can only take syscalls away, and the
/// daemon installs none, so one answer holds for the process's life).
static SYSCALLS: OnceLock<Syscalls> = OnceLock::new();

/// Which of the newer syscalls this process may use; probed on the first call.
pub fn syscalls() -> Syscalls {
    *SYSCALLS.get_or_init(|| Syscalls {
        fchmodat2: has(NewSyscall::Fchmodat2),
        xattrat: XATTRAT.iter().all(|&call| has(call)),
    })
}

/// Whether the kernel has `call`: its argument check answered, not `ENOSYS`/`EPERM`.
fn has(call: NewSyscall) -> bool {
    match sys::probe_syscall(call) {
        Ok(()) => true,
        Err(err) => err.raw_os_error() == Some(libc::EINVAL),
    }
}

/// The io_uring opcodes the ring pool submits (src/ring/), all 5.6/5.7.
const RING_OPS: [(u8, &str); 7] = [
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Fsync::CODE, "FSYNC"),
    (opcode::Fallocate::CODE, "FALLOCATE"),
    (opcode::OpenAt::CODE, "OPENAT"),
    (opcode::Statx::CODE, "STATX"),
    (opcode::Splice::CODE, "SPLICE"),
];

/// What the probe found about io_uring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uring {
    /// Not probed: `-o uring=off`.
    Off,
    /// A ring can be set up and entered, and has every opcode the pool needs. `splice`: it has
    /// `IORING_OP_SPLICE` too (without it, `copy=splice` copies by `copy_file_range`).
    Usable {
        /// `IORING_OP_SPLICE` is there.
        splice: bool,
    },
    /// No ring: why (the failing call and its error, or the missing opcodes).
    Unusable(String),
}

/// Everything the start-up probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    /// `uname -r`.
    pub release: String,
    /// The newer syscalls.
    pub syscalls: Syscalls,
    /// What was asked of io_uring.
    pub uring_mode: UringMode,
    /// What the kernel gives.
    pub uring: Uring,
}

/// Probes the syscalls and, unless `mode` is `Off`, io_uring (on a small ring, dropped again:
/// safe before the daemon forks).
///
/// # Errors
/// One line when `mode` is `On` and the kernel gives no usable ring.
pub fn probe(mode: UringMode) -> Result<Features, String> {
    let uring = match mode {
        UringMode::Off => Uring::Off,
        UringMode::Auto | UringMode::On => probe_ring(),
    };
    if let (UringMode::On, Uring::Unusable(why)) = (mode, &uring) {
        return Err(format!(
            "io_uring unavailable ({why}), and -o uring=on demands it; -o uring=auto or \
             uring=off uses plain syscalls"
        ));
    }
    Ok(Features {
        release: sys::kernel_release(),
        syscalls: syscalls(),
        uring_mode: mode,
        uring,
    })
}

/// Sets up a ring, enters it once with nothing to submit (a seccomp profile may allow
/// `io_uring_setup` and still refuse `io_uring_enter`) and asks which opcodes it has.
fn probe_ring() -> Uring {
    let ring = match IoUring::new(2) {
        Ok(ring) => ring,
        Err(err) => return Uring::Unusable(format!("io_uring_setup: {err}")),
    };
    if let Err(err) = ring.submitter().submit() {
        return Uring::Unusable(format!("io_uring_enter: {err}"));
    }
    let mut probe = Probe::new();
    if let Err(err) = ring.submitter().register_probe(&mut probe) {
        return Uring::Unusable(format!("IORING_REGISTER_PROBE: {err}"));
    }
    let missing: Vec<&str> = RING_OPS
        .iter()
        .filter(|(code, name)| *name != "SPLICE" && !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Uring::Unusable(format!("no IORING_OP_{}", missing.join("/")));
    }
    Uring::Usable {
        splice: probe.is_supported(opcode::Splice::CODE),
    }
}

impl Features {
    /// Logs [`Features::line`]: at info when nothing is replaced, else as a warning.
    pub fn log(&self) {
        let (replaced, line) = self.line();
        if replaced {
            warn!("{line}");
        } else {
            info!("{line}");
        }
    }

    /// The one start-up line: what is used, and what is missing and what replaces it. The
    /// bool is true when something is replaced (or `-o uring=off` turned the ring off).
    pub fn line(&self) -> (bool, String) {
        let mut used = Vec::new();
        let mut lacks = Vec::new();
        let mut off = None;
        if self.syscalls.fchmodat2 {
            used.push("fchmodat2".to_string());
        } else {
            lacks.push(
                "fchmodat2 (chmod: fchmodat on /proc/self/fd/N; symlinks refused with \
                 EOPNOTSUPP, as fchmodat2 does)"
                    .to_string(),
            );
        }
        if self.syscalls.xattrat {
            used.push("*xattrat".to_string());
        } else {
            lacks.push(
                "setxattrat/getxattrat/listxattrat/removexattrat (xattrs: setxattr/getxattr/\
                 listxattr/removexattr of N from the thread's cwd, the pinned /proc/self/fd)"
                    .to_string(),
            );
        }
        match &self.uring {
            Uring::Off => off = Some("io_uring off (-o uring=off): data I/O by plain syscalls"),
            Uring::Usable { splice } => {
                used.push(format!("io_uring ({})", op_names(*splice)));
                if !splice {
                    lacks.push("IORING_OP_SPLICE (copy=splice: copy_file_range)".to_string());
                }
            }
            Uring::Unusable(why) => {
                lacks.push(format!("io_uring ({why}; data I/O: plain syscalls)"));
            }
        }
        let mut sections = Vec::new();
        if !lacks.is_empty() {
            sections.push(format!("lacks {}", lacks.join(", ")));
        }
        if !used.is_empty() {
            sections.push(format!("using {}", used.join(", ")));
        }
        sections.extend(off.map(str::to_string));
        let sep = if lacks.is_empty() { ": " } else { " " };
        let line = format!("kernel {}{sep}{}", self.release, sections.join("; "));
        (!lacks.is_empty() || off.is_some(), line)
    }
}

/// The opcodes the pool uses, for the log line.
fn op_names(splice: bool) -> String {
    RING_OPS
        .iter()
        .filter(|(code, _)| splice || *code != opcode::Splice::CODE)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_has_what_it_has() {
        // Not a fixed answer (the suite may run on an old kernel or under a filter); only
        // that probing is stable and agrees with a direct call.
        let first = syscalls();
        assert_eq!(first, syscalls());
        assert_eq!(first.fchmodat2, has(NewSyscall::Fchmodat2));
    }

    #[test]
    fn the_line_names_each_replacement() {
        let mut f = Features {
            release: "6.1.0".into(),
            syscalls: Syscalls {
                fchmodat2: true,
                xattrat: true,
            },
            uring_mode: UringMode::Auto,
            uring: Uring::Usable { splice: true },
        };
        let (replaced, line) = f.line();
        assert!(!replaced, "{line}");
        assert!(line.starts_with("kernel 6.1.0: using fchmodat2, *xattrat, io_uring ("));
        f.syscalls.fchmodat2 = false;
        f.uring = Uring::Unusable("io_uring_setup: Operation not permitted".into());
        let (replaced, line) = f.line();
        assert!(replaced);
        assert!(
            line.starts_with("kernel 6.1.0 lacks fchmodat2 (chmod: fchmodat"),
            "{line}"
        );
        assert!(line.contains(
            "io_uring (io_uring_setup: Operation not permitted; data I/O: plain syscalls)"
        ));
        assert!(line.ends_with("; using *xattrat"), "{line}");
        f.syscalls.xattrat = false;
        assert!(
            f.line().1.ends_with("data I/O: plain syscalls)"),
            "nothing used, no ';'"
        );
        f.syscalls.xattrat = true;
        f.uring = Uring::Off;
        f.syscalls.fchmodat2 = true;
        let (replaced, line) = f.line();
        assert!(replaced);
        assert_eq!(
            line,
            "kernel 6.1.0: using fchmodat2, *xattrat; io_uring off (-o uring=off): data I/O by \
             plain syscalls"
        );
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn uring_on_without_a_ring_is_refused_off_is_not_probed() {
        let off = probe(UringMode::Off).expect("uring=off never fails");
        assert_eq!(off.uring, Uring::Off);
        if let Ok(on) = probe(UringMode::On) {
            assert!(matches!(on.uring, Uring::Usable { .. }));
        }
    }
}
