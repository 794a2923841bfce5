//! `convnet serve`: the loaded models over HTTP, with a page at `/` (`specs/serve-api.md`).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use convnet_apps::catalog::ModelArg;
use convnet_server::ServeConfig;
use convnet_server::config::{DEFAULT_MAX_BODY, DEFAULT_MAX_PIXELS, Limits, default_workers};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The address to listen on. Loopback by default: naming another one puts the models (and,
    /// with --token, the gallery) on the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,

    /// The port (0: any free one; the printed URL says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// A model to serve, as NAME=SOURCE (repeat for more): SOURCE is `tiny-face`, a checkpoint
    /// or run directory (a detector's, a segmenter's or a classifier's), `M.onnx`, or
    /// `ARCH:WEIGHTS` (a built-in architecture with a .pth, .safetensors or checkpoint file).
    #[arg(long = "model", value_name = "NAME=SOURCE")]
    models: Vec<ModelArg>,

    /// Serve face-api's networks too: /v1/faces, /v1/faces/identify and the gallery.
    #[arg(long)]
    faces: bool,

    /// The folder of face-api's models (default: third_party/face-api/model, as
    /// scripts/fetch-pretrained.sh face-api lays it out).
    #[arg(long = "models", value_name = "DIR", requires = "faces")]
    face_models: Option<PathBuf>,

    /// The SQLite gallery faces are named from (created when missing).
    #[arg(
        long,
        env = "CONVNET_GALLERY",
        default_value = "faces.sqlite",
        value_name = "FILE"
    )]
    gallery: PathBuf,

    /// Inference threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,

    /// Requests that may wait for a worker (default: 16 per worker); more are answered 503
    /// with Retry-After at once.
    #[arg(long, value_name = "N")]
    queue: Option<usize>,

    /// The bearer token gallery writes need (`Authorization: Bearer T`); without one they are
    /// refused.
    #[arg(long, env = "CONVNET_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// The largest request body in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    max_body: usize,

    /// The most pixels a picture's header may declare (checked before decoding).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "N")]
    max_pixels: u64,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    let config = ServeConfig {
        host: args.host,
        port: args.port,
        models: args.models,
        faces: args.faces,
        face_models: args.face_models,
        gallery: args.gallery,
        workers: args.workers.unwrap_or_else(default_workers),
        queue: args.queue,
        token: args.token,
        limits: Limits {
            max_body: args.max_body,
            max_pixels: args.max_pixels,
        },
    };
    config.check()?;
    if !config.host.is_loopback() {
        eprintln!(
            "warning: listening on {}, reachable from other machines; the API has no TLS",
            config.host
        );
    }
    convnet_server::run(config, device.clone(), |addr| {
        println!("convnet serving on http://{addr}/");
    })
}
