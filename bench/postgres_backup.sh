#!/usr/bin/env bash
# Side-by-side benchmark: `dbbackup backup postgres://…` (dump plus the manifest's per-table
# counts and checksums from the same snapshot) against `pg_dump DB | gzip -6` and
# `pg_dump DB | pigz -6`, same server, same run, runs interleaved, median of RUNS.
#
# Usage: bench/postgres_backup.sh [SIZE_MB=250] [RUNS=3]   (needs a server at PGHOST:PGPORT,
# default 127.0.0.1:5432, user postgres; creates the database dbbackup_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-250}
runs=${2:-3}
work=bench/out
mkdir -p "$work"
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
db=dbbackup_bench
if [ "$(psql -qtA -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
  bench/gen_postgres.sh "$db" "$size"
fi
cargo build --release --quiet
bin=target/release/dbbackup
url="postgres://$PGUSER@$PGHOST:$PGPORT/$db"

results="$work/results-pg"
# shellcheck source=bench/lib.sh
. bench/lib.sh
: >"$results"
for _ in $(seq "$runs"); do
  timed dbbackup "$work/run/*.gz" "$bin backup $url --out $work/run --level 6"
  timed pg_dump+gzip "$work/run/x.sql.gz" "pg_dump $db | gzip -6 > $work/run/x.sql.gz"
  timed pg_dump+pigz "$work/run/x.sql.gz" "pg_dump $db | pigz -6 > $work/run/x.sql.gz"
done

echo "database: $(psql -qtA -d "$db" -c "SELECT pg_database_size('$db')") bytes (pg_database_size), level 6, $(nproc) cores, median of $runs runs"
echo
table dbbackup pg_dump+gzip pg_dump+pigz
