//! `--notify`, `--notify-on` and `--ping`, for any command that opts in: flatten
//! [`NotifyArgs`] into its arguments and run it through [`NotifyArgs::around`].

use dbbackup::notify::{Alerts, Outcome, When, tail};
use dbbackup::runner::{self, Runner};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NotifyArgs {
    /// Post a message to this webhook when the command fails: Slack's incoming-webhook JSON,
    /// which Mattermost, Rocket.Chat and Discord (its webhook URL + /slack) accept too.
    /// Repeatable; default: DBBACKUP_NOTIFY, one URL per line. The URL is a secret: never shown.
    #[arg(
        long,
        value_name = "URL",
        env = "DBBACKUP_NOTIFY",
        hide_env_values = true,
        value_delimiter = '\n'
    )]
    notify: Vec<String>,
    /// When --notify posts: on failure, or always (after every run).
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        env = "DBBACKUP_NOTIFY_ON",
        default_value_t
    )]
    notify_on: When,
    /// Ping this dead-man's-switch URL (healthchecks.io and its clones): URL/start as the
    /// command begins, URL when it succeeds, URL/fail (with the last lines logged) when it
    /// fails. Repeatable; default: DBBACKUP_PING, one URL per line. A secret, like --notify.
    #[arg(
        long,
        value_name = "URL",
        env = "DBBACKUP_PING",
        hide_env_values = true,
        value_delimiter = '\n'
    )]
    ping: Vec<String>,
}

impl NotifyArgs {
    /// Runs the command `job` on `subject` (a redacted source or backup), with the pings
    /// around it and the message after it. What cannot be delivered is a warning: the
    /// command's result is returned as it was.
    pub(crate) fn around(
        &self,
        job: &str,
        subject: String,
        command: impl FnOnce() -> anyhow::Result<u8>,
    ) -> anyhow::Result<u8> {
        let Some(alerts) = Alerts::new(&self.notify, &self.ping, self.notify_on)? else {
            return command();
        };
        let runner = Runner::detect();
        warn(&runner, alerts.started());
        let ran = command();
        // An interrupt being handled ends the process with 130 here, reporting nothing false.
        dbbackup::cleanup::checkpoint();
        let scrub = scrubber();
        let (code, error) = match &ran {
            Ok(code) => (*code, None),
            Err(err) => (super::exit_code(err), Some(scrub(format!("{err:#}")))),
        };
        let mut log = tail::last_lines();
        if let Some(error) = &error {
            log.push_str(&format!("error: {error}\n"));
        }
        let outcome = Outcome {
            job: job.to_string(),
            subject: scrub(subject),
            code,
            error,
            run_url: runner::run_url(),
        };
        warn(&runner, alerts.finished(&outcome, &scrub(log)));
        ran
    }
}

/// Replaces every secret this process was given by `***`: the messages are already written
/// without them, and this keeps one that slipped through from leaving the machine.
fn scrubber() -> impl Fn(String) -> String {
    let mut secrets = runner::known_secrets(std::env::args());
    // The longest first: a token inside a URL must not break the URL's own replacement.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    move |text| {
        secrets
            .iter()
            .fold(text, |text, secret| text.replace(secret.as_str(), "***"))
    }
}

fn warn(runner: &Runner, warnings: Vec<String>) {
    for warning in warnings {
        tracing::warn!("{warning}");
        runner.warning("alert not delivered", &warning);
    }
}
