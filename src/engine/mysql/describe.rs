//! Describes a MySQL/MariaDB database for the manifest, the same way on the source (inside the
//! dump's snapshot) and on a restored copy, so the restore test can compare them.
//!
//! - Schema: tables (engine, collation, comment, every column with its type, nullability,
//!   default, extra such as `auto_increment` or `VIRTUAL GENERATED`, generation expression,
//!   character set and collation), indexes (FULLTEXT and SPATIAL included), foreign keys, check
//!   constraints, views, routines with their parameters, triggers and events, read from
//!   `information_schema` and hashed in a stable order. Definers are left out (a restore test
//!   rewrites them to the current user), and so are `AUTO_INCREMENT` positions: they are not
//!   transactional (a rolled-back insert advances them), so no snapshot can pin them. The
//!   database's own name is removed from view definitions, which the server qualifies with it.
//! - Data, for backups since `mysql-dump-xxh3-sum-v1`: per table the count and sum of the
//!   row hashes of the dump's own `INSERT` tuples, summed as the dump streams by (`dumpsum`),
//!   so the server reads each row once, for the dump; this module describes the rest
//!   ([`Rows::FromDump`]) and fills the tables in from the stream ([`fill_from_dump`]).
//! - Data, for older backups (`mysql-md5-64-sum-v1`, still restore-tested the way they were
//!   written, [`Rows::ServerMd5`]): per table `COUNT(*)` and the sum of a 64-bit hash of each
//!   row, computed by the server: the first 16 hex digits of `MD5` over the row's canonical bytes, where each column
//!   is `length:bytes` of `CAST(col AS BINARY)` (the text of numbers and dates, the raw bytes of
//!   strings in their column's character set, of BIT and binary) or `-` for NULL; BLOB, TEXT,
//!   JSON and spatial columns enter by their own MD5, which bounds the row's size however large
//!   they are (a `CONCAT` past `max_allowed_packet` would be NULL). A sum does not depend on row
//!   order, and `SUM` over integers is exact (`DECIMAL`). Rows whose hash came out NULL are
//!   counted apart and fail the description rather than silently dropping out of the sum. Not
//!   `CHECKSUM TABLE`, whose value depends on the row format and server version.
//!   Text depends on session settings, so both sides pin them ([`SESSION_SETTINGS`]).
//! - Cost: the hash is evaluated once per row (MariaDB and MySQL do not share a repeated
//!   expression: the first version named it twice, in `COUNT` and `SUM`, and a large column's
//!   `MD5` twice more, in `LENGTH` and the value, which doubled the server's work); the NULL
//!   rows are counted by a marker added into the same `SUM` ([`NULL_MARKER`]). The values are
//!   the same as the first version's, so the algorithm's name did not change. Tables are
//!   checksummed on several connections at once ([`CHECKSUM_CONNECTIONS`]): on a restored
//!   copy nothing else writes the scratch database. (Backups with these checksums took them
//!   on the source on connections whose snapshots opened under the dump's global read lock.)

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::archive::compress::hex;
use crate::archive::manifest::{SchemaObject, Snapshot, TableStats};

/// The server-side checksums of backups before `dumpsum`'s.
pub const MD5_ALGORITHM: &str = "mysql-md5-64-sum-v1";

/// Where a description's per-table rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Counted and hashed by the server ([`MD5_ALGORITHM`]).
    ServerMd5,
    /// Summed from a dump of the same rows ([`super::dumpsum::ALGORITHM`]): left empty here,
    /// filled in by [`fill_from_dump`].
    FromDump,
}

impl Rows {
    /// The kind a manifest's `checksum_algorithm` names: the server's for old backups, the
    /// dump's otherwise.
    pub fn of(algorithm: &str) -> Self {
        match algorithm {
            MD5_ALGORITHM => Rows::ServerMd5,
            _ => Rows::FromDump,
        }
    }
}

/// Settings that row text depends on (and no server-wide statement limit), pinned on both
/// sides.
pub const SESSION_SETTINGS: &str = "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', NAMES utf8mb4, \
     time_zone = '+00:00', group_concat_max_len = 1073741824; \
     /*M!100100 SET SESSION max_statement_time = 0 */";

/// How many connections compute the per-table counts and checksums at once (never more than
/// there are tables). The work is the server's CPU: more than its cores gains nothing.
pub const CHECKSUM_CONNECTIONS: usize = 4;

/// Added into a table's `SUM` for each row whose hash is NULL, so one pass gives both the sum
/// and the number of NULL hashes: each hash is below 2^64 < 1.85e19, so the sum of the others
/// stays below the marker for any table of fewer than 5e20 rows; the sum's digits above the 40
/// lowest count the NULL rows.
const NULL_MARKER: &str = "10000000000000000000000000000000000000000";

/// Column types whose values enter a row's hash by their own MD5: they may be larger than
/// `max_allowed_packet` once concatenated.
const LARGE_TYPES: [&str; 17] = [
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "json",
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
];

/// Engines whose tables take part in a consistent snapshot.
const TRANSACTIONAL: [&str; 3] = ["InnoDB", "RocksDB", "TokuDB"];

/// Describes database `db` through `conn`, in whatever transaction it is in; `helpers`
/// (connections to the same server that see the same rows as `conn`) checksum tables in
/// parallel with it.
pub fn describe(
    conn: &mut mysql::Conn,
    helpers: &mut [mysql::Conn],
    db: &str,
    data: Rows,
) -> Result<Snapshot, String> {
    let q = |e: mysql::Error| super::conn::db_message(&e);
    let mut objects = definitions(conn, db).map_err(q)?;
    objects.sort();
    let mut hasher = Sha256::new();
    for (kind, name, def) in &objects {
        for field in [kind, name, def] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
    }
    let (tables, algorithm) = match data {
        Rows::FromDump => (Vec::new(), super::dumpsum::ALGORITHM),
        Rows::ServerMd5 => {
            let names = data_tables(conn, db).map_err(q)?;
            let order = largest_first(conn, db, &names).map_err(q)?;
            let mut conns: Vec<&mut mysql::Conn> =
                std::iter::once(&mut *conn).chain(helpers).collect();
            let tables = in_parallel(&mut conns, &names, &order, |conn, table| {
                table_stats(conn, db, table)
            })?;
            (tables, MD5_ALGORITHM)
        }
    };
    Ok(Snapshot {
        checksum_algorithm: algorithm.into(),
        schema_checksum: hex(&hasher.finalize()),
        objects: objects
            .into_iter()
            .map(|(kind, name, _)| SchemaObject { kind, name })
            .collect(),
        tables,
        properties: properties(conn, db).map_err(q)?,
        not_compared: NOT_COMPARED.iter().map(|s| s.to_string()).collect(),
    })
}

/// What no MySQL restore test compares, and why (see the module docs).
const NOT_COMPARED: [&str; 3] = [
    "AUTO_INCREMENT positions (not transactional: no snapshot pins them)",
    "definers (the restore test rewrites them to its own user)",
    "users and grants (a database's dump carries none)",
];

/// The tables a dump writes rows of (base tables, MariaDB's system-versioned ones too), each
/// with its engine, by name.
pub fn dumped_tables(
    conn: &mut impl Queryable,
    db: &str,
) -> Result<Vec<(String, String)>, mysql::Error> {
    rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, IFNULL(ENGINE, '') FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = {} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') \
             ORDER BY 1",
            literal(db)
        ),
    )
    .map(|r| {
        r.into_iter()
            .map(|mut r| (r.remove(0), r.remove(0)))
            .collect()
    })
}

/// Fills a [`Rows::FromDump`] description's tables in: `listed` (from [`dumped_tables`], read
/// in the same snapshot as the dump) with the rows summed from the dump's data sections. Tables
/// whose rows no dump carries (MERGE, FEDERATED) are named in `not_compared`.
pub fn fill_from_dump(
    snapshot: &mut Snapshot,
    listed: &[(String, String)],
    sections: BTreeMap<String, crate::engine::rowsum::RowSum>,
) -> Result<(), String> {
    let (tables, not_dumped) = super::dumpsum::table_stats(listed, sections)?;
    snapshot.tables = tables;
    if !not_dumped.is_empty() {
        snapshot.not_compared.push(format!(
            "rows of {} (MERGE or FEDERATED: the dump carries no rows of theirs; a MERGE \
             table's rows are its underlying tables')",
            not_dumped.join(", ")
        ));
    }
    Ok(())
}

/// Base tables whose engine is not transactional (MyISAM, Aria, MEMORY, ...): a consistent
/// snapshot cannot cover them.
pub fn non_transactional(conn: &mut impl Queryable, db: &str) -> Result<Vec<String>, mysql::Error> {
    let engines = TRANSACTIONAL.map(literal).join(", ");
    rows(
        conn,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
             AND TABLE_TYPE = 'BASE TABLE' AND ENGINE NOT IN ({engines}) ORDER BY 1",
            literal(db)
        ),
    )
    .map(|r| r.into_iter().map(|mut r| r.remove(0)).collect())
}

/// The indexes of `names` (base tables of `db`), largest table first by the server's estimate
/// of its data size: started first, the longest checksum does not end last alone.
fn largest_first(
    conn: &mut impl Queryable,
    db: &str,
    names: &[String],
) -> Result<Vec<usize>, mysql::Error> {
    let sizes: BTreeMap<String, u64> = rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, IFNULL(DATA_LENGTH, 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
            literal(db)
        ),
    )?
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap_or(0)))
    .collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes.get(&names[i]).copied().unwrap_or(0)));
    Ok(order)
}

/// Runs `work` for each of `items` on the connections `conns`, each connection taking the next
/// item of `order` when it is free; the results in the order of `items`. The first error (in
/// `items`' order) is returned; once one is seen no new item is started.
pub fn in_parallel<T: Send>(
    conns: &mut [&mut mysql::Conn],
    items: &[String],
    order: &[usize],
    work: impl Fn(&mut mysql::Conn, &str) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<T, String>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for conn in conns.iter_mut() {
            let (next, results, work) = (&next, &results, &work);
            s.spawn(move || {
                loop {
                    let at = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = order.get(at) else { break };
                    let result = work(conn, &items[i]);
                    if result.is_err() {
                        next.store(order.len(), Ordering::SeqCst);
                    }
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for (i, slot) in results.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(result) => out.push(result?),
            None => {
                return Err(format!("{}: not reached (an earlier one failed)", items[i]));
            }
        }
    }
    Ok(out)
}

/// Base tables, the ones whose rows are data.
pub fn data_tables(conn: &mut impl Queryable, db: &str) -> Result<Vec<String>, mysql::Error> {
    rows(
        conn,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
             AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
            literal(db)
        ),
    )
    .map(|r| r.into_iter().map(|mut r| r.remove(0)).collect())
}

/// (kind, name, definition) of every schema object of `db`.
fn definitions(
    conn: &mut impl Queryable,
    db: &str,
) -> Result<Vec<(String, String, String)>, mysql::Error> {
    let s = literal(db);
    let mut objects = Vec::new();
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, \
               IFNULL(CONCAT('default ', COLUMN_DEFAULT), 'no default'), EXTRA, \
               IFNULL(GENERATION_EXPRESSION, ''), IFNULL(CHARACTER_SET_NAME, ''), \
               IFNULL(COLLATION_NAME, ''), COLUMN_COMMENT) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {s} \
             ORDER BY TABLE_NAME, ORDINAL_POSITION"
        ),
    )? {
        columns.entry(r[0].clone()).or_default().push(r[1].clone());
    }
    for r in rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, ''), IFNULL(TABLE_COLLATION, ''), \
               TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {s}"
        ),
    )? {
        let cols = columns.remove(&r[0]).unwrap_or_default().join(", ");
        if r[1] == "VIEW" {
            // The view's own definition is added below; its columns are part of it.
            objects.push(("view columns".into(), r[0].clone(), cols));
        } else {
            let def = format!(
                "{} engine {} collate {} comment {} ({cols})",
                r[1], r[2], r[3], r[4]
            );
            objects.push(("table".into(), r[0].clone(), def));
        }
    }
    let mut indexes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, INDEX_NAME, CONCAT_WS(' ', NON_UNIQUE, INDEX_TYPE, \
               IFNULL(COLUMN_NAME, ''), IFNULL(SUB_PART, ''), IFNULL(COLLATION, ''), \
               INDEX_COMMENT) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {s} \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
        ),
    )? {
        indexes
            .entry((r[0].clone(), r[1].clone()))
            .or_default()
            .push(r[2].clone());
    }
    for ((table, index), parts) in indexes {
        objects.push(("index".into(), format!("{table}.{index}"), parts.join(", ")));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, CONCAT_WS(' ', \
               GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION), 'references', \
               IF(k.REFERENCED_TABLE_SCHEMA = k.TABLE_SCHEMA, '', k.REFERENCED_TABLE_SCHEMA), \
               k.REFERENCED_TABLE_NAME, \
               GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION), \
               'on update', r.UPDATE_RULE, 'on delete', r.DELETE_RULE) \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
              AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = {s} AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             GROUP BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.REFERENCED_TABLE_SCHEMA, \
               k.REFERENCED_TABLE_NAME, r.UPDATE_RULE, r.DELETE_RULE"
        ),
    )? {
        objects.push((
            "foreign key".into(),
            format!("{}.{}", r[0], r[1]),
            r[2].clone(),
        ));
    }
    // MariaDB names the table of a check constraint; MySQL 8 does not (its names are unique
    // per schema).
    let checks = rows(
        conn,
        &format!(
            "SELECT CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME), CHECK_CLAUSE \
             FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = {s}"
        ),
    )
    .or_else(|_| {
        rows(
            conn,
            &format!(
                "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = {s}"
            ),
        )
    })?;
    for r in checks {
        objects.push(("check".into(), r[0].clone(), r[1].clone()));
    }
    let qualifier = format!("{}.", quote_ident(db));
    for r in rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, CONCAT_WS(' ', VIEW_DEFINITION, 'check', CHECK_OPTION, \
               'security', SECURITY_TYPE) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {s}"
        ),
    )? {
        objects.push(("view".into(), r[0].clone(), r[1].replace(&qualifier, "")));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT LOWER(r.ROUTINE_TYPE), r.ROUTINE_NAME, CONCAT_WS(' | ', \
               (SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, \
                    p.DTD_IDENTIFIER) ORDER BY p.ORDINAL_POSITION SEPARATOR ', ') \
                  FROM information_schema.PARAMETERS p WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA \
                   AND p.SPECIFIC_NAME = r.SPECIFIC_NAME AND p.ROUTINE_TYPE = r.ROUTINE_TYPE \
                   AND p.ORDINAL_POSITION > 0), \
               IFNULL(r.DTD_IDENTIFIER, ''), r.ROUTINE_DEFINITION, r.IS_DETERMINISTIC, \
               r.SQL_DATA_ACCESS, r.SECURITY_TYPE, r.SQL_MODE, r.ROUTINE_COMMENT) \
             FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = {s}"
        ),
    )? {
        objects.push((r[0].clone(), r[1].clone(), r[2].clone()));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT TRIGGER_NAME, CONCAT_WS(' | ', EVENT_OBJECT_TABLE, ACTION_TIMING, \
               EVENT_MANIPULATION, ACTION_ORDER, ACTION_STATEMENT, SQL_MODE) \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {s}"
        ),
    )? {
        objects.push(("trigger".into(), r[0].clone(), r[1].clone()));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT EVENT_NAME, CONCAT_WS(' | ', EVENT_DEFINITION, EVENT_TYPE, \
               IFNULL(EXECUTE_AT, ''), IFNULL(INTERVAL_VALUE, ''), IFNULL(INTERVAL_FIELD, ''), \
               IFNULL(STARTS, ''), IFNULL(ENDS, ''), STATUS, ON_COMPLETION, SQL_MODE, \
               EVENT_COMMENT) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {s}"
        ),
    )? {
        objects.push(("event".into(), r[0].clone(), r[1].clone()));
    }
    Ok(objects)
}

fn table_stats(conn: &mut impl Queryable, db: &str, table: &str) -> Result<TableStats, String> {
    let q = |e: mysql::Error| super::conn::db_message(&e);
    let columns = rows(
        conn,
        &format!(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
            literal(db),
            literal(table)
        ),
    )
    .map_err(q)?;
    let hash = row_hash(&columns);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS CHAR), \
           CAST(IFNULL(SUM(IFNULL(CAST({hash} AS UNSIGNED), {NULL_MARKER})), 0) AS CHAR) \
         FROM {}.{}",
        quote_ident(db),
        quote_ident(table)
    );
    let r = rows(conn, &sql).map_err(q)?.remove(0);
    let rows_n: u64 = r[0].parse().unwrap_or_default();
    let (unhashed, checksum) = split_sum(&r[1]);
    if unhashed != "0" {
        return Err(format!(
            "table {table}: {unhashed} of {rows_n} rows could not be hashed (a row past \
             max_allowed_packet?)"
        ));
    }
    Ok(TableStats {
        name: table.to_string(),
        rows: rows_n,
        checksum,
    })
}

/// Splits a table's `SUM` (decimal digits) into the number of NULL hashes (the digits above
/// [`NULL_MARKER`]'s zeros) and the sum of the others, both without leading zeros.
fn split_sum(sum: &str) -> (String, String) {
    let low = NULL_MARKER.len() - 1;
    let (high, rest) = sum.split_at(sum.len().saturating_sub(low));
    let trim = |s: &str| match s.trim_start_matches('0') {
        "" => "0".to_string(),
        t => t.to_string(),
    };
    (trim(high), trim(rest))
}

/// The SQL expression of a row's 64-bit hash, as a decimal string (see the module's doc).
fn row_hash(columns: &[Vec<String>]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let col = quote_ident(&c[0]);
            if LARGE_TYPES.contains(&c[1].to_ascii_lowercase().as_str()) {
                // An MD5 is always 32 hex digits: the same bytes as `LENGTH(…)`, one MD5 less.
                format!("IFNULL(CONCAT('32:', MD5(CAST({col} AS BINARY))), '-')")
            } else {
                let value = format!("CAST({col} AS BINARY)");
                format!("IFNULL(CONCAT(LENGTH({value}), ':', {value}), '-')")
            }
        })
        .collect();
    format!("CONV(LEFT(MD5(CONCAT({})), 16), 16, 10)", parts.join(", "))
}

/// Database-level facts a faithful restore keeps.
fn properties(
    conn: &mut impl Queryable,
    db: &str,
) -> Result<BTreeMap<String, String>, mysql::Error> {
    let r = rows(
        conn,
        &format!(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
             FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            literal(db)
        ),
    )?;
    let mut props = BTreeMap::new();
    if let Some(r) = r.first() {
        props.insert("character_set".to_string(), r[0].clone());
        props.insert("collation".to_string(), r[1].clone());
    }
    let non_tx = non_transactional(conn, db)?;
    if !non_tx.is_empty() {
        props.insert("non_transactional_tables".to_string(), non_tx.join(", "));
    }
    Ok(props)
}

/// Runs a text-protocol query; every value as text (NULL as empty).
pub fn rows(conn: &mut impl Queryable, sql: &str) -> Result<Vec<Vec<String>>, mysql::Error> {
    let result: Vec<mysql::Row> = conn.query(sql)?;
    Ok(result
        .into_iter()
        .map(|row| row.unwrap().iter().map(text).collect())
        .collect())
}

fn text(value: &mysql::Value) -> String {
    match value {
        mysql::Value::NULL => String::new(),
        mysql::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        mysql::Value::Int(i) => i.to_string(),
        mysql::Value::UInt(u) => u.to_string(),
        other => other.as_sql(true),
    }
}

/// Quotes an identifier: backticks, doubled inside.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal, escaping `\` and `'` (valid whatever `NO_BACKSLASH_ESCAPES` is:
/// both sides pin `sql_mode`).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_the_row_hash() {
        assert_eq!(quote_ident("a`b c"), "`a``b c`");
        assert_eq!(literal("it's \\"), "'it''s \\\\'");
        let hash = row_hash(&[
            vec!["id".into(), "int".into()],
            vec!["doc".into(), "LONGBLOB".into()],
        ]);
        assert!(hash.contains("CAST(`id` AS BINARY)"), "{hash}");
        assert!(
            hash.contains("CONCAT('32:', MD5(CAST(`doc` AS BINARY)))"),
            "{hash}"
        );
        assert_eq!(hash.matches("MD5(").count(), 2, "each MD5 once: {hash}");
    }

    #[test]
    fn the_sum_splits_into_null_rows_and_the_checksum() {
        let split = |s: &str| {
            let (a, b) = split_sum(s);
            (a.to_string(), b.to_string())
        };
        assert_eq!(split("0"), ("0".into(), "0".into()));
        assert_eq!(
            split("16327596243594757285470"),
            ("0".into(), "16327596243594757285470".into())
        );
        // Two NULL hashes plus a sum of 5.
        assert_eq!(
            split(&format!("2{}5", "0".repeat(39))),
            ("2".into(), "5".into())
        );
        assert_eq!(
            split(&format!("1{}", "0".repeat(40))),
            ("1".into(), "0".into())
        );
    }
}
