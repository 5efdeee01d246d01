//! The exporter's own cumulative metrics (AWS calls, errors, refreshes), kept in ordinary
//! registered families; everything about accounts is rendered from the snapshot instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::model::FailureReason;
use crate::operation::Operation;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    service: &'static str,
    operation: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    outcome: &'static str,
}

/// Upper bounds of the event-to-snapshot latency buckets, in seconds.
const EVENT_LATENCY_BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// Cheap to clone; every clone counts into the same families.
#[derive(Clone, Debug)]
pub struct Telemetry {
    requests: Family<CallLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    retries: Family<ErrorLabels, Counter>,
    throttled: Family<CallLabels, Counter>,
    concurrency_limit: Family<CallLabels, Gauge>,
    refreshes: Family<RefreshLabels, Counter>,
    events: Family<EventLabels, Counter>,
    event_audits: Family<RefreshLabels, Counter>,
    event_latency: Histogram,
    queue_up: Gauge,
    queue_read_failures: Counter,
    progress: Arc<Progress>,
}

/// How far the running refresh is: when it started, accounts to audit found so far, audits done
/// and failed, whether the listing is complete. Reset when a refresh starts; served by
/// [`ProgressCollector`] while a refresh runs, and read by `audit`'s progress line.
#[derive(Debug, Default)]
pub struct Progress {
    started: std::sync::Mutex<Option<Instant>>,
    found: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    listed: AtomicBool,
}

/// What [`Progress::now`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressNow {
    /// Accounts to audit found so far (all of them once `listed`).
    pub found: usize,
    pub done: usize,
    pub failed: usize,
    pub listed: bool,
}

/// A refresh is running while this lives.
#[must_use = "the refresh counts as running only while the guard lives"]
pub struct Running<'a>(&'a Progress);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.started.lock().expect("progress lock") = None;
    }
}

impl Progress {
    /// A refresh starts now; it runs until the guard is dropped.
    pub fn start(&self) -> Running<'_> {
        for n in [&self.found, &self.done, &self.failed] {
            n.store(0, Ordering::Relaxed);
        }
        self.listed.store(false, Ordering::Relaxed);
        *self.started.lock().expect("progress lock") = Some(Instant::now());
        Running(self)
    }

    pub fn found(&self) {
        self.found.fetch_add(1, Ordering::Relaxed);
    }

    pub fn listed(&self) {
        self.listed.store(true, Ordering::Relaxed);
    }

    pub fn audited(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn now(&self) -> ProgressNow {
        ProgressNow {
            found: self.found.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            listed: self.listed.load(Ordering::Relaxed),
        }
    }

    /// How long the running refresh has been going; `None` when none runs.
    pub fn running_for(&self) -> Option<std::time::Duration> {
        self.started.lock().expect("progress lock").map(|t| t.elapsed())
    }
}

/// The running refresh at scrape time: how long it has run and how far it is. Nothing while no
/// refresh runs. Before the first refresh ends, these are the only signs of life of the audit
/// (a first refresh that never ends pages through them).
#[derive(Debug)]
struct ProgressCollector(Arc<Progress>);

impl Collector for ProgressCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let Some(running) = self.0.running_for() else {
            return Ok(());
        };
        let now = self.0.now();
        ConstGauge::new(running.as_secs_f64()).encode(enc.encode_descriptor(
            "aws_root_exporter_refresh_in_progress_seconds",
            "Time the running refresh has taken so far; absent while no refresh runs.",
            None,
            MetricType::Gauge,
        )?)?;
        let mut family = enc.encode_descriptor(
            "aws_root_exporter_refresh_in_progress_accounts",
            "Accounts of the running refresh so far: found (to audit; the listing may still be going on), audited (attempts finished), failed (of those); absent while no refresh runs.",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in [("found", now.found), ("audited", now.done), ("failed", now.failed)] {
            ConstGauge::new(n as i64).encode(family.encode_family(&[("state", state)])?)?;
        }
        Ok(())
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            requests: Family::default(),
            errors: Family::default(),
            retries: Family::default(),
            throttled: Family::default(),
            concurrency_limit: Family::default(),
            refreshes: Family::default(),
            events: Family::default(),
            event_audits: Family::default(),
            event_latency: Histogram::new(EVENT_LATENCY_BUCKETS),
            queue_up: Gauge::default(),
            queue_read_failures: Counter::default(),
            progress: Arc::default(),
        }
    }
}

impl Telemetry {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_root_exporter_aws_requests",
            "AWS API calls made by the exporter (one per call, however many attempts it took)",
            self.requests.clone(),
        );
        registry.register(
            "aws_root_exporter_aws_request_errors",
            "AWS API calls that failed after the exporter's retries, by failure reason",
            self.errors.clone(),
        );
        registry.register(
            "aws_root_exporter_aws_request_retries",
            "Failed attempts of AWS API calls that were retried, by failure reason",
            self.retries.clone(),
        );
        registry.register(
            "aws_root_exporter_aws_throttled_answers",
            "Answers of AWS that were throttling errors (every attempt, retried or not)",
            self.throttled.clone(),
        );
        registry.register(
            "aws_root_exporter_aws_concurrency_limit",
            "Calls of the operation the exporter currently lets run at once: the configured concurrency, lowered while AWS throttles",
            self.concurrency_limit.clone(),
        );
        registry.register(
            "aws_root_exporter_refreshes",
            "Finished refreshes of the organization snapshot, by result",
            self.refreshes.clone(),
        );
        registry.register_collector(Box::new(ProgressCollector(self.progress.clone())));
    }

    /// The progress of refreshes, shared by every refresher built with this telemetry.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// The events families, registered only when `events_queue_url` is set.
    pub fn register_events(&self, registry: &mut Registry) {
        registry.register(
            "aws_root_exporter_events_received",
            "Messages read from the events queue, by outcome: relevant (a root credential change or root sign-in in an audited account: re-audited), activity (other root activity, counted), irrelevant, malformed",
            self.events.clone(),
        );
        registry.register(
            "aws_root_exporter_event_audits",
            "Audits of single accounts triggered by events, by result",
            self.event_audits.clone(),
        );
        registry.register(
            "aws_root_exporter_event_to_snapshot_seconds",
            "Time from an event's own time (when AWS emitted it) to the published snapshot with the account re-audited",
            self.event_latency.clone(),
        );
        registry.register(
            "aws_root_exporter_events_queue_up",
            "1 if the last read of the events queue succeeded, 0 if it failed",
            self.queue_up.clone(),
        );
        registry.register(
            "aws_root_exporter_events_queue_read_failures",
            "Reads of the events queue that failed",
            self.queue_read_failures.clone(),
        );
    }

    pub fn record_queue_read(&self, ok: bool) {
        self.queue_up.set(i64::from(ok));
        if !ok {
            self.queue_read_failures.inc();
        }
    }

    /// Count one message from the events queue: `relevant`, `irrelevant` or `malformed`.
    pub fn record_event(&self, outcome: &'static str) {
        self.events.get_or_create(&EventLabels { outcome }).inc();
    }

    pub fn record_event_audit(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.event_audits.get_or_create(&RefreshLabels { result }).inc();
    }

    pub fn observe_event_latency(&self, latency: std::time::Duration) {
        self.event_latency.observe(latency.as_secs_f64());
    }

    /// Count one AWS call and, when it failed, why.
    pub fn record_call(&self, operation: Operation, failure: Option<FailureReason>) {
        let (service, name) = (operation.service(), operation.name());
        self.requests
            .get_or_create(&CallLabels {
                service,
                operation: name,
            })
            .inc();
        if let Some(reason) = failure {
            self.errors
                .get_or_create(&ErrorLabels {
                    service,
                    operation: name,
                    reason: reason.as_str(),
                })
                .inc();
        }
    }

    /// Count one failed attempt that is retried.
    pub fn record_retry(&self, operation: Operation, reason: FailureReason) {
        self.retries
            .get_or_create(&ErrorLabels {
                service: operation.service(),
                operation: operation.name(),
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Count one throttling answer.
    pub fn record_throttled(&self, operation: Operation) {
        self.throttled
            .get_or_create(&CallLabels {
                service: operation.service(),
                operation: operation.name(),
            })
            .inc();
    }

    /// The current adaptive limit of calls in flight for `operation`.
    pub fn set_concurrency_limit(&self, operation: Operation, limit: usize) {
        self.concurrency_limit
            .get_or_create(&CallLabels {
                service: operation.service(),
                operation: operation.name(),
            })
            .set(limit as i64);
    }

    pub fn record_refresh(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.refreshes.get_or_create(&RefreshLabels { result }).inc();
    }
}
