//! Database engines behind one small trait: each takes a consistent snapshot and dumps it, and
//! restores a dump into a throwaway place that the restore test can inspect.
//!
//! Adding an engine means one new module here and one arm in [`open_source`] / [`for_restore`].

pub mod postgres;
pub mod sqlite;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

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

    /// The format `backup` writes when `--format` is not given.
    fn default_format(&self) -> Format {
        Format::Native
    }

    /// Takes a consistent snapshot, checks it as deeply as `check` says, writes it in `format`
    /// to `out` and describes exactly what was written. `work_dir` is a private directory for
    /// temporary files.
    fn dump(
        &self,
        format: Format,
        check: SnapshotCheck,
        out: &mut dyn Write,
        work_dir: &Path,
    ) -> Result<Dumped>;

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
    /// The engine's own integrity checks (SQLite: the full check or `quick_check`, and
    /// `foreign_key_check`).
    fn integrity(&self, quick: bool) -> Result<Vec<IntegrityCheck>>;

    /// Describes the restored data exactly as the manifest describes the source.
    fn describe(&self) -> Result<Snapshot>;

    /// What the report should say about how the copy was restored (PostgreSQL: owners were
    /// skipped, amcheck was unavailable).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Makes this verified copy the database at `target` (SQLite: a file path), atomically:
    /// `target` ends up either untouched or the complete copy. An existing `target` is refused
    /// unless `overwrite`. `dbbackup restore` restores into a work directory beside `target`,
    /// so for a file this is a rename on one filesystem.
    fn persist(self: Box<Self>, target: &Path, overwrite: bool) -> Result<()>;
}

/// The engine for a backup SOURCE given on the command line: a URL names its engine, anything
/// else is a SQLite path. `timeout` bounds a PostgreSQL dump; SQLite has its own lock timeout.
/// How deeply a backup checks its snapshot before anything is written under a backup's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotCheck {
    /// The engine's full check (SQLite: `quick_check`, then every index checked against its
    /// table, as `integrity_check` does, by sequential scans).
    Full,
    /// The engine's quick check (SQLite: `quick_check`: every page, b-tree and record, but not
    /// the indexes against their tables), for when a full check follows anyway or the user
    /// asks for speed.
    Quick,
}

pub fn open_source(source: &str, timeout: Option<Duration>) -> Result<Box<dyn Engine>> {
    if postgres::is_postgres_url(source) {
        return Ok(Box::new(postgres::Postgres::from_source(source, timeout)?));
    }
    if timeout.is_some() {
        return Err(Error::Usage(
            "--timeout applies to PostgreSQL sources; a SQLite backup waits at most 30s for locks"
                .into(),
        ));
    }
    Ok(Box::new(sqlite::Sqlite::from_source(source)?))
}

/// SOURCE as it may be shown: a URL's password removed.
pub fn redact_source(source: &str) -> String {
    if postgres::is_postgres_url(source) {
        postgres::conn::redact(source)
    } else {
        source.to_string()
    }
}

/// The engine that restores backups made by the engine called `name` in a manifest.
pub fn for_restore(name: &str) -> Result<Box<dyn Engine>> {
    for_restore_with(name, &postgres::RestoreOptions::default())
}

/// [`for_restore`], with where a PostgreSQL backup is restored (`--restore-into`, the manifest's
/// source server, or the `PG*` variables).
pub fn for_restore_with(name: &str, pg: &postgres::RestoreOptions) -> Result<Box<dyn Engine>> {
    match name {
        "sqlite" => Ok(Box::new(sqlite::Sqlite::for_restore())),
        "postgres" => Ok(Box::new(postgres::Postgres::for_restore(pg)?)),
        other => Err(Error::Usage(format!(
            "backups of engine '{other}' cannot be restored by this dbbackup"
        ))),
    }
}
