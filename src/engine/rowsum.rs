//! An order-independent checksum of a table's rows, computed from the text a dump tool writes
//! for each row.
//!
//! Engines whose dump tool prints one row as one unit of text (PostgreSQL's `COPY` lines,
//! MySQL's `INSERT` tuples) can take a table's checksum from the dump stream as it passes
//! through dbbackup, instead of asking the server to read and convert every row a second time
//! while the dump tool reads them: the manifest then describes exactly what the dump holds. The
//! restore test hashes the same text printed by the same kind of tool from the restored copy.
//!
//! Each row is hashed with XXH3-128 and the hashes are added modulo 2^128, so the sum does not
//! depend on row order (a restore may reorder rows) and a duplicated row is not cancelled out
//! as it would be by XOR. It detects corruption and loss, not an adversary who can choose rows
//! to collide: the archive's SHA-256 is what protects the file itself.

use xxhash_rust::xxh3::Xxh3;

/// The count and the sum of row hashes of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowSum {
    pub rows: u64,
    sum: u128,
}

impl RowSum {
    /// Adds one row whose text is whole in `row`.
    pub fn add(&mut self, row: &[u8]) {
        self.add_hash(xxhash_rust::xxh3::xxh3_128(row));
    }

    fn add_hash(&mut self, hash: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    /// Adds the sums of another part of the same table (a table read in ranges).
    pub fn merge(&mut self, other: RowSum) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The checksum as the manifest stores it: 32 lowercase hex digits.
    pub fn checksum(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// One row's text arriving in pieces (a row longer than a read buffer, or split across two),
/// hashed without holding it whole; [`RowHasher::finish`] adds it to a [`RowSum`]. Hashes
/// the same as [`RowSum::add`] of the concatenated pieces.
#[derive(Default, Clone)]
pub struct RowHasher {
    state: Xxh3,
    started: bool,
}

impl RowHasher {
    pub fn update(&mut self, piece: &[u8]) {
        self.state.update(piece);
        self.started = true;
    }

    /// Whether any piece of a row was given since the last [`RowHasher::finish`].
    pub fn started(&self) -> bool {
        self.started
    }

    pub fn finish(&mut self, into: &mut RowSum) {
        into.add_hash(self.state.digest128());
        self.state.reset();
        self.started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_content_and_duplicates_do() {
        let sum = |rows: &[&str]| {
            let mut s = RowSum::default();
            rows.iter().for_each(|r| s.add(r.as_bytes()));
            s
        };
        assert_eq!(sum(&["a", "b", "c"]), sum(&["c", "a", "b"]));
        assert_ne!(sum(&["a", "b"]), sum(&["a", "c"]));
        assert_ne!(sum(&["a", "a"]), sum(&[]));
        assert_ne!(sum(&["a", "a"]).checksum(), sum(&[]).checksum());
        assert_ne!(sum(&["ab"]), sum(&["a", "b"]));
        assert_eq!(sum(&["a", "b"]).rows, 2);
        assert_eq!(sum(&["a"]).checksum().len(), 32);
    }

    #[test]
    fn pieces_hash_as_the_whole_row() {
        let row = "x".repeat(100_000);
        let mut whole = RowSum::default();
        whole.add(row.as_bytes());
        let mut pieces = RowSum::default();
        let mut h = RowHasher::default();
        for chunk in row.as_bytes().chunks(777) {
            h.update(chunk);
        }
        assert!(h.started());
        h.finish(&mut pieces);
        assert!(!h.started());
        assert_eq!(whole, pieces);
        let (mut a, mut b) = (RowSum::default(), RowSum::default());
        a.add(b"1");
        b.add(b"2");
        a.merge(b);
        assert_eq!(a, {
            let mut s = RowSum::default();
            s.add(b"2");
            s.add(b"1");
            s
        });
    }
}
