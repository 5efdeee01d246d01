//! How many calls of one AWS operation are in flight at once: adapted to AWS's throttling by
//! additive increase and multiplicative decrease (AIMD), per operation, under the configured
//! `concurrency` as the ceiling.
//!
//! Every limit starts at the ceiling, so an organization that is never throttled runs at full
//! speed from the first call. A throttling answer halves the operation's limit (at most once per
//! round of calls: the calls sent before a decrease that come back throttled do not decrease it
//! again); each answer that is not throttled adds `1 / limit`, so the limit grows by about one
//! per round trip of the whole window. The limit never goes below one call in flight: below that
//! the retries' jittered backoff spaces the calls out. (Spacing calls out further by a gap that
//! grows with throttling was tried and dropped: throttling that does not depend on the
//! exporter's own rate, another tool using up the same quota, made the gap grow until audits ran
//! into `account_timeout`.)
//!
//! The calls made inside audits (every operation but the organization's listing and the events
//! queue) also share one bound of `ceiling` calls in flight, whatever their operations: an audit
//! in `full` mode sends up to five calls at once, and `concurrency` audits would otherwise keep
//! five times `concurrency` requests, each with its own HTTP connection and buffers, in flight.
//! A call takes its operation's slot first and then its share of the bound, so a call that waits
//! for a throttled operation holds none of the bound meanwhile.

use std::sync::Mutex;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crate::operation::Operation;
use crate::telemetry::Telemetry;

/// The adaptive limits of every operation. Shared by all clones of a [`super::Caller`].
#[derive(Debug)]
pub struct Limits {
    ceiling: usize,
    operations: Vec<Limiter>,
    /// The calls of audits in flight, all operations together (fair: first come, first served).
    audit_calls: Semaphore,
    telemetry: Telemetry,
}

#[derive(Debug)]
struct Limiter {
    state: Mutex<State>,
    released: Notify,
    /// The limit last put into the self-metric (0: none yet, so the series appears with the
    /// operation's first call).
    reported: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct State {
    /// Calls allowed in flight (its whole part counts), from 1 to the ceiling.
    limit: f64,
    in_flight: usize,
    /// Incremented by every decrease: a throttling answer to a call sent before the latest
    /// decrease does not decrease the limit again.
    epoch: u64,
}

/// How one call ended, as far as the limit is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// AWS answered throttling.
    Throttled,
    /// Anything else that came back from AWS (success or another error).
    Other,
    /// No answer (a broken connection, a cancelled call): says nothing about the rate.
    None,
}

impl State {
    fn new(ceiling: usize) -> Self {
        State {
            limit: ceiling as f64,
            in_flight: 0,
            epoch: 0,
        }
    }

    /// Take a slot if the limit allows one: the call's epoch.
    fn try_start(&mut self) -> Option<u64> {
        if self.in_flight >= self.limit as usize {
            return None;
        }
        self.in_flight += 1;
        Some(self.epoch)
    }

    /// A call sent in `epoch` ended with `answer`. Returns whether a further call may start.
    fn finish(&mut self, epoch: u64, answer: Answer, ceiling: usize) -> bool {
        self.in_flight -= 1;
        match answer {
            Answer::Throttled if epoch == self.epoch => {
                self.epoch += 1;
                self.limit = (self.limit / 2.0).floor().max(1.0);
            }
            Answer::Throttled | Answer::None => {}
            Answer::Other => {
                self.limit = (self.limit + 1.0 / self.limit).min(ceiling as f64);
            }
        }
        self.in_flight < self.limit as usize
    }
}

impl Limits {
    pub fn new(ceiling: usize, telemetry: Telemetry) -> Self {
        let ceiling = ceiling.max(1);
        let operations = Operation::ALL
            .iter()
            .map(|_| Limiter {
                state: Mutex::new(State::new(ceiling)),
                released: Notify::new(),
                reported: std::sync::atomic::AtomicUsize::new(0),
            })
            .collect();
        Limits {
            ceiling,
            operations,
            audit_calls: Semaphore::new(ceiling),
            telemetry,
        }
    }

    fn limiter(&self, operation: Operation) -> &Limiter {
        &self.operations[operation as usize]
    }

    /// Wait for a slot for one call of `operation` (and, for a call of an audit, its share of the
    /// bound they share). Cancel-safe: what was taken is given back when the permit drops.
    pub async fn acquire(&self, operation: Operation) -> Permit<'_> {
        let limiter = self.limiter(operation);
        let epoch = loop {
            let released = limiter.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let taken = limiter.state.lock().expect("limit lock").try_start();
            match taken {
                Some(t) => break t,
                None => released.await,
            }
        };
        let mut permit = Permit {
            limits: self,
            operation,
            epoch,
            answer: Answer::None,
            shared: None,
        };
        if operation.is_audit_call() {
            // Never closed, so acquiring cannot fail.
            permit.shared = self.audit_calls.acquire().await.ok();
        }
        permit
    }
}

/// One call's slot; says how the call ended when it drops.
#[derive(Debug)]
pub struct Permit<'a> {
    limits: &'a Limits,
    operation: Operation,
    epoch: u64,
    answer: Answer,
    /// The call's share of the bound on audits' calls, given back when the permit drops.
    shared: Option<SemaphorePermit<'a>>,
}

impl Permit<'_> {
    pub fn answered(&mut self, answer: Answer) {
        self.answer = answer;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let limiter = self.limits.limiter(self.operation);
        let (more, limit) = {
            let mut state = limiter.state.lock().expect("limit lock");
            let more = state.finish(self.epoch, self.answer, self.limits.ceiling);
            let limit = state.limit as usize;
            // The self-metric only when the limit changed, not on every call; under the lock, so
            // that two answers cannot leave it at the older value.
            if limiter.reported.swap(limit, std::sync::atomic::Ordering::Relaxed) != limit {
                self.limits.telemetry.set_concurrency_limit(self.operation, limit);
            }
            (more, limit)
        };
        if more {
            limiter.released.notify_one();
            // The limit may have grown by one: a second waiter may start too.
            if limit > 1 {
                limiter.released.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn state(ceiling: usize) -> State {
        State::new(ceiling)
    }

    #[test]
    fn starts_at_the_ceiling_and_stays_there_without_throttling() {
        let mut s = state(4);
        let started: Vec<_> = (0..5).map(|_| s.try_start()).collect();
        assert!(started[..4].iter().all(Option::is_some));
        assert!(started[4].is_none(), "a fifth call waits");
        for _ in 0..1000 {
            s.finish(0, Answer::Other, 4);
            s.try_start().unwrap();
        }
        assert_eq!(s.limit, 4.0);
    }

    #[test]
    fn throttling_halves_once_per_round_and_success_adds_back() {
        let mut s = state(64);
        let epochs: Vec<u64> = (0..64).map(|_| s.try_start().unwrap()).collect();
        // The whole window comes back throttled: one decrease, not 64.
        for e in &epochs {
            s.finish(*e, Answer::Throttled, 64);
        }
        assert_eq!(s.limit, 32.0);
        let e = s.try_start().unwrap();
        s.finish(e, Answer::Throttled, 64);
        assert_eq!(s.limit, 16.0, "a call sent after the decrease decreases again");
        // Additive increase: about one per window of answers.
        for _ in 0..16 {
            let e = s.try_start().unwrap();
            s.finish(e, Answer::Other, 64);
        }
        assert!((s.limit - 17.0).abs() < 0.1, "limit {}", s.limit);
        // Answers without AWS in them change nothing.
        let e = s.try_start().unwrap();
        s.finish(e, Answer::None, 64);
        assert!((s.limit - 17.0).abs() < 0.1);
    }

    #[test]
    fn the_limit_stays_at_one_or_more() {
        let mut s = state(4);
        for _ in 0..10 {
            let e = s.try_start().unwrap();
            s.finish(e, Answer::Throttled, 4);
        }
        assert_eq!(s.limit, 1.0);
        assert!(s.try_start().is_some(), "one call still goes");
    }

    #[tokio::test]
    async fn the_self_metric_follows_the_limit() {
        let telemetry = Telemetry::default();
        let mut registry = prometheus_client::registry::Registry::default();
        telemetry.register(&mut registry);
        let gauge = || {
            let mut text = String::new();
            prometheus_client::encoding::text::encode_registry(&mut text, &registry).unwrap();
            text.lines()
                .find(|l| l.starts_with("aws_root_exporter_aws_concurrency_limit{") && l.contains("AssumeRoot"))
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
        };
        let limits = Limits::new(8, telemetry.clone());
        assert_eq!(gauge(), None, "no series before the first call");
        drop(limits.acquire(Operation::AssumeRoot).await);
        assert_eq!(gauge().as_deref(), Some("8"));
        let mut p = limits.acquire(Operation::AssumeRoot).await;
        p.answered(Answer::Throttled);
        drop(p);
        assert_eq!(gauge().as_deref(), Some("4"));
    }

    #[tokio::test]
    async fn audits_calls_share_one_bound_and_the_listing_is_outside_it() {
        let limits = std::sync::Arc::new(Limits::new(2, Telemetry::default()));
        // Two calls of different audit operations take the whole bound.
        let a = limits.acquire(Operation::GetAccountSummary).await;
        let b = limits.acquire(Operation::ListMfaDevices).await;
        let waiting = {
            let limits = limits.clone();
            tokio::spawn(async move {
                let _p = limits.acquire(Operation::ListAccessKeys).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "a third audit call waits although its own operation has no call in flight"
        );
        // The organization's listing does not wait for audits.
        let listing = tokio::time::timeout(Duration::from_secs(1), limits.acquire(Operation::ListAccountsForParent))
            .await
            .expect("a listing call is not held back by audits' calls");
        drop(listing);
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting audit call starts once one ends")
            .unwrap();
        drop(b);
    }

    #[tokio::test]
    async fn a_call_waiting_for_its_operation_holds_none_of_the_shared_bound() {
        let limits = std::sync::Arc::new(Limits::new(2, Telemetry::default()));
        // AssumeRoot throttled down to one call in flight.
        let mut p = limits.acquire(Operation::AssumeRoot).await;
        p.answered(Answer::Throttled);
        drop(p);
        let held = limits.acquire(Operation::AssumeRoot).await;
        let waiting: Vec<_> = (0..4)
            .map(|_| {
                let limits = limits.clone();
                tokio::spawn(async move {
                    let _p = limits.acquire(Operation::AssumeRoot).await;
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // One of the bound's two places is AssumeRoot's call; the other is free for IAM.
        let iam = tokio::time::timeout(Duration::from_secs(1), limits.acquire(Operation::GetAccountSummary))
            .await
            .expect("AssumeRoot's waiters leave the rest of the bound to other calls");
        drop(iam);
        drop(held);
        for w in waiting {
            tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn waiters_start_when_a_slot_is_released() {
        let limits = std::sync::Arc::new(Limits::new(2, Telemetry::default()));
        let a = limits.acquire(Operation::AssumeRoot).await;
        let b = limits.acquire(Operation::AssumeRoot).await;
        let other = limits.acquire(Operation::ListRoots).await;
        drop(other);
        let waiting = {
            let limits = limits.clone();
            tokio::spawn(async move {
                let _p = limits.acquire(Operation::AssumeRoot).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a third call waits at a limit of two");
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiter starts once a slot is free")
            .unwrap();
        drop(b);
    }
}
