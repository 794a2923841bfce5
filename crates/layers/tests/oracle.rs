//! The engine against the oracle: Burn's convolutions and pools (and ours, `ops::max_pool3d` /
//! `ops::avg_pool3d`) against the loop-level reference of `convnet_layers::reference`, on random
//! tiny shapes, forward outputs and gradients.
//!
//! Gradients come from Burn's autodiff with a random upstream gradient `g`: the loss is
//! `sum(y * g)`, so `dL/dy = g` and the input, weight and bias gradients are compared with the
//! reference's backward passes fed the same `g`.
//!
//! Tolerance: an engine value `a` matches a reference value `b` when
//! `|a - b| <= 1e-4 * max(1, |b|)` — relative 1e-4 for large values, absolute 1e-4 near zero
//! (inputs are in [-1, 1), and the reference accumulates in f64).

use burn::tensor::module::{
    avg_pool1d, avg_pool2d, conv_transpose1d, conv_transpose2d, conv_transpose3d, conv1d, conv2d,
    conv3d, max_pool1d, max_pool2d,
};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, ConvTransposeOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_layers::geometry::{Padding, Rounding, window};
use convnet_layers::ops::{Pool3dOptions, avg_pool3d, max_pool3d};
use convnet_layers::reference::{self, Array, PoolKind};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------------
// Data and comparison

/// A deterministic stream of `u64` (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Values uniform in [-1, 1).
fn fill(shape: &[usize], seed: u64) -> Array {
    let mut rng = Rng(seed);
    Array::from_fn(shape.to_vec(), |_| {
        (rng.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    })
}

/// Distinct values, multiples of 1/8 in random order, so every max pooling window has a unique
/// maximum (ties would make the gradient depend on the engine's tie rule).
fn distinct(shape: &[usize], seed: u64) -> Array {
    let len: usize = shape.iter().product();
    let mut values: Vec<f32> = (0..len)
        .map(|i| (i as f32 - len as f32 / 2.0) / 8.0)
        .collect();
    let mut rng = Rng(seed);
    for i in (1..len).rev() {
        values.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    Array::new(shape.to_vec(), values)
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// A constant tensor (no gradient).
fn tensor<const D: usize>(a: &Array, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(a.data.clone(), a.shape.clone()), device)
}

/// A leaf whose gradient is kept.
fn param<const D: usize>(a: &Array, device: &Device) -> Tensor<D> {
    tensor::<D>(a, device).require_grad()
}

fn array<const D: usize>(t: Tensor<D>) -> Array {
    let shape = t.dims().to_vec();
    Array::new(shape, t.into_data().try_to_vec::<f32>().unwrap())
}

/// `|engine - reference| <= 1e-4 * max(1, |reference|)` elementwise, same shape.
fn close(what: &str, engine: &Array, reference: &Array) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &engine.shape,
        &reference.shape,
        "{}: shapes differ (engine vs reference)",
        what
    );
    for (i, (a, b)) in engine.data.iter().zip(&reference.data).enumerate() {
        prop_assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{}[{}]: engine {} vs reference {}",
            what,
            i,
            a,
            b
        );
    }
    Ok(())
}

fn arr<T: Copy, const N: usize>(v: &[T]) -> [T; N] {
    v.try_into().expect("one value per spatial axis")
}

/// `loss = sum(y * g)` with `g` random, and its backward pass; returns `(y, g, grads)`.
fn backward<const D: usize>(
    y: Tensor<D>,
    seed: u64,
    device: &Device,
) -> (Array, Array, burn::tensor::Gradients) {
    let out = array(y.clone());
    let g = fill(&out.shape, seed ^ 0x5EED);
    let grads = (y * tensor::<D>(&g, device)).sum().backward();
    (out, g, grads)
}

fn grad<const D: usize>(t: &Tensor<D>, grads: &burn::tensor::Gradients) -> Array {
    array(
        t.grad(grads)
            .expect("a leaf that requires grad has a gradient"),
    )
}

// ---------------------------------------------------------------------------------------------
// Convolutions

/// One spatial axis of a convolution.
#[derive(Debug, Clone)]
struct ConvAxis {
    len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: (usize, usize),
}

#[derive(Debug, Clone)]
struct ConvCase {
    batch: usize,
    groups: usize,
    /// Input channels per group.
    c_per_group: usize,
    /// Filters per group.
    f_per_group: usize,
    axes: Vec<ConvAxis>,
    bias: bool,
    seed: u64,
}

impl ConvCase {
    fn x_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch, self.groups * self.c_per_group];
        s.extend(self.axes.iter().map(|a| a.len));
        s
    }
    fn w_shape(&self) -> Vec<usize> {
        let mut s = vec![self.groups * self.f_per_group, self.c_per_group];
        s.extend(self.axes.iter().map(|a| a.kernel));
        s
    }
    fn stride(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.stride).collect()
    }
    fn padding(&self) -> Vec<(usize, usize)> {
        self.axes.iter().map(|a| a.pad).collect()
    }
    fn dilation(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.dilation).collect()
    }
    fn options<const N: usize>(&self) -> ConvOptions<N> {
        ConvOptions::new_with_padding(
            arr(&self.stride()),
            arr(&self.padding()),
            arr(&self.dilation()),
            self.groups,
        )
    }
}

/// Kernel 1..=3, stride 1..=3, dilation 1..=2, padding 0..=2 per side (equal sides when
/// `symmetric`), and an input length that leaves 1 to `1 + max_extra / stride` outputs.
fn conv_axis(max_extra: usize, symmetric: bool) -> impl Strategy<Value = ConvAxis> {
    (
        1..=3usize,
        1..=3usize,
        1..=2usize,
        0..=2usize,
        0..=2usize,
        0..=max_extra,
    )
        .prop_map(move |(kernel, stride, dilation, pb, pe, extra)| {
            let pad = (pb, if symmetric { pb } else { pe });
            let effective = dilation * (kernel - 1) + 1;
            let len = (effective + extra).saturating_sub(pad.0 + pad.1).max(1);
            ConvAxis {
                len,
                kernel,
                stride,
                dilation,
                pad,
            }
        })
}

fn conv_case(ndim: usize, max_extra: usize, symmetric: bool) -> impl Strategy<Value = ConvCase> {
    (
        1..=2usize,
        1..=3usize,
        1..=2usize,
        1..=2usize,
        prop::collection::vec(conv_axis(max_extra, symmetric), ndim),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch, groups, c_per_group, f_per_group, axes, bias, seed)| ConvCase {
                batch,
                groups,
                c_per_group,
                f_per_group,
                axes,
                bias,
                seed,
            },
        )
}

/// Whether a 1D case hits a bug of Burn 0.22.1: the weight gradient of a grouped `conv1d`
/// (`groups > 1`) is wrong when the windows leave at least `dilation` cells uncovered at the end
/// of the padded input, i.e. `(n + p_b + p_e - d (k - 1) - 1) mod s >= d`. Burn computes each
/// group's weight gradient as a convolution of the input by the output gradient, whose length is
/// then `k + floor(r / d)` rather than `k`; `conv1d_weight_grad_groups` (burn-backend
/// `src/backend/ops/modules/conv.rs`) writes that longer result into the `k`-long slot without
/// cropping it, which scrambles `dw` (`conv2d_weight_grad_groups` / `conv3d_...` and the
/// `groups == 1` path crop it; the 2D version was fixed by tracel-ai/burn#1891). Forward output,
/// input and bias gradients are right.
fn hits_burn_conv1d_grouped_weight_grad_bug(case: &ConvCase) -> bool {
    let a = &case.axes[0];
    let padded = a.len + a.pad.0 + a.pad.1;
    let effective = a.dilation * (a.kernel - 1) + 1;
    case.groups > 1 && (padded - effective) % a.stride >= a.dilation
}

/// Runs `engine(x, w, b)` on Burn's autodiff device and compares its output and its gradients
/// with `reference::conv_forward` / `reference::conv_backward`.
fn check_conv<const D: usize>(
    case: &ConvCase,
    engine: impl FnOnce(Tensor<D>, Tensor<D>, Option<Tensor<1>>) -> Tensor<D>,
) -> Result<(), TestCaseError> {
    let (stride, padding, dilation) = (case.stride(), case.padding(), case.dilation());
    let x = fill(&case.x_shape(), case.seed);
    let w = fill(&case.w_shape(), case.seed.wrapping_add(1));
    let b = case
        .bias
        .then(|| fill(&[case.groups * case.f_per_group], case.seed.wrapping_add(2)));

    let dev = device();
    let (xt, wt) = (param::<D>(&x, &dev), param::<D>(&w, &dev));
    let bt = b.as_ref().map(|b| param::<1>(b, &dev));
    let (y, g, grads) = backward(engine(xt.clone(), wt.clone(), bt.clone()), case.seed, &dev);

    let b_ref = b.as_ref().map(|b| b.data.as_slice());
    let expected =
        reference::conv_forward(&x, &w, b_ref, &stride, &padding, &dilation, case.groups);
    close("y", &y, &expected)?;
    let (dx, dw, db) =
        reference::conv_backward(&g, &x, &w, &stride, &padding, &dilation, case.groups);
    close("dx", &grad(&xt, &grads), &dx)?;
    close("dw", &grad(&wt, &grads), &dw)?;
    if let Some(bt) = &bt {
        close("db", &grad(bt, &grads), &Array::from(db))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Transposed convolutions

#[derive(Debug, Clone)]
struct TransposeAxis {
    len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    output_pad: usize,
}

#[derive(Debug, Clone)]
struct TransposeCase {
    batch: usize,
    groups: usize,
    c_per_group: usize,
    f_per_group: usize,
    axes: Vec<TransposeAxis>,
    bias: bool,
    seed: u64,
}

impl TransposeCase {
    fn x_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch, self.groups * self.c_per_group];
        s.extend(self.axes.iter().map(|a| a.len));
        s
    }
    /// `[C_in, F / groups, k..]`.
    fn w_shape(&self) -> Vec<usize> {
        let mut s = vec![self.groups * self.c_per_group, self.f_per_group];
        s.extend(self.axes.iter().map(|a| a.kernel));
        s
    }
    fn get(&self, f: impl Fn(&TransposeAxis) -> usize) -> Vec<usize> {
        self.axes.iter().map(f).collect()
    }
    fn options<const N: usize>(&self) -> ConvTransposeOptions<N> {
        ConvTransposeOptions::new(
            arr(&self.get(|a| a.stride)),
            arr(&self.get(|a| a.pad)),
            arr(&self.get(|a| a.output_pad)),
            arr(&self.get(|a| a.dilation)),
            self.groups,
        )
    }
}

/// Input length 1..=max_len, kernel 1..=3, stride 1..=3, dilation 1..=2, padding 0..=2 and
/// output padding below `max(stride, dilation)` (PyTorch's rule), keeping at least one output:
/// `(n - 1) s - 2 p + d (k - 1) + output_padding + 1 >= 1`.
fn transpose_axis(max_len: usize) -> impl Strategy<Value = TransposeAxis> {
    (1..=max_len, 1..=3usize, 1..=3usize, 1..=2usize, 0..=2usize)
        .prop_flat_map(|(len, kernel, stride, dilation, pad)| {
            (
                Just((len, kernel, stride, dilation, pad)),
                0..stride.max(dilation),
            )
        })
        .prop_map(
            |((len, kernel, stride, dilation, pad), output_pad)| TransposeAxis {
                len,
                kernel,
                stride,
                dilation,
                pad,
                output_pad,
            },
        )
        .prop_filter("no output", |a| {
            (a.len - 1) * a.stride + a.dilation * (a.kernel - 1) + a.output_pad + 1 > 2 * a.pad
        })
}

fn transpose_case(ndim: usize, max_len: usize) -> impl Strategy<Value = TransposeCase> {
    (
        1..=2usize,
        1..=3usize,
        1..=2usize,
        1..=2usize,
        prop::collection::vec(transpose_axis(max_len), ndim),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch, groups, c_per_group, f_per_group, axes, bias, seed)| TransposeCase {
                batch,
                groups,
                c_per_group,
                f_per_group,
                axes,
                bias,
                seed,
            },
        )
}

fn check_transpose<const D: usize>(
    case: &TransposeCase,
    engine: impl FnOnce(Tensor<D>, Tensor<D>, Option<Tensor<1>>) -> Tensor<D>,
) -> Result<(), TestCaseError> {
    let stride = case.get(|a| a.stride);
    let pad = case.get(|a| a.pad);
    let output_pad = case.get(|a| a.output_pad);
    let dilation = case.get(|a| a.dilation);
    let x = fill(&case.x_shape(), case.seed);
    let w = fill(&case.w_shape(), case.seed.wrapping_add(1));
    let b = case
        .bias
        .then(|| fill(&[case.groups * case.f_per_group], case.seed.wrapping_add(2)));

    let dev = device();
    let (xt, wt) = (param::<D>(&x, &dev), param::<D>(&w, &dev));
    let bt = b.as_ref().map(|b| param::<1>(b, &dev));
    let (y, g, grads) = backward(engine(xt.clone(), wt.clone(), bt.clone()), case.seed, &dev);

    let b_ref = b.as_ref().map(|b| b.data.as_slice());
    let expected = reference::conv_transpose_forward(
        &x,
        &w,
        b_ref,
        &stride,
        &pad,
        &output_pad,
        &dilation,
        case.groups,
    );
    close("y", &y, &expected)?;
    let (dx, dw, db) =
        reference::conv_transpose_backward(&g, &x, &w, &stride, &pad, &dilation, case.groups);
    close("dx", &grad(&xt, &grads), &dx)?;
    close("dw", &grad(&wt, &grads), &dw)?;
    if let Some(bt) = &bt {
        close("db", &grad(bt, &grads), &Array::from(db))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pooling

#[derive(Debug, Clone)]
struct PoolAxis {
    len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: (usize, usize),
}

impl PoolAxis {
    /// Whether every window of this axis covers at least one real cell. PyTorch's limit on
    /// padding (at most half the kernel) guarantees it without dilation; with dilation a window
    /// can fall in the gaps, e.g. taps -1 and 1 over a single cell. Such a window's max is `-inf`
    /// and its gradient has no cell to go to, so those cases are left out.
    fn windows_touch_input(&self, ceil_mode: bool) -> bool {
        let effective = self.dilation * (self.kernel - 1) + 1;
        let padded = self.len + self.pad.0 + self.pad.1;
        let span = padded - effective;
        let mut out = if ceil_mode {
            span.div_ceil(self.stride)
        } else {
            span / self.stride
        } + 1;
        if ceil_mode && (out - 1) * self.stride >= self.len + self.pad.0 {
            out -= 1;
        }
        (0..out).all(|o| {
            (0..self.kernel).any(|k| {
                let t = (o * self.stride + k * self.dilation) as isize - self.pad.0 as isize;
                (0..self.len as isize).contains(&t)
            })
        })
    }
}

#[derive(Debug, Clone)]
struct PoolCase {
    batch: usize,
    channels: usize,
    axes: Vec<PoolAxis>,
    ceil_mode: bool,
    count_include_pad: bool,
    seed: u64,
}

impl PoolCase {
    fn x_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch, self.channels];
        s.extend(self.axes.iter().map(|a| a.len));
        s
    }
    fn get(&self, f: impl Fn(&PoolAxis) -> usize) -> Vec<usize> {
        self.axes.iter().map(f).collect()
    }
    fn padding(&self) -> Vec<(usize, usize)> {
        self.axes.iter().map(|a| a.pad).collect()
    }
    fn max_options<const N: usize>(&self) -> MaxPoolOptions<N> {
        MaxPoolOptions::new(arr(&self.get(|a| a.kernel)))
            .with_stride(arr(&self.get(|a| a.stride)))
            .with_padding_pairs(arr(&self.padding()))
            .with_dilation(arr(&self.get(|a| a.dilation)))
            .with_ceil_mode(self.ceil_mode)
    }
    fn avg_options<const N: usize>(&self) -> AvgPoolOptions<N> {
        AvgPoolOptions::new(arr(&self.get(|a| a.kernel)))
            .with_stride(arr(&self.get(|a| a.stride)))
            .with_padding_pairs(arr(&self.padding()))
            .with_count_include_pad(self.count_include_pad)
            .with_ceil_mode(self.ceil_mode)
    }
    fn options_3d(&self) -> Pool3dOptions {
        Pool3dOptions {
            kernel: arr(&self.get(|a| a.kernel)),
            stride: arr(&self.get(|a| a.stride)),
            padding: arr(&self.padding()),
            dilation: arr(&self.get(|a| a.dilation)),
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }
    fn windows_touch_input(&self) -> bool {
        self.axes
            .iter()
            .all(|a| a.windows_touch_input(self.ceil_mode))
    }
}

/// Kernel 1..=3, stride 1..=3, dilation 1..=`max_dilation`, padding at most half the kernel on
/// each side (PyTorch's limit), input length leaving 1 to `1 + max_extra / stride` windows.
fn pool_axis(max_extra: usize, max_dilation: usize) -> impl Strategy<Value = PoolAxis> {
    (1..=3usize, 1..=3usize, 1..=max_dilation)
        .prop_flat_map(move |(kernel, stride, dilation)| {
            (
                Just((kernel, stride, dilation)),
                0..=kernel / 2,
                0..=kernel / 2,
                0..=max_extra,
            )
        })
        .prop_map(|((kernel, stride, dilation), pb, pe, extra)| {
            let effective = dilation * (kernel - 1) + 1;
            PoolAxis {
                len: (effective + extra).saturating_sub(pb + pe).max(1),
                kernel,
                stride,
                dilation,
                pad: (pb, pe),
            }
        })
}

fn pool_case(
    ndim: usize,
    max_extra: usize,
    max_dilation: usize,
) -> impl Strategy<Value = PoolCase> {
    (
        1..=2usize,
        1..=2usize,
        prop::collection::vec(pool_axis(max_extra, max_dilation), ndim),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch, channels, axes, ceil_mode, count_include_pad, seed)| PoolCase {
                batch,
                channels,
                axes,
                ceil_mode,
                count_include_pad,
                seed,
            },
        )
        .prop_filter("a window over padding only", PoolCase::windows_touch_input)
}

/// `case` with each axis's end padding set to its begin padding (both within PyTorch's limit).
fn symmetric(mut case: PoolCase) -> PoolCase {
    for axis in &mut case.axes {
        axis.pad.1 = axis.pad.0;
        // At least one whole (dilated) window, as `pool_axis` guarantees for the padding it drew.
        let reach = axis.dilation * (axis.kernel - 1) + 1;
        axis.len = axis.len.max(reach.saturating_sub(2 * axis.pad.0)).max(1);
    }
    case
}

/// Runs `engine(x)` and compares its output and input gradient with `reference::pool_forward`
/// / `reference::pool_backward`. Max pooling inputs are distinct values.
fn check_pool<const D: usize>(
    case: &PoolCase,
    kind: PoolKind,
    engine: impl Fn(Tensor<D>) -> Tensor<D>,
) -> Result<(), TestCaseError> {
    let kernel = case.get(|a| a.kernel);
    let stride = case.get(|a| a.stride);
    let padding = case.padding();
    let dilation = match kind {
        PoolKind::Max => case.get(|a| a.dilation),
        PoolKind::Avg => vec![1; case.axes.len()],
    };
    let x = match kind {
        PoolKind::Max => distinct(&case.x_shape(), case.seed),
        PoolKind::Avg => fill(&case.x_shape(), case.seed),
    };

    let dev = device();
    let xt = param::<D>(&x, &dev);
    let (y, g, grads) = backward(engine(xt.clone()), case.seed, &dev);

    let expected = reference::pool_forward(
        &x,
        kind,
        &kernel,
        &stride,
        &padding,
        &dilation,
        case.ceil_mode,
        case.count_include_pad,
    );
    close("y", &y, &expected)?;
    // Without gradients (inference) the kernels may take other paths (no arg-max kept).
    let untracked = engine(tensor::<D>(&x, &dev));
    close("y without gradients", &array(untracked), &expected)?;
    let dx = reference::pool_backward(
        &g,
        &x,
        kind,
        &kernel,
        &stride,
        &padding,
        &dilation,
        case.ceil_mode,
        case.count_include_pad,
    );
    close("dx", &grad(&xt, &grads), &dx)
}

// ---------------------------------------------------------------------------------------------
// `same` padding through the shared window rule

#[derive(Debug, Clone)]
struct SameCase {
    batch: usize,
    channels: usize,
    filters: usize,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    seed: u64,
}

fn same_case(max_dilation: usize) -> impl Strategy<Value = SameCase> {
    let pair = proptest::array::uniform2::<std::ops::RangeInclusive<usize>>;
    (
        1..=2usize,
        1..=2usize,
        1..=2usize,
        pair(1..=7),
        pair(1..=4),
        pair(1..=3),
        pair(1..=max_dilation),
        any::<u64>(),
    )
        .prop_map(
            |(batch, channels, filters, input, kernel, stride, dilation, seed)| SameCase {
                batch,
                channels,
                filters,
                input,
                kernel,
                stride,
                dilation,
                seed,
            },
        )
}

impl SameCase {
    /// The `(begin, end)` padding that `geometry::window` picks for `same`, after checking that
    /// it gives `ceil(n / s)` outputs.
    fn pads(&self) -> Result<[(usize, usize); 2], TestCaseError> {
        let axes = window(
            self.input,
            self.kernel,
            self.stride,
            self.dilation,
            &Padding::Same,
            Rounding::Floor,
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (a, g) in axes.iter().enumerate() {
            prop_assert_eq!(g.output, self.input[a].div_ceil(self.stride[a]));
        }
        Ok(axes.map(|g| (g.pad_begin, g.pad_end)))
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// `cases` cases, or `PROPTEST_CASES` when set (for a deeper run); failures are reported with
/// their minimal case but not saved to a regressions file.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Leaves out the cases of a Burn 0.22.1 bug, see `hits_burn_conv1d_grouped_weight_grad_bug`.
    #[test]
    fn conv1d_matches_reference(
        case in conv_case(1, 4, false).prop_filter(
            "Burn 0.22.1 conv1d grouped weight-gradient bug",
            |c| !hits_burn_conv1d_grouped_weight_grad_bug(c),
        )
    ) {
        let options = case.options::<1>();
        check_conv::<3>(&case, |x, w, b| conv1d(x, w, b, options))?;
    }

    #[test]
    fn conv2d_matches_reference(case in conv_case(2, 3, false)) {
        let options = case.options::<2>();
        check_conv::<4>(&case, |x, w, b| conv2d(x, w, b, options))?;
    }

    /// convnet's own kernel (its im2col + GEMM weight gradient, its grouped stride-1 input
    /// gradient) over the same random shapes, strides, dilations, asymmetric paddings and groups.
    #[test]
    fn convnet_kernel_conv2d_matches_reference(case in conv_case(2, 3, false)) {
        let options = case.options::<2>();
        check_conv::<4>(&case, |x, w, b| kernel_conv2d(x, w, b, options))?;
    }

    #[test]
    fn conv_transpose1d_matches_reference(case in transpose_case(1, 5)) {
        let options = case.options::<1>();
        check_transpose::<3>(&case, |x, w, b| conv_transpose1d(x, w, b, options))?;
    }

    #[test]
    fn conv_transpose2d_matches_reference(case in transpose_case(2, 3)) {
        let options = case.options::<2>();
        check_transpose::<4>(&case, |x, w, b| conv_transpose2d(x, w, b, options))?;
    }

    #[test]
    fn max_pool1d_matches_reference(case in pool_case(1, 4, 2)) {
        let options = case.max_options::<1>();
        check_pool::<3>(&case, PoolKind::Max, |x| max_pool1d(x, options.clone()))?;
    }

    #[test]
    fn max_pool2d_matches_reference(case in pool_case(2, 3, 2)) {
        let options = case.max_options::<2>();
        check_pool::<4>(&case, PoolKind::Max, |x| max_pool2d(x, options.clone()))?;
    }

    #[test]
    fn avg_pool1d_matches_reference(case in pool_case(1, 4, 1)) {
        let options = case.avg_options::<1>();
        check_pool::<3>(&case, PoolKind::Avg, |x| avg_pool1d(x, options.clone()))?;
    }

    #[test]
    fn avg_pool2d_matches_reference(case in pool_case(2, 3, 1)) {
        let options = case.avg_options::<2>();
        check_pool::<4>(&case, PoolKind::Avg, |x| avg_pool2d(x, options.clone()))?;
    }

    /// convnet's own max pool (forward and backward, dilated windows too) where it applies:
    /// padding equal on both sides of an axis.
    #[test]
    fn convnet_kernel_max_pool2d_matches_reference(case in pool_case(2, 5, 2).prop_map(symmetric).prop_filter("a window over padding only", PoolCase::windows_touch_input)) {
        let options = case.max_options::<2>();
        check_pool::<4>(&case, PoolKind::Max, |x| convnet_kernels::max_pool2d(x, options.clone()))?;
    }

    /// convnet's own average pool (forward and backward) where it applies: padding equal on both
    /// sides of an axis (other cases go to Burn's, checked above).
    #[test]
    fn convnet_kernel_avg_pool2d_matches_reference(case in pool_case(2, 5, 1).prop_map(symmetric).prop_filter("a window over padding only", PoolCase::windows_touch_input)) {
        let options = case.avg_options::<2>();
        check_pool::<4>(&case, PoolKind::Avg, |x| convnet_kernels::avg_pool2d(x, options.clone()))?;
    }

    /// `same` padding from `geometry::window` (an odd total going to the end) fed to Burn's conv2d
    /// agrees with the reference run with the same padding, and keeps `ceil(n / s)` outputs.
    #[test]
    fn same_padding_conv2d_matches_reference(case in same_case(2), groups in 1..=2usize) {
        let pads = case.pads()?;
        let conv = ConvCase {
            batch: case.batch,
            groups,
            c_per_group: case.channels,
            f_per_group: case.filters,
            axes: (0..2)
                .map(|a| ConvAxis {
                    len: case.input[a],
                    kernel: case.kernel[a],
                    stride: case.stride[a],
                    dilation: case.dilation[a],
                    pad: pads[a],
                })
                .collect(),
            bias: true,
            seed: case.seed,
        };
        let options = conv.options::<2>();
        check_conv::<4>(&conv, |x, w, b| conv2d(x, w, b, options))?;
    }

    /// `same` pooling as Keras does it: max over `-inf` padding, the mean over real cells only
    /// (`count_include_pad = false`). Without dilation the `same` padding never exceeds half
    /// the kernel, so PyTorch's limit holds.
    #[test]
    fn same_padding_pool2d_matches_reference(case in same_case(1), max in any::<bool>()) {
        let pads = case.pads()?;
        let pool = PoolCase {
            batch: case.batch,
            channels: case.channels,
            axes: (0..2)
                .map(|a| PoolAxis {
                    len: case.input[a],
                    kernel: case.kernel[a],
                    stride: case.stride[a],
                    dilation: 1,
                    pad: pads[a],
                })
                .collect(),
            ceil_mode: false,
            count_include_pad: false,
            seed: case.seed,
        };
        if max {
            let options = pool.max_options::<2>();
            check_pool::<4>(&pool, PoolKind::Max, |x| max_pool2d(x, options.clone()))?;
        } else {
            let options = pool.avg_options::<2>();
            check_pool::<4>(&pool, PoolKind::Avg, |x| avg_pool2d(x, options.clone()))?;
        }
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// Burn 0.22.1's `conv3d` panics on asymmetric padding ("Asymmetric padding is not yet
    /// supported for conv3d"), so 3D cases pad both sides equally; see
    /// `conv3d_refuses_asymmetric_padding`.
    #[test]
    fn conv3d_matches_reference(case in conv_case(3, 1, true)) {
        let options = case.options::<3>();
        check_conv::<5>(&case, |x, w, b| conv3d(x, w, b, options))?;
    }

    #[test]
    fn conv_transpose3d_matches_reference(case in transpose_case(3, 2)) {
        let options = case.options::<3>();
        check_transpose::<5>(&case, |x, w, b| conv_transpose3d(x, w, b, options))?;
    }

    #[test]
    fn max_pool3d_matches_reference(case in pool_case(3, 2, 2)) {
        let options = case.options_3d();
        check_pool::<5>(&case, PoolKind::Max, |x| max_pool3d(x, &options))?;
    }

    #[test]
    fn avg_pool3d_matches_reference(case in pool_case(3, 2, 1)) {
        let options = case.options_3d();
        check_pool::<5>(&case, PoolKind::Avg, |x| avg_pool3d(x, &options))?;
    }
}

/// The one case the 3D strategy leaves out: Burn 0.22.1 refuses asymmetric 3D padding. If this
/// starts failing, Burn supports it and `conv3d_matches_reference` can draw asymmetric padding.
#[test]
#[should_panic(expected = "Asymmetric padding is not yet supported for conv3d")]
fn conv3d_refuses_asymmetric_padding() {
    let dev = Device::flex();
    let x = Tensor::<5>::zeros([1, 1, 3, 3, 3], &dev);
    let w = Tensor::<5>::zeros([1, 1, 2, 2, 2], &dev);
    let options = ConvOptions::new_with_padding([1; 3], [(0, 1), (0, 0), (0, 0)], [1; 3], 1);
    let _ = conv3d(x, w, None, options);
}

/// `convnet_kernels::conv2d` plus a bias per filter.
fn kernel_conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let y = convnet_kernels::conv2d(x, w, options);
    match b {
        Some(b) => {
            let f = b.dims()[0];
            y + b.reshape([1, f, 1, 1])
        }
        None => y,
    }
}

/// Shapes the random cases are too small for: enough output positions for the input gradient's
/// forward-convolution route (dilated, asymmetric padding), a strided one, an im2col larger
/// than one block (8 x 144 x 4096 floats) so the samples run in two chunks, and one per-sample
/// GEMM per thread (too many filters x positions for the one-GEMM route).
#[test]
fn convnet_kernel_conv2d_on_large_maps_matches_reference() {
    let axis = |len, kernel, stride, dilation, pad| ConvAxis {
        len,
        kernel,
        stride,
        dilation,
        pad,
    };
    let cases = [
        (
            2,
            3,
            4,
            axis(48, 3, 1, 2, (1, 2)),
            axis(50, 3, 1, 1, (2, 0)),
        ),
        (
            2,
            3,
            5,
            axis(45, 5, 2, 1, (2, 1)),
            axis(45, 3, 2, 1, (1, 1)),
        ),
        (
            8,
            16,
            8,
            axis(64, 3, 1, 1, (1, 1)),
            axis(64, 3, 1, 1, (1, 1)),
        ),
        // Filters x positions past the one-GEMM limit, products below the threaded-GEMM one:
        // one GEMM per sample, the samples spread over threads.
        (
            3,
            3,
            32,
            axis(48, 3, 1, 1, (1, 1)),
            axis(48, 3, 1, 1, (1, 1)),
        ),
        // im2col rows of 4–16 floats (the short-row copy): LeNet's second convolution (10),
        // padded rows of 16 and 17, and 5-wide ones.
        (
            4,
            6,
            16,
            axis(14, 5, 1, 1, (0, 0)),
            axis(14, 5, 1, 1, (0, 0)),
        ),
        (
            2,
            3,
            4,
            axis(17, 3, 1, 1, (1, 1)),
            axis(17, 3, 1, 1, (1, 1)),
        ),
        (2, 3, 4, axis(9, 3, 1, 1, (0, 0)), axis(7, 3, 1, 1, (0, 0))),
        // 1x1 past the one-GEMM limit: the input multiplied in place (no im2col) ...
        (
            3,
            5,
            32,
            axis(48, 1, 1, 1, (0, 0)),
            axis(48, 1, 1, 1, (0, 0)),
        ),
        // ... but not with end padding or a stride (ResNet's downsampling shortcut).
        (
            2,
            4,
            32,
            axis(47, 1, 1, 1, (0, 1)),
            axis(48, 1, 1, 1, (0, 0)),
        ),
        (
            2,
            4,
            32,
            axis(96, 1, 2, 1, (0, 0)),
            axis(96, 1, 2, 1, (0, 0)),
        ),
    ];
    for (seed, (batch, c, f, h, w)) in cases.into_iter().enumerate() {
        let case = ConvCase {
            batch,
            groups: 1,
            c_per_group: c,
            f_per_group: f,
            axes: vec![h, w],
            bias: true,
            seed: seed as u64,
        };
        let options = case.options::<2>();
        check_conv::<4>(&case, |x, w, b| kernel_conv2d(x, w, b, options))
            .unwrap_or_else(|e| panic!("{case:?}: {e}"));
    }
}

/// The max-pool kernel on maps and batches large enough to split into several rayon tasks:
/// VGG's 2x2 / 2, ResNet's padded 3x3 / 2, GoogLeNet's 3x3 / 2 in ceil mode, a dilated 3x2.
#[test]
fn convnet_kernel_max_pool2d_on_large_maps_matches_reference() {
    let axis = |len, kernel, stride, dilation, pad| PoolAxis {
        len,
        kernel,
        stride,
        dilation,
        pad: (pad, pad),
    };
    let cases = [
        (16, 6, axis(28, 2, 2, 1, 0), axis(28, 2, 2, 1, 0), false),
        (4, 5, axis(30, 3, 2, 1, 1), axis(30, 3, 2, 1, 1), false),
        (4, 5, axis(29, 3, 2, 1, 0), axis(31, 3, 2, 1, 0), true),
        (3, 2, axis(40, 3, 1, 2, 1), axis(70, 2, 3, 2, 1), false),
    ];
    for (seed, (batch, channels, h, w, ceil_mode)) in cases.into_iter().enumerate() {
        let case = PoolCase {
            batch,
            channels,
            axes: vec![h, w],
            ceil_mode,
            count_include_pad: false,
            seed: seed as u64,
        };
        assert!(case.windows_touch_input(), "{case:?}");
        let options = case.max_options::<2>();
        check_pool::<4>(&case, PoolKind::Max, |x| {
            convnet_kernels::max_pool2d(x, options.clone())
        })
        .unwrap_or_else(|e| panic!("{case:?}: {e}"));
    }
}

/// The average-pool kernel on maps and batches large enough to split into several rayon tasks,
/// with LeNet's 2x2 / 2, an overlapping padded 3x3 / 2 in ceil mode, a 5x3 window, and tiling
/// windows (kernel = stride, no padding: the kernel's own path) with uncovered tails and in ceil
/// mode.
#[test]
fn convnet_kernel_avg_pool2d_on_large_maps_matches_reference() {
    let axis = |len, kernel, stride, pad| PoolAxis {
        len,
        kernel,
        stride,
        dilation: 1,
        pad: (pad, pad),
    };
    let cases = [
        (16, 6, axis(28, 2, 2, 0), axis(28, 2, 2, 0), false, true),
        (4, 5, axis(29, 3, 2, 1), axis(31, 3, 2, 1), true, false),
        (4, 5, axis(29, 3, 2, 1), axis(31, 3, 2, 1), true, true),
        (3, 2, axis(40, 5, 3, 2), axis(70, 3, 1, 1), false, false),
        (5, 3, axis(29, 2, 2, 0), axis(31, 3, 3, 0), false, false),
        (5, 3, axis(27, 3, 3, 0), axis(30, 2, 2, 0), true, true),
        (5, 3, axis(29, 2, 2, 0), axis(30, 2, 2, 0), true, false),
    ];
    for (seed, (batch, channels, h, w, ceil_mode, count_include_pad)) in
        cases.into_iter().enumerate()
    {
        let case = PoolCase {
            batch,
            channels,
            axes: vec![h, w],
            ceil_mode,
            count_include_pad,
            seed: seed as u64,
        };
        assert!(case.windows_touch_input(), "{case:?}");
        let options = case.avg_options::<2>();
        check_pool::<4>(&case, PoolKind::Avg, |x| {
            convnet_kernels::avg_pool2d(x, options.clone())
        })
        .unwrap_or_else(|e| panic!("{case:?}: {e}"));
    }
}

/// The case `conv1d_matches_reference` leaves out, run as the property would run it. It fails on
/// Burn 0.22.1 (see `hits_burn_conv1d_grouped_weight_grad_bug`): `dw` comes back scrambled
/// (engine 0.8735 vs reference -0.2564 at `dw[2]`); x, y and b are right. Run with `--ignored`
/// after a Burn upgrade; once it passes, drop the filter.
#[test]
#[ignore = "Burn 0.22.1 bug: conv1d weight gradient with groups > 1 and an uncovered input tail"]
fn conv1d_grouped_weight_grad_with_uncovered_tail() {
    let case = ConvCase {
        batch: 1,
        groups: 2,
        c_per_group: 1,
        f_per_group: 2,
        axes: vec![ConvAxis {
            len: 3,
            kernel: 2,
            stride: 3,
            dilation: 1,
            pad: (0, 0),
        }],
        bias: false,
        seed: 0,
    };
    assert!(hits_burn_conv1d_grouped_weight_grad_bug(&case));
    let options = case.options::<1>();
    check_conv::<3>(&case, |x, w, b| conv1d(x, w, b, options)).unwrap();
}
