//! When refreshes run: [`Schedule`] (the interval, discovery retry backoff) and [`run`], the
//! loop that refreshes, publishes and rebuilds the refresher on a new configuration.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::Refresher;
use crate::config::Config;
use crate::snapshot::SnapshotSender;

/// When the next refresh starts. After a refresh that listed the organization: one
/// `refresh_interval` after it started. After a failed discovery: a retry, the first within
/// [`Schedule::FIRST_RETRY`], then doubling, at most `refresh_interval`, counted from the end of
/// the failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    retry: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            retry: Self::FIRST_RETRY,
        }
    }
}

impl Schedule {
    pub const FIRST_RETRY: Duration = Duration::from_secs(5);

    /// The next start after a refresh that started at `started`, finished at `finished` and
    /// did (or did not) list the organization.
    pub fn next(&mut self, listed: bool, started: Instant, finished: Instant, interval: Duration) -> Instant {
        if listed {
            self.retry = Self::FIRST_RETRY;
            started + interval
        } else {
            let wait = self.retry.min(interval);
            self.retry = self.retry.saturating_mul(2).min(interval);
            finished + wait
        }
    }
}

/// Refresh now, then on [`Schedule`]; never two at once. `configs` carries the configuration
/// (a reload sends a new one): each change rebuilds the refresher with `build` and applies from
/// the next refresh on; the current refresher is published on `refreshers` (for the events
/// consumer). A finished refresh keeps what event-triggered audits learned while it ran. Runs
/// until the task is dropped.
pub async fn run<B, F>(
    mut configs: watch::Receiver<Arc<Config>>,
    build: B,
    tx: SnapshotSender,
    refreshers: watch::Sender<Option<Arc<Refresher>>>,
) where
    B: Fn(Arc<Config>) -> F,
    F: Future<Output = Refresher>,
{
    let mut config = configs.borrow_and_update().clone();
    let mut refresher = Arc::new(build(config.clone()).await);
    refreshers.send_replace(Some(refresher.clone()));
    let mut schedule = Schedule::default();
    let mut reloads_open = true;
    loop {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let previous = tx.borrow().clone();
        let refreshed = refresher.refresh(previous.as_deref()).await;
        let listed = refreshed.refresh_ok;
        tx.send_modify(|latest| {
            *latest = Some(Arc::new(refreshed.keep_newer(latest.as_deref(), started_at)));
        });
        refresher.record(listed);
        let finished = Instant::now();
        let mut next = schedule.next(listed, started, finished, config.refresh_interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => break,
                changed = configs.changed(), if reloads_open => {
                    if changed.is_err() {
                        reloads_open = false;
                        continue;
                    }
                    config = configs.borrow_and_update().clone();
                    refresher = Arc::new(build(config.clone()).await);
                    refreshers.send_replace(Some(refresher.clone()));
                    if listed {
                        next = started + config.refresh_interval;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_discovery_is_retried_soon_then_less_often() {
        let hour = Duration::from_secs(3600);
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let waits: Vec<u64> = (0..5).map(|_| (s.next(false, t0, t0, hour) - t0).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80]);
        assert_eq!(s.next(true, t0, t0, hour) - t0, hour, "a success resets the backoff");
        assert_eq!(s.next(false, t0, t0, hour) - t0, Schedule::FIRST_RETRY);
        let mut short = Schedule::default();
        for _ in 0..4 {
            assert!(short.next(false, t0, t0, Duration::from_secs(7)) - t0 <= Duration::from_secs(7));
        }
    }
}
