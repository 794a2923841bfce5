//! Running a parsed graph: each node in file order (ONNX requires topological order), values
//! kept by edge name and dropped after their last reader. Weights and the layers built from
//! them are prepared once per device ([`Prepared`]).

use std::collections::HashMap;

use burn::tensor::activation;
use burn::tensor::{Device, Int, Tensor, TensorData};
use convnet_layers::{LocalResponseNorm, PoolKind};
use onnx_ir::node::padding::AutoPad;
use onnx_ir::{Argument, Node, OnnxGraph};

use super::layers::{ConvLayer, PoolLayer, Window, lrn, padding1, padding2, padding3};
use super::resize;
use super::rewrite::{Fix, ResizeFix};
use super::value::{Float, Ints, Value, broadcast, map_float, zip_float};
use crate::GraphError;

/// What a node needs built before it runs.
// Built once per node and device, never moved per run: size differences cost nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Built {
    None,
    Conv(ConvLayer),
    /// A transposed convolution and what to cut from each spatial axis, `(begin, end)`.
    Cropped(ConvLayer, Vec<(usize, usize)>),
    Pool(PoolLayer),
    /// An average pool with dilation, which convnet's pool kernels lack: a depthwise
    /// convolution of ones divided by each window's count. `(window, ceil_mode, count_include_pad)`.
    DilatedAvg(Window, bool, bool),
    Lrn(LocalResponseNorm),
    /// Batch norm folded into `x * scale + shift` per channel.
    Affine(Tensor<1>, Tensor<1>),
    /// A 2D max pool with its indices output: `(window, ceil_mode, column-major indices)`.
    ArgMax(Window, bool, bool),
}

/// A graph's weights and layers on one device.
pub struct Prepared {
    pub device: Device,
    /// Constant inputs by node, then input position.
    constants: Vec<Vec<Option<Value>>>,
    built: Vec<Built>,
    /// Per node, what the parser was not told.
    fixes: Vec<Option<Fix>>,
    /// For each edge name, the index of the last node that reads it.
    last_use: HashMap<String, usize>,
}

fn node_error(node: &Node, message: impl Into<String>) -> GraphError {
    GraphError::Node {
        node: node.name().to_string(),
        op: node.node_type().to_string(),
        message: message.into(),
    }
}

/// `onnx-ir` keeps weights and folded constants on the arguments themselves.
fn constant(arg: &Argument, device: &Device) -> Result<Option<Value>, GraphError> {
    if arg.is_optional() {
        return Ok(None);
    }
    match arg.value() {
        Some(data) => Value::from_data(data, device).map(Some),
        None => Ok(None),
    }
}

impl Prepared {
    pub fn new(
        graph: &OnnxGraph,
        fixes: &[Option<Fix>],
        device: &Device,
    ) -> Result<Self, GraphError> {
        let mut constants = Vec::with_capacity(graph.nodes.len());
        let mut built = Vec::with_capacity(graph.nodes.len());
        let mut last_use = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let consts = node
                .inputs()
                .iter()
                .map(|a| constant(a, device))
                .collect::<Result<Vec<_>, _>>()?;
            for arg in node.inputs() {
                if !arg.name.is_empty() {
                    last_use.insert(arg.name.clone(), i);
                }
            }
            built.push(match build(node, &consts, None) {
                Ok(b) => b,
                Err(Defer::Later) => Built::None,
                Err(Defer::Fail(GraphError::Invalid(m))) => return Err(node_error(node, m)),
                Err(Defer::Fail(e)) => return Err(e),
            });
            constants.push(consts);
        }
        // Graph outputs live to the end.
        for out in &graph.outputs {
            last_use.insert(out.name.clone(), usize::MAX);
        }
        Ok(Prepared {
            device: device.clone(),
            constants,
            built,
            fixes: fixes.to_vec(),
            last_use,
        })
    }

    pub fn run(&self, graph: &OnnxGraph, inputs: Vec<Value>) -> Result<Vec<Value>, GraphError> {
        self.run_observed(graph, inputs, &mut |_, _| {})
    }

    /// [`Prepared::run`], showing each node's outputs to `observe` as they are made.
    pub fn run_observed(
        &self,
        graph: &OnnxGraph,
        inputs: Vec<Value>,
        observe: &mut dyn FnMut(usize, &[Value]),
    ) -> Result<Vec<Value>, GraphError> {
        let mut env: HashMap<String, Value> = HashMap::new();
        for (arg, v) in graph.inputs.iter().zip(inputs) {
            env.insert(arg.name.clone(), v);
        }
        for (i, node) in graph.nodes.iter().enumerate() {
            let mut args = Vec::with_capacity(node.inputs().len());
            for (j, arg) in node.inputs().iter().enumerate() {
                let v = if let Some(c) = &self.constants[i][j] {
                    Some(c.clone())
                } else if arg.is_optional() || arg.name.is_empty() {
                    None
                } else {
                    let last = self.last_use.get(&arg.name).copied().unwrap_or(i);
                    let v = if last == i {
                        env.remove(&arg.name)
                    } else {
                        env.get(&arg.name).cloned()
                    };
                    // An edge read twice by one node was removed at its first read.
                    Some(match v {
                        Some(v) => v,
                        None => args
                            .iter()
                            .zip(node.inputs())
                            .find(|(_, a): &(&Option<Value>, &Argument)| a.name == arg.name)
                            .and_then(|(v, _)| v.clone())
                            .ok_or_else(|| {
                                node_error(node, format!("input {:?} has no value", arg.name))
                            })?,
                    })
                };
                args.push(v);
            }
            // Integer tensors through float kernels (max pools, clips, pads of uint8 pictures,
            // integer powers) come back to their own type.
            let int_dtype = match (args.first(), node) {
                (
                    Some(Some(Value::Int(x))),
                    Node::MaxPool1d(_)
                    | Node::MaxPool2d(_)
                    | Node::MaxPool3d(_)
                    | Node::Clip(_)
                    | Node::Pad(_)
                    | Node::Relu(_)
                    | Node::Abs(_)
                    | Node::Pow(_),
                ) => Some(x.dtype),
                _ => None,
            };
            // Burn checks shapes by panicking; a graph that gets past convnet's own checks into
            // one is reported as this node's error, not a crash.
            let outputs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let fix = self.fixes.get(i).and_then(Option::as_ref);
                eval(node, &self.built[i], fix, args, &self.device)
            }))
            .unwrap_or_else(|p| Err(panic_text(p.as_ref())))
            .map_err(|m| node_error(node, m))?;
            let outputs = match int_dtype {
                None => outputs,
                Some(dtype) => outputs
                    .into_iter()
                    .map(|v| back_to_ints(v, dtype))
                    .collect::<Result<Vec<_>, GraphError>>()?,
            };
            observe(i, &outputs);
            for (arg, v) in node.outputs().iter().zip(outputs) {
                if !arg.name.is_empty() {
                    env.insert(arg.name.clone(), v);
                }
            }
        }
        graph
            .outputs
            .iter()
            .map(|o| {
                env.get(&o.name).cloned().ok_or_else(|| {
                    GraphError::invalid(format!("output {:?} was not computed", o.name))
                })
            })
            .collect()
    }
}

/// A float result of integer inputs as integers of `dtype` again.
fn back_to_ints(v: Value, dtype: burn::tensor::DType) -> Result<Value, GraphError> {
    Ok(match v {
        Value::Float(f) => {
            let dims = f.dims();
            let data = f
                .into_data()
                .try_to_vec::<f32>()
                .map_err(super::value::data_error)?;
            Value::Int(Ints {
                dims,
                data: data.into_iter().map(|x| x.round() as i64).collect(),
                dtype,
            })
        }
        other => other,
    })
}

/// The first meaningful line of a panic's message.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let text = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("==="))
        .unwrap_or("");
    format!("the operation failed: {line}")
}

fn float_const(consts: &[Option<Value>], i: usize) -> Result<Option<Float>, GraphError> {
    consts
        .get(i)
        .cloned()
        .flatten()
        .map(|v| match v {
            Value::Float(f) => Ok(f),
            Value::Int(_) => Err(GraphError::invalid(format!(
                "input {i} must be a float tensor"
            ))),
        })
        .transpose()
}

/// Why a node's layer is not built ahead: its weights or padding depend on the run.
enum Defer {
    /// Built at run time from the node's inputs.
    Later,
    Fail(GraphError),
}

impl From<GraphError> for Defer {
    fn from(e: GraphError) -> Self {
        Defer::Fail(e)
    }
}

/// The weight (input 1) and bias (input 2) when both are known, else [`Defer::Later`].
fn weights(consts: &[Option<Value>], node: &Node) -> Result<(Float, Option<Tensor<1>>), Defer> {
    let w = float_const(consts, 1)?.ok_or(Defer::Later)?;
    let wants_bias = node.inputs().len() > 2 && !node.inputs()[2].is_optional();
    let b = match float_const(consts, 2)? {
        Some(Float::R1(b)) => Some(b),
        Some(other) => {
            return Err(GraphError::invalid(format!("bias of shape {:?}", other.dims())).into());
        }
        None if wants_bias => return Err(Defer::Later),
        None => None,
    };
    Ok((w, b))
}

/// `SAME_UPPER` / `SAME_LOWER` the parser could not resolve (input sizes unknown when it ran)
/// become explicit pads once the input's spatial sizes are known.
fn resolve(mut win: Window, auto: &AutoPad, spatial: Option<&[usize]>) -> Result<Window, Defer> {
    if !matches!(auto, AutoPad::SameUpper | AutoPad::SameLower)
        || !matches!(win.padding, convnet_layers::Padding::Same)
    {
        return Ok(win);
    }
    let spatial = spatial.ok_or(Defer::Later)?;
    let pads = (0..win.kernel.len())
        .map(|i| {
            let (n, k, s, d) = (
                spatial.get(i).copied().unwrap_or(1),
                win.kernel[i],
                win.stride[i].max(1),
                win.dilation[i],
            );
            let out = n.div_ceil(s);
            let span = (k.saturating_sub(1)) * d + 1;
            let total = ((out.saturating_sub(1)) * s + span).saturating_sub(n);
            let (small, big) = (total / 2, total - total / 2);
            if matches!(auto, AutoPad::SameLower) {
                (big, small)
            } else {
                (small, big)
            }
        })
        .collect();
    win.padding = convnet_layers::Padding::Explicit(pads);
    Ok(win)
}

fn build(node: &Node, consts: &[Option<Value>], spatial: Option<&[usize]>) -> Result<Built, Defer> {
    let one = |k: usize| vec![k];
    let window = |kernel, stride, dilation, padding, auto: &AutoPad| {
        resolve(
            Window {
                kernel,
                stride,
                dilation,
                padding,
            },
            auto,
            spatial,
        )
    };
    let conv = |win: Window, groups: usize| -> Result<Built, Defer> {
        let (w, b) = weights(consts, node)?;
        Ok(Built::Conv(ConvLayer::conv(w, b, win, groups)?))
    };
    // Given an output size (`output_shape`, or `auto_pad` SAME: the input times the stride),
    // ONNX derives the pads, split unevenly when odd; the layer pads evenly by the smaller
    // side and the rest is cropped from the output.
    let transpose = |mut win: Window,
                     output_padding: Vec<usize>,
                     groups: usize,
                     output_shape: Option<Vec<usize>>,
                     auto: &AutoPad|
     -> Result<Built, Defer> {
        let (w, b) = weights(consts, node)?;
        let same = matches!(auto, AutoPad::SameUpper | AutoPad::SameLower);
        if output_shape.is_none() && !same {
            return Ok(Built::Conv(ConvLayer::transpose(
                w,
                b,
                win,
                output_padding,
                groups,
            )?));
        }
        let spatial = spatial.ok_or(Defer::Later)?;
        let (mut pads, mut crop, mut extra) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..win.kernel.len() {
            let n = spatial.get(i).copied().unwrap_or(1);
            let full = n.saturating_sub(1) * win.stride[i]
                + win.kernel[i].saturating_sub(1) * win.dilation[i]
                + 1
                + output_padding.get(i).copied().unwrap_or(0);
            let target = match &output_shape {
                Some(o) => *o
                    .get(i)
                    .ok_or(GraphError::invalid("output_shape is short"))?,
                None => n * win.stride[i],
            };
            // A larger target is ONNX's negative end pad: more output, as output_padding gives.
            if target > full {
                extra.push((i, target - full));
                pads.push(0);
                crop.push((0, 0));
                continue;
            }
            let total = full - target;
            let (begin, end) = if matches!(auto, AutoPad::SameUpper) {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
            };
            let p = begin.min(end);
            pads.push(p);
            crop.push((begin - p, end - p));
        }
        let mut output_padding = output_padding;
        output_padding.resize(win.kernel.len(), 0);
        for (i, more) in extra {
            output_padding[i] += more;
        }
        win.padding = convnet_layers::Padding::symmetric(&pads);
        let layer = ConvLayer::transpose(w, b, win, output_padding, groups)?;
        Ok(if crop.iter().all(|&c| c == (0, 0)) {
            Built::Conv(layer)
        } else {
            Built::Cropped(layer, crop)
        })
    };
    let pool = |kind, win: Window, ceil: bool, count_include_pad: bool| -> Result<Built, Defer> {
        if matches!(kind, PoolKind::Avg) && win.dilation.iter().any(|&d| d != 1) {
            return Ok(Built::DilatedAvg(win, ceil, count_include_pad));
        }
        Ok(Built::Pool(PoolLayer::new(
            kind,
            win,
            ceil,
            count_include_pad,
        )?))
    };
    let symmetric = convnet_layers::Padding::symmetric;
    macro_rules! conv_nd {
        ($c:expr, $padding:ident) => {{
            let c = &$c;
            let p = $padding(&c.padding, &c.auto_pad);
            let win = window(
                c.kernel_size.to_vec(),
                c.stride.to_vec(),
                c.dilation.to_vec(),
                p,
                &c.auto_pad,
            )?;
            conv(win, c.groups)?
        }};
    }
    macro_rules! transpose_nd {
        ($c:expr) => {{
            let c = &$c;
            let win = Window {
                kernel: c.kernel_size.to_vec(),
                stride: c.stride.to_vec(),
                dilation: c.dilation.to_vec(),
                padding: symmetric(&c.padding),
            };
            transpose(
                win,
                c.padding_out.to_vec(),
                c.groups,
                c.output_shape.map(|o| o.to_vec()),
                &c.auto_pad,
            )?
        }};
    }
    macro_rules! max_pool_nd {
        ($c:expr, $padding:ident) => {{
            let c = &$c;
            let p = $padding(&c.padding, &c.auto_pad);
            let win = window(
                c.kernel_size.to_vec(),
                c.strides.to_vec(),
                c.dilation.to_vec(),
                p,
                &c.auto_pad,
            )?;
            pool(PoolKind::Max, win, c.ceil_mode, false)?
        }};
    }
    macro_rules! avg_pool_nd {
        ($c:expr, $padding:ident) => {{
            let c = &$c;
            let p = $padding(&c.padding, &c.auto_pad);
            let win = window(
                c.kernel_size.to_vec(),
                c.strides.to_vec(),
                c.dilation.to_vec(),
                p,
                &c.auto_pad,
            )?;
            pool(PoolKind::Avg, win, c.ceil_mode, c.count_include_pad)?
        }};
    }
    Ok(match node {
        Node::Conv1d(n) => {
            let c = &n.config;
            let p = padding1(&c.padding, &c.auto_pad);
            conv(
                window(
                    one(c.kernel_size),
                    one(c.stride),
                    one(c.dilation),
                    p,
                    &c.auto_pad,
                )?,
                c.groups,
            )?
        }
        Node::ConvTranspose1d(n) => {
            let c = &n.config;
            let win = Window {
                kernel: one(c.kernel_size),
                stride: one(c.stride),
                dilation: one(c.dilation),
                padding: symmetric(&[c.padding]),
            };
            transpose(
                win,
                one(c.padding_out),
                c.groups,
                c.output_shape.map(one),
                &c.auto_pad,
            )?
        }
        Node::MaxPool1d(n) => {
            let c = &n.config;
            let p = padding1(&c.padding, &c.auto_pad);
            pool(
                PoolKind::Max,
                window(
                    one(c.kernel_size),
                    one(c.stride),
                    one(c.dilation),
                    p,
                    &c.auto_pad,
                )?,
                c.ceil_mode,
                false,
            )?
        }
        Node::AveragePool1d(n) => {
            let c = &n.config;
            let p = padding1(&c.padding, &c.auto_pad);
            pool(
                PoolKind::Avg,
                window(
                    one(c.kernel_size),
                    one(c.stride),
                    one(c.dilation),
                    p,
                    &c.auto_pad,
                )?,
                c.ceil_mode,
                c.count_include_pad,
            )?
        }
        // The 2D and 3D settings have the same fields, arrays of 2 or 3.
        Node::Conv2d(n) => conv_nd!(n.config, padding2),
        Node::Conv3d(n) => conv_nd!(n.config, padding3),
        Node::ConvTranspose2d(n) => transpose_nd!(n.config),
        Node::ConvTranspose3d(n) => transpose_nd!(n.config),
        // The indices output (SegNet's unpooling reads it), through Burn's pool with indices.
        Node::MaxPool2d(n) if node.outputs().len() > 1 => {
            let c = &n.config;
            let win = window(
                c.kernel_size.to_vec(),
                c.strides.to_vec(),
                c.dilation.to_vec(),
                padding2(&c.padding, &c.auto_pad),
                &c.auto_pad,
            )?;
            Built::ArgMax(win, c.ceil_mode, c.storage_order == 1)
        }
        Node::MaxPool2d(n) => max_pool_nd!(n.config, padding2),
        Node::MaxPool3d(n) => max_pool_nd!(n.config, padding3),
        Node::AveragePool2d(n) => avg_pool_nd!(n.config, padding2),
        Node::AveragePool3d(n) => avg_pool_nd!(n.config, padding3),
        Node::Lrn(n) => Built::Lrn(lrn(
            n.config.size,
            n.config.alpha,
            n.config.beta,
            n.config.bias,
        )?),
        Node::BatchNormalization(n) => {
            let eps = match &n.config {
                onnx_ir::node::batch_norm::BatchNormConfig::Static(c) => c.epsilon,
                onnx_ir::node::batch_norm::BatchNormConfig::Runtime(c) => c.epsilon,
            };
            let vec = |i: usize| -> Result<Option<Vec<f32>>, GraphError> {
                float_const(consts, i)?
                    .map(|f| {
                        f.into_data()
                            .try_to_vec::<f32>()
                            .map_err(super::value::data_error)
                    })
                    .transpose()
            };
            match (vec(1)?, vec(2)?, vec(3)?, vec(4)?) {
                (Some(gamma), Some(beta), Some(mean), Some(var)) => {
                    let n = gamma.len();
                    if [beta.len(), mean.len(), var.len()].iter().any(|&l| l != n) {
                        return Err(GraphError::invalid(
                            "scale, bias, mean and variance differ in length",
                        )
                        .into());
                    }
                    let scale: Vec<f32> = gamma
                        .iter()
                        .zip(&var)
                        .map(|(g, v)| (f64::from(*g) / (f64::from(*v) + eps).sqrt()) as f32)
                        .collect();
                    let shift: Vec<f32> = beta
                        .iter()
                        .zip(&mean)
                        .zip(&scale)
                        .map(|((b, m), s)| b - m * s)
                        .collect();
                    let device = consts
                        .iter()
                        .flatten()
                        .find_map(|v| match v {
                            Value::Float(f) => Some(f.device()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    Built::Affine(
                        Tensor::from_data(TensorData::new(scale, [n]), &device),
                        Tensor::from_data(TensorData::new(shift, [n]), &device),
                    )
                }
                _ => Built::None,
            }
        }
        _ => Built::None,
    })
}

type R<T> = Result<T, String>;

impl From<Defer> for String {
    fn from(d: Defer) -> String {
        match d {
            Defer::Later => "the weight or bias is missing".into(),
            Defer::Fail(e) => e.to_string(),
        }
    }
}

fn want(args: &mut [Option<Value>], i: usize) -> R<Value> {
    args.get_mut(i)
        .and_then(Option::take)
        .ok_or_else(|| format!("input {i} is missing"))
}

fn want_float(device: &Device, args: &mut [Option<Value>], i: usize) -> R<Float> {
    want(args, i)?.float(device).map_err(|e| e.to_string())
}

fn want_ints(args: &mut [Option<Value>], i: usize) -> R<Vec<i64>> {
    Ok(want(args, i)?.ints().map_err(|e| e.to_string())?.data)
}

/// A float or integer elementwise binary op with numpy broadcasting.
fn binary(a: Value, b: Value, f: fn(Float, Float) -> Float, i: fn(i64, i64) -> R<i64>) -> R<Value> {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => {
            let dims = broadcast(&a.dims, &b.dims).map_err(|e| e.to_string())?;
            let (x, y) = (expand_ints(&a, &dims), expand_ints(&b, &dims));
            let data = x
                .iter()
                .zip(&y)
                .map(|(&x, &y)| i(x, y))
                .collect::<R<Vec<_>>>()?;
            Ok(Value::Int(Ints {
                dims,
                data,
                dtype: a.dtype,
            }))
        }
        (a, b) => {
            let device = match (&a, &b) {
                (Value::Float(f), _) | (_, Value::Float(f)) => f.device(),
                _ => Device::default(),
            };
            let to_float = |v: Value| -> R<Float> {
                match v {
                    Value::Float(f) => Ok(f),
                    Value::Int(i) => Float::from_data(
                        TensorData::new(
                            i.data.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                            i.dims,
                        ),
                        &device,
                    )
                    .map_err(|e| e.to_string()),
                }
            };
            let (a, b) = (to_float(a)?, to_float(b)?);
            broadcast(&a.dims(), &b.dims()).map_err(|e| e.to_string())?;
            let rank = a.rank().max(b.rank());
            let scalar = rank == 0;
            let a = a.lift(rank.max(1)).map_err(|e| e.to_string())?;
            let b = b.lift(rank.max(1)).map_err(|e| e.to_string())?;
            let out = f(a, b);
            Ok(Value::Float(if scalar {
                out.reshape(&[]).map_err(|e| e.to_string())?
            } else {
                out
            }))
        }
    }
}

/// Integers repeated to a broadcast shape.
fn expand_ints(x: &Ints, dims: &[usize]) -> Vec<i64> {
    let rank = dims.len();
    let mut src = vec![1; rank - x.dims.len()];
    src.extend(&x.dims);
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    for flat in 0..total {
        let (mut rem, mut idx, mut stride) = (flat, 0, 1);
        let mut strides = vec![0; rank];
        for a in (0..rank).rev() {
            strides[a] = stride;
            stride *= src[a];
        }
        for a in (0..rank).rev() {
            let coord = rem % dims[a];
            rem /= dims[a];
            if src[a] != 1 {
                idx += coord * strides[a];
            }
        }
        out.push(x.data[idx]);
    }
    out
}

fn unary(device: &Device, v: Value, f: fn(Float) -> Float) -> R<Vec<Value>> {
    let x = v.float(device).map_err(|e| e.to_string())?;
    Ok(vec![Value::Float(f(x))])
}

fn one(v: Float) -> R<Vec<Value>> {
    Ok(vec![Value::Float(v)])
}

/// Normalises a possibly negative axis.
fn axis(a: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    if (0..r.max(1)).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {a} is outside a rank-{rank} tensor"))
    }
}

/// ONNX Reshape's target: 0 copies the input's dim, -1 is inferred.
fn reshape_target(dims: &[usize], shape: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*dims.get(i).ok_or("reshape: 0 beyond the input's rank")?),
            s if s >= 0 => out.push(s as usize),
            _ => return Err(format!("reshape to {shape:?}: bad dimension {s}")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {dims:?} to {shape:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!(
            "cannot reshape {dims:?} ({total} values) to {shape:?}"
        ));
    }
    Ok(out)
}

fn reshape(v: Value, dims: &[usize]) -> R<Value> {
    Ok(match v {
        Value::Float(f) => Value::Float(f.reshape(dims).map_err(|e| e.to_string())?),
        Value::Int(mut i) => {
            i.dims = dims.to_vec();
            Value::Int(i)
        }
    })
}

fn runtime_ints(args: &mut [Option<Value>], r: &onnx_ir::RuntimeInputRef) -> R<Vec<i64>> {
    want_ints(args, r.input_index)
}

/// Slices `x` along `axis` to `[start, end)` with `step` (ONNX semantics, clamped).
fn slice_axis(v: Value, ax: usize, start: i64, end: i64, step: i64) -> R<Value> {
    let dims = v.dims();
    let n = dims[ax] as i64;
    if step == 0 {
        return Err("slice step 0".into());
    }
    let clamp = |x: i64, lo: i64, hi: i64| x.max(lo).min(hi);
    let norm = |x: i64| if x < 0 { x + n } else { x };
    let idx: Vec<i64> = if step > 0 {
        let (s, e) = (clamp(norm(start), 0, n), clamp(norm(end), 0, n));
        (s..e).step_by(step as usize).collect()
    } else {
        let (s, e) = (clamp(norm(start), -1, n - 1), clamp(norm(end), -1, n - 1));
        let mut out = Vec::new();
        let mut i = s;
        while i > e {
            out.push(i);
            i += step;
        }
        out
    };
    take(v, ax, &idx, &[idx.len()])
}

/// Gathers `indices` (already non-negative) along `ax`, the indices' shape replacing the axis.
fn take(v: Value, ax: usize, indices: &[i64], index_dims: &[usize]) -> R<Value> {
    let dims = v.dims();
    let mut out_dims = dims[..ax].to_vec();
    out_dims.extend(index_dims);
    out_dims.extend(&dims[ax + 1..]);
    match v {
        Value::Float(f) => {
            let device = f.device();
            let mut mid = dims.clone();
            mid[ax] = indices.len();
            let f = if indices.is_empty() {
                Float::from_data(
                    TensorData::new(Vec::<f32>::new(), out_dims.clone()),
                    &device,
                )
                .map_err(|e| e.to_string())?
            } else {
                let idx = Tensor::<1, Int>::from_data(
                    TensorData::new(indices.to_vec(), [indices.len()]),
                    &device,
                );
                let f = if dims.is_empty() {
                    f
                } else {
                    map_float!(f, |t| t.select(ax, idx.clone()))
                };
                f.reshape(&out_dims).map_err(|e| e.to_string())?
            };
            Ok(Value::Float(f))
        }
        Value::Int(i) => {
            let outer: usize = dims[..ax].iter().product();
            let inner: usize = dims[ax + 1..].iter().product();
            let mut data = Vec::new();
            for o in 0..outer {
                for &k in indices {
                    let base = (o * dims[ax] + k as usize) * inner;
                    data.extend_from_slice(&i.data[base..base + inner]);
                }
            }
            Ok(Value::Int(Ints {
                dims: out_dims,
                data,
                dtype: i.dtype,
            }))
        }
    }
}

fn concat(device: &Device, values: Vec<Value>, ax: usize) -> R<Value> {
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        let ints: Vec<Ints> = values
            .into_iter()
            .map(|v| v.ints().map_err(|e| e.to_string()))
            .collect::<R<_>>()?;
        let mut dims = ints[0].dims.clone();
        let outer: usize = dims[..ax].iter().product();
        dims[ax] = ints.iter().map(|i| i.dims[ax]).sum();
        let mut data = Vec::new();
        for o in 0..outer {
            for i in &ints {
                let chunk: usize = i.dims[ax..].iter().product();
                data.extend_from_slice(&i.data[o * chunk..(o + 1) * chunk]);
            }
        }
        return Ok(Value::Int(Ints {
            dims,
            data,
            dtype: ints[0].dtype,
        }));
    }
    let floats: Vec<Float> = values
        .into_iter()
        .map(|v| v.float(device).map_err(|e| e.to_string()))
        .collect::<R<_>>()?;
    let dims0 = floats[0].dims();
    for f in &floats {
        let d = f.dims();
        if d.len() != dims0.len() || d.iter().enumerate().any(|(i, &x)| i != ax && x != dims0[i]) {
            return Err(format!(
                "cannot concatenate {dims0:?} and {d:?} along axis {ax}"
            ));
        }
    }
    macro_rules! cat {
        ($v:ident) => {{
            let ts = floats
                .into_iter()
                .map(|f| match f {
                    Float::$v(t) => t,
                    _ => unreachable!(),
                })
                .collect::<Vec<_>>();
            Float::$v(Tensor::cat(ts, ax))
        }};
    }
    Ok(Value::Float(match &floats[0] {
        Float::R1(_) => cat!(R1),
        Float::R2(_) => cat!(R2),
        Float::R3(_) => cat!(R3),
        Float::R4(_) => cat!(R4),
        Float::R5(_) => cat!(R5),
        Float::R6(_) => cat!(R6),
        Float::Scalar(_) => return Err("cannot concatenate scalars".into()),
    }))
}

fn permute(v: Value, perm: &[usize]) -> R<Value> {
    let dims = v.dims();
    if perm.len() != dims.len() {
        return Err(format!(
            "permutation {perm:?} for a rank-{} tensor",
            dims.len()
        ));
    }
    Ok(match v {
        Value::Float(f) => Value::Float(match f {
            Float::R1(t) => Float::R1(t),
            Float::Scalar(t) => Float::Scalar(t),
            Float::R2(t) => Float::R2(t.permute(arr(perm))),
            Float::R3(t) => Float::R3(t.permute(arr(perm))),
            Float::R4(t) => Float::R4(t.permute(arr(perm))),
            Float::R5(t) => Float::R5(t.permute(arr(perm))),
            Float::R6(t) => Float::R6(t.permute(arr(perm))),
        }),
        Value::Int(i) => {
            let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
            let mut strides = vec![1; dims.len()];
            for a in (0..dims.len().saturating_sub(1)).rev() {
                strides[a] = strides[a + 1] * dims[a + 1];
            }
            let total: usize = dims.iter().product();
            let mut data = Vec::with_capacity(total);
            for flat in 0..total {
                let (mut rem, mut src) = (flat, 0);
                for a in (0..out_dims.len()).rev() {
                    let c = rem % out_dims[a];
                    rem /= out_dims[a];
                    src += c * strides[perm[a]];
                }
                data.push(i.data[src]);
            }
            Value::Int(Ints {
                dims: out_dims,
                data,
                dtype: i.dtype,
            })
        }
    })
}

fn arr<const N: usize>(v: &[usize]) -> [isize; N] {
    let mut out = [0isize; N];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = x as isize;
    }
    out
}

/// Reduces `axes` (sorted, distinct) by mean or sum or max, keeping or dropping them.
fn reduce(f: Float, axes: &[usize], keep: bool, how: fn(Float, usize) -> Float) -> R<Float> {
    let dims = f.dims();
    let mut x = f;
    for &a in axes {
        x = how(x, a);
    }
    if keep {
        return Ok(x);
    }
    let out: Vec<usize> = dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect();
    x.reshape(&out).map_err(|e| e.to_string())
}

fn reduce_axes(
    args: &mut [Option<Value>],
    c: &onnx_ir::node::reduce::ReduceConfig,
    rank: usize,
) -> R<Option<Vec<usize>>> {
    use onnx_ir::node::reduce::ReduceAxes;
    let mut axes: Vec<usize> = match &c.axes {
        ReduceAxes::Static(a) => a.clone(),
        ReduceAxes::Runtime(r) => runtime_ints(args, r)?
            .into_iter()
            .map(|a| axis(a, rank))
            .collect::<R<_>>()?,
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    };
    if axes.is_empty() {
        if c.noop_with_empty_axes {
            return Ok(None);
        }
        axes = (0..rank).collect();
    }
    axes.sort_unstable();
    axes.dedup();
    Ok(Some(axes))
}

#[allow(clippy::too_many_lines)]
fn eval(
    node: &Node,
    built: &Built,
    fix: Option<&Fix>,
    mut args: Vec<Option<Value>>,
    device: &Device,
) -> R<Vec<Value>> {
    let a = &mut args;
    match node {
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
        | Node::AveragePool3d(_) => {
            let x = want_float(device, a, 0)?;
            // Layers whose weights or padding depend on the run are built now.
            let layer = match built {
                Built::Conv(_)
                | Built::Cropped(..)
                | Built::Pool(_)
                | Built::DilatedAvg(..)
                | Built::ArgMax(..) => std::borrow::Cow::Borrowed(built),
                _ => std::borrow::Cow::Owned(build(node, a, Some(&x.dims()[2.min(x.rank())..]))?),
            };
            match layer.as_ref() {
                Built::Conv(c) => one(c.forward(x)?),
                Built::Pool(p) => one(p.forward(x)?),
                Built::ArgMax(win, ceil, column) => max_pool_indices(x, win, *ceil, *column),
                Built::DilatedAvg(win, ceil, include_pad) => {
                    one(dilated_average(x, win, *ceil, *include_pad, device)?)
                }
                Built::Cropped(c, crop) => {
                    let mut y = Value::Float(c.forward(x)?);
                    for (i, &(begin, end)) in crop.iter().enumerate() {
                        let len = y.dims()[2 + i];
                        y = slice_axis(y, 2 + i, begin as i64, len.saturating_sub(end) as i64, 1)?;
                    }
                    Ok(vec![y])
                }
                _ => Err("the layer could not be built".into()),
            }
        }
        Node::GlobalAveragePool(_) | Node::GlobalMaxPool(_) => {
            let x = want_float(device, a, 0)?;
            let rank = x.rank();
            if rank < 3 {
                return Err(format!(
                    "a global pool needs [N, C, spatial...], got {:?}",
                    x.dims()
                ));
            }
            let axes: Vec<usize> = (2..rank).collect();
            let max = matches!(node, Node::GlobalMaxPool(_));
            one(reduce(
                x,
                &axes,
                true,
                if max {
                    |f, a| map_float!(f, |t| t.max_dim(a))
                } else {
                    |f, a| map_float!(f, |t| t.mean_dim(a))
                },
            )?)
        }
        Node::Lrn(_) => {
            let Built::Lrn(l) = built else {
                unreachable!("LRN is built")
            };
            let x = want_float(device, a, 0)?;
            one(match x {
                Float::R3(t) => Float::R3(l.forward(t)),
                Float::R4(t) => Float::R4(l.forward(t)),
                Float::R5(t) => Float::R5(l.forward(t)),
                other => return Err(format!("LRN of a {:?} tensor", other.dims())),
            })
        }
        Node::BatchNormalization(n) => {
            let x = want_float(device, a, 0)?;
            if let Some(Fix::Training(momentum)) = fix {
                let eps = match &n.config {
                    onnx_ir::node::batch_norm::BatchNormConfig::Static(c) => c.epsilon,
                    onnx_ir::node::batch_norm::BatchNormConfig::Runtime(c) => c.epsilon,
                };
                let stats = (1..=4)
                    .map(|i| Ok(want_float(device, a, i)?.flatten()))
                    .collect::<R<Vec<Tensor<1>>>>()?;
                let mut out = batch_norm_training(x, &stats, eps, f64::from(*momentum))?;
                out.truncate(node.outputs().len().max(1));
                return Ok(out);
            }
            let (scale, shift) = match built {
                Built::Affine(s, b) => (s.clone(), b.clone()),
                _ => {
                    let eps = match &n.config {
                        onnx_ir::node::batch_norm::BatchNormConfig::Static(c) => c.epsilon,
                        onnx_ir::node::batch_norm::BatchNormConfig::Runtime(c) => c.epsilon,
                    };
                    let g = want_float(device, a, 1)?.flatten();
                    let b = want_float(device, a, 2)?.flatten();
                    let m = want_float(device, a, 3)?.flatten();
                    let v = want_float(device, a, 4)?.flatten();
                    let s = g / (v + eps).sqrt();
                    (s.clone(), b - m * s)
                }
            };
            one(channel_affine(x, scale, shift)?)
        }
        Node::InstanceNormalization(n) => {
            let x = want_float(device, a, 0)?;
            let g = want_float(device, a, 1)?.flatten();
            let b = want_float(device, a, 2)?.flatten();
            let dims = x.dims();
            if dims.len() < 3 {
                return Err(format!(
                    "instance norm needs [N, C, spatial...], got {dims:?}"
                ));
            }
            let (nb, c) = (dims[0], dims[1]);
            let rest: usize = dims[2..].iter().product();
            let t = x.reshape(&[nb, c, rest]).map_err(|e| e.to_string())?;
            let Float::R3(t) = t else { unreachable!() };
            let mean = t.clone().mean_dim(2);
            let centred = t - mean;
            let var = centred.clone().powi_scalar(2).mean_dim(2);
            let y = centred / (var + n.config.epsilon).sqrt();
            let y = y * g.reshape([1, c, 1]) + b.reshape([1, c, 1]);
            one(Float::R3(y).reshape(&dims).map_err(|e| e.to_string())?)
        }
        Node::Linear(n) => {
            let x = want_float(device, a, 0)?;
            let w = want_float(device, a, 1)?;
            let Float::R2(w) = w else {
                return Err("a Linear weight must be a matrix".into());
            };
            let w = if n.config.transpose_weight {
                w.transpose()
            } else {
                w
            };
            let b = a
                .get_mut(2)
                .and_then(Option::take)
                .map(|v| v.float(device))
                .transpose()
                .map_err(|e| e.to_string())?;
            let y = matmul(x, Float::R2(w))?;
            one(match b {
                Some(b) => add_float(y, b)?,
                None => y,
            })
        }
        Node::Gemm(n) => {
            let c = &n.config;
            let x = want_float(device, a, 0)?;
            let w = want_float(device, a, 1)?;
            let (Float::R2(x), Float::R2(w)) = (x, w) else {
                return Err("Gemm takes matrices".into());
            };
            let x = if c.trans_a != 0 { x.transpose() } else { x };
            let w = if c.trans_b != 0 { w.transpose() } else { w };
            let mut y = x.matmul(w);
            if c.alpha != 1.0 {
                y = y * f64::from(c.alpha);
            }
            let mut y = Float::R2(y);
            if let Some(b) = a.get_mut(2).and_then(Option::take) {
                let b = b.float(device).map_err(|e| e.to_string())?;
                let b = if c.beta != 1.0 {
                    map_float!(b, |t| t * f64::from(c.beta))
                } else {
                    b
                };
                y = add_float(y, b)?;
            }
            one(y)
        }
        Node::MatMul(_) => {
            let x = want_float(device, a, 0)?;
            let w = want_float(device, a, 1)?;
            one(matmul(x, w)?)
        }
        Node::Add(_) => Ok(vec![binary(
            want(a, 0)?,
            want(a, 1)?,
            |x, y| zip_float!(x, y, |p, q| p + q),
            |x, y| x.checked_add(y).ok_or_else(|| "integer overflow".into()),
        )?]),
        Node::Sub(_) => Ok(vec![binary(
            want(a, 0)?,
            want(a, 1)?,
            |x, y| zip_float!(x, y, |p, q| p - q),
            |x, y| x.checked_sub(y).ok_or_else(|| "integer overflow".into()),
        )?]),
        Node::Mul(_) => Ok(vec![binary(
            want(a, 0)?,
            want(a, 1)?,
            |x, y| zip_float!(x, y, |p, q| p * q),
            |x, y| x.checked_mul(y).ok_or_else(|| "integer overflow".into()),
        )?]),
        Node::Div(_) => Ok(vec![binary(
            want(a, 0)?,
            want(a, 1)?,
            |x, y| zip_float!(x, y, |p, q| p / q),
            |x, y| {
                x.checked_div(y)
                    .ok_or_else(|| "integer division by zero".into())
            },
        )?]),
        Node::Pow(_) => Ok(vec![binary(
            want(a, 0)?,
            want(a, 1)?,
            |x, y| zip_float!(x, y, |p, q| p.powf(q)),
            |x, y| {
                u32::try_from(y)
                    .ok()
                    .and_then(|y| x.checked_pow(y))
                    .ok_or_else(|| "integer power out of range".into())
            },
        )?]),
        Node::Sqrt(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.sqrt())),
        Node::Exp(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.exp())),
        Node::Log(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.log())),
        Node::Abs(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.abs())),
        Node::Reciprocal(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.recip())),
        Node::Floor(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.floor())),
        Node::Ceil(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.ceil())),
        Node::Neg(_) => match want(a, 0)? {
            Value::Int(mut i) => {
                i.data.iter_mut().for_each(|v| *v = -*v);
                Ok(vec![Value::Int(i)])
            }
            v => unary(device, v, |x| map_float!(x, |t| t.neg())),
        },
        Node::Relu(_) => unary(device, want(a, 0)?, |x| {
            map_float!(x, |t| activation::relu(t))
        }),
        Node::Sigmoid(_) => unary(device, want(a, 0)?, |x| {
            map_float!(x, |t| activation::sigmoid(t))
        }),
        Node::Tanh(_) => unary(device, want(a, 0)?, |x| map_float!(x, |t| t.tanh())),
        Node::HardSwish(_) => unary(device, want(a, 0)?, |x| {
            map_float!(x, |t| t.clone() * (t + 3.0).clamp(0.0, 6.0) / 6.0)
        }),
        Node::LeakyRelu(n) => {
            let s = n.config.alpha;
            one(map_float!(want_float(device, a, 0)?, |t| {
                convnet_kernels::leaky_relu(t, s)
            }))
        }
        Node::HardSigmoid(n) => {
            let (al, be) = (n.config.alpha, n.config.beta);
            one(map_float!(want_float(device, a, 0)?, |t| (t * al + be).clamp(0.0, 1.0)))
        }
        Node::Elu(n) => {
            let al = n.config.alpha;
            one(map_float!(want_float(device, a, 0)?, |t| {
                let neg = (t.clone().exp() - 1.0) * al;
                let mask = t.clone().lower_elem(0.0);
                t.mask_where(mask, neg)
            }))
        }
        Node::PRelu(_) => {
            let x = want_float(device, a, 0)?;
            let slope = want_float(device, a, 1)?;
            let dims = x.dims();
            // A per-channel slope of shape [C] is applied along axis 1 (PyTorch's export), as
            // unidirectional broadcasting of [C, 1, 1] would.
            let slope = if slope.rank() == 1
                && dims.len() > 2
                && slope.dims()[0] == dims[1]
                && dims[dims.len() - 1] != dims[1]
            {
                let mut s = vec![1; dims.len() - 1];
                s[0] = dims[1];
                slope.reshape(&s).map_err(|e| e.to_string())?
            } else {
                slope
            };
            let neg = mul_float(x.clone(), slope)?;
            let rank = x.rank().max(1);
            let x = x.lift(rank).map_err(|e| e.to_string())?;
            let neg = neg.lift(rank).map_err(|e| e.to_string())?;
            one(zip_float!(x, neg, |p, q| {
                let mask = p.clone().lower_elem(0.0);
                p.mask_where(mask, q)
            }))
        }
        Node::Clip(n) => {
            use onnx_ir::node::clip::ClipInput;
            let x = want_float(device, a, 0)?;
            let mut bound = |b: &Option<ClipInput>| -> R<Option<f64>> {
                Ok(match b {
                    None => None,
                    Some(ClipInput::Static(v)) => Some(*v),
                    Some(ClipInput::Runtime(r)) => {
                        let v = want(a, r.input_index)?
                            .float(device)
                            .map_err(|e| e.to_string())?;
                        let d = v
                            .into_data()
                            .try_to_vec::<f32>()
                            .map_err(|e| format!("{e:?}"))?;
                        d.first().map(|&v| f64::from(v))
                    }
                })
            };
            let (lo, hi) = (bound(&n.config.min)?, bound(&n.config.max)?);
            let x = match lo {
                Some(lo) => map_float!(x, |t| t.clamp_min(lo)),
                None => x,
            };
            let x = match hi {
                Some(hi) => map_float!(x, |t| t.clamp_max(hi)),
                None => x,
            };
            one(x)
        }
        Node::Softmax(n) => {
            let x = want_float(device, a, 0)?;
            let ax = n.config.axis;
            one(map_float!(x, |t| activation::softmax(t, ax)))
        }
        Node::Dropout(_) | Node::Identity(_) => {
            let x = want(a, 0)?;
            // Dropout's optional mask output: all ones at inference.
            let mut out = vec![x.clone()];
            if node.outputs().len() > 1 {
                let dims = x.dims();
                let n = dims.iter().product();
                out.push(Value::Int(Ints {
                    dims,
                    data: vec![1; n],
                    dtype: burn::tensor::DType::Bool(burn::tensor::BoolStore::Native),
                }));
            }
            Ok(out)
        }
        Node::Constant(_) => {
            let data = node.outputs()[0]
                .value()
                .ok_or("the constant has no value")?;
            Ok(vec![
                Value::from_data(data, device).map_err(|e| e.to_string())?,
            ])
        }
        Node::Shape(n) => {
            let dims = want(a, 0)?.dims();
            let (s, e) = (n.config.start.min(dims.len()), n.config.end.min(dims.len()));
            let data: Vec<i64> = dims[s..e.max(s)].iter().map(|&d| d as i64).collect();
            Ok(vec![Value::Int(Ints::new(vec![data.len()], data))])
        }
        Node::Size(_) => {
            let n: usize = want(a, 0)?.dims().iter().product();
            Ok(vec![Value::Int(Ints::new(vec![], vec![n as i64]))])
        }
        Node::Cast(n) => {
            let v = want(a, 0)?;
            let to = n.config.to;
            Ok(vec![match to {
                burn::tensor::DType::F32
                | burn::tensor::DType::F64
                | burn::tensor::DType::F16
                | burn::tensor::DType::BF16 => {
                    Value::Float(v.float(device).map_err(|e| e.to_string())?)
                }
                burn::tensor::DType::Bool(_) => {
                    let mut i = v.ints().map_err(|e| e.to_string())?;
                    i.data.iter_mut().for_each(|x| *x = i64::from(*x != 0));
                    i.dtype = to;
                    Value::Int(i)
                }
                _ => {
                    let mut i = v.ints().map_err(|e| e.to_string())?;
                    i.dtype = if to == burn::tensor::DType::I32 {
                        to
                    } else {
                        burn::tensor::DType::I64
                    };
                    Value::Int(i)
                }
            }])
        }
        Node::Flatten(n) => {
            let v = want(a, 0)?;
            let dims = v.dims();
            let ax = n.config.axis.min(dims.len());
            let outer: usize = dims[..ax].iter().product();
            let inner: usize = dims[ax..].iter().product();
            Ok(vec![reshape(v, &[outer, inner])?])
        }
        Node::Reshape(n) => {
            use onnx_ir::node::reshape::ReshapeInput;
            let v = want(a, 0)?;
            let shape = match &n.config.shape {
                ReshapeInput::Static(s) => s.clone(),
                ReshapeInput::Runtime(r) => runtime_ints(a, r)?,
            };
            let allowzero = matches!(fix, Some(Fix::AllowZero));
            let target = reshape_target(&v.dims(), &shape, allowzero)?;
            Ok(vec![reshape(v, &target)?])
        }
        Node::Transpose(n) => {
            let v = want(a, 0)?;
            let rank = v.dims().len();
            let perm: Vec<usize> = if n.config.perm.is_empty() {
                (0..rank).rev().collect()
            } else {
                n.config
                    .perm
                    .iter()
                    .map(|&p| axis(p, rank))
                    .collect::<R<_>>()?
            };
            Ok(vec![permute(v, &perm)?])
        }
        Node::Squeeze(n) => {
            use onnx_ir::node::squeeze::SqueezeInput;
            let v = want(a, 0)?;
            let dims = v.dims();
            let axes: Vec<usize> = match &n.config.axes {
                None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
                Some(SqueezeInput::Static(s)) => {
                    s.iter().map(|&x| axis(x, dims.len())).collect::<R<_>>()?
                }
                Some(SqueezeInput::Runtime(r)) => runtime_ints(a, r)?
                    .into_iter()
                    .map(|x| axis(x, dims.len()))
                    .collect::<R<_>>()?,
            };
            if let Some(&bad) = axes.iter().find(|&&i| dims[i] != 1) {
                return Err(format!("cannot squeeze axis {bad} of size {}", dims[bad]));
            }
            let out: Vec<usize> = dims
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect();
            Ok(vec![reshape(v, &out)?])
        }
        Node::Unsqueeze(n) => {
            use onnx_ir::node::unsqueeze::UnsqueezeConfig;
            let v = want(a, 0)?;
            let dims = v.dims();
            let raw = match &n.config {
                UnsqueezeConfig::Static(s) => s.clone(),
                UnsqueezeConfig::Runtime(r) => runtime_ints(a, r)?,
            };
            let rank = dims.len() + raw.len();
            let mut axes: Vec<usize> = raw.iter().map(|&x| axis(x, rank)).collect::<R<_>>()?;
            axes.sort_unstable();
            let mut out = dims.clone();
            for ax in axes {
                out.insert(ax.min(out.len()), 1);
            }
            Ok(vec![reshape(v, &out)?])
        }
        Node::Concat(n) => {
            let values: Vec<Value> = a.iter_mut().filter_map(Option::take).collect();
            if values.is_empty() {
                return Err("Concat of nothing".into());
            }
            let ax = n.config.axis;
            Ok(vec![concat(device, values, ax)?])
        }
        Node::Split(n) => {
            use onnx_ir::node::split::SplitSizesInput;
            let v = want(a, 0)?;
            let dims = v.dims();
            let ax = n.config.axis;
            let total = dims[ax];
            let outputs = node.outputs().len();
            let sizes: Vec<usize> = match (&n.config.split_sizes, n.config.split_size) {
                (Some(SplitSizesInput::Static(s)), _) => s.clone(),
                (Some(SplitSizesInput::Runtime(r)), _) => runtime_ints(a, r)?
                    .into_iter()
                    .map(|x| x.max(0) as usize)
                    .collect(),
                (None, Some(size)) => {
                    let mut s = Vec::new();
                    let mut left = total;
                    while left > 0 {
                        s.push(size.min(left));
                        left -= size.min(left);
                    }
                    s
                }
                (None, None) => {
                    let size = total.div_ceil(outputs.max(1));
                    (0..outputs)
                        .map(|i| size.min(total.saturating_sub(i * size)))
                        .collect()
                }
            };
            if sizes.iter().sum::<usize>() != total {
                return Err(format!("split sizes {sizes:?} do not add up to {total}"));
            }
            let mut start = 0i64;
            let mut out = Vec::new();
            for s in sizes {
                out.push(slice_axis(v.clone(), ax, start, start + s as i64, 1)?);
                start += s as i64;
            }
            Ok(out)
        }
        Node::Slice(n) => {
            use onnx_ir::node::slice::SliceInput;
            let v = want(a, 0)?;
            let rank = v.dims().len();
            let mut get = |s: &SliceInput| -> R<Vec<i64>> {
                match s {
                    SliceInput::Static(v) => Ok(v.clone()),
                    SliceInput::Runtime(r) => runtime_ints(a, r),
                }
            };
            let starts = get(&n.config.starts)?;
            let ends = get(&n.config.ends)?;
            let axes = match &n.config.axes {
                Some(s) => get(s)?,
                None => (0..starts.len() as i64).collect(),
            };
            let steps = match &n.config.steps {
                Some(s) => get(s)?,
                None => vec![1; starts.len()],
            };
            if [ends.len(), axes.len(), steps.len()]
                .iter()
                .any(|&l| l != starts.len())
            {
                return Err("starts, ends, axes and steps differ in length".into());
            }
            let mut v = v;
            for i in 0..starts.len() {
                let ax = axis(axes[i], rank)?;
                v = slice_axis(v, ax, starts[i], ends[i], steps[i])?;
            }
            Ok(vec![v])
        }
        Node::Gather(n) => {
            let v = want(a, 0)?;
            let idx = want(a, 1)?.ints().map_err(|e| e.to_string())?;
            let dims = v.dims();
            let ax = n.config.axis;
            let len = *dims.get(ax).ok_or("gather axis beyond the rank")? as i64;
            let indices: Vec<i64> = idx
                .data
                .iter()
                .map(|&i| {
                    let j = if i < 0 { i + len } else { i };
                    if (0..len).contains(&j) {
                        Ok(j)
                    } else {
                        Err(format!("index {i} is outside an axis of {len}"))
                    }
                })
                .collect::<R<_>>()?;
            Ok(vec![take(v, ax, &indices, &idx.dims)?])
        }
        Node::Pad(n) => {
            use onnx_ir::node::pad::{AxesInput, ConstantValueInput, PadInput, PadMode};
            let x = want_float(device, a, 0)?;
            let rank = x.rank();
            let pads: Vec<(i64, i64)> = match &n.config.pads {
                PadInput::Static(p) => p.iter().map(|&(b, e)| (b as i64, e as i64)).collect(),
                PadInput::Runtime { input, axes } => {
                    let raw = runtime_ints(a, input)?;
                    let axes: Vec<usize> = match axes {
                        None => (0..rank).collect(),
                        Some(AxesInput::Static(v)) => v.clone(),
                        Some(AxesInput::Runtime(r)) => runtime_ints(a, r)?
                            .into_iter()
                            .map(|x| axis(x, rank))
                            .collect::<R<_>>()?,
                    };
                    if raw.len() != 2 * axes.len() {
                        return Err(format!("{} pads for {} axes", raw.len(), axes.len()));
                    }
                    let mut pads = vec![(0, 0); rank];
                    for (k, &ax) in axes.iter().enumerate() {
                        pads[ax] = (raw[k], raw[k + axes.len()]);
                    }
                    pads
                }
            };
            let value = match &n.config.constant_value {
                ConstantValueInput::Static(v) => f64::from(*v),
                ConstantValueInput::Runtime(r) => {
                    let v = want(a, r.input_index)?
                        .float(device)
                        .map_err(|e| e.to_string())?;
                    v.into_data()
                        .try_to_vec::<f32>()
                        .map_err(|e| format!("{e:?}"))?
                        .first()
                        .map_or(0.0, |&v| f64::from(v))
                }
            };
            let mode = match n.config.mode {
                PadMode::Constant => burn::tensor::ops::PadMode::Constant(value as f32),
                PadMode::Reflect => burn::tensor::ops::PadMode::Reflect,
                PadMode::Edge => burn::tensor::ops::PadMode::Edge,
                #[allow(unreachable_patterns)]
                _ => return Err("this pad mode is not supported".into()),
            };
            if pads.len() != rank {
                return Err(format!("{} pad pairs for a rank-{rank} tensor", pads.len()));
            }
            let dims = x.dims();
            let out = dims
                .iter()
                .zip(&pads)
                .map(|(&d, &(b, e))| {
                    usize::try_from(d as i64 + b + e)
                        .map_err(|_| format!("pads {b}, {e} remove more than an axis of {d}"))
                })
                .collect::<R<Vec<usize>>>()?;
            convnet_layers::Bytes::f32s(&out)
                .check("the Pad output")
                .map_err(|e| e.to_string())?;
            if matches!(fix, Some(Fix::Wrap)) {
                return one(wrap_pad(x, &pads));
            }
            // Positive pads pad; negative ones crop, after.
            let grow: Vec<(usize, usize)> = pads
                .iter()
                .map(|&(b, e)| (b.max(0) as usize, e.max(0) as usize))
                .collect();
            let mut x = map_float!(x, |t| t.pad(grow.as_slice(), mode));
            for (ax, &(b, e)) in pads.iter().enumerate() {
                if b < 0 || e < 0 {
                    let start = (-b).max(0) as usize;
                    x = map_float!(x, |t| t.narrow(ax, start, out[ax]));
                }
            }
            one(x)
        }
        Node::Resize(n) | Node::Upsample(n) => {
            use onnx_ir::node::resize::{ResizeScales, ResizeSizes};
            let x = want_float(device, a, 0)?;
            let c = &n.config;
            let floats = |a: &mut [Option<Value>], i: usize| -> R<Vec<f64>> {
                let v = want(a, i)?.float(device).map_err(|e| e.to_string())?;
                Ok(v.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .map_err(|e| format!("{e:?}"))?
                    .into_iter()
                    .map(f64::from)
                    .collect())
            };
            let sizes = match &c.sizes {
                Some(ResizeSizes::Static(s)) => Some(s.iter().map(|&v| v as i64).collect()),
                Some(ResizeSizes::Runtime(r)) => Some(runtime_ints(a, r)?),
                None => None,
            };
            let scales = match &c.scales {
                Some(ResizeScales::Static(s)) => Some(s.iter().map(|&v| f64::from(v)).collect()),
                Some(ResizeScales::Runtime(r)) => Some(floats(a, r.input_index)?),
                None => None,
            };
            let default = ResizeFix::default();
            let fix = match fix {
                Some(Fix::Resize(f)) => f,
                _ => &default,
            };
            // The region: a constant one was taken off the node; a computed one is input 1.
            let roi = match &fix.roi {
                Some(r) => Some(r.iter().map(|&v| f64::from(v)).collect()),
                None if matches!(
                    c.coordinate_transformation_mode,
                    onnx_ir::node::resize::CoordinateTransformMode::TfCropAndResize
                ) && a.get(1).is_some_and(Option::is_some) =>
                {
                    Some(floats(a, 1)?)
                }
                None => None,
            };
            let given = resize::Given { scales, sizes, roi };
            one(resize::resize(x, c, fix, given)?)
        }
        Node::ReduceMean(_) | Node::ReduceSum(_) | Node::ReduceMax(_) | Node::ReduceMin(_) => {
            let config = match node {
                Node::ReduceMean(n) => &n.config,
                Node::ReduceSum(n) => &n.config,
                Node::ReduceMax(n) => &n.config,
                Node::ReduceMin(n) => &n.config,
                _ => unreachable!("matched above"),
            };
            let x = want_float(device, a, 0)?;
            let rank = x.rank();
            let Some(axes) = reduce_axes(a, config, rank)? else {
                return one(x);
            };
            let how: fn(Float, usize) -> Float = match node {
                Node::ReduceMean(_) => |f, a| map_float!(f, |t| t.mean_dim(a)),
                Node::ReduceSum(_) => |f, a| map_float!(f, |t| t.sum_dim(a)),
                Node::ReduceMax(_) => |f, a| map_float!(f, |t| t.max_dim(a)),
                _ => |f, a| map_float!(f, |t| t.min_dim(a)),
            };
            one(reduce(x, &axes, config.keepdims, how)?)
        }
        Node::ConstantOfShape(n) => {
            use onnx_ir::node::constant_of_shape::ConstantOfShapeShape;
            let shape = match &n.config.shape {
                ConstantOfShapeShape::Static(s) => s.clone(),
                ConstantOfShapeShape::Runtime(r) => runtime_ints(a, r)?,
            };
            let dims: Vec<usize> = shape
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
                .collect::<R<_>>()?;
            let count = dims
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .filter(|&c| c <= 1 << 28)
                .ok_or("ConstantOfShape: too large")?;
            let value = n
                .config
                .value
                .clone()
                .unwrap_or_else(|| TensorData::new(vec![0f32], [1]));
            let v = Value::from_data(value, device).map_err(|e| e.to_string())?;
            Ok(vec![match v {
                Value::Float(f) => {
                    let x = f
                        .into_data()
                        .try_to_vec::<f32>()
                        .map_err(|e| format!("{e:?}"))?
                        .first()
                        .copied()
                        .unwrap_or(0.0);
                    Value::Float(
                        Float::from_data(TensorData::new(vec![x; count], dims), device)
                            .map_err(|e| e.to_string())?,
                    )
                }
                Value::Int(i) => Value::Int(Ints {
                    dims,
                    data: vec![i.data.first().copied().unwrap_or(0); count],
                    dtype: i.dtype,
                }),
            }])
        }
        Node::Expand(n) => {
            use onnx_ir::node::expand::ExpandConfig;
            let v = want(a, 0)?;
            let shape = match &n.config {
                ExpandConfig::Static(s) => s.clone(),
                ExpandConfig::Runtime(r) => runtime_ints(a, r)?,
            };
            let target: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            let dims = broadcast(&v.dims(), &target).map_err(|e| e.to_string())?;
            Ok(vec![match v {
                Value::Int(i) => Value::Int(Ints {
                    data: expand_ints(&i, &dims),
                    dims,
                    dtype: i.dtype,
                }),
                Value::Float(f) => {
                    let ones = Float::from_data(
                        TensorData::new(vec![0f32; dims.iter().product()], dims.clone()),
                        device,
                    )
                    .map_err(|e| e.to_string())?;
                    Value::Float(add_float(f, ones)?)
                }
            }])
        }
        other => Err(format!("{} is not supported", other.node_type())),
    }
}

/// ONNX's AveragePool with dilations: window sums by a depthwise convolution of ones, divided
/// by how many taps of each window fall inside the input (or inside the padded input, with
/// `count_include_pad`). In ceil mode a last window that starts in the end padding is dropped.
fn dilated_average(
    x: Float,
    win: &Window,
    ceil: bool,
    include_pad: bool,
    device: &Device,
) -> R<Float> {
    let dims = x.dims();
    let axes = win.kernel.len();
    if dims.len() != axes + 2 {
        return Err(format!("a pool over {axes} axes of a {dims:?} tensor"));
    }
    let mut pads = Vec::with_capacity(axes);
    let mut outs = Vec::with_capacity(axes);
    let mut counts: Vec<Vec<f32>> = Vec::with_capacity(axes);
    for i in 0..axes {
        let (pb, pe) = match &win.padding {
            convnet_layers::Padding::Valid => (0, 0),
            convnet_layers::Padding::Explicit(p) if p.len() == 1 => p[0],
            convnet_layers::Padding::Explicit(p) => *p.get(i).ok_or("pads for too few axes")?,
            convnet_layers::Padding::Same => return Err("SAME padding was not resolved".into()),
        };
        let (n, k, st, d) = (
            dims[2 + i],
            win.kernel[i],
            win.stride[i].max(1),
            win.dilation[i],
        );
        let span = k.saturating_sub(1) * d + 1;
        let avail = n + pb + pe;
        if avail < span {
            return Err(format!("a window of {span} does not fit {avail}"));
        }
        let mut out = if ceil {
            (avail - span).div_ceil(st) + 1
        } else {
            (avail - span) / st + 1
        };
        if ceil && (out - 1) * st >= n + pb {
            out -= 1;
        }
        let extra = ((out - 1) * st + span).saturating_sub(avail);
        pads.push((pb, pe + extra));
        outs.push(out);
        counts.push(
            (0..out)
                .map(|o| {
                    (0..k)
                        .map(|j| o * st + j * d)
                        .filter(|&p| {
                            if include_pad {
                                p < avail
                            } else {
                                p >= pb && p < pb + n
                            }
                        })
                        .count() as f32
                })
                .collect(),
        );
    }
    let c = dims[1];
    let mut wdims = vec![c, 1];
    wdims.extend(&win.kernel);
    let taps: usize = wdims.iter().product();
    let ones = Float::from_data(TensorData::new(vec![1f32; taps], wdims), device)
        .map_err(|e| e.to_string())?;
    let sums = ConvLayer::conv(
        ones,
        None,
        Window {
            kernel: win.kernel.clone(),
            stride: win.stride.clone(),
            dilation: win.dilation.clone(),
            padding: convnet_layers::Padding::Explicit(pads),
        },
        c,
    )
    .map_err(|e| e.to_string())?
    .forward(x)?;
    // 1 / count over the output grid, the outer product of the per-axis counts.
    let mut inverse = vec![1f32];
    for axis in &counts {
        inverse = inverse
            .iter()
            .flat_map(|&a| axis.iter().map(move |&b| a * b))
            .collect();
    }
    let inverse: Vec<f32> = inverse
        .into_iter()
        .map(|v| if v > 0.0 { 1.0 / v } else { 0.0 })
        .collect();
    let mut idims = vec![1, 1];
    idims.extend(&outs);
    let inverse =
        Float::from_data(TensorData::new(inverse, idims), device).map_err(|e| e.to_string())?;
    mul_float(sums, inverse)
}

/// BatchNormalization in training mode, as ONNX defines it: normalised by the batch's own
/// mean and (population) variance over every axis but the channels; the running statistics
/// `[scale, bias, mean, var]` come back updated by `momentum`.
fn batch_norm_training(x: Float, stats: &[Tensor<1>], eps: f64, momentum: f64) -> R<Vec<Value>> {
    let dims = x.dims();
    if dims.len() < 2 {
        return Err(format!("batch norm needs [N, C, ...], got {dims:?}"));
    }
    let c = dims[1];
    // [N, C, rest] -> [C, N * rest]: one row per channel.
    let rest: usize = dims[2..].iter().product();
    let Float::R3(t) = x.reshape(&[dims[0], c, rest]).map_err(|e| e.to_string())? else {
        unreachable!("reshaped to rank 3")
    };
    let rows = t.swap_dims(0, 1).reshape([c, dims[0] * rest]);
    let mean = rows.clone().mean_dim(1);
    let centred = rows - mean.clone();
    let var = centred.clone().powi_scalar(2).mean_dim(1);
    let [scale, bias, running_mean, running_var] = stats else {
        return Err("batch norm needs scale, bias, mean and variance".into());
    };
    let y = centred / (var.clone() + eps).sqrt() * scale.clone().reshape([c, 1])
        + bias.clone().reshape([c, 1]);
    let y = y.reshape([c, dims[0], rest]).swap_dims(0, 1);
    let y = Float::R3(y).reshape(&dims).map_err(|e| e.to_string())?;
    let mean = mean.reshape([c]);
    let var = var.reshape([c]);
    Ok(vec![
        Value::Float(y),
        Value::Float(Float::R1(
            running_mean.clone() * momentum + mean * (1.0 - momentum),
        )),
        Value::Float(Float::R1(
            running_var.clone() * momentum + var * (1.0 - momentum),
        )),
    ])
}

/// A 2D max pool and ONNX's indices output: each maximum's position in the whole input
/// tensor, flattened row-major (`storage_order` 0) or with the two spatial axes swapped (1).
fn max_pool_indices(x: Float, win: &Window, ceil: bool, column: bool) -> R<Vec<Value>> {
    let Float::R4(t) = x else {
        return Err(format!("a 2D max pool of a {:?} tensor", x.dims()));
    };
    let [_, _, h, w] = t.dims();
    let pair = |v: &[usize]| -> R<[usize; 2]> {
        v.try_into()
            .map_err(|_| format!("{} values for 2 spatial axes", v.len()))
    };
    let (kernel, stride, dilation) = (pair(&win.kernel)?, pair(&win.stride)?, pair(&win.dilation)?);
    let rounding = if ceil {
        convnet_layers::Rounding::Ceil
    } else {
        convnet_layers::Rounding::Floor
    };
    let geo =
        convnet_layers::geometry::window([h, w], kernel, stride, dilation, &win.padding, rounding)
            .map_err(|e| e.to_string())?;
    let options = burn::tensor::ops::MaxPoolOptions {
        kernel_size: kernel,
        stride,
        padding: geo.map(|g| (g.pad_begin, g.pad_end)),
        dilation,
        ceil_mode: ceil,
    };
    let (y, plane) = burn::tensor::module::max_pool2d_with_indices(t, options);
    let dims = plane.dims().to_vec();
    let plane = plane
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| format!("{e:?}"))?;
    let per_plane = dims[2] * dims[3];
    let (h, w) = (h as i64, w as i64);
    let index = plane
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let within = if column { (i % w) * h + i / w } else { i };
            (k / per_plane) as i64 * h * w + within
        })
        .collect();
    Ok(vec![
        Value::Float(Float::R4(y)),
        Value::Int(Ints::new(dims, index)),
    ])
}

/// ONNX's `wrap` padding: the axis repeated around itself (numpy's `np.pad(mode="wrap")`),
/// each output index reading `(i - before) mod n`; negative pads crop.
fn wrap_pad(x: Float, pads: &[(i64, i64)]) -> Float {
    let device = x.device();
    let dims = x.dims();
    let mut x = x;
    for (ax, &(b, e)) in pads.iter().enumerate() {
        let n = dims[ax] as i64;
        if (b == 0 && e == 0) || n == 0 {
            continue;
        }
        let index: Vec<i64> = (0..n + b + e).map(|i| (i - b).rem_euclid(n)).collect();
        let len = index.len();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [len]), &device);
        x = map_float!(x, |t| t.select(ax, index.clone()));
    }
    x
}

fn channel_affine(x: Float, scale: Tensor<1>, shift: Tensor<1>) -> R<Float> {
    Ok(match x {
        Float::R2(t) => {
            let c = t.dims()[1];
            Float::R2(t * scale.reshape([1, c]) + shift.reshape([1, c]))
        }
        Float::R3(t) => Float::R3(convnet_kernels::channel_affine(t, scale, shift)),
        Float::R4(t) => Float::R4(convnet_kernels::channel_affine(t, scale, shift)),
        Float::R5(t) => Float::R5(convnet_kernels::channel_affine(t, scale, shift)),
        other => return Err(format!("batch norm of a {:?} tensor", other.dims())),
    })
}

fn add_float(x: Float, y: Float) -> R<Float> {
    match binary(
        Value::Float(x),
        Value::Float(y),
        |x, y| zip_float!(x, y, |p, q| p + q),
        |x, y| Ok(x + y),
    )? {
        Value::Float(f) => Ok(f),
        Value::Int(_) => unreachable!(),
    }
}

fn mul_float(x: Float, y: Float) -> R<Float> {
    match binary(
        Value::Float(x),
        Value::Float(y),
        |x, y| zip_float!(x, y, |p, q| p * q),
        |x, y| Ok(x * y),
    )? {
        Value::Float(f) => Ok(f),
        Value::Int(_) => unreachable!(),
    }
}

/// numpy's matmul: vectors promoted and their axis removed again, batch axes broadcast.
fn matmul(x: Float, w: Float) -> R<Float> {
    let (xd, wd) = (x.dims(), w.dims());
    if xd.is_empty() || wd.is_empty() {
        return Err("MatMul of a scalar".into());
    }
    let x = if xd.len() == 1 {
        x.reshape(&[1, xd[0]]).map_err(|e| e.to_string())?
    } else {
        x
    };
    let w = if wd.len() == 1 {
        w.reshape(&[wd[0], 1]).map_err(|e| e.to_string())?
    } else {
        w
    };
    let (xd2, wd2) = (x.dims(), w.dims());
    if xd2[xd2.len() - 1] != wd2[wd2.len() - 2] {
        return Err(format!("MatMul of {xd:?} and {wd:?}"));
    }
    let batch =
        broadcast(&xd2[..xd2.len() - 2], &wd2[..wd2.len() - 2]).map_err(|e| e.to_string())?;
    let rank = batch.len() + 2;
    let x = x.lift(rank).map_err(|e| e.to_string())?;
    let w = w.lift(rank).map_err(|e| e.to_string())?;
    let y = zip_float!(x, w, |p, q| p.matmul(q));
    let mut out = batch;
    if xd.len() > 1 {
        out.push(xd[xd.len() - 2]);
    }
    if wd.len() > 1 {
        out.push(wd[wd.len() - 1]);
    }
    y.reshape(&out).map_err(|e| e.to_string())
}
