//! `convnet eval`: accuracy, a per-class precision / recall table and a confusion-matrix
//! picture for a trained classifier (or an ensemble) on a data set's test split; for a detector
//! (a run with a YOLO head file), mAP on the held-out generated scenes; for a segmentation
//! network, mean IoU on its data set's test pictures.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::Device;
use convnet_data::ClassSelection;
use convnet_train::ConfusionMatrix;
use convnet_train::metrics::argmax_rows;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::classifier::Ensemble;
use super::dataset::{DataSource, Locations};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run directory (its best checkpoint) or a checkpoint file. A detector's run (its
    /// directory or one of its checkpoints, `convnet train --task detect`) is scored by mAP on
    /// its held-out generated scenes, a segmentation network by mean IoU on its data set's test
    /// pictures.
    checkpoint: PathBuf,

    /// More checkpoints or run directories whose probabilities are averaged with the first.
    #[arg(long, num_args = 1.., value_name = "CKPT")]
    ensemble: Vec<PathBuf>,

    /// The data set (default: the one the model was trained on): as `convnet train` names
    /// them.
    #[arg(long)]
    dataset: Option<String>,

    /// Integer labels `[N]` for a `.npy` data set (which is then evaluated as its test split).
    #[arg(long, value_name = "Y.npy")]
    labels: Option<PathBuf>,

    /// Where Fashion-MNIST's IDX files are.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// `test` or `train`.
    #[arg(long, default_value = "test")]
    split: String,

    /// Evaluate on the first N images only.
    #[arg(long)]
    limit: Option<usize>,

    /// Where to draw the confusion matrix (default: confusion.png in the run directory).
    #[arg(long, short)]
    out: Option<PathBuf>,

    /// Detectors and segmentation networks: average each picture's output with its mirror
    /// image's (flip test-time augmentation, twice the work).
    #[arg(long)]
    flip_tta: bool,

    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
}

/// What `convnet eval` passes on to detectors' and segmentation networks' evaluations.
pub struct Options<'a> {
    /// Where Fashion-MNIST's IDX files are (the generated scenes are made of them).
    pub data: Option<&'a Path>,
    /// The first N test pictures only.
    pub limit: Option<usize>,
    pub flip_tta: bool,
    pub json: bool,
}

/// `RUN/checkpoints/x.ckpt` -> `RUN`; a checkpoint elsewhere -> its folder.
pub(super) fn run_dir_of(checkpoint: &Path) -> PathBuf {
    let folder = checkpoint.parent().unwrap_or(Path::new("."));
    match folder.file_name() {
        Some(n) if n == convnet_train::checkpoint::CHECKPOINT_DIR => {
            folder.parent().unwrap_or(Path::new(".")).to_path_buf()
        }
        _ => folder.to_path_buf(),
    }
}

/// `path` with where in its run it was written: after which epoch, and for a checkpoint saved
/// inside an epoch (`--save-every`), how many steps into the next.
pub(super) fn checkpoint_line(path: &Path, meta: &convnet_train::CheckpointMeta) -> String {
    format!(
        "{} ({})",
        path.display(),
        position(meta.epoch, meta.global_step, meta.steps_into_epoch)
    )
}

/// `epochs` completed, `global_step` steps in all, `steps_into_epoch` of the next epoch when
/// the checkpoint was written inside it.
fn position(epochs: usize, global_step: usize, steps_into_epoch: Option<usize>) -> String {
    match steps_into_epoch {
        Some(steps) => format!(
            "epoch {} step {steps}, mid-epoch; global step {global_step}",
            epochs + 1
        ),
        None => format!("after epoch {epochs}; global step {global_step}"),
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.3}", v))
}

/// Whether options that only classifiers' evaluation reads were given.
fn classifier_only(args: &Args) -> bool {
    args.dataset.is_some() || args.labels.is_some() || args.out.is_some() || args.split != "test"
}

fn options(args: &Args) -> Options<'_> {
    Options {
        data: args.data.as_deref(),
        limit: args.limit,
        flip_tta: args.flip_tta,
        json: args.json,
    }
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    // A detector's run is scored by mAP on generated scenes, not by accuracy.
    if let Some(run_dir) = super::detect::detector_run_of(&args.checkpoint) {
        if classifier_only(&args) {
            anyhow::bail!(
                "{} is a detector's run: it is evaluated on the generated test scenes (no --dataset, --labels, --split or --out)",
                run_dir.display()
            );
        }
        return super::detect::evaluate_run(
            &args.checkpoint,
            &args.ensemble,
            &options(&args),
            device,
        );
    }
    let mut paths = vec![args.checkpoint.clone()];
    paths.extend(args.ensemble.iter().cloned());
    let ensemble = Ensemble::load(&paths, device)?;
    let first = &ensemble.members[0];
    // Score maps [k, H, W] rather than scores [k]: a segmentation network.
    if first.model.output_shape()?.dims().len() == 3 {
        if classifier_only(&args) {
            anyhow::bail!(
                "a segmentation network is evaluated on the test set of the data set it was trained on (no --dataset, --labels, --split or --out)"
            );
        }
        return super::segment::evaluate(&ensemble, &options(&args), device);
    }
    if args.flip_tta {
        anyhow::bail!("--flip-tta is for detectors and segmentation networks");
    }
    let dataset = args
        .dataset
        .clone()
        .unwrap_or_else(|| first.meta.config.dataset.clone());
    let npy = Path::new(&dataset).extension().is_some_and(|e| e == "npy");
    let locations = Locations {
        data_dir: args.data.as_deref(),
        labels: args.labels.as_deref(),
        // A .npy set named here is what is evaluated, whatever the split.
        test: args
            .labels
            .as_deref()
            .filter(|_| npy)
            .map(|labels| (Path::new(&dataset), labels)),
    };
    let source = DataSource::resolve(&dataset, &locations)?;
    let set = source.load_split(
        &args.split,
        ensemble.input().try_into().ok(),
        args.limit,
        first.meta.config.seed,
    )?;
    // A run trained on some of its data set's classes (`--only-classes`) is scored on the same
    // classes, relabelled as in training.
    let config = &first.meta.config;
    let set = if config.only_classes.is_empty() || dataset != config.dataset {
        set
    } else {
        set.select(&ClassSelection {
            classes: config.only_classes.clone(),
            per_class: None,
            seed: config.seed,
        })?
    };
    convnet_data::check_not_empty(&format!("{} ({dataset})", args.split), set.len())?;
    if set.example_shape() != ensemble.input() {
        anyhow::bail!(
            "the data set's examples are {:?} but the model takes {:?}",
            set.example_shape(),
            ensemble.input()
        );
    }
    let classes = ensemble.classes().to_vec();
    if set.classes().len() > classes.len() {
        anyhow::bail!(
            "the data set has {} classes but the model only {}",
            set.classes().len(),
            classes.len()
        );
    }
    let labels = set.labels();
    let bar = if quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((set.len() * ensemble.members.len()) as u64).with_style(
            ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} ETA {eta}")
                .expect("a valid progress template"),
        )
    };
    let probs = ensemble.probabilities(set.into_examples(), device, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();

    let k = classes.len();
    let mut confusion = ConfusionMatrix::new(k);
    confusion.add(&labels, &argmax_rows(&probs, k));
    let loss = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -(probs[i * k + y].max(1e-12) as f64).ln())
        .sum::<f64>()
        / labels.len().max(1) as f64;
    let report = confusion.report(&classes);
    let png = args
        .out
        .clone()
        .unwrap_or_else(|| run_dir_of(&first.path).join("confusion.png"));
    convnet_vision::chart::confusion_png(
        &png,
        &confusion.counts,
        &classes,
        &format!(
            "Confusion matrix ({} {}, accuracy {:.2}%)",
            dataset,
            args.split,
            100.0 * confusion.accuracy()
        ),
    )?;

    if args.json {
        let out = json!({
            "checkpoints": ensemble.members.iter().map(|m| &m.path).collect::<Vec<_>>(),
            "dataset": dataset,
            "split": args.split,
            "examples": labels.len(),
            "accuracy": confusion.accuracy(),
            "loss": loss,
            "classes": report,
            "confusion": confusion.counts,
            "confusion_png": png,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let members = ensemble
        .members
        .iter()
        .map(|m| m.path.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    println!(
        "{members} on {dataset} {} ({} images)",
        args.split,
        labels.len()
    );
    println!(
        "accuracy {:.2}%  loss {:.4}\n",
        100.0 * confusion.accuracy(),
        loss
    );
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}",
        "class", "precision", "recall", "f1", "support"
    );
    for r in &report {
        println!(
            "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}",
            r.class,
            cell(r.precision),
            cell(r.recall),
            cell(r.f1),
            r.support
        );
    }
    println!("\nconfusion matrix: {}", png.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn a_checkpoint_says_where_in_its_run_it_was_written() {
        assert_eq!(position(3, 1200, None), "after epoch 3; global step 1200");
        // Saved 2,000 steps into the first epoch (`--save-every 2000`): no epoch completed.
        assert_eq!(
            position(0, 2000, Some(2000)),
            "epoch 1 step 2000, mid-epoch; global step 2000"
        );
    }
}
