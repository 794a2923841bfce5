//! `convnet style`: neural style transfer (Gatys et al.) with a pretrained network's features.
//!
//! The content image is scaled so that its longer side is `--size` (aspect kept); the output
//! has that size. The style image is cut to the content's aspect ratio (the largest centred
//! region) and scaled to the same size, so the Gram matrices of both are taken over maps of
//! equal size, as the course's cost normalisation assumes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::folder::decode_image;
use convnet_data::{Interpolation, Preprocess, Resize};
use convnet_layers::limits::Bytes;
use convnet_style::{
    Costs, FeatureNet, LayerChoice, Normalization, Optimizer, StyleConfig, StyleTransfer,
};
use convnet_vision::chart::save_rgb_png;
use image::{Rgb, RgbImage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::pretrained;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerArg {
    /// Adam on the pixels (`--lr`, the course's 0.01).
    Adam,
    /// L-BFGS (Gatys et al.'s choice): fewer, costlier iterations, each with a line search.
    Lbfgs,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The picture whose content (objects, layout) the result keeps.
    #[arg(long, value_name = "C.jpg")]
    content: PathBuf,

    /// The picture whose style (colours, textures, strokes) the result takes.
    #[arg(long, value_name = "S.jpg")]
    style: PathBuf,

    /// Where to write the generated picture (PNG).
    #[arg(long, short, value_name = "OUT.png")]
    output: PathBuf,

    /// Longer side of the generated picture in pixels; the content image is scaled to it.
    #[arg(long, default_value_t = 400, value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: usize,

    #[arg(long, default_value_t = 300)]
    iterations: usize,

    /// Weight α of the content cost.
    #[arg(long, default_value_t = 10.0)]
    alpha: f64,

    /// Weight β of the style cost.
    #[arg(long, default_value_t = 40.0)]
    beta: f64,

    /// Weight of a total-variation term that smooths pixel noise (0: none).
    #[arg(long, default_value_t = 0.0)]
    tv_weight: f64,

    /// Layer whose activations carry the content (course names like `conv4_2`, or the
    /// network's own, e.g. `features.22`).
    #[arg(long, default_value = "conv4_2")]
    content_layer: String,

    /// Style layers, comma-separated, each optionally with its weight λ (`conv1_1:0.5`);
    /// unweighted layers share what the weighted ones leave of 1 equally.
    #[arg(long, default_value = "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1")]
    style_layers: String,

    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    optimizer: OptimizerArg,

    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,

    /// Curvature pairs L-BFGS keeps.
    #[arg(long, default_value_t = 10)]
    history: usize,

    /// The feature network: a built-in model (VGG-19 as in the paper) or a spec file.
    #[arg(long, default_value = "vgg19")]
    model: String,

    /// Its pretrained weights: torchvision's `vgg19` state_dict (`.pth` or `.safetensors`), or
    /// any file / convnet checkpoint matching `--model` by name.
    #[arg(long, required_unless_present = "untrained")]
    weights: Option<PathBuf>,

    /// Use the network's random initialisation instead of weights (benchmarks and experiments:
    /// random features transfer colours and fine texture, little of an artist's strokes).
    #[arg(long, conflicts_with = "weights")]
    untrained: bool,

    /// How pixels are normalised for the network: `imagenet`, `caffe` or `tf` (default: the
    /// recipe of the model's published weights).
    #[arg(long)]
    preprocess: Option<String>,

    /// Half-width of the uniform noise added to the content image to start from.
    #[arg(long, default_value_t = 0.25)]
    noise: f64,

    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Also write the picture every K iterations, as OUT-0050.png ... next to OUT.
    #[arg(long, value_name = "K")]
    save_every: Option<usize>,

    /// Print a JSON summary (costs per iteration, timing) on stdout instead of progress.
    #[arg(long)]
    json: bool,
}

/// `conv1_1,conv2_1:0.5` → layers with λ; the unweighted share the rest equally.
fn style_layers(text: &str) -> Result<Vec<(String, f64)>> {
    let mut layers = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once(':') {
            Some((name, w)) => {
                let w: f64 = w
                    .trim()
                    .parse()
                    .with_context(|| format!("'{part}': the weight after ':' must be a number"))?;
                if !w.is_finite() || w < 0.0 {
                    bail!("'{part}': a style layer's weight must be a non-negative number");
                }
                layers.push((name.trim().to_string(), Some(w)));
            }
            None => layers.push((part.to_string(), None)),
        }
    }
    if layers.is_empty() {
        bail!("--style-layers names no layer");
    }
    let given: f64 = layers.iter().filter_map(|(_, w)| *w).sum();
    let unweighted = layers.iter().filter(|(_, w)| w.is_none()).count();
    let share = if unweighted > 0 {
        (1.0 - given).max(0.0) / unweighted as f64
    } else {
        0.0
    };
    Ok(layers
        .into_iter()
        .map(|(n, w)| (n, w.unwrap_or(share)))
        .collect())
}

/// Values kept per pixel of the working size: VGG's activations down to conv5 (about 300 per
/// pixel), their gradients and the optimiser's copies, about three times that.
const VALUES_PER_PIXEL: usize = 900;

/// Refuses a working size whose activations would not fit in memory, naming `--size`.
fn check_memory(size: [usize; 2], flag: usize) -> Result<()> {
    let [h, w] = size;
    Bytes::f32s(&[h, w, VALUES_PER_PIXEL])
        .check(&format!("style transfer at {w}x{h} (--size {flag})"))?;
    Ok(())
}

/// `[height, width]` with the longer side `size` and `w`x`h`'s aspect ratio.
fn working_size(w: u32, h: u32, size: usize) -> [usize; 2] {
    let (w, h) = (w.max(1) as f64, h.max(1) as f64);
    let scale = size as f64 / w.max(h);
    [
        ((h * scale).round() as usize).max(1),
        ((w * scale).round() as usize).max(1),
    ]
}

/// A picture as `[1, 3, H, W]` in [0, 1], cut and scaled by `resize`.
fn picture(path: &Path, size: [usize; 2], resize: Resize, device: &Device) -> Result<Tensor<4>> {
    let image = decode_image(path)?;
    let p = Preprocess {
        name: "0-1".into(),
        size,
        resize,
        interpolation: Interpolation::Bicubic,
        scale: 1.0 / 255.0,
        mean: [0.0; 3],
        std: [1.0; 3],
        bgr: false,
    };
    let values = p.apply(&image)?;
    Ok(Tensor::from_data(
        TensorData::new(values, [1, 3, size[0], size[1]]),
        device,
    ))
}

fn save(path: &Path, image: &Tensor<4>) -> Result<()> {
    let [_, _, h, w] = image.dims();
    let v = image
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()?;
    let plane = h * w;
    let level = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        Rgb([level(v[i]), level(v[plane + i]), level(v[2 * plane + i])])
    });
    save_rgb_png(path, &img).with_context(|| format!("cannot write {}", path.display()))
}

/// `OUT-0050.png` beside `OUT.png`.
fn snapshot_path(output: &Path, iteration: usize) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or("style".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}-{iteration:04}.png"))
}

fn bar(len: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr()).with_style(
        ProgressStyle::with_template("iteration {pos}/{len} [{bar:25}] {msg} {per_sec} ETA {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    )
}

fn describe(c: &Costs) -> String {
    format!(
        "J {:.4e} (J_content {:.4e}, J_style {:.4e})",
        c.total, c.content, c.style
    )
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    if args.size < 8 {
        bail!("--size must be at least 8 pixels");
    }
    if args.output.extension().is_none_or(|e| e != "png") {
        bail!(
            "{}: the output is written as PNG; name it .png",
            args.output.display()
        );
    }
    if args.save_every == Some(0) {
        bail!("--save-every must be at least 1");
    }
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let probe = decode_image(&args.content)
        .with_context(|| format!("cannot read the content image {}", args.content.display()))?;
    let size = working_size(probe.width(), probe.height(), args.size);
    drop(probe);
    check_memory(size, args.size)?;
    let content = picture(&args.content, size, Resize::Stretch, device)?;
    let style = picture(&args.style, size, Resize::CropToAspect, device)
        .with_context(|| format!("cannot read the style image {}", args.style.display()))?;

    let spec = pretrained::spec_for(&args.model, None, 1000)?;
    let normalization = Normalization::from_preprocess(&pretrained::preprocess_for(
        &args.model,
        args.preprocess.as_deref(),
        None,
    )?);
    let weights = match (&args.weights, args.untrained) {
        (Some(path), _) => Some(pretrained::read_weights(path, device)?),
        (None, true) => None,
        (None, false) => bail!("--weights FILE is needed (or --untrained)"),
    };
    let layers = LayerChoice {
        content: args.content_layer.clone(),
        style: style_layers(&args.style_layers)?,
    };
    let net = FeatureNet::new(
        &spec,
        &layers,
        size,
        normalization,
        weights.as_ref(),
        device,
    )
    .with_context(|| match &args.weights {
        Some(w) => format!("cannot use {} as {}'s weights", w.display(), args.model),
        None => format!("cannot build {}", args.model),
    })?;
    let config = StyleConfig {
        alpha: args.alpha,
        beta: args.beta,
        tv_weight: args.tv_weight,
        optimizer: match args.optimizer {
            OptimizerArg::Adam => Optimizer::Adam { lr: args.lr },
            OptimizerArg::Lbfgs => Optimizer::Lbfgs {
                history: args.history,
            },
        },
        noise: args.noise,
        seed: args.seed,
    };
    let mut run = StyleTransfer::new(&net, content, style, config)?;

    let quiet = quiet || args.json;
    let progress = bar(args.iterations, quiet);
    let log_every = (args.iterations / 10).max(1);
    let started = Instant::now();
    let mut history = Vec::with_capacity(args.iterations);
    for i in 1..=args.iterations {
        let costs = run.step()?;
        progress.set_position(i as u64);
        progress.set_message(describe(&costs));
        if !quiet && (i % log_every == 0 || i == 1) {
            progress.suspend(|| eprintln!("iteration {i}: {}", describe(&costs)));
        }
        history.push(costs);
        if let Some(k) = args.save_every
            && i % k == 0
            && i < args.iterations
        {
            save(&snapshot_path(&args.output, i), &run.image())?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let image = run.image();
    let (last, _) = run.evaluate(&image)?;
    save(&args.output, &image)?;
    let per_second = args.iterations as f64 / seconds.max(1e-9);
    if args.json {
        let out = json!({
            "output": args.output,
            "width": size[1],
            "height": size[0],
            "model": args.model,
            "pretrained": weights.is_some(),
            "optimizer": format!("{:?}", args.optimizer).to_lowercase(),
            "iterations": args.iterations,
            "evaluations": run.evaluations(),
            "seconds": seconds,
            "iterations_per_second": per_second,
            "final": last,
            "history": history,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(first) = history.first() {
            eprintln!("start: {}", describe(first));
        }
        eprintln!(
            "end:   {} after {} iterations ({:.2} it/s)",
            describe(&last),
            args.iterations,
            per_second
        );
        println!(
            "{}x{} picture written to {}",
            size[1],
            size[0],
            args.output.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_layer_weights_share_the_rest() {
        let l = style_layers("conv1_1:0.5, conv2_1, conv3_1").unwrap();
        assert_eq!(
            l,
            vec![
                ("conv1_1".to_string(), 0.5),
                ("conv2_1".to_string(), 0.25),
                ("conv3_1".to_string(), 0.25)
            ]
        );
        assert!(style_layers("conv1_1:x").is_err());
        assert!(style_layers(" , ").is_err());
    }

    #[test]
    fn the_longer_side_becomes_size() {
        assert_eq!(working_size(800, 600, 400), [300, 400]);
        assert_eq!(working_size(300, 600, 400), [400, 200]);
    }
}
