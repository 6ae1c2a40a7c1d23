#!/usr/bin/env bash
# Upload throughput to a local S3 server (moto's, as the tests use it), issue 18: a ~SIZE_MB
# backup stored with `dbbackup backup --to s3://…` against `aws s3 cp` of the same file
# (awscli, PyPI) and a plain unsigned `curl -T` PUT of it; median of RUNS, with peak RSS.
#
# The database holds random blobs, so its backup (zstd level 1, the cheapest compressor) is
# about as big as the database. dbbackup makes, verifies and then uploads the backup in one
# run: it is timed without `--to` too, and the difference is its upload. moto keeps objects in
# memory: each run's objects are deleted after it.
#
# Usage: bench/upload.sh [SIZE_MB=200] [RUNS=3]
# Needs: python3 -m moto.server (PyPI moto[server]), aws (PyPI awscli), curl, sqlite3,
# GNU time (/usr/bin/time); builds dbbackup --release.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
runs=${2:-3}
work=bench/out
# shellcheck source=bench/lib.sh
. bench/lib.sh
mkdir -p "$work"
cargo build --release --quiet
bin=target/release/dbbackup
db="$work/upload-${size}mb.db"
if [ ! -f "$db" ]; then
  # 1 MB random blobs: nothing for a compressor to win.
  sqlite3 "$db" "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $size)
    INSERT INTO blobs SELECT i, randomblob(1000000) FROM n;"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill "$moto" 2>/dev/null || true' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -s -o /dev/null "$endpoint" && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=AKIABENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=$endpoint
curl -sf -X PUT "$endpoint/bench" >/dev/null
empty_bucket() { aws s3 rm --quiet --recursive s3://bench/ >/dev/null; }

# The file the other two upload: one backup, made once.
rm -rf "$work/upload-file" && "$bin" -q backup "$db" --out "$work/upload-file" --compression zstd --level 1
file=$(ls "$work"/upload-file/*.zst)
bytes=$(stat -c %s "$file")

results="$work/results-upload"
: >"$results"
for _ in $(seq "$runs"); do
  timed "dbbackup backup (no --to)" "$work/run/*.zst" \
    "$bin backup $db --out $work/run --compression zstd --level 1"
  timed "dbbackup backup --to s3://" "$work/run/*.zst" \
    "$bin backup $db --out $work/run --compression zstd --level 1 --to s3://bench/dbbackup"
  empty_bucket
  timed "aws s3 cp" - "aws s3 cp --quiet $file s3://bench/aws/$(basename "$file")"
  empty_bucket
  timed "curl -T (one unsigned PUT)" - "curl -sf -T $file $endpoint/bench/curl/$(basename "$file")"
  empty_bucket
done
echo "backup: $bytes bytes, moto $(python3 -c 'import moto; print(moto.__version__)'), $(aws --version 2>&1 | cut -d' ' -f1), $(nproc) cores, median of $runs runs"
echo
table "dbbackup backup (no --to)" "dbbackup backup --to s3://" "aws s3 cp" "curl -T (one unsigned PUT)"
