//! SIGKILL during a MySQL backup and its restore test, at 20 moments across connecting, the
//! read lock and dump, compression, the commit, the restore into a scratch database and its
//! checks: no file under a backup's name in --out is ever partial (each one decompresses whole
//! and matches its manifest's size and sha256), and the scratch database a killed restore test
//! left is dropped by the next run on this machine, which passes.
//!
//! What the SQLite crash test (`chaos_crash`) proves of the store and rotation holds for every
//! engine (one pipeline); this one proves what is MySQL's own: the dump tool's pipe, the
//! scratch database on the server and its sweep.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dbbackup::archive::manifest::{self, Manifest};
use sha2::Digest;

use crate::support::chaos::{Listing, assert_code, output};
use crate::support::dbbackup;
use crate::support::kill::{kill_plan, run_and_kill};
use crate::support::mysql::{exclusive_db, scratch_databases};

/// Kill points spread over a measured uninterrupted run, besides the four on log lines: with
/// a database this small a run takes 1-3 s in a debug build on a busy 2-core machine, so the
/// 20 kills and their follow-up runs stay within about a minute.
const TIMED_KILLS: u32 = 16;

/// `backup URL --out DIR --restore-test`: the restore test makes the time after the commit
/// long, so kills land both before the commit and in the restore test (leaving its scratch
/// database).
fn backup(url: &str, dir: &Path) -> std::process::Command {
    let mut cmd = dbbackup();
    cmd.args(["backup", url, "--restore-test", "--out"])
        .arg(dir)
        .env("TMPDIR", dir.with_extension("tmp"));
    cmd
}

/// Every file under a backup's name is whole: its manifest is there, and the archive has the
/// manifest's size and sha256 and decompresses to the end.
fn assert_complete(dir: &Path, what: &str) -> Listing {
    let listing = Listing::of(dir);
    assert!(listing.other.is_empty(), "{what}: stray files {listing:?}");
    assert!(
        listing.archives_without_manifest().is_empty(),
        "{what}: an archive appeared before its manifest: {listing:?}"
    );
    for name in &listing.archives {
        let path = dir.join(name);
        let bytes = fs::read(&path).unwrap();
        let m = Manifest::load(&manifest::path_for(&path)).unwrap();
        assert_eq!(
            bytes.len() as u64,
            m.compressed_bytes,
            "{what}: {name} size"
        );
        assert_eq!(
            dbbackup::archive::compress::hex(&sha2::Sha256::digest(&bytes)),
            m.sha256,
            "{what}: {name} sha256"
        );
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{what}: {name} does not decompress: {e}"));
        assert_eq!(raw.len() as u64, m.raw_bytes, "{what}: {name} raw size");
    }
    listing
}

#[test]
fn chaos_sigkill_at_20_moments_of_a_mysql_backup_leaves_no_partial_file_and_no_scratch() {
    let Some((_one_at_a_time, db)) = exclusive_db(
        "chaos",
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, note VARCHAR(100));
         INSERT INTO accounts SELECT seq, 1000, MD5(seq) FROM seq_1_to_3000;
         CREATE TABLE files (id INT PRIMARY KEY, data BLOB NOT NULL);
         INSERT INTO files SELECT seq, RANDOM_BYTES(200) FROM seq_1_to_300;",
    ) else {
        return;
    };
    let started = Instant::now();
    let url = db.url();
    // In memory when /dev/shm is there: a SIGKILL tests what the process leaves behind, which
    // the filesystem does not change.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let trial_dir = |n: usize| -> PathBuf {
        let dir = tmp.path().join(format!("trial-{n}"));
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(dir.with_extension("tmp")).unwrap();
        dir
    };

    // One uninterrupted run to learn how long each phase takes on this machine; its backup
    // is every trial's older backup, so the next run always has one to restore-test.
    let baseline = trial_dir(0);
    let run = run_and_kill(backup(&url, &baseline), None);
    assert!(run.status.success(), "{:?}", run.timeline);
    // The phases are timed on a second, warm run: since the rows are summed as the dump
    // streams, the part before the commit is ~0.1 s, and a slower (cold) first run stretches
    // the plan so that too few kills may land in it (seen: fewer than 5 under the loaded suite).
    let warm = trial_dir(100);
    let run = run_and_kill(backup(&url, &warm), None);
    assert!(run.status.success(), "{:?}", run.timeline);
    fs::remove_dir_all(&warm).unwrap();
    let _ = fs::remove_dir_all(warm.with_extension("tmp"));
    let total = run.timeline.last().map(|(t, _)| *t).unwrap();
    eprintln!("uninterrupted backup: {:?}", run.timeline);
    let old = assert_complete(&baseline, "baseline").archives;
    assert_eq!(old.len(), 1);

    let kills = kill_plan(
        &[
            "dumped →",
            "compressed →",
            "restored into scratch database",
            "restore OK",
        ],
        total,
        TIMED_KILLS,
    );
    assert_eq!(kills.len(), 20);

    let (mut before_commit, mut after_commit, mut scratch_left) = (0, 0, 0);
    for (n, kill) in kills.iter().enumerate() {
        let dir = trial_dir(n + 1);
        for name in [old[0].clone(), format!("{}.manifest.json", old[0])] {
            fs::copy(baseline.join(&name), dir.join(&name)).unwrap();
        }
        let run = run_and_kill(backup(&url, &dir), Some(*kill));
        let what = format!(
            "kill {n} ({kill:?}, killed: {}, log: {:?})",
            run.killed, run.timeline
        );
        if !run.killed {
            assert!(run.status.success(), "{what}: the run failed");
        }
        let listing = assert_complete(&dir, &what);
        let new = listing.archives.iter().filter(|a| **a != old[0]).count();
        assert!(new <= 1, "{what}: {listing:?}");
        let left = scratch_databases(run.pid);
        if run.killed && left != "0" {
            scratch_left += 1;
        }
        match (run.killed, new) {
            (true, 1) => after_commit += 1,
            (true, _) => before_commit += 1,
            _ => {}
        }

        // The next run on this machine restore-tests the newest backup (the killed run's when
        // it committed one), and drops the killed run's scratch database first.
        let next = output(dbbackup().arg("restore-test").arg(&dir));
        assert_code(&next, 0, &format!("{what}: the next run"));
        assert_eq!(
            scratch_databases(run.pid),
            "0",
            "{what}: the killed run's scratch database was not swept"
        );
        fs::remove_dir_all(&dir).unwrap();
        let _ = fs::remove_dir_all(dir.with_extension("tmp"));
    }
    eprintln!(
        "killed before the commit: {before_commit}, after: {after_commit}, leaving a scratch \
         database: {scratch_left}; {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
    // The test proves something only if kills landed on both sides of the commit, and some
    // left a scratch database for the next run to sweep.
    assert!(
        before_commit >= 5,
        "{before_commit} kills before the commit"
    );
    assert!(after_commit >= 3, "{after_commit} kills after the commit");
    assert!(
        scratch_left >= 2,
        "{scratch_left} kills left a scratch database"
    );
}
