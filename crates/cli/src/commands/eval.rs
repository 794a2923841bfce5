//! `convnet eval`: accuracy, a per-class precision / recall table and a confusion-matrix
//! picture for a trained classifier (or an ensemble) on a data set's test split; for a detector
//! (a run with a YOLO head file), mAP on the held-out generated scenes; for a segmentation
//! network, mean IoU on its data set's test pictures.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use convnet_apps::classify::Ensemble;
use convnet_apps::classify::val::EvalRequest;
use convnet_apps::run::{EvalOptions, checkpoint_line};
use convnet_train::Observer;
use indicatif::{ProgressBar, ProgressStyle};

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

fn cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.3}", v))
}

/// Whether options that only classifiers' evaluation reads were given.
fn classifier_only(args: &Args) -> bool {
    args.dataset.is_some() || args.labels.is_some() || args.out.is_some() || args.split != "test"
}

fn options(args: &Args) -> EvalOptions<'_> {
    EvalOptions {
        data: args.data.as_deref(),
        limit: args.limit,
        flip_tta: args.flip_tta,
    }
}

/// The bar of a classifier's evaluation, shown once the number of examples is known.
struct Evaluating {
    bar: ProgressBar,
    hidden: bool,
}

impl Observer for Evaluating {
    fn validation_start(&mut self, examples: usize) {
        if !self.hidden {
            self.bar = ProgressBar::new(examples as u64).with_style(
                ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} ETA {eta}")
                    .expect("a valid progress template"),
            );
        }
    }

    fn validation_progress(&mut self, examples: usize) {
        self.bar.inc(examples as u64);
    }
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    // A detector's run is scored by mAP on generated scenes, not by accuracy.
    if let Some(run_dir) = convnet_apps::detect::detector_run_of(&args.checkpoint) {
        if classifier_only(&args) {
            anyhow::bail!(
                "{} is a detector's run: it is evaluated on the generated test scenes (no --dataset, --labels, --split or --out)",
                run_dir.display()
            );
        }
        let scored = convnet_apps::detect::val::evaluate_run(
            &args.checkpoint,
            &args.ensemble,
            &options(&args),
            device,
        )?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&scored.report)?);
        } else {
            for (path, meta) in &scored.checkpoints {
                println!("{}", checkpoint_line(path, meta));
            }
            let table =
                convnet_apps::detect::val::scores_table(&scored.report, &scored.classes, None);
            println!("{table}");
        }
        return Ok(());
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
        let scored = convnet_apps::segment::val::evaluate(&ensemble, &options(&args), device)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&scored.report)?);
        } else {
            for m in &ensemble.members {
                println!("{}", checkpoint_line(&m.path, &m.meta));
            }
            println!("{}", scored.table());
        }
        return Ok(());
    }
    if args.flip_tta {
        anyhow::bail!("--flip-tta is for detectors and segmentation networks");
    }
    let request = EvalRequest {
        dataset: args.dataset.clone(),
        labels: args.labels.clone(),
        data: args.data.clone(),
        split: args.split.clone(),
        limit: args.limit,
        out: args.out.clone(),
    };
    let mut bar = Evaluating {
        bar: ProgressBar::hidden(),
        hidden: quiet || args.json,
    };
    let scored = convnet_apps::classify::val::evaluate(&ensemble, &request, device, &mut bar);
    bar.bar.finish_and_clear();
    let scored = scored?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scored.report())?);
        return Ok(());
    }
    let members = ensemble
        .members
        .iter()
        .map(|m| m.path.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    println!(
        "{members} on {} {} ({} images)",
        scored.dataset, scored.split, scored.examples
    );
    println!(
        "accuracy {:.2}%  loss {:.4}\n",
        100.0 * scored.accuracy,
        scored.loss
    );
    let classes = ensemble.classes();
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}",
        "class", "precision", "recall", "f1", "support"
    );
    for r in &scored.classes {
        println!(
            "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}",
            r.class,
            cell(r.precision),
            cell(r.recall),
            cell(r.f1),
            r.support
        );
    }
    println!("\nconfusion matrix: {}", scored.confusion_png.display());
    Ok(())
}
