//! `process_*` metrics as Prometheus client libraries export them (start time, CPU, memory, file
//! descriptors), read from `/proc/self` at scrape time. On systems without `/proc` the families
//! are left out.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux's USER_HZ: the unit of the CPU times in `/proc/self/stat` on every architecture it
/// runs on.
const CLOCK_TICKS: f64 = 100.0;

/// What `/proc` says of this process.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub resident_memory_bytes: f64,
    pub virtual_memory_bytes: f64,
    pub open_fds: f64,
    pub max_fds: Option<f64>,
}

/// Parse `/proc/self/stat`, `/proc/self/status`, `/proc/stat`, the number of entries of
/// `/proc/self/fd` and `/proc/self/limits`.
pub fn parse(stat: &str, status: &str, system_stat: &str, open_fds: usize, limits: &str) -> Option<ProcessStats> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let cpu_seconds = (field(14)? + field(15)?) / CLOCK_TICKS;
    let boot_time: f64 = system_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let kib = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let value: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(value * 1024.0)
    };
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    Some(ProcessStats {
        cpu_seconds,
        start_time_seconds: boot_time + field(22)? / CLOCK_TICKS,
        resident_memory_bytes: kib("VmRSS:")?,
        virtual_memory_bytes: kib("VmSize:")?,
        open_fds: open_fds as f64,
        max_fds,
    })
}

fn read() -> Option<ProcessStats> {
    let text = |p: &str| std::fs::read_to_string(p).ok();
    let fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
    parse(
        &text("/proc/self/stat")?,
        &text("/proc/self/status")?,
        &text("/proc/stat")?,
        fds,
        &text("/proc/self/limits").unwrap_or_default(),
    )
}

#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let Some(s) = read() else { return Ok(()) };
        let counter = ConstCounter::new(s.cpu_seconds);
        counter.encode(enc.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?)?;
        let gauges = [
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Some(s.start_time_seconds),
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Some(s.resident_memory_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                Some(s.virtual_memory_bytes),
            ),
            ("process_open_fds", "Number of open file descriptors.", Some(s.open_fds)),
            ("process_max_fds", "Maximum number of open file descriptors.", s.max_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_linux_writes_them() {
        let stat = "4242 (aws-root (exp)) S 1 4242 4242 0 -1 4194560 3000 0 0 0 250 50 0 0 20 0 9 0 12345 123456789 5000 18446744073709551615";
        let status = "Name:\taws-root-export\nVmSize:\t  102400 kB\nVmRSS:\t   20480 kB\n";
        let system = "cpu  1 2 3\nbtime 1764000000\nprocesses 10\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        let s = parse(stat, status, system, 12, limits).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.start_time_seconds, 1_764_000_000.0 + 123.45);
        assert_eq!(s.resident_memory_bytes, 20480.0 * 1024.0);
        assert_eq!(s.virtual_memory_bytes, 102400.0 * 1024.0);
        assert_eq!(s.open_fds, 12.0);
        assert_eq!(s.max_fds, Some(1024.0));
        assert_eq!(parse("garbage", status, system, 1, limits), None);
    }

    #[test]
    fn this_process_can_be_read() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let s = read().expect("/proc is readable");
            assert!(s.resident_memory_bytes > 0.0 && s.open_fds >= 3.0, "{s:?}");
        }
    }
}
