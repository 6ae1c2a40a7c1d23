//! The PostgreSQL server the tests use (127.0.0.1:5432, user postgres, trust auth), and a
//! database of a test's own.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const HOST: &str = "127.0.0.1";
pub const PORT: &str = "5432";

/// Whether the server answers; under CI=true it must.
pub fn server_up() -> bool {
    let up = Command::new("psql")
        .args([
            "-h", HOST, "-p", PORT, "-U", "postgres", "-d", "postgres", "-Atc", "SELECT 1",
        ])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL at {HOST}:{PORT} is unreachable and CI=true: the Postgres tests must run"
        );
        eprintln!("skipping: no PostgreSQL at {HOST}:{PORT}");
    }
    up
}

pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", HOST, "-p", PORT, "-U", "postgres", "-d", db])
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql -c {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A database of the test's own, dropped at the end.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(tag: &str) -> Self {
        let db = Self::reserve(tag);
        psql("postgres", &format!("CREATE DATABASE {}", db.name));
        db
    }

    /// A name of the test's own for a database that a command under test creates; dropped at
    /// the end like the others.
    pub fn reserve(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "dbbackup_test_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@{HOST}:{PORT}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h", HOST, "-p", PORT, "-U", "postgres", "-d", "postgres", "-Xqc",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// `pgbench` against the test server; `args` after the connection options.
pub fn pgbench(args: &[&str]) -> Command {
    let mut cmd = Command::new("pgbench");
    cmd.args(["-h", HOST, "-p", PORT, "-U", "postgres"])
        .args(args);
    cmd
}

impl TestDb {
    /// A database initialised by `pgbench -i` at `scale` (100,000 accounts per unit).
    pub fn pgbench(tag: &str, scale: u32) -> Self {
        let db = Self::new(tag);
        let init = pgbench(&["-i", "-s", &scale.to_string(), "-q", &db.name])
            .output()
            .expect("pgbench runs (Debian package postgresql-15 or postgresql-contrib)");
        assert!(
            init.status.success(),
            "pgbench -i: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        db
    }
}

/// A port in front of the test server that asks every client for a password (cleartext, the
/// simplest exchange libpq and the `postgres` crate both speak) and refuses a wrong or missing
/// one; a right one is passed on to the trusting server. The test server trusts everyone, so
/// without this a password in a URL is accepted and ignored and its loss goes unnoticed.
pub struct PasswordProxy {
    pub port: u16,
}

impl PasswordProxy {
    pub fn start(password: &'static str) -> PasswordProxy {
        let listener = std::net::TcpListener::bind((HOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve(client, password);
                });
            }
        });
        PasswordProxy { port }
    }
}

fn serve(mut client: std::net::TcpStream, password: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let read_u32 = |s: &mut std::net::TcpStream| -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    };
    // SSLRequest / GSSENCRequest: "N", then the client sends its startup message in the clear.
    let startup = loop {
        let len = read_u32(&mut client)? as usize;
        let mut body = vec![0u8; len - 4];
        client.read_exact(&mut body)?;
        let code = u32::from_be_bytes(body[..4].try_into().unwrap());
        if code == 80_877_103 || code == 80_877_104 {
            client.write_all(b"N")?;
            continue;
        }
        let mut message = (len as u32).to_be_bytes().to_vec();
        message.extend(body);
        break message;
    };
    let mut upstream = std::net::TcpStream::connect((HOST, PORT.parse::<u16>().unwrap()))?;
    if u32::from_be_bytes(startup[4..8].try_into().unwrap()) != 196_608 {
        // A cancel request: passed on as it is.
        return upstream.write_all(&startup);
    }
    client.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])?;
    let mut kind = [0u8; 1];
    client.read_exact(&mut kind)?;
    let len = read_u32(&mut client)? as usize;
    let mut given = vec![0u8; len - 4];
    client.read_exact(&mut given)?;
    if kind[0] != b'p' || given.strip_suffix(&[0]) != Some(password.as_bytes()) {
        let mut fields = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "28P01"),
            (b'M', "password authentication failed"),
        ] {
            fields.push(tag);
            fields.extend(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend((fields.len() as u32 + 4).to_be_bytes());
        message.extend(fields);
        return client.write_all(&message);
    }
    upstream.write_all(&startup)?;
    let (mut up_read, mut client_write) = (upstream.try_clone()?, client.try_clone()?);
    let back = std::thread::spawn(move || std::io::copy(&mut up_read, &mut client_write));
    let _ = std::io::copy(&mut client, &mut upstream);
    let _ = upstream.shutdown(std::net::Shutdown::Both);
    let _ = back.join();
    Ok(())
}
