//! COCO detectors that are TF.js graph models (the human package's CenterNet and NanoDet),
//! translated to ONNX and decoded as the package's own JavaScript decodes them
//! (`src/object/centernet.ts`, `src/object/nanodet.ts` of @vladmandic/human), then per-class
//! NMS in the picture's pixels.
//!
//! - CenterNet (MobileNetV3, 512x512, 0–255 pixels): an 80-class heat map and 4 box sides
//!   per cell of a 128x128 grid (stride 4). The graph's own `tower_0/detections` (3x3 max-pool
//!   peaks, top 100, sides gathered) needs TopK, which the executor lacks; the same steps run
//!   here on the heat map and sides.
//! - NanoDet (416x416, 0–1 pixels): per level (13, 26, 52 cells a side) 80 class scores and
//!   4 sides x 11 bins per cell. As the package does: each side is its best bin times
//!   `2.5 / stride_factor · cells / 416`, boxes clipped to the picture, class 61 ignored.
//!
//! Candidates (before NMS) are what the parity check against tfjs compares.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, TensorData};
use convnet_graph::OnnxModel;
use convnet_vision::{BBox, Detection, nms_per_class};
use image::RgbImage;

use crate::onnx;

/// COCO's 80 detection classes, in the models' order.
pub const COCO: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The score below which the package's JavaScript drops boxes (`config.object.minConfidence`).
pub const DEFAULT_SCORE: f32 = 0.2;

/// CenterNet's top-k over heat-map peaks, as its graph takes.
const CENTERNET_TOP_K: usize = 100;
/// NanoDet's class the package ignores (61, "toilet" in this order).
const NANODET_SKIPPED_CLASS: usize = 61;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Decoder {
    /// Output indices of the heat map `[1, 80, H, W]` and sides `[1, 4, H, W]`.
    CenterNet { heat: usize, sides: usize },
    /// Per level (13, 26, 52 cells a side): output indices of scores `[1, n, 80]` and
    /// distributions `[1, n, 4·bins]`.
    NanoDet { levels: [(usize, usize); 3] },
}

/// A translated TF.js COCO detector.
pub struct GraphDetector {
    model: OnnxModel,
    path: PathBuf,
    decoder: Decoder,
    /// The network input's side.
    side: usize,
    preprocess: convnet_data::Preprocess,
}

impl GraphDetector {
    /// Opens the graph model at `path`; its outputs say which decoder it takes.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let model = onnx::open_graph_model(path)?;
        let [c, h, w] = onnx::image_input(&model, path)?;
        let (Some(3), Some(h), Some(w)) = (c, h, w) else {
            bail!(
                "{}: a detector takes a fixed-size RGB picture, not {:?}",
                path.display(),
                [c, h, w]
            );
        };
        if h != w {
            bail!(
                "{}: a square input was expected, not {h}x{w}",
                path.display()
            );
        }
        // The parser leaves output sizes open: a run on zeros gives them (and prepares the
        // weights on the device for the pictures that follow).
        let zeros = TensorData::new(vec![0f32; 3 * h * w], [1, 3, h, w]);
        let shapes: Vec<Vec<usize>> = model
            .run(&[zeros], device)?
            .iter()
            .map(|o| o.shape().to_vec())
            .collect();
        let decoder = decoder_of(&shapes).with_context(|| {
            format!(
                "{}: its outputs are neither CenterNet's (80-class heat map and 4 sides) nor NanoDet's (80 scores and 4 side distributions on 3 levels)",
                path.display()
            )
        })?;
        Ok(Self {
            preprocess: onnx::graph_model_recipe(path, [h, w]),
            model,
            path: path.to_path_buf(),
            decoder,
            side: h,
        })
    }

    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn side(&self) -> usize {
        self.side
    }

    pub fn name(&self) -> &'static str {
        match self.decoder {
            Decoder::CenterNet { .. } => "centernet",
            Decoder::NanoDet { .. } => "nanodet",
        }
    }

    pub fn classes(&self) -> Vec<String> {
        COCO.iter().map(|s| s.to_string()).collect()
    }

    /// The network input for `picture`: `[3, side, side]`, channels first.
    pub fn input(&self, picture: &RgbImage) -> Result<Vec<f32>> {
        Ok(self
            .preprocess
            .apply(&image::DynamicImage::ImageRgb8(picture.clone()))?)
    }

    /// The boxes scoring above `score` before NMS, in the pixels of a `size` picture (not
    /// clipped), from the network input `x`.
    pub fn candidates(
        &self,
        x: Vec<f32>,
        size: (u32, u32),
        score: f32,
        device: &Device,
    ) -> Result<Vec<Detection>> {
        let s = self.side;
        let outs = self
            .model
            .run(&[TensorData::new(x, [1, 3, s, s])], device)?;
        let values = |i: usize| -> Result<(Vec<usize>, Vec<f32>)> {
            let out = outs.get(i).context("an output is missing")?;
            let shape = out.shape().to_vec();
            let v = out
                .clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            Ok((shape, v))
        };
        let (pw, ph) = (size.0 as f32, size.1 as f32);
        Ok(match self.decoder {
            Decoder::CenterNet { heat, sides } => {
                let (hs, heat) = values(heat)?;
                let (_, sides) = values(sides)?;
                centernet(&heat, &sides, [hs[2], hs[3]], s, score, (pw, ph))
            }
            Decoder::NanoDet { levels } => {
                let mut found = Vec::new();
                for (level, &(scores, dist)) in levels.iter().enumerate() {
                    let (_, sc) = values(scores)?;
                    let (ds, d) = values(dist)?;
                    found.extend(nanodet_level(&sc, &d, ds[2] / 4, level, s, score, (pw, ph)));
                }
                found
            }
        })
    }

    /// The detections in `picture` above `score`, after per-class NMS at `iou`, clipped to it.
    pub fn detect(
        &self,
        picture: &RgbImage,
        score: f32,
        iou: f32,
        device: &Device,
    ) -> Result<Vec<Detection>> {
        let (w, h) = picture.dimensions();
        let found = self.candidates(self.input(picture)?, (w, h), score, device)?;
        let clipped: Vec<Detection> = found
            .into_iter()
            .map(|d| Detection {
                bbox: d.bbox.clip(w as f32, h as f32),
                ..d
            })
            .collect();
        Ok(nms_per_class(&clipped, score, iou))
    }
}

/// Which decoder the outputs' shapes call for.
fn decoder_of(shapes: &[Vec<usize>]) -> Option<Decoder> {
    let find = |f: &dyn Fn(&[usize]) -> bool| shapes.iter().position(|s| f(s));
    let heat = find(&|s| matches!(s, [1, 80, h, w] if *h > 0 && *w > 0));
    if let Some(heat) = heat {
        let hw = &shapes[heat][2..];
        let sides = find(&|s| s.len() == 4 && s[..2] == [1, 4] && &s[2..] == hw)?;
        return Some(Decoder::CenterNet { heat, sides });
    }
    let mut levels = [(0, 0); 3];
    for (level, cells) in [13usize, 26, 52].into_iter().enumerate() {
        let n = cells * cells;
        let scores = find(&|s| s == [1, n, 80])?;
        let dist = find(&|s| matches!(s, [1, m, k] if *m == n && *k < 80 && *k > 0 && k % 4 == 0))?;
        levels[level] = (scores, dist);
    }
    Some(Decoder::NanoDet { levels })
}

/// CenterNet's detections: heat-map cells that are the maximum of their 3x3 neighbourhood,
/// the best `CENTERNET_TOP_K` of them (ties to the lower index, in TensorFlow's `[y, x,
/// class]` order, as TopKV2), above `score`; each box the cell's centre (×4, the stride, in
/// input pixels) minus / plus its four sides, scaled to the picture.
fn centernet(
    heat: &[f32],
    sides: &[f32],
    [gh, gw]: [usize; 2],
    side: usize,
    score: f32,
    (pw, ph): (f32, f32),
) -> Vec<Detection> {
    let plane = gh * gw;
    let classes = heat.len() / plane.max(1);
    let stride = side as f32 / gw as f32;
    let mut peaks: Vec<(f32, usize, usize)> = Vec::new();
    for c in 0..classes {
        let map = &heat[c * plane..(c + 1) * plane];
        for y in 0..gh {
            for x in 0..gw {
                let v = map[y * gw + x];
                if v <= score {
                    continue;
                }
                let peak = (y.saturating_sub(1)..(y + 2).min(gh)).all(|yy| {
                    (x.saturating_sub(1)..(x + 2).min(gw)).all(|xx| map[yy * gw + xx] <= v)
                });
                if peak {
                    // TensorFlow's flat index over [y, x, class].
                    peaks.push((v, (y * gw + x) * classes + c, c));
                }
            }
        }
    }
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    peaks.truncate(CENTERNET_TOP_K);
    peaks
        .into_iter()
        .map(|(v, flat, class)| {
            let cell = flat / classes;
            let (x, y) = ((cell % gw) as f32 * stride, (cell / gw) as f32 * stride);
            let at = |k: usize| sides[k * plane + cell];
            let (sx, sy) = (pw / side as f32, ph / side as f32);
            Detection {
                bbox: BBox {
                    x1: (x - at(0)) * sx,
                    y1: (y - at(1)) * sy,
                    x2: (x + at(2)) * sx,
                    y2: (y + at(3)) * sy,
                },
                score: v,
                class,
            }
        })
        .collect()
}

/// One NanoDet level's boxes above `score`, as the package's loop computes them: level `l`
/// has `13 · 2^l` cells a side; each side is the index of its best bin.
fn nanodet_level(
    scores: &[f32],
    dist: &[f32],
    bins: usize,
    level: usize,
    side: usize,
    score: f32,
    (pw, ph): (f32, f32),
) -> Vec<Detection> {
    let factor = 1usize << level;
    let cells = 13 * factor;
    let per = 4 * bins;
    let mut out = Vec::new();
    for i in 0..cells * cells {
        for j in 0..80 {
            let v = scores[i * 80 + j];
            if v <= score || j == NANODET_SKIPPED_CLASS {
                continue;
            }
            let cx = (0.5 + (i % cells) as f32) / cells as f32;
            let cy = (0.5 + (i / cells) as f32) / cells as f32;
            let off: Vec<f32> = (0..4)
                .map(|s| {
                    let d = &dist[i * per + s * bins..i * per + (s + 1) * bins];
                    let best = (1..bins).fold(0, |b, k| if d[k] > d[b] { k } else { b });
                    best as f32 * (cells as f32 / factor as f32 / side as f32)
                })
                .collect();
            let k = 2.5 / factor as f32;
            let x = cx - k * off[0];
            let y = cy - k * off[1];
            let w = cx + k * off[2] - x;
            let h = cy + k * off[3] - y;
            let [x, y, w, h] = [x, y, w, h].map(|a| a.clamp(0.0, 1.0));
            out.push(Detection {
                bbox: BBox {
                    x1: x * pw,
                    y1: y * ph,
                    x2: (x + w) * pw,
                    y2: (y + h) * ph,
                },
                score: v,
                class: j,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centernet_takes_peaks_of_the_heat_map() {
        // One class on a 4x4 grid: a peak of 0.9 at (1, 1), its neighbour 0.5 is no peak; a
        // second peak 0.3 at (3, 3).
        let mut heat = vec![0.0f32; 16];
        heat[5] = 0.9;
        heat[6] = 0.5;
        heat[15] = 0.3;
        // Sides 1, 2, 3, 4 everywhere.
        let sides: Vec<f32> = (0..4).flat_map(|k| vec![(k + 1) as f32; 16]).collect();
        let found = centernet(&heat, &sides, [4, 4], 16, 0.2, (32.0, 16.0));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].score, 0.9);
        // Centre (4, 4) in the 16-pixel input; x scaled by 2, y by 1.
        assert_eq!(
            found[0].bbox,
            BBox {
                x1: 6.0,
                y1: 2.0,
                x2: 14.0,
                y2: 8.0
            }
        );
        assert_eq!(found[1].score, 0.3);
        assert!(centernet(&heat, &sides, [4, 4], 16, 0.95, (32.0, 16.0)).is_empty());
    }

    #[test]
    fn nanodet_sides_come_from_the_best_bins() {
        // Level 0 (13x13 cells), one cell with class 16 (dog) at 0.8; side bins peak at 2, 3,
        // 4, 5.
        let bins = 11;
        let mut scores = vec![0.0f32; 169 * 80];
        let cell = 6 * 13 + 6;
        scores[cell * 80 + 16] = 0.8;
        scores[cell * 80 + NANODET_SKIPPED_CLASS] = 0.9;
        let mut dist = vec![0.0f32; 169 * 44];
        for (s, best) in [2usize, 3, 4, 5].into_iter().enumerate() {
            dist[cell * 44 + s * bins + best] = 1.0;
        }
        let found = nanodet_level(&scores, &dist, bins, 0, 416, 0.2, (416.0, 416.0));
        assert_eq!(found.len(), 1, "class 61 is skipped");
        let d = &found[0];
        assert_eq!(d.class, 16);
        // Centre 0.5; each side best · 13/416 · 2.5, in 416 pixels: best · 32.5.
        let c = 208.0;
        let expect = [
            c - 2.0 * 32.5,
            c - 3.0 * 32.5,
            c + 4.0 * 32.5,
            c + 5.0 * 32.5,
        ];
        let got = [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2];
        for (g, e) in got.iter().zip(expect) {
            assert!((g - e).abs() < 1e-3, "{got:?} vs {expect:?}");
        }
    }
}
