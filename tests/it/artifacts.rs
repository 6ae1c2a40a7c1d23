//! GitHub Actions artifacts: the real binary against a local fake of GitHub (see
//! tests/it/support/FAKE_SERVER.md for where each behaviour of the fake comes from).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::support::fake_github::{self, FakeGitHub, Fault, Route, SIG, TOKEN};

/// The binary with the job environment of `fake`, and a short retry budget so that giving up
/// takes seconds, not minutes.
fn dbbackup(fake: &FakeGitHub) -> Command {
    let mut cmd = Command::from_std(crate::support::dbbackup());
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    cmd.env("DBBACKUP_RETRY_BUDGET_SECS", "4")
        .env("DBBACKUP_RETRY_BASE_MS", "20");
    cmd
}

/// A small SQLite database called `shop`, so backups are `shop-<stamp>.sqlite.gz`.
fn shop_db(dir: &Path) -> PathBuf {
    let path = dir.join("shop.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO item(name, price) SELECT 'item ' || i, i * 1.5 FROM n;",
    )
    .unwrap();
    path
}

/// A zip of one small file: the content of seeded artifacts.
fn small_zip(name: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"seeded").unwrap();
    zip.finish().unwrap().into_inner()
}

/// `artifact download --name shop --latest --out OUT`.
fn download_latest(fake: &FakeGitHub, out: &Path) -> std::process::Output {
    dbbackup(fake)
        .args([
            "artifact", "download", "--name", "shop", "--latest", "--out",
        ])
        .arg(out)
        .output()
        .unwrap()
}

/// `prune --artifacts --name shop --keep N`.
fn prune_shop(fake: &FakeGitHub, keep: usize) -> std::process::Output {
    dbbackup(fake)
        .args(["prune", "--artifacts", "--name", "shop", "--keep"])
        .arg(keep.to_string())
        .output()
        .unwrap()
}

fn stamp_name(prefix: &str, n: u64) -> String {
    format!("{prefix}-20261101-{:06}", 100_000 + n)
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No secret ever reaches the output: the GitHub token, the runtime token, a URL signature.
fn assert_no_secrets(text: &str) {
    for secret in [TOKEN, &fake_github::runtime_token(), SIG, "fakeSig"] {
        assert!(
            !text.contains(secret),
            "a secret leaked into the output:\n{text}"
        );
    }
}

fn names(fake: &FakeGitHub) -> Vec<String> {
    let mut names: Vec<String> = fake.artifacts().into_iter().map(|a| a.name).collect();
    names.sort();
    names
}

fn count(fake: &FakeGitHub, method: &str, route_prefix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(route_prefix))
        .count()
}

const LIST_PATH: &str = "/repos/octo/shop/actions/artifacts";
const TWIRP: &str = "/twirp/github.actions.results.api.v1.ArtifactService/";

#[test]
fn upload_list_download_round_trip() {
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let out = dir.path().join("backups");

    let backup = dbbackup(&fake)
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--upload", "--retention-days", "7", "--json"])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", output_text(&backup));
    assert_no_secrets(&output_text(&backup));
    let json: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let archive = PathBuf::from(json["path"].as_str().unwrap());
    let manifest = PathBuf::from(json["manifest_path"].as_str().unwrap());
    let name = json["artifact"]["name"].as_str().unwrap().to_string();
    assert!(
        name.starts_with("shop-") && !name.ends_with(".gz"),
        "{name}"
    );

    // The zip a user would download from the run's page holds exactly the pair.
    let stored = fake.artifacts();
    assert_eq!(stored.len(), 1);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(stored[0].zip.clone())).unwrap();
    let mut entries: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    entries.sort();
    let archive_name = archive.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        entries,
        vec![
            archive_name.clone(),
            format!("{archive_name}.manifest.json")
        ]
    );
    // Retention reached the service as an expiry about 7 days ahead.
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/CreateArtifact"))
        .unwrap();
    let expires = create.json()["expires_at"].as_str().unwrap().to_string();
    let expires =
        time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_hours() as f64 / 24.0;
    assert!((6.9..=7.01).contains(&days), "{days}");

    let list = dbbackup(&fake)
        .args(["artifact", "list", "--name", "shop", "--json"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", output_text(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], name.as_str());
    assert_eq!(listed[0]["expired"], false);
    assert_eq!(listed[0]["run_id"], fake_github::RUN_ID);

    let dl = dir.path().join("downloaded");
    let download = dbbackup(&fake)
        .args(["artifact", "download", "--name", "shop", "--latest"])
        .args(["--out", dl.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(download.status.success(), "{}", output_text(&download));
    assert_no_secrets(&output_text(&download));
    assert_eq!(
        std::fs::read(dl.join(&archive_name)).unwrap(),
        std::fs::read(&archive).unwrap()
    );
    assert_eq!(
        std::fs::read(dl.join(format!("{archive_name}.manifest.json"))).unwrap(),
        std::fs::read(&manifest).unwrap()
    );
    // Downloaded backups are private, as the backups themselves.
    for file in std::fs::read_dir(&dl).unwrap() {
        let path = file.unwrap().path();
        let mode = std::os::unix::fs::PermissionsExt::mode(&path.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    // The zip came from the signed URL without the GitHub token (the fake refuses it with one).
    let fetched = fake
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/download/"))
        .unwrap();
    assert!(!fetched.headers.contains_key("authorization"));
    // What was downloaded restore-tests as it is, directory and all.
    let tested = dbbackup(&fake)
        .args(["restore-test", dl.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(tested.status.success(), "{}", output_text(&tested));
    assert!(output_text(&tested).contains("restore OK"));
}

#[test]
fn prune_keeps_the_newest_of_the_name_and_nothing_else() {
    let fake = FakeGitHub::start();
    for n in 0..10 {
        fake.seed(
            &stamp_name("shop", n),
            1000 - n * 10,
            false,
            7,
            small_zip("a"),
        );
    }
    for other in ["shop-staging", "shopping", "shop_v2"] {
        fake.seed(&stamp_name(other, 1), 5, false, 7, small_zip("a"));
    }

    let dry = dbbackup(&fake)
        .args([
            "prune",
            "--artifacts",
            "--name",
            "shop",
            "--keep",
            "3",
            "--dry-run",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", output_text(&dry));
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["would_delete"].as_array().unwrap().len(), 7);
    assert_eq!(fake.artifacts().len(), 13);
    assert_eq!(count(&fake, "DELETE", LIST_PATH), 0);

    let prune = dbbackup(&fake)
        .args(["prune", "--artifacts", "--name", "shop", "--keep", "3"])
        .output()
        .unwrap();
    assert!(prune.status.success(), "{}", output_text(&prune));
    let mut expected: Vec<String> = (7..10).map(|n| stamp_name("shop", n)).collect();
    expected.extend(["shop-staging", "shop_v2", "shopping"].map(|o| stamp_name(o, 1)));
    expected.sort();
    assert_eq!(names(&fake), expected);
    assert_eq!(count(&fake, "DELETE", LIST_PATH), 7);
}

#[test]
fn lists_every_page_past_100() {
    let fake = FakeGitHub::start();
    for n in 0..130 {
        fake.seed(&stamp_name("shop", n), 10_000 - n, false, 7, small_zip("a"));
    }
    for n in 0..120 {
        fake.seed(&stamp_name("other", n), 5_000 - n, false, 7, small_zip("a"));
    }
    let list = dbbackup(&fake)
        .args(["artifact", "list", "--name", "shop", "--json"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", output_text(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 130);
    assert_eq!(listed[0]["name"], stamp_name("shop", 129).as_str());
    assert_eq!(listed[129]["name"], stamp_name("shop", 0).as_str());
    let pages: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path == LIST_PATH)
        .map(|r| r.query["page"].clone())
        .collect();
    assert_eq!(pages, ["1", "2", "3"]);
}

#[test]
fn retries_server_errors_then_succeeds() {
    let fake = FakeGitHub::start();
    fake.seed(&stamp_name("shop", 1), 10, false, 7, small_zip("a"));
    fake.fail_next(Route::List, Fault::Status(500), 2);
    fake.fail_next(Route::List, Fault::Status(502), 1);
    let list = dbbackup(&fake)
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", output_text(&list));
    assert!(String::from_utf8_lossy(&list.stdout).contains(&stamp_name("shop", 1)));
    assert_eq!(count(&fake, "GET", LIST_PATH), 4);

    // The upload side retries the same way, on the artifact service and on blob storage.
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    fake.fail_next(Route::Create, Fault::Status(503), 2);
    fake.fail_next(Route::BlobBlock, Fault::Status(500), 1);
    let backup = dbbackup(&fake)
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ])
        .arg("--upload")
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", output_text(&backup));
    assert_eq!(count(&fake, "POST", &format!("{TWIRP}CreateArtifact")), 3);
    assert_eq!(fake.artifacts().len(), 2);
}

#[test]
fn gives_up_after_the_retry_budget() {
    let fake = FakeGitHub::start();
    fake.fail_next(Route::List, Fault::Status(503), 10_000);
    let started = Instant::now();
    let list = dbbackup(&fake)
        .env("DBBACKUP_RETRY_BUDGET_SECS", "1")
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(8), "{}", output_text(&list));
    assert!(
        output_text(&list).contains("gave up"),
        "{}",
        output_text(&list)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(count(&fake, "GET", LIST_PATH) > 2);
}

#[test]
fn honours_retry_after_on_429() {
    let fake = FakeGitHub::start();
    fake.seed(&stamp_name("shop", 1), 10, false, 7, small_zip("a"));
    fake.fail_next(Route::List, Fault::TooMany { retry_after: 1 }, 1);
    let started = Instant::now();
    let list = dbbackup(&fake)
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", output_text(&list));
    assert!(started.elapsed() >= Duration::from_secs(1), "did not wait");
    assert_eq!(count(&fake, "GET", LIST_PATH), 2);

    // A wait longer than the budget ends at once with an error that says why.
    fake.fail_next(Route::List, Fault::TooMany { retry_after: 3600 }, 1);
    let started = Instant::now();
    let list = dbbackup(&fake)
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(8));
    assert!(
        output_text(&list).contains("asked to wait 3600s"),
        "{}",
        output_text(&list)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn waits_out_secondary_and_primary_rate_limits() {
    let fake = FakeGitHub::start();
    for n in 0..3 {
        fake.seed(&stamp_name("shop", n), 100 - n, false, 7, small_zip("a"));
    }
    fake.fail_next(Route::Delete, Fault::Secondary { retry_after: 1 }, 1);
    fake.fail_next(Route::List, Fault::Primary { reset_in: 1 }, 1);
    let started = Instant::now();
    let prune = dbbackup(&fake)
        .args(["prune", "--artifacts", "--name", "shop", "--keep", "1"])
        .output()
        .unwrap();
    assert!(prune.status.success(), "{}", output_text(&prune));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(names(&fake), vec![stamp_name("shop", 2)]);
    assert_eq!(count(&fake, "DELETE", LIST_PATH), 3);
}

#[test]
fn skips_expired_artifacts() {
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    fake.seed(
        &stamp_name("shop", 1),
        500,
        false,
        7,
        small_zip("older.txt"),
    );
    fake.seed(
        &stamp_name("shop", 2),
        10,
        true,
        8,
        small_zip("newest-expired.txt"),
    );

    let download = download_latest(&fake, &dir.path().join("dl"));
    assert!(download.status.success(), "{}", output_text(&download));
    assert!(dir.path().join("dl/older.txt").exists());
    assert!(!dir.path().join("dl/newest-expired.txt").exists());

    let list = dbbackup(&fake)
        .args(["artifact", "list", "--name", "shop", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["expired"], true);
    assert_eq!(listed[1]["expired"], false);

    // Expired artifacts do not use up kept places, and only an expired one is no download.
    let prune = prune_shop(&fake, 1);
    assert!(prune.status.success());
    assert_eq!(fake.artifacts().len(), 2);
    let download = dbbackup(&fake)
        .args(["artifact", "download", "--name", "shop", "--run", "8"])
        .args(["--out", dir.path().join("dl2").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(download.status.code(), Some(8));
    assert!(output_text(&download).contains("no unexpired artifact"));
}

/// A pull request from a fork can upload artifacts under any name, listed with the
/// repository's own. Named like backups and newer than them, they are never downloaded as the
/// latest backup and never push the real ones out of the kept N.
#[test]
fn artifacts_from_forks_are_never_backups() {
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    for (n, age, run) in [(1, 500, 7), (2, 400, 8)] {
        let file = format!("real-{n}.txt");
        fake.seed(&stamp_name("shop", n), age, false, run, small_zip(&file));
    }
    for n in 3..6 {
        fake.seed_from_fork(&stamp_name("shop", n), 10, 9, small_zip("planted.txt"));
    }

    let download = download_latest(&fake, &dir.path().join("dl"));
    assert!(download.status.success(), "{}", output_text(&download));
    assert!(dir.path().join("dl/real-2.txt").exists());
    assert!(!dir.path().join("dl/planted.txt").exists());
    assert!(
        output_text(&download).contains("pull requests from forks"),
        "{}",
        output_text(&download)
    );

    let prune = prune_shop(&fake, 2);
    assert!(prune.status.success(), "{}", output_text(&prune));
    let kept = names(&fake);
    for real in [stamp_name("shop", 1), stamp_name("shop", 2)] {
        assert!(kept.contains(&real), "{real} was pruned: {kept:?}");
    }
    // Nor are they deleted: they are not this repository's to manage.
    assert_eq!(kept.len(), 5, "{kept:?}");
}

#[test]
fn missing_or_refused_tokens_say_which_permissions_to_grant() {
    let fake = FakeGitHub::start();
    fake.seed(&stamp_name("shop", 1), 100, false, 7, small_zip("a"));
    fake.seed(&stamp_name("shop", 2), 10, false, 7, small_zip("a"));

    let missing = dbbackup(&fake)
        .env_remove("GITHUB_TOKEN")
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    let wrong = dbbackup(&fake)
        .env("GITHUB_TOKEN", "ghs_wrong_token_value")
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    fake.set_read_only(true);
    let read_only = dbbackup(&fake)
        .args(["prune", "--artifacts", "--name", "shop", "--keep", "1"])
        .output()
        .unwrap();
    for (case, out) in [
        ("missing", &missing),
        ("wrong", &wrong),
        ("read-only", &read_only),
    ] {
        let text = output_text(out);
        assert_eq!(out.status.code(), Some(8), "{case}: {text}");
        assert!(
            text.contains("actions: write") && text.contains("contents: read"),
            "{case}: {text}"
        );
        assert!(text.contains("permissions:"), "{case}: {text}");
        // One line, not a YAML block printed as literal `\n` sequences.
        assert!(!text.contains("\\n"), "{case}: {text}");
        assert_no_secrets(&text);
        assert!(!text.contains("ghs_wrong_token_value"), "{case}: {text}");
    }
    assert_eq!(fake.artifacts().len(), 2, "nothing deleted");

    // Outside a job (no runtime token) an upload says what it needs before any backup is made.
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let out = dir.path().join("b");
    let upload = dbbackup(&fake)
        .env_remove("ACTIONS_RUNTIME_TOKEN")
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--upload",
        ])
        .output()
        .unwrap();
    assert_eq!(upload.status.code(), Some(8));
    assert!(output_text(&upload).contains("ACTIONS_RUNTIME_TOKEN"));
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn a_failed_finalize_prunes_nothing() {
    let fake = FakeGitHub::start();
    for n in 0..5 {
        fake.seed(&stamp_name("shop", n), 1000 - n, false, 7, small_zip("a"));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let out = dir.path().join("b");
    // An earlier local backup, which --keep 1 would rotate away after a successful upload.
    let first = dbbackup(&fake)
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(first.status.success());
    fake.fail_next(Route::Finalize, Fault::Status(500), 10_000);
    let failed = dbbackup(&fake)
        .env("DBBACKUP_RETRY_BUDGET_SECS", "1")
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--upload", "--keep", "1"])
        .output()
        .unwrap();
    let text = output_text(&failed);
    assert_eq!(failed.status.code(), Some(8), "{text}");
    assert!(
        text.contains("FinalizeArtifact") && text.contains("nothing was pruned"),
        "{text}"
    );
    assert_no_secrets(&text);
    assert_eq!(fake.artifacts().len(), 5);
    assert_eq!(count(&fake, "DELETE", LIST_PATH), 0);
    let local: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sqlite.gz"))
        .collect();
    assert_eq!(local.len(), 2, "both local backups are kept");
}

#[test]
fn backup_upload_keep_prunes_after_the_upload_is_final() {
    let fake = FakeGitHub::start();
    for n in 0..4 {
        fake.seed(&stamp_name("shop", n), 1000 - n, false, 7, small_zip("a"));
    }
    fake.seed(&stamp_name("shopfront", 1), 1, false, 7, small_zip("a"));
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let backup = dbbackup(&fake)
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ])
        .args(["--upload", "--keep", "2", "--json"])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", output_text(&backup));
    let json: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let new_name = json["artifact"]["name"].as_str().unwrap().to_string();
    let mut expected = vec![new_name, stamp_name("shop", 3), stamp_name("shopfront", 1)];
    expected.sort();
    assert_eq!(names(&fake), expected);
    let requests = fake.requests();
    let finalized = requests
        .iter()
        .position(|r| r.path.ends_with("/FinalizeArtifact"))
        .unwrap();
    let first_delete = requests.iter().position(|r| r.method == "DELETE").unwrap();
    assert!(finalized < first_delete);
}

#[test]
fn refuses_artifacts_that_unpack_outside_the_directory() {
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    fake.seed(
        &stamp_name("shop", 1),
        10,
        false,
        7,
        small_zip("../escaped.txt"),
    );
    let out = dir.path().join("dl");
    let download = dbbackup(&fake)
        .args([
            "artifact",
            "download",
            "--name",
            "shop",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        download.status.code(),
        Some(6),
        "{}",
        output_text(&download)
    );
    assert!(output_text(&download).contains("outside the output directory"));
    assert!(!dir.path().join("escaped.txt").exists());
}

/// The directory holding the official client's script, when node and the npm package are
/// installed (`npm install --prefix tests/node`); `None` prints how to enable the test, unless
/// DBBACKUP_REQUIRE_NODE=1 or CI=true makes their absence a failure.
fn official_client() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let package_ok = dir
        .join("node_modules/@actions/artifact/package.json")
        .exists();
    if node_ok && package_ok {
        return Some(dir);
    }
    let notice = "official-client check skipped: needs node and `npm install --prefix tests/node`";
    let required = std::env::var("DBBACKUP_REQUIRE_NODE").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true");
    assert!(!required, "{notice}");
    eprintln!("NOTICE: {notice}");
    None
}

fn node(fake: &FakeGitHub, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("node");
    cmd.current_dir(dir).arg("official-client.mjs").args(args);
    for var in fake_github::JOB_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Which endpoint a recorded request went to, for comparing request sequences.
fn kind(r: &fake_github::Recorded) -> String {
    if let Some(method) = r.path.strip_prefix(TWIRP) {
        return format!("{} twirp {method}", r.method);
    }
    if r.path.starts_with("/blob/") {
        let comp = r.query.get("comp").cloned().unwrap_or_default();
        return format!("{} blob comp={comp}", r.method);
    }
    if r.path.starts_with("/download/") {
        return format!("{} signed download", r.method);
    }
    let id_free: Vec<&str> = r
        .path
        .split('/')
        .map(|p| {
            if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() {
                "{id}"
            } else {
                p
            }
        })
        .collect();
    format!("{} {}", r.method, id_free.join("/"))
}

/// The shape of a JSON body: each field and the JSON type of its value.
fn shape(body: &serde_json::Value) -> Vec<(String, &'static str)> {
    let mut fields: Vec<(String, &'static str)> = body
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let t = match v {
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Null => "null",
                _ => "object",
            };
            (k.clone(), t)
        })
        .collect();
    fields.sort();
    fields
}

fn query_keys(r: &fake_github::Recorded) -> Vec<String> {
    r.query.keys().cloned().collect()
}

fn find<'a>(requests: &'a [fake_github::Recorded], wanted: &str) -> &'a fake_github::Recorded {
    requests
        .iter()
        .find(|r| kind(r) == wanted)
        .unwrap_or_else(|| panic!("no {wanted} request"))
}

/// The fake is faithful to what the official client does, and dbbackup sends what it sends:
/// the official `@actions/artifact` uploads to the fake and downloads dbbackup's artifact;
/// dbbackup uploads and downloads the official client's artifact; the requests of both agree
/// in endpoints, order, JSON fields and types, and the headers that matter.
#[test]
fn official_client_agrees_with_dbbackup() {
    let Some(node_dir) = official_client() else {
        return;
    };
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let out = dir.path().join("b");
    let made = dbbackup(&fake)
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", output_text(&made));
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let archive = PathBuf::from(made["path"].as_str().unwrap());
    let manifest = PathBuf::from(made["manifest_path"].as_str().unwrap());
    let originals = [
        std::fs::read(&archive).unwrap(),
        std::fs::read(&manifest).unwrap(),
    ];
    let file_names = [archive.file_name().unwrap(), manifest.file_name().unwrap()];

    fake.clear_requests();
    let up = node(
        &fake,
        &node_dir,
        &[
            "upload",
            "node-shop",
            out.to_str().unwrap(),
            archive.to_str().unwrap(),
            manifest.to_str().unwrap(),
        ],
    );
    assert!(
        up.status.success(),
        "official client upload: {}",
        output_text(&up)
    );
    let theirs = fake.requests();

    fake.clear_requests();
    let ours_out = dbbackup(&fake)
        .args(["artifact", "upload", archive.to_str().unwrap()])
        .args(["--name", "dbbackup-shop", "--retention-days", "7", "--json"])
        .output()
        .unwrap();
    assert!(ours_out.status.success(), "{}", output_text(&ours_out));
    let ours = fake.requests();

    let sequence = |reqs: &[fake_github::Recorded]| {
        let mut kinds: Vec<String> = reqs.iter().map(kind).collect();
        kinds.dedup(); // one block or several, depending on size
        kinds
    };
    assert_eq!(sequence(&ours), sequence(&theirs));
    assert_eq!(
        sequence(&ours),
        [
            "POST twirp CreateArtifact",
            "PUT blob comp=block",
            "PUT blob comp=blocklist",
            "POST twirp FinalizeArtifact"
        ]
    );
    for twirp in ["POST twirp CreateArtifact", "POST twirp FinalizeArtifact"] {
        let (a, b) = (find(&ours, twirp), find(&theirs, twirp));
        assert_eq!(shape(&a.json()), shape(&b.json()), "{twirp} fields");
        assert_eq!(
            a.headers["authorization"], b.headers["authorization"],
            "{twirp}"
        );
        assert_eq!(
            a.headers["content-type"].split(';').next(),
            b.headers["content-type"].split(';').next(),
            "{twirp}"
        );
    }
    let (a, b) = (
        find(&ours, "POST twirp CreateArtifact").json(),
        find(&theirs, "POST twirp CreateArtifact").json(),
    );
    for field in [
        "workflow_run_backend_id",
        "workflow_job_run_backend_id",
        "mime_type",
        "version",
    ] {
        assert_eq!(a[field], b[field], "CreateArtifact {field}");
    }
    let (a, b) = (
        find(&ours, "POST twirp FinalizeArtifact").json(),
        find(&theirs, "POST twirp FinalizeArtifact").json(),
    );
    assert!(a["hash"].as_str().unwrap().starts_with("sha256:"));
    assert!(b["hash"].as_str().unwrap().starts_with("sha256:"));
    for blob in ["PUT blob comp=block", "PUT blob comp=blocklist"] {
        let (a, b) = (find(&ours, blob), find(&theirs, blob));
        assert_eq!(query_keys(a), query_keys(b), "{blob} query");
        assert!(
            !a.headers.contains_key("authorization") && !b.headers.contains_key("authorization")
        );
        assert!(a.headers.contains_key("x-ms-version") && b.headers.contains_key("x-ms-version"));
        assert_eq!(
            a.headers.get("content-type"),
            b.headers.get("content-type"),
            "{blob}"
        );
    }
    let (a, b) = (
        find(&ours, "PUT blob comp=blocklist"),
        find(&theirs, "PUT blob comp=blocklist"),
    );
    assert_eq!(
        a.headers.get("x-ms-blob-content-type"),
        b.headers.get("x-ms-blob-content-type")
    );
    for commit in [a, b] {
        let xml = String::from_utf8_lossy(&commit.body);
        assert!(xml.contains("<BlockList><Latest>"), "{xml}");
    }

    // Each downloads the other's artifact; both unpack to the backup and its manifest.
    let artifacts = fake.artifacts();
    let id_of = |name: &str| {
        artifacts
            .iter()
            .find(|a| a.name.starts_with(name))
            .unwrap()
            .id
    };
    fake.clear_requests();
    let node_dl = dir.path().join("node-dl");
    let down = node(
        &fake,
        &node_dir,
        &[
            "download",
            &id_of("dbbackup-shop").to_string(),
            node_dl.to_str().unwrap(),
        ],
    );
    assert!(
        down.status.success(),
        "official client download: {}",
        output_text(&down)
    );
    let theirs = fake.requests();
    fake.clear_requests();
    let our_dl = dir.path().join("our-dl");
    let ours_down = dbbackup(&fake)
        .args([
            "artifact",
            "download",
            "--name",
            "node-shop",
            "--out",
            our_dl.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(ours_down.status.success(), "{}", output_text(&ours_down));
    let ours = fake.requests();
    for dl in [&node_dl, &our_dl] {
        for (name, original) in file_names.iter().zip(&originals) {
            assert_eq!(
                &std::fs::read(dl.join(name)).unwrap(),
                original,
                "{}",
                dl.display()
            );
        }
    }
    let list = find(&ours, "GET /repos/octo/shop/actions/artifacts");
    assert_eq!(list.headers["accept"], "application/vnd.github+json");
    assert_eq!(list.headers["x-github-api-version"], "2022-11-28");
    let zip_get = "GET /repos/octo/shop/actions/artifacts/{id}/zip";
    for reqs in [&ours, &theirs] {
        let kinds: Vec<String> = reqs.iter().map(kind).collect();
        let at = kinds
            .iter()
            .position(|k| k == zip_get)
            .expect("zip endpoint");
        assert_eq!(kinds[at + 1], "GET signed download");
        assert!(!reqs[at + 1].headers.contains_key("authorization"));
    }
    assert_no_secrets(&output_text(&ours_out));
    assert_no_secrets(&output_text(&ours_down));
}

#[test]
fn prune_of_a_directory_uses_the_same_rule() {
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let out = dir.path().join("b");
    for _ in 0..3 {
        let made = dbbackup(&fake)
            .args([
                "backup",
                db.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", output_text(&made));
    }
    let prune = dbbackup(&fake)
        .args([
            "prune",
            out.to_str().unwrap(),
            "--name",
            "shop",
            "--keep",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(prune.status.success(), "{}", output_text(&prune));
    let report: serde_json::Value = serde_json::from_slice(&prune.stdout).unwrap();
    assert_eq!(report["deleted"].as_array().unwrap().len(), 2);
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "one archive and its manifest: {left:?}");
    assert!(
        fake.requests().is_empty(),
        "a local prune never calls GitHub"
    );
}

#[test]
fn enterprise_server_api_root_keeps_its_path_across_pages() {
    let fake = FakeGitHub::start();
    for n in 0..120 {
        fake.seed(&stamp_name("shop", n), 1000 - n, false, 7, small_zip("a"));
    }
    let ghes_root = format!("{}{}", fake.url, fake_github::GHES_PREFIX);
    let dir = tempfile::tempdir().unwrap();
    let download = dbbackup(&fake)
        .env("GITHUB_API_URL", &ghes_root)
        .args(["artifact", "download", "--name", "shop", "--latest"])
        .args(["--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(download.status.success(), "{}", output_text(&download));
    let requests = fake.requests();
    let rest: Vec<&str> = requests
        .iter()
        .filter(|r| !r.path.contains("/download/"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(rest.len(), 3, "two pages and the zip: {rest:?}");
    assert!(
        rest.iter()
            .all(|p| p.starts_with("/api/v3/repos/octo/shop/")),
        "{rest:?}"
    );
}

/// Backups larger than one 8 MiB block go up in several blocks, committed in order.
#[test]
fn uploads_large_backups_in_blocks() {
    let fake = FakeGitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("big-20261125-120000.sqlite.gz");
    let mut data = Vec::with_capacity(17 << 20);
    let mut x: u32 = 1;
    while data.len() < (17 << 20) + 5 {
        // An incompressible pattern, so the zip stays larger than two blocks.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&archive, &data).unwrap();
    std::fs::write(
        dir.path()
            .join("big-20261125-120000.sqlite.gz.manifest.json"),
        b"{}",
    )
    .unwrap();
    let upload = dbbackup(&fake)
        .args(["artifact", "upload", archive.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(upload.status.success(), "{}", output_text(&upload));
    let blocks = fake
        .requests()
        .iter()
        .filter(|r| r.query.get("comp").map(String::as_str) == Some("block"))
        .count();
    assert_eq!(blocks, 3);
    let stored = fake.artifacts();
    assert_eq!(stored[0].name, "big-20261125-120000");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(stored[0].zip.clone())).unwrap();
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut zip.by_name("big-20261125-120000.sqlite.gz").unwrap(),
        &mut unpacked,
    )
    .unwrap();
    assert!(unpacked == data, "the archive came back different");
}

#[test]
fn a_partial_prune_names_what_failed_and_deletes_only_what_it_should() {
    let fake = FakeGitHub::start();
    for n in 0..5 {
        fake.seed(&stamp_name("shop", n), 1000 - n, false, 7, small_zip("a"));
    }
    fake.seed(&stamp_name("shopfront", 1), 2000, false, 7, small_zip("a"));
    // The first delete (the newest past the kept two: shop #2) is refused for good.
    fake.fail_next(Route::Delete, Fault::Status(422), 1);
    let prune = dbbackup(&fake)
        .args(["prune", "--artifacts", "--name", "shop", "--keep", "2"])
        .output()
        .unwrap();
    let text = output_text(&prune);
    assert_eq!(prune.status.code(), Some(8), "{text}");
    assert!(
        text.contains("deleted 2 backup(s) but failed on 1"),
        "{text}"
    );
    assert!(text.contains(&stamp_name("shop", 2)), "{text}");
    let mut expected = vec![
        stamp_name("shop", 2),
        stamp_name("shop", 3),
        stamp_name("shop", 4),
        stamp_name("shopfront", 1),
    ];
    expected.sort();
    assert_eq!(names(&fake), expected);
}

/// Gitea's and Forgejo's artifact service answers in protobuf JSON with the lowerCamelCase
/// names (`signedUploadUrl`, `artifactId`), which protobuf JSON readers accept as well as the
/// proto names GitHub sends: a backup uploads to it as it does to GitHub.
#[test]
fn uploads_to_a_service_answering_with_camel_case_names() {
    let fake = FakeGitHub::start();
    fake.set_camel_case_answers(true);
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let out = dir.path().join("backups");

    let backup = dbbackup(&fake)
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--upload", "--json"])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", output_text(&backup));
    assert_no_secrets(&output_text(&backup));
    let json: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let archive = PathBuf::from(json["path"].as_str().unwrap());

    // The zip reached the signed URL of the camelCase answer and was finalized: the service
    // holds it, and the id reported is the one its camelCase `artifactId` gave.
    assert_eq!(
        count(&fake, "PUT", "/blob/"),
        2,
        "one block and the block list"
    );
    assert_eq!(count(&fake, "POST", &format!("{TWIRP}FinalizeArtifact")), 1);
    let stored = fake.artifacts();
    assert_eq!(stored.len(), 1);
    assert_eq!(json["artifact"]["id"], stored[0].id);
    assert_eq!(json["artifact"]["name"], stored[0].name.as_str());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(stored[0].zip.clone())).unwrap();
    let archive_name = archive.file_name().unwrap().to_str().unwrap();
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(archive_name).unwrap(), &mut unpacked).unwrap();
    assert!(
        unpacked == std::fs::read(&archive).unwrap(),
        "the archive came back different"
    );

    // The official client takes the fake's camelCase answers too, so they are what a protobuf
    // JSON reader reads, not a spelling only dbbackup accepts.
    let Some(node_dir) = official_client() else {
        return;
    };
    let manifest = json["manifest_path"].as_str().unwrap();
    let up = node(
        &fake,
        &node_dir,
        &[
            "upload",
            "node-shop",
            out.to_str().unwrap(),
            archive.to_str().unwrap(),
            manifest,
        ],
    );
    assert!(
        up.status.success(),
        "official client upload: {}",
        output_text(&up)
    );
    assert!(fake.artifacts().iter().any(|a| a.name == "node-shop"));
}

/// From a laptop there is no GITHUB_REPOSITORY: `--repo OWNER/REPO` names the repository, and
/// without either the error says to pass it.
#[test]
fn artifact_commands_take_the_repository_from_repo() {
    let fake = FakeGitHub::start();
    fake.seed("shop-20260101-000000", 10, false, 1, small_zip("x"));
    let list = dbbackup(&fake)
        .env_remove("GITHUB_REPOSITORY")
        .args(["artifact", "list", "--name", "shop", "--json"])
        .args([
            "--repo",
            &format!("{}/{}", fake_github::OWNER, fake_github::REPO),
        ])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", output_text(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    let missing = dbbackup(&fake)
        .env_remove("GITHUB_REPOSITORY")
        .args(["artifact", "list", "--name", "shop"])
        .output()
        .unwrap();
    let text = output_text(&missing);
    assert_eq!(missing.status.code(), Some(2), "{text}");
    assert!(text.contains("--repo OWNER/REPO"), "{text}");
}

/// A period rule that keeps backups longer than artifacts live is warned about in the log and
/// the job summary, by `prune --artifacts` and `backup --upload`; one that fits is not.
#[test]
fn a_period_rule_outliving_the_artifacts_is_warned_about() {
    let fake = FakeGitHub::start();
    fake.seed(&stamp_name("shop", 1), 100, false, 7, small_zip("a"));
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let in_job = |days: &str| {
        let mut cmd = dbbackup(&fake);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_RETENTION_DAYS", days);
        cmd
    };
    let prune = |monthly: &str, days: &str| {
        let _ = std::fs::remove_file(&summary);
        let out = in_job(days)
            .args(["prune", "--artifacts", "--name", "shop", "--keep-monthly"])
            .arg(monthly)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        let summary = std::fs::read_to_string(&summary).unwrap_or_default();
        (output_text(&out), summary)
    };
    let (log, summary_text) = prune("12", "90");
    for text in [&log, &summary_text] {
        assert!(
            text.contains("artifacts expire after 90 days")
                && text.contains("up to 372 days")
                && text.contains("before the rules"),
            "{text}"
        );
    }
    assert!(log.contains("::warning"), "an annotation: {log}");
    for (monthly, days) in [("2", "90"), ("12", "400")] {
        let (log, summary_text) = prune(monthly, days);
        assert!(!log.contains("expire"), "{monthly}/{days}: {log}");
        assert!(!summary_text.contains("expire"), "{summary_text}");
    }

    let db = shop_db(dir.path());
    let made = in_job("90")
        .arg("backup")
        .arg(&db)
        .arg("--out")
        .arg(dir.path().join("b"))
        .args(["--upload", "--retention-days", "30", "--keep-weekly", "5"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", output_text(&made));
    assert!(
        output_text(&made).contains("artifacts expire after 30 days"),
        "{}",
        output_text(&made)
    );
}
