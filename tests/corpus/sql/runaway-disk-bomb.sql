-- A few bytes that insert until the disk is full.
CREATE TABLE t(x); WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) INSERT INTO t SELECT zeroblob(100000) FROM r;
