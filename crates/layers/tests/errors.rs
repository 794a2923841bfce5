//! Bad specs and impossible shapes: one clear line naming the layer and the shapes.

mod common;

use burn::tensor::{Device, Tensor};
use common::build_err;
use convnet_layers::{
    Conv2dConfig, LayerConfig, Mode, ModelError, ModelSpec, Padding, Pool2dConfig,
};

#[test]
fn malformed_toml_reports_line_and_column() {
    let err = build_err(
        "input = [1, 28, 28]\n\n[[layers]]\ntype = \"conv2d\"\nfilters = 6\nkernel = = 5\n",
    );
    assert!(err.starts_with("net.toml:6:10: "), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn unknown_layer_type_and_fields_name_the_layer_and_its_line() {
    let err = build_err(
        "input = [1, 28, 28]\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"convolution\"\n",
    );
    assert!(err.starts_with("net.toml:4:"), "{err}");
    assert!(
        err.contains("layer 2") && err.contains("convolution"),
        "{err}"
    );

    let err =
        build_err("input = [1, 28, 28]\n[[layers]]\ntype = \"conv2d\"\nfilters = 6\nkernal = 5\n");
    assert!(err.contains("layer 1") && err.contains("kernal"), "{err}");

    let err = build_err("input = [1, 28, 28]\n[[layers]]\nfilters = 6\n");
    assert!(err.contains("missing `type`"), "{err}");

    let err = build_err("input = [28]\n[[layers]]\ntype = \"flatten\"\n");
    assert!(err.contains("input must be [channels, length]"), "{err}");

    let err = build_err("inputs = [1, 28, 28]\n");
    assert!(err.contains("inputs"), "{err}");
}

#[test]
fn kernel_larger_than_the_padded_input_names_layer_and_shapes() {
    let src = "input = [1, 12, 12]
[[layers]]
type = \"conv2d\"
filters = 6
kernel = 5
[[layers]]
type = \"max_pool2d\"
pool = 2
[[layers]]
type = \"conv2d\"
name = \"conv_big\"
filters = 16
kernel = 5
";
    let err = build_err(src);
    assert_eq!(
        err,
        "net.toml:9: layer 'conv_big' (Conv2D 16 filters 5x5, stride 1x1, padding valid): \
         kernel 5 (after dilation) is larger than the padded input 4; input shape (None, 6, 4, 4)"
    );
}

#[test]
fn channel_mismatch_and_missing_flatten_are_explained() {
    let src = "input = [3, 32, 32]\n[[layers]]\ntype = \"conv2d\"\nfilters = 8\nkernel = 3\nin_channels = 1\n";
    let err = build_err(src);
    assert!(err.contains("expects 1 input channels, got 3"), "{err}");
    assert!(err.contains("input shape (None, 3, 32, 32)"), "{err}");

    let src = "input = [3, 32, 32]\n[[layers]]\ntype = \"dense\"\nunits = 10\n";
    let err = build_err(src);
    assert!(err.contains("add a flatten layer"), "{err}");

    let src = "input = [3, 8, 8]\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 1\n";
    let err = build_err(src);
    assert!(err.contains("flattened already"), "{err}");

    let src =
        "input = [3, 8, 8]\n[[layers]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\ngroups = 2\n";
    let err = build_err(src);
    assert!(err.contains("groups = 2 must divide"), "{err}");
}

#[test]
fn bad_configs_are_errors_not_panics() {
    let device = Device::flex();
    assert!(Conv2dConfig::new(4, 0).init::<4>(3, &device).is_err());
    assert!(
        Conv2dConfig::new(4, 3)
            .with_stride(0)
            .init::<4>(3, &device)
            .is_err()
    );
    assert!(Conv2dConfig::new(0, 3).init::<4>(3, &device).is_err());
    assert!(
        Pool2dConfig::new(0)
            .init::<4>(convnet_layers::PoolKind::Max)
            .is_err()
    );
    let pool = Pool2dConfig::new(2)
        .with_padding(Padding::uniform(2))
        .init(convnet_layers::PoolKind::Max)
        .unwrap();
    let spec = ModelSpec::new("p", [1, 8, 8]).layer(LayerConfig::MaxPool2d(Pool2dConfig {
        padding: Padding::uniform(2),
        ..Pool2dConfig::new(2)
    }));
    let err = spec.build(&device).unwrap_err().to_string();
    assert!(
        err.contains("padding must be smaller than the pool size"),
        "{err}"
    );
    assert!(
        pool.forward(Tensor::<4>::zeros([1, 1, 8, 8], &device))
            .is_err()
    );
}

#[test]
fn a_model_rejects_inputs_of_another_shape() {
    let device = Device::flex();
    let model = ModelSpec::new("m", [1, 28, 28])
        .layer(LayerConfig::Conv2d(Conv2dConfig::new(4, 3)))
        .build(&device)
        .unwrap();
    let err = model
        .forward(Tensor::<4>::zeros([2, 3, 28, 28], &device), Mode::Eval)
        .unwrap_err();
    assert!(matches!(err, ModelError::Input(_)));
    assert_eq!(
        err.to_string(),
        "model input: expected a tensor of shape (None, 1, 28, 28) (batch first), got [2, 3, 28, 28]"
    );
    assert!(
        model
            .forward(Tensor::<4>::zeros([2, 1, 28, 28], &device), Mode::Eval)
            .is_ok()
    );
}
