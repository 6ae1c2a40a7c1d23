//! Database engines behind one small trait: each takes a consistent snapshot and dumps it, and
//! restores a dump into a throwaway place that the restore test can inspect.
//!
//! Adding an engine means one new module here and one arm in [`open_source`] / [`for_restore`].

pub mod sqlite;

use std::io::{Read, Write};
use std::path::Path;

use crate::archive::Format;
use crate::archive::manifest::{EngineInfo, Snapshot};
use crate::error::{Error, Result};

/// What [`Engine::dump`] took: the engine's version and the snapshot's description, which
/// becomes the manifest's `snapshot`.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub engine: EngineInfo,
    pub snapshot: Snapshot,
}

/// One integrity check the engine ran on a restored copy, with the problems it reported
/// (empty when it passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityCheck {
    pub name: String,
    pub problems: Vec<String>,
}

pub trait Engine {
    /// `sqlite`, `postgres`: the manifest's engine name.
    fn name(&self) -> &'static str;

    /// The database's name as used in backup file names (already safe for a file name).
    fn stem(&self) -> String;

    /// The source for logs and the manifest, never with a password in it.
    fn display_source(&self) -> String;

    /// Takes a consistent snapshot, checks it, writes it in `format` to `out` and describes
    /// exactly what was written. `work_dir` is a private directory for temporary files.
    fn dump(&self, format: Format, out: &mut dyn Write, work_dir: &Path) -> Result<Dumped>;

    /// Restores a dump (already decompressed, streamed from `dump`) into a throwaway place.
    /// Errors reading `dump` are [`Error::Unreadable`]; the engine refusing it is
    /// [`Error::Verify`].
    fn restore_scratch(
        &self,
        format: Format,
        dump: &mut dyn Read,
        work_dir: &Path,
    ) -> Result<Box<dyn Scratch>>;
}

/// A restored copy of a backup. Dropping it removes it.
pub trait Scratch {
    /// The engine's own integrity checks (SQLite: `integrity_check` or `quick_check`, and
    /// `foreign_key_check`).
    fn integrity(&self, quick: bool) -> Result<Vec<IntegrityCheck>>;

    /// Describes the restored data exactly as the manifest describes the source.
    fn describe(&self) -> Result<Snapshot>;

    /// Makes this verified copy the database at `target` (SQLite: a file path), atomically:
    /// `target` ends up either untouched or the complete copy. An existing `target` is refused
    /// unless `overwrite`. `dbbackup restore` restores into a work directory beside `target`,
    /// so for a file this is a rename on one filesystem.
    fn persist(self: Box<Self>, target: &Path, overwrite: bool) -> Result<()>;
}

/// The engine for a backup SOURCE given on the command line: a URL names its engine, anything
/// else is a SQLite path.
pub fn open_source(source: &str) -> Result<Box<dyn Engine>> {
    Ok(Box::new(sqlite::Sqlite::from_source(source)?))
}

/// The engine that restores backups made by the engine called `name` in a manifest.
pub fn for_restore(name: &str) -> Result<Box<dyn Engine>> {
    match name {
        "sqlite" => Ok(Box::new(sqlite::Sqlite::for_restore())),
        other => Err(Error::Usage(format!(
            "backups of engine '{other}' cannot be restored by this dbbackup"
        ))),
    }
}
