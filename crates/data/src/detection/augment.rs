//! Augmentations for detection that move the boxes with the pixels, after Ultralytics' recipe:
//! mosaic (four pictures in one), a random scale and translation, a horizontal flip and HSV
//! colour jitter, on letterboxed square samples (`u8`, channels first).
//!
//! Every random choice is drawn from the generator handed in, which the loader seeds per
//! `(seed, epoch, example)`, so a sample repeats exactly. The draws happen in a fixed order
//! whatever their outcome, so one choice never shifts the others.
//!
//! Coordinates are continuous (pixel `i` covers `[i, i + 1)`): pixels are sampled at their
//! centres through the same map the boxes go through, so a box stays on its object's pixels.

use rand::RngExt;

use super::LabelledBox;
use super::letterbox::PAD;
use crate::DataError;
use crate::augment::AugmentRng;

/// One letterboxed training picture: `channels x side x side` pixels and its boxes in them.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub pixels: &'a [u8],
    pub boxes: &'a [LabelledBox],
}

/// How strongly to augment. Zero everywhere ([`BoxAugment::none`]) leaves samples untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxAugment {
    /// Probability of a left-right mirror.
    pub flip: f32,
    /// The picture is scaled by a factor uniform in `[1 - scale, 1 + scale]`.
    pub scale: f32,
    /// The picture moves by up to `translate * side` pixels along each axis.
    pub translate: f32,
    /// Hue shift (a fraction of the colour circle), saturation and value gains: each drawn
    /// uniform in `[-g, g]`, the gains applied as `1 + g`.
    pub hsv: [f32; 3],
    /// Probability of a mosaic of four samples.
    pub mosaic: f32,
}

/// What [`BoxAugment::parse`] accepts, for error messages and help text.
pub const SPEC_HELP: &str = "flip[=P] (default 0.5), scale=S (0 to 0.9), translate=T (0 to \
     0.5), hsv[=H:S:V] (0.015:0.7:0.4), mosaic[=P] (1), default (all of these), or none";

const HSV_DEFAULT: [f32; 3] = [0.015, 0.7, 0.4];

impl BoxAugment {
    pub fn none() -> Self {
        Self {
            flip: 0.0,
            scale: 0.0,
            translate: 0.0,
            hsv: [0.0; 3],
            mosaic: 0.0,
        }
    }

    /// Ultralytics' defaults for detection training.
    pub fn detection_default() -> Self {
        Self {
            flip: 0.5,
            scale: 0.5,
            translate: 0.1,
            hsv: HSV_DEFAULT,
            mosaic: 1.0,
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Self::none()
    }

    /// Parses comma-separated `flip[=P]`, `scale=S`, `translate=T`, `hsv[=H:S:V]`,
    /// `mosaic[=P]`, `default`; `none` or an empty string for none. Later items override
    /// earlier ones, so `default,mosaic=0` is the defaults without mosaic.
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        let spec = spec.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        let mut a = Self::none();
        for item in spec.split(',').map(str::trim) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "flip" => a.flip = number(item, value, Some(0.5), 1.0)?,
                "scale" => a.scale = number(item, value, None, 0.9)?,
                "translate" => a.translate = number(item, value, None, 0.5)?,
                "mosaic" => a.mosaic = number(item, value, Some(1.0), 1.0)?,
                "hsv" => a.hsv = hsv(item, value)?,
                "default" if value.is_none() => a = Self::detection_default(),
                "none" => {
                    return Err(DataError::Augment(format!(
                        "\"none\" cannot be combined with other augmentations in \"{spec}\""
                    )));
                }
                _ => {
                    return Err(DataError::Augment(format!(
                        "unknown detection augmentation \"{item}\"; valid: {SPEC_HELP}"
                    )));
                }
            }
        }
        Ok(a)
    }

    /// The settings as a spec that parses back to the same value; `none` when all are zero.
    pub fn describe(&self) -> String {
        let mut items = Vec::new();
        for (name, v) in [
            ("flip", self.flip),
            ("scale", self.scale),
            ("translate", self.translate),
        ] {
            if v != 0.0 {
                items.push(format!("{name}={v}"));
            }
        }
        if self.hsv != [0.0; 3] {
            let [h, s, v] = self.hsv;
            items.push(format!("hsv={h}:{s}:{v}"));
        }
        if self.mosaic != 0.0 {
            items.push(format!("mosaic={}", self.mosaic));
        }
        if items.is_empty() {
            "none".into()
        } else {
            items.join(",")
        }
    }

    /// Sample `index` of `len` (fetched with `pick`), augmented: with probability `mosaic`
    /// (when `len >= 4`) a mosaic of it and three samples drawn at random; then a random
    /// scale and translation, a flip, HSV jitter. Returns `channels x side x side` pixels and
    /// the boxes that stay visible (clipped to the picture, wider and taller than 2 pixels,
    /// more than a tenth of their transformed area inside, aspect ratio under 100: Ultralytics'
    /// `box_candidates`). When no scale, translation or mosaic applies, the boxes pass
    /// unchanged, so turning geometry off never drops a label.
    ///
    /// Panics if a sample does not hold `channels * side * side` pixels (the caller
    /// letterboxed it; a mismatch is a bug, not bad data).
    pub fn apply<'a>(
        &self,
        pick: &dyn Fn(usize) -> Sample<'a>,
        len: usize,
        index: usize,
        side: usize,
        channels: usize,
        rng: &mut AugmentRng,
    ) -> (Vec<u8>, Vec<LabelledBox>) {
        let scale = bounded(self.scale, 0.99);
        let translate = bounded(self.translate, 1.0);
        let mosaic = rng.random::<f32>() < bounded(self.mosaic, 1.0) && len >= 4;
        let (canvas, canvas_side, boxes) = if mosaic {
            let (pixels, boxes) = mosaic_of(pick, len, index, side, channels, rng);
            (std::borrow::Cow::Owned(pixels), 2 * side, boxes)
        } else {
            let sample = checked(pick(index), side, channels);
            let boxes = sample.boxes.iter().map(|&b| (b, b.bbox)).collect();
            (std::borrow::Cow::Borrowed(sample.pixels), side, boxes)
        };
        // Ultralytics' random_perspective without rotation or shear: about the canvas centre,
        // scaled, then placed at the output's centre moved by the translation.
        let s = 1.0 + uniform(rng, scale);
        let shift = [uniform(rng, translate), uniform(rng, translate)].map(|t| t * side as f32);
        let map = Affine {
            scale: s,
            offset: shift.map(|t| side as f32 / 2.0 + t - s * canvas_side as f32 / 2.0),
        };
        let (mut pixels, mut boxes) = if !mosaic && map.is_identity() {
            (
                canvas.into_owned(),
                boxes.into_iter().map(|(b, _)| b).collect(),
            )
        } else {
            let pixels = warp(&canvas, canvas_side, channels, side, map);
            (pixels, visible_boxes(&boxes, map, side))
        };
        if rng.random::<f32>() < bounded(self.flip, 1.0) {
            flip(&mut pixels, &mut boxes, side);
        }
        let jitter = self.hsv.map(|g| bounded(g, 1.0)).map(|g| uniform(rng, g));
        if jitter != [0.0; 3] {
            colour_jitter(&mut pixels, side * side, channels, jitter);
        }
        (pixels, boxes)
    }
}

/// `value` as a number from 0 to `hi`, or `default` when absent (`None`: a value is needed).
fn number(
    item: &str,
    value: Option<&str>,
    default: Option<f32>,
    hi: f32,
) -> Result<f32, DataError> {
    let wanted = || {
        DataError::Augment(format!(
            "\"{item}\" needs a number from 0 to {hi}; valid: {SPEC_HELP}"
        ))
    };
    match value {
        None => default.ok_or_else(wanted),
        Some(v) => match v.parse::<f32>() {
            Ok(x) if (0.0..=hi).contains(&x) => Ok(x),
            _ => Err(wanted()),
        },
    }
}

fn hsv(item: &str, value: Option<&str>) -> Result<[f32; 3], DataError> {
    let Some(v) = value else {
        return Ok(HSV_DEFAULT);
    };
    let parts: Vec<Option<f32>> = v
        .split(':')
        .map(|p| {
            p.trim()
                .parse::<f32>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
        })
        .collect();
    match parts[..] {
        [Some(h), Some(s), Some(v)] => Ok([h, s, v]),
        _ => Err(DataError::Augment(format!(
            "\"{item}\" needs three numbers from 0 to 1 as H:S:V, e.g. hsv=0.015:0.7:0.4; \
             valid: {SPEC_HELP}"
        ))),
    }
}

/// A setting clamped to `0..=hi`, NaN as 0: the fields are public, and a stray value must not
/// turn a picture inside out.
fn bounded(v: f32, hi: f32) -> f32 {
    if v.is_nan() { 0.0 } else { v.clamp(0.0, hi) }
}

/// Uniform in `[-max, max]`; always one draw, so the stream advances the same for any `max`.
fn uniform(rng: &mut AugmentRng, max: f32) -> f32 {
    (rng.random::<f32>() * 2.0 - 1.0) * max
}

fn checked<'a>(sample: Sample<'a>, side: usize, channels: usize) -> Sample<'a> {
    assert_eq!(
        sample.pixels.len(),
        channels * side * side,
        "a detection sample must hold channels x side x side pixels"
    );
    sample
}

/// A box as it travels: the label (its `bbox` the visible extent so far) and its full,
/// unclipped extent, against which the visible share is measured.
type Travelling = (LabelledBox, [f32; 4]);

/// Four samples on a `2 side` canvas, Ultralytics' `load_mosaic`: `index` and three drawn at
/// random meet corner to corner at a random centre in `[side / 2, 3 side / 2]`, each cut at
/// the canvas edge.
fn mosaic_of<'a>(
    pick: &dyn Fn(usize) -> Sample<'a>,
    len: usize,
    index: usize,
    side: usize,
    channels: usize,
    rng: &mut AugmentRng,
) -> (Vec<u8>, Vec<Travelling>) {
    let big = 2 * side;
    let picks = [
        index,
        rng.random_range(0..len),
        rng.random_range(0..len),
        rng.random_range(0..len),
    ];
    let xc = rng.random_range(side / 2..=3 * side / 2) as isize;
    let yc = rng.random_range(side / 2..=3 * side / 2) as isize;
    let s = side as isize;
    let corners = [(xc - s, yc - s), (xc, yc - s), (xc - s, yc), (xc, yc)];
    let mut canvas = vec![PAD; channels * big * big];
    let mut boxes = Vec::new();
    for (&i, (ox, oy)) in picks.iter().zip(corners) {
        let sample = checked(pick(i), side, channels);
        // The columns of the sample that land on the canvas; rows likewise.
        let cols = (-ox).max(0)..(big as isize - ox).min(s);
        let rows = (-oy).max(0)..(big as isize - oy).min(s);
        for c in (0..channels).filter(|_| !cols.is_empty()) {
            for y in rows.clone() {
                let from = (c * side + y as usize) * side;
                let to = (c * big + (y + oy) as usize) * big + (ox + cols.start) as usize;
                let row = &sample.pixels[from + cols.start as usize..from + cols.end as usize];
                canvas[to..to + row.len()].copy_from_slice(row);
            }
        }
        let (dx, dy) = (ox as f32, oy as f32);
        for b in sample.boxes {
            let [x1, y1, x2, y2] = b.bbox;
            let full = [x1 + dx, y1 + dy, x2 + dx, y2 + dy];
            let seen = full.map(|v| v.clamp(0.0, big as f32));
            if seen[2] > seen[0] && seen[3] > seen[1] {
                boxes.push((LabelledBox { bbox: seen, ..*b }, full));
            }
        }
    }
    (canvas, boxes)
}

/// `x -> scale * x + offset` on both axes, in continuous pixel coordinates.
#[derive(Debug, Clone, Copy)]
struct Affine {
    scale: f32,
    offset: [f32; 2],
}

impl Affine {
    fn is_identity(&self) -> bool {
        self.scale == 1.0 && self.offset == [0.0, 0.0]
    }

    fn apply(&self, [x1, y1, x2, y2]: [f32; 4]) -> [f32; 4] {
        let (s, [ox, oy]) = (self.scale, self.offset);
        // The scale is positive, so the corners' extent is the image of two corners.
        [x1 * s + ox, y1 * s + oy, x2 * s + ox, y2 * s + oy]
    }
}

/// The boxes through `map`, clipped to the `side` square, kept by Ultralytics' rule.
fn visible_boxes(boxes: &[Travelling], map: Affine, side: usize) -> Vec<LabelledBox> {
    let edge = side as f32;
    boxes
        .iter()
        .filter_map(|(b, full)| {
            let [fx1, fy1, fx2, fy2] = map.apply(*full);
            let bbox = map.apply(b.bbox).map(|v| v.clamp(0.0, edge));
            let (w, h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
            let full_area = (fx2 - fx1) * (fy2 - fy1);
            let keep = w > 2.0 && h > 2.0 && w * h > 0.1 * full_area && (w / h).max(h / w) < 100.0;
            keep.then_some(LabelledBox { bbox, ..*b })
        })
        .collect()
}

/// Where one output column (or row) samples the input: two neighbouring input pixels and
/// their weights, as indices into the input line padded with one [`PAD`] pixel at each end
/// (index 0 and `len + 1`), so a neighbour past the edge reads as padding without a branch.
#[derive(Clone, Copy)]
struct Taps {
    at: [usize; 2],
    weight: [f32; 2],
}

fn taps(out_len: usize, in_len: usize, scale: f32, offset: f32) -> Vec<Taps> {
    let padded = |v: f32| (v.clamp(-1.0, in_len as f32) + 1.0) as usize;
    (0..out_len)
        .map(|i| {
            // The output pixel's centre, back in the input, as a pixel-centre index.
            let u = (i as f32 + 0.5 - offset) / scale - 0.5;
            let lo = u.floor();
            let f = u - lo;
            Taps {
                at: [padded(lo), padded(lo + 1.0)],
                weight: [1.0 - f, f],
            }
        })
        .collect()
}

/// The `src_side` square `src` resampled bilinearly through `map` into a `side` square.
/// Separable, since the map has no rotation: each input row the output reaches is first
/// resampled along x, then pairs of those rows are blended along y.
fn warp(src: &[u8], src_side: usize, channels: usize, side: usize, map: Affine) -> Vec<u8> {
    let mut out = vec![PAD; channels * side * side];
    let n = src_side;
    let xs = taps(side, n, map.scale, map.offset[0]);
    let ys = taps(side, n, map.scale, map.offset[1]);
    let (Some(lo), Some(hi)) = (
        ys.iter().flat_map(|t| t.at).min(),
        ys.iter().flat_map(|t| t.at).max(),
    ) else {
        return out;
    };
    let pad = f32::from(PAD);
    let mut line = vec![PAD; n + 2];
    let mut rows = vec![0.0f32; (hi - lo + 1) * side];
    for c in 0..channels {
        let plane = &src[c * n * n..(c + 1) * n * n];
        for (r, resampled) in (lo..=hi).zip(rows.chunks_exact_mut(side)) {
            if r == 0 || r == n + 1 {
                resampled.fill(pad);
                continue;
            }
            line[1..=n].copy_from_slice(&plane[(r - 1) * n..r * n]);
            for (v, t) in resampled.iter_mut().zip(&xs) {
                *v =
                    t.weight[0] * f32::from(line[t.at[0]]) + t.weight[1] * f32::from(line[t.at[1]]);
            }
        }
        let dst = &mut out[c * side * side..(c + 1) * side * side];
        for (row, t) in dst.chunks_exact_mut(side).zip(&ys) {
            let above = &rows[(t.at[0] - lo) * side..][..side];
            let below = &rows[(t.at[1] - lo) * side..][..side];
            let [wa, wb] = t.weight;
            for ((o, &a), &b) in row.iter_mut().zip(above).zip(below) {
                *o = (wa * a + wb * b + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Mirrors the pixels and boxes left to right.
fn flip(pixels: &mut [u8], boxes: &mut [LabelledBox], side: usize) {
    for row in pixels.chunks_exact_mut(side.max(1)) {
        row.reverse();
    }
    let edge = side as f32;
    for b in boxes {
        let [x1, y1, x2, y2] = b.bbox;
        b.bbox = [edge - x2, y1, edge - x1, y2];
    }
}

/// HSV jitter: for three channels the hue turned by `dh` of the circle and saturation and
/// value scaled by `1 + ds`, `1 + dv` (Ultralytics' RandomHSV since 8.3.79); for other
/// channel counts only the value gain, on every channel.
fn colour_jitter(pixels: &mut [u8], plane: usize, channels: usize, [dh, ds, dv]: [f32; 3]) {
    if channels != 3 {
        let gain = 1.0 + dv;
        let lut: Vec<u8> = (0..=255u8)
            .map(|p| (f32::from(p) * gain + 0.5).clamp(0.0, 255.0) as u8)
            .collect();
        pixels.iter_mut().for_each(|p| *p = lut[usize::from(*p)]);
        return;
    }
    let (r, rest) = pixels.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let (turn, s_gain, v_gain) = (dh * 6.0, 1.0 + ds, 1.0 + dv);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let [h, s, v] = rgb_to_hsv([*r, *g, *b]);
        // `turn` is within one circle, so one wrap brings the hue back into [0, 6).
        let h = h + turn;
        let h = if h < 0.0 {
            h + 6.0
        } else if h >= 6.0 {
            h - 6.0
        } else {
            h
        };
        [*r, *g, *b] = hsv_to_rgb([h, (s * s_gain).min(1.0), (v * v_gain).min(255.0)]);
    }
}

/// Hue in sixths of the circle (`[0, 6)`), saturation in `[0, 1]`, value in `[0, 255]`.
/// (Kept off `rem_euclid`, a library call per pixel that dominated the cost.)
fn rgb_to_hsv(rgb: [u8; 3]) -> [f32; 3] {
    let [r, g, b] = rgb.map(f32::from);
    let max = r.max(g).max(b);
    let d = max - r.min(g).min(b);
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        let h = (g - b) / d;
        if h < 0.0 { h + 6.0 } else { h }
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    let s = if max == 0.0 { 0.0 } else { d / max };
    [h, s, max]
}

fn hsv_to_rgb([h, s, v]: [f32; 3]) -> [u8; 3] {
    let sector = h.floor();
    let f = h - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let rgb = match sector as i32 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    };
    rgb.map(|c| (c + 0.5).clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::example_rng;

    /// Samples of `side` with varied pixels and a box each.
    struct Set {
        pixels: Vec<Vec<u8>>,
        boxes: Vec<Vec<LabelledBox>>,
    }

    impl Set {
        fn pick<'a>(&'a self) -> impl Fn(usize) -> Sample<'a> + 'a {
            |i| Sample {
                pixels: &self.pixels[i],
                boxes: &self.boxes[i],
            }
        }
    }

    fn textured(n: usize, side: usize, channels: usize) -> Set {
        Set {
            pixels: (0..n)
                .map(|k| {
                    (0..channels * side * side)
                        .map(|i| ((i * 7 + k * 31) % 251) as u8)
                        .collect()
                })
                .collect(),
            boxes: (0..n)
                .map(|k| {
                    let a = 4.0 + k as f32;
                    vec![LabelledBox::new([a, a + 1.0, a + 20.0, a + 12.0], k % 3)]
                })
                .collect(),
        }
    }

    #[test]
    fn none_leaves_the_sample_exactly_as_it_was() {
        let set = textured(5, 32, 3);
        let mut rng = example_rng(1, 0, 2);
        let (pixels, boxes) = BoxAugment::none().apply(&set.pick(), 5, 2, 32, 3, &mut rng);
        assert_eq!(pixels, set.pixels[2]);
        assert_eq!(boxes, set.boxes[2]);
        // Tiny boxes are no reason to drop a label when geometry is off.
        let tiny = Set {
            pixels: vec![vec![9; 16 * 16]],
            boxes: vec![vec![LabelledBox::new([1.0, 1.0, 2.0, 2.0], 0)]],
        };
        let (_, boxes) = BoxAugment::none().apply(&tiny.pick(), 1, 0, 16, 1, &mut rng);
        assert_eq!(boxes, tiny.boxes[0]);
    }

    #[test]
    fn a_flip_mirrors_pixels_and_boxes_as_worked_by_hand() {
        let set = textured(1, 64, 1);
        let a = BoxAugment {
            flip: 1.0,
            ..BoxAugment::none()
        };
        let (pixels, boxes) = a.apply(&set.pick(), 1, 0, 64, 1, &mut example_rng(0, 0, 0));
        // [4, 5, 24, 16] in a 64-wide picture: x1 = 64 - 24 = 40, x2 = 64 - 4 = 60.
        assert_eq!(boxes, vec![LabelledBox::new([40.0, 5.0, 60.0, 16.0], 0)]);
        for (y, x) in [(0, 0), (3, 10), (63, 63)] {
            assert_eq!(pixels[y * 64 + x], set.pixels[0][y * 64 + 63 - x]);
        }
    }

    #[test]
    fn zero_scale_and_translation_without_mosaic_is_the_identity() {
        // Flip and colour off too: every pixel and box comes back as it went in.
        let set = textured(4, 48, 3);
        let a = BoxAugment::parse("scale=0,translate=0,mosaic=0").unwrap();
        for seed in 0..5 {
            let (pixels, boxes) = a.apply(&set.pick(), 4, 1, 48, 3, &mut example_rng(seed, 0, 1));
            assert_eq!(pixels, set.pixels[1]);
            assert_eq!(boxes, set.boxes[1]);
        }
        // The warp itself, at scale 1 without a shift, copies.
        let identity = Affine {
            scale: 1.0,
            offset: [0.0, 0.0],
        };
        assert_eq!(warp(&set.pixels[0], 48, 3, 48, identity), set.pixels[0]);
        let moved = warp(
            &set.pixels[0],
            48,
            3,
            48,
            Affine {
                scale: 1.0,
                offset: [2.0, -1.0],
            },
        );
        assert_eq!(moved[5 * 48 + 7], set.pixels[0][6 * 48 + 5]);
        assert_eq!(moved[5 * 48 + 1], PAD);
    }

    #[test]
    fn the_warp_agrees_with_a_literal_bilinear_resampling() {
        // Reference: for every output pixel, its centre mapped back and interpolated from the
        // four nearest input pixel centres, PAD beyond the edge.
        let (n, side) = (10usize, 12usize);
        let src: Vec<u8> = (0..n * n).map(|i| (i * 37 % 256) as u8).collect();
        let map = Affine {
            scale: 1.3,
            offset: [-2.25, 1.5],
        };
        let got = warp(&src, n, 1, side, map);
        let at = |y: i64, x: i64| {
            if (0..n as i64).contains(&y) && (0..n as i64).contains(&x) {
                f64::from(src[y as usize * n + x as usize])
            } else {
                f64::from(PAD)
            }
        };
        for y in 0..side {
            for x in 0..side {
                let u = (x as f64 + 0.5 - -2.25) / 1.3 - 0.5;
                let v = (y as f64 + 0.5 - 1.5) / 1.3 - 0.5;
                let (x0, y0) = (u.floor() as i64, v.floor() as i64);
                let (fx, fy) = (u - u.floor(), v - v.floor());
                let want = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                    + at(y0, x0 + 1) * fx * (1.0 - fy)
                    + at(y0 + 1, x0) * (1.0 - fx) * fy
                    + at(y0 + 1, x0 + 1) * fx * fy;
                let g = f64::from(got[y * side + x]);
                assert!((g - want).abs() <= 0.51, "({y}, {x}): {g} vs {want}");
            }
        }
    }

    /// Four grey samples, each with one bright rectangle of its own colour, labelled with its
    /// exact extent and class `k`.
    fn rectangles(side: usize) -> (Set, [[u8; 3]; 4]) {
        let colours = [[250, 20, 20], [20, 250, 20], [20, 20, 250], [250, 250, 20]];
        let rects = [
            [4, 6, 30, 22],
            [10, 10, 40, 44],
            [20, 2, 60, 20],
            [30, 30, 62, 62],
        ];
        let plane = side * side;
        let mut set = Set {
            pixels: Vec::new(),
            boxes: Vec::new(),
        };
        for (k, ([x1, y1, x2, y2], colour)) in rects.iter().zip(colours).enumerate() {
            let mut px = vec![60u8; 3 * plane];
            for c in 0..3 {
                for y in *y1..*y2 {
                    for x in *x1..*x2 {
                        px[c * plane + y * side + x] = colour[c];
                    }
                }
            }
            set.pixels.push(px);
            set.boxes.push(vec![LabelledBox::new(
                [*x1, *y1, *x2, *y2].map(|v| v as f32),
                k,
            )]);
        }
        (set, colours)
    }

    #[test]
    fn mosaic_boxes_stay_on_their_rectangles() {
        let side = 64;
        let (set, colours) = rectangles(side);
        let a = BoxAugment {
            flip: 0.5,
            scale: 0.5,
            translate: 0.1,
            hsv: [0.0; 3],
            mosaic: 1.0,
        };
        let plane = side * side;
        let mut checked_boxes = 0;
        for seed in 0..60 {
            let (pixels, boxes) = a.apply(
                &set.pick(),
                4,
                seed as usize % 4,
                side,
                3,
                &mut example_rng(seed, 1, 0),
            );
            for b in &boxes {
                let [x1, y1, x2, y2] = b.bbox;
                // Pixels whose centres lie 1.5 px inside the box are pure rectangle colour:
                // bilinear sampling reads at most one input pixel (1.5 output pixels at
                // scale 1.5) around a pixel's centre.
                let inner = |v: usize, lo: f32, hi: f32| {
                    let c = v as f32 + 0.5;
                    c > lo + 1.5 && c < hi - 1.5
                };
                let mut inside = 0;
                for y in (0..side).filter(|&y| inner(y, y1, y2)) {
                    for x in (0..side).filter(|&x| inner(x, x1, x2)) {
                        let got: [u8; 3] =
                            std::array::from_fn(|c| pixels[c * plane + y * side + x]);
                        assert_eq!(got, colours[b.class], "seed {seed} box {b:?} at ({x}, {y})");
                        inside += 1;
                    }
                }
                checked_boxes += usize::from(inside > 0);
            }
        }
        assert!(checked_boxes > 60, "only {checked_boxes} boxes checked");
    }

    #[test]
    fn boxes_always_end_inside_the_picture_and_wider_than_two_pixels() {
        let side = 64;
        let set = textured(6, side, 3);
        let a = BoxAugment::detection_default();
        let mut seen = 0;
        for seed in 0..200 {
            let (pixels, boxes) = a.apply(
                &set.pick(),
                6,
                seed as usize % 6,
                side,
                3,
                &mut example_rng(seed, 0, 3),
            );
            assert_eq!(pixels.len(), 3 * side * side);
            for b in &boxes {
                let [x1, y1, x2, y2] = b.bbox;
                assert!(x1 >= 0.0 && y1 >= 0.0 && x2 <= 64.0 && y2 <= 64.0, "{b:?}");
                assert!(x2 - x1 > 2.0 && y2 - y1 > 2.0, "{b:?}");
            }
            seen += boxes.len();
        }
        // Augmentation keeps most objects: four per mosaic, each mostly visible.
        assert!(seen > 300, "{seen}");
    }

    #[test]
    fn the_same_seed_gives_the_same_sample() {
        let set = textured(6, 40, 3);
        let a = BoxAugment::detection_default();
        let run = |seed, epoch, index| {
            a.apply(
                &set.pick(),
                6,
                index,
                40,
                3,
                &mut example_rng(seed, epoch, index),
            )
        };
        assert_eq!(run(3, 1, 2), run(3, 1, 2));
        assert_ne!(run(3, 1, 2).0, run(3, 2, 2).0);
        assert_ne!(run(3, 1, 2).0, run(4, 1, 2).0);
    }

    #[test]
    fn colour_jitter_moves_hue_saturation_and_value_as_asked() {
        // Pure red (hue 0, s 1, v 0.8): a third of the circle turns it green; value 0.5
        // halves it; saturation 1 - 1 = 0 makes it grey of the same value.
        let red = || vec![204u8, 0, 0];
        let mut p = red();
        colour_jitter(&mut p, 1, 3, [1.0 / 3.0, 0.0, 0.0]);
        assert_eq!(p, vec![0, 204, 0]);
        let mut p = red();
        colour_jitter(&mut p, 1, 3, [0.0, 0.0, -0.5]);
        assert_eq!(p, vec![102, 0, 0]);
        let mut p = red();
        colour_jitter(&mut p, 1, 3, [0.0, -1.0, 0.0]);
        assert_eq!(p, vec![204, 204, 204]);
        // Grey pictures get the value gain only.
        let mut g = vec![0u8, 100, 200];
        colour_jitter(&mut g, 3, 1, [0.5, 0.5, 0.2]);
        assert_eq!(g, vec![0, 120, 240]);
        // Every colour survives the round trip through HSV unchanged.
        for r in (0..=255).step_by(15) {
            for g in (0..=255).step_by(17) {
                for b in (0..=255).step_by(51) {
                    let rgb = [r as u8, g as u8, b as u8];
                    assert_eq!(hsv_to_rgb(rgb_to_hsv(rgb)), rgb);
                }
            }
        }
    }

    #[test]
    fn parse_reads_every_form_and_describes_it_back() {
        let d = BoxAugment::parse("default").unwrap();
        assert_eq!(d, BoxAugment::detection_default());
        assert_eq!(
            d.describe(),
            "flip=0.5,scale=0.5,translate=0.1,hsv=0.015:0.7:0.4,mosaic=1"
        );
        assert_eq!(BoxAugment::parse(&d.describe()).unwrap(), d);
        let a =
            BoxAugment::parse(" flip , hsv=0.1:0.2:0.3, default ,mosaic=0, scale=0.25").unwrap();
        assert_eq!(
            a,
            BoxAugment {
                scale: 0.25,
                mosaic: 0.0,
                ..BoxAugment::detection_default()
            }
        );
        assert_eq!(BoxAugment::parse("hsv").unwrap().hsv, [0.015, 0.7, 0.4]);
        assert_eq!(BoxAugment::parse("mosaic").unwrap().mosaic, 1.0);
        assert!(BoxAugment::parse("none").unwrap().is_none());
        assert!(BoxAugment::parse("").unwrap().is_none());
        assert_eq!(BoxAugment::none().describe(), "none");
        assert!(!BoxAugment::parse("flip=0.1").unwrap().is_none());
    }

    #[test]
    fn parse_errors_name_the_item_and_the_valid_forms() {
        for (spec, says) in [
            ("blur", "unknown detection augmentation \"blur\""),
            ("flip=2", "a number from 0 to 1"),
            ("scale", "\"scale\" needs a number from 0 to 0.9"),
            ("scale=1", "a number from 0 to 0.9"),
            ("translate=-0.1", "a number from 0 to 0.5"),
            ("mosaic=NaN", "a number from 0 to 1"),
            ("hsv=0.1:0.2", "three numbers from 0 to 1"),
            ("hsv=0.1:0.2:x", "three numbers from 0 to 1"),
            ("default=1", "unknown detection augmentation"),
            ("flip,none", "cannot be combined"),
        ] {
            let msg = BoxAugment::parse(spec).unwrap_err().to_string();
            assert!(msg.contains(says), "{spec}: {msg}");
            if !spec.contains("none") {
                assert!(
                    msg.contains("mosaic[=P]") && msg.contains("hsv[=H:S:V]"),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    #[ignore = "timing; run with --release -- --ignored"]
    fn a_default_sample_of_416_takes_well_under_ten_milliseconds() {
        let set = textured(8, 416, 3);
        let a = BoxAugment::detection_default();
        let start = std::time::Instant::now();
        let n = 50;
        for i in 0..n {
            let out = a.apply(&set.pick(), 8, i % 8, 416, 3, &mut example_rng(0, 0, i));
            std::hint::black_box(out);
        }
        let per = start.elapsed() / n as u32;
        eprintln!("{per:?} per 416x416x3 sample");
        assert!(per < std::time::Duration::from_millis(10), "{per:?}");
    }
}
