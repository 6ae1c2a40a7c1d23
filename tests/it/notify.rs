//! `--notify`, `--notify-on` and `--ping` against a real local HTTP server that records what it
//! received: what each kind of failure posts, what a success posts (nothing, or with `always`
//! a message), the healthchecks.io pings, a webhook answering 500 or hanging (a warning in
//! bounded time, the exit code unchanged), and a token in the URL's path that appears nowhere:
//! not in stdout, stderr (other than the `::add-mask::` commands that hide it), the JUnit
//! report, the manifest, `$GITHUB_OUTPUT` or the job summary.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::hook::{Answer, Hook, PATH, TOKEN};
use crate::support::{data_copy, dbbackup};

/// A password in a source URL, which a message names without it.
const PASSWORD: &str = "Pw4Notify9";

/// The text of the one message `hook` received.
fn only_message(hook: &Hook) -> String {
    let received = hook.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path, PATH);
    assert_eq!(received[0].content_type, "application/json");
    let json: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    json["text"].as_str().unwrap().to_string()
}

fn run(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `dbbackup ARGS` with the environment of a GitHub Actions run (for the run's link).
fn in_a_run(args: &[&str]) -> Command {
    let mut cmd = dbbackup();
    cmd.args(args)
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "4242");
    cmd
}

#[test]
fn each_kind_of_failure_posts_one_message_saying_what_which_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    // Nothing listens on port 1: the source cannot be reached.
    let source = format!("postgres://app:{PASSWORD}@127.0.0.1:1/shop");
    let not_a_backup = dir.path().join("not-a-backup.gz");
    std::fs::write(&not_a_backup, "plain text").unwrap();
    let not_a_backup = not_a_backup.to_str().unwrap();
    let target = dir.path().join("restored.db");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty = empty.to_str().unwrap();
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["backup", &source, "--out", out],
            3,
            "dbbackup backup failed: postgres://app@127.0.0.1:1/shop (exit 3: the source \
             database cannot be read)",
        ),
        (
            &["restore-test", not_a_backup],
            6,
            "dbbackup restore test failed:",
        ),
        (
            &["restore", not_a_backup, target.to_str().unwrap()],
            6,
            "dbbackup restore failed:",
        ),
        (
            &["check", empty, "--name", "app", "--max-age", "26h"],
            10,
            "dbbackup check failed: app in ",
        ),
    ];
    for (args, code, headline) in cases {
        let hook = Hook::start(Answer::Status(200));
        let url = hook.url();
        let out = run(in_a_run(args).args(["--notify", &url]), code);
        let text = only_message(&hook);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error_line = stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap();
        assert!(text.starts_with(headline), "{text}");
        assert!(
            text.contains(&format!("\nerror: {error_line}")),
            "{text}\n{stderr}"
        );
        assert!(
            text.ends_with("\nrun: https://github.example/acme/shop/actions/runs/4242"),
            "{text}"
        );
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn a_success_posts_nothing_by_default_and_a_message_with_notify_on_always() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let db = db.to_str().unwrap();
    let out = dir.path().join("out");
    let quiet = Hook::start(Answer::Status(200));
    run(
        dbbackup()
            .args(["backup", db, "--out"])
            .arg(&out)
            .args(["--notify", &quiet.url()]),
        0,
    );
    assert!(quiet.received().is_empty(), "{:?}", quiet.received());
    let always = Hook::start(Answer::Status(200));
    run(
        dbbackup()
            .args(["backup", db, "--out"])
            .arg(&out)
            .env("DBBACKUP_NOTIFY", format!("\n{}\n", always.url()))
            .env("DBBACKUP_NOTIFY_ON", "always"),
        0,
    );
    assert_eq!(
        only_message(&always),
        format!("dbbackup backup succeeded: {db}")
    );
}

#[test]
fn pings_start_then_success_or_fail_with_the_last_lines_logged() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let out = dir.path().join("out");
    let hc = Hook::start(Answer::Status(200));
    let ping = format!("{}/ping/5f0c-4a1e-9b7d-{TOKEN}", hc.base);
    run(
        dbbackup()
            .args(["backup", "--out"])
            .arg(&out)
            .arg(&db)
            .args(["--ping", &ping]),
        0,
    );
    let path = format!("/ping/5f0c-4a1e-9b7d-{TOKEN}");
    assert_eq!(hc.paths(), [format!("{path}/start"), path.clone()]);
    let success = &hc.received()[1].body;
    assert!(success.contains("chinook"), "the log's lines: {success}");

    let failing = Hook::start(Answer::Status(200));
    let ping = format!("{}/ping/5f0c-4a1e-9b7d-{TOKEN}", failing.base);
    let missing = dir.path().join("missing.db");
    let ran = run(
        dbbackup()
            .args(["backup", "--out"])
            .arg(&out)
            .arg(&missing)
            .env("DBBACKUP_PING", &ping),
        3,
    );
    assert_eq!(
        failing.paths(),
        [format!("{path}/start"), format!("{path}/fail")]
    );
    let body = &failing.received()[1].body;
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(body.ends_with(&format!("{error}\n")), "{body}");
}

#[test]
fn an_undeliverable_alert_is_a_warning_and_the_exit_code_stays() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let db = data_copy("chinook.sqlite", dir.path());
    let out = dir.path().join("out");
    // A 500 is retried once; the backup's own result is kept: failed, and succeeded.
    for (source, code) in [(&missing, 3), (&db, 0)] {
        let broken = Hook::start(Answer::Status(500));
        let ran = run(
            dbbackup()
                .args(["backup", "--out"])
                .arg(&out)
                .arg(source)
                .args(["--notify", &broken.url(), "--notify-on", "always"]),
            code,
        );
        assert_eq!(broken.paths(), [PATH, PATH]);
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert!(
            stderr.contains(&format!(
                "the notification to {} was not delivered (HTTP 500 Internal Server Error); \
                 the command's result is unchanged",
                broken.base
            )),
            "{stderr}"
        );
        assert!(!stderr.contains(TOKEN), "{stderr}");
    }
    // A revoked webhook (404) stays revoked: no retry.
    let gone = Hook::start(Answer::Status(404));
    run(
        dbbackup()
            .args(["backup", "--out"])
            .arg(&out)
            .arg(&missing)
            .args(["--notify", &gone.url()]),
        3,
    );
    assert_eq!(gone.paths(), [PATH]);
    assert!(out.read_dir().unwrap().count() > 0, "the backup was kept");
}

#[test]
fn a_hanging_webhook_costs_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let hang = Hook::start(Answer::Hang);
    let started = Instant::now();
    let ran = run(
        dbbackup()
            .args(["backup", "--out"])
            .arg(dir.path())
            .arg(&missing)
            .args(["--notify", &hang.url()]),
        3,
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(25), "took {took:?}");
    assert_eq!(hang.paths(), [PATH, PATH], "tried twice");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(stderr.contains("was not delivered ("), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[test]
fn webhook_and_ping_tokens_appear_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let broken = Hook::start(Answer::Status(500));
    let pinged = Hook::start(Answer::Status(503));
    let from_env = Hook::start(Answer::Status(200));
    let job = |args: &[&str], code| {
        let mut cmd = in_a_run(args);
        cmd.current_dir(dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
            .env("GITHUB_OUTPUT", dir.path().join("output.txt"))
            .env("DBBACKUP_NOTIFY", format!("{}/env/{TOKEN}", from_env.base));
        run(&mut cmd, code)
    };
    let ping = format!("{}/ping/{TOKEN}", pinged.base);
    let outputs = [
        job(
            &[
                "backup",
                db.to_str().unwrap(),
                "--out",
                "out",
                "--junit",
                "junit.xml",
                "--notify-on=always",
                &format!("--notify={}", broken.url()),
                "--ping",
                &ping,
            ],
            0,
        ),
        job(&["restore-test", "missing/", "--ping", &ping], 6),
        // Refused before anything runs, without quoting the URL.
        job(
            &[
                "backup",
                "x.db",
                "--out",
                "out",
                "--notify",
                &format!("ftp://h/{TOKEN}"),
            ],
            2,
        ),
    ];
    assert!(!broken.received().is_empty() && !pinged.received().is_empty());
    let mut masks = Vec::new();
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains(TOKEN), "{stdout}");
        for line in stderr.lines() {
            match line.strip_prefix("::add-mask::") {
                Some(mask) => masks.push(mask.to_string()),
                None => assert!(!line.contains(TOKEN), "{line}"),
            }
        }
    }
    // Each way of giving a URL masks it whole, and its token alone.
    let env_url = format!("{}/env/{TOKEN}", from_env.base);
    for mask in [broken.url(), ping, env_url, TOKEN.to_string()] {
        assert!(masks.contains(&mask), "{mask} masked: {masks:?}");
    }
    assert_no_token_under(dir.path());
}

fn assert_no_token_under(dir: &Path) {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_token_under(&path);
        } else {
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN),
                "{}",
                path.display()
            );
        }
    }
    assert!(files > 0, "{} holds the step's files", dir.display());
}
