//! MySQL and MariaDB: `mariadb-dump`/`mysqldump` for the dump, our own connection for the
//! manifest, both reading one snapshot (see [`sync`] for how the two are made the same).
//!
//! Our connection uses the synchronous `mysql` crate, as the PostgreSQL engine uses the
//! synchronous `postgres` crate: a handful of sequential queries next to one subprocess needs
//! no async runtime, and the crate speaks the protocol itself (no libmysqlclient to link).
//!
//! Restore tests restore into a scratch database `dbbackup_scratch_<pid>_<random>` on a target
//! server with the source's character set and collation, and drop it again when the scratch
//! is dropped, on failure and on Ctrl-C/SIGTERM as well.

pub mod conn;
mod copysum;
pub mod describe;
pub mod dumpsum;
mod early;
mod feed;
mod scratch;
mod sync;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use tracing::warn;

use super::tool::{Running, Tool};
use super::{
    Dumped, Engine, RestoreTarget, Restorer, Scratch, SnapshotCheck, Source, SourceOptions, Total,
};
use crate::archive::Format;
use crate::archive::manifest::{EngineInfo, Snapshot};
use crate::archive::naming::sanitize_stem;
use crate::error::{Error, Result};
use conn::{ConnInfo, db_message};

pub use conn::is_mysql_url;
pub use scratch::MysqlScratch;

const MARIADB_HINT: &str = "install the MariaDB client tools (Debian/Ubuntu: apt-get install \
     mariadb-client; Alpine: apk add mariadb-client; macOS: brew install mariadb)";
const MYSQL_HINT: &str = "install the MySQL client tools (Debian/Ubuntu: apt-get install \
     default-mysql-client or mysql-client; macOS: brew install mysql-client)";

pub const MARIADB_DUMP: Tool = Tool {
    name: "mariadb-dump",
    install_hint: MARIADB_HINT,
};
pub const MYSQLDUMP: Tool = Tool {
    name: "mysqldump",
    install_hint: MYSQL_HINT,
};
pub const MARIADB: Tool = Tool {
    name: "mariadb",
    install_hint: MARIADB_HINT,
};
pub const MYSQL: Tool = Tool {
    name: "mysql",
    install_hint: MYSQL_HINT,
};

/// The options of every dump whose rows are summed, the backup's and the restore test's dump of
/// its copy: each decides how a row's text is printed (blobs in hex, text in utf8mb4, TIMESTAMP
/// values in UTC) or the form the parser relies on (quoted names, `LOCK TABLES` around each
/// table's rows). All are the tools' defaults or were always passed; they are named so that an
/// option file (`[mysqldump]` in `~/.my.cnf`) cannot make the two sides print rows apart.
pub const DATA_OPTIONS: [&str; 7] = [
    "--single-transaction",
    "--hex-blob",
    "--default-character-set=utf8mb4",
    "--tz-utc",
    "--quote-names",
    "--add-locks",
    "--skip-dump-date",
];

/// MySQL's mysqldump: no GTID state, and no column statistics (which a MariaDB server lacks,
/// and a restore does not need).
pub const MYSQLDUMP_OPTIONS: [&str; 2] = ["--set-gtid-purged=OFF", "--column-statistics=0"];

/// The dump tool (`mariadb-dump` for MariaDB, else `mysqldump`) for `conn`, with the options
/// every dump whose rows are summed shares ([`DATA_OPTIONS`], [`MYSQLDUMP_OPTIONS`]) and
/// `what` (what to dump besides the rows); the database name is the caller's to add.
pub(crate) fn dump_command(
    conn: &ConnInfo,
    options: &conn::OptionFile,
    mariadb: bool,
    what: &[&str],
) -> std::process::Command {
    let tool = if mariadb { &MARIADB_DUMP } else { &MYSQLDUMP };
    let mut command = conn.command(tool, options);
    command.args(DATA_OPTIONS).args(what);
    if !mariadb {
        command.args(MYSQLDUMP_OPTIONS);
    }
    command
}

/// How long we wait for the global read lock when no `--timeout` bounds the backup: long
/// enough for a busy server, short enough that a stuck one does not stall writers for long
/// (writers queue behind a waiting FLUSH TABLES WITH READ LOCK).
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The registry's entry for MySQL and MariaDB.
pub struct MysqlEngine;

pub static ENGINE: MysqlEngine = MysqlEngine;

impl Engine for MysqlEngine {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn takes(&self, source: &str) -> bool {
        is_mysql_url(source)
    }

    fn redact(&self, source: &str) -> String {
        conn::redact(source)
    }

    /// Plain SQL only: `gunzip -c F | mariadb DB` restores it.
    fn formats(&self) -> &'static [(Format, &'static str)] {
        &[(Format::Sql, "sql")]
    }

    fn open(&self, source: &str, opts: &SourceOptions) -> Result<Box<dyn Source>> {
        let conn = ConnInfo::parse(source)?;
        if conn.dbname.is_empty() {
            return Err(Error::Usage(format!(
                "{}: name the database to back up (mysql://USER@HOST:PORT/DB)",
                conn.display()
            )));
        }
        Ok(Box::new(Mysql {
            conn,
            timeout: opts.timeout,
        }))
    }

    fn restore_server(&self, target: &str) -> Option<String> {
        is_mysql_url(target).then(|| server_url(target))
    }

    fn refuse_existing_target(&self, target: &str) -> Result<()> {
        let wanted = ConnInfo::parse(target)?;
        let mut server = wanted.with_dbname("");
        server.role = "restore server";
        let exists: u64 = server
            .connect(None)?
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                describe::literal(&wanted.dbname)
            ))
            .map_err(|e| server.error(db_message(&e)))?
            .unwrap_or(0);
        match exists > 0 {
            true => Err(Error::Usage(format!(
                "database '{}' already exists on {}: pass --force to replace it",
                wanted.dbname,
                server.endpoint()
            ))),
            false => Ok(()),
        }
    }

    fn restorer(&self, target: &RestoreTarget) -> Result<Box<dyn Restorer>> {
        let source = target.source_server();
        let mut conn = match (target.into, source) {
            (Some(into), _) => ConnInfo::parse(into)?,
            (None, Some(source)) => ConnInfo::parse(source)?,
            (None, None) => ConnInfo::parse("mysql://")?,
        }
        .with_dbname("");
        conn.role = "restore server";
        Ok(Box::new(MysqlRestorer {
            conn,
            properties: target.manifest.snapshot.properties.clone(),
            rows: describe::Rows::of(&target.manifest.snapshot.checksum_algorithm),
            definitions: has_definitions(&target.manifest.snapshot.objects),
        }))
    }
}

/// The same server and login (password included) without the database.
fn server_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path("");
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// A MySQL or MariaDB database to back up.
pub struct Mysql {
    conn: ConnInfo,
    timeout: Option<Duration>,
}

impl Mysql {
    fn timeout_error(&self, tool: &str) -> Error {
        self.conn.error(format!(
            "the backup did not finish within --timeout {}s: {tool} was stopped",
            self.timeout.map_or(0, |t| t.as_secs())
        ))
    }

    fn spawn_dump(
        &self,
        tool: &Tool,
        mariadb: bool,
        options: &conn::OptionFile,
    ) -> Result<std::process::Child> {
        let mut command = dump_command(
            &self.conn,
            options,
            mariadb,
            &["--routines", "--triggers", "--events", "--no-tablespaces"],
        );
        command
            .arg("--")
            .arg(&self.conn.dbname)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tool.spawn(&mut command)
    }
}

impl Source for Mysql {
    fn engine(&self) -> &'static dyn Engine {
        &ENGINE
    }

    fn stem(&self) -> String {
        sanitize_stem(&self.conn.dbname)
    }

    fn display(&self) -> String {
        self.conn.display()
    }

    fn dump(
        &self,
        format: Format,
        _check: SnapshotCheck,
        out: &mut dyn Write,
        work_dir: &Path,
        expect: &dyn Fn(Total),
    ) -> Result<Dumped> {
        if format != Format::Sql {
            return Err(Error::Usage(format!(
                "a MySQL backup is sql, never {format}"
            )));
        }
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut conn = self.conn.connect(self.timeout)?;
        let fail = |e: mysql::Error| self.conn.error(db_message(&e));
        conn.query_drop(describe::SESSION_SETTINGS).map_err(fail)?;
        let version: String = conn
            .query_first("SELECT VERSION()")
            .map_err(fail)?
            .unwrap_or_default();
        let mariadb = version.contains("MariaDB");
        let tool = if mariadb { MARIADB_DUMP } else { MYSQLDUMP };
        let tool_version = tool.version()?;
        // The tables' data size, an estimate of the dump's (SQL text is often larger; indexes
        // are left out, as the dump has no index data). Only the progress bar uses it.
        match conn.exec_first::<u64, _, _>(
            "SELECT CAST(COALESCE(SUM(data_length), 0) AS UNSIGNED) \
             FROM information_schema.tables WHERE table_schema = ?",
            (&self.conn.dbname,),
        ) {
            Ok(Some(bytes)) => expect(Total::about(bytes)),
            Ok(None) => {}
            Err(e) => tracing::debug!("no size estimate for the progress bar: {e}"),
        }
        let non_tx = describe::non_transactional(&mut conn, &self.conn.dbname).map_err(fail)?;
        if !non_tx.is_empty() {
            warn!(
                "tables not in a transactional engine cannot be part of a consistent snapshot \
                 (their rows may differ between the dump and the manifest if written during the \
                 backup): {}",
                non_tx.join(", ")
            );
        }
        let options = self.conn.option_file()?;
        // The rows are counted and checksummed from the dump's own text (`dumpsum`): no
        // connection reads them a second time.
        let before =
            sync::lock_and_snapshot(&mut conn, &self.conn, self.timeout.unwrap_or(LOCK_WAIT))?;
        let mut child = match self.spawn_dump(&tool, mariadb, &options) {
            Ok(child) => child,
            Err(e) => {
                let _ = conn.query_drop("UNLOCK TABLES");
                return Err(e);
            }
        };
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let db = self.conn.dbname.clone();
        let (info, tool_ref) = (&self.conn, &tool);
        // The dump's output is read from the start, while another thread waits for its
        // snapshot and then describes ours: a dump left blocked on a full pipe can sit idle
        // with its transaction not listed in INNODB_TRX (seen with MariaDB 10.11: a small
        // database's dump wrote 64 KiB, then waited on the pipe until the wait gave up after
        // 60 s), so nothing may stop reading it.
        let (outcome, copied) = std::thread::scope(|s| {
            let describing = s.spawn(move || {
                let synced =
                    sync::await_dump_snapshot(&mut conn, info, &mut child, tool_ref.name, before);
                if synced.is_err() {
                    // Its failure is the cause: stop the dump, so the copy ends too.
                    let _ = child.kill();
                }
                let running = Running::watch(tool_ref, child, deadline);
                let described = synced.map(|()| {
                    let described =
                        describe::describe(&mut conn, &mut [], &db, describe::Rows::FromDump)
                            .and_then(|snapshot| {
                                describe::dumped_tables(&mut conn, &db)
                                    .map(|listed| (snapshot, listed))
                                    .map_err(|e| db_message(&e))
                            });
                    let _ = conn.query_drop("ROLLBACK");
                    described
                });
                (described, running)
            });
            let mut sums = dumpsum::DumpSums::new();
            let copied = dumpsum::copy_summing(&mut stdout, out, &mut sums);
            drop(stdout);
            (describing.join(), (copied, sums))
        });
        let (described, running) = outcome
            .map_err(|_| Error::Internal("the thread describing the snapshot panicked".into()))?;
        let (copied, sums) = copied;
        let finished = running.finish()?;
        // The synchronisation's failure comes first: the dump's own failure after it (killed,
        // or "Got errno 32 on write") must not hide it.
        let described = described?;
        if finished.timed_out {
            return Err(self.timeout_error(tool.name));
        }
        copied.map_err(|e| Error::output("write backup into", work_dir, e))?;
        if !finished.status.success() {
            let stderr = match finished.stderr.as_str() {
                "" => "it printed nothing",
                text => text,
            };
            return Err(self.conn.error(format!(
                "{} failed ({}): {stderr}",
                tool.name, finished.status
            )));
        }
        let (mut snapshot, listed): (Snapshot, _) = described.map_err(|e| self.conn.error(e))?;
        let sections = sums.finish().map_err(|e| {
            self.conn.error(format!(
                "cannot count and checksum the rows of {}'s output: {e}",
                tool.name
            ))
        })?;
        describe::fill_from_dump(&mut snapshot, &listed, sections).map_err(|e| {
            self.conn.error(format!(
                "{}'s output does not hold the tables of its snapshot: {e}",
                tool.name
            ))
        })?;
        Ok(Dumped {
            engine: EngineInfo {
                name: "mysql".into(),
                version,
                dump_tool: Some(tool_version),
                dump_tool_path: None,
            },
            snapshot,
        })
    }
}

/// Up to [`describe::CHECKSUM_CONNECTIONS`] - 1 more connections to `info`'s database with the
/// description's session settings, one fewer than `tables`; those that fail to open are
/// left out (the checksums are then computed on fewer connections, the same values).
pub(super) fn helpers(
    info: &ConnInfo,
    timeout: Option<Duration>,
    tables: usize,
) -> Vec<mysql::Conn> {
    let wanted = tables.min(describe::CHECKSUM_CONNECTIONS).saturating_sub(1);
    (0..wanted)
        .filter_map(|_| {
            let opened = info.connect(timeout).and_then(|mut conn| {
                conn.query_drop(describe::SESSION_SETTINGS)
                    .map(|()| conn)
                    .map_err(|e| info.error(db_message(&e)))
            });
            opened
                .map_err(|e| tracing::debug!("a checksum connection is left out: {e}"))
                .ok()
        })
        .collect()
}

/// Restores MySQL dumps into scratch databases on one server.
pub struct MysqlRestorer {
    /// The server to restore on (no database).
    conn: ConnInfo,
    /// The source's character set and collation, from the manifest.
    properties: std::collections::BTreeMap<String, String>,
    /// How the manifest's rows were counted.
    rows: describe::Rows,
    /// The manifest lists views, triggers, routines or events ([`has_definitions`]).
    definitions: bool,
}

/// Whether the source had views, triggers, routines or events. Their definitions in the dump
/// are not the plain data dump whose tables can be checked while the restore loads the next
/// ones ([`early`]): the first of them would throw away every early result and have all
/// tables checked again after the restore, so such a restore checks after it from the start
/// rather than checking twice on the cores the restore needs.
fn has_definitions(objects: &[crate::archive::manifest::SchemaObject]) -> bool {
    objects.iter().any(|o| {
        matches!(
            o.kind.as_str(),
            "view" | "view columns" | "trigger" | "procedure" | "function" | "event"
        )
    })
}

impl MysqlRestorer {
    /// [`Restorer::restore`], with the scratch's own type.
    pub fn restore_scratch_db(&self, format: Format, dump: &mut dyn Read) -> Result<MysqlScratch> {
        if format != Format::Sql {
            return Err(Error::Usage(format!(
                "a MySQL backup is sql, never {format}"
            )));
        }
        MysqlScratch::restore(
            &self.conn,
            &self.properties,
            self.rows,
            self.definitions,
            dump,
        )
    }
}

impl Restorer for MysqlRestorer {
    fn restore(
        &self,
        format: Format,
        dump: &mut dyn Read,
        _work_dir: &Path,
    ) -> Result<Box<dyn Scratch>> {
        Ok(Box::new(self.restore_scratch_db(format, dump)?))
    }
}
