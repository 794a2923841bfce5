//! The ONNX importer against independent references, on the committed fixtures:
//!
//! - `fixtures/onnx/node/`: ONNX's own backend node tests (outputs of ONNX's reference
//!   implementation), compared by the ONNX runner's rule (rtol 1e-3, atol 1e-7);
//! - `fixtures/onnx/models/`: small PyTorch CNNs exported with `torch.onnx.export`, with ONNX
//!   Runtime's outputs, compared at max |diff| <= 1e-4 * max |reference|.
//!
//! Both are made by `scripts/onnx/make_fixtures.py`. Then files and inputs a user could get
//! wrong: each must be a one-line error, never a panic.

#[path = "common/node_test.rs"]
mod node_test;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device, TensorData};
use convnet_graph::{GraphError, OnnxModel};
use node_test::{ATOL, NodeTest, RTOL};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/onnx")
}

fn folders(sub: &str) -> Vec<PathBuf> {
    let root = fixtures().join(sub);
    let found = node_test::test_folders(&root).unwrap_or_else(|e| panic!("{e}"));
    assert!(!found.is_empty(), "{}: no fixtures", root.display());
    found
}

/// How each output is judged: `Onnx` is the runner's rule; `Scaled(r)` allows
/// `r * max |reference|` on every element of that output.
#[derive(Clone, Copy)]
enum Tolerance {
    Onnx,
    Scaled(f64),
}

/// Runs every data set of the test in `dir`; `Err` says what went wrong, in one line.
fn check_folder(dir: &Path, tolerance: Tolerance, device: &Device) -> Result<(), String> {
    let test = NodeTest::read(dir)?;
    let model = OnnxModel::open(&test.model).map_err(|e| format!("open: {e}"))?;
    for set in &test.data_sets {
        let got = model
            .run(&set.inputs, device)
            .map_err(|e| format!("{}: run: {e}", set.name))?;
        if got.len() != set.outputs.len() {
            return Err(format!(
                "{}: {} outputs, expected {}",
                set.name,
                got.len(),
                set.outputs.len()
            ));
        }
        for (i, (g, w)) in got.iter().zip(&set.outputs).enumerate() {
            let (rtol, atol) = match tolerance {
                Tolerance::Onnx => (RTOL, ATOL),
                Tolerance::Scaled(r) => (0.0, r * node_test::max_abs(w)?),
            };
            node_test::compare(g, w, rtol, atol)
                .map_err(|m| format!("{}: output {i}: {m}", set.name))?;
        }
    }
    Ok(())
}

/// Node tests convnet does not pass yet, each with the words its one-line error must hold. The
/// test fails when one of them starts passing (take it off the list) or fails differently.
const KNOWN: &[(&str, &str)] = &[
    // Refused by the parser (onnx-ir 0.22) before convnet sees the graph.
    ("test_matmul_1d_1d", "rank-0"),
];

/// Checks every folder and fails once, listing every failure (a panic included, so one
/// crashing case does not hide the others); `known` failures must fail as listed.
fn check_all(sub: &str, tolerance: Tolerance, known: &[(&str, &str)]) {
    let device = Device::default();
    let all = folders(sub);
    let failures: Vec<String> = all
        .iter()
        .filter_map(|dir| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let outcome = catch_unwind(AssertUnwindSafe(|| check_folder(dir, tolerance, &device)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", node_test::panic_message(&*p))));
            let expected = known.iter().find(|(n, _)| *n == name);
            match (outcome, expected) {
                (Ok(()), None) => None,
                (Ok(()), Some(_)) => {
                    Some(format!("{name}: passes now: take it off the known list"))
                }
                (Err(e), Some((_, words))) if e.contains(words) && !e.contains("panicked") => None,
                (Err(e), _) => Some(format!("{name}: {e}")),
            }
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {sub} fixtures fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn onnx_node_tests_match_the_onnx_reference() {
    check_all("node", Tolerance::Onnx, KNOWN);
}

#[test]
fn pytorch_exports_match_onnx_runtime() {
    check_all("models", Tolerance::Scaled(1e-4), &[]);
}

/// The dynamic-batch exports say so in their input shapes and carry data sets at two batch
/// sizes (the classifier at 1 and 3): one graph run at two batch sizes.
#[test]
fn dynamic_batch_exports_run_at_two_batch_sizes() {
    for (name, want) in [
        ("classifier_opset13", [1, 3]),
        ("classifier_opset17", [1, 3]),
        ("two_inputs_opset17", [2, 3]),
    ] {
        let dir = fixtures().join("models").join(name);
        let test = NodeTest::read(&dir).unwrap_or_else(|e| panic!("{e}"));
        let batches: Vec<usize> = test
            .data_sets
            .iter()
            .map(|s| s.inputs[0].shape()[0])
            .collect();
        assert_eq!(batches, want, "{name}");
        let model = OnnxModel::open(&test.model).unwrap_or_else(|e| panic!("{name}: {e}"));
        for input in model.inputs() {
            assert_eq!(
                input.shape[0], None,
                "{name}: input {} batch axis",
                input.name
            );
        }
        check_folder(&dir, Tolerance::Scaled(1e-4), &Device::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The exports' graph signature and metadata as `make_fixtures.py` wrote them.
#[test]
fn inputs_outputs_and_metadata_are_the_files() {
    let model = OnnxModel::open(fixtures().join("models/two_inputs_opset13/model.onnx"))
        .unwrap_or_else(|e| panic!("{e}"));
    let names = |infos: &[convnet_graph::TensorInfo]| -> Vec<String> {
        infos.iter().map(|i| i.name.clone()).collect()
    };
    assert_eq!(names(model.inputs()), ["x0", "x1"]);
    assert_eq!(names(model.outputs()), ["y0", "y1"]);
    assert_eq!(model.inputs()[0].dtype, DType::F32);
    assert_eq!(model.inputs()[0].shape, [None, Some(4), Some(6)]);
    assert_eq!(model.inputs()[1].shape, [None, Some(6), Some(5)]);
    assert!(
        model
            .metadata()
            .iter()
            .any(|(k, v)| k == "fixture" && v == "two_inputs_opset13"),
        "{:?}",
        model.metadata()
    );
}

// ---------------------------------------------------------------------------------------------
// Bad files and bad inputs

fn assert_one_line(e: &GraphError, wants: &[&str]) {
    let text = e.to_string();
    assert!(
        !text.is_empty() && !text.contains('\n'),
        "not one line: {text:?}"
    );
    for want in wants {
        assert!(text.contains(want), "{text:?} does not mention {want:?}");
    }
}

fn open_bytes(bytes: &[u8]) -> (tempfile::TempDir, PathBuf, Result<OnnxModel, GraphError>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let result = OnnxModel::open(&path);
    (dir, path, result)
}

fn refused(bytes: &[u8]) {
    let (_dir, path, result) = open_bytes(bytes);
    match result {
        Ok(_) => panic!("{} bytes were accepted as a model", bytes.len()),
        Err(e) => assert_one_line(&e, &[&path.display().to_string()]),
    }
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("models/conv2d_opset17/model.onnx"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_truncated_model_is_a_one_line_error() {
    let bytes = model_bytes();
    // Cut inside the weights, inside the graph's first bytes, and one byte short.
    for keep in [bytes.len() / 2, 40, bytes.len() - 1] {
        refused(&bytes[..keep]);
    }
}

#[test]
fn random_bytes_are_a_one_line_error() {
    // splitmix64, so the bytes are the same on every run.
    let mut state = 0x5eed_u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect();
    refused(&bytes);
}

#[test]
fn an_empty_file_is_a_one_line_error() {
    refused(&[]);
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("absent.onnx");
    match OnnxModel::open(&path) {
        Ok(_) => panic!("a missing file opened"),
        Err(e) => assert_one_line(&e, &[&path.display().to_string()]),
    }
}

/// conv1d_opset17 takes one float input `x` of shape [2, 4, 16].
fn conv1d() -> OnnxModel {
    OnnxModel::open(fixtures().join("models/conv1d_opset17/model.onnx"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run_err(model: &OnnxModel, inputs: &[TensorData]) -> GraphError {
    match model.run(inputs, &Device::default()) {
        Ok(out) => panic!("ran on bad inputs: {} outputs", out.len()),
        Err(e) => e,
    }
}

#[test]
fn an_input_of_the_wrong_rank_is_a_one_line_error() {
    let model = conv1d();
    let e = run_err(&model, &[TensorData::zeros::<f32, _>([4, 16])]);
    assert_one_line(&e, &["x"]);
}

#[test]
fn an_input_of_the_wrong_size_is_a_one_line_error() {
    let model = conv1d();
    let e = run_err(&model, &[TensorData::zeros::<f32, _>([2, 5, 16])]);
    assert_one_line(&e, &["x"]);
}

#[test]
fn an_input_of_the_wrong_type_is_a_one_line_error() {
    let model = conv1d();
    let e = run_err(&model, &[TensorData::zeros::<i64, _>([2, 4, 16])]);
    assert_one_line(&e, &["x"]);
}

#[test]
fn too_few_or_too_many_inputs_are_a_one_line_error() {
    let model = OnnxModel::open(fixtures().join("models/two_inputs_opset17/model.onnx"))
        .unwrap_or_else(|e| panic!("{e}"));
    let a = TensorData::zeros::<f32, _>([1, 4, 6]);
    let b = TensorData::zeros::<f32, _>([1, 6, 5]);
    assert_one_line(&run_err(&model, std::slice::from_ref(&a)), &["x0", "x1"]);
    assert_one_line(&run_err(&model, &[]), &["x0", "x1"]);
    assert_one_line(&run_err(&model, &[a.clone(), b.clone(), a]), &["x0", "x1"]);
    // The same arrays, in order, do run: the refusals above are about the count.
    let out = model
        .run(
            &[TensorData::zeros::<f32, _>([1, 4, 6]), b],
            &Device::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// The reader and the comparison themselves, so a fixture failure means the importer

fn data_set(test: &str) -> node_test::DataSet {
    let dir = fixtures().join("node").join(test);
    let mut read = NodeTest::read(&dir).unwrap_or_else(|e| panic!("{e}"));
    read.data_sets.remove(0)
}

/// ONNX's `test_add*` cases are elementwise sums of same-shaped inputs: the reader must give
/// back values for which that holds, in each element type (raw little-endian data).
#[test]
fn the_reader_gives_back_onnx_add_tests_as_sums() {
    let set = data_set("test_add");
    let [x, y, z] = [&set.inputs[0], &set.inputs[1], &set.outputs[0]].map(|d| {
        assert_eq!(d.dtype(), DType::F32);
        assert_eq!(d.shape().as_slice(), [3, 4, 5]);
        d.try_to_vec::<f32>().unwrap_or_else(|e| panic!("{e:?}"))
    });
    assert_eq!(
        x[0], 1.764_052_4,
        "numpy's first standard normal for seed 0"
    );
    for i in 0..z.len() {
        assert_eq!(z[i], x[i] + y[i], "element {i}");
    }

    let set = data_set("test_add_int8");
    let [x, y, z] = [&set.inputs[0], &set.inputs[1], &set.outputs[0]]
        .map(|d| d.try_to_vec::<i8>().unwrap_or_else(|e| panic!("{e:?}")));
    assert!(
        x.iter()
            .zip(&y)
            .zip(&z)
            .all(|((a, b), c)| a.wrapping_add(*b) == *c)
    );

    let set = data_set("test_add_uint64");
    let [x, y, z] = [&set.inputs[0], &set.inputs[1], &set.outputs[0]]
        .map(|d| d.try_to_vec::<u64>().unwrap_or_else(|e| panic!("{e:?}")));
    assert_eq!(x.len(), 60);
    assert!(x.iter().zip(&y).zip(&z).all(|((a, b), c)| a + b == *c));

    // Dropout in inference: the mask output is all true, a bool tensor.
    let set = data_set("test_dropout_default_mask");
    let mask = &set.outputs[1];
    assert!(matches!(mask.dtype(), DType::Bool(_)));
    let mask = mask
        .try_to_vec::<bool>()
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(mask.len() == 60 && mask.iter().all(|&m| m));
}

/// The typed fields (no raw_data) that ONNX also allows, each element type in the field the
/// ONNX spec stores it in.
#[test]
fn the_reader_takes_typed_fields() {
    let proto = |data_type: i32, dims: &[i64]| {
        let mut p = onnx_ir::TensorProto::new();
        p.data_type = data_type;
        p.dims = dims.to_vec();
        p
    };
    let read =
        |p: &onnx_ir::TensorProto| node_test::tensor_data(p).unwrap_or_else(|e| panic!("{e}"));

    let mut p = proto(1, &[2, 2]);
    p.float_data = vec![1.0, -2.5, 3.25, 0.0];
    let d = read(&p);
    assert_eq!(d.shape().as_slice(), [2, 2]);
    assert_eq!(d.try_to_vec::<f32>().ok(), Some(vec![1.0, -2.5, 3.25, 0.0]));

    let mut p = proto(3, &[3]); // int8, widened to int32
    p.int32_data = vec![-128, 0, 127];
    assert_eq!(read(&p).try_to_vec::<i8>().ok(), Some(vec![-128, 0, 127]));
    p.int32_data = vec![-129, 0, 127];
    assert!(node_test::tensor_data(&p).is_err(), "-129 is no int8");

    let mut p = proto(10, &[2]); // float16 bits in int32_data
    p.int32_data = vec![0x3C00, 0xC000];
    let halves = read(&p)
        .try_to_vec::<half::f16>()
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        halves.iter().map(|h| h.to_f32()).collect::<Vec<_>>(),
        [1.0, -2.0]
    );

    let mut p = proto(9, &[3]); // bool in int32_data
    p.int32_data = vec![1, 0, 1];
    assert_eq!(
        read(&p).try_to_vec::<bool>().ok(),
        Some(vec![true, false, true])
    );

    let mut p = proto(7, &[]); // an int64 scalar
    p.int64_data = vec![-7];
    let d = read(&p);
    assert_eq!(d.shape().num_dims(), 0);
    assert_eq!(d.try_to_vec::<i64>().ok(), Some(vec![-7]));

    let mut p = proto(12, &[1]); // uint32 in uint64_data
    p.uint64_data = vec![4_000_000_000];
    assert_eq!(read(&p).try_to_vec::<u32>().ok(), Some(vec![4_000_000_000]));

    let mut p = proto(11, &[1]);
    p.raw_data = 0.1_f64.to_le_bytes().to_vec().into();
    assert_eq!(read(&p).try_to_vec::<f64>().ok(), Some(vec![0.1]));

    let p = proto(1, &[0, 3]); // empty: neither field set
    assert_eq!(read(&p).num_elements(), 0);

    // Counts that disagree with the shape, a negative and an overflowing dimension.
    let mut p = proto(1, &[3]);
    p.float_data = vec![1.0, 2.0];
    assert!(node_test::tensor_data(&p).is_err());
    let mut p = proto(1, &[2]);
    p.raw_data = vec![0u8; 7].into();
    assert!(node_test::tensor_data(&p).is_err());
    assert!(node_test::tensor_data(&proto(1, &[-1])).is_err());
    assert!(node_test::tensor_data(&proto(1, &[i64::MAX, i64::MAX])).is_err());
    assert!(
        node_test::tensor_data(&proto(8, &[1])).is_err(),
        "strings are not read"
    );
}

/// numpy's assert_allclose rule, by hand: |got - want| <= atol + rtol |want|.
#[test]
fn the_comparison_is_the_onnx_runners_rule() {
    let f = |v: Vec<f32>| TensorData::new(v, [3]);
    let want = f(vec![1000.0, 0.0, f32::NAN]);
    // 1000 * 1e-3 + 1e-7 allows ~1.0 at 1000; at 0 only 1e-7.
    assert!(node_test::compare(&f(vec![1000.9, 5e-8, f32::NAN]), &want, RTOL, ATOL).is_ok());
    let off = node_test::compare(&f(vec![1001.5, 0.0, f32::NAN]), &want, RTOL, ATOL);
    let off = off.expect_err("1.5 off at 1000");
    assert!((off.max_diff.unwrap_or(0.0) - 1.5).abs() < 1e-3, "{off}");
    assert!(off.message.contains("[0]"), "{off}");
    assert!(node_test::compare(&f(vec![1000.0, 1e-6, f32::NAN]), &want, RTOL, ATOL).is_err());
    assert!(node_test::compare(&f(vec![1000.0, 0.0, 1.0]), &want, RTOL, ATOL).is_err());
    let inf = f(vec![f32::INFINITY, 0.0, 0.0]);
    assert!(node_test::compare(&inf, &inf, RTOL, ATOL).is_ok());
    assert!(node_test::compare(&f(vec![f32::NEG_INFINITY, 0.0, 0.0]), &inf, RTOL, ATOL).is_err());
    // Shape, element type and integer exactness.
    assert!(
        node_test::compare(
            &TensorData::new(vec![1000.0_f32, 0.0, 0.0], [1, 3]),
            &want,
            RTOL,
            ATOL
        )
        .is_err()
    );
    assert!(
        node_test::compare(
            &TensorData::new(vec![1000.0_f64, 0.0, f64::NAN], [3]),
            &want,
            RTOL,
            ATOL
        )
        .is_err()
    );
    let ints = |v: Vec<i64>| TensorData::new(v, [2]);
    assert!(
        node_test::compare(&ints(vec![1 << 60, 3]), &ints(vec![1 << 60, 3]), RTOL, ATOL).is_ok()
    );
    assert!(
        node_test::compare(
            &ints(vec![(1 << 60) + 1, 3]),
            &ints(vec![1 << 60, 3]),
            RTOL,
            ATOL
        )
        .is_err()
    );
}

/// ONNX's node tests feed Resize's `roi` as a graph input; exported models hold it as a
/// constant, which the parser refuses and convnet takes off the node before parsing. The
/// tf_crop_and_resize tests with their roi turned into an initializer, then into a Constant
/// node, must give ONNX's reference outputs still.
#[test]
fn a_constant_roi_gives_the_reference_crop() {
    use onnx_ir::{AttributeProto, Message, ModelProto, NodeProto};
    let device = Device::default();
    for name in [
        "test_resize_tf_crop_and_resize",
        "test_resize_tf_crop_and_resize_axes_3_2",
        "test_resize_tf_crop_and_resize_extrapolation_value",
    ] {
        let dir = fixtures().join("node").join(name);
        let test = NodeTest::read(&dir).unwrap_or_else(|e| panic!("{e}"));
        let bytes = std::fs::read(&test.model).unwrap_or_else(|e| panic!("{e}"));
        let set = &test.data_sets[0];
        // Inputs X, roi, sizes: roi becomes a constant.
        let roi_pb = dir.join(&set.name).join("input_1.pb");
        let roi_bytes = std::fs::read(&roi_pb).unwrap_or_else(|e| panic!("{e}"));
        let mut roi =
            onnx_ir::TensorProto::parse_from_bytes(&roi_bytes).unwrap_or_else(|e| panic!("{e}"));
        for as_node in [false, true] {
            let mut model = ModelProto::parse_from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
            let graph = model.graph.as_mut().unwrap_or_else(|| panic!("no graph"));
            roi.name = graph.input[1].name.clone();
            graph.input.remove(1);
            if as_node {
                let mut value = AttributeProto::new();
                value.name = "value".into();
                value.type_ = onnx_ir::AttributeType::TENSOR.into();
                value.t = Some(roi.clone()).into();
                let mut node = NodeProto::new();
                node.op_type = "Constant".into();
                node.output = vec![roi.name.clone()];
                node.attribute = vec![value];
                graph.node.insert(0, node);
            } else {
                graph.initializer.push(roi.clone());
            }
            let file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
            let written = model.write_to_bytes().unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(file.path(), written).unwrap_or_else(|e| panic!("{e}"));
            let m = OnnxModel::open(file.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let inputs = [set.inputs[0].clone(), set.inputs[2].clone()];
            let got = m
                .run(&inputs, &device)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            node_test::compare(&got[0], &set.outputs[0], RTOL, ATOL)
                .unwrap_or_else(|e| panic!("{name} (roi as a Constant node: {as_node}): {e}"));
        }
    }
}
