//! Backups in a local directory: atomic commit of a new backup, listing and deleting.
//!
//! Commit protocol (a crash at any point leaves no partial file under a backup's name):
//! 1. the archive is written to a private temporary directory in DIR and fsynced;
//! 2. the manifest is written beside it, fsynced, and hard-linked to its final name: a hard
//!    link fails if the name exists, so two backups in the same second claim different names;
//! 3. the archive is renamed to its final name and DIR is fsynced. The archive's name appearing
//!    is the commit; a manifest without its archive is a leftover of a crash between 2 and 3 and
//!    is removed by the next run, as are temporary directories of processes that died.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Store, StoredBackup};
use crate::archive::{manifest, naming};
use crate::error::{Error, Result};

const TEMP_PREFIX: &str = ".dbbackup-tmp-";

pub struct LocalStore {
    dir: PathBuf,
}

/// Appended to a backup that failed its restore test (see [`LocalStore::set_aside`]).
const SET_ASIDE: &str = ".failed";

impl LocalStore {
    /// Opens DIR for backups, creating it if needed, and removes leftovers of crashed runs.
    pub fn open(dir: &Path) -> Result<Self> {
        if let Some(target) = dangling_symlink(dir) {
            return Err(Error::output(
                "use output directory",
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "it is a symbolic link to {}, which does not exist: create that \
                         directory or choose another --out",
                        target.display()
                    ),
                ),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| Error::output("create output directory", dir, e))?;
        let store = Self {
            dir: dir.to_path_buf(),
        };
        store.remove_stale_temp_dirs();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A private directory for one run's temporary files, on the same filesystem as the backups
    /// so the final rename is atomic. Its name carries our pid so other runs can tell whether
    /// it is still in use.
    pub fn temp_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .tempdir_in(&self.dir)
            .map_err(|e| Error::output("create a temporary directory in", &self.dir, e))
    }

    /// Moves a finished archive to its final name (see the module docs), writing the manifest
    /// that `make_manifest` builds for the chosen file name. Returns the archive's final path.
    pub fn commit(
        &self,
        archive_tmp: &Path,
        stem: &str,
        stamp: &str,
        (ext, encrypted): (&str, bool),
        make_manifest: impl Fn(&str) -> Result<String>,
    ) -> Result<PathBuf> {
        let manifest_tmp = archive_tmp.with_extension("manifest.tmp");
        for seq in self.next_seq(stem, stamp)..10_000 {
            let name = naming::file_name(stem, stamp, seq, ext, encrypted);
            let final_archive = self.dir.join(&name);
            // A plain and an encrypted backup of one second would share an artifact name.
            let other = naming::file_name(stem, stamp, seq, ext, !encrypted);
            if final_archive.exists() || self.dir.join(other).exists() {
                continue;
            }
            write_synced(&manifest_tmp, make_manifest(&name)?.as_bytes())?;
            let final_manifest = manifest::path_for(&final_archive);
            match fs::hard_link(&manifest_tmp, &final_manifest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::output("write manifest", &final_manifest, e)),
            }
            fs::rename(archive_tmp, &final_archive)
                .map_err(|e| Error::output("move backup into place", &final_archive, e))?;
            let _ = fs::remove_file(&manifest_tmp);
            sync_dir(&self.dir)?;
            return Ok(final_archive);
        }
        Err(Error::Internal(format!(
            "no free backup name for {stem} at {stamp} in {}",
            self.dir.display()
        )))
    }

    /// The first sequence number above every backup of `stem` in the same second, set-aside
    /// and orphaned ones included. Names order backups, so a free lower number (a backup of
    /// this second already rotated away) would make the new backup look like the oldest.
    fn next_seq(&self, stem: &str, stamp: &str) -> u32 {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 1;
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(manifest::SUFFIX).unwrap_or(&name);
                let name = name.strip_suffix(SET_ASIDE).unwrap_or(name);
                naming::parse(name, stem).filter(|b| b.stamp == stamp)
            })
            .map(|b| b.seq + 1)
            .max()
            .unwrap_or(1)
    }

    /// Renames a backup that failed its restore test to `<name>.failed` (and its manifest to
    /// `<name>.failed.manifest.json`): kept for inspection, but no longer a backup that
    /// rotation counts or a directory restore-test picks. Returns the new archive path.
    pub fn set_aside(&self, archive: &Path) -> Result<PathBuf> {
        let mut failed = archive.as_os_str().to_owned();
        failed.push(SET_ASIDE);
        let failed = PathBuf::from(failed);
        fs::rename(manifest::path_for(archive), manifest::path_for(&failed))
            .and_then(|()| fs::rename(archive, &failed))
            .map_err(|e| Error::output("set aside the failed backup", archive, e))?;
        sync_dir(&self.dir)?;
        Ok(failed)
    }

    /// Removes manifests whose archive never arrived (a crash between commit steps 2 and 3).
    ///
    /// A manifest still linked from a temporary directory belongs to a commit under way in
    /// another process (between linking the manifest and renaming the archive): it is left
    /// alone. A crashed commit's temporary directory is removed when its process is gone
    /// ([`Self::open`]), which leaves its manifest with the one link.
    pub fn remove_orphan_manifests(&self, stem: &str) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(archive) = name.strip_suffix(manifest::SUFFIX) else {
                continue;
            };
            if naming::parse(archive, stem).is_some()
                && !self.dir.join(archive).exists()
                && !linked_elsewhere(&entry.path())
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Temporary directories whose process is gone are leftovers of a crash or a kill.
    fn remove_stale_temp_dirs(&self) {
        crate::process::remove_abandoned_dirs(&self.dir, TEMP_PREFIX);
    }
}

impl Store for LocalStore {
    fn list(&self, stem: &str) -> Result<Vec<StoredBackup>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::output("list", &self.dir, e))?;
        let mut found: Vec<(naming::BackupName, String)> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                Some((naming::parse(&name, stem)?, name))
            })
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(found
            .into_iter()
            .map(|(_, name)| StoredBackup {
                id: name.clone(),
                name,
            })
            .collect())
    }

    fn delete(&self, backup: &StoredBackup) -> Result<()> {
        let archive = self.dir.join(&backup.id);
        fs::remove_file(&archive).map_err(|e| Error::output("delete old backup", &archive, e))?;
        let manifest = manifest::path_for(&archive);
        match fs::remove_file(&manifest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::output("delete old manifest", &manifest, e))
            }
            _ => Ok(()),
        }
    }
}

/// Writes a small file and makes it durable before anything refers to it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::File::create(path).map_err(|e| Error::output("write", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::output("write", path, e))
}

/// Makes renames in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::output("sync directory", dir, e))?;
    Ok(())
}

/// Where `path` points when it is a symbolic link to nothing. `create_dir_all` would only say
/// "File exists" about it.
fn dangling_symlink(path: &Path) -> Option<PathBuf> {
    let target = fs::read_link(path).ok()?;
    (!path.exists()).then_some(target)
}

/// Whether the file has another hard link (an unknown count counts as linked: keep it).
fn linked_elsewhere(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).map_or(true, |m| m.nlink() > 1)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After rotation deleted the first backups of a second, the next one of that second must
    /// still sort as the newest.
    #[test]
    fn a_new_backup_never_takes_a_freed_lower_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path()).unwrap();
        let stamp = "20261125-175300";
        for seq in [3, 4] {
            let name = naming::file_name("app", stamp, seq, "sqlite", false);
            fs::write(tmp.path().join(&name), b"old").unwrap();
            fs::write(manifest::path_for(&tmp.path().join(&name)), b"{}").unwrap();
        }
        let archive = tmp.path().join("archive.tmp");
        fs::write(&archive, b"new").unwrap();
        let committed = store
            .commit(&archive, "app", stamp, ("sqlite", false), |_| {
                Ok("{}".into())
            })
            .unwrap();
        assert_eq!(
            committed.file_name().unwrap(),
            "app-20261125-175300-5.sqlite.gz"
        );
    }

    /// An orphan manifest is removed only once no commit under way still links it.
    #[test]
    fn an_orphan_manifest_goes_unless_a_live_commit_links_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path()).unwrap();
        let orphan = |stamp: &str| {
            let archive = naming::file_name("app", stamp, 1, "sqlite", false);
            manifest::path_for(&tmp.path().join(archive))
        };
        let (crashed, committing) = (orphan("20261125-100000"), orphan("20261125-100001"));
        fs::write(&crashed, b"{}").unwrap();
        // A live process's commit: its temporary directory still holds the other link.
        let live = tmp
            .path()
            .join(format!("{TEMP_PREFIX}{}-x", std::process::id()));
        fs::create_dir(&live).unwrap();
        fs::write(live.join("a.manifest.tmp"), b"{}").unwrap();
        fs::hard_link(live.join("a.manifest.tmp"), &committing).unwrap();
        let unrelated = tmp.path().join("notes.manifest.json");
        fs::write(&unrelated, b"{}").unwrap();

        store.remove_orphan_manifests("app");
        assert!(!crashed.exists());
        assert!(committing.exists(), "a commit under way lost its manifest");
        assert!(unrelated.exists());
    }
}
