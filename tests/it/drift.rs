//! The drift guard's sources and reports (issue 17): `--compare-to FILE`, an encrypted previous
//! manifest with and without an identity, the previous backup read from the newest artifact
//! by ranged requests, and the result as JUnit's `drift` case, a job summary section and
//! `--json`'s `drift`. The local-directory guard itself is in `backup.rs`
//! (`a_backup_that_lost_data_against_the_previous_one_is_refused`).

use std::path::Path;
use std::process::{Command, Output};

use age::secrecy::ExposeSecret;

use crate::support::fake_github::FakeGitHub;
use crate::support::restore::validate_junit;
use crate::support::{data_copy, dbbackup};

/// Chinook's InvoiceLine holds 2240 rows; this leaves 200 (a loss of 91%).
const SHRINK: &str = "PRAGMA foreign_keys = OFF; DELETE FROM InvoiceLine WHERE InvoiceLineId > 200";

fn sql(db: &Path, sql: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// `cmd` as a step of a GitHub Actions job: the output, stdout's JSON (`Null` without) and the
/// job summary.
fn in_job(dir: &Path, mut cmd: Command) -> (Output, serde_json::Value, String) {
    let summary = dir.join("summary");
    let _ = std::fs::remove_file(&summary);
    let out = cmd
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out,
        json,
        std::fs::read_to_string(&summary).unwrap_or_default(),
    )
}

fn backup(db: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = dbbackup();
    cmd.arg("backup")
        .arg(db)
        .arg("--out")
        .arg(out)
        .arg("--json")
        .args(extra);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--compare-to` a manifest from elsewhere (a fresh directory: nothing local to compare with):
/// a table that lost 91% of its rows fails with exit 5, the new backup set aside; JUnit holds a
/// failing `drift` case with expected and actual, the job summary a drift table, `--json` a
/// `drift` object. `--allow-shrink` then passes and still reports the loss.
#[test]
fn compare_to_a_shrunken_table_fails_and_reports_it_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let (first, json, _) = in_job(tmp.path(), backup(&db, &tmp.path().join("a"), &[]));
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json["drift"]["checked"], false, "{json}");
    let previous = json["manifest_path"].as_str().unwrap().to_string();
    sql(&db, SHRINK);

    let out = tmp.path().join("b");
    let junit = tmp.path().join("junit.xml");
    let args = [
        "--compare-to",
        &previous,
        "--junit",
        junit.to_str().unwrap(),
    ];
    let (refused, json, summary) = in_job(tmp.path(), backup(&db, &out, &args));
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(5), "{err}");
    assert!(
        err.contains("table InvoiceLine shrank from 2240 to 200 rows")
            && err.contains("--allow-shrink"),
        "{err}"
    );
    let drift = &json["drift"];
    assert_eq!(drift["compared_with"], previous.as_str(), "{drift}");
    assert_eq!(
        (drift["checked"].as_bool(), drift["passed"].as_bool()),
        (Some(true), Some(false))
    );
    let line = drift["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "InvoiceLine")
        .unwrap();
    assert_eq!(
        (line["before"].as_u64(), line["after"].as_u64()),
        (Some(2240), Some(200))
    );
    assert_eq!(drift["losses"][0]["what"], "table InvoiceLine", "{drift}");
    assert!(
        json["manifest"].is_object(),
        "the existing keys stay: {json}"
    );
    assert!(
        json["path"].as_str().unwrap().ends_with(".failed"),
        "set aside: {json}"
    );
    validate_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<testcase name="drift""#), "{xml}");
    assert!(
        xml.contains("table InvoiceLine\n  expected: at least 1120 rows (2240 before, at most 50% lost)\n  actual:   200 rows"),
        "{xml}"
    );
    assert!(summary.contains("#### Drift against"), "{summary}");
    assert!(
        summary.contains("| `InvoiceLine` | 2240 | 200 | -2040 |"),
        "{summary}"
    );

    let (accepted, json, _) = in_job(
        tmp.path(),
        backup(&db, &out, &["--compare-to", &previous, "--allow-shrink"]),
    );
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    assert_eq!(json["drift"]["passed"], true, "{json}");
    assert_eq!(json["drift"]["allow_shrink"], true, "{json}");
    assert!(
        !json["drift"]["losses"].as_array().unwrap().is_empty(),
        "{json}"
    );

    let missing = backup(&db, &out, &["--compare-to", "/nonexistent/x.manifest.json"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("--compare-to /nonexistent/x.manifest.json"));
}

/// An encrypted previous backup: with `--identity` its manifest is decrypted and compared (a
/// loss fails); without one the backup passes but says, as a warning, in the job summary and in
/// `--json`, that drift was NOT checked.
#[test]
fn an_encrypted_previous_backup_is_compared_only_with_an_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let out = tmp.path().join("b");
    let id = age::x25519::Identity::generate();
    let key = tmp.path().join("key.txt");
    std::fs::write(&key, id.to_string().expose_secret()).unwrap();
    let public = id.to_public().to_string();
    let sealed = ["--encrypt-to", public.as_str()];
    let (first, _, _) = in_job(tmp.path(), backup(&db, &out, &sealed));
    assert!(first.status.success(), "{}", stderr(&first));
    sql(&db, SHRINK);

    let with_key = [&sealed[..], &["--identity", key.to_str().unwrap()]].concat();
    let (refused, json, summary) = in_job(tmp.path(), backup(&db, &out, &with_key));
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("table InvoiceLine shrank"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(json["drift"]["checked"], true, "{json}");
    // The drift section of an encrypted backup's summary shows no data: no table names.
    let section = &summary[summary.find("#### Drift against").expect(&summary)..];
    let section = &section[..section.find("\n###").unwrap_or(section.len())];
    assert!(section.contains("FAILED"), "{summary}");
    assert!(!section.contains("InvoiceLine"), "{section}");

    let (passed, json, summary) = in_job(tmp.path(), backup(&db, &out, &sealed));
    let err = stderr(&passed);
    assert!(passed.status.success(), "{err}");
    assert_eq!(json["drift"]["checked"], false, "{json}");
    let reason = json["drift"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("encrypted") && reason.contains("--identity"),
        "{reason}"
    );
    assert!(
        err.contains("::warning title=drift not checked::drift NOT checked"),
        "{err}"
    );
    assert!(summary.contains("NOT checked"), "{summary}");
}

/// A job whose backup directory is new (a fresh runner) compares with the newest artifact of
/// the name, reading only its manifest by ranged requests: the fake serves far fewer bytes than
/// the artifact holds, and a shrunken table fails. A blob server that ignores `Range` is read
/// whole up to a bound (this artifact is under it), so the guard still compares.
#[test]
fn a_new_runner_compares_with_the_newest_artifact_by_ranged_reads() {
    let fake = FakeGitHub::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let job = |out: &str, extra: &[&str]| {
        let mut cmd = backup(&db, &tmp.path().join(out), &["--upload"]);
        cmd.args(extra).envs(fake.env());
        cmd.output().unwrap()
    };
    let first = job("run1", &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let artifact = fake.artifacts()[0].zip.len() as u64;
    sql(&db, SHRINK);

    let before = fake.bytes_served();
    let refused = job("run2", &[]);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(5), "{err}");
    assert!(
        err.contains("table InvoiceLine shrank from 2240 to 200 rows"),
        "{err}"
    );
    let served = fake.bytes_served() - before;
    assert!(
        served > 0 && served * 10 < artifact,
        "read {served} bytes of a {artifact}-byte artifact"
    );
    let json: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    let with = json["drift"]["compared_with"].as_str().unwrap();
    assert!(with.contains("GitHub artifacts of octo/shop"), "{with}");
    assert_eq!(fake.artifacts().len(), 1, "a failed backup is not uploaded");

    fake.set_ignore_range(true);
    let whole = job("run3", &[]);
    assert_eq!(whole.status.code(), Some(5), "{}", stderr(&whole));
    assert!(stderr(&whole).contains("table InvoiceLine shrank"));
}
