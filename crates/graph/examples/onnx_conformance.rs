//! Runs ONNX backend node tests through convnet's importer and reports each test and each
//! operator.
//!
//! ```text
//! cargo run --release -p convnet-graph --example onnx_conformance -- [--json] [--filter SUBSTR] DIR...
//! ```
//!
//! Each DIR is a node-test folder (`model.onnx` + `test_data_set_*/`) or a folder holding such
//! folders (ONNX's `backend/test/data/node`). A test passes when every output of every data
//! set matches at the ONNX runner's tolerance (rtol 1e-3, atol 1e-7). Per test it prints one
//! line, `pass`, `fail` (with the output, the max |diff| and the worst element),
//! `unsupported` (the importer refused an operator or mode at open) or `error` (any other
//! error, panics included); then a table per operator. With `--json` it prints one JSON object
//! per test instead, as each finishes, so a run that dies midway still leaves its results
//! (`scripts/onnx/conformance.sh` relies on that): `test`, `dir`, `ops` (the model's operator
//! types), `op` (the one it tests, Constant nodes aside, or null), `opset`, `status`,
//! `max_diff`, `detail`.
//!
//! Exit status: 0 when every test passed, 1 when any did not, 2 on a usage error.

#[path = "../tests/common/node_test.rs"]
mod node_test;

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::Device;
use convnet_graph::{GraphError, OnnxModel};
use node_test::{ATOL, NodeTest, RTOL};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Pass,
    Fail,
    Unsupported,
    Error,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
            Status::Error => "error",
        }
    }
}

struct Outcome {
    status: Status,
    max_diff: Option<f64>,
    detail: String,
}

impl Outcome {
    fn new(status: Status, detail: impl Into<String>) -> Self {
        Outcome {
            status,
            max_diff: None,
            detail: detail.into(),
        }
    }
}

struct Args {
    json: bool,
    filter: Option<String>,
    dirs: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        json: false,
        filter: None,
        dirs: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => args.json = true,
            "--filter" => {
                args.filter = Some(it.next().ok_or("--filter needs a value")?);
            }
            "-h" | "--help" => {
                return Err("usage: onnx_conformance [--json] [--filter SUBSTR] DIR...".into());
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => args.dirs.push(PathBuf::from(a)),
        }
    }
    if args.dirs.is_empty() {
        return Err("usage: onnx_conformance [--json] [--filter SUBSTR] DIR...".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut folders = Vec::new();
    for dir in &args.dirs {
        match node_test::test_folders(dir) {
            Ok(found) if found.is_empty() => {
                eprintln!("{}: no folder with a model.onnx", dir.display());
                return ExitCode::from(2);
            }
            Ok(found) => folders.extend(found),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(f) = &args.filter {
        folders.retain(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(f.as_str()))
        });
    }

    // A panic is reported as that test's error; the default hook would also print it.
    std::panic::set_hook(Box::new(|_| {}));
    let device = Device::default();
    let mut per_op: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut all_passed = true;
    let stdout = std::io::stdout();
    for dir in &folders {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (ops, op, opset, outcome) = match NodeTest::read(dir) {
            Err(e) => (Vec::new(), None, None, Outcome::new(Status::Error, e)),
            Ok(test) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| run_test(&test, &device)))
                    .unwrap_or_else(|p| {
                        let why = node_test::panic_message(&*p);
                        Outcome::new(Status::Error, format!("panicked: {why}"))
                    });
                let op = test.op().map(str::to_string);
                (test.ops, op, test.opset, outcome)
            }
        };
        let key = match (&op, ops.is_empty()) {
            (Some(op), _) => op.clone(),
            (None, false) => "(several operators)".to_string(),
            (None, true) => "(unreadable)".to_string(),
        };
        per_op.entry(key).or_default()[outcome.status as usize] += 1;
        all_passed &= outcome.status == Status::Pass;
        let mut out = stdout.lock();
        let written = if args.json {
            let line = serde_json::json!({
                "test": name,
                "dir": dir.display().to_string(),
                "ops": ops,
                "op": op,
                "opset": opset,
                "status": outcome.status.word(),
                "max_diff": outcome.max_diff,
                "detail": outcome.detail,
            });
            writeln!(out, "{line}")
        } else {
            let diff = outcome
                .max_diff
                .map(|d| format!(" max|diff| {d:.2e}"))
                .unwrap_or_default();
            let detail = if outcome.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", outcome.detail)
            };
            writeln!(
                out,
                "{:<11} {name} [{}{}]{diff}{detail}",
                outcome.status.word(),
                ops.join(","),
                opset.map(|o| format!(" opset {o}")).unwrap_or_default()
            )
        };
        // The reader went away (a pipe into head): nothing more to say.
        if written.and_then(|()| out.flush()).is_err() {
            return ExitCode::from(1);
        }
    }

    if !args.json {
        println!();
        println!(
            "{:<24} {:>5} {:>6} {:>6} {:>11} {:>6}  verdict",
            "operator", "cases", "passed", "failed", "unsupported", "errors"
        );
        for (op, c) in &per_op {
            let cases: usize = c.iter().sum();
            let verdict = if c[0] == cases { "pass" } else { "FAIL" };
            println!(
                "{op:<24} {cases:>5} {:>6} {:>6} {:>11} {:>6}  {verdict}",
                c[0], c[1], c[2], c[3]
            );
        }
        let total: [usize; 4] = per_op.values().fold([0; 4], |mut t, c| {
            t.iter_mut().zip(c).for_each(|(t, c)| *t += c);
            t
        });
        println!(
            "{} tests: {} passed, {} failed, {} unsupported, {} errors",
            total.iter().sum::<usize>(),
            total[0],
            total[1],
            total[2],
            total[3]
        );
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_test(test: &NodeTest, device: &Device) -> Outcome {
    let model = match OnnxModel::open(&test.model) {
        Ok(m) => m,
        Err(e @ GraphError::Unsupported { .. }) => {
            return Outcome::new(Status::Unsupported, e.to_string());
        }
        Err(e) => return Outcome::new(Status::Error, format!("open: {e}")),
    };
    let mut max_diff = 0.0_f64;
    for set in &test.data_sets {
        let got = match model.run(&set.inputs, device) {
            Ok(got) => got,
            Err(e) => return Outcome::new(Status::Error, format!("{}: run: {e}", set.name)),
        };
        if got.len() != set.outputs.len() {
            return Outcome::new(
                Status::Error,
                format!(
                    "{}: {} outputs, expected {}",
                    set.name,
                    got.len(),
                    set.outputs.len()
                ),
            );
        }
        for (i, (g, w)) in got.iter().zip(&set.outputs).enumerate() {
            let output = output_name(&model, i);
            match node_test::compare(g, w, RTOL, ATOL) {
                Ok(d) => max_diff = max_diff.max(d),
                Err(m) => {
                    return Outcome {
                        status: Status::Fail,
                        max_diff: m.max_diff,
                        detail: format!("{}: output {i} ({output}): {m}", set.name),
                    };
                }
            }
        }
    }
    Outcome {
        status: Status::Pass,
        max_diff: Some(max_diff),
        detail: String::new(),
    }
}

fn output_name(model: &OnnxModel, i: usize) -> &str {
    model.outputs().get(i).map_or("?", |o| o.name.as_str())
}
