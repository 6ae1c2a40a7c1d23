#!/usr/bin/env bash
# Scale curve: `dbbackup backup` and `restore-test` of generated SQLite databases from 100 MB to
# 2 GB, on the release build, with each command's peak resident memory. Runs tests/it/scale.rs
# (which asserts the 64 MiB bound) once per size and prints its figures as a Markdown table.
# Needs about 3.3x the largest size free under TMPDIR.
#
# Usage: bench/scale.sh [SIZES_MB="100 250 500 1000 2000"]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-100 250 500 1000 2000}
echo "| database (MiB) | backup (s) | backup (s/GiB) | restore-test (s) | restore-test (s/GiB) | peak RSS, backup (MiB) | peak RSS, both (MiB) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for mb in $sizes; do
  line=$(DBBACKUP_SCALE_MB=$mb cargo test --release --locked -q --test it scale:: -- --nocapture 2>&1 |
    grep '^scale:') || { echo "the scale test failed at $mb MB" >&2; exit 1; }
  # scale: 213 MiB database: backup 12.90 s (62.03 s/GiB), peak RSS 65.3 MiB; restore-test ...
  echo "$line" | awk '{ gsub(/[(),;]/, " "); print "| " $2 " | " $6 " | " $8 " | " $15 " | " $17 " | " $12 " | " $23 " |" }'
done
echo
echo "$(nproc) cores, $(date -u +%Y-%m-%d)"
