//! Small generated data sets in Fashion-MNIST's file format, so CLI tests train in seconds on
//! a task with a known answer.
#![allow(dead_code)]

use std::path::Path;

use convnet_data::idx::write_idx;

/// Deterministic pseudo-random numbers (splitmix64), so tests need no RNG crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A 28x28 image of class `k` (0..10): a bright bar whose position and direction encode the
/// class (five rows, five columns), jittered by up to 2 pixels, on faint noise.
pub fn pattern(k: usize, rng: &mut Rng) -> Vec<u8> {
    let mut img: Vec<u8> = (0..28 * 28).map(|_| rng.below(40) as u8).collect();
    let jitter = rng.below(5) as usize; // 0..=4, centred on 2
    let at = 2 + 5 * (k % 5) + jitter;
    for i in 4..24 {
        for w in 0..3 {
            let (y, x) = if k < 5 { (at + w, i) } else { (i, at + w) };
            if y < 28 && x < 28 {
                img[y * 28 + x] = 200 + rng.below(56) as u8;
            }
        }
    }
    img
}

/// Writes `train-*` and `t10k-*` IDX files (uncompressed) with balanced classes.
pub fn write_fashion_like(dir: &Path, n_train: usize, n_test: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let mut images = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let k = (i * 7 + rng.below(10) as usize) % 10;
            images.extend(pattern(k, &mut rng));
            labels.push(k as u8);
        }
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            &[n, 28, 28],
            &images,
        )
        .unwrap();
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            &[n],
            &labels,
        )
        .unwrap();
    }
}

/// A PNG of one generated image of class `k`.
pub fn write_png(path: &Path, k: usize, seed: u64) {
    let pixels = pattern(k, &mut Rng::new(seed));
    image::GrayImage::from_raw(28, 28, pixels)
        .unwrap()
        .save(path)
        .unwrap();
}
