//! The artifact's content: a zip of the backup and its manifest, as `actions/upload-artifact`
//! makes one (the official client zips the files with `archiver`, names relative to the root
//! directory), so that the zip GitHub serves on the run's page unpacks to the pair.
//!
//! Unpacking trusts nothing in the zip: entries whose path would leave the output directory
//! (`../`, absolute paths, drive prefixes) are refused, and so are symbolic links (a link
//! unpacked first and written through next escapes just the same) and archives that would unpack
//! to more than a bound, whatever their headers claim.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::{Error, Result};

/// Unpacked bytes allowed by default: far above any backup this tool is meant for, far below
/// a zip bomb's claims.
pub const DEFAULT_MAX_UNPACKED: u64 = 64 << 30;
const MAX_ENTRIES: usize = 10_000;

/// Zips `files` (flat, by file name) into `zip_path`. Backup archives (gzip or zstd, encrypted
/// or not) are stored as they are: deflating them again costs time and gains nothing.
pub fn pack(files: &[PathBuf], zip_path: &Path) -> Result<()> {
    let out = File::create(zip_path).map_err(|e| Error::output("create", zip_path, e))?;
    let mut zip = ZipWriter::new(io::BufWriter::new(out));
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Usage(format!("{}: not a file name", file.display())))?;
        let method = if crate::archive::naming::codec_named(name).is_some() {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(
                fs::metadata(file)
                    .map(|m| m.len() >= u32::MAX as u64)
                    .unwrap_or(false),
            );
        zip.start_file(name, options)
            .map_err(|e| zip_error(zip_path, e))?;
        let mut input =
            File::open(file).map_err(|e| Error::unreadable(file, format!("cannot read: {e}")))?;
        io::copy(&mut input, &mut zip).map_err(|e| Error::output("write", zip_path, e))?;
    }
    let mut buf = zip.finish().map_err(|e| zip_error(zip_path, e))?;
    buf.flush()
        .map_err(|e| Error::output("write", zip_path, e))?;
    Ok(())
}

/// Unpacks `zip` into `out`, refusing unsafe paths and more than `max_bytes` in total. Returns
/// the files written.
pub fn unpack<R: Read + Seek>(
    zip: R,
    origin: &str,
    out: &Path,
    max_bytes: u64,
) -> Result<Vec<PathBuf>> {
    let unreadable = |reason: String| Error::unreadable(origin, reason);
    let mut archive =
        ZipArchive::new(zip).map_err(|e| unreadable(format!("not a zip archive: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(unreadable(format!(
            "{} entries, more than the {MAX_ENTRIES} allowed",
            archive.len()
        )));
    }
    fs::create_dir_all(out).map_err(|e| Error::output("create output directory", out, e))?;
    let mut written = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| unreadable(format!("broken zip entry {i}: {e}")))?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        let Some(relative) = entry.enclosed_name().filter(|_| is_relative_inside(&name)) else {
            return Err(unreadable(format!(
                "entry {name:?} would be written outside the output directory; refusing the artifact"
            )));
        };
        if entry.is_symlink() {
            return Err(unreadable(format!(
                "entry {name:?} is a symbolic link, which no backup artifact holds; refusing the artifact"
            )));
        }
        let target = out.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&target).map_err(|e| Error::output("create", &target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::output("create", parent, e))?;
        }
        let allowed = max_bytes - total;
        // The declared size is only a claim (the copy below bounds what is really written), but
        // one past the bound is refused before anything of the entry is written.
        if entry.size() > allowed {
            return Err(unreadable(format!(
                "entry {name:?} declares {} bytes, more than the {max_bytes} bytes allowed; \
                 refusing it (a zip bomb or not a backup)",
                entry.size()
            )));
        }
        let mut file = crate::util::create_private(&target)
            .map_err(|e| Error::output("create", &target, e))?;
        let copied = io::copy(&mut (&mut entry).take(allowed + 1), &mut file)
            .map_err(|e| unreadable(format!("cannot unpack {}: {e}", target.display())))?;
        if copied > allowed {
            drop(file);
            let _ = fs::remove_file(&target);
            return Err(unreadable(format!(
                "unpacks to more than the {max_bytes} bytes allowed; refusing it (a zip bomb or not a backup)"
            )));
        }
        total += copied;
        file.sync_all()
            .map_err(|e| Error::output("write", &target, e))?;
        written.push(target);
    }
    Ok(written)
}

/// An entry name that stays inside the directory it is unpacked into: not absolute (`/x`,
/// `\\x`, `C:x`), no `..` component. The zip crate would quietly make some of these relative;
/// an artifact holding them was not made by dbbackup, so it is refused outright.
fn is_relative_inside(name: &str) -> bool {
    let absolute = name.starts_with(['/', '\\']) || name.get(1..2) == Some(":");
    !absolute && !name.split(['/', '\\']).any(|part| part == "..")
}

fn zip_error(path: &Path, err: zip::result::ZipError) -> Error {
    Error::output("write zip", path, io::Error::other(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_with(names: &[&str]) -> io::Cursor<Vec<u8>> {
        let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
        for name in names {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(b"hello").unwrap();
        }
        let mut cursor = zip.finish().unwrap();
        cursor.set_position(0);
        cursor
    }

    #[test]
    fn refuses_paths_that_escape() {
        for evil in [
            "../evil",
            "/etc/evil",
            "a/../../evil",
            "a\\..\\..\\evil",
            "C:evil",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("out");
            let err = unpack(zip_with(&["ok", evil]), "test.zip", &out, 1 << 20).unwrap_err();
            assert!(err.to_string().contains("outside"), "{evil}: {err}");
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn refuses_symbolic_links() {
        let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
        zip.add_symlink("link", "/etc", SimpleFileOptions::default())
            .unwrap();
        let mut cursor = zip.finish().unwrap();
        cursor.set_position(0);
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(cursor, "test.zip", dir.path(), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(dir.path().join("link")).is_err());
    }

    #[test]
    fn bounds_the_unpacked_size() {
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(zip_with(&["a", "b"]), "test.zip", dir.path(), 7).unwrap_err();
        assert!(
            err.to_string().contains("more than the 7 bytes allowed"),
            "{err}"
        );
        let files = unpack(zip_with(&["a", "b"]), "test.zip", dir.path(), 10).unwrap();
        assert_eq!(files.len(), 2);
    }
}
