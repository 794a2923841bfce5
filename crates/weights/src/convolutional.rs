//! Classifiers made fully convolutional: the course's "convolutional implementation of sliding
//! windows" (Sermanet et al., OverFeat) and the first step of an FCN. A flatten and the dense
//! layers after it, on a `[C, h, w]` map, become an `h x w` convolution and 1x1 convolutions
//! holding the same weights, so the network runs on a larger picture and gives a map of
//! outputs: each cell is the classifier applied to one window of the picture, the windows
//! `stride` pixels apart, the product of the strides before the flatten.

use burn::tensor::Device;
use convnet_layers::{Activation, ConvConfig, LayerConfig, ModelSpec, Sequential, Size};

use crate::error::WeightsError;
use crate::export::to_state_dict;
use crate::load::{LoadOptions, load};

fn unsupported(spec: &ModelSpec, message: String) -> WeightsError {
    WeightsError::BadTensor {
        origin: format!("model '{}'", spec.name),
        message,
    }
}

/// The spec of `spec` made fully convolutional for pictures of shape `input` (`[C, H, W]`,
/// at least the classifier's own size), and its weights taken from `model` (built from
/// `spec`). The converted layers keep their names; a final softmax is dropped, so the map holds
/// logits. Fails for a network without a flatten, or with layers other than dense, dropout and
/// activations after it.
pub fn fully_convolutional(
    spec: &ModelSpec,
    model: &Sequential,
    input: &[usize],
    device: &Device,
) -> Result<(ModelSpec, Sequential), WeightsError> {
    let flatten = spec
        .layers
        .iter()
        .position(|l| matches!(l.config, LayerConfig::Flatten))
        .ok_or_else(|| {
            unsupported(
                spec,
                "has no flatten layer: it is already fully convolutional".into(),
            )
        })?;
    let mut features = spec.clone();
    features.layers.truncate(flatten);
    let cannot_size = |e: String| unsupported(spec, format!("cannot size its feature map: {e}"));
    let map = features
        .build(device)
        .map_err(|e| cannot_size(e.to_string()))?
        .output_shape()
        .map_err(|e| cannot_size(e.to_string()))?;
    let &[_, h, w] = map.dims() else {
        return Err(unsupported(
            spec,
            format!("flattens a {map} map; sliding windows need [C, H, W] maps"),
        ));
    };

    let mut fcn = ModelSpec::new(format!("{}-fcn", spec.name), input.to_vec());
    fcn.layers = features.layers;
    let mut first = true;
    for layer in &spec.layers[flatten + 1..] {
        let mut layer = layer.clone();
        layer.config = match layer.config {
            LayerConfig::Dense(d) => {
                let kernel = if first {
                    Size::Each(vec![h, w])
                } else {
                    Size::All(1)
                };
                first = false;
                let activation = match d.activation {
                    Activation::Softmax => Activation::Linear,
                    other => other,
                };
                LayerConfig::Conv2d(
                    ConvConfig::new(d.units, kernel)
                        .with_bias(d.bias)
                        .with_activation(activation),
                )
            }
            LayerConfig::Activation {
                activation: Activation::Softmax,
            } => continue,
            c @ (LayerConfig::Dropout(_) | LayerConfig::Activation { .. }) => c,
            other => {
                return Err(unsupported(
                    spec,
                    format!(
                        "has a {other:?} after its flatten; only dense, dropout and activation layers convert"
                    ),
                ));
            }
        };
        fcn.layers.push(layer);
    }
    let built = fcn.build(device).map_err(|e| {
        unsupported(
            spec,
            format!("does not fit pictures of {input:?} once fully convolutional: {e}"),
        )
    })?;

    // A dense weight [out, C*h*w] is the conv kernel [out, C, h, w] in the same order: the
    // flatten reads maps channel by channel, row by row.
    let mut dict = to_state_dict(model)?;
    let wanted = crate::load::expected(&built);
    for (key, shape) in wanted {
        if let Some(t) = dict.get_mut(&key)
            && t.shape != shape
            && t.num_elements() == shape.iter().product::<usize>()
        {
            t.shape = shape;
        }
    }
    let (converted, _) = load(built, &dict, &LoadOptions::strict())?;
    Ok((fcn, converted))
}
