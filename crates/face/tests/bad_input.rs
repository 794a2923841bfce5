//! Pictures a user may hand the face pipeline that are not clean 8-bit RGB photos of whole,
//! large faces: each gives faces or a one-line error, never a panic. Pictures are read by
//! convnet's one decoder (`convnet_vision::image_io::decode_image`) as the commands do, then
//! turned into 8-bit RGB.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::Device;
use convnet_face::FaceError;
use convnet_face::pipeline::{Face, FaceModels};
use convnet_face::tiny_face::{self, TINY_FACE_MANIFEST, TinyFaceOptions};
use image::{DynamicImage, ImageFormat, RgbImage};

mod common;
use common::face_api;

fn models() -> &'static FaceModels {
    static MODELS: OnceLock<FaceModels> = OnceLock::new();
    MODELS.get_or_init(|| FaceModels::load(&face_api("model"), &Device::flex()).unwrap())
}

/// sample1.jpg (three faces) at `width` pixels wide.
fn sample1(width: u32) -> RgbImage {
    let full = convnet_vision::image_io::decode_image(&face_api("demo/sample1.jpg"))
        .unwrap()
        .to_rgb8();
    let height = full.height() * width / full.width();
    image::imageops::resize(&full, width, height, image::imageops::FilterType::Triangle)
}

/// `bytes` written to a temporary file and decoded as the commands decode pictures.
fn decode(bytes: &[u8], name: &str) -> Result<DynamicImage, convnet_vision::VisionError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    convnet_vision::image_io::decode_image(&path)
}

fn encoded(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// Every face is whole: 68 finite landmarks, a chip of at least a pixel, a finite encoding.
fn check(faces: &[Face]) {
    for face in faces {
        assert_eq!(face.landmarks.len(), 68);
        assert!(face.landmarks.iter().flatten().all(|v| v.is_finite()));
        assert!(face.aligned.width() >= 1.0 && face.aligned.height() >= 1.0);
        assert!(face.encoding.as_slice().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn faces_too_small_for_the_landmark_net_give_faces_or_nothing() {
    // 1920 → 240 … 2 pixels wide: faces of 22 pixels down to less than one, crops far below the landmark
    // net's 112 (upsampled, as face-api does); the smallest pictures hold no face.
    for width in [240, 120, 48, 8, 2] {
        let faces = models().faces(&sample1(width)).unwrap();
        println!("{width} px wide: {} faces", faces.len());
        check(&faces);
    }
    // The landmark net alone on crops of one pixel and of one row.
    for (w, h) in [(1, 1), (1, 40), (40, 1)] {
        let crop = RgbImage::from_pixel(w, h, image::Rgb([120, 90, 80]));
        let lm = models().landmarks.detect(&crop).unwrap();
        assert!(lm.points.iter().flatten().all(|v| v.is_finite()));
    }
    // An empty crop or picture is an error, in one line.
    let err = models().landmarks.detect(&RgbImage::new(0, 5)).unwrap_err();
    assert!(matches!(err, FaceError::Input(_)) && !err.to_string().contains('\n'));
    let err = models().faces(&RgbImage::new(0, 0)).unwrap_err();
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn faces_cut_by_the_border_give_faces() {
    // Cuts of sample1 through its faces (at 960 pixels wide they span x 207–296, 419–512 and
    // 738–839, y 100–324): one through a face on each side.
    let picture = sample1(960);
    let (w, h) = picture.dimensions();
    for (x, y, cw, ch) in [
        (460, 0, w - 460, h), // the left edge through the middle face
        (0, 250, w, h - 250), // the top edge through the two left faces
        (0, 0, 250, h),       // the right edge through the left face
        (0, 0, w, 160),       // the bottom edge through the right face
    ] {
        let cut = image::imageops::crop_imm(&picture, x, y, cw, ch).to_image();
        let faces = models().faces(&cut).unwrap();
        println!("cut at ({x}, {y}) {cw}x{ch}: {} faces", faces.len());
        check(&faces);
        for face in &faces {
            // Detections stay inside the picture; the chip starts inside it.
            assert!(face.bbox.x1 >= 0.0 && face.bbox.y1 >= 0.0);
            assert!(face.bbox.x2 <= cw as f32 && face.bbox.y2 <= ch as f32);
            assert!(face.aligned.x1 < cw as f32 && face.aligned.y1 < ch as f32);
        }
    }
}

#[test]
fn grey_cmyk_and_16_bit_pictures_are_read_as_rgb() {
    let colour = DynamicImage::ImageRgb8(sample1(480));
    let found = models().faces(colour.as_rgb8().unwrap()).unwrap();
    assert_eq!(found.len(), 3);
    // A grey JPEG: one channel, read as three equal ones.
    let grey = decode(&encoded(&colour.grayscale(), ImageFormat::Jpeg), "grey.jpg").unwrap();
    assert_eq!(grey.color(), image::ColorType::L8);
    let faces = models().faces(&grey.to_rgb8()).unwrap();
    println!("grey JPEG: {} faces", faces.len());
    check(&faces);
    assert!(!faces.is_empty());
    // A CMYK JPEG (Pillow's, with Adobe's inverted CMYK): converted to RGB by the decoder.
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/face/bad-input/cmyk.jpg");
    let cmyk = convnet_vision::image_io::decode_image(&path).unwrap();
    let faces = models().faces(&cmyk.to_rgb8()).unwrap();
    println!("CMYK JPEG: {} faces", faces.len());
    check(&faces);
    assert!(!faces.is_empty());
    // A 16-bit PNG: scaled to 8 bits (the high byte, rounded), the same faces as 8-bit.
    let deep = DynamicImage::ImageRgb16(colour.to_rgb16());
    let deep = decode(&encoded(&deep, ImageFormat::Png), "deep.png").unwrap();
    assert_eq!(deep.color(), image::ColorType::Rgb16);
    let rgb = deep.to_rgb8();
    assert_eq!(rgb.as_raw(), colour.as_rgb8().unwrap().as_raw());
    let faces = models().faces(&rgb).unwrap();
    assert_eq!(faces.len(), found.len());
}

/// `jpeg` with an EXIF block (APP1) right after its start marker, whose only entry is
/// `Orientation = orientation` (6: the stored pixels are to be turned 90° clockwise).
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend(1u16.to_le_bytes()); // one entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes()); // one value
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_not_applied() {
    // A camera's portrait photo: pixels stored sideways, EXIF saying "turn 90° clockwise".
    // convnet reads the pixels as stored (face-api.js in a browser turns them first), so the
    // faces lie on their side: found or not, never a panic.
    let upright = sample1(480);
    let sideways = image::imageops::rotate270(&upright);
    let jpeg = with_exif_orientation(
        &encoded(
            &DynamicImage::ImageRgb8(sideways.clone()),
            ImageFormat::Jpeg,
        ),
        6,
    );
    let read = decode(&jpeg, "portrait.jpg").unwrap().to_rgb8();
    assert_eq!(
        read.dimensions(),
        sideways.dimensions(),
        "orientation applied"
    );
    let faces = models().faces(&read).unwrap();
    println!("stored sideways, EXIF orientation 6: {} faces", faces.len());
    check(&faces);
    // Turned upright by hand, the faces are there.
    let turned = image::imageops::rotate90(&read);
    assert_eq!(models().faces(&turned).unwrap().len(), 3);
}

#[test]
fn the_tiny_face_detector_takes_any_picture_size() {
    let device = Device::flex();
    let model = tiny_face::load_model(
        &face_api(&format!("model/{TINY_FACE_MANIFEST}")),
        416,
        &device,
    )
    .unwrap();
    let options = TinyFaceOptions::default();
    for (w, h) in [(1, 1), (1, 300), (300, 1), (5000, 3)] {
        let picture = RgbImage::from_pixel(w, h, image::Rgb([200, 170, 150]));
        let found = tiny_face::detect(&model, 416, &picture, &options, &device).unwrap();
        assert!(found.iter().all(|f| f.score.is_finite()));
    }
    let err = tiny_face::detect(&model, 416, &RgbImage::new(0, 3), &options, &device).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = tiny_face::detect(&model, 400, &sample1(64), &options, &device).unwrap_err();
    assert!(err.to_string().contains("multiple of 32"), "{err}");
}
