//! Which backups a prune keeps, one policy for local rotation and every store: the newest N
//! (`--keep`), and the newest backup in each of the last D days, W ISO weeks, M months and Y
//! years that have a backup (`--keep-daily` … `--keep-yearly`). A backup is kept when any rule
//! keeps it. The period rules are restic's `forget --keep-daily` etc. (and rustic's, which
//! copies them): walking the backups newest first, a rule keeps a backup when it is the first
//! one seen in its period and the rule has periods left, so a period without a backup does
//! not use up one of the rule's N. Periods are UTC calendar days, ISO 8601 weeks (Monday to
//! Sunday, numbered in their ISO year, so 2026-12-31 and 2027-01-03 are both 2026-W53),
//! calendar months and years. Source: restic `internal/restic/snapshot_policy.go`
//! (`ApplyPolicy`, the `ymdh`/`yw`/`ym`/`y` bucketers) and its documentation, "Removing
//! snapshots according to a policy".

use std::fmt;

use time::{OffsetDateTime, UtcOffset};

/// The rules of one prune. Every count 0 means the rule is off; at least one is on (see
/// [`Retention::validate`]), and then the newest backup is always kept: it is the first seen,
/// so the first of its day, week, month and year.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// The newest N, whatever their dates (`--keep`).
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub yearly: usize,
}

/// Why a backup is kept; a backup kept for no reason is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Last,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// A period rule cannot place a backup whose name carries no valid time: it is kept
    /// rather than deleted on a guess.
    Undated,
    /// The backup just made, which no rule may delete (`protect` of `store::prune`).
    New,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Last => "last",
            Reason::Daily => "daily",
            Reason::Weekly => "weekly",
            Reason::Monthly => "monthly",
            Reason::Yearly => "yearly",
            Reason::Undated => "undated",
            Reason::New => "new",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One backup and the rules that keep it; none: it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<T> {
    pub backup: T,
    pub kept_by: Vec<Reason>,
}

impl<T> Decision<T> {
    pub fn keep(&self) -> bool {
        !self.kept_by.is_empty()
    }
}

/// How a period rule names the period of a time (UTC): equal names, one period.
type Period = fn(OffsetDateTime) -> i64;

/// The period rules in the order their reasons are listed, with how each names a period.
const PERIODS: [(Reason, Period); 4] = [
    (Reason::Daily, |t| {
        i64::from(t.year()) * 1000 + i64::from(t.ordinal())
    }),
    (Reason::Weekly, |t| {
        let (year, week, _) = t.to_iso_week_date();
        i64::from(year) * 100 + i64::from(week)
    }),
    (Reason::Monthly, |t| {
        i64::from(t.year()) * 100 + i64::from(u8::from(t.month()))
    }),
    (Reason::Yearly, |t| i64::from(t.year())),
];

impl Retention {
    /// Only the newest `n`: what `--keep N` alone has always meant.
    pub fn last(n: usize) -> Result<Self, String> {
        Retention {
            last: n,
            ..Retention::default()
        }
        .validate()
    }

    /// The policy of the counts `[last, daily, weekly, monthly, yearly]`, checked.
    pub fn from_counts(counts: [usize; 5]) -> Result<Self, String> {
        let [last, daily, weekly, monthly, yearly] = counts;
        Retention {
            last,
            daily,
            weekly,
            monthly,
            yearly,
        }
        .validate()
    }

    /// Refuses a policy that keeps nothing: it would delete every backup, the new one too.
    pub fn validate(self) -> Result<Self, String> {
        if self.last == 0 && !self.has_periods() {
            return Err(
                "--keep 0 would delete every backup, the new one too: give 1 or more, \
                        or a period rule (--keep-daily, --keep-weekly, --keep-monthly, \
                        --keep-yearly) 1 or more"
                    .into(),
            );
        }
        Ok(self)
    }

    /// Whether any rule goes by dates (and so needs each backup's time).
    pub fn has_periods(&self) -> bool {
        self.count(Reason::Daily) + self.count(Reason::Weekly) > 0
            || self.count(Reason::Monthly) + self.count(Reason::Yearly) > 0
    }

    fn count(&self, rule: Reason) -> usize {
        match rule {
            Reason::Last => self.last,
            Reason::Daily => self.daily,
            Reason::Weekly => self.weekly,
            Reason::Monthly => self.monthly,
            Reason::Yearly => self.yearly,
            Reason::Undated | Reason::New => 0,
        }
    }

    /// The longest a period rule may keep a backup, in days, with a backup in every period:
    /// the newest of a period lives until N more periods have a backup (a backup of 30
    /// September under `--keep-monthly 3` is deleted by the first of January's, 93 days on).
    /// Months count 31 days and years 366, so this is an upper bound. 0 without period rules.
    pub fn longest_span_days(&self) -> u64 {
        [
            (self.daily, 1),
            (self.weekly, 7),
            (self.monthly, 31),
            (self.yearly, 366),
        ]
        .into_iter()
        .map(|(n, days)| n as u64 * days)
        .max()
        .unwrap_or(0)
    }

    /// The rules that keep each of `newest_first` (sorted newest first, as every store lists).
    /// `taken` gives a backup's time; a period rule keeps a backup without one.
    pub fn decide<T>(
        &self,
        newest_first: Vec<T>,
        taken: impl Fn(&T) -> Option<OffsetDateTime>,
    ) -> Vec<Decision<T>> {
        let mut left = PERIODS.map(|(rule, _)| self.count(rule));
        let mut seen: [Option<i64>; 4] = [None; 4];
        newest_first
            .into_iter()
            .enumerate()
            .map(|(nth, backup)| {
                let mut kept_by = Vec::new();
                if nth < self.last {
                    kept_by.push(Reason::Last);
                }
                match taken(&backup).map(|t| t.to_offset(UtcOffset::UTC)) {
                    Some(at) => {
                        for (i, (rule, period)) in PERIODS.iter().enumerate() {
                            let this = period(at);
                            if left[i] > 0 && seen[i] != Some(this) {
                                seen[i] = Some(this);
                                left[i] -= 1;
                                kept_by.push(*rule);
                            }
                        }
                    }
                    None if self.has_periods() => kept_by.push(Reason::Undated),
                    None => {}
                }
                Decision { backup, kept_by }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::{Duration, PrimitiveDateTime};

    use crate::archive::naming;

    fn policy(
        last: usize,
        daily: usize,
        weekly: usize,
        monthly: usize,
        yearly: usize,
    ) -> Retention {
        Retention::from_counts([last, daily, weekly, monthly, yearly]).unwrap()
    }

    /// Backup file names as `backup` writes them, sorted newest first as stores list them.
    fn names(times: impl IntoIterator<Item = PrimitiveDateTime>) -> Vec<String> {
        let mut names: Vec<String> = times
            .into_iter()
            .map(|t| {
                naming::file_name(
                    "app",
                    &naming::stamp(t.assume_utc()),
                    1,
                    naming::Kind {
                        ext: "sqlite",
                        codec: crate::archive::codec::Codec::Gzip,
                        encrypted: false,
                    },
                )
            })
            .collect();
        names.sort();
        names.dedup();
        names.reverse();
        names
    }

    #[allow(clippy::ptr_arg)] // `decide` hands each backup (here a `String`) by reference
    fn taken(name: &String) -> Option<OffsetDateTime> {
        naming::made_at(name, "app")
    }

    /// The kept names with their reasons, as `prune --dry-run` shows them.
    fn kept(rule: Retention, names: Vec<String>) -> Vec<(String, String)> {
        rule.decide(names, taken)
            .into_iter()
            .filter(|d| d.keep())
            .map(|d| {
                let why: Vec<&str> = d.kept_by.iter().map(|r| r.as_str()).collect();
                (d.backup[4..19].to_string(), why.join(","))
            })
            .collect()
    }

    fn every(start: PrimitiveDateTime, step: Duration, n: usize) -> Vec<PrimitiveDateTime> {
        (0..n).map(|i| start + step * i as i32).collect()
    }

    #[test]
    fn keep_last_alone_is_the_newest_n_as_before() {
        let rule = Retention::last(3).unwrap();
        let decided = rule.decide(vec![5, 4, 3, 2, 1], |_| None);
        let kept: Vec<i32> = decided
            .iter()
            .filter(|d| d.keep())
            .map(|d| d.backup)
            .collect();
        assert_eq!(kept, [5, 4, 3]);
        assert!(decided[0].kept_by == [Reason::Last]);
        assert_eq!(
            Retention::last(3)
                .unwrap()
                .decide(vec![5, 4], |_| None)
                .len(),
            2
        );
        assert!(Retention::last(0).is_err());
        assert!(Retention::default().validate().is_err());
        assert!(policy(0, 1, 0, 0, 0).has_periods());
    }

    #[test]
    fn the_newest_of_each_day_several_a_day() {
        // Four backups a day for ten days: --keep-daily 3 keeps each day's last (18:00).
        let times = every(datetime!(2026-03-01 0:00), Duration::hours(6), 40);
        let got = kept(policy(0, 3, 0, 0, 0), names(times));
        assert_eq!(
            got,
            [
                ("20260310-180000".into(), "daily".into()),
                ("20260309-180000".into(), "daily".into()),
                ("20260308-180000".into(), "daily".into()),
            ]
        );
    }

    #[test]
    fn a_period_without_a_backup_does_not_count() {
        // Backups on the 1st, 2nd, 5th and 9th: the last 3 days that have a backup.
        let times = [1, 2, 5, 9].map(|d| datetime!(2026-05-01 12:00) + Duration::days(d - 1));
        let got = kept(policy(0, 3, 0, 0, 0), names(times));
        let days: Vec<&str> = got.iter().map(|(n, _)| &n[..8]).collect();
        assert_eq!(days, ["20260509", "20260505", "20260502"]);
    }

    /// Rules over three years of backups every 8 hours, with a gap of four months (three without any backup): each row
    /// is a policy and the stamps it keeps, newest first, with their reasons.
    #[test]
    fn years_of_backups_table() {
        let mut times = every(
            datetime!(2024-01-01 3:00),
            Duration::hours(8),
            3 * (366 + 365 + 365),
        );
        // A gap: nothing from 2025-06-10 to 2025-10-09.
        times.retain(|t| !(datetime!(2025-06-10 0:00)..datetime!(2025-10-10 0:00)).contains(t));
        let all = names(times);
        let newest = all[0][4..19].to_string();
        assert_eq!(newest, "20261231-190000");
        let table: &[(Retention, &[(&str, &str)])] = &[
            (
                policy(2, 2, 0, 0, 0),
                &[
                    ("20261231-190000", "last,daily"),
                    ("20261231-110000", "last"),
                    ("20261230-190000", "daily"),
                ],
            ),
            (
                // ISO weeks: 2026-12-31 is a Thursday of 2026-W53, whose Sunday is 2027-01-03;
                // W52 ends Sunday 2026-12-27.
                policy(0, 0, 3, 0, 0),
                &[
                    ("20261231-190000", "weekly"),
                    ("20261227-190000", "weekly"),
                    ("20261220-190000", "weekly"),
                ],
            ),
            (
                // The gap: no backup in July, August or September 2025, so months go
                // June 2025 (its last backup, the 9th) after October.
                policy(0, 0, 0, 16, 0),
                &[
                    ("20261231-190000", "monthly"),
                    ("20261130-190000", "monthly"),
                    ("20261031-190000", "monthly"),
                    ("20260930-190000", "monthly"),
                    ("20260831-190000", "monthly"),
                    ("20260731-190000", "monthly"),
                    ("20260630-190000", "monthly"),
                    ("20260531-190000", "monthly"),
                    ("20260430-190000", "monthly"),
                    ("20260331-190000", "monthly"),
                    ("20260228-190000", "monthly"),
                    ("20260131-190000", "monthly"),
                    ("20251231-190000", "monthly"),
                    ("20251130-190000", "monthly"),
                    ("20251031-190000", "monthly"),
                    ("20250609-190000", "monthly"),
                ],
            ),
            (
                // The leap day: February 2024's last backup is on the 29th.
                policy(0, 0, 0, 0, 5),
                &[
                    ("20261231-190000", "yearly"),
                    ("20251231-190000", "yearly"),
                    ("20241231-190000", "yearly"),
                ],
            ),
            (
                policy(1, 1, 1, 1, 1),
                &[("20261231-190000", "last,daily,weekly,monthly,yearly")],
            ),
        ];
        for (rule, want) in table {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(s, r)| (s.to_string(), r.to_string()))
                .collect();
            assert_eq!(kept(*rule, all.clone()), want, "{rule:?}");
        }
        // Monthly over the leap year: February 2024 is kept by its 29th.
        let months = kept(policy(0, 0, 0, 36, 0), all.clone());
        assert!(
            months.iter().any(|(s, _)| s == "20240229-190000"),
            "{months:?}"
        );
        assert_eq!(months.len(), 36 - 3, "three months without a backup");
    }

    /// ISO week 53 and year edges, free of time zones: every time is UTC.
    #[test]
    fn iso_week_53_and_year_edges_table() {
        let table: &[(&[PrimitiveDateTime], Retention, &[&str])] = &[
            (
                // 2020-W53 runs Monday 2020-12-28 to Sunday 2021-01-03: one week.
                &[
                    datetime!(2020-12-27 23:59:59),
                    datetime!(2020-12-28 0:00),
                    datetime!(2021-01-01 12:00),
                    datetime!(2021-01-03 23:59:59),
                    datetime!(2021-01-04 0:00),
                ],
                policy(0, 0, 3, 0, 0),
                &["20210104-000000", "20210103-235959", "20201227-235959"],
            ),
            (
                // The same backups by calendar year: 2021's first is the newest of 2020 after it.
                &[
                    datetime!(2020-12-31 23:59:59),
                    datetime!(2021-01-01 0:00),
                    datetime!(2021-01-03 23:59:59),
                ],
                policy(0, 0, 0, 0, 2),
                &["20210103-235959", "20201231-235959"],
            ),
            (
                // 2026-W53: Thursday 2026-12-31 and Sunday 2027-01-03 share a week; 2027-W01
                // starts Monday 2027-01-04.
                &[
                    datetime!(2026-12-27 10:00),
                    datetime!(2026-12-31 10:00),
                    datetime!(2027-01-03 10:00),
                    datetime!(2027-01-04 10:00),
                ],
                policy(0, 0, 3, 0, 0),
                &["20270104-100000", "20270103-100000", "20261227-100000"],
            ),
            (
                // Leap day: 2024-02-29 is a day of its own, and February's last.
                &[
                    datetime!(2024-02-28 23:00),
                    datetime!(2024-02-29 1:00),
                    datetime!(2024-02-29 23:00),
                    datetime!(2024-03-01 0:00),
                ],
                policy(0, 3, 0, 2, 0),
                &["20240301-000000", "20240229-230000", "20240228-230000"],
            ),
            (
                // The same day of the year a year apart is two days.
                &[datetime!(2025-03-01 0:00), datetime!(2026-03-01 0:00)],
                policy(0, 2, 0, 0, 0),
                &["20260301-000000", "20250301-000000"],
            ),
        ];
        for (times, rule, want) in table {
            let got: Vec<String> = kept(*rule, names(times.iter().copied()))
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            assert_eq!(got, *want, "{rule:?} over {times:?}");
        }
    }

    #[test]
    fn an_undated_backup_is_kept_by_period_rules_only() {
        let names = vec![
            "app-20260102-000000.sqlite.gz".to_string(),
            "app-20261399-000000.sqlite.gz".to_string(),
            "app-20260101-000000.sqlite.gz".to_string(),
        ];
        let why = |rule: Retention| -> Vec<Vec<Reason>> {
            rule.decide(names.clone(), taken)
                .into_iter()
                .map(|d| d.kept_by)
                .collect()
        };
        assert_eq!(
            why(policy(0, 1, 0, 0, 0)),
            [vec![Reason::Daily], vec![Reason::Undated], vec![]]
        );
        assert_eq!(
            why(Retention::last(1).unwrap()),
            [vec![Reason::Last], vec![], vec![]]
        );
    }

    #[test]
    fn the_longest_span() {
        assert_eq!(Retention::last(9).unwrap().longest_span_days(), 0);
        assert_eq!(policy(0, 7, 4, 0, 0).longest_span_days(), 28);
        assert_eq!(policy(0, 7, 4, 12, 0).longest_span_days(), 372);
        assert_eq!(policy(0, 0, 0, 0, 2).longest_span_days(), 732);
    }
}
