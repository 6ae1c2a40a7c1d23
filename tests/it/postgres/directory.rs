//! `--format directory --jobs N`: `pg_dump -Fd -j N` in one snapshot, stored as one tar,
//! restore-tested with `pg_restore -j N`. One backup of Sakila serves every check.

use std::io::Read;
use std::process::Command;

use flate2::read::GzDecoder;

use super::{RESTORES, differing_tables, restore_bytes};
use crate::support::pg::{TestDb, psql, server_up};
use crate::support::{backup_json as backup, dbbackup};
use dbbackup::archive::Format;
use dbbackup::engine::Scratch;

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
    assert!(path.to_string_lossy().ends_with(".tar.gz"), "{path:?}");
    assert!(
        log.contains("running pg_dump --format --compress --jobs --file --snapshot"),
        "{log}"
    );
    assert!(
        log.contains("running pg_restore --exit-on-error --no-owner --no-password --jobs"),
        "{log}"
    );

    // The layout: one top directory, toc.dat first, then pg_dump's flat data files.
    let listed = Command::new("tar").arg("-tzf").arg(&path).output().unwrap();
    assert!(listed.status.success());
    let listed = String::from_utf8(listed.stdout).unwrap();
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(names[..2], ["dump/", "dump/toc.dat"], "{listed}");
    let data_files = &names[2..];
    assert!(data_files.len() >= m.snapshot.tables.len() / 2, "{listed}");
    for name in data_files {
        let file = name.strip_prefix("dump/").unwrap();
        let number = file
            .strip_suffix(".dat")
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
}

/// The archive at `path` (a gzipped tar) rebuilt with the first `from` in a member replaced
/// by `to`, uncompressed.
fn retar_replacing(path: &std::path::Path, from: &str, to: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(GzDecoder::new(std::fs::File::open(path).unwrap()));
    let mut rebuilt = tar::Builder::new(Vec::new());
    let mut replaced = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let text = String::from_utf8_lossy(&data);
        if !replaced && text.contains(from) {
            data = text.replacen(from, to, 1).into_bytes();
            replaced = true;
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
