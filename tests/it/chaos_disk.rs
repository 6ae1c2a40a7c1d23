//! Output that cannot be written: a disk that fills up at each step of a backup, a read-only
//! directory, an old backup that cannot be deleted. Every time: a clear error, exit 4
//! (output), no partial file under a backup's name, nothing old lost or rotated away.
//! (`full_disk_fails_cleanly_and_keeps_old_backups` in backup.rs covers the plain case of an
//! archive that does not fit.)

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::chaos::{
    Listing, assert_all_restore, assert_code, backup_cmd, bind_on_itself, mount_tmpfs, output,
    snapshot_files, stderr, temp_db,
};
use crate::support::{dbbackup, run_under};

const PAGE: u64 = 4096;

/// Free pages on the filesystem holding `dir`.
fn free_pages(dir: &Path) -> u64 {
    let out = Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (avail, block) = text.trim().split_once(' ').unwrap();
    avail.parse::<u64>().unwrap() * block.parse::<u64>().unwrap() / PAGE
}

/// Two real backups of `db` in `dir`.
fn two_backups(db: &Path, dir: &Path) {
    for _ in 0..2 {
        let out = output(backup_cmd(db, dir, None));
        assert_code(&out, 0, "backup");
    }
}

/// The backup fails with exit 4 naming the cause, and `dir` is exactly as before: the same
/// files with the same bytes, no temporary directory, every backup still restores.
fn assert_fails_changing_nothing(mut cmd: Command, dir: &Path, message: &str) -> String {
    let before = snapshot_files(dir);
    let out = output(&mut cmd);
    assert_code(&out, 4, &format!("{cmd:?}"));
    let text = stderr(&out);
    assert!(text.contains(message), "{message:?} not in:\n{text}");
    assert!(snapshot_files(dir) == before, "{cmd:?} changed {dir:?}");
    let listing = Listing::of(dir);
    assert!(listing.temp.is_empty(), "temporary files left: {listing:?}");
    assert_all_restore(dir);
    text
}

/// The disk fills up at each step in turn: while the snapshot is written, while the archive
/// is, and when only the manifest no longer fits. Each backup fails cleanly and says the disk
/// is full; with room for everything the same backup succeeds.
#[test]
fn disk_full_at_every_step_fails_cleanly() {
    let (tmp, db) = temp_db(3_000);
    // How much room a backup needs: its snapshot (a copy of the database) and its archive sit
    // side by side in the temporary directory until the commit.
    let probe = tmp.path().join("probe");
    two_backups(&db, &probe);
    let archive_bytes = fs::metadata(probe.join(&Listing::of(&probe).archives[0]))
        .unwrap()
        .len();
    let snapshot_pages = fs::metadata(&db).unwrap().len().div_ceil(PAGE);
    let archive_pages = archive_bytes.div_ceil(PAGE);

    let out = tmp.path().join("tiny");
    fs::create_dir(&out).unwrap();
    let Some(_mount) = mount_tmpfs(&out, "size=8m") else {
        return;
    };
    two_backups(&db, &out);
    let mut failures = Vec::new();
    for free in [
        2,
        snapshot_pages / 2,
        snapshot_pages + archive_pages / 2,
        snapshot_pages + archive_pages,
    ] {
        let filler = out.join("filler");
        let _ = fs::remove_file(&filler);
        fs::write(
            &filler,
            vec![0u8; ((free_pages(&out) - free) * PAGE) as usize],
        )
        .unwrap();
        assert_eq!(free_pages(&out), free);
        let text =
            assert_fails_changing_nothing(backup_cmd(&db, &out, Some(1)), &out, "the disk is full");
        failures.push(text);
    }
    let failed_at = |what: &str| failures.iter().filter(|t| t.contains(what)).count();
    assert!(failed_at("write snapshot") >= 1, "{failures:#?}");
    assert!(failed_at("write backup file") >= 1, "{failures:#?}");
    assert!(
        failures.last().unwrap().contains(".manifest.tmp"),
        "the last one fails writing the manifest: {failures:#?}"
    );

    fs::remove_file(out.join("filler")).unwrap();
    let ok = output(backup_cmd(&db, &out, Some(1)));
    assert_code(&ok, 0, "backup with room for it");
    assert_eq!(Listing::of(&out).archives.len(), 1);
}

/// Past the file size limit (`ulimit -f`): the kernel would kill the process with SIGXFSZ;
/// dbbackup ignores that signal, so the write fails and is reported, exit 4.
#[test]
fn file_size_limit_fails_cleanly() {
    let (tmp, db) = temp_db(3_000);
    let out = tmp.path().join("b");
    two_backups(&db, &out);
    let mut sh = Command::new("sh");
    sh.args(["-c", "ulimit -f 64 && exec \"$@\"", "sh"]);
    let cmd = run_under(sh, &backup_cmd(&db, &out, Some(1)));
    let text = assert_fails_changing_nothing(cmd, &out, "ulimit -f");
    assert!(text.contains("write snapshot"), "{text}");
}

/// A read-only backup directory: backup and prune both refuse with exit 4 and delete nothing;
/// the backups there still restore-test.
#[test]
fn read_only_directory_fails_cleanly_and_deletes_nothing() {
    let (tmp, db) = temp_db(500);
    let out = tmp.path().join("ro");
    fs::create_dir(&out).unwrap();
    let Some(mount) = mount_tmpfs(&out, "size=8m") else {
        return;
    };
    two_backups(&db, &out);
    mount.remount_read_only();

    assert_fails_changing_nothing(
        backup_cmd(&db, &out, Some(1)),
        &out,
        "read-only filesystem: choose a writable --out",
    );
    let text = assert_fails_changing_nothing(
        {
            let mut prune = dbbackup();
            prune
                .arg("prune")
                .arg(&out)
                .args(["--name", "app", "--keep", "1"]);
            prune
        },
        &out,
        "delete old backup",
    );
    assert!(text.contains("read-only filesystem"), "{text}");
    assert!(!text.contains("internal error"), "{text}");
}

/// Rotation fails after the new backup is committed (an old backup is a mount point, so it
/// cannot be deleted): exit 4 naming the file, the new backup is in place and restores, and
/// the message does not claim that nothing happened.
#[test]
fn rotation_that_cannot_delete_keeps_the_new_backup_and_says_so() {
    let (tmp, db) = temp_db(500);
    let out = tmp.path().join("b");
    two_backups(&db, &out);
    let olds = Listing::of(&out).archives;
    let Some(_stuck) = bind_on_itself(&out.join(&olds[0])) else {
        return;
    };

    let out_run = output(backup_cmd(&db, &out, Some(1)));
    assert_code(&out_run, 4, "backup whose rotation fails");
    let text = stderr(&out_run);
    assert!(
        text.contains("delete old backup") && text.contains(&olds[0]),
        "{text}"
    );
    assert!(text.contains("the new backup is in"), "{text}");
    assert!(!text.contains("nothing was rotated away"), "{text}");
    let after = Listing::of(&out);
    assert_eq!(after.archives.len(), 2, "{after:?}");
    assert_eq!(after.archives[0], olds[0], "the stuck one stays");
    assert!(!after.archives.contains(&olds[1]), "the other is rotated");
    assert_eq!(assert_all_restore(&out), after.archives);
}

/// `TMPDIR` too small for the restored copy: the machine failed, not the backup. The restore
/// test ends with exit 4 naming the disk, for `restore-test` and for `backup --restore-test`;
/// the good backup is not set aside as `.failed`, and a later restore test with room passes.
#[test]
fn a_full_tmpdir_during_the_restore_test_is_the_machines_failure_not_the_backups() {
    let (tmp, db) = temp_db(3_000);
    let scratch = tmp.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let Some(_mount) = mount_tmpfs(&scratch, "size=64k") else {
        return;
    };
    for format in ["native", "sql"] {
        let out = tmp.path().join(format!("out-{format}"));
        let made = output(backup_cmd(&db, &out, None).args(["--format", format]));
        assert_code(&made, 0, "backup");
        let before = Listing::of(&out);
        let tested = output(
            dbbackup()
                .arg("restore-test")
                .arg(&out)
                .env("TMPDIR", &scratch),
        );
        assert_code(
            &tested,
            4,
            &format!("restore-test of a {format} backup, TMPDIR full"),
        );
        assert!(stderr(&tested).contains("full"), "{}", stderr(&tested));

        let again = output(
            backup_cmd(&db, &out, Some(1))
                .args(["--format", format, "--restore-test"])
                .env("TMPDIR", &scratch),
        );
        assert_code(
            &again,
            4,
            &format!("backup --restore-test, {format}, TMPDIR full"),
        );
        let after = Listing::of(&out);
        assert!(
            !after.other.iter().any(|n| n.contains(".failed")),
            "a good backup was set aside: {:?}",
            after.other
        );
        assert!(
            before.archives.iter().all(|a| after.archives.contains(a)),
            "an old backup was rotated away: {:?}",
            after.archives
        );
        let with_room = output(dbbackup().arg("restore-test").arg(&out));
        assert_code(&with_room, 0, "restore-test with room");
    }
}
