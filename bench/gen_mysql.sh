#!/usr/bin/env bash
# Creates (or recreates) a MariaDB/MySQL database of about SIZE_MB (default 300, data plus
# indexes as information_schema counts them) in four shapes a dump handles differently:
#   narrow  many short rows of numbers and dates (statement overhead per row dominates)
#   wide    long text rows with two secondary indexes (text escaping and index rebuilds)
#   files   BLOBs of 16-64 KiB, half random bytes (--hex-blob doubles them; compresses badly)
#   events  a secondary-indexed log with a foreign key to narrow
# Usage: bench/gen_mysql.sh DBNAME [SIZE_MB]   (server at MYSQL_HOST:MYSQL_TCP_PORT, default
# 127.0.0.1:3306, as root with MYSQL_PWD if set; MariaDB 10.10+ for seq_ tables and
# RANDOM_BYTES)
set -euo pipefail
db=$1
size_mb=${2:-300}
# About a quarter of the size in each shape (bytes per row measured on MariaDB 10.11).
narrow=$((size_mb * 1000000 / 4 / 89))
wide=$((size_mb * 1000000 / 4 / 1110))
files=$((size_mb * 1000000 / 4 / 41700))
events=$((size_mb * 1000000 / 4 / 160))
mysql_() {
  mariadb -h "${MYSQL_HOST:-127.0.0.1}" -P "${MYSQL_TCP_PORT:-3306}" -u root --protocol=TCP --default-character-set=utf8mb4 "$@"
}
mysql_ -e "DROP DATABASE IF EXISTS \`$db\`; CREATE DATABASE \`$db\` CHARACTER SET utf8mb4"
mysql_ "$db" <<SQL
SET SESSION sql_log_bin = 0;
CREATE TABLE narrow (id BIGINT PRIMARY KEY, a INT NOT NULL, b INT, day DATE NOT NULL,
  amount DECIMAL(10,2) NOT NULL, INDEX narrow_day (day)) ENGINE=InnoDB;
INSERT INTO narrow SELECT seq, seq * 7 % 100003, IF(seq % 5 = 0, NULL, seq % 1000),
  '2020-01-01' + INTERVAL (seq % 2000) DAY, (seq * 2654435761 % 1000000) / 100
  FROM seq_1_to_${narrow};
CREATE TABLE wide (id BIGINT PRIMARY KEY, title VARCHAR(200) NOT NULL, body TEXT NOT NULL,
  author VARCHAR(64) NOT NULL, created DATETIME(6) NOT NULL,
  INDEX wide_title (title), INDEX wide_author_created (author, created)) ENGINE=InnoDB;
INSERT INTO wide SELECT seq, CONCAT('Title ', seq, ' ', MD5(seq)),
  CONCAT(REPEAT(CONCAT('Lorem ipsum dolor sit amet, consectetur ''adipiscing'' elit; ',
    MD5(seq * 3), ' sed do eiusmod tempor\n'), 1 + seq % 8), 'ünïcødé ✓ 😀 ', SHA2(seq, 256)),
  CONCAT('author', seq % 997), '2021-01-01' + INTERVAL seq * 37 SECOND + INTERVAL seq % 999999 MICROSECOND
  FROM seq_1_to_${wide};
CREATE TABLE files (id INT PRIMARY KEY, name VARCHAR(255) NOT NULL, data MEDIUMBLOB NOT NULL,
  UNIQUE INDEX files_name (name)) ENGINE=InnoDB;
INSERT INTO files SELECT seq, CONCAT('file-', seq, '.bin'),
  CONCAT(RANDOM_BYTES(1024), REPEAT(CONCAT(RANDOM_BYTES(1024), REPEAT(CHAR(seq % 256), 1024)), 8 + seq % 24))
  FROM seq_1_to_${files};
CREATE TABLE events (id BIGINT PRIMARY KEY AUTO_INCREMENT, narrow_id BIGINT NOT NULL,
  kind ENUM('view','click','buy','refund') NOT NULL, at TIMESTAMP NOT NULL, payload JSON,
  INDEX events_at (at), INDEX events_kind (kind, narrow_id),
  FOREIGN KEY (narrow_id) REFERENCES narrow (id)) ENGINE=InnoDB;
INSERT INTO events (narrow_id, kind, at, payload) SELECT 1 + seq * 7919 % ${narrow},
  ELT(1 + seq % 4, 'view', 'click', 'buy', 'refund'), FROM_UNIXTIME(1600000000 + seq * 13),
  IF(seq % 3 = 0, NULL, JSON_OBJECT('n', seq, 'tag', CONCAT('t', seq % 50)))
  FROM seq_1_to_${events};
ANALYZE TABLE narrow, wide, files, events;
SQL
mysql_ -N -e "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db'"
