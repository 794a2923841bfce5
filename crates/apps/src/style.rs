//! Neural style transfer (Gatys et al.) with a pretrained network's features.
//!
//! The content image is scaled so that its longer side is the requested size (aspect kept); the
//! output has that size. The style image is cut to the content's aspect ratio (the largest
//! centred region) and scaled to the same size, so the Gram matrices of both are taken over maps
//! of equal size, as the course's cost normalisation assumes.

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

use crate::models as pretrained;

/// One style transfer, as the command line's flags give it.
#[derive(Clone, Debug)]
pub struct StyleRequest {
    /// The picture whose content (objects, layout) the result keeps.
    pub content: PathBuf,
    /// The picture whose style (colours, textures, strokes) the result takes.
    pub style: PathBuf,
    /// Where the generated picture goes (PNG).
    pub output: PathBuf,
    /// Longer side of the generated picture in pixels.
    pub size: usize,
    pub iterations: usize,
    /// Weight α of the content cost.
    pub alpha: f64,
    /// Weight β of the style cost.
    pub beta: f64,
    /// Weight of a total-variation term that smooths pixel noise (0: none).
    pub tv_weight: f64,
    /// Layer whose activations carry the content.
    pub content_layer: String,
    /// Style layers, comma-separated, each optionally with its weight λ (`conv1_1:0.5`).
    pub style_layers: String,
    pub optimizer: Optimizer,
    /// The feature network: a built-in model or a spec file.
    pub model: String,
    /// Its pretrained weights; none needs `untrained`.
    pub weights: Option<PathBuf>,
    /// Use the network's random initialisation instead of weights.
    pub untrained: bool,
    /// How pixels are normalised for the network (default: the recipe of the model's weights).
    pub preprocess: Option<String>,
    /// Half-width of the uniform noise added to the content image to start from.
    pub noise: f64,
    pub seed: u64,
    /// Also write the picture every K iterations, as OUT-0050.png ... next to OUT.
    pub save_every: Option<usize>,
}

/// Watches the optimisation, one call per iteration (the command line draws a bar).
pub trait StyleObserver {
    fn iteration(&mut self, iteration: usize, costs: &Costs);
}

/// What a finished transfer did.
#[derive(Clone, Debug)]
pub struct StyleReport {
    /// The generated picture's `[height, width]`.
    pub size: [usize; 2],
    /// Whether the network had pretrained weights.
    pub pretrained: bool,
    /// Evaluations of the costs (L-BFGS' line search makes several per iteration).
    pub evaluations: usize,
    /// Time spent iterating.
    pub seconds: f64,
    /// The costs after each iteration.
    pub history: Vec<Costs>,
    /// The costs of the picture written.
    pub last: Costs,
}

impl StyleReport {
    pub fn iterations_per_second(&self) -> f64 {
        self.history.len() as f64 / self.seconds.max(1e-9)
    }
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

/// Paints `request.content` in `request.style`'s style and writes the picture (and the
/// snapshots asked for), telling `observer` each iteration's costs.
pub fn transfer(
    request: &StyleRequest,
    device: &Device,
    observer: &mut dyn StyleObserver,
) -> Result<StyleReport> {
    if request.size < 8 {
        bail!("--size must be at least 8 pixels");
    }
    if request.output.extension().is_none_or(|e| e != "png") {
        bail!(
            "{}: the output is written as PNG; name it .png",
            request.output.display()
        );
    }
    if request.save_every == Some(0) {
        bail!("--save-every must be at least 1");
    }
    if let Some(dir) = request
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let probe = decode_image(&request.content).with_context(|| {
        format!(
            "cannot read the content image {}",
            request.content.display()
        )
    })?;
    let size = working_size(probe.width(), probe.height(), request.size);
    drop(probe);
    check_memory(size, request.size)?;
    let content = picture(&request.content, size, Resize::Stretch, device)?;
    let style = picture(&request.style, size, Resize::CropToAspect, device)
        .with_context(|| format!("cannot read the style image {}", request.style.display()))?;

    let spec = pretrained::spec_for(&request.model, None, 1000)?;
    let normalization = Normalization::from_preprocess(&pretrained::preprocess_for(
        &request.model,
        request.preprocess.as_deref(),
        None,
    )?);
    let weights = match (&request.weights, request.untrained) {
        (Some(path), _) => Some(pretrained::read_weights(path, device)?),
        (None, true) => None,
        (None, false) => bail!("--weights FILE is needed (or --untrained)"),
    };
    let layers = LayerChoice {
        content: request.content_layer.clone(),
        style: style_layers(&request.style_layers)?,
    };
    let net = FeatureNet::new(
        &spec,
        &layers,
        size,
        normalization,
        weights.as_ref(),
        device,
    )
    .with_context(|| match &request.weights {
        Some(w) => format!("cannot use {} as {}'s weights", w.display(), request.model),
        None => format!("cannot build {}", request.model),
    })?;
    let config = StyleConfig {
        alpha: request.alpha,
        beta: request.beta,
        tv_weight: request.tv_weight,
        optimizer: request.optimizer,
        noise: request.noise,
        seed: request.seed,
    };
    let mut run = StyleTransfer::new(&net, content, style, config)?;

    let started = Instant::now();
    let mut history = Vec::with_capacity(request.iterations);
    for i in 1..=request.iterations {
        let costs = run.step()?;
        observer.iteration(i, &costs);
        history.push(costs);
        if let Some(k) = request.save_every
            && i % k == 0
            && i < request.iterations
        {
            save(&snapshot_path(&request.output, i), &run.image())?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let image = run.image();
    let (last, _) = run.evaluate(&image)?;
    save(&request.output, &image)?;
    Ok(StyleReport {
        size,
        pretrained: weights.is_some(),
        evaluations: run.evaluations(),
        seconds,
        history,
        last,
    })
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

    #[test]
    fn snapshots_sit_beside_the_output() {
        assert_eq!(
            snapshot_path(Path::new("out/styled.png"), 50),
            Path::new("out/styled-0050.png")
        );
    }
}
