//! face-api's input path for its networks: a picture padded to a square with zeros and resized
//! with TensorFlow's legacy bilinear ([`convnet_data::faceapi`], shared with the `faceapi`
//! recipe every other command uses over face-api's weights), then normalised per network the
//! way face-api does it, in float32: `(x - MEAN_RGB) / 255` for the landmark and recognition
//! networks, `(x - TINY_FACE_MEAN_RGB) / 255` for the Tiny Face Detector, `x / 127.5 - 1` for
//! SSD. The detectors pad at the bottom and right; the landmark and recognition networks pad
//! both sides.

use burn::tensor::{Device, Tensor, TensorData};
pub use convnet_data::faceapi::{SquarePad, reshaped_dimensions, square_resized};
use image::RgbImage;

use crate::FaceError;

/// The mean RGB value the landmark and recognition networks subtract before dividing by 255
/// (face-api's `meanRgb`).
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// The mean RGB value the Tiny Face Detector subtracts before dividing by 255 (its
/// `MEAN_RGB`).
pub const TINY_FACE_MEAN_RGB: [f32; 3] = convnet_data::preprocess::FACEAPI_MEAN_RGB;

/// `image` as face-api's Tiny Face Detector takes it at `size`: `[3, size, size]`
/// channels first, padded at the bottom and right, resized, `(x - TINY_FACE_MEAN_RGB) / 255`
/// (tfjs's `normalize` then `div(255)`, both float32).
pub fn tiny_face_values(image: &RgbImage, size: usize) -> Vec<f32> {
    channels_first(
        &square_resized(image, SquarePad::BottomRight, size),
        |c, v| (v - TINY_FACE_MEAN_RGB[c]) / 255.0,
    )
}

/// HWC values to CHW, each through `f(channel, value)`.
pub(crate) fn channels_first(hwc: &[f32], f: impl Fn(usize, f32) -> f32) -> Vec<f32> {
    let plane = hwc.len() / 3;
    let mut chw = vec![0.0f32; hwc.len()];
    for (p, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + p] = f(c, px[c]);
        }
    }
    chw
}

/// face-api's input path for tensor inputs, as its node build runs it on decoded pictures and
/// on the face tensors it cuts out (`extractFaceTensors`):
///
/// 1. `padToSquare(img, isCenterImage = true)`: the shorter side is padded with zeros to the
///    longer one; `round(diff / 2)` rows or columns are appended (bottom or right) and the
///    remaining `diff - round(diff / 2)` prepended (top or left), so an odd difference puts the
///    extra pixel at the bottom / right.
/// 2. `tf.image.resizeBilinear(.., [size, size], alignCorners = false, halfPixelCenters =
///    false)` when the square is not already `size` pixels: TensorFlow's legacy bilinear
///    resize, source coordinate `dst * (in / out)`, no antialiasing.
/// 3. `normalize(x, MEAN_RGB) / 255`.
///
/// Returns `[crops.len(), 3, size, size]` (channels first, RGB).
pub fn to_batch_tensor(
    crops: &[RgbImage],
    size: usize,
    device: &Device,
) -> Result<Tensor<4>, FaceError> {
    if crops.is_empty() {
        return Err(FaceError::Input("no face crops given".into()));
    }
    if size == 0 {
        return Err(FaceError::Input(
            "the network input size must be positive".into(),
        ));
    }
    let plane = size * size;
    let mut values = Vec::with_capacity(crops.len() * 3 * plane);
    for (i, crop) in crops.iter().enumerate() {
        let (w, h) = crop.dimensions();
        if w == 0 || h == 0 {
            return Err(FaceError::Input(format!(
                "face crop {i} is empty ({w}x{h} pixels)"
            )));
        }
        let hwc = square_resized(crop, SquarePad::Centre, size);
        values.extend(channels_first(&hwc, |c, v| (v - MEAN_RGB[c]) / 255.0));
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [crops.len(), 3, size, size]),
        device,
    ))
}
