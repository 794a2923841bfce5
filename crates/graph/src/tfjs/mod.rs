//! TensorFlow.js graph models (`model.json` with format `graph-model` and its `.bin` weight
//! shards) translated to an ONNX model in memory and run on convnet's ONNX executor.
//!
//! [`translate`] reads the JSON and the weights (float32, float16, uint8/uint16 quantised:
//! [`convnet_weights::read_raw`] checks the shards), orders the nodes the outputs need
//! (a cycle or a dangling input is refused), names every op without a translation (all of
//! them, with their nodes) before writing anything, folds arithmetic on constants, and writes
//! ONNX nodes with NHWC → NCHW handled by [`layout`]. [`open`] hands the bytes to
//! [`OnnxModel::from_bytes`].
//!
//! Image inputs (a rank-4 float placeholder whose last axis holds at most 4 channels) are
//! exposed channels-first, `[N, C, H, W]`, as every convnet image model takes them, and the
//! rank-4 outputs of such a graph likewise; the model's `layout` metadata says so.

mod consts;
mod graph_json;
mod layout;
mod ops;
mod order;
mod spatial;
mod values;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;

use crate::proto::{self, About, Dim, FLOAT, GraphBuilder, INT64};
use crate::{GraphError, OnnxModel};
use consts::Const;
use graph_json::{ModelJson, NodeDef, split_ref};
use layout::{IDENTITY, TO_NCHW};
use onnx_ir::Message;
use values::{Tx, Val};

/// The opset the translation writes: axes are attributes of ReduceMean/Max/Min and inputs of
/// ReduceSum, Squeeze, Unsqueeze and Split; Resize takes `sizes` as its fourth input.
const OPSET: i64 = 17;

/// The largest `model.json` read (the weights live in the shards; the JSON holds the graph).
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// A translated graph model.
pub struct Translation {
    /// The ONNX model's bytes.
    pub onnx: Vec<u8>,
    /// The graph's input and output names (the signature's names where it has one).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Signature outputs left out because they need ops with no translation, each with why.
    pub left_out: Vec<String>,
}

/// Whether `path` is a TF.js graph model: a JSON file whose `format` is `graph-model` or which
/// has a `modelTopology` with nodes (face-api's weight manifests are JSON arrays).
pub fn is_graph_model(path: &Path) -> bool {
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return false;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.len() > MAX_JSON_BYTES {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let head: String = text.chars().take(4096).collect();
    head.trim_start().starts_with('{')
        && (head.contains("\"graph-model\"") || text.contains("\"modelTopology\""))
}

/// What a translation keeps besides the graph.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The graph's outputs (`node`, `node:index` or signature names); default: the
    /// signature's, those needing ops with no translation left out while others remain
    /// (named in the `left_out` metadata). With none left, every untranslated op is named.
    pub outputs: Option<Vec<String>>,
    /// More `metadata_props` for the ONNX model (an input recipe, class names).
    pub metadata: Vec<(String, String)>,
}

/// Translates and opens the model at `path` (its shards beside it) with the signature's
/// outputs.
pub fn open(path: impl AsRef<Path>) -> Result<OnnxModel, GraphError> {
    open_with(path, &Options::default())
}

/// As [`open`], with `options`.
pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<OnnxModel, GraphError> {
    let path = path.as_ref();
    let t = translate(path, options)?;
    OnnxModel::from_bytes(t.onnx, path)
}

fn file_error(path: &Path) -> impl Fn(String) -> GraphError + '_ {
    move |message| GraphError::File {
        path: path.display().to_string(),
        message,
    }
}

pub fn translate(path: &Path, options: &Options) -> Result<Translation, GraphError> {
    let err = file_error(path);
    let outputs = options.outputs.as_deref();
    let size = std::fs::metadata(path)
        .map_err(|e| err(e.to_string()))?
        .len();
    if size > MAX_JSON_BYTES {
        return Err(err(format!(
            "{size} bytes: larger than the {MAX_JSON_BYTES} a model.json may be"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let model: ModelJson =
        serde_json::from_str(&text).map_err(|e| err(format!("not a TF.js graph model ({e})")))?;
    drop(text);
    if let Some(format) = model.format.as_deref().filter(|f| *f != "graph-model") {
        return Err(err(format!(
            "format {format:?}: convnet translates TF.js graph models (\"graph-model\")"
        )));
    }
    let nodes = &model.model_topology.node;
    if nodes.is_empty() {
        return Err(err("the graph has no nodes".into()));
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if index.insert(n.name.as_str(), i).is_some() {
            return Err(err(format!("two nodes are named {:?}", n.name)));
        }
    }
    let weights = read_weights(path, &model, &index)?;
    let (inputs, all_outputs) = endpoints(&model, nodes, &index).map_err(&err)?;
    let chosen: Vec<(String, String)> = match outputs {
        Some(list) => list
            .iter()
            .map(|o| {
                all_outputs
                    .iter()
                    .find(|(name, r)| name == o || r == o)
                    .cloned()
                    .or_else(|| {
                        index
                            .contains_key(split_ref(o).0)
                            .then(|| (o.clone(), o.clone()))
                    })
                    .ok_or_else(|| err(format!("no node or signature output is named {o:?}")))
            })
            .collect::<Result<_, _>>()?,
        None => all_outputs.clone(),
    };
    // What each output needs, and which of it has no translation.
    let constant = order::constness(nodes, &index).map_err(&err)?;
    let mut blocked: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut kept = Vec::new();
    for (name, reference) in &chosen {
        let needed = order::order(nodes, &index, &[reference.as_str()]).map_err(&err)?;
        let missing: Vec<String> = needed
            .iter()
            .map(|&i| &nodes[i])
            .filter(|n| !constant[index[n.name.as_str()]] && !translatable(&n.op))
            .map(|n| format!("{} (node {:?})", n.op, n.name))
            .collect();
        if missing.is_empty() {
            kept.push((name.clone(), reference.clone()));
        } else {
            blocked.push((name.clone(), reference.clone(), missing));
        }
    }
    if !blocked.is_empty() && (outputs.is_some() || kept.is_empty()) {
        let all: BTreeSet<String> = blocked
            .iter()
            .flat_map(|(_, _, m)| m.iter().cloned())
            .collect();
        return Err(GraphError::Unsupported {
            count: all.len(),
            list: all.into_iter().collect::<Vec<_>>().join("; "),
        });
    }
    let left_out: Vec<String> = blocked
        .iter()
        .map(|(name, _, missing)| {
            let ops: BTreeSet<&str> = missing.iter().filter_map(|m| m.split(' ').next()).collect();
            format!(
                "{name} (needs {})",
                ops.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    let refs: Vec<&str> = kept.iter().map(|(_, r)| r.as_str()).collect();
    let needed = order::order(nodes, &index, &refs).map_err(&err)?;

    let mut b = GraphBuilder::new(
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .as_deref()
            .unwrap_or("tfjs"),
    );
    // Graph input and output names are taken before any node is named.
    for (name, _) in inputs.iter().chain(kept.iter()) {
        b.unique(name);
    }
    let mut tx = Tx::new(b);
    let mut vals: HashMap<usize, Vec<Val>> = HashMap::new();
    let mut channels_first = false;
    let mut input_names = Vec::new();
    for &i in &needed {
        let node = &nodes[i];
        let at = |message: String| GraphError::Node {
            node: node.name.clone(),
            op: node.op.clone(),
            message,
        };
        let outs = if node.op == "Placeholder" {
            let name = inputs
                .iter()
                .find(|(_, r)| split_ref(r).0 == node.name)
                .map_or(node.name.clone(), |(n, _)| n.clone());
            let (val, nchw) = placeholder(&mut tx, node, &name).map_err(at)?;
            channels_first |= nchw;
            input_names.push(name);
            vec![val]
        } else if node.op == "Const" {
            let c = weights
                .get(node.name.as_str())
                .ok_or_else(|| at("a constant with no values in the weights manifest".into()))?;
            vec![Val::Const(Rc::clone(c), node.name.clone())]
        } else {
            let ins: Vec<Val> = node
                .data_inputs()
                .map(|r| {
                    let (src, k) = split_ref(r);
                    vals.get(&index[src])
                        .and_then(|v| v.get(k))
                        .cloned()
                        .ok_or_else(|| {
                            at(format!(
                                "reads output {k} of {src:?}, which has no such output"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?;
            let folded = if constant[i] {
                let cs: Vec<&Const> = ins.iter().filter_map(Val::as_const).collect();
                consts::fold(&node.op, &cs, node)
            } else {
                None
            };
            match folded {
                Some(result) => vec![Val::Const(Rc::new(result.map_err(at)?), node.name.clone())],
                None => ops::translate(&mut tx, node, &ins).map_err(at)?,
            }
        };
        vals.insert(i, outs);
    }
    let mut output_names = Vec::new();
    for (name, reference) in &kept {
        let (src, k) = split_ref(reference);
        let v = vals
            .get(&index[src])
            .and_then(|v| v.get(k))
            .cloned()
            .ok_or_else(|| err(format!("output {reference:?} names no value")))?;
        let image = channels_first && v.shape().len() == 4;
        let perm = if image { TO_NCHW } else { IDENTITY };
        let stored = tx.stored(&v, perm).map_err(&err)?;
        tx.b.node_into("Identity", &stored, name);
        let dims = if image {
            layout::permute(TO_NCHW, v.shape())
        } else {
            v.shape().to_vec()
        };
        tx.b.output(name, v.elem(), &Dim::fixed(&dims))?;
        output_names.push(name.clone());
    }
    let mut metadata = vec![(
        "source".to_string(),
        format!(
            "TF.js graph model{}",
            model
                .generated_by
                .as_deref()
                .map(|g| format!(" from {g}"))
                .unwrap_or_default()
        ),
    )];
    if channels_first {
        metadata.push((
            "layout".into(),
            "NCHW: the TF.js graph's NHWC image input and rank-4 outputs, channels first".into(),
        ));
    }
    if !left_out.is_empty() {
        metadata.push(("left_out".into(), left_out.join("; ")));
    }
    metadata.extend(options.metadata.iter().cloned());
    let producer = model.converted_by.as_deref().unwrap_or("tfjs");
    let onnx = proto::model(
        tx.b.graph,
        About {
            opset: OPSET,
            producer: &format!("convnet tfjs ({producer})"),
            producer_version: env!("CARGO_PKG_VERSION"),
            doc: String::new(),
            metadata,
        },
    )
    .write_to_bytes()
    .map_err(|e| GraphError::invalid(format!("cannot serialise the translated model: {e}")))?;
    Ok(Translation {
        onnx,
        inputs: input_names,
        outputs: output_names,
        left_out,
    })
}

fn translatable(op: &str) -> bool {
    matches!(op, "Placeholder" | "Const") || ops::TRANSLATED.contains(&op)
}

/// The graph input for `node`; `true` when it is an NHWC image exposed channels-first.
fn placeholder(tx: &mut Tx, node: &NodeDef, name: &str) -> Result<(Val, bool), String> {
    let shape = node
        .shape()
        .ok_or("a placeholder of unknown rank: convnet translates fixed-size inputs")?;
    // A free batch axis is taken as 1; other free axes cannot be sized.
    let dims: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, d)| d.or((i == 0).then_some(1)))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            format!("input shape {shape:?} has free axes; convnet translates fixed-size inputs")
        })?;
    let int = !matches!(node.dtype("dtype").as_deref(), None | Some("DT_FLOAT"));
    let elem = if int { INT64 } else { FLOAT };
    let nhwc = !int && dims.len() == 4 && dims[3] <= 4 && dims[1] > 4;
    if nhwc {
        tx.b.input(name, elem, &Dim::fixed(&layout::permute(TO_NCHW, &dims)))
            .map_err(|e| e.to_string())?;
        let v = Tx::out(name.to_string(), dims, TO_NCHW, false);
        return Ok((v, true));
    }
    tx.b.input(name, elem, &Dim::fixed(&dims))
        .map_err(|e| e.to_string())?;
    Ok((Tx::out(name.to_string(), dims, IDENTITY, int), false))
}

/// The inputs and outputs, as `(name, node reference)`: the signature's, else the
/// placeholders and the nodes nothing reads.
#[allow(clippy::type_complexity)]
fn endpoints(
    model: &ModelJson,
    nodes: &[NodeDef],
    index: &HashMap<&str, usize>,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), String> {
    let check = |(key, r): (String, String)| -> Result<(String, String), String> {
        if index.contains_key(split_ref(&r).0) {
            Ok((key, r))
        } else {
            Err(format!("the signature names {r:?}, which no node is"))
        }
    };
    let sig = model.signature.as_ref();
    let inputs: Vec<(String, String)> = match sig.filter(|s| !s.inputs.is_empty()) {
        Some(s) => s
            .inputs
            .iter()
            .map(|(k, e)| check((k.clone(), e.name.clone())))
            .collect::<Result<_, _>>()?,
        None => nodes
            .iter()
            .filter(|n| n.op == "Placeholder")
            .map(|n| (n.name.clone(), n.name.clone()))
            .collect(),
    };
    let outputs: Vec<(String, String)> = match sig.filter(|s| !s.outputs.is_empty()) {
        Some(s) => s
            .outputs
            .iter()
            .map(|(k, e)| check((k.clone(), e.name.clone())))
            .collect::<Result<_, _>>()?,
        None => {
            let read: BTreeSet<&str> = nodes
                .iter()
                .flat_map(|n| n.data_inputs().map(|r| split_ref(r).0))
                .collect();
            nodes
                .iter()
                .filter(|n| !matches!(n.op.as_str(), "Const" | "Placeholder" | "NoOp"))
                .filter(|n| !read.contains(n.name.as_str()))
                .map(|n| (n.name.clone(), n.name.clone()))
                .collect()
        }
    };
    if outputs.is_empty() {
        return Err("the graph has no outputs".into());
    }
    Ok((inputs, outputs))
}

/// The weights, by name, each checked against the shape its Const node declares.
fn read_weights(
    path: &Path,
    model: &ModelJson,
    index: &HashMap<&str, usize>,
) -> Result<HashMap<String, Rc<Const>>, GraphError> {
    let err = file_error(path);
    let manifest =
        serde_json::to_string(&model.weights_manifest).map_err(|e| err(e.to_string()))?;
    // The weights reader names the file in its messages.
    let raw = convnet_weights::read_raw(path, &manifest).map_err(|e| {
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text = format!("{text}: {c}");
            cause = c.source();
        }
        GraphError::invalid(one_line(&text))
    })?;
    let mut out = HashMap::with_capacity(raw.len());
    for t in raw {
        if let Some(&i) = index.get(t.name.as_str()) {
            let node = &model.model_topology.node[i];
            if let Some(declared) = declared_shape(node)
                && declared != t.shape
            {
                return Err(err(format!(
                    "weight {:?} is {:?} in the manifest but its node declares {:?}",
                    t.name, t.shape, declared
                )));
            }
        }
        out.insert(
            t.name,
            Rc::new(Const {
                shape: t.shape,
                data: t.values,
                int: t.integer,
            }),
        );
    }
    Ok(out)
}

/// The shape a Const node states in its `value` attribute, where it states one.
fn declared_shape(node: &NodeDef) -> Option<Vec<usize>> {
    let shape = node.attr.get("value")?.get("tensor")?.get("tensorShape")?;
    let dims = match shape.get("dim") {
        Some(d) => d.as_array()?.clone(),
        None => Vec::new(),
    };
    dims.iter()
        .map(|d| {
            let size = d.get("size")?;
            size.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| size.as_u64().map(|v| v as usize))
        })
        .collect()
}

/// A message's first line.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
