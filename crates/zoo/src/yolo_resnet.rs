//! A YOLO detector on a ResNet trunk: torchvision's ResNet stem and first three stages
//! (stride 16, the grid tiny-yolo also has), then a 3x3 convolution with batch norm and leaky
//! ReLU, and the 1x1 convolution giving every grid cell `anchors x (5 + classes)` numbers. The
//! trunk keeps torchvision's layer names (`conv1`, `bn1`, `layer1.0.conv1`, …), so
//! `convnet train --task detect --init resnet18.pth` starts it from ImageNet weights a user
//! owns; the neck and head start fresh.

use convnet_layers::{Activation, BatchNormConfig, ConvConfig, LayerConfig, ModelSpec, Padding};

use crate::blocks::conv_bn_act;
use crate::resnet::ResNetConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct YoloBackboneConfig {
    pub name: &'static str,
    pub trunk: ResNetConfig,
    /// Trunk stages kept (3: stride 16).
    pub stages: usize,
    /// Filters of the neck's 3x3 convolution.
    pub neck: usize,
}

impl YoloBackboneConfig {
    pub const NAMES: [&'static str; 2] = ["yolo-resnet18", "yolo-resnet34"];

    pub fn yolo_resnet18() -> Self {
        Self {
            name: "yolo-resnet18",
            trunk: ResNetConfig::resnet18(),
            stages: 3,
            neck: 256,
        }
    }

    pub fn yolo_resnet34() -> Self {
        Self {
            name: "yolo-resnet34",
            trunk: ResNetConfig::resnet34(),
            ..Self::yolo_resnet18()
        }
    }

    pub fn by_name(name: &str) -> Option<Self> {
        [Self::yolo_resnet18(), Self::yolo_resnet34()]
            .into_iter()
            .find(|c| c.name == name)
    }

    /// The grid's stride in input pixels.
    pub fn stride(&self) -> usize {
        4 << self.stages
    }

    /// The detector for `input` `[C, S, S]` (S a multiple of the stride) with `anchors` and
    /// `classes`.
    pub fn spec(
        &self,
        input: [usize; 3],
        anchors: usize,
        classes: usize,
    ) -> Result<ModelSpec, String> {
        let [c, h, w] = input;
        if h != w || h == 0 || h % self.stride() != 0 {
            return Err(format!(
                "{} takes square pictures whose side divides by {} (its stride), not {h}x{w}",
                self.name,
                self.stride()
            ));
        }
        let mut trunk = self.trunk.clone();
        trunk.in_channels = c;
        trunk.image_size = h;
        let mut spec = trunk.trunk(self.stages);
        spec.name = self.name.to_string();
        spec.layers.extend(conv_bn_act(
            ["neck.conv", "neck.bn", "neck.act"],
            ConvConfig::new(self.neck, 3)
                .with_padding(Padding::Same)
                .with_bias(false),
            BatchNormConfig::default(),
            Activation::Leaky,
        ));
        Ok(spec.named(
            "head",
            LayerConfig::Conv2d(ConvConfig::new(anchors * (5 + classes), 1)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn the_trunk_keeps_torchvisions_names_and_the_grid_is_a_sixteenth() {
        let config = YoloBackboneConfig::yolo_resnet18();
        let spec = config.spec([3, 64, 64], 3, 2).unwrap();
        let model = spec.build(&Device::flex()).unwrap();
        assert_eq!(model.output_shape().unwrap().dims(), [21, 4, 4]);
        let keys: Vec<String> = crate::resnet::tests::torch_params(&model)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // torchvision resnet18's trunk keys up to layer3, then the neck and head.
        for key in [
            "conv1.weight",
            "bn1.running_mean",
            "layer1.1.conv2.weight",
            "layer3.0.downsample.0.weight",
            "layer3.1.bn2.bias",
            "neck.conv.weight",
            "head.weight",
            "head.bias",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
        assert!(
            !keys
                .iter()
                .any(|k| k.starts_with("layer4") || k.starts_with("fc"))
        );
        assert!(config.spec([3, 72, 72], 3, 2).is_err());
    }
}
