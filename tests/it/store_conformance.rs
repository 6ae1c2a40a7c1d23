//! The one conformance suite every store passes (as litestream's `RunWithReplicaClient`): put,
//! list, fetch, delete and prune, run against each store dbbackup has. A new store adds one
//! test here that builds it and calls [`conformance`].
//!
//! The backups are real ones, made by the binary, so that what `fetch` brings back must still
//! pass `restore-test`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use dbbackup::retention::Retention;
use dbbackup::store::artifacts::retry::RetryPolicy;
use dbbackup::store::artifacts::{ArtifactStore, GitHub, Runtime, Secret};
use dbbackup::store::local::LocalStore;
use dbbackup::store::{self, DryRun, LocalBackup, Store, StoredBackup};

use crate::support::azurite::Azurite;
use crate::support::fake_github::{self, FakeGitHub};
use crate::support::s3::Moto;
use crate::support::{data_copy, dbbackup};

/// Real backups, oldest first: three of `chinook`, one each of `chinook-staging` and `chinookx`
/// (names that start like `chinook` and are not its backups). Made once for every store.
struct Backups {
    _dir: tempfile::TempDir,
    chinook: Vec<PathBuf>,
    others: Vec<(String, PathBuf)>,
}

fn backups() -> &'static Backups {
    static BACKUPS: OnceLock<Backups> = OnceLock::new();
    BACKUPS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("made");
        let source = data_copy("chinook.sqlite", dir.path());
        let make = |db: &Path| {
            let made = dbbackup()
                .arg("backup")
                .arg(db)
                .arg("--out")
                .arg(&out)
                .arg("--json")
                .output()
                .unwrap();
            assert!(made.status.success(), "{made:?}");
            let json: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
            PathBuf::from(json["path"].as_str().unwrap())
        };
        let chinook: Vec<PathBuf> = (0..3).map(|_| make(&source)).collect();
        let mut others = Vec::new();
        for other in ["chinook-staging", "chinookx"] {
            let db = dir.path().join(format!("{other}.sqlite"));
            std::fs::copy(&source, &db).unwrap();
            others.push((other.to_string(), make(&db)));
        }
        Backups {
            _dir: dir,
            chinook,
            others,
        }
    })
}

fn names(listed: &[StoredBackup]) -> Vec<String> {
    listed.iter().map(|b| b.name.clone()).collect()
}

/// What every store must do. `store` starts empty.
fn conformance(store: &dyn Store) {
    let made = backups();
    let series = store.series("chinook");
    assert!(
        store.list(&series).unwrap().is_empty(),
        "a new store lists nothing"
    );

    // put: each backup is listed once it returns, newest first.
    let mut put = Vec::new();
    for archive in &made.chinook {
        let stored = store.put(LocalBackup { archive }, &series).unwrap();
        assert!(stored.bytes.is_some_and(|b| b > 0), "{stored:?}");
        put.push(stored);
    }
    for (stem, archive) in &made.others {
        store
            .put(LocalBackup { archive }, &store.series(stem))
            .unwrap();
    }
    let listed = store.list(&series).unwrap();
    let newest_first: Vec<String> = put.iter().rev().map(|b| b.name.clone()).collect();
    assert_eq!(names(&listed), newest_first, "{}", store.describe());
    for other in ["chinook-staging", "chinookx"] {
        assert_eq!(
            store.list(&store.series(other)).unwrap().len(),
            1,
            "{other}"
        );
    }

    // fetch: the archive and its manifest, byte for byte, and it passes the restore test.
    let into = tempfile::tempdir().unwrap();
    let fetched = store.fetch(&listed[1], into.path()).unwrap();
    assert!(fetched.starts_with(into.path()), "{}", fetched.display());
    let original = &made.chinook[1];
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(original).unwrap()
    );
    let manifest = |p: &Path| std::fs::read(format!("{}.manifest.json", p.display())).unwrap();
    assert_eq!(manifest(&fetched), manifest(original));
    let tested = dbbackup()
        .arg("restore-test")
        .arg(&fetched)
        .output()
        .unwrap();
    assert!(tested.status.success(), "{tested:?}");

    // prune: a dry run deletes nothing; a real one keeps the newest N and the protected one,
    // and never touches another series.
    let dry = store::prune(
        &DryRun(store),
        &series,
        &Retention::last(1).unwrap(),
        Some(&put[2].id),
    )
    .unwrap();
    assert_eq!(dry.deleted.len(), 2);
    assert_eq!(store.list(&series).unwrap().len(), 3, "a dry run deleted");
    let pruned = store::prune(
        store,
        &series,
        &Retention::last(2).unwrap(),
        Some(&put[2].id),
    )
    .unwrap();
    assert_eq!(names(&pruned.deleted), [put[0].name.clone()]);
    assert_eq!(names(&store.list(&series).unwrap()), &newest_first[..2]);
    for other in ["chinook-staging", "chinookx"] {
        assert_eq!(
            store.list(&store.series(other)).unwrap().len(),
            1,
            "{other}"
        );
    }

    // delete: gone from the list; deleting it again succeeds (the goal holds).
    store.delete(&listed[0]).unwrap();
    assert_eq!(names(&store.list(&series).unwrap()), &newest_first[1..2]);
    store.delete(&listed[0]).unwrap();
    assert!(store.fetch(&listed[0], into.path()).is_err());
}

#[test]
fn the_local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalStore::open(&dir.path().join("kept")).unwrap());
}

/// Against a real local S3 server (moto), under a prefix and at the bucket's top level.
#[test]
fn the_s3_store_conforms() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("backups");
    conformance(&moto.store("s3://backups/nightly/app"));
    moto.bucket("top");
    conformance(&moto.store("s3://top"));
    // Only the backups and their manifests were ever written; nothing else is left.
    let keys = moto.keys("backups");
    assert!(
        keys.iter().all(|k| k.starts_with("nightly/app/chinook")),
        "{keys:?}"
    );
}

/// Against Azurite, Microsoft's own emulator of Blob Storage: the same suite, under a prefix and
/// at the container's top level.
#[test]
fn the_azure_store_conforms() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    azurite.container("backups");
    conformance(&azurite.store("az://backups/nightly/app"));
    azurite.container("top");
    conformance(&azurite.store("azure://top"));
    let blobs = azurite.blobs("backups");
    assert!(
        blobs.iter().all(|k| k.starts_with("nightly/app/chinook")),
        "{blobs:?}"
    );
}

fn github(fake: &FakeGitHub) -> GitHub {
    GitHub {
        api_url: fake.url.clone(),
        owner: fake_github::OWNER.into(),
        repo: fake_github::REPO.into(),
        token: Secret::new(fake_github::TOKEN.into()),
        retry: RetryPolicy {
            budget: Duration::from_secs(5),
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        },
    }
}

fn artifact_store(fake: &FakeGitHub, base: Option<&str>) -> ArtifactStore {
    let runtime = Runtime::new(fake_github::runtime_token(), &format!("{}/", fake.url)).unwrap();
    ArtifactStore::for_upload(runtime, Some(github(fake)), base.map(String::from), None).unwrap()
}

#[test]
fn the_artifact_store_conforms() {
    let fake = FakeGitHub::start();
    conformance(&artifact_store(&fake, None));
}

#[test]
fn the_artifact_store_conforms_under_another_series_name() {
    let fake = FakeGitHub::start();
    let store = artifact_store(&fake, Some("nightly"));
    assert_eq!(store.series("chinook"), "nightly");
    // Each database needs its own base: with one base for all, the others would join its series.
    let made = backups();
    let stored = store
        .put(
            LocalBackup {
                archive: &made.chinook[0],
            },
            "nightly",
        )
        .unwrap();
    assert!(stored.name.starts_with("nightly-"), "{}", stored.name);
    assert_eq!(names(&store.list("nightly").unwrap()), [stored.name]);
    assert!(store.list("chinook").unwrap().is_empty());
}

/// GitHub lists 100 artifacts a page: a series spread over several pages is listed whole, in
/// order, and pruning reaches past the first page.
#[test]
fn the_artifact_store_lists_and_prunes_across_pages() {
    let fake = FakeGitHub::start();
    for age in (0..130).rev() {
        let name = format!("app-20261125-{:06}", 100000 + age);
        fake.seed(&name, age, false, 1, Vec::new());
    }
    for age in 0..20 {
        fake.seed(
            &format!("other-20261125-{:06}", 100000 + age),
            age,
            false,
            1,
            Vec::new(),
        );
    }
    let store = ArtifactStore::connect(github(&fake)).unwrap();
    let listed = store.list("app").unwrap();
    assert_eq!(listed.len(), 130);
    assert_eq!(listed[0].name, "app-20261125-100000", "newest first");
    assert_eq!(listed[129].name, "app-20261125-100129");
    let pruned = store::prune(&store, "app", &Retention::last(5).unwrap(), None).unwrap();
    assert_eq!(pruned.deleted.len(), 125);
    assert_eq!(store.list("app").unwrap().len(), 5);
    assert_eq!(store.list("other").unwrap().len(), 20);
}
