//! The loader's promises: every example once per epoch, a reproducible order, normalised and
//! reproducibly augmented batches, a clean stop when dropped early, and batches of signals and
//! volumes as well as images.

use std::sync::Arc;

use burn::tensor::Device;
use convnet_data::{
    Augment, ColourShift, Examples, ImageSet, Loader, LoaderConfig, Normalization, RandomCrop,
    RandomHorizontalFlip, TensorSet, synthetic,
};
use convnet_layers::Features;

/// `n` 1x2x2 images; image `i` has every pixel `i % 256` and label `i % 3`.
fn set(n: usize) -> Arc<ImageSet> {
    let images = (0..n).flat_map(|i| [(i % 256) as u8; 4]).collect();
    let labels = (0..n).map(|i| i % 3).collect();
    let classes = vec!["a".into(), "b".into(), "c".into()];
    Arc::new(ImageSet::new(images, labels, [1, 2, 2], classes).unwrap())
}

fn config(batch_size: usize) -> LoaderConfig {
    LoaderConfig::new(batch_size, Normalization::identity(1))
}

fn order(loader: Loader) -> Vec<usize> {
    loader.flat_map(|b| b.indices).collect()
}

#[test]
fn every_example_once_per_epoch() {
    let loader = Loader::new(set(103), config(10)).unwrap();
    assert_eq!(loader.num_batches(), 11);
    let mut seen = order(loader);
    assert_ne!(seen, (0..103).collect::<Vec<_>>(), "not shuffled");
    seen.sort_unstable();
    assert_eq!(seen, (0..103).collect::<Vec<_>>());
}

#[test]
fn order_depends_on_seed_and_epoch_only() {
    let run = |seed, epoch, prefetch| {
        let c = LoaderConfig {
            seed,
            epoch,
            prefetch,
            ..config(7)
        };
        order(Loader::new(set(50), c).unwrap())
    };
    assert_eq!(run(3, 1, 4), run(3, 1, 0));
    assert_ne!(run(3, 1, 4), run(3, 2, 4));
    assert_ne!(run(3, 1, 4), run(4, 1, 4));
}

#[test]
fn without_shuffle_the_order_is_the_set_order() {
    let c = LoaderConfig {
        shuffle: false,
        ..config(4)
    };
    assert_eq!(
        order(Loader::new(set(10), c).unwrap()),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn last_partial_batch_is_kept_or_dropped() {
    let sizes = |drop_last| {
        let c = LoaderConfig {
            drop_last,
            ..config(4)
        };
        let loader = Loader::new(set(10), c).unwrap();
        let n = loader.num_batches();
        let sizes: Vec<usize> = loader.map(|b| b.len()).collect();
        assert_eq!(sizes.len(), n);
        sizes
    };
    assert_eq!(sizes(false), vec![4, 4, 2]);
    assert_eq!(sizes(true), vec![4, 4]);
    let c = LoaderConfig {
        drop_last: true,
        ..config(20)
    };
    assert_eq!(Loader::new(set(10), c).unwrap().count(), 0);
    assert_eq!(Loader::new(set(0), config(3)).unwrap().count(), 0);
}

#[test]
fn batches_are_normalised_and_labelled() {
    let norm = Normalization {
        mean: vec![0.5],
        std: vec![0.25],
    };
    let c = LoaderConfig {
        shuffle: false,
        ..LoaderConfig::new(3, norm)
    };
    let batch = Loader::new(set(300), c).unwrap().nth(85).unwrap();
    assert_eq!(batch.shape, [3, 1, 2, 2]);
    assert_eq!(batch.example_shape(), &[1, 2, 2]);
    assert_eq!(batch.indices, vec![255, 256, 257]);
    assert_eq!(batch.labels, vec![0, 1, 2]);
    // Pixel 255 -> (1 - 0.5) / 0.25 = 2; pixel 0 -> -2; pixel 1 -> (1/255 - 0.5) / 0.25.
    assert!(batch.images[..4].iter().all(|v| (v - 2.0).abs() < 1e-6));
    assert!(batch.images[4..8].iter().all(|v| (v + 2.0).abs() < 1e-6));
    assert!((batch.images[8] - (1.0 / 255.0 - 0.5) / 0.25).abs() < 1e-6);
}

#[test]
fn augmented_batches_repeat_for_a_seed() {
    let augment = Arc::new(
        Augment::none()
            .with(RandomHorizontalFlip::default())
            .with(RandomCrop { padding: 1 })
            .with(ColourShift { max_offset: 0.2 }),
    );
    let run = |epoch, prefetch| {
        let c = LoaderConfig {
            epoch,
            prefetch,
            augment: Some(Arc::clone(&augment)),
            ..config(8)
        };
        Loader::new(set(40), c).unwrap().collect::<Vec<_>>()
    };
    assert_eq!(run(0, 4), run(0, 0));
    let (a, b) = (run(0, 2), run(1, 2));
    assert_ne!(a, b);
    // Same example in two epochs: augmented differently.
    let find = |batches: &[convnet_data::Batch], i| {
        batches.iter().find_map(|bt| {
            let k = bt.indices.iter().position(|&j| j == i)?;
            Some(bt.images[k * 4..k * 4 + 4].to_vec())
        })
    };
    assert_ne!(find(&a, 17), find(&b, 17));
}

#[test]
fn dropping_mid_epoch_returns() {
    let c = LoaderConfig {
        prefetch: 1,
        ..config(1)
    };
    let mut loader = Loader::new(set(10_000), c).unwrap();
    assert!(loader.next().is_some());
    drop(loader);
    // Dropped before the first batch, and never started.
    drop(Loader::new(set(10), config(2)).unwrap());
}

#[test]
fn bad_configs_are_errors() {
    let msg = Loader::new(set(4), config(0)).unwrap_err().to_string();
    assert!(msg.contains("batch size"), "{msg}");
    let c = LoaderConfig::new(2, Normalization::identity(3));
    let msg = Loader::new(set(4), c).unwrap_err().to_string();
    assert!(msg.contains("1-channel"), "{msg}");
}

#[test]
fn batches_become_tensors() {
    let device = Device::flex();
    let c = LoaderConfig {
        shuffle: false,
        ..config(3)
    };
    let batch = Loader::new(set(5), c).unwrap().next().unwrap();
    let images = batch.to_tensor(&device);
    assert_eq!(images.dims(), [3, 1, 2, 2]);
    let values = images.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(values, batch.images);
    let labels = batch.labels_tensor(&device);
    assert_eq!(labels.dims(), [3]);
    let labels = labels
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(labels, vec![0, 1, 2]);
}

/// `n` signals `[2, 3]`: example `i` holds `i` in channel 0 and `-i` in channel 1.
fn signals(n: usize) -> Arc<TensorSet> {
    let data = (0..n)
        .flat_map(|i| {
            let v = i as f32;
            [v, v, v, -v, -v, -v]
        })
        .collect();
    let labels = (0..n).map(|i| i % 2).collect();
    Arc::new(TensorSet::new(data, labels, vec![2, 3], vec!["a".into(), "b".into()]).unwrap())
}

#[test]
fn signal_batches_are_normalised_without_the_pixel_scale() {
    let set = signals(10);
    let norm = set.normalization();
    assert_eq!(norm.mean, vec![4.5, -4.5]);
    let c = LoaderConfig {
        shuffle: false,
        ..LoaderConfig::new(4, norm.clone())
    };
    let batches: Vec<_> = Loader::new(Arc::clone(&set), c).unwrap().collect();
    assert_eq!(batches.len(), 3);
    let b = &batches[1];
    assert_eq!(b.shape, vec![4, 2, 3]);
    assert_eq!(b.example_shape(), &[2, 3]);
    assert_eq!(b.labels, vec![0, 1, 0, 1]);
    let std = norm.std[0];
    // Example 4: channel 0 is 4 -> (4 - 4.5) / std, channel 1 is -4 -> (-4 + 4.5) / std.
    assert!((b.images[0] - (-0.5 / std)).abs() < 1e-6, "{:?}", b.images);
    assert!((b.images[3] - (0.5 / std)).abs() < 1e-6, "{:?}", b.images);
    assert_eq!(batches[2].shape, vec![2, 2, 3]);
}

#[test]
fn batches_become_features_of_their_rank() {
    let device = Device::flex();
    let first = |set: Arc<dyn Examples>| {
        let norm = Normalization::identity(set.channels());
        Loader::new(set, LoaderConfig::new(3, norm))
            .unwrap()
            .next()
            .unwrap()
    };
    let b = first(signals(5));
    match b.to_features(&device) {
        Features::Map1d(t) => assert_eq!(t.dims(), [3, 2, 3]),
        other => panic!("{other:?}"),
    }
    let volumes = synthetic::shapes_set(4, 8, 0).unwrap();
    match first(Arc::new(volumes)).to_features(&device) {
        Features::Map3d(t) => {
            assert_eq!(t.dims(), [3, 1, 8, 8, 8]);
            let values = t.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(values.len(), 3 * 512);
        }
        other => panic!("{other:?}"),
    }
    let ecg = synthetic::ecg_set(4, 750, 0).unwrap();
    assert!(matches!(
        first(Arc::new(ecg)).to_features(&device),
        Features::Map1d(_)
    ));
    let image_batch = first(set(4));
    match image_batch.to_features(&device) {
        Features::Map2d(t) => assert_eq!(t.dims(), [3, 1, 2, 2]),
        other => panic!("{other:?}"),
    }
    assert_eq!(image_batch.to_tensor(&device).dims(), [3, 1, 2, 2]);
}

#[test]
fn image_augmentations_are_refused_for_signals() {
    let set = signals(4);
    let c = LoaderConfig {
        augment: Some(Arc::new(
            Augment::none().with(RandomHorizontalFlip::default()),
        )),
        ..LoaderConfig::new(2, set.normalization())
    };
    let msg = Loader::new(Arc::clone(&set), c).unwrap_err().to_string();
    assert!(
        msg.contains("augmentation \"flip=0.5\" applies to images"),
        "{msg}"
    );
    // An empty augmentation is no augmentation.
    let c = LoaderConfig {
        augment: Some(Arc::new(Augment::none())),
        ..LoaderConfig::new(2, set.normalization())
    };
    assert_eq!(Loader::new(set, c).unwrap().count(), 2);
}

#[test]
fn a_tensor_set_edited_into_nonsense_is_refused() {
    let mut set = (*signals(3)).clone();
    set.data[4] = f32::NAN;
    let msg = Loader::new(
        Arc::new(set),
        LoaderConfig::new(2, Normalization::identity(2)),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("example 0 holds NaN at position 4"), "{msg}");
}
