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
struct OrganizationRefreshLabels {
    organization: Arc<str>,
    result: &'static str,
}

/// The organization of single-organization configurations (the `organization` label).
pub const DEFAULT_ORGANIZATION: &str = "default";

/// A gauge that each organization sets for itself and that is served as one value per label
/// set: the lowest of the organizations' (the tightest concurrency limit; a queue down anywhere
/// is down). Its labels stay those of a single organization.
#[derive(Debug, Default)]
struct LowestOf<L: Ord> {
    values: std::sync::Mutex<std::collections::BTreeMap<L, std::collections::BTreeMap<Arc<str>, i64>>>,
}

impl<L: Ord + Clone> LowestOf<L> {
    fn set(&self, labels: L, organization: &Arc<str>, value: i64) {
        let mut values = self.values.lock().expect("gauge lock");
        values.entry(labels).or_default().insert(organization.clone(), value);
    }

    fn lowest(&self) -> Vec<(L, i64)> {
        let values = self.values.lock().expect("gauge lock");
        values
            .iter()
            .filter_map(|(l, by_org)| by_org.values().min().map(|v| (l.clone(), *v)))
            .collect()
    }
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
    concurrency_limit: Arc<LowestOf<(&'static str, &'static str)>>,
    refreshes: Family<OrganizationRefreshLabels, Counter>,
    events: Family<EventLabels, Counter>,
    event_audits: Family<RefreshLabels, Counter>,
    event_latency: Histogram,
    queue_up: Arc<LowestOf<()>>,
    queue_read_failures: Counter,
    /// The running refresh of each organization.
    progresses: Arc<std::sync::Mutex<Vec<Arc<Progress>>>>,
    /// This handle's organization: what its refreshes, limits and queue reads count for.
    organization: Arc<str>,
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
/// With several organizations: the longest running refresh, and the accounts of all running
/// ones together (the labels stay those of one organization).
#[derive(Debug)]
struct ProgressCollector(Arc<std::sync::Mutex<Vec<Arc<Progress>>>>);

impl Collector for ProgressCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let progresses = self.0.lock().expect("progress list lock").clone();
        let running: Vec<(std::time::Duration, ProgressNow)> = progresses
            .iter()
            .filter_map(|p| Some((p.running_for()?, p.now())))
            .collect();
        let Some(running_for) = running.iter().map(|(d, _)| *d).max() else {
            return Ok(());
        };
        let now = running.iter().fold(ProgressNow::default(), |a, (_, n)| ProgressNow {
            found: a.found + n.found,
            done: a.done + n.done,
            failed: a.failed + n.failed,
            listed: a.listed && n.listed,
        });
        let running = running_for;
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

impl Default for ProgressNow {
    fn default() -> Self {
        ProgressNow {
            found: 0,
            done: 0,
            failed: 0,
            listed: true,
        }
    }
}

/// `aws_root_exporter_aws_concurrency_limit`: per operation, the lowest limit of the
/// organizations' callers.
#[derive(Debug)]
struct ConcurrencyCollector(Arc<LowestOf<(&'static str, &'static str)>>);

impl Collector for ConcurrencyCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let lowest = self.0.lowest();
        if lowest.is_empty() {
            return Ok(());
        }
        let mut family = enc.encode_descriptor(
            "aws_root_exporter_aws_concurrency_limit",
            "Calls of the operation the exporter currently lets run at once: the configured concurrency, lowered while AWS throttles.",
            None,
            MetricType::Gauge,
        )?;
        for ((service, operation), limit) in lowest {
            ConstGauge::new(limit).encode(family.encode_family(&CallLabels { service, operation })?)?;
        }
        Ok(())
    }
}

/// `aws_root_exporter_events_queue_up`: 0 while any organization's queue cannot be read.
#[derive(Debug)]
struct QueueUpCollector(Arc<LowestOf<()>>);

impl Collector for QueueUpCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let Some(((), up)) = self.0.lowest().into_iter().next() else {
            return Ok(());
        };
        ConstGauge::new(up).encode(enc.encode_descriptor(
            "aws_root_exporter_events_queue_up",
            "1 if the last read of the events queue succeeded, 0 if it failed.",
            None,
            MetricType::Gauge,
        )?)
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        let progress = Arc::<Progress>::default();
        Telemetry {
            requests: Family::default(),
            errors: Family::default(),
            retries: Family::default(),
            throttled: Family::default(),
            concurrency_limit: Arc::default(),
            refreshes: Family::default(),
            events: Family::default(),
            event_audits: Family::default(),
            event_latency: Histogram::new(EVENT_LATENCY_BUCKETS),
            queue_up: Arc::default(),
            queue_read_failures: Counter::default(),
            progresses: Arc::new(std::sync::Mutex::new(vec![progress.clone()])),
            organization: DEFAULT_ORGANIZATION.into(),
            progress,
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
        registry.register_collector(Box::new(ConcurrencyCollector(self.concurrency_limit.clone())));
        registry.register(
            "aws_root_exporter_refreshes",
            "Finished refreshes of the organization snapshot, by result",
            self.refreshes.clone(),
        );
        registry.register_collector(Box::new(ProgressCollector(self.progresses.clone())));
    }

    /// The same families, counting for `organization` (its refreshes, its callers' concurrency
    /// limits, its events queue), with a progress of its own.
    pub fn for_organization(&self, organization: &str) -> Telemetry {
        let progress = Arc::<Progress>::default();
        self.progresses
            .lock()
            .expect("progress list lock")
            .push(progress.clone());
        Telemetry {
            organization: organization.into(),
            progress,
            progresses: self.progresses.clone(),
            ..self.clone()
        }
    }

    /// The progress of this organization's refreshes, shared by every refresher built with this
    /// telemetry.
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
        registry.register_collector(Box::new(QueueUpCollector(self.queue_up.clone())));
        registry.register(
            "aws_root_exporter_events_queue_read_failures",
            "Reads of the events queue that failed",
            self.queue_read_failures.clone(),
        );
    }

    /// The events queue of this organization is not read yet (served as down until it is).
    pub fn queue_not_read_yet(&self) {
        self.queue_up.set((), &self.organization, 0);
    }

    pub fn record_queue_read(&self, ok: bool) {
        self.queue_up.set((), &self.organization, i64::from(ok));
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
        let labels = (operation.service(), operation.name());
        self.concurrency_limit
            .set(labels, &self.organization, i64::try_from(limit).unwrap_or(i64::MAX));
    }

    pub fn record_refresh(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.refreshes
            .get_or_create(&OrganizationRefreshLabels {
                organization: self.organization.clone(),
                result,
            })
            .inc();
    }
}
