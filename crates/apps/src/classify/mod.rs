//! Classification: the most likely classes of pictures, from trained checkpoints (alone or an
//! ensemble whose probabilities are averaged), a pretrained architecture with weights from a
//! file, or an ONNX classifier. Each is opened once with its input recipe; pictures arrive
//! decoded.

mod ensemble;
pub mod train;
pub mod val;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::{ImageSet, Preprocess};
use convnet_graph::OnnxModel;
use convnet_layers::{Mode, Sequential};
use image::DynamicImage;
use serde::Serialize;

pub use ensemble::{Ensemble, Member};

use crate::{models, onnx};

/// Where a classifier comes from.
#[derive(Debug, Clone)]
pub enum ClassifierSource {
    /// Checkpoint files or run directories (their best checkpoint); several are an ensemble.
    Checkpoints(Vec<PathBuf>),
    /// A zoo model or spec file with weights from a `.pth`, `.safetensors` or checkpoint.
    Pretrained { model: String, weights: PathBuf },
    /// An ONNX classifier (its weights inside).
    Onnx(PathBuf),
}

/// How pictures are prepared for a pretrained or ONNX classifier (a checkpoint keeps its own).
#[derive(Debug, Clone, Default)]
pub struct ClassifyOptions {
    /// `imagenet`, `caffe` or `tf`; default: the recipe the weights were published with.
    pub preprocess: Option<String>,
    /// The input side; default: the published weights'.
    pub size: Option<usize>,
    /// A file of class names, one per line.
    pub labels: Option<PathBuf>,
}

/// One class with its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub index: usize,
    pub class: String,
    pub probability: f32,
}

enum Kind {
    Checkpoints(Ensemble),
    Pretrained {
        net: Sequential,
        recipe: Preprocess,
    },
    Onnx {
        model: Box<OnnxModel>,
        path: PathBuf,
    },
}

/// A classifier ready to run.
pub struct Classifier {
    kind: Kind,
    classes: Vec<String>,
    options: ClassifyOptions,
}

impl Classifier {
    pub fn open(
        source: &ClassifierSource,
        options: &ClassifyOptions,
        device: &Device,
    ) -> Result<Self> {
        let options = options.clone();
        match source {
            ClassifierSource::Checkpoints(paths) => {
                let ensemble = Ensemble::load(paths, device)?;
                let classes = ensemble.classes().to_vec();
                Ok(Self {
                    kind: Kind::Checkpoints(ensemble),
                    classes,
                    options,
                })
            }
            ClassifierSource::Pretrained { model, weights } => {
                let recipe =
                    models::preprocess_for(model, options.preprocess.as_deref(), options.size)?;
                let [h, w] = recipe.size;
                let input = [3, h, w];
                let dict = models::read_weights(weights, device)?;
                let mut spec = models::spec_for(model, Some(&input), 1000)?;
                if !models::is_spec_file(model)
                    && let Some(classes) = models::classes_in(&spec, &dict, device)?
                {
                    spec = models::spec_for(model, Some(&input), classes)?;
                }
                let (net, _) = models::load(&spec, &dict, false, weights, device)?;
                let k = net.output_shape()?.dims().iter().product();
                let classes = models::class_names(options.labels.as_deref(), k)?;
                Ok(Self {
                    kind: Kind::Pretrained { net, recipe },
                    classes,
                    options,
                })
            }
            ClassifierSource::Onnx(path) => Ok(Self::from_onnx(onnx::open(path)?, path, &options)),
        }
    }

    /// An ONNX classifier already opened from `path`. The class count is known once a picture
    /// has run; names stored by the exporter or given in a file are checked against it then.
    pub fn from_onnx(model: OnnxModel, path: &Path, options: &ClassifyOptions) -> Self {
        Self {
            kind: Kind::Onnx {
                model: Box::new(model),
                path: path.to_path_buf(),
            },
            classes: Vec::new(),
            options: options.clone(),
        }
    }

    /// The class names (for an ONNX classifier: those stored in the file or given, if any).
    pub fn classes(&self) -> Vec<String> {
        match &self.kind {
            Kind::Onnx { model, .. } if self.classes.is_empty() => {
                onnx::stored_classes(model).unwrap_or_default()
            }
            _ => self.classes.clone(),
        }
    }

    /// The ensemble behind a checkpoint classifier.
    pub fn ensemble(&self) -> Option<&Ensemble> {
        match &self.kind {
            Kind::Checkpoints(e) => Some(e),
            _ => None,
        }
    }

    /// What the network takes: `[C, H, W]` where known.
    pub fn input(&self) -> Vec<Option<usize>> {
        match &self.kind {
            Kind::Checkpoints(e) => e.input().iter().map(|&d| Some(d)).collect(),
            Kind::Pretrained { recipe, .. } => {
                vec![Some(3), Some(recipe.size[0]), Some(recipe.size[1])]
            }
            Kind::Onnx { model, path } => onnx::image_input(model, path)
                .map(|d| d.to_vec())
                .unwrap_or_default(),
        }
    }

    /// Class names and probabilities (`[N, classes]` row-major) of `pictures`, in order.
    /// `name` names picture `i` in errors.
    pub fn probabilities(
        &self,
        pictures: &[DynamicImage],
        name: impl Fn(usize) -> String,
        device: &Device,
    ) -> Result<(Vec<String>, Vec<f32>)> {
        if pictures.is_empty() {
            bail!("no picture to classify");
        }
        match &self.kind {
            Kind::Checkpoints(ensemble) => {
                let &[c, h, w] = ensemble.input() else {
                    bail!(
                        "this model takes examples of shape {:?}, not images: pass .npy arrays",
                        ensemble.input()
                    );
                };
                let mut pixels = Vec::new();
                for (i, picture) in pictures.iter().enumerate() {
                    pixels.extend(
                        convnet_data::folder::image_pixels(picture, [c, h, w])
                            .with_context(|| format!("cannot use {}", name(i)))?,
                    );
                }
                let set = ImageSet::new(
                    pixels,
                    vec![0; pictures.len()],
                    [c, h, w],
                    self.classes.clone(),
                )?;
                let probs = ensemble.probabilities(Arc::new(set), device, |_| {})?;
                Ok((self.classes.clone(), probs))
            }
            Kind::Pretrained { net, recipe } => {
                let [h, w] = recipe.size;
                let mut probs = Vec::with_capacity(pictures.len() * self.classes.len());
                for (at, chunk) in pictures.chunks(8).enumerate() {
                    let mut pixels = Vec::with_capacity(chunk.len() * 3 * h * w);
                    for (i, picture) in chunk.iter().enumerate() {
                        pixels.extend(
                            recipe
                                .apply(picture)
                                .with_context(|| format!("cannot use {}", name(at * 8 + i)))?,
                        );
                    }
                    let x = Tensor::<4>::from_data(
                        TensorData::new(pixels, [chunk.len(), 3, h, w]),
                        device,
                    );
                    let logits = net.forward_logits(x, Mode::Eval)?;
                    probs.extend(
                        softmax(logits, 1)
                            .into_data()
                            .convert::<f32>()
                            .try_to_vec::<f32>()?,
                    );
                }
                Ok((self.classes.clone(), probs))
            }
            Kind::Onnx { model, path } => {
                self.onnx_probabilities(model, path, pictures, &name, device)
            }
        }
    }

    /// One picture at a time: an ONNX classifier's batch axis may be fixed at 1.
    fn onnx_probabilities(
        &self,
        model: &OnnxModel,
        path: &Path,
        pictures: &[DynamicImage],
        name: &dyn Fn(usize) -> String,
        device: &Device,
    ) -> Result<(Vec<String>, Vec<f32>)> {
        let mut probs = Vec::new();
        let mut classes = 0;
        for (i, picture) in pictures.iter().enumerate() {
            let recipe = onnx::recipe(
                model,
                path,
                self.options.preprocess.as_deref(),
                self.options.size,
                (picture.width(), picture.height()),
                false,
            )?;
            let [h, w] = recipe.size;
            let pixels = recipe
                .apply(picture)
                .with_context(|| format!("cannot use {}", name(i)))?;
            let out = onnx::run_picture(model, pixels, [3, h, w], device)?;
            let row = out
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if classes != 0 && row.len() != classes || row.is_empty() {
                bail!(
                    "{}: the output has {} values per picture; a classifier's is one score per class",
                    path.display(),
                    row.len()
                );
            }
            classes = row.len();
            probs.extend(to_probabilities(row, device)?);
        }
        let names = match (&self.options.labels, onnx::stored_classes(model)) {
            (None, Some(stored)) if stored.len() == classes => stored,
            _ => models::class_names(self.options.labels.as_deref(), classes)?,
        };
        Ok((names, probs))
    }

    /// The `top` most likely classes of each picture, best first.
    pub fn classify(
        &self,
        pictures: &[DynamicImage],
        top: usize,
        name: impl Fn(usize) -> String,
        device: &Device,
    ) -> Result<Vec<Vec<Prediction>>> {
        let (classes, probs) = self.probabilities(pictures, name, device)?;
        Ok(top_k(&classes, &probs, top))
    }
}

/// A row of scores as probabilities: kept when it already is one (non-negative, summing to 1),
/// else a softmax of logits.
fn to_probabilities(row: Vec<f32>, device: &Device) -> Result<Vec<f32>> {
    let sum: f32 = row.iter().sum();
    if row.iter().all(|&p| (0.0..=1.0).contains(&p)) && (sum - 1.0).abs() < 1e-3 {
        return Ok(row);
    }
    let k = row.len();
    let x = Tensor::<2>::from_data(TensorData::new(row, [1, k]), device);
    Ok(softmax(x, 1)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()?)
}

/// The `top` best classes of each row of `probs` (`[N, classes]`), best first; ties keep the
/// lower index first.
pub fn top_k(classes: &[String], probs: &[f32], top: usize) -> Vec<Vec<Prediction>> {
    let k = classes.len();
    if k == 0 {
        return Vec::new();
    }
    probs
        .chunks(k)
        .map(|row| {
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order
                .into_iter()
                .take(top.min(k))
                .map(|c| Prediction {
                    index: c,
                    class: classes[c].clone(),
                    probability: row[c],
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_each_row_and_stops_at_the_class_count() {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let rows = top_k(&classes, &[0.2, 0.5, 0.3, 0.9, 0.05, 0.05], 5);
        let names: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(|p| p.class.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["b", "c", "a"], vec!["a", "b", "c"]]);
        assert_eq!(rows[1][0].probability, 0.9);
        assert_eq!(top_k(&classes, &[0.2, 0.5, 0.3], 1)[0][0].index, 1);
    }

    #[test]
    fn scores_become_probabilities_unless_they_already_are() {
        let device = Device::default();
        assert_eq!(
            to_probabilities(vec![0.25, 0.75], &device).unwrap(),
            vec![0.25, 0.75]
        );
        let p = to_probabilities(vec![0.0, 2.0_f32.ln()], &device).unwrap();
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-6 && (p[1] - 2.0 / 3.0).abs() < 1e-6);
    }
}
