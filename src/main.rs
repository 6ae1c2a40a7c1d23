//! The `dbbackup` binary: parse the command line, call the library, map errors to exit codes.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    dbbackup::process::configure();
    let runner = dbbackup::runner::Runner::detect();
    if runner.is_active() {
        for secret in dbbackup::runner::known_secrets(std::env::args()) {
            runner.mask(&secret);
        }
    }
    // Before the argument parser, which quotes a value it cannot place: `--encrypt-to "$(cat
    // private-key)"` would print the whole key.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Err(err) = dbbackup::archive::encrypt::refuse_secret_key_args(&args) {
        let line = format!("error: {err}\n");
        let _ = dbbackup::runner::OneLinePerEvent(std::io::stderr()).write_all(line.as_bytes());
        runner.error("dbbackup failed", &err.to_string());
        return ExitCode::from(err.exit_code());
    }
    // The parser quotes a value it refuses (`--keep postgres://u:PASSWORD@…`): its message is
    // shown with every secret of the command line replaced, on a terminal too.
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            let mut text = err.render().to_string();
            for secret in dbbackup::runner::known_secrets(args.iter().cloned()) {
                text = text.replace(&secret, "***");
            }
            let _ = std::io::stderr().write_all(text.as_bytes());
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level())
        // Teed: a `--ping` failure carries the last lines logged.
        .with_writer(|| {
            // The bar on screen, if any, is hidden while a line prints.
            dbbackup::runner::OneLinePerEvent(dbbackup::notify::tail::Tee(
                dbbackup::progress::Suspend(std::io::stderr()),
            ))
        })
        .without_time()
        .with_target(false)
        // Colours only on a terminal: `backup A B` names each line's database in a span,
        // which would otherwise carry escape codes into files and CI logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_level(false)
        .init();
    // Before any command makes a scratch resource: Ctrl-C and SIGTERM remove them all.
    let ran = dbbackup::cleanup::install()
        .map_err(anyhow::Error::from)
        .and_then(|()| cli::run(cli));
    // An interrupt being handled ends the process with 130, whatever the command made of it.
    dbbackup::cleanup::checkpoint();
    match ran {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // One line, like the log events: the error may quote a hostile file or table name.
            let line = format!("error: {err:#}\n");
            let _ = dbbackup::runner::OneLinePerEvent(std::io::stderr()).write_all(line.as_bytes());
            // Loud on the run's page too: an annotation, not only a red step.
            runner.error("dbbackup failed", &format!("{err:#}"));
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
