//! Training and evaluating YOLO detectors: the network's output `[N, A (5 + C), S, S]` is
//! trained with [`yolo_loss`] against targets assigned by [`YoloHead::targets`] on pictures
//! augmented with their boxes ([`BoxAugment`]: flips, scale and translation, HSV, mosaic), and
//! judged by mAP@0.5 (VOC, all-point, which picks the best checkpoint) and COCO's
//! mAP@[.5:.95] on the validation set after each epoch.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::Normalization;
use convnet_data::augment::example_rng;
use convnet_data::detection::LabelledBox;
use convnet_data::detection::augment::{BoxAugment, Sample};
use convnet_data::segmentation::epoch_order;
use convnet_data::synthetic::DetectionSet;
use convnet_layers::{Mode, ModelSpec, Sequential};
use convnet_vision::boxes::{BBox, CenterBox, Detection};
use convnet_vision::map::{GroundTruth, Interpolation, Scored, coco_map, voc_map};
use convnet_vision::yolo::{Object, YoloHead};
use rayon::prelude::*;

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::history::EpochRecord;
use crate::localize::{YoloBatchTargets, YoloLossWeights, yolo_loss};
use crate::trainer::{FreshRun, Ledger, Observer, TrainOutcome, check_finite};

/// Boxes scoring below this are not kept for mAP (the curve's low-precision tail).
pub const EVAL_SCORE: f32 = 0.005;
/// NMS IoU threshold at evaluation and detection.
pub const NMS_IOU: f32 = 0.45;

/// What a detection run trains on.
pub struct DetectionData {
    pub train: DetectionSet,
    pub validation: Option<DetectionSet>,
    pub head: YoloHead,
    /// What moves training pictures and their boxes each epoch.
    pub augment: BoxAugment,
    /// YOLOv2's ignore threshold: an anchor whose predicted box already overlaps an object by
    /// more than this IoU is spared the no-object penalty. `None` penalises every anchor not
    /// responsible for an object (the generated scenes' published recipe).
    pub ignore_iou: Option<f32>,
    /// The last this many epochs train without mosaic, on pictures as they come (Ultralytics'
    /// `close_mosaic`): the network and its batch-norm statistics settle on real pictures.
    pub close_mosaic: usize,
}

/// The YOLOv2/v3 ignore threshold, for runs that use one.
pub const IGNORE_IOU: f32 = 0.6;

/// `[N, A, S_h, S_w]`: 1 where an anchor's predicted box overlaps one of its picture's objects
/// by more than `threshold`.
fn ignored_anchors(
    y: &Tensor<4>,
    head: &YoloHead,
    boxes: &[Vec<LabelledBox>],
    side: usize,
    threshold: f32,
) -> Result<Tensor<4>, TrainError> {
    let [n, c, gh, gw] = y.dims();
    let values = y
        .clone()
        .inner()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Config(format!("{e:?}")))?;
    let s = side as f32;
    let mut mask = Vec::with_capacity(n * head.anchors.len() * gh * gw);
    for (k, objects) in boxes.iter().enumerate() {
        let truth: Vec<BBox> = objects
            .iter()
            .map(|o| BBox {
                x1: o.bbox[0] / s,
                y1: o.bbox[1] / s,
                x2: o.bbox[2] / s,
                y2: o.bbox[3] / s,
            })
            .collect();
        let best = head
            .best_overlaps(
                &values[k * c * gh * gw..(k + 1) * c * gh * gw],
                [gh, gw],
                &truth,
            )
            .map_err(|e| TrainError::Config(e.to_string()))?;
        mask.extend(
            best.into_iter()
                .map(|iou| f32::from(u8::from(iou > threshold))),
        );
    }
    Ok(Tensor::from_data(
        TensorData::new(mask, [n, head.anchors.len(), gh, gw]),
        &y.device(),
    ))
}

fn objects_of(objects: &[LabelledBox], size: usize) -> Vec<Object> {
    let s = size as f32;
    objects
        .iter()
        .map(|o| {
            let [x1, y1, x2, y2] = o.bbox;
            Object {
                bbox: CenterBox {
                    x: ((x1 + x2) / 2.0 / s).min(1.0 - 1e-6),
                    y: ((y1 + y2) / 2.0 / s).min(1.0 - 1e-6),
                    w: (x2 - x1) / s,
                    h: (y2 - y1) / s,
                },
                class: o.class,
            }
        })
        .collect()
}

/// The output of `model` for `x` as `[N, A (5 + C), S_h, S_w]`, checked against the head.
fn head_output(
    model: &Sequential,
    x: Tensor<4>,
    head: &YoloHead,
    mode: Mode,
) -> Result<Tensor<4>, TrainError> {
    let y = model.forward(x, mode)?;
    let dims = y.dims();
    let channels = head.anchors.len() * head.per_anchor();
    if dims.len() != 4 || dims[1] != channels {
        return Err(TrainError::Config(format!(
            "a YOLO network with {} anchors and {} classes must output [N, {channels}, S, S]; this one gives {dims:?}",
            head.anchors.len(),
            head.classes
        )));
    }
    y.into_map2d()
        .map_err(|e| TrainError::Config(format!("cannot read the YOLO output: {e:?}")))
}

/// Pictures `indices` of `set` as a tensor, each mirrored left-right when `mirrored`.
fn pictures(set: &DetectionSet, indices: &[usize], mirrored: bool, device: &Device) -> Tensor<4> {
    let s = set.size;
    let mut values = set.batch(indices);
    if mirrored {
        // Every row of every plane of every picture.
        values.chunks_mut(s).for_each(<[f32]>::reverse);
    }
    Tensor::from_data(
        TensorData::new(values, [indices.len(), set.channels, s, s]),
        device,
    )
}

/// The objects of a set as the augmentations take them.
fn labelled(set: &DetectionSet) -> Vec<Vec<LabelledBox>> {
    set.objects
        .iter()
        .map(|objects| {
            objects
                .iter()
                .map(|o| LabelledBox::new(o.bbox, o.class))
                .collect()
        })
        .collect()
}

/// Training pictures `chunk` of `set` as `epoch` sees them (augmented, seeded by
/// `(seed, epoch, picture)`), as a batch tensor, with each picture's boxes.
fn training_batch(
    set: &DetectionSet,
    boxes: &[Vec<LabelledBox>],
    augment: &BoxAugment,
    chunk: &[usize],
    (seed, epoch): (u64, u64),
    device: &Device,
) -> (Tensor<4>, Vec<Vec<LabelledBox>>) {
    let (side, channels) = (set.size, set.channels);
    let pick = |j: usize| Sample {
        pixels: set.image(j),
        boxes: &boxes[j],
    };
    let samples: Vec<(Vec<u8>, Vec<LabelledBox>)> = chunk
        .par_iter()
        .map(|&i| {
            if augment.is_none() {
                (set.image(i).to_vec(), boxes[i].clone())
            } else {
                let mut rng = example_rng(seed, epoch, i);
                augment.apply(&pick, set.len(), i, side, channels, &mut rng)
            }
        })
        .collect();
    let mut values = Vec::with_capacity(chunk.len() * set.image_len());
    for (pixels, _) in &samples {
        values.extend(pixels.iter().map(|&p| f32::from(p) / 255.0));
    }
    let x = Tensor::from_data(
        TensorData::new(values, [chunk.len(), channels, side, side]),
        device,
    );
    (x, samples.into_iter().map(|(_, b)| b).collect())
}

/// The head's raw output for pictures `chunk` of `set`, `[N, A (5 + C), S_h, S_w]` flattened.
fn raw_output(
    model: &Sequential,
    set: &DetectionSet,
    chunk: &[usize],
    mirrored: bool,
    head: &YoloHead,
    device: &Device,
) -> Result<(Vec<f32>, [usize; 4]), TrainError> {
    let x = pictures(set, chunk, mirrored, device);
    let y = head_output(model, x, head, Mode::Eval)?;
    let dims = y.dims();
    let values = y
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Config(format!("{e:?}")))?;
    Ok((values, dims))
}

/// Every picture's detections (in pixels) above `score`, after per-class NMS, by one detector
/// or the average output of several (`members`: each network with the head it was trained
/// for; outputs are rebased to the first head's anchors). With `flip_tta` each picture's output
/// is also averaged with its mirror image's (mirrored back): flip test-time augmentation, at
/// twice the cost.
pub fn detect_set(
    members: &[(&Sequential, &YoloHead)],
    set: &DetectionSet,
    score: f32,
    flip_tta: bool,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<Detection>>, TrainError> {
    let config = |e: convnet_vision::yolo::YoloShapeError| TrainError::Config(e.to_string());
    let &[(_, head), ..] = members else {
        return Err(TrainError::Config("no detector to run".into()));
    };
    let mut out = Vec::with_capacity(set.len());
    let indices: Vec<usize> = (0..set.len()).collect();
    let s = set.size as f32;
    let views: &[bool] = if flip_tta { &[false, true] } else { &[false] };
    for chunk in indices.chunks(batch_size.max(1)) {
        let mut sum: Option<(Vec<f32>, [usize; 4])> = None;
        for &(model, own) in members {
            for &mirrored in views {
                let (mut values, dims) = raw_output(model, set, chunk, mirrored, own, device)?;
                let [_, c, gh, gw] = dims;
                for one in values.chunks_mut(c * gh * gw) {
                    if mirrored {
                        own.unmirror(one, [gh, gw]).map_err(config)?;
                    }
                    own.rebase(one, [gh, gw], head).map_err(config)?;
                }
                match &mut sum {
                    None => sum = Some((values, dims)),
                    Some((total, first)) if *first == dims => {
                        total.iter_mut().zip(&values).for_each(|(t, v)| *t += v)
                    }
                    Some((_, first)) => {
                        return Err(TrainError::Config(format!(
                            "the ensemble's outputs differ in shape: {first:?} and {dims:?}"
                        )));
                    }
                }
            }
        }
        let (mut values, [n, c, gh, gw]) = sum.expect("at least one member and view");
        let parts = (members.len() * views.len()) as f32;
        values.iter_mut().for_each(|v| *v /= parts);
        for k in 0..n {
            let one = &values[k * c * gh * gw..(k + 1) * c * gh * gw];
            let dets = head
                .detect(one, [gh, gw], score, NMS_IOU)
                .map_err(|e| TrainError::Config(e.to_string()))?;
            out.push(
                dets.into_iter()
                    .map(|d| Detection {
                        bbox: d.bbox.scale(s, s).clip(s, s),
                        ..d
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// mAP@0.5 (VOC, all-point) and COCO's mAP@[.5:.95] (100 detections per picture) of `model`
/// on `set`.
pub fn evaluate_detection(
    model: &Sequential,
    set: &DetectionSet,
    head: &YoloHead,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64), TrainError> {
    let detections = detect_set(&[(model, head)], set, EVAL_SCORE, false, batch_size, device)?;
    let (truth, scored) = as_map_inputs(set, &detections);
    Ok((
        voc_map(&truth, &scored, 0.5, Interpolation::AllPoint).mean,
        coco_map(&truth, &scored, 100).map,
    ))
}

/// Ground truth and detections of a set in the form the mAP functions take.
pub fn as_map_inputs(
    set: &DetectionSet,
    detections: &[Vec<Detection>],
) -> (Vec<GroundTruth>, Vec<Scored>) {
    let mut truth = Vec::new();
    for (i, objects) in set.objects.iter().enumerate() {
        for o in objects {
            let [x1, y1, x2, y2] = o.bbox;
            truth.push(GroundTruth {
                image: i as u64,
                class: o.class as u64,
                bbox: BBox { x1, y1, x2, y2 },
            });
        }
    }
    let scored = detections
        .iter()
        .enumerate()
        .flat_map(|(i, dets)| {
            dets.iter().map(move |d| Scored {
                image: i as u64,
                class: d.class as u64,
                bbox: d.bbox,
                score: d.score,
            })
        })
        .collect();
    (truth, scored)
}

/// Trains `spec` (a network ending in a YOLO head's `[A (5 + C), S, S]`) on `data`, writing
/// `history.csv` (with the validation mAP@0.5), `curves.png` and checkpoints (`best` = best
/// validation mAP@0.5) into `run_dir`. `initial` (built from `spec`) starts the run from its
/// weights, e.g. a pretrained backbone.
pub fn train_detection(
    spec: &ModelSpec,
    initial: Option<&Sequential>,
    data: &DetectionData,
    config: &TrainConfig,
    run_dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let FreshRun {
        train_device,
        mut model,
        mut optimizer,
        mut scheduler,
        steps_per_epoch,
        last_path,
    } = FreshRun::start(
        spec,
        initial,
        config,
        (data.train.len(), data.validation.as_ref().map(|v| v.len())),
        run_dir,
        device,
    )?;
    let normalization = Normalization::identity(data.train.channels);
    let mut ledger = Ledger::new(spec, &data.train.classes, &normalization, config, run_dir);
    let anchors = data.head.anchors.len();
    let train_boxes = labelled(&data.train);

    for epoch in 1..=config.epochs {
        if ledger.out_of_patience("validation mAP", observer) {
            break;
        }
        observer.epoch_start(epoch, config.epochs, steps_per_epoch);
        let started = Instant::now();
        let (mut loss_sum, mut found, mut objects, mut seen) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        let mut lr = config.optimizer.lr;
        let order = epoch_order(data.train.len(), config.seed, epoch as u64);
        let closing = epoch + data.close_mosaic > config.epochs;
        let augment = match closing && data.augment.mosaic > 0.0 {
            true => BoxAugment {
                mosaic: 0.0,
                ..data.augment.clone()
            },
            false => data.augment.clone(),
        };
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let (x, boxes) = training_batch(
                &data.train,
                &train_boxes,
                &augment,
                chunk,
                (config.seed, epoch as u64),
                &train_device,
            );
            let y = head_output(&model, x, &data.head, Mode::Train)?;
            let [_, _, gh, gw] = y.dims();
            let targets = chunk
                .iter()
                .zip(&boxes)
                .map(|(&i, objects)| {
                    data.head
                        .targets(&objects_of(objects, data.train.size), [gh, gw])
                        .map_err(|e| TrainError::Config(format!("training picture {i}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut batch_targets = YoloBatchTargets::new(&targets, anchors, &train_device);
            if let Some(threshold) = data.ignore_iou {
                let ignored = ignored_anchors(&y, &data.head, &boxes, data.train.size, threshold)?;
                batch_targets = batch_targets.with_ignored(ignored);
            }
            let loss = yolo_loss(
                y.clone(),
                &data.head,
                &batch_targets,
                YoloLossWeights::default(),
            );
            let value = loss.clone().into_scalar::<f64>();
            check_finite(value, epoch, step + 1, &last_path)?;
            // Objects whose responsible anchor already fires (objectness > 0.5).
            let [n, _, _, _] = y.dims();
            let logits: Tensor<4> = y
                .clone()
                .reshape([n, anchors, data.head.per_anchor(), gh, gw])
                .narrow(2, 4, 1)
                .reshape([n, anchors, gh, gw]);
            let fired = (sigmoid(logits.inner()).greater_elem(0.5).float()
                * batch_targets.responsible.clone().inner())
            .sum()
            .into_scalar::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let rate = scheduler.step();
            lr = rate.base();
            model = optimizer.step(rate, model, grads);
            ledger.global_step += 1;
            loss_sum += value * chunk.len() as f64;
            found += fired;
            objects += targets
                .iter()
                .map(|t| t.responsible.iter().sum::<f32>() as f64)
                .sum::<f64>();
            seen += chunk.len();
            ledger.save_within_epoch(epoch, step + 1, steps_per_epoch, &model)?;
            observer.step(step + 1, loss_sum / seen as f64, found / objects.max(1.0));
        }
        let seconds = started.elapsed().as_secs_f64();
        let maps = match &data.validation {
            Some(val) if !val.is_empty() => {
                observer.validation_start(val.len());
                let m = evaluate_detection(
                    &model.valid(),
                    val,
                    &data.head,
                    config.batch_size.max(32),
                    device,
                )?;
                observer.validation_progress(val.len());
                Some(m)
            }
            _ => None,
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: found / objects.max(1.0),
            val_loss: None,
            val_accuracy: None,
            lr,
            seconds,
            val_mean_iou: None,
            val_map50: maps.map(|m| m.0),
            val_map: maps.map(|m| m.1),
        };
        ledger.end_epoch(record, maps.map(|m| m.0), &model, observer)?;
    }
    Ok(ledger.finish(model.valid()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use convnet_data::synthetic::DetectionObject;

    /// A random detector on 32x32 pictures: an 8x8 grid, one anchor, two classes, with
    /// kernels that are not left-right symmetric.
    fn lopsided_detector() -> (Sequential, YoloHead) {
        (
            lopsided_spec().build(&Device::flex()).unwrap(),
            lopsided_head(),
        )
    }

    fn lopsided_spec() -> ModelSpec {
        ModelSpec::parse(
            r#"
name = "lopsided"
input = [1, 32, 32]
[[layers]]
type = "conv2d"
filters = 6
kernel = 3
padding = "same"
activation = "relu"
[[layers]]
type = "max_pool2d"
pool = 4
[[layers]]
type = "conv2d"
filters = 7
kernel = 3
padding = "same"
"#,
            "lopsided.toml",
        )
        .unwrap()
    }

    fn lopsided_head() -> YoloHead {
        YoloHead {
            anchors: vec![(1.5, 2.0)],
            classes: 2,
        }
    }

    fn scenes(mirrored: bool) -> DetectionSet {
        let (n, side) = (3, 32);
        let mut images: Vec<u8> = (0..n * side * side).map(|i| (i * 53 % 241) as u8).collect();
        if mirrored {
            images.chunks_mut(side).for_each(|row| row.reverse());
        }
        DetectionSet {
            images,
            objects: vec![vec![]; n],
            size: side,
            channels: 1,
            classes: vec!["a".into(), "b".into()],
        }
    }

    /// Detections sorted by class and score, for comparing sets found in different orders.
    fn sorted(mut d: Vec<Detection>) -> Vec<Detection> {
        d.sort_by(|a, b| (a.class, a.score).partial_cmp(&(b.class, b.score)).unwrap());
        d
    }

    #[test]
    fn flip_tta_finds_the_mirror_image_of_its_boxes_in_a_mirrored_picture() {
        let (net, head) = lopsided_detector();
        let d = Device::flex();
        let find = |mirrored, tta| {
            detect_set(&[(&net, &head)], &scenes(mirrored), 0.2, tta, 2, &d).unwrap()
        };
        let same = |a: &[Detection], b: &[Detection]| {
            let (a, b) = (sorted(a.to_vec()), sorted(b.to_vec()));
            a.len() == b.len()
                && a.iter().zip(&b).all(|(p, q)| {
                    p.class == q.class
                        && p.score == q.score
                        && (p.bbox.x1 - (32.0 - q.bbox.x2)).abs() < 1e-3
                        && (p.bbox.x2 - (32.0 - q.bbox.x1)).abs() < 1e-3
                        && (p.bbox.y1 - q.bbox.y1).abs() < 1e-3
                })
        };
        let (plain, plain_mirrored) = (find(false, false), find(true, false));
        assert!(plain.iter().any(|d| !d.is_empty()));
        // The lopsided network alone finds different boxes in a mirrored picture...
        assert!(plain.iter().zip(&plain_mirrored).any(|(a, b)| !same(a, b)));
        // ...averaged with its mirrored view, it finds the mirror images of the same boxes.
        let (tta, tta_mirrored) = (find(false, true), find(true, true));
        for (a, b) in tta.iter().zip(&tta_mirrored) {
            assert!(same(a, b), "{a:?}\n{b:?}");
        }
        // An ensemble of one detector twice finds what it finds alone.
        let twice = detect_set(
            &[(&net, &head), (&net, &head)],
            &scenes(false),
            0.2,
            false,
            2,
            &d,
        );
        assert_eq!(twice.unwrap(), plain);
    }

    /// Reads the run's `last` checkpoint as each step ends: (epoch, global step, steps into
    /// the epoch) of what is on disk then.
    struct PeekAtLast {
        path: std::path::PathBuf,
        seen: Vec<Option<(usize, usize, Option<usize>)>>,
    }

    impl Observer for PeekAtLast {
        fn step(&mut self, _step: usize, _loss: f64, _accuracy: f64) {
            let meta = crate::Checkpoint::load(&self.path).ok().map(|c| {
                assert!(c.optimizer.is_none());
                (c.meta.epoch, c.meta.global_step, c.meta.steps_into_epoch)
            });
            self.seen.push(meta);
        }
    }

    #[test]
    fn save_every_writes_last_inside_each_epoch() {
        let dir = tempfile::tempdir().unwrap();
        // 7 scenes in batches of 2: 4 steps an epoch; every 2nd step saves, except an epoch's
        // last, which the epoch's end saves (with its validation and history).
        let mut train = scenes(false);
        train.images = train.images.repeat(3)[..7 * 32 * 32].to_vec();
        train.objects = (0..7)
            .map(|i| {
                vec![DetectionObject {
                    bbox: [4.0 + i as f32, 6.0, 20.0 + i as f32, 26.0],
                    class: i % 2,
                }]
            })
            .collect();
        let data = DetectionData {
            train,
            validation: Some(scenes(false)),
            head: lopsided_head(),
            augment: BoxAugment::parse("flip").unwrap(),
            ignore_iou: Some(IGNORE_IOU),
            close_mosaic: 1,
        };
        let mut config = TrainConfig::new("lopsided", "scenes");
        config.epochs = 2;
        config.batch_size = 2;
        config.save_every = Some(2);
        let mut peek = PeekAtLast {
            path: dir.path().join("checkpoints").join(crate::checkpoint::LAST),
            seen: vec![],
        };
        let spec = lopsided_spec();
        let outcome = train_detection(
            &spec,
            None,
            &data,
            &config,
            dir.path(),
            &Device::flex(),
            &mut peek,
        )
        .unwrap();
        let mid_first = Some((0, 2, Some(2)));
        let end_first = Some((1, 4, None));
        let mid_second = Some((1, 6, Some(2)));
        assert_eq!(
            peek.seen,
            [
                None, mid_first, mid_first, mid_first, end_first, mid_second, mid_second,
                mid_second
            ]
        );
        let last = crate::Checkpoint::load(&outcome.last_checkpoint).unwrap();
        assert_eq!(
            (
                last.meta.epoch,
                last.meta.global_step,
                last.meta.steps_into_epoch
            ),
            (2, 8, None)
        );
        assert_eq!(last.meta.config.save_every, Some(2));
        // Without it nothing is written inside an epoch.
        config.save_every = None;
        let other = tempfile::tempdir().unwrap();
        peek.path = other
            .path()
            .join("checkpoints")
            .join(crate::checkpoint::LAST);
        peek.seen.clear();
        train_detection(
            &spec,
            None,
            &data,
            &config,
            other.path(),
            &Device::flex(),
            &mut peek,
        )
        .unwrap();
        assert_eq!(&peek.seen[..4], [None; 4]);
        assert_eq!(peek.seen[4], end_first);
    }
}
