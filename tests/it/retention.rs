//! Retention by period (`--keep-daily`, `--keep-weekly`, `--keep-monthly`, `--keep-yearly`
//! beside `--keep`) through the real binary: `prune DIR` and its dry run, and `backup`
//! rotation. The rule itself is table-tested in `src/retention.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{self, data_copy};

/// Makes one real backup of chinook in `out`; returns its archive's path.
fn one_backup(db: &Path, out: &Path) -> PathBuf {
    let made = support::dbbackup()
        .args(["backup", "--json", "--out"])
        .arg(out)
        .arg(db)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let report: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    PathBuf::from(report["path"].as_str().unwrap())
}

/// Copies the backup `archive` (with its manifest) into `out` as a backup taken at each of
/// `stamps`, so that the rules have years of history to choose from.
fn seed(archive: &Path, out: &Path, stamps: &[&str]) {
    let manifest = format!("{}.manifest.json", archive.display());
    for stamp in stamps {
        let name = format!("chinook-{stamp}.sqlite.gz");
        fs::copy(archive, out.join(&name)).unwrap();
        fs::copy(&manifest, out.join(format!("{name}.manifest.json"))).unwrap();
    }
}

/// The stamps of chinook's archives in `dir`, newest first.
fn stamps(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chinook-") && n.ends_with(".sqlite.gz"))
        .map(|n| n["chinook-".len()..n.len() - ".sqlite.gz".len()].to_string())
        .collect();
    names.sort();
    names.reverse();
    names
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn prune(dir: &Path, rules: &[&str]) -> Output {
    support::dbbackup()
        .arg("prune")
        .arg(dir)
        .args(["--name", "chinook"])
        .args(rules)
        .output()
        .unwrap()
}

/// A history with several backups a day, gaps, an ISO week 53 and a leap day.
const HISTORY: [&str; 10] = [
    "20270104-090000", // Monday, 2027-W01
    "20270103-230000", // Sunday, 2026-W53
    "20270103-080000",
    "20261231-120000", // Thursday, 2026-W53
    "20261227-120000", // Sunday, 2026-W52
    "20260615-000000",
    "20240229-120000", // leap day
    "20240229-010000",
    "20240228-120000",
    "20201231-120000",
];

#[test]
fn prune_dir_by_period_lists_every_backup_in_a_dry_run_then_deletes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let made = one_backup(&db, &tmp.path().join("first"));
    let out = tmp.path().join("b");
    fs::create_dir(&out).unwrap();
    seed(&made, &out, &HISTORY);
    let rules = [
        "--keep",
        "1",
        "--keep-daily",
        "2",
        "--keep-weekly",
        "3",
        "--keep-yearly",
        "9",
    ];

    let dry = prune(&out, &[&rules[..], &["--dry-run"]].concat());
    assert!(dry.status.success(), "{}", text(&dry));
    let listing = String::from_utf8_lossy(&dry.stdout);
    let want = "\
keep    chinook-20270104-090000.sqlite.gz  (last, daily, weekly, yearly)
keep    chinook-20270103-230000.sqlite.gz  (daily, weekly)
delete  chinook-20270103-080000.sqlite.gz
keep    chinook-20261231-120000.sqlite.gz  (yearly)
keep    chinook-20261227-120000.sqlite.gz  (weekly)
delete  chinook-20260615-000000.sqlite.gz
keep    chinook-20240229-120000.sqlite.gz  (yearly)
delete  chinook-20240229-010000.sqlite.gz
delete  chinook-20240228-120000.sqlite.gz
keep    chinook-20201231-120000.sqlite.gz  (yearly)
";
    assert_eq!(listing, want);
    assert_eq!(stamps(&out), HISTORY, "a dry run deleted");

    let json = prune(&out, &[&rules[..], &["--dry-run", "--json"]].concat());
    assert!(json.status.success(), "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let backups = report["backups"].as_array().unwrap();
    assert_eq!(backups.len(), HISTORY.len());
    assert_eq!(
        backups[1]["kept_by"],
        serde_json::json!(["daily", "weekly"])
    );
    assert_eq!(backups[2]["keep"], false);
    assert_eq!(report["would_delete"].as_array().unwrap().len(), 4);

    let real = prune(&out, &[&rules[..], &["--json"]].concat());
    assert!(real.status.success(), "{}", text(&real));
    let report: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(report["deleted"].as_array().unwrap().len(), 4);
    assert_eq!(
        stamps(&out),
        [
            "20270104-090000",
            "20270103-230000",
            "20261231-120000",
            "20261227-120000",
            "20240229-120000",
            "20201231-120000",
        ]
    );
    let manifests = fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".manifest.json")
        })
        .count();
    assert_eq!(manifests, 6, "each deleted backup's manifest went with it");
}

#[test]
fn a_prune_needs_a_rule_that_keeps_something() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    fs::create_dir(&out).unwrap();
    for rules in [
        &[][..],
        &["--keep", "0"],
        &["--keep", "0", "--keep-daily", "0"],
    ] {
        let refused = prune(&out, rules);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{rules:?}: {}",
            text(&refused)
        );
        assert!(text(&refused).contains("--keep"), "{}", text(&refused));
    }
    let fine = prune(&out, &["--keep", "0", "--keep-monthly", "1"]);
    assert!(fine.status.success(), "{}", text(&fine));
}

/// `backup` rotation takes the same rules: the new backup and the newest of each of the last
/// months that have a backup stay, whatever today is.
#[test]
fn backup_rotation_keeps_by_period() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let made = one_backup(&db, &tmp.path().join("first"));
    let out = tmp.path().join("b");
    fs::create_dir(&out).unwrap();
    seed(
        &made,
        &out,
        &[
            "20200315-000000",
            "20200301-000000",
            "20200210-000000",
            "20200105-000000",
        ],
    );
    let run = support::dbbackup()
        .args([
            "backup",
            "--json",
            "--keep-daily",
            "1",
            "--keep-monthly",
            "3",
        ])
        .arg("--out")
        .arg(&out)
        .arg(&db)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        report["pruned"],
        serde_json::json!([
            "chinook-20200301-000000.sqlite.gz",
            "chinook-20200105-000000.sqlite.gz"
        ])
    );
    let left = stamps(&out);
    assert_eq!(left.len(), 3, "{left:?}");
    assert_eq!(&left[1..], ["20200315-000000", "20200210-000000"]);
}
