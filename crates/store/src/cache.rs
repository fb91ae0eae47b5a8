//! The read-through cache of the public reads: Redis (shared by every API process, TTL 300 s
//! like the original's Django cache) with a small in-process first level in front of it.
//!
//! Why two levels: a cached show list is hundreds of kilobytes; fetching it from Redis on
//! every request costs more than serving it. The first level keeps the serialised bytes for
//! at most [`L1_MAX_AGE`], so another process's invalidation is seen within that time, and
//! this process's own invalidations at once.
//!
//! Invalidation is by generation: every key embeds the current generation number, and a
//! write anywhere bumps it (`INCR`), so all cached reads become unreachable at once and age
//! out by TTL. Writes are rare, reads are many; this trades a little memory for never
//! forgetting to delete a key.
//!
//! Refills are single-flight per key: when a first-level entry ages out under load, one
//! request fetches it (from Redis, or the database) and the others wait for that copy, instead
//! of every in-flight request pulling the same megabyte from Redis at once (which was the
//! cached list's p99 under 64 connections).
//!
//! When Redis is down, reads fall through to PostgreSQL (counted as
//! `pique_cache_errors_total`), and Redis is not tried again for [`REDIS_RETRY_AFTER`], so a
//! dead Redis costs one failed call per second, not one per request.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use redis::{AsyncCommands, aio::ConnectionManager};
use tokio::sync::OnceCell;

/// Longest time a first-level entry is served without asking Redis.
pub const L1_MAX_AGE: Duration = Duration::from_secs(1);
/// After a Redis error, how long to skip Redis.
pub const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Largest number of first-level entries (the public reads have few distinct keys).
const L1_CAPACITY: usize = 2_048;
/// Largest total size of first-level entries: a full show list is about a megabyte per
/// thousand shows, and clients can make many distinct filtered lists.
const L1_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Where a cached value came from, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// The in-process first level.
    Local,
    /// Redis.
    Redis,
    /// Neither: the loader ran.
    Miss,
}

/// The in-process level: entries plus their total size, kept under [`L1_MAX_BYTES`].
#[derive(Default)]
struct LocalLevel {
    entries: HashMap<String, LocalEntry>,
    bytes: usize,
}

impl LocalLevel {
    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn insert(&mut self, key: String, entry: LocalEntry) {
        let size = entry.bytes.len();
        if size > L1_MAX_BYTES / 4 {
            return; // too big to be worth a quarter of the budget; Redis still has it
        }
        if self.entries.len() >= L1_CAPACITY || self.bytes + size > L1_MAX_BYTES {
            self.entries.retain(|_, e| e.stored.elapsed() < L1_MAX_AGE);
            self.bytes = self.entries.values().map(|e| e.bytes.len()).sum();
            if self.entries.len() >= L1_CAPACITY || self.bytes + size > L1_MAX_BYTES {
                self.clear();
            }
        }
        self.bytes += size;
        if let Some(old) = self.entries.insert(key, entry) {
            self.bytes -= old.bytes.len();
        }
    }
}

struct LocalEntry {
    bytes: Bytes,
    generation: u64,
    stored: Instant,
}

struct Inner {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    ttl: Duration,
    socket_timeout: Duration,
    local: RwLock<LocalLevel>,
    generation: AtomicU64,
    generation_checked: RwLock<Option<Instant>>,
    redis_down_until: RwLock<Option<Instant>>,
    /// One gate per key being refilled; see [`Cache::refill_gate`].
    refills: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A cheap-to-clone handle on the cache.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

/// A request's turn to refill a key: holds the key's gate and gives it back on drop, also
/// when the request is cancelled mid-refill.
struct RefillTurn<'a> {
    cache: &'a Cache,
    key: &'a str,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RefillTurn<'_> {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let gate = tokio::sync::OwnedMutexGuard::mutex(&guard).clone();
            drop(guard);
            self.cache.release_refill_gate(self.key, &gate);
        }
    }
}

impl Cache {
    /// A cache on `redis_url` whose keys all start with `prefix` (tests use a unique one).
    ///
    /// Does not connect: the first use does, so the API starts even while Redis is down.
    pub fn new(
        redis_url: &str,
        prefix: &str,
        ttl: Duration,
        socket_timeout: Duration,
    ) -> Result<Cache, redis::RedisError> {
        Ok(Cache {
            inner: Arc::new(Inner {
                client: redis::Client::open(redis_url)?,
                conn: OnceCell::new(),
                prefix: prefix.to_string(),
                ttl,
                socket_timeout,
                local: RwLock::new(LocalLevel::default()),
                generation: AtomicU64::new(0),
                generation_checked: RwLock::new(None),
                redis_down_until: RwLock::new(None),
                refills: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// A Redis connection, or `None` while Redis is considered down.
    pub async fn connection(&self) -> Option<ConnectionManager> {
        if self.redis_is_down() {
            return None;
        }
        let inner = &self.inner;
        let conn = inner
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.socket_timeout))
                    .set_response_timeout(Some(inner.socket_timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(inner.client.clone(), config).await
            })
            .await;
        match conn {
            Ok(c) => Some(c.clone()),
            Err(e) => {
                self.mark_redis_down(&e);
                None
            }
        }
    }

    /// Whether Redis answers `PING` (for `/health/`).
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection_ignoring_breaker().await else {
            return false;
        };
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
        match pong {
            Ok(_) => {
                *write(&self.inner.redis_down_until) = None;
                true
            }
            Err(e) => {
                self.mark_redis_down(&e);
                false
            }
        }
    }

    async fn connection_ignoring_breaker(&self) -> Option<ConnectionManager> {
        *write(&self.inner.redis_down_until) = None;
        self.connection().await
    }

    /// Returns the cached bytes for `key`, or runs `load`, caches and returns its result.
    ///
    /// Loader errors are returned as they are and nothing is cached.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: &str,
        load: F,
    ) -> Result<(Bytes, CacheSource), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let generation = self.current_generation().await;
        if let Some(bytes) = self.local_hit(key, generation) {
            return Ok((bytes, CacheSource::Local));
        }
        // Single flight: wait for whoever is refilling this key, then look again.
        let gate = self.refill_gate(key);
        let _turn = RefillTurn {
            cache: self,
            key,
            guard: Some(gate.lock_owned().await),
        };
        self.refill(key, generation, load).await
    }

    fn local_hit(&self, key: &str, generation: u64) -> Option<Bytes> {
        let bytes = self.local_get(key, generation)?;
        metrics::counter!("pique_cache_hits_total", "level" => "local").increment(1);
        Some(bytes)
    }

    /// The gate of `key`'s refill, shared by every request that missed the first level.
    fn refill_gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.inner.refills.lock().unwrap_or_else(|e| e.into_inner());
        gates.entry(key.to_string()).or_default().clone()
    }

    /// Forgets `key`'s gate when nobody else holds or waits on it (the map and `gate`
    /// itself are then its only owners), so distinct keys do not accumulate. Gates left by
    /// cancelled waiters (only the map owns them) are pruned once there are many.
    fn release_refill_gate(&self, key: &str, gate: &Arc<tokio::sync::Mutex<()>>) {
        let mut gates = self.inner.refills.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(gate) == 2 {
            gates.remove(key);
        }
        if gates.len() > 256 {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
    }

    /// Under `key`'s gate: the first level again (a previous holder may have filled it),
    /// then Redis, then `load`.
    async fn refill<F, Fut, E>(
        &self,
        key: &str,
        generation: u64,
        load: F,
    ) -> Result<(Bytes, CacheSource), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        if let Some(bytes) = self.local_hit(key, generation) {
            return Ok((bytes, CacheSource::Local));
        }
        let redis_key = format!("{}:c:{}:{}", self.inner.prefix, generation, key);
        if let Some(mut conn) = self.connection().await {
            match conn.get::<_, Option<Vec<u8>>>(&redis_key).await {
                Ok(Some(v)) => {
                    let bytes = Bytes::from(v);
                    self.local_put(key, generation, bytes.clone());
                    metrics::counter!("pique_cache_hits_total", "level" => "redis").increment(1);
                    return Ok((bytes, CacheSource::Redis));
                }
                Ok(None) => {}
                Err(e) => self.mark_redis_down(&e),
            }
        }
        metrics::counter!("pique_cache_misses_total").increment(1);
        let bytes = load().await?;
        self.local_put(key, generation, bytes.clone());
        if let Some(mut conn) = self.connection().await {
            let ttl = self.inner.ttl.as_secs().max(1);
            if let Err(e) = conn
                .set_ex::<_, _, ()>(&redis_key, bytes.as_ref(), ttl)
                .await
            {
                self.mark_redis_down(&e);
            }
        }
        Ok((bytes, CacheSource::Miss))
    }

    /// Makes every cached read stale, in this process at once and in others within
    /// [`L1_MAX_AGE`]. Call after any write that changes a public read.
    pub async fn invalidate(&self) {
        // Bump locally first: even with Redis down this process never serves stale data.
        let local_next = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        write(&self.inner.local).clear();
        if let Some(mut conn) = self.connection().await {
            match conn.incr::<_, _, u64>(self.generation_key(), 1).await {
                Ok(g) => {
                    self.inner
                        .generation
                        .fetch_max(g.max(local_next), Ordering::SeqCst);
                    *write(&self.inner.generation_checked) = Some(Instant::now());
                }
                Err(e) => self.mark_redis_down(&e),
            }
        }
        metrics::counter!("pique_cache_invalidations_total").increment(1);
    }

    fn generation_key(&self) -> String {
        format!("{}:cache:generation", self.inner.prefix)
    }

    /// The generation, refreshed from Redis at most every [`L1_MAX_AGE`].
    async fn current_generation(&self) -> u64 {
        let fresh = read(&self.inner.generation_checked).is_some_and(|t| t.elapsed() < L1_MAX_AGE);
        if !fresh {
            // Claim the refresh first so concurrent requests do not all ask Redis.
            *write(&self.inner.generation_checked) = Some(Instant::now());
            if let Some(mut conn) = self.connection().await {
                match conn.get::<_, Option<u64>>(self.generation_key()).await {
                    Ok(g) => {
                        let g = g.unwrap_or(0);
                        let before = self.inner.generation.fetch_max(g, Ordering::SeqCst);
                        if g > before {
                            write(&self.inner.local).clear();
                        }
                    }
                    Err(e) => self.mark_redis_down(&e),
                }
            }
        }
        self.inner.generation.load(Ordering::SeqCst)
    }

    fn local_get(&self, key: &str, generation: u64) -> Option<Bytes> {
        let level = read(&self.inner.local);
        let e = level.entries.get(key)?;
        (e.generation == generation && e.stored.elapsed() < L1_MAX_AGE.min(self.inner.ttl))
            .then(|| e.bytes.clone())
    }

    fn local_put(&self, key: &str, generation: u64, bytes: Bytes) {
        write(&self.inner.local).insert(
            key.to_string(),
            LocalEntry {
                bytes,
                generation,
                stored: Instant::now(),
            },
        );
    }

    fn redis_is_down(&self) -> bool {
        read(&self.inner.redis_down_until).is_some_and(|t| Instant::now() < t)
    }

    fn mark_redis_down(&self, e: &redis::RedisError) {
        let first = !self.redis_is_down();
        *write(&self.inner.redis_down_until) = Some(Instant::now() + REDIS_RETRY_AFTER);
        metrics::counter!("pique_cache_errors_total").increment(1);
        if first {
            tracing::warn!(error = %e, "redis unavailable; serving reads from PostgreSQL");
        }
    }
}

// A poisoned lock only means another thread panicked while holding it; the data (a cache)
// is still usable, so recover instead of propagating the panic to a request.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: usize) -> LocalEntry {
        LocalEntry {
            bytes: Bytes::from(vec![0u8; size]),
            generation: 0,
            stored: Instant::now(),
        }
    }

    #[test]
    fn first_level_stays_within_its_byte_budget() {
        let mut level = LocalLevel::default();
        let size = L1_MAX_BYTES / 10;
        for i in 0..25 {
            level.insert(format!("k{i}"), entry(size));
            assert!(level.bytes <= L1_MAX_BYTES, "after {i}: {}", level.bytes);
            assert_eq!(
                level.bytes,
                level.entries.values().map(|e| e.bytes.len()).sum::<usize>()
            );
        }
        level.insert("k1".into(), entry(10));
        assert_eq!(
            level.bytes,
            level.entries.values().map(|e| e.bytes.len()).sum::<usize>(),
            "replacing keeps the count"
        );
        level.insert("huge".into(), entry(L1_MAX_BYTES / 2));
        assert!(
            !level.entries.contains_key("huge"),
            "oversized values stay in Redis only"
        );
    }

    /// Many requests missing the same cold key at once: the loader runs once, one request
    /// reports the miss and the others get its copy. With Redis up (the real one, as in
    /// every test here) and with Redis unreachable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_of_one_key_load_once() {
        let up = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        for url in [up.as_str(), "redis://127.0.0.1:1/0"] {
            let prefix = format!("test-single-flight-{}", uuid::Uuid::new_v4());
            let cache = Cache::new(
                url,
                &prefix,
                Duration::from_secs(30),
                Duration::from_millis(200),
            )
            .expect("cache");
            let loads = Arc::new(AtomicU64::new(0));
            let calls = (0..32).map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("shows", || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, std::convert::Infallible>(Bytes::from_static(b"[1,2,3]"))
                        })
                        .await
                })
            });
            let results = futures::future::join_all(calls).await;
            assert_eq!(loads.load(Ordering::SeqCst), 1, "{url}: loader ran once");
            let mut misses = 0;
            for r in results {
                let (bytes, source) = r.expect("task").expect("infallible");
                assert_eq!(&bytes[..], b"[1,2,3]");
                misses += usize::from(source == CacheSource::Miss);
            }
            assert_eq!(misses, 1, "{url}");
            let gates = cache
                .inner
                .refills
                .lock()
                .map(|g| g.len())
                .unwrap_or(usize::MAX);
            assert_eq!(gates, 0, "{url}: no gate left behind");
        }
    }
}
