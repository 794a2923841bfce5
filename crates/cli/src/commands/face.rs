//! `convnet face`: face verification (1:1) and recognition (1:K) with face-api.js's pretrained
//! networks — detector, 68 landmarks, 128-D encoder — and a gallery of people's encodings in
//! one SQLite file (`--gallery`, default `faces.sqlite` or `$CONVNET_GALLERY`).
//!
//! The gallery keeps encodings and the names of the files they came from, never pictures.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_apps::faces::{self, check_threshold};
use convnet_data::folder::decode_image;
use convnet_face::gallery::Gallery;
use convnet_face::pipeline::{DEFAULT_THRESHOLD, Face, FaceModels, largest};
use convnet_face::recognition::ENCODING_SIZE;
use convnet_vision::chart::save_rgb_png;
use image::RgbImage;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: FaceCommand,
}

#[derive(clap::Subcommand, Debug)]
enum FaceCommand {
    /// Find every face in a picture: box, 68 landmarks and 128-D encoding.
    Encode(EncodeArgs),
    /// Add a person to the gallery from one or more pictures of them (one face each).
    Enroll(EnrollArgs),
    /// Is the face in this picture the person enrolled under NAME? (distance and yes/no)
    Verify(VerifyArgs),
    /// Name every face in a picture from the gallery ("unknown" when nobody is close enough).
    Identify(IdentifyArgs),
    /// The people in the gallery and how many encodings each has.
    List(ListArgs),
    /// Remove a person and their encodings from the gallery.
    Remove(RemoveArgs),
}

#[derive(clap::Args, Debug)]
struct ModelArgs {
    /// face-api's model folder (default: third_party/face-api/model from
    /// scripts/fetch-pretrained.sh, looked up from the current folder and beside the binary).
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,

    /// Keep detections scoring at least this (face-api's default 0.5).
    #[arg(long, default_value_t = 0.5)]
    min_score: f32,
}

#[derive(clap::Args, Debug)]
struct GalleryArgs {
    /// The gallery file (SQLite).
    #[arg(long, env = "CONVNET_GALLERY", default_value = "faces.sqlite")]
    gallery: PathBuf,
}

#[derive(clap::Args, Debug)]
struct EncodeArgs {
    /// The picture (PNG or JPEG).
    image: PathBuf,
    #[command(flatten)]
    models: ModelArgs,
    /// Write the picture with boxes and landmarks drawn on it (PNG).
    #[arg(long, short, value_name = "OUT.png")]
    output: Option<PathBuf>,
    /// Print the faces as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct EnrollArgs {
    /// The person's name, as verify and identify will report it.
    name: String,
    /// Pictures of the person (each must show one face, or use --largest).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// In pictures with several faces, take the largest.
    #[arg(long)]
    largest: bool,
    #[command(flatten)]
    gallery: GalleryArgs,
    #[command(flatten)]
    models: ModelArgs,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// The picture (its largest face is checked).
    image: PathBuf,
    /// The enrolled person to compare with.
    #[arg(long = "as", value_name = "NAME")]
    name: String,
    /// Same person when the distance is below this.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f32,
    #[command(flatten)]
    gallery: GalleryArgs,
    #[command(flatten)]
    models: ModelArgs,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct IdentifyArgs {
    /// The picture.
    image: PathBuf,
    /// A face is someone when their distance is below this.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f32,
    /// Write the picture with each face's box and name drawn on it (PNG).
    #[arg(long, short, value_name = "OUT.png")]
    output: Option<PathBuf>,
    #[command(flatten)]
    gallery: GalleryArgs,
    #[command(flatten)]
    models: ModelArgs,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    gallery: GalleryArgs,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct RemoveArgs {
    /// The person to remove.
    name: String,
    #[command(flatten)]
    gallery: GalleryArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    match args.command {
        FaceCommand::Encode(a) => encode(a, device),
        FaceCommand::Enroll(a) => enroll(a, device),
        FaceCommand::Verify(a) => verify(a, device),
        FaceCommand::Identify(a) => identify(a, device),
        FaceCommand::List(a) => list(a),
        FaceCommand::Remove(a) => remove(a),
    }
}

impl ModelArgs {
    fn load(&self, device: &Device) -> Result<FaceModels> {
        faces::load(self.models.as_deref(), self.min_score, device)
    }
}

/// The picture's faces; none is an error that names the file.
fn faces_in(models: &FaceModels, path: &Path) -> Result<(RgbImage, Vec<Face>)> {
    let picture = decode_image(path)?.to_rgb8();
    let found = faces::faces_in(models, &picture, &path.display().to_string())?;
    Ok((picture, found))
}

fn face_json(face: &Face) -> Value {
    json!({
        "box": {"x1": face.bbox.x1, "y1": face.bbox.y1, "x2": face.bbox.x2, "y2": face.bbox.y2},
        "score": face.score,
    })
}

fn describe(face: &Face) -> String {
    format!(
        "box ({:.0}, {:.0})–({:.0}, {:.0}), score {:.3}",
        face.bbox.x1, face.bbox.y1, face.bbox.x2, face.bbox.y2, face.score
    )
}

fn encode(args: EncodeArgs, device: &Device) -> Result<()> {
    let models = args.models.load(device)?;
    let (picture, faces) = faces_in(&models, &args.image)?;
    if let Some(out) = &args.output {
        let labels: Vec<String> = (1..=faces.len()).map(|i| format!("face {i}")).collect();
        draw(&picture, &faces, &labels, out)?;
    }
    if args.json {
        let faces: Vec<Value> = faces
            .iter()
            .map(|f| {
                let mut v = face_json(f);
                v["landmarks"] = json!(f.landmarks);
                v["aligned"] = json!(f.aligned);
                v["encoding"] = json!(f.encoding.0);
                v
            })
            .collect();
        println!(
            "{}",
            json!({
                "image": args.image,
                "width": picture.width(),
                "height": picture.height(),
                "faces": faces,
            })
        );
        return Ok(());
    }
    println!("{}: {} face(s)", args.image.display(), faces.len());
    for (i, f) in faces.iter().enumerate() {
        println!("face {}: {}", i + 1, describe(f));
        let points: Vec<String> = f
            .landmarks
            .iter()
            .map(|[x, y]| format!("({x:.1}, {y:.1})"))
            .collect();
        println!("  landmarks: {}", points.join(" "));
        for (row, chunk) in f.encoding.0.chunks(16).enumerate() {
            let values: Vec<String> = chunk.iter().map(|v| format!("{v:+.4}")).collect();
            let lead = if row == 0 {
                "  encoding:"
            } else {
                "           "
            };
            println!("{lead} {}", values.join(" "));
        }
    }
    Ok(())
}

fn enroll(args: EnrollArgs, device: &Device) -> Result<()> {
    // Every picture is read before the gallery is touched: one bad picture enrols nothing.
    let models = args.models.load(device)?;
    let mut encodings = Vec::new();
    for path in &args.images {
        let (_, faces) = faces_in(&models, path)?;
        if faces.len() > 1 && !args.largest {
            bail!(
                "{}: {} faces; enrol pictures showing only {}, or pass --largest",
                path.display(),
                faces.len(),
                args.name
            );
        }
        let face = largest(&faces).expect("faces_in returns at least one face");
        let source = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        encodings.push((face.encoding.0.clone(), source));
    }
    let mut gallery = Gallery::create_or_open(&args.gallery.gallery, ENCODING_SIZE)?;
    let total = gallery.enroll(&args.name, &encodings)?;
    if args.json {
        println!(
            "{}",
            json!({
                "name": args.name,
                "added": encodings.len(),
                "encodings": total,
                "gallery": args.gallery.gallery,
            })
        );
    } else {
        println!(
            "enrolled {}: {} encoding(s) added, {} in all ({})",
            args.name,
            encodings.len(),
            total,
            args.gallery.gallery.display()
        );
    }
    Ok(())
}

fn verify(args: VerifyArgs, device: &Device) -> Result<()> {
    check_threshold(args.threshold)?;
    let gallery = Gallery::open(&args.gallery.gallery)?;
    // An unknown name fails before any network runs.
    gallery.encodings(&args.name)?;
    let models = args.models.load(device)?;
    let (_, faces) = faces_in(&models, &args.image)?;
    let face = largest(&faces).expect("faces_in returns at least one face");
    let entry = gallery
        .distances(&face.encoding.0)?
        .into_iter()
        .find(|d| d.name == args.name)
        .with_context(|| format!("{} left the gallery while it was read", args.name))?;
    let same = entry.distance < args.threshold;
    if args.json {
        let mut v = json!({
            "name": args.name,
            "distance": entry.distance,
            "nearest": entry.nearest,
            "threshold": args.threshold,
            "match": same,
            "faces_in_picture": faces.len(),
        });
        v["face"] = face_json(face);
        println!("{v}");
    } else {
        let verdict = if same { "yes" } else { "no" };
        let cmp = if same { "<" } else { "≥" };
        println!(
            "{verdict}: distance to {} {:.3} {cmp} {} ({})",
            args.name,
            entry.distance,
            args.threshold,
            describe(face)
        );
        if faces.len() > 1 {
            println!(
                "note: {} faces in the picture; the largest was checked",
                faces.len()
            );
        }
    }
    Ok(())
}

fn identify(args: IdentifyArgs, device: &Device) -> Result<()> {
    check_threshold(args.threshold)?;
    let gallery = Gallery::open(&args.gallery.gallery)?;
    let models = args.models.load(device)?;
    let (picture, faces) = faces_in(&models, &args.image)?;
    let named = faces::identify(&gallery, &faces, args.threshold)?;
    let labels: Vec<String> = named.iter().map(faces::Named::label).collect();
    let results: Vec<_> = faces
        .iter()
        .zip(&named)
        .map(|(face, n)| (face, &n.name, n.distance, &n.nearest_unmatched))
        .collect();
    if let Some(out) = &args.output {
        draw(&picture, &faces, &labels, out)?;
    }
    if args.json {
        let faces: Vec<Value> = results
            .iter()
            .map(|(face, name, distance, nearest)| {
                let mut v = face_json(face);
                v["name"] = json!(name);
                v["distance"] = json!(distance);
                v["nearest_unmatched"] = json!(nearest);
                v
            })
            .collect();
        println!(
            "{}",
            json!({"image": args.image, "threshold": args.threshold, "faces": faces})
        );
        return Ok(());
    }
    for (i, (face, name, distance, nearest)) in results.iter().enumerate() {
        let who = match (name, distance, nearest) {
            (Some(n), Some(d), _) => format!("{n} (distance {d:.3})"),
            (None, Some(d), Some(n)) => format!("unknown (nearest {n} at {d:.3})"),
            _ => "unknown (the gallery is empty)".to_string(),
        };
        println!("face {}: {who}; {}", i + 1, describe(face));
    }
    Ok(())
}

fn list(args: ListArgs) -> Result<()> {
    let gallery = Gallery::open(&args.gallery.gallery)?;
    let people = gallery.people()?;
    if args.json {
        println!(
            "{}",
            json!({"gallery": args.gallery.gallery, "people": people})
        );
        return Ok(());
    }
    if people.is_empty() {
        println!("{}: nobody enrolled", args.gallery.gallery.display());
    }
    for p in &people {
        println!(
            "{}\t{} encoding(s)\tsince {}",
            p.name, p.encodings, p.created_at
        );
    }
    Ok(())
}

fn remove(args: RemoveArgs) -> Result<()> {
    let mut gallery = Gallery::open(&args.gallery.gallery)?;
    let removed = gallery.remove(&args.name)?;
    if args.json {
        println!("{}", json!({"name": args.name, "removed": removed}));
    } else {
        println!("removed {} ({} encoding(s))", args.name, removed);
    }
    Ok(())
}

/// The picture with each face's box, label and landmarks, written to `out`.
fn draw(picture: &RgbImage, faces: &[Face], labels: &[String], out: &Path) -> Result<()> {
    save_rgb_png(out, &faces::draw(picture, faces, labels))?;
    Ok(())
}
