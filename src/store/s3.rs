//! Backups in an S3 bucket (or an S3-compatible service: MinIO, Cloudflare R2, Backblaze B2):
//! a destination is `s3://BUCKET/PREFIX`. The put, list, fetch and delete protocol is the one
//! every bucket shares (`super::bucket`); this module builds the S3 client.
//!
//! Integrity on the way: every request is signed with AWS Signature V4 over the SHA-256 of its
//! body (`x-amz-content-sha256`), which S3 checks on receipt, part by part; after the upload
//! completes the object's size is checked as said above.
//!
//! Credentials and settings come from the environment as AWS's own tools name them
//! (`AmazonS3Builder::from_env`): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`; `us-east-1` when neither),
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for S3-compatible services,
//! `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (GitHub's OIDC login to AWS), and the ECS
//! and EC2 instance credentials. The shared files of the AWS CLI (`~/.aws/credentials`,
//! `AWS_PROFILE`) are not read. Plain HTTP is allowed only when the endpoint itself is an
//! `http://` URL.

use std::sync::Arc;

use object_store::RetryConfig;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

pub use super::bucket::default_retry;
use super::bucket::{BucketStore, Kind, split_url};
use crate::error::{Error, Result};

/// The URL scheme of this store.
pub const SCHEME: &str = "s3";

/// The store at `url`, configured from the environment (see the module docs), after checking
/// that the bucket can be listed with those credentials.
pub fn open(url: &str) -> Result<BucketStore> {
    let store = with_builder(url, AmazonS3Builder::from_env(), default_retry())?;
    store.check()?;
    Ok(store)
}

/// The store at `url` with settings given by the caller (tests, other configuration sources);
/// the bucket and HTTP rule are set here. Nothing is contacted yet.
pub fn with_builder(
    url: &str,
    builder: AmazonS3Builder,
    retry: RetryConfig,
) -> Result<BucketStore> {
    let (bucket, prefix) = parse_url(url)?;
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let secrets: Vec<String> = [AmazonS3ConfigKey::SecretAccessKey, AmazonS3ConfigKey::Token]
        .iter()
        .filter_map(|k| builder.get_config_value(k))
        .collect();
    let http = endpoint
        .as_deref()
        .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
    // reqwest's TLS needs the process's crypto provider before its client is built.
    super::artifacts::install_crypto();
    let store = builder
        .with_bucket_name(&bucket)
        .with_allow_http(http)
        .with_retry(retry)
        .build()
        .map_err(|e| {
            Error::Usage(format!(
                "{url}: {}",
                super::bucket::redact(&e.to_string(), &secrets)
            ))
        })?;
    BucketStore::new(Kind::S3, url, Arc::new(store), prefix, secrets)
}

/// `s3://BUCKET/PREFIX` split into the bucket and the prefix (no leading or trailing `/`).
pub fn parse_url(url: &str) -> Result<(String, String)> {
    // S3's rule, simplified: 3 to 63 lowercase letters, digits, dots and hyphens.
    split_url(url, &[SCHEME], "BUCKET", |bucket| {
        (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://my-bucket/a/b/").unwrap(),
            ("my-bucket".into(), "a/b".into())
        );
        assert_eq!(
            parse_url("s3://my-bucket").unwrap(),
            ("my-bucket".into(), String::new())
        );
        for bad in [
            "s3://",
            "s3://B/x",
            "s3://ab",
            "gs://bucket/x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://key:secret@bucket/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
