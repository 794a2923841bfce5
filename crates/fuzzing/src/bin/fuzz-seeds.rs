//! Writes the seed inputs of every fuzz target into `fuzz/corpus/TARGET/` (or the folder given
//! as the first argument): small valid files made by convnet's own writers and committed
//! fixtures, so no third-party file ever enters a corpus. `scripts/fuzz.sh seeds` runs it, then
//! adds a checkpoint that a short `convnet train` writes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use convnet_data::npy::{NpyArray, NpyData};
use convnet_weights::{StateDict, WeightTensor};

fn main() -> Result<()> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("fuzz/corpus"));
    let fixtures = repo().join("fixtures");

    let (w, h) = (12u32, 9u32);
    let picture = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 20) as u8, (y * 25) as u8, ((x + y) * 10) as u8])
    });
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    let mut jpeg = Vec::new();
    picture.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )?;
    put(&root, "image", "tiny.png", &png)?;
    put(&root, "image", "tiny.jpg", &jpeg)?;

    let labels: Vec<u8> = (0..10).collect();
    put(
        &root,
        "idx",
        "labels.idx1",
        &convnet_data::idx::encode(&[10], &labels).map_err(anyhow::Error::msg)?,
    )?;
    let pixels: Vec<u8> = (0..2 * 4 * 4).map(|v| (v * 7) as u8).collect();
    let images = convnet_data::idx::encode(&[2, 4, 4], &pixels).map_err(anyhow::Error::msg)?;
    put(&root, "idx", "images.idx3", &images)?;
    put(&root, "idx", "images.idx3.gz", &gzip(&images)?)?;

    for (name, array) in [
        (
            "f32.npy",
            NpyArray {
                shape: vec![2, 3],
                data: NpyData::F32((0..6).map(|v| v as f32).collect()),
            },
        ),
        (
            "u8.npy",
            NpyArray {
                shape: vec![4],
                data: NpyData::U8(vec![1, 2, 3, 4]),
            },
        ),
        (
            "i64.npy",
            NpyArray {
                shape: vec![2, 1],
                data: NpyData::I64(vec![-1, 7]),
            },
        ),
    ] {
        put(
            &root,
            "npy",
            name,
            &array.to_bytes().map_err(anyhow::Error::msg)?,
        )?;
    }

    copy(&repo().join("specs/conv-on-image.toml"), &root, "spec")?;
    copy(&fixtures.join("torch/weights/tiny.toml"), &root, "spec")?;
    copy(&fixtures.join("darknet/yolov3-tiny.cfg"), &root, "darknet")?;
    copy(&fixtures.join("darknet/yolov2-tiny.cfg"), &root, "darknet")?;
    copy(&fixtures.join("torch/weights/tiny.pth"), &root, "pth")?;

    let mut dict = StateDict::new("seed");
    dict.insert(
        "conv.weight",
        WeightTensor::new(vec![2, 1, 2, 2], (0..8).map(|v| v as f32 * 0.5).collect()),
    );
    dict.insert("conv.bias", WeightTensor::new(vec![2], vec![0.1, -0.1]));
    let scratch = tempfile::tempdir()?;
    let st = scratch.path().join("seed.safetensors");
    convnet_weights::write_safetensors(&dict, &st)?;
    put(
        &root,
        "safetensors",
        "seed.safetensors",
        &std::fs::read(&st)?,
    )?;

    // The tfjs target reads a two-byte manifest length, the manifest, then the shard.
    let manifest = br#"[{"paths":["group1-shard1of1"],"weights":[{"name":"conv/filter","shape":[1,1,1,2],"dtype":"float32"},{"name":"conv/bias","shape":[2],"dtype":"float32"},{"name":"q","shape":[2],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1.0}}]}]"#;
    let mut shard: Vec<u8> = [1.0f32, 2.0, 0.5, -0.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    shard.extend_from_slice(&[0, 4]);
    put(
        &root,
        "tfjs",
        "manifest-and-shard",
        &two_parts(manifest, &shard),
    )?;

    let truth = br#"{"images":[{"id":1,"width":64,"height":48}],"categories":[{"id":1,"name":"tree"},{"id":2,"name":"car"}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[2,3,10,12],"area":120,"iscrowd":0},{"id":2,"image_id":1,"category_id":2,"bbox":[20,10,8,8],"area":64,"iscrowd":0}]}"#;
    let results = br#"[{"image_id":1,"category_id":1,"bbox":[2,4,10,11],"score":0.9},{"image_id":1,"category_id":2,"bbox":[30,30,5,5],"score":0.2}]"#;
    put(
        &root,
        "coco",
        "truth-and-results",
        &two_parts(truth, results),
    )?;

    let db = scratch.path().join("gallery.db");
    {
        let mut gallery = convnet_face::gallery::Gallery::create_or_open(&db, 4)?;
        gallery.enroll("ada", &[(vec![0.1, 0.2, 0.3, 0.4], "a.jpg".into())])?;
        gallery.enroll("alan", &[(vec![0.4, 0.3, 0.2, 0.1], "b.jpg".into())])?;
    }
    put(&root, "gallery", "two-people.db", &std::fs::read(&db)?)?;
    Ok(())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn put(root: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(format!("seed-{name}")), bytes)
        .with_context(|| format!("writing a {target} seed"))
}

fn copy(file: &Path, root: &Path, target: &str) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    put(root, target, &name, &bytes)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// The layout the two-file targets split: a big-endian `u16` length, the first part, the rest.
fn two_parts(first: &[u8], second: &[u8]) -> Vec<u8> {
    let len = u16::try_from(first.len()).expect("seed parts are small");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(first);
    out.extend_from_slice(second);
    out
}
