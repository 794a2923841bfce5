//! A model's tensors as bytes (Burn's burnpack format, which keeps each parameter's id so the
//! optimizer state saved beside it still applies), and loading them with a full account of
//! what does not fit.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::store::{ApplyError, BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;

/// Tensors a weight file and a model disagree on.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{}", self.describe())]
pub struct WeightMismatch {
    /// What the weights were for (a file name, "checkpoint ...").
    pub what: String,
    /// In the model, absent from the weights.
    pub missing: Vec<String>,
    /// In the weights, absent from the model.
    pub unexpected: Vec<String>,
    /// In both, with different shapes or types: `name: expected [..], found [..]`.
    pub mismatched: Vec<String>,
}

impl WeightMismatch {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = vec![format!(
            "{} does not fit this model (was it saved from another architecture?)",
            self.what
        )];
        let mut list = |what: &str, names: &[String]| {
            if !names.is_empty() {
                parts.push(format!("{what} ({}): {}", names.len(), names.join(", ")));
            }
        };
        list("shape mismatches", &self.mismatched);
        list("missing tensors", &self.missing);
        list("unexpected tensors", &self.unexpected);
        parts.join("; ")
    }
}

/// The model's parameters and buffers (batch-norm statistics included) as burnpack bytes.
pub fn to_bytes<M: Module>(model: &M) -> Result<Vec<u8>, String> {
    let mut store = BurnpackStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| e.to_string())?;
    let bytes = store.get_bytes().map_err(|e| e.to_string())?;
    Ok(bytes.to_vec())
}

/// Every tensor of the model by name with its raw bytes (parameter ids left out, unlike
/// [`to_bytes`]): for comparing two models' values.
pub fn tensor_bytes<M: Module>(model: &M) -> Result<BTreeMap<String, Vec<u8>>, String> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let bytes = t.to_bytes().map_err(|e| e.to_string())?;
            Ok((t.name.clone(), bytes.to_vec()))
        })
        .collect()
}

/// Loads burnpack bytes into `model`; every tensor must match by name and shape, or the error
/// lists all that do not (not just the first).
pub fn load_bytes<M: Module>(model: &mut M, bytes: &[u8], source: &str) -> Result<(), LoadError> {
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes.to_vec())))
        .allow_partial(true)
        .validate(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| LoadError::Format(format!("{source}: cannot read the weights: {e}")))?;
    let mut mismatch = WeightMismatch {
        what: source.to_string(),
        missing: result.missing.iter().map(|(p, _)| p.clone()).collect(),
        unexpected: result.unused.clone(),
        mismatched: result
            .errors
            .iter()
            .map(|e| match e {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => format!("{path}: expected {expected:?}, found {found:?}"),
                other => format!("{other:?}"),
            })
            .collect(),
    };
    mismatch.missing.sort();
    mismatch.unexpected.sort();
    if mismatch.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Mismatch(mismatch))
    }
}

/// Every float tensor of `model` must hold finite values of magnitude at most `limit`; the
/// error names the first tensor that does not, and the value.
pub fn check_values<M: Module>(model: &M, limit: f32) -> Result<(), String> {
    for tensor in model.collect(None, None, false) {
        let data = burn::store::bridge::to_data(&tensor).map_err(|e| e.to_string())?;
        if !data.dtype().is_float() {
            continue;
        }
        let values = data
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        if let Some(v) = values.iter().find(|v| !v.is_finite() || v.abs() > limit) {
            return Err(format!(
                "weight tensor {} holds {v:e} (weights must be finite and at most {limit:e} in magnitude)",
                tensor.name
            ));
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Format(String),
    #[error(transparent)]
    Mismatch(#[from] WeightMismatch),
}
