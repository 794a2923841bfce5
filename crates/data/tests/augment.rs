//! Invariants of the augmentation transforms, checked on random images.

use convnet_data::augment::{example_rng, flip_horizontal, rotate};
use convnet_data::pca::{rgb_covariance, symmetric_eigen};
use convnet_data::{
    Augment, ColourShift, Image, ImageSet, PcaColour, RandomCrop, RandomHorizontalFlip,
    RandomRotation, Transform,
};
use proptest::prelude::*;

fn image(max_c: usize, max_side: usize) -> impl Strategy<Value = Image> {
    (1..=max_c, 1..=max_side, 1..=max_side).prop_flat_map(|(c, h, w)| {
        prop::collection::vec(0.0f32..=1.0, c * h * w)
            .prop_map(move |data| Image::new(c, h, w, data).unwrap())
    })
}

fn sorted(values: &[f32]) -> Vec<f32> {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn flip_twice_is_identity_and_keeps_the_pixels(img in image(3, 9)) {
        let mut f = img.clone();
        flip_horizontal(&mut f);
        prop_assert_eq!(sorted(&f.data), sorted(&img.data));
        for c in 0..img.channels {
            for y in 0..img.height {
                for x in 0..img.width {
                    prop_assert_eq!(f.at(c, y, x), img.at(c, y, img.width - 1 - x));
                }
            }
        }
        flip_horizontal(&mut f);
        prop_assert_eq!(f, img);
    }

    #[test]
    fn crop_without_padding_is_identity(img in image(3, 9), seed in any::<u64>()) {
        let mut out = img.clone();
        RandomCrop { padding: 0 }.apply(&mut out, &mut example_rng(seed, 0, 0));
        prop_assert_eq!(out, img);
    }

    #[test]
    fn crop_is_one_shifted_window(img in image(2, 8), padding in 1usize..4, seed in any::<u64>()) {
        // Strictly positive pixels, so a zero in the output can only be padding.
        let img = Image { data: img.data.iter().map(|v| v * 0.5 + 0.5).collect(), ..img };
        let mut out = img.clone();
        RandomCrop { padding }.apply(&mut out, &mut example_rng(seed, 0, 0));
        prop_assert_eq!(out.shape(), img.shape());
        let p = padding as isize;
        let fits = |dy: isize, dx: isize| {
            (0..img.channels).all(|c| (0..img.height).all(|y| (0..img.width).all(|x| {
                let (sy, sx) = (y as isize + dy, x as isize + dx);
                let inside = (0..img.height as isize).contains(&sy) && (0..img.width as isize).contains(&sx);
                let want = if inside { img.at(c, sy as usize, sx as usize) } else { 0.0 };
                out.at(c, y, x) == want
            })))
        };
        let found = (-p..=p).any(|dy| (-p..=p).any(|dx| fits(dy, dx)));
        prop_assert!(found, "no shift within ±{} explains the crop", padding);
    }

    #[test]
    fn rotation_by_zero_is_identity_and_shape_is_kept(img in image(3, 9), max in 0.0f32..45.0, seed in any::<u64>()) {
        prop_assert_eq!(rotate(&img, 0.0), img.clone());
        let mut none = img.clone();
        RandomRotation { max_degrees: 0.0 }.apply(&mut none, &mut example_rng(seed, 0, 0));
        prop_assert_eq!(&none, &img);
        let mut out = img.clone();
        RandomRotation { max_degrees: max }.apply(&mut out, &mut example_rng(seed, 0, 0));
        prop_assert_eq!(out.shape(), img.shape());
        prop_assert!(out.data.iter().all(|v| (-1e-6..=1.0 + 1e-6).contains(v)));
    }

    #[test]
    fn colour_shift_adds_one_constant_per_channel(img in image(3, 6), seed in any::<u64>()) {
        // Values away from 0 and 1, so clamping cannot hide the offset.
        let img = Image { data: img.data.iter().map(|v| 0.3 + 0.4 * v).collect(), ..img };
        let mut out = img.clone();
        ColourShift { max_offset: 0.2 }.apply(&mut out, &mut example_rng(seed, 0, 0));
        let plane = img.height * img.width;
        for c in 0..img.channels {
            let d0 = out.data[c * plane] - img.data[c * plane];
            prop_assert!(d0.abs() <= 0.2 + 1e-6);
            for i in c * plane..(c + 1) * plane {
                prop_assert!((out.data[i] - img.data[i] - d0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn pca_offset_is_the_same_for_every_pixel(img in image(1, 6), seed in any::<u64>()) {
        let rgb = Image::new(3, img.height, img.width,
            img.data.iter().flat_map(|&v| [0.3 + 0.4 * v; 3]).collect()).unwrap();
        let pca = fitted_pca().with_sigma(0.5);
        let mut out = rgb.clone();
        pca.apply(&mut out, &mut example_rng(seed, 0, 0));
        let plane = rgb.height * rgb.width;
        for c in 0..3 {
            let d0 = out.data[c * plane] - rgb.data[c * plane];
            for i in c * plane..(c + 1) * plane {
                prop_assert!((out.data[i] - rgb.data[i] - d0).abs() < 1e-5);
            }
        }
    }
}

/// Red and green vary together, blue on its own and less: principal components are known.
fn synthetic_rgb_set() -> ImageSet {
    let mut images = Vec::new();
    let n = 64;
    for i in 0..n {
        let a = (i * 37 % 256) as u8;
        let b = (i * 91 % 128) as u8;
        images.extend([a; 4]); // red
        images.extend([a; 4]); // green = red
        images.extend([b; 4]); // blue
    }
    ImageSet::new(images, vec![0; n], [3, 2, 2], vec!["x".into()]).unwrap()
}

fn fitted_pca() -> PcaColour {
    PcaColour::fit(&synthetic_rgb_set()).unwrap()
}

#[test]
fn pca_fit_finds_orthonormal_eigenvectors_of_the_covariance() {
    let set = synthetic_rgb_set();
    let cov = rgb_covariance(&set).unwrap();
    let pca = PcaColour::fit(&set).unwrap();
    let col = |i: usize| [0, 1, 2].map(|r| f64::from(pca.eigenvectors[r][i]));
    for i in 0..3 {
        let v = col(i);
        for r in 0..3 {
            let av: f64 = (0..3).map(|k| cov[r][k] * v[k]).sum();
            assert!((av - f64::from(pca.eigenvalues[i]) * v[r]).abs() < 1e-6);
        }
        for j in 0..3 {
            let dot: f64 = (0..3).map(|k| v[k] * col(j)[k]).sum();
            assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-6);
        }
    }
    // Red = green, so one direction, (1, -1, 0) / sqrt 2, has no variance at all, and the
    // largest component lies in the red-green plane: red and green weigh the same in it.
    assert!(pca.eigenvalues[2].abs() < 1e-6, "{pca:?}");
    let top = col(0);
    assert!((top[0] - top[1]).abs() < 1e-6, "{pca:?}");
    let flat = col(2);
    assert!(
        (flat[0] + flat[1]).abs() < 1e-6 && flat[2].abs() < 1e-6,
        "{pca:?}"
    );
    let e = symmetric_eigen(cov);
    assert!((e.values[0] - f64::from(pca.eigenvalues[0])).abs() < 1e-6);
}

#[test]
fn pca_offset_follows_the_eigenvectors() {
    let pca = PcaColour {
        eigenvalues: [2.0, 1.0, 0.5],
        eigenvectors: [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
        sigma: 0.1,
    };
    // Σ αᵢ λᵢ pᵢ with p₀ = red, p₁ = blue, p₂ = green.
    assert_eq!(pca.offset([1.0, 2.0, 4.0]), [2.0, 2.0, 2.0]);
    assert_eq!(pca.offset([0.5, 0.0, 0.0]), [1.0, 0.0, 0.0]);
    assert_eq!(pca.offset([0.0, 0.0, 1.0]), [0.0, 0.5, 0.0]);
}

fn full_augment() -> Augment {
    Augment::none()
        .with(RandomHorizontalFlip::default())
        .with(RandomCrop { padding: 2 })
        .with(RandomRotation { max_degrees: 20.0 })
        .with(ColourShift { max_offset: 0.1 })
        .with(fitted_pca())
}

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let data: Vec<f32> = (0..3 * 8 * 8).map(|i| (i % 17) as f32 / 17.0).collect();
    let img = Image::new(3, 8, 8, data).unwrap();
    let augment = full_augment();
    let run = |seed, epoch, index| {
        let mut out = img.clone();
        augment.apply(&mut out, &mut example_rng(seed, epoch, index));
        out
    };
    assert_eq!(run(1, 0, 5), run(1, 0, 5));
    assert_ne!(run(1, 0, 5), run(2, 0, 5));
    assert_ne!(run(1, 0, 5), run(1, 1, 5));
    assert_ne!(run(1, 0, 5), run(1, 0, 6));
    assert_eq!(
        augment.describe().split(',').collect::<Vec<_>>(),
        ["flip=0.5", "crop=2", "rotate=20", "shift=0.1", "pca=0.1"]
    );
}

#[test]
fn parse_fits_pca_to_an_rgb_training_set() {
    let a = Augment::parse("pca=0.2,flip", &synthetic_rgb_set()).unwrap();
    assert_eq!(a.describe(), "pca=0.2,flip=0.5");
}
