//! The human package's TF.js models (CenterNet, NanoDet, selfie, meet) in convnet against
//! @tensorflow/tfjs (`scripts/tfjs-reference.sh`):
//!
//! ```sh
//! cargo run -p convnet-apps --example tfjs_inputs -- --write target/tfjs-reference/inputs
//! cargo run -p convnet-apps --example tfjs_inputs -- --compare target/tfjs-reference/out
//! cargo run -p convnet-apps --example tfjs_inputs -- --speed
//! cargo run -p convnet-apps --example tfjs_inputs -- --onnx DIR
//! ```
//!
//! `--write`: the network input convnet makes of each of darknet's seven test photos and
//! face-api's six demo photos, per model (`<photo>.<model>.f32`, float32 `[1, 3, H, W]`, and
//! `<photo>.<model>.json` with the photo's size), as `convnet detect` / `segment` make them.
//! `--compare`: every raw output of convnet beside tfjs's (max |diff| over max |tfjs|) and the
//! decoded boxes (before NMS) beside the package's JavaScript decoding (max corner distance in
//! photo pixels), one line per photo and model. `--speed`: CenterNet and NanoDet, batch 1.
//! `--onnx`: the four translations as `.onnx` files, for ONNX Runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, TensorData};
use convnet_apps::detect::graph::{DEFAULT_SCORE, GraphDetector};
use convnet_apps::onnx;
use convnet_vision::Detection;

const MODELS: [&str; 4] = ["centernet", "nanodet", "selfie", "meet"];

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn photos() -> Vec<PathBuf> {
    let darknet = [
        "dog", "eagle", "giraffe", "horses", "kite", "person", "scream",
    ]
    .map(|p| PathBuf::from(format!("/usr/share/darknet/data/{p}.jpg")));
    let faces = (1..=6).map(|i| repo(&format!("third_party/face-api/demo/sample{i}.jpg")));
    darknet
        .into_iter()
        .chain(faces)
        .filter(|p| p.is_file())
        .collect()
}

fn model_path(name: &str) -> PathBuf {
    repo(&format!("third_party/human-models/models/{name}.json"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--write", dir] => write(Path::new(dir)),
        ["--compare", dir] => compare(Path::new(dir)),
        ["--speed"] => speed(),
        ["--onnx", dir] => {
            std::fs::create_dir_all(dir)?;
            for name in MODELS {
                let t = convnet_graph::tfjs::translate(&model_path(name), &Default::default())?;
                std::fs::write(Path::new(dir).join(format!("{name}.onnx")), t.onnx)?;
            }
            Ok(())
        }
        _ => bail!("usage: tfjs_inputs --write DIR | --compare DIR | --speed | --onnx DIR"),
    }
}

/// The network input `[3, h, w]` convnet makes of `picture` for the model at `path`.
fn input(
    path: &Path,
    model: &convnet_graph::OnnxModel,
    picture: &image::DynamicImage,
) -> Result<Vec<f32>> {
    let [_, h, w] = onnx::image_input(model, path)?;
    let (h, w) = (h.context("free height")?, w.context("free width")?);
    Ok(onnx::graph_model_recipe(path, [h, w]).apply(picture)?)
}

fn write(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for name in MODELS {
        let path = model_path(name);
        let model = onnx::open(&path)?;
        for photo in photos() {
            let picture = convnet_data::folder::decode_image(&photo)?;
            let x = input(&path, &model, &picture)?;
            let stem = photo
                .file_stem()
                .context("a photo without a name")?
                .to_string_lossy();
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{stem}.{name}.f32")), bytes)?;
            let meta = serde_json::json!({ "size": [picture.width(), picture.height()] });
            std::fs::write(dir.join(format!("{stem}.{name}.json")), meta.to_string())?;
        }
        println!("{name}: {} inputs", photos().len());
    }
    Ok(())
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The synthetic input of the reference (and of `crates/graph/tests/tfjs_models.rs`).
fn synthetic(h: usize, w: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; 3 * h * w];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let a = 0.05 * x as f64 * (c as f64 + 1.0) + 0.07 * y as f64 + 0.3 * c as f64;
                out[(c * h + y) * w + x] = (127.5 + 127.5 * a.sin()).floor() as f32 * scale;
            }
        }
    }
    out
}

/// `data` (channels first where the model gives rank-4 outputs so) in TF's NHWC order.
fn to_tf_order(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let &[n, c, h, w] = shape else {
        return data.to_vec();
    };
    let mut out = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out[((b * h + y) * w + x) * c + ch] = data[((b * c + ch) * h + y) * w + x];
                }
            }
        }
    }
    out
}

/// The largest distance between a box of `js` and the nearest box of the same class and
/// score (within 1e-4) in `ours`; `None` when one has no partner.
fn box_distance(ours: &[Detection], js: &[serde_json::Value]) -> Option<f32> {
    let mut worst = 0.0f32;
    for b in js {
        let class = b["class"].as_u64()? as usize;
        let score = b["score"].as_f64()? as f32;
        let v: Vec<f32> = b["box"]
            .as_array()?
            .iter()
            .map(|v| v.as_f64().unwrap_or(0.0) as f32)
            .collect();
        let want = [v[0], v[1], v[0] + v[2], v[1] + v[3]];
        let best = ours
            .iter()
            .filter(|d| d.class == class && (d.score - score).abs() < 1e-4)
            .map(|d| {
                let got = [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2];
                got.iter()
                    .zip(want)
                    .map(|(g, w)| (g - w).abs())
                    .fold(0.0, f32::max)
            })
            .fold(f32::INFINITY, f32::min);
        worst = worst.max(best);
    }
    worst.is_finite().then_some(worst)
}

fn compare(out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(out.join("reference.json"))?;
    let reference: serde_json::Value = serde_json::from_str(&text)?;
    let inputs = out.parent().unwrap_or(Path::new(".")).join("inputs");
    let device = Device::default();
    let mut models: HashMap<String, convnet_graph::OnnxModel> = HashMap::new();
    let mut detectors: HashMap<String, GraphDetector> = HashMap::new();
    println!(
        "| input | model | outputs | max \\|diff\\| / max \\|tfjs\\| | boxes (tfjs / convnet) | max box corner diff (px) |"
    );
    println!("|---|---|---|---|---|---|");
    for run in reference["runs"].as_array().context("no runs")? {
        let (id, name) = (
            run["input"].as_str().unwrap_or(""),
            run["model"].as_str().unwrap_or(""),
        );
        let path = model_path(name);
        if !models.contains_key(name) {
            models.insert(name.to_string(), onnx::open(&path)?);
        }
        let model = &models[name];
        let dims: Vec<usize> = model.inputs()[0]
            .shape
            .iter()
            .map(|d| d.unwrap_or(1))
            .collect();
        let x = if id == "synthetic" {
            let scale = if name == "centernet" {
                1.0
            } else {
                1.0 / 255.0
            };
            synthetic(dims[2], dims[3], scale)
        } else {
            read_f32(&inputs.join(format!("{id}.{name}.f32")))?
        };
        let outs = model.run(&[TensorData::new(x.clone(), dims.clone())], &device)?;
        let mut worst = 0.0f64;
        let names: Vec<String> = model.outputs().iter().map(|o| o.name.clone()).collect();
        for (o, data) in names.iter().zip(&outs) {
            let file = format!(
                "{id}.{name}.{}.f32",
                o.trim_end_matches(":0").replace(['/', ':'], "_")
            );
            let want = read_f32(&out.join(file))?;
            let got = to_tf_order(
                &data
                    .clone()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?,
                data.shape(),
            );
            let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
            let diff = got
                .iter()
                .zip(&want)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) as f64;
            worst = worst.max(diff / max.max(1e-12));
        }
        let boxes = match run["boxes"].as_array() {
            Some(js) => {
                if !detectors.contains_key(name) {
                    detectors.insert(name.to_string(), GraphDetector::open(&path, &device)?);
                }
                let size = run["size"].as_array().context("no size")?;
                let size = (
                    size[0].as_u64().unwrap_or(1) as u32,
                    size[1].as_u64().unwrap_or(1) as u32,
                );
                let ours = detectors[name].candidates(x, size, DEFAULT_SCORE, &device)?;
                let d =
                    box_distance(&ours, js).map_or("unmatched".to_string(), |d| format!("{d:.4}"));
                format!("{} / {} | {d}", js.len(), ours.len())
            }
            None => "- | -".into(),
        };
        println!(
            "| {id} | {name} | {} | {worst:.2e} | {boxes} |",
            names.len()
        );
    }
    Ok(())
}

fn speed() -> Result<()> {
    let device = Device::default();
    for name in ["centernet", "nanodet"] {
        let path = model_path(name);
        let model = onnx::open(&path)?;
        let dims: Vec<usize> = model.inputs()[0]
            .shape
            .iter()
            .map(|d| d.unwrap_or(1))
            .collect();
        let x = TensorData::new(vec![0.5f32; dims.iter().product()], dims.clone());
        model.run(std::slice::from_ref(&x), &device)?;
        let runs = 10;
        let t = Instant::now();
        for _ in 0..runs {
            model.run(std::slice::from_ref(&x), &device)?;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        println!(
            "{name} {dims:?}: {ms:.1} ms per image, {:.2} images/s",
            1000.0 / ms
        );
    }
    Ok(())
}
