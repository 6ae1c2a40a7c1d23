#!/usr/bin/env bash
# Side-by-side benchmark of `--format directory --jobs 2` (issue 16) on a pgbench database,
# same server, same run, runs interleaved so every command sees the same load; median of RUNS:
#   dbbackup --format directory --jobs 2   (pg_dump -Fd -j 2 --compress=6 in dbbackup's
#                                           snapshot, each worker gzipping its files, the tar
#                                           stored as it is, plus the manifest, its checksums
#                                           from the data files as they are written)
#   dbbackup ... --compression zstd        (pg_dump -Fd -j 2 --compress=0, the tar through zstd:
#                                           the way every format took before)
#   pg_dump -Fd -j 2 + tar                 (pg_dump's own gzip per file, tar stored as is: the
#                                           target)
#   pg_dump -Fd -j 2 -Z0 + tar + pigz -6   (compressing once over the tar, without the manifest)
# The gzip row runs with -v: its "described the snapshot in", "pg_dump ran" and "summed the data
# files … after pg_dump" lines (the manifest's queries beside pg_dump, and what hashing pg_dump's
# data files added after it ended) are printed per round after the table.
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
shares="$work/shares-pg-directory"
: >"$shares"
for _ in $(seq "$runs"); do
  timed "dbbackup --format directory --jobs 2" "$work/run/*.tar" \
    "$bin -v backup $url --out $work/run --format directory --jobs 2"
  grep -oE "described the snapshot in [0-9.]+s|pg_dump ran [0-9.]+s|summed the data files [0-9.]+s|tarred the directory in [0-9.]+s" \
    "$work/stderr" | paste -sd ' ' >>"$shares"
  timed "dbbackup --format directory --jobs 2 --compression zstd" "$work/run/*.tar.zst" \
    "$bin backup $url --out $work/run --format directory --jobs 2 --compression zstd"
  timed "pg_dump -Fd -j 2 + tar" "$work/run/x.tar" \
    "pg_dump -Fd -j 2 -f $work/run/x $db && tar -cf $work/run/x.tar -C $work/run x"
  timed "pg_dump -Fd -j 2 -Z0 + tar + pigz -6" "$work/run/x.tar.gz" \
    "pg_dump -Fd -j 2 -Z0 -f $work/run/x $db && tar -cf - -C $work/run x | pigz -6 > $work/run/x.tar.gz"
done

echo "database: $(psql -qtA -d "$db" -c "SELECT pg_database_size('$db')") bytes (pg_database_size, pgbench scale $scale), gzip level 6, $(nproc) cores, median of $runs runs"
echo
table "dbbackup --format directory --jobs 2" "dbbackup --format directory --jobs 2 --compression zstd" \
  "pg_dump -Fd -j 2 + tar" "pg_dump -Fd -j 2 -Z0 + tar + pigz -6"
echo
echo "per round, dbbackup --format directory --jobs 2 -v:"
sed 's/^/- /' "$shares"
