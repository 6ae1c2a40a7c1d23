//! One registry of scratch resources (temporary directories, scratch databases) that must not
//! outlive the process that made them, and the one signal handler that removes them.
//!
//! Ctrl-C and SIGTERM (CI cancelling a job) end the process without running destructors, so a
//! `Drop` alone would leave a restored copy of production data in `TMPDIR`, or a
//! `dbbackup_scratch_*` database on a server. Every resource registers its removal here when it
//! is made; [`install`], called once by the binary before any command runs, runs every
//! registered removal on SIGINT/SIGTERM and exits 130. A SIGKILL runs nothing: what it leaves
//! is swept by the next run (`process::remove_abandoned_dirs`).
//!
//! Removals must be idempotent: the owner's `Drop` runs its removal and then unregisters it, so
//! a signal arriving in between runs it a second time rather than not at all.
//!
//! Removing a resource can make the work using it fail (dropping a scratch database ends the
//! `psql` restoring into it), and the main thread would then carry on: report a failed restore
//! test, set the backup aside, exit 5 before the handler exits 130. So the pipeline stops at
//! [`checkpoint`]s before anything it decides on, and `main` before it exits: once an
//! interrupt is being handled, the main thread goes no further.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};

type Removal = Arc<dyn Fn() + Send + Sync>;

/// Registered removals by id, in the order they were made.
static LIVE: Mutex<Vec<(u64, Removal)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Set by the signal handler before it removes anything.
static HANDLING: AtomicBool = AtomicBool::new(false);

/// The exit code of a process ended by SIGINT, as shells report it; SIGTERM ends the same way.
pub const INTERRUPTED: i32 = 130;

/// Installs the handler for SIGINT and SIGTERM. Call once, first thing in the binary.
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        HANDLING.store(true, Ordering::SeqCst);
        // A half-drawn bar would stay on the terminal under the shell's prompt.
        crate::progress::clear_for_exit();
        let live = std::mem::take(&mut *lock());
        let removed = live.len();
        // Newest first: a directory made for a database is removed after the database.
        for (_, removal) in live.into_iter().rev() {
            // A removal that panics must not take the handler with it: the others still run
            // and the process still ends with 130 instead of hanging.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| removal()));
        }
        if removed > 0 {
            eprintln!("interrupted: removed {removed} scratch resource(s)");
        } else {
            eprintln!("interrupted");
        }
        std::process::exit(INTERRUPTED);
    })
    .map_err(|e| Error::Internal(format!("install the Ctrl-C handler: {e}")))
}

/// Blocks for good once an interrupt is being handled (the handler then ends the process with
/// 130); returns at once otherwise. Called before each step whose outcome a removal could have
/// caused.
pub fn checkpoint() {
    if HANDLING.load(Ordering::SeqCst) {
        park_for_good();
    }
}

/// The handler ends the process; until then this thread does nothing more.
fn park_for_good() -> ! {
    loop {
        std::thread::park();
    }
}

/// A registered removal. Dropping it runs the removal and unregisters it; [`Guard::disarm`]
/// unregisters without removing (the resource was kept on purpose).
#[must_use = "dropping the guard removes the resource at once"]
pub struct Guard {
    id: u64,
}

/// Registers `removal` until the returned guard is dropped or disarmed.
pub fn register(removal: impl Fn() + Send + Sync + 'static) -> Guard {
    push(&mut lock(), Arc::new(removal))
}

fn push(live: &mut Vec<(u64, Removal)>, removal: Removal) -> Guard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    live.push((id, removal));
    Guard { id }
}

/// Makes a resource with `make` and registers the removal it returns in one step, under the
/// registry's lock, which the signal handler takes before it removes anything: an interrupt
/// finds the resource registered or not yet made, never made and unregistered (a directory
/// created a moment before its registration outlived a SIGINT landing in between). Once an
/// interrupt is being handled nothing more is made: the thread parks, as at [`checkpoint`].
pub fn make_registered<T, R: Fn() + Send + Sync + 'static>(
    make: impl FnOnce() -> Result<(T, R)>,
) -> Result<(T, Guard)> {
    let mut live = lock();
    if HANDLING.load(Ordering::SeqCst) {
        drop(live);
        park_for_good();
    }
    let (made, removal) = make()?;
    Ok((made, push(&mut live, Arc::new(removal))))
}

impl Guard {
    /// Unregisters without running the removal. Returns whether it was still registered (false
    /// when a signal handler already took it).
    pub fn disarm(self) -> bool {
        let taken = take(self.id).is_some();
        std::mem::forget(self);
        taken
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let removal = lock()
            .iter()
            .find(|(id, _)| *id == self.id)
            .map(|(_, r)| r.clone());
        // Run without the lock held: a removal may take seconds (a database on a slow server),
        // and a signal meanwhile must still find every other registration.
        if let Some(removal) = removal {
            removal();
        }
        take(self.id);
    }
}

/// A private directory, removed with everything in it when dropped and on interrupt. Named
/// `<prefix><pid>-<random>`, so that a later run can tell whether its process is gone (a
/// SIGKILL runs no removal: see `process::remove_abandoned_dirs`). Mode 0700 from its
/// creation: it holds copies of the database (snapshots, restored copies) and option files
/// with passwords, which no other user may read, not even for a moment.
pub struct TempDir {
    path: PathBuf,
    _removal: Guard,
}

impl TempDir {
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Self> {
        let named = format!("{prefix}{}-", std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&named);
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let (path, _removal) = make_registered(|| {
            let dir = builder
                .tempdir_in(parent)
                .map_err(|e| Error::output("create a temporary directory in", parent, e))?;
            let path = dir.keep();
            let removed = path.clone();
            Ok((path, move || remove_dir_while_written(&removed)))
        })?;
        Ok(Self { path, _removal })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes `dir` and everything in it. On interrupt the work using it goes on until the
/// process exits, and a file it creates between `remove_dir_all`'s listing and its final
/// `rmdir` fails the removal (not empty): a few more tries catch it.
fn remove_dir_while_written(dir: &Path) {
    for _ in 0..5 {
        if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            return;
        }
    }
}

fn take(id: u64) -> Option<Removal> {
    let mut live = lock();
    let at = live.iter().position(|(i, _)| *i == id)?;
    Some(live.remove(at).1)
}

/// How many removals are registered now (for tests).
pub fn live() -> usize {
    lock().len()
}

fn lock() -> MutexGuard<'static, Vec<(u64, Removal)>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn dropping_removes_and_disarming_keeps() {
        let removed = Arc::new(AtomicUsize::new(0));
        let count = removed.clone();
        let guard = register(move || {
            count.fetch_add(1, Ordering::SeqCst);
        });
        let id = guard.id;
        assert!(lock().iter().any(|(i, _)| *i == id));
        drop(guard);
        assert_eq!(removed.load(Ordering::SeqCst), 1);
        assert!(!lock().iter().any(|(i, _)| *i == id));

        let count = removed.clone();
        let kept = register(move || {
            count.fetch_add(1, Ordering::SeqCst);
        });
        assert!(kept.disarm());
        assert_eq!(removed.load(Ordering::SeqCst), 1);
    }

    /// What the signal handler must never see, a resource made and not registered, cannot be
    /// seen: `make` runs while the registry's lock (the handler's way in) is held.
    #[test]
    fn a_resource_is_made_under_the_registry_lock() {
        let removed = Arc::new(AtomicUsize::new(0));
        let count = removed.clone();
        let (made, guard) = make_registered(|| {
            assert!(
                LIVE.try_lock().is_err(),
                "the handler could take the registry while the resource is made"
            );
            Ok((7, move || {
                count.fetch_add(1, Ordering::SeqCst);
            }))
        })
        .unwrap();
        assert_eq!(made, 7);
        let id = guard.id;
        assert!(lock().iter().any(|(i, _)| *i == id));
        drop(guard);
        assert_eq!(removed.load(Ordering::SeqCst), 1);

        let failed = make_registered::<(), fn()>(|| Err(Error::Internal("no".into())));
        assert!(failed.is_err());
    }

    #[test]
    fn a_temp_dir_is_registered_until_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let dir = TempDir::new_in(parent.path(), ".t-").unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("data"), b"x").unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!(".t-{}-", std::process::id())),
            "{name}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        }
        drop(dir);
        assert!(!path.exists());
    }
}
