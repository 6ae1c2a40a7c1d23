//! The backup lifecycle, in order: snapshot, verify, compress (and encrypt, with
//! `--encrypt-to`), write atomically, rotate.
//! If any step fails nothing is rotated away and the error says which step.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::info;

use crate::archive::compress::{GzipWriter, Summary};
use crate::archive::encrypt::{self, Envelope, Recipients, Sealed, Sink};
use crate::archive::manifest::{self, MANIFEST_VERSION, Manifest};
use crate::archive::{Format, naming};
use crate::engine::{self, Dumped, SnapshotCheck};
use crate::error::{Error, Result};
use crate::progress;
use crate::retention;
use crate::store::artifacts::{self, ArtifactStore, GitHub, Runtime, Uploaded, guard};
use crate::store::{self, Store, StoredBackup, local::LocalStore};
use crate::verify::{self, Report, Verdict};

#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// A path, `sqlite:` URL or `postgres://` URL.
    pub source: String,
    pub out: PathBuf,
    /// Keep the newest N backups of this database in `out`; `None` keeps all.
    pub keep: Option<usize>,
    /// `None` picks the engine's default.
    pub format: Option<Format>,
    /// gzip level 1-9.
    pub level: u32,
    /// Give up (PostgreSQL: stop pg_dump) after this long.
    pub timeout: Option<Duration>,
    /// Restore-test the new backup before anything old is rotated away. An encrypted backup
    /// needs the identity in these options.
    pub restore_test: Option<verify::Options>,
    /// Encrypt the backup (and its manifest) to these public keys before it gets its name.
    pub encrypt_to: Option<Arc<Recipients>>,
    /// Check the snapshot with the engine's quick check instead of its full one.
    pub quick: bool,
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub path: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
    /// Old backups deleted by rotation.
    pub pruned: Vec<StoredBackup>,
    /// The manifest of the newest backup before this one, when there is one: the job summary
    /// shows the change in row counts since then.
    pub previous: Option<Manifest>,
    /// The restore test of the new backup, when one was asked for. When it did not pass, the
    /// backup was set aside under `<name>.failed` (so it never counts as a backup), `path`
    /// names that file, and nothing was rotated: check [`BackupOutcome::verified`].
    pub restore_test: Option<Report>,
    /// The `.age` file's size and sha256 when the backup is encrypted (the manifest's sizes
    /// and sha256 are the gzip stream's inside it).
    pub sealed: Option<Sealed>,
    pub seconds: f64,
}

impl BackupOutcome {
    /// The backup file's size and sha256 as it is on disk: the `.age` file's when encrypted.
    pub fn on_disk(&self) -> (u64, &str) {
        match &self.sealed {
            Some(sealed) => (sealed.bytes, &sealed.sha256),
            None => (self.manifest.compressed_bytes, &self.manifest.sha256),
        }
    }

    /// False when the restore test ran and did not pass.
    pub fn verified(&self) -> bool {
        self.restore_test
            .as_ref()
            .is_none_or(|r| r.verdict == Verdict::Passed)
    }
}

pub fn run(opts: &BackupOptions) -> Result<BackupOutcome> {
    let started = Instant::now();
    if !(1..=9).contains(&opts.level) {
        return Err(Error::Usage(format!(
            "--level {} is out of range: gzip levels are 1 (fastest) to 9 (smallest)",
            opts.level
        )));
    }
    if let Some(keep) = opts.keep {
        retention::validate_keep(keep).map_err(Error::Usage)?;
    }
    if let (Some(recipients), Some(test)) = (&opts.encrypt_to, &opts.restore_test)
        && test.identity.is_none()
    {
        return Err(Error::Identity(format!(
            "the restore test of a backup encrypted to {} decrypts it, and no identity was \
             given: {}; or leave out --restore-test here and restore-test where the key is",
            recipients.shown().join(", "),
            encrypt::IDENTITY_HINT
        )));
    }
    let engine = engine::open_source(&opts.source, opts.timeout)?;
    let format = opts.format.unwrap_or_else(|| engine.default_format());
    let stem = engine.stem();
    let store = LocalStore::open(&opts.out)?;
    let previous = previous_manifest(&store, &stem);
    let work = store.temp_dir()?;
    let created = OffsetDateTime::now_utc();

    let archive_tmp = work.path().join("archive.gz");
    let file = File::create(&archive_tmp)
        .map_err(|e| Error::output("create backup file", &archive_tmp, e))?;
    let sink = Sink::new(
        BufWriter::with_capacity(1 << 20, file),
        opts.encrypt_to.as_deref(),
    )
    .map_err(|e| Error::output("write backup file", &archive_tmp, e))?;
    let mut gz = GzipWriter::new(sink, opts.level);
    let Dumped {
        engine: engine_info,
        snapshot,
    } = {
        let bar = progress::bytes("dumping");
        let dumped = engine.dump(
            format,
            snapshot_check(opts),
            &mut bar.wrap_write(&mut gz),
            work.path(),
        );
        bar.finish_and_clear();
        dumped?
    };
    info!("dumped → {}", engine.display_source());
    info!(
        "verified: {} tables, {} rows",
        snapshot.tables.len(),
        snapshot.total_rows()
    );
    let (sink, summary) = gz
        .finish()
        .map_err(|e| Error::output("write backup file", &archive_tmp, e))?;
    let (buf, sealed) = sink
        .finish()
        .map_err(|e| Error::output("write backup file", &archive_tmp, e))?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::output("write backup file", &archive_tmp, e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::output("write backup file", &archive_tmp, e))?;
    drop(file);

    let Summary {
        raw_bytes,
        compressed_bytes,
        sha256,
    } = summary;
    let mut manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        tool: format!("dbbackup {}", env!("CARGO_PKG_VERSION")),
        engine: engine_info,
        created_at: created
            .format(&Rfc3339)
            .expect("UTC time formats as RFC 3339"),
        source: engine.display_source(),
        format,
        archive: String::new(),
        snapshot,
        raw_bytes,
        compressed_bytes,
        sha256,
    };
    let kind = (format.extension(engine.name()), sealed.is_some());
    let path = store.commit(&archive_tmp, &stem, &naming::stamp(created), kind, |name| {
        let mut m = manifest.clone();
        m.archive = name.to_string();
        match (&sealed, &opts.encrypt_to) {
            (Some(sealed), Some(recipients)) => Envelope::seal(&m, sealed, recipients),
            _ => Ok(m.to_json_pretty()),
        }
    })?;
    manifest.archive = file_name(&path);
    info!(
        "compressed → {} ({}, {:.1}x)",
        path.display(),
        human_bytes(compressed_bytes),
        raw_bytes as f64 / compressed_bytes.max(1) as f64
    );
    if let Some(recipients) = &opts.encrypt_to {
        info!("encrypted to {}", recipients.shown().join(", "));
    }
    drop(work);
    store.remove_orphan_manifests(&stem);

    let mut path = path;
    let restore_test = match &opts.restore_test {
        Some(verify_opts) => {
            let report = verify::restore_test(&path, verify_opts)?;
            for line in report.summary_lines() {
                info!("{line}");
            }
            Some(report)
        }
        None => None,
    };
    if restore_test
        .as_ref()
        .is_some_and(|r| r.verdict != Verdict::Passed)
    {
        path = store.set_aside(&path)?;
        return Ok(BackupOutcome {
            manifest_path: manifest::path_for(&path),
            path,
            manifest,
            pruned: Vec::new(),
            previous,
            restore_test,
            sealed,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let pruned = match opts.keep {
        Some(keep) => store::prune(&store, &stem, keep, Some(&manifest.archive), false)?.deleted,
        None => Vec::new(),
    };
    for old in &pruned {
        info!("pruned {}", old.name);
    }
    Ok(BackupOutcome {
        manifest_path: manifest::path_for(&path),
        path,
        manifest,
        pruned,
        previous,
        restore_test,
        sealed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The snapshot's check before it is written. With a restore test the full check runs on the
/// restored copy before anything is rotated away, so checking the snapshot fully as well would
/// only repeat it.
fn snapshot_check(opts: &BackupOptions) -> SnapshotCheck {
    if opts.quick || opts.restore_test.is_some() {
        SnapshotCheck::Quick
    } else {
        SnapshotCheck::Full
    }
}

fn previous_manifest(store: &LocalStore, stem: &str) -> Option<Manifest> {
    let newest = store.list(stem).ok()?.into_iter().next()?;
    Manifest::load(&manifest::path_for(&store.dir().join(newest.id))).ok()
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `90`, `90s`, `15m`, `2h`: a `--timeout` value.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let (number, unit) = match text.strip_suffix(['s', 'm', 'h']) {
        Some(n) => (n, &text[n.len()..]),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: write e.g. 90s, 15m or 2h"))?;
    let secs = match unit {
        "h" => n * 3600,
        "m" => n * 60,
        _ => n,
    };
    if secs == 0 {
        return Err("a timeout of 0 would stop every backup: give a positive duration".into());
    }
    Ok(Duration::from_secs(secs))
}

/// `148 KB`, `1.2 MB`: sizes as the log lines show them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// What `backup --upload` adds to a backup.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Base of the artifact name in place of the database's stem.
    pub artifact_name: Option<String>,
    pub retention_days: Option<u32>,
    /// REST access for pruning artifacts past `keep` (required when `keep` is set), and for
    /// the public-repository guard when the event payload does not tell.
    pub github: Option<GitHub>,
    /// Upload a plain backup even from a public repository (see [`guard`]).
    pub allow_public_plaintext: bool,
}

#[derive(Debug, Clone)]
pub struct UploadedBackup {
    pub backup: BackupOutcome,
    /// `None` when the backup failed its restore test: it was not uploaded.
    pub artifact: Option<Uploaded>,
    /// Artifacts of the same backup name deleted past the keep count.
    pub pruned_artifacts: Vec<StoredBackup>,
    /// The public-repository guard's line for the job summary (who can download a plain
    /// backup's artifact).
    pub notice: Option<String>,
}

/// A backup, then its upload, then (with `keep`) local rotation and artifact pruning. Nothing
/// is pruned, locally or remotely, unless the backup was verified and its upload finalized;
/// a failed upload leaves the new local backup in place.
pub fn run_and_upload(opts: &BackupOptions, upload: &UploadOptions) -> Result<UploadedBackup> {
    // Check the job's credentials, and that this backup may be uploaded at all, before
    // spending time on a backup that could not be uploaded.
    let runtime = Runtime::from_env()?;
    // A name GitHub would refuse is refused now, not after a backup made for nothing.
    if let Some(base) = &upload.artifact_name {
        artifacts::validate_name(base)?;
    }
    let notice = guard::check_upload(
        opts.encrypt_to.is_some(),
        upload.allow_public_plaintext,
        upload.github.as_ref(),
    )?;
    if let Some(keep) = opts.keep {
        retention::validate_keep(keep).map_err(Error::Usage)?;
    }
    let remote = match (opts.keep, &upload.github) {
        (Some(_), Some(gh)) => Some(ArtifactStore::connect(gh.clone())?),
        (Some(_), None) => {
            return Err(Error::Usage(
                "--keep with --upload prunes old artifacts, which needs a GitHub token".into(),
            ));
        }
        (None, _) => None,
    };
    let mut local = opts.clone();
    local.keep = None;
    let backup = run(&local)?;
    if !backup.verified() {
        return Ok(UploadedBackup {
            backup,
            artifact: None,
            pruned_artifacts: Vec::new(),
            notice,
        });
    }
    let (name, prefix) =
        artifacts::artifact_name(&backup.manifest.archive, upload.artifact_name.as_deref())?;
    let artifact = artifacts::upload_backup(&runtime, &backup.path, &name, upload.retention_days)?;
    info!("uploaded artifact {} (id {})", artifact.name, artifact.id);

    let (mut pruned, mut pruned_artifacts) = (Vec::new(), Vec::new());
    if let (Some(keep), Some(remote)) = (opts.keep, remote) {
        let local_store = LocalStore::open(&opts.out)?;
        let (_, stem) = artifacts::artifact_name(&backup.manifest.archive, None)?;
        pruned = store::prune(
            &local_store,
            &stem,
            keep,
            Some(&backup.manifest.archive),
            false,
        )?
        .deleted;
        let id = artifact.id.to_string();
        pruned_artifacts = store::prune(&remote, &prefix, keep, Some(&id), false)?.deleted;
    }
    for old in pruned.iter().chain(&pruned_artifacts) {
        info!("pruned {}", old.name);
    }
    Ok(UploadedBackup {
        backup: BackupOutcome { pruned, ..backup },
        artifact: Some(artifact),
        pruned_artifacts,
        notice,
    })
}
