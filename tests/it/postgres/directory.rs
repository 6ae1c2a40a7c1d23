//! `--format directory --jobs N`: `pg_dump -Fd -j N` in one snapshot, its workers gzipping
//! each file, stored as one plain tar, restore-tested with `pg_restore -j N`. One backup of
//! Sakila serves every check, and one encrypted backup of it the encrypted variant.

use std::io::Read;
use std::process::Command;

use age::secrecy::ExposeSecret;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::Write;

use super::copysum::{latin1_db, tricky_db};
use super::{RESTORES, differing_tables, restore_bytes};
use crate::support::pg::{TestDb, psql, server_up};
use crate::support::{backup_json as backup, backup_json_env, dbbackup, write_executable};
use dbbackup::archive::Format;
use dbbackup::archive::codec::Codec;
use dbbackup::archive::manifest::Manifest;
use dbbackup::engine::Scratch;

const COPY_ALGORITHM: &str = "postgres-copy-xxh3-sum-v1";

#[test]
fn directory_format_dumps_and_restores_in_parallel() {
    if !server_up() {
        return;
    }
    let db = TestDb::sakila("pgdir");
    let out = tempfile::tempdir().unwrap();
    let (path, m, log) = backup(
        &db.url(),
        out.path(),
        &[
            "--format",
            "directory",
            "--jobs",
            "2",
            "--restore-test",
            "-v",
        ],
    );
    // The restore test passed (backup_json asserts success), and both sides ran in parallel.
    assert_eq!(m.format, Format::Directory);
    // The counts and checksums came from the data files, as the tampering below is checked
    // against.
    assert_eq!(m.snapshot.checksum_algorithm, COPY_ALGORITHM);
    // pg_dump compressed the files; the tar is stored as it is and measured as stored.
    assert!(path.to_string_lossy().ends_with(".tar"), "{path:?}");
    let stored = std::fs::read(&path).unwrap();
    let compression = m.compression.unwrap();
    assert_eq!(compression.codec, Codec::None);
    assert_eq!(m.raw_bytes, stored.len() as u64);
    assert_eq!(m.compressed_bytes, stored.len() as u64);
    assert!(
        log.contains("running pg_dump --format --compress --jobs --file --snapshot"),
        "{log}"
    );
    assert!(
        log.contains("running pg_restore --exit-on-error --no-owner --no-password --jobs"),
        "{log}"
    );

    // The layout, as a user's `tar -tf` lists it: one top directory, toc.dat first, then
    // pg_dump's flat data files, each gzipped by pg_dump.
    let listed = Command::new("tar").arg("-tf").arg(&path).output().unwrap();
    assert!(listed.status.success());
    let listed = String::from_utf8(listed.stdout).unwrap();
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(names[..2], ["dump/", "dump/toc.dat"], "{listed}");
    let data_files = &names[2..];
    assert!(data_files.len() >= m.snapshot.tables.len() / 2, "{listed}");
    for name in data_files {
        let file = name.strip_prefix("dump/").unwrap();
        let number = file
            .strip_suffix(".dat.gz")
            .unwrap_or_else(|| panic!("{name}"));
        assert!(number.bytes().all(|b| b.is_ascii_digit()), "{name}");
    }

    // One value changed in one table's file: same counts, that table's checksum differs.
    let edited = retar_replacing(&path, "\tPENELOPE\tGUINESS\t", "\tPENELOPX\tGUINESS\t");
    {
        let _restoring = RESTORES.read().unwrap();
        let restored = restore_bytes(&mut &edited[..], &m)
            .unwrap()
            .describe()
            .unwrap();
        assert_eq!(differing_tables(&restored, &m), ["public.actor"]);
        assert_eq!(restored.total_rows(), m.snapshot.total_rows());
    }

    // `restore` into a new database on the same server.
    let target = TestDb::reserve("pgdir_restored");
    let restored = dbbackup()
        .arg("restore")
        .arg(&path)
        .arg(target.url())
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let count = "SELECT count(*) FROM actor";
    assert_eq!(psql(&target.name, count), psql(&db.name, count));

    let inspected = dbbackup().arg("inspect").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&inspected.stdout);
    assert!(inspected.status.success(), "{said}");
    assert!(
        said.contains("none (a tar of pg_dump's gzip files)"),
        "{said}"
    );

    // Encrypted: the tar inside age, `.tar.age`, restore-tested with the identity. With
    // --keep 1 in the same directory, rotation counts the plain `.tar` in the series and
    // removes it.
    let id = age::x25519::Identity::generate();
    let sealed = dbbackup()
        .args(["backup", &db.url(), "--json", "--format", "directory"])
        .args(["--encrypt-to", &id.to_public().to_string(), "--keep", "1"])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&sealed.stderr);
    assert!(sealed.status.success(), "{said}");
    let json: serde_json::Value = serde_json::from_slice(&sealed.stdout).unwrap();
    let archive = json["path"].as_str().unwrap();
    assert!(archive.ends_with(".tar.age"), "{archive}");
    assert!(!path.exists(), "rotated away: {path:?}");
    let tested = dbbackup()
        .args(["restore-test", archive])
        .env("DBBACKUP_IDENTITY", id.to_string().expose_secret())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&tested.stderr);
    assert!(tested.status.success(), "{said}");
    assert!(said.contains("restore OK"), "{said}");
}

/// The archive at `path` (a tar of gzipped files) rebuilt with the first `from` in a member
/// replaced by `to`, the member gzipped again.
fn retar_replacing(path: &std::path::Path, from: &str, to: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut rebuilt = tar::Builder::new(Vec::new());
    let mut replaced = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if !replaced && header.path().unwrap().to_string_lossy().ends_with(".gz") {
            let mut plain = String::new();
            GzDecoder::new(&data[..])
                .read_to_string(&mut plain)
                .unwrap();
            if plain.contains(from) {
                let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(plain.replacen(from, to, 1).as_bytes())
                    .unwrap();
                data = gz.finish().unwrap();
                replaced = true;
            }
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        rebuilt.append(&header, &data[..]).unwrap();
    }
    assert!(replaced, "{from:?} is in no member");
    rebuilt.into_inner().unwrap()
}

/// `--jobs` only means something for the directory format, and 0 workers dump nothing: both
/// are one-line usage errors before anything connects (the port here is closed).
#[test]
fn jobs_without_the_directory_format_or_zero_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let url = "postgres://nobody@127.0.0.1:1/none";
    for (args, says) in [
        (vec!["--jobs", "2"], "--jobs needs --format directory"),
        (
            vec!["--format", "custom", "--jobs", "2"],
            "not --format custom",
        ),
        (vec!["--format", "directory", "--jobs", "0"], "--jobs 0"),
    ] {
        let ran = dbbackup()
            .args(["backup", url, "--out"])
            .arg(out.path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let ran = dbbackup()
        .args(["restore-test", "--jobs", "0"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("--jobs 0"));
}

/// Each table's name, rows and checksum, in the manifest's order.
fn table_sums(m: &Manifest) -> Vec<(String, u64, String)> {
    (m.snapshot.tables.iter())
        .map(|t| (t.name.clone(), t.rows, t.checksum.clone()))
        .collect()
}

/// The directory format's counts and checksums come from pg_dump's data files as they are
/// written, with the plain format's algorithm and values (the plain format hashes the same
/// COPY text from its stream): on a database of traps for row text (generated columns, a row
/// over 1 MiB, names that need quoting, money, the database's own TimeZone), gzipped by
/// pg_dump and uncompressed under zstd, and the restore test passes on both.
#[test]
fn directory_checksums_are_the_plain_formats() {
    if !server_up() {
        return;
    }
    let db = tricky_db("pgdir_sums");
    let out = tempfile::tempdir().unwrap();
    let (_, plain, _) = backup(&db.url(), out.path(), &[]);
    assert_eq!(plain.snapshot.checksum_algorithm, COPY_ALGORITHM);
    for extra in [&[][..], &["--compression", "zstd"][..]] {
        let mut args = vec!["--format", "directory", "--jobs", "2", "--restore-test"];
        args.extend_from_slice(extra);
        let (_, m, log) = backup(&db.url(), out.path(), &args);
        assert!(log.contains("restore OK"), "{extra:?}: {log}");
        assert_eq!(m.snapshot.checksum_algorithm, COPY_ALGORITHM, "{extra:?}");
        assert_eq!(table_sums(&m), table_sums(&plain), "{extra:?}");
        assert_eq!(
            m.snapshot.properties, plain.snapshot.properties,
            "{extra:?}"
        );
    }

    // pg_dump writes the files in the database's encoding: not UTF8, the server sums the rows
    // as before, and the restore test compares those.
    let latin = latin1_db("pgdir_latin1");
    let (_, m, log) = backup(
        &latin.url(),
        out.path(),
        &["--format", "directory", "--jobs", "2", "--restore-test"],
    );
    assert_eq!(
        m.snapshot.checksum_algorithm,
        "postgres-hashtextextended-sum-v1"
    );
    assert!(log.contains("restore OK"), "{log}");
}

/// Many tables (more than the follower keeps open at once), some empty, one large enough to
/// be read while pg_dump still writes it, dumped by two workers: the same sums as the plain
/// format, and the restore test with `pg_restore -j 2` passes.
#[test]
fn many_tables_with_two_workers_sum_as_the_plain_format() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("pgdir_many");
    psql(
        &db.name,
        "DO $$ BEGIN FOR i IN 1..150 LOOP \
           EXECUTE format('CREATE TABLE t%s (id int, v text)', i); \
           EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, %s) g', \
                          i, (i % 7) * 13); \
         END LOOP; END $$; \
         CREATE TABLE large (id int, v text); \
         INSERT INTO large SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;",
    );
    let out = tempfile::tempdir().unwrap();
    let (_, plain, _) = backup(&db.url(), out.path(), &[]);
    let (_, m, log) = backup(
        &db.url(),
        out.path(),
        &["--format", "directory", "--jobs", "2", "--restore-test"],
    );
    assert!(log.contains("restore OK"), "{log}");
    assert_eq!(m.snapshot.checksum_algorithm, COPY_ALGORITHM);
    assert_eq!(m.snapshot.tables.len(), 151);
    assert_eq!(table_sums(&m), table_sums(&plain));
    let large = m.snapshot.tables.iter().find(|t| t.name == "public.large");
    assert_eq!(large.unwrap().rows, 300000);
}

/// A data file that pg_dump's TOC lists but the directory lacks, or one the TOC does not
/// list, fails the backup loudly, naming the file (a `pg_dump` that runs the real one into a
/// directory of its own, changes it, and moves it into place whole).
#[test]
fn a_missing_or_unknown_data_file_fails_the_backup() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("pgdir_files");
    psql(
        &db.name,
        "CREATE TABLE a (v int); INSERT INTO a VALUES (1); CREATE TABLE b (v int);",
    );
    for (change, says) in [
        (
            "rm \"$tmp\"/$(ls \"$tmp\" | grep -E '^[0-9]+[.]dat' | head -1)",
            "pg_dump wrote no data file",
        ),
        (
            "printf '\\\\.\\n\\n\\n' | gzip > \"$tmp\"/99999.dat.gz",
            "pg_dump wrote the data file 99999.dat, which its toc.dat does not list",
        ),
    ] {
        let bin = tempfile::tempdir().unwrap();
        write_executable(
            &bin.path().join("pg_dump"),
            &format!(
                "#!/bin/sh\n\
                 dir=; prev=; for a in \"$@\"; do [ \"$prev\" = --file ] && dir=$a; prev=$a; done\n\
                 [ -z \"$dir\" ] && exec pg_dump \"$@\"\n\
                 tmp=$dir.tmp\n\
                 for a in \"$@\"; do [ \"$a\" = \"$dir\" ] && a=$tmp; set -- \"$@\" \"$a\"; shift; done\n\
                 pg_dump \"$@\" || exit $?\n\
                 {change}\n\
                 mv \"$tmp\" \"$dir\"\n"
            ),
        );
        let out = tempfile::tempdir().unwrap();
        let ran = dbbackup()
            .args(["backup", &db.url(), "--format", "directory", "--jobs", "2"])
            .arg("--out")
            .arg(out.path())
            .env("DBBACKUP_PG_BIN", bin.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert!(!ran.status.success(), "{change}: {stderr}");
        assert!(stderr.contains(says), "{change}: {stderr}");
        assert!(
            stderr.contains("cannot take the table checksums"),
            "{stderr}"
        );
    }
}

/// A `pg_dump` newer than the releases whose `toc.dat` dbbackup reads: its directory dump's
/// rows are summed by the server, so the backup succeeds rather than failing after the dump on
/// an archive version it cannot map to tables (the real pg_dump behind one that calls itself
/// 19).
#[test]
fn a_pg_dump_newer_than_the_toc_reader_knows_has_the_server_sum_the_rows() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("pgdir_newer");
    psql(
        &db.name,
        "CREATE TABLE a (v int); INSERT INTO a VALUES (1), (2);",
    );
    let bin = tempfile::tempdir().unwrap();
    write_executable(
        &bin.path().join("pg_dump"),
        "#!/bin/sh\n\
         [ \"$1\" = --version ] && { echo 'pg_dump (PostgreSQL) 19.0'; exit 0; }\n\
         exec pg_dump \"$@\"\n",
    );
    let out = tempfile::tempdir().unwrap();
    let (_, m, _) = backup_json_env(
        &db.url(),
        out.path(),
        &["--format", "directory", "--jobs", "2"],
        &[("DBBACKUP_PG_BIN", bin.path())],
    );
    assert!(
        m.engine
            .dump_tool
            .as_deref()
            .is_some_and(|t| t.contains("19.0")),
        "{:?}",
        m.engine
    );
    assert_eq!(
        m.snapshot.checksum_algorithm,
        "postgres-hashtextextended-sum-v1"
    );
    assert_eq!(m.snapshot.tables[0].rows, 2);
}
