//! The costs of neural style transfer as the course states them (Gatys et al. 2015, with the
//! course's normalisations), on activations `[N, n_C, n_H, n_W]`.
//!
//! Every function returns a one-element tensor so that the total cost stays on the autodiff
//! graph; the batch is summed over (style transfer runs on one image, N = 1).

use burn::tensor::Tensor;

/// `[n_H, n_W, n_C]` of an activation, from its `[N, C, H, W]` dims.
fn hwc(a: &Tensor<4>) -> (usize, usize, usize) {
    let [_, c, h, w] = a.dims();
    (h, w, c)
}

/// J_content = 1/(4 n_H n_W n_C) Σ (a(C) − a(G))².
pub fn content_cost(a_c: Tensor<4>, a_g: Tensor<4>) -> Tensor<1> {
    let (h, w, c) = hwc(&a_g);
    let norm = 4.0 * (h * w * c) as f64;
    (a_c - a_g).powi_scalar(2).sum().div_scalar(norm)
}

/// The Gram matrix G = A Aᵀ of each activation unrolled to A: n_C × (n_H n_W) — how strongly
/// each pair of channels fires together, wherever in the picture. `[N, n_C, n_C]`.
pub fn gram_matrix(a: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = a.dims();
    let unrolled = a.reshape([n, c, h * w]);
    unrolled.clone().matmul(unrolled.swap_dims(1, 2))
}

/// J_style^[l] = 1/(4 n_C² (n_H n_W)²) Σ (G(S) − G(G))², with the style image's Gram matrix
/// computed once beforehand and the generated image's activation `a_g` of the same layer.
pub fn layer_style_cost(gram_s: Tensor<3>, a_g: Tensor<4>) -> Tensor<1> {
    let (h, w, c) = hwc(&a_g);
    let norm = 4.0 * ((c * c) as f64) * ((h * w) as f64).powi(2);
    (gram_s - gram_matrix(a_g))
        .powi_scalar(2)
        .sum()
        .div_scalar(norm)
}

/// J_style = Σ_l λ_l J_style^[l] over `(λ_l, G(S)^[l], a(G)^[l])`.
pub fn style_cost(layers: Vec<(f64, Tensor<3>, Tensor<4>)>) -> Option<Tensor<1>> {
    layers
        .into_iter()
        .map(|(lambda, gram_s, a_g)| layer_style_cost(gram_s, a_g).mul_scalar(lambda))
        .reduce(|a, b| a + b)
}

/// The total-variation penalty: the mean squared difference between neighbouring pixels,
/// across and down, which smooths the high-frequency noise style costs leave behind.
pub fn total_variation(image: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = image.dims();
    let mut parts = Vec::new();
    if w > 1 {
        let across = image.clone().narrow(3, 1, w - 1) - image.clone().narrow(3, 0, w - 1);
        parts.push(
            across
                .powi_scalar(2)
                .sum()
                .div_scalar((n * c * h * (w - 1)) as f64),
        );
    }
    if h > 1 {
        let down = image.clone().narrow(2, 1, h - 1) - image.clone().narrow(2, 0, h - 1);
        parts.push(
            down.powi_scalar(2)
                .sum()
                .div_scalar((n * c * (h - 1) * w) as f64),
        );
    }
    parts
        .into_iter()
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| image.sum().mul_scalar(0.0))
}

/// J = α J_content + β J_style.
pub fn total_cost(alpha: f64, j_content: Tensor<1>, beta: f64, j_style: Tensor<1>) -> Tensor<1> {
    j_content.mul_scalar(alpha) + j_style.mul_scalar(beta)
}
