//! Makes our connection's snapshot and the dump tool's the same one.
//!
//! MySQL cannot export a snapshot to another connection as PostgreSQL does, so we do what
//! `mysqldump --single-transaction --master-data` does for its binary-log position, with two
//! connections: ours takes `FLUSH TABLES WITH READ LOCK` (no transaction can commit while it
//! is held) and starts its `REPEATABLE READ` consistent snapshot; then the dump tool starts
//! and takes its own (`--single-transaction`); once it has, we release the lock. Both
//! snapshots were taken while nothing could commit, so they hold the same rows, and our
//! description of ours describes exactly what the dump writes.
//!
//! Knowing when the dump's snapshot exists: its connection shows up in
//! `information_schema.INNODB_TRX` with `REPEATABLE READ` only after its
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` (the statements before it touch no InnoDB
//! table). We tell its connection apart by the TCP port its socket has (read from
//! `/proc/<pid>/fd` and `/proc/<pid>/net/tcp*`), which the server shows as `host:port` in
//! `PROCESSLIST`. Over a Unix socket there is no port: then we wait until every connection of
//! our user opened after we started the tool is in such a transaction, which can only be
//! fooled by another client of the same user opening a transaction in those milliseconds.
//!
//! The rows themselves are counted and checksummed from the dump's own output (`dumpsum`), so
//! no other connection needs the snapshot; ours describes the schema in it.
//!
//! Privileges: `RELOAD` (the read lock) and `PROCESS` (`INNODB_TRX`). Without them the backup
//! fails and says which one is missing: a manifest that might not describe the dump would make
//! every later restore test meaningless, so there is no weaker mode.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use super::conn::{ConnInfo, db_message, error_code};
use super::describe::{literal, rows};
use crate::error::Result;

/// How long we hold the global read lock waiting for the dump's snapshot before giving up.
const DUMP_START_LIMIT: Duration = Duration::from_secs(60);

/// The statements that start a connection's snapshot.
const START_SNAPSHOT: &str = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
     START TRANSACTION WITH CONSISTENT SNAPSHOT";

/// Takes the global read lock and starts our snapshot; returns the highest connection id that
/// existed then (the dump's will be higher).
pub fn lock_and_snapshot(
    conn: &mut mysql::Conn,
    info: &ConnInfo,
    lock_wait: Duration,
) -> Result<u64> {
    conn.query_drop(format!(
        "SET SESSION lock_wait_timeout = {}",
        lock_wait.as_secs().max(1)
    ))
    .map_err(|e| info.error(db_message(&e)))?;
    if let Err(e) = conn.query_drop("FLUSH TABLES WITH READ LOCK") {
        return Err(info.error(match error_code(&e) {
            Some(1227) | Some(1044) | Some(1045) => format!(
                "user '{}' lacks the RELOAD privilege, which the backup needs for a moment to \
                 start the dump's snapshot and its own together (FLUSH TABLES WITH READ LOCK): \
                 GRANT RELOAD, PROCESS ON *.* TO the user ({})",
                info.user,
                db_message(&e)
            ),
            Some(1205) => format!(
                "the global read lock was not granted within {}s: a long statement or a \
                 LOCK TABLES holds tables; retry, or raise --timeout ({})",
                lock_wait.as_secs(),
                db_message(&e)
            ),
            _ => db_message(&e),
        }));
    }
    let started = conn.query_drop(START_SNAPSHOT).and_then(|()| {
        conn.query_first::<u64, _>("SELECT IFNULL(MAX(ID), 0) FROM information_schema.PROCESSLIST")
    });
    match started {
        Ok(max) => Ok(max.unwrap_or(0)),
        Err(e) => {
            let _ = conn.query_drop("UNLOCK TABLES");
            Err(info.error(db_message(&e)))
        }
    }
}

/// Waits until the dump tool (process `child`) has started its consistent snapshot, then
/// releases the global read lock. `before`: the highest connection id before it started.
pub fn await_dump_snapshot(
    conn: &mut mysql::Conn,
    info: &ConnInfo,
    child: &mut std::process::Child,
    tool: &str,
    before: u64,
) -> Result<()> {
    let waited = wait(conn, info, child, tool, before);
    let unlocked = conn.query_drop("UNLOCK TABLES");
    waited?;
    unlocked.map_err(|e| info.error(db_message(&e)))
}

fn wait(
    conn: &mut mysql::Conn,
    info: &ConnInfo,
    child: &mut std::process::Child,
    tool: &str,
    before: u64,
) -> Result<()> {
    let limit = Instant::now() + DUMP_START_LIMIT;
    let sql = format!(
        "SELECT p.HOST, IFNULL(t.trx_isolation_level, '') FROM information_schema.PROCESSLIST p \
         LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
         WHERE p.ID > {before} AND p.USER = {}",
        literal(&info.user)
    );
    let mut port = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // A dump that ended well while the lock was held took its whole snapshot in it.
            // One that failed: its own error says why (the caller reads its stderr).
            return match status.success() {
                true => Ok(()),
                false => Err(info.error(format!("{tool} ended early ({status})"))),
            };
        }
        if info.socket.is_none() && port.is_none() {
            port = tcp_port(child.id());
        }
        let found = rows(conn, &sql).map_err(|e| {
            info.error(match error_code(&e) {
                Some(1227) => format!(
                    "user '{}' lacks the PROCESS privilege, which the backup needs to see when \
                     {tool}'s snapshot has started (information_schema.INNODB_TRX): GRANT \
                     RELOAD, PROCESS ON *.* TO the user ({})",
                    info.user,
                    db_message(&e)
                ),
                _ => db_message(&e),
            })
        })?;
        let in_snapshot = |r: &Vec<String>| r[1] == "REPEATABLE READ";
        let done = match port {
            Some(port) => {
                let suffix = format!(":{port}");
                found
                    .iter()
                    .any(|r| r[0].ends_with(&suffix) && in_snapshot(r))
            }
            None if info.socket.is_some() => {
                let local: Vec<&Vec<String>> =
                    found.iter().filter(|r| !r[0].contains(':')).collect();
                !local.is_empty() && local.iter().all(|r| in_snapshot(r))
            }
            None => false,
        };
        if done {
            return Ok(());
        }
        if Instant::now() > limit {
            return Err(info.error(format!(
                "{tool}'s snapshot was not seen to start within {}s (is the server reached \
                 through a proxy that hides the client's port?)",
                DUMP_START_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The local TCP port of the (first) connected TCP socket process `pid` holds.
fn tcp_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() > 9 && fields[3] == "01" && inodes.iter().any(|i| i == fields[9]) {
                let port = fields[1].rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}
