//! Faces: face-api.js's pretrained networks (weights from the npm package
//! `@vladmandic/face-api`, read as TF.js manifests), the pipeline detect → 68 landmarks →
//! align and crop → 128-D encoding, distances for verification (1:1) and recognition (1:K),
//! and a gallery of people's encodings in one SQLite file.
//!
//! The networks are hand-wired graphs (dense blocks whose outputs add up, residual blocks whose
//! shortcut is an average pool padded with zero channels), so they are written here as
//! inference modules over TF.js weights rather than as layer specs in the zoo.

pub mod align;
pub mod detector;
pub mod error;
pub mod gallery;
pub mod input;
pub mod landmarks;
pub mod pipeline;
pub mod recognition;
pub mod tf;
pub mod tiny_face;

pub use error::FaceError;
