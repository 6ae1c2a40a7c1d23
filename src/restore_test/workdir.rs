//! Private directories for restored copies, removed on every path: when dropped (success,
//! failure, panic unwinding), and on Ctrl-C or SIGTERM through the cleanup registry. A
//! restored copy of a production database must not outlive the test that made it.

use std::path::Path;

use crate::cleanup::TempDir;
use crate::error::Result;

/// Work directories are named `<PREFIX><pid>-<random>`.
const PREFIX: &str = ".dbbackup-restore-";

/// A directory for one restored copy, in `parent` or in the system's temporary directory
/// (`TMPDIR`) when `None`. Those there of processes that are gone are removed first: a SIGKILL
/// or a crash runs no cleanup, and left a restored copy of the data behind.
pub(super) fn new(parent: Option<&Path>) -> Result<TempDir> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    crate::process::remove_abandoned_dirs(&parent, PREFIX);
    TempDir::new_in(&parent, PREFIX)
}
