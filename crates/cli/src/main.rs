//! `convnet`: build, inspect, train and run convolutional networks from the command line.

mod commands;
mod device;

use clap::{ArgAction, Parser, Subcommand};
use std::process::ExitCode;

use crate::device::DeviceArg;

/// Convolutional neural networks in Rust, on Burn.
#[derive(Parser, Debug)]
#[command(name = "convnet", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Where tensors live: `cpu` (Burn's flex backend), `gpu` (Vulkan; needs a build with
    /// `--features gpu`) or `cuda` (NVIDIA; needs a build with `scripts/build-cuda.sh`).
    #[arg(long, global = true, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a network's layers, output shapes, parameter counts and multiply-adds.
    Summary(commands::summary::Args),
    /// List the built-in models.
    Models(commands::models::Args),
    /// Run a hand-designed filter (edge detectors, or a kernel from a JSON file) over an image.
    Filter(commands::filter::Args),
    /// Micro-benchmarks: `convnet bench conv` times single convolutions.
    Bench(commands::bench::Args),
    /// Train a classifier (progress, validation, history.csv, curves.png, checkpoints).
    Train(Box<commands::train::Args>),
    /// Accuracy, per-class precision and recall, and a confusion matrix for a trained classifier;
    /// mAP for a detector, mean IoU for a segmentation network.
    Eval(commands::eval::Args),
    /// Mean average precision of detections (COCO JSON): COCO mAP@[.5:.95] and VOC AP.
    EvalDetections(commands::eval_detections::Args),
    /// Classify image files with a trained model (or an ensemble of them).
    Predict(commands::predict::Args),
    /// Run a batch from a `.npy` file through a model with weights, writing the logits.
    Infer(commands::infer::Args),
    /// Transfer learning: a pretrained base, a new head, the base frozen (or partly).
    Finetune(Box<commands::finetune::Args>),
    /// Label every pixel of a picture with a segmentation network: a mask and an overlay.
    Segment(commands::segment::Args),
    /// Anchor box shapes for a YOLO head: k-means over labelled boxes with 1 - IoU as distance.
    Anchors(commands::anchors::Args),
    /// Find objects in a picture with a YOLO detector (face-api's Tiny Face Detector): boxes
    /// drawn on the picture and as JSON.
    Detect(commands::detect::Args),
    /// Neural style transfer: a picture's content painted in another picture's style.
    Style(Box<commands::style::Args>),
    /// See what conv layers learn: filters, the patches that excite units most, feature maps.
    Visualize(commands::visualize::Args),
    /// Faces: encode, and verify or identify people against a gallery (face-api.js's networks).
    Face(commands::face::Args),
    /// Your own detection data (YOLO, COCO, Pascal VOC, CSV): `inspect` it (counts, box sizes,
    /// every problem), `tile` large pictures, `convert` between layouts.
    Dataset(commands::datasets::Args),
    /// Face recognition's training side on Fashion-MNIST: an embedding trained with the triplet
    /// loss (`embed train`), and one-shot identification of classes it never saw (`embed one-shot`).
    Embed(commands::embed::Args),
    /// Write a model, a training run or a checkpoint as an ONNX file (weights, class names and
    /// preprocessing included).
    Export(commands::export::Args),
    /// Serve models over HTTP: a JSON API (classify, detect, segment, faces, a gallery) and a
    /// page at `/` to try them on a photo.
    Serve(commands::serve::Args),
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVNET_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("convnet={level},convnet_cli={level}"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let device = || device::select(cli.device);
    match cli.command {
        Command::Summary(args) => commands::summary::run(args, &device()?),
        Command::Models(args) => commands::models::run(args),
        Command::Filter(args) => commands::filter::run(args, &device()?),
        Command::Bench(args) => commands::bench::run(args, &device()?, cli.device),
        Command::Train(args) => commands::train::run(*args, &device()?, cli.quiet),
        Command::Eval(args) => commands::eval::run(args, &device()?, cli.quiet),
        Command::EvalDetections(args) => commands::eval_detections::run(args),
        Command::Predict(args) => commands::predict::run(args, &device()?),
        Command::Infer(args) => commands::infer::run(args, &device()?),
        Command::Finetune(args) => commands::finetune::run(*args, &device()?, cli.quiet),
        Command::Segment(args) => commands::segment::run(args, &device()?),
        Command::Anchors(args) => commands::anchors::run(args),
        Command::Detect(args) => commands::detect::run(args, &device()?),
        Command::Style(args) => commands::style::run(*args, &device()?, cli.quiet),
        Command::Visualize(args) => commands::visualize::run(args, &device()?),
        Command::Face(args) => commands::face::run(args, &device()?),
        Command::Dataset(args) => commands::datasets::run(args),
        Command::Embed(args) => commands::embed::run(args, &device()?, cli.quiet),
        Command::Export(args) => commands::export::run(args, &device()?),
        Command::Serve(args) => commands::serve::run(args, &device()?),
    }
}

/// Tensors of many megabytes are allocated and freed every training step. glibc's malloc hands
/// blocks that large back to the kernel at once, so each step paid page faults (and TLB
/// shootdowns across the worker threads) to touch them again: a depthwise 3x3 backward ran 3x
/// slower for it. mimalloc keeps freed memory for reuse (`BENCHMARKS.md`, issue 10).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `f` on a thread of the rayon pool the CPU kernels use (Burn's flex, the GEMM, ours), as
/// a worker: each parallel section then splits its work by work stealing. Called from the main
/// thread instead, every one of them queued its jobs and put the caller to sleep on a lock until
/// they finished, two context switches per tensor operation: most of a LeNet-sized convolution's
/// time (`perf`, BENCHMARKS issue 10). The pool has one thread per core (RAYON_NUM_THREADS
/// overrides it, as for rayon's global pool).
fn in_compute_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("convnet-compute-{i}"))
        .build()
    {
        Ok(pool) => pool.install(f),
        // No threads to be had: run here, as rayon's global pool would fail the same way later.
        Err(_) => f(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match in_compute_pool(|| run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", convnet_apps::errors::one_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
