//! Convolution kernels as pictures: a first layer's `[filters, 3, k, k]` kernels as small RGB
//! images, deeper kernels as greyscale tiles, one row per filter and one column per input
//! channel.
//!
//! Normalisation is per filter: each filter's weights (all its input channels together) are
//! stretched from their own minimum (black) to their own maximum (white). Within a filter the
//! channels stay comparable, so an RGB tile shows the colour the filter responds to; across
//! filters only the pattern is comparable, not the strength.

use burn::module::Param;
use burn::tensor::Tensor;
use convnet_layers::{Conv2d, LayerInfo, Sequential, SequentialLayer, Stack};
use convnet_vision::Plane;
use image::{Rgb, RgbImage};

use crate::VisualizeError;
use crate::grid::{Grid, grey_image, upscale_factor, upscale_nearest};

/// A 2D convolution of a model, by its path (`conv1`, `layer1.0.conv1`, `block.depthwise`).
pub struct Convolution<'m> {
    /// The name its weights go by in a state dict, without `.weight`.
    pub path: String,
    /// The top-level layer it belongs to.
    pub top: usize,
    pub conv: &'m Conv2d,
}

impl Convolution<'_> {
    pub fn kind(&self) -> &'static str {
        self.conv.kind()
    }

    /// The kernels, `[filters, in_channels / groups, kh, kw]`.
    pub fn kernels(&self) -> Result<Kernels, VisualizeError> {
        read_kernels(&self.conv.weight).map_err(|e| {
            VisualizeError::Invalid(format!("cannot read the kernels of '{}': {e}", self.path))
        })
    }
}

fn read_kernels(weight: &Param<Tensor<4>>) -> Result<Kernels, String> {
    let t = weight.val();
    let shape = t.dims();
    let values = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    Kernels::new(shape, values)
}

/// Every 2D convolution of `model`, depth first in the model's order, named as its state dict
/// names them (blocks add their name; a separable convolution has a depthwise and a pointwise
/// part).
pub fn convolutions(model: &Sequential) -> Vec<Convolution<'_>> {
    fn walk<'m>(
        stack: &'m Stack,
        prefix: &str,
        top: Option<usize>,
        out: &mut Vec<Convolution<'m>>,
    ) {
        for (i, (name, layer)) in stack.names.iter().zip(&stack.layers).enumerate() {
            let path = format!("{prefix}{name}");
            let top = top.unwrap_or(i);
            let mut push =
                |path: String, conv: &'m Conv2d| out.push(Convolution { path, top, conv });
            match layer {
                SequentialLayer::Conv2d(c) => push(path, c),
                SequentialLayer::SeparableConv2d(s) => {
                    push(format!("{path}.depthwise"), &s.depthwise);
                    push(format!("{path}.pointwise"), &s.pointwise);
                }
                SequentialLayer::Residual(r) => {
                    walk(&r.body, &format!("{path}."), Some(top), out);
                    walk(&r.shortcut, &format!("{path}."), Some(top), out);
                }
                SequentialLayer::Concat(c) => {
                    for b in &c.branches {
                        walk(b, &format!("{path}."), Some(top), out);
                    }
                }
                SequentialLayer::Aux(head) => walk(head, &format!("{path}."), Some(top), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&model.stack, "", None, &mut out);
    out
}

/// Convolution kernels in PyTorch's layout, `[filters, channels, kh, kw]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernels {
    pub shape: [usize; 4],
    pub values: Vec<f32>,
}

impl Kernels {
    pub fn new(shape: [usize; 4], values: Vec<f32>) -> Result<Self, String> {
        if shape.iter().product::<usize>() != values.len() || shape.contains(&0) {
            return Err(format!(
                "{} values do not make kernels of shape {shape:?}",
                values.len()
            ));
        }
        Ok(Self { shape, values })
    }

    /// Filter `f`'s weights, all channels, as one plane (`channels * kh` rows of `kw`).
    fn filter(&self, f: usize) -> Plane {
        let [_, c, kh, kw] = self.shape;
        let n = c * kh * kw;
        Plane {
            height: c * kh,
            width: kw,
            values: self.values[f * n..(f + 1) * n].to_vec(),
        }
    }
}

/// How kernels are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterOptions {
    /// At most this many filters (the first ones).
    pub max_filters: usize,
    /// Greyscale tiles: at most this many input channels (the first ones).
    pub max_channels: usize,
    /// Kernels are enlarged by a whole factor to at least this many pixels a side.
    pub min_tile: u32,
    /// The network reads its input as BGR (Caffe's weights): show channel 2 as red.
    pub bgr: bool,
    /// Kernels over 3 channels may be drawn in colour (off for a grouped convolution, whose
    /// 3 channels per group are not an image's).
    pub colour: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        Self {
            max_filters: 64,
            max_channels: 16,
            min_tile: 32,
            bgr: false,
            colour: true,
        }
    }
}

/// A picture of kernels and what it shows.
#[derive(Debug, Clone)]
pub struct FilterPicture {
    pub image: RgbImage,
    /// Colour tiles (3 input channels) rather than greyscale ones.
    pub rgb: bool,
    /// Filters and input channels drawn.
    pub filters: usize,
    pub channels: usize,
    /// Side of a tile in pixels, and the enlargement factor of the kernel.
    pub tile: [u32; 2],
    pub scale: u32,
    pub caption: String,
}

/// Draws `kernels` of the layer `name`: colour tiles wrapped in a near-square block when the
/// kernels read 3 channels (an RGB image) and [`FilterOptions::colour`] allows, else one row of
/// greyscale tiles per filter.
pub fn filter_picture(
    kernels: &Kernels,
    name: &str,
    options: &FilterOptions,
) -> Result<FilterPicture, VisualizeError> {
    if options.max_filters == 0 || options.max_channels == 0 {
        return Err(VisualizeError::Invalid(
            "show at least 1 filter and 1 channel".into(),
        ));
    }
    let [out, channels, kh, kw] = kernels.shape;
    let scale = upscale_factor(kh.max(kw), options.min_tile);
    let tile = [kw as u32 * scale, kh as u32 * scale];
    let filters = out.min(options.max_filters);
    let levels: Vec<Vec<u8>> = (0..filters)
        .map(|f| kernels.filter(f).to_grey_levels().0)
        .collect();
    let plane = kh * kw;
    let of = |shown: usize, all: usize| {
        if shown < all {
            format!("{shown} of {all}")
        } else {
            all.to_string()
        }
    };
    if channels == 3 && options.colour {
        let caption = format!(
            "{name}: {} filters {kh}x{kw}x3, min-max per filter",
            of(filters, out)
        );
        let grid = Grid::wrapping(filters, tile).with_caption(&caption);
        let image = grid.render(|r, c| {
            let f = r * grid.cols + c;
            let l = levels.get(f)?;
            let small = RgbImage::from_fn(kw as u32, kh as u32, |x, y| {
                let at = |ch: usize| l[ch * plane + y as usize * kw + x as usize];
                let [r, g, b] = [0, 1, 2].map(at);
                Rgb(if options.bgr { [b, g, r] } else { [r, g, b] })
            });
            Some(upscale_nearest(&small, scale))
        });
        return Ok(FilterPicture {
            image,
            rgb: true,
            filters,
            channels,
            tile,
            scale,
            caption,
        });
    }
    let shown = channels.min(options.max_channels);
    let caption = format!(
        "{name}: {} filters (rows) x {} input channels, {kh}x{kw}, min-max per filter",
        of(filters, out),
        of(shown, channels)
    );
    let grid = Grid::new(filters, shown, tile).with_caption(&caption);
    let image = grid.render(|f, ch| {
        let l = &levels[f][ch * plane..(ch + 1) * plane];
        Some(upscale_nearest(&grey_image(l, kw, kh), scale))
    });
    Ok(FilterPicture {
        image,
        rgb: false,
        filters,
        channels: shown,
        tile,
        scale,
        caption,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{CAPTION_HEIGHT, GAP};

    /// Filter 0 is pure red at its centre pixel, filter 1 ramps up along x in every channel.
    fn rgb_kernels() -> Kernels {
        let mut values = vec![0.0; 2 * 3 * 9];
        values[4] = 5.0; // filter 0, red, centre
        for ch in 0..3 {
            for y in 0..3 {
                for x in 0..3 {
                    values[27 + ch * 9 + y * 3 + x] = x as f32 - 10.0;
                }
            }
        }
        Kernels::new([2, 3, 3, 3], values).unwrap()
    }

    #[test]
    fn rgb_kernels_become_colour_tiles_scaled_per_filter() {
        let options = FilterOptions::default();
        let pic = filter_picture(&rgb_kernels(), "conv1", &options).unwrap();
        assert!(pic.rgb);
        assert_eq!((pic.scale, pic.tile), (11, [33, 33]));
        // Two tiles side by side.
        let [w, h] = Grid::wrapping(2, [33, 33])
            .with_caption(&pic.caption)
            .size();
        assert_eq!(pic.image.dimensions(), (w, h));
        assert_eq!(h, CAPTION_HEIGHT + 33 + 2 * GAP);
        let at = |f: u32, x: u32, y: u32| {
            *pic.image.get_pixel(
                GAP + f * (33 + GAP) + x * 11 + 5,
                CAPTION_HEIGHT + GAP + y * 11 + 5,
            )
        };
        assert_eq!(
            at(0, 1, 1),
            Rgb([255, 0, 0]),
            "the filter's maximum is white in red only"
        );
        assert_eq!(at(0, 0, 0), Rgb([0, 0, 0]));
        // Filter 1 has its own range: -10 is black and -8 white, although both are below 0.
        assert_eq!(at(1, 0, 1), Rgb([0, 0, 0]));
        assert_eq!(at(1, 2, 1), Rgb([255, 255, 255]));
        let grey = FilterOptions {
            colour: false,
            ..options
        };
        assert!(!filter_picture(&rgb_kernels(), "g", &grey).unwrap().rgb);
        let bgr = filter_picture(
            &rgb_kernels(),
            "conv1",
            &FilterOptions {
                bgr: true,
                ..options
            },
        )
        .unwrap();
        assert_eq!(
            *bgr.image.get_pixel(GAP + 16, CAPTION_HEIGHT + GAP + 16),
            Rgb([0, 0, 255])
        );
    }

    #[test]
    fn other_kernels_are_grey_rows_per_filter_capped() {
        let kernels = Kernels::new([5, 4, 5, 5], (0..500).map(|v| v as f32).collect()).unwrap();
        let options = FilterOptions {
            max_filters: 3,
            max_channels: 2,
            ..FilterOptions::default()
        };
        let pic = filter_picture(&kernels, "conv2", &options).unwrap();
        assert!(!pic.rgb);
        assert_eq!((pic.filters, pic.channels, pic.scale), (3, 2, 7));
        assert!(pic.caption.contains("3 of 5 filters"), "{}", pic.caption);
        let [w, h] = Grid::new(3, 2, [35, 35]).with_caption(&pic.caption).size();
        assert_eq!(pic.image.dimensions(), (w, h));
        // Per filter, over all four channels: channel 0 starts black, channel 1 is mid-grey.
        let px = |row: u32, col: u32| {
            pic.image
                .get_pixel(
                    GAP + col * (35 + GAP) + 1,
                    CAPTION_HEIGHT + GAP + row * (35 + GAP) + 1,
                )
                .0[0]
        };
        assert_eq!(px(0, 0), 0);
        assert!((60..70).contains(&px(0, 1)), "{}", px(0, 1));
        assert_eq!(px(2, 0), 0);
    }

    #[test]
    fn a_constant_filter_and_bad_shapes_do_not_panic() {
        let flat = Kernels::new([1, 1, 1, 1], vec![3.0]).unwrap();
        let pic = filter_picture(&flat, "c", &FilterOptions::default()).unwrap();
        assert_eq!(pic.tile, [32, 32]);
        assert!(Kernels::new([1, 1, 2, 2], vec![0.0; 3]).is_err());
        assert!(
            filter_picture(
                &flat,
                "c",
                &FilterOptions {
                    max_filters: 0,
                    ..FilterOptions::default()
                }
            )
            .is_err()
        );
    }
}
