//! ONNX import at run time. [`OnnxModel::open`] checks the file whole ([`check`]), parses it
//! with `onnx-ir`, refuses in one message every operator convnet cannot run, and
//! [`OnnxModel::run`] executes the graph on Burn tensors ([`exec`]) through convnet's layers.

mod check;
mod exec;
mod layers;
mod resize;
mod rewrite;
mod summary;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::{DType, Device, TensorData};
use onnx_ir::{ArgType, Node, OnnxGraph, OnnxGraphBuilder};

pub use check::OPSETS;
pub use summary::{GraphSummary, NodeRow};

use crate::GraphError;
use exec::Prepared;
use value::Value;

/// The largest ONNX file convnet opens (protobuf itself stops at 2 GiB; larger models keep
/// their weights in external data files).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// A graph input or output: its name, element type and shape (`None` for a dynamic axis).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<Option<usize>>,
}

impl TensorInfo {
    fn of(arg: &onnx_ir::Argument) -> Self {
        let (dtype, shape) = match &arg.ty {
            // A dimension of -1 in the file reaches here as a huge unsigned value: dynamic.
            ArgType::Tensor(t) => (
                t.dtype,
                t.static_shape
                    .clone()
                    .map(|s| s.into_iter().map(|d| d.filter(|&d| d < 1 << 40)).collect())
                    .unwrap_or_else(|| vec![None; t.rank]),
            ),
            ArgType::ScalarTensor(d) | ArgType::ScalarNative(d) => (*d, Vec::new()),
            ArgType::Shape(r) => (DType::I64, vec![Some(*r)]),
        };
        TensorInfo {
            name: arg.name.clone(),
            dtype,
            shape,
        }
    }

    /// `[1, 3, ?, ?]`-style text.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

/// An ONNX model ready to run.
pub struct OnnxModel {
    path: PathBuf,
    graph: OnnxGraph,
    header: check::Header,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    /// Per node, what the parser was not told ([`rewrite`]).
    fixes: Vec<Option<rewrite::Fix>>,
    /// Weights and layers on the device of the last run.
    prepared: Mutex<Option<Prepared>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Reads, checks and parses `path`; external-data files are looked up beside it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GraphError> {
        let path = path.as_ref();
        let file = |message: String| GraphError::File {
            path: path.display().to_string(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| file(e.to_string()))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(file(format!(
                "{size} bytes: larger than protobuf's 2 GiB limit for one file"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| file(e.to_string()))?;
        Self::load(bytes, path, true)
    }

    /// A model held in memory (made by a translator from another format, say); `origin`
    /// names it in messages, and its folder is where external data would be looked up.
    pub fn from_bytes(bytes: Vec<u8>, origin: &Path) -> Result<Self, GraphError> {
        Self::load(bytes, origin, false)
    }

    /// `bytes` are the file at `path` when `on_disk`.
    fn load(bytes: Vec<u8>, path: &Path, on_disk: bool) -> Result<Self, GraphError> {
        let file = |message: String| GraphError::File {
            path: path.display().to_string(),
            message,
        };
        let (header, model) = check::check(&bytes, path)?;
        let rewritten = rewrite::rewrite(model, header.opset).map_err(file)?;
        // A file on disk is parsed from disk: its bytes need not stay in memory meanwhile.
        let kept = (!on_disk).then_some(bytes);
        // Every operator convnet lacks, named as the file names its nodes, before parsing:
        // the parser renames nodes and may fail on an operator it does not know.
        let unsupported: Vec<String> = header
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, (_, op, domain))| {
                !(matches!(domain.as_str(), "" | "ai.onnx") && SUPPORTED_OPS.contains(&op.as_str()))
            })
            .map(|(i, (name, op, domain))| {
                let op = if domain.is_empty() {
                    op.clone()
                } else {
                    format!("{domain}::{op}")
                };
                let name = if name.is_empty() {
                    format!("#{i}")
                } else {
                    format!("{name:?}")
                };
                format!("{op} (node {name}, opset {})", header.opset)
            })
            .chain(header.refused.iter().cloned())
            .collect();
        if !unsupported.is_empty() {
            return Err(GraphError::Unsupported {
                count: unsupported.len(),
                list: unsupported.join("; "),
            });
        }
        // The parser is third-party code fed a user's file: a panic inside it is reported as
        // this file's error rather than taking the program down.
        let source = match (&rewritten.0, &kept) {
            (Some(bytes), _) | (None, Some(bytes)) => Source::Bytes(bytes),
            (None, None) => Source::File(path),
        };
        let mut graph = parse(&source, path, true)?;
        // Simplification fuses patterns (attention) into operators convnet does not run; the
        // file's own operators all run, so such a graph is taken as written instead.
        if graph.nodes.iter().any(|n| refusal(n).is_some()) {
            graph = parse(&source, path, false)?;
        }
        let fixes = rewritten.1.apply(&mut graph.nodes).map_err(file)?;
        // Second line of defence: settings the parser accepts that convnet does not run.
        let unsupported: Vec<String> = graph
            .nodes
            .iter()
            .filter_map(|n| refusal(n).map(|why| format!("{why} (node {:?})", n.name())))
            .collect();
        if !unsupported.is_empty() {
            return Err(GraphError::Unsupported {
                count: unsupported.len(),
                list: unsupported.join("; "),
            });
        }
        // The file's own names for the graph's inputs and outputs (the parser renames them).
        let named = |args: &[onnx_ir::Argument], names: &[String]| -> Vec<TensorInfo> {
            args.iter()
                .enumerate()
                .map(|(i, a)| TensorInfo {
                    name: names.get(i).cloned().unwrap_or_else(|| a.name.clone()),
                    ..TensorInfo::of(a)
                })
                .collect()
        };
        let inputs = named(&graph.inputs, &header.inputs);
        let outputs = named(&graph.outputs, &header.outputs);
        Ok(OnnxModel {
            path: path.to_path_buf(),
            graph,
            header,
            inputs,
            outputs,
            fixes,
            prepared: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The graph inputs, in the graph's order (initializers left out).
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The graph outputs, in the graph's order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// The model's `metadata_props`, in file order.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.header.metadata
    }

    /// The default domain's opset.
    pub fn opset(&self) -> i64 {
        self.header.opset
    }

    /// `producer_name producer_version`, as the file states them.
    pub fn producer(&self) -> &str {
        &self.header.producer
    }

    /// Node by node: name, operator, output shapes and parameters. Where every input size is
    /// known (a dynamic batch counts as 1), the shapes are those of a run on zeros, on `device`;
    /// otherwise the parser's inference, `?` where it has none.
    pub fn summary(&self, device: &Device) -> GraphSummary {
        summary::summarize(self, self.traced_shapes(device))
    }

    /// Each node's output shapes from a run on zeros, when the input sizes allow one.
    fn traced_shapes(&self, device: &Device) -> Option<Vec<Vec<Vec<usize>>>> {
        let zeros = self
            .inputs
            .iter()
            .map(|info| {
                let dims: Vec<usize> = info
                    .shape
                    .iter()
                    .enumerate()
                    .map(|(i, d)| d.or((i == 0).then_some(1)))
                    .collect::<Option<_>>()?;
                // A fixed input too large for memory is summarised from the parser's shapes.
                let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
                convnet_layers::Bytes::of(&dims, 8)
                    .check("a summary run")
                    .ok()?;
                Some(if info.dtype.is_float() {
                    TensorData::new(vec![0f32; n], dims)
                } else {
                    TensorData::new(vec![0i64; n], dims)
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let values = self.check_inputs(&zeros, device).ok()?;
        let mut shapes = vec![Vec::new(); self.graph.nodes.len()];
        self.with_plan(device, |plan| {
            plan.run_observed(&self.graph, values, &mut |i, outs| {
                shapes[i] = outs.iter().map(Value::dims).collect();
            })
        })
        .ok()?;
        Some(shapes)
    }

    pub(crate) fn graph(&self) -> &OnnxGraph {
        &self.graph
    }

    /// Runs the graph: one array per graph input, in order; one array per output, in order.
    pub fn run(
        &self,
        inputs: &[TensorData],
        device: &Device,
    ) -> Result<Vec<TensorData>, GraphError> {
        let values = self.check_inputs(inputs, device)?;
        let outputs = self.with_plan(device, |plan| plan.run(&self.graph, values))?;
        Ok(outputs.into_iter().map(Value::into_data).collect())
    }

    /// `work` with the weights and layers on `device`, prepared once and kept for later runs.
    fn with_plan<T>(
        &self,
        device: &Device,
        work: impl FnOnce(&Prepared) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        let mut prepared = self
            .prepared
            .lock()
            .map_err(|_| GraphError::invalid("an earlier run of this model failed midway"))?;
        if prepared.as_ref().is_none_or(|p| &p.device != device) {
            *prepared = Some(Prepared::new(&self.graph, &self.fixes, device)?);
        }
        match prepared.as_ref() {
            Some(plan) => work(plan),
            None => unreachable!("prepared above"),
        }
    }

    /// The parameters of every node (weights, biases, statistics), as the summary counts them.
    pub fn total_params(&self) -> u64 {
        self.graph.nodes.iter().map(summary::node_params).sum()
    }

    fn check_inputs(
        &self,
        inputs: &[TensorData],
        device: &Device,
    ) -> Result<Vec<Value>, GraphError> {
        if inputs.len() != self.inputs.len() {
            let names: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(GraphError::invalid(format!(
                "the model takes {} input{} ({}), {} given",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                inputs.len()
            )));
        }
        self.inputs
            .iter()
            .zip(inputs)
            .map(|(info, data)| {
                let err = |message: String| GraphError::Input {
                    name: info.name.clone(),
                    message,
                };
                if data.shape().len() != info.shape.len() {
                    return Err(err(format!(
                        "expects rank {} {}, got {:?}",
                        info.shape.len(),
                        info.shape_text(),
                        data.shape()
                    )));
                }
                if let Some((i, want)) = info
                    .shape
                    .iter()
                    .zip(data.shape().iter())
                    .enumerate()
                    .find_map(|(i, (w, &g))| w.filter(|&w| w != g).map(|w| (i, w)))
                {
                    return Err(err(format!(
                        "expects {} (axis {i} of size {want}), got {:?}",
                        info.shape_text(),
                        data.shape()
                    )));
                }
                // Empty integer inputs are lists (no axes, no pads); an empty picture is
                // refused, unless the model itself declares the empty axis.
                let undeclared_empty = data
                    .shape()
                    .iter()
                    .zip(&info.shape)
                    .any(|(&d, w)| d == 0 && w.is_none());
                if undeclared_empty && data.dtype().is_float() {
                    return Err(err(format!("is empty: {:?}", data.shape())));
                }
                if data.dtype().is_float() != info.dtype.is_float() {
                    return Err(err(format!(
                        "expects {:?} values, got {:?}",
                        info.dtype,
                        data.dtype()
                    )));
                }
                Value::from_data(data.clone(), device)
            })
            .collect()
    }
}

/// The ONNX operators (default domain) convnet runs.
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Abs",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Neg",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Softmax",
    "Elu",
    "Concat",
    "Split",
    "Slice",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Pad",
    "Resize",
    "Upsample",
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Size",
    "Gather",
    "Cast",
    "Expand",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Dropout",
    "Identity",
];

/// What the parser reads: the file itself, or the file's model rewritten in memory.
enum Source<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

/// `onnx-ir` over the model, with or without its simplification passes.
fn parse(source: &Source, path: &Path, simplify: bool) -> Result<OnnxGraph, GraphError> {
    let file = |message: String| GraphError::File {
        path: path.display().to_string(),
        message,
    };
    // The parser is third-party code fed a user's file: a panic inside it is reported as this
    // file's error rather than taking the program down.
    std::panic::catch_unwind(|| {
        let builder = OnnxGraphBuilder::new().simplify(simplify);
        match source {
            Source::File(p) => builder.parse_file(p),
            Source::Bytes(b) => builder.parse_bytes(b),
        }
    })
    .map_err(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        file(format!("the ONNX parser failed: {}", one_line(&why)))
    })?
    .map_err(|e| file(one_line(&e.to_string())))
}

/// The first line of a multi-line message, for a one-line error.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// Why convnet cannot run `node`, or `None` when it can.
fn refusal(node: &Node) -> Option<String> {
    let op = node.node_type().to_string();
    let supported = matches!(
        node,
        Node::Conv1d(_)
            | Node::Conv2d(_)
            | Node::Conv3d(_)
            | Node::ConvTranspose1d(_)
            | Node::ConvTranspose2d(_)
            | Node::ConvTranspose3d(_)
            | Node::MaxPool1d(_)
            | Node::MaxPool2d(_)
            | Node::MaxPool3d(_)
            | Node::AveragePool1d(_)
            | Node::AveragePool2d(_)
            | Node::AveragePool3d(_)
            | Node::GlobalAveragePool(_)
            | Node::GlobalMaxPool(_)
            | Node::BatchNormalization(_)
            | Node::InstanceNormalization(_)
            | Node::Lrn(_)
            | Node::Linear(_)
            | Node::Gemm(_)
            | Node::MatMul(_)
            | Node::Add(_)
            | Node::Sub(_)
            | Node::Mul(_)
            | Node::Div(_)
            | Node::Pow(_)
            | Node::Sqrt(_)
            | Node::Exp(_)
            | Node::Log(_)
            | Node::Abs(_)
            | Node::Reciprocal(_)
            | Node::Floor(_)
            | Node::Ceil(_)
            | Node::Neg(_)
            | Node::Relu(_)
            | Node::LeakyRelu(_)
            | Node::PRelu(_)
            | Node::Clip(_)
            | Node::Sigmoid(_)
            | Node::HardSigmoid(_)
            | Node::HardSwish(_)
            | Node::Tanh(_)
            | Node::Softmax(_)
            | Node::Elu(_)
            | Node::Concat(_)
            | Node::Split(_)
            | Node::Slice(_)
            | Node::Reshape(_)
            | Node::Flatten(_)
            | Node::Transpose(_)
            | Node::Squeeze(_)
            | Node::Unsqueeze(_)
            | Node::Pad(_)
            | Node::Resize(_)
            | Node::Upsample(_)
            | Node::Constant(_)
            | Node::ConstantOfShape(_)
            | Node::Shape(_)
            | Node::Size(_)
            | Node::Gather(_)
            | Node::Cast(_)
            | Node::Expand(_)
            | Node::ReduceMean(_)
            | Node::ReduceSum(_)
            | Node::ReduceMax(_)
            | Node::ReduceMin(_)
            | Node::Dropout(_)
            | Node::Identity(_)
    );
    if !supported {
        return Some(match node {
            Node::Custom(c) => format!("{}::{}", c.domain, c.op_type),
            _ => op,
        });
    }
    match node {
        // A mask or a training-mode output would be silently wrong at inference.
        // The parser drops `ratio` from the inputs; a boolean input left after the data is
        // `training_mode`.
        Node::Dropout(n) => {
            let flag = n
                .inputs
                .iter()
                .skip(1)
                .find(|a| !a.is_optional() && matches!(a.ty.elem_type(), DType::Bool(_)))?;
            let training = flag
                .value()
                .and_then(|v| v.try_to_vec::<bool>().ok())
                .is_none_or(|v| v.contains(&true));
            training.then(|| format!("{op} (training_mode)"))
        }
        Node::MaxPool1d(_) | Node::MaxPool3d(_) if node.outputs().len() > 1 => {
            Some(format!("{op} (the indices output)"))
        }
        _ => None,
    }
}
