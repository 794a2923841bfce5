//! The image patches that excite a unit most (Zeiler and Fergus' "top 9"): for one channel of a
//! layer, the positions with the highest activations over a set of images, each cut out of its
//! input image along the unit's receptive field.
//!
//! Every image gives its single strongest position, so one image cannot fill the whole row with
//! near-copies of one patch. Only when there are fewer images than patches wanted do further
//! positions of the same images come in, strongest first, each kept only if its window overlaps
//! every window already chosen in that image by an IoU under [`MAX_IOU`].

use convnet_vision::Plane;
use image::{Rgb, RgbImage};

use crate::grid::{Grid, resize_to};
use crate::receptive::{Field, Rect};

/// Further patches of one image must overlap the ones chosen before by less than this.
pub const MAX_IOU: f64 = 0.5;

/// One chosen patch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// The image's index in the order the maps were added.
    pub image: usize,
    /// Row and column in the layer's map.
    pub y: usize,
    pub x: usize,
    /// The unit's activation there.
    pub score: f32,
    /// The receptive field there, unclipped (it may reach into the padding).
    pub window: Rect,
}

/// Collects the top patches of one unit while images go by: only each image's best position is
/// kept, plus the whole maps of the first images for as long as there are fewer images than
/// patches wanted (they are the only ones further positions can come from).
#[derive(Debug, Clone)]
pub struct TopPatches {
    k: usize,
    field: Field,
    best: Vec<Pick>,
    maps: Vec<(usize, Plane)>,
}

impl TopPatches {
    /// Up to `k` patches of a layer whose units see `field`.
    pub fn new(k: usize, field: Field) -> Self {
        Self {
            k,
            field,
            best: Vec::new(),
            maps: Vec::new(),
        }
    }

    /// The unit's map over image number `image`. Non-finite activations never win.
    pub fn add(&mut self, image: usize, map: &Plane) {
        let best = map
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .fold(None, |best: Option<(usize, f32)>, (i, &v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((i, v)),
            });
        let Some((i, score)) = best else { return };
        self.best.push(self.pick(image, map.width, i, score));
        if self.best.len() < self.k {
            self.maps.push((image, map.clone()));
        } else {
            self.maps.clear();
        }
    }

    fn pick(&self, image: usize, width: usize, index: usize, score: f32) -> Pick {
        let (y, x) = (index / width.max(1), index % width.max(1));
        Pick {
            image,
            y,
            x,
            score,
            window: self.field.window(y, x),
        }
    }

    /// The chosen patches, strongest first (ties: the earlier image, then the earlier position).
    pub fn finish(self) -> Vec<Pick> {
        let by_score = |a: &Pick, b: &Pick| {
            b.score
                .total_cmp(&a.score)
                .then(a.image.cmp(&b.image))
                .then((a.y, a.x).cmp(&(b.y, b.x)))
        };
        let mut chosen = self.best.clone();
        chosen.sort_by(by_score);
        chosen.truncate(self.k);
        if chosen.len() < self.k {
            let mut more: Vec<Pick> = self
                .maps
                .iter()
                .flat_map(|(image, map)| {
                    map.values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(i, &v)| self.pick(*image, map.width, i, v))
                })
                .collect();
            more.sort_by(by_score);
            let input = self.field.input;
            for candidate in more {
                if chosen.len() >= self.k {
                    break;
                }
                let shown = candidate.window.clipped(input);
                // A window wholly in the padding has no area, so IoU cannot tell it from
                // itself: the position decides.
                let apart = chosen
                    .iter()
                    .filter(|c| c.image == candidate.image)
                    .all(|c| {
                        (c.y, c.x) != (candidate.y, candidate.x)
                            && c.window.clipped(input).iou(&shown) < MAX_IOU
                    });
                if apart {
                    chosen.push(candidate);
                }
            }
            chosen.sort_by(by_score);
        }
        chosen
    }
}

/// The pixels of `image` inside `window`; what lies outside the image (the network's padding)
/// is `fill`.
pub fn cut(image: &RgbImage, window: Rect, fill: Rgb<u8>) -> RgbImage {
    let w = u32::try_from(window.width()).unwrap_or(u32::MAX).max(1);
    let h = u32::try_from(window.height()).unwrap_or(u32::MAX).max(1);
    RgbImage::from_fn(w, h, |x, y| {
        let (ix, iy) = (window.x0 + i64::from(x), window.y0 + i64::from(y));
        if (0..i64::from(image.width())).contains(&ix)
            && (0..i64::from(image.height())).contains(&iy)
        {
            *image.get_pixel(ix as u32, iy as u32)
        } else {
            fill
        }
    })
}

/// `[width, height]` of a patch tile: the field's shape with its longer side `side` pixels.
pub fn tile_for(field: &Field, side: u32) -> [u32; 2] {
    let (fh, fw) = (field.rows.size.max(1) as f64, field.cols.size.max(1) as f64);
    let long = fh.max(fw);
    let scaled = |v: f64| ((f64::from(side) * v / long).round() as u32).max(1);
    [scaled(fw), scaled(fh)]
}

/// One row per unit, labelled, its patches left to right (strongest first) at `tile` size;
/// rows with fewer patches than `columns` end early.
pub fn patch_grid(
    units: &[(usize, Vec<RgbImage>)],
    columns: usize,
    tile: [u32; 2],
    caption: &str,
) -> RgbImage {
    let labels = units.iter().map(|(u, _)| format!("unit {u}")).collect();
    Grid::new(units.len(), columns, tile)
        .with_caption(caption)
        .with_row_labels(labels)
        .render(|r, c| units[r].1.get(c).map(|p| resize_to(p, tile)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receptive::AxisField;

    /// A 3x3 window every 2 pixels over a 10x10 input: a 4x4 map.
    fn field() -> Field {
        let axis = AxisField {
            size: 3,
            jump: 2,
            start: 0,
        };
        Field {
            rows: axis,
            cols: axis,
            input: [10, 10],
            output: [4, 4],
        }
    }

    fn map(peaks: &[(usize, f32)]) -> Plane {
        let mut values = vec![0.0; 16];
        for &(i, v) in peaks {
            values[i] = v;
        }
        Plane::new(4, 4, values).unwrap()
    }

    #[test]
    fn each_image_gives_its_best_position_and_the_strongest_images_win() {
        let mut top = TopPatches::new(2, field());
        top.add(0, &map(&[(5, 1.0), (6, 0.9)]));
        top.add(1, &map(&[(15, 3.0)]));
        top.add(2, &map(&[(0, 2.0), (1, 2.5)]));
        let picks = top.finish();
        let got: Vec<_> = picks.iter().map(|p| (p.image, p.y, p.x, p.score)).collect();
        assert_eq!(got, [(1, 3, 3, 3.0), (2, 0, 1, 2.5)]);
        assert_eq!(
            picks[0].window,
            Rect {
                x0: 6,
                y0: 6,
                x1: 9,
                y1: 9
            }
        );
    }

    #[test]
    fn with_fewer_images_further_positions_must_overlap_little() {
        let mut top = TopPatches::new(4, field());
        // Position (0, 0) (window 0..3 x 0..3) is best; (0, 1) (columns 2..5) overlaps it by
        // 3/15 and comes in; so do (1, 0) (3/15 and 1/17) and (1, 1) (1/17, 3/15, 3/15).
        top.add(
            0,
            &map(&[(0, 5.0), (1, 4.0), (4, 3.0), (5, 2.0), (10, 1.0)]),
        );
        let picks = top.finish();
        let got: Vec<_> = picks.iter().map(|p| (p.y, p.x)).collect();
        assert_eq!(got, [(0, 0), (0, 1), (1, 0), (1, 1)]);
        for (i, a) in picks.iter().enumerate() {
            for b in &picks[..i] {
                assert!(a.window.iou(&b.window) < MAX_IOU);
            }
        }
    }

    #[test]
    fn overlapping_positions_are_skipped() {
        // A 5x5 window every pixel: neighbours overlap by 20/30 > 0.5, so the next patch after
        // (0, 0) must be at least 2 away.
        let axis = AxisField {
            size: 5,
            jump: 1,
            start: 0,
        };
        let field = Field {
            rows: axis,
            cols: axis,
            input: [8, 8],
            output: [4, 4],
        };
        let mut top = TopPatches::new(2, field);
        top.add(0, &map(&[(0, 9.0), (1, 8.0), (4, 7.0), (2, 1.0)]));
        let got: Vec<_> = top.finish().iter().map(|p| (p.y, p.x)).collect();
        assert_eq!(got, [(0, 0), (0, 2)]);
    }

    #[test]
    fn non_finite_maps_give_nothing_and_k_bounds_the_count() {
        let mut top = TopPatches::new(3, field());
        top.add(0, &Plane::new(4, 4, vec![f32::NAN; 16]).unwrap());
        assert!(top.clone().finish().is_empty());
        top.add(1, &map(&[]));
        // An all-zero map: every window of the 4x4 map that overlaps little with the others.
        let picks = top.finish();
        assert_eq!(picks.len(), 3);
        assert!(picks.iter().all(|p| p.image == 1 && p.score == 0.0));
    }

    #[test]
    fn cut_fills_the_padding() {
        let img = RgbImage::from_fn(4, 4, |x, y| Rgb([x as u8, y as u8, 0]));
        let patch = cut(
            &img,
            Rect {
                x0: -1,
                y0: 2,
                x1: 2,
                y1: 5,
            },
            Rgb([9, 9, 9]),
        );
        assert_eq!(patch.dimensions(), (3, 3));
        assert_eq!(*patch.get_pixel(0, 0), Rgb([9, 9, 9]));
        assert_eq!(*patch.get_pixel(1, 0), Rgb([0, 2, 0]));
        assert_eq!(*patch.get_pixel(2, 1), Rgb([1, 3, 0]));
        assert_eq!(*patch.get_pixel(1, 2), Rgb([9, 9, 9]));
    }

    #[test]
    fn the_grid_has_a_labelled_row_per_unit() {
        let f = field();
        assert_eq!(tile_for(&f, 64), [64, 64]);
        let tall = Field {
            rows: AxisField { size: 6, ..f.rows },
            ..f
        };
        assert_eq!(tile_for(&tall, 60), [30, 60]);
        let patch = RgbImage::from_pixel(3, 3, Rgb([200, 0, 0]));
        let units = vec![(3, vec![patch.clone(), patch.clone()]), (12, vec![patch])];
        let img = patch_grid(&units, 2, [12, 12], "layer");
        let grid = Grid::new(2, 2, [12, 12])
            .with_caption("layer")
            .with_row_labels(vec!["unit 3".into(), "unit 12".into()]);
        assert_eq!(img.dimensions(), (grid.size()[0], grid.size()[1]));
        let [x, y] = grid.origin(1, 0);
        assert_eq!(*img.get_pixel(x + 11, y + 11), Rgb([200, 0, 0]));
        let [x, y] = grid.origin(1, 1);
        assert_eq!(
            *img.get_pixel(x + 5, y + 5),
            Rgb([255, 255, 255]),
            "one patch only"
        );
    }
}
