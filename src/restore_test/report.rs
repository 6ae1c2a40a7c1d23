//! What a restore test found, check by check: the report that the terminal, `--json`, JUnit
//! and the job summary all show.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::archive::manifest::Manifest;
use crate::error::{Error, exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Archive,
    Restore,
    Integrity,
    Schema,
    Data,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Archive => "archive",
            CheckKind::Restore => "restore",
            CheckKind::Integrity => "integrity",
            CheckKind::Schema => "schema",
            CheckKind::Data => "data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// Not run because an earlier check failed (nothing restored to look at).
    Skipped,
}

/// One thing that is not as the manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub kind: CheckKind,
    pub name: String,
    pub status: Status,
    /// One line: what was proven when it passed, what differed or why it did not run otherwise.
    pub message: String,
    pub differences: Vec<Difference>,
    /// Time spent on this check. Work shared by several checks (the one pass over the archive,
    /// the one description of the restored database) is counted once, on the first of them.
    pub seconds: f64,
}

impl CheckResult {
    pub(super) fn new(
        kind: CheckKind,
        name: &str,
        ok_message: String,
        differences: Vec<Difference>,
    ) -> Self {
        let (status, message) = if differences.is_empty() {
            (Status::Passed, ok_message)
        } else {
            (Status::Failed, differences_line(&differences))
        };
        Self {
            kind,
            name: name.to_string(),
            status,
            message,
            differences,
            seconds: 0.0,
        }
    }

    pub(super) fn failed(
        kind: CheckKind,
        name: &str,
        what: &str,
        expected: &str,
        actual: String,
    ) -> Self {
        let diff = Difference {
            what: what.into(),
            expected: expected.into(),
            actual,
        };
        Self::new(kind, name, String::new(), vec![diff])
    }

    pub(super) fn skipped(kind: CheckKind, name: &str, why: &str) -> Self {
        Self {
            kind,
            name: name.to_string(),
            status: Status::Skipped,
            message: format!("not run: {why}"),
            differences: Vec::new(),
            seconds: 0.0,
        }
    }

    pub(super) fn timed(mut self, since: Instant) -> Self {
        self.seconds = since.elapsed().as_secs_f64();
        self
    }
}

/// `rows: expected 3503, actual 3502; checksum: expected ..., actual ...`
fn differences_line(differences: &[Difference]) -> String {
    let parts: Vec<String> = differences
        .iter()
        .map(|d| format!("{}: expected {}, actual {}", d.what, d.expected, d.actual))
        .collect();
    parts.join("; ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    Unreadable,
    /// Encrypted, and no identity given opens it: not a property of the backup, so it
    /// outranks the others (exit code 9 says what to fix).
    Locked,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Unreadable => "unreadable",
            Verdict::Locked => "locked",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => exit::OK,
            Verdict::Failed => exit::CHECK_FAILED,
            Verdict::Unreadable => exit::UNREADABLE,
            Verdict::Locked => exit::IDENTITY,
        }
    }
}

/// What the manifest says about a backup, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct BackupInfo {
    pub engine: String,
    pub engine_version: String,
    pub format: String,
    pub created_at: String,
    pub source: String,
    pub tool: String,
    pub compressed_bytes: u64,
    pub raw_bytes: u64,
    pub sha256: String,
    pub tables: usize,
    pub rows: u64,
    /// What the restore test does not compare, each with why (the manifest's list).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
}

impl BackupInfo {
    pub(super) fn from_manifest(m: &Manifest) -> Self {
        Self {
            engine: m.engine.name.clone(),
            engine_version: m.engine.version.clone(),
            format: m.format.to_string(),
            created_at: m.created_at.clone(),
            source: m.source.clone(),
            tool: m.tool.clone(),
            compressed_bytes: m.compressed_bytes,
            raw_bytes: m.raw_bytes,
            sha256: m.sha256.clone(),
            tables: m.snapshot.tables.len(),
            rows: m.snapshot.total_rows(),
            not_compared: m.snapshot.not_compared.clone(),
        }
    }
}

/// The restore test of one backup.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The archive (or the path given, when it names no archive).
    pub backup: PathBuf,
    pub verdict: Verdict,
    /// Why the backup could not be read, for the `unreadable` verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<BackupInfo>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub seconds: f64,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub(super) fn unreadable(
        backup: &Path,
        err: &Error,
        started: Instant,
        started_at: String,
    ) -> Self {
        Self::not_opened(backup, err, Verdict::Unreadable, started, started_at)
    }

    pub(super) fn locked(backup: &Path, err: &Error, started: Instant, started_at: String) -> Self {
        Self::not_opened(backup, err, Verdict::Locked, started, started_at)
    }

    fn not_opened(
        backup: &Path,
        err: &Error,
        verdict: Verdict,
        started: Instant,
        started_at: String,
    ) -> Self {
        let reason = err.to_string();
        let check = CheckResult::failed(
            CheckKind::Archive,
            "archive",
            "backup",
            "a dbbackup archive with its manifest",
            reason.clone(),
        );
        Self {
            backup: backup.to_path_buf(),
            verdict,
            unreadable: Some(reason),
            info: None,
            started_at,
            seconds: started.elapsed().as_secs_f64(),
            checks: vec![check],
        }
    }

    fn passed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Passed)
            .count()
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Failed)
    }

    /// The archive's file name, which names the report's test suite.
    pub fn name(&self) -> String {
        self.backup.file_name().map_or_else(
            || self.backup.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// What a person reads: `restore OK: 11 tables, 15607 rows (...)`, or what differed.
    pub fn summary_lines(&self) -> Vec<String> {
        let name = self.name();
        match (self.verdict, &self.info) {
            (Verdict::Passed, Some(info)) => {
                let mut lines = vec![format!(
                    "restore OK: {} tables, {} rows ({name}, {} checks passed in {:.2}s)",
                    info.tables,
                    info.rows,
                    self.checks.len(),
                    self.seconds
                )];
                if !info.not_compared.is_empty() {
                    // The names only; the reports carry each one's reason.
                    let what: Vec<&str> = (info.not_compared.iter())
                        .map(|n| n.split(" (").next().unwrap_or(n))
                        .collect();
                    lines.push(format!("  not compared: {}", what.join("; ")));
                }
                lines
            }
            (Verdict::Locked, _) => vec![format!(
                "restore LOCKED: {}",
                self.unreadable.as_deref().unwrap_or("no identity opens it")
            )],
            (Verdict::Unreadable, _) | (_, None) => vec![format!(
                "restore UNREADABLE: {}",
                self.unreadable.as_deref().unwrap_or("no manifest")
            )],
            (Verdict::Failed, Some(_)) => self.failure_lines(&name),
        }
    }

    fn failure_lines(&self, name: &str) -> Vec<String> {
        let failed: Vec<&CheckResult> = self.failed_checks().collect();
        let skipped = self.checks.len() - failed.len() - self.passed();
        let not_run = match skipped {
            0 => String::new(),
            n => format!(", {n} not run"),
        };
        let mut lines = vec![format!(
            "restore FAILED: {name}: {} of {} checks failed{not_run}",
            failed.len(),
            self.checks.len()
        )];
        for check in failed {
            lines.push(match check.kind.as_str() {
                kind if kind == check.name => format!("  {kind}:"),
                kind => format!("  {kind}: {}:", check.name),
            });
            lines.extend(check.differences.iter().take(MAX_SHOWN).map(|d| {
                format!(
                    "    {}: expected {}, actual {}",
                    d.what, d.expected, d.actual
                )
            }));
            if check.differences.len() > MAX_SHOWN {
                let more = check.differences.len() - MAX_SHOWN;
                lines.push(format!("    ... and {more} more (see --json or --junit)"));
            }
        }
        lines
    }
}

/// Differences shown per check on the terminal; reports carry all of them.
const MAX_SHOWN: usize = 10;

/// The worst verdict's exit code: an unreadable backup outranks a failed check, and a backup
/// no given key opens outranks both.
pub fn exit_code(reports: &[Report]) -> u8 {
    reports
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Passed)
        .exit_code()
}

/// The error that ends a command whose restore test did not pass, or `None` when every report
/// passed. `consequence` says what happened to the backup or the target because of it.
pub fn failure(reports: &[Report], consequence: &str) -> Option<Error> {
    let worst = reports.iter().map(|r| r.verdict).max()?;
    if worst == Verdict::Passed {
        return None;
    }
    let outcome = match reports {
        [report] => match report.verdict {
            Verdict::Failed => {
                let failed = report.failed_checks().count();
                format!(
                    "of {} failed ({failed} of {} checks)",
                    report.name(),
                    report.checks.len()
                )
            }
            Verdict::Unreadable => format!("found {} unreadable", report.name()),
            Verdict::Locked => format!(
                "could not open {}: no identity given opens it",
                report.name()
            ),
            Verdict::Passed => unreachable!("the worst verdict is not passed"),
        },
        several => {
            let bad = several
                .iter()
                .filter(|r| r.verdict != Verdict::Passed)
                .count();
            format!(
                "did not pass for {bad} of {} backups (worst: {})",
                several.len(),
                worst.as_str()
            )
        }
    };
    Some(Error::RestoreTest {
        outcome,
        consequence: consequence.to_string(),
        code: worst.exit_code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_outranks_failed_and_locked_outranks_both() {
        let report = |verdict| Report {
            backup: PathBuf::from("x.gz"),
            verdict,
            unreadable: None,
            info: None,
            started_at: String::new(),
            seconds: 0.0,
            checks: Vec::new(),
        };
        let all = [
            report(Verdict::Failed),
            report(Verdict::Unreadable),
            report(Verdict::Passed),
        ];
        assert_eq!(exit_code(&all), exit::UNREADABLE);
        assert_eq!(exit_code(&all[..1]), exit::CHECK_FAILED);
        assert_eq!(exit_code(&all[2..]), exit::OK);
        let with_locked = [report(Verdict::Unreadable), report(Verdict::Locked)];
        assert_eq!(exit_code(&with_locked), exit::IDENTITY);
    }
}
