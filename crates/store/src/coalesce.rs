//! Coalesced fresh reads: callers asking for the same key at the same time share one read,
//! but only a read that *starts after* they asked.
//!
//! Why: the show detail is every buyer's second request and its availability must be exact
//! when the answer leaves. A cache cannot give that; one query per request can, but under a
//! sale most of those queries ask PostgreSQL the same question within the same millisecond.
//!
//! How, per key: at most one read runs at a time. A caller that arrives while a read runs
//! joins the *next* read, which starts when the running one ends; everyone who arrives until
//! then joins it too. A read started before a caller arrived is never given to that caller,
//! so every answer reflects every write committed before its request came in, exactly as if
//! the caller had queried alone. Under load the database sees at most one read per key per
//! read time, whatever the number of callers.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{
    FutureExt,
    future::{BoxFuture, Shared},
};

type SharedRead<V, E> = Shared<BoxFuture<'static, Result<V, E>>>;

/// One read, shared by the callers that joined it before it started.
struct Batch<V, E> {
    /// Set just before the read is sent; a caller may join only while it is unset.
    started: Arc<AtomicBool>,
    read: SharedRead<V, E>,
}

/// Coalesces concurrent reads of the same key (see the module docs). Cheap to clone.
pub struct Coalescer<K, V, E> {
    /// The newest read of each key that has not finished yet.
    newest: Arc<Mutex<HashMap<K, Batch<V, E>>>>,
}

impl<K, V, E> Clone for Coalescer<K, V, E> {
    fn clone(&self) -> Self {
        Coalescer {
            newest: self.newest.clone(),
        }
    }
}

impl<K, V, E> Default for Coalescer<K, V, E> {
    fn default() -> Self {
        Coalescer {
            newest: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V, E> Coalescer<K, V, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// A coalescer with no reads yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The result of a read of `key` that starts after this call: a pending one this caller
    /// joins, or `load` (started once the key's running read, if any, has ended).
    pub async fn read<F, Fut>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let read = {
            let mut newest = lock(&self.newest);
            match newest.get(&key) {
                Some(batch) if !batch.started.load(Ordering::SeqCst) => batch.read.clone(),
                running => {
                    let previous = running.map(|b| b.read.clone());
                    let batch = self.batch(key.clone(), previous, load);
                    let read = batch.read.clone();
                    newest.insert(key, batch);
                    read
                }
            }
        };
        read.await
    }

    fn batch<F, Fut>(&self, key: K, previous: Option<SharedRead<V, E>>, load: F) -> Batch<V, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let started = Arc::new(AtomicBool::new(false));
        let newest = self.newest.clone();
        let flag = started.clone();
        let read = async move {
            if let Some(previous) = previous {
                // One read per key at a time: callers arriving meanwhile pile onto this one.
                let _ = previous.await;
            }
            flag.store(true, Ordering::SeqCst);
            let result = load().await;
            let mut newest = lock(&newest);
            if newest
                .get(&key)
                .is_some_and(|b| Arc::ptr_eq(&b.started, &flag))
            {
                newest.remove(&key); // nobody queued behind this read
            }
            result
        }
        .boxed()
        .shared();
        Batch { started, read }
    }

    /// Keys with a read pending or running (for tests).
    pub fn in_flight(&self) -> usize {
        lock(&self.newest).len()
    }
}

// A poisoned lock only means a thread panicked while holding it; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicU64, AtomicUsize},
        time::Duration,
    };

    use super::*;

    /// A read that records the value it saw when it started, then takes `delay`.
    fn slow_read(
        source: &Arc<AtomicU64>,
        reads: &Arc<AtomicUsize>,
        delay: Duration,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<u64, String>> + Send + 'static {
        let (source, reads) = (source.clone(), reads.clone());
        move || {
            async move {
                let seen = source.load(Ordering::SeqCst);
                reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                Ok(seen)
            }
            .boxed()
        }
    }

    /// Callers arriving during a read never get it: they share the next one, which sees a
    /// write made before they arrived, and the database is read twice for all of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_share_only_a_read_that_starts_after_they_arrive() {
        let c: Coalescer<i64, u64, String> = Coalescer::new();
        let source = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicUsize::new(0));
        let delay = Duration::from_millis(100);
        let first = tokio::spawn({
            let (c, read) = (c.clone(), slow_read(&source, &reads, delay));
            async move { c.read(7, read).await }
        });
        // Let the first read start and see 0, then write.
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        source.store(1, Ordering::SeqCst);
        let later: Vec<_> = (0..20)
            .map(|_| {
                let (c, read) = (c.clone(), slow_read(&source, &reads, delay));
                tokio::spawn(async move { c.read(7, read).await })
            })
            .collect();
        assert_eq!(first.await.expect("task"), Ok(0));
        for r in futures::future::join_all(later).await {
            assert_eq!(
                r.expect("task"),
                Ok(1),
                "a caller got a read older than itself"
            );
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2, "20 late callers, one read");
        assert_eq!(c.in_flight(), 0, "finished reads are forgotten");
    }

    /// Other keys are not held up, errors reach their callers, and a key reads again after
    /// an error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_are_independent_and_errors_are_shared() {
        let c: Coalescer<i64, u64, String> = Coalescer::new();
        let (a, b) = tokio::join!(
            c.read(1, || async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(1)
            }),
            async {
                let started = std::time::Instant::now();
                let v = c.read(2, || async { Ok(2) }).await;
                (v, started.elapsed())
            }
        );
        assert_eq!(a, Ok(1));
        assert_eq!(b.0, Ok(2));
        assert!(b.1 < Duration::from_millis(150), "key 2 waited for key 1");

        let failing = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<u64, _>("down".to_string())
        };
        let (x, y) = tokio::join!(c.read(3, failing), c.read(3, failing));
        assert_eq!((x, y), (Err("down".into()), Err("down".into())));
        assert_eq!(c.read(3, || async { Ok(3) }).await, Ok(3));
    }
}
