//! PostgreSQL: `pg_dump` for the dump, our own connection for the manifest, both reading one
//! snapshot.
//!
//! Our connection opens a `REPEATABLE READ READ ONLY` transaction and exports its snapshot;
//! `pg_dump --snapshot` reads exactly that snapshot while we describe it, concurrently, so the
//! manifest describes exactly the rows the dump holds however busy the writers are. The
//! transaction stays open until `pg_dump` has finished. In the plain and directory formats
//! (UTF8 databases) the tables' counts and checksums come from the dump's own `COPY` text: the
//! plain stream as it passes ([`copysum`]), the directory's data files as they are written
//! ([`dirsum`]); otherwise the server computes them in the snapshot ([`describe`]).
//!
//! Our connection uses the synchronous `postgres` crate: the work is a handful of sequential
//! queries next to one subprocess, so an async runtime in our own code would add nothing, and
//! rust-postgres speaks the protocol itself (no libpq to link).
//!
//! Restore tests restore into a scratch database with a unique name on a target server and
//! drop it again (`WITH (FORCE)`) when the scratch is dropped, on failure as well.

pub(crate) mod clients;
pub mod conn;
pub mod copysum;
pub mod describe;
mod directory;
mod dirsum;
pub(crate) mod tls;
mod toc;
pub(crate) mod version;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use clients::Client;
use postgres::IsolationLevel;
use postgres::error::SqlState;
use std::cell::RefCell;
use tracing::{debug, info, warn};

use super::scratch;
use super::tool::{Finished, Running};
use super::{
    Dumped, Engine, IntegrityCheck, RestoreTarget, Restorer, Scratch, SnapshotCheck, Source,
    SourceOptions, Total,
};
use crate::archive::Format;
use crate::archive::manifest::{EngineInfo, Snapshot};
use crate::archive::naming::sanitize_stem;
use crate::cleanup;
use crate::error::{Error, Result};
use crate::util::{self, CopyError};
use conn::{ConnInfo, db_message};
use describe::{quote_ident, quote_literal};
use version::{PG_DUMP, PG_RESTORE, PSQL};

pub use conn::is_postgres_url;

/// The maintenance database we connect to when creating and dropping scratch databases.
const MAINTENANCE_DB: &str = "postgres";

/// The server's `server_version` (text) and `server_version_num`.
const VERSION_SQL: &str =
    "SELECT current_setting('server_version'), current_setting('server_version_num')::int";

/// The version of the server SOURCE names, asked over a connection of its own: what the
/// Action's `postgres-client: auto` needs before dumping, to install a client that can dump it.
pub fn server_version(source: &str, timeout: Option<Duration>) -> Result<(String, u32)> {
    let conn = ConnInfo::parse(source)?;
    let mut client = conn.connect(timeout)?;
    let row = client
        .query_one(VERSION_SQL, &[])
        .map_err(|e| conn.error(db_message(&e)))?;
    let (version, num): (String, i32) = (row.get(0), row.get(1));
    Ok((version, num as u32))
}

/// The `pg_dump` dbbackup runs for a server of major `major` (`17`): the newest found of at
/// least that major (see [`clients`]), as its path and what its `--version` printed; or the
/// error (exit 7) naming the clients found and the command that installs the right one.
pub fn pg_dump_for_major(major: u32) -> Result<(PathBuf, String)> {
    let client = clients::for_major(&PG_DUMP, major)?;
    Ok((client.path, client.version))
}

/// The registry's entry for PostgreSQL.
pub struct PostgresEngine;

pub static ENGINE: PostgresEngine = PostgresEngine;

impl Engine for PostgresEngine {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn takes(&self, source: &str) -> bool {
        is_postgres_url(source)
    }

    fn redact(&self, source: &str) -> String {
        conn::redact(source)
    }

    /// Plain SQL first: `psql` restores it, and it diffs and greps; custom is `pg_dump -Fc`;
    /// directory is `pg_dump -Fd` (parallel with `--jobs`) as one tar, `.tar` (stored, its
    /// files gzipped by pg_dump) or `.tar.zst`: the naming grammar takes one word before the
    /// codec, and `tar` says what `tar -xf` opens.
    fn formats(&self) -> &'static [(Format, &'static str)] {
        &[
            (Format::Sql, "sql"),
            (Format::Custom, "dump"),
            (Format::Directory, "tar"),
        ]
    }

    fn open(&self, source: &str, opts: &SourceOptions) -> Result<Box<dyn Source>> {
        let mut source = Postgres::from_source(source, opts.timeout)?;
        source.jobs = opts.jobs;
        source.dump_gzip_level = opts.dump_gzip_level;
        Ok(Box::new(source))
    }

    fn restore_server(&self, target: &str) -> Option<String> {
        is_postgres_url(target).then(|| conn::server_url(target))
    }

    fn restorer(&self, target: &RestoreTarget) -> Result<Box<dyn Restorer>> {
        Ok(Box::new(PostgresRestorer::for_target(target)?))
    }

    fn refuse_existing_target(&self, target: &str) -> Result<()> {
        let wanted = ConnInfo::parse(target)?;
        let mut server = wanted.with_dbname(MAINTENANCE_DB);
        server.role = "restore server";
        let exists = server
            .connect(None)?
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&wanted.dbname],
            )
            .map_err(|e| server.error(db_message(&e)))?
            .get::<_, i64>(0)
            > 0;
        match exists {
            true => Err(Error::Usage(format!(
                "database '{}' already exists on {}: pass --force to replace it",
                wanted.dbname,
                server.display()
            ))),
            false => Ok(()),
        }
    }
}

impl PostgresRestorer {
    /// The server named by `--restore-into` wins; else the manifest's source server (unless
    /// [`Fallback::Environment`](crate::engine::Fallback) rules it out); else the `PG*`
    /// variables. The scratch database gets the source's encoding and locale, so that
    /// text compares byte for byte.
    pub fn for_target(target: &RestoreTarget) -> Result<Self> {
        let source = target.source_server();
        let conn = match (target.into, source) {
            (Some(into), _) if conn::names_database(into) => ConnInfo::parse(into)?,
            (Some(into), _) => ConnInfo::parse(into)?.with_dbname(MAINTENANCE_DB),
            (None, Some(source)) => ConnInfo::parse(source)?.with_dbname(MAINTENANCE_DB),
            (None, None) => ConnInfo::parse("postgres://")?.with_dbname(MAINTENANCE_DB),
        };
        let mut conn = conn;
        conn.role = "restore server";
        let objects = &target.manifest.snapshot.objects;
        let not_in_source = TEMPLATE_OBJECTS
            .iter()
            .filter(|(kind, name, _)| !objects.iter().any(|o| o.kind == *kind && o.name == *name))
            .map(|(_, _, drop)| *drop)
            .collect();
        let manifest = target.manifest;
        let tool = match manifest.format {
            Format::Custom | Format::Directory => &PG_RESTORE,
            _ => &PSQL,
        };
        let client = clients::for_restore(tool, manifest.engine.dump_tool.as_deref())?;
        Ok(PostgresRestorer {
            conn,
            client,
            source_version: manifest.engine.version.clone(),
            jobs: target.jobs.unwrap_or_else(default_restore_jobs),
            properties: target.manifest.snapshot.properties.clone(),
            not_in_source,
            row_text: (manifest.snapshot.checksum_algorithm == describe::COPY_ALGORITHM)
                .then(|| describe::RowText::from_properties(&manifest.snapshot.properties)),
        })
    }
}

/// A PostgreSQL database to back up.
pub struct Postgres {
    conn: ConnInfo,
    /// A limit for the whole dump, snapshot queries included.
    timeout: Option<Duration>,
    /// `pg_dump --jobs` for the directory format; `None` is one worker.
    jobs: Option<u32>,
    /// `pg_dump --compress=N` for the directory format (see `SourceOptions`); `None` is 0.
    dump_gzip_level: Option<u32>,
}

/// `pg_restore -j` for a directory-format backup when the caller names no number (`restore`,
/// `restore-test`): this machine's cores, at most 4, since each worker is also a backend on the
/// restore server.
fn default_restore_jobs() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
}

/// Restores PostgreSQL dumps into scratch databases on one server.
pub struct PostgresRestorer {
    /// The server to restore on, connected to its maintenance database.
    conn: ConnInfo,
    /// The `psql` or `pg_restore` that restores: at least as new as the backup's `pg_dump`.
    client: Client,
    /// The source server's version, from the manifest.
    source_version: String,
    /// `pg_restore -j` for the directory format.
    jobs: u32,
    /// The source's database properties (encoding, locale) from the manifest.
    properties: BTreeMap<String, String>,
    /// What `template0` gives every new database that the source did not have (it dropped
    /// the `public` schema or `plpgsql`): removed from the scratch database before the
    /// restore, so that the copy is the source's state, not the template's.
    not_in_source: Vec<&'static str>,
    /// For a manifest whose row checksums came from pg_dump's COPY text: the settings the
    /// restored rows are printed with to be hashed the same way.
    row_text: Option<describe::RowText>,
}

/// What a database made from `template0` has without being asked, as (kind, name) in the
/// manifest's objects, and how to remove it. `pg_dump` writes neither, since every new
/// database has them.
const TEMPLATE_OBJECTS: [(&str, &str, &str); 2] = [
    ("schema", "public", "DROP SCHEMA public"),
    ("extension", "plpgsql", "DROP EXTENSION plpgsql"),
];

impl Postgres {
    pub fn from_source(source: &str, timeout: Option<Duration>) -> Result<Self> {
        Ok(Self {
            conn: ConnInfo::parse(source)?,
            timeout,
            jobs: None,
            dump_gzip_level: None,
        })
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    /// Connects to the source with the output settings the checksums depend on.
    fn connect_source(&self) -> Result<postgres::Client> {
        let mut client = self.conn.connect(self.timeout)?;
        // Our transaction idles while pg_dump works: a server-wide idle timeout must not end it.
        let mut settings = format!(
            "{}; SET idle_in_transaction_session_timeout = 0",
            describe::SESSION_SETTINGS
        );
        if let Some(t) = self.timeout {
            settings.push_str(&format!("; SET statement_timeout = {}", t.as_millis()));
        }
        client
            .batch_execute(&settings)
            .map_err(|e| self.source_error(e))?;
        Ok(client)
    }

    fn source_error(&self, err: postgres::Error) -> Error {
        self.conn.error(db_message(&err))
    }

    fn timeout_error(&self) -> Error {
        self.conn.error(format!(
            "the backup did not finish within --timeout {}s: pg_dump was stopped; raise \
                 --timeout or look for long-held locks on the database",
            self.timeout.map_or(0, |t| t.as_secs())
        ))
    }

    /// Extra connections (one per core beyond the first, at most three) whose transactions
    /// import the exported snapshot (`SET TRANSACTION SNAPSHOT`), so they see exactly the rows
    /// `pg_dump` and our own transaction see: the per-table checksums are shared with them.
    /// Fewer when the server refuses more connections (`max_connections`) or the import (a
    /// standby before PostgreSQL 10): they only share work our own connection can do alone.
    fn snapshot_helpers(&self, snapshot_id: &str) -> Vec<postgres::Client> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let import = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(snapshot_id)
        );
        let mut helpers = Vec::new();
        for _ in 1..cores.min(4) {
            let helper = self.connect_source().and_then(|mut helper| {
                (helper.batch_execute(&import))
                    .map_err(|e| self.source_error(e))
                    .map(|()| helper)
            });
            match helper {
                Ok(helper) => helpers.push(helper),
                Err(e) => {
                    debug!(
                        "{} helper connection(s) describe the snapshot: {e}",
                        helpers.len()
                    );
                    break;
                }
            }
        }
        helpers
    }

    /// Starts `pg_dump` on our exported snapshot, writing to a pipe we read, or for the
    /// directory format into `dir` (which must not exist yet).
    fn spawn_pg_dump(
        &self,
        pg_dump: &Client,
        format: Format,
        snapshot_id: &str,
        dir: &Path,
        row_text: Option<&describe::RowText>,
    ) -> Result<std::process::Child> {
        let mut command = pg_dump.command(&PG_DUMP);
        let mut conn = self.conn.clone();
        if let Some(text) = row_text {
            // The settings the COPY text depends on that pg_dump leaves to its session, set to
            // what that session would have had (see `RowText::of_session`), explicitly: a
            // `PGTZ` or `PGOPTIONS` of this process must not make pg_dump print rows otherwise
            // than the manifest says. `options` in the connection string replaces `PGOPTIONS`,
            // so both are carried there, ours last (the last `-c` wins).
            let given = (conn.params.get("options").cloned())
                .or_else(|| std::env::var("PGOPTIONS").ok())
                .unwrap_or_default();
            let options = format!("{given} {}", text.pg_options());
            conn.params
                .insert("options".into(), options.trim().to_string());
            command.env_remove("PGTZ");
        }
        match format {
            // Uncompressed (`--compress=0`, accepted with -Fc since PostgreSQL 9): our gzip
            // stream compresses it once. pg_dump's own compression left gzip nothing to gain
            // (1.1x) for the CPU of compressing twice; see BENCHMARKS.md.
            Format::Custom => command.args(["--format=custom", "--compress=0"]),
            // With gzip, each worker compresses its own files (`NNNN.dat.gz`, what
            // `--compress=N` does for -Fd since PostgreSQL 9) and the tar is stored as it is:
            // compression runs in parallel and the raw dump never touches the disk
            // (BENCHMARKS.md, "directory"). Otherwise uncompressed, tarred into our zstd stream.
            // With `--snapshot`, every worker imports our snapshot (pg_dump's documentation of
            // `--jobs` and `--snapshot`), so all of them and our description see one state.
            Format::Directory => command
                .arg("--format=directory")
                .arg(format!("--compress={}", self.dump_gzip_level.unwrap_or(0)))
                .arg(format!("--jobs={}", self.jobs.unwrap_or(1)))
                .arg("--file")
                .arg(dir),
            _ => command.arg("--format=plain"),
        };
        command
            .arg(format!("--snapshot={snapshot_id}"))
            .arg("--no-password")
            .arg(format!("--dbname={}", conn.libpq_conninfo()))
            .envs(self.conn.tool_env())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        PG_DUMP.spawn(&mut command)
    }

    /// Exports a snapshot, runs `pg_dump` on it into `out` while describing it, and says what
    /// went wrong first when something did.
    fn dump_in_snapshot(
        &self,
        client: &mut postgres::Client,
        pg_dump: &Client,
        format: Format,
        out: &mut dyn Write,
        work_dir: &Path,
        deadline: Option<Instant>,
    ) -> Result<Snapshot> {
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| self.source_error(e))?;
        let snapshot_id: String = tx
            .query_one("SELECT pg_export_snapshot()", &[])
            .map_err(|e| self.source_error(e))?
            .get(0);
        // A role or database with a connection limit may have room for ours and pg_dump's
        // only: more would leave pg_dump refused. It is described on ours alone then.
        let limited: bool = tx
            .query_one(
                "SELECT (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) <> -1 \
                 OR (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) \
                 <> -1",
                &[],
            )
            .map_or(true, |row| row.get(0));
        // Row checksums from the dump's own COPY text (the plain format's stream, the
        // directory format's data files) need the text in UTF-8 as our connection reads it
        // (pg_dump writes in the database's encoding); the custom format's data blocks are
        // not followed, so the server sums its rows.
        let encoding: String = tx
            .query_one(
                "SELECT pg_encoding_to_char(encoding) FROM pg_database \
                 WHERE datname = current_database()",
                &[],
            )
            .map_err(|e| self.source_error(e))?
            .get(0);
        // The directory format's files are mapped to tables through `toc.dat`, whose layout
        // `toc` reads as the pg_dump releases it knows write it: a newer pg_dump's archive
        // could be one it refuses after the dump, so the server sums that one's rows.
        let by_text = match format {
            Format::Sql => true,
            Format::Directory => version::major(pg_dump.num) <= toc::NEWEST_PG_DUMP,
            _ => false,
        };
        let row_text = match by_text && encoding == "UTF8" {
            true => Some(describe::RowText::of_session(&mut tx).map_err(|e| self.source_error(e))?),
            false => None,
        };
        // Helpers share the server-side row hashing; with the rows hashed from the dump's
        // text, what is left (the schema, materialized views) is quick on ours, and no extra
        // connection competes with pg_dump's for the server's `max_connections`.
        let mut helpers = match limited || row_text.is_some() {
            true => Vec::new(),
            false => self.snapshot_helpers(&snapshot_id),
        };
        let dir = work_dir.join(directory::TOP);
        // Follows the data files as pg_dump's workers write them (stopped when dropped).
        let follower = match (format, &row_text) {
            (Format::Directory, Some(_)) => Some(
                // Out of threads is this machine's limit, not a bug.
                dirsum::Follower::start(&dir)
                    .map_err(|e| Error::output("start the thread that reads", &dir, e))?,
            ),
            _ => None,
        };
        let mut child =
            self.spawn_pg_dump(pg_dump, format, &snapshot_id, &dir, row_text.as_ref())?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let running = Running::watch(&PG_DUMP, child, deadline);
        let cancel: Vec<_> = std::iter::once(tx.cancel_token())
            .chain(helpers.iter().map(|h| h.cancel_token()))
            .collect();
        let tls = self.conn.tls()?.1;
        let mut sums = copysum::CopySums::default();
        let (described, copied) = std::thread::scope(|s| {
            let (done, done_rx) = mpsc::channel::<()>();
            // At the deadline, cancel whatever snapshot query is running.
            s.spawn(move || {
                let Some(deadline) = deadline else { return };
                let left = deadline.saturating_duration_since(Instant::now());
                if let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(left) {
                    for cancel in &cancel {
                        let _ = cancel.cancel_query(tls.clone());
                    }
                }
            });
            let rows = match &row_text {
                Some(text) => describe::Rows::Stream(text),
                None => describe::Rows::Server,
            };
            let describing = s.spawn(move || {
                let began = Instant::now();
                let described = describe::describe_with(
                    &mut tx,
                    &mut helpers,
                    Some(describe::CHUNK_PAGES),
                    rows,
                );
                drop(done);
                // How long the counts and checksums ran beside pg_dump (BENCHMARKS.md measures
                // their share with this line).
                debug!(
                    "described the snapshot in {:.2}s",
                    began.elapsed().as_secs_f64()
                );
                (described, tx)
            });
            // The directory format prints nothing on stdout: this returns when pg_dump ends.
            let began = Instant::now();
            let copied = match row_text {
                Some(_) => std::io::copy(
                    &mut stdout,
                    &mut copysum::Tee {
                        out: &mut *out,
                        sums: &mut sums,
                    },
                ),
                None => std::io::copy(&mut stdout, out),
            };
            debug!("pg_dump ran {:.2}s", began.elapsed().as_secs_f64());
            // Closing our end stops pg_dump at once if writing failed.
            drop(stdout);
            (describing.join(), copied)
        });
        let finished = running.finish()?;
        let described = described
            .map(|(described, tx)| {
                let _ = tx.rollback();
                described
            })
            .map_err(|_| Error::Internal("the thread describing the snapshot panicked".into()))?;
        if finished.timed_out {
            return Err(self.timeout_error());
        }
        copied.map_err(|e| Error::output("write backup into", work_dir, e))?;
        // A failed snapshot query ends the exporting transaction, which fails pg_dump too:
        // the query's error is the cause.
        let described = described.map_err(|e| self.describe_error(e))?;
        for lost in (described.snapshot.not_compared.iter())
            .filter(|n| n.starts_with(describe::XML_DECLARATIONS))
        {
            warn!("{lost}: no dump format can carry it, so the restored copy will lack it");
        }
        if !finished.status.success() {
            let stderr = match finished.stderr.as_str() {
                "" => "it printed nothing",
                text => text,
            };
            return Err(self
                .conn
                .error(format!("pg_dump failed ({}): {stderr}", finished.status)));
        }
        let describe::Described {
            mut snapshot,
            from_stream,
            tolerated,
        } = described;
        if row_text.is_some() {
            let expected: Vec<_> = from_stream.iter().map(|(_, t)| t.clone()).collect();
            let blocks = match follower {
                Some(follower) => {
                    let began = Instant::now();
                    let blocks = follower.finish();
                    // What hashing the files added after pg_dump ended (BENCHMARKS.md).
                    debug!(
                        "summed the data files {:.2}s after pg_dump",
                        began.elapsed().as_secs_f64()
                    );
                    blocks
                }
                None => sums.finish(),
            };
            let sums = blocks
                .and_then(|blocks| copysum::reconcile(blocks, &expected, &tolerated))
                .map_err(|e| {
                    self.conn.error(format!(
                        "cannot take the table checksums from pg_dump's output: {e}"
                    ))
                })?;
            for ((at, _), sum) in from_stream.iter().zip(sums) {
                snapshot.tables[*at].rows = sum.rows;
                snapshot.tables[*at].checksum = sum.checksum();
            }
        }
        if format == Format::Directory {
            let began = Instant::now();
            directory::pack(&dir, out)
                .map_err(|e| Error::output("write backup into", work_dir, e))?;
            debug!(
                "tarred the directory in {:.2}s",
                began.elapsed().as_secs_f64()
            );
            // The archive has it now: the disk is freed before the restore test unpacks it.
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(snapshot)
    }

    fn describe_error(&self, err: postgres::Error) -> Error {
        use postgres::error::SqlState;
        if err.code() == Some(&SqlState::QUERY_CANCELED) && self.timeout.is_some() {
            self.timeout_error()
        } else if err.code() == Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE) {
            // The server's message names a byte, not the object: find the names that are not
            // UTF-8 (an SQL_ASCII database takes any bytes).
            let names = self.non_utf8_names().unwrap_or_default();
            match names.is_empty() {
                true => self.source_error(err),
                false => self.conn.error(format!(
                    "{}: these names are not UTF-8, which the database's SQL_ASCII encoding \
                     allowed but a backup cannot describe: {}; rename them (ALTER … RENAME \
                     TO) to UTF-8",
                    db_message(&err),
                    names.join(", ")
                )),
            }
        } else {
            self.source_error(err)
        }
    }

    /// Schemas, tables and columns whose names are not UTF-8, shown with the bad bytes as
    /// `\xNN`.
    fn non_utf8_names(&self) -> Result<Vec<String>> {
        let mut client = self.conn.connect(self.timeout)?;
        let rows = client
            .query(
                "SELECT kind, convert_to(parent, 'SQL_ASCII'), convert_to(name, 'SQL_ASCII') \
                 FROM (SELECT 'schema' AS kind, '' AS parent, nspname::text AS name \
                         FROM pg_namespace \
                       UNION ALL SELECT 'table', n.nspname::text, c.relname::text \
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                       UNION ALL SELECT 'column', c.relname::text, a.attname::text \
                         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                        WHERE a.attnum > 0) AS names",
                &[],
            )
            .map_err(|e| self.source_error(e))?;
        let shown = |bytes: &[u8]| -> String {
            bytes
                .utf8_chunks()
                .map(|chunk| {
                    let mut text = chunk.valid().to_string();
                    for b in chunk.invalid() {
                        text.push_str(&format!("\\x{b:02x}"));
                    }
                    text
                })
                .collect()
        };
        Ok(rows
            .iter()
            .filter_map(|row| {
                let (kind, parent, name): (String, Vec<u8>, Vec<u8>) =
                    (row.get(0), row.get(1), row.get(2));
                // Each badly named object once: a table's columns are not listed for its name.
                if std::str::from_utf8(&name).is_ok() {
                    return None;
                }
                Some(match parent.is_empty() {
                    true => format!("{kind} \"{}\"", shown(&name)),
                    false => format!("{kind} \"{}\".\"{}\"", shown(&parent), shown(&name)),
                })
            })
            .collect())
    }
}

impl Source for Postgres {
    fn engine(&self) -> &'static dyn Engine {
        &ENGINE
    }

    fn stem(&self) -> String {
        sanitize_stem(&self.conn.dbname)
    }

    fn display(&self) -> String {
        self.conn.display()
    }

    /// PostgreSQL's check is the manifest's per-table description in the dump's snapshot, the
    /// same whatever `_check` asks.
    fn dump(
        &self,
        format: Format,
        _check: SnapshotCheck,
        out: &mut dyn Write,
        work_dir: &Path,
        expect: &dyn Fn(Total),
    ) -> Result<Dumped> {
        refuse_native(format)?;
        let deadline = self.deadline();
        let mut client = self.connect_source()?;
        let row = client
            .query_one(VERSION_SQL, &[])
            .map_err(|e| self.source_error(e))?;
        let (server_version, server_num): (String, i32) = (row.get(0), row.get(1));
        if server_num < 110000 {
            return Err(self.conn.error(format!(
                "PostgreSQL {server_version} is older than 11, which dbbackup's checksums \
                     need (hashtextextended): upgrade the server"
            )));
        }
        let pg_dump = clients::for_dump(&PG_DUMP, &server_version, server_num as u32)?;
        // The database's size on disk, an estimate of the dump's: indexes and free space make
        // it larger, text forms of binary values smaller. Only the progress bar uses it.
        match client.query_one("SELECT pg_database_size(current_database())", &[]) {
            Ok(row) => expect(Total::about(row.get::<_, i64>(0).max(0) as u64)),
            Err(e) => tracing::debug!("no size estimate for the progress bar: {e}"),
        }
        info!(
            "dumping PostgreSQL {server_version} with {}",
            pg_dump.shown()
        );
        let snapshot =
            self.dump_in_snapshot(&mut client, &pg_dump, format, out, work_dir, deadline)?;
        Ok(Dumped {
            engine: EngineInfo {
                name: "postgres".into(),
                version: server_version,
                dump_tool: Some(pg_dump.version),
                dump_tool_path: Some(pg_dump.path.display().to_string()),
            },
            snapshot,
        })
    }
}

impl PostgresRestorer {
    /// [`Restorer::restore`], with the scratch database's own type (its name is known); a
    /// directory-format dump is unpacked under the system's temporary directory.
    pub fn restore_scratch_db(
        &self,
        format: Format,
        dump: &mut dyn Read,
    ) -> Result<PostgresScratch> {
        self.restore_in(format, dump, &std::env::temp_dir())
    }

    /// Restores into a new scratch database; a directory-format dump is unpacked in a private
    /// directory under `work_dir` first (`pg_restore -j` reads a directory, not a stream).
    fn restore_in(
        &self,
        format: Format,
        dump: &mut dyn Read,
        work_dir: &Path,
    ) -> Result<PostgresScratch> {
        refuse_native(format)?;
        let db = ScratchDb::create(&self.conn, &self.properties)?;
        let target = self.conn.with_dbname(&db.name);
        let mut client = target.connect(None)?;
        let fail = |e: postgres::Error| restore_error(&db.name, db_message(&e));
        let row = client.query_one(VERSION_SQL, &[]).map_err(fail)?;
        let (target_version, target_num): (String, i32) = (row.get(0), row.get(1));
        if !self.not_in_source.is_empty() {
            client
                .batch_execute(&self.not_in_source.join("; "))
                .map_err(fail)?;
        }
        let unknown = unknown_settings(target_num as u32);
        let how = How {
            format,
            jobs: self.jobs,
            work_dir,
            unknown: &unknown,
        };
        let mut notes = restore_dump(&target, &self.client, dump, &how)?;
        notes.push(format!("restored with {}", self.client.shown()));
        info!("restored into scratch database {}", target.display());
        client
            .batch_execute(describe::SESSION_SETTINGS)
            .map_err(fail)?;
        let upgrade = self.upgrade(&target_version);
        if let Some(upgrade) = &upgrade {
            notes.push(upgrade.note());
        }
        Ok(PostgresScratch {
            described: RefCell::new(None),
            client: RefCell::new(client),
            notes: RefCell::new(notes),
            upgrade,
            rows: RowHashing {
                text: self.row_text.clone(),
                psql: (format == Format::Sql).then(|| self.client.clone()),
                target: readers_target(&target),
            },
            db,
        })
    }

    /// The source and target releases when they are of different majors.
    fn upgrade(&self, target_version: &str) -> Option<Upgrade> {
        let source = version::version_num(&self.source_version)?;
        let target = version::version_num(target_version)?;
        (version::major(source) != version::major(target)).then(|| Upgrade {
            source: self.source_version.clone(),
            target: target_version.to_string(),
        })
    }
}

/// A restore onto another major release than the source's: `restore-test --restore-into` a
/// newer server, to learn whether last night's backup restores on the release being moved to.
struct Upgrade {
    source: String,
    target: String,
}

impl Upgrade {
    fn note(&self) -> String {
        format!(
            "upgrade check: a backup of PostgreSQL {} restored on PostgreSQL {}; compared \
             across the versions: schema objects, database properties, and every table's rows \
             and checksum; the schema checksum may differ by the newer deparser",
            self.source, self.target
        )
    }
}

impl Restorer for PostgresRestorer {
    fn restore(
        &self,
        format: Format,
        dump: &mut dyn Read,
        work_dir: &Path,
    ) -> Result<Box<dyn Scratch>> {
        Ok(Box::new(self.restore_in(format, dump, work_dir)?))
    }
}

/// How a dump is restored, beside the dump and the target.
struct How<'a> {
    format: Format,
    /// `pg_restore -j` for the directory format.
    jobs: u32,
    /// Where a directory-format dump is unpacked.
    work_dir: &'a Path,
    /// Settings the target lacks ([`NEWER_SETTINGS`]).
    unknown: &'a [&'a str],
}

/// Restores with psql or pg_restore, owners skipped; returns notes for the report.
fn restore_dump(
    target: &ConnInfo,
    tool: &Client,
    dump: &mut dyn Read,
    how: &How,
) -> Result<Vec<String>> {
    let (format, unknown) = (how.format, how.unknown);
    refuse_native(format)?;
    let mut notes = Vec::new();
    let note = if format == Format::Sql {
        let skipped = restore_plain(target, tool, dump, unknown)?;
        if skipped.settings > 0 {
            notes.push(format!(
                "{} `SET` of a setting this server does not have ({}) skipped: a newer \
                 pg_dump writes it, and it only lifts a timeout for the restore's session",
                skipped.settings,
                unknown.join(", ")
            ));
        }
        format!(
            "restored with --no-owner semantics: {} `ALTER ... OWNER TO` statements \
             skipped, objects are owned by '{}' (roles missing on the target do not fail the \
             restore; GRANTs to them still do)",
            skipped.owners, target.user
        )
    } else {
        let jobs = match format {
            Format::Directory => {
                restore_directory(target, tool, dump, how)?;
                format!(" --jobs={}", how.jobs)
            }
            _ => {
                restore_custom(target, tool, dump, unknown)?;
                String::new()
            }
        };
        format!(
            "restored with pg_restore --no-owner{jobs}: objects are owned by '{}' (roles \
             missing on the target do not fail the restore; GRANTs to them still do)",
            target.user
        )
    };
    notes.insert(0, note);
    Ok(notes)
}

/// Settings that a newer `pg_dump`'s plain SQL sets in its header, with the release that
/// introduced them. `pg_dump` 17 and later write `SET transaction_timeout = 0;` whatever the
/// source's version, and a server before 17 rejects it ("unrecognized configuration
/// parameter"), so a dump by the newest client could not be restored on its own server. The
/// setting only lifts a timeout for the restoring session; on a server without it there is no
/// such timeout to lift.
const NEWER_SETTINGS: [(&str, u32); 1] = [("transaction_timeout", 170000)];

/// The settings of [`NEWER_SETTINGS`] that a server of `server_num` does not have.
fn unknown_settings(server_num: u32) -> Vec<&'static str> {
    NEWER_SETTINGS
        .iter()
        .filter(|(_, since)| server_num < *since)
        .map(|(name, _)| *name)
        .collect()
}

fn refuse_native(format: Format) -> Result<()> {
    if format == Format::Native {
        return Err(Error::Usage(
            "a PostgreSQL backup is sql, custom or directory, never native".into(),
        ));
    }
    Ok(())
}

/// `psql` on `target`: no `.psqlrc`, never a password prompt (the password is in its
/// environment), stopping at the first error.
fn psql_command(psql: &Client, target: &ConnInfo) -> std::process::Command {
    let mut command = psql.command(&PSQL);
    command
        .args([
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .arg(format!("--dbname={}", target.libpq_conninfo()))
        .envs(target.tool_env());
    command
}

/// Feeds a plain SQL dump to `psql`, stopping at the first error. `ALTER ... OWNER TO` lines
/// outside `COPY` data are left out (`pg_restore --no-owner` semantics); returns how many.
fn restore_plain(
    target: &ConnInfo,
    psql: &Client,
    dump: &mut dyn Read,
    unknown: &[&str],
) -> Result<Skipped> {
    let mut command = psql_command(psql, target);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = PSQL.spawn(&mut command)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let running = Running::watch(&PSQL, child, None);
    let fed = feed_without_owners(dump, &mut stdin, unknown);
    drop(stdin);
    let finished = running.finish()?;
    finish_feed(&target.dbname, "psql", fed, &finished)
}

/// The outcome of feeding a dump to a tool, the first cause first: a dump that could not be
/// read (the tool then fails on the truncated input too), then the tool's own error.
fn finish_feed(database: &str, tool: &str, feed: Feed, finished: &Finished) -> Result<Skipped> {
    if let Feed::ReadFailed(e) = feed {
        return Err(read_error(e));
    }
    check_restore(database, tool, finished)?;
    match feed {
        Feed::Done(n) => Ok(n),
        Feed::ReadFailed(e) => Err(read_error(e)),
        Feed::WriteFailed(e) => Err(restore_error(
            database,
            format!("{tool} stopped reading the dump: {e}"),
        )),
    }
}

enum Feed {
    Done(Skipped),
    ReadFailed(std::io::Error),
    WriteFailed(std::io::Error),
}

/// What the feed left out of a plain dump.
#[derive(Debug, Default, PartialEq)]
struct Skipped {
    /// `ALTER ... OWNER TO` statements.
    owners: usize,
    /// `SET` of a setting in `unknown` (see [`NEWER_SETTINGS`]).
    settings: usize,
}

fn feed_without_owners(dump: &mut dyn Read, to: &mut dyn Write, unknown: &[&str]) -> Feed {
    let mut reader = BufReader::with_capacity(1 << 20, dump);
    let mut to = std::io::BufWriter::with_capacity(1 << 20, to);
    let mut line = Vec::new();
    let mut in_copy = false;
    let mut skipped = Skipped::default();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Feed::ReadFailed(e),
        }
        if in_copy {
            in_copy = line != b"\\.\n";
        } else if is_owner_statement(&line) {
            skipped.owners += 1;
            continue;
        } else if is_set_of(&line, unknown) {
            skipped.settings += 1;
            continue;
        } else {
            in_copy = line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;\n");
        }
        if let Err(e) = to.write_all(&line) {
            return Feed::WriteFailed(e);
        }
    }
    match to.flush() {
        Ok(()) => Feed::Done(skipped),
        Err(e) => Feed::WriteFailed(e),
    }
}

/// `SET <name> = <value>;` on one line, as pg_dump writes its header, for a name in `names`.
fn is_set_of(line: &[u8], names: &[&str]) -> bool {
    names.iter().any(|name| {
        line.strip_prefix(b"SET ")
            .and_then(|rest| rest.strip_prefix(name.as_bytes()))
            .is_some_and(|rest| rest.starts_with(b" = ") && rest.trim_ascii_end().ends_with(b";"))
    })
}

/// `ALTER <kind> <name> OWNER TO <role>;` on one line, as pg_dump writes it.
fn is_owner_statement(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let text = text.trim_end();
    text.starts_with("ALTER ") && text.ends_with(';') && text.contains(" OWNER TO ")
}

/// Streams a custom-format dump to `pg_restore --exit-on-error --no-owner`.
fn restore_custom(
    target: &ConnInfo,
    pg_restore: &Client,
    dump: &mut dyn Read,
    unknown: &[&str],
) -> Result<()> {
    if !unknown.is_empty() {
        return restore_custom_as_sql(target, pg_restore, dump, None, unknown);
    }
    let mut command = pg_restore.command(&PG_RESTORE);
    command
        .args(["--exit-on-error", "--no-owner", "--no-password"])
        .arg(format!("--dbname={}", target.libpq_conninfo()))
        .envs(target.tool_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = PG_RESTORE.spawn(&mut command)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let running = Running::watch(&PG_RESTORE, child, None);
    let copied = feed_as_is(dump, &mut stdin);
    drop(stdin);
    let finished = running.finish()?;
    finish_feed(&target.dbname, "pg_restore", copied, &finished).map(|_| ())
}

/// Unpacks a directory-format dump under `how.work_dir` and restores it with
/// `pg_restore --jobs`, which reads a directory (not a stream) and loads tables in parallel.
fn restore_directory(
    target: &ConnInfo,
    pg_restore: &Client,
    dump: &mut dyn Read,
    how: &How,
) -> Result<()> {
    let unpacked = tempfile::Builder::new()
        .prefix("dbbackup-pg-directory-")
        .tempdir_in(how.work_dir)
        .map_err(|e| Error::output("unpack the dump into", how.work_dir, e))?;
    let dir = directory::unpack(dump, unpacked.path())?;
    // Only a pg_restore of the release that introduced a setting sends it: an older one
    // restores directly (and in parallel) on a server without it.
    let sent = NEWER_SETTINGS
        .iter()
        .any(|(name, since)| pg_restore.num >= *since && how.unknown.contains(name));
    if sent {
        return restore_custom_as_sql(
            target,
            pg_restore,
            &mut std::io::empty(),
            Some(&dir),
            how.unknown,
        );
    }
    let mut command = pg_restore.command(&PG_RESTORE);
    command
        .args(["--exit-on-error", "--no-owner", "--no-password"])
        .arg(format!("--jobs={}", how.jobs))
        .arg(format!("--dbname={}", target.libpq_conninfo()))
        .arg(&dir)
        .envs(target.tool_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = PG_RESTORE.spawn(&mut command)?;
    let finished = Running::watch(&PG_RESTORE, child, None).finish()?;
    check_restore(&target.dbname, "pg_restore", &finished)
}

/// Feeds the whole dump unchanged (to `pg_restore`).
fn feed_as_is(dump: &mut dyn Read, to: &mut dyn Write) -> Feed {
    match util::copy_telling_sides(dump, to) {
        Ok(_) => Feed::Done(Skipped::default()),
        Err(CopyError::Read(e)) => Feed::ReadFailed(e),
        Err(CopyError::Write(e)) => Feed::WriteFailed(e),
    }
}

/// A custom-format dump onto a server that lacks a setting `pg_restore` sends itself
/// ([`NEWER_SETTINGS`]: `pg_restore` 17 and later set `transaction_timeout`, which a server
/// before 17 rejects): `pg_restore --file=-` turns the archive into SQL, and the `psql` of the
/// same directory runs it through the same feed as a plain dump, which leaves the setting out.
/// With `dir` (an unpacked directory-format dump) `pg_restore` reads that, and `dump` is empty.
fn restore_custom_as_sql(
    target: &ConnInfo,
    pg_restore: &Client,
    dump: &mut dyn Read,
    dir: Option<&Path>,
    unknown: &[&str],
) -> Result<()> {
    let psql = pg_restore.sibling(&PSQL);
    let mut command = pg_restore.command(&PG_RESTORE);
    command.args(["--no-owner", "--file=-"]);
    if let Some(dir) = dir {
        command.arg(dir);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = PG_RESTORE.spawn(&mut command)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut sql = child.stdout.take().expect("stdout is piped");
    let running = Running::watch(&PG_RESTORE, child, None);
    let (copied, restored) = std::thread::scope(|s| {
        let restoring = s.spawn(|| restore_plain(target, &psql, &mut sql, unknown));
        let copied = feed_as_is(dump, &mut stdin);
        drop(stdin);
        (copied, restoring.join())
    });
    let finished = running.finish()?;
    finish_feed(&target.dbname, "pg_restore", copied, &finished)?;
    restored
        .map_err(|_| Error::Internal("the thread feeding psql panicked".into()))?
        .map(|_| ())
}

/// Copies like `io::copy`, but tells a failure to read the dump from a failure to write it.
fn check_restore(scratch: &str, tool: &str, finished: &Finished) -> Result<()> {
    if finished.status.success() {
        return Ok(());
    }
    Err(restore_error(
        scratch,
        format!(
            "{tool} stopped at the first error ({}): {}",
            finished.status, finished.stderr
        ),
    ))
}

fn restore_error(database: &str, reason: String) -> Error {
    Error::Verify {
        object: format!("restore into database {database}"),
        reason,
    }
}

fn read_error(err: std::io::Error) -> Error {
    Error::unreadable(
        PathBuf::from("the backup"),
        format!("reading the dump failed: {err}"),
    )
}

/// Drops the scratch databases that runs on this machine left when they were killed (SIGKILL,
/// a crash, a lost runner: no handler ran). Only this machine's (the name carries its tag) and
/// only those whose process is gone: another machine's, or a live run's, are never touched.
/// Names without a machine tag (older versions) are left alone: whose they are cannot be told.
fn sweep_abandoned(admin: &ConnInfo, client: &mut postgres::Client) {
    let Ok(rows) = client.query(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
        &[&scratch::PREFIX],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        if scratch::abandoned_here(&name) {
            info!("dropping scratch database {name}: the run that made it on this machine is gone");
            drop_database(admin, &name);
        }
    }
}

fn drop_database(admin: &ConnInfo, name: &str) {
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    // Bounded: this also runs in the Ctrl-C handler, which must not hang on a dead server.
    let dropped = admin
        .connect(Some(Duration::from_secs(10)))
        .and_then(|mut c| {
            c.batch_execute(&sql)
                .map_err(|e| admin.error(db_message(&e)))
        });
    if let Err(e) = dropped {
        warn!("could not drop scratch database {name} ({e}): drop it by hand with {sql}");
    }
}

/// A scratch database on the target server, dropped (`WITH (FORCE)`) when this is dropped,
/// and by the signal handler of [`crate::cleanup`] when the process is interrupted.
struct ScratchDb {
    admin: ConnInfo,
    name: String,
    /// Drops the database; disarmed once it is kept under the user's name.
    dropped_by: cleanup::Guard,
}

impl ScratchDb {
    /// `dbbackup_scratch_<pid>_<machine>_<random>`, from `template0` (a `template1` with
    /// objects of its own would clash with the dump) with the source's encoding and locale when
    /// known. Those of this machine whose process is gone are dropped first.
    fn create(admin: &ConnInfo, properties: &BTreeMap<String, String>) -> Result<Self> {
        let name = scratch::new_name();
        let sql = create_database_sql(&name, properties);
        let mut client = admin.connect(None)?;
        sweep_abandoned(admin, &mut client);
        // Registered before it exists: an interrupt while it is being created still drops it
        // (`DROP DATABASE IF EXISTS` is harmless when it never came to be).
        let dropped_by = {
            let (admin, name) = (admin.clone(), name.clone());
            cleanup::register(move || drop_database(&admin, &name))
        };
        client.batch_execute(&sql).map_err(|e| {
            if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                return admin.error(scratch::may_not_create(
                    &admin.user,
                    "CREATEDB",
                    "postgres://USER@HOST:PORT",
                ));
            }
            admin.error(format!(
                "cannot create scratch database {name} as the source's was ({}): {}",
                sql.split_once(" TEMPLATE template0")
                    .map_or("", |(_, c)| c.trim()),
                db_message(&e)
            ))
        })?;
        let db = Self {
            admin: admin.clone(),
            name,
            dropped_by,
        };
        db.reproduce_settings(&mut client, properties)?;
        Ok(db)
    }

    /// The source's per-database settings and comment, which `pg_dump` without `--create`
    /// leaves out. A setting goes through `set_config` and `SET … FROM CURRENT`, so its value
    /// is parsed exactly as the server parsed the source's (a list such as `search_path`
    /// stays a list).
    fn reproduce_settings(
        &self,
        client: &mut postgres::Client,
        properties: &BTreeMap<String, String>,
    ) -> Result<()> {
        let db = quote_ident(&self.name);
        let fail = |what: &str, e: postgres::Error| {
            self.admin.error(format!(
                "cannot give scratch database {} the source's {what}: {}",
                self.name,
                db_message(&e)
            ))
        };
        for (key, value) in properties {
            if let Some(setting) = key.strip_prefix(describe::SETTING) {
                let mut tx = client.transaction().map_err(|e| fail(key, e))?;
                tx.query_one("SELECT set_config($1, $2, true)", &[&setting, value])
                    .map_err(|e| fail(key, e))?;
                tx.batch_execute(&format!(
                    "ALTER DATABASE {db} SET {} FROM CURRENT",
                    quote_ident(setting)
                ))
                .map_err(|e| fail(key, e))?;
                tx.commit().map_err(|e| fail(key, e))?;
            }
        }
        if let Some(comment) = properties.get(describe::COMMENT) {
            client
                .batch_execute(&format!(
                    "COMMENT ON DATABASE {db} IS {}",
                    quote_literal(comment)
                ))
                .map_err(|e| fail("comment", e))?;
        }
        Ok(())
    }
}

/// `CREATE DATABASE` for a scratch copy: from `template0`, with the source's encoding, locale
/// and locale provider (and its ICU or builtin locale and ICU rules), so that text compares and
/// sorts as in the source.
fn create_database_sql(name: &str, properties: &BTreeMap<String, String>) -> String {
    let mut sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name));
    // The provider is a keyword, not a literal: only the three PostgreSQL knows go in (a
    // manifest is input, and may have been written by anyone).
    let provider = properties
        .get(describe::LOCALE_PROVIDER)
        .map(String::as_str)
        .filter(|p| ["libc", "icu", "builtin"].contains(p));
    let locale_clause = match provider {
        Some("icu") => Some("ICU_LOCALE"),
        Some("builtin") => Some("BUILTIN_LOCALE"),
        _ => None,
    };
    let mut clauses = vec![
        ("encoding", Some("ENCODING")),
        ("lc_collate", Some("LC_COLLATE")),
        ("lc_ctype", Some("LC_CTYPE")),
        (describe::LOCALE, locale_clause),
        (describe::ICU_RULES, Some("ICU_RULES")),
    ];
    if let Some(provider) = provider {
        sql.push_str(&format!(" LOCALE_PROVIDER {provider}"));
    }
    for (key, clause) in clauses.drain(..) {
        if let (Some(value), Some(clause)) = (properties.get(key), clause) {
            sql.push_str(&format!(" {clause} {}", quote_literal(value)));
        }
    }
    sql
}

impl ScratchDb {
    /// Renames this database to `target` on the same server, after which it is no longer
    /// scratch. An existing `target` is refused unless `overwrite`; then it is renamed aside
    /// first and dropped only once the new one is in place, so a failure leaves it as it was.
    fn keep_as(self, target: &str, overwrite: bool) -> Result<()> {
        let admin = self.admin.clone();
        let server = admin.display();
        let fail = |e: postgres::Error| {
            admin.error(format!(
                "cannot move the restored database to '{target}': {}",
                db_message(&e)
            ))
        };
        let mut client = self.admin.connect(None)?;
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                &[&target],
            )
            .map_err(fail)?
            .get(0);
        if exists && !overwrite {
            return Err(Error::Usage(format!(
                "database '{target}' already exists on {server}: pass --force to replace it"
            )));
        }
        let aside = format!("{}_replaced", self.name);
        if exists {
            client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    &[&target],
                )
                .map_err(fail)?;
            client
                .batch_execute(&rename_sql(target, &aside))
                .map_err(fail)?;
        }
        if let Err(e) = client.batch_execute(&rename_sql(&self.name, target)) {
            if exists {
                let _ = client.batch_execute(&rename_sql(&aside, target));
            }
            return Err(fail(e));
        }
        self.dropped_by.disarm();
        if exists {
            drop_database(&admin, &aside);
        }
        Ok(())
    }
}

fn rename_sql(from: &str, to: &str) -> String {
    format!(
        "ALTER DATABASE {} RENAME TO {}",
        quote_ident(from),
        quote_ident(to)
    )
}

/// A backup restored into a scratch database. Fields drop in order: our connection closes
/// before the database is dropped.
pub struct PostgresScratch {
    client: RefCell<postgres::Client>,
    notes: RefCell<Vec<String>>,
    /// The description, made on connections of its own while `integrity` runs amcheck on
    /// `client`: amcheck keeps one server process busy on the biggest index while the other
    /// cores would wait, so run one after the other they were most of the restore test's
    /// checks (BENCHMARKS.md).
    described: RefCell<Option<Result<Snapshot>>>,
    /// Set when the copy runs on another major release than the source.
    upgrade: Option<Upgrade>,
    rows: RowHashing,
    db: ScratchDb,
}

/// How a restored copy's rows are hashed: as its manifest's were.
#[derive(Clone)]
struct RowHashing {
    /// For rows hashed from COPY text (see [`PostgresRestorer`]): the settings to print with.
    text: Option<describe::RowText>,
    /// The `psql` that restored a plain dump, which reads the copy's rows for their checksums.
    psql: Option<Client>,
    /// The scratch database, as the `psql` readers connect to it ([`readers_target`]).
    target: ConnInfo,
}

impl RowHashing {
    fn describe(
        &self,
        client: &mut postgres::Client,
        helpers: &mut [postgres::Client],
    ) -> std::result::Result<Snapshot, postgres::Error> {
        let psql = self.psql.as_ref();
        let read = |setup: &str, copy: &str| copy_with_psql(&self.target, psql?, setup, copy);
        let rows = match &self.text {
            Some(text) => describe::Rows::Copy(text, Some(&read)),
            None => describe::Rows::Server,
        };
        describe::describe_with(client, helpers, range_pages(), rows)
            .map(|described| described.snapshot)
    }
}

/// Whether the restore test cuts big tables into block ranges: only with a core to spare for
/// them. amcheck's server process takes one core; on two, a whole-table `COPY` and the `psql`
/// relaying it already fill the other, while ranges are read by the slower
/// `COPY (SELECT … WHERE ctid …)` form, one `psql` each, and take cores from amcheck, the
/// longest check (BENCHMARKS.md, "Block ranges on two cores").
fn range_pages() -> Option<i64> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores > 2).then_some(describe::CHUNK_PAGES)
}

/// The rows `copy` prints after `setup`, summed, read by `psql` from `target` (see
/// [`describe::CopyReader`]); `None` if anything failed.
fn copy_with_psql(
    target: &ConnInfo,
    psql: &Client,
    setup: &str,
    copy: &str,
) -> Option<crate::engine::rowsum::RowSum> {
    let mut command = psql_command(psql, target);
    command
        .args(["-c", setup, "-c", copy])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().ok()?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = copysum::RowLines::default();
    let mut buf = vec![0; 256 << 10];
    let read = loop {
        match stdout.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                lines.push(&buf[..n], false);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    drop(stdout);
    if !read {
        let _ = child.kill();
    }
    let status = child.wait().ok()?;
    (read && status.success() && !lines.mid_line()).then_some(lines.sum)
}

/// `target` for the `psql` sessions that read the copy's rows back. Every row crosses their
/// connection once more: over the loopback, where `prefer` (libpq's default) would encrypt it
/// on both ends for no one to read, it goes in the clear. An sslmode asked for explicitly
/// (`require`, `verify-*`) is kept.
fn readers_target(target: &ConnInfo) -> ConnInfo {
    let mut target = target.clone();
    if (target.sslmode.as_deref()).is_none_or(|m| m == "prefer" || m == "allow")
        && is_loopback(&target.host)
    {
        target.sslmode = Some("disable".into());
    }
    target
}

/// A Unix socket directory, `localhost`, or a loopback address: traffic that never leaves
/// the machine.
fn is_loopback(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || (host.trim_start_matches('[').trim_end_matches(']'))
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl PostgresScratch {
    pub fn database(&self) -> &str {
        &self.db.name
    }

    /// Extra connections to the scratch database, one per core beyond the first (at most
    /// three), with the output settings the checksums depend on: the checks after the restore
    /// are CPU-bound in one server process per query, and nothing else runs then.
    /// Fewer when the server refuses more connections (`max_connections`): they only share
    /// work our own connection can do alone.
    fn helpers(&self) -> Vec<postgres::Client> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.connections(cores.min(4) - 1)
    }

    /// Up to `n` more connections to the scratch database, with the output settings the
    /// checksums depend on; fewer when the server refuses more.
    fn connections(&self, n: usize) -> Vec<postgres::Client> {
        let target = self.db.admin.with_dbname(&self.db.name);
        let mut helpers = Vec::new();
        for _ in 0..n {
            let helper = target.connect(None).and_then(|mut helper| {
                (helper.batch_execute(describe::SESSION_SETTINGS))
                    .map_err(|e| restore_error(&self.db.name, db_message(&e)))
                    .map(|()| helper)
            });
            match helper {
                Ok(helper) => helpers.push(helper),
                Err(e) => {
                    debug!("{} helper connection(s) check the copy: {e}", helpers.len());
                    break;
                }
            }
        }
        helpers
    }

    /// `bt_index_check` on every valid B-tree index (with `heapallindexed` unless `quick`).
    /// `None` when amcheck cannot be installed in the scratch database. It is installed, in
    /// a schema of its own, inside a transaction that is rolled back: the description running
    /// meanwhile on other connections never sees it, and the restored database stays as it
    /// was restored. So it runs on this one connection, index after index.
    fn amcheck(&self, quick: bool) -> Result<Option<Vec<String>>> {
        let mut client = self.client.borrow_mut();
        let mut tx = client
            .transaction()
            .map_err(|e| restore_error(&self.db.name, db_message(&e)))?;
        if let Err(e) = tx.batch_execute(
            "CREATE SCHEMA dbbackup_amcheck; CREATE EXTENSION amcheck SCHEMA dbbackup_amcheck",
        ) {
            self.notes.borrow_mut().push(format!(
                "amcheck skipped: the extension cannot be installed ({})",
                db_message(&e)
            ));
            return Ok(None);
        }
        let checked = check_btree_indexes(&mut tx, quick);
        tx.rollback()
            .map_err(|e| restore_error(&self.db.name, db_message(&e)))?;
        checked.map(Some)
    }
}

/// Index after index; a failed check is a problem, and the transaction goes on past it (a
/// savepoint per index).
fn check_btree_indexes(client: &mut postgres::Transaction, quick: bool) -> Result<Vec<String>> {
    let indexes = client
        .query(
            "SELECT c.oid, c.oid::regclass::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
             WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready \
               AND c.relpersistence <> 't' ORDER BY 2",
            &[],
        )
        .map_err(|e| {
            restore_error(
                "the restored copy",
                format!("listing indexes for amcheck: {}", db_message(&e)),
            )
        })?;
    let indexes: Vec<(postgres::types::Oid, String)> =
        indexes.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut problems = Vec::new();
    for (oid, name) in &indexes {
        let mut savepoint = client.savepoint("dbbackup_amcheck_index").map_err(|e| {
            restore_error("the restored copy", format!("amcheck: {}", db_message(&e)))
        })?;
        let checked = savepoint.execute(
            "SELECT dbbackup_amcheck.bt_index_check($1::oid::regclass, $2)",
            &[oid, &!quick],
        );
        match checked {
            // Dropping the savepoint rolls back to it, which ends the failed check's error.
            Err(e) => problems.push(format!("{name}: {}", db_message(&e))),
            Ok(_) => savepoint.commit().map_err(|e| {
                restore_error("the restored copy", format!("amcheck: {}", db_message(&e)))
            })?,
        }
    }
    Ok(problems)
}

impl Scratch for PostgresScratch {
    fn integrity(&self, quick: bool) -> Result<Vec<IntegrityCheck>> {
        // Reaching here means psql/pg_restore ran the whole dump with stop-on-error.
        let mut checks = vec![IntegrityCheck {
            name: "restore_ran_clean".into(),
            problems: Vec::new(),
        }];
        // The description on connections of its own, one per core (two to four): amcheck
        // often ends first, and the description's big tables are cut into block ranges.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut describing = self.connections(cores.clamp(2, 4));
        let name = self.db.name.clone();
        let rows = self.rows.clone();
        let (amchecked, described) = std::thread::scope(|scope| {
            let described = scope.spawn(move || {
                let began = Instant::now();
                let (first, helpers) = describing.split_first_mut()?;
                let described = (rows.describe(first, helpers))
                    .map_err(|e| restore_error(&name, db_message(&e)));
                debug!("copy described in {:.2}s", began.elapsed().as_secs_f64());
                Some(described)
            });
            let began = Instant::now();
            let amchecked = self.amcheck(quick);
            debug!("amcheck ran {:.2}s", began.elapsed().as_secs_f64());
            let described = described
                .join()
                .map_err(|_| Error::Internal("the describing thread panicked".into()));
            (amchecked, described)
        });
        // Without a connection of its own (the server refused it), `describe` runs on ours.
        *self.described.borrow_mut() = described?;
        if let Some(problems) = amchecked? {
            checks.push(IntegrityCheck {
                name: "amcheck".into(),
                problems,
            });
        }
        Ok(checks)
    }

    fn describe(&self) -> Result<Snapshot> {
        if let Some(described) = self.described.borrow_mut().take() {
            return described;
        }
        let mut helpers = self.helpers();
        let client = &mut *self.client.borrow_mut();
        (self.rows.describe(client, &mut helpers))
            .map_err(|e| restore_error(&self.db.name, db_message(&e)))
    }

    fn notes(&self) -> Vec<String> {
        self.notes.borrow().clone()
    }

    fn schema_checksum_may_differ(&self) -> Option<String> {
        self.upgrade.as_ref().map(|u| {
            format!(
                "the copy runs on PostgreSQL {} and the source on {}, whose deparsers may print \
                 the same definitions differently",
                u.target, u.source
            )
        })
    }

    /// `target` is a `postgres://` URL of a database on the scratch's own server: the
    /// verified database is renamed to it, so what lands is exactly what was tested.
    fn persist(self: Box<Self>, target: &Path, overwrite: bool) -> Result<()> {
        let url = target
            .to_str()
            .filter(|u| is_postgres_url(u))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "restore a PostgreSQL backup to a postgres:// URL, not {}",
                    target.display()
                ))
            })?;
        let wanted = ConnInfo::parse(url)?;
        let PostgresScratch { client, db, .. } = *self;
        if (wanted.host.as_str(), wanted.port) != (db.admin.host.as_str(), db.admin.port) {
            return Err(Error::Usage(format!(
                "{} is on another server than the restored copy ({}:{}): the copy is renamed \
                 into place, so restore it on the target's server",
                wanted.display(),
                db.admin.host,
                db.admin.port
            )));
        }
        drop(client);
        db.keep_as(&wanted.dbname, overwrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_machine_itself_is_loopback() {
        for host in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "localhost",
            "/run/postgresql",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "db.example.com",
            "localhost.example.com",
            "::2",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_setting_the_target_lacks_is_skipped_only_there() {
        let dump = "SET lock_timeout = 0;\n\
                    SET transaction_timeout = 0;\n\
                    COPY public.t (a) FROM stdin;\n\
                    SET transaction_timeout = 0;\n\
                    \\.\n";
        assert_eq!(unknown_settings(160004), ["transaction_timeout"]);
        assert!(unknown_settings(170000).is_empty());
        let mut out = Vec::new();
        let unknown = unknown_settings(130000);
        let Feed::Done(skipped) = feed_without_owners(&mut dump.as_bytes(), &mut out, &unknown)
        else {
            panic!("feeding failed");
        };
        assert_eq!(skipped.settings, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SET lock_timeout = 0;\n\
             COPY public.t (a) FROM stdin;\n\
             SET transaction_timeout = 0;\n\
             \\.\n"
        );
    }

    #[test]
    fn owner_lines_are_skipped_outside_copy_data_only() {
        let dump = "CREATE TABLE public.t (a text);\n\
                    ALTER TABLE public.t OWNER TO nobody_here;\n\
                    COPY public.t (a) FROM stdin;\n\
                    ALTER TABLE public.t OWNER TO data;\n\
                    \\.\n\
                    ALTER FUNCTION public.f() OWNER TO nobody_here;\n";
        let mut out = Vec::new();
        let Feed::Done(skipped) = feed_without_owners(&mut dump.as_bytes(), &mut out, &[]) else {
            panic!("feeding failed");
        };
        assert_eq!(skipped.owners, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CREATE TABLE public.t (a text);\n\
             COPY public.t (a) FROM stdin;\n\
             ALTER TABLE public.t OWNER TO data;\n\
             \\.\n"
        );
    }
}
