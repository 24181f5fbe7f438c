//! Pseudo-random bytes for the tests and benchmarks of chunked builds.
//!
//! The client itself never uses them. They live here because every program that chunks,
//! pushes or pulls builds in a test or a benchmark (this crate's tests, the api's integration
//! tests, `bench`) depends on this crate already.

/// `n` pseudo-random bytes (xorshift64), the same for the same `seed` and different for
/// different seeds (the seed is spread by a multiplication first, so seeds 10 and 11 do not
/// give the same bytes). They do not repeat in any short period, so a misplaced range shows,
/// and they do not compress.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::noise;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_others_do_not() {
        assert_eq!(noise(1000, 7), noise(1000, 7));
        assert_eq!(noise(1003, 7).len(), 1003);
        assert_eq!(noise(1003, 7)[..1000], noise(1000, 7)[..]);
        assert_ne!(noise(1000, 10), noise(1000, 11));
    }
}
