//! A stack of layers run one after the other, as Keras' `Sequential` and PyTorch's
//! `nn.Sequential` are.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::activation::ActivationLayer;
use crate::conv::Conv2d;
use crate::dense::{Dense, Flatten};
use crate::error::{InputError, LayerError, LayerErrorKind, ModelError};
use crate::layer::LayerInfo;
use crate::pad::ZeroPadding2d;
use crate::pool::Pool2d;
use crate::shape::FeatureShape;
use crate::summary::{Summarize, Summary, SummaryBuilder};

/// Activations between layers: a spatial map or a flat vector, batch first.
#[derive(Debug, Clone)]
pub enum Features {
    Map2d(Tensor<4>),
    Flat(Tensor<2>),
}

impl Features {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Features::Map2d(t) => t.dims().to_vec(),
            Features::Flat(t) => t.dims().to_vec(),
        }
    }

    fn shape(&self) -> FeatureShape {
        FeatureShape::new(self.dims()[1..].to_vec())
    }

    fn map2d(self, hint: &'static str) -> Result<Tensor<4>, LayerErrorKind> {
        match self {
            Features::Map2d(t) => Ok(t),
            Features::Flat(_) => Err(LayerErrorKind::Rank {
                expected: "a (channels, height, width) map",
                hint,
            }),
        }
    }

    /// The output as `[N, features]`; a map is flattened.
    pub fn into_flat(self) -> Tensor<2> {
        match self {
            Features::Map2d(t) => t.flatten(1, 3),
            Features::Flat(t) => t,
        }
    }
}

/// One layer of a [`Sequential`].
#[derive(Module, Debug)]
pub enum SequentialLayer {
    Conv2d(Conv2d),
    ZeroPadding2d(ZeroPadding2d),
    Pool2d(Pool2d),
    Flatten(Flatten),
    Dense(Dense),
    Activation(ActivationLayer),
}

impl SequentialLayer {
    fn info(&self) -> &dyn LayerInfo {
        match self {
            SequentialLayer::Conv2d(l) => l,
            SequentialLayer::ZeroPadding2d(l) => l,
            SequentialLayer::Pool2d(l) => l,
            SequentialLayer::Flatten(l) => l,
            SequentialLayer::Dense(l) => l,
            SequentialLayer::Activation(l) => l,
        }
    }

    fn forward(&self, x: Features) -> Result<Features, LayerErrorKind> {
        const FLAT: &str = " (it was flattened already)";
        Ok(match self {
            SequentialLayer::Conv2d(l) => Features::Map2d(l.forward(x.map2d(FLAT)?)?),
            SequentialLayer::ZeroPadding2d(l) => Features::Map2d(l.forward(x.map2d(FLAT)?)?),
            SequentialLayer::Pool2d(l) => Features::Map2d(l.forward(x.map2d(FLAT)?)?),
            SequentialLayer::Flatten(l) => Features::Flat(match x {
                Features::Map2d(t) => l.forward(t),
                Features::Flat(t) => t,
            }),
            SequentialLayer::Dense(l) => match x {
                Features::Flat(t) => Features::Flat(l.forward(t)?),
                Features::Map2d(_) => {
                    return Err(LayerErrorKind::Rank {
                        expected: "a flat (features) vector",
                        hint: "; add a flatten layer before it",
                    });
                }
            },
            SequentialLayer::Activation(l) => match x {
                Features::Map2d(t) => Features::Map2d(l.forward(t)),
                Features::Flat(t) => Features::Flat(l.forward(t)),
            },
        })
    }
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
    fn macs(&self, input: &FeatureShape, output: &FeatureShape) -> u64 {
        self.info().macs(input, output)
    }
}

/// Layers applied in order to an input of a fixed shape (checked on every call).
#[derive(Module, Debug)]
pub struct Sequential {
    pub layers: Vec<SequentialLayer>,
    #[module(skip)]
    names: Vec<String>,
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
        let (names, layers) = layers.into_iter().unzip();
        let model = Self {
            layers,
            names,
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
        &self.names
    }

    /// The shape of one example's output.
    pub fn output_shape(&self) -> Result<FeatureShape, LayerError> {
        let mut shape = self.input.clone();
        for (name, layer) in self.names.iter().zip(&self.layers) {
            shape = layer
                .output_shape(&shape)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
        }
        Ok(shape)
    }

    /// Runs a batch `[N, C, H, W]` through every layer.
    pub fn forward(&self, x: Tensor<4>) -> Result<Features, ModelError> {
        let dims = x.dims();
        if dims[1..] != *self.input.dims() {
            return Err(InputError {
                expected: self.input.clone(),
                got: dims.to_vec(),
            }
            .into());
        }
        let mut x = Features::Map2d(x);
        for (name, layer) in self.names.iter().zip(&self.layers) {
            let shape = x.shape();
            x = layer
                .forward(x)
                .map_err(|kind| layer_error(name, layer, &shape, kind))?;
        }
        Ok(x)
    }
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
        let mut b = SummaryBuilder::new(&self.name, self.input.clone());
        let mut shape = self.input.clone();
        for (name, layer) in self.names.iter().zip(&self.layers) {
            shape = b.layer(name, layer, layer.num_params(), &shape)?;
        }
        Ok(b.finish())
    }
}
