//! `convnet eval-detections`: mean average precision of detections in COCO's result format
//! against COCO-format ground truth — COCO's mAP@[.5:.95] (and @.5, @.75) as pycocotools
//! computes it, and PASCAL VOC's AP (11-point and all-point) at one IoU threshold.

use std::path::PathBuf;

use anyhow::{Result, bail};
use convnet_vision::coco::{read_results, read_truth};
use convnet_vision::map::{Interpolation, coco_map, voc_map};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ground truth: COCO JSON with `images`, `annotations` (bbox [x, y, w, h]) and `categories`.
    #[arg(long, value_name = "GT.json")]
    gt: PathBuf,

    /// Detections: a COCO results list of `{image_id, category_id, bbox, score}`.
    #[arg(long, value_name = "PRED.json")]
    pred: PathBuf,

    /// IoU threshold of the VOC numbers.
    #[arg(long, default_value_t = 0.5)]
    iou: f32,

    /// Detections per image COCO keeps (the best by score).
    #[arg(long, default_value_t = 100)]
    max_dets: usize,

    /// Print the numbers as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !(args.iou > 0.0 && args.iou <= 1.0) {
        bail!("--iou must lie in (0, 1], not {}", args.iou);
    }
    if args.max_dets == 0 {
        bail!("--max-dets must be at least 1");
    }
    let truth = read_truth(&args.gt)?;
    let dets = read_results(&args.pred, &truth)?;
    let coco = coco_map(&truth.objects, &dets, args.max_dets);
    let voc11 = voc_map(&truth.objects, &dets, args.iou, Interpolation::ElevenPoint);
    let voc = voc_map(&truth.objects, &dets, args.iou, Interpolation::AllPoint);
    let name = |c: &u64| truth.categories.get(c).cloned().unwrap_or_default();
    if args.json {
        let per_class: Vec<_> = coco
            .per_class
            .iter()
            .map(|(c, ap)| {
                json!({
                    "category_id": c,
                    "name": name(c),
                    "coco_ap": ap,
                    "voc_ap_11point": voc11.per_class.get(c),
                    "voc_ap": voc.per_class.get(c),
                    "objects": truth.objects.iter().filter(|g| g.class == *c).count(),
                })
            })
            .collect();
        let out = json!({
            "images": truth.images.len(),
            "objects": truth.objects.len(),
            "detections": dets.len(),
            "coco": {"map": coco.map, "map50": coco.map50, "map75": coco.map75, "max_dets": args.max_dets},
            "voc": {"iou": args.iou, "map_11point": voc11.mean, "map": voc.mean},
            "per_class": per_class,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} images, {} objects, {} detections",
        truth.images.len(),
        truth.objects.len(),
        dets.len()
    );
    println!(
        "COCO mAP@[.5:.95] {:.4}   mAP@.5 {:.4}   mAP@.75 {:.4}",
        coco.map, coco.map50, coco.map75
    );
    println!(
        "VOC  mAP@{} {:.4} (all-point)   {:.4} (11-point)",
        args.iou, voc.mean, voc11.mean
    );
    println!(
        "{:<20} {:>10} {:>10} {:>12}",
        "class", "COCO AP", "VOC AP", "VOC AP 11pt"
    );
    for (c, ap) in &coco.per_class {
        println!(
            "{:<20} {:>10.4} {:>10.4} {:>12.4}",
            format!("{} ({c})", name(c)),
            ap,
            voc.per_class.get(c).copied().unwrap_or(0.0),
            voc11.per_class.get(c).copied().unwrap_or(0.0)
        );
    }
    Ok(())
}
