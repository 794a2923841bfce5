//! Optimisers over one tensor — the generated image's pixels — each step followed by the
//! projection back to [0, 1]. (Burn's optimisers update a module's parameters; here the
//! variable is the input, so the two methods are written out.)

use std::collections::VecDeque;

use burn::tensor::Tensor;

use crate::error::StyleError;

fn dot(a: &Tensor<4>, b: &Tensor<4>) -> f64 {
    (a.clone() * b.clone()).sum().into_scalar::<f32>() as f64
}

fn project(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 1.0)
}

/// Adam (Kingma and Ba 2015) with bias correction; β₁ = 0.9, β₂ = 0.999 and ε = 1e-7 as
/// in tf.keras, which the course uses.
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: i32,
    moments: Option<(Tensor<4>, Tensor<4>)>,
}

impl Adam {
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            t: 0,
            moments: None,
        }
    }

    /// `x` moved against `grad`, then clipped to [0, 1].
    pub fn step(&mut self, x: Tensor<4>, grad: Tensor<4>) -> Tensor<4> {
        self.t += 1;
        let (m, v) = match self.moments.take() {
            None => (grad.zeros_like(), grad.zeros_like()),
            Some(mv) => mv,
        };
        let m = m.mul_scalar(self.beta1) + grad.clone().mul_scalar(1.0 - self.beta1);
        let v = v.mul_scalar(self.beta2) + grad.powi_scalar(2).mul_scalar(1.0 - self.beta2);
        let m_hat = m.clone().div_scalar(1.0 - self.beta1.powi(self.t));
        let v_hat = v.clone().div_scalar(1.0 - self.beta2.powi(self.t));
        let update = m_hat
            .div(v_hat.sqrt().add_scalar(self.eps))
            .mul_scalar(self.lr);
        self.moments = Some((m, v));
        project(x - update)
    }
}

/// What the cost function returns for a point: J and ∂J/∂x.
pub type Evaluation = (f64, Tensor<4>);

/// Limited-memory BFGS (Nocedal and Wright, algorithm 7.4) with a backtracking Armijo line
/// search along the projected path `clip(x + t d)`, since the pixels must stay in [0, 1].
pub struct Lbfgs {
    history: usize,
    /// `(s, y, 1 / sᵀy)`, oldest first.
    pairs: VecDeque<(Tensor<4>, Tensor<4>, f64)>,
    /// Largest pixel change of a steepest-descent step (the first step, and after a reset),
    /// before the quasi-Newton scaling knows the curvature.
    first_step: f64,
    /// Cost evaluations so far, line-search trials included.
    pub evaluations: usize,
}

impl Lbfgs {
    pub fn new(history: usize) -> Self {
        Self {
            history: history.max(1),
            pairs: VecDeque::new(),
            first_step: 0.05,
            evaluations: 0,
        }
    }

    /// The two-loop recursion: −H g with H the inverse-Hessian estimate from the pairs.
    fn direction(&self, grad: &Tensor<4>) -> Tensor<4> {
        let Some((s_last, y_last, _)) = self.pairs.back() else {
            let max = grad.clone().abs().max().into_scalar::<f32>() as f64;
            return grad.clone().mul_scalar(-self.first_step / max.max(1e-30));
        };
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q = q - y.clone().mul_scalar(a);
            alphas.push(a);
        }
        let gamma = dot(s_last, y_last) / dot(y_last, y_last).max(1e-30);
        let mut r = q.mul_scalar(gamma);
        for ((s, y, rho), a) in self.pairs.iter().zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &r);
            r = r + s.clone().mul_scalar(a - b);
        }
        r.neg()
    }

    /// One iteration from `x` with its evaluation `(fx, gx)`; returns the new point and its
    /// evaluation. `f` evaluates J and its gradient at a point.
    pub fn step(
        &mut self,
        x: Tensor<4>,
        (fx, gx): Evaluation,
        f: &mut dyn FnMut(&Tensor<4>) -> Result<Evaluation, StyleError>,
    ) -> Result<(Tensor<4>, Evaluation), StyleError> {
        let mut d = self.direction(&gx);
        if dot(&gx, &d) >= 0.0 {
            // Curvature pairs from a non-convex stretch can point uphill: start afresh.
            self.pairs.clear();
            d = self.direction(&gx);
        }
        let mut t = 1.0;
        for _ in 0..20 {
            let candidate = project(x.clone() + d.clone().mul_scalar(t));
            let step = candidate.clone() - x.clone();
            let (fc, gc) = f(&candidate)?;
            self.evaluations += 1;
            if fc.is_finite() && fc <= fx + 1e-4 * dot(&gx, &step) {
                let y = gc.clone() - gx.clone();
                let sy = dot(&step, &y);
                if sy > 1e-10 {
                    self.pairs.push_back((step, y, 1.0 / sy));
                    if self.pairs.len() > self.history {
                        self.pairs.pop_front();
                    }
                }
                return Ok((candidate, (fc, gc)));
            }
            t *= 0.5;
        }
        // No decrease along this direction: forget the curvature and stay put; the next
        // iteration takes a steepest-descent step.
        self.pairs.clear();
        Ok((x, (fx, gx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// f(x) = Σ w_i (x_i − c_i)² with its minimum inside the box: both methods must get there.
    fn quadratic(x: &Tensor<4>) -> Evaluation {
        let device = x.device();
        let c = Tensor::<4>::from_data(
            TensorData::new(vec![0.2f32, 0.7, 0.5, 0.9], [1, 1, 2, 2]),
            &device,
        );
        let w = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 10.0, 3.0, 0.5], [1, 1, 2, 2]),
            &device,
        );
        let diff = x.clone() - c;
        let f = (diff.clone().powi_scalar(2) * w.clone())
            .sum()
            .into_scalar::<f32>() as f64;
        (f, diff.mul(w).mul_scalar(2.0))
    }

    fn start() -> Tensor<4> {
        Tensor::<4>::from_data(
            TensorData::new(vec![0.9f32, 0.1, 0.0, 0.3], [1, 1, 2, 2]),
            &Device::flex(),
        )
    }

    #[test]
    fn adam_minimises_a_quadratic_and_stays_in_the_box() {
        let mut adam = Adam::new(0.05);
        let mut x = start();
        for _ in 0..400 {
            let (_, g) = quadratic(&x);
            x = adam.step(x, g);
        }
        assert!(quadratic(&x).0 < 1e-3, "f = {}", quadratic(&x).0);
    }

    #[test]
    fn lbfgs_minimises_a_quadratic_in_few_steps() {
        let mut opt = Lbfgs::new(5);
        let mut x = start();
        let mut eval = quadratic(&x);
        for _ in 0..15 {
            (x, eval) = opt.step(x, eval, &mut |x| Ok(quadratic(x))).unwrap();
        }
        assert!(eval.0 < 1e-6, "f = {}", eval.0);
    }

    #[test]
    fn lbfgs_projects_onto_the_box() {
        // The minimum (−1, 2) lies outside [0, 1]: the answer is the nearest corner (0, 1).
        let f = |x: &Tensor<4>| {
            let c = Tensor::<4>::from_data(
                TensorData::new(vec![-1.0f32, 2.0], [1, 1, 1, 2]),
                &x.device(),
            );
            let diff = x.clone() - c;
            (
                diff.clone().powi_scalar(2).sum().into_scalar::<f32>() as f64,
                diff.mul_scalar(2.0),
            )
        };
        let mut x = Tensor::<4>::from_data(
            TensorData::new(vec![0.5f32, 0.5], [1, 1, 1, 2]),
            &Device::flex(),
        );
        let mut opt = Lbfgs::new(5);
        let mut eval = f(&x);
        for _ in 0..10 {
            (x, eval) = opt.step(x, eval, &mut |x| Ok(f(x))).unwrap();
        }
        let v = x.into_data().try_to_vec::<f32>().unwrap();
        assert!(v[0].abs() < 1e-6 && (v[1] - 1.0).abs() < 1e-6, "{v:?}");
    }
}
