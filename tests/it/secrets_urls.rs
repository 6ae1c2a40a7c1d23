//! Passwords written into database URLs as they are, special characters and all
//! (`postgres://app:p@ss#word@host/db`): no part of the password is ever printed (stdout,
//! stderr, the `::error::` annotation, the parsed connection as shown), the `::add-mask::`
//! commands cover the whole password (never a few letters of it, which would mask those
//! letters everywhere and leave the rest shown), and a URL whose password cannot be read as
//! written is refused with the hint to percent-encode it or to use `PGPASSWORD`/`MYSQL_PWD`.
//!
//! The library functions get many generated passwords (proptest); the binary a handful.

use std::process::Output;

use dbbackup::engine::{self, mysql, postgres};
use dbbackup::runner::known_secrets;
use dbbackup::util::url_passwords;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::dbbackup;

/// Letters that occur in no message dbbackup writes about a URL: a run of the password that
/// holds one of them and shows up in the output was leaked, not written by dbbackup itself.
const MARKERS: &str = "QXZJKVWY";

/// The URLs a password is written into, as a user would paste it.
fn urls(password: &str) -> Vec<String> {
    vec![
        format!("postgres://app:{password}@db.example:5432/app"),
        format!("postgresql://app:{password}@127.0.0.1:1/app?sslmode=disable"),
        format!("mysql://app:{password}@db.example:3306/app"),
        format!("mariadb://app:{password}@127.0.0.1:1/app"),
    ]
}

/// Every run of 4 characters of `password` holding a marker letter that `text` contains.
fn leaks(password: &str, text: &str) -> Vec<String> {
    let chars: Vec<char> = password.chars().collect();
    chars
        .windows(4)
        .map(|w| w.iter().collect::<String>())
        .filter(|w| w.chars().any(|c| MARKERS.contains(c)))
        .filter(|w| text.contains(w.as_str()))
        .collect()
}

fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What the library shows of `url`: its redacted form and the parse's error, or the parsed
/// connection as displayed.
fn shown(url: &str) -> String {
    let mut out = engine::redact(url);
    if url.starts_with("postgres") {
        match postgres::conn::ConnInfo::parse(url) {
            Ok(info) => {
                out += &format!("\n{}\n{info:?}\n{}", info.display(), info.libpq_conninfo())
            }
            Err(e) => out += &format!("\n{e}"),
        }
    } else {
        match mysql::conn::ConnInfo::parse(url) {
            Ok(info) => out += &format!("\n{}\n{info:?}\n{:?}", info.display(), info.tool_args()),
            Err(e) => out += &format!("\n{e}"),
        }
    }
    out
}

/// The masks of a URL argument are the whole password (as written, or as the URL encodes or
/// decodes it), never part of it.
fn check_masks(password: &str, url: &str) -> Result<(), String> {
    let masks = url_passwords(url);
    if !masks.iter().any(|m| m == password) {
        return Err(format!(
            "{url}: masks {masks:?} miss the password {password:?}"
        ));
    }
    if let Some(partial) = masks
        .iter()
        .find(|m| *m != password && decoded(m) != decoded(password) && **m != decoded(password))
    {
        return Err(format!("{url}: mask {partial:?} is not the whole password"));
    }
    let args = ["dbbackup", "backup", url, "--out", "b"].map(String::from);
    let all = known_secrets(args);
    if !all.iter().any(|m| m == password) {
        return Err(format!("{url}: known_secrets {all:?} miss the password"));
    }
    let flag = format!("--restore-into={url}");
    if !known_secrets(["dbbackup".to_string(), flag]).contains(&password.to_string()) {
        return Err(format!("--restore-into={url}: the password is not masked"));
    }
    Ok(())
}

#[test]
fn fuzz_passwords_with_url_characters_never_show_in_library_output() {
    let password = "[QXZJKVWY@#/?:%!$&'*+;=~._\\[\\]-]{4,24}";
    let mut runner = TestRunner::new(Config::with_cases(3_000));
    runner
        .run(&password, |password| {
            for url in urls(&password) {
                let out = shown(&url);
                let leaked = leaks(&password, &out);
                prop_assert!(leaked.is_empty(), "{url} shows {leaked:?}:\n{out}");
                check_masks(&password, &url).map_err(TestCaseError::fail)?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn an_unreadable_url_is_refused_with_the_hint_and_without_its_password() {
    for (url, var) in [
        ("postgres://postgres:pQXZ@ss#wordK@host/db", "PGPASSWORD"),
        ("postgres://postgres:pQXZ/wordK@host/db", "PGPASSWORD"),
        ("postgres://postgres:pQXZ?wordK@host/db", "PGPASSWORD"),
        ("mysql://root:pQXZ@ss/wordK@host/db", "MYSQL_PWD"),
    ] {
        let err = if var == "PGPASSWORD" {
            postgres::conn::ConnInfo::parse(url)
                .unwrap_err()
                .to_string()
        } else {
            mysql::conn::ConnInfo::parse(url).unwrap_err().to_string()
        };
        assert!(
            err.contains("percent-encode") || err.contains("Percent-encode"),
            "{err}"
        );
        assert!(err.contains(var), "{err}");
        assert!(!err.contains("QXZ") && !err.contains("wordK"), "{err}");
        assert!(
            !engine::redact(url).contains("wordK"),
            "{}",
            engine::redact(url)
        );
    }
}

/// Runs `dbbackup ARGS` as a GitHub Actions step would, and returns what it printed.
fn run_as_step(args: &[&str]) -> (Output, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dbbackup()
        .current_dir(dir.path())
        .args(args)
        .env("GITHUB_ACTIONS", "true")
        .env("PGCONNECT_TIMEOUT", "3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn the_binary_masks_whole_passwords_and_prints_none_of_them() {
    for password in [
        "p@ssQX#wordZJ",
        "QX/ZJ?KV@WY",
        "KVWY#",
        "QX@ZJ:KV%2FWY",
        "ZJ@@QX//KV??",
        "Y?QXZJ@host",
    ] {
        // A scheme no engine takes may carry a password all the same.
        let unknown = format!("redis://app:{password}@cache.example/0");
        for url in urls(password).into_iter().chain([unknown]) {
            let restore_into = format!("--restore-into={url}");
            for args in [
                vec!["backup", url.as_str(), "--out", "b"],
                vec!["restore-test", "b", &restore_into],
                // The argument parser quotes a value it refuses.
                vec!["backup", "app.db", "--out", "b", "--keep", url.as_str()],
            ] {
                let (out, stdout, stderr) = run_as_step(&args);
                assert_ne!(out.status.code(), Some(0), "{args:?}");
                // As the runner reads a workflow command: `%25` is `%`.
                let masks: Vec<String> = stdout
                    .lines()
                    .chain(stderr.lines())
                    .filter_map(|l| l.strip_prefix("::add-mask::"))
                    .map(|m| m.replace("%25", "%"))
                    .collect();
                assert!(
                    masks.iter().any(|m| m == password),
                    "{args:?}: the password is not masked whole: {masks:?}"
                );
                for mask in &masks {
                    assert!(
                        decoded(mask) == decoded(password) || *mask == decoded(password),
                        "{args:?}: a mask that is not the whole password: {mask:?}"
                    );
                }
                let shown: String = stdout
                    .lines()
                    .chain(stderr.lines())
                    .filter(|l| !l.starts_with("::add-mask::"))
                    .collect::<Vec<_>>()
                    .join("\n");
                let leaked = leaks(password, &shown);
                assert!(leaked.is_empty(), "{args:?} shows {leaked:?}:\n{shown}");
            }
        }
    }
}

/// A password given in the URL serves the restore test of `backup --restore-test` as it
/// served the dump: the restore connects to the source's server with the source's
/// credentials (the manifest holds the source without its password, so the restore cannot
/// take them from there). A server that asks for a password and gets none says so, and not
/// to check the host and port.
#[test]
fn the_source_urls_password_serves_the_restore_test_too() {
    if !crate::support::pg::server_up() {
        return;
    }
    const PASSWORD: &str = "Rt#pw@QXZ/1";
    let proxy = crate::support::pg::PasswordProxy::start(PASSWORD);
    let db = crate::support::pg::TestDb::new("restore_pw");
    crate::support::pg::psql(
        &db.name,
        "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50);",
    );
    let url = |credentials: &str| {
        format!(
            "postgres://{credentials}@127.0.0.1:{}/{}",
            proxy.port, db.name
        )
    };
    let dir = tempfile::tempdir().unwrap();
    backup_restore_tested(
        &url(&format!("postgres:{}", encoded(PASSWORD))),
        PASSWORD,
        &dir,
    );

    // Without a password: the server's question is named, not the host and port.
    let bare = url("postgres");
    let out = dbbackup()
        .args(["restore-test", dir.path().join("b").to_str().unwrap()])
        .args(["--restore-into", &bare])
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("asks for a password"), "{all}");
    assert!(!all.contains("check the host and port"), "{all}");
}

/// The same for MySQL/MariaDB: a user with a password (the test server's root has none), given
/// only in the URL, serves `backup --restore-test` end to end.
#[test]
fn the_source_urls_password_serves_the_mysql_restore_test_too() {
    use crate::support::mysql;
    if !mysql::server_up() {
        return;
    }
    const PASSWORD: &str = "My#pw@QXZ/1";
    let user = format!("dbb_pw_{}", std::process::id());
    struct DropUser(String);
    impl Drop for DropUser {
        fn drop(&mut self) {
            mysql::sql("", &format!("DROP USER IF EXISTS '{}'@'%'", self.0));
        }
    }
    let _guard = DropUser(user.clone());
    mysql::sql(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL PRIVILEGES ON `dbbackup\\_%`.* TO '{user}'@'%'; \
             GRANT RELOAD, PROCESS ON *.* TO '{user}'@'%';"
        ),
    );
    let db = mysql::TestDb::new("restore_pw");
    mysql::sql(
        &db.name,
        "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
    );
    let url = format!(
        "mysql://{user}:{}@{}:{}/{}",
        encoded(PASSWORD),
        mysql::HOST,
        mysql::PORT,
        db.name
    );
    backup_restore_tested(&url, PASSWORD, &tempfile::tempdir().unwrap());
}

/// PASSWORD as a URL carries it.
fn encoded(password: &str) -> String {
    password
        .replace('#', "%23")
        .replace('@', "%40")
        .replace('/', "%2F")
}

/// `backup URL --out DIR/b --restore-test --junit DIR/r.xml` passes and shows no part of
/// PASSWORD.
fn backup_restore_tested(url: &str, password: &str, dir: &tempfile::TempDir) {
    let out = dbbackup()
        .args(["backup", url, "--out"])
        .arg(dir.path().join("b"))
        .args(["--restore-test", "--junit"])
        .arg(dir.path().join("r.xml"))
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("restore OK"), "{all}");
    assert!(
        leaks(password, &all).is_empty() && !all.contains(&encoded(password)),
        "{all}"
    );
}
