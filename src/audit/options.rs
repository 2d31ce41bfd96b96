//! `uringfs audit` command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Trace the uringfs daemon under a workload and report its syscalls: path-based (TOCTOU-exposed)
/// versus fd-relative calls, statx per file, io_uring batching, and a score.
#[derive(Debug, Parser)]
#[command(name = "uringfs audit")]
pub struct AuditArgs {
    /// Which workload to run through the mount.
    #[arg(long, value_enum, default_value_t = WorkloadKind::All)]
    pub workload: WorkloadKind,
    /// Files in the generated tree (spread over directories of 50).
    #[arg(long, default_value_t = 200, value_parser = parse_files)]
    pub files: u64,
    /// Size of each file: bytes, or with a k/m/g suffix (64k, 1m).
    #[arg(long, default_value = "64k", value_parser = parse_size)]
    pub size: u64,
    /// Write the Markdown report here instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Exit non-zero when a target is missed (path-based calls, direct backing I/O, statx/file).
    #[arg(long)]
    pub check: bool,
    /// Audit this running uringfs daemon instead of mounting a scratch mirror.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// The uringfs binary to mount with (default: this executable).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Directory for the generated tree, the backing directory and the mount point; must be
    /// on a real disk, not a tmpfs (default: /var/tmp).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// More `-o` options for the scratch mount, after `allow_other`
    /// (`transport=devfuse`, `cache=none,threads=4`); not with --pid.
    #[arg(long, value_name = "OPTS", conflicts_with = "pid")]
    pub mount_options: Option<String>,
}

/// The built-in workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadKind {
    /// `cp -a` of the generated tree into the mount.
    Copy,
    /// Read every file back.
    Read,
    /// `ls -lR` of the tree.
    List,
    /// chmod, chown, touch -d and setfattr on every file.
    Meta,
    /// copy, read, list and meta, in that order.
    All,
}

impl WorkloadKind {
    /// The single workloads this selection runs, in order.
    pub fn steps(self) -> Vec<WorkloadKind> {
        match self {
            WorkloadKind::All => vec![
                WorkloadKind::Copy,
                WorkloadKind::Read,
                WorkloadKind::List,
                WorkloadKind::Meta,
            ],
            one => vec![one],
        }
    }

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Copy => "copy",
            WorkloadKind::Read => "read",
            WorkloadKind::List => "list",
            WorkloadKind::Meta => "meta",
            WorkloadKind::All => "all",
        }
    }
}

/// Parses a size: digits with an optional `k`, `m` or `g` suffix (powers of 1024), optionally
/// followed by `b` or `ib` (`64k`, `1M`, `4KiB`, `512`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 10),
        Some((i, 'm')) => (&t[..i], 20),
        Some((i, 'g')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?} (expected e.g. 4096, 64k, 1m)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses `--files`: at least 1.
fn parse_files(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("--files must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("invalid file count {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("1.5m").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
        assert!(parse_size("17179869184g").is_err());
    }

    #[test]
    fn command_line() {
        let a = AuditArgs::try_parse_from([
            "audit",
            "--workload",
            "copy",
            "--files",
            "50",
            "--size",
            "4k",
            "--check",
        ])
        .expect("parses");
        assert_eq!(a.workload, WorkloadKind::Copy);
        assert_eq!((a.files, a.size, a.check), (50, 4096, true));
        let a = AuditArgs::try_parse_from(["audit"]).expect("defaults");
        assert_eq!((a.files, a.size), (200, 65536));
        assert_eq!(a.workload.steps().len(), 4);
        assert!(AuditArgs::try_parse_from(["audit", "--files", "0"]).is_err());
        assert!(AuditArgs::try_parse_from(["audit", "--workload", "dance"]).is_err());
        let a = AuditArgs::try_parse_from(["audit", "--mount-options", "transport=devfuse"])
            .expect("mount options");
        assert_eq!(a.mount_options.as_deref(), Some("transport=devfuse"));
        assert!(
            AuditArgs::try_parse_from(["audit", "--pid", "7", "--mount-options", "ro"]).is_err()
        );
    }
}
