//! Table checksums taken from the COPY text of a plain dump (`postgres-copy-xxh3-sum-v1`):
//! the same rows printed by the restored copy hash the same, a changed row does not, output
//! settings from the session (TimeZone from the database, `PGTZ`, `PGOPTIONS`) cannot make the
//! two sides print rows differently, lines that look like COPY headers inside SQL do not
//! confuse the reader, and what cannot be hashed that way keeps the server-side hash.

use std::fs::File;
use std::io::Read;

use flate2::read::GzDecoder;

use super::{RESTORES, assert_same, differing_tables, restore, restore_bytes};
use crate::support::pg::{TestDb, psql, server_up};
use crate::support::{backup_json as backup, dbbackup};
use dbbackup::archive::manifest;
use dbbackup::engine::Scratch;
use dbbackup::engine::postgres::conn::ConnInfo;
use dbbackup::engine::postgres::describe;

const COPY_ALGORITHM: &str = "postgres-copy-xxh3-sum-v1";
const SERVER_ALGORITHM: &str = "postgres-hashtextextended-sum-v1";

/// Values whose text depends on output settings, a generated column (not in the COPY), a row
/// over 1 MiB, names that need quotes, and SQL holding COPY-looking lines after a `;`.
const SETUP: &str = r#"
CREATE SCHEMA "Odd ""S";
CREATE TABLE "Odd ""S"."T.1" (
  id int PRIMARY KEY, twice int GENERATED ALWAYS AS (id * 2) STORED, b bytea, ts timestamptz,
  iv interval, f8 float8, f4 real, m money, "Weird col" text);
INSERT INTO "Odd ""S"."T.1" (id, b, ts, iv, f8, f4, m, "Weird col")
  SELECT i, decode(md5(i::text), 'hex'), '2024-03-01 12:00:00+00'::timestamptz - i * interval '1 day',
         i * interval '1 min 3.5 sec', 1.0 / i, 1.0 / 3 * i, i * 1.25, E'tab\there\nline\\' || i
  FROM generate_series(1, 500) i;
CREATE TABLE big (v text);
INSERT INTO big SELECT repeat('x', 1500000) || 'end';
CREATE TABLE x (a text);
INSERT INTO x VALUES ('one');
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  PERFORM 1;
COPY public.x (a) FROM stdin;
  RETURN 1;
END
$body$;
COMMENT ON TABLE big IS 'holds one big row;
COPY public.x (a) FROM stdin;
not data';
CREATE TABLE only_generated (g int GENERATED ALWAYS AS (7) STORED);
INSERT INTO only_generated DEFAULT VALUES;
CREATE MATERIALIZED VIEW mv AS SELECT id FROM "Odd ""S"."T.1";
"#;

pub(super) fn tricky_db(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    psql(&db.name, SETUP);
    // The database's own TimeZone, which pg_dump's session takes and ours must follow.
    psql(
        "postgres",
        &format!("ALTER DATABASE {} SET TimeZone = 'Asia/Kolkata'", db.name),
    );
    // money's text follows lc_monetary: a non-C locale shows whether both sides print it
    // alike. This machine may have only C locales; the money values are then printed the C
    // way on both sides and that part proves less.
    let locale = psql(
        "postgres",
        "SELECT collcollate FROM pg_collation WHERE collcollate ~ '^[a-z]{2}_[A-Z]{2}' \
         AND collprovider = 'c' ORDER BY collcollate LIMIT 1",
    );
    if !locale.is_empty() {
        psql(
            "postgres",
            &format!("ALTER DATABASE {} SET lc_monetary = '{locale}'", db.name),
        );
    }
    db
}

fn dump_text(path: &std::path::Path) -> String {
    let mut sql = String::new();
    GzDecoder::new(File::open(path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    sql
}

#[test]
fn plain_backup_checksums_come_from_the_copy_text_and_a_changed_row_is_caught() {
    if !server_up() {
        return;
    }
    let db = tricky_db("copysum");
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    assert_eq!(m.snapshot.checksum_algorithm, COPY_ALGORITHM);
    let props = &m.snapshot.properties;
    assert_eq!(props["row text TimeZone"], "Asia/Kolkata");
    assert_eq!(props["row text bytea_output"], "hex");
    assert!(props.contains_key("row text lc_monetary"), "{props:?}");
    let rows = |name: &str| {
        let t = m.snapshot.tables.iter().find(|t| t.name == name);
        t.unwrap_or_else(|| panic!("{name} not in {:?}", m.snapshot.tables))
            .rows
    };
    assert_eq!(rows("\"Odd \"\"S\".\"T.1\""), 500);
    assert_eq!((rows("public.big"), rows("public.x")), (1, 1));
    assert_eq!(rows("public.only_generated"), 1);
    let sql = dump_text(&path);
    // pg_dump printed timestamps in the database's zone, as it did before rows were hashed.
    assert!(
        sql.contains("2024-02-29 17:30:00+05:30"),
        "not in Asia/Kolkata"
    );

    let restoring = RESTORES.read().unwrap();
    let scratch = restore(&path, &m).unwrap();
    assert_same(&scratch.describe().unwrap(), &m.snapshot);
    drop(scratch);

    // One value changed in the data: same counts, that table's checksum differs.
    for (from, to, table) in [
        (
            "\t2024-02-29 17:30:00+05:30\t",
            "\t2024-02-29 17:30:01+05:30\t",
            "\"Odd \"\"S\".\"T.1\"",
        ),
        ("xxxend\n", "xxyend\n", "public.big"),
        ("\\\\xc4ca4238", "\\\\xc4ca4239", "\"Odd \"\"S\".\"T.1\""),
    ] {
        let edited = sql.replacen(from, to, 1);
        assert_ne!(edited, sql, "{from:?} is not in the dump");
        let restored = restore_bytes(&mut edited.as_bytes(), &m)
            .unwrap()
            .describe()
            .unwrap();
        assert_eq!(differing_tables(&restored, &m), [table], "{from:?}");
        assert_eq!(restored.total_rows(), m.snapshot.total_rows());
    }
    // A lost row: one fewer in that table.
    let lost = sql.replacen("one\n\\.\n", "\\.\n", 1);
    assert_ne!(lost, sql);
    let restored = restore_bytes(&mut lost.as_bytes(), &m)
        .unwrap()
        .describe()
        .unwrap();
    assert_eq!(differing_tables(&restored, &m), ["public.x"]);
    drop(restoring);

    // And through the command, with session settings in the environment that would make
    // pg_dump print rows otherwise: pinned, the restore test still passes.
    let run = dbbackup()
        .args(["backup", "--restore-test", "--out"])
        .arg(out.path())
        .arg(db.url())
        .env("PGTZ", "America/New_York")
        .env(
            "PGOPTIONS",
            "-c bytea_output=escape -c TimeZone=Europe/Paris",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("restore OK"), "{stderr}");
}

/// A custom-format backup, and a database not in UTF8 (pg_dump writes its COPY text in the
/// database's encoding), keep the server-side hash; a plain backup whose manifest has the
/// old algorithm (written by an earlier dbbackup) still restore-tests as before.
#[test]
fn other_formats_encodings_and_old_manifests_keep_the_server_side_hash() {
    if !server_up() {
        return;
    }
    let db = tricky_db("copysum_old");
    let out = tempfile::tempdir().unwrap();
    let (_, m, _) = backup(&db.url(), out.path(), &["--format", "custom"]);
    assert_eq!(m.snapshot.checksum_algorithm, SERVER_ALGORITHM);
    assert!(
        !m.snapshot
            .properties
            .keys()
            .any(|k| k.starts_with("row text"))
    );

    // Without money anywhere, lc_monetary changes no row's text and is not pinned: a restore
    // server may lack the source's locale.
    let plain = TestDb::new("copysum_nomoney");
    psql(
        &plain.name,
        "CREATE TYPE pair AS (a int, b text); CREATE TABLE t (v int, p pair)",
    );
    let (_, m, _) = backup(&plain.url(), out.path(), &[]);
    let props = &m.snapshot.properties;
    assert!(props.contains_key("row text TimeZone"), "{props:?}");
    assert!(!props.contains_key("row text lc_monetary"), "{props:?}");
    // Money through a domain, through a range, and through an array inside a composite type.
    for (i, holds_money) in [
        "CREATE DOMAIN price AS money; CREATE TABLE u (c price)",
        "CREATE TYPE cashrange AS RANGE (subtype = money); CREATE TABLE u (c cashrange)",
        "CREATE TYPE cash AS (c money[]); CREATE TABLE u (c cash)",
    ]
    .iter()
    .enumerate()
    {
        psql(&plain.name, holds_money);
        let (_, m, _) = backup(&plain.url(), out.path(), &[]);
        let props = &m.snapshot.properties;
        assert!(props.contains_key("row text lc_monetary"), "{i}: {props:?}");
        psql(&plain.name, "DROP TABLE u");
    }

    let latin = latin1_db("copysum_latin1");
    let (_, m, stderr) = backup(&latin.url(), out.path(), &["--restore-test"]);
    assert_eq!(m.snapshot.checksum_algorithm, SERVER_ALGORITHM);
    assert!(stderr.contains("restore OK"), "{stderr}");

    // The plain backup as an earlier dbbackup described it: the server's hashes.
    let (path, mut m, _) = backup(&db.url(), out.path(), &[]);
    assert_eq!(m.snapshot.checksum_algorithm, COPY_ALGORITHM);
    m.snapshot = describe::describe(&mut connect(&db), &mut []).unwrap();
    assert_eq!(m.snapshot.checksum_algorithm, SERVER_ALGORITHM);
    std::fs::write(manifest::path_for(&path), m.to_json_pretty()).unwrap();
    let run = dbbackup()
        .args(["restore-test", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}");
}

/// A LATIN1 database (pg_dump writes its COPY text in LATIN1) with one non-ASCII row.
pub(super) fn latin1_db(tag: &str) -> TestDb {
    let latin = TestDb::reserve(tag);
    psql(
        "postgres",
        &format!(
            "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
            latin.name
        ),
    );
    psql(
        &latin.name,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('caf\u{e9}')",
    );
    latin
}

fn connect(db: &TestDb) -> postgres::Client {
    let mut client = ConnInfo::parse(&db.url()).unwrap().connect(None).unwrap();
    client.batch_execute(describe::SESSION_SETTINGS).unwrap();
    client
}

/// The restore side's COPY hashes, shared over helpers in block ranges, add up to one
/// connection's, and to what the dump stream gave for the same rows.
#[test]
fn copy_hashes_in_block_ranges_on_helpers_match_the_dump_stream() {
    if !server_up() {
        return;
    }
    let db = tricky_db("copysum_chunks");
    psql(
        &db.name,
        "INSERT INTO x SELECT 'row ' || i FROM generate_series(1, 3000) i; ANALYZE; \
         INSERT INTO x SELECT 'late' FROM generate_series(1, 700); \
         DELETE FROM x WHERE a LIKE 'row 1%'",
    );
    let text = describe::RowText::of_session(&mut connect(&db)).unwrap();
    let copy = describe::Rows::Copy(&text, None);
    let alone = describe::describe_with(&mut connect(&db), &mut [], Some(3), copy).unwrap();
    let shared = describe::describe_with(
        &mut connect(&db),
        &mut [connect(&db), connect(&db)],
        Some(3),
        copy,
    )
    .unwrap();
    assert_eq!(shared.snapshot, alone.snapshot);
    let out = tempfile::tempdir().unwrap();
    let (_, m, _) = backup(&db.url(), out.path(), &[]);
    assert_eq!(alone.snapshot, m.snapshot);
}
