//! `check`: whether the newest backup of a name is recent enough and large enough.
//!
//! A backup job that stops running fails nothing: GitHub disables a scheduled workflow after
//! 60 days without repository activity, a cron line gets lost in a migration, a runner goes
//! away. The one sign is that no new backup appears, so this looks at what the store holds
//! rather than at any job: run on `push` and `pull_request`, it turns a dead schedule into a
//! red check where people look.
//!
//! A backup's age is measured from the timestamp in its name (the UTC time it was made, the
//! time its manifest records), never from a file's mtime or an artifact's creation time: a
//! copy, a download or a re-upload renews those and would make an old backup look fresh.

pub mod junit;

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::archive::naming;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::util::{human_bytes, rfc3339};

/// What a fresh backup is.
#[derive(Debug, Clone)]
pub struct Rule {
    pub max_age: Duration,
    /// `--max-age` as the user wrote it (`26h`), for messages that quote it back.
    pub max_age_text: String,
    pub min_bytes: Option<u64>,
}

/// The finding for one backup name.
#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub name: String,
    /// The store looked in (`directory backups`, `GitHub artifacts of owner/repo`).
    pub store: String,
    /// The newest backup of the name, as the store names it.
    pub newest: Option<String>,
    /// When it was made (RFC 3339, UTC).
    pub created_at: Option<String>,
    pub age_seconds: Option<u64>,
    pub bytes: Option<u64>,
    pub passed: bool,
    /// One line saying what was found and, when it fails, why.
    pub message: String,
}

/// Checks the newest backup of `series` in `store` against `rule`, at `now`. A missing, old or
/// small backup is a finding (`passed: false`), not an error; only a store that cannot be read
/// is.
pub fn check(
    store: &dyn Store,
    series: &str,
    rule: &Rule,
    now: OffsetDateTime,
) -> Result<Freshness> {
    let listed = store.list(series)?;
    let mut found = Freshness {
        name: series.to_string(),
        store: store.describe(),
        newest: None,
        created_at: None,
        age_seconds: None,
        bytes: None,
        passed: false,
        message: String::new(),
    };
    let Some(newest) = listed.first() else {
        found.message = format!("no backup named {series} in {}", found.store);
        return Ok(found);
    };
    found.newest = Some(newest.name.clone());
    found.bytes = newest.bytes;
    let Some(made) = naming::made_at(&newest.name, series) else {
        found.message = format!(
            "the newest backup of {series}, {}, has no timestamp in its name \
             (<name>-<yyyymmdd-HHMMSS>), so its age is unknown",
            newest.name
        );
        return Ok(found);
    };
    // A backup stamped in the future (a skewed clock) is as fresh as one made now.
    let age = Duration::try_from(now - made).unwrap_or_default();
    found.created_at = Some(rfc3339(made));
    found.age_seconds = Some(age.as_secs());
    let mut problems = Vec::new();
    if age > rule.max_age {
        problems.push(format!("older than --max-age {}", rule.max_age_text));
    }
    if let Some(min) = rule.min_bytes {
        match newest.bytes {
            Some(bytes) if bytes >= min => {}
            Some(bytes) => problems.push(format!("smaller than --min-bytes {min} ({bytes} bytes)")),
            None => problems.push(format!(
                "its size is unknown, so --min-bytes {min} cannot be checked"
            )),
        }
    }
    found.message = format!(
        "newest backup {} is {} old ({})",
        newest.name,
        human_age(age),
        newest.bytes.map_or("size unknown".into(), human_bytes)
    );
    if !problems.is_empty() {
        found.message = format!("{}, {}", found.message, problems.join(" and "));
    }
    found.passed = problems.is_empty();
    Ok(found)
}

/// The error that ends a check with a failing name: each failing finding's line.
pub fn failure(findings: &[Freshness]) -> Option<Error> {
    let failed: Vec<&str> = findings
        .iter()
        .filter(|f| !f.passed)
        .map(|f| f.message.as_str())
        .collect();
    (!failed.is_empty()).then(|| Error::Stale(failed.join("; ")))
}

/// `3d 4h`, `5h 2m`, `12m`, `40s`: an age as a person reads it, to the two largest units.
pub fn human_age(age: Duration) -> String {
    let s = age.as_secs();
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| match small {
        0 => format!("{big}{big_unit}"),
        _ => format!("{big}{big_unit} {small}{small_unit}"),
    };
    match s {
        86_400.. => two(days, "d", hours, "h"),
        3600.. => two(hours, "h", minutes, "m"),
        60.. => format!("{minutes}m"),
        _ => format!("{s}s"),
    }
}

/// The job summary's section: one row per name.
pub fn summary(findings: &[Freshness], rule: &Rule) -> String {
    let mut md = format!(
        "### dbbackup check: newest backups\n\nrule: younger than {}{}\n\n\
         | name | verdict | newest backup | age | size |\n| --- | --- | --- | --- | ---: |\n",
        rule.max_age_text,
        rule.min_bytes
            .map_or(String::new(), |b| format!(", at least {b} bytes"))
    );
    for f in findings {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&f.name),
            if f.passed { "fresh" } else { "**FAILED**" },
            f.newest.as_deref().map_or("none".into(), cell),
            f.age_seconds
                .map_or("?".into(), |s| human_age(Duration::from_secs(s))),
            f.bytes.map_or("?".into(), human_bytes),
        ));
    }
    for f in findings.iter().filter(|f| !f.passed) {
        md.push_str(&format!("\n- {}", cell(&f.message)));
    }
    md
}

/// A name as inline code in a Markdown table cell.
fn cell(text: &str) -> String {
    format!("`{}`", crate::runner::code_cell(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_two_largest_units() {
        let cases = [
            (40, "40s"),
            (12 * 60 + 5, "12m"),
            (5 * 3600 + 2 * 60, "5h 2m"),
            (26 * 3600, "1d 2h"),
            (3 * 86_400 + 4 * 3600 + 59, "3d 4h"),
            (8 * 86_400, "8d"),
            (3600, "1h"),
        ];
        for (secs, shown) in cases {
            assert_eq!(human_age(Duration::from_secs(secs)), shown, "{secs}");
        }
    }
}
