//! `--format directory`: the directory `pg_dump -Fd` writes, stored as one tar.
//!
//! The tar holds one top directory with the dump's flat files in it (`toc.dat` first, then one
//! `NNNN.dat` per table, as `pg_dump` names them), so that `tar -xf` makes a directory that
//! `pg_restore -j N` reads as it is. `pg_dump` writes the files uncompressed (`--compress=0`):
//! the archive's codec compresses the tar stream once, as it does the custom format's stream,
//! and `--compression zstd` applies here too (BENCHMARKS.md, "PostgreSQL directory format",
//! measured both ways).
//!
//! The headers are deterministic (no owner, fixed mode and time): only the dump's content
//! decides the archive's bytes.
//!
//! Unpacking is strict, since a backup may come from anywhere: only regular files directly
//! under the one top directory are taken; a link, a device, a path with `..` or a second
//! level is refused before anything is written there.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The tar's top directory: `pg_restore` is pointed at it once unpacked. The name is fixed so
/// that a restore knows where to look whatever the database was called.
pub(super) const TOP: &str = "dump";

/// Writes `dir` (flat, as `pg_dump -Fd` leaves it) to `out` as a tar of [`TOP`]/…, `toc.dat`
/// first and the rest by name.
pub(super) fn pack(dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::other(format!(
                "pg_dump left {} in its directory, which is not a regular file",
                entry.path().display()
            )));
        }
        names.push(entry.file_name());
    }
    names.sort_by_key(|n| (n.as_os_str() != "toc.dat", n.clone()));
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let mut top = tar::Header::new_ustar();
    top.set_entry_type(tar::EntryType::Directory);
    top.set_mode(0o700);
    top.set_mtime(0);
    top.set_size(0);
    tar.append_data(&mut top, format!("{TOP}/"), io::empty())?;
    for name in names {
        let path = dir.join(&name);
        let mut file = File::open(&path)?;
        tar.append_file(Path::new(TOP).join(&name), &mut file)?;
    }
    tar.into_inner()?.flush()
}

/// Unpacks a tar written by [`pack`] from `dump` into `into` (an empty directory), and returns
/// the directory to give `pg_restore`. Reading errors are the backup's (unreadable); a tar of
/// another shape is refused as a failed restore.
pub(super) fn unpack(dump: &mut dyn Read, into: &Path) -> Result<PathBuf> {
    let top = into.join(TOP);
    std::fs::create_dir(&top).map_err(|e| Error::output("unpack the dump into", &top, e))?;
    let mut tar = tar::Archive::new(dump);
    let mut files = 0usize;
    for entry in tar.entries().map_err(super::read_error)? {
        let mut entry = entry.map_err(super::read_error)?;
        let path = entry.path().map_err(super::read_error)?.into_owned();
        let kind = entry.header().entry_type();
        let name = match file_name_under_top(&path) {
            Some(None) if kind.is_dir() => continue,
            Some(Some(name)) if kind.is_file() => name,
            _ => {
                return Err(refused(format!(
                    "the tar holds '{}' ({kind:?}), not a file directly under {TOP}/ as \
                     dbbackup writes",
                    path.display()
                )));
            }
        };
        let dest = top.join(name);
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => {
                    refused(format!("the tar holds {TOP}/{name} twice"))
                }
                _ => Error::output("unpack the dump into", &dest, e),
            })?;
        match crate::util::copy_telling_sides(&mut entry, &mut file) {
            Ok(_) => files += 1,
            Err(crate::util::CopyError::Read(e)) => return Err(super::read_error(e)),
            Err(crate::util::CopyError::Write(e)) => {
                return Err(Error::output("unpack the dump into", &dest, e));
            }
        }
    }
    if files == 0 || !top.join("toc.dat").is_file() {
        return Err(refused(format!(
            "the tar holds no {TOP}/toc.dat: it is not a pg_dump directory"
        )));
    }
    Ok(top)
}

/// For `dump/` `Some(None)`, for `dump/NAME` `Some(Some(NAME))`; `None` for any other path.
fn file_name_under_top(path: &Path) -> Option<Option<&str>> {
    let mut parts = path.components();
    match parts.next() {
        Some(Component::Normal(top)) if top == TOP => {}
        _ => return None,
    }
    let name = match parts.next() {
        None => return Some(None),
        Some(Component::Normal(name)) => name.to_str()?,
        Some(_) => return None,
    };
    parts.next().is_none().then_some(Some(name))
}

fn refused(reason: String) -> Error {
    super::restore_error("the unpacked dump", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_flat_and_unpacks_only_that_shape() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("3001.dat"), b"1\t2\n\\.\n").unwrap();
        std::fs::write(src.join("toc.dat"), b"PGDMP").unwrap();
        let mut tar = Vec::new();
        pack(&src, &mut tar).unwrap();
        let mut again = Vec::new();
        pack(&src, &mut again).unwrap();
        assert_eq!(tar, again, "deterministic");
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["dump/", "dump/toc.dat", "dump/3001.dat"]);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let top = unpack(&mut &tar[..], &out).unwrap();
        assert_eq!(std::fs::read(top.join("3001.dat")).unwrap(), b"1\t2\n\\.\n");

        for bad in ["dump/x/toc.dat", "other/toc.dat", "toc.dat"] {
            let mut tar = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o600);
            tar.append_data(&mut header, bad, &b"x"[..]).unwrap();
            let tar = tar.into_inner().unwrap();
            let out = tempfile::tempdir().unwrap();
            let err = unpack(&mut &tar[..], out.path()).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert_eq!(file_name_under_top(Path::new("dump/../x")), None);
    }
}
