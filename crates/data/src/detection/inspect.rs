//! What `convnet dataset inspect` reports on a data set: its layout and classes, pictures and
//! boxes per split and per class, what was left out on purpose (crowd boxes, unlisted files),
//! the pictures without labels, statistics and log-spaced histograms of box sizes and aspect
//! ratios, and every problem found. [`Inspection::histogram_png`] draws the histograms.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use serde::Serialize;

use convnet_vision::chart::{draw_text, save_rgb_png, series_colour, text_width};

use super::layout::survey;
use super::{Layout, Problem, Split};
use crate::DataError;

/// A data set's report.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub layout: Layout,
    pub layout_name: String,
    pub classes: Vec<String>,
    pub has_splits: bool,
    /// The splits that hold pictures, in train, val, test order.
    pub splits: Vec<SplitCounts>,
    /// Pictures without any label file (pictures with no objects), every split.
    pub unlabelled: Vec<PathBuf>,
    /// COCO crowd boxes left out.
    pub crowd_ignored: usize,
    /// VOC annotation files no split list names, left out.
    pub unlisted: Vec<PathBuf>,
    pub boxes: BoxStats,
    pub problems: Vec<Problem>,
}

/// One split's counts.
#[derive(Debug, Clone, Serialize)]
pub struct SplitCounts {
    pub split: Split,
    pub images: usize,
    /// Pictures without a label file.
    pub unlabelled: usize,
    /// Pictures with no box (labelled as empty, or unlabelled).
    pub without_boxes: usize,
    pub boxes: usize,
    /// Boxes per class, in class order.
    pub boxes_per_class: Vec<usize>,
    /// Boxes marked difficult (VOC).
    pub difficult: usize,
}

/// Box sizes over the whole data set, in pixels of their pictures.
#[derive(Debug, Clone, Serialize)]
pub struct BoxStats {
    pub count: usize,
    /// `None` when there are no boxes.
    pub width: Option<Summary>,
    pub height: Option<Summary>,
    pub area: Option<Summary>,
    /// Width over height.
    pub aspect: Option<Summary>,
    /// Width over the picture's width.
    pub relative_width: Option<Summary>,
    /// Log-spaced (half-octave) bins of the width in pixels.
    pub width_histogram: Histogram,
    pub height_histogram: Histogram,
    /// Half-octave bins of the width as a fraction of the picture's width.
    pub relative_width_histogram: Histogram,
    /// Half-octave bins of width / height.
    pub aspect_histogram: Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub max: f64,
}

/// Counts in bins `[edges[i], edges[i + 1])`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<usize>,
}

/// Reads the data set at `path` (see [`super::scan`]) and reports on it.
pub fn inspect(path: &Path) -> Result<Inspection, DataError> {
    let scan = survey(path)?;
    let ds = &scan.dataset;
    let splits = Split::ALL
        .into_iter()
        .filter(|&s| !ds.split(s).is_empty())
        .map(|split| {
            let images = ds.split(split);
            let mut per_class = vec![0usize; ds.classes.len()];
            for b in images.iter().flat_map(|i| &i.boxes) {
                if let Some(n) = per_class.get_mut(b.class) {
                    *n += 1;
                }
            }
            SplitCounts {
                split,
                images: images.len(),
                unlabelled: images.iter().filter(|i| !i.labelled).count(),
                without_boxes: images.iter().filter(|i| i.boxes.is_empty()).count(),
                boxes: images.iter().map(|i| i.boxes.len()).sum(),
                boxes_per_class: per_class,
                difficult: images
                    .iter()
                    .flat_map(|i| &i.boxes)
                    .filter(|b| b.difficult)
                    .count(),
            }
        })
        .collect();
    // (width, height, picture width) of every box.
    let sizes: Vec<(f64, f64, f64)> = ds
        .images()
        .flat_map(|(_, i)| {
            i.boxes.iter().map(move |b| {
                let [x1, y1, x2, y2] = b.bbox.map(f64::from);
                (x2 - x1, y2 - y1, f64::from(i.width))
            })
        })
        .collect();
    let of = |f: &dyn Fn(&(f64, f64, f64)) -> f64| -> Vec<f64> { sizes.iter().map(f).collect() };
    let (widths, heights) = (of(&|s| s.0), of(&|s| s.1));
    let (areas, aspects, relative) = (of(&|s| s.0 * s.1), of(&|s| s.0 / s.1), of(&|s| s.0 / s.2));
    Ok(Inspection {
        path: path.to_path_buf(),
        layout: ds.layout,
        layout_name: ds.layout.name().to_string(),
        classes: ds.classes.clone(),
        has_splits: ds.has_splits,
        splits,
        unlabelled: ds
            .images()
            .filter(|(_, i)| !i.labelled)
            .map(|(_, i)| i.path.clone())
            .collect(),
        crowd_ignored: scan.crowd_ignored,
        unlisted: scan.unlisted.clone(),
        boxes: BoxStats {
            count: sizes.len(),
            width: summary(&widths),
            height: summary(&heights),
            area: summary(&areas),
            aspect: summary(&aspects),
            relative_width: summary(&relative),
            width_histogram: log_histogram(&widths),
            height_histogram: log_histogram(&heights),
            relative_width_histogram: log_histogram(&relative),
            aspect_histogram: log_histogram(&aspects),
        },
        problems: scan.problems,
    })
}

/// Minimum, median (the mean of the middle two for an even count), mean and maximum.
pub fn summary(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = match n % 2 {
        1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    Some(Summary {
        min: sorted[0],
        median,
        mean: sorted.iter().sum::<f64>() / n as f64,
        max: sorted[n - 1],
    })
}

/// The most bins a histogram gets: past it the bins widen (whole octaves, then two...).
const MAX_BINS: usize = 40;

/// Half-octave bins (edges at powers of √2) spanning the values, which must be positive and
/// finite (the readers' box checks make them so; others are skipped). Empty for no values.
pub fn log_histogram(values: &[f64]) -> Histogram {
    let logs: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.log2())
        .collect();
    let (Some(lo), Some(hi)) = (
        logs.iter().copied().reduce(f64::min),
        logs.iter().copied().reduce(f64::max),
    ) else {
        return Histogram {
            edges: Vec::new(),
            counts: Vec::new(),
        };
    };
    let mut step = 0.5;
    let (mut first, mut bins);
    loop {
        first = (lo / step).floor();
        let last = (hi / step).floor() + 1.0;
        bins = (last - first) as usize;
        if bins <= MAX_BINS {
            break;
        }
        step *= 2.0;
    }
    let mut counts = vec![0usize; bins];
    for l in &logs {
        let i = ((l / step).floor() - first) as usize;
        counts[i.min(bins - 1)] += 1;
    }
    let edges = (0..=bins)
        .map(|i| ((first + i as f64) * step).exp2())
        .collect();
    Histogram { edges, counts }
}

/// Picture size of [`Inspection::histogram_png`].
const PNG_SIZE: (u32, u32) = (1100, 760);

impl Inspection {
    /// Draws the width (pixels), height (pixels), relative width and aspect histograms as four
    /// bar charts in one PNG.
    pub fn histogram_png(&self, path: &Path) -> Result<(), DataError> {
        let (w, h) = PNG_SIZE;
        let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
        let b = &self.boxes;
        let title = format!(
            "{} ({}): {} boxes in {} pictures",
            self.path.display(),
            self.layout_name,
            b.count,
            self.splits.iter().map(|s| s.images).sum::<usize>()
        );
        draw_text(&mut img, 16, 10, &title, 2, INK);
        let panels = [
            ("box width (pixels)", &b.width_histogram),
            ("box height (pixels)", &b.height_histogram),
            ("box width / picture width", &b.relative_width_histogram),
            ("aspect ratio (width / height)", &b.aspect_histogram),
        ];
        let (top, pw, ph) = (40, w / 2, (h - 40) / 2);
        for (k, (name, hist)) in panels.into_iter().enumerate() {
            let x0 = (k as u32 % 2) * pw;
            let y0 = top + (k as u32 / 2) * ph;
            draw_bars(&mut img, (x0, y0, pw, ph), name, hist, series_colour(k));
        }
        save_rgb_png(path, &img)?;
        Ok(())
    }
}

const INK: Rgb<u8> = Rgb([33, 33, 33]);
const MUTED: Rgb<u8> = Rgb([110, 110, 110]);

/// One bar chart in the panel `(x, y, width, height)`: a bar per bin, the count on top of each
/// bar that fits, the bin edges below.
fn draw_bars(
    img: &mut RgbImage,
    (x, y, w, h): (u32, u32, u32, u32),
    title: &str,
    hist: &Histogram,
    colour: Rgb<u8>,
) {
    let (x, y) = (x as i32, y as i32);
    draw_text(img, x + 20, y + 8, title, 2, INK);
    // Side margins leave room for the first and last edge labels, centred on their edges.
    let (left, right, top, bottom) = (x + 36, x + w as i32 - 36, y + 40, y + h as i32 - 40);
    let Some(&most) = hist.counts.iter().max() else {
        draw_text(img, left, top + 20, "no boxes", 2, MUTED);
        return;
    };
    fill(img, left, bottom, right - left, 1, INK);
    let n = hist.counts.len() as i32;
    let slot = (right - left) / n.max(1);
    for (i, &count) in hist.counts.iter().enumerate() {
        let i = i as i32;
        let bar = ((bottom - top - 14) as f64 * count as f64 / most.max(1) as f64).round() as i32;
        let bx = left + i * slot;
        fill(img, bx + 1, bottom - bar, (slot - 2).max(1), bar, colour);
        let label = count.to_string();
        if count > 0 && text_width(&label, 1) as i32 <= slot {
            draw_text(
                img,
                bx + (slot - text_width(&label, 1) as i32) / 2,
                bottom - bar - 10,
                &label,
                1,
                INK,
            );
        }
    }
    // Edge labels, as many as fit without overlapping.
    let every = (1..=n.max(1)).find(|e| slot * e >= 56).unwrap_or(n.max(1));
    for (i, edge) in hist.edges.iter().enumerate().step_by(every as usize) {
        let label = short_number(*edge);
        let ex = left + i as i32 * slot - text_width(&label, 1) as i32 / 2;
        fill(img, left + i as i32 * slot, bottom, 1, 4, INK);
        draw_text(img, ex, bottom + 8, &label, 1, MUTED);
    }
}

fn fill(img: &mut RgbImage, x: i32, y: i32, w: i32, h: i32, colour: Rgb<u8>) {
    let (iw, ih) = (img.width() as i32, img.height() as i32);
    for yy in y.max(0)..(y + h).min(ih) {
        for xx in x.max(0)..(x + w).min(iw) {
            img.put_pixel(xx as u32, yy as u32, colour);
        }
    }
}

/// A bin edge in two or three significant digits: `0.0028`, `0.71`, `2.8`, `45`, `1.4k`.
fn short_number(v: f64) -> String {
    match v {
        v if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        v if v >= 1000.0 => format!("{:.1}k", v / 1000.0),
        v if v >= 10.0 => format!("{v:.0}"),
        v if v >= 1.0 => format!("{v:.1}"),
        v if v > 0.0 => {
            let decimals = (-v.log10()).ceil() as usize + 1;
            format!("{v:.decimals$}")
        }
        v => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn half_octave_bins_by_hand() {
        // Edges 1, 1.41, 2, 2.83, 4, 5.66, 8, 11.3: 1 → bin 0, 2 → bin 2, 3 → bin 3, 8 → bin 6.
        let h = log_histogram(&[1.0, 2.0, 3.0, 8.0]);
        assert_eq!(h.counts, [1, 0, 1, 1, 0, 0, 1]);
        assert_eq!(h.edges.len(), 8);
        assert!((h.edges[1] - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(h.edges[0], 1.0);
        assert_eq!(h.edges[6], 8.0);
        // One value: one bin around it.
        let h = log_histogram(&[0.3]);
        assert_eq!(h.counts, [1]);
        assert!(h.edges[0] <= 0.3 && 0.3 < h.edges[1]);
        assert!(log_histogram(&[]).counts.is_empty());
        // A huge span widens the bins instead of making hundreds.
        let h = log_histogram(&[1e-9, 1e9]);
        assert!(h.counts.len() <= MAX_BINS);
        assert_eq!(h.counts.iter().sum::<usize>(), 2);
    }

    #[test]
    fn bin_edges_print_short_and_distinct() {
        let shown: Vec<String> = [
            0.00276, 0.0156, 0.0221, 0.5, 0.71, 2.83, 45.25, 1448.2, 23170.5,
        ]
        .map(short_number)
        .to_vec();
        assert_eq!(
            shown,
            [
                "0.0028", "0.016", "0.022", "0.50", "0.71", "2.8", "45", "1.4k", "23k"
            ]
        );
    }

    #[test]
    fn summaries_by_hand() {
        let s = summary(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                min: 1.0,
                median: 2.5,
                mean: 2.5,
                max: 4.0
            }
        );
        assert_eq!(summary(&[5.0, 1.0, 9.0]).unwrap().median, 5.0);
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn an_inspection_counts_what_the_data_set_holds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (name, w, h) in [
            ("train/a", 100, 50),
            ("train/b", 100, 50),
            ("val/c", 40, 40),
        ] {
            let p = root.join(format!("images/{name}.png"));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::RgbImage::new(w, h).save(&p).unwrap();
        }
        fs::create_dir_all(root.join("labels/train")).unwrap();
        fs::create_dir_all(root.join("labels/val")).unwrap();
        // a: a 20x10 cat and a 50x50 dog; c: a 10x20 dog and a bad line; b: no label file.
        fs::write(
            root.join("labels/train/a.txt"),
            "0 0.5 0.5 0.2 0.2\n1 0.25 0.5 0.5 1\n",
        )
        .unwrap();
        fs::write(root.join("labels/val/c.txt"), "1 0.5 0.5 0.25 0.5\n1 0.5\n").unwrap();
        fs::write(root.join("data.yaml"), "names: [cat, dog]\n").unwrap();
        let report = inspect(root).unwrap();
        assert_eq!(report.layout, Layout::Yolo);
        assert_eq!(report.classes, ["cat", "dog"]);
        assert_eq!(report.splits.len(), 2);
        let train = &report.splits[0];
        assert_eq!(
            (
                train.images,
                train.unlabelled,
                train.without_boxes,
                train.boxes
            ),
            (2, 1, 1, 2)
        );
        assert_eq!(train.boxes_per_class, [1, 1]);
        assert_eq!(report.splits[1].boxes_per_class, [0, 1]);
        assert_eq!(report.unlabelled, [root.join("images/train/b.png")]);
        assert_eq!(report.boxes.count, 3);
        let width = report.boxes.width.unwrap();
        assert_eq!((width.min, width.median, width.max), (10.0, 20.0, 50.0));
        let aspect = report.boxes.aspect.unwrap();
        assert_eq!((aspect.min, aspect.max), (0.5, 2.0));
        assert_eq!(report.boxes.relative_width.unwrap().max, 0.5);
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0]
                .to_string()
                .contains("c.txt:2: 2 fields, expected 5")
        );
        let png = root.join("plots.png");
        report.histogram_png(&png).unwrap();
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), PNG_SIZE);
        // The width panel's bars are drawn in the first series colour.
        let rgb = img.to_rgb8();
        assert!(rgb.pixels().any(|p| *p == series_colour(0)));
        assert!(
            serde_json::to_string(&report)
                .unwrap()
                .contains("\"layout\":\"yolo\"")
        );
    }
}
