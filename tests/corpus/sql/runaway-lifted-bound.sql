-- The same, after lifting the size bound in the same chunk.
PRAGMA max_page_count = 2147483647; CREATE TABLE t(x); WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) INSERT INTO t SELECT zeroblob(100000) FROM r;
