//! A model's weights as a state dict with torchvision's names, and safetensors files.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use convnet_layers::Sequential;
use safetensors::{Dtype, View};

use crate::dict::{StateDict, WeightTensor};
use crate::error::WeightsError;
use crate::load::check_unique;
use crate::walk::entries;

/// The model's parameters and batch-norm statistics by PyTorch key, in PyTorch's layouts, in
/// the model's order. Batch-norm `num_batches_tracked` counters are not emitted: PyTorch's
/// `load_state_dict(strict=True)` fills them in itself for a dict without version metadata,
/// which is what `safetensors.torch.load_file` gives.
pub fn to_state_dict(model: &Sequential) -> Result<StateDict, WeightsError> {
    let mut model = model.clone();
    let name = model.name().to_string();
    let slots = entries(&mut model.stack);
    check_unique(&slots, &name)?;
    let mut dict = StateDict::new(format!("model '{name}'"));
    for e in slots {
        let data = e.slot.read().map_err(|message| WeightsError::Read {
            model: name.clone(),
            key: e.key.clone(),
            message,
        })?;
        dict.insert(e.key, WeightTensor::new(e.slot.torch_shape(), data));
    }
    Ok(dict)
}

/// A tensor as safetensors sees it: little-endian `f32`s.
struct F32View<'a>(&'a WeightTensor);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.0.data.len() * 4
    }
}

/// Writes `dict` as a safetensors file of `f32` tensors (with the `{"format": "pt"}` metadata
/// that PyTorch tools look for), atomically: a temporary file in the same folder, flushed to
/// disk, then renamed over `path`, so a reader never sees half a file.
pub fn write_safetensors(dict: &StateDict, path: impl AsRef<Path>) -> Result<(), WeightsError> {
    let path = path.as_ref();
    let fail = |message: String| WeightsError::Write {
        path: path.to_path_buf(),
        message,
    };
    if let Some((key, t)) = dict.iter().find(|(_, t)| !t.is_consistent()) {
        return Err(fail(format!(
            "tensor '{key}' has {} values for shape {:?}",
            t.data.len(),
            t.shape
        )));
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(
        dict.iter().map(|(k, t)| (k.to_string(), F32View(t))),
        Some(metadata),
    )
    .map_err(|e| fail(e.to_string()))?;
    write_atomically(path, &bytes).map_err(|e| fail(e.to_string()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the folder's entry is; not every platform opens folders.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
