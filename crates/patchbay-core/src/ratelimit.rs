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

/// A keyed token-bucket limiter; `None` quota means unlimited.
pub struct RateLimiter {
    inner: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimiter {
    pub fn new(quota: Option<RateQuota>) -> Self {
        let inner = quota.and_then(|q| {
            let rate = NonZeroU32::new(q.per_second)?;
            let burst = NonZeroU32::new(q.burst).unwrap_or(rate);
            Some(governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
        });
        Self { inner, clock: DefaultClock::default() }
    }

    /// `Ok(())` when the principal may proceed, else the whole seconds to wait (at least 1).
    pub fn check(&self, principal: &str) -> Result<(), u64> {
        let Some(limiter) = &self.inner else { return Ok(()) };
        match limiter.check_key(&principal.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait: Duration = not_until.wait_time_from(self.clock.now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
