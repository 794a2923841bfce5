//! Burn's convolutions and convnet's 3D pools against fixtures computed by PyTorch: outputs and,
//! through autodiff, gradients. The fixtures and the script that made them are in
//! `fixtures/torch/` at the repository root (see its README).

use std::path::PathBuf;

use burn::module::Param;
use burn::tensor::module::{
    conv_transpose1d, conv_transpose2d, conv_transpose3d, conv1d, conv2d, conv3d,
};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_layers::ops::{Pool3dOptions, avg_pool3d, max_pool3d};
use convnet_layers::{BatchNormConfig, LrnConfig, Mode, SqueezeExcitationConfig};
use serde_json::Value;

/// One fixture file of `fixtures/torch/`.
fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/torch")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A `{"shape": [...], "data": [...]}` tensor of a fixture.
fn tensor<const D: usize>(v: &Value, device: &Device) -> Tensor<D> {
    let shape = shape(v);
    assert_eq!(shape.len(), D, "rank of {v:.80}");
    let data: Vec<f32> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn shape(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dimension") as usize)
        .collect()
}

fn usizes<const N: usize>(v: &Value) -> [usize; N] {
    let list: Vec<usize> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|d| d.as_u64().expect("unsigned integer") as usize)
        .collect();
    list.try_into()
        .unwrap_or_else(|l: Vec<usize>| panic!("expected {N} values, got {}", l.len()))
}

/// `|got - want| <= 1e-4 * max(1, |want|)` element by element, and the same shape.
fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: &Value) {
    assert_eq!(got.dims().to_vec(), shape(want), "{what}: shape");
    let got = got
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let want = want["data"].as_array().expect("data");
    assert_eq!(got.len(), want.len(), "{what}: number of values");
    let mut worst = (0.0f64, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (f64::from(*g), w.as_f64().unwrap());
        let excess = (g - w).abs() / w.abs().max(1.0);
        if excess > worst.0 {
            worst = (excess, i);
        }
    }
    let (excess, i) = worst;
    assert!(
        excess <= 1e-4,
        "{what}: element {i} is {} but PyTorch has {} (relative error {excess:.2e})",
        got[i],
        want[i]
    );
}

fn conv_options<const N: usize>(s: &Value) -> ConvOptions<N> {
    ConvOptions::new(
        usizes(&s["stride"]),
        usizes(&s["padding"]),
        usizes(&s["dilation"]),
        s["groups"].as_u64().unwrap() as usize,
    )
}

fn transpose_options<const N: usize>(s: &Value) -> ConvTransposeOptions<N> {
    ConvTransposeOptions::new(
        usizes(&s["stride"]),
        usizes(&s["padding"]),
        usizes(&s["output_padding"]),
        usizes(&s["dilation"]),
        s["groups"].as_u64().unwrap() as usize,
    )
}

/// Runs `op(x, weight, bias, settings)` on an autodiff device and checks the output and every
/// gradient the fixture has (`dx`, `dweight`, `dbias`) for the loss `sum(out * dout)`.
fn check_conv<const D: usize>(
    name: &str,
    op: impl Fn(Tensor<D>, Tensor<D>, Option<Tensor<1>>, &Value) -> Tensor<D>,
) {
    let case = load(name);
    let device = Device::flex().autodiff();
    let x = tensor::<D>(&case["x"], &device).require_grad();
    let w = tensor::<D>(&case["weight"], &device).require_grad();
    let b = tensor::<1>(&case["bias"], &device).require_grad();
    let out = op(x.clone(), w.clone(), Some(b.clone()), &case["settings"]);
    assert_close(&format!("{name}: out"), out.clone(), &case["out"]);

    let dout = tensor::<D>(&case["dout"], &device);
    let grads = (out * dout).sum().backward();
    let mut checked = 0;
    if case.get("dx").is_some() {
        assert_close(&format!("{name}: dx"), x.grad(&grads).unwrap(), &case["dx"]);
        checked += 1;
    }
    if case.get("dweight").is_some() {
        assert_close(
            &format!("{name}: dweight"),
            w.grad(&grads).unwrap(),
            &case["dweight"],
        );
        checked += 1;
    }
    if case.get("dbias").is_some() {
        assert_close(
            &format!("{name}: dbias"),
            b.grad(&grads).unwrap(),
            &case["dbias"],
        );
        checked += 1;
    }
    assert!(checked > 0, "{name}: no gradient in the fixture");
}

#[test]
fn conv2d_with_groups_dilation_stride_and_padding() {
    check_conv::<4>("conv2d_groups_dilation.json", |x, w, b, s| {
        conv2d(x, w, b, conv_options::<2>(s))
    });
}

#[test]
fn conv1d_matches_pytorch() {
    check_conv::<3>("conv1d.json", |x, w, b, s| {
        conv1d(x, w, b, conv_options::<1>(s))
    });
}

#[test]
fn conv3d_matches_pytorch() {
    check_conv::<5>("conv3d.json", |x, w, b, s| {
        conv3d(x, w, b, conv_options::<3>(s))
    });
}

#[test]
fn depthwise_conv2d_matches_pytorch() {
    check_conv::<4>("depthwise_conv2d.json", |x, w, b, s| {
        conv2d(x, w, b, conv_options::<2>(s))
    });
}

#[test]
fn conv_transpose2d_with_groups_and_output_padding() {
    check_conv::<4>("conv_transpose2d.json", |x, w, b, s| {
        conv_transpose2d(x, w, b, transpose_options::<2>(s))
    });
}

#[test]
fn conv_transpose1d_matches_pytorch() {
    check_conv::<3>("conv_transpose1d.json", |x, w, b, s| {
        conv_transpose1d(x, w, b, transpose_options::<1>(s))
    });
}

#[test]
fn conv_transpose3d_matches_pytorch() {
    check_conv::<5>("conv_transpose3d.json", |x, w, b, s| {
        conv_transpose3d(x, w, b, transpose_options::<3>(s))
    });
}

fn pool3d_options(s: &Value) -> Pool3dOptions {
    let mut o = Pool3dOptions::new(usizes(&s["kernel"]));
    o.stride = usizes(&s["stride"]);
    o.padding = usizes::<3>(&s["padding"]).map(|p| (p, p));
    if let Some(d) = s.get("dilation") {
        o.dilation = usizes(d);
    }
    o.ceil_mode = s["ceil_mode"].as_bool().unwrap();
    if let Some(c) = s.get("count_include_pad") {
        o.count_include_pad = c.as_bool().unwrap();
    }
    o
}

fn check_pool3d(key: &str, pool: fn(Tensor<5>, &Pool3dOptions) -> Tensor<5>) {
    let case = load("pool3d.json");
    let sub = &case[key];
    let device = Device::flex().autodiff();
    let x = tensor::<5>(&case["x"], &device).require_grad();
    let out = pool(x.clone(), &pool3d_options(&sub["settings"]));
    assert_close(&format!("pool3d {key}: out"), out.clone(), &sub["out"]);
    let grads = (out * tensor::<5>(&sub["dout"], &device)).sum().backward();
    assert_close(
        &format!("pool3d {key}: dx"),
        x.grad(&grads).unwrap(),
        &sub["dx"],
    );
}

#[test]
fn max_pool3d_matches_pytorch() {
    check_pool3d("max", max_pool3d);
}

#[test]
fn avg_pool3d_with_padding_excluded_matches_pytorch() {
    check_pool3d("avg", avg_pool3d);
}

#[test]
fn avg_pool3d_with_ceil_mode_matches_pytorch() {
    check_pool3d("avg_ceil", avg_pool3d);
}

#[test]
fn batch_norm_in_train_mode_matches_pytorch_with_its_running_statistics_and_gradients() {
    let case = load("batch_norm_train.json");
    let device = Device::flex().autodiff();
    let mut bn = BatchNormConfig {
        epsilon: case["settings"]["eps"].as_f64().unwrap(),
        momentum: case["settings"]["momentum"].as_f64().unwrap(),
    }
    .init(3, &device)
    .unwrap();
    bn.weight = Param::from_tensor(tensor::<1>(&case["weight"], &device).require_grad());
    bn.bias = Param::from_tensor(tensor::<1>(&case["bias"], &device).require_grad());
    bn.running_mean
        .update(tensor(&case["running_mean_before"], &device));
    bn.running_var
        .update(tensor(&case["running_var_before"], &device));
    let x = tensor::<4>(&case["x"], &device).require_grad();
    let y = bn.forward(x.clone(), Mode::Train).unwrap();
    assert_close("out", y.clone(), &case["out"]);
    assert_close(
        "running_mean",
        bn.running_mean.value_sync(),
        &case["running_mean_after"],
    );
    assert_close(
        "running_var",
        bn.running_var.value_sync(),
        &case["running_var_after"],
    );
    let grads = (y * tensor::<4>(&case["dout"], &device)).sum().backward();
    assert_close("dx", x.grad(&grads).unwrap(), &case["dx"]);
    assert_close(
        "dweight",
        bn.weight.val().grad(&grads).unwrap(),
        &case["dweight"],
    );
    assert_close("dbias", bn.bias.val().grad(&grads).unwrap(), &case["dbias"]);
}

#[test]
fn batch_norm_in_eval_mode_matches_pytorch() {
    let case = load("batch_norm_eval.json");
    let device = Device::flex();
    let mut bn = BatchNormConfig::default().init(3, &device).unwrap();
    bn.weight = Param::from_tensor(tensor(&case["weight"], &device));
    bn.bias = Param::from_tensor(tensor(&case["bias"], &device));
    bn.running_mean
        .update(tensor(&case["running_mean"], &device));
    bn.running_var.update(tensor(&case["running_var"], &device));
    let y = bn
        .forward(tensor::<4>(&case["x"], &device), Mode::Eval)
        .unwrap();
    assert_close("out", y, &case["out"]);
}

#[test]
fn local_response_norm_matches_alexnets_formula_as_computed_by_pytorch() {
    let case = load("lrn.json");
    let s = &case["settings"];
    assert!(
        (s["alpha_torch"].as_f64().unwrap() - 5.0 * s["alpha_paper"].as_f64().unwrap()).abs()
            < 1e-12
    );
    let lrn = LrnConfig {
        depth_radius: s["depth_radius"].as_u64().unwrap() as usize,
        bias: s["k"].as_f64().unwrap(),
        alpha: s["alpha_paper"].as_f64().unwrap(),
        beta: s["beta"].as_f64().unwrap(),
    }
    .init()
    .unwrap();
    let device = Device::flex();
    assert_close(
        "out",
        lrn.forward(tensor::<4>(&case["x"], &device)),
        &case["out"],
    );
}

#[test]
fn squeeze_excitation_matches_pytorch() {
    let case = load("se_block.json");
    let device = Device::flex();
    let mut se = SqueezeExcitationConfig::default()
        .init(32, &device)
        .unwrap();
    // PyTorch's Linear stores [out, in]; Burn's [in, out].
    let linear = |w: &str, b: &str| {
        let weight = tensor::<2>(&case[w], &device).transpose();
        let [d_in, d_out] = weight.dims();
        let mut l = burn::nn::LinearConfig::new(d_in, d_out).init(&device);
        l.weight = Param::from_tensor(weight);
        l.bias = Some(Param::from_tensor(tensor(&case[b], &device)));
        l
    };
    se.fc1 = linear("fc1_weight", "fc1_bias");
    se.fc2 = linear("fc2_weight", "fc2_bias");
    let y = se.forward(tensor::<4>(&case["x"], &device)).unwrap();
    assert_close("out", y, &case["out"]);
}
