//! Backups to S3 (`backup --to s3://…`, `prune s3://…`) against a real local S3 server (moto,
//! see `support::s3`): retention in the bucket, and failures that must stop a backup early
//! with exit 8 and no secret in any output.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::s3::{Moto, SECRET};
use crate::support::{data_copy, dbbackup};

/// `dbbackup backup DB --out OUT EXTRA...`
fn backup_cmd(db: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = dbbackup();
    cmd.arg("backup").arg(db).arg("--out").arg(out).args(extra);
    cmd
}

fn backup(moto: &Moto, db: &Path, out: &Path, extra: &[&str]) -> Output {
    let output = backup_cmd(db, out, extra)
        .envs(moto.env())
        .output()
        .unwrap();
    assert_no_secret(&output);
    output
}

fn assert_no_secret(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(SECRET),
            "the secret key was printed: {output:?}"
        );
    }
}

fn local_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Three backups with --keep 2: the bucket keeps the newest two of that database (archive and
/// manifest), and nothing of another name is touched.
#[test]
fn backup_to_s3_keeps_the_newest_and_nothing_else_is_touched() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    // Objects that are not backups of chinook: another database's, and a stranger.
    assert_eq!(moto.request("PUT", "/backups/db/notes.txt"), Some(200));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let db = data_copy("chinook.sqlite", tmp.path());
    let other = tmp.path().join("chinookx.sqlite");
    std::fs::copy(&db, &other).unwrap();
    let made = backup(&moto, &other, &out, &["--to", "s3://backups/db"]);
    assert!(made.status.success(), "{made:?}");
    let mut reported = Vec::new();
    for _ in 0..3 {
        let made = backup(
            &moto,
            &db,
            &out,
            &[
                "--to",
                "s3://backups/db/",
                "--keep",
                "2",
                "--restore-test",
                "--json",
            ],
        );
        assert!(made.status.success(), "{made:?}");
        let json: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
        let stored = json["stored"].as_array().unwrap();
        assert_eq!(stored.len(), 1, "{json}");
        assert_eq!(stored[0]["store"], "s3://backups/db", "{json}");
        assert_eq!(stored[0]["bytes"], json["bytes"], "{json}");
        reported.push((stored[0]["name"].clone(), stored[0]["pruned"].clone()));
    }
    // The third backup pruned the first from the bucket.
    assert_eq!(reported[2].1, serde_json::json!([reported[0].0]));
    let keys = moto.keys("backups");
    let chinook: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("db/chinook-"))
        .collect();
    let local: Vec<String> = local_files(&out)
        .into_iter()
        .filter(|n| n.starts_with("chinook-"))
        .map(|n| format!("db/{n}"))
        .collect();
    assert_eq!(chinook.len(), 4, "{keys:?}");
    assert_eq!(
        chinook,
        local.iter().collect::<Vec<_>>(),
        "bucket and --out agree"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("db/chinookx-"))
            .count(),
        2
    );
    assert!(keys.contains(&"db/notes.txt".to_string()), "{keys:?}");

    // list and fetch: newest first; the fetched backup passes the restore test.
    let run = |args: &[&str]| {
        let output = dbbackup().args(args).envs(moto.env()).output().unwrap();
        assert_no_secret(&output);
        output
    };
    let listed = run(&["list", "s3://backups/db", "--name", "chinook", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], reported[2].0, "{listed}");
    assert_eq!(listed[1]["name"], reported[1].0, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let into = tmp.path().join("fetched");
    let fetched = dbbackup()
        .args([
            "fetch",
            "s3://backups/db",
            "--name",
            "chinook",
            "--latest",
            "--out",
        ])
        .arg(&into)
        .envs(moto.env())
        .output()
        .unwrap();
    assert_no_secret(&fetched);
    assert!(fetched.status.success(), "{fetched:?}");
    let path = String::from_utf8_lossy(&fetched.stdout).trim().to_string();
    assert!(path.ends_with(reported[2].0.as_str().unwrap()), "{path}");
    let tested = dbbackup().arg("restore-test").arg(&path).output().unwrap();
    assert!(tested.status.success(), "{tested:?}");
    let none = run(&[
        "fetch",
        "s3://backups/db",
        "--name",
        "nothing",
        "--out",
        "x",
    ]);
    assert_eq!(none.status.code(), Some(8), "{none:?}");

    // prune URL: a dry run deletes nothing, then keep 1.
    let prune = |extra: &[&str]| {
        let output = dbbackup()
            .args([
                "prune",
                "s3://backups/db",
                "--name",
                "chinook",
                "--keep",
                "1",
                "--json",
            ])
            .args(extra)
            .envs(moto.env())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_no_secret(&output);
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let dry = prune(&["--dry-run"]);
    assert_eq!(dry["would_delete"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(moto.keys("backups").len(), keys.len());
    let real = prune(&[]);
    assert_eq!(real["deleted"].as_array().unwrap().len(), 1, "{real}");
    let after = moto.keys("backups");
    assert_eq!(
        after
            .iter()
            .filter(|k| k.starts_with("db/chinook-"))
            .count(),
        2
    );
    assert_eq!(after.len(), keys.len() - 2);

    // A new runner (an empty --out) compares with the newest backup in the bucket: its
    // manifest is an object of its own. It starts in a second of its own: within the second
    // of the backups above, its empty directory would give it the name the bucket's newest
    // already has, and the store refuses to overwrite a backup (a fast machine got there).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
    ));
    let fresh = backup(
        &moto,
        &db,
        &tmp.path().join("fresh"),
        &["--to", "s3://backups/db", "--json"],
    );
    assert!(fresh.status.success(), "{fresh:?}");
    let drift = &serde_json::from_slice::<serde_json::Value>(&fresh.stdout).unwrap()["drift"];
    assert_eq!(drift["checked"], true, "{drift}");
    let with = drift["compared_with"].as_str().unwrap();
    assert!(
        with.starts_with("chinook-") && with.ends_with(" in s3://backups/db"),
        "{with}"
    );
}

/// A destination that cannot be used fails before a backup is made: exit 8, a clear message,
/// nothing written or pruned in --out, no secret printed.
fn refused(moto: &Moto, url: &str, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let db = data_copy("chinook.sqlite", tmp.path());
    let first = backup_cmd(&db, &out, &[]).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let before = local_files(&out);
    let failed = backup(moto, &db, &out, &["--to", url, "--keep", "1"]);
    assert_eq!(failed.status.code(), Some(8), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains(expect), "{stderr}");
    assert_eq!(local_files(&out), before, "the local directory changed");
}

#[test]
fn a_missing_bucket_fails_before_the_backup_with_exit_8() {
    let Some(moto) = Moto::start() else { return };
    refused(&moto, "s3://no-such-bucket/db", "the bucket does not exist");
}

#[test]
fn wrong_credentials_fail_before_the_backup_with_exit_8() {
    // moto checks credentials after the first request (which creates the bucket).
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "1")]) else {
        return;
    };
    moto.bucket("backups");
    refused(&moto, "s3://backups/db", "AWS_SECRET_ACCESS_KEY");
}

#[test]
fn other_schemes_are_refused_naming_the_supported_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let output = backup_cmd(
        &db,
        &tmp.path().join("out"),
        &["--to", "ftp://u:hunter2@h/x"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("s3://BUCKET/PREFIX"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!tmp.path().join("out").exists(), "a backup was made");
}

/// The server goes away in the middle of the archive's upload: the put fails with exit 8 after
/// bounded retries, and the bucket holds nothing under the backup's name (the multipart upload
/// was never completed).
#[test]
fn an_upload_cut_off_half_way_leaves_no_object_under_the_backups_name() {
    use dbbackup::store::{LocalBackup, Store};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let tmp = tempfile::tempdir().unwrap();
    let name = "big-20261129-120000.sqlite.gz";
    let archive = tmp.path().join(name);
    let mut rng = fastrand::Rng::with_seed(18);
    let bytes: Vec<u8> = (0..20 << 20).map(|_| rng.u8(..)).collect();
    std::fs::write(&archive, &bytes).unwrap();
    std::fs::write(tmp.path().join(format!("{name}.manifest.json")), b"{}").unwrap();

    let proxy = crate::support::s3::CutProxy::start(moto.port(), 12 << 20);
    let store = store_via(&proxy, 10);
    let started = std::time::Instant::now();
    let err = store
        .put(LocalBackup { archive: &archive }, "big")
        .unwrap_err();
    assert!(
        proxy.cut.load(Ordering::SeqCst),
        "the proxy never cut: {err}"
    );
    assert_eq!(err.exit_code(), 8, "{err}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let keys = moto.keys("backups");
    assert!(keys.iter().all(|k| !k.contains(name)), "{keys:?}");
    assert!(
        moto.store("s3://backups/db")
            .list("big")
            .unwrap()
            .is_empty()
    );
}

/// In GitHub Actions the secret key and session token are masked before anything is printed,
/// and no other line shows them.
#[test]
fn aws_secrets_are_masked_first_in_github_actions() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let output = backup_cmd(&db, &tmp.path().join("out"), &["--to", "s3://backups/db"])
        .envs(moto.env())
        .env("AWS_SESSION_TOKEN", "session-token-value")
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let masks = lines
        .iter()
        .take_while(|l| l.starts_with("::add-mask::"))
        .count();
    for secret in [SECRET, "session-token-value"] {
        assert!(
            lines[..masks].contains(&format!("::add-mask::{secret}").as_str()),
            "{stderr}"
        );
        assert!(
            lines[masks..].iter().all(|l| !l.contains(secret)),
            "{stderr}"
        );
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECRET));
}

/// S3 lists 1,000 keys a page: 550 backups of one name (1,100 keys with their manifests, which
/// share the prefix) are listed whole and in order, and pruning reaches past the first page
/// without touching other names.
#[test]
fn the_s3_store_lists_and_prunes_across_pages() {
    use dbbackup::retention::Retention;
    use dbbackup::store::{self, Store};
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let names = (0..550)
        .map(|i| format!("app-20261125-{:06}.sqlite.gz", 100000 + i))
        .chain((0..5).map(|i| format!("app-staging-20261125-{:06}.sqlite.gz", 100000 + i)));
    let paths: Vec<String> = names
        .flat_map(|n| {
            [
                format!("/backups/db/{n}"),
                format!("/backups/db/{n}.manifest.json"),
            ]
        })
        .collect();
    moto.put_empty(&paths);
    let s3 = moto.store("s3://backups/db");
    let listed = s3.list("app").unwrap();
    assert_eq!(listed.len(), 550);
    assert_eq!(
        listed[0].name, "app-20261125-100549.sqlite.gz",
        "newest first"
    );
    assert_eq!(listed[549].name, "app-20261125-100000.sqlite.gz");
    let pruned = store::prune(&s3, "app", &Retention::last(3).unwrap(), None).unwrap();
    assert_eq!(pruned.deleted.len(), 547);
    assert_eq!(s3.list("app").unwrap().len(), 3);
    assert_eq!(s3.list("app-staging").unwrap().len(), 5);
}

/// A database of 24 MiB of incompressible rows: a backup of three 8 MiB parts.
fn big_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("big.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("CREATE TABLE t (b BLOB)", []).unwrap();
    let mut rng = fastrand::Rng::with_seed(18);
    for _ in 0..24 {
        let blob: Vec<u8> = (0..1 << 20).map(|_| rng.u8(..)).collect();
        conn.execute("INSERT INTO t (b) VALUES (?1)", [blob])
            .unwrap();
    }
    db
}

/// The connection is cut in the middle of `backup --to`'s upload, after the destination
/// checked out: exit 8, the new backup stays in --out, nothing is pruned there, and the bucket
/// holds nothing under its name.
#[test]
fn a_backup_whose_upload_is_cut_off_prunes_nothing() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let db = big_db(tmp.path());
    let first = backup_cmd(&db, &out, &[]).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let before = local_files(&out);

    let proxy = crate::support::s3::CutProxy::start(moto.port(), 12 << 20);
    let junit = tmp.path().join("report.xml");
    let failed = backup_cmd(&db, &out, &["--to", "s3://backups/db", "--keep", "1"])
        .arg("--junit")
        .arg(&junit)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .output()
        .unwrap();
    assert_no_secret(&failed);
    assert_eq!(failed.status.code(), Some(8), "{failed:?}");
    // The report fails too: the backup's checks passed, its upload did not.
    crate::support::restore::validate_junit(&junit);
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(
        report.contains("<testsuite name=\"store\" tests=\"1\" failures=\"1\""),
        "{report}"
    );
    let failures: Vec<&str> = report.matches("<failure ").collect();
    assert_eq!(failures.len(), 1, "{report}");
    let summary = crate::support::dbbackup()
        .args(["summary", "--json"])
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(summary.status.code(), Some(8), "{summary:?}");
    let rows: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(rows["backups"].as_array().unwrap().len(), 1, "{rows}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("nothing was pruned"), "{stderr}");
    let after = local_files(&out);
    assert!(
        before.iter().all(|f| after.contains(f)),
        "pruned: {after:?}"
    );
    assert_eq!(
        after.len(),
        before.len() + 2,
        "the new backup stays: {after:?}"
    );
    assert!(
        moto.keys("backups").is_empty(),
        "{:?}",
        moto.keys("backups")
    );
}

/// With --encrypt-to only the `.gz.age` file and its envelope go to the bucket, and what
/// `fetch` brings back opens with the identity.
#[test]
fn an_encrypted_backup_goes_to_s3_sealed_and_comes_back_with_its_key() {
    use age::secrecy::ExposeSecret;
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let id = age::x25519::Identity::generate();
    let (secret, public) = (
        id.to_string().expose_secret().to_string(),
        id.to_public().to_string(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let made = backup(
        &moto,
        &db,
        &tmp.path().join("out"),
        &["--to", "s3://backups/db", "--encrypt-to", &public],
    );
    assert!(made.status.success(), "{made:?}");
    let keys = moto.keys("backups");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].ends_with(".sqlite.gz.age"), "{keys:?}");
    assert!(
        keys[1].ends_with(".sqlite.gz.age.manifest.json"),
        "{keys:?}"
    );
    let into = tmp.path().join("fetched");
    let fetched = dbbackup()
        .args(["fetch", "s3://backups/db", "--name", "chinook", "--out"])
        .arg(&into)
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(fetched.status.success(), "{fetched:?}");
    let manifest = std::fs::read_to_string(format!(
        "{}.manifest.json",
        String::from_utf8_lossy(&fetched.stdout).trim()
    ))
    .unwrap();
    assert!(
        !manifest.contains("Invoice"),
        "the envelope shows table names"
    );
    let tested = dbbackup()
        .arg("restore-test")
        .arg(&into)
        .env("DBBACKUP_IDENTITY", &secret)
        .output()
        .unwrap();
    assert!(tested.status.success(), "{tested:?}");
}

/// Ctrl-C in the middle of `backup --to`'s upload: the handler aborts the multipart upload,
/// so neither an object nor an upload in progress is left in the bucket; exit 130.
#[test]
fn an_interrupted_upload_is_aborted() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let tmp = tempfile::tempdir().unwrap();
    let db = big_db(tmp.path());
    let proxy = crate::support::s3::CutProxy::start_with(moto.port(), 12 << 20, 0, true);
    let mut child = backup_cmd(&db, &tmp.path().join("out"), &["--to", "s3://backups/db"])
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !proxy.cut.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never got half-way"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        moto.uploads("backups").len() == 1,
        "{:?}",
        moto.uploads("backups")
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert!(
        moto.keys("backups").is_empty(),
        "{:?}",
        moto.keys("backups")
    );
    assert!(
        moto.uploads("backups").is_empty(),
        "{:?}",
        moto.uploads("backups")
    );
}

/// A store on a proxy in front of moto, retrying quickly (a test's bounds, not the default's).
fn store_via(
    proxy: &crate::support::s3::CutProxy,
    timeout_secs: u64,
) -> dbbackup::store::bucket::BucketStore {
    use object_store::aws::AmazonS3Builder;
    use object_store::{BackoffConfig, RetryConfig};
    use std::time::Duration;
    let builder = AmazonS3Builder::new()
        .with_endpoint(&proxy.endpoint)
        .with_access_key_id(crate::support::s3::KEY_ID)
        .with_secret_access_key(SECRET)
        .with_region("us-east-1");
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: Duration::from_secs(timeout_secs),
    };
    dbbackup::store::s3::with_builder("s3://backups/db", builder, retry).unwrap()
}

/// 503s are retried: a short storm is ridden out, and a storm that does not end fails with
/// exit 8 within the retry bound, leaving nothing.
#[test]
fn a_503_storm_is_retried_within_a_bounded_time() {
    use dbbackup::store::{LocalBackup, Store};
    use std::time::{Duration, Instant};
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("app-20261129-120000.sqlite.gz");
    std::fs::write(&archive, b"not really gzip, but the store only moves bytes").unwrap();
    std::fs::write(
        tmp.path()
            .join("app-20261129-120000.sqlite.gz.manifest.json"),
        b"{}",
    )
    .unwrap();

    let passing = crate::support::s3::CutProxy::start_with(moto.port(), usize::MAX, 6, false);
    let s3 = store_via(&passing, 30);
    let stored = s3.put(LocalBackup { archive: &archive }, "app").unwrap();
    assert_eq!(s3.list("app").unwrap(), [stored]);

    let storm =
        crate::support::s3::CutProxy::start_with(moto.port(), usize::MAX, usize::MAX, false);
    let s3 = store_via(&storm, 3);
    let started = Instant::now();
    let err = s3.list("app").unwrap_err();
    assert_eq!(err.exit_code(), 8, "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
