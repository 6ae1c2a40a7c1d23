//! Backups in an Azure Blob Storage container: a destination is `az://CONTAINER/PREFIX` (or
//! `azure://CONTAINER/PREFIX`, the spelling `object_store` and fsspec also take). The put, list,
//! fetch and delete protocol is the one every bucket shares (`super::bucket`); this module
//! builds the Azure client.
//!
//! Integrity on the way: every request is signed (Shared Key: an HMAC over the request's
//! headers, `Content-MD5` and `Content-Length` among them; or a SAS token). After the block
//! list is committed, the blob's size is checked (`HEAD`).
//!
//! Credentials and settings come from the environment as Azure's tools name them
//! (`MicrosoftAzureBuilder::from_env`): `AZURE_STORAGE_ACCOUNT_NAME` with
//! `AZURE_STORAGE_ACCOUNT_KEY` (or `AZURE_STORAGE_ACCESS_KEY`), or with
//! `AZURE_STORAGE_SAS_TOKEN`; a service principal (`AZURE_STORAGE_CLIENT_ID`,
//! `AZURE_STORAGE_CLIENT_SECRET`, `AZURE_STORAGE_TENANT_ID`); workload identity
//! (`AZURE_FEDERATED_TOKEN_FILE`, which is how GitHub's OIDC login to Azure arrives through
//! `azure/login`); managed identity. `AZURE_STORAGE_ENDPOINT` replaces
//! `https://ACCOUNT.blob.core.windows.net` (Azurite: `http://127.0.0.1:10000/devstoreaccount1`),
//! and `AZURE_STORAGE_USE_EMULATOR=true` takes Azurite's well-known account on
//! `AZURITE_BLOB_STORAGE_URL` (default `http://127.0.0.1:10000`). A connection string
//! (`AZURE_STORAGE_CONNECTION_STRING`) is not read: `object_store` has no parser for one.
//! Plain HTTP is allowed only for an `http://` endpoint or the emulator.

use std::sync::Arc;

use object_store::RetryConfig;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use super::bucket::{BucketStore, Kind, default_retry, redact, split_url};
use crate::error::{Error, Result};

/// The URL schemes of this store.
pub const SCHEMES: [&str; 2] = ["az", "azure"];

/// The store at `url`, configured from the environment (see the module docs), after checking
/// that the container can be listed with those credentials.
pub fn open(url: &str) -> Result<BucketStore> {
    let store = with_builder(url, MicrosoftAzureBuilder::from_env(), default_retry())?;
    store.check()?;
    Ok(store)
}

/// The store at `url` with settings given by the caller (tests, other configuration sources);
/// the container and HTTP rule are set here. Nothing is contacted yet.
pub fn with_builder(
    url: &str,
    builder: MicrosoftAzureBuilder,
    retry: RetryConfig,
) -> Result<BucketStore> {
    let (container, prefix) = parse_url(url)?;
    let secrets: Vec<String> = [
        AzureConfigKey::AccessKey,
        AzureConfigKey::SasKey,
        AzureConfigKey::Token,
        AzureConfigKey::ClientSecret,
    ]
    .iter()
    .filter_map(|k| builder.get_config_value(k))
    .collect();
    let http = builder
        .get_config_value(&AzureConfigKey::Endpoint)
        .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
    super::artifacts::install_crypto();
    let store = builder
        .with_container_name(&container)
        .with_allow_http(http)
        .with_retry(retry)
        .build()
        .map_err(|e| {
            Error::Usage(format!(
                "{url}: {} (set AZURE_STORAGE_ACCOUNT_NAME, and AZURE_STORAGE_ACCOUNT_KEY or \
                 AZURE_STORAGE_SAS_TOKEN)",
                redact(&e.to_string(), &secrets)
            ))
        })?;
    BucketStore::new(Kind::Azure, url, Arc::new(store), prefix, secrets)
}

/// `az://CONTAINER/PREFIX` split into the container and the prefix.
pub fn parse_url(url: &str) -> Result<(String, String)> {
    // Azure's rule: 3 to 63 lowercase letters, digits and hyphens, starting and ending with a
    // letter or digit, no two hyphens in a row ("Naming and Referencing Containers, Blobs, and
    // Metadata", learn.microsoft.com).
    split_url(url, &SCHEMES, "CONTAINER", |name| {
        (3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
            && !name.contains("--")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("az://backups/a/b/").unwrap(),
            ("backups".into(), "a/b".into())
        );
        assert_eq!(
            parse_url("azure://my-container").unwrap(),
            ("my-container".into(), String::new())
        );
        for bad in [
            "az://",
            "az://Backups/x",
            "az://ab",
            "az://a--b/x",
            "az://-ab/x",
            "az://my.container/x",
            "s3://bucket/x",
            "az://backups/a//b",
            "az://acct:key@backups/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
