//! Alerts outside GitHub: a chat message when a command fails (`--notify`), and the
//! dead-man's-switch pings of healthchecks.io and its clones (`--ping`).
//!
//! A scheduled backup that fails on a server nobody watches is found out when the backup is
//! needed. A chat message says it failed; a ping says it ran at all: the pinged service alerts
//! when the pings stop, which catches a cron line that was deleted or a machine that is off.
//!
//! Delivering is never the command's business: an alert that cannot be sent (after one retry,
//! each attempt bounded) is a warning, and the command's exit code and backups stay as they
//! were. Every URL is a secret ([`endpoint`]): messages name its scheme and host only.

mod endpoint;
pub mod message;
pub mod tail;

use std::time::Duration;

use futures_util::future::join_all;

pub use endpoint::{Endpoint, secrets as url_secrets};
pub use message::Outcome;

use crate::error::Result;

/// When `--notify` posts: on failure only (the default: a channel that hears of every good
/// night stops being read), or after every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum When {
    #[default]
    Failure,
    Always,
}

/// The webhooks and ping URLs of one command.
#[derive(Debug)]
pub struct Alerts {
    webhooks: Vec<Endpoint>,
    pings: Vec<Endpoint>,
    when: When,
}

/// One attempt's bound, connecting included: a webhook that hangs costs at most
/// `TRIES * ATTEMPT + PAUSE` (17 s), all URLs being tried at once.
const ATTEMPT: Duration = Duration::from_secs(8);
const CONNECT: Duration = Duration::from_secs(5);
const TRIES: u32 = 2;
const PAUSE: Duration = Duration::from_secs(1);

impl Alerts {
    /// `None` when there is nothing to send to. Every URL is checked here, before the command
    /// runs: a typo is a usage error (exit 2), not a silent night.
    pub fn new(webhooks: &[String], pings: &[String], when: When) -> Result<Option<Alerts>> {
        let parse = |urls: &[String], flag| {
            urls.iter()
                .filter(|u| !u.trim().is_empty())
                .map(|u| Endpoint::parse(u, flag))
                .collect::<Result<Vec<_>>>()
        };
        let alerts = Alerts {
            webhooks: parse(webhooks, "--notify")?,
            pings: parse(pings, "--ping")?,
            when,
        };
        Ok((!alerts.webhooks.is_empty() || !alerts.pings.is_empty()).then_some(alerts))
    }

    /// `URL/start` to each ping URL: the service then also measures how long the run takes,
    /// and alerts when a started run never ends. Returns the warnings of what failed.
    pub fn started(&self) -> Vec<String> {
        deliver(
            self.pings
                .iter()
                .map(|p| Request::ping(p, p.with_suffix("start"), String::new()))
                .collect(),
        )
    }

    /// The message to each webhook (on failure, or always with [`When::Always`]), and `URL` or
    /// `URL/fail` to each ping URL with `log` (the last lines logged) as its body. Returns the
    /// warnings of what failed.
    pub fn finished(&self, outcome: &Outcome, log: &str) -> Vec<String> {
        let post = outcome.failed() || self.when == When::Always;
        let messages = self.webhooks.iter().filter(|_| post).map(|w| Request {
            what: "notification",
            to: w.clone(),
            url: w.url().clone(),
            body: outcome.slack_json(),
            json: true,
        });
        let pings = self.pings.iter().map(|p| {
            let url = match outcome.failed() {
                true => p.with_suffix("fail"),
                false => p.url().clone(),
            };
            Request::ping(p, url, log.to_string())
        });
        deliver(messages.chain(pings).collect())
    }
}

struct Request {
    what: &'static str,
    to: Endpoint,
    url: url::Url,
    body: String,
    json: bool,
}

impl Request {
    fn ping(to: &Endpoint, url: url::Url, body: String) -> Request {
        Request {
            what: "ping",
            to: to.clone(),
            url,
            body,
            json: false,
        }
    }
}

/// Sends every request at once and waits for all, each within its bound.
fn deliver(requests: Vec<Request>) -> Vec<String> {
    if requests.is_empty() {
        return Vec::new();
    }
    let client = crate::store::artifacts::runtime().and_then(|rt| {
        reqwest::Client::builder()
            .user_agent(concat!("dbbackup/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT)
            .timeout(ATTEMPT)
            .build()
            .map(|client| (rt, client))
            .map_err(|e| crate::Error::Remote(e.without_url().to_string()))
    });
    let (rt, client) = match client {
        Ok(both) => both,
        Err(e) => return vec![format!("alerts cannot be sent: {e}")],
    };
    rt.block_on(join_all(requests.iter().map(|r| send(&client, r))))
        .into_iter()
        .flatten()
        .collect()
}

/// `None` when delivered; else the warning, which names the URL's scheme and host only.
async fn send(client: &reqwest::Client, request: &Request) -> Option<String> {
    let mut why = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        let mut post = client.post(request.url.clone()).body(request.body.clone());
        if request.json {
            post = post.header(http::header::CONTENT_TYPE, "application/json");
        }
        match post.send().await {
            Ok(answer) if answer.status().is_success() => return None,
            Ok(answer) => {
                let status = answer.status();
                why = format!("HTTP {status}");
                // A 4xx other than 408 and 429 (a revoked webhook, a wrong path) stays so.
                if status.is_client_error() && !matches!(status.as_u16(), 408 | 429) {
                    break;
                }
            }
            Err(e) => why = error_chain(e.without_url()),
        }
    }
    let mut warning = format!(
        "the {} to {} was not delivered ({why}); the command's result is unchanged",
        request.what, request.to
    );
    // The transport's words never held the URL, but a secret must not leak through one.
    for secret in url_secrets(request.url.as_str()) {
        warning = warning.replace(&secret, "***");
    }
    Some(warning)
}

/// `error sending request: connection refused`: reqwest's own words are only the first part.
fn error_chain(err: reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_send_is_no_alerts_and_a_bad_url_is_a_usage_error() {
        assert!(
            Alerts::new(&["".into()], &[], When::Failure)
                .unwrap()
                .is_none()
        );
        let err = Alerts::new(&[], &["hc-ping.com/uuid".into()], When::Failure).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        assert!(err.to_string().starts_with("--ping: "), "{err}");
    }
}
