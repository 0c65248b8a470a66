//! Client-side rate limits: a token bucket per account, region and EC2
//! throttling class, shared by every caller in the node, so that a thousand
//! process actors observing at once stay inside EC2's request budget instead
//! of discovering it through `RequestLimitExceeded`.
//!
//! Adaptive: when EC2 throttles anyway, the class's refill rate is halved
//! (down to a tenth) and its tokens drained; each success recovers a little.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::Scope;

/// EC2's throttling classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiClass {
    /// `Describe*`.
    Read,
    /// Other mutating calls.
    Write,
    /// `AuthorizeSecurityGroup*` and `RevokeSecurityGroup*`.
    SecurityGroupRules,
    /// `CreateTags` and `DeleteTags`.
    Tags,
}

impl ApiClass {
    /// The class of an EC2 action name (`DescribeVpcs`, `CreateTags`, ...).
    pub fn of(action: &str) -> ApiClass {
        if action.starts_with("Describe") {
            ApiClass::Read
        } else if action.starts_with("AuthorizeSecurityGroup")
            || action.starts_with("RevokeSecurityGroup")
        {
            ApiClass::SecurityGroupRules
        } else if action == "CreateTags" || action == "DeleteTags" {
            ApiClass::Tags
        } else {
            ApiClass::Write
        }
    }
}

/// One bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketConfig {
    pub capacity: f64,
    pub refill_per_sec: f64,
}

/// The buckets of each class; the defaults are EC2's documented ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub read: BucketConfig,
    pub write: BucketConfig,
    pub security_group_rules: BucketConfig,
    pub tags: BucketConfig,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            read: BucketConfig {
                capacity: 100.0,
                refill_per_sec: 20.0,
            },
            write: BucketConfig {
                capacity: 50.0,
                refill_per_sec: 5.0,
            },
            security_group_rules: BucketConfig {
                capacity: 50.0,
                refill_per_sec: 5.0,
            },
            tags: BucketConfig {
                capacity: 100.0,
                refill_per_sec: 10.0,
            },
        }
    }
}

impl RateLimits {
    /// Limits so high they never wait (for tests and benchmarks).
    pub fn unlimited() -> Self {
        let b = BucketConfig {
            capacity: 1e12,
            refill_per_sec: 1e12,
        };
        RateLimits {
            read: b,
            write: b,
            security_group_rules: b,
            tags: b,
        }
    }

    fn of(&self, class: ApiClass) -> BucketConfig {
        match class {
            ApiClass::Read => self.read,
            ApiClass::Write => self.write,
            ApiClass::SecurityGroupRules => self.security_group_rules,
            ApiClass::Tags => self.tags,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Fraction of the configured refill rate in force (adaptive).
    factor: f64,
}

/// The node's shared token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(Scope, ApiClass), Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a call of `class` in `scope` may go out, and takes its
    /// token.
    pub async fn acquire(&self, scope: &Scope, class: ApiClass) {
        loop {
            match self.try_acquire(scope, class) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Takes a token if one is there, else says how long to wait for one.
    pub fn try_acquire(&self, scope: &Scope, class: ApiClass) -> Result<(), Duration> {
        let cfg = self.limits.of(class);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets
            .entry((scope.clone(), class))
            .or_insert_with(|| Bucket {
                tokens: cfg.capacity,
                last: now,
                factor: 1.0,
            });
        let rate = cfg.refill_per_sec * b.factor;
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(cfg.capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let secs = (1.0 - b.tokens) / rate.max(1e-9);
            // A misconfigured bucket (NaN, negative) must not panic: wait the
            // longest pause instead.
            Err(Duration::try_from_secs_f64(secs.min(60.0)).unwrap_or(Duration::from_secs(60)))
        }
    }

    /// EC2 throttled a call of `class` anyway: halve the refill rate and
    /// drain the bucket.
    pub fn throttled(&self, scope: &Scope, class: ApiClass) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&(scope.clone(), class)) {
            b.factor = (b.factor * 0.5).max(0.1);
            b.tokens = 0.0;
        }
    }

    /// A call of `class` succeeded: recover a little of the refill rate.
    pub fn succeeded(&self, scope: &Scope, class: ApiClass) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&(scope.clone(), class)) {
            b.factor = (b.factor + 0.05).min(1.0);
        }
    }

    /// The fraction of the configured refill rate now in force.
    pub fn factor(&self, scope: &Scope, class: ApiClass) -> f64 {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(&(scope.clone(), class))
            .map_or(1.0, |b| b.factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(ApiClass::of("DescribeVpcs"), ApiClass::Read);
        assert_eq!(ApiClass::of("CreateVpc"), ApiClass::Write);
        assert_eq!(
            ApiClass::of("RevokeSecurityGroupIngress"),
            ApiClass::SecurityGroupRules
        );
        assert_eq!(ApiClass::of("CreateTags"), ApiClass::Tags);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_empties_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(RateLimits::default());
        let scope = Scope::new("1", "us-west-2");
        let other = Scope::new("1", "eu-west-1");
        for _ in 0..50 {
            assert!(limiter.try_acquire(&scope, ApiClass::Write).is_ok());
        }
        let wait = limiter.try_acquire(&scope, ApiClass::Write).unwrap_err();
        assert!(
            wait <= Duration::from_millis(200) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Other regions and classes have their own buckets.
        assert!(limiter.try_acquire(&other, ApiClass::Write).is_ok());
        assert!(limiter.try_acquire(&scope, ApiClass::Read).is_ok());
        // 10 more writes at 5/s take about two seconds.
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire(&scope, ApiClass::Write).await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate() {
        let limiter = RateLimiter::new(RateLimits::default());
        let scope = Scope::new("1", "us-west-2");
        limiter.acquire(&scope, ApiClass::Write).await;
        limiter.throttled(&scope, ApiClass::Write);
        assert_eq!(limiter.factor(&scope, ApiClass::Write), 0.5);
        let wait = limiter.try_acquire(&scope, ApiClass::Write).unwrap_err();
        assert!(wait >= Duration::from_millis(390), "{wait:?}");
        limiter.succeeded(&scope, ApiClass::Write);
        assert!(limiter.factor(&scope, ApiClass::Write) > 0.5);
    }
}
