//! `convnet serve`: convnet's applications over HTTP (`specs/serve-api.md`) and the page that
//! calls them. Models load once at start; inference runs on a bounded pool; SIGTERM or Ctrl-C
//! stops accepting, finishes the requests in flight and closes the gallery.

pub mod config;
pub mod error;
pub mod metrics;
pub mod picture;
pub mod pool;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use burn::tensor::Device;

pub use config::ServeConfig;
pub use state::{AppState, Models, Settings};

use routes::{classify, detect, faces, gallery, meta, models, segment};

/// Every path and method served, as `/openapi.json` describes them.
pub const ROUTES: [(&str, &str); 15] = [
    ("/", "GET"),
    ("/assets/app.js", "GET"),
    ("/assets/style.css", "GET"),
    ("/healthz", "GET"),
    ("/metrics", "GET"),
    ("/openapi.json", "GET"),
    ("/v1/models", "GET"),
    ("/v1/classify", "POST"),
    ("/v1/detect", "POST"),
    ("/v1/segment", "POST"),
    ("/v1/faces", "POST"),
    ("/v1/faces/identify", "POST"),
    ("/v1/gallery/people", "GET"),
    ("/v1/gallery/people/{name}", "POST"),
    ("/v1/gallery/people/{name}", "DELETE"),
];

/// The routes over `state`; tests serve it on a port of their own.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings().limits.max_body;
    Router::new()
        .route("/", get(meta::index))
        .route("/assets/app.js", get(meta::app_js))
        .route("/assets/style.css", get(meta::style_css))
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .route("/v1/models", get(models::list))
        .route("/v1/classify", post(classify::classify))
        .route("/v1/detect", post(detect::detect))
        .route("/v1/segment", post(segment::segment))
        .route("/v1/faces", post(faces::encode))
        .route("/v1/faces/identify", post(faces::identify))
        .route("/v1/gallery/people", get(gallery::list))
        .route(
            "/v1/gallery/people/{name}",
            post(gallery::enrol).delete(gallery::remove),
        )
        .fallback(meta::not_found)
        .method_not_allowed_fallback(meta::method_not_allowed)
        // Forms are read by axum's multipart reader, which stops at this limit.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Loads the models, binds, tells `ready` the address, and serves until SIGTERM or Ctrl-C;
/// then finishes the requests in flight and closes the gallery.
pub async fn serve(
    config: ServeConfig,
    device: Device,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    config.check()?;
    let models = {
        let (config, device) = (config.clone(), device.clone());
        tokio::task::spawn_blocking(move || Models::load(&config, &device))
            .await
            .context("loading the models failed")??
    };
    let state = AppState::new(Arc::new(models), Settings::of(&config), device)?;
    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let shutdown = shutdown_signal()?;
    ready(listener.local_addr()?);
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the server stopped")?;
    state.close();
    Ok(())
}

/// [`serve`] on a runtime of its own, for the command line.
pub fn run(config: ServeConfig, device: Device, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("convnet-serve")
        .build()
        .context("cannot start the server's threads")?
        .block_on(serve(config, device, ready))
}

/// SIGTERM or Ctrl-C, listened for from the call on: the server calls it before announcing
/// its address, so a signal sent as soon as the URL is printed already stops it gracefully.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::info!("stopping: finishing the requests in flight");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping: finishing the requests in flight");
        })
    }
}
