//! Answers of the list routes kept while the store is unchanged. Most list requests ask what
//! the last one asked (page 1, a popular streamer), and serializing a page of records costs
//! more than everything else in a request; an answer is reused only while the store's
//! [`generation`](crate::store::Store::generation) is the one it was computed at, so a cached
//! answer is always the answer the store would give now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Answers kept at most; beyond either bound the stale ones go, then all.
const MAX_ENTRIES: usize = 256;
const MAX_BYTES: usize = 4 << 20;

/// An answer kept, with the store generation it was computed at.
struct Kept {
    generation: u64,
    body: Arc<[u8]>,
}

#[derive(Default)]
pub struct ReplyCache {
    entries: Mutex<(HashMap<String, Kept>, usize)>,
}

impl ReplyCache {
    /// The body stored under `key` at `generation`, if any.
    pub fn get(&self, key: &str, generation: u64) -> Option<Arc<[u8]>> {
        let entries = self.entries.lock().ok()?;
        entries
            .0
            .get(key)
            .filter(|entry| entry.generation == generation)
            .map(|entry| entry.body.clone())
    }

    /// Keeps `body` as the answer to `key` at `generation`.
    pub fn put(&self, key: &str, generation: u64, body: &[u8]) {
        if body.len() > MAX_BYTES / 8 {
            return;
        }
        let Ok(mut guard) = self.entries.lock() else {
            return;
        };
        let (entries, bytes) = &mut *guard;
        if entries.len() >= MAX_ENTRIES || *bytes + body.len() > MAX_BYTES {
            entries.retain(|_, entry| entry.generation == generation);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            *bytes = entries.values().map(|entry| entry.body.len()).sum();
            if *bytes + body.len() > MAX_BYTES {
                entries.clear();
                *bytes = 0;
            }
        }
        let entry = Kept {
            generation,
            body: Arc::from(body),
        };
        if let Some(old) = entries.insert(key.to_string(), entry) {
            *bytes -= old.body.len();
        }
        *bytes += body.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_only_at_their_generation() {
        let cache = ReplyCache::default();
        cache.put("vods?", 7, b"page one");
        assert_eq!(cache.get("vods?", 7).as_deref(), Some(&b"page one"[..]));
        assert!(cache.get("vods?", 8).is_none(), "a write happened since");
        assert!(cache.get("vods?limit=5", 7).is_none());
        cache.put("vods?", 8, b"page one, newer");
        assert_eq!(cache.get("vods?", 8).as_deref(), Some(&b"page one, newer"[..]));
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let cache = ReplyCache::default();
        let body = vec![b'x'; 100 * 1024];
        for n in 0..1000 {
            cache.put(&format!("vods?cursor={n}"), 1, &body);
            let (entries, bytes) = &*cache.entries.lock().unwrap();
            assert!(entries.len() <= MAX_ENTRIES);
            assert!(*bytes <= MAX_BYTES);
            assert_eq!(*bytes, entries.values().map(|e| e.body.len()).sum::<usize>());
        }
        // Too large to keep at all.
        cache.put("huge", 1, &vec![0; MAX_BYTES]);
        assert!(cache.get("huge", 1).is_none());
    }
}
