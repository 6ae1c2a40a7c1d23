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
    #[command(flatten)]
    identity: super::IdentityArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let archive = verify::locate(&args.backup, false)?.remove(0);
    let (manifest, envelope) = verify::load_manifest(&archive, args.identity.load()?.as_deref())?;
    if args.json {
        super::print_json(&serde_json::json!({
            "path": archive,
            "manifest_path": manifest::path_for(&archive),
            "manifest": manifest,
            "encryption": envelope.as_ref().map(|e| serde_json::json!({
                "scheme": e.encryption.scheme,
                "recipients": e.encryption.recipients,
                "bytes": e.encrypted_bytes,
                "sha256": e.encrypted_sha256,
            })),
        }));
    } else {
        print!(
            "{}",
            verify::inspect_text(&archive, &manifest, envelope.as_ref())
        );
    }
    Ok(exit::OK)
}
