//! SQLite databases full of the cases a backup must carry over exactly.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

/// Reals that are hard to write as text and read back bit for bit: the extremes, subnormals,
/// negative zero, infinities, and values that SQLite 3.40 misreads in their shortest form.
pub const TRICKY_REALS: &[f64] = &[
    5e-324,
    -5e-324,
    2.225073858507201e-308,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    -0.0,
    0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.1,
    1.5,
    123.0,
    9007199254740992.0,
    9007199254740994.0,
    1e16,
    1e300,
    9619.019002,
    84.05053049152,
    466.373024666389,
    0.06660108,
    -2.2606631148481385e-299,
    1.829402849984213e-298,
    -3.394825485491527e-306,
];

/// Texts that a naive dump mangles: quotes, NUL, CR/LF, control characters, SQL-looking
/// content, non-ASCII, and bytes that are not UTF-8 (inserted as blobs cast to text).
pub const TRICKY_TEXTS: &[&[u8]] = &[
    b"",
    b"it's \"quoted\"",
    b"before\0after NUL",
    b"\0",
    b"line one\nline two\n",
    b"windows\r\nline ends\r\n",
    b"lone\rcarriage return",
    b"tab\tand \x01\x07\x1b\x7f controls",
    b"'); DROP TABLE t; --",
    b"semi;\ncolons;\n;\n",
    "héllo wörld 🎉 日本語".as_bytes(),
    b"\xff\xfe not utf-8 \xc3",
    b"/* not a comment */ -- nor this",
];

/// A small deterministic generator, so random-looking data is the same on every run.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Any finite double, from random bits.
    pub fn finite_f64(&mut self) -> f64 {
        loop {
            let f = f64::from_bits(self.next_u64());
            if f.is_finite() {
                return f;
            }
        }
    }
}

/// Builds the edge-case database at `path` (which must not exist).
pub fn build_edge_case_db(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("create edge-case database");
    // Children go in before their parents (as they may in real data, checked or not).
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .expect("foreign keys off");
    // One transaction: thousands of autocommitted inserts would each wait for a sync.
    conn.execute_batch("BEGIN").expect("begin");
    conn.execute_batch(SCHEMA).expect("edge-case schema");
    // A schema written with Windows line ends keeps them in sqlite_schema.sql.
    conn.execute_batch("CREATE TABLE crlf(a,\r\n  b)\r\n;")
        .expect("table with CRLF in its definition");
    fill_values(&conn);
    fill_shaped_tables(&conn);
    fill_virtual_tables(&conn);
    conn.execute_batch(
        "ANALYZE;
         PRAGMA user_version = 42;
         PRAGMA application_id = -123456789;
         COMMIT;",
    )
    .expect("analyze and header fields");
    conn
}

const SCHEMA: &str = r#"
-- A child created before its parent, with rows inserted in that order too.
CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES "order"(id));
CREATE TABLE "order" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    "select" TEXT,
    "weird ""name"" col" BLOB,
    "ünïcödé col" REAL
);
CREATE TABLE log(id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT);
CREATE TABLE vals(id INTEGER PRIMARY KEY, v);
CREATE TABLE "with space ü"(a, b TEXT);
CREATE TABLE has_rowid_column(rowid TEXT, x);
CREATE TABLE pk_desc(id INTEGER PRIMARY KEY DESC, x);
CREATE TABLE pk_int(id INT PRIMARY KEY, x);
CREATE TABLE wr(k TEXT PRIMARY KEY, v, n INTEGER) WITHOUT ROWID;
CREATE TABLE st(id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, a ANY) STRICT;
CREATE TABLE gen(
    a INTEGER,
    b TEXT,
    c INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL,
    d TEXT GENERATED ALWAYS AS (upper(b)) STORED
);
CREATE TABLE covered(a, b);
CREATE INDEX covered_ab ON covered(a, b);
CREATE UNIQUE INDEX order_select ON "order"("select");
CREATE INDEX vals_partial ON vals(v) WHERE typeof(v) = 'real';
CREATE INDEX gen_expr ON gen(lower(b), c);
CREATE VIEW order_view AS SELECT id, "select" FROM "order";
CREATE VIEW view_on_view AS SELECT count(*) AS n FROM order_view;
CREATE TRIGGER order_logged AFTER INSERT ON "order" BEGIN
    INSERT INTO log(note) VALUES ('inserted ' || new.id); -- a ; in a trigger body
END;
CREATE TRIGGER view_insert INSTEAD OF INSERT ON order_view BEGIN
    INSERT INTO "order"("select") VALUES (new."select");
END;
"#;

fn fill_values(conn: &Connection) {
    let mut insert = conn
        .prepare("INSERT INTO vals(v) VALUES (?1)")
        .expect("prepare vals");
    for f in TRICKY_REALS {
        insert.execute([f]).expect("insert real");
    }
    for i in [0, 1, -1, i64::MIN, i64::MAX, i64::MIN + 1] {
        insert.execute([i]).expect("insert integer");
    }
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        insert
            .execute([random.finite_f64()])
            .expect("insert random real");
    }
    for _ in 0..200 {
        insert
            .execute([random.next_u64() as i64])
            .expect("insert random integer");
    }
    let mut text = conn
        .prepare("INSERT INTO vals(v) VALUES (CAST(?1 AS TEXT))")
        .expect("prepare text");
    for t in TRICKY_TEXTS {
        text.execute([t]).expect("insert text");
    }
    insert
        .execute([rusqlite::types::Null])
        .expect("insert null");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    insert.execute([&all_bytes]).expect("insert blob");
    insert
        .execute([Vec::<u8>::new()])
        .expect("insert empty blob");
}

fn fill_shaped_tables(conn: &Connection) {
    conn.execute_batch(
        r#"
        INSERT INTO child VALUES (1, 3), (2, 1);
        INSERT INTO "order"("select", "weird ""name"" col", "ünïcödé col")
            VALUES ('a', X'00ff', 1.25), ('b', NULL, -0.0), ('c', X'', 3.0);
        INSERT INTO "order"(id, "select") VALUES (100, 'high');
        DELETE FROM "order" WHERE id = 100;
        DELETE FROM "order" WHERE id = 2;
        INSERT INTO "with space ü" VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four'),
            (5, 'five'), (6, 'six');
        DELETE FROM "with space ü" WHERE a IN (2, 4);
        INSERT INTO "with space ü"(rowid, a, b) VALUES (-5, 'negative', 'rowid'),
            (9223372036854775807, 'max', 'rowid');
        INSERT INTO has_rowid_column(rowid, x) VALUES ('not the rowid', 1), ('still not', 2);
        DELETE FROM has_rowid_column WHERE x = 1;
        INSERT INTO pk_desc VALUES (10, 'a'), (5, 'b'), (7, 'c');
        DELETE FROM pk_desc WHERE id = 5;
        INSERT INTO pk_int VALUES (3, 'x'), (1, 'y'), (2, 'z');
        DELETE FROM pk_int WHERE id = 1;
        INSERT INTO wr VALUES ('k1', 1.5, 1), ('k0', X'00', 2), ('', NULL, 3);
        INSERT INTO st VALUES (1, -9223372036854775808, 5e-324, 'text', X'01', '123'),
            (2, 9223372036854775807, -0.0, '', X'', 1.5),
            (3, NULL, NULL, NULL, NULL, X'ABCD'),
            (4, 0, 1e308, 'x', X'00', 42);
        INSERT INTO gen(a, b) VALUES (1, 'one'), (2, 'two'), (3, NULL);
        DELETE FROM gen WHERE a = 2;
        INSERT INTO covered VALUES ('z', 1), ('a', 2), ('m', 3);
        DELETE FROM covered WHERE b = 2;
        INSERT INTO crlf VALUES (1, 2);
        ALTER TABLE crlf ADD COLUMN c DEFAULT 'added later';
        "#,
    )
    .expect("fill shaped tables");
    conn.execute(
        "INSERT INTO log(note) VALUES (?1)",
        params!["not made by a trigger"],
    )
    .expect("log row");
}

fn fill_virtual_tables(conn: &Connection) {
    conn.execute_batch(
        r#"
        CREATE VIRTUAL TABLE docs USING fts5(title, body);
        INSERT INTO docs VALUES ('first', 'the quick brown fox'),
            ('second', 'jumps over the lazy dog'), ('third', 'ünïcödé tëxt');
        DELETE FROM docs WHERE title = 'second';
        CREATE VIRTUAL TABLE places USING rtree(id, minx, maxx, miny, maxy);
        INSERT INTO places VALUES (1, 0, 1, 0, 1), (7, -5.5, 5.5, 2, 3), (9, 1e6, 2e6, -1, 1);
        CREATE VIRTUAL TABLE "quoted 'vt'" USING fts5(x);
        INSERT INTO "quoted 'vt'" VALUES ('in a table with quotes in its name');
        "#,
    )
    .expect("virtual tables");
}

/// A database whose index no longer matches its table (the schema says the index is on `b`,
/// its entries hold `a`): every page and record is sound, so only the full integrity check,
/// which looks every row up in every index, can tell.
pub fn index_disagreeing_with_its_table(dir: &Path) -> PathBuf {
    let path = dir.join("skewed.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(a INTEGER, b INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO t SELECT i, 1000 + i FROM n;
         CREATE INDEX t_i ON t(a);
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX t_i ON t(b)' WHERE name = 't_i';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
    path
}
