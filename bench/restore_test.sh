#!/usr/bin/env bash
# Side-by-side benchmark of proving a backup restores:
#   dbbackup restore-test B     (archive sha256, full integrity_check, foreign_key_check, schema,
#                                per-table row counts and content checksums)
#   gunzip -c B > x.db && sqlite3 x.db 'pragma integrity_check'   (what a user would script)
# on a backup of the generated database of bench/sqlite_backup.sh; runs interleaved, median.
#
# Usage: bench/restore_test.sh [SIZE_MB=200] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
runs=${2:-3}
work=bench/out
mkdir -p "$work"
db="$work/bench-${size}mb.db"
[ -f "$db" ] || bench/gen_sqlite.sh "$db" "$size" >/dev/null
cargo build --release --quiet
bin=target/release/dbbackup
rm -rf "$work/rt" && "$bin" backup "$db" --out "$work/rt" 2>/dev/null
archive=$(ls "$work"/rt/*.gz)

run() {
  local name=$1
  shift
  rm -f "$work/x.db"
  sync
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$*" >/dev/null 2>"$work/stderr" ||
    { cat "$work/stderr"; exit 1; }
  echo "$name $(cat "$work/time")" >>"$work/results-rt"
}

: >"$work/results-rt"
for _ in $(seq "$runs"); do
  run "dbbackup restore-test" "$bin restore-test $archive"
  run "gunzip + integrity_check" "gunzip -c $archive > $work/x.db && sqlite3 $work/x.db 'pragma integrity_check'"
done
rm -f "$work/x.db"

echo "archive: $(stat -c %s "$archive") bytes of a $(stat -c %s "$db")-byte database, $(nproc) cores, median of $runs runs"
echo
echo "| command | wall (s) | peak RSS (MiB) |"
echo "| --- | ---: | ---: |"
for name in "dbbackup restore-test" "gunzip + integrity_check"; do
  grep -F "$name " "$work/results-rt" | sed "s/^$name //" | sort -n |
    awk -v n="$name" '{ w[NR] = $1; r[NR] = $2 }
      END { m = int((NR + 1) / 2); printf "| %s | %.2f | %.1f |\n", n, w[m], r[m] / 1024 }'
done
