//! Stacks of layers run one after the other, as Keras' `Sequential` and PyTorch's
//! `nn.Sequential` are; stacks nest inside residual and concat blocks.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::activation::{Activation, ActivationLayer};
use crate::blocks::{Concat, Residual, SqueezeExcitation};
use crate::conv::{Conv, SeparableConv};
use crate::dense::{Dense, Flatten};
use crate::error::{InputError, LayerError, LayerErrorKind, ModelError};
use crate::layer::{LayerInfo, macs_sum, map_description};
use crate::limits::{SizeError, checked_add, checked_product};
use crate::mode::Mode;
use crate::norm::{BatchNorm, Dropout, LocalResponseNorm};
use crate::pad::ZeroPadding2d;
use crate::pool::{AdaptiveAvgPool2d, ChannelPool, GlobalPool, Pool};
use crate::shape::FeatureShape;
use crate::summary::{LayerRow, ParamCount, Summarize, Summary, SummaryBuilder};
use crate::transpose::ConvTranspose;

/// Activations between layers, batch first: a flat vector or a map with 1 to 3 spatial axes.
#[derive(Debug, Clone)]
pub enum Features {
    Flat(Tensor<2>),
    Map1d(Tensor<3>),
    Map2d(Tensor<4>),
    Map3d(Tensor<5>),
}

impl From<Tensor<2>> for Features {
    fn from(t: Tensor<2>) -> Self {
        Features::Flat(t)
    }
}
impl From<Tensor<3>> for Features {
    fn from(t: Tensor<3>) -> Self {
        Features::Map1d(t)
    }
}
impl From<Tensor<4>> for Features {
    fn from(t: Tensor<4>) -> Self {
        Features::Map2d(t)
    }
}
impl From<Tensor<5>> for Features {
    fn from(t: Tensor<5>) -> Self {
        Features::Map3d(t)
    }
}

/// Applies a rank-generic expression to whichever map `$x` holds; `$flat` handles vectors.
macro_rules! on_rank {
    ($x:expr, |$t:ident| $body:expr, flat => $flat:expr) => {
        match $x {
            Features::Map1d($t) => Features::Map1d($body),
            Features::Map2d($t) => Features::Map2d($body),
            Features::Map3d($t) => Features::Map3d($body),
            Features::Flat($t) => {
                let _ = &$t;
                $flat
            }
        }
    };
}

impl Features {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Features::Flat(t) => t.dims().to_vec(),
            Features::Map1d(t) => t.dims().to_vec(),
            Features::Map2d(t) => t.dims().to_vec(),
            Features::Map3d(t) => t.dims().to_vec(),
        }
    }

    fn shape(&self) -> FeatureShape {
        FeatureShape::new(self.dims()[1..].to_vec())
    }

    /// The output as `[N, features]`; a map is flattened.
    pub fn into_flat(self) -> Tensor<2> {
        match self {
            Features::Flat(t) => t,
            Features::Map1d(t) => t.flatten(1, 2),
            Features::Map2d(t) => t.flatten(1, 3),
            Features::Map3d(t) => t.flatten(1, 4),
        }
    }

    /// The output as an image batch `[N, C, H, W]`.
    pub fn into_map2d(self) -> Result<Tensor<4>, LayerErrorKind> {
        match self {
            Features::Map2d(t) => Ok(t),
            _ => Err(LayerErrorKind::Rank {
                expected: map_description(2),
                hint: "",
            }),
        }
    }

    fn add(self, other: Features) -> Result<Features, LayerErrorKind> {
        Ok(match (self, other) {
            (Features::Flat(a), Features::Flat(b)) => Features::Flat(a + b),
            (Features::Map1d(a), Features::Map1d(b)) => Features::Map1d(a + b),
            (Features::Map2d(a), Features::Map2d(b)) => Features::Map2d(a + b),
            (Features::Map3d(a), Features::Map3d(b)) => Features::Map3d(a + b),
            (a, b) => {
                return Err(LayerErrorKind::Config(format!(
                    "cannot add {} and {}",
                    a.shape(),
                    b.shape()
                )));
            }
        })
    }

    fn concat(parts: Vec<Features>) -> Result<Features, LayerErrorKind> {
        macro_rules! cat {
            ($variant:ident) => {{
                let mut ts = Vec::with_capacity(parts.len());
                for p in parts {
                    match p {
                        Features::$variant(t) => ts.push(t),
                        other => {
                            return Err(LayerErrorKind::Config(format!(
                                "cannot concatenate {} with maps of another rank",
                                other.shape()
                            )));
                        }
                    }
                }
                Features::$variant(Tensor::cat(ts, 1))
            }};
        }
        Ok(match parts.first() {
            None => {
                return Err(LayerErrorKind::Config(
                    "concat needs at least one branch".into(),
                ));
            }
            Some(Features::Flat(_)) => cat!(Flat),
            Some(Features::Map1d(_)) => cat!(Map1d),
            Some(Features::Map2d(_)) => cat!(Map2d),
            Some(Features::Map3d(_)) => cat!(Map3d),
        })
    }
}

/// One layer of a [`Stack`]. Variants differ in size; a model holds few enough layers that
/// boxing them would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SequentialLayer {
    Conv1d(Conv<3>),
    Conv2d(Conv<4>),
    Conv3d(Conv<5>),
    SeparableConv2d(SeparableConv<4>),
    ConvTranspose1d(ConvTranspose<3>),
    ConvTranspose2d(ConvTranspose<4>),
    ConvTranspose3d(ConvTranspose<5>),
    Pool1d(Pool<3>),
    Pool2d(Pool<4>),
    Pool3d(Pool<5>),
    GlobalPool(GlobalPool),
    AdaptivePool(AdaptiveAvgPool2d),
    ChannelPool(ChannelPool),
    ZeroPadding2d(ZeroPadding2d),
    Flatten(Flatten),
    Dense(Dense),
    Activation(ActivationLayer),
    BatchNorm(BatchNorm),
    Dropout(Dropout),
    LocalResponseNorm(LocalResponseNorm),
    SqueezeExcitation(SqueezeExcitation),
    Residual(Residual),
    Concat(Concat),
    /// An auxiliary classifier on the activations at this point (GoogLeNet's): the identity on
    /// the main path; [`Sequential::forward_aux`] also returns its output.
    Aux(Stack),
}

fn want(spatial_axes: usize) -> LayerErrorKind {
    LayerErrorKind::Rank {
        expected: map_description(spatial_axes),
        hint: "",
    }
}

fn want_flat() -> LayerErrorKind {
    LayerErrorKind::Rank {
        expected: "a flat (features) vector",
        hint: "; add a flatten layer before it",
    }
}

impl SequentialLayer {
    fn info(&self) -> &dyn LayerInfo {
        match self {
            SequentialLayer::Conv1d(l) => l,
            SequentialLayer::Conv2d(l) => l,
            SequentialLayer::Conv3d(l) => l,
            SequentialLayer::SeparableConv2d(l) => l,
            SequentialLayer::ConvTranspose1d(l) => l,
            SequentialLayer::ConvTranspose2d(l) => l,
            SequentialLayer::ConvTranspose3d(l) => l,
            SequentialLayer::Pool1d(l) => l,
            SequentialLayer::Pool2d(l) => l,
            SequentialLayer::Pool3d(l) => l,
            SequentialLayer::GlobalPool(l) => l,
            SequentialLayer::AdaptivePool(l) => l,
            SequentialLayer::ChannelPool(l) => l,
            SequentialLayer::ZeroPadding2d(l) => l,
            SequentialLayer::Flatten(l) => l,
            SequentialLayer::Dense(l) => l,
            SequentialLayer::Activation(l) => l,
            SequentialLayer::BatchNorm(l) => l,
            SequentialLayer::Dropout(l) => l,
            SequentialLayer::LocalResponseNorm(l) => l,
            SequentialLayer::SqueezeExcitation(l) => l,
            SequentialLayer::Residual(l) => l,
            SequentialLayer::Concat(l) => l,
            SequentialLayer::Aux(l) => l,
        }
    }

    /// Trainable and non-trainable parameters (batch-norm statistics are the latter), counted
    /// from the weights' shapes (nothing is allocated) with checked arithmetic.
    pub fn param_count(&self) -> Result<ParamCount, SizeError> {
        match self {
            SequentialLayer::BatchNorm(bn) => bn.param_count(),
            SequentialLayer::Residual(r) => {
                r.body.param_count()?.checked_add(r.shortcut.param_count()?)
            }
            SequentialLayer::Concat(c) => {
                c.branches.iter().try_fold(ParamCount::default(), |acc, b| {
                    acc.checked_add(b.param_count()?)
                })
            }
            SequentialLayer::Aux(head) => head.param_count(),
            other => Ok(module_params(other)?.into()),
        }
    }

    fn forward(&self, x: Features, mode: Mode) -> Result<Features, LayerErrorKind> {
        use SequentialLayer as L;
        Ok(match (self, x) {
            (L::Conv1d(l), Features::Map1d(t)) => Features::Map1d(l.forward(t)?),
            (L::Conv2d(l), Features::Map2d(t)) => Features::Map2d(l.forward(t)?),
            (L::Conv3d(l), Features::Map3d(t)) => Features::Map3d(l.forward(t)?),
            (L::SeparableConv2d(l), Features::Map2d(t)) => Features::Map2d(l.forward(t)?),
            (L::ConvTranspose1d(l), Features::Map1d(t)) => Features::Map1d(l.forward(t)?),
            (L::ConvTranspose2d(l), Features::Map2d(t)) => Features::Map2d(l.forward(t)?),
            (L::ConvTranspose3d(l), Features::Map3d(t)) => Features::Map3d(l.forward(t)?),
            (L::Pool1d(l), Features::Map1d(t)) => Features::Map1d(l.forward(t)?),
            (L::Pool2d(l), Features::Map2d(t)) => Features::Map2d(l.forward(t)?),
            (L::Pool3d(l), Features::Map3d(t)) => Features::Map3d(l.forward(t)?),
            (L::ZeroPadding2d(l), Features::Map2d(t)) => Features::Map2d(l.forward(t)?),
            (L::AdaptivePool(l), Features::Map2d(t)) => Features::Map2d(l.forward(t)),
            (L::AdaptivePool(_), _) => return Err(want(2)),
            (L::Aux(_), x) => x,
            (L::Conv1d(_) | L::ConvTranspose1d(_) | L::Pool1d(_), _) => return Err(want(1)),
            (L::Conv2d(_) | L::SeparableConv2d(_) | L::ConvTranspose2d(_), _) => {
                return Err(want(2));
            }
            (L::Pool2d(_) | L::ZeroPadding2d(_), _) => return Err(want(2)),
            (L::Conv3d(_) | L::ConvTranspose3d(_) | L::Pool3d(_), _) => return Err(want(3)),
            (L::Flatten(_), x) => Features::Flat(x.into_flat()),
            (L::Dense(l), Features::Flat(t)) => Features::Flat(l.forward(t)?),
            (L::Dense(_), _) => return Err(want_flat()),
            (L::GlobalPool(l), Features::Map1d(t)) => Features::Flat(l.forward(t)),
            (L::GlobalPool(l), Features::Map2d(t)) => Features::Flat(l.forward(t)),
            (L::GlobalPool(l), Features::Map3d(t)) => Features::Flat(l.forward(t)),
            (L::GlobalPool(_), Features::Flat(_)) => return Err(want(2)),
            (L::ChannelPool(l), x) => on_rank!(x, |t| l.forward(t)?, flat => return Err(want(2)) ),
            (L::Activation(l), x) => {
                on_rank!(x, |t| l.forward(t), flat => Features::Flat(l.forward(t)))
            }
            (L::BatchNorm(l), x) => {
                on_rank!(x, |t| l.forward(t, mode)?, flat => Features::Flat(l.forward(t, mode)?))
            }
            (L::Dropout(l), x) => {
                on_rank!(x, |t| l.forward(t, mode), flat => Features::Flat(l.forward(t, mode)))
            }
            (L::LocalResponseNorm(l), x) => {
                on_rank!(x, |t| l.forward(t), flat => return Err(want(2)))
            }
            (L::SqueezeExcitation(l), x) => {
                on_rank!(x, |t| l.forward(t)?, flat => return Err(want(2)))
            }
            (L::Residual(r), x) => {
                let body = r.body.forward(x.clone(), mode).map_err(nested)?;
                let short = r.shortcut.forward(x, mode).map_err(nested)?;
                let sum = body.add(short)?;
                let a = r.activation;
                on_rank!(sum, |t| a.apply(t), flat => Features::Flat(a.apply(t)))
            }
            (L::Concat(c), x) => {
                let parts = c
                    .branches
                    .iter()
                    .map(|b| b.forward(x.clone(), mode).map_err(nested))
                    .collect::<Result<Vec<_>, _>>()?;
                Features::concat(parts)?
            }
        })
    }
}

fn nested(e: LayerError) -> LayerErrorKind {
    LayerErrorKind::Config(e.to_string())
}

impl LayerInfo for SequentialLayer {
    fn kind(&self) -> &'static str {
        self.info().kind()
    }
    fn describe(&self) -> String {
        self.info().describe()
    }
    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        self.info().output_shape(input)
    }
    fn macs(&self, input: &FeatureShape, output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        match self {
            SequentialLayer::Residual(r) => macs_sum(r.body.macs(input)?, r.shortcut.macs(input)?),
            SequentialLayer::Concat(c) => c
                .branches
                .iter()
                .try_fold(0, |acc, b| macs_sum(acc, b.macs(input)?)),
            SequentialLayer::Aux(head) => head.macs(input),
            other => other.info().macs(input, output),
        }
    }
}

/// A stack used as an auxiliary head: the main path passes through unchanged.
impl LayerInfo for Stack {
    fn kind(&self) -> &'static str {
        "Auxiliary"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        Stack::output_shape(self, input).map_err(|e| LayerErrorKind::Config(e.to_string()))?;
        Ok(input.clone())
    }
}

/// Named layers in order, without a fixed input shape.
#[derive(Module, Debug)]
pub struct Stack {
    pub layers: Vec<SequentialLayer>,
    #[module(skip)]
    pub names: Vec<String>,
    /// Layers before this index are frozen (see [`Sequential::freeze_before`]).
    #[module(skip)]
    pub frozen: usize,
}

impl Stack {
    pub fn new(layers: Vec<(String, SequentialLayer)>) -> Self {
        let (names, layers) = layers.into_iter().unzip();
        Self {
            layers,
            names,
            frozen: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    pub fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerError> {
        let mut shape = input.clone();
        for (name, layer) in self.names.iter().zip(&self.layers) {
            shape = layer
                .output_shape(&shape)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
        }
        Ok(shape)
    }

    pub fn forward(&self, mut x: Features, mode: Mode) -> Result<Features, LayerError> {
        for (name, layer) in self.names.iter().zip(&self.layers) {
            let shape = x.shape();
            x = layer
                .forward(x, mode)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
        }
        Ok(x)
    }

    /// Parameters of every layer, frozen ones counted as non-trainable.
    pub fn param_count(&self) -> Result<ParamCount, SizeError> {
        self.layers
            .iter()
            .enumerate()
            .try_fold(ParamCount::default(), |acc, (i, l)| {
                acc.checked_add(self.layer_count(i, l)?)
            })
    }

    fn layer_count(&self, index: usize, layer: &SequentialLayer) -> Result<ParamCount, SizeError> {
        let count = layer.param_count()?;
        if index < self.frozen {
            count.frozen()
        } else {
            Ok(count)
        }
    }

    fn macs(&self, input: &FeatureShape) -> Result<u64, LayerErrorKind> {
        let mut shape = input.clone();
        let mut total = 0;
        for layer in &self.layers {
            let out = layer.output_shape(&shape)?;
            total = macs_sum(total, layer.macs(&shape, &out)?)?;
            shape = out;
        }
        Ok(total)
    }

    /// Summary rows: each layer, and after a block the layers inside it, one level deeper.
    pub(crate) fn rows(
        &self,
        prefix: &str,
        input: &FeatureShape,
        depth: usize,
        out: &mut Vec<LayerRow>,
    ) -> Result<FeatureShape, LayerError> {
        let mut shape = input.clone();
        for (index, (name, layer)) in self.names.iter().zip(&self.layers).enumerate() {
            let full = format!("{prefix}{name}");
            let fail = |kind: LayerErrorKind| layer_error(&full, layer, &shape, kind);
            let output = layer.output_shape(&shape).map_err(fail)?;
            let params = self.layer_count(index, layer).map_err(|e| fail(e.into()))?;
            let macs = layer.macs(&shape, &output).map_err(fail)?;
            let row = LayerRow::new(&full, layer.kind(), output.clone(), params, macs, depth)
                .map_err(|e| fail(e.into()))?;
            out.push(row);
            match layer {
                SequentialLayer::Residual(r) => {
                    r.body
                        .rows(&format!("{full}.body."), &shape, depth + 1, out)?;
                    r.shortcut
                        .rows(&format!("{full}.shortcut."), &shape, depth + 1, out)?;
                }
                SequentialLayer::Concat(c) => {
                    for (i, b) in c.branches.iter().enumerate() {
                        b.rows(&format!("{full}.branch{}.", i + 1), &shape, depth + 1, out)?;
                    }
                }
                SequentialLayer::Aux(head) => {
                    head.rows(&format!("{full}."), &shape, depth + 1, out)?;
                }
                _ => {}
            }
            shape = output;
        }
        Ok(shape)
    }
}

/// Layers applied in order to an input of a fixed shape (checked on every call).
#[derive(Module, Debug)]
pub struct Sequential {
    pub stack: Stack,
    #[module(skip)]
    input: FeatureShape,
    #[module(skip)]
    name: String,
}

impl Sequential {
    /// Assembles named layers, checking that each accepts the previous one's output.
    pub fn new(
        name: impl Into<String>,
        input: FeatureShape,
        layers: Vec<(String, SequentialLayer)>,
    ) -> Result<Self, LayerError> {
        let model = Self {
            stack: Stack::new(layers),
            input,
            name: name.into(),
        };
        model.output_shape()?;
        Ok(model)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn input_shape(&self) -> &FeatureShape {
        &self.input
    }

    pub fn layer_names(&self) -> &[String] {
        &self.stack.names
    }

    /// The shape of one example's output.
    pub fn output_shape(&self) -> Result<FeatureShape, LayerError> {
        self.stack.output_shape(&self.input)
    }

    /// Runs a batch (`[N, C, L]`, `[N, C, H, W]` or `[N, C, D, H, W]`) through every layer.
    pub fn forward(&self, x: impl Into<Features>, mode: Mode) -> Result<Features, ModelError> {
        let x = x.into();
        self.check_input(&x)?;
        Ok(self.stack.forward(x, mode)?)
    }

    fn check_input(&self, x: &Features) -> Result<(), InputError> {
        let dims = x.dims();
        if dims[1..] != *self.input.dims() {
            return Err(InputError {
                expected: self.input.clone(),
                got: dims,
            });
        }
        Ok(())
    }

    /// Freezes the layers before top-level layer `index` for transfer learning: their
    /// parameters stop learning and their batch norms use (and keep) their running statistics,
    /// while the rest learn. Layers frozen before stay frozen.
    pub fn freeze_before(mut self, index: usize) -> Self {
        let index = index.min(self.stack.layers.len());
        let layers = std::mem::take(&mut self.stack.layers);
        self.stack.layers = layers
            .into_iter()
            .enumerate()
            .map(|(i, l)| if i < index { l.freeze() } else { l })
            .collect();
        self.stack.frozen = self.stack.frozen.max(index);
        self
    }

    /// How many top-level layers are frozen (from the first).
    pub fn frozen_layers(&self) -> usize {
        self.stack.frozen
    }

    /// The output and the outputs of the auxiliary heads, in order. The heads run only in
    /// [`Mode::Train`], as GoogLeNet's do in PyTorch; at inference the list is empty.
    pub fn forward_aux(
        &self,
        x: impl Into<Features>,
        mode: Mode,
    ) -> Result<(Features, Vec<Features>), ModelError> {
        let mut x = x.into();
        self.check_input(&x)?;
        let mut aux = Vec::new();
        for (name, layer) in self.stack.names.iter().zip(&self.stack.layers) {
            if let (SequentialLayer::Aux(head), Mode::Train) = (layer, mode) {
                aux.push(head.forward(x.clone(), mode)?);
            }
            let shape = x.shape();
            x = layer
                .forward(x, mode)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
        }
        Ok((x, aux))
    }

    /// The index of the top-level layer `name` names: the layer of that name, or the last of
    /// the layers inside it when it is a group prefix (`layer3` for `layer3.0` ... `layer3.5`).
    pub fn layer_index(&self, name: &str) -> Option<usize> {
        let names = &self.stack.names;
        names.iter().position(|n| n == name).or_else(|| {
            let prefix = format!("{name}.");
            names.iter().rposition(|n| n.starts_with(&prefix))
        })
    }

    /// The index of the first top-level layer `name` names (the layer itself, or the first
    /// layer of the group it prefixes): where "from layer X on" starts.
    pub fn layer_start(&self, name: &str) -> Option<usize> {
        let prefix = format!("{name}.");
        self.stack
            .names
            .iter()
            .position(|n| n == name || n.starts_with(&prefix))
    }

    /// The activations after each named layer (see [`Sequential::layer_index`]), in the order
    /// asked; the pass stops after the deepest one, so a feature extractor never pays for the
    /// head.
    pub fn forward_features(
        &self,
        x: impl Into<Features>,
        names: &[&str],
        mode: Mode,
    ) -> Result<Vec<Features>, ModelError> {
        let wanted = names
            .iter()
            .map(|n| {
                self.layer_index(n).ok_or_else(|| {
                    ModelError::Layer(LayerError {
                        layer: n.to_string(),
                        op: String::new(),
                        input: self.input.clone(),
                        kind: LayerErrorKind::Config(format!(
                            "the model has no layer named '{n}' (`convnet summary` lists them)"
                        )),
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut x = x.into();
        self.check_input(&x)?;
        let last = wanted.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Option<Features>> = vec![None; wanted.len()];
        for (i, (name, layer)) in self
            .stack
            .names
            .iter()
            .zip(&self.stack.layers)
            .enumerate()
            .take(last + 1)
        {
            let shape = x.shape();
            x = layer
                .forward(x, mode)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
            for (slot, &w) in out.iter_mut().zip(&wanted) {
                if w == i {
                    *slot = Some(x.clone());
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Whether the network ends in a softmax (a softmax dense layer or a softmax layer).
    pub fn ends_in_softmax(&self) -> bool {
        matches!(
            self.stack.layers.last(),
            Some(SequentialLayer::Dense(Dense {
                activation: Activation::Softmax,
                ..
            })) | Some(SequentialLayer::Activation(ActivationLayer {
                activation: Activation::Softmax
            }))
        )
    }

    /// The pre-softmax scores `[N, classes]`: the forward pass with a final softmax left out,
    /// so losses can use the log-sum-exp form instead of the log of rounded probabilities.
    /// A network without a final softmax returns its (flattened) output unchanged.
    pub fn forward_logits(
        &self,
        x: impl Into<Features>,
        mode: Mode,
    ) -> Result<Tensor<2>, ModelError> {
        if !self.ends_in_softmax() {
            return Ok(self.forward(x, mode)?.into_flat());
        }
        let x = x.into();
        self.check_input(&x)?;
        let last = self.stack.layers.len() - 1;
        let mut x = x;
        for (name, layer) in self.stack.names.iter().zip(&self.stack.layers).take(last) {
            let shape = x.shape();
            x = layer
                .forward(x, mode)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
        }
        let x = x.into_flat();
        Ok(match &self.stack.layers[last] {
            SequentialLayer::Dense(dense) => dense.linear.forward(x),
            _ => x,
        })
    }
}

/// A module's parameter count from its weights' shapes, as Burn's `num_params` counts it but
/// with checked arithmetic (a spec's shapes can multiply past 64 bits) and without allocating.
fn module_params<M: Module>(module: &M) -> Result<usize, SizeError> {
    struct Count(Result<usize, SizeError>);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.lazy_shape();
            let dims = shape.as_slice();
            self.0 = self.0.clone().and_then(|total| {
                checked_add("parameters", total, checked_product("weights", dims)?)
            });
        }
    }
    let mut count = Count(Ok(0));
    module.visit(&mut count);
    count.0
}

pub(crate) fn layer_error(
    name: &str,
    layer: &dyn LayerInfo,
    input: &FeatureShape,
    kind: LayerErrorKind,
) -> LayerError {
    LayerError {
        layer: name.to_string(),
        op: layer.describe(),
        input: input.clone(),
        kind,
    }
}

impl Summarize for Sequential {
    fn summary(&self) -> Result<Summary, LayerError> {
        let mut rows = Vec::new();
        self.stack.rows("", &self.input, 0, &mut rows)?;
        let mut b = SummaryBuilder::new(&self.name, self.input.clone());
        for row in rows {
            let (name, kind, shape) =
                (row.name.clone(), row.kind.clone(), row.output_shape.clone());
            b.push(row).map_err(|e| LayerError {
                layer: name,
                op: kind,
                input: shape,
                kind: e.into(),
            })?;
        }
        Ok(b.finish())
    }
}
