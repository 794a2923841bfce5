//! Naming a data set: `fashion-mnist` (found in a given folder, `$CONVNET_DATA` or where
//! Debian installs it); a folder of images, one sub-folder per class (with `train/` and `test/`
//! inside it when the user has a test set); the generated sets `ecg` (signals), `motion` (clips)
//! and `shapes` (volumes); or a `.npy` array with its labels. Detection and segmentation train on
//! generated `scenes` (Fashion-MNIST items on textured backgrounds) or on their own folders.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use convnet_data::fashion_mnist::{self, Split};
use convnet_data::synthetic::{ecg_set, motion_set, shapes_set};
use convnet_data::{
    ClassSelection, Examples, ImageSet, Normalization, TensorSet, folder, load_npy_set, seed,
};

pub const FASHION_MNIST: &str = "fashion-mnist";
pub const ECG: &str = "ecg";
pub const MOTION: &str = "motion";
pub const SHAPES: &str = "shapes";
/// The generated scenes detection and segmentation train on by default: Fashion-MNIST items
/// on textured backgrounds.
pub const SCENES: &str = "scenes";

/// Generated test sets come from fixed seeds, apart from any training seed, so `convnet eval`
/// regenerates exactly the set a run was tested on.
const TEST_SEED: u64 = 0x7e57_5e7d;
const ECG_LENGTH: usize = 1000;
const CLIP_FRAMES: usize = 16;
const CLIP_SIZE: usize = 32;
const VOLUME_SIZE: usize = 24;

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
    /// Generated: `motion` needs Fashion-MNIST for its items.
    Generated {
        name: &'static str,
        items: Option<PathBuf>,
    },
    Npy {
        x: PathBuf,
        y: PathBuf,
        test: Option<(PathBuf, PathBuf)>,
    },
}

/// Where a data set's files are, beside its name.
#[derive(Debug, Default, Clone)]
pub struct Locations<'a> {
    /// Fashion-MNIST's folder (`--data`).
    pub data_dir: Option<&'a Path>,
    /// The labels of a `.npy` data set (`--labels`).
    pub labels: Option<&'a Path>,
    /// A `.npy` test set and its labels (`--test-dataset`, `--test-labels`).
    pub test: Option<(&'a Path, &'a Path)>,
}

impl DataSource {
    pub fn resolve(name: &str, at: &Locations) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            FASHION_MNIST | "fmnist" => {
                return Ok(DataSource::FashionMnist {
                    dir: fashion_mnist::locate(at.data_dir)?,
                });
            }
            ECG | SHAPES => {
                return Ok(DataSource::Generated {
                    name: if lower == ECG { ECG } else { SHAPES },
                    items: None,
                });
            }
            MOTION => {
                return Ok(DataSource::Generated {
                    name: MOTION,
                    items: Some(fashion_mnist::locate(at.data_dir)?),
                });
            }
            _ => {}
        }
        let path = PathBuf::from(name);
        if path.extension().is_some_and(|e| e == "npy") {
            let y = at.labels.with_context(|| {
                format!("{name}: a .npy data set needs its labels: --labels Y.npy")
            })?;
            return Ok(DataSource::Npy {
                x: path,
                y: y.to_path_buf(),
                test: at.test.map(|(x, y)| (x.to_path_buf(), y.to_path_buf())),
            });
        }
        if !path.is_dir() {
            bail!(
                "unknown data set '{name}': use fashion-mnist, ecg, motion, shapes, a folder with one sub-folder of images per class, or X.npy with --labels Y.npy"
            );
        }
        let (train, test) = (path.join("train"), path.join("test"));
        if train.is_dir() {
            Ok(DataSource::Folder {
                train,
                test: test.is_dir().then_some(test),
            })
        } else {
            Ok(DataSource::Folder {
                train: path,
                test: None,
            })
        }
    }

    /// Image folders are the one source whose example shape is not in the data: their
    /// images are resized to the model's input.
    pub fn is_folder(&self) -> bool {
        matches!(self, DataSource::Folder { .. })
    }

    /// Default sizes of the generated sets: (train, test).
    fn generated_sizes(name: &str) -> (usize, usize) {
        match name {
            ECG => (4000, 1000),
            _ => (2000, 500),
        }
    }

    fn generate(&self, name: &str, n: usize, seed: u64, test: bool) -> Result<AnySet> {
        let set = match name {
            ECG => ecg_set(n, ECG_LENGTH, seed)?,
            SHAPES => shapes_set(n, VOLUME_SIZE, seed)?,
            _ => {
                let DataSource::Generated {
                    items: Some(dir), ..
                } = self
                else {
                    bail!("the motion set needs Fashion-MNIST for its items");
                };
                // Test clips move items the training clips never saw.
                let split = if test { Split::Test } else { Split::Train };
                let items = fashion_mnist::load(dir, split)?;
                motion_set(&items, n, CLIP_FRAMES, CLIP_SIZE, seed)?
            }
        };
        Ok(AnySet::Tensors(set))
    }

    /// The training set: `limit` keeps its first examples; `size` is how many to generate;
    /// `image_size` is what folder images are resized to.
    pub fn load_train(
        &self,
        image_size: Option<[usize; 3]>,
        limit: Option<usize>,
        size: Option<usize>,
        seed: u64,
    ) -> Result<AnySet> {
        let set = match self {
            DataSource::FashionMnist { dir } => {
                AnySet::Images(fashion_mnist::load_limit(dir, Split::Train, limit)?)
            }
            DataSource::Folder { train, .. } => {
                AnySet::Images(folder::load_folder(train, folder_size(image_size)?)?)
            }
            DataSource::Generated { name, .. } => {
                let n = size.unwrap_or(Self::generated_sizes(name).0);
                self.generate(name, n, seed::derive(&[seed, 1]), false)?
            }
            DataSource::Npy { x, y, .. } => AnySet::Tensors(load_npy_set(x, y, None)?),
        };
        Ok(set.limited(limit))
    }

    /// The held-out test set, when the source has one.
    pub fn load_test(
        &self,
        image_size: Option<[usize; 3]>,
        limit: Option<usize>,
    ) -> Result<Option<AnySet>> {
        let set =
            match self {
                DataSource::FashionMnist { dir } => Some(AnySet::Images(
                    fashion_mnist::load_limit(dir, Split::Test, limit)?,
                )),
                DataSource::Folder {
                    test: Some(test), ..
                } => Some(AnySet::Images(folder::load_folder(
                    test,
                    folder_size(image_size)?,
                )?)),
                DataSource::Folder { test: None, .. } => None,
                DataSource::Generated { name, .. } => {
                    Some(self.generate(name, Self::generated_sizes(name).1, TEST_SEED, true)?)
                }
                DataSource::Npy {
                    test: Some((x, y)), ..
                } => Some(AnySet::Tensors(load_npy_set(x, y, None)?)),
                DataSource::Npy { test: None, .. } => None,
            };
        Ok(set.map(|s| s.limited(limit)))
    }

    pub fn load_split(
        &self,
        split: &str,
        image_size: Option<[usize; 3]>,
        limit: Option<usize>,
        seed: u64,
    ) -> Result<AnySet> {
        match split {
            "train" => self.load_train(image_size, limit, None, seed),
            "test" => self.load_test(image_size, limit)?.context(
                "this data set has no test split (a folder needs train/ and test/ sub-folders; a .npy set needs --test-dataset and --test-labels)",
            ),
            other => bail!("unknown split '{other}': use train or test"),
        }
    }
}

fn folder_size(image_size: Option<[usize; 3]>) -> Result<[usize; 3]> {
    image_size.context("image folders need a model that takes images [channels, height, width]")
}

/// Images (kept as bytes) or any other examples (kept as floats).
pub enum AnySet {
    Images(ImageSet),
    Tensors(TensorSet),
}

impl AnySet {
    pub fn len(&self) -> usize {
        self.examples().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn examples(&self) -> &dyn Examples {
        match self {
            AnySet::Images(s) => s,
            AnySet::Tensors(s) => s,
        }
    }

    pub fn classes(&self) -> Vec<String> {
        self.examples().classes().to_vec()
    }

    pub fn labels(&self) -> Vec<usize> {
        match self {
            AnySet::Images(s) => s.labels.clone(),
            AnySet::Tensors(s) => s.labels.clone(),
        }
    }

    pub fn example_shape(&self) -> Vec<usize> {
        self.examples().example_shape()
    }

    /// Some classes of the set (all when the selection is empty).
    pub fn select(self, selection: &ClassSelection) -> Result<Self> {
        if selection.is_all() {
            return Ok(self);
        }
        Ok(match self {
            AnySet::Images(s) => AnySet::Images(s.select(selection)?),
            AnySet::Tensors(s) => AnySet::Tensors(s.select(selection)?),
        })
    }

    fn limited(self, limit: Option<usize>) -> Self {
        match (self, limit) {
            (AnySet::Images(s), Some(n)) if n < s.len() => AnySet::Images(s.take(n)),
            (AnySet::Tensors(s), Some(n)) if n < s.len() => AnySet::Tensors(s.take(n)),
            (s, _) => s,
        }
    }

    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<(AnySet, AnySet)> {
        Ok(match self {
            AnySet::Images(s) => {
                let (a, b) = s.split(val_fraction, seed)?;
                (AnySet::Images(a), AnySet::Images(b))
            }
            AnySet::Tensors(s) => {
                let (a, b) = s.split(val_fraction, seed)?;
                (AnySet::Tensors(a), AnySet::Tensors(b))
            }
        })
    }

    pub fn normalization(&self) -> Normalization {
        match self {
            AnySet::Images(s) => s.normalization(),
            AnySet::Tensors(s) => s.normalization(),
        }
    }

    pub fn as_images(&self) -> Option<&ImageSet> {
        match self {
            AnySet::Images(s) => Some(s),
            AnySet::Tensors(_) => None,
        }
    }

    pub fn into_examples(self) -> Arc<dyn Examples> {
        match self {
            AnySet::Images(s) => Arc::new(s),
            AnySet::Tensors(s) => Arc::new(s),
        }
    }
}

/// The Fashion-MNIST items generated scenes are made of: training items for the training
/// scenes, test items for the test scenes.
pub fn scene_items(data: Option<&Path>, split: Split) -> Result<ImageSet> {
    Ok(fashion_mnist::load(&fashion_mnist::locate(data)?, split)?)
}
