//! Small helpers every layer uses: how sizes, times and durations are written and read, a
//! path's file name, and making a directory's renames durable. They live here, below every
//! other module, so that no two modules reach into each other for them.

use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

/// `148 KB`, `1.2 MB`: sizes as the log lines and summaries show them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `90`, `90s`, `15m`, `2h`, `8d`: a `--timeout` or `--max-age` value.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let (number, unit) = match text.strip_suffix(['s', 'm', 'h', 'd']) {
        Some(n) => (n, &text[n.len()..]),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: write e.g. 90s, 15m, 2h or 8d"))?;
    let secs = match unit {
        "d" => n.saturating_mul(86_400),
        "h" => n.saturating_mul(3600),
        "m" => n.saturating_mul(60),
        _ => n,
    };
    if secs == 0 {
        return Err(format!(
            "'{text}' is no time at all: give a positive duration, e.g. 90s, 15m, 2h or 8d"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// Now, in UTC, as RFC 3339: the form manifests and reports carry times in.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .expect("a UTC time always formats as RFC 3339")
}

/// The last component of `path` as text (lossy), or empty when it has none.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The side of a copy that failed: reading a dump is the backup's fault, writing where it goes
/// is this machine's (a full disk must never make a good backup look damaged), and a tool that
/// stopped reading its input is the tool's.
pub enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies like `io::copy`, but says which side failed.
pub fn copy_telling_sides(
    from: &mut dyn std::io::Read,
    to: &mut dyn std::io::Write,
) -> std::result::Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut copied = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        copied += n as u64;
    }
}

/// Makes renames in `dir` durable: without it a power cut after a rename can lose the rename
/// even though the file's own data was synced.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::output("sync directory", dir, e))?;
    Ok(())
}

/// Creates (or truncates) a file that only its owner can read, mode 0600 from the start: a
/// backup, a manifest or a restored copy holds the database's data, and a umask of 022 would
/// make it readable by every user of the machine. Never wider than a source, which its owner
/// must be able to read anyway.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The text after `scheme://` of a URL argument, and where its authority (user, password,
/// host, port) ends as a URL parser reads it: at the first `/`, `?` or `#`.
fn after_scheme(url: &str) -> Option<(&str, usize)> {
    let (scheme, after) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some((after, end))
}

/// Whether a URL's user and password cannot be read as the user meant them: an unencoded
/// `@`, `#`, `/` or `?` in the password ends the authority early, so a URL parser takes part
/// of the password for the host, the path or a fragment (`postgres://u:p@ss#word@host/db`
/// reads as password `p`, host `ss`). Such a URL is refused whole, and nothing of it is shown.
/// An `@` past the authority with a `:` before it is ambiguous in itself:
/// `postgres://host:5432/db?user=a@b` reads as well as user `host` with password
/// `5432/db?user=a` on host `b`; an `@` written `%40` there is not.
pub fn url_userinfo_ambiguous(url: &str) -> bool {
    let Some((after, end)) = after_scheme(url) else {
        return false;
    };
    if after.contains('#') {
        return true;
    }
    match after.rfind('@') {
        Some(at) if at >= end => after[..at].contains(':'),
        _ => false,
    }
}

/// Why an ambiguous URL ([`url_userinfo_ambiguous`]) is refused, naming only its scheme;
/// `password_var` is the variable that can carry the password instead (`PGPASSWORD`).
pub fn url_userinfo_refusal(url: &str, password_var: &str) -> String {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    format!(
        "the {scheme}:// URL cannot be read: a '#', or an '@' after a '/' or '?', can only mean \
         a password holding characters that end that part of a URL (@ # / ?), so part of it \
         would be taken for the host or the database (the URL is not shown, as it may hold a \
         password). Percent-encode them in the password (@ as %40, # as %23, / as %2F, ? as \
         %3F, % as %25, : as %3A), and any @ after the host (?user=me%40corp), or leave the \
         password out of the URL and set {password_var}"
    )
}

/// A URL with any password removed (its authority's and `password=` parameters), for logs
/// and errors; an ambiguous one ([`url_userinfo_ambiguous`]) shows its scheme only, an
/// unparsable one nothing.
pub fn redact_url(source: &str) -> String {
    if url_userinfo_ambiguous(source) {
        return format!(
            "{}://(unreadable URL, not shown)",
            source.split_once("://").map_or("", |(s, _)| s)
        );
    }
    match url::Url::parse(source) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(None);
            }
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .into_owned()
                .filter(|(k, _)| k != "password")
                .collect();
            if url.query().is_some() {
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            let shown = url.to_string();
            shown.strip_suffix('?').unwrap_or(&shown).to_string()
        }
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// The passwords a URL argument carries, whole, as written and percent-decoded: the
/// password of its authority and any `password=` query parameter. When the URL is ambiguous
/// ([`url_userinfo_ambiguous`]), what the user most likely meant: everything between the
/// user's `:` and the last `@`, never the fragment a URL parser would take, which would
/// mask a few letters everywhere and leave the rest of the password shown.
pub fn url_passwords(arg: &str) -> Vec<String> {
    let Some((after, end)) = after_scheme(arg) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if url_userinfo_ambiguous(arg) {
        let userinfo = after.rfind('@').map_or(after, |at| &after[..at]);
        if let Some((_, password)) = userinfo.split_once(':') {
            found.push(password.to_string());
        }
    } else if let Ok(url) = url::Url::parse(arg) {
        // As written on the command line too, which a URL parser may encode differently (a
        // second `:` as %3A).
        if let Some((_, password)) = after[..end]
            .rfind('@')
            .and_then(|at| after[..at].split_once(':'))
        {
            found.push(password.to_string());
        }
        found.extend(url.password().map(str::to_owned));
        found.extend(
            url.query_pairs()
                .filter(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned()),
        );
        // The raw query value too: as written on the command line.
        found.extend(url.query().into_iter().flat_map(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("password="))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }));
    } else if let Some((_, password)) = after[..after.rfind('@').unwrap_or(0)].split_once(':') {
        // Unparsable: still mask what stands where a password would.
        found.push(password.to_string());
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|p| percent_encoding::percent_decode_str(p).decode_utf8().ok())
        .map(|p| p.into_owned())
        .collect();
    found.extend(decoded);
    found.retain(|p| !p.is_empty());
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(50 << 20), "50 MB");
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("8d").unwrap(),
            Duration::from_secs(8 * 86_400)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
