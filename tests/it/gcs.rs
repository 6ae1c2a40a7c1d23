//! `gs://` destinations. No emulator that installs from the registries here speaks the part of
//! GCS's XML API that `object_store` uploads with (see the README's Object storage), so these
//! tests stop short of the service: credentials that cannot be used are refused before a
//! backup is made, clearly and without printing the key. Nothing here contacts any server.

use crate::support::{data_copy, dbbackup};

#[test]
fn unusable_gcs_credentials_fail_before_the_backup_naming_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let out = tmp.path().join("out");
    let secret = "gcs-private-key-never-shown-42";
    let key = format!(
        r#"{{"type":"service_account","private_key":"{secret}","client_email":"a@b.iam.gserviceaccount.com"}}"#
    );
    let missing = tmp.path().join("no-such-key.json");
    for (var, value) in [
        ("GOOGLE_APPLICATION_CREDENTIALS", missing.to_str().unwrap()),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str()),
    ] {
        let output = dbbackup()
            .arg("backup")
            .arg(&db)
            .arg("--out")
            .arg(&out)
            .args(["--to", "gs://my-backups/db"])
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("gs://my-backups/db"), "{stderr}");
        assert!(
            stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
            "{stderr}"
        );
        assert!(!stderr.contains(secret), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!out.exists(), "a backup was made");
    }
}
