//! Helpers for the fault and hostile-input tests (`chaos_crash`, `chaos_disk`, `hostile_names`,
//! `secrets`): what a backup directory holds, restore-testing all of it, and tmpfs mounts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::dbbackup;

/// `dbbackup backup DB --out DIR [--keep N]`.
pub fn backup_cmd(db: &Path, out: &Path, keep: Option<usize>) -> Command {
    let mut cmd = dbbackup();
    cmd.arg("backup").arg(db).arg("--out").arg(out);
    if let Some(keep) = keep {
        cmd.args(["--keep", &keep.to_string()]);
    }
    cmd
}

/// Runs `cmd` to the end and returns what it printed.
pub fn output(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().expect("run dbbackup")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing stderr when it differs.
pub fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstderr:\n{}",
        out.status,
        stderr(out)
    );
}

/// A SQLite database of `rows` rows of text, reals and blobs that compress only somewhat, so
/// that snapshot, check and compression each take a measurable time.
pub fn build_db(path: &Path, rows: u32) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, data BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO item SELECT i, 'item ' || i || ' ' || hex(randomblob(16)), i * 1.5,
                                 randomblob(32) FROM n;
         CREATE INDEX item_name ON item(name);"
    ))
    .unwrap();
}

/// A temporary directory holding `app.db` (so backups are `app-*`) built by [`build_db`].
pub fn temp_db(rows: u32) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    build_db(&db, rows);
    (tmp, db)
}

/// What a backup directory holds: archives oldest first (the order of their names' stamp and
/// sequence number), everything else sorted by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Files named like a backup archive (`<stem>-<stamp>[-N].<ext>.gz`).
    pub archives: Vec<String>,
    /// `*.manifest.json`.
    pub manifests: Vec<String>,
    /// The store's temporary directories (`.dbbackup-tmp-*`).
    pub temp: Vec<String>,
    /// Anything else.
    pub other: Vec<String>,
}

impl Listing {
    pub fn of(dir: &Path) -> Listing {
        let mut listing = Listing::default();
        for entry in fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let kind = if name.starts_with(".dbbackup-tmp-") {
                &mut listing.temp
            } else if name.ends_with(".manifest.json") {
                &mut listing.manifests
            } else if dbbackup::archive::naming::parse_any(&name).is_some() {
                &mut listing.archives
            } else {
                &mut listing.other
            };
            kind.push(name);
        }
        sort_oldest_first(&mut listing.archives);
        for v in [
            &mut listing.manifests,
            &mut listing.temp,
            &mut listing.other,
        ] {
            v.sort();
        }
        listing
    }

    /// Manifests whose archive is not there.
    pub fn orphan_manifests(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter(|m| {
                let archive = m.strip_suffix(".manifest.json").unwrap();
                !self.archives.iter().any(|a| a == archive)
            })
            .cloned()
            .collect()
    }

    /// Archives without their manifest: never acceptable, the manifest is linked first.
    pub fn archives_without_manifest(&self) -> Vec<String> {
        self.archives
            .iter()
            .filter(|a| !self.manifests.contains(&format!("{a}.manifest.json")))
            .cloned()
            .collect()
    }
}

/// `restore-test DIR --all` with the binary: every archive in `dir` must pass. Returns the
/// archive names the binary tested, oldest first.
pub fn assert_all_restore(dir: &Path) -> Vec<String> {
    let out = output(
        dbbackup()
            .arg("restore-test")
            .arg(dir)
            .args(["--all", "--json"]),
    );
    assert_code(&out, 0, &format!("restore-test --all {}", dir.display()));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut tested: Vec<String> = json["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["verdict"], "passed", "{r:#}");
            let path = PathBuf::from(r["backup"].as_str().unwrap());
            path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    sort_oldest_first(&mut tested);
    tested
}

/// Sorts backup archive names as rotation orders them, oldest first.
pub fn sort_oldest_first(archives: &mut [String]) {
    archives.sort_by_cached_key(|name| dbbackup::archive::naming::parse_any(name));
}

/// A filesystem mounted by a test, unmounted (lazily, so a failing test cannot leave it
/// busy) when dropped.
pub struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a tmpfs with `options` (such as `size=2m`) on the existing directory `dir`.
pub fn mount_tmpfs(dir: &Path, options: &str) -> Option<Mount> {
    mount(&["-t", "tmpfs", "-o", options, "tmpfs"], dir)
}

/// Bind-mounts `path` on itself: a mount point cannot be deleted or renamed (EBUSY).
pub fn bind_on_itself(path: &Path) -> Option<Mount> {
    mount(&["--bind", &path.to_string_lossy()], path)
}

/// Mounting needs root. CI runs as root and must run these tests, so there (CI set) failing
/// to mount is a test failure; elsewhere the test says it skipped and gets `None`.
fn mount(args: &[&str], target: &Path) -> Option<Mount> {
    let mounted = Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount {args:?} on {} (run the tests as root)",
            target.display()
        );
        eprintln!("skipped: cannot mount here (needs root)");
        return None;
    }
    Some(Mount(target.to_path_buf()))
}

impl Mount {
    /// Makes the mounted filesystem read-only (what a read-only volume or a full quota on a
    /// shared runner looks like to dbbackup).
    pub fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {} read-only", self.0.display());
    }
}

/// Names of files in `dir` and their bytes, to prove a failed command changed nothing.
pub fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}
