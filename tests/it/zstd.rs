//! `--compression zstd`: backups of every kind written as zstd frames (`.zst`, `.zst.age`),
//! read back by content (a misnamed file too), restored by the stock `zstd -d`, rotated in one
//! series with gzip backups of the same name, and refused or failed with the documented exit
//! codes when the level or the archive is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use age::secrecy::ExposeSecret;
use rusqlite::Connection;

use crate::support::pg::{TestDb, psql, server_up};
use crate::support::restore::{os, restore_test};
use crate::support::{backup_json, data_copy, dbbackup};

const USAGE: i32 = 2;
const CHECK_FAILED: i32 = 5;

/// `zstd ARGS`, the stock tool a user restores with; it must be installed (scripts/ci/prepare.sh).
fn zstd(args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new("zstd")
        .args(args)
        .output()
        .expect("the zstd command is installed (scripts/ci/prepare.sh)");
    assert!(
        out.status.success(),
        "zstd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A zstd backup of a copy of Chinook in `dir/b`: the archive.
fn chinook_zstd(dir: &Path, extra: &[&str]) -> PathBuf {
    let db = data_copy("chinook.sqlite", dir);
    let mut args = vec!["--compression", "zstd"];
    args.extend_from_slice(extra);
    backup_json(db.to_str().unwrap(), &dir.join("b"), &args).0
}

#[test]
fn sqlite_backup_is_a_zst_that_restore_test_passes_and_zstd_d_restores_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let (archive, manifest, _) = backup_json(
        db.to_str().unwrap(),
        &dir.path().join("b"),
        &["--compression", "zstd", "--restore-test"],
    );
    assert!(file_name(&archive).ends_with(".sqlite.zst"), "{archive:?}");
    let recorded = manifest
        .compression
        .expect("the manifest records compression");
    assert_eq!(
        (recorded.codec.to_string(), recorded.level),
        ("zstd".into(), 3)
    );

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.case("archive").result, "passed");
    let inspected = dbbackup().arg("inspect").arg(&archive).output().unwrap();
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(text.contains("codec     zstd level 3"), "{text}");

    // The stock tool, as the README tells a user to restore without dbbackup.
    let by_zstd = dir.path().join("by-zstd.sqlite");
    zstd(&[
        "-d".as_ref(),
        "-q".as_ref(),
        os(&archive),
        "-o".as_ref(),
        os(&by_zstd),
    ]);
    let check: String = Connection::open(&by_zstd)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    let by_restore = dir.path().join("by-restore.sqlite");
    let out = dbbackup()
        .arg("restore")
        .args([&archive, &by_restore])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read(&by_zstd).unwrap() == std::fs::read(&by_restore).unwrap(),
        "zstd -d and dbbackup restore give the same database"
    );
}

#[test]
fn zstd_levels_out_of_range_are_usage_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let out_dir = dir.path().join("b");
    for (codec, level, said) in [
        ("zstd", "20", "--level 20 is out of range for zstd (1-19)"),
        ("zstd", "0", "--level 0 is out of range for zstd (1-19)"),
        ("gzip", "15", "--level 15 is out of range for gzip (1-9)"),
    ] {
        let out = dbbackup()
            .args(["backup", db.to_str().unwrap(), "--out"])
            .arg(&out_dir)
            .args(["--compression", codec, "--level", level])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(USAGE), "{}", stderr(&out));
        assert!(stderr(&out).contains(said), "{}", stderr(&out));
    }
    assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().next().is_none());
    // zstd's own range is zstd's, not gzip's.
    let archive = chinook_zstd(dir.path(), &["--level", "19"]);
    let manifest = crate::support::restore::read_manifest(&archive);
    assert_eq!(manifest["compression"]["level"], 19);
}

#[test]
fn a_zstd_backup_named_gz_is_read_by_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_zstd(dir.path(), &[]);
    let renamed = PathBuf::from(archive.to_string_lossy().replace(".zst", ".gz"));
    std::fs::rename(&archive, &renamed).unwrap();
    std::fs::rename(
        crate::support::restore::manifest_path(&archive),
        crate::support::restore::manifest_path(&renamed),
    )
    .unwrap();

    let run = restore_test(&[os(&renamed)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("named as gzip but holds zstd"),
        "a warning says so: {}",
        run.stderr
    );
}

#[test]
fn a_damaged_zstd_archive_fails_as_a_damaged_gzip_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_zstd(dir.path(), &[]);
    let bytes = std::fs::read(&archive).unwrap();

    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let failed: Vec<&str> = run.failed().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["archive"], "{:#?}", run.cases);
    assert!(
        run.case("archive")
            .text
            .contains("zstd stream: expected complete"),
        "{}",
        run.case("archive").text
    );

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&archive, &flipped).unwrap();
    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    assert_eq!(run.case("archive").result, "failed");

    // Neither gzip nor zstd: nothing to check.
    let mut foreign = bytes;
    foreign[..4].copy_from_slice(b"PK\x03\x04");
    std::fs::write(&archive, &foreign).unwrap();
    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains("neither a gzip nor a zstd file"),
        "{}",
        run.stderr
    );
}

#[test]
fn encrypted_zstd_is_a_zst_age_that_restore_tests_with_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let id = age::x25519::Identity::generate();
    let secret = id.to_string().expose_secret().to_string();
    let recipient = id.to_public().to_string();
    let db = data_copy("chinook.sqlite", dir.path());
    // Not support::backup_json: the manifest is sealed, it does not load without the key.
    let out = dbbackup()
        .args([
            "backup",
            db.to_str().unwrap(),
            "--json",
            "--compression",
            "zstd",
        ])
        .args(["--encrypt-to", &recipient, "--out"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = PathBuf::from(json["path"].as_str().unwrap());
    assert!(
        file_name(&archive).ends_with(".sqlite.zst.age"),
        "{archive:?}"
    );

    let out = dbbackup()
        .args(["restore-test", archive.to_str().unwrap()])
        .env("DBBACKUP_IDENTITY", &secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("restore OK"), "{}", stderr(&out));
}

/// The archives in `dir` (its files other than manifests), by name.
fn archives_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".manifest.json"))
        .collect();
    names.sort();
    names
}

#[test]
fn rotation_counts_zstd_and_gzip_backups_of_one_name_together() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let out = dir.path().join("b");
    let mut made = Vec::new();
    for codec in ["gzip", "zstd", "gzip", "zstd"] {
        let (archive, _, _) = backup_json(
            db.to_str().unwrap(),
            &out,
            &["--compression", codec, "--keep", "3"],
        );
        made.push(file_name(&archive));
    }
    // Backups made within one second are told apart by `-2`, `-3`, which sort before `.`:
    // compare as sets, not in the order of their names.
    let mut kept = made[1..].to_vec();
    kept.sort();
    let left = archives_in(&out);
    assert_eq!(left, kept, "the oldest (a gzip one) went: {made:?}");

    let pruned = dbbackup()
        .args(["prune", "--name", "chinook", "--keep", "1"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    let left = archives_in(&out);
    assert_eq!(left, [made[3].clone()], "the newest, a zstd one, stays");
    assert!(made[3].ends_with(".sqlite.zst"));

    // A directory means its newest backup, whatever its codec.
    let run = restore_test(&[os(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn postgres_sql_and_custom_backups_with_zstd_restore_test_and_restore_with_stock_tools() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("zstd");
    psql(
        &db.name,
        "CREATE TABLE item(id int PRIMARY KEY, name text);
         INSERT INTO item SELECT i, 'item ' || i FROM generate_series(1, 500) i;",
    );
    let out = tempfile::tempdir().unwrap();
    for (format, ext) in [("sql", ".sql.zst"), ("custom", ".dump.zst")] {
        let (archive, manifest, log) = backup_json(
            &db.url(),
            out.path(),
            &[
                "--format",
                format,
                "--compression",
                "zstd",
                "--restore-test",
            ],
        );
        assert!(file_name(&archive).ends_with(ext), "{archive:?}");
        assert!(log.contains("restore OK"), "{log}");
        assert_eq!(manifest.compression.unwrap().level, 3);
        let raw = zstd(&["-dc".as_ref(), os(&archive)]).stdout;
        assert_eq!(raw.len() as u64, manifest.raw_bytes);
        if format == "custom" {
            // pg_restore reads what zstd -d gives back.
            let dump = out.path().join("restored.dump");
            std::fs::write(&dump, &raw).unwrap();
            let listed = Command::new("pg_restore")
                .arg("-l")
                .arg(&dump)
                .output()
                .unwrap();
            assert!(listed.status.success(), "{}", stderr(&listed));
            assert!(String::from_utf8_lossy(&listed.stdout).contains("TABLE public item"));
        } else {
            assert!(String::from_utf8_lossy(&raw).contains("CREATE TABLE public.item"));
        }
    }
}

#[test]
fn gzip_stays_the_default_and_old_manifests_without_compression_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let (archive, manifest, _) = backup_json(db.to_str().unwrap(), &dir.path().join("b"), &[]);
    assert!(file_name(&archive).ends_with(".sqlite.gz"));
    assert_eq!(manifest.compression.unwrap().level, 6);
    // A manifest written before zstd was offered has no `compression`.
    crate::support::restore::edit_manifest(&archive, |m| {
        m.as_object_mut().unwrap().remove("compression");
    });
    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
