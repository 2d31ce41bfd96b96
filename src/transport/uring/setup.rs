//! Choosing the transport before mounting: FUSE over io_uring where the kernel offers it,
//! `/dev/fuse` otherwise, with one line saying which and why.

use std::path::Path;

use crate::options::{MountOptions, TransportMode};

use super::queue::possible_cpus;

/// Entries per queue: requests one queue can hold at once. Each takes a payload buffer of
/// `RING_MAX_WRITE` bytes.
pub const QUEUE_DEPTH: u16 = 16;
/// `max_write` (and readahead) negotiated with the ring transport: the kernel sizes every
/// entry's payload buffer from it, so fuser's default of 16 MiB would cost that per entry.
pub const RING_MAX_WRITE: u32 = 1 << 20;

/// What the ring transport was given before the mount: the queue count and depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPlan {
    /// One queue per possible CPU.
    pub nr_queues: u16,
    /// Entries per queue.
    pub depth: u16,
}

/// What the kernel and machine say, read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSupport {
    /// `/sys/module/fuse/parameters/enable_uring`: `Some(true)` for `Y`, `None` when the
    /// kernel has no such parameter (older than 6.14, or built without it).
    pub enable_uring: Option<bool>,
    /// Whether io_uring itself works for this process (the probe's verdict).
    pub io_uring_usable: bool,
    /// `/sys/devices/system/cpu/possible`.
    pub possible_cpus: Option<String>,
}

impl RingSupport {
    /// Reads the kernel's settings (start-up only: these are paths).
    pub fn read(io_uring_usable: bool) -> RingSupport {
        let read = |path: &str| std::fs::read_to_string(Path::new(path)).ok();
        RingSupport {
            enable_uring: read("/sys/module/fuse/parameters/enable_uring")
                .map(|v| v.trim() == "Y" || v.trim() == "1"),
            io_uring_usable,
            possible_cpus: read("/sys/devices/system/cpu/possible"),
        }
    }
}

/// The transport for `opts` on a machine with `support`: `Ok(Some(plan))` for io_uring,
/// `Ok(None)` for `/dev/fuse` with the reason, an error when `transport=io_uring` cannot be.
///
/// # Errors
/// One line for `transport=io_uring` on a kernel or configuration that cannot give it.
pub fn choose(
    opts: &MountOptions,
    support: &RingSupport,
) -> Result<(Option<RingPlan>, String), String> {
    if opts.transport == TransportMode::DevFuse {
        return Ok((None, "/dev/fuse (-o transport=devfuse)".to_string()));
    }
    let why_not = if opts.auto_unmount {
        // After a SIGKILL the kernel releases an io_uring's files asynchronously, so when
        // fusermount3 sees the daemon gone, the connection still looks alive (no ENOTCONN)
        // and it leaves the mount in place.
        Some("-o auto_unmount needs /dev/fuse (fusermount3 would miss a killed daemon)".to_string())
    } else if !support.io_uring_usable {
        Some("io_uring is unavailable to the daemon".to_string())
    } else {
        match support.enable_uring {
            None => Some(
                "this kernel has no FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING)"
                    .to_string(),
            ),
            Some(false) => Some(
                "the fuse module's enable_uring is off; as root: \
                 echo 1 > /sys/module/fuse/parameters/enable_uring"
                    .to_string(),
            ),
            Some(true) => None,
        }
    };
    let nr_queues = support
        .possible_cpus
        .as_deref()
        .map(possible_cpus)
        .transpose()
        .map_err(|e| e.to_string());
    match (why_not, nr_queues) {
        (None, Ok(Some(nr_queues))) => Ok((
            Some(RingPlan {
                nr_queues,
                depth: QUEUE_DEPTH,
            }),
            format!("FUSE over io_uring, {nr_queues} queues"),
        )),
        (why, cpus) => {
            let why = why.unwrap_or_else(|| match cpus {
                Err(e) => e,
                _ => "the possible CPUs are unknown".to_string(),
            });
            if opts.transport == TransportMode::IoUring {
                Err(format!("-o transport=io_uring: {why}"))
            } else {
                Ok((None, format!("/dev/fuse ({why})")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support(enable: Option<bool>) -> RingSupport {
        RingSupport {
            enable_uring: enable,
            io_uring_usable: true,
            possible_cpus: Some("0-1\n".to_string()),
        }
    }

    #[test]
    fn auto_takes_the_ring_when_offered() {
        let (plan, line) = choose(&MountOptions::default(), &support(Some(true))).unwrap();
        assert_eq!(plan.map(|p| p.nr_queues), Some(2));
        assert!(line.contains("io_uring"));
    }

    #[test]
    fn auto_says_why_it_stays_on_dev_fuse() {
        let (plan, line) = choose(&MountOptions::default(), &support(Some(false))).unwrap();
        assert_eq!(plan, None);
        assert!(line.contains("enable_uring"), "{line}");
        let (plan, line) = choose(&MountOptions::default(), &support(None)).unwrap();
        assert_eq!(plan, None);
        assert!(line.contains("6.14"), "{line}");
    }

    #[test]
    fn a_forced_ring_that_cannot_be_is_an_error() {
        let mut opts = MountOptions::default();
        opts.apply("transport=io_uring").unwrap();
        assert!(choose(&opts, &support(Some(false))).is_err());
        assert!(choose(&opts, &support(Some(true))).unwrap().0.is_some());
        opts.apply("passthrough").unwrap();
        assert!(choose(&opts, &support(Some(true))).unwrap().0.is_some());
        let mut opts = MountOptions::default();
        opts.apply("auto_unmount,allow_other").unwrap();
        let (plan, line) = choose(&opts, &support(Some(true))).unwrap();
        assert_eq!(plan, None);
        assert!(line.contains("auto_unmount"), "{line}");
        let mut opts = MountOptions::default();
        opts.apply("transport=devfuse").unwrap();
        assert_eq!(choose(&opts, &support(Some(true))).unwrap().0, None);
    }
}
