//! CUDA against the CPU: single layers and whole zoo networks run forward and backward on Burn's
//! CUDA backend and on the flex CPU backend from the same weights and inputs, and must agree.
//!
//! Compiled only with `--features cuda` (CI and the default build never see it), and it needs an
//! NVIDIA GPU with its driver, and libdevice under `$CUDA_PATH/nvvm/libdevice`: run it on the GPU
//! machine, e.g. the binary `scripts/build-cuda.sh` leaves under `target/cuda/release/deps/`
//! (`cuda_parity-*`), as `scripts/cuda-bench.sh` does before timing anything.
//!
//! Tolerances are relative to the largest magnitude of the CPU result: CubeCL may take f32
//! matrix products through TF32 tensor cores, which keep 10 mantissa bits, so a few layers deep
//! the two backends differ by ~1e-3 of the scale, never by a wrong index or a missing term.
#![cfg(feature = "cuda")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_layers::{
    BatchNormConfig, ConvConfig, ConvTransposeConfig, DenseConfig, LayerConfig, Mode, ModelSpec,
    Padding, PoolConfig, Sequential,
};

/// One comparison: a network, the batch it runs, the mode (dropout makes `Train` random, so
/// networks with dropout run in `Eval`) and the tolerances for the output and the gradients.
struct Case {
    spec: ModelSpec,
    batch: usize,
    mode: Mode,
    forward_tol: f32,
    backward_tol: f32,
}

fn layer(name: &str, input: [usize; 3], config: LayerConfig) -> Case {
    Case {
        spec: ModelSpec::new(name, input.to_vec()).named(name, config),
        batch: 4,
        mode: Mode::Train,
        forward_tol: 2e-3,
        backward_tol: 5e-3,
    }
}

fn network(name: &str, batch: usize, mode: Mode) -> Case {
    Case {
        spec: convnet_zoo::spec(name).unwrap_or_else(|e| panic!("{name}: {e}")),
        batch,
        mode,
        forward_tol: 1e-2,
        backward_tol: 3e-2,
    }
}

/// Deterministic inputs in [-1, 1] that are not periodic over small strides.
fn values(len: usize, salt: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32) * 0.7548777 + salt).sin())
        .collect()
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

/// The largest difference, relative to the largest magnitude of the reference.
fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len(), "lengths differ");
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = ours
        .iter()
        .zip(reference)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    if ours.iter().any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    worst / scale
}

/// Every float parameter's gradient, in the module's visiting order.
struct Grads<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            self.out.push(to_vec(g));
        }
    }
}

/// The output, the input's gradient and the parameters' gradients of `model` on `device`, for a
/// loss that weights every output by a fixed number (so every output's gradient differs).
fn run(model: &Sequential, case: &Case, device: &Device) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let dims: Vec<usize> = std::iter::once(case.batch)
        .chain(model.input_shape().dims().iter().copied())
        .collect();
    let len = dims.iter().product();
    let x = Tensor::<4>::from_data(TensorData::new(values(len, 0.0), dims), device).require_grad();
    let y = model
        .forward(x.clone(), case.mode)
        .unwrap_or_else(|e| panic!("{}: {e}", case.spec.name))
        .into_flat();
    let weights = Tensor::<2>::from_data(
        TensorData::new(values(y.dims().iter().product(), 1.0), y.dims()),
        device,
    );
    let grads = (y.clone() * weights).sum().backward();
    let dx = to_vec(x.grad(&grads).expect("the input's gradient"));
    let mut params = Grads {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut params);
    (to_vec(y), dx, params.out)
}

fn check(case: Case) {
    let name = case.spec.name.clone();
    let cpu = Device::flex().autodiff();
    let cuda = Device::cuda(0).autodiff();
    let model = case
        .spec
        .build(&cpu)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    // The CPU pass first: it initializes every weight there, so the fork copies the same ones.
    let want = run(&model, &case, &cpu);
    let got = run(&model.clone().fork(&cuda), &case, &cuda);

    let forward = relative_error(&got.0, &want.0);
    let input_grad = relative_error(&got.1, &want.1);
    assert_eq!(got.2.len(), want.2.len(), "{name}: parameter gradients");
    assert!(
        model.num_params() == 0 || !want.2.is_empty(),
        "{name}: no parameter received a gradient"
    );
    let param_grad = got
        .2
        .iter()
        .zip(&want.2)
        .map(|(g, w)| relative_error(g, w))
        .fold(0f32, f32::max);
    eprintln!(
        "{name:<16} forward {forward:.2e}  input grad {input_grad:.2e}  param grads {param_grad:.2e}"
    );
    assert!(
        forward <= case.forward_tol,
        "{name}: forward differs by {forward:.2e} of its scale"
    );
    assert!(
        input_grad <= case.backward_tol && param_grad <= case.backward_tol,
        "{name}: gradients differ by {input_grad:.2e} (input), {param_grad:.2e} (parameters)"
    );
}

#[test]
fn single_layers_match_the_cpu() {
    let same = Padding::Same;
    for case in [
        layer(
            "conv3x3",
            [16, 20, 20],
            LayerConfig::Conv2d(ConvConfig::new(32, 3).with_padding(same.clone())),
        ),
        layer(
            "conv7x7_s2",
            [3, 40, 40],
            LayerConfig::Conv2d(
                ConvConfig::new(16, 7)
                    .with_stride(2)
                    .with_padding(same.clone()),
            ),
        ),
        layer(
            "depthwise3x3",
            [24, 16, 16],
            LayerConfig::Conv2d(
                ConvConfig::new(24, 3)
                    .with_groups(24)
                    .with_padding(same.clone()),
            ),
        ),
        layer(
            "conv1x1",
            [32, 12, 12],
            LayerConfig::Conv2d(ConvConfig::new(64, 1)),
        ),
        layer(
            "upconv2x2_s2",
            [16, 8, 8],
            LayerConfig::ConvTranspose2d(ConvTransposeConfig::new(8, 2).with_stride(2)),
        ),
        layer(
            "maxpool2",
            [8, 12, 12],
            LayerConfig::MaxPool2d(PoolConfig::new(2)),
        ),
        layer(
            "avgpool2",
            [8, 12, 12],
            LayerConfig::AvgPool2d(PoolConfig::new(2)),
        ),
        layer(
            "batchnorm",
            [8, 10, 10],
            LayerConfig::BatchNorm(BatchNormConfig::default()),
        ),
    ] {
        check(case);
    }
    // A dense layer behind the flatten, as the classifiers' heads are.
    let dense = ModelSpec::new("dense", vec![8, 4, 4])
        .named("flatten", LayerConfig::Flatten)
        .named("fc", LayerConfig::Dense(DenseConfig::new(10)));
    check(Case {
        spec: dense,
        ..layer("dense", [1, 1, 1], LayerConfig::Flatten)
    });
}

#[test]
fn small_networks_match_the_cpu() {
    check(network("lenet5", 8, Mode::Train));
    // Dropout draws differently on each device: compare it switched off.
    check(network("fmnist-cnn", 8, Mode::Eval));
    check(network("tiny-yolo", 4, Mode::Train));
    check(network("unet-small", 4, Mode::Train));
}

#[test]
fn mobilenet_v2_matches_the_cpu() {
    check(network("mobilenet_v2", 2, Mode::Train));
}
