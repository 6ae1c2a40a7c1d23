//! SIGKILL during a backup, at many moments across snapshot, check, compression, commit and
//! rotation: no file under a backup's name is ever partial, the older backups survive (only
//! rotation, after the new backup is committed, may remove the oldest), and the next run
//! succeeds and leaves no temporary files or orphan manifests behind.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::chaos::{
    Listing, assert_all_restore, assert_code, backup_cmd, build_db, output, temp_db,
};
use crate::support::dbbackup;
use crate::support::kill::{Kill, Timeline, kill_plan, run_and_kill};

/// Rows in the database killed mid-backup: a backup takes half a second to a second in a debug
/// build (the kill points are spread over the measured time, whatever it is), and the whole
/// test stays well under a minute on a busy 2-core machine.
const ROWS: u32 = 12_000;
/// `--keep` of every run; with `OLD` older backups present each completed run rotates some.
const KEEP: usize = 3;
const OLD: usize = 4;
/// Kill points spread over a measured uninterrupted run.
const TIMED_KILLS: u32 = 36;

/// Where the killed backups run: the database (`app.db`, so backups are `app-*`) and a
/// directory of `OLD` small, real backups of the same name to copy into every trial.
struct Setup {
    _tmp: tempfile::TempDir,
    db: PathBuf,
    baseline: PathBuf,
    olds: Vec<String>,
    root: PathBuf,
}

fn setup() -> Setup {
    // In memory when /dev/shm is there: a SIGKILL tests what the process leaves behind, which
    // the filesystem does not change, and fsync on a busy shared disk would make each of the
    // many runs below take seconds.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let root = tmp.path().to_path_buf();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::create_dir_all(root.join("small")).unwrap();
    let db = root.join("src/app.db");
    build_db(&db, ROWS);
    let small = root.join("small/app.db");
    build_db(&small, 50);
    let baseline = root.join("baseline");
    for _ in 0..OLD {
        let out = output(backup_cmd(&small, &baseline, None));
        assert_code(&out, 0, "backup of the small database");
    }
    let olds = Listing::of(&baseline).archives;
    assert_eq!(olds.len(), OLD);
    Setup {
        _tmp: tmp,
        db,
        baseline,
        olds,
        root,
    }
}

impl Setup {
    /// A fresh copy of the baseline directory for one trial.
    fn trial_dir(&self, n: usize) -> PathBuf {
        let dir = self.root.join(format!("trial-{n}"));
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(scratch_parent(&dir)).unwrap();
        for entry in fs::read_dir(&self.baseline).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        dir
    }
}

/// The TMPDIR of a trial's runs, where their restore tests make their scratch copies.
fn scratch_parent(trial: &Path) -> PathBuf {
    trial.with_extension("tmp")
}

/// Runs `backup DB --out DIR --keep KEEP`, SIGKILLs it at `kill` (`None`: lets it finish).
/// Returns whether it was killed (false: it had already exited, successfully) and its log.
fn run_backup(db: &Path, dir: &Path, kill: Option<Kill>) -> (bool, Timeline) {
    // With --restore-test the committed backup is restore-tested before rotation, which
    // makes the time between commit and exit long enough for kills to land in it: a plain
    // backup of this database committed 0.2 ms before it exited, and on a fast machine no
    // kill of 24 landed there. It also kills restore tests half-way.
    let mut cmd = backup_cmd(db, dir, Some(KEEP));
    cmd.arg("--restore-test").env("TMPDIR", scratch_parent(dir));
    let run = run_and_kill(cmd, kill);
    if !run.killed {
        assert!(
            run.status.success(),
            "uninterrupted run failed: {:?}",
            run.timeline
        );
    }
    (run.killed, run.timeline)
}

/// What must hold after a kill at any moment, and after the next, uninterrupted run.
/// Returns whether the killed run had committed its backup.
fn check_after_kill(s: &Setup, dir: &Path, what: &str) -> bool {
    let listing = Listing::of(dir);
    assert!(listing.other.is_empty(), "{what}: stray files {listing:?}");
    assert!(
        listing.archives_without_manifest().is_empty(),
        "{what}: an archive appeared before its manifest: {listing:?}"
    );
    // Every file under a backup's name is complete: the binary restore-tests every one.
    assert_eq!(assert_all_restore(dir), listing.archives, "{what}");
    let new: Vec<&String> = listing
        .archives
        .iter()
        .filter(|a| !s.olds.contains(a))
        .collect();
    assert!(new.len() <= 1, "{what}: {listing:?}");
    let committed = !new.is_empty();
    // Rotation runs only after the new backup is committed, and never touches the newest.
    let must_survive = if committed {
        &s.olds[OLD - (KEEP - 1)..]
    } else {
        &s.olds[..]
    };
    for old in must_survive {
        assert!(
            listing.archives.contains(old),
            "{what}: older backup {old} lost: {listing:?}"
        );
    }

    let out = output(
        backup_cmd(&s.db, dir, Some(KEEP))
            .args(["--level", "1", "--restore-test"])
            .env("TMPDIR", scratch_parent(dir)),
    );
    assert_code(&out, 0, &format!("{what}: the next run"));
    // A killed restore test leaves its restored copy of the data; the next one removes it.
    let scratch: Vec<_> = fs::read_dir(scratch_parent(dir)).unwrap().collect();
    assert!(
        scratch.is_empty(),
        "{what}: the next run left restore-test scratch copies: {scratch:?}"
    );
    let after = Listing::of(dir);
    assert!(
        after.temp.is_empty() && after.other.is_empty(),
        "{what}: the next run left temporary files: {after:?}"
    );
    assert!(
        after.orphan_manifests().is_empty(),
        "{what}: the next run left orphan manifests: {after:?}"
    );
    assert!(after.archives_without_manifest().is_empty(), "{after:?}");
    assert_eq!(after.archives.len(), KEEP, "{what}: {after:?}");
    committed
}

#[test]
fn sigkill_at_any_moment_loses_nothing() {
    let s = setup();

    // One uninterrupted run to learn how long each phase takes on this machine.
    let (_, timeline) = run_backup(&s.db, &s.trial_dir(0), None);
    let total = timeline.last().map(|(t, _)| *t).unwrap();
    eprintln!("uninterrupted backup: {timeline:?}");

    let kills = kill_plan(
        &["dumped →", "compressed →", "restore OK", "pruned"],
        total,
        TIMED_KILLS,
    );

    let (mut before_commit, mut after_commit) = (0, 0);
    for (n, kill) in kills.iter().enumerate() {
        let dir = s.trial_dir(n + 1);
        let (killed, lines) = run_backup(&s.db, &dir, Some(*kill));
        let what = format!("kill {n} ({kill:?}, killed: {killed}, log: {lines:?})");
        // A run that finished before its kill must leave the same guarantees.
        let committed = check_after_kill(&s, &dir, &what);
        if killed && committed {
            after_commit += 1;
        } else if killed {
            before_commit += 1;
        }
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(scratch_parent(&dir)).unwrap();
    }
    eprintln!("killed before the commit: {before_commit}, after: {after_commit}");
    // The test proves something only if kills landed on both sides of the commit.
    assert!(
        before_commit >= 10,
        "{before_commit} kills before the commit"
    );
    assert!(after_commit >= 1, "{after_commit} kills after the commit");
}

/// The states a kill can leave between two steps, built exactly: a manifest linked but its
/// archive not yet renamed (commit steps 2 and 3), and an old archive deleted by rotation but
/// its manifest not yet. Restore-test of the directory ignores both; the next run removes them.
#[test]
fn leftovers_of_an_interrupted_commit_or_rotation_break_nothing() {
    let (tmp, db) = temp_db(50);
    let dir = tmp.path().join("b");
    for _ in 0..3 {
        assert_code(&output(backup_cmd(&db, &dir, None)), 0, "backup");
    }
    let olds = Listing::of(&dir).archives;
    // Rotation interrupted between deleting the oldest archive and its manifest.
    fs::remove_file(dir.join(&olds[0])).unwrap();
    // Commit interrupted after linking the manifest of a newer backup.
    let orphan = "app-29991231-235959.sqlite.gz.manifest.json";
    fs::copy(
        dir.join(format!("{}.manifest.json", olds[2])),
        dir.join(orphan),
    )
    .unwrap();
    // A temporary directory of a process that no longer exists (pid beyond pid_max).
    fs::create_dir(dir.join(".dbbackup-tmp-4194305-XXXXXX")).unwrap();

    assert_eq!(assert_all_restore(&dir), &olds[1..]);
    let newest = output(dbbackup().arg("restore-test").arg(&dir).arg("--json"));
    assert_code(&newest, 0, "restore-test of the directory's newest backup");
    let json: serde_json::Value = serde_json::from_slice(&newest.stdout).unwrap();
    assert!(
        json["backups"][0]["backup"]
            .as_str()
            .unwrap()
            .ends_with(&olds[2]),
        "{json:#}"
    );
    assert_code(
        &output(dbbackup().arg("inspect").arg(&dir)),
        0,
        "inspect of the directory",
    );

    let out = output(backup_cmd(&db, &dir, Some(2)));
    assert_code(&out, 0, "the next run");
    let after = Listing::of(&dir);
    assert!(after.orphan_manifests().is_empty(), "{after:?}");
    assert!(after.temp.is_empty(), "{after:?}");
    assert_eq!(after.archives.len(), 2, "{after:?}");
    assert_eq!(after.archives[0], olds[2]);
}
