ATTACH DATABASE 'dbbackup-fuzz-attached.db' AS other;
CREATE TABLE other.escaped(x);
