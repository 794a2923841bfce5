//! The loader against PyTorch: the tiny torchvision-style network of
//! `fixtures/torch/weights/make_weights_fixture.py`, its weights in every container format the
//! script writes, and PyTorch's eval-mode output for a fixed batch.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::{NpyData, read_npy};
use convnet_layers::{Mode, ModelSpec, Sequential};
use convnet_weights::{LoadOptions, StateDict, WeightsError, load, read};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/torch/weights")
        .join(name)
}

fn tiny(device: &Device) -> Sequential {
    ModelSpec::from_file(&fixture("tiny.toml"))
        .unwrap()
        .build(device)
        .unwrap()
}

fn npy_f32(name: &str) -> (Vec<usize>, Vec<f32>) {
    let array = read_npy(&fixture(name)).unwrap();
    let NpyData::F32(values) = array.data else {
        panic!("{name} is not float32");
    };
    (array.shape, values)
}

/// The model's eval-mode logits for the fixture batch.
fn logits(model: &Sequential, device: &Device) -> Vec<f32> {
    let (shape, values) = npy_f32("input.npy");
    let x = Tensor::<4>::from_data(TensorData::new(values, shape), device);
    let y = model.forward_logits(x, Mode::Eval).unwrap();
    y.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_container_format_reproduces_pytorchs_output() {
    let device = Device::flex();
    let (out_shape, want) = npy_f32("output.npy");
    assert_eq!(out_shape, vec![2, 5]);
    // Half-precision files hold rounded weights: the output moves by about their precision.
    for (file, tolerance) in [
        ("tiny.pth", 1e-4),
        ("tiny_legacy.pth", 1e-4),
        ("tiny_wrapped.pth", 1e-4),
        ("tiny.safetensors", 1e-4),
        ("tiny_f16.safetensors", 2e-2),
        ("tiny_bf16.pth", 1e-1),
    ] {
        let dict = read(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (model, report) = load(tiny(&device), &dict, &LoadOptions::strict())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(report.is_complete(), "{file}: {}", report.skipped());
        let got = logits(&model, &device);
        let diff = max_abs_diff(&got, &want);
        assert!(diff < tolerance, "{file}: max |diff| {diff} vs PyTorch");
    }
}

#[test]
fn the_exported_state_dict_round_trips_exactly() {
    let device = Device::flex();
    let dict = read(fixture("tiny.pth")).unwrap();
    let (model, _) = load(tiny(&device), &dict, &LoadOptions::strict()).unwrap();
    let exported = convnet_weights::to_state_dict(&model).unwrap();
    // Every tensor comes back bit for bit, in PyTorch's layouts.
    for (key, tensor) in exported.iter() {
        let original = dict
            .get(key)
            .unwrap_or_else(|| panic!("{key} not in the file"));
        assert_eq!(tensor.shape, original.shape, "{key}");
        assert_eq!(tensor.data, original.data, "{key}");
    }
    assert_eq!(exported.len(), dict.len());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    convnet_weights::write_safetensors(&exported, &path).unwrap();
    let back = read(&path).unwrap();
    let (reloaded, report) = load(tiny(&device), &back, &LoadOptions::strict()).unwrap();
    assert!(report.is_complete());
    assert_eq!(logits(&reloaded, &device), logits(&model, &device));
}

#[test]
fn a_mismatched_file_lists_every_tensor_that_does_not_fit() {
    let device = Device::flex();
    let mut dict = read(fixture("tiny.pth")).unwrap();
    dict.remove("layer1.0.bn2.running_var").unwrap();
    let bias = dict.remove("classifier.1.bias").unwrap();
    dict.insert("classifier.1.bias_extra", bias);
    let weight = dict.get_mut("conv2.weight").unwrap();
    weight.shape = vec![24, 16, 3, 3];
    weight.data.resize(24 * 16 * 9, 0.0);

    let err = load(tiny(&device), &dict, &LoadOptions::strict()).unwrap_err();
    let WeightsError::Mismatch(m) = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(
        m.report.missing,
        vec!["layer1.0.bn2.running_var", "classifier.1.bias"]
    );
    assert_eq!(m.report.unexpected, vec!["classifier.1.bias_extra"]);
    assert_eq!(m.report.mismatched.len(), 1);
    assert_eq!(m.report.mismatched[0].key, "conv2.weight");
    assert_eq!(m.report.mismatched[0].expected, vec![24, 8, 3, 3]);
    let text = err.to_string();
    for name in [
        "layer1.0.bn2.running_var",
        "classifier.1.bias_extra",
        "conv2.weight",
    ] {
        assert!(text.contains(name), "{text}");
    }

    // Partially, the rest loads and the report keeps the same account.
    let (_, report) = load(tiny(&device), &dict, &LoadOptions::partial()).unwrap();
    assert_eq!(report.missing.len(), 2);
    assert_eq!(report.unexpected.len(), 1);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(
        report.loaded.len() + 3,
        convnet_weights::expected(&tiny(&device)).len()
    );
}

#[test]
fn another_class_count_is_named_as_the_cause() {
    let device = Device::flex();
    let spec = ModelSpec::from_file(&fixture("tiny.toml")).unwrap();
    let mut text = spec.to_toml().unwrap();
    text = text.replace("units = 5", "units = 7");
    let seven = ModelSpec::parse(&text, "tiny7")
        .unwrap()
        .build(&device)
        .unwrap();
    let dict = read(fixture("tiny.pth")).unwrap();
    let err = load(seven, &dict, &LoadOptions::strict())
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the classifier"), "{err}");
    assert!(err.contains("5 outputs"), "{err}");
}

#[test]
fn weights_of_another_architecture_are_refused() {
    let device = Device::flex();
    let resnet = convnet_zoo::imagenet_spec(
        "resnet18",
        &convnet_zoo::ZooOptions {
            num_classes: 5,
            in_channels: 3,
            image_size: Some(32),
        },
    )
    .unwrap()
    .build(&device)
    .unwrap();
    let dict = read(fixture("tiny.pth")).unwrap();
    let err = load(resnet, &dict, &LoadOptions::strict())
        .unwrap_err()
        .to_string();
    assert!(err.contains("another architecture"), "{err}");
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let expect = |path: PathBuf, words: &str| {
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains(words),
            "{}: '{err}' should say '{words}'",
            path.display()
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
    };
    expect(fixture("bad/not_a_state_dict.pth"), "not a state dict");
    expect(fixture("bad/ints.pth"), "not a state dict");
    expect(fixture("bad/strings.pth"), "not a state dict");
    expect(fixture("bad/int_tensor.pth"), "floating point");

    // Truncated copies of both formats.
    for name in ["tiny.pth", "tiny.safetensors", "tiny_legacy.pth"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 7] {
            let path = dir.path().join(format!("cut-{cut}-{name}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let err = read(&path);
            assert!(err.is_err(), "{name} cut at {cut} was accepted");
        }
    }
    // Not a weights file at all, and no file.
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, "these are not weights").unwrap();
    expect(text, "not a weights file");
    let missing = dir.path().join("absent.pth");
    assert!(read(&missing).is_err());
}

#[test]
fn non_finite_weights_are_refused_by_name() {
    let device = Device::flex();
    let mut dict: StateDict = read(fixture("tiny.pth")).unwrap();
    dict.get_mut("bn1.weight").unwrap().data[0] = f32::NAN;
    let err = load(tiny(&device), &dict, &LoadOptions::partial())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bn1.weight"), "{err}");
}
