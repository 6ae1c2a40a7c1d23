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

run() {
  local name=$1 output=$2
  shift 2
  rm -rf "$work/pgrun" && mkdir -p "$work/pgrun"
  sync
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$*" >/dev/null 2>"$work/stderr" ||
    { cat "$work/stderr"; exit 1; }
  echo "$name $(cat "$work/time") $(stat -c %s $output)" >>"$work/results-pg"
}

: >"$work/results-pg"
for _ in $(seq "$runs"); do
  run dbbackup "$work/pgrun/*.gz" "$bin backup $url --out $work/pgrun --level 6"
  run pg_dump+gzip "$work/pgrun/x.sql.gz" "pg_dump $db | gzip -6 > $work/pgrun/x.sql.gz"
  run pg_dump+pigz "$work/pgrun/x.sql.gz" "pg_dump $db | pigz -6 > $work/pgrun/x.sql.gz"
done

echo "database: $(psql -qtA -d "$db" -c "SELECT pg_database_size('$db')") bytes (pg_database_size), level 6, $(nproc) cores, median of $runs runs"
echo
echo "| command | wall (s) | peak RSS (MiB) | output (bytes) |"
echo "| --- | ---: | ---: | ---: |"
for name in dbbackup pg_dump+gzip pg_dump+pigz; do
  awk -v n="$name" '$1 == n { print $2, $3, $4 }' "$work/results-pg" | sort -n |
    awk -v n="$name" '{ w[NR] = $1; r[NR] = $2; b[NR] = $3 }
      END { m = int((NR + 1) / 2); printf "| %s | %.2f | %.1f | %d |\n", n, w[m], r[m] / 1024, b[m] }'
done
