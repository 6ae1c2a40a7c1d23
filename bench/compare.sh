#!/usr/bin/env bash
# Every side-by-side comparison of issue 19 in one go, rounds interleaved so all commands see
# the same load, median of RUNS, printed as ONE Markdown table for BENCHMARKS.md (with the date,
# the machine, its load and the commit):
#   SQLite backup         dbbackup (gzip -6, zstd)  vs  sqlite3 .backup + gzip -6 / pigz -6 / zstd -T0 -3
#                         (and pigz / zstd after the integrity check dbbackup also makes)
#   SQLite restore-test   dbbackup restore-test     vs  gunzip -c (zstd -d -c) + PRAGMA integrity_check
#   PostgreSQL backup     dbbackup backup           vs  pg_dump | pigz -6
#   PostgreSQL restore    dbbackup restore-test     vs  createdb + gunzip -c | psql + count(*) of every table
#   encryption            backup and restore-test without and with --encrypt-to
# on the `indexed` SQLite database of bench/gen_sqlite.sh (UNIQUE text index, foreign-key
# indexes, a BLOB table), a pgbench database and Sakila. The rounds are bench/lib.sh's, which
# the single-comparison scripts (bench/sqlite_backup.sh, ...) run too.
#
# Usage: bench/compare.sh [--quick]
#   default: 200 MB SQLite database, pgbench scale 20, 5 runs
#   --quick: 20 MB, scale 2, 1 run (checks the script works; its figures mean little)
#   RUNS=N bench/compare.sh: the default sizes, N runs
# Needs: sqlite3, gzip, pigz, zstd, ssh-keygen, psql/pg_dump/pgbench/createdb and a server at
# PGHOST:PGPORT (default 127.0.0.1:5432, user postgres), GNU time; builds dbbackup --release.
# Keeps the generated databases (bench/out, and dbbackup_bench_* on the server) for later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5} size=200 scale=20
case ${1:-} in
  --quick) runs=1 size=20 scale=2 ;;
  "") ;;
  *) echo "usage: bench/compare.sh [--quick]" >&2; exit 2 ;;
esac
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
prepare_sqlite "$size" indexed
prepare_postgres
pgbench=dbbackup_bench_pgbench_s$scale
sakila=dbbackup_bench_sakila
pgbench_db "$pgbench" "$scale"
sakila_db "$sakila"
bench_key

# What the restore tests read, made once: dbbackup's backups and the pg_dump | pigz dumps.
archives="$work/compare"
rm -rf "$archives" && mkdir -p "$archives"
"$bin" backup "$db" --out "$archives/gz" -q
"$bin" backup "$db" --out "$archives/zst" --compression zstd -q
for pg in "$pgbench" "$sakila"; do
  "$bin" backup "postgres://$PGUSER@$PGHOST:$PGPORT/$pg" --out "$archives/$pg" --level 6 -q
  pg_dump "$pg" | pigz -6 >"$archives/$pg.sql.gz"
done
gz=$(ls "$archives"/gz/*.gz) zst=$(ls "$archives"/zst/*.zst)
pgbench_archive=$(ls "$archives/$pgbench"/*.gz) sakila_archive=$(ls "$archives/$sakila"/*.gz)

results="$work/results-compare"
: >"$results"
for run in $(seq "$runs"); do
  echo "run $run of $runs" >&2
  sqlite_backup_round "sqlite backup: " "$db" 6
  zstd_backup_round "sqlite backup: " "$db"
  restore_test_round "sqlite restore gz: " "$gz"
  restore_test_round "sqlite restore zst: " "$zst"
  PG_GZIP=no pg_backup_round "pgbench backup: " "$pgbench"
  pg_restore_round "pgbench restore: " "$pgbench_archive" "$archives/$pgbench.sql.gz"
  PG_GZIP=no pg_backup_round "sakila backup: " "$sakila"
  pg_restore_round "sakila restore: " "$sakila_archive" "$archives/$sakila.sql.gz"
  encrypt_round "encryption: " "$db" 6
done

# row PREFIX NAME BASELINE TARGET: NAME's median, and its ratio to BASELINE's (same PREFIX).
row() {
  local m b
  read -r -a m <<<"$(median "$1$2")"
  read -r -a b <<<"$(median "$1$3")"
  awk -v g="${1%: }" -v n="$2" -v w="${m[0]}" -v r="${m[1]}" -v o="${m[2]}" -v bw="${b[0]}" -v t="$4" 'BEGIN {
    gsub(/\|/, "\\|", n)
    printf "| %s | %s | %.2f | %s | %s | %.1f | %s |\n", g, n, w, (bw > 0 ? sprintf("%.2fx", w / bw) : "-"),
      t, r / 1024, (o > 0 ? o : "") }'
}

echo "## bench/compare.sh${1:+ $1}$([ "$runs" = 5 ] || echo " (RUNS=$runs)")"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.lock || echo '+changes')\`," \
  "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
  "load average $load_before before and $(cut -d ' ' -f 1-3 /proc/loadavg) after; release build; median of $runs interleaved run(s)."
echo "SQLite: $(stat -c %s "$db")-byte \`indexed\` database of bench/gen_sqlite.sh ($size MB);" \
  "PostgreSQL: pgbench scale $scale ($(psql -qtA -d "$pgbench" -c "SELECT pg_database_size('$pgbench')") bytes) and Sakila ($(psql -qtA -d "$sakila" -c "SELECT pg_database_size('$sakila')") bytes)."
echo "Ratios are to the comparison's baseline (the row marked 1.00x)."
echo
echo "| comparison | command | wall (s) | ratio | target | peak RSS (MiB) | output (bytes) |"
echo "| --- | --- | ---: | ---: | --- | ---: | ---: |"
row "sqlite backup: " "sqlite3+gzip" "sqlite3+gzip" ""
row "sqlite backup: " "sqlite3+pigz" "sqlite3+pigz" ""
row "sqlite backup: " "sqlite3+check+pigz" "sqlite3+pigz" ""
row "sqlite backup: " "dbbackup" "sqlite3+pigz" "≤ 1.0x pigz"
row "sqlite backup: " "dbbackup --quick" "sqlite3+pigz" ""
row "sqlite backup: " "sqlite3 .backup + zstd -T0 -3" "sqlite3 .backup + zstd -T0 -3" ""
row "sqlite backup: " "dbbackup --compression zstd" "sqlite3 .backup + zstd -T0 -3" "≤ 1.0x, size ≤ +2%"
row "sqlite backup: " "sqlite3+check+zstd" "sqlite3 .backup + zstd -T0 -3" ""
row "sqlite restore gz: " "gunzip + integrity_check" "gunzip + integrity_check" ""
row "sqlite restore gz: " "dbbackup restore-test" "gunzip + integrity_check" "≤ 1.2x"
row "sqlite restore zst: " "zstd + integrity_check" "zstd + integrity_check" ""
row "sqlite restore zst: " "dbbackup restore-test" "zstd + integrity_check" "faster than gz"
for pg in pgbench sakila; do
  row "$pg backup: " "pg_dump + pigz -6" "pg_dump + pigz -6" ""
  row "$pg backup: " "dbbackup backup" "pg_dump + pigz -6" "≤ 1.10x"
  row "$pg restore: " "createdb + gunzip | psql + count(*)" "createdb + gunzip | psql + count(*)" ""
  row "$pg restore: " "dbbackup restore-test" "createdb + gunzip | psql + count(*)" "≤ 1.3x"
done
row "encryption: " "backup (plain)" "backup (plain)" ""
row "encryption: " "backup (encrypted)" "backup (plain)" ""
row "encryption: " "restore-test (plain)" "restore-test (plain)" ""
row "encryption: " "restore-test (encrypted)" "restore-test (plain)" ""
