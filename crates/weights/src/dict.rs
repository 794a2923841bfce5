//! A state dict: named float tensors in order, as PyTorch's `model.state_dict()` is.

use std::collections::HashMap;
use std::fmt;

/// One tensor of a state dict: its shape (PyTorch's layout) and its values as `f32`, flat in
/// row-major order. `data.len()` should be the product of `shape`; the functions that consume
/// tensors check it.
#[derive(Clone, PartialEq)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl WeightTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self { shape, data }
    }

    /// The number of values the shape calls for (1 for a scalar). A shape whose product
    /// overflows reads as `usize::MAX`, which no tensor's data can fill, never as a wrapped size.
    pub fn num_elements(&self) -> usize {
        convnet_layers::limits::checked_product("tensor", &self.shape).unwrap_or(usize::MAX)
    }

    /// Whether the values fill the shape exactly.
    pub fn is_consistent(&self) -> bool {
        self.data.len() == self.num_elements()
    }
}

impl fmt::Debug for WeightTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WeightTensor({:?}, {} values)",
            self.shape,
            self.data.len()
        )
    }
}

/// Named tensors in insertion order, with the file they came from for messages.
///
/// [`crate::read`] gives the keys in natural order (`layer1.2` before `layer1.10`), as neither
/// file format keeps the module order reliably; [`crate::to_state_dict`] gives them in the
/// model's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    origin: String,
    entries: Vec<(String, WeightTensor)>,
    index: HashMap<String, usize>,
}

impl StateDict {
    /// An empty dict; `origin` names it in messages (a file path, "model 'resnet18'").
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            ..Self::default()
        }
    }

    /// What the dict came from, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Adds `key`, or replaces its tensor in place; returns the tensor it replaced.
    pub fn insert(&mut self, key: impl Into<String>, tensor: WeightTensor) -> Option<WeightTensor> {
        let key = key.into();
        match self.index.get(&key) {
            Some(&i) => Some(std::mem::replace(&mut self.entries[i].1, tensor)),
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, tensor));
                None
            }
        }
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<WeightTensor> {
        let i = self.index.remove(key)?;
        let (_, tensor) = self.entries.remove(i);
        for (k, _) in &self.entries[i..] {
            if let Some(at) = self.index.get_mut(k) {
                *at -= 1;
            }
        }
        Some(tensor)
    }

    pub fn get(&self, key: &str) -> Option<&WeightTensor> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut WeightTensor> {
        self.index.get(key).map(|&i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &WeightTensor)> {
        self.entries.iter().map(|(k, t)| (k.as_str(), t))
    }

    /// The total number of values.
    pub fn num_values(&self) -> usize {
        self.entries.iter().map(|(_, t)| t.data.len()).sum()
    }

    /// Renames every key with `f` (keeping the order); a key that `f` maps onto an earlier one
    /// replaces it.
    pub(crate) fn rename(self, f: impl Fn(&str) -> String) -> Self {
        let mut out = StateDict::new(self.origin);
        for (k, t) in self.entries {
            out.insert(f(&k), t);
        }
        out
    }

    /// Sorts the keys naturally: digit runs compare as numbers (`2` before `10`).
    pub(crate) fn sort_naturally(&mut self) {
        self.entries
            .sort_by(|(a, _), (b, _)| natural_key(a).cmp(&natural_key(b)));
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Part<'a> {
    Number(u128, usize),
    Text(&'a str),
}

fn natural_key(s: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(first) = rest.bytes().next() {
        let digit = first.is_ascii_digit();
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() == digit)
            .count();
        let (head, tail) = rest.split_at(len);
        parts.push(if digit {
            // The length keeps distinct keys distinct ("01" and "1").
            Part::Number(head.parse().unwrap_or(u128::MAX), head.len())
        } else {
            Part::Text(head)
        });
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: f32) -> WeightTensor {
        WeightTensor::new(vec![1], vec![v])
    }

    #[test]
    fn keys_keep_their_order_and_sort_naturally() {
        let mut d = StateDict::new("test");
        for k in ["layer1.10.w", "layer1.2.w", "fc.b", "layer1.2.b"] {
            d.insert(k, t(0.0));
        }
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["layer1.10.w", "layer1.2.w", "fc.b", "layer1.2.b"]
        );
        d.sort_naturally();
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["fc.b", "layer1.2.b", "layer1.2.w", "layer1.10.w"]
        );
        assert_eq!(d.remove("layer1.2.b"), Some(t(0.0)));
        assert_eq!(d.get("layer1.10.w"), Some(&t(0.0)));
        assert_eq!(d.insert("fc.b", t(1.0)), Some(t(0.0)));
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["fc.b", "layer1.2.w", "layer1.10.w"]
        );
    }
}
