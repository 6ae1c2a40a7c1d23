//! The integration tests: one binary (linked once), a module per area. Run one area with
//! `cargo test --test it AREA::`, for example `cargo test --test it backup::`.
//!
//! Every test runs the binary through [`support::dbbackup`] (a clean environment) and reads the
//! sample databases through [`support::data`] (`tests/data/`, copied before any write).

mod support;

mod action_scripts;
mod artifacts;
mod azure;
mod backup;
mod chaos_crash;
mod chaos_crash_mysql;
mod chaos_disk;
mod check;
mod drift;
mod encryption;
mod exit_codes;
mod fuzz_hostile_input;
mod gcs;
mod hostile_names;
mod interrupt;
mod job_summary;
mod many_dbs;
mod messages;
mod mysql;
mod notify;
mod pg_clients;
mod postgres;
mod restore_inspect;
mod restore_into;
mod restore_test;
mod retention;
mod s3;
mod scale;
mod secrets;
mod secrets_urls;
mod soak_writers;
mod sqlite_sql_dump;
mod store_conformance;
mod verbosity;
mod zstd;
