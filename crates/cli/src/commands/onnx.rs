//! ONNX files on the command line: `convnet summary M.onnx`, `convnet infer --model M.onnx`,
//! and the helpers `predict` and `segment` use to run one. The graph itself is
//! `convnet_graph::OnnxModel`'s.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device, TensorData};
use convnet_data::{NpyArray, NpyData, read_npy};

pub use convnet_apps::models::is_onnx;
pub use convnet_apps::onnx::*;
use serde_json::json;

/// A `.npy` array as a tensor of its own element type.
fn npy_to_data(array: NpyArray) -> TensorData {
    let shape = array.shape;
    match array.data {
        NpyData::F32(v) => TensorData::new(v, shape),
        NpyData::F64(v) => TensorData::new(v, shape),
        NpyData::I64(v) => TensorData::new(v, shape),
        NpyData::U8(v) => TensorData::new(v, shape),
        NpyData::Bool(v) => TensorData::new(v, shape),
    }
}

/// An output as `.npy`: floats as float32, integers as int64, booleans as bool.
fn data_to_npy(data: TensorData) -> Result<NpyArray> {
    let shape = data.shape().to_vec();
    let dtype = data.dtype();
    let data = if dtype.is_float() {
        NpyData::F32(
            data.convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        )
    } else if matches!(dtype, DType::Bool(_)) {
        NpyData::Bool(
            data.try_to_vec::<bool>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        )
    } else {
        NpyData::I64(
            data.convert::<i64>()
                .try_to_vec::<i64>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        )
    };
    Ok(NpyArray { shape, data })
}

/// `convnet summary M.onnx`.
pub fn summary(path: &Path, json: bool, device: &Device) -> Result<()> {
    let model = open(path)?;
    let summary = model.summary(device);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// `convnet infer --model M.onnx --input A.npy … --output Y.npy …`.
pub fn infer(
    path: &Path,
    inputs: &[PathBuf],
    outputs: &[PathBuf],
    json: bool,
    device: &Device,
) -> Result<()> {
    let model = open(path)?;
    let names = |list: &[convnet_graph::TensorInfo]| {
        list.iter()
            .map(|t| format!("{} {}", t.name, t.shape_text()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if inputs.len() != model.inputs().len() {
        bail!(
            "{} takes {} input(s) ({}); {} --input given",
            path.display(),
            model.inputs().len(),
            names(model.inputs()),
            inputs.len()
        );
    }
    if outputs.len() != model.outputs().len() {
        bail!(
            "{} gives {} output(s) ({}); give one --output file for each ({} given)",
            path.display(),
            model.outputs().len(),
            names(model.outputs()),
            outputs.len()
        );
    }
    let data = inputs
        .iter()
        .map(|p| {
            read_npy(p)
                .map(npy_to_data)
                .with_context(|| format!("cannot use {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let input_shapes: Vec<Vec<usize>> = data.iter().map(|d| d.shape().to_vec()).collect();
    let results = model.run(&data, device)?;
    let mut shapes = Vec::new();
    for (result, file) in results.into_iter().zip(outputs) {
        let array = data_to_npy(result)?;
        shapes.push(array.shape.clone());
        array.write(file)?;
    }
    if json {
        let described =
            |infos: &[convnet_graph::TensorInfo], shapes: &[Vec<usize>], files: &[PathBuf]| {
                infos
                    .iter()
                    .zip(shapes)
                    .zip(files)
                    .map(|((i, s), f)| json!({"name": i.name, "shape": s, "file": f}))
                    .collect::<Vec<_>>()
            };
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": path,
                "inputs": described(model.inputs(), &input_shapes, inputs),
                "outputs": described(model.outputs(), &shapes, outputs),
            }))?
        );
    } else {
        for ((info, shape), file) in model.outputs().iter().zip(&shapes).zip(outputs) {
            println!("{}: {:?} written to {}", info.name, shape, file.display());
        }
    }
    Ok(())
}
