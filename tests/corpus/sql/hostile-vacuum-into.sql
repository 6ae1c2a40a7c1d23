CREATE TABLE t(x);
VACUUM INTO 'dbbackup-fuzz-vacuumed.db';
