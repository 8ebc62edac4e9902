//! Per-principal token buckets, configured per face.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// A face's quota: a steady rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateQuota {
    pub per_second: u32,
    pub burst: u32,
}

impl RateQuota {
    /// The same quota as a [`Budget`]; `None` when unlimited.
    pub fn budget(self) -> Option<Budget> {
        Budget::new(self.per_second, self.burst)
    }
}

/// A rate-limit budget in GCRA terms (the form shared budgets are kept in: one
/// number per key, the theoretical arrival time, in microseconds): one request costs
/// `emission_us`, and a key may run at most `tolerance_us` ahead of now (`burst` requests
/// at once). Microseconds keep rates up to a million a second exact to within one part in
/// a thousand where most do not divide a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub emission_us: i64,
    pub tolerance_us: i64,
}

impl Budget {
    /// `per_second` requests a second, `burst` at once (a zero burst means `per_second`).
    /// `None` for a zero rate (unlimited).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        if per_second == 0 {
            return None;
        }
        let emission_us = (1_000_000 / i64::from(per_second)).max(1);
        let burst = if burst == 0 { per_second } else { burst };
        Some(Self { emission_us, tolerance_us: emission_us * i64::from(burst) })
    }

    /// The arrival time after one more request, when the key's current one is `tat` and it
    /// is `now` (µs); `Err(µs to wait)` when the request is over budget.
    pub fn take(self, tat: Option<i64>, now: i64) -> Result<i64, i64> {
        let next = tat.unwrap_or(now).max(now) + self.emission_us;
        if next - now <= self.tolerance_us { Ok(next) } else { Err(next - self.tolerance_us - now) }
    }

    /// A wait in whole seconds, as `Retry-After` gives it (at least 1).
    pub fn retry_after_secs(wait_us: i64) -> u64 {
        (wait_us.max(1) as u64).div_ceil(1_000_000).max(1)
    }
}

/// A keyed token-bucket limiter; `None` quota means unlimited.
pub struct RateLimiter {
    inner: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    /// Checks since the keys were last pruned.
    checks: std::sync::atomic::AtomicU32,
}

/// Keys are pruned (those whose buckets are full again are forgotten) every this many checks.
const PRUNE_EVERY: u32 = 4096;

impl RateLimiter {
    pub fn new(quota: Option<RateQuota>) -> Self {
        let inner = quota.and_then(|q| {
            let rate = NonZeroU32::new(q.per_second)?;
            let burst = NonZeroU32::new(q.burst).unwrap_or(rate);
            Some(governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
        });
        Self { inner, clock: DefaultClock::default(), checks: std::sync::atomic::AtomicU32::new(0) }
    }

    /// `Ok(())` when the principal may proceed, else the whole seconds to wait (at least 1).
    pub fn check(&self, principal: &str) -> Result<(), u64> {
        let Some(limiter) = &self.inner else { return Ok(()) };
        // Keys now include client addresses: forget the ones at rest, so memory stays bounded.
        if self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        match limiter.check_key(&principal.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait: Duration = not_until.wait_time_from(self.clock.now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }
}

/// The key a client address is limited under: an IPv4 address (also when written
/// as IPv4-mapped IPv6), or an IPv6 address's /64 (one host usually holds a whole
/// /64, so its addresses share one budget).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Failed authentications per client address: each failure takes a token from
/// the address's bucket; an address whose bucket is empty is refused outright
/// (before its credentials are looked at) until the bucket has a token again,
/// so a guessing client is slowed whether or not its next guess is right.
pub struct AuthFailures {
    limiter: RateLimiter,
    /// Addresses refused until the given instant.
    blocked: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Whether `blocked` may hold anything (requests skip the lock while it is empty).
    any: std::sync::atomic::AtomicBool,
}

impl AuthFailures {
    pub fn new(quota: Option<RateQuota>) -> Self {
        Self {
            limiter: RateLimiter::new(quota),
            blocked: Default::default(),
            any: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whole seconds the address must still wait, if it is refused now.
    pub fn refused(&self, ip: std::net::IpAddr) -> Option<u64> {
        if !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let now = std::time::Instant::now();
        let key = address_key(ip);
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&key) {
            Some(until) if *until > now => Some((*until - now).as_secs_f64().ceil().max(1.0) as u64),
            Some(_) => {
                blocked.remove(&key);
                if blocked.is_empty() {
                    self.any.store(false, std::sync::atomic::Ordering::Release);
                }
                None
            }
            None => None,
        }
    }

    /// Records a failed authentication; `Some(seconds)` when it exhausted the
    /// address's budget (the address is refused for that long).
    pub fn failed(&self, ip: std::net::IpAddr) -> Option<u64> {
        let key = address_key(ip);
        let secs = self.limiter.check(&key).err()?;
        let now = std::time::Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked.retain(|_, until| *until > now);
        blocked.insert(key, now + Duration::from_secs(secs));
        self.any.store(true, std::sync::atomic::Ordering::Release);
        Some(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_authentications_block_an_address_once_its_budget_is_spent() {
        let f = AuthFailures::new(Some(RateQuota { per_second: 1, burst: 3 }));
        let a: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(address_key(a), "192.0.2.1");
        assert_eq!(address_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(address_key(b), "2001:db8:0:0::/64");
        assert_eq!(address_key("2001:db8::ffff:1".parse().unwrap()), address_key(b), "one /64, one key");
        assert_eq!(f.refused(a), None);
        assert_eq!((f.failed(a), f.failed(a), f.failed(a)), (None, None, None));
        assert_eq!(f.failed(a), Some(1), "the fourth failure in a burst of three");
        assert_eq!(f.refused(a), Some(1));
        assert_eq!(f.refused(b), None, "per address");
        assert_eq!(f.refused("::ffff:192.0.2.1".parse().unwrap()), Some(1), "the same address, mapped");
        assert_eq!((f.failed(b), f.failed(b), f.failed(b)), (None, None, None));
        assert_eq!(f.failed("2001:db8::2".parse().unwrap()), Some(1), "another address of the same /64");
        let off = AuthFailures::new(None);
        for _ in 0..100 {
            assert_eq!(off.failed(a), None);
        }
        assert_eq!(off.refused(a), None);
    }

    #[test]
    fn burst_then_limited_per_principal() {
        let rl = RateLimiter::new(Some(RateQuota { per_second: 1, burst: 2 }));
        assert_eq!(rl.check("a"), Ok(()));
        assert_eq!(rl.check("a"), Ok(()));
        assert_eq!(rl.check("a"), Err(1));
        assert_eq!(rl.check("b"), Ok(()));
        let open = RateLimiter::new(None);
        for _ in 0..1000 {
            assert_eq!(open.check("a"), Ok(()));
        }
    }
}

#[cfg(test)]
mod budget_tests {
    use super::Budget;

    #[test]
    fn a_burst_then_one_per_emission() {
        let b = Budget::new(10, 3).unwrap();
        assert_eq!(b, Budget { emission_us: 100_000, tolerance_us: 300_000 });
        let mut tat = None;
        for expected in [1_100_000, 1_200_000, 1_300_000] {
            tat = Some(b.take(tat, 1_000_000).unwrap());
            assert_eq!(tat, Some(expected));
        }
        // The fourth at the same instant waits until one emission has passed.
        assert_eq!(b.take(tat, 1_000_000), Err(100_000));
        assert_eq!(b.take(tat, 1_099_999), Err(1));
        assert_eq!(b.take(tat, 1_100_000), Ok(1_400_000));
        // A key at rest starts from now again.
        assert_eq!(b.take(Some(1_400_000), 10_000_000), Ok(10_100_000));
        assert_eq!(Budget::retry_after_secs(1), 1);
        assert_eq!(Budget::retry_after_secs(1_000_000), 1);
        assert_eq!(Budget::retry_after_secs(1_000_001), 2);
    }

    #[test]
    fn zero_rate_is_unlimited_and_zero_burst_is_the_rate() {
        assert_eq!(Budget::new(0, 5), None);
        assert_eq!(Budget::new(4, 0), Some(Budget { emission_us: 250_000, tolerance_us: 1_000_000 }));
        // 300 a second is 3,333 µs each: 300.03 a second, not the 333 whole milliseconds give.
        assert_eq!(Budget::new(300, 1), Some(Budget { emission_us: 3_333, tolerance_us: 3_333 }));
    }
}
