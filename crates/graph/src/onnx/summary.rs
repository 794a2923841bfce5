//! A Keras-style table of an ONNX graph: node, operator, output shapes, parameters (the
//! elements of the node's constant inputs: weights, biases, batch-norm statistics).

use convnet_layers::summary::thousands;
use serde::Serialize;

use super::{OnnxModel, TensorInfo};

#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub name: String,
    pub op: String,
    pub outputs: Vec<String>,
    pub params: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphSummary {
    pub file: String,
    pub producer: String,
    pub opset: i64,
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    pub nodes: Vec<NodeRow>,
    pub total_params: u64,
    pub metadata: Vec<(String, String)>,
}

/// Operators whose constant inputs are sizes, indices or bounds rather than learned weights.
const SHAPE_OPS: &[&str] = &[
    "Resize",
    "Upsample",
    "Reshape",
    "Slice",
    "Pad",
    "Expand",
    "Clip",
    "Split",
    "Squeeze",
    "Unsqueeze",
    "Gather",
    "ConstantOfShape",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Constant",
    "Tile",
];

/// The elements of a node's constant inputs, unless they are sizes or indices.
pub fn node_params(n: &onnx_ir::Node) -> u64 {
    if SHAPE_OPS.contains(&n.node_type().to_string().as_str()) {
        return 0;
    }
    n.inputs()
        .iter()
        .filter(|a| a.is_static() || a.is_constant())
        .filter_map(|a| a.ty.static_shape_known())
        .map(|s| s.iter().product::<usize>() as u64)
        .sum()
}

fn io(list: &[TensorInfo]) -> Vec<(String, String)> {
    list.iter()
        .map(|t| (t.name.clone(), format!("{:?}{}", t.dtype, t.shape_text())))
        .collect()
}

pub fn summarize(model: &OnnxModel, traced: Option<Vec<Vec<Vec<usize>>>>) -> GraphSummary {
    let nodes: Vec<NodeRow> = model
        .graph()
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeRow {
            name: n.name().to_string(),
            op: n.node_type().to_string(),
            outputs: match traced.as_ref().and_then(|t| t.get(i)) {
                Some(shapes) if !shapes.is_empty() => {
                    shapes.iter().map(|d| format!("{d:?}")).collect()
                }
                _ => n
                    .outputs()
                    .iter()
                    .map(|o| TensorInfo::of(o).shape_text())
                    .collect(),
            },
            params: node_params(n),
        })
        .collect();
    GraphSummary {
        file: model.path().display().to_string(),
        producer: model.producer().to_string(),
        opset: model.opset(),
        inputs: io(model.inputs()),
        outputs: io(model.outputs()),
        total_params: nodes.iter().map(|n| n.params).sum(),
        nodes,
        metadata: model.metadata().to_vec(),
    }
}

impl std::fmt::Display for GraphSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Model: {} (ONNX opset {}{})",
            self.file,
            self.opset,
            if self.producer.is_empty() {
                String::new()
            } else {
                format!(", from {}", self.producer)
            }
        )?;
        let rows: Vec<[String; 3]> = self
            .nodes
            .iter()
            .map(|n| {
                [
                    format!(
                        "{} ({})",
                        if n.name.is_empty() { "-" } else { &n.name },
                        n.op
                    ),
                    n.outputs.join(" "),
                    thousands(n.params),
                ]
            })
            .collect();
        let head = [
            "Node (op)".to_string(),
            "Output shape".to_string(),
            "Param #".to_string(),
        ];
        let w0 = rows
            .iter()
            .map(|r| r[0].len())
            .chain([head[0].len()])
            .max()
            .unwrap_or(0);
        let w1 = rows
            .iter()
            .map(|r| r[1].len())
            .chain([head[1].len()])
            .max()
            .unwrap_or(0);
        let w2 = rows
            .iter()
            .map(|r| r[2].len())
            .chain([head[2].len()])
            .max()
            .unwrap_or(0);
        let rule = "─".repeat(w0 + w1 + w2 + 4);
        for (name, ty) in &self.inputs {
            writeln!(f, "input  {name}: {ty}")?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "{:<w0$}  {:<w1$}  {:>w2$}", head[0], head[1], head[2])?;
        writeln!(f, "{rule}")?;
        for r in &rows {
            writeln!(f, "{:<w0$}  {:<w1$}  {:>w2$}", r[0], r[1], r[2])?;
        }
        writeln!(f, "{rule}")?;
        for (name, ty) in &self.outputs {
            writeln!(f, "output {name}: {ty}")?;
        }
        writeln!(f, "Nodes: {}", self.nodes.len())?;
        write!(f, "Total params: {}", thousands(self.total_params))?;
        for (k, v) in &self.metadata {
            write!(f, "\n{k}: {v}")?;
        }
        Ok(())
    }
}
