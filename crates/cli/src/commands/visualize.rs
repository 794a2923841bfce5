//! Seeing what conv layers learn: `convnet visualize filters|patches|activations`. The model
//! and its weights load as for `convnet predict --model --weights` (strictly: every tensor must
//! fit), images go through the weights' preprocessing (or a checkpoint's normalisation), and
//! the pictures are drawn and written by `convnet_apps::visualize`; this file parses and
//! prints.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use convnet_apps::visualize::{self, ActivationRequest, FilterRequest, PatchRequest, ViewRequest};
use serde_json::json;

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

impl Common {
    fn request(&self) -> ViewRequest {
        ViewRequest {
            model: self.model.clone(),
            weights: self.weights.clone(),
            layer: self.layer.clone(),
            output: self.output.clone(),
            preprocess: self.preprocess.clone(),
            size: self.size,
            num_classes: self.num_classes,
        }
    }
}

fn filters(args: FilterArgs, device: &Device) -> Result<()> {
    let c = &args.common;
    let request = FilterRequest {
        max: args.max,
        max_channels: args.max_channels,
        tile: args.tile,
    };
    let view = visualize::filters(&c.request(), &request, device)?;
    let picture = &view.picture;
    let [out, channels, kh, kw] = view.shape;
    if c.json {
        let v = json!({
            "view": "filters",
            "output": c.output,
            "model": view.model,
            "layer": view.layer,
            "kind": view.kind,
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
            view.layer,
            picture.filters,
            if picture.rgb { "colour" } else { "greyscale" },
            c.output.display()
        );
    }
    Ok(())
}

fn patches(args: PatchArgs, device: &Device) -> Result<()> {
    let c = &args.common;
    let request = PatchRequest {
        images: args.images,
        units: args.units,
        top: args.top,
        tile: args.tile,
    };
    let view = visualize::patches(&c.request(), &request, device)?;
    let (layer, files, field) = (&view.layer, &view.files, view.field);
    let (fr, fc) = (field.rows, field.cols);
    if c.json {
        let units_json: Vec<_> = view
            .units
            .iter()
            .map(|(u, unit_picks)| {
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
            "model": view.model,
            "layer": layer,
            "images": files.len(),
            "input": field.input,
            "receptive_field": {
                "size": [fr.size, fc.size],
                "stride": [fr.jump, fc.jump],
                "start": [fr.start, fc.start],
            },
            "top": request.top,
            "tile": view.tile,
            "caption": view.caption,
            "units": units_json,
            "size": [view.image.width(), view.image.height()],
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{layer}: receptive field {}x{} px every {}x{}; top {} patches of {} units from {} images written to {}",
            fr.size,
            fc.size,
            fr.jump,
            fc.jump,
            request.top,
            view.units.len(),
            files.len(),
            c.output.display()
        );
    }
    Ok(())
}

fn activations(args: ActivationArgs, device: &Device) -> Result<()> {
    let c = &args.common;
    let request = ActivationRequest {
        image: args.image,
        max: args.max,
        tile: args.tile,
    };
    let view = visualize::activations(&c.request(), &request, device)?;
    let (layer, channels, shown, [h, w]) = (&view.layer, view.channels, view.shown, view.map_size);
    if c.json {
        let v = json!({
            "view": "activations",
            "output": c.output,
            "model": view.model,
            "layer": layer,
            "image": request.image,
            "channels": channels,
            "maps": shown,
            "map_size": [h, w],
            "tile": view.picture.tile,
            "normalisation": "min-max per map",
            "caption": view.caption,
            "size": [view.picture.image.width(), view.picture.image.height()],
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{layer}: {shown} of {channels} feature maps {h}x{w} of {} written to {}",
            request.image.display(),
            c.output.display()
        );
    }
    Ok(())
}
