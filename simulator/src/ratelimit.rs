//! `[rate_limits]`: a token bucket per operation (or per operation and calling account), as AWS
//! throttles its APIs. The buckets are plain values refilled from the instant a call arrives, so
//! that the logic is a pure function of (now, state), tested without sleeping; the simulator
//! passes its own clock (`tokio::time::Instant`, which a test may pause).

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

use crate::scenario::{RateLimitScope, RateLimitSpec};

/// Tokens are compared with this much slack, so that a rate like 1/3 per second refills a whole
/// token after exactly 3 seconds despite floating-point rounding.
const EPSILON: f64 = 1e-9;

/// One token bucket: how many tokens it held at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket (`burst` tokens) at `now`: buckets start full.
    pub(crate) fn full(limit: &RateLimitSpec, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    /// Refill the bucket up to `now` (`rate` tokens a second, at most `burst`) and take one
    /// token: `true` when there was one, `false` when the call is throttled (a throttled call
    /// takes nothing). An earlier `now` than the last one refills nothing.
    pub(crate) fn take(&mut self, limit: &RateLimitSpec, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.rate).min(f64::from(limit.burst));
        if now > self.at {
            self.at = now;
        }
        if self.tokens + EPSILON >= 1.0 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    /// Tokens left (after the last refill).
    #[cfg(test)]
    fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// One operation's limit and its buckets: one for every call (`scope = "global"`), or one per
/// calling account, made the first time that account calls (`scope = "account"`).
#[derive(Debug)]
struct Limited {
    limit: RateLimitSpec,
    global: Bucket,
    accounts: HashMap<String, Bucket>,
}

/// Every operation's buckets.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    limits: HashMap<String, Limited>,
}

impl RateLimiter {
    /// Full buckets for `limits` at `now`.
    pub(crate) fn new(limits: &BTreeMap<String, RateLimitSpec>, now: Instant) -> RateLimiter {
        RateLimiter {
            limits: limits
                .iter()
                .map(|(operation, limit)| {
                    let limited = Limited {
                        limit: *limit,
                        global: Bucket::full(limit, now),
                        accounts: HashMap::new(),
                    };
                    (operation.clone(), limited)
                })
                .collect(),
        }
    }

    /// Whether a call of `operation` whose credentials belong to `account` may be answered at
    /// `now` (it takes a token); `false` when it is throttled. An operation without a limit is
    /// always admitted. Allocates only the first time an account calls an operation limited per
    /// account.
    pub(crate) fn admit(&mut self, operation: &str, account: &str, now: Instant) -> bool {
        let Some(limited) = self.limits.get_mut(operation) else {
            return true;
        };
        let limit = limited.limit;
        match limit.scope {
            RateLimitScope::Global => limited.global.take(&limit, now),
            RateLimitScope::Account => match limited.accounts.get_mut(account) {
                Some(bucket) => bucket.take(&limit, now),
                None => {
                    let mut bucket = Bucket::full(&limit, now);
                    let admitted = bucket.take(&limit, now);
                    limited.accounts.insert(account.to_string(), bucket);
                    admitted
                }
            },
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limit(rate: f64, burst: u32, scope: RateLimitScope) -> RateLimitSpec {
        RateLimitSpec { rate, burst, scope }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_throttles() {
        let l = limit(1.0, 3, RateLimitScope::Global);
        let t0 = Instant::now();
        let mut b = Bucket::full(&l, t0);
        assert!(b.take(&l, t0));
        assert!(b.take(&l, t0));
        assert!(b.take(&l, t0));
        assert!(!b.take(&l, t0), "the 4th immediate call");
        assert!(!b.take(&l, t0 + ms(999)), "not a whole token yet");
        assert!(b.take(&l, t0 + ms(1000)), "one token a second");
        assert!(!b.take(&l, t0 + ms(1000)));
    }

    #[test]
    fn refill_stops_at_the_burst() {
        let l = limit(10.0, 2, RateLimitScope::Global);
        let t0 = Instant::now();
        let mut b = Bucket::full(&l, t0);
        assert!(b.take(&l, t0) && b.take(&l, t0) && !b.take(&l, t0));
        // An hour later the bucket holds 2, not 36000.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(&l, later) && b.take(&l, later));
        assert!(!b.take(&l, later));
        assert_eq!(b.tokens(), 0.0);
    }

    #[test]
    fn refill_is_proportional_to_elapsed_time() {
        let l = limit(20.0, 20, RateLimitScope::Global);
        let t0 = Instant::now();
        let mut b = Bucket::full(&l, t0);
        for _ in 0..20 {
            assert!(b.take(&l, t0));
        }
        assert!(!b.take(&l, t0));
        // 250 ms at 20/s: 5 tokens.
        let t1 = t0 + ms(250);
        for i in 0..5 {
            assert!(b.take(&l, t1), "call {i}");
        }
        assert!(!b.take(&l, t1));
    }

    #[test]
    fn fractional_rates_refill_a_token_over_several_seconds() {
        let half = limit(0.5, 1, RateLimitScope::Global);
        let t0 = Instant::now();
        let mut b = Bucket::full(&half, t0);
        assert!(b.take(&half, t0));
        assert!(!b.take(&half, t0 + ms(1999)));
        assert!(b.take(&half, t0 + ms(2000)));

        let third = limit(1.0 / 3.0, 1, RateLimitScope::Global);
        let mut b = Bucket::full(&third, t0);
        assert!(b.take(&third, t0));
        assert!(!b.take(&third, t0 + ms(2990)));
        assert!(b.take(&third, t0 + ms(3000)), "1/3 per second for 3 seconds is a token");
        // Refills accumulate across throttled calls: 1.5 s + 1.5 s is 3 s.
        assert!(!b.take(&third, t0 + ms(4500)));
        assert!(b.take(&third, t0 + ms(6000)));
    }

    #[test]
    fn a_throttled_call_takes_nothing_and_time_never_runs_backwards() {
        let l = limit(1.0, 1, RateLimitScope::Global);
        let t0 = Instant::now();
        let mut b = Bucket::full(&l, t0 + ms(500));
        assert!(b.take(&l, t0 + ms(500)));
        for _ in 0..100 {
            assert!(!b.take(&l, t0 + ms(500)));
        }
        // An earlier instant (a racing caller) neither refills nor moves the clock back.
        assert!(!b.take(&l, t0));
        assert!(b.take(&l, t0 + ms(1500)));
    }

    #[test]
    fn operations_have_their_own_buckets_and_unlimited_ones_always_pass() {
        let t0 = Instant::now();
        let limits = BTreeMap::from([
            ("AssumeRoot".to_string(), limit(1.0, 1, RateLimitScope::Global)),
            ("ListAccounts".to_string(), limit(1.0, 2, RateLimitScope::Global)),
        ]);
        let mut r = RateLimiter::new(&limits, t0);
        assert!(!r.is_empty());
        assert!(r.admit("AssumeRoot", "111111111111", t0));
        assert!(!r.admit("AssumeRoot", "222222222222", t0), "global: any account");
        assert!(r.admit("ListAccounts", "111111111111", t0));
        assert!(r.admit("ListAccounts", "111111111111", t0));
        assert!(!r.admit("ListAccounts", "111111111111", t0));
        for _ in 0..1000 {
            assert!(r.admit("GetCallerIdentity", "111111111111", t0));
        }
        assert!(RateLimiter::new(&BTreeMap::new(), t0).is_empty());
    }

    #[test]
    fn account_scope_keeps_one_bucket_per_calling_account() {
        let t0 = Instant::now();
        let limits = BTreeMap::from([("GetAccountSummary".to_string(), limit(2.0, 2, RateLimitScope::Account))]);
        let mut r = RateLimiter::new(&limits, t0);
        for account in ["222222222222", "333333333333"] {
            assert!(r.admit("GetAccountSummary", account, t0), "{account}");
            assert!(r.admit("GetAccountSummary", account, t0), "{account}");
            assert!(!r.admit("GetAccountSummary", account, t0), "{account}");
        }
        // A new account starts with a full bucket, later too.
        let t1 = t0 + ms(100);
        assert!(r.admit("GetAccountSummary", "444444444444", t1));
        assert!(r.admit("GetAccountSummary", "444444444444", t1));
        assert!(!r.admit("GetAccountSummary", "444444444444", t1));
        // Each refills on its own: 500 ms at 2/s is one token.
        let t2 = t0 + ms(500);
        assert!(r.admit("GetAccountSummary", "222222222222", t2));
        assert!(!r.admit("GetAccountSummary", "222222222222", t2));
        assert!(!r.admit("GetAccountSummary", "444444444444", t2), "refilled 0.8 only");
    }
}
