//! A fixed set of threads for the API's store reads (and the playlist rendering that follows a
//! read). tokio's blocking pool grows a thread whenever a task arrives while none is idle,
//! and with mimalloc every thread that allocates keeps pages of its own: under a playlist load
//! the pool grew to 20 threads and serve's peak RSS from 36 to 50 MiB. Here the threads are
//! few (two per core, 2 to 16) and always the same; more concurrent reads would only contend
//! for the same cores. Work waits in the queue, whose length the cap on requests in flight
//! bounds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Why a read produced no result.
#[derive(Debug)]
pub enum ReadFailed {
    /// The work panicked; the message is the panic's.
    Panicked(String),
    /// No reader thread could be started.
    NoThreads(String),
}

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailed::Panicked(message) => write!(f, "the request failed: {message}"),
            ReadFailed::NoThreads(error) => write!(f, "cannot start a store reader thread: {error}"),
        }
    }
}

fn pool() -> &'static Result<Sender<Job>, String> {
    static POOL: OnceLock<Result<Sender<Job>, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..(2 * cores).clamp(2, 16) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("api-read-{n}"))
                .spawn(move || work(&receiver))
                .map_err(|error| error.to_string())?;
        }
        Ok(sender)
    })
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job; a poisoned lock cannot happen (jobs run
        // outside it and catch their panics), but if it did the queue would still be usable.
        let job = match receiver.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Runs `work` on a reader thread and waits for its result without blocking the async
/// threads. Work whose requester has gone (the client hung up) is skipped.
pub async fn read<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ReadFailed> {
    let sender = pool()
        .as_ref()
        .map_err(|error| ReadFailed::NoThreads(error.clone()))?;
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        if tx.is_closed() {
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a store read panicked".to_string());
            ReadFailed::Panicked(message)
        });
        let _ = tx.send(result);
    });
    sender
        .send(job)
        .map_err(|_| ReadFailed::NoThreads("the reader threads have stopped".to_string()))?;
    rx.await
        .map_err(|_| ReadFailed::Panicked("a reader thread stopped".to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_return_results_and_panics_become_errors() {
        assert_eq!(read(|| 6 * 7).await.unwrap(), 42);
        let failed = read(|| -> u32 { panic!("bad page") }).await.unwrap_err();
        assert!(failed.to_string().contains("bad page"), "{failed}");
        // The pool survives a panic.
        assert_eq!(read(|| "still here").await.unwrap(), "still here");
    }

    #[tokio::test]
    async fn many_reads_at_once_all_finish_on_the_fixed_threads() {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..200 {
            set.spawn(read(|| {
                std::thread::current().name().unwrap_or_default().to_string()
            }));
        }
        let names: Vec<String> = set.join_all().await.into_iter().map(Result::unwrap).collect();
        assert_eq!(names.len(), 200);
        assert!(
            names.iter().all(|name| name.starts_with("api-read-")),
            "{names:?}"
        );
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert!(distinct.len() <= 16, "{} threads", distinct.len());
    }
}
