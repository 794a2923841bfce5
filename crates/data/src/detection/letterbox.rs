//! Letterboxing: a picture scaled to fit a detector's square input without changing its
//! aspect ratio, centred, the rest filled with grey, as Ultralytics' `LetterBox(center=True)`
//! does. Squashing a wide picture into a square instead would teach the network objects
//! taller than they are; [`Letterbox`] remembers the fit so boxes go in and detections come
//! back to the picture.

use convnet_vision::boxes::BBox;
use image::imageops::{FilterType, resize};
use image::{ImageBuffer, Pixel};
use serde::{Deserialize, Serialize};

/// The fill around a letterboxed picture: Ultralytics' grey, so pictures prepared by either
/// tool look alike to a network.
pub const PAD: u8 = 114;

/// How a picture sits in a square input of `side` pixels: scaled by `scale`, its top-left
/// corner at `pad` (x, y) in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Letterbox {
    pub scale: f32,
    pub pad: [f32; 2],
    pub side: usize,
}

impl Letterbox {
    /// The fit of a `width` x `height` picture into `side`: `scale = side / max(width,
    /// height)`, the scaled picture `round(width * scale)` x `round(height * scale)`, centred
    /// with whole-pixel padding (the smaller half before it, as Ultralytics rounds it). An
    /// empty picture gets scale 1 and sits at the centre.
    pub fn fit(width: u32, height: u32, side: usize) -> Self {
        let longest = width.max(height);
        if longest == 0 {
            let half = (side / 2) as f32;
            return Self {
                scale: 1.0,
                pad: [half, half],
                side,
            };
        }
        let (w, h) = scaled(width, height, side);
        Self {
            scale: (side as f64 / f64::from(longest)) as f32,
            pad: [((side - w) / 2) as f32, ((side - h) / 2) as f32],
            side,
        }
    }

    /// A box `[x1, y1, x2, y2]` in picture pixels, in input pixels.
    pub fn to_input(&self, bbox: [f32; 4]) -> [f32; 4] {
        let [px, py] = self.pad;
        let s = self.scale;
        [
            bbox[0] * s + px,
            bbox[1] * s + py,
            bbox[2] * s + px,
            bbox[3] * s + py,
        ]
    }

    /// A box in input pixels (a detection), in picture pixels. Not clipped: a detection may
    /// reach into the padding, and the caller knows the picture's size to clip to.
    pub fn to_picture(&self, bbox: BBox) -> BBox {
        let [px, py] = self.pad;
        let s = self.scale;
        BBox {
            x1: (bbox.x1 - px) / s,
            y1: (bbox.y1 - py) / s,
            x2: (bbox.x2 - px) / s,
            y2: (bbox.y2 - py) / s,
        }
    }
}

/// The size of a `width` x `height` picture scaled to fit `side`: rounded half to even in
/// `f64`, as Python's `round` does for Ultralytics, at least one pixel (extreme aspect ratios
/// round to nothing, which no resizer takes), at most `side`. Both the fit's padding and the
/// resize come from here, so they cannot disagree by a pixel.
fn scaled(width: u32, height: u32, side: usize) -> (usize, usize) {
    let scale = side as f64 / f64::from(width.max(height).max(1));
    let size =
        |v: u32| ((f64::from(v) * scale).round_ties_even() as usize).clamp(1.min(side), side);
    (size(width), size(height))
}

/// `picture` letterboxed into `side` x `side`: RGB planes, channels first (`3 * side * side`
/// values), resized with a triangle (bilinear) filter unless it already has the fitted size,
/// padded with [`PAD`].
pub fn letterbox(picture: &image::RgbImage, side: usize) -> (Vec<u8>, Letterbox) {
    letterbox_planes(picture, side)
}

/// [`letterbox`] for a greyscale picture: one plane of `side * side` values.
pub fn letterbox_grey(picture: &image::GrayImage, side: usize) -> (Vec<u8>, Letterbox) {
    letterbox_planes(picture, side)
}

fn letterbox_planes<P>(picture: &ImageBuffer<P, Vec<u8>>, side: usize) -> (Vec<u8>, Letterbox)
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let channels = usize::from(P::CHANNEL_COUNT);
    let fit = Letterbox::fit(picture.width(), picture.height(), side);
    let plane = side * side;
    let mut out = vec![PAD; channels * plane];
    if picture.width() == 0 || picture.height() == 0 || side == 0 {
        return (out, fit);
    }
    let (w, h) = scaled(picture.width(), picture.height(), side);
    let resized;
    let source = if (w, h) == (picture.width() as usize, picture.height() as usize) {
        picture
    } else {
        // The sizes are at most `side`, which came in as a `usize` of an allocated square.
        resized = resize(picture, w as u32, h as u32, FilterType::Triangle);
        &resized
    };
    let [px, py] = fit.pad.map(|p| p as usize);
    for (y, row) in source.rows().enumerate() {
        for (x, pixel) in row.enumerate() {
            let at = (py + y) * side + px + x;
            for (c, &v) in pixel.channels().iter().enumerate() {
                out[c * plane + at] = v;
            }
        }
    }
    (out, fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_picture_is_scaled_by_its_width_and_centred_vertically() {
        let fit = Letterbox::fit(200, 100, 64);
        assert_eq!(
            fit,
            Letterbox {
                scale: 0.32,
                pad: [0.0, 16.0],
                side: 64
            }
        );
        // A tall one is centred horizontally: 30 * 64 / 90 = 21.33 -> 21 columns. The odd
        // margin puts the smaller half first, as Ultralytics' round(d / 2 - 0.1) does:
        // 64 - 21 = 43 -> 21 before, 22 after.
        let tall = Letterbox::fit(30, 90, 64);
        assert_eq!(tall.pad, [21.0, 0.0]);
        // A square picture of the input's size is untouched.
        assert_eq!(
            Letterbox::fit(416, 416, 416),
            Letterbox {
                scale: 1.0,
                pad: [0.0, 0.0],
                side: 416
            }
        );
    }

    #[test]
    fn sizes_round_half_to_even_as_python_does() {
        // 41x8 into 20: 8 * 20 / 41 = 3.90 -> 4; 5x1 into 2: 1 * 2 / 5 = 0.4 -> at least 1.
        assert_eq!(scaled(41, 8, 20), (20, 4));
        assert_eq!(scaled(5, 1, 2), (2, 1));
        // 10x5 into 3: 5 * 0.3 = 1.5 -> 2 (even); 10x7 into 5: 7 * 0.5 = 3.5 -> 4; 10x5 into
        // 5: 2.5 -> 2, where rounding half away from zero would give 3.
        assert_eq!(scaled(10, 5, 3), (3, 2));
        assert_eq!(scaled(10, 7, 5), (5, 4));
        assert_eq!(scaled(10, 5, 5), (5, 2));
        assert_eq!(Letterbox::fit(10, 5, 5).pad, [0.0, 1.0]);
    }

    #[test]
    fn boxes_round_trip_between_picture_and_input() {
        let fit = Letterbox::fit(200, 100, 64);
        // By hand: x * 0.32, y * 0.32 + 16.
        let input = fit.to_input([50.0, 25.0, 150.0, 75.0]);
        let want = [16.0, 24.0, 48.0, 40.0];
        for (a, b) in input.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{input:?}");
        }
        let back = fit.to_picture(BBox {
            x1: input[0],
            y1: input[1],
            x2: input[2],
            y2: input[3],
        });
        for (a, b) in [back.x1, back.y1, back.x2, back.y2]
            .iter()
            .zip([50.0, 25.0, 150.0, 75.0])
        {
            assert!((a - b).abs() < 1e-3, "{back:?}");
        }
    }

    #[test]
    fn pixels_land_in_the_middle_and_grey_fills_the_rest() {
        // A flat red 200x100 picture: the letterboxed rows 16..48 are red, the rest grey.
        let red = image::RgbImage::from_pixel(200, 100, image::Rgb([200, 10, 30]));
        let (planes, fit) = letterbox(&red, 64);
        assert_eq!(planes.len(), 3 * 64 * 64);
        assert_eq!(fit.pad, [0.0, 16.0]);
        let at = |c: usize, y: usize, x: usize| planes[c * 64 * 64 + y * 64 + x];
        assert_eq!([at(0, 32, 32), at(1, 32, 32), at(2, 32, 32)], [200, 10, 30]);
        assert_eq!([at(0, 16, 0), at(1, 47, 63), at(2, 16, 63)], [200, 10, 30]);
        for (y, x) in [(0, 0), (15, 32), (48, 5), (63, 63)] {
            assert_eq!(
                [at(0, y, x), at(1, y, x), at(2, y, x)],
                [PAD; 3],
                "({y}, {x})"
            );
        }
    }

    #[test]
    fn a_picture_of_the_fitted_size_is_copied_not_resampled() {
        // 8x4 into 8: scale 1, rows 2..6, every pixel value kept exactly.
        let grey = image::GrayImage::from_fn(8, 4, |x, y| image::Luma([(x * 10 + y) as u8]));
        let (plane, fit) = letterbox_grey(&grey, 8);
        assert_eq!((fit.scale, fit.pad), (1.0, [0.0, 2.0]));
        for y in 0..4 {
            for x in 0..8 {
                assert_eq!(plane[(y + 2) * 8 + x], (x * 10 + y) as u8);
            }
        }
        assert!(plane[..16].iter().chain(&plane[48..]).all(|&v| v == PAD));
    }

    #[test]
    fn channel_planes_keep_their_order() {
        // Upscaling a 2x1 picture to 4: columns keep their colours' order in every plane.
        let two = image::RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let (planes, fit) = letterbox(&two, 4);
        assert_eq!((fit.scale, fit.pad), (2.0, [0.0, 1.0]));
        let (red, blue) = (&planes[..16], &planes[32..]);
        assert!(red[4] > red[7] && blue[7] > blue[4]);
        // Green is 0 on the picture's rows (1 and 2), grey on the padding rows.
        let green = &planes[16..32];
        assert!(green[4..12].iter().all(|&v| v == 0));
        assert!(green[..4].iter().chain(&green[12..]).all(|&v| v == PAD));
    }
}
