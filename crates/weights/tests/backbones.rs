//! Classifiers trained as backbones (the zoo's `unet-small-encoder` and `tiny-yolo-backbone`)
//! hand every feature tensor to the segmenter or detector they were made for, value for value,
//! and nothing else; so does a trained detector to the U-Net built on its convolutions.

use burn::tensor::Device;
use convnet_layers::ModelSpec;
use convnet_weights::{LoadOptions, expected, load, nest_into, to_state_dict};
use convnet_zoo::{classifier_spec, segmenter_spec, spec};

/// Loads `backbone`'s (freshly initialised, so distinct random) tensors into `full` and checks
/// that every backbone tensor but its top (the layer named `top`: a classifier, a detector's
/// head) landed, unchanged, at one model tensor whose name ends with its own; returns how many
/// loaded.
fn place(backbone: &ModelSpec, full: &ModelSpec, top: &str) -> usize {
    let top = format!("{top}.");
    let device = Device::flex();
    let source = to_state_dict(&backbone.build(&device).unwrap()).unwrap();
    let model = full.build(&device).unwrap();
    let keys = expected(&model);
    let nested = nest_into(&source, keys.iter().map(|(k, _)| k.as_str())).unwrap();
    let (model, report) = load(model, &nested, &LoadOptions::partial()).unwrap();
    assert!(report.mismatched.is_empty(), "{:?}", report.mismatched);
    let features = source.keys().filter(|k| !k.starts_with(&top)).count();
    assert_eq!(report.loaded.len(), features, "{:?}", report.loaded);
    assert!(
        report.unexpected.iter().all(|k| k.starts_with(&top)),
        "{:?}",
        report.unexpected
    );
    let placed = to_state_dict(&model).unwrap();
    for key in source.keys().filter(|k| !k.starts_with(&top)) {
        let home: Vec<&str> = placed
            .keys()
            .filter(|m| *m == key || m.ends_with(&format!(".{key}")))
            .collect();
        assert_eq!(home.len(), 1, "{key} -> {home:?}");
        assert!(
            placed.get(home[0]) == source.get(key),
            "{key} -> {}: values differ",
            home[0]
        );
    }
    report.loaded.len()
}

#[test]
fn the_unet_encoder_fills_the_contracting_path_of_the_nested_unet() {
    // Trained on 28x28 Fashion-MNIST items, used on 64x64 scenes with 11 classes. Depth d:
    // d contracting blocks and the bottleneck, two convs (no bias) and two batch norms
    // (4 tensors) each.
    for (unet, depth) in [("unet-small", 3), ("unet-small-deep", 4)] {
        let encoder = classifier_spec(&format!("{unet}-encoder"), &[1, 28, 28], 10).unwrap();
        let segmenter = segmenter_spec(unet, &[1, 64, 64], 11).unwrap();
        assert_eq!(
            place(&encoder, &segmenter, "classifier"),
            (depth + 1) * 2 * (1 + 4),
            "{unet}"
        );
    }
}

#[test]
fn the_tiny_yolo_backbone_fills_the_detector_but_its_head() {
    let backbone = classifier_spec("tiny-yolo-backbone", &[1, 28, 28], 10).unwrap();
    assert_eq!(backbone.layers[0].name.as_deref(), Some("pad"));
    let detector = spec("tiny-yolo").unwrap();
    assert_eq!(place(&backbone, &detector, "classifier"), 6 * (1 + 4));
}

#[test]
fn a_trained_detector_fills_the_contracting_path_of_its_unet_but_its_head() {
    // The detector's six units (conv without bias, batch norm's 4 tensors) sit nested in the
    // U-Net's skips; its 1x1 head (45 outputs a cell) stays behind: the U-Net's is `score`.
    for (detector, unet) in [
        ("tiny-yolo", "unet-tiny-yolo"),
        ("tiny-yolo-wide", "unet-tiny-yolo-wide"),
    ] {
        let segmenter = segmenter_spec(unet, &[1, 64, 64], 11).unwrap();
        assert_eq!(
            place(&spec(detector).unwrap(), &segmenter, "head"),
            6 * (1 + 4),
            "{unet}"
        );
    }
}
