//! Boxes drawn on pictures, with a label in a filled tag above each.

use image::{Rgb, RgbImage};

use crate::boxes::BBox;
use crate::chart::{GLYPH, draw_text, text_width};

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// The outline of `bbox` (pixels), `thickness` pixels wide inside it, and `label` in white on a
/// tag of the box's colour above it (below the top edge when there is no room above).
pub fn draw_box(img: &mut RgbImage, bbox: &BBox, label: &str, colour: Rgb<u8>, thickness: u32) {
    let t = i64::from(thickness.max(1));
    let (x0, y0) = (bbox.x1.round() as i64, bbox.y1.round() as i64);
    let (x1, y1) = (bbox.x2.round() as i64, bbox.y2.round() as i64);
    fill(img, x0, y0, x1, y0 + t, colour);
    fill(img, x0, y1 - t, x1, y1, colour);
    fill(img, x0, y0, x0 + t, y1, colour);
    fill(img, x1 - t, y0, x1, y1, colour);
    if label.is_empty() {
        return;
    }
    // Labels grow with the picture so they stay readable on large photos.
    let scale = (img.width().max(img.height()) / 500).clamp(1, 4);
    let tag_h = i64::from(GLYPH * scale + 4);
    let tag_w = i64::from(text_width(label, scale) + 4);
    let top = if y0 - tag_h >= 0 { y0 - tag_h } else { y0 };
    fill(img, x0, top, x0 + tag_w, top + tag_h, colour);
    draw_text(
        img,
        (x0 + 2) as i32,
        (top + 2) as i32,
        label,
        scale,
        Rgb([255, 255, 255]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_outline_and_a_tag_and_clips_at_the_edges() {
        let mut img = RgbImage::new(60, 60);
        let red = Rgb([255, 0, 0]);
        draw_box(
            &mut img,
            &BBox::new(10.0, 30.0, 40.0, 50.0).unwrap(),
            "ab",
            red,
            2,
        );
        assert_eq!(*img.get_pixel(10, 40), red);
        assert_eq!(*img.get_pixel(39, 40), red);
        assert_eq!(*img.get_pixel(25, 49), red);
        assert_eq!(
            *img.get_pixel(25, 40),
            Rgb([0, 0, 0]),
            "the inside stays as it was"
        );
        assert_eq!(*img.get_pixel(11, 19), red, "the tag sits above the box");
        // A box running off the picture does not panic.
        draw_box(
            &mut img,
            &BBox::new(-5.0, -5.0, 100.0, 100.0).unwrap(),
            "x",
            red,
            3,
        );
    }
}
