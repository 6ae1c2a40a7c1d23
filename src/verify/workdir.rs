//! Private directories for restored copies, removed on every path: when dropped (success,
//! failure, panic unwinding) and on Ctrl-C or SIGTERM, which end the process without running
//! destructors. A restored copy of a production database must not outlive the test that made it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Work directories are named `<PREFIX><pid>-<random>`.
const PREFIX: &str = ".dbbackup-restore-";

/// Work directories alive now, for the interrupt handler.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The exit code of a process ended by SIGINT, as shells report it.
const INTERRUPTED: i32 = 130;

/// Installs the handler that removes live work directories when the user (or CI cancelling a
/// job) interrupts the process. Call once, from the binary, before restoring anything.
pub fn remove_on_interrupt() -> Result<()> {
    ctrlc::set_handler(|| {
        let live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for dir in live.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
        crate::engine::postgres::drop_scratch_databases();
        eprintln!("interrupted: removed the restored scratch copies");
        std::process::exit(INTERRUPTED);
    })
    .map_err(|e| Error::Internal(format!("install the Ctrl-C handler: {e}")))
}

/// A temporary directory registered with the interrupt handler while it exists.
pub struct WorkDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl WorkDir {
    /// Creates it in `parent`, or in the system's temporary directory (`TMPDIR`) when `None`,
    /// named for this process; first removes those there of processes that are gone (a
    /// SIGKILL or a crash runs no cleanup, and left a restored copy of the data behind).
    pub fn new(parent: Option<&Path>) -> Result<Self> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        crate::process::remove_abandoned_dirs(&parent, PREFIX);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&parent)
            .map_err(|e| Error::output("create a scratch directory in", &parent, e))?;
        let path = dir.path().to_path_buf();
        lock().push(path.clone());
        Ok(Self {
            dir: Some(dir),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    /// Removes the directory first and only then forgets it, so that an interrupt in between
    /// removes it too.
    fn drop(&mut self) {
        drop(self.dir.take());
        lock().retain(|p| p != &self.path);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
