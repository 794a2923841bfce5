//! A convnet model written out as ONNX, from its own layer description.
//!
//! [`export`] walks the built [`Sequential`] layer by layer in inference form (`Mode::Eval`:
//! dropout is the identity, batch norm uses its running statistics, auxiliary heads are left
//! out) and writes each layer as the usual ONNX operators ([`walk`] dispatches, one module per
//! family). Weights are initializers named and laid out as convnet's state dicts name them
//! (`convnet_weights::to_state_dict`: torchvision's keys, PyTorch's layouts), so a tensor of
//! the `.onnx` file and of an exported `.safetensors` file is the same tensor. The file says in
//! its `metadata_props` ([`metadata`]) what a user needs to run it: the input's name, layout
//! and shape, the class names and the preprocessing recipe.
//!
//! Opsets 13 to 21 are written (default 17): 13 is where `Softmax` takes one axis, `Clip` its
//! bounds and `Pad` its pads as inputs, which the graphs here rely on.

mod activation;
mod blocks;
mod conv;
pub mod metadata;
mod norm;
mod pool;
mod walk;

use std::ops::RangeInclusive;

use convnet_layers::{FeatureShape, Sequential};
use onnx_ir::Message;
/// The ONNX model message, to read an exported file back ([`parse`]).
pub use onnx_ir::ModelProto;

use crate::GraphError;
use crate::proto::{self, About, Dim, FLOAT, GraphBuilder};
pub use metadata::Metadata;
use walk::{Emitter, Value};

/// The opset written unless asked otherwise.
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets [`export`] writes.
pub const OPSETS: RangeInclusive<i64> = 13..=21;
/// The graph's input and output names.
pub const INPUT_NAME: &str = "input";
pub const OUTPUT_NAME: &str = "output";
/// The name of the symbolic batch axis under [`ExportOptions::dynamic_batch`].
pub const BATCH_AXIS: &str = "N";

/// How a model is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// The ONNX opset, within [`OPSETS`].
    pub opset: i64,
    /// A symbolic batch axis (`N`) instead of a batch of 1.
    pub dynamic_batch: bool,
    /// The input's spatial size (`[H, W]`, `[L]`, `[D, H, W]`) for a model that takes any size
    /// (fully convolutional networks, global pooling); `None` keeps the model's own.
    pub size: Option<Vec<usize>>,
    /// Scale each output row to unit length (L2): embedding networks, whose normalisation is
    /// applied outside their layers.
    pub normalize_output: bool,
    pub metadata: Metadata,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            opset: DEFAULT_OPSET,
            dynamic_batch: false,
            size: None,
            normalize_output: false,
            metadata: Metadata::default(),
        }
    }
}

/// An exported model: the ONNX message and what it takes and gives.
#[derive(Debug, Clone)]
pub struct Exported {
    pub model: ModelProto,
    /// The input's shape, batch first; `None` for the symbolic batch.
    pub input: Vec<Option<usize>>,
    pub output: Vec<Option<usize>>,
    /// Number of nodes and of weight values (initializers that are the model's parameters).
    pub nodes: usize,
    pub parameters: usize,
}

impl Exported {
    /// The serialised `.onnx` file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GraphError> {
        self.model
            .write_to_bytes()
            .map_err(|e| GraphError::Export(format!("cannot serialise the model: {e}")))
    }
}

/// An `.onnx` file's bytes as a [`ModelProto`] (to read an exported file back).
pub fn parse(bytes: &[u8]) -> Result<ModelProto, GraphError> {
    ModelProto::parse_from_bytes(bytes)
        .map_err(|e| GraphError::invalid(format!("not an ONNX model: {e}")))
}

/// The layout of a batch of examples of `rank` axes (channels first).
pub fn layout(rank: usize) -> &'static str {
    match rank {
        1 => "NC",
        2 => "NCL",
        3 => "NCHW",
        _ => "NCDHW",
    }
}

/// Whether `opset` is one [`export`] writes; the error says which are.
pub fn check_opset(opset: i64) -> Result<(), GraphError> {
    if OPSETS.contains(&opset) {
        return Ok(());
    }
    Err(GraphError::Export(format!(
        "opset {opset} is not supported: convnet writes opsets {} to {} (default {DEFAULT_OPSET})",
        OPSETS.start(),
        OPSETS.end()
    )))
}

/// Writes `model` as an ONNX graph.
pub fn export(model: &Sequential, options: &ExportOptions) -> Result<Exported, GraphError> {
    check_opset(options.opset)?;
    let input = input_shape(model, options.size.as_deref())?;
    let dict = convnet_weights::to_state_dict(model)
        .map_err(|e| GraphError::Export(format!("cannot read the weights: {e}")))?;

    let mut builder = GraphBuilder::new(model.name());
    // The input's name is taken before any node can claim it.
    builder.unique(INPUT_NAME);
    builder.unique(OUTPUT_NAME);
    let mut emitter = Emitter::new(builder, &dict);
    let x = Value {
        name: INPUT_NAME.to_string(),
        shape: input.clone(),
    };
    let mut y = emitter.stack(&model.stack, "", x)?;
    if options.normalize_output {
        if y.shape.rank() != 1 {
            return Err(GraphError::Export(format!(
                "only a flat output can be L2-normalised; this model gives {}",
                y.shape
            )));
        }
        y.name = emitter.b.node(
            "LpNormalization",
            "l2_normalize",
            &[&y.name],
            vec![("axis", proto::Attr::Int(1)), ("p", proto::Attr::Int(2))],
        );
    }
    let parameters = dict.num_values();
    let mut b = emitter.b;
    if y.name == INPUT_NAME {
        b.graph.node.push(onnx_ir::NodeProto {
            name: OUTPUT_NAME.into(),
            op_type: "Identity".into(),
            input: vec![INPUT_NAME.into()],
            output: vec![OUTPUT_NAME.into()],
            ..Default::default()
        });
    } else {
        b.rename_value(&y.name, OUTPUT_NAME);
    }

    let batch = if options.dynamic_batch {
        Dim::Named(BATCH_AXIS)
    } else {
        Dim::Fixed(1)
    };
    let dims = |shape: &FeatureShape| -> Vec<Dim> {
        std::iter::once(batch.clone())
            .chain(shape.dims().iter().map(|&d| Dim::Fixed(d)))
            .collect()
    };
    b.input(INPUT_NAME, FLOAT, &dims(&input))?;
    b.output(OUTPUT_NAME, FLOAT, &dims(&y.shape))?;
    b.graph.doc_string = format!("convnet model '{}', inference form", model.name());
    let nodes = b.graph.node.len();

    let batch_dim = (!options.dynamic_batch).then_some(1);
    let shape_of = |s: &FeatureShape| -> Vec<Option<usize>> {
        std::iter::once(batch_dim)
            .chain(s.dims().iter().map(|&d| Some(d)))
            .collect()
    };
    let exported_input = shape_of(&input);
    let exported_output = shape_of(&y.shape);

    let metadata = options.metadata.props(
        model.name(),
        &exported_input,
        &exported_output,
        layout(input.rank()),
    )?;
    let onnx = proto::model(
        b.graph,
        About {
            opset: options.opset,
            producer: "convnet",
            producer_version: env!("CARGO_PKG_VERSION"),
            doc: format!("{} exported by convnet", model.name()),
            metadata,
        },
    );
    Ok(Exported {
        model: onnx,
        input: exported_input,
        output: exported_output,
        nodes,
        parameters,
    })
}

/// The shape of one example: the model's own, or with `size` as its spatial axes (checked
/// against the layers as the walk goes).
fn input_shape(model: &Sequential, size: Option<&[usize]>) -> Result<FeatureShape, GraphError> {
    let own = model.input_shape();
    let Some(size) = size else {
        return Ok(own.clone());
    };
    let spatial = own.spatial().len();
    if size.len() != spatial {
        return Err(GraphError::Export(format!(
            "--size gives {} numbers but '{}' takes {} spatial axes ({})",
            size.len(),
            model.name(),
            spatial,
            own
        )));
    }
    if size.contains(&0) {
        return Err(GraphError::Export(format!(
            "every size must be at least 1, got {size:?}"
        )));
    }
    let mut dims = vec![own.channels()];
    dims.extend_from_slice(size);
    let shape = FeatureShape::new(dims);
    shape
        .num_elements()
        .map_err(|e| GraphError::Export(e.to_string()))?;
    Ok(shape)
}
