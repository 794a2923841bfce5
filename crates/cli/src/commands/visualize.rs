//! Seeing what conv layers learn: `convnet visualize filters|patches|activations`. The model
//! and its weights load as for `convnet predict --model --weights` (strictly: every tensor must
//! fit), images go through the weights' preprocessing (or a checkpoint's normalisation), and
//! the pictures are drawn by `convnet_visualize`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::{Normalization, Preprocess, folder};
use convnet_layers::{FeatureShape, LayerInfo, Mode, ModelSpec, Sequential};
use convnet_train::Checkpoint;
use convnet_vision::Plane;
use convnet_vision::chart::save_rgb_png;
use convnet_vision::image_io::check_png_path;
use convnet_visualize::{
    FilterOptions, TopPatches, convolutions, cut, feature_maps, filter_picture, patch_grid,
    receptive_field, tile_for,
};
use image::{Rgb, RgbImage};
use serde_json::json;

use super::pretrained;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  convnet visualize filters --model alexnet --weights alexnet.pth -o filters.png
  convnet visualize patches --model vgg16 --weights vgg16.pth --layer features.28 --images photos/ -o top9.png
  convnet visualize activations --model resnet18 --weights r18.pth cat.jpg --layer layer1 -o maps.png")]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// A convolution's kernels as tiles: colour images for a layer that reads RGB, else one
    /// row of greyscale tiles per filter, one column per input channel. Each filter is
    /// min-max scaled on its own (all its channels together).
    Filters(FilterArgs),
    /// For units (channels) of a layer, the image patches that excite them most: each image's
    /// strongest position, cut out of the preprocessed image along the unit's receptive field
    /// (grey where it reaches into the padding). With fewer images than --top, further
    /// positions of the same images come in if they overlap the chosen ones by IoU < 0.5.
    /// --json gives each patch's image, score, map position and box [x0, y0, x1, y1] in the
    /// preprocessed image.
    Patches(PatchArgs),
    /// A layer's feature maps for one image, each map min-max scaled on its own.
    Activations(ActivationArgs),
}

/// What every view needs: a model with weights, a layer and where the picture goes.
#[derive(clap::Args, Debug)]
struct Common {
    /// A built-in model (see `convnet models`) or a model spec file (`.toml`).
    #[arg(long)]
    model: String,

    /// Weights: a PyTorch state_dict (`.pth`/`.pt`), a `.safetensors` file or a convnet
    /// checkpoint (a run directory), matched to the model's layers by name; every tensor must
    /// fit.
    #[arg(long)]
    weights: PathBuf,

    /// The layer, as `convnet summary` names it (default: the first convolution).
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,

    /// Where to write the picture (PNG).
    #[arg(long, short, value_name = "GRID.png")]
    output: PathBuf,

    /// Preprocessing for pretrained RGB weights: `imagenet`, `caffe` or `tf` (default: the
    /// recipe the model's published weights were trained with). A checkpoint brings its own.
    #[arg(long, value_name = "PRESET")]
    preprocess: Option<String>,

    /// Input side for pretrained weights (default: the published weights').
    #[arg(long, value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Classes of a built-in model's classifier (default: what the weights file has).
    #[arg(long)]
    num_classes: Option<usize>,

    /// Print what was written as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct FilterArgs {
    #[command(flatten)]
    common: Common,

    /// At most this many filters (the first ones).
    #[arg(long, default_value_t = 64)]
    max: usize,

    /// Greyscale tiles: at most this many input channels (the first ones).
    #[arg(long, default_value_t = 16)]
    max_channels: usize,

    /// Kernels are enlarged by a whole factor to at least this many pixels a side.
    #[arg(long, default_value_t = 32, value_name = "PX", value_parser = super::args::tile, allow_negative_numbers = true)]
    tile: u32,
}

#[derive(clap::Args, Debug)]
struct PatchArgs {
    #[command(flatten)]
    common: Common,

    /// A folder of PNG or JPEG images (the files directly in it).
    #[arg(long, value_name = "DIR")]
    images: PathBuf,

    /// The units (channels) to show, e.g. 0,5,12 (default: the first 8).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    units: Vec<usize>,

    /// Patches per unit.
    #[arg(long, default_value_t = 9)]
    top: usize,

    /// Longer side of a patch tile in pixels (patches are resized to it).
    #[arg(long, default_value_t = 64, value_name = "PX", value_parser = super::args::tile, allow_negative_numbers = true)]
    tile: u32,
}

#[derive(clap::Args, Debug)]
struct ActivationArgs {
    #[command(flatten)]
    common: Common,

    /// The image (PNG or JPEG).
    image: PathBuf,

    /// At most this many maps (the first channels).
    #[arg(long, default_value_t = 64)]
    max: usize,

    /// Maps are enlarged by a whole factor to at least this many pixels a side.
    #[arg(long, default_value_t = 48, value_name = "PX", value_parser = super::args::tile, allow_negative_numbers = true)]
    tile: u32,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    match args.what {
        What::Filters(a) => filters(a, device),
        What::Patches(a) => patches(a, device),
        What::Activations(a) => activations(a, device),
    }
}

/// How an image file becomes the network's input, and the picture the network sees.
enum Input {
    /// Pretrained weights' recipe (resize, crop, scaling, channel order).
    Recipe(Preprocess),
    /// The course's loading (scale to cover, centre crop, 1 or 3 channels) and a checkpoint's
    /// normalisation (or only the 0..1 scaling).
    Pixels {
        shape: [usize; 3],
        normalization: Normalization,
    },
}

impl Input {
    fn shape(&self) -> [usize; 3] {
        match self {
            Input::Recipe(p) => [3, p.size[0], p.size[1]],
            Input::Pixels { shape, .. } => *shape,
        }
    }

    fn is_bgr(&self) -> bool {
        matches!(self, Input::Recipe(p) if p.bgr)
    }

    /// The network input `[C, H, W]` for `path`, and the picture it shows.
    fn load(&self, path: &Path) -> Result<(Vec<f32>, RgbImage)> {
        let context = || format!("cannot use {}", path.display());
        match self {
            Input::Recipe(p) => {
                let img = folder::decode_image(path).with_context(context)?;
                let values = p.apply(&img).with_context(context)?;
                let picture = recipe_picture(p, &values);
                Ok((values, picture))
            }
            Input::Pixels {
                shape,
                normalization,
            } => {
                let pixels = folder::load_image_file(path, *shape).with_context(context)?;
                let mut values = Vec::with_capacity(pixels.len());
                normalization.extend_normalised(&pixels, &mut values);
                let [c, h, w] = *shape;
                let plane = h * w;
                let picture = RgbImage::from_fn(w as u32, h as u32, |x, y| {
                    let i = y as usize * w + x as usize;
                    let at = |ch: usize| pixels[ch.min(c - 1) * plane + i];
                    Rgb([at(0), at(1), at(2)])
                });
                Ok((values, picture))
            }
        }
    }
}

/// The picture behind a recipe's input: its scaling undone, channels back in RGB order.
fn recipe_picture(p: &Preprocess, values: &[f32]) -> RgbImage {
    let [h, w] = p.size;
    let plane = h * w;
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let mut rgb = [0u8; 3];
        for c in 0..3 {
            let pixel = (values[c * plane + i] * p.std[c] + p.mean[c]) / p.scale;
            let source = if p.bgr { 2 - c } else { c };
            rgb[source] = pixel.round().clamp(0.0, 255.0) as u8;
        }
        Rgb(rgb)
    })
}

/// A model with its weights loaded strictly, and how to feed it images.
struct Loaded {
    spec: ModelSpec,
    model: Sequential,
    input: Input,
}

fn load_model(c: &Common, device: &Device) -> Result<Loaded> {
    let input = if Checkpoint::is_checkpoint(&c.weights) {
        if c.preprocess.is_some() || c.size.is_some() {
            bail!(
                "--preprocess and --size are for pretrained weights; the checkpoint {} brings its own input size and normalisation",
                c.weights.display()
            );
        }
        let path = Checkpoint::resolve(&c.weights)?;
        let ckpt = Checkpoint::load(&path)?;
        let shape = image_shape(&c.model, &ckpt.spec(&path)?.input)?;
        Input::Pixels {
            shape,
            normalization: (&ckpt.meta.normalization).into(),
        }
    } else {
        let published = pretrained::spec_for(&c.model, None, 1000)?.input;
        match image_shape(&c.model, &published)? {
            [3, ..] => Input::Recipe(pretrained::preprocess_for(
                &c.model,
                c.preprocess.as_deref(),
                c.size,
            )?),
            [channels, h, w] => {
                if c.preprocess.is_some() {
                    bail!(
                        "--preprocess is for RGB models; {} takes {channels}-channel images (scaled to 0..1)",
                        c.model
                    );
                }
                let (h, w) = c.size.map_or((h, w), |s| (s, s));
                Input::Pixels {
                    shape: [channels, h, w],
                    normalization: Normalization::identity(channels),
                }
            }
        }
    };
    let shape = input.shape();
    if let Input::Pixels { normalization, .. } = &input
        && normalization.channels() != shape[0]
    {
        bail!(
            "the checkpoint normalises {} channels but the model takes {}",
            normalization.channels(),
            shape[0]
        );
    }
    let dict = pretrained::read_weights(&c.weights, device)?;
    let mut spec = pretrained::spec_for(&c.model, Some(&shape), 1000)?;
    if !pretrained::is_spec_file(&c.model) {
        let classes = match c.num_classes {
            Some(n) => n,
            None => pretrained::classes_in(&spec, &dict, device)?.unwrap_or(1000),
        };
        spec = pretrained::spec_for(&c.model, Some(&shape), classes)?;
    }
    let (model, _) = pretrained::load(&spec, &dict, false, &c.weights, device)?;
    Ok(Loaded { spec, model, input })
}

fn image_shape(model: &str, input: &[usize]) -> Result<[usize; 3]> {
    match *input {
        [c, h, w] => Ok([c, h, w]),
        _ => bail!(
            "{model} takes inputs of shape {input:?}; `convnet visualize` works on image models [channels, height, width]"
        ),
    }
}

/// The top-level layer `--layer` names (default: the one holding the first convolution).
fn layer_index(model: &Sequential, layer: Option<&str>) -> Result<(usize, String)> {
    let names = model.layer_names();
    let index = match layer {
        Some(name) => model.layer_index(name).ok_or_else(|| {
            anyhow!(
                "{} has no layer named '{name}'; its layers: {}",
                model.name(),
                names.join(", ")
            )
        })?,
        None => convolutions(model).first().map(|c| c.top).ok_or_else(|| {
            anyhow!(
                "{} has no 2D convolution; pick a layer with --layer",
                model.name()
            )
        })?,
    };
    Ok((
        index,
        layer.map_or_else(|| names[index].clone(), String::from),
    ))
}

/// `[C, H, W]` of the maps after top-level layer `index`.
fn output_shape(model: &Sequential, index: usize) -> Result<FeatureShape> {
    let mut shape = model.input_shape().clone();
    for (name, layer) in model
        .layer_names()
        .iter()
        .zip(&model.stack.layers)
        .take(index + 1)
    {
        shape = layer
            .output_shape(&shape)
            .map_err(|e| anyhow!("layer '{name}': {e}"))?;
    }
    Ok(shape)
}

/// Runs `inputs` (each `[C, H, W]`) through the model up to `layer`: `[N, C, H, W]` values.
fn feature_maps_of(
    loaded: &Loaded,
    layer: &str,
    inputs: Vec<f32>,
    device: &Device,
) -> Result<(Vec<f32>, [usize; 4])> {
    let [c, h, w] = loaded.input.shape();
    let n = inputs.len() / (c * h * w);
    let x = Tensor::<4>::from_data(TensorData::new(inputs, [n, c, h, w]), device);
    let features = loaded
        .model
        .forward_features(x, &[layer], Mode::Eval)?
        .remove(0);
    let dims = features.dims();
    let maps = features.into_map2d().map_err(|_| {
        anyhow!("layer '{layer}' outputs {dims:?}, not feature maps [N, C, H, W]; pick a convolution or pooling layer")
    })?;
    let dims = maps.dims();
    let values = maps.into_data().convert::<f32>().try_into_vec::<f32>()?;
    Ok((values, dims))
}

fn filters(args: FilterArgs, device: &Device) -> Result<()> {
    let c = &args.common;
    check_png_path(&c.output)?;
    if args.max == 0 || args.max_channels == 0 || args.tile == 0 {
        bail!("--max, --max-channels and --tile must be at least 1");
    }
    let loaded = load_model(c, device)?;
    let model = &loaded.model;
    let convs = convolutions(model);
    let list = || {
        convs
            .iter()
            .map(|conv| conv.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let conv = match c.layer.as_deref() {
        None => convs
            .first()
            .ok_or_else(|| anyhow!("{} has no 2D convolution to draw", model.name()))?,
        Some(name) => match convs.iter().find(|conv| conv.path == name) {
            Some(conv) => conv,
            None => match model.layer_index(name) {
                Some(i) => bail!(
                    "'{name}' is a {} layer, not a convolution: `visualize filters` draws convolution kernels; the convolutions are: {}",
                    model.stack.layers[i].kind(),
                    list()
                ),
                None => bail!(
                    "{} has no layer named '{name}'; its layers: {}; its convolutions: {}",
                    model.name(),
                    model.layer_names().join(", "),
                    list()
                ),
            },
        },
    };
    let kernels = conv.kernels()?;
    let options = FilterOptions {
        max_filters: args.max,
        max_channels: args.max_channels,
        min_tile: args.tile,
        bgr: loaded.input.is_bgr(),
        // A grouped convolution with 3 channels per group does not read an RGB image.
        colour: conv.conv.groups == 1,
    };
    let picture = filter_picture(&kernels, &conv.path, &options)?;
    save_rgb_png(&c.output, &picture.image)?;
    let [out, channels, kh, kw] = kernels.shape;
    if c.json {
        let v = json!({
            "view": "filters",
            "output": c.output,
            "model": loaded.spec.name,
            "layer": conv.path,
            "kind": conv.kind(),
            "kernel": [kh, kw],
            "filters": out,
            "channels": channels,
            "shown": {"filters": picture.filters, "channels": picture.channels},
            "mode": if picture.rgb { "rgb" } else { "grey" },
            "normalisation": "min-max per filter",
            "tile": picture.tile,
            "caption": picture.caption,
            "size": [picture.image.width(), picture.image.height()],
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} of {out} filters {kh}x{kw}x{channels} ({}) written to {}",
            conv.path,
            picture.filters,
            if picture.rgb { "colour" } else { "greyscale" },
            c.output.display()
        );
    }
    Ok(())
}

/// The PNG and JPEG files directly in `dir`, sorted, hidden ones left out.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read the folder {}", dir.display()))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let image = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["png", "jpg", "jpeg"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        });
        if image && !hidden && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!("{} holds no .png, .jpg or .jpeg images", dir.display());
    }
    files.sort();
    Ok(files)
}

/// Images per forward pass.
const BATCH: usize = 8;
/// What a patch shows where its window reaches past the image (the network's padding).
const PADDING_GREY: Rgb<u8> = Rgb([128, 128, 128]);

fn patches(args: PatchArgs, device: &Device) -> Result<()> {
    let c = &args.common;
    check_png_path(&c.output)?;
    if args.top == 0 || args.tile == 0 {
        bail!("--top and --tile must be at least 1");
    }
    let files = image_files(&args.images)?;
    let loaded = load_model(c, device)?;
    let (index, layer) = layer_index(&loaded.model, c.layer.as_deref())?;
    let field = receptive_field(&loaded.spec, index)
        .with_context(|| format!("the receptive field of '{layer}'"))?;
    let channels = output_shape(&loaded.model, index)?.channels();
    let mut units: Vec<usize> = Vec::new();
    for &u in &args.units {
        if u >= channels {
            bail!(
                "--units {u}: layer '{layer}' has {channels} channels (units 0 to {})",
                channels - 1
            );
        }
        if !units.contains(&u) {
            units.push(u);
        }
    }
    if units.is_empty() {
        units = (0..channels.min(8)).collect();
    }
    let mut tops: Vec<TopPatches> = units
        .iter()
        .map(|_| TopPatches::new(args.top, field))
        .collect();
    for (b, chunk) in files.chunks(BATCH).enumerate() {
        let mut inputs = Vec::new();
        for file in chunk {
            inputs.extend(loaded.input.load(file)?.0);
        }
        let (values, [n, ch, h, w]) = feature_maps_of(&loaded, &layer, inputs, device)?;
        if [h, w] != field.output {
            bail!(
                "layer '{layer}' outputs {h}x{w} maps but its receptive field was worked out for {}x{}",
                field.output[0],
                field.output[1]
            );
        }
        for i in 0..n {
            for (top, &u) in tops.iter_mut().zip(&units) {
                let start = (i * ch + u) * h * w;
                let map = Plane {
                    height: h,
                    width: w,
                    values: values[start..start + h * w].to_vec(),
                };
                top.add(b * BATCH + i, &map);
            }
        }
    }
    let picks: Vec<_> = tops.into_iter().map(TopPatches::finish).collect();
    let mut pictures: HashMap<usize, RgbImage> = HashMap::new();
    for &image in picks.iter().flatten().map(|p| &p.image) {
        if let Entry::Vacant(slot) = pictures.entry(image) {
            slot.insert(loaded.input.load(&files[image])?.1);
        }
    }
    let rows: Vec<(usize, Vec<RgbImage>)> = units
        .iter()
        .zip(&picks)
        .map(|(&u, unit_picks)| {
            let cuts = unit_picks
                .iter()
                .map(|p| cut(&pictures[&p.image], p.window, PADDING_GREY))
                .collect();
            (u, cuts)
        })
        .collect();
    let tile = tile_for(&field, args.tile);
    let (fr, fc) = (field.rows, field.cols);
    let caption = format!(
        "{layer}: top {} of {} images, receptive field {}x{} every {}x{} px",
        args.top,
        files.len(),
        fr.size,
        fc.size,
        fr.jump,
        fc.jump
    );
    let image = patch_grid(&rows, args.top, tile, &caption);
    save_rgb_png(&c.output, &image)?;
    if c.json {
        let units_json: Vec<_> = units
            .iter()
            .zip(&picks)
            .map(|(&u, unit_picks)| {
                let patches: Vec<_> = unit_picks
                    .iter()
                    .map(|p| {
                        let b = p.window.clipped(field.input);
                        json!({
                            "image": files[p.image],
                            "score": p.score,
                            "position": [p.y, p.x],
                            "box": [b.x0, b.y0, b.x1, b.y1],
                            "window": [p.window.x0, p.window.y0, p.window.x1, p.window.y1],
                        })
                    })
                    .collect();
                json!({"unit": u, "patches": patches})
            })
            .collect();
        let v = json!({
            "view": "patches",
            "output": c.output,
            "model": loaded.spec.name,
            "layer": layer,
            "images": files.len(),
            "input": field.input,
            "receptive_field": {
                "size": [fr.size, fc.size],
                "stride": [fr.jump, fc.jump],
                "start": [fr.start, fc.start],
            },
            "top": args.top,
            "tile": tile,
            "caption": caption,
            "units": units_json,
            "size": [image.width(), image.height()],
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{layer}: receptive field {}x{} px every {}x{}; top {} patches of {} units from {} images written to {}",
            fr.size,
            fc.size,
            fr.jump,
            fc.jump,
            args.top,
            units.len(),
            files.len(),
            c.output.display()
        );
    }
    Ok(())
}

fn activations(args: ActivationArgs, device: &Device) -> Result<()> {
    let c = &args.common;
    check_png_path(&c.output)?;
    if args.max == 0 || args.tile == 0 {
        bail!("--max and --tile must be at least 1");
    }
    let loaded = load_model(c, device)?;
    let (_, layer) = layer_index(&loaded.model, c.layer.as_deref())?;
    let (input, _) = loaded.input.load(&args.image)?;
    let (values, [_, channels, h, w]) = feature_maps_of(&loaded, &layer, input, device)?;
    let shown = channels.min(args.max);
    let maps: Vec<Plane> = values
        .chunks_exact(h * w)
        .take(shown)
        .map(|v| Plane {
            height: h,
            width: w,
            values: v.to_vec(),
        })
        .collect();
    let caption = format!("{layer}: {shown} of {channels} maps {h}x{w}, min-max per map");
    let picture = feature_maps(&maps, &caption, args.tile)?;
    save_rgb_png(&c.output, &picture.image)?;
    if c.json {
        let v = json!({
            "view": "activations",
            "output": c.output,
            "model": loaded.spec.name,
            "layer": layer,
            "image": args.image,
            "channels": channels,
            "maps": shown,
            "map_size": [h, w],
            "tile": picture.tile,
            "normalisation": "min-max per map",
            "caption": caption,
            "size": [picture.image.width(), picture.image.height()],
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{layer}: {shown} of {channels} feature maps {h}x{w} of {} written to {}",
            args.image.display(),
            c.output.display()
        );
    }
    Ok(())
}
