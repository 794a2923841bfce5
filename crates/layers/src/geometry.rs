//! The output-size rule of convolutions and pools, in one place.
//!
//! Every layer that slides a window (convolution, pooling, padding) resolves its padding and its
//! output length through [`window_axis`], so `same`, `valid` and explicit padding, stride,
//! dilation and ceil mode mean the same thing everywhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a sliding-window layer pads its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "PaddingRepr", into = "PaddingRepr")]
pub enum Padding {
    /// No padding: the window only visits positions fully inside the input.
    #[default]
    Valid,
    /// Pad so that `n_out = ceil(n / s)`; an odd total goes to the end (TensorFlow's rule).
    Same,
    /// `(begin, end)` per spatial axis; a single pair applies to every axis.
    Explicit(Vec<(usize, usize)>),
}

impl Padding {
    /// The same `p` on both sides of every axis.
    pub fn uniform(p: usize) -> Self {
        Padding::Explicit(vec![(p, p)])
    }

    /// Symmetric padding per axis.
    pub fn symmetric(per_axis: &[usize]) -> Self {
        Padding::Explicit(per_axis.iter().map(|&p| (p, p)).collect())
    }

    /// The `(begin, end)` pair for `axis` of `ndim` spatial axes, if the padding is explicit.
    fn explicit_pair(
        pairs: &[(usize, usize)],
        axis: usize,
        ndim: usize,
    ) -> Result<(usize, usize), ShapeError> {
        match pairs.len() {
            1 => Ok(pairs[0]),
            n if n == ndim => Ok(pairs[axis]),
            n => Err(ShapeError::PaddingRank { given: n, ndim }),
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Padding::Valid => f.write_str("valid"),
            Padding::Same => f.write_str("same"),
            Padding::Explicit(pairs) => {
                if pairs.iter().all(|(b, e)| b == e) {
                    let per: Vec<String> = pairs.iter().map(|(b, _)| b.to_string()).collect();
                    write!(f, "{}", per.join("x"))
                } else {
                    let per: Vec<String> = pairs.iter().map(|(b, e)| format!("{b}/{e}")).collect();
                    write!(f, "{}", per.join(","))
                }
            }
        }
    }
}

/// The forms padding takes in a spec file: `"same"`, `"valid"`, `2`, `[1, 2]` (per axis) or
/// `[[1, 2], [0, 1]]` (`[begin, end]` per axis).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PaddingRepr {
    Word(String),
    Scalar(usize),
    PerAxis(Vec<usize>),
    Pairs(Vec<[usize; 2]>),
}

impl TryFrom<PaddingRepr> for Padding {
    type Error = String;
    fn try_from(r: PaddingRepr) -> Result<Self, String> {
        Ok(match r {
            PaddingRepr::Word(w) => match w.to_ascii_lowercase().as_str() {
                "same" => Padding::Same,
                "valid" => Padding::Valid,
                other => {
                    return Err(format!(
                        "unknown padding \"{other}\": expected \"same\", \"valid\", a number, [per axis] or [[begin, end], ...]"
                    ));
                }
            },
            PaddingRepr::Scalar(p) => Padding::uniform(p),
            PaddingRepr::PerAxis(v) if v.is_empty() => return Err("padding list is empty".into()),
            PaddingRepr::PerAxis(v) => Padding::symmetric(&v),
            PaddingRepr::Pairs(v) if v.is_empty() => return Err("padding list is empty".into()),
            PaddingRepr::Pairs(v) => {
                Padding::Explicit(v.into_iter().map(|[b, e]| (b, e)).collect())
            }
        })
    }
}

impl From<Padding> for PaddingRepr {
    fn from(p: Padding) -> Self {
        match p {
            Padding::Valid => PaddingRepr::Word("valid".into()),
            Padding::Same => PaddingRepr::Word("same".into()),
            Padding::Explicit(pairs) => {
                PaddingRepr::Pairs(pairs.into_iter().map(|(b, e)| [b, e]).collect())
            }
        }
    }
}

/// How the last partial window is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    /// `floor`: a window that would run past the padded input is dropped (the course's rule).
    #[default]
    Floor,
    /// `ceil`: a last partial window is kept if it starts inside the input (PyTorch's `ceil_mode`).
    Ceil,
}

/// One spatial axis of a sliding window: its resolved padding and output length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisGeometry {
    pub pad_begin: usize,
    pub pad_end: usize,
    pub output: usize,
}

/// Why a window does not fit an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("kernel {effective} (after dilation) is larger than the padded input {padded}")]
    KernelTooLarge { effective: usize, padded: usize },
    #[error("padding has {given} axes but the layer has {ndim} spatial axes")]
    PaddingRank { given: usize, ndim: usize },
    #[error("{what} must be at least 1")]
    Zero { what: &'static str },
    #[error("input length is 0")]
    EmptyInput,
    #[error("{0} overflows 64-bit arithmetic")]
    Overflow(String),
}

/// Padding along one axis, before `same` is resolved against the input length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisPadding {
    Same,
    Fixed(usize, usize),
}

impl Padding {
    /// The padding of `axis` among `ndim` spatial axes.
    pub fn axis(&self, axis: usize, ndim: usize) -> Result<AxisPadding, ShapeError> {
        Ok(match self {
            Padding::Valid => AxisPadding::Fixed(0, 0),
            Padding::Same => AxisPadding::Same,
            Padding::Explicit(pairs) => {
                let (b, e) = Padding::explicit_pair(pairs, axis, ndim)?;
                AxisPadding::Fixed(b, e)
            }
        })
    }
}

/// Resolves padding and output length along one axis.
///
/// With input length `n`, kernel `f`, stride `s`, dilation `d` (effective kernel
/// `f' = d (f - 1) + 1`) and padding `p_b + p_e`:
/// `n_out = floor((n + p_b + p_e - f') / s) + 1`, the course's `floor((n + 2p - f) / s) + 1`.
/// `same` picks `n_out = ceil(n / s)` and the smallest total padding that reaches it.
pub fn window_axis(
    n: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: AxisPadding,
    rounding: Rounding,
) -> Result<AxisGeometry, ShapeError> {
    if kernel == 0 {
        return Err(ShapeError::Zero {
            what: "kernel size",
        });
    }
    if stride == 0 {
        return Err(ShapeError::Zero { what: "stride" });
    }
    if dilation == 0 {
        return Err(ShapeError::Zero { what: "dilation" });
    }
    if n == 0 {
        return Err(ShapeError::EmptyInput);
    }
    let effective = effective_kernel(kernel, dilation)?;
    let (pad_begin, pad_end) = match padding {
        AxisPadding::Fixed(b, e) => (b, e),
        AxisPadding::Same => {
            // (out - 1) * s < n, so only adding the kernel can overflow.
            let out = n.div_ceil(stride);
            let reach = ((out - 1) * stride).checked_add(effective).ok_or_else(|| {
                overflow(format!(
                    "`same` padding of length {n} for kernel {effective}"
                ))
            })?;
            let total = reach.saturating_sub(n);
            (total / 2, total - total / 2)
        }
    };
    let padded = n
        .checked_add(pad_begin)
        .and_then(|v| v.checked_add(pad_end))
        .ok_or_else(|| overflow(format!("length {n} padded by {pad_begin} + {pad_end}")))?;
    if padded < effective {
        return Err(ShapeError::KernelTooLarge { effective, padded });
    }
    let span = padded - effective;
    let mut output = match rounding {
        Rounding::Floor => span / stride + 1,
        Rounding::Ceil => span.div_ceil(stride) + 1,
    };
    // PyTorch's ceil-mode caveat: the last window must start inside the input or the begin pad
    // (a start past 64 bits is past both).
    let last_start = (output - 1).checked_mul(stride);
    if rounding == Rounding::Ceil && last_start.is_none_or(|start| start >= n + pad_begin) {
        output -= 1;
    }
    Ok(AxisGeometry {
        pad_begin,
        pad_end,
        output,
    })
}

/// `d (f - 1) + 1`, the span a dilated kernel covers.
fn effective_kernel(kernel: usize, dilation: usize) -> Result<usize, ShapeError> {
    (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| overflow(format!("kernel {kernel} with dilation {dilation}")))
}

fn overflow(what: String) -> ShapeError {
    ShapeError::Overflow(what)
}

/// [`window_axis`] over every spatial axis of an input.
pub fn window<const N: usize>(
    input: [usize; N],
    kernel: [usize; N],
    stride: [usize; N],
    dilation: [usize; N],
    padding: &Padding,
    rounding: Rounding,
) -> Result<[AxisGeometry; N], ShapeError> {
    let axes = window_dyn(&input, &kernel, &stride, &dilation, padding, rounding)?;
    Ok(std::array::from_fn(|i| axes[i]))
}

/// [`window`] for a number of axes known at run time (all slices of equal length).
pub fn window_dyn(
    input: &[usize],
    kernel: &[usize],
    stride: &[usize],
    dilation: &[usize],
    padding: &Padding,
    rounding: Rounding,
) -> Result<Vec<AxisGeometry>, ShapeError> {
    let n = input.len();
    (0..n)
        .map(|axis| {
            window_axis(
                input[axis],
                kernel[axis],
                stride[axis],
                dilation[axis],
                padding.axis(axis, n)?,
                rounding,
            )
        })
        .collect()
}

/// One axis of a transposed convolution: its symmetric crop `p`, extra `output_padding` and
/// output length `(n - 1) s - 2p + d (f - 1) + output_padding + 1`, the inverse of the window rule.
/// `same` picks `n_out = n s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransposeAxis {
    pub padding: usize,
    pub output_padding: usize,
    pub output: usize,
}

/// Resolves a transposed convolution along one axis.
pub fn transpose_axis(
    n: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: AxisPadding,
    output_padding: usize,
) -> Result<TransposeAxis, String> {
    if n == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return Err("input length, kernel, stride and dilation must be at least 1".into());
    }
    let effective = effective_kernel(kernel, dilation).map_err(|e| e.to_string())?;
    let (padding, output_padding) = match padding {
        AxisPadding::Fixed(b, e) if b == e => (b, output_padding),
        AxisPadding::Fixed(b, e) => {
            return Err(format!(
                "transposed convolutions take symmetric padding, got {b}/{e}"
            ));
        }
        // 2p - op = f' - s; an odd difference is made up with one row of output padding.
        AxisPadding::Same if effective < stride => {
            return Err(format!(
                "`same` needs a kernel of at least the stride ({effective} < {stride})"
            ));
        }
        AxisPadding::Same => {
            let diff = effective - stride;
            (diff.div_ceil(2), diff % 2)
        }
    };
    if output_padding >= stride.max(dilation) {
        return Err(format!(
            "output padding {output_padding} must be smaller than the stride or the dilation"
        ));
    }
    let full = (n - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(effective))
        .and_then(|v| v.checked_add(output_padding))
        .ok_or_else(|| {
            format!("output length ({n} - 1) x {stride} + {effective} overflows 64-bit arithmetic")
        })?;
    if padding.checked_mul(2).is_none_or(|both| full <= both) {
        return Err(format!(
            "padding {padding} removes the whole output of length {full}"
        ));
    }
    Ok(TransposeAxis {
        padding,
        output_padding,
        output: full - 2 * padding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(n: usize, f: usize, s: usize, p: Padding) -> usize {
        window_axis(n, f, s, 1, p.axis(0, 1).unwrap(), Rounding::Floor)
            .unwrap()
            .output
    }

    #[test]
    fn course_formula_floor_n_plus_2p_minus_f_over_s_plus_1() {
        // The course's examples: 6x6 * 3x3 -> 4x4; 7x7, f=3, s=2 -> 3x3; padding 1 keeps 6x6.
        assert_eq!(out(6, 3, 1, Padding::Valid), 4);
        assert_eq!(out(7, 3, 2, Padding::Valid), 3);
        assert_eq!(out(6, 3, 1, Padding::uniform(1)), 6);
        // LeNet-5: 32 -5-> 28 -pool2-> 14 -5-> 10 -pool2-> 5.
        assert_eq!(out(32, 5, 1, Padding::Valid), 28);
        assert_eq!(out(28, 2, 2, Padding::Valid), 14);
        assert_eq!(out(14, 5, 1, Padding::Valid), 10);
        // Floor drops the partial window: (8 + 0 - 3) / 2 + 1 = 3.
        assert_eq!(out(8, 3, 2, Padding::Valid), 3);
    }

    #[test]
    fn same_keeps_size_at_stride_1_and_divides_by_stride_otherwise() {
        for n in 1..40 {
            for f in 1..8 {
                assert_eq!(out(n, f, 1, Padding::Same), n, "n={n} f={f}");
                for s in 2..5 {
                    assert_eq!(
                        out(n, f, s, Padding::Same),
                        n.div_ceil(s),
                        "n={n} f={f} s={s}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_puts_the_odd_pixel_at_the_end() {
        // TensorFlow: 224, k=7, s=2 -> out 112, total pad 5 = 2 + 3. Even kernels pad more at the end.
        let g = window_axis(224, 7, 2, 1, AxisPadding::Same, Rounding::Floor).unwrap();
        assert_eq!((g.pad_begin, g.pad_end, g.output), (2, 3, 112));
        let g = window_axis(10, 4, 1, 1, AxisPadding::Same, Rounding::Floor).unwrap();
        assert_eq!((g.pad_begin, g.pad_end, g.output), (1, 2, 10));
        // Stride larger than needed: no padding at all.
        let g = window_axis(10, 1, 2, 1, AxisPadding::Same, Rounding::Floor).unwrap();
        assert_eq!((g.pad_begin, g.pad_end, g.output), (0, 0, 5));
    }

    #[test]
    fn dilation_widens_the_kernel() {
        // 3x3 with dilation 2 behaves as 5x5: 10 -> 6 valid; same pads 2 each side.
        let g = window_axis(10, 3, 1, 2, AxisPadding::Fixed(0, 0), Rounding::Floor).unwrap();
        assert_eq!(g.output, 6);
        let g = window_axis(10, 3, 1, 2, AxisPadding::Same, Rounding::Floor).unwrap();
        assert_eq!((g.pad_begin, g.pad_end, g.output), (2, 2, 10));
    }

    #[test]
    fn ceil_mode_matches_pytorch() {
        // torch.nn.MaxPool2d(3, 2, ceil_mode=True) on 112 -> 56 (GoogLeNet), floor -> 55.
        let g = window_axis(112, 3, 2, 1, AxisPadding::Fixed(0, 0), Rounding::Ceil).unwrap();
        assert_eq!(g.output, 56);
        assert_eq!(out(112, 3, 2, Padding::Valid), 55);
        // The last window may not start in the end padding: n=5, k=2, s=2, p=1 -> 3, not 4.
        let g = window_axis(5, 2, 2, 1, AxisPadding::Fixed(1, 1), Rounding::Ceil).unwrap();
        assert_eq!(g.output, 3);
    }

    #[test]
    fn explicit_padding_per_axis_and_asymmetric() {
        let p = Padding::Explicit(vec![(1, 2), (0, 0)]);
        let [h, w] = window([5, 5], [3, 3], [1, 1], [1, 1], &p, Rounding::Floor).unwrap();
        assert_eq!((h.pad_begin, h.pad_end, h.output), (1, 2, 6));
        assert_eq!(w.output, 3);
    }

    #[test]
    fn impossible_shapes_are_errors() {
        assert_eq!(
            window_axis(3, 5, 1, 1, AxisPadding::Fixed(0, 0), Rounding::Floor),
            Err(ShapeError::KernelTooLarge {
                effective: 5,
                padded: 3
            })
        );
        assert!(matches!(
            window_axis(3, 3, 1, 3, AxisPadding::Fixed(0, 0), Rounding::Floor),
            Err(ShapeError::KernelTooLarge { effective: 7, .. })
        ));
        assert!(window_axis(3, 3, 0, 1, AxisPadding::Fixed(0, 0), Rounding::Floor).is_err());
        assert!(window_axis(3, 0, 1, 1, AxisPadding::Fixed(0, 0), Rounding::Floor).is_err());
        let p = Padding::Explicit(vec![(1, 1), (1, 1), (1, 1)]);
        assert_eq!(
            window([5, 5], [3, 3], [1, 1], [1, 1], &p, Rounding::Floor),
            Err(ShapeError::PaddingRank { given: 3, ndim: 2 })
        );
    }

    #[test]
    fn transposed_output_inverts_the_window_rule() {
        // PyTorch: ConvTranspose2d(k=3, s=2, p=1, output_padding=1) doubles 5 -> 10.
        let t = transpose_axis(5, 3, 2, 1, AxisPadding::Fixed(1, 1), 1).unwrap();
        assert_eq!(t.output, 10);
        // U-Net's 2x2 stride-2 up-convolution doubles the size.
        assert_eq!(
            transpose_axis(28, 2, 2, 1, AxisPadding::Fixed(0, 0), 0)
                .unwrap()
                .output,
            56
        );
        // `same` gives n * s, for odd and even kernels.
        for (k, s) in [(3, 2), (4, 2), (5, 3), (3, 1), (2, 2)] {
            let t = transpose_axis(7, k, s, 1, AxisPadding::Same, 0).unwrap();
            assert_eq!(t.output, 7 * s, "k={k} s={s}");
        }
        // Every output length of a strided conv maps back to its input with some output padding.
        for n in 5..20 {
            let g = window_axis(n, 3, 2, 1, AxisPadding::Fixed(1, 1), Rounding::Floor).unwrap();
            let op = (n + 2 - 3) % 2;
            let t = transpose_axis(g.output, 3, 2, 1, AxisPadding::Fixed(1, 1), op).unwrap();
            assert_eq!(t.output, n);
        }
        assert!(transpose_axis(5, 3, 2, 1, AxisPadding::Fixed(0, 0), 2).is_err());
        assert!(transpose_axis(1, 1, 1, 1, AxisPadding::Fixed(1, 1), 0).is_err());
    }

    #[test]
    fn padding_parses_every_spec_form() {
        #[derive(Deserialize)]
        struct P {
            padding: Padding,
        }
        let parse = |s: &str| toml::from_str::<P>(s).map(|p| p.padding);
        assert_eq!(parse("padding = 'same'").unwrap(), Padding::Same);
        assert_eq!(parse("padding = 'VALID'").unwrap(), Padding::Valid);
        assert_eq!(parse("padding = 2").unwrap(), Padding::uniform(2));
        assert_eq!(
            parse("padding = [1, 2]").unwrap(),
            Padding::symmetric(&[1, 2])
        );
        assert_eq!(
            parse("padding = [[0, 1], [2, 3]]").unwrap(),
            Padding::Explicit(vec![(0, 1), (2, 3)])
        );
        assert!(parse("padding = 'full'").is_err());
        assert!(parse("padding = []").is_err());
    }
}
