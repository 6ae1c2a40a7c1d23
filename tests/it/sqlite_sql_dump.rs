//! The SQLite SQL dump restores to an identical database, through the stock `sqlite3` CLI and
//! through our own script runner; and the runner refuses broken scripts.
//!
//! "Identical" is checked twice: `sqldiff` (SQLite's own tool) prints nothing, and our
//! `describe` (schema checksum, objects, per-table row counts and value checksums, header
//! fields) is equal. Where the stock tools lose data, tests show that baseline too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::prelude::*;
use dbbackup::Error;
use dbbackup::archive::Format;
use dbbackup::archive::manifest::Snapshot;
use dbbackup::engine::sqlite::{Sqlite, SqliteRestorer};
use dbbackup::engine::sqlite::{describe, dump, script};
use dbbackup::engine::{Restorer, SnapshotCheck, Source};
use rusqlite::Connection;
use tempfile::TempDir;

use crate::support::sqlite_fixtures::{TRICKY_REALS, TRICKY_TEXTS, XorShift, build_edge_case_db};
use crate::support::{backup_json, data_copy, dbbackup};

fn dump_sql(db: &Path) -> Vec<u8> {
    let conn = Connection::open(db).expect("open source");
    let mut out = Vec::new();
    dump::write_sql(&conn, &mut out).expect("write_sql");
    out
}

/// Feeds `sql` to `sqlite3 -bail target`, as a user restoring by hand would.
fn restore_with_cli(sql: &[u8], target: &Path) {
    let output = pipe_through(Command::new("sqlite3").arg("-bail").arg(target), sql);
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "sqlite3 failed to load the dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn restore_with_runner(sql: &[u8], target: &Path) -> dbbackup::Result<()> {
    let conn = Connection::open(target).expect("create target");
    script::run(&conn, &mut &sql[..])
}

fn pipe_through(command: &mut Command, input: &[u8]) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn (is the sqlite3 CLI installed?)");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    output
}

fn describe_file(path: &Path) -> Snapshot {
    let conn = Connection::open(path).expect("open for describe");
    describe::describe(&conn).expect("describe")
}

/// sqldiff prints nothing and succeeds, and `describe` sees the same database.
fn assert_identical(source: &Path, restored: &Path) {
    let out = Command::new("sqldiff")
        .arg(source)
        .arg(restored)
        .output()
        .expect("run sqldiff (is sqlite3-tools installed?)");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "sqldiff found differences:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(describe_file(source), describe_file(restored));
}

/// Tables whose content differs between two descriptions (for readable failure messages).
fn differing_tables(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    a.tables
        .iter()
        .filter(|t| !b.tables.contains(t))
        .map(|t| t.name.clone())
        .collect()
}

/// The source database and a directory to restore into.
fn edge_case_source() -> (TempDir, PathBuf) {
    let dir = TempDir::new().expect("tempdir");
    let source = dir.path().join("edge.db");
    drop(build_edge_case_db(&source));
    (dir, source)
}

#[test]
fn edge_cases_restore_identically_through_the_sqlite3_cli() {
    let (dir, source) = edge_case_source();
    let restored = dir.path().join("restored.db");
    restore_with_cli(&dump_sql(&source), &restored);
    assert_identical(&source, &restored);
    let props = describe_file(&restored).properties;
    assert_eq!(props["user_version"], "42");
    assert_eq!(props["application_id"], "-123456789");
}

#[test]
fn edge_cases_restore_identically_through_the_script_runner() {
    let (dir, source) = edge_case_source();
    let restored = dir.path().join("restored.db");
    restore_with_runner(&dump_sql(&source), &restored).expect("runner restores the dump");
    assert_identical(&source, &restored);
    // The restored virtual tables work, not just their shadow tables' bytes.
    let conn = Connection::open(&restored).unwrap();
    let hits: i64 = conn
        .query_row(
            "SELECT count(*) FROM docs WHERE docs MATCH 'fox'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hits, 1);
    let inside: i64 = conn
        .query_row(
            "SELECT id FROM places WHERE minx <= 0.5 AND maxx >= 0.5 AND miny <= 0.5 AND maxy >= 0.5",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(inside, 1);
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn the_dump_is_deterministic_and_keeps_what_the_stock_dump_drops() {
    let (_dir, source) = edge_case_source();
    let sql = dump_sql(&source);
    assert_eq!(sql, dump_sql(&source), "two dumps of one database differ");
    let text = String::from_utf8(sql).expect("the dump is UTF-8 even for non-UTF-8 text");
    for expected in [
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n",
        "PRAGMA writable_schema=ON;\n",
        "INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table','places','places',0,'CREATE VIRTUAL TABLE places USING rtree(id, minx, maxx, miny, maxy)');\n",
        "CREATE TABLE IF NOT EXISTS sqlite_sequence(name,seq);\nDELETE FROM \"sqlite_sequence\";\n",
        "CREATE TABLE IF NOT EXISTS sqlite_stat1(tbl,idx,stat);\n",
        // Generated columns left out, rowid kept.
        "INSERT INTO \"gen\"(rowid,\"a\",\"b\") VALUES(3,3,NULL);\n",
        "INSERT INTO \"has_rowid_column\"(_rowid_,\"rowid\",\"x\") VALUES(2,'still not',2);\n",
        "INSERT INTO \"pk_desc\"(rowid,\"id\",\"x\") VALUES(",
        "PRAGMA writable_schema=OFF;\nCOMMIT;\n",
    ] {
        assert!(text.contains(expected), "dump lacks {expected:?}");
    }
    // Views and triggers come after every table's rows.
    let last_insert = text.rfind("\nINSERT INTO \"").unwrap();
    assert!(text.find("CREATE VIEW").unwrap() > last_insert);
    assert!(text.find("CREATE TRIGGER").unwrap() > last_insert);
}

#[test]
fn backup_format_sql_restores_with_gunzip_and_sqlite3() {
    let (dir, source) = edge_case_source();
    let out = dir.path().join("backups");
    dbbackup()
        .args(["backup"])
        .arg(&source)
        .arg("--out")
        .arg(&out)
        .args(["--format", "sql"])
        .assert()
        .success();
    let archive = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sql.gz"))
        .expect("a .sql.gz archive");
    let gunzip = Command::new("gunzip")
        .arg("-c")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(gunzip.status.success());
    let restored = dir.path().join("restored.db");
    restore_with_cli(&gunzip.stdout, &restored);
    assert_identical(&source, &restored);
}

/// The engine's own path: `dump` in SQL format, then `Restorer::restore`, as the restore test
/// runs it: the restored copy passes the integrity checks and describes exactly as the
/// snapshot the dump was taken from.
#[test]
fn engine_sql_dump_restores_to_the_same_description() {
    let (dir, source) = edge_case_source();
    let engine = Sqlite::from_source(&source.to_string_lossy()).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut sql = Vec::new();
    let dumped = engine
        .dump(Format::Sql, SnapshotCheck::Full, &mut sql, &work, &|_| {})
        .unwrap();
    let restore_dir = dir.path().join("restore");
    std::fs::create_dir(&restore_dir).unwrap();
    let restorer = SqliteRestorer {
        tables: dbbackup::engine::sqlite::describe::Tables::WithShadow,
    };
    let scratch = restorer
        .restore(Format::Sql, &mut &sql[..], &restore_dir)
        .unwrap();
    assert_eq!(scratch.describe().unwrap(), dumped.snapshot);
    for check in scratch.integrity(false).unwrap() {
        assert!(
            check.problems.is_empty(),
            "{}: {:?}",
            check.name,
            check.problems
        );
    }
}

#[test]
fn chinook_round_trips_through_the_cli_and_the_runner() {
    let dir = TempDir::new().unwrap();
    let source = data_copy("chinook.sqlite", dir.path());
    let sql = dump_sql(&source);
    let by_cli = dir.path().join("cli.db");
    restore_with_cli(&sql, &by_cli);
    assert_identical(&source, &by_cli);
    let by_runner = dir.path().join("runner.db");
    restore_with_runner(&sql, &by_runner).unwrap();
    assert_identical(&source, &by_runner);
    assert!(describe_file(&source).total_rows() > 15_000);
}

#[test]
fn rows_of_several_megabytes_round_trip() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("big.db");
    let conn = Connection::open(&source).unwrap();
    conn.execute_batch("CREATE TABLE big(id INTEGER PRIMARY KEY, t TEXT, b BLOB)")
        .unwrap();
    let mut random = XorShift(7);
    let blob: Vec<u8> = (0..3 << 20).map(|_| random.next_u64() as u8).collect();
    // Many lines that each hold a `;`, as source code would: the runner must stay linear.
    let code_line = "let x = f(\"y\"); // it's code;\n";
    let text = code_line.repeat((2 << 20) / code_line.len());
    let with_nul = format!("{}\0{}", "a".repeat(1 << 20), "b".repeat(1 << 20));
    conn.execute("INSERT INTO big VALUES (1, ?1, ?2)", (&text, &blob))
        .unwrap();
    conn.execute(
        "INSERT INTO big VALUES (2, ?1, zeroblob(2000000))",
        [&with_nul],
    )
    .unwrap();
    drop(conn);
    let sql = dump_sql(&source);
    assert!(sql.len() > 10 << 20);
    let by_cli = dir.path().join("cli.db");
    restore_with_cli(&sql, &by_cli);
    assert_identical(&source, &by_cli);
    let by_runner = dir.path().join("runner.db");
    let started = std::time::Instant::now();
    restore_with_runner(&sql, &by_runner).unwrap();
    assert!(
        started.elapsed().as_secs() < 20,
        "runner took {:?}",
        started.elapsed()
    );
    assert_identical(&source, &by_runner);
}

#[test]
fn utf16_database_keeps_its_encoding_settings_and_text() {
    for encoding in ["UTF-16le", "UTF-16be"] {
        let dir = TempDir::new().unwrap();
        let source = dir.path().join("utf16.db");
        let conn = Connection::open(&source).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA encoding = '{encoding}'; PRAGMA page_size = 8192;
             PRAGMA auto_vacuum = INCREMENTAL;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v);"
        ))
        .unwrap();
        for t in TRICKY_TEXTS
            .iter()
            .filter(|t| std::str::from_utf8(t).is_ok())
        {
            conn.execute("INSERT INTO t(v) VALUES (CAST(?1 AS TEXT))", [t])
                .unwrap();
        }
        drop(conn);
        let sql = dump_sql(&source);
        let by_cli = dir.path().join("cli.db");
        restore_with_cli(&sql, &by_cli);
        assert_identical(&source, &by_cli);
        let by_runner = dir.path().join("runner.db");
        restore_with_runner(&sql, &by_runner).unwrap();
        assert_identical(&source, &by_runner);
        let restored = Connection::open(&by_cli).unwrap();
        for (pragma, expected) in [
            ("encoding", encoding),
            ("page_size", "8192"),
            ("auto_vacuum", "2"),
        ] {
            let value: String = restored
                .query_row(
                    &format!("SELECT CAST({pragma} AS TEXT) FROM pragma_{pragma}"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(value, expected, "{pragma} of {encoding} copy");
        }
    }
}

/// Python's `iterdump` dumps an R*Tree's rows as INSERTs into a table that does not exist yet;
/// ours restores the shadow tables and the tree works.
#[test]
fn rtree_round_trips_where_python_iterdump_fails() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("rtree.db");
    let conn = Connection::open(&source).unwrap();
    conn.execute_batch(
        "CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1);
         INSERT INTO rt VALUES (1, 0.5, 2.5), (7, 1, 3);",
    )
    .unwrap();
    drop(conn);
    let python = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             script = '\\n'.join(sqlite3.connect(sys.argv[1]).iterdump())\n\
             sqlite3.connect(sys.argv[2]).executescript(script)",
        )
        .arg(&source)
        .arg(dir.path().join("python.db"))
        .output()
        .expect("run python3");
    assert!(
        !python.status.success(),
        "Python's iterdump restored an R*Tree: the baseline this test compares with changed"
    );
    let restored = dir.path().join("restored.db");
    restore_with_cli(&dump_sql(&source), &restored);
    assert_identical(&source, &restored);
}

/// The stock 3.40 `.dump` writes text with a NUL as a literal, which ends at the NUL.
#[test]
fn text_with_nul_and_controls_round_trips_where_sqlite3_dump_truncates_it() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("text.db");
    let conn = Connection::open(&source).unwrap();
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        .unwrap();
    for t in TRICKY_TEXTS {
        conn.execute("INSERT INTO t(v) VALUES (CAST(?1 AS TEXT))", [t])
            .unwrap();
    }
    drop(conn);
    let baseline = stock_dump_restored(&source, dir.path());
    let original = describe_file(&source);
    assert_eq!(
        differing_tables(&original, &describe_file(&baseline)),
        ["t"],
        "sqlite3 .dump kept text with NUL: the baseline this test compares with changed"
    );
    for (i, restore) in [restore_with_cli as fn(&[u8], &Path), runner_or_panic]
        .into_iter()
        .enumerate()
    {
        let restored = dir.path().join(format!("ours-{i}.db"));
        restore(&dump_sql(&source), &restored);
        assert_identical(&source, &restored);
        let conn = Connection::open(&restored).unwrap();
        let (kind, bytes): (String, Vec<u8>) = conn
            .query_row(
                "SELECT typeof(v), CAST(v AS BLOB) FROM t WHERE id = 3",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((kind.as_str(), bytes.as_slice()), ("text", TRICKY_TEXTS[2]));
    }
}

/// The stock 3.40 `.dump` turns 5e-324 into 0.0 and misreads other reals; ours keeps every
/// real bit for bit, through both restore paths, random ones included.
#[test]
fn reals_round_trip_bit_for_bit_where_sqlite3_dump_loses_them() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("reals.db");
    let conn = Connection::open(&source).unwrap();
    conn.execute_batch("CREATE TABLE r(id INTEGER PRIMARY KEY, v)")
        .unwrap();
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let mut reals: Vec<f64> = TRICKY_REALS.to_vec();
    reals.extend((0..20_000).map(|_| random.finite_f64()));
    let tx = conn.unchecked_transaction().unwrap();
    for f in &reals {
        conn.execute("INSERT INTO r(v) VALUES (?1)", [f]).unwrap();
    }
    tx.commit().unwrap();
    drop(conn);

    let baseline = Connection::open(stock_dump_restored(&source, dir.path())).unwrap();
    let denormal: f64 = baseline
        .query_row("SELECT v FROM r WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        denormal, 0.0,
        "sqlite3 .dump kept 5e-324: the baseline this test compares with changed"
    );

    for (i, restore) in [restore_with_cli as fn(&[u8], &Path), runner_or_panic]
        .into_iter()
        .enumerate()
    {
        let restored = dir.path().join(format!("ours-{i}.db"));
        restore(&dump_sql(&source), &restored);
        assert_identical(&source, &restored);
        let conn = Connection::open(&restored).unwrap();
        let mut stmt = conn.prepare("SELECT v FROM r ORDER BY id").unwrap();
        let back: Vec<u64> = stmt
            .query_map([], |r| r.get::<_, f64>(0))
            .unwrap()
            .map(|f| f.unwrap().to_bits())
            .collect();
        let expected: Vec<u64> = reals.iter().map(|f| f.to_bits()).collect();
        assert_eq!(back, expected);
    }
}

fn runner_or_panic(sql: &[u8], target: &Path) {
    restore_with_runner(sql, target).expect("runner restores the dump");
}

/// `sqlite3 source .dump | sqlite3 baseline.db`: the stock tools' round trip.
fn stock_dump_restored(source: &Path, dir: &Path) -> PathBuf {
    let dump = Command::new("sqlite3")
        .arg(source)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(dump.status.success());
    let baseline = dir.join("baseline.db");
    restore_with_cli(&dump.stdout, &baseline);
    baseline
}

/// When columns take all three names of the rowid, SQL cannot write it (nor read it to check
/// it): a SQL dump would renumber the rows, so it is refused at backup time, naming the table
/// and the format that keeps it; the native backup of the same database restores exactly.
#[test]
fn table_with_every_rowid_name_taken_is_refused_in_sql_and_kept_in_native() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("shadowed.db");
    let conn = Connection::open(&source).unwrap();
    conn.execute_batch(
        "CREATE TABLE s(rowid, _rowid_, oid, v);
         INSERT INTO s VALUES ('c', 3, 1, 'first'), ('a', 1, 2, 'second'), ('b', 2, 3, 'third');
         DELETE FROM s WHERE v = 'second';",
    )
    .unwrap();
    drop(conn);
    let mut sql = Vec::new();
    let err = dump::write_sql(&Connection::open(&source).unwrap(), &mut sql).unwrap_err();
    assert_eq!(err.exit_code(), dbbackup::error::exit::USAGE, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("table s") && text.contains("--format native"),
        "{text}"
    );
    let out = dir.path().join("out");
    let refused = dbbackup()
        .args(["backup", "--format", "sql", "--out"])
        .arg(&out)
        .arg(&source)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
    let kept = dbbackup()
        .args(["backup", "--restore-test", "--out"])
        .arg(&out)
        .arg(&source)
        .output()
        .unwrap();
    assert!(kept.status.success(), "{kept:?}");
}

/// UTF-16 text whose stored units no SQL literal can give back is refused at backup time, not
/// caught later by the restore test: a surrogate alone at the end (SQLite hands it over as
/// bytes that are not UTF-8), a high surrogate followed by an ordinary unit or by another high
/// one (SQLite reads the two as one pair and hands over a valid but different character), and
/// a low surrogate first. Properly paired text (an emoji) is carried, in both
/// byte orders.
#[test]
fn utf16_text_that_sql_cannot_carry_is_refused_at_backup_time() {
    let cases = [
        ("lone high at the end", "UTF-16le", "X'3DD8'"),
        ("high then a letter", "UTF-16le", "X'3DD841006200'"),
        (
            "high then a letter, big-endian",
            "UTF-16be",
            "X'D83D00410062'",
        ),
        ("two highs then a low", "UTF-16le", "X'3DD83DD800DE'"),
        ("low first", "UTF-16le", "X'00DE4100'"),
    ];
    for (what, encoding, text) in cases {
        let dir = TempDir::new().unwrap();
        let source = dir.path().join("mispaired.db");
        let conn = Connection::open(&source).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA encoding = '{encoding}'; CREATE TABLE t(id INTEGER PRIMARY KEY, v);
             INSERT INTO t(v) VALUES ('ok'), ('\u{1F600} paired'), (CAST({text} AS TEXT));"
        ))
        .unwrap();
        drop(conn);
        let out = dir.path().join("out");
        let refused = dbbackup()
            .args(["backup", "--format", "sql", "--out"])
            .arg(&out)
            .arg(&source)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("surrogate") && stderr.contains("--format native"),
            "{what}: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().ends_with(".gz")),
            "{what}: {left:?}"
        );
    }
    // The same tables without the bad value back up and restore-test.
    for encoding in ["UTF-16le", "UTF-16be"] {
        let dir = TempDir::new().unwrap();
        let source = dir.path().join("paired.db");
        Connection::open(&source)
            .unwrap()
            .execute_batch(&format!(
                "PRAGMA encoding = '{encoding}'; CREATE TABLE t(id INTEGER PRIMARY KEY, v);
                 INSERT INTO t(v) VALUES ('ok'), ('\u{1F600} paired'), (CAST(X'' AS TEXT));"
            ))
            .unwrap();
        let done = dbbackup()
            .args(["backup", "--format", "sql", "--restore-test", "--out"])
            .arg(dir.path().join("out"))
            .arg(&source)
            .output()
            .unwrap();
        assert!(done.status.success(), "{encoding}: {done:?}");
    }
}

/// The runner runs the stock `sqlite3 .dump` output as the CLI does: same schema, same rows.
/// (Values may differ in the last bit of a real: the two SQLite versions read the stock dump's
/// decimals differently, which is why our dump writes none.)
#[test]
fn runner_restores_stock_sqlite3_dump_output_like_the_cli() {
    let (dir, source) = edge_case_source();
    // Leave out what the stock dump cannot carry: statistics (its `ANALYZE sqlite_schema` makes
    // sqlite_stat4 only in builds with STAT4, as the runner's SQLite is and the 3.40 CLI is
    // not), text that is not UTF-8, which it writes raw and the runner refuses (a script must
    // be UTF-8), and a CRLF schema, whose CRs the CLI drops and the runner keeps.
    Connection::open(&source)
        .unwrap()
        .execute_batch(
            "DROP TABLE sqlite_stat1; DROP TABLE sqlite_stat4; DROP TABLE crlf;
             DELETE FROM vals WHERE typeof(v) = 'text' AND CAST(v AS BLOB) LIKE '%not utf-8%'",
        )
        .unwrap();
    let dump = Command::new("sqlite3")
        .arg(&source)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(dump.status.success());
    let by_cli = dir.path().join("cli.db");
    restore_with_cli(&dump.stdout, &by_cli);
    let by_runner = dir.path().join("runner.db");
    restore_with_runner(&dump.stdout, &by_runner).expect("runner runs .dump output");
    let (cli, runner) = (describe_file(&by_cli), describe_file(&by_runner));
    assert_eq!(cli.schema_checksum, runner.schema_checksum);
    assert_eq!(cli.objects, runner.objects);
    let rows = |s: &Snapshot| -> Vec<(String, u64)> {
        s.tables.iter().map(|t| (t.name.clone(), t.rows)).collect()
    };
    assert_eq!(rows(&cli), rows(&runner));
    assert_eq!(
        differing_tables(&cli, &runner),
        ["st", "vals"],
        "only the tables with reals should differ"
    );
}

fn runner_error(script: &str) -> Error {
    let dir = TempDir::new().unwrap();
    restore_with_runner(script.as_bytes(), &dir.path().join("t.db"))
        .expect_err("the runner accepted a broken script")
}

#[test]
fn runner_refuses_a_script_that_stops_mid_statement() {
    let err = runner_error("CREATE TABLE t(a);\nINSERT INTO t VALUES('unterminated;\n");
    let Error::Verify { object, reason } = &err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(object, "SQL dump");
    assert!(
        reason.contains("starts at line 2") && reason.contains("truncated"),
        "{reason}"
    );
}

#[test]
fn runner_refuses_a_script_that_never_commits_and_rolls_it_back() {
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("t.db");
    let err = restore_with_runner(
        b"BEGIN TRANSACTION;\nCREATE TABLE t(a);\nINSERT INTO t VALUES(1);\n",
        &target,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no COMMIT"), "{err}");
    let conn = Connection::open(&target).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "the unfinished transaction was kept");
}

#[test]
fn runner_names_the_failing_statement_and_its_line() {
    let err = runner_error(
        "-- a comment; with a semicolon\nCREATE TABLE t(a);\n\nINSERT INTO\n  nowhere VALUES(1);\n",
    );
    let Error::Verify { reason, .. } = &err else {
        panic!("unexpected error {err:?}")
    };
    assert!(
        reason.starts_with("statement at line 4 failed: no such table: nowhere: INSERT INTO"),
        "{reason}"
    );
}

/// SQLite itself does not check that text is UTF-8, and the stock `.dump` writes such text raw:
/// the runner refuses it plainly rather than guessing (our own dumps write it as hex).
#[test]
fn runner_refuses_a_statement_that_is_not_utf8() {
    let dir = TempDir::new().unwrap();
    let err = restore_with_runner(
        b"CREATE TABLE t(a);
INSERT INTO t VALUES('caf\xe9');
",
        &dir.path().join("t.db"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("statement at line 2 is not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn runner_accepts_comments_and_triggers_split_over_lines() {
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("t.db");
    restore_with_runner(
        b"/* header; */ CREATE TABLE t(a);\nCREATE TABLE log(x);\n\
          CREATE TRIGGER g AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES(1);\n  \
          INSERT INTO log VALUES(2);\nEND;\nINSERT INTO t VALUES('a;b'); INSERT INTO t \
          VALUES(\"c\");\n-- trailing comment without newline",
        &target,
    )
    .unwrap();
    let conn = Connection::open(&target).unwrap();
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 4);
}

/// A reader failing underneath (here a truncated gzip stream) is an unreadable backup.
#[test]
fn runner_reports_a_failing_reader_as_unreadable() {
    let (_dir, source) = edge_case_source();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&dump_sql(&source)).unwrap();
    let compressed = gz.finish().unwrap();
    let truncated = &compressed[..compressed.len() / 2];
    let mut reader = flate2::read::GzDecoder::new(truncated);
    let conn = Connection::open_in_memory().unwrap();
    let err = script::run(&conn, &mut reader).unwrap_err();
    assert!(matches!(err, Error::Unreadable { .. }), "{err:?}");
    assert!(conn.is_autocommit());
}

/// A full disk while dumping is an output error, not a crash or a silent short dump.
#[test]
fn write_errors_are_output_errors() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (_dir, source) = edge_case_source();
    let conn = Connection::open(&source).unwrap();
    let err = dump::write_sql(&conn, &mut Full).unwrap_err();
    assert!(matches!(err, Error::Output { .. }), "{err:?}");
    assert!(err.to_string().contains("disk is full"), "{err}");
}

/// A real dump is not a hostile one: a table with 24 indexes over every column builds a
/// database 21x its SQL text, past a flat 16x bound; the bound grows with the indexes the
/// script creates, so the restore test of the SQL backup passes.
#[test]
fn a_dump_of_a_table_with_many_wide_indexes_restores_within_the_bound() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("indexed.db");
    let conn = Connection::open(&source).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, c0, c1, c2, c3, c4, c5, c6, c7);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO t SELECT i, hex(randomblob(10)), hex(randomblob(10)), hex(randomblob(10)),
           hex(randomblob(10)), hex(randomblob(10)), hex(randomblob(10)), hex(randomblob(10)),
           hex(randomblob(10)) FROM n;",
    )
    .unwrap();
    for k in 0..24 {
        let cols: Vec<String> = (0..8).map(|c| format!("c{}", (k + c) % 8)).collect();
        conn.execute_batch(&format!("CREATE INDEX i{k} ON t({}, id)", cols.join(", ")))
            .unwrap();
    }
    drop(conn);
    let out = dir.path().join("out");
    let (_, manifest, _) = backup_json(
        source.to_str().unwrap(),
        &out,
        &["--format", "sql", "--restore-test"],
    );
    // The case is only a case if the database is past the flat bound: the ratio depends on
    // the indexes per row, not on the number of rows, so a small table shows it.
    let db_bytes = std::fs::metadata(&source).unwrap().len();
    assert!(
        db_bytes > 16 * manifest.raw_bytes,
        "the database ({db_bytes} bytes) is within 16x its SQL text ({} bytes)",
        manifest.raw_bytes
    );
}
