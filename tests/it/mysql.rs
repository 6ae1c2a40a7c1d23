//! The MySQL/MariaDB engine against the real server at 127.0.0.1:3306: Sakila round trips,
//! awkward types and names, consistency under a writer, faults and their exit codes, and the
//! password kept out of every argument list, output and file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use dbbackup::archive::manifest::{self, Manifest};
use flate2::read::GzDecoder;
use sha2::Digest;

use crate::support::mysql::{
    HOST, PORT, TestDb, client, exclusive_db, one_at_a_time, scratch_databases, server_up, sql,
};
use crate::support::{backup_json as backup, dbbackup};

fn dump_text(path: &Path) -> String {
    let mut text = String::new();
    GzDecoder::new(File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Replaces the archive with `text`, gzipped, and makes the manifest's size and sha256 match:
/// only the restore's own checks can then tell.
fn rewrite_archive(path: &Path, m: &mut Manifest, text: &str) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(path, &bytes).unwrap();
    m.compressed_bytes = bytes.len() as u64;
    m.raw_bytes = text.len() as u64;
    m.sha256 = dbbackup::archive::compress::hex(&sha2::Sha256::digest(&bytes));
    std::fs::write(manifest::path_for(path), m.to_json_pretty()).unwrap();
}

/// An independent description: the schema as `mariadb-dump --no-data` prints it (names of the
/// database, definers and AUTO_INCREMENT positions aside) and per table `COUNT(*)` and the
/// server's `CHECKSUM TABLE`, which is comparable between tables of one server.
fn independent(db: &str) -> (String, Vec<String>) {
    let out = Command::new("mariadb-dump")
        .args(["-h", HOST, "-P", PORT, "-u", "root", "--protocol=TCP"])
        .args([
            "--no-data",
            "--routines",
            "--triggers",
            "--events",
            "--skip-dump-date",
            "--skip-comments",
            db,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let l = l.replace(db, "DB");
            let l = match l.find(" AUTO_INCREMENT=") {
                Some(i) => {
                    let rest = &l[i + 16..];
                    let end = rest.find(' ').unwrap_or(rest.len());
                    format!("{}{}", &l[..i], &rest[end..])
                }
                None => l,
            };
            match l.find("DEFINER=") {
                Some(i) => {
                    let rest = &l[i..];
                    let end = rest.find([' ', '*']).unwrap_or(rest.len());
                    format!("{}DEFINER{}", &l[..i], &rest[end..])
                }
                None => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let tables = sql(
        db,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
    );
    let sums = tables
        .lines()
        .map(|t| {
            let q = t.replace('`', "``");
            let count = sql(db, &format!("SELECT COUNT(*) FROM `{q}`"));
            let sum = sql(db, &format!("CHECKSUM TABLE `{q}` EXTENDED"));
            format!("{t} {count} {}", sum.split('\t').nth(1).unwrap_or(""))
        })
        .collect();
    (schema, sums)
}

#[test]
fn sakila_backup_restore_test_and_restore_match_the_source() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("sakila");
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    assert!(path.to_string_lossy().ends_with(".sql.gz"));
    assert_eq!(m.engine.name, "mysql");
    assert!(m.engine.version.contains("MariaDB"), "{}", m.engine.version);
    let tool = m.engine.dump_tool.clone().unwrap();
    assert!(tool.starts_with("mariadb-dump"), "{tool}");
    assert_eq!(m.snapshot.tables.len(), 16);
    assert_eq!(
        m.snapshot.total_rows(),
        46273 + 400,
        "{:?}",
        m.snapshot.tables
    );
    assert_eq!(m.snapshot.properties["character_set"], "utf8mb4");
    let kinds: std::collections::BTreeSet<&str> =
        m.snapshot.objects.iter().map(|o| o.kind.as_str()).collect();
    for kind in [
        "table",
        "view",
        "index",
        "foreign key",
        "trigger",
        "procedure",
        "function",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    let dump = dump_text(&path);
    assert!(!dump.contains("\nUSE ") && !dump.contains("CREATE DATABASE"));

    let junit = out.path().join("junit.xml");
    let rt = dbbackup()
        .args(["restore-test"])
        .arg(&path)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert!(
        rt.status.success(),
        "{}",
        String::from_utf8_lossy(&rt.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    for case in ["restore_ran_clean", "check_table", "schema", "table rental"] {
        assert!(xml.contains(&format!("name=\"{case}\"")), "{case}: {xml}");
    }
    assert!(!xml.contains("<failure"), "{xml}");

    let target = TestDb::reserve("sakila_restored");
    let url = format!("mysql://root@{HOST}:{PORT}/{}", target.name);
    let restored = dbbackup()
        .args(["restore"])
        .arg(&path)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(independent(&db.name), independent(&target.name));
    // An existing database is refused without --force, replaced with it.
    let again = dbbackup()
        .args(["restore"])
        .arg(&path)
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    sql(&target.name, "DELETE FROM payment WHERE payment_id < 10");
    let forced = dbbackup()
        .args(["restore", "--force"])
        .arg(&path)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(independent(&db.name), independent(&target.name));
}

#[test]
fn awkward_types_and_names_round_trip() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("edge");
    sql(
        &db.name,
        "SET SESSION sql_mode = '';
         CREATE TABLE `odd ``name`` ü` (
           id INT AUTO_INCREMENT PRIMARY KEY,
           j JSON, b BIT(13), d DECIMAL(65,30), dt DATETIME(6), ts TIMESTAMP(3) NULL,
           zero DATE, txt VARCHAR(50) CHARACTER SET utf8mb4, bin VARBINARY(20), blb LONGBLOB,
           gv INT AS (id * 2) VIRTUAL, gs VARCHAR(60) AS (CONCAT(txt, '!')) STORED,
           e ENUM('a','b c','ü'), s SET('x','y','z'), g GEOMETRY, p POINT NOT NULL,
           `col with space` TEXT, FULLTEXT KEY ft (`col with space`), SPATIAL KEY sp (p)
         ) ENGINE=InnoDB AUTO_INCREMENT=1000;
         INSERT INTO `odd ``name`` ü` (j, b, d, dt, ts, zero, txt, bin, blb, e, s, g, p, `col with space`) VALUES
           ('{\"k\": [1, 2.5, null, \"é\"]}', b'1010101010101', '12345678901234567890123456789012345.123456789012345678901234567891',
            '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07.499', '0000-00-00', '😀𝄞 𠜎 emoji', 0x00FF0000, REPEAT(0x00AB, 3000000),
            'b c', 'x,z', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), POINT(1.5, -2.25), 'tab\\there\\nnewline ''quote'''),
           (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', ST_GeomFromText('POINT(0 0)'), POINT(0, 0), NULL),
           ('[]', b'0', '-0.000000000000000000000000000001', '1000-01-01 00:00:00', NULL, '2024-00-00', '', '', '', 'ü', 'y', NULL, POINT(0, 0), '');
         CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB;
         CREATE TABLE child (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE, CHECK (id > 0)) ENGINE=InnoDB;
         INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (1, 1), (2, NULL);
         CREATE TABLE aria_t (id INT PRIMARY KEY) ENGINE=Aria; INSERT INTO aria_t VALUES (7);
         CREATE VIEW v1 AS SELECT id, txt FROM `odd ``name`` ü` WHERE id > 0;
         CREATE VIEW `v2 on v1` AS SELECT COUNT(*) AS n FROM v1;
         CREATE DEFINER = 'nobody_here_dbbackup'@'%' PROCEDURE bump(IN n INT) SQL SECURITY INVOKER UPDATE parent SET id = id + n WHERE id < 0;
         CREATE DEFINER = 'nobody_here_dbbackup'@'%' TRIGGER child_ins BEFORE INSERT ON child FOR EACH ROW SET NEW.pid = IFNULL(NEW.pid, 1);
         CREATE DEFINER = 'nobody_here_dbbackup'@'%' FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
         CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM parent WHERE id < 0;",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, m, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(
        stderr.contains("aria_t"),
        "the non-transactional table is named: {stderr}"
    );
    assert_eq!(m.snapshot.properties["non_transactional_tables"], "aria_t");
    // What the restore test does not compare is said, in the manifest and the log.
    assert!(
        (m.snapshot.not_compared.iter()).any(|n| n.starts_with("AUTO_INCREMENT positions")),
        "{:?}",
        m.snapshot.not_compared
    );
    assert!(
        stderr.contains("not compared: AUTO_INCREMENT positions; definers; users and grants"),
        "{stderr}"
    );
    for kind in ["event", "check", "view"] {
        assert!(m.snapshot.objects.iter().any(|o| o.kind == kind), "{kind}");
    }
    let report = dbbackup()
        .args(["restore-test", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(text.contains("DEFINER clauses rewritten"), "{text}");
    let target = TestDb::reserve("edge_restored");
    let url = format!("mysql://root@{HOST}:{PORT}/{}", target.name);
    let restored = dbbackup()
        .args(["restore"])
        .arg(&path)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let (schema_a, sums_a) = independent(&db.name);
    let (schema_b, sums_b) = independent(&target.name);
    assert_eq!(sums_a, sums_b);
    // Definers differ by design (rewritten); everything else is the same.
    assert_eq!(schema_a, schema_b);
    assert_eq!(
        sql(
            &target.name,
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'odd%'"
        ),
        "1003"
    );
}

/// Comments inside a routine, trigger or event body are part of its definition: the client
/// that restores strips them unless told not to, and the schema check then failed a faithful
/// backup of such a database.
#[test]
fn comments_in_routine_trigger_and_event_bodies_survive_the_restore() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("comments");
    sql(
        &db.name,
        "CREATE TABLE t (v INT);
         INSERT INTO t VALUES (1);
         DELIMITER //
         CREATE PROCEDURE p() BEGIN
           -- a line comment
           /* a block comment */
           SELECT v FROM t; # a hash comment
         END//
         CREATE TRIGGER t_ins BEFORE INSERT ON t FOR EACH ROW BEGIN
           /* clamp */ SET NEW.v = GREATEST(NEW.v, 0); -- never negative
         END//
         CREATE EVENT e ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO BEGIN
           DELETE FROM t WHERE v < 0; -- tidy
         END//
         DELIMITER ;",
    );
    let body = sql(
        &db.name,
        "SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_NAME = 'p'",
    );
    assert!(
        body.contains("a block comment"),
        "the source keeps its comments: {body}"
    );
    let out = tempfile::tempdir().unwrap();
    let (_, _, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(stderr.contains("restore OK"), "{stderr}");
}

#[test]
fn a_tampered_backup_fails_the_restore_test() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("tamper");
    sql(
        &db.name,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'one'), (2, 'two');
         CREATE TABLE docs (id INT PRIMARY KEY, body LONGBLOB, note TEXT, n DECIMAL(8,2), at DATETIME(3));
         INSERT INTO docs VALUES (1, REPEAT(0x00AB, 1000), NULL, 1.50, '2024-02-29 12:00:00.125'),
           (2, NULL, 'ü', NULL, NULL), (3, '', '', -0.01, '1999-12-31 23:59:59');
         CREATE TABLE empty_t (id INT PRIMARY KEY);
         CREATE TABLE nums (id INT PRIMARY KEY, x BIGINT) SELECT seq AS id, seq * 3 AS x FROM seq_1_to_300;",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, mut m, _) = backup(&db.url(), out.path(), &[]);
    // Counted and checksummed from the dump's own rows as it streamed by.
    assert_eq!(m.snapshot.checksum_algorithm, "mysql-dump-xxh3-sum-v1");
    let rows: Vec<(&str, u64)> = (m.snapshot.tables.iter())
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(rows, [("docs", 3), ("empty_t", 0), ("nums", 300), ("t", 2)]);
    assert_eq!(m.snapshot.tables[1].checksum, "0".repeat(32));
    let original = dump_text(&path);
    let fresh = m.clone();
    // One changed row in one of the four tables fails that table's check, and only its.
    let tampered = original.replace("(2,'two')", "(2,'tw0')");
    assert_ne!(tampered, original);
    let only_t_fails = |path: &Path| {
        let rt = dbbackup().arg("restore-test").arg(path).output().unwrap();
        let stderr = String::from_utf8_lossy(&rt.stderr).into_owned();
        assert_eq!(rt.status.code(), Some(5), "{stderr}");
        assert!(stderr.contains("table t"), "{stderr}");
        for other in ["table docs", "table nums", "table empty_t"] {
            assert!(!stderr.contains(other), "{other}: {stderr}");
        }
    };
    rewrite_archive(&path, &mut m, &tampered);
    only_t_fails(&path);
    // A manifest of the server-side checksums (`mysql-md5-64-sum-v1`, written before the
    // dump's rows were summed) still restore-tests as it did: the values are those commit
    // 34fd3f6 computed for the same rows, which the restored copy's server must compute again.
    let mut old = fresh.clone();
    old.snapshot.checksum_algorithm = "mysql-md5-64-sum-v1".into();
    let want = [
        ("docs", 3, "18889761323326694084"),
        ("empty_t", 0, "0"),
        ("nums", 300, "2751699319432128627826"),
        ("t", 2, "2617810628939989805"),
    ];
    for (table, (name, rows, sum)) in old.snapshot.tables.iter_mut().zip(want) {
        assert_eq!((table.name.as_str(), table.rows), (name, rows));
        table.checksum = sum.into();
    }
    rewrite_archive(&path, &mut old, &original);
    let rt = dbbackup().arg("restore-test").arg(&path).output().unwrap();
    assert!(
        rt.status.success(),
        "{}",
        String::from_utf8_lossy(&rt.stderr)
    );
    rewrite_archive(&path, &mut old, &tampered);
    only_t_fails(&path);
    m = fresh;
    // A dump that switches database is refused before it can touch another one.
    let text = format!("USE `{}`;\nDROP TABLE t;\n{original}", db.name);
    rewrite_archive(&path, &mut m, &text);
    let rt = dbbackup().arg("restore-test").arg(&path).output().unwrap();
    assert_eq!(rt.status.code(), Some(5));
    assert_eq!(sql(&db.name, "SELECT COUNT(*) FROM t"), "2");
}

/// Each table is checked (`CHECK TABLE`, count and checksum) as soon as the restore has loaded
/// it, while the client loads the next ones (`-vv` names them); a statement later in the dump
/// that changes a table checked early (a row inserted into it after the next table's rows, or
/// one deleted) still fails that table: the early results are then thrown away and every table
/// is checked after the restore.
#[test]
fn a_table_checked_early_is_still_checked_against_its_final_contents() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("early");
    // `b` takes long enough to load that `a` is checked before the line after it runs.
    sql(
        &db.name,
        "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO a VALUES (1, 'one'), (2, 'two');
         CREATE TABLE b (id INT PRIMARY KEY, x VARCHAR(40)) SELECT seq AS id, MD5(seq) AS x FROM seq_1_to_300000;",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, mut m, _) = backup(&db.url(), out.path(), &[]);
    let original = dump_text(&path);
    let rt = dbbackup()
        .args(["-vv", "restore-test"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&rt.stderr);
    assert!(rt.status.success(), "{stderr}");
    assert!(
        stderr.contains("checked and summed a while the restore ran"),
        "{stderr}"
    );
    let end = "UNLOCK TABLES;\n";
    let after_b = original.rfind(end).unwrap() + end.len();
    for late in [
        "INSERT INTO `a` VALUES (3,'late');\n",
        "DELETE FROM `a` WHERE id = 2;\n",
    ] {
        let text = format!("{}{late}{}", &original[..after_b], &original[after_b..]);
        rewrite_archive(&path, &mut m, &text);
        let rt = dbbackup().arg("restore-test").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&rt.stderr);
        assert_eq!(rt.status.code(), Some(5), "{late}: {stderr}");
        assert!(stderr.contains("table a"), "{late}: {stderr}");
        assert!(!stderr.contains("table b"), "{late}: {stderr}");
    }
}

/// A backup whose manifest lists a view (or a trigger, routine or event) is not a plain data
/// dump: its definitions would throw away whatever was checked while the restore ran, so its
/// tables are checked after the restore from the start, each once, and the restore test passes.
#[test]
fn a_backup_with_definitions_checks_its_tables_once_after_the_restore() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("early_views");
    sql(
        &db.name,
        "CREATE TABLE a (id INT PRIMARY KEY); INSERT INTO a VALUES (1), (2);
         CREATE TABLE b (id INT PRIMARY KEY, x VARCHAR(40)) SELECT seq AS id, MD5(seq) AS x FROM seq_1_to_50000;
         CREATE VIEW v AS SELECT COUNT(*) AS n FROM a;",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, _, _) = backup(&db.url(), out.path(), &[]);
    let rt = dbbackup()
        .args(["-vv", "restore-test"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&rt.stderr);
    assert!(rt.status.success(), "{stderr}");
    assert!(stderr.contains("restore OK"), "{stderr}");
    assert!(
        stderr.contains("tables checked after the restore: the backup has views"),
        "{stderr}"
    );
    assert!(!stderr.contains("while the restore ran"), "{stderr}");
}

/// The rows are summed from the dump's own `INSERT` tuples: text that looks like data in a
/// routine, a trigger, a view, a comment or a string is not counted, and values with quotes,
/// backslashes, newlines, `),(`, NULLs, emoji, hex blobs, a row of several MiB, generated and
/// invisible columns and a name needing backquotes sum the same on the restored copy; a MERGE
/// table, whose rows no dump carries, is said not to be compared; one changed byte in the large
/// row fails its table.
#[test]
fn rows_are_summed_from_the_dump_text_and_nothing_else() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("dumpsum");
    let fake = "INSERT INTO `t` VALUES (1);";
    let schema = format!(
        r#"CREATE TABLE `we``ird ),( name` (id INT PRIMARY KEY, s LONGTEXT, b LONGBLOB, n INT NULL,
           e VARCHAR(20) CHARACTER SET utf8mb4, g INT AS (id * 2) VIRTUAL,
           hid INT INVISIBLE DEFAULT 4);
         INSERT INTO `we``ird ),( name` (id, s, b, n, e) VALUES
           (1, 'it''s \\ back\\slash\nnew line),(\'x', 0x0001022703, NULL, '😀𝄞'),
           (2, CONCAT('),(', REPEAT('\\''', 400000)), REPEAT(0x27, 1500000), 5, ''),
           (3, NULL, NULL, NULL, NULL);
         CREATE TABLE t (id INT) COMMENT '{fake}';
         INSERT INTO t VALUES (7);
         DELIMITER ;;
         CREATE PROCEDURE p()
         BEGIN
{fake}
         SELECT '{fake}';
         END;;
         CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN
{fake}
         END;;
         DELIMITER ;
         CREATE VIEW v AS SELECT '{fake}' AS x;
         CREATE TABLE m1 (id INT) ENGINE=MyISAM; INSERT INTO m1 VALUES (5), (6);
         CREATE TABLE mm (id INT) ENGINE=MERGE UNION=(m1);"#
    );
    let mut load = client()
        .arg("--default-character-set=utf8mb4")
        .arg(format!("--database={}", db.name))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin
        .take()
        .unwrap()
        .write_all(schema.as_bytes())
        .unwrap();
    assert!(load.wait().unwrap().success());
    let out = tempfile::tempdir().unwrap();
    let (path, mut m, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(stderr.contains("restore OK"), "{stderr}");
    assert_eq!(m.snapshot.checksum_algorithm, "mysql-dump-xxh3-sum-v1");
    let rows: Vec<(&str, u64)> = (m.snapshot.tables.iter())
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(rows, [("m1", 2), ("t", 1), ("we`ird ),( name", 3)]);
    // A MERGE table's rows are its underlying tables': no dump carries them twice.
    assert!(
        (m.snapshot.not_compared.iter()).any(|n| n.starts_with("rows of mm (MERGE")),
        "{:?}",
        m.snapshot.not_compared
    );
    let text = dump_text(&path);
    // The bait is in the dump, at the start of a line, in the routine's and the trigger's body.
    assert!(
        text.matches(&format!("\n{fake}\n")).count() >= 2,
        "the test's bait is not where it should be"
    );
    // One byte of the large row changed: its table fails, the other passes.
    let big = "2727".repeat(1000);
    assert!(text.contains(&big));
    let tampered = text.replacen(&big, &format!("2728{}", &big[4..]), 1);
    rewrite_archive(&path, &mut m, &tampered);
    let rt = dbbackup().arg("restore-test").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&rt.stderr);
    assert_eq!(rt.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("table we`ird ),( name"), "{stderr}");
    assert!(!stderr.contains("table t:"), "{stderr}");
}

/// A `mariadb-dump` first on PATH that records its arguments and environment, then runs the
/// real one.
fn recording_path(dir: &Path) -> String {
    let log = dir.join("argv.log");
    let script = dir.join("mariadb-dump");
    crate::support::write_executable(
        &script,
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec /usr/bin/mariadb-dump --version\nprintf '%s\\n' \"$@\" >> {log}\nenv >> {log}\ncat \"${{1#--defaults-extra-file=}}\" > /dev/null && stat -c '%a' \"${{1#--defaults-extra-file=}}\" >> {log}\nexec /usr/bin/mariadb-dump \"$@\"\n",
            log = log.display()
        ),
    );
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

#[test]
fn faults_exit_with_the_documented_codes_and_never_show_the_password() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("faults");
    sql(
        &db.name,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let user = format!("dbb_pw_{}", std::process::id());
    let password = "Sekr3t-pa55word-xyzzy";
    sql(
        "",
        &format!(
            "DROP USER IF EXISTS '{user}'@'127.0.0.1'; CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
             GRANT ALL ON `{db}`.* TO '{user}'@'127.0.0.1'; GRANT RELOAD, PROCESS ON *.* TO '{user}'@'127.0.0.1';
             GRANT ALL ON `dbbackup\\_scratch\\_%`.* TO '{user}'@'127.0.0.1';",
            db = db.name
        ),
    );
    let out = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let path = recording_path(bin.path());
    let url = format!("mysql://{user}@{HOST}:{PORT}/{}", db.name);
    let ok = dbbackup()
        .args(["backup", &url, "--restore-test", "--json", "--out"])
        .arg(out.path())
        .env("MYSQL_PWD", password)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let log = std::fs::read_to_string(bin.path().join("argv.log")).unwrap();
    assert!(log.starts_with("--defaults-extra-file="), "{log}");
    assert!(
        log.lines().any(|l| l == "600"),
        "the option file is 0600: {log}"
    );
    assert!(
        !log.contains(password),
        "the password reached the tool's argv or environment: {log}"
    );
    let mut shown = String::from_utf8_lossy(&ok.stdout).into_owned();
    shown.push_str(&String::from_utf8_lossy(&ok.stderr));
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            shown.push_str(&dump_text_or_bytes(&p));
        }
    }
    assert!(
        !shown.contains(password),
        "the password was shown or written"
    );
    // The same with the password in the URL.
    let in_url = format!("mysql://{user}:{password}@{HOST}:{PORT}/{}", db.name);
    let ok = dbbackup()
        .args(["backup", &in_url, "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(!String::from_utf8_lossy(&ok.stderr).contains(password));

    let code = |url: &str, extra_env: &[(&str, &str)]| {
        let mut cmd = dbbackup();
        cmd.args(["backup", url, "--out"]).arg(out.path());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!stderr.contains(password), "{stderr}");
        (o.status.code(), stderr)
    };
    let (c, e) = code(&url, &[("MYSQL_PWD", "wrong")]);
    assert_eq!(c, Some(3), "{e}");
    assert!(e.contains("access denied"), "{e}");
    let (c, e) = code(
        &format!("mysql://root@{HOST}:{PORT}/no_such_db_dbbackup"),
        &[],
    );
    assert_eq!(c, Some(3), "{e}");
    assert!(e.contains("does not exist"), "{e}");
    let (c, e) = code(&format!("mysql://root@{HOST}:1/{}", db.name), &[]);
    assert_eq!(c, Some(3), "{e}");
    assert!(e.contains("cannot connect"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let (c, e) = code(&db.url(), &[("PATH", empty.path().to_str().unwrap())]);
    assert_eq!(c, Some(7), "{e}");
    assert!(e.contains("mariadb-client"), "{e}");
    // Without RELOAD the backup fails and names the privilege.
    sql(
        "",
        &format!("REVOKE RELOAD ON *.* FROM '{user}'@'127.0.0.1'"),
    );
    let (c, e) = code(&url, &[("MYSQL_PWD", password)]);
    assert_eq!(c, Some(3), "{e}");
    assert!(e.contains("RELOAD"), "{e}");
    sql("", &format!("DROP USER '{user}'@'127.0.0.1'"));
    let written: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(
        written.len(),
        4,
        "failed backups wrote nothing: {written:?}"
    );
}

/// The least a backup user needs, tried with a real user: `SELECT, SHOW VIEW, TRIGGER, EVENT`
/// on the database and `RELOAD, PROCESS` on `*.*`, and not `LOCK TABLES` (`--single-transaction`
/// locks no table). Without `RELOAD` or `PROCESS` the backup fails (exit 3), says which grant
/// is missing and writes nothing.
#[test]
fn a_user_without_reload_process_or_lock_tables_is_told_the_grant_it_lacks() {
    let Some((_one_at_a_time, db)) = exclusive_db(
        "grants",
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);
         CREATE TABLE u (id INT PRIMARY KEY); INSERT INTO u VALUES (3);
         CREATE VIEW v AS SELECT id FROM t;
         CREATE TRIGGER t_ins BEFORE INSERT ON t FOR EACH ROW SET NEW.id = NEW.id;",
    ) else {
        return;
    };
    let user = format!("dbb_grants_{}", std::process::id());
    let who = format!("'{user}'@'127.0.0.1'");
    sql(
        "",
        &format!(
            "DROP USER IF EXISTS {who};
             CREATE USER {who} IDENTIFIED BY 'grants-pw' WITH MAX_USER_CONNECTIONS 2;
             GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `{}`.* TO {who};",
            db.name
        ),
    );
    let out = tempfile::tempdir().unwrap();
    let url = format!("mysql://{user}@{HOST}:{PORT}/{}", db.name);
    let run = || {
        let o = dbbackup()
            .args(["backup", &url, "--out"])
            .arg(out.path())
            .env("MYSQL_PWD", "grants-pw")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (none, none_err) = run();
    sql("", &format!("GRANT RELOAD ON *.* TO {who}"));
    let (no_process, no_process_err) = run();
    let written = std::fs::read_dir(out.path()).unwrap().count();
    sql("", &format!("GRANT PROCESS ON *.* TO {who}"));
    let (enough, enough_err) = run();
    let grants = sql("", &format!("SHOW GRANTS FOR {who}"));
    // Its restore test, limited to 2 connections too: the copy's rows are dumped after the
    // CHECK TABLEs (whose extra connections would leave the dump tool refused), not beside them.
    sql(
        "",
        &format!("GRANT ALL ON `dbbackup\\_scratch\\_%`.* TO {who}"),
    );
    let tested = dbbackup()
        .arg("restore-test")
        .arg(out.path())
        .env("MYSQL_PWD", "grants-pw")
        .output()
        .unwrap();
    sql("", &format!("DROP USER {who}"));
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );

    assert_eq!(none, Some(3), "{none_err}");
    assert!(
        none_err.contains("lacks the RELOAD privilege")
            && none_err.contains("GRANT RELOAD, PROCESS"),
        "{none_err}"
    );
    assert_eq!(no_process, Some(3), "{no_process_err}");
    assert!(
        no_process_err.contains("lacks the PROCESS privilege"),
        "{no_process_err}"
    );
    assert_eq!(written, 0, "a refused backup wrote something");
    assert_eq!(enough, Some(0), "{enough_err}");
    assert!(!grants.contains("LOCK TABLES"), "{grants}");
    let archives: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".sql.gz")
        })
        .collect();
    assert_eq!(archives.len(), 1);
}

fn dump_text_or_bytes(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "gz") {
        dump_text(path)
    } else {
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    }
}

#[test]
fn backups_under_a_writer_hold_the_invariant_in_every_restored_copy() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("writer");
    sql(
        &db.name,
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
         INSERT INTO accounts SELECT seq, 1000 FROM seq_1_to_200;
         CREATE TABLE savings (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
         INSERT INTO savings SELECT seq, 1000 FROM seq_1_to_200;",
    );
    // Transfers between random accounts, committed one after another without pause, from one
    // table to the other: the rows are counted from the dump's own text, and the schema is
    // described on a connection whose snapshot must be the dump's.
    let script = format!(
        "for i in $(seq 1 100000); do a=$((i % 200 + 1)); b=$(((i * 7) % 200 + 1)); \
         echo \"START TRANSACTION; UPDATE accounts SET balance = balance - 3 WHERE id = $a; \
         UPDATE savings SET balance = balance + 3 WHERE id = $b; COMMIT;\"; done | \
         mariadb -h {HOST} -P {PORT} -u root --protocol=TCP {}",
        db.name
    );
    let mut writer = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for round in 0..10 {
        let (path, m, _) = backup(&db.url(), out.path(), &["--restore-test"]);
        // The restore test passed: the dump holds exactly the manifest's rows. And the
        // invariant holds in the dump itself, restored independently.
        let copy = TestDb::new(&format!("writer_copy{round}"));
        let mut load = client()
            .arg(format!("--database={}", copy.name))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        load.stdin
            .take()
            .unwrap()
            .write_all(dump_text(&path).as_bytes())
            .unwrap();
        assert!(load.wait().unwrap().success());
        assert_eq!(
            sql(
                &copy.name,
                "SELECT (SELECT SUM(balance) FROM accounts) + (SELECT SUM(balance) FROM savings)"
            ),
            "400000"
        );
        assert_eq!(m.snapshot.tables[0].rows, 200);
        assert_eq!(m.snapshot.tables[1].rows, 200);
        checked += 1;
    }
    let still_writing = writer.try_wait().unwrap().is_none();
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(still_writing, "the writer ran through all backups");
    assert_eq!(checked, 10);
    assert_eq!(
        sql(
            &db.name,
            "SELECT (SELECT SUM(balance) FROM accounts) + (SELECT SUM(balance) FROM savings)"
        ),
        "400000"
    );
}

#[test]
fn interrupted_restore_test_drops_its_scratch_database() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("interrupt");
    sql(
        &db.name,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, mut m, _) = backup(&db.url(), out.path(), &[]);
    let stalled = format!("SELECT SLEEP(60);\n{}", dump_text(&path));
    rewrite_archive(&path, &mut m, &stalled);
    let child = dbbackup()
        .arg("restore-test")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = std::time::Instant::now();
    while scratch_databases(pid) != "1" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no scratch database appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(scratch_databases(pid), "0");
}

/// A scratch database left by a killed run on this machine (its process is gone) is dropped by
/// the next restore test; another machine's, and a live process's, are left alone.
#[test]
fn the_next_restore_test_sweeps_this_machines_abandoned_scratch_databases() {
    let _one_at_a_time = one_at_a_time();
    if !server_up() {
        return;
    }
    let db = TestDb::new("sweep");
    sql(&db.name, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)");
    let out = tempfile::tempdir().unwrap();
    let (path, _, _) = backup(&db.url(), out.path(), &[]);
    let ours = dbbackup::process::machine_tag();
    // A pid above the kernel's maximum (4194304) never runs.
    let abandoned = format!("dbbackup_scratch_4194399_{ours}_0badcafe");
    let foreign = "dbbackup_scratch_4194399_00000000_0badcafe".to_string();
    let live = format!("dbbackup_scratch_{}_{ours}_0badcafe", std::process::id());
    for name in [&abandoned, &foreign, &live] {
        sql("", &format!("CREATE DATABASE `{name}`"));
    }
    let tested = dbbackup().arg("restore-test").arg(&path).output().unwrap();
    let exists = |name: &str| {
        sql(
            "",
            &format!(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{name}'"
            ),
        ) == "1"
    };
    let (gone, kept_foreign, kept_live) = (!exists(&abandoned), exists(&foreign), exists(&live));
    for name in [&abandoned, &foreign, &live] {
        sql("", &format!("DROP DATABASE IF EXISTS `{name}`"));
    }
    assert!(tested.status.success(), "{tested:?}");
    assert!(gone, "the abandoned scratch database was not swept");
    assert!(
        kept_foreign && kept_live,
        "another machine's or a live run's was dropped"
    );
}
