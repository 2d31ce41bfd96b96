//! The generated tree and the shell commands of each workload.
//!
//! The tree is written by the audit itself, outside the mount (on the scratch disk); the
//! workloads are plain shell commands run with `sh -c`, so the report can list them verbatim
//! and anyone can rerun them. Only the daemon is traced, so none of these processes' own
//! syscalls count.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::options::WorkloadKind;

/// Files per generated subdirectory.
pub const FILES_PER_DIR: u64 = 50;

/// The timestamp `touch -d` sets in the meta workload.
const TOUCH_DATE: &str = "2020-01-02 03:04:05";

/// A generated source tree: `root/dNNN/fNNNNN`, [`FILES_PER_DIR`] files per directory.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Directory holding the `dNNN` subdirectories.
    pub root: PathBuf,
    /// Regular files in the tree.
    pub files: u64,
    /// Subdirectories in the tree.
    pub dirs: u64,
    /// Bytes per file.
    pub size: u64,
}

/// Writes `files` files of `size` pseudo-random bytes under `root` (which must not exist).
pub fn generate(root: &Path, files: u64, size: u64) -> io::Result<Tree> {
    fs::create_dir(root)?;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let len = usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; len];
    let mut dirs = 0;
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i / FILES_PER_DIR));
        if i % FILES_PER_DIR == 0 {
            fs::create_dir(&dir)?;
            dirs += 1;
        }
        for chunk in buf.chunks_mut(8) {
            // xorshift64*: different content per file, no need for real randomness.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            let word = rng.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        fs::write(dir.join(format!("f{i:05}")), &buf)?;
    }
    Ok(Tree {
        root: root.to_path_buf(),
        files,
        dirs,
        size,
    })
}

/// `path` quoted for `sh`.
pub fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@".contains(c))
    {
        return text.into_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The shell commands of one workload. `target` is the directory inside the mount that holds
/// (or, for copy, receives) the tree; `owner` is the `uid:gid` the meta workload chowns to.
pub fn commands(kind: WorkloadKind, tree: &Tree, target: &Path, owner: (u32, u32)) -> Vec<String> {
    let t = shell_quote(target);
    let each = |action: &str| format!("find {t} -type f -exec {action} {{}} +");
    match kind {
        WorkloadKind::Copy => vec![format!("cp -a {} {t}/", shell_quote(&tree.root.join(".")))],
        WorkloadKind::Read => vec![format!("{} >/dev/null", each("cat"))],
        WorkloadKind::List => vec![format!("ls -lR {t} >/dev/null")],
        WorkloadKind::Meta => vec![
            each("chmod 0640"),
            each(&format!("chown {}:{}", owner.0, owner.1)),
            each(&format!("touch -d '{TOUCH_DATE}'")),
            each("setfattr -n user.audit -v 1"),
        ],
        WorkloadKind::All => WorkloadKind::All
            .steps()
            .into_iter()
            .flat_map(|k| commands(k, tree, target, owner))
            .collect(),
    }
}

/// Runs one command with `sh -c`; an error carries its exit status and first stderr line.
pub fn run(command: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or("").trim();
    Err(format!(
        "workload command `{command}` failed ({}): {first}",
        out.status
    ))
}

/// Tools the workloads need beyond coreutils, with the package that has them.
pub fn required_tools(kinds: &[WorkloadKind]) -> Vec<(&'static str, &'static str)> {
    let mut tools = vec![("cp", "coreutils"), ("find", "findutils")];
    if kinds.contains(&WorkloadKind::Meta) {
        tools.push(("setfattr", "attr"));
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote(Path::new("/var/tmp/a-1/mnt")),
            "/var/tmp/a-1/mnt"
        );
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }

    #[test]
    fn workload_commands() {
        let tree = Tree {
            root: PathBuf::from("/s/src"),
            files: 2,
            dirs: 1,
            size: 1,
        };
        let target = Path::new("/s/mnt");
        assert_eq!(
            commands(WorkloadKind::Copy, &tree, target, (0, 0)),
            ["cp -a /s/src/. /s/mnt/"]
        );
        assert_eq!(
            commands(WorkloadKind::List, &tree, target, (0, 0)),
            ["ls -lR /s/mnt >/dev/null"]
        );
        let meta = commands(WorkloadKind::Meta, &tree, target, (65534, 65534));
        assert_eq!(meta.len(), 4);
        assert_eq!(meta[1], "find /s/mnt -type f -exec chown 65534:65534 {} +");
        assert_eq!(commands(WorkloadKind::All, &tree, target, (0, 0)).len(), 7);
    }

    #[test]
    fn generates_the_tree() {
        let base = std::env::temp_dir().join(format!("uringfs-audit-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let tree = generate(&base, 120, 100).expect("generate");
        assert_eq!((tree.files, tree.dirs), (120, 3));
        let a = fs::read(base.join("d000/f00000")).expect("file");
        let b = fs::read(base.join("d002/f00119")).expect("file");
        assert_eq!((a.len(), b.len()), (100, 100));
        assert_ne!(a, b);
        fs::remove_dir_all(&base).expect("cleanup");
    }
}
