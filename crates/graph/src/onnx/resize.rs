//! ONNX `Resize` (and `Upsample`): nearest, linear and cubic, every coordinate mode,
//! antialiasing, `exclude_outside`, `tf_crop_and_resize` with its extrapolation value,
//! `axes` and `keep_aspect_ratio_policy`. Resizing is separable, so it runs one axis at a
//! time: each output index reads `n` source indices with weights (a table per axis), and the
//! axis becomes a weighted sum of `n` `select`s — one `select` when every row reads a single
//! source (nearest). The tables follow the operator's reference implementation
//! (`onnx/reference/ops/op_resize.py`) formula by formula, which keeps them checkable against
//! it.

use burn::tensor::{Int, Tensor, TensorData};
use onnx_ir::node::resize::{CoordinateTransformMode, NearestMode, ResizeConfig, ResizeMode};

use super::rewrite::{AspectPolicy, ResizeFix};
use super::value::{Float, map_float};

type R<T> = Result<T, String>;

/// What a Resize node was given at run time.
pub struct Given {
    pub scales: Option<Vec<f64>>,
    pub sizes: Option<Vec<i64>>,
    /// `[starts…, ends…]` over the axes the node names, for `tf_crop_and_resize`.
    pub roi: Option<Vec<f64>>,
}

/// Resizes `x` as the node says.
pub fn resize(x: Float, c: &ResizeConfig, fix: &ResizeFix, given: Given) -> R<Float> {
    if fix.antialias && matches!(c.mode, ResizeMode::Nearest) {
        return Err("antialias is defined for linear and cubic resizing, not nearest".into());
    }
    let dims = x.dims();
    let r = dims.len();
    let axes: Vec<usize> = match &fix.axes {
        Some(axes) => {
            let mut seen = vec![false; r];
            axes.iter()
                .map(|&a| {
                    let ax = if a < 0 { a + r as i64 } else { a };
                    match usize::try_from(ax).ok().filter(|&ax| ax < r) {
                        Some(ax) if !std::mem::replace(&mut seen[ax], true) => Ok(ax),
                        Some(_) => Err(format!("axis {a} is named twice in axes")),
                        None => Err(format!("axis {a} is outside a rank-{r} tensor")),
                    }
                })
                .collect::<R<_>>()?
        }
        None => (0..r).collect(),
    };
    // The parser keeps constant scales and sizes of the spatial axes only.
    let over_axes = |len: usize, what: &str| -> R<bool> {
        if len == axes.len() {
            Ok(false)
        } else if fix.axes.is_none() && len + 2 == r {
            Ok(true)
        } else {
            Err(format!("{len} {what} for {} axes", axes.len()))
        }
    };
    let mut roi = None;
    if let Some(v) = given.roi.filter(|v| !v.is_empty()) {
        if v.len() != 2 * axes.len() {
            return Err(format!(
                "roi has {} values for {} axes",
                v.len(),
                axes.len()
            ));
        }
        let mut full = [vec![0.0; r], vec![1.0; r]].concat();
        for (k, &ax) in axes.iter().enumerate() {
            full[ax] = v[k];
            full[r + ax] = v[axes.len() + k];
        }
        roi = Some(full);
    }
    let (scales, sizes): (Vec<f64>, Vec<usize>) = match (given.sizes, given.scales) {
        (Some(s), _) if !s.is_empty() => {
            let skip = over_axes(s.len(), "sizes")?;
            let named: &[usize] = if skip { &axes[2..] } else { &axes };
            let mut sizes = dims.clone();
            for (&ax, &v) in named.iter().zip(&s) {
                sizes[ax] = usize::try_from(v).map_err(|_| format!("a negative size, {v}"))?;
            }
            let mut scales: Vec<f64> = sizes
                .iter()
                .zip(&dims)
                .map(|(&o, &i)| o as f64 / i as f64)
                .collect();
            if fix.policy != AspectPolicy::Stretch {
                let picked = axes.iter().map(|&ax| scales[ax]);
                let scale = if fix.policy == AspectPolicy::NotLarger {
                    picked.fold(f64::INFINITY, f64::min)
                } else {
                    picked.fold(f64::NEG_INFINITY, f64::max)
                };
                for &ax in &axes {
                    scales[ax] = scale;
                    // Half up, as the reference rounds.
                    sizes[ax] = (scale * dims[ax] as f64 + 0.5) as usize;
                }
            }
            (scales, sizes)
        }
        (_, Some(s)) if !s.is_empty() => {
            let skip = over_axes(s.len(), "scales")?;
            let named: &[usize] = if skip { &axes[2..] } else { &axes };
            let mut scales = vec![1.0; r];
            for (&ax, &v) in named.iter().zip(&s) {
                if !(v.is_finite() && v > 0.0) {
                    return Err(format!("a scale of {v}: scales must be positive"));
                }
                scales[ax] = v;
            }
            let sizes = scales
                .iter()
                .zip(&dims)
                .map(|(&s, &d)| (s * d as f64).floor() as usize)
                .collect();
            (scales, sizes)
        }
        _ => return Err("Resize without scales or sizes".into()),
    };
    convnet_layers::Bytes::f32s(&sizes)
        .check("the Resize output")
        .map_err(|e| e.to_string())?;
    let mut x = x;
    for &ax in &axes {
        let crop = roi.as_ref().map(|roi| (roi[ax], roi[r + ax]));
        let identity = sizes[ax] == dims[ax]
            && (scales[ax] - 1.0).abs() < 1e-9
            && crop.is_none_or(|(a, b)| a.abs() < 1e-9 && (b - 1.0).abs() < 1e-9);
        if identity {
            continue;
        }
        let axis = Axis {
            n_in: dims[ax],
            n_out: sizes[ax],
            scale: scales[ax],
            crop,
        };
        if axis.n_in == 0 && axis.n_out > 0 {
            return Err("cannot resize an empty axis to a non-empty one".into());
        }
        x = apply(x, ax, &axis.taps(c, fix), fix.extrapolation);
    }
    Ok(x)
}

/// One axis of a resize.
struct Axis {
    n_in: usize,
    n_out: usize,
    scale: f64,
    /// `tf_crop_and_resize`'s region on this axis, as fractions of it.
    crop: Option<(f64, f64)>,
}

/// Per output index, `n` source indices and their weights, and whether it lies outside the
/// crop region (`tf_crop_and_resize`).
struct Taps {
    n: usize,
    index: Vec<usize>,
    weight: Vec<f32>,
    outside: Vec<bool>,
}

impl Axis {
    /// The source coordinate of output index `i`, and whether it lies outside the crop.
    fn source(&self, c: &ResizeConfig, fix: &ResizeFix, i: usize) -> (f64, bool) {
        let (y, n_in, scale) = (i as f64, self.n_in as f64, self.scale);
        // The output length before rounding.
        let length = scale * n_in;
        let x = match c.coordinate_transformation_mode {
            CoordinateTransformMode::HalfPixel if fix.symmetric => {
                let adjustment = self.n_out as f64 / length;
                n_in / 2.0 * (1.0 - adjustment) + (y + 0.5) / scale - 0.5
            }
            CoordinateTransformMode::HalfPixel => (y + 0.5) / scale - 0.5,
            CoordinateTransformMode::PytorchHalfPixel => {
                if length == 1.0 {
                    -0.5
                } else {
                    (y + 0.5) / scale - 0.5
                }
            }
            CoordinateTransformMode::AlignCorners => {
                if length == 1.0 {
                    0.0
                } else {
                    y * (n_in - 1.0) / (length - 1.0)
                }
            }
            CoordinateTransformMode::Asymmetric => y / scale,
            CoordinateTransformMode::TfHalfPixelForNn => (y + 0.5) / scale,
            CoordinateTransformMode::TfCropAndResize => {
                let (start, end) = self.crop.unwrap_or((0.0, 1.0));
                let x = if length == 1.0 {
                    (end - start) * (n_in - 1.0) / 2.0
                } else {
                    y * (end - start) * (n_in - 1.0) / (length - 1.0)
                };
                let x = x + start * (n_in - 1.0);
                return (x, x < 0.0 || x > n_in - 1.0);
            }
        };
        (x, false)
    }

    fn taps(&self, c: &ResizeConfig, fix: &ResizeFix) -> Taps {
        let a = f64::from(c.cubic_coeff_a);
        let coeffs = |ratio: f64| -> Vec<f64> {
            match (&c.mode, fix.antialias) {
                (ResizeMode::Nearest, _) => nearest_coeffs(&c.nearest_mode, ratio),
                (ResizeMode::Linear, false) => vec![1.0 - ratio, ratio],
                (ResizeMode::Linear, true) => linear_antialias(ratio, self.scale),
                (ResizeMode::Cubic, false) => cubic(ratio, a),
                (ResizeMode::Cubic, true) => cubic_antialias(ratio, self.scale, a),
            }
        };
        let mut taps = Taps {
            n: 0,
            index: Vec::new(),
            weight: Vec::new(),
            outside: Vec::with_capacity(self.n_out),
        };
        let last = self.n_in.saturating_sub(1) as i64;
        for i in 0..self.n_out {
            let (x, outside) = self.source(c, fix, i);
            let ratio = if x.fract() == 0.0 { 1.0 } else { x - x.floor() };
            let mut w = coeffs(ratio);
            let n = w.len();
            taps.n = n;
            // The `n` indices nearest to `x`, ties to the smaller ones, as the reference
            // picks them on an edge-padded copy of the axis.
            let pad = n.div_ceil(2) as f64;
            let xp = x + pad;
            let p = xp.floor();
            let frac = xp - p;
            let offset = if n % 2 == 0 {
                if frac == 0.0 {
                    -((n / 2) as f64)
                } else {
                    1.0 - (n / 2) as f64
                }
            } else {
                let base = -(((n - 1) / 2) as f64);
                if frac <= 0.5 { base } else { base + 1.0 }
            };
            let start = (p + offset - pad) as i64;
            if fix.exclude_outside {
                for (k, w) in w.iter_mut().enumerate() {
                    let j = start + k as i64;
                    if j < 0 || j > last {
                        *w = 0.0;
                    }
                }
                let sum: f64 = w.iter().sum();
                let sum = if sum == 0.0 { 1.0 } else { sum };
                w.iter_mut().for_each(|w| *w /= sum);
            }
            for (k, w) in w.into_iter().enumerate() {
                taps.index.push((start + k as i64).clamp(0, last) as usize);
                taps.weight.push(w as f32);
            }
            taps.outside.push(outside);
        }
        taps
    }
}

fn nearest_coeffs(mode: &NearestMode, ratio: f64) -> Vec<f64> {
    let pick = |lower: bool| {
        if lower {
            vec![1.0, 0.0]
        } else {
            vec![0.0, 1.0]
        }
    };
    if ratio.fract() == 0.0 {
        return vec![0.0, 1.0];
    }
    match mode {
        NearestMode::RoundPreferFloor => pick(ratio <= 0.5),
        NearestMode::RoundPreferCeil => pick(ratio < 0.5),
        NearestMode::Floor => pick(true),
        NearestMode::Ceil => pick(false),
    }
}

fn cubic(ratio: f64, a: f64) -> Vec<f64> {
    let (r, s) = (ratio, 1.0 - ratio);
    vec![
        ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
        ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
        ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
        ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
    ]
}

/// The cubic kernel stretched by `1 / scale` when shrinking, normalised.
fn cubic_antialias(ratio: f64, scale: f64, a: f64) -> Vec<f64> {
    let scale = scale.min(1.0);
    let kernel = |x: f64| {
        let x = x.abs();
        let (x2, x3) = (x * x, x * x * x);
        if x <= 1.0 {
            (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
        } else if x < 2.0 {
            a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
        } else {
            0.0
        }
    };
    let first = (-2.0 / scale).floor() as i64 + 1;
    normalised((first..2 - first).map(|i| kernel(scale * (i as f64 - ratio))))
}

/// The triangle kernel stretched by `1 / scale` when shrinking, normalised.
fn linear_antialias(ratio: f64, scale: f64) -> Vec<f64> {
    let scale = scale.min(1.0);
    let first = (-1.0 / scale).floor() as i64 + 1;
    let footprint = 2 - 2 * first;
    normalised(
        (first..first + footprint)
            .map(|i| (1.0 - ((i as f64 - ratio) * scale).abs()).clamp(0.0, 1.0)),
    )
}

fn normalised(w: impl Iterator<Item = f64>) -> Vec<f64> {
    let w: Vec<f64> = w.collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// Resizes `axis` of `x` by the table; outputs outside the crop region become `fill`.
fn apply(x: Float, axis: usize, taps: &Taps, fill: f32) -> Float {
    let device = x.device();
    let rows = taps.outside.len();
    let rank = x.rank();
    let mut wdims = vec![1; rank];
    wdims[axis] = rows;
    let column = |k: usize| {
        let index: Vec<i64> = (0..rows)
            .map(|i| taps.index[i * taps.n + k] as i64)
            .collect();
        let weight: Vec<f32> = (0..rows).map(|i| taps.weight[i * taps.n + k]).collect();
        (
            Tensor::<1, Int>::from_data(TensorData::new(index, [rows]), &device),
            weight,
        )
    };
    let shape = burn::tensor::Shape::from(wdims);
    let along = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [rows]), &device);
    // Nearest: every row reads one source with weight 1.
    let single = (0..rows).map(|i| {
        let row = &taps.weight[i * taps.n..(i + 1) * taps.n];
        row.iter()
            .position(|&w| w == 1.0)
            .filter(|_| row.iter().filter(|&&w| w != 0.0).count() == 1)
    });
    let mut x = match single.collect::<Option<Vec<usize>>>() {
        Some(picks) if taps.n > 0 => {
            let index: Vec<i64> = picks
                .iter()
                .enumerate()
                .map(|(i, &k)| taps.index[i * taps.n + k] as i64)
                .collect();
            let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows]), &device);
            map_float!(x, |t| t.select(axis, index.clone()))
        }
        _ => {
            let columns: Vec<_> = (0..taps.n).map(column).collect();
            map_float!(x, |t| {
                let mut sum = None;
                for (index, weight) in &columns {
                    let term = t.clone().select(axis, index.clone())
                        * along(weight.clone()).reshape(shape.clone());
                    sum = Some(match sum {
                        None => term,
                        Some(s) => s + term,
                    });
                }
                sum.unwrap_or(t)
            })
        }
    };
    if taps.outside.contains(&true) {
        let keep = along(
            taps.outside
                .iter()
                .map(|&o| f32::from(u8::from(!o)))
                .collect(),
        );
        let fill = along(
            taps.outside
                .iter()
                .map(|&o| if o { fill } else { 0.0 })
                .collect(),
        );
        x = map_float!(x, |t| t * keep.clone().reshape(shape.clone())
            + fill.clone().reshape(shape.clone()));
    }
    x
}
