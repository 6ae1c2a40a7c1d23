//! The names of backups, the one grammar for files and artifacts alike:
//! - a file is `<stem>-<UTC yyyymmdd-HHMMSS>[-N].<ext>.gz` (`.zst` for zstd), plus `.age` when
//!   encrypted; a tar stored uncompressed (its members are compressed) is `….tar`, `….tar.age`;
//! - an artifact is the file's name without its extensions, `<stem>-<stamp>[-N]`, or with a
//!   user's base in place of the stem.
//!
//! The name carries the order of backups (timestamp, then sequence number for backups taken in
//! the same second), so rotation can sort without opening any file; a gzip and a zstd backup of
//! one database are one series, counted together. Which extensions are
//! archives is the engines' to say (`engine::is_archive_extension`); this grammar only takes a
//! lowercase word there.

use time::OffsetDateTime;

use super::codec::Codec;
use time::macros::format_description;

/// A parsed backup file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackupName {
    /// `yyyymmdd-HHMMSS`, which sorts like the time it stands for.
    pub stamp: String,
    /// 1 for the first backup in a second, 2 for the second, ...
    pub seq: u32,
    pub ext: String,
    /// What the name says the archive is compressed with. Readers go by the content
    /// ([`Codec::sniff`]); the name only tells backups from other files.
    pub codec: Codec,
    /// `.gz.age`: the gzip stream encrypted with age (see `archive::encrypt`).
    pub encrypted: bool,
}

/// The UTC timestamp part of a name.
pub fn stamp(at: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]-[hour][minute][second]");
    at.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC date always formats")
}

/// Makes a database name safe as a file name and artifact name on every platform: letters,
/// digits, `.`, `_` and `-` stay, anything else (spaces, quotes, slashes, newlines) becomes `_`.
pub fn sanitize_stem(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('.');
    if trimmed.is_empty() {
        "db".to_string()
    } else {
        trimmed.to_string()
    }
}

/// What a backup file's name says about its content: the engine's extension, the codec, and
/// whether it is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind<'a> {
    pub ext: &'a str,
    pub codec: Codec,
    pub encrypted: bool,
}

pub fn file_name(stem: &str, stamp: &str, seq: u32, kind: Kind<'_>) -> String {
    let Kind {
        ext,
        codec,
        encrypted,
    } = kind;
    let zip = codec.suffix();
    let age = if encrypted {
        super::encrypt::SUFFIX
    } else {
        ""
    };
    if seq <= 1 {
        format!("{stem}-{stamp}.{ext}{zip}{age}")
    } else {
        format!("{stem}-{stamp}-{seq}.{ext}{zip}{age}")
    }
}

/// The codec a backup file's name says (`….gz`, `….zst`, either with `.age` after it).
pub fn codec_named(file_name: &str) -> Option<Codec> {
    let name = file_name
        .strip_suffix(super::encrypt::SUFFIX)
        .unwrap_or(file_name);
    strip_codec(name).map(|(_, codec)| codec)
}

/// `name` without its codec suffix (`.gz`, `.zst`), and the codec; `None` without one. The
/// one archive stored without a codec is a tar whose members are compressed (a PostgreSQL
/// directory-format backup, `….tar`), so a name without a suffix counts only when it ends in
/// `.tar`: any other file beside the backups stays unparsed and untouched.
fn strip_codec(name: &str) -> Option<(&str, Codec)> {
    Codec::ALL
        .into_iter()
        .filter(|c| !c.suffix().is_empty())
        .find_map(|c| name.strip_suffix(c.suffix()).map(|rest| (rest, c)))
        .or_else(|| name.ends_with(".tar").then_some((name, Codec::None)))
}

/// Parses `name` as a backup file of the database called `stem`; `None` for anything else, so
/// that rotation never touches a file it did not write.
pub fn parse(name: &str, stem: &str) -> Option<BackupName> {
    let rest = name.strip_prefix(stem)?.strip_prefix('-')?;
    let (rest, encrypted) = match rest.strip_suffix(super::encrypt::SUFFIX) {
        Some(sealed) => (sealed, true),
        None => (rest, false),
    };
    let (rest, codec) = strip_codec(rest)?;
    let (body, ext) = rest.rsplit_once('.')?;
    if ext.is_empty()
        || !ext
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return None;
    }
    let (stamp, seq) = parse_stamp(body)?;
    Some(BackupName {
        stamp: stamp.to_string(),
        seq,
        ext: ext.to_string(),
        codec,
        encrypted,
    })
}

/// `yyyymmdd-HHMMSS` with an optional `-N` (N ≥ 2, no leading zero): the part of a name after
/// its stem.
fn parse_stamp(body: &str) -> Option<(&str, u32)> {
    let (stamp, seq) = match body.get(15..) {
        Some("") => (body, 1),
        Some(tail) => {
            let digits = tail.strip_prefix('-')?;
            if digits.starts_with('0') || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let n: u32 = digits.parse().ok()?;
            if n < 2 {
                return None;
            }
            (&body[..15], n)
        }
        None => return None,
    };
    let b = stamp.as_bytes();
    let shape_ok = b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    shape_ok.then_some((stamp, seq))
}

/// The artifact name of a backup file (`<stem>-<stamp>[-N]`), and the prefix its series
/// shares: the stem, or `base` in its place when given. A file named otherwise keeps its bare
/// name, or takes `base` as it is.
pub fn artifact_name(archive_file_name: &str, base: Option<&str>) -> (String, String) {
    let bare = archive_file_name
        .strip_suffix(super::encrypt::SUFFIX)
        .unwrap_or(archive_file_name);
    let bare = strip_codec(bare)
        .and_then(|(n, _)| n.rsplit_once('.'))
        .map_or(archive_file_name, |(bare, _ext)| bare);
    let stem = bare
        .match_indices('-')
        .map(|(i, _)| &bare[..i])
        .find(|stem| !stem.is_empty() && is_artifact_of(bare, stem));
    match (stem, base) {
        (Some(stem), Some(base)) => (format!("{base}{}", &bare[stem.len()..]), base.to_string()),
        (Some(stem), None) => (bare.to_string(), stem.to_string()),
        (None, Some(base)) => (base.to_string(), base.to_string()),
        (None, None) => (bare.to_string(), bare.to_string()),
    }
}

/// Whether the artifact `name` is a backup of `prefix`: the name itself, or the name followed
/// by `-<yyyymmdd-HHMMSS>` and an optional `-N`. `app-staging-...` is not a backup of `app`.
pub fn is_artifact_of(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    match rest.strip_prefix('-') {
        Some(body) => parse_stamp(body).is_some(),
        None => rest.is_empty(),
    }
}

/// When the backup of `series` called `name` (a file name, or an artifact name) was made, from
/// the UTC timestamp in its name: the time the backup itself records, which a copy, a download
/// or a re-upload does not change as it changes a file's mtime or an artifact's creation time.
/// `None` for a name without one (an artifact uploaded under a bare name).
pub fn made_at(name: &str, series: &str) -> Option<OffsetDateTime> {
    let stamp = match parse(name, series) {
        Some(parsed) => parsed.stamp,
        None => parse_stamp(name.strip_prefix(series)?.strip_prefix('-')?)?
            .0
            .to_string(),
    };
    let fmt = format_description!("[year][month][day]-[hour][minute][second]");
    time::PrimitiveDateTime::parse(&stamp, &fmt)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Parses a backup file name of any database (a directory can hold several): the stem is what
/// comes before the timestamp. Returns the stem and the parsed name.
pub fn parse_any(name: &str) -> Option<(String, BackupName)> {
    name.match_indices('-')
        .filter(|&(i, _)| i > 0)
        .find_map(|(i, _)| parse(name, &name[..i]).map(|b| (name[..i].to_string(), b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ext: &str, codec: Codec, encrypted: bool) -> Kind<'_> {
        Kind {
            ext,
            codec,
            encrypted,
        }
    }

    #[test]
    fn round_trips_and_orders() {
        let a = file_name(
            "app",
            "20261125-175300",
            1,
            kind("sqlite", Codec::Gzip, false),
        );
        let b = file_name(
            "app",
            "20261125-175300",
            2,
            kind("sqlite", Codec::Gzip, true),
        );
        let c = file_name("app", "20261125-175301", 1, kind("sql", Codec::Gzip, false));
        assert_eq!(a, "app-20261125-175300.sqlite.gz");
        assert_eq!(b, "app-20261125-175300-2.sqlite.gz.age");
        let (pa, pb, pc) = (
            parse(&a, "app").unwrap(),
            parse(&b, "app").unwrap(),
            parse(&c, "app").unwrap(),
        );
        assert!(pa < pb && pb < pc);
        assert!(!pa.encrypted && pb.encrypted);
    }

    #[test]
    fn a_stored_tar_has_no_codec_suffix_and_only_a_tar_goes_without() {
        for encrypted in [false, true] {
            let name = file_name(
                "app",
                "20261125-175300",
                1,
                kind("tar", Codec::None, encrypted),
            );
            let parsed = parse(&name, "app").unwrap();
            assert_eq!((parsed.ext.as_str(), parsed.codec), ("tar", Codec::None));
            assert_eq!(parsed.encrypted, encrypted);
            assert_eq!(codec_named(&name), Some(Codec::None));
        }
        assert_eq!(
            file_name("app", "20261125-175300", 2, kind("tar", Codec::None, true)),
            "app-20261125-175300-2.tar.age"
        );
        assert_eq!(
            parse("app-20261125-175300.tar.gz", "app").unwrap().codec,
            Codec::Gzip
        );
        assert_eq!(parse("app-20261125-175300.sql", "app"), None);
        assert_eq!(codec_named("notes.txt"), None);
    }

    #[test]
    fn zstd_names_are_one_series_with_gzip_ones() {
        let z = file_name("app", "20261125-175300", 2, kind("sql", Codec::Zstd, false));
        let za = file_name("app", "20261125-175301", 1, kind("dump", Codec::Zstd, true));
        assert_eq!(z, "app-20261125-175300-2.sql.zst");
        assert_eq!(za, "app-20261125-175301.dump.zst.age");
        let (pz, pza) = (parse(&z, "app").unwrap(), parse(&za, "app").unwrap());
        assert_eq!((pz.codec, pza.codec), (Codec::Zstd, Codec::Zstd));
        assert_eq!(codec_named(&za), Some(Codec::Zstd));
        assert_eq!(codec_named("a.sql.gz.age"), Some(Codec::Gzip));
        assert_eq!(codec_named("a.sql"), None);
        assert!(pza.encrypted);
        let gz = parse("app-20261125-175300.sql.gz", "app").unwrap();
        assert!(gz < pz && pz < pza, "ordered by time whatever the codec");
        assert_eq!(
            artifact_name(&za, None),
            ("app-20261125-175301".into(), "app".into())
        );
        for name in [
            "app-20261125-175300.sql.zstd",
            "app-20261125-175300.sql.zst.age.age",
            "app-20261125-175300.zst",
            "app-20261125-175300.sql.zst.manifest.json",
        ] {
            assert_eq!(parse(name, "app"), None, "{name}");
        }
    }

    #[test]
    fn refuses_other_files() {
        for name in [
            "app-20261125-175300.sqlite",
            "app-20261125-175300.TXT.gz",
            "app-20261125-175300..gz",
            "app-2-20261125-175300.sqlite.gz",
            "apple-20261125-175300.sqlite.gz",
            "app-20261125-1753000.sqlite.gz",
            "app-20261125-175300-1.sqlite.gz",
            "app-20261125-175300-02.sqlite.gz",
            "app-20261125-175300.sqlite.gz.manifest.json",
            "app-20261125-175300.sqlite.gz.age.manifest.json",
            "app-20261125-175300.sqlite.age",
            "app-20261125-175300.sqlite.gz.age.age",
            "notes.txt",
        ] {
            assert_eq!(parse(name, "app"), None, "{name}");
        }
    }

    #[test]
    fn parses_any_stem() {
        let (stem, b) = parse_any("my-app-20261125-175300-3.sql.gz").unwrap();
        assert_eq!(
            (stem.as_str(), b.stamp.as_str(), b.seq),
            ("my-app", "20261125-175300", 3)
        );
        let (stem, _) = parse_any("x-20261125-175300-20261125-175301.sqlite.gz").unwrap();
        assert_eq!(stem, "x-20261125-175300");
        assert_eq!(parse_any("-20261125-175300.sqlite.gz"), None);
        assert_eq!(
            parse_any("app-20261125-175300.sqlite.gz.manifest.json"),
            None
        );
    }

    #[test]
    fn tells_when_a_file_or_an_artifact_was_made() {
        let at = time::macros::datetime!(2026-11-25 17:53:00 UTC);
        assert_eq!(
            made_at("app-20261125-175300-2.sqlite.gz.age", "app"),
            Some(at)
        );
        assert_eq!(made_at("nightly-20261125-175300", "nightly"), Some(at));
        assert_eq!(made_at("nightly-20261125-175300-3", "nightly"), Some(at));
        assert_eq!(stamp(at), "20261125-175300");
        for none in [
            "nightly",
            "nightly-20261399-175300",
            "other-20261125-175300",
        ] {
            assert_eq!(made_at(none, "nightly"), None, "{none}");
        }
    }

    #[test]
    fn names_artifacts_and_recognises_only_their_own() {
        let named = |file, base| artifact_name(file, base);
        assert_eq!(
            named("app-20261125-175300-2.sqlite.gz", None),
            ("app-20261125-175300-2".into(), "app".into())
        );
        assert_eq!(
            named("app-20261125-175300.sql.gz", Some("nightly")),
            ("nightly-20261125-175300".into(), "nightly".into())
        );
        assert_eq!(
            named("app-20261125-175300.sql.gz.age", Some("nightly")),
            ("nightly-20261125-175300".into(), "nightly".into())
        );
        assert_eq!(named("x.sqlite.gz", None), ("x".into(), "x".into()));
        assert!(is_artifact_of("app-20261125-175300", "app"));
        assert!(is_artifact_of("app-20261125-175300-12", "app"));
        assert!(is_artifact_of("app", "app"));
        for other in [
            "app-staging-20261125-175300",
            "apple-20261125-175300",
            "app-20261125-175300-01",
            "app-20261125-175300-1",
            "app-20261125-175300-x",
            "app-2026112-175300",
            "app-",
        ] {
            assert!(!is_artifact_of(other, "app"), "{other}");
        }
    }

    #[test]
    fn sanitizes_hostile_names() {
        assert_eq!(sanitize_stem("my db\n\"x\""), "my_db__x_");
        assert_eq!(sanitize_stem("données"), "données");
        assert_eq!(sanitize_stem("../.."), "_");
        assert_eq!(sanitize_stem(""), "db");
    }
}
