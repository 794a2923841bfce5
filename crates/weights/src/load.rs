//! Loading a state dict into a model by name, strictly (everything must fit) or partially
//! (what fits), with the whole account of what did not.

use std::collections::HashSet;
use std::fmt;

use convnet_layers::Sequential;

use crate::dict::StateDict;
use crate::error::WeightsError;
use crate::walk::{Entry, entries};

/// Lists longer than this are cut, with a count of the rest.
const LIST_MAX: usize = 20;

/// The PyTorch keys and shapes `model` wants, in the model's order (no weights are
/// materialised: a lazily initialised model stays lazy).
pub fn expected(model: &Sequential) -> Vec<(String, Vec<usize>)> {
    // Cloning a module clones handles (reference-counted), not values.
    let mut model = model.clone();
    entries(&mut model.stack)
        .into_iter()
        .map(|e| {
            let shape = e.slot.torch_shape();
            (e.key, shape)
        })
        .collect()
}

/// How [`load`] treats weights that do not fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Load what fits and leave the rest of the model as initialised (a new classifier head,
    /// a backbone out of a larger model); the [`LoadReport`] says what was skipped. When
    /// false (the default), any missing, unexpected or mis-shaped tensor is an error.
    pub allow_partial: bool,
}

impl LoadOptions {
    pub fn strict() -> Self {
        Self::default()
    }

    pub fn partial() -> Self {
        Self {
            allow_partial: true,
        }
    }
}

/// A tensor both sides have, with different shapes (PyTorch's layout on both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub key: String,
    /// The model's.
    pub expected: Vec<usize>,
    /// The file's.
    pub found: Vec<usize>,
}

/// What a load did: every model tensor is either loaded, missing or mis-shaped; every file
/// tensor is either loaded, mis-shaped or unexpected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Loaded, in the model's order (in a [`Mismatch`]: what would have loaded).
    pub loaded: Vec<String>,
    /// In the model, not in the file (left as initialised).
    pub missing: Vec<String>,
    /// In the file, not in the model (ignored), in the file's order.
    pub unexpected: Vec<String>,
    /// In both with different shapes (left as initialised).
    pub mismatched: Vec<ShapeMismatch>,
}

impl LoadReport {
    /// Whether everything fitted.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// What was skipped, one group per line (empty when complete); long lists are cut after
    /// 20 names with a count of the rest.
    pub fn skipped(&self) -> String {
        let mut lines = Vec::new();
        if !self.missing.is_empty() {
            lines.push(format!(
                "missing from the file ({}): {}",
                self.missing.len(),
                list(self.missing.iter().map(String::as_str))
            ));
        }
        if !self.unexpected.is_empty() {
            lines.push(format!(
                "unexpected, not in the model ({}): {}",
                self.unexpected.len(),
                list(self.unexpected.iter().map(String::as_str))
            ));
        }
        if !self.mismatched.is_empty() {
            let shown: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| {
                    format!(
                        "{} (model {}, file {})",
                        m.key,
                        shape_text(&m.expected),
                        shape_text(&m.found)
                    )
                })
                .collect();
            lines.push(format!(
                "with another shape ({}): {}",
                self.mismatched.len(),
                list(shown.iter().map(String::as_str))
            ));
        }
        lines.join("\n")
    }
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

fn list<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = items.len();
    let mut shown: Vec<&str> = items.take(LIST_MAX).collect();
    let rest = n - shown.len();
    let more;
    if rest > 0 {
        more = format!("... and {rest} more");
        shown.push(&more);
    }
    shown.join(", ")
}

/// A strict load that did not fit: the whole account, and a hint at the likely cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The file (or other origin) of the weights.
    pub origin: String,
    pub model: String,
    pub report: LoadReport,
    pub hint: Option<String>,
}

impl std::error::Error for Mismatch {}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        write!(
            f,
            "{} does not fit model '{}': {} missing, {} unexpected, {} with another shape ({} of the model's {} tensors fit)\n{}",
            self.origin,
            self.model,
            r.missing.len(),
            r.unexpected.len(),
            r.mismatched.len(),
            r.loaded.len(),
            r.loaded.len() + r.missing.len() + r.mismatched.len(),
            r.skipped()
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// Loads `dict` into `model` by PyTorch key, converting layouts (Burn's linear weights are
/// transposed; squeeze-and-excitation weights load from `[out, in, 1, 1]` or `[out, in]`).
///
/// Strict by default: any missing, unexpected or mis-shaped tensor is a
/// [`WeightsError::Mismatch`] listing all of them, and the model is not returned. With
/// [`LoadOptions::allow_partial`], what fits is loaded and the report lists the rest.
/// Either way a loaded tensor holding NaN or an infinity is an error naming it. Loaded
/// parameters keep their id, device and gradient setting.
pub fn load(
    model: Sequential,
    dict: &StateDict,
    options: &LoadOptions,
) -> Result<(Sequential, LoadReport), WeightsError> {
    let mut model = model;
    let name = model.name().to_string();
    let mut slots = entries(&mut model.stack);
    check_unique(&slots, &name)?;

    let mut report = LoadReport::default();
    let mut fits = Vec::new();
    for (i, e) in slots.iter().enumerate() {
        match dict.get(&e.key) {
            None => report.missing.push(e.key.clone()),
            Some(t) if !e.slot.accepts(&t.shape) => report.mismatched.push(ShapeMismatch {
                key: e.key.clone(),
                expected: e.slot.torch_shape(),
                found: t.shape.clone(),
            }),
            Some(t) => {
                if !t.is_consistent() {
                    return Err(WeightsError::BadTensor {
                        origin: dict.origin().to_string(),
                        message: format!(
                            "tensor '{}' has {} values for shape {}",
                            e.key,
                            t.data.len(),
                            shape_text(&t.shape)
                        ),
                    });
                }
                fits.push(i);
                report.loaded.push(e.key.clone());
            }
        }
    }
    let known: HashSet<&str> = slots.iter().map(|e| e.key.as_str()).collect();
    report.unexpected = dict
        .keys()
        .filter(|k| !known.contains(k))
        .map(String::from)
        .collect();

    let non_finite: Vec<&str> = fits
        .iter()
        .map(|&i| slots[i].key.as_str())
        .filter(|k| {
            dict.get(k)
                .is_some_and(|t| t.data.iter().any(|v| !v.is_finite()))
        })
        .collect();
    if !non_finite.is_empty() {
        return Err(WeightsError::BadTensor {
            origin: dict.origin().to_string(),
            message: format!(
                "NaN or infinite values in {} tensor(s): {}",
                non_finite.len(),
                list(non_finite.into_iter())
            ),
        });
    }

    if !report.is_complete() && !options.allow_partial {
        let hint = hint(&slots, &report, dict);
        return Err(Mismatch {
            origin: dict.origin().to_string(),
            model: name,
            report,
            hint,
        }
        .into());
    }

    for i in fits {
        let e = &mut slots[i];
        if let Some(t) = dict.get(&e.key) {
            e.slot.write(t.data.clone());
        }
    }
    drop(slots);
    Ok((model, report))
}

pub(crate) fn check_unique(slots: &[Entry<'_>], model: &str) -> Result<(), WeightsError> {
    let mut seen = HashSet::new();
    for e in slots {
        if !seen.insert(e.key.as_str()) {
            return Err(WeightsError::DuplicateKey {
                model: model.to_string(),
                key: e.key.clone(),
            });
        }
    }
    Ok(())
}

/// The likely cause of a mismatch, when it has a recognisable pattern.
fn hint(slots: &[Entry<'_>], report: &LoadReport, dict: &StateDict) -> Option<String> {
    // Only the classifier differs: weights for another number of classes.
    let head = slots
        .iter()
        .rev()
        .find(|e| e.dense)
        .map(|e| e.layer.as_str());
    if let Some(head) = head
        && report.missing.is_empty()
        && report.unexpected.is_empty()
        && !report.mismatched.is_empty()
        && report
            .mismatched
            .iter()
            .all(|m| slots.iter().any(|e| e.key == m.key && e.layer == head))
    {
        let weight = report
            .mismatched
            .iter()
            .find(|m| m.key.ends_with("weight"))
            .or(report.mismatched.first())?;
        let (file, model) = (weight.found.first()?, weight.expected.first()?);
        return Some(format!(
            "only the classifier '{head}' differs: the file has {file} outputs, the model {model}; build the model with {file} classes, or load with allow_partial to keep the rest and train a new head"
        ));
    }
    // The file's keys carry an extra prefix (`backbone.`, `model.module.`...).
    if let Some(first) = report.missing.first()
        && let Some(found) = report
            .unexpected
            .iter()
            .find(|u| u.ends_with(&format!(".{first}")))
    {
        let prefix = &found[..found.len() - first.len()];
        let fixed = report
            .missing
            .iter()
            .filter(|m| dict.contains_key(&format!("{prefix}{m}")))
            .count();
        if fixed * 2 >= report.missing.len() {
            return Some(format!(
                "the file's keys start with '{prefix}' where the model's do not ({fixed} of the {} missing tensors are there under that prefix); strip it from the keys",
                report.missing.len()
            ));
        }
    }
    // Most of the model's tensors are absent or mis-shaped: another architecture.
    let total = slots.len();
    if report.loaded.len() * 2 < total {
        let file_keys: Vec<&str> = dict.keys().take(3).collect();
        let model_keys: Vec<&str> = slots.iter().take(3).map(|e| e.key.as_str()).collect();
        return Some(format!(
            "most of the model's tensors are not in the file: it was probably saved from another architecture (the file's keys begin {}, the model's {})",
            file_keys.join(", "),
            model_keys.join(", ")
        ));
    }
    None
}
