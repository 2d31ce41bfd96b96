//! INIT, which always comes over `/dev/fuse`: the capabilities the daemon asks the kernel for,
//! and preparing the io_uring transport before accepting `FUSE_OVER_IO_URING`.

use std::sync::atomic::Ordering::Relaxed;

use fuser::{InitFlags, KernelConfig};
use log::{error, warn};

use crate::options::CacheMode;
use crate::transport::uring::queue::Prepared;
use crate::transport::uring::setup::RING_MAX_WRITE;

use super::{DevFuse, RingStart};

impl DevFuse {
    /// Negotiates INIT: asks for the capabilities the mount options need, records what the
    /// kernel granted, and prepares the io_uring transport if it was chosen at start.
    pub(super) fn negotiate_init(&self, config: &mut KernelConfig) {
        let mut wanted = InitFlags::FUSE_DO_READDIRPLUS
        | InitFlags::FUSE_READDIRPLUS_AUTO
        | InitFlags::FUSE_PARALLEL_DIROPS
        // The backing fs clears setuid/setgid itself: writes, truncates and chowns run
        // with the caller's fsuid, which carries no CAP_FSETID. Without this the kernel
        // asks for security.capability before every write.
        | InitFlags::FUSE_HANDLE_KILLPRIV_V2
        | InitFlags::FUSE_MAX_PAGES;
        // Not FUSE_ATOMIC_O_TRUNC: with it the daemon truncates inside vfs_open, before the
        // VFS checks deny-write (handle_truncate), so open(O_TRUNC) of a running executable
        // would empty it and then fail with ETXTBSY. Without it the kernel strips O_TRUNC and
        // truncates by setattr only after that check, as natively.
        if self.opts.cache == CacheMode::None || self.opts.passthrough {
            // Direct I/O must still allow mmap (fsx's mapread/mapwrite, executables): with
            // cache=none every file, with passthrough the setuid/setgid ones, is direct.
            wanted |= InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        }
        if self.opts.cache == CacheMode::Always {
            wanted |= InitFlags::FUSE_CACHE_SYMLINKS;
        }
        for flag in wanted.iter() {
            if let Err(missing) = config.add_capabilities(flag) {
                warn!("kernel lacks FUSE capability {missing:?}");
            }
        }
        self.killpriv_v2.store(
            config
                .capabilities()
                .contains(InitFlags::FUSE_HANDLE_KILLPRIV_V2),
            Relaxed,
        );
        // POSIX ACLs (only with default_permissions, which FUSE_POSIX_ACL implies): the kernel
        // enforces and caches them; FUSE_DONT_MASK leaves the umask to the backing fs, which
        // skips it under a default ACL, as natively.
        if self.opts.default_permissions {
            let acl = InitFlags::FUSE_POSIX_ACL | InitFlags::FUSE_DONT_MASK;
            match config.add_capabilities(acl) {
                Ok(()) => self.posix_acl.store(true, Relaxed),
                Err(missing) => warn!("kernel lacks {missing:?}: POSIX ACLs are not enforced"),
            }
        }
        if let Some(ring) = &self.ring {
            match prepare_ring(ring, config) {
                Ok(prepared) => *ring.prepared.lock() = Some(prepared),
                Err(why) => error!("FUSE requests stay on /dev/fuse: {why}"),
            }
        }
        if self.opts.export
            && let Err(missing) = config.add_capabilities(InitFlags::FUSE_EXPORT_SUPPORT)
        {
            error!("kernel refuses {missing:?}: the mount cannot be exported");
        }
        if self.opts.forward_locks {
            // flock locks need FUSE_LK_FLOCK, which only the io_uring transport's own decoder
            // reads: over /dev/fuse they stay the kernel's (fuser 0.18 drops the flag).
            let mut locks = InitFlags::FUSE_POSIX_LOCKS;
            if self
                .ring
                .as_ref()
                .is_some_and(|r| r.prepared.lock().is_some())
            {
                locks |= InitFlags::FUSE_FLOCK_LOCKS;
            } else {
                warn!("flock locks stay in the kernel over /dev/fuse; POSIX locks are forwarded");
            }
            if let Err(missing) = config.add_capabilities(locks) {
                error!("kernel refuses {missing:?}: locks stay in the kernel");
            }
        }
        if self.opts.passthrough {
            // Passthrough needs the capability and a stacking depth of at least 1 (0, the
            // default, disables it).
            let granted = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if granted {
                self.passthrough.store(true, Relaxed);
            } else {
                error!("kernel refuses FUSE passthrough; reads and writes go through the daemon");
            }
        }
    }
}

/// Prepares the io_uring transport while INIT is negotiated: sizes the payload buffers from
/// `max_write` (set here to `RING_MAX_WRITE`), makes every queue's ring and buffers, and only
/// then accepts `FUSE_OVER_IO_URING`. The kernel makes every request after INIT wait until
/// every queue has registered, so nothing may fail after the flag is accepted; anything that
/// fails before leaves the mount on `/dev/fuse`.
fn prepare_ring(ring: &RingStart, config: &mut KernelConfig) -> Result<Prepared, String> {
    if !config
        .capabilities()
        .contains(InitFlags::FUSE_OVER_IO_URING)
    {
        return Err("the kernel did not offer FUSE_OVER_IO_URING at INIT".to_string());
    }
    let max_write = match config.set_max_write(RING_MAX_WRITE) {
        Ok(_) => RING_MAX_WRITE,
        Err(limit) => {
            let _ = config.set_max_write(limit);
            limit
        }
    };
    let readahead = match config.set_max_readahead(max_write) {
        Ok(_) => max_write,
        Err(limit) => limit.min(max_write),
    };
    // The kernel's max_payload_sz: max(FUSE_MIN_READ_BUFFER, max_write, max_pages * page),
    // with fuser's max_pages from the larger of max_write and readahead.
    let payload = (max_write.max(readahead) as usize)
        .next_multiple_of(4096)
        .max(8192);
    let prepared = Prepared::new(ring.plan.nr_queues, ring.plan.depth, payload)
        .map_err(|e| format!("cannot set up the io_uring queues: {e}"))?;
    config
        .add_capabilities(InitFlags::FUSE_OVER_IO_URING)
        .map_err(|_| "the kernel refused FUSE_OVER_IO_URING".to_string())?;
    Ok(prepared)
}
