//! The building blocks from spec files and from Rust: shapes, parameter counts, train/eval
//! behaviour and the errors for impossible settings.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::{build, build_err, values};
use convnet_layers::{
    BatchNormConfig, ChannelPoolConfig, DropoutConfig, Features, Mode, Summarize,
};

#[test]
fn a_frozen_batch_norm_on_an_autodiff_device_uses_and_keeps_its_running_statistics() {
    let device = Device::flex().autodiff();
    let bn = BatchNormConfig::default().init(3, &device).unwrap();
    let mean = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, -2.0, 0.5], [3]), &device);
    let var = Tensor::<1>::from_data(TensorData::new(vec![4.0f32, 0.25, 1.0], [3]), &device);
    bn.running_mean.update(mean.clone());
    bn.running_var.update(var.clone());
    let bn = bn.freeze();
    let x =
        Tensor::<4>::random([4, 3, 5, 5], Distribution::Normal(3.0, 2.0), &device).require_grad();
    let y = bn.forward(x.clone(), Mode::Train).unwrap();
    // Inference formula with the running statistics (γ = 1, β = 0).
    let expected = (x.clone() - mean.clone().reshape([1, 3, 1, 1]))
        / (var.clone() + 1e-5).sqrt().reshape([1, 3, 1, 1]);
    let (got, want) = (values(y.clone()), values(expected));
    assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));
    assert_eq!(values(bn.running_mean.value_sync()), values(mean));
    assert_eq!(values(bn.running_var.value_sync()), values(var));
    // Gradients still flow through the frozen layer to what lies below it.
    let grads = y.sum().backward();
    assert!(x.grad(&grads).is_some());
}

#[test]
fn batch_norm_mode_does_not_depend_on_the_device() {
    // Eval on an autodiff device: running statistics, nothing updated.
    let device = Device::flex().autodiff();
    let bn = BatchNormConfig::default().init(2, &device).unwrap();
    let x = Tensor::<4>::random([3, 2, 4, 4], Distribution::Normal(5.0, 1.0), &device);
    let y = bn.forward(x.clone(), Mode::Eval).unwrap();
    let scale = 1.0 / (1.0f32 + 1e-5).sqrt();
    assert!(
        values(y)
            .iter()
            .zip(values(x.clone()))
            .all(|(a, b)| (a - b * scale).abs() < 1e-4)
    );
    assert_eq!(values(bn.running_mean.value_sync()), vec![0.0, 0.0]);
    // Train on a plain device: batch statistics (zero mean per channel) and updated estimates.
    let plain = Device::flex();
    let bn = BatchNormConfig::default().init(2, &plain).unwrap();
    let x = Tensor::<4>::random([3, 2, 4, 4], Distribution::Normal(5.0, 1.0), &plain);
    let y = bn.forward(x, Mode::Train).unwrap();
    let means: Vec<f32> = values(y.swap_dims(0, 1).flatten::<2>(1, 3).mean_dim(1));
    assert!(means.iter().all(|m| m.abs() < 1e-4), "{means:?}");
    assert!(
        values(bn.running_mean.value_sync())
            .iter()
            .all(|m| (m - 0.5).abs() < 0.1)
    );
}

#[test]
fn dropout_drops_only_in_train_mode() {
    let device = Device::flex();
    let dropout = DropoutConfig::new(0.5).init().unwrap();
    let x = Tensor::<2>::ones([64, 64], &device);
    assert_eq!(
        values(dropout.forward(x.clone(), Mode::Eval)),
        values(x.clone())
    );
    let y = values(dropout.forward(x, Mode::Train));
    let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.5).abs() < 0.05, "{zeros}");
    assert!(y.iter().all(|v| *v == 0.0 || (*v - 2.0).abs() < 1e-6));
    assert!(DropoutConfig::new(1.0).init().is_err());
}

#[test]
fn channel_max_pooling_takes_the_max_over_groups_of_channels() {
    let device = Device::flex();
    let pool = ChannelPoolConfig::new(3).init().unwrap();
    let x: Vec<f32> = (0..12).map(|v| ((v * 7) % 12) as f32).collect();
    let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 6, 2, 1]), &device);
    let y = pool.forward(t).unwrap();
    assert_eq!(y.dims(), [1, 2, 2, 1]);
    // Channels 0-2 and 3-5 at each of the two pixels.
    let at = |c: usize, p: usize| x[c * 2 + p];
    let want: Vec<f32> = (0..2)
        .flat_map(|g| {
            (0..2).map(move |p| (0..3).map(|c| at(g * 3 + c, p)).fold(f32::MIN, f32::max))
        })
        .collect();
    assert_eq!(values(y), want);
    let err = build_err("input = [8, 4, 4]\n[[layers]]\ntype = \"channel_pool\"\npool = 3\n");
    assert!(
        err.contains("does not tile the depth of 8 channels"),
        "{err}"
    );
}

#[test]
fn depthwise_separable_and_transposed_convs_from_a_spec() {
    let model = build(
        "input = [32, 16, 16]
[[layers]]
type = \"depthwise_conv2d\"
kernel = 3
padding = \"same\"
[[layers]]
type = \"separable_conv2d\"
filters = 64
kernel = 3
padding = \"same\"
[[layers]]
type = \"conv_transpose2d\"
filters = 16
kernel = 2
stride = 2
[[layers]]
type = \"conv_transpose2d\"
filters = 8
kernel = 3
stride = 2
padding = \"same\"
",
    );
    let s = model.summary().unwrap();
    let shapes: Vec<Vec<usize>> = s.layers.iter().map(|r| r.output_shape.0.clone()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![32, 16, 16],
            vec![64, 16, 16],
            vec![16, 32, 32],
            vec![8, 64, 64]
        ]
    );
    let params: Vec<usize> = s.layers.iter().map(|r| r.params).collect();
    // depthwise 32*9+32; separable 32*9 (no bias) + 32*64+64; transposed 64*16*4+16, 16*8*9+8.
    assert_eq!(params, vec![320, 288 + 2048 + 64, 4096 + 16, 1152 + 8]);
    assert_eq!(s.layers[0].kind, "DepthwiseConv2D");
    let y = model
        .forward(
            Tensor::<4>::zeros([2, 32, 16, 16], &Device::flex()),
            Mode::Eval,
        )
        .unwrap();
    assert_eq!(y.dims(), vec![2, 8, 64, 64]);
}

#[test]
fn one_and_three_dimensional_networks_from_a_spec() {
    let signal = build(
        "input = [1, 100]
[[layers]]
type = \"conv1d\"
filters = 8
kernel = 5
padding = \"same\"
activation = \"relu\"
[[layers]]
type = \"batch_norm\"
[[layers]]
type = \"max_pool1d\"
pool = 2
[[layers]]
type = \"global_avg_pool\"
[[layers]]
type = \"dense\"
units = 2
",
    );
    let s = signal.summary().unwrap();
    assert_eq!(s.output_shape.0, vec![2]);
    // conv 8*5+8, BN 2*8 trainable + 2*8 running statistics, dense 8*2+2.
    assert_eq!(
        (s.trainable_params, s.non_trainable_params),
        (48 + 16 + 18, 16)
    );
    let y = signal
        .forward(
            Tensor::<3>::zeros([4, 1, 100], &Device::flex()),
            Mode::Train,
        )
        .unwrap();
    assert_eq!(y.dims(), vec![4, 2]);

    let volume = build(
        "input = [1, 16, 32, 32]
[[layers]]
type = \"conv3d\"
filters = 4
kernel = 3
padding = 1
[[layers]]
type = \"max_pool3d\"
pool = 2
[[layers]]
type = \"avg_pool3d\"
pool = [2, 4, 4]
[[layers]]
type = \"conv_transpose3d\"
filters = 2
kernel = 2
stride = 2
[[layers]]
type = \"flatten\"
",
    );
    let s = volume.summary().unwrap();
    let shapes: Vec<Vec<usize>> = s.layers.iter().map(|r| r.output_shape.0.clone()).collect();
    assert_eq!(
        shapes[..4],
        [
            vec![4, 16, 32, 32],
            vec![4, 8, 16, 16],
            vec![4, 4, 4, 4],
            vec![2, 8, 8, 8]
        ]
    );
    let y = volume
        .forward(
            Tensor::<5>::zeros([1, 1, 16, 32, 32], &Device::flex()),
            Mode::Eval,
        )
        .unwrap();
    assert_eq!(y.dims(), vec![1, 1024]);
}

#[test]
fn residual_concat_and_squeeze_excitation_blocks() {
    let model = build(
        "input = [16, 8, 8]
[[layers]]
type = \"residual\"
name = \"block1\"
activation = \"relu\"
[[layers.body]]
type = \"conv2d\"
filters = 16
kernel = 3
padding = \"same\"
[[layers.body]]
type = \"batch_norm\"
[[layers.body]]
type = \"se\"
reduction = 4
[[layers]]
type = \"residual\"
name = \"block2\"
[[layers.body]]
type = \"conv2d\"
filters = 32
kernel = 3
stride = 2
padding = 1
[[layers.shortcut]]
type = \"conv2d\"
filters = 32
kernel = 1
stride = 2
[[layers]]
type = \"concat\"
name = \"inception\"
[[layers.branches]]
layers = [{ type = \"conv2d\", filters = 8, kernel = 1 }]
[[layers.branches]]
layers = [{ type = \"conv2d\", filters = 4, kernel = 1 }, { type = \"conv2d\", filters = 12, kernel = 3, padding = \"same\" }]
[[layers.branches]]
layers = [{ type = \"max_pool2d\", pool = 3, stride = 1, padding = 1 }]
",
    );
    let s = model.summary().unwrap();
    let top: Vec<(&str, Vec<usize>)> = s
        .layers
        .iter()
        .filter(|r| r.depth == 0)
        .map(|r| (r.name.as_str(), r.output_shape.0.clone()))
        .collect();
    assert_eq!(
        top,
        vec![
            ("block1", vec![16, 8, 8]),
            ("block2", vec![32, 4, 4]),
            ("inception", vec![8 + 12 + 32, 4, 4])
        ]
    );
    assert!(
        s.layers
            .iter()
            .any(|r| r.name == "block1.body.se_1" && r.depth == 1)
    );
    // block1: conv 16*16*9+16, BN 32 (+32 running), SE 16*4+4 + 4*16+16; block2: 16*32*9+32 +
    // 16*32+32; inception: 32*8+8 + 32*4+4 + 4*12*9+12.
    let trainable = (2320 + 32 + 68 + 80) + (4640 + 544) + (264 + 132 + 444);
    assert_eq!(
        (s.trainable_params, s.non_trainable_params),
        (trainable, 32)
    );
    // Burn counts the running statistics among a module's parameters too.
    assert_eq!(s.total_params, model.num_params());
    let x = Tensor::<4>::random(
        [2, 16, 8, 8],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let y = model.forward(x, Mode::Train).unwrap();
    assert!(matches!(y, Features::Map2d(_)));
    assert_eq!(y.dims(), vec![2, 52, 4, 4]);

    let err = build_err(
        "input = [16, 8, 8]\n[[layers]]\ntype = \"residual\"\n[[layers.body]]\ntype = \"conv2d\"\nfilters = 8\nkernel = 1\n",
    );
    assert!(err.contains("add a projection shortcut"), "{err}");
    let err = build_err(
        "input = [16, 8, 8]\n[[layers]]\ntype = \"concat\"\n[[layers.branches]]\nlayers = [{ type = \"conv2d\", filters = 8, kernel = 1 }]\n[[layers.branches]]\nlayers = [{ type = \"conv2d\", filters = 8, kernel = 3 }]\n",
    );
    assert!(err.contains("cannot be concatenated"), "{err}");
}

/// Burn 0.22's grouped conv1d weight gradient is wrong when the padded input's tail is covered
/// by no window (see oracle.rs); convnet's Conv1d must not inherit that.
#[test]
fn conv1d_weight_gradient_is_right_where_burns_grouped_conv1d_is_not() {
    use convnet_layers::reference::{Array, conv_backward};
    let device = Device::flex().autodiff();
    let conv = convnet_layers::ConvConfig::new(4, 2)
        .with_stride(3)
        .with_groups(2)
        .init::<3>(2, &device)
        .unwrap();
    let x = Tensor::<3>::random([1, 2, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let y = conv.forward(x.clone()).unwrap();
    let dout = Tensor::<3>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
    let grads = (y * dout.clone()).sum().backward();
    let dw = values(conv.weight.val().grad(&grads).unwrap());
    let arr = |t: Tensor<3>| Array::new(t.dims().to_vec(), values(t));
    let (_, want, _) = conv_backward(
        &arr(dout),
        &arr(x),
        &arr(conv.weight.val()),
        &[3],
        &[(0, 0)],
        &[1],
        2,
    );
    for (g, w) in dw.iter().zip(want.into_vec()) {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn conv3d_with_asymmetric_same_padding_runs() {
    // Even kernel and stride 2: `same` pads more at the end, which Burn's conv3d rejects.
    let model = build(
        "input = [2, 7, 8, 9]\n[[layers]]\ntype = \"conv3d\"\nfilters = 3\nkernel = 2\nstride = 2\npadding = \"same\"\n",
    );
    let y = model
        .forward(
            Tensor::<5>::ones([1, 2, 7, 8, 9], &Device::flex()),
            Mode::Eval,
        )
        .unwrap();
    assert_eq!(y.dims(), vec![1, 3, 4, 4, 5]);
}
