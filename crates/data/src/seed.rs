//! Seeds derived from `(seed, epoch, example, ...)`.
//!
//! Each random stream gets its own seed, a hash of the numbers that identify it, instead of
//! sharing one generator: an example's augmentation then does not depend on which thread built
//! it or on what was drawn before it. The hash (SplitMix64 steps) is fixed here so that a seed
//! written in a run's config reproduces that run in later versions too.

/// A 64-bit seed that depends on every part and on their order.
pub fn derive(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x6a09_e667_f3bc_c909;
    for &p in parts {
        h = splitmix64(h ^ splitmix64(p));
    }
    h
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_every_part_matter() {
        assert_ne!(derive(&[1, 2]), derive(&[2, 1]));
        assert_ne!(derive(&[1, 2, 3]), derive(&[1, 2, 4]));
        assert_ne!(derive(&[0]), derive(&[0, 0]));
        assert_eq!(derive(&[7, 8, 9]), derive(&[7, 8, 9]));
    }
}
