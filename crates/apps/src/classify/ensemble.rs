//! Trained classifiers loaded from checkpoints, alone or as an ensemble whose class
//! probabilities are averaged (the course's ensembling).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::tensor::Device;
use convnet_data::{Examples, Normalization};
use convnet_layers::Sequential;
use convnet_train::evaluate::eval_loader;
use convnet_train::{Checkpoint, CheckpointMeta, probabilities};

pub struct Member {
    pub path: PathBuf,
    pub model: Sequential,
    pub normalization: Normalization,
    pub meta: CheckpointMeta,
    /// The shape of one input example (`[C, H, W]` for images).
    pub input: Vec<usize>,
}

impl Member {
    /// A checkpoint file, or a run directory (its best checkpoint).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let path = Checkpoint::resolve(path)?;
        let ckpt = Checkpoint::load(&path)?;
        let model = ckpt.classifier(&path, device)?;
        let input = model.input_shape().dims().to_vec();
        Ok(Self {
            normalization: (&ckpt.meta.normalization).into(),
            meta: ckpt.meta,
            path,
            model,
            input,
        })
    }

    pub fn classes(&self) -> &[String] {
        &self.meta.classes
    }
}

pub struct Ensemble {
    pub members: Vec<Member>,
}

impl Ensemble {
    pub fn load(paths: &[PathBuf], device: &Device) -> Result<Self> {
        let members = paths
            .iter()
            .map(|p| Member::load(p, device))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = members.first() else {
            bail!("no checkpoint given");
        };
        for m in members.iter().skip(1) {
            if m.classes() != first.classes() {
                bail!(
                    "cannot ensemble {} and {}: their classes differ ({:?} vs {:?})",
                    first.path.display(),
                    m.path.display(),
                    first.classes(),
                    m.classes()
                );
            }
            if m.input != first.input {
                bail!(
                    "cannot ensemble {} and {}: their inputs differ ({:?} vs {:?})",
                    first.path.display(),
                    m.path.display(),
                    first.input,
                    m.input
                );
            }
        }
        Ok(Self { members })
    }

    pub fn classes(&self) -> &[String] {
        self.members[0].classes()
    }

    pub fn input(&self) -> &[usize] {
        &self.members[0].input
    }

    /// Mean class probabilities over the members, `[N, classes]` row-major, for every image
    /// of `set` in order. `on_batch` is told how many images each member has done.
    pub fn probabilities(
        &self,
        set: Arc<dyn Examples>,
        device: &Device,
        mut on_batch: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        let mut sum = vec![0.0f32; set.len() * self.classes().len()];
        for member in &self.members {
            let mut at = 0;
            for batch in eval_loader(set.clone(), &member.normalization, 256)? {
                let p = probabilities(&member.model, &batch, device)?;
                for (s, v) in sum[at..at + p.len()].iter_mut().zip(&p) {
                    *s += v;
                }
                at += p.len();
                on_batch(batch.labels.len());
            }
        }
        let k = self.members.len() as f32;
        sum.iter_mut().for_each(|v| *v /= k);
        Ok(sum)
    }
}
