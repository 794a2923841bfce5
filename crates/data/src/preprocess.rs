//! Turning an image file into the input a pretrained network expects. Each set of published
//! weights was trained with one recipe (how the picture is resized and cropped, how pixel values
//! are scaled, the channel order), and the weights are only right under that recipe, so the
//! recipe travels with them: zoo models name theirs and checkpoints store it.

use convnet_layers::limits::Bytes;
use image::imageops::{self, FilterType};
use image::{DynamicImage, RgbImage};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::DataError;
use crate::faceapi::{SquarePad, square_resized};

/// How the picture becomes `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resize {
    /// Scale the shorter side to `shorter`, then cut the centre `size` out (torchvision's
    /// `Resize(shorter)` + `CenterCrop(size)`).
    CenterCrop { shorter: usize },
    /// Cut the largest centred region with the target's aspect ratio, then scale it to `size`
    /// (Keras' `smart_resize`): nothing is stretched and as much of the picture as possible
    /// is kept.
    CropToAspect,
    /// Scale to `size`, stretching if the aspect ratios differ.
    Stretch,
    /// face-api.js's input path ([`crate::faceapi`]): pad the bottom or right with black to a
    /// square (`padToSquare`), then scale with TensorFlow's legacy bilinear whatever the
    /// interpolation says (the weights were trained on that): nothing is cut or stretched.
    /// The target must be square.
    PadToSquare,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

impl Interpolation {
    fn filter(self) -> FilterType {
        match self {
            Interpolation::Bilinear => FilterType::Triangle,
            Interpolation::Bicubic => FilterType::CatmullRom,
        }
    }
}

/// A preprocessing recipe: `value = (pixel * scale - mean[c]) / std[c]` after resizing, with the
/// channels in RGB order or, for Caffe-trained weights, BGR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Name of the preset (`imagenet`, `caffe`, `tf`), for messages.
    pub name: String,
    /// `[height, width]` of the network input.
    pub size: [usize; 2],
    pub resize: Resize,
    pub interpolation: Interpolation,
    /// Multiplies 0–255 pixel values first (1/255 or 1).
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub bgr: bool,
}

/// ImageNet's per-channel statistics on the 0–1 scale, as torchvision normalises.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The RGB means (0–255) face-api.js's Tiny Face Detector subtracts.
pub const FACEAPI_MEAN_RGB: [f32; 3] = [117.001, 114.697, 97.404];
/// The BGR channel means (0–255) that Caffe's VGG and ResNet weights subtract.
pub const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];

impl Preprocess {
    /// torchvision's ImageNet recipe: shorter side to `shorter`, centre crop `crop`, 0–1 scale,
    /// ImageNet mean and std.
    pub fn imagenet(crop: usize, shorter: usize, interpolation: Interpolation) -> Self {
        Self {
            name: "imagenet".into(),
            size: [crop, crop],
            resize: Resize::CenterCrop { shorter },
            interpolation,
            scale: 1.0 / 255.0,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            bgr: false,
        }
    }

    /// Keras' `caffe` mode (VGG16/19 and ResNet weights converted from Caffe): BGR, 0–255,
    /// the BGR means subtracted, no division.
    pub fn caffe(size: usize) -> Self {
        Self {
            name: "caffe".into(),
            size: [size, size],
            resize: Resize::CropToAspect,
            interpolation: Interpolation::Bilinear,
            scale: 1.0,
            mean: CAFFE_MEAN_BGR,
            std: [1.0; 3],
            bgr: true,
        }
    }

    /// Keras' `tf` mode (MobileNet, Xception, Inception v3): values in [-1, 1].
    pub fn tf(size: usize) -> Self {
        Self {
            name: "tf".into(),
            size: [size, size],
            resize: Resize::CropToAspect,
            interpolation: Interpolation::Bilinear,
            scale: 1.0 / 127.5,
            mean: [1.0; 3],
            std: [1.0; 3],
            bgr: false,
        }
    }

    /// face-api.js's recipe (its Tiny Face Detector): padded to a square, 0–255 values with
    /// the RGB means subtracted, divided by 255.
    pub fn faceapi(size: usize, mean_rgb: [f32; 3]) -> Self {
        Self {
            name: "faceapi".into(),
            size: [size, size],
            resize: Resize::PadToSquare,
            interpolation: Interpolation::Bilinear,
            scale: 1.0 / 255.0,
            mean: mean_rgb.map(|m| m / 255.0),
            std: [1.0; 3],
            bgr: false,
        }
    }

    /// A preset by name at input `size` (`imagenet` uses torchvision's 256/224 ratio).
    pub fn named(name: &str, size: usize) -> Result<Self, DataError> {
        match name {
            "imagenet" | "torch" => Ok(Self::imagenet(
                size,
                (size * 256).div_ceil(224),
                Interpolation::Bilinear,
            )),
            "caffe" => Ok(Self::caffe(size)),
            "tf" => Ok(Self::tf(size)),
            "faceapi" => Ok(Self::faceapi(size, FACEAPI_MEAN_RGB)),
            other => Err(DataError::Preprocess(format!(
                "unknown preprocessing '{other}'; presets: imagenet, caffe, tf, faceapi"
            ))),
        }
    }

    /// The normalised value of a 0–255 `pixel` in input channel `channel` (after any BGR swap).
    pub fn normalize(&self, channel: usize, pixel: f32) -> f32 {
        (pixel * self.scale - self.mean[channel]) / self.std[channel]
    }

    /// An image file as the network input `[3, H, W]`, channels first.
    pub fn load(&self, path: &Path) -> Result<Vec<f32>, DataError> {
        self.apply(&crate::folder::decode_image(path)?)
    }

    /// `img` as the network input `[3, H, W]`, channels first.
    pub fn apply(&self, img: &DynamicImage) -> Result<Vec<f32>, DataError> {
        let [h, w] = self.size;
        if h == 0 || w == 0 || u32::try_from(h.max(w)).is_err() {
            return Err(DataError::Preprocess(format!(
                "cannot resize images to {h}x{w}"
            )));
        }
        let plane = h * w;
        let mut out = vec![0.0; 3 * plane];
        if self.resize == Resize::PadToSquare {
            if h != w {
                return Err(DataError::Preprocess(format!(
                    "face-api's input is square, not {h}x{w}"
                )));
            }
            let hwc = square_resized(&img.to_rgb8(), SquarePad::BottomRight, h);
            for (i, px) in hwc.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    let source = if self.bgr { 2 - c } else { c };
                    out[c * plane + i] = self.normalize(c, px[source]);
                }
            }
            return Ok(out);
        }
        let rgb = self.resized(img.to_rgb8(), w as u32, h as u32)?;
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                let source = if self.bgr { 2 - c } else { c };
                out[c * plane + i] = self.normalize(c, f32::from(px.0[source]));
            }
        }
        Ok(out)
    }

    fn resized(&self, rgb: RgbImage, tw: u32, th: u32) -> Result<RgbImage, DataError> {
        let filter = self.interpolation.filter();
        let (iw, ih) = (rgb.width().max(1), rgb.height().max(1));
        match self.resize {
            Resize::Stretch => Ok(imageops::resize(&rgb, tw, th, filter)),
            Resize::PadToSquare => Err(DataError::Preprocess(
                "face-api's input is not resized as a picture".into(),
            )),
            Resize::CenterCrop { shorter } => {
                let scale = shorter as f64 / f64::from(iw.min(ih));
                let nw = ((f64::from(iw) * scale).round() as u32).max(tw);
                let nh = ((f64::from(ih) * scale).round() as u32).max(th);
                // A long thin picture scaled so its short side is `shorter` can grow past any
                // memory (1 x 20000 at 256 would be 5 million pixels wide).
                Bytes::of(&[nw as usize, nh as usize], 3)
                    .check(&format!(
                        "scaling a {iw}x{ih} picture to {nw}x{nh} before cropping"
                    ))
                    .map_err(|e| DataError::Preprocess(e.to_string()))?;
                let scaled = imageops::resize(&rgb, nw, nh, filter);
                let (x, y) = ((nw - tw) / 2, (nh - th) / 2);
                Ok(imageops::crop_imm(&scaled, x, y, tw, th).to_image())
            }
            Resize::CropToAspect => {
                // The largest centred region whose aspect ratio is the target's.
                let target = f64::from(tw) / f64::from(th);
                let (cw, ch) = if f64::from(iw) / f64::from(ih) > target {
                    (((f64::from(ih) * target).round() as u32).clamp(1, iw), ih)
                } else {
                    (iw, ((f64::from(iw) / target).round() as u32).clamp(1, ih))
                };
                let region = imageops::crop_imm(&rgb, (iw - cw) / 2, (ih - ch) / 2, cw, ch);
                Ok(imageops::resize(&region.to_image(), tw, th, filter))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A picture whose left half is red and right half blue, with a green centre column band.
    fn picture(w: u32, h: u32) -> DynamicImage {
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x.abs_diff(w / 2) < w / 10 {
                Rgb([0, 255, 0])
            } else if x < w / 2 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        DynamicImage::ImageRgb8(img)
    }

    #[test]
    fn imagenet_recipe_normalises_with_the_published_statistics() {
        let p = Preprocess::imagenet(8, 8, Interpolation::Bilinear);
        let white = DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 8, Rgb([255, 255, 255])));
        let out = p.apply(&white).unwrap();
        for c in 0..3 {
            let want = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!((out[c * 64] - want).abs() < 1e-5, "channel {c}");
        }
    }

    #[test]
    fn caffe_mode_swaps_to_bgr_and_subtracts_means() {
        let p = Preprocess::caffe(4);
        let red = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 4, Rgb([255, 0, 0])));
        let out = p.apply(&red).unwrap();
        // Channel 0 is blue (0), channel 2 is red (255).
        assert!((out[0] + CAFFE_MEAN_BGR[0]).abs() < 1e-4);
        assert!((out[2 * 16] - (255.0 - CAFFE_MEAN_BGR[2])).abs() < 1e-4);
    }

    #[test]
    fn tf_mode_maps_pixels_to_minus_one_one() {
        let p = Preprocess::tf(2);
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([0, 255, 0])));
        let out = p.apply(&img).unwrap();
        assert!((out[0] + 1.0).abs() < 1e-6);
        assert!((out[4] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn centre_crop_and_aspect_crop_keep_the_middle_of_a_wide_picture() {
        // A 40x10 picture into 10x10: both recipes keep the green centre and cut the sides.
        for p in [
            Preprocess {
                scale: 1.0,
                mean: [0.0; 3],
                std: [1.0; 3],
                ..Preprocess::imagenet(10, 10, Interpolation::Bilinear)
            },
            Preprocess {
                scale: 1.0,
                mean: [0.0; 3],
                ..Preprocess::tf(10)
            },
        ] {
            let out = p.apply(&picture(40, 10)).unwrap();
            let green_centre = out[100 + 5 * 10 + 5];
            let red_centre = out[5 * 10 + 5];
            assert!(green_centre > 200.0, "{}: {green_centre}", p.name);
            assert!(red_centre < 50.0, "{}: {red_centre}", p.name);
        }
    }

    #[test]
    fn stretch_keeps_everything_and_presets_are_named() {
        let p = Preprocess {
            resize: Resize::Stretch,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            ..Preprocess::tf(10)
        };
        let out = p.apply(&picture(40, 10)).unwrap();
        // The red left edge survives a stretch (a crop would cut it).
        assert!(out[5 * 10] > 200.0);
        assert_eq!(
            Preprocess::named("imagenet", 224).unwrap().resize,
            Resize::CenterCrop { shorter: 256 }
        );
        assert!(
            Preprocess::named("yuv", 224)
                .unwrap_err()
                .to_string()
                .contains("presets")
        );
    }

    #[test]
    fn faceapi_recipe_pads_and_resizes_like_tensorflow() {
        // 8 x 4 stripes to 2 x 2: padded to 8 x 8 at the bottom, then TensorFlow's legacy
        // bilinear reads columns 0 and 4 and rows 0 and 4 (padding), averaging nothing.
        let img = RgbImage::from_fn(8, 4, |x, _| Rgb([(x * 30) as u8; 3]));
        let p = Preprocess::faceapi(2, [0.0; 3]);
        let v = p.apply(&DynamicImage::ImageRgb8(img)).unwrap();
        let want = [0.0, 120.0 / 255.0, 0.0, 0.0];
        for (a, b) in v[..4].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
        let mut wide = p.clone();
        wide.size = [2, 3];
        assert!(wide.apply(&picture(8, 8)).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any picture shape, target size and recipe gives `3 x H x W` values or an error,
        /// never a panic (thin pictures, targets larger than the picture, crops of 1 pixel).
        #[test]
        fn any_shape_and_recipe_never_panics(
            iw in 1u32..48, ih in 1u32..48, h in 0usize..40, w in 0usize..40,
            shorter in 0usize..60, mode in 0usize..4,
        ) {
            let resize = match mode {
                0 => Resize::CenterCrop { shorter },
                1 => Resize::CropToAspect,
                2 => Resize::Stretch,
                _ => Resize::PadToSquare,
            };
            let mut p = Preprocess::imagenet(8, 8, Interpolation::Bilinear);
            p.size = [h, w];
            p.resize = resize;
            let img = DynamicImage::ImageRgb8(RgbImage::new(iw, ih));
            if let Ok(v) = p.apply(&img) {
                proptest::prop_assert_eq!(v.len(), 3 * h * w);
            }
        }
    }
}
