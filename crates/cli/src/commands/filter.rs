//! `convnet filter`: run a hand-designed filter over an image, as a CNN's convolution would.

use anyhow::Result;
use burn::tensor::Device;
use convnet_layers::Padding;
use convnet_vision::image_io::check_png_path;
use convnet_vision::{Kernel, Plane, apply, load_grey, save_grey_png};
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaddingArg {
    /// No padding: an HxW image and a khxkw kernel give (H-kh+1)x(W-kw+1).
    Valid,
    /// Zero padding that keeps the image's size.
    Same,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
The image is read as greyscale, pixel values 0..255. The kernel is not flipped \
(cross-correlation, as in CNNs): `vertical` responds positively where the image is brighter on \
the left. The response is written stretched for viewing, its minimum black and its maximum \
white; the raw minimum and maximum are printed.

Example: convnet filter photo.png --kernel sobel-x -o edges.png")]
pub struct Args {
    /// The image: PNG or JPEG.
    image: PathBuf,

    /// vertical, horizontal, sobel-x, sobel-y, scharr-x, scharr-y, or a JSON file holding a 2D
    /// array of numbers, e.g. [[0, 1], [-1, 0]].
    #[arg(short, long)]
    kernel: String,

    /// valid (no padding, the output shrinks) or same (zero padding, the output keeps the size).
    #[arg(long, value_enum, default_value_t = PaddingArg::Valid)]
    padding: PaddingArg,

    /// Where to write the response, a PNG file.
    #[arg(short, long, value_name = "OUT.png")]
    output: PathBuf,

    /// Print what was done as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    check_png_path(&args.output)?;
    let kernel = Kernel::parse(&args.kernel)?;
    let image = load_grey(&args.image, device)?;
    let [_, _, h, w] = image.dims();
    let padding = match args.padding {
        PaddingArg::Valid => Padding::Valid,
        PaddingArg::Same => Padding::Same,
    };
    let response = apply(image, &kernel, padding.clone())?;
    let [_, _, oh, ow] = response.dims();
    let plane = Plane::from_tensor(response.reshape([oh, ow]))?;
    let scale = save_grey_png(&args.output, &plane)?;

    if args.json {
        let kernel_rows: Vec<&[f32]> = kernel.values.chunks(kernel.cols).collect();
        let v = serde_json::json!({
            "image": args.image.display().to_string(),
            "input": [h, w],
            "kernel": { "name": kernel.name, "size": [kernel.rows, kernel.cols], "values": kernel_rows },
            "padding": padding.to_string(),
            "output": [oh, ow],
            "min": scale.min,
            "max": scale.max,
            "written": args.output.display().to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {h}x{w} grey  *  {kernel}  (padding {padding})  ->  {oh}x{ow}",
            args.image.display()
        );
        println!(
            "response min {}, max {} (written as 0..255: min black, max white)",
            scale.min, scale.max
        );
        println!("wrote {}", args.output.display());
    }
    Ok(())
}
