//! Layer outputs against loops written out by hand.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use convnet_layers::{Conv2dConfig, Padding, Pool2dConfig, PoolKind, ZeroPadding2dConfig};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Direct convolution with explicit (begin, end) padding, stride and dilation; groups = 1.
#[allow(clippy::too_many_arguments)]
fn naive_conv(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    wt: &[f32],
    [f, _, kh, kw]: [usize; 4],
    bias: &[f32],
    stride: usize,
    dilation: usize,
    (pt, pb, pl, pr): (usize, usize, usize, usize),
) -> (Vec<f32>, [usize; 4]) {
    let oh = (h + pt + pb - dilation * (kh - 1) - 1) / stride + 1;
    let ow = (w + pl + pr - dilation * (kw - 1) - 1) / stride + 1;
    let mut out = vec![0.0; n * f * oh * ow];
    for b in 0..n {
        for o in 0..f {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bias[o];
                    for ci in 0..c {
                        for u in 0..kh {
                            for v in 0..kw {
                                let y = (i * stride + u * dilation) as isize - pt as isize;
                                let xx = (j * stride + v * dilation) as isize - pl as isize;
                                if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                    continue;
                                }
                                acc += x[((b * c + ci) * h + y as usize) * w + xx as usize]
                                    * wt[((o * c + ci) * kh + u) * kw + v];
                            }
                        }
                    }
                    out[((b * f + o) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
    (out, [n, f, oh, ow])
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
        (8, 4, 1, (1, 1, 1, 1)),
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
        let (expected, dims) = naive_conv(
            &values(x),
            [2, 2, size, size],
            &values(conv.weight.val()),
            [3, 2, k, k],
            &values(conv.bias.as_ref().unwrap().val()),
            2,
            dil,
            pads,
        );
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
    let (expected, dims) = naive_conv(
        &values(x),
        [1, 3, 6, 5],
        &values(conv.weight.val()),
        [4, 3, 3, 3],
        &values(conv.bias.as_ref().unwrap().val()),
        1,
        1,
        (1, 2, 0, 3),
    );
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
