//! The part of SQLite's `integrity_check` that `quick_check` leaves out, in linear time.
//!
//! `quick_check` verifies every page, b-tree and record, NOT NULL, CHECK and type rules, and
//! the number of entries in each index. What `integrity_check` adds is that each index holds
//! exactly the entries its table implies, in order, that UNIQUE indexes are unique, and that
//! WITHOUT ROWID tables are in key order. It proves that by looking every row up in every
//! index: O(N log N) reads scattered over the file, so with a page cache bounded to keep
//! memory flat its cost per GiB grows with the database (BENCHMARKS.md, "Scale"). Here the same facts
//! are proved with sequential scans: the entries the table implies (one scan of the table)
//! must be the same multiset as the entries the index holds (one scan of the index in its own
//! order, which also checks that order and uniqueness). The multisets are compared by count
//! and by a sum of per-entry hashes keyed at random for each run, so a damaged index passes
//! only by a 2^-64 accident, and a crafted database cannot aim for one.
//!
//! A partial index holds the rows its WHERE expression is true for, which the table scan
//! evaluates; its own scan can read the index alone only when that expression uses only its
//! columns. Other partial indexes, indexes on expressions, collations other than SQLite's
//! built-in three, UTF-16 databases, and any table whose scans SQLite would not run as
//! planned are left to `PRAGMA integrity_check(TABLE)` for their table: exact, but
//! O(N log N) again for that table alone.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::describe::{DataTable as Table, data_tables};
use super::sql::{column_names, quote_ident, rowid_alias};

/// Problems found, in `integrity_check`'s words where it has them; empty when all is well.
pub fn check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let keys = RandomState::new();
    let utf8 = conn.query_row("PRAGMA encoding", [], |r| r.get::<_, String>(0))? == "UTF-8";
    let mut problems = Vec::new();
    for table in data_tables(conn)? {
        let plan = if utf8 { plan(conn, &table)? } else { None };
        match plan {
            Some(plan) => problems.extend(check_table(conn, &table, &plan, &keys)?),
            None => problems.extend(integrity_check_table(conn, &table.name)?),
        }
        problems.extend(partial_index_counts(conn, &table.name)?);
    }
    Ok(problems)
}

/// Each partial index holds exactly as many entries as the table has rows its WHERE is true
/// for. Neither the index scan (SQLite runs it only with the WHERE, which hides any entry the
/// WHERE rejects) nor the SQLite we link's own `integrity_check` (3.50 passes it, where 3.40
/// says "wrong # of entries") sees entries left by another declaration: a changed WHERE, or a
/// plain index re-declared partial. The b-tree's own cell count does.
fn partial_index_counts(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    for listed in index_list(conn, table)?.into_iter().filter(|l| l.partial) {
        let Some(filter) = partial_filter(conn, &listed.name)? else {
            continue;
        };
        // The WHERE goes in the select list, not a WHERE clause: there SQLite may answer the
        // count from the partial index itself (it does for WITHOUT ROWID tables, NOT INDEXED
        // or not), which is the very thing being checked.
        let sql = format!(
            "SELECT coalesce(sum(CASE WHEN ({filter}) THEN 1 ELSE 0 END), 0) FROM {} NOT INDEXED",
            quote_ident(table)
        );
        // A WHERE read wrongly from the schema is SQLite's to judge: its own check ran.
        let Ok(expected) = conn.query_row(&sql, [], |r| r.get::<_, i64>(0)) else {
            continue;
        };
        let stored = match stored_entries(conn, &listed.name) {
            Ok(stored) => stored,
            Err(e) => {
                problems.push(format!("index {} cannot be read: {e}", listed.name));
                continue;
            }
        };
        if stored != expected as u64 {
            problems.push(format!(
                "wrong # of entries in index {} ({expected} rows of {table} satisfy its WHERE, \
                 it holds {stored})",
                listed.name
            ));
        }
    }
    Ok(problems)
}

#[derive(Clone, Copy)]
enum Collation {
    Binary,
    NoCase,
    RTrim,
}

/// One field of an index record: how to select it from the table, and how it sorts.
#[derive(Clone)]
struct Field {
    select: String,
    desc: bool,
    collation: Collation,
}

struct Index {
    name: String,
    unique: bool,
    /// Every field of the record: the key columns, then the rowid (or the primary key columns
    /// a WITHOUT ROWID index carries).
    fields: Vec<Field>,
    key_len: usize,
    /// A partial index's WHERE expression: only rows it holds for have an entry.
    filter: Option<String>,
}

struct Plan {
    indexes: Vec<Index>,
    /// A WITHOUT ROWID table's primary key, whose order the table scan checks.
    primary_key: Option<Vec<Field>>,
    /// The query that reads the table itself: a rowid table `NOT INDEXED`; a WITHOUT ROWID
    /// table by its primary key, the b-tree that holds its rows (`NOT INDEXED` let SQLite
    /// read one of its covering indexes instead).
    table_scan: String,
}

/// How to check `table` by scans, or `None` when one of its indexes needs SQLite's own check.
fn plan(conn: &Connection, table: &Table) -> rusqlite::Result<Option<Plan>> {
    let columns = column_names(conn, &table.name)?;
    let rowid = rowid_alias(columns.iter().map(String::as_str));
    let mut indexes = Vec::new();
    let mut primary_key = None;
    for Listed {
        name,
        unique,
        primary,
        partial,
    } in index_list(conn, &table.name)?
    {
        let Some((fields, key_len)) = fields(conn, &name, rowid)? else {
            return Ok(None);
        };
        if table.without_rowid && primary {
            primary_key = Some((name, fields[..key_len].to_vec()));
            continue;
        }
        let filter = if partial {
            match partial_filter(conn, &name)? {
                Some(filter) => Some(filter),
                None => return Ok(None),
            }
        } else {
            None
        };
        let index = Index {
            name,
            unique,
            fields,
            key_len,
            filter,
        };
        let covering = format!("SCAN {} USING COVERING INDEX {}", table.name, index.name);
        if !plan_is(conn, &index_scan_sql(&table.name, &index), &covering)? {
            return Ok(None);
        }
        indexes.push(index);
    }
    let table_scan = table_scan_sql(table, primary_key.as_ref(), &indexes);
    if !plan_is(conn, &table_scan, &format!("SCAN {}", table.name))? {
        return Ok(None);
    }
    Ok(Some(Plan {
        indexes,
        primary_key: primary_key.map(|(_, fields)| fields),
        table_scan,
    }))
}

/// An index as `PRAGMA index_list` describes it.
struct Listed {
    name: String,
    unique: bool,
    /// The PRIMARY KEY's own index (for a WITHOUT ROWID table, the table itself).
    primary: bool,
    partial: bool,
}

fn index_list(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Listed>> {
    let mut stmt = conn.prepare(
        "SELECT name, \"unique\", origin = 'pk', partial FROM pragma_index_list(?1) \
         ORDER BY name",
    )?;
    let rows = stmt.query_map([table], |r| {
        Ok(Listed {
            name: r.get(0)?,
            unique: r.get::<_, i64>(1)? != 0,
            primary: r.get::<_, i64>(2)? != 0,
            partial: r.get::<_, i64>(3)? != 0,
        })
    })?;
    rows.collect()
}

/// Selects the primary key (to check its order), then every index's fields from each row,
/// each partial index's followed by whether the row belongs in it.
fn table_scan_sql(table: &Table, pk: Option<&(String, Vec<Field>)>, indexes: &[Index]) -> String {
    let mut select: Vec<String> = pk
        .map(|(_, fields)| fields.iter().map(|f| f.select.clone()).collect())
        .unwrap_or_default();
    for index in indexes {
        select.extend(index.fields.iter().map(|f| f.select.clone()));
        if let Some(filter) = &index.filter {
            select.push(format!("CASE WHEN ({filter}) THEN 1 ELSE 0 END"));
        }
    }
    if select.is_empty() {
        select.push("1".into());
    }
    let source = match pk {
        Some((pk_index, _)) => format!("INDEXED BY {}", quote_ident(pk_index)),
        None => "NOT INDEXED".into(),
    };
    format!(
        "SELECT {} FROM {} {source}",
        select.join(", "),
        quote_ident(&table.name)
    )
}

/// The record layout of `index`, and how many of its fields are key columns; `None` for an
/// expression, an unknown collation, or a rowid the table shadows with columns of its own.
fn fields(
    conn: &Connection,
    index: &str,
    rowid: Option<&str>,
) -> rusqlite::Result<Option<(Vec<Field>, usize)>> {
    let mut stmt = conn.prepare(
        "SELECT cid, name, \"desc\", coll, key FROM pragma_index_xinfo(?1) ORDER BY seqno",
    )?;
    let rows = stmt
        .query_map([index], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)? != 0,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)? != 0,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut fields = Vec::new();
    let mut key_len = 0;
    for (cid, name, desc, coll, key) in rows {
        let select = match (cid, name) {
            (-1, _) => match rowid {
                Some(alias) => alias.to_string(),
                None => return Ok(None),
            },
            (c, Some(name)) if c >= 0 => quote_ident(&name),
            _ => return Ok(None),
        };
        let collation = match coll.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("BINARY") => Collation::Binary,
            Some("NOCASE") => Collation::NoCase,
            Some("RTRIM") => Collation::RTrim,
            Some(_) => return Ok(None),
        };
        key_len += usize::from(key);
        fields.push(Field {
            select,
            desc,
            collation,
        });
    }
    Ok(Some((fields, key_len)))
}

fn index_scan_sql(table: &str, index: &Index) -> String {
    let select: Vec<&str> = index.fields.iter().map(|f| f.select.as_str()).collect();
    let filter = index
        .filter
        .as_ref()
        .map_or(String::new(), |f| format!(" WHERE ({f})"));
    format!(
        "SELECT {} FROM {} INDEXED BY {}{filter}",
        select.join(", "),
        quote_ident(table),
        quote_ident(&index.name)
    )
}

/// A partial index's WHERE expression, from its CREATE INDEX statement.
fn partial_filter(conn: &Connection, index: &str) -> rusqlite::Result<Option<String>> {
    let sql: Option<String> = conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
        [index],
        |r| r.get(0),
    )?;
    Ok(sql.as_deref().and_then(where_clause).map(str::to_string))
}

/// What follows the WHERE keyword at the top level of `sql`: outside parentheses, quotes,
/// brackets and comments.
fn where_clause(sql: &str) -> Option<&str> {
    let b = sql.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let (mut i, mut depth) = (0, 0i32);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                // A doubled quote inside is the quote itself; the closing one ends the loop.
                while i < b.len() && !(b[i] == q && b.get(i + 1) != Some(&q)) {
                    i += if b[i] == q { 2 } else { 1 };
                }
            }
            b'[' => {
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if depth == 0
                && b.len() >= i + 5
                && b[i..i + 5].eq_ignore_ascii_case(b"WHERE")
                && (i == 0 || !word(b[i - 1]))
                && b.get(i + 5).is_none_or(|&c| !word(c)) =>
            {
                return Some(sql[i + 5..].trim());
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether SQLite runs `sql` as the one scan `expected` names: an index scan that read the
/// table, or a table scan that read an index, would prove nothing.
/// A query SQLite refuses to prepare (a WHERE clause read wrongly from the schema, say) is
/// not run either: its table gets SQLite's own check.
fn plan_is(conn: &Connection, sql: &str, expected: &str) -> rusqlite::Result<bool> {
    let Ok(mut stmt) = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")) else {
        return Ok(false);
    };
    let details = stmt
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(details == [expected])
}

/// A multiset of index entries: their number and the sum of their keyed hashes.
#[derive(Default, PartialEq, Eq)]
struct Entries {
    count: u64,
    sum: u64,
}

impl Entries {
    fn add(&mut self, keys: &RandomState, values: &[ValueRef<'_>]) {
        let mut h = keys.build_hasher();
        for v in values {
            hash_value(&mut h, *v);
        }
        self.count += 1;
        self.sum = self.sum.wrapping_add(h.finish());
    }
}

fn check_table(
    conn: &Connection,
    table: &Table,
    plan: &Plan,
    keys: &RandomState,
) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    if plan.indexes.is_empty() && plan.primary_key.is_none() {
        return Ok(problems);
    }
    let implied = table_scan(conn, table, plan, keys, &mut problems)?;
    for (index, implied) in plan.indexes.iter().zip(implied) {
        let held = index_scan(conn, &table.name, index, keys, &mut problems)?;
        if held != implied {
            problems.push(format!(
                "index {} does not hold exactly the entries of table {} ({} expected, {} found)",
                index.name, table.name, implied.count, held.count
            ));
        }
    }
    Ok(problems)
}

/// One pass over the table: the entries each index should hold, and for a WITHOUT ROWID
/// table, that its rows come in primary-key order.
fn table_scan(
    conn: &Connection,
    table: &Table,
    plan: &Plan,
    keys: &RandomState,
    problems: &mut Vec<String>,
) -> rusqlite::Result<Vec<Entries>> {
    let pk = plan.primary_key.as_deref().unwrap_or_default();
    let mut stmt = conn.prepare(&plan.table_scan)?;
    let width = stmt.column_count();
    let mut entries: Vec<Entries> = plan.indexes.iter().map(|_| Entries::default()).collect();
    let mut previous_key = Previous::default();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let values = (0..width)
            .map(|i| row.get_ref(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let (key, mut rest) = values.split_at(pk.len());
        if !pk.is_empty() {
            if previous_key
                .compare(key, pk)
                .is_some_and(|order| order != Ordering::Less)
            {
                problems.push(format!("row not in PRIMARY KEY order for {}", table.name));
                return Ok(entries);
            }
            previous_key.set(key);
        }
        for (index, acc) in plan.indexes.iter().zip(&mut entries) {
            let width = index.fields.len() + usize::from(index.filter.is_some());
            let (fields, tail) = rest.split_at(width);
            rest = tail;
            let (fields, belongs) = match index.filter {
                Some(_) => (
                    &fields[..width - 1],
                    fields[width - 1] == ValueRef::Integer(1),
                ),
                None => (fields, true),
            };
            if belongs {
                acc.add(keys, fields);
            }
        }
    }
    Ok(entries)
}

/// One pass over an index in its order: its entries, each strictly after the one before
/// (the rowid or primary key makes every entry distinct), and no two keys equal in a UNIQUE
/// index unless one holds a NULL.
fn index_scan(
    conn: &Connection,
    table: &str,
    index: &Index,
    keys: &RandomState,
    problems: &mut Vec<String>,
) -> rusqlite::Result<Entries> {
    let mut stmt = conn.prepare(&index_scan_sql(table, index))?;
    let mut entries = Entries::default();
    let mut previous = Previous::default();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let values = (0..index.fields.len())
            .map(|i| row.get_ref(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if let Some(order) = previous.compare(&values, &index.fields) {
            if order != Ordering::Less {
                problems.push(format!(
                    "index {} is out of order after entry {}",
                    index.name, entries.count
                ));
                return Ok(entries);
            }
            let key = &values[..index.key_len];
            let key_fields = &index.fields[..index.key_len];
            if index.unique
                && !key.contains(&ValueRef::Null)
                && previous.compare(key, key_fields) == Some(Ordering::Equal)
            {
                problems.push(format!("non-unique entry in index {}", index.name));
            }
        }
        entries.add(keys, &values);
        previous.set(&values);
    }
    Ok(entries)
}

/// How many entries an index's b-tree holds, whatever its declaration says: every cell of its
/// pages, interior ones included (an index b-tree keeps entries there too), from the `dbstat`
/// table (compiled into the SQLite we link).
fn stored_entries(conn: &Connection, index: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT coalesce(sum(ncell), 0) FROM dbstat \
         WHERE name = ?1 AND pagetype IN ('internal', 'leaf')",
        [index],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// `PRAGMA integrity_check(TABLE)`: SQLite's own full check of one table and its indexes.
fn integrity_check_table(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    // A numeric argument is read as a maximum error count, not a table name: check all.
    let sql = if table.parse::<i64>().is_ok() {
        "SELECT * FROM pragma_integrity_check"
    } else {
        "SELECT * FROM pragma_integrity_check(?1)"
    };
    let mut stmt = conn.prepare(sql)?;
    let lines = if stmt.parameter_count() == 1 {
        stmt.query_map([table], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
    } else {
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    Ok(lines.into_iter().filter(|l| l != "ok").collect())
}

/// The previous entry's values, kept in buffers that are reused from row to row.
#[derive(Default)]
struct Previous {
    values: Vec<Owned>,
    set: bool,
}

enum Owned {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Previous {
    fn set(&mut self, values: &[ValueRef<'_>]) {
        self.values.resize_with(values.len(), || Owned::Null);
        for (slot, v) in self.values.iter_mut().zip(values) {
            let reuse = |slot: &mut Owned, bytes: &[u8]| match slot {
                Owned::Text(b) | Owned::Blob(b) => {
                    let mut b = std::mem::take(b);
                    b.clear();
                    b.extend_from_slice(bytes);
                    b
                }
                _ => bytes.to_vec(),
            };
            *slot = match *v {
                ValueRef::Null => Owned::Null,
                ValueRef::Integer(i) => Owned::Integer(i),
                ValueRef::Real(f) => Owned::Real(f),
                ValueRef::Text(t) => Owned::Text(reuse(slot, t)),
                ValueRef::Blob(b) => Owned::Blob(reuse(slot, b)),
            };
        }
        self.set = true;
    }

    /// How the previous entry sorts against `values` over `fields` (a prefix of both).
    fn compare(&self, values: &[ValueRef<'_>], fields: &[Field]) -> Option<Ordering> {
        if !self.set {
            return None;
        }
        for ((old, new), field) in self.values.iter().zip(values).zip(fields) {
            let order = compare(old.as_ref(), *new, field.collation);
            let order = if field.desc { order.reverse() } else { order };
            if order != Ordering::Equal {
                return Some(order);
            }
        }
        Some(Ordering::Equal)
    }
}

impl Owned {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Owned::Null => ValueRef::Null,
            Owned::Integer(i) => ValueRef::Integer(*i),
            Owned::Real(f) => ValueRef::Real(*f),
            Owned::Text(t) => ValueRef::Text(t),
            Owned::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// SQLite's sort order for two values: NULL, then numbers by value, then text by collation,
/// then BLOBs bytewise.
fn compare(a: ValueRef<'_>, b: ValueRef<'_>, collation: Collation) -> Ordering {
    use ValueRef::{Blob, Integer, Null, Real, Text};
    let class = |v: &ValueRef<'_>| match v {
        Null => 0,
        Integer(_) | Real(_) => 1,
        Text(_) => 2,
        Blob(_) => 3,
    };
    match (a, b) {
        (Integer(x), Integer(y)) => x.cmp(&y),
        (Real(x), Real(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Integer(x), Real(y)) => compare_int_real(x, y),
        (Real(x), Integer(y)) => compare_int_real(y, x).reverse(),
        (Text(x), Text(y)) => compare_text(x, y, collation),
        (Blob(x), Blob(y)) => x.cmp(y),
        (a, b) => class(&a).cmp(&class(&b)),
    }
}

/// Exactly, as SQLite does: an i64 is not always representable as an f64.
fn compare_int_real(i: i64, r: f64) -> Ordering {
    if r.is_nan() {
        return Ordering::Equal;
    }
    if r < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    if r >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    let whole = r as i64;
    i.cmp(&whole)
        .then_with(|| (whole as f64).partial_cmp(&r).unwrap_or(Ordering::Equal))
}

/// SQLite's three built-in collations: bytewise, ASCII case folded, and trailing spaces
/// ignored.
fn compare_text(a: &[u8], b: &[u8], collation: Collation) -> Ordering {
    match collation {
        Collation::Binary => a.cmp(b),
        Collation::NoCase => compare_nocase(a, b),
        Collation::RTrim => {
            let trim = |s: &[u8]| s.len() - s.iter().rev().take_while(|&&c| c == b' ').count();
            a[..trim(a)].cmp(&b[..trim(b)])
        }
    }
}

/// SQLite's NOCASE, exactly (`nocaseCollatingFunc`, `sqlite3StrNICmp`): ASCII case folded over
/// the shorter length, but the scan stops at a NUL in the first value, where the two compare
/// as the folded bytes there; equal so far, the shorter sorts first. So `a\0z` and `a\0b` are
/// equal but for length, which a plain folded comparison would order by the bytes after the
/// NUL, calling a valid index out of order.
fn compare_nocase(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i < n && a[i] != 0 && a[i].eq_ignore_ascii_case(&b[i]) {
        i += 1;
    }
    let folded = if i == n {
        Ordering::Equal
    } else {
        a[i].to_ascii_lowercase().cmp(&b[i].to_ascii_lowercase())
    };
    folded.then(a.len().cmp(&b.len()))
}

/// Storage class tag, then the value's bytes, length-prefixed where variable.
fn hash_value(h: &mut impl Hasher, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => h.write_u8(0),
        ValueRef::Integer(i) => {
            h.write_u8(1);
            h.write_i64(i);
        }
        ValueRef::Real(f) => {
            h.write_u8(2);
            h.write_u64(f.to_bits());
        }
        ValueRef::Text(t) => {
            h.write_u8(3);
            h.write_usize(t.len());
            h.write(t);
        }
        ValueRef::Blob(b) => {
            h.write_u8(4);
            h.write_usize(b.len());
            h.write(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database built by `sql` then, after `corrupt` ran with the schema writable, opened
    /// again so SQLite reads the rewritten schema.
    fn database(sql: &str, corrupt: &str) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TEMP VIEW series(value) AS WITH RECURSIVE s(v) AS \
             (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 500) SELECT v FROM s",
        )
        .unwrap();
        conn.execute_batch(sql).unwrap();
        if !corrupt.is_empty() {
            conn.execute_batch(&format!(
                "PRAGMA writable_schema = ON; {corrupt}; PRAGMA writable_schema = OFF;"
            ))
            .unwrap();
        }
        drop(conn);
        let conn = Connection::open(&path).unwrap();
        (dir, conn)
    }

    /// SQLite's own `PRAGMA integrity_check`: its problems, an error (a b-tree too damaged to
    /// check) counting as one.
    fn sqlite_finds(conn: &Connection) -> Vec<String> {
        let found = conn.prepare("PRAGMA integrity_check").and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
        match found {
            Ok(lines) => lines.into_iter().filter(|l| l != "ok").collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    /// Every shape an index can take that the scans handle: values of every storage class and
    /// edge value, the three collations, DESC, UNIQUE with NULLs, an INTEGER PRIMARY KEY, a
    /// shadowed rowid, WITHOUT ROWID tables with composite keys; and the fallbacks.
    const VARIED: &str = "
        CREATE TABLE mixed(id INTEGER PRIMARY KEY, any_value, r REAL, t TEXT, b BLOB);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
        INSERT INTO mixed SELECT i,
          CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN i WHEN 2 THEN i + 0.5 WHEN 3 THEN 'x' || i
            WHEN 4 THEN randomblob(i % 9) WHEN 5 THEN 9223372036854775807 - i
            ELSE -9.3e18 * (i % 3) END,
          CASE i % 5 WHEN 0 THEN 1.0 WHEN 1 THEN -0.0 WHEN 2 THEN 1e300 WHEN 3 THEN 4.9e-324
            ELSE i / 7.0 END,
          CASE i % 4 WHEN 0 THEN 'Abc' || i WHEN 1 THEN 'abc' || i || '  ' WHEN 2 THEN 'ABC'
            ELSE 'é' || char(0x10000 + i) END,
          CASE WHEN i % 3 = 0 THEN NULL ELSE zeroblob(i % 5) END
        FROM n;
        CREATE INDEX mixed_any ON mixed(any_value);
        CREATE INDEX mixed_r_desc ON mixed(r DESC, t);
        CREATE INDEX mixed_nocase ON mixed(t COLLATE NOCASE, b);
        CREATE INDEX mixed_rtrim ON mixed(t COLLATE RTRIM DESC);
        CREATE UNIQUE INDEX mixed_unique ON mixed(b, id);
        CREATE TABLE shadowed(rowid TEXT, _rowid_ TEXT, oid TEXT, v);
        INSERT INTO shadowed SELECT id, id, id, id % 10 FROM mixed;
        CREATE INDEX shadowed_v ON shadowed(v);
        CREATE TABLE kv(k TEXT COLLATE NOCASE, n INTEGER, v, PRIMARY KEY(k, n DESC))
          WITHOUT ROWID;
        INSERT INTO kv SELECT t || id, id % 3, any_value FROM mixed;
        CREATE INDEX kv_v ON kv(v);
        CREATE UNIQUE INDEX kv_nk ON kv(n, k);
        CREATE TABLE expr(a, b);
        INSERT INTO expr SELECT id, t FROM mixed;
        CREATE INDEX expr_lower ON expr(lower(b));
        CREATE INDEX expr_partial ON expr(a) WHERE a % 2 = 0;
        CREATE TABLE plain(x);
        INSERT INTO plain SELECT id FROM mixed;
        CREATE TABLE soft(id INTEGER PRIMARY KEY, deleted_at TEXT, [where] INTEGER, email TEXT);
        INSERT INTO soft SELECT id, CASE WHEN id % 3 = 0 THEN 'yes' END, id % 5, t || id FROM mixed;
        CREATE UNIQUE INDEX soft_live /* where? */ ON soft(email COLLATE NOCASE, [where])
          WHERE email IS NOT NULL AND `where` <> 4;
        CREATE INDEX soft_gone ON soft(deleted_at) where (id % 2 = 0) OR 'x)' = 'x)';
        CREATE TABLE live(email TEXT, deleted_at TEXT);
        INSERT INTO live SELECT email, deleted_at FROM soft;
        CREATE INDEX live_email ON live(email) WHERE deleted_at IS NULL;";

    #[test]
    fn nocase_stops_at_a_nul_as_sqlite_does() {
        use Ordering::*;
        // Equal up to the NUL, then by length: what follows the NUL never counts.
        assert_eq!(compare_nocase(b"a\0z", b"A\0b"), Equal);
        assert_eq!(compare_nocase(b"a\0zz", b"A\0b"), Greater);
        assert_eq!(compare_nocase(b"a\0", b"ab"), Less);
        assert_eq!(compare_nocase(b"ABC", b"abd"), Less);
        assert_eq!(compare_nocase(b"abc", b"ABC"), Equal);
        assert_eq!(compare_nocase(b"ab", b"abc"), Less);
        // The same against SQLite itself, on values with NULs in every place.
        let conn = Connection::open_in_memory().unwrap();
        let values: [&[u8]; 7] = [b"a\0z", b"A\0b", b"a", b"a\0", b"\0", b"B\0a", b"b"];
        for x in values {
            for y in values {
                let sqlite: i64 = conn
                    .query_row(
                        "SELECT CASE WHEN CAST(?1 AS TEXT) < CAST(?2 AS TEXT) COLLATE NOCASE \
                         THEN -1 WHEN CAST(?1 AS TEXT) = CAST(?2 AS TEXT) COLLATE NOCASE \
                         THEN 0 ELSE 1 END",
                        [x, y],
                        |r| r.get(0),
                    )
                    .unwrap();
                let ours = compare_nocase(x, y) as i64;
                assert_eq!(ours, sqlite, "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn a_sound_database_of_every_shape_passes_as_sqlite_says_it_does() {
        let (_dir, conn) = database(VARIED, "");
        assert_eq!(sqlite_finds(&conn), Vec::<String>::new());
        assert_eq!(check(&conn).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_scans_cover_what_they_can_and_leave_the_rest_to_sqlite() {
        let (_dir, conn) = database(VARIED, "");
        let table = |name: &str, without_rowid| Table {
            name: name.into(),
            without_rowid,
        };
        let scanned = |t: &Table| {
            plan(&conn, t)
                .unwrap()
                .map(|p| p.indexes.len() + usize::from(p.primary_key.is_some()))
        };
        assert_eq!(scanned(&table("mixed", false)), Some(5));
        assert_eq!(scanned(&table("kv", true)), Some(3));
        assert_eq!(scanned(&table("soft", false)), Some(2));
        // The WHERE needs a column the index lacks: SQLite reads the table to evaluate it.
        assert_eq!(scanned(&table("live", false)), None);
        assert_eq!(scanned(&table("expr", false)), None);
        // Every alias of the rowid is a column: the index's rowid cannot be selected.
        assert_eq!(scanned(&table("shadowed", false)), None);
    }

    /// Each damage `integrity_check` finds by its lookups, and `quick_check` does not.
    #[test]
    fn damage_only_the_full_check_sees_is_found() {
        let cases = [
            (
                "entries from another column",
                "CREATE TABLE t(a INTEGER, b INTEGER);
                 INSERT INTO t SELECT value, 1000 + value FROM series;
                 CREATE INDEX t_i ON t(a);",
                "UPDATE sqlite_schema SET sql = 'CREATE INDEX t_i ON t(b)' WHERE name = 't_i'",
                "does not hold exactly the entries",
            ),
            (
                "the same entries in another order",
                "CREATE TABLE t(a TEXT);
                 INSERT INTO t SELECT char(65 + value % 26) || char(97 + value % 26) || value
                   FROM series;
                 INSERT INTO t SELECT lower(a) FROM t;
                 CREATE INDEX t_i ON t(a COLLATE NOCASE);",
                "UPDATE sqlite_schema SET sql = 'CREATE INDEX t_i ON t(a)' WHERE name = 't_i'",
                "out of order",
            ),
            (
                "a duplicate in a UNIQUE index",
                "CREATE TABLE t(a INTEGER);
                 INSERT INTO t SELECT value % 100 FROM series;
                 CREATE INDEX t_i ON t(a);",
                "UPDATE sqlite_schema SET sql = 'CREATE UNIQUE INDEX t_i ON t(a)' \
                 WHERE name = 't_i'",
                "non-unique entry in index t_i",
            ),
            (
                "a partial index declared with another WHERE",
                "CREATE TABLE t(a INTEGER, b INTEGER);
                 INSERT INTO t SELECT value, value % 3 FROM series;
                 CREATE INDEX t_i ON t(a) WHERE b = 1;",
                "UPDATE sqlite_schema SET sql = 'CREATE INDEX t_i ON t(a) WHERE b = 2' \
                 WHERE name = 't_i'",
                "index t_i does not hold exactly the entries",
            ),
            (
                "a descending index declared ascending",
                "CREATE TABLE t(a REAL, b TEXT);
                 INSERT INTO t SELECT value / 3.0, 'x' FROM series;
                 CREATE INDEX t_i ON t(a DESC, b);",
                "UPDATE sqlite_schema SET sql = 'CREATE INDEX t_i ON t(a, b)' WHERE name = 't_i'",
                "out of order",
            ),
            (
                "a WITHOUT ROWID table out of key order",
                "CREATE TABLE kv(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID;
                 INSERT INTO kv SELECT char(97 + value % 26) || value, value
                   FROM series;
                 INSERT INTO kv SELECT upper(k) || '!', v FROM kv;",
                "UPDATE sqlite_schema SET sql = 'CREATE TABLE kv(k TEXT PRIMARY KEY, v) \
                 WITHOUT ROWID' WHERE name = 'kv'",
                "row not in PRIMARY KEY order for kv",
            ),
        ];
        for (what, sql, corrupt, expected) in cases {
            let (_dir, conn) = database(sql, corrupt);
            let quick: Vec<String> = conn
                .prepare("PRAGMA quick_check")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(quick, ["ok"], "{what}: quick_check should miss it");
            assert!(
                !sqlite_finds(&conn).is_empty(),
                "{what}: integrity_check sees it"
            );
            let found = check(&conn).unwrap();
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{what}: expected '{expected}', found {found:?}"
            );
        }
    }

    #[test]
    fn a_table_the_scans_cannot_cover_gets_sqlites_own_check() {
        let (_dir, conn) = database(
            "CREATE TABLE t(a INTEGER, b INTEGER);
             INSERT INTO t SELECT value, 1000 + value FROM series;
             CREATE INDEX t_i ON t(a + 0);",
            "UPDATE sqlite_schema SET sql = 'CREATE INDEX t_i ON t(b + 0)' WHERE name = 't_i'",
        );
        let found = check(&conn).unwrap();
        assert!(
            found.iter().any(|p| p.contains("missing from index t_i")),
            "{found:?}"
        );
    }

    /// A random table: column types, rows of every storage class with case and trailing-space
    /// variants, indexes with random collations, directions and UNIQUE, rowid or WITHOUT ROWID.
    fn random_database(rng: &mut fastrand::Rng) -> (String, Vec<String>) {
        let types = ["", "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC"];
        let collations = ["", " COLLATE NOCASE", " COLLATE RTRIM", " COLLATE BINARY"];
        let direction = |rng: &mut fastrand::Rng| if rng.bool() { " DESC" } else { "" };
        let cols: Vec<String> = (0..3)
            .map(|i| format!("c{i} {}", types[rng.usize(..types.len())]))
            .collect();
        let without_rowid = rng.u8(..4) == 0;
        let mut sql = if without_rowid {
            format!(
                "CREATE TABLE t({}, c3 INTEGER, PRIMARY KEY(c0{}{}, c3)) WITHOUT ROWID;",
                cols.join(", "),
                collations[rng.usize(..collations.len())],
                direction(rng)
            )
        } else {
            format!("CREATE TABLE t({});", cols.join(", "))
        };
        let pool = [
            "NULL",
            "0",
            "1",
            "1.0",
            "-0.0",
            "2.5",
            "9223372036854775807",
            "-9.3e18",
            "'a'",
            "'A'",
            "'a '",
            "'b'",
            "'B  '",
            "'é'",
            "x''",
            "x'00'",
            "x'0102'",
            "'10'",
            "1e300",
        ];
        for row in 0..rng.usize(1..120) {
            let mut value = || pool[rng.usize(..pool.len())];
            let (a, b, c) = (value(), value(), value());
            let key = if without_rowid {
                format!(", {row}")
            } else {
                String::new()
            };
            sql.push_str(&format!(
                "INSERT OR IGNORE INTO t VALUES({a}, {b}, {c}{key});"
            ));
        }
        let mut indexes = Vec::new();
        for i in 0..rng.usize(1..4) {
            let fields: Vec<String> = (0..rng.usize(1..3))
                .map(|_| {
                    format!(
                        "c{}{}{}",
                        rng.usize(..3),
                        collations[rng.usize(..collations.len())],
                        direction(rng)
                    )
                })
                .collect();
            let unique = if rng.u8(..4) == 0 { "UNIQUE " } else { "" };
            // Some partial, over the indexed column or another one.
            let partial = match rng.u8(..6) {
                0 => " WHERE c0 IS NOT NULL",
                1 => " WHERE c1 > 0",
                _ => "",
            };
            indexes.push(format!(
                "CREATE {unique}INDEX i{i} ON t({}){partial}",
                fields.join(", ")
            ));
        }
        (sql, indexes)
    }

    /// Differential: on random sound databases the scans agree with SQLite; after a random
    /// rewrite of an index's declaration (another collation, direction, column, UNIQUE, WHERE,
    /// or a plain index re-declared partial),
    /// whatever `integrity_check` finds, the scans find too. (They may find more: a
    /// misordered index whose lookups happen to succeed is still damaged.)
    #[test]
    fn fuzz_the_scans_against_integrity_check() {
        let mut damaged_seen = 0;
        for seed in 0..400u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let (sql, indexes) = random_database(&mut rng);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.sqlite");
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
                .unwrap();
            conn.execute_batch(&sql).unwrap();
            let created: Vec<&String> = indexes
                .iter()
                .filter(|ddl| conn.execute_batch(ddl).is_ok())
                .collect();
            assert_eq!(
                check(&conn).unwrap(),
                Vec::<String>::new(),
                "seed {seed}: {sql}"
            );
            let Some(victim) = created.get(rng.usize(..created.len().max(1))) else {
                continue;
            };
            let rewritten = match rng.u8(..6) {
                // A plain index re-declared partial, over rows its WHERE rejects.
                5 if !victim.contains("WHERE") => format!("{victim} WHERE c0 IS NOT NULL"),
                4 | 5 => victim
                    .replace("IS NOT NULL", "IS NULL")
                    .replace("> 0", "< 0"),
                0 => victim
                    .replacen("INDEX", "UNIQUE INDEX", 1)
                    .replace("UNIQUE UNIQUE", "UNIQUE"),
                1 => victim.replace(" DESC", "").replacen(')', " DESC)", 1),
                2 => victim
                    .replace(" COLLATE NOCASE", "")
                    .replace(" COLLATE RTRIM", " COLLATE NOCASE"),
                _ => victim
                    .replace("c0", "cX")
                    .replace("c1", "c0")
                    .replace("cX", "c1"),
            };
            let name = victim
                .split_whitespace()
                .find(|w| w.starts_with('i') && w.len() == 2);
            conn.execute_batch(&format!(
                "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = '{rewritten}' \
                 WHERE name = '{}'; PRAGMA writable_schema = OFF;",
                name.unwrap()
            ))
            .unwrap();
            drop(conn);
            let conn = Connection::open(&path).unwrap();
            // Two SQLites as oracles: the one we link, and the `sqlite3` CLI (3.40 on Debian
            // 12), whose integrity_check also counts a partial index's entries, which 3.50's
            // does not.
            // A damaged database may make either side fail outright: that is a finding too.
            let mut sqlite = sqlite_finds(&conn);
            sqlite.extend(cli_says(&path));
            let ours = check(&conn).unwrap_or_else(|e| vec![e.to_string()]);
            if !sqlite.is_empty() {
                damaged_seen += 1;
                assert!(
                    !ours.is_empty(),
                    "seed {seed}: integrity_check found {sqlite:?}, the scans nothing\n{sql}\n{rewritten}"
                );
            }
        }
        eprintln!("{damaged_seen} of 400 rewrites damaged the database");
        // The rewrites must actually damage something, or this proves nothing.
        assert!(damaged_seen > 50, "only {damaged_seen} damaged databases");
    }

    /// `PRAGMA integrity_check` by the `sqlite3` command, when it is installed (`.ci/run`
    /// installs it); its problems, none when it says ok or is missing.
    fn cli_says(path: &std::path::Path) -> Vec<String> {
        let Ok(out) = std::process::Command::new("sqlite3")
            .arg("-readonly")
            .arg(path)
            .arg("PRAGMA integrity_check")
            .output()
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the sqlite3 command is missing and CI=true"
            );
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| *l != "ok")
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_where_clause_is_found_outside_quotes_comments_and_parentheses() {
        let cases = [
            ("CREATE INDEX i ON t(a) WHERE a > 0", Some("a > 0")),
            ("CREATE INDEX i ON t(a)", None),
            ("CREATE INDEX \"where\" ON t(\"where\") where x", Some("x")),
            (
                "CREATE INDEX i ON t([where], `where`) WHERE 'WHERE' = a",
                Some("'WHERE' = a"),
            ),
            (
                "CREATE INDEX i /* WHERE */ ON t(a) -- WHERE\n WHERE b",
                Some("b"),
            ),
            (
                "CREATE INDEX i ON t(a, (b WHERE)) WHERE 'it''s' <> a",
                Some("'it''s' <> a"),
            ),
            ("CREATE INDEX somewhere ON t(nowhere) WHERE\nc", Some("c")),
        ];
        for (sql, expected) in cases {
            assert_eq!(where_clause(sql), expected, "{sql}");
        }
    }

    #[test]
    fn values_sort_as_sqlite_sorts_them() {
        use ValueRef::{Blob, Integer, Null, Real, Text};
        let b = Collation::Binary;
        assert_eq!(compare(Null, Integer(i64::MIN), b), Ordering::Less);
        assert_eq!(compare(Integer(2), Real(1.5), b), Ordering::Greater);
        assert_eq!(compare(Integer(1), Real(1.0), b), Ordering::Equal);
        assert_eq!(
            compare(Integer(i64::MAX), Real(2f64.powi(63)), b),
            Ordering::Less
        );
        assert_eq!(compare(Integer(-3), Real(-2.5), b), Ordering::Less);
        assert_eq!(compare(Real(1e300), Text(b""), b), Ordering::Less);
        assert_eq!(compare(Text(b"zz"), Blob(b""), b), Ordering::Less);
        assert_eq!(
            compare(Text(b"ABC"), Text(b"abd"), Collation::NoCase),
            Ordering::Less
        );
        assert_eq!(compare(Text(b"ABC"), Text(b"abd"), b), Ordering::Less);
        assert_eq!(compare(Text(b"b"), Text(b"B"), b), Ordering::Greater);
        assert_eq!(
            compare(Text(b"a  "), Text(b"a"), Collation::RTrim),
            Ordering::Equal
        );
        assert_eq!(compare(Blob(b"ab"), Blob(b"a"), b), Ordering::Greater);
    }
}
