//! Building ONNX protobuf messages with `onnx-ir`'s generated types: nodes with typed
//! attributes, float and int64 initializers, graph inputs and outputs with their shapes, the
//! model around a graph. One builder serves the exporter ([`crate::export`]) and the TF.js
//! translator ([`crate::tfjs`]).
//!
//! The nested message types (`type_proto::Tensor`, `tensor_shape_proto::Dimension`,
//! `OperatorSetIdProto`...) are private to `onnx-ir`; they are filled through the re-exported
//! outer messages (pushing a default into a repeated field, oneof accessors), never named.

use std::collections::HashSet;

use onnx_ir::{
    AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};

use crate::GraphError;

/// ONNX `TensorProto.DataType` codes used here.
pub(crate) const FLOAT: i32 = 1;
pub(crate) const INT64: i32 = 7;

/// One axis of a declared tensor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dim {
    Fixed(usize),
    Named(&'static str),
}

impl Dim {
    /// A shape whose every axis is fixed.
    pub fn fixed(dims: &[usize]) -> Vec<Dim> {
        dims.iter().map(|&d| Dim::Fixed(d)).collect()
    }
}

/// A node attribute value.
pub(crate) enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Str(&'static str),
}

/// `usize` sizes as ONNX's `int64`s; a model's sizes fit (they were allocated), but the
/// conversion is checked rather than assumed.
pub(crate) fn i64s(values: &[usize]) -> Result<Vec<i64>, GraphError> {
    values.iter().map(|&v| i64_of(v)).collect()
}

pub(crate) fn i64_of(v: usize) -> Result<i64, GraphError> {
    i64::try_from(v).map_err(|_| GraphError::Export(format!("size {v} does not fit ONNX's int64")))
}

/// The graph under construction: nodes in topological order (the order they are added),
/// initializers, and the names already taken.
pub(crate) struct GraphBuilder {
    pub graph: GraphProto,
    taken: HashSet<String>,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        let graph = GraphProto {
            name: name.to_string(),
            ..Default::default()
        };
        Self {
            graph,
            taken: HashSet::new(),
        }
    }

    /// `wanted`, or `wanted_2`, `wanted_3`... if a value, node or initializer has it already.
    pub fn unique(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut n = 1;
        while self.taken.contains(&name) {
            n += 1;
            name = format!("{wanted}_{n}");
        }
        self.taken.insert(name.clone());
        name
    }

    /// Adds a node named (about) `name` computing `op` of `inputs`; returns its one output.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        self.node_n(op, name, inputs, attrs, 1).remove(0)
    }

    /// A node of `outputs` outputs (named after the node: `name`, or `name:0`, `name:1`...).
    pub fn node_n(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        outputs: usize,
    ) -> Vec<String> {
        let name = self.unique(name);
        let output: Vec<String> = if outputs == 1 {
            vec![name.clone()]
        } else {
            (0..outputs)
                .map(|i| self.unique(&format!("{name}:{i}")))
                .collect()
        };
        self.graph.node.push(NodeProto {
            name,
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: output.clone(),
            attribute: attrs.into_iter().map(|(k, v)| attribute(k, v)).collect(),
            ..Default::default()
        });
        output
    }

    /// A one-input node whose output is named exactly `output` (a graph output).
    pub fn node_into(&mut self, op: &str, input: &str, output: &str) {
        let name = self.unique(&format!("{output}/{op}"));
        self.taken.insert(output.to_string());
        self.graph.node.push(NodeProto {
            name,
            op_type: op.to_string(),
            input: vec![input.to_string()],
            output: vec![output.to_string()],
            ..Default::default()
        });
    }

    /// A float initializer; `name` must be free (the state dict's keys are unique).
    pub fn float_init(
        &mut self,
        name: &str,
        dims: &[usize],
        data: &[f32],
    ) -> Result<String, GraphError> {
        if !self.taken.insert(name.to_string()) {
            return Err(GraphError::Export(format!(
                "two tensors are named '{name}'"
            )));
        }
        self.push_floats(name, dims, data)?;
        Ok(name.to_string())
    }

    /// A float constant named after (about) `hint`.
    pub fn float_const(
        &mut self,
        hint: &str,
        dims: &[usize],
        data: &[f32],
    ) -> Result<String, GraphError> {
        let name = self.unique(hint);
        self.push_floats(&name, dims, data)?;
        Ok(name)
    }

    fn push_floats(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Result<(), GraphError> {
        let dims = tensor_dims(name, dims, data.len())?;
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.graph.initializer.push(TensorProto {
            name: name.to_string(),
            dims,
            data_type: FLOAT,
            raw_data: raw.into(),
            ..Default::default()
        });
        Ok(())
    }

    /// A one-dimensional int64 constant (shapes, pads), named after the node that uses it.
    pub fn int64_init(&mut self, name: &str, values: &[i64]) -> Result<String, GraphError> {
        self.int64_const(name, &[values.len()], values)
    }

    /// An int64 constant of shape `dims`, named after (about) `hint`.
    pub fn int64_const(
        &mut self,
        hint: &str,
        dims: &[usize],
        values: &[i64],
    ) -> Result<String, GraphError> {
        let dims = tensor_dims(hint, dims, values.len())?;
        let name = self.unique(hint);
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims,
            data_type: INT64,
            int64_data: values.to_vec(),
            ..Default::default()
        });
        Ok(name)
    }

    /// A float scalar constant (clip bounds).
    pub fn scalar_init(&mut self, name: &str, value: f32) -> String {
        let name = self.unique(name);
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            data_type: FLOAT,
            float_data: vec![value],
            ..Default::default()
        });
        name
    }

    /// A graph input of element type `elem` (`FLOAT`, `INT64`).
    pub fn input(&mut self, name: &str, elem: i32, dims: &[Dim]) -> Result<(), GraphError> {
        self.taken.insert(name.to_string());
        self.graph.input.push(value_info(name, elem, dims)?);
        Ok(())
    }

    /// A graph output of element type `elem`.
    pub fn output(&mut self, name: &str, elem: i32, dims: &[Dim]) -> Result<(), GraphError> {
        self.graph.output.push(value_info(name, elem, dims)?);
        Ok(())
    }

    /// Renames value `from` to `to` wherever a node reads or writes it.
    pub fn rename_value(&mut self, from: &str, to: &str) {
        for node in &mut self.graph.node {
            for name in node.input.iter_mut().chain(node.output.iter_mut()) {
                if name == from {
                    *name = to.to_string();
                }
            }
        }
    }
}

/// The ONNX dims of an initializer of `count` values and shape `dims`; a count that disagrees
/// with the shape would make a runtime read past the data or misplace it.
fn tensor_dims(name: &str, dims: &[usize], count: usize) -> Result<Vec<i64>, GraphError> {
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(count) {
        return Err(GraphError::Export(format!(
            "tensor '{name}' has {count} values for shape {dims:?}"
        )));
    }
    i64s(dims)
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match value {
        Attr::Int(i) => {
            a.type_ = AttributeType::INT.into();
            a.i = i;
        }
        Attr::Float(f) => {
            a.type_ = AttributeType::FLOAT.into();
            a.f = f;
        }
        Attr::Ints(v) => {
            a.type_ = AttributeType::INTS.into();
            a.ints = v;
        }
        Attr::Str(s) => {
            a.type_ = AttributeType::STRING.into();
            a.s = s.as_bytes().to_vec().into();
        }
    }
    a
}

/// A tensor value of element type `elem` and shape `dims` (a graph input or output).
fn value_info(name: &str, elem: i32, dims: &[Dim]) -> Result<ValueInfoProto, GraphError> {
    let mut info = ValueInfoProto {
        name: name.to_string(),
        ..Default::default()
    };
    let mut ty = onnx_ir::TypeProto::default();
    let tensor = ty.mut_tensor_type();
    tensor.elem_type = elem;
    let mut shape = onnx_ir::TensorShapeProto::default();
    for d in dims {
        shape.dim.push(Default::default());
        if let Some(dim) = shape.dim.last_mut() {
            match d {
                Dim::Fixed(v) => dim.set_dim_value(i64_of(*v)?),
                Dim::Named(s) => dim.set_dim_param(s.to_string()),
            }
        }
    }
    tensor.shape = Some(shape).into();
    info.type_ = Some(ty).into();
    Ok(info)
}

/// What a model says about itself besides its graph.
pub(crate) struct About<'a> {
    pub opset: i64,
    pub producer: &'a str,
    pub producer_version: &'a str,
    pub doc: String,
    pub metadata: Vec<(String, String)>,
}

/// The model around `graph`, at the oldest IR version that knows its opset (so older runtimes
/// read it).
pub(crate) fn model(graph: GraphProto, about: About) -> ModelProto {
    let ir_version = match about.opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    };
    let mut model = ModelProto {
        ir_version,
        producer_name: about.producer.into(),
        producer_version: about.producer_version.into(),
        doc_string: about.doc,
        ..Default::default()
    };
    model.opset_import.push(Default::default());
    if let Some(op) = model.opset_import.last_mut() {
        op.domain = String::new();
        op.version = about.opset;
    }
    model.graph = Some(graph).into();
    for (key, value) in about.metadata {
        model.metadata_props.push(Default::default());
        if let Some(entry) = model.metadata_props.last_mut() {
            entry.key = key;
            entry.value = value;
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_that_disagrees_with_the_shape_is_refused() {
        let mut b = GraphBuilder::new("g");
        let err = b.float_const("w", &[2, 3], &[0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "export: tensor 'w' has 5 values for shape [2, 3]"
        );
        assert!(b.int64_const("s", &[2, 2], &[1, 2, 3]).is_err());
        assert!(b.graph.initializer.is_empty());

        let s = b.int64_const("s", &[2, 2], &[1, 2, 3, 4]).unwrap();
        let t = &b.graph.initializer[0];
        assert_eq!((s.as_str(), t.dims.as_slice()), ("s", &[2i64, 2][..]));
        assert_eq!(t.int64_data, [1, 2, 3, 4]);
    }

    #[test]
    fn several_outputs_are_named_after_the_node_and_names_stay_unique() {
        let mut b = GraphBuilder::new("g");
        let outs = b.node_n("Split", "n", &["x"], vec![("axis", Attr::Int(1))], 2);
        assert_eq!(outs, ["n:0", "n:1"]);
        assert_eq!(b.node("Relu", "n", &["n:0"], vec![]), "n_2");
        b.node_into("Identity", "n_2", "y");
        let last = &b.graph.node[2];
        assert_eq!(
            (last.name.as_str(), last.output.as_slice()),
            ("y/Identity", &["y".to_string()][..])
        );
        assert_eq!(b.unique("y"), "y_2");
    }

    #[test]
    fn the_model_takes_the_oldest_ir_version_that_knows_its_opset() {
        for (opset, ir) in [(13, 7), (17, 8), (19, 9), (21, 10)] {
            let about = About {
                opset,
                producer: "p",
                producer_version: "1",
                doc: String::new(),
                metadata: vec![("k".into(), "v".into())],
            };
            let m = model(GraphBuilder::new("g").graph, about);
            assert_eq!(m.ir_version, ir, "opset {opset}");
            assert_eq!(m.opset_import[0].version, opset);
            assert_eq!(m.metadata_props[0].key, "k");
        }
    }
}
