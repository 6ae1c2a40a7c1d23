//! SQL text dump of a SQLite database that restores to an identical database.
//!
//! The script has the shape of `sqlite3 .dump` (`PRAGMA foreign_keys=OFF; BEGIN TRANSACTION;
//! ... COMMIT;`) so that the stock `sqlite3` CLI and [`super::script::run`] both load it into
//! an empty file. Where `.dump` loses data, this dump does not:
//!
//! - **Order.** Ordinary tables first, each followed by its rows, in `sqlite_schema` rowid
//!   order; then SQLite's own tables (`sqlite_sequence`, `sqlite_stat*`); then indexes, views
//!   and triggers in rowid order. Indexes are built once, after the data; triggers exist only
//!   after the data, so they never fire during the restore; each view or trigger was created
//!   after what it depends on, and rowid order keeps that.
//! - **Virtual tables** (FTS5, R*Tree) keep their data in ordinary "shadow" tables, which are
//!   dumped like any table. The virtual table itself is written straight into `sqlite_schema`
//!   under `PRAGMA writable_schema=ON`, with root page 0, as `.dump` does: running its
//!   `CREATE VIRTUAL TABLE` would make the module create (and then clash with) fresh shadow
//!   tables. Its rows are never dumped: they are the shadow tables' rows.
//! - **Rowids** of rowid tables without an INTEGER PRIMARY KEY are written explicitly (like
//!   `.dump --preserve-rowids`), so gaps left by deleted rows survive. When columns named
//!   `rowid`, `_rowid_` and `oid` all exist, SQL cannot name the rowid at all, so no SQL dump
//!   can keep it (nor can any query check it): such a table is refused at backup time, with
//!   `--format native` as the fix.
//! - **Generated columns** are left out of the INSERTs; SQLite recomputes them.
//! - **SQLite's own tables** cannot be created by name normally. Under `writable_schema` they
//!   can: `CREATE TABLE IF NOT EXISTS` with their exact definition (a no-op for
//!   `sqlite_sequence` when an AUTOINCREMENT table already made it), then their rows replace
//!   whatever the restore itself put there (the AUTOINCREMENT counters it bumped). This also
//!   keeps `sqlite_stat4` when the restoring SQLite was built without STAT4, where `.dump`'s
//!   `ANALYZE sqlite_schema` would not create it (or would create it when the source had none).
//! - **Values** keep their storage class and exact bits; see `write_value` (reals are not
//!   written as decimals: SQLite's decimal parser is not exact, see `write_real`).
//! - **Database settings**: `user_version`, `application_id`, page size, auto-vacuum and, for a
//!   non-UTF-8 database, the text encoding (which must come first, before anything exists).
//!
//! Limits, besides the rowid case above: a value whose literal exceeds SQLite's default 1 GB
//! statement length (a blob over about 500 MB, written in hex) cannot be restored from SQL:
//! back such a database up in native format. In a UTF-16 database, text holding a surrogate
//! without its pair (alone, or followed by a unit SQLite then reads as its pair) cannot be
//! carried exactly: the dump is refused at backup time, with `--format native`
//! as the fix.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::describe::Cell;
use super::sql::quote_ident;
use crate::error::{Error, Result};

/// Writes the whole database as a SQL script to `out`, one row at a time.
///
/// `conn` must be a private copy: everything is read inside one read transaction, so the dump is
/// consistent even if the copy were written to meanwhile.
pub fn write_sql(conn: &Connection, out: &mut dyn Write) -> Result<()> {
    let _read = conn.unchecked_transaction().map_err(db_error)?;
    let entries = schema_entries(conn)?;
    let mut sql = SqlWriter::new(out, TextEncoding::of(conn)?);
    write_header(conn, &mut sql)?;
    let (tables, others): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.kind == "table");
    let (internal, user): (Vec<_>, Vec<_>) = tables.into_iter().partition(|e| e.is_internal());
    for entry in user {
        if entry.is_virtual() {
            write_virtual_table(&mut sql, entry)?;
        } else {
            write_create(&mut sql, entry)?;
            write_rows(conn, &mut sql, &entry.name)?;
        }
    }
    for entry in internal {
        write_internal_table(conn, &mut sql, entry)?;
    }
    for entry in others {
        write_create(&mut sql, entry)?;
    }
    if sql.writable_schema {
        sql.raw("PRAGMA writable_schema=OFF;\n")?;
    }
    sql.raw("COMMIT;\n")?;
    sql.finish()
}

/// One row of `sqlite_schema` that has SQL (automatic indexes have none: their table's
/// `CREATE TABLE` makes them again).
struct SchemaEntry {
    kind: String,
    name: String,
    tbl_name: String,
    sql: String,
}

impl SchemaEntry {
    /// SQLite's own tables (`sqlite_sequence`, `sqlite_stat1`, ...): names starting with
    /// `sqlite_` in any case are reserved to SQLite.
    fn is_internal(&self) -> bool {
        self.name
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"))
    }

    /// SQLite stores a virtual table's SQL normalised to start with these words.
    fn is_virtual(&self) -> bool {
        self.sql
            .get(..20)
            .is_some_and(|p| p.eq_ignore_ascii_case("CREATE VIRTUAL TABLE"))
    }
}

fn schema_entries(conn: &Connection) -> Result<Vec<SchemaEntry>> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema \
             WHERE sql IS NOT NULL ORDER BY rowid",
        )
        .map_err(db_error)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(SchemaEntry {
                kind: r.get(0)?,
                name: r.get(1)?,
                tbl_name: r.get(2)?,
                sql: r.get(3)?,
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

/// Settings that must be in place before the first table exists, then the transaction, then the
/// header fields that are plain values.
fn write_header(conn: &Connection, sql: &mut SqlWriter<'_>) -> Result<()> {
    if let Some(name) = sql.encoding.pragma_name() {
        sql.raw(&format!("PRAGMA encoding='{name}';\n"))?;
    }
    for pragma in ["page_size", "auto_vacuum"] {
        sql.raw(&format!("PRAGMA {pragma}={};\n", pragma_int(conn, pragma)?))?;
    }
    // Foreign keys are checked per statement when on; rows go in table order, not parent
    // first. The pragma is a no-op inside a transaction, hence before BEGIN.
    sql.raw("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")?;
    for pragma in ["user_version", "application_id"] {
        sql.raw(&format!("PRAGMA {pragma}={};\n", pragma_int(conn, pragma)?))?;
    }
    Ok(())
}

fn pragma_int(conn: &Connection, pragma: &str) -> Result<i64> {
    conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
        .map_err(db_error)
}

/// The schema statement, then a fix for what the `sqlite3` CLI would alter in it: it reads the
/// script line by line and drops the `\r` of each `\r\n`, which would change the stored text of
/// a schema written with Windows line ends. Rewriting `sqlite_schema.sql` with the exact text
/// afterwards changes nothing but that text.
fn write_create(sql: &mut SqlWriter<'_>, entry: &SchemaEntry) -> Result<()> {
    sql.statement(&entry.sql)?;
    if entry.sql.contains('\r') {
        sql.writable_schema()?;
        sql.raw("UPDATE sqlite_schema SET sql=")?;
        sql.text(&entry.sql)?;
        sql.raw(" WHERE type=")?;
        sql.text(&entry.kind)?;
        sql.raw(" AND name=")?;
        sql.text(&entry.name)?;
        sql.raw(";\n")?;
    }
    Ok(())
}

/// The virtual table's own `sqlite_schema` row, written directly: see the module docs.
fn write_virtual_table(sql: &mut SqlWriter<'_>, entry: &SchemaEntry) -> Result<()> {
    sql.writable_schema()?;
    sql.raw("INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table',")?;
    sql.text(&entry.name)?;
    sql.raw(",")?;
    sql.text(&entry.tbl_name)?;
    sql.raw(",0,")?;
    sql.text(&entry.sql)?;
    sql.raw(");\n")
}

/// `sqlite_sequence`, `sqlite_stat1`, ...: see the module docs for why this works.
fn write_internal_table(
    conn: &Connection,
    sql: &mut SqlWriter<'_>,
    entry: &SchemaEntry,
) -> Result<()> {
    let definition = entry.sql.strip_prefix("CREATE TABLE ").ok_or_else(|| {
        snapshot_error(format!(
            "unexpected definition of {}: {}",
            entry.name, entry.sql
        ))
    })?;
    sql.writable_schema()?;
    sql.statement(&format!("CREATE TABLE IF NOT EXISTS {definition}"))?;
    sql.raw(&format!("DELETE FROM {};\n", quote_ident(&entry.name)))?;
    write_rows(conn, sql, &entry.name)
}

/// One `INSERT` per row, streamed straight from the query.
fn write_rows(conn: &Connection, sql: &mut SqlWriter<'_>, table: &str) -> Result<()> {
    let shape = TableShape::of(conn, table).map_err(db_error)?;
    if shape.unnameable_rowid {
        return Err(cannot_carry(format!(
            "table {table} has columns named rowid, _rowid_ and oid, so SQL cannot name its \
             rowids and a SQL dump would renumber them"
        )));
    }
    if let Some(column) = shape.first_mispaired_text(conn, table, sql.encoding)? {
        return Err(cannot_carry(format!(
            "table {table}, column {column}: text holding a UTF-16 surrogate without its pair, \
             which SQLite reads as another character"
        )));
    }
    super::describe::in_lockstep(
        conn,
        &shape.list,
        &shape.rest,
        |cell| match cell {
            Cell::Value(i, value) => {
                sql.raw(if i == 0 { &shape.insert } else { "," })?;
                sql.value(value).map_err(|e| match e {
                    Error::Output { io, .. } if io.kind() == std::io::ErrorKind::InvalidData => {
                        cannot_carry(format!("table {table}: {io}"))
                    }
                    other => other,
                })
            }
            // A table always has a column, so every row has started its INSERT.
            Cell::RowEnd => sql.raw(");\n"),
        },
        db_error,
    )
}

/// How a table's rows are read and written back.
struct TableShape {
    /// `SELECT [rowid,] <stored columns> FROM t NOT INDEXED [ORDER BY rowid]`, as its select
    /// list and the rest (a list wider than one statement may return is read in slices, see
    /// `describe::in_lockstep`). NOT INDEXED makes SQLite walk the table itself, in rowid (or
    /// primary key) order, even when an index covers every column.
    list: Vec<String>,
    rest: String,
    /// A rowid table whose rowid every name is taken for (see the module docs).
    unnameable_rowid: bool,
    /// `INSERT INTO t[(columns)] VALUES(`: the column list only when it is needed (an explicit
    /// rowid, or generated columns to leave out), so ordinary dumps read like `.dump`'s.
    insert: String,
}

impl TableShape {
    /// In a UTF-16 database, the first column holding text whose stored code units a SQL
    /// literal cannot give back. SQLite hands text over as UTF-8 without checking the units:
    /// a high surrogate followed by anything but a low one is read as a pair with its
    /// neighbour, and arrives as a valid but different character, so only the stored bytes
    /// (`CAST(c AS BLOB)`) tell. One extra pass over the columns of UTF-16 databases only.
    fn first_mispaired_text(
        &self,
        conn: &Connection,
        table: &str,
        encoding: TextEncoding,
    ) -> Result<Option<String>> {
        let Some(unit) = encoding.code_unit() else {
            return Ok(None);
        };
        for column in &self.list {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT CAST({column} AS BLOB) FROM {} NOT INDEXED WHERE typeof({column}) = 'text'",
                    quote_ident(table)
                ))
                .map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            while let Some(row) = rows.next().map_err(db_error)? {
                if let ValueRef::Blob(bytes) = row.get_ref(0).map_err(db_error)? {
                    let units = bytes.chunks_exact(2).map(|b| unit([b[0], b[1]]));
                    if char::decode_utf16(units).any(|c| c.is_err()) {
                        return Ok(Some(column.clone()));
                    }
                }
            }
        }
        Ok(None)
    }

    fn of(conn: &Connection, table: &str) -> rusqlite::Result<Self> {
        let columns = columns(conn, table)?;
        let stored: Vec<String> = columns
            .iter()
            .filter(|c| c.hidden == 0)
            .map(|c| quote_ident(&c.name))
            .collect();
        let quoted = quote_ident(table);
        let handling = rowid_handling(conn, table, &columns)?;
        let rowid = match handling {
            Rowid::Implicit | Rowid::Unnameable => None,
            Rowid::Explicit(alias) => Some(alias),
        };
        let mut list = stored.clone();
        if let Some(alias) = rowid {
            list.insert(0, alias.to_string());
        }
        let names = list.join(",");
        let order = rowid.map(|a| format!(" ORDER BY {a}")).unwrap_or_default();
        let insert = if rowid.is_some() || stored.len() < columns.len() {
            format!("INSERT INTO {quoted}({names}) VALUES(")
        } else {
            format!("INSERT INTO {quoted} VALUES(")
        };
        Ok(Self {
            rest: format!("FROM {quoted} NOT INDEXED{order}"),
            list,
            unnameable_rowid: matches!(handling, Rowid::Unnameable),
            insert,
        })
    }
}

struct Column {
    name: String,
    /// The declared type, as written.
    decl_type: String,
    pk: i64,
    /// `pragma_table_xinfo`'s hidden: 0 a stored column, 2 and 3 generated columns (virtual,
    /// stored), 1 a virtual table's hidden column.
    hidden: i64,
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut stmt =
        conn.prepare("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |r| {
        Ok(Column {
            name: r.get(0)?,
            decl_type: r.get(1)?,
            pk: r.get(2)?,
            hidden: r.get(3)?,
        })
    })?;
    rows.collect()
}

enum Rowid {
    /// WITHOUT ROWID, or the rowid is an INTEGER PRIMARY KEY column and so written anyway.
    Implicit,
    /// Must be written, under this name.
    Explicit(&'static str),
    /// Must be written but every name for it is taken by a column.
    Unnameable,
}

fn rowid_handling(conn: &Connection, table: &str, columns: &[Column]) -> rusqlite::Result<Rowid> {
    let without_rowid: bool = conn.query_row(
        "SELECT wr FROM pragma_table_list(?1) WHERE schema = 'main'",
        [table],
        |r| r.get(0),
    )?;
    if without_rowid || has_rowid_alias(conn, table, columns)? {
        return Ok(Rowid::Implicit);
    }
    let free = super::sql::rowid_alias(columns.iter().map(|c| c.name.as_str()));
    Ok(free.map_or(Rowid::Unnameable, Rowid::Explicit))
}

/// Whether the table has an INTEGER PRIMARY KEY that *is* the rowid. A single primary-key
/// column declared `INTEGER` is one, except in the historical `INTEGER PRIMARY KEY DESC` case,
/// which SQLite backs with a separate index instead: an index of origin `pk` tells them apart.
fn has_rowid_alias(conn: &Connection, table: &str, columns: &[Column]) -> rusqlite::Result<bool> {
    let pk: Vec<&Column> = columns.iter().filter(|c| c.pk > 0).collect();
    if pk.len() != 1 || !pk[0].decl_type.eq_ignore_ascii_case("INTEGER") {
        return Ok(false);
    }
    let pk_indexes: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'",
        [table],
        |r| r.get(0),
    )?;
    Ok(pk_indexes == 0)
}

/// The database's text encoding: the bytes inside a `CAST(X'..' AS TEXT)` must be in it.
#[derive(Clone, Copy)]
enum TextEncoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl TextEncoding {
    fn of(conn: &Connection) -> Result<Self> {
        let name: String = conn
            .query_row("PRAGMA encoding", [], |r| r.get(0))
            .map_err(db_error)?;
        Ok(match name.as_str() {
            "UTF-16le" => Self::Utf16Le,
            "UTF-16be" => Self::Utf16Be,
            _ => Self::Utf8,
        })
    }

    /// How two stored bytes make one UTF-16 code unit; none for UTF-8.
    fn code_unit(self) -> Option<fn([u8; 2]) -> u16> {
        match self {
            Self::Utf8 => None,
            Self::Utf16Le => Some(u16::from_le_bytes),
            Self::Utf16Be => Some(u16::from_be_bytes),
        }
    }

    /// The name to put in `PRAGMA encoding`; none for UTF-8, the default.
    fn pragma_name(self) -> Option<&'static str> {
        match self {
            Self::Utf8 => None,
            Self::Utf16Le => Some("UTF-16le"),
            Self::Utf16Be => Some("UTF-16be"),
        }
    }

    /// `text` as the database stores it. SQLite hands UTF-16 text over as UTF-8; the only text
    /// that does not survive that trip is an unpaired surrogate, which arrives as bytes that
    /// are not UTF-8: that is refused (`InvalidData`), since no SQL literal can give it back.
    fn bytes(self, text: &[u8]) -> std::io::Result<Vec<u8>> {
        if matches!(self, Self::Utf8) {
            return Ok(text.to_vec());
        }
        let text = std::str::from_utf8(text).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "text holding an unpaired UTF-16 surrogate, which a SQL dump cannot carry",
            )
        })?;
        let units = text.encode_utf16();
        Ok(match self {
            Self::Utf16Le => units.flat_map(u16::to_le_bytes).collect(),
            _ => units.flat_map(u16::to_be_bytes).collect(),
        })
    }
}

/// The output, buffered, with I/O errors mapped to the library's error once, here.
struct SqlWriter<'a> {
    out: BufWriter<&'a mut dyn Write>,
    encoding: TextEncoding,
    /// Whether `PRAGMA writable_schema=ON` was written (it is turned off before COMMIT).
    writable_schema: bool,
}

impl<'a> SqlWriter<'a> {
    fn new(out: &'a mut dyn Write, encoding: TextEncoding) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 16, out),
            encoding,
            writable_schema: false,
        }
    }

    fn raw(&mut self, s: &str) -> Result<()> {
        self.out.write_all(s.as_bytes()).map_err(io_error)
    }

    /// A schema statement and its `;`. Stored SQL may end in a `--` comment in databases made
    /// by old SQLite versions, which would swallow a `;` on the same line.
    fn statement(&mut self, sql: &str) -> Result<()> {
        self.raw(sql)?;
        self.raw(if sql.contains("--") { "\n;\n" } else { ";\n" })
    }

    fn writable_schema(&mut self) -> Result<()> {
        if !self.writable_schema {
            self.raw("PRAGMA writable_schema=ON;\n")?;
            self.writable_schema = true;
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<()> {
        self.value(ValueRef::Text(text.as_bytes()))
    }

    fn value(&mut self, value: ValueRef<'_>) -> Result<()> {
        write_value(&mut self.out, value, self.encoding).map_err(io_error)
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(io_error)
    }
}

/// A value as a SQL literal that reads back with the same storage class and the same bytes.
fn write_value(
    out: &mut dyn Write,
    value: ValueRef<'_>,
    encoding: TextEncoding,
) -> std::io::Result<()> {
    match value {
        ValueRef::Null => out.write_all(b"NULL"),
        ValueRef::Integer(i) => write!(out, "{i}"),
        ValueRef::Real(f) => write_real(out, f),
        ValueRef::Text(t) => write_text(out, t, encoding),
        ValueRef::Blob(b) => {
            out.write_all(b"X'")?;
            write_hex(out, b)?;
            out.write_all(b"'")
        }
    }
}

/// Reals, so that they read back bit for bit in any SQLite:
/// - whole numbers up to 2^53 as `123.0` (`-0.0` keeps its sign), which every SQLite reads
///   exactly: the digits form an exact integer and the only scaling is by 10, exact too;
/// - ±infinity as `9e999`/`-9e999`, which overflow to it (SQLite cannot store NaN: it reads as
///   NULL, and is written so);
/// - every other value as exact binary arithmetic, see [`write_exact`].
///
/// Why not the shortest decimal that reads back (Rust's `{:?}`)? Because SQLite's decimal
/// parser is not correctly rounded. Measured on random doubles: the 3.40 CLI (long double
/// arithmetic) reads about 1 in 200 one bit off, even plain ones such as `9619.019002`, and
/// the 3.50 we link (double-double arithmetic) about 1 in 6; 19 significant digits help 3.40
/// but not 3.50 beyond magnitudes of about 1e±80. A backup whose reals drift by one bit fails
/// its own restore test, so no decimal is trusted.
fn write_real(out: &mut dyn Write, f: f64) -> std::io::Result<()> {
    if f.is_nan() {
        out.write_all(b"NULL")
    } else if f.is_infinite() {
        out.write_all(if f > 0.0 { b"9e999" } else { b"-9e999" })
    } else if f.fract() == 0.0 && f.abs() <= 2f64.powi(53) {
        write!(out, "{f:?}")
    } else {
        write_exact(out, f)
    }
}

/// `(m.0/2^62/.../2^r)` or `(m.0*2^62*...*2^r)` for f = m·2^e: the literal `m.0` is read
/// exactly (|m| < 2^53, see above), the powers of two are integers (exact), and multiplying or
/// dividing by a power of two is exact whenever the result is representable, which every
/// step's result is: each lies between m and f, and has no bit below f's lowest. So the value is
/// rebuilt by IEEE arithmetic alone, the same on every platform and SQLite version.
fn write_exact(out: &mut dyn Write, f: f64) -> std::io::Result<()> {
    let bits = f.to_bits();
    let biased_exponent = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1 << 52) - 1);
    let (mut mantissa, mut exponent) = if biased_exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased_exponent - 1075)
    };
    // Callers never pass zero, so the mantissa has a lowest set bit.
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    exponent += i64::from(zeros);
    let sign = if f.is_sign_negative() { "-" } else { "" };
    write!(out, "({sign}{mantissa}.0")?;
    let operator = if exponent < 0 { '/' } else { '*' };
    let mut remaining = exponent.abs();
    while remaining > 0 {
        let step = remaining.min(62);
        write!(out, "{operator}{}", 1u64 << step)?;
        remaining -= step;
    }
    out.write_all(b")")
}

/// Text as a quoted literal when that is safe, else as `CAST(X'..' AS TEXT)`, which gives the
/// very same bytes with type TEXT. Needed for: NUL (a literal ends there), `\r` (the `sqlite3`
/// CLI drops it before a line end), other control characters (kept out of the script so no
/// line-oriented tool mangles them) and bytes that are not UTF-8 (SQLite does not check, a
/// script must be UTF-8). Newlines and tabs stay readable in the literal.
fn write_text(out: &mut dyn Write, text: &[u8], encoding: TextEncoding) -> std::io::Result<()> {
    let plain = std::str::from_utf8(text).is_ok()
        && !text.iter().any(|&b| b < 0x20 && b != b'\n' && b != b'\t');
    if !plain {
        out.write_all(b"CAST(X'")?;
        write_hex(out, &encoding.bytes(text)?)?;
        return out.write_all(b"' AS TEXT)");
    }
    out.write_all(b"'")?;
    let mut pieces = text.split(|&b| b == b'\'');
    if let Some(first) = pieces.next() {
        out.write_all(first)?;
    }
    for piece in pieces {
        out.write_all(b"''")?;
        out.write_all(piece)?;
    }
    out.write_all(b"'")
}

/// Hex in chunks, so a multi-megabyte blob is never copied whole.
fn write_hex(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut buf = [0u8; 8192];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        out.write_all(&buf[..2 * chunk.len()])?;
    }
    Ok(())
}

/// Something a SQL dump cannot carry exactly: refused at backup time, before anything is
/// written under a backup's name, with the format that can.
fn cannot_carry(what: String) -> Error {
    Error::Usage(format!(
        "{what}: a SQL dump cannot carry it exactly, so it is refused; back this database up \
         with --format native (the database file itself)"
    ))
}

fn io_error(err: std::io::Error) -> Error {
    Error::output("write SQL dump", PathBuf::from("(output stream)"), err)
}

fn db_error(err: rusqlite::Error) -> Error {
    snapshot_error(err)
}

fn snapshot_error(reason: impl std::fmt::Display) -> Error {
    Error::Verify {
        object: "snapshot".into(),
        reason: reason.to_string(),
    }
}
