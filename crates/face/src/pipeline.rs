//! The face pipeline, as face-api.js runs it: detect (SSD-MobileNetV1) → 68 landmarks in each
//! detected box → the aligned box around the landmarks → a 128-D encoding of that crop.
//! Two faces are the same person when their encodings lie closer than a threshold
//! (0.6, dlib's and face-api's choice for this encoder).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use convnet_vision::BBox;
use image::RgbImage;
use serde::Serialize;

use crate::FaceError;
use crate::align::{chip_box, crop};
use crate::detector::{SsdMobilenetV1, SsdOptions};
use crate::landmarks::{FaceLandmark68Net, to_pixels_f64};
use crate::recognition::{Encoding, FaceRecognitionNet};

/// The distance under which two encodings are taken for the same person.
pub const DEFAULT_THRESHOLD: f32 = 0.6;

/// The manifests of face-api's `model/` folder that the pipeline reads.
pub const DETECTOR_MANIFEST: &str = "ssd_mobilenetv1_model-weights_manifest.json";
pub const LANDMARKS_MANIFEST: &str = "face_landmark_68_model-weights_manifest.json";
pub const RECOGNITION_MANIFEST: &str = "face_recognition_model-weights_manifest.json";

/// One face found in a picture, in the picture's pixels.
#[derive(Debug, Clone, Serialize)]
pub struct Face {
    /// The detector's box and score.
    pub bbox: BBox,
    pub score: f32,
    /// The 68 landmarks (x, y), in the iBUG 300-W order (jaw, brows, nose, eyes, mouth).
    pub landmarks: Vec<[f32; 2]>,
    /// The square box the encoder read, placed by the eyes and mouth (may reach past the
    /// right and bottom borders; the crop stops there).
    pub aligned: BBox,
    pub encoding: Encoding,
}

impl Face {
    pub fn area(&self) -> f32 {
        self.bbox.area()
    }
}

/// The three networks of the pipeline.
pub struct FaceModels {
    pub detector: SsdMobilenetV1,
    pub landmarks: FaceLandmark68Net,
    pub recognition: FaceRecognitionNet,
    pub options: SsdOptions,
}

impl FaceModels {
    /// Loads the networks from face-api's `model/` folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, FaceError> {
        let manifest = |name: &str| -> Result<PathBuf, FaceError> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(FaceError::Input(format!(
                    "{} is missing: face-api's models are fetched by scripts/fetch-pretrained.sh face-api",
                    path.display()
                )))
            }
        };
        Ok(Self {
            detector: SsdMobilenetV1::load(&manifest(DETECTOR_MANIFEST)?, device)?,
            landmarks: FaceLandmark68Net::load(&manifest(LANDMARKS_MANIFEST)?, device)?,
            recognition: FaceRecognitionNet::load(&manifest(RECOGNITION_MANIFEST)?, device)?,
            options: SsdOptions::default(),
        })
    }

    /// Every face in `image`, best detection first, as face-api's
    /// `detectAllFaces(..).withFaceLandmarks().withFaceDescriptors()` computes them on the same
    /// pixels:
    ///
    /// 1. each detection box is clipped to the picture and rounded down (`clipAtImageBorders`)
    ///    and that crop goes through the landmark network;
    /// 2. the landmarks, fractions of the crop, are scaled by the crop's size and shifted by
    ///    the detection box's *unrounded* corner (face-api's `shiftBy(box.x, box.y)`: the points
    ///    land up to a pixel from where the crop really starts, and the chip is placed by
    ///    them, so this is kept to give face-api's chips and encodings);
    /// 3. the dlib-style chip ([`chip_box`]) around the eyes and mouth is cut out (clipped and
    ///    rounded down the same way) and encoded.
    ///
    /// A face whose box leaves no whole pixel in the picture, or whose landmarks give no chip,
    /// is left out.
    pub fn faces(&self, image: &RgbImage) -> Result<Vec<Face>, FaceError> {
        let found = self.detector.detect(image, &self.options)?;
        // The detected boxes' crops go through the landmark network as one batch.
        let boxed: Vec<_> = found
            .into_iter()
            .filter_map(|det| crop(image, &det.bbox).map(|(face, _)| (det, face)))
            .collect();
        let faces: Vec<RgbImage> = boxed.iter().map(|(_, face)| face.clone()).collect();
        let all_landmarks = self.landmarks.relative_batch(&faces)?;
        let mut located = Vec::new();
        let mut crops = Vec::new();
        for ((det, face), relative) in boxed.into_iter().zip(all_landmarks) {
            let shift = [f64::from(det.bbox.x1), f64::from(det.bbox.y1)];
            let points = to_pixels_f64(&relative, face.width(), face.height(), shift);
            let Some(aligned) = chip_box(&points, face.dimensions()) else {
                continue;
            };
            let Some((chip, _)) = crop(image, &aligned) else {
                continue;
            };
            crops.push(chip);
            let landmarks = points.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
            located.push((det, landmarks, aligned));
        }
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.recognition.encode(&crops)?;
        Ok(located
            .into_iter()
            .zip(encodings)
            .map(|((det, landmarks, aligned), encoding)| Face {
                bbox: det.bbox,
                score: det.score,
                landmarks,
                aligned,
                encoding,
            })
            .collect())
    }
}

/// The face with the largest box (the subject of a portrait).
pub fn largest(faces: &[Face]) -> Option<&Face> {
    faces.iter().max_by(|a, b| a.area().total_cmp(&b.area()))
}
