//! Stage 4: turn the latest snapshot into what people read: Prometheus metrics ([`metrics`]) or
//! a one-shot report ([`report`]).

pub mod metrics;
pub mod report;
