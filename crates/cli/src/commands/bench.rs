//! `convnet bench`: micro-benchmarks. `convnet bench conv` times single 2D convolutions on the
//! shape set of `../shared/bench/pytorch/conv_cases.py`, so its numbers sit beside PyTorch's.

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, Distribution, Tensor};
use convnet_layers::{Conv2dConfig, Mode, Padding};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

use crate::device::DeviceArg;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Single 2D convolutions (NCHW, f32, no bias): forward and forward+backward median time and
    /// GFLOP/s on the shape set of the PyTorch reference script.
    Conv(ConvArgs),
    /// Whole-network inference at 224x224 (eval mode, random weights): batch-1 latency and
    /// batch-16 throughput, as `../shared/bench/pytorch/infer_torch.py` and `infer_ort.py`
    /// measure them.
    Infer(InferArgs),
    /// A bounded load test of an inference server on this machine (`convnet serve`, or a peer
    /// with the same routes): requests per second and p50/p99 latency at fixed concurrencies,
    /// and the server's resident memory.
    Serve(super::load::LoadArgs),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Batch 1: the median of --iters1 runs after --warmup runs. Batch 16: 16 / the median of \
--iters16 runs after max(2, warmup / 2) runs. Weights are freshly initialised: the time does not \
depend on their values. Every run waits for the device to finish.")]
pub struct InferArgs {
    /// Built-in models to time (see `convnet models`), or ONNX files (`.onnx`, one image input
    /// of 224x224 or free size; batch 16 needs a free or 16-wide batch axis), run by convnet's
    /// ONNX importer with the file's own weights.
    #[arg(long = "model", value_name = "NAME", default_values_t = ["resnet50".to_string(), "mobilenet_v2".to_string()])]
    models: Vec<String>,

    /// Timed batch-1 runs.
    #[arg(long, default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    iters1: u32,

    /// Timed batch-16 runs.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    iters16: u32,

    /// Untimed batch-1 runs first.
    #[arg(long, default_value_t = 5, value_name = "N")]
    warmup: u32,

    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Cases: resnet_3x3_64, stem_7x7_s2, lenet_conv1, lenet_conv2, deep_3x3_512, dw_3x3_144.

FLOPs: forward 2 * N * Cout * Hout * Wout * (Cin / groups) * kh * kw; forward+backward counts 3x \
that (forward, input gradient, weight gradient). Each time is the median of the timed runs; every \
run waits for the device to finish.")]
pub struct ConvArgs {
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,

    /// At least this many timed runs per case and pass.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    iters: u32,

    /// And at least this many seconds of timed runs per case and pass.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    min_time: f64,

    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 3, value_name = "N")]
    warmup: u32,

    /// Only this case (may be given more than once).
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
}

/// One convolution: `N x Cin x H x W -> Cout`, square `k x k` kernel.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

const fn case(
    name: &'static str,
    [n, cin, h, w]: [usize; 4],
    cout: usize,
    [k, stride, pad, groups]: [usize; 4],
) -> Case {
    Case {
        name,
        n,
        cin,
        h,
        w,
        cout,
        k,
        stride,
        pad,
        groups,
    }
}

/// `conv_cases.py`'s CASES: name, input NCHW, filters, [kernel, stride, padding, groups].
const CASES: [Case; 6] = [
    case("resnet_3x3_64", [8, 64, 56, 56], 64, [3, 1, 1, 1]),
    case("stem_7x7_s2", [1, 3, 224, 224], 64, [7, 2, 3, 1]),
    case("lenet_conv1", [32, 1, 28, 28], 6, [5, 1, 0, 1]),
    case("lenet_conv2", [32, 6, 14, 14], 16, [5, 1, 0, 1]),
    case("deep_3x3_512", [1, 512, 7, 7], 512, [3, 1, 1, 1]),
    case("dw_3x3_144", [8, 144, 56, 56], 144, [3, 1, 1, 144]),
];

impl Case {
    fn out_hw(&self) -> (usize, usize) {
        let out = |n: usize| (n + 2 * self.pad - self.k) / self.stride + 1;
        (out(self.h), out(self.w))
    }

    fn forward_flops(&self) -> f64 {
        let (ho, wo) = self.out_hw();
        2.0 * (self.n * self.cout * ho * wo * (self.cin / self.groups) * self.k * self.k) as f64
    }

    /// As the PyTorch script writes it.
    fn shape(&self) -> String {
        let (ho, wo) = self.out_hw();
        format!(
            "{}x{}x{}x{} -> {} k{} s{} p{} g{} (out {}x{}x{}x{})",
            self.n,
            self.cin,
            self.h,
            self.w,
            self.cout,
            self.k,
            self.stride,
            self.pad,
            self.groups,
            self.n,
            self.cout,
            ho,
            wo
        )
    }

    fn layer(&self) -> Conv2dConfig {
        let padding = match self.pad {
            0 => Padding::Valid,
            p => Padding::uniform(p),
        };
        Conv2dConfig::new(self.cout, self.k)
            .with_stride(self.stride)
            .with_padding(padding)
            .with_groups(self.groups)
            .with_bias(false)
    }

    fn input(&self, device: &Device) -> Tensor<4> {
        Tensor::random(
            [self.n, self.cin, self.h, self.w],
            Distribution::Normal(0.0, 1.0),
            device,
        )
    }

    fn check_output(&self, dims: [usize; 4]) -> Result<()> {
        let (ho, wo) = self.out_hw();
        ensure!(
            dims == [self.n, self.cout, ho, wo],
            "{}: the layer gave an output of {dims:?}, expected [{}, {}, {ho}, {wo}]",
            self.name,
            self.n,
            self.cout
        );
        Ok(())
    }
}

struct Timing {
    median_s: f64,
    runs: usize,
}

/// `warmup` untimed runs, then timed runs until there are at least `iters` of them and
/// `min_time` has passed (at most 10,000, as the PyTorch script does); the median.
fn time(
    warmup: u32,
    iters: u32,
    min_time: Duration,
    mut run: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    for _ in 0..warmup {
        run()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < iters as usize || start.elapsed() < min_time {
        let t0 = Instant::now();
        run()?;
        times.push(t0.elapsed().as_secs_f64());
        if times.len() >= 10_000 {
            break;
        }
    }
    Ok(Timing {
        median_s: median(&mut times),
        runs: times.len(),
    })
}

/// The middle value; the mean of the two middle ones for an even count (Python's
/// `statistics.median`).
fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2.0
    }
}

/// Waits until everything queued on `device` has run, so the clock stops after the work.
fn finish(device: &Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("the device failed: {e}"))
}

struct CaseResult {
    case: Case,
    forward: Timing,
    fwd_bwd: Timing,
}

impl CaseResult {
    fn forward_gflops(&self) -> f64 {
        self.case.forward_flops() / self.forward.median_s / 1e9
    }
    fn fwd_bwd_gflops(&self) -> f64 {
        3.0 * self.case.forward_flops() / self.fwd_bwd.median_s / 1e9
    }
}

fn bench_case(
    case: &Case,
    args: &ConvArgs,
    device: &Device,
    pb: &ProgressBar,
) -> Result<CaseResult> {
    let min_time = Duration::from_secs_f64(args.min_time);

    pb.set_message(format!("{} forward", case.name));
    let conv = case
        .layer()
        .init(case.cin, device)
        .with_context(|| case.name)?;
    let x = case.input(device);
    case.check_output(conv.forward(x.clone())?.dims())?;
    let forward = time(args.warmup, args.iters, min_time, || {
        let y = conv.forward(x.clone())?;
        finish(device)?;
        drop(y);
        Ok(())
    })?;
    pb.inc(1);

    pb.set_message(format!("{} forward+backward", case.name));
    let ad = device.clone().autodiff();
    let conv = case
        .layer()
        .init(case.cin, &ad)
        .with_context(|| case.name)?;
    let x = case.input(&ad).require_grad();
    let fwd_bwd = time(args.warmup, args.iters, min_time, || {
        let y = conv.forward(x.clone())?;
        let grads = y.backward();
        // Both gradients must exist: the input's (dgrad) and the weight's (wgrad).
        ensure!(
            x.grad(&grads).is_some() && conv.weight.val().grad(&grads).is_some(),
            "{}: backward did not produce both the input and the weight gradient",
            case.name
        );
        finish(&ad)?;
        Ok(())
    })?;
    pb.inc(1);
    Ok(CaseResult {
        case: *case,
        forward,
        fwd_bwd,
    })
}

/// Threads doing the CPU work, counted from the OS (Linux): Burn's flex backend runs on rayon's
/// pool (one thread per core) when Burn is built with its `rayon` feature, and on the calling
/// thread otherwise. `None` where it cannot be told, or on the GPU.
fn cpu_threads(device: DeviceArg) -> Option<usize> {
    if device != DeviceArg::Cpu {
        return None;
    }
    let tasks = std::fs::read_dir("/proc/self/task").ok()?.count();
    // The main thread waits while a pool works; alone, it does the work itself.
    Some(if tasks > 1 { tasks - 1 } else { 1 })
}

fn device_label(device: DeviceArg) -> &'static str {
    match device {
        DeviceArg::Cpu => "cpu (burn flex)",
        DeviceArg::Gpu => "gpu (burn vulkan)",
        DeviceArg::Cuda => "cuda (burn cubecl)",
    }
}

fn select_cases(names: &[String]) -> Result<Vec<Case>> {
    if names.is_empty() {
        return Ok(CASES.to_vec());
    }
    names
        .iter()
        .map(|name| match CASES.iter().find(|c| c.name == name) {
            Some(c) => Ok(*c),
            None => {
                let known: Vec<&str> = CASES.iter().map(|c| c.name).collect();
                bail!(
                    "unknown case \"{name}\": expected one of {}",
                    known.join(", ")
                )
            }
        })
        .collect()
}

fn conv(args: ConvArgs, device: &Device, device_arg: DeviceArg) -> Result<()> {
    ensure!(
        args.min_time.is_finite() && args.min_time >= 0.0,
        "--min-time must be a number of seconds, 0 or more"
    );
    let cases = select_cases(&args.cases)?;
    let pb = progress(2 * cases.len(), args.json);
    let mut results = Vec::new();
    for case in &cases {
        results.push(bench_case(case, &args, device, &pb)?);
    }
    pb.finish_and_clear();
    let threads = cpu_threads(device_arg);

    if args.json {
        let cases: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.case.name,
                    "shape": r.case.shape(),
                    "mflop_fwd": round(r.case.forward_flops() / 1e6, 2),
                    "forward_ms": round(r.forward.median_s * 1e3, 4),
                    "forward_gflops": round(r.forward_gflops(), 2),
                    "forward_runs": r.forward.runs,
                    "fwd_bwd_ms": round(r.fwd_bwd.median_s * 1e3, 4),
                    "fwd_bwd_gflops": round(r.fwd_bwd_gflops(), 2),
                    "fwd_bwd_runs": r.fwd_bwd.runs,
                })
            })
            .collect();
        return print_json("cases", cases, threads, device_arg);
    }

    println!(
        "conv2d on {}, {}: median of >= {} runs and >= {} s after {} warm-up runs",
        device_label(device_arg),
        threads_label(threads),
        args.iters,
        args.min_time,
        args.warmup
    );
    println!(
        "{:<14} {:<52} {:>10} {:>9} {:>11} {:>9}",
        "case", "shape", "fwd ms", "GFLOP/s", "fwd+bwd ms", "GFLOP/s"
    );
    for r in &results {
        println!(
            "{:<14} {:<52} {:>10.3} {:>9.1} {:>11.3} {:>9.1}",
            r.case.name,
            r.case.shape(),
            r.forward.median_s * 1e3,
            r.forward_gflops(),
            r.fwd_bwd.median_s * 1e3,
            r.fwd_bwd_gflops()
        );
    }
    Ok(())
}

struct InferResult {
    model: String,
    params: usize,
    batch1: Timing,
    batch16: Timing,
}

/// An ONNX file timed as the zoo's models are: the same inputs, run counts and statistics.
fn infer_onnx(path: &str, args: &InferArgs, device: &Device) -> Result<InferResult> {
    use burn::tensor::TensorData;
    let model = super::onnx::open(std::path::Path::new(path))?;
    let params = model.total_params() as usize;
    let batch = |n: usize| -> Result<TensorData> {
        Ok(
            Tensor::<4>::random([n, 3, 224, 224], Distribution::Normal(0.0, 1.0), device)
                .into_data()
                .convert::<f32>(),
        )
    };
    let run = |x: &TensorData| -> Result<()> {
        let y = model.run(std::slice::from_ref(x), device)?;
        ensure!(!y.is_empty(), "{path}: no output");
        finish(device)
    };
    let x1 = batch(1)?;
    let batch1 = time(args.warmup, args.iters1, Duration::ZERO, || run(&x1))?;
    let x16 = batch(16)?;
    let batch16 = time(
        (args.warmup / 2).max(2),
        args.iters16,
        Duration::ZERO,
        || run(&x16),
    )
    .with_context(|| format!("{path} at batch 16 (export it with a free batch axis)"))?;
    Ok(InferResult {
        model: path.to_string(),
        params,
        batch1,
        batch16,
    })
}

fn infer_model(name: &str, args: &InferArgs, device: &Device) -> Result<InferResult> {
    if super::onnx::is_onnx(name) {
        return infer_onnx(name, args, device);
    }
    let spec = super::pretrained::spec_for(name, Some(&[3, 224, 224]), 1000)?;
    let model = spec.build(device)?;
    let params = burn::module::Module::num_params(&model);
    let batch =
        |n: usize| Tensor::<4>::random([n, 3, 224, 224], Distribution::Normal(0.0, 1.0), device);
    let run = |x: &Tensor<4>| -> Result<()> {
        let y = model.forward_logits(x.clone(), Mode::Eval)?;
        ensure!(
            y.dims() == [x.dims()[0], 1000],
            "{name}: the network gave logits of {:?}, expected [{}, 1000]",
            y.dims(),
            x.dims()[0]
        );
        finish(device)
    };
    let x1 = batch(1);
    // Fixed run counts (no minimum time), as the reference scripts do.
    let batch1 = time(args.warmup, args.iters1, Duration::ZERO, || run(&x1))?;
    let x16 = batch(16);
    let batch16 = time(
        (args.warmup / 2).max(2),
        args.iters16,
        Duration::ZERO,
        || run(&x16),
    )?;
    Ok(InferResult {
        model: name.to_string(),
        params,
        batch1,
        batch16,
    })
}

fn infer(args: InferArgs, device: &Device, device_arg: DeviceArg) -> Result<()> {
    let pb = progress(args.models.len(), args.json);
    let mut results = Vec::new();
    for name in &args.models {
        pb.set_message(name.clone());
        results.push(infer_model(name, &args, device).with_context(|| name.clone())?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let threads = cpu_threads(device_arg);
    if args.json {
        let models: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "model": r.model,
                    "params": r.params,
                    "b1_median_ms": round(r.batch1.median_s * 1e3, 2),
                    "b16_median_s": round(r.batch16.median_s, 4),
                    "b16_img_per_s": round(16.0 / r.batch16.median_s, 2),
                })
            })
            .collect();
        return print_json("results", models, threads, device_arg);
    }
    println!(
        "inference at 224x224 on {}, {}: batch 1 median of {} runs, batch 16 median of {} runs",
        device_label(device_arg),
        threads_label(threads),
        args.iters1,
        args.iters16
    );
    println!(
        "{:<16} {:>12} {:>14} {:>16}",
        "model", "params", "batch 1 ms", "batch 16 img/s"
    );
    for r in &results {
        println!(
            "{:<16} {:>12} {:>14.2} {:>16.2}",
            r.model,
            r.params,
            r.batch1.median_s * 1e3,
            16.0 / r.batch16.median_s
        );
    }
    Ok(())
}

/// A progress bar over `len` steps, hidden when the output is JSON.
fn progress(len: usize, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})")
            .expect("a valid progress template"),
    )
}

/// `v` to `places` decimals, for JSON people read.
fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// One JSON object: the rows under `key`, the thread count and the device.
fn print_json(
    key: &str,
    rows: Vec<serde_json::Value>,
    threads: Option<usize>,
    device_arg: DeviceArg,
) -> Result<()> {
    let mut v = serde_json::json!({
        "threads": threads,
        "device": device_label(device_arg),
    });
    v[key] = serde_json::Value::Array(rows);
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn threads_label(threads: Option<usize>) -> String {
    match threads {
        None => "? threads".to_string(),
        Some(1) => "1 thread".to_string(),
        Some(t) => format!("{t} threads"),
    }
}

pub fn run(args: Args, device: &Device, device_arg: DeviceArg) -> Result<()> {
    match args.what {
        What::Conv(a) => conv(a, device, device_arg),
        What::Infer(a) => infer(a, device, device_arg),
        What::Serve(a) => super::load::run(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_and_shapes_follow_the_pytorch_script() {
        let resnet = CASES[0];
        assert_eq!(resnet.out_hw(), (56, 56));
        assert_eq!(
            resnet.forward_flops(),
            2.0 * 8.0 * 64.0 * 56.0 * 56.0 * 64.0 * 9.0
        );
        assert_eq!(
            resnet.shape(),
            "8x64x56x56 -> 64 k3 s1 p1 g1 (out 8x64x56x56)"
        );
        assert_eq!(CASES[1].out_hw(), (112, 112));
        assert_eq!(CASES[2].out_hw(), (24, 24));
        // Depthwise: one input channel per filter.
        let dw = CASES[5];
        assert_eq!(dw.forward_flops(), 2.0 * 8.0 * 144.0 * 56.0 * 56.0 * 9.0);
    }

    #[test]
    fn median_as_python_computes_it() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn unknown_cases_are_named() {
        let err = select_cases(&["nope".into()]).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("resnet_3x3_64"),
            "{err}"
        );
        assert_eq!(select_cases(&["dw_3x3_144".into()]).unwrap().len(), 1);
    }
}
