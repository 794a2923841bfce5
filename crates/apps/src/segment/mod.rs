//! Semantic segmentation: a class for every pixel of a picture, from a checkpoint of
//! `convnet train --task segment` or an ONNX network whose output is a per-pixel map; the mask
//! at the picture's size, the pixels of each class, and a coloured overlay with a legend.

pub mod train;
mod upsample;
pub mod val;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::Normalization;
use convnet_graph::OnnxModel;
use convnet_layers::{Mode, Sequential};
use convnet_train::Checkpoint;
use convnet_vision::chart::{draw_text, series_colour, text_width};
use image::{DynamicImage, GrayImage, Rgb, RgbImage, imageops};

use crate::{models, onnx};
use upsample::Decide;

/// Where a segmenter comes from.
#[derive(Debug, Clone)]
pub enum SegmenterSource {
    /// A checkpoint file or run directory of `convnet train --task segment`.
    Checkpoint(PathBuf),
    /// An ONNX network whose output is `[1, K, h, w]`.
    Onnx(PathBuf),
}

/// How an ONNX segmenter's input and output are read (a checkpoint keeps its own recipe).
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// `imagenet`, `caffe` or `tf`; default: the recipe stored in the file, else `imagenet`.
    pub preprocess: Option<String>,
    /// Shorter side for a network whose input size is free.
    pub size: Option<usize>,
    /// Class names, one per line, background first.
    pub labels: Option<PathBuf>,
    /// For a one-channel probability map: the probability from which a pixel is foreground.
    pub threshold: f32,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            preprocess: None,
            size: None,
            labels: None,
            threshold: 0.5,
        }
    }
}

/// A picture's segmentation.
pub struct Segmentation {
    /// The class index of every pixel, at the picture's size.
    pub mask: GrayImage,
    pub classes: Vec<String>,
    /// Pixels of each class.
    pub counts: Vec<u64>,
}

/// The pixels of one class present in a segmentation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassArea {
    pub index: usize,
    pub class: String,
    pub pixels: u64,
    /// Of the picture's pixels.
    pub fraction: f64,
}

impl Segmentation {
    /// The classes present, in class order, with their areas.
    pub fn present(&self) -> Vec<ClassArea> {
        let total = (u64::from(self.mask.width()) * u64::from(self.mask.height())).max(1);
        self.classes
            .iter()
            .zip(&self.counts)
            .enumerate()
            .filter(|(_, (_, n))| **n > 0)
            .map(|(index, (class, &pixels))| ClassArea {
                index,
                class: class.clone(),
                pixels,
                fraction: pixels as f64 / total as f64,
            })
            .collect()
    }
}

enum Kind {
    Checkpoint {
        model: Sequential,
        normalization: Normalization,
        input: [usize; 3],
    },
    Onnx {
        model: Box<OnnxModel>,
        path: PathBuf,
    },
}

/// A segmentation network ready to run.
pub struct Segmenter {
    kind: Kind,
    classes: Vec<String>,
    options: SegmentOptions,
}

impl Segmenter {
    pub fn open(
        source: &SegmenterSource,
        options: &SegmentOptions,
        device: &Device,
    ) -> Result<Self> {
        let options = options.clone();
        match source {
            SegmenterSource::Checkpoint(checkpoint) => {
                let path = Checkpoint::resolve(checkpoint)?;
                let ckpt = Checkpoint::load(&path)?;
                let model = ckpt.model(&path, device)?;
                let classes = ckpt.meta.classes.clone();
                let &[c, h, w] = model.input_shape().dims() else {
                    bail!("{} is not an image network", path.display());
                };
                let out_dims = model.output_shape()?.dims().to_vec();
                if out_dims != [classes.len(), h, w] {
                    bail!(
                        "{} is not a segmentation network: it outputs {out_dims:?}, not a score map per class",
                        path.display()
                    );
                }
                if !(c == 1 || c == 3) {
                    bail!("the network takes {c} channels; pictures have 1 or 3");
                }
                Ok(Self {
                    kind: Kind::Checkpoint {
                        model,
                        normalization: Normalization::from(&ckpt.meta.normalization),
                        input: [c, h, w],
                    },
                    classes,
                    options,
                })
            }
            SegmenterSource::Onnx(path) => Ok(Self::from_onnx(onnx::open(path)?, path, &options)),
        }
    }

    /// An ONNX segmenter already opened from `path`.
    pub fn from_onnx(model: OnnxModel, path: &Path, options: &SegmentOptions) -> Self {
        Self {
            kind: Kind::Onnx {
                model: Box::new(model),
                path: path.to_path_buf(),
            },
            classes: Vec::new(),
            options: options.clone(),
        }
    }

    /// The class names, where known before a picture runs (a checkpoint's; an ONNX
    /// network's from `--labels`).
    pub fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    /// What the network takes: `[C, H, W]` where known.
    pub fn input(&self) -> Vec<Option<usize>> {
        match &self.kind {
            Kind::Checkpoint { input, .. } => input.iter().map(|&d| Some(d)).collect(),
            Kind::Onnx { model, path } => onnx::image_input(model, path)
                .map(|d| d.to_vec())
                .unwrap_or_default(),
        }
    }

    /// The class of every pixel of `picture`: the network's score maps resized (bilinear) to
    /// the picture, then the best class per pixel ([`upsample`]).
    pub fn segment(&self, picture: &DynamicImage, device: &Device) -> Result<Segmentation> {
        let (maps, classes) = match &self.kind {
            Kind::Checkpoint {
                model,
                normalization,
                input,
            } => (
                checkpoint_maps(model, normalization, *input, picture, device)?,
                self.classes.clone(),
            ),
            Kind::Onnx { model, path } => onnx_maps(&self.options, model, path, picture, device)?,
        };
        let (pw, ph) = (picture.width(), picture.height());
        let labels = upsample::labels(
            &maps.scores,
            maps.k,
            maps.size,
            [ph as usize, pw as usize],
            maps.decide,
        );
        let mask = GrayImage::from_raw(pw, ph, labels)
            .ok_or_else(|| anyhow::anyhow!("the mask does not fit a {pw}x{ph} picture"))?;
        let mut counts = vec![0u64; classes.len()];
        for p in mask.pixels() {
            counts[usize::from(p.0[0])] += 1;
        }
        Ok(Segmentation {
            mask,
            classes,
            counts,
        })
    }
}

/// A network's score maps over a picture, at the network's resolution.
struct Maps {
    /// `k` maps of `size`, row-major, map after map.
    scores: Vec<f32>,
    k: usize,
    size: [usize; 2],
    decide: Decide,
}

/// A checkpoint network's score maps over `picture`.
fn checkpoint_maps(
    model: &Sequential,
    norm: &Normalization,
    [c, h, w]: [usize; 3],
    picture: &DynamicImage,
    device: &Device,
) -> Result<Maps> {
    let resized = picture.resize_exact(w as u32, h as u32, imageops::FilterType::Triangle);
    let mut x = Vec::with_capacity(c * h * w);
    match c {
        1 => x.extend(
            resized
                .to_luma8()
                .pixels()
                .map(|p| norm.apply(0, f32::from(p.0[0]) / 255.0)),
        ),
        3 => {
            let rgb = resized.to_rgb8();
            for ch in 0..3 {
                x.extend(
                    rgb.pixels()
                        .map(|p| norm.apply(ch, f32::from(p.0[ch]) / 255.0)),
                );
            }
        }
        _ => bail!("the network takes {c} channels; pictures have 1 or 3"),
    }
    let scores = model
        .forward(
            Tensor::<4>::from_data(TensorData::new(x, [1, c, h, w]), device),
            Mode::Eval,
        )?
        .into_map2d()
        .map_err(|e| anyhow::anyhow!("cannot read the score maps: {e:?}"))?;
    let [_, k, oh, ow] = scores.dims();
    if k == 0 || k > 256 {
        bail!("{k} score maps; masks hold 1 to 256 classes");
    }
    let scores = scores
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(Maps {
        scores,
        k,
        size: [oh, ow],
        decide: Decide::Argmax,
    })
}

/// An ONNX network's score maps over `picture` and its class names: K maps of which the best
/// wins, or one probability map thresholded.
fn onnx_maps(
    options: &SegmentOptions,
    model: &OnnxModel,
    model_path: &Path,
    picture: &DynamicImage,
    device: &Device,
) -> Result<(Maps, Vec<String>)> {
    let recipe = onnx::recipe(
        model,
        model_path,
        options.preprocess.as_deref(),
        options.size,
        (picture.width(), picture.height()),
        true,
    )?;
    let [h, w] = recipe.size;
    let pixels = recipe.apply(picture)?;
    let out = onnx::run_picture(model, pixels, [3, h, w], device)?;
    let dims = out.shape().to_vec();
    let &[1, k, oh, ow] = dims.as_slice() else {
        bail!(
            "{}: its output is {dims:?}; a per-pixel map is [1, K, h, w]",
            model_path.display()
        );
    };
    if k == 0 || k > 256 {
        bail!(
            "{}: {k} score maps; masks hold 1 to 256 classes",
            model_path.display()
        );
    }
    let scores = out
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let decide = if k == 1 {
        Decide::Threshold {
            at: options.threshold,
            // Logits rather than probabilities when any value lies outside [0, 1].
            logits: scores.iter().any(|&v| !(0.0..=1.0).contains(&v)),
        }
    } else {
        Decide::Argmax
    };
    let classes = match (&options.labels, k) {
        (Some(file), _) => models::class_names(Some(file), k.max(2))?,
        (None, _)
            if let Some(stored) = onnx::stored_classes(model).filter(|c| c.len() == k.max(2)) =>
        {
            stored
        }
        (None, 1) => vec!["background".into(), "foreground".into()],
        (None, _) => (0..k).map(|c| format!("class {c}")).collect(),
    };
    let maps = Maps {
        scores,
        k,
        size: [oh, ow],
        decide,
    };
    Ok((maps, classes))
}

/// The colour of class `c`: background stays uncoloured, the rest take the chart palette.
fn class_colour(c: usize) -> Option<Rgb<u8>> {
    (c > 0).then(|| series_colour(c - 1))
}

/// The picture with every non-background pixel tinted by its class, and a legend of the
/// classes present below it.
pub fn render_overlay(picture: &RgbImage, mask: &GrayImage, classes: &[String]) -> RgbImage {
    let (w, h) = picture.dimensions();
    let present: Vec<usize> = (1..classes.len())
        .filter(|&c| mask.pixels().any(|p| usize::from(p.0[0]) == c))
        .collect();
    let scale = if w >= 320 { 2 } else { 1 };
    let row = 10 * scale + 4;
    let legend_h = row * present.len().max(1) as u32 + 6;
    let width = w.max(
        present
            .iter()
            .map(|&c| text_width(&classes[c], scale) + 10 * scale + 16)
            .max()
            .unwrap_or(0),
    );
    let mut out = RgbImage::from_pixel(width, h + legend_h, Rgb([255, 255, 255]));
    for (x, y, p) in picture.enumerate_pixels() {
        let tinted = match class_colour(usize::from(mask.get_pixel(x, y).0[0])) {
            Some(c) => Rgb([0, 1, 2].map(|i| ((u16::from(p.0[i]) + u16::from(c.0[i])) / 2) as u8)),
            None => *p,
        };
        out.put_pixel(x, y, tinted);
    }
    for (i, &c) in present.iter().enumerate() {
        let y = h + 4 + i as u32 * row;
        let colour = class_colour(c).unwrap_or(Rgb([0, 0, 0]));
        for dy in 0..8 * scale {
            for dx in 0..8 * scale {
                out.put_pixel(4 + dx, y + dy, colour);
            }
        }
        draw_text(
            &mut out,
            (8 + 8 * scale + 4) as i32,
            y as i32,
            &classes[c],
            scale,
            Rgb([0, 0, 0]),
        );
    }
    if present.is_empty() {
        draw_text(
            &mut out,
            4,
            (h + 4) as i32,
            "background only",
            scale,
            Rgb([0, 0, 0]),
        );
    }
    out
}
