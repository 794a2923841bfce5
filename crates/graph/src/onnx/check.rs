//! The file checked whole before `onnx-ir` builds anything from it: protobuf framing, opsets,
//! every edge defined before it is read (no cycles, no missing initializers), initializer and
//! external-data sizes. Each failure is one line naming the thing that is wrong.

use std::collections::HashSet;
use std::path::Path;

use onnx_ir::{Message, ModelProto, TensorProto};

use crate::GraphError;

/// Opsets of the default domain that `onnx-ir` parses.
pub const OPSETS: std::ops::RangeInclusive<i64> = 1..=24;

/// What the raw protobuf says that `onnx-ir`'s graph does not keep.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub opset: i64,
    pub producer: String,
    pub metadata: Vec<(String, String)>,
    /// Graph inputs that are not initializers, in order.
    pub inputs: Vec<String>,
    /// Graph outputs, in order.
    pub outputs: Vec<String>,
    /// Every node as the file names it: `(name, op_type, domain)`.
    pub nodes: Vec<(String, String, String)>,
    /// Nodes whose settings convnet does not run, as `Op (what) (node "name")`.
    pub refused: Vec<String>,
}

/// Checks `bytes` (the whole file at `path`, whose folder holds any external data); the parsed
/// model comes back with what it says, so nothing parses the file twice.
pub fn check(bytes: &[u8], path: &Path) -> Result<(Header, ModelProto), GraphError> {
    let file = |message: String| GraphError::File {
        path: path.display().to_string(),
        message,
    };
    if bytes.is_empty() {
        return Err(file("the file is empty".into()));
    }
    let model = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| file(format!("not an ONNX model (protobuf: {e})")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| file("the model has no graph (truncated or not an ONNX file?)".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| file("opset_import names no version of the default ONNX domain".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(file(format!(
            "opset {opset}: convnet reads ONNX opsets {} to {}",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    if graph.node.is_empty() {
        return Err(file("the graph has no nodes".into()));
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut defined: HashSet<&str> = HashSet::new();
    for init in &graph.initializer {
        check_tensor(init, folder)
            .map_err(|m| file(format!("initializer {:?}: {m}", init.name)))?;
        defined.insert(&init.name);
    }
    let initializers: HashSet<&str> = defined.clone();
    let mut inputs = Vec::new();
    for input in &graph.input {
        if !initializers.contains(input.name.as_str()) {
            inputs.push(input.name.clone());
        }
        defined.insert(&input.name);
    }
    // Where each edge is produced, to tell a cycle from a missing tensor.
    let producers: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    for (i, node) in graph.node.iter().enumerate() {
        let name = if node.name.is_empty() {
            format!("#{i} ({})", node.op_type)
        } else {
            format!("{:?} ({})", node.name, node.op_type)
        };
        for attr in &node.attribute {
            if let Some(t) = attr.t.as_ref() {
                check_tensor(t, folder).map_err(|m| file(format!("node {name}: {m}")))?;
            }
        }
        for input in &node.input {
            if input.is_empty() || defined.contains(input.as_str()) {
                continue;
            }
            return Err(file(if producers.contains(input.as_str()) {
                format!(
                    "node {name} reads {input:?} before any node produces it (a cycle, or nodes out of order)"
                )
            } else {
                format!(
                    "node {name} reads {input:?}, which no graph input, initializer or node provides (a missing initializer?)"
                )
            }));
        }
        for output in &node.output {
            defined.insert(output);
        }
    }
    for output in &graph.output {
        if !defined.contains(output.name.as_str()) {
            return Err(file(format!(
                "graph output {:?} is produced by no node",
                output.name
            )));
        }
    }
    let header = Header {
        opset,
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        metadata: model
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        inputs,
        outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
        nodes: graph
            .node
            .iter()
            .map(|n| (n.name.clone(), n.op_type.clone(), n.domain.clone()))
            .collect(),
        refused: graph
            .node
            .iter()
            .filter(|n| n.op_type == "Dropout" && training_mode(n, &graph.initializer))
            .map(|n| format!("Dropout (training_mode) (node {:?})", n.name))
            .collect(),
    };
    Ok((header, model))
}

/// Whether a Dropout node may run in training mode: its third input is anything but an
/// initializer holding `false` (the parser keeps no trace of that input).
fn training_mode(node: &onnx_ir::NodeProto, initializers: &[TensorProto]) -> bool {
    let Some(flag) = node.input.get(2).filter(|f| !f.is_empty()) else {
        return false;
    };
    match initializers.iter().find(|t| &t.name == flag) {
        Some(t) => t.raw_data.iter().any(|&b| b != 0) || t.int32_data.iter().any(|&v| v != 0),
        None => true,
    }
}

/// Bytes per element of an ONNX `TensorProto.DataType`, for the types convnet reads.
fn element_size(data_type: i32) -> Option<u64> {
    Some(match data_type {
        1 | 6 | 12 => 4,      // float, int32, uint32
        2 | 3 | 9 => 1,       // uint8, int8, bool
        4 | 5 | 10 | 16 => 2, // uint16, int16, float16, bfloat16
        7 | 11 | 13 => 8,     // int64, double, uint64
        _ => return None,
    })
}

/// The declared element count fits the stored data, inline or external.
fn check_tensor(t: &TensorProto, folder: &Path) -> Result<(), String> {
    let mut count: u64 = 1;
    for &d in &t.dims {
        let d = u64::try_from(d).map_err(|_| format!("negative dimension {d} in {:?}", t.dims))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| format!("dimensions {:?} overflow", t.dims))?;
    }
    let Some(size) = element_size(t.data_type) else {
        // Strings and other types no CNN weight uses: let the parser decide.
        return Ok(());
    };
    let bytes = count
        .checked_mul(size)
        .ok_or_else(|| format!("dimensions {:?} overflow", t.dims))?;
    if t.data_location.value() == 1 || !t.external_data.is_empty() {
        let field = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        };
        let location = field("location").ok_or("external data without a location")?;
        let offset: u64 = field("offset")
            .map_or(Ok(0), |v| v.parse())
            .map_err(|_| "bad offset")?;
        let length: u64 = field("length")
            .map_or(Ok(bytes), |v| v.parse())
            .map_err(|_| "bad length")?;
        if length != bytes {
            return Err(format!(
                "external data length {length} bytes, but {:?} needs {bytes}",
                t.dims
            ));
        }
        let rel = Path::new(&location);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "external data location {location:?} must be a file beside the model"
            ));
        }
        let file = folder.join(rel);
        let have = std::fs::metadata(&file)
            .map_err(|e| format!("external data file {}: {e}", file.display()))?
            .len();
        let end = offset
            .checked_add(length)
            .ok_or("external data offset overflows")?;
        if have < end {
            return Err(format!(
                "external data file {} holds {have} bytes, shorter than the {end} declared",
                file.display()
            ));
        }
        return Ok(());
    }
    if !t.raw_data.is_empty() {
        if t.raw_data.len() as u64 != bytes {
            return Err(format!(
                "declares {:?} ({bytes} bytes) but holds {} bytes",
                t.dims,
                t.raw_data.len()
            ));
        }
        return Ok(());
    }
    // Typed fields hold one element per entry (float16 and bfloat16 one per int32).
    let stored = match t.data_type {
        1 => t.float_data.len(),
        11 => t.double_data.len(),
        7 => t.int64_data.len(),
        13 | 12 => t.uint64_data.len(),
        _ => t.int32_data.len(),
    } as u64;
    if stored != count {
        return Err(format!(
            "declares {:?} ({count} values) but holds {stored}",
            t.dims
        ));
    }
    Ok(())
}
