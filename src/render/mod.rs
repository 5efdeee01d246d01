//! Stage 4: turn the latest snapshot into what people read: Prometheus metrics ([`metrics`],
//! whose families are declared in [`families`] and written by [`exposition`]) or a one-shot
//! report ([`report`]).

pub mod exposition;
pub mod families;
pub mod metrics;
pub mod process;
pub mod report;
