//! Exit codes mean what the README says, whichever command meets the failure: a restore test
//! that does not pass ends `backup`, `restore` and `restore-test` the same way, and a step
//! output or job summary that cannot be written is an output error (4), never internal (1).

use std::path::Path;
use std::process::Output;

use crate::support::dbbackup;
use crate::support::restore::{backup, chinook, modify_native_backup};
use crate::support::sqlite_fixtures::index_disagreeing_with_its_table;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one way a command ends when its restore test did not pass: exit 5, the report's line,
/// then one `error:` line saying what happened because of it.
fn assert_failed_restore_test(out: &Output, consequence: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("restore FAILED:"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: the restore test of ") && last.contains(consequence),
        "the last line says neither the failure nor what became of it: {last}"
    );
}

#[test]
fn a_failed_restore_test_ends_restore_test_restore_and_backup_alike() {
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&chinook(), &dir.path().join("b"), "native");
    modify_native_backup(&archive, "UPDATE Artist SET Name = 'x' WHERE ArtistId = 1");

    let tested = dbbackup()
        .arg("restore-test")
        .arg(&archive)
        .output()
        .unwrap();
    assert_failed_restore_test(&tested, "not proven to restore");

    let target = dir.path().join("restored.sqlite");
    let restored = dbbackup()
        .arg("restore")
        .arg(&archive)
        .arg(&target)
        .output()
        .unwrap();
    assert_failed_restore_test(&restored, "was not written");
    assert!(
        !target.exists(),
        "restore wrote a target that failed its test"
    );

    // A source whose index disagrees with its table passes its snapshot check (quick) and
    // fails the restore test's full check.
    let db = index_disagreeing_with_its_table(dir.path());
    let out = dir.path().join("out");
    let backed_up = dbbackup()
        .args(["backup", "--restore-test", "--out"])
        .arg(&out)
        .arg(&db)
        .output()
        .unwrap();
    assert_failed_restore_test(&backed_up, "was set aside as");
}

/// Runs a backup as a GitHub Actions step whose `$GITHUB_OUTPUT` or `$GITHUB_STEP_SUMMARY`
/// is `file`.
fn backup_in_actions(var: &str, file: &Path, out: &Path) -> Output {
    dbbackup()
        .args(["backup", "--out"])
        .arg(out)
        .arg(chinook())
        .env("GITHUB_ACTIONS", "true")
        .env(var, file)
        .output()
        .unwrap()
}

#[test]
fn unwritable_step_outputs_and_summaries_are_output_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the runner's file should be: no one, root included, can append to it.
    let not_a_file = dir.path().join("a-directory");
    std::fs::create_dir(&not_a_file).unwrap();
    for (var, named) in [
        ("GITHUB_OUTPUT", "$GITHUB_OUTPUT"),
        ("GITHUB_STEP_SUMMARY", "$GITHUB_STEP_SUMMARY"),
    ] {
        let ran = backup_in_actions(var, &not_a_file, &dir.path().join(var));
        let text = stderr(&ran);
        assert_eq!(ran.status.code(), Some(4), "{var}: {text}");
        assert!(text.contains(named), "{var}: {text}");
        assert!(!text.contains("internal error"), "{var}: {text}");
    }
}
