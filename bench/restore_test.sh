#!/usr/bin/env bash
# Side-by-side benchmark of proving a backup restores:
#   dbbackup restore-test B     (archive sha256, full integrity_check, foreign_key_check, schema,
#                                per-table row counts and content checksums)
#   gunzip -c B > x.db && sqlite3 x.db 'pragma integrity_check'   (what a user would script)
# on a backup of the generated database of bench/sqlite_backup.sh; runs interleaved, median.
#
# Usage: bench/restore_test.sh [SIZE_MB=200] [RUNS=3] [SHAPE=plain|indexed]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
runs=${2:-3}
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_sqlite "$size" "${3:-}"
rm -rf "$work/rt" && "$bin" backup "$db" --out "$work/rt" 2>/dev/null
archive=$(ls "$work"/rt/*.gz)

results="$work/results-restore"
: >"$results"
for _ in $(seq "$runs"); do
  restore_test_round "" "$archive"
done

echo "archive: $(stat -c %s "$archive") bytes of a $(stat -c %s "$db")-byte database, $(nproc) cores, median of $runs runs"
echo
table "dbbackup restore-test" "gunzip + integrity_check"
