//! Backups in a Google Cloud Storage bucket: a destination is `gs://BUCKET/PREFIX`. The put,
//! list, fetch and delete protocol is the one every bucket shares (`super::bucket`); this module
//! builds the GCS client.
//!
//! Integrity on the way: requests go over TLS with an OAuth token; after the multipart upload
//! (GCS's XML API) completes, the object's size is checked (`HEAD`).
//!
//! Credentials and settings come from the environment as Google's tools name them
//! (`GoogleCloudStorageBuilder::from_env`): `GOOGLE_APPLICATION_CREDENTIALS` (a service
//! account's JSON key file, or the file `google-github-actions/auth` writes for GitHub's OIDC
//! login), `GOOGLE_SERVICE_ACCOUNT` (a key file's path) or `GOOGLE_SERVICE_ACCOUNT_KEY` (the
//! JSON itself); without them, the application-default credentials of `gcloud` and then the
//! instance's metadata server. `GOOGLE_BASE_URL` replaces `https://storage.googleapis.com`
//! (an emulator).

use std::sync::Arc;

use object_store::RetryConfig;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};

use super::bucket::{BucketStore, Kind, default_retry, redact, split_url};
use crate::error::{Error, Result};

/// The URL scheme of this store.
pub const SCHEME: &str = "gs";

/// The store at `url`, configured from the environment (see the module docs), after checking
/// that the bucket can be listed with those credentials.
pub fn open(url: &str) -> Result<BucketStore> {
    let store = with_builder(url, GoogleCloudStorageBuilder::from_env(), default_retry())?;
    store.check()?;
    Ok(store)
}

/// The store at `url` with settings given by the caller (tests, other configuration sources);
/// the bucket is set here. Nothing is contacted yet.
pub fn with_builder(
    url: &str,
    builder: GoogleCloudStorageBuilder,
    retry: RetryConfig,
) -> Result<BucketStore> {
    let (bucket, prefix) = parse_url(url)?;
    let secrets: Vec<String> = [
        GoogleConfigKey::ServiceAccountKey,
        GoogleConfigKey::BearerToken,
    ]
    .iter()
    .filter_map(|k| builder.get_config_value(k))
    .collect();
    super::artifacts::install_crypto();
    let store = builder
        .with_bucket_name(&bucket)
        .with_retry(retry)
        .build()
        .map_err(|e| {
            Error::Usage(format!(
                "{url}: {} (set GOOGLE_APPLICATION_CREDENTIALS to a service account's JSON key \
                 file, or GOOGLE_SERVICE_ACCOUNT_KEY to its contents)",
                redact(&e.to_string(), &secrets)
            ))
        })?;
    BucketStore::new(Kind::Gcs, url, Arc::new(store), prefix, secrets)
}

/// `gs://BUCKET/PREFIX` split into the bucket and the prefix.
pub fn parse_url(url: &str) -> Result<(String, String)> {
    // Google's rule, simplified: 3 to 63 lowercase letters, digits, hyphens, underscores and
    // dots (up to 222 with dots), starting and ending with a letter or digit ("Bucket naming",
    // cloud.google.com/storage/docs/buckets).
    split_url(url, &[SCHEME], "BUCKET", |bucket| {
        let max = if bucket.contains('.') { 222 } else { 63 };
        (3..=max).contains(&bucket.len())
            && bucket.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
            })
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("gs://my_bucket/a/b/").unwrap(),
            ("my_bucket".into(), "a/b".into())
        );
        for bad in [
            "gs://",
            "gs://B/x",
            "gs://_ab/x",
            "s3://bucket/x",
            "gs://b/../x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
