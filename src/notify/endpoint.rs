//! A webhook or ping URL: a secret. Whoever holds a Slack incoming-webhook URL can post to the
//! channel, and whoever holds a healthchecks.io ping URL can report the job healthy, so the
//! token in its path is the credential. It is shown as its scheme and host only, and
//! [`secrets`] lists what the runner must mask.

use crate::error::{Error, Result};

/// A parsed http(s) URL that never prints itself: `Display` and `Debug` show
/// `scheme://host[:port]`.
#[derive(Clone)]
pub struct Endpoint {
    url: url::Url,
}

impl Endpoint {
    /// `flag` names the option in the error (`--notify`), which never quotes the URL.
    pub fn parse(text: &str, flag: &str) -> Result<Endpoint> {
        let url = url::Url::parse(text.trim()).map_err(|e| {
            Error::Usage(format!(
                "{flag}: not a URL ({e}); give the webhook's whole http(s) URL"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Usage(format!(
                "{flag}: {} is not an http(s) URL; give the webhook's whole http(s) URL",
                shown(&url)
            )));
        }
        Ok(Endpoint { url })
    }

    /// The URL itself, for the request only.
    pub(crate) fn url(&self) -> &url::Url {
        &self.url
    }

    /// The healthchecks.io convention: `URL/start`, `URL/fail` (before any query string).
    pub(crate) fn with_suffix(&self, suffix: &str) -> url::Url {
        let mut url = self.url.clone();
        let path = format!("{}/{suffix}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shown(&self.url))
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

/// `scheme://host[:port]`: enough to tell which service failed, nothing that lets anyone post.
fn shown(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// What to mask for one webhook or ping URL: the whole URL as given, its path and query
/// (`/services/T…/B…/X…`), and each path segment that looks like a token (8 characters or
/// more, with a digit: `services` and `webhooks` are not secrets, a Slack or Discord token or
/// a healthchecks UUID is). The runner hides a mask anywhere in a line, so a token logged apart
/// from its URL is hidden too. Nothing for a value that is no URL.
pub fn secrets(text: &str) -> Vec<String> {
    let text = text.trim();
    let Ok(url) = url::Url::parse(text) else {
        return Vec::new();
    };
    let mut found = vec![text.to_string()];
    let path = url.path().trim_matches('/');
    if !path.is_empty() {
        found.push(path.to_string());
    }
    found.extend(url.query().map(str::to_owned));
    found.extend(
        url.path_segments()
            .into_iter()
            .flatten()
            .filter(|s| s.len() >= 8 && s.chars().any(|c| c.is_ascii_digit()))
            .map(str::to_owned),
    );
    found.extend(url.password().map(str::to_owned));
    found.retain(|s| !s.is_empty());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: &str = "https://hooks.slack.com/services/T0001/B0002/XyZ123tokenABC";

    #[test]
    fn shows_scheme_and_host_only() {
        let e = Endpoint::parse(SLACK, "--notify").unwrap();
        assert_eq!(e.to_string(), "https://hooks.slack.com");
        assert_eq!(format!("{e:?}"), "Endpoint(https://hooks.slack.com)");
        let local = Endpoint::parse("http://127.0.0.1:8080/x/tok3n", "--ping").unwrap();
        assert_eq!(local.to_string(), "http://127.0.0.1:8080");
    }

    #[test]
    fn refuses_what_is_no_http_url_without_quoting_it() {
        for bad in [
            "hooks.slack.com/services/SeCr3t",
            "ftp://h/SeCr3t",
            "mailto:SeCr3t@x",
        ] {
            let err = Endpoint::parse(bad, "--notify").unwrap_err().to_string();
            assert!(err.starts_with("--notify: "), "{err}");
            assert!(!err.contains("SeCr3t"), "{err}");
        }
    }

    #[test]
    fn ping_suffixes_go_before_the_query() {
        let e = Endpoint::parse("https://hc-ping.com/abc-123/?create=1", "--ping").unwrap();
        assert_eq!(
            e.with_suffix("start").as_str(),
            "https://hc-ping.com/abc-123/start?create=1"
        );
        let plain = Endpoint::parse("https://hc-ping.com/abc-123", "--ping").unwrap();
        assert_eq!(
            plain.with_suffix("fail").as_str(),
            "https://hc-ping.com/abc-123/fail"
        );
    }

    #[test]
    fn secrets_are_the_url_its_path_and_its_token_segments() {
        let found = secrets(SLACK);
        for s in [
            SLACK,
            "services/T0001/B0002/XyZ123tokenABC",
            "XyZ123tokenABC",
        ] {
            assert!(found.iter().any(|f| f == s), "{s} in {found:?}");
        }
        assert!(!found.iter().any(|f| f == "services" || f == "T0001"));
        assert!(secrets("not a url").is_empty());
    }
}
