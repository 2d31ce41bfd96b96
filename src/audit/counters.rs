//! The daemon's own ring counters, read from the line it logs on SIGUSR1 and at unmount:
//! `stats: ring: rings=R sqes=S enters=E ops_per_enter=X batches=[1:a 2-3:b ...] ops: ...`
//! (`Counters::summary` in src/main.rs). strace cannot see io_uring's `iou-wrk` threads, and
//! SQEs never show up as syscalls, so the ring's op counts come from here.

use std::collections::BTreeMap;

use crate::ring::{BATCH_BUCKET_LABELS, BATCH_BUCKETS};

/// One parsed `stats:` line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RingCounters {
    /// Rings created so far.
    pub rings: u64,
    /// SQEs submitted.
    pub sqes: u64,
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Submitting enters per batch-size bucket ([`BATCH_BUCKET_LABELS`]).
    pub batches: [u64; BATCH_BUCKETS],
    /// The `ops:` part, verbatim (`lookup=10/0/2419us ...`).
    pub ops: String,
    /// The ring was off (`-o uring=off`).
    pub ring_off: bool,
}

impl RingCounters {
    /// SQEs per enter, as the daemon computes it.
    pub fn ops_per_enter(&self) -> f64 {
        if self.enters == 0 {
            0.0
        } else {
            self.sqes as f64 / self.enters as f64
        }
    }

    /// Requests of `op` (`getattr`) in the `ops:` part; 0 when it is not there.
    pub fn op_requests(&self, op: &str) -> u64 {
        self.ops
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .find(|(name, _)| *name == op)
            .and_then(|(_, v)| v.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Requests per op in the `ops:` part (`lookup=10/0/2419us` -> lookup: 10); the gauges
    /// before the ops (`inodes=N`) are not ops and are skipped.
    pub fn op_totals(&self) -> BTreeMap<String, u64> {
        self.ops
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(_, v)| v.matches('/').count() == 2)
            .filter_map(|(name, v)| Some((name.to_string(), v.split('/').next()?.parse().ok()?)))
            .collect()
    }

    /// FUSE requests served since `earlier`, all ops but `forget` (which counts forgotten
    /// nodes, one BATCH_FORGET carrying many, and comes over `/dev/fuse` on either transport).
    pub fn requests_since(&self, earlier: &RingCounters) -> u64 {
        let before = earlier.op_totals();
        self.op_totals()
            .iter()
            .filter(|(name, _)| name.as_str() != "forget")
            .map(|(name, n)| n.saturating_sub(before.get(name).copied().unwrap_or(0)))
            .sum()
    }

    /// `self - earlier`, counter by counter (saturating: a restarted daemon gives zeros).
    pub fn since(&self, earlier: &RingCounters) -> RingCounters {
        let mut batches = self.batches;
        for (b, e) in batches.iter_mut().zip(earlier.batches) {
            *b = b.saturating_sub(e);
        }
        RingCounters {
            rings: self.rings.saturating_sub(earlier.rings),
            sqes: self.sqes.saturating_sub(earlier.sqes),
            enters: self.enters.saturating_sub(earlier.enters),
            batches,
            ops: self.ops.clone(),
            ring_off: self.ring_off,
        }
    }
}

/// Parses the `stats:` part of a log line; `None` if the line has none.
pub fn parse_line(line: &str) -> Option<RingCounters> {
    let start = line.find("stats: ring: ")?;
    let body = &line[start + "stats: ring: ".len()..];
    let (ring, ops) = match body.split_once(" ops:") {
        Some((ring, ops)) => (ring, ops.trim()),
        None => (body, ""),
    };
    let mut out = RingCounters {
        ops: ops.to_string(),
        ..RingCounters::default()
    };
    if ring.trim() == "off" {
        out.ring_off = true;
        return Some(out);
    }
    let (scalars, batches) = match ring.split_once("batches=[") {
        Some((s, b)) => (s, b.trim_end_matches(']')),
        None => (ring, ""),
    };
    for word in scalars.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let value = value.parse::<u64>().ok();
        match (key, value) {
            ("rings", Some(v)) => out.rings = v,
            ("sqes", Some(v)) => out.sqes = v,
            ("enters", Some(v)) => out.enters = v,
            _ => {}
        }
    }
    for word in batches.trim_end_matches(']').split_whitespace() {
        let Some((label, n)) = word.rsplit_once(':') else {
            continue;
        };
        if let (Some(i), Ok(n)) = (
            BATCH_BUCKET_LABELS.iter().position(|l| *l == label),
            n.parse::<u64>(),
        ) && let Some(slot) = out.batches.get_mut(i)
        {
            *slot = n;
        }
    }
    Some(out)
}

#[cfg(test)]
mod op_tests {
    use super::*;

    #[test]
    fn op_requests_reads_the_ops_part() {
        let c = parse_line("stats: ring: rings=1 sqes=2 enters=1 ops_per_enter=2.00 batches=[1:0] ops: getattr=51/0/3165us setattr=7/1/20us").unwrap();
        assert_eq!(c.op_requests("getattr"), 51);
        assert_eq!(c.op_requests("setattr"), 7);
        assert_eq!(c.op_requests("lookup"), 0);
    }

    #[test]
    fn requests_since_skip_gauges_and_forgets() {
        let start = parse_line(
            "stats: ring: off ops: inodes=5 passthrough_opens=0 lookup=10/0/5us forget=3/0/1us",
        )
        .unwrap();
        let end = parse_line("stats: ring: off ops: inodes=900 passthrough_opens=0 lookup=25/2/9us getattr=4/0/1us forget=40/0/2us").unwrap();
        assert_eq!(end.op_totals().get("inodes"), None);
        assert_eq!(end.op_totals().get("forget"), Some(&40));
        assert_eq!(end.requests_since(&start), 15 + 4);
        assert_eq!(end.requests_since(&RingCounters::default()), 29);
    }
}

/// The last `stats:` line in a log, if any.
pub fn last_in_log(log: &str) -> Option<RingCounters> {
    log.lines().rev().find_map(parse_line)
}

/// The `unmounted; stats:` line of a log, if the daemon got to log it.
pub fn unmount_line(log: &str) -> Option<RingCounters> {
    log.lines()
        .rev()
        .filter(|l| l.contains("unmounted; stats:"))
        .find_map(parse_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "[2026-12-01T08:48:56Z INFO  uringfs] unmounted; stats: ring: rings=3 sqes=34 enters=20 ops_per_enter=1.70 batches=[1:12 2-3:8 4-7:0 8-15:0 16-31:0 32-63:0 64+:1] ops: lookup=10/10/2419us getattr=10/0/2023us";

    #[test]
    fn parses_the_unmount_line() {
        let c = unmount_line(LINE).expect("a stats line");
        assert_eq!((c.rings, c.sqes, c.enters), (3, 34, 20));
        assert_eq!(c.batches, [12, 8, 0, 0, 0, 0, 1]);
        assert!((c.ops_per_enter() - 1.7).abs() < 1e-9);
        assert!(c.ops.starts_with("lookup=10/10/2419us"));
        assert!(!c.ring_off);
    }

    #[test]
    fn ring_off_and_missing_lines() {
        let c = parse_line("x stats: ring: off ops: read=1/0/1us").expect("line");
        assert!(c.ring_off);
        assert_eq!(c.enters, 0);
        assert_eq!(parse_line("[..] mounted /a on /b"), None);
        assert_eq!(unmount_line("x stats: ring: rings=1 sqes=1 enters=1"), None);
    }

    #[test]
    fn subtracts_an_earlier_snapshot() {
        let end = parse_line(LINE).expect("line");
        let start = parse_line(
            "stats: ring: rings=1 sqes=4 enters=2 ops_per_enter=2.00 batches=[1:0 2-3:2 4-7:0 8-15:0 16-31:0 32-63:0 64+:0] ops:",
        )
        .expect("line");
        let d = end.since(&start);
        assert_eq!((d.rings, d.sqes, d.enters), (2, 30, 18));
        assert_eq!(d.batches, [12, 6, 0, 0, 0, 0, 1]);
    }
}
