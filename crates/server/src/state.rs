//! What every request shares: the models loaded at start, the gallery behind a lock, the
//! inference pool, the limits and the metrics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use burn::tensor::Device;
use convnet_apps::catalog::{self, Entry, ModelInfo, Task};
use convnet_face::gallery::Gallery;
use convnet_face::pipeline::FaceModels;
use convnet_face::recognition::ENCODING_SIZE;

use crate::config::{Limits, ServeConfig};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pool::Pool;

/// The models, loaded once; shared by every request (and, in tests, by several servers).
pub struct Models {
    pub entries: Vec<Entry>,
    /// face-api's networks and their description, with `--faces`.
    pub faces: Option<(FaceModels, ModelInfo)>,
}

impl Models {
    pub fn load(config: &ServeConfig, device: &Device) -> Result<Self> {
        let entries = catalog::open_all(&config.models, device)?;
        let faces = match config.faces {
            true => {
                let dir = match &config.face_models {
                    Some(dir) => dir.clone(),
                    None => convnet_apps::faces::default_dir()?,
                };
                let models = convnet_apps::faces::load(Some(&dir), 0.5, device)
                    .context("cannot load face-api's networks (--faces)")?;
                Some((models, catalog::faces_info(&dir)))
            }
            false => None,
        };
        Ok(Self { entries, faces })
    }

    /// Every loaded model's description, face-api's last.
    pub fn infos(&self) -> Vec<&ModelInfo> {
        let faces = self.faces.as_ref().map(|(_, info)| info);
        self.entries.iter().map(|e| &e.info).chain(faces).collect()
    }

    /// The model a request for `task` runs: the one `name`d, else the only one of that task.
    pub fn pick(&self, task: Task, name: Option<&str>) -> Result<&Entry, ApiError> {
        if let Some(name) = name {
            let entry = self
                .entries
                .iter()
                .find(|e| e.info.name == name)
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "no model named '{name}'; loaded: {}",
                        names(self.entries.iter())
                    ))
                })?;
            if entry.info.task != task {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    format!(
                        "model '{name}' serves {}, not {task}: use /v1/{}",
                        entry.info.task, entry.info.task
                    ),
                ));
            }
            return Ok(entry);
        }
        let mut fitting = self.entries.iter().filter(|e| e.info.task == task);
        match (fitting.next(), fitting.next()) {
            (Some(only), None) => Ok(only),
            (None, _) => Err(ApiError::not_found(format!(
                "no {task} model loaded: start the server with --model NAME=SOURCE"
            ))),
            (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                "several {task} models are loaded ({}): pick one with ?model=NAME",
                names(self.entries.iter().filter(|e| e.info.task == task))
            ))),
        }
    }

    /// face-api's networks, or why a faces route cannot run.
    pub fn faces(&self) -> Result<&FaceModels, ApiError> {
        self.faces
            .as_ref()
            .map(|(models, _)| models)
            .ok_or_else(|| {
                ApiError::not_found("no face models loaded: start the server with --faces")
            })
    }
}

/// The names of `entries`, for messages.
fn names<'a>(entries: impl Iterator<Item = &'a Entry>) -> String {
    entries
        .map(|e| e.info.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How one server treats requests (several servers may share one set of models).
#[derive(Debug, Clone)]
pub struct Settings {
    pub token: Option<String>,
    pub limits: Limits,
    pub workers: usize,
    pub queue: usize,
    /// The gallery file, opened when face models are loaded.
    pub gallery: PathBuf,
}

impl Settings {
    pub fn of(config: &ServeConfig) -> Self {
        Self {
            token: config.token.clone(),
            limits: config.limits,
            workers: config.workers,
            queue: config.queue(),
            gallery: config.gallery.clone(),
        }
    }
}

/// The state handlers get: cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    models: Arc<Models>,
    /// `None` inside once the server has closed it.
    gallery: Option<Mutex<Option<Gallery>>>,
    settings: Settings,
    pool: Pool,
    metrics: Metrics,
    device: Device,
}

impl AppState {
    /// Opens (or creates) the gallery when faces are served, and starts the pool.
    pub fn new(models: Arc<Models>, settings: Settings, device: Device) -> Result<Self> {
        let gallery = match models.faces {
            Some(_) => Some(Mutex::new(Some(open_gallery(&settings.gallery)?))),
            None => None,
        };
        Ok(Self(Arc::new(Inner {
            pool: Pool::new(settings.workers, settings.queue)?,
            models,
            gallery,
            settings,
            metrics: Metrics::default(),
            device,
        })))
    }

    pub fn models(&self) -> &Models {
        &self.0.models
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn pool(&self) -> &Pool {
        &self.0.pool
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// The gallery, locked for one operation (each is one SQLite transaction).
    pub fn gallery(&self) -> Result<GalleryGuard<'_>, ApiError> {
        let lock = self.0.gallery.as_ref().ok_or_else(|| {
            ApiError::not_found("no gallery: start the server with --faces (and --gallery FILE)")
        })?;
        // A panic while the lock was held left no transaction open: rusqlite rolls back what
        // it drops.
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ));
        }
        Ok(GalleryGuard(guard))
    }

    /// Closes the gallery once the last write has finished (shutdown).
    pub fn close(&self) {
        if let Some(lock) = &self.0.gallery {
            let gallery = lock.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(g) = gallery {
                tracing::info!("closed the gallery {}", g.path().display());
            }
        }
    }
}

/// The gallery while its lock is held.
pub struct GalleryGuard<'a>(MutexGuard<'a, Option<Gallery>>);

impl std::ops::Deref for GalleryGuard<'_> {
    type Target = Gallery;
    fn deref(&self) -> &Gallery {
        self.0.as_ref().expect("checked when locked")
    }
}

impl std::ops::DerefMut for GalleryGuard<'_> {
    fn deref_mut(&mut self) -> &mut Gallery {
        self.0.as_mut().expect("checked when locked")
    }
}

fn open_gallery(path: &Path) -> Result<Gallery> {
    Ok(Gallery::create_or_open(path, ENCODING_SIZE)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use convnet_apps::{Classifier, Detector, Segmenter};

    /// The models are shared by the worker threads as they are, without a lock: Burn's
    /// modules only read their parameters in a forward pass.
    #[test]
    fn the_models_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Classifier>();
        shared::<Detector>();
        shared::<Segmenter>();
        shared::<FaceModels>();
        shared::<Models>();
        shared::<AppState>();
    }

    #[test]
    fn requests_pick_the_named_model_or_the_only_one_of_their_task() {
        let models = Models {
            entries: Vec::new(),
            faces: None,
        };
        let err = models.pick(Task::Classify, None).err().unwrap();
        assert_eq!(err.status(), 404);
        assert!(
            err.message().contains("no classify model loaded"),
            "{err:?}"
        );
        let err = models.pick(Task::Detect, Some("x")).err().unwrap();
        assert_eq!(err.status(), 404);
        assert_eq!(models.faces().err().unwrap().status(), 404);
    }
}
