//! What every reader asks of a picture: whether a file is one, its size (from its header, not
//! decoding its pixels), and whether a box lies inside it with a positive size.

use std::path::{Path, PathBuf};

use super::super::{Problem, problem};
use crate::DataError;

/// The picture formats this build decodes (those of image folders).
pub use crate::folder::EXTENSIONS as PICTURE_EXTENSIONS;
pub(crate) use crate::folder::sorted_entries;

/// Picture formats people label that this build does not decode: named as problems rather
/// than passed over, so their boxes are not silently lost.
const OTHER_PICTURES: [&str; 7] = ["bmp", "tif", "tiff", "webp", "gif", "heic", "dng"];

/// How far (in pixels) a box may reach past the picture's edge and still be taken as touching
/// it: exporters write `x + w` in floating point, and 639.99999 or 640.00001 for a box at a
/// 640-pixel edge is rounding, not a mistake. Such a box is clamped to the picture.
pub const EDGE_TOLERANCE: f64 = 0.01;

pub fn is_picture(path: &Path) -> bool {
    crate::folder::is_image_name(path)
}

fn is_other_picture(path: &Path) -> bool {
    OTHER_PICTURES.contains(&super::extension(path).as_str())
}

/// Width and height of a picture, read from its header only.
pub fn picture_size(path: &Path) -> Result<(u32, u32), Problem> {
    let unreadable =
        |e: &dyn std::fmt::Display| problem(path, None, format!("cannot read the picture: {e}"));
    let (width, height) = image::ImageReader::open(path)
        .map_err(|e| unreadable(&e))?
        .with_guessed_format()
        .map_err(|e| unreadable(&e))?
        .into_dimensions()
        .map_err(|e| unreadable(&e))?;
    if width == 0 || height == 0 {
        return Err(problem(
            path,
            None,
            format!("the picture is {width}x{height}"),
        ));
    }
    Ok((width, height))
}

/// The pictures under `dir` (sub-folders included), sorted. A file of a picture format this
/// build cannot read is a problem, not a silent omission.
pub fn pictures_under(dir: &Path, problems: &mut Vec<Problem>) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for path in files_under(dir)? {
        if is_picture(&path) {
            out.push(path);
        } else if is_other_picture(&path) {
            problems.push(problem(
                &path,
                None,
                "this build reads PNG and JPEG pictures only: convert it (its labels are left out)",
            ));
        }
    }
    Ok(out)
}

/// Every file under `dir`, sub-folders included, sorted.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for path in sorted_entries(&folder)? {
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The picture `dir/stem.{png,jpg,jpeg}` (either case), when there is one.
pub fn picture_with_stem(dir: &Path, stem: &str) -> Option<PathBuf> {
    PICTURE_EXTENSIONS
        .iter()
        .flat_map(|e| [e.to_string(), e.to_ascii_uppercase()])
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

/// Checks that `[x1, y1, x2, y2]` (pixels) is finite, has a positive width and height and lies
/// inside a `width` x `height` picture (to [`EDGE_TOLERANCE`]), and returns it clamped to the
/// picture. The error is the message of a problem; the caller knows the file and line.
pub fn check_box(bbox: [f64; 4], width: u32, height: u32) -> Result<[f32; 4], String> {
    let [x1, y1, x2, y2] = bbox;
    let shown = format!("box x {}..{}, y {}..{}", x1, x2, y1, y2);
    if bbox.iter().any(|v| !v.is_finite()) {
        return Err(format!("{shown}: coordinates must be finite numbers"));
    }
    if x2 <= x1 {
        return Err(format!("{shown}: zero or negative width"));
    }
    if y2 <= y1 {
        return Err(format!("{shown}: zero or negative height"));
    }
    let (w, h) = (f64::from(width), f64::from(height));
    let outside = x1 < -EDGE_TOLERANCE
        || y1 < -EDGE_TOLERANCE
        || x2 > w + EDGE_TOLERANCE
        || y2 > h + EDGE_TOLERANCE;
    if outside {
        return Err(format!(
            "{shown} reaches outside the {width}x{height} picture"
        ));
    }
    let clamped = [
        x1.clamp(0.0, w),
        y1.clamp(0.0, h),
        x2.clamp(0.0, w),
        y2.clamp(0.0, h),
    ];
    let out = clamped.map(|v| v as f32);
    // A box thinner than f32 can hold at this position would collapse to nothing.
    if out[2] <= out[0] || out[3] <= out[1] {
        return Err(format!("{shown}: too small to hold at this position"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_inside_its_picture_passes_and_is_clamped_within_the_tolerance() {
        assert_eq!(
            check_box([0.0, 0.0, 10.0, 5.0], 10, 5),
            Ok([0.0, 0.0, 10.0, 5.0])
        );
        assert_eq!(
            check_box([-0.001, 1.0, 10.004, 2.5], 10, 5),
            Ok([0.0, 1.0, 10.0, 2.5])
        );
    }

    #[test]
    fn boxes_outside_empty_or_not_finite_are_refused_with_the_reason() {
        let err = |b| check_box(b, 100, 50).unwrap_err();
        assert!(err([-1.0, 0.0, 5.0, 5.0]).contains("outside the 100x50 picture"));
        assert!(err([0.0, 0.0, 5.0, 50.5]).contains("outside the 100x50 picture"));
        assert!(err([0.0, 0.0, 100.02, 5.0]).contains("outside"));
        assert!(err([5.0, 0.0, 5.0, 5.0]).contains("zero or negative width"));
        assert!(err([6.0, 0.0, 5.0, 5.0]).contains("zero or negative width"));
        assert!(err([0.0, 3.0, 5.0, 2.0]).contains("zero or negative height"));
        assert!(err([0.0, f64::NAN, 5.0, 2.0]).contains("finite"));
        assert!(err([0.0, 0.0, f64::INFINITY, 2.0]).contains("finite"));
    }

    #[test]
    fn sizes_come_from_the_header_and_bad_files_are_problems_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("a.png");
        image::RgbImage::new(7, 3).save(&png).unwrap();
        assert_eq!(picture_size(&png), Ok((7, 3)));
        let bad = dir.path().join("b.jpg");
        std::fs::write(&bad, b"not a picture").unwrap();
        let p = picture_size(&bad).unwrap_err();
        assert_eq!(p.file, bad);
        assert!(
            p.message.contains("cannot read the picture"),
            "{}",
            p.message
        );
        let missing = picture_size(&dir.path().join("c.png")).unwrap_err();
        assert!(missing.to_string().contains("c.png"));
    }

    #[test]
    fn pictures_are_listed_sorted_and_unreadable_formats_named() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.png", "a.JPG", "sub/c.jpeg", "notes.txt", "d.tif"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        let mut problems = Vec::new();
        let found = pictures_under(dir.path(), &mut problems).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.JPG", "b.png", "sub/c.jpeg"]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].file.ends_with("d.tif"));
        assert_eq!(
            picture_with_stem(dir.path(), "a"),
            Some(dir.path().join("a.JPG"))
        );
        assert_eq!(picture_with_stem(dir.path(), "notes"), None);
    }
}
