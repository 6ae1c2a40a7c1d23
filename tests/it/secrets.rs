//! Every command, run as a GitHub Actions step would run it, with a password in each database
//! URL and in `PGPASSWORD`, tokens in the environment and on the command line, on success and
//! on failure (wrong host, refused port, refused token, a failing upload): no password and no
//! token appears in stdout, stderr (other than the `::add-mask::` commands that hide them), a
//! JUnit report, a manifest, `$GITHUB_OUTPUT` or the job summary. Runs against the real
//! PostgreSQL at 127.0.0.1:5432 (trust auth: the password is accepted and ignored, but it is
//! in the URL all the same) and the fake GitHub of `support/fake_github.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::chaos::Listing;
use crate::support::dbbackup;
use crate::support::fake_github::{self, FakeGitHub, Fault, Route};
use crate::support::pg::{TestDb, psql, server_up};

/// In the URLs as written (percent-encoded `@`); dbbackup decodes it to `S3cret@Pw`. Both
/// forms contain the needle searched for.
const PASSWORD: &str = "S3cret%40Pw";
const PASSWORD_NEEDLE: &str = "S3cret";
/// A token GitHub refuses.
const REFUSED_TOKEN: &str = "ghs_RefusedToken7e3a91";
/// In `PGPASSWORD`, where libpq and dbbackup also look for a password.
const ENV_PASSWORD: &str = "PgEnvPw_51f0c2";

/// `postgres://postgres:PASSWORD@HOST_PORT/DB`.
fn url(host_port: &str, db: &str) -> String {
    format!("postgres://postgres:{PASSWORD}@{host_port}/{db}")
}

/// A GitHub Actions job step: the fake's environment, the step's summary and output files.
struct Job {
    fake: FakeGitHub,
    dir: PathBuf,
    /// Every command run, with what it printed, for the final check.
    runs: Vec<(String, Output)>,
}

impl Job {
    /// Runs `dbbackup ARGS` as a step with `token` as GITHUB_TOKEN and expects exit `code`.
    fn run(&mut self, token: &str, args: &[&str], code: i32) -> Output {
        let mut cmd: Command = dbbackup();
        cmd.current_dir(&self.dir)
            .args(args)
            .envs(self.fake.env())
            .env("GITHUB_TOKEN", token)
            .env("PGPASSWORD", ENV_PASSWORD)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", self.dir.join("summary.md"))
            .env("GITHUB_OUTPUT", self.dir.join("output.txt"))
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("DBBACKUP_RETRY_BUDGET_SECS", "2")
            .env("DBBACKUP_RETRY_BASE_MS", "20");
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "dbbackup {args:?}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.runs.push((format!("{args:?}"), out.clone()));
        out
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn no_command_prints_or_writes_a_secret() {
    if !server_up() {
        return;
    }
    let db = TestDb::new("secrets");
    psql(
        &db.name,
        "CREATE TABLE account(id int PRIMARY KEY, owner text NOT NULL);
         INSERT INTO account SELECT g, 'owner ' || g FROM generate_series(1, 200) g;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut job = Job {
        fake: FakeGitHub::start(),
        dir: tmp.path().to_path_buf(),
        runs: Vec::new(),
    };
    let token = fake_github::TOKEN;
    let source = url("127.0.0.1:5432", &db.name);
    let server = url("127.0.0.1:5432", "postgres");
    let stem = db.name.as_str();

    // Successes: every command, with the password wherever a URL goes.
    job.run(token, &["backup", &source, "--out", "b", "--keep", "3"], 0);
    job.run(token, &["run", &source, "b", "--junit", "backup.xml"], 0);
    job.run(
        token,
        &["backup", &source, "--out", "b", "--upload", "--keep", "2"],
        0,
    );
    job.run(
        token,
        &["restore-test", "b", "--all", "--junit", "restore.xml"],
        0,
    );
    job.run(
        token,
        &["restore-test", "b", "--restore-into", &server, "--json"],
        0,
    );
    let restored_db = TestDb::reserve("secrets_restored");
    let restored = url("127.0.0.1:5432", &restored_db.name);
    job.run(token, &["restore", "b", &restored], 0);
    job.run(token, &["inspect", "b"], 0);
    job.run(token, &["inspect", "b", "--json"], 0);
    let archive = job
        .dir
        .join("b")
        .join(Listing::of(&job.dir.join("b")).archives[0].clone());
    job.run(
        token,
        &["artifact", "upload", archive.to_str().unwrap(), "--json"],
        0,
    );
    job.run(token, &["artifact", "list", "--name", stem], 0);
    job.run(
        REFUSED_TOKEN,
        &["artifact", "list", "--name", stem, "--github-token", token],
        0,
    );
    job.run(
        token,
        &[
            "artifact", "download", "--name", stem, "--latest", "--out", "dl",
        ],
        0,
    );
    job.run(token, &["prune", "b", "--name", stem, "--keep", "1"], 0);
    job.run(
        token,
        &[
            "prune",
            "--artifacts",
            "--name",
            stem,
            "--keep",
            "1",
            "--json",
        ],
        0,
    );

    // Failures, where secrets usually leak: a refused port, an unknown host, a refused token,
    // an upload the service rejects, a restore to a server that is not there.
    let refused = url("127.0.0.1:1", &db.name);
    let unknown = url("no-such-host.invalid:5432", &db.name);
    job.run(token, &["backup", &refused, "--out", "b"], 3);
    job.run(token, &["backup", &unknown, "--out", "b"], 3);
    job.run(
        token,
        &[
            "restore-test",
            "b",
            "--restore-into",
            &url("127.0.0.1:1", "postgres"),
        ],
        3,
    );
    job.run(
        token,
        &["restore", "b", &url("127.0.0.1:1", "elsewhere")],
        3,
    );
    job.run(REFUSED_TOKEN, &["artifact", "list", "--name", stem], 8);
    job.run(
        REFUSED_TOKEN,
        &["prune", "--artifacts", "--name", stem, "--keep", "1"],
        8,
    );
    job.fake.fail_next(Route::Create, Fault::Status(401), 10);
    job.run(token, &["backup", &source, "--out", "b", "--upload"], 8);

    let secrets = [
        PASSWORD_NEEDLE,
        fake_github::TOKEN,
        REFUSED_TOKEN,
        ENV_PASSWORD,
        &fake_github::runtime_token(),
        fake_github::SIG,
    ];
    for (what, out) in &job.runs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stdout
            .lines()
            .chain(stderr.lines().filter(|l| !l.starts_with("::add-mask::")))
        {
            for secret in secrets {
                assert!(!line.contains(secret), "{what} printed {secret:?}: {line}");
            }
        }
    }
    // Reports, manifests (uploaded, downloaded, set aside), the summary, the step outputs.
    let written = files(&job.dir);
    for name in ["backup.xml", "restore.xml", "summary.md", "output.txt"] {
        assert!(written.contains(&job.dir.join(name)), "{name} was written");
    }
    assert!(written.iter().any(|p| p.starts_with(job.dir.join("dl"))));
    for path in &written {
        let bytes = fs::read(path).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds {secret:?}",
                path.display()
            );
        }
    }
}

/// A 0600 database gives 0600 backups, manifests, JUnit reports and restored copies (native
/// and SQL, plain and through `restore`), created so from the start: with the usual umask
/// (022) they were 0644, readable by every user of the machine.
#[test]
fn backups_reports_and_restored_copies_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let db = crate::support::data_copy("chinook.sqlite", tmp.path());
    fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
    for format in ["native", "sql"] {
        let out = tmp.path().join(format);
        let junit = tmp.path().join(format!("{format}.xml"));
        let run = dbbackup()
            .arg("backup")
            .arg(&db)
            .arg("--out")
            .arg(&out)
            .args(["--format", format, "--junit"])
            .arg(&junit)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let written = files(&out);
        assert_eq!(written.len(), 2, "{written:?}");
        for file in written.iter().chain([&junit]) {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        let restored = tmp.path().join(format!("restored-{format}.db"));
        let run = dbbackup()
            .arg("restore")
            .arg(&out)
            .arg(&restored)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(mode(&restored), 0o600, "{}", restored.display());
    }
}

/// The snapshot a SQLite backup takes lives in a 0700 directory, and is itself 0600 from its
/// creation (SQLite made it 0644): seen while the backup runs.
#[test]
fn the_snapshot_is_private_while_the_backup_runs() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("big.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
             INSERT INTO t SELECT i, randomblob(1000) FROM n;",
        )
        .unwrap();
    let out = tmp.path().join("b");
    let mut child = dbbackup()
        .arg("backup")
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for dir in fs::read_dir(&out).into_iter().flatten().flatten() {
            let snapshot = dir.path().join("snapshot.sqlite");
            if let Ok(meta) = fs::metadata(&snapshot) {
                let dir_mode = dir.metadata().unwrap().permissions().mode() & 0o777;
                seen.push((dir_mode, meta.permissions().mode() & 0o777));
            }
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(!seen.is_empty(), "the snapshot was never seen");
    assert!(
        seen.iter().all(|&(d, f)| d == 0o700 && f == 0o600),
        "modes (directory, snapshot): {seen:?}"
    );
}

/// A SIGKILLed backup leaves its temporary directory (a plain copy of the database) in DIR, as
/// no handler runs. Not only the next backup there removes it: any command that reads the
/// directory does (restore-test, inspect, restore).
#[test]
fn any_command_on_the_directory_removes_a_killed_backups_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let db = crate::support::data_copy("chinook.sqlite", tmp.path());
    let out = tmp.path().join("b");
    let backup = dbbackup()
        .arg("backup")
        .arg(&db)
        .arg(&out)
        .output()
        .unwrap();
    assert!(backup.status.success());
    for command in [&["restore-test"][..], &["inspect"][..]] {
        // What a killed run leaves: its pid (one above the kernel's maximum never runs).
        let left = out.join(".dbbackup-tmp-4194399-AbCdEf");
        fs::create_dir(&left).unwrap();
        fs::write(
            left.join("snapshot.sqlite"),
            b"a plain copy of the database",
        )
        .unwrap();
        let run = dbbackup().args(command).arg(&out).output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            !left.exists(),
            "{command:?} left the killed backup's snapshot"
        );
    }
}
