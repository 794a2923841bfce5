//! face-api.js's input path, the one every face-api network goes through wherever it runs (its
//! detectors, landmark and recognition networks in `convnet-face`, and the `faceapi` recipe of
//! [`crate::Preprocess`] that style transfer, visualisation and classification use over its
//! weights): the picture padded to a square with zeros, then resized with TensorFlow's legacy
//! bilinear (`tf.image.resizeBilinear(x, [size, size], alignCorners = false, halfPixelCenters =
//! false)`, as tfjs's cpu backend computes it). It lives here rather than in `convnet-face`
//! because the recipe does, and the face crate builds on this one.
//!
//! The legacy bilinear samples output pixel `d` at source coordinate `d · (in / out)`, with no
//! half-pixel offset and no antialiasing: shrinking a large photo reads 4 source pixels per
//! output pixel rather than averaging all of them, as an image library's triangle filter does.
//! The networks were trained on what this gives, so it is what they must see.

use image::RgbImage;

/// Where face-api's `padToSquare` puts the zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquarePad {
    /// `isCenterImage = true` (the landmark and recognition networks): `round(diff / 2)` rows
    /// or columns appended (bottom or right), the rest prepended, so an odd difference puts the
    /// extra pixel at the bottom / right.
    Centre,
    /// `isCenterImage = false` (the detectors): all of them at the bottom or right.
    BottomRight,
}

/// `image` padded to a square and resized to `size` x `size`, row-major HWC float values
/// 0–255, exactly as face-api's `toBatchTensor(size, pad == Centre)` gives them for a tensor
/// input. A square already of `size` pixels comes back as it is (face-api skips the resize;
/// the resize at scale 1 reads each pixel unchanged anyway). The padded square is never built:
/// only the pixels the resize reads are looked up, so a large photo costs only the output.
/// An empty picture gives zeros.
pub fn square_resized(image: &RgbImage, pad: SquarePad, size: usize) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut out = vec![0.0f32; size * size * 3];
    let side = w.max(h);
    if side == 0 || size == 0 {
        return out;
    }
    let diff = side - w.min(h);
    // JavaScript's Math.round of a non-negative half rounds .5 up: diff.div_ceil(2) appended.
    let prepend = match pad {
        SquarePad::Centre => diff - diff.div_ceil(2),
        SquarePad::BottomRight => 0,
    };
    let (dx, dy) = if h > w { (prepend, 0) } else { (0, prepend) };
    let raw = image.as_raw();
    // A pixel of the padded square: the picture's, or a zero of the padding.
    let at = |y: usize, x: usize, c: usize| -> f64 {
        match (y.checked_sub(dy), x.checked_sub(dx)) {
            (Some(y), Some(x)) if y < h && x < w => f64::from(raw[(y * w + x) * 3 + c]),
            _ => 0.0,
        }
    };
    // tfjs's ResizeBilinear (cpu): float64 arithmetic, float32 results.
    let scale = side as f64 / size as f64;
    let axis: Vec<(usize, usize, f64)> = (0..size)
        .map(|d| {
            let s = scale * d as f64;
            let lo = s.floor().max(0.0);
            let hi = (s.ceil() as usize).min(side - 1);
            (lo as usize, hi, s - lo)
        })
        .collect();
    for (r, &(y0, y1, fy)) in axis.iter().enumerate() {
        for (q, &(x0, x1, fx)) in axis.iter().enumerate() {
            for c in 0..3 {
                let top = at(y0, x0, c) + (at(y0, x1, c) - at(y0, x0, c)) * fx;
                let bottom = at(y1, x0, c) + (at(y1, x1, c) - at(y1, x0, c)) * fx;
                out[(r * size + q) * 3 + c] = (top + (bottom - top) * fy) as f32;
            }
        }
    }
    out
}

/// face-api's `computeReshapedDimensions`: the size the picture takes inside the `size`
/// square, each side rounded to whole pixels (`Math.round`). Detectors map their boxes back
/// through it, so a box is scaled by `size / round(side · size / longest)`, not by the
/// unrounded ratio.
pub fn reshaped_dimensions(width: u32, height: u32, size: usize) -> (f64, f64) {
    let (w, h) = (f64::from(width), f64::from(height));
    let scale = size as f64 / w.max(h);
    // Math.round rounds halves up; f64::round rounds them away from zero (the same here).
    ((w * scale).round(), (h * scale).round())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(v: &[f32], size: usize, x: usize) -> Vec<f32> {
        (0..size).map(|y| v[(y * size + x) * 3]).collect()
    }

    #[test]
    fn padding_puts_the_odd_pixel_after() {
        // 3 wide, 6 high, kept at 6: 3 columns to add, round(1.5) = 2 appended, 1 prepended.
        let crop = RgbImage::from_pixel(3, 6, image::Rgb([10, 20, 30]));
        let v = square_resized(&crop, SquarePad::Centre, 6);
        let row: Vec<f32> = (0..6).map(|x| v[x * 3]).collect();
        assert_eq!(row, vec![0.0, 10.0, 10.0, 10.0, 0.0, 0.0]);
        // 5 wide, 4 high: one row appended at the bottom.
        let v = square_resized(
            &RgbImage::from_pixel(5, 4, image::Rgb([1, 1, 1])),
            SquarePad::Centre,
            5,
        );
        assert_eq!(column(&v, 5, 0), vec![1.0, 1.0, 1.0, 1.0, 0.0]);
        // The detectors' padding: all 3 columns at the right.
        let v = square_resized(&crop, SquarePad::BottomRight, 6);
        let row: Vec<f32> = (0..6).map(|x| v[x * 3]).collect();
        assert_eq!(row, vec![10.0, 10.0, 10.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn legacy_bilinear_samples_at_dst_times_scale() {
        // A 4-pixel ramp resized to 3: sources 0, 4/3, 8/3 (the last clamps its upper
        // neighbour to the edge). No averaging: a triangle filter would blur the ends.
        let ramp = RgbImage::from_fn(4, 4, |x, _| image::Rgb([(10 * x) as u8; 3]));
        let v = square_resized(&ramp, SquarePad::BottomRight, 3);
        let row: Vec<f32> = (0..3).map(|x| v[x * 3]).collect();
        for (a, b) in row.iter().zip([0.0, 40.0 / 3.0, 80.0 / 3.0]) {
            assert!((a - b).abs() < 1e-4, "{row:?}");
        }
        // Shrinking 8 → 2 reads source columns 0 and 4 only.
        let stripes = RgbImage::from_fn(8, 8, |x, _| image::Rgb([(x * 30) as u8; 3]));
        let v = square_resized(&stripes, SquarePad::BottomRight, 2);
        assert_eq!((v[0], v[3]), (0.0, 120.0));
    }

    #[test]
    fn empty_pictures_give_zeros_and_sizes_round_like_javascript() {
        assert_eq!(
            square_resized(&RgbImage::new(0, 5), SquarePad::Centre, 2),
            vec![0.0; 12]
        );
        // 1920 x 1280 at 416: 277.33 rows round to 277.
        assert_eq!(reshaped_dimensions(1920, 1280, 416), (416.0, 277.0));
        // A half rounds up: 3 x 1 at 3 → 1 row; 4 x 2 at 3 → 1.5 → 2.
        assert_eq!(reshaped_dimensions(4, 2, 3), (3.0, 2.0));
    }
}
