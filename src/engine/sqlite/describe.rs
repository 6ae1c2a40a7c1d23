//! Describes a SQLite database for the manifest: schema objects, and per table a row count and
//! a content checksum.
//!
//! The checksum hashes values, not pages: every row in rowid order (primary-key order for
//! WITHOUT ROWID tables), each value tagged with its storage class. A VACUUMed copy, a copy
//! with another page size, and a database rebuilt from a SQL dump all hash the same, while a
//! changed value, a lost row or a renumbered rowid does not.

use std::collections::BTreeMap;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};

use crate::archive::compress::hex;
use crate::archive::manifest::{SchemaObject, Snapshot, TableStats};

use super::sql::{column_names, primary_key, quote_ident, rowid_alias};

/// What a manifest's table list covers. v2 lists the shadow tables of virtual tables (FTS5,
/// R*Tree) as the data they are; v1 left them out, so an edited R*Tree coordinate or FTS
/// document passed. A copy is described as its manifest's version describes the source.
pub const CHECKSUM_ALGORITHM: &str = "sqlite-rows-sha256-v2";
const V1: &str = "sqlite-rows-sha256-v1";

/// Which tables hold data: v1 manifests know only ordinary tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    Ordinary,
    WithShadow,
}

impl Tables {
    /// The tables a manifest written with `algorithm` describes.
    pub fn of(algorithm: &str) -> Self {
        if algorithm == V1 {
            Tables::Ordinary
        } else {
            Tables::WithShadow
        }
    }

    fn algorithm(self) -> &'static str {
        match self {
            Tables::Ordinary => V1,
            Tables::WithShadow => CHECKSUM_ALGORITHM,
        }
    }
}

pub fn describe(conn: &Connection) -> rusqlite::Result<Snapshot> {
    describe_as(conn, Tables::WithShadow)
}

/// Describes as a manifest of the version `tables` stands for.
pub fn describe_as(conn: &Connection, which: Tables) -> rusqlite::Result<Snapshot> {
    let (objects, schema_checksum) = schema(conn)?;
    let mut tables = Vec::new();
    for table in data_tables_of(conn, which)? {
        tables.push(table_stats(conn, &table)?);
    }
    Ok(Snapshot {
        checksum_algorithm: which.algorithm().into(),
        schema_checksum,
        objects,
        tables,
        properties: properties(conn)?,
        not_compared: Vec::new(),
    })
}

/// Schema objects and a checksum over their definitions. Root pages are left out: they are
/// layout, not schema.
fn schema(conn: &Connection) -> rusqlite::Result<(Vec<SchemaObject>, String)> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name",
    )?;
    let mut hasher = Sha256::new();
    let mut objects = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (kind, name): (String, String) = (row.get(0)?, row.get(1)?);
        for field in [
            &kind,
            &name,
            &row.get::<_, String>(2)?,
            &row.get::<_, String>(3)?,
        ] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        objects.push(SchemaObject { kind, name });
    }
    Ok((objects, hex(&hasher.finalize())))
}

/// A table that holds rows of its own (virtual tables keep theirs in shadow tables, which are
/// ordinary tables and are listed themselves).
pub struct DataTable {
    pub name: String,
    pub without_rowid: bool,
}

pub fn data_tables(conn: &Connection) -> rusqlite::Result<Vec<DataTable>> {
    data_tables_of(conn, Tables::WithShadow)
}

/// Ordinary tables, and with `WithShadow` the shadow tables of virtual tables (which
/// `pragma_table_list` calls `shadow` when SQLite knows the module).
fn data_tables_of(conn: &Connection, which: Tables) -> rusqlite::Result<Vec<DataTable>> {
    let types = match which {
        Tables::Ordinary => "'table'",
        Tables::WithShadow => "'table', 'shadow'",
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ({types}) \
         AND name <> 'sqlite_schema' ORDER BY name",
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(DataTable {
            name: r.get(0)?,
            without_rowid: r.get::<_, i64>(1)? != 0,
        })
    })?;
    rows.collect()
}

fn table_stats(conn: &Connection, table: &DataTable) -> rusqlite::Result<TableStats> {
    let (list, rest) = row_query(conn, table)?;
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    in_lockstep(
        conn,
        &list,
        &rest,
        |cell| {
            match cell {
                Cell::Value(_, value) => hash_value(&mut hasher, value),
                Cell::RowEnd => count += 1,
            }
            Ok(())
        },
        |e| e,
    )?;
    Ok(TableStats {
        name: table.name.clone(),
        rows: count,
        checksum: hex(&hasher.finalize()),
    })
}

/// `SELECT rowid, * ... ORDER BY rowid` (or the primary key for WITHOUT ROWID tables), as its
/// select list and the rest (`FROM … ORDER BY …`). The rowid is hashed because a faithful copy
/// keeps it; when every alias of it is shadowed by a column, the real rowid cannot be read and
/// the columns alone are hashed, in their order.
fn row_query(conn: &Connection, table: &DataTable) -> rusqlite::Result<(Vec<String>, String)> {
    let quoted = quote_ident(&table.name);
    let columns = column_names(conn, &table.name)?;
    let mut list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    if table.without_rowid {
        let pk = primary_key(conn, &table.name)?;
        let order: Vec<String> = pk.iter().map(|c| quote_ident(c)).collect();
        return Ok((list, format!("FROM {quoted} ORDER BY {}", order.join(", "))));
    }
    Ok(match rowid_alias(columns.iter().map(String::as_str)) {
        Some(a) => {
            list.insert(0, a.to_string());
            (list, format!("FROM {quoted} ORDER BY {a}"))
        }
        None => {
            // Every column, in order: the only order left to read the rows in.
            let order = list.join(", ");
            (list, format!("FROM {quoted} ORDER BY {order}"))
        }
    })
}

/// Result columns one statement may have (SQLite's SQLITE_MAX_COLUMN, 2,000 by default) is
/// also what a table may have: with its rowid a full-width table is one more. Wider select
/// lists are read in slices of this many, one statement each, stepped together.
const COLUMNS_PER_STATEMENT: usize = 1000;

/// What [`in_lockstep`] hands over: each value with its place in the select list, then the
/// end of its row.
pub enum Cell<'a> {
    Value(usize, rusqlite::types::ValueRef<'a>),
    RowEnd,
}

/// Reads `SELECT <list> <rest>` row by row, handing each value in list order to `each`, then
/// the end of the row, as if it were one statement. A list wider than one
/// statement may return is split into slices read by statements stepped in lockstep: `rest`
/// must order the rows completely (a rowid or primary key), so every slice sees the rows in the
/// same order.
pub fn in_lockstep<E>(
    conn: &Connection,
    list: &[String],
    rest: &str,
    mut each: impl FnMut(Cell<'_>) -> Result<(), E>,
    db: impl Fn(rusqlite::Error) -> E,
) -> Result<(), E> {
    let mut statements = Vec::new();
    for slice in list.chunks(COLUMNS_PER_STATEMENT) {
        let sql = format!("SELECT {} {rest}", slice.join(", "));
        statements.push((conn.prepare(&sql).map_err(&db)?, slice.len()));
    }
    let mut cursors = Vec::new();
    for (stmt, width) in &mut statements {
        cursors.push((stmt.raw_query(), *width));
    }
    loop {
        let mut column = 0;
        for (i, (rows, width)) in cursors.iter_mut().enumerate() {
            let Some(row) = rows.next().map_err(&db)? else {
                // Slices of one table, in one read transaction, end together.
                return if i == 0 {
                    Ok(())
                } else {
                    Err(db(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                        Some("the slices of a wide table returned different row counts".into()),
                    )))
                };
            };
            for c in 0..*width {
                each(Cell::Value(column, row.get_ref(c).map_err(&db)?))?;
                column += 1;
            }
        }
        each(Cell::RowEnd)?;
    }
}

/// Storage class tag, then the value's bytes (length-prefixed where variable), so that no two
/// different rows can feed the hasher the same bytes.
fn hash_value(hasher: &mut Sha256, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => hasher.update([0u8]),
        ValueRef::Integer(i) => {
            hasher.update([1u8]);
            hasher.update(i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            hasher.update([2u8]);
            hasher.update(f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            hasher.update([3u8]);
            hasher.update((t.len() as u64).to_le_bytes());
            hasher.update(t);
        }
        ValueRef::Blob(b) => {
            hasher.update([4u8]);
            hasher.update((b.len() as u64).to_le_bytes());
            hasher.update(b);
        }
    }
}

/// Database-level settings a faithful copy keeps.
fn properties(conn: &Connection) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut props = BTreeMap::new();
    for pragma in ["user_version", "application_id"] {
        let v: i64 = conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))?;
        props.insert(pragma.to_string(), v.to_string());
    }
    let encoding: String = conn.query_row("PRAGMA encoding", [], |r| r.get(0))?;
    props.insert("encoding".into(), encoding);
    props.insert(
        "foreign_key_check".into(),
        super::foreign_keys::state(conn)?,
    );
    Ok(props)
}
