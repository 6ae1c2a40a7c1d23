//! dbbackup: trustworthy database backups in CI.
//!
//! The binary (`src/main.rs`) only parses the command line; everything it does lives here so
//! that tests and benchmarks call the same code. This library is the binary's and its tests';
//! its API is not stable.
//!
//! Layers, each depending only on those below it (CI refuses module cycles):
//! - `cli` (in the binary) → [`backup`] (the pipeline), [`restore_test`], [`freshness`]
//!   (`check`), [`runner`] (GitHub Actions' outputs, summary, annotations), [`notify`]
//!   (webhooks and pings about a run), [`summary`] (one table for many backups' reports);
//! - [`store`] (where backups are kept) and [`engine`] (databases, through one registry);
//! - [`archive`] (what a backup is on disk), [`cleanup`], [`process`], [`progress`],
//!   [`retention`], [`util`], [`error`].

pub mod archive;
pub mod backup;
pub mod cleanup;
pub mod drift;
pub mod engine;
pub mod error;
pub mod freshness;
pub mod notify;
pub mod process;
pub mod progress;
pub mod restore_test;
pub mod retention;
pub mod runner;
pub mod store;
pub mod summary;
pub mod util;

pub use error::{Error, Result};
