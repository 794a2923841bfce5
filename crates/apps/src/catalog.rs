//! The models a server loads by name: `NAME=SOURCE` arguments, each opened once with its task
//! decided from the source (`specs/serve-api.md`), and described for people and pages (task,
//! input, classes, recipe, layer summary). Library logic only: the server maps these to HTTP.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_graph::OnnxModel;
use convnet_graph::onnx::GraphSummary;
use convnet_layers::{ModelSpec, Summarize};
use convnet_train::Checkpoint;
use serde::Serialize;
use serde_json::{Value, json};

use crate::classify::{Classifier, ClassifierSource, ClassifyOptions};
use crate::detect::{Detector, detector_run_of};
use crate::segment::{SegmentOptions, Segmenter, SegmenterSource};
use crate::{models, onnx};

/// The longest model name: it travels in URLs (`?model=NAME`) and page menus.
pub const MAX_NAME: usize = 64;

/// What a model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classify,
    Detect,
    Segment,
    /// face-api's networks: boxes, landmarks and encodings, named from a gallery.
    Faces,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Classify => "classify",
            Task::Detect => "detect",
            Task::Segment => "segment",
            Task::Faces => "faces",
        })
    }
}

/// One `--model NAME=SOURCE` argument, checked but not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArg {
    pub name: String,
    pub source: String,
}

impl FromStr for ModelArg {
    type Err = anyhow::Error;

    /// Splits at the first `=`: a source path may hold more of them, a name never does.
    fn from_str(arg: &str) -> Result<Self> {
        let Some((name, source)) = arg.split_once('=') else {
            bail!("--model takes NAME=SOURCE (for example lenet=runs/lenet), not '{arg}'");
        };
        check_name(name)?;
        if source.is_empty() {
            bail!(
                "--model {name}= names no source (tiny-face, M.onnx, a checkpoint or ARCH:WEIGHTS)"
            );
        }
        Ok(Self {
            name: name.to_string(),
            source: source.to_string(),
        })
    }
}

/// Names are what a URL or a menu can carry without escaping.
fn check_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        bail!("bad model name '{name}': use 1 to {MAX_NAME} letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

/// Where a model comes from, as `SOURCE` says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    TinyFace,
    Onnx(PathBuf),
    /// A checkpoint file or run directory (a classifier's, a segmenter's or a detector's).
    Checkpoint(PathBuf),
    /// A zoo architecture or spec file with weights from a file.
    Pretrained {
        arch: String,
        weights: PathBuf,
    },
}

impl Source {
    /// An existing path wins over `ARCH:WEIGHTS`, so a file whose name holds a colon is read
    /// as a file.
    fn of(text: &str) -> Result<Self> {
        if matches!(text, "tiny-face" | "tiny_face") {
            return Ok(Source::TinyFace);
        }
        if models::is_onnx(text) {
            return Ok(Source::Onnx(PathBuf::from(text)));
        }
        if Path::new(text).exists() {
            return Ok(Source::Checkpoint(PathBuf::from(text)));
        }
        match text.split_once(':') {
            Some((arch, weights)) if !arch.is_empty() && !weights.is_empty() => {
                Ok(Source::Pretrained {
                    arch: arch.to_string(),
                    weights: PathBuf::from(weights),
                })
            }
            _ => bail!(
                "{text}: no such file or directory (a model source is tiny-face, M.onnx, a checkpoint or run directory, or ARCH:WEIGHTS)"
            ),
        }
    }
}

/// An opened model, typed by its task.
pub enum Loaded {
    Classify(Classifier),
    Detect(Detector),
    Segment(Segmenter),
}

impl Loaded {
    pub fn task(&self) -> Task {
        match self {
            Loaded::Classify(_) => Task::Classify,
            Loaded::Detect(_) => Task::Detect,
            Loaded::Segment(_) => Task::Segment,
        }
    }

    pub fn classifier(&self) -> Option<&Classifier> {
        match self {
            Loaded::Classify(c) => Some(c),
            _ => None,
        }
    }

    pub fn detector(&self) -> Option<&Detector> {
        match self {
            Loaded::Detect(d) => Some(d),
            _ => None,
        }
    }

    pub fn segmenter(&self) -> Option<&Segmenter> {
        match self {
            Loaded::Segment(s) => Some(s),
            _ => None,
        }
    }
}

/// One layer (or ONNX node) of a model, as a summary table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerLine {
    pub name: String,
    pub kind: String,
    /// The output shape as text: Keras' `(None, C, H, W)` for layers, the traced or inferred
    /// shapes for an ONNX node.
    pub output: String,
    pub params: u64,
}

/// A model's layers and parameter count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub layers: Vec<LayerLine>,
    pub params: u64,
}

impl From<&convnet_layers::Summary> for ModelSummary {
    /// The model's own layers: rows inside blocks are already counted in their block's row.
    fn from(s: &convnet_layers::Summary) -> Self {
        Self {
            layers: s
                .layers
                .iter()
                .filter(|row| row.depth == 0)
                .map(|row| LayerLine {
                    name: row.name.clone(),
                    kind: row.kind.clone(),
                    output: row.output_shape.to_string(),
                    params: row.params as u64,
                })
                .collect(),
            params: s.total_params as u64,
        }
    }
}

impl From<&GraphSummary> for ModelSummary {
    fn from(s: &GraphSummary) -> Self {
        Self {
            layers: s
                .nodes
                .iter()
                .map(|n| LayerLine {
                    name: n.name.clone(),
                    kind: n.op.clone(),
                    output: n.outputs.join(" "),
                    params: n.params,
                })
                .collect(),
            params: s.total_params,
        }
    }
}

/// What a loaded model is, for `GET /v1/models` and the page.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub task: Task,
    pub source: String,
    /// `[C, H, W]`, `null` for an axis the model leaves free; `null` when unknown.
    pub input: Option<Vec<Option<usize>>>,
    /// Known before a picture runs (an ONNX model without stored names has none yet).
    pub classes: Vec<String>,
    /// How pictures become the network's input, where the model states it.
    pub recipe: Option<Value>,
    pub summary: Option<ModelSummary>,
}

/// A model opened under its name, with its description.
pub struct Entry {
    pub info: ModelInfo,
    pub model: Loaded,
}

/// Opens `arg`'s model with the task its source decides.
pub fn open(arg: &ModelArg, device: &Device) -> Result<Entry> {
    let source = Source::of(&arg.source)?;
    let described = |model, input, recipe, summary| entry(arg, model, input, recipe, summary);
    Ok(match source {
        Source::TinyFace => {
            let detector = Detector::open("tiny-face", None, None, device)?;
            detector_entry(arg, detector, device)?
        }
        Source::Checkpoint(path) if detector_run_of(&path).is_some() => {
            let detector = Detector::open(&arg.source, None, None, device)?;
            detector_entry(arg, detector, device)?
        }
        Source::Checkpoint(path) => {
            let resolved = Checkpoint::resolve(&path)?;
            let ckpt = Checkpoint::load(&resolved)?;
            let spec = ckpt.spec(&resolved)?;
            let summary = spec.summary(device)?;
            let input = Some(spec.input.iter().map(|&d| Some(d)).collect());
            let recipe = Some(json!({ "normalization": ckpt.meta.normalization }));
            let model = if is_segmenter(&spec, &summary, ckpt.meta.classes.len()) {
                let source = SegmenterSource::Checkpoint(path);
                Loaded::Segment(Segmenter::open(
                    &source,
                    &SegmentOptions::default(),
                    device,
                )?)
            } else {
                let source = ClassifierSource::Checkpoints(vec![path]);
                Loaded::Classify(Classifier::open(
                    &source,
                    &ClassifyOptions::default(),
                    device,
                )?)
            };
            described(model, input, recipe, Some((&summary).into()))
        }
        // A TF.js graph model whose outputs are a COCO detector's (CenterNet, NanoDet).
        Source::Onnx(path)
            if convnet_graph::tfjs::is_graph_model(&path)
                && let Ok(g) = crate::detect::graph::GraphDetector::open(&path, device) =>
        {
            detector_entry(arg, Detector::Graph(Box::new(g)), device)?
        }
        Source::Onnx(path) => {
            // Opened once: to decide the task, describe it, then serve it.
            let onnx_model = onnx::open(&path)?;
            let task = onnx_task(&onnx_model, &path, device)?;
            let input = onnx::image_input(&onnx_model, &path)
                .ok()
                .map(|d| d.to_vec());
            let recipe = onnx_recipe(&onnx_model, &path, task)?;
            let summary = ModelSummary::from(&onnx_model.summary(device));
            let model = match task {
                Task::Segment => Loaded::Segment(Segmenter::from_onnx(
                    onnx_model,
                    &path,
                    &SegmentOptions::default(),
                )),
                _ => Loaded::Classify(Classifier::from_onnx(
                    onnx_model,
                    &path,
                    &ClassifyOptions::default(),
                )),
            };
            described(model, input, recipe, Some(summary))
        }
        Source::Pretrained { arch, weights } => {
            let source = ClassifierSource::Pretrained {
                model: arch.clone(),
                weights,
            };
            let classifier = Classifier::open(&source, &ClassifyOptions::default(), device)?;
            let input = classifier.input();
            let dims: Vec<usize> = input.iter().flatten().copied().collect();
            let spec = models::spec_for(&arch, Some(&dims), classifier.classes().len())?;
            let summary = ModelSummary::from(&spec.summary(device)?);
            let recipe = serde_json::to_value(models::preprocess_for(&arch, None, None)?)?;
            described(
                Loaded::Classify(classifier),
                Some(input),
                Some(recipe),
                Some(summary),
            )
        }
    })
}

/// Opens every model, refusing a name given twice before anything loads.
pub fn open_all(args: &[ModelArg], device: &Device) -> Result<Vec<Entry>> {
    for (i, arg) in args.iter().enumerate() {
        if args[..i].iter().any(|a| a.name == arg.name) {
            bail!(
                "two models are named '{}': give each its own name",
                arg.name
            );
        }
    }
    args.iter()
        .map(|arg| open(arg, device).with_context(|| format!("model {}", arg.name)))
        .collect()
}

/// The description of face-api's networks loaded from `dir`.
pub fn faces_info(dir: &Path) -> ModelInfo {
    ModelInfo {
        name: "faces".into(),
        task: Task::Faces,
        source: dir.display().to_string(),
        input: None,
        classes: vec!["face".into()],
        recipe: None,
        summary: None,
    }
}

fn entry(
    arg: &ModelArg,
    model: Loaded,
    input: Option<Vec<Option<usize>>>,
    recipe: Option<Value>,
    summary: Option<ModelSummary>,
) -> Entry {
    let classes = match &model {
        Loaded::Classify(c) => c.classes(),
        Loaded::Detect(d) => d.classes(),
        Loaded::Segment(s) => s.classes(),
    };
    Entry {
        info: ModelInfo {
            name: arg.name.clone(),
            task: model.task(),
            source: arg.source.clone(),
            input,
            classes,
            recipe,
            summary,
        },
        model,
    }
}

fn detector_entry(arg: &ModelArg, detector: Detector, device: &Device) -> Result<Entry> {
    let (summary, recipe, input) = match &detector {
        Detector::TinyFace {
            model,
            preprocess,
            size,
            ..
        } => (
            ModelSummary::from(&model.summary()?),
            Some(serde_json::to_value(preprocess)?),
            vec![Some(3), Some(*size), Some(*size)],
        ),
        Detector::Trained(t) => (
            ModelSummary::from(&t.model.summary()?),
            None,
            t.head_file.input.iter().map(|&d| Some(d)).collect(),
        ),
        Detector::Graph(g) => (
            ModelSummary::from(&g.model().summary(device)),
            onnx::metadata(g.model(), "preprocessing").and_then(|p| serde_json::from_str(p).ok()),
            vec![Some(3), Some(g.side()), Some(g.side())],
        ),
    };
    Ok(entry(
        arg,
        Loaded::Detect(detector),
        Some(input),
        recipe,
        Some(summary),
    ))
}

/// A checkpoint's network is a segmenter when it outputs one score map per class at its
/// input's size (what `Segmenter::open` requires).
fn is_segmenter(spec: &ModelSpec, summary: &convnet_layers::Summary, classes: usize) -> bool {
    match spec.input.as_slice() {
        &[_, h, w] => summary.output_shape.dims() == [classes, h, w],
        _ => false,
    }
}

/// `[1, K]` out is a classifier, `[1, K, h, w]` a segmenter. A file that does not state its
/// output's rank is run once on a blank picture to see it.
fn onnx_task(model: &OnnxModel, path: &Path, device: &Device) -> Result<Task> {
    let stated = model
        .outputs()
        .first()
        .map(|o| o.shape.len())
        .filter(|&rank| rank > 0);
    let rank = match stated {
        Some(rank) => rank,
        None => {
            let recipe = onnx::recipe(model, path, None, None, (224, 224), true)?;
            let [h, w] = recipe.size;
            onnx::run_picture(model, vec![0.0; 3 * h * w], [3, h, w], device)?
                .shape()
                .len()
        }
    };
    match rank {
        2 => Ok(Task::Classify),
        4 => Ok(Task::Segment),
        _ => bail!(
            "{}: its output has rank {rank}; a classifier's is [1, K] and a segmenter's [1, K, h, w]",
            path.display()
        ),
    }
}

/// The recipe an ONNX model's pictures go through, where its input size is fixed (a free size
/// follows each picture).
fn onnx_recipe(model: &OnnxModel, path: &Path, task: Task) -> Result<Option<Value>> {
    let fixed = matches!(onnx::image_input(model, path), Ok([_, Some(_), Some(_)]));
    if !fixed {
        return Ok(None);
    }
    let whole = task == Task::Segment;
    let recipe = onnx::recipe(model, path, None, None, (224, 224), whole)?;
    Ok(Some(serde_json::to_value(recipe)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use convnet_train::checkpoint::NormalizationMeta;

    fn arg(text: &str) -> Result<ModelArg> {
        text.parse()
    }

    #[test]
    fn model_arguments_split_at_the_first_equals_sign() {
        let a = arg("seg=runs/a=b").unwrap();
        assert_eq!((a.name.as_str(), a.source.as_str()), ("seg", "runs/a=b"));
        for (bad, needle) in [
            ("lenet", "NAME=SOURCE"),
            ("=runs/x", "bad model name ''"),
            ("a b=x", "bad model name 'a b'"),
            ("x=", "names no source"),
        ] {
            let err = arg(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        assert!(arg(&format!("{}=x", "n".repeat(MAX_NAME + 1))).is_err());
    }

    #[test]
    fn sources_are_told_apart_by_their_text_and_the_files_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("odd:name.ckpt");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(Source::of("tiny-face").unwrap(), Source::TinyFace);
        assert_eq!(Source::of("m.ONNX").unwrap(), Source::Onnx("m.ONNX".into()));
        assert_eq!(
            Source::of(file.to_str().unwrap()).unwrap(),
            Source::Checkpoint(file.clone())
        );
        assert_eq!(
            Source::of("resnet18:w.pth").unwrap(),
            Source::Pretrained {
                arch: "resnet18".into(),
                weights: "w.pth".into()
            }
        );
        let err = Source::of("missing/run").unwrap_err().to_string();
        assert!(
            err.contains("no such file") && err.contains("ARCH:WEIGHTS"),
            "{err}"
        );
    }

    #[test]
    fn a_name_given_twice_is_refused_before_anything_opens() {
        let args = [arg("a=missing-one").unwrap(), arg("a=missing-two").unwrap()];
        let err = open_all(&args, &Device::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("two models are named 'a'"), "{err}");
    }

    /// A freshly initialised network of `spec` saved as a checkpoint in `dir`.
    fn checkpoint(dir: &Path, spec: &str, classes: &[&str]) -> PathBuf {
        let spec = ModelSpec::parse(spec, "test.toml").unwrap();
        let model = spec.build(&Device::default()).unwrap();
        let normalization = NormalizationMeta {
            mean: vec![0.5],
            std: vec![0.5],
        };
        let classes = classes.iter().map(|c| c.to_string()).collect();
        let ckpt = Checkpoint::untrained(&spec, &model, classes, normalization).unwrap();
        let path = dir.join("model.ckpt");
        std::fs::write(&path, ckpt.to_bytes().unwrap()).unwrap();
        path
    }

    const SEGMENTER: &str =
        "input = [1, 8, 8]\n[[layers]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 1\n";
    const CLASSIFIER: &str = "input = [1, 8, 8]\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 2\nactivation = \"softmax\"\n";

    fn opened(name: &str, source: &Path) -> Entry {
        let arg = arg(&format!("{name}={}", source.display())).unwrap();
        open(&arg, &Device::default()).unwrap()
    }

    #[test]
    fn a_checkpoint_is_a_segmenter_when_it_outputs_a_map_per_class() {
        let dir = tempfile::tempdir().unwrap();
        let seg = opened("seg", &checkpoint(dir.path(), SEGMENTER, &["bg", "fg"]));
        assert_eq!(seg.model.task(), Task::Segment);
        assert_eq!(seg.info.classes, ["bg", "fg"]);
        assert_eq!(seg.info.input, Some(vec![Some(1), Some(8), Some(8)]));
        let summary = seg.info.summary.as_ref().unwrap();
        assert_eq!(summary.params, 2 * (1 + 1));
        assert_eq!(summary.layers[0].output, "(None, 2, 8, 8)");
        assert_eq!(
            seg.info.recipe.as_ref().unwrap()["normalization"]["mean"][0],
            0.5
        );

        let dir = tempfile::tempdir().unwrap();
        let cls = opened("cls", &checkpoint(dir.path(), CLASSIFIER, &["a", "b"]));
        assert_eq!(cls.model.task(), Task::Classify);
        assert_eq!(cls.info.summary.as_ref().unwrap().params, 64 * 2 + 2);
        let json = serde_json::to_value(&cls.info).unwrap();
        assert_eq!(json["task"], "classify");
        assert_eq!(json["name"], "cls");
    }

    fn onnx_fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/onnx/models")
            .join(name)
            .join("model.onnx")
    }

    #[test]
    fn an_onnx_model_is_a_classifier_or_a_segmenter_by_its_output_rank() {
        let cls = opened("c", &onnx_fixture("classifier_opset17"));
        assert_eq!(cls.model.task(), Task::Classify);
        assert!(!cls.info.summary.as_ref().unwrap().layers.is_empty());
        let seg = opened("u", &onnx_fixture("unet_opset17"));
        assert_eq!(seg.model.task(), Task::Segment);
        assert!(seg.info.summary.as_ref().unwrap().params > 0);
    }
}
