//! Building blocks several zoo models share, written once.

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, LayerConfig, LayerSpec, ModelSpec, Padding, PoolConfig,
};

/// The spatial rank of a network: signals (1), images (2) or volumes (3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    One,
    Two,
    Three,
}

impl Rank {
    fn conv(self, config: ConvConfig) -> LayerConfig {
        match self {
            Rank::One => LayerConfig::Conv1d(config),
            Rank::Two => LayerConfig::Conv2d(config),
            Rank::Three => LayerConfig::Conv3d(config),
        }
    }

    fn max_pool(self, config: PoolConfig) -> LayerConfig {
        match self {
            Rank::One => LayerConfig::MaxPool1d(config),
            Rank::Two => LayerConfig::MaxPool2d(config),
            Rank::Three => LayerConfig::MaxPool3d(config),
        }
    }
}

/// `conv (same padding, no bias) → batch norm → ReLU`, then `max pool` when `pool > 1`:
/// the stage of the plain 1D and 3D classifiers. The conv has no bias because batch norm's
/// shift replaces it.
pub fn conv_bn_relu_pool(
    spec: ModelSpec,
    rank: Rank,
    stage: usize,
    filters: usize,
    kernel: usize,
    pool: usize,
) -> ModelSpec {
    let spec = spec
        .named(
            &format!("conv{stage}"),
            rank.conv(
                ConvConfig::new(filters, kernel)
                    .with_padding(Padding::Same)
                    .with_bias(false),
            ),
        )
        .named(
            &format!("bn{stage}"),
            LayerConfig::BatchNorm(BatchNormConfig::default()),
        )
        .named(
            &format!("relu{stage}"),
            LayerConfig::Activation {
                activation: Activation::Relu,
            },
        );
    if pool > 1 {
        spec.named(
            &format!("pool{stage}"),
            rank.max_pool(PoolConfig::new(pool)),
        )
    } else {
        spec
    }
}

/// A layer with a name, for the nested layer lists of residual and concat blocks.
pub fn named(name: impl Into<String>, config: LayerConfig) -> LayerSpec {
    LayerSpec {
        name: Some(name.into()),
        config,
        line: None,
    }
}

/// `conv → batch norm → activation`, the unit the ImageNet networks repeat (torchvision's
/// `Conv2dNormActivation` and GoogLeNet's `BasicConv2d`, Keras' conv/bn/act triples). `names`
/// are the three layers' names, chosen so that weight names match the original framework's;
/// a `Linear` activation adds no activation layer. The conv should have no bias: batch norm's
/// shift replaces it.
pub fn conv_bn_act(
    names: [&str; 3],
    conv: ConvConfig,
    bn: BatchNormConfig,
    activation: Activation,
) -> Vec<LayerSpec> {
    let mut layers = vec![
        named(names[0], LayerConfig::Conv2d(conv)),
        named(names[1], LayerConfig::BatchNorm(bn)),
    ];
    if activation != Activation::Linear {
        layers.push(named(names[2], LayerConfig::Activation { activation }));
    }
    layers
}

/// `(channels, side)` of square pictures `[C, H, W]`, or why `model` cannot take them.
pub fn square_input(model: &str, [c, h, w]: [usize; 3]) -> Result<(usize, usize), String> {
    if h != w {
        return Err(format!("{model} takes square pictures, not {h}x{w}"));
    }
    Ok((c, h))
}
