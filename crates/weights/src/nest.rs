//! Weights of a part trained on its own, placed into a bigger model that nests it.
//!
//! A backbone trained as a classifier names its tensors from the top (`down2.conv1.weight`);
//! inside a U-Net the same layer sits in skip blocks (`skip1.down2.conv1.weight`). Matching a
//! model tensor to the file tensor whose name ends its path, on a `.` boundary, places such
//! weights without a hand-written renaming table.

use std::collections::HashMap;

use crate::StateDict;

/// `dict` with each key renamed to the model key in `model_keys` that it names: the same key,
/// or else the longest file key that ends the model key after a `.`. File keys nothing names
/// keep their names (a loader reports them as unexpected). A file key that would fill two
/// model tensors is an error naming them: the layer names do not say which is meant.
pub fn nest_into<'a>(
    dict: &StateDict,
    model_keys: impl IntoIterator<Item = &'a str>,
) -> Result<StateDict, String> {
    let mut target: HashMap<&str, Vec<&str>> = HashMap::new();
    for model_key in model_keys {
        let source = if dict.contains_key(model_key) {
            Some(model_key)
        } else {
            // Suffixes after each '.', longest first.
            model_key
                .match_indices('.')
                .map(|(i, _)| &model_key[i + 1..])
                .find(|tail| dict.contains_key(tail))
        };
        if let Some(source) = source {
            target.entry(source).or_default().push(model_key);
        }
    }
    let mut out = StateDict::new(dict.origin());
    for (key, tensor) in dict.iter() {
        match target.get(key).map(Vec::as_slice) {
            None => {
                out.insert(key, tensor.clone());
            }
            Some([one]) => {
                out.insert(*one, tensor.clone());
            }
            Some(several) => {
                return Err(format!(
                    "{}: tensor '{key}' would fill {} tensors of the model ({}); its layer names do not say which",
                    dict.origin(),
                    several.len(),
                    several.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WeightTensor;

    fn dict(keys: &[&str]) -> StateDict {
        let mut d = StateDict::new("test.safetensors");
        for (i, k) in keys.iter().enumerate() {
            d.insert(*k, WeightTensor::new(vec![1], vec![i as f32]));
        }
        d
    }

    fn value(d: &StateDict, key: &str) -> Option<f32> {
        d.get(key).map(|t| t.data[0])
    }

    #[test]
    fn nested_layers_take_the_tensors_named_by_their_own_path() {
        let file = dict(&[
            "down1.conv1.weight",
            "down2.conv1.weight",
            "bottleneck.bn1.running_mean",
            "classifier.fc.weight",
        ]);
        let model = [
            "down1.conv1.weight",
            "skip1.down2.conv1.weight",
            "skip1.skip2.bottleneck.bn1.running_mean",
            "head.weight",
        ];
        let out = nest_into(&file, model).unwrap();
        assert_eq!(value(&out, "down1.conv1.weight"), Some(0.0));
        assert_eq!(value(&out, "skip1.down2.conv1.weight"), Some(1.0));
        assert_eq!(
            value(&out, "skip1.skip2.bottleneck.bn1.running_mean"),
            Some(2.0)
        );
        // Nothing names the classifier: it stays as it was, for the loader to call unexpected.
        assert_eq!(value(&out, "classifier.fc.weight"), Some(3.0));
        assert_eq!(out.len(), 4);
        assert!(!out.contains_key("down2.conv1.weight"));
    }

    #[test]
    fn the_exact_name_comes_first_then_the_longest_tail() {
        let file = dict(&["a.conv.weight", "conv.weight", "x.a.bn.bias", "bn.bias"]);
        let out = nest_into(&file, ["a.conv.weight", "b.conv.weight", "y.x.a.bn.bias"]).unwrap();
        assert_eq!(value(&out, "a.conv.weight"), Some(0.0));
        assert_eq!(value(&out, "b.conv.weight"), Some(1.0));
        assert_eq!(value(&out, "y.x.a.bn.bias"), Some(2.0));
        // "bn.bias" is a shorter tail of the same key: not used, kept as unexpected.
        assert_eq!(value(&out, "bn.bias"), Some(3.0));
    }

    #[test]
    fn one_file_tensor_for_two_model_tensors_is_an_error() {
        let file = dict(&["conv1.weight"]);
        let err = nest_into(&file, ["layer1.conv1.weight", "layer2.conv1.weight"]).unwrap_err();
        assert!(err.contains("'conv1.weight' would fill 2 tensors"), "{err}");
        assert!(
            err.contains("layer1.conv1.weight, layer2.conv1.weight"),
            "{err}"
        );
    }

    #[test]
    fn a_tail_must_start_after_a_dot() {
        let file = dict(&["conv.weight"]);
        let out = nest_into(&file, ["xconv.weight"]).unwrap();
        assert_eq!(value(&out, "conv.weight"), Some(0.0));
        assert!(!out.contains_key("xconv.weight"));
    }
}
