//! Encrypted backups (`--encrypt-to`, `--identity`) and the public-repository guard, through
//! the real binary; uploads and downloads go to the local fake of GitHub.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use assert_cmd::Command;

use crate::support::fake_github::FakeGitHub;

fn dbbackup() -> Command {
    let mut cmd = Command::from_std(crate::support::dbbackup());
    cmd.env("DBBACKUP_RETRY_BUDGET_SECS", "4")
        .env("DBBACKUP_RETRY_BASE_MS", "20");
    cmd
}

/// The binary inside a GitHub Actions job of `fake`'s repository.
fn in_job(fake: &FakeGitHub) -> Command {
    let mut cmd = dbbackup();
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    cmd
}

/// A key pair made for this test: the secret key's text and its public key.
fn age_key() -> (String, String) {
    let id = age::x25519::Identity::generate();
    let secret = id.to_string().expose_secret().to_string();
    (secret, id.to_public().to_string())
}

/// A SQLite database called `shop` with a table whose name is itself data.
fn shop_db(dir: &Path) -> PathBuf {
    let path = dir.join("shop.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customer_secrets(id INTEGER PRIMARY KEY, email TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO customer_secrets(email) SELECT 'user' || i || '@example.com' FROM n;",
    )
    .unwrap();
    path
}

/// A test's scratch directory with the `shop` database and a backup directory.
struct Scene {
    dir: tempfile::TempDir,
    db: PathBuf,
    out: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let db = shop_db(dir.path());
        let out = dir.path().join("backups");
        Scene { dir, db, out }
    }

    /// `backup DB --out OUT`, for `cmd.args(...)`.
    fn backup(&self) -> [&str; 4] {
        let (db, out) = (self.db.to_str().unwrap(), self.out.to_str().unwrap());
        ["backup", db, "--out", out]
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One encrypted backup of the scene's database; returns the archive path.
fn encrypted_backup(scene: &Scene, recipient: &str) -> PathBuf {
    let run = dbbackup()
        .args(scene.backup())
        .args(["--encrypt-to", recipient, "--json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    PathBuf::from(json["path"].as_str().unwrap())
}

fn sidecar(archive: &Path) -> PathBuf {
    PathBuf::from(format!("{}.manifest.json", archive.display()))
}

/// Decrypts with the age crate alone, as `age -d` would: no dbbackup involved.
fn age_decrypt(bytes: &[u8], identity: &dyn age::Identity) -> Vec<u8> {
    let mut plain = Vec::new();
    age::Decryptor::new_buffered(bytes)
        .unwrap()
        .decrypt(std::iter::once(identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

#[test]
fn encrypted_backup_round_trips_through_an_artifact() {
    let fake = FakeGitHub::start();
    let scene = Scene::new();
    let dir = &scene.dir;
    let (secret, public) = age_key();

    let backup = in_job(&fake)
        .env("DBBACKUP_IDENTITY", &secret)
        .env("DBBACKUP_RECIPIENTS", &public)
        .args(scene.backup())
        .args(["--restore-test", "--upload", "--json"])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", text(&backup));
    let json: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let archive = PathBuf::from(json["path"].as_str().unwrap());
    let name = archive.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("shop-") && name.ends_with(".sqlite.gz.age"),
        "{name}"
    );
    assert_eq!(json["encrypted"], true);
    assert_eq!(json["restore_test"]["verdict"], "passed");
    // The reported size and sha256 are the file's as stored and uploaded.
    let stored = fs::read(&archive).unwrap();
    assert_eq!(json["bytes"], stored.len() as u64);
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));

    // The readable sidecar says name, time, size and recipients; nothing about the data.
    let envelope = fs::read_to_string(sidecar(&archive)).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&envelope).unwrap();
    assert_eq!(parsed["archive"], name.as_str());
    assert_eq!(parsed["encrypted_bytes"], stored.len() as u64);
    assert_eq!(parsed["encryption"]["recipients"][0], public.as_str());
    assert!(parsed["created_at"].is_string());
    for data in ["customer_secrets", "example.com", "shop.db", "\"rows\""] {
        assert!(!envelope.contains(data), "{data} readable in {envelope}");
    }
    // What was uploaded: exactly the encrypted pair.
    let artifacts = fake.artifacts();
    assert_eq!(artifacts.len(), 1);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(artifacts[0].zip.clone())).unwrap();
    let mut entries: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    entries.sort();
    assert_eq!(entries, [name.clone(), format!("{name}.manifest.json")]);

    // The age file is a standard one: age alone (then gunzip) gives the database back.
    let identity: age::x25519::Identity = secret.parse().unwrap();
    let gz = age_decrypt(&stored, &identity);
    let mut sqlite = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut sqlite)
        .unwrap();
    assert!(sqlite.starts_with(b"SQLite format 3\0"));

    let dl = dir.path().join("downloaded");
    let download = in_job(&fake)
        .args(["artifact", "download", "--name", "shop", "--latest"])
        .args(["--out", dl.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(download.status.success(), "{}", text(&download));
    assert_eq!(fs::read(dl.join(&name)).unwrap(), stored);

    let key_file = dir.path().join("key.txt");
    fs::write(&key_file, format!("# created by the test\n{secret}\n")).unwrap();
    let tested = dbbackup()
        .args(["restore-test", dl.to_str().unwrap(), "--json", "--identity"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(tested.status.success(), "{}", text(&tested));
    let report: serde_json::Value = serde_json::from_slice(&tested.stdout).unwrap();
    let checks = report["backups"][0]["checks"].as_array().unwrap();
    let archive_check = checks.iter().find(|c| c["name"] == "archive").unwrap();
    assert!(
        archive_check["message"]
            .as_str()
            .unwrap()
            .contains("age-encrypted archive authenticated"),
        "{archive_check}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "table customer_secrets" && c["status"] == "passed"),
        "{report}"
    );

    let inspect = dbbackup()
        .env("DBBACKUP_IDENTITY", &secret)
        .args(["inspect", dl.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", text(&inspect));
    let shown = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        shown.contains("customer_secrets") && shown.contains(&public),
        "{shown}"
    );

    let target = dir.path().join("restored.db");
    dbbackup()
        .env("DBBACKUP_IDENTITY", &secret)
        .args(["restore", dl.to_str().unwrap(), target.to_str().unwrap()])
        .assert()
        .success();
    let conn = rusqlite::Connection::open(&target).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM customer_secrets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 300);
}

#[test]
fn ssh_ed25519_recipient_and_identity_work() {
    let scene = Scene::new();
    let (dir, out) = (&scene.dir, &scene.out);
    let key = dir.path().join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "backup@ci", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) is needed; .ci/run installs it");
    assert!(made.success());
    let public = fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    let archive = encrypted_backup(&scene, public.trim());
    let envelope = fs::read_to_string(sidecar(&archive)).unwrap();
    assert!(envelope.contains("backup@ci"), "{envelope}");

    dbbackup()
        .args(["restore-test", out.to_str().unwrap(), "--identity"])
        .arg(&key)
        .assert()
        .success();
    // The key's text through the environment, as a workflow passes a secret.
    dbbackup()
        .env("DBBACKUP_IDENTITY", fs::read_to_string(&key).unwrap())
        .args(["restore-test", out.to_str().unwrap()])
        .assert()
        .success();
}

#[test]
fn missing_or_wrong_identity_is_exit_9_naming_the_recipient() {
    let scene = Scene::new();
    let (dir, db, out) = (&scene.dir, &scene.db, &scene.out);
    let (_, public) = age_key();
    let (other_secret, _) = age_key();
    encrypted_backup(&scene, &public);
    let target = dir.path().join("restored.db");

    let cases: [(&str, Vec<&str>); 3] = [
        ("restore-test", vec!["restore-test", out.to_str().unwrap()]),
        ("inspect", vec!["inspect", out.to_str().unwrap()]),
        (
            "restore",
            vec!["restore", out.to_str().unwrap(), target.to_str().unwrap()],
        ),
    ];
    for (what, args) in &cases {
        let missing = dbbackup().args(args).output().unwrap();
        assert_eq!(missing.status.code(), Some(9), "{what}: {}", text(&missing));
        let message = text(&missing);
        assert!(
            message.contains(&public)
                && message.contains("no identity was given")
                && message.contains("--identity FILE")
                && message.contains("DBBACKUP_IDENTITY"),
            "{what}: {message}"
        );
        let wrong = dbbackup()
            .env("DBBACKUP_IDENTITY", &other_secret)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(wrong.status.code(), Some(9), "{what}: {}", text(&wrong));
        let message = text(&wrong);
        assert!(
            message.contains(&public) && message.contains("none of them"),
            "{what}: {message}"
        );
        assert!(!message.contains(&other_secret), "{what}: the key leaked");
        assert!(!message.contains("panicked"), "{what}: {message}");
    }
    assert!(!target.exists(), "nothing is restored without the key");

    // Not a key at all: the same exit code, and the text is not echoed.
    let garbage = dbbackup()
        .env("DBBACKUP_IDENTITY", "AGE-SECRET-KEY-1THISISNOTAKEYATALL")
        .args(["restore-test", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(garbage.status.code(), Some(9), "{}", text(&garbage));
    assert!(
        !text(&garbage).contains("THISISNOTAKEY"),
        "{}",
        text(&garbage)
    );

    // A restore test at backup time needs the key too, and says so before backing up.
    let fresh = dir.path().join("fresh");
    let refused = dbbackup()
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            fresh.to_str().unwrap(),
        ])
        .args(["--encrypt-to", &public, "--restore-test"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(9), "{}", text(&refused));
    assert!(text(&refused).contains(&public), "{}", text(&refused));
    assert!(!fresh.exists() || fs::read_dir(&fresh).unwrap().next().is_none());
}

/// A directory of backups where some are encrypted to a key not given: every other backup is
/// still tested, the locked ones are reported, and the exit code says a key is missing.
#[test]
fn a_missing_key_locks_its_backups_and_the_others_are_still_tested() {
    let scene = Scene::new();
    let (secret, public) = age_key();
    let plain = dbbackup().args(scene.backup()).output().unwrap();
    assert!(plain.status.success(), "{}", text(&plain));
    let locked = encrypted_backup(&scene, &public);
    let run = dbbackup()
        .env_remove("DBBACKUP_IDENTITY")
        .args(["restore-test", "--all", "--json"])
        .arg(&scene.out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(9), "{}", text(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let verdicts: Vec<(&str, &str)> = json["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backup"].as_str().unwrap(),
                b["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert!(verdicts.iter().any(|(_, v)| *v == "passed"), "{verdicts:?}");
    assert!(
        verdicts.contains(&(locked.to_str().unwrap(), "locked")),
        "{verdicts:?}"
    );
    let said = text(&run);
    assert!(
        said.contains("restore LOCKED") && said.contains(&public),
        "{said}"
    );

    let key = scene.dir.path().join("key.txt");
    fs::write(&key, &secret).unwrap();
    let opened = dbbackup()
        .args(["restore-test", "--all", "--identity"])
        .arg(&key)
        .arg(&scene.out)
        .output()
        .unwrap();
    assert_eq!(opened.status.code(), Some(0), "{}", text(&opened));
}

#[test]
fn a_flipped_ciphertext_byte_fails_the_archive_check_and_restores_nothing() {
    let scene = Scene::new();
    let (dir, out) = (&scene.dir, &scene.out);
    let (secret, public) = age_key();
    let archive = encrypted_backup(&scene, &public);
    let mut bytes = fs::read(&archive).unwrap();
    // Past the header, inside the first payload chunk.
    let at = bytes.len() - 40;
    bytes[at] ^= 0x01;
    fs::write(&archive, &bytes).unwrap();

    let tested = dbbackup()
        .env("DBBACKUP_IDENTITY", &secret)
        .args(["restore-test", out.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(tested.status.code(), Some(5), "{}", text(&tested));
    let report: serde_json::Value = serde_json::from_slice(&tested.stdout).unwrap();
    let checks = report["backups"][0]["checks"].as_array().unwrap();
    let archive_check = checks.iter().find(|c| c["name"] == "archive").unwrap();
    assert_eq!(archive_check["status"], "failed", "{archive_check}");
    let shown = archive_check.to_string();
    assert!(shown.contains("age could not authenticate"), "{shown}");
    assert!(shown.contains("encrypted archive sha256"), "{shown}");
    let restore = checks.iter().find(|c| c["name"] == "restore").unwrap();
    assert_ne!(restore["status"], "passed", "{restore}");

    let target = dir.path().join("restored.db");
    let restored = dbbackup()
        .env("DBBACKUP_IDENTITY", &secret)
        .args(["restore", out.to_str().unwrap(), target.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(restored.status.code(), Some(5), "{}", text(&restored));
    assert!(!target.exists(), "garbage must never be restored");
}

#[test]
fn rotation_counts_encrypted_backups_and_leaves_other_files() {
    let scene = Scene::new();
    let out = &scene.out;
    fs::create_dir_all(out).unwrap();
    let (_, public) = age_key();
    // Older backups of both kinds, and files that are not backups of `shop`.
    let old = [
        "shop-20200101-000000.sqlite.gz.age",
        "shop-20200102-000000.sqlite.gz",
        "shop-20200103-000000.sqlite.gz.age",
    ];
    let others = [
        "notes.age",
        "shopping-20200101-000000.sqlite.gz.age",
        "shop.key.age",
    ];
    for name in old.iter().chain(&others) {
        fs::write(out.join(name), b"x").unwrap();
        fs::write(out.join(format!("{name}.manifest.json")), b"{}").unwrap();
    }
    let run = dbbackup()
        .args(scene.backup())
        .args(["--encrypt-to", &public, "--keep", "2", "--json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let pruned: Vec<&str> = json["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pruned, [old[1], old[0]]);
    assert!(out.join(old[2]).exists());
    for name in others {
        assert!(out.join(name).exists(), "{name} must never be deleted");
    }
    assert!(!out.join(format!("{}.manifest.json", old[0])).exists());
}

/// A job's event payload, as the runner writes it to `GITHUB_EVENT_PATH`.
fn event_payload(dir: &Path, repository: serde_json::Value) -> PathBuf {
    let path = dir.join("event.json");
    fs::write(
        &path,
        serde_json::json!({"action": "completed", "repository": repository}).to_string(),
    )
    .unwrap();
    path
}

#[test]
fn public_repository_refuses_a_plain_upload_unless_allowed() {
    let fake = FakeGitHub::start();
    let scene = Scene::new();
    let (dir, out) = (&scene.dir, &scene.out);
    let summary = dir.path().join("summary.md");
    let event = event_payload(
        dir.path(),
        serde_json::json!({"full_name": "octo/shop", "private": false, "visibility": "public"}),
    );
    let job = || {
        let mut cmd = in_job(&fake);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(scene.backup())
            .arg("--upload");
        cmd
    };

    let refused = job().output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let message = text(&refused);
    for needed in [
        "public repository",
        "--encrypt-to",
        "--allow-public-plaintext",
    ] {
        assert!(message.contains(needed), "{needed}: {message}");
    }
    assert!(fake.artifacts().is_empty());
    assert!(!out.exists() || fs::read_dir(out).unwrap().next().is_none());

    job().arg("--allow-public-plaintext").assert().success();
    assert_eq!(fake.artifacts().len(), 1);
    assert!(
        fs::read_to_string(&summary)
            .unwrap()
            .contains("NOT encrypted")
    );

    let (_, public) = age_key();
    job().args(["--encrypt-to", &public]).assert().success();
    assert_eq!(fake.artifacts().len(), 2);

    // `artifact upload` is guarded the same way, by content, not name: a plain backup renamed
    // to look encrypted is still plain.
    let plain = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sqlite.gz"))
        .unwrap();
    let disguised = dir.path().join("shop-20200101-000000.sqlite.gz.age");
    fs::copy(&plain, &disguised).unwrap();
    fs::copy(sidecar(&plain), sidecar(&disguised)).unwrap();
    for file in [&plain, &disguised] {
        let upload = in_job(&fake)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_PATH", &event)
            .args(["artifact", "upload"])
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(upload.status.code(), Some(2), "{}", text(&upload));
    }
    assert_eq!(fake.artifacts().len(), 2);
}

#[test]
fn private_repository_uploads_with_a_notice_in_the_summary() {
    let fake = FakeGitHub::start();
    let scene = Scene::new();
    let dir = &scene.dir;
    let summary = dir.path().join("summary.md");
    let event = event_payload(
        dir.path(),
        serde_json::json!({"full_name": "octo/shop", "private": true, "visibility": "private"}),
    );
    in_job(&fake)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(scene.backup())
        .arg("--upload")
        .assert()
        .success();
    assert_eq!(fake.artifacts().len(), 1);
    let shown = fs::read_to_string(&summary).unwrap();
    assert!(
        shown.contains("anyone with read access to octo/shop can download"),
        "{shown}"
    );
}

#[test]
fn without_an_event_payload_the_api_decides_and_unknown_counts_as_public() {
    let fake = FakeGitHub::start();
    let scene = Scene::new();

    let upload = |token: bool| {
        let mut cmd = in_job(&fake);
        cmd.env("GITHUB_ACTIONS", "true");
        if !token {
            cmd.env_remove("GITHUB_TOKEN");
        }
        cmd.args(scene.backup()).arg("--upload").output().unwrap()
    };
    fake.set_visibility("public");
    let refused = upload(true);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("public repository"),
        "{}",
        text(&refused)
    );
    let unknown = upload(false);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("treated as public"),
        "{}",
        text(&unknown)
    );
    assert!(fake.artifacts().is_empty());

    fake.set_visibility("internal");
    let allowed = upload(true);
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert_eq!(fake.artifacts().len(), 1);
}

#[test]
fn the_identity_never_appears_in_any_output() {
    let fake = FakeGitHub::start();
    let scene = Scene::new();
    let (dir, out) = (&scene.dir, &scene.out);
    let (summary, outputs, junit) = (
        dir.path().join("summary.md"),
        dir.path().join("outputs"),
        dir.path().join("junit.xml"),
    );
    let (secret, public) = age_key();
    let (wrong, _) = age_key();
    let job = |identity: &str| {
        let mut cmd = in_job(&fake);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .env("DBBACKUP_IDENTITY", identity);
        cmd
    };
    let runs = [
        job(&secret)
            .args(scene.backup())
            .args(["--encrypt-to", &public, "--upload", "--json", "--junit"])
            .arg(&junit)
            .output()
            .unwrap(),
        job(&secret)
            .args(["restore-test", out.to_str().unwrap(), "--json", "--junit"])
            .arg(&junit)
            .output()
            .unwrap(),
        job(&secret)
            .args(["inspect", out.to_str().unwrap(), "--json"])
            .output()
            .unwrap(),
        job(&wrong)
            .args(["restore-test", out.to_str().unwrap(), "--json"])
            .output()
            .unwrap(),
    ];
    assert!(runs[..3].iter().all(|r| r.status.success()));
    assert_eq!(runs[3].status.code(), Some(9));
    for run in &runs {
        let all = text(run);
        let (masks, rest): (Vec<&str>, Vec<&str>) =
            all.lines().partition(|l| l.starts_with("::add-mask::"));
        assert!(masks.iter().any(|m| m.contains("AGE-SECRET-KEY-")), "{all}");
        for line in rest {
            for key in [&secret, &wrong] {
                assert!(!line.contains(key.as_str()), "the identity leaked: {line}");
            }
        }
    }
    let mut written = String::new();
    for file in [&summary, &outputs, &junit] {
        written.push_str(&fs::read_to_string(file).unwrap());
    }
    for file in fs::read_dir(out).unwrap() {
        written.push_str(&String::from_utf8_lossy(
            &fs::read(file.unwrap().path()).unwrap(),
        ));
    }
    written.push_str(&String::from_utf8_lossy(&fake.artifacts()[0].zip));
    assert!(!written.contains(&secret) && !written.contains(&wrong));
    // The job summary of an encrypted backup shows no table names either.
    let shown = fs::read_to_string(&summary).unwrap();
    assert!(shown.contains("encryption | age"), "{shown}");
    assert!(!shown.contains("| `customer_secrets`"), "{shown}");
}

/// `--encrypt-to "$(cat private-key)"`: an OpenSSH private key starts with `-----`, which the
/// argument parser took for an option and quoted whole in its error. Refused (exit 2) before
/// anything parses it, naming the option and not one line of the key, in any spelling.
#[test]
fn a_private_key_given_as_recipient_is_refused_without_being_echoed() {
    let scene = Scene::new();
    let key_file = scene.dir.path().join("id_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&key_file)
        .status();
    let ssh_key = match keygen {
        Ok(s) if s.success() => fs::read_to_string(&key_file).unwrap(),
        // Not installed: a key of the same shape does as well for the parser.
        _ => "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n\
              QyNTUxOQAAACDOTlW6VBdCKlda5FsXCEBGVfysQSSwv\n-----END OPENSSH PRIVATE KEY-----\n"
            .to_string(),
    };
    let (age_secret, _) = age_key();
    for key in [&ssh_key, &age_secret] {
        let joined = format!("--encrypt-to={key}");
        for args in [vec!["--encrypt-to", key.as_str()], vec![joined.as_str()]] {
            let out = dbbackup()
                .args(scene.backup())
                .args(&args)
                .env("GITHUB_ACTIONS", "true")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            let all = text(&out);
            assert!(all.contains("--encrypt-to was given a secret key"), "{all}");
            for line in all.lines().filter(|l| !l.starts_with("::add-mask::")) {
                for key_line in key.lines().map(str::trim).filter(|l| l.len() >= 8) {
                    assert!(!line.contains(key_line), "the key leaked: {line}");
                }
            }
            assert!(!scene.out.exists(), "nothing is written");
        }
    }
}
