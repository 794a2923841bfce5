//! How long preparing one photo takes before a network sees it: decoding; the grey 28 x 28
//! input of a LeNet-5 checkpoint (`folder::image_pixels`, what `convnet serve` and `predict`
//! do), beside the `image` crate's triangle filter alone; and the RGB resize to a 256-pixel
//! shorter side (ImageNet's recipe). `scripts/bench/picture_prep_pil.py` times the same steps in
//! Pillow.
//!
//!     cargo run --release -p convnet-data --example picture_prep -- PHOTO.jpg

use image::imageops::{FilterType, resize};
use std::time::Instant;

/// Mean milliseconds of `f` over 20 runs after 3 untimed ones.
fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    for _ in 0..20 {
        f();
    }
    start.elapsed().as_secs_f64() * 1e3 / 20.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: picture_prep PHOTO.jpg")?;
    let path = std::path::Path::new(&path);
    let bytes = std::fs::read(path)?;
    let img = convnet_vision::image_io::decode_bytes(&bytes, path)?;
    let (w, h) = (img.width(), img.height());
    let decode = time(|| {
        convnet_vision::image_io::decode_bytes(&bytes, path).expect("decoded once already");
    });
    let small = |side: u32| {
        let s = f64::from(side) / f64::from(w.min(h));
        (
            (f64::from(w) * s).round() as u32,
            (f64::from(h) * s).round() as u32,
        )
    };
    let (gw, gh) = small(28);
    let grey = time(|| {
        resize(&img.to_luma8(), gw, gh, FilterType::Triangle);
    });
    let (rw, rh) = small(256);
    let rgb = time(|| {
        resize(&img.to_rgb8(), rw, rh, FilterType::Triangle);
    });
    let fit = time(|| {
        convnet_data::folder::image_pixels(&img, [1, 28, 28]).expect("a valid shape");
    });
    println!(
        "{w} x {h}: decode {decode:.1} ms, grey + triangle resize to {gw} x {gh} {grey:.1} ms, LeNet-5 input (image_pixels) {fit:.1} ms, RGB + triangle resize to {rw} x {rh} {rgb:.1} ms"
    );
    Ok(())
}
