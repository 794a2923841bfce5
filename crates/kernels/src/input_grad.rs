//! The input gradient of a grouped stride-1 convolution as a forward convolution.
//!
//! Burn computes every input gradient as a transposed convolution, and flex's grouped transposed
//! convolution is slow (a depthwise 3x3's backward took 30x its forward). With stride 1 the
//! input gradient is itself a convolution: the output gradient, padded by `d(k-1) - pad`,
//! convolved with the kernels flipped in space and with input / output channels swapped inside
//! each group, which runs on flex's fast grouped and depthwise forward paths.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::tensor::ops::ConvOptions;

/// `d conv2d(x, weight) / dx` for the output gradient `grad`, or `None` where this route does
/// not apply (ungrouped, strided, or padding wider than the dilated kernel).
pub(crate) fn grouped_stride1(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let groups = options.groups;
    if groups == 1 || options.stride != [1, 1] {
        return None;
    }
    let shape = weight.layout().shape();
    let [f, cg, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
    let (begin, end) = (options.padding_begin(), options.padding_end());
    let reach = [
        options.dilation[0] * (kh - 1),
        options.dilation[1] * (kw - 1),
    ];
    let pad = |axis: usize| -> Option<(usize, usize)> {
        Some((
            reach[axis].checked_sub(begin[axis])?,
            reach[axis].checked_sub(end[axis])?,
        ))
    };
    let (pad_h, pad_w) = (pad(0)?, pad(1)?);
    let fg = f / groups;
    // [g·fg, cg, kh, kw] -> [g, cg, fg, kh, kw], flipped in space -> [g·cg, fg, kh, kw].
    let w = Flex::float_reshape(weight.clone(), [groups, fg, cg, kh, kw].into());
    let w = Flex::float_flip(Flex::float_permute(w, &[0, 2, 1, 3, 4]), &[3, 4]);
    let w = Flex::float_reshape(w.to_contiguous(), [groups * cg, fg, kh, kw].into());
    let dx = Flex::conv2d(
        grad.clone(),
        w,
        None,
        ConvOptions::new_with_padding([1, 1], [pad_h, pad_w], options.dilation, groups),
    );
    debug_assert_eq!(dx.layout().shape(), x.layout().shape());
    Some(dx)
}
