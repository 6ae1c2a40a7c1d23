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
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_postgres
db=dbbackup_bench
pg_exists "$db" || bench/gen_postgres.sh "$db" "$size"

results="$work/results-pg"
: >"$results"
for _ in $(seq "$runs"); do
  pg_backup_round "" "$db"
done

echo "database: $(psql -qtA -d "$db" -c "SELECT pg_database_size('$db')") bytes (pg_database_size), level 6, $(nproc) cores, median of $runs runs"
echo
table "dbbackup backup" "pg_dump + gzip -6" "pg_dump + pigz -6"
