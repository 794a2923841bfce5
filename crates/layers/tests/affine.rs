//! convnet's per-channel affine kernel (batch norm's `x · scale + shift`) against Burn's own
//! broadcast ops: values and all three gradients, over ranks 2 to 5, strided inputs, and inputs
//! still referenced elsewhere (the kernel writes in place only when nothing else holds them).

use burn::tensor::{Device, Distribution, Tensor};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `got[i]` within `tol · (1 + magnitude[i])` of `want[i]`.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32, magnitude: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + magnitude[i]),
            "{what}[{i}]: {a} vs {b} (magnitude {})",
            magnitude[i]
        );
    }
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Per channel (axis 1), the sum of `|t|` over every other axis: the scale of a float sum's
/// rounding error over those terms, whatever order it adds them in. A sum that cancels to near
/// zero still carries the rounding of its large terms.
fn channel_abs_sums<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let c = t.dims()[1];
    values(t.abs().swap_dims(0, 1).reshape([c as i64, -1]).sum_dim(1))
}

/// Compares the kernel with Burn's `x * scale + shift` on `x` (as given: maybe strided),
/// forward and backward, through a weighted sum so every output has its own gradient.
fn check<const D: usize>(x: Tensor<D>) {
    let device = x.device();
    let c = x.dims()[1];
    let scale = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
    let shift = Tensor::<1>::random([c], Distribution::Normal(0.0, 1.0), &device);
    let weights = Tensor::<D>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
    let run = |kernel: bool| {
        let (x, scale, shift) = (
            x.clone().detach().require_grad(),
            scale.clone().require_grad(),
            shift.clone().require_grad(),
        );
        let before = values(x.clone());
        let y = if kernel {
            convnet_kernels::channel_affine(x.clone(), scale.clone(), shift.clone())
        } else {
            let mut shape = [1; D];
            shape[1] = c;
            x.clone() * scale.clone().reshape(shape) + shift.clone().reshape(shape)
        };
        let grads = (y.clone() * weights.clone()).sum().backward();
        // The input is still held here: the kernel must not have written over it.
        assert_eq!(values(x.clone()), before, "input changed");
        let grad = |t: Tensor<1>| values(t.grad(&grads).unwrap());
        (
            values(y),
            values(x.grad(&grads).unwrap()),
            grad(scale),
            grad(shift),
        )
    };
    let (got, want) = (run(true), run(false));
    assert_close("y", &got.0, &want.0, 1e-6, &abs(&want.0));
    assert_close("dx", &got.1, &want.1, 1e-6, &abs(&want.1));
    // The parameter gradients are sums over every position of a channel (dshift of the
    // weights, dscale of weights · x), added in another order by the kernel than by Burn.
    let dscale_terms = channel_abs_sums(weights.clone() * x.clone());
    let dshift_terms = channel_abs_sums(weights.clone());
    assert_close("dscale", &got.2, &want.2, 1e-6, &dscale_terms);
    assert_close("dshift", &got.3, &want.3, 1e-6, &dshift_terms);
}

#[test]
fn channel_affine_matches_burn_over_ranks_and_layouts() {
    let device = Device::flex().autodiff();
    check(Tensor::<2>::random(
        [5, 3],
        Distribution::Normal(0.5, 2.0),
        &device,
    ));
    check(Tensor::<3>::random(
        [2, 4, 9],
        Distribution::Normal(0.5, 2.0),
        &device,
    ));
    check(Tensor::<4>::random(
        [3, 5, 7, 6],
        Distribution::Normal(0.5, 2.0),
        &device,
    ));
    check(Tensor::<5>::random(
        [2, 3, 4, 3, 5],
        Distribution::Normal(0.5, 2.0),
        &device,
    ));
    // Planes larger than a rayon task, and a strided view (its last two axes swapped).
    check(Tensor::<4>::random(
        [2, 3, 70, 65],
        Distribution::Normal(0.5, 2.0),
        &device,
    ));
    check(
        Tensor::<4>::random([2, 3, 6, 5], Distribution::Normal(0.5, 2.0), &device).swap_dims(2, 3),
    );
}

/// Without gradients (inference) the kernel may reuse the input's buffer: the result is still
/// right, and a tensor sharing that buffer keeps its values.
#[test]
fn channel_affine_in_place_leaves_shared_inputs_alone() {
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let scale = Tensor::<1>::from_floats([2.0, -1.0, 0.5], &device);
    let shift = Tensor::<1>::from_floats([1.0, 0.0, -3.0], &device);
    let expected = values(
        x.clone() * scale.clone().reshape([1, 3, 1, 1]) + shift.clone().reshape([1, 3, 1, 1]),
    );
    let kept = x.clone();
    let before = values(kept.clone());
    let y = convnet_kernels::channel_affine(x, scale.clone(), shift.clone());
    assert_close("y", &values(y), &expected, 1e-6, &abs(&expected));
    assert_eq!(values(kept.clone()), before);
    // Unshared: computed in place, same values.
    let y = convnet_kernels::channel_affine(kept, scale, shift);
    assert_close("y in place", &values(y), &expected, 1e-6, &abs(&expected));
}
