#!/usr/bin/env bash
# Side-by-side benchmark: `dbbackup backup` against what a user would run instead,
#   sqlite3 DB ".backup x" && gzip -6 x      and      sqlite3 DB ".backup x" && pigz -6 x
# and the pigz pipeline with the integrity check dbbackup also makes, on one generated database,
# same machine, same run, runs interleaved; median of RUNS.
# Prints a Markdown table (wall time, peak RSS, output bytes) for BENCHMARKS.md.
#
# Usage: bench/sqlite_backup.sh [SIZE_MB=200] [RUNS=3] [LEVEL=6]
# Needs: sqlite3, gzip, pigz, GNU time (/usr/bin/time); builds dbbackup --release.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
runs=${2:-3}
level=${3:-6}
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_sqlite "$size"

results="$work/results-sqlite"
: >"$results"
for _ in $(seq "$runs"); do
  sqlite_backup_round "" "$db" "$level"
done

echo "database: $(stat -c %s "$db") bytes, level $level, $(nproc) cores, median of $runs runs"
echo
table dbbackup "dbbackup --quick" sqlite3+gzip sqlite3+pigz sqlite3+check+pigz
