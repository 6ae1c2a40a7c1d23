//! What every area of the integration tests shares: the one way to run the binary under test,
//! the sample data, and (in the modules below) the helpers of particular areas.

pub mod azurite;
pub mod chaos;
pub mod fake_github;
pub mod hook;
pub mod kill;
pub mod mysql;
pub mod pg;
pub mod pg_clusters;
pub mod restore;
pub mod s3;
pub mod sqlite_fixtures;

use std::path::{Path, PathBuf};

use dbbackup::archive::manifest::{self, Manifest};
use std::process::Command;

/// Environment variables the binary under test never inherits, by prefix: those of a GitHub
/// Actions job (which would make it write to that job's summary and outputs, or talk to GitHub),
/// dbbackup's own settings, and the ones database clients and object storage read their
/// defaults and passwords from.
const NOT_INHERITED: [&str; 10] = [
    "GITHUB_",
    "ACTIONS_",
    "RUNNER_",
    "PG",
    "DBBACKUP_",
    "MYSQL",
    "AWS_",
    "AZURE_",
    "AZURITE_",
    "GOOGLE_",
];

/// The repository's root (where `Cargo.toml` is).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `dbbackup` binary Cargo built for these tests.
pub fn bin_path() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dbbackup"))
}

/// The binary under test, started from a clean environment: no variable of [`NOT_INHERITED`]
/// reaches it unless the test sets it again. Every test that runs `dbbackup` starts here
/// (wrap it with `assert_cmd::Command::from_std` for assertions or `write_stdin`).
pub fn dbbackup() -> Command {
    let mut cmd = Command::new(bin_path());
    for (name, _) in std::env::vars_os() {
        let bytes = name.as_encoded_bytes();
        if NOT_INHERITED
            .iter()
            .any(|p| bytes.starts_with(p.as_bytes()))
        {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// `cmd` (a [`dbbackup`] command) run by `wrapper` (a shell that sets a limit first, GNU time,
/// ...): `wrapper`'s own arguments, then `cmd`'s program and arguments, in `cmd`'s environment.
pub fn run_under(mut wrapper: Command, cmd: &Command) -> Command {
    wrapper.arg(cmd.get_program()).args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapper.env(name, value),
            None => wrapper.env_remove(name),
        };
    }
    wrapper
}

/// A sample file of `tests/data/` (see its README for what each is and where it comes from).
/// Read it, never write to it: copy it with [`data_copy`] first.
pub fn data(name: &str) -> PathBuf {
    let path = repo().join("tests/data").join(name);
    assert!(path.is_file(), "no sample {}", path.display());
    path
}

/// A private copy of the sample `name` in `dir` (a test's temporary directory), under the same
/// name: what a test may write to.
pub fn data_copy(name: &str, dir: &Path) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(data(name), &path)
        .unwrap_or_else(|e| panic!("copy sample {name} to {}: {e}", path.display()));
    path
}

/// Backs up `source` into `out` with the real binary (`--json`, plus `extra`), asserting it
/// succeeds; the archive, its manifest and what was logged.
pub fn backup_json(source: &str, out: &Path, extra: &[&str]) -> (PathBuf, Manifest, String) {
    backup_json_env(source, out, extra, &[])
}

/// [`backup_json`] with these variables in the binary's environment.
pub fn backup_json_env(
    source: &str,
    out: &Path,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (PathBuf, Manifest, String) {
    let output = dbbackup()
        .args(["backup", source, "--json", "--out"])
        .arg(out)
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "backup failed: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let path = PathBuf::from(json["path"].as_str().unwrap());
    let manifest = Manifest::load(&manifest::path_for(&path)).unwrap();
    (path, manifest, stderr)
}

/// Writes an executable script at `path`, through a `sh` of its own rather than this process:
/// a file this multi-threaded process has open for writing is inherited by every child that
/// another test thread spawns at that moment, and executing the script then fails with "Text
/// file busy" (ETXTBSY, rust-lang/rust#114554), which a step that hides its tools' stderr
/// shows only as a wrong answer.
pub fn write_executable(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut sh = std::process::Command::new("sh")
        .args(["-c", "cat >\"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh runs");
    sh.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(sh.wait().unwrap().success(), "write {}", path.display());
}
