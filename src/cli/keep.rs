//! The retention flags `backup` and `prune` share: one policy (`dbbackup::retention`) for the
//! local directory, artifacts and object stores alike.

use dbbackup::retention::Retention;
use dbbackup::runner::Runner;
use dbbackup::store::artifacts::expiry;

#[derive(Debug, Clone, clap::Args)]
pub struct KeepArgs {
    /// Keep the newest N backups of the name; older ones are deleted unless a --keep-* period
    /// rule keeps them. 0 turns this rule off (a period rule must then be given).
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Also keep the newest backup of each of the last D days (UTC) that have a backup.
    #[arg(long, value_name = "D")]
    keep_daily: Option<usize>,
    /// Also keep the newest backup of each of the last W ISO weeks that have a backup.
    #[arg(long, value_name = "W")]
    keep_weekly: Option<usize>,
    /// Also keep the newest backup of each of the last M months that have a backup.
    #[arg(long, value_name = "M")]
    keep_monthly: Option<usize>,
    /// Also keep the newest backup of each of the last Y years that have a backup.
    #[arg(long, value_name = "Y")]
    keep_yearly: Option<usize>,
}

impl KeepArgs {
    /// The policy the flags give, checked; `None` when no flag is given (keep everything).
    pub fn policy(&self) -> dbbackup::Result<Option<Retention>> {
        let given = [
            self.keep,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        if given.iter().all(Option::is_none) {
            return Ok(None);
        }
        Retention::from_counts(given.map(Option::unwrap_or_default))
            .map(Some)
            .map_err(dbbackup::Error::Usage)
    }
}

/// Warns (log, annotation, job summary) when artifacts kept `kept_days` expire before
/// `retention`'s period rules would delete them.
pub fn warn_expiry(runner: &Runner, retention: &Retention, kept_days: u32) -> anyhow::Result<()> {
    if let Some(line) = expiry::warning(retention, kept_days) {
        tracing::warn!("{line}");
        runner.warning("artifacts expire before the retention rules", &line);
        runner.append_summary(&format!("\n:warning: {line}\n"))?;
    }
    Ok(())
}
