//! Backups to Azure Blob Storage (`backup --to az://…`, `list`, `fetch`) against Azurite,
//! Microsoft's own emulator (see `support::azurite`). The store's protocol is the shared
//! conformance suite's (`store_conformance::the_azure_store_conforms`); this is the command
//! line end to end, in one run to stay cheap.

use crate::support::azurite::{Azurite, KEY};
use crate::support::{data_copy, dbbackup};

/// A missing container stops the backup before it is made (exit 8, with what to do, the
/// secrets masked first in GitHub Actions); then one backup goes to the container, is listed,
/// fetched, and the fetched copy passes the restore test. The account key is never printed.
#[test]
fn backup_to_azure_then_list_fetch_and_restore_test() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    azurite.container("backups");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let db = data_copy("chinook.sqlite", tmp.path());
    let run = |args: &[&str]| {
        let output = dbbackup().args(args).envs(azurite.env()).output().unwrap();
        for stream in [&output.stdout, &output.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(KEY),
                "the account key was printed: {output:?}"
            );
        }
        output
    };
    let db_arg = db.to_str().unwrap();
    let out_arg = out.to_str().unwrap();

    // In GitHub Actions, the key and a SAS token are masked before anything else is printed.
    let sas = "sv=2022-11-02&sig=sas-signature-never-shown";
    let missing = dbbackup()
        .args([
            "backup",
            db_arg,
            "--out",
            out_arg,
            "--to",
            "az://nothere/db",
        ])
        .envs(azurite.env())
        .env("AZURE_STORAGE_SAS_TOKEN", sas)
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(8), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("create it, or check the URL"), "{stderr}");
    assert!(!out.exists(), "a backup was made");
    let lines: Vec<&str> = stderr.lines().collect();
    let masks = lines
        .iter()
        .take_while(|l| l.starts_with("::add-mask::"))
        .count();
    for secret in [KEY, sas] {
        let mask = format!("::add-mask::{secret}");
        assert!(lines[..masks].contains(&mask.as_str()), "{stderr}");
        assert!(
            lines[masks..].iter().all(|l| !l.contains(secret)),
            "{stderr}"
        );
    }

    let made = run(&[
        "backup",
        db_arg,
        "--out",
        out_arg,
        "--to",
        "az://backups/db/",
        "--json",
    ]);
    assert!(made.status.success(), "{made:?}");
    let json: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let stored = &json["stored"][0];
    assert_eq!(stored["store"], "az://backups/db", "{json}");
    assert_eq!(stored["bytes"], json["bytes"], "{json}");
    let name = stored["name"].as_str().unwrap().to_string();
    let mut blobs = azurite.blobs("backups");
    blobs.sort();
    assert_eq!(
        blobs,
        [format!("db/{name}"), format!("db/{name}.manifest.json")]
    );

    // The other spelling names the same container.
    let listed = run(&["list", "azure://backups/db", "--name", "chinook", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], name.as_str(), "{listed}");

    let into = tmp.path().join("fetched");
    let fetched = run(&[
        "fetch",
        "az://backups/db",
        "--name",
        "chinook",
        "--latest",
        "--out",
        into.to_str().unwrap(),
    ]);
    assert!(fetched.status.success(), "{fetched:?}");
    let path = String::from_utf8_lossy(&fetched.stdout).trim().to_string();
    assert!(path.ends_with(&name), "{path}");
    let tested = dbbackup().arg("restore-test").arg(&path).output().unwrap();
    assert!(tested.status.success(), "{tested:?}");
}
