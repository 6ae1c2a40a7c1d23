//! Describes a PostgreSQL database for the manifest, the same way on the source (inside the
//! dump's snapshot) and on a restored copy, so the restore test can compare them.
//!
//! - Schema: every object in user schemas (not `pg_catalog`, `information_schema`, `pg_toast`,
//!   nor objects that belong to an extension, which a restore recreates with
//!   `CREATE EXTENSION`; the extensions themselves are listed, without their versions, which
//!   follow the target server). The checksum hashes names and definitions printed by the server's
//!   own deparsers (`pg_get_viewdef`, `pg_get_functiondef`, `pg_get_indexdef`,
//!   `pg_get_constraintdef`, `format_type`...) with `search_path` empty, so every name is
//!   schema-qualified. Those are what `pg_dump` itself writes, so they survive a restore; oids,
//!   owners, attribute numbers and storage never enter the hash.
//! - Data: per table (and populated materialized view) `count(*)` and the sum of
//!   `hashtextextended(row::text, 0)` over all rows, computed by the server. A sum does not
//!   depend on row order (a restore reorders rows on disk) and `FROM ONLY` counts each
//!   inheritance child once, in its own table. `hashtextextended` is the 64-bit hash behind
//!   hash partitioning (PostgreSQL 11+), kept stable across releases because partitions depend
//!   on it. Over `md5` it cuts the manifest's cost about threefold (what remains is mostly the
//!   conversion of rows to text). It hashes the bytes in the database encoding and may
//!   differ between big- and little-endian servers, so a restore onto another architecture or
//!   encoding is reported as different. Row text depends on output settings, so both sides pin
//!   them (`TimeZone`, `DateStyle`, `extra_float_digits`, ...). Sequence positions are not data of
//!   the snapshot (sequences are not transactional) and are left out.
//! - Data of a plain-format backup of a UTF8 database ([`COPY_ALGORITHM`]): the ordinary
//!   tables' rows are not read a second time by the server; their counts and checksums are
//!   taken from the `COPY` data `pg_dump` writes (see [`super::copysum`]), and on a restored
//!   copy from the same `COPY … TO STDOUT` text (same columns, same output settings, which
//!   `pg_dump` pins but for `TimeZone`, `bytea_output` and `lc_monetary`: those are pinned for
//!   `pg_dump` to the session's own defaults and recorded as `row text <setting>`).
//!   Materialized views, partitions loaded through their root and extension data keep the
//!   server-side hash, on both sides alike.
//! - Speed: the row hashes are CPU-bound in one server process per query, so `describe` can
//!   spread them over helper connections that see the same rows (on the source, transactions
//!   that imported the dump's snapshot; on a restored copy, connections to it). A table of
//!   more than [`CHUNK_PAGES`] pages is cut into ranges of blocks (`ctid` ranges, read by a
//!   TID range scan on PostgreSQL 14+), whose counts and sums add up to the table's: every row
//!   version lives in exactly one block, so each row is still hashed exactly once. The restore
//!   test cuts ranges only with three cores or more (`range_pages` in the engine).

use std::collections::BTreeMap;

use postgres::GenericClient;
use sha2::{Digest, Sha256};

use crate::archive::compress::hex;
use crate::archive::manifest::{SchemaObject, Snapshot, TableStats};

use super::copysum::{CopyTable, RowLines};
use crate::engine::rowsum::RowSum;

pub const CHECKSUM_ALGORITHM: &str = "postgres-hashtextextended-sum-v1";

/// Ordinary tables' rows hashed from their `COPY` text (XXH3-128 per row, summed; see
/// [`crate::engine::rowsum`]); materialized views, partitions loaded through their root and
/// extension data as in [`CHECKSUM_ALGORITHM`].
pub const COPY_ALGORITHM: &str = "postgres-copy-xxh3-sum-v1";

/// `row text <setting>`: an output setting `pg_dump` leaves to the session's default, pinned
/// for it and for the restore test's `COPY` so both print rows alike.
pub const ROW_TEXT: &str = "row text ";
/// The settings [`ROW_TEXT`] pins: `pg_dump` itself sets `DateStyle`, `IntervalStyle`,
/// `extra_float_digits`, `search_path` and `client_encoding`.
pub const ROW_TEXT_SETTINGS: [&str; 3] = ["TimeZone", "bytea_output", "lc_monetary"];

/// The values of [`ROW_TEXT_SETTINGS`] both sides print rows with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowText {
    pub settings: BTreeMap<String, String>,
}

impl RowText {
    /// The settings a manifest recorded (only those named in [`ROW_TEXT_SETTINGS`]: a
    /// manifest is input).
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Self {
        let settings = properties
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(ROW_TEXT)?;
                ROW_TEXT_SETTINGS
                    .contains(&name)
                    .then(|| (name.to_string(), v.clone()))
            })
            .collect();
        Self { settings }
    }

    /// What the session `client` starts with (`reset_val`: server, database and role
    /// defaults), which is what `pg_dump`'s own session would get. `lc_monetary` only when a
    /// column holds `money` (see [`MONEY_SQL`]): a restore server may lack the locale, and
    /// without `money` the setting changes no row's text.
    pub fn of_session(client: &mut impl GenericClient) -> Result<Self, postgres::Error> {
        let names: Vec<String> = ROW_TEXT_SETTINGS.iter().map(|s| s.to_string()).collect();
        let rows = client.query(
            "SELECT name, reset_val FROM pg_catalog.pg_settings WHERE name = ANY($1)",
            &[&names],
        )?;
        let mut settings: BTreeMap<String, String> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let money: bool = client.query_one(MONEY_SQL, &[])?.get(0);
        if !money {
            settings.remove("lc_monetary");
        }
        Ok(Self { settings })
    }

    /// `-c name=value` for libpq's `options`, spaces and backslashes escaped as it wants.
    pub fn pg_options(&self) -> String {
        self.settings
            .iter()
            .map(|(k, v)| format!("-c {k}={}", v.replace('\\', "\\\\").replace(' ', "\\ ")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// [`SESSION_SETTINGS`] and these, for a session of its own ([`CopyReader`]), in UTF-8
    /// as our own connections read.
    fn setup_sql(&self) -> String {
        let mut sql = format!("SET client_encoding = 'UTF8'; {SESSION_SETTINGS}");
        for (name, value) in &self.settings {
            // Names from a fixed list (`from_properties`), values quoted.
            sql.push_str(&format!("; SET {name} = {}", quote_literal(value)));
        }
        sql
    }

    fn apply(&self, client: &mut impl GenericClient) -> Result<(), postgres::Error> {
        for (name, value) in &self.settings {
            client.execute(
                "SELECT pg_catalog.set_config($1, $2, false)",
                &[name, value],
            )?;
        }
        Ok(())
    }
}

/// Whether a column of a table holds `money`, directly or through arrays, domains, composite
/// types or ranges of it. Should a way be missed, `pg_dump` prints such values in its
/// session's `lc_monetary` and the restore test in `C`: the checksums differ and the restore
/// test fails, loudly, rather than the dump changing. The type graph is listed once as edges
/// (a type and what it is made of) and walked from `money`: the same walk written as one join
/// condition of ORs re-ran its subqueries for every pair of types, 1-1.6 s on an empty
/// database, more than Sakila's whole dump.
const MONEY_SQL: &str = "WITH RECURSIVE edges(child, parent) AS ( \
       SELECT t.oid, t.typelem FROM pg_catalog.pg_type t WHERE t.typelem <> 0 \
       UNION ALL SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.typbasetype <> 0 \
       UNION ALL SELECT r.rngtypid, r.rngsubtype FROM pg_catalog.pg_range r \
       UNION ALL SELECT (pg_catalog.to_jsonb(r) ->> 'rngmultitypid')::oid, r.rngtypid \
         FROM pg_catalog.pg_range r WHERE pg_catalog.to_jsonb(r) ? 'rngmultitypid' \
       UNION ALL SELECT t.oid, a.atttypid FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid \
         WHERE t.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped), \
     m(oid) AS (SELECT 'pg_catalog.money'::pg_catalog.regtype::oid \
       UNION SELECT e.child FROM edges e JOIN m ON e.parent = m.oid) \
     SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
       WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
         AND a.atttypid IN (SELECT oid FROM m))";

/// Back to [`SESSION_SETTINGS`]' values of [`ROW_TEXT_SETTINGS`] after a `COPY`.
const UNDO_ROW_TEXT: &str = "SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET lc_monetary = 'C'";

/// Where the ordinary tables' counts and checksums come from.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    /// `hashtextextended` computed by the server ([`CHECKSUM_ALGORITHM`]).
    Server,
    /// The dump's `COPY` data, summed by the caller ([`COPY_ALGORITHM`]): listed in
    /// [`Described::from_stream`], with empty stats until then.
    Stream(&'a RowText),
    /// `COPY … TO STDOUT` (a restored copy), with these settings, through `CopyReader` when
    /// there is one, else on the describing connection.
    Copy(&'a RowText, Option<CopyReader<'a>>),
}

/// Runs `setup` then `copy` (a `COPY … TO STDOUT`) in a session of its own on the same
/// database and sums the rows: `psql` (libpq) reads COPY data several times faster than the
/// `postgres` crate, which handles each row as a message of its own. `None` when it failed:
/// the same `COPY` then runs on the describing connection, which either reads the rows or
/// returns the server's error.
pub type CopyReader<'a> = &'a (dyn Fn(&str, &str) -> Option<RowSum> + Sync);

/// A description, with what the dump stream must fill in for [`Rows::Stream`].
#[derive(Debug)]
pub struct Described {
    pub snapshot: Snapshot,
    /// Index in `snapshot.tables` and the table whose COPY block gives its stats.
    pub from_stream: Vec<(usize, CopyTable)>,
    /// Tables whose COPY blocks the dump holds but the stats do not come from: extension
    /// configuration tables, partitions loaded through their root, and those roots.
    pub tolerated: Vec<(String, String)>,
}

/// Output settings that row text depends on, pinned on both sides.
pub const SESSION_SETTINGS: &str = "SET search_path = ''; SET TimeZone = 'UTC'; \
     SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; \
     SET bytea_output = 'hex'; SET lc_monetary = 'C'";

/// User schemas, as a CTE the queries below share.
const USER_NAMESPACES: &str = "WITH ext AS (SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'), \
     ns AS (SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n \
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
         AND (n.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass))) ";

/// (kind, name, definition) of every schema object.
const OBJECTS: &str = "
SELECT 'schema', nspname, '' FROM ns
UNION ALL
SELECT 'extension', e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
UNION ALL
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
         WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
         ELSE 'index' END,
       CASE WHEN ns.nspname ~ '[.\"]' THEN '\"' || replace(ns.nspname, '\"', '\"\"') || '\"' ELSE ns.nspname END || '.' || CASE WHEN c.relname ~ '[.\"]' THEN '\"' || replace(c.relname, '\"', '\"\"') || '\"' ELSE c.relname END,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid)
            WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)
            WHEN c.relkind = 'S' THEN (SELECT format('%s start %s increment %s min %s max %s cache %s cycle %s',
                 format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                 s.seqcache, s.seqcycle) FROM pg_sequence s WHERE s.seqrelid = c.oid)
            ELSE format('persistence %s (%s) constraints (%s) inherits (%s) %s %s', c.relpersistence,
                 (SELECT string_agg(format('%I %s%s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                     CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                     coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
                     CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END,
                     CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END), ', ' ORDER BY a.attnum)
                  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                 (SELECT string_agg(format('%I %s', k.conname, pg_get_constraintdef(k.oid)), ', ' ORDER BY k.conname)
                  FROM pg_constraint k WHERE k.conrelid = c.oid),
                 (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
                  FROM pg_inherits i WHERE i.inhrelid = c.oid),
                 coalesce('partition by ' || pg_get_partkeydef(c.oid), ''),
                 coalesce('for values ' || pg_get_expr(c.relpartbound, c.oid), ''))
       END
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
  AND c.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       CASE WHEN ns.nspname ~ '[.\"]' THEN '\"' || replace(ns.nspname, '\"', '\"\"') || '\"' ELSE ns.nspname END || '.' || CASE WHEN p.proname ~ '[.\"]' THEN '\"' || replace(p.proname, '\"', '\"\"') || '\"' ELSE p.proname END || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN p.prokind = 'a' THEN (SELECT format('sfunc %s stype %s finalfunc %s initcond %s',
                 g.aggtransfn::regproc, format_type(g.aggtranstype, NULL), g.aggfinalfn::regproc, g.agginitval)
                 FROM pg_aggregate g WHERE g.aggfnoid = p.oid)
            ELSE pg_get_functiondef(p.oid) END
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
WHERE p.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'trigger', CASE WHEN ns.nspname ~ '[.\"]' THEN '\"' || replace(ns.nspname, '\"', '\"\"') || '\"' ELSE ns.nspname END || '.' || CASE WHEN c.relname ~ '[.\"]' THEN '\"' || replace(c.relname, '\"', '\"\"') || '\"' ELSE c.relname END || '.' || CASE WHEN t.tgname ~ '[.\"]' THEN '\"' || replace(t.tgname, '\"', '\"\"') || '\"' ELSE t.tgname END, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'type', CASE WHEN ns.nspname ~ '[.\"]' THEN '\"' || replace(ns.nspname, '\"', '\"\"') || '\"' ELSE ns.nspname END || '.' || CASE WHEN t.typname ~ '[.\"]' THEN '\"' || replace(t.typname, '\"', '\"\"') || '\"' ELSE t.typname END,
       CASE t.typtype
         WHEN 'e' THEN 'enum ' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                  FROM pg_enum e WHERE e.enumtypid = t.oid)
         WHEN 'd' THEN format('domain %s%s%s %s', format_type(t.typbasetype, t.typtypmod),
                 CASE WHEN t.typnotnull THEN ' not null' ELSE '' END, coalesce(' default ' || t.typdefault, ''),
                 (SELECT string_agg(format('%I %s', k.conname, pg_get_constraintdef(k.oid)), ', ' ORDER BY k.conname)
                  FROM pg_constraint k WHERE k.contypid = t.oid))
         WHEN 'r' THEN 'range ' || (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid)
         ELSE 'composite ' || (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)),
                 ', ' ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
       END
FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
  AND t.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_type'::regclass)";

/// Tables whose rows are data: ordinary tables and populated materialized views. Partitioned
/// parents hold no rows of their own; their partitions are listed.
/// With each its kind and the columns `pg_dump` copies: not dropped, not generated
/// (PostgreSQL 12+), in order.
fn data_tables_sql(version: i32) -> String {
    let generated = match version >= 120000 {
        true => "AND a.attgenerated = ''",
        false => "",
    };
    format!(
        "{USER_NAMESPACES}
SELECT ns.nspname, c.relname, c.relpages, c.relkind::text,
  coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped {generated}),
           '{{}}'::text[])
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
  AND c.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
ORDER BY 1, 2"
    )
}

/// Tables larger than this many pages (32 MiB of 8 KiB pages) are hashed in block ranges of
/// this size when there are helper connections to share them.
pub const CHUNK_PAGES: i64 = 4096;

/// Describes the database `client` is connected to, in whatever transaction it is in. The
/// per-table counts and checksums are shared with `helpers`, connections that must see exactly
/// the rows `client` sees, with [`SESSION_SETTINGS`] set (none: all on `client`).
pub fn describe(
    client: &mut impl GenericClient,
    helpers: &mut [postgres::Client],
) -> Result<Snapshot, postgres::Error> {
    describe_in_chunks(client, helpers, CHUNK_PAGES)
}

/// [`describe`], cutting tables of more than `chunk_pages` pages into ranges of that many
/// blocks when there are helpers (the tests cut small tables).
pub fn describe_in_chunks(
    client: &mut impl GenericClient,
    helpers: &mut [postgres::Client],
    chunk_pages: i64,
) -> Result<Snapshot, postgres::Error> {
    Ok(describe_with(client, helpers, Some(chunk_pages), Rows::Server)?.snapshot)
}

/// [`describe_in_chunks`], with the ordinary tables' rows hashed as `rows` says; with
/// `chunk_pages` `None`, no table is cut: the connections share whole tables.
pub fn describe_with(
    client: &mut impl GenericClient,
    helpers: &mut [postgres::Client],
    chunk_pages: Option<i64>,
    rows: Rows,
) -> Result<Described, postgres::Error> {
    let mut objects = definitions(client)?;
    objects.sort();
    let mut hasher = Sha256::new();
    for (kind, name, def) in &objects {
        for field in [kind, name, def] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
    }
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])?
        .get(0);
    let rerouted = rerouted_partitions(client, version)?;
    let listed = client.query(&data_tables_sql(version), &[])?;
    let data_tables: Vec<(String, String, i32)> = listed
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // Which tables' rows come from COPY text: ordinary tables, unless their rows may land in
    // another partition on restore (pg_dump then loads them through the root).
    let copied: Vec<Option<Vec<String>>> = listed
        .iter()
        .zip(&data_tables)
        .map(|(r, (schema, table, _))| {
            let ordinary = r.get::<_, String>(3) == "r";
            let by_copy = !matches!(rows, Rows::Server)
                && ordinary
                && !rerouted.contains_key(&(schema.clone(), table.clone()));
            by_copy.then(|| r.get(4))
        })
        .collect();
    let streamed = |table: usize| matches!(rows, Rows::Stream(_)) && copied[table].is_some();
    // TID range scans came with PostgreSQL 14: before, a ctid range would read the whole table.
    let chunk_pages = chunk_pages
        .filter(|_| !helpers.is_empty() && version >= 140000)
        .map(|pages| pages.max(1));
    let work: Vec<Part> = work_list(&data_tables, chunk_pages)
        .into_iter()
        .filter(|p| !streamed(p.table))
        .collect();
    let mut merged: Vec<Option<TableStats>> = vec![None; data_tables.len()];
    let (text, reader) = match rows {
        Rows::Copy(text, reader) => (Some(text), reader),
        _ => (None, None),
    };
    let stats = share(
        client,
        helpers,
        &work,
        |c, p| match (&copied[p.table], text) {
            (Some(columns), Some(text)) => copy_stats(c, p, columns, text, reader),
            _ => part_stats(c, p),
        },
        |c, p| match (&copied[p.table], text) {
            (Some(columns), Some(text)) => copy_stats(c, p, columns, text, reader),
            _ => part_stats(c, p),
        },
    )?;
    for (part, stats) in work.iter().zip(stats) {
        let by_copy = copied[part.table].is_some();
        match &mut merged[part.table] {
            Some(whole) if by_copy => add_copy_stats(whole, &stats),
            Some(whole) => add_stats(whole, &stats),
            slot => *slot = Some(stats),
        }
    }
    let mut tables: Vec<TableStats> = Vec::new();
    let mut from_stream = Vec::new();
    let mut tolerated = Vec::new();
    for (i, ((schema, table, _), stats)) in data_tables.into_iter().zip(merged).enumerate() {
        if streamed(i) {
            from_stream.push((
                tables.len(),
                CopyTable {
                    schema: schema.clone(),
                    table: table.clone(),
                    columns: copied[i].clone().unwrap_or_default(),
                },
            ));
            tables.push(TableStats {
                name: qualified(&schema, &table),
                rows: 0,
                checksum: String::new(),
            });
            continue;
        }
        let stats = stats.expect("every table has a part");
        match rerouted.get(&(schema.clone(), table.clone())) {
            // Compared as the whole partitioned table: rows may land in other partitions.
            Some((root, root_key)) => {
                tolerated.push((schema, table));
                tolerated.push(root_key.clone());
                match tables.iter_mut().find(|t| &t.name == root) {
                    Some(whole) => add_stats(whole, &stats),
                    None => tables.push(TableStats {
                        name: root.clone(),
                        ..stats
                    }),
                }
            }
            None => tables.push(stats),
        }
    }
    let mut properties = properties(client, version)?;
    let algorithm = match rows {
        Rows::Server => CHECKSUM_ALGORITHM,
        Rows::Stream(text) | Rows::Copy(text, _) => {
            for row in client.query(EXTENSION_TABLES_SQL, &[])? {
                tolerated.push((row.get(0), row.get(1)));
            }
            for (name, value) in &text.settings {
                properties.insert(format!("{ROW_TEXT}{name}"), value.clone());
            }
            COPY_ALGORITHM
        }
    };
    let snapshot = Snapshot {
        checksum_algorithm: algorithm.into(),
        schema_checksum: hex(&hasher.finalize()),
        objects: objects
            .into_iter()
            .map(|(kind, name, _)| SchemaObject { kind, name })
            .collect(),
        tables,
        properties,
        not_compared: NOT_COMPARED
            .iter()
            .map(|s| s.to_string())
            .chain(xml_declarations(client)?)
            .collect(),
    };
    Ok(Described {
        snapshot,
        from_stream,
        tolerated,
    })
}

/// What no PostgreSQL restore test compares, and why (see the module docs).
const NOT_COMPARED: [&str; 4] = [
    "sequence positions (not transactional: no snapshot pins them)",
    "owners and privileges (the restore test restores without owners; GRANTs are not compared)",
    "storage parameters, tablespaces and statistics (layout, not content)",
    "roles and other objects outside the database (a database's dump carries none)",
];

/// Begins each `not_compared` entry about XML declarations, which the backup also warns of.
pub const XML_DECLARATIONS: &str = "the XML declaration of";

/// Columns of type `xml` holding values whose declaration (`<?xml version="1.0"
/// encoding="UTF-8"?>`) the server keeps but its output drops: `pg_dump` writes values through
/// that output in every format, so the restored documents lack it, and the row hash (also
/// over the output) cannot see the difference. The documents are otherwise equal and compared.
fn xml_declarations(client: &mut impl GenericClient) -> Result<Vec<String>, postgres::Error> {
    let columns = client.query(
        &format!(
            "{USER_NAMESPACES}SELECT ns.nspname, c.relname, a.attname FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.atttypid = 'pg_catalog.xml'::pg_catalog.regtype ORDER BY 1, 2, 3"
        ),
        &[],
    )?;
    let mut lost = Vec::new();
    for column in columns {
        let (schema, table, name): (String, String, String) =
            (column.get(0), column.get(1), column.get(2));
        let col = quote_ident(&name);
        let sql = format!(
            "SELECT count(*) FROM ONLY {}.{} WHERE {col}::text <> pg_catalog.xml_out({col})::text",
            quote_ident(&schema),
            quote_ident(&table)
        );
        let count: i64 = client.query_one(&sql, &[])?.get(0);
        if count > 0 {
            lost.push(format!(
                "{XML_DECLARATIONS} {count} value(s) of {}.{} (PostgreSQL's xml output, \
                 which pg_dump writes in every format, drops it; the documents are compared)",
                qualified(&schema, &table),
                ident_part(&name)
            ));
        }
    }
    Ok(lost)
}

/// Partitions whose rows a restore may put into other partitions, each with the qualified name
/// of its partitioned root. `pg_dump` loads a hash-partitioned table whose key is an enum through
/// its root (`--load-via-partition-root`), since the restored enum's values hash differently:
/// the partitions' rows differ from the source's, the table's as a whole do not. (PostgreSQL 12
/// and later; 11 has no `pg_partition_root`.)
fn rerouted_partitions(
    client: &mut impl GenericClient,
    version: i32,
) -> Result<Rerouted, postgres::Error> {
    if version < 120000 {
        return Ok(BTreeMap::new());
    }
    let rows = client.query(
        "SELECT n.nspname, c.relname, rn.nspname, r.relname \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_class r ON r.oid = pg_partition_root(c.oid) \
         JOIN pg_namespace rn ON rn.oid = r.relnamespace \
         WHERE c.relispartition AND c.relkind = 'r' AND EXISTS ( \
           SELECT 1 FROM pg_partition_tree(r.oid) t \
           JOIN pg_partitioned_table pt ON pt.partrelid = t.relid \
           JOIN pg_attribute a ON a.attrelid = pt.partrelid \
             AND a.attnum = ANY (pt.partattrs::int2[]) \
           JOIN pg_type ty ON ty.oid = a.atttypid \
           WHERE pt.partstrat = 'h' AND ty.typtype = 'e')",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let (schema, name): (String, String) = (r.get(2), r.get(3));
            (
                (r.get(0), r.get(1)),
                (qualified(&schema, &name), (schema, name)),
            )
        })
        .collect())
}

/// Partition (schema, name) → its root, qualified and as (schema, name).
type Rerouted = BTreeMap<(String, String), (String, (String, String))>;

/// [`add_stats`] for [`COPY_ALGORITHM`]'s checksums, sums of 128-bit hashes in hex.
fn add_copy_stats(whole: &mut TableStats, part: &TableStats) {
    whole.rows += part.rows;
    let sum = |s: &str| u128::from_str_radix(s, 16).unwrap_or_default();
    whole.checksum = format!(
        "{:032x}",
        sum(&whole.checksum).wrapping_add(sum(&part.checksum))
    );
}

/// Adds a partition's rows and checksum to its table's: the checksum is a sum over rows, so
/// the whole table's is the sum of its partitions'.
fn add_stats(whole: &mut TableStats, part: &TableStats) {
    whole.rows += part.rows;
    let sum = |s: &str| s.parse::<i128>().unwrap_or_default();
    whole.checksum = (sum(&whole.checksum) + sum(&part.checksum)).to_string();
}

/// (kind, name, definition) of every object in user schemas.
fn definitions(
    client: &mut impl GenericClient,
) -> Result<Vec<(String, String, String)>, postgres::Error> {
    Ok(client
        .query(&format!("{USER_NAMESPACES}{OBJECTS}"), &[])?
        .iter()
        .map(|r| {
            let def: Option<String> = r.get(2);
            (r.get(0), r.get(1), def.unwrap_or_default())
        })
        .collect())
}

/// One query of the per-table description: a whole table, or its blocks `from..to` (`to`
/// open on the last range, so rows in blocks added since the statistics were taken count).
#[derive(Debug, PartialEq)]
struct Part<'a> {
    table: usize,
    schema: &'a str,
    name: &'a str,
    blocks: Option<(i64, Option<i64>)>,
}

/// The queries for `tables` (schema, name, pages), in order; with `chunk_pages`, a table of
/// more pages than that is cut into ranges of that many blocks.
fn work_list(tables: &[(String, String, i32)], chunk_pages: Option<i64>) -> Vec<Part<'_>> {
    let mut work = Vec::new();
    for (table, (schema, name, pages)) in tables.iter().enumerate() {
        let part = |blocks| Part {
            table,
            schema,
            name,
            blocks,
        };
        match chunk_pages.filter(|&chunk| i64::from(*pages) > chunk) {
            None => work.push(part(None)),
            Some(chunk) => {
                let mut from = 0;
                while from + chunk < i64::from(*pages) {
                    work.push(part(Some((from, Some(from + chunk)))));
                    from += chunk;
                }
                work.push(part(Some((from, None))));
            }
        }
    }
    work
}

/// `f` of every item, in order, computed on `client` and `helpers` side by side, each
/// connection taking the next item when it is done with one. The first error wins (the others
/// stop at their next item).
pub fn share<C: GenericClient, T: Sync, R: Send, E: Send>(
    client: &mut C,
    helpers: &mut [postgres::Client],
    items: &[T],
    on_client: impl Fn(&mut C, &T) -> Result<R, E>,
    on_helper: impl Fn(&mut postgres::Client, &T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let run = |f: &mut dyn FnMut(&T) -> Result<R, E>| {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Relaxed);
            if i >= items.len() || failed.load(Relaxed) {
                return Ok(done);
            }
            match f(&items[i]) {
                Ok(r) => done.push((i, r)),
                Err(e) => {
                    failed.store(true, Relaxed);
                    return Err(e);
                }
            }
        }
    };
    let results: Vec<Result<Vec<(usize, R)>, E>> = std::thread::scope(|s| {
        let spawned: Vec<_> = (helpers.iter_mut())
            .map(|h| s.spawn(|| run(&mut |item| on_helper(h, item))))
            .collect();
        let mut results = vec![run(&mut |item| on_client(client, item))];
        results.extend(spawned.into_iter().map(|t| {
            t.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        results
    });
    let mut all: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for result in results {
        for (i, r) in result? {
            all[i] = Some(r);
        }
    }
    Ok(all
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

/// The `WHERE` clause of a part's block range, if any.
fn block_range(part: &Part) -> String {
    // Block numbers as tids: `(block,0)` sorts before every row of that block.
    match part.blocks {
        None => String::new(),
        Some((from, None)) => format!(" WHERE dbbackup_row.ctid >= '({from},0)'::pg_catalog.tid"),
        Some((from, Some(to))) => format!(
            " WHERE dbbackup_row.ctid >= '({from},0)'::pg_catalog.tid \
             AND dbbackup_row.ctid < '({to},0)'::pg_catalog.tid"
        ),
    }
}

/// A part's rows as `pg_dump` prints them (`COPY t (columns) TO STDOUT`, or the same columns
/// of a block range), hashed as the dump's COPY lines are, with `text`'s settings.
fn copy_stats(
    client: &mut impl GenericClient,
    part: &Part,
    columns: &[String],
    text: &RowText,
    reader: Option<CopyReader>,
) -> Result<TableStats, postgres::Error> {
    let table = format!("{}.{}", quote_ident(part.schema), quote_ident(part.name));
    let list = columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match (part.blocks, columns.is_empty()) {
        (None, true) => format!("COPY {table} TO STDOUT"),
        (None, false) => format!("COPY {table} ({list}) TO STDOUT"),
        (Some(_), _) => format!(
            "COPY (SELECT {list} FROM ONLY {table} AS dbbackup_row{}) TO STDOUT",
            block_range(part)
        ),
    };
    let stats = |sum: RowSum| TableStats {
        name: qualified(part.schema, part.name),
        rows: sum.rows,
        checksum: sum.checksum(),
    };
    if let Some(sum) = reader.and_then(|read| read(&text.setup_sql(), &sql)) {
        return Ok(stats(sum));
    }
    text.apply(client)?;
    let mut lines = RowLines::default();
    {
        use std::io::BufRead;
        let mut reader = client.copy_out(&sql)?;
        loop {
            let buf = reader.fill_buf().map_err(copy_error)?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            lines.push(buf, false);
            reader.consume(n);
        }
    }
    client.batch_execute(UNDO_ROW_TEXT)?;
    Ok(stats(lines.sum))
}

/// The error behind a failed read of `COPY` data: the crate's reader wraps its own.
fn copy_error(e: std::io::Error) -> postgres::Error {
    let inner = e
        .into_inner()
        .and_then(|e| e.downcast::<postgres::Error>().ok());
    *inner.expect("the COPY reader fails with the postgres crate's errors only")
}

fn part_stats(client: &mut impl GenericClient, part: &Part) -> Result<TableStats, postgres::Error> {
    let range = block_range(part);
    let sql = format!(
        "SELECT count(*), coalesce(sum(hashtextextended(dbbackup_row::text, 0)), 0)::text \
         FROM ONLY {}.{} AS dbbackup_row{range}",
        quote_ident(part.schema),
        quote_ident(part.name)
    );
    let row = client.query_one(&sql, &[])?;
    let rows: i64 = row.get(0);
    Ok(TableStats {
        name: qualified(part.schema, part.name),
        rows: rows as u64,
        checksum: row.get(1),
    })
}

/// Database-level facts a faithful restore keeps. The server version is not one of them (a
/// restore into a newer server is still faithful); it is the manifest's `engine.version`.
fn properties(
    client: &mut impl GenericClient,
    version: i32,
) -> Result<BTreeMap<String, String>, postgres::Error> {
    let row = client.query_one(&properties_query(version), &[])?;
    let mut props = BTreeMap::from([
        ("encoding".to_string(), row.get(0)),
        ("lc_collate".to_string(), row.get(1)),
        ("lc_ctype".to_string(), row.get(2)),
    ]);
    let provider: Option<String> = row.get(3);
    if let Some(provider) = provider {
        let name = match provider.as_str() {
            "i" => "icu",
            "b" => "builtin",
            _ => "libc",
        };
        props.insert(LOCALE_PROVIDER.into(), name.into());
    }
    let optional: [(&str, Option<String>); 3] = [
        (LOCALE, row.get(4)),
        (ICU_RULES, row.get(5)),
        (COMMENT, row.get(6)),
    ];
    for (key, value) in optional {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            props.insert(key.into(), value);
        }
    }
    let settings: Option<Vec<String>> = row.get(7);
    for setting in settings.unwrap_or_default() {
        if let Some((name, value)) = setting.split_once('=') {
            props.insert(format!("{SETTING}{name}"), value.to_string());
        }
    }
    for row in client.query(EXTENSION_TABLES_SQL, &[])? {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        let whole = Part {
            table: 0,
            schema: &schema,
            name: &table,
            blocks: None,
        };
        let stats = part_stats(client, &whole)?;
        props.insert(
            format!("{EXTENSION_DATA}{}", stats.name),
            format!("{} rows, checksum {}", stats.rows, stats.checksum),
        );
    }
    for (key, sql) in [(COMMENTS, COMMENTS_SQL), (LARGE_OBJECTS, LARGE_OBJECTS_SQL)] {
        let row = client.query_one(sql, &[])?;
        let (count, digest): (i64, Option<String>) = (row.get(0), row.get(1));
        if count > 0 {
            props.insert(
                key.into(),
                format!("{count}, md5 {}", digest.unwrap_or_default()),
            );
        }
    }
    Ok(props)
}

/// Comments on objects in user schemas (`COMMENT ON TABLE/COLUMN/FUNCTION/…`), which `pg_dump`
/// carries and the schema checksum does not cover: how many, and a digest of which object
/// each is on and what it says.
pub const COMMENTS: &str = "comments";
const COMMENTS_SQL: &str = r#"SELECT count(*), md5(string_agg(k, E'\n' ORDER BY k)) FROM (
  SELECT format('%s %s %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.objsubid,
                d.description) AS k
  FROM pg_description d
  JOIN LATERAL (SELECT CASE d.classoid
      WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objoid)
      WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objoid)
      WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objoid)
      WHEN 'pg_namespace'::regclass THEN d.objoid
      WHEN 'pg_constraint'::regclass THEN
        (SELECT connamespace FROM pg_constraint WHERE oid = d.objoid)
      WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objoid)
    END AS ns) n ON true
  JOIN pg_namespace s ON s.oid = n.ns
  WHERE s.nspname NOT IN ('pg_catalog', 'information_schema')
    AND s.nspname NOT LIKE 'pg\_toast%' AND s.nspname NOT LIKE 'pg\_temp%'
    AND NOT (d.classoid = 'pg_namespace'::regclass AND s.nspname = 'public')
    AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid
                    AND e.objid = d.objoid AND e.deptype = 'e')) c"#;

/// `extension data <table>`: the rows of a table an extension owns and marked as holding
/// configuration (`pg_extension_config_dump`, as PostGIS's `spatial_ref_sys`), counted and
/// hashed as a whole. The restore recreates the extension's own rows with `CREATE EXTENSION`,
/// and `pg_dump` adds only the rows its filter selects (those the user added): a row the user
/// changed among the extension's own is in no dump, and the copy then differs here, instead
/// of passing unseen as when these tables were left out.
pub const EXTENSION_DATA: &str = "extension data ";
const EXTENSION_TABLES_SQL: &str = "SELECT n.nspname, c.relname \
     FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig) AS cfg(oid) \
     JOIN pg_class c ON c.oid = cfg.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' ORDER BY 1, 2";

/// Large objects: data `pg_dump` carries that no table holds. How many, and a digest of each
/// one's oid and content (owners are not compared: the restore skips owners, as for tables).
pub const LARGE_OBJECTS: &str = "large_objects";
const LARGE_OBJECTS_SQL: &str = "SELECT count(*), md5(string_agg(oid::text || ':' || \
     md5(lo_get(oid)), ',' ORDER BY oid)) FROM pg_largeobject_metadata";

/// Manifest keys of the database-level properties a restore must reproduce (besides
/// `encoding`, `lc_collate`, `lc_ctype`): `pg_dump` without `--create` carries none of them,
/// so the scratch database is created with them and the schema check compares them.
pub const LOCALE_PROVIDER: &str = "locale_provider";
/// The ICU (or, PostgreSQL 17+, builtin) locale: `ORDER BY` and unique indexes on text follow it.
pub const LOCALE: &str = "locale";
pub const ICU_RULES: &str = "icu_rules";
pub const COMMENT: &str = "comment";
/// `setting <name>`: `ALTER DATABASE … SET name = value` (for every role), such as
/// `search_path`, `TimeZone`, `DateStyle`: lost, the restored application misbehaves.
pub const SETTING: &str = "setting ";

/// The database's own row, with what this server version has: the locale provider from 15,
/// ICU rules from 16, `datlocale` (ICU or builtin) from 17.
fn properties_query(version: i32) -> String {
    let provider = if version >= 150000 {
        "d.datlocprovider::text"
    } else {
        "NULL::text"
    };
    let locale = match version {
        v if v >= 170000 => "d.datlocale",
        v if v >= 150000 => "d.daticulocale",
        _ => "NULL::text",
    };
    let rules = if version >= 160000 {
        "d.daticurules"
    } else {
        "NULL::text"
    };
    format!(
        "SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, {provider}, \
         {locale}, {rules}, shobj_description(d.oid, 'pg_database'), \
         (SELECT array_agg(s ORDER BY s) FROM pg_db_role_setting r, unnest(r.setconfig) s \
          WHERE r.setdatabase = d.oid AND r.setrole = 0) \
         FROM pg_database d WHERE d.datname = current_database()"
    )
}

/// `schema.table`, as the manifest names tables and objects: a part holding a `.` or a `"` is
/// double-quoted (`"a.b".c` and `a."b.c"` are two tables), any other part is left as it is, so
/// names stay as readable as they were and as earlier manifests wrote them. The objects query
/// builds its names the same way in SQL.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident_part(schema), ident_part(name))
}

/// One part of a [`qualified`] name.
fn ident_part(part: &str) -> String {
    match part.contains(['.', '"']) {
        true => quote_ident(part),
        false => part.to_string(),
    }
}

/// Quotes an identifier: `"` doubled inside double quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal: `'` doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
