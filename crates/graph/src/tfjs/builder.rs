//! The ONNX graph a translation writes: nodes in the order they are added (the translation
//! walks the TensorFlow graph in dependency order), initializers, unique names.
//!
//! `export`'s builder writes float weights for convnet's own layers; this one also needs
//! string attributes (padding modes, resize modes), int64 and typed initializers of any shape,
//! and several outputs per node, so it is kept apart rather than bent to both uses.

use std::collections::HashSet;

use onnx_ir::{
    AttributeProto, AttributeType, GraphProto, Message, ModelProto, NodeProto, TensorProto,
    ValueInfoProto,
};

use crate::GraphError;

/// ONNX `TensorProto.DataType` codes used here.
pub const FLOAT: i32 = 1;
pub const INT64: i32 = 7;

/// The opset the translation writes: axes are attributes of ReduceMean/Max/Min and inputs of
/// ReduceSum, Squeeze, Unsqueeze and Split; Resize takes `sizes` as its fourth input.
pub const OPSET: i64 = 17;

/// A node attribute value.
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Str(&'static str),
}

pub struct Builder {
    graph: GraphProto,
    taken: HashSet<String>,
}

impl Builder {
    pub fn new(name: &str) -> Self {
        Self {
            graph: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
            taken: HashSet::new(),
        }
    }

    /// `wanted`, or `wanted_2`, `wanted_3`... when taken.
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

    /// A node named about `name` computing `op`; returns its `outputs` output names.
    pub fn node_n(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        outputs: usize,
    ) -> Vec<String> {
        let name = self.unique(name);
        let outs: Vec<String> = if outputs == 1 {
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
            output: outs.clone(),
            attribute: attrs.into_iter().map(|(k, v)| attribute(k, v)).collect(),
            ..Default::default()
        });
        outs
    }

    /// A one-output node; returns its output's name.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        self.node_n(op, name, inputs, attrs, 1).remove(0)
    }

    /// A node whose one output is named exactly `output` (a graph output).
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

    /// A float initializer of shape `dims`.
    pub fn floats(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.unique(name);
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            raw_data: data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
            ..Default::default()
        });
        name
    }

    /// An int64 initializer of shape `dims`.
    pub fn ints(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        let name = self.unique(name);
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: INT64,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name
    }

    /// A one-dimensional int64 initializer.
    pub fn int_list(&mut self, name: &str, data: &[i64]) -> String {
        self.ints(name, &[data.len()], data)
    }

    /// A float scalar initializer.
    pub fn scalar(&mut self, name: &str, value: f32) -> String {
        self.floats(name, &[], &[value])
    }

    pub fn input(&mut self, name: &str, elem: i32, dims: &[usize]) {
        self.taken.insert(name.to_string());
        self.graph.input.push(value_info(name, elem, dims));
    }

    pub fn output(&mut self, name: &str, elem: i32, dims: &[usize]) {
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// The model around the graph, with `metadata` as its `metadata_props`.
    pub fn finish(
        self,
        producer: &str,
        metadata: &[(String, String)],
    ) -> Result<Vec<u8>, GraphError> {
        let mut model = ModelProto {
            ir_version: 8,
            producer_name: producer.to_string(),
            ..Default::default()
        };
        model.opset_import.push(Default::default());
        if let Some(op) = model.opset_import.last_mut() {
            op.domain = String::new();
            op.version = OPSET;
        }
        for (key, value) in metadata {
            model.metadata_props.push(Default::default());
            if let Some(entry) = model.metadata_props.last_mut() {
                entry.key = key.clone();
                entry.value = value.clone();
            }
        }
        model.graph = Some(self.graph).into();
        model
            .write_to_bytes()
            .map_err(|e| GraphError::invalid(format!("cannot serialise the translated model: {e}")))
    }
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

fn value_info(name: &str, elem: i32, dims: &[usize]) -> ValueInfoProto {
    let mut info = ValueInfoProto {
        name: name.to_string(),
        ..Default::default()
    };
    let mut ty = onnx_ir::TypeProto::default();
    let tensor = ty.mut_tensor_type();
    tensor.elem_type = elem;
    let mut shape = onnx_ir::TensorShapeProto::default();
    for &d in dims {
        shape.dim.push(Default::default());
        if let Some(dim) = shape.dim.last_mut() {
            dim.set_dim_value(d as i64);
        }
    }
    tensor.shape = Some(shape).into();
    info.type_ = Some(ty).into();
    info
}
