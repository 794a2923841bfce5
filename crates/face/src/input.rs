//! face-api's input path: a picture padded to a square with zeros, resized with TensorFlow's
//! legacy bilinear (`tf.image.resizeBilinear` with `alignCorners = false` and no half-pixel
//! centres, as tfjs's cpu backend computes it), then normalised per network. The detector pads
//! at the bottom and right; the landmark and recognition networks pad both sides.

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use crate::FaceError;

/// The mean RGB value the landmark and recognition networks subtract before dividing by 255
/// (face-api's `meanRgb`).
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// Where `padToSquare` puts the zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquarePad {
    /// `isCenterImage = true`: `round(diff / 2)` rows or columns appended (bottom or right),
    /// the rest prepended, so an odd difference puts the extra pixel at the bottom / right.
    Centre,
    /// `isCenterImage = false`: all of them at the bottom or right.
    BottomRight,
}

/// `image` padded to a square and resized to `size`, row-major HWC values 0–255. A square
/// already of `size` pixels is not resampled (face-api skips the resize then).
pub fn square_resized(image: &RgbImage, pad: SquarePad, size: usize) -> Vec<f32> {
    resize_bilinear_legacy(&pad_to_square(image, pad), size)
}

/// face-api's input path for tensor inputs, as its node build runs it on decoded pictures and
/// on the face tensors it cuts out (`extractFaceTensors`):
///
/// 1. `padToSquare(img, isCenterImage = true)`: the shorter side is padded with zeros to the
///    longer one; `round(diff / 2)` rows or columns are appended (bottom or right) and the
///    remaining `diff - round(diff / 2)` prepended (top or left), so an odd difference puts the
///    extra pixel at the bottom / right.
/// 2. `tf.image.resizeBilinear(.., [size, size], alignCorners = false, halfPixelCenters =
///    false)` when the square is not already `size` pixels: TensorFlow's legacy bilinear
///    resize, source coordinate `dst * (in / out)`, no antialiasing.
/// 3. `normalize(x, MEAN_RGB) / 255`.
///
/// Returns `[crops.len(), 3, size, size]` (channels first, RGB).
pub fn to_batch_tensor(
    crops: &[RgbImage],
    size: usize,
    device: &Device,
) -> Result<Tensor<4>, FaceError> {
    if crops.is_empty() {
        return Err(FaceError::Input("no face crops given".into()));
    }
    if size == 0 {
        return Err(FaceError::Input(
            "the network input size must be positive".into(),
        ));
    }
    let plane = size * size;
    let mut values = Vec::with_capacity(crops.len() * 3 * plane);
    for (i, crop) in crops.iter().enumerate() {
        let (w, h) = crop.dimensions();
        if w == 0 || h == 0 {
            return Err(FaceError::Input(format!(
                "face crop {i} is empty ({w}x{h} pixels)"
            )));
        }
        let hwc = square_resized(crop, SquarePad::Centre, size);
        let mut chw = vec![0.0f32; 3 * plane];
        for (p, px) in hwc.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * plane + p] = (px[c] - MEAN_RGB[c]) / 255.0;
            }
        }
        values.extend(chw);
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [crops.len(), 3, size, size]),
        device,
    ))
}

/// A square float picture, row-major HWC.
struct Square {
    side: usize,
    values: Vec<f32>,
}

/// face-api's `padToSquare`: zeros added to the shorter side (see [`SquarePad`]).
fn pad_to_square(crop: &RgbImage, pad: SquarePad) -> Square {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    let side = w.max(h);
    let diff = side - w.min(h);
    // JavaScript's Math.round of a non-negative half: rounds .5 up.
    let prepend = match pad {
        SquarePad::Centre => diff - diff.div_ceil(2),
        SquarePad::BottomRight => 0,
    };
    let (dx, dy) = if h > w { (prepend, 0) } else { (0, prepend) };
    let mut values = vec![0.0f32; side * side * 3];
    for (x, y, px) in crop.enumerate_pixels() {
        let o = ((y as usize + dy) * side + x as usize + dx) * 3;
        for c in 0..3 {
            values[o + c] = f32::from(px.0[c]);
        }
    }
    Square { side, values }
}

/// TensorFlow's `resizeBilinear` with `alignCorners = false, halfPixelCenters = false`, as
/// tfjs's cpu backend computes it (float64 arithmetic, float32 results). A square already of
/// `size` pixels is returned as it is (face-api skips the resize then).
fn resize_bilinear_legacy(src: &Square, size: usize) -> Vec<f32> {
    if src.side == size {
        return src.values.clone();
    }
    let n = src.side;
    let scale = n as f64 / size as f64;
    let at = |y: usize, x: usize, c: usize| f64::from(src.values[(y * n + x) * 3 + c]);
    // (floor, ceil, fraction) of each output row / column's source coordinate.
    let axis: Vec<(usize, usize, f64)> = (0..size)
        .map(|d| {
            let s = scale * d as f64;
            let lo = s.floor().max(0.0);
            let hi = (s.ceil() as usize).min(n - 1);
            (lo as usize, hi, s - lo)
        })
        .collect();
    let mut out = vec![0.0f32; size * size * 3];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_puts_the_odd_pixel_after() {
        // 3 wide, 6 high: 3 columns to add, round(1.5) = 2 appended, 1 prepended.
        let crop = RgbImage::from_pixel(3, 6, image::Rgb([10, 20, 30]));
        let sq = pad_to_square(&crop, SquarePad::Centre);
        assert_eq!(sq.side, 6);
        let column = |x: usize| sq.values[x * 3];
        assert_eq!(
            (0..6).map(column).collect::<Vec<_>>(),
            vec![0.0, 10.0, 10.0, 10.0, 0.0, 0.0]
        );
        // 5 wide, 4 high: one row appended at the bottom.
        let sq = pad_to_square(
            &RgbImage::from_pixel(5, 4, image::Rgb([1, 1, 1])),
            SquarePad::Centre,
        );
        let row = |y: usize| sq.values[y * 5 * 3];
        assert_eq!(
            (0..5).map(row).collect::<Vec<_>>(),
            vec![1.0, 1.0, 1.0, 1.0, 0.0]
        );
        // The detector's padding: all 3 columns at the right.
        let sq = pad_to_square(&crop, SquarePad::BottomRight);
        let column = |x: usize| sq.values[x * 3];
        assert_eq!(
            (0..6).map(column).collect::<Vec<_>>(),
            vec![10.0, 10.0, 10.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn legacy_bilinear_samples_at_dst_times_scale() {
        // A 4-pixel ramp resized to 3: sources 0, 4/3, 8/3 (the last clamps its upper
        // neighbour to the edge).
        let mut values = vec![0.0; 4 * 4 * 3];
        for y in 0..4 {
            for x in 0..4 {
                for c in 0..3 {
                    values[(y * 4 + x) * 3 + c] = (10 * x) as f32;
                }
            }
        }
        let out = resize_bilinear_legacy(&Square { side: 4, values }, 3);
        let row: Vec<f32> = (0..3).map(|x| out[x * 3]).collect();
        let want = [0.0, 40.0 / 3.0, 80.0 / 3.0];
        for (a, b) in row.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{row:?}");
        }
    }
}
