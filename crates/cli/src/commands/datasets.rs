//! `convnet dataset`: people's own labelled detection data — YOLO text files, COCO JSON,
//! Pascal VOC XML or CSV box lists, the layout found on its own. `inspect` reports what a data
//! set holds and every problem in it; `tile` cuts its pictures into overlapping tiles (a YOLO
//! data set), for pictures far larger than a detector's input; `convert` writes it in another
//! layout.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use convnet_data::detection::inspect::{Inspection, Summary, inspect};
use convnet_data::detection::tile::{MIN_FRACTION, write_yolo_tiles};
use convnet_data::detection::{DetectionDataset, coco, csv, open, voc, yolo};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: DatasetCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DatasetCommand {
    /// Report on a data set: the layout found, pictures per split, boxes per class, box sizes
    /// and aspect ratios, pictures without labels, and every problem (exit status 1 when there
    /// is any).
    Inspect(InspectArgs),
    /// Cut every picture into overlapping square tiles at full resolution, written as a YOLO
    /// data set (boxes clipped to each tile, kept where most of the box is inside it).
    Tile(TileArgs),
    /// Write a data set in another layout (pictures hard-linked where possible, splits kept).
    Convert(ConvertArgs),
}

/// The data set argument's help, shared by the subcommands.
const PATH_HELP: &str = "The data set: a folder in YOLO, Pascal VOC, CSV or COCO layout, a COCO \
                         .json, a .csv box list or a YOLO data.yaml";

#[derive(clap::Args, Debug)]
struct InspectArgs {
    #[arg(help = PATH_HELP)]
    path: PathBuf,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,

    /// Also draw histograms of box widths, heights, widths relative to the picture and aspect
    /// ratios into this PNG.
    #[arg(long, value_name = "OUT.png")]
    plots: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct TileArgs {
    #[arg(help = PATH_HELP)]
    path: PathBuf,

    /// Side of a tile, in pixels.
    #[arg(long, default_value_t = 416)]
    tile: u32,

    /// Pixels shared by neighbouring tiles (an object cut by one tile's edge is whole in the
    /// next when it is smaller than this).
    #[arg(long, default_value_t = 32)]
    overlap: u32,

    /// The share of a box's area that must lie inside a tile for the tile to keep it.
    #[arg(long, default_value_t = MIN_FRACTION)]
    min_fraction: f32,

    /// Output folder (a YOLO data set: images/, labels/, data.yaml).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    /// `images/{split}/`, `labels/{split}/NAME.txt`, `data.yaml` (Ultralytics).
    Yolo,
    /// `annotations/instances_{split}.json` with the pictures in `{split}/`.
    Coco,
    /// `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/{split}.txt`.
    Voc,
    /// `{split}.csv` rows `image_path,xmin,ymin,xmax,ymax,label`, pictures in `images/`.
    Csv,
}

#[derive(clap::Args, Debug)]
struct ConvertArgs {
    #[arg(help = PATH_HELP)]
    path: PathBuf,

    /// The layout to write.
    #[arg(long, value_enum)]
    to: Format,

    /// Output folder (new or empty).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        DatasetCommand::Inspect(a) => run_inspect(a),
        DatasetCommand::Tile(a) => run_tile(a),
        DatasetCommand::Convert(a) => run_convert(a),
    }
}

fn run_inspect(args: InspectArgs) -> Result<()> {
    let report = inspect(&args.path)?;
    if let Some(png) = &args.plots {
        report.histogram_png(png)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
        if let Some(png) = &args.plots {
            println!("histograms: {}", png.display());
        }
    }
    match report.problems.len() {
        0 => Ok(()),
        1 => bail!("1 problem in {}", args.path.display()),
        n => bail!("{n} problems in {}", args.path.display()),
    }
}

fn print_report(r: &Inspection) {
    let splits = match r.has_splits {
        true => "splits as the data set gives them",
        false => "no splits named (every picture in train)",
    };
    let classes = count(r.classes.len(), "class", "classes");
    println!(
        "{}: {} layout, {classes}, {splits}",
        r.path.display(),
        r.layout_name
    );
    println!(
        "\n{:<6} {:>9} {:>10} {:>9} {:>8} {:>10}",
        "split", "pictures", "no labels", "no boxes", "boxes", "difficult"
    );
    for s in &r.splits {
        println!(
            "{:<6} {:>9} {:>10} {:>9} {:>8} {:>10}",
            s.split.name(),
            s.images,
            s.unlabelled,
            s.without_boxes,
            s.boxes,
            s.difficult
        );
    }
    let width = r
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 40);
    print!("\n{:<width$}", "class");
    for s in &r.splits {
        print!(" {:>8}", s.split.name());
    }
    println!(" {:>8}", "total");
    for (c, name) in r.classes.iter().enumerate() {
        print!("{name:<width$}");
        let mut total = 0;
        for s in &r.splits {
            let n = s.boxes_per_class.get(c).copied().unwrap_or(0);
            total += n;
            print!(" {n:>8}");
        }
        println!(" {total:>8}");
    }
    let b = &r.boxes;
    println!("\n{} boxes{}", b.count, if b.count > 0 { ":" } else { "" });
    let rows: [(&str, Option<Summary>); 5] = [
        ("width (px)", b.width),
        ("height (px)", b.height),
        ("area (px²)", b.area),
        ("aspect w/h", b.aspect),
        ("width / picture width", b.relative_width),
    ];
    for (name, s) in rows {
        if let Some(s) = s {
            println!(
                "  {name:<22} min {:<10} median {:<10} mean {:<10} max {}",
                short(s.min),
                short(s.median),
                short(s.mean),
                short(s.max)
            );
        }
    }
    if r.crowd_ignored > 0 {
        println!(
            "\n{} crowd boxes (iscrowd: 1) left out, as COCO's evaluation leaves them out",
            r.crowd_ignored
        );
    }
    if !r.unlisted.is_empty() {
        println!(
            "\n{} annotation files are in no ImageSets/Main list and were left out:",
            r.unlisted.len()
        );
        print_paths(&r.unlisted);
    }
    if !r.unlabelled.is_empty() {
        println!(
            "\n{} pictures without labels (taken as pictures with no objects):",
            r.unlabelled.len()
        );
        print_paths(&r.unlabelled);
    }
    if r.problems.is_empty() {
        println!("\nno problems");
    } else {
        println!("\n{} problems:", r.problems.len());
        for p in &r.problems {
            println!("  {p}");
        }
    }
}

/// `1 class`, `2 classes`.
fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

fn print_paths(paths: &[PathBuf]) {
    for p in paths {
        println!("  {}", p.display());
    }
}

/// A statistic in a few significant digits.
fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

fn run_tile(args: TileArgs) -> Result<()> {
    let ds = open(&args.path)?;
    let summary = write_yolo_tiles(&ds, args.tile, args.overlap, args.min_fraction, &args.out)?;
    println!(
        "{} ({}): tiles of {} px overlapping by {} px, written to {}",
        args.path.display(),
        ds.layout.name(),
        args.tile,
        args.overlap,
        args.out.display()
    );
    for s in &summary.splits {
        println!(
            "  {:<5} {} pictures -> {} tiles, {} boxes ({} box pieces left out: less than {} of the box inside the tile)",
            s.split.name(),
            s.pictures,
            s.tiles,
            s.boxes,
            s.dropped,
            args.min_fraction
        );
    }
    Ok(())
}

fn run_convert(args: ConvertArgs) -> Result<()> {
    let ds = open(&args.path)?;
    let write: fn(&DetectionDataset, &Path) -> Result<(), convnet_data::DataError> = match args.to {
        Format::Yolo => yolo::write,
        Format::Coco => coco::write,
        Format::Voc => voc::write,
        Format::Csv => csv::write,
    };
    write(&ds, &args.out)?;
    let pictures = ds.images().count();
    let boxes: usize = ds.images().map(|(_, i)| i.boxes.len()).sum();
    println!(
        "{} ({}) -> {}: {pictures} pictures, {boxes} boxes, {}",
        args.path.display(),
        ds.layout.name(),
        args.out.display(),
        count(ds.classes.len(), "class", "classes")
    );
    Ok(())
}
