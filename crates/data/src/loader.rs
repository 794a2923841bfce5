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
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;

use crate::augment::{Augment, Image, example_rng};
use crate::{DataError, ImageSet, Normalization};

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
    /// `N * C * H * W` normalised values.
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// `[N, C, H, W]`.
    pub shape: [usize; 4],
    /// Where each example sits in the set.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Builds the batch of `indices` from `set`: augmented (each example with its own seeded
    /// generator) and then normalised.
    pub fn build(
        set: &ImageSet,
        indices: &[usize],
        normalization: &Normalization,
        augment: Option<&Augment>,
        seed: u64,
        epoch: u64,
    ) -> Batch {
        let [c, h, w] = set.shape;
        let mut images = Vec::with_capacity(indices.len() * set.image_len());
        for &i in indices {
            match augment.filter(|a| !a.is_empty()) {
                None => normalization.extend_normalised(set.image(i), &mut images),
                Some(a) => {
                    let mut image = Image::from_pixels(set.image(i), set.shape);
                    a.apply(&mut image, &mut example_rng(seed, epoch, i));
                    for (ch, plane) in image.data.chunks_exact((h * w).max(1)).enumerate() {
                        images.extend(plane.iter().map(|&v| normalization.apply(ch, v)));
                    }
                }
            }
        }
        Batch {
            images,
            labels: indices.iter().map(|&i| set.labels[i]).collect(),
            shape: [indices.len(), c, h, w],
            indices: indices.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// The images as an `[N, C, H, W]` float tensor.
    pub fn to_tensor(&self, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(self.images.clone(), self.shape), device)
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
    set: Arc<ImageSet>,
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
    pub fn new(set: Arc<ImageSet>, config: LoaderConfig) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::Loader(
                "batch size must be at least 1".to_string(),
            ));
        }
        set.validate()?;
        if config.normalization.channels() != set.channels()
            || config.normalization.std.len() != set.channels()
        {
            return Err(DataError::Loader(format!(
                "normalisation has {} means and {} standard deviations for {}-channel images",
                config.normalization.mean.len(),
                config.normalization.std.len(),
                set.channels()
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
                        &set,
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
