use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbbackup::archive::Format;
use dbbackup::archive::codec::{Codec, Compression};
use dbbackup::archive::encrypt::Recipients;
use dbbackup::backup::{self, BackupOptions, BackupOutcome};
use dbbackup::error::exit;
use dbbackup::restore_test;
use dbbackup::runner::{self, Runner};
use dbbackup::store::Store;
use dbbackup::store::artifacts::{ArtifactStore, Runtime, guard};
use dbbackup::util::parse_duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Databases to back up: a SQLite path or `sqlite:` URL, `postgres://USER@HOST:PORT/DB`
    /// (missing parts from PG* variables and ~/.pgpass), `mysql://USER@HOST:PORT/DB`. Several
    /// (with --out): each its own backup, restore test and rotation, one failing does not stop
    /// the others, one combined report; the exit code is the highest of any that failed.
    /// `backup SOURCE DIR` (one source, no --out) still names the directory.
    #[arg(value_name = "SOURCE", required = true)]
    pub sources: Vec<String>,
    /// Directory for backups.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// With several sources: back up this many at once (default one after another).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// Which backups of this database to keep in DIR (and, with --upload or --to, in those
    /// stores); without any, every backup is kept.
    #[command(flatten)]
    keep: super::keep::KeepArgs,
    /// native: the database file itself (SQLite's default); sql: a SQL text dump (PostgreSQL's
    /// default); custom: pg_dump -Fc, for pg_restore; directory: pg_dump -Fd (parallel with
    /// --jobs) stored as one `.tar.gz`, for pg_restore -j.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// With --format directory: dump with N parallel pg_dump workers (pg_dump -j N, one
    /// snapshot; N+1 connections to the source), and restore-test with pg_restore -j N.
    #[arg(long, value_name = "N")]
    jobs: Option<u32>,
    /// The compressor: gzip (`.gz`, for gunzip) or zstd (`.zst`, for `zstd -d`: faster to
    /// write and to restore).
    #[arg(long, value_enum, default_value_t = Codec::Gzip)]
    compression: Codec,
    /// The compressor's level: gzip 1 (fastest) to 9 (smallest), default 6; zstd 1 to 19,
    /// default 3.
    #[arg(long)]
    level: Option<u32>,
    /// Give up after this long (PostgreSQL: pg_dump and the snapshot queries): 90s, 15m, 2h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Restore-test the new backup (as `restore-test` does) before rotating anything away.
    #[arg(long)]
    restore_test: bool,
    /// PostgreSQL, MySQL: restore-test on this server (`postgres://USER@HOST:PORT`,
    /// `mysql://USER@HOST:PORT`; password from PGPASSWORD / MYSQL_PWD) instead of the source's,
    /// which needs no CREATEDB on production and puts no load on it; in GitHub Actions, a
    /// `services:` container of the job (implies --restore-test).
    #[arg(long, value_name = "URL")]
    restore_into: Option<String>,
    /// Write the restore test's JUnit XML report to FILE (implies --restore-test).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// The engine's quick integrity check (SQLite: quick_check, without the index lookups) on
    /// the snapshot, and with --restore-test on the restored copy too. Without --quick a
    /// backup checks fully once: the snapshot, or with --restore-test the restored copy.
    #[arg(long)]
    quick: bool,
    /// Keep a backup of a database that holds no tables; without it such a backup is refused
    /// (exit 5), since it would restore to nothing. It never rotates older backups away.
    #[arg(long)]
    allow_empty: bool,
    /// Fail the backup when it lost more than this percent of rows (a table, or all of them)
    /// or of its raw size against the previous backup of the same name; a vanished or
    /// emptied table always fails. The failed backup is set aside, nothing is rotated away.
    #[arg(long, value_name = "PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    max_shrink: u8,
    /// Accept a loss against the previous backup for this run (an intended cleanup); the
    /// losses are still reported.
    #[arg(long)]
    allow_shrink: bool,
    /// Compare with this manifest (a backup's `.manifest.json`, plain or encrypted) instead of
    /// the previous backup's.
    #[arg(long, value_name = "FILE")]
    compare_to: Option<PathBuf>,
    /// Print one JSON object describing the backup on stdout.
    #[arg(long)]
    json: bool,
    /// Upload the verified backup as a workflow artifact (inside a GitHub Actions job); with
    /// --keep (or a --keep-* period rule), also delete this backup's artifacts no rule keeps.
    #[arg(long)]
    upload: bool,
    /// Also store the verified backup (archive and manifest) in this object store, and with
    /// --keep / --keep-* prune it there too: `s3://BUCKET/PREFIX`, `az://CONTAINER/PREFIX` or
    /// `gs://BUCKET/PREFIX` (credentials from AWS_*, AZURE_STORAGE_* or GOOGLE_* variables).
    /// Repeatable; --json lists each destination under `stored`.
    #[arg(long, value_name = "URL")]
    to: Vec<String>,
    /// Artifact name base in place of the database name: artifacts are NAME-<stamp>.
    #[arg(long, value_name = "NAME", requires = "upload")]
    artifact_name: Option<String>,
    /// Days GitHub keeps the artifact (default: the repository's setting).
    #[arg(long, value_name = "D", requires = "upload")]
    retention_days: Option<u32>,
    /// Encrypt the backup and its manifest with age to this public key before it is written
    /// under its name or uploaded (`age1…` or an SSH public key; repeatable, or several
    /// separated by commas or newlines). The file becomes `….gz.age` (`….zst.age`).
    #[arg(long, value_name = "RECIPIENT", env = "DBBACKUP_RECIPIENTS")]
    encrypt_to: Vec<String>,
    /// With --upload: upload a plain (unencrypted) backup even from a public repository,
    /// where any signed-in GitHub user can download it.
    #[arg(long, requires = "upload")]
    allow_public_plaintext: bool,
    #[command(flatten)]
    identity: super::IdentityArgs,
    #[command(flatten)]
    pub notify: super::notify::NotifyArgs,
    #[command(flatten)]
    token: super::TokenArgs,
}

/// How one source's backup reports: alone (its step outputs, as always), or as one of several,
/// whose step outputs would overwrite each other: `passed` and `report-path` then cover all.
/// One of several also names the series the run's other sources took: two sources with one
/// database name would share a series in DIR, and the second's rotation would delete the
/// first's new backup.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Alone,
    OneOfMany(&'a dbbackup::backup::SeriesTaken),
}

/// One source's backup: the backup, when it got that far, and how the run ended.
struct Done {
    /// The source without its password.
    source: String,
    made: Option<BackupOutcome>,
    ended: anyhow::Result<u8>,
}

impl Done {
    fn exit_code(&self) -> u8 {
        self.ended
            .as_ref()
            .map_or_else(super::exit_code, |code| *code)
    }

    fn error(&self) -> Option<String> {
        self.ended.as_ref().err().map(|e| format!("{e:#}"))
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    // `backup SOURCE DIR`, as before several sources: the second one names the directory.
    let (sources, out) = match (&args.out, args.sources.as_slice()) {
        (Some(out), sources) => (sources, out.clone()),
        // A URL is a second database, never a directory: without --out it would be backed up
        // nowhere and a directory named after it (its password too) made.
        (None, [_, dir]) if dir.contains("://") => {
            return Err(dbbackup::Error::Usage(format!(
                "{} is a database, not a directory: to back up several databases, give the \
                 directory with --out DIR (dbbackup backup SOURCE... --out DIR)",
                dbbackup::engine::redact(dir)
            ))
            .into());
        }
        (None, [source, dir]) => (std::slice::from_ref(source), PathBuf::from(dir)),
        (None, _) => {
            return Err(dbbackup::Error::Usage(
                "give the backup directory: --out DIR (dbbackup backup SOURCE... --out DIR)".into(),
            )
            .into());
        }
    };
    match sources {
        [source] => {
            let done = back_up_reported(&args, source, &out, Part::Alone);
            if let Some(path) = &args.junit {
                write_junit(std::slice::from_ref(&done), path)?;
            }
            if args.json {
                super::print_json(&json_of(&args, &done));
            }
            done.ended
        }
        many => run_many(&args, many, &out),
    }
}

/// Several sources: each backed up as if alone (one after another, or `--parallel` at once),
/// then one table, one JUnit report, one JSON document and the highest exit code of any.
fn run_many(args: &Args, sources: &[String], out: &Path) -> anyhow::Result<u8> {
    let refuse = |what: &str| -> anyhow::Result<u8> {
        Err(dbbackup::Error::Usage(format!(
            "{what} names one backup: give it with one source, or leave it out with several"
        ))
        .into())
    };
    if args.compare_to.is_some() {
        return refuse("--compare-to");
    }
    if args.artifact_name.is_some() {
        return refuse("--artifact-name (each artifact is named after its database)");
    }
    let workers = usize::from(args.parallel).min(sources.len());
    if workers > 1 {
        dbbackup::progress::no_bars();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Done>>> =
        std::sync::Mutex::new(sources.iter().map(|_| None).collect());
    let taken = dbbackup::backup::SeriesTaken::default();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(source) = sources.get(i) else { break };
                    // Each log line names its database: with --parallel they interleave.
                    let span =
                        tracing::info_span!("backup", db = %dbbackup::engine::redact(source));
                    let done = span.in_scope(|| {
                        let done = back_up_reported(args, source, out, Part::OneOfMany(&taken));
                        if let Some(err) = done.error() {
                            tracing::error!("{err}");
                        }
                        done
                    });
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(done);
                }
            });
        }
    });
    let done: Vec<Done> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let reports: Vec<serde_json::Value> = done.iter().map(|d| json_of(args, d)).collect();
    let rows: Vec<_> = reports
        .iter()
        .flat_map(dbbackup::summary::from_json)
        .collect();
    let code = dbbackup::summary::exit_code(&rows);
    let runner = Runner::detect();
    runner.append_summary(&dbbackup::summary::markdown(&rows))?;
    runner.set_output("passed", &(code == exit::OK).to_string())?;
    if let Some(path) = &args.junit {
        write_junit(&done, path)?;
        runner.set_output("report-path", &path.display().to_string())?;
    }
    if args.json {
        super::print_json(&serde_json::json!({
            "exit_code": code,
            "passed": code == exit::OK,
            "backups": reports,
        }));
    }
    let failed: Vec<String> = done
        .iter()
        .filter(|d| d.ended.is_err())
        .map(|d| format!("{} (exit {})", d.source, d.exit_code()))
        .collect();
    tracing::info!(
        "{} of {} backups succeeded",
        done.len() - failed.len(),
        done.len()
    );
    // The highest exit code's error ends the run, said with every other that failed.
    let count = done.len();
    let worst = done
        .into_iter()
        .filter(|d| d.ended.is_err())
        .max_by_key(Done::exit_code);
    match worst.map(|d| d.ended) {
        Some(Err(err)) => Err(err.context(format!(
            "{} of {count} backups failed: {}; the others completed",
            failed.len(),
            failed.join(", ")
        ))),
        _ => Ok(exit::OK),
    }
}

/// [`back_up`], and when it fails the error in the job summary too: a refused or failed upload
/// leaves no step output to look at, only the log. A backup made and restore-tested before an
/// upload failed has its own sections above the error.
fn back_up_reported(args: &Args, source: &str, out: &Path, part: Part<'_>) -> Done {
    let mut made = None;
    let mut ended = back_up(args, source, out, part, &mut made);
    let shown = dbbackup::engine::redact(source);
    if let Err(err) = &ended {
        let causes: Vec<String> = err.chain().map(|e| e.to_string()).collect();
        let summary = runner::failure_summary(&format!("backup of `{shown}`"), &causes);
        if let Err(e) = append_summary(&summary) {
            ended = Err(e.into());
        }
    }
    Done {
        source: shown,
        made,
        ended,
    }
}

/// The job summary, one section at a time (see [`SUMMARY_TURN`]).
fn append_summary(markdown: &str) -> dbbackup::Result<()> {
    let _turn = SUMMARY_TURN.lock().unwrap_or_else(|e| e.into_inner());
    Runner::detect().append_summary(markdown)
}

/// The JUnit report of these backups: each made one's drift guard and restore test, each
/// failed one's error.
fn write_junit(done: &[Done], path: &Path) -> anyhow::Result<()> {
    use dbbackup::drift::junit::Entry;
    let errors: Vec<Option<String>> = done.iter().map(Done::error).collect();
    let entries: Vec<Entry<'_>> = done
        .iter()
        .zip(&errors)
        .map(|(d, error)| match (&d.made, error) {
            (Some(o), _) => Entry::Made {
                backup: &o.manifest.archive,
                manifest: &o.manifest,
                encrypted: o.sealed.is_some(),
                seconds: o.seconds,
                drift: &o.drift,
                tests: o.restore_test.as_slice(),
                failed: error.as_deref().map(|e| (e, d.exit_code())),
            },
            (None, error) => Entry::Failed {
                source: &d.source,
                error: error.as_deref().unwrap_or_default(),
                exit_code: d.exit_code(),
            },
        })
        .collect();
    Ok(dbbackup::drift::junit::write_file(&entries, path)?)
}

fn back_up(
    args: &Args,
    source: &str,
    out: &Path,
    part: Part<'_>,
    made_out: &mut Option<BackupOutcome>,
) -> anyhow::Result<u8> {
    let out = out.to_path_buf();
    let identity = args.identity.load()?;
    let opts = BackupOptions {
        source: source.to_string(),
        out,
        keep: args.keep.policy()?,
        format: args.format,
        compression: Compression::new(args.compression, args.level)?,
        timeout: args.timeout,
        jobs: args.jobs,
        restore_test: match args.restore_test || args.junit.is_some() || args.restore_into.is_some()
        {
            true => Some(restore_test::Options {
                quick: args.quick,
                identity: identity.clone(),
                // Else the source's server with the source's credentials: the manifest records
                // the source without its password, so the restore could not log in from it.
                restore_into: args
                    .restore_into
                    .clone()
                    .or_else(|| dbbackup::engine::restore_server(source)),
                jobs: args.jobs,
                ..restore_test::Options::default()
            }),
            false => None,
        },
        encrypt_to: Recipients::parse(&args.encrypt_to)?.map(Arc::new),
        quick: args.quick,
        allow_empty: args.allow_empty,
        drift: dbbackup::drift::Limit {
            max_shrink_percent: args.max_shrink,
            allow_shrink: args.allow_shrink,
        },
        compare_to: args.compare_to.clone(),
        identity,
        series_taken: match part {
            Part::Alone => None,
            Part::OneOfMany(taken) => Some(taken.clone()),
        },
    };
    // Every destination is checked (credentials, names, the public-repository guard) before
    // time is spent on a backup that could not be stored.
    let (artifacts, notice) = match args.upload {
        true => {
            let (store, notice) = artifact_store(args, &opts)?;
            (Some(store), notice)
        }
        false => (None, None),
    };
    if let Some(notice) = &notice {
        super::say_notice(&Runner::detect(), notice);
    }
    if let (Some(store), Some(keep)) = (&artifacts, &opts.keep) {
        super::keep::warn_expiry(&Runner::detect(), keep, store.kept_days())?;
    }
    let remotes = args
        .to
        .iter()
        .map(|url| dbbackup::store::open_remote(url))
        .collect::<dbbackup::Result<Vec<_>>>()?;
    let destinations: Vec<&dyn Store> = artifacts
        .iter()
        .map(|a| a as &dyn Store)
        .chain(remotes.iter().map(|r| r.as_ref()))
        .collect();
    let outcome = match backup::run_keeping(&opts, &destinations) {
        Ok(outcome) => outcome,
        Err(backup::Failed { error, made }) => {
            // Made and verified, then not stored (or not pruned): the summary shows the backup
            // and its restore test before the error `run` adds.
            if let Some(outcome) = made {
                report(args, &outcome, notice.as_ref(), part)?;
                *made_out = Some(*outcome);
            }
            return Err(failed(error, source, &opts.out, !destinations.is_empty()));
        }
    };
    report(args, &outcome, notice.as_ref(), part)?;
    let outcome = &*made_out.insert(outcome);
    let source = dbbackup::engine::redact(source);
    if let Some(err) = outcome.drift.failure(&source, &outcome.path) {
        return Err(anyhow::Error::new(err).context(format!(
            "backup of {source} failed; nothing was rotated away"
        )));
    }
    if let Some(report) = &outcome.restore_test
        && let Some(err) = restore_test::failure(
            std::slice::from_ref(report),
            &format!(
                "the new backup was set aside as {}, stored nowhere else, and nothing was \
                 rotated away",
                outcome.path.display()
            ),
        )
    {
        return Err(err.into());
    }
    Ok(exit::OK)
}

/// The artifact destination of `--upload`, and what the public-repository guard has to say.
fn artifact_store(
    args: &Args,
    opts: &BackupOptions,
) -> anyhow::Result<(ArtifactStore, Option<guard::Notice>)> {
    let runtime = Runtime::from_env()?;
    // Pruning needs the token; without --keep it only serves the public-repository guard.
    let github = match opts.keep {
        Some(_) => Some(args.token.clone().github().map_err(|_| {
            dbbackup::Error::Usage(
                "--keep with --upload prunes old artifacts, which needs a GitHub token".into(),
            )
        })?),
        None => args.token.clone().github().ok(),
    };
    let notice = guard::check_upload(
        opts.encrypt_to.is_some(),
        args.allow_public_plaintext,
        github.as_ref(),
    )?;
    let store = ArtifactStore::for_upload(
        runtime,
        github,
        args.artifact_name.clone(),
        args.retention_days,
    )?;
    Ok((store, notice))
}

/// The error of a failed backup, with what happened to the backups. Pruning is the last step,
/// so when it is what failed the new backup exists (and was stored) and some old ones may be
/// gone: saying "nothing was rotated away" then would be wrong.
fn failed(err: dbbackup::Error, source: &str, out: &Path, destinations: bool) -> anyhow::Error {
    let source = dbbackup::engine::redact(source);
    let context = match (&err, destinations) {
        (dbbackup::Error::Prune { .. }, _) => format!(
            "the backup of {source} succeeded (the new backup is in {}), but deleting old \
             backups that no --keep rule keeps failed",
            out.display()
        ),
        (_, false) => format!("backup of {source} failed; nothing was rotated away"),
        (_, true) => format!(
            "backup of {source} to its destinations failed; nothing was pruned anywhere (a \
             backup already written stays in {})",
            out.display()
        ),
    };
    anyhow::Error::new(err).context(context)
}

/// Sections of the job summary (one at a time: backups running at once would interleave them).
static SUMMARY_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// GitHub Actions outputs (of a backup alone) and its job-summary sections; its JUnit report
/// and JSON come once every source is done.
fn report(
    args: &Args,
    outcome: &BackupOutcome,
    notice: Option<&guard::Notice>,
    part: Part<'_>,
) -> anyhow::Result<()> {
    let _turn = SUMMARY_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let runner = match part {
        Part::Alone => Runner::detect(),
        Part::OneOfMany(_) => Runner::detect().without_outputs(),
    };
    let artifact = outcome.replicas.first().filter(|_| args.upload);
    // The backup first, then its restore test: the summary reads in the order things ran.
    report_to_runner(&runner, outcome, artifact.map(|r| &r.stored), notice)?;
    if outcome.drift.unchecked_previous() {
        runner.warning("drift not checked", &outcome.drift.line());
    }
    if let Some(report) = &outcome.restore_test {
        super::restore_test::report_to_runner(
            &runner,
            std::slice::from_ref(report),
            args.junit.as_deref(),
            false,
        )?;
    }
    Ok(())
}

/// What `--json` prints for one source: the backup as made (when it got that far), its source,
/// exit code and whether it passed, and the error when it did not.
fn json_of(args: &Args, done: &Done) -> serde_json::Value {
    let mut json = match &done.made {
        Some(outcome) => {
            let artifact = outcome.replicas.first().filter(|_| args.upload);
            let (file_bytes, file_sha256) = outcome.on_disk();
            serde_json::json!({
                "path": outcome.path,
                "manifest_path": outcome.manifest_path,
                "bytes": file_bytes,
                "sha256": file_sha256,
                "encrypted": outcome.sealed.is_some(),
                "seconds": outcome.seconds,
                "pruned": outcome.pruned.iter().map(|b| &b.name).collect::<Vec<_>>(),
                "restore_test": outcome.restore_test,
                "artifact": artifact.map(|a| serde_json::json!({
                    "id": a.stored.id.parse::<u64>().ok(), "name": a.stored.name, "size": a.stored.bytes,
                })),
                "pruned_artifacts": artifact.iter().flat_map(|a| &a.pruned).map(|b| &b.name).collect::<Vec<_>>(),
                "stored": outcome.replicas.iter().map(|r| serde_json::json!({
                    "store": r.store, "name": r.stored.name, "bytes": r.stored.bytes,
                    "pruned": r.pruned.iter().map(|b| &b.name).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "manifest": outcome.manifest,
                "drift": outcome.drift,
            })
        }
        None => serde_json::json!({}),
    };
    json["source"] = done.source.clone().into();
    json["exit_code"] = done.exit_code().into();
    json["passed"] = done.ended.is_ok().into();
    if let Some(error) = done.error() {
        json["error"] = error.into();
    }
    json
}

/// Step outputs and the job summary, when running in GitHub Actions.
fn report_to_runner(
    runner: &Runner,
    outcome: &BackupOutcome,
    artifact: Option<&dbbackup::store::StoredBackup>,
    notice: Option<&guard::Notice>,
) -> anyhow::Result<()> {
    let BackupOutcome {
        manifest: m,
        path,
        manifest_path,
        ..
    } = outcome;
    let (bytes, sha256) = outcome.on_disk();
    let mut outputs = vec![
        ("backup-path", path.display().to_string()),
        ("manifest-path", manifest_path.display().to_string()),
        ("backup-size", bytes.to_string()),
        ("sha256", sha256.to_string()),
        ("tables", m.snapshot.tables.len().to_string()),
        ("rows", m.snapshot.total_rows().to_string()),
    ];
    let artifact_url = artifact
        .and_then(|a| a.id.parse().ok())
        .and_then(runner::artifact_url);
    if let Some(artifact) = artifact {
        outputs.push(("artifact-id", artifact.id.clone()));
    }
    if let Some(url) = &artifact_url {
        outputs.push(("artifact-url", url.clone()));
    }
    for (name, value) in outputs {
        runner.set_output(name, &value)?;
    }
    // The summary is as readable as the artifact: an encrypted backup's shows no data.
    let mut summary = match &outcome.sealed {
        Some(_) => runner::encrypted_backup_summary(&m.archive, bytes, sha256, outcome.seconds),
        None => runner::backup_summary(m, outcome.seconds, outcome.previous.as_ref()),
    };
    summary.push('\n');
    summary.push_str(&outcome.drift.summary_markdown(outcome.sealed.is_none()));
    if let Some(notice) = notice {
        summary.push_str(&format!("\n{}\n", notice.line));
    }
    if let (Some(artifact), Some(url)) = (artifact, &artifact_url) {
        summary.push_str(&format!(
            "\nUploaded as artifact [{}]({url}).\n",
            artifact.name
        ));
    }
    Ok(runner.append_summary(&summary)?)
}
