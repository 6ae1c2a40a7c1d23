//! Where a MySQL or MariaDB server is and how to log in: a `mysql://` (or `mariadb://`) URL
//! with the gaps filled the way the clients fill them (`MYSQL_HOST`, `MYSQL_TCP_PORT`,
//! `MYSQL_UNIX_PORT`, `USER`, `MYSQL_PWD`, the `[client]` group of `~/.my.cnf`), so that our
//! own connection and the `mariadb-dump`/`mariadb` we start reach the same database as the
//! same user.
//!
//! The password is kept apart from everything that can be shown: [`ConnInfo::display`] and
//! [`ConnInfo::tool_args`] never carry it. Tools get it through [`OptionFile`], a private
//! `--defaults-extra-file` (mode 0600, in a private directory registered with
//! [`crate::cleanup`]), never on their command line, where any user could read it with `ps`,
//! and never in their environment either (`MYSQL_PWD` is deprecated by MySQL 8).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::cleanup::TempDir;
use crate::error::{Error, Result};

/// The clients' default port.
const DEFAULT_PORT: u16 = 3306;

/// Whether SOURCE names a MySQL or MariaDB database.
pub fn is_mysql_url(source: &str) -> bool {
    source.starts_with("mysql://") || source.starts_with("mariadb://")
}

#[derive(Clone)]
pub struct ConnInfo {
    pub host: String,
    pub port: u16,
    /// A Unix socket path (`?socket=`): when set, host and port are not used.
    pub socket: Option<String>,
    pub user: String,
    /// Empty when the URL names no database (a server for restore tests).
    pub dbname: String,
    password: Option<String>,
    /// What this server is to us, for error messages: "source database" or "restore server".
    pub role: &'static str,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl ConnInfo {
    /// Parses a `mysql://` / `mariadb://` URL; parts it leaves out come from the variables the
    /// clients read, then the `[client]` group of `~/.my.cnf`, then the clients' defaults.
    pub fn parse(source: &str) -> Result<Self> {
        if crate::util::url_userinfo_ambiguous(source) {
            return Err(Error::Usage(crate::util::url_userinfo_refusal(
                source,
                "MYSQL_PWD",
            )));
        }
        let url = Url::parse(source).map_err(|e| {
            Error::Usage(format!(
                "'{}' is not a valid MySQL URL ({e}): write mysql://USER@HOST:PORT/DB; \
                 percent-encode special characters in the password, or set MYSQL_PWD",
                redact(source)
            ))
        })?;
        if !matches!(url.scheme(), "mysql" | "mariadb") {
            return Err(Error::Usage(format!(
                "'{}' is not a mysql:// URL",
                redact(source)
            )));
        }
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        if let Some(key) = query
            .keys()
            .find(|k| !matches!(k.as_str(), "socket" | "user" | "password"))
        {
            return Err(Error::Usage(format!(
                "{}: unknown parameter '{key}' (known: socket, user, password)",
                redact(source)
            )));
        }
        let cnf = my_cnf();
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .or_else(|| env("MYSQL_HOST"))
            .or_else(|| cnf.get("host").cloned())
            .unwrap_or_else(|| "localhost".into());
        let port = match url.port() {
            Some(p) => p,
            None => match env("MYSQL_TCP_PORT").or_else(|| cnf.get("port").cloned()) {
                Some(p) => p
                    .parse()
                    .map_err(|_| Error::Usage(format!("'{p}' is not a port number")))?,
                None => DEFAULT_PORT,
            },
        };
        let socket = query
            .get("socket")
            .cloned()
            .or_else(|| {
                (url.host_str().unwrap_or("").is_empty()).then(|| env("MYSQL_UNIX_PORT"))?
            })
            .filter(|s| !s.is_empty());
        let user = query
            .get("user")
            .cloned()
            .or_else(|| Some(decode(url.username())).filter(|u| !u.is_empty()))
            .or_else(|| cnf.get("user").cloned())
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .unwrap_or_else(|| "root".into());
        let dbname = decode(url.path().trim_start_matches('/'));
        let password = query
            .get("password")
            .cloned()
            .or_else(|| url.password().map(decode))
            .or_else(|| env("MYSQL_PWD"))
            .or_else(|| cnf.get("password").cloned());
        Ok(ConnInfo {
            host,
            port,
            socket,
            user,
            dbname,
            password,
            role: "source database",
        })
    }

    /// The same server and login, another database (`""`: none).
    pub fn with_dbname(&self, dbname: &str) -> Self {
        Self {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }

    /// `mysql://user@host:port/db` (`?socket=` for a socket): for logs, errors and the manifest.
    pub fn display(&self) -> String {
        let mut url = Url::parse("mysql://placeholder").expect("static URL parses");
        let host_ok = url.set_host(Some(&self.host)).is_ok();
        if host_ok {
            let _ = url.set_port(Some(self.port));
            let _ = url.set_username(&self.user);
        }
        url.set_path(&self.dbname);
        if let Some(socket) = &self.socket {
            url.query_pairs_mut().append_pair("socket", socket);
        }
        url.to_string()
    }

    /// `host:port` or the socket, for messages.
    pub fn endpoint(&self) -> String {
        match &self.socket {
            Some(s) => s.clone(),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// `tool` (the client or dump tool) for this server, its password only through `options`
    /// (the private option file), never its environment or command line.
    pub fn command(
        &self,
        tool: &crate::engine::tool::Tool,
        options: &OptionFile,
    ) -> std::process::Command {
        let mut command = tool.command();
        command
            .env_remove("MYSQL_PWD")
            .arg(options.arg())
            .args(self.tool_args());
        command
    }

    /// Arguments for a client tool, after its `--defaults-extra-file`: where and who, never
    /// the password.
    pub fn tool_args(&self) -> Vec<String> {
        let mut args = vec![format!("--user={}", self.user)];
        match &self.socket {
            Some(s) => args.push(format!("--socket={s}")),
            None => {
                args.push(format!("--host={}", self.host));
                args.push(format!("--port={}", self.port));
                args.push("--protocol=TCP".into());
            }
        }
        args
    }

    /// Opens our own connection, with the session settings the descriptions depend on.
    pub fn connect(&self, timeout: Option<Duration>) -> Result<mysql::Conn> {
        let mut opts = mysql::OptsBuilder::new()
            .user(Some(&self.user))
            .pass(self.password.as_deref())
            .db_name(Some(&self.dbname).filter(|d| !d.is_empty()))
            .prefer_socket(false)
            .tcp_connect_timeout(Some(timeout.unwrap_or(Duration::from_secs(30))));
        opts = match &self.socket {
            Some(s) => opts.socket(Some(s)),
            None => opts.ip_or_hostname(Some(&self.host)).tcp_port(self.port),
        };
        // The TCP connect is bounded by the driver; the handshake after it is bounded here, on a
        // thread of its own (left behind, blocked, if the server never answers).
        let limit = timeout.unwrap_or(Duration::from_secs(30));
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(mysql::Conn::new(opts));
        });
        match receiver.recv_timeout(limit) {
            Ok(connected) => connected.map_err(|e| self.connect_error(e)),
            Err(_) => Err(self.error(format!(
                "the server at {} accepted the connection but did not answer within {}s: is it \
                 a MySQL or MariaDB server, and is it overloaded? (the limit is --timeout; \
                 default 30s)",
                self.endpoint(),
                limit.as_secs_f64()
            ))),
        }
    }

    /// Says which of the usual causes it is: server down, wrong password, no such database.
    pub fn connect_error(&self, err: mysql::Error) -> Error {
        let reason = match &err {
            mysql::Error::MySqlError(e) if e.code == 1045 => format!(
                "access denied for user '{}': check the user and the password (in the URL or \
                 MYSQL_PWD)",
                self.user
            ),
            mysql::Error::MySqlError(e) if e.code == 1049 => format!(
                "database '{}' does not exist on {}: check the name in the URL",
                self.dbname,
                self.endpoint()
            ),
            mysql::Error::MySqlError(e) if e.code == 1044 => format!(
                "user '{}' may not use database '{}': {}",
                self.user, self.dbname, e.message
            ),
            mysql::Error::MySqlError(e) => e.message.clone(),
            other => format!(
                "cannot connect to the server at {} ({other}): is it running and accepting \
                 connections? check the host and port",
                self.endpoint()
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

    /// Writes the private option file a tool reads the password from.
    pub fn option_file(&self) -> Result<OptionFile> {
        OptionFile::write(self.password.as_deref())
    }
}

/// The server's own message for a query error, the error otherwise.
pub fn db_message(err: &mysql::Error) -> String {
    match err {
        mysql::Error::MySqlError(e) => format!("{} (error {})", e.message, e.code),
        other => other.to_string(),
    }
}

/// The MySQL error code, when the server sent one.
pub fn error_code(err: &mysql::Error) -> Option<u16> {
    match err {
        mysql::Error::MySqlError(e) => Some(e.code),
        _ => None,
    }
}

/// A `--defaults-extra-file` holding only the password, mode 0600 in a private directory
/// (0700) that is removed when this is dropped and on Ctrl-C/SIGTERM. It must be a tool's
/// first argument: the clients read option-file options only there.
pub struct OptionFile {
    dir: TempDir,
}

impl OptionFile {
    fn write(password: Option<&str>) -> Result<Self> {
        // Private (0700) from its creation, and removed on every path.
        let dir = TempDir::new_in(&std::env::temp_dir(), ".dbbackup-mysql-")?;
        let path = dir.path().join("client.cnf");
        let mut text = String::from("[client]\n");
        if let Some(p) = password {
            text.push_str(&format!("password=\"{}\"\n", escape_option(p)));
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::output("write the private option file", &path, e))?;
        Ok(Self { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("client.cnf")
    }

    /// `--defaults-extra-file=PATH`, the first argument of every tool we start.
    pub fn arg(&self) -> String {
        format!("--defaults-extra-file={}", self.path().display())
    }
}

/// Escapes a value for a double-quoted option-file value (the clients unescape `\\`, `\"`,
/// `\n`, `\t`, `\r`, `\b`, `\s`).
fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// SOURCE with any password removed, for messages about URLs.
pub fn redact(source: &str) -> String {
    crate::util::redact_url(source)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The `[client]` group of `~/.my.cnf`, as the clients read it (simple `key=value` lines,
/// quotes removed); the tools read the file themselves too.
fn my_cnf() -> BTreeMap<String, String> {
    let Some(home) = env("HOME") else {
        return BTreeMap::new();
    };
    let Ok(text) = std::fs::read_to_string(Path::new(&home).join(".my.cnf")) else {
        return BTreeMap::new();
    };
    parse_client_group(&text)
}

fn parse_client_group(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_client = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_client = line == "[client]";
            continue;
        }
        if !in_client || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            out.insert(k.trim().replace('_', "-"), v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_and_display_never_show_the_password() {
        let info = ConnInfo::parse("mysql://app%40x:s3cr%3At@db.example:3307/my%20db").unwrap();
        assert_eq!(
            (info.host.as_str(), info.port, info.user.as_str()),
            ("db.example", 3307, "app@x")
        );
        assert_eq!(info.dbname, "my db");
        assert_eq!(info.password.as_deref(), Some("s3cr:t"));
        for shown in [
            info.display(),
            info.tool_args().join(" "),
            format!("{info:?}"),
        ] {
            assert!(!shown.contains("s3cr"), "{shown}");
        }
        assert_eq!(info.display(), "mysql://app%40x@db.example:3307/my%20db");
        assert!(!redact("mariadb://u:pw@h/d?password=pw2").contains("pw"));
        let sock = ConnInfo::parse("mariadb://root@localhost/shop?socket=/run/mysqld/mysqld.sock")
            .unwrap();
        assert_eq!(sock.socket.as_deref(), Some("/run/mysqld/mysqld.sock"));
        assert!(
            sock.tool_args()
                .contains(&"--socket=/run/mysqld/mysqld.sock".into())
        );
        assert!(ConnInfo::parse("mysql://h/db?sslmode=x").is_err());
    }

    #[test]
    fn option_file_is_private_and_escaped() {
        let info = ConnInfo::parse("mysql://u:a%22b%5Cc@h/d").unwrap();
        let file = info.option_file().unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(text, "[client]\npassword=\"a\\\"b\\\\c\"\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir = std::fs::metadata(file.path().parent().unwrap()).unwrap();
            assert_eq!(dir.permissions().mode() & 0o077, 0);
        }
        let dir = file.path().parent().unwrap().to_path_buf();
        drop(file);
        assert!(!dir.exists());
    }

    #[test]
    fn my_cnf_client_group_is_read() {
        let cnf = parse_client_group(
            "[mysqld]\nport=1\n[client]\nuser = app\npassword=\"p w\"\n# x\n[mysql]\nhost=z\n",
        );
        assert_eq!(cnf.get("user").map(String::as_str), Some("app"));
        assert_eq!(cnf.get("password").map(String::as_str), Some("p w"));
        assert!(!cnf.contains_key("port") && !cnf.contains_key("host"));
    }
}
