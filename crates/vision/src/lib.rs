//! Vision ops for convnet: reading and writing images, hand-designed filters (vertical and
//! horizontal edges, Sobel, Scharr) run as convolutions, bounding boxes (formats, IoU,
//! non-max suppression), YOLO output decoding, boxes drawn on pictures, mean average precision
//! (VOC and COCO).
//!
//! Images enter as Burn tensors `[1, C, H, W]` of `f32` pixel values in `0..=255` (see
//! [`image_io`]); filters run through [`convnet_layers::Conv2d`], so `valid` / `same` padding
//! follows the same window rule as every layer of convnet.

pub mod anchors;
pub mod boxes;
pub mod chart;
pub mod coco;
pub mod draw;
pub mod filters;
pub mod image_io;
pub mod map;
pub mod yolo;

pub use boxes::{BBox, BoxError, CenterBox, Detection, nms_indices, nms_per_class, pairwise_iou};
pub use chart::{Panel, Series, confusion_png, line_chart_png};
pub use filters::{Kernel, KernelError, NamedKernel, apply};
pub use image_io::{ColorMode, Plane, ViewScale, load_grey, load_image, load_rgb, save_grey_png};

use std::path::PathBuf;

/// What can go wrong in a vision op. Every error about a file names the file.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("cannot read image {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// A picture convnet will not decode: truncated, or too large (the message says which).
    #[error("cannot read image {}: {problem}", path.display())]
    Refused { path: PathBuf, problem: String },
    #[error("cannot write image {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode image {}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("cannot write {}: only PNG output is supported (use a .png file name)", path.display())]
    OutputFormat { path: PathBuf },
    #[error("kernel file {}", path.display())]
    KernelFile {
        path: PathBuf,
        #[source]
        source: KernelError,
    },
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("filter: {0}")]
    Layer(#[from] convnet_layers::LayerErrorKind),
    #[error("filter: expected an image tensor [N, C, H, W] with at least one channel, got {0:?}")]
    Input(Vec<usize>),
    #[error("{0}")]
    Data(String),
}
