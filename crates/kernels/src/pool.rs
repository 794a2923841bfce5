//! What the average and max pools share: how many windows an axis has, and how planes are split
//! into rayon tasks.

/// The windows along an axis of `len` for a window spanning `reach` cells (the dilated kernel),
/// PyTorch's rule: in ceil mode a last partial window is kept only if it starts inside the input
/// or the begin padding. `None` if the window is longer than the padded input.
pub(crate) fn outputs(
    len: usize,
    reach: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
) -> Option<usize> {
    let span = (len + 2 * pad).checked_sub(reach)?;
    let mut outputs = if ceil {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    if ceil && (outputs - 1) * stride >= len + pad {
        outputs -= 1;
    }
    Some(outputs)
}

/// Planes handed to one rayon task: enough work to cover its dispatch.
pub(crate) fn planes_per_task(plane_len: usize) -> usize {
    (4096 / plane_len.max(1)).max(1)
}
