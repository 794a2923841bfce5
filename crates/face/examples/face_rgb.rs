//! Writes the RGB bytes convnet decodes from pictures, so that face-api.js can be run on the
//! very same pixels (`scripts/face-reference.sh`):
//!
//! ```sh
//! cargo run -p convnet-face --example face_rgb -- OUT_DIR PICTURE...
//! ```
//!
//! Each picture becomes `OUT_DIR/<file stem>.rgb` (row-major, 3 bytes a pixel, no header) and a
//! line of `OUT_DIR/pixels.json` gives its size. Pictures are read by the one decoder every
//! convnet command uses (`convnet_vision::image_io::decode_image`), then turned into 8-bit RGB
//! as the face pipeline takes them.

use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((out, pictures)) = args.split_first().filter(|(_, p)| !p.is_empty()) else {
        eprintln!("usage: face_rgb OUT_DIR PICTURE...");
        std::process::exit(2);
    };
    if let Err(e) = run(out, pictures) {
        eprintln!("face_rgb: {e}");
        std::process::exit(1);
    }
}

fn run(out: &Path, pictures: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let mut index = Vec::new();
    for path in pictures {
        let rgb = convnet_vision::image_io::decode_image(path)?.to_rgb8();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no file name", path.display()))?;
        let file = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or(stem)
            .to_string();
        std::fs::write(out.join(format!("{stem}.rgb")), rgb.as_raw())?;
        index.push(serde_json::json!({
            "file": file,
            "rgb": format!("{stem}.rgb"),
            "width": rgb.width(),
            "height": rgb.height(),
        }));
        println!("{}: {}x{}", path.display(), rgb.width(), rgb.height());
    }
    std::fs::write(
        out.join("pixels.json"),
        serde_json::to_string_pretty(&index)?,
    )?;
    Ok(())
}
