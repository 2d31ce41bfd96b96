//! The security score and the targets behind `--check`.

use std::collections::BTreeMap;
use std::fmt;

use super::transport::Kind;

/// The rule, as printed next to the score (docs/AUDIT.md repeats it).
pub const RULE: &str = "score = 100 \
    - 20 x (syscall classes with a path-based call in the window) \
    - 20 x (syscall classes with a possible symlink follow in the window) \
    - 10 x (syscall classes of direct read/write calls on backing files in the window) \
    - 10 if the copy workload made more than 1.0 direct statx per new file; \
    never below 0. A class is a syscall name: 1,000 path-based `openat` calls cost 20 \
    points, one `openat` and one `stat` cost 40. Teardown calls are listed but not scored.";

/// Maximum statx per created file.
pub const STAT_PER_NEW_FILE_TARGET: f64 = 1.0;

/// What the score is computed from.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Path-based calls in the window, per syscall.
    pub path_based: BTreeMap<String, u64>,
    /// Possible symlink follows in the window, per syscall.
    pub follows: BTreeMap<String, u64>,
    /// Direct data syscalls on backing files in the window, per syscall.
    pub backing_data: BTreeMap<String, u64>,
    /// Direct statx per created file in the copy workload, if it ran.
    pub stat_per_new_file: Option<f64>,
    /// All stat calls per new file, attribute replies included (shown, not scored).
    pub raw_stat_per_new_file: Option<f64>,
    /// Path-based calls after the unmount was requested.
    pub teardown_path_based: u64,
    /// The audit unmounted and traced the teardown (not with `--pid`).
    pub teardown_observed: bool,
    /// `io_uring_enter` calls in the window.
    pub enters: u64,
    /// The daemon runs with `-o uring=off`.
    pub ring_off: bool,
    /// The FUSE transport that served the workload.
    pub transport: Kind,
    /// `/dev/fuse` requests other than FORGET/BATCH_FORGET/INTERRUPT, plus replies other
    /// than to INTERRUPTs, in the window.
    pub dev_fuse_stray: u64,
    /// FORGET/BATCH_FORGET/INTERRUPT requests read from `/dev/fuse` in the window.
    pub dev_fuse_forgetish: u64,
}

/// The score and what was taken off.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// 0..=100.
    pub points: u32,
    /// (reason, points taken).
    pub deductions: Vec<(String, u32)>,
}

/// Applies [`RULE`].
pub fn score(inputs: &Inputs) -> Score {
    let mut deductions = Vec::new();
    for (name, n) in &inputs.path_based {
        deductions.push((format!("path-based `{name}` ({n} calls)"), 20));
    }
    for (name, n) in &inputs.follows {
        deductions.push((
            format!("possible symlink follow by `{name}` ({n} calls)"),
            20,
        ));
    }
    for (name, n) in &inputs.backing_data {
        deductions.push((format!("direct `{name}` on backing files ({n} calls)"), 10));
    }
    if let Some(s) = inputs.stat_per_new_file
        && s > STAT_PER_NEW_FILE_TARGET
    {
        deductions.push((format!("{s:.2} statx per new file (> 1.0)"), 10));
    }
    let taken: u32 = deductions.iter().map(|(_, p)| p).sum();
    Score {
        points: 100u32.saturating_sub(taken),
        deductions,
    }
}

/// PASS/WARN/FAIL of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Target met.
    Pass,
    /// Missed, but not part of `--check`.
    Warn,
    /// Missed; `--check` fails.
    Fail,
    /// Not measured by this run.
    NotRun,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::NotRun => "n/a",
        })
    }
}

/// One target line.
#[derive(Clone, Debug)]
pub struct Target {
    /// Result.
    pub status: Status,
    /// What is measured.
    pub what: &'static str,
    /// The measured value.
    pub value: String,
    /// The target.
    pub goal: &'static str,
    /// Part of `--check`.
    pub checked: bool,
}

/// The target lines. Checked targets FAIL when missed; the others WARN.
pub fn targets(inputs: &Inputs, score: &Score) -> Vec<Target> {
    let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    let zero = |n: u64, checked: bool| match (n, checked) {
        (0, _) => Status::Pass,
        (_, true) => Status::Fail,
        (_, false) => Status::Warn,
    };
    let path_based = total(&inputs.path_based);
    let backing = total(&inputs.backing_data);
    let follows = total(&inputs.follows);
    let stat = match inputs.stat_per_new_file {
        None => Status::NotRun,
        Some(s) if s <= STAT_PER_NEW_FILE_TARGET => Status::Pass,
        Some(_) => Status::Fail,
    };
    vec![
        Target {
            status: zero(path_based, true),
            what: "path-based calls (window)",
            value: path_based.to_string(),
            goal: "0",
            checked: true,
        },
        Target {
            status: zero(backing, true),
            what: "direct read/write calls on backing files",
            value: backing.to_string(),
            goal: "0",
            checked: true,
        },
        Target {
            status: stat,
            what: "statx per new file (copy)",
            value: inputs
                .stat_per_new_file
                .map_or("not measured".into(), |s| format!("{s:.2}")),
            goal: "<= 1.0",
            checked: true,
        },
        Target {
            status: zero(follows, false),
            what: "possible symlink follows",
            value: follows.to_string(),
            goal: "0",
            checked: false,
        },
        Target {
            status: if inputs.teardown_observed {
                zero(inputs.teardown_path_based, false)
            } else {
                Status::NotRun
            },
            what: "path-based calls during teardown",
            value: inputs.teardown_path_based.to_string(),
            goal: "0",
            checked: false,
        },
        Target {
            status: if inputs.ring_off || inputs.enters > 0 {
                Status::Pass
            } else {
                Status::Warn
            },
            what: "io_uring used for the data path",
            value: if inputs.ring_off {
                "ring off (-o uring=off)".into()
            } else {
                format!("{} io_uring_enter", inputs.enters)
            },
            goal: "> 0 enters",
            checked: false,
        },
        Target {
            status: if inputs.transport == Kind::IoUring {
                zero(inputs.dev_fuse_stray, true)
            } else {
                Status::NotRun
            },
            what: "/dev/fuse requests and replies after INIT beyond FORGET/BATCH_FORGET/INTERRUPT (io_uring)",
            value: if inputs.transport == Kind::IoUring {
                format!(
                    "{} ({} forget/interrupt requests stayed on /dev/fuse, as they should)",
                    inputs.dev_fuse_stray, inputs.dev_fuse_forgetish
                )
            } else {
                format!("transport {}", inputs.transport.label())
            },
            goal: "0",
            checked: true,
        },
        Target {
            status: if score.points >= 80 {
                Status::Pass
            } else {
                Status::Warn
            },
            what: "security score",
            value: format!("{}/100", score.points),
            goal: ">= 80",
            checked: false,
        },
    ]
}

/// The checked targets that failed, as one-line reasons.
pub fn check_failures(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| t.checked && t.status == Status::Fail)
        .map(|t| format!("{}: {} (target {})", t.what, t.value, t.goal))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn clean_run_scores_100_and_passes() {
        let inputs = Inputs {
            stat_per_new_file: Some(1.0),
            raw_stat_per_new_file: Some(3.0),
            enters: 10,
            teardown_observed: true,
            ..Inputs::default()
        };
        let s = score(&inputs);
        assert_eq!(s.points, 100);
        assert!(s.deductions.is_empty());
        let t = targets(&inputs, &s);
        assert!(check_failures(&t).is_empty());
        // The transport line is n/a without a ring transport; everything else passes.
        assert!(
            t.iter()
                .all(|t| t.status == Status::Pass || t.what.contains("/dev/fuse"))
        );
    }

    #[test]
    fn dev_fuse_traffic_fails_only_over_io_uring() {
        let ring = |stray| Inputs {
            transport: Kind::IoUring,
            dev_fuse_stray: stray,
            dev_fuse_forgetish: 12,
            ..Inputs::default()
        };
        let line = |i: &Inputs| {
            targets(i, &score(i))
                .into_iter()
                .find(|t| t.what.contains("/dev/fuse"))
                .expect("a /dev/fuse target")
        };
        assert_eq!(line(&ring(0)).status, Status::Pass);
        assert!(line(&ring(0)).value.starts_with("0 (12 forget"));
        assert_eq!(line(&ring(3)).status, Status::Fail);
        assert_eq!(
            check_failures(&targets(&ring(3), &score(&ring(3)))).len(),
            1
        );
        let devfuse = Inputs {
            transport: Kind::DevFuse,
            dev_fuse_stray: 5000,
            ..Inputs::default()
        };
        assert_eq!(line(&devfuse).status, Status::NotRun);
        assert_eq!(score(&devfuse).points, 100, "the transport is not scored");
    }

    #[test]
    fn deductions_are_per_class() {
        let inputs = Inputs {
            path_based: map(&[("openat", 1000)]),
            follows: map(&[("openat", 1), ("stat", 2)]),
            backing_data: map(&[("pread64", 5)]),
            stat_per_new_file: Some(2.5),
            raw_stat_per_new_file: Some(4.5),
            ..Inputs::default()
        };
        let s = score(&inputs);
        // 100 - 20 - 2*20 - 10 - 10
        assert_eq!(s.points, 20);
        assert_eq!(s.deductions.len(), 5);
        let fails = check_failures(&targets(&inputs, &s));
        assert_eq!(fails.len(), 3, "{fails:?}");
    }

    #[test]
    fn score_floors_at_zero_and_unmeasured_is_not_a_failure() {
        let inputs = Inputs {
            path_based: map(&[("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1), ("f", 1)]),
            ..Inputs::default()
        };
        assert_eq!(score(&inputs).points, 0);
        let none = Inputs::default();
        let t = targets(&none, &score(&none));
        assert_eq!(t[2].status, Status::NotRun);
        assert!(check_failures(&t).is_empty());
        // Teardown path calls and follows warn but never fail --check.
        let warn = Inputs {
            follows: map(&[("openat", 1)]),
            teardown_path_based: 1,
            teardown_observed: true,
            enters: 1,
            ..Inputs::default()
        };
        let t = targets(&warn, &score(&warn));
        assert!(check_failures(&t).is_empty());
        assert_eq!(t[3].status, Status::Warn);
        assert_eq!(t[4].status, Status::Warn);
    }
}
