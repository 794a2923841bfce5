//! What the four writers share: a fresh output folder, one file name per picture (unique by
//! stem, as YOLO and VOC name label files by it), pictures hard-linked or copied, text files.

use std::collections::HashSet;
use std::path::Path;

use super::super::{DetectionDataset, LabelledImage, Split};
use super::folder_error;
use crate::DataError;

/// A picture as a writer places it: its split and the file name it gets in the output.
pub struct Placed<'a> {
    pub split: Split,
    pub image: &'a LabelledImage,
    /// `NAME.ext`, unique by stem (case-insensitively) across the whole data set.
    pub name: String,
    /// `NAME`, without the extension.
    pub stem: String,
}

/// Creates `out` (and its parents), refusing a folder that already holds anything: writing
/// into another data set would mix the two. An empty data set is refused too.
pub fn start(ds: &DetectionDataset, out: &Path) -> Result<(), DataError> {
    if ds.images().next().is_none() {
        return Err(folder_error(
            &ds.root,
            "the data set holds no pictures: nothing to write",
        ));
    }
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|source| DataError::Read {
            path: out.to_path_buf(),
            source,
        })?;
        if entries.next().is_some() {
            return Err(folder_error(
                out,
                "the output folder is not empty: give a new or empty folder",
            ));
        }
    }
    create_dir(out)
}

/// Whether a writer keeps splits: the data set names them, or a caller has split off
/// validation or test pictures since it was read.
pub fn splits_named(ds: &DetectionDataset) -> bool {
    ds.has_splits || !ds.val.is_empty() || !ds.test.is_empty()
}

pub fn create_dir(dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

pub fn write_text(path: &Path, text: &str) -> Result<(), DataError> {
    std::fs::write(path, text).map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Every picture with its output name, in split order. Two pictures with the same stem (from
/// different folders, or `a.png` and `a.jpg`) get `a`, then `a_2`, `a_3`...
pub fn place(ds: &DetectionDataset) -> Vec<Placed<'_>> {
    let mut taken = HashSet::new();
    let mut out = Vec::new();
    for (split, image) in ds.images() {
        let stem = image
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "picture".to_string());
        let ext = image
            .path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "png".to_string());
        let mut unique = stem.clone();
        let mut n = 1usize;
        while !taken.insert(unique.to_lowercase()) {
            n += 1;
            unique = format!("{stem}_{n}");
        }
        out.push(Placed {
            split,
            image,
            name: format!("{unique}.{ext}"),
            stem: unique,
        });
    }
    out
}

/// Puts a picture at `dst`: a hard link when the file system allows one (no copy of a large
/// picture), a copy otherwise.
pub fn link_or_copy(src: &Path, dst: &Path) -> Result<(), DataError> {
    if let Some(parent) = dst.parent() {
        create_dir(parent)?;
    }
    if std::fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    std::fs::copy(src, dst)
        .map(|_| ())
        .map_err(|source| DataError::Write {
            path: dst.to_path_buf(),
            source,
        })
}

/// `value` with `decimals` places, trailing zeros dropped (`0.25`, `3`, `0.123457`).
pub fn decimal(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if !text.contains('.') {
        return text;
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "-0" | "" => "0".to_string(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::Layout;
    use std::path::PathBuf;

    fn image(path: &str) -> LabelledImage {
        LabelledImage {
            path: PathBuf::from(path),
            width: 4,
            height: 4,
            boxes: vec![],
            labelled: true,
        }
    }

    #[test]
    fn names_are_unique_by_stem_whatever_the_folder_or_extension() {
        let ds = DetectionDataset {
            root: PathBuf::from("."),
            layout: Layout::Csv,
            classes: vec![],
            train: vec![image("a/x.png"), image("b/x.png"), image("b/X.jpg")],
            val: vec![image("c/y.jpeg")],
            test: vec![],
            has_splits: true,
        };
        let names: Vec<(Split, String)> =
            place(&ds).into_iter().map(|p| (p.split, p.name)).collect();
        assert_eq!(
            names,
            [
                (Split::Train, "x.png".to_string()),
                (Split::Train, "x_2.png".to_string()),
                (Split::Train, "X_3.jpg".to_string()),
                (Split::Val, "y.jpeg".to_string()),
            ]
        );
    }

    #[test]
    fn decimals_drop_trailing_zeros() {
        assert_eq!(decimal(0.25, 6), "0.25");
        assert_eq!(decimal(3.0, 4), "3");
        assert_eq!(decimal(0.1234567, 6), "0.123457");
        assert_eq!(decimal(-0.0000001, 3), "0");
        assert_eq!(decimal(12.0, 0), "12");
    }

    #[test]
    fn a_folder_with_files_is_not_written_into() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "").unwrap();
        let ds = DetectionDataset {
            root: PathBuf::from("."),
            layout: Layout::Csv,
            classes: vec![],
            train: vec![image("a.png")],
            val: vec![],
            test: vec![],
            has_splits: false,
        };
        let err = start(&ds, dir.path()).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        start(&ds, &dir.path().join("new/out")).unwrap();
        assert!(dir.path().join("new/out").is_dir());
        let empty = DetectionDataset {
            train: vec![],
            ..ds
        };
        let err = start(&empty, &dir.path().join("other"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no pictures"), "{err}");
    }
}
