//! Semantic segmentation on the command line: `convnet train --task segment` (U-Net on the
//! generated scenes or an image + mask folder) and `convnet segment CKPT IMAGE -o MASK.png`
//! (a class per pixel, as a mask of class indices and a coloured overlay with a legend).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::fashion_mnist::{self, Split};
use convnet_data::segmentation::load_mask_folder;
use convnet_data::synthetic::segmentation_scenes;
use convnet_data::{ImageSet, JointAugment, SegmentationSet};
use convnet_layers::{Mode, ModelSpec};
use convnet_train::segment::argmax_pixels;
use convnet_train::{
    Checkpoint, SegmentationData, SegmentationLoss, SegmentationMetrics, TrainConfig,
    evaluate_segmentation, train_segmentation,
};
use convnet_vision::chart::{draw_text, save_rgb_png, series_colour, text_width};
use image::{GrayImage, Rgb, RgbImage, imageops};
use serde_json::json;

use super::progress::Bars;
use super::train::Args as TrainArgs;

/// The generated data set: Fashion-MNIST items on textured backgrounds.
pub const SCENES: &str = "scenes";
/// Scenes generated for training and testing when `--train-size` / `--test-limit` are not given.
const TRAIN_SCENES: usize = 2000;
const TEST_SCENES: usize = 500;
/// The test scenes come from a fixed seed apart from any training seed.
const TEST_SEED: u64 = 0x5e9_7e57;

/// `flip[=P]` and `shift=N` (alias `crop=N`), comma-separated; `none` for none.
fn joint_augment(text: &str) -> Result<Option<JointAugment>> {
    if text.is_empty() || text == "none" {
        return Ok(None);
    }
    let mut a = JointAugment::default();
    for part in text.split(',').map(str::trim) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match name {
            "flip" => {
                a.flip = if value.is_empty() {
                    0.5
                } else {
                    value.parse()?
                }
            }
            "shift" | "crop" => a.shift = value.parse().context("shift=N needs pixels")?,
            other => bail!(
                "'{other}' is not an augmentation for segmentation: use flip[=P] and shift=N (image and mask move together)"
            ),
        }
    }
    Ok(Some(a))
}

/// The Fashion-MNIST items generated scenes are made of: training items for the training
/// scenes, test items for the test scenes.
pub(super) fn scene_items(data: Option<&Path>, split: Split) -> Result<ImageSet> {
    Ok(fashion_mnist::load(&fashion_mnist::locate(data)?, split)?)
}

/// The held-out scenes, the same for training's report and `convnet eval`: test items, a fixed
/// seed, the first `limit` (default 500).
fn test_scenes(data: Option<&Path>, limit: Option<usize>, side: usize) -> Result<SegmentationSet> {
    let items = scene_items(data, Split::Test)?;
    Ok(segmentation_scenes(
        &items,
        limit.unwrap_or(TEST_SCENES),
        side,
        TEST_SEED,
    )?)
}

/// The training and test sets named by `--dataset`.
fn load_sets(
    args: &TrainArgs,
    dataset: &str,
) -> Result<(SegmentationSet, Option<SegmentationSet>)> {
    let size = args.size;
    if dataset == SCENES {
        let side = size.unwrap_or(64);
        let items = scene_items(args.data.as_deref(), Split::Train)?;
        let n = args.train_size.or(args.limit).unwrap_or(TRAIN_SCENES);
        let train = segmentation_scenes(&items, n, side, args.seed)?;
        let test = test_scenes(args.data.as_deref(), args.test_limit, side)?;
        return Ok((train, Some(test)));
    }
    let dir = Path::new(dataset);
    if !dir.is_dir() {
        bail!(
            "--dataset for segmentation is `{SCENES}` (generated) or a folder with images/ and masks/ (or train/ and test/ folders laid out that way), not '{dataset}'"
        );
    }
    let channels = args.channels.unwrap_or(1);
    let square = size.map(|s| [s, s]);
    if dir.join("train").is_dir() {
        let train = load_mask_folder(&dir.join("train"), channels, square)?;
        let test = dir
            .join("test")
            .is_dir()
            .then(|| {
                load_mask_folder(
                    &dir.join("test"),
                    channels,
                    Some([train.shape[1], train.shape[2]]),
                )
            })
            .transpose()?;
        return Ok((train, test));
    }
    Ok((load_mask_folder(dir, channels, square)?, None))
}

/// `convnet train --task segment`.
pub fn train(
    args: &TrainArgs,
    config: TrainConfig,
    run_dir: &Path,
    device: &Device,
    mut bars: Bars,
) -> Result<()> {
    let started = std::time::Instant::now();
    let (mut train, mut test) = load_sets(args, &config.dataset)?;
    let loaded = started.elapsed().as_secs_f64();
    if args.binary {
        train = train.binary();
        test = test.map(|t| t.binary());
    }
    if let Some(t) = &test
        && t.classes.len() != train.classes.len()
    {
        bail!(
            "the test set has {} classes, the training set {}",
            t.classes.len(),
            train.classes.len()
        );
    }
    let (train, validation) = train.split(config.val_fraction, config.seed)?;
    bars.line(&format!(
        "data: {} training, {} validation, {} test pictures of {:?} in {} classes ({}) ({loaded:.1} s to load)",
        train.len(),
        validation.len(),
        test.as_ref().map_or(0, |t| t.len()),
        train.shape,
        train.classes.len(),
        train.classes.join(", ")
    ));
    let spec = if super::pretrained::is_spec_file(&config.model) {
        let spec = ModelSpec::from_file(Path::new(&config.model))?;
        if spec.input != train.shape {
            bail!(
                "{} takes {:?}, the pictures are {:?}",
                config.model,
                spec.input,
                train.shape
            );
        }
        spec
    } else {
        convnet_zoo::segmenter_spec(&config.model, &train.shape, train.classes.len())?
    };
    let loss = SegmentationLoss::parse(&args.loss)?;
    let data = SegmentationData {
        normalization: train.normalization(),
        augment: joint_augment(&config.augment)?,
        train,
        validation: (!validation.is_empty()).then_some(validation),
        loss,
    };
    let (initial, init) = super::train::initial_model(args, &spec, device, &bars)?;
    let outcome = train_segmentation(
        &spec,
        initial.as_ref(),
        &data,
        &config,
        run_dir,
        device,
        &mut bars,
    )?;
    let best = Checkpoint::resolve(&outcome.best_checkpoint)?;
    let model = Checkpoint::load(&best)?.model(&best, device)?;
    let tested = match &test {
        Some(t) => Some(evaluate_segmentation(
            &model,
            t,
            &data.normalization,
            loss,
            32,
            device,
        )?),
        None => None,
    };
    let classes = &data.train.classes;
    let report = json!({
        "model": spec.name,
        "init": init,
        "classes": classes,
        "epochs": outcome.history.len(),
        "seconds_per_epoch": outcome.seconds_per_epoch(),
        "best_epoch": outcome.best_epoch,
        "best_val_mean_iou": outcome.best_val_accuracy,
        "test_loss": tested.as_ref().map(|(l, _)| l),
        "test_pixel_accuracy": tested.as_ref().map(|(_, m)| m.pixel_accuracy()),
        "test_mean_iou": tested.as_ref().map(|(_, m)| m.mean_iou()),
        "test_mean_dice": tested.as_ref().map(|(_, m)| m.mean_dice()),
        "test_per_class": tested.as_ref().map(|(_, m)| per_class(m, classes)),
        "run_dir": run_dir,
        "best_checkpoint": outcome.best_checkpoint,
    });
    if super::train::write_test_report(run_dir, &report, args.json)? {
        return Ok(());
    }
    if let Some((_, m)) = &tested {
        let epoch = outcome.best_epoch.unwrap_or(0);
        print_metrics(m, classes, &format!("best checkpoint, epoch {epoch}"));
    }
    println!("{:.1} s per epoch", outcome.seconds_per_epoch());
    println!("history:     {}", run_dir.join("history.csv").display());
    println!("curves:      {}", run_dir.join("curves.png").display());
    println!(
        "metrics:     {}",
        run_dir.join("test-metrics.json").display()
    );
    println!("checkpoints: {}", outcome.best_checkpoint.display());
    Ok(())
}

/// Each class's IoU and Dice, for the JSON reports.
fn per_class(m: &SegmentationMetrics, classes: &[String]) -> Vec<serde_json::Value> {
    classes
        .iter()
        .enumerate()
        .map(|(c, name)| json!({"class": name, "iou": m.iou(c), "dice": m.dice(c)}))
        .collect()
}

/// A metric for the tables; "-" where it is undefined (a class neither present nor predicted).
fn cell(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.4}"))
}

fn print_metrics(m: &SegmentationMetrics, classes: &[String], what: &str) {
    println!(
        "test: mean IoU {:.4}, pixel accuracy {:.2}%, mean Dice {:.4} ({what})",
        m.mean_iou(),
        100.0 * m.pixel_accuracy(),
        m.mean_dice(),
    );
    for (c, name) in classes.iter().enumerate() {
        println!(
            "  {name:<14} IoU {}  Dice {}",
            cell(m.iou(c)),
            cell(m.dice(c))
        );
    }
}

/// The test set of a segmentation run's data set, as `convnet train --task segment` made it:
/// the generated test scenes (the first `limit`; two classes for a `--binary` run), or a
/// folder data set's `test/` folder.
fn test_set(
    dataset: &str,
    input: &[usize],
    classes: usize,
    data: Option<&Path>,
    limit: Option<usize>,
) -> Result<SegmentationSet> {
    let &[channels, h, w] = input else {
        bail!("a segmentation network takes [C, H, W] pictures, not {input:?}");
    };
    let set = if dataset == SCENES {
        let scenes = test_scenes(data, limit, h)?;
        if classes == 2 {
            scenes.binary()
        } else {
            scenes
        }
    } else {
        let dir = Path::new(dataset).join("test");
        if !dir.is_dir() {
            bail!(
                "{dataset} has no test/ folder to evaluate on (a folder data set needs train/ and test/)"
            );
        }
        if limit.is_some() {
            bail!("--limit is for the generated scenes; a folder's test set is used whole");
        }
        load_mask_folder(&dir, channels, Some([h, w]))?
    };
    if set.classes.len() != classes {
        bail!(
            "the test set has {} classes, the network {classes}",
            set.classes.len()
        );
    }
    Ok(set)
}

/// `convnet eval` for segmentation networks (or an ensemble of them, their score maps
/// averaged): mean IoU, pixel accuracy and Dice on the test set of the data set the first was
/// trained on, optionally with flip test-time augmentation.
pub fn evaluate(
    ensemble: &super::classifier::Ensemble,
    options: &super::eval::Options,
    device: &Device,
) -> Result<()> {
    let flip_tta = options.flip_tta;
    let first = &ensemble.members[0];
    let classes = ensemble.classes();
    let dataset = &first.meta.config.dataset;
    let test = test_set(
        dataset,
        &first.input,
        classes.len(),
        options.data,
        options.limit,
    )?;
    let members: Vec<_> = ensemble
        .members
        .iter()
        .map(|m| (&m.model, &m.normalization))
        .collect();
    let (_, m) = convnet_train::segment::evaluate_segmentation_ensemble(
        &members,
        &test,
        convnet_train::segment::SegmentationLoss::CrossEntropy,
        flip_tta,
        32,
        device,
    )?;
    let checkpoints: Vec<&PathBuf> = ensemble.members.iter().map(|m| &m.path).collect();
    if options.json {
        let report = json!({
            "checkpoints": checkpoints,
            "dataset": dataset,
            "flip_tta": flip_tta,
            "test_images": test.len(),
            "test_pixel_accuracy": m.pixel_accuracy(),
            "test_mean_iou": m.mean_iou(),
            "test_mean_dice": m.mean_dice(),
            "test_per_class": per_class(&m, classes),
            "test_item_iou": m.items_found().iou(1),
            "test_mean_iou_named_right": m.named_right().mean_iou(),
            "test_confusion": m.confusion.counts,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for m in &ensemble.members {
        println!("{}", super::eval::checkpoint_line(&m.path, &m.meta));
    }
    let what = format!(
        "{} test pictures of {dataset}{}",
        test.len(),
        if flip_tta { ", flip TTA" } else { "" }
    );
    print_metrics(&m, classes, &what);
    if classes.len() > 2 {
        println!(
            "items found (background against any item): IoU {}; mean IoU were every found item pixel named right: {:.4}",
            cell(m.items_found().iou(1)),
            m.named_right().mean_iou()
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A segmentation checkpoint file or run directory (`convnet train --task segment`), then
    /// the picture; with --model, the picture alone.
    #[arg(value_name = "CHECKPOINT | IMAGE")]
    checkpoint: PathBuf,

    /// The picture (PNG or JPEG); it is resized to the network's input and the mask back to
    /// the picture's size.
    image: Option<PathBuf>,

    /// An ONNX network whose output is a per-pixel map `[1, K, h, w]` (K class scores, or one
    /// probability map such as a text detector's), instead of a checkpoint.
    #[arg(long, value_name = "M.onnx")]
    model: Option<PathBuf>,

    /// Preprocessing for --model (`imagenet`, `caffe`, `tf`); default: the recipe stored in the
    /// file by `convnet export`, else `imagenet`.
    #[arg(long, requires = "model", value_name = "PRESET")]
    preprocess: Option<String>,

    /// For --model with an input size that is not fixed: the picture is scaled so its shorter
    /// side is this (default: as it is), then each side rounded up to a multiple of 32.
    #[arg(long, requires = "model", value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Class names for --model, one per line, background first (default: `background` and
    /// `foreground` for a one-channel map, else `class 0`, `class 1`...).
    #[arg(long, requires = "model", value_name = "FILE")]
    labels: Option<PathBuf>,

    /// For a one-channel probability map: the probability from which a pixel is foreground.
    #[arg(long, default_value_t = 0.5, requires = "model")]
    threshold: f32,

    /// Where to write the mask: a greyscale PNG whose pixel values are class indices.
    #[arg(long, short, value_name = "MASK.png")]
    output: Option<PathBuf>,

    /// Also write the picture with each class in its colour and a legend.
    #[arg(long, value_name = "OVERLAY.png")]
    overlay: Option<PathBuf>,

    /// Print the class of each pixel count as JSON.
    #[arg(long)]
    json: bool,
}

/// `convnet segment`.
pub fn run(args: Args, device: &Device) -> Result<()> {
    if args.output.is_none() && args.overlay.is_none() && !args.json {
        bail!("say what to write: -o MASK.png, --overlay OVERLAY.png or --json");
    }
    let (image, picture, labels, classes, [h, w]) = match &args.model {
        Some(model) => {
            if args.image.is_some() {
                bail!("with --model, give the picture alone (no checkpoint)");
            }
            let image = args.checkpoint.clone();
            let picture = convnet_data::folder::decode_image(&image)?;
            let (labels, classes, hw) = onnx_labels(&args, model, &picture, device)?;
            (image, picture, labels, classes, hw)
        }
        None => {
            let Some(image) = args.image.clone() else {
                bail!(
                    "give the picture after the checkpoint (or segment with --model M.onnx PICTURE)"
                );
            };
            let picture = convnet_data::folder::decode_image(&image)?;
            let (labels, classes, hw) = checkpoint_labels(&args.checkpoint, &picture, device)?;
            (image, picture, labels, classes, hw)
        }
    };
    let (pw, ph) = (picture.width(), picture.height());
    let small = GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([labels[y as usize * w + x as usize] as u8])
    });
    let mask = imageops::resize(&small, pw, ph, imageops::FilterType::Nearest);
    if let Some(output) = &args.output {
        write_png(output, |p| mask.save(p))?;
    }
    if let Some(overlay) = &args.overlay {
        let img = render_overlay(&picture.to_rgb8(), &mask, &classes);
        save_rgb_png(overlay, &img)?;
    }
    let mut counts = vec![0u64; classes.len()];
    for p in mask.pixels() {
        counts[usize::from(p.0[0])] += 1;
    }
    if args.json {
        let present: Vec<_> = classes
            .iter()
            .zip(&counts)
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| json!({"class": name, "pixels": n}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "image": image, "mask": args.output, "overlay": args.overlay,
                "size": [pw, ph], "classes": present,
            }))?
        );
    } else {
        let total = f64::from(pw) * f64::from(ph);
        for (name, n) in classes.iter().zip(&counts).filter(|(_, n)| **n > 0) {
            println!("{name:<14} {:5.1}%", 100.0 * *n as f64 / total);
        }
        if let Some(o) = &args.output {
            println!("mask: {}", o.display());
        }
        if let Some(o) = &args.overlay {
            println!("overlay: {}", o.display());
        }
    }
    Ok(())
}

/// A checkpoint's class per pixel of `picture` at the network's resolution, its class names and
/// that resolution.
fn checkpoint_labels(
    checkpoint: &Path,
    picture: &image::DynamicImage,
    device: &Device,
) -> Result<(Vec<usize>, Vec<String>, [usize; 2])> {
    let path = Checkpoint::resolve(checkpoint)?;
    let ckpt = Checkpoint::load(&path)?;
    let model = ckpt.model(&path, device)?;
    let classes = ckpt.meta.classes.clone();
    let &[c, h, w] = model.input_shape().dims() else {
        bail!("{} is not an image network", path.display());
    };
    let out_dims = model.output_shape()?.dims().to_vec();
    if out_dims != [classes.len(), h, w] {
        bail!(
            "{} is not a segmentation network: it outputs {out_dims:?}, not a score map per class",
            path.display()
        );
    }
    let resized = picture.resize_exact(w as u32, h as u32, imageops::FilterType::Triangle);
    let norm = convnet_data::Normalization::from(&ckpt.meta.normalization);
    let mut x = Vec::with_capacity(c * h * w);
    match c {
        1 => x.extend(
            resized
                .to_luma8()
                .pixels()
                .map(|p| norm.apply(0, f32::from(p.0[0]) / 255.0)),
        ),
        3 => {
            let rgb = resized.to_rgb8();
            for ch in 0..3 {
                x.extend(
                    rgb.pixels()
                        .map(|p| norm.apply(ch, f32::from(p.0[ch]) / 255.0)),
                );
            }
        }
        _ => bail!("the network takes {c} channels; pictures have 1 or 3"),
    }
    let scores = model
        .forward(
            Tensor::<4>::from_data(TensorData::new(x, [1, c, h, w]), device),
            Mode::Eval,
        )?
        .into_map2d()
        .map_err(|e| anyhow::anyhow!("cannot read the score maps: {e:?}"))?;
    Ok((argmax_pixels(scores), classes, [h, w]))
}

/// An ONNX network's class per pixel of `picture` at its output's resolution: the best of K
/// score maps, or a one-channel probability map thresholded.
fn onnx_labels(
    args: &Args,
    model_path: &Path,
    picture: &image::DynamicImage,
    device: &Device,
) -> Result<(Vec<usize>, Vec<String>, [usize; 2])> {
    let model = super::onnx::open(model_path)?;
    let recipe = super::onnx::recipe(
        &model,
        model_path,
        args.preprocess.as_deref(),
        args.size,
        (picture.width(), picture.height()),
        true,
    )?;
    let [h, w] = recipe.size;
    let pixels = recipe.apply(picture)?;
    let out = super::onnx::run_picture(&model, pixels, [3, h, w], device)?;
    let dims = out.shape().to_vec();
    let &[1, k, oh, ow] = dims.as_slice() else {
        bail!(
            "{}: its output is {dims:?}; a per-pixel map is [1, K, h, w]",
            model_path.display()
        );
    };
    if k == 0 || k > 256 {
        bail!(
            "{}: {k} score maps; masks hold 1 to 256 classes",
            model_path.display()
        );
    }
    let scores = out
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let plane = oh * ow;
    let labels: Vec<usize> = if k == 1 {
        // Logits rather than probabilities when any value lies outside [0, 1].
        let logits = scores.iter().any(|&v| !(0.0..=1.0).contains(&v));
        scores
            .iter()
            .map(|&v| {
                let p = if logits { 1.0 / (1.0 + (-v).exp()) } else { v };
                usize::from(p >= args.threshold)
            })
            .collect()
    } else {
        (0..plane)
            .map(|i| {
                (0..k)
                    .max_by(|&a, &b| scores[a * plane + i].total_cmp(&scores[b * plane + i]))
                    .unwrap_or(0)
            })
            .collect()
    };
    let classes = match (&args.labels, k) {
        (Some(file), _) => super::pretrained::class_names(Some(file), k.max(2))?,
        (None, 1) => vec!["background".into(), "foreground".into()],
        (None, _) => (0..k).map(|c| format!("class {c}")).collect(),
    };
    Ok((labels, classes, [oh, ow]))
}

/// Writes through a temporary file beside `path`, then renames it over.
fn write_png(path: &Path, save: impl FnOnce(&Path) -> image::ImageResult<()>) -> Result<()> {
    let tmp = path.with_extension("partial.png");
    save(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The colour of class `c`: background stays uncoloured, the rest take the chart palette.
fn class_colour(c: usize) -> Option<Rgb<u8>> {
    (c > 0).then(|| series_colour(c - 1))
}

/// The picture with every non-background pixel tinted by its class, and a legend of the
/// classes present below it.
fn render_overlay(picture: &RgbImage, mask: &GrayImage, classes: &[String]) -> RgbImage {
    let (w, h) = picture.dimensions();
    let present: Vec<usize> = (1..classes.len())
        .filter(|&c| mask.pixels().any(|p| usize::from(p.0[0]) == c))
        .collect();
    let scale = if w >= 320 { 2 } else { 1 };
    let row = 10 * scale + 4;
    let legend_h = row * present.len().max(1) as u32 + 6;
    let width = w.max(
        present
            .iter()
            .map(|&c| text_width(&classes[c], scale) + 10 * scale + 16)
            .max()
            .unwrap_or(0),
    );
    let mut out = RgbImage::from_pixel(width, h + legend_h, Rgb([255, 255, 255]));
    for (x, y, p) in picture.enumerate_pixels() {
        let tinted = match class_colour(usize::from(mask.get_pixel(x, y).0[0])) {
            Some(c) => Rgb([0, 1, 2].map(|i| ((u16::from(p.0[i]) + u16::from(c.0[i])) / 2) as u8)),
            None => *p,
        };
        out.put_pixel(x, y, tinted);
    }
    for (i, &c) in present.iter().enumerate() {
        let y = h + 4 + i as u32 * row;
        let colour = class_colour(c).unwrap_or(Rgb([0, 0, 0]));
        for dy in 0..8 * scale {
            for dx in 0..8 * scale {
                out.put_pixel(4 + dx, y + dy, colour);
            }
        }
        draw_text(
            &mut out,
            (8 + 8 * scale + 4) as i32,
            y as i32,
            &classes[c],
            scale,
            Rgb([0, 0, 0]),
        );
    }
    if present.is_empty() {
        draw_text(
            &mut out,
            4,
            (h + 4) as i32,
            "background only",
            scale,
            Rgb([0, 0, 0]),
        );
    }
    out
}
