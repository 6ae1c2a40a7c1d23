//! The one keep-N rule, shared by local rotation and artifact pruning.

/// Given backups sorted newest first, returns those to delete so that the newest `keep` stay.
/// `keep` is at least 1: a rule that deletes every backup, the new one included, is refused by
/// the callers before it gets here.
pub fn past_keep<T>(newest_first: Vec<T>, keep: usize) -> Vec<T> {
    assert!(keep >= 1, "keep must be at least 1");
    newest_first.into_iter().skip(keep).collect()
}

/// Checks a user's --keep value: 0 would delete the backup just made.
pub fn validate_keep(keep: usize) -> Result<usize, String> {
    if keep == 0 {
        Err("--keep 0 would delete every backup, the new one too: give 1 or more".into())
    } else {
        Ok(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        assert_eq!(past_keep(vec![5, 4, 3, 2, 1], 3), vec![2, 1]);
        assert_eq!(past_keep(vec![5, 4], 3), Vec::<i32>::new());
        assert!(validate_keep(0).is_err());
    }
}
