//! The convolutional implementation of sliding windows: a classifier made fully convolutional
//! and run on a larger picture gives, in each output cell, exactly what the classifier gives on
//! the matching window.

use burn::tensor::{Device, Distribution, Tensor};
use convnet_layers::{
    Activation, ConvConfig, DenseConfig, DropoutConfig, LayerConfig, Mode, ModelSpec, PoolConfig,
};
use convnet_weights::fully_convolutional;

/// 12x12 grey pictures -> 3 classes: conv 3x3 (4) -> max pool 2 -> conv 2x2 (6) -> flatten ->
/// dense 8 -> dropout -> dense 3 with softmax. Everything before the flatten moves in steps of
/// 2 pixels (the pool), so the windows are 2 pixels apart.
fn classifier() -> ModelSpec {
    ModelSpec::new("windows", [1, 12, 12])
        .named(
            "conv1",
            LayerConfig::Conv2d(ConvConfig::new(4, 3).with_activation(Activation::Relu)),
        )
        .named("pool1", LayerConfig::MaxPool2d(PoolConfig::new(2)))
        .named(
            "conv2",
            LayerConfig::Conv2d(ConvConfig::new(6, 2).with_activation(Activation::Relu)),
        )
        .named("flatten", LayerConfig::Flatten)
        .named(
            "fc1",
            LayerConfig::Dense(DenseConfig::new(8).with_activation(Activation::Relu)),
        )
        .named("drop", LayerConfig::Dropout(DropoutConfig::new(0.5)))
        .named(
            "fc2",
            LayerConfig::Dense(DenseConfig::new(3).with_activation(Activation::Softmax)),
        )
}

#[test]
fn each_output_cell_is_the_classifier_on_its_window() {
    let device = Device::flex();
    let spec = classifier();
    let model = spec.build(&device).unwrap();
    let (fcn_spec, fcn) = fully_convolutional(&spec, &model, &[1, 20, 20], &device).unwrap();
    assert_eq!(fcn_spec.name, "windows-fcn");
    // 20 -> 18 -> 9 -> 8, then the 4x4 "dense" convolution: a 5x5 map of 3 logits.
    assert_eq!(fcn.output_shape().unwrap().dims(), &[3, 5, 5]);

    let x = Tensor::<4>::random([1, 1, 20, 20], Distribution::Normal(0.0, 1.0), &device);
    let map = fcn
        .forward(x.clone(), Mode::Eval)
        .unwrap()
        .into_map2d()
        .unwrap();
    let map = map.into_data().try_to_vec::<f32>().unwrap();
    for i in 0..5 {
        for j in 0..5 {
            let window = x
                .clone()
                .slice([0..1, 0..1, 2 * i..2 * i + 12, 2 * j..2 * j + 12]);
            let logits = model.forward_logits(window, Mode::Eval).unwrap();
            let logits = logits.into_data().try_to_vec::<f32>().unwrap();
            for k in 0..3 {
                let cell = map[k * 25 + i * 5 + j];
                assert!(
                    (cell - logits[k]).abs() < 1e-4,
                    "cell ({i}, {j}) class {k}: {cell} vs {}",
                    logits[k]
                );
            }
        }
    }
}

#[test]
fn pictures_smaller_than_the_window_and_flat_networks_are_refused() {
    let device = Device::flex();
    let spec = classifier();
    let model = spec.build(&device).unwrap();
    let err = fully_convolutional(&spec, &model, &[1, 8, 8], &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 8, 8]"), "{err}");
    let mut flat = spec.clone();
    flat.layers
        .retain(|l| !matches!(l.config, LayerConfig::Flatten));
    flat.layers.truncate(3);
    let flat_model = flat.build(&device).unwrap();
    let err = fully_convolutional(&flat, &flat_model, &[1, 20, 20], &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no flatten"), "{err}");
}
