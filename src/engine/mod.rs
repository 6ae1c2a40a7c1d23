//! Database engines behind one registry.
//!
//! An engine is one module here and one line in [`ENGINES`]. It declares, through [`Engine`],
//! which sources it takes, how to show one without its secrets, the formats it writes (and
//! their file extensions), how to open a source for a backup ([`Source`]) and how to restore a
//! dump into a throwaway place for the restore test ([`Restorer`], giving a [`Scratch`]).
//! Nothing outside this module names an engine: the pipeline, the restore test, the naming of
//! files and the command line all ask the registry.
//!
//! Scratch resources an engine makes (a scratch database, a directory) register their removal
//! with [`crate::cleanup`], so that Ctrl-C and SIGTERM remove them on every path.

pub mod mysql;
pub mod postgres;
pub mod rowsum;
pub(crate) mod scratch;
pub mod sqlite;
pub mod tool;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::archive::Format;
use crate::archive::manifest::{EngineInfo, Manifest, Snapshot};
use crate::error::{Error, Result};
pub use crate::progress::Total;

/// Every engine, in the order a SOURCE is offered to them: the first whose [`Engine::takes`]
/// says yes opens it, so an engine that takes any path (SQLite) comes last.
pub static ENGINES: &[&dyn Engine] = &[&postgres::ENGINE, &mysql::ENGINE, &sqlite::ENGINE];

/// What an engine is, before any database: the registry's entry.
pub trait Engine: Sync {
    /// `sqlite`, `postgres`: the manifest's engine name.
    fn name(&self) -> &'static str;

    /// Whether this engine backs up SOURCE (a URL scheme it owns, or a file it recognises).
    fn takes(&self, source: &str) -> bool;

    /// SOURCE as it may be shown in logs, errors and manifests: no password, no secret.
    fn redact(&self, source: &str) -> String {
        source.to_string()
    }

    /// The formats this engine writes, the default first, each with the file extension its
    /// archives carry before `.gz`.
    fn formats(&self) -> &'static [(Format, &'static str)];

    /// Opens SOURCE for a backup. Options that do not apply to this engine are refused.
    fn open(&self, source: &str, opts: &SourceOptions) -> Result<Box<dyn Source>>;

    /// What restores this engine's backups for a restore test, and where.
    fn restorer(&self, target: &RestoreTarget) -> Result<Box<dyn Restorer>>;

    /// When `dbbackup restore`'s TARGET names a database on a server this engine restores on,
    /// that server (to restore the copy on before renaming it into place). `None`: TARGET is
    /// not this engine's (a file path is restored beside itself).
    fn restore_server(&self, _target: &str) -> Option<String> {
        None
    }

    /// Refuses a TARGET of `dbbackup restore` (a database on this engine's server) that exists
    /// already, before anything is restored: the refusal must not cost a whole restore.
    fn refuse_existing_target(&self, _target: &str) -> Result<()> {
        Ok(())
    }
}

/// What a backup asks of a source beyond its name.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Give up after this long (engines that cannot bound their dump refuse it).
    pub timeout: Option<Duration>,
    /// Parallel dump workers (`--jobs`; PostgreSQL's directory format only, checked by the
    /// pipeline). `None`: the engine's own way, one worker.
    pub jobs: Option<u32>,
    /// gzip level for `pg_dump`'s own per-file compression in the directory format, whose tar
    /// the pipeline then stores as it is (`Codec::None`): the workers compress while they dump,
    /// and the uncompressed dump never goes to disk. `None`: the files are written
    /// uncompressed and the pipeline's codec compresses the tar (zstd, which PostgreSQL 15's
    /// `pg_dump` cannot write).
    pub dump_gzip_level: Option<u32>,
}

/// Where a restore test restores: the backup's manifest says what it came from, and the user
/// may name a server (`--restore-into`) for engines that restore on one.
#[derive(Debug, Clone, Copy)]
pub struct RestoreTarget<'a> {
    pub manifest: &'a Manifest,
    pub into: Option<&'a str>,
    /// Where to restore when `into` names no server.
    pub otherwise: Fallback,
    /// Parallel restore workers for formats restored in parallel (PostgreSQL's directory
    /// format: `pg_restore -j`); `None` lets the engine choose.
    pub jobs: Option<u32>,
}

/// The server a restore test uses when `--restore-into` names none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fallback {
    /// The server of the manifest's source: where the backup came from.
    #[default]
    Source,
    /// The server the engine's environment names (`PG*`, `MYSQL_*`; localhost by default):
    /// a pull-request check restores into its job's service container and never loads the
    /// production server the backup came from unless asked to.
    Environment,
}

impl RestoreTarget<'_> {
    /// The manifest's source when it may be restored on: recorded, and not ruled out by
    /// [`Fallback::Environment`].
    pub fn source_server(&self) -> Option<&str> {
        Some(self.manifest.source.as_str())
            .filter(|s| !s.is_empty() && self.otherwise == Fallback::Source)
    }
}

/// What [`Source::dump`] took: the engine's version and the snapshot's description, which
/// becomes the manifest's `snapshot`.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub engine: EngineInfo,
    pub snapshot: Snapshot,
}

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

/// A database to back up.
pub trait Source {
    /// The engine that opened it.
    fn engine(&self) -> &'static dyn Engine;

    /// The database's name as used in backup file names (already safe for a file name).
    fn stem(&self) -> String;

    /// The source for logs and the manifest, never with a password in it.
    fn display(&self) -> String;

    /// Takes a consistent snapshot, checks it as deeply as `check` says, writes it in `format`
    /// to `out` and describes exactly what was written. `work_dir` is a private directory for
    /// temporary files. `expect` is told how many bytes the dump will write, exactly or as an
    /// estimate, as soon as the engine knows (for the progress bar; it may never be told).
    fn dump(
        &self,
        format: Format,
        check: SnapshotCheck,
        out: &mut dyn Write,
        work_dir: &Path,
        expect: &dyn Fn(Total),
    ) -> Result<Dumped>;
}

/// Restores dumps of one engine into throwaway places.
pub trait Restorer {
    /// Restores a dump (already decompressed, streamed from the archive) into a throwaway
    /// place under or beside `work_dir`. Errors reading `dump` are [`Error::Unreadable`]; the
    /// engine refusing it is [`Error::Verify`].
    fn restore(
        &self,
        format: Format,
        dump: &mut dyn Read,
        work_dir: &Path,
    ) -> Result<Box<dyn Scratch>>;
}

/// One integrity check the engine ran on a restored copy, with the problems it reported
/// (empty when it passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityCheck {
    pub name: String,
    pub problems: Vec<String>,
}

/// A restored copy of a backup. Dropping it removes it.
pub trait Scratch {
    /// The engine's own integrity checks (SQLite: the full check or `quick_check`). A state
    /// the source may be in without being damaged (SQLite rows that violate foreign keys) is
    /// not checked here but described, so the copy must show exactly the source's.
    fn integrity(&self, quick: bool) -> Result<Vec<IntegrityCheck>>;

    /// Describes the restored data exactly as the manifest describes the source.
    fn describe(&self) -> Result<Snapshot>;

    /// What the report should say about how the copy was restored (PostgreSQL: owners were
    /// skipped, amcheck was unavailable).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Why this copy's schema checksum may differ from the source's although the restore was
    /// faithful, or `None` when it must be equal. PostgreSQL: the copy runs on another major
    /// release, whose deparser may print the same definition differently (the checksum hashes
    /// what `pg_get_viewdef` and its kin print). A difference is then reported, not failed; the
    /// objects, properties and data are still compared.
    fn schema_checksum_may_differ(&self) -> Option<String> {
        None
    }

    /// Makes this verified copy the database at `target` (SQLite: a file path; PostgreSQL: a
    /// `postgres://` URL), atomically: `target` ends up either untouched or the complete copy.
    /// An existing `target` is refused unless `overwrite`. `dbbackup restore` restores into a
    /// work directory beside a file `target`, so for a file this is a rename on one filesystem.
    fn persist(self: Box<Self>, target: &Path, overwrite: bool) -> Result<()>;
}

/// The engine that backs up SOURCE: the first in [`ENGINES`] that takes it.
pub fn for_source(source: &str) -> Result<&'static dyn Engine> {
    ENGINES
        .iter()
        .copied()
        .find(|e| e.takes(source))
        .ok_or_else(|| {
            Error::Usage(format!(
                "no engine takes {}: give a SQLite path (or a sqlite: or file: URL), a \
                 postgres:// or a mysql:// URL",
                match source.split_once("://") {
                    Some((scheme, _)) => format!("{scheme}:// URLs"),
                    None => format!("'{source}'"),
                }
            ))
        })
}

/// Opens SOURCE for a backup with the engine that takes it.
pub fn open_source(source: &str, opts: &SourceOptions) -> Result<Box<dyn Source>> {
    for_source(source)?.open(source, opts)
}

/// SOURCE as it may be shown, by the engine that takes it.
pub fn redact(source: &str) -> String {
    match ENGINES.iter().find(|e| e.takes(source)) {
        Some(engine) => engine.redact(source),
        // A URL of a scheme no engine takes may carry a password all the same.
        None => crate::util::redact_url(source),
    }
}

/// The engine called `name` in a manifest.
pub fn named(name: &str) -> Result<&'static dyn Engine> {
    ENGINES
        .iter()
        .copied()
        .find(|e| e.name() == name)
        .ok_or_else(|| {
            Error::Usage(format!(
                "backups of engine '{name}' cannot be restored by this dbbackup"
            ))
        })
}

/// The restorer for a backup, from its manifest's engine.
pub fn restorer(target: &RestoreTarget) -> Result<Box<dyn Restorer>> {
    named(&target.manifest.engine.name)?.restorer(target)
}

/// Refuses an existing database as `dbbackup restore`'s TARGET (without `--force`), asking
/// its server before anything is restored. A file TARGET is checked where it is restored.
pub fn refuse_existing_target(target: &str) -> Result<()> {
    match ENGINES.iter().find(|e| e.restore_server(target).is_some()) {
        Some(engine) => engine.refuse_existing_target(target),
        None => Ok(()),
    }
}

/// The server `dbbackup restore` restores TARGET on, when TARGET names a database on one.
pub fn restore_server(target: &str) -> Option<String> {
    ENGINES.iter().find_map(|e| e.restore_server(target))
}

/// The format a backup of `engine` is written in: `asked`, which the engine must write, or its
/// default.
pub fn format_for(engine: &dyn Engine, asked: Option<Format>) -> Result<Format> {
    let formats = engine.formats();
    match asked {
        None => Ok(formats[0].0),
        Some(f) if formats.iter().any(|(g, _)| *g == f) => Ok(f),
        Some(f) => {
            let offered: Vec<String> = formats.iter().map(|(g, _)| g.to_string()).collect();
            Err(Error::Usage(format!(
                "--format {f} is not written for {} backups: use {}",
                engine.name(),
                offered.join(" or ")
            )))
        }
    }
}

/// The extension of an archive of `engine` in `format` (before `.gz`).
pub fn extension(engine: &dyn Engine, format: Format) -> Result<&'static str> {
    engine
        .formats()
        .iter()
        .find(|(f, _)| *f == format)
        .map(|(_, ext)| *ext)
        .ok_or_else(|| {
            Error::Usage(format!(
                "a {} backup is never in {format} format",
                engine.name()
            ))
        })
}

/// Whether `ext` is the extension of some engine's archives: a file named like a backup with
/// any other extension was not written by dbbackup, and rotation never touches it.
pub fn is_archive_extension(ext: &str) -> bool {
    ENGINES
        .iter()
        .any(|e| e.formats().iter().any(|(_, x)| *x == ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_routes_sources_names_and_formats() {
        assert_eq!(for_source("postgres://u@h/db").unwrap().name(), "postgres");
        assert_eq!(for_source("postgresql://h/db").unwrap().name(), "postgres");
        assert_eq!(for_source("mysql://u@h/db").unwrap().name(), "mysql");
        assert_eq!(for_source("mariadb://h/db").unwrap().name(), "mysql");
        assert_eq!(for_source("app.db").unwrap().name(), "sqlite");
        assert_eq!(for_source("sqlite:///x/app.db").unwrap().name(), "sqlite");
        assert_eq!(named("postgres").unwrap().name(), "postgres");
        assert!(named("oracle").is_err());
        assert_eq!(
            redact("postgres://u:hunter2@h/db"),
            "postgres://u@h/db",
            "the password is never shown"
        );
        let sqlite = named("sqlite").unwrap();
        assert_eq!(format_for(sqlite, None).unwrap(), Format::Native);
        assert!(format_for(sqlite, Some(Format::Custom)).is_err());
        assert_eq!(extension(sqlite, Format::Native).unwrap(), "sqlite");
        let pg = named("postgres").unwrap();
        assert_eq!(format_for(pg, None).unwrap(), Format::Sql);
        assert_eq!(extension(pg, Format::Custom).unwrap(), "dump");
        assert_eq!(extension(pg, Format::Directory).unwrap(), "tar");
        assert!(format_for(sqlite, Some(Format::Directory)).is_err());
        assert!(format_for(pg, Some(Format::Native)).is_err());
        for ext in ["sqlite", "sql", "dump", "tar"] {
            assert!(is_archive_extension(ext), "{ext}");
        }
        assert!(!is_archive_extension("txt"));
        let names: Vec<&str> = ENGINES.iter().map(|e| e.name()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique, "engine names are unique");
    }
}
