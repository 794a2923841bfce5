//! Grids of equally sized tiles: a gap around and between them, an optional caption line on
//! top and optional labels left of the rows. Every picture of this crate is one of these.

use convnet_vision::chart::{GLYPH, draw_text, text_width};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

/// Pixels around and between tiles.
pub const GAP: u32 = 2;
/// Height of the caption line: one line of 8-pixel glyphs with a gap above and below.
pub const CAPTION_HEIGHT: u32 = GLYPH + 2 * GAP;

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([33, 33, 33]);

/// Where tiles go in a picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub rows: usize,
    pub cols: usize,
    /// `[width, height]` of every tile.
    pub tile: [u32; 2],
    pub caption: Option<String>,
    pub row_labels: Vec<String>,
}

impl Grid {
    pub fn new(rows: usize, cols: usize, tile: [u32; 2]) -> Self {
        Self {
            rows,
            cols,
            tile,
            caption: None,
            row_labels: Vec::new(),
        }
    }

    /// `n` tiles in rows of [`columns_for`] tiles.
    pub fn wrapping(n: usize, tile: [u32; 2]) -> Self {
        let cols = columns_for(n);
        Self::new(n.div_ceil(cols.max(1)), cols, tile)
    }

    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    pub fn with_row_labels(mut self, labels: Vec<String>) -> Self {
        self.row_labels = labels;
        self
    }

    fn label_width(&self) -> u32 {
        self.row_labels
            .iter()
            .map(|l| text_width(l, 1) + GAP)
            .max()
            .unwrap_or(0)
    }

    fn caption_height(&self) -> u32 {
        if self.caption.is_some() {
            CAPTION_HEIGHT
        } else {
            0
        }
    }

    /// `[width, height]` of the picture: the tiles with their gaps, widened to fit the caption.
    pub fn size(&self) -> [u32; 2] {
        let span = |n: usize, tile: u32| n as u32 * tile + (n as u32 + 1) * GAP;
        let tiles_width = self.label_width() + span(self.cols, self.tile[0]);
        let caption_width = self
            .caption
            .as_deref()
            .map_or(0, |c| text_width(c, 1) + 2 * GAP);
        [
            tiles_width.max(caption_width),
            self.caption_height() + span(self.rows, self.tile[1]),
        ]
    }

    /// The top-left corner of the tile in `row`, `col`.
    pub fn origin(&self, row: usize, col: usize) -> [u32; 2] {
        [
            self.label_width() + GAP + col as u32 * (self.tile[0] + GAP),
            self.caption_height() + GAP + row as u32 * (self.tile[1] + GAP),
        ]
    }

    /// Draws the picture; `tile(row, col)` gives each tile (`None` leaves the place empty).
    /// Tiles of another size are drawn from the tile's corner and clipped to its place.
    pub fn render(&self, mut tile: impl FnMut(usize, usize) -> Option<RgbImage>) -> RgbImage {
        let [w, h] = self.size();
        let mut out = RgbImage::from_pixel(w, h, BACKGROUND);
        if let Some(caption) = &self.caption {
            draw_text(&mut out, GAP as i32, GAP as i32, caption, 1, INK);
        }
        for row in 0..self.rows {
            if let Some(label) = self.row_labels.get(row) {
                let [_, y] = self.origin(row, 0);
                let y = y + self.tile[1].saturating_sub(GLYPH) / 2;
                draw_text(&mut out, GAP as i32, y as i32, label, 1, INK);
            }
            for col in 0..self.cols {
                let Some(img) = tile(row, col) else { continue };
                let [x, y] = self.origin(row, col);
                let [tw, th] = self.tile;
                let fitted = if img.width() > tw || img.height() > th {
                    imageops::crop_imm(&img, 0, 0, tw.min(img.width()), th.min(img.height()))
                        .to_image()
                } else {
                    img
                };
                imageops::replace(&mut out, &fitted, i64::from(x), i64::from(y));
            }
        }
        out
    }
}

/// Columns for `n` tiles in a near-square block: `ceil(sqrt(n))`.
pub fn columns_for(n: usize) -> usize {
    let mut c = (n as f64).sqrt() as usize;
    while c * c < n {
        c += 1;
    }
    c.max(1)
}

/// The whole-number factor that brings a side of `side` pixels to at least `min_tile` (1 when it
/// is already that large): nearest-neighbour upscaling by it keeps every pixel a sharp square.
pub fn upscale_factor(side: usize, min_tile: u32) -> u32 {
    let side = u32::try_from(side.max(1)).unwrap_or(u32::MAX);
    min_tile.div_ceil(side).max(1)
}

/// `img` with every pixel a `factor x factor` square.
pub fn upscale_nearest(img: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return img.clone();
    }
    imageops::resize(
        img,
        img.width() * factor,
        img.height() * factor,
        FilterType::Nearest,
    )
}

/// `img` resized to `[width, height]`: nearest neighbour when enlarging (so a small patch shows
/// its pixels rather than a blur), a triangle filter when shrinking.
pub fn resize_to(img: &RgbImage, [w, h]: [u32; 2]) -> RgbImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    let filter = if w >= img.width() && h >= img.height() {
        FilterType::Nearest
    } else {
        FilterType::Triangle
    };
    imageops::resize(img, w.max(1), h.max(1), filter)
}

/// Grey levels (`height * width`, row-major) as an RGB image.
pub fn grey_image(levels: &[u8], width: usize, height: usize) -> RgbImage {
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let v = levels[y as usize * width + x as usize];
        Rgb([v, v, v])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_counts_tiles_gaps_caption_and_labels() {
        let g = Grid::new(2, 3, [10, 20]);
        assert_eq!(g.size(), [3 * 10 + 4 * GAP, 2 * 20 + 3 * GAP]);
        let g = g.with_caption("ab");
        assert_eq!(g.size(), [38, 46 + CAPTION_HEIGHT]);
        // A caption wider than the tiles widens the picture.
        let long = Grid::new(1, 1, [4, 4]).with_caption("a long caption");
        assert_eq!(long.size()[0], 14 * 8 + 2 * GAP);
        let labelled = Grid::new(2, 1, [4, 4]).with_row_labels(vec!["a".into(), "bcd".into()]);
        assert_eq!(labelled.size()[0], 24 + GAP + 4 + 2 * GAP);
        assert_eq!(labelled.origin(1, 0), [24 + 2 * GAP, GAP + 4 + GAP]);
    }

    #[test]
    fn tiles_land_at_their_origin_and_the_rest_is_background() {
        let g = Grid::new(2, 2, [3, 3]).with_caption("x");
        let img = g.render(|r, c| {
            (r, c)
                .ne(&(1, 0))
                .then(|| RgbImage::from_pixel(3, 3, Rgb([r as u8, c as u8, 7])))
        });
        assert_eq!(img.dimensions(), (g.size()[0], g.size()[1]));
        for (r, c) in [(0, 0), (0, 1), (1, 1)] {
            let [x, y] = g.origin(r, c);
            for (dx, dy) in [(0, 0), (2, 2)] {
                assert_eq!(*img.get_pixel(x + dx, y + dy), Rgb([r as u8, c as u8, 7]));
            }
            // The gap right of and below the tile stays blank.
            assert_eq!(*img.get_pixel(x + 3, y + 3), BACKGROUND);
        }
        let [x, y] = g.origin(1, 0);
        assert_eq!(*img.get_pixel(x + 1, y + 1), BACKGROUND, "no tile given");
        // Oversized tiles are clipped to their place.
        let clipped = Grid::new(1, 2, [2, 2]).render(|_, _| Some(RgbImage::new(5, 5)));
        assert_eq!(*clipped.get_pixel(GAP + 2, GAP), BACKGROUND);
    }

    #[test]
    fn columns_make_a_near_square_block() {
        let cols: Vec<usize> = [0, 1, 2, 4, 5, 9, 10, 64, 65]
            .iter()
            .map(|&n| columns_for(n))
            .collect();
        assert_eq!(cols, [1, 1, 2, 2, 3, 3, 4, 8, 9]);
        assert_eq!(Grid::wrapping(10, [1, 1]).rows, 3);
    }

    #[test]
    fn small_kernels_grow_to_the_tile_by_whole_pixels() {
        assert_eq!(upscale_factor(3, 32), 11);
        assert_eq!(upscale_factor(7, 32), 5);
        assert_eq!(upscale_factor(11, 32), 3);
        assert_eq!(upscale_factor(64, 32), 1);
        let img = RgbImage::from_fn(2, 1, |x, _| Rgb([x as u8 * 255, 0, 0]));
        let big = upscale_nearest(&img, 3);
        assert_eq!(big.dimensions(), (6, 3));
        assert_eq!(big.get_pixel(2, 2).0[0], 0);
        assert_eq!(big.get_pixel(3, 0).0[0], 255);
    }
}
