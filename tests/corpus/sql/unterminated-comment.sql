CREATE TABLE t(x); /* unterminated comment ;
