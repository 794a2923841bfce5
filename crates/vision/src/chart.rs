//! PNG charts drawn pixel by pixel: training curves and confusion matrices.
//!
//! Nothing here needs a system font or a plotting framework: shapes are drawn straight into an
//! [`RgbImage`] and text uses the public-domain 8x8 bitmap glyphs of the `font8x8` crate
//! (printable ASCII and Latin-1; anything else shows as `?`), scaled by whole pixels. Files are
//! written atomically (see [`crate::image_io::write_atomically`]), so a crash never leaves half a
//! chart behind.
//!
//! - [`render_line_chart`] / [`line_chart_png`]: one or more panels side by side, each with its
//!   own axes, "nice" ticks (1, 2 or 5 x 10^k), a legend and one colour per series from
//!   [`PALETTE`]. Non-finite points are skipped; a panel without any finite point shows
//!   "no data".
//! - [`render_confusion`] / [`confusion_png`]: rows are the true class, columns the predicted
//!   one; each cell is shaded by its share of the row and shows its count when that fits.
//! - [`draw_text`] / [`draw_text_up`]: the text primitives, clipped at the image borders.

use std::path::Path;

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};

use crate::VisionError;
use crate::image_io::{check_png_path, write_atomically};

/// One line of a line chart: `(x, y)` points in drawing order. Points with a NaN or infinite
/// coordinate are skipped (the line joins the finite points on either side).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// One set of axes of a line chart, holding any number of series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

impl Panel {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        }
    }
}

/// Series colours, in order: the Okabe-Ito palette, which stays distinguishable under the common
/// colour-vision deficiencies. Its yellow comes last because it is faint on white.
pub const PALETTE: [Rgb<u8>; 8] = [
    Rgb([0, 114, 178]),   // blue
    Rgb([230, 159, 0]),   // orange
    Rgb([0, 158, 115]),   // bluish green
    Rgb([213, 94, 0]),    // vermillion (red)
    Rgb([204, 121, 167]), // reddish purple
    Rgb([86, 180, 233]),  // sky blue
    Rgb([0, 0, 0]),       // black
    Rgb([240, 228, 66]),  // yellow
];

/// The colour of series number `index` (the palette repeats past its end).
pub fn series_colour(index: usize) -> Rgb<u8> {
    PALETTE[index % PALETTE.len()]
}

/// A good size for `curves.png` (two panels side by side).
pub const CURVES_SIZE: (u32, u32) = (1200, 450);

/// Width and height of one glyph at scale 1, in pixels.
pub const GLYPH: u32 = 8;

/// Series with at most this many points get a dot at each point: with few points the dots show
/// where the measurements are; with many they would merge into a blob.
const MARKERS_UP_TO: usize = 30;

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([33, 33, 33]);
const MUTED: Rgb<u8> = Rgb([110, 110, 110]);
const FRAME: Rgb<u8> = Rgb([90, 90, 90]);
const GRID: Rgb<u8> = Rgb([232, 232, 232]);

// ---------------------------------------------------------------------------------------------
// Text

fn glyph(c: char) -> [u8; 8] {
    let code = c as u32;
    match code {
        0x20..=0x7E => BASIC_LEGACY[code as usize],
        0xA0..=0xFF => LATIN_LEGACY[(code - 0xA0) as usize],
        _ => BASIC_LEGACY[b'?' as usize],
    }
}

/// Width in pixels of the longest line of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    u32::try_from(longest)
        .unwrap_or(u32::MAX)
        .saturating_mul(GLYPH)
        .saturating_mul(scale)
}

/// Draws `text` with its top-left corner at `(x, y)`, each glyph pixel a `scale x scale` square
/// (scale 0 draws nothing). `\n` starts a new line. Anything outside the image is clipped.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, scale: u32, colour: Rgb<u8>) {
    draw_glyphs(img, x, y, text, scale, colour, false);
}

/// Like [`draw_text`], turned a quarter turn anticlockwise so that it reads from bottom to top
/// (for a y-axis title). `(x, y)` is the top-left corner of the turned text's box, which is
/// `8 * scale` wide and [`text_width`] tall.
pub fn draw_text_up(img: &mut RgbImage, x: i32, y: i32, text: &str, scale: u32, colour: Rgb<u8>) {
    draw_glyphs(img, x, y, text, scale, colour, true);
}

fn draw_glyphs(
    img: &mut RgbImage,
    x: i32,
    y: i32,
    text: &str,
    scale: u32,
    colour: Rgb<u8>,
    up: bool,
) {
    if scale == 0 {
        return;
    }
    // i64 throughout: a long string at a large scale must clip, not overflow.
    let s = i64::from(scale);
    let cell = 8 * s;
    let length = i64::from(text_width(text, scale));
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for (line_no, line) in text.lines().enumerate() {
        let line_no = i64::try_from(line_no).unwrap_or(i64::MAX);
        for (i, c) in line.chars().enumerate() {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            // (along, across): position in the unturned text, from its top-left corner.
            let along0 = i.saturating_mul(cell);
            let across0 = line_no.saturating_mul(cell);
            // Glyphs only move further off the image from here on.
            let past_end = if up {
                i64::from(y) + length - along0 <= 0
            } else {
                i64::from(x) + along0 >= w
            };
            if past_end {
                break;
            }
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 0 {
                        continue;
                    }
                    let along = along0 + col * s;
                    let across = across0 + row as i64 * s;
                    let (x0, y0) = if up {
                        // Turned: the text's start is at the bottom of its box.
                        (i64::from(x) + across, i64::from(y) + length - along - s)
                    } else {
                        (i64::from(x) + along, i64::from(y) + across)
                    };
                    fill_clipped(img, x0, y0, s, s, colour, w, h);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn fill_clipped(
    img: &mut RgbImage,
    x0: i64,
    y0: i64,
    rw: i64,
    rh: i64,
    colour: Rgb<u8>,
    w: i64,
    h: i64,
) {
    let (xa, xb) = (x0.max(0), x0.saturating_add(rw).min(w));
    let (ya, yb) = (y0.max(0), y0.saturating_add(rh).min(h));
    for py in ya..yb {
        for px in xa..xb {
            img.put_pixel(px as u32, py as u32, colour);
        }
    }
}

/// `text` cut to at most `max_chars` characters, ending in ".." when cut.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    if max_chars <= 2 {
        return text.chars().take(max_chars).collect();
    }
    let mut s: String = text.chars().take(max_chars - 2).collect();
    s.push_str("..");
    s
}

/// How many characters fit in `pixels` at `scale`.
fn chars_in(pixels: i32, scale: u32) -> usize {
    usize::try_from(pixels.max(0)).unwrap_or(0) / (GLYPH * scale.max(1)) as usize
}

fn tw(text: &str, scale: u32) -> i32 {
    i32::try_from(text_width(text, scale)).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Shapes (all clipped to a rectangle, usually the image or a plot area)

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
}

impl Rect {
    fn right(self) -> i32 {
        self.x + self.w
    }
    fn bottom(self) -> i32 {
        self.y + self.h
    }
    fn contains(self, x: i32, y: i32) -> bool {
        x >= self.x && x < self.right() && y >= self.y && y < self.bottom()
    }
}

fn image_rect(img: &RgbImage) -> Rect {
    Rect {
        x: 0,
        y: 0,
        w: i32::try_from(img.width()).unwrap_or(i32::MAX),
        h: i32::try_from(img.height()).unwrap_or(i32::MAX),
    }
}

fn fill_rect(img: &mut RgbImage, r: Rect, colour: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    fill_clipped(
        img,
        r.x.into(),
        r.y.into(),
        r.w.into(),
        r.h.into(),
        colour,
        w,
        h,
    );
}

/// A one-pixel outline just inside `r`.
fn outline(img: &mut RgbImage, r: Rect, colour: Rgb<u8>) {
    fill_rect(img, Rect { h: 1, ..r }, colour);
    fill_rect(
        img,
        Rect {
            y: r.bottom() - 1,
            h: 1,
            ..r
        },
        colour,
    );
    fill_rect(img, Rect { w: 1, ..r }, colour);
    fill_rect(
        img,
        Rect {
            x: r.right() - 1,
            w: 1,
            ..r
        },
        colour,
    );
}

/// Mixes `colour` into the pixel at `(x, y)` by `coverage` (0 leaves it, 1 replaces it).
fn blend(img: &mut RgbImage, clip: Rect, x: i32, y: i32, colour: Rgb<u8>, coverage: f64) {
    if coverage <= 0.0 || !clip.contains(x, y) || !image_rect(img).contains(x, y) {
        return;
    }
    let px = img.get_pixel_mut(x as u32, y as u32);
    if coverage >= 1.0 {
        *px = colour;
        return;
    }
    for (old, new) in px.0.iter_mut().zip(colour.0) {
        *old = (f64::from(*old) * (1.0 - coverage) + f64::from(new) * coverage).round() as u8;
    }
}

/// A thick line from `a` to `b`, `width` pixels across, with soft edges: pixels well inside the
/// stroke get exactly `colour`, so the series stays recognisable by colour.
fn thick_line(
    img: &mut RgbImage,
    clip: Rect,
    a: (f64, f64),
    b: (f64, f64),
    width: f64,
    colour: Rgb<u8>,
) {
    let half = width / 2.0;
    let reach = half + 1.0;
    let x0 = (a.0.min(b.0) - reach).floor().max(f64::from(clip.x));
    let x1 = (a.0.max(b.0) + reach).ceil().min(f64::from(clip.right()));
    let y0 = (a.1.min(b.1) - reach).floor().max(f64::from(clip.y));
    let y1 = (a.1.max(b.1) + reach).ceil().min(f64::from(clip.bottom()));
    if !(x0 < x1 && y0 < y1) {
        return;
    }
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    for py in y0 as i32..y1 as i32 {
        for px in x0 as i32..x1 as i32 {
            let (cx, cy) = (f64::from(px) + 0.5, f64::from(py) + 0.5);
            let t = if len2 > 0.0 {
                (((cx - a.0) * dx + (cy - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (nx, ny) = (a.0 + t * dx - cx, a.1 + t * dy - cy);
            let d = (nx * nx + ny * ny).sqrt();
            blend(img, clip, px, py, colour, half + 0.5 - d);
        }
    }
}

fn disc(img: &mut RgbImage, clip: Rect, c: (f64, f64), radius: f64, colour: Rgb<u8>) {
    thick_line(img, clip, c, c, radius * 2.0, colour);
}

// ---------------------------------------------------------------------------------------------
// Axes

/// The smallest 1, 2 or 5 x 10^k that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let base = 10f64.powf(raw.log10().floor());
    let f = raw / base;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * base
}

/// The next nice step after `step` (1 -> 2 -> 5 -> 10).
fn next_nice(step: f64) -> f64 {
    nice_step(step * 1.5)
}

/// Tick values: the multiples of `step` inside `lo..=hi`. Empty if there would be absurdly many
/// (a degenerate range), so a caller never loops for ever.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if !(step > 0.0 && step.is_finite()) {
        return Vec::new();
    }
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    if !(first.is_finite() && last.is_finite()) || last - first > 100.0 || last < first {
        return Vec::new();
    }
    (0..=(last - first) as i64)
        .map(|k| {
            let v = (first + k as f64) * step;
            // Snap values like 0.30000000000000004 and -0.0 to what the label will say.
            if v.abs() < step * 1e-6 { 0.0 } else { v }
        })
        .collect()
}

fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs();
    if step < 1e-4 || magnitude >= 1e6 {
        let e = magnitude.log10().floor() as i32;
        let m = (v / 10f64.powi(e) * 100.0).round() / 100.0;
        return format!("{m}e{e}");
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// A data range padded by `pad` of its span on each side; a zero span is widened so a constant
/// series sits mid-panel. Always finite with `lo < hi`.
fn padded(lo: f64, hi: f64, pad: f64, integer: bool) -> (f64, f64) {
    let span = hi - lo;
    let (lo, hi) = if span > 0.0 && span.is_finite() {
        (lo - span * pad, hi + span * pad)
    } else {
        let half = if integer {
            1.0
        } else if lo != 0.0 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        (lo - half, hi + half)
    };
    if lo < hi && (hi - lo).is_finite() {
        (lo, hi)
    } else {
        // Values near f64::MAX: give up on the exact range rather than divide by infinity.
        (-1.0, 1.0)
    }
}

/// Labelled ticks for `lo..=hi` drawn over `length` pixels. `room(a, b)` is the least distance
/// in pixels that neighbouring labels `a` and `b` need. Ticks at least `comfortable` pixels apart
/// are preferred, but denser ones (as far as the labels allow) beat fewer than two ticks: an
/// axis with a single number on it does not say how fast values change.
fn choose_ticks(
    lo: f64,
    hi: f64,
    length: i32,
    comfortable: f64,
    min_step: f64,
    room: impl Fn(&str, &str) -> f64,
) -> Vec<(f64, String)> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) || length <= 0 {
        return Vec::new();
    }
    let mut step = nice_step(span / 50.0).max(min_step);
    let mut candidates = Vec::new();
    // Steps grow 2-2.5x a time: 40 of them cover any f64 range.
    for _ in 0..40 {
        let labelled: Vec<(f64, String)> = ticks(lo, hi, step)
            .into_iter()
            .map(|v| (v, tick_label(v, step)))
            .collect();
        let spacing = step / span * f64::from(length);
        let fits = labelled
            .windows(2)
            .all(|pair| spacing >= room(&pair[0].1, &pair[1].1));
        if fits {
            candidates.push((spacing, labelled));
        }
        if candidates.last().is_some_and(|(sp, _)| *sp >= comfortable) {
            break;
        }
        step = next_nice(step);
    }
    let Some((spacing, _)) = candidates.last() else {
        return Vec::new();
    };
    if *spacing >= comfortable && candidates.last().is_some_and(|(_, t)| t.len() >= 2) {
        return candidates.pop().map(|(_, t)| t).unwrap_or_default();
    }
    match candidates.iter().rposition(|(_, t)| t.len() >= 2) {
        Some(i) => candidates.swap_remove(i).1,
        None => candidates.pop().map(|(_, t)| t).unwrap_or_default(),
    }
}

struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Pixel position of `v` along an axis that runs from `start` (at `lo`) over `length`
    /// pixels; `flip` for a y axis, whose values grow upwards.
    fn to_pixel(&self, v: f64, start: i32, length: i32, flip: bool) -> f64 {
        let t = (v - self.lo) / (self.hi - self.lo);
        let t = if flip { 1.0 - t } else { t };
        // Clamped: a stray value must still give a drawable coordinate.
        (f64::from(start) + t * f64::from(length)).clamp(-1e6, 1e6)
    }
}

fn finite_points(s: &Series) -> impl Iterator<Item = (f64, f64)> + '_ {
    s.points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
}

// ---------------------------------------------------------------------------------------------
// Line charts

/// Renders `panels` side by side into a `width x height` image (see [`line_chart_png`]).
pub fn render_line_chart(panels: &[Panel], width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, BACKGROUND);
    let full = image_rect(&img);
    if panels.is_empty() {
        no_data(&mut img, full);
        return img;
    }
    let n = i64::try_from(panels.len()).unwrap_or(i64::MAX);
    for (i, panel) in panels.iter().enumerate() {
        let i = i as i64;
        let x0 = (i64::from(full.w) * i / n) as i32;
        let x1 = (i64::from(full.w) * (i + 1) / n) as i32;
        draw_panel(
            &mut img,
            Rect {
                x: x0,
                y: 0,
                w: x1 - x0,
                h: full.h,
            },
            panel,
        );
    }
    img
}

/// Draws `panels` side by side (for `curves.png`: a loss panel and an accuracy panel, each with
/// "train" and "validation" series) and writes them to `path` as a `width x height` PNG,
/// atomically. [`CURVES_SIZE`] is a good size for two panels.
pub fn line_chart_png(
    path: &Path,
    panels: &[Panel],
    width: u32,
    height: u32,
) -> Result<(), VisionError> {
    check_png_path(path)?;
    save_rgb_png(path, &render_line_chart(panels, width, height))
}

fn no_data(img: &mut RgbImage, area: Rect) {
    let text = "no data";
    let x = area.x + (area.w - tw(text, 1)) / 2;
    let y = area.y + (area.h - GLYPH as i32) / 2;
    draw_text(img, x, y, text, 1, MUTED);
}

fn draw_panel(img: &mut RgbImage, area: Rect, panel: &Panel) {
    const PAD: i32 = 10;
    const TICK: i32 = 4;
    const GAP: i32 = 6;
    let glyph = GLYPH as i32;

    // Title: large when it fits, else small and cut to fit.
    let room = area.w - 2 * PAD;
    let title_scale = if tw(&panel.title, 2) <= room { 2 } else { 1 };
    let title = truncate(&panel.title, chars_in(room, title_scale));
    let title_h = if title.is_empty() {
        0
    } else {
        glyph * title_scale as i32 + 10
    };
    draw_text(
        img,
        area.x + (area.w - tw(&title, title_scale)) / 2,
        area.y + PAD,
        &title,
        title_scale,
        INK,
    );

    let x_label_h = if panel.x_label.is_empty() {
        0
    } else {
        glyph + GAP
    };
    let y_label_w = if panel.y_label.is_empty() {
        0
    } else {
        glyph + GAP
    };
    let plot_top = area.y + PAD + title_h;
    let plot_bottom = area.bottom() - PAD - x_label_h - glyph - TICK - GAP / 2;
    let plot_h = plot_bottom - plot_top;

    let finite: Vec<(f64, f64)> = panel.series.iter().flat_map(finite_points).collect();
    let bounds = finite.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(xl, xh, yl, yh), &(x, y)| (xl.min(x), xh.max(x), yl.min(y), yh.max(y)),
    );
    let integer_x = finite.iter().all(|(x, _)| x.fract() == 0.0);

    // y ticks first: how wide their labels are decides where the plot starts.
    let y_axis = if finite.is_empty() || plot_h < 8 {
        None
    } else {
        let (lo, hi) = padded(bounds.2, bounds.3, 0.06, false);
        let ticks = choose_ticks(lo, hi, plot_h, 40.0, 0.0, |_, _| f64::from(glyph + 6));
        Some(Axis { lo, hi, ticks })
    };
    let y_tick_w = y_axis
        .as_ref()
        .and_then(|a| a.ticks.iter().map(|(_, l)| tw(l, 1)).max())
        .unwrap_or(0);
    let plot_left = area.x + PAD + y_label_w + y_tick_w + TICK + GAP / 2;
    let plot_right = area.right() - PAD - 8;
    let plot = Rect {
        x: plot_left,
        y: plot_top,
        w: plot_right - plot_left,
        h: plot_h,
    };

    // Axis titles are centred on the plot area, not the panel.
    if !panel.x_label.is_empty() {
        let label = truncate(&panel.x_label, chars_in(plot.w.max(area.w / 2), 1));
        draw_text(
            img,
            plot.x + (plot.w - tw(&label, 1)) / 2,
            area.bottom() - PAD - glyph,
            &label,
            1,
            INK,
        );
    }
    if !panel.y_label.is_empty() {
        let label = truncate(&panel.y_label, chars_in(plot.h.max(0), 1));
        draw_text_up(
            img,
            area.x + PAD,
            plot.y + (plot.h - tw(&label, 1)) / 2,
            &label,
            1,
            INK,
        );
    }
    if plot.w < 8 || plot.h < 8 {
        return;
    }

    let Some(y_axis) = y_axis else {
        fill_rect(img, plot, BACKGROUND);
        outline(img, plot, FRAME);
        no_data(img, plot);
        return;
    };

    // x ticks: spaced so that their labels never touch.
    let (lo, hi) = padded(bounds.0, bounds.1, 0.03, integer_x);
    // Whole-number data (epochs) gets whole-number ticks.
    let min_step = if integer_x { 1.0 } else { 0.0 };
    let x_axis = Axis {
        lo,
        hi,
        ticks: choose_ticks(lo, hi, plot.w, 60.0, min_step, |a, b| {
            f64::from((tw(a, 1) + tw(b, 1)) / 2 + 12)
        }),
    };

    // Grid, then data, then frame and ticks on top so lines never hide the axes.
    for (v, _) in &y_axis.ticks {
        let py = y_axis.to_pixel(*v, plot.y, plot.h - 1, true).round() as i32;
        fill_rect(
            img,
            Rect {
                y: py,
                h: 1,
                ..plot
            },
            GRID,
        );
    }
    for (v, _) in &x_axis.ticks {
        let px = x_axis.to_pixel(*v, plot.x, plot.w - 1, false).round() as i32;
        fill_rect(
            img,
            Rect {
                x: px,
                w: 1,
                ..plot
            },
            GRID,
        );
    }

    let inner = Rect {
        x: plot.x + 1,
        y: plot.y + 1,
        w: plot.w - 2,
        h: plot.h - 2,
    };
    for (k, series) in panel.series.iter().enumerate() {
        let colour = series_colour(k);
        let pts: Vec<(f64, f64)> = finite_points(series)
            .map(|(x, y)| {
                (
                    x_axis.to_pixel(x, plot.x, plot.w - 1, false) + 0.5,
                    y_axis.to_pixel(y, plot.y, plot.h - 1, true) + 0.5,
                )
            })
            .collect();
        for pair in pts.windows(2) {
            thick_line(img, inner, pair[0], pair[1], 2.2, colour);
        }
        if pts.len() <= MARKERS_UP_TO {
            for &p in &pts {
                disc(img, inner, p, 3.6, colour);
            }
        }
    }

    outline(img, plot, FRAME);
    for (v, label) in &y_axis.ticks {
        let py = y_axis.to_pixel(*v, plot.y, plot.h - 1, true).round() as i32;
        fill_rect(
            img,
            Rect {
                x: plot.x - TICK,
                y: py,
                w: TICK,
                h: 1,
            },
            FRAME,
        );
        draw_text(
            img,
            plot.x - TICK - GAP / 2 - tw(label, 1),
            py - glyph / 2,
            label,
            1,
            INK,
        );
    }
    for (v, label) in &x_axis.ticks {
        let px = x_axis.to_pixel(*v, plot.x, plot.w - 1, false).round() as i32;
        fill_rect(
            img,
            Rect {
                x: px,
                y: plot.bottom(),
                w: 1,
                h: TICK,
            },
            FRAME,
        );
        let lw = tw(label, 1);
        // Kept inside the panel: the last label may stick out past the plot's right edge.
        let lx = (px - lw / 2).min(area.right() - 2 - lw).max(area.x);
        draw_text(img, lx, plot.bottom() + TICK + GAP / 2, label, 1, INK);
    }

    legend(img, inner, panel);
}

/// The legend goes in whichever corner of the plot covers the fewest drawn data pixels.
fn legend(img: &mut RgbImage, plot: Rect, panel: &Panel) {
    if panel.series.is_empty() {
        return;
    }
    const SAMPLE: i32 = 22;
    const ROW: i32 = 14;
    const MARGIN: i32 = 6;
    let max_chars = chars_in(plot.w / 2, 1).max(4);
    let labels: Vec<String> = panel
        .series
        .iter()
        .map(|s| {
            let label = if s.label.is_empty() {
                "(unnamed)"
            } else {
                &s.label
            };
            let label = truncate(label, max_chars);
            if finite_points(s).next().is_none() {
                format!("{label} (no data)")
            } else {
                label
            }
        })
        .collect();
    let rows = i32::try_from(labels.len()).unwrap_or(i32::MAX);
    let w = 8 + SAMPLE + 6 + labels.iter().map(|l| tw(l, 1)).max().unwrap_or(0) + 8;
    let h = rows.saturating_mul(ROW).saturating_add(8);
    if w + 2 * MARGIN > plot.w || h + 2 * MARGIN > plot.h {
        return;
    }
    let corners = [
        (plot.right() - MARGIN - w, plot.y + MARGIN),
        (plot.right() - MARGIN - w, plot.bottom() - MARGIN - h),
        (plot.x + MARGIN, plot.y + MARGIN),
        (plot.x + MARGIN, plot.bottom() - MARGIN - h),
    ];
    let covered = |&(x, y): &(i32, i32)| -> usize {
        let mut n = 0;
        for py in y..y + h {
            for px in x..x + w {
                let c = img.get_pixel_checked(px as u32, py as u32);
                if c.is_some_and(|&c| c != BACKGROUND && c != GRID) {
                    n += 1;
                }
            }
        }
        n
    };
    // min_by_key keeps the first of equals: top right wins a tie.
    let &(x, y) = corners
        .iter()
        .min_by_key(|c| covered(c))
        .unwrap_or(&corners[0]);
    let r = Rect { x, y, w, h };
    fill_rect(img, r, BACKGROUND);
    outline(img, r, Rgb([200, 200, 200]));
    for (k, label) in labels.iter().enumerate() {
        let k = k as i32;
        let cy = y + 4 + k * ROW + ROW / 2;
        let colour = series_colour(k as usize);
        let a = (f64::from(x + 8), f64::from(cy));
        let b = (f64::from(x + 8 + SAMPLE), f64::from(cy));
        thick_line(img, r, a, b, 2.2, colour);
        if finite_points(&panel.series[k as usize]).count() <= MARKERS_UP_TO {
            disc(
                img,
                r,
                (f64::from(x + 8 + SAMPLE / 2), f64::from(cy)),
                3.6,
                colour,
            );
        }
        draw_text(img, x + 8 + SAMPLE + 6, cy - 4, label, 1, INK);
    }
}

// ---------------------------------------------------------------------------------------------
// Confusion matrices

/// Overall accuracy of a confusion matrix (the diagonal's share of all counts); `None` when it
/// holds no counts.
pub fn confusion_accuracy(matrix: &[Vec<u64>]) -> Option<f64> {
    let total: u128 = matrix
        .iter()
        .flat_map(|r| r.iter())
        .map(|&c| u128::from(c))
        .sum();
    let hits: u128 = matrix
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.get(i))
        .map(|&c| u128::from(c))
        .sum();
    (total > 0).then(|| hits as f64 / total as f64)
}

/// The sequential "Blues" colour map (as in matplotlib / ColorBrewer): 0 is near white, 1 dark
/// blue. Lightness changes monotonically, so it reads in greyscale too.
fn blues(t: f64) -> Rgb<u8> {
    const STOPS: [[u8; 3]; 9] = [
        [247, 251, 255],
        [222, 235, 247],
        [198, 219, 239],
        [158, 202, 225],
        [107, 174, 214],
        [66, 146, 198],
        [33, 113, 181],
        [8, 81, 156],
        [8, 48, 107],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let mut c = [0u8; 3];
    for (ch, out) in c.iter_mut().enumerate() {
        let (a, b) = (f64::from(STOPS[i][ch]), f64::from(STOPS[i + 1][ch]));
        *out = (a + (b - a) * f).round() as u8;
    }
    Rgb(c)
}

/// Renders a confusion matrix: `matrix[true][predicted]` counts, one row and one column per
/// entry of `class_names`. The image size follows from the number of classes. An error if the
/// matrix is empty, not square, or does not match the names.
pub fn render_confusion(
    matrix: &[Vec<u64>],
    class_names: &[String],
    title: &str,
) -> Result<RgbImage, VisionError> {
    let n = matrix.len();
    if n == 0 {
        return Err(VisionError::Data(
            "confusion matrix: no classes to draw".to_string(),
        ));
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(VisionError::Data(format!(
            "confusion matrix: not square ({n} rows, but row {i} has {} columns)",
            row.len()
        )));
    }
    if class_names.len() != n {
        return Err(VisionError::Data(format!(
            "confusion matrix: {n} classes but {} class names",
            class_names.len()
        )));
    }
    if n > 4096 {
        return Err(VisionError::Data(format!(
            "confusion matrix: {n} classes are too many to draw"
        )));
    }
    let n32 = n as i32;
    let glyph = GLYPH as i32;
    const PAD: i32 = 16;
    const GAP: i32 = 8;
    const MAX_NAME: usize = 14;

    let cell = (720 / n32).clamp(3, 56);
    // Names only on every `stride`-th row / column when rows are shorter than the text.
    let stride = if cell >= glyph + 2 {
        1
    } else {
        ((glyph + 4) / cell + 1) as usize
    };
    let names: Vec<String> = class_names.iter().map(|s| truncate(s, MAX_NAME)).collect();
    let name_w = names.iter().map(|s| tw(s, 1)).max().unwrap_or(0);
    let rotate_columns = name_w > cell - 4;
    let col_names_h = if rotate_columns { name_w } else { glyph };

    let row_totals: Vec<u64> = matrix.iter().map(|r| r.iter().sum()).collect();
    let biggest = matrix.iter().flatten().copied().max().unwrap_or(0);
    let counts_fit = cell >= 14 && tw(&biggest.to_string(), 1) <= cell - 4;

    let title_scale: u32 = 2;
    let grid_x = PAD + glyph + GAP + name_w + GAP;
    let grid_y = PAD + glyph * title_scale as i32 + 2 * GAP;
    let side = n32 * cell;
    let bar_x = grid_x + side + 2 * GAP;
    let bar_w = 14;
    let bar_labels_w = tw("100%", 1);
    let content_w = bar_x + bar_w + 4 + bar_labels_w + PAD;
    let title_w = tw(title, title_scale) + 2 * PAD;
    let width = content_w.max(title_w);
    let height = grid_y + side + GAP + col_names_h + GAP + glyph + PAD;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, BACKGROUND);

    // The title is centred on the image; wide titles widened the image above.
    draw_text(
        &mut img,
        (width - tw(title, title_scale)) / 2,
        PAD,
        title,
        title_scale,
        INK,
    );

    for (r, row) in matrix.iter().enumerate() {
        for (c, &count) in row.iter().enumerate() {
            let share = if row_totals[r] > 0 {
                count as f64 / row_totals[r] as f64
            } else {
                0.0
            };
            let cell_rect = Rect {
                x: grid_x + c as i32 * cell,
                y: grid_y + r as i32 * cell,
                w: cell,
                h: cell,
            };
            fill_rect(&mut img, cell_rect, blues(share));
            if counts_fit {
                let text = count.to_string();
                // Zeros are faint so that the confusions stand out.
                let ink = if share > 0.5 {
                    BACKGROUND
                } else if count == 0 {
                    Rgb([185, 185, 185])
                } else {
                    INK
                };
                draw_text(
                    &mut img,
                    cell_rect.x + (cell - tw(&text, 1)) / 2,
                    cell_rect.y + (cell - glyph) / 2,
                    &text,
                    1,
                    ink,
                );
            }
        }
    }
    // Faint separators keep neighbouring pale cells apart.
    if cell >= 10 {
        for k in 1..n32 {
            let line = Rgb([225, 225, 225]);
            fill_rect(
                &mut img,
                Rect {
                    x: grid_x + k * cell,
                    y: grid_y,
                    w: 1,
                    h: side,
                },
                line,
            );
            fill_rect(
                &mut img,
                Rect {
                    x: grid_x,
                    y: grid_y + k * cell,
                    w: side,
                    h: 1,
                },
                line,
            );
        }
    }
    let grid = Rect {
        x: grid_x - 1,
        y: grid_y - 1,
        w: side + 2,
        h: side + 2,
    };
    outline(&mut img, grid, FRAME);

    // Row names right-aligned against the grid; column names below it, turned to read upwards
    // when wider than a cell, so their ends line up against the grid.
    for (k, name) in names.iter().enumerate().step_by(stride) {
        let k32 = k as i32;
        draw_text(
            &mut img,
            grid_x - GAP - tw(name, 1),
            grid_y + k32 * cell + (cell - glyph) / 2,
            name,
            1,
            INK,
        );
        let col_x = grid_x + k32 * cell;
        let below = grid_y + side + GAP;
        if rotate_columns {
            draw_text_up(&mut img, col_x + (cell - glyph) / 2, below, name, 1, INK);
        } else {
            draw_text(
                &mut img,
                col_x + (cell - tw(name, 1)) / 2,
                below,
                name,
                1,
                INK,
            );
        }
    }

    // Axis titles.
    draw_text(
        &mut img,
        grid_x + (side - tw("predicted", 1)) / 2,
        height - PAD - glyph,
        "predicted",
        1,
        INK,
    );
    draw_text_up(
        &mut img,
        PAD,
        grid_y + (side - tw("true", 1)) / 2,
        "true",
        1,
        INK,
    );

    // Colour bar: what a shade means (the share of the true class's row).
    let bar_h = side;
    for py in 0..bar_h {
        let t = 1.0 - f64::from(py) / f64::from((bar_h - 1).max(1));
        fill_rect(
            &mut img,
            Rect {
                x: bar_x,
                y: grid_y + py,
                w: bar_w,
                h: 1,
            },
            blues(t),
        );
    }
    outline(
        &mut img,
        Rect {
            x: bar_x - 1,
            y: grid_y - 1,
            w: bar_w + 2,
            h: bar_h + 2,
        },
        FRAME,
    );
    let labels: &[(&str, f64)] = if bar_h >= 3 * glyph {
        &[("100%", 0.0), ("50%", 0.5), ("0%", 1.0)]
    } else {
        &[("100%", 0.0), ("0%", 1.0)]
    };
    for &(label, at) in labels {
        let y = grid_y + (f64::from(bar_h - 1) * at).round() as i32 - glyph / 2;
        let y = y.clamp(grid_y - 1, grid_y + bar_h + 1 - glyph);
        draw_text(&mut img, bar_x + bar_w + 4, y, label, 1, MUTED);
    }
    Ok(img)
}

/// Draws a confusion matrix (see [`render_confusion`]) and writes it to `path` as a PNG,
/// atomically.
pub fn confusion_png(
    path: &Path,
    matrix: &[Vec<u64>],
    class_names: &[String],
    title: &str,
) -> Result<(), VisionError> {
    check_png_path(path)?;
    save_rgb_png(path, &render_confusion(matrix, class_names, title)?)
}

/// Writes an RGB image to `path` as a PNG, atomically (`path` must end in `.png`).
pub fn save_rgb_png(path: &Path, img: &RgbImage) -> Result<(), VisionError> {
    check_png_path(path)?;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|source| VisionError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(next_nice(0.2), 0.5);
        assert_eq!(next_nice(0.5), 1.0);
    }

    #[test]
    fn ticks_are_multiples_of_the_step_with_clean_labels() {
        let t = ticks(0.32, 0.93, 0.1);
        let labels: Vec<String> = t.iter().map(|&v| tick_label(v, 0.1)).collect();
        assert_eq!(labels, ["0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]);
        let t = ticks(-1.0, 1.0, 0.5);
        assert_eq!(t, [-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(tick_label(2e7, 1e7), "2e7");
        assert!(ticks(0.0, 1e300, 1e-300).is_empty());
    }

    #[test]
    fn padded_ranges_are_never_empty() {
        assert_eq!(padded(3.0, 3.0, 0.05, true), (2.0, 4.0));
        let (lo, hi) = padded(0.5, 0.5, 0.05, false);
        assert!(lo < 0.5 && hi > 0.5);
        assert_eq!(padded(-f64::MAX, f64::MAX, 0.05, false), (-1.0, 1.0));
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("Ankle boot", 14), "Ankle boot");
        assert_eq!(truncate("a very long class name", 8), "a very..");
    }
}
