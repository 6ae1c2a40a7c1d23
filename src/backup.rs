//! The backup pipeline, in order: dump a consistent snapshot and verify it (a source with no
//! tables is refused), compress (and encrypt, with `--encrypt-to`) while streaming, commit it
//! to the local directory atomically, compare it with the previous backup (the drift guard),
//! restore-test it, put it to each destination store, then prune the local directory and each
//! destination by the one retention rule.
//!
//! It is generic over engines (`crate::engine`) and stores (`crate::store`): nothing here
//! names a database or a destination. If any step fails nothing is pruned anywhere and the
//! error says which step; a backup that fails its restore test is set aside and goes nowhere.

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tracing::{debug, info, warn};

use crate::archive::codec::{Codec, Compression};
use crate::archive::compress::Summary;
use crate::archive::encrypt::{self, Envelope, Identity, Recipients, Sealed, Sink};
use crate::archive::manifest::{self, MANIFEST_VERSION, Manifest};
use crate::archive::{Format, naming};
use crate::drift;
use crate::engine::{self, Dumped, SnapshotCheck, SourceOptions};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::restore_test::{self, Report, Verdict};
use crate::retention::Retention;
use crate::store::{self, LocalBackup, Store, StoredBackup, local::LocalStore};
use crate::util::{file_name, human_bytes, rfc3339};

#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// A path, `sqlite:` URL or `postgres://` URL.
    pub source: String,
    pub out: PathBuf,
    /// Which backups of this database to keep in `out` and in each destination (the newest
    /// N, the newest of each recent day, week, ...); `None` keeps all.
    pub keep: Option<Retention>,
    /// `None` picks the engine's default.
    pub format: Option<Format>,
    /// The compressor and its level, checked against the codec's range
    /// ([`Compression::new`]).
    pub compression: Compression,
    /// Give up (PostgreSQL: stop pg_dump) after this long.
    pub timeout: Option<Duration>,
    /// Parallel dump workers, for `--format directory` only (PostgreSQL: `pg_dump -j`); the
    /// restore test restores with as many unless its options say otherwise.
    pub jobs: Option<u32>,
    /// Restore-test the new backup before anything old is rotated away. An encrypted backup
    /// needs the identity in these options.
    pub restore_test: Option<restore_test::Options>,
    /// Encrypt the backup (and its manifest) to these public keys before it gets its name.
    pub encrypt_to: Option<Arc<Recipients>>,
    /// Check the snapshot with the engine's quick check instead of its full one.
    pub quick: bool,
    /// Keep a backup of a database that holds no tables (it is refused otherwise). Even then it
    /// rotates nothing away.
    pub allow_empty: bool,
    /// How much the backup may shrink against the previous one, and whether this run accepts
    /// any loss (`--allow-shrink`).
    pub drift: drift::Limit,
    /// `--compare-to FILE`: the manifest (or an encrypted backup's envelope) to compare with,
    /// in place of the previous backup's.
    pub compare_to: Option<PathBuf>,
    /// Opens an encrypted previous manifest for the drift guard.
    pub identity: Option<Arc<Identity>>,
    /// With several sources in one run: the series (backup names) the others took. A second
    /// source of the same name is refused before it writes anything: in one DIR its rotation
    /// would delete the first's new backup.
    pub series_taken: Option<SeriesTaken>,
}

/// The series names one run's backups took, shared by its sources.
#[derive(Debug, Clone, Default)]
pub struct SeriesTaken(Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>);

impl SeriesTaken {
    /// Takes `series`; `false` when another source of the run took it first.
    fn take(&self, series: &str) -> bool {
        let mut taken = self.0.lock().unwrap_or_else(|e| e.into_inner());
        taken.insert(series.to_string())
    }
}

/// The new backup in one destination store, and what pruning deleted there.
#[derive(Debug, Clone)]
pub struct Replica {
    /// The destination, as [`Store::describe`] says it.
    pub store: String,
    pub stored: StoredBackup,
    pub pruned: Vec<StoredBackup>,
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub path: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
    /// Old backups deleted by rotation in the local directory.
    pub pruned: Vec<StoredBackup>,
    /// One per destination, in the order given; empty when the backup failed its restore test
    /// (it went nowhere).
    pub replicas: Vec<Replica>,
    /// The manifest of the newest backup before this one (or `--compare-to`'s), when there is
    /// one and it could be read: the job summary shows the change in row counts since then.
    pub previous: Option<Manifest>,
    /// What the drift guard found. When it failed the backup, the backup was set aside like
    /// one that failed its restore test, and nothing was stored or rotated.
    pub drift: drift::Report,
    /// The restore test of the new backup, when one was asked for. When it did not pass, the
    /// backup was set aside under `<name>.failed` (so it never counts as a backup), `path`
    /// names that file, and nothing was rotated: check [`BackupOutcome::verified`].
    pub restore_test: Option<Report>,
    /// The `.age` file's size and sha256 when the backup is encrypted (the manifest's sizes
    /// and sha256 are the compressed stream's inside it).
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

    /// False when the drift guard failed it, or the restore test ran and did not pass.
    pub fn verified(&self) -> bool {
        self.drift.passed
            && self
                .restore_test
                .as_ref()
                .is_none_or(|r| r.verdict == Verdict::Passed)
    }
}

/// A backup run that failed, with the backup it made when the failure came after it was made
/// and verified (a put to a destination, or pruning): the job summary still shows that backup
/// and its restore test beside the error.
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    /// The backup in `opts.out`, restore-tested when asked, with the destinations it reached
    /// before the failure in `replicas` and nothing in `pruned`.
    pub made: Option<Box<BackupOutcome>>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed { error, made: None }
    }
}

/// `--jobs` is a number of parallel dump workers, which only the directory format has: with
/// another format it would be silently ignored, so it is refused (as is 0) before anything runs.
fn check_jobs(jobs: Option<u32>, format: Option<Format>) -> Result<()> {
    match (jobs, format) {
        (None, _) => Ok(()),
        (Some(0), _) => Err(Error::Usage(
            "--jobs 0: give the number of parallel pg_dump workers, 1 or more".into(),
        )),
        (Some(_), Some(Format::Directory)) => Ok(()),
        (Some(_), other) => Err(Error::Usage(format!(
            "--jobs needs --format directory (pg_dump -Fd is the only parallel dump), not {}: \
             add --format directory or leave out --jobs",
            other.map_or("the default format".to_string(), |f| format!(
                "--format {f}"
            ))
        ))),
    }
}

/// Makes a backup in `opts.out`, then puts it to each of `destinations` and prunes everywhere
/// (see the module docs). A failed put leaves the backups already put where they are and
/// prunes nothing anywhere.
pub fn run(opts: &BackupOptions, destinations: &[&dyn Store]) -> Result<BackupOutcome> {
    run_keeping(opts, destinations).map_err(|failed| failed.error)
}

/// [`run`], keeping what was made when a later step fails (see [`Failed`]).
pub fn run_keeping(
    opts: &BackupOptions,
    destinations: &[&dyn Store],
) -> std::result::Result<BackupOutcome, Failed> {
    let started = Instant::now();
    // Built unchecked (the fields are public): checked here as at the command line.
    Compression::new(opts.compression.codec, Some(opts.compression.level))?;
    if let Some(keep) = opts.keep {
        keep.validate().map_err(Error::Usage)?;
    }
    if let (Some(recipients), Some(test)) = (&opts.encrypt_to, &opts.restore_test)
        && test.identity.is_none()
    {
        return Err(Failed::from(Error::Identity(format!(
            "the restore test of a backup encrypted to {} decrypts it, and no identity was \
             given: {}; or leave out --restore-test here and restore-test where the key is",
            recipients.shown().join(", "),
            encrypt::IDENTITY_HINT
        ))));
    }
    // `backup b app.db`: SOURCE and DIR swapped. Said before anything opens either.
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(Failed::from(Error::Usage(format!(
            "DIR {} is a file, not a directory: SOURCE comes first, then DIR \
             (dbbackup backup SOURCE --out DIR; several sources need --out: dbbackup backup \
             SOURCE SOURCE... --out DIR)",
            opts.out.display()
        ))));
    }
    check_jobs(opts.jobs, opts.format)?;
    // The directory format with gzip: pg_dump's workers compress each file, and the tar of
    // them is stored as it is (see `SourceOptions::dump_gzip_level`).
    let dump_gzip_level = (opts.format == Some(Format::Directory)
        && opts.compression.codec == Codec::Gzip)
        .then_some(opts.compression.level);
    let stored = match dump_gzip_level {
        Some(_) => Compression {
            codec: Codec::None,
            level: 0,
        },
        None => opts.compression,
    };
    let source = engine::open_source(
        &opts.source,
        &SourceOptions {
            timeout: opts.timeout,
            jobs: opts.jobs,
            dump_gzip_level,
        },
    )?;
    let format = engine::format_for(source.engine(), opts.format)?;
    let extension = engine::extension(source.engine(), format)?;
    let stem = source.stem();
    if let Some(taken) = &opts.series_taken
        && !taken.take(&stem)
    {
        return Err(Failed::from(Error::Usage(format!(
            "{}: another source of this run is also backed up as {stem}; in one directory \
             their backups would be one series and rotate each other away: back them up \
             with separate --out directories",
            source.display()
        ))));
    }
    let store = LocalStore::open(&opts.out)?;
    let found = previous_sidecar(opts, &store, &stem, destinations)?;
    let work = store.temp_dir()?;
    let created = OffsetDateTime::now_utc();

    let archive_tmp = work.path().join("archive");
    let file = crate::util::create_private(&archive_tmp)
        .map_err(|e| Error::output("create backup file", &archive_tmp, e))?;
    let sink = Sink::new(
        BufWriter::with_capacity(1 << 20, file),
        opts.encrypt_to.as_deref(),
    )
    .map_err(|e| Error::output("write backup file", &archive_tmp, e))?;
    let mut encoder = stored
        .encoder(sink)
        .map_err(|e| Error::output("write backup file", &archive_tmp, e))?;
    let Dumped {
        engine: engine_info,
        snapshot,
    } = {
        // Dump and compression are one stream: one bar, counting the dump's bytes.
        let progress = Progress::new("dumping and compressing");
        let dumped = source.dump(
            format,
            snapshot_check(opts),
            &mut progress.writer(&mut encoder),
            work.path(),
            &|total| progress.expect(total),
        )?;
        progress.finish();
        dumped
    };
    info!("dumped → {}", source.display());
    debug!(
        "dump, snapshot description and compression took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // A zero-byte file, a wrong path that SQLite opened as a new database, a database emptied
    // by mistake: a backup of it restores to nothing, and with --keep it would push the last
    // good backups out.
    if snapshot.tables.is_empty() && !opts.allow_empty {
        return Err(Failed::from(Error::Verify {
            object: source.display(),
            reason: "it holds no tables (an empty or zero-byte database?), so a backup of it \
                     would restore to nothing: nothing was written and nothing rotated away; \
                     if it is meant to be empty, pass --allow-empty"
                .into(),
        }));
    }
    info!(
        "verified: {} tables, {} rows",
        snapshot.tables.len(),
        snapshot.total_rows()
    );
    let (sink, summary) = encoder
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
        created_at: rfc3339(created),
        source: source.display(),
        format,
        compression: Some(stored),
        archive: String::new(),
        snapshot,
        raw_bytes,
        compressed_bytes,
        sha256,
    };
    let kind = naming::Kind {
        ext: extension,
        codec: stored.codec,
        encrypted: sealed.is_some(),
    };
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
    // The drift guard, before the restore test and anything else: a backup that lost data
    // against the previous one is set aside and takes no good backup's place.
    let (drift, previous) = compare(found, &manifest, opts);
    match drift.unchecked_previous() {
        true => warn!("{}", drift.line()),
        false => info!("{}", drift.line()),
    }
    // A backup the guard failed is not restore-tested: it is set aside below all the same.
    let restore_test = match &opts.restore_test {
        Some(test_opts) if drift.passed => {
            let report = restore_test::restore_test(&path, test_opts)?;
            for line in report.summary_lines() {
                info!("{line}");
            }
            Some(report)
        }
        _ => None,
    };
    // Nothing is set aside, stored or pruned on the word of a step an interrupt cut short.
    crate::cleanup::checkpoint();
    if !drift.passed
        || restore_test
            .as_ref()
            .is_some_and(|r| r.verdict != Verdict::Passed)
    {
        path = store.set_aside(&path)?;
        return Ok(BackupOutcome {
            manifest_path: manifest::path_for(&path),
            path,
            manifest,
            pruned: Vec::new(),
            replicas: Vec::new(),
            previous,
            drift,
            restore_test,
            sealed,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    // What was made, for the job summary when a later step fails.
    let made = |replicas: &[(StoredBackup, String)], destinations: &[&dyn Store]| {
        Some(Box::new(BackupOutcome {
            manifest_path: manifest::path_for(&path),
            path: path.clone(),
            manifest: manifest.clone(),
            pruned: Vec::new(),
            replicas: (destinations.iter().zip(replicas))
                .map(|(d, (put, _))| Replica {
                    store: d.describe(),
                    stored: put.clone(),
                    pruned: Vec::new(),
                })
                .collect(),
            previous: previous.clone(),
            drift: drift.clone(),
            restore_test: restore_test.clone(),
            sealed: sealed.clone(),
            seconds: started.elapsed().as_secs_f64(),
        }))
    };
    // Every destination holds the new backup before anything old is deleted anywhere.
    let mut stored = Vec::new();
    for destination in destinations {
        let series = destination.series(&stem);
        let put = match destination.put(LocalBackup { archive: &path }, &series) {
            Ok(put) => put,
            Err(e) => {
                return Err(Failed {
                    error: Error::Replicate {
                        store: destination.describe(),
                        stored: stored.len(),
                        cause: Box::new(e),
                    },
                    made: made(&stored, destinations),
                });
            }
        };
        info!("stored {} in {}", put.name, destination.describe());
        stored.push((put, series));
    }

    crate::cleanup::checkpoint();
    let mut pruned = Vec::new();
    let mut replicas = Vec::new();
    // A backup of nothing (kept with --allow-empty) never takes a real backup's place.
    let keep = opts.keep.filter(|_| !manifest.snapshot.tables.is_empty());
    if opts.keep.is_some() && keep.is_none() {
        info!("the new backup holds no tables: nothing is rotated away");
    }
    let made = made(&stored, destinations);
    let failed = |error: Error| Failed {
        error,
        made: made.clone(),
    };
    if let Some(keep) = keep {
        pruned = store::prune(&store, &stem, &keep, Some(&manifest.archive))
            .map_err(failed)?
            .deleted;
        for old in &pruned {
            info!("pruned {}", old.name);
        }
    }
    for (destination, (put, series)) in destinations.iter().zip(stored) {
        let deleted = match keep {
            Some(keep) => {
                store::prune(*destination, &series, &keep, Some(&put.id))
                    .map_err(failed)?
                    .deleted
            }
            None => Vec::new(),
        };
        for old in &deleted {
            info!("pruned {} from {}", old.name, destination.describe());
        }
        replicas.push(Replica {
            store: destination.describe(),
            stored: put,
            pruned: deleted,
        });
    }
    Ok(BackupOutcome {
        manifest_path: manifest::path_for(&path),
        path,
        manifest,
        pruned,
        replicas,
        previous,
        drift,
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

/// The previous backup's sidecar, as found: its name and bytes, or why there is none to read.
enum Found {
    Sidecar {
        name: String,
        bytes: Vec<u8>,
    },
    /// Nothing to compare with (`None`), or a previous backup that could not be read (its name).
    Nothing {
        name: Option<String>,
        reason: String,
    },
}

/// Where the drift guard's previous manifest comes from: `--compare-to`, else the newest backup
/// of this name in the local directory, else the newest in the first destination that can read
/// a manifest without fetching the backup (a job whose directory is new: a GitHub runner). A
/// `--compare-to` that cannot be read is an error (it was asked for); anything else that fails
/// only means the guard did not check, and says so.
fn previous_sidecar(
    opts: &BackupOptions,
    store: &LocalStore,
    stem: &str,
    destinations: &[&dyn Store],
) -> Result<Found> {
    if let Some(file) = &opts.compare_to {
        // Bounded like any manifest: a wrong file (a backup, a disk image) is not read whole.
        let too_big = std::fs::metadata(file).is_ok_and(|m| m.len() > manifest::MAX_BYTES);
        if too_big {
            return Err(Error::Usage(format!(
                "--compare-to {}: larger than any manifest; give the .manifest.json of the \
                 backup to compare with, not the backup",
                file.display()
            )));
        }
        let bytes = std::fs::read(file).map_err(|e| {
            Error::Usage(format!(
                "--compare-to {}: cannot read it ({e}); give the .manifest.json of the backup \
                 to compare with",
                file.display()
            ))
        })?;
        return Ok(Found::Sidecar {
            name: file.display().to_string(),
            bytes,
        });
    }
    let candidates = std::iter::once(store as &dyn Store).chain(destinations.iter().copied());
    for (n, candidate) in candidates.enumerate() {
        let newest = match candidate.list(&candidate.series(stem)) {
            Ok(list) => list.into_iter().next(),
            Err(e) => {
                return Ok(Found::Nothing {
                    name: Some(format!("in {}", candidate.describe())),
                    reason: format!(
                        "the previous backup in {} could not be listed: {e}",
                        candidate.describe()
                    ),
                });
            }
        };
        let Some(newest) = newest else { continue };
        let shown = match n {
            0 => newest.name.clone(),
            _ => format!("{} in {}", newest.name, candidate.describe()),
        };
        match candidate.manifest_bytes(&newest) {
            Ok(Some(bytes)) => return Ok(Found::Sidecar { name: shown, bytes }),
            Ok(None) => continue,
            Err(e) => {
                return Ok(Found::Nothing {
                    name: Some(shown),
                    reason: format!("the previous backup's manifest could not be read: {e}"),
                });
            }
        }
    }
    Ok(Found::Nothing {
        name: None,
        reason: format!("no previous backup of {stem} to compare with"),
    })
}

/// The drift guard's report, and the previous manifest when it could be read.
fn compare(
    found: Found,
    new: &Manifest,
    opts: &BackupOptions,
) -> (drift::Report, Option<Manifest>) {
    let (name, bytes) = match found {
        Found::Sidecar { name, bytes } => (name, bytes),
        Found::Nothing { name, reason } => {
            return (drift::Report::not_checked(name, reason, opts.drift), None);
        }
    };
    match drift::open_previous(&bytes, &name, opts.identity.as_deref()) {
        Ok(previous) => {
            let report = drift::Report::compare(&previous, new, &name, opts.drift);
            (report, Some(previous))
        }
        Err(reason) => (
            drift::Report::not_checked(Some(name), reason, opts.drift),
            None,
        ),
    }
}
