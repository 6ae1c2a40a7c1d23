//! Where a PostgreSQL server is and how to log in: a `postgres://` URL with the gaps filled the
//! way libpq fills them (`PG*` variables, `~/.pgpass`), so that our own connection and the
//! `pg_dump`/`psql` we start reach the same database as the same user.
//!
//! The password is kept apart from everything that can be shown: [`ConnInfo::display`] and
//! [`ConnInfo::libpq_conninfo`] (what goes on a tool's command line) never carry it; tools get it
//! through `PGPASSWORD` in their environment only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// libpq's default port.
const DEFAULT_PORT: u16 = 5432;

/// How long a connection may take, handshake included, when nothing else says: libpq waits
/// forever, which in CI is a job stuck until its own limit.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Query parameters that are ours to interpret; every other one is passed to libpq untouched.
const OWN_PARAMS: [&str; 6] = ["host", "port", "user", "dbname", "password", "sslmode"];

#[derive(Clone)]
pub struct ConnInfo {
    /// Host name, IP address, or a Unix socket directory (starts with `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    password: Option<String>,
    /// libpq's `sslmode`; `None` leaves libpq's default (`prefer`).
    pub sslmode: Option<String>,
    /// Other libpq parameters from the query string (`connect_timeout`, `application_name`, ...).
    pub params: BTreeMap<String, String>,
    /// What this server is to us, for error messages: "source database" or "restore server".
    pub role: &'static str,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Whether a URL names a database itself (path or `dbname=`), rather than leaving it to the
/// defaults.
pub fn names_database(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| {
        !u.path().trim_start_matches('/').is_empty() || u.query_pairs().any(|(k, _)| k == "dbname")
    })
}

/// The same server and login (password included) with the maintenance database `postgres`:
/// where to connect to create a database that does not exist yet.
pub fn server_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .into_owned()
                .filter(|(k, _)| k != "dbname")
                .collect();
            u.set_path("/postgres");
            if u.query().is_some() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// Whether SOURCE names a PostgreSQL database.
pub fn is_postgres_url(source: &str) -> bool {
    source.starts_with("postgres://") || source.starts_with("postgresql://")
}

impl ConnInfo {
    /// Parses a `postgres://` / `postgresql://` URL; parts it leaves out come from `PGHOST`,
    /// `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGSSLMODE`, then `~/.pgpass`
    /// (`PGPASSFILE`), then libpq's defaults.
    pub fn parse(source: &str) -> Result<Self> {
        if crate::util::url_userinfo_ambiguous(source) {
            return Err(Error::Usage(crate::util::url_userinfo_refusal(
                source,
                "PGPASSWORD",
            )));
        }
        let url = Url::parse(source).map_err(|e| {
            Error::Usage(format!(
                "'{}' is not a valid PostgreSQL URL ({e}): write postgres://USER@HOST:PORT/DB; \
                 percent-encode special characters in the password, or set PGPASSWORD",
                redact(source)
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(Error::Usage(format!(
                "'{}' is not a postgres:// URL",
                redact(source)
            )));
        }
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let host = query
            .get("host")
            .cloned()
            .or_else(|| url.host_str().filter(|h| !h.is_empty()).map(unbracket))
            .or_else(|| env("PGHOST"))
            .unwrap_or_else(default_host);
        let port = match query
            .get("port")
            .cloned()
            .or(url.port().map(|p| p.to_string()))
        {
            Some(p) => parse_port(&p)?,
            None => env("PGPORT").map_or(Ok(DEFAULT_PORT), |p| parse_port(&p))?,
        };
        let user = query
            .get("user")
            .cloned()
            .or_else(|| Some(decode(url.username())).filter(|u| !u.is_empty()))
            .or_else(|| env("PGUSER"))
            .unwrap_or_else(os_user);
        let path_db = decode(url.path().trim_start_matches('/'));
        let dbname = query
            .get("dbname")
            .cloned()
            .or_else(|| Some(path_db).filter(|d| !d.is_empty()))
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let password = query
            .get("password")
            .cloned()
            .or_else(|| url.password().map(decode))
            .or_else(|| env("PGPASSWORD"));
        let params = query
            .iter()
            .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut info = ConnInfo {
            host,
            port,
            user,
            dbname,
            password,
            sslmode: query.get("sslmode").cloned().or_else(|| env("PGSSLMODE")),
            params,
            role: "source database",
        };
        if info.password.is_none() {
            info.password = pgpass_file().and_then(|f| pgpass_lookup(&f, &info));
        }
        Ok(info)
    }

    /// The same server and login, another database (the scratch database, or `postgres` to
    /// create and drop it).
    pub fn with_dbname(&self, dbname: &str) -> Self {
        Self {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }

    /// `postgres://user@host:port/db?sslmode=...`: for logs, errors and the manifest.
    /// A Unix socket directory goes in the query string (`postgres:///db?host=/run/...`), where
    /// the user goes too, as a URL without a host cannot carry one.
    pub fn display(&self) -> String {
        let socket = self.host.starts_with('/');
        let mut url = if socket {
            Url::parse("postgres:///")
        } else {
            Url::parse("postgres://placeholder")
        }
        .expect("static URL parses");
        if !socket && url.set_host(Some(&self.host)).is_ok() {
            let _ = url.set_port(Some(self.port));
            let _ = url.set_username(&self.user);
        }
        url.set_path(&self.dbname);
        {
            let mut q = url.query_pairs_mut();
            if socket {
                q.append_pair("host", &self.host);
                q.append_pair("port", &self.port.to_string());
                q.append_pair("user", &self.user);
            }
            if let Some(mode) = &self.sslmode {
                q.append_pair("sslmode", mode);
            }
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        let shown = url.to_string();
        shown.strip_suffix('?').unwrap_or(&shown).to_string()
    }

    /// A libpq keyword/value connection string without the password, for `--dbname`.
    pub fn libpq_conninfo(&self) -> String {
        let mut pairs = vec![
            ("host", self.host.clone()),
            ("port", self.port.to_string()),
            ("user", self.user.clone()),
            ("dbname", self.dbname.clone()),
        ];
        if let Some(mode) = &self.sslmode {
            pairs.push(("sslmode", mode.clone()));
        }
        pairs.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.clone())));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Environment for a libpq tool: only the password, which must never be on a command line.
    pub fn tool_env(&self) -> Vec<(&'static str, String)> {
        self.password
            .iter()
            .map(|p| ("PGPASSWORD", p.clone()))
            .collect()
    }

    /// Opens our own connection (the `postgres` crate), with TLS as `sslmode` asks (see
    /// [`super::tls`]).
    pub fn connect(&self, timeout: Option<Duration>) -> Result<postgres::Client> {
        if let Some(param) = ["sslcert", "sslkey"]
            .into_iter()
            .find(|p| self.params.contains_key(*p))
        {
            return Err(Error::Usage(format!(
                "{}: {param}: TLS client certificates are not supported by this dbbackup yet",
                self.display()
            )));
        }
        let (ssl_mode, tls) = self.tls()?;
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("dbbackup")
            .ssl_mode(ssl_mode);
        if let Some(p) = &self.password {
            config.password(p);
        }
        // The crate bounds only the TCP connect: a server that accepts and never answers would
        // hold the handshake forever. The whole of it is bounded here, on a thread of its own
        // (left behind, blocked, if the server never answers: the process is about to end).
        let limit = timeout
            .or_else(|| self.connect_timeout())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        config.connect_timeout(limit);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(config.connect(tls));
        });
        match receiver.recv_timeout(limit) {
            Ok(connected) => connected.map_err(|e| self.connect_error(e)),
            Err(_) => Err(self.error(format!(
                "the server at {}:{} accepted the connection but did not answer within {}s: is \
                 it a PostgreSQL server, and is it overloaded? (the limit is --timeout, \
                 connect_timeout in the URL or PGCONNECT_TIMEOUT; default {}s)",
                self.host,
                self.port,
                limit.as_secs_f64(),
                DEFAULT_CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The TLS mode and connector for this server (see [`super::tls`]).
    pub fn tls(
        &self,
    ) -> Result<(
        postgres::config::SslMode,
        tokio_postgres_rustls::MakeRustlsConnect,
    )> {
        super::tls::connector(
            self.sslmode.as_deref(),
            self.params.get("sslrootcert").map(String::as_str),
        )
    }

    /// `connect_timeout` of the URL, else `PGCONNECT_TIMEOUT`, as libpq reads them (seconds; 0
    /// or nothing: no limit of the user's, so the default; below 2: 2).
    fn connect_timeout(&self) -> Option<Duration> {
        let text = self
            .params
            .get("connect_timeout")
            .cloned()
            .or_else(|| env("PGCONNECT_TIMEOUT"))?;
        let secs: u64 = text.trim().parse().ok()?;
        (secs > 0).then(|| Duration::from_secs(secs.max(2)))
    }

    /// Says which of the usual causes it is: server down, wrong password, no such database.
    pub fn connect_error(&self, err: postgres::Error) -> Error {
        use postgres::error::SqlState;
        let reason = match err.code() {
            Some(c) if *c == SqlState::INVALID_PASSWORD => format!(
                "password authentication failed for user '{}': check the password \
                 (PGPASSWORD or ~/.pgpass)",
                self.user
            ),
            Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => format!(
                "the server refused user '{}' ({}): check the user name and pg_hba.conf",
                self.user,
                db_message(&err)
            ),
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => format!(
                "database '{}' does not exist on {}:{}: check the name in the URL",
                self.dbname, self.host, self.port
            ),
            Some(_) => db_message(&err),
            // The postgres crate's own wording when the server asks for a password.
            None if error_chain(&err).contains("password missing") => format!(
                "the server asks for a password for user '{}' and none was given: put it in the \
                 URL (percent-encoded), PGPASSWORD or ~/.pgpass",
                self.user
            ),
            None if error_chain(&err).contains("certificate") => format!(
                "the server's TLS certificate was refused ({}): check sslrootcert and sslmode",
                error_chain(&err)
            ),
            None => format!(
                "cannot connect to the server at {}:{} ({}): is it running and accepting \
                 connections? check the host and port",
                self.host,
                self.port,
                error_chain(&err)
            ),
        };
        self.error(reason)
    }

    /// An error about this server, named by its role.
    pub fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Source {
            what: self.role,
            path: self.display(),
            reason: reason.to_string(),
        }
    }
}

/// The server's own message for a database error, the error chain otherwise.
pub fn db_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        },
        None => error_chain(err),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

/// SOURCE with any password removed, for error messages about URLs we could not parse.
pub fn redact(source: &str) -> String {
    crate::util::redact_url(source)
}

fn parse_port(p: &str) -> Result<u16> {
    p.parse()
        .map_err(|_| Error::Usage(format!("'{p}' is not a port number")))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `[::1]` → `::1`: libpq and the `postgres` crate want the bare address.
fn unbracket(h: &str) -> String {
    h.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// libpq's default: the Unix socket directory when one exists, else localhost.
fn default_host() -> String {
    ["/var/run/postgresql", "/tmp"]
        .into_iter()
        .find(|d| Path::new(d).join(".s.PGSQL.5432").exists())
        .unwrap_or("localhost")
        .to_string()
}

fn os_user() -> String {
    env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "postgres".into())
}

fn pgpass_file() -> Option<PathBuf> {
    env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))
}

/// The password from a `.pgpass` file, as libpq looks it up: the first line whose
/// `host:port:database:user` fields match, `*` matching anything. Like libpq, a file that group
/// or others can read is ignored.
fn pgpass_lookup(path: &Path, info: &ConnInfo) -> Option<String> {
    if !private_file(path) {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = if info.host.starts_with('/') {
        "localhost"
    } else {
        info.host.as_str()
    };
    let wanted = [host, &info.port.to_string(), &info.dbname, &info.user].map(str::to_string);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(split_pgpass_line)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(&wanted)
                    .all(|(f, w)| f == "*" || f == w)
        })
        .map(|mut fields| fields.remove(4))
}

#[cfg(unix)]
fn private_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> bool {
    path.is_file()
}

/// Splits on unescaped `:`; `\:` and `\\` stand for `:` and `\`.
fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("never empty").extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_and_display_never_show_the_password() {
        let info =
            ConnInfo::parse("postgresql://app%40x:s3cr%3At@db.example:6543/my%20db?sslmode=prefer&application_name=ci")
                .unwrap();
        assert_eq!(
            (info.host.as_str(), info.port, info.user.as_str()),
            ("db.example", 6543, "app@x")
        );
        assert_eq!(info.dbname, "my db");
        assert_eq!(info.tool_env(), vec![("PGPASSWORD", "s3cr:t".to_string())]);
        for shown in [info.display(), info.libpq_conninfo(), format!("{info:?}")] {
            assert!(!shown.contains("s3cr"), "{shown}");
        }
        assert_eq!(
            info.display(),
            "postgres://app%40x@db.example:6543/my%20db?sslmode=prefer&application_name=ci"
        );
        assert!(info.libpq_conninfo().contains("dbname='my db'"));
        assert!(!redact("postgres://u:pw@h/d?password=pw2").contains("pw"));
        assert_eq!(
            server_url("postgres://u:pw@h:1/d?dbname=x&sslmode=require"),
            "postgres://u:pw@h:1/postgres?sslmode=require"
        );
    }

    #[test]
    fn unix_socket_urls_round_trip() {
        let url = "postgres:///shop?host=%2Fvar%2Frun%2Fpostgresql&port=5433&user=app";
        let info = ConnInfo::parse(url).unwrap();
        assert_eq!(
            (
                info.host.as_str(),
                info.port,
                info.user.as_str(),
                info.dbname.as_str()
            ),
            ("/var/run/postgresql", 5433, "app", "shop")
        );
        assert_eq!(info.display(), url);
        assert_eq!(ConnInfo::parse(&info.display()).unwrap().display(), url);
    }

    #[test]
    fn pgpass_file_is_searched_like_libpq_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:app:nope\ndb.example:6543:*:app:right\n*:*:*:*:fallback\n",
        )
        .unwrap();
        let info = ConnInfo::parse("postgres://app:x@db.example:6543/shop").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(
                pgpass_lookup(&file, &info),
                None,
                "a readable file is ignored"
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(pgpass_lookup(&file, &info).as_deref(), Some("right"));
        let other = info.with_dbname("x");
        let other = ConnInfo {
            user: "someone".into(),
            ..other
        };
        assert_eq!(pgpass_lookup(&file, &other).as_deref(), Some("fallback"));
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            split_pgpass_line(r"h:5432:*:u:pa\:ss\\"),
            ["h", "5432", "*", "u", r"pa:ss\"]
        );
    }
}
