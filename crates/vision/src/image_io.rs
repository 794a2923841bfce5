//! Reading images into Burn tensors and writing 2D maps back as PNG.
//!
//! - Images load as `[1, C, H, W]` `f32` tensors (`C` = 1 for greyscale, 3 for RGB) holding pixel
//!   values in `0..=255`, not `0..=1`: the course's worked examples (an image of 10s and 0s, a
//!   filter response of 30) read the same in convnet, and a filter's response is in grey levels.
//!   8-bit images give exact integer values; 16-bit and float images are scaled to `0..=255`.
//!   Greyscale is the luma of the colour image (the `image` crate's Rec. 709 weights); alpha is
//!   dropped.
//! - PNG and JPEG are read (the file's content decides, not its name); anything else, or a file
//!   that does not decode, is an error naming the file.
//! - Output is written atomically: a temporary file in the same folder, renamed over the target
//!   once complete, so a crash never leaves half an image behind.

use burn::tensor::{Device, Tensor, TensorData};
use convnet_layers::limits::{Bytes, memory_limit};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageFormat, ImageReader, Limits};
use std::fs::OpenOptions;
use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::VisionError;

/// How many channels an image is loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// One channel: the luma of the image.
    Grey,
    /// Three channels, red, green, blue.
    Rgb,
}

impl ColorMode {
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grey => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// The largest side of a picture convnet decodes, in pixels: past any camera or aerial
/// photograph it is meant for, and far past what its networks take.
pub const MAX_PICTURE_SIDE: u32 = 20_000;

/// Bytes one decoded pixel may cost: up to 4 bytes of 8-bit RGBA as decoded, and 3 `f32` as a
/// tensor.
const BYTES_PER_PIXEL: usize = 16;

/// Decodes the picture at `path` (its format told by the content): the one decoder every
/// command that opens pictures goes through.
///
/// Refused, with the file named: a picture whose header declares more than
/// [`MAX_PICTURE_SIDE`] pixels a side or more pixels than the memory limit allows (checked from
/// the header, before decoding), and a truncated JPEG (its data ends before the end-of-image
/// marker). Decoders fill the missing part of a truncated JPEG with grey and report nothing; a
/// network then answers confidently about a picture that is not there, so convnet does not
/// read partial pictures (as Pillow does not by default).
pub fn decode_image(path: &Path) -> Result<DynamicImage, VisionError> {
    let bytes = std::fs::read(path).map_err(|e| VisionError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    decode_bytes(&bytes, path)
}

/// [`decode_image`] for a picture already in memory; `path` only names it in errors.
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<DynamicImage, VisionError> {
    let read = |source: image::ImageError| VisionError::Read {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |problem: String| VisionError::Refused {
        path: path.to_path_buf(),
        problem,
    };
    let reader = || -> Result<ImageReader<Cursor<&[u8]>>, VisionError> {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| read(e.into()))?;
        let mut limits = Limits::default();
        limits.max_alloc = Some(memory_limit());
        reader.limits(limits);
        Ok(reader)
    };
    // Truncation first: a JPEG cut inside its headers fails to give dimensions too, and the
    // user should hear the cause rather than the symptom.
    if reader()?.format() == Some(ImageFormat::Jpeg) && jpeg_is_truncated(bytes) {
        return Err(refuse(
            "image file is truncated (the JPEG data ends before its end-of-image marker); \
             partial pictures are not read"
                .into(),
        ));
    }
    let (width, height) = reader()?.into_dimensions().map_err(read)?;
    check_dimensions(width, height).map_err(refuse)?;
    reader()?.decode().map_err(read)
}

/// Refuses a picture too large to decode, naming its size and the limit.
fn check_dimensions(width: u32, height: u32) -> Result<(), String> {
    if width.max(height) > MAX_PICTURE_SIDE {
        return Err(format!(
            "{width} x {height} pixels is above the limit of {MAX_PICTURE_SIDE} pixels a side"
        ));
    }
    Bytes::of(&[width as usize, height as usize], BYTES_PER_PIXEL)
        .check(&format!("decoding {width} x {height} pixels"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether a JPEG stream ends before its end-of-image marker (`FF D9`). The header segments are
/// walked by their lengths up to the first start-of-scan; past it, entropy-coded data escapes
/// every `FF` (`FF 00`, or a restart marker), so an `FF D9` there can only be the end of the
/// image. Segments before the scan (an EXIF thumbnail) may hold an `FF D9` of their own, which
/// is why they are skipped rather than searched.
pub fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let Some(scan) = first_scan(bytes) else {
        return true;
    };
    !bytes
        .get(scan..)
        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Where the data of the first start-of-scan segment begins, or `None` when the headers end
/// (or break) before it.
fn first_scan(bytes: &[u8]) -> Option<usize> {
    let mut at = 2; // after SOI
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        // Any number of fill bytes may precede a marker.
        while *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at + 1)?;
        if matches!(marker, 0x01 | 0xD0..=0xD8) {
            at += 2; // markers without a length
            continue;
        }
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let next = at.checked_add(2)?.checked_add(len)?;
        if marker == 0xDA {
            return Some(next);
        }
        at = next;
    }
}

/// Pixel values of `img` in `0..=255`, channels first (`[C, H, W]` flattened).
fn pixels(img: &DynamicImage, mode: ColorMode) -> Vec<f32> {
    let color = img.color();
    let eight_bit = color.bytes_per_pixel() == color.channel_count();
    let interleaved: Vec<f32> = match (mode, eight_bit) {
        (ColorMode::Grey, true) => img
            .to_luma8()
            .into_raw()
            .into_iter()
            .map(f32::from)
            .collect(),
        (ColorMode::Grey, false) => img
            .to_luma32f()
            .into_raw()
            .into_iter()
            .map(|v| v * 255.0)
            .collect(),
        (ColorMode::Rgb, true) => img
            .to_rgb8()
            .into_raw()
            .into_iter()
            .map(f32::from)
            .collect(),
        (ColorMode::Rgb, false) => img
            .to_rgb32f()
            .into_raw()
            .into_iter()
            .map(|v| v * 255.0)
            .collect(),
    };
    let c = mode.channels();
    if c == 1 {
        return interleaved;
    }
    // HWC (as stored in the file) to CHW (as convolutions want it).
    let hw = interleaved.len() / c;
    let mut planar = vec![0.0; interleaved.len()];
    for (i, px) in interleaved.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            planar[ch * hw + i] = v;
        }
    }
    planar
}

/// Loads the image at `path` as a `[1, C, H, W]` tensor of values in `0..=255`.
pub fn load_image(path: &Path, mode: ColorMode, device: &Device) -> Result<Tensor<4>, VisionError> {
    let img = decode_image(path)?;
    let (h, w) = (img.height() as usize, img.width() as usize);
    let values = pixels(&img, mode);
    Ok(Tensor::from_data(
        TensorData::new(values, [1, mode.channels(), h, w]),
        device,
    ))
}

/// Loads the image at `path` as greyscale: `[1, 1, H, W]`, values in `0..=255`.
pub fn load_grey(path: &Path, device: &Device) -> Result<Tensor<4>, VisionError> {
    load_image(path, ColorMode::Grey, device)
}

/// Loads the image at `path` as RGB: `[1, 3, H, W]`, values in `0..=255`.
pub fn load_rgb(path: &Path, device: &Device) -> Result<Tensor<4>, VisionError> {
    load_image(path, ColorMode::Rgb, device)
}

/// A 2D array of `f32`, row by row: one channel of a feature map or a filter response.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub height: usize,
    pub width: usize,
    /// `height * width` values, row-major.
    pub values: Vec<f32>,
}

/// How a [`Plane`] was mapped to grey levels: `min` became 0 and `max` 255.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewScale {
    pub min: f32,
    pub max: f32,
}

impl Plane {
    /// A plane of `height x width` values; `None` if the lengths disagree.
    pub fn new(height: usize, width: usize, values: Vec<f32>) -> Option<Self> {
        (values.len() == height * width).then_some(Self {
            height,
            width,
            values,
        })
    }

    /// Reads a `[H, W]` tensor back from its device.
    pub fn from_tensor(t: Tensor<2>) -> Result<Self, VisionError> {
        let [height, width] = t.dims();
        let values = t
            .try_into_vec_as::<f32>()
            .map_err(|e| VisionError::Data(format!("reading a filter response: {e}")))?;
        Ok(Self {
            height,
            width,
            values,
        })
    }

    /// The value at row `y`, column `x`.
    pub fn at(&self, y: usize, x: usize) -> f32 {
        self.values[y * self.width + x]
    }

    /// The smallest and largest finite values (`0, 0` for a plane without any).
    pub fn min_max(&self) -> ViewScale {
        let (min, max) = self
            .values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if min > max {
            ViewScale { min: 0.0, max: 0.0 }
        } else {
            ViewScale { min, max }
        }
    }

    /// Grey levels for viewing: a linear stretch of `min..=max` onto `0..=255` (so the weakest
    /// response is black and the strongest white; for a signed edge response, one edge direction
    /// is dark, the other bright and "no edge" in between). A constant plane is all black.
    pub fn to_grey_levels(&self) -> (Vec<u8>, ViewScale) {
        let scale = self.min_max();
        let span = scale.max - scale.min;
        let levels = self
            .values
            .iter()
            .map(|&v| {
                if span > 0.0 && v.is_finite() {
                    ((v - scale.min) / span * 255.0).round().clamp(0.0, 255.0) as u8
                } else if v == f32::INFINITY {
                    255
                } else {
                    0
                }
            })
            .collect();
        (levels, scale)
    }
}

/// Writes `plane` to `path` as an 8-bit greyscale PNG, stretched for viewing (see
/// [`Plane::to_grey_levels`]); returns the raw range that was mapped to 0..255.
pub fn save_grey_png(path: &Path, plane: &Plane) -> Result<ViewScale, VisionError> {
    let (levels, scale) = plane.to_grey_levels();
    write_png(path, plane.height, plane.width, &levels)?;
    Ok(scale)
}

/// Output is PNG only: an error unless `path` ends in `.png` (check before doing the work).
pub fn check_png_path(path: &Path) -> Result<(), VisionError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        Ok(())
    } else {
        Err(VisionError::OutputFormat {
            path: path.to_path_buf(),
        })
    }
}

/// Writes 8-bit grey levels (`height * width`, row-major) to `path` as a PNG, atomically.
pub fn write_png(
    path: &Path,
    height: usize,
    width: usize,
    levels: &[u8],
) -> Result<(), VisionError> {
    check_png_path(path)?;
    let encode = |source: image::ImageError| VisionError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if levels.len() == width * height => (w, h),
        _ => {
            return Err(VisionError::Data(format!(
                "{}: {} grey levels do not make a {height}x{width} image",
                path.display(),
                levels.len()
            )));
        }
    };
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(levels, w, h, ExtendedColorType::L8)
        .map_err(encode)?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: readers see
/// the old file or the complete new one, never a part. The file gets the usual permissions of a
/// new file (the umask applies).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VisionError> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let failed = |source: std::io::Error| VisionError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_levels_stretch_min_to_black_and_max_to_white() {
        let p = Plane::new(1, 3, vec![-4.0, 0.0, 4.0]).unwrap();
        let (levels, scale) = p.to_grey_levels();
        assert_eq!(levels, vec![0, 128, 255]);
        assert_eq!((scale.min, scale.max), (-4.0, 4.0));
        let flat = Plane::new(2, 2, vec![7.0; 4]).unwrap();
        assert_eq!(flat.to_grey_levels().0, vec![0; 4]);
    }

    #[test]
    fn plane_rejects_a_wrong_length() {
        assert!(Plane::new(2, 3, vec![0.0; 5]).is_none());
    }

    /// A small JPEG with an EXIF-like APP1 segment holding a stray end-of-image marker.
    fn jpeg() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 99]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut bytes)
            .encode_image(&img)
            .unwrap();
        let app1 = [0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        [&bytes[..2], &app1[..], &bytes[2..]].concat()
    }

    #[test]
    fn complete_jpegs_decode_and_truncated_ones_are_refused() {
        let whole = jpeg();
        let name = Path::new("p.jpg");
        assert!(!jpeg_is_truncated(&whole));
        assert_eq!(decode_bytes(&whole, name).unwrap().width(), 40);
        for cut in [whole.len() - 2, whole.len() * 2 / 3, 200] {
            let err = decode_bytes(&whole[..cut], name).unwrap_err().to_string();
            assert!(err.contains("p.jpg"), "{err}");
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
    }

    #[test]
    fn truncated_pngs_are_refused() {
        let img = image::GrayImage::from_fn(64, 64, |x, y| image::Luma([(x * y) as u8]));
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(img.as_raw(), 64, 64, ExtendedColorType::L8)
            .unwrap();
        assert!(decode_bytes(&bytes, Path::new("p.png")).is_ok());
        assert!(decode_bytes(&bytes[..bytes.len() / 2], Path::new("p.png")).is_err());
    }

    #[test]
    fn oversized_headers_are_refused_before_decoding() {
        // The JPEG's frame header (SOF0: FF C0, length, precision, height, width) made to
        // declare 30000 pixels across.
        let mut bytes = jpeg();
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 7..sof + 9].copy_from_slice(&30_000u16.to_be_bytes());
        let err = decode_bytes(&bytes, Path::new("big.jpg"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("30000 x 30 pixels is above the limit of 20000 pixels a side"),
            "{err}"
        );
        let err = check_dimensions(10_000, 10_000).map(|_| "");
        assert!(err.is_ok() || memory_limit() < 1_600_000_000);
    }

    proptest::proptest! {
        /// Arbitrary bytes, alone or behind a JPEG's or a PNG's signature, decode or are
        /// refused, never a panic.
        #[test]
        fn arbitrary_pictures_never_panic(
            magic in proptest::sample::select(vec![
                &b"\xFF\xD8\xFF"[..],
                b"\x89PNG\r\n\x1a\n",
                b"",
            ]),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let mut bytes = magic.to_vec();
            bytes.extend(&body);
            let _ = decode_bytes(&bytes, Path::new("p"));
            let _ = jpeg_is_truncated(&bytes);
        }

        /// A valid JPEG cut anywhere before its last two bytes is refused.
        #[test]
        fn every_cut_of_a_jpeg_is_refused(cut in 0usize..1000) {
            let whole = jpeg();
            let cut = cut % (whole.len() - 1);
            proptest::prop_assert!(decode_bytes(&whole[..cut], Path::new("p.jpg")).is_err());
        }
    }
}
