//! People's own images: `DIR/<class>/*.png|jpg|jpeg`, the layout of Keras'
//! `image_dataset_from_directory` and torchvision's `ImageFolder`.
//!
//! Classes are the subfolders that hold at least one image, sorted by name, and files are
//! sorted too, so the same folder always gives the same labels in the same order. Every image
//! is brought to one shape the way classification networks expect it: scaled so the shorter
//! side fits, then centre-cropped (no stretching of the object).

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Pixel};
use std::path::{Path, PathBuf};

use crate::{DataError, ImageSet};

/// The picture formats this build decodes.
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Loads every image under `dir/<class>/`, each converted to `shape` = `[C, H, W]`
/// (`C` = 1 for grey, 3 for RGB).
pub fn load_folder(dir: &Path, shape: [usize; 3]) -> Result<ImageSet, DataError> {
    check_shape(shape)?;
    let folder_error = |problem: String| DataError::Folder {
        path: dir.to_path_buf(),
        problem,
    };
    let mut classes = Vec::new();
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for sub in sorted_entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let images: Vec<PathBuf> = sorted_entries(&sub)?
            .into_iter()
            .filter(|p| is_image_name(p) && p.is_file())
            .collect();
        if images.is_empty() {
            continue;
        }
        let label = classes.len();
        classes.push(
            sub.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        files.extend(images.into_iter().map(|p| (p, label)));
    }
    if classes.is_empty() {
        let loose = sorted_entries(dir)?
            .iter()
            .filter(|p| is_image_name(p))
            .count();
        let hint = if loose > 0 {
            format!("; the {loose} images directly in it must move into one subfolder per class")
        } else {
            String::new()
        };
        return Err(folder_error(format!(
            "no images found: expected one subfolder per class holding .png/.jpg/.jpeg files{hint}"
        )));
    }
    // The whole set is kept in memory at the asked size: check before decoding the first.
    let [c, h, w] = shape;
    convnet_layers::limits::Bytes::of(&[files.len(), c, h, w], 1)
        .check(&format!("{} images of {c}x{h}x{w}", files.len()))
        .map_err(|e| folder_error(e.to_string()))?;
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let images = load_all(&paths, shape)?;
    ImageSet::new(
        images,
        files.iter().map(|&(_, l)| l).collect(),
        shape,
        classes,
    )
}

/// One image file with the same conversion as [`load_folder`]: `C * H * W` pixels, channels
/// first.
pub fn load_image_file(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>, DataError> {
    check_shape(shape)?;
    Ok(fit(&decode_image(path)?, shape))
}

/// A decoded picture with the same conversion as [`load_folder`]: `C * H * W` pixels, channels
/// first.
pub fn image_pixels(img: &DynamicImage, shape: [usize; 3]) -> Result<Vec<u8>, DataError> {
    check_shape(shape)?;
    Ok(fit(img, shape))
}

/// Decodes a picture file (its format guessed from the content), or says which file failed:
/// [`convnet_vision::image_io::decode_image`], which refuses truncated and oversized pictures.
pub fn decode_image(path: &Path) -> Result<DynamicImage, DataError> {
    Ok(convnet_vision::image_io::decode_image(path)?)
}

fn check_shape(shape: [usize; 3]) -> Result<(), DataError> {
    let [c, h, w] = shape;
    if !(c == 1 || c == 3) {
        return Err(DataError::InvalidSet(format!(
            "images load with 1 (grey) or 3 (RGB) channels, not {c}"
        )));
    }
    if h == 0 || w == 0 || u32::try_from(h.max(w)).is_err() {
        return Err(DataError::InvalidSet(format!(
            "cannot resize images to {h}x{w}"
        )));
    }
    Ok(())
}

/// Whether `path` names a picture by its extension (PNG, JPEG, BMP, ...).
pub fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Entries of `dir`, sorted, hidden ones (`.git`, `.DS_Store`) left out.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let read = |source| DataError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

/// Decodes `paths` on all cores (decoding dominates loading a folder), pixels in path order;
/// the first failing file in that order is the error.
fn load_all(paths: &[&Path], shape: [usize; 3]) -> Result<Vec<u8>, DataError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = paths.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<u8>, DataError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len() * shape.iter().product::<usize>());
                    for path in part {
                        out.extend(load_image_file(path, shape)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut images = Vec::new();
    for part in parts {
        images.extend(part?);
    }
    Ok(images)
}

/// Scales `img` so it covers `H x W`, centre-crops, and lays the pixels out channels first.
fn fit(img: &DynamicImage, [c, h, w]: [usize; 3]) -> Vec<u8> {
    let (tw, th) = (w as u32, h as u32);
    let (iw, ih) = (img.width().max(1), img.height().max(1));
    let scale = f64::max(f64::from(tw) / f64::from(iw), f64::from(th) / f64::from(ih));
    let nw = ((f64::from(iw) * scale).round() as u32).max(tw);
    let nh = ((f64::from(ih) * scale).round() as u32).max(th);
    let (x, y) = ((nw - tw) / 2, (nh - th) / 2);
    let interleaved = if c == 1 {
        // Grey from the block means rather than from every pixel: converting a whole photo to
        // grey cost more than the rest of its preparation.
        let factor = block_factor(img.width(), img.height(), nw, nh);
        let grey = match img {
            _ if factor < 2 => img.to_luma8(),
            DynamicImage::ImageRgb8(rgb) => {
                DynamicImage::ImageRgb8(block_average(rgb, factor)).to_luma8()
            }
            other => DynamicImage::ImageRgb8(block_average(&other.to_rgb8(), factor)).to_luma8(),
        };
        let resized = shrink(grey, nw, nh);
        imageops::crop_imm(&resized, x, y, tw, th)
            .to_image()
            .into_raw()
    } else {
        let resized = shrink(img.to_rgb8(), nw, nh);
        imageops::crop_imm(&resized, x, y, tw, th)
            .to_image()
            .into_raw()
    };
    planar(&interleaved, c)
}

/// `img` resized to `w x h` with the triangle filter. Shrinking by more than 4 first averages
/// whole blocks of pixels, down to twice the target size: the triangle filter's support grows
/// with the shrink factor, which made a 1920-pixel photo to LeNet-5's 28 pixels cost 4x what the
/// decode did, and an area average is what the wide filter approximates anyway.
fn shrink<P>(img: ImageBuffer<P, Vec<u8>>, w: u32, h: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if (w, h) == img.dimensions() {
        return img;
    }
    let factor = block_factor(img.width(), img.height(), w, h);
    let img = if factor >= 2 {
        block_average(&img, factor)
    } else {
        img
    };
    imageops::resize(&img, w, h, FilterType::Triangle)
}

/// The block side that shrinks `iw x ih` to about twice `w x h` (1 or less: no blocks).
fn block_factor(iw: u32, ih: u32, w: u32, h: u32) -> u32 {
    (iw / w.max(1)).min(ih / h.max(1)) / 2
}

/// The mean of every `k x k` block of `img` (blocks cut short at the right and bottom edges
/// average the pixels they hold).
fn block_average<P>(img: &ImageBuffer<P, Vec<u8>>, k: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let c = usize::from(P::CHANNEL_COUNT);
    let (w, h) = img.dimensions();
    let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
    let (k, w) = (k as usize, w as usize);
    let src = img.as_raw();
    let mut out = Vec::with_capacity(ow as usize * oh as usize * c);
    let mut sums = vec![0u32; ow as usize * c];
    for oy in 0..oh as usize {
        sums.fill(0);
        let rows = (oy * k)..((oy + 1) * k).min(h as usize);
        let n_rows = rows.len();
        for y in rows {
            let row = &src[y * w * c..(y + 1) * w * c];
            for (x, px) in row.chunks_exact(c).enumerate() {
                let at = (x / k) * c;
                for (s, &v) in sums[at..at + c].iter_mut().zip(px) {
                    *s += u32::from(v);
                }
            }
        }
        for (ox, block) in sums.chunks_exact(c).enumerate() {
            let n = (n_rows * (w - ox * k).min(k)) as u32;
            out.extend(block.iter().map(|&s| ((s + n / 2) / n) as u8));
        }
    }
    ImageBuffer::from_raw(ow, oh, out).expect("the block means fill the image")
}

/// `HWC` (as image files store pixels) to `CHW` (as convolutions read them).
fn planar(interleaved: &[u8], c: usize) -> Vec<u8> {
    if c == 1 {
        return interleaved.to_vec();
    }
    let hw = interleaved.len() / c;
    let mut out = vec![0; interleaved.len()];
    for (i, px) in interleaved.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            out[ch * hw + i] = v;
        }
    }
    out
}

#[cfg(test)]
mod shrink_tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    #[test]
    fn block_means_cover_the_edges() {
        let img = GrayImage::from_fn(5, 3, |x, y| Luma([(10 * x + 100 * y) as u8]));
        let out = block_average(&img, 2);
        assert_eq!(out.dimensions(), (3, 2));
        // (0+10+100+110)/4, (20+30+120+130)/4, (40+140)/2; (200+210)/2, (220+230)/2, 240.
        assert_eq!(out.into_raw(), vec![55, 75, 90, 205, 225, 240]);
    }

    #[test]
    fn a_large_shrink_stays_close_to_the_triangle_filter_alone() {
        // A smooth picture with some texture, 1920 x 1280 down to 42 x 28 (LeNet-5's fit).
        let img = RgbImage::from_fn(1920, 1280, |x, y| {
            let t = ((x / 7 + y / 5) % 2) as f32 * 40.0;
            Rgb([
                (x as f32 / 1920.0 * 200.0 + t) as u8,
                (y as f32 / 1280.0 * 200.0 + t) as u8,
                ((x + y) as f32 / 3200.0 * 200.0) as u8,
            ])
        });
        let fast = shrink(img.clone(), 42, 28);
        let exact = imageops::resize(&img, 42, 28, FilterType::Triangle);
        let diffs: Vec<i32> = fast
            .as_raw()
            .iter()
            .zip(exact.as_raw())
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        assert!(mean < 1.5, "mean difference {mean}");
        assert!(
            diffs.iter().all(|&d| d <= 6),
            "max {:?}",
            diffs.iter().max()
        );
        // Grey from the block means, against grey from every pixel then the filter alone.
        let picture = DynamicImage::ImageRgb8(img.clone());
        let grey = fit(&picture, [1, 28, 28]);
        let reference = imageops::resize(&picture.to_luma8(), 42, 28, FilterType::Triangle);
        let reference = imageops::crop_imm(&reference, 7, 0, 28, 28)
            .to_image()
            .into_raw();
        let worst = grey
            .iter()
            .zip(&reference)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max();
        assert!(worst <= Some(6), "grey differs by {worst:?}");
        // Small shrinks are the triangle filter's own.
        let small = RgbImage::from_fn(60, 40, |x, y| Rgb([x as u8, y as u8, 0]));
        assert_eq!(
            shrink(small.clone(), 28, 19),
            imageops::resize(&small, 28, 19, FilterType::Triangle)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn solid(path: &Path, w: u32, h: u32, colour: [u8; 3]) {
        RgbImage::from_pixel(w, h, Rgb(colour)).save(path).unwrap();
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (class, colour) in [("red", [255, 0, 0]), ("blue", [0, 0, 255])] {
            let sub = dir.path().join(class);
            std::fs::create_dir(&sub).unwrap();
            solid(&sub.join("b.png"), 8, 4, colour);
            solid(&sub.join("a.PNG"), 5, 5, colour);
            std::fs::write(sub.join("notes.txt"), "not an image").unwrap();
        }
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        dir
    }

    #[test]
    fn classes_are_sorted_subfolders_with_images() {
        let dir = tree();
        let set = load_folder(dir.path(), [3, 4, 4]).unwrap();
        assert_eq!(set.classes, vec!["blue", "red"]);
        assert_eq!(set.labels, vec![0, 0, 1, 1]);
        assert_eq!(set.shape, [3, 4, 4]);
        // Blue image, channels first: 16 zeros of red, 16 of green, 16 of 255 blue.
        let first = set.image(0);
        assert!(first[..32].iter().all(|&p| p == 0));
        assert!(first[32..].iter().all(|&p| p == 255));
        let grey = load_folder(dir.path(), [1, 3, 2]).unwrap();
        assert_eq!(grey.shape, [1, 3, 2]);
    }

    #[test]
    fn shorter_side_fits_then_centre_crop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        // 6x2: left third black, middle white, right third black.
        let img = image::GrayImage::from_fn(6, 2, |x, _| {
            image::Luma([if (2..4).contains(&x) { 255 } else { 0 }])
        });
        img.save(&path).unwrap();
        let pixels = load_image_file(&path, [1, 2, 2]).unwrap();
        assert_eq!(pixels, vec![255; 4]);
    }

    #[test]
    fn a_corrupt_image_is_an_error_naming_it() {
        let dir = tree();
        let bad = dir.path().join("red").join("c.jpg");
        std::fs::write(&bad, b"\xff\xd8\xff garbage").unwrap();
        let msg = load_folder(dir.path(), [3, 4, 4]).unwrap_err().to_string();
        assert!(msg.contains(&bad.display().to_string()), "{msg}");
    }

    #[test]
    fn a_folder_without_classes_says_what_layout_is_wanted() {
        let dir = tempfile::tempdir().unwrap();
        solid(&dir.path().join("loose.png"), 2, 2, [1, 2, 3]);
        let msg = load_folder(dir.path(), [3, 2, 2]).unwrap_err().to_string();
        assert!(msg.contains("one subfolder per class"), "{msg}");
        assert!(msg.contains("the 1 images directly in it"), "{msg}");
        let missing = dir.path().join("missing");
        let msg = load_folder(&missing, [3, 2, 2]).unwrap_err().to_string();
        assert!(msg.contains("missing"), "{msg}");
    }

    #[test]
    fn shapes_other_than_grey_or_rgb_are_refused() {
        let dir = tree();
        assert!(load_folder(dir.path(), [2, 4, 4]).is_err());
        assert!(load_folder(dir.path(), [3, 0, 4]).is_err());
    }
}
