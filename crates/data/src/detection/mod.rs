//! People's own labelled detection data: YOLO text files, COCO JSON, Pascal VOC XML and CSV
//! box lists, read into one form ([`DetectionDataset`]), with what a detector's training
//! needs on top of it: tiles of large pictures ([`tile`]), letterboxing ([`letterbox`]) and
//! augmentations that move the boxes with the pixels ([`augment`]).
//!
//! Boxes are `[x1, y1, x2, y2]` in pixels of their picture, continuous coordinates (a box
//! covering pixel columns 0..=9 is `x1 = 0, x2 = 10`), whatever the layout stored.

use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod augment;
pub mod coco;
pub mod csv;
pub mod inspect;
pub mod layout;
pub mod letterbox;
pub mod prepare;
pub mod tile;
pub mod voc;
pub mod yolo;

pub use layout::{open, scan};

/// How a data set is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `images/{train,val,test}/` with `labels/…/NAME.txt` (`class cx cy w h`, normalised).
    Yolo,
    /// An instances JSON (`images`, `annotations`, `categories`) plus its image folder.
    Coco,
    /// Pascal VOC XML: `Annotations/*.xml` with `JPEGImages/`, or each XML beside its picture.
    Voc,
    /// `image_path,xmin,ymin,xmax,ymax,label` rows (keras-retinanet, DeepForest).
    Csv,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Yolo => "YOLO",
            Layout::Coco => "COCO",
            Layout::Voc => "Pascal VOC",
            Layout::Csv => "CSV",
        }
    }
}

/// One labelled object.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LabelledBox {
    /// `[x1, y1, x2, y2]` in pixels of the picture.
    pub bbox: [f32; 4],
    /// Index into [`DetectionDataset::classes`].
    pub class: usize,
    /// VOC's `difficult` flag: kept for training, marked so evaluation may ignore it.
    pub difficult: bool,
}

impl LabelledBox {
    /// An object that is not marked difficult.
    pub fn new(bbox: [f32; 4], class: usize) -> Self {
        Self {
            bbox,
            class,
            difficult: false,
        }
    }
}

/// One picture and its objects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<LabelledBox>,
    /// Whether the data set holds labels for it at all; a picture without any (no label file)
    /// is a picture with no objects, as Ultralytics treats it, and is counted in reports.
    pub labelled: bool,
}

/// Which part of a data set a picture belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// A labelled detection data set as read from disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionDataset {
    pub root: PathBuf,
    pub layout: Layout,
    pub classes: Vec<String>,
    pub train: Vec<LabelledImage>,
    pub val: Vec<LabelledImage>,
    pub test: Vec<LabelledImage>,
    /// Whether the data set names its splits; when it does not, every picture is in `train`
    /// and a caller splits off validation pictures itself (seeded, see [`Self::split_off_val`]).
    pub has_splits: bool,
}

/// Something wrong with a data set, where it is: the file and, for text formats, the line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number, when the file is text read line by line.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl DetectionDataset {
    pub fn split(&self, split: Split) -> &[LabelledImage] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// Every picture, with its split.
    pub fn images(&self) -> impl Iterator<Item = (Split, &LabelledImage)> {
        Split::ALL
            .into_iter()
            .flat_map(move |s| self.split(s).iter().map(move |i| (s, i)))
    }

    /// Moves a seeded `fraction` of the training pictures (at least one when there are two or
    /// more and `fraction > 0`) to validation, for data sets that name no splits. The same
    /// seed and pictures give the same split.
    pub fn split_off_val(&mut self, fraction: f64, seed: u64) {
        if fraction.is_nan() || fraction <= 0.0 || self.train.len() < 2 {
            return;
        }
        let n = self.train.len();
        let take = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
        let mut order: Vec<usize> = (0..n).collect();
        // A seeded Fisher-Yates over the indices: the order depends only on (seed, n).
        for i in (1..n).rev() {
            let j = (crate::seed::derive(&[seed, 0x5b1, i as u64]) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut is_val = vec![false; n];
        order[..take].iter().for_each(|&i| is_val[i] = true);
        let all = std::mem::take(&mut self.train);
        for (i, image) in all.into_iter().enumerate() {
            if is_val[i] {
                self.val.push(image);
            } else {
                self.train.push(image);
            }
        }
    }
}

/// Where a data set's problems are collected as they are found.
pub(crate) fn problem(file: &Path, line: Option<usize>, message: impl Into<String>) -> Problem {
    Problem {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}
