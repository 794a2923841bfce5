//! Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 28x28 greyscale photos of clothes in
//! ten classes, a drop-in replacement for MNIST digits that is hard enough to tell networks
//! apart. Debian packages it as `dataset-fashion-mnist`.

use std::path::{Path, PathBuf};

use crate::idx::{IdxArray, read_idx_limit};
use crate::{DataError, ImageSet};

/// Class names in label order.
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where `apt-get install dataset-fashion-mnist` puts the files.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The environment variable naming a data directory.
pub const ENV_VAR: &str = "CONVNET_DATA";

/// The name of the set's folder inside a data directory.
pub const SUBDIR: &str = "fashion-mnist";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 examples.
    Train,
    /// 10,000 examples.
    Test,
}

impl Split {
    /// `train` or `test`, for messages and file names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// File stems of the images and the labels, as published (each may also end in `.gz`).
    pub fn stems(self) -> [&'static str; 2] {
        match self {
            Split::Train => ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
            Split::Test => ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        }
    }
}

/// The directory holding the four Fashion-MNIST files.
///
/// An explicit `data_dir` (the CLI's `--data`) is the only place looked: a typo there should be
/// an error, not a silent fall-back to another copy. Without one, `$CONVNET_DATA` is tried and
/// then [`DEBIAN_DIR`]. Each place may hold the files or a `fashion-mnist/` folder with them.
pub fn locate(data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    let env = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty());
    locate_in(
        data_dir,
        env.as_deref().map(Path::new),
        Path::new(DEBIAN_DIR),
    )
}

/// [`locate`] with the environment's value and the system directory passed in, so it can be
/// tested without touching the process environment.
pub fn locate_in(
    data_dir: Option<&Path>,
    env_dir: Option<&Path>,
    system_dir: &Path,
) -> Result<PathBuf, DataError> {
    let places: Vec<&Path> = match data_dir {
        Some(dir) => vec![dir],
        None => env_dir.into_iter().chain([system_dir]).collect(),
    };
    let mut searched = Vec::new();
    for place in places {
        for dir in [place.to_path_buf(), place.join(SUBDIR)] {
            if holds_all_files(&dir) {
                return Ok(dir);
            }
            searched.push(dir.display().to_string());
        }
    }
    Err(DataError::NotFound {
        searched: searched.join(", "),
    })
}

fn holds_all_files(dir: &Path) -> bool {
    [Split::Train, Split::Test]
        .iter()
        .flat_map(|s| s.stems())
        .all(|stem| find_file(dir, stem).is_some())
}

/// `dir/stem`, or `dir/stem.gz` when only that exists.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    [raw, gz].into_iter().find(|p| p.is_file())
}

/// Loads one split from `dir` (see [`locate`]).
pub fn load(dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    load_limit(dir, split, None)
}

/// Loads the first `limit` examples of one split (all of them for `None`); only those are read.
pub fn load_limit(dir: &Path, split: Split, limit: Option<usize>) -> Result<ImageSet, DataError> {
    let [image_stem, label_stem] = split.stems();
    let path = |stem: &str| {
        find_file(dir, stem).ok_or_else(|| DataError::Read {
            path: dir.join(stem),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {stem} nor {stem}.gz exists"),
            ),
        })
    };
    let (images_path, labels_path) = (path(image_stem)?, path(label_stem)?);
    let images = read_idx_limit(&images_path, limit)?;
    let labels = read_idx_limit(&labels_path, limit)?;
    from_arrays(images, labels, &images_path, &labels_path)
}

fn from_arrays(
    images: IdxArray,
    labels: IdxArray,
    images_path: &Path,
    labels_path: &Path,
) -> Result<ImageSet, DataError> {
    let idx = |path: &Path, problem: String| DataError::Idx {
        file: path.display().to_string(),
        problem,
    };
    let [_, h, w] = images.dims[..] else {
        return Err(idx(
            images_path,
            format!(
                "expected images shaped [N, H, W], found dimensions {:?}",
                images.dims
            ),
        ));
    };
    let [_] = labels.dims[..] else {
        return Err(idx(
            labels_path,
            format!(
                "expected labels shaped [N], found dimensions {:?}",
                labels.dims
            ),
        ));
    };
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
            images: images.dims[0],
            labels: labels.dims[0],
        });
    }
    if let Some((index, &label)) = labels.data.iter().enumerate().find(|&(_, &l)| l >= 10) {
        return Err(DataError::BadLabel {
            path: labels_path.to_path_buf(),
            index,
            label: usize::from(label),
            classes: CLASS_NAMES.len(),
        });
    }
    ImageSet::new(
        images.data,
        labels.data.into_iter().map(usize::from).collect(),
        [1, h, w],
        CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::write_idx;

    /// A tiny Fashion-MNIST look-alike in `dir`: `n` 2x3 images, labels `i % 10`.
    fn fake(dir: &Path, n: usize, gz: bool) {
        let ext = if gz { ".gz" } else { "" };
        for split in [Split::Train, Split::Test] {
            let [images, labels] = split.stems();
            let pixels: Vec<u8> = (0..n * 6).map(|i| i as u8).collect();
            let label: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            write_idx(&dir.join(format!("{images}{ext}")), &[n, 2, 3], &pixels).unwrap();
            write_idx(&dir.join(format!("{labels}{ext}")), &[n], &label).unwrap();
        }
    }

    #[test]
    fn loads_a_small_set_with_or_without_gz() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            fake(dir.path(), 12, gz);
            let set = load(dir.path(), Split::Train).unwrap();
            assert_eq!((set.len(), set.shape), (12, [1, 2, 3]));
            assert_eq!(set.labels[11], 1);
            assert_eq!(set.image(1), &[6, 7, 8, 9, 10, 11]);
            assert_eq!(set.classes[9], "Ankle boot");
            assert_eq!(
                load_limit(dir.path(), Split::Test, Some(5)).unwrap().len(),
                5
            );
        }
    }

    #[test]
    fn count_mismatch_names_both_files_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), 4, false);
        write_idx(
            &dir.path().join("train-labels-idx1-ubyte"),
            &[3],
            &[0, 1, 2],
        )
        .unwrap();
        let msg = load(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte holds 4 images"),
            "{msg}"
        );
        assert!(
            msg.contains("train-labels-idx1-ubyte holds 3 labels"),
            "{msg}"
        );
    }

    #[test]
    fn a_label_of_ten_or_more_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), 3, false);
        write_idx(
            &dir.path().join("t10k-labels-idx1-ubyte"),
            &[3],
            &[0, 10, 2],
        )
        .unwrap();
        let msg = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(msg.contains("example 1 has label 10"), "{msg}");
        assert!(msg.contains("t10k-labels-idx1-ubyte"), "{msg}");
    }

    #[test]
    fn images_must_be_three_dimensional() {
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), 3, false);
        write_idx(
            &dir.path().join("train-images-idx3-ubyte"),
            &[3, 6],
            &[0; 18],
        )
        .unwrap();
        let msg = load(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(msg.contains("[N, H, W]"), "{msg}");
    }

    #[test]
    fn locate_takes_the_dir_or_its_fashion_mnist_folder() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join(SUBDIR);
        std::fs::create_dir(&sub).unwrap();
        fake(&sub, 1, true);
        assert_eq!(locate(Some(&sub)).unwrap(), sub);
        assert_eq!(locate(Some(root.path())).unwrap(), sub);
    }

    #[test]
    fn an_explicit_dir_without_the_files_is_an_error_with_advice() {
        let empty = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fake(elsewhere.path(), 1, false);
        let err = locate_in(Some(empty.path()), Some(elsewhere.path()), elsewhere.path());
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains(&empty.path().display().to_string()), "{msg}");
        assert!(
            msg.contains("sudo apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
        assert!(msg.contains("--data DIR"), "{msg}");
    }

    #[test]
    fn the_environment_comes_before_the_system_dir() {
        let env = tempfile::tempdir().unwrap();
        let system = tempfile::tempdir().unwrap();
        fake(system.path(), 1, false);
        assert_eq!(
            locate_in(None, Some(env.path()), system.path()).unwrap(),
            system.path()
        );
        let sub = env.path().join(SUBDIR);
        std::fs::create_dir(&sub).unwrap();
        fake(&sub, 1, false);
        assert_eq!(
            locate_in(None, Some(env.path()), system.path()).unwrap(),
            sub
        );
        let nowhere = tempfile::tempdir().unwrap();
        let msg = locate_in(None, None, nowhere.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&nowhere.path().display().to_string()), "{msg}");
    }

    #[test]
    fn the_real_training_set_starts_with_an_ankle_boot() {
        let dir = Path::new(DEBIAN_DIR);
        if !holds_all_files(dir) {
            eprintln!("skipped: Fashion-MNIST is not installed in {DEBIAN_DIR}");
            return;
        }
        let set = load_limit(dir, Split::Train, Some(300)).unwrap();
        assert_eq!((set.len(), set.shape), (300, [1, 28, 28]));
        assert!(set.labels.iter().all(|&l| l < 10));
        assert_eq!(set.labels[0], 9);
        assert_eq!(set.classes[set.labels[0]], "Ankle boot");
        // A photo, not a blank: a good share of the pixels are lit.
        assert!(set.image(0).iter().filter(|&&p| p > 0).count() > 200);
    }
}
