//! Which rows violate a foreign key: exactly the rows `PRAGMA foreign_key_check` lists, found
//! in an order that keeps large databases cheap.
//!
//! SQLite enforces foreign keys only when a connection asks, so orphan rows are common in real
//! databases and are not damage; a copy must show exactly the source's violations, no fewer and
//! no more, and the manifest records them.
//!
//! The pragma reads each child table in rowid order and looks every row's parent up: seeks
//! scattered over the parent table, which once the parent outgrows the page cache are reads
//! from the file, again and again (a 2 GB database spent most of its description there;
//! BENCHMARKS.md, "Design decisions"). Most foreign keys point at the parent's INTEGER PRIMARY
//! KEY; for those the same lookup is asked as a query, which SQLite answers by reading the
//! child's index on the key column in key order, so the seeks walk the parent once from start
//! to end. The query finds exactly the pragma's rows: both read the child column the same way,
//! skip NULLs, and look the value up with the same `SeekRowid` operation (which converts what
//! it can to an integer and finds nothing for the rest); the query is used only when SQLite
//! says it runs that lookup. Every other child table is left to the pragma itself.

use std::collections::BTreeMap;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::sql::{column_names, primary_key, quote_ident, rowid_alias};
use crate::archive::compress::hex;

/// One row the pragma lists: child table, its rowid (none for WITHOUT ROWID), the parent as
/// the key names it, and the key's number among the child's keys.
type Violation = (String, Option<i64>, String, i64);

/// `none`, or how many rows violate foreign keys per table and a hash of exactly which.
pub fn state(conn: &Connection) -> rusqlite::Result<String> {
    let mut violations = with_cache_of_at_least(conn, CACHE_KIB, || violations(conn))?;
    if violations.is_empty() {
        return Ok("none".into());
    }
    violations.sort();
    let mut hasher = Sha256::new();
    let mut per_table: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (table, rowid, parent, fk) in &violations {
        for field in [table.as_str(), parent.as_str()] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.update(rowid.unwrap_or(i64::MIN).to_le_bytes());
        hasher.update(fk.to_le_bytes());
        *per_table.entry((table, parent)).or_default() += 1;
    }
    let tables: Vec<String> = per_table
        .iter()
        .map(|((table, parent), n)| format!("{table} → {parent}: {n}"))
        .collect();
    Ok(format!(
        "{} row(s) violate foreign keys ({}), sha256 {}",
        violations.len(),
        tables.join(", "),
        &hex(&hasher.finalize())[..16]
    ))
}

/// The rows `PRAGMA foreign_key_check` lists, in no particular order.
fn violations(conn: &Connection) -> rusqlite::Result<Vec<Violation>> {
    let mut found = Vec::new();
    // Whether each table is WITHOUT ROWID, read once: `pragma_table_list` lists the whole
    // schema each time it is asked (joined to the schema, too), which made a schema of 3,000
    // tables with keys take 3.4-3.9 s instead of 0.4 s. A table it does not list goes to the
    // pragma.
    let rowid_tables: std::collections::HashSet<String> = {
        let mut stmt =
            conn.prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND wr = 0")?;
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let children = {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?;
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .map(|name| name.map(|name| (!rowid_tables.contains(&name), name)))
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    for (without_rowid, child) in children {
        let keys = keys_of(conn, &child)?;
        if keys.is_empty() {
            continue;
        }
        let lookups = match without_rowid {
            true => None,
            false => lookups(conn, &child, &keys)?,
        };
        match lookups {
            Some(lookups) => {
                for lookup in lookups {
                    let mut stmt = conn.prepare(&lookup.sql)?;
                    let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
                    for rowid in rows {
                        found.push((
                            child.clone(),
                            Some(rowid?),
                            lookup.parent.clone(),
                            lookup.id,
                        ));
                    }
                }
            }
            None => {
                let mut stmt = conn.prepare("SELECT * FROM pragma_foreign_key_check(?1)")?;
                let rows = stmt.query_map([&child], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
                for row in rows {
                    found.push(row?);
                }
            }
        }
    }
    Ok(found)
}

/// One foreign key as `PRAGMA foreign_key_list` describes it: a row per column.
struct Key {
    id: i64,
    parent: String,
    columns: Vec<(String, Option<String>)>,
}

fn keys_of(conn: &Connection, child: &str) -> rusqlite::Result<Vec<Key>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)",
    )?;
    let mut keys: Vec<Key> = Vec::new();
    let mut rows = stmt.query([child])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let column = (row.get(2)?, row.get(3)?);
        match keys.last_mut() {
            Some(key) if key.id == id => key.columns.push(column),
            _ => keys.push(Key {
                id,
                parent: row.get(1)?,
                columns: vec![column],
            }),
        }
    }
    Ok(keys)
}

/// A query listing the rowids of the child rows that violate one key.
struct Lookup {
    id: i64,
    parent: String,
    sql: String,
}

/// The queries that list the violations of `child` (a rowid table), one per key, or `None`
/// when one of its keys is not a single column pointing at the INTEGER PRIMARY KEY of an
/// existing rowid table (or the child's own rowid cannot be named): the pragma then checks
/// the whole table.
fn lookups(conn: &Connection, child: &str, keys: &[Key]) -> rusqlite::Result<Option<Vec<Lookup>>> {
    let columns = column_names(conn, child)?;
    let Some(rowid) = rowid_alias(columns.iter().map(String::as_str)) else {
        return Ok(None);
    };
    let mut lookups = Vec::new();
    for key in keys {
        let [(from, to)] = key.columns.as_slice() else {
            return Ok(None);
        };
        // Without a column named, the key is the parent's primary key: the lookup below
        // proves it is the INTEGER PRIMARY KEY.
        let to = match to {
            // A name that is no column (`rowid`, say) makes the pragma look for an index and
            // fail, where the query would read the rowid.
            Some(to) if is_column(conn, &key.parent, to)? => to.clone(),
            Some(_) => return Ok(None),
            None => match primary_key(conn, &key.parent)?.as_slice() {
                [only] => only.clone(),
                _ => return Ok(None),
            },
        };
        let sql = format!(
            "SELECT c.{rowid} FROM {child} AS c WHERE c.{from} IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM {parent} AS p WHERE p.{to} = c.{from})",
            child = quote_ident(child),
            from = quote_ident(from),
            parent = quote_ident(&key.parent),
            to = quote_ident(&to),
        );
        if !seeks_rowid(conn, &sql)? {
            return Ok(None);
        }
        lookups.push(Lookup {
            id: key.id,
            parent: key.parent.clone(),
            sql,
        });
    }
    Ok(Some(lookups))
}

fn is_column(conn: &Connection, table: &str, name: &str) -> rusqlite::Result<bool> {
    Ok(column_names(conn, table)?
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name)))
}

/// Whether SQLite looks the parent up by rowid (`SeekRowid`), as the pragma does for a key on
/// the INTEGER PRIMARY KEY. A query SQLite refuses to prepare (no such parent, say) is not
/// run: the pragma decides what that means.
fn seeks_rowid(conn: &Connection, sql: &str) -> rusqlite::Result<bool> {
    let Ok(mut stmt) = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")) else {
        return Ok(false);
    };
    let details = stmt
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(details
        .iter()
        .any(|d| d == "SEARCH p USING INTEGER PRIMARY KEY (rowid=?)"))
}

/// The page cache the check gets, in KiB: the pragma's seeks, for the tables it still checks,
/// read the file again and again once the parent outgrows SQLite's default cache (about
/// 2 MB), while every other pass of a description reads pages in order and needs no more.
const CACHE_KIB: i64 = 8 * 1024;

/// Runs `f` with `conn`'s page cache raised to `kib` KiB if it is smaller, and puts it back
/// after: SQLite frees the pages beyond the old size, so the memory is held only meanwhile.
fn with_cache_of_at_least<T>(
    conn: &Connection,
    kib: i64,
    f: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    // Negative: KiB; positive: pages.
    let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let cache_kib = if cache < 0 {
        -cache
    } else {
        cache * page_size / 1024
    };
    if cache_kib >= kib {
        return f();
    }
    conn.pragma_update(None, "cache_size", -kib)?;
    let result = f();
    conn.pragma_update(None, "cache_size", cache)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Child tables of every kind the lookups take, and of kinds left to the pragma, filled
    /// with values of every storage class (numbers, numeric and other text, BLOBs, NULL),
    /// some with a parent and some without.
    const SCHEMA: &str = "
        PRAGMA foreign_keys = OFF;
        CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE p2(a, b, PRIMARY KEY(a, b));
        CREATE TABLE pdesc(id INTEGER PRIMARY KEY DESC);
        CREATE TABLE pu(code TEXT UNIQUE);
        CREATE TABLE c_int(x INTEGER REFERENCES p(id));
        CREATE TABLE c_text(x TEXT REFERENCES p);
        CREATE TABLE c_none(x REFERENCES p(ID));
        CREATE TABLE c_real(x REAL REFERENCES p(id));
        CREATE TABLE c_indexed(x INTEGER REFERENCES p(id), y TEXT);
        CREATE INDEX c_indexed_x ON c_indexed(x);
        CREATE TABLE tree(id INTEGER PRIMARY KEY, up INTEGER REFERENCES tree(id));
        CREATE TABLE c_pk(id INTEGER PRIMARY KEY REFERENCES p(id));
        CREATE TABLE c_two(x REFERENCES p(id), y REFERENCES tree);
        CREATE TABLE c_gen(y INTEGER, x INTEGER GENERATED ALWAYS AS (y + 1) REFERENCES p(id));
        CREATE TABLE c_alter(a);
        CREATE TABLE c_shadow(rowid TEXT, _rowid_ TEXT, oid TEXT, x INTEGER REFERENCES p(id));
        CREATE TABLE c_wr(k INTEGER PRIMARY KEY, x INTEGER REFERENCES p(id)) WITHOUT ROWID;
        CREATE TABLE c_comp(a, b, FOREIGN KEY(a, b) REFERENCES p2(a, b));
        CREATE TABLE c_missing(x REFERENCES nosuch(id));
        CREATE TABLE c_desc(x REFERENCES pdesc(id));
        CREATE TABLE c_u(x REFERENCES pu(code));
        CREATE TABLE c_mixed(x REFERENCES p(id), a, b, FOREIGN KEY(a, b) REFERENCES p2(a, b));
    ";

    const FAST: &[&str] = &[
        "c_int",
        "c_text",
        "c_none",
        "c_real",
        "c_indexed",
        "tree",
        "c_pk",
        "c_two",
        "c_gen",
        "c_alter",
    ];
    const PRAGMA: &[&str] = &[
        "c_shadow",
        "c_wr",
        "c_comp",
        "c_missing",
        "c_desc",
        "c_u",
        "c_mixed",
    ];

    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let values = [
            "NULL",
            "1",
            "7",
            "49",
            "50",
            "51",
            "0",
            "-3",
            "9223372036854775807",
            "7.0",
            "7.5",
            "'7'",
            "'7.0'",
            "' 7'",
            "'7 '",
            "'0x7'",
            "'abc'",
            "''",
            "x'07'",
            "x''",
            "1e1",
            "'1e1'",
            "-0.0",
            "'-0'",
        ];
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
             INSERT INTO p SELECT i, 'p' || i FROM n;
             INSERT INTO p2 VALUES (1, 1), ('a', 'b');
             INSERT INTO pdesc VALUES (1), (2);
             INSERT INTO pu VALUES ('7'), ('abc');",
        )
        .unwrap();
        // Every value in every table, several times over in a scrambled order.
        let mut seed = 12345u64;
        for i in 0..400 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = values[(seed >> 33) as usize % values.len()];
            let w = values[(seed >> 17) as usize % values.len()];
            let k = i + 100;
            conn.execute_batch(&format!(
                "INSERT INTO c_int VALUES ({v}); INSERT INTO c_text VALUES ({v});
                 INSERT INTO c_none VALUES ({v}); INSERT INTO c_real VALUES ({v});
                 INSERT INTO c_indexed VALUES ({v}, {w});
                 INSERT INTO tree VALUES ({k}, CASE WHEN {k} % 3 = 0 THEN {k} - 1 ELSE {v} END);
                 INSERT OR IGNORE INTO c_pk VALUES (CASE WHEN {k} % 2 = 0 THEN {k} % 60 ELSE {k} END);
                 INSERT INTO c_two VALUES ({v}, {w});
                 INSERT INTO c_gen(y) VALUES ({v});
                 INSERT INTO c_alter VALUES ({v});
                 INSERT INTO c_shadow VALUES ('r', 'r', 'r', {v});
                 INSERT OR IGNORE INTO c_wr VALUES ({k}, {v});
                 INSERT INTO c_comp VALUES ({v}, {w});
                 INSERT INTO c_missing VALUES ({v});
                 INSERT INTO c_desc VALUES ({v});
                 INSERT INTO c_u VALUES ({v});
                 INSERT INTO c_mixed VALUES ({v}, {v}, {w});"
            ))
            .unwrap();
        }
        // Rows from before the column was added read its default.
        conn.execute_batch(
            "ALTER TABLE c_alter ADD COLUMN x INTEGER REFERENCES p(id) DEFAULT 99;
             INSERT INTO c_alter VALUES (1, 7), (2, 70), (3, NULL), (4, '7');",
        )
        .unwrap();
        conn
    }

    fn sorted(mut v: Vec<Violation>) -> Vec<Violation> {
        v.sort();
        v
    }

    fn pragma(conn: &Connection) -> rusqlite::Result<Vec<Violation>> {
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect()
    }

    /// The lookups list exactly the rows the pragma lists, table by table, and are what
    /// checks the tables they can check.
    #[test]
    fn the_lookups_find_exactly_the_pragmas_rows() {
        let conn = database();
        let expected = sorted(pragma(&conn).unwrap());
        let found = sorted(violations(&conn).unwrap());
        for table in FAST.iter().chain(PRAGMA) {
            let of = |v: &[Violation]| -> Vec<Violation> {
                v.iter().filter(|r| r.0 == *table).cloned().collect()
            };
            assert!(!of(&expected).is_empty(), "{table} has violations to find");
            assert_eq!(of(&found), of(&expected), "{table}");
        }
        assert_eq!(found, expected);
        for table in FAST {
            let keys = keys_of(&conn, table).unwrap();
            assert!(
                lookups(&conn, table, &keys).unwrap().is_some(),
                "{table} is looked up"
            );
        }
        for table in PRAGMA {
            let keys = keys_of(&conn, table).unwrap();
            assert!(
                lookups(&conn, table, &keys).unwrap().is_none(),
                "{table} is the pragma's"
            );
        }
    }

    /// A key the pragma cannot resolve is its error, whichever way the table is checked.
    #[test]
    fn a_key_the_pragma_cannot_resolve_fails_as_it_does() {
        for child in [
            "CREATE TABLE c(x REFERENCES p(rowid))",
            "CREATE TABLE c(x REFERENCES p(name))",
            "CREATE TABLE c(x REFERENCES p(nosuch))",
        ] {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch(&format!(
                "PRAGMA foreign_keys = OFF; CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT); \
                 {child}; \
                 INSERT INTO c VALUES (1);"
            ))
            .unwrap();
            let expected = pragma(&conn).unwrap_err().to_string();
            let found = violations(&conn).unwrap_err().to_string();
            assert_eq!(found, expected, "{child}");
            assert!(found.contains("foreign key mismatch"), "{found}");
        }
    }

    /// The check's larger cache is the check's alone: the connection's own size is back
    /// afterwards, whether it was smaller (raised, then restored) or larger (kept).
    #[test]
    fn the_foreign_key_check_gives_the_cache_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; CREATE TABLE p(id INTEGER PRIMARY KEY); \
             CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id)); \
             INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1), (2, 7);",
        )
        .unwrap();
        let cache = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA cache_size", [], |r| r.get(0))
                .unwrap()
        };
        for before in [-2000, 100, -(CACHE_KIB * 2)] {
            conn.pragma_update(None, "cache_size", before).unwrap();
            let mut seen = None;
            with_cache_of_at_least(&conn, CACHE_KIB, || {
                seen = Some(cache(&conn));
                Ok(())
            })
            .unwrap();
            let during = seen.unwrap();
            assert!(
                during == -CACHE_KIB || during == before,
                "{during} during, {before} before"
            );
            assert_eq!(cache(&conn), before);
            let state = state(&conn).unwrap();
            assert!(state.starts_with("1 row(s) violate"), "{state}");
            assert_eq!(cache(&conn), before);
        }
        conn.pragma_update(None, "cache_size", -2000).unwrap();
        let mut seen = 0;
        with_cache_of_at_least(&conn, CACHE_KIB, || {
            seen = cache(&conn);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, -CACHE_KIB, "a small cache is raised");
    }
}
