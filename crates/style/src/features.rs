//! A pretrained network cut down to the layers style transfer reads, with the course's layer
//! names (`conv1_1` … `conv5_4`) resolved to the network's own (torchvision's `features.N`).

use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::Preprocess;
use convnet_layers::{Activation, LayerConfig, Mode, ModelSpec, Sequential};
use convnet_weights::{LoadOptions, StateDict};

use crate::error::StyleError;

/// Names by which the layers of a plain conv stack can be asked for: `convS_I` (and
/// `reluS_I`) for the I-th convolution of stage S — the activation after its ReLU, as the
/// paper and the course read them — and `poolS` for the pool that ends stage S. Stages are
/// counted by pooling layers, as in VGG.
pub fn layer_aliases(spec: &ModelSpec) -> Vec<(String, String)> {
    let mut aliases = Vec::new();
    let (mut stage, mut conv) = (1, 0);
    // The alias waiting for its convolution's ReLU.
    let mut pending: Option<(String, String)> = None;
    for (i, layer) in spec.layers.iter().enumerate() {
        let name = layer.name.clone().unwrap_or_else(|| i.to_string());
        match &layer.config {
            LayerConfig::Conv2d(c) => {
                conv += 1;
                let alias = format!("{stage}_{conv}");
                if c.activation == Activation::Linear {
                    pending = Some((alias, name));
                } else {
                    push_conv(&mut aliases, &alias, &name);
                    pending = None;
                }
            }
            LayerConfig::Activation { .. } => {
                if let Some((alias, _)) = pending.take() {
                    push_conv(&mut aliases, &alias, &name);
                }
            }
            LayerConfig::BatchNorm(_) => {}
            LayerConfig::MaxPool2d(_) | LayerConfig::AvgPool2d(_) => {
                if let Some((alias, conv_name)) = pending.take() {
                    push_conv(&mut aliases, &alias, &conv_name);
                }
                aliases.push((format!("pool{stage}"), name));
                stage += 1;
                conv = 0;
            }
            _ => {
                if let Some((alias, conv_name)) = pending.take() {
                    push_conv(&mut aliases, &alias, &conv_name);
                }
            }
        }
    }
    if let Some((alias, conv_name)) = pending {
        push_conv(&mut aliases, &alias, &conv_name);
    }
    aliases
}

fn push_conv(aliases: &mut Vec<(String, String)>, stage_conv: &str, layer: &str) {
    aliases.push((format!("conv{stage_conv}"), layer.to_string()));
    aliases.push((format!("relu{stage_conv}"), layer.to_string()));
}

/// Every name a layer of `spec` can be asked for by: course aliases, then the layers' own names.
pub fn valid_layer_names(spec: &ModelSpec) -> Vec<String> {
    let mut names: Vec<String> = layer_aliases(spec)
        .into_iter()
        .map(|(alias, _)| alias)
        .filter(|a| !a.starts_with("relu"))
        .collect();
    names.extend(spec.layers.iter().filter_map(|l| l.name.clone()));
    names
}

/// The top-level layer of `spec` that `name` (an alias or a layer's own name) stands for.
pub fn resolve_layer(spec: &ModelSpec, name: &str) -> Result<String, StyleError> {
    if let Some((_, layer)) = layer_aliases(spec).into_iter().find(|(a, _)| a == name) {
        return Ok(layer);
    }
    if spec.layers.iter().any(|l| l.name.as_deref() == Some(name)) {
        return Ok(name.to_string());
    }
    Err(StyleError::UnknownLayer {
        name: name.to_string(),
        model: spec.name.clone(),
        valid: valid_layer_names(spec),
    })
}

/// How pixels in [0, 1] become the network's input, inside the graph so that gradients reach
/// the pixels: `(p · 255 · scale − mean[c]) / std[c]`, channels swapped to BGR when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub bgr: bool,
}

impl Normalization {
    /// What a preprocessing preset (torchvision's `imagenet`, Keras' `caffe` or `tf`) does to
    /// the pixel values, without its resizing.
    pub fn from_preprocess(p: &Preprocess) -> Self {
        Self {
            scale: p.scale,
            mean: p.mean,
            std: p.std,
            bgr: p.bgr,
        }
    }

    pub fn apply(&self, image: Tensor<4>) -> Tensor<4> {
        let device = image.device();
        let image = if self.bgr { image.flip([1]) } else { image };
        let per_channel = |values: [f32; 3]| {
            Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 3, 1, 1]), &device)
        };
        let gain: [f32; 3] = std::array::from_fn(|c| 255.0 * self.scale / self.std[c]);
        let offset: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        image * per_channel(gain) - per_channel(offset)
    }
}

/// The layers style transfer reads from: one content layer and weighted style layers.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerChoice {
    pub content: String,
    /// `(layer, λ_l)`.
    pub style: Vec<(String, f64)>,
}

impl LayerChoice {
    /// The paper's and the course's choice: content from conv4_2, style from conv1_1 …
    /// conv5_1 with equal weights λ = 1/5.
    pub fn gatys() -> Self {
        Self::equal(
            "conv4_2",
            &["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"],
        )
    }

    /// `style` layers weighted equally (λ = 1/L).
    pub fn equal(content: &str, style: &[&str]) -> Self {
        let lambda = 1.0 / style.len().max(1) as f64;
        Self {
            content: content.to_string(),
            style: style.iter().map(|s| (s.to_string(), lambda)).collect(),
        }
    }
}

/// A network truncated after the deepest layer it is read at, taking images of one size.
pub struct FeatureNet {
    model: Sequential,
    normalization: Normalization,
    content: String,
    style: Vec<(String, f64)>,
}

/// Activations of the generated (or a target) image at the chosen layers.
pub struct Activations {
    pub content: Tensor<4>,
    pub style: Vec<Tensor<4>>,
}

impl FeatureNet {
    /// `spec` cut after the deepest layer of `layers`, for images `[3, height, width]`, with
    /// `weights` loaded by name: every tensor the cut network needs must be in the file (the
    /// classifier's may be missing or extra). `None` keeps the random initialisation, which
    /// only the benchmarks and tests should want.
    pub fn new(
        spec: &ModelSpec,
        layers: &LayerChoice,
        size: [usize; 2],
        normalization: Normalization,
        weights: Option<&StateDict>,
        device: &Device,
    ) -> Result<Self, StyleError> {
        if layers.style.is_empty() {
            return Err(StyleError::Config(
                "at least one style layer is needed".into(),
            ));
        }
        let content = resolve_layer(spec, &layers.content)?;
        let style = layers
            .style
            .iter()
            .map(|(name, lambda)| {
                if !lambda.is_finite() || *lambda < 0.0 {
                    return Err(StyleError::Config(format!(
                        "the weight of style layer {name} must be a non-negative number, not {lambda}"
                    )));
                }
                Ok((resolve_layer(spec, name)?, *lambda))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let position = |name: &str| {
            spec.layers
                .iter()
                .position(|l| l.name.as_deref() == Some(name))
                .expect("resolved layers are top-level layers of the spec")
        };
        let deepest = std::iter::once(content.as_str())
            .chain(style.iter().map(|(n, _)| n.as_str()))
            .map(position)
            .max()
            .unwrap_or(0);
        let mut cut = spec.clone();
        cut.layers.truncate(deepest + 1);
        let &[channels, ..] = spec.input.as_slice() else {
            return Err(StyleError::Config(format!(
                "{} has no input shape",
                spec.name
            )));
        };
        if channels != 3 {
            return Err(StyleError::Config(format!(
                "{} takes {channels}-channel input; style transfer works on RGB pictures",
                spec.name
            )));
        }
        cut.input = vec![3, size[0], size[1]];
        let model = cut.build(device).map_err(|e| {
            StyleError::Config(format!(
                "{} cannot take {}x{} pictures: {e}",
                spec.name, size[1], size[0]
            ))
        })?;
        let model = match weights {
            None => model,
            Some(dict) => {
                let (model, report) = convnet_weights::load(model, dict, &LoadOptions::partial())?;
                if !report.missing.is_empty() || !report.mismatched.is_empty() {
                    let mut problems: Vec<String> = report
                        .missing
                        .iter()
                        .map(|k| format!("{k} missing"))
                        .collect();
                    problems.extend(report.mismatched.iter().map(|m| {
                        format!(
                            "{} is {:?} in the file, {:?} in the model",
                            m.key, m.found, m.expected
                        )
                    }));
                    let shown = problems.len().min(8);
                    let more = if problems.len() > shown {
                        format!(" (and {} more)", problems.len() - shown)
                    } else {
                        String::new()
                    };
                    return Err(StyleError::Weights(format!(
                        "the weights do not fit {} up to layer {}: {}{more}",
                        spec.name,
                        cut.layers[deepest].name.as_deref().unwrap_or("?"),
                        problems[..shown].join(", ")
                    )));
                }
                model
            }
        };
        Ok(Self {
            model,
            normalization,
            content,
            style,
        })
    }

    /// The style layers' weights λ_l, in order.
    pub fn style_weights(&self) -> Vec<f64> {
        self.style.iter().map(|(_, l)| *l).collect()
    }

    /// Activations of `image` (`[1, 3, H, W]`, values in [0, 1]) at the content and style
    /// layers, in one pass that stops at the deepest of them.
    pub fn activations(&self, image: Tensor<4>) -> Result<Activations, StyleError> {
        let mut names = vec![self.content.as_str()];
        names.extend(self.style.iter().map(|(n, _)| n.as_str()));
        let x = self.normalization.apply(image);
        let mut maps = self
            .model
            .forward_features(x, &names, Mode::Eval)?
            .into_iter()
            .map(|f| f.into_map2d())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StyleError::Config(format!("a chosen layer is not a feature map: {e}")))?;
        let content = maps.remove(0);
        Ok(Activations {
            content,
            style: maps,
        })
    }
}
