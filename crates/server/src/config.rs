//! What `convnet serve` was asked to do: where to listen, what to load, and the limits it
//! holds requests to.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use anyhow::{Result, bail};
use convnet_apps::catalog::ModelArg;

/// The largest request body taken by default (20 MiB).
pub const DEFAULT_MAX_BODY: usize = 20 << 20;
/// The most pixels a picture's header may declare by default (40 megapixels).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// Requests that may wait for an inference worker, per worker, unless `--queue` says: enough
/// for a few dozen clients at once on a small machine, each waiting at most a few seconds.
pub const QUEUE_PER_WORKER: usize = 16;

/// How large a request may be, checked before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body: usize,
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Loopback unless the user names another address.
    pub host: IpAddr,
    /// 0 lets the system pick a free port (tests).
    pub port: u16,
    pub models: Vec<ModelArg>,
    /// Load face-api's networks (detector, landmarks, encoder) for `/v1/faces…`.
    pub faces: bool,
    /// The folder of face-api's models; default: where the fetch script puts them.
    pub face_models: Option<PathBuf>,
    /// The SQLite gallery the faces are named from (opened with `faces`).
    pub gallery: PathBuf,
    /// Inference threads.
    pub workers: usize,
    /// Requests that may wait for a worker; default [`QUEUE_PER_WORKER`] per worker.
    pub queue: Option<usize>,
    /// The bearer token gallery writes need; without one they are refused.
    pub token: Option<String>,
    pub limits: Limits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            models: Vec::new(),
            faces: false,
            face_models: None,
            gallery: PathBuf::from("faces.sqlite"),
            workers: default_workers(),
            queue: None,
            token: None,
            limits: Limits::default(),
        }
    }
}

/// One inference worker per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ServeConfig {
    /// Refuses settings no server can run with, before any model loads.
    pub fn check(&self) -> Result<()> {
        if self.models.is_empty() && !self.faces {
            bail!("nothing to serve: give --model NAME=SOURCE (one or more) or --faces");
        }
        if self.workers == 0 || self.workers > 1024 {
            bail!("--workers must lie in 1..=1024, not {}", self.workers);
        }
        if self.queue.is_some_and(|q| q > 1_000_000) {
            bail!("--queue must be at most 1000000");
        }
        if self.limits.max_body == 0 || self.limits.max_pixels == 0 {
            bail!("--max-body and --max-pixels must be at least 1");
        }
        if let Some(token) = &self.token
            && (token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bail!("--token must be non-empty, without spaces or control characters");
        }
        Ok(())
    }

    /// Requests that may wait for a worker before more are refused.
    pub fn queue(&self) -> usize {
        self.queue.unwrap_or(QUEUE_PER_WORKER * self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_no_server_can_run_with_are_refused() {
        let faces = ServeConfig {
            faces: true,
            ..ServeConfig::default()
        };
        assert!(faces.check().is_ok());
        assert_eq!(faces.queue(), QUEUE_PER_WORKER * faces.workers);
        let queued = ServeConfig {
            queue: Some(3),
            ..faces.clone()
        };
        assert_eq!(queued.queue(), 3);
        let err = |c: ServeConfig| c.check().unwrap_err().to_string();
        assert!(err(ServeConfig::default()).contains("nothing to serve"));
        assert!(
            err(ServeConfig {
                workers: 0,
                ..faces.clone()
            })
            .contains("--workers")
        );
        assert!(
            err(ServeConfig {
                token: Some("a b".into()),
                ..faces.clone()
            })
            .contains("--token")
        );
        assert!(
            err(ServeConfig {
                limits: Limits {
                    max_body: 0,
                    max_pixels: 1
                },
                ..faces
            })
            .contains("--max-body")
        );
    }
}
