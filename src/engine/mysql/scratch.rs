//! A backup restored into a scratch database, its checks, and `dbbackup restore`'s move of
//! the verified copy into the user's database.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mysql::prelude::Queryable;
use tracing::{debug, info, warn};

use super::conn::{ConnInfo, db_message, error_code};
use super::copysum::{Sections, dump_sums, restore_error};
use super::describe::{self, Rows, literal, quote_ident, rows};
use super::early::{self, Boundaries, Early};
use super::feed::{Feed, feed};
use super::{MARIADB, MYSQL};
use crate::archive::manifest::Snapshot;
use crate::cleanup;
use crate::engine::scratch;
use crate::engine::tool::Running;
use crate::engine::{IntegrityCheck, Scratch};
use crate::error::{Error, Result};

/// A scratch database on the target server, dropped when this is dropped, and by the signal
/// handler of [`crate::cleanup`] when the process is interrupted.
struct ScratchDb {
    admin: ConnInfo,
    name: String,
    _dropped_by: cleanup::Guard,
}

impl ScratchDb {
    fn create(admin: &ConnInfo, properties: &BTreeMap<String, String>) -> Result<Self> {
        let name = scratch::new_name();
        let mut conn = admin.connect(None)?;
        sweep_abandoned(admin, &mut conn);
        // Registered before it exists: an interrupt while it is being created still drops it.
        let dropped_by = {
            let (admin, name) = (admin.clone(), name.clone());
            cleanup::register(move || drop_database(&admin, &name))
        };
        conn.query_drop(create_sql(&name, properties))
            .map_err(|e| {
                // ER_DBACCESS_DENIED_ERROR: no CREATE privilege on the scratch database's name.
                if error_code(&e) == Some(1044) {
                    return admin.error(scratch::may_not_create(
                        &admin.user,
                        "the CREATE privilege",
                        "mysql://USER@HOST:PORT",
                    ));
                }
                admin.error(format!(
                    "cannot create scratch database {name}: {}",
                    db_message(&e)
                ))
            })?;
        Ok(Self {
            admin: admin.clone(),
            name,
            _dropped_by: dropped_by,
        })
    }
}

fn create_sql(name: &str, properties: &BTreeMap<String, String>) -> String {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
    if let Some(cs) = properties.get("character_set").filter(|c| !c.is_empty()) {
        sql.push_str(&format!(" CHARACTER SET {}", literal(cs)));
    }
    if let Some(coll) = properties.get("collation").filter(|c| !c.is_empty()) {
        sql.push_str(&format!(" COLLATE {}", literal(coll)));
    }
    sql
}

/// Drops the scratch databases that runs on this machine left when they were killed (a SIGKILL
/// runs no handler); another machine's, or a live run's, are never touched (see
/// `engine::scratch`).
fn sweep_abandoned(admin: &ConnInfo, conn: &mut mysql::Conn) {
    let Ok(names) = conn.query::<String, _>(format!(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '{}%'",
        scratch::PREFIX.replace('_', "\\_")
    )) else {
        return;
    };
    for name in names.into_iter().filter(|n| scratch::abandoned_here(n)) {
        tracing::info!(
            "dropping scratch database {name}: the run that made it on this machine is gone"
        );
        drop_database(admin, &name);
    }
}

fn drop_database(admin: &ConnInfo, name: &str) {
    let began = std::time::Instant::now();
    let sql = format!("DROP DATABASE IF EXISTS {}", quote_ident(name));
    // Bounded: this also runs in the Ctrl-C handler, which must not hang on a dead server.
    let dropped = admin
        .connect(Some(Duration::from_secs(10)))
        .and_then(|mut c| c.query_drop(&sql).map_err(|e| admin.error(db_message(&e))));
    if let Err(e) = dropped {
        warn!("could not drop scratch database {name} ({e}): drop it by hand with {sql}");
    }
    debug!("dropped scratch database {name} in {:.2?}", began.elapsed());
}

/// The thread checking tables while the restore runs ([`early`]), joined when dropped: it is
/// done before the scratch database is dropped, on every path.
struct Worker(Option<std::thread::JoinHandle<Option<Early>>>);

impl Worker {
    /// What it checked; `None` when it checked nothing that counts.
    fn join(&mut self) -> Option<Early> {
        self.0.take().and_then(|h| h.join().ok()).flatten()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.join();
    }
}

/// A backup restored into a scratch database. Fields drop in order: the early checks end and
/// our connection closes before the database is dropped.
pub struct MysqlScratch {
    early: RefCell<Worker>,
    /// The account may open only so many connections (`MAX_USER_CONNECTIONS`): no checks
    /// beside the restore or beside each other, which could leave the dump tool refused.
    limited: bool,
    conn: RefCell<mysql::Conn>,
    notes: Vec<String>,
    /// How the manifest's rows were counted, so the copy's are counted the same way.
    rows: Rows,
    /// The target server's `VERSION()`.
    version: String,
    /// The copy's rows summed from its dump while `CHECK TABLE` ran, for `describe`.
    sums: RefCell<Option<Result<Sections>>>,
    db: ScratchDb,
}

impl MysqlScratch {
    pub(super) fn restore(
        admin: &ConnInfo,
        properties: &BTreeMap<String, String>,
        rows: Rows,
        definitions: bool,
        dump: &mut dyn Read,
    ) -> Result<Self> {
        let began = std::time::Instant::now();
        let db = ScratchDb::create(admin, properties)?;
        debug!(
            "created scratch database {} in {:.2?}",
            db.name,
            began.elapsed()
        );
        let target = admin.with_dbname(&db.name);
        let mut conn = target.connect(None)?;
        let version: String = conn
            .query_first("SELECT VERSION()")
            .map_err(|e| restore_error(&db.name, db_message(&e)))?
            .unwrap_or_default();
        let tool = if version.contains("MariaDB") {
            MARIADB
        } else {
            MYSQL
        };
        let limited = conn
            .query_first::<u64, _>("SELECT @@max_user_connections")
            .ok()
            .flatten()
            .is_none_or(|n| n > 0);
        let checking_early = rows == Rows::FromDump && !limited && !definitions;
        if definitions {
            debug!(
                "tables checked after the restore: the backup has views, triggers, routines or \
                 events, whose definitions end a plain data dump"
            );
        }
        let options = target.option_file()?;
        let mut command = target.command(&tool, &options);
        command
            .arg("--default-character-set=utf8mb4")
            // The client strips comments from what it sends unless told: a routine, trigger or
            // event body written with comments would be restored without them, and the schema
            // check would fail a faithful backup.
            .arg("--comments")
            .arg("--batch")
            .arg(format!("--database={}", db.name))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if checking_early {
            // Each marker's result printed as soon as it is known, as the bare value.
            command
                .arg("--unbuffered")
                .arg("--skip-column-names")
                .stdout(Stdio::piped());
        }
        let mut child = tool.spawn(&mut command)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let (mut worker, mut boundaries) = (Worker(None), None);
        if let Some(output) = child.stdout.take() {
            let nonce = format!("loaded into {}", db.name);
            let (events, received) = std::sync::mpsc::channel();
            let watching = (nonce.clone(), events.clone());
            std::thread::spawn(move || early::watch_output(output, watching.0, watching.1));
            let (target, version) = (target.clone(), version.clone());
            worker = Worker(Some(std::thread::spawn(move || {
                early::check_while_loading(&target, &version, received)
            })));
            boundaries = Some(Boundaries::new(&nonce, events));
        }
        let running = Running::watch(&tool, child, None);
        let began = std::time::Instant::now();
        let fed = feed(dump, &mut stdin, boundaries.as_mut());
        drop(boundaries);
        drop(stdin);
        debug!("fed the dump to {} in {:.2?}", tool.name, began.elapsed());
        let finished = running.finish()?;
        debug!("{} finished in {:.2?}", tool.name, began.elapsed());
        let rewritten = match fed {
            Feed::ReadFailed(e) => {
                return Err(Error::unreadable(
                    PathBuf::from("the backup"),
                    format!("reading the dump failed: {e}"),
                ));
            }
            Feed::Refused(line, text) => {
                return Err(restore_error(
                    &db.name,
                    format!(
                        "line {line} of the dump switches to or creates another database \
                         ({text}); a dump of one database never does, and obeying it could \
                         write outside the scratch database"
                    ),
                ));
            }
            _ if !finished.status.success() => {
                return Err(restore_error(
                    &db.name,
                    format!(
                        "{} stopped at the first error ({}): {}",
                        tool.name, finished.status, finished.stderr
                    ),
                ));
            }
            Feed::WriteFailed(e) => {
                return Err(restore_error(
                    &db.name,
                    format!("{} stopped reading the dump: {e}", tool.name),
                ));
            }
            Feed::Done(n) => n,
        };
        info!("restored into scratch database {}", target.display());
        conn.query_drop(describe::SESSION_SETTINGS)
            .map_err(|e| restore_error(&db.name, db_message(&e)))?;
        let notes = vec![format!(
            "restored with DEFINER clauses rewritten to CURRENT_USER: {rewritten} rewritten, \
             views, routines, triggers and events are defined by '{}' (definers missing on the \
             target do not fail the restore)",
            target.user
        )];
        Ok(Self {
            early: RefCell::new(worker),
            limited,
            conn: RefCell::new(conn),
            notes,
            rows,
            version,
            sums: RefCell::new(None),
            db,
        })
    }

    pub fn database(&self) -> &str {
        &self.db.name
    }

    /// Connections to the scratch database beside ours, one fewer than its `tables`, up to
    /// [`describe::CHECKSUM_CONNECTIONS`] in all: nothing else writes it, so all see the same
    /// rows.
    fn helpers(&self, tables: usize) -> Vec<mysql::Conn> {
        super::helpers(&self.db.admin.with_dbname(&self.db.name), None, tables)
    }

    /// `CHECK TABLE` of every table but those in `checked` (already checked, EXTENDED).
    fn check_tables(&self, quick: bool, checked: &BTreeSet<String>) -> Result<Vec<String>> {
        let began = std::time::Instant::now();
        let mut conn = self.conn.borrow_mut();
        let fail = |e: mysql::Error| restore_error(&self.db.name, db_message(&e));
        let mut tables = describe::data_tables(&mut *conn, &self.db.name).map_err(fail)?;
        tables.retain(|t| !checked.contains(t));
        let mut helpers = self.helpers(tables.len());
        let mut conns: Vec<&mut mysql::Conn> =
            std::iter::once(&mut *conn).chain(&mut helpers).collect();
        let mode = if quick { "QUICK" } else { "EXTENDED" };
        let order: Vec<usize> = (0..tables.len()).collect();
        // One table a statement, on several connections at once; the same checks as one
        // statement naming them all.
        let db = quote_ident(&self.db.name);
        let checked = describe::in_parallel(&mut conns, &tables, &order, |conn, table| {
            let sql = format!("CHECK TABLE {db}.{} {mode}", quote_ident(table));
            rows(conn, &sql).map_err(|e| db_message(&e))
        })
        .map_err(|e| restore_error(&self.db.name, e))?;
        debug!(
            "CHECK TABLE {mode} of {} tables in {:.2?}",
            tables.len(),
            began.elapsed()
        );
        Ok(early::problems(checked))
    }
}

impl Scratch for MysqlScratch {
    /// The rows are dumped and summed for [`Scratch::describe`] while `CHECK TABLE` runs: both
    /// only read the copy, and the server's cores are not all busy with the checks (the largest
    /// table's is one statement on one connection). Not for an account with a connection limit
    /// (`MAX_USER_CONNECTIONS`), whose checks could leave the dump tool refused: it is then
    /// dumped afterwards, by `describe`.
    fn integrity(&self, quick: bool) -> Result<Vec<IntegrityCheck>> {
        let target = self.db.admin.with_dbname(&self.db.name);
        let version = self.version.clone();
        let early = self.early.borrow_mut().join().unwrap_or_default();
        // The tables left to dump (none: all were checked early, or nothing was and the whole
        // database is dumped).
        let mut left = Vec::new();
        if !early.checked.is_empty() {
            let mut conn = self.conn.borrow_mut();
            left = describe::dumped_tables(&mut *conn, &self.db.name)
                .map_err(|e| restore_error(&self.db.name, db_message(&e)))?
                .into_iter()
                .map(|(name, _)| name)
                .filter(|name| !early.checked.contains(name))
                .collect();
        }
        let dump_left = early.checked.is_empty() || !left.is_empty();
        let (problems, sums) = std::thread::scope(|s| {
            let dumping = (self.rows == Rows::FromDump && !self.limited && dump_left)
                .then(|| s.spawn(|| dump_sums(&target, &version, &left)));
            let problems = self.check_tables(quick, &early.checked);
            (problems, dumping.map(|d| d.join()))
        });
        let sums = match sums {
            Some(sums) => Some(sums.map_err(|_| {
                Error::Internal("the thread summing the copy's rows panicked".into())
            })?),
            None => (!early.checked.is_empty()).then(|| Ok(BTreeMap::new())),
        };
        if let Some(sums) = sums {
            *self.sums.borrow_mut() = Some(sums.map(|mut s| {
                s.extend(early.sums);
                s
            }));
        }
        let mut problems = problems?;
        problems.extend(early.problems);
        // Reaching here means the client ran the whole dump, stopping at any error.
        Ok(vec![
            IntegrityCheck {
                name: "restore_ran_clean".into(),
                problems: Vec::new(),
            },
            IntegrityCheck {
                name: "check_table".into(),
                problems,
            },
        ])
    }

    fn describe(&self) -> Result<Snapshot> {
        let mut conn = self.conn.borrow_mut();
        let mut helpers = match self.rows {
            Rows::ServerMd5 => {
                let tables = describe::data_tables(&mut *conn, &self.db.name)
                    .map_err(|e| restore_error(&self.db.name, db_message(&e)))?;
                self.helpers(tables.len())
            }
            Rows::FromDump => Vec::new(),
        };
        let target = self.db.admin.with_dbname(&self.db.name);
        let sums = self.sums.borrow_mut().take();
        describe_db(
            &mut conn,
            &mut helpers,
            &target,
            self.rows,
            &self.version,
            sums,
        )
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    /// `target` is a `mysql://` URL of a database on the scratch's own server. MySQL cannot
    /// rename a database, so the verified tables are moved into it with one `RENAME TABLE`
    /// (atomic, no data copied), and its views, routines, triggers and events are created there
    /// from the scratch's own `SHOW CREATE` output; then the target is described and must equal
    /// the verified copy. With `overwrite`, an existing target is dropped first.
    fn persist(self: Box<Self>, target: &Path, overwrite: bool) -> Result<()> {
        let url = target
            .to_str()
            .filter(|u| super::is_mysql_url(u))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "restore a MySQL backup to a mysql:// URL, not {}",
                    target.display()
                ))
            })?;
        let wanted = ConnInfo::parse(url)?;
        if wanted.dbname.is_empty() {
            return Err(Error::Usage(format!(
                "{}: name the database to restore into",
                wanted.display()
            )));
        }
        if wanted.endpoint() != self.db.admin.endpoint() {
            return Err(Error::Usage(format!(
                "{} is on another server than the restored copy ({}): restore it on the \
                 target's server",
                wanted.display(),
                self.db.admin.endpoint()
            )));
        }
        let verified = self.describe()?;
        let admin = &self.db.admin;
        let fail = |e: mysql::Error| {
            admin.error(format!(
                "cannot move the restored database to '{}': {}",
                wanted.dbname,
                db_message(&e)
            ))
        };
        let mut conn = self.conn.borrow_mut();
        let exists: u64 = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                literal(&wanted.dbname)
            ))
            .map_err(fail)?
            .unwrap_or(0);
        if exists > 0 && !overwrite {
            return Err(Error::Usage(format!(
                "database '{}' already exists on {}: pass --force to replace it",
                wanted.dbname,
                admin.endpoint()
            )));
        }
        let scratch = self.db.name.as_str();
        let creates = show_creates(&mut conn, scratch).map_err(fail)?;
        let tables = describe::data_tables(&mut *conn, scratch).map_err(fail)?;
        if exists > 0 {
            conn.query_drop(format!("DROP DATABASE {}", quote_ident(&wanted.dbname)))
                .map_err(fail)?;
        }
        conn.query_drop(create_sql(&wanted.dbname, &verified.properties))
            .map_err(fail)?;
        for (kind, name, _, _) in creates.iter().filter(|c| c.0 == "TRIGGER") {
            conn.query_drop(format!(
                "DROP {kind} {}.{}",
                quote_ident(scratch),
                quote_ident(name)
            ))
            .map_err(fail)?;
        }
        if !tables.is_empty() {
            let moves: Vec<String> = tables
                .iter()
                .map(|t| {
                    format!(
                        "{}.{} TO {}.{}",
                        quote_ident(scratch),
                        quote_ident(t),
                        quote_ident(&wanted.dbname),
                        quote_ident(t)
                    )
                })
                .collect();
            conn.query_drop(format!("RENAME TABLE {}", moves.join(", ")))
                .map_err(fail)?;
        }
        conn.query_drop(format!("USE {}", quote_ident(&wanted.dbname)))
            .map_err(fail)?;
        let qualifier = format!("{}.", quote_ident(scratch));
        // Views may use views: create what can be created until nothing more can.
        let mut pending: Vec<&(String, String, String, String)> = creates.iter().collect();
        loop {
            let before = pending.len();
            let mut last_error = None;
            pending.retain(|(_, _, context, create)| {
                let sql = create.replace(&qualifier, "");
                let done = conn.query_drop(context).and_then(|_| conn.query_drop(&sql));
                match done {
                    Ok(()) => false,
                    Err(e) => {
                        last_error = Some(e);
                        true
                    }
                }
            });
            if pending.is_empty() {
                break;
            }
            if pending.len() == before {
                return Err(fail(last_error.expect("a create failed")));
            }
        }
        conn.query_drop(describe::SESSION_SETTINGS).map_err(fail)?;
        let landed = describe_db(
            &mut conn,
            &mut [],
            &admin.with_dbname(&wanted.dbname),
            self.rows,
            &self.version,
            None,
        )?;
        if landed.schema_checksum != verified.schema_checksum || landed.tables != verified.tables {
            return Err(Error::Verify {
                object: format!("restore into database {}", wanted.dbname),
                reason: "the moved database differs from the verified copy".into(),
            });
        }
        Ok(())
    }
}

/// Describes database `target.dbname` (through `conn`, connected to it, and `helpers`) with
/// its rows counted as `rows` says: by the server, or from a data-only dump of it by the same
/// tool and data options as a backup's (`dumpsum`), whose rows hash the same as the backup's
/// when they are the same; `sums`: that dump's sums, when they were taken already.
fn describe_db(
    conn: &mut mysql::Conn,
    helpers: &mut [mysql::Conn],
    target: &ConnInfo,
    rows: Rows,
    version: &str,
    sums: Option<Result<Sections>>,
) -> Result<Snapshot> {
    let db = &target.dbname;
    let fail = |e: String| restore_error(db, e);
    let began = std::time::Instant::now();
    let mut snapshot = describe::describe(conn, helpers, db, rows).map_err(fail)?;
    debug!("described the schema of {db} in {:.2?}", began.elapsed());
    if rows == Rows::FromDump {
        let listed = describe::dumped_tables(conn, db).map_err(|e| fail(db_message(&e)))?;
        let sections = match sums {
            Some(sums) => sums?,
            None => dump_sums(target, version, &[])?,
        };
        describe::fill_from_dump(&mut snapshot, &listed, sections).map_err(fail)?;
    }
    Ok(snapshot)
}

/// (kind, name, the session settings it was created under, CREATE statement) of every view, routine, trigger and event, from
/// `SHOW CREATE`, routines first (views and triggers may call them), events last.
fn show_creates(
    conn: &mut mysql::Conn,
    db: &str,
) -> std::result::Result<Vec<(String, String, String, String)>, mysql::Error> {
    let s = literal(db);
    let mut objects = Vec::new();
    let named =
        |conn: &mut mysql::Conn, sql: String| -> std::result::Result<Vec<String>, mysql::Error> {
            Ok(rows(conn, &sql)?
                .into_iter()
                .map(|mut r| r.remove(0))
                .collect())
        };
    let q = quote_ident(db);
    for kind in ["PROCEDURE", "FUNCTION"] {
        for name in named(
            conn,
            format!(
                "SELECT ROUTINE_NAME FROM information_schema.ROUTINES \
                 WHERE ROUTINE_SCHEMA = {s} AND ROUTINE_TYPE = '{kind}'"
            ),
        )? {
            // Name, sql_mode, Create ...
            let r = rows(
                conn,
                &format!("SHOW CREATE {kind} {q}.{}", quote_ident(&name)),
            )?;
            let context = context(&r[0][1], None, &r[0][3], &r[0][4]);
            objects.push((kind.to_string(), name, context, r[0][2].clone()));
        }
    }
    for name in named(
        conn,
        format!("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {s}"),
    )? {
        // View, Create View, character_set_client, collation_connection
        let r = rows(
            conn,
            &format!("SHOW CREATE VIEW {q}.{}", quote_ident(&name)),
        )?;
        let context = context("", None, &r[0][2], &r[0][3]);
        objects.push(("VIEW".to_string(), name, context, r[0][1].clone()));
    }
    for name in named(
        conn,
        format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {s} \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER"
        ),
    )? {
        // Trigger, sql_mode, SQL Original Statement, ...
        let r = rows(
            conn,
            &format!("SHOW CREATE TRIGGER {q}.{}", quote_ident(&name)),
        )?;
        let context = context(&r[0][1], None, &r[0][3], &r[0][4]);
        objects.push(("TRIGGER".to_string(), name, context, r[0][2].clone()));
    }
    for name in named(
        conn,
        format!("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {s}"),
    )? {
        // Event, sql_mode, time_zone, Create Event, ...
        let r = rows(
            conn,
            &format!("SHOW CREATE EVENT {q}.{}", quote_ident(&name)),
        )?;
        let context = context(&r[0][1], Some(&r[0][2]), &r[0][4], &r[0][5]);
        objects.push(("EVENT".to_string(), name, context, r[0][3].clone()));
    }
    Ok(objects)
}

/// The session settings an object was created under (`SHOW CREATE` reports them), which it
/// keeps: recreated under others, it would differ from the verified copy.
fn context(sql_mode: &str, time_zone: Option<&String>, client: &str, collation: &str) -> String {
    let mut sql = format!(
        "SET SESSION sql_mode = {}, character_set_client = {}, collation_connection = {}",
        literal(sql_mode),
        literal(client),
        literal(collation)
    );
    if let Some(tz) = time_zone {
        sql.push_str(&format!(", time_zone = {}", literal(tz)));
    }
    sql
}
