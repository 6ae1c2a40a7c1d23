# Shared by the benchmark scripts: timed runs and the Markdown table of medians.
# Source it after setting `work` (the output directory) and `results` (a file to append to).

# prepare_sqlite SIZE_MB: the generated database of that size in $work as $db (made once, kept
# for later runs), and a release build of dbbackup as $bin.
prepare_sqlite() {
  mkdir -p "$work"
  db="$work/bench-$1mb.db"
  [ -f "$db" ] || bench/gen_sqlite.sh "$db" "$1" >/dev/null
  cargo build --release --quiet
  bin=target/release/dbbackup
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

# table NAME...: one Markdown row per NAME with the median wall time, and the peak RSS and
# output size of that median run.
table() {
  echo "| command | wall (s) | peak RSS (MiB) | output (bytes) |"
  echo "| --- | ---: | ---: | ---: |"
  local name
  for name in "$@"; do
    awk -F '\t' -v n="$name" '$1 == n { print $2, $3, $4 }' "$results" | sort -n |
      awk -v n="$name" '{ w[NR] = $1; r[NR] = $2; b[NR] = $3 }
        END { m = int((NR + 1) / 2); printf "| %s | %.2f | %.1f | %s |\n", n, w[m], r[m] / 1024, b[m] }'
  done
}
