//! The restore test: restores a backup into a throwaway place and proves, check by check, that
//! it holds what its manifest says the source held.
//!
//! Checks, each its own result so a report shows exactly what broke:
//! 1. `archive`: the compressed stream (gzip or zstd, told apart by content) is complete with
//!    nothing after it, and the file's size and sha256 are the manifest's; for an encrypted
//!    backup, the `.age` file's size and sha256 are the envelope's, age authenticates every
//!    chunk, and the compressed stream inside has the manifest's size and sha256;
//! 2. `restore`: the engine accepts the dump;
//! 3. `integrity`: the engine's own checks on the restored copy, one result each;
//! 4. `schema`: the same objects, schema checksum and database properties;
//! 5. `data`: one result per table, rows and content checksum equal to the manifest's.
//!
//! A backup that cannot be read at all (no usable manifest, an empty file, neither a gzip nor a
//! zstd stream) gets
//! the verdict `unreadable` instead: there is nothing to compare it with. A damaged archive that
//! still has its manifest is `failed`: the report can say what is wrong with it.

mod checks;
pub mod junit;
mod report;
mod stream;
mod workdir;

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::archive::codec::Codec;
use crate::archive::encrypt::{self, Envelope, Identity};
use crate::archive::manifest::{self, Manifest};
use crate::archive::naming;
use crate::cleanup::TempDir;
use crate::engine::{self, Fallback, RestoreTarget, Scratch};
use crate::error::{Error, Result};
use crate::progress::{Progress, Total};
use crate::store::local;
use crate::util::now_rfc3339;
use checks::{archive_check, restored_checks, skipped_after_restore};
pub use report::{
    BackupInfo, CheckKind, CheckResult, Difference, Report, Status, Verdict, exit_code, failure,
};
use stream::{ArchiveFacts, ArchiveStream};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The engine's quick integrity check (SQLite: `quick_check`) instead of the full one.
    pub quick: bool,
    /// PostgreSQL: the server to restore on (`--restore-into`) instead of the manifest's.
    pub restore_into: Option<String>,
    /// Where to restore without `restore_into`: the source's server, or the environment's.
    pub otherwise: Fallback,
    /// The secret key that opens encrypted backups; without it they are an
    /// [`Error::Identity`], not a failed check.
    pub identity: Option<Arc<Identity>>,
    /// Parallel restore workers where the format has them (PostgreSQL's directory format:
    /// `pg_restore -j`); `None` lets the engine choose.
    pub jobs: Option<u32>,
}

/// Restore-tests every backup that `paths` name (see [`local::locate`]). Backups that cannot be found
/// or read become `unreadable` reports; only trouble with this machine (no space for the
/// scratch copy) is an error.
pub fn restore_test_all(paths: &[PathBuf], all: bool, opts: &Options) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for path in paths {
        match local::locate(path, all) {
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
    // A database on a server: the copy is restored on that server and renamed into place.
    if let Some(server) = target.to_str().and_then(engine::restore_server) {
        let opts = Options {
            restore_into: Some(server),
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
    dir: TempDir,
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
    let target = RestoreTarget {
        manifest: &manifest,
        into: opts.restore_into.as_deref(),
        otherwise: opts.otherwise,
        jobs: opts.jobs,
    };
    let restorer = match engine::restorer(&target) {
        Ok(restorer) => restorer,
        // No client tool that can restore this backup here (PostgreSQL: no psql as new as
        // the pg_dump that made it): the machine lacks a tool, the backup is not at fault.
        Err(err @ Error::Tool { .. }) => return Err(err),
        Err(err) => return Ok((Report::unreadable(archive, &err, started, started_at), None)),
    };
    let dir = workdir::new(work_parent)?;

    let pass = Instant::now();
    // The manifest says exactly how many bytes the archive decompresses to (and the stream
    // stops there), so the restore shows a percentage and an ETA.
    let progress = Progress::with_total("restoring", Total::exactly(manifest.raw_bytes));
    let restored = restorer.restore(
        manifest.format,
        &mut progress.reader(&mut stream),
        dir.path(),
    );
    if restored.is_ok() {
        progress.finish();
    }
    // A restore an interrupt broke (its scratch database dropped under it) is no verdict.
    crate::cleanup::checkpoint();
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

    // Checks an interrupt cut short (our connection to a scratch database it dropped) are no
    // verdict either.
    crate::cleanup::checkpoint();
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

/// The restore check from what [`engine::Restorer::restore`] returned. When the archive is damaged the
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
                "not a dbbackup backup: its manifest {} is missing (give the .gz or .zst \
                 file that dbbackup wrote, next to its manifest)",
                manifest_path.display()
            ),
        ));
    }
    let (manifest, envelope) = encrypt::open_manifest(&manifest_path, identity)?;
    let cannot_read =
        |e: std::io::Error| Error::unreadable(archive, format!("cannot read the archive: {e}"));
    let mut file = File::open(archive).map_err(cannot_read)?;
    let mut magic = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(cannot_read)?;
    if magic.is_empty() {
        return Err(Error::unreadable(archive, "the archive is an empty file"));
    }
    file.rewind().map_err(cannot_read)?;
    let stream = match &envelope {
        Some(envelope) => ArchiveStream::encrypted(file, manifest.raw_bytes, |input| {
            encrypt::decrypt(input, identity, envelope, archive)
        })?,
        None if Codec::sniff(&magic).is_none() => {
            return Err(Error::unreadable(
                archive,
                "the archive is neither a gzip nor a zstd file",
            ));
        }
        None => ArchiveStream::new(file, manifest.raw_bytes)?,
    };
    warn_if_misnamed(archive, stream.codec());
    Ok((manifest, envelope, stream))
}

/// The content decides how a backup is read; a name that says otherwise (a `.zst` renamed
/// `.gz`) is worth a warning, since `gunzip` or `zstd -d` would refuse the file.
fn warn_if_misnamed(archive: &Path, content: Codec) {
    let name = archive.file_name().map(|n| n.to_string_lossy());
    if let Some(named) = name.as_deref().and_then(naming::codec_named)
        && named != content
    {
        tracing::warn!(
            "{} is named as {named} but holds {content}: read as {content} (rename it to end \
             in {}{} for the standard tools)",
            archive.display(),
            content.suffix(),
            if name
                .as_deref()
                .is_some_and(|n| n.ends_with(encrypt::SUFFIX))
            {
                encrypt::SUFFIX
            } else {
                ""
            }
        );
    }
}
