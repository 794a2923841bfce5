//! Networks from darknet `.cfg` files (the YOLO configs of Debian's `darknet` package): the
//! sections are parsed, every layer's output shape follows darknet's own rules (checked against
//! the tables darknet prints, `fixtures/darknet/`), and a config made only of convolutions and
//! pools (yolov2-tiny) becomes an ordinary [`ModelSpec`] that runs.
//!
//! Darknet's rules, from its `parse_*` functions: a convolution with `pad=1` pads `size/2`;
//! a max pool's `stride` defaults to 1, its `size` to the stride and its total `padding` to
//! `size − 1`, put `padding/2` before; `route` concatenates earlier layers' maps (negative
//! indices count back), `reorg` moves `stride x stride` blocks into channels, `shortcut` adds
//! an earlier layer, `upsample` repeats pixels, and `yolo` / `region` pass their input through.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, LayerConfig, ModelSpec, Padding, PoolConfig,
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
        for (i, s) in self.layers.iter().enumerate() {
            let [c, h, w] = current;
            let shape = match s.kind.as_str() {
                "convolutional" | "conv" => {
                    let filters = self.positive(s, "filters", Some(1))?;
                    let size = self.positive(s, "size", Some(1))?;
                    let stride = self.positive(s, "stride", Some(1))?;
                    let pad = if self.int(s, "pad", Some(0))? != 0 {
                        size / 2
                    } else {
                        self.int(s, "padding", Some(0))?.max(0) as usize
                    };
                    let axis = |n: usize| -> Result<usize, DarknetError> {
                        (n + 2 * pad)
                            .checked_sub(size)
                            .map(|v| v / stride + 1)
                            .ok_or_else(|| {
                                self.fail(
                                    s,
                                    format!(
                                        "kernel {size} is larger than the padded input {}",
                                        n + 2 * pad
                                    ),
                                )
                            })
                    };
                    [filters, axis(h)?, axis(w)?]
                }
                "maxpool" | "max" => {
                    let stride = self.positive(s, "stride", Some(1))?;
                    let size = self.positive(s, "size", Some(stride as i64))?;
                    let padding = self.int(s, "padding", Some(size as i64 - 1))?.max(0) as usize;
                    let axis = |n: usize| -> Result<usize, DarknetError> {
                        (n + padding)
                            .checked_sub(size)
                            .map(|v| v / stride + 1)
                            .ok_or_else(|| {
                                self.fail(s, format!("pool {size} is larger than the padded input"))
                            })
                    };
                    [c, axis(h)?, axis(w)?]
                }
                "route" => {
                    let sources = self.route_sources(s, i)?;
                    let first = out[sources[0]];
                    let mut channels = 0;
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
                        channels += out[j][0];
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
                    [c * stride * stride, h / stride, w / stride]
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
                    [c, h * stride, w * stride]
                }
                "avgpool" => [c, 1, 1],
                _ => current,
            };
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

    /// A runnable spec for a cfg of convolutions and pools (with a final `region` / `yolo`,
    /// which only marks the output): layers are named `conv0`, `bn0`, `leaky0`, `max1`, …
    /// after their darknet index. Configs with `route`, `reorg`, `shortcut` or `upsample` are
    /// graphs, which convnet's sequential models cannot express yet.
    pub fn to_spec(&self, name: &str) -> Result<ModelSpec, DarknetError> {
        let mut spec = ModelSpec::new(name, self.input()?.to_vec());
        let last = self.layers.len() - 1;
        for (i, s) in self.layers.iter().enumerate() {
            match s.kind.as_str() {
                "convolutional" | "conv" => {
                    let size = self.positive(s, "size", Some(1))?;
                    let pad = if self.int(s, "pad", Some(0))? != 0 {
                        size / 2
                    } else {
                        self.int(s, "padding", Some(0))?.max(0) as usize
                    };
                    let bn = self.int(s, "batch_normalize", Some(0))? != 0;
                    let conv = ConvConfig::new(self.positive(s, "filters", Some(1))?, size)
                        .with_stride(self.positive(s, "stride", Some(1))?)
                        .with_padding(Padding::uniform(pad))
                        .with_bias(!bn);
                    spec = spec.named(&format!("conv{i}"), LayerConfig::Conv2d(conv));
                    if bn {
                        spec = spec.named(
                            &format!("bn{i}"),
                            LayerConfig::BatchNorm(BatchNormConfig::default()),
                        );
                    }
                    let activation = match s.options.get("activation").map_or("logistic", String::as_str) {
                        "leaky" => Activation::Leaky,
                        "linear" => Activation::Linear,
                        "relu" => Activation::Relu,
                        "logistic" => Activation::Sigmoid,
                        "tanh" => Activation::Tanh,
                        other => return Err(self.fail(s, format!("activation={other} is not supported (leaky, linear, relu, logistic, tanh)"))),
                    };
                    if activation != Activation::Linear {
                        spec = spec.named(
                            &format!("{}{i}", activation.name()),
                            LayerConfig::Activation { activation },
                        );
                    }
                }
                "maxpool" | "max" => {
                    let stride = self.positive(s, "stride", Some(1))?;
                    let size = self.positive(s, "size", Some(stride as i64))?;
                    let padding = self.int(s, "padding", Some(size as i64 - 1))?.max(0) as usize;
                    let pool =
                        PoolConfig::new(size)
                            .with_stride(stride)
                            .with_padding(Padding::Explicit(vec![(
                                padding / 2,
                                padding - padding / 2,
                            )]));
                    spec = spec.named(&format!("max{i}"), LayerConfig::MaxPool2d(pool));
                }
                "region" | "yolo" | "detection" if i == last => {}
                "dropout" => {}
                _ => {
                    return Err(self.fail(
                        s,
                        "makes the network a graph; convnet builds sequential darknet configs (convolutions and pools) only, but `convnet summary` shows this one's shapes".into(),
                    ));
                }
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
