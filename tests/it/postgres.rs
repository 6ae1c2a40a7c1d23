//! PostgreSQL backups against the real server at 127.0.0.1:5432 (user postgres). Every test
//! makes its own database and drops it. Without a server the tests skip, except under
//! `CI=true`, where an unreachable server is a failure.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::RwLock;
use std::time::Duration;

use dbbackup::archive::Format;
use dbbackup::archive::manifest::{self, Manifest, Snapshot};
use dbbackup::engine::RestoreTarget;
use dbbackup::engine::Scratch;
use dbbackup::engine::postgres::conn::ConnInfo;
use dbbackup::engine::postgres::describe;
use dbbackup::engine::postgres::{PostgresRestorer, PostgresScratch};
use flate2::read::GzDecoder;
use sha2::Digest;

use crate::support::pg::{HOST, PORT, TestDb, pgbench, psql, server_up};
use crate::support::{backup_json as backup, data, dbbackup};

/// Row checksums from the dump's COPY text; a child module for the restore helpers.
mod copysum;
/// `--format directory --jobs N`: a child module, so it shares this module's Sakila fixture and
/// restore helpers.
mod directory;

impl TestDb {
    fn sakila(tag: &str) -> Self {
        let db = Self::new(tag);
        let status = Command::new("psql")
            .args(["-h", HOST, "-p", PORT, "-U", "postgres", "-d", &db.name])
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(data("sakila-postgres-schema.sql"))
            .arg("-f")
            .arg(data("sakila-postgres-data.sql"))
            .stdout(Stdio::null())
            .status()
            .expect("psql runs");
        assert!(status.success(), "loading Sakila failed");
        db
    }
}

/// Held (shared) by every restore, and exclusively by the test that drops all of this
/// process's scratch databases at once.
static RESTORES: RwLock<()> = RwLock::new(());

/// Restores a backup into a scratch database through the library, as restore-test does.
fn restore(path: &Path, m: &Manifest) -> dbbackup::Result<PostgresScratch> {
    let mut dump = GzDecoder::new(BufReader::new(File::open(path).unwrap()));
    restore_bytes(&mut dump, m)
}

fn restore_bytes(dump: &mut dyn Read, m: &Manifest) -> dbbackup::Result<PostgresScratch> {
    let target = RestoreTarget {
        manifest: m,
        into: None,
        otherwise: Default::default(),
        jobs: None,
    };
    PostgresRestorer::for_target(&target)?.restore_scratch_db(m.format, dump)
}

/// The tables whose counts or checksums in `restored` are not the manifest's.
fn differing_tables<'a>(restored: &'a Snapshot, m: &Manifest) -> Vec<&'a str> {
    restored
        .tables
        .iter()
        .zip(&m.snapshot.tables)
        .filter(|(r, s)| r != s)
        .map(|(r, _)| r.name.as_str())
        .collect()
}

fn assert_same(restored: &Snapshot, manifest: &Snapshot) {
    assert_eq!(
        restored.tables, manifest.tables,
        "per-table counts and checksums"
    );
    assert_eq!(restored.objects, manifest.objects);
    assert_eq!(restored.schema_checksum, manifest.schema_checksum);
    assert_eq!(restored, manifest);
}

fn database_exists(name: &str) -> bool {
    psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

/// This process's scratch databases, e.g. one a failed restore left behind.
fn scratch_databases() -> String {
    psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbbackup\\_scratch\\_{}\\_%'",
            std::process::id()
        ),
    )
}

#[test]
fn sakila_plain_backup_matches_the_source_and_restores_identically() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("plain");
    let out = tempfile::tempdir().unwrap();
    let secret = "hunter2-not-shown";
    let url = format!("postgres://postgres:{secret}@{HOST}:{PORT}/{}", db.name);
    let (path, m, stderr) = backup(&url, out.path(), &[]);

    // Default format: plain SQL, and the password is nowhere to be seen.
    assert!(path.to_str().unwrap().ends_with(".sql.gz"), "{path:?}");
    assert_eq!(m.format, Format::Sql);
    let manifest_text = std::fs::read_to_string(manifest::path_for(&path)).unwrap();
    for shown in [&manifest_text, &stderr] {
        assert!(!shown.contains(secret), "password leaked: {shown}");
    }
    assert_eq!(m.source, db.url());
    assert!(
        m.engine
            .dump_tool
            .as_deref()
            .unwrap()
            .starts_with("pg_dump")
    );
    assert!(
        m.engine
            .version
            .starts_with(&psql(&db.name, "SHOW server_version"))
    );

    // Every table's count is the source's (inheritance children counted in their own right).
    let tables: Vec<&str> = m.snapshot.tables.iter().map(|t| t.name.as_str()).collect();
    for expected in ["public.actor", "public.payment", "public.payment_p2007_01"] {
        assert!(
            tables.contains(&expected),
            "{expected} missing from {tables:?}"
        );
    }
    for t in &m.snapshot.tables {
        let count = psql(&db.name, &format!("SELECT count(*) FROM ONLY {}", t.name));
        assert_eq!(t.rows.to_string(), count, "{}", t.name);
    }
    let all_tables = psql(
        &db.name,
        "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    );
    assert_eq!(tables.join(","), all_tables);
    let kinds: Vec<&str> = m.snapshot.objects.iter().map(|o| o.kind.as_str()).collect();
    for kind in [
        "table", "view", "index", "sequence", "function", "trigger", "type",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in the manifest");
    }

    let _restoring = RESTORES.read().unwrap();
    let scratch = restore(&path, &m).unwrap();
    let name = scratch.database().to_string();
    assert!(name.starts_with("dbbackup_scratch_") && database_exists(&name));
    let checks = scratch.integrity(false).unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["restore_ran_clean", "amcheck"]);
    assert!(checks.iter().all(|c| c.problems.is_empty()), "{checks:?}");
    assert_same(&scratch.describe().unwrap(), &m.snapshot);
    assert!(scratch.notes()[0].contains("OWNER TO"));
    drop(scratch);
    assert!(
        !database_exists(&name),
        "the scratch database {name} was not dropped"
    );
}

#[test]
fn sakila_custom_format_restores_identically() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("custom");
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &["--format", "custom"]);
    assert!(path.to_str().unwrap().ends_with(".dump.gz"), "{path:?}");
    // No COPY text passes through dbbackup: the server hashes the rows.
    assert_eq!(
        m.snapshot.checksum_algorithm,
        "postgres-hashtextextended-sum-v1"
    );
    let mut magic = [0u8; 5];
    GzDecoder::new(File::open(&path).unwrap())
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"PGDMP", "not a pg_dump custom archive");
    // pg_dump writes it uncompressed (-Z0) and our gzip compresses it once: gzipping pg_dump's
    // own compressed output gained 1.1x.
    assert!(
        m.raw_bytes > 2 * m.compressed_bytes,
        "the custom archive was compressed twice: {} raw bytes, {} gzipped",
        m.raw_bytes,
        m.compressed_bytes
    );
    let _restoring = RESTORES.write().unwrap();
    let scratch = restore(&path, &m).unwrap();
    assert_same(&scratch.describe().unwrap(), &m.snapshot);

    // Ctrl-C and SIGTERM: see interrupt.rs, which signals the real binary.
    let name = scratch.database().to_string();
    drop(scratch);
    assert!(!database_exists(&name), "{name} survived its scratch");
}

/// pgbench writes throughout the backup; the restored data must be exactly the snapshot's.
#[test]
fn backup_during_pgbench_writes_restores_exactly_the_manifest() {
    if !server_up() {
        return;
    }
    let db = TestDb::pgbench("pgbench", 2);
    // pgbench runs until stopped, so it writes before, during and after the backup.
    let mut bench: Child = pgbench(&["-n", "-T", "120", "-c", "2", &db.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(bench.try_wait().unwrap().is_none(), "pgbench stopped early");
    bench.kill().unwrap();
    bench.wait().unwrap();

    let history = m
        .snapshot
        .tables
        .iter()
        .find(|t| t.name == "public.pgbench_history")
        .unwrap();
    let after: u64 = psql(&db.name, "SELECT count(*) FROM pgbench_history")
        .parse()
        .unwrap();
    assert!(history.rows > 0, "no write happened before the snapshot");
    assert!(after > history.rows, "no write happened after the snapshot");

    let _restoring = RESTORES.read().unwrap();
    let scratch = restore(&path, &m).unwrap();
    assert_same(&scratch.describe().unwrap(), &m.snapshot);
}

#[test]
fn an_edited_or_broken_dump_is_caught() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("edited");
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    // The tables' checksums are the dump's COPY text's (see postgres/copysum.rs).
    assert_eq!(m.snapshot.checksum_algorithm, "postgres-copy-xxh3-sum-v1");
    let mut sql = String::new();
    GzDecoder::new(File::open(&path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();

    // One value changed in the data: same counts, the actor table's checksum differs.
    let edited = sql.replacen("\tPENELOPE\tGUINESS\t", "\tPENELOPX\tGUINESS\t", 1);
    assert_ne!(edited, sql, "the row to edit is not in the dump");
    let restoring = RESTORES.read().unwrap();
    let restored = restore_bytes(&mut edited.as_bytes(), &m)
        .unwrap()
        .describe()
        .unwrap();
    assert_eq!(restored.schema_checksum, m.snapshot.schema_checksum);
    let differing = differing_tables(&restored, &m);
    assert_eq!(differing, ["public.actor"]);
    assert_eq!(restored.total_rows(), m.snapshot.total_rows());

    // A truncated archive is an unreadable backup, whatever psql made of the part it got.
    let bytes = std::fs::read(&path).unwrap();
    let mut truncated = GzDecoder::new(&bytes[..bytes.len() / 2]);
    let err = restore_bytes(&mut truncated, &m).err().unwrap();
    assert_eq!(err.exit_code(), dbbackup::error::exit::UNREADABLE, "{err}");
    drop(restoring);

    // A broken statement stops the restore with psql's own message, and the scratch goes.
    let broken = sql.replacen("CREATE TABLE public.actor", "CREATE TABLEX public.actor", 1);
    let err = {
        let _restoring = RESTORES.write().unwrap();
        let err = restore_bytes(&mut broken.as_bytes(), &m).err().unwrap();
        assert_eq!(
            scratch_databases(),
            "0",
            "the scratch database was not dropped"
        );
        err
    };
    let msg = err.to_string();
    assert_eq!(
        err.exit_code(),
        dbbackup::error::exit::CHECK_FAILED,
        "{msg}"
    );
    assert!(
        msg.contains("psql stopped at the first error") && msg.contains("TABLEX"),
        "{msg}"
    );
}

#[test]
fn missing_pg_dump_exits_7_naming_the_package() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = dbbackup()
        .args([
            "backup",
            "postgres://postgres@127.0.0.1:5432/postgres",
            "--out",
        ])
        .arg(out.path().join("b"))
        .env("PATH", empty.path())
        .env("DBBACKUP_PG_SEARCH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("pg_dump") && stderr.contains("postgresql-client"),
        "{stderr}"
    );
}

/// A `pg_dump` that reports an older major release than the server is refused before it runs,
/// when no newer one is anywhere (the machine's usual places put out of sight).
#[test]
fn pg_dump_older_than_the_server_exits_7_with_both_versions() {
    if !server_up() {
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("pg_dump");
    crate::support::write_executable(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n");
    let out = tempfile::tempdir().unwrap();
    let output = dbbackup()
        .args([
            "backup",
            "postgres://postgres@127.0.0.1:5432/postgres",
            "--out",
        ])
        .arg(out.path())
        .env("PATH", bin.path())
        .env("DBBACKUP_PG_SEARCH", bin.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let server = psql("postgres", "SHOW server_version");
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("9.6.24") && stderr.contains(&server),
        "{stderr}"
    );
    assert!(stderr.contains("set DBBACKUP_PG_BIN"), "{stderr}");
}

#[test]
fn server_down_exits_3_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("backups");
    let output = dbbackup()
        .args([
            "backup",
            "postgres://postgres:pw-not-shown@127.0.0.1:1/app",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the server at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-not-shown"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&dir).map_or(vec![], |d| d.collect());
    assert!(left.is_empty(), "{left:?}");
}

/// The server trusts every connection from 127.0.0.1 (see pg_hba.conf), so a wrong password
/// cannot be provoked here; a missing database and a missing role take the same path (the
/// server refuses the login) and are what this checks.
#[test]
fn missing_database_or_role_exits_3_without_the_password() {
    if !server_up() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    for (url, expected) in [
        (
            "postgres://postgres:pw-not-shown@127.0.0.1:5432/dbbackup_no_such_db",
            "database 'dbbackup_no_such_db' does not exist",
        ),
        (
            "postgres://dbbackup_no_such_role:pw-not-shown@127.0.0.1:5432/postgres",
            "dbbackup_no_such_role",
        ),
    ] {
        let output = dbbackup()
            .args(["backup", url, "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("pw-not-shown"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// pg_dump dies after writing part of the dump (a character its client encoding cannot
/// represent, in the last table): its stderr is in the message and no file is left.
#[test]
fn pg_dump_failing_half_way_leaves_nothing_and_shows_its_error() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("halfway");
    psql(
        &db.name,
        "CREATE TABLE a_fine AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g; \
         CREATE TABLE z_bad (t text); INSERT INTO z_bad VALUES ('中文');",
    );
    let out = tempfile::tempdir().unwrap();
    let output = dbbackup()
        .args(["backup", &db.url(), "--out"])
        .arg(out.path())
        .env("PGCLIENTENCODING", "LATIN1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("pg_dump failed"), "{stderr}");
    assert!(stderr.contains("has no equivalent in encoding"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A lock held elsewhere stalls the dump; --timeout stops it with a clear message.
#[test]
fn timeout_stops_a_stalled_backup() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("timeout");
    psql(&db.name, "CREATE TABLE t AS SELECT 1 AS x");
    let mut locker = Command::new("psql")
        .args([
            "-h", HOST, "-p", PORT, "-U", "postgres", "-d", &db.name, "-X", "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = locker.stdin.take().unwrap();
    writeln!(
        stdin,
        "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20);"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let out = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = dbbackup()
        .args(["backup", &db.url(), "--timeout", "2s", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("did not finish within --timeout 2s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    let _ = locker.kill();
    let _ = locker.wait();
}

/// The server's TLS certificate file, when it offers TLS (Debian's default: a self-signed
/// "snakeoil" certificate for `localhost`).
fn server_tls_cert() -> Option<String> {
    if psql("postgres", "SHOW ssl") != "on" {
        eprintln!("skipping TLS checks: the server has ssl = off");
        return None;
    }
    Some(psql("postgres", "SHOW ssl_cert_file"))
}

/// sslmode means what it means to libpq, for our connection and pg_dump's alike.
#[test]
fn tls_modes_behave_like_libpq() {
    if !server_up() {
        return;
    }
    let Some(cert) = server_tls_cert() else {
        return;
    };
    let encrypted = |mode: &str| {
        let url = format!("postgres://postgres@{HOST}:{PORT}/postgres?sslmode={mode}");
        let mut client = ConnInfo::parse(&url).unwrap().connect(None).unwrap();
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        row.get::<_, bool>(0)
    };
    assert!(encrypted("require"));
    assert!(!encrypted("disable"));

    let db = TestDb::new("tls");
    psql(&db.name, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)");
    let out = tempfile::tempdir().unwrap();
    let root = url::form_urlencoded::byte_serialize(cert.as_bytes()).collect::<String>();
    // The certificate is its own root: the chain checks out, the name (localhost) is not
    // 127.0.0.1.
    backup(
        &format!("{}?sslmode=verify-ca&sslrootcert={root}", db.url()),
        out.path(),
        &[],
    );
    for (query, code, expected) in [
        (
            format!("sslmode=verify-full&sslrootcert={root}"),
            3,
            "certificate not valid for name \"127.0.0.1\"",
        ),
        ("sslmode=verify-full".to_string(), 2, "sslrootcert"),
    ] {
        let output = dbbackup()
            .args(["backup", &format!("{}?{query}", db.url()), "--out"])
            .arg(out.path())
            .env("HOME", out.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// What the URL leaves out comes from the PG* variables, as for psql; a Unix socket directory
/// works as the host.
#[test]
fn pg_variables_and_unix_sockets_fill_in_the_url() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("env");
    psql(
        &db.name,
        "CREATE TABLE t AS SELECT generate_series(1, 7) AS n",
    );
    let out = tempfile::tempdir().unwrap();
    let output = dbbackup()
        .args(["backup", "postgres://", "--json", "--out"])
        .arg(out.path())
        .env("PGHOST", HOST)
        .env("PGPORT", PORT)
        .env("PGUSER", "postgres")
        .env("PGDATABASE", &db.name)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["manifest"]["source"], db.url().as_str());
    assert_eq!(json["manifest"]["snapshot"]["tables"][0]["rows"], 7);

    let socket_dir = psql("postgres", "SHOW unix_socket_directories");
    let socket_dir = socket_dir.split(',').next().unwrap().trim();
    if !Path::new(socket_dir)
        .join(format!(".s.PGSQL.{PORT}"))
        .exists()
    {
        eprintln!("no Unix socket in {socket_dir}: socket check skipped");
        return;
    }
    let url = format!("postgres:///{}?host={socket_dir}&user=postgres", db.name);
    let (_, m, _) = backup(&url, out.path(), &[]);
    assert!(m.source.contains("host=%2F"), "{}", m.source);
    assert_eq!(m.snapshot.tables[0].rows, 7);
}

/// Inheritance, a materialized view, a dropped column and types whose text depends on session
/// settings: the restored copy still describes exactly as the source, and each inheritance
/// child's rows are counted in the child only.
#[test]
fn awkward_schemas_restore_to_the_same_description() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("awkward");
    psql(
        &db.name,
        "CREATE SCHEMA \"Odd Schema\"; CREATE EXTENSION pg_trgm SCHEMA \"Odd Schema\"; \
         CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
         CREATE TABLE parent (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, gone text, \
           f float8, at timestamptz, b bytea, j jsonb, a int[], m mood, \
           twice int GENERATED ALWAYS AS (id * 2) STORED); \
         ALTER TABLE parent DROP COLUMN gone; \
         CREATE TABLE \"Odd Schema\".\"Child \"\"One\"\"\" (extra text) INHERITS (parent); \
         SET TimeZone = 'America/New_York'; \
         INSERT INTO parent (f, at, b, j, a, m) VALUES \
           (0.1, '2024-03-10 01:30', '\\xdeadbeef', '{\"k\": [1, 2]}', '{1,NULL,3}', 'ok'), \
           (1e300, 'infinity', '', 'null', '{}', NULL); \
         INSERT INTO \"Odd Schema\".\"Child \"\"One\"\"\" (id, f, at, m, extra) VALUES \
           (101, -0.0, '1999-12-31 23:59:59.999999+14', 'happy', 'x'), (102, 3.14159, now(), 'sad', NULL); \
         CREATE INDEX trgm ON \"Odd Schema\".\"Child \"\"One\"\"\" USING gin (extra \"Odd Schema\".gin_trgm_ops); \
         CREATE MATERIALIZED VIEW happy AS SELECT id, m FROM parent WHERE m IS NOT NULL;",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    let rows = |name: &str| {
        m.snapshot
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .rows
    };
    assert_eq!(rows("public.parent"), 2);
    // A name with a quote in it is quoted (a quote or a dot would make names ambiguous).
    assert_eq!(rows("Odd Schema.\"Child \"\"One\"\"\""), 2);
    assert_eq!(rows("public.happy"), 3);
    let objects = &m.snapshot.objects;
    assert!(
        objects
            .iter()
            .any(|o| o.kind == "extension" && o.name == "pg_trgm")
    );
    assert!(
        !objects
            .iter()
            .any(|o| o.name.starts_with("Odd Schema.similarity(")),
        "an extension's own functions are not the database's objects"
    );
    let _restoring = RESTORES.read().unwrap();
    let scratch = restore(&path, &m).unwrap();
    assert_same(&scratch.describe().unwrap(), &m.snapshot);
}

/// An index whose function lies about being immutable holds values its table's rows no longer
/// give: amcheck names it and goes on to the next index, while the copy is described on other
/// connections, which never see amcheck's own schema (it is rolled back).
#[test]
fn amcheck_names_a_lying_index_and_goes_on_while_the_copy_is_described() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("amcheck");
    psql(
        &db.name,
        "CREATE FUNCTION shifty(int) RETURNS int LANGUAGE plpgsql IMMUTABLE \
           AS $$ BEGIN RETURN $1 + (random() * 1000000)::int; END $$; \
         CREATE TABLE a (id int PRIMARY KEY, v int); \
         INSERT INTO a SELECT g, g FROM generate_series(1, 2000) g; \
         CREATE INDEX a_shifty ON a (shifty(v)); \
         CREATE TABLE z (id int PRIMARY KEY); INSERT INTO z SELECT generate_series(1, 100);",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    let _restoring = RESTORES.read().unwrap();
    let scratch = restore(&path, &m).unwrap();
    let checks = scratch.integrity(false).unwrap();
    let amcheck = checks.iter().find(|c| c.name == "amcheck").unwrap();
    assert_eq!(amcheck.problems.len(), 1, "{:?}", amcheck.problems);
    assert!(
        amcheck.problems[0].starts_with("public.a_shifty: "),
        "{:?}",
        amcheck.problems
    );
    assert_same(&scratch.describe().unwrap(), &m.snapshot);
    assert_eq!(
        psql(
            scratch.database(),
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'dbbackup_amcheck'"
        ),
        "0"
    );
    // --quick checks the index's structure only, which is sound.
    let scratch = restore(&path, &m).unwrap();
    let checks = scratch.integrity(true).unwrap();
    assert!(checks.iter().all(|c| c.problems.is_empty()), "{checks:?}");
}

/// The per-table counts and checksums shared with helper connections, tables cut into block
/// ranges (the last one open: rows were added after the statistics), are those of one
/// connection reading whole tables.
#[test]
fn describing_in_block_ranges_on_helpers_matches_one_connection() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("chunks");
    psql(
        &db.name,
        "CREATE TABLE t(id int, s text); CREATE TABLE small(id int); \
         INSERT INTO t SELECT i, repeat('x', i % 50) FROM generate_series(1, 3000) i; \
         INSERT INTO small VALUES (1), (2); ANALYZE; \
         INSERT INTO t SELECT i, 'late' FROM generate_series(3001, 3700) i; \
         DELETE FROM t WHERE id BETWEEN 1000 AND 1200",
    );
    let connect = || {
        let mut client = ConnInfo::parse(&db.url()).unwrap().connect(None).unwrap();
        client.batch_execute(describe::SESSION_SETTINGS).unwrap();
        client
    };
    let alone = describe::describe(&mut connect(), &mut []).unwrap();
    let shared =
        describe::describe_in_chunks(&mut connect(), &mut [connect(), connect()], 3).unwrap();
    assert_eq!(shared, alone);
    let t = alone.tables.iter().find(|t| t.name == "public.t").unwrap();
    assert_eq!(t.rows, 3499);
}

/// `restore B TARGET_URL`: the verified scratch database is renamed into place; an existing
/// target is replaced only when asked, and the scratch database is gone either way.
#[test]
fn persist_renames_the_verified_copy_into_place() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("persist_src");
    let target = TestDb {
        name: format!("{}_restored", db.name),
    };
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &["--format", "custom"]);
    let _restoring = RESTORES.read().unwrap();
    let target_url = PathBuf::from(target.url());

    let scratch = restore(&path, &m).unwrap();
    let scratch_name = scratch.database().to_string();
    Box::new(scratch).persist(&target_url, false).unwrap();
    assert!(!database_exists(&scratch_name));
    let mut client = ConnInfo::parse(&target.url())
        .unwrap()
        .connect(None)
        .unwrap();
    client.batch_execute(describe::SESSION_SETTINGS).unwrap();
    assert_same(
        &describe::describe(&mut client, &mut []).unwrap(),
        &m.snapshot,
    );

    // An existing target needs overwrite; replacing it ends connections to it.
    let scratch = restore(&path, &m).unwrap();
    let scratch_name = scratch.database().to_string();
    let err = Box::new(scratch).persist(&target_url, false).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert!(!database_exists(&scratch_name));
    let scratch = restore(&path, &m).unwrap();
    Box::new(scratch).persist(&target_url, true).unwrap();
    assert!(client.is_closed() || client.simple_query("SELECT 1").is_err());
    assert!(database_exists(&target.name));
    assert_eq!(
        psql(&target.name, "SELECT count(*) FROM public.actor"),
        "200"
    );
}

/// The commands end to end on a PostgreSQL backup: restore-test passes with a JUnit report that
/// says owners were skipped, `--restore-into` picks the server, `restore` lands the database.
#[test]
fn restore_test_and_restore_commands_on_a_postgres_backup() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("cli");
    let target = TestDb {
        name: format!("{}_restored", db.name),
    };
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &[]);
    let junit = out.path().join("report.xml");
    let output = dbbackup()
        .args(["restore-test", "--json", "--restore-into"])
        .arg(format!("postgres://postgres@{HOST}:{PORT}"))
        .arg(&path)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("public.payment_p2007_01"), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checks = json["backups"][0]["checks"].as_array().unwrap();
    let restore = checks.iter().find(|c| c["name"] == "restore").unwrap();
    assert!(restore.to_string().contains("OWNER TO"), "{restore}");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"amcheck"), "{names:?}");

    let output = dbbackup()
        .arg("restore")
        .arg(&path)
        .arg(target.url())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for t in &m.snapshot.tables {
        let count = psql(
            &target.name,
            &format!("SELECT count(*) FROM ONLY {}", t.name),
        );
        assert_eq!(t.rows.to_string(), count, "{}", t.name);
    }
}

/// A restore server that does not answer is named as such: the source is not to blame.
#[test]
fn a_dead_restore_server_is_named_as_the_restore_server() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("deadtarget");
    psql(&db.name, "CREATE TABLE t(id int); INSERT INTO t VALUES (1)");
    let out = tempfile::tempdir().unwrap();
    let (path, _, _) = backup(&db.url(), out.path(), &[]);
    let output = dbbackup()
        .args(["restore-test", "--restore-into"])
        .arg(format!(
            "postgres://postgres@{HOST}:1/postgres?connect_timeout=5"
        ))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("restore server postgres://"), "{stderr}");
    assert!(!stderr.contains("source database"), "{stderr}");
}

/// A dump edited after the backup (manifest's sha256 updated, so only the data tells) fails
/// restore-test with exit 5, naming the table.
#[test]
fn restore_test_fails_an_edited_postgres_dump() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("cli_edit");
    let out = tempfile::tempdir().unwrap();
    let (path, mut m, _) = backup(&db.url(), out.path(), &[]);
    let mut sql = String::new();
    GzDecoder::new(File::open(&path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    let edited = sql.replacen("\tPENELOPE\tGUINESS\t", "\tPENELOPX\tGUINESS\t", 1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(edited.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    m.compressed_bytes = bytes.len() as u64;
    m.raw_bytes = edited.len() as u64;
    m.sha256 = dbbackup::archive::compress::hex(&sha2::Sha256::digest(&bytes));
    std::fs::write(manifest::path_for(&path), m.to_json_pretty()).unwrap();

    let output = dbbackup()
        .args(["restore-test", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(5), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed: Vec<&str> = json["backups"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "passed")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("public.actor"), "{failed:?}");
}

/// Ctrl-C during a restore test still drops the scratch database: the dump is made to stall
/// (a `pg_sleep` at its start, the manifest's sha256 updated), then the process gets SIGINT.
#[cfg(unix)]
#[test]
fn interrupted_restore_test_drops_its_scratch_database() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("interrupt");
    psql(&db.name, "CREATE TABLE t AS SELECT 1 AS x");
    let out = tempfile::tempdir().unwrap();
    let (path, mut m, _) = backup(&db.url(), out.path(), &[]);
    let mut sql = String::new();
    GzDecoder::new(File::open(&path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    let stalled = format!("SELECT pg_sleep(60);\n{sql}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(stalled.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    m.compressed_bytes = bytes.len() as u64;
    m.raw_bytes = stalled.len() as u64;
    m.sha256 = dbbackup::archive::compress::hex(&sha2::Sha256::digest(&bytes));
    std::fs::write(manifest::path_for(&path), m.to_json_pretty()).unwrap();

    let child = dbbackup()
        .arg("restore-test")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pattern = format!("dbbackup\\_scratch\\_{}\\_%", child.id());
    let count = || {
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{pattern}'"),
        )
    };
    let started = std::time::Instant::now();
    while count() != "1" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no scratch database appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the restore ran to its end"
    );
    assert_eq!(
        count(),
        "0",
        "the scratch database survived Ctrl-C: {stderr}"
    );
}

/// A database with no tables (a new one, or one emptied by a bad migration) is refused like an
/// empty SQLite file: exit 5, nothing written; `--allow-empty` keeps it.
#[test]
fn a_database_without_tables_is_refused_unless_allowed() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("notables");
    psql(
        &db.name,
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    );
    let out = tempfile::tempdir().unwrap();
    let refused = dbbackup()
        .args(["backup", &db.url(), "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("holds no tables"), "{stderr}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    let (_, m, _) = backup(&db.url(), out.path(), &["--allow-empty", "--restore-test"]);
    assert!(m.snapshot.tables.is_empty());
}

/// What `pg_dump` without `--create` leaves out, a restore must still reproduce: the ICU
/// locale (so `ORDER BY` sorts as in the source), per-database settings (`search_path`,
/// `TimeZone`, `DateStyle`: the application depends on them) and the comment. The manifest
/// records them, the scratch database is created with them, the check compares them, and
/// `restore` lands a database that has them.
#[test]
fn database_level_properties_are_recorded_restored_and_compared() {
    if !server_up() {
        return;
    }
    let db = TestDb::reserve("dbprops");
    psql(
        "postgres",
        &format!(
            "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' \
             LOCALE 'C.UTF-8'",
            db.name
        ),
    );
    psql(
        "postgres",
        &format!(
            "ALTER DATABASE {0} SET search_path = app, public; \
             ALTER DATABASE {0} SET \"TimeZone\" = 'Europe/Berlin'; \
             ALTER DATABASE {0} SET datestyle = 'SQL, DMY'; \
             COMMENT ON DATABASE {0} IS 'the shop''s data'",
            db.name
        ),
    );
    psql(
        &db.name,
        "CREATE SCHEMA app; CREATE TABLE app.word (w text); \
         INSERT INTO app.word VALUES ('Äpfel'), ('Zebra'), ('apfel'), ('Ähre')",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &["--restore-test"]);
    let props = &m.snapshot.properties;
    assert_eq!(
        props.get("locale_provider").map(String::as_str),
        Some("icu")
    );
    assert_eq!(props.get("locale").map(String::as_str), Some("de-DE"));
    assert_eq!(
        props.get("setting search_path").map(String::as_str),
        Some("app, public")
    );
    assert_eq!(
        props.get("setting TimeZone").map(String::as_str),
        Some("Europe/Berlin")
    );
    assert_eq!(
        props.get("comment").map(String::as_str),
        Some("the shop's data")
    );

    let restored = TestDb::reserve("dbprops_restored");
    let target = format!("postgres://postgres@{HOST}:{PORT}/{}", restored.name);
    let ran = dbbackup()
        .arg("restore")
        .arg(&path)
        .arg(&target)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{ran:?}");
    // A new session on the restored database sees the source's settings and sort order.
    let order = psql(
        &restored.name,
        "SELECT string_agg(w, ',' ORDER BY w) FROM word",
    );
    assert_eq!(
        order,
        psql(&db.name, "SELECT string_agg(w, ',' ORDER BY w) FROM word")
    );
    assert_eq!(
        order, "Ähre,apfel,Äpfel,Zebra",
        "ICU de-DE order (libc C.UTF-8 puts Zebra first)"
    );
    assert_eq!(psql(&restored.name, "SHOW \"TimeZone\""), "Europe/Berlin");
    assert_eq!(psql(&restored.name, "SHOW datestyle"), "SQL, DMY");
    assert_eq!(
        psql(
            "postgres",
            &format!(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database \
                 WHERE datname = '{}'",
                restored.name
            )
        ),
        "the shop's data"
    );
}

/// `"a.b".c` and `a."b.c"` are two tables: the manifest names each unambiguously (a part with a
/// dot or a quote is quoted), so each is compared with itself, and a change in one fails that
/// one alone.
#[test]
fn tables_whose_qualified_names_would_collide_are_told_apart() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("dots");
    psql(
        &db.name,
        "CREATE SCHEMA \"a.b\"; CREATE TABLE \"a.b\".c (v int); INSERT INTO \"a.b\".c VALUES (1), (2);
         CREATE SCHEMA a; CREATE TABLE a.\"b.c\" (v int); INSERT INTO a.\"b.c\" VALUES (3);
         CREATE TABLE a.\"q\"\"x\" (v int); INSERT INTO a.\"q\"\"x\" VALUES (4);",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, m, _) = backup(&db.url(), out.path(), &["--restore-test"]);
    let names: Vec<&str> = m.snapshot.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a.\"b.c\"", "a.\"q\"\"x\"", "\"a.b\".c"]);
    assert!(
        m.snapshot.objects.iter().any(|o| o.name == "\"a.b\".c")
            && m.snapshot.objects.iter().any(|o| o.name == "a.\"b.c\""),
        "{:?}",
        m.snapshot.objects
    );
    // One value changed in a."b.c": that table fails, "a.b".c passes.
    let mut sql = String::new();
    GzDecoder::new(File::open(&path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    let edited = sql.replacen("\n3\n", "\n30\n", 1);
    assert_ne!(edited, sql);
    let restored = restore_bytes(&mut edited.as_bytes(), &m)
        .unwrap()
        .describe()
        .unwrap();
    let differing = differing_tables(&restored, &m);
    assert_eq!(differing, ["a.\"b.c\""]);
}

/// A source without the `public` schema or `plpgsql` (both dropped, as hardened databases do)
/// is restored into a scratch database without them, not with what `template0` adds: the copy
/// is the source's state, and the restore test passes.
#[test]
fn a_source_without_public_or_plpgsql_restores_as_it_is() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("nopublic");
    psql(
        &db.name,
        "DROP SCHEMA public CASCADE; DROP EXTENSION plpgsql; CREATE SCHEMA app; \
         CREATE TABLE app.t (v int); INSERT INTO app.t VALUES (1), (2)",
    );
    let out = tempfile::tempdir().unwrap();
    let (_, m, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(
        !m.snapshot
            .objects
            .iter()
            .any(|o| o.name == "public" || o.name == "plpgsql"),
        "{:?}",
        m.snapshot.objects
    );
    assert!(stderr.contains("restore OK"), "{stderr}");
}

/// A materialized view's stored rows are not what `pg_dump` carries: it refreshes the view on
/// restore. A stale view (or one over random() or now()) is the source's state and its
/// definition is compared, its rows are not, and the report says so.
#[test]
fn stale_materialized_views_are_compared_by_definition_not_rows() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("matview");
    psql(
        &db.name,
        "CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2); \
         CREATE MATERIALIZED VIEW total AS SELECT sum(v) AS s FROM t; \
         CREATE MATERIALIZED VIEW noise AS SELECT random() AS r; \
         INSERT INTO t VALUES (3)",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, _, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(stderr.contains("restore OK"), "{stderr}");
    let tested = dbbackup()
        .args(["restore-test", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(tested.status.success(), "{tested:?}");
    let json: serde_json::Value = serde_json::from_slice(&tested.stdout).unwrap();
    let checks = json["backups"][0]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"table public.t"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("total") || n.contains("noise")),
        "{names:?}"
    );
    let schema = checks.iter().find(|c| c["name"] == "schema").unwrap();
    let message = schema["message"].as_str().unwrap();
    assert!(
        message.contains("rows not compared for public.noise, public.total"),
        "{message}"
    );
}

/// Comments on objects and large objects are what `pg_dump` carries that no table row holds:
/// the manifest records them, and a copy that lost or changed one fails the schema check.
#[test]
fn comments_and_large_objects_are_recorded_and_compared() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("comments");
    psql(
        &db.name,
        "CREATE TABLE t (v int); COMMENT ON TABLE t IS 'the table'; \
         COMMENT ON COLUMN t.v IS 'a value'; \
         CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; \
         COMMENT ON FUNCTION f() IS 'one'; \
         SELECT lo_from_bytea(424242, 'first object'); SELECT lo_from_bytea(424243, '\\x00ff')",
    );
    let out = tempfile::tempdir().unwrap();
    let (path, m, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(stderr.contains("restore OK"), "{stderr}");
    let props = &m.snapshot.properties;
    assert!(props["comments"].starts_with("3, md5 "), "{props:?}");
    assert!(props["large_objects"].starts_with("2, md5 "), "{props:?}");
    let mut sql = String::new();
    GzDecoder::new(File::open(&path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    for (from, to) in [("'the table'", "'the tablE'"), ("'\\x00ff'", "'\\x00fe'")] {
        let edited = sql.replacen(from, to, 1);
        assert_ne!(edited, sql, "{from} not in the dump");
        let restored = restore_bytes(&mut edited.as_bytes(), &m)
            .unwrap()
            .describe()
            .unwrap();
        assert_ne!(restored.properties, m.snapshot.properties, "{from} → {to}");
    }
}

/// A table hash-partitioned on an enum is restored through its root (`pg_dump` does so: the
/// restored enum's values hash differently), so its rows land in other partitions: it is
/// compared as a whole, and the restore test of a faithful backup passes.
#[test]
fn hash_partitions_on_an_enum_are_compared_as_their_whole_table() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("hashenum");
    psql(
        &db.name,
        "CREATE TYPE color AS ENUM ('red', 'green', 'blue', 'cyan', 'magenta'); \
         CREATE TABLE p (c color, v int) PARTITION BY HASH (c); \
         CREATE TABLE p0 PARTITION OF p FOR VALUES WITH (MODULUS 3, REMAINDER 0); \
         CREATE TABLE p1 PARTITION OF p FOR VALUES WITH (MODULUS 3, REMAINDER 1); \
         CREATE TABLE p2 PARTITION OF p FOR VALUES WITH (MODULUS 3, REMAINDER 2); \
         INSERT INTO p SELECT (enum_range(NULL::color))[1 + i % 5], i FROM generate_series(1, 100) i; \
         CREATE TABLE plain (v int); INSERT INTO plain VALUES (1)",
    );
    let out = tempfile::tempdir().unwrap();
    let (_, m, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(stderr.contains("restore OK"), "{stderr}");
    let names: Vec<(&str, u64)> = m
        .snapshot
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(names, [("public.p", 100), ("public.plain", 1)]);
}

/// Installs a test extension that owns a configuration table (as PostGIS owns
/// `spatial_ref_sys`): its script inserts two rows of its own, and `pg_extension_config_dump`
/// tells `pg_dump` to carry only the rows users add. Written into the server's extension
/// directory (the tests run as root, as CI does); elsewhere the test is skipped with a note.
fn install_config_extension() -> bool {
    let share = psql(
        "postgres",
        "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'",
    );
    let dir = Path::new(&share).join("extension");
    let files = [
        (
            "dbbackup_cfgtest.control",
            "comment = 'dbbackup tests: an extension with a configuration table'\n\
             default_version = '1.0'\nrelocatable = false\nschema = public\n",
        ),
        (
            "dbbackup_cfgtest--1.0.sql",
            "CREATE TABLE cfg_refs (id int PRIMARY KEY, name text NOT NULL, \
               user_added bool NOT NULL DEFAULT true);\n\
             INSERT INTO cfg_refs VALUES (1, 'builtin one', false), (2, 'builtin two', false);\n\
             SELECT pg_catalog.pg_extension_config_dump('cfg_refs', 'WHERE user_added');\n",
        ),
    ];
    for (name, text) in files {
        if let Err(err) = std::fs::write(dir.join(name), text) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must be able to install a test extension into {} ({err}): run as root",
                dir.display()
            );
            eprintln!("skipping: cannot write {} ({err})", dir.display());
            return false;
        }
    }
    true
}

/// The rows of an extension's configuration table are compared as a whole: rows users added
/// travel in the dump and pass; a change to one of the extension's own rows is in no dump
/// (`pg_dump` carries only what the extension's filter selects), so the restored copy differs
/// and the restore test fails instead of passing unseen.
#[test]
fn extension_configuration_rows_are_compared() {
    if !server_up() || !install_config_extension() {
        return;
    }
    let db = TestDb::new("extcfg");
    psql(
        &db.name,
        "CREATE EXTENSION dbbackup_cfgtest; CREATE TABLE t (v int); INSERT INTO t VALUES (1); \
         INSERT INTO cfg_refs VALUES (3, 'mine', true), (4, 'also mine', true)",
    );
    let out = tempfile::tempdir().unwrap();
    let (_, m, stderr) = backup(&db.url(), out.path(), &["--restore-test"]);
    assert!(stderr.contains("restore OK"), "{stderr}");
    // The configuration table's COPY block (the rows users added) is in the dump beside the
    // tables whose checksums come from their COPY blocks, and is passed over there.
    assert_eq!(m.snapshot.checksum_algorithm, "postgres-copy-xxh3-sum-v1");
    let key = "extension data public.cfg_refs";
    let recorded = &m.snapshot.properties[key];
    assert!(recorded.starts_with("4 rows, checksum "), "{recorded}");

    psql(
        &db.name,
        "UPDATE cfg_refs SET name = 'builtin one, edited' WHERE id = 1",
    );
    let failed = dbbackup()
        .args(["backup", "--restore-test", "--out"])
        .arg(out.path())
        .arg(db.url())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains(key), "{stderr}");
}

/// An `xml` value's declaration (`<?xml version="1.0" encoding="UTF-8"?>`) is kept by the
/// server and dropped by its output, which `pg_dump` writes in every format: the backup warns
/// of it, the manifest and the report list it as not compared, with the engine's fixed list
/// (sequence positions, owners, ...), and a declaration with `standalone`, which the output
/// keeps, is no loss and not listed.
#[test]
fn xml_declarations_that_no_dump_carries_are_warned_of_and_listed() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("xmldecl");
    psql(
        &db.name,
        "CREATE TABLE docs (id int, body xml, kept xml); \
         INSERT INTO docs VALUES \
           (1, '<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>', '<?xml version=\"1.0\" standalone=\"yes\"?><k/>'), \
           (2, '<?xml version=\"1.0\"?><b>x</b>', '<k/>'), (3, '<c/>', NULL)",
    );
    let out = tempfile::tempdir().unwrap();
    let junit = out.path().join("report.xml");
    let (path, m, stderr) = backup(
        &db.url(),
        out.path(),
        &["--restore-test", "--junit", junit.to_str().unwrap()],
    );
    let listed: Vec<&String> = (m.snapshot.not_compared.iter())
        .filter(|n| n.contains("XML declaration"))
        .collect();
    assert_eq!(listed.len(), 1, "{:?}", m.snapshot.not_compared);
    assert!(
        listed[0].contains("2 value(s) of public.docs.body"),
        "{listed:?}"
    );
    assert!(
        stderr.contains("2 value(s) of public.docs.body") && stderr.contains("no dump format"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not compared: sequence positions; owners and privileges"),
        "{stderr}"
    );
    assert!(stderr.contains("restore OK"), "{stderr}");
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(
        report.contains("name=\"not_compared\"") && report.contains("public.docs.body"),
        "{report}"
    );
    // The restored documents really lack the declaration: what the list says is so.
    let mut sql = String::new();
    GzDecoder::new(File::open(&path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    assert!(!sql.contains("encoding=\"UTF-8\"?><a/>"), "{sql}");
    assert!(sql.contains("standalone=\"yes\"?><k/>"), "{sql}");
}

/// A role limited to two connections backs up: its own and pg_dump's. The snapshot's checksums
/// are shared with extra connections only when neither the role nor the database has a limit
/// (an extra one left pg_dump refused).
#[test]
fn a_role_limited_to_two_connections_backs_up() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("connlimit");
    psql(
        &db.name,
        // Large enough that the checksums still run when pg_dump connects.
        "CREATE TABLE a(id int PRIMARY KEY, t text);
         INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 300000) i;
         CREATE TABLE b(id int PRIMARY KEY, t text);
         INSERT INTO b SELECT i, md5(i::text) FROM generate_series(1, 300000) i;",
    );
    let role = format!("dbb_connlimit_{}", std::process::id());
    psql(
        "postgres",
        &format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CONNECTION LIMIT 2"),
    );
    psql(
        &db.name,
        &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"),
    );
    let out = tempfile::tempdir().unwrap();
    let ran = dbbackup()
        .args([
            "backup",
            &format!("postgres://{role}@{HOST}:{PORT}/{}", db.name),
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    psql(&db.name, &format!("DROP OWNED BY {role}"));
    psql("postgres", &format!("DROP ROLE {role}"));
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
}
