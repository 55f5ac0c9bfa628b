//! Helpers shared by the tier's integration tests: recognisable data and
//! whole-object reads.

use engine::{ObjectId, Store};

/// `len` bytes of a xorshift stream seeded with `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The first `len` bytes of object `id`.
pub fn read_all(s: &Store, id: ObjectId, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    s.read(id, 0, &mut b).unwrap();
    b
}
