//! FUSE-over-io_uring: the kernel ABI and the wire codec of ring entries.

pub mod abi;
pub mod decode;
pub mod dispatch;
pub mod encode;
mod lockwait;
pub mod queue;
pub mod queue_stats;
pub mod setup;
