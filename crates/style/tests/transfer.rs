//! Style transfer end to end on a small randomly initialised VGG-like network: layer names,
//! gradients against finite differences, J falling under both optimisers, the output's size and
//! range, and bad input.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use convnet_data::Preprocess;
use convnet_layers::{Activation, ConvConfig, LayerConfig, ModelSpec, Padding, PoolConfig};
use convnet_style::{
    FeatureNet, LayerChoice, Normalization, Optimizer, StyleConfig, StyleError, StyleTransfer,
    resolve_layer,
};
use convnet_weights::{StateDict, to_state_dict};

/// Two VGG stages: conv1_1 conv1_2 pool1 conv2_1 conv2_2.
fn tiny_vgg() -> ModelSpec {
    vgg_like(Activation::Relu, LayerConfig::MaxPool2d(PoolConfig::new(2)))
}

fn vgg_like(activation: Activation, pool: LayerConfig) -> ModelSpec {
    let conv = |f| LayerConfig::Conv2d(ConvConfig::new(f, 3).with_padding(Padding::uniform(1)));
    let relu = || LayerConfig::Activation { activation };
    let mut spec = ModelSpec::new("tiny-vgg", [3, 16, 16]);
    let layers = [
        conv(8),
        relu(),
        conv(8),
        relu(),
        pool,
        conv(12),
        relu(),
        conv(12),
        relu(),
    ];
    for (i, l) in layers.into_iter().enumerate() {
        spec = spec.named(&format!("features.{i}"), l);
    }
    spec
}

fn choice() -> LayerChoice {
    LayerChoice::equal("conv2_2", &["conv1_1", "conv2_1"])
}

fn imagenet() -> Normalization {
    Normalization::from_preprocess(&Preprocess::named("imagenet", 224).unwrap())
}

/// A fixed set of weights for the tiny net (the same every run).
fn weights(device: &Device) -> StateDict {
    let model = tiny_vgg().build(device).unwrap();
    fixed_weights(&model)
}

fn fixed_weights(model: &convnet_layers::Sequential) -> StateDict {
    let mut dict = to_state_dict(model).unwrap();
    let keys: Vec<String> = dict.keys().map(str::to_string).collect();
    for (i, key) in keys.iter().enumerate() {
        let t = dict.get_mut(key).unwrap();
        for (j, v) in t.data.iter_mut().enumerate() {
            *v = (((i * 7919 + j * 104_729) % 1000) as f32 / 1000.0 - 0.45) * 0.5;
        }
    }
    dict
}

fn picture(seed: u64, h: usize, w: usize, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..3 * h * w)
        .map(|i| {
            let k = (i as u64)
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(seed * 1_442_695_040_888_963_407);
            ((k >> 33) % 1000) as f32 / 1000.0
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 3, h, w]), device)
}

fn net(size: [usize; 2], device: &Device) -> FeatureNet {
    FeatureNet::new(
        &tiny_vgg(),
        &choice(),
        size,
        imagenet(),
        Some(&weights(device)),
        device,
    )
    .unwrap()
}

#[test]
fn course_layer_names_resolve_to_torchvision_vgg19_indices() {
    let spec = convnet_zoo::imagenet_spec("vgg19", &Default::default()).unwrap();
    // The indices PyTorch's style-transfer examples read VGG-19 at (ReLU outputs).
    for (alias, layer) in [
        ("conv1_1", "features.1"),
        ("conv2_1", "features.6"),
        ("conv3_1", "features.11"),
        ("conv4_1", "features.20"),
        ("conv4_2", "features.22"),
        ("conv5_1", "features.29"),
        ("conv5_4", "features.35"),
        ("pool5", "features.36"),
    ] {
        assert_eq!(resolve_layer(&spec, alias).unwrap(), layer, "{alias}");
    }
    let err = resolve_layer(&spec, "conv6_1").unwrap_err().to_string();
    assert!(
        err.contains("conv6_1") && err.contains("conv5_4") && err.contains("features.0"),
        "{err}"
    );
}

/// The pixel gradient autodiff gives against central differences. The network is smooth here
/// (tanh, average pooling): across ReLU and max-pool kinks finite differences converge only
/// slowly, which would test the step size rather than the gradient.
#[test]
fn the_gradient_matches_finite_differences() {
    let device = Device::flex();
    let spec = vgg_like(Activation::Tanh, LayerConfig::AvgPool2d(PoolConfig::new(2)));
    let weights = fixed_weights(&spec.build(&device).unwrap());
    let net = FeatureNet::new(
        &spec,
        &choice(),
        [8, 10],
        imagenet(),
        Some(&weights),
        &device,
    )
    .unwrap();
    let config = StyleConfig {
        noise: 0.0,
        tv_weight: 0.5,
        ..StyleConfig::default()
    };
    let run = StyleTransfer::new(
        &net,
        picture(1, 8, 10, &device),
        picture(2, 8, 10, &device),
        config,
    )
    .unwrap();
    let x = picture(3, 8, 10, &device);
    let (_, grad) = run.evaluate(&x).unwrap();
    let grad = grad.into_data().try_to_vec::<f32>().unwrap();
    let base = x.into_data().try_to_vec::<f32>().unwrap();
    let cost_at = |values: &[f32]| {
        let t = Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 3, 8, 10]), &device);
        run.evaluate(&t).unwrap().0.total
    };
    // J is computed in f32: single-pixel differences carry some rounding noise at this step;
    // a direction over every pixel has a far larger signal and is checked more tightly.
    let h = 1e-3f32;
    let check = |what: &str, numeric: f64, analytic: f64, tolerance: f64| {
        let scale = numeric.abs().max(analytic.abs()).max(1e-3);
        assert!(
            (numeric - analytic).abs() / scale < tolerance,
            "{what}: autodiff {analytic}, finite differences {numeric}"
        );
    };
    for &i in &[0usize, 37, 81, 123, 200, 239] {
        let mut plus = base.clone();
        plus[i] += h;
        let mut minus = base.clone();
        minus[i] -= h;
        let numeric = (cost_at(&plus) - cost_at(&minus)) / (2.0 * h as f64);
        check(&format!("pixel {i}"), numeric, grad[i] as f64, 0.02);
    }
    let direction: Vec<f32> = (0..base.len())
        .map(|i| if (i * 7) % 3 == 0 { 1.0 } else { -1.0 })
        .collect();
    let along = |t: f32| -> Vec<f32> {
        base.iter()
            .zip(&direction)
            .map(|(x, d)| x + t * d)
            .collect()
    };
    let numeric = (cost_at(&along(h)) - cost_at(&along(-h))) / (2.0 * h as f64);
    let analytic: f64 = grad
        .iter()
        .zip(&direction)
        .map(|(g, d)| (g * d) as f64)
        .sum();
    check("directional derivative", numeric, analytic, 0.002);
}

fn run_iterations(optimizer: Optimizer, iterations: usize) -> (Vec<f64>, Tensor<4>) {
    let device = Device::flex();
    let (h, w) = (12, 16);
    let net = net([h, w], &device);
    let config = StyleConfig {
        optimizer,
        ..StyleConfig::default()
    };
    let mut run = StyleTransfer::new(
        &net,
        picture(4, h, w, &device),
        picture(5, h, w, &device),
        config,
    )
    .unwrap();
    let costs = (0..iterations).map(|_| run.step().unwrap().total).collect();
    (costs, run.image())
}

fn assert_falls_and_stays_an_image(costs: &[f64], image: Tensor<4>) {
    let (first, last) = (costs[0], *costs.last().unwrap());
    assert!(
        last < 0.5 * first,
        "J went from {first} to {last}: {costs:?}"
    );
    assert_eq!(
        image.dims(),
        [1, 3, 12, 16],
        "the output has the content image's size"
    );
    let v = image.into_data().try_to_vec::<f32>().unwrap();
    assert!(
        v.iter().all(|p| (0.0..=1.0).contains(p)),
        "pixels leave [0, 1]"
    );
}

#[test]
fn adam_lowers_the_cost() {
    let (costs, image) = run_iterations(Optimizer::Adam { lr: 0.01 }, 60);
    assert_falls_and_stays_an_image(&costs, image);
    // Adam's steps are small: J should fall almost every iteration.
    let rises = costs.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(rises < costs.len() / 5, "J rose {rises} times: {costs:?}");
}

#[test]
fn lbfgs_lowers_the_cost_monotonically() {
    let (costs, image) = run_iterations(Optimizer::Lbfgs { history: 10 }, 20);
    assert!(costs.windows(2).all(|w| w[1] <= w[0]), "{costs:?}");
    assert_falls_and_stays_an_image(&costs, image);
}

#[test]
fn bad_input_is_an_error() {
    let device = Device::flex();
    let spec = tiny_vgg();
    let err = |r: Result<FeatureNet, StyleError>| r.err().expect("an error").to_string();
    let unknown = err(FeatureNet::new(
        &spec,
        &LayerChoice::equal("conv3_1", &["conv1_1"]),
        [8, 8],
        imagenet(),
        None,
        &device,
    ));
    assert!(
        unknown.contains("conv3_1") && unknown.contains("conv2_2"),
        "{unknown}"
    );
    // Weights for another network: the tensors do not fit.
    let other = convnet_zoo::imagenet_spec("vgg11", &Default::default()).unwrap();
    let mut other = other.clone();
    other.layers.truncate(3);
    let mismatched = to_state_dict(&other.build(&device).unwrap()).unwrap();
    let msg = err(FeatureNet::new(
        &spec,
        &choice(),
        [8, 8],
        imagenet(),
        Some(&mismatched),
        &device,
    ));
    assert!(
        msg.contains("do not fit") && msg.contains("features.2"),
        "{msg}"
    );
    let net = net([8, 8], &device);
    let wrong_size = StyleTransfer::new(
        &net,
        picture(1, 8, 8, &device),
        picture(2, 8, 10, &device),
        StyleConfig::default(),
    );
    assert!(wrong_size.is_err());
    let nan = StyleConfig {
        alpha: f64::NAN,
        ..StyleConfig::default()
    };
    assert!(
        StyleTransfer::new(
            &net,
            picture(1, 8, 8, &device),
            picture(2, 8, 8, &device),
            nan
        )
        .is_err()
    );
    let _ = Tensor::<4>::random([1, 3, 8, 8], Distribution::Default, &device);
}
