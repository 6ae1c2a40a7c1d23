//! Hostile input: everything dbbackup parses but did not write itself (archives and manifests
//! given to restore-test, downloaded zips, JSON from GitHub and the artifact service, SQL dumps,
//! artifact names) is fed mutated and random bytes. Whatever comes in, the code never panics,
//! never writes outside its output directory and never allocates without bound; it answers
//! with an error that says what is wrong.
//!
//! Each `fuzz_*` test is one target. Inputs start from the seed corpus committed under
//! `tests/corpus/<target>/` (real backups, zips made like the official client makes them, JSON
//! shaped like GitHub's, and every input that once broke something) and are mutated by bit
//! flips, byte changes, truncation, deletion, insertion, duplication and splicing between seeds,
//! besides purely random bytes. Proptest shrinks a failing input to a small one and records its
//! seed in `fuzz_hostile_input.proptest-regressions` beside this file, which is replayed first
//! on every run (commit it, and add the minimized input to the corpus as a regression).
//!
//! Time budget: `DBBACKUP_FUZZ_SECONDS` of wall-clock time shared by the targets (default 20,
//! so `cargo test` stays fast and CI fuzzes a fixed time on every run). To fuzz longer:
//!
//! ```sh
//! DBBACKUP_FUZZ_SECONDS=600 cargo test --release --test it fuzz_hostile_input::
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbbackup::Error;
use dbbackup::archive::encrypt::Identity;
use dbbackup::archive::manifest::{self, Manifest};
use dbbackup::archive::naming;
use dbbackup::error::exit;
use dbbackup::restore_test::{self, Verdict};
use dbbackup::store::artifacts::retry::{RetryPolicy, retry_for, short_message};
use dbbackup::store::artifacts::upload::{finalized_artifact_id, signed_upload_url};
use dbbackup::store::artifacts::{
    ArtifactStore, GitHub, Secret, artifact_name, bundle, validate_name,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};

use crate::support::fake_github::FakeGitHub;
use crate::support::repo;

/// How many `fuzz_*` targets share the time budget.
const TARGETS: u32 = 8;
/// Cases per proptest run; runs repeat until the target's share of the budget is spent. Each
/// run replays the recorded regression seeds first, so a run should be much longer than them.
const CASES_PER_RUN: u32 = 64;

fn corpus(target: &str) -> PathBuf {
    repo().join("tests/corpus").join(target)
}

/// Every file of a target's corpus, sorted by name (so runs are reproducible), as bytes.
fn seeds(target: &str, suffix: &str) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = fs::read_dir(corpus(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no {suffix} seeds in tests/corpus/{target}"
    );
    found
}

fn seed_bytes(target: &str, suffix: &str) -> Vec<Vec<u8>> {
    seeds(target, suffix).into_iter().map(|(_, b)| b).collect()
}

/// Runs `test` on inputs from `strategy` until this target's share of `DBBACKUP_FUZZ_SECONDS`
/// is spent; a failure panics with the shrunk input.
fn fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let total = std::env::var("DBBACKUP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(Duration::from_secs(20));
    let deadline = Instant::now() + total / TARGETS;
    let config = Config {
        cases: CASES_PER_RUN,
        // One file for every target: a recorded seed replayed on another target is just one
        // more input for it.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/fuzz_hostile_input.proptest-regressions",
        ))),
        source_file: Some(file!()),
        max_shrink_time: 120_000,
        ..Config::default()
    };
    // A runner counts its cases for its whole life: a fresh one per run, seeded from the first
    // (so `PROPTEST_RNG_SEED` reproduces a whole session).
    let mut seeder = TestRunner::new(config.clone());
    let mut runs = 0u32;
    loop {
        let mut runner = TestRunner::new_with_rng(config.clone(), seeder.new_rng());
        match runner.run(&strategy, &test) {
            Ok(()) => runs += 1,
            Err(TestError::Fail(why, input)) => {
                panic!("{target}: {why}\nminimal failing input: {input:?}")
            }
            Err(TestError::Abort(why)) => panic!("{target}: aborted: {why}"),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("{target}: {} cases", runs * CASES_PER_RUN);
}

/// One change to a seed. Positions are `Index`es, so they fit any length and shrink well.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    /// Values that sit on the edges parsers check: 0, 0x7f, 0x80, 0xff, as 1, 2, 4 or 8 bytes.
    Edge(Index, u8, u8),
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    /// Copies a piece of the input elsewhere in it.
    Duplicate(Index, Index, usize),
    /// Inserts a piece of another seed.
    Splice(Index, Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        (any::<Index>(), 0..4u8, 0..4u8).prop_map(|(i, v, w)| Mutation::Edge(i, v, w)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..64usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), vec(any::<u8>(), 1..32)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), any::<Index>(), 1..256usize)
            .prop_map(|(from, to, n)| Mutation::Duplicate(from, to, n)),
        (any::<Index>(), any::<Index>(), any::<Index>(), 1..256usize)
            .prop_map(|(seed, from, to, n)| Mutation::Splice(seed, from, to, n)),
    ]
}

/// Where an `Index` falls in `len + 1` places (after the last byte included).
fn at(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

fn apply(mut data: Vec<u8>, mutations: &[Mutation], others: &[Vec<u8>]) -> Vec<u8> {
    for m in mutations {
        let len = data.len();
        match m {
            Mutation::FlipBit(i, bit) if len > 0 => data[i.index(len)] ^= 1 << bit,
            Mutation::SetByte(i, v) if len > 0 => data[i.index(len)] = *v,
            Mutation::Edge(i, v, w) => {
                let byte = [0x00, 0x7f, 0x80, 0xff][*v as usize];
                let width = 1usize << w;
                let start = at(i, len);
                let end = (start + width).min(len);
                data.splice(start..end, std::iter::repeat_n(byte, width));
            }
            Mutation::Truncate(i) => data.truncate(at(i, len)),
            Mutation::Delete(i, n) => {
                let start = at(i, len);
                data.drain(start..(start + n).min(len));
            }
            Mutation::Insert(i, bytes) => {
                data.splice(at(i, len)..at(i, len), bytes.iter().copied());
            }
            Mutation::Duplicate(from, to, n) => {
                let start = at(from, len);
                let piece = data[start..(start + n).min(len)].to_vec();
                let to = at(to, len);
                data.splice(to..to, piece);
            }
            Mutation::Splice(seed, from, to, n) => {
                let other = &others[seed.index(others.len())];
                let start = at(from, other.len());
                let piece = &other[start..(start + n).min(other.len())];
                let to = at(to, len);
                data.splice(to..to, piece.iter().copied());
            }
            _ => {}
        }
    }
    data
}

/// Bytes for a parser: mostly a seed with up to eight mutations (none: the seed as it is),
/// sometimes purely random bytes.
fn hostile_bytes(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seeds = Arc::new(seeds);
    let mutated = (any::<Index>(), vec(mutation(), 0..8))
        .prop_map(move |(pick, ms)| apply(seeds[pick.index(seeds.len())].clone(), &ms, &seeds));
    prop_oneof![1 => vec(any::<u8>(), 0..1024), 6 => mutated]
}

/// Every path below `root` with its kind and content, without following symbolic links: what
/// a target wrote shows as a difference between two listings.
fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("symlink to {:?}", fs::read_link(&path).ok())
            } else if meta.is_dir() {
                pending.push(path.clone());
                "dir".to_string()
            } else {
                format!("file of {} bytes", meta.len())
            };
            found.insert(path, what);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// 1. Archives and manifests given to restore-test.

/// Real backup pairs from a corpus folder: archive file name, archive bytes, manifest bytes.
fn backup_pairs(target: &str, suffix: &str) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    seeds(target, suffix)
        .into_iter()
        .map(|(name, archive)| {
            let manifest = fs::read(corpus(target).join(format!("{name}{}", manifest::SUFFIX)));
            (name, archive, manifest.unwrap())
        })
        .collect()
}

#[test]
fn fuzz_restore_test_on_mutated_archives_and_manifests() {
    fuzz_restore_test("restore-test", backup_pairs("archive", ".gz"), None);
}

/// Encrypted backups with the right key: a damaged age header, chunk or envelope must be a
/// failed check, an unreadable backup or (a damaged recipient stanza) a key that no longer
/// fits; never a panic and never a pass. The key is a test-only SSH key kept in the corpus.
#[test]
fn fuzz_restore_test_on_mutated_encrypted_backups() {
    let key = corpus("archive-age").join("test-only-identity");
    let identity =
        Identity::parse(&fs::read_to_string(key).unwrap(), "the corpus key".into()).unwrap();
    fuzz_restore_test(
        "restore-test (encrypted)",
        backup_pairs("archive-age", ".age"),
        Some(Arc::new(identity)),
    );
}

/// Restore-tests mutated copies of `pairs`: the result is a report (or, with an identity, a
/// key that no longer fits), nothing is written beside the backup, a changed archive never
/// passes, and an unchanged pair always does.
fn fuzz_restore_test(
    target: &str,
    pairs: Vec<(String, Vec<u8>, Vec<u8>)>,
    identity: Option<Arc<Identity>>,
) {
    let archives: Vec<Vec<u8>> = pairs.iter().map(|p| p.1.clone()).collect();
    let manifests: Vec<Vec<u8>> = pairs.iter().map(|p| p.2.clone()).collect();
    let options = restore_test::Options {
        identity,
        ..restore_test::Options::default()
    };
    let strategy = (
        any::<Index>(),
        vec(mutation(), 0..4),
        vec(mutation(), 0..4),
        prop::option::weighted(0.05, vec(any::<u8>(), 0..256)),
    );
    fuzz(
        target,
        strategy,
        |(pick, archive_changes, manifest_changes, random_archive)| {
            let (name, original, manifest) = &pairs[pick.index(pairs.len())];
            let archive = match &random_archive {
                Some(random) => random.clone(),
                None => apply(original.clone(), &archive_changes, &archives),
            };
            let manifest = apply(manifest.clone(), &manifest_changes, &manifests);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            fs::write(&path, &archive).unwrap();
            fs::write(manifest::path_for(&path), &manifest).unwrap();
            let before = listing(dir.path());

            let report = restore_test::restore_test(&path, &options);
            prop_assert_eq!(
                listing(dir.path()),
                before,
                "restore-test wrote beside the backup"
            );
            let report = match report {
                Ok(report) => report,
                Err(Error::Identity(_)) if options.identity.is_some() => return Ok(()),
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "an error instead of a report: {e}"
                    )));
                }
            };
            if report.verdict == Verdict::Passed {
                prop_assert!(
                    &archive == original,
                    "a changed archive passed the restore test: {:?}",
                    report.summary_lines()
                );
            }
            if archive_changes.is_empty() && manifest_changes.is_empty() && random_archive.is_none()
            {
                prop_assert_eq!(
                    report.verdict,
                    Verdict::Passed,
                    "{:?}",
                    report.summary_lines()
                );
            }
            Ok(())
        },
    );
}

/// A gzip bomb beside an honest-looking manifest: the restore stops at the manifest's size
/// instead of inflating gigabytes into the scratch copy.
#[test]
fn a_gzip_bomb_is_not_inflated_past_the_manifest_size() {
    let (name, _, manifest) = backup_pairs("archive", ".gz").remove(0);
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&name);
    fs::write(&path, &bomb).unwrap();
    fs::write(manifest::path_for(&path), manifest).unwrap();

    let started = Instant::now();
    let report = restore_test::restore_test(&path, &restore_test::Options::default()).unwrap();
    assert_eq!(report.verdict, Verdict::Failed);
    let text = report.summary_lines().join("\n");
    assert!(text.contains("more than the manifest's"), "{text}");
    // 64 MiB of zeros take a while to inflate and write; stopping at 16 KiB takes none.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Manifest JSON.

/// A JSON value of any shape: deep, wide, with numbers past every integer type and long strings.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".*".prop_map(Value::String),
        (1..100_000usize).prop_map(|n| Value::String("x".repeat(n))),
    ];
    leaf.prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((".{0,8}", inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Replaces the value of one of the object fields in `json` (picked by `at`, depth first) with
/// `value`.
fn replace_field(json: &mut serde_json::Value, at: &Index, value: serde_json::Value) {
    use serde_json::Value;
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(map) => map.values().map(|f| 1 + count(f)).sum(),
            Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    fn nth<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
        match v {
            Value::Object(map) => {
                for field in map.values_mut() {
                    if *n == 0 {
                        return Some(field);
                    }
                    *n -= 1;
                    if let Some(found) = nth(field, n) {
                        return Some(found);
                    }
                }
                None
            }
            Value::Array(items) => items.iter_mut().find_map(|item| nth(item, n)),
            _ => None,
        }
    }
    let fields = count(json);
    if fields > 0 {
        let mut n = at.index(fields);
        if let Some(field) = nth(json, &mut n) {
            *field = value;
        }
    }
}

fn check_manifest_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = Manifest::parse(bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-20261125-000000.sqlite.gz.manifest.json");
    fs::write(&path, bytes).unwrap();
    match Manifest::load(&path) {
        Ok(loaded) => prop_assert_eq!(Ok(&loaded), parsed.as_ref()),
        Err(err) => {
            prop_assert!(parsed.is_err(), "load failed where parse did not: {}", err);
            prop_assert_eq!(err.exit_code(), exit::UNREADABLE);
        }
    }
    if let Ok(m) = parsed {
        let again = Manifest::parse(m.to_json_pretty().as_bytes());
        prop_assert_eq!(
            again.as_ref(),
            Ok(&m),
            "a manifest does not survive a round trip"
        );
        // `inspect` shows any manifest that parses, whatever its names' lengths or characters.
        let shown = crate::support::dbbackup()
            .arg("inspect")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        prop_assert!(shown.status.success(), "inspect failed: {:?}", shown);
        prop_assert!(text.contains(&m.sha256));
    }
    Ok(())
}

#[test]
fn fuzz_manifest_json() {
    let mut all = seed_bytes("manifest", ".json");
    all.extend(backup_pairs("archive", ".gz").into_iter().map(|p| p.2));
    let originals: Vec<serde_json::Value> = backup_pairs("archive", ".gz")
        .iter()
        .map(|p| serde_json::from_slice(&p.2).unwrap())
        .collect();
    let structured =
        (any::<Index>(), any::<Index>(), json_value()).prop_map(move |(pick, field, value)| {
            let mut json = originals[pick.index(originals.len())].clone();
            replace_field(&mut json, &field, value);
            serde_json::to_vec(&json).unwrap()
        });
    let strategy = prop_oneof![hostile_bytes(all), structured];
    fuzz("manifest", strategy, |bytes| check_manifest_bytes(&bytes));
}

#[test]
fn a_manifest_past_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.sqlite.gz.manifest.json");
    let file = fs::File::create(&path).unwrap();
    file.set_len(manifest::MAX_BYTES + 1).unwrap();
    let err = Manifest::load(&path).unwrap_err();
    assert_eq!(err.exit_code(), exit::UNREADABLE);
    assert!(err.to_string().contains("larger than"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 3. Downloaded zips.

fn check_unpack(zip: &[u8], max_bytes: u64) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    fs::write(root.path().join("sibling.txt"), "not to be touched").unwrap();
    let before = listing(root.path());

    let result = bundle::unpack(Cursor::new(zip), "fuzz.zip", &out, max_bytes);

    let after = listing(root.path());
    let mut unpacked = 0;
    for (path, what) in &after {
        if path.starts_with(&out) {
            prop_assert!(
                !what.starts_with("symlink"),
                "{} is a symlink",
                path.display()
            );
            if let Some(size) = what.strip_prefix("file of ") {
                unpacked += size.trim_end_matches(" bytes").parse::<u64>().unwrap();
            }
        } else {
            prop_assert_eq!(
                before.get(path),
                Some(what),
                "written outside: {}",
                path.display()
            );
        }
    }
    prop_assert_eq!(
        before.len(),
        after.keys().filter(|p| !p.starts_with(&out)).count(),
        "something outside the output directory was removed"
    );
    prop_assert!(
        unpacked <= max_bytes,
        "{unpacked} bytes unpacked, bound {max_bytes}"
    );
    prop_assert!(!Path::new("/tmp/dbbackup-fuzz-absolute.txt").exists());
    match result {
        Ok(files) => {
            for file in files {
                prop_assert!(
                    file.starts_with(&out) && file.is_file(),
                    "{}",
                    file.display()
                );
            }
        }
        // A zip that is not one is unreadable; one whose entries clash (a file where a directory
        // goes) fails creating them in the output directory.
        Err(err) => prop_assert!(
            [exit::UNREADABLE, exit::OUTPUT].contains(&err.exit_code()),
            "{err}"
        ),
    }
    Ok(())
}

#[test]
fn fuzz_zip_unpacking() {
    let strategy = (
        hostile_bytes(seed_bytes("zip", ".zip")),
        select(vec![16u64, 4096, 1 << 20]),
    );
    fuzz("zip", strategy, |(zip, max)| check_unpack(&zip, max));
}

#[test]
fn crafted_zips_are_refused_without_writing_outside() {
    for (name, zip) in seeds("zip", ".zip") {
        check_unpack(&zip, 1 << 20).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let result = bundle::unpack(Cursor::new(&zip), &name, &dir.path().join("out"), 1 << 20);
        let refused = [
            "traversal",
            "absolute",
            "drive",
            "symlink",
            "zip64",
            "declares",
        ];
        if refused.iter().any(|r| name.starts_with(r)) {
            let err = result.expect_err(&name);
            assert_eq!(err.exit_code(), exit::UNREADABLE, "{name}: {err}");
        } else if name.contains("pair") {
            assert_eq!(result.unwrap().len(), 2, "{name}");
        }
    }
}

/// 64 MiB of zeros deflate to a zip of some 64 KiB; it unpacks to the bound and no further.
#[test]
fn a_zip_bomb_is_cut_at_the_bound() {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    zip.start_file("bomb.sqlite.gz", options).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        zip.write_all(&zeros).unwrap();
    }
    let zip = zip.finish().unwrap().into_inner();
    assert!(zip.len() < 1 << 20, "{}", zip.len());
    check_unpack(&zip, 1 << 20).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = bundle::unpack(Cursor::new(&zip), "bomb", dir.path(), 1 << 20).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("more than the 1048576 bytes"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 4. JSON and headers from GitHub's REST API and the artifact service.

fn check_service_answer(text: &str) -> Result<(), TestCaseError> {
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let said_ok = json.as_ref().is_some_and(|j| j["ok"] == true);
    match signed_upload_url(text, "backup") {
        Ok(url) => {
            prop_assert!(said_ok);
            prop_assert!(["http", "https"].contains(&url.scheme()), "{url}");
        }
        Err(err) => prop_assert_eq!(err.exit_code(), exit::REMOTE),
    }
    match finalized_artifact_id(text, "backup") {
        Ok(_) => prop_assert!(said_ok),
        Err(err) => prop_assert_eq!(err.exit_code(), exit::REMOTE),
    }
    // What a log line quotes of an error body stays short whatever the body holds.
    prop_assert!(short_message(text).chars().count() <= 202);
    Ok(())
}

#[test]
fn fuzz_artifact_service_answers() {
    let strategy = prop_oneof![
        hostile_bytes(seed_bytes("github", ".json"))
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        json_value().prop_map(|v| v.to_string()),
    ];
    fuzz("artifact service", strategy, |text| {
        check_service_answer(&text)
    });
}

/// A local server answering every request with the same canned response.
struct Canned {
    url: String,
    answer: Arc<Mutex<Answer>>,
}

/// Status, headers and body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

impl Canned {
    fn start() -> Canned {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let answer: Arc<Mutex<Answer>> = Arc::new(Mutex::new((200, Vec::new(), Vec::new())));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let (status, headers, body) = shared.lock().unwrap().clone();
                let mut response = tiny_http::Response::from_data(body).with_status_code(status);
                for (k, v) in headers {
                    if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                        response.add_header(h);
                    }
                }
                let _ = request.respond(response);
            }
        });
        Canned { url, answer }
    }
}

#[test]
fn fuzz_artifact_list_pages_from_github() {
    let server = Canned::start();
    let store = ArtifactStore::connect(GitHub {
        api_url: server.url.clone(),
        owner: "octo".into(),
        repo: "shop".into(),
        token: Secret::new("ghs_fuzz".into()),
        retry: RetryPolicy {
            budget: Duration::from_millis(20),
            base: Duration::from_millis(1),
            cap: Duration::from_millis(1),
        },
    })
    .unwrap();
    // No 1xx: an HTTP client waits past an informational answer for the final one.
    let status = prop_oneof![
        4 => Just(200u16),
        3 => select(vec![401u16, 403, 404, 408, 422, 429, 500, 502, 503]),
        1 => 200..600u16,
    ];
    let retry_after = prop_oneof![
        Just(None),
        select(vec![
            "0",
            "1",
            "18446744073709551615",
            "-1",
            "1e9",
            " 7 ",
            ""
        ])
        .prop_map(|v| Some(v.to_string())),
        ".{0,12}".prop_map(Some),
    ];
    let body = hostile_bytes(seed_bytes("github", ".json"));
    fuzz(
        "artifact list",
        (status, retry_after, body),
        |(status, retry_after, body)| {
            let headers: Vec<(String, String)> = retry_after
                .iter()
                .map(|v| ("retry-after".to_string(), v.clone()))
                .chain([("content-type".into(), "application/json".into())])
                .collect();
            *server.answer.lock().unwrap() = (status, headers, body.clone());
            match store.list_all() {
                Ok(artifacts) => {
                    prop_assert!((200..300).contains(&status), "listed from HTTP {}", status);
                    let json: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| TestCaseError::fail(format!("listed from non-JSON: {e}")))?;
                    // GitHub's shape: an object with the page's items under `artifacts`.
                    if let Some(items) = json.get("artifacts").and_then(|a| a.as_array())
                        && json.as_object().unwrap().len() <= 2
                    {
                        prop_assert_eq!(items.len(), artifacts.len());
                    }
                }
                Err(err) => prop_assert_eq!(err.exit_code(), exit::REMOTE, "{}", err),
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_retry_classification_of_headers() {
    let header = (
        select(vec![
            "retry-after",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ]),
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[ -~]{0,24}",
        ],
    );
    let strategy = (100..600u16, vec(header, 0..4), ".{0,64}");
    // Cheap enough to share a target's budget with nothing else: runs a fixed number of cases.
    let mut runner = TestRunner::new(Config::with_cases(2_000));
    runner
        .run(&strategy, |(status, headers, body)| {
            let mut map = http::HeaderMap::new();
            for (name, value) in headers {
                map.insert(name, value.parse().unwrap());
            }
            let status = http::StatusCode::from_u16(status).unwrap();
            if let Some(retry) = retry_for(status, &map, &body) {
                prop_assert!(status.as_u16() >= 403, "{status} retried");
                prop_assert!(!retry.why.is_empty());
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 5. SQL dumps restored by the script runner.

/// What the working directory holds (not below it): where a relative path in SQL lands.
fn working_directory() -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs::read_dir(std::env::current_dir().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
}

fn check_script(script: &[u8], cwd_before: &[PathBuf]) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("restore");
    fs::create_dir(&dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join("restored.sqlite")).unwrap();
    let result = dbbackup::engine::sqlite::script::run(&conn, &mut &script[..]);
    prop_assert!(conn.is_autocommit(), "left inside a transaction");
    if let Err(err) = result {
        prop_assert!(
            [exit::CHECK_FAILED, exit::UNREADABLE].contains(&err.exit_code()),
            "{err}"
        );
    }
    drop(conn);
    // The runner's bound on growth: 64 MiB + 16x the script (and a page of slack).
    let restored = fs::metadata(dir.join("restored.sqlite")).map_or(0, |m| m.len());
    prop_assert!(
        restored <= (64 << 20) + 16 * script.len() as u64 + 65_536,
        "a {}-byte script grew the database to {restored} bytes",
        script.len()
    );
    for path in listing(root.path()).keys() {
        let name = path.file_name().unwrap().to_string_lossy();
        prop_assert!(
            path.starts_with(&dir) && name.starts_with("restored.sqlite") || path == &dir,
            "the script wrote {}",
            path.display()
        );
    }
    prop_assert_eq!(
        &working_directory()[..],
        cwd_before,
        "the script wrote into the working directory"
    );
    Ok(())
}

#[test]
fn fuzz_sql_script_runner() {
    let cwd_before = working_directory();
    fuzz("sql", hostile_bytes(seed_bytes("sql", ".sql")), |script| {
        check_script(&script, &cwd_before)
    });
}

/// Every seed as it is, so that a regression kept in the corpus is checked on every run, not
/// only when the fuzzer happens to leave it unmutated.
#[test]
fn every_corpus_seed_as_it_is() {
    for (name, bytes) in seeds("manifest", ".json") {
        check_manifest_bytes(&bytes).unwrap_or_else(|e| panic!("manifest/{name}: {e}"));
    }
    for (name, bytes) in seeds("github", ".json") {
        let text = String::from_utf8(bytes).unwrap();
        check_service_answer(&text).unwrap_or_else(|e| panic!("github/{name}: {e}"));
    }
    let cwd_before = working_directory();
    for (name, bytes) in seeds("sql", ".sql") {
        check_script(&bytes, &cwd_before).unwrap_or_else(|e| panic!("sql/{name}: {e}"));
    }
}

/// `ATTACH` and `VACUUM INTO` would create files wherever a hostile dump names them.
#[test]
fn a_dump_cannot_attach_or_vacuum_into_another_file() {
    for (name, script) in seeds("sql", ".sql")
        .into_iter()
        .filter(|(n, _)| n.starts_with("hostile"))
    {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("escaped.db");
        let script = String::from_utf8(script)
            .unwrap()
            .replace("dbbackup-fuzz-attached.db", target.to_str().unwrap())
            .replace("dbbackup-fuzz-vacuumed.db", target.to_str().unwrap());
        let conn = rusqlite::Connection::open(dir.path().join("restored.sqlite")).unwrap();
        let err =
            dbbackup::engine::sqlite::script::run(&conn, &mut script.as_bytes()).expect_err(&name);
        assert!(
            err.to_string().contains("too many attached"),
            "{name}: {err}"
        );
        assert!(!target.exists(), "{name} wrote {}", target.display());
    }
}

/// A few bytes of SQL must not run for ever, fill the disk, or lift the bounds that stop them.
#[test]
fn a_runaway_script_stops_soon_and_small() {
    let expected = |name: &str| match name {
        n if n.contains("endless-loop") => "ran far longer than any statement",
        n if n.contains("disk-bomb") => "outgrew what a script of this size can hold",
        _ => "not authorized",
    };
    let runaway: Vec<_> = seeds("sql", ".sql")
        .into_iter()
        .filter(|(n, _)| n.starts_with("runaway"))
        .collect();
    assert_eq!(
        runaway.len(),
        4,
        "the runaway seeds are in tests/corpus/sql"
    );
    for (name, script) in runaway {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("restored.sqlite");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let started = Instant::now();
        let err = dbbackup::engine::sqlite::script::run(&conn, &mut &script[..]).expect_err(&name);
        let took = started.elapsed();
        assert!(err.to_string().contains(expected(&name)), "{name}: {err}");
        assert_eq!(err.exit_code(), exit::CHECK_FAILED, "{name}");
        assert!(took.as_secs() < 30, "{name} ran {took:?}");
        drop(conn);
        let size = fs::metadata(&db).unwrap().len();
        assert!(
            size <= (64 << 20) + 65_536,
            "{name} grew the database to {size} bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Artifact names.

/// The characters GitHub refuses in artifact names, read from the official client's
/// `validateArtifactName` when it is installed (`npm install --prefix tests/node`), else the
/// list it held when this test was written.
fn official_forbidden() -> Vec<char> {
    let source = repo().join(
        "tests/node/node_modules/@actions/artifact/lib/internal/upload/\
         path-and-artifact-name-validation.js",
    );
    let Ok(js) = fs::read_to_string(&source) else {
        eprintln!("NOTICE: {} missing; using the list known", source.display());
        return vec!['"', ':', '<', '>', '|', '*', '?', '\r', '\n', '\\', '/'];
    };
    // Map entries look like `['"', ' Double quote "'],` or `['\r', ...`.
    let chars: Vec<char> = js
        .split("\n    ['")
        .skip(1)
        .filter_map(|entry| entry.split_once("', ").map(|(key, _)| key))
        .map(|key| match key {
            "\\r" => '\r',
            "\\n" => '\n',
            "\\\\" => '\\',
            other => other.chars().next().unwrap(),
        })
        .collect();
    assert!(
        chars.len() >= 11,
        "cannot read the list from {}",
        source.display()
    );
    chars
}

#[test]
fn fuzz_artifact_names() {
    let forbidden = official_forbidden();
    let piece = prop_oneof![
        3 => select(forbidden.clone()),
        3 => any::<char>(),
        6 => select(vec!['a', 'Z', '0', '-', '.', '_', ' ']),
    ];
    let name = vec(piece, 0..16).prop_map(|cs| cs.into_iter().collect::<String>());
    let generated = (".*", 0..3u32, select(vec!["sqlite", "sql", "dump"]));
    fuzz("names", (name, generated), |(name, (raw, seq, ext))| {
        let refused = name.is_empty() || name.chars().any(|c| forbidden.contains(&c));
        match validate_name(&name) {
            Ok(()) => prop_assert!(!refused, "{name:?} accepted"),
            Err(err) => {
                prop_assert!(refused, "{name:?} refused: {err}");
                prop_assert_eq!(err.exit_code(), exit::USAGE);
            }
        }
        // Every name dbbackup makes for its own backups passes, and is one of their backups.
        let stem = naming::sanitize_stem(&raw);
        let kind = naming::Kind {
            ext,
            codec: dbbackup::archive::codec::Codec::Gzip,
            encrypted: false,
        };
        let file = naming::file_name(&stem, "20261125-204121", seq, kind);
        let (artifact, prefix) =
            artifact_name(&file, None).map_err(|e| TestCaseError::fail(format!("{file}: {e}")))?;
        prop_assert!(validate_name(&artifact).is_ok());
        prop_assert!(
            naming::is_artifact_of(&artifact, &prefix),
            "{artifact} not a backup of {prefix}"
        );
        Ok(())
    });
}

/// A name GitHub would refuse stops the upload with a usage error before any request is made,
/// and before `backup --upload` spends time on a backup.
#[test]
fn refused_names_make_no_request() {
    let fake = FakeGitHub::start();
    let (name, _, _) = backup_pairs("archive", ".gz").remove(0);
    let archive = corpus("archive").join(&name);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    for bad in ["a:b", "nightly/db", "x\ny", "what?"] {
        let runs = [
            vec![
                "artifact",
                "upload",
                archive.to_str().unwrap(),
                "--name",
                bad,
            ],
            vec![
                "backup",
                db.to_str().unwrap(),
                "--out",
                dir.path().to_str().unwrap(),
                "--upload",
                "--artifact-name",
                bad,
            ],
        ];
        for args in runs {
            let mut cmd = crate::support::dbbackup();
            for (k, v) in fake.env() {
                cmd.env(k, v);
            }
            let out = cmd.args(&args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains("which GitHub refuses"),
                "{args:?}: {stderr}"
            );
            assert!(fake.requests().is_empty(), "{args:?} made requests");
        }
    }
    let backups = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        backups, 1,
        "a backup was made for a name that cannot be uploaded"
    );
}
