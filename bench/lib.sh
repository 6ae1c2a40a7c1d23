# Shared by the benchmark scripts: timed runs and the Markdown table of medians.
# Source it after setting `work` (the output directory) and `results` (a file to append to).

# prepare_sqlite SIZE_MB [SHAPE]: the generated database of that size and shape (see
# bench/gen_sqlite.sh) in $work as $db (made once, kept for later runs), and a release build of
# dbbackup as $bin.
prepare_sqlite() {
  mkdir -p "$work"
  db="$work/bench-$1mb${2:+-$2}.db"
  [ -f "$db" ] || bench/gen_sqlite.sh "$db" "$1" "${2:-plain}" >/dev/null
  cargo build --release --quiet
  bin=target/release/dbbackup
}

# prepare_postgres: the server from PGHOST/PGPORT/PGUSER (default 127.0.0.1:5432 as postgres)
# exported for the tools, and a release build of dbbackup as $bin.
prepare_postgres() {
  mkdir -p "$work"
  export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
  cargo build --release --quiet
  bin=target/release/dbbackup
}

# pg_exists DB: whether the server has that database.
pg_exists() {
  [ "$(psql -qtA -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]
}

# pgbench_db DB SCALE: a `pgbench -i` database of that scale (made once, kept): 100,000 narrow
# rows per unit of scale in pgbench_accounts, primary keys, no foreign keys.
pgbench_db() {
  pg_exists "$1" && return
  createdb "$1" && pgbench -i -q -s "$2" "$1" >/dev/null 2>&1 && psql -q -d "$1" -c 'VACUUM ANALYZE'
}

# sakila_db DB: the Sakila sample of tests/data (made once, kept): enums, domains, triggers,
# partitions by inheritance, a tsvector column; about 47,000 rows.
sakila_db() {
  pg_exists "$1" && return
  createdb "$1" &&
    psql -q -v ON_ERROR_STOP=1 -d "$1" -f tests/data/sakila-postgres-schema.sql \
      -f tests/data/sakila-postgres-data.sql >/dev/null 2>&1
}

# bench_key: an SSH ed25519 key pair for the encryption runs, as $key (private) and $recipient.
bench_key() {
  key="$work/bench-id_ed25519"
  rm -f "$key" "$key.pub"
  ssh-keygen -q -t ed25519 -N '' -C dbbackup-bench -f "$key"
  recipient=$(cat "$key.pub")
}

# The rounds below each time one run of every command of one comparison; a benchmark repeats
# them (interleaved with other rounds) and prints the medians. PREFIX starts each row's name.

# sqlite_backup_round PREFIX DB LEVEL: dbbackup backup (and --quick) against `sqlite3 .backup`
# + gzip / pigz (and pigz after the integrity check dbbackup also makes).
sqlite_backup_round() {
  local p=$1 db=$2 level=$3
  timed "${p}dbbackup" "$work/run/*.gz" "$bin backup $db --out $work/run --level $level"
  timed "${p}dbbackup --quick" "$work/run/*.gz" "$bin backup $db --out $work/run --level $level --quick"
  timed "${p}sqlite3+gzip" "$work/run/x.gz" "sqlite3 $db '.backup $work/run/x' && gzip -$level $work/run/x"
  timed "${p}sqlite3+pigz" "$work/run/x.gz" "sqlite3 $db '.backup $work/run/x' && pigz -$level $work/run/x"
  # The same pipeline with the check dbbackup makes before it keeps a backup.
  timed "${p}sqlite3+check+pigz" "$work/run/x.gz" \
    "sqlite3 $db '.backup $work/run/x' && sqlite3 $work/run/x 'pragma integrity_check' | grep -qx ok && pigz -$level $work/run/x"
}

# zstd_backup_round PREFIX DB: dbbackup --compression zstd against `sqlite3 .backup` + zstd -T0 -3
# (and zstd after the integrity check dbbackup also makes).
zstd_backup_round() {
  local p=$1 db=$2
  timed "${p}dbbackup --compression zstd" "$work/run/*.zst" "$bin backup $db --out $work/run --compression zstd"
  timed "${p}sqlite3 .backup + zstd -T0 -3" "$work/run/x.zst" "sqlite3 $db '.backup $work/run/x' && zstd -q -T0 -3 $work/run/x"
  timed "${p}sqlite3+check+zstd" "$work/run/x.zst" \
    "sqlite3 $db '.backup $work/run/x' && sqlite3 $work/run/x 'pragma integrity_check' | grep -qx ok && zstd -q -T0 -3 $work/run/x"
}

# restore_test_round PREFIX ARCHIVE: dbbackup restore-test of a SQLite backup against its
# decompression and `PRAGMA integrity_check` (gunzip or zstd -d, by the name).
restore_test_round() {
  local p=$1 archive=$2 unpack="gunzip -c"
  case $archive in *.zst) unpack="zstd -q -d -c" ;; esac
  timed "${p}dbbackup restore-test" - "$bin restore-test $archive"
  timed "${p}${unpack%% *} + integrity_check" - \
    "$unpack $archive > $work/run/x.db && sqlite3 $work/run/x.db 'pragma integrity_check' | grep -qx ok"
}

# pg_backup_round PREFIX DB: dbbackup backup (dump plus the manifest's per-table counts and
# checksums from the same snapshot) against `pg_dump | pigz -6` (and gzip -6 unless QUICK_GZIP=no).
pg_backup_round() {
  local p=$1 db=$2
  timed "${p}dbbackup backup" "$work/run/*.gz" "$bin backup postgres://$PGUSER@$PGHOST:$PGPORT/$db --out $work/run --level 6"
  [ "${PG_GZIP:-yes}" = no ] ||
    timed "${p}pg_dump + gzip -6" "$work/run/x.sql.gz" "pg_dump $db | gzip -6 > $work/run/x.sql.gz"
  timed "${p}pg_dump + pigz -6" "$work/run/x.sql.gz" "pg_dump $db | pigz -6 > $work/run/x.sql.gz"
}

# pg_restore_round PREFIX ARCHIVE DUMP_GZ: dbbackup restore-test of a PostgreSQL backup against
# what a user would script: createdb, `gunzip -c | psql`, `SELECT count(*)` of every table, and
# dropdb (dbbackup drops its scratch database inside its run too).
pg_restore_round() {
  local p=$1 archive=$2 dump=$3
  timed "${p}dbbackup restore-test" - "$bin restore-test $archive"
  timed "${p}createdb + gunzip | psql + count(*)" - "dropdb --if-exists bench_r && createdb bench_r &&
    gunzip -c $dump | psql -q -v ON_ERROR_STOP=1 -d bench_r >/dev/null &&
    echo \"SELECT format('SELECT count(*) FROM %I.%I', schemaname, tablename) FROM pg_tables
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') \\gexec\" | psql -qtA -d bench_r >/dev/null &&
    dropdb bench_r"
}

# encrypt_round PREFIX DB LEVEL: backup and restore-test, without and with --encrypt-to $recipient.
encrypt_round() {
  local p=$1 db=$2 level=$3 keep="$work/keep"
  timed "${p}backup (plain)" "$work/run/*.sqlite.gz" "$bin backup $db --out $work/run --level $level"
  rm -rf "$keep-plain" && mv "$work/run" "$keep-plain"
  timed "${p}backup (encrypted)" "$work/run/*.sqlite.gz.age" \
    "$bin backup $db --out $work/run --level $level --encrypt-to '$recipient'"
  rm -rf "$keep-encrypted" && mv "$work/run" "$keep-encrypted"
  timed "${p}restore-test (plain)" - "$bin restore-test $keep-plain"
  timed "${p}restore-test (encrypted)" - "$bin restore-test $keep-encrypted --identity $key"
}

# timed NAME OUTPUT-GLOB COMMAND: runs COMMAND (a bash string) once in a fresh $work/run with
# GNU time; appends "NAME<TAB>wall_s<TAB>peak_rss_kb<TAB>output_bytes" to $results (bytes are
# those of OUTPUT-GLOB afterwards, or 0 when it is "-").
timed() {
  local name=$1 output=$2 command=$3 bytes=0
  rm -rf "$work/run" && mkdir -p "$work/run"
  sync
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$command" >/dev/null 2>"$work/stderr" ||
    { echo "failed: $command" >&2; cat "$work/stderr" >&2; exit 1; }
  # shellcheck disable=SC2086 # OUTPUT-GLOB is a glob on purpose
  [ "$output" = - ] || bytes=$(stat -c %s $output)
  read -r wall rss <"$work/time"
  printf '%s\t%s\t%s\t%s\n' "$name" "$wall" "$rss" "$bytes" >>"$results"
}

# median NAME: "wall_s rss_kb bytes" of NAME's median run (by wall time) in $results.
median() {
  awk -F '\t' -v n="$1" '$1 == n { print $2, $3, $4 }' "$results" | sort -n |
    awk '{ w[NR] = $1; r[NR] = $2; b[NR] = $3 } END { m = int((NR + 1) / 2); print w[m], r[m], b[m] }'
}

# table NAME...: one Markdown row per NAME with the median wall time, and the peak RSS and
# output size of that median run.
table() {
  echo "| command | wall (s) | peak RSS (MiB) | output (bytes) |"
  echo "| --- | ---: | ---: | ---: |"
  local name
  for name in "$@"; do
    median "$name" | awk -v n="$name" '{ printf "| %s | %.2f | %.1f | %s |\n", n, $1, $2 / 1024, ($3 > 0 ? $3 : "") }'
  done
}
