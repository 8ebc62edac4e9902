//! Reads kept for a moment.
//!
//! Two kinds of answers are kept per process and handed out again while they are
//! still true:
//!
//! - **Token lookups** ([`crate::Store::find_credential`],
//!   [`crate::Store::find_credential_with`]): every authenticated request starts
//!   with one, a read of the credential and of the records it names. Kept on both
//!   backends.
//! - **Connection and record reads** (get-by-id and list pages of the three
//!   faces' connections; records by id, such as an iModel or a connector
//!   config): kept on SQLite, where one process owns the file (operations.md),
//!   and on PostgreSQL while its notification channel is up: every statement
//!   that changes a table whose reads are kept notifies `patchbay_kept` at
//!   commit (a trigger), and every replica drops what it keeps when notified
//!   (backend.rs, `listen_for_writes`). While a replica cannot listen it keeps
//!   nothing, token lookups included.
//!
//! The rules are the same for both:
//!
//! - Every write through this store that can change an answer bumps the kind's
//!   generation when it returns (committed or not), and an answer is only reused
//!   under the generation it was read under. The generation is taken *before*
//!   the read, so a write that commits while a read is in flight leaves that
//!   read's answer already stale: a process never serves anything older than its
//!   own last write.
//! - Writes by another process are seen after at most [`TTL`] (a CLI command on
//!   the same SQLite file), or as soon as their notification arrives (another
//!   replica on PostgreSQL; the TTL remains a bound).
//! - Absent answers (unknown tokens, missing connections) are not kept: a flood
//!   of misses cannot fill memory, and what another process creates is seen at
//!   once. At most a fixed weight is kept (a lookup or a connection weighs one, a
//!   page one per item), all dropped when it fills.
//!
//! The answers hold what the database holds: token hashes and records with
//! secrets still sealed; never a plaintext token or secret.

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::{Credential, CredentialWith, ExConnection, InConnection, NetConnection, Page, Record};

/// How long another process's write may go unseen.
pub const TTL: Duration = Duration::from_secs(1);
/// Token lookups kept at most.
const MAX_LOOKUPS: usize = 10_000;
/// Connections kept at most (alone or in pages).
const MAX_CONNECTIONS: usize = 10_000;

/// A kept token lookup.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Credential(Arc<Credential>),
    /// Shared: a user's record can be large (the enterprises or iTwins it names).
    With(Arc<CredentialWith>),
}

/// A kept connection read.
#[derive(Debug, Clone)]
pub(crate) enum Read {
    Net(Arc<NetConnection>),
    Ex(ExConnection),
    In(Arc<InConnection>),
    /// A record by id (`get_record`, `find_record`).
    Record(Record),
    NetPage(Page<NetConnection>),
    ExPage(Page<ExConnection>),
    InPage(Page<InConnection>, i64),
}

/// Something that can be kept, and how much of the bound it takes.
pub(crate) trait Weigh: Clone {
    fn weight(&self) -> usize;
}

impl Weigh for Answer {
    fn weight(&self) -> usize {
        1
    }
}

impl Weigh for Read {
    fn weight(&self) -> usize {
        1 + match self {
            Read::Net(_) | Read::Ex(_) | Read::In(_) | Read::Record(_) => 0,
            Read::NetPage(v) => v.len(),
            Read::ExPage(v) => v.len(),
            Read::InPage(v, _) => v.len(),
        }
    }
}

#[derive(Debug)]
struct Entry<V> {
    generation: u64,
    at: Instant,
    answer: V,
}

#[derive(Debug)]
struct Entries<V> {
    /// foldhash (seeded per process) is not built to resist chosen-key collisions;
    /// the keys here are what authenticated requests read, and the weight is bounded
    /// (`MAX_LOOKUPS`, `MAX_CONNECTIONS`).
    map: foldhash::HashMap<Vec<u8>, Entry<V>>,
    weight: usize,
}

/// Answers of one kind, under one generation.
#[derive(Debug)]
pub(crate) struct Kept<V> {
    /// Off: nothing is kept (`get` misses, `put` drops). PostgreSQL turns it on while its
    /// notification channel is up (backend.rs, `listen_for_writes`).
    enabled: AtomicBool,
    /// How long an answer is kept at most ([`TTL`]; tests lengthen it).
    ttl_ms: AtomicU64,
    max_weight: usize,
    generation: AtomicU64,
    /// Read-locked by gets, so that a thread switched out during one does not
    /// hold up the others' (written only when a miss keeps its answer).
    entries: RwLock<Entries<V>>,
    /// Reads of a key that missed, one at a time (see [`ReadCache::through`]).
    flights: Flights<Vec<u8>>,
}

/// Token lookups.
pub(crate) type AuthCache = Kept<Answer>;
/// Connection and record reads.
pub(crate) type ReadCache = Kept<Read>;

impl Default for AuthCache {
    fn default() -> Self {
        Kept::new(true, MAX_LOOKUPS)
    }
}

impl ReadCache {
    /// Connection and record reads, kept or not (`enabled`: the backend is one process's).
    pub(crate) fn connections(enabled: bool) -> Self {
        Kept::new(enabled, MAX_CONNECTIONS)
    }

    /// A read through the kept answers: the answer kept under `key` if there
    /// is one, else `read`'s, kept if it found something. The generation is
    /// taken before `read` runs; when nothing is kept, `key` is never built.
    ///
    /// Reads of one key that miss take turns: when a kept answer lapses under
    /// load, one request reads it again and those that arrived meanwhile take
    /// its answer instead of all reading the database at once (a deep page
    /// costs a scan of the rows it skips). A request waits at most once: when
    /// the read it waited for kept nothing (nothing found, an error, or a write
    /// ended meanwhile), it reads on its own without holding others up.
    pub(crate) async fn through<T: Keep>(
        &self,
        key: impl FnOnce() -> Vec<u8>,
        read: impl std::future::Future<Output = crate::Result<T>>,
    ) -> crate::Result<T> {
        if !self.enabled.load(Ordering::Acquire) {
            return read.await;
        }
        let key = key();
        if let Some(kept) = self.get(&key, self.generation()).and_then(T::from_read) {
            return Ok(kept);
        }
        let turn = self.flights.turn(key.clone()).await;
        // Taken after waiting, still before reading: what the turn before this
        // one kept counts only if no write ended since.
        let generation = self.generation();
        if let Some(kept) = self.get(&key, generation).and_then(T::from_read) {
            return Ok(kept);
        }
        let _turn = (!turn.waited()).then_some(turn);
        let found = read.await;
        if let Some(answer) = found.as_ref().ok().and_then(T::to_read) {
            self.put(key, generation, answer);
        }
        found
    }
}

/// An answer of a read that can be kept as a [`Read`].
pub(crate) trait Keep: Sized {
    /// What to keep of it (nothing for a miss).
    fn to_read(&self) -> Option<Read>;
    /// The answer, if `read` is one of this kind.
    fn from_read(read: Read) -> Option<Self>;
}

macro_rules! keep_as {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl Keep for $t {
            fn to_read(&self) -> Option<Read> {
                Some(Read::$variant(self.clone()))
            }
            fn from_read(read: Read) -> Option<Self> {
                match read {
                    Read::$variant(answer) => Some(answer),
                    _ => None,
                }
            }
        }
    )*};
}

keep_as!(
    Arc<NetConnection> => Net,
    ExConnection => Ex,
    Arc<InConnection> => In,
    Record => Record,
    Page<NetConnection> => NetPage,
    Page<ExConnection> => ExPage,
);

impl Keep for (Page<InConnection>, i64) {
    fn to_read(&self) -> Option<Read> {
        Some(Read::InPage(Arc::clone(&self.0), self.1))
    }
    fn from_read(read: Read) -> Option<Self> {
        match read {
            Read::InPage(page, total) => Some((page, total)),
            _ => None,
        }
    }
}

/// A lookup that found nothing keeps nothing.
impl<T: Keep> Keep for Option<T> {
    fn to_read(&self) -> Option<Read> {
        self.as_ref().and_then(T::to_read)
    }
    fn from_read(read: Read) -> Option<Self> {
        T::from_read(read).map(Some)
    }
}

impl<V: Weigh> Kept<V> {
    fn new(enabled: bool, max_weight: usize) -> Self {
        Kept {
            enabled: AtomicBool::new(enabled),
            ttl_ms: AtomicU64::new(TTL.as_millis() as u64),
            max_weight,
            generation: AtomicU64::new(0),
            entries: RwLock::new(Entries { map: foldhash::HashMap::default(), weight: 0 }),
            flights: Flights::default(),
        }
    }

    /// The generation to read under: take it before reading the database.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Turns keeping on or off; either way what was kept is dropped (a generation
    /// passes), so nothing read before the change is answered after it.
    pub(crate) fn set_enabled(&self, on: bool) {
        self.written();
        self.enabled.store(on, Ordering::Release);
        self.written();
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis().min(u64::MAX as u128) as u64, Ordering::Release);
    }

    /// The answer kept for `key`, if read under `generation` less than [`TTL`] ago.
    pub(crate) fn get(&self, key: &[u8], generation: u64) -> Option<V> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.map.get(key)?;
        let ttl = Duration::from_millis(self.ttl_ms.load(Ordering::Acquire));
        (e.generation == generation && e.at.elapsed() < ttl).then(|| e.answer.clone())
    }

    /// Keeps `answer`, read under `generation` (not if that is already past, or
    /// if it alone would fill the bound).
    pub(crate) fn put(&self, key: Vec<u8>, generation: u64, answer: V) {
        let weight = answer.weight();
        if !self.enabled.load(Ordering::Acquire) || weight > self.max_weight || generation != self.generation() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = entries.map.remove(&key) {
            entries.weight -= old.answer.weight();
        }
        if entries.weight + weight > self.max_weight {
            entries.map.clear();
            entries.weight = 0;
        }
        entries.weight += weight;
        entries.map.insert(key, Entry { generation, at: Instant::now(), answer });
    }

    /// Marks every kept answer stale when dropped: hold one across a write.
    pub(crate) fn writing(&self) -> Bump<'_, V> {
        Bump(self)
    }

    /// Marks every kept answer stale now (a write has just committed).
    pub(crate) fn written(&self) {
        drop(self.writing());
    }
}

/// One holder at a time per key; the others wait their turn. A key's entry
/// lasts while someone holds or awaits its turn (counted, so that a wait given
/// up midway still leaves).
#[derive(Debug)]
pub struct Flights<K: Hash + Eq>(Mutex<foldhash::HashMap<K, Slot>>);

/// A key's lock, and how many hold or await it.
type Slot = (Arc<tokio::sync::Mutex<()>>, usize);

impl<K: Hash + Eq> Default for Flights<K> {
    fn default() -> Self {
        Flights(Mutex::new(foldhash::HashMap::default()))
    }
}

impl<K: Hash + Eq + Clone> Flights<K> {
    /// Waits for `key`'s turn; it ends when the returned value is dropped.
    pub async fn turn(&self, key: K) -> Turn<'_, K> {
        let (slot, waited) = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let (slot, users) = map.entry(key.clone()).or_insert_with(|| (Arc::default(), 0));
            *users += 1;
            (Arc::clone(slot), *users > 1)
        };
        // Counted from here: if this future is dropped while waiting, `turn` still leaves.
        let mut turn = Turn { flights: self, key, held: None, waited };
        turn.held = Some(slot.lock_owned().await);
        turn
    }

    /// Keys someone holds or awaits.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A key's turn (or the wait for it), from [`Flights::turn`].
#[derive(Debug)]
pub struct Turn<'a, K: Hash + Eq> {
    flights: &'a Flights<K>,
    key: K,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
    waited: bool,
}

impl<K: Hash + Eq> Turn<'_, K> {
    /// Whether someone else held or awaited the key when this turn was asked for.
    pub fn waited(&self) -> bool {
        self.waited
    }
}

impl<K: Hash + Eq> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut map = self.flights.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, users)) = map.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Bumps the generation when dropped, after the write it spans (whichever way
/// that write ends).
pub(crate) struct Bump<'a, V: Weigh>(&'a Kept<V>);

impl<V: Weigh> Drop for Bump<'_, V> {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        if self.0.enabled.load(Ordering::Acquire) {
            let mut entries = self.0.entries.write().unwrap_or_else(|e| e.into_inner());
            entries.map.clear();
            entries.weight = 0;
        }
    }
}

/// The key of a [`crate::Store::find_credential_with`] answer.
pub(crate) fn with_key(hash: &[u8], principal: (&str, &str), other: Option<(&str, &str, &str)>) -> Vec<u8> {
    let (t, k, i) = other.unwrap_or(("", "", ""));
    let names = [principal.0, principal.1, t, k, i].map(str::as_bytes);
    key("with", &[&[hash], &names[..]].concat())
}

/// The key of a [`crate::Store::find_credential`] answer.
pub(crate) fn plain_key(hash: &[u8]) -> Vec<u8> {
    key("credential", &[hash])
}

/// The key of a kept answer: what was read (`what`) and the values that chose
/// it, each length-prefixed so that no two reads share a key.
pub(crate) fn key<P: AsRef<[u8]>>(what: &str, parts: &[P]) -> Vec<u8> {
    let parts = parts.iter().map(AsRef::as_ref);
    let mut key = Vec::with_capacity(what.len() + parts.clone().map(|p| p.len() + 4).sum::<usize>());
    key.extend_from_slice(what.as_bytes());
    for part in parts {
        key.extend_from_slice(&(part.len() as u32).to_le_bytes());
        key.extend_from_slice(part);
    }
    key
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
        c.put(plain_key(b"h"), g, Answer::Credential(Arc::new(cred())));
        assert!(matches!(c.get(&plain_key(b"h"), g), Some(Answer::Credential(x)) if *x == cred()));
        assert!(c.get(&plain_key(b"other"), g).is_none());
        // A write ends: what was read before it is not handed out again.
        drop(c.writing());
        assert!(c.get(&plain_key(b"h"), c.generation()).is_none());
        // An answer read under an older generation (a write committed while it
        // was read) is never served, even if it is put after the write.
        c.put(plain_key(b"h"), g, Answer::Credential(Arc::new(cred())));
        assert!(c.get(&plain_key(b"h"), c.generation()).is_none());
        // Aged past the TTL.
        let g = c.generation();
        c.entries.write().unwrap().map.insert(
            plain_key(b"old"),
            Entry { generation: g, at: Instant::now() - TTL, answer: Answer::Credential(Arc::new(cred())) },
        );
        assert!(c.get(&plain_key(b"old"), g).is_none());
    }

    #[test]
    fn bounded() {
        let c = AuthCache::default();
        for i in 0..MAX_LOOKUPS + 5 {
            c.put(plain_key(i.to_string().as_bytes()), 0, Answer::Credential(Arc::new(cred())));
        }
        assert!(c.entries.read().unwrap().map.len() <= MAX_LOOKUPS);
    }

    #[tokio::test]
    async fn turns_one_at_a_time_and_leave_nothing_behind() {
        let f: Arc<Flights<&'static str>> = Arc::default();
        let first = f.turn("k").await;
        // Another key is not held up.
        drop(f.turn("other").await);
        // The same key waits; a wait given up leaves no entry behind.
        let waiting = tokio::time::timeout(Duration::from_millis(20), f.turn("k")).await;
        assert!(waiting.is_err(), "a second turn of a held key must wait");
        let (f2, order) = (Arc::clone(&f), Arc::new(Mutex::new(Vec::new())));
        let o2 = Arc::clone(&order);
        let second = tokio::spawn(async move {
            let _t = f2.turn("k").await;
            o2.lock().unwrap().push("second");
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        order.lock().unwrap().push("first");
        drop(first);
        second.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["first", "second"]);
        assert!(f.is_empty(), "entries: {}", f.len());
    }

    #[tokio::test]
    async fn misses_of_one_key_read_once() {
        let c = Arc::new(ReadCache::connections(true));
        let reads = Arc::new(AtomicU64::new(0));
        let record = Record {
            tenant: "t".into(),
            kind: "k".into(),
            id: "i".into(),
            data: serde_json::json!({}),
            secret: None,
            created_at: 0,
            updated_at: 0,
        };
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (c, reads, record) = (Arc::clone(&c), Arc::clone(&reads), record.clone());
                tokio::spawn(async move {
                    c.through(|| key("record", &["t", "k", "i"]), async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Some(record))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().unwrap().id, "i");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(c.flights.is_empty());
        // Misses that keep nothing (the connection does not exist): the waiters
        // of the first read do not then queue behind one another.
        let (now, most) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (c, now, most) = (Arc::clone(&c), Arc::clone(&now), Arc::clone(&most));
                tokio::spawn(async move {
                    c.through(|| key("record", &["t", "k", "missing"]), async {
                        most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok(None::<Record>)
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_none());
        }
        // The first read alone, then those that waited for it side by side (one at a time: 1).
        assert!(most.load(Ordering::SeqCst) > 1, "reads in flight at most: {most:?}");
        assert!(c.flights.is_empty());
        // A write ends: the next miss reads again.
        c.written();
        let again = c.through(|| key("record", &["t", "k", "i"]), async { Ok(None::<Record>) }).await.unwrap();
        assert!(again.is_none());
    }

    #[test]
    fn keys_do_not_collide() {
        assert_ne!(with_key(b"h", ("a", "b"), None), with_key(b"h", ("a", "b"), Some(("", "", "x"))));
        assert_ne!(with_key(b"h", ("ab", ""), None), with_key(b"h", ("a", "b"), None));
        assert_ne!(plain_key(b"h"), with_key(b"h", ("", ""), None));
    }
}
