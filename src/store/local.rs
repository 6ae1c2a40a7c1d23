//! Backups in a local directory: atomic commit of a new backup, listing, copying in and out,
//! deleting, and finding the backups a command line names.
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

use super::{LocalBackup, Store, StoredBackup};
use crate::archive::codec::Codec;
use crate::archive::{manifest, naming};
use crate::cleanup::TempDir;
use crate::engine;
use crate::error::{Error, Result};
use crate::util::{file_name, sync_dir};

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

    /// A directory that exists, as it is: nothing created, no leftover removed. For commands
    /// that only read (`check`), which must change nothing in the directory they look at.
    pub fn existing(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A private directory for one run's temporary files, on the same filesystem as the backups
    /// so the final rename is atomic. Its name carries our pid so other runs can tell whether
    /// it is still in use.
    /// It is removed on Ctrl-C and SIGTERM too.
    pub fn temp_dir(&self) -> Result<TempDir> {
        TempDir::new_in(&self.dir, TEMP_PREFIX)
    }

    /// Moves a finished archive to its final name (see the module docs), writing the manifest
    /// that `make_manifest` builds for the chosen file name. Returns the archive's final path.
    pub fn commit(
        &self,
        archive_tmp: &Path,
        stem: &str,
        stamp: &str,
        kind: naming::Kind<'_>,
        make_manifest: impl Fn(&str) -> Result<String>,
    ) -> Result<PathBuf> {
        let manifest_tmp = archive_tmp.with_extension("manifest.tmp");
        for seq in self.next_seq(stem, stamp)..10_000 {
            let name = naming::file_name(stem, stamp, seq, kind);
            let final_archive = self.dir.join(&name);
            // A plain and an encrypted backup of one second, or a gzip and a zstd one, would
            // share an artifact name.
            let taken = Codec::ALL.into_iter().any(|codec| {
                [false, true].into_iter().any(|encrypted| {
                    let other = naming::Kind {
                        codec,
                        encrypted,
                        ..kind
                    };
                    self.dir
                        .join(naming::file_name(stem, stamp, seq, other))
                        .exists()
                })
            });
            if taken {
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
        Err(Error::output(
            "name the new backup in",
            &self.dir,
            std::io::Error::other(format!(
                "no free name for {stem} at {stamp}: 10,000 backups of one second are there"
            )),
        ))
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

    /// The names of the databases `dir` holds backups of, sorted, without opening (or
    /// creating, or cleaning) it: what a command that only reads can offer when no `--name`
    /// was given, or the wrong one.
    pub fn names_in(dir: &Path) -> Result<Vec<String>> {
        let found = scan(dir, None).map_err(|e| Error::output("list", dir, e))?;
        let mut names: Vec<String> = found
            .into_iter()
            .filter_map(|(_, name)| naming::parse_any(&name).map(|(stem, _)| stem))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Temporary directories whose process is gone are leftovers of a crash or a kill.
    fn remove_stale_temp_dirs(&self) {
        crate::process::remove_abandoned_dirs(&self.dir, TEMP_PREFIX);
    }
}

/// The backups in `dir`, of the database `stem` or of every database (`None`), oldest first:
/// the one directory scanner behind listing, rotation and `restore-test DIR`. A file counts
/// only when its name parses as a backup and its extension is an engine's archive extension.
fn scan(dir: &Path, stem: Option<&str>) -> std::io::Result<Vec<(naming::BackupName, String)>> {
    let mut found: Vec<(naming::BackupName, String)> = fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let parsed = match stem {
                Some(stem) => naming::parse(&name, stem)?,
                None => naming::parse_any(&name)?.1,
            };
            engine::is_archive_extension(&parsed.ext).then_some((parsed, name))
        })
        // Only dbbackup's own: a file named like a backup without its manifest is someone
        // else's, which rotation and prune never delete and restore-test would not read.
        .filter(|(_, name)| manifest::path_for(&dir.join(name)).is_file())
        .collect();
    found.sort();
    Ok(found)
}

/// The backups a command-line BACKUP names: an archive (or its manifest) is itself; a directory
/// is its newest backup by file name order, or every one with `all`.
pub fn locate(path: &Path, all: bool) -> Result<Vec<PathBuf>> {
    // A killed backup's temporary directory (a plain copy of the database) goes with the next
    // command that reads the directory, not only the next backup into it.
    let dir = match path.is_dir() {
        true => path,
        false => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    };
    crate::process::remove_abandoned_dirs(dir, TEMP_PREFIX);
    if path.is_dir() {
        let mut found = scan(path, None)
            .map_err(|e| Error::unreadable(path, format!("cannot list the directory: {e}")))?;
        if found.is_empty() {
            return Err(Error::unreadable(
                path,
                "the directory holds no dbbackup backup (files named \
                 <db>-<yyyymmdd-HHMMSS>.<ext>.gz or .zst)",
            ));
        }
        if !all {
            found.drain(..found.len() - 1);
        }
        return Ok(found.into_iter().map(|(_, n)| path.join(n)).collect());
    }
    if !path.exists() {
        return Err(Error::unreadable(path, "no such file or directory"));
    }
    let shown = path.to_string_lossy();
    Ok(vec![match shown.strip_suffix(manifest::SUFFIX) {
        Some(archive) => PathBuf::from(archive),
        None => path.to_path_buf(),
    }])
}

/// Copies `from` to `to` through a temporary file in `to`'s directory, synced before it takes
/// its name, so `to` is either absent or complete.
fn copy_synced(from: &Path, to: &Path, work: &Path) -> Result<()> {
    let tmp = work.join(file_name(to));
    fs::copy(from, &tmp).map_err(|e| Error::output("copy a backup to", &tmp, e))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::output("sync", &tmp, e))?;
    fs::rename(&tmp, to).map_err(|e| Error::output("move a backup into place", to, e))
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    /// The backup keeps its file name: it was named in its series when it was made. Manifest
    /// first, archive last, as a commit: the archive's name appearing is the backup appearing.
    fn put(&self, backup: LocalBackup<'_>, series: &str) -> Result<StoredBackup> {
        let name = file_name(backup.archive);
        if naming::parse(&name, series).is_none() {
            return Err(Error::Usage(format!(
                "{name} is not named as a backup of {series} (<{series}>-<yyyymmdd-HHMMSS>.<ext>.gz or .zst)"
            )));
        }
        let target = self.dir.join(&name);
        if target.exists() {
            return Err(Error::Usage(format!(
                "{} already holds a backup named {name}",
                self.dir.display()
            )));
        }
        let work = self.temp_dir()?;
        let from_manifest = manifest::path_for(backup.archive);
        copy_synced(&from_manifest, &manifest::path_for(&target), work.path())?;
        copy_synced(backup.archive, &target, work.path())?;
        sync_dir(&self.dir)?;
        Ok(StoredBackup {
            id: name.clone(),
            name,
            bytes: fs::metadata(&target).ok().map(|m| m.len()),
        })
    }

    fn list(&self, stem: &str) -> Result<Vec<StoredBackup>> {
        let found = scan(&self.dir, Some(stem)).map_err(|e| Error::output("list", &self.dir, e))?;
        Ok(found
            .into_iter()
            .rev()
            .map(|(_, name)| StoredBackup {
                bytes: fs::metadata(self.dir.join(&name)).ok().map(|m| m.len()),
                id: name.clone(),
                name,
            })
            .collect())
    }

    /// A backup already in `into` is where it is; otherwise the archive and its manifest are
    /// copied there.
    fn fetch(&self, backup: &StoredBackup, into: &Path) -> Result<PathBuf> {
        let archive = self.dir.join(&backup.id);
        if !archive.is_file() {
            return Err(Error::unreadable(
                &archive,
                "no such backup in the directory",
            ));
        }
        fs::create_dir_all(into).map_err(|e| Error::output("create directory", into, e))?;
        let same = fs::canonicalize(into).ok() == fs::canonicalize(&self.dir).ok();
        if same {
            return Ok(archive);
        }
        let target = into.join(&backup.id);
        let work = TempDir::new_in(into, TEMP_PREFIX)?;
        copy_synced(
            &manifest::path_for(&archive),
            &manifest::path_for(&target),
            work.path(),
        )?;
        copy_synced(&archive, &target, work.path())?;
        Ok(target)
    }

    fn delete(&self, backup: &StoredBackup) -> Result<()> {
        let archive = self.dir.join(&backup.id);
        match fs::remove_file(&archive) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::output("delete old backup", &archive, e));
            }
            _ => {}
        }
        let manifest = manifest::path_for(&archive);
        match fs::remove_file(&manifest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::output("delete old manifest", &manifest, e))
            }
            _ => Ok(()),
        }
    }

    /// Bounded like [`crate::archive::Manifest::load`]: no manifest is larger.
    fn manifest_bytes(&self, backup: &StoredBackup) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let path = manifest::path_for(&self.dir.join(&backup.id));
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(manifest::MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| {
                Error::unreadable(&path, format!("manifest missing or unreadable: {e}"))
            })?;
        if bytes.len() as u64 > manifest::MAX_BYTES {
            return Err(Error::unreadable(
                &path,
                format!(
                    "larger than {} bytes, which no manifest is",
                    manifest::MAX_BYTES
                ),
            ));
        }
        Ok(Some(bytes))
    }
}

/// Writes a small file and makes it durable before anything refers to it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        crate::util::create_private(path).map_err(|e| Error::output("write", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::output("write", path, e))
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

    const SQLITE_GZ: naming::Kind<'static> = naming::Kind {
        ext: "sqlite",
        codec: Codec::Gzip,
        encrypted: false,
    };

    /// After rotation deleted the first backups of a second, the next one of that second must
    /// still sort as the newest, whichever codec the others were written with.
    #[test]
    fn a_new_backup_never_takes_a_freed_lower_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path()).unwrap();
        let stamp = "20261125-175300";
        for (seq, codec) in [(3, Codec::Gzip), (4, Codec::Zstd)] {
            let name = naming::file_name("app", stamp, seq, naming::Kind { codec, ..SQLITE_GZ });
            fs::write(tmp.path().join(&name), b"old").unwrap();
            fs::write(manifest::path_for(&tmp.path().join(&name)), b"{}").unwrap();
        }
        let archive = tmp.path().join("archive.tmp");
        fs::write(&archive, b"new").unwrap();
        let committed = store
            .commit(&archive, "app", stamp, SQLITE_GZ, |_| Ok("{}".into()))
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
            let archive = naming::file_name("app", stamp, 1, SQLITE_GZ);
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
