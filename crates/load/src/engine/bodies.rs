//! JSON bodies parsed once and shared by every user.
//!
//! The original plan's ShowBrowsingUser stores the whole show list after every list request;
//! at hundreds of users, parsing an 870 KB list per response into each user's own tree cost the
//! generator gigabytes and, worse, delayed every other user's responses while a runtime thread
//! parsed, which the report then blamed on the server. Responses to the same request are
//! usually byte-for-byte identical (the server caches them), so a body equal to a recent one
//! reuses its parsed tree: users keep an `Arc` to it, and a large body that is new is parsed on
//! a blocking thread so the users' tasks keep being polled.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;

/// Bodies smaller than this are parsed in place and not kept: cheaper than looking them up.
const SHARE_FROM: usize = 16 * 1024;
/// Bodies larger than this are parsed off the async threads.
const BLOCKING_FROM: usize = 64 * 1024;
/// At most this many body bytes are kept for comparison (their parsed trees with them).
const KEEP_BYTES: usize = 32 * 1024 * 1024;

struct Entry {
    body: Bytes,
    doc: Arc<Value>,
}

/// The run's shared parsed bodies (most recently used first).
#[derive(Default)]
pub(crate) struct SharedBodies {
    entries: Mutex<VecDeque<Entry>>,
}

impl SharedBodies {
    /// The parsed JSON of `body` (`None` when it is not JSON).
    pub async fn parse(&self, body: Bytes) -> Option<Arc<Value>> {
        if body.len() < SHARE_FROM {
            return serde_json::from_slice(&body).ok().map(Arc::new);
        }
        if let Some(doc) = self.find(&body) {
            return Some(doc);
        }
        let doc = if body.len() >= BLOCKING_FROM {
            let b = body.clone();
            tokio::task::spawn_blocking(move || serde_json::from_slice::<Value>(&b).ok())
                .await
                .ok()
                .flatten()
        } else {
            serde_json::from_slice(&body).ok()
        }?;
        let doc = Arc::new(doc);
        self.keep(body, doc.clone());
        Some(doc)
    }

    /// A kept body equal to `body`. Candidates (same length) are copied out under the lock
    /// (two reference counts each) and compared outside it.
    fn find(&self, body: &Bytes) -> Option<Arc<Value>> {
        let candidates: Vec<(Bytes, Arc<Value>)> = self
            .lock()
            .iter()
            .filter(|e| e.body.len() == body.len())
            .map(|e| (e.body.clone(), e.doc.clone()))
            .collect();
        candidates
            .into_iter()
            .find(|(b, _)| b == body)
            .map(|(_, doc)| doc)
    }

    fn keep(&self, body: Bytes, doc: Arc<Value>) {
        let mut entries = self.lock();
        if entries.iter().any(|e| e.body == body) {
            return;
        }
        entries.push_front(Entry { body, doc });
        let mut total: usize = entries.iter().map(|e| e.body.len()).sum();
        while total > KEEP_BYTES && entries.len() > 1 {
            if let Some(old) = entries.pop_back() {
                total -= old.body.len();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(n: usize, salt: u64) -> Bytes {
        let items: Vec<Value> = (0..n as u64)
            .map(|i| serde_json::json!({"id": i, "salt": salt, "title": "x".repeat(40)}))
            .collect();
        Bytes::from(serde_json::to_vec(&items).unwrap())
    }

    #[tokio::test]
    async fn identical_bodies_share_one_parsed_tree() {
        let shared = SharedBodies::default();
        let a = shared.parse(big(2000, 1)).await.unwrap();
        let again = shared.parse(big(2000, 1)).await.unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let other = shared.parse(big(2000, 2)).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(other[5]["salt"], 2);
        let small = shared
            .parse(Bytes::from_static(b"{\"a\":1}"))
            .await
            .unwrap();
        assert_eq!(small["a"], 1);
        assert!(
            shared
                .parse(Bytes::from(vec![b'x'; 70_000]))
                .await
                .is_none()
        );
    }
}
