//! One small entry of an artifact's zip (the backup's manifest) read without downloading the
//! backup: the zip's central directory and then the entry, fetched by HTTP `Range` requests on
//! the signed blob URL the zip endpoint redirects to. The drift guard needs only the manifest,
//! and the archive beside it in the zip may be gigabytes.
//!
//! Facts this relies on (read, not copied):
//! - Azure Blob Storage honours `Range: bytes=start-end` on Get Blob (every service version)
//!   and answers `206 Partial Content` with `Content-Range: bytes start-end/total`; an offset
//!   past the blob's end is `416`. It does not list suffix ranges (`bytes=-N`), so the tail is
//!   asked for by offset, from the artifact's size as the REST listing gives it. Source:
//!   Microsoft Learn, "Specifying the range header for Blob service operations"
//!   (learn.microsoft.com/rest/api/storageservices/specifying-the-range-header-for-blob-service-operations).
//! - A zip's central directory sits at its end, after every entry, found through the
//!   end-of-central-directory record in its last 22 + 65535 bytes (PKWARE APPNOTE 4.3.16);
//!   the `zip` crate finds and parses it through `Read + Seek`, which this reader serves
//!   block by block, each block fetched once.
//!
//! A server that ignores `Range` (answers `200` with the whole blob) is still read, but only up
//! to [`MAX_UNRANGED`] bytes: past that the manifest is not read at all and the drift guard
//! says it did not check.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::retry::{Attempt, RetryPolicy, with_retries};
use super::upload;
use crate::error::{Error, Result};

/// One request's worth: small enough that the manifest of a small backup costs one or two.
const BLOCK: u64 = 16 << 10;
/// The most read of a blob whose server ignores `Range`.
pub const MAX_UNRANGED: u64 = 8 << 20;

/// A blob read by ranges, as `Read + Seek`. Blocking: each block is fetched on `rt`.
pub struct RangedBlob<'a> {
    rt: &'a tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
    retry: RetryPolicy,
    what: String,
    len: u64,
    pos: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
    /// The whole blob, when the server ignored `Range`.
    whole: Option<Vec<u8>>,
    /// Bytes received, for the log and the tests.
    pub fetched: u64,
}

/// What one ranged request brought.
enum Got {
    Part { total: u64, bytes: Vec<u8> },
    Whole(Vec<u8>),
}

impl<'a> RangedBlob<'a> {
    /// Opens the blob at the signed `url`; `size_hint` is its size as listed (the tail is
    /// fetched first, since the central directory is there).
    pub fn open(
        rt: &'a tokio::runtime::Runtime,
        url: String,
        size_hint: Option<u64>,
        retry: RetryPolicy,
        what: String,
    ) -> Result<Self> {
        let mut blob = RangedBlob {
            rt,
            http: upload::http_client()?,
            url,
            retry,
            what,
            len: 0,
            pos: 0,
            blocks: BTreeMap::new(),
            whole: None,
            fetched: 0,
        };
        let first = size_hint.filter(|&n| n > 0).map_or(0, |n| (n - 1) / BLOCK);
        if blob.load(first)?.is_none() && first > 0 {
            // The listed size was wrong (past the end): learn the size from the first block.
            blob.load(0)?;
        }
        Ok(blob)
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Fetches block `index` unless held; `None` when it starts past the blob's end (416).
    fn load(&mut self, index: u64) -> Result<Option<()>> {
        if self.whole.is_some() || self.blocks.contains_key(&index) {
            return Ok(Some(()));
        }
        let start = index * BLOCK;
        match self.rt.block_on(self.get(start, start + BLOCK - 1))? {
            None => Ok(None),
            Some(Got::Part { total, bytes }) => {
                self.len = total;
                self.fetched += bytes.len() as u64;
                self.blocks.insert(index, bytes);
                Ok(Some(()))
            }
            Some(Got::Whole(bytes)) => {
                self.len = bytes.len() as u64;
                self.fetched += bytes.len() as u64;
                self.whole = Some(bytes);
                Ok(Some(()))
            }
        }
    }

    async fn get(&self, start: u64, end: u64) -> Result<Option<Got>> {
        let what = self.what.as_str();
        with_retries(&self.retry, what, || async {
            let request = self
                .http
                .get(&self.url)
                .header(http::header::RANGE, format!("bytes={start}-{end}"));
            let mut response = match request.send().await {
                Ok(r) => r,
                Err(e) => return upload::transport_retry(e),
            };
            let status = response.status();
            if status == http::StatusCode::RANGE_NOT_SATISFIABLE {
                return Attempt::Done(None);
            }
            if !status.is_success() {
                return super::blob_failed(response, what).await;
            }
            let partial = status == http::StatusCode::PARTIAL_CONTENT;
            let total = response
                .headers()
                .get(http::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, total)| total.trim().parse::<u64>().ok());
            if partial && total.is_none() {
                return Attempt::Fail(Error::Remote(format!(
                    "{what}: a partial answer without a usable Content-Range"
                )));
            }
            // A partial answer is at most one block; a whole one at most MAX_UNRANGED.
            let limit = if partial { BLOCK } else { MAX_UNRANGED };
            let mut bytes = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if (bytes.len() + chunk.len()) as u64 > limit {
                            return Attempt::Fail(Error::Remote(match partial {
                                true => format!("{what}: more bytes than the range asked for"),
                                false => format!(
                                    "{what}: the storage ignored the Range request and the \
                                     artifact is larger than {MAX_UNRANGED} bytes, too much to \
                                     download for its manifest"
                                ),
                            }));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return upload::transport_retry(e),
                }
            }
            Attempt::Done(Some(match (partial, total) {
                (true, Some(total)) => Got::Part { total, bytes },
                _ => Got::Whole(bytes),
            }))
        })
        .await
    }
}

impl Read for RangedBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        if let Some(whole) = &self.whole {
            let n = (&whole[self.pos as usize..]).read(buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        let index = self.pos / BLOCK;
        self.load(index)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(whole) = &self.whole {
            let n = (&whole[self.pos.min(whole.len() as u64) as usize..]).read(buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        // A server that reported a size and then answers 416 within it: an error, not a read
        // of a block that never came.
        let Some(block) = self.blocks.get(&index) else {
            return Err(io::Error::other(format!(
                "{}: the storage reported {} bytes, then had none at offset {}",
                self.what, self.len, self.pos
            )));
        };
        let offset = (self.pos - index * BLOCK) as usize;
        if offset >= block.len() {
            return Ok(0);
        }
        let n = (&block[offset..]).read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedBlob<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob server that ignores `Range`: every request gets `body` whole, with `200`.
    fn ignoring_range(body: Vec<u8>) -> String {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/blob", server.server_addr().to_ip().unwrap());
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let _ = request.respond(tiny_http::Response::from_data(body.clone()));
            }
        });
        url
    }

    fn open(url: String, size: u64) -> Result<RangedBlob<'static>> {
        let rt = Box::leak(Box::new(crate::store::artifacts::runtime().unwrap()));
        RangedBlob::open(rt, url, Some(size), RetryPolicy::default(), "test".into())
    }

    /// A blob server that answers the first block with a `Content-Range` total of `claimed`
    /// bytes and every later range with 416.
    fn claiming(body: Vec<u8>, claimed: u64) -> String {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/blob", server.server_addr().to_ip().unwrap());
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let range = (request.headers().iter())
                    .find(|h| h.field.equiv("Range"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                let response = match range.starts_with("bytes=0-") {
                    true => tiny_http::Response::from_data(body.clone())
                        .with_status_code(206)
                        .with_header(
                            tiny_http::Header::from_bytes(
                                "Content-Range",
                                format!("bytes 0-{}/{claimed}", body.len() - 1),
                            )
                            .unwrap(),
                        ),
                    false => tiny_http::Response::from_data(Vec::new()).with_status_code(416),
                };
                let _ = request.respond(response);
            }
        });
        url
    }

    #[test]
    fn a_server_that_claims_more_than_it_serves_is_an_error_not_a_panic() {
        let first = vec![7u8; BLOCK as usize];
        let mut blob = open(claiming(first, 3 * BLOCK), BLOCK / 2).unwrap();
        assert_eq!(blob.size(), 3 * BLOCK);
        let mut all = Vec::new();
        let err = blob.read_to_end(&mut all).unwrap_err();
        assert!(err.to_string().contains("then had none at offset"), "{err}");
        assert_eq!(all.len(), BLOCK as usize);
    }

    #[test]
    fn a_server_ignoring_range_is_read_whole_up_to_the_bound_and_refused_past_it() {
        let small: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut blob = open(ignoring_range(small.clone()), small.len() as u64).unwrap();
        blob.seek(SeekFrom::Start(99_990)).unwrap();
        let mut tail = Vec::new();
        blob.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &small[99_990..]);
        assert_eq!((blob.size(), blob.fetched), (100_000, 100_000));

        let big = vec![0u8; MAX_UNRANGED as usize + 1];
        let err = open(ignoring_range(big), MAX_UNRANGED + 1)
            .err()
            .expect("past the bound");
        assert!(
            err.to_string().contains("ignored the Range request"),
            "{err}"
        );
    }
}
