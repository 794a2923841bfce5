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
use crate::conv::Conv2dConfig;
use crate::dense::{DenseConfig, Flatten};
use crate::error::{LayerError, LayerErrorKind};
use crate::layer::{LayerInfo, spatial_input};
use crate::pad::ZeroPadding2dConfig;
use crate::pool::{Pool2dConfig, PoolKind};
use crate::sequential::{Sequential, SequentialLayer, layer_error};
use crate::shape::FeatureShape;

/// One layer's settings; `type` picks the layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    Conv2d(Conv2dConfig),
    #[serde(alias = "zero_pad2d")]
    ZeroPadding2d(ZeroPadding2dConfig),
    #[serde(alias = "max_pooling2d")]
    MaxPool2d(Pool2dConfig),
    #[serde(alias = "average_pooling2d")]
    AvgPool2d(Pool2dConfig),
    Flatten,
    Dense(DenseConfig),
    Activation {
        activation: Activation,
    },
    Relu,
    Relu6,
    Sigmoid,
    Tanh,
    Softmax,
}

impl LayerConfig {
    /// The stem of default layer names (`conv2d` -> `conv2d_1`, `conv2d_2`...).
    fn base_name(&self) -> &'static str {
        match self {
            LayerConfig::Conv2d(_) => "conv2d",
            LayerConfig::ZeroPadding2d(_) => "zero_padding2d",
            LayerConfig::MaxPool2d(_) => "max_pool2d",
            LayerConfig::AvgPool2d(_) => "avg_pool2d",
            LayerConfig::Flatten => "flatten",
            LayerConfig::Dense(_) => "dense",
            LayerConfig::Activation { activation } => activation.name(),
            LayerConfig::Relu => "relu",
            LayerConfig::Relu6 => "relu6",
            LayerConfig::Sigmoid => "sigmoid",
            LayerConfig::Tanh => "tanh",
            LayerConfig::Softmax => "softmax",
        }
    }

    fn op(&self) -> String {
        match self {
            LayerConfig::Conv2d(c) => format!("Conv2D {} filters {}", c.filters, c.kernel),
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
        let activation = |a| Ok(SequentialLayer::Activation(ActivationLayer::new(a)));
        match self {
            LayerConfig::Conv2d(c) => {
                spatial_input::<2>(input)?;
                Ok(SequentialLayer::Conv2d(c.init(input.channels(), device)?))
            }
            LayerConfig::ZeroPadding2d(c) => Ok(SequentialLayer::ZeroPadding2d(c.init()?)),
            LayerConfig::MaxPool2d(c) => Ok(SequentialLayer::Pool2d(c.init(PoolKind::Max)?)),
            LayerConfig::AvgPool2d(c) => Ok(SequentialLayer::Pool2d(c.init(PoolKind::Avg)?)),
            LayerConfig::Flatten => Ok(SequentialLayer::Flatten(Flatten)),
            LayerConfig::Dense(c) => {
                if input.rank() != 1 {
                    return Err(LayerErrorKind::Rank {
                        expected: "a flat (features) vector",
                        hint: "; add a flatten layer before it",
                    });
                }
                Ok(SequentialLayer::Dense(
                    c.init(input.num_elements(), device)?,
                ))
            }
            LayerConfig::Activation { activation: a } => activation(*a),
            LayerConfig::Relu => activation(Activation::Relu),
            LayerConfig::Relu6 => activation(Activation::Relu6),
            LayerConfig::Sigmoid => activation(Activation::Sigmoid),
            LayerConfig::Tanh => activation(Activation::Tanh),
            LayerConfig::Softmax => activation(Activation::Softmax),
        }
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

/// 1-based line and column of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
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
        let err_at = |offset: Option<usize>, message: String| {
            let (line, column) = match offset {
                Some(o) => {
                    let (l, c) = line_col(src, o);
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
            let mut table = table.into_inner();
            let name = match table.remove("name") {
                None => None,
                Some(toml::Value::String(s)) => Some(s),
                Some(_) => {
                    return Err(err_at(
                        Some(start),
                        format!("layer {}: `name` must be a string", i + 1),
                    ));
                }
            };
            if !table.contains_key("type") {
                return Err(err_at(
                    Some(start),
                    format!("layer {}: missing `type` (e.g. type = \"conv2d\")", i + 1),
                ));
            }
            let config: LayerConfig =
                toml::Value::Table(table)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        err_at(
                            Some(start),
                            format!("layer {}: {}", i + 1, e.message().trim()),
                        )
                    })?;
            spec.layers.push(LayerSpec {
                name,
                config,
                line: Some(line_col(src, start).0),
            });
        }
        spec.validate_input().map_err(|m| err_at(None, m))?;
        Ok(spec)
    }

    fn validate_input(&self) -> Result<(), String> {
        if self.input.len() != 3 || self.input.contains(&0) {
            return Err(format!(
                "input must be [channels, height, width] with every size at least 1, got {:?}",
                self.input
            ));
        }
        if self.layers.is_empty() {
            return Err("the model has no layers: add [[layers]] tables".into());
        }
        Ok(())
    }

    /// Builds the network on `device`, checking every layer against its input shape.
    pub fn build(&self, device: &Device) -> Result<Sequential, SpecError> {
        let fail = |line: Option<usize>, message: String| SpecError {
            path: self.source.clone().unwrap_or_default(),
            line,
            column: None,
            message,
        };
        self.validate_input().map_err(|m| fail(None, m))?;
        let mut counters: HashMap<&str, usize> = HashMap::new();
        let mut seen = HashSet::new();
        let mut shape = FeatureShape::new(self.input.clone());
        let mut layers = Vec::with_capacity(self.layers.len());
        for spec in &self.layers {
            let base = spec.config.base_name();
            let count = counters.entry(base).or_default();
            *count += 1;
            let name = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("{base}_{count}"));
            if !seen.insert(name.clone()) {
                return Err(fail(spec.line, format!("two layers are named '{name}'")));
            }
            let to_error = |e: LayerError| fail(spec.line, e.to_string());
            let layer = spec.config.init(&shape, device).map_err(|kind| {
                to_error(LayerError {
                    layer: name.clone(),
                    op: spec.config.op(),
                    input: shape.clone(),
                    kind,
                })
            })?;
            shape = layer
                .output_shape(&shape)
                .map_err(|kind| to_error(layer_error(&name, &layer, &shape, kind)))?;
            layers.push((name, layer));
        }
        Sequential::new(&self.name, FeatureShape::new(self.input.clone()), layers)
            .map_err(|e| fail(None, e.to_string()))
    }
}
