//! Receptive fields: the window of input pixels a unit of a layer can see, from the kernels,
//! strides, dilations and paddings of the layers below it.
//!
//! Along one axis a unit at position `i` of a layer sees input pixels
//! `start + i * jump .. start + i * jump + size`. The input itself is `size 1, jump 1, start 0`;
//! a window layer with kernel `k`, dilation `d`, stride `s` and begin padding `p` turns that into
//! `size + d (k - 1) jump`, `jump s` and `start - p jump`. `start` goes negative when the window
//! reaches into the padding. Padding is resolved through [`window_axis`], the rule every layer
//! builds with, so `same` padding (which depends on the size of each layer's input) comes out as
//! the network pads; the walk tracks the map size for that reason.
//!
//! Layers that change no geometry (activations, batch norm, dropout, LRN, squeeze-and-excitation,
//! channel pooling, auxiliary heads) are passed through; squeeze-and-excitation does scale
//! channels by a statistic of the whole map, but slides no window, and the field counts the
//! windows, as published receptive fields do. A residual or concat block sees what
//! any of its branches sees: its field is the smallest window holding every branch's window (for
//! a body and an identity shortcut, the body's). When branches are shifted apart along both axes
//! that window also holds corners no branch sees. Flatten, dense and global pooling end the
//! walk: every unit after them sees the whole input.

use convnet_layers::geometry::{AxisPadding, Rounding, window_axis};
use convnet_layers::{LayerConfig, LayerErrorKind, LayerSpec, ModelSpec, Padding, Size};

use crate::VisualizeError;

/// The receptive field along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisField {
    /// Pixels a unit sees (the window's length).
    pub size: usize,
    /// Pixels between the windows of neighbouring units (the product of the strides).
    pub jump: usize,
    /// Where the window of unit 0 starts; negative inside the padding.
    pub start: i64,
}

impl AxisField {
    const PIXEL: AxisField = AxisField {
        size: 1,
        jump: 1,
        start: 0,
    };

    /// The input pixels `begin..end` that unit `i` sees.
    pub fn span(&self, i: usize) -> (i64, i64) {
        let begin = self.start + (i * self.jump) as i64;
        (begin, begin + self.size as i64)
    }
}

/// The receptive field of the units of one layer over an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub rows: AxisField,
    pub cols: AxisField,
    /// `[height, width]` of the input image.
    pub input: [usize; 2],
    /// `[height, width]` of the layer's maps.
    pub output: [usize; 2],
}

impl Field {
    /// The input window of the unit at row `y`, column `x` of the layer's maps, unclipped.
    pub fn window(&self, y: usize, x: usize) -> Rect {
        let (y0, y1) = self.rows.span(y);
        let (x0, x1) = self.cols.span(x);
        Rect { x0, y0, x1, y1 }
    }
}

/// A rectangle of pixels, half-open (`x0..x1`, `y0..y1`); it may reach outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl Rect {
    pub fn width(&self) -> u64 {
        (self.x1 - self.x0).max(0) as u64
    }

    pub fn height(&self) -> u64 {
        (self.y1 - self.y0).max(0) as u64
    }

    pub fn area(&self) -> u64 {
        self.width() * self.height()
    }

    pub fn contains(&self, y: i64, x: i64) -> bool {
        (self.y0..self.y1).contains(&y) && (self.x0..self.x1).contains(&x)
    }

    /// The part inside `other` (empty, with zero area, if they do not meet).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let x0 = self.x0.max(other.x0);
        let y0 = self.y0.max(other.y0);
        Rect {
            x0,
            y0,
            x1: self.x1.min(other.x1).max(x0),
            y1: self.y1.min(other.y1).max(y0),
        }
    }

    /// The part inside an image of `[height, width]` pixels.
    pub fn clipped(&self, [h, w]: [usize; 2]) -> Rect {
        self.intersect(&Rect {
            x0: 0,
            y0: 0,
            x1: w as i64,
            y1: h as i64,
        })
    }

    /// Intersection over union; 0 when either is empty.
    pub fn iou(&self, other: &Rect) -> f64 {
        let inter = self.intersect(other).area();
        let union = self.area() + other.area() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f64 / union as f64
        }
    }
}

/// The walk's position: the field so far and the size of the current maps.
#[derive(Debug, Clone, Copy)]
struct State {
    axes: [AxisField; 2],
    size: [usize; 2],
}

/// The geometry of one sliding window, per axis.
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: [AxisPadding; 2],
    rounding: Rounding,
}

impl State {
    fn slide(&mut self, w: &Window) -> Result<(), LayerErrorKind> {
        for a in 0..2 {
            let g = window_axis(
                self.size[a],
                w.kernel[a],
                w.stride[a],
                w.dilation[a],
                w.padding[a],
                w.rounding,
            )?;
            let f = &mut self.axes[a];
            f.start -= (g.pad_begin * f.jump) as i64;
            f.size += w.dilation[a] * (w.kernel[a] - 1) * f.jump;
            f.jump *= w.stride[a];
            self.size[a] = g.output;
        }
        Ok(())
    }

    /// The envelope of the branches' windows. Branches that step at different rates have no
    /// common window rule; then the largest window stands for the block.
    fn union(branches: &[State]) -> State {
        let mut out = branches[0];
        for a in 0..2 {
            let jump = out.axes[a].jump;
            out.axes[a] = if branches.iter().all(|b| b.axes[a].jump == jump) {
                let start = branches.iter().map(|b| b.axes[a].start).min();
                let end = branches
                    .iter()
                    .map(|b| b.axes[a].start + b.axes[a].size as i64)
                    .max();
                let (start, end) = (start.unwrap_or(0), end.unwrap_or(0));
                AxisField {
                    size: (end - start) as usize,
                    jump,
                    start,
                }
            } else {
                branches
                    .iter()
                    .map(|b| b.axes[a])
                    .max_by_key(|f| f.size)
                    .unwrap_or(out.axes[a])
            };
        }
        out
    }
}

fn pair(size: &Size, what: &str) -> Result<[usize; 2], LayerErrorKind> {
    let v = size.resolve(2, what)?;
    Ok([v[0], v[1]])
}

fn paddings(padding: &Padding) -> Result<[AxisPadding; 2], LayerErrorKind> {
    Ok([padding.axis(0, 2)?, padding.axis(1, 2)?])
}

fn conv_window(
    kernel: &Size,
    stride: &Size,
    dilation: &Size,
    padding: &Padding,
) -> Result<Window, LayerErrorKind> {
    Ok(Window {
        kernel: pair(kernel, "kernel")?,
        stride: pair(stride, "stride")?,
        dilation: pair(dilation, "dilation")?,
        padding: paddings(padding)?,
        rounding: Rounding::Floor,
    })
}

/// `'name'` of a layer, or its position when it has none; nested layers follow their block.
fn label(prefix: &str, spec: &LayerSpec, index: usize) -> String {
    let own = match &spec.name {
        Some(name) => format!("'{name}'"),
        None => format!("layer {}", index + 1),
    };
    if prefix.is_empty() {
        own
    } else {
        format!("{prefix} > {own}")
    }
}

fn walk(layers: &[LayerSpec], mut state: State, prefix: &str) -> Result<State, VisualizeError> {
    use LayerConfig as C;
    for (index, layer) in layers.iter().enumerate() {
        let name = label(prefix, layer, index);
        let fail = |source: LayerErrorKind| VisualizeError::Layer {
            layer: name.clone(),
            source,
        };
        let unsupported = |reason: &str| VisualizeError::Unsupported {
            layer: name.clone(),
            reason: reason.to_string(),
        };
        let not_spatial = |kind: &'static str| VisualizeError::NotSpatial {
            layer: name.clone(),
            kind,
        };
        match &layer.config {
            C::Conv2d(c) => state
                .slide(&conv_window(&c.kernel, &c.stride, &c.dilation, &c.padding).map_err(fail)?)
                .map_err(fail)?,
            C::DepthwiseConv2d(c) => state
                .slide(&conv_window(&c.kernel, &c.stride, &c.dilation, &c.padding).map_err(fail)?)
                .map_err(fail)?,
            // The pointwise half is 1x1: only the depthwise half moves the window.
            C::SeparableConv2d(c) => state
                .slide(&conv_window(&c.kernel, &c.stride, &c.dilation, &c.padding).map_err(fail)?)
                .map_err(fail)?,
            C::MaxPool2d(p) | C::AvgPool2d(p) => {
                let one = Size::All(1);
                let mut w = conv_window(
                    &p.pool,
                    p.stride.as_ref().unwrap_or(&p.pool),
                    p.dilation.as_ref().unwrap_or(&one),
                    &p.padding,
                )
                .map_err(fail)?;
                if p.ceil_mode {
                    w.rounding = Rounding::Ceil;
                }
                state.slide(&w).map_err(fail)?;
            }
            C::ZeroPadding2d(z) => {
                let one = Size::All(1);
                state
                    .slide(&conv_window(&one, &one, &one, &z.padding).map_err(fail)?)
                    .map_err(fail)?;
            }
            C::AdaptiveAvgPool2d(a) => {
                let out = pair(&a.output, "output size").map_err(fail)?;
                let mut kernel = [1; 2];
                for ax in 0..2 {
                    if out[ax] == 0 || !state.size[ax].is_multiple_of(out[ax]) {
                        return Err(unsupported(&format!(
                            "adaptive pooling from {}x{} to {}x{} uses bins of unequal sizes",
                            state.size[0], state.size[1], out[0], out[1]
                        )));
                    }
                    kernel[ax] = state.size[ax] / out[ax];
                }
                // Bins that divide the map evenly are an ordinary pool with stride = window.
                state
                    .slide(&Window {
                        kernel,
                        stride: kernel,
                        dilation: [1, 1],
                        padding: [AxisPadding::Fixed(0, 0); 2],
                        rounding: Rounding::Floor,
                    })
                    .map_err(fail)?;
            }
            C::Residual { body, shortcut, .. } => {
                let inner = name.clone();
                let body = walk(body, state, &inner)?;
                let shortcut = walk(shortcut, state, &inner)?;
                state = State::union(&[body, shortcut]);
            }
            C::Concat { branches } => {
                let inner = name.clone();
                let ends = branches
                    .iter()
                    .map(|b| walk(&b.layers, state, &inner))
                    .collect::<Result<Vec<_>, _>>()?;
                if !ends.is_empty() {
                    state = State::union(&ends);
                }
            }
            C::Aux { .. }
            | C::BatchNorm(_)
            | C::Dropout(_)
            | C::LocalResponseNorm(_)
            | C::SqueezeExcitation(_)
            | C::ChannelPool(_)
            | C::Activation { .. }
            | C::Relu
            | C::Relu6
            | C::Sigmoid
            | C::Tanh
            | C::Softmax => {}
            C::Flatten => return Err(not_spatial("flatten")),
            C::Dense(_) => return Err(not_spatial("dense")),
            C::GlobalAvgPool => return Err(not_spatial("global average pooling")),
            C::GlobalMaxPool => return Err(not_spatial("global max pooling")),
            C::ConvTranspose1d(_) | C::ConvTranspose2d(_) | C::ConvTranspose3d(_) => {
                return Err(unsupported(
                    "a transposed convolution upsamples, so its units do not step over the input by whole pixels",
                ));
            }
            C::Conv1d(_)
            | C::Conv3d(_)
            | C::MaxPool1d(_)
            | C::MaxPool3d(_)
            | C::AvgPool1d(_)
            | C::AvgPool3d(_) => {
                return Err(unsupported(
                    "it is a 1D or 3D layer; receptive fields are computed for images",
                ));
            }
        }
    }
    Ok(state)
}

/// The receptive field of the units of top-level layer `through` (an index into
/// `spec.layers`, which is also the index into [`convnet_layers::Sequential::layer_names`]).
pub fn receptive_field(spec: &ModelSpec, through: usize) -> Result<Field, VisualizeError> {
    let &[_, h, w] = spec.input.as_slice() else {
        return Err(VisualizeError::Invalid(format!(
            "'{}' takes inputs of shape {:?}; receptive fields are for images [channels, height, width]",
            spec.name, spec.input
        )));
    };
    if through >= spec.layers.len() {
        return Err(VisualizeError::Invalid(format!(
            "'{}' has {} layers, there is no layer {}",
            spec.name,
            spec.layers.len(),
            through + 1
        )));
    }
    let start = State {
        axes: [AxisField::PIXEL; 2],
        size: [h, w],
    };
    let end = walk(&spec.layers[..=through], start, "")?;
    Ok(Field {
        rows: end.axes[0],
        cols: end.axes[1],
        input: [h, w],
        output: end.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};
    use convnet_layers::Mode;
    use convnet_zoo::ZooOptions;

    fn index(spec: &ModelSpec, name: &str) -> usize {
        spec.layers
            .iter()
            .position(|l| l.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no layer {name}"))
    }

    fn field_of(model: &str, layer: &str) -> Field {
        let spec = convnet_zoo::imagenet_spec(model, &ZooOptions::default())
            .or_else(|| convnet_zoo::spec(model).ok())
            .unwrap();
        receptive_field(&spec, index(&spec, layer)).unwrap()
    }

    fn square(f: &Field) -> (usize, usize, i64) {
        assert_eq!(f.rows, f.cols, "square networks have square fields");
        (f.rows.size, f.rows.jump, f.rows.start)
    }

    #[test]
    fn vgg16_matches_the_published_fields() {
        // conv1_1: one 3x3 kernel, padded by 1.
        assert_eq!(square(&field_of("vgg16", "features.0")), (3, 1, -1));
        // conv5_3 sees 196 pixels (Simonyan & Zisserman's stacks of 3x3; the usual table value):
        // 5 after stage 1, 6 after its pool, then +4, +2, +8x3, +4, +16x3, +8, +32x3.
        let conv5_3 = field_of("vgg16", "features.28");
        assert_eq!(square(&conv5_3), (196, 16, -90));
        assert_eq!(conv5_3.output, [14, 14]);
        // pool5 adds 16; avgpool to 7x7 on a 7x7 map changes nothing.
        assert_eq!(square(&field_of("vgg16", "features.30")).0, 212);
        assert_eq!(square(&field_of("vgg16", "avgpool")), (212, 32, -90));
    }

    #[test]
    fn alexnet_conv1_is_11_pixels_every_4() {
        assert_eq!(square(&field_of("alexnet", "features.0")), (11, 4, -2));
        // conv1 11/4, pool 3/2 -> 19, conv2 5 -> 51, pool -> 67, three 3x3 at jump 16 -> 163,
        // pool5 -> 195.
        assert_eq!(square(&field_of("alexnet", "features.2")), (19, 8, -2));
        assert_eq!(square(&field_of("alexnet", "features.10")).0, 163);
        assert_eq!(square(&field_of("alexnet", "features.12")), (195, 32, -66));
    }

    #[test]
    fn resnet18_through_its_residual_blocks() {
        // conv1 7/2 -> 7, maxpool 3/2 -> 11 every 4; layer1's four 3x3 convs -> 43; each later
        // stage adds a strided 3x3 and three more: 99 every 8, 211 every 16, 435 every 32 (the
        // usual figure for ResNet-18). The 1x1 downsampling shortcuts see less than the bodies.
        let spec = convnet_zoo::imagenet_spec("resnet18", &ZooOptions::default()).unwrap();
        let last_of = |stage: &str| {
            let prefix = format!("{stage}.");
            spec.layers
                .iter()
                .rposition(|l| l.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))
                .unwrap()
        };
        let sizes: Vec<(usize, usize)> = ["layer1", "layer2", "layer3", "layer4"]
            .iter()
            .map(|s| {
                let f = receptive_field(&spec, last_of(s)).unwrap();
                (f.rows.size, f.rows.jump)
            })
            .collect();
        assert_eq!(sizes, [(43, 4), (99, 8), (211, 16), (435, 32)]);
        let layer4 = receptive_field(&spec, last_of("layer4")).unwrap();
        assert_eq!(layer4.output, [7, 7]);
    }

    #[test]
    fn lenet5_and_same_padding_by_hand() {
        // 5 -> pool 2: 6 every 2 -> conv 5: 6 + 4*2 = 14 -> pool: 16 every 4.
        assert_eq!(square(&field_of("lenet5", "conv2")), (14, 2, 0));
        assert_eq!(square(&field_of("lenet5", "pool2")), (16, 4, 0));
        // fmnist-cnn's 7x7 `same` conv on 28 pads 3 each side.
        assert_eq!(square(&field_of("fmnist-cnn", "conv1")), (7, 1, -3));
        // Then pool 2 (8 every 2), 3x3 same twice (+4 +4 = 16, start -3 - 2 - 2).
        assert_eq!(square(&field_of("fmnist-cnn", "conv3")), (16, 2, -7));
    }

    #[test]
    fn same_padding_follows_the_size_of_each_layers_input() {
        // 7x7 stride 2 `same` on 9 pixels: 5 outputs, total pad (5-1)*2 + 7 - 9 = 6 -> 3 + 3; on
        // 10 pixels: 5 outputs, total 5 -> 2 before, 3 after.
        for (n, start) in [(9, -3), (10, -2)] {
            let spec = ModelSpec::parse(
                &format!(
                    "input = [1, {n}, {n}]\n[[layers]]\ntype = \"conv2d\"\nfilters = 1\nkernel = 7\nstride = 2\npadding = \"same\""
                ),
                "t.toml",
            )
            .unwrap();
            let f = receptive_field(&spec, 0).unwrap();
            assert_eq!((f.rows.size, f.rows.jump, f.rows.start), (7, 2, start));
            assert_eq!(f.output, [5, 5]);
        }
    }

    #[test]
    fn layers_after_flatten_or_dense_and_1d_models_are_refused() {
        let spec = convnet_zoo::spec("lenet5").unwrap();
        let err = receptive_field(&spec, index(&spec, "flatten")).unwrap_err();
        assert!(matches!(err, VisualizeError::NotSpatial { .. }), "{err}");
        assert!(err.to_string().contains("'flatten'"), "{err}");
        let err = receptive_field(&spec, index(&spec, "fc1")).unwrap_err();
        assert!(matches!(err, VisualizeError::NotSpatial { .. }), "{err}");
        let signal = convnet_zoo::spec("signal-cnn").unwrap();
        assert!(receptive_field(&signal, 0).is_err());
        assert!(receptive_field(&spec, 99).is_err());
    }

    #[test]
    fn rect_iou_and_clipping() {
        let a = Rect {
            x0: 0,
            y0: 0,
            x1: 4,
            y1: 4,
        };
        let b = Rect {
            x0: 2,
            y0: 0,
            x1: 6,
            y1: 4,
        };
        assert!((a.iou(&b) - 8.0 / 24.0).abs() < 1e-12);
        assert_eq!(a.iou(&a), 1.0);
        let far = Rect {
            x0: 10,
            y0: 10,
            x1: 12,
            y1: 12,
        };
        assert_eq!(a.iou(&far), 0.0);
        let outside = Rect {
            x0: -3,
            y0: -1,
            x1: 5,
            y1: 9,
        };
        assert_eq!(
            outside.clipped([6, 4]),
            Rect {
                x0: 0,
                y0: 0,
                x1: 4,
                y1: 6
            }
        );
    }

    // ---- The empirical check: no formulas, only the network itself. ----

    /// Runs the network on an input and on one copy per pixel with that pixel changed, and
    /// returns for every pixel `(y, x)` the set of output cells of layer `through` that moved.
    /// The change is huge so that a pixel reached only through the corner taps of several
    /// kernels (a product of small weights) still moves a unit far more than rounding does.
    fn cells_moved_by_each_pixel(spec: &ModelSpec, through: usize) -> Vec<Vec<(usize, usize)>> {
        let device = Device::flex();
        device.seed(7);
        let model = spec.build(&device).unwrap();
        let &[c, h, w] = spec.input.as_slice() else {
            panic!("image input")
        };
        let plane = c * h * w;
        // Deterministic input noise.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let base: Vec<f32> = (0..plane)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 1000) as f32 / 1000.0
            })
            .collect();
        let mut batch = base.clone();
        for p in 0..h * w {
            let mut x = base.clone();
            for ch in 0..c {
                x[ch * h * w + p] += 1.0e6;
            }
            batch.extend(x);
        }
        let n = h * w + 1;
        let x = Tensor::<4>::from_data(TensorData::new(batch, [n, c, h, w]), &device);
        let name = model.layer_names()[through].clone();
        let out = model
            .forward_features(x, &[name.as_str()], Mode::Eval)
            .unwrap()
            .remove(0)
            .into_map2d()
            .unwrap();
        let [_, oc, oh, ow] = out.dims();
        let values = out
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        let per = oc * oh * ow;
        (0..h * w)
            .map(|p| {
                let moved = &values[(p + 1) * per..(p + 2) * per];
                let mut cells = Vec::new();
                for y in 0..oh {
                    for x in 0..ow {
                        let changed = (0..oc).any(|ch| {
                            let i = ch * oh * ow + y * ow + x;
                            (moved[i] - values[i]).abs() > 1e-4
                        });
                        if changed {
                            cells.push((y, x));
                        }
                    }
                }
                cells
            })
            .collect()
    }

    /// The output cells whose computed window holds each pixel.
    fn cells_computed(field: &Field) -> Vec<Vec<(usize, usize)>> {
        let [h, w] = field.input;
        let mut out = vec![Vec::new(); h * w];
        for (p, cells) in out.iter_mut().enumerate() {
            let (py, px) = ((p / w) as i64, (p % w) as i64);
            for y in 0..field.output[0] {
                for x in 0..field.output[1] {
                    if field.window(y, x).contains(py, px) {
                        cells.push((y, x));
                    }
                }
            }
        }
        out
    }

    /// A linear network (no activation to hide a change) over every kind of window: `same`
    /// padding with stride 2 on odd sizes, asymmetric zero padding, overlapping average
    /// pooling, a non-square kernel and stride, a residual block, a separable convolution, a
    /// concat whose branches differ in size and one whose windows are shifted apart along one
    /// axis (the union is larger than either).
    const LINEAR: &str = r#"
input = [2, 15, 13]

[[layers]]
name = "c1"
type = "conv2d"
filters = 3
kernel = 3
stride = 2
padding = "same"

[[layers]]
name = "pad"
type = "zero_padding2d"
padding = [[1, 0], [0, 2]]

[[layers]]
name = "avg"
type = "avg_pool2d"
pool = 2
stride = 1

[[layers]]
name = "c2"
type = "conv2d"
filters = 3
kernel = [3, 2]
stride = [1, 2]
padding = 1

[[layers]]
name = "bn"
type = "batch_norm"

[[layers]]
name = "res"
type = "residual"

[[layers.body]]
type = "conv2d"
filters = 3
kernel = 3
padding = 1

[[layers]]
name = "sep"
type = "separable_conv2d"
filters = 2
kernel = 3
padding = "same"

[[layers]]
name = "cat"
type = "concat"

[[layers.branches]]
[[layers.branches.layers]]
type = "conv2d"
filters = 1
kernel = 1

[[layers.branches]]
[[layers.branches.layers]]
type = "conv2d"
filters = 1
kernel = 3
padding = 1

[[layers]]
name = "shifted"
type = "concat"

[[layers.branches]]
[[layers.branches.layers]]
type = "conv2d"
filters = 1
kernel = 3
padding = [[2, 0], [1, 1]]

[[layers.branches]]
[[layers.branches.layers]]
type = "conv2d"
filters = 1
kernel = 3
padding = [[0, 2], [1, 1]]
"#;

    #[test]
    fn the_computed_field_is_exactly_the_pixels_that_move_a_linear_network() {
        let spec = ModelSpec::parse(LINEAR, "linear.toml").unwrap();
        for through in 0..spec.layers.len() {
            let field = receptive_field(&spec, through).unwrap();
            let moved = cells_moved_by_each_pixel(&spec, through);
            let computed = cells_computed(&field);
            for (p, (m, c)) in moved.iter().zip(&computed).enumerate() {
                assert_eq!(
                    m,
                    c,
                    "layer {through} ({:?}), pixel ({}, {}): {field:?}",
                    spec.layers[through].name,
                    p / 13,
                    p % 13
                );
            }
        }
    }

    #[test]
    fn max_pooling_and_dilation_stay_inside_the_computed_window() {
        // Max pooling passes a change on only where it wins, and a dilated kernel skips pixels,
        // so the pixels that move a unit are a subset of its window; the dilated kernel's
        // corners still reach the window's edges.
        let spec = ModelSpec::parse(
            r#"
input = [1, 17, 17]
[[layers]]
type = "conv2d"
filters = 2
kernel = 3
dilation = 2
padding = "same"
[[layers]]
type = "max_pool2d"
pool = 3
stride = 2
padding = 1
[[layers]]
type = "relu"
[[layers]]
type = "conv2d"
filters = 2
kernel = 3
stride = 2
"#,
            "t.toml",
        )
        .unwrap();
        for through in 0..spec.layers.len() {
            let field = receptive_field(&spec, through).unwrap();
            let moved = cells_moved_by_each_pixel(&spec, through);
            let computed = cells_computed(&field);
            for (m, c) in moved.iter().zip(&computed) {
                assert!(m.iter().all(|cell| c.contains(cell)), "{m:?} vs {c:?}");
            }
        }
        let field = receptive_field(&spec, 0).unwrap();
        assert_eq!((field.rows.size, field.rows.start), (5, -2));
        let moved = cells_moved_by_each_pixel(&spec, 0);
        // The unit at (5, 5) sees pixels 3..8: its corners (3, 3) and (7, 7) move it.
        assert!(moved[3 * 17 + 3].contains(&(5, 5)));
        assert!(moved[7 * 17 + 7].contains(&(5, 5)));
        assert!(
            !moved[4 * 17 + 4].contains(&(5, 5)),
            "a hole of the dilation"
        );
    }
}
