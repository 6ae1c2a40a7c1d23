//! `pg-client`: which `pg_dump` dbbackup would run for a PostgreSQL server, found the way a
//! backup finds it. The Action's `postgres-client` step asks this before dumping, and installs
//! a client only when none fits; it prints `key=value` lines a script reads.

use std::time::Duration;

use dbbackup::engine::postgres;
use dbbackup::error::exit;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["server", "major"])))]
pub struct Args {
    /// A postgres:// URL: its server's major release is asked over the connection (the
    /// password as for a backup: PGPASSWORD, ~/.pgpass).
    #[arg(value_name = "SERVER")]
    server: Option<String>,
    /// A major release (`17`) instead of a server to ask.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(10..100))]
    major: Option<u32>,
    /// Give up connecting after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

/// Prints `server=` (with SERVER), `major=`, then `pg_dump=` and `version=` of the client
/// chosen. When none fits, the `major=` line is printed all the same and the error (exit 7)
/// names the clients found and the command that installs one.
pub fn run(args: Args) -> anyhow::Result<u8> {
    // A closed pipe (`| head -n 2`) is not an error worth a panic.
    let say = |line: String| {
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    };
    let major = match (&args.server, args.major) {
        (Some(server), _) => {
            if !postgres::is_postgres_url(server) {
                return Err(dbbackup::Error::Usage(format!(
                    "pg-client asks a PostgreSQL server: give a postgres:// URL, not '{}'",
                    dbbackup::engine::redact(server)
                ))
                .into());
            }
            let timeout = Some(Duration::from_secs(args.timeout));
            let (version, num) = postgres::server_version(server, timeout)?;
            say(format!("server={version}"));
            num / 10000
        }
        (None, Some(major)) => major,
        (None, None) => unreachable!("clap requires SERVER or --major"),
    };
    say(format!("major={major}"));
    let (path, version) = postgres::pg_dump_for_major(major)?;
    say(format!("pg_dump={}", path.display()));
    say(format!("version={version}"));
    Ok(exit::OK)
}
