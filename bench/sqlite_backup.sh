#!/usr/bin/env bash
# Side-by-side benchmark: `dbbackup backup` against what a user would run instead,
#   sqlite3 DB ".backup x" && gzip -6 x      and      sqlite3 DB ".backup x" && pigz -6 x
# on one generated database, same machine, same run, runs interleaved; median of RUNS.
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
mkdir -p "$work"
db="$work/bench-${size}mb.db"
[ -f "$db" ] || bench/gen_sqlite.sh "$db" "$size" >/dev/null
cargo build --release --quiet
bin=target/release/dbbackup

# run NAME OUTPUT-FILE COMMAND...: one timed run; appends "name wall_s rss_kb bytes" to results.
run() {
  local name=$1 output=$2
  shift 2
  rm -rf "$work/run" && mkdir -p "$work/run"
  sync
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$*" >/dev/null 2>"$work/stderr" ||
    { cat "$work/stderr"; exit 1; }
  local bytes
  bytes=$(stat -c %s $output)
  echo "$name $(cat "$work/time") $bytes" >>"$work/results"
}

: >"$work/results"
for _ in $(seq "$runs"); do
  run dbbackup "$work/run/*.gz" "$bin backup $db --out $work/run --level $level"
  run sqlite3+gzip "$work/run/x.gz" "sqlite3 $db '.backup $work/run/x' && gzip -$level $work/run/x"
  run sqlite3+pigz "$work/run/x.gz" "sqlite3 $db '.backup $work/run/x' && pigz -$level $work/run/x"
done

echo "database: $(stat -c %s "$db") bytes, level $level, $(nproc) cores, median of $runs runs"
echo
echo "| command | wall (s) | peak RSS (MiB) | output (bytes) |"
echo "| --- | ---: | ---: | ---: |"
for name in dbbackup sqlite3+gzip sqlite3+pigz; do
  awk -v n="$name" '$1 == n { print $2, $3, $4 }' "$work/results" | sort -n |
    awk -v n="$name" '{ w[NR] = $1; r[NR] = $2; b[NR] = $3 }
      END { m = int((NR + 1) / 2); printf "| %s | %.2f | %.1f | %d |\n", n, w[m], r[m] / 1024, b[m] }'
done
