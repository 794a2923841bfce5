//! Keras-style model summaries: one row per layer, then parameter and multiply-add totals.

use serde::Serialize;
use std::fmt;

use crate::error::{LayerError, LayerErrorKind};
use crate::layer::LayerInfo;
use crate::limits::{Bytes, SizeError, checked_add};
use crate::sequential::layer_error;
use crate::shape::FeatureShape;

/// One row of a summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub output_shape: FeatureShape,
    pub params: usize,
    pub trainable_params: usize,
    /// Multiply-accumulates for one example.
    pub macs: u64,
    /// 0 for the model's own layers; 1 and more for layers inside a block, whose parameters
    /// and cost are already in the block's row.
    pub depth: usize,
}

impl LayerRow {
    /// A row, or an error when its parameter total does not fit in 64 bits.
    pub fn new(
        name: &str,
        kind: &str,
        output_shape: FeatureShape,
        params: ParamCount,
        macs: u64,
        depth: usize,
    ) -> Result<Self, SizeError> {
        Ok(Self {
            name: name.to_string(),
            kind: kind.to_string(),
            output_shape,
            params: params.total()?,
            trainable_params: params.trainable,
            macs,
            depth,
        })
    }
}

/// What a network is made of, for one input shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub model: String,
    pub input_shape: FeatureShape,
    pub output_shape: FeatureShape,
    pub layers: Vec<LayerRow>,
    pub total_params: usize,
    pub trainable_params: usize,
    pub non_trainable_params: usize,
    /// Multiply-accumulates for one example of `input_shape`.
    pub total_macs: u64,
}

/// Anything that can describe itself layer by layer.
pub trait Summarize {
    fn summary(&self) -> Result<Summary, LayerError>;
}

impl Summary {
    /// The most memory one forward pass over `batch` examples holds, as `f32`: the input, every
    /// layer's output (those inside blocks too, which a block keeps while it runs) and the
    /// parameters. An upper bound, since the engine frees maps once they are used; checked with
    /// [`Bytes::check`] before running a network at a size the user picked.
    pub fn forward_bytes(&self, batch: usize) -> Bytes {
        let maps: Bytes = std::iter::once(&self.input_shape)
            .chain(self.layers.iter().map(|row| &row.output_shape))
            .map(|shape| Bytes::f32s(&shape.with_batch(batch)))
            .sum();
        maps + Bytes::f32s(&[self.total_params])
    }
}

/// Collects rows while a model walks its layers in order.
pub struct SummaryBuilder {
    summary: Summary,
}

/// A layer's parameters, split as Keras reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParamCount {
    pub trainable: usize,
    pub non_trainable: usize,
}

impl ParamCount {
    /// The same parameters, none of them learning (a frozen layer's).
    pub fn frozen(self) -> Result<Self, SizeError> {
        Ok(Self {
            trainable: 0,
            non_trainable: self.total()?,
        })
    }

    /// Trainable and non-trainable together.
    pub fn total(self) -> Result<usize, SizeError> {
        checked_add("parameters", self.trainable, self.non_trainable)
    }

    /// Both counts summed, checked.
    pub fn checked_add(self, o: ParamCount) -> Result<ParamCount, SizeError> {
        Ok(ParamCount {
            trainable: checked_add("trainable parameters", self.trainable, o.trainable)?,
            non_trainable: checked_add(
                "non-trainable parameters",
                self.non_trainable,
                o.non_trainable,
            )?,
        })
    }
}

impl From<usize> for ParamCount {
    fn from(trainable: usize) -> Self {
        Self {
            trainable,
            non_trainable: 0,
        }
    }
}

impl SummaryBuilder {
    pub fn new(model: &str, input: FeatureShape) -> Self {
        Self {
            summary: Summary {
                model: model.to_string(),
                output_shape: input.clone(),
                input_shape: input,
                layers: Vec::new(),
                total_params: 0,
                trainable_params: 0,
                non_trainable_params: 0,
                total_macs: 0,
            },
        }
    }

    /// Adds `layer` applied to `input` and returns its output shape.
    pub fn layer(
        &mut self,
        name: &str,
        layer: &dyn LayerInfo,
        params: impl Into<ParamCount>,
        input: &FeatureShape,
    ) -> Result<FeatureShape, LayerError> {
        let fail = |kind: LayerErrorKind| layer_error(name, layer, input, kind);
        let output = layer.output_shape(input).map_err(fail)?;
        let macs = layer.macs(input, &output).map_err(fail)?;
        let row = LayerRow::new(name, layer.kind(), output.clone(), params.into(), macs, 0)
            .map_err(|e| fail(e.into()))?;
        self.push(row).map_err(|e| fail(e.into()))?;
        Ok(output)
    }

    /// Adds a row; rows inside blocks (depth > 0) are shown but not added to the totals, which
    /// are checked.
    pub fn push(&mut self, row: LayerRow) -> Result<(), SizeError> {
        let s = &mut self.summary;
        if row.depth == 0 {
            s.trainable_params = checked_add(
                "trainable parameters",
                s.trainable_params,
                row.trainable_params,
            )?;
            s.non_trainable_params = checked_add(
                "non-trainable parameters",
                s.non_trainable_params,
                row.params - row.trainable_params,
            )?;
            s.total_params = checked_add("total parameters", s.total_params, row.params)?;
            s.total_macs =
                s.total_macs
                    .checked_add(row.macs)
                    .ok_or_else(|| SizeError::Overflow {
                        what: "total multiply-adds".into(),
                        dims: format!("{} + {}", s.total_macs, row.macs),
                    })?;
            s.output_shape = row.output_shape.clone();
        }
        s.layers.push(row);
        Ok(())
    }

    pub fn finish(self) -> Summary {
        self.summary
    }
}

/// `61706` -> `61,706`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `4.2 MB`-style size of `n` float32 values.
fn megabytes(params: usize) -> String {
    let bytes = params as f64 * 4.0;
    if bytes < 1024.0 * 1024.0 {
        format!("{:.2} KB", bytes / 1024.0)
    } else {
        format!("{:.2} MB", bytes / (1024.0 * 1024.0))
    }
}

fn scaled(n: u64) -> String {
    let v = n as f64;
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2} K", v / 1e3)
    } else {
        n.to_string()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_w = self
            .layers
            .iter()
            .map(|r| 2 * r.depth + r.name.len() + r.kind.len() + 3)
            .chain([28])
            .max()
            .unwrap_or(28);
        let shape_w = self
            .layers
            .iter()
            .map(|r| r.output_shape.to_string().len())
            .chain([20])
            .max()
            .unwrap_or(20);
        let width = name_w + shape_w + 15 + 17 + 6;
        writeln!(f, "Model: \"{}\"    input {}", self.model, self.input_shape)?;
        writeln!(f, "{}", "━".repeat(width))?;
        writeln!(
            f,
            " {:<name_w$}  {:<shape_w$}  {:>13}  {:>15}",
            "Layer (type)", "Output Shape", "Param #", "Mult-Adds"
        )?;
        writeln!(f, "{}", "━".repeat(width))?;
        for r in &self.layers {
            let label = format!("{}{} ({})", "  ".repeat(r.depth), r.name, r.kind);
            writeln!(
                f,
                " {:<name_w$}  {:<shape_w$}  {:>13}  {:>15}",
                label,
                r.output_shape.to_string(),
                thousands(r.params as u64),
                thousands(r.macs)
            )?;
        }
        writeln!(f, "{}", "━".repeat(width))?;
        writeln!(
            f,
            " Total params: {} ({})",
            thousands(self.total_params as u64),
            megabytes(self.total_params)
        )?;
        writeln!(
            f,
            " Trainable params: {} ({})",
            thousands(self.trainable_params as u64),
            megabytes(self.trainable_params)
        )?;
        writeln!(
            f,
            " Non-trainable params: {} ({})",
            thousands(self.non_trainable_params as u64),
            megabytes(self.non_trainable_params)
        )?;
        write!(
            f,
            " Mult-adds (per example): {} ({})",
            thousands(self.total_macs),
            scaled(self.total_macs)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(61706), "61,706");
        assert_eq!(thousands(19660900), "19,660,900");
        assert_eq!(thousands(138357544), "138,357,544");
    }

    #[test]
    fn forward_memory_counts_every_map_and_the_parameters() {
        let spec = crate::ModelSpec::parse(
            "input = [1, 8, 8]\n\
             [[layers]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 3\n\
             [[layers]]\ntype = \"flatten\"\n\
             [[layers]]\ntype = \"dense\"\nunits = 3\n",
            "m.toml",
        )
        .unwrap();
        let summary = spec.summary(&burn::tensor::Device::flex()).unwrap();
        // Maps per example: input 64, conv 2x6x6 = 72, flatten 72, dense 3; parameters:
        // conv 2x9 + 2 = 20, dense 72x3 + 3 = 219.
        let values = 2 * (64 + 72 + 72 + 3) + 20 + 219;
        assert_eq!(summary.forward_bytes(2).get(), 4 * values);
    }
}
