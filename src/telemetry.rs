//! The exporter's own cumulative metrics (AWS calls, errors, refreshes), kept in ordinary
//! registered families; everything about accounts is rendered from the snapshot instead.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::aws::call::Operation;
use crate::model::FailureReason;

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

/// Cheap to clone; every clone counts into the same families.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    requests: Family<CallLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    retries: Family<ErrorLabels, Counter>,
    refreshes: Family<RefreshLabels, Counter>,
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
            "aws_root_exporter_refreshes",
            "Finished refreshes of the organization snapshot, by result",
            self.refreshes.clone(),
        );
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

    pub fn record_refresh(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.refreshes.get_or_create(&RefreshLabels { result }).inc();
    }

    /// Calls counted so far for one operation (for tests and benchmarks).
    pub fn requests_for(&self, operation: Operation) -> u64 {
        self.requests
            .get_or_create(&CallLabels {
                service: operation.service(),
                operation: operation.name(),
            })
            .get()
    }
}
