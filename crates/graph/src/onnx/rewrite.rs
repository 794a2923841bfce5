//! Settings that ONNX defines and convnet runs but `onnx-ir` 0.22 refuses while parsing: the
//! file is parsed with those attributes taken out (or set to a value the parser accepts), and
//! what was taken out is kept here, one entry per node of that operator in file order, to be
//! put back on the parsed nodes, whose order the parser keeps.
//!
//! - AveragePool `ceil_mode` below opset 19 (ONNX has had it since opset 10; convnet's
//!   exporter writes it);
//! - Resize's `axes`, `keep_aspect_ratio_policy`, `half_pixel_symmetric`, `antialias`,
//!   `exclude_outside`, `extrapolation_value`, and a constant `roi`;
//! - Pad's `wrap` mode;
//! - BatchNormalization's `training_mode` (batch statistics, and the running ones updated);
//!
//! and what the parser reads but does not keep: Reshape's `allowzero`.

use onnx_ir::{AttributeProto, Message, ModelProto, NodeProto, TensorProto};

/// How Resize's `sizes` keep the picture's aspect ratio (opset 18).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum AspectPolicy {
    #[default]
    Stretch,
    NotLarger,
    NotSmaller,
}

/// What a Resize node says beyond what the parser keeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResizeFix {
    /// The axes that `scales`, `sizes` and `roi` name, in their order.
    pub axes: Option<Vec<i64>>,
    pub policy: AspectPolicy,
    /// `half_pixel_symmetric`, parsed as `half_pixel`.
    pub symmetric: bool,
    pub antialias: bool,
    pub exclude_outside: bool,
    /// `tf_crop_and_resize`'s value outside the region.
    pub extrapolation: f32,
    /// A constant `roi`, taken off the node's inputs (the parser refuses one).
    pub roi: Option<Vec<f32>>,
}

/// Everything taken out, per operator, in file order.
#[derive(Debug, Clone, Default)]
pub struct Fixes {
    /// One per AveragePool node: its `ceil_mode` was 1.
    pub ceil: Vec<bool>,
    /// One per Resize or Upsample node.
    pub resize: Vec<ResizeFix>,
    /// One per Pad node: its mode is `wrap` (parsed as `edge`).
    pub wrap: Vec<bool>,
    /// One per Reshape node: its `allowzero` is 1.
    pub allowzero: Vec<bool>,
    /// One per BatchNormalization node: its momentum when in training mode.
    pub training: Vec<Option<f32>>,
}

/// The model with the settings taken out (`None` when nothing needs taking out), and what
/// they were.
pub fn rewrite(mut model: ModelProto, opset: i64) -> Result<(Option<Vec<u8>>, Fixes), String> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok((None, Fixes::default()));
    };
    // A constant roi of each Resize node, read before the nodes change.
    let rois: Vec<Option<Vec<f32>>> = {
        let constants = Constants::of(&graph.initializer, &graph.node);
        graph
            .node
            .iter()
            .filter(|n| matches!(n.op_type.as_str(), "Resize" | "Upsample"))
            .map(|n| {
                n.input
                    .get(1)
                    .filter(|r| !r.is_empty() && n.op_type == "Resize")
                    .and_then(|r| constants.floats(r))
            })
            .collect()
    };
    let mut fixes = Fixes::default();
    let mut changed = false;
    let mut resize_nodes = Vec::new();
    for (i, node) in graph.node.iter_mut().enumerate() {
        match node.op_type.as_str() {
            "AveragePool" => {
                let ceil = opset < 19 && take(node, "ceil_mode").is_some_and(|a| a.i != 0);
                changed |= ceil;
                fixes.ceil.push(ceil);
            }
            "Resize" | "Upsample" => resize_nodes.push(i),
            "BatchNormalization" => {
                let training = take(node, "training_mode").is_some_and(|a| a.i != 0);
                changed |= training;
                // ONNX's default momentum; the parser's is 0.
                let momentum = attr(node, "momentum").map_or(0.9, |a| a.f);
                fixes.training.push(training.then_some(momentum));
            }
            "Reshape" => fixes
                .allowzero
                .push(attr(node, "allowzero").is_some_and(|a| a.i != 0)),
            "Pad" => {
                let wrap = attr(node, "mode").is_some_and(|a| a.s[..] == *b"wrap");
                if wrap {
                    set_string(node, "mode", "edge");
                    changed = true;
                }
                fixes.wrap.push(wrap);
            }
            _ => {}
        }
    }
    for (i, roi) in resize_nodes.into_iter().zip(rois) {
        let node = &mut graph.node[i];
        let mut fix = ResizeFix::default();
        if let Some(a) = take(node, "axes") {
            fix.axes = Some(a.ints);
        }
        if let Some(a) = take(node, "keep_aspect_ratio_policy") {
            fix.policy = match &a.s[..] {
                b"stretch" => AspectPolicy::Stretch,
                b"not_larger" => AspectPolicy::NotLarger,
                b"not_smaller" => AspectPolicy::NotSmaller,
                other => {
                    return Err(format!(
                        "Resize node {:?}: keep_aspect_ratio_policy {:?} is not one of stretch, not_larger, not_smaller",
                        node.name,
                        String::from_utf8_lossy(other)
                    ));
                }
            };
        }
        if attr(node, "coordinate_transformation_mode")
            .is_some_and(|a| a.s[..] == *b"half_pixel_symmetric")
        {
            set_string(node, "coordinate_transformation_mode", "half_pixel");
            fix.symmetric = true;
        }
        fix.antialias = take(node, "antialias").is_some_and(|a| a.i != 0);
        fix.exclude_outside = take(node, "exclude_outside").is_some_and(|a| a.i != 0);
        fix.extrapolation = take(node, "extrapolation_value").map_or(0.0, |a| a.f);
        if let Some(roi) = roi.filter(|r| !r.is_empty()) {
            node.input[1] = String::new();
            fix.roi = Some(roi);
        }
        changed |= fix != ResizeFix::default();
        fixes.resize.push(fix);
    }
    if !changed {
        return Ok((None, fixes));
    }
    // Rewritten bytes have no folder to find external data in.
    if graph
        .initializer
        .iter()
        .any(|t| !t.external_data.is_empty())
    {
        return Err(
            "this model keeps its weights in external data and needs settings the ONNX parser refuses (Resize axes, aspect policy or antialias, wrap padding, or average pools in ceil mode below opset 19): not supported together".into(),
        );
    }
    Ok((
        Some(model.write_to_bytes().map_err(|e| e.to_string())?),
        fixes,
    ))
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// Removes the attribute `name` from `node`, returning it.
fn take(node: &mut NodeProto, name: &str) -> Option<AttributeProto> {
    let i = node.attribute.iter().position(|a| a.name == name)?;
    Some(node.attribute.remove(i))
}

fn set_string(node: &mut NodeProto, name: &str, value: &str) {
    if let Some(a) = node.attribute.iter_mut().find(|a| a.name == name) {
        a.s = value.as_bytes().to_vec().into();
    }
}

/// The graph's constant tensors by name: initializers and `Constant` nodes' `value`.
struct Constants<'a>(Vec<(&'a str, &'a TensorProto)>);

impl<'a> Constants<'a> {
    fn of(initializers: &'a [TensorProto], nodes: &'a [NodeProto]) -> Self {
        let mut all: Vec<(&str, &TensorProto)> =
            initializers.iter().map(|t| (t.name.as_str(), t)).collect();
        for n in nodes.iter().filter(|n| n.op_type == "Constant") {
            if let (Some(out), Some(t)) = (
                n.output.first(),
                attr(n, "value").and_then(|a| a.t.as_ref()),
            ) {
                all.push((out.as_str(), t));
            }
        }
        Constants(all)
    }

    /// A constant float tensor's values (float32 or float64, raw or typed).
    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        let (_, t) = self.0.iter().find(|(n, _)| *n == name)?;
        match t.data_type {
            1 if !t.raw_data.is_empty() => Some(
                t.raw_data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            1 => Some(t.float_data.clone()),
            11 if !t.raw_data.is_empty() => Some(
                t.raw_data
                    .chunks_exact(8)
                    .map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                    })
                    .collect(),
            ),
            11 => Some(t.double_data.iter().map(|&v| v as f32).collect()),
            _ => None,
        }
    }
}

/// What one parsed node needs beyond its parsed settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    Resize(ResizeFix),
    /// Pad in `wrap` mode.
    Wrap,
    /// Reshape with `allowzero`: a 0 in the shape is an empty axis, not the input's.
    AllowZero,
    /// BatchNormalization in training mode, with its momentum.
    Training(f32),
}

impl Fixes {
    /// Puts the fixes back on the parsed graph: AveragePool's `ceil_mode` on its settings,
    /// the rest as one entry per node (by index; `None` for nodes without any).
    pub fn apply(&self, nodes: &mut [onnx_ir::Node]) -> Result<Vec<Option<Fix>>, String> {
        use onnx_ir::Node;
        let (mut ceil, mut resize, mut wrap, mut allowzero, mut training) = (
            self.ceil.iter(),
            self.resize.iter(),
            self.wrap.iter(),
            self.allowzero.iter(),
            self.training.iter(),
        );
        let mut out = Vec::with_capacity(nodes.len());
        for node in nodes.iter_mut() {
            let fix = match node {
                Node::AveragePool1d(n) => {
                    n.config.ceil_mode |= ceil.next().copied().unwrap_or(false);
                    None
                }
                Node::AveragePool2d(n) => {
                    n.config.ceil_mode |= ceil.next().copied().unwrap_or(false);
                    None
                }
                Node::AveragePool3d(n) => {
                    n.config.ceil_mode |= ceil.next().copied().unwrap_or(false);
                    None
                }
                Node::Resize(_) | Node::Upsample(_) => resize
                    .next()
                    .filter(|f| **f != ResizeFix::default())
                    .cloned()
                    .map(Fix::Resize),
                Node::Pad(_) => wrap.next().copied().unwrap_or(false).then_some(Fix::Wrap),
                Node::BatchNormalization(_) => {
                    training.next().copied().flatten().map(Fix::Training)
                }
                Node::Reshape(_) => allowzero
                    .next()
                    .copied()
                    .unwrap_or(false)
                    .then_some(Fix::AllowZero),
                _ => None,
            };
            out.push(fix);
        }
        if resize.next().is_some()
            || wrap.next().is_some()
            || ceil.next().is_some()
            || training.next().is_some()
        {
            return Err(
                "the parser dropped a Resize, Pad, AveragePool or BatchNormalization node whose settings it was given apart".into(),
            );
        }
        // Reshapes of constants are folded away by the parser; keep `allowzero` only where
        // every Reshape survived, and refuse a graph where a surviving one would be ambiguous.
        if allowzero.next().is_some() && self.allowzero.contains(&true) {
            return Err(
                "Reshape with allowzero=1 among Reshape nodes the parser folded: not supported"
                    .into(),
            );
        }
        Ok(out)
    }
}
