//! aws-root-exporter: the root-user credentials of every account of an AWS Organization, as
//! Prometheus metrics.
//!
//! Data flows: [`discovery`] lists the accounts -> [`audit`] opens a root session into each
//! (through the seam in [`aws::session`]) and reads its root user -> [`refresh`] merges the
//! results into an immutable [`snapshot::Snapshot`] -> [`render`] turns the latest snapshot into
//! metrics or a report, served by [`http`]. [`simulator`] is the wire-compatible AWS double that
//! the tests and `demo` run against; [`app`] wires it all for the command line.

pub mod app;
pub mod audit;
pub mod aws;
pub mod config;
pub mod discovery;
pub mod http;
pub mod model;
pub mod refresh;
pub mod render;
pub mod simulator;
pub mod snapshot;
pub mod telemetry;
