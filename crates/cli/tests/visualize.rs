//! `convnet visualize filters|patches|activations` end to end on tiny models: the committed
//! PyTorch fixture (RGB, 16x16, a residual block), LeNet-5 with freshly initialised weights and
//! a LeNet-5 checkpoint; the pictures' sizes, what `--json` reports, and the bad input each view
//! must refuse.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::{convnet, json, s, stderr, stdout, torch_fixture};
use image::{Rgb, RgbImage};
use serde_json::Value;

/// Pixels around and between tiles, the caption line's height, a glyph's width.
const GAP: u32 = 2;
const CAPTION: u32 = 8 + 2 * GAP;
const GLYPH: u32 = 8;

/// The command failed with a one-line error holding every `needle`, and did not panic.
fn fails_with(out: &std::process::Output, needles: &[&str]) {
    assert!(!out.status.success(), "{}", stdout(out));
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

/// `convnet visualize VIEW` on the fixture network with its weights, then `extra`.
fn tiny(view: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "visualize".to_string(),
        view.to_string(),
        "--model".to_string(),
        s(&torch_fixture("tiny.toml")),
        "--weights".to_string(),
        s(&torch_fixture("tiny.safetensors")),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    convnet(&args)
}

/// The PNG's `[width, height]`, which must be what `--json` reported.
fn png_size(path: &Path, report: &Value) -> [u32; 2] {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let size = [img.width(), img.height()];
    assert_eq!(report["size"], serde_json::json!(size), "{report}");
    size
}

/// Width of a picture whose tiles span `tiles_width`, under the report's caption.
fn widened(tiles_width: u32, report: &Value) -> u32 {
    let caption = report["caption"].as_str().unwrap();
    tiles_width.max(GLYPH * caption.chars().count() as u32 + 2 * GAP)
}

/// `n` tiles of `tile` pixels (and gaps) in a row or column.
fn span(n: u32, tile: u32) -> u32 {
    n * tile + (n + 1) * GAP
}

/// Colourful 24x20 pictures, each with a bright square somewhere else.
fn rgb_images(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = data::Rng::new(5);
    for i in 0..n {
        let (cx, cy) = (rng.below(24) as i64, rng.below(20) as i64);
        let base = [
            rng.below(200) as u8,
            rng.below(200) as u8,
            rng.below(200) as u8,
        ];
        let img = RgbImage::from_fn(24, 20, |x, y| {
            if (i64::from(x) - cx).abs() < 3 && (i64::from(y) - cy).abs() < 3 {
                Rgb([255, 255, 255])
            } else {
                Rgb(base.map(|b| b.wrapping_add((x * y) as u8 % 40)))
            }
        });
        img.save(dir.join(format!("img{i:02}.png"))).unwrap();
    }
}

#[test]
fn filters_of_an_rgb_layer_are_colour_tiles_and_deeper_ones_grey_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("filters.png");
    // The first convolution by default: 8 filters 3x3x3, each 3x3 kernel enlarged 11 times.
    let v = json(&tiny("filters", &["-o", &s(&out), "--json"]));
    assert_eq!(v["layer"], "conv1");
    assert_eq!(v["mode"], "rgb");
    assert_eq!(v["filters"], 8);
    assert_eq!(v["kernel"], serde_json::json!([3, 3]));
    assert_eq!(v["normalisation"], "min-max per filter");
    assert_eq!(v["output"], s(&out));
    // 8 tiles in a 3x3 block.
    let [w, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(3, 33));
    assert_eq!(w, widened(span(3, 33), &v));

    // conv2 reads 16 channels in 2 groups: 24 filters over 8 channels each, shown as rows of
    // greyscale tiles, capped.
    let out = dir.path().join("conv2.png");
    let v = json(&tiny(
        "filters",
        &[
            "--layer",
            "conv2",
            "--max",
            "10",
            "--max-channels",
            "4",
            "-o",
            &s(&out),
            "--json",
        ],
    ));
    assert_eq!(v["mode"], "grey");
    assert_eq!(
        (v["filters"].as_u64(), v["channels"].as_u64()),
        (Some(24), Some(8))
    );
    assert_eq!(
        v["shown"],
        serde_json::json!({"filters": 10, "channels": 4})
    );
    let [w, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(10, 33));
    assert_eq!(w, widened(span(4, 33), &v));

    // A convolution inside the residual block, by its state-dict name, with larger tiles.
    let out = dir.path().join("depthwise.png");
    let v = json(&tiny(
        "filters",
        &[
            "--layer",
            "layer1.0.conv2",
            "--tile",
            "64",
            "-o",
            &s(&out),
            "--json",
        ],
    ));
    assert_eq!(v["kind"], "DepthwiseConv2D");
    assert_eq!(v["tile"], serde_json::json!([66, 66]));
    let [_, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(16, 66));
    let plain = tiny("filters", &["-o", &s(&dir.path().join("p.png"))]);
    assert!(stdout(&plain).contains("conv1"), "{}", stdout(&plain));
}

#[test]
fn patches_are_the_strongest_images_cut_along_the_receptive_field() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    rgb_images(&images, 11);
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    let out = dir.path().join("top.png");
    let v = json(&tiny(
        "patches",
        &["--images", &s(&images), "-o", &s(&out), "--json"],
    ));
    // conv1: 3x3 kernels every 2 pixels, padded by 1.
    assert_eq!(v["layer"], "conv1");
    assert_eq!(v["images"], 11);
    assert_eq!(
        v["receptive_field"],
        serde_json::json!({"size": [3, 3], "stride": [2, 2], "start": [-1, -1]})
    );
    let units = v["units"].as_array().unwrap();
    let ids: Vec<u64> = units.iter().map(|u| u["unit"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..8).collect::<Vec<_>>(), "the first 8 channels");
    for unit in units {
        let patches = unit["patches"].as_array().unwrap();
        assert_eq!(patches.len(), 9, "{unit}");
        let scores: Vec<f64> = patches
            .iter()
            .map(|p| p["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        let mut files: Vec<&str> = patches
            .iter()
            .map(|p| p["image"].as_str().unwrap())
            .collect();
        files.sort();
        files.dedup();
        assert_eq!(
            files.len(),
            9,
            "one patch per image when there are enough images"
        );
        for p in patches {
            let [y, x] = [0, 1].map(|i| p["position"][i].as_i64().unwrap());
            let window: Vec<i64> = serde_json::from_value(p["window"].clone()).unwrap();
            assert_eq!(window, [2 * x - 1, 2 * y - 1, 2 * x + 2, 2 * y + 2]);
            let b: Vec<i64> = serde_json::from_value(p["box"].clone()).unwrap();
            assert!(b[0] >= 0 && b[1] >= 0 && b[2] <= 16 && b[3] <= 16, "{p}");
        }
    }
    // A row per unit, labelled "unit N", 9 tiles of 64 pixels.
    let [w, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(8, 64));
    assert_eq!(w, widened(GLYPH * 6 + GAP + span(9, 64), &v));
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
fn iou(a: &[i64], b: &[i64]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0);
    let area = |r: &[i64]| (r[2] - r[0]) * (r[3] - r[1]);
    let inter = w * h;
    inter as f64 / (area(a) + area(b) - inter) as f64
}

#[test]
fn with_few_images_further_patches_overlap_the_chosen_ones_little() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    rgb_images(&images, 2);
    let out = dir.path().join("few.png");
    // After the max pool a unit sees 7x7 pixels every 4 (3x3 every 2, then 3x3 every 2
    // padded by 1).
    let v = json(&tiny(
        "patches",
        &[
            "--images",
            &s(&images),
            "--layer",
            "maxpool",
            "--units",
            "2,5",
            "--top",
            "5",
            "--tile",
            "21",
            "-o",
            &s(&out),
            "--json",
        ],
    ));
    assert_eq!(
        v["receptive_field"],
        serde_json::json!({"size": [7, 7], "stride": [4, 4], "start": [-3, -3]})
    );
    let units = v["units"].as_array().unwrap();
    assert_eq!(units.len(), 2);
    for unit in units {
        let patches = unit["patches"].as_array().unwrap();
        assert_eq!(patches.len(), 5, "{unit}");
        for (i, a) in patches.iter().enumerate() {
            for b in &patches[..i] {
                if a["image"] == b["image"] {
                    let (ba, bb): (Vec<i64>, Vec<i64>) = (
                        serde_json::from_value(a["box"].clone()).unwrap(),
                        serde_json::from_value(b["box"].clone()).unwrap(),
                    );
                    assert!(iou(&ba, &bb) < 0.5, "{a} overlaps {b}");
                }
            }
        }
    }
    let [w, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(2, 21));
    assert_eq!(w, widened(GLYPH * 6 + GAP + span(5, 21), &v));
}

#[test]
fn activations_are_one_tile_per_map() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    rgb_images(&images, 1);
    let image = images.join("img00.png");
    let out = dir.path().join("maps.png");
    // conv1 gives 8 maps of 8x8, each enlarged 6 times to 48 pixels, in a 3x3 block.
    let v = json(&tiny(
        "activations",
        &[&s(&image), "--layer", "conv1", "-o", &s(&out), "--json"],
    ));
    assert_eq!(
        (v["channels"].as_u64(), v["maps"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(v["map_size"], serde_json::json!([8, 8]));
    assert_eq!(v["image"], s(&image));
    let [w, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(3, 48));
    assert_eq!(w, widened(span(3, 48), &v));
    // The residual block's 16 maps of 2x2, capped at 4: a 2x2 block of 48-pixel tiles.
    let v = json(&tiny(
        "activations",
        &[
            &s(&image),
            "--layer",
            "layer1.0",
            "--max",
            "4",
            "-o",
            &s(&out),
            "--json",
        ],
    ));
    assert_eq!(
        (v["channels"].as_u64(), v["maps"].as_u64()),
        (Some(16), Some(4))
    );
    let [_, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(2, 48));
}

/// LeNet-5 with freshly initialised weights in a safetensors file.
fn lenet_weights(dir: &Path) -> PathBuf {
    let model = convnet_zoo::spec("lenet5")
        .unwrap()
        .build(&Device::flex())
        .unwrap();
    let path = dir.join("lenet5.safetensors");
    convnet_weights::write_safetensors(&convnet_weights::to_state_dict(&model).unwrap(), &path)
        .unwrap();
    path
}

#[test]
fn greyscale_models_take_safetensors_or_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for k in 0..3 {
        data::write_png(&images.join(format!("{k}.png")), k, k as u64);
    }
    let weights = lenet_weights(dir.path());
    let out = dir.path().join("out.png");
    let run = |view: &str, weights: &Path, extra: &[&str]| {
        let mut args = vec!["visualize", view, "--model", "lenet5"];
        let w = s(weights);
        let o = s(&out);
        args.extend(["--weights", &w, "-o", &o, "--json"]);
        args.extend(extra);
        json(&convnet(&args))
    };
    // LeNet-5's first layer reads 1 channel: its 6 5x5 filters are grey rows of one tile.
    let v = run("filters", &weights, &[]);
    assert_eq!(
        (v["mode"].as_str(), v["layer"].as_str()),
        (Some("grey"), Some("conv1"))
    );
    let [_, h] = png_size(&out, &v);
    assert_eq!(h, CAPTION + span(6, 35));
    // conv2 (after a 2x2 pool): 5 + 1 + 4 * 2 = 14 pixels every 2, on the 32x32 input.
    let images_arg = s(&images);
    let v = run(
        "patches",
        &weights,
        &[
            "--images",
            &images_arg,
            "--layer",
            "conv2",
            "--units",
            "0,15",
        ],
    );
    assert_eq!(v["receptive_field"]["size"], serde_json::json!([14, 14]));
    assert_eq!(v["input"], serde_json::json!([32, 32]));
    png_size(&out, &v);

    // A checkpoint brings its own input size (28x28) and normalisation.
    let train_dir = dir.path().join("data");
    std::fs::create_dir(&train_dir).unwrap();
    data::write_fashion_like(&train_dir, 64, 16, 3);
    let ckpt = dir.path().join("run");
    let trained = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(&train_dir),
        "--epochs",
        "1",
        "--batch",
        "32",
        "--out",
        &s(&ckpt),
        "-q",
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let v = run("activations", &ckpt, &[&s(&images.join("1.png"))]);
    assert_eq!(
        v["map_size"],
        serde_json::json!([28, 28]),
        "conv1 pads 28x28 by 2"
    );
    png_size(&out, &v);
    let v = run(
        "patches",
        &ckpt,
        &["--images", &images_arg, "--layer", "pool1", "--top", "3"],
    );
    assert_eq!(
        v["receptive_field"],
        serde_json::json!({"size": [6, 6], "stride": [2, 2], "start": [-2, -2]})
    );
    png_size(&out, &v);
}

#[test]
fn bad_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    rgb_images(&images, 2);
    let out = s(&dir.path().join("out.png"));
    let images_arg = s(&images);
    let patches = |extra: &[&str]| {
        let mut args = vec!["--images", images_arg.as_str(), "-o", out.as_str()];
        args.extend(extra);
        tiny("patches", &args)
    };

    // An unknown layer: the valid ones are listed.
    fails_with(
        &patches(&["--layer", "conv9"]),
        &[
            "no layer named 'conv9'",
            "conv1, bn1, relu, maxpool, layer1.0, conv2",
        ],
    );
    fails_with(
        &tiny(
            "activations",
            &[&s(&images.join("img00.png")), "--layer", "x", "-o", &out],
        ),
        &["no layer named 'x'", "layer1.0"],
    );
    fails_with(
        &tiny("filters", &["--layer", "conv9", "-o", &out]),
        &[
            "no layer named 'conv9'",
            "convolutions: conv1, layer1.0.conv1",
        ],
    );
    // Filters of a layer without kernels.
    fails_with(
        &tiny("filters", &["--layer", "maxpool", "-o", &out]),
        &[
            "'maxpool' is a MaxPooling2D layer, not a convolution",
            "conv1",
        ],
    );
    // Units past the flatten have no receptive field; a dense layer has no maps.
    fails_with(
        &patches(&["--layer", "classifier.1"]),
        &["'flatten'", "whole input", "receptive field"],
    );
    fails_with(
        &tiny(
            "activations",
            &[
                &s(&images.join("img00.png")),
                "--layer",
                "classifier.1",
                "-o",
                &out,
            ],
        ),
        &["not feature maps"],
    );
    fails_with(&patches(&["--units", "1,8"]), &["--units 8", "8 channels"]);
    fails_with(&patches(&["--top", "0"]), &["--top"]);

    // Image folders: missing, empty, holding a corrupt picture.
    let missing = s(&dir.path().join("missing"));
    fails_with(
        &tiny("patches", &["--images", &missing, "-o", &out]),
        &["cannot read the folder", "missing"],
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), "no pictures").unwrap();
    fails_with(
        &tiny("patches", &["--images", &s(&empty), "-o", &out]),
        &["holds no .png, .jpg or .jpeg images"],
    );
    let corrupt = images.join("zz.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff not really a jpeg").unwrap();
    fails_with(&patches(&[]), &["zz.jpg"]);
    fails_with(
        &tiny("activations", &[&s(&corrupt), "-o", &out]),
        &["cannot use", "zz.jpg"],
    );

    // Weights that are missing or belong to another model.
    let nothing = s(&dir.path().join("nothing.safetensors"));
    let lenet = |weights: &str| {
        convnet(&[
            "visualize",
            "filters",
            "--model",
            "lenet5",
            "--weights",
            weights,
            "-o",
            &out,
        ])
    };
    fails_with(&lenet(&nothing), &["nothing.safetensors"]);
    fails_with(
        &lenet(&s(&torch_fixture("tiny.safetensors"))),
        &["cannot load", "does not fit", "conv1.weight"],
    );
    // Only PNG output, refused before any work.
    fails_with(
        &tiny("filters", &["-o", &s(&dir.path().join("f.jpg"))]),
        &["PNG"],
    );
    assert!(
        !dir.path().join("out.png").exists(),
        "a failed run writes nothing"
    );
}
