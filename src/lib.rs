//! uringfs: a FUSE passthrough filesystem whose data path runs on io_uring.
//!
//! The daemon opens BACKING once as a directory fd and resolves every later name relative
//! to an inode's pinned `O_PATH` fd; see docs/ARCHITECTURE.md for the picture.
#![deny(unsafe_code)]

pub mod attr;
pub mod audit;
pub mod buffer;
pub mod cli;
pub mod creds;
pub mod datapath;
pub mod error;
pub mod fs;
pub mod handle;
pub mod inode;
pub mod locks;
pub mod logging;
pub mod openfile;
pub mod options;
pub mod probe;
pub mod ring;
pub mod stats;
pub mod sys;
pub mod transport;
