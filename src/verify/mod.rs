//! The restore test: restores a backup into a throwaway place and proves, check by check, that
//! it holds what its manifest says the source held.
//!
//! Checks, each its own result so a report shows exactly what broke:
//! 1. `archive`: the gzip stream is complete with nothing after it, and the file's size and
//!    sha256 are the manifest's; for an encrypted backup, the `.age` file's size and sha256 are
//!    the envelope's, age authenticates every chunk, and the gzip stream inside has the
//!    manifest's size and sha256;
//! 2. `restore`: the engine accepts the dump;
//! 3. `integrity`: the engine's own checks on the restored copy, one result each;
//! 4. `schema`: the same objects, schema checksum and database properties;
//! 5. `data`: one result per table, rows and content checksum equal to the manifest's.
//!
//! A backup that cannot be read at all (no usable manifest, an empty file, no gzip stream) gets
//! the verdict `unreadable` instead: there is nothing to compare it with. A damaged archive that
//! still has its manifest is `failed`: the report can say what is wrong with it.

pub mod junit;
mod stream;
pub mod workdir;

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::archive::encrypt::{self, Envelope, Identity};
use crate::archive::manifest::{self, Manifest, Snapshot};
use crate::archive::naming;
use crate::engine::{self, IntegrityCheck, Scratch};
use crate::error::{Error, Result, exit};
use stream::{ArchiveFacts, ArchiveStream};
use workdir::WorkDir;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The engine's quick integrity check (SQLite: `quick_check`) instead of the full one.
    pub quick: bool,
    /// PostgreSQL: the server to restore on (`--restore-into`) instead of the manifest's.
    pub restore_into: Option<String>,
    /// The secret key that opens encrypted backups; without it they are an
    /// [`Error::Identity`], not a failed check.
    pub identity: Option<Arc<Identity>>,
}

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
    fn new(kind: CheckKind, name: &str, ok_message: String, differences: Vec<Difference>) -> Self {
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

    fn failed(kind: CheckKind, name: &str, what: &str, expected: &str, actual: String) -> Self {
        let diff = Difference {
            what: what.into(),
            expected: expected.into(),
            actual,
        };
        Self::new(kind, name, String::new(), vec![diff])
    }

    fn skipped(kind: CheckKind, name: &str, why: &str) -> Self {
        Self {
            kind,
            name: name.to_string(),
            status: Status::Skipped,
            message: format!("not run: {why}"),
            differences: Vec::new(),
            seconds: 0.0,
        }
    }

    fn timed(mut self, since: Instant) -> Self {
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
}

impl BackupInfo {
    fn from_manifest(m: &Manifest) -> Self {
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
    fn unreadable(backup: &Path, err: &Error, started: Instant, started_at: String) -> Self {
        Self::not_opened(backup, err, Verdict::Unreadable, started, started_at)
    }

    fn locked(backup: &Path, err: &Error, started: Instant, started_at: String) -> Self {
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
            (Verdict::Passed, Some(info)) => vec![format!(
                "restore OK: {} tables, {} rows ({name}, {} checks passed in {:.2}s)",
                info.tables,
                info.rows,
                self.checks.len(),
                self.seconds
            )],
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

/// Restore-tests every backup that `paths` name (see [`locate`]). Backups that cannot be found
/// or read become `unreadable` reports; only trouble with this machine (no space for the
/// scratch copy) is an error.
pub fn restore_test_all(paths: &[PathBuf], all: bool, opts: &Options) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for path in paths {
        match locate(path, all) {
            Ok(archives) => {
                for archive in archives {
                    // A backup no given key opens is reported, and the others still tested.
                    let (started, started_at) = (Instant::now(), now_rfc3339());
                    reports.push(match restore_test(&archive, opts) {
                        Err(err @ Error::Identity(_)) => {
                            Report::locked(&archive, &err, started, started_at)
                        }
                        other => other?,
                    });
                }
            }
            Err(err) => reports.push(Report::unreadable(
                path,
                &err,
                Instant::now(),
                now_rfc3339(),
            )),
        }
    }
    Ok(reports)
}

/// Restore-tests one backup in the system's temporary directory.
pub fn restore_test(archive: &Path, opts: &Options) -> Result<Report> {
    Ok(run(archive, opts, None)?.0)
}

/// Restores a backup to `target` once every check has passed: the verified scratch copy itself
/// is moved into place, so what lands is exactly what was tested. Returns the report; the
/// target is written only when its verdict is `passed`.
pub fn restore(archive: &Path, target: &Path, overwrite: bool, opts: &Options) -> Result<Report> {
    // A database URL target: the copy is restored on that server and renamed into place.
    if let Some(url) = target
        .to_str()
        .filter(|t| engine::postgres::is_postgres_url(t))
    {
        let opts = Options {
            restore_into: Some(engine::postgres::conn::server_url(url)),
            ..opts.clone()
        };
        return persist_passed(run(archive, &opts, None)?, target, overwrite);
    }
    if !overwrite && target.exists() {
        return Err(Error::Usage(format!(
            "{} already exists: pass --force to replace it",
            target.display()
        )));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The scratch copy is made beside the target so that moving it there is a rename.
    persist_passed(run(archive, opts, Some(parent))?, target, overwrite)
}

fn persist_passed(
    (report, restored): (Report, Option<Restored>),
    target: &Path,
    overwrite: bool,
) -> Result<Report> {
    if let (Verdict::Passed, Some(restored)) = (report.verdict, restored) {
        let Restored { scratch, dir } = restored;
        scratch.persist(target, overwrite)?;
        drop(dir);
    }
    Ok(report)
}

/// A restored copy with the directory it lives in; the copy goes first when dropped.
struct Restored {
    scratch: Box<dyn Scratch>,
    dir: WorkDir,
}

/// The backups a command-line BACKUP names: an archive (or its manifest) is itself; a directory
/// is its newest backup by file name order, or every one with `all`.
pub fn locate(path: &Path, all: bool) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        return newest_in(path, all);
    }
    if !path.exists() {
        return Err(Error::unreadable(path, "no such file or directory"));
    }
    let shown = path.to_string_lossy();
    Ok(vec![match shown.strip_suffix(manifest::SUFFIX) {
        Some(archive) => PathBuf::from(archive),
        None => path.to_path_buf(),
    }])
}

fn newest_in(dir: &Path, all: bool) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::unreadable(dir, format!("cannot list the directory: {e}")))?;
    let mut found: Vec<(naming::BackupName, String)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (_, parsed) = naming::parse_any(&name)?;
            Some((parsed, name))
        })
        .collect();
    if found.is_empty() {
        return Err(Error::unreadable(
            dir,
            "the directory holds no dbbackup backup (files named <db>-<yyyymmdd-HHMMSS>.<ext>.gz)",
        ));
    }
    found.sort();
    if !all {
        found.drain(..found.len() - 1);
    }
    Ok(found.into_iter().map(|(_, n)| dir.join(n)).collect())
}

/// Loads the manifest of an archive, for `inspect`; an encrypted backup's is decrypted with
/// `identity` and comes with its readable envelope.
pub fn load_manifest(
    archive: &Path,
    identity: Option<&Identity>,
) -> Result<(Manifest, Option<Envelope>)> {
    encrypt::open_manifest(&manifest::path_for(archive), identity)
}

/// `inspect`'s text: the manifest as a person reads it, tables with their row counts.
pub fn inspect_text(archive: &Path, m: &Manifest, envelope: Option<&Envelope>) -> String {
    use crate::backup::human_bytes;
    use std::fmt::Write as _;
    let tool = m
        .engine
        .dump_tool
        .as_deref()
        .map_or(String::new(), |t| format!(" (dumped with {t})"));
    let ratio = m.raw_bytes as f64 / m.compressed_bytes.max(1) as f64;
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<10}{value}");
    };
    line("backup", archive.display().to_string());
    line(
        "engine",
        format!("{} {}{tool}", m.engine.name, m.engine.version),
    );
    line("created", m.created_at.clone());
    line("source", m.source.clone());
    line("format", m.format.to_string());
    line(
        "size",
        format!(
            "{} compressed, {} raw ({ratio:.1}x)",
            human_bytes(m.compressed_bytes),
            human_bytes(m.raw_bytes)
        ),
    );
    line("sha256", m.sha256.clone());
    if let Some(e) = envelope {
        line(
            "encrypted",
            format!(
                "age, {} ({}, sha256 {}), to {}",
                e.archive,
                human_bytes(e.encrypted_bytes),
                e.encrypted_sha256,
                e.recipients_text()
            ),
        );
    }
    line("written", m.tool.clone());
    line(
        "tables",
        format!(
            "{} tables, {} rows",
            m.snapshot.tables.len(),
            m.snapshot.total_rows()
        ),
    );
    // Names longer than this are not worth aligning the column to; the bound also keeps the
    // width within what `format!` accepts (a manifest's table name can be of any length).
    const MAX_ALIGNED_NAME: usize = 64;
    let width = m.snapshot.tables.iter().map(|t| t.name.chars().count());
    let width = width.max().unwrap_or(0).min(MAX_ALIGNED_NAME);
    for t in &m.snapshot.tables {
        let _ = writeln!(out, "  {:<width$}  {:>10}", t.name, t.rows);
    }
    out
}

/// Runs every check on one archive; the restored copy is kept when every check passed.
fn run(
    archive: &Path,
    opts: &Options,
    work_parent: Option<&Path>,
) -> Result<(Report, Option<Restored>)> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let (manifest, envelope, mut stream) = match open_backup(archive, opts.identity.as_deref()) {
        Ok(opened) => opened,
        // Not a property of the backup: the caller did not give the key that opens it.
        Err(err @ Error::Identity(_)) => return Err(err),
        Err(err) => return Ok((Report::unreadable(archive, &err, started, started_at), None)),
    };
    let target = engine::postgres::RestoreOptions {
        into: opts.restore_into.clone(),
        source: Some(manifest.source.clone()),
        properties: manifest.snapshot.properties.clone(),
    };
    let engine = match engine::for_restore_with(&manifest.engine.name, &target) {
        Ok(engine) => engine,
        Err(err) => return Ok((Report::unreadable(archive, &err, started, started_at), None)),
    };
    let dir = WorkDir::new(work_parent)?;

    let pass = Instant::now();
    let restored = engine.restore_scratch(manifest.format, &mut stream, dir.path());
    let restore_seconds = pass.elapsed().as_secs_f64();
    let finish = Instant::now();
    let facts = stream.finish();
    let mut checks = vec![archive_check(&manifest, envelope.as_ref(), &facts).timed(finish)];

    let (mut check, scratch) = restore_check(restored, &facts, &manifest)?;
    check.seconds = restore_seconds;
    checks.push(check);
    match &scratch {
        Some(s) => checks.extend(restored_checks(s.as_ref(), &manifest.snapshot, opts)?),
        None => checks.extend(skipped_after_restore(&manifest.snapshot, opts)),
    }

    let verdict = if checks.iter().all(|c| c.status == Status::Passed) {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    let report = Report {
        backup: archive.to_path_buf(),
        verdict,
        unreadable: None,
        info: Some(BackupInfo::from_manifest(&manifest)),
        started_at,
        seconds: started.elapsed().as_secs_f64(),
        checks,
    };
    let kept = scratch
        .filter(|_| verdict == Verdict::Passed)
        .map(|scratch| Restored { scratch, dir });
    Ok((report, kept))
}

/// The restore check from what `restore_scratch` returned. When the archive is damaged the
/// restore stops on it and counts as not run: the archive check already reports the cause.
fn restore_check(
    restored: Result<Box<dyn Scratch>>,
    facts: &ArchiveFacts,
    manifest: &Manifest,
) -> Result<(CheckResult, Option<Box<dyn Scratch>>)> {
    let name = "restore";
    match restored {
        Ok(scratch) => {
            let mut ok = format!("the {} dump restored", manifest.format);
            for note in scratch.notes() {
                ok.push_str(&format!("; {note}"));
            }
            let check = CheckResult::new(CheckKind::Restore, name, ok, Vec::new());
            Ok((check, Some(scratch)))
        }
        Err(_) if facts.stream_error.is_some() => {
            let why = "the archive is damaged";
            Ok((CheckResult::skipped(CheckKind::Restore, name, why), None))
        }
        Err(err @ (Error::Verify { .. } | Error::Unreadable { .. } | Error::Usage(_))) => {
            let reason = err.to_string();
            let check = CheckResult::failed(CheckKind::Restore, name, name, "success", reason);
            Ok((check, None))
        }
        Err(other) => Err(other),
    }
}

/// The manifest and the opened archive; anything that leaves nothing to check is unreadable.
/// An encrypted backup also gives its envelope, and its archive is decrypted as it is read.
fn open_backup(
    archive: &Path,
    identity: Option<&Identity>,
) -> Result<(Manifest, Option<Envelope>, ArchiveStream)> {
    let manifest_path = manifest::path_for(archive);
    if !manifest_path.exists() {
        return Err(Error::unreadable(
            archive,
            format!(
                "not a dbbackup backup: its manifest {} is missing (give the .gz file that \
                 dbbackup wrote, next to its manifest)",
                manifest_path.display()
            ),
        ));
    }
    let (manifest, envelope) = encrypt::open_manifest(&manifest_path, identity)?;
    let cannot_read =
        |e: std::io::Error| Error::unreadable(archive, format!("cannot read the archive: {e}"));
    let mut file = File::open(archive).map_err(cannot_read)?;
    let mut magic = [0u8; 2];
    let read = file.read(&mut magic).map_err(cannot_read)?;
    if read == 0 {
        return Err(Error::unreadable(archive, "the archive is an empty file"));
    }
    file.rewind().map_err(cannot_read)?;
    let stream = match &envelope {
        Some(envelope) => ArchiveStream::encrypted(file, manifest.raw_bytes, |input| {
            encrypt::decrypt(input, identity, envelope, archive)
        })?,
        None if read < 2 || magic != [0x1f, 0x8b] => {
            return Err(Error::unreadable(archive, "the archive is not a gzip file"));
        }
        None => ArchiveStream::new(file, manifest.raw_bytes),
    };
    Ok((manifest, envelope, stream))
}

fn archive_check(
    manifest: &Manifest,
    envelope: Option<&Envelope>,
    facts: &ArchiveFacts,
) -> CheckResult {
    let mut diffs = Vec::new();
    let mut differ = |what: &str, expected: String, actual: String| {
        if expected != actual {
            diffs.push(Difference {
                what: what.into(),
                expected,
                actual,
            });
        }
    };
    match &facts.stream_error {
        Some(err) if envelope.is_some() => {
            differ("decrypted gzip stream", "complete".into(), err.clone())
        }
        Some(err) => differ("gzip stream", "complete".into(), err.clone()),
        None => {
            differ(
                "data after the gzip stream",
                "0 bytes".into(),
                format!("{} bytes", facts.trailing_bytes),
            );
            differ(
                "uncompressed size",
                manifest.raw_bytes.to_string(),
                facts.raw_bytes.to_string(),
            );
        }
    }
    differ(
        "archive size",
        manifest.compressed_bytes.to_string(),
        facts.compressed_bytes.to_string(),
    );
    differ("sha256", manifest.sha256.clone(), facts.sha256.clone());
    let mut ok = format!(
        "gzip stream complete, {} bytes, sha256 {}",
        facts.compressed_bytes, facts.sha256
    );
    if let Some(envelope) = envelope {
        let (bytes, sha256) = facts.ciphertext.clone().unwrap_or_default();
        differ(
            "encrypted archive size",
            envelope.encrypted_bytes.to_string(),
            bytes.to_string(),
        );
        differ(
            "encrypted archive sha256",
            envelope.encrypted_sha256.clone(),
            sha256.clone(),
        );
        ok = format!("age-encrypted archive authenticated, {bytes} bytes, sha256 {sha256}; {ok}");
    }
    CheckResult::new(CheckKind::Archive, "archive", ok, diffs)
}

/// Integrity, schema and data checks on a restored copy.
fn restored_checks(
    scratch: &dyn Scratch,
    expected: &Snapshot,
    opts: &Options,
) -> Result<Vec<CheckResult>> {
    let mut checks = Vec::new();
    let started = Instant::now();
    match scratch.integrity(opts.quick) {
        Ok(results) => checks.extend(results.iter().map(integrity_check)),
        Err(err @ Error::Verify { .. }) => checks.push(CheckResult::failed(
            CheckKind::Integrity,
            "integrity",
            "integrity check",
            "ok",
            err.to_string(),
        )),
        Err(other) => return Err(other),
    }
    if let Some(first) = checks.first_mut() {
        first.seconds = started.elapsed().as_secs_f64();
    }
    let started = Instant::now();
    match scratch.describe() {
        Ok(actual) => {
            checks.push(schema_check(expected, &actual).timed(started));
            checks.extend(data_checks(expected, &actual));
        }
        Err(err @ Error::Verify { .. }) => {
            checks.push(
                CheckResult::failed(
                    CheckKind::Schema,
                    "schema",
                    "description of the restored database",
                    "readable",
                    err.to_string(),
                )
                .timed(started),
            );
            checks.extend(skipped_tables(
                expected,
                "the restored database cannot be read",
            ));
        }
        Err(other) => return Err(other),
    }
    Ok(checks)
}

fn integrity_check(result: &IntegrityCheck) -> CheckResult {
    let diffs = result
        .problems
        .iter()
        .map(|p| Difference {
            what: result.name.clone(),
            expected: "ok".into(),
            actual: p.clone(),
        })
        .collect();
    CheckResult::new(
        CheckKind::Integrity,
        &result.name,
        format!("{}: ok", result.name),
        diffs,
    )
}

fn schema_check(expected: &Snapshot, actual: &Snapshot) -> CheckResult {
    let mut diffs = Vec::new();
    let shown = |o: &manifest::SchemaObject| format!("{} {}", o.kind, o.name);
    for missing in expected
        .objects
        .iter()
        .filter(|o| !actual.objects.contains(o))
    {
        diffs.push(Difference {
            what: "schema object".into(),
            expected: shown(missing),
            actual: "missing".into(),
        });
    }
    for extra in actual
        .objects
        .iter()
        .filter(|o| !expected.objects.contains(o))
    {
        diffs.push(Difference {
            what: "schema object".into(),
            expected: "absent".into(),
            actual: shown(extra),
        });
    }
    let mut differ = |what: String, e: Option<&String>, a: Option<&String>| {
        if e != a {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(none)".into());
            diffs.push(Difference {
                what,
                expected: show(e),
                actual: show(a),
            });
        }
    };
    differ(
        "schema checksum".into(),
        Some(&expected.schema_checksum),
        Some(&actual.schema_checksum),
    );
    differ(
        "checksum algorithm".into(),
        Some(&expected.checksum_algorithm),
        Some(&actual.checksum_algorithm),
    );
    let keys: std::collections::BTreeSet<&String> = expected
        .properties
        .keys()
        .chain(actual.properties.keys())
        .collect();
    for key in keys {
        differ(
            format!("property {key}"),
            expected.properties.get(key),
            actual.properties.get(key),
        );
    }
    let ok = format!(
        "{} objects, schema checksum {}",
        actual.objects.len(),
        actual.schema_checksum
    );
    CheckResult::new(CheckKind::Schema, "schema", ok, diffs)
}

/// One result per table of either side: a table the manifest lists but the restored copy lacks
/// fails, and so does one the restored copy has but the manifest does not list.
fn data_checks(expected: &Snapshot, actual: &Snapshot) -> Vec<CheckResult> {
    let mut checks: Vec<CheckResult> = expected
        .tables
        .iter()
        .map(|want| {
            let name = format!("table {}", want.name);
            let Some(got) = actual.tables.iter().find(|t| t.name == want.name) else {
                let expected = format!("{} rows", want.rows);
                let actual = "missing".to_string();
                return CheckResult::failed(CheckKind::Data, &name, "table", &expected, actual);
            };
            let mut diffs = Vec::new();
            if want.rows != got.rows {
                diffs.push(Difference {
                    what: "rows".into(),
                    expected: want.rows.to_string(),
                    actual: got.rows.to_string(),
                });
            }
            if want.checksum != got.checksum {
                diffs.push(Difference {
                    what: "checksum".into(),
                    expected: want.checksum.clone(),
                    actual: got.checksum.clone(),
                });
            }
            let ok = format!("{} rows, checksum {}", got.rows, got.checksum);
            CheckResult::new(CheckKind::Data, &name, ok, diffs)
        })
        .collect();
    for extra in actual
        .tables
        .iter()
        .filter(|t| !expected.tables.iter().any(|w| w.name == t.name))
    {
        checks.push(CheckResult::failed(
            CheckKind::Data,
            &format!("table {}", extra.name),
            "table",
            "absent",
            format!("{} rows", extra.rows),
        ));
    }
    checks
}

/// The checks that need a restored copy, marked as not run.
fn skipped_after_restore(expected: &Snapshot, opts: &Options) -> Vec<CheckResult> {
    let why = "nothing was restored";
    let integrity = if opts.quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    let mut checks = vec![
        CheckResult::skipped(CheckKind::Integrity, integrity, why),
        CheckResult::skipped(CheckKind::Schema, "schema", why),
    ];
    checks.extend(skipped_tables(expected, why));
    checks
}

fn skipped_tables(expected: &Snapshot, why: &str) -> Vec<CheckResult> {
    expected
        .tables
        .iter()
        .map(|t| CheckResult::skipped(CheckKind::Data, &format!("table {}", t.name), why))
        .collect()
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("UTC time formats as RFC 3339")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::TableStats;

    fn table(name: &str, rows: u64, checksum: &str) -> TableStats {
        TableStats {
            name: name.into(),
            rows,
            checksum: checksum.into(),
        }
    }

    #[test]
    fn data_checks_name_missing_extra_and_changed_tables() {
        let expected = Snapshot {
            tables: vec![table("a", 3, "x"), table("b", 1, "y")],
            ..Snapshot::default()
        };
        let actual = Snapshot {
            tables: vec![table("a", 2, "z"), table("c", 5, "w")],
            ..Snapshot::default()
        };
        let checks = data_checks(&expected, &actual);
        let summary: Vec<(&str, Status, &str)> = checks
            .iter()
            .map(|c| (c.name.as_str(), c.status, c.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "table a",
                    Status::Failed,
                    "rows: expected 3, actual 2; checksum: expected x, actual z"
                ),
                (
                    "table b",
                    Status::Failed,
                    "table: expected 1 rows, actual missing"
                ),
                (
                    "table c",
                    Status::Failed,
                    "table: expected absent, actual 5 rows"
                ),
            ]
        );
    }

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
