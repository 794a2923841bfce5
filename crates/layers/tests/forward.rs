//! Layer outputs against loops written out by hand.

mod common;

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::values;
use convnet_layers::reference::{Array, conv_forward};
use convnet_layers::{Conv2d, Conv2dConfig, Padding, Pool2dConfig, PoolKind, ZeroPadding2dConfig};

/// The course's loop-level convolution (`reference::conv_forward`) with the layer's own weights
/// and explicit `(top, bottom, left, right)` padding.
fn reference_conv(
    x: Tensor<4>,
    conv: &Conv2d,
    stride: usize,
    dilation: usize,
    (pt, pb, pl, pr): (usize, usize, usize, usize),
) -> (Vec<f32>, [usize; 4]) {
    let arr = |t: Tensor<4>| Array::new(t.dims().to_vec(), values(t));
    let bias = values(conv.bias.as_ref().unwrap().val());
    let y = conv_forward(
        &arr(x),
        &arr(conv.weight.val()),
        Some(&bias),
        &[stride, stride],
        &[(pt, pb), (pl, pr)],
        &[dilation, dilation],
        1,
    );
    let dims = [y.shape[0], y.shape[1], y.shape[2], y.shape[3]];
    (y.into_vec(), dims)
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

#[test]
fn same_padding_with_stride_2_pads_the_extra_pixel_at_the_end() {
    let device = Device::flex();
    // 8x8, kernel 4, stride 2 -> 4x4 with total padding 2 = 1 + 1; 7x7 kernel 4 stride 2 -> 4x4,
    // total 3 = 1 + 2 (the extra on the bottom/right).
    for (size, k, dil, pads) in [
        (8usize, 4, 1, (1, 1, 1, 1)),
        (7, 4, 1, (1, 2, 1, 2)),
        (9, 3, 2, (2, 2, 2, 2)),
    ] {
        let conv = Conv2dConfig::new(3, k)
            .with_stride(2)
            .with_dilation(dil)
            .with_padding(Padding::Same)
            .init(2, &device)
            .unwrap();
        let x = Tensor::<4>::random([2, 2, size, size], Distribution::Normal(0.0, 1.0), &device);
        let y = conv.forward(x.clone()).unwrap();
        let (expected, dims) = reference_conv(x, &conv, 2, dil, pads);
        assert_eq!(y.dims(), dims);
        assert_eq!(dims[2], size.div_ceil(2));
        assert_close(&values(y), &expected);
    }
}

#[test]
fn zero_padding_then_valid_conv_equals_explicit_padding() {
    let device = Device::flex();
    let pad = ZeroPadding2dConfig::new(Padding::Explicit(vec![(1, 2), (0, 3)]))
        .init()
        .unwrap();
    let conv = Conv2dConfig::new(4, 3).init(3, &device).unwrap();
    let x = Tensor::<4>::random([1, 3, 6, 5], Distribution::Normal(0.0, 1.0), &device);
    let y = conv.forward(pad.forward(x.clone()).unwrap()).unwrap();
    let (expected, dims) = reference_conv(x, &conv, 1, 1, (1, 2, 0, 3));
    assert_eq!(y.dims(), dims);
    assert_close(&values(y), &expected);
}

#[test]
fn pools_take_the_max_and_the_mean_of_each_window() {
    let device = Device::flex();
    let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let t = Tensor::<4>::from_data(TensorData::new(x, [1, 1, 4, 4]), &device);
    let max = Pool2dConfig::new(2).init(PoolKind::Max).unwrap();
    let avg = Pool2dConfig::new(2).init(PoolKind::Avg).unwrap();
    assert_eq!(
        values(max.forward(t.clone()).unwrap()),
        [5.0, 7.0, 13.0, 15.0]
    );
    assert_eq!(
        values(avg.forward(t.clone()).unwrap()),
        [2.5, 4.5, 10.5, 12.5]
    );
    // 3x3 windows at stride 1: the course's "f = 3, s = 1" max pool.
    let max3 = Pool2dConfig::new(3)
        .with_stride(1)
        .init(PoolKind::Max)
        .unwrap();
    assert_eq!(values(max3.forward(t).unwrap()), [10.0, 11.0, 14.0, 15.0]);
}
