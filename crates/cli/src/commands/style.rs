//! `convnet style`: neural style transfer (Gatys et al.) with a pretrained network's features.
//!
//! The content image is scaled so that its longer side is `--size` (aspect kept); the output
//! has that size. The style image is cut to the content's aspect ratio (the largest centred
//! region) and scaled to the same size, so the Gram matrices of both are taken over maps of
//! equal size, as the course's cost normalisation assumes.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use convnet_apps::style::{StyleObserver, StyleRequest, transfer};
use convnet_style::{Costs, Optimizer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

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

/// The bar on stderr, with a line of costs every tenth of the run.
struct Terminal {
    bar: ProgressBar,
    quiet: bool,
    log_every: usize,
}

impl StyleObserver for Terminal {
    fn iteration(&mut self, i: usize, costs: &Costs) {
        self.bar.set_position(i as u64);
        self.bar.set_message(describe(costs));
        if !self.quiet && (i.is_multiple_of(self.log_every) || i == 1) {
            self.bar
                .suspend(|| eprintln!("iteration {i}: {}", describe(costs)));
        }
    }
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    let request = StyleRequest {
        content: args.content,
        style: args.style,
        output: args.output,
        size: args.size,
        iterations: args.iterations,
        alpha: args.alpha,
        beta: args.beta,
        tv_weight: args.tv_weight,
        content_layer: args.content_layer,
        style_layers: args.style_layers,
        optimizer: match args.optimizer {
            OptimizerArg::Adam => Optimizer::Adam { lr: args.lr },
            OptimizerArg::Lbfgs => Optimizer::Lbfgs {
                history: args.history,
            },
        },
        model: args.model,
        weights: args.weights,
        untrained: args.untrained,
        preprocess: args.preprocess,
        noise: args.noise,
        seed: args.seed,
        save_every: args.save_every,
    };
    let quiet = quiet || args.json;
    let mut terminal = Terminal {
        bar: bar(request.iterations, quiet),
        quiet,
        log_every: (request.iterations / 10).max(1),
    };
    let result = transfer(&request, device, &mut terminal);
    terminal.bar.finish_and_clear();
    let report = result?;
    let size = report.size;
    let per_second = report.iterations_per_second();
    if args.json {
        let out = json!({
            "output": request.output,
            "width": size[1],
            "height": size[0],
            "model": request.model,
            "pretrained": report.pretrained,
            "optimizer": format!("{:?}", args.optimizer).to_lowercase(),
            "iterations": request.iterations,
            "evaluations": report.evaluations,
            "seconds": report.seconds,
            "iterations_per_second": per_second,
            "final": report.last,
            "history": report.history,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(first) = report.history.first() {
            eprintln!("start: {}", describe(first));
        }
        eprintln!(
            "end:   {} after {} iterations ({:.2} it/s)",
            describe(&report.last),
            request.iterations,
            per_second
        );
        println!(
            "{}x{} picture written to {}",
            size[1],
            size[0],
            request.output.display()
        );
    }
    Ok(())
}
