//! What transfer learning and feature extraction need from a network: named intermediate
//! outputs, auxiliary heads, adaptive pooling, and freezing a prefix of the layers.

mod common;

use burn::tensor::{Device, Distribution, Tensor};
use common::build;
use convnet_layers::{Mode, Summarize};

const NET: &str = "
name = \"taps\"
input = [3, 16, 16]
[[layers]]
name = \"stem.conv\"
type = \"conv2d\"
filters = 4
kernel = 3
[[layers]]
name = \"stem.bn\"
type = \"batch_norm\"
[[layers]]
name = \"aux1\"
type = \"aux\"
layers = [
  { type = \"adaptive_avg_pool2d\", output = 2 },
  { type = \"flatten\" },
  { name = \"fc\", type = \"dense\", units = 5 },
]
[[layers]]
name = \"pool\"
type = \"adaptive_avg_pool2d\"
output = 3
[[layers]]
type = \"flatten\"
[[layers]]
name = \"fc\"
type = \"dense\"
units = 5
";

#[test]
fn adaptive_pool_aux_heads_and_named_taps() {
    let net = build(NET);
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
    // 14x14 maps pooled adaptively to 3x3: 4 * 9 features into the head.
    let s = net.summary().unwrap();
    assert_eq!(s.output_shape.0, vec![5]);
    let (out, aux) = net.forward_aux(x.clone(), Mode::Train).unwrap();
    assert_eq!(out.dims(), vec![2, 5]);
    assert_eq!(aux.len(), 1);
    assert_eq!(aux[0].dims(), vec![2, 5]);
    let (_, aux) = net.forward_aux(x.clone(), Mode::Eval).unwrap();
    assert!(aux.is_empty(), "auxiliary heads only run in training");
    // `stem` names the group stem.conv, stem.bn: its last layer.
    let taps = net
        .forward_features(x.clone(), &["pool", "stem"], Mode::Eval)
        .unwrap();
    assert_eq!(taps[0].dims(), vec![2, 4, 3, 3]);
    assert_eq!(taps[1].dims(), vec![2, 4, 14, 14]);
    let err = net
        .forward_features(x, &["conv9"], Mode::Eval)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no layer named 'conv9'"), "{err}");
}

#[test]
fn freezing_a_prefix_moves_its_parameters_to_non_trainable() {
    let net = build(NET);
    let before = net.summary().unwrap();
    let frozen = net.freeze_before(3);
    let after = frozen.summary().unwrap();
    assert_eq!(
        before.trainable_params + before.non_trainable_params,
        after.trainable_params + after.non_trainable_params
    );
    // Still learning: the head dense layer (36 * 5 + 5).
    assert_eq!(after.trainable_params, 36 * 5 + 5);
    assert_eq!(frozen.frozen_layers(), 3);
}
