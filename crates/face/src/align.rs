//! Cropping faces as face-api.js does before its landmark and recognition networks.
//!
//! - A box is clipped at the picture's borders and its corner and size rounded down
//!   (face-api's `Box.clipAtImageBorders`), then cut out; the networks pad the crop to a square
//!   themselves.
//! - The encoder reads a square "chip" placed by the landmarks (face-api's
//!   `align(null, {useDlibAlignment: true})`, after dlib's face chips): its side follows the
//!   eye-to-mouth distance and the eyes and mouth sit at fixed places in it, so the encoder sees
//!   faces at one scale whatever box the detector drew. face-api does not rotate the chip; nor
//!   does this.
//!
//! face-api shifts the landmarks found in a crop by the detector box's unrounded corner
//! although it cut the crop at the rounded one; so does this (see [`crate::pipeline`]): the
//! landmarks, and the chip placed by them, are face-api's to the pixel.

use convnet_vision::BBox;
use image::RgbImage;

/// A rectangle of whole pixels inside a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// face-api's `clipAtImageBorders`: the part of `bbox` inside a `width` x `height` picture,
/// corner and size rounded down. `None` when nothing of at least one pixel remains.
pub fn clip(bbox: &BBox, width: u32, height: u32) -> Option<PixelRect> {
    let x = bbox.x1.max(0.0);
    let y = bbox.y1.max(0.0);
    let w = (bbox.x2 - x).min(width as f32 - x);
    let h = (bbox.y2 - y).min(height as f32 - y);
    let (x, y, w, h) = (x.floor(), y.floor(), w.floor(), h.floor());
    if !(w >= 1.0 && h >= 1.0) || x >= width as f32 || y >= height as f32 {
        return None;
    }
    Some(PixelRect {
        x: x as u32,
        y: y as u32,
        width: (w as u32).min(width - x as u32),
        height: (h as u32).min(height - y as u32),
    })
}

/// The part of `image` under `bbox` (see [`clip`]) and where it starts.
pub fn crop(image: &RgbImage, bbox: &BBox) -> Option<(RgbImage, PixelRect)> {
    let rect = clip(bbox, image.width(), image.height())?;
    let out = image::imageops::crop_imm(image, rect.x, rect.y, rect.width, rect.height).to_image();
    Some((out, rect))
}

/// face-api's constants for the encoder's box (its `alignDlib`): the box's side is the mean
/// eye-to-mouth distance / 0.45, and the centre of the eyes and mouth sits at 50 % of its
/// width and 43 % of its height.
const CHIP_SCALE: f64 = 0.45;
const CHIP_X: f64 = 0.5;
const CHIP_Y: f64 = 0.43;

/// The square box the encoder reads, from 68 landmarks (iBUG order) in the picture's pixels,
/// as face-api computes it for its descriptors (`landmarks.align(null, {useDlibAlignment:
/// true})`, `alignDlib`): sized by the eye-to-mouth distance and placed by the centre of the
/// two eyes' and the mouth's centres, corner rounded down and kept at or right/below the
/// picture's top-left corner. face-api caps the side at `crop + corner` for the `crop`
/// (width, height) the landmarks were found in, which only a crop smaller than the chip
/// reaches. Computed in float64 as JavaScript does, so that every floor lands where face-api's
/// does. `None` unless there are 68 finite points and the side is at least a pixel.
pub fn chip_box(points: &[[f64; 2]], crop: (u32, u32)) -> Option<BBox> {
    if points.len() != 68 || points.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    // getCenterPoint: the sum in order, then a division.
    let centre = |pts: &[[f64; 2]]| {
        let (x, y) = pts
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        [x / pts.len() as f64, y / pts.len() as f64]
    };
    let eyes_mouth = [
        centre(&points[36..42]),
        centre(&points[42..48]),
        centre(&points[48..68]),
    ];
    let mouth = eyes_mouth[2];
    // Point.magnitude: sqrt(x² + y²).
    let to_mouth = |p: [f64; 2]| {
        let (dx, dy) = (mouth[0] - p[0], mouth[1] - p[1]);
        (dx * dx + dy * dy).sqrt()
    };
    let eye_to_mouth = (to_mouth(eyes_mouth[0]) + to_mouth(eyes_mouth[1])) / 2.0;
    let size = (eye_to_mouth / CHIP_SCALE).floor();
    let reference = centre(&eyes_mouth);
    let x = (reference[0] - CHIP_X * size).max(0.0).floor();
    let y = (reference[1] - CHIP_Y * size).max(0.0).floor();
    let width = size.min(f64::from(crop.0) + x);
    let height = size.min(f64::from(crop.1) + y);
    if !(width >= 1.0 && height >= 1.0) {
        return None;
    }
    BBox::from_xywh(x as f32, y as f32, width as f32, height as f32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_rounds_down_like_face_api() {
        // Inside: corner and size floored separately.
        let r = clip(&BBox::new(10.7, 20.2, 50.9, 60.1).unwrap(), 100, 100).unwrap();
        assert_eq!((r.x, r.y, r.width, r.height), (10, 20, 40, 39));
        // Over the top-left and bottom-right borders.
        let r = clip(&BBox::new(-5.0, -3.5, 120.0, 80.0).unwrap(), 100, 50).unwrap();
        assert_eq!((r.x, r.y, r.width, r.height), (0, 0, 100, 50));
        // Outside or thinner than a pixel.
        assert!(clip(&BBox::new(150.0, 0.0, 160.0, 10.0).unwrap(), 100, 100).is_none());
        assert!(clip(&BBox::new(10.0, 10.0, 10.5, 30.0).unwrap(), 100, 100).is_none());
    }

    #[test]
    fn crop_cuts_the_clipped_pixels() {
        let image = RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let (c, r) = crop(&image, &BBox::new(2.5, 1.0, 6.0, 5.0).unwrap()).unwrap();
        assert_eq!((r.x, r.y, c.width(), c.height()), (2, 1, 3, 4));
        assert_eq!(c.get_pixel(0, 0).0, [2, 1, 0]);
        assert_eq!(c.get_pixel(2, 3).0, [4, 4, 0]);
    }

    #[test]
    fn chip_box_follows_eyes_and_mouth() {
        // Eyes centred at (40, 50) and (80, 50), mouth at (60, 95); the jaw and nose are
        // elsewhere and do not count.
        let mut points = vec![[0.0f64, 0.0]; 68];
        for (range, at) in [
            (36..42, [40.0, 50.0]),
            (42..48, [80.0, 50.0]),
            (48..68, [60.0, 95.0]),
        ] {
            for (k, i) in range.enumerate() {
                // Symmetric spread around the centre.
                let d = if k % 2 == 0 { 2.0 } else { -2.0 };
                points[i] = [at[0] + d, at[1] - d];
            }
        }
        let b = chip_box(&points, (200, 200)).unwrap();
        // Eye-to-mouth distance sqrt(20² + 45²) = 49.244; side floor(49.244 / 0.45) = 109;
        // centre of the three centres (60, 65): x = floor(60 - 54.5), y = floor(65 - 46.87).
        assert_eq!(b, BBox::from_xywh(5.0, 18.0, 109.0, 109.0).unwrap());
        assert!(chip_box(&points[..67], (200, 200)).is_none());
        // Near the top-left corner the box stays inside.
        let shifted: Vec<[f64; 2]> = points.iter().map(|p| [p[0] - 30.0, p[1] - 30.0]).collect();
        let b = chip_box(&shifted, (200, 200)).unwrap();
        assert_eq!((b.x1, b.y1), (0.0, 0.0));
        // A crop narrower than the chip caps its width at crop + corner, as face-api does.
        let b = chip_box(&points, (50, 200)).unwrap();
        assert_eq!((b.width(), b.height()), (55.0, 109.0));
        // Points that collapse to one give no chip.
        assert!(chip_box(&[[3.0, 4.0]; 68], (200, 200)).is_none());
    }
}
