#!/usr/bin/env bash
# Writer throughput with and without backups: runs tests/it/soak_writers.rs on the release build,
# one test at a time (20 back-to-back backups each, under a SQLite writer in WAL and in
# rollback-journal mode, and under pgbench), and prints the figures the tests measure.
# Needs sqlite3, pgbench and the PostgreSQL server the tests use.
#
# Usage: bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DBBACKUP_SOAK_BACKUPS=20 cargo test --release --locked -q --test it soak_writers:: -- --nocapture --test-threads 1 2>&1 |
  grep -o 'soak .*' || { echo "the soak tests failed" >&2; exit 1; }
echo "$(nproc) cores, $(date -u +%Y-%m-%d)"
