//! Naming a data set on the command line: `fashion-mnist` (found in `--data DIR`,
//! `$CONVNET_DATA` or where Debian installs it) or a folder of images, one sub-folder per class
//! (with `train/` and `test/` inside it when the user has a test set).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use convnet_data::fashion_mnist::{self, Split};
use convnet_data::{ImageSet, folder};

pub const FASHION_MNIST: &str = "fashion-mnist";

/// A data set as named by `--dataset`.
#[derive(Debug, Clone)]
pub enum DataSource {
    FashionMnist {
        dir: PathBuf,
    },
    Folder {
        train: PathBuf,
        test: Option<PathBuf>,
    },
}

impl DataSource {
    pub fn resolve(name: &str, data_dir: Option<&Path>) -> Result<Self> {
        if name.eq_ignore_ascii_case(FASHION_MNIST) || name.eq_ignore_ascii_case("fmnist") {
            return Ok(DataSource::FashionMnist {
                dir: fashion_mnist::locate(data_dir)?,
            });
        }
        let dir = PathBuf::from(name);
        if !dir.is_dir() {
            bail!(
                "unknown data set '{name}': use `fashion-mnist` or a folder with one sub-folder of images per class"
            );
        }
        let (train, test) = (dir.join("train"), dir.join("test"));
        if train.is_dir() {
            Ok(DataSource::Folder {
                train,
                test: test.is_dir().then_some(test),
            })
        } else {
            Ok(DataSource::Folder {
                train: dir,
                test: None,
            })
        }
    }

    /// The shape images take in this set: fixed for Fashion-MNIST, the model's for folders.
    pub fn fixed_shape(&self) -> Option<[usize; 3]> {
        match self {
            DataSource::FashionMnist { .. } => Some([1, 28, 28]),
            DataSource::Folder { .. } => None,
        }
    }

    pub fn load_train(&self, shape: [usize; 3], limit: Option<usize>) -> Result<ImageSet> {
        let set = match self {
            DataSource::FashionMnist { dir } => {
                fashion_mnist::load_limit(dir, Split::Train, limit)?
            }
            DataSource::Folder { train, .. } => limited(folder::load_folder(train, shape)?, limit),
        };
        Ok(set)
    }

    /// The held-out test set, when the source has one.
    pub fn load_test(&self, shape: [usize; 3], limit: Option<usize>) -> Result<Option<ImageSet>> {
        Ok(match self {
            DataSource::FashionMnist { dir } => {
                Some(fashion_mnist::load_limit(dir, Split::Test, limit)?)
            }
            DataSource::Folder {
                test: Some(test), ..
            } => Some(limited(folder::load_folder(test, shape)?, limit)),
            DataSource::Folder { test: None, .. } => None,
        })
    }

    pub fn load_split(
        &self,
        split: &str,
        shape: [usize; 3],
        limit: Option<usize>,
    ) -> Result<ImageSet> {
        match split {
            "train" => self.load_train(shape, limit),
            "test" => self.load_test(shape, limit)?.context(
                "this data set has no test split (a folder needs train/ and test/ sub-folders)",
            ),
            other => bail!("unknown split '{other}': use train or test"),
        }
    }
}

fn limited(set: ImageSet, limit: Option<usize>) -> ImageSet {
    match limit {
        Some(n) if n < set.len() => set.take(n),
        _ => set,
    }
}
