//! Injected time, so that jobs, leases and expiries are testable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The sandbox's clock: real time moved by an offset, or frozen at an instant.
/// `advance`, `set`, `freeze` and `resume` change what every reader sees next.
/// Real time comes from the clock it is made over.
#[derive(Debug)]
pub struct SandboxClock {
    /// Added to real time while running.
    offset: AtomicI64,
    /// The frozen instant, or [`RUNNING`].
    frozen: AtomicI64,
    /// Serialises the changes (readers take no lock).
    changes: std::sync::Mutex<()>,
    real: Arc<dyn Clock>,
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

const RUNNING: i64 = i64::MIN;

/// How far the clock may be moved from real time either way (about 285,000 years):
/// far enough for any test, and no sum of moves can overflow.
pub const MAX_OFFSET_MS: i64 = 1 << 53;

/// An offset from real time, held within [`MAX_OFFSET_MS`].
fn bounded(offset_ms: i64) -> i64 {
    offset_ms.clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS)
}

/// What the sandbox clock reads and how it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockState {
    pub now_ms: i64,
    pub frozen: bool,
    pub offset_ms: i64,
}

impl Default for SandboxClock {
    fn default() -> Self {
        Self::over(Arc::new(SystemClock))
    }
}

impl SandboxClock {
    /// A clock over another source of real time.
    pub fn over(real: Arc<dyn Clock>) -> Self {
        Self { offset: AtomicI64::new(0), frozen: AtomicI64::new(RUNNING), changes: Default::default(), real }
    }

    pub fn state(&self) -> ClockState {
        let frozen = self.frozen.load(Ordering::SeqCst);
        ClockState { now_ms: self.now_ms(), frozen: frozen != RUNNING, offset_ms: self.offset.load(Ordering::SeqCst) }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance_ms(&self, ms: i64) -> ClockState {
        let _g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let frozen = self.frozen.load(Ordering::SeqCst);
        let real = self.real.now_ms();
        // The current offset: a frozen clock's, from where it stands.
        let current = if frozen != RUNNING { frozen.saturating_sub(real) } else { self.offset.load(Ordering::SeqCst) };
        let offset = bounded(current.saturating_add(ms));
        if frozen != RUNNING {
            self.frozen.store(real + offset, Ordering::SeqCst);
        }
        self.offset.store(offset, Ordering::SeqCst);
        drop(_g);
        self.state()
    }

    /// Puts the clock at an instant (it keeps running from there unless frozen).
    pub fn set_ms(&self, at_ms: i64) -> ClockState {
        let _g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let real = self.real.now_ms();
        let offset = bounded(at_ms.saturating_sub(real));
        if self.frozen.load(Ordering::SeqCst) != RUNNING {
            self.frozen.store(real + offset, Ordering::SeqCst);
        }
        self.offset.store(offset, Ordering::SeqCst);
        drop(_g);
        self.state()
    }

    /// Stops the clock at `at_ms` (default: now).
    pub fn freeze(&self, at_ms: Option<i64>) -> ClockState {
        let _g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let real = self.real.now_ms();
        let at = at_ms.unwrap_or_else(|| self.now_ms());
        let offset = bounded(at.saturating_sub(real));
        self.offset.store(offset, Ordering::SeqCst);
        self.frozen.store(real + offset, Ordering::SeqCst);
        drop(_g);
        self.state()
    }

    /// Lets a frozen clock run on from where it stands.
    pub fn resume(&self) -> ClockState {
        let _g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let frozen = self.frozen.load(Ordering::SeqCst);
        if frozen != RUNNING {
            self.offset.store(bounded(frozen.saturating_sub(self.real.now_ms())), Ordering::SeqCst);
            self.frozen.store(RUNNING, Ordering::SeqCst);
        }
        drop(_g);
        self.state()
    }

    /// Back to real time, running.
    pub fn reset(&self) -> ClockState {
        let _g = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        self.frozen.store(RUNNING, Ordering::SeqCst);
        self.offset.store(0, Ordering::SeqCst);
        drop(_g);
        self.state()
    }
}

impl Clock for SandboxClock {
    fn now_ms(&self) -> i64 {
        let frozen = self.frozen.load(Ordering::SeqCst);
        if frozen != RUNNING { frozen } else { self.real.now_ms().saturating_add(self.offset.load(Ordering::SeqCst)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_clock_moves_freezes_and_resumes() {
        let real = ManualClock::new(1_000_000);
        let c = SandboxClock::over(Arc::new(real.clone()));
        assert_eq!(c.now_ms(), 1_000_000);
        assert_eq!(c.advance_ms(7_200_000).now_ms, 8_200_000);
        real.advance_ms(10); // real time passes: the moved clock runs with it
        assert_eq!(c.now_ms(), 8_200_010);
        let f = c.freeze(None);
        assert!(f.frozen);
        real.advance_ms(500);
        assert_eq!(c.now_ms(), 8_200_010, "frozen");
        assert_eq!(c.advance_ms(1_000).now_ms, 8_201_010, "advancing a frozen clock");
        assert_eq!(c.set_ms(5).now_ms, 5);
        real.advance_ms(100);
        assert_eq!(c.now_ms(), 5, "still frozen after set");
        let r = c.resume();
        assert!(!r.frozen);
        assert_eq!(r.now_ms, 5, "resumes where it stood");
        real.advance_ms(3);
        assert_eq!(c.now_ms(), 8);
        assert_eq!(c.reset().now_ms, real.now_ms());
        // No sum of moves overflows: the offset stops at MAX_OFFSET_MS.
        for _ in 0..3 {
            c.advance_ms(i64::MAX);
        }
        assert_eq!(c.state().offset_ms, MAX_OFFSET_MS);
        c.set_ms(i64::MIN);
        assert_eq!(c.state().offset_ms, -MAX_OFFSET_MS);
    }
}
