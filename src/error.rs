//! The library's error type and the exit codes they map to.
//!
//! Exit codes are part of the public contract (scripts and the Action branch on them), so each
//! error variant names its code here, in one place, and the README documents the table.

use std::path::PathBuf;

/// Exit codes, documented in the README. Kept as plain constants so that scripts can rely on them.
pub mod exit {
    /// Everything worked and every check passed.
    pub const OK: u8 = 0;
    /// An unexpected internal error (a bug: please report it).
    pub const INTERNAL: u8 = 1;
    /// The command line was wrong (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// The source database could not be read: missing, not a database, corrupt, locked, refused.
    pub const SOURCE: u8 = 3;
    /// The output could not be written: unwritable directory, full disk.
    pub const OUTPUT: u8 = 4;
    /// A verification or restore-test check failed: the backup is not trustworthy.
    pub const CHECK_FAILED: u8 = 5;
    /// The backup could not be read at all: truncated, not a backup, manifest missing or broken.
    pub const UNREADABLE: u8 = 6;
    /// A required external tool (such as `pg_dump`) is missing or unusable.
    pub const TOOL: u8 = 7;
    /// GitHub, the artifact service or an object store failed or refused: network, rate limit,
    /// missing permission, wrong credentials, missing bucket.
    pub const REMOTE: u8 = 8;
    /// An encrypted backup cannot be opened: no identity was given, or not one of the keys it
    /// was encrypted to (or not a usable key at all).
    pub const IDENTITY: u8 = 9;
    /// `check`: the newest backup of a name is older than `--max-age` or smaller than
    /// `--min-bytes`, or there is none.
    pub const STALE: u8 = 10;
}

/// Everything the library can fail with. Messages say what failed, on which object, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    /// `what` says which database it is: the backup's source, or the server a restore test
    /// restores on.
    #[error("{what} {path}: {reason}")]
    Source {
        what: &'static str,
        path: String,
        reason: String,
    },

    /// The I/O error is part of the message and deliberately not a `#[source]`: callers print
    /// the whole chain, which would show it twice.
    #[error("{action} {path}: {io}{hint}", hint = io_hint(io))]
    Output {
        action: &'static str,
        path: PathBuf,
        io: std::io::Error,
    },

    #[error("verification failed for {object}: {reason}")]
    Verify { object: String, reason: String },

    #[error("backup {path} cannot be read: {reason}")]
    Unreadable { path: PathBuf, reason: String },

    #[error("{tool}: {reason}")]
    Tool { tool: String, reason: String },

    #[error("internal error: {0}")]
    Internal(String),

    /// Pruning could not delete every backup past the keep count. Each failure keeps its own
    /// error, so a read-only directory exits as an output error and a refusal by GitHub as a
    /// remote one, never as an internal error.
    #[error(
        "pruning deleted {deleted} backup(s) but failed on {}: {}",
        failed.len(),
        failed.iter().map(|(name, e)| format!("{name}: {e}")).collect::<Vec<_>>().join("; ")
    )]
    Prune {
        deleted: usize,
        /// The backups that could not be deleted, by name, with why.
        failed: Vec<(String, Error)>,
    },

    /// GitHub's REST API or the Actions artifact service failed or refused. The message never
    /// carries a token or a signed URL.
    #[error("{0}")]
    Remote(String),

    /// A missing, wrong or unusable identity for an encrypted backup. The message names the
    /// recipients the backup was encrypted to, and never the identity itself.
    #[error("{0}")]
    Identity(String),

    /// Putting a verified backup to a destination store failed. The backups already put
    /// elsewhere stay; nothing is pruned anywhere. The exit code is the cause's.
    #[error(
        "storing the backup in {store} failed{}: {cause}",
        held_elsewhere(*stored)
    )]
    Replicate {
        store: String,
        stored: usize,
        cause: Box<Error>,
    },

    /// `check` found a backup missing, too old or too small: backups that stopped silently.
    /// The message names each failing name with its newest backup and its age.
    #[error("{0}")]
    Stale(String),

    /// A restore test did not pass: `backup --restore-test`, `restore` and `restore-test` all
    /// end this way, with the worst verdict's exit code (5 failed, 6 unreadable, 9 locked) and
    /// what happened to the backup or the target.
    #[error("the restore test {outcome}: {consequence}")]
    RestoreTest {
        /// `of X failed (3 of 20 checks)`, `found X unreadable`, ...
        outcome: String,
        consequence: String,
        code: u8,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Source { .. } => exit::SOURCE,
            Error::Output { .. } => exit::OUTPUT,
            Error::Verify { .. } => exit::CHECK_FAILED,
            Error::Unreadable { .. } => exit::UNREADABLE,
            Error::Tool { .. } => exit::TOOL,
            Error::Internal(_) => exit::INTERNAL,
            Error::Remote(_) => exit::REMOTE,
            Error::Prune { failed, .. } => failed
                .first()
                .map_or(exit::INTERNAL, |(_, e)| e.exit_code()),
            Error::Identity(_) => exit::IDENTITY,
            Error::Replicate { cause, .. } => cause.exit_code(),
            Error::RestoreTest { code, .. } => *code,
            Error::Stale(_) => exit::STALE,
        }
    }

    /// An output error: `action` is a verb phrase such as "write backup".
    pub fn output(action: &'static str, path: impl Into<PathBuf>, io: std::io::Error) -> Self {
        Error::Output {
            action,
            path: path.into(),
            io,
        }
    }

    pub fn source_db(path: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        Error::Source {
            what: "source database",
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn unreadable(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Unreadable {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

fn held_elsewhere(stored: usize) -> String {
    match stored {
        0 => String::new(),
        n => format!(" ({n} other destination(s) already hold it)"),
    }
}

/// A short, actionable hint for the I/O failures users actually hit when writing backups.
fn io_hint(err: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::StorageFull => " (the disk is full: free space or choose another --out)",
        ErrorKind::PermissionDenied => " (no permission: choose a writable --out)",
        ErrorKind::ReadOnlyFilesystem => " (read-only filesystem: choose a writable --out)",
        ErrorKind::FileTooLarge => " (past the file size limit: raise `ulimit -f`)",
        _ => "",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
