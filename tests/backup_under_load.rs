//! Backups taken while another process commits transfers as fast as it can: every backup must
//! finish, and every restored copy must hold the invariant (the sum of balances never changes).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use rusqlite::Connection;

const ACCOUNTS: i64 = 100;
const TOTAL: i64 = ACCOUNTS * 1000;

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
    conn.busy_timeout(Duration::from_secs(20)).unwrap();
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

fn backups_hold_the_invariant_under_writes(journal_mode: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bank.db");
    create_bank(&db, journal_mode);
    let out = tmp.path().join("b");
    let writer = Writer::start(&db);
    thread::sleep(Duration::from_millis(200));
    let mut seen_commits = Vec::new();
    for _ in 0..5 {
        let before = commits(&db);
        let output = Command::cargo_bin("dbbackup")
            .unwrap()
            .args([
                "backup",
                db.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--keep", "2", "--json"])
            .timeout(Duration::from_secs(60))
            .assert()
            .success();
        let json: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
        let (sum, n) = restored_invariant(Path::new(json["path"].as_str().unwrap()), tmp.path());
        assert_eq!(
            sum, TOTAL,
            "{journal_mode}: the snapshot holds half a transfer"
        );
        assert!(n >= before, "the snapshot is older than the backup");
        seen_commits.push(n);
    }
    let after = commits(&db);
    writer.finish();
    assert!(
        after > seen_commits[0],
        "{journal_mode}: the writer stopped committing during backups ({seen_commits:?}, {after})"
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
