//! `InferencePool`: a fixed set of worker threads (one per core) with one bounded queue, where the speech
//! pipelines' blocking work runs. Nothing CPU-heavy runs on the async runtime. A full queue refuses new work at
//! once (`submit` hands the job back); callers keep their audio and submit more of it later, so audio is never
//! dropped by the pool. `load` lets a running job see how busy the pool is (workers running, jobs waiting), so
//! it can take a second thread only when a core is free, and drop optional work when others wait.
//!
//! Work someone is waiting for (the interviewer's next sentence, the audio of a turn that may be ending) goes in
//! with `submit_urgent`: it runs on the next worker that comes free, ahead of the queue of audio chunks and
//! partial transcripts. `PoolLoad::urgent_waiting` counts such jobs still waiting for a worker, so optional
//! work already running (a partial transcript) can give way to them.
//!
//! At process exit, C++ inference libraries (whisper.cpp's ggml, ONNX Runtime) destroy their static state; a
//! job still running then crashes the process. So each pool registers an exit handler that stops workers from
//! starting jobs and waits (a few seconds at most) for the running ones to finish. Exit handlers run in reverse
//! order of registration, so the handler must come after the libraries' statics: pools are made after the
//! models have been loaded and run once (`Engines::load`). A job that panics loses its result, not its worker.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// What the queue carries: a job, or word that an urgent job is waiting (each urgent job sends one, so every
/// job has a message and a worker to run it; whichever worker takes a message runs an urgent job first).
enum Message {
    Job(Job),
    Urgent,
}

/// Jobs running in any pool of the process, and whether the process is exiting.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);
/// The longest the exit waits for running jobs (a final decode takes well under a second).
const EXIT_WAIT: Duration = Duration::from_secs(5);

extern "C" fn finish_running_jobs() {
    EXITING.store(true, Ordering::SeqCst);
    let started = Instant::now();
    while RUNNING.load(Ordering::SeqCst) > 0 && started.elapsed() < EXIT_WAIT {
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub struct InferencePool {
    queue: SyncSender<Message>,
    urgent: Arc<std::sync::Mutex<std::collections::VecDeque<Job>>>,
    depth: Arc<AtomicI64>,
    busy: Arc<AtomicUsize>,
    /// Urgent jobs waiting for a worker (the lane's length, readable without its lock).
    urgent_waiting: Arc<AtomicUsize>,
    workers: usize,
}

impl InferencePool {
    /// Jobs waiting per worker before the pool refuses more: a few 100 ms chunks per live stream.
    const QUEUE_PER_WORKER: usize = 32;

    pub fn new(workers: usize) -> Self {
        // SAFETY: `atexit` takes a plain function that lives as long as the program; registering it again is
        // harmless (it is idempotent).
        unsafe {
            libc::atexit(finish_running_jobs);
        }
        let workers = workers.max(1);
        let (queue, jobs) = sync_channel::<Message>(workers * Self::QUEUE_PER_WORKER);
        let jobs = Arc::new(std::sync::Mutex::new(jobs));
        let urgent: Arc<std::sync::Mutex<std::collections::VecDeque<Job>>> = Arc::default();
        let urgent_waiting = Arc::new(AtomicUsize::new(0));
        let depth = Arc::new(AtomicI64::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        for index in 0..workers {
            let jobs = jobs.clone();
            let depth = depth.clone();
            let (urgent, urgent_waiting) = (urgent.clone(), urgent_waiting.clone());
            std::thread::Builder::new()
                .name(format!("candor-inference-{index}"))
                .spawn(move || {
                    loop {
                        let message = { jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() };
                        let Ok(message) = message else { return };
                        depth.fetch_sub(1, Ordering::Relaxed);
                        // Counted before the check, so the exit handler either waits for this job or stops it.
                        RUNNING.fetch_add(1, Ordering::SeqCst);
                        if EXITING.load(Ordering::SeqCst) {
                            RUNNING.fetch_sub(1, Ordering::SeqCst);
                            return;
                        }
                        let first = {
                            let mut lane = urgent.lock().unwrap_or_else(|p| p.into_inner());
                            let first = lane.pop_front();
                            urgent_waiting.store(lane.len(), Ordering::Relaxed);
                            first
                        };
                        first.into_iter().chain(match message {
                            Message::Job(job) => Some(job),
                            Message::Urgent => None,
                        })
                        .for_each(|job| job());
                        RUNNING.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .expect("a worker thread can be spawned");
        }
        Self { queue, urgent, depth, busy, urgent_waiting, workers }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs waiting for a worker.
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether a job submitted now would start at once: the running jobs and the queued ones leave a worker
    /// (a job just queued counts even while the idle worker that will take it is still waking up).
    pub fn has_free_worker(&self) -> bool {
        self.busy.load(Ordering::Relaxed) as i64 + self.depth().max(0) < self.workers as i64
    }

    /// A view of the pool's load for a running job to look at: workers busy (counting itself) and jobs waiting.
    pub fn load(&self) -> PoolLoad {
        PoolLoad { busy: self.busy.clone(), waiting: self.depth.clone(), urgent_waiting: self.urgent_waiting.clone() }
    }

    /// Queues `job`; its result arrives on the returned channel. A full pool hands the job back untouched.
    pub fn submit<F, T>(&self, job: F) -> Result<oneshot::Receiver<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(job, false)
    }

    /// As `submit`, but the job runs on the next worker that comes free, before the jobs already queued.
    pub fn submit_urgent<F, T>(&self, job: F) -> Result<oneshot::Receiver<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(job, true)
    }

    fn enqueue<F, T>(&self, job: F, urgent: bool) -> Result<oneshot::Receiver<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let slot = Arc::new(std::sync::Mutex::new(Some(job)));
        let (taken, busy) = (slot.clone(), self.busy.clone());
        let wrapped: Job = Box::new(move || {
            if let Some(job) = taken.lock().unwrap_or_else(|p| p.into_inner()).take() {
                busy.fetch_add(1, Ordering::Relaxed);
                // A job that panics loses its result (its receiver sees the sender dropped), not the worker.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                // No longer counted before anyone sees the result: its receiver may look at the load at once
                // (submit the next chunk, or decide whether a worker is free).
                busy.fetch_sub(1, Ordering::Relaxed);
                match result {
                    Ok(result) => {
                        let _ = tx.send(result);
                    }
                    Err(_) => tracing::error!("an inference job panicked; its result is lost, its worker goes on"),
                }
            }
        });
        self.depth.fetch_add(1, Ordering::Relaxed);
        let message = if urgent {
            // Under the lock while the message goes in: a worker cannot take the job before it is counted.
            let mut lane = self.urgent.lock().unwrap_or_else(|p| p.into_inner());
            lane.push_back(wrapped);
            let sent = self.queue.try_send(Message::Urgent);
            if sent.is_err() {
                lane.pop_back();
            }
            self.urgent_waiting.store(lane.len(), Ordering::Relaxed);
            sent
        } else {
            self.queue.try_send(Message::Job(wrapped))
        };
        match message {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                let job = slot.lock().unwrap_or_else(|p| p.into_inner()).take().expect("the job was not run");
                Err(job)
            }
        }
    }
}

/// Cores the whole machine (every process) left idle lately, refreshed at most every `SPARE_EVERY`; 0 where
/// `/proc/stat` cannot be read. The pool's own counts miss other processes, and whisper.cpp's threads spin
/// when they share a core, so work that takes extra threads on speculation asks this first.
pub fn spare_cores() -> f32 {
    static LAST: std::sync::Mutex<Option<(Instant, u64, u64, f32)>> = std::sync::Mutex::new(None);
    const SPARE_EVERY: Duration = Duration::from_millis(500);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, _, _, spare)) = *last
        && at.elapsed() < SPARE_EVERY
    {
        return spare;
    }
    let Some((idle, total)) = cpu_times() else { return 0.0 };
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f32;
    let spare = match *last {
        Some((_, idle_before, total_before, _)) if total > total_before => {
            (idle.saturating_sub(idle_before)) as f32 / (total - total_before) as f32 * cores
        }
        _ => 0.0,
    };
    *last = Some((Instant::now(), idle, total, spare));
    spare
}

/// The machine's idle and total CPU time so far (jiffies, all cores), from the first line of `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let times: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).take(8).filter_map(|t| t.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    (times.len() == 8).then(|| (times[3] + times[4], times.iter().sum()))
}

#[derive(Clone)]
pub struct PoolLoad {
    busy: Arc<AtomicUsize>,
    waiting: Arc<AtomicI64>,
    urgent_waiting: Arc<AtomicUsize>,
}

impl PoolLoad {
    /// Jobs running and jobs waiting for a worker.
    pub fn counts(&self) -> (usize, i64) {
        (self.busy.load(Ordering::Relaxed), self.waiting.load(Ordering::Relaxed))
    }

    /// Other jobs running besides the caller's, and jobs waiting for a worker.
    pub fn others(&self) -> (usize, i64) {
        (self.busy.load(Ordering::Relaxed).saturating_sub(1), self.waiting.load(Ordering::Relaxed))
    }

    /// Urgent jobs waiting for a worker.
    pub fn urgent_waiting(&self) -> usize {
        self.urgent_waiting.load(Ordering::Relaxed)
    }
}

/// The result of an in-flight job, or `None` if the job was lost (it panicked, or the process is exiting);
/// pending forever while nothing is in flight, so it can sit in a `select!` beside other work.
pub async fn completion<T>(in_flight: &mut Option<oneshot::Receiver<T>>) -> Option<T> {
    match in_flight.as_mut() {
        Some(rx) => rx.await.ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_idle_cores_are_read_and_stay_within_its_cores() {
        let (idle, total) = cpu_times().expect("/proc/stat on Linux");
        assert!(idle <= total && total > 0);
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f32;
        for _ in 0..3 {
            let spare = spare_cores();
            assert!((0.0..=cores + 0.01).contains(&spare), "{spare} of {cores}");
        }
    }

    #[tokio::test]
    async fn jobs_run_off_the_runtime_and_return_their_results() {
        let pool = InferencePool::new(2);
        let load = pool.load();
        let job = move || (std::thread::current().name().unwrap_or_default().to_string(), load.others());
        let (name, others) = pool.submit(job).ok().unwrap().await.unwrap();
        assert!(name.starts_with("candor-inference-"));
        assert_eq!(others, (0, 0), "alone: nothing else running or waiting");
    }

    #[tokio::test]
    async fn an_urgent_job_runs_before_the_jobs_already_queued() {
        let pool = InferencePool::new(1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = pool.submit(move || release_rx.recv().ok()).ok().unwrap();
        while pool.depth() > 0 {
            tokio::task::yield_now().await;
        }
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Each job notes its name and the urgent jobs waiting while it runs.
        let run = |name: &'static str| {
            let (order, load) = (order.clone(), pool.load());
            move || order.lock().unwrap().push((name, load.urgent_waiting()))
        };
        let queued: Vec<_> = ["chunk 1", "chunk 2", "chunk 3"].into_iter().map(|n| pool.submit(run(n)).ok().unwrap()).collect();
        assert_eq!(pool.load().urgent_waiting(), 0);
        let urgent = pool.submit_urgent(run("sentence")).ok().unwrap();
        assert_eq!(pool.load().urgent_waiting(), 1, "a running partial can give way to it");
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        urgent.await.unwrap();
        for rx in queued {
            rx.await.unwrap();
        }
        let ran = order.lock().unwrap().clone();
        assert_eq!(ran, [("sentence", 0), ("chunk 1", 0), ("chunk 2", 0), ("chunk 3", 0)], "no longer waiting once taken");
        assert_eq!(pool.depth(), 0, "every message was taken");
    }

    #[tokio::test]
    async fn a_full_pool_hands_the_job_back() {
        let pool = InferencePool::new(1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = pool.submit(move || release_rx.recv().ok()).ok().unwrap();
        // Wait until the worker holds the blocker, then fill the queue.
        while pool.depth() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.load().others(), (0, 0), "the blocker runs; seen from outside, busy counts it");
        let mut queued = Vec::new();
        for i in 0..InferencePool::QUEUE_PER_WORKER {
            queued.push(pool.submit(move || i).ok().expect("room in the queue"));
        }
        assert_eq!(pool.load().others().1, InferencePool::QUEUE_PER_WORKER as i64, "jobs waiting");
        let refused = pool.submit(|| 99);
        assert!(refused.is_err(), "the bound holds");
        assert_eq!(refused.err().map(|job| job()), Some(99), "the job comes back intact");
        assert!(pool.submit_urgent(|| 98).is_err(), "urgent jobs too");
        assert_eq!(pool.load().urgent_waiting(), 0, "a refused urgent job is not left counted");
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        for (i, rx) in queued.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), i);
        }
    }

    #[tokio::test]
    async fn a_job_that_panics_loses_its_result_but_not_its_worker() {
        let pool = InferencePool::new(1);
        let lost = pool.submit(|| -> u32 { panic!("a bug in an engine") }).ok().unwrap();
        assert!(lost.await.is_err(), "the receiver hears of it");
        assert_eq!(pool.submit(|| 7).ok().unwrap().await.unwrap(), 7, "the one worker still runs jobs");
        let mut in_flight = Some(pool.submit(|| -> u32 { panic!("again") }).ok().unwrap());
        assert_eq!(completion(&mut in_flight).await, None, "whoever waits for it hears it was lost, not nothing");
        assert_eq!(pool.load().counts(), (0, 0), "nothing left counted as busy");
    }

    #[test]
    fn a_job_is_no_longer_counted_once_its_result_can_be_seen() {
        let pool = InferencePool::new(1);
        let load = pool.load();
        // Its receiver acts at once (submits the next chunk, asks whether a worker is free): a count that went
        // down only after the result was handed over made the pool look busy then, now and again.
        for i in 0..2000 {
            let mut rx = pool.submit(move || i).ok().unwrap();
            let result = loop {
                match rx.try_recv() {
                    Ok(result) => break result,
                    Err(oneshot::error::TryRecvError::Empty) => std::hint::spin_loop(),
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!((result, load.counts()), (i, (0, 0)));
        }
    }

    #[tokio::test]
    async fn a_worker_is_free_while_the_running_and_queued_jobs_leave_one() {
        let pool = InferencePool::new(2);
        assert!(pool.has_free_worker());
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        let block = || {
            let release_rx = release_rx.clone();
            pool.submit(move || release_rx.lock().unwrap().recv().ok()).ok().unwrap()
        };
        let first = block();
        assert!(pool.has_free_worker(), "one of two runs (or is about to)");
        let second = block();
        assert!(!pool.has_free_worker(), "both taken, whether running or still queued");
        release_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        first.await.unwrap();
        second.await.unwrap();
        assert!(pool.has_free_worker());
    }
}
