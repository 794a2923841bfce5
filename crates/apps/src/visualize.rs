//! Seeing what conv layers learn: a convolution's kernels, the image patches that excite a
//! layer's units most, and a layer's feature maps for one image. The model and its weights load
//! as for a prediction with a named model and weights file (strictly: every tensor must fit),
//! images go through the weights' preprocessing (or a checkpoint's normalisation), and the
//! pictures are drawn by `convnet_visualize` and written as PNG files.

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
    Field, FilterOptions, FilterPicture, MapPicture, Pick, TopPatches, convolutions, cut,
    feature_maps, filter_picture, patch_grid, receptive_field, tile_for,
};
use image::{Rgb, RgbImage};

use crate::models as pretrained;

/// What every view needs: a model with weights, a layer and where the picture goes.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    /// A built-in model or a model spec file (`.toml`).
    pub model: String,
    /// A PyTorch state_dict, a `.safetensors` file or a convnet checkpoint.
    pub weights: PathBuf,
    /// The layer, as a summary names it (default: the first convolution).
    pub layer: Option<String>,
    /// Where to write the picture (PNG).
    pub output: PathBuf,
    /// Preprocessing preset for pretrained RGB weights (default: the published recipe).
    pub preprocess: Option<String>,
    /// Input side for pretrained weights (default: the published weights').
    pub size: Option<usize>,
    /// Classes of a built-in model's classifier (default: what the weights file has).
    pub num_classes: Option<usize>,
}

/// A convolution's kernels as tiles.
#[derive(Debug, Clone)]
pub struct FilterRequest {
    /// At most this many filters (the first ones).
    pub max: usize,
    /// Greyscale tiles: at most this many input channels (the first ones).
    pub max_channels: usize,
    /// Kernels are enlarged by a whole factor to at least this many pixels a side.
    pub tile: u32,
}

/// The kernels drawn and written.
pub struct Filters {
    /// The model's name.
    pub model: String,
    /// The convolution's path.
    pub layer: String,
    /// The convolution's kind (as `convnet_visualize` names it).
    pub kind: &'static str,
    /// `[filters, channels, height, width]` of the kernels.
    pub shape: [usize; 4],
    /// The picture written to the output.
    pub picture: FilterPicture,
}

/// The strongest patches of some units of a layer, over a folder of images.
#[derive(Debug, Clone)]
pub struct PatchRequest {
    /// A folder of PNG or JPEG images (the files directly in it).
    pub images: PathBuf,
    /// The units (channels) to show (empty: the first 8).
    pub units: Vec<usize>,
    /// Patches per unit.
    pub top: usize,
    /// Longer side of a patch tile in pixels.
    pub tile: u32,
}

/// The patches picked and the grid written.
pub struct Patches {
    /// The model's name.
    pub model: String,
    /// The layer's name.
    pub layer: String,
    /// The images looked at; a [`Pick`]'s `image` indexes them.
    pub files: Vec<PathBuf>,
    /// The layer's receptive field in the preprocessed image.
    pub field: Field,
    /// Patch tile size in pixels.
    pub tile: [u32; 2],
    /// The grid's caption.
    pub caption: String,
    /// Each unit shown with its strongest patches, best first.
    pub units: Vec<(usize, Vec<Pick>)>,
    /// The picture written to the output.
    pub image: RgbImage,
}

/// A layer's feature maps for one image.
#[derive(Debug, Clone)]
pub struct ActivationRequest {
    /// The image (PNG or JPEG).
    pub image: PathBuf,
    /// At most this many maps (the first channels).
    pub max: usize,
    /// Maps are enlarged by a whole factor to at least this many pixels a side.
    pub tile: u32,
}

/// The maps drawn and written.
pub struct Activations {
    /// The model's name.
    pub model: String,
    /// The layer's name.
    pub layer: String,
    /// Channels the layer outputs.
    pub channels: usize,
    /// Maps drawn (the first channels).
    pub shown: usize,
    /// `[height, width]` of a map.
    pub map_size: [usize; 2],
    /// The picture's caption.
    pub caption: String,
    /// The picture written to the output.
    pub picture: MapPicture,
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

fn load_model(c: &ViewRequest, device: &Device) -> Result<Loaded> {
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

/// Draws the kernels of the convolution `view.layer` names (default: the first) and writes them
/// to `view.output`.
pub fn filters(view: &ViewRequest, args: &FilterRequest, device: &Device) -> Result<Filters> {
    check_png_path(&view.output)?;
    if args.max == 0 || args.max_channels == 0 || args.tile == 0 {
        bail!("--max, --max-channels and --tile must be at least 1");
    }
    let loaded = load_model(view, device)?;
    let model = &loaded.model;
    let convs = convolutions(model);
    let list = || {
        convs
            .iter()
            .map(|conv| conv.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let conv = match view.layer.as_deref() {
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
    save_rgb_png(&view.output, &picture.image)?;
    Ok(Filters {
        model: loaded.spec.name.clone(),
        layer: conv.path.clone(),
        kind: conv.kind(),
        shape: kernels.shape,
        picture,
    })
}

/// Finds, for units of a layer, the patches of `args.images` that excite them most, and writes
/// them as a grid (one row per unit) to `view.output`.
pub fn patches(view: &ViewRequest, args: &PatchRequest, device: &Device) -> Result<Patches> {
    check_png_path(&view.output)?;
    if args.top == 0 || args.tile == 0 {
        bail!("--top and --tile must be at least 1");
    }
    let files = image_files(&args.images)?;
    let loaded = load_model(view, device)?;
    let (index, layer) = layer_index(&loaded.model, view.layer.as_deref())?;
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
    save_rgb_png(&view.output, &image)?;
    Ok(Patches {
        model: loaded.spec.name.clone(),
        layer,
        files,
        field,
        tile,
        caption,
        units: units.into_iter().zip(picks).collect(),
        image,
    })
}

/// Draws the feature maps of the layer `view.layer` names (default: the one holding the first
/// convolution) for `args.image` and writes them to `view.output`.
pub fn activations(
    view: &ViewRequest,
    args: &ActivationRequest,
    device: &Device,
) -> Result<Activations> {
    check_png_path(&view.output)?;
    if args.max == 0 || args.tile == 0 {
        bail!("--max and --tile must be at least 1");
    }
    let loaded = load_model(view, device)?;
    let (_, layer) = layer_index(&loaded.model, view.layer.as_deref())?;
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
    save_rgb_png(&view.output, &picture.image)?;
    Ok(Activations {
        model: loaded.spec.name.clone(),
        layer,
        channels,
        shown,
        map_size: [h, w],
        caption,
        picture,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::DynamicImage;

    #[test]
    fn a_recipe_picture_shows_the_image_in_rgb_order() {
        let colour = Rgb([200, 100, 30]);
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(6, 6, colour));
        for p in [Preprocess::caffe(4), Preprocess::tf(4)] {
            let values = p.apply(&img).unwrap();
            let picture = recipe_picture(&p, &values);
            assert_eq!(picture.dimensions(), (4, 4), "{}", p.name);
            for pixel in picture.pixels() {
                for c in 0..3 {
                    let diff = (i16::from(pixel[c]) - i16::from(colour[c])).abs();
                    assert!(diff <= 1, "{}: {pixel:?} vs {colour:?}", p.name);
                }
            }
        }
    }

    #[test]
    fn image_files_are_the_visible_pictures_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.PNG", "a.jpg", "c.jpeg", ".hidden.png", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.png")).unwrap();
        let names: Vec<_> = image_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.jpg", "b.PNG", "c.jpeg"]);

        let empty = tempfile::tempdir().unwrap();
        let err = image_files(empty.path()).unwrap_err().to_string();
        assert!(err.contains("holds no .png, .jpg or .jpeg images"), "{err}");
    }
}
