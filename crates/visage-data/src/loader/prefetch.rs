//! Prefetching: [`EpochIter`], the producer thread that makes an epoch's batches in order and
//! the bounded channel they wait in, and the drop that stops the producer early.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::DataError;

use super::batch::Batch;
use super::Inner;

/// Iterator over one epoch's batches (see [`Loader::epoch`](super::Loader::epoch)).
pub struct EpochIter {
    rx: Option<Receiver<Result<Batch, DataError>>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
    spawn_error: Option<DataError>,
    prepared: Arc<AtomicUsize>,
}

impl EpochIter {
    /// Starts the producer thread of `epoch`'s batches `first..batches`, which waits whenever
    /// `prefetch_batches` finished ones fill the channel. A thread that cannot be spawned is
    /// reported by the first [`Iterator::next`].
    pub(super) fn start(
        inner: Arc<Inner>,
        epoch: usize,
        first: usize,
        batches: usize,
    ) -> EpochIter {
        let prepared = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&prepared);
        let (tx, rx) = sync_channel(inner.cfg.prefetch_batches);
        let handle = std::thread::Builder::new()
            .name("visage-data-prefetch".into())
            .spawn(move || {
                let order = inner.order(epoch);
                for b in first..batches {
                    let item = inner.batch(epoch, &order, b);
                    counter.fetch_add(1, Ordering::SeqCst);
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            });
        match handle {
            Ok(h) => EpochIter {
                rx: Some(rx),
                handle: Some(h),
                remaining: batches.saturating_sub(first),
                spawn_error: None,
                prepared,
            },
            Err(e) => EpochIter {
                rx: None,
                handle: None,
                remaining: 0,
                spawn_error: Some(DataError::Worker(format!(
                    "cannot spawn the prefetch thread: {e}"
                ))),
                prepared,
            },
        }
    }

    /// Batches the producer thread has finished so far (received or waiting in the channel).
    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::SeqCst)
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.spawn_error.take() {
            return Some(Err(e));
        }
        let rx = self.rx.as_ref()?;
        match rx.recv() {
            Ok(item) => {
                self.remaining = if item.is_ok() {
                    self.remaining.saturating_sub(1)
                } else {
                    0
                };
                Some(item)
            }
            Err(_) => {
                self.rx = None;
                let panicked = self.handle.take().is_some_and(|h| h.join().is_err());
                let unfinished = std::mem::take(&mut self.remaining) > 0;
                (panicked || unfinished).then(|| {
                    Err(DataError::Worker(
                        "the prefetch thread stopped early (panic)".into(),
                    ))
                })
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (
            0,
            Some(self.remaining + self.spawn_error.is_some() as usize),
        )
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Closing the channel makes the producer stop at its next send.
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
