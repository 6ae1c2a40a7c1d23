//! `check`: the newest backup of a name, in a directory or among the repository's artifacts
//! (the fake GitHub), must be younger than `--max-age` and, with `--min-bytes`, large enough;
//! otherwise exit 10 with a line that says why, also when there is none.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use dbbackup::archive::naming;
use time::OffsetDateTime;

use crate::support::fake_github::{FakeGitHub, TOKEN};
use crate::support::restore::{read_cases, validate_junit};
use crate::support::{self, dbbackup};

const STALE: i32 = 10;

/// Puts a backup of `stem` made `age` ago into `dir`: an archive of `bytes` bytes named with
/// its timestamp, and its manifest beside it (all `check` looks at is the name and the size).
fn plant(dir: &Path, stem: &str, age: Duration, bytes: usize) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let stamp = naming::stamp(OffsetDateTime::now_utc() - age);
    let name = naming::file_name(
        stem,
        &stamp,
        1,
        naming::Kind {
            ext: "sqlite",
            codec: dbbackup::archive::codec::Codec::Gzip,
            encrypted: false,
        },
    );
    std::fs::write(dir.join(&name), vec![0x1f; bytes]).unwrap();
    std::fs::write(dir.join(format!("{name}.manifest.json")), b"{}").unwrap();
    name
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

fn check(dir: &Path, args: &[&str]) -> Output {
    dbbackup()
        .arg("check")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one `error:` line a failed check ends with.
fn error_line(out: &Output) -> String {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(STALE), "{text}");
    let last = text.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{text}");
    last
}

#[test]
fn a_fresh_backup_passes_and_a_stale_one_fails_with_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backups");
    let db = support::data_copy("chinook.sqlite", dir.path());
    support::backup_json(db.to_str().unwrap(), &out, &[]);

    let fresh = check(&out, &["--max-age", "26h"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert!(
        stderr(&fresh).contains("fresh: newest backup chinook-"),
        "{}",
        stderr(&fresh)
    );

    // The next backup never came: the newest is now 3 days and 4 hours old, whatever its
    // file's mtime (just written) says.
    for entry in std::fs::read_dir(&out).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let old = plant(
        &out,
        "chinook",
        hours(3 * 24 + 4) + Duration::from_secs(60),
        1000,
    );
    let stale = check(&out, &["--max-age", "26h"]);
    let line = error_line(&stale);
    assert_eq!(
        line,
        format!("error: newest backup {old} is 3d 4h old (1000 B), older than --max-age 26h")
    );
    // Days work as well as hours.
    let ok = check(&out, &["--max-age", "8d"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn the_newest_backup_decides_not_any_other() {
    let dir = tempfile::tempdir().unwrap();
    plant(dir.path(), "app", hours(50), 1000);
    let newest = plant(dir.path(), "app", hours(2), 1000);
    let out = check(dir.path(), &["--max-age", "1d", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["backups"][0]["newest"], newest.as_str());
    let age = json["backups"][0]["age_seconds"].as_u64().unwrap();
    assert!((7200..7300).contains(&age), "{age}");
}

#[test]
fn no_backup_at_all_fails_too() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), b"not a backup").unwrap();
    assert!(error_line(&check(&empty, &["--max-age", "26h"])).contains("no backup in"));
    let named = check(&empty, &["--max-age", "26h", "--name", "app"]);
    assert!(error_line(&named).contains("no backup named app in directory"));

    // The directory holds another name: the message says which.
    plant(&empty, "shop", hours(1), 1000);
    let wrong = error_line(&check(&empty, &["--max-age", "26h", "--name", "app"]));
    assert!(wrong.contains("it holds backups named shop"), "{wrong}");

    // Nothing there at all: missing, not created.
    let missing = dir.path().join("missing");
    let line = error_line(&check(&missing, &["--max-age", "26h"]));
    assert!(line.contains("does not exist"), "{line}");
    assert!(!missing.exists(), "check created the directory");
}

#[test]
fn min_bytes_fails_a_backup_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let name = plant(dir.path(), "app", hours(1), 512);
    let ok = check(dir.path(), &["--max-age", "26h", "--min-bytes", "512"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let small = check(dir.path(), &["--max-age", "26h", "--min-bytes", "513"]);
    assert_eq!(
        error_line(&small),
        format!(
            "error: newest backup {name} is 1h old (512 B), smaller than --min-bytes 513 (512 bytes)"
        )
    );
}

#[test]
fn several_names_in_a_directory_need_name() {
    let dir = tempfile::tempdir().unwrap();
    plant(dir.path(), "app", hours(1), 100);
    plant(dir.path(), "shop", hours(30), 100);
    let out = check(dir.path(), &["--max-age", "26h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("several names (app, shop)") && stderr(&out).contains("--name"),
        "{}",
        stderr(&out)
    );
    let app = check(dir.path(), &["--max-age", "26h", "--name", "app"]);
    assert_eq!(app.status.code(), Some(0), "{}", stderr(&app));
    // Both: one passes, one fails, and the check fails naming only the stale one.
    let both = check(
        dir.path(),
        &["--max-age", "26h", "--name", "app", "--name", "shop"],
    );
    let line = error_line(&both);
    assert!(line.contains("shop-") && !line.contains("app-"), "{line}");
}

#[test]
fn a_bad_max_age_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    plant(dir.path(), "app", hours(1), 100);
    for bad in ["8x", "0", "-1h", "", "26 h"] {
        let out = check(dir.path(), &["--max-age", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("--max-age"), "{}", stderr(&out));
    }
    let out = dbbackup().args(["check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--max-age is required");
}

#[test]
fn junit_report_has_one_freshness_case_per_name_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    plant(&backups, "app", hours(1), 100);
    plant(&backups, "shop", hours(30), 100);
    let report = dir.path().join("check.xml");
    let names = ["--name", "app", "--name", "shop", "--name", "gone"];
    let out = dbbackup()
        .arg("check")
        .arg(&backups)
        .args(["--max-age", "26h"])
        .args(names)
        .arg("--junit")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(STALE), "{}", stderr(&out));
    validate_junit(&report);
    let cases = read_cases(&std::fs::read_to_string(&report).unwrap());
    let summary: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|c| (c.classname.as_str(), c.name.as_str(), c.result.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("app", "freshness", "passed"),
            ("shop", "freshness", "failed"),
            ("gone", "freshness", "failed"),
        ]
    );
    assert!(
        cases[1].text.contains("older than --max-age 26h"),
        "{}",
        cases[1].text
    );
    assert!(
        cases[2].text.contains("no backup named gone"),
        "{}",
        cases[2].text
    );
}

#[test]
fn in_github_actions_the_summary_shows_each_name_and_the_failure_is_annotated() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    plant(&backups, "app", hours(1), 100);
    plant(&backups, "shop", hours(30), 100);
    let (summary, outputs) = (dir.path().join("summary"), dir.path().join("output"));
    let out = dbbackup()
        .arg("check")
        .arg(&backups)
        .args(["--max-age", "26h", "--name", "app", "--name", "shop"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(STALE), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("::error ") && l.contains("is 1d 6h old")),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| `app` | fresh |"), "{md}");
    assert!(md.contains("| `shop` | **FAILED** |"), "{md}");
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        outputs.contains("passed<<") && outputs.contains("\nfalse\n"),
        "{outputs}"
    );
}

// ---------------------------------------------------------------------------------------------
// Artifacts: listed through the fake GitHub, nothing downloaded.

fn check_artifacts(fake: &FakeGitHub, args: &[&str]) -> Output {
    let mut cmd = dbbackup();
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    cmd.env("DBBACKUP_RETRY_BUDGET_SECS", "4")
        .args(["check", "--artifacts"])
        .args(args)
        .output()
        .unwrap()
}

fn artifact_name(prefix: &str, age: Duration) -> String {
    format!(
        "{prefix}-{}",
        naming::stamp(OffsetDateTime::now_utc() - age)
    )
}

#[test]
fn artifacts_are_checked_by_the_time_in_their_name() {
    let fake = FakeGitHub::start();
    let none = check_artifacts(&fake, &["--name", "shop", "--max-age", "26h"]);
    assert!(error_line(&none).contains("no backup named shop in GitHub artifacts of octo/shop"));

    // Uploaded a minute ago, made two days ago (a re-upload): stale.
    let old = artifact_name("shop", hours(48));
    fake.seed(&old, 60, false, 1, vec![0; 2048]);
    let stale = check_artifacts(&fake, &["--name", "shop", "--max-age", "26h"]);
    let line = error_line(&stale);
    assert!(
        line.contains(&format!("newest backup {old} is 2d old")),
        "{line}"
    );

    let fresh = artifact_name("shop", hours(3));
    fake.seed(&fresh, 30, false, 2, vec![0; 2048]);
    let out = check_artifacts(&fake, &["--name", "shop", "--max-age", "26h", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backups"][0]["newest"], fresh.as_str());
    assert!(json["backups"][0]["bytes"].as_u64().unwrap() > 0);
    assert!(
        json["backups"][0]["store"]
            .as_str()
            .unwrap()
            .starts_with("GitHub artifacts of")
    );

    // Listing is all it does, and the token never shows.
    let requests = fake.requests();
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "{:?}",
        requests
            .iter()
            .map(|r| (&r.method, &r.path))
            .collect::<Vec<_>>()
    );
    for out in [&none, &stale, &out] {
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
        assert!(!all.contains(TOKEN), "{all}");
    }
}

#[test]
fn a_fresh_artifact_from_a_fork_does_not_count() {
    let fake = FakeGitHub::start();
    fake.seed(
        &artifact_name("shop", hours(40)),
        40 * 3600,
        false,
        1,
        vec![0; 100],
    );
    fake.seed_from_fork(&artifact_name("shop", hours(1)), 3600, 2, vec![0; 100]);
    let out = check_artifacts(&fake, &["--name", "shop", "--max-age", "26h"]);
    assert!(error_line(&out).contains("older than --max-age 26h"));
}

#[test]
fn artifacts_need_a_name() {
    let fake = FakeGitHub::start();
    let out = check_artifacts(&fake, &["--max-age", "26h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// An object store through the same trait: a stale backup in a bucket fails, a fresh one
/// passes, and the secret key never shows.
#[test]
fn a_bucket_is_checked_like_a_directory() {
    let Some(moto) = crate::support::s3::Moto::start() else {
        return;
    };
    moto.bucket("backups");
    let object = |hours_ago: u64| {
        let stamp = naming::stamp(OffsetDateTime::now_utc() - hours(hours_ago));
        let name = naming::file_name(
            "app",
            &stamp,
            1,
            naming::Kind {
                ext: "sqlite",
                codec: dbbackup::archive::codec::Codec::Gzip,
                encrypted: false,
            },
        );
        moto.put_empty(&[
            format!("/backups/prod/{name}"),
            format!("/backups/prod/{name}.manifest.json"),
        ]);
        name
    };
    let check_bucket = |args: &[&str]| {
        let out = dbbackup()
            .envs(moto.env())
            .args(["check", "s3://backups/prod", "--max-age", "26h"])
            .args(args)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!all.contains(crate::support::s3::SECRET), "{all}");
        out
    };
    let old = object(30);
    let stale = check_bucket(&["--name", "app"]);
    assert!(
        error_line(&stale).contains(&format!("newest backup {old} is 1d 6h old")),
        "{}",
        stderr(&stale)
    );
    let unnamed = check_bucket(&[]);
    assert_eq!(unnamed.status.code(), Some(2), "{}", stderr(&unnamed));
    object(1);
    let fresh = check_bucket(&["--name", "app"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
}

#[test]
fn checking_a_directory_changes_nothing_in_it() {
    let dir = tempfile::tempdir().unwrap();
    plant(dir.path(), "app", hours(1), 100);
    // What a killed backup leaves: a temporary directory of a process that is gone. `backup`
    // and `prune` clean it up; a check only reads.
    let leftover = dir.path().join(".dbbackup-tmp-999999999-x");
    std::fs::create_dir(&leftover).unwrap();
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let out = check(dir.path(), &["--max-age", "26h"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(leftover.is_dir(), "check deleted something");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}
