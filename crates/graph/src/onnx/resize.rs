//! ONNX `Resize` (and `Upsample`), nearest and linear, every coordinate mode, one axis at a
//! time: each output index reads one source index (nearest) or two with weights (linear), so
//! an axis is a `select` and, for linear, a weighted sum of two `select`s. The index and
//! weight tables follow the operator's formulas literally, which keeps them checkable against
//! ONNX's reference implementation.

use burn::tensor::{Int, Tensor, TensorData};
use onnx_ir::node::resize::{CoordinateTransformMode, NearestMode, ResizeMode};

use super::value::{Float, map_float};

/// The source coordinate of output index `i` on an axis of `n_in -> n_out` with `scale`.
fn source(mode: &CoordinateTransformMode, i: usize, n_in: usize, n_out: usize, scale: f64) -> f64 {
    let i = i as f64;
    match mode {
        CoordinateTransformMode::HalfPixel => (i + 0.5) / scale - 0.5,
        CoordinateTransformMode::PytorchHalfPixel => {
            if n_out > 1 {
                (i + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordinateTransformMode::AlignCorners => {
            if n_out > 1 {
                i * (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
            } else {
                0.0
            }
        }
        CoordinateTransformMode::Asymmetric => i / scale,
        CoordinateTransformMode::TfHalfPixelForNn => (i + 0.5) / scale,
        // tf_crop_and_resize needs its roi input; refused before running.
        CoordinateTransformMode::TfCropAndResize => i / scale,
    }
}

fn nearest(mode: &NearestMode, x: f64) -> f64 {
    match mode {
        NearestMode::RoundPreferFloor => {
            if x.fract() == 0.5 {
                x.floor()
            } else {
                x.round()
            }
        }
        NearestMode::RoundPreferCeil => {
            if (x - x.floor() - 0.5).abs() < f64::EPSILON {
                x.ceil()
            } else {
                x.round()
            }
        }
        NearestMode::Floor => x.floor(),
        NearestMode::Ceil => x.ceil(),
    }
}

/// Per output index: `(lower index, upper index, weight of upper)`.
pub fn axis_table(
    mode: &ResizeMode,
    coords: &CoordinateTransformMode,
    nearest_mode: &NearestMode,
    n_in: usize,
    n_out: usize,
    scale: f64,
) -> Vec<(usize, usize, f32)> {
    let last = n_in.saturating_sub(1) as f64;
    (0..n_out)
        .map(|i| {
            let x = source(coords, i, n_in, n_out, scale);
            match mode {
                ResizeMode::Nearest => {
                    let j = nearest(nearest_mode, x).clamp(0.0, last) as usize;
                    (j, j, 0.0)
                }
                _ => {
                    let x = x.clamp(0.0, last);
                    let lo = x.floor();
                    let hi = (lo + 1.0).min(last);
                    (lo as usize, hi as usize, (x - lo) as f32)
                }
            }
        })
        .collect()
}

/// Resizes `axis` of `x` by the table.
pub fn resize_axis(x: Float, axis: usize, table: &[(usize, usize, f32)]) -> Float {
    let device = x.device();
    let n = table.len();
    let index = |pick: fn(&(usize, usize, f32)) -> usize| {
        Tensor::<1, Int>::from_data(
            TensorData::new(
                table.iter().map(|t| pick(t) as i64).collect::<Vec<_>>(),
                [n],
            ),
            &device,
        )
    };
    let lo = index(|t| t.0);
    if table.iter().all(|t| t.2 == 0.0) {
        return map_float!(x, |t| t.select(axis, lo.clone()));
    }
    let hi = index(|t| t.1);
    let rank = x.rank();
    let mut wdims = vec![1; rank];
    wdims[axis] = n;
    let w = Tensor::<1>::from_data(
        TensorData::new(table.iter().map(|t| t.2).collect::<Vec<_>>(), [n]),
        &device,
    );
    map_float!(x, |t| {
        let a = t.clone().select(axis, lo.clone());
        let b = t.select(axis, hi.clone());
        let w = w.clone().reshape(burn::tensor::Shape::from(wdims.clone()));
        a.clone() + (b - a) * w
    })
}
