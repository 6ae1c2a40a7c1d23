//! Ctrl-C and SIGTERM (CI cancelling a job) in the middle of a restore test: every scratch
//! resource is removed on the way out, whichever command made it, and the exit code is 130.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::dbbackup;
use crate::support::pg::{self, TestDb};

/// This process tree's scratch databases: those named for `pid`.
fn scratch_databases(pid: u32) -> Vec<String> {
    let listed = pg::psql(
        "postgres",
        &format!(
            "SELECT datname FROM pg_database WHERE datname LIKE 'dbbackup\\_scratch\\_{pid}\\_%'"
        ),
    );
    listed.lines().map(str::to_string).collect()
}

/// Everything in `dir` (recursively), for an assertion message.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        found.push(path.display().to_string());
        if path.is_dir() {
            found.extend(leftovers(&path));
        }
    }
    found
}

/// `backup --restore-test` of a PostgreSQL database, signalled once its restore test has made
/// its scratch database: the scratch database, the restore test's directory in TMPDIR and the
/// backup's own temporary directory in DIR are all gone, and the exit code is 130. DIR holds
/// nothing but the backup (committed before its restore test began) and its manifest.
/// With `whole_group`, the signal goes to dbbackup's whole process group, as a terminal's
/// Ctrl-C does, and reaches every child that shares the group.
fn interrupt_the_restore_test_of_a_backup(signal: libc::c_int, whole_group: bool) {
    if !pg::server_up() {
        return;
    }
    // Large enough that psql is still restoring when the signal lands.
    let db = TestDb::pgbench(&format!("interrupt{signal}"), 5);
    let tmp = tempfile::tempdir().unwrap();
    let (out, scratch_tmp) = (tmp.path().join("out"), tmp.path().join("tmp"));
    std::fs::create_dir_all(&scratch_tmp).unwrap();
    let mut command = dbbackup();
    command
        .args(["backup", &db.url(), "--restore-test", "--out"])
        .arg(&out)
        .env("TMPDIR", &scratch_tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The leader of a process group of its own, as a shell makes a foreground job.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let made = loop {
        let found = scratch_databases(pid);
        if !found.is_empty() {
            break found;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before its restore test made a scratch database"
        );
        assert!(
            Instant::now() < deadline,
            "no scratch database within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        !leftovers(&scratch_tmp).is_empty(),
        "the restore test has no directory in TMPDIR while restoring"
    );
    let target = match whole_group {
        true => -(pid as libc::pid_t),
        false => pid as libc::pid_t,
    };
    // SAFETY: signalling a child process (or its process group) we have not waited for.
    assert_eq!(unsafe { libc::kill(target, signal) }, 0);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        scratch_databases(pid),
        Vec::<String>::new(),
        "scratch database(s) {made:?} left behind: {stderr}"
    );
    assert_eq!(
        leftovers(&scratch_tmp),
        Vec::<String>::new(),
        "left in TMPDIR"
    );
    let in_out: Vec<String> = leftovers(&out)
        .into_iter()
        .filter(|p| {
            p.contains(".failed") || !(p.ends_with(".sql.gz") || p.ends_with(".manifest.json"))
        })
        .collect();
    assert_eq!(
        in_out,
        Vec::<String>::new(),
        "temporary files, or a backup set aside as failed, left in DIR"
    );
    assert!(!stderr.contains("restore FAILED"), "{stderr}");
}

#[test]
fn sigint_during_the_restore_test_of_a_backup_removes_every_scratch_resource() {
    interrupt_the_restore_test_of_a_backup(libc::SIGINT, false);
}

#[test]
fn sigterm_during_the_restore_test_of_a_backup_removes_every_scratch_resource() {
    interrupt_the_restore_test_of_a_backup(libc::SIGTERM, false);
}

/// A terminal's Ctrl-C reaches the whole foreground process group: it interrupts the backup,
/// it does not fail it (no `.failed`, no "restore FAILED", exit 130).
#[test]
fn ctrl_c_to_the_process_group_interrupts_the_restore_test_and_fails_nothing() {
    interrupt_the_restore_test_of_a_backup(libc::SIGINT, true);
}

/// SIGKILL runs no handler: the killed run's scratch database stays, and the next restore test
/// on this machine drops it. One that another machine's run (another tag) or a live process
/// owns is never touched.
#[test]
fn the_next_restore_test_sweeps_the_scratch_database_of_a_killed_run() {
    if !pg::server_up() {
        return;
    }
    let db = TestDb::pgbench("sigkill", 5);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut child = dbbackup()
        .args(["backup", &db.url(), "--restore-test", "--out"])
        .arg(&out)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let left = loop {
        let found = scratch_databases(pid);
        if !found.is_empty() {
            break found;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before its restore test"
        );
        assert!(
            Instant::now() < deadline,
            "no scratch database within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(scratch_databases(pid), left, "SIGKILL ran a handler?");

    // Another machine's abandoned scratch, and one of a process that is alive (this test).
    let (foreign, live) = (
        format!("dbbackup_scratch_{pid}_00000000_0badcafe"),
        format!(
            "dbbackup_scratch_{}_{}_0badcafe",
            std::process::id(),
            dbbackup::process::machine_tag()
        ),
    );
    for name in [&foreign, &live] {
        pg::psql("postgres", &format!("CREATE DATABASE {name}"));
    }
    let backup = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sql.gz"))
        .expect("the killed run committed its backup before its restore test");
    let tested = dbbackup()
        .arg("restore-test")
        .arg(&backup)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let remaining = scratch_databases(pid);
    let still_live = pg::psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{live}'"),
    );
    for name in [&foreign, &live] {
        pg::psql("postgres", &format!("DROP DATABASE IF EXISTS {name}"));
    }
    assert!(tested.status.success(), "{tested:?}");
    assert_eq!(
        remaining,
        std::slice::from_ref(&foreign),
        "the killed run's scratch was not swept, or another machine's was"
    );
    assert_eq!(
        still_live, "1",
        "a live process's scratch database was dropped"
    );
}

/// Ctrl-C or SIGTERM while an encrypted SQLite backup runs: the plain snapshot of the database
/// in DIR's temporary directory must not outlive the run (the backup is encrypted so that no
/// plain copy stays on disk), and nothing but what a finished run leaves may stay in DIR.
fn interrupt_an_encrypted_sqlite_backup(signal: libc::c_int) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("big.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("CREATE TABLE t (b BLOB)", []).unwrap();
    let mut rng = fastrand::Rng::with_seed(u64::from(signal.unsigned_abs()));
    for _ in 0..48 {
        let blob: Vec<u8> = (0..1 << 20).map(|_| rng.u8(..)).collect();
        conn.execute("INSERT INTO t (b) VALUES (?1)", [blob])
            .unwrap();
    }
    drop(conn);
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let out = tmp.path().join("out");
    let mut child = dbbackup()
        .arg("backup")
        .arg(&db)
        .args(["--encrypt-to", &recipient, "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The signal lands while the snapshot is on disk: as soon as it appears.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(out.exists() && leftovers(&out).iter().any(|p| p.contains(".dbbackup-tmp-"))) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before its temporary directory was seen"
        );
        assert!(Instant::now() < deadline, "no temporary directory in 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: signalling a child process we have not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert_eq!(
        leftovers(&out),
        Vec::<String>::new(),
        "an interrupted backup left files in DIR: {stderr}"
    );
}

#[test]
fn sigint_during_an_encrypted_sqlite_backup_leaves_no_plain_snapshot() {
    interrupt_an_encrypted_sqlite_backup(libc::SIGINT);
}

#[test]
fn sigterm_during_an_encrypted_sqlite_backup_leaves_no_plain_snapshot() {
    interrupt_an_encrypted_sqlite_backup(libc::SIGTERM);
}
