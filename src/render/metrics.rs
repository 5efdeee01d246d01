//! `/metrics`: the snapshot's families (the table in [`super::families`]) rendered at scrape
//! time from the latest snapshot, after the registered self-metrics; and the conversion to the
//! classic text format for clients that do not ask for OpenMetrics.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::exposition::Writer;
use super::families::{self, Process};
use crate::config::Config;
use crate::refresh::SnapshotReceiver;
use crate::snapshot::Snapshot;
use crate::telemetry::Telemetry;

/// Everything `/metrics` serves.
#[derive(Debug)]
pub struct MetricsSource {
    /// The cumulative self-metrics.
    registry: Registry,
    snapshots: SnapshotReceiver,
    /// The running configuration (a reload may change it).
    configs: watch::Receiver<Arc<Config>>,
}

impl MetricsSource {
    pub fn new(snapshots: SnapshotReceiver, configs: watch::Receiver<Arc<Config>>, telemetry: &Telemetry) -> Self {
        let mut registry = Registry::default();
        telemetry.register(&mut registry);
        registry.register_collector(Box::new(super::process::ProcessCollector));
        if configs.borrow().events_queue_url.is_some() {
            telemetry.register_events(&mut registry);
        }
        MetricsSource {
            registry,
            snapshots,
            configs,
        }
    }

    /// The whole exposition as OpenMetrics text.
    pub fn encode_openmetrics(&self) -> String {
        let snapshot = self.snapshots.borrow().clone();
        let mut out = String::with_capacity(64 * 1024);
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        let process = {
            let config = self.configs.borrow();
            Process {
                refresh_interval: config.refresh_interval,
                account_tags: config.account_tags.clone(),
            }
        };
        let mut writer = Writer::new(out);
        families::render(&mut writer, &process, snapshot.as_deref());
        let mut out = writer.into_string();
        out.push_str("# EOF\n");
        out
    }
}

/// The snapshot's families alone, as OpenMetrics text: a pure function of its arguments.
pub fn render_snapshot(snapshot: Option<&Snapshot>, process: &Process) -> String {
    let mut writer = Writer::default();
    families::render(&mut writer, process, snapshot);
    let mut out = writer.into_string();
    out.push_str("# EOF\n");
    out
}

/// Rewrite OpenMetrics text as the Prometheus text format 0.0.4: counter families are named
/// with their `_total` suffix, and the `# EOF` and `# UNIT` lines go.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_with_total() {
        let om = "# HELP x_requests Calls.\n# TYPE x_requests counter\nx_requests_total{a=\"b\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP x_requests_total Calls.\n# TYPE x_requests_total counter\nx_requests_total{a=\"b\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
