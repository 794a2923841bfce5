//! What the exported file tells its user in `metadata_props`: how to feed it and how to read
//! what comes out.
//!
//! | key | value |
//! |---|---|
//! | `model` | the model's name |
//! | `input_name`, `output_name` | `input`, `output` |
//! | `input_layout`, `output_layout` | `NCHW` (`NCL` signals, `NCDHW` volumes, `NC` vectors) |
//! | `input_shape`, `output_shape` | JSON, batch first: `["N", 3, 224, 224]` or `[1, 3, 224, 224]` |
//! | `classes` | JSON list of class names, in output order (when known) |
//! | `preprocessing` | JSON: how a picture becomes the input (when known) |
//! | anything in [`Metadata::extra`] | as given |

use serde_json::{Value, json};

use super::{BATCH_AXIS, INPUT_NAME, OUTPUT_NAME, layout};
use crate::GraphError;

/// What the caller knows about the model beyond its layers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// Class names in output order; empty when unknown.
    pub classes: Vec<String>,
    /// The preprocessing recipe as JSON (preset, sizes, scale, mean, std...).
    pub preprocessing: Option<Value>,
    /// More properties, written after the standard ones; a key may not repeat a standard one.
    pub extra: Vec<(String, String)>,
}

const STANDARD: &[&str] = &[
    "model",
    "input_name",
    "input_layout",
    "input_shape",
    "output_name",
    "output_layout",
    "output_shape",
    "classes",
    "preprocessing",
];

fn shape_json(shape: &[Option<usize>]) -> String {
    let dims: Vec<Value> = shape
        .iter()
        .map(|d| match d {
            Some(v) => json!(v),
            None => json!(BATCH_AXIS),
        })
        .collect();
    Value::Array(dims).to_string()
}

impl Metadata {
    /// The `metadata_props` entries, in order.
    pub(crate) fn props(
        &self,
        model: &str,
        input: &[Option<usize>],
        output: &[Option<usize>],
        input_layout: &str,
    ) -> Result<Vec<(String, String)>, GraphError> {
        let mut props = vec![
            ("model".to_string(), model.to_string()),
            ("input_name".into(), INPUT_NAME.into()),
            ("input_layout".into(), input_layout.into()),
            ("input_shape".into(), shape_json(input)),
            ("output_name".into(), OUTPUT_NAME.into()),
            (
                "output_layout".into(),
                layout(output.len().saturating_sub(1)).into(),
            ),
            ("output_shape".into(), shape_json(output)),
        ];
        if !self.classes.is_empty() {
            props.push(("classes".into(), json!(self.classes).to_string()));
        }
        if let Some(p) = &self.preprocessing {
            props.push(("preprocessing".into(), p.to_string()));
        }
        for (key, value) in &self.extra {
            if STANDARD.contains(&key.as_str())
                || self.extra.iter().filter(|(k, _)| k == key).count() > 1
            {
                return Err(GraphError::Export(format!(
                    "metadata key '{key}' is given twice"
                )));
            }
            props.push((key.clone(), value.clone()));
        }
        Ok(props)
    }
}
