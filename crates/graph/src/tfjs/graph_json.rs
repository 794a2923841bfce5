//! A TF.js graph model's `model.json`: `format` `graph-model`, `modelTopology` (a TensorFlow
//! GraphDef written as JSON: nodes with `name`, `op`, `input`, `attr`), `weightsManifest`
//! and an optional `signature` naming the inputs and outputs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The parts of `model.json` a translation reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelJson {
    #[serde(default)]
    pub format: Option<String>,
    pub model_topology: Topology,
    #[serde(default)]
    pub weights_manifest: Value,
    #[serde(default)]
    pub signature: Option<Signature>,
    #[serde(default)]
    pub generated_by: Option<String>,
    #[serde(default)]
    pub converted_by: Option<String>,
}

#[derive(Deserialize)]
pub struct Topology {
    #[serde(default)]
    pub node: Vec<NodeDef>,
}

#[derive(Deserialize, Default)]
pub struct Signature {
    #[serde(default)]
    pub inputs: BTreeMap<String, SignatureEntry>,
    #[serde(default)]
    pub outputs: BTreeMap<String, SignatureEntry>,
}

#[derive(Deserialize)]
pub struct SignatureEntry {
    pub name: String,
}

#[derive(Deserialize, Clone)]
pub struct NodeDef {
    pub name: String,
    pub op: String,
    #[serde(default)]
    pub input: Vec<String>,
    #[serde(default)]
    pub attr: BTreeMap<String, Value>,
}

/// A reference to a node's output: `name` (output 0), `name:1`; control inputs (`^name`) are
/// left out by [`NodeDef::data_inputs`].
pub fn split_ref(reference: &str) -> (&str, usize) {
    match reference.rsplit_once(':') {
        Some((node, index)) => match index.parse() {
            Ok(i) => (node, i),
            Err(_) => (reference, 0),
        },
        None => (reference, 0),
    }
}

impl NodeDef {
    /// The inputs that carry data (control dependencies dropped).
    pub fn data_inputs(&self) -> impl Iterator<Item = &str> {
        self.input
            .iter()
            .map(String::as_str)
            .filter(|i| !i.starts_with('^'))
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        let v = self.attr.get(key)?.get("i")?;
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_i64())
    }

    pub fn float(&self, key: &str) -> Option<f32> {
        let v = self.attr.get(key)?.get("f")?;
        v.as_f64().map(|f| f as f32).or_else(|| {
            v.as_str().and_then(|s| match s {
                "NaN" => Some(f32::NAN),
                "Infinity" => Some(f32::INFINITY),
                "-Infinity" => Some(f32::NEG_INFINITY),
                s => s.parse().ok(),
            })
        })
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.attr.get(key)?.get("b")?.as_bool()
    }

    /// A string attribute (GraphDef JSON holds bytes as base64).
    pub fn string(&self, key: &str) -> Option<String> {
        let s = self.attr.get(key)?.get("s")?.as_str()?;
        decode_base64(s).and_then(|b| String::from_utf8(b).ok())
    }

    pub fn ints(&self, key: &str) -> Option<Vec<i64>> {
        let list = self.attr.get(key)?.get("list")?;
        let Some(items) = list.get("i").and_then(Value::as_array) else {
            return Some(Vec::new());
        };
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| v.as_i64())
            })
            .collect()
    }

    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        let list = self.attr.get(key)?.get("list")?;
        let Some(items) = list.get("s").and_then(Value::as_array) else {
            return Some(Vec::new());
        };
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(decode_base64)
                    .and_then(|b| String::from_utf8(b).ok())
            })
            .collect()
    }

    /// The `type` attribute `key` (`DT_FLOAT`...).
    pub fn dtype(&self, key: &str) -> Option<String> {
        Some(self.attr.get(key)?.get("type")?.as_str()?.to_string())
    }

    /// A placeholder's declared shape: `None` where unknown, `-1` axes as `None` entries.
    pub fn shape(&self) -> Option<Vec<Option<usize>>> {
        let shape = self.attr.get("shape")?.get("shape")?;
        if shape.get("unknownRank").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        let dims = shape.get("dim").and_then(Value::as_array)?;
        Some(
            dims.iter()
                .map(|d| {
                    let size = d.get("size");
                    let n = size
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<i64>().ok())
                        .or_else(|| size.and_then(Value::as_i64))
                        .unwrap_or(-1);
                    usize::try_from(n).ok()
                })
                .collect(),
        )
    }
}

/// Standard base64 (with or without padding), as protobuf's JSON mapping writes bytes.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_protobuf_strings() {
        assert_eq!(decode_base64("U0FNRQ==").unwrap(), b"SAME");
        assert_eq!(decode_base64("VkFMSUQ=").unwrap(), b"VALID");
        assert_eq!(decode_base64("TkhXQw==").unwrap(), b"NHWC");
        assert_eq!(decode_base64("Qmlhc0FkZA==").unwrap(), b"BiasAdd");
        assert_eq!(decode_base64("UmVsdQ").unwrap(), b"Relu");
        assert!(decode_base64("U0F*").is_none());
    }

    #[test]
    fn references_name_a_node_and_an_output() {
        assert_eq!(split_ref("a/b"), ("a/b", 0));
        assert_eq!(split_ref("a/b:1"), ("a/b", 1));
        assert_eq!(split_ref("a:b"), ("a:b", 0));
    }

    #[test]
    fn attributes_read_as_graphdef_json_writes_them() {
        let node: NodeDef = serde_json::from_value(serde_json::json!({
            "name": "c", "op": "Conv2D", "input": ["x", "w", "^ctl"],
            "attr": {
                "padding": {"s": "U0FNRQ=="},
                "strides": {"list": {"i": ["1", "2", "2", "1"]}},
                "alpha": {"f": 0.1},
                "keep_dims": {"b": true},
                "num_split": {"i": "2"},
                "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdQ=="]}},
                "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "4"}]}}
            }
        }))
        .unwrap();
        assert_eq!(node.data_inputs().collect::<Vec<_>>(), ["x", "w"]);
        assert_eq!(node.string("padding").as_deref(), Some("SAME"));
        assert_eq!(node.ints("strides"), Some(vec![1, 2, 2, 1]));
        assert_eq!(node.float("alpha"), Some(0.1));
        assert_eq!(node.bool("keep_dims"), Some(true));
        assert_eq!(node.int("num_split"), Some(2));
        assert_eq!(
            node.strings("fused_ops"),
            Some(vec!["BiasAdd".to_string(), "Relu".to_string()])
        );
        assert_eq!(node.shape(), Some(vec![None, Some(4)]));
    }
}
