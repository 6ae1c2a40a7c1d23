//! Running PostgreSQL's client tools (`pg_dump`, `psql`, `pg_restore`) as subprocesses: finding
//! them, checking their version, and waiting for them with a deadline while their stderr is
//! collected on a thread of its own, so a chatty tool can never block on a full pipe.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};

/// What to install when a tool is missing.
pub const PACKAGE_HINT: &str = "install the PostgreSQL client tools (Debian/Ubuntu: \
     apt-get install postgresql-client; Alpine: apk add postgresql-client; macOS: brew install libpq)";

/// Only the end of a tool's stderr goes into an error message.
const STDERR_KEEP: usize = 4000;

/// `pg_dump (PostgreSQL) 15.4 (Debian ...)` for `tool --version`.
pub fn version(tool: &str) -> Result<String> {
    let output = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(tool, e))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || text.is_empty() {
        return Err(Error::Tool {
            tool: tool.into(),
            reason: format!(
                "`{tool} --version` failed ({}): {PACKAGE_HINT}",
                output.status
            ),
        });
    }
    Ok(text)
}

/// `15.4` → 150004, `9.6.24` → 90624: the numbering of `server_version_num`.
pub fn version_num(version_text: &str) -> Option<u32> {
    let number = version_text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let parts: Vec<u32> = number
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major, minor, ..] if *major >= 10 => Some(major * 10000 + minor),
        [major] if *major >= 10 => Some(major * 10000),
        [major, minor, patch, ..] => Some(major * 10000 + minor * 100 + patch),
        [major, minor] => Some(major * 10000 + minor * 100),
        _ => None,
    }
}

/// The major release of a `server_version_num`: 150004 → 150000, 90624 → 90600.
pub fn major(num: u32) -> u32 {
    if num >= 100_000 {
        num / 10000 * 10000
    } else {
        num / 100 * 100
    }
}

/// pg_dump refuses a server of a newer major release; say so before it does, with the fix.
pub fn check_dump_version(pg_dump: &str, server: &str, server_num: u32) -> Result<()> {
    let Some(dump_num) = version_num(pg_dump) else {
        return Err(Error::Tool {
            tool: "pg_dump".into(),
            reason: format!("cannot read the version in '{pg_dump}': {PACKAGE_HINT}"),
        });
    };
    if major(dump_num) >= major(server_num) {
        return Ok(());
    }
    let server_major = major(server_num) / 10000;
    Err(Error::Tool {
        tool: "pg_dump".into(),
        reason: format!(
            "'{pg_dump}' is older than the server (PostgreSQL {server}) and cannot dump it: \
             install pg_dump {server_major} or newer (Debian/Ubuntu with the PGDG repository: \
             apt-get install postgresql-client-{server_major}) and put it first on PATH"
        ),
    })
}

pub fn spawn_error(tool: &str, err: std::io::Error) -> Error {
    let reason = if err.kind() == std::io::ErrorKind::NotFound {
        format!("not found on PATH: {PACKAGE_HINT}")
    } else {
        format!("cannot be started ({err}): {PACKAGE_HINT}")
    };
    Error::Tool {
        tool: tool.into(),
        reason,
    }
}

/// A started tool whose stdin/stdout the caller took. A watchdog thread owns the child: it
/// kills it at the deadline, and otherwise waits for it once the caller is done with the pipes.
pub struct Running {
    done: Sender<()>,
    waiter: JoinHandle<(std::io::Result<ExitStatus>, bool)>,
    stderr: JoinHandle<String>,
}

/// How a tool ended.
pub struct Finished {
    pub status: ExitStatus,
    /// The end of its stderr.
    pub stderr: String,
    /// It was killed at the deadline.
    pub timed_out: bool,
}

impl Running {
    /// Starts the watchdog and stderr threads for `child` (spawned with stderr piped).
    pub fn watch(mut child: Child, deadline: Option<Instant>) -> Self {
        let mut err_pipe = child.stderr.take();
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = err_pipe.as_mut() {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let text = String::from_utf8_lossy(&bytes);
            let start = text.len().saturating_sub(STDERR_KEEP);
            let start = (start..text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text[start..].trim().to_string()
        });
        let (done, rx) = mpsc::channel::<()>();
        let waiter = std::thread::spawn(move || {
            let mut timed_out = false;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(left) {
                    timed_out = true;
                    let _ = child.kill();
                }
            }
            (child.wait(), timed_out)
        });
        Self {
            done,
            waiter,
            stderr,
        }
    }

    /// Waits for the tool; call once its stdin is closed or its stdout read to the end.
    pub fn finish(self, tool: &str) -> Result<Finished> {
        let _ = self.done.send(());
        let (status, timed_out) = self
            .waiter
            .join()
            .map_err(|_| Error::Internal(format!("the thread waiting for {tool} panicked")))?;
        let status = status.map_err(|e| Error::Internal(format!("waiting for {tool}: {e}")))?;
        let stderr = self.stderr.join().unwrap_or_default();
        Ok(Finished {
            status,
            stderr,
            timed_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_release() {
        assert_eq!(
            version_num("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(150020)
        );
        assert_eq!(version_num("pg_dump (PostgreSQL) 9.6.24"), Some(90624));
        assert_eq!(version_num("pg_dump (PostgreSQL) 17devel"), Some(170000));
        assert!(check_dump_version("pg_dump (PostgreSQL) 16.1", "15.4", 150004).is_ok());
        assert!(check_dump_version("pg_dump (PostgreSQL) 15.1", "15.4", 150004).is_ok());
        let err = check_dump_version("pg_dump (PostgreSQL) 14.9", "15.4", 150004)
            .unwrap_err()
            .to_string();
        assert!(err.contains("14.9") && err.contains("15.4") && err.contains("client-15"));
    }
}
