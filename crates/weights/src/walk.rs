//! The one walk over a model's parameters: each with its PyTorch key, its PyTorch shape and a
//! slot that reads or replaces it, converting between PyTorch's layout and convnet's.
//! [`crate::expected`], [`crate::load`] and [`crate::to_state_dict`] all go through
//! [`entries`].
//!
//! Keys: a layer named `n` inside blocks named `a` and `b` (a residual's body or shortcut, a
//! concat's branches, an auxiliary head) owns `a.b.n.<suffix>`; the body / shortcut / branch
//! lists add nothing themselves. Suffixes are PyTorch's: `weight` and `bias` for convolutions
//! and linear layers, also `running_mean` and `running_var` for batch norms,
//! `depthwise.weight` / `pointwise.weight` for a separable convolution, `fc1.weight` ...
//! `fc2.bias` for squeeze-and-excitation.

use burn::module::{Module, ModuleVisitor, Param, ParamId, RunningState};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use convnet_layers::{Conv, ConvTranspose, SequentialLayer, Stack};

/// Where a parameter lives, and how its layout differs from PyTorch's.
pub(crate) enum Slot<'m> {
    /// Stored as PyTorch stores it (convolution kernels `[O, I/g, k...]`, transposed
    /// convolution kernels `[I, O/g, k...]`, biases, batch-norm affine parameters).
    P1(&'m mut Param<Tensor<1>>),
    P3(&'m mut Param<Tensor<3>>),
    P4(&'m mut Param<Tensor<4>>),
    P5(&'m mut Param<Tensor<5>>),
    /// Burn's linear weight, `[in, out]`; PyTorch's is `[out, in]` for `nn.Linear` and
    /// `[out, in, 1, 1]` for the 1x1 convolutions of a squeeze-and-excitation block
    /// (`conv1x1`), which loads from either.
    Linear {
        weight: &'m mut Param<Tensor<2>>,
        conv1x1: bool,
    },
    /// A batch-norm running statistic (a buffer, not a parameter).
    Running(&'m mut RunningState<Tensor<1>>),
}

/// One parameter of the model.
pub(crate) struct Entry<'m> {
    /// The PyTorch key (`layer1.0.conv1.weight`).
    pub key: String,
    /// The layer's own path (`layer1.0.conv1`).
    pub layer: String,
    /// Whether the layer is a dense (fully connected) layer.
    pub dense: bool,
    pub slot: Slot<'m>,
}

/// Every parameter of `stack`, depth first, in the model's order.
pub(crate) fn entries(stack: &mut Stack) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    walk(stack, "", &mut out);
    out
}

fn walk<'m>(stack: &'m mut Stack, prefix: &str, out: &mut Vec<Entry<'m>>) {
    use SequentialLayer as L;
    for (name, layer) in stack.names.iter().zip(stack.layers.iter_mut()) {
        let path = format!("{prefix}{name}");
        let mut push = |suffix: &str, dense: bool, slot: Slot<'m>| {
            out.push(Entry {
                key: format!("{path}.{suffix}"),
                layer: path.clone(),
                dense,
                slot,
            })
        };
        match layer {
            L::Conv1d(c) => conv(c, "", Slot::P3, &mut push),
            L::Conv2d(c) => conv(c, "", Slot::P4, &mut push),
            L::Conv3d(c) => conv(c, "", Slot::P5, &mut push),
            L::SeparableConv2d(s) => {
                conv(&mut s.depthwise, "depthwise.", Slot::P4, &mut push);
                conv(&mut s.pointwise, "pointwise.", Slot::P4, &mut push);
            }
            L::ConvTranspose1d(c) => transpose(c, Slot::P3, &mut push),
            L::ConvTranspose2d(c) => transpose(c, Slot::P4, &mut push),
            L::ConvTranspose3d(c) => transpose(c, Slot::P5, &mut push),
            L::Dense(d) => linear(&mut d.linear, "", false, &mut push),
            L::SqueezeExcitation(se) => {
                linear(&mut se.fc1, "fc1.", true, &mut push);
                linear(&mut se.fc2, "fc2.", true, &mut push);
            }
            L::BatchNorm(bn) => {
                push("weight", false, Slot::P1(&mut bn.weight));
                push("bias", false, Slot::P1(&mut bn.bias));
                push("running_mean", false, Slot::Running(&mut bn.running_mean));
                push("running_var", false, Slot::Running(&mut bn.running_var));
            }
            L::Residual(r) => {
                let inner = format!("{path}.");
                walk(&mut r.body, &inner, out);
                walk(&mut r.shortcut, &inner, out);
            }
            L::Concat(c) => {
                let inner = format!("{path}.");
                for branch in &mut c.branches {
                    walk(branch, &inner, out);
                }
            }
            L::Aux(head) => walk(head, &format!("{path}."), out),
            L::Pool1d(_)
            | L::Pool2d(_)
            | L::Pool3d(_)
            | L::GlobalPool(_)
            | L::AdaptivePool(_)
            | L::ChannelPool(_)
            | L::ZeroPadding2d(_)
            | L::Flatten(_)
            | L::Activation(_)
            | L::Dropout(_)
            | L::LocalResponseNorm(_) => {}
        }
    }
}

fn conv<'m, const D: usize>(
    c: &'m mut Conv<D>,
    sub: &str,
    wrap: fn(&'m mut Param<Tensor<D>>) -> Slot<'m>,
    push: &mut impl FnMut(&str, bool, Slot<'m>),
) {
    push(&format!("{sub}weight"), false, wrap(&mut c.weight));
    if let Some(b) = c.bias.as_mut() {
        push(&format!("{sub}bias"), false, Slot::P1(b));
    }
}

fn transpose<'m, const D: usize>(
    c: &'m mut ConvTranspose<D>,
    wrap: fn(&'m mut Param<Tensor<D>>) -> Slot<'m>,
    push: &mut impl FnMut(&str, bool, Slot<'m>),
) {
    push("weight", false, wrap(&mut c.weight));
    if let Some(b) = c.bias.as_mut() {
        push("bias", false, Slot::P1(b));
    }
}

fn linear<'m>(
    l: &'m mut Linear,
    sub: &str,
    conv1x1: bool,
    push: &mut impl FnMut(&str, bool, Slot<'m>),
) {
    let dense = !conv1x1;
    push(
        &format!("{sub}weight"),
        dense,
        Slot::Linear {
            weight: &mut l.weight,
            conv1x1,
        },
    );
    if let Some(b) = l.bias.as_mut() {
        push(&format!("{sub}bias"), dense, Slot::P1(b));
    }
}

/// `[rows, cols]` row-major -> `[cols, rows]` row-major.
fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// The id of a running state (Burn keeps it private; a visit hands it over).
fn running_id(state: &RunningState<Tensor<1>>) -> ParamId {
    struct Id(Option<ParamId>);
    impl ModuleVisitor for Id {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 = Some(param.id);
        }
    }
    let mut id = Id(None);
    state.visit(&mut id);
    id.0.unwrap_or_default()
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// Replaces a parameter's value, keeping its id, device, gradient setting and Burn's load
/// mapper (what Burn's own loaders do).
fn replace<const D: usize>(p: &mut Param<Tensor<D>>, data: Vec<f32>, shape: [usize; D]) {
    let device = p.lazy_device();
    let tensor = Tensor::<D>::from_data(TensorData::new(data, shape), &device);
    *p = p.clone().transform_for_load(tensor, p.id);
}

fn dims<const D: usize>(shape: &[usize]) -> [usize; D] {
    let mut out = [0; D];
    for (o, s) in out.iter_mut().zip(shape) {
        *o = *s;
    }
    out
}

impl Slot<'_> {
    /// The shape PyTorch gives this tensor, read without materialising a lazy parameter.
    pub fn torch_shape(&self) -> Vec<usize> {
        match self {
            Slot::P1(p) => p.lazy_shape().dims::<1>().to_vec(),
            Slot::P3(p) => p.lazy_shape().dims::<3>().to_vec(),
            Slot::P4(p) => p.lazy_shape().dims::<4>().to_vec(),
            Slot::P5(p) => p.lazy_shape().dims::<5>().to_vec(),
            Slot::Linear { weight, conv1x1 } => {
                let [i, o] = weight.lazy_shape().dims::<2>();
                if *conv1x1 {
                    vec![o, i, 1, 1]
                } else {
                    vec![o, i]
                }
            }
            Slot::Running(r) => r.value().dims().to_vec(),
        }
    }

    /// Whether a tensor of `shape` fits: the PyTorch shape, or for a squeeze-and-excitation
    /// weight also the `[out, in]` of a linear layer (timm and the paper use both).
    pub fn accepts(&self, shape: &[usize]) -> bool {
        let want = self.torch_shape();
        shape == want.as_slice()
            || matches!(self, Slot::Linear { conv1x1: true, .. }) && shape == &want[..2]
    }

    /// The values in PyTorch's layout.
    pub fn read(&self) -> Result<Vec<f32>, String> {
        match self {
            Slot::P1(p) => values(p.val()),
            Slot::P3(p) => values(p.val()),
            Slot::P4(p) => values(p.val()),
            Slot::P5(p) => values(p.val()),
            Slot::Linear { weight, .. } => {
                let [i, o] = weight.lazy_shape().dims::<2>();
                Ok(transposed(&values(weight.val())?, i, o))
            }
            Slot::Running(r) => values(r.value_sync()),
        }
    }

    /// Replaces the value with `data`, in PyTorch's layout; the caller has checked the shape
    /// with [`Slot::accepts`] and the number of values.
    pub fn write(&mut self, data: Vec<f32>) {
        let shape = self.torch_shape();
        match self {
            Slot::P1(p) => replace(p, data, dims(&shape)),
            Slot::P3(p) => replace(p, data, dims(&shape)),
            Slot::P4(p) => replace(p, data, dims(&shape)),
            Slot::P5(p) => replace(p, data, dims(&shape)),
            Slot::Linear { weight, .. } => {
                let (o, i) = (shape[0], shape[1]);
                replace(weight, transposed(&data, o, i), [i, o]);
            }
            Slot::Running(r) => {
                let device = r.value().device();
                let tensor =
                    Tensor::<1>::from_data(TensorData::new(data, dims::<1>(&shape)), &device);
                **r = RunningState::with_id(running_id(r), tensor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposing_twice_is_the_identity() {
        let data: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let t = transposed(&data, 2, 3);
        assert_eq!(t, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(transposed(&t, 3, 2), data);
    }
}
