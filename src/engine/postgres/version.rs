//! PostgreSQL's client tools and their versions: which `pg_dump` can dump which server.

use crate::engine::tool::Tool;

/// What to install when a tool is missing.
const PACKAGE_HINT: &str = "install the PostgreSQL client tools (Debian/Ubuntu: \
     apt-get install postgresql-client; Alpine: apk add postgresql-client; macOS: brew install libpq)";

pub const PG_DUMP: Tool = Tool {
    name: "pg_dump",
    install_hint: PACKAGE_HINT,
};
pub const PSQL: Tool = Tool {
    name: "psql",
    install_hint: PACKAGE_HINT,
};
pub const PG_RESTORE: Tool = Tool {
    name: "pg_restore",
    install_hint: PACKAGE_HINT,
};

/// `15.4` → 150004, `9.6.24` → 90624: the numbering of `server_version_num`.
pub fn version_num(version_text: &str) -> Option<u32> {
    let number = version_text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let parts: Vec<u32> = number
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major, minor, ..] if *major >= 10 => Some(major * 10000 + minor),
        [major] if *major >= 10 => Some(major * 10000),
        [major, minor, patch, ..] => Some(major * 10000 + minor * 100 + patch),
        [major, minor] => Some(major * 10000 + minor * 100),
        _ => None,
    }
}

/// The major release of a `server_version_num`: 150004 → 150000, 90624 → 90600.
pub fn major(num: u32) -> u32 {
    if num >= 100_000 {
        num / 10000 * 10000
    } else {
        num / 100 * 100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_release() {
        assert_eq!(
            version_num("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(150020)
        );
        assert_eq!(version_num("pg_dump (PostgreSQL) 9.6.24"), Some(90624));
        assert_eq!(version_num("pg_dump (PostgreSQL) 17devel"), Some(170000));
        assert_eq!(major(150020), 150000);
        assert_eq!(major(90624), 90600);
    }
}
