#!/usr/bin/env bash
# Side-by-side benchmark of encryption's cost: `dbbackup backup` without and with
# `--encrypt-to`, then `restore-test` of each (the encrypted one with `--identity`), on one
# generated database, same machine, same run, runs interleaved; median of RUNS. Prints a
# Markdown table (wall time, peak RSS, output bytes) for BENCHMARKS.md. The key is an SSH
# ed25519 key (ssh-keygen): the payload is encrypted the same way whatever the recipient type.
#
# Usage: bench/encrypt.sh [SIZE_MB=200] [RUNS=3] [LEVEL=6]
# Needs: sqlite3, ssh-keygen, GNU time (/usr/bin/time); builds dbbackup --release.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
runs=${2:-3}
level=${3:-6}
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_sqlite "$size"
bench_key

results="$work/results-encrypt"
: >"$results"
for _ in $(seq "$runs"); do
  encrypt_round "" "$db" "$level"
done

echo "database: $(stat -c %s "$db") bytes, level $level, $(nproc) cores, median of $runs runs"
echo
table "backup (plain)" "backup (encrypted)" "restore-test (plain)" "restore-test (encrypted)"
