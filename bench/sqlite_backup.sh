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
  timed dbbackup "$work/run/*.gz" "$bin backup $db --out $work/run --level $level"
  timed "dbbackup --quick" "$work/run/*.gz" "$bin backup $db --out $work/run --level $level --quick"
  timed sqlite3+gzip "$work/run/x.gz" "sqlite3 $db '.backup $work/run/x' && gzip -$level $work/run/x"
  timed sqlite3+pigz "$work/run/x.gz" "sqlite3 $db '.backup $work/run/x' && pigz -$level $work/run/x"
  # The same pipeline with the check dbbackup makes before it keeps a backup.
  timed sqlite3+check+pigz "$work/run/x.gz" \
    "sqlite3 $db '.backup $work/run/x' && sqlite3 $work/run/x 'pragma integrity_check' | grep -qx ok && pigz -$level $work/run/x"
done

echo "database: $(stat -c %s "$db") bytes, level $level, $(nproc) cores, median of $runs runs"
echo
table dbbackup "dbbackup --quick" sqlite3+gzip sqlite3+pigz sqlite3+check+pigz
