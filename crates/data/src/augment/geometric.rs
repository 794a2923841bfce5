//! Transforms that move pixels: mirror, shift (padded crop), rotation. Objects in photos appear
//! mirrored, off-centre and tilted; these teach the network that none of that changes the class.

use rand::RngExt;

use super::{AugmentRng, Image, Transform, symmetric};

/// Mirrors left to right with probability `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomHorizontalFlip {
    pub p: f64,
}

impl Default for RandomHorizontalFlip {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, image: &mut Image, rng: &mut AugmentRng) {
        // Always draw, so the stream's position does not depend on the outcome.
        if rng.random::<f64>() < self.p {
            flip_horizontal(image);
        }
    }

    fn name(&self) -> String {
        format!("flip={}", self.p)
    }
}

/// Mirrors `image` left to right.
pub fn flip_horizontal(image: &mut Image) {
    let w = image.width.max(1);
    for row in image.data.chunks_exact_mut(w) {
        row.reverse();
    }
}

/// Pads with `padding` zeros on every side, then crops back to the original size at a random
/// offset: a shift of up to `padding` pixels in each direction (the CIFAR recipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomCrop {
    pub padding: usize,
}

impl Transform for RandomCrop {
    fn apply(&self, image: &mut Image, rng: &mut AugmentRng) {
        if self.padding == 0 {
            return;
        }
        // Beyond the image size every offset gives a blank image anyway.
        let p = self.padding.min(1 << 30) as i64;
        let dy = rng.random_range(-p..=p);
        let dx = rng.random_range(-p..=p);
        shift(image, dy as isize, dx as isize);
    }

    fn name(&self) -> String {
        format!("crop={}", self.padding)
    }
}

/// Output `(y, x)` takes input `(y + dy, x + dx)`, zero where that falls outside.
fn shift(image: &mut Image, dy: isize, dx: isize) {
    let (h, w) = (image.height as isize, image.width as isize);
    let mut out = vec![0.0; image.data.len()];
    for (src, dst) in image
        .data
        .chunks_exact((h * w).max(1) as usize)
        .zip(out.chunks_exact_mut((h * w).max(1) as usize))
    {
        for y in 0..h {
            let sy = y + dy;
            if !(0..h).contains(&sy) {
                continue;
            }
            for x in 0..w {
                let sx = x + dx;
                if (0..w).contains(&sx) {
                    dst[(y * w + x) as usize] = src[(sy * w + sx) as usize];
                }
            }
        }
    }
    image.data = out;
}

/// Rotates about the centre by an angle uniform in `[-max_degrees, max_degrees]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomRotation {
    pub max_degrees: f32,
}

impl Transform for RandomRotation {
    fn apply(&self, image: &mut Image, rng: &mut AugmentRng) {
        let degrees = symmetric(rng, self.max_degrees);
        if degrees != 0.0 && degrees.is_finite() {
            *image = rotate(image, degrees);
        }
    }

    fn name(&self) -> String {
        format!("rotate={}", self.max_degrees)
    }
}

/// `image` rotated counter-clockwise (as displayed) by `degrees` about its centre, bilinear,
/// with zeros where the rotated image does not reach.
pub fn rotate(image: &Image, degrees: f32) -> Image {
    let (sin, cos) = f64::from(degrees).to_radians().sin_cos();
    let (h, w) = (image.height, image.width);
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let mut out = Image::zeros(image.channels, h, w);
    let plane = (h * w).max(1);
    for (src, dst) in image
        .data
        .chunks_exact(plane)
        .zip(out.data.chunks_exact_mut(plane))
    {
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                // Inverse mapping: where in the input this output pixel comes from.
                let sx = cx + cos * dx - sin * dy;
                let sy = cy + sin * dx + cos * dy;
                dst[y * w + x] = bilinear(src, h, w, sy, sx);
            }
        }
    }
    out
}

/// The plane `src` (`h x w`) sampled at `(y, x)`, zero outside.
fn bilinear(src: &[f32], h: usize, w: usize, y: f64, x: f64) -> f32 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let mut v = 0.0;
    for (yy, wy) in [(y0, 1.0 - fy), (y0 + 1.0, fy)] {
        for (xx, wx) in [(x0, 1.0 - fx), (x0 + 1.0, fx)] {
            let weight = wy * wx;
            if weight > 0.0 && yy >= 0.0 && xx >= 0.0 && yy < h as f64 && xx < w as f64 {
                v += weight * f64::from(src[yy as usize * w + xx as usize]);
            }
        }
    }
    v as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        let n = c * h * w;
        Image::new(c, h, w, (0..n).map(|i| (i + 1) as f32 / n as f32).collect()).unwrap()
    }

    #[test]
    fn rotating_a_quarter_turn_moves_top_right_to_top_left() {
        let mut img = Image::zeros(1, 3, 3);
        img.data[2] = 1.0; // row 0, column 2
        let r = rotate(&img, 90.0);
        assert!((r.at(0, 0, 0) - 1.0).abs() < 1e-5, "{r:?}");
        assert!((r.data.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let back = rotate(&rotate(&img, 90.0), -90.0);
        for (a, b) in back.data.iter().zip(&img.data) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn shift_moves_the_window() {
        let img = ramp(1, 3, 3);
        let mut s = img.clone();
        shift(&mut s, 1, -1);
        assert_eq!(s.at(0, 0, 1), img.at(0, 1, 0));
        assert_eq!(s.at(0, 0, 0), 0.0);
        assert_eq!(s.at(0, 2, 2), 0.0);
    }

    #[test]
    fn flip_probability_zero_and_one() {
        let img = ramp(2, 2, 3);
        let mut rng = super::super::example_rng(0, 0, 0);
        let mut same = img.clone();
        RandomHorizontalFlip { p: 0.0 }.apply(&mut same, &mut rng);
        assert_eq!(same, img);
        let mut flipped = img.clone();
        RandomHorizontalFlip { p: 1.0 }.apply(&mut flipped, &mut rng);
        assert_eq!(flipped.at(1, 1, 0), img.at(1, 1, 2));
    }
}
