//! `convnet anchors`: anchor box shapes for a YOLO head, by k-means with 1 − IoU as the
//! distance over the widths and heights of a labelled data set's boxes.

use std::path::PathBuf;

use anyhow::{Result, bail};
use convnet_vision::anchors::kmeans_anchors;
use convnet_vision::coco::read_truth;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The labels: COCO ground-truth JSON (`images`, `annotations` with bbox [x, y, w, h]).
    #[arg(long, value_name = "FILE")]
    labels: PathBuf,

    /// How many anchors.
    #[arg(short, long, default_value_t = 5)]
    k: usize,

    /// Also give the anchors in grid cells, for a network input of SIZE pixels with GRID cells
    /// a side (as YOLO's configs and `convnet detect` take them).
    #[arg(long, requires = "grid", value_name = "SIZE")]
    size: Option<f32>,

    #[arg(long, requires = "size")]
    grid: Option<usize>,

    /// Seed of the k-means++ initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Print the anchors as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let truth = read_truth(&args.labels)?;
    let boxes: Vec<(f32, f32)> = truth
        .objects
        .iter()
        .map(|g| (g.bbox.width(), g.bbox.height()))
        .collect();
    let anchors = kmeans_anchors(&boxes, args.k, args.seed)?;
    let cell = match (args.size, args.grid) {
        (Some(size), Some(grid)) if size > 0.0 && grid > 0 => Some(size / grid as f32),
        (Some(_), Some(_)) => bail!("--size and --grid must be positive"),
        _ => None,
    };
    if args.json {
        let out = json!({
            "labels": args.labels,
            "boxes": boxes.len(),
            "k": args.k,
            "anchors": anchors.shapes.iter().map(|&(w, h)| [w, h]).collect::<Vec<_>>(),
            "anchors_in_cells": cell.map(|c| anchors.shapes.iter().map(|&(w, h)| [w / c, h / c]).collect::<Vec<_>>()),
            "mean_iou": anchors.mean_iou,
            "iterations": anchors.iterations,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} anchors from {} boxes (mean IoU with the best anchor {:.4}, {} iterations):",
        args.k,
        boxes.len(),
        anchors.mean_iou,
        anchors.iterations
    );
    for &(w, h) in &anchors.shapes {
        match cell {
            Some(c) => println!(
                "  {w:8.2} x {h:8.2} px   {:7.4} x {:7.4} cells",
                w / c,
                h / c
            ),
            None => println!("  {w:8.2} x {h:8.2} px"),
        }
    }
    Ok(())
}
