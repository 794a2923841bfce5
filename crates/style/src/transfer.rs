//! The optimisation loop: the generated image's pixels are the parameters, J the objective.

use burn::tensor::{Tensor, TensorData};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::cost::{content_cost, gram_matrix, layer_style_cost, total_variation};
use crate::error::StyleError;
use crate::features::FeatureNet;
use crate::optim::{Adam, Evaluation, Lbfgs};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Adam with this learning rate (the course: 0.01).
    Adam { lr: f64 },
    /// L-BFGS keeping this many curvature pairs.
    Lbfgs { history: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StyleConfig {
    /// Weight of the content cost (the course: 10).
    pub alpha: f64,
    /// Weight of the style cost (the course: 40).
    pub beta: f64,
    /// Weight of the total-variation term (0: off).
    pub tv_weight: f64,
    pub optimizer: Optimizer,
    /// The generated image starts as the content image plus uniform noise in ±`noise`
    /// (the course: 0.25), clipped to [0, 1].
    pub noise: f64,
    pub seed: u64,
}

impl Default for StyleConfig {
    fn default() -> Self {
        Self {
            alpha: 10.0,
            beta: 40.0,
            tv_weight: 0.0,
            optimizer: Optimizer::Adam { lr: 0.01 },
            noise: 0.25,
            seed: 0,
        }
    }
}

/// The cost terms at one image, unweighted except `total`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Costs {
    pub total: f64,
    pub content: f64,
    pub style: f64,
    pub tv: f64,
}

enum State {
    Adam(Adam),
    /// L-BFGS carries the evaluation of the current point into the next iteration.
    Lbfgs(Lbfgs, Option<(Costs, Tensor<4>)>),
}

/// J as a function of the pixels: the network, the targets and the weights.
struct Objective<'a> {
    net: &'a FeatureNet,
    config: StyleConfig,
    content_target: Tensor<4>,
    style_grams: Vec<Tensor<3>>,
    lambdas: Vec<f64>,
}

/// One style-transfer run: the targets from the content and style images, the generated image
/// and the optimiser's state.
pub struct StyleTransfer<'a> {
    objective: Objective<'a>,
    image: Tensor<4>,
    state: State,
    iteration: usize,
}

fn check_image(what: &str, image: &Tensor<4>) -> Result<(), StyleError> {
    let [n, c, _, _] = image.dims();
    if n != 1 || c != 3 {
        return Err(StyleError::Config(format!(
            "the {what} image must be one RGB picture [1, 3, H, W], not {:?}",
            image.dims()
        )));
    }
    Ok(())
}

impl<'a> StyleTransfer<'a> {
    /// `content` and `style` are `[1, 3, H, W]` in [0, 1], of the size `net` was built for.
    pub fn new(
        net: &'a FeatureNet,
        content: Tensor<4>,
        style: Tensor<4>,
        config: StyleConfig,
    ) -> Result<Self, StyleError> {
        check_image("content", &content)?;
        check_image("style", &style)?;
        if content.dims() != style.dims() {
            return Err(StyleError::Config(format!(
                "the style image must have the content image's size (resize it first): {:?} vs {:?}",
                style.dims(),
                content.dims()
            )));
        }
        for (name, v) in [
            ("alpha", config.alpha),
            ("beta", config.beta),
            ("tv weight", config.tv_weight),
            ("noise", config.noise),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(StyleError::Config(format!(
                    "{name} must be a non-negative number, not {v}"
                )));
            }
        }
        let content_target = net.activations(content.clone())?.content;
        let style_grams = net
            .activations(style)?
            .style
            .into_iter()
            .map(gram_matrix)
            .collect();
        let image = initial_image(content, config.noise, config.seed);
        let state = match config.optimizer {
            Optimizer::Adam { lr } => {
                if !(lr.is_finite() && lr > 0.0) {
                    return Err(StyleError::Config(format!(
                        "the learning rate must be positive, not {lr}"
                    )));
                }
                State::Adam(Adam::new(lr))
            }
            Optimizer::Lbfgs { history } => State::Lbfgs(Lbfgs::new(history), None),
        };
        Ok(Self {
            objective: Objective {
                net,
                lambdas: net.style_weights(),
                config,
                content_target,
                style_grams,
            },
            image,
            state,
            iteration: 0,
        })
    }

    /// The generated image now, `[1, 3, H, W]` in [0, 1].
    pub fn image(&self) -> Tensor<4> {
        self.image.clone()
    }

    /// Iterations done.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// Cost evaluations done (one per Adam iteration; L-BFGS's line search may use more).
    pub fn evaluations(&self) -> usize {
        match &self.state {
            State::Adam(_) => self.iteration,
            State::Lbfgs(opt, _) => opt.evaluations + usize::from(self.iteration > 0),
        }
    }

    /// J, its terms and ∂J/∂pixels at `image`.
    pub fn evaluate(&self, image: &Tensor<4>) -> Result<(Costs, Tensor<4>), StyleError> {
        self.objective.evaluate(image, self.iteration)
    }

    /// One iteration; returns the costs of the image it started from.
    pub fn step(&mut self) -> Result<Costs, StyleError> {
        let objective = &self.objective;
        let iteration = self.iteration;
        let costs = match &mut self.state {
            State::Adam(adam) => {
                let (costs, grad) = objective.evaluate(&self.image, iteration)?;
                self.image = adam.step(self.image.clone(), grad);
                costs
            }
            State::Lbfgs(opt, carried) => {
                let (costs, grad) = match carried.take() {
                    Some(c) => c,
                    None => objective.evaluate(&self.image, iteration)?,
                };
                let mut last = costs;
                let mut f = |x: &Tensor<4>| -> Result<Evaluation, StyleError> {
                    let (c, g) = objective.evaluate(x, iteration)?;
                    last = c;
                    Ok((c.total, g))
                };
                let (image, (f_new, g_new)) =
                    opt.step(self.image.clone(), (costs.total, grad), &mut f)?;
                // The accepted point's costs are the last ones evaluated, unless the line
                // search gave up and stayed put.
                let new_costs = if f_new == costs.total { costs } else { last };
                self.image = image;
                *carried = Some((new_costs, g_new));
                costs
            }
        };
        self.iteration += 1;
        Ok(costs)
    }
}

impl Objective<'_> {
    fn evaluate(
        &self,
        image: &Tensor<4>,
        iteration: usize,
    ) -> Result<(Costs, Tensor<4>), StyleError> {
        let x = image.clone().autodiff().require_grad();
        let acts = self.net.activations(x.clone())?;
        let j_content = content_cost(self.content_target.clone(), acts.content);
        let j_style = acts
            .style
            .into_iter()
            .zip(&self.style_grams)
            .zip(&self.lambdas)
            .map(|((a_g, gram_s), &lambda)| {
                layer_style_cost(gram_s.clone(), a_g).mul_scalar(lambda)
            })
            .reduce(|a, b| a + b)
            .expect("a feature net has at least one style layer");
        let mut total = j_content.clone().mul_scalar(self.config.alpha)
            + j_style.clone().mul_scalar(self.config.beta);
        let tv = if self.config.tv_weight > 0.0 {
            let tv = total_variation(x.clone());
            total = total + tv.clone().mul_scalar(self.config.tv_weight);
            Some(tv)
        } else {
            None
        };
        let grads = total.backward();
        let grad = x
            .grad(&grads)
            .expect("the pixels require a gradient")
            .without_autodiff();
        let scalar = |t: Tensor<1>| t.without_autodiff().into_scalar::<f32>() as f64;
        let costs = Costs {
            total: scalar(total),
            content: scalar(j_content),
            style: scalar(j_style),
            tv: tv.map_or(0.0, scalar),
        };
        if !costs.total.is_finite() {
            return Err(StyleError::NotFinite {
                iteration,
                value: costs.total,
            });
        }
        Ok((costs, grad))
    }
}

/// The content image plus seeded uniform noise, clipped to [0, 1].
fn initial_image(content: Tensor<4>, noise: f64, seed: u64) -> Tensor<4> {
    if noise == 0.0 {
        return content;
    }
    let dims = content.dims();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let a = noise as f32;
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-a..=a)).collect();
    let noise = Tensor::<4>::from_data(TensorData::new(values, dims), &content.device());
    (content + noise).clamp(0.0, 1.0)
}
