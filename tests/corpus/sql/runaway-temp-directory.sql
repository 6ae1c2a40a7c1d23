-- Temporary files in a directory of the script's choosing.
PRAGMA temp_store_directory = '/tmp';
CREATE TABLE t(x);
