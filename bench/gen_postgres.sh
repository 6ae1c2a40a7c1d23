#!/usr/bin/env bash
# Creates (or recreates) a PostgreSQL database of about SIZE_MB (default 250) that looks like an
# application's: keys, short and long text, numerics, timestamps, indexes, a foreign key.
# Usage: bench/gen_postgres.sh DBNAME [SIZE_MB]   (server from PGHOST/PGPORT/PGUSER, default
# 127.0.0.1:5432 as postgres)
set -euo pipefail
db=$1
size_mb=${2:-250}
rows=$(( size_mb * 1000000 / 220 ))
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
psql -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
psql -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
CREATE TABLE customers(id bigint PRIMARY KEY, name text NOT NULL, email text, city text, created timestamptz);
CREATE TABLE orders(id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  status text NOT NULL, total numeric(10,2) NOT NULL, placed_at timestamptz NOT NULL, note text);
INSERT INTO customers SELECT i, 'Customer ' || i,
  'user' || i || '@example.' || (ARRAY['com','org','net'])[(1 + i % 3)::int],
  (ARRAY['Berlin','Lisbon','Osaka','Lima','Nairobi','Toronto','Hanoi'])[(1 + i % 7)::int],
  to_timestamp(1600000000 + i * 37)
FROM generate_series(1::bigint, $rows / 10) AS i;
INSERT INTO orders SELECT i, 1 + (i * 7919) % ($rows / 10),
  (ARRAY['new','paid','shipped','delivered','returned'])[(1 + i % 5)::int],
  ((i * 2654435761) % 100000) / 100.0,
  to_timestamp(1600000000 + i * 11),
  CASE WHEN i % 4 = 0 THEN NULL ELSE
    'order ' || i || ': ' || substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat', (1 + (i * 31) % 120)::int, (40 + i % 90)::int)
    || ' ' || to_hex((i * 2654435761) % 4294967296) END
FROM generate_series(1::bigint, $rows) AS i;
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_placed ON orders(placed_at);
VACUUM ANALYZE;
SQL
psql -qtA -d "$db" -c "SELECT pg_size_pretty(pg_database_size(current_database())), pg_database_size(current_database())"
