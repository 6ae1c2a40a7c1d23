//! The job summary under a fake GitHub runner: the backup, then its restore test; a failed
//! check's details as a nested Markdown list; a failed or refused upload still leaves a summary
//! that says why.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::fake_github::{FakeGitHub, Fault, Route};
use crate::support::{data_copy, dbbackup};

fn under_runner(dir: &Path, mut cmd: Command) -> (Output, String) {
    let out = cmd
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"))
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(dir.join("summary")).unwrap_or_default();
    (out, summary)
}

fn backup(dir: &Path, extra: &[&str]) -> Command {
    let db = data_copy("chinook.sqlite", dir);
    let mut cmd = dbbackup();
    cmd.arg("backup")
        .arg(db)
        .arg("--out")
        .arg(dir.join("b"))
        .args(extra);
    cmd
}

#[test]
fn the_backup_comes_before_its_restore_test() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, summary) = under_runner(tmp.path(), backup(tmp.path(), &["--restore-test"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = summary.find("### dbbackup: `chinook-").expect(&summary);
    let test = summary.find("### dbbackup restore test").expect(&summary);
    assert!(backup < test, "{summary}");
}

#[test]
fn failure_details_are_a_nested_list() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = under_runner(tmp.path(), backup(tmp.path(), &[]));
    assert!(out.status.success());
    // One table's row count in the manifest no longer matches the archive.
    let manifest = std::fs::read_dir(tmp.path().join("b"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let rows = &mut json["snapshot"]["tables"][0]["rows"];
    *rows = serde_json::json!(rows.as_u64().unwrap() + 1);
    std::fs::write(&manifest, json.to_string()).unwrap();
    std::fs::remove_file(tmp.path().join("summary")).unwrap();
    let mut cmd = dbbackup();
    cmd.arg("restore-test").arg(tmp.path().join("b"));
    let (out, summary) = under_runner(tmp.path(), cmd);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("\n- restore FAILED"), "{summary}");
    assert!(summary.contains("\n  - data: "), "{summary}");
    assert!(summary.contains("\n    - "), "{summary}");
    assert!(
        !summary.contains("-   "),
        "indented text in an item: {summary}"
    );
}

#[test]
fn a_refused_upload_still_writes_the_summary_with_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    // No artifact service token: the upload is refused before anything is backed up.
    let (out, summary) = under_runner(tmp.path(), backup(tmp.path(), &["--upload"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(summary.contains("### dbbackup: backup of `"), "{summary}");
    assert!(summary.contains("failed\n\n- "), "{summary}");
    let first_line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    let cause = first_line.rsplit(": ").next().unwrap();
    assert!(summary.contains(cause), "{summary}\n{stderr}");
}

/// An upload that fails after the backup was made and restore-tested: the summary shows the
/// backup and its passed restore test, then the failed upload with its error; nothing was
/// pruned.
#[test]
fn a_failed_upload_keeps_the_backup_and_its_restore_test_in_the_summary() {
    let fake = FakeGitHub::start();
    let tmp = tempfile::tempdir().unwrap();
    // An earlier backup, which --keep 1 would rotate away after a good upload.
    let (first, _) = under_runner(tmp.path(), backup(tmp.path(), &[]));
    assert!(first.status.success());
    std::fs::remove_file(tmp.path().join("summary")).unwrap();
    fake.fail_next(Route::Finalize, Fault::Status(500), 10_000);
    let mut cmd = backup(tmp.path(), &["--restore-test", "--upload", "--keep", "1"]);
    cmd.envs(fake.env())
        .env("DBBACKUP_RETRY_BUDGET_SECS", "1")
        .env("DBBACKUP_RETRY_BASE_MS", "20");
    let (out, summary) = under_runner(tmp.path(), cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    let backup = summary.find("### dbbackup: `chinook-").expect(&summary);
    let test = summary.find("### dbbackup restore test").expect(&summary);
    let failure = summary.find("### dbbackup: backup of `").expect(&summary);
    assert!(backup < test && test < failure, "{summary}");
    assert!(summary[test..failure].contains("passed"), "{summary}");
    let error = &summary[failure..];
    assert!(
        error.contains("FinalizeArtifact") && error.contains("nothing was pruned"),
        "{summary}"
    );
    let local = std::fs::read_dir(tmp.path().join("b"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sqlite.gz"))
        .count();
    assert_eq!(local, 2, "nothing was pruned: {summary}");
    assert_eq!(fake.artifacts().len(), 0, "{summary}");
}
