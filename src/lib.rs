//! dbbackup: trustworthy database backups in CI.
//!
//! The binary (`src/main.rs`) only parses the command line; everything it does lives here so
//! that tests and benchmarks call the same code.

pub mod archive;
pub mod backup;
pub mod engine;
pub mod error;
pub mod process;
pub mod progress;
pub mod retention;
pub mod runner;
pub mod store;
pub mod verify;

pub use error::{Error, Result};
