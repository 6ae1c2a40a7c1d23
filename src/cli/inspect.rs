use std::path::PathBuf;

use dbbackup::archive::manifest;
use dbbackup::error::exit;
use dbbackup::verify;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A backup (.gz next to its .manifest.json), or a directory: its newest backup.
    backup: PathBuf,
    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let archive = verify::locate(&args.backup, false)?.remove(0);
    let manifest = verify::load_manifest(&archive)?;
    if args.json {
        super::print_json(&serde_json::json!({
            "path": archive,
            "manifest_path": manifest::path_for(&archive),
            "manifest": manifest,
        }));
    } else {
        print!("{}", verify::inspect_text(&archive, &manifest));
    }
    Ok(exit::OK)
}
