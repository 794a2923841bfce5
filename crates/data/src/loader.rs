//! Batches for one epoch, built on a background thread while the network trains on the
//! previous ones.
//!
//! The order is a permutation drawn from `(seed, epoch)`, and each example's augmentation draws
//! from its own generator seeded by `(seed, epoch, example index)`: the batches are the same
//! however the threads are scheduled, and an epoch can be replayed on its own.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::{Device, Int, Tensor, TensorData};
use convnet_layers::Features;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;

use crate::augment::{Augment, example_rng};
use crate::examples::{Examples, IntoExamples};
use crate::{DataError, Normalization};

/// How a [`Loader`] walks a set.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    pub epoch: u64,
    /// Leave out the last batch when it would be smaller than `batch_size`.
    pub drop_last: bool,
    /// Batches built ahead of the consumer; more smooths out uneven augmentation cost at the
    /// price of memory.
    pub prefetch: usize,
    pub normalization: Normalization,
    pub augment: Option<Arc<Augment>>,
}

impl LoaderConfig {
    /// Shuffled, seed 0, epoch 0, partial last batch kept, 4 batches ahead, no augmentation.
    pub fn new(batch_size: usize, normalization: Normalization) -> Self {
        Self {
            batch_size,
            shuffle: true,
            seed: 0,
            epoch: 0,
            drop_last: false,
            prefetch: 4,
            normalization,
            augment: None,
        }
    }
}

/// Examples ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `prod(shape)` normalised values, example after example (images, signals or volumes:
    /// the name is historical).
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// `[N, ...example shape]`: `[N, C, H, W]` for images, `[N, C, L]` for signals,
    /// `[N, C, D, H, W]` for volumes.
    pub shape: Vec<usize>,
    /// Where each example sits in the set.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Builds the batch of `indices` from `set`: augmented (each example with its own
    /// generator, seeded by `(seed, epoch, index)`) and then normalised.
    pub fn build<E: Examples + ?Sized>(
        set: &E,
        indices: &[usize],
        normalization: &Normalization,
        augment: Option<&Augment>,
        seed: u64,
        epoch: u64,
    ) -> Batch {
        let example_shape = set.example_shape();
        let per_example: usize = example_shape.iter().product();
        let mut images = Vec::with_capacity(indices.len() * per_example);
        for &i in indices {
            let mut rng = example_rng(seed, epoch, i);
            set.write_normalised(i, normalization, augment, &mut rng, &mut images);
        }
        let mut shape = Vec::with_capacity(example_shape.len() + 1);
        shape.push(indices.len());
        shape.extend(example_shape);
        Batch {
            images,
            labels: indices.iter().map(|&i| set.label(i)).collect(),
            shape,
            indices: indices.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One example's shape: the batch shape without `N`.
    pub fn example_shape(&self) -> &[usize] {
        self.shape.get(1..).unwrap_or(&[])
    }

    /// The images as an `[N, C, H, W]` float tensor. Panics for a batch of another rank (a
    /// signal or volume batch): use [`Batch::to_features`], which takes every rank.
    pub fn to_tensor(&self, device: &Device) -> Tensor<4> {
        assert_eq!(
            self.shape.len(),
            4,
            "Batch::to_tensor takes [N, C, H, W] batches, not {:?}; use Batch::to_features",
            self.shape
        );
        self.tensor::<4>(device)
    }

    /// The batch as the network input its rank calls for: `[N, F]` flat, `[N, C, L]` 1D maps,
    /// `[N, C, H, W]` 2D maps, `[N, C, D, H, W]` 3D maps. Panics for any other rank, which no
    /// loader builds.
    pub fn to_features(&self, device: &Device) -> Features {
        match self.shape.len() {
            2 => Features::Flat(self.tensor::<2>(device)),
            3 => Features::Map1d(self.tensor::<3>(device)),
            4 => Features::Map2d(self.tensor::<4>(device)),
            5 => Features::Map3d(self.tensor::<5>(device)),
            _ => panic!(
                "a batch of shape {:?} has no feature-map form (ranks 2 to 5)",
                self.shape
            ),
        }
    }

    fn tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        Tensor::from_data(
            TensorData::new(self.images.clone(), self.shape.clone()),
            device,
        )
    }

    /// The labels as an `[N]` integer tensor (what cross-entropy takes).
    pub fn labels_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(labels, [self.labels.len()]), device)
    }
}

/// One epoch of batches, in order, built ahead on a background thread. Dropping it mid-epoch
/// stops the thread.
pub struct Loader {
    set: Arc<dyn Examples>,
    config: LoaderConfig,
    order: Arc<Vec<usize>>,
    num_batches: usize,
    yielded: usize,
    worker: Option<Worker>,
}

struct Worker {
    batches: Receiver<Batch>,
    thread: JoinHandle<()>,
}

impl Loader {
    /// A loader over `set`: an `Arc` of an [`ImageSet`](crate::ImageSet), a
    /// [`TensorSet`](crate::TensorSet), any other [`Examples`], or an `Arc<dyn Examples>`.
    pub fn new(set: impl IntoExamples, config: LoaderConfig) -> Result<Self, DataError> {
        let set = set.into_examples();
        if config.batch_size == 0 {
            return Err(DataError::Loader(
                "batch size must be at least 1".to_string(),
            ));
        }
        set.validate()?;
        let example_shape = set.example_shape();
        if !(1..=4).contains(&example_shape.len()) {
            return Err(DataError::Loader(format!(
                "examples of shape {example_shape:?} have no network input form (ranks 1 to 4: [F], [C, L], [C, H, W], [C, D, H, W])"
            )));
        }
        if config.normalization.channels() != set.channels()
            || config.normalization.std.len() != set.channels()
        {
            return Err(DataError::Loader(format!(
                "normalisation has {} means and {} standard deviations for {}-channel examples",
                config.normalization.mean.len(),
                config.normalization.std.len(),
                set.channels()
            )));
        }
        if let Some(augment) = config.augment.as_deref().filter(|a| !a.is_empty())
            && !set.augments()
        {
            return Err(DataError::Loader(format!(
                "augmentation \"{}\" applies to images, not to {:?} examples",
                augment.describe(),
                set.example_shape()
            )));
        }
        let order = epoch_order(set.len(), config.shuffle, config.seed, config.epoch);
        let num_batches = if config.drop_last {
            set.len() / config.batch_size
        } else {
            set.len().div_ceil(config.batch_size)
        };
        Ok(Self {
            set,
            config,
            order: Arc::new(order),
            num_batches,
            yielded: 0,
            worker: None,
        })
    }

    pub fn num_batches(&self) -> usize {
        self.num_batches
    }

    /// Example indices in the order this epoch visits them (before dropping a partial batch).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Starts the worker on first use, so a loader asked only for its size costs no thread.
    fn start(&mut self) -> &mut Worker {
        self.worker.get_or_insert_with(|| {
            let (tx, rx) = sync_channel(self.config.prefetch);
            let set = Arc::clone(&self.set);
            let order = Arc::clone(&self.order);
            let config = self.config.clone();
            let num_batches = self.num_batches;
            let thread = std::thread::spawn(move || {
                for chunk in order.chunks(config.batch_size).take(num_batches) {
                    let batch = Batch::build(
                        &*set,
                        chunk,
                        &config.normalization,
                        config.augment.as_deref(),
                        config.seed,
                        config.epoch,
                    );
                    if tx.send(batch).is_err() {
                        return; // The loader was dropped: nobody wants the rest.
                    }
                }
            });
            Worker {
                batches: rx,
                thread,
            }
        })
    }
}

/// `0..n`, shuffled by a generator seeded from `(seed, epoch)` when `shuffle` is set.
pub fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(crate::seed::derive(&[seed, epoch, 0x5f]));
        order.shuffle(&mut rng);
    }
    order
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.yielded >= self.num_batches {
            return None;
        }
        let worker = self.start();
        match worker.batches.recv() {
            Ok(batch) => {
                self.yielded += 1;
                Some(batch)
            }
            Err(_) => {
                // The worker ended early, which only a panic does: pass it on rather than
                // silently shortening the epoch.
                self.yielded = self.num_batches;
                let worker = self.worker.take()?;
                match worker.thread.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => None,
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.num_batches - self.yielded;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Loader {}

impl Drop for Loader {
    fn drop(&mut self) {
        if let Some(Worker { batches, thread }) = self.worker.take() {
            // Closing the channel makes the worker's next send fail, so it returns after at
            // most the batch in hand.
            drop(batches);
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("examples", &self.set.len())
            .field("config", &self.config)
            .field("num_batches", &self.num_batches)
            .field("yielded", &self.yielded)
            .finish()
    }
}
