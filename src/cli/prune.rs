use std::path::Path;

use dbbackup::archive::naming;
use dbbackup::error::exit;
use dbbackup::retention::{Decision, Retention};
use dbbackup::runner::Runner;
use dbbackup::store::{self, DryRun, Store, StoredBackup, local::LocalStore};

use super::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Backup name: the database's stem (or the --artifact-name used at upload). A directory
    /// that holds backups of one database only may leave it out.
    #[arg(long, value_name = "PREFIX")]
    name: Option<String>,
    /// Which backups of that name to keep; the others are deleted. Give one at least.
    #[command(flatten)]
    keep: super::keep::KeepArgs,
    /// Delete nothing: list every backup with the rules that keep it, or `delete`.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let Some(keep) = args.keep.policy()? else {
        return Err(dbbackup::Error::Usage(
            "say which backups to keep: --keep N, and/or --keep-daily D, --keep-weekly W, \
             --keep-monthly M, --keep-yearly Y"
                .into(),
        )
        .into());
    };
    let Some(name) = name_to_prune(&args)? else {
        return Ok(exit::OK);
    };
    let pruned = match &args.target.dir {
        Some(url) if store::is_remote(&url.to_string_lossy()) => prune(
            &*store::open_remote(&url.to_string_lossy())?,
            &args,
            &name,
            &keep,
        )?,
        Some(dir) => {
            if !dir.is_dir() {
                return Err(no_backup_dir(dir).into());
            }
            let local = LocalStore::open(dir)?;
            let pruned = prune(&local, &args, &name, &keep)?;
            if pruned.found == 0 {
                tracing::info!("{}", nothing_named(dir, &name));
            }
            // What a crashed backup left: its manifest without the archive.
            if !args.dry_run {
                local.remove_orphan_manifests(&name);
            }
            pruned
        }
        None => {
            let artifacts = args.target.token.clone().store()?;
            super::keep::warn_expiry(&Runner::detect(), &keep, artifacts.kept_days())?;
            let pruned = prune(&artifacts, &args, &name, &keep)?;
            if pruned.found == 0 {
                tracing::info!("no artifacts named {name}-*: nothing to prune");
            }
            pruned
        }
    };
    if pruned.found > 0 {
        tracing::info!(
            "found {} backup(s) named {}: keeping {}, {} {}",
            pruned.found,
            name,
            pruned.found - pruned.deleted.len(),
            if args.dry_run {
                "would delete"
            } else {
                "deleting"
            },
            pruned.deleted.len()
        );
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for b in &pruned.deleted {
        tracing::info!("{verb} {} ({})", b.name, b.id);
    }
    let kept_by = |d: &Decision<StoredBackup>| -> Vec<&str> {
        d.kept_by.iter().map(|r| r.as_str()).collect()
    };
    if args.json {
        let names: Vec<&str> = pruned.deleted.iter().map(|b| b.name.as_str()).collect();
        let (deleted, would_delete) = match args.dry_run {
            true => (Vec::new(), names),
            false => (names, Vec::new()),
        };
        let backups: Vec<serde_json::Value> = pruned
            .decisions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.backup.name, "id": d.backup.id, "keep": d.keep(), "kept_by": kept_by(d),
                })
            })
            .collect();
        super::print_json(&serde_json::json!({
            "deleted": deleted, "would_delete": would_delete, "backups": backups,
        }));
    } else if args.dry_run {
        // Every backup with its verdict, so a policy can be tried before it deletes anything.
        for d in &pruned.decisions {
            match d.keep() {
                true => println!("keep    {}  ({})", d.backup.name, kept_by(d).join(", ")),
                false => println!("delete  {}", d.backup.name),
            }
        }
    }
    Ok(exit::OK)
}

/// Opening would create a missing directory: a typo would prune nothing and say nothing.
fn no_backup_dir(dir: &Path) -> dbbackup::Error {
    dbbackup::Error::Usage(format!(
        "{} {}: there is no backup directory there to prune",
        dir.display(),
        match dir.exists() {
            true => "is not a directory",
            false => "does not exist",
        }
    ))
}

/// What a directory holds when it holds no backup named `name`: the names it does hold.
fn nothing_named(dir: &Path, name: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| naming::parse_any(&e.file_name().to_string_lossy()).map(|(stem, _)| stem))
        .collect();
    names.sort();
    names.dedup();
    match names.is_empty() {
        true => format!("no backups in {}: nothing to prune", dir.display()),
        false => format!(
            "no backups named {name} in {} (it holds backups named {}): nothing to prune; \
             --name is the database's name, the part before -<timestamp>",
            dir.display(),
            names.join(", ")
        ),
    }
}

/// The one retention rule on `target`; a dry run prunes through [`DryRun`], which deletes
/// nothing.
fn prune(
    target: &dyn Store,
    args: &Args,
    name: &str,
    keep: &Retention,
) -> dbbackup::Result<store::Pruned> {
    match args.dry_run {
        true => store::prune(&DryRun(target), name, keep, None),
        false => store::prune(target, name, keep, None),
    }
}

/// The name to prune: `--name`, or, for a directory that holds backups of one database only,
/// that database's (the Action rotates its own directory so, after an upload it may not prune
/// by). `None`: the directory holds no backup, which is said, and there is nothing to do.
fn name_to_prune(args: &Args) -> dbbackup::Result<Option<String>> {
    if let Some(name) = &args.name {
        return Ok(Some(name.clone()));
    }
    let usage = |msg: String| Err(dbbackup::Error::Usage(msg));
    let dir = match &args.target.dir {
        None => return usage("prune --artifacts needs --name: the artifact name prefix".into()),
        Some(url) if store::is_remote(&url.to_string_lossy()) => {
            return usage(format!(
                "pruning {} needs --name: the database's name, the part before -<timestamp>",
                url.display()
            ));
        }
        Some(dir) if !dir.is_dir() => return Err(no_backup_dir(dir)),
        Some(dir) => dir,
    };
    match LocalStore::names_in(dir)?.as_slice() {
        [] => {
            tracing::info!("no backups in {}: nothing to prune", dir.display());
            Ok(None)
        }
        [one] => Ok(Some(one.clone())),
        several => usage(format!(
            "{} holds backups of several databases ({}): say which to prune with --name",
            dir.display(),
            several.join(", ")
        )),
    }
}
