//! Where backups are kept, behind one trait: the local directory, GitHub workflow artifacts,
//! and any destination added later. A store is one module here implementing [`Store`], and
//! passes the one conformance suite every store runs (`tests/it/store_conformance.rs`).
//!
//! The backup pipeline (`crate::backup`) writes a backup into the local directory first, then
//! [`Store::put`]s it to each destination and [`prune`]s each by the same rule; restoring from a
//! destination is [`Store::fetch`] into a local directory, then the restore test.

pub mod artifacts;
pub mod azure;
pub mod bucket;
pub mod gcs;
pub mod local;
pub mod s3;

use std::path::{Path, PathBuf};

use crate::archive::naming;
use crate::error::{Error, Result};
use crate::retention::{Decision, Reason, Retention};

/// A backup as a store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// What identifies it in the store (a file name, an artifact id).
    pub id: String,
    /// Its name as a user sees it.
    pub name: String,
    /// Its size in the store, when the store tells.
    pub bytes: Option<u64>,
}

/// A backup on local disk, ready to be put to a store: the archive with its manifest beside it
/// (`<archive>.manifest.json`).
#[derive(Debug, Clone, Copy)]
pub struct LocalBackup<'a> {
    pub archive: &'a Path,
}

pub trait Store {
    /// What this store is, for logs and errors: `directory backups/`, `GitHub artifacts of
    /// owner/repo`. Never a secret.
    fn describe(&self) -> String;

    /// The name under which this store keeps the series of the database called `stem` (the
    /// local directory keeps its stem; artifacts may be renamed with `--artifact-name`).
    fn series(&self, stem: &str) -> String {
        stem.to_string()
    }

    /// Stores a backup (its archive and manifest, streamed) in the series `series`. When it
    /// returns, the backup is complete in the store and listed; a failure leaves nothing under
    /// the backup's name.
    fn put(&self, backup: LocalBackup<'_>, series: &str) -> Result<StoredBackup>;

    /// Every backup of `series`, newest first; nothing of any other name.
    fn list(&self, series: &str) -> Result<Vec<StoredBackup>>;

    /// Copies a backup into the local directory `into`, ready for `restore-test`; returns the
    /// archive's path there (its manifest beside it).
    fn fetch(&self, backup: &StoredBackup, into: &Path) -> Result<PathBuf>;

    /// Deletes one backup (with everything that belongs to it). Deleting one that is already
    /// gone succeeds: the goal holds.
    fn delete(&self, backup: &StoredBackup) -> Result<()>;

    /// The sidecar of one backup (its manifest, or an encrypted backup's envelope), read without
    /// fetching the backup itself: what the drift guard compares a new backup with. `Ok(None)`
    /// when this store cannot read it on its own, without the archive (the default).
    fn manifest_bytes(&self, _backup: &StoredBackup) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// The URL schemes of remote destinations (`--to`, `prune URL`).
pub const REMOTE_SCHEMES: [&str; 4] = [
    s3::SCHEME,
    azure::SCHEMES[0],
    azure::SCHEMES[1],
    gcs::SCHEME,
];

/// Whether `target` names a remote store (`SCHEME://...`) rather than a local directory.
pub fn is_remote(target: &str) -> bool {
    target.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
    })
}

/// Opens the remote store `url` names, checking that it can be reached with the credentials
/// the environment gives (so a misconfigured destination fails before any backup is made).
pub fn open_remote(url: &str) -> Result<Box<dyn Store>> {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    match scheme {
        s3::SCHEME => Ok(Box::new(s3::open(url)?)),
        gcs::SCHEME => Ok(Box::new(gcs::open(url)?)),
        s if azure::SCHEMES.contains(&s) => Ok(Box::new(azure::open(url)?)),
        _ => Err(Error::Usage(format!(
            "unsupported destination `{scheme}://…` (the URL is not shown: it may hold a \
             secret); supported: {}",
            "s3://BUCKET/PREFIX, az://CONTAINER/PREFIX (or azure://), gs://BUCKET/PREFIX"
        ))),
    }
}

/// What a prune found and deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// How many backups of the series the store held before the prune.
    pub found: usize,
    pub deleted: Vec<StoredBackup>,
    /// Every backup found, newest first, with the rules that keep it (none: deleted), for a
    /// dry run to show and `--json` to carry.
    pub decisions: Vec<Decision<StoredBackup>>,
}

/// A store that lists as the one it wraps and deletes nothing: a prune through it says what it
/// would delete. Behaviour by wrapping, so no store and no prune carries a dry-run flag.
pub struct DryRun<'a>(pub &'a dyn Store);

impl Store for DryRun<'_> {
    fn describe(&self) -> String {
        format!("{} (dry run)", self.0.describe())
    }

    fn series(&self, stem: &str) -> String {
        self.0.series(stem)
    }

    fn put(&self, _backup: LocalBackup<'_>, _series: &str) -> Result<StoredBackup> {
        Err(Error::Internal("a dry run stores nothing".into()))
    }

    fn list(&self, series: &str) -> Result<Vec<StoredBackup>> {
        self.0.list(series)
    }

    fn fetch(&self, backup: &StoredBackup, into: &Path) -> Result<PathBuf> {
        self.0.fetch(backup, into)
    }

    fn delete(&self, _backup: &StoredBackup) -> Result<()> {
        Ok(())
    }

    fn manifest_bytes(&self, backup: &StoredBackup) -> Result<Option<Vec<u8>>> {
        self.0.manifest_bytes(backup)
    }
}

/// Deletes the backups of `series` that no rule of `retention` keeps, never `protect` (the id of
/// the one just made). A failed delete does not stop the others; the error then names every one
/// that failed.
pub fn prune(
    store: &dyn Store,
    series: &str,
    retention: &Retention,
    protect: Option<&str>,
) -> Result<Pruned> {
    let retention = retention.validate().map_err(Error::Usage)?;
    let listed = store.list(series)?;
    let found = listed.len();
    let mut decisions = retention.decide(listed, |b| naming::made_at(&b.name, series));
    for decision in &mut decisions {
        if !decision.keep() && Some(decision.backup.id.as_str()) == protect {
            decision.kept_by.push(Reason::New);
        }
    }
    let doomed: Vec<StoredBackup> = decisions
        .iter()
        .filter(|d| !d.keep())
        .map(|d| d.backup.clone())
        .collect();
    let mut pruned = Pruned {
        found,
        decisions,
        ..Pruned::default()
    };
    let mut failed = Vec::new();
    for backup in doomed {
        match store.delete(&backup) {
            Ok(()) => pruned.deleted.push(backup),
            Err(e) => failed.push((backup.name, e)),
        }
    }
    if failed.is_empty() {
        Ok(pruned)
    } else {
        Err(Error::Prune {
            deleted: pruned.deleted.len(),
            failed,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A store of names only, newest first: what `prune` needs to decide and delete.
    struct Names(RefCell<Vec<StoredBackup>>);

    impl Names {
        fn new(names: &[&str]) -> Self {
            Names(RefCell::new(
                names
                    .iter()
                    .map(|n| StoredBackup {
                        id: n.to_string(),
                        name: n.to_string(),
                        bytes: None,
                    })
                    .collect(),
            ))
        }
    }

    impl Store for Names {
        fn describe(&self) -> String {
            "names".into()
        }
        fn put(&self, _: LocalBackup<'_>, _: &str) -> Result<StoredBackup> {
            unreachable!()
        }
        fn list(&self, _: &str) -> Result<Vec<StoredBackup>> {
            Ok(self.0.borrow().clone())
        }
        fn fetch(&self, _: &StoredBackup, _: &Path) -> Result<PathBuf> {
            unreachable!()
        }
        fn delete(&self, backup: &StoredBackup) -> Result<()> {
            self.0.borrow_mut().retain(|b| b.id != backup.id);
            Ok(())
        }
    }

    /// The backup just made stays, with its reason, even where the listing's order would let
    /// a rule drop it (an artifact renamed, a clock set back); the rules decide the rest.
    #[test]
    fn a_period_prune_never_deletes_the_protected_backup() {
        let store = Names::new(&[
            "app-20260302-000000.sqlite.gz",
            "app-20260301-120000.sqlite.gz",
            "app-20260301-000000.sqlite.gz",
        ]);
        let daily = Retention {
            daily: 1,
            ..Retention::default()
        };
        let protect = Some("app-20260301-000000.sqlite.gz");
        let dry = prune(&DryRun(&store), "app", &daily, protect).unwrap();
        let why: Vec<Vec<Reason>> = dry.decisions.iter().map(|d| d.kept_by.clone()).collect();
        assert_eq!(why, [vec![Reason::Daily], vec![], vec![Reason::New]]);
        assert_eq!(store.list("app").unwrap().len(), 3, "a dry run deleted");
        let real = prune(&store, "app", &daily, protect).unwrap();
        assert_eq!(real.deleted.len(), 1);
        assert_eq!(real.deleted[0].name, "app-20260301-120000.sqlite.gz");
        assert_eq!(store.list("app").unwrap().len(), 2);
    }
}
