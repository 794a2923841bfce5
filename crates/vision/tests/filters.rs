//! Hand-designed filters on images: the course's worked example, edges, image files, errors.

use burn::tensor::{Device, Tensor, TensorData};
use convnet_layers::Padding;
use convnet_vision::{
    ColorMode, Kernel, NamedKernel, Plane, VisionError, apply, load_grey, load_image, save_grey_png,
};

fn image(rows: &[Vec<f32>], device: &Device) -> Tensor<4> {
    let (h, w) = (rows.len(), rows[0].len());
    Tensor::from_data(TensorData::new(rows.concat(), [1, 1, h, w]), device)
}

fn plane(t: Tensor<4>) -> Plane {
    let [n, c, h, w] = t.dims();
    assert_eq!((n, c), (1, 1));
    Plane::from_tensor(t.reshape([h, w])).unwrap()
}

/// A `h x w` image: `left` in the first `split` columns, `right` in the rest.
fn step(h: usize, w: usize, split: usize, left: f32, right: f32) -> Vec<Vec<f32>> {
    (0..h)
        .map(|_| {
            (0..w)
                .map(|x| if x < split { left } else { right })
                .collect()
        })
        .collect()
}

#[test]
fn course_example_vertical_edge_6x6_gives_4x4_with_30s_in_the_middle() {
    // 10 10 10 0 0 0 (six rows)  *  [[1,0,-1],[1,0,-1],[1,0,-1]]  =  0 30 30 0 (four rows)
    let device = Device::flex();
    let x = image(&step(6, 6, 3, 10.0, 0.0), &device);
    let y = plane(apply(x, &NamedKernel::Vertical.kernel(), Padding::Valid).unwrap());
    assert_eq!((y.height, y.width), (4, 4));
    let row = [0.0, 30.0, 30.0, 0.0];
    let expected: Vec<f32> = (0..4).flat_map(|_| row).collect();
    assert_eq!(y.values, expected);
}

#[test]
fn course_example_dark_to_light_gives_minus_30() {
    // The same edge the other way round: the response changes sign.
    let device = Device::flex();
    let x = image(&step(6, 6, 3, 0.0, 10.0), &device);
    let y = plane(apply(x, &NamedKernel::Vertical.kernel(), Padding::Valid).unwrap());
    assert_eq!(&y.values[..4], &[0.0, -30.0, -30.0, 0.0]);
}

#[test]
fn sobel_x_response_of_a_vertical_step_peaks_at_the_edge() {
    let device = Device::flex();
    let (h, w, split) = (9, 12, 5);
    let x = image(&step(h, w, split, 200.0, 20.0), &device);
    let y = plane(apply(x, &NamedKernel::SobelX.kernel(), Padding::Valid).unwrap());
    assert_eq!((y.height, y.width), (h - 2, w - 2));
    for r in 0..y.height {
        let row = &y.values[r * y.width..(r + 1) * y.width];
        let peak = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        // Output column j sees input columns j..j+3: the windows holding the step are j = split-2
        // and split-1, each (1 + 2 + 1) * (200 - 20) = 720; flat areas give 0.
        assert_eq!(*peak.1, 720.0, "row {r}: {row:?}");
        assert!(
            peak.0 == split - 2 || peak.0 == split - 1,
            "row {r}: {row:?}"
        );
        for (j, &v) in row.iter().enumerate() {
            if j + 2 < split || j >= split {
                assert_eq!(v, 0.0, "row {r} column {j}");
            }
        }
    }
    // The horizontal Sobel sees no edge at all.
    let x = image(&step(h, w, split, 200.0, 20.0), &device);
    let y = plane(apply(x, &NamedKernel::SobelY.kernel(), Padding::Valid).unwrap());
    assert!(y.values.iter().all(|&v| v == 0.0));
}

#[test]
fn same_padding_keeps_the_size_and_pads_with_zeros() {
    let device = Device::flex();
    let x = image(&step(6, 6, 3, 10.0, 0.0), &device);
    let y = plane(apply(x, &NamedKernel::Vertical.kernel(), Padding::Same).unwrap());
    assert_eq!((y.height, y.width), (6, 6));
    // Inside, the valid result; at the left border the zero padding looks like an edge.
    assert_eq!(&y.values[6..12], &[-30.0, 0.0, 30.0, 30.0, 0.0, 0.0]);
}

#[test]
fn every_channel_is_filtered_on_its_own() {
    let device = Device::flex();
    let a = step(5, 5, 2, 10.0, 0.0).concat();
    let b = step(5, 5, 2, 0.0, 1.0).concat();
    let x = Tensor::<4>::from_data(TensorData::new([a, b].concat(), [1, 2, 5, 5]), &device);
    let y = apply(x, &NamedKernel::Vertical.kernel(), Padding::Valid).unwrap();
    assert_eq!(y.dims(), [1, 2, 3, 3]);
    let v = y.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(&v[..3], &[30.0, 30.0, 0.0]);
    assert_eq!(&v[9..12], &[-3.0, -3.0, 0.0]);
}

#[test]
fn a_kernel_larger_than_the_image_is_an_error() {
    let device = Device::flex();
    let x = image(&step(2, 2, 1, 1.0, 0.0), &device);
    let err = apply(x, &NamedKernel::SobelX.kernel(), Padding::Valid).unwrap_err();
    assert!(
        err.to_string()
            .contains("the 3x3 kernel is larger than the 2x2 image"),
        "{err}"
    );
}

#[test]
fn png_round_trip_and_filter_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("step.png");
    let levels: Vec<u8> = step(6, 8, 4, 10.0, 0.0)
        .concat()
        .into_iter()
        .map(|v| v as u8)
        .collect();
    convnet_vision::image_io::write_png(&path, 6, 8, &levels).unwrap();

    let device = Device::flex();
    let x = load_grey(&path, &device).unwrap();
    assert_eq!(x.dims(), [1, 1, 6, 8]);
    let rgb = load_image(&path, ColorMode::Rgb, &device).unwrap();
    assert_eq!(rgb.dims(), [1, 3, 6, 8]);
    let y = plane(apply(x, &NamedKernel::Vertical.kernel(), Padding::Valid).unwrap());
    assert_eq!(&y.values[..6], &[0.0, 0.0, 30.0, 30.0, 0.0, 0.0]);

    let out = dir.path().join("edges.png");
    let scale = save_grey_png(&out, &y).unwrap();
    assert_eq!((scale.min, scale.max), (0.0, 30.0));
    let back = load_grey(&out, &device).unwrap();
    assert_eq!(back.dims(), [1, 1, 4, 6]);
    let back = back.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(&back[..6], &[0.0, 0.0, 255.0, 255.0, 0.0, 0.0]);
    // Only the image is left in the folder: no temporary files.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_corrupt_png_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.png");
    // A PNG signature followed by garbage.
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(b"this is not a PNG chunk at all");
    std::fs::write(&path, bytes).unwrap();
    let err = load_grey(&path, &Device::flex()).unwrap_err();
    assert!(matches!(err, VisionError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.png"), "{err}");

    // Not an image at all, and a file that is not there.
    std::fs::write(dir.path().join("text.png"), "hello").unwrap();
    let err = load_grey(&dir.path().join("text.png"), &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("text.png"), "{err}");
    let err = load_grey(&dir.path().join("missing.png"), &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("missing.png"), "{err}");
}

#[test]
fn an_invalid_kernel_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, says) in [
        ("ragged.json", "[[1, 0, -1], [1, 0]]", "not rectangular"),
        ("empty.json", "[]", "empty"),
        ("flat.json", "[1, 0, -1]", "2D array"),
        ("words.json", "[[1, \"x\"]]", "2D array"),
        ("huge.json", "[[1e39]]", "finite"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = Kernel::parse(path.to_str().unwrap()).unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(msg.contains(name) && msg.contains(says), "{name}: {msg}");
    }
    let ok = dir.path().join("ok.json");
    std::fs::write(&ok, "[[0, 1], [-1, 0]]").unwrap();
    let k = Kernel::parse(ok.to_str().unwrap()).unwrap();
    assert_eq!((k.rows, k.cols, k.name.as_str()), (2, 2, "ok"));
    assert!(Kernel::parse(dir.path().join("nope.json").to_str().unwrap()).is_err());
    assert!(Kernel::parse("laplace").is_err());
    assert_eq!(
        Kernel::parse("Sobel-X").unwrap(),
        NamedKernel::SobelX.kernel()
    );
}
