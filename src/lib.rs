//! aws-root-exporter: the root-user credentials of every account of an AWS Organization, as
//! Prometheus metrics.
//!
//! Data flows: [`discovery`] lists the accounts -> [`audit`] reads each account's root user in a
//! session opened by the configured way in ([`aws::access`]) -> [`refresh`] merges the results
//! into an immutable [`snapshot::Snapshot`] -> [`render`] turns the latest snapshot into metrics
//! or a report -> [`http`] serves it (with TLS and basic auth from [`web`] when configured).
//! Every AWS call goes through [`aws::call`]; [`app`] wires it all for the command line.
//! `ARCHITECTURE.md` says where each kind of change goes. The AWS
//! simulator the tests and `demo` run against is its own crate, `aws-org-simulator`.

pub mod activity;
pub mod app;
pub mod audit;
pub mod aws;
pub mod config;
pub mod credential_report;
pub mod discovery;
pub mod events;
pub mod http;
pub mod ids;
mod label;
pub mod logging;
pub mod model;
pub mod operation;
pub mod organization;
pub mod refresh;
pub mod render;
pub mod snapshot;
pub mod telemetry;
pub mod web;
