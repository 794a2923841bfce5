//! Model spec files: a sequential CNN described in TOML, so people can define a network
//! without writing Rust.
//!
//! ```toml
//! name = "lenet5"
//! input = [1, 32, 32]          # channels, height, width
//!
//! [[layers]]
//! type = "conv2d"
//! filters = 6
//! kernel = 5
//! activation = "relu"
//!
//! [[layers]]
//! type = "avg_pool2d"
//! pool = 2
//!
//! [[layers]]
//! type = "flatten"
//!
//! [[layers]]
//! type = "dense"
//! units = 10
//! ```

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::activation::{Activation, ActivationLayer};
use crate::blocks::{Concat, Residual, SqueezeExcitationConfig};
use crate::conv::{ConvConfig, DepthwiseConfig, SeparableConfig};
use crate::dense::{DenseConfig, Flatten};
use crate::error::{LayerError, LayerErrorKind};
use crate::layer::{LayerInfo, spatial_dims};
use crate::limits::{Bytes, checked_product};
use crate::norm::{BatchNormConfig, DropoutConfig, LrnConfig};
use crate::pad::ZeroPadding2dConfig;
use crate::pool::{AdaptivePoolConfig, ChannelPoolConfig, GlobalPool, PoolConfig, PoolKind};
use crate::sequential::{Sequential, SequentialLayer, Stack, layer_error};
use crate::shape::FeatureShape;
use crate::summary::{Summarize, Summary, thousands};
use crate::transpose::ConvTransposeConfig;

/// One layer's settings; `type` picks the layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    Conv1d(ConvConfig),
    Conv2d(ConvConfig),
    Conv3d(ConvConfig),
    DepthwiseConv2d(DepthwiseConfig),
    SeparableConv2d(SeparableConfig),
    #[serde(alias = "conv1d_transpose")]
    ConvTranspose1d(ConvTransposeConfig),
    #[serde(alias = "conv2d_transpose")]
    ConvTranspose2d(ConvTransposeConfig),
    #[serde(alias = "conv3d_transpose")]
    ConvTranspose3d(ConvTransposeConfig),
    #[serde(alias = "max_pooling1d")]
    MaxPool1d(PoolConfig),
    #[serde(alias = "max_pooling2d")]
    MaxPool2d(PoolConfig),
    #[serde(alias = "max_pooling3d")]
    MaxPool3d(PoolConfig),
    #[serde(alias = "average_pooling1d")]
    AvgPool1d(PoolConfig),
    #[serde(alias = "average_pooling2d")]
    AvgPool2d(PoolConfig),
    #[serde(alias = "average_pooling3d")]
    AvgPool3d(PoolConfig),
    #[serde(alias = "adaptive_avg_pool")]
    AdaptiveAvgPool2d(AdaptivePoolConfig),
    #[serde(alias = "global_average_pooling")]
    GlobalAvgPool,
    #[serde(alias = "global_max_pooling")]
    GlobalMaxPool,
    #[serde(alias = "channel_max_pool")]
    ChannelPool(ChannelPoolConfig),
    #[serde(alias = "zero_pad2d")]
    ZeroPadding2d(ZeroPadding2dConfig),
    Flatten,
    Dense(DenseConfig),
    #[serde(alias = "batch_normalization")]
    BatchNorm(BatchNormConfig),
    Dropout(DropoutConfig),
    #[serde(alias = "lrn")]
    LocalResponseNorm(LrnConfig),
    #[serde(alias = "se")]
    SqueezeExcitation(SqueezeExcitationConfig),
    /// `y = activation(body(x) + shortcut(x))`; an empty shortcut is the identity.
    Residual {
        body: Vec<LayerSpec>,
        #[serde(default)]
        shortcut: Vec<LayerSpec>,
        #[serde(default)]
        activation: Activation,
    },
    /// Branches on the same input, concatenated along the channels.
    Concat {
        branches: Vec<Branch>,
    },
    /// An auxiliary classifier branching off here (GoogLeNet's); the identity on the main path.
    Aux {
        layers: Vec<LayerSpec>,
    },
    Activation {
        activation: Activation,
    },
    Relu,
    Relu6,
    Sigmoid,
    Tanh,
    Softmax,
}

/// One branch of a `concat` layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub layers: Vec<LayerSpec>,
}

impl LayerConfig {
    /// The stem of default layer names (`conv2d` -> `conv2d_1`, `conv2d_2`...).
    fn base_name(&self) -> &'static str {
        use LayerConfig as C;
        match self {
            C::Conv1d(_) => "conv1d",
            C::Conv2d(_) => "conv2d",
            C::Conv3d(_) => "conv3d",
            C::DepthwiseConv2d(_) => "depthwise_conv2d",
            C::SeparableConv2d(_) => "separable_conv2d",
            C::ConvTranspose1d(_) => "conv_transpose1d",
            C::ConvTranspose2d(_) => "conv_transpose2d",
            C::ConvTranspose3d(_) => "conv_transpose3d",
            C::MaxPool1d(_) => "max_pool1d",
            C::MaxPool2d(_) => "max_pool2d",
            C::MaxPool3d(_) => "max_pool3d",
            C::AvgPool1d(_) => "avg_pool1d",
            C::AvgPool2d(_) => "avg_pool2d",
            C::AvgPool3d(_) => "avg_pool3d",
            C::AdaptiveAvgPool2d(_) => "adaptive_avg_pool2d",
            C::GlobalAvgPool => "global_avg_pool",
            C::GlobalMaxPool => "global_max_pool",
            C::ChannelPool(_) => "channel_pool",
            C::ZeroPadding2d(_) => "zero_padding2d",
            C::Flatten => "flatten",
            C::Dense(_) => "dense",
            C::BatchNorm(_) => "batch_norm",
            C::Dropout(_) => "dropout",
            C::LocalResponseNorm(_) => "lrn",
            C::SqueezeExcitation(_) => "se",
            C::Residual { .. } => "residual",
            C::Concat { .. } => "concat",
            C::Aux { .. } => "aux",
            C::Activation { activation } => activation.name(),
            C::Relu => "relu",
            C::Relu6 => "relu6",
            C::Sigmoid => "sigmoid",
            C::Tanh => "tanh",
            C::Softmax => "softmax",
        }
    }

    fn op(&self) -> String {
        match self {
            LayerConfig::Conv1d(c) | LayerConfig::Conv2d(c) | LayerConfig::Conv3d(c) => {
                format!("{} {} filters {}", self.base_name(), c.filters, c.kernel)
            }
            LayerConfig::Dense(d) => format!("Dense {} units", d.units),
            other => other.base_name().to_string(),
        }
    }

    /// Creates the layer for an input of `input` shape.
    pub fn init(
        &self,
        input: &FeatureShape,
        device: &Device,
    ) -> Result<SequentialLayer, LayerErrorKind> {
        use LayerConfig as C;
        use SequentialLayer as L;
        let activation = |a| L::Activation(ActivationLayer::new(a));
        // Layers that need a map of a given number of spatial axes check it before they
        // read the channel count.
        let channels = |axes: usize| -> Result<usize, LayerErrorKind> {
            spatial_dims(input, axes)?;
            Ok(input.channels())
        };
        let any_map = || -> Result<usize, LayerErrorKind> {
            if input.rank() < 2 {
                return Err(LayerErrorKind::Rank {
                    expected: "a (channels, spatial...) map",
                    hint: " (it was flattened already)",
                });
            }
            Ok(input.channels())
        };
        Ok(match self {
            C::Conv1d(c) => L::Conv1d(c.init(channels(1)?, device)?),
            C::Conv2d(c) => L::Conv2d(c.init(channels(2)?, device)?),
            C::Conv3d(c) => L::Conv3d(c.init(channels(3)?, device)?),
            C::DepthwiseConv2d(c) => L::Conv2d(c.init(channels(2)?, device)?),
            C::SeparableConv2d(c) => L::SeparableConv2d(c.init(channels(2)?, device)?),
            C::ConvTranspose1d(c) => L::ConvTranspose1d(c.init(channels(1)?, device)?),
            C::ConvTranspose2d(c) => L::ConvTranspose2d(c.init(channels(2)?, device)?),
            C::ConvTranspose3d(c) => L::ConvTranspose3d(c.init(channels(3)?, device)?),
            C::MaxPool1d(c) => L::Pool1d(c.init(PoolKind::Max)?),
            C::MaxPool2d(c) => L::Pool2d(c.init(PoolKind::Max)?),
            C::MaxPool3d(c) => L::Pool3d(c.init(PoolKind::Max)?),
            C::AvgPool1d(c) => L::Pool1d(c.init(PoolKind::Avg)?),
            C::AvgPool2d(c) => L::Pool2d(c.init(PoolKind::Avg)?),
            C::AvgPool3d(c) => L::Pool3d(c.init(PoolKind::Avg)?),
            C::AdaptiveAvgPool2d(c) => {
                channels(2)?;
                L::AdaptivePool(c.init()?)
            }
            C::GlobalAvgPool => L::GlobalPool(GlobalPool::new(PoolKind::Avg)),
            C::GlobalMaxPool => L::GlobalPool(GlobalPool::new(PoolKind::Max)),
            C::ChannelPool(c) => L::ChannelPool(c.init()?),
            C::ZeroPadding2d(c) => L::ZeroPadding2d(c.init()?),
            C::Flatten => L::Flatten(Flatten),
            C::Dense(c) => {
                if input.rank() != 1 {
                    return Err(LayerErrorKind::Rank {
                        expected: "a flat (features) vector",
                        hint: "; add a flatten layer before it",
                    });
                }
                L::Dense(c.init(input.num_elements()?, device)?)
            }
            C::BatchNorm(c) => L::BatchNorm(c.init(input.channels(), device)?),
            C::Dropout(c) => L::Dropout(c.init()?),
            C::LocalResponseNorm(c) => {
                any_map()?;
                L::LocalResponseNorm(c.init()?)
            }
            C::SqueezeExcitation(c) => L::SqueezeExcitation(c.init(any_map()?, device)?),
            C::Residual {
                body,
                shortcut,
                activation,
            } => {
                let nested = |e: (Option<usize>, String)| LayerErrorKind::Config(e.1);
                let (body, _) = build_stack(body, input, device).map_err(nested)?;
                let (shortcut, _) = build_stack(shortcut, input, device).map_err(nested)?;
                let block = Residual {
                    body,
                    shortcut,
                    activation: *activation,
                };
                block.output(input)?;
                L::Residual(block)
            }
            C::Concat { branches } => {
                let nested = |e: (Option<usize>, String)| LayerErrorKind::Config(e.1);
                let branches = branches
                    .iter()
                    .map(|b| build_stack(&b.layers, input, device).map(|(s, _)| s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(nested)?;
                let block = Concat { branches };
                block.output(input)?;
                L::Concat(block)
            }
            C::Aux { layers } => {
                let (head, _) = build_stack(layers, input, device)
                    .map_err(|e: (Option<usize>, String)| LayerErrorKind::Config(e.1))?;
                L::Aux(head)
            }
            C::Activation { activation: a } => activation(*a),
            C::Relu => activation(Activation::Relu),
            C::Relu6 => activation(Activation::Relu6),
            C::Sigmoid => activation(Activation::Sigmoid),
            C::Tanh => activation(Activation::Tanh),
            C::Softmax => activation(Activation::Softmax),
        })
    }
}

/// A layer of a spec: its settings, an optional name, and where it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub config: LayerConfig,
    /// 1-based line of the `[[layers]]` table in the spec file, for error messages.
    #[serde(skip)]
    pub line: Option<usize>,
}

impl From<LayerConfig> for LayerSpec {
    fn from(config: LayerConfig) -> Self {
        Self {
            name: None,
            config,
            line: None,
        }
    }
}

impl LayerSpec {
    /// Splits `name` off a layer table and reads the rest as the layer's settings.
    /// `label` names the layer in messages ("layer 3", or "a nested layer").
    fn from_table(mut table: toml::Table, label: &str) -> Result<Self, String> {
        let name = match table.remove("name") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => return Err(format!("{label}: `name` must be a string")),
        };
        if !table.contains_key("type") {
            return Err(format!("{label}: missing `type` (e.g. type = \"conv2d\")"));
        }
        let config: LayerConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| format!("{label}: {}", e.message().trim()))?;
        Ok(Self {
            name,
            config,
            line: None,
        })
    }
}

/// Nested layer lists (inside `residual` and `concat`) are read the same way as the top level.
impl<'de> Deserialize<'de> for LayerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        LayerSpec::from_table(table, "a nested layer").map_err(serde::de::Error::custom)
    }
}

/// Builds layers in order from `input`, naming unnamed ones `conv2d_1`, `conv2d_2`...
/// Errors carry the spec line of the failing layer when known.
fn build_stack(
    specs: &[LayerSpec],
    input: &FeatureShape,
    device: &Device,
) -> Result<(Stack, FeatureShape), (Option<usize>, String)> {
    let mut counters: HashMap<&str, usize> = HashMap::new();
    let mut seen = HashSet::new();
    let mut shape = input.clone();
    let mut layers = Vec::with_capacity(specs.len());
    for spec in specs {
        let base = spec.config.base_name();
        let count = counters.entry(base).or_default();
        *count += 1;
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("{base}_{count}"));
        if !seen.insert(name.clone()) {
            return Err((spec.line, format!("two layers are named '{name}'")));
        }
        let fail = |e: LayerError| (spec.line, e.to_string());
        let layer = spec.config.init(&shape, device).map_err(|kind| {
            fail(LayerError {
                layer: name.clone(),
                op: spec.config.op(),
                input: shape.clone(),
                kind,
            })
        })?;
        shape = layer
            .output_shape(&shape)
            .map_err(|kind| fail(layer_error(&name, &layer, &shape, kind)))?;
        layers.push((name, layer));
    }
    Ok((Stack::new(layers), shape))
}

/// The first layer of the head [`ModelSpec::with_new_head`] adds.
pub const HEAD_START: &str = "head.pool";

/// A sequential network: an input shape and its layers in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    pub name: String,
    /// `[channels, height, width]` of one example.
    pub input: Vec<usize>,
    pub layers: Vec<LayerSpec>,
    /// The file the spec was read from, for error messages.
    #[serde(skip)]
    pub source: Option<String>,
}

/// A spec that cannot be read or built: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location(.path, *.line, *.column))]
pub struct SpecError {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn location(path: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{path}:{l}:{c}: "),
        (Some(l), None) => format!("{path}:{l}: "),
        _ if !path.is_empty() => format!("{path}: "),
        _ => String::new(),
    }
}

/// Where each line of a text starts, so that byte offsets turn into lines and columns in
/// logarithmic time: a spec of many layers asks once per layer, and counting newlines from the
/// start each time made reading it quadratic.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(src: &str) -> Self {
        let newlines = src.match_indices('\n').map(|(i, _)| i + 1);
        Self {
            starts: std::iter::once(0).chain(newlines).collect(),
        }
    }

    /// 1-based line and column (in bytes) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        (line, offset - start + 1)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    input: Vec<usize>,
    #[serde(default)]
    layers: Vec<toml::Spanned<toml::Table>>,
}

impl ModelSpec {
    pub fn new(name: impl Into<String>, input: impl Into<Vec<usize>>) -> Self {
        Self {
            name: name.into(),
            input: input.into(),
            layers: Vec::new(),
            source: None,
        }
    }

    /// Appends a layer (builder style).
    pub fn layer(mut self, config: LayerConfig) -> Self {
        self.layers.push(config.into());
        self
    }

    /// Appends a named layer (builder style).
    pub fn named(mut self, name: &str, config: LayerConfig) -> Self {
        self.layers.push(LayerSpec {
            name: Some(name.to_string()),
            config,
            line: None,
        });
        self
    }

    /// Reads a spec file.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| SpecError {
            path: shown.clone(),
            line: None,
            column: None,
            message: format!("cannot read the spec file: {e}"),
        })?;
        Self::parse(&src, &shown)
    }

    /// Parses spec text; `path` only labels error messages.
    pub fn parse(src: &str, path: &str) -> Result<Self, SpecError> {
        let lines = LineIndex::new(src);
        let err_at = |offset: Option<usize>, message: String| {
            let (line, column) = match offset {
                Some(o) => {
                    let (l, c) = lines.line_col(o.min(src.len()));
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            SpecError {
                path: path.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawSpec = toml::from_str(src).map_err(|e| {
            err_at(
                e.span().map(|s| s.start),
                e.message().trim().replace('\n', " "),
            )
        })?;
        let stem = Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let mut spec = ModelSpec::new(raw.name.unwrap_or(stem), raw.input);
        spec.source = Some(path.to_string());
        for (i, table) in raw.layers.into_iter().enumerate() {
            let start = table.span().start;
            let mut layer = LayerSpec::from_table(table.into_inner(), &format!("layer {}", i + 1))
                .map_err(|m| err_at(Some(start), m))?;
            layer.line = Some(lines.line_col(start).0);
            spec.layers.push(layer);
        }
        spec.validate_input().map_err(|m| err_at(None, m))?;
        Ok(spec)
    }

    fn validate_input(&self) -> Result<(), String> {
        if !(2..=4).contains(&self.input.len()) || self.input.contains(&0) {
            return Err(format!(
                "input must be [channels, length], [channels, height, width] or [channels, depth, height, width] with every size at least 1, got {:?}",
                self.input
            ));
        }
        checked_product("input", &self.input).map_err(|e| e.to_string())?;
        if self.layers.is_empty() {
            return Err("the model has no layers: add [[layers]] tables".into());
        }
        Ok(())
    }

    /// The spec as a TOML file that [`ModelSpec::parse`] reads back to an equal spec
    /// (checkpoints store their architecture this way).
    pub fn to_toml(&self) -> Result<String, SpecError> {
        toml::to_string(self).map_err(|e| SpecError {
            path: self.source.clone().unwrap_or_default(),
            line: None,
            column: None,
            message: format!("cannot write the spec as TOML: {e}"),
        })
    }

    /// The network without its classifier, as Keras' `include_top=False` gives it: auxiliary
    /// heads are dropped, and so is everything from the first top-level layer that turns maps
    /// into a vector (flatten, global or adaptive pooling, dense) on. What is left ends in the
    /// last feature map.
    pub fn without_top(&self) -> Result<ModelSpec, SpecError> {
        use LayerConfig as C;
        let mut spec = self.clone();
        spec.layers.retain(|l| !matches!(l.config, C::Aux { .. }));
        let cut = spec.layers.iter().position(|l| {
            matches!(
                l.config,
                C::Flatten
                    | C::GlobalAvgPool
                    | C::GlobalMaxPool
                    | C::AdaptiveAvgPool2d(_)
                    | C::Dense(_)
            )
        });
        match cut {
            Some(0) | None => Err(SpecError {
                path: self.source.clone().unwrap_or_default(),
                line: None,
                column: None,
                message: format!(
                    "cannot find where the classifier of '{}' starts (a flatten, global pool or dense layer after the feature layers)",
                    self.name
                ),
            }),
            Some(i) => {
                spec.layers.truncate(i);
                Ok(spec)
            }
        }
    }

    /// The network with a new classifier for `num_classes` classes on its features: global
    /// average pool → dropout 0.2 → dense, named `head.pool`, `head.dropout`, `head.fc`.
    pub fn with_new_head(&self, num_classes: usize) -> Result<ModelSpec, SpecError> {
        Ok(self
            .without_top()?
            .named(HEAD_START, LayerConfig::GlobalAvgPool)
            .named(
                "head.dropout",
                LayerConfig::Dropout(DropoutConfig::new(0.2)),
            )
            .named("head.fc", LayerConfig::Dense(DenseConfig::new(num_classes))))
    }

    /// Builds the network on `device`, checking every layer against its input shape and its
    /// weights against the memory limit before any of them is allocated.
    pub fn build(&self, device: &Device) -> Result<Sequential, SpecError> {
        let model = self.build_unallocated(device)?;
        let params = model
            .stack
            .param_count()
            .and_then(|p| p.total())
            .map_err(|e| self.error(None, e.to_string()))?;
        Bytes::f32s(&[params])
            .check(&format!(
                "the weights of '{}' ({} parameters)",
                self.name,
                thousands(params as u64)
            ))
            .map_err(|e| self.error(None, e.to_string()))?;
        Ok(model)
    }

    /// The network with its weights not yet allocated (Burn makes a weight on its first use),
    /// for shapes and summaries of networks of any size: nothing is checked against the memory
    /// limit except the few vectors layers make at once (batch norm's).
    pub fn build_unallocated(&self, device: &Device) -> Result<Sequential, SpecError> {
        self.validate_input().map_err(|m| self.error(None, m))?;
        let input = FeatureShape::new(self.input.clone());
        let (stack, _) =
            build_stack(&self.layers, &input, device).map_err(|(line, m)| self.error(line, m))?;
        Sequential::new(&self.name, input, stack_layers(stack))
            .map_err(|e| self.error(None, e.to_string()))
    }

    /// The Keras-style summary: shapes, parameter and multiply-add counts, computed without
    /// allocating the weights.
    pub fn summary(&self, device: &Device) -> Result<Summary, SpecError> {
        self.build_unallocated(device)?
            .summary()
            .map_err(|e| self.error(None, e.to_string()))
    }

    fn error(&self, line: Option<usize>, message: String) -> SpecError {
        SpecError {
            path: self.source.clone().unwrap_or_default(),
            line,
            column: None,
            message,
        }
    }
}

fn stack_layers(stack: Stack) -> Vec<(String, SequentialLayer)> {
    stack.names.into_iter().zip(stack.layers).collect()
}
