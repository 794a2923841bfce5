//! ONNX export: the written file parsed back, its nodes, attributes, initializers and metadata
//! checked against the model they were written from (its state dict, its layers' geometry).
//! The numbers themselves are checked by running the file: here through convnet's own importer
//! (the round trip), and against ONNX Runtime by `scripts/onnx/check_export.py`.

use burn::tensor::{Device, Tensor, TensorData};
use convnet_graph::export::{ExportOptions, Metadata, export};
use convnet_layers::{Features, Mode, ModelSpec, Sequential};
use onnx_ir::{AttributeProto, Message, ModelProto, NodeProto};

const EVERY_LAYER: &str = r#"
name = "every-layer"
input = [3, 16, 16]

[[layers]]
type = "conv2d"
filters = 8
kernel = 3
stride = 2
padding = "same"
activation = "relu6"

[[layers]]
type = "batch_norm"
epsilon = 0.001

[[layers]]
type = "depthwise_conv2d"
kernel = 3
padding = "same"
activation = "silu"

[[layers]]
type = "separable_conv2d"
filters = 12
kernel = 3
padding = "same"
activation = "leaky"

[[layers]]
type = "se"
reduction = 4

[[layers]]
type = "residual"
activation = "relu"
body = [
  { type = "conv2d", filters = 12, kernel = 3, padding = "same", name = "conv" },
  { type = "batch_norm", name = "bn" },
]

[[layers]]
type = "concat"
branches = [
  { layers = [{ type = "conv2d", filters = 4, kernel = 1, name = "b1" }] },
  { layers = [{ type = "avg_pool2d", pool = 3, stride = 1, padding = 1, count_include_pad = false, name = "b2" }] },
]

[[layers]]
type = "lrn"
depth_radius = 2
alpha = 0.0001
beta = 0.75
k = 2.0

[[layers]]
type = "max_pool2d"
pool = 3
stride = 2
ceil_mode = true

[[layers]]
type = "conv_transpose2d"
filters = 6
kernel = 2
stride = 2

[[layers]]
type = "zero_padding2d"
padding = [[1, 0], [0, 1]]

[[layers]]
type = "channel_pool"
pool = 2

[[layers]]
type = "adaptive_avg_pool2d"
output = 4

[[layers]]
type = "dropout"
rate = 0.3

[[layers]]
type = "aux"
layers = [{ type = "global_avg_pool", name = "pool" }, { type = "dense", units = 5, name = "fc" }]

[[layers]]
type = "flatten"

[[layers]]
type = "dense"
units = 10
activation = "tanh"

[[layers]]
type = "dense"
units = 4
bias = false

[[layers]]
type = "softmax"
"#;

const SIGNAL: &str = r#"
name = "signal"
input = [2, 20]

[[layers]]
type = "conv1d"
filters = 4
kernel = 4
padding = "same"
activation = "relu"

[[layers]]
type = "max_pool1d"
pool = 2

[[layers]]
type = "avg_pool1d"
pool = 2

[[layers]]
type = "global_max_pool"

[[layers]]
type = "dense"
units = 3
activation = "sigmoid"
"#;

const VOLUME: &str = r#"
name = "volume"
input = [1, 6, 8, 8]

[[layers]]
type = "conv3d"
filters = 2
kernel = 3
padding = "same"

[[layers]]
type = "max_pool3d"
pool = 2

[[layers]]
type = "conv_transpose3d"
filters = 2
kernel = 2
stride = 2

[[layers]]
type = "global_avg_pool"

[[layers]]
type = "dense"
units = 2
"#;

fn device() -> Device {
    Device::flex()
}

fn build(toml: &str) -> Sequential {
    ModelSpec::parse(toml, "test.toml")
        .and_then(|s| s.build(&device()))
        .unwrap()
}

/// Exports `model` and parses the bytes back, as a reader of the file sees them.
fn roundtrip_proto(model: &Sequential, options: &ExportOptions) -> ModelProto {
    let bytes = export(model, options).unwrap().to_bytes().unwrap();
    ModelProto::parse_from_bytes(&bytes).unwrap()
}

fn ops(m: &ModelProto) -> Vec<&str> {
    m.graph.node.iter().map(|n| n.op_type.as_str()).collect()
}

fn node<'a>(m: &'a ModelProto, name: &str) -> &'a NodeProto {
    m.graph
        .node
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no node {name}: {:?}",
                m.graph.node.iter().map(|n| &n.name).collect::<Vec<_>>()
            )
        })
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> &'a AttributeProto {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("node {} has no attribute {name}", n.name))
}

fn dims(value: &onnx_ir::ValueInfoProto) -> Vec<String> {
    value
        .type_
        .tensor_type()
        .shape
        .dim
        .iter()
        .map(|d| {
            if d.has_dim_param() {
                d.dim_param().to_string()
            } else {
                d.dim_value().to_string()
            }
        })
        .collect()
}

fn props(m: &ModelProto) -> Vec<(&str, &str)> {
    m.metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect()
}

fn prop<'a>(m: &'a ModelProto, key: &str) -> &'a str {
    props(m)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no metadata {key}"))
}

fn floats(t: &onnx_ir::TensorProto) -> Vec<f32> {
    t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Every tensor of the model's state dict (but those under `skip`, auxiliary heads) is an
/// initializer of the same name, shape and values; every other float initializer is a
/// constant of a node (named `node/what`).
fn assert_weights_are_the_state_dict(model: &Sequential, m: &ModelProto, skip: &[&str]) {
    let dict = convnet_weights::to_state_dict(model).unwrap();
    let mut expected = 0;
    for (key, t) in dict.iter() {
        if skip.iter().any(|s| key.starts_with(s)) {
            assert!(
                !m.graph.initializer.iter().any(|i| i.name == key),
                "{key} should be left out"
            );
            continue;
        }
        expected += 1;
        let init = m
            .graph
            .initializer
            .iter()
            .find(|i| i.name == key)
            .unwrap_or_else(|| panic!("no initializer {key}"));
        let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        assert_eq!(init.dims, shape, "{key}");
        assert_eq!(init.data_type, 1, "{key} is float");
        assert_eq!(floats(init), t.data, "{key}");
    }
    let from_dict = m
        .graph
        .initializer
        .iter()
        .filter(|i| dict.contains_key(&i.name))
        .count();
    assert_eq!(from_dict, expected);
    for i in &m.graph.initializer {
        assert!(
            dict.contains_key(&i.name) || i.name.contains('/'),
            "stray initializer {}",
            i.name
        );
    }
}

#[test]
fn lenet5_writes_its_layers_weights_and_metadata() {
    let spec = convnet_zoo::spec("lenet5").unwrap();
    let model = spec.build(&device()).unwrap();
    let options = ExportOptions {
        metadata: Metadata {
            classes: (0..10).map(|d| d.to_string()).collect(),
            preprocessing: Some(serde_json::json!({"mean": [0.5], "std": [0.25]})),
            extra: vec![("convnet_spec".into(), spec.to_toml().unwrap())],
        },
        ..ExportOptions::default()
    };
    let m = roundtrip_proto(&model, &options);
    assert_eq!(m.ir_version, 8);
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(m.opset_import[0].version, 17);
    assert_eq!(m.opset_import[0].domain, "");
    assert_eq!(m.producer_name, "convnet");

    // LeNet-5: conv 5x5 tanh, avg pool, conv 5x5 tanh, avg pool, flatten, 120, 84, 10 softmax.
    let mut want = Vec::new();
    for layer in &spec.layers {
        use convnet_layers::LayerConfig as C;
        match &layer.config {
            C::Conv2d(c) => {
                want.push("Conv");
                want.extend(act_ops(c.activation));
            }
            C::AvgPool2d(_) => want.push("AveragePool"),
            C::MaxPool2d(_) => want.push("MaxPool"),
            C::Flatten => want.push("Flatten"),
            C::Dense(d) => {
                want.push("Gemm");
                want.extend(act_ops(d.activation));
            }
            C::Activation { activation } => want.extend(act_ops(*activation)),
            C::Relu => want.push("Relu"),
            C::Tanh => want.push("Tanh"),
            C::Sigmoid => want.push("Sigmoid"),
            C::Softmax => want.push("Softmax"),
            other => panic!("LeNet-5 has an unexpected layer {other:?}"),
        }
    }
    assert_eq!(ops(&m), want);
    assert_eq!(
        ops(&m).iter().filter(|o| **o == "Conv").count(),
        2,
        "LeNet-5 has two convolutions"
    );
    assert_weights_are_the_state_dict(&model, &m, &[]);

    // The graph's interface: one input, one output, batch 1, the model's shapes.
    assert_eq!(m.graph.input.len(), 1);
    assert_eq!(m.graph.input[0].name, "input");
    assert_eq!(dims(&m.graph.input[0]), ["1", "1", "32", "32"]);
    assert_eq!(m.graph.output.len(), 1);
    assert_eq!(m.graph.output[0].name, "output");
    assert_eq!(dims(&m.graph.output[0]), ["1", "10"]);
    let last = m.graph.node.last().unwrap();
    assert_eq!(last.output, ["output"]);
    assert_eq!(m.graph.node[0].input[0], "input");

    // Everything a user needs to run it.
    assert_eq!(prop(&m, "model"), spec.name);
    assert_eq!(prop(&m, "input_name"), "input");
    assert_eq!(prop(&m, "input_layout"), "NCHW");
    assert_eq!(prop(&m, "input_shape"), "[1,1,32,32]");
    assert_eq!(prop(&m, "output_name"), "output");
    assert_eq!(prop(&m, "output_shape"), "[1,10]");
    let classes: Vec<String> = serde_json::from_str(prop(&m, "classes")).unwrap();
    assert_eq!(classes, (0..10).map(|d| d.to_string()).collect::<Vec<_>>());
    let pre: serde_json::Value = serde_json::from_str(prop(&m, "preprocessing")).unwrap();
    assert_eq!(pre["std"][0], 0.25);
    let back = ModelSpec::parse(prop(&m, "convnet_spec"), "meta").unwrap();
    assert_eq!(back.to_toml().unwrap(), spec.to_toml().unwrap());
}

fn act_ops(a: convnet_layers::Activation) -> Vec<&'static str> {
    use convnet_layers::Activation as A;
    match a {
        A::Linear => vec![],
        A::Relu => vec!["Relu"],
        A::Relu6 => vec!["Clip"],
        A::Sigmoid => vec!["Sigmoid"],
        A::Tanh => vec!["Tanh"],
        A::Softmax => vec!["Softmax"],
        A::Silu => vec!["Sigmoid", "Mul"],
        A::Leaky => vec!["LeakyRelu"],
    }
}

#[test]
fn every_layer_kind_becomes_its_onnx_operators() {
    let model = build(EVERY_LAYER);
    let m = roundtrip_proto(&model, &ExportOptions::default());
    #[rustfmt::skip]
    let want = [
        "Conv", "Clip",                                          // conv2d relu6
        "BatchNormalization",
        "Conv", "Sigmoid", "Mul",                                // depthwise, silu
        "Conv", "Conv", "LeakyRelu",                             // separable
        "GlobalAveragePool", "Conv", "Relu", "Conv", "Sigmoid", "Mul", // se
        "Conv", "BatchNormalization", "Add", "Relu",             // residual
        "Conv", "AveragePool", "Concat",                         // concat
        "LRN",
        "MaxPool",
        "ConvTranspose",
        "Pad",
        "Reshape", "MaxPool", "Reshape",                         // channel pool
        "MatMul", "MatMul",                                      // adaptive 9x9 -> 4x4
        "Flatten",
        "Gemm", "Tanh",
        "Gemm", "Softmax",
    ];
    assert_eq!(ops(&m), want);
    assert_weights_are_the_state_dict(&model, &m, &["aux_1."]);
    assert_eq!(dims(&m.graph.output[0]), ["1", "4"]);

    // `same` with stride 2 on 16: 8 outputs need 17 inputs, the odd one padded at the end.
    let conv = node(&m, "conv2d_1");
    assert_eq!(attr(conv, "pads").ints, [0, 0, 1, 1]);
    assert_eq!(attr(conv, "strides").ints, [2, 2]);
    assert_eq!(attr(conv, "group").i, 1);
    let clip = node(&m, "conv2d_1/relu6");
    let bound = |name: &str| {
        let t = m.graph.initializer.iter().find(|i| i.name == name).unwrap();
        t.float_data[0]
    };
    assert_eq!((bound(&clip.input[1]), bound(&clip.input[2])), (0.0, 6.0));
    assert_eq!(attr(node(&m, "batch_norm_1"), "epsilon").f, 0.001);
    // Depthwise: one group per channel.
    assert_eq!(attr(node(&m, "depthwise_conv2d_1"), "group").i, 8);
    assert_eq!(
        node(&m, "separable_conv2d_1.depthwise").input[1],
        "separable_conv2d_1.depthwise.weight"
    );
    // Leaky ReLU with darknet's slope.
    let leaky = node(&m, "separable_conv2d_1.pointwise/leaky");
    assert!((attr(leaky, "alpha").f - 0.1).abs() < 1e-7);
    // The residual adds the body's batch norm to the block's input.
    let add = node(&m, "residual_1");
    assert_eq!(add.input[0], "residual_1.bn");
    assert_eq!(add.input[1], "se_1");
    // Average over real pixels only, and the concat along the channels.
    let avg = node(&m, "concat_1.b2");
    assert_eq!(attr(avg, "count_include_pad").i, 0);
    assert_eq!(attr(avg, "pads").ints, [1, 1, 1, 1]);
    assert_eq!(attr(node(&m, "concat_1"), "axis").i, 1);
    // ONNX's LRN divides alpha by the window (5): convnet's alpha is given times 5.
    let lrn = node(&m, "lrn_1");
    assert_eq!(attr(lrn, "size").i, 5);
    assert!((attr(lrn, "alpha").f - 5e-4).abs() < 1e-10);
    assert_eq!(attr(lrn, "beta").f, 0.75);
    assert_eq!(attr(lrn, "bias").f, 2.0);
    // Ceil mode on 8 with 3/2: 4 windows, written as floor mode over 2 more end pixels.
    let pool = node(&m, "max_pool2d_1");
    assert_eq!(attr(pool, "pads").ints, [0, 0, 2, 2]);
    assert!(pool.attribute.iter().all(|a| a.name != "ceil_mode"));
    // Zero padding: top 1, right 1.
    let pads = m
        .graph
        .initializer
        .iter()
        .find(|i| i.name == node(&m, "zero_padding2d_1").input[1])
        .unwrap();
    assert_eq!(pads.int64_data, [0, 0, 1, 0, 0, 0, 0, 1]);
    // Adaptive pooling 9 -> 4: PyTorch's windows [0,3) [2,5) [4,7) [6,9), three pixels each.
    let rows = m
        .graph
        .initializer
        .iter()
        .find(|i| i.name == node(&m, "adaptive_avg_pool2d_1/rows").input[0])
        .unwrap();
    assert_eq!(rows.dims, [4, 9]);
    let r = floats(rows);
    let third = 1.0 / 3.0;
    assert_eq!(
        &r[..9],
        &[third, third, third, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        &r[9..18],
        &[0.0, 0.0, third, third, third, 0.0, 0.0, 0.0, 0.0]
    );
    // Dense layers: PyTorch's [out, in] weight, transposed by Gemm.
    let gemm = node(&m, "dense_2");
    assert_eq!(attr(gemm, "transB").i, 1);
    assert_eq!(gemm.input.len(), 2, "the last dense layer has no bias");
    let softmax = m.graph.node.last().unwrap();
    assert_eq!(softmax.output, ["output"]);
    assert_eq!(attr(softmax, "axis").i, 1);
}

#[test]
fn signals_and_volumes_export_with_their_ranks() {
    let signal = build(SIGNAL);
    let m = roundtrip_proto(&signal, &ExportOptions::default());
    assert_eq!(
        ops(&m),
        [
            "Conv",
            "Relu",
            "MaxPool",
            "AveragePool",
            "GlobalMaxPool",
            "Flatten",
            "Gemm",
            "Sigmoid"
        ]
    );
    // Kernel 4 `same` on 20: 3 pixels of padding, 1 before and 2 after.
    assert_eq!(attr(node(&m, "conv1d_1"), "pads").ints, [1, 2]);
    assert_eq!(prop(&m, "input_layout"), "NCL");
    assert_eq!(dims(&m.graph.input[0]), ["1", "2", "20"]);
    assert_weights_are_the_state_dict(&signal, &m, &[]);

    let volume = build(VOLUME);
    let m = roundtrip_proto(&volume, &ExportOptions::default());
    assert_eq!(
        ops(&m),
        [
            "Conv",
            "MaxPool",
            "ConvTranspose",
            "GlobalAveragePool",
            "Flatten",
            "Gemm"
        ]
    );
    assert_eq!(attr(node(&m, "conv3d_1"), "pads").ints, [1, 1, 1, 1, 1, 1]);
    assert_eq!(
        attr(node(&m, "conv_transpose3d_1"), "strides").ints,
        [2, 2, 2]
    );
    assert_eq!(prop(&m, "input_layout"), "NCDHW");
    assert_weights_are_the_state_dict(&volume, &m, &[]);
}

#[test]
fn options_batch_size_opset_and_output_normalisation() {
    let model = build(SIGNAL);
    let dynamic = roundtrip_proto(
        &model,
        &ExportOptions {
            dynamic_batch: true,
            opset: 21,
            ..ExportOptions::default()
        },
    );
    assert_eq!(dims(&dynamic.graph.input[0]), ["N", "2", "20"]);
    assert_eq!(dims(&dynamic.graph.output[0]), ["N", "3"]);
    assert_eq!(prop(&dynamic, "input_shape"), r#"["N",2,20]"#);
    assert_eq!(dynamic.opset_import[0].version, 21);
    assert_eq!(dynamic.ir_version, 10);

    // Another length for a network that pools globally: the same weights, new shapes.
    let longer = roundtrip_proto(
        &model,
        &ExportOptions {
            size: Some(vec![64]),
            ..ExportOptions::default()
        },
    );
    assert_eq!(dims(&longer.graph.input[0]), ["1", "2", "64"]);
    assert_eq!(attr(node(&longer, "conv1d_1"), "pads").ints, [1, 2]);

    let unit = roundtrip_proto(
        &model,
        &ExportOptions {
            normalize_output: true,
            ..ExportOptions::default()
        },
    );
    let last = unit.graph.node.last().unwrap();
    assert_eq!(last.op_type, "LpNormalization");
    assert_eq!(last.output, ["output"]);
    assert_eq!(attr(last, "p").i, 2);

    for opset in [12, 22, -1] {
        let err = export(
            &model,
            &ExportOptions {
                opset,
                ..ExportOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            format!(
                "export: opset {opset} is not supported: convnet writes opsets 13 to 21 (default 17)"
            )
        );
    }
    // A size the dense layer cannot take is refused with the layer's own message.
    let lenet = convnet_zoo::spec("lenet5")
        .unwrap()
        .build(&device())
        .unwrap();
    let err = export(
        &lenet,
        &ExportOptions {
            size: Some(vec![64, 64]),
            ..ExportOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("export: layer '"), "{err}");
    assert!(err.contains("input features"), "{err}");
    assert!(!err.contains('\n'));
    let err = export(
        &lenet,
        &ExportOptions {
            size: Some(vec![32]),
            ..ExportOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("takes 2 spatial axes"), "{err}");
}

/// Deterministic inputs in [-1, 1).
fn input(dims: &[usize], seed: u64) -> TensorData {
    let n: usize = dims.iter().product();
    let mut state = seed;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    TensorData::new(values, dims.to_vec())
}

fn forward(model: &Sequential, x: TensorData) -> Vec<f32> {
    let d = device();
    let f: Features = match x.shape().len() {
        3 => Tensor::<3>::from_data(x, &d).into(),
        4 => Tensor::<4>::from_data(x, &d).into(),
        _ => Tensor::<5>::from_data(x, &d).into(),
    };
    let y = model.forward(f, Mode::Eval).unwrap().into_flat();
    y.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The exported file, run by convnet's ONNX importer, gives what the model gives.
#[test]
fn exported_files_run_to_the_models_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let models = [
        (
            "lenet5",
            convnet_zoo::spec("lenet5")
                .unwrap()
                .build(&device())
                .unwrap(),
        ),
        ("every", build(EVERY_LAYER)),
        ("signal", build(SIGNAL)),
        ("volume", build(VOLUME)),
    ];
    for (name, model) in models {
        let path = dir.path().join(format!("{name}.onnx"));
        let exported = export(
            &model,
            &ExportOptions {
                dynamic_batch: true,
                ..ExportOptions::default()
            },
        )
        .unwrap();
        std::fs::write(&path, exported.to_bytes().unwrap()).unwrap();
        let mut shape = vec![2];
        shape.extend(model.input_shape().dims());
        let x = input(&shape, 7);
        let want = forward(&model, x.clone());
        let onnx = convnet_graph::OnnxModel::open(&path).unwrap();
        let got = onnx.run(&[x], &device()).unwrap();
        let got = got[0].clone().convert::<f32>().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{name}[{i}]: onnx {g}, convnet {w}"
            );
        }
    }
}
