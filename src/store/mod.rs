//! Where backups are kept, behind one trait so that rotation is the same rule everywhere.

pub mod artifacts;
pub mod local;

use crate::error::{Error, Result};
use crate::retention;

/// A backup as a store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// What identifies it in the store (a file name, an artifact id).
    pub id: String,
    /// Its name as a user sees it.
    pub name: String,
}

pub trait Store {
    /// Every backup of the database called `stem`, newest first; nothing of any other name.
    fn list(&self, stem: &str) -> Result<Vec<StoredBackup>>;

    /// Deletes one backup (with everything that belongs to it).
    fn delete(&self, backup: &StoredBackup) -> Result<()>;
}

/// What a prune did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: Vec<StoredBackup>,
    /// Those past the keep count that a dry run left alone.
    pub would_delete: Vec<StoredBackup>,
}

/// Deletes the backups of `stem` past the newest `keep`, never `protect` (the one just made).
/// A failed delete does not stop the others; the error then names every one that failed.
pub fn prune(
    store: &dyn Store,
    stem: &str,
    keep: usize,
    protect: Option<&str>,
    dry_run: bool,
) -> Result<Pruned> {
    let keep = retention::validate_keep(keep).map_err(Error::Usage)?;
    let listed = store.list(stem)?;
    let doomed: Vec<StoredBackup> = retention::past_keep(listed, keep)
        .into_iter()
        .filter(|b| Some(b.id.as_str()) != protect)
        .collect();
    if dry_run {
        return Ok(Pruned {
            deleted: Vec::new(),
            would_delete: doomed,
        });
    }
    let mut pruned = Pruned::default();
    let mut failed = Vec::new();
    for backup in doomed {
        match store.delete(&backup) {
            Ok(()) => pruned.deleted.push(backup),
            Err(e) => failed.push((backup.name, e)),
        }
    }
    if failed.is_empty() {
        Ok(pruned)
    } else {
        Err(Error::Prune {
            deleted: pruned.deleted.len(),
            failed,
        })
    }
}
