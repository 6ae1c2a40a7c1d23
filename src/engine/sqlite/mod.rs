//! SQLite: snapshots through the online backup API, dumps as the database file or SQL text.
//!
//! Why the backup API and not `VACUUM INTO`: both give a consistent snapshot, but `VACUUM INTO`
//! rebuilds the database, which renumbers the rowids of tables without an INTEGER PRIMARY KEY
//! and so is not a faithful copy. The backup API copies pages as they are. It only restarts
//! when the source changes *between* steps, so we copy in a single step (`step(-1)`): the whole
//! copy happens inside one read transaction and can never restart, however busy the writers.
//! In WAL mode writers carry on meanwhile; in rollback-journal mode they wait for the read lock
//! (their own busy timeout), which is the price of a consistent copy in that mode.

pub mod describe;
pub mod dump;
mod foreign_keys;
mod index_check;
pub mod script;
mod sql;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use tracing::debug;

use super::{
    Dumped, Engine, IntegrityCheck, RestoreTarget, Restorer, Scratch, SnapshotCheck, Source,
    SourceOptions, Total,
};
use crate::archive::Format;
use crate::archive::manifest::{EngineInfo, Snapshot};
use crate::archive::naming::sanitize_stem;
use crate::error::{Error, Result};

/// How long a backup waits for a lock held by a writer before it gives up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The registry's entry for SQLite.
pub struct SqliteEngine;

pub static ENGINE: SqliteEngine = SqliteEngine;

impl Engine for SqliteEngine {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// A `sqlite:` URL, or a path: anything that is not a URL of some other scheme, which
    /// another engine (or none) takes.
    fn takes(&self, source: &str) -> bool {
        source.starts_with("sqlite:") || source.starts_with("file:") || !has_url_scheme(source)
    }

    /// The database file itself first: restoring it is a copy, and it keeps every page as the
    /// source had it.
    fn formats(&self) -> &'static [(Format, &'static str)] {
        &[(Format::Native, "sqlite"), (Format::Sql, "sql")]
    }

    fn open(&self, source: &str, opts: &SourceOptions) -> Result<Box<dyn Source>> {
        if opts.timeout.is_some() {
            return Err(Error::Usage(
                "--timeout applies to PostgreSQL sources; a SQLite backup waits at most 30s for locks"
                    .into(),
            ));
        }
        Ok(Box::new(Sqlite::from_source(source)?))
    }

    /// A SQLite backup restores into the restore test's private directory; there is no server
    /// to choose.
    fn restorer(&self, target: &RestoreTarget) -> Result<Box<dyn Restorer>> {
        let tables = describe::Tables::of(&target.manifest.snapshot.checksum_algorithm);
        Ok(Box::new(SqliteRestorer { tables }))
    }
}

/// `scheme://...` with a scheme as URLs spell them (letters, digits, `+`, `-`, `.`).
fn has_url_scheme(source: &str) -> bool {
    source.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// A SQLite database file to back up.
pub struct Sqlite {
    path: PathBuf,
    /// `?immutable=1`: SQLite reads the file as it is, without locks, a `-shm` file or the WAL
    /// (a WAL database on a read-only filesystem opens no other way).
    immutable: bool,
}

/// Restores SQLite backups into the restore test's private directory, and describes the copy
/// as the backup's manifest describes the source.
pub struct SqliteRestorer {
    pub tables: describe::Tables,
}

impl Sqlite {
    /// SOURCE is a path, a `sqlite:` URL (`sqlite:app.db`, `sqlite://app.db`,
    /// `sqlite:///abs/app.db`) or a `file:` URI; see [`parse_source`] for its parameters.
    pub fn from_source(source: &str) -> Result<Self> {
        let (path, immutable) = parse_source(source)?;
        if path.as_os_str().is_empty() {
            return Err(Error::Usage(format!(
                "'{source}' names no database file: give a path such as app.db or sqlite:app.db"
            )));
        }
        // Checked here, before the backup directory is created for a backup that cannot be.
        if path.is_dir() {
            return Err(Error::source_db(
                path.display(),
                "is a directory, not a database file: give the database file's path (SOURCE \
                 comes first, then DIR)",
            ));
        }
        if !path.exists() {
            return Err(Error::source_db(
                path.display(),
                "no such file (check the path; dbbackup never creates the source)",
            ));
        }
        Ok(Self { path, immutable })
    }

    /// The source, read-only: a backup never writes to it.
    fn open_source(&self) -> Result<Connection> {
        let path = self.path.as_path();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = match self.immutable {
            true => {
                Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
            }
            false => Connection::open_with_flags(path, flags),
        };
        opened.map_err(|e| self.open_error(e))
    }

    /// An error opening or first reading the source, with what to do about a WAL database on a
    /// read-only filesystem (its missing `-shm` file).
    fn open_error(&self, e: rusqlite::Error) -> Error {
        let path = self.path.as_path();
        let shown = path.display();
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen) if !self.immutable && is_wal(path) => {
                Error::source_db(
                    &shown,
                    format!(
                        "cannot open ({e}): a WAL database is read through its -shm file, which \
                         is missing and cannot be made here (a read-only directory or \
                         filesystem). If nothing writes to it, back it up as it is on disk \
                         with sqlite:{}?immutable=1 (what is still only in its -wal file is \
                         then left out); else give dbbackup a writable copy of the directory",
                        path.display()
                    ),
                )
            }
            _ => source_error(&shown, e),
        }
    }

    /// A writer crashed mid-transaction and left a hot journal: the file holds some of its
    /// uncommitted pages, and only rolling the journal back gives the last committed state.
    /// SQLite does that on the next read by a connection that may write, which a read-only
    /// one may not; `sqlite3` and every application opening the database do it. So does this,
    /// once, and says so: the database is then exactly as its last committed transaction left
    /// it, which is what any reader would see.
    fn roll_back_hot_journal(&self) -> Result<()> {
        let shown = self.path.display();
        tracing::warn!(
            "{shown} has a hot journal (a writer crashed mid-transaction): rolling it back, as \
             SQLite does on the next open, to read the last committed state"
        );
        let rw = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| source_error(&shown, e))?;
        rw.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(|e| {
                Error::source_db(
                    &shown,
                    format!(
                        "it has a hot journal (a writer crashed mid-transaction) that must be \
                         rolled back before it can be read, and rolling it back failed ({e}): \
                         open it once with write access (e.g. `sqlite3 {shown} 'PRAGMA \
                         quick_check'`) and retry"
                    ),
                )
            })
    }

    /// Copies the source into `dest` in one backup step, so the copy is one consistent snapshot.
    fn snapshot_to(&self, dest: &Path) -> Result<()> {
        let path = self.path.as_path();
        let shown = path.display();
        if !path.is_file() {
            return Err(Error::source_db(
                shown,
                "no such file (check the path; dbbackup never creates the source)",
            ));
        }
        let mut rolled_back = false;
        let src = loop {
            let src = self.open_source()?;
            match src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
                Err(e) if is_hot_journal(&e) && !rolled_back => {
                    drop(src);
                    self.roll_back_hot_journal()?;
                    rolled_back = true;
                }
                _ => break src,
            }
        };
        // No busy handler: SQLite's own backs off up to 100 ms per try, and under a writer that
        // commits continuously in rollback-journal mode it keeps missing the short gaps between
        // commits. Polling every millisecond (below) catches them.
        // (rusqlite installs a 5 s busy timeout on every connection: turn it off.)
        src.busy_handler(None)
            .map_err(|e| source_error(&shown, e))?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        // Reading the schema makes SQLite look at the header: "not a database" shows up here.
        loop {
            match src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
                Err(e) if is_busy(&e) && Instant::now() < deadline => wait_for_lock(),
                other => break other.map_err(|e| self.open_error(e))?,
            }
        }
        let create_error = |e: rusqlite::Error| {
            Error::output(
                "create snapshot",
                dest,
                std::io::Error::other(e.to_string()),
            )
        };
        // 0600 like every copy of the data (SQLite would create it 0644).
        crate::util::create_private(dest).map_err(|e| Error::output("create snapshot", dest, e))?;
        let mut dst = Connection::open(dest).map_err(create_error)?;
        // The snapshot is a private temporary file: a crash discards it, and the archive made
        // from it is fsynced on its own, so SQLite's journal and fsync on the copy would buy
        // nothing and cost most of the snapshot's time (BENCHMARKS.md, "Design decisions").
        dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .map_err(create_error)?;
        let backup = Backup::new(&src, &mut dst).map_err(|e| source_error(&shown, e))?;
        loop {
            let step = backup.step(-1).map_err(|e| match write_failure(&e) {
                Some(io) => Error::output("write snapshot", dest, io),
                None => source_error(&shown, e),
            })?;
            match step {
                StepResult::Done => return Ok(()),
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                    wait_for_lock()
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(Error::source_db(
                        shown,
                        format!(
                            "database stayed locked for {}s: a writer holds it; retry when it is idle",
                            LOCK_TIMEOUT.as_secs()
                        ),
                    ));
                }
                _ => continue,
            }
        }
    }
}

impl Source for Sqlite {
    fn engine(&self) -> &'static dyn Engine {
        &ENGINE
    }

    fn stem(&self) -> String {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        sanitize_stem(&stem)
    }

    fn display(&self) -> String {
        self.path.display().to_string()
    }

    /// Verification (the integrity check, and the counts and checksums for the manifest, each
    /// on its own connection) runs alongside the dump, so both cores work; the caller commits
    /// nothing until it returns, and a failed verification wins over anything the dump wrote.
    fn dump(
        &self,
        format: Format,
        check: SnapshotCheck,
        out: &mut dyn Write,
        work_dir: &Path,
        expect: &dyn Fn(Total),
    ) -> Result<Dumped> {
        super::extension(&ENGINE, format)?;
        let snap_path = work_dir.join("snapshot.sqlite");
        let began = Instant::now();
        self.snapshot_to(&snap_path)?;
        debug!("snapshot taken in {:.2}s", began.elapsed().as_secs_f64());
        // The native dump is the snapshot file itself; SQL text is usually larger than the
        // pages it comes from (or smaller, with free pages), so their size is an estimate.
        if let Ok(meta) = std::fs::metadata(&snap_path) {
            expect(match format {
                Format::Native => Total::exactly(meta.len()),
                _ => Total::about(meta.len()),
            });
        }
        let object = format!("snapshot of {}", self.display());
        let snapshot = std::thread::scope(|scope| {
            let verifier = scope.spawn(|| verify_snapshot(&snap_path, check, &object));
            let began = Instant::now();
            let written = write_dump(format, &snap_path, out);
            debug!("dump written in {:.2}s", began.elapsed().as_secs_f64());
            let verified = verifier
                .join()
                .map_err(|_| Error::Internal("the verification thread panicked".into()))?;
            let snapshot = verified?;
            written.map(|()| snapshot)
        })?;
        Ok(Dumped {
            engine: EngineInfo {
                name: "sqlite".into(),
                version: rusqlite::version().to_string(),
                dump_tool: None,
                dump_tool_path: None,
            },
            snapshot,
        })
    }
}

impl Restorer for SqliteRestorer {
    fn restore(
        &self,
        format: Format,
        dump: &mut dyn Read,
        work_dir: &Path,
    ) -> Result<Box<dyn Scratch>> {
        let path = work_dir.join("restored.sqlite");
        match format {
            Format::Native => {
                let mut file = crate::util::create_private(&path)
                    .map_err(|e| Error::output("create scratch database", &path, e))?;
                copy_dump(dump, &mut file, &path)?;
                file.sync_all()
                    .map_err(|e| Error::output("write scratch database", &path, e))?;
            }
            Format::Sql => {
                // SQLite would create it 0644; an existing file keeps its mode.
                crate::util::create_private(&path)
                    .map_err(|e| Error::output("create scratch database", &path, e))?;
                let conn = Connection::open(&path)
                    .map_err(|e| Error::output("create scratch database", &path, io_error(e)))?;
                script::run(&conn, dump)?;
            }
            Format::Custom | Format::Directory => {
                return Err(Error::Usage(format!(
                    "a SQLite backup cannot be in {format} format"
                )));
            }
        }
        let conn = open_copy(&path, "restored database")?;
        // One connection makes the checks of a restore test in turn, and they read the same
        // pages again: a cache keeps them (BENCHMARKS.md, "Design decisions"). 8 MiB, not the
        // 16 it had before the description moved to a second connection beside the integrity
        // check: with both, 16 took a 2 GB restore test past its 64 MiB bound (65.9 MiB).
        conn.pragma_update(None, "cache_size", -8192)
            .map_err(|e| verify_error("restored database", e))?;
        Ok(Box::new(SqliteScratch {
            conn,
            path,
            tables: self.tables,
            described: std::cell::RefCell::new(None),
        }))
    }
}

/// The integrity check and the manifest's description of a snapshot, each on its own
/// connection and thread: run one after the other they were the backup's critical path
/// while the compressors waited for a core.
fn verify_snapshot(path: &Path, check: SnapshotCheck, object: &str) -> Result<Snapshot> {
    std::thread::scope(|scope| {
        let integrity = scope.spawn(|| {
            let began = Instant::now();
            let conn = open_copy(path, "snapshot")?;
            let checked = check_integrity(&conn, check == SnapshotCheck::Quick, object);
            debug!("integrity checked in {:.2}s", began.elapsed().as_secs_f64());
            checked
        });
        let began = Instant::now();
        let described = open_copy(path, "snapshot")
            .and_then(|conn| describe::describe(&conn).map_err(|e| verify_error(object, e)));
        debug!(
            "snapshot described in {:.2}s",
            began.elapsed().as_secs_f64()
        );
        let checked = integrity
            .join()
            .map_err(|_| Error::Internal("the integrity check thread panicked".into()))?;
        // A corrupt snapshot is reported as such, whatever describing it ran into.
        checked.map_err(|e| naming_collation_users(path, e))?;
        described.map_err(|e| naming_collation_users(path, e))
    })
}

/// SQLite's "no such collation sequence: X" names no object: the tables and indexes whose
/// definition uses collation X are named (an application-defined collation that only the
/// program that made the database has, so SQLite cannot check their order without it).
fn naming_collation_users(path: &Path, err: Error) -> Error {
    let Error::Verify { object, reason } = &err else {
        return err;
    };
    let Some(name) = reason
        .split("no such collation sequence: ")
        .nth(1)
        .and_then(|rest| rest.split([' ', ')', ':', ',']).next())
        .map(str::to_lowercase)
    else {
        return err;
    };
    let users = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|conn| {
            let mut stmt = conn.prepare(
                "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, _, sql)| uses_collation(sql, &name))
        .map(|(kind, object, _)| format!("{kind} {object:?}"))
        .collect::<Vec<_>>();
    if users.is_empty() {
        return err;
    }
    Error::Verify {
        object: object.clone(),
        reason: format!(
            "{reason}: used by {}; the application that made the database defines that \
             collation, and without it SQLite can neither check nor compare their order, so \
             dbbackup cannot verify this database",
            users.join(", ")
        ),
    }
}

/// Whether SQL text uses `COLLATE name` (any case, the name bare or quoted).
fn uses_collation(sql: &str, name: &str) -> bool {
    let lower = sql.to_lowercase();
    lower.match_indices("collate").any(|(at, word)| {
        let rest = lower[at + word.len()..].trim_start();
        let rest = rest.trim_start_matches(['"', '`', '[', '\'']);
        rest.strip_prefix(name)
            .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    })
}

/// Writes the snapshot to `out` as the database file itself or as SQL text.
fn write_dump(format: Format, snapshot: &Path, out: &mut dyn Write) -> Result<()> {
    if format == Format::Sql {
        let conn = open_copy(snapshot, "snapshot")?;
        return dump::write_sql(&conn, out);
    }
    let mut file =
        std::fs::File::open(snapshot).map_err(|e| Error::output("read snapshot", snapshot, e))?;
    // 64 KiB reads, not `io::copy`'s 8 KiB: a 200 MB snapshot is 25,600 fewer syscalls, on
    // the cores the checks and the compressor share. Each side's failure is named as its own.
    match crate::util::copy_telling_sides(&mut file, out) {
        Ok(_) => Ok(()),
        Err(crate::util::CopyError::Read(e)) => Err(Error::output("read snapshot", snapshot, e)),
        Err(crate::util::CopyError::Write(e)) => Err(Error::output("write backup", snapshot, e)),
    }
}

/// A restored SQLite database in the restore test's private directory.
pub struct SqliteScratch {
    conn: Connection,
    path: PathBuf,
    tables: describe::Tables,
    /// The description, made on a second connection and thread while `integrity` runs: the
    /// checks are CPU-bound in SQLite and read the file in sequence, so on two cores the
    /// description costs next to nothing (issue 19). `describe` hands it out.
    described: std::cell::RefCell<Option<Result<Snapshot>>>,
}

fn describe_restored(conn: &Connection, tables: describe::Tables) -> Result<Snapshot> {
    describe::describe_as(conn, tables).map_err(|e| verify_error("restored database", e))
}

impl Scratch for SqliteScratch {
    fn integrity(&self, quick: bool) -> Result<Vec<IntegrityCheck>> {
        let object = "restored database";
        let name = if quick {
            "quick_check"
        } else {
            "integrity_check"
        };
        let (problems, described) = std::thread::scope(|scope| {
            let (path, tables) = (&self.path, self.tables);
            let describing =
                scope.spawn(move || describe_restored(&open_copy(path, object)?, tables));
            let problems = integrity_problems(&self.conn, quick);
            let described = describing
                .join()
                .map_err(|_| Error::Internal("the describing thread panicked".into()))?;
            Ok::<_, Error>((problems, described))
        })?;
        *self.described.borrow_mut() = Some(described);
        let problems = problems.map_err(|e| verify_error(object, e))?;
        // Foreign keys are not here: SQLite does not enforce them unless asked, so rows that
        // violate them are the source's state, not damage. The description records that state
        // (`foreign_keys::state`) and the schema check compares it with the source's.
        Ok(vec![IntegrityCheck {
            name: name.into(),
            problems,
        }])
    }

    fn describe(&self) -> Result<Snapshot> {
        match self.described.borrow_mut().take() {
            Some(described) => described,
            None => describe_restored(&self.conn, self.tables),
        }
    }

    /// A leftover `-wal` or `-journal` beside `target` would be replayed into the new file on
    /// its next open and corrupt it, so its presence refuses the move, even with `overwrite`.
    /// Without `overwrite` the file is hard-linked to `target`, which fails if `target` exists
    /// even when it appeared a moment ago.
    fn persist(self: Box<Self>, target: &Path, overwrite: bool) -> Result<()> {
        let SqliteScratch { conn, path, .. } = *self;
        conn.close()
            .map_err(|(_, e)| Error::output("close the restored database", &path, io_error(e)))?;
        for suffix in ["-wal", "-journal"] {
            let mut side = target.as_os_str().to_owned();
            side.push(suffix);
            if Path::new(&side).exists() {
                return Err(Error::Usage(format!(
                    "{} exists: the database at {} is open or was not closed cleanly; close \
                     it (or remove that file if nothing uses it) and retry",
                    Path::new(&side).display(),
                    target.display()
                )));
            }
        }
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::output("sync restored database", &path, e))?;
        if overwrite {
            std::fs::rename(&path, target)
                .map_err(|e| Error::output("move the restored database to", target, e))?;
        } else {
            std::fs::hard_link(&path, target).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                    "{} already exists: pass --force to replace it",
                    target.display()
                )),
                _ => Error::output("move the restored database to", target, e),
            })?;
        }
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
        crate::util::sync_dir(dir.unwrap_or(Path::new(".")))
    }
}

/// Strips a `sqlite:` scheme and any query string.
/// The database file a SOURCE names: a path, a `sqlite:` URL (`sqlite:app.db`,
/// `sqlite:///abs/app.db`) or a SQLite `file:` URI (`file:app.db?mode=ro`,
/// `file:///abs/app.db`, percent-decoded as SQLite decodes it), and whether it is read
/// `immutable`. The query parameters taken are `mode=ro`, which is how dbbackup opens every
/// source anyway, and `immutable=1`; any other is refused rather than ignored.
fn parse_source(source: &str) -> Result<(PathBuf, bool)> {
    let (rest, uri) = match (source.strip_prefix("sqlite:"), source.strip_prefix("file:")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return Ok((PathBuf::from(source), false)),
    };
    let rest = match uri {
        true => rest.split_once('#').map_or(rest, |(p, _)| p),
        false => rest,
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut immutable = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "mode=ro" | "immutable=0" => {}
            "immutable=1" => immutable = true,
            _ => {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                return Err(Error::Usage(format!(
                    "{source}: unknown or unsupported parameter '{key}' (dbbackup takes \
                     mode=ro, which it does anyway, and immutable=1)"
                )));
            }
        }
    }
    let path = match path.strip_prefix("//") {
        // `file://localhost/abs` and `file:///abs`; another host is not a local file.
        Some(after) if uri => match after.split_once('/') {
            Some(("" | "localhost", abs)) => format!("/{abs}"),
            _ => {
                return Err(Error::Usage(format!(
                    "{source}: a file: URI names a file on this machine: file:///abs/path or \
                     file:relative/path"
                )));
            }
        },
        Some(after) => after.to_string(),
        None => path.to_string(),
    };
    if !uri {
        return Ok((PathBuf::from(path), immutable));
    }
    use std::os::unix::ffi::OsStringExt;
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&path).collect();
    Ok((
        PathBuf::from(std::ffi::OsString::from_vec(bytes)),
        immutable,
    ))
}

/// `file:PATH?immutable=1`, PATH percent-encoded where a URI would misread it.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    const SPECIAL: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b'%')
        .add(b'?')
        .add(b'#')
        .add(b' ');
    let encoded = percent_encoding::percent_encode(path.as_os_str().as_bytes(), SPECIAL);
    format!("file:{encoded}?immutable=1")
}

/// Whether the file is a database in WAL mode (header bytes 18 and 19 are 2).
fn is_wal(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2 && header[19] == 2)
}

/// Opens a copy we made ourselves (snapshot or restored database).
fn open_copy(path: &Path, what: &str) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| Error::output("open", path, io_error(e)))?;
    // Every check reads pages in sequence (quick_check, the index scans, the description), so
    // SQLite's default cache of about 2 MB is enough for a backup's two connections, and a
    // larger one would only raise the memory bound (BENCHMARKS.md, "Design decisions"). The
    // one pass that seeks, the foreign-key check, raises it for itself (`foreign_keys`).
    // Any read error on a copy we just wrote means the copy itself is damaged.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| verify_error(what, e))?;
    Ok(conn)
}

/// Refuses a snapshot that fails SQLite's own integrity check, before anything is written.
fn check_integrity(conn: &Connection, quick: bool, object: &str) -> Result<()> {
    let problems = integrity_problems(conn, quick).map_err(|e| verify_error(object, e))?;
    if problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
    Err(Error::Verify {
        object: object.to_string(),
        reason: format!(
            "integrity_check reports the source is corrupt: {} (repair the source, e.g. with \
             sqlite3's .recover, before backing it up)",
            shown.join("; ")
        ),
    })
}

/// `quick_check`, then unless `quick` the index checks that make it as strong as
/// `integrity_check` in linear time (see [`index_check`]). Empty when all is well.
fn integrity_problems(conn: &Connection, quick: bool) -> rusqlite::Result<Vec<String>> {
    let began = Instant::now();
    let mut problems = collect_strings(conn, "PRAGMA quick_check")?;
    problems.retain(|line| line != "ok");
    debug!("quick_check ran {:.2}s", began.elapsed().as_secs_f64());
    // Index scans over damaged b-trees would only report the same damage again, worse.
    if !quick && problems.is_empty() {
        problems = index_check::check(conn)?;
    }
    Ok(problems)
}

fn collect_strings(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// `SQLITE_READONLY_ROLLBACK`: a read-only connection met a hot journal it may not roll back.
fn is_hot_journal(err: &rusqlite::Error) -> bool {
    err.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

fn is_busy(err: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn wait_for_lock() {
    std::thread::sleep(Duration::from_micros(100));
}

/// Copies a native dump into the scratch file, telling the dump that cannot be read (the
/// backup's fault) from the file that cannot be written (this machine's: a full `TMPDIR` must
/// never make a good backup look damaged).
fn copy_dump(dump: &mut dyn Read, file: &mut std::fs::File, path: &Path) -> Result<()> {
    use crate::util::{CopyError, copy_telling_sides};
    match copy_telling_sides(dump, file) {
        Ok(_) => Ok(()),
        Err(CopyError::Read(e)) => Err(read_error(path, e)),
        Err(CopyError::Write(e)) => Err(Error::output("write scratch database", path, e)),
    }
}

/// SQLite's errors that are this machine's failure to write (a full disk, a read-only or
/// failing one), not something wrong with the database: as the I/O error they stand for. The
/// snapshot's backup step fails on either side; these codes are the destination's (our
/// output). SQLite does not keep the OS error of a write, so the likely causes are named.
pub(super) fn write_failure(err: &rusqlite::Error) -> Option<std::io::Error> {
    use rusqlite::ErrorCode;
    let sqlite = err.sqlite_error()?;
    match sqlite.code {
        ErrorCode::DiskFull => Some(std::io::ErrorKind::StorageFull.into()),
        ErrorCode::ReadOnly => Some(std::io::ErrorKind::ReadOnlyFilesystem.into()),
        ErrorCode::SystemIoFailure if sqlite.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE => {
            Some(std::io::Error::other(
                "disk I/O error writing it: the file may exceed the file size limit \
                 (`ulimit -f`), or the disk is failing",
            ))
        }
        _ => None,
    }
}

/// Maps SQLite's errors on the source to messages that say what to do.
fn source_error(path: &dyn std::fmt::Display, err: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    let reason = match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            "not a SQLite database (wrong file, or encrypted)".to_string()
        }
        Some(ErrorCode::DatabaseCorrupt) => {
            format!("database is corrupt ({err}): repair it, e.g. with sqlite3's .recover")
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => format!(
            "database stayed locked for {}s: a writer holds it; retry when it is idle",
            LOCK_TIMEOUT.as_secs()
        ),
        Some(ErrorCode::CannotOpen) => {
            format!("cannot open ({err}): check the path and permissions")
        }
        Some(ErrorCode::PermissionDenied) => format!("permission denied ({err})"),
        _ => err.to_string(),
    };
    Error::source_db(path, reason)
}

/// A check on a copy we made failed: the copy is damaged, unless it was this machine that
/// could not write (SQLite's temporary files for sorting go to `TMPDIR`).
fn verify_error(object: &str, err: rusqlite::Error) -> Error {
    if let Some(io) = write_failure(&err) {
        return Error::output("check", PathBuf::from(object), io);
    }
    Error::Verify {
        object: object.to_string(),
        reason: err.to_string(),
    }
}

/// SQLite's error on a file of ours, as the I/O error it stands for (the message keeps what
/// SQLite said).
fn io_error(err: rusqlite::Error) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

fn read_error(path: &Path, err: std::io::Error) -> Error {
    Error::unreadable(path, format!("reading the dump failed: {err}"))
}
