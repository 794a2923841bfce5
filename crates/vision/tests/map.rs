//! mAP against pycocotools and the VOC devkit's method: `fixtures/detection/make_map_fixture.py`
//! wrote the files and the expected numbers.

use std::path::PathBuf;

use convnet_vision::coco::{read_results, read_truth};
use convnet_vision::map::{Interpolation, coco_map, voc_map};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/detection")
        .join(name)
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: convnet {a}, reference {b}");
}

#[test]
fn coco_and_voc_map_match_the_references() {
    let truth = read_truth(&fixture("gt.json")).unwrap();
    let dets = read_results(&fixture("pred.json"), &truth).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    assert_eq!(
        truth.objects.len() as u64,
        expected["objects"].as_u64().unwrap()
    );
    assert_eq!(dets.len() as u64, expected["detections"].as_u64().unwrap());

    let coco = coco_map(&truth.objects, &dets, 100);
    let e = &expected["coco"];
    close(coco.map, e["map"].as_f64().unwrap(), "COCO mAP@[.5:.95]");
    close(coco.map50, e["map50"].as_f64().unwrap(), "COCO mAP@.5");
    close(coco.map75, e["map75"].as_f64().unwrap(), "COCO mAP@.75");
    for (class, ap) in &coco.per_class {
        close(
            *ap,
            e["per_class"][class.to_string()].as_f64().unwrap(),
            &format!("COCO class {class}"),
        );
    }
    for (interp, key) in [
        (Interpolation::ElevenPoint, "voc_11point"),
        (Interpolation::AllPoint, "voc_allpoint"),
    ] {
        let voc = voc_map(&truth.objects, &dets, 0.5, interp);
        close(voc.mean, expected[key]["mean"].as_f64().unwrap(), key);
        for (class, ap) in &voc.per_class {
            close(
                *ap,
                expected[key]["per_class"][class.to_string()]
                    .as_f64()
                    .unwrap(),
                &format!("{key} class {class}"),
            );
        }
    }
}
