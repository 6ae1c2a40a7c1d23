#!/usr/bin/env bash
# Side-by-side benchmark of MySQL/MariaDB backups and restore tests, same server, same run,
# runs interleaved (each round runs every command once, so all see the same load on a shared
# machine), median of RUNS:
#   backup:       dbbackup backup mysql://…  (dump plus the manifest's per-table counts and
#                 checksums from the same snapshot)
#                 against mariadb-dump --single-transaction … | pigz -6, with the same dump
#                 options as dbbackup's; gzip -6 of the same dump once, for its size
#   restore test: dbbackup restore-test B  (restore into a scratch database, CHECK TABLE
#                 EXTENDED, schema, per-table counts and checksums)
#                 against gunzip -c B | mariadb DB into an empty database
#
# Usage: bench/mysql.sh [SIZE_MB=300] [RUNS=5] [PARTS="backup restore"]   (needs a server at
# 127.0.0.1:3306, root, empty password; creates the database dbbackup_bench there if missing,
# with bench/gen_mysql.sh). DBBACKUP_BIN=path runs that binary instead of a release build;
# BASELINE_BIN=path also runs that one (an older build, as `baseline`) in every round, side by
# side with it.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-300} runs=${2:-5} parts=${3:-backup restore} work=bench/out
host=127.0.0.1 port=3306 db=dbbackup_bench
client="mariadb -h $host -P $port -u root --protocol=TCP"
if [ "$($client -N -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db'")" = 0 ]; then
  bench/gen_mysql.sh "$db" "$size"
fi
mkdir -p "$work"
bin=${DBBACKUP_BIN:-target/release/dbbackup}
[ -n "${DBBACKUP_BIN:-}" ] || cargo build --release --quiet
url="mysql://root@$host:$port/$db"
base=${BASELINE_BIN:-}
dump="mariadb-dump -h $host -P $port -u root --protocol=TCP --single-transaction --routines \
--triggers --events --hex-blob --default-character-set=utf8mb4 --no-tablespaces --skip-dump-date $db"
into=dbbackup_bench_restore

results="$work/results-mysql"
# shellcheck source=bench/lib.sh
. bench/lib.sh
: >"$results"
if [[ $parts == *restore* ]]; then
  rm -rf "$work/mysql-rt" && "$bin" backup "$url" --out "$work/mysql-rt" --level 6 2>/dev/null
  archive=$(ls "$work"/mysql-rt/*.sql.gz)
  $client -e "DROP DATABASE IF EXISTS $into"
fi
for _ in $(seq "$runs"); do
  if [[ $parts == *backup* ]]; then
    timed dbbackup "$work/run/*.gz" "$bin backup $url --out $work/run --level 6"
    [ -z "$base" ] || timed baseline "$work/run/*.gz" "$base backup $url --out $work/run --level 6"
    timed dump+pigz "$work/run/x.sql.gz" "$dump | pigz -6 > $work/run/x.sql.gz"
  fi
  if [[ $parts == *restore* ]]; then
    timed dbbackup_restore-test - "$bin restore-test $archive"
    [ -z "$base" ] || timed baseline_restore-test - "$base restore-test $archive"
    timed gunzip+mariadb - "$client -e 'CREATE DATABASE $into' && gunzip -c $archive | $client $into"
    $client -e "DROP DATABASE $into"
  fi
done
[[ $parts != *backup* ]] || timed dump+gzip "$work/run/x.sql.gz" "$dump | gzip -6 > $work/run/x.sql.gz"

echo "$(date -u +%F) commit $(git rev-parse --short HEAD), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
[ -z "$base" ] || echo "baseline: $base"
echo "database: $($client -N -e "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db'") bytes (data + indexes), $($client -N -e 'SELECT VERSION()'), $bin, level 6, median of $runs interleaved runs${archive:+; restore-tested archive $(stat -c %s "$archive") bytes}"
echo
# shellcheck disable=SC2046 # the names of the parts that ran, word-split on purpose
table $([[ $parts != *backup* ]] || echo "dbbackup ${base:+baseline} dump+pigz dump+gzip") \
  $([[ $parts != *restore* ]] || echo "dbbackup_restore-test ${base:+baseline_restore-test} gunzip+mariadb")
