//! Where generated ids, nonces, tokens and keys get their randomness: the
//! operating system's generator, or — in the sandbox's deterministic mode — a
//! generator seeded by the caller, so that two runs of the same test produce
//! identical bodies. AES-GCM nonces of stored secrets never come from here.

use std::sync::Mutex;

use rand::rngs::{OsRng, StdRng};
use rand::{CryptoRng, RngCore, SeedableRng};

/// The source of every random value a face puts on the wire.
#[derive(Debug, Default)]
pub struct Entropy {
    seeded: Mutex<Option<(u64, StdRng)>>,
    /// Whether `seeded` holds a generator (read without the lock on the common path).
    on: std::sync::atomic::AtomicBool,
}

impl Entropy {
    /// Draws from the operating system (the default).
    pub fn system() -> Self {
        Self::default()
    }

    /// Draws from a generator seeded with `seed` (restarting its sequence), or
    /// from the operating system again with `None`.
    pub fn set_seed(&self, seed: Option<u64>) {
        let mut g = self.lock();
        *g = seed.map(|s| (s, StdRng::seed_from_u64(s)));
        self.on.store(g.is_some(), std::sync::atomic::Ordering::Release);
    }

    /// The seed of deterministic mode, if on.
    pub fn seed(&self) -> Option<u64> {
        self.lock().as_ref().map(|(s, _)| *s)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, StdRng)>> {
        self.seeded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&self, buf: &mut [u8]) {
        if !self.on.load(std::sync::atomic::Ordering::Acquire) {
            OsRng.fill_bytes(buf);
            return;
        }
        match self.lock().as_mut() {
            Some((_, rng)) => rng.fill_bytes(buf),
            None => OsRng.fill_bytes(buf),
        }
    }

    /// `N` random bytes.
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    /// A random (version 4) UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(self.bytes::<16>()).into_uuid()
    }

    /// A random UUID, hyphenated, lower case.
    pub fn uuid_string(&self) -> String {
        self.uuid().to_string()
    }

    /// A ULID at `now_ms` (the clock's time, not the system's).
    pub fn ulid(&self, now_ms: i64) -> ulid::Ulid {
        let r = u128::from_be_bytes(self.bytes::<16>());
        ulid::Ulid::from_parts(now_ms.max(0) as u64, r)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        (u64::from_be_bytes(self.bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Runs `f` with a cryptographic generator drawing from this source (key generation).
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut EntropyRng<'_>) -> T) -> T {
        let mut guard = self.lock();
        let mut rng = match guard.as_mut() {
            Some((_, rng)) => EntropyRng::Seeded(rng),
            None => EntropyRng::Os,
        };
        f(&mut rng)
    }
}

/// A generator handed out by [`Entropy::with_rng`].
pub enum EntropyRng<'a> {
    Os,
    Seeded(&'a mut StdRng),
}

impl RngCore for EntropyRng<'_> {
    fn next_u32(&mut self) -> u32 {
        match self {
            Self::Os => OsRng.next_u32(),
            Self::Seeded(r) => r.next_u32(),
        }
    }
    fn next_u64(&mut self) -> u64 {
        match self {
            Self::Os => OsRng.next_u64(),
            Self::Seeded(r) => r.next_u64(),
        }
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self {
            Self::Os => OsRng.fill_bytes(dest),
            Self::Seeded(r) => r.fill_bytes(dest),
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Both sources are cryptographically secure (StdRng is ChaCha12).
impl CryptoRng for EntropyRng<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_repeat_and_system_ones_do_not() {
        let a = Entropy::system();
        assert_ne!(a.uuid(), a.uuid());
        assert_eq!(a.seed(), None);
        a.set_seed(Some(7));
        let first = (a.uuid_string(), a.ulid(1_700_000_000_000).to_string(), a.bytes::<8>());
        let b = Entropy::system();
        b.set_seed(Some(7));
        assert_eq!(first, (b.uuid_string(), b.ulid(1_700_000_000_000).to_string(), b.bytes::<8>()));
        a.set_seed(Some(7));
        assert_eq!(a.uuid_string(), first.0, "setting the seed again restarts the sequence");
        assert_eq!(a.seed(), Some(7));
        let u = a.uuid();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(a.ulid(1_700_000_000_000).timestamp_ms(), 1_700_000_000_000);
        let x = a.unit();
        assert!((0.0..1.0).contains(&x));
        a.set_seed(None);
        assert_eq!(a.seed(), None);
    }
}
