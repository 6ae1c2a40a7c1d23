//! Scale: a large SQLite database backs up (uploading its backup to a local S3 server, moto's,
//! where one is installed; always under `CI=true`) and restore-tests within a fixed memory
//! bound, and the cost per MB stays flat as the database grows.
//!
//! The size is `DBBACKUP_SCALE_MB`: 2000 under `CI=true` (the 2 GB), 256 otherwise so
//! that a laptop run stays short. It needs about 3.3x the size in free disk space under TMPDIR
//! (database, snapshot, archive, restored copy) and says so instead of filling the disk.
//! `bench/scale.sh` runs it at several sizes on the release build and prints the curve.
//!
//! Peak memory is each command's maximum resident set size as the kernel accounts it, measured
//! by GNU time (`time -f %M`, Debian package `time`), which starts the command from its own
//! small process. A child of this test process would not do: when a process execs, Linux
//! keeps the peak of the memory it replaces in the process's `ru_maxrss`, and the memory
//! replaced here would be this test process's, which runs the other tests too.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rusqlite::Connection;

use crate::support::{dbbackup, run_under};

/// The bound the issue sets for backup and restore-test, whatever the database size.
const PEAK_RSS_LIMIT_MIB: f64 = 64.0;

fn size_mb() -> u64 {
    match std::env::var("DBBACKUP_SCALE_MB") {
        Ok(v) => v.parse().expect("DBBACKUP_SCALE_MB is a number of MB"),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => 2000,
        Err(_) => 256,
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a writable statvfs.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

/// An application-shaped database of about `mb` MB: an integer key, short and long text that
/// compresses like real text, reals, a blob, and two secondary indexes for the integrity
/// check to cross-check.
fn generate(path: &Path, mb: u64) {
    let rows = mb * 1_000_000 / 167;
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, account INTEGER NOT NULL,
           amount REAL NOT NULL, note TEXT, digest BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO events SELECT i,
           (CASE i % 5 WHEN 0 THEN 'deposit' WHEN 1 THEN 'withdrawal' WHEN 2 THEN 'transfer'
              WHEN 3 THEN 'fee' ELSE 'refund' END),
           (i * 7919) % 100003,
           ((i * 2654435761) % 1000000) / 100.0,
           'event ' || i || ': ' || substr('lorem ipsum dolor sit amet consectetur adipiscing \
            elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad \
            minim veniam quis nostrud exercitation ullamco laboris', 1 + i % 60, 30 + i % 70),
           randomblob(16)
         FROM n;
         CREATE INDEX events_account ON events(account);
         CREATE INDEX events_kind_amount ON events(kind, amount);"
    ))
    .unwrap();
}

/// Runs `dbbackup ARGS` under GNU time, requires success, and returns its wall time in seconds
/// and its peak resident set in MiB.
fn run(args: &[&std::ffi::OsStr], env: &[(&str, String)]) -> (f64, f64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut time = Command::new("time");
    time.args(["-f", "%M", "-o"]).arg(report.path());
    let mut cmd = dbbackup();
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    let started = Instant::now();
    let out = run_under(time, &cmd)
        .output()
        .expect("GNU time (Debian package time)");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "dbbackup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(report.path()).unwrap();
    let kib: f64 = report
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("GNU time's report: {report:?}"));
    (elapsed, kib / 1024.0)
}

#[test]
fn large_database_backs_up_and_restore_tests_within_64_mib() {
    let mb = size_mb();
    let tmp = tempfile::tempdir().unwrap();
    let needed = mb * 1_000_000 * 33 / 10;
    let free = free_bytes(tmp.path());
    assert!(
        free > needed,
        "the scale test needs {} MB free under {} and has {} MB: free space, point TMPDIR \
         elsewhere, or set DBBACKUP_SCALE_MB lower",
        needed / 1_000_000,
        tmp.path().display(),
        free / 1_000_000
    );
    let db = tmp.path().join("big.db");
    generate(&db, mb);
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    let out = tmp.path().join("backups");

    // The upload streams the archive in parts, a bounded number in memory (issue 18: a 2 GB
    // backup uploads within the same bound).
    let moto = crate::support::s3::Moto::start();
    let os = std::ffi::OsStr::new;
    let mut backup_args = vec![os("backup"), db.as_os_str(), os("--out"), out.as_os_str()];
    let env: Vec<(&str, String)> = match &moto {
        Some(moto) => {
            moto.bucket("scale");
            backup_args.extend([os("--to"), os("s3://scale/big")]);
            moto.env().to_vec()
        }
        None => Vec::new(),
    };
    let (backup_s, backup_peak) = run(&backup_args, &env);
    if let Some(moto) = &moto {
        let archive = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".sqlite.gz"))
            .unwrap();
        let mut keys = moto.keys("scale");
        keys.sort();
        assert_eq!(
            keys,
            [
                format!("big/{archive}"),
                format!("big/{archive}.manifest.json")
            ]
        );
        let bytes = std::fs::metadata(out.join(&archive)).unwrap().len();
        eprintln!(
            "scale: uploaded {archive}, {:.0} MiB",
            bytes as f64 / 1_048_576.0
        );
    }
    let (restore_s, restore_peak) = run(&[os("restore-test"), out.as_os_str()], &[]);
    // The maximum over both commands, as the figures have always been given.
    let overall_peak = backup_peak.max(restore_peak);

    let db_mb = db_bytes as f64 / 1_048_576.0;
    eprintln!(
        "scale: {db_mb:.0} MiB database: backup {backup_s:.2} s ({:.2} s/GiB), peak RSS \
         {backup_peak:.1} MiB; restore-test {restore_s:.2} s ({:.2} s/GiB), peak RSS of both \
         {overall_peak:.1} MiB",
        backup_s * 1024.0 / db_mb,
        restore_s * 1024.0 / db_mb,
    );
    assert!(
        backup_peak < PEAK_RSS_LIMIT_MIB,
        "backup of a {db_mb:.0} MiB database peaked at {backup_peak:.1} MiB"
    );
    assert!(
        overall_peak < PEAK_RSS_LIMIT_MIB,
        "restore-test of a {db_mb:.0} MiB database peaked at {overall_peak:.1} MiB"
    );
}
