#!/usr/bin/env bash
# Two dbbackup binaries side by side on one SQLite database: backup (gzip), then restore-test of
# that backup, rounds interleaved so both see the same load, median of RUNS, with what a user
# would run instead (`sqlite3 .backup` + `pigz -6`, and `gunzip` + `PRAGMA integrity_check`) for
# scale. For a change's before and after: build each, copy the binaries aside, run this.
#
# Usage: bench/ab.sh OLD_BINARY NEW_BINARY SIZE_MB   (RUNS=3 by default)
# The database is bench/gen_sqlite.sh's `indexed` shape (foreign keys, a UNIQUE text index,
# BLOBs), made once under bench/out. Needs sqlite3, pigz, GNU time; SIZE_MB x 3.5 free there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# = 3 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY SIZE_MB" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2") size=$3 runs=${RUNS:-3}
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
mkdir -p "$work"
db="$work/bench-${size}mb-indexed.db"
[ -f "$db" ] || bench/gen_sqlite.sh "$db" "$size" indexed >/dev/null
results="$work/results-ab"
: >"$results"
for run in $(seq "$runs"); do
  echo "run $run of $runs" >&2
  timed "sqlite3 .backup + pigz -6" "$work/run/b.gz" \
    "sqlite3 '$db' '.backup $work/run/b.db' && pigz -6 -c '$work/run/b.db' >'$work/run/b.gz'"
  cp "$work/run/b.gz" "$work/ab-baseline.gz"
  timed "gunzip + integrity_check" - \
    "gunzip -c '$work/ab-baseline.gz' >'$work/run/r.db' && sqlite3 '$work/run/r.db' 'PRAGMA integrity_check' | grep -qx ok"
  for which in old new; do
    bin=$old
    [ $which = new ] && bin=$new
    timed "backup ($which)" "$work/run/out/*.gz" "'$bin' backup '$db' --out '$work/run/out' -q"
    rm -rf "$work/ab-$which" && mv "$work/run/out" "$work/ab-$which"
    timed "restore-test ($which)" - "'$bin' restore-test $work/ab-$which/*.gz -q"
  done
done
rm -f "$work/ab-baseline.gz"
rm -rf "$work/ab-old" "$work/ab-new"
echo "## bench/ab.sh, $(du -m "$db" | cut -f1) MiB \`indexed\` database, median of $runs"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo
table "sqlite3 .backup + pigz -6" "backup (old)" "backup (new)" \
  "gunzip + integrity_check" "restore-test (old)" "restore-test (new)"
