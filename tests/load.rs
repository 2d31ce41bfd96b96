//! Many concurrent clients on one mount (issue 12, "Load").
//!
//! N client *processes* (this test binary run again in client mode, see
//! [`load_client_process`]; separate processes so the kernel sees different pids and lock
//! owners, as with real users) each run a seeded mix of create, write, fsync, read, rename,
//! unlink, setxattr, getxattr and mmap writes with msync, in their own directory `c<N>` of the
//! mount. Each keeps a manifest of what the mount acknowledged: every file's name, contents
//! (as a digest), whether those contents were fsynced, and its xattrs. Every read is checked
//! against what the client wrote. Afterwards:
//!
//! - BACKING holds exactly the manifests' files, with their contents and xattrs, and nothing
//!   else (the same through the mount, and again after unmount);
//! - no operation failed;
//! - the daemon's fd count stayed within what the clients' live files explain, and its RSS
//!   did not grow from the first third of the run to the last (sampled every second).
//!
//! The CI tests ([`load_io_uring`], [`load_devfuse`]) give each client a fixed number of
//! operations, so how much work is done never depends on the machine's speed, and nothing is
//! timed: the only clock is a watchdog that fails a run that hangs. `scripts/stress` runs
//! [`stress`] at full size (16 clients for 60 s on each transport) and prints its report.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment variable that turns this binary into one client (see
/// [`load_client_process`]): `dir|id|seed|ops|seconds|out`.
const CLIENT_ENV: &str = "URINGFS_LOAD_CLIENT";

/// At most this many files per client at a time, so the live set, and with it the daemon's
/// inode fds, is bounded however long the run.
const MAX_FILES: usize = 16;

/// Largest file a client makes (writes and mmap writes stay below it).
const MAX_FILE: usize = 256 << 10;

/// Clients in the CI runs (the number).
const CI_CLIENTS: usize = 16;

/// Operations per client in the CI runs.
const CI_OPS: u64 = 1000;

/// How long any run may take before the test calls it hung: a hang detector, not a timing
/// check (the CI runs take well under a minute even on a busy machine).
const WATCHDOG: Duration = Duration::from_secs(20 * 60);

/// Fds the daemon may hold beyond its idle count per client: one `O_PATH` fd per live file
/// ([`MAX_FILES`]) and the client's directory, one open file at a time, and two more for
/// files unlinked or renamed over whose FORGET or RELEASE (asynchronous in the kernel) has
/// not arrived yet.
const FDS_PER_CLIENT: usize = MAX_FILES + 4;

/// Fds beyond that for the whole daemon (lagging FORGETs of many clients at once, a
/// buffered twin fd, a ring being set up). The bound cannot be reached by a slow machine:
/// it counts files, not time.
const FD_SLACK: usize = 64;

/// How long the daemon may take, once the clients are gone, to have forgotten the inodes of
/// deleted files: a hang detector for FORGETs that never come, not a timing check.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Fds the settled daemon may hold beyond its idle count and one per live file (a
/// buffered twin fd or a ring being set up; no file is open any more).
const SETTLED_SLACK: usize = 8;

/// How much more RSS the last third of the run may show than the first third (max against
/// max). The clients' working set is the same throughout (bounded files and xattrs), so a
/// daemon without a leak stays flat after warming up; 32 MiB is room for allocator
/// fragmentation across the daemon's threads and is far below what a leak of a few hundred
/// bytes per request would reach in the full-size run (about a million requests).
const RSS_GROWTH_KB: u64 = 32 << 10;

/// Mount options: the default transport, which is FUSE over io_uring when the fuse module's
/// `enable_uring` is on and `/dev/fuse` otherwise. scripts/test runs the suite once each way.
const DEFAULT_TRANSPORT: &[&str] = &[];

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// The operations a client makes.
const KINDS: [&str; 9] = [
    "create", "write", "fsync", "read", "rename", "unlink", "setxattr", "getxattr", "mmap",
];

/// What a client knows about one of its files: what the mount acknowledged.
#[derive(Debug, Clone, Default)]
struct FileState {
    /// The contents.
    data: Vec<u8>,
    /// Whether these contents were fsynced (an fsync acknowledged after the last change).
    synced: bool,
    /// `user.*` xattrs.
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// One client's run.
struct Client {
    /// Its directory in the mount.
    dir: PathBuf,
    /// Its seeded generator.
    rng: Rng,
    /// Its files, by name.
    files: BTreeMap<String, FileState>,
    /// The next new file's number.
    next: u64,
    /// Per kind: (done, failed).
    ops: BTreeMap<&'static str, (u64, u64)>,
    /// Every failure and every wrong read, with the operation.
    problems: Vec<String>,
}

impl Client {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `len` random bytes.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.rng.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }

    /// A random existing file's name.
    fn pick(&mut self) -> Option<String> {
        if self.files.is_empty() {
            return None;
        }
        let i = self.rng.below(self.files.len() as u64) as usize;
        self.files.keys().nth(i).cloned()
    }

    fn new_name(&mut self) -> String {
        self.next += 1;
        format!("f{}", self.next)
    }

    /// Runs one operation of kind `kind`; an error is recorded and ends the client's run
    /// (its state would be unknown).
    fn op(&mut self, kind: &'static str) -> Result<(), String> {
        let result = match kind {
            "create" => self.create(),
            "write" => self.write(),
            "fsync" => self.fsync(),
            "read" => self.read(),
            "rename" => self.rename(),
            "unlink" => self.unlink(),
            "setxattr" => self.setxattr(),
            "getxattr" => self.getxattr(),
            "mmap" => self.mmap(),
            _ => unreachable!("unknown kind {kind}"),
        };
        let e = self.ops.entry(kind).or_default();
        e.0 += 1;
        if let Err(msg) = &result {
            e.1 += 1;
            self.problems.push(format!("{kind}: {msg}"));
        }
        result
    }

    /// A new file with up to 64 KiB, fsynced half the time.
    fn create(&mut self) -> Result<(), String> {
        let name = self.new_name();
        let len = self.rng.below(64 << 10) as usize;
        let data = self.bytes(len);
        let sync = self.rng.below(2) == 0;
        let path = self.path(&name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| format!("create {name}: {e}"))?;
        f.write_all_at(&data, 0)
            .map_err(|e| format!("write {name}: {e}"))?;
        if sync {
            f.sync_all().map_err(|e| format!("fsync {name}: {e}"))?;
        }
        self.files.insert(
            name,
            FileState {
                data,
                synced: sync,
                xattrs: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// pwrite of up to 16 KiB somewhere in a file, possibly past its end (a hole).
    fn write(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        let cur = self.files[&name].data.len();
        let off = self
            .rng
            .below((cur.min(MAX_FILE - (16 << 10)) + 4096) as u64) as usize;
        let len = 1 + self.rng.below(16 << 10) as usize;
        let buf = self.bytes(len);
        let f = OpenOptions::new()
            .write(true)
            .open(self.path(&name))
            .map_err(|e| format!("open {name} for writing: {e}"))?;
        f.write_all_at(&buf, off as u64)
            .map_err(|e| format!("pwrite {name} at {off}: {e}"))?;
        let st = self.files.get_mut(&name).expect("picked");
        if st.data.len() < off + len {
            st.data.resize(off + len, 0);
        }
        st.data[off..off + len].copy_from_slice(&buf);
        st.synced = false;
        Ok(())
    }

    fn fsync(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        let f = File::open(self.path(&name)).map_err(|e| format!("open {name}: {e}"))?;
        f.sync_all().map_err(|e| format!("fsync {name}: {e}"))?;
        self.files.get_mut(&name).expect("picked").synced = true;
        Ok(())
    }

    /// Reads a whole file back and compares it with what was written.
    fn read(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        let mut got = Vec::new();
        File::open(self.path(&name))
            .and_then(|mut f| f.read_to_end(&mut got))
            .map_err(|e| format!("read {name}: {e}"))?;
        let want = &self.files[&name].data;
        if &got != want {
            return Err(format!(
                "read {name}: got {}, wrote {}",
                digest(&got),
                digest(want)
            ));
        }
        Ok(())
    }

    /// Renames a file to a new name, or (one time in three) over another file.
    fn rename(&mut self) -> Result<(), String> {
        let Some(from) = self.pick() else {
            return self.create();
        };
        let to = match self.pick() {
            Some(other) if other != from && self.rng.below(3) == 0 => other,
            _ => self.new_name(),
        };
        fs::rename(self.path(&from), self.path(&to))
            .map_err(|e| format!("rename {from} -> {to}: {e}"))?;
        let st = self.files.remove(&from).expect("picked");
        self.files.insert(to, st);
        Ok(())
    }

    fn unlink(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        fs::remove_file(self.path(&name)).map_err(|e| format!("unlink {name}: {e}"))?;
        self.files.remove(&name);
        Ok(())
    }

    /// Sets one of four `user.*` xattrs to up to 200 random bytes.
    fn setxattr(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        let key = format!("user.k{}", self.rng.below(4));
        let len = 1 + self.rng.below(200) as usize;
        let value = self.bytes(len);
        lsetxattr(&self.path(&name), &key, &value, 0)
            .map_err(|e| format!("setxattr {name} {key}: {e}"))?;
        self.files
            .get_mut(&name)
            .expect("picked")
            .xattrs
            .insert(key, value);
        Ok(())
    }

    /// Gets one of the four xattrs: its value, or ENODATA if it was never set.
    fn getxattr(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        let key = format!("user.k{}", self.rng.below(4));
        let got = lgetxattr(&self.path(&name), &key);
        let want = self.files[&name].xattrs.get(&key);
        match (got, want) {
            (Ok(v), Some(w)) if &v == w => Ok(()),
            (Err(e), None) if e.raw_os_error() == Some(libc::ENODATA) => Ok(()),
            (got, want) => Err(format!(
                "getxattr {name} {key}: got {:?}, set {:?}",
                got.map(|v| digest(&v)),
                want.map(|w| digest(w))
            )),
        }
    }

    /// Maps a file `MAP_SHARED`, writes up to 8 KiB into it, msync(MS_SYNC), munmap.
    fn mmap(&mut self) -> Result<(), String> {
        let Some(name) = self.pick() else {
            return self.create();
        };
        let len = self.files[&name].data.len();
        if len == 0 {
            return self.write();
        }
        let off = self.rng.below(len as u64) as usize;
        let n = (1 + self.rng.below(8 << 10) as usize).min(len - off);
        let buf = self.bytes(n);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(&name))
            .map_err(|e| format!("open {name} for mmap: {e}"))?;
        // SAFETY: a fresh shared mapping of `len` bytes of a file this client alone writes;
        // the stores below stay inside it, and it is unmapped before `f` closes.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(format!("mmap {name}: {}", io::Error::last_os_error()));
            }
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p.cast::<u8>().add(off), n);
            let sync = libc::msync(p, len, libc::MS_SYNC);
            let sync_err = io::Error::last_os_error();
            libc::munmap(p, len);
            if sync != 0 {
                return Err(format!("msync {name}: {sync_err}"));
            }
        }
        let st = self.files.get_mut(&name).expect("picked");
        st.data[off..off + n].copy_from_slice(&buf);
        st.synced = false;
        Ok(())
    }

    /// The next operation's kind: weighted, and never more than [`MAX_FILES`] files.
    fn choose(&mut self) -> &'static str {
        // create write fsync read rename unlink setxattr getxattr mmap
        const WEIGHTS: [u64; 9] = [14, 18, 10, 16, 10, 8, 8, 8, 8];
        let total: u64 = WEIGHTS.iter().sum();
        let mut x = self.rng.below(total);
        let mut kind = KINDS[0];
        for (k, w) in KINDS.iter().zip(WEIGHTS) {
            if x < w {
                kind = k;
                break;
            }
            x -= w;
        }
        if kind == "create" && self.files.len() >= MAX_FILES {
            "unlink"
        } else {
            kind
        }
    }

    /// The manifest and counters, one record per line (see [`ClientResult::parse`]).
    fn manifest(&self) -> String {
        let mut out = String::new();
        for (name, st) in &self.files {
            let _ = writeln!(
                out,
                "file\t{name}\t{}\t{}",
                digest(&st.data),
                u8::from(st.synced)
            );
            for (k, v) in &st.xattrs {
                let _ = writeln!(out, "xattr\t{name}\t{k}\t{}", digest(v));
            }
        }
        for (kind, (done, failed)) in &self.ops {
            let _ = writeln!(out, "ops\t{kind}\t{done}\t{failed}");
        }
        for p in &self.problems {
            let _ = writeln!(out, "problem\t{}", p.replace(['\n', '\t'], " "));
        }
        out
    }
}

/// The client mode of this binary, ignored by a plain `cargo test`. With
/// [`CLIENT_ENV`] set (by [`run_load`], which starts this binary with `--exact
/// load_client_process`), this process is one client: it runs its operations in its
/// directory, then writes its manifest to the file named there. It stops at its first
/// failure (recorded); the parent fails the test on it.
#[test]
#[ignore = "one client process of the load tests, which start it"]
fn load_client_process() {
    let Ok(spec) = std::env::var(CLIENT_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [dir, id, seed, ops, seconds, out] = parts[..] else {
        panic!("{CLIENT_ENV}={spec:?}: want dir|id|seed|ops|seconds|out");
    };
    let id: u64 = id.parse().expect("client id");
    let seed: u64 = seed.parse().expect("seed");
    let ops: u64 = ops.parse().expect("ops");
    let seconds: u64 = seconds.parse().expect("seconds");
    let mut c = Client {
        dir: PathBuf::from(dir),
        // Never 0 (xorshift's fixed point).
        rng: Rng((seed ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1),
        files: BTreeMap::new(),
        next: 0,
        ops: BTreeMap::new(),
        problems: Vec::new(),
    };
    let start = Instant::now();
    let mut done = 0u64;
    // Either a fixed count (CI) or a duration (scripts/stress); 0 means "no limit of this kind".
    while (ops == 0 || done < ops)
        && (seconds == 0 || start.elapsed() < Duration::from_secs(seconds))
    {
        let kind = c.choose();
        done += 1;
        if c.op(kind).is_err() {
            break;
        }
    }
    fs::write(out, c.manifest()).expect("write the manifest");
}

// ---------------------------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------------------------

/// What one client reported.
#[derive(Debug, Default)]
struct ClientResult {
    /// name -> (contents digest, fsynced).
    files: BTreeMap<String, (String, bool)>,
    /// name -> xattr -> value digest.
    xattrs: BTreeMap<String, BTreeMap<String, String>>,
    /// kind -> (done, failed).
    ops: BTreeMap<String, (u64, u64)>,
    problems: Vec<String>,
}

impl ClientResult {
    fn parse(text: &str) -> ClientResult {
        let mut r = ClientResult::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f[..] {
                ["file", name, dig, synced] => {
                    r.files.insert(name.into(), (dig.into(), synced == "1"));
                }
                ["xattr", name, key, dig] => {
                    r.xattrs
                        .entry(name.into())
                        .or_default()
                        .insert(key.into(), dig.into());
                }
                ["ops", kind, done, failed] => {
                    r.ops.insert(
                        kind.into(),
                        (done.parse().expect("count"), failed.parse().expect("count")),
                    );
                }
                ["problem", text] => r.problems.push(text.into()),
                _ => panic!("bad manifest line {line:?}"),
            }
        }
        r
    }
}

/// One sample of the daemon.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the clients started.
    at: Duration,
    /// VmRSS in KiB.
    rss_kb: u64,
    /// Open fds.
    fds: usize,
}

/// The daemon's RSS and fd count now (`None` once it is gone).
fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample { at, rss_kb, fds })
}

/// Client processes; Drop kills and reaps any still running (a failing test leaves none).
struct Clients(Vec<(usize, Child)>);

impl Drop for Clients {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The size of a run.
#[derive(Debug, Clone, Copy)]
struct Size {
    clients: usize,
    /// Operations per client (0: no limit).
    ops: u64,
    /// Seconds per client (0: no limit).
    seconds: u64,
    seed: u64,
}

/// What a run did, for the report.
#[derive(Debug)]
struct Report {
    transport: String,
    size: Size,
    /// kind -> (done, failed), all clients.
    ops: BTreeMap<String, (u64, u64)>,
    /// Files at the end, and how many of them had fsynced contents.
    files: usize,
    fsynced: usize,
    xattrs: usize,
    /// Wall time of the clients.
    elapsed: Duration,
    samples: Vec<Sample>,
    /// The daemon's fds before the clients started.
    idle_fds: usize,
    /// The daemon's fds once the clients were gone and it had forgotten every inode but
    /// the live ones.
    settled_fds: usize,
}

impl Report {
    fn render(&self) -> String {
        let mut s = String::new();
        let total: u64 = self.ops.values().map(|v| v.0).sum();
        let failed: u64 = self.ops.values().map(|v| v.1).sum();
        let limit = match (self.size.ops, self.size.seconds) {
            (0, secs) => format!("{secs} s each"),
            (ops, 0) => format!("{ops} operations each"),
            (ops, secs) => format!("{ops} operations or {secs} s each"),
        };
        let _ = writeln!(
            s,
            "## {} — {} clients, {limit}, seed {:#x}",
            self.transport, self.size.clients, self.size.seed
        );
        let _ = writeln!(
            s,
            "\n{total} operations in {:.1} s ({:.0}/s), {failed} failed; at the end {} files \
             ({} with fsynced contents) and {} xattrs, all verified in BACKING\n",
            self.elapsed.as_secs_f64(),
            total as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.files,
            self.fsynced,
            self.xattrs
        );
        let _ = writeln!(s, "| operation | done | failed |\n|---|---:|---:|");
        for (k, (d, f)) in &self.ops {
            let _ = writeln!(s, "| {k} | {d} | {f} |");
        }
        let _ = writeln!(
            s,
            "\nThe daemon, sampled every second ({} samples, {} shown; idle before the clients: \
             {} fds):\n\n| t (s) | RSS (MiB) | fds |\n|---:|---:|---:|",
            self.samples.len(),
            self.samples
                .len()
                .div_ceil((self.samples.len() / 14).max(1)),
            self.idle_fds
        );
        let step = (self.samples.len() / 14).max(1);
        for (i, x) in self.samples.iter().enumerate() {
            if i % step == 0 || i + 1 == self.samples.len() {
                let _ = writeln!(
                    s,
                    "| {:.0} | {:.1} | {} |",
                    x.at.as_secs_f64(),
                    x.rss_kb as f64 / 1024.0,
                    x.fds
                );
            }
        }
        let (first, last) = thirds(&self.samples);
        let _ = writeln!(
            s,
            "\nRSS max first third {:.1} MiB, last third {:.1} MiB; fds max {} (bound {}), \
             {} once the clients were gone and the daemon had forgotten the deleted files",
            first as f64 / 1024.0,
            last as f64 / 1024.0,
            self.samples.iter().map(|x| x.fds).max().unwrap_or(0),
            self.fd_bound(),
            self.settled_fds
        );
        s
    }

    fn fd_bound(&self) -> usize {
        // Plus the status files of the daemon's last callers, a cache of fixed size.
        self.idle_fds + self.size.clients * FDS_PER_CLIENT + uringfs::creds::STATUS_FILES + FD_SLACK
    }
}

/// Max RSS (KiB) of the first and of the last third of the samples.
fn thirds(samples: &[Sample]) -> (u64, u64) {
    let n = samples.len();
    let third = (n / 3).max(1).min(n);
    let max = |s: &[Sample]| s.iter().map(|x| x.rss_kb).max().unwrap_or(0);
    (max(&samples[..third]), max(&samples[n - third..]))
}

/// Every file and xattr of `dir` (a client's directory in BACKING or the mount), in the
/// manifest's terms; lists everything that differs from `want`.
fn compare_dir(dir: &Path, want: &ClientResult) -> Vec<String> {
    let mut diffs = Vec::new();
    let names = match dir_names(dir) {
        Ok(n) => n,
        Err(e) => return vec![format!("{}: readdir: {e}", dir.display())],
    };
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    for n in &names {
        if !want.files.contains_key(n) {
            diffs.push(format!(
                "{}/{n}: exists, not in the manifest",
                dir.display()
            ));
        }
    }
    for (name, (dig, synced)) in &want.files {
        let p = dir.join(name);
        match read_all(&p) {
            Ok(d) if &digest(&d) == dig => {}
            Ok(d) => diffs.push(format!(
                "{}: contents {} but the client was acknowledged {dig} (fsynced: {synced})",
                p.display(),
                digest(&d)
            )),
            Err(e) => diffs.push(format!("{}: {e} (fsynced: {synced})", p.display())),
        }
        let want_x = want.xattrs.get(name).cloned().unwrap_or_default();
        let got_x: BTreeMap<String, String> = match llistxattr(&p) {
            Ok(keys) => keys
                .into_iter()
                .map(|k| {
                    let v = lgetxattr(&p, &k).map_or_else(|e| format!("{e}"), |v| digest(&v));
                    (k, v)
                })
                .collect(),
            Err(e) => {
                diffs.push(format!("{}: listxattr: {e}", p.display()));
                continue;
            }
        };
        if got_x != want_x {
            diffs.push(format!(
                "{}: xattrs {got_x:?}, acknowledged {want_x:?}",
                p.display()
            ));
        }
    }
    diffs
}

/// Checks BACKING (or the mount) against all manifests: each client's directory holds
/// exactly its files, and there is nothing else.
#[track_caller]
fn assert_matches_manifests(root: &Path, results: &[ClientResult], when: &str) {
    let mut diffs = Vec::new();
    let want_dirs: Vec<String> = (0..results.len()).map(|i| format!("c{i}")).collect();
    let got_dirs: Vec<String> = dir_names(root)
        .expect("readdir root")
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let mut sorted = want_dirs.clone();
    sorted.sort();
    if got_dirs != sorted {
        diffs.push(format!(
            "{}: entries {got_dirs:?}, want {sorted:?}",
            root.display()
        ));
    }
    for (i, r) in results.iter().enumerate() {
        diffs.extend(compare_dir(&root.join(&want_dirs[i]), r));
    }
    assert!(
        diffs.is_empty(),
        "{when}: {} differences from what the clients were acknowledged:\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

/// Runs `size` clients on a mount with `opts`; checks everything; returns the report.
fn run_load(opts: &[&str], size: Size) -> Report {
    let mut g = MountGuard::new(opts);
    let transport = if g.over_io_uring() {
        "FUSE over io_uring"
    } else {
        "/dev/fuse"
    }
    .to_string();
    assert_eq!(
        transport == "FUSE over io_uring",
        match opts.iter().find_map(|o| o.strip_prefix("transport=")) {
            Some(forced) => forced == "io_uring",
            None => ring_enabled(),
        },
        "the daemon does not serve over the transport asked for ({opts:?})"
    );
    let pid = g.pid();
    for i in 0..size.clients {
        fs::create_dir(g.m(&format!("c{i}"))).expect("create a client directory");
    }
    let idle = sample(pid, Duration::ZERO).expect("sample the idle daemon");
    let samples = Arc::new(Mutex::new(vec![idle]));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sampler = {
        let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                if let Some(s) = sample(pid, start.elapsed()) {
                    samples.lock().expect("samples").push(s);
                }
            }
        })
    };
    let exe = std::env::current_exe().expect("current_exe");
    let mut clients = Clients(Vec::new());
    for i in 0..size.clients {
        let out = g.root.join(format!("client{i}.manifest"));
        let log = File::create(g.root.join(format!("client{i}.log"))).expect("client log");
        let child = Command::new(&exe)
            .args([
                "--exact",
                "load_client_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CLIENT_ENV,
                format!(
                    "{}|{i}|{}|{}|{}|{}",
                    g.m(&format!("c{i}")).display(),
                    size.seed,
                    size.ops,
                    size.seconds,
                    out.display()
                ),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start a client process");
        clients.0.push((i, child));
    }
    // Wait for every client; the watchdog only catches a hang.
    let mut failed_clients = Vec::new();
    for (i, child) in &mut clients.0 {
        let left = WATCHDOG.saturating_sub(start.elapsed());
        match wait_timeout(child, left) {
            Some(status) if status.success() => {}
            Some(status) => failed_clients.push(format!(
                "client {i} exited with {status}: {}",
                fs::read_to_string(g.root.join(format!("client{i}.log"))).unwrap_or_default()
            )),
            None => {
                stop.store(true, Ordering::SeqCst);
                panic!(
                    "client {i} still running {WATCHDOG:?} after the start: hung?\n\
                     --- daemon log ---\n{}",
                    g.log_text()
                );
            }
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("sampler thread");
    let mut samples = samples.lock().expect("samples").clone();
    if let Some(s) = sample(pid, start.elapsed()) {
        samples.push(s);
    }
    assert!(failed_clients.is_empty(), "{}", failed_clients.join("\n"));

    let results: Vec<ClientResult> = (0..size.clients)
        .map(|i| {
            let p = g.root.join(format!("client{i}.manifest"));
            ClientResult::parse(
                &fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())),
            )
        })
        .collect();
    // Once the clients are gone, the kernel holds at most the live files, the client
    // directories and the root (fewer if it dropped unused inodes from its cache: memory
    // pressure, or another process's drop_caches on this shared machine), and the daemon
    // must have let go of every other inode. The FORGETs of unlinked and renamed-over files
    // arrive asynchronously: poll for them; the deadline only catches inodes never
    // forgotten.
    let files: usize = results.iter().map(|r| r.files.len()).sum();
    let live_inodes = (1 + size.clients + files) as u64;
    let settle_start = Instant::now();
    loop {
        let c = g.counters();
        if c.inodes <= live_inodes {
            break;
        }
        assert!(
            settle_start.elapsed() < SETTLE_LIMIT,
            "the daemon still knows {} inodes {SETTLE_LIMIT:?} after the clients ended, but \
             only {live_inodes} exist (root, {} directories, {files} files): inodes leak\n{}",
            c.inodes,
            size.clients,
            c.line
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let settled_fds = sample(pid, start.elapsed()).expect("sample the daemon").fds;
    // The daemon also keeps the status files of its last callers open (a bounded cache).
    let status_files = uringfs::creds::STATUS_FILES;
    assert!(
        settled_fds <= idle.fds + files + status_files + SETTLED_SLACK,
        "with the clients gone and {files} files left, the daemon holds {settled_fds} fds, \
         more than its {} idle ones (the root and the directories) plus one per file plus \
         {status_files} callers' status files plus {SETTLED_SLACK}: fds leak",
        idle.fds
    );

    let mut ops: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &results {
        for (k, (d, f)) in &r.ops {
            let e = ops.entry(k.clone()).or_default();
            e.0 += d;
            e.1 += f;
        }
    }
    let report = Report {
        transport,
        size,
        ops,
        files,
        fsynced: results
            .iter()
            .map(|r| r.files.values().filter(|f| f.1).count())
            .sum(),
        xattrs: results
            .iter()
            .map(|r| r.xattrs.values().map(BTreeMap::len).sum::<usize>())
            .sum(),
        elapsed,
        samples,
        idle_fds: idle.fds,
        settled_fds,
    };
    eprintln!("{}", report.render());

    let problems: Vec<String> = results
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.problems.iter().map(move |p| format!("client {i}: {p}")))
        .collect();
    assert!(
        problems.is_empty(),
        "operations failed or read wrong data:\n  {}\n--- daemon log ---\n{}",
        problems.join("\n  "),
        g.log_text()
    );
    assert_matches_manifests(&g.backing, &results, "BACKING while mounted");
    assert_matches_manifests(&g.mnt, &results, "the mount");

    let max_fds = report.samples.iter().map(|x| x.fds).max().unwrap_or(0);
    assert!(
        max_fds <= report.fd_bound(),
        "the daemon held {max_fds} fds, more than its {} idle ones plus {FDS_PER_CLIENT} per \
         client plus {FD_SLACK}: fds leak\n{}",
        report.idle_fds,
        report.render()
    );
    if report.samples.len() >= 6 {
        let (first, last) = thirds(&report.samples);
        assert!(
            last <= first + RSS_GROWTH_KB,
            "the daemon's RSS grew by {} KiB from the first third of the run to the last \
             (bound {RSS_GROWTH_KB} KiB)\n{}",
            last.saturating_sub(first),
            report.render()
        );
    }
    // After unmount BACKING must still hold exactly the same.
    let backing = g.backing.clone();
    g.stop(libc::SIGTERM);
    assert_matches_manifests(&backing, &results, "BACKING after unmount");
    report
}

#[test]
fn sixteen_clients_lose_nothing() {
    if !require_root_and_fuse() {
        return;
    }
    run_load(
        DEFAULT_TRANSPORT,
        Size {
            clients: CI_CLIENTS,
            ops: CI_OPS,
            seconds: 0,
            seed: 0x10ad_0001,
        },
    );
}

/// The full-size run for `scripts/stress`: `STRESS_CLIENTS` clients (default 16) for
/// `STRESS_SECONDS` (default 60) on each transport in `STRESS_TRANSPORTS` (default
/// "io_uring devfuse"), seed `STRESS_SEED`; the report goes to stderr and to
/// `STRESS_REPORT` if set. Ignored by a plain `cargo test`.
#[test]
#[ignore = "full size: run by scripts/stress"]
fn stress() {
    if !require_root_and_fuse() {
        return;
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let clients: usize = env("STRESS_CLIENTS", "16").parse().expect("STRESS_CLIENTS");
    let seconds: u64 = env("STRESS_SECONDS", "60").parse().expect("STRESS_SECONDS");
    let seed = u64::from_str_radix(env("STRESS_SEED", "5eed0001").trim_start_matches("0x"), 16)
        .expect("STRESS_SEED (hex)");
    let mut all = String::new();
    for t in env("STRESS_TRANSPORTS", "io_uring devfuse").split_whitespace() {
        let opt = format!("transport={t}");
        let report = run_load(
            &[opt.as_str()],
            Size {
                clients,
                ops: 0,
                seconds,
                seed,
            },
        );
        all.push_str(&report.render());
        all.push('\n');
        if let Ok(path) = std::env::var("STRESS_REPORT") {
            fs::write(&path, &all).unwrap_or_else(|e| panic!("write {path}: {e}"));
        }
    }
}
