use std::path::Path;

use dbbackup::archive::naming;
use dbbackup::error::exit;
use dbbackup::store::{self, DryRun, Store, local::LocalStore};

use super::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Backup name: the database's stem (or the --artifact-name used at upload).
    #[arg(long, value_name = "PREFIX")]
    name: String,
    /// Keep the newest N backups of that name, delete older ones.
    #[arg(long, value_name = "N")]
    keep: usize,
    /// Only print what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let pruned = match &args.target.dir {
        Some(url) if store::is_remote(&url.to_string_lossy()) => {
            prune(&*store::open_remote(&url.to_string_lossy())?, &args)?
        }
        Some(dir) => {
            // Opening would create it: a typo would prune nothing and say nothing.
            if !dir.is_dir() {
                return Err(dbbackup::Error::Usage(format!(
                    "{} {}: there is no backup directory there to prune",
                    dir.display(),
                    match dir.exists() {
                        true => "is not a directory",
                        false => "does not exist",
                    }
                ))
                .into());
            }
            let local = LocalStore::open(dir)?;
            let pruned = prune(&local, &args)?;
            if pruned.found == 0 {
                tracing::info!("{}", nothing_named(dir, &args.name));
            }
            // What a crashed backup left: its manifest without the archive.
            if !args.dry_run {
                local.remove_orphan_manifests(&args.name);
            }
            pruned
        }
        None => {
            let pruned = prune(&args.target.token.clone().store()?, &args)?;
            if pruned.found == 0 {
                tracing::info!("no artifacts named {}-*: nothing to prune", args.name);
            }
            pruned
        }
    };
    if pruned.found > 0 {
        tracing::info!(
            "found {} backup(s) named {}: keeping {}, {} {}",
            pruned.found,
            args.name,
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
    if args.json {
        let names: Vec<&str> = pruned.deleted.iter().map(|b| b.name.as_str()).collect();
        let none: [&str; 0] = [];
        super::print_json(&match args.dry_run {
            true => serde_json::json!({ "deleted": none, "would_delete": names }),
            false => serde_json::json!({ "deleted": names, "would_delete": none }),
        });
    }
    Ok(exit::OK)
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
fn prune(target: &dyn Store, args: &Args) -> dbbackup::Result<store::Pruned> {
    match args.dry_run {
        true => store::prune(&DryRun(target), &args.name, args.keep, None),
        false => store::prune(target, &args.name, args.keep, None),
    }
}
