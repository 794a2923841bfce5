//! Pretrained weights on the command line: `convnet infer` against PyTorch's output,
//! `convnet predict --model --weights` with preprocessing and class names, `convnet finetune`
//! (frozen base, new head, unfreezing), and the bad input each of them must refuse.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::Path;

use burn::tensor::Device;
use common::{convnet, json, s, stderr, stdout, torch_fixture};
use convnet_data::{NpyData, read_npy, write_npy_f32};
use convnet_train::Checkpoint;
use convnet_weights::StateDict;

fn f32s(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let array = read_npy(path).unwrap();
    let NpyData::F32(values) = array.data else {
        panic!("{} is not float32", path.display());
    };
    (array.shape, values)
}

/// The command failed with a one-line error holding every `needle`, and did not panic.
fn fails_with(out: &std::process::Output, needles: &[&str]) {
    assert!(!out.status.success(), "{}", stdout(out));
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("error: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

fn infer(weights: &Path, input: &Path, output: &Path) -> std::process::Output {
    convnet(&[
        "infer",
        "--model",
        &s(&torch_fixture("tiny.toml")),
        "--weights",
        &s(weights),
        "--input",
        &s(input),
        "--output",
        &s(output),
        "--json",
    ])
}

#[test]
fn infer_matches_pytorch_on_the_committed_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let (_, want) = f32s(&torch_fixture("output.npy"));
    for weights in ["tiny.pth", "tiny.safetensors"] {
        let out_path = dir.path().join(format!("{weights}.npy"));
        let report = json(&infer(
            &torch_fixture(weights),
            &torch_fixture("input.npy"),
            &out_path,
        ));
        assert_eq!(
            report["output_shape"],
            serde_json::json!([2, 5]),
            "{report}"
        );
        assert_eq!(report["complete"], true);
        let (shape, got) = f32s(&out_path);
        assert_eq!(shape, vec![2, 5]);
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "{weights}: max |diff| {diff} vs PyTorch");
    }
}

#[test]
fn infer_refuses_bad_arrays_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    // A float64 batch, and a batch of the wrong rank.
    let f64_path = dir.path().join("x64.npy");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3, 16, 16), }";
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, 8 * 3 * 16 * 16));
    std::fs::write(&f64_path, bytes).unwrap();
    fails_with(
        &infer(&torch_fixture("tiny.pth"), &f64_path, &out),
        &["float32", "float64"],
    );
    let flat = dir.path().join("flat.npy");
    write_npy_f32(&flat, &[3, 256], &vec![0.0; 3 * 256]).unwrap();
    fails_with(
        &infer(&torch_fixture("tiny.pth"), &flat, &out),
        &["[3, 256]"],
    );
    let wrong_size = dir.path().join("x8.npy");
    write_npy_f32(&wrong_size, &[1, 3, 8, 8], &vec![0.0; 3 * 64]).unwrap();
    fails_with(
        &infer(&torch_fixture("tiny.pth"), &wrong_size, &out),
        &["[3, 16, 16]"],
    );

    // Weights that are not a state dict, a truncated file, weights of another architecture.
    let input = torch_fixture("input.npy");
    fails_with(
        &infer(&torch_fixture("bad/not_a_state_dict.pth"), &input, &out),
        &["not a state dict"],
    );
    let bytes = std::fs::read(torch_fixture("tiny.safetensors")).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&infer(&cut, &input, &out), &["cut.safetensors"]);
    let resnet = convnet(&[
        "infer",
        "--model",
        "resnet18",
        "--weights",
        &s(&torch_fixture("tiny.pth")),
        "--input",
        &s(&input),
        "--output",
        &s(&out),
    ]);
    fails_with(
        &resnet,
        &["does not fit", "missing", "layer1.0.conv1.weight"],
    );
    assert!(!out.exists(), "no output is written when the run fails");
}

/// A flat-coloured RGB picture, which every resize and crop leaves flat.
fn flat_png(path: &Path, rgb: [u8; 3], w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

#[test]
fn predict_with_pretrained_weights_preprocesses_and_names_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("flat.png");
    let rgb = [200u8, 120, 40];
    flat_png(&png, rgb, 40, 24);
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "ant\nbee\ncat\ndog\neel\n").unwrap();
    let p = json(&convnet(&[
        "predict",
        "--model",
        &s(&torch_fixture("tiny.toml")),
        "--weights",
        &s(&torch_fixture("tiny.pth")),
        "--labels",
        &s(&labels),
        "--top",
        "5",
        &s(&png),
        "--json",
    ]));
    let preds = p["results"][0]["predictions"].as_array().unwrap().clone();
    assert_eq!(preds.len(), 5);

    // The same picture preprocessed by hand (ImageNet statistics on a flat image) through
    // `convnet infer`: predict's probabilities are the softmax of those logits.
    let (mean, std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let mut x = Vec::new();
    for c in 0..3 {
        let v = (f32::from(rgb[c]) / 255.0 - mean[c]) / std[c];
        x.extend(std::iter::repeat_n(v, 16 * 16));
    }
    let x_path = dir.path().join("x.npy");
    write_npy_f32(&x_path, &[1, 3, 16, 16], &x).unwrap();
    let y_path = dir.path().join("y.npy");
    json(&infer(&torch_fixture("tiny.pth"), &x_path, &y_path));
    let (_, logits) = f32s(&y_path);
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    let names = ["ant", "bee", "cat", "dog", "eel"];
    for pred in &preds {
        let index = pred["index"].as_u64().unwrap() as usize;
        assert_eq!(pred["class"], names[index]);
        let want = exp[index] / total;
        let got = pred["probability"].as_f64().unwrap() as f32;
        assert!((got - want).abs() < 1e-4, "class {index}: {got} vs {want}");
    }
    let probs: Vec<f64> = preds
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "sorted: {probs:?}");

    // A wrong number of names, and a corrupt image.
    std::fs::write(&labels, "ant\nbee\n").unwrap();
    let args = |image: &Path| {
        convnet(&[
            "predict",
            "--model",
            &s(&torch_fixture("tiny.toml")),
            "--weights",
            &s(&torch_fixture("tiny.pth")),
            "--labels",
            &s(&labels),
            &s(image),
        ])
    };
    fails_with(&args(&png), &["2 class names", "5 outputs"]);
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(&labels, "ant\nbee\ncat\ndog\neel\n").unwrap();
    fails_with(&args(&broken), &["broken.png"]);
}

#[test]
fn imagenet_weights_are_decoded_with_imagenet_class_names() {
    // Random resnet18 weights, exported as torchvision would name them, decode to ImageNet's
    // classes through the resnet recipe (shorter side 256, centre crop 224).
    let device = Device::flex();
    let model = convnet_zoo::imagenet_spec("resnet18", &convnet_zoo::ZooOptions::default())
        .unwrap()
        .build(&device)
        .unwrap();
    let dict: StateDict = convnet_weights::to_state_dict(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("resnet18.safetensors");
    convnet_weights::write_safetensors(&dict, &weights).unwrap();
    let png = dir.path().join("photo.png");
    flat_png(&png, [30, 160, 90], 320, 240);
    let p = json(&convnet(&[
        "predict",
        "--model",
        "resnet18",
        "--weights",
        &s(&weights),
        &s(&png),
        "--json",
    ]));
    let names = convnet_zoo::imagenet_classes();
    let preds = p["results"][0]["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    for pred in preds {
        let index = pred["index"].as_u64().unwrap() as usize;
        assert_eq!(pred["class"], names[index]);
    }
}

/// Trains LeNet-5 on classes 0–4 of a generated Fashion-MNIST-like set (the pretrained base).
fn pretrain(data: &Path, run: &Path) {
    json(&convnet(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(data),
        "--only-classes",
        "0-4",
        "--epochs",
        "2",
        "--batch",
        "32",
        "--seed",
        "3",
        "--out",
        &s(run),
        "--json",
    ]));
}

/// `convnet finetune` of LeNet-5 on classes 5–9 (20 images each) with `--classes classes`.
fn finetune_into(
    data: &Path,
    weights: &Path,
    run: &Path,
    classes: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "finetune".to_string(),
        "--base".into(),
        "lenet5".into(),
        "--weights".into(),
        s(weights),
        "--data".into(),
        "fashion-mnist".into(),
        "--fashion-mnist-dir".into(),
        s(data),
        "--only-classes".into(),
        "5-9".into(),
        "--per-class".into(),
        "20".into(),
        "--classes".into(),
        classes.into(),
        "--epochs".into(),
        "2".into(),
        "--batch".into(),
        "16".into(),
        "--out".into(),
        s(run),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    convnet(&args)
}

fn finetune(data: &Path, weights: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    finetune_into(data, weights, run, "5", extra)
}

fn weights_of(run: &Path) -> StateDict {
    let path = Checkpoint::resolve(run).unwrap();
    let model = Checkpoint::load(&path)
        .unwrap()
        .model(&path, &Device::flex())
        .unwrap();
    convnet_weights::to_state_dict(&model).unwrap()
}

#[test]
fn finetune_trains_a_new_head_on_a_frozen_base_then_unfreezes() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, 600, 200, 11);
    let base_run = dir.path().join("base");
    pretrain(&data_dir, &base_run);
    let base = weights_of(&base_run);

    // Stage 1: only the head learns; every base tensor is as pretrained.
    let head_run = dir.path().join("head");
    let r = json(&finetune(&data_dir, &base_run, &head_run, &[]));
    assert!(r["test_accuracy"].as_f64().is_some(), "{r}");
    let head = weights_of(&head_run);
    let head_keys: Vec<&str> = head.keys().filter(|k| k.starts_with("head.")).collect();
    assert_eq!(head_keys, vec!["head.fc.weight", "head.fc.bias"]);
    assert_eq!(head.get("head.fc.weight").unwrap().shape, vec![5, 16]);
    for key in ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"] {
        assert_eq!(head.get(key), base.get(key), "{key} changed while frozen");
    }
    // The old classifier (fc1..fc3) is gone with the top.
    assert!(!head.contains_key("fc3.weight"));
    // `eval` scores the run on the classes it was tuned on (5-9, relabelled 0-4), as the
    // run's own report did.
    let e = json(&convnet(&[
        "eval",
        &s(&head_run),
        "--data",
        &s(&data_dir),
        "--json",
    ]));
    assert_eq!(e["accuracy"], r["test_accuracy"], "{e}");

    // Stage 2: fine-tune from conv2 on, starting from stage 1's checkpoint (its head kept).
    let tuned_run = dir.path().join("tuned");
    json(&finetune(
        &data_dir,
        &head_run,
        &tuned_run,
        &["--unfreeze-from", "conv2", "--lr", "1e-4"],
    ));
    let tuned = weights_of(&tuned_run);
    assert_eq!(tuned.get("conv1.weight"), base.get("conv1.weight"));
    assert_ne!(tuned.get("conv2.weight"), base.get("conv2.weight"));
    assert_ne!(tuned.get("head.fc.weight"), head.get("head.fc.weight"));

    // Bad input: a class count that is not the data's, a layer that does not exist, weights
    // of another architecture.
    let bad = dir.path().join("bad");
    fails_with(
        &finetune_into(&data_dir, &base_run, &bad, "4", &[]),
        &["--classes 4", "5 classes"],
    );
    fails_with(
        &finetune(&data_dir, &base_run, &bad, &["--unfreeze-from", "conv9"]),
        &["conv9"],
    );
    fails_with(
        &finetune(&data_dir, &torch_fixture("tiny.pth"), &bad, &[]),
        &["does not fit", "lenet5"],
    );
}

#[test]
fn infer_writes_a_named_layers_features() {
    // The pooled features of the fixture batch, run through the classifier's weights by hand,
    // give PyTorch's logits.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("features.npy");
    let run = |layer: &str| {
        convnet(&[
            "infer",
            "--model",
            &s(&torch_fixture("tiny.toml")),
            "--weights",
            &s(&torch_fixture("tiny.pth")),
            "--input",
            &s(&torch_fixture("input.npy")),
            "--output",
            &s(&out),
            "--layer",
            layer,
        ])
    };
    let done = run("avgpool");
    assert!(done.status.success(), "{}", stderr(&done));
    let (shape, features) = f32s(&out);
    assert_eq!(shape, vec![2, 24, 1, 1]);
    let dict = convnet_weights::read(torch_fixture("tiny.pth")).unwrap();
    let (w, b) = (
        dict.get("classifier.1.weight").unwrap(),
        dict.get("classifier.1.bias").unwrap(),
    );
    let (_, want) = f32s(&torch_fixture("output.npy"));
    for n in 0..2 {
        for k in 0..5 {
            let logit: f32 = b.data[k]
                + (0..24)
                    .map(|i| w.data[k * 24 + i] * features[n * 24 + i])
                    .sum::<f32>();
            assert!((logit - want[n * 5 + k]).abs() < 1e-4, "{n},{k}");
        }
    }
    fails_with(&run("layer9"), &["layer9"]);
}
