//! Tensor operations Burn does not have, built from the ones it has so autodiff gives their
//! backward passes.

use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool1d, max_pool1d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

/// Settings of a 3D pooling window, axes in `(depth, height, width)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool3dOptions {
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    /// `(begin, end)` per axis.
    pub padding: [(usize, usize); 3],
    /// Max pooling only.
    pub dilation: [usize; 3],
    pub ceil_mode: bool,
    /// Average pooling only: count padded zeros in the mean.
    pub count_include_pad: bool,
}

impl Pool3dOptions {
    pub fn new(kernel: [usize; 3]) -> Self {
        Self {
            kernel,
            stride: kernel,
            padding: [(0, 0); 3],
            dilation: [1; 3],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

#[derive(Clone, Copy)]
enum Stat {
    Max,
    Avg,
}

/// A box window is separable: the max (or mean) over `kd x kh x kw` is the max (or mean) over
/// depth of the max (or mean) over each `kh x kw` slice. For the mean without padding this holds
/// because the count of real cells in a box is the product of the counts along each axis.
fn pool3d(x: Tensor<5>, o: &Pool3dOptions, stat: Stat) -> Tensor<5> {
    let [n, c, d, h, w] = x.dims();
    // Height and width: every depth slice as its own 2D image.
    let planes = x.reshape([n * c * d, 1, h, w]);
    let planes = match stat {
        Stat::Max => convnet_kernels::max_pool2d(
            planes,
            MaxPoolOptions::new([o.kernel[1], o.kernel[2]])
                .with_stride([o.stride[1], o.stride[2]])
                .with_padding_pairs([o.padding[1], o.padding[2]])
                .with_dilation([o.dilation[1], o.dilation[2]])
                .with_ceil_mode(o.ceil_mode),
        ),
        Stat::Avg => convnet_kernels::avg_pool2d(
            planes,
            AvgPoolOptions::new([o.kernel[1], o.kernel[2]])
                .with_stride([o.stride[1], o.stride[2]])
                .with_padding_pairs([o.padding[1], o.padding[2]])
                .with_count_include_pad(o.count_include_pad)
                .with_ceil_mode(o.ceil_mode),
        ),
    };
    let [_, _, oh, ow] = planes.dims();
    // Depth: one 1D signal per output pixel.
    let columns = planes
        .reshape([n * c, d, oh * ow])
        .swap_dims(1, 2)
        .reshape([n * c * oh * ow, 1, d]);
    let columns = match stat {
        Stat::Max => max_pool1d(
            columns,
            MaxPoolOptions::new([o.kernel[0]])
                .with_stride([o.stride[0]])
                .with_padding_pairs([o.padding[0]])
                .with_dilation([o.dilation[0]])
                .with_ceil_mode(o.ceil_mode),
        ),
        Stat::Avg => avg_pool1d(
            columns,
            AvgPoolOptions::new([o.kernel[0]])
                .with_stride([o.stride[0]])
                .with_padding_pairs([o.padding[0]])
                .with_count_include_pad(o.count_include_pad)
                .with_ceil_mode(o.ceil_mode),
        ),
    };
    let [_, _, od] = columns.dims();
    columns
        .reshape([n * c, oh * ow, od])
        .swap_dims(1, 2)
        .reshape([n, c, od, oh, ow])
}

/// 3D max pooling of `[N, C, D, H, W]`.
pub fn max_pool3d(x: Tensor<5>, options: &Pool3dOptions) -> Tensor<5> {
    pool3d(x, options, Stat::Max)
}

/// 3D average pooling of `[N, C, D, H, W]`.
pub fn avg_pool3d(x: Tensor<5>, options: &Pool3dOptions) -> Tensor<5> {
    pool3d(x, options, Stat::Avg)
}
