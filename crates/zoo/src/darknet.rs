//! Networks from darknet `.cfg` files (the YOLO configs of Debian's `darknet` package): the
//! sections are parsed, every layer's output shape follows darknet's own rules (checked against
//! the tables darknet prints, `fixtures/darknet/`); a config made only of convolutions and pools
//! (yolov2-tiny) becomes an ordinary [`ModelSpec`], and any of them a [`DarknetNet`] graph that
//! runs (routes, shortcuts, reorgs, upsampling, several YOLO outputs).
//!
//! Darknet's rules, from its `parse_*` functions: a convolution with `pad=1` pads `size/2`;
//! a max pool's `stride` defaults to 1, its `size` to the stride and its total `padding` to
//! `size − 1`, put `padding/2` before; `route` concatenates earlier layers' maps (negative
//! indices count back), `reorg` moves `stride x stride` blocks into channels, `shortcut` adds
//! an earlier layer, `upsample` repeats pixels, and `yolo` / `region` pass their input through.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use convnet_layers::geometry::{AxisPadding, window_axis};
use convnet_layers::limits::checked_product;
use convnet_layers::{
    Activation, BatchNormConfig, Bytes, ConvConfig, LayerConfig, Mode, ModelError, ModelSpec,
    Padding, PoolConfig, Rounding, Sequential, SpecError,
};

/// Why a cfg cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct DarknetError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// One `[section]` with its `key=value` options and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: String,
    pub line: usize,
    pub options: BTreeMap<String, String>,
}

/// A parsed cfg: `[net]` and the layers after it.
#[derive(Debug, Clone, PartialEq)]
pub struct DarknetCfg {
    pub path: String,
    pub net: Section,
    pub layers: Vec<Section>,
}

/// The section kinds convnet understands.
const KNOWN: &[&str] = &[
    "convolutional",
    "conv",
    "maxpool",
    "max",
    "route",
    "reorg",
    "shortcut",
    "upsample",
    "yolo",
    "region",
    "detection",
    "dropout",
    "avgpool",
    "softmax",
];

/// `[C, H, W]` of a layer's output.
pub type Shape = [usize; 3];

/// A `[convolutional]` section, its defaults filled in.
struct ConvSettings {
    filters: usize,
    size: usize,
    stride: usize,
    /// On each side.
    pad: usize,
    groups: usize,
    batch_normalize: bool,
}

/// A `[maxpool]` section, its defaults filled in.
struct PoolSettings {
    size: usize,
    stride: usize,
    /// In total, `padding / 2` before.
    padding: usize,
}

impl DarknetCfg {
    /// Parses cfg text (`#` and `;` start comments).
    pub fn parse(text: &str, path: &str) -> Result<Self, DarknetError> {
        let fail = |line: usize, message: String| DarknetError {
            path: path.to_string(),
            line,
            message,
        };
        let mut sections: Vec<Section> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split(['#', ';']).next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(kind) = line.strip_prefix('[') {
                let kind = kind
                    .strip_suffix(']')
                    .ok_or_else(|| fail(i + 1, format!("'{line}' is not a [section] header")))?
                    .trim()
                    .to_string();
                let is_net = kind == "net" || kind == "network";
                if !is_net && !KNOWN.contains(&kind.as_str()) {
                    return Err(fail(
                        i + 1,
                        format!(
                            "unknown section [{kind}]; convnet understands [net] and [{}]",
                            KNOWN.join("], [")
                        ),
                    ));
                }
                sections.push(Section {
                    kind,
                    line: i + 1,
                    options: BTreeMap::new(),
                });
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                fail(
                    i + 1,
                    format!("'{line}' is neither a [section] nor key=value"),
                )
            })?;
            let section = sections
                .last_mut()
                .ok_or_else(|| fail(i + 1, "an option before the first [section]".into()))?;
            section
                .options
                .insert(key.trim().to_string(), value.trim().to_string());
        }
        let mut sections = sections.into_iter();
        let net = sections
            .next()
            .filter(|s| s.kind == "net" || s.kind == "network")
            .ok_or_else(|| fail(1, "a darknet cfg starts with a [net] section".into()))?;
        let layers: Vec<Section> = sections.collect();
        if let Some(s) = layers
            .iter()
            .find(|s| s.kind == "net" || s.kind == "network")
        {
            return Err(fail(s.line, "a second [net] section".into()));
        }
        if layers.is_empty() {
            return Err(fail(net.line, "the cfg has no layers".into()));
        }
        Ok(Self {
            path: path.to_string(),
            net,
            layers,
        })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, DarknetError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DarknetError {
            path: shown.clone(),
            line: 0,
            message: format!("cannot read the cfg: {e}"),
        })?;
        Self::parse(&text, &shown)
    }

    fn fail(&self, section: &Section, message: String) -> DarknetError {
        DarknetError {
            path: self.path.clone(),
            line: section.line,
            message: format!("[{}] {message}", section.kind),
        }
    }

    fn int(&self, s: &Section, key: &str, default: Option<i64>) -> Result<i64, DarknetError> {
        match s.options.get(key) {
            Some(v) => v
                .parse()
                .map_err(|_| self.fail(s, format!("{key}={v} is not a whole number"))),
            None => default.ok_or_else(|| self.fail(s, format!("{key}= is missing"))),
        }
    }

    fn positive(
        &self,
        s: &Section,
        key: &str,
        default: Option<i64>,
    ) -> Result<usize, DarknetError> {
        let v = self.int(s, key, default)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| self.fail(s, format!("{key} must be positive, not {v}")))
    }

    /// A value that may be 0 but not negative.
    fn non_negative(&self, s: &Section, key: &str, default: i64) -> Result<usize, DarknetError> {
        let v = self.int(s, key, Some(default))?;
        usize::try_from(v).map_err(|_| self.fail(s, format!("{key}={v} must not be negative")))
    }

    /// The product of `factors`, or an error naming the section and `key` when it overflows.
    fn times(&self, s: &Section, key: &str, factors: &[usize]) -> Result<usize, DarknetError> {
        checked_product(key, factors).map_err(|e| self.fail(s, e.to_string()))
    }

    /// One axis of a convolution or pool, by the window rule every convnet layer uses (checked
    /// arithmetic; darknet's `(n + padding - size) / stride + 1`).
    fn window(
        &self,
        s: &Section,
        n: usize,
        size: usize,
        stride: usize,
        padding: AxisPadding,
    ) -> Result<usize, DarknetError> {
        window_axis(n, size, stride, 1, padding, Rounding::Floor)
            .map(|g| g.output)
            .map_err(|e| self.fail(s, format!("size={size}: {e}")))
    }

    /// A `[convolutional]` section's settings with darknet's defaults.
    fn conv_settings(&self, s: &Section) -> Result<ConvSettings, DarknetError> {
        let size = self.positive(s, "size", Some(1))?;
        let pad = if self.int(s, "pad", Some(0))? != 0 {
            size / 2
        } else {
            self.non_negative(s, "padding", 0)?
        };
        Ok(ConvSettings {
            filters: self.positive(s, "filters", Some(1))?,
            size,
            stride: self.positive(s, "stride", Some(1))?,
            pad,
            groups: self.positive(s, "groups", Some(1))?,
            batch_normalize: self.int(s, "batch_normalize", Some(0))? != 0,
        })
    }

    /// A `[maxpool]` section's settings: `stride` 1, `size` the stride and `padding` (total)
    /// `size - 1` unless given.
    fn pool_settings(&self, s: &Section) -> Result<PoolSettings, DarknetError> {
        let stride = self.positive(s, "stride", Some(1))?;
        let size = self.positive(s, "size", Some(stride as i64))?;
        let padding = self.non_negative(s, "padding", size as i64 - 1)?;
        Ok(PoolSettings {
            size,
            stride,
            padding,
        })
    }

    /// Comma-separated numbers of option `key` (`mask`, `anchors`), if it is given.
    fn list<T: std::str::FromStr>(
        &self,
        s: &Section,
        key: &str,
    ) -> Result<Option<Vec<T>>, DarknetError> {
        let Some(text) = s.options.get(key) else {
            return Ok(None);
        };
        text.split(',')
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    self.fail(s, format!("{key}={text}: '{}' is not a number", v.trim()))
                })
            })
            .collect::<Result<Vec<T>, _>>()
            .map(Some)
    }

    /// `anchors=`, when given, holds a width and a height for each of the `num` anchors.
    fn check_anchors(&self, s: &Section, num: usize) -> Result<(), DarknetError> {
        if let Some(anchors) = self.list::<f64>(s, "anchors")? {
            if anchors.len() != 2 * num {
                return Err(self.fail(
                    s,
                    format!(
                        "anchors= has {} numbers but num={num} needs {} (a width and a height each)",
                        anchors.len(),
                        2 * num
                    ),
                ));
            }
            if let Some(bad) = anchors.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
                return Err(self.fail(s, format!("anchors= holds {bad}; sizes must be positive")));
            }
        }
        Ok(())
    }

    /// A `[yolo]` layer (darknet's `parse_yolo`): `mask` picks anchors among `num`, and the map it
    /// reads holds `(classes + 5)` numbers per masked anchor.
    fn check_yolo(&self, s: &Section, channels: usize) -> Result<(), DarknetError> {
        let classes = self.positive(s, "classes", Some(20))?;
        let num = self.positive(s, "num", Some(1))?;
        self.check_anchors(s, num)?;
        let masks = match self.list::<i64>(s, "mask")? {
            None => num,
            Some(mask) => {
                if let Some(bad) = mask
                    .iter()
                    .find(|&&m| !usize::try_from(m).is_ok_and(|m| m < num))
                {
                    return Err(self.fail(
                        s,
                        format!(
                            "mask={}: {bad} is not one of the num={num} anchors (0 to {})",
                            s.options["mask"],
                            num - 1
                        ),
                    ));
                }
                mask.len()
            }
        };
        let per_anchor = self.add_five(s, classes, 5)?;
        self.check_head_channels(
            s,
            channels,
            &[masks, per_anchor],
            &format!("(classes={classes} + 5) x {masks} masks"),
        )
    }

    /// A `[region]` layer (darknet's `parse_region`): `num` anchors of `classes + coords + 1`
    /// numbers each.
    fn check_region(&self, s: &Section, channels: usize) -> Result<(), DarknetError> {
        let classes = self.positive(s, "classes", Some(20))?;
        let coords = self.positive(s, "coords", Some(4))?;
        let num = self.positive(s, "num", Some(1))?;
        self.check_anchors(s, num)?;
        let per_anchor = self.add_five(s, classes, coords + 1)?;
        self.check_head_channels(
            s,
            channels,
            &[num, per_anchor],
            &format!("num={num} x (classes={classes} + coords={coords} + 1)"),
        )
    }

    fn add_five(&self, s: &Section, classes: usize, extra: usize) -> Result<usize, DarknetError> {
        classes
            .checked_add(extra)
            .ok_or_else(|| self.fail(s, format!("classes={classes} overflows 64-bit arithmetic")))
    }

    /// The channels a detection layer reads must be exactly what its settings describe.
    fn check_head_channels(
        &self,
        s: &Section,
        channels: usize,
        factors: &[usize],
        rule: &str,
    ) -> Result<(), DarknetError> {
        let needed = self.times(s, "classes", factors)?;
        if channels != needed {
            return Err(self.fail(
                s,
                format!(
                    "classes: the layer before gives {channels} channels but {rule} needs {needed} (set filters={needed} in the [convolutional] before it)"
                ),
            ));
        }
        Ok(())
    }

    /// The input `[C, H, W]` from `[net]`.
    pub fn input(&self) -> Result<Shape, DarknetError> {
        Ok([
            self.positive(&self.net, "channels", Some(3))?,
            self.positive(&self.net, "height", None)?,
            self.positive(&self.net, "width", None)?,
        ])
    }

    /// Layer indices a `route` reads (negative ones count back from layer `index`).
    fn route_sources(&self, s: &Section, index: usize) -> Result<Vec<usize>, DarknetError> {
        let list = s
            .options
            .get("layers")
            .ok_or_else(|| self.fail(s, "layers= is missing".into()))?;
        list.split(',')
            .map(|v| {
                let v: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| self.fail(s, format!("layers={list}: '{v}' is not a number")))?;
                let at = if v < 0 { index as i64 + v } else { v };
                usize::try_from(at)
                    .ok()
                    .filter(|&a| a < index)
                    .ok_or_else(|| {
                        self.fail(s, format!("layers={list}: {v} is not an earlier layer"))
                    })
            })
            .collect()
    }

    /// Every layer's output shape, by darknet's rules.
    pub fn shapes(&self) -> Result<Vec<Shape>, DarknetError> {
        let mut out: Vec<Shape> = Vec::with_capacity(self.layers.len());
        let mut current = self.input()?;
        self.times(&self.net, "input size", &current)?;
        for (i, s) in self.layers.iter().enumerate() {
            let [c, h, w] = current;
            let shape = match s.kind.as_str() {
                "convolutional" | "conv" => {
                    let conv = self.conv_settings(s)?;
                    if c % conv.groups != 0 || conv.filters % conv.groups != 0 {
                        return Err(self.fail(
                            s,
                            format!(
                                "groups={} must divide both the input channels ({c}) and filters={}",
                                conv.groups, conv.filters
                            ),
                        ));
                    }
                    let pad = AxisPadding::Fixed(conv.pad, conv.pad);
                    let axis = |n| self.window(s, n, conv.size, conv.stride, pad);
                    [conv.filters, axis(h)?, axis(w)?]
                }
                "maxpool" | "max" => {
                    let pool = self.pool_settings(s)?;
                    let pad = AxisPadding::Fixed(pool.padding / 2, pool.padding - pool.padding / 2);
                    let axis = |n| self.window(s, n, pool.size, pool.stride, pad);
                    [c, axis(h)?, axis(w)?]
                }
                "route" => {
                    let sources = self.route_sources(s, i)?;
                    let first = out[sources[0]];
                    let mut channels = 0usize;
                    for &j in &sources {
                        if out[j][1..] != first[1..] {
                            return Err(self.fail(
                                s,
                                format!(
                                    "layers {} and {j} have maps of different sizes",
                                    sources[0]
                                ),
                            ));
                        }
                        channels = channels.checked_add(out[j][0]).ok_or_else(|| {
                            self.fail(s, "the routed channels overflow 64-bit arithmetic".into())
                        })?;
                    }
                    [channels, first[1], first[2]]
                }
                "reorg" => {
                    let stride = self.positive(s, "stride", Some(2))?;
                    if h % stride != 0 || w % stride != 0 {
                        return Err(self.fail(
                            s,
                            format!("a {h}x{w} map does not divide into {stride}x{stride} blocks"),
                        ));
                    }
                    [
                        self.times(s, "stride", &[c, stride, stride])?,
                        h / stride,
                        w / stride,
                    ]
                }
                "shortcut" => {
                    let from = self.int(s, "from", None)?;
                    let at = if from < 0 { i as i64 + from } else { from };
                    let source = usize::try_from(at).ok().filter(|&a| a < i).ok_or_else(|| {
                        self.fail(s, format!("from={from} is not an earlier layer"))
                    })?;
                    if out[source] != current {
                        return Err(self.fail(
                            s,
                            format!("adds layer {source}'s {:?} to {current:?}", out[source]),
                        ));
                    }
                    current
                }
                "upsample" => {
                    let stride = self.positive(s, "stride", Some(2))?;
                    [
                        c,
                        self.times(s, "stride", &[h, stride])?,
                        self.times(s, "stride", &[w, stride])?,
                    ]
                }
                "yolo" => {
                    self.check_yolo(s, c)?;
                    current
                }
                "region" => {
                    self.check_region(s, c)?;
                    current
                }
                "avgpool" => [c, 1, 1],
                _ => current,
            };
            // Every map must be countable: later sizes and summaries multiply its axes.
            self.times(s, "output size", &shape)?;
            out.push(shape);
            current = shape;
        }
        Ok(out)
    }

    /// Darknet's table: index, layer, filters, size / stride, input and output as `H x W x C`.
    pub fn table(&self) -> Result<String, DarknetError> {
        let shapes = self.shapes()?;
        let mut input = self.input()?;
        let mut text =
            String::from("layer     filters    size              input                output\n");
        let hwc = |s: Shape| format!("{:>4} x{:>4} x{:>4}", s[1], s[2], s[0]);
        for (i, (s, &shape)) in self.layers.iter().zip(&shapes).enumerate() {
            let describe = match s.kind.as_str() {
                "convolutional" | "conv" => format!(
                    "conv  {:>5} {:>2} x{:>2} /{:>2}",
                    shape[0],
                    self.int(s, "size", Some(1))?,
                    self.int(s, "size", Some(1))?,
                    self.int(s, "stride", Some(1))?
                ),
                "maxpool" | "max" => {
                    let stride = self.int(s, "stride", Some(1))?;
                    let size = self.int(s, "size", Some(stride))?;
                    format!("max         {size:>2} x{size:>2} /{stride:>2}")
                }
                "route" => format!(
                    "route {}",
                    self.route_sources(s, i)?
                        .iter()
                        .map(|j| j.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => format!("{other:<24}"),
            };
            let _ = writeln!(
                text,
                "{i:>5} {describe:<30} {} -> {}",
                hwc(input),
                hwc(shape)
            );
            input = shape;
        }
        Ok(text)
    }

    /// The convnet layers of darknet layer `i` when it is a convolution (with its batch norm and
    /// activation) or a max pool: named `conv{i}`, `bn{i}`, `leaky{i}`, `max{i}`.
    fn layer_configs(
        &self,
        s: &Section,
        i: usize,
    ) -> Result<Vec<(String, LayerConfig)>, DarknetError> {
        let mut out = Vec::new();
        match s.kind.as_str() {
            "convolutional" | "conv" => {
                let conv = self.conv_settings(s)?;
                let bn = conv.batch_normalize;
                let config = ConvConfig::new(conv.filters, conv.size)
                    .with_stride(conv.stride)
                    .with_padding(Padding::uniform(conv.pad))
                    .with_groups(conv.groups)
                    .with_bias(!bn);
                out.push((format!("conv{i}"), LayerConfig::Conv2d(config)));
                if bn {
                    out.push((
                        format!("bn{i}"),
                        LayerConfig::BatchNorm(BatchNormConfig::default()),
                    ));
                }
                let activation = match s
                    .options
                    .get("activation")
                    .map_or("logistic", String::as_str)
                {
                    "leaky" => Activation::Leaky,
                    "linear" => Activation::Linear,
                    "relu" => Activation::Relu,
                    "logistic" => Activation::Sigmoid,
                    "tanh" => Activation::Tanh,
                    other => {
                        return Err(self.fail(
                            s,
                            format!("activation={other} is not supported (leaky, linear, relu, logistic, tanh)"),
                        ));
                    }
                };
                if activation != Activation::Linear {
                    out.push((
                        format!("{}{i}", activation.name()),
                        LayerConfig::Activation { activation },
                    ));
                }
            }
            "maxpool" | "max" => {
                let PoolSettings {
                    size,
                    stride,
                    padding,
                } = self.pool_settings(s)?;
                let pool =
                    PoolConfig::new(size)
                        .with_stride(stride)
                        .with_padding(Padding::Explicit(vec![(
                            padding / 2,
                            padding - padding / 2,
                        )]));
                out.push((format!("max{i}"), LayerConfig::MaxPool2d(pool)));
            }
            _ => {}
        }
        Ok(out)
    }

    /// A runnable spec for a cfg of convolutions and pools (with a final `region` / `yolo`,
    /// which only marks the output): layers are named `conv0`, `bn0`, `leaky0`, `max1`, …
    /// after their darknet index. Configs with `route`, `reorg`, `shortcut` or `upsample` are
    /// graphs: [`DarknetCfg::build`] runs those.
    pub fn to_spec(&self, name: &str) -> Result<ModelSpec, DarknetError> {
        // Darknet's own checks (groups, detection layers) come first.
        self.shapes()?;
        let mut spec = ModelSpec::new(name, self.input()?.to_vec());
        let last = self.layers.len() - 1;
        for (i, s) in self.layers.iter().enumerate() {
            match s.kind.as_str() {
                "convolutional" | "conv" | "maxpool" | "max" => {
                    for (n, c) in self.layer_configs(s, i)? {
                        spec = spec.named(&n, c);
                    }
                }
                "region" | "yolo" | "detection" if i == last => {}
                "dropout" => {}
                _ => {
                    return Err(self.fail(
                        s,
                        "makes the network a graph, which a sequential spec cannot express; build it with DarknetCfg::build (`convnet summary` shows its shapes)".into(),
                    ));
                }
            }
        }
        Ok(spec)
    }

    /// The network as a graph of darknet's layers, for pictures `input` (`[C, H, W]`; default
    /// the cfg's own): convolutions and pools as small sequential stacks, routes, shortcuts,
    /// reorgs and upsamplings between them, and every `yolo` / `region` layer an output.
    /// Its weights are checked against the memory limit before any is allocated.
    pub fn build(&self, input: Option<Shape>, device: &Device) -> Result<DarknetNet, DarknetError> {
        let net = self.assemble(input, device, ModelSpec::build)?;
        let params = net
            .total_params()
            .map_err(|e| self.fail(&self.net, e.to_string()))?;
        Bytes::f32s(&[params])
            .check(&format!(
                "the weights of {} ({params} parameters)",
                self.path
            ))
            .map_err(|e| self.fail(&self.net, e.to_string()))?;
        Ok(net)
    }

    /// [`DarknetCfg::build`] without allocating the weights (Burn makes each on its first use),
    /// for shapes and parameter counts of configs of any size.
    pub fn build_unallocated(
        &self,
        input: Option<Shape>,
        device: &Device,
    ) -> Result<DarknetNet, DarknetError> {
        self.assemble(input, device, ModelSpec::build_unallocated)
    }

    fn assemble(
        &self,
        input: Option<Shape>,
        device: &Device,
        build: fn(&ModelSpec, &Device) -> Result<Sequential, SpecError>,
    ) -> Result<DarknetNet, DarknetError> {
        let mut cfg = self.clone();
        if let Some([c, h, w]) = input {
            for (key, v) in [("channels", c), ("height", h), ("width", w)] {
                cfg.net.options.insert(key.into(), v.to_string());
            }
        }
        let shapes = cfg.shapes()?;
        let input = cfg.input()?;
        let (mut nodes, mut ops) = (Vec::new(), Vec::new());
        for (i, s) in cfg.layers.iter().enumerate() {
            let in_shape = if i == 0 { input } else { shapes[i - 1] };
            let (node, op) = match s.kind.as_str() {
                "convolutional" | "conv" | "maxpool" | "max" => {
                    let mut spec = ModelSpec::new(format!("layer{i}"), in_shape.to_vec());
                    for (n, c) in cfg.layer_configs(s, i)? {
                        spec = spec.named(&n, c);
                    }
                    let built = build(&spec, device).map_err(|e| cfg.fail(s, e.to_string()))?;
                    (Some(built), Op::Layers)
                }
                "route" => (None, Op::Route(cfg.route_sources(s, i)?)),
                "shortcut" => {
                    if s.options.get("activation").is_some_and(|a| a != "linear") {
                        return Err(cfg.fail(s, "only linear shortcuts are supported".into()));
                    }
                    let from = cfg.int(s, "from", None)?;
                    let at = if from < 0 { i as i64 + from } else { from };
                    (None, Op::Shortcut(at as usize))
                }
                "reorg" => (None, Op::Reorg(cfg.positive(s, "stride", Some(2))?)),
                "upsample" => (None, Op::Upsample(cfg.positive(s, "stride", Some(2))?)),
                "yolo" | "region" | "detection" => (None, Op::Output),
                "dropout" => (None, Op::Identity),
                other => return Err(cfg.fail(s, format!("[{other}] layers cannot be built yet"))),
            };
            nodes.push(node);
            ops.push(op);
        }
        Ok(DarknetNet { nodes, ops, input })
    }
}

/// What a darknet layer does between its neighbours.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// Runs its own layers (a convolution or a pool).
    Layers,
    /// Concatenates earlier layers' maps along the channels.
    Route(Vec<usize>),
    /// Adds an earlier layer's map to the previous one.
    Shortcut(usize),
    /// Moves `s x s` blocks of pixels into channels (space to depth).
    Reorg(usize),
    /// Repeats every pixel `s x s` times.
    Upsample(usize),
    /// Passes its input on and marks it as one of the network's outputs.
    Output,
    Identity,
}

/// A darknet network built from its cfg (see [`DarknetCfg::build`]).
#[derive(Module, Debug)]
pub struct DarknetNet {
    nodes: Vec<Option<Sequential>>,
    #[module(skip)]
    ops: Vec<Op>,
    #[module(skip)]
    input: Shape,
}

/// `[N, C, H, W]` → `[N, s² C, H/s, W/s]`, channel `(dy s + dx) C + c` holding pixel
/// `(s y + dy, s x + dx)` of channel `c` (TensorFlow's `space_to_depth` order; darknet's own
/// reorg interleaves differently, which matters only for weights trained in darknet).
pub fn space_to_depth(x: Tensor<4>, s: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h / s, s, w / s, s])
        .permute([0, 3, 5, 1, 2, 4])
        .reshape([n, s * s * c, h / s, w / s])
}

/// Nearest-neighbour upsampling by `s`: every pixel repeated `s x s` times.
pub fn upsample_nearest(x: Tensor<4>, s: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .repeat_dim(3, s)
        .repeat_dim(5, s)
        .reshape([n, c, h * s, w * s])
}

impl DarknetNet {
    /// `[C, H, W]` of the pictures it takes.
    pub fn input_shape(&self) -> Shape {
        self.input
    }

    /// Parameters (and batch-norm statistics) of every layer, as the summaries count them.
    pub fn total_params(&self) -> Result<usize, convnet_layers::LayerError> {
        use convnet_layers::Summarize;
        self.nodes.iter().flatten().try_fold(0usize, |total, n| {
            let params = n.summary()?.total_params;
            total
                .checked_add(params)
                .ok_or_else(|| convnet_layers::LayerError {
                    layer: n.name().to_string(),
                    op: String::new(),
                    input: n.input_shape().clone(),
                    kind: convnet_layers::SizeError::Overflow {
                        what: "total parameters".into(),
                        dims: format!("{total} + {params}"),
                    }
                    .into(),
                })
        })
    }

    /// How many outputs (`yolo` / `region` layers) it has.
    pub fn heads(&self) -> usize {
        self.ops.iter().filter(|o| **o == Op::Output).count().max(1)
    }

    /// The maps of its `yolo` / `region` layers in order (the last layer's output when it has
    /// none), for a batch `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Result<Vec<Tensor<4>>, ModelError> {
        let dims = x.dims();
        if dims[1..] != self.input {
            return Err(ModelError::Input(convnet_layers::InputError {
                expected: convnet_layers::FeatureShape::new(self.input.to_vec()),
                got: dims.to_vec(),
            }));
        }
        let mut outs: Vec<Tensor<4>> = Vec::with_capacity(self.ops.len());
        let mut heads = Vec::new();
        let mut current = x;
        for (node, op) in self.nodes.iter().zip(&self.ops) {
            current = match (node, op) {
                (Some(layers), Op::Layers) => layers
                    .forward(current, mode)?
                    .into_map2d()
                    .expect("darknet convolutions and pools give maps"),
                (_, Op::Route(sources)) => {
                    Tensor::cat(sources.iter().map(|&j| outs[j].clone()).collect(), 1)
                }
                (_, Op::Shortcut(from)) => current + outs[*from].clone(),
                (_, Op::Reorg(s)) => space_to_depth(current, *s),
                (_, Op::Upsample(s)) => upsample_nearest(current, *s),
                (_, Op::Output) => {
                    heads.push(current.clone());
                    current
                }
                _ => current,
            };
            outs.push(current.clone());
        }
        if heads.is_empty() {
            heads.push(current);
        }
        Ok(heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_to_depth_and_upsampling_move_the_right_pixels() {
        use burn::tensor::TensorData;
        let device = Device::flex();
        // One channel, 4x4, pixel value 10 y + x.
        let v: Vec<f32> = (0..16).map(|i| (10 * (i / 4) + i % 4) as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [1, 1, 4, 4]), &device);
        let d = space_to_depth(x.clone(), 2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Channel (dy 2 + dx) holds pixels (2y + dy, 2x + dx).
        for dy in 0..2 {
            for dx in 0..2 {
                for y in 0..2 {
                    for xx in 0..2 {
                        let got = d[((dy * 2 + dx) * 2 + y) * 2 + xx];
                        assert_eq!(got, (10 * (2 * y + dy) + 2 * xx + dx) as f32);
                    }
                }
            }
        }
        let u = upsample_nearest(x, 3);
        assert_eq!(u.dims(), [1, 1, 12, 12]);
        let u = u.into_data().try_to_vec::<f32>().unwrap();
        for y in 0..12 {
            for xx in 0..12 {
                assert_eq!(u[y * 12 + xx], (10 * (y / 3) + xx / 3) as f32);
            }
        }
    }

    #[test]
    fn bad_cfgs_are_clear_errors() {
        let err = DarknetCfg::parse(
            "[net]\nwidth=32\nheight=32\n[conv]\nfilters=4\n[lstm]\n",
            "x.cfg",
        )
        .unwrap_err();
        assert_eq!(err.line, 6);
        assert!(err.message.contains("unknown section [lstm]"), "{err}");
        assert!(
            DarknetCfg::parse("filters=3\n", "x.cfg")
                .unwrap_err()
                .message
                .contains("before the first")
        );
        assert!(
            DarknetCfg::parse("[convolutional]\n", "x.cfg")
                .unwrap_err()
                .message
                .contains("[net]")
        );
        let cfg = DarknetCfg::parse(
            "[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=x\n",
            "x.cfg",
        )
        .unwrap();
        assert!(
            cfg.shapes()
                .unwrap_err()
                .to_string()
                .contains("x.cfg:4: [convolutional] filters=x")
        );
        let cfg =
            DarknetCfg::parse("[net]\nwidth=32\nheight=32\n[route]\nlayers=-1\n", "x.cfg").unwrap();
        assert!(
            cfg.shapes()
                .unwrap_err()
                .message
                .contains("not an earlier layer")
        );
        let cfg = DarknetCfg::parse("[net]\nheight=32\n[maxpool]\n", "x.cfg").unwrap();
        assert!(
            cfg.shapes()
                .unwrap_err()
                .message
                .contains("width= is missing")
        );
    }
}
