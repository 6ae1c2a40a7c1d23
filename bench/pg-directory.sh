#!/usr/bin/env bash
# Side-by-side benchmark of `--format directory --jobs 2` (issue 16) on a pgbench database,
# same server, same run, runs interleaved so every command sees the same load; median of RUNS:
#   dbbackup --format directory --jobs 2   (pg_dump -Fd -j 2 --compress=0 in dbbackup's snapshot,
#                                           tarred and gzipped once, plus the manifest)
#   dbbackup --format custom               (one pg_dump worker, for scale)
#   pg_dump -Fd -j 2 + tar                 (pg_dump's own gzip per file, tar stored as is: the
#                                           target, and the other way to avoid compressing twice)
#   pg_dump -Fd -j 2 -Z0 + tar + pigz -6   (dbbackup's way without the manifest)
# Prints a Markdown table (wall time, peak RSS, output bytes) for BENCHMARKS.md.
#
# Usage: [BIN=...] bench/pg-directory.sh [SCALE=70] [RUNS=3]   (scale 70 is about 1 GB; needs a server
# at PGHOST:PGPORT, default 127.0.0.1:5432, user postgres; pgbench, pigz, GNU time; creates the
# database dbbackup_pgbench_SCALE once and keeps it)
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-70}
runs=${2:-3}
work=bench/out
mkdir -p "$work"
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
db=dbbackup_pgbench_$scale
if [ "$(psql -qtA -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
  psql -q -d postgres -c "CREATE DATABASE $db"
  pgbench -i -q -s "$scale" "$db"
fi
# BIN=target/debug/dbbackup measures another build (say so beside the figures).
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin=${BIN:-target/release/dbbackup}
url="postgres://$PGUSER@$PGHOST:$PGPORT/$db"

results="$work/results-pg-directory"
# shellcheck source=bench/lib.sh
. bench/lib.sh
: >"$results"
for _ in $(seq "$runs"); do
  timed "dbbackup --format directory --jobs 2" "$work/run/*.tar.gz" \
    "$bin backup $url --out $work/run --format directory --jobs 2"
  timed "dbbackup --format custom" "$work/run/*.dump.gz" "$bin backup $url --out $work/run --format custom"
  timed "pg_dump -Fd -j 2 + tar" "$work/run/x.tar" \
    "pg_dump -Fd -j 2 -f $work/run/x $db && tar -cf $work/run/x.tar -C $work/run x"
  timed "pg_dump -Fd -j 2 -Z0 + tar + pigz -6" "$work/run/x.tar.gz" \
    "pg_dump -Fd -j 2 -Z0 -f $work/run/x $db && tar -cf - -C $work/run x | pigz -6 > $work/run/x.tar.gz"
done

echo "database: $(psql -qtA -d "$db" -c "SELECT pg_database_size('$db')") bytes (pg_database_size, pgbench scale $scale), gzip level 6, $(nproc) cores, median of $runs runs"
echo
table "dbbackup --format directory --jobs 2" "dbbackup --format custom" "pg_dump -Fd -j 2 + tar" \
  "pg_dump -Fd -j 2 -Z0 + tar + pigz -6"
