//! Which `pg_dump`, `psql` and `pg_restore` dbbackup runs, when a machine has several.
//!
//! `pg_dump` refuses a server of a newer major release ("aborting because of server version
//! mismatch"), the failure users of backup actions report most: GitHub's runners preinstall one
//! client, Debian's wrapper picks the highest installed one, and the server in production is
//! often newer. So dbbackup looks for itself, in this order:
//!
//! 1. `DBBACKUP_PG_BIN`, a directory;
//! 2. every directory of `PATH`;
//! 3. the usual places of each platform ([`PLATFORM_PLACES`]: Debian/Ubuntu, RHEL, Homebrew,
//!    Postgres.app), or instead the directories of `DBBACKUP_PG_SEARCH` (a `PATH`-like list whose
//!    entries may hold `*`), which exists so that tests can put the machine's own places out of
//!    sight; it is documented as such.
//!
//! Debian's `pg_wrapper` (what `/usr/bin/pg_dump` is on Debian and Ubuntu) is not a candidate:
//! the clients it would run are, taken directly (see [`through_wrapper`]). Each candidate is
//! asked `--version` once per process. The newest major release that is at
//! least the one needed wins (the server's for a dump; the `pg_dump` that made the backup for a
//! restore, since `pg_restore` reads only archives of its own version or older and `psql`
//! must understand the meta-commands a newer `pg_dump` writes); of equal versions the first
//! place wins. A newer client dumps and restores older servers, so newest is the safe choice.
//! When none fits, the error (exit 7) names the server's major, every client found with its
//! version, and the command that installs the right one on this platform.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::version::{major, version_num};
use crate::engine::tool::Tool;
use crate::error::{Error, Result};

/// A directory, searched before anything else.
pub const BIN_VAR: &str = "DBBACKUP_PG_BIN";
/// Replaces [`PLATFORM_PLACES`] (for tests: the machine's own installs put out of sight).
pub const SEARCH_VAR: &str = "DBBACKUP_PG_SEARCH";

/// Where PostgreSQL's packages put their clients, one directory per major release.
const PLATFORM_PLACES: &[&str] = &[
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/opt/homebrew/opt/libpq/bin",
    "/usr/local/opt/libpq/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
];

/// A client tool found in one place, with the version it reported.
#[derive(Debug, Clone)]
pub struct Client {
    pub path: PathBuf,
    /// What `--version` printed, e.g. `pg_dump (PostgreSQL) 18.1`.
    pub version: String,
    /// [`version_num`] of `version`.
    pub num: u32,
}

impl Client {
    /// A command for `tool` at this client's path.
    pub fn command(&self, tool: &Tool) -> Command {
        tool.command_at(&self.path)
    }

    /// `tool` from the same directory, taken to be of the same version: a package installs
    /// its clients together.
    pub fn sibling(&self, tool: &Tool) -> Client {
        Client {
            path: self.path.with_file_name(tool.name),
            ..self.clone()
        }
    }

    /// `pg_dump (PostgreSQL) 18.1 at /usr/lib/postgresql/18/bin/pg_dump`, for logs and reports.
    pub fn shown(&self) -> String {
        format!("{} at {}", self.version, self.path.display())
    }
}

/// The `pg_dump` for a server of version `server` (`server_version`) and `server_num`
/// (`server_version_num`).
pub fn for_dump(pg_dump: &Tool, server: &str, server_num: u32) -> Result<Client> {
    let need = major(server_num);
    choose(pg_dump, need).ok_or_else(|| {
        none_fits(
            pg_dump,
            need,
            &format!(
                "the server runs PostgreSQL {server} (major {})",
                need / 10000
            ),
        )
    })
}

/// The `tool` of at least major `n` (`15` for PostgreSQL 15), asked for by name: the Action's
/// `postgres-client: N`, which must not connect anywhere to know what to install.
pub fn for_major(tool: &Tool, n: u32) -> Result<Client> {
    let need = n * 10000;
    choose(tool, need)
        .ok_or_else(|| none_fits(tool, need, &format!("PostgreSQL {n} was asked for")))
}

/// The `psql` or `pg_restore` for a backup made by `dump_tool` (the manifest's `pg_dump`
/// version; older manifests may lack it, and then the newest client is taken).
pub fn for_restore(tool: &Tool, dump_tool: Option<&str>) -> Result<Client> {
    let need = dump_tool.and_then(version_num).map_or(0, major);
    choose(tool, need).ok_or_else(|| {
        none_fits(
            tool,
            need,
            &format!(
                "the backup was made by {} (major {})",
                dump_tool.unwrap_or("pg_dump"),
                need / 10000
            ),
        )
    })
}

/// The newest client of at least major `need`; the first place wins a tie.
fn choose(tool: &Tool, need: u32) -> Option<Client> {
    let mut best: Option<Client> = None;
    for client in found(tool).into_iter().filter_map(|(_, c)| c.ok()) {
        if major(client.num) >= need && best.as_ref().is_none_or(|b| client.num > b.num) {
            best = Some(client);
        }
    }
    best
}

/// Every `tool` in [`places`] (each file once, however many links lead to it: `/bin` is
/// `/usr/bin` on merged-/usr systems), with its version or why it could not be asked. Debian's
/// wrapper stands for the clients it would run ([`through_wrapper`]).
fn found(tool: &Tool) -> Vec<(PathBuf, std::result::Result<Client, String>)> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut canonical: Vec<PathBuf> = Vec::new();
    for path in places().into_iter().map(|dir| dir.join(tool.name)) {
        if !is_executable(&path) {
            continue;
        }
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let paths = match is_debian_wrapper(&real) {
            true => through_wrapper(tool),
            false => vec![(path, real)],
        };
        for (path, real) in paths {
            if !canonical.contains(&real) {
                canonical.push(real);
                seen.push(path);
            }
        }
    }
    seen.into_iter()
        .map(|path| {
            let client = ask_version(&path).map(|(version, num)| Client {
                path: path.clone(),
                version,
                num,
            });
            (path, client)
        })
        .collect()
}

/// Where Debian's `pg_wrapper` finds the clients it runs (`/usr/lib/postgresql/$version/bin`,
/// written into the wrapper, postgresql-common's `PgCommon.pm`).
const DEBIAN_CLIENTS: &str = "/usr/lib/postgresql/*/bin";

/// Whether `real` (a canonical path) is Debian's `pg_wrapper`, which `/usr/bin/pg_dump`,
/// `psql` and `pg_restore` link to on Debian and Ubuntu (GitHub's runners included).
fn is_debian_wrapper(real: &Path) -> bool {
    real.file_name().is_some_and(|n| n == "pg_wrapper")
        && real
            .parent()
            .is_some_and(|d| d.ends_with("postgresql-common"))
}

/// The clients Debian's wrapper would run, taken directly. The wrapper is a Perl program that
/// picks one of them by its own rules and then runs it: asking it `--version` cost about
/// 0.1 s a time here (and twice, through `/bin` and `/usr/bin`), and running pg_dump through
/// it as much again, a third of a small database's backup. Choosing among the real binaries by
/// version is what dbbackup does anyway, and the manifest then names the binary that ran.
fn through_wrapper(tool: &Tool) -> Vec<(PathBuf, PathBuf)> {
    (expand(Path::new(DEBIAN_CLIENTS)).into_iter())
        .map(|dir| dir.join(tool.name))
        .filter(|path| is_executable(path))
        .map(|path| {
            let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            (path, real)
        })
        .filter(|(_, real)| !is_debian_wrapper(real))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directories to look in, in order (see the module's doc).
fn places() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(bin) = std::env::var_os(BIN_VAR).filter(|b| !b.is_empty()) {
        dirs.push(PathBuf::from(bin));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let patterns: Vec<PathBuf> = match std::env::var_os(SEARCH_VAR) {
        Some(search) => std::env::split_paths(&search).collect(),
        None => PLATFORM_PLACES.iter().map(PathBuf::from).collect(),
    };
    for pattern in patterns {
        dirs.extend(expand(&pattern));
    }
    dirs
}

/// The directories that `pattern` names, where a `*` in a component stands for any text;
/// sorted, so the order (and so a tie's winner) does not depend on the filesystem.
fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::new()];
    for part in pattern.components() {
        let part = part.as_os_str().to_string_lossy();
        let Some((prefix, suffix)) = part.split_once('*') else {
            dirs.iter_mut().for_each(|d| d.push(&*part));
            continue;
        };
        let mut next = Vec::new();
        for dir in &dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
                {
                    next.push(dir.join(name));
                }
            }
        }
        next.sort();
        dirs = next;
    }
    dirs
}

/// What `--version` printed and its [`version_num`], or why it could not be asked.
type Answer = std::result::Result<(String, u32), String>;

/// `tool --version` at `path`, once per process: a run may choose several times.
fn ask_version(path: &Path) -> Answer {
    static ASKED: Mutex<Option<HashMap<PathBuf, Answer>>> = Mutex::new(None);
    let mut asked = ASKED.lock().unwrap_or_else(|e| e.into_inner());
    asked
        .get_or_insert_with(HashMap::new)
        .entry(path.to_path_buf())
        .or_insert_with(|| {
            let output = Command::new(path)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot be run: {e}"))?;
            let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
            match version_num(&text) {
                Some(num) if output.status.success() => Ok((text, num)),
                _ => Err(format!(
                    "`--version` failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )),
            }
        })
        .clone()
}

/// No client of major `need` or newer: what was found, and how to get the right one.
fn none_fits(tool: &Tool, need: u32, why: &str) -> Error {
    let need_major = (need / 10000).max(1);
    let found: Vec<String> = found(tool)
        .into_iter()
        .map(|(path, client)| match client {
            Ok(c) => c.shown(),
            Err(reason) => format!("{} ({reason})", path.display()),
        })
        .collect();
    let found = match found.is_empty() {
        true => format!("no {} found", tool.name),
        false => format!("found only {}", found.join("; ")),
    };
    tool.error(format!(
        "{why}, which needs {} {need_major} or newer; {found} (looked in ${BIN_VAR}, PATH and \
         {}). Install it: {}; or set {BIN_VAR} to the bin directory of a PostgreSQL \
         {need_major} or newer",
        tool.name,
        match std::env::var_os(SEARCH_VAR) {
            Some(_) => format!("${SEARCH_VAR}"),
            None => "the usual places of this platform".into(),
        },
        install_hint(need_major, &os_release())
    ))
}

/// `ID` and `ID_LIKE` of /etc/os-release, lowercase ("ubuntu debian"); "macos" on macOS.
fn os_release() -> String {
    if cfg!(target_os = "macos") {
        return "macos".into();
    }
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("ID=").or_else(|| l.strip_prefix("ID_LIKE=")))
        .map(|v| v.trim_matches('"').to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command that installs the clients of major `n` on the platform `os` ([`os_release`]).
/// Debian and Ubuntu ship one major per release; the others come from the PostgreSQL project's
/// own repository (apt.postgresql.org), which `postgresql-common`'s script adds. RHEL's PGDG
/// packages are named `postgresqlN`.
fn install_hint(n: u32, os: &str) -> String {
    let has = |id: &str| os.split_whitespace().any(|w| w == id);
    if has("debian") || has("ubuntu") {
        format!(
            "`sudo apt-get install -y postgresql-common && sudo \
             /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install \
             -y postgresql-client-{n}`"
        )
    } else if ["rhel", "fedora", "centos", "rocky", "almalinux"]
        .iter()
        .any(|id| has(id))
    {
        format!("`sudo dnf install -y postgresql{n}` (from the PGDG repository)")
    } else if has("alpine") {
        format!("`apk add postgresql{n}-client`")
    } else if has("macos") {
        format!("`brew install postgresql@{n}`")
    } else {
        format!("install the PostgreSQL {n} client tools")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_hint_follows_the_platform() {
        assert!(install_hint(18, "ubuntu debian").contains("postgresql-client-18"));
        assert!(install_hint(17, "debian").contains("apt.postgresql.org.sh"));
        assert!(
            install_hint(16, "rocky rhel centos fedora").contains("dnf install -y postgresql16")
        );
        assert_eq!(install_hint(18, "macos"), "`brew install postgresql@18`");
        assert!(install_hint(18, "alpine").contains("postgresql18-client"));
        assert!(install_hint(18, "arch").contains("PostgreSQL 18 client"));
    }

    #[test]
    fn a_star_matches_any_text_in_one_component() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "lib/postgresql/13/bin",
            "lib/postgresql/18/bin",
            "lib/other/9/bin",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("pgsql-16/bin")).unwrap();
        let got = expand(&dir.path().join("lib/postgresql/*/bin"));
        assert_eq!(
            got,
            vec![
                dir.path().join("lib/postgresql/13/bin"),
                dir.path().join("lib/postgresql/18/bin")
            ]
        );
        assert_eq!(
            expand(&dir.path().join("pgsql-*/bin")),
            vec![dir.path().join("pgsql-16/bin")]
        );
        assert!(expand(&dir.path().join("nothing-*/bin")).is_empty());
    }
}
