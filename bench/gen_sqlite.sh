#!/usr/bin/env bash
# Generates a SQLite database of about SIZE_MB (default 200) that looks like an application's:
# integer keys, short and long text, reals, timestamps, indexes. Deterministic for a given size.
# SHAPE `indexed` (issue 19) is the shape the restore test is slowest on: a UNIQUE text index
# (customers.email), the foreign-key index of orders, and a BLOB table (attachments, 0.4-4 KB
# each, many on overflow pages, with its own foreign-key index), about a third of the bytes.
# Usage: bench/gen_sqlite.sh OUT.db [SIZE_MB] [SHAPE=plain|indexed]
set -euo pipefail
out=$1
size_mb=${2:-200}
shape=${3:-plain}
case $shape in
  plain) rows=$(( size_mb * 1000000 / 180 )) blobs=0 ;;
  indexed) rows=$(( size_mb * 1000000 / 300 )) blobs=$(( size_mb * 1000000 / 3 / 2300 )) ;;
  *) echo "unknown shape $shape: plain or indexed" >&2; exit 2 ;;
esac
indexed=
[ "$shape" = plain ] || indexed="
CREATE TABLE attachments(id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
  data BLOB NOT NULL);
CREATE INDEX attachments_order ON attachments(order_id);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $blobs)
INSERT INTO attachments SELECT i, 1 + (i * 104729) % $rows,
  CAST(replace(printf('%.' || (50 + (i * 7) % 450) || 'c', '.'), '.', printf('%08x', (i * 2654435761) % 4294967296)) AS BLOB)
FROM n;
CREATE UNIQUE INDEX customers_email ON customers(email);
"
rm -f "$out"
sqlite3 "$out" <<SQL
PRAGMA journal_mode=wal;
PRAGMA page_size=4096;
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, city TEXT, created TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
  status TEXT NOT NULL, total REAL NOT NULL, placed_at TEXT NOT NULL, note TEXT);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_placed ON orders(placed_at);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows / 10)
INSERT INTO customers SELECT i,
  'Customer ' || i,
  'user' || i || '@example.' || (CASE i % 3 WHEN 0 THEN 'com' WHEN 1 THEN 'org' ELSE 'net' END),
  (CASE i % 7 WHEN 0 THEN 'Berlin' WHEN 1 THEN 'Lisbon' WHEN 2 THEN 'Osaka' WHEN 3 THEN 'Lima'
     WHEN 4 THEN 'Nairobi' WHEN 5 THEN 'Toronto' ELSE 'Hanoi' END),
  datetime(1600000000 + i * 37, 'unixepoch')
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO orders SELECT i,
  1 + (i * 7919) % ($rows / 10),
  (CASE i % 5 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped' WHEN 3 THEN 'delivered' ELSE 'returned' END),
  round(((i * 2654435761) % 100000) / 100.0, 2),
  datetime(1600000000 + i * 11, 'unixepoch'),
  CASE WHEN i % 4 = 0 THEN NULL ELSE
    'order ' || i || ': ' || substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat', 1 + (i * 31) % 120, 40 + i % 90)
    || ' ' || printf('%08x', (i * 2654435761) % 4294967296) END
FROM n;
$indexed
PRAGMA wal_checkpoint(TRUNCATE);
SQL
ls -l "$out"
