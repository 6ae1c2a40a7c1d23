//! The composite action's shell steps, run locally under a fake runner environment:
//! `GITHUB_OUTPUT`, `GITHUB_PATH`, `GITHUB_STEP_SUMMARY` as temp files, `RUNNER_OS`/`RUNNER_ARCH`
//! set, a fake release served from a `file://` URL.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::hook::{Answer, Hook, TOKEN};
use crate::support::{self, repo};

struct FakeRunner {
    dir: tempfile::TempDir,
}

impl FakeRunner {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// Runs a script of the action with the runner's variables and `env`.
    fn run(&self, script: &str, env: &[(&str, &str)]) -> Output {
        let bin_dir = support::bin_path().parent().unwrap();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/action").join(script))
            .env_clear()
            .env("PATH", path)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_ENV", self.file("env"))
            .env("GITHUB_PATH", self.file("path"))
            .env("GITHUB_STEP_SUMMARY", self.file("summary"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", self.file("temp"))
            .env("RUNNER_TOOL_CACHE", self.file("toolcache"))
            .env("ACTION_PATH", repo());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

/// `name=value` lines and `name<<DELIM` blocks, as the runner reads `$GITHUB_OUTPUT`.
fn output(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix(&format!("{name}=")) {
            return Some(v.to_string());
        }
        if let Some(delim) = line.strip_prefix(&format!("{name}<<")) {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
            return Some(value.join("\n"));
        }
    }
    None
}

fn version_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

const ASSET: &str = "dbbackup-x86_64-unknown-linux-musl.tar.gz";

/// The release asset (the debug binary, tarred and gzipped) and its SHA256SUMS line, made once
/// per test run: a dozen workflow tests publish a release, and gzipping the binary each time
/// cost seconds per run.
fn release_asset() -> &'static (PathBuf, String) {
    static ASSET_AND_SUMS: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    ASSET_AND_SUMS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-release");
        let part = dir.join(format!("{ASSET}.{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let bin = support::bin_path();
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&part)
            .arg("-C")
            .arg(bin.parent().unwrap())
            .arg("dbbackup")
            .status()
            .unwrap();
        assert!(status.success());
        let asset = dir.join(ASSET);
        fs::rename(&part, &asset).unwrap();
        let sums = Command::new("sha256sum")
            .arg(ASSET)
            .current_dir(&dir)
            .output()
            .unwrap();
        (asset, String::from_utf8(sums.stdout).unwrap())
    })
}

/// A release directory as GitHub would serve it: the asset and SHA256SUMS under the tag.
fn fake_release(root: &Path, tamper: bool) -> String {
    let tag_dir = root.join(version_tag());
    fs::create_dir_all(&tag_dir).unwrap();
    let (asset, sums) = release_asset();
    if fs::hard_link(asset, tag_dir.join(ASSET)).is_err() {
        fs::copy(asset, tag_dir.join(ASSET)).unwrap();
    }
    let mut sums = sums.clone();
    if tamper {
        sums = format!("{}{}", "0".repeat(64), &sums[64..]);
    }
    fs::write(tag_dir.join("SHA256SUMS"), sums).unwrap();
    format!("file://{}", root.display())
}

#[test]
fn install_uses_a_release_binary_whose_checksum_matches() {
    let runner = FakeRunner::new();
    let base = fake_release(&runner.file("releases"), false);
    let out = runner.run(
        "install.sh",
        &[
            ("ACTION_REPOSITORY", "owner/dbbackup"),
            ("DBBACKUP_RELEASE_BASE_URL", &base),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        output(&runner.read("output"), "found").as_deref(),
        Some("true")
    );
    let installed = PathBuf::from(runner.read("path").trim()).join("dbbackup");
    let version = Command::new(installed).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn install_refuses_a_binary_whose_checksum_does_not_match() {
    let runner = FakeRunner::new();
    let base = fake_release(&runner.file("releases"), true);
    let out = runner.run(
        "install.sh",
        &[
            ("ACTION_REPOSITORY", "owner/dbbackup"),
            ("DBBACKUP_RELEASE_BASE_URL", &base),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("::error title=dbbackup install::"));
    assert_eq!(runner.read("path"), "", "nothing was put on PATH");
}

#[test]
fn install_falls_back_to_building_when_there_is_no_release() {
    let runner = FakeRunner::new();
    let out = runner.run(
        "install.sh",
        &[
            ("ACTION_REPOSITORY", "owner/dbbackup"),
            (
                "DBBACKUP_RELEASE_BASE_URL",
                &format!("file://{}", runner.file("nothing-here").display()),
            ),
        ],
    );
    assert!(out.status.success());
    let outputs = runner.read("output");
    assert_eq!(output(&outputs, "found").as_deref(), Some("false"));
    assert!(output(&outputs, "build-root").is_some_and(|r| r.contains("toolcache")));
}

#[test]
fn run_step_backs_up_and_reports_outputs_and_summary() {
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    let out_dir = runner.file("backups");
    let out = runner.run(
        "run.sh",
        &[
            ("INPUT_DATABASE", db.to_str().unwrap()),
            ("INPUT_COMMAND", "backup"),
            ("INPUT_KEEP", "3"),
            ("INPUT_COMPRESSION_LEVEL", "6"),
            ("INPUT_RESTORE_TEST", "true"),
            ("INPUT_UPLOAD", "false"),
            ("INPUT_PRUNE", "true"),
            ("INPUT_OUT", out_dir.to_str().unwrap()),
            (
                "INPUT_JUNIT_PATH",
                runner.file("junit.xml").to_str().unwrap(),
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs = runner.read("output");
    let path = PathBuf::from(output(&outputs, "backup-path").expect("backup-path output"));
    assert!(path.starts_with(&out_dir) && path.is_file());
    assert_eq!(output(&outputs, "rows").as_deref(), Some("15607"));
    assert_eq!(output(&outputs, "tables").as_deref(), Some("11"));
    assert_eq!(output(&outputs, "passed").as_deref(), Some("true"));
    assert_eq!(
        output(&outputs, "report-path").map(PathBuf::from),
        Some(runner.file("junit.xml"))
    );
    assert!(runner.file("junit.xml").is_file());
    let summary = runner.read("summary");
    assert!(summary.contains("| `Track` | 3503 |"), "{summary}");
    assert!(
        summary.contains("restore OK: 11 tables, 15607 rows"),
        "{summary}"
    );

    // `max-shrink` and `allow-shrink` reach the drift guard: a loss of 29% of a table passes
    // the default 50% but fails 10%, unless allowed for the run.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "PRAGMA foreign_keys = OFF; DELETE FROM InvoiceLine WHERE InvoiceLineId > 1600",
        )
        .unwrap();
    let again = |allow: &str| {
        runner.run(
            "run.sh",
            &[
                ("INPUT_DATABASE", db.to_str().unwrap()),
                ("INPUT_RESTORE_TEST", "false"),
                ("INPUT_UPLOAD", "false"),
                ("INPUT_OUT", out_dir.to_str().unwrap()),
                ("INPUT_MAX_SHRINK", "10"),
                ("INPUT_ALLOW_SHRINK", allow),
            ],
        )
    };
    let refused = again("false");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(5), "{err}");
    assert!(
        err.contains("table InvoiceLine shrank from 2240 to 1600 rows"),
        "{err}"
    );
    let allowed = again("true");
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
}

#[test]
fn run_step_fails_loudly_without_a_database() {
    let runner = FakeRunner::new();
    let out = runner.run("run.sh", &[("INPUT_COMMAND", "backup")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("::error title=dbbackup::"));
}

/// The `jobs` input reaches dbbackup as `--jobs`: without `format: directory` it is dbbackup's
/// usage error, before any dump (a cheap way to see the flag passed).
#[test]
fn run_step_passes_the_jobs_input_as_jobs() {
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    let backups = runner.file("backups");
    // INPUT_COMMAND defaults to backup.
    let inputs = [("INPUT_JOBS", "2"), ("INPUT_RESTORE_TEST", "false")];
    let paths = [
        ("INPUT_DATABASE", db.to_str().unwrap()),
        ("INPUT_OUT", backups.to_str().unwrap()),
    ];
    let out = runner.run(
        "run.sh",
        &[&inputs[..], &paths, &[("INPUT_UPLOAD", "false")]].concat(),
    );
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("--jobs needs --format directory"), "{said}");
}

#[test]
fn run_step_encrypts_with_the_identity_from_the_environment_and_masks_it() {
    use age::secrecy::ExposeSecret;
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    let out_dir = runner.file("backups");
    let key = age::x25519::Identity::generate();
    let secret = key.to_string().expose_secret().to_string();
    let public = key.to_public().to_string();
    let identity = format!("# created: by the test\n# public key: {public}\n{secret}\n");
    let out = runner.run(
        "run.sh",
        &[
            ("INPUT_DATABASE", db.to_str().unwrap()),
            ("INPUT_RESTORE_TEST", "true"),
            ("INPUT_UPLOAD", "false"),
            ("INPUT_OUT", out_dir.to_str().unwrap()),
            (
                "INPUT_JUNIT_PATH",
                runner.file("junit.xml").to_str().unwrap(),
            ),
            // What action.yml maps the `encrypt-to` and `identity` inputs to.
            ("DBBACKUP_RECIPIENTS", &public),
            ("DBBACKUP_IDENTITY", &identity),
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.lines().any(|l| l == format!("::add-mask::{secret}")),
        "the key is masked line by line: {stderr}"
    );
    let outputs = runner.read("output");
    let path = output(&outputs, "backup-path").unwrap();
    assert!(path.ends_with(".sqlite.gz.age"), "{path}");
    assert_eq!(output(&outputs, "passed").as_deref(), Some("true"));
    let summary = runner.read("summary");
    assert!(
        !summary.contains("| `Track`"),
        "tables stay private: {summary}"
    );
    let unmasked = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| !l.starts_with("::add-mask::"))
        .chain(summary.lines())
        .chain(outputs.lines());
    for line in unmasked {
        assert!(!line.contains(&secret), "the identity leaked: {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// The whole action (and the example workflows) under the fake runner of
// `support/fake_runner.py`, which gives each step what GitHub's runner gives it: a composite
// action's steps get `github.action_path` but empty `github.action_repository` and
// `github.action_ref`, and `hashFiles` sees only the workspace (see `support/FAKE_RUNNER.md`).

/// A fake runner's machine: the runner's directory with its work directory (`work/`, holding
/// the workspace and `_actions/`), a fake `cargo` that "builds" the binary under test, and a
/// fake `github.com` (a `file://` directory) that serves releases.
struct FakeMachine {
    dir: tempfile::TempDir,
    /// Jobs run so far: each gets a fresh runner directory (temp, tool cache), as each job of
    /// GitHub's hosted runners gets a fresh machine; the cache service is shared.
    jobs: std::cell::Cell<usize>,
}

impl FakeMachine {
    fn new() -> Self {
        let machine = Self {
            dir: tempfile::tempdir().unwrap(),
            jobs: std::cell::Cell::new(0),
        };
        let fakebin = machine.path("fakebin");
        fs::create_dir_all(&fakebin).unwrap();
        // `cargo install --locked --path P --root R`: puts the binary under test in R/bin and
        // notes the call, so a test sees whether the action built from source.
        let cargo = format!(
            "#!/usr/bin/env bash\nset -eu\necho \"$*\" >>'{calls}'\nroot=''\nwhile [ $# -gt 0 ]; do\n  [ \"$1\" = --root ] && root=$2\n  shift\ndone\nmkdir -p \"$root/bin\"\ncp '{bin}' \"$root/bin/dbbackup\"\n",
            calls = machine.path("cargo-calls").display(),
            bin = support::bin_path().display(),
        );
        fs::write(fakebin.join("cargo"), cargo).unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(fakebin.join("cargo"))
            .status()
            .unwrap();
        fs::create_dir_all(machine.workspace()).unwrap();
        machine
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn workspace(&self) -> PathBuf {
        self.path("work/app/app")
    }

    fn server(&self) -> PathBuf {
        self.path("github.com")
    }

    /// The `cargo install` calls made so far.
    fn builds(&self) -> usize {
        fs::read_to_string(self.path("cargo-calls"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Publishes the binary under test as release `v<Cargo.toml version>` of `repository` on
    /// the fake github.com, as the release workflow does.
    fn publish_release(&self, repository: &str) {
        fake_release(
            &self.server().join(repository).join("releases/download"),
            false,
        );
    }

    /// Puts the action's files (those a checkout of its repository has) at `rel`.
    fn install_action(&self, rel: &str) -> PathBuf {
        let dest = self.path(rel);
        copy_action(repo(), &dest);
        dest
    }

    /// Runs `cfg` (see `fake_runner.py`) with this machine's directories.
    fn run(&self, mut cfg: serde_json::Value) -> serde_json::Value {
        let obj = cfg.as_object_mut().unwrap();
        self.jobs.set(self.jobs.get() + 1);
        let root = self.path(&format!("runner-{}", self.jobs.get()));
        obj.insert("root".into(), root.display().to_string().into());
        obj.insert(
            "cache_store".into(),
            self.path("cache-store").display().to_string().into(),
        );
        obj.insert(
            "workspace".into(),
            self.workspace().display().to_string().into(),
        );
        let env = obj
            .entry("env")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .unwrap();
        env.insert(
            "PATH".into(),
            format!(
                "{}:{}",
                self.path("fakebin").display(),
                std::env::var("PATH").unwrap()
            )
            .into(),
        );
        env.entry("GITHUB_SERVER_URL")
            .or_insert_with(|| format!("file://{}", self.server().display()).into());
        let mut child = Command::new("python3")
            .arg(repo().join("tests/it/support/fake_runner.py"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        serde_json::to_writer(child.stdin.take().unwrap(), &cfg).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the fake runner failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs the action at `action_path` alone with `inputs`.
    fn run_action(&self, action_path: &Path, inputs: serde_json::Value) -> serde_json::Value {
        self.run(serde_json::json!({
            "action_path": action_path.display().to_string(),
            "inputs": inputs,
            "github": {"repository": "someone/app", "event_name": "push"},
        }))
    }
}

/// The files of the action's repository that a checkout has and the action uses.
fn copy_action(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in ["action.yml", "Cargo.toml", "Cargo.lock", "scripts", "src"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(from.join(entry))
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// The step of `result` (a fake runner's answer) named `name`.
fn step<'a>(result: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    result["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {result:#}"))
}

fn sqlite_inputs(machine: &FakeMachine) -> serde_json::Value {
    let db = support::data_copy("chinook.sqlite", &machine.workspace());
    serde_json::json!({
        "database": db.display().to_string(),
        "upload": "false",
        "out": machine.path("backups").display().to_string(),
    })
}

#[test]
fn action_from_github_finds_its_release_by_the_path_it_was_downloaded_to() {
    // `uses: acme/dbbackup@v0`: GitHub's runner downloads the action to
    // `<work>/_actions/acme/dbbackup/v0`, and its steps get that as github.action_path only.
    let machine = FakeMachine::new();
    machine.publish_release("acme/dbbackup");
    let action = machine.install_action("work/_actions/acme/dbbackup/v0");
    let result = machine.run_action(&action, sqlite_inputs(&machine));
    assert_eq!(result["job_status"], "success", "{}", result["log"]);
    let install = step(&result, "Find a dbbackup release binary");
    assert_eq!(install["outputs"]["found"], "true", "{}", result["log"]);
    assert_eq!(machine.builds(), 0, "no source build: {}", result["log"]);
    assert!(result["log"].as_str().unwrap().contains("acme/dbbackup"));
    assert_eq!(result["outputs"]["passed"], "true", "{}", result["log"]);
}

#[test]
fn action_finds_its_release_when_the_ref_has_a_slash_or_is_a_sha() {
    for reference in ["release/0.x", "0123456789abcdef0123456789abcdef01234567"] {
        let machine = FakeMachine::new();
        machine.publish_release("acme/dbbackup");
        let action = machine.install_action(&format!("work/_actions/acme/dbbackup/{reference}"));
        let result = machine.run_action(&action, sqlite_inputs(&machine));
        let install = step(&result, "Find a dbbackup release binary");
        assert_eq!(install["outputs"]["found"], "true", "{}", result["log"]);
        assert_eq!(machine.builds(), 0);
    }
}

#[test]
fn action_passes_the_alert_inputs_through_the_environment_and_masks_them() {
    let machine = FakeMachine::new();
    machine.publish_release("acme/dbbackup");
    let action = machine.install_action("work/_actions/acme/dbbackup/v0");
    let (chat, other, pinged) = (
        Hook::start(Answer::Status(200)),
        Hook::start(Answer::Status(200)),
        Hook::start(Answer::Status(200)),
    );
    let mut inputs = sqlite_inputs(&machine);
    let ping = format!("{}/ping/{TOKEN}", pinged.base);
    inputs["notify"] = format!("{}\n{}\n", chat.url(), other.url()).into();
    inputs["notify-on"] = "always".into();
    inputs["ping"] = ping.clone().into();
    let result = machine.run_action(&action, inputs);
    assert_eq!(result["job_status"], "success", "{}", result["log"]);
    for hook in [&chat, &other] {
        let received = hook.received();
        assert_eq!(received.len(), 1, "{}", result["log"]);
        assert!(received[0].body.contains("dbbackup backup succeeded"));
    }
    assert_eq!(
        pinged.paths(),
        [
            "/ping/XoXoT0kenInPath7f3e/start",
            "/ping/XoXoT0kenInPath7f3e"
        ]
    );
    let log = result["log"].as_str().unwrap();
    let (masks, rest): (Vec<&str>, Vec<&str>) =
        log.lines().partition(|l| l.contains("::add-mask::"));
    assert!(masks.iter().any(|m| m.ends_with(&ping)), "{log}");
    for line in rest {
        assert!(!line.contains(TOKEN), "{line}");
    }
}

#[test]
fn action_from_the_workspace_builds_from_source() {
    // `uses: ./` (the action's own repository) and `uses: ./tools/dbbackup` (a checkout of it
    // inside the workspace): no release to look for, a build from the checked-out source.
    for rel in ["", "tools/dbbackup"] {
        let machine = FakeMachine::new();
        machine.publish_release("acme/dbbackup");
        let action = machine.workspace().join(rel);
        copy_action(repo(), &action);
        let result = machine.run_action(&action, sqlite_inputs(&machine));
        assert_eq!(result["job_status"], "success", "{}", result["log"]);
        let install = step(&result, "Find a dbbackup release binary");
        assert_eq!(install["outputs"]["found"], "false");
        assert_eq!(machine.builds(), 1, "{}", result["log"]);
        assert_eq!(result["outputs"]["passed"], "true", "{}", result["log"]);
    }
}

#[test]
fn build_cache_key_follows_the_actions_source() {
    // hashFiles() sees only the workspace, and the action's files are outside it: the key
    // must come from the action's own step.
    let machine = FakeMachine::new(); // no release published: the action builds
    let action = machine.install_action("work/_actions/acme/dbbackup/main");
    let cache_key = |result: &serde_json::Value| {
        let cache = step(result, "Cache a dbbackup built from source");
        cache["with"]["key"].as_str().unwrap().to_string()
    };
    let first = machine.run_action(&action, sqlite_inputs(&machine));
    assert_eq!(first["job_status"], "success", "{}", first["log"]);
    assert_eq!(machine.builds(), 1);
    let key = cache_key(&first);
    assert!(
        key.starts_with("dbbackup-Linux-X64-v0.") && key.len() > 60,
        "the key names the version and hashes the source: {key}"
    );

    let again = machine.run_action(&action, sqlite_inputs(&machine));
    assert_eq!(cache_key(&again), key);
    assert_eq!(
        machine.builds(),
        1,
        "the same source is restored, not built"
    );

    // An upgraded action (another source): another key, and a new build.
    let lib = action.join("src/lib.rs");
    let mut source = fs::read_to_string(&lib).unwrap();
    source.push_str("\n// changed\n");
    fs::write(&lib, source).unwrap();
    let upgraded = machine.run_action(&action, sqlite_inputs(&machine));
    assert_eq!(upgraded["job_status"], "success", "{}", upgraded["log"]);
    assert_ne!(cache_key(&upgraded), key);
    assert_eq!(machine.builds(), 2, "the changed source is built");

    // `uses: ./`: the key of the same source, wherever it is checked out.
    copy_action(&action, &machine.workspace());
    let local = machine.run_action(&machine.workspace(), sqlite_inputs(&machine));
    assert_eq!(local["job_status"], "success", "{}", local["log"]);
    assert_eq!(cache_key(&local), cache_key(&upgraded));
}

#[test]
fn action_input_compression_zstd_writes_a_zst_backup_at_zstds_default_level() {
    let machine = FakeMachine::new();
    copy_action(repo(), &machine.workspace());
    let mut inputs = sqlite_inputs(&machine);
    inputs["compression"] = "zstd".into();
    let result = machine.run_action(&machine.workspace(), inputs);
    assert_eq!(result["job_status"], "success", "{}", result["log"]);
    assert_eq!(result["outputs"]["passed"], "true", "{}", result["log"]);
    let path = result["outputs"]["backup-path"].as_str().unwrap();
    assert!(path.ends_with(".sqlite.zst"), "{path}");
    let manifest = fs::read_to_string(format!("{path}.manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["compression"],
        serde_json::json!({"codec": "zstd", "level": 3})
    );
}

/// Cargo.toml's `version`.
fn cargo_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[test]
fn docs_and_examples_use_the_major_tag_the_release_workflow_moves() {
    // The release workflow moves `v<major>` (everything before the first dot of the tag) to
    // each release: the README and the examples must name that tag.
    let major = format!("v{}", cargo_version().split('.').next().unwrap());
    let mut files = vec![repo().join("README.md")];
    for entry in fs::read_dir(repo().join("examples")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut seen = 0;
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("dbbackup/dbbackup@") {
            let tag: String = text[at + "dbbackup/dbbackup@".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            assert_eq!(tag, major, "{}: dbbackup/dbbackup@{tag}", file.display());
            seen += 1;
        }
    }
    assert!(seen >= 3, "the README and the examples use the action");
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("`dbbackup/dbbackup` stands for"),
        "the README says what dbbackup/dbbackup stands for"
    );
}

#[test]
fn release_workflow_refuses_a_tag_that_is_not_cargo_tomls_version() {
    let release = repo().join(".github/workflows/release.yml");
    for (tag, passes) in [
        (format!("v{}", cargo_version()), true),
        ("v1.0.0".to_string(), false),
        (format!("v{}-rc1", cargo_version()), false),
    ] {
        let machine = FakeMachine::new();
        fs::copy(
            repo().join("Cargo.toml"),
            machine.workspace().join("Cargo.toml"),
        )
        .unwrap();
        let result = machine.run(serde_json::json!({
            "workflow": release.display().to_string(),
            "job": "version",
            "github": {"repository": "acme/dbbackup", "event_name": "push",
                       "ref_name": tag, "ref": format!("refs/tags/{tag}")},
        }));
        let expected = if passes { "success" } else { "failure" };
        assert_eq!(result["job_status"], expected, "{tag}: {}", result["log"]);
        if !passes {
            assert!(result["log"].as_str().unwrap().contains("::error"));
        }
    }
    let text = fs::read_to_string(&release).unwrap();
    assert!(
        text.contains("needs: version"),
        "the builds wait for the check"
    );
}

#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    // The highest `rust-version` among the locked packages whose sources Cargo has fetched
    // (all those built on this platform).
    let lock = fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let registries: Vec<PathBuf> = fs::read_dir(home.join("registry/src"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    let mut needed: Option<(Vec<u32>, String)> = None;
    let (mut name, mut checked) = (String::new(), 0);
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("version = ") {
            let dir = format!("{name}-{}", v.trim_matches('"'));
            let Some(manifest) = registries
                .iter()
                .map(|r| r.join(&dir).join("Cargo.toml"))
                .find(|m| m.is_file())
            else {
                continue;
            };
            checked += 1;
            let text = fs::read_to_string(manifest).unwrap();
            let rv = text
                .lines()
                .find_map(|l| l.strip_prefix("rust-version = "))
                .map(|v| v.trim_matches('"').to_string());
            if let Some(rv) = rv
                && needed.as_ref().is_none_or(|(n, _)| parse(&rv) > *n)
            {
                needed = Some((parse(&rv), format!("{rv} ({dir})")));
            }
        }
    }
    if checked == 0 {
        eprintln!("notice: no fetched sources of the locked dependencies; nothing to compare");
        return;
    }
    let (needed, which) = needed.unwrap();
    let declared = env!("CARGO_PKG_RUST_VERSION");
    assert!(!declared.is_empty(), "Cargo.toml declares no rust-version");
    assert_eq!(
        parse(declared),
        needed,
        "Cargo.toml's rust-version is {declared}; the dependencies need {which}"
    );
}

#[test]
fn github_ci_and_ci_run_prepare_the_machine_with_one_script() {
    // What the tests need (Debian packages, junitparser, PyYAML for the fake runner, the npm
    // packages of tests/node and scripts/lint) is installed by scripts/ci/prepare.sh, which
    // both .ci/run and GitHub's ci.yml call; neither installs anything itself.
    let prepare = repo().join("scripts/ci/prepare.sh");
    assert!(prepare.is_file(), "no scripts/ci/prepare.sh");
    for file in [".ci/run", ".github/workflows/ci.yml"] {
        let text = fs::read_to_string(repo().join(file)).unwrap();
        assert!(
            text.contains("scripts/ci/prepare.sh"),
            "{file} does not call prepare.sh"
        );
        for install in ["apt-get install", "pip install", "npm ci", "npm install"] {
            assert!(
                !text.contains(install),
                "{file} installs by itself: {install}"
            );
        }
    }
    let out = Command::new("bash")
        .arg(&prepare)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = String::from_utf8_lossy(&out.stdout);
    for need in [
        "sqlite3",
        "sqlite3-tools",
        "libxml2-utils",
        "pigz",
        "openssh-client",
        "postgresql-client",
        "mariadb-client",
        "time",
        "junitparser",
        "pyyaml",
        "moto[server]",
        "npm ci in tests/node",
        "npm ci in scripts/lint",
    ] {
        assert!(
            plan.contains(need),
            "prepare.sh --dry-run lacks {need}: {plan}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The example workflows (and self-test.yml) under the fake runner, against the fake GitHub:
// their shell steps, and the action's steps with the inputs they give it.

use crate::support::fake_github::{self, FakeGitHub};

/// Runs `job` of `workflow` (relative to the repository) with the action published as
/// `dbbackup/dbbackup` (a release of the binary under test) and `extra` merged into the
/// fake runner's configuration.
fn run_workflow(
    machine: &FakeMachine,
    fake: &FakeGitHub,
    workflow: &str,
    job: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    machine.publish_release("dbbackup/dbbackup");
    run_workflow_unreleased(machine, fake, workflow, job, extra)
}

/// [`run_workflow`] without a release: the action "builds" the binary under test from source
/// (the fake `cargo`), which spares packing a release of the debug binary (seconds of gzip).
fn run_workflow_unreleased(
    machine: &FakeMachine,
    fake: &FakeGitHub,
    workflow: &str,
    job: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let action = machine.install_action("work/_actions/dbbackup/dbbackup/v0");
    let env: serde_json::Map<String, serde_json::Value> = fake
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let mut cfg = serde_json::json!({
        "workflow": repo().join(workflow).display().to_string(),
        "job": job,
        "actions": {"dbbackup/dbbackup": action.display().to_string()},
        "env": env,
        "github": {
            "repository": format!("{}/{}", fake_github::OWNER, fake_github::REPO),
            "token": fake_github::TOKEN,
            "server_url": "https://github.com",
            "run_id": fake_github::RUN_ID.to_string(),
            "event_name": "schedule",
        },
        // What these actions need of the job's token.
        "needs_permissions": {"mikepenz/action-junit-report": {"checks": "write"}},
    });
    for (k, v) in extra.as_object().unwrap() {
        match (cfg.get_mut(k), v) {
            (Some(serde_json::Value::Object(base)), serde_json::Value::Object(more)) => {
                base.extend(more.clone())
            }
            _ => {
                cfg[k] = v.clone();
            }
        }
    }
    machine.run(cfg)
}

fn age_key() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let key = age::x25519::Identity::generate();
    (
        key.to_string().expose_secret().to_string(),
        key.to_public().to_string(),
    )
}

fn nightly(
    machine: &FakeMachine,
    fake: &FakeGitHub,
    extra: serde_json::Value,
) -> serde_json::Value {
    let db = support::data_copy("chinook.sqlite", &machine.workspace());
    let (secret, public) = age_key();
    let mut cfg = serde_json::json!({
        "secrets": {"DATABASE_URL": db.display().to_string(), "BACKUP_KEY": secret,
                    "BACKUP_PUBLIC_KEY": public, "DB_PASSWORD": ""},
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    run_workflow(machine, fake, "examples/nightly-backup.yml", "backup", cfg)
}

#[test]
fn nightly_example_backs_up_reports_and_alerts_only_on_a_failed_backup() {
    let fake = FakeGitHub::start();
    let machine = FakeMachine::new();
    let result = nightly(&machine, &fake, serde_json::json!({}));
    let steps = &result["steps"];
    assert_eq!(steps["backup"]["outcome"], "success", "{}", result["log"]);
    assert!(
        result["steps"]["backup"]["outputs"]["backup-path"]
            .as_str()
            .unwrap()
            .ends_with(".gz.age"),
        "{result:#}"
    );
    let report = step(&result, "Show the restore test as checks");
    assert_eq!(
        report["outcome"], "success",
        "the job may write checks: {report}"
    );
    assert_eq!(step(&result, "Alert on failure")["outcome"], "skipped");
    assert_eq!(result["job_status"], "success");
    assert_eq!(fake.artifacts().len(), 1);

    // Only the reporter fails (the checks API is down): no "backup failed" issue.
    let machine = FakeMachine::new();
    let result = nightly(
        &machine,
        &fake,
        serde_json::json!({"fail_uses": {"mikepenz/action-junit-report": "HTTP 502"}}),
    );
    assert_eq!(result["steps"]["backup"]["outcome"], "success");
    assert_eq!(step(&result, "Alert on failure")["outcome"], "skipped");

    // The backup fails (no database): the alert fires.
    let machine = FakeMachine::new();
    let missing = machine.path("no-such.db").display().to_string();
    let (secret, public) = age_key();
    let result = nightly(
        &machine,
        &fake,
        serde_json::json!({
            "secrets": {"DATABASE_URL": missing, "BACKUP_KEY": secret,
                        "BACKUP_PUBLIC_KEY": public},
        }),
    );
    assert_eq!(result["steps"]["backup"]["outcome"], "failure");
    assert_ne!(step(&result, "Alert on failure")["outcome"], "skipped");
}

fn pull_request(from_fork: bool) -> serde_json::Value {
    let head = if from_fork {
        "someone/shop".to_string()
    } else {
        format!("{}/{}", fake_github::OWNER, fake_github::REPO)
    };
    serde_json::json!({
        "event_name": "pull_request",
        "event": {"pull_request": {"head": {"repo": {"full_name": head, "fork": from_fork}}}},
    })
}

#[test]
fn pr_example_skips_pull_requests_from_forks_with_a_notice() {
    // A pull request from a fork gets no secrets and a read-only token.
    let fake = FakeGitHub::start();
    fake.set_read_only(true);
    let machine = FakeMachine::new();
    let result = run_workflow(
        &machine,
        &fake,
        "examples/pr-restore-check.yml",
        "restore-test",
        serde_json::json!({
            "github": pull_request(true),
            "secrets": {},
            "permissions": {"actions": "read", "contents": "read", "checks": "read"},
        }),
    );
    assert_eq!(result["job_status"], "success", "{result:#}");
    assert!(
        result["log"].as_str().unwrap().contains("::notice"),
        "{}",
        result["log"]
    );
    assert_eq!(
        step(&result, "Restore-test the latest backup")["outcome"],
        "skipped"
    );

    // From the repository itself the check runs.
    let fake = FakeGitHub::start();
    let machine = FakeMachine::new();
    let result = run_workflow(
        &machine,
        &fake,
        "examples/pr-restore-check.yml",
        "restore-test",
        serde_json::json!({"github": pull_request(false)}),
    );
    assert_ne!(
        step(&result, "Restore-test the latest backup")["outcome"],
        "skipped"
    );
}

#[test]
fn self_test_workflow_passes_from_a_public_repository() {
    // self-test.yml runs in this (public) repository: the guard refuses plain uploads there.
    let fake = FakeGitHub::start();
    fake.set_visibility("public");
    let machine = FakeMachine::new();
    copy_action(repo(), &machine.workspace());
    let result = run_workflow(
        &machine,
        &fake,
        ".github/workflows/self-test.yml",
        "sqlite",
        serde_json::json!({"github": {"event_name": "push"}}),
    );
    assert_eq!(result["job_status"], "success", "{}", result["log"]);
    assert_eq!(
        step(&result, "Check the restore test passed")["outcome"],
        "success"
    );
}

/// `database: mysql://…` with the password in `env: MYSQL_PWD: ${{ secrets.… }}`, as the README
/// shows it: a backup with its restore test, then a restore test of that backup alone, against
/// the real MariaDB as a user with a password. The password is masked before anything is
/// printed, and appears nowhere else: log, summary, outputs, reports, manifest.
#[test]
fn mysql_backup_and_restore_test_with_the_password_from_a_secret() {
    use crate::support::mysql::{HOST, PORT, exclusive_db, sql};
    let Some((_one_at_a_time, db)) = exclusive_db(
        "action",
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(40));
         INSERT INTO accounts SELECT seq, CONCAT('owner ', seq) FROM seq_1_to_250;",
    ) else {
        return;
    };
    let user = format!("dbb_action_{}", std::process::id());
    let password = "Act10n-s3cret-Qz81x";
    sql(
        "",
        &format!(
            "DROP USER IF EXISTS '{user}'@'127.0.0.1';
             CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
             GRANT ALL ON `{db}`.* TO '{user}'@'127.0.0.1';
             GRANT RELOAD, PROCESS ON *.* TO '{user}'@'127.0.0.1';
             GRANT ALL ON `dbbackup\\_scratch\\_%`.* TO '{user}'@'127.0.0.1';",
            db = db.name
        ),
    );
    let fake = FakeGitHub::start();
    let machine = FakeMachine::new();
    let out = machine.path("backups");
    let (junit, junit_again) = (machine.path("backup.xml"), machine.path("again.xml"));
    let workflow = machine.path("mysql.yml");
    let with = |extra: &str| {
        format!(
            "        env:\n          MYSQL_PWD: ${{{{ secrets.DB_PASSWORD }}}}\n        with:\n{extra}          upload: \"false\"\n"
        )
    };
    fs::write(
        &workflow,
        format!(
            "on: push\njobs:\n  backup:\n    runs-on: ubuntu-latest\n    steps:\n\
             \x20     - id: backup\n        uses: dbbackup/dbbackup@v0\n{}\
             \x20     - id: again\n        uses: dbbackup/dbbackup@v0\n{}",
            with(&format!(
                "          database: mysql://{user}@{HOST}:{PORT}/{}\n          out: {}\n          junit-path: {}\n",
                db.name,
                out.display(),
                junit.display()
            )),
            with(&format!(
                "          command: restore-test\n          database: ${{{{ steps.backup.outputs.backup-path }}}}\n          junit-path: {}\n",
                junit_again.display()
            )),
        ),
    )
    .unwrap();
    let result = run_workflow(
        &machine,
        &fake,
        workflow.to_str().unwrap(),
        "backup",
        serde_json::json!({"secrets": {"DB_PASSWORD": password}}),
    );
    sql("", &format!("DROP USER '{user}'@'127.0.0.1'"));
    let log = result["log"].as_str().unwrap();
    assert_eq!(result["job_status"], "success", "{log}");
    let outputs = &result["steps"]["backup"]["outputs"];
    let path = PathBuf::from(outputs["backup-path"].as_str().unwrap());
    assert!(
        path.starts_with(&out) && path.to_string_lossy().ends_with(".sql.gz"),
        "{outputs}"
    );
    assert_eq!(outputs["tables"], "1", "{outputs}");
    assert_eq!(outputs["rows"], "250", "{outputs}");
    assert_eq!(outputs["passed"], "true", "{outputs}");
    assert_eq!(result["steps"]["again"]["outputs"]["passed"], "true");
    let summary = result["summary"].as_str().unwrap();
    assert!(
        summary.contains("| `accounts` | 250 |"),
        "the summary lists the tables: {summary}"
    );
    assert!(
        summary.contains("restore OK: 1 tables, 250 rows"),
        "{summary}"
    );
    assert!(
        log.lines().any(|l| l == format!("::add-mask::{password}")),
        "the password is masked: {log}"
    );
    let mut shown: Vec<String> = log
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .map(String::from)
        .collect();
    shown.push(summary.to_string());
    shown.push(result["steps"].to_string());
    for file in [
        &junit,
        &junit_again,
        &dbbackup::archive::manifest::path_for(&path),
    ] {
        shown.push(fs::read_to_string(file).unwrap());
    }
    for text in shown {
        assert!(!text.contains(password), "the password leaked: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The action does what its documentation says.

fn backup_inputs<'a>(runner: &FakeRunner, db: &'a str, extra: &[(&'a str, &'a str)]) -> Output {
    let out_dir = runner.file("backups");
    let junit = runner.file("junit.xml");
    let mut env = vec![
        ("INPUT_DATABASE", db.to_string()),
        ("INPUT_UPLOAD", "false".to_string()),
        ("INPUT_OUT", out_dir.display().to_string()),
        ("INPUT_JUNIT_PATH", junit.display().to_string()),
    ];
    for (k, v) in extra {
        env.push((k, v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    runner.run("run.sh", &env)
}

#[test]
fn outputs_are_written_once_and_manifest_path_is_one() {
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    let out = backup_inputs(&runner, db.to_str().unwrap(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs = runner.read("output");
    for name in ["tables", "rows", "backup-path", "manifest-path", "passed"] {
        let count = outputs
            .lines()
            .filter(|l| l.starts_with(&format!("{name}=")) || l.starts_with(&format!("{name}<<")))
            .count();
        assert_eq!(count, 1, "{name} written {count} times:\n{outputs}");
    }
    let manifest = PathBuf::from(output(&outputs, "manifest-path").unwrap());
    assert!(manifest.is_file());
    let action = fs::read_to_string(repo().join("action.yml")).unwrap();
    assert!(
        action.contains("  manifest-path:\n") && action.contains("steps.run.outputs.manifest-path"),
        "action.yml declares the manifest-path output"
    );
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("| `manifest-path` |"));
}

#[test]
fn prune_false_keeps_local_rotation() {
    // `prune` is about artifacts; `keep` still rotates the local directory, with an upload
    // too (the rotation then runs on its own, as `prune DIR` without --name).
    let fake = FakeGitHub::start();
    let github = fake.env();
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    for _ in 0..2 {
        let mut extra: Vec<(&str, &str)> = github.iter().map(|(k, v)| (*k, v.as_str())).collect();
        extra.extend([
            ("INPUT_KEEP", "1"),
            ("INPUT_PRUNE", "false"),
            ("INPUT_UPLOAD", "true"),
            ("INPUT_ALLOW_PUBLIC_PLAINTEXT", "true"),
        ]);
        let out = backup_inputs(&runner, db.to_str().unwrap(), &extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let archives: Vec<_> = fs::read_dir(runner.file("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gz"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(
        !fake.requests().iter().any(|r| r.method == "DELETE"),
        "prune: false deleted an artifact"
    );
}

/// `to` takes object storage destinations, one per line (blank lines and spaces around a URL
/// ignored): each gets the backup and its manifest, and `keep` prunes there too.
#[test]
fn to_input_stores_the_backup_in_each_bucket_and_prunes_there() {
    let Some(moto) = support::s3::Moto::start() else {
        return;
    };
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    let aws = moto.env();
    // Two backups, a second apart, with `keep: 1` and these inputs.
    let back_up_twice = |inputs: &[(&str, &str)]| {
        for _ in 0..2 {
            let mut extra: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
            extra.push(("INPUT_KEEP", "1"));
            extra.extend_from_slice(inputs);
            let out = backup_inputs(&runner, db.to_str().unwrap(), &extra);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    };
    moto.bucket("one");
    moto.bucket("two");
    back_up_twice(&[("INPUT_TO", "  s3://one/nightly \n\n s3://two/x/y\n")]);
    for (bucket, prefix) in [("one", "nightly/"), ("two", "x/y/")] {
        let keys = moto.keys(bucket);
        assert_eq!(keys.len(), 2, "{bucket}: {keys:?}");
        assert!(
            keys.iter()
                .all(|k| k.starts_with(&format!("{prefix}chinook-"))),
            "{bucket}: {keys:?}"
        );
        assert!(
            keys.iter().any(|k| k.ends_with(".manifest.json")),
            "{keys:?}"
        );
    }
    // `prune: false` deletes nothing off the runner, a bucket included; `out` still rotates.
    moto.bucket("kept");
    back_up_twice(&[("INPUT_TO", "s3://kept/all"), ("INPUT_PRUNE", "false")]);
    assert_eq!(moto.keys("kept").len(), 4, "{:?}", moto.keys("kept"));
    let local = fs::read_dir(runner.file("backups")).unwrap().flatten();
    let archives = local.filter(|e| e.file_name().to_string_lossy().ends_with(".gz"));
    assert_eq!(archives.count(), 1);
}

#[test]
fn inputs_are_documented_as_they_behave() {
    let action = fs::read_to_string(repo().join("action.yml")).unwrap();
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    // `name` names the artifact; the file keeps the database's stem.
    assert!(
        !action.contains("file stem"),
        "action.yml: name is not the file stem"
    );
    assert!(
        !readme.contains("artifact name prefix and file stem"),
        "README: name is not the file stem"
    );
    // `command: restore-test` takes the backup from `database`.
    let database = &action[action.find("  database:").unwrap()..action.find("  command:").unwrap()];
    assert!(database.contains("restore-test"), "{database}");
    assert!(
        readme.contains("restore-test`: the backup to test"),
        "README: database for restore-test"
    );
    // `prune` is about artifacts only.
    let prune =
        &action[action.find("  prune:").unwrap()..action.find("  retention-days:").unwrap()];
    assert!(prune.contains("Local backups"), "{prune}");
}

#[test]
fn period_inputs_reach_the_rotation() {
    // keep: 0 with keep-monthly: 2 keeps the new backup and the newest of the last month
    // before it that has one; without the period input passed on, --keep 0 alone is refused.
    let runner = FakeRunner::new();
    let db = support::data_copy("chinook.sqlite", runner.dir.path());
    let first = backup_inputs(&runner, db.to_str().unwrap(), &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out_dir = runner.file("backups");
    let made: Vec<PathBuf> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".gz"))
        .collect();
    for stamp in ["20200101-000000", "20200201-000000"] {
        let name = format!("chinook-{stamp}.sqlite.gz");
        fs::copy(&made[0], out_dir.join(&name)).unwrap();
        fs::copy(
            format!("{}.manifest.json", made[0].display()),
            out_dir.join(format!("{name}.manifest.json")),
        )
        .unwrap();
    }
    fs::remove_file(&made[0]).unwrap();
    fs::remove_file(format!("{}.manifest.json", made[0].display())).unwrap();
    let out = backup_inputs(
        &runner,
        db.to_str().unwrap(),
        &[("INPUT_KEEP", "0"), ("INPUT_KEEP_MONTHLY", "2")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut archives: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gz"))
        .collect();
    archives.sort();
    assert_eq!(archives.len(), 2, "{archives:?}");
    assert_eq!(archives[0], "chinook-20200201-000000.sqlite.gz");

    let action = fs::read_to_string(repo().join("action.yml")).unwrap();
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    for period in ["daily", "weekly", "monthly", "yearly"] {
        let input = format!("keep-{period}");
        let var = format!(
            "INPUT_KEEP_{}: ${{{{ inputs.{input} }}}}",
            period.to_uppercase()
        );
        assert!(
            action.contains(&format!("  {input}:\n")),
            "action.yml: {input}"
        );
        assert!(action.contains(&var), "action.yml passes {var}");
        assert!(
            readme.contains(&format!("| `{input}` |")),
            "README: {input}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// `command: check`: the newest artifact of `name` must be younger than `max-age`.

/// An artifact name of `prefix` for a backup made `hours` ago.
fn backup_artifact(prefix: &str, hours: u64) -> String {
    let made = time::OffsetDateTime::now_utc() - std::time::Duration::from_secs(hours * 3600);
    format!("{prefix}-{}", dbbackup::archive::naming::stamp(made))
}

#[test]
fn run_step_checks_the_newest_artifact() {
    let fake = FakeGitHub::start();
    let runner = FakeRunner::new();
    let junit = runner.file("freshness.xml").display().to_string();
    let check = |extra: &[(&str, &str)]| {
        let env: Vec<(&str, String)> = fake.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([
            ("INPUT_COMMAND", "check"),
            ("INPUT_NAME", "app-db"),
            ("INPUT_JUNIT_PATH", junit.as_str()),
        ]);
        env.extend_from_slice(extra);
        runner.run("run.sh", &env)
    };
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check needs 'max-age'"));

    fake.seed(&backup_artifact("app-db", 40), 60, false, 1, vec![0; 4096]);
    let stale = check(&[("INPUT_MAX_AGE", "26h")]);
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert_eq!(stale.status.code(), Some(10), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("::error ") && l.contains("older than --max-age 26h")),
        "{stderr}"
    );
    crate::support::restore::validate_junit(Path::new(&junit));

    fake.seed(&backup_artifact("app-db", 2), 60, false, 2, vec![0; 4096]);
    let fresh = check(&[("INPUT_MAX_AGE", "26h"), ("INPUT_MIN_BYTES", "1024")]);
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let small = check(&[("INPUT_MAX_AGE", "26h"), ("INPUT_MIN_BYTES", "100000")]);
    assert_eq!(small.status.code(), Some(10));
    let outputs = runner.read("output");
    assert!(outputs.contains(&junit), "report-path: {outputs}");
    assert!(
        runner.read("summary").contains("| `app-db` | fresh |"),
        "{}",
        runner.read("summary")
    );
}

#[test]
fn freshness_example_fails_on_push_when_the_nightly_stopped() {
    let fake = FakeGitHub::start();
    // The nightly's artifact made (and uploaded) `hours` ago; then the example's job on `event`.
    let nightly_then_check = |hours: u64, run_id: u64, event: serde_json::Value| {
        let name = backup_artifact("app-db", hours);
        fake.seed(&name, hours * 3600, false, run_id, vec![0; 4096]);
        let machine = FakeMachine::new();
        run_workflow(
            &machine,
            &fake,
            "examples/backup-freshness.yml",
            "freshness",
            serde_json::json!({ "github": event }),
        )
    };
    let result = nightly_then_check(40, 1, serde_json::json!({"event_name": "push"}));
    assert_eq!(result["job_status"], "failure", "{}", result["log"]);
    let log = result["log"].as_str().unwrap();
    assert!(log.contains("older than --max-age 26h"), "{log}");

    // The nightly ran again: the check turns green (here on a pull request).
    let result = nightly_then_check(3, 2, pull_request(false));
    assert_eq!(result["job_status"], "success", "{}", result["log"]);
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "the check only lists"
    );
}

/// `restore-into` reaches the backup's restore test: a backup role without CREATEDB backs up
/// with the test on another server (the job's service container in GitHub Actions).
#[test]
fn restore_into_input_restore_tests_a_backup_on_another_server() {
    if !support::pg::server_up() {
        return;
    }
    let role = crate::restore_into::PgRole::new("actlp");
    let runner = FakeRunner::new();
    let url = role.url();
    let refused = backup_inputs(&runner, &url, &[]);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{text}");
    assert!(text.contains("--restore-into"), "{text}");
    let server = crate::restore_into::pg_superuser_server();
    let passed = backup_inputs(&runner, &url, &[("INPUT_RESTORE_INTO", &server)]);
    let text = String::from_utf8_lossy(&passed.stderr);
    assert!(passed.status.success(), "{text}");
    assert_eq!(
        output(&runner.read("output"), "passed").as_deref(),
        Some("true")
    );
}

/// `download-latest` restores on `restore-into`, else on the server of the PG* variables (the
/// job's service container), never on the production server in the backup's manifest: here
/// that one's login may not create databases. The artifact download is stood in for by a
/// `dbbackup` on PATH that puts a real backup where `artifact download --out` would; every
/// other command runs the real binary.
#[test]
fn download_latest_never_restores_on_the_manifests_server() {
    if !support::pg::server_up() {
        return;
    }
    let role = crate::restore_into::PgRole::new("actdl");
    let made = tempfile::tempdir().unwrap();
    let server = crate::restore_into::pg_superuser_server();
    let backup = support::dbbackup()
        .args(["backup", &role.url(), "--restore-into", &server, "--out"])
        .arg(made.path())
        .output()
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let runner = FakeRunner::new();
    let shim = runner.file("shim");
    fs::create_dir_all(&shim).unwrap();
    let script = shim.join("dbbackup");
    support::write_executable(
        &script,
        &format!(
            "#!/usr/bin/env bash\necho \"$*\" >> {log}\nif [ \"$1\" = artifact ]; then\n  \
             while [ \"$1\" != --out ]; do shift; done\n  mkdir -p \"$2\" && cp -a {made}/. \"$2\"/\n  \
             exit 0\nfi\nexec {real} \"$@\"\n",
            log = runner.file("argv.log").display(),
            made = made.path().display(),
            real = support::bin_path().display(),
        ),
    );
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let junit = runner.file("junit.xml");
    let common = [
        ("PATH", path.as_str()),
        ("INPUT_DOWNLOAD_LATEST", "true"),
        ("INPUT_NAME", "app-db"),
        ("INPUT_JUNIT_PATH", junit.to_str().unwrap()),
    ];
    // The job's service, named by the PG* variables.
    let mut env = common.to_vec();
    env.extend([("PGHOST", support::pg::HOST), ("PGPORT", support::pg::PORT)]);
    env.push(("PGUSER", "postgres"));
    let by_env = runner.run("run.sh", &env);
    let text = String::from_utf8_lossy(&by_env.stderr);
    assert!(by_env.status.success(), "{text}");
    // Named by the input.
    let mut env = common.to_vec();
    env.push(("INPUT_RESTORE_INTO", &server));
    let by_input = runner.run("run.sh", &env);
    let text = String::from_utf8_lossy(&by_input.stderr);
    assert!(by_input.status.success(), "{text}");
    let log = runner.read("argv.log");
    assert!(
        log.contains("--not-on-source --restore-into postgres://"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// The `postgres-client` step (scripts/action/postgres-client.sh): a client of the major needed,
// installed from the PostgreSQL apt repository only when none is found.

/// The signing key's fingerprint of apt.postgresql.org (https://wiki.postgresql.org/wiki/Apt).
const PGDG_FINGERPRINT: &str = "B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8";

/// Stand-ins for what the step runs to install a client: `curl` (writes a key), `gpg` (shows
/// it with the fingerprint `fingerprint`), `apt-get` (`install postgresql-client-N` puts
/// `pg_dump`, `psql`, `pg_restore` answering `N.1` in `<sysroot>/usr/lib/postgresql/N/bin`),
/// `sudo` (runs the rest) and `id` (a runner's user, not root). Each notes its argv in
/// `calls`. The sysroot has an Ubuntu 24.04 `/etc/os-release` unless `os` replaces it.
/// Returns the environment the step gets: the fakes first on PATH, the sysroot, and the
/// machine's own `/usr/lib/postgresql` out of dbbackup's sight (its PATH clients stay).
fn apt_fakes(runner: &FakeRunner, fingerprint: &str, os: &str) -> Vec<(String, String)> {
    let (bin, sysroot) = (runner.file("aptbin"), runner.file("sysroot"));
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(sysroot.join("etc")).unwrap();
    fs::write(sysroot.join("etc/os-release"), os).unwrap();
    let calls = runner.file("calls");
    let tools = [
        (
            "curl",
            "while [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n\
             echo '-----BEGIN PGP PUBLIC KEY BLOCK-----' >\"$out\"\n"
                .to_string(),
        ),
        (
            "gpg",
            format!(
                // The records after the primary key's `fpr` come later, as a real gpg's
                // subkeys may: a reader that stops at that `fpr` must not fail the step
                // (SIGPIPE under pipefail, which CI saw as "fingerprint none").
                "printf 'pub:-:4096:1:7FCC7D46ACCC4CF8:1:::-:::scSC::::::23::0:\\n\
                 fpr:::::::::{fingerprint}:\\n'\nsleep 0.3\n\
                 printf 'uid:-::::1:::PostgreSQL Debian Repository::::::::::0:\\n'\n"
            ),
        ),
        ("sudo", "exec \"$@\"\n".to_string()),
        ("id", "echo 1001\n".to_string()),
        (
            "apt-get",
            "for arg in \"$@\"; do\n  case \"$arg\" in postgresql-client-*)\n    \
             n=${arg#postgresql-client-}; d=$DBBACKUP_SYSROOT/usr/lib/postgresql/$n/bin\n    \
             mkdir -p \"$d\"\n    for t in pg_dump psql pg_restore; do\n      \
             printf '#!/bin/sh\\necho \"%s (PostgreSQL) %s.1\"\\n' $t $n >\"$d/$t\"; chmod +x \"$d/$t\"\n    \
             done ;;\n  esac\ndone\n"
                .to_string(),
        ),
    ];
    for (name, body) in tools {
        let path = bin.join(name);
        let script = format!(
            "#!/usr/bin/env bash\necho \"{name} $*\" >>'{}'\n{body}",
            calls.display()
        );
        support::write_executable(&path, &script);
    }
    let dbbackup_dir = support::bin_path().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        dbbackup_dir.display(),
        std::env::var("PATH").unwrap()
    );
    vec![
        ("PATH".into(), path),
        ("DBBACKUP_SYSROOT".into(), sysroot.display().to_string()),
        (
            "DBBACKUP_PG_SEARCH".into(),
            sysroot
                .join("usr/lib/postgresql/*/bin")
                .display()
                .to_string(),
        ),
    ]
}

const UBUNTU_NOBLE: &str = "NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n\
                            VERSION_CODENAME=noble\nUBUNTU_CODENAME=noble\n";

/// Runs the step with `inputs` and the fakes of `apt_fakes`.
fn postgres_client_step(
    runner: &FakeRunner,
    fakes: &[(String, String)],
    inputs: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut env: Vec<(&str, &str)> = fakes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend_from_slice(inputs);
    let out = runner.run("postgres-client.sh", &env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn postgres_client_step_installs_a_client_only_when_none_fits() {
    let runner = FakeRunner::new();
    let fakes = apt_fakes(&runner, PGDG_FINGERPRINT, UBUNTU_NOBLE);
    let step = |inputs: &[(&str, &str)]| postgres_client_step(&runner, &fakes, inputs);
    let sqlite = support::data_copy("chinook.sqlite", runner.dir.path());

    // Nothing to do: `none`; `auto` for a database that is not PostgreSQL; a major whose
    // client is on PATH (this machine's 15).
    for inputs in [
        vec![("INPUT_POSTGRES_CLIENT", "none")],
        vec![("INPUT_DATABASE", sqlite.to_str().unwrap())],
        vec![("INPUT_POSTGRES_CLIENT", "15")],
    ] {
        let (code, log) = step(&inputs);
        assert_eq!(code, Some(0), "{inputs:?}: {log}");
        assert!(!log.contains("::error"), "{log}");
    }
    let (_, log) = step(&[("INPUT_POSTGRES_CLIENT", "15")]);
    assert!(
        log.contains("fits PostgreSQL 15") && log.contains("nothing to install"),
        "{log}"
    );
    // `auto` asks the server over the connection.
    if support::pg::server_up() {
        let url = format!(
            "postgres://postgres@{}:{}/postgres",
            support::pg::HOST,
            support::pg::PORT
        );
        let (code, log) = step(&[("INPUT_DATABASE", &url)]);
        assert_eq!(code, Some(0), "{log}");
        assert!(log.contains("(the server runs 15."), "{log}");
        // Several databases, one per line: every PostgreSQL server is asked, the newest major
        // wins (one that does not answer is left to the backup).
        let lines = format!(
            "{}\n {url} \npostgres://postgres@127.0.0.1:1/gone\n{url}\n",
            sqlite.display()
        );
        let (code, log) = step(&[("INPUT_DATABASE", &lines)]);
        assert_eq!(code, Some(0), "{log}");
        assert!(
            log.contains("(postgres-client: 15)") && log.contains("fits PostgreSQL 15"),
            "{log}"
        );
    }
    assert_eq!(runner.read("calls"), "", "nothing installed");

    // A bad value: one line, exit 2.
    for bad in ["12", "seventeen", "17.2", "1 8"] {
        let (code, log) = step(&[("INPUT_POSTGRES_CLIENT", bad)]);
        assert_eq!(code, Some(2), "{bad}: {log}");
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.starts_with(
                "::error title=dbbackup postgres-client::postgres-client must be auto, none or"
            ),
            "{log}"
        );
    }

    // None fits: the repository with its key checked, the client of that major, and
    // DBBACKUP_PG_BIN for the next steps.
    let sysroot = runner.file("sysroot");
    let (code, log) = step(&[("INPUT_POSTGRES_CLIENT", "18")]);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.starts_with("::group::") && log.trim_end().ends_with("::endgroup::"),
        "{log}"
    );
    let calls = runner.read("calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert!(
        calls.iter().any(|c| c.starts_with("curl ")
            && c.ends_with(" https://www.postgresql.org/media/keys/ACCC4CF8.asc")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("gpg ") && c.contains("--show-keys")),
        "{calls:?}"
    );
    assert!(calls.contains(&"sudo apt-get update -q"), "{calls:?}");
    let install = "apt-get install -y -q --no-install-recommends postgresql-client-18";
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("sudo env DEBIAN_FRONTEND=noninteractive")
                && c.ends_with(install)),
        "{calls:?}"
    );
    assert!(calls.contains(&install), "{calls:?}");
    let key = sysroot.join("usr/share/postgresql-common/pgdg/apt.postgresql.org.asc");
    assert!(key.is_file());
    assert_eq!(
        fs::read_to_string(sysroot.join("etc/apt/sources.list.d/pgdg.list")).unwrap(),
        format!(
            "deb [signed-by={}] https://apt.postgresql.org/pub/repos/apt noble-pgdg main\n",
            key.display()
        )
    );
    assert_eq!(
        runner.read("env"),
        format!(
            "DBBACKUP_PG_BIN={}\n",
            sysroot.join("usr/lib/postgresql/18/bin").display()
        )
    );
    assert!(log.contains("installed pg_dump (PostgreSQL) 18.1"), "{log}");
    // Once installed, found where the package puts it: no second install.
    let (code, log) = step(&[("INPUT_POSTGRES_CLIENT", "17")]);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("18.1 at ") && log.contains("nothing to install"),
        "{log}"
    );
    assert_eq!(
        runner.read("calls").lines().count(),
        calls.len(),
        "no apt call"
    );
}

#[test]
fn postgres_client_step_refuses_a_wrong_key_and_other_systems() {
    // A key that is not the repository's: nothing trusted, nothing installed.
    let runner = FakeRunner::new();
    let fakes = apt_fakes(
        &runner,
        "0000000000000000000000000000000000000000",
        UBUNTU_NOBLE,
    );
    let (code, log) = postgres_client_step(&runner, &fakes, &[("INPUT_POSTGRES_CLIENT", "18")]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.lines().any(|l| l.starts_with("::error ") && l.contains("fingerprint 0000000000000000000000000000000000000000, not B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8: refusing to trust it")),
        "{log}"
    );
    let calls = runner.read("calls");
    assert!(!calls.contains("apt-get"), "{calls}");
    assert!(
        !runner
            .file("sysroot/etc/apt/sources.list.d/pgdg.list")
            .exists()
    );
    assert!(
        !runner
            .file("sysroot/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc")
            .exists()
    );
    assert_eq!(runner.read("env"), "");

    // Not Debian or Ubuntu: exit 7 with dbbackup's message, which names what to install.
    let runner = FakeRunner::new();
    let fakes = apt_fakes(&runner, PGDG_FINGERPRINT, "ID=fedora\nVERSION_ID=41\n");
    let (code, log) = postgres_client_step(&runner, &fakes, &[("INPUT_POSTGRES_CLIENT", "18")]);
    assert_eq!(code, Some(7), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        error.contains("Debian and Ubuntu runners only")
            && error.contains("needs pg_dump 18 or newer"),
        "{error}"
    );
    assert!(error.contains("Install it: "), "{error}");
    assert!(
        !error.contains("dbbackup failed::"),
        "one annotation: {error}"
    );
    assert_eq!(runner.read("calls"), "");
}

/// `examples/upgrade-check.yml`, one leg of its matrix (the machine's PostgreSQL 15 standing in
/// for the leg's service container): the client step asks that server for its major through
/// `restore-into` and finds the client already there; the leg names its own report.
#[test]
fn upgrade_check_example_asks_each_legs_server_for_its_client() {
    if !support::pg::server_up() {
        return;
    }
    let fake = FakeGitHub::start();
    let machine = FakeMachine::new();
    let result = run_workflow_unreleased(
        &machine,
        &fake,
        "examples/upgrade-check.yml",
        "restore-on-newer",
        serde_json::json!({"github": pull_request(false), "matrix": {"postgres": "15"}}),
    );
    let log = result["log"].as_str().unwrap();
    assert_eq!(
        step(&result, "PostgreSQL client")["outcome"],
        "success",
        "{log}"
    );
    assert!(
        log.contains("fits PostgreSQL 15 (the server runs 15.")
            && log.contains("nothing to install"),
        "{log}"
    );
    let run = step(&result, "Run dbbackup");
    assert_ne!(run["outcome"], "skipped", "{log}");
    assert_eq!(
        run["env"]["INPUT_JUNIT_PATH"],
        "upgrade-check-postgres-15.xml"
    );
    assert_eq!(
        run["env"]["INPUT_RESTORE_INTO"],
        "postgres://postgres@localhost:5432"
    );
    let text = fs::read_to_string(repo().join("examples/upgrade-check.yml")).unwrap();
    assert!(
        text.contains("postgres: [\"16\", \"17\", \"18\"]"),
        "the majors of the matrix"
    );
    assert!(text.contains("image: postgres:${{ matrix.postgres }}"));
}

/// The client step in the whole action: `none` skips it; when it fails, dbbackup runs all the
/// same (a backup that needs no such client is still made, and one that does fails with
/// dbbackup's own exit 7 and alerts), and the job is red.
#[test]
fn action_runs_dbbackup_after_a_failed_client_step() {
    let machine = FakeMachine::new();
    copy_action(repo(), &machine.workspace());
    let mut inputs = sqlite_inputs(&machine);
    inputs["postgres-client"] = "none".into();
    let result = machine.run_action(&machine.workspace(), inputs.clone());
    assert_eq!(result["job_status"], "success", "{}", result["log"]);
    assert_eq!(step(&result, "PostgreSQL client")["outcome"], "skipped");

    inputs["postgres-client"] = "12".into();
    let result = machine.run_action(&machine.workspace(), inputs);
    let log = result["log"].as_str().unwrap();
    assert_eq!(
        step(&result, "PostgreSQL client")["outcome"],
        "failure",
        "{log}"
    );
    assert!(
        log.contains("postgres-client must be auto, none or"),
        "{log}"
    );
    assert_eq!(step(&result, "Run dbbackup")["outcome"], "success", "{log}");
    assert_eq!(result["outputs"]["passed"], "true", "{log}");
    assert_eq!(result["job_status"], "failure");
}

/// `examples/matrix-backup.yml`: one leg of its matrix (a database of the machine's PostgreSQL
/// standing in for one of the server's) backs up under its own artifact name and leaves its
/// JUnit report for the summary job; that job (its download step recorded, the report put where
/// it would land) shows every report in one table and checks every database's backup is
/// fresh: the other two databases of the matrix have none here, so that check fails.
#[test]
fn matrix_example_backs_up_one_database_per_job_and_gathers_them() {
    if !support::pg::server_up() {
        return;
    }
    let db = support::pg::TestDb::new("matrix");
    support::pg::psql(
        &db.name,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);",
    );
    let fake = FakeGitHub::start();
    let machine = FakeMachine::new();
    let result = run_workflow_unreleased(
        &machine,
        &fake,
        "examples/matrix-backup.yml",
        "backup",
        serde_json::json!({
            "matrix": {"db": db.name},
            "secrets": {"DATABASE_SERVER": "postgres://postgres@127.0.0.1:5432", "DB_PASSWORD": ""},
        }),
    );
    let log = result["log"].as_str().unwrap();
    assert_eq!(result["job_status"], "success", "{log}");
    let keep = step(&result, "Keep the report for the summary");
    assert_eq!(keep["with"]["name"], format!("report-{}", db.name));
    let report = machine
        .workspace()
        .join(format!("dbbackup-{}.xml", db.name));
    assert!(report.is_file(), "{log}");
    let names: Vec<String> = fake.artifacts().into_iter().map(|a| a.name).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{}-db-", db.name))),
        "{names:?}"
    );

    // The summary job, on a machine of its own, with the report where download-artifact puts it.
    let gather = FakeMachine::new();
    let landed = gather
        .workspace()
        .join(format!("reports/report-{}", db.name));
    fs::create_dir_all(&landed).unwrap();
    fs::copy(&report, landed.join("dbbackup.xml")).unwrap();
    let result = run_workflow_unreleased(
        &gather,
        &fake,
        "examples/matrix-backup.yml",
        "summary",
        serde_json::json!({"needs": {"backup": {"result": "success"}}}),
    );
    let log = result["log"].as_str().unwrap();
    assert_eq!(
        step(&result, "One table of every database")["outcome"],
        "success",
        "{log}"
    );
    assert!(log.contains("1 backup(s), all passed"), "{log}");
    assert!(
        log.contains(&format!("/{}` | postgres |", db.name)),
        "{log}"
    );
    assert_eq!(
        step(&result, "Every database has a fresh backup")["outcome"],
        "failure",
        "{log}"
    );
    assert!(
        ["app-db", "shop-db", "billing-db"]
            .iter()
            .all(|n| log.contains(n)),
        "{log}"
    );
    assert_eq!(
        step(&result, "Every backup job succeeded")["outcome"],
        "skipped"
    );
    assert_eq!(result["job_status"], "failure");
}

/// `database` with one database per line: each backed up (two at once with `parallel`), one
/// JUnit report of both, and each step output written once.
#[test]
fn several_database_lines_back_up_each_with_outputs_once() {
    let runner = FakeRunner::new();
    let a = runner.dir.path().join("a.db");
    let b = runner.dir.path().join("b.db");
    fs::copy(support::data("chinook.sqlite"), &a).unwrap();
    fs::copy(support::data("chinook.sqlite"), &b).unwrap();
    let lines = format!("  {}\n\n{}  \n", a.display(), b.display());
    let out = backup_inputs(&runner, &lines, &[("INPUT_PARALLEL", "2")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs = runner.read("output");
    assert_eq!(outputs.matches("passed<<").count(), 1, "{outputs}");
    assert_eq!(outputs.matches("report-path<<").count(), 1, "{outputs}");
    assert!(!outputs.contains("backup-path"), "{outputs}");
    let junit = fs::read_to_string(runner.file("junit.xml")).unwrap();
    assert_eq!(
        junit.matches(r#"<testsuite name="drift""#).count(),
        2,
        "{junit}"
    );
    let summary = runner.read("summary");
    assert!(summary.contains("2 backup(s), all passed"), "{summary}");
}
