//! What a notification says, in the Slack incoming-webhook shape `{"text": "..."}`: Slack
//! (api.slack.com/messaging/webhooks), Mattermost and Rocket.Chat incoming webhooks, and
//! Discord's Slack-compatible endpoint (the webhook URL + `/slack`) all accept a `text` field.
//! Their markup differs, so the message is plain lines, which each shows as written.

use crate::error::exit;

/// How a command ended, as the notification tells it. Every text here must already be free
/// of secrets (the caller redacts sources and scrubs the error line).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What ran: `backup`, `restore test`, `restore`.
    pub job: String,
    /// Which database or backup, redacted: `/srv/app.db`, `postgres://app@db:5432/app`.
    pub subject: String,
    /// The process's exit code.
    pub code: u8,
    /// The error's first line, when it failed with one.
    pub error: Option<String>,
    /// The GitHub Actions run's page, when running in one.
    pub run_url: Option<String>,
}

/// A line of the error is cut past this: a chat message is read at a glance.
const ERROR_CHARS: usize = 600;

impl Outcome {
    pub fn failed(&self) -> bool {
        self.code != exit::OK
    }

    /// The message text: a headline, the error's first line, the run's link.
    pub fn text(&self) -> String {
        let mut text = match self.failed() {
            true => format!(
                "dbbackup {} failed: {} (exit {}: {})",
                self.job,
                self.subject,
                self.code,
                exit::meaning(self.code)
            ),
            false => format!("dbbackup {} succeeded: {}", self.job, self.subject),
        };
        if let Some(line) = self.error.as_deref().and_then(|e| e.lines().next()) {
            text.push_str("\nerror: ");
            text.extend(line.chars().take(ERROR_CHARS));
            if line.chars().count() > ERROR_CHARS {
                text.push('…');
            }
        }
        if let Some(url) = &self.run_url {
            text.push_str(&format!("\nrun: {url}"));
        }
        text
    }

    /// The webhook's JSON body. Slack reads `<...>` as a link or mention and `&` as the start of
    /// an entity, so those three are escaped as its "Escaping text" rule asks
    /// (api.slack.com/reference/surfaces/formatting#escaping); the CommonMark of Mattermost
    /// and Rocket.Chat decodes the same entities back. An error line such as `<stdin>: …` is
    /// then shown as written, not as a broken link.
    pub fn slack_json(&self) -> String {
        let text = self
            .text()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        serde_json::json!({ "text": text }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: u8, error: Option<&str>) -> Outcome {
        Outcome {
            job: "backup".into(),
            subject: "/srv/app.db".into(),
            code,
            error: error.map(str::to_owned),
            run_url: Some("https://github.com/o/r/actions/runs/7".into()),
        }
    }

    #[test]
    fn a_failure_says_what_which_why_and_where() {
        let o = outcome(
            3,
            Some("backup of /srv/app.db failed: not found\nsecond line"),
        );
        assert_eq!(
            o.text(),
            "dbbackup backup failed: /srv/app.db (exit 3: the source database cannot be read)\n\
             error: backup of /srv/app.db failed: not found\n\
             run: https://github.com/o/r/actions/runs/7"
        );
        let json: serde_json::Value = serde_json::from_str(&o.slack_json()).unwrap();
        assert_eq!(json["text"], o.text());
    }

    #[test]
    fn slacks_control_characters_are_escaped_in_the_webhook_body() {
        let o = outcome(5, Some("table <a&b> lost rows"));
        let json: serde_json::Value = serde_json::from_str(&o.slack_json()).unwrap();
        let text = json["text"].as_str().unwrap();
        assert!(
            text.contains("error: table &lt;a&amp;b&gt; lost rows"),
            "{text}"
        );
        assert!(!text.contains(['<', '>']), "{text}");
    }

    #[test]
    fn a_success_is_one_line_and_a_long_error_is_cut() {
        let mut o = outcome(0, None);
        o.run_url = None;
        assert_eq!(o.text(), "dbbackup backup succeeded: /srv/app.db");
        let long = "é".repeat(ERROR_CHARS * 2);
        let text = outcome(5, Some(&long)).text();
        assert!(text.contains(&format!("error: {}…", "é".repeat(ERROR_CHARS))));
    }
}
