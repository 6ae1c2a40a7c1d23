//! Database client tools run as subprocesses (`pg_dump`, `psql`, `pg_restore`, `mysqldump`,
//! ...), the way every engine that shells out needs them: found on PATH with a message that
//! says which package to install, waited for with a deadline, and their stderr collected on a
//! thread of its own so a chatty tool can never block on a full pipe.
//!
//! Secrets never go on a tool's command line (any user can read `ps`): engines pass them in
//! the child's environment or a private option file, and build the arguments from the parts
//! of a connection that may be shown.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};

/// Only the end of a tool's stderr goes into an error message.
const STDERR_KEEP: usize = 4000;

/// A client tool and what to install when it is missing.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    /// Where the tool comes from, per platform: said whenever it cannot be run.
    pub install_hint: &'static str,
}

impl Tool {
    /// A command for the tool with stdin closed; callers add arguments, environment and pipes.
    ///
    /// The tool runs in a process group of its own. A terminal's Ctrl-C (and a cancelled CI
    /// job) signals the whole foreground group: a `psql` there would cancel its statement and
    /// fail before dbbackup's handler ran, and the restore test would report a good backup as
    /// failed. Out of the group, the tool only ever stops because dbbackup stops it (its
    /// scratch database dropped, its pipe closed), after the handler has taken over.
    pub fn command(&self) -> Command {
        self.command_at(std::path::Path::new(self.name))
    }

    /// [`Tool::command`] for the tool at `program`: a path an engine chose among several
    /// installed versions (PostgreSQL's clients), or the bare name to look up on PATH.
    pub fn command_at(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new(program);
        command.stdin(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
    }

    /// Starts `command` (made by [`Tool::command`]), saying what to install when it cannot.
    pub fn spawn(&self, command: &mut Command) -> Result<Child> {
        command.spawn().map_err(|e| self.spawn_error(e))
    }

    /// `pg_dump (PostgreSQL) 15.4 (Debian ...)` for `tool --version`.
    pub fn version(&self) -> Result<String> {
        let output = self
            .command()
            .arg("--version")
            .output()
            .map_err(|e| self.spawn_error(e))?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || text.is_empty() {
            return Err(self.error(format!(
                "`{} --version` failed ({}): {}",
                self.name, output.status, self.install_hint
            )));
        }
        Ok(text)
    }

    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Tool {
            tool: self.name.into(),
            reason: reason.into(),
        }
    }

    fn spawn_error(&self, err: std::io::Error) -> Error {
        let reason = if err.kind() == std::io::ErrorKind::NotFound {
            format!("not found on PATH: {}", self.install_hint)
        } else {
            format!("cannot be started ({err}): {}", self.install_hint)
        };
        self.error(reason)
    }
}

/// A started tool whose stdin/stdout the caller took. A watchdog thread owns the child: it
/// kills it at the deadline, and otherwise waits for it once the caller is done with the pipes.
pub struct Running {
    tool: &'static str,
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
    pub fn watch(tool: &Tool, mut child: Child, deadline: Option<Instant>) -> Self {
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
            tool: tool.name,
            done,
            waiter,
            stderr,
        }
    }

    /// Waits for the tool; call once its stdin is closed or its stdout read to the end.
    pub fn finish(self) -> Result<Finished> {
        let tool = self.tool;
        let _ = self.done.send(());
        let (status, timed_out) = self
            .waiter
            .join()
            .map_err(|_| Error::Internal(format!("the thread waiting for {tool} panicked")))?;
        let status = status.map_err(|e| Error::Tool {
            tool: tool.into(),
            reason: format!("waiting for it to end failed: {e}"),
        })?;
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

    const MISSING: Tool = Tool {
        name: "dbbackup-no-such-tool",
        install_hint: "install the dbbackup test kit",
    };

    #[test]
    fn a_missing_tool_names_what_to_install() {
        let err = MISSING.version().unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::TOOL);
        let text = err.to_string();
        assert!(
            text.contains("not found on PATH") && text.contains("test kit"),
            "{text}"
        );
    }

    /// A terminal's Ctrl-C signals the foreground process group; a tool outside it is not hit.
    #[cfg(unix)]
    #[test]
    fn a_tool_runs_in_a_process_group_of_its_own() {
        let sleep = Tool {
            name: "sleep",
            install_hint: "",
        };
        let mut cmd = sleep.command();
        cmd.arg("5");
        let mut child = sleep.spawn(&mut cmd).unwrap();
        let pid = child.id();
        // SAFETY: getpgid and getpgrp have no preconditions; the child is alive (not waited).
        let (pgid, ours) = unsafe { (libc::getpgid(pid as libc::pid_t), libc::getpgrp()) };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(pgid as u32, pid, "the tool leads its own group");
        assert_ne!(pgid, ours);
    }

    #[test]
    fn stderr_is_collected_and_a_deadline_kills() {
        let sh = Tool {
            name: "sh",
            install_hint: "",
        };
        let mut cmd = sh.command();
        cmd.args(["-c", "echo oops >&2; exit 3"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let finished = Running::watch(&sh, sh.spawn(&mut cmd).unwrap(), None)
            .finish()
            .unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.stderr, "oops");
        // The deadline covers the time the caller spends on the pipes, before `finish`.
        let mut cmd = sh.command();
        cmd.args(["-c", "exec sleep 30"]).stderr(Stdio::piped());
        let deadline = Instant::now() + std::time::Duration::from_millis(100);
        let running = Running::watch(&sh, sh.spawn(&mut cmd).unwrap(), Some(deadline));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let finished = running.finish().unwrap();
        assert!(finished.timed_out && !finished.status.success());
    }
}
