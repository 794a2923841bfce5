//! The cost functions against numpy: `fixtures/style/make_costs.py` computed the values from
//! channels-last activations the way the course's notebook does; convnet gets the same numbers
//! channels-first.

use burn::tensor::{Device, Tensor, TensorData};
use convnet_style::cost::{
    content_cost, gram_matrix, layer_style_cost, style_cost, total_cost, total_variation,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/style/costs.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(v: &Value, device: &Device) -> Tensor<4> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
    let values: Vec<f32> = serde_json::from_value(v["values"].clone()).unwrap();
    let shape: [usize; 4] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>() as f64
}

fn assert_close(got: f64, want: f64, what: &str) {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        rel < 1e-5,
        "{what}: convnet {got}, numpy {want} (relative error {rel:e})"
    );
}

#[test]
fn content_cost_matches_numpy() {
    let device = Device::flex();
    let f = fixture();
    let c = &f["content"];
    let got = scalar(content_cost(
        tensor(&c["a_c"], &device),
        tensor(&c["a_g"], &device),
    ));
    assert_close(got, c["cost"].as_f64().unwrap(), "J_content");
}

#[test]
fn gram_matrices_and_layer_style_costs_match_numpy() {
    let device = Device::flex();
    let f = fixture();
    for (i, layer) in f["style_layers"].as_array().unwrap().iter().enumerate() {
        let a_s = tensor(&layer["a_s"], &device);
        let gram = gram_matrix(a_s.clone());
        let want: Vec<f64> = serde_json::from_value(layer["gram_s"].clone()).unwrap();
        let got = gram.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                "layer {i} Gram: {g} vs {w}"
            );
        }
        let cost = scalar(layer_style_cost(gram, tensor(&layer["a_g"], &device)));
        assert_close(
            cost,
            layer["cost"].as_f64().unwrap(),
            &format!("J_style layer {i}"),
        );
    }
}

#[test]
fn weighted_style_cost_total_cost_and_tv_match_numpy() {
    let device = Device::flex();
    let f = fixture();
    let layers = f["style_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["lambda"].as_f64().unwrap(),
                gram_matrix(tensor(&l["a_s"], &device)),
                tensor(&l["a_g"], &device),
            )
        })
        .collect();
    let j_style = style_cost(layers).unwrap();
    assert_close(
        scalar(j_style.clone()),
        f["style_cost"].as_f64().unwrap(),
        "J_style",
    );
    let c = &f["content"];
    let j_content = content_cost(tensor(&c["a_c"], &device), tensor(&c["a_g"], &device));
    let j = total_cost(
        f["alpha"].as_f64().unwrap(),
        j_content,
        f["beta"].as_f64().unwrap(),
        j_style,
    );
    assert_close(scalar(j), f["total_cost"].as_f64().unwrap(), "J");
    let tv = scalar(total_variation(tensor(&f["tv_image"], &device)));
    assert_close(
        tv,
        f["total_variation"].as_f64().unwrap(),
        "total variation",
    );
}
