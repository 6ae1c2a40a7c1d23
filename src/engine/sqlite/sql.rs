//! How SQLite names things in a query: identifiers quoted, a table's columns and primary key,
//! and the name that reads a rowid. The description, the foreign-key check, the index checks
//! and the SQL dump all build queries from them.

use rusqlite::Connection;

/// Quotes an identifier for SQL: `"` doubled inside double quotes, which is right for any name,
/// keywords and odd characters included.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of `table`, hidden and generated ones included, in declaration order.
pub fn column_names(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM pragma_table_xinfo(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |r| r.get(0))?;
    rows.collect()
}

/// A name that reads a rowid table's rowid: the first of its three aliases that no column of
/// the table takes for itself; `None` when columns shadow all three.
pub fn rowid_alias<'a>(columns: impl Iterator<Item = &'a str> + Clone) -> Option<&'static str> {
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|a| !columns.clone().any(|c| c.eq_ignore_ascii_case(a)))
}

/// The columns of `table`'s primary key, in key order; none without one (or such a table).
pub fn primary_key(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?;
    let rows = stmt.query_map([table], |r| r.get(0))?;
    rows.collect()
}
