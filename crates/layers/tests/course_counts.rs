//! The parameter counts the course works out by hand, from spec files and from Rust.

use burn::module::Module;
use burn::tensor::Device;
use convnet_layers::{Conv2dConfig, DenseConfig, LayerConfig, ModelSpec, Summarize};
use std::path::PathBuf;

fn spec_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../specs")
        .join(name)
}

fn total_params(spec: &ModelSpec) -> usize {
    let model = spec.build(&Device::flex()).unwrap();
    let summary = model.summary().unwrap();
    assert_eq!(summary.total_params, model.num_params());
    summary.total_params
}

#[test]
fn lenet5_spec_file_has_61706_parameters() {
    let spec = ModelSpec::from_file(&spec_file("lenet5.toml")).unwrap();
    assert_eq!(total_params(&spec), 61_706);
}

#[test]
fn dense_layer_of_100_units_on_a_256x256x3_image_has_19660900_parameters() {
    let spec = ModelSpec::from_file(&spec_file("dense-on-image.toml")).unwrap();
    assert_eq!(total_params(&spec), 19_660_900);
    let from_rust = ModelSpec::new("d", [3, 256, 256])
        .layer(LayerConfig::Flatten)
        .layer(LayerConfig::Dense(DenseConfig::new(100)));
    assert_eq!(total_params(&from_rust), 256 * 256 * 3 * 100 + 100);
}

#[test]
fn conv_layer_of_128_7x7_filters_on_rgb_has_18944_parameters_whatever_the_image_size() {
    let spec = ModelSpec::from_file(&spec_file("conv-on-image.toml")).unwrap();
    assert_eq!(total_params(&spec), 18_944);
    for size in [7, 64, 1000] {
        let s = ModelSpec::new("c", [3, size, size])
            .layer(LayerConfig::Conv2d(Conv2dConfig::new(128, 7)));
        assert_eq!(total_params(&s), (7 * 7 * 3 + 1) * 128);
    }
}

#[test]
fn course_convnet_shapes_39_37_17_7_1960() {
    let spec = ModelSpec::from_file(&spec_file("course-convnet.toml")).unwrap();
    let summary = spec.build(&Device::flex()).unwrap().summary().unwrap();
    let shapes: Vec<Vec<usize>> = summary
        .layers
        .iter()
        .map(|r| r.output_shape.0.clone())
        .collect();
    assert_eq!(
        shapes,
        vec![
            vec![10, 37, 37],
            vec![20, 17, 17],
            vec![40, 7, 7],
            vec![1960],
            vec![10]
        ]
    );
    // (3*3*3+1)*10 + (5*5*10+1)*20 + (5*5*20+1)*40 + 1960*10+10
    assert_eq!(summary.total_params, 280 + 5020 + 20_040 + 19_610);
}

#[test]
fn depthwise_and_grouped_convs_count_in_channels_per_group() {
    // A depthwise 3x3 over 32 channels: 32 * 9 + 32; groups of 4 over 32 -> 64: 64 * 8 * 9 + 64.
    let dw = ModelSpec::new("dw", [32, 8, 8]).layer(LayerConfig::Conv2d(
        Conv2dConfig::new(32, 3).with_groups(32),
    ));
    assert_eq!(total_params(&dw), 32 * 9 + 32);
    let g = ModelSpec::new("g", [32, 8, 8])
        .layer(LayerConfig::Conv2d(Conv2dConfig::new(64, 3).with_groups(4)));
    assert_eq!(total_params(&g), 64 * 8 * 9 + 64);
    // 1x1 convolution without bias: a per-pixel dense layer.
    let p = ModelSpec::new("p", [192, 28, 28]).layer(LayerConfig::Conv2d(
        Conv2dConfig::new(32, 1).with_bias(false),
    ));
    assert_eq!(total_params(&p), 192 * 32);
}
