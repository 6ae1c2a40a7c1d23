//! Soak: backups taken while another process commits as fast as it can, SQLite (WAL and
//! rollback journal) and PostgreSQL (pgbench). Every backup must finish, every restored copy
//! must hold the writer's invariant, and the writer must keep committing. The tests print the
//! writer's throughput with and without backups (`-- --nocapture`; bench/soak.sh collects it).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use rusqlite::Connection;

use crate::support::dbbackup;
use crate::support::pg::{HOST, PORT, TestDb, pgbench, psql, server_up};

const ACCOUNTS: i64 = 100;
const TOTAL: i64 = ACCOUNTS * 1000;
/// Back-to-back backups per soak test: `DBBACKUP_SOAK_BACKUPS`, 5 in the suite (enough to
/// overlap the writer many times, as it commits hundreds of times a second) and 20 in
/// `bench/soak.sh`, which reports the throughput figures.
fn backups() -> usize {
    std::env::var("DBBACKUP_SOAK_BACKUPS").map_or(5, |v| {
        v.parse()
            .expect("DBBACKUP_SOAK_BACKUPS is a number of backups")
    })
}

fn create_bank(path: &Path, journal_mode: &str) {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(mode, journal_mode);
    conn.execute_batch(&format!(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE commits(n INTEGER NOT NULL);
         INSERT INTO commits VALUES (0);
         WITH RECURSIVE a(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM a WHERE i < {ACCOUNTS})
         INSERT INTO accounts SELECT i, 1000 FROM a;"
    ))
    .unwrap();
}

/// A separate `sqlite3` process fed an endless stream of transfers until `stop` is set.
struct Writer {
    child: Child,
    feeder: thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Writer {
    fn start(db: &Path) -> Writer {
        let mut child = StdCommand::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sqlite3 CLI (Debian package sqlite3)");
        let mut stdin = child.stdin.take().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let feeder = thread::spawn(move || {
            writeln!(stdin, ".timeout 20000").unwrap();
            let mut i: i64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let (from, to) = (i % ACCOUNTS + 1, (i * 7 + 3) % ACCOUNTS + 1);
                let amount = i % 13 + 1;
                let txn = format!(
                    "BEGIN IMMEDIATE; UPDATE accounts SET balance = balance - {amount} WHERE id = {from};
                     UPDATE accounts SET balance = balance + {amount} WHERE id = {to};
                     UPDATE commits SET n = n + 1; COMMIT;\n"
                );
                if stdin.write_all(txn.as_bytes()).is_err() {
                    return;
                }
                i += 1;
            }
        });
        Writer {
            child,
            feeder,
            stop,
        }
    }

    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.feeder.join().unwrap();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(status.success() && stderr.is_empty(), "writer: {stderr}");
    }
}

fn commits(db: &Path) -> i64 {
    let conn = Connection::open(db).unwrap();
    // SQLite's own busy handler backs off to 100 ms sleeps, and a writer that commits
    // back to back in rollback-journal mode starves it for seconds: poll as dbbackup does.
    conn.busy_handler(Some(|tries| {
        thread::sleep(Duration::from_micros(100));
        tries < 200_000
    }))
    .unwrap();
    conn.query_row("SELECT n FROM commits", [], |r| r.get(0))
        .unwrap()
}

fn restored_invariant(archive: &Path, dir: &Path) -> (i64, i64) {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(archive).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let restored = dir.join("restored.db");
    let _ = fs::remove_file(&restored);
    fs::write(&restored, raw).unwrap();
    let conn = Connection::open(&restored).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    conn.query_row(
        "SELECT (SELECT sum(balance) FROM accounts), (SELECT n FROM commits)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// `dbbackup backup SOURCE --out OUT --keep 3`, which must succeed within `timeout` (no backup
/// may restart forever); appends its wall time to `durations`, returns the archive.
fn timed_backup(source: &str, out: &Path, timeout: Duration, durations: &mut Vec<f64>) -> PathBuf {
    let started = Instant::now();
    let output = Command::from_std(dbbackup())
        .args(["backup", source, "--json", "--keep", "3", "--out"])
        .arg(out)
        .timeout(timeout)
        .assert()
        .success();
    durations.push(started.elapsed().as_secs_f64());
    let json: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    PathBuf::from(json["path"].as_str().unwrap())
}

/// "slowest 0.36s, median 0.28s" of the backups' wall times.
fn slowest_and_median(durations: &mut [f64]) -> String {
    durations.sort_by(f64::total_cmp);
    format!(
        "slowest {:.2}s, median {:.2}s",
        durations[durations.len() - 1],
        durations[durations.len() / 2]
    )
}

/// Commits per second while `during` runs, counted in the database itself.
fn commit_rate(db: &Path, during: impl FnOnce()) -> f64 {
    let (before, started) = (commits(db), Instant::now());
    during();
    (commits(db) - before) as f64 / started.elapsed().as_secs_f64()
}

/// Twenty backups in a row while a writer commits transfers as fast as it can: each must
/// finish (no backup that restarts forever), each restored copy must hold the invariant, and
/// the writer must keep committing. Prints the writer's throughput with and without backups.
fn backups_hold_the_invariant_under_writes(journal_mode: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bank.db");
    create_bank(&db, journal_mode);
    let out = tmp.path().join("b");
    let writer = Writer::start(&db);
    thread::sleep(Duration::from_millis(200));
    let idle = commit_rate(&db, || thread::sleep(Duration::from_secs(2)));
    let mut seen_commits = Vec::new();
    let mut durations = Vec::new();
    let busy = commit_rate(&db, || {
        for _ in 0..backups() {
            let before = commits(&db);
            let archive = timed_backup(
                db.to_str().unwrap(),
                &out,
                Duration::from_secs(60),
                &mut durations,
            );
            let (sum, n) = restored_invariant(&archive, tmp.path());
            assert_eq!(
                sum, TOTAL,
                "{journal_mode}: the snapshot holds half a transfer"
            );
            assert!(n >= before, "the snapshot is older than the backup");
            seen_commits.push(n);
        }
    });
    writer.finish();
    assert!(
        seen_commits.windows(2).filter(|w| w[1] > w[0]).count() >= backups() / 2,
        "{journal_mode}: the writer stalled while backups ran ({seen_commits:?})"
    );
    assert!(busy > 0.0, "{journal_mode}: no commit while backups ran");
    eprintln!(
        "soak sqlite {journal_mode}: {} backups, {}; writer {idle:.0} commits/s alone, \
         {busy:.0} commits/s while backups ran ({:.0}%)",
        backups(),
        slowest_and_median(&mut durations),
        100.0 * busy / idle
    );
}

#[test]
fn wal_mode_backups_are_consistent_while_a_writer_commits() {
    backups_hold_the_invariant_under_writes("wal");
}

#[test]
fn rollback_journal_backups_are_consistent_while_a_writer_commits() {
    backups_hold_the_invariant_under_writes("delete");
}

/// pgbench's own invariant: every transfer adds the same delta to an account, a teller, a
/// branch and the history, so the four sums agree in any consistent snapshot.
const PGBENCH_SUMS: &str = "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || \
     (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || \
     (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || \
     (SELECT coalesce(sum(delta), 0) FROM pgbench_history)";

/// Transactions per second committed by pgbench while `during` runs (one history row each).
fn pgbench_rate(db: &str, during: impl FnOnce()) -> f64 {
    let history = || -> i64 {
        psql(db, "SELECT count(*) FROM pgbench_history")
            .parse()
            .unwrap()
    };
    let (before, started) = (history(), Instant::now());
    during();
    (history() - before) as f64 / started.elapsed().as_secs_f64()
}

/// Restores `archive` with the stock tools into a fresh database and returns pgbench's sums.
fn restored_pgbench_sums(archive: &Path) -> Vec<String> {
    let scratch = TestDb::new("soak_restore");
    let mut dump = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(archive).unwrap())
        .read_to_end(&mut dump)
        .unwrap();
    let mut restore = StdCommand::new("psql")
        .args([
            "-h",
            HOST,
            "-p",
            PORT,
            "-U",
            "postgres",
            "-d",
            &scratch.name,
        ])
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    restore.stdin.take().unwrap().write_all(&dump).unwrap();
    assert!(restore.wait().unwrap().success(), "psql restore failed");
    let sums = psql(&scratch.name, PGBENCH_SUMS);
    sums.split(' ').map(str::to_string).collect()
}

#[test]
fn postgres_backups_are_consistent_while_pgbench_writes() {
    if !server_up() {
        return;
    }
    let db = TestDb::pgbench("soak", 1);
    let mut bench = pgbench(&["-n", "-T", "600", "-c", "2", &db.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    let idle = pgbench_rate(&db.name, || thread::sleep(Duration::from_secs(3)));
    let out = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    let mut durations = Vec::new();
    let busy = pgbench_rate(&db.name, || {
        for _ in 0..backups() {
            let archive = timed_backup(
                &db.url(),
                out.path(),
                Duration::from_secs(120),
                &mut durations,
            );
            // Kept past rotation for the checks below.
            fs::copy(
                &archive,
                kept.path().join(format!("{}.sql.gz", durations.len())),
            )
            .unwrap();
        }
    });
    assert!(bench.try_wait().unwrap().is_none(), "pgbench stopped early");
    bench.kill().unwrap();
    bench.wait().unwrap();
    assert!(busy > 0.0, "pgbench committed nothing while backups ran");

    for n in 1..=backups() {
        let sums = restored_pgbench_sums(&kept.path().join(format!("{n}.sql.gz")));
        assert!(
            sums.iter().all(|s| s == &sums[0]),
            "backup {n}: pgbench's sums disagree in the restored copy: {sums:?}"
        );
    }
    // The newest backups, as kept by rotation, also pass the full restore test.
    Command::from_std(dbbackup())
        .args(["restore-test", "--all"])
        .arg(out.path())
        .assert()
        .success();
    eprintln!(
        "soak postgres pgbench: {} backups, {}; pgbench {idle:.0} tps alone, {busy:.0} \
         tps while backups ran ({:.0}%)",
        backups(),
        slowest_and_median(&mut durations),
        100.0 * busy / idle
    );
}
