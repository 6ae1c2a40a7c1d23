//! Artifacts expire whatever a retention rule says: GitHub deletes each one after its
//! retention (`retention-days`, else the repository's setting, 90 days by default and at most
//! 400 in private repositories; docs.github.com, "Configuring the retention period for GitHub
//! Actions artifacts and logs"). A period rule that means to keep backups longer than that
//! (`--keep-monthly 12`, about a year) would silently keep less than it says, so the commands
//! that upload or prune artifacts warn about it.

use crate::retention::Retention;

/// GitHub's retention when neither `retention-days` nor the repository says otherwise.
pub const DEFAULT_DAYS: u32 = 90;

/// The days an artifact is kept: `retention_days` (already capped by the repository), else the
/// repository's setting, which the runner passes as `GITHUB_RETENTION_DAYS`, else GitHub's
/// default.
pub fn kept_days(retention_days: Option<u32>) -> u32 {
    retention_days
        .or_else(|| {
            std::env::var("GITHUB_RETENTION_DAYS")
                .ok()
                .and_then(|d| d.parse().ok())
        })
        .unwrap_or(DEFAULT_DAYS)
}

/// What to tell the user when `retention`'s period rules may keep a backup longer than
/// artifacts live (`kept_days`); `None` when the rules fit.
pub fn warning(retention: &Retention, kept_days: u32) -> Option<String> {
    let span = retention.longest_span_days();
    (span > u64::from(kept_days)).then(|| {
        format!(
            "artifacts expire after {kept_days} days, but the --keep-* period rules keep \
             backups up to {span} days: GitHub will delete those backups before the rules \
             would. Raise retention-days (GitHub allows up to 400 in private repositories), \
             lower the rules, or also store backups elsewhere (--to s3://…)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_only_past_the_artifacts_life() {
        let monthly = |m| Retention {
            monthly: m,
            ..Retention::default()
        };
        assert_eq!(warning(&monthly(2), 90), None);
        let year = warning(&monthly(12), 90).unwrap();
        assert!(
            year.contains("after 90 days") && year.contains("372 days"),
            "{year}"
        );
        assert_eq!(warning(&monthly(12), 400), None);
        assert_eq!(warning(&Retention::last(1000).unwrap(), 1), None);
        let daily = Retention {
            daily: 90,
            ..Retention::default()
        };
        assert_eq!(warning(&daily, 90), None);
        assert!(warning(&daily, 89).is_some());
    }
}
