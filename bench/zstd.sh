#!/usr/bin/env bash
# Side-by-side benchmark of `--compression zstd` (issue 19), on the generated database of
# bench/sqlite_backup.sh, same machine, same run, runs interleaved so both sides see the same
# load; median of RUNS:
#   backup:        dbbackup backup --compression zstd   against   sqlite3 DB ".backup x" && zstd -T0 -3 x
#                  (and dbbackup's default gzip, for scale)
#   restore test:  dbbackup restore-test of the zstd backup   against   of the gzip backup
# Prints Markdown tables (wall time, peak RSS, output bytes) for BENCHMARKS.md.
#
# Usage: bench/zstd.sh [SIZE_MB=200] [RUNS=5]
# Needs: sqlite3, zstd, GNU time (/usr/bin/time); builds dbbackup --release.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
runs=${2:-5}
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_sqlite "$size"

results="$work/results-zstd-backup"
: >"$results"
for _ in $(seq "$runs"); do
  zstd_backup_round "" "$db"
  timed "dbbackup (gzip -6)" "$work/run/*.gz" "$bin backup $db --out $work/run"
done
echo "database: $(stat -c %s "$db") bytes, $(nproc) cores, median of $runs runs"
echo
table "dbbackup --compression zstd" "sqlite3 .backup + zstd -T0 -3" "dbbackup (gzip -6)"
echo

# The two backups to restore-test, made once.
rm -rf "$work/rt-zstd" "$work/rt-gzip"
"$bin" backup "$db" --out "$work/rt-zstd" --compression zstd 2>/dev/null
"$bin" backup "$db" --out "$work/rt-gzip" 2>/dev/null
zst=$(ls "$work"/rt-zstd/*.zst)
gz=$(ls "$work"/rt-gzip/*.gz)
results="$work/results-zstd-restore"
: >"$results"
for _ in $(seq "$runs"); do
  timed "restore-test zstd" - "$bin restore-test $zst"
  timed "restore-test gzip" - "$bin restore-test $gz"
done
echo "archives: zstd $(stat -c %s "$zst") bytes, gzip $(stat -c %s "$gz") bytes, median of $runs runs"
echo
table "restore-test zstd" "restore-test gzip"
