//! Bounded inference: at most `workers` jobs run at once, each on a blocking thread, and at most
//! `queue` more wait for one; a job beyond that is refused at once, so a burst of requests
//! costs the client a quick 503 rather than the server its memory.
//!
//! Each job runs inside one rayon pool shared by the workers: the CPU kernels split their work
//! over the pool they run in, and called from outside one they queue their jobs and sleep on a
//! lock for every tensor operation (`crates/cli/src/main.rs`, BENCHMARKS issue 10).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use tokio::sync::Semaphore;

/// Why a job did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    Busy,
    /// The job panicked.
    Failed(String),
}

#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    /// One permit per worker: held while a job runs.
    workers: Arc<Semaphore>,
    /// One permit per job running or waiting: `workers + queue` in all.
    admitted: Arc<Semaphore>,
    compute: rayon::ThreadPool,
    waiting: AtomicUsize,
    running: AtomicUsize,
}

/// Counts a job in `counter` while alive, also when its future is dropped or it unwinds.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn new(workers: usize, queue: usize) -> Result<Self> {
        let compute = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("convnet-compute-{i}"))
            .build()
            .context("cannot start the compute threads")?;
        Ok(Self {
            inner: Arc::new(Inner {
                workers: Arc::new(Semaphore::new(workers)),
                admitted: Arc::new(Semaphore::new(workers + queue)),
                compute,
                waiting: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `job` on a worker once one is free, or refuses it at once when the queue is full.
    /// A job keeps its worker until it returns, even when the request that asked for it goes
    /// away, so the worker count stays true.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let admitted = Arc::clone(&self.inner.admitted)
            .try_acquire_owned()
            .map_err(|_| PoolError::Busy)?;
        let worker = {
            let _waiting = Counted::new(&self.inner.waiting);
            Arc::clone(&self.inner.workers)
                .acquire_owned()
                .await
                .map_err(|e| PoolError::Failed(e.to_string()))?
        };
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permits = (admitted, worker);
            let _running = Counted::new(&inner.running);
            inner.compute.install(job)
        })
        .await
        .map_err(|e| PoolError::Failed(format!("an inference job failed: {e}")))
    }

    /// Jobs waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Jobs running.
    pub fn in_flight(&self) -> usize {
        self.inner.running.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_drains_in_order() {
        let pool = Pool::new(1, 2).unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let mut jobs = Vec::new();
        for i in 0..3 {
            let (pool, gate) = (pool.clone(), Arc::clone(&gate));
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    gate.lock().unwrap().recv().unwrap();
                    i
                })
                .await
            }));
        }
        // One running, two waiting: the next is refused without waiting.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while (pool.in_flight(), pool.queue_depth()) != (1, 2) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the jobs never queued"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.run(|| 9).await, Err(PoolError::Busy));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        let mut done = Vec::new();
        for job in jobs {
            done.push(job.await.unwrap().unwrap());
        }
        done.sort();
        assert_eq!(done, [0, 1, 2]);
        assert_eq!((pool.in_flight(), pool.queue_depth()), (0, 0));
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let pool = Pool::new(1, 0).unwrap();
        let failed = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(PoolError::Failed(_))), "{failed:?}");
        assert_eq!(pool.run(|| 1).await, Ok(1));
        assert_eq!(pool.in_flight(), 0);
    }
}
