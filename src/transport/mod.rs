//! The ways requests reach the core: FUSE-over-io_uring (`uring`).

pub mod uring;
