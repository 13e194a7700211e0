//! `Batcher`: work that many sessions submit one item at a time, run in batches on the inference pool (the
//! face analysis of every candidate's frames: one model call for many frames is what makes a GPU pay off).
//!
//! No timer decides a batch. The first item goes to the pool at once, alone; items that come while a batch
//! runs (or waits for a worker) wait, and go together as the next batch the moment it ends. So an idle server
//! adds no delay, and a busy one batches as much as it is behind. Queue policy: each session keeps at most one
//! item in (its feed has one in flight), so the waiting items are bounded by the sessions; a batch takes at most
//! `max` of them, which bounds how long one job holds a worker that speech may be waiting for. When the pool is
//! full, the batch is refused (its receivers see their senders dropped) and the items waiting try next.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::pool::InferencePool;

type Work<I, O> = dyn Fn(Vec<I>) -> Vec<O> + Send + Sync;
type Waiting<I, O> = Vec<(I, oneshot::Sender<O>)>;

pub struct Batcher<I, O> {
    pool: Arc<InferencePool>,
    max: usize,
    /// Runs a batch: one output per item, in order.
    work: Box<Work<I, O>>,
    /// Items waiting for the next batch, and whether a batch is out (queued or running).
    state: Mutex<(Waiting<I, O>, bool)>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    pub fn new(pool: Arc<InferencePool>, max: usize, work: impl Fn(Vec<I>) -> Vec<O> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { pool, max: max.max(1), work: Box::new(work), state: Mutex::default() })
    }

    /// Queues `item` for the next batch; its output arrives on the receiver (an error if the pool refused it).
    pub fn submit(self: &Arc<Self>, item: I) -> oneshot::Receiver<O> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0.push((item, tx));
        if !state.1 {
            state.1 = true;
            let batch = self.take(&mut state.0);
            drop(state);
            self.launch(batch);
        }
        rx
    }

    fn take(&self, waiting: &mut Waiting<I, O>) -> Waiting<I, O> {
        waiting.drain(..waiting.len().min(self.max)).collect()
    }

    fn launch(self: &Arc<Self>, batch: Waiting<I, O>) {
        // Whichever way the job ends, even by a panic in the work (the pool survives it), the next batch goes.
        let next = Next(self.clone());
        let job = move || {
            let (items, senders): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
            for (tx, output) in senders.into_iter().zip((next.0.work)(items)) {
                let _ = tx.send(output);
            }
        };
        // A full pool hands the job back, dropped here: its items' receivers see their senders dropped, and
        // its `Next` tries the items waiting.
        let _ = self.pool.submit(job);
    }

    /// A batch ended: the items that waited meanwhile go next.
    fn next(self: &Arc<Self>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0.is_empty() {
            state.1 = false;
            return;
        }
        let batch = self.take(&mut state.0);
        drop(state);
        self.launch(batch);
    }
}

/// Starts the next batch when dropped: when its job ends, however it ends.
struct Next<I: Send + 'static, O: Send + 'static>(Arc<Batcher<I, O>>);

impl<I: Send + 'static, O: Send + 'static> Drop for Next<I, O> {
    fn drop(&mut self) {
        self.0.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of one worker held by a job until the returned sender sends (or is dropped).
    async fn held_pool() -> (Arc<InferencePool>, std::sync::mpsc::Sender<()>, oneshot::Receiver<Option<()>>) {
        let pool = Arc::new(InferencePool::new(1));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = pool.submit(move || release_rx.recv().ok()).ok().unwrap();
        while pool.depth() > 0 {
            tokio::task::yield_now().await;
        }
        (pool, release_tx, blocker)
    }

    #[tokio::test]
    async fn items_that_come_while_a_batch_is_out_go_together_in_the_next() {
        let (pool, release, blocker) = held_pool().await;
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::new(pool, 3, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            items.into_iter().map(|i| i * 10).collect()
        });
        let receivers: Vec<_> = (1..=6).map(|i| batcher.submit(i)).collect();
        release.send(()).unwrap();
        blocker.await.unwrap();
        let mut outputs = Vec::new();
        for rx in receivers {
            outputs.push(rx.await.expect("run, not refused"));
        }
        assert_eq!(outputs, [10, 20, 30, 40, 50, 60], "each item gets its own output");
        assert_eq!(*sizes.lock().unwrap(), [1, 3, 2], "the first alone, then the waiting ones, at most 3 a batch");

        // Idle again: the next item goes at once, alone.
        assert_eq!(batcher.submit(7).await.unwrap(), 70);
        assert_eq!(sizes.lock().unwrap().last(), Some(&1));
    }

    #[tokio::test]
    async fn a_full_pool_refuses_the_batch_and_the_batcher_recovers() {
        let (pool, release, blocker) = held_pool().await;
        let mut queued = Vec::new();
        while let Ok(rx) = pool.submit(|| ()) {
            queued.push(rx);
        }
        let batcher = Batcher::new(pool.clone(), 8, |items: Vec<u32>| items);
        assert!(batcher.submit(1).await.is_err(), "refused: the sender is dropped, nothing hangs");
        release.send(()).unwrap();
        blocker.await.unwrap();
        for rx in queued {
            rx.await.unwrap();
        }
        assert_eq!(batcher.submit(2).await.unwrap(), 2, "not stuck as if a batch were still out");
    }

    #[tokio::test]
    async fn work_that_panics_loses_its_batch_and_the_next_batch_still_runs() {
        let pool = Arc::new(InferencePool::new(1));
        let batcher = Batcher::new(pool, 8, |items: Vec<u32>| {
            assert!(!items.contains(&0), "a bug in the work");
            items
        });
        assert!(batcher.submit(0).await.is_err(), "the panic drops the batch's senders");
        assert_eq!(batcher.submit(5).await.unwrap(), 5, "the batcher and the pool's one worker go on");
    }
}
