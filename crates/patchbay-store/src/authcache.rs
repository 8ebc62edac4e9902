//! Credential lookups kept for a moment.
//!
//! Every authenticated request starts with [`crate::Store::find_credential`] or
//! [`crate::Store::find_credential_with`]: a read of the credential and of the
//! records it names (user, enterprise). Those change rarely, yet the read cost a
//! full read transaction per request (on SQLite about a fifth of a get-by-id
//! request; on PostgreSQL a round trip), so a found answer is kept for
//! [`TTL`] and handed out again while it is still true:
//!
//! - Every write through this store that can change the answer — seeds, records,
//!   credentials, key rotation — bumps a generation when it returns (committed
//!   or not), and an answer is only reused under the generation it was read
//!   under. The generation is taken *before* the read, so a write that commits
//!   while a read is in flight leaves that read's answer already stale: a
//!   process never serves a credential or record older than its own last write.
//! - Writes by another process (another replica on PostgreSQL, a second
//!   process on the same SQLite file) are seen after at most [`TTL`].
//! - Unknown tokens are not kept (a flood of bad tokens cannot fill memory, and
//!   a credential created elsewhere works at once); at most [`MAX_ENTRIES`]
//!   answers are kept, all dropped when it fills.
//!
//! The answers hold what the database holds: token hashes, scopes and record
//! data with secrets still sealed; never a plaintext token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Credential, CredentialWith};

/// How long another process's write may go unseen.
pub const TTL: Duration = Duration::from_secs(1);
/// Answers kept at most.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Credential(Credential),
    With(Box<CredentialWith>),
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    at: Instant,
    answer: Answer,
}

#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
}

impl AuthCache {
    /// The generation to read under: take it before reading the database.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The answer kept for `key`, if read under `generation` less than [`TTL`] ago.
    pub(crate) fn get(&self, key: &[u8], generation: u64) -> Option<Answer> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key)?;
        (e.generation == generation && e.at.elapsed() < TTL).then(|| e.answer.clone())
    }

    /// Keeps `answer`, read under `generation`.
    pub(crate) fn put(&self, key: Vec<u8>, generation: u64, answer: Answer) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, Entry { generation, at: Instant::now(), answer });
    }

    /// Marks every kept answer stale when dropped: hold one across a write.
    pub(crate) fn writing(&self) -> Bump<'_> {
        Bump(self)
    }
}

/// Bumps the generation when dropped, after the write it spans (whichever way
/// that write ends).
pub(crate) struct Bump<'a>(&'a AuthCache);

impl Drop for Bump<'_> {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        self.0.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The key of a [`crate::Store::find_credential_with`] answer.
pub(crate) fn with_key(hash: &[u8], principal: (&str, &str), other: Option<(&str, &str, &str)>) -> Vec<u8> {
    let (t, k, i) = other.unwrap_or(("", "", ""));
    let mut key = [b"w\x1f", hash].concat();
    // Unit separators between the names: distinct lookups never share a key.
    for part in [principal.0, principal.1, t, k, i] {
        key.push(0x1f);
        key.extend_from_slice(part.as_bytes());
    }
    key
}

/// The key of a [`crate::Store::find_credential`] answer.
pub(crate) fn plain_key(hash: &[u8]) -> Vec<u8> {
    [b"c\x1f", hash].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> Credential {
        Credential {
            face: "network".into(),
            principal_kind: "user".into(),
            principal_id: "u".into(),
            tenant: "t".into(),
            scopes: vec![],
        }
    }

    #[test]
    fn answers_last_until_a_write_or_the_ttl() {
        let c = AuthCache::default();
        let g = c.generation();
        c.put(plain_key(b"h"), g, Answer::Credential(cred()));
        assert!(matches!(c.get(&plain_key(b"h"), g), Some(Answer::Credential(x)) if x == cred()));
        assert!(c.get(&plain_key(b"other"), g).is_none());
        // A write ends: what was read before it is not handed out again.
        drop(c.writing());
        assert!(c.get(&plain_key(b"h"), c.generation()).is_none());
        // An answer read under an older generation (a write committed while it
        // was read) is never served, even if it is put after the write.
        c.put(plain_key(b"h"), g, Answer::Credential(cred()));
        assert!(c.get(&plain_key(b"h"), c.generation()).is_none());
        // Aged past the TTL.
        let g = c.generation();
        c.entries.lock().unwrap().insert(
            plain_key(b"old"),
            Entry { generation: g, at: Instant::now() - TTL, answer: Answer::Credential(cred()) },
        );
        assert!(c.get(&plain_key(b"old"), g).is_none());
    }

    #[test]
    fn bounded() {
        let c = AuthCache::default();
        for i in 0..MAX_ENTRIES + 5 {
            c.put(plain_key(i.to_string().as_bytes()), 0, Answer::Credential(cred()));
        }
        assert!(c.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }

    #[test]
    fn keys_do_not_collide() {
        assert_ne!(with_key(b"h", ("a", "b"), None), with_key(b"h", ("a", "b"), Some(("", "", "x"))));
        assert_ne!(with_key(b"h", ("ab", ""), None), with_key(b"h", ("a", "b"), None));
        assert_ne!(plain_key(b"h"), with_key(b"h", ("", ""), None));
    }
}
