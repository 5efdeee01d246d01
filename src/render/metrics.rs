//! `/metrics`: the registered self-metrics (live, at each scrape), then the snapshot's families
//! (the table in [`super::families`]). The families are the same in both exposition formats
//! (gauges only); they are rendered once per snapshot, straight into a compressed
//! [`Prepared`] body, and a gzip scrape joins the live part, the prepared bytes and the end
//! into one gzip member without compressing the families again. Also: the conversion of the
//! self-metrics to the classic text format for clients that do not ask for OpenMetrics.

use std::sync::Arc;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::exposition::Writer;
use super::families::{self, Process};
use crate::config::Config;
use crate::snapshot::{Snapshot, SnapshotReceiver, Snapshots};
use crate::telemetry::Telemetry;

/// Everything `/metrics` serves.
#[derive(Debug)]
pub struct MetricsSource {
    /// The cumulative self-metrics.
    registry: Registry,
    snapshots: Snapshots,
    /// The running configuration (a reload may change it).
    configs: watch::Receiver<Arc<Config>>,
    /// The families of the latest snapshot scraped, compressed, with what they were made from.
    prepared: tokio::sync::Mutex<Option<Arc<Prepared>>>,
}

/// The exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

/// A snapshot's families as raw deflate data, ending on a byte boundary but not final (a sync
/// flush), so that more deflate data can follow in the same stream; with the CRC-32 and length
/// of the text they hold, for the gzip trailer.
pub struct Prepared {
    snapshots: Vec<(Arc<str>, Option<Arc<Snapshot>>)>,
    config: Arc<Config>,
    /// Shared, not copied, by every gzip scrape that sends it.
    deflate: Bytes,
    crc: crc32fast::Hasher,
    /// Length of the text the deflate data holds.
    len: u64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("compressed", &self.deflate.len())
            .field("text", &self.len)
            .finish()
    }
}

/// Compression of the prepared families: the default level (done once per snapshot).
const LEVEL: Compression = Compression::new(6);

/// Feed `input` to `c`, appending its output to `out`; with `flush`, until the flush is done.
fn deflate(c: &mut Compress, input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    let start = c.total_in();
    loop {
        out.reserve(input.len() / 4 + 256);
        let consumed = (c.total_in() - start) as usize;
        let status = c
            .compress_vec(&input[consumed..], out, flush)
            .expect("deflate of data in memory cannot fail");
        let all_in = (c.total_in() - start) as usize == input.len();
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // Output room left over means the flush is complete.
            FlushCompress::None => all_in,
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return;
        }
    }
}

impl Prepared {
    /// Render the families of the organizations' `snapshots` for `config`, compressing as they
    /// are written.
    pub fn render(snapshots: Vec<(Arc<str>, Option<Arc<Snapshot>>)>, config: Arc<Config>) -> Prepared {
        let mut compress = Compress::new(LEVEL, false);
        let mut crc = crc32fast::Hasher::new();
        let mut out = Vec::new();
        let mut len = 0u64;
        {
            let mut sink = |chunk: &str| {
                crc.update(chunk.as_bytes());
                len += chunk.len() as u64;
                deflate(&mut compress, chunk.as_bytes(), FlushCompress::None, &mut out);
            };
            let mut writer = Writer::streaming(&mut sink);
            render_organizations(&mut writer, &snapshots, &config);
            writer.into_string();
        }
        deflate(&mut compress, &[], FlushCompress::Sync, &mut out);
        out.shrink_to_fit();
        Prepared {
            snapshots,
            config,
            deflate: Bytes::from(out),
            crc,
            len,
        }
    }

    fn made_from(&self, snapshots: &[(Arc<str>, Option<Arc<Snapshot>>)], config: &Arc<Config>) -> bool {
        let same = |a: &Option<Arc<Snapshot>>, b: &Option<Arc<Snapshot>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        self.snapshots.len() == snapshots.len()
            && self.snapshots.iter().zip(snapshots).all(|((_, a), (_, b))| same(a, b))
            && Arc::ptr_eq(&self.config, config)
    }

    /// The prepared families as text again, in chunks of at most [`super::exposition::CHUNK`]
    /// bytes (a plain scrape never holds the whole exposition in memory).
    pub fn text_chunks(self: Arc<Self>) -> impl futures::Stream<Item = Vec<u8>> + Send {
        use flate2::{Decompress, FlushDecompress};
        futures::stream::unfold((self, Decompress::new(false)), |(prepared, mut inflate)| async move {
            let consumed = inflate.total_in() as usize;
            if consumed >= prepared.deflate.len() {
                return None;
            }
            let mut out = Vec::with_capacity(super::exposition::CHUNK);
            inflate
                .decompress_vec(&prepared.deflate[consumed..], &mut out, FlushDecompress::Sync)
                .expect("the prepared body is valid deflate data");
            if out.is_empty() && inflate.total_in() as usize == consumed {
                return None;
            }
            Some((out, (prepared, inflate)))
        })
    }

    /// One gzip member: `head`, the prepared families, `tail`; the prepared bytes are shared,
    /// not copied, so concurrent scrapes cost a few KiB each rather than the whole body.
    pub fn gzip(&self, head: &str, tail: &str) -> Gzipped {
        const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        let mut start = Vec::with_capacity(head.len() / 4 + 64);
        start.extend_from_slice(&HEADER);
        let mut c = Compress::new(LEVEL, false);
        deflate(&mut c, head.as_bytes(), FlushCompress::Sync, &mut start);
        let mut end = Vec::with_capacity(64);
        let mut c = Compress::new(LEVEL, false);
        deflate(&mut c, tail.as_bytes(), FlushCompress::Finish, &mut end);
        let mut crc = crc32fast::Hasher::new();
        crc.update(head.as_bytes());
        crc.combine(&self.crc);
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(tail.as_bytes());
        crc.combine(&tail_crc);
        let len = head.len() as u64 + self.len + tail.len() as u64;
        end.extend_from_slice(&crc.finalize().to_le_bytes());
        end.extend_from_slice(&(len as u32).to_le_bytes());
        Gzipped {
            parts: [Bytes::from(start), self.deflate.clone(), Bytes::from(end)],
        }
    }
}

/// A gzip member in parts, to send one after the other.
#[derive(Debug, Clone)]
pub struct Gzipped {
    parts: [Bytes; 3],
}

impl Gzipped {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_parts(self) -> [Bytes; 3] {
        self.parts
    }

    /// The whole member in one buffer (tests).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }
}

impl MetricsSource {
    /// `/metrics` of one organization ([`crate::telemetry::DEFAULT_ORGANIZATION`]).
    pub fn new(snapshots: SnapshotReceiver, configs: watch::Receiver<Arc<Config>>, telemetry: &Telemetry) -> Self {
        Self::of_organizations(Snapshots::single(snapshots), configs, telemetry)
    }

    /// `/metrics` of every organization in `snapshots`.
    pub fn of_organizations(
        snapshots: Snapshots,
        configs: watch::Receiver<Arc<Config>>,
        telemetry: &Telemetry,
    ) -> Self {
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
            prepared: tokio::sync::Mutex::new(None),
        }
    }

    /// The self-metrics and the root activity counter, as OpenMetrics text without `# EOF`.
    fn live_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        let snapshots = self.snapshots.latest();
        // Most scrapes: nothing counted, nothing to render (no account is looked at).
        if snapshots
            .iter()
            .any(|(_, s)| s.as_ref().is_some_and(|s| !s.activity.is_empty()))
        {
            let snapshots = once_each(&snapshots, false);
            let latest: Vec<Option<&Snapshot>> = snapshots.iter().map(|(_, s)| s.as_deref()).collect();
            let mut writer = Writer::default();
            families::render_activity(&mut writer, &latest);
            out.push_str(&writer.into_string());
        }
        out
    }

    /// The whole exposition in `format`, gzip-compressed: the live self-metrics, then the
    /// snapshot's families from the prepared body (rendered now if the snapshot or the
    /// configuration changed since the last scrape; concurrent scrapes wait for one render).
    pub async fn gzip(&self, format: Format) -> Gzipped {
        let prepared = self.prepared().await;
        let live = self.live_openmetrics();
        match format {
            Format::OpenMetrics => prepared.gzip(&live, "# EOF\n"),
            Format::Text => prepared.gzip(&openmetrics_to_text(&live), ""),
        }
    }

    /// The whole exposition in `format`, uncompressed, as a stream of chunks: the live
    /// self-metrics, the prepared families inflated chunk by chunk, the end.
    pub async fn plain(&self, format: Format) -> impl futures::Stream<Item = Vec<u8>> + Send + use<> {
        use futures::StreamExt;
        let prepared = self.prepared().await;
        let live = self.live_openmetrics();
        let (head, tail) = match format {
            Format::OpenMetrics => (live, "# EOF\n"),
            Format::Text => (openmetrics_to_text(&live), ""),
        };
        futures::stream::once(std::future::ready(head.into_bytes()))
            .chain(prepared.text_chunks())
            .chain(futures::stream::once(std::future::ready(tail.as_bytes().to_vec())))
            .filter(|chunk| std::future::ready(!chunk.is_empty()))
    }

    /// The prepared families of the current snapshot and configuration.
    pub async fn prepared(&self) -> Arc<Prepared> {
        let snapshots = self.snapshots.latest();
        let config = self.configs.borrow().clone();
        let mut cached = self.prepared.lock().await;
        if let Some(p) = cached.as_ref().filter(|p| p.made_from(&snapshots, &config)) {
            return p.clone();
        }
        // Drop the old body first: two are never kept at once.
        *cached = None;
        let prepared = match tokio::task::spawn_blocking(move || Prepared::render(snapshots, config)).await {
            Ok(p) => Arc::new(p),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        *cached = Some(prepared.clone());
        prepared
    }

    /// The whole exposition as OpenMetrics text, rendered from scratch: what the prepared and
    /// streamed bodies must equal (the tests compare them).
    pub fn encode_openmetrics(&self) -> String {
        let snapshots = self.snapshots.latest();
        let config = self.configs.borrow().clone();
        let mut writer = Writer::default();
        render_organizations(&mut writer, &snapshots, &config);
        let mut families = writer.into_string();
        families.push_str("# EOF\n");
        self.live_openmetrics() + &families
    }
}

/// The snapshots with every account only in the first organization that lists it. Account ids
/// are unique across AWS, so an account listed twice means two entries reach one organization
/// (two roles into it): its series would be served twice, which makes the exposition invalid.
/// Shared, not copied, when no account is listed twice.
pub fn once_each(
    snapshots: &[(Arc<str>, Option<Arc<Snapshot>>)],
    warn: bool,
) -> Vec<(Arc<str>, Option<Arc<Snapshot>>)> {
    if snapshots.len() < 2 {
        return snapshots.to_vec();
    }
    // Borrowed ids: the live part of a scrape may run this too.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    snapshots
        .iter()
        .map(|(name, snapshot)| {
            let Some(s) = snapshot else {
                return (name.clone(), None);
            };
            let twice: Vec<&str> = s
                .accounts
                .iter()
                .map(|e| e.account.id.as_str())
                .filter(|id| !seen.insert(id))
                .collect();
            if twice.is_empty() {
                return (name.clone(), Some(s.clone()));
            }
            if warn {
                tracing::warn!(
                organization = %name,
                accounts = twice.len(),
                first = twice[0],
                "accounts of this organization are also listed by an earlier one (two entries of [[organizations]] reach the same organization?); served once, from the first"
                );
            }
            let twice: std::collections::HashSet<&str> = twice.into_iter().collect();
            let mut kept = (**s).clone();
            kept.accounts = Arc::new(
                s.accounts
                    .iter()
                    .filter(|e| !twice.contains(e.account.id.as_str()))
                    .cloned()
                    .collect(),
            );
            (name.clone(), Some(Arc::new(kept)))
        })
        .collect()
}

/// The families of every organization's snapshot under `config` (each organization with the
/// process facts of its own effective configuration).
fn render_organizations(
    writer: &mut Writer<'_>,
    snapshots: &[(Arc<str>, Option<Arc<Snapshot>>)],
    config: &Arc<Config>,
) {
    // Warned about once per rendered snapshot, not per scrape.
    let snapshots = once_each(snapshots, true);
    let snapshots = &snapshots[..];
    let organizations = crate::organization::of(config);
    let processes: Vec<Process> = snapshots
        .iter()
        .map(|(name, _)| {
            organizations
                .iter()
                .find(|o| o.name == **name)
                .map(|o| Process::of(&o.config))
                .unwrap_or_else(|| Process::of(config))
        })
        .collect();
    let views: Vec<families::Organization<'_>> = snapshots
        .iter()
        .zip(&processes)
        .map(|((name, snapshot), process)| families::Organization {
            name,
            snapshot: snapshot.as_deref(),
            process,
        })
        .collect();
    families::render(writer, &Process::of(config), &views);
}

/// The snapshot's families alone, as OpenMetrics text: a pure function of its arguments.
pub fn render_snapshot(snapshot: Option<&Snapshot>, process: &Process) -> String {
    let mut writer = Writer::default();
    let organization = families::Organization {
        name: crate::telemetry::DEFAULT_ORGANIZATION,
        snapshot,
        process,
    };
    families::render(&mut writer, process, &[organization]);
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
