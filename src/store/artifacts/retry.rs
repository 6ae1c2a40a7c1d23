//! Retrying requests to GitHub and the artifact service within a bounded time.
//!
//! What is retried, and how long to wait, follows what the servers document:
//! - 5xx and 408, connection errors and timeouts: exponential backoff with jitter (the official
//!   `@actions/artifact` client retries 500, 502, 503, 504 and 429 the same way);
//! - 429, and 403 when it is a rate limit (GitHub's REST docs, "Rate limits for the REST API"):
//!   wait `retry-after` seconds when given; else, when `x-ratelimit-remaining` is 0, until the
//!   epoch second in `x-ratelimit-reset`; else (a secondary limit without headers) at least one
//!   minute.
//!
//! Every wait counts against one time budget; a wait that would overrun it ends the retries at
//! once with an error saying so, instead of sleeping past the point of giving up anyway. A single
//! attempt is bounded by the clients' connect and idle-read timeouts rather than by the budget,
//! so that a large download that keeps making progress is never cut off.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use tracing::warn;

use crate::error::{Error, Result};

/// How long to keep trying. Tests shorten it through the environment (see `from_env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total time a request may take, waits included, before giving up.
    pub budget: Duration,
    /// The first backoff delay; each retry doubles it, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(300),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The default policy, with `DBBACKUP_RETRY_BUDGET_SECS` and `DBBACKUP_RETRY_BASE_MS`
    /// overriding the budget and first delay (CI jobs with tight timeouts, and the tests).
    pub fn from_env() -> Self {
        let mut policy = Self::default();
        if let Some(secs) = env_number("DBBACKUP_RETRY_BUDGET_SECS") {
            policy.budget = secs;
        }
        if let Some(ms) = env_number("DBBACKUP_RETRY_BASE_MS") {
            policy.base = ms / 1000;
        }
        policy
    }

    /// Exponential backoff with jitter: a random delay between half and all of
    /// `base * 2^attempt`, so that many jobs failing together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        full.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// A non-negative number of seconds (or milliseconds) as a `Duration`; a value too large for
/// one (`1e30`) is ignored like any other unusable value rather than panicking.
fn env_number(name: &str) -> Option<Duration> {
    let n = std::env::var(name).ok()?.parse::<f64>().ok()?;
    Duration::try_from_secs_f64(n).ok()
}

/// What one attempt came to.
pub enum Attempt<T> {
    Done(T),
    /// Worth trying again; `wait` is what the server asked for, if it asked.
    Retry {
        wait: Option<Duration>,
        why: String,
    },
    Fail(Error),
}

/// Runs `attempt` until it is done, fails for good, or the policy's budget is spent.
/// `what` names the request in messages ("list artifacts of owner/repo").
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let started = Instant::now();
    let mut retries = 0;
    loop {
        let (wait, why) = match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(err) => return Err(err),
            Attempt::Retry { wait, why } => (wait, why),
        };
        let delay = wait.unwrap_or_else(|| policy.backoff(retries));
        // Saturating: a server may ask for any number of seconds (`Retry-After:
        // 18446744073709551615`), and adding that to the time spent would overflow.
        if started.elapsed().saturating_add(delay) > policy.budget {
            let next = match wait {
                Some(w) => format!("the server asked to wait {}s more", w.as_secs()),
                None => format!("the next wait of {:.1}s", delay.as_secs_f64()),
            };
            return Err(Error::Remote(format!(
                "{what}: gave up after {} attempt(s) in {:.1}s ({next}, past the retry budget of {}s): \
                 {why}; try again later (or raise DBBACKUP_RETRY_BUDGET_SECS)",
                retries + 1,
                started.elapsed().as_secs_f64(),
                policy.budget.as_secs_f64()
            )));
        }
        warn!("{what}: {why}; retrying in {:.1}s", delay.as_secs_f64());
        tokio::time::sleep(delay).await;
        retries += 1;
    }
}

/// A failure worth another attempt.
pub struct Retryable {
    /// What the server asked for, if it asked.
    pub wait: Option<Duration>,
    pub why: String,
}

impl<T> From<Retryable> for Attempt<T> {
    fn from(r: Retryable) -> Self {
        Attempt::Retry {
            wait: r.wait,
            why: r.why,
        }
    }
}

/// Whether a failed response is worth retrying, and after how long. `None`: it is not.
pub fn retry_for(status: StatusCode, headers: &HeaderMap, body: &str) -> Option<Retryable> {
    let why = format!("HTTP {status}{}", short_message(body));
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && is_rate_limit(headers, body));
    if rate_limited {
        return Some(Retryable {
            wait: Some(rate_limit_wait(headers)),
            why: format!("rate limited ({why})"),
        });
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Some(Retryable {
            wait: retry_after(headers),
            why,
        });
    }
    None
}

/// A 403 is a rate limit, not a permission problem, when GitHub says so in its headers or its
/// message ("You have exceeded a secondary rate limit", "API rate limit exceeded").
fn is_rate_limit(headers: &HeaderMap, body: &str) -> bool {
    retry_after(headers).is_some()
        || header_str(headers, "x-ratelimit-remaining") == Some("0")
        || body.to_ascii_lowercase().contains("rate limit")
}

fn rate_limit_wait(headers: &HeaderMap) -> Duration {
    if let Some(wait) = retry_after(headers) {
        return wait;
    }
    if header_str(headers, "x-ratelimit-remaining") == Some("0")
        && let Some(reset) = header_str(headers, "x-ratelimit-reset").and_then(|v| v.parse().ok())
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Duration::from_secs(u64::saturating_sub(reset, now).max(1));
    }
    Duration::from_secs(60)
}

/// `Retry-After` in its delay-seconds form, the one GitHub sends.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_str(headers, "retry-after")?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// The server's own explanation, from a GitHub (`message`) or Twirp (`msg`) JSON error body,
/// kept short for a log line.
pub fn short_message(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let text = json
        .as_ref()
        .and_then(|j| j.get("message").or_else(|| j.get("msg")))
        .and_then(|m| m.as_str())
        .unwrap_or(body)
        .trim()
        .chars()
        .take(200)
        .collect::<String>();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn wait_of(retry: Option<Retryable>) -> Option<Option<Duration>> {
        retry.map(|r| r.wait)
    }

    #[test]
    fn classifies_rate_limits_and_permissions() {
        let none = HeaderMap::new();
        let secondary = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(
            wait_of(retry_for(StatusCode::FORBIDDEN, &none, secondary)),
            Some(Some(Duration::from_secs(60)))
        );
        let denied = r#"{"message":"Resource not accessible by integration"}"#;
        assert!(retry_for(StatusCode::FORBIDDEN, &none, denied).is_none());
        let after = headers(&[("retry-after", "7")]);
        assert_eq!(
            wait_of(retry_for(StatusCode::TOO_MANY_REQUESTS, &after, "")),
            Some(Some(Duration::from_secs(7)))
        );
        let far = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 100;
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &far.to_string()),
        ]);
        let wait = wait_of(retry_for(StatusCode::FORBIDDEN, &primary, ""))
            .unwrap()
            .unwrap();
        assert!((95..=100).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(
            wait_of(retry_for(StatusCode::BAD_GATEWAY, &none, "")),
            Some(None)
        );
        assert!(retry_for(StatusCode::NOT_FOUND, &none, "").is_none());
    }

    #[test]
    fn a_wait_of_any_length_ends_the_retries_without_overflow() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let endless = retry_for(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", &u64::MAX.to_string())]),
            "",
        )
        .unwrap();
        let mut endless = Some(endless);
        let result: Result<()> = rt.block_on(with_retries(
            &RetryPolicy::default(),
            "list artifacts",
            || std::future::ready(endless.take().unwrap().into()),
        ));
        let err = result.unwrap_err().to_string();
        assert!(err.contains("past the retry budget"), "{err}");
    }

    #[test]
    fn waits_of_zero_still_end_with_the_budget() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let policy = RetryPolicy {
            budget: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let result: Result<()> = rt.block_on(with_retries(&policy, "list artifacts", || {
            std::future::ready(Attempt::Retry {
                wait: Some(Duration::ZERO),
                why: "Retry-After: 0".into(),
            })
        }));
        assert!(result.is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let first = policy.backoff(0);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        let late = policy.backoff(30);
        assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
    }
}
