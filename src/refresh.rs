//! The refresh loop: discover, audit every selected account under a concurrency bound and a
//! per-account timeout, merge into a new snapshot, publish it atomically. Refreshes never
//! overlap; scrapes only ever read the latest published snapshot. Which way into accounts is
//! used is the [`Access`] implementation's business.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::audit::{self, AuditError};
use crate::aws::access::{Access, Blocked};
use crate::aws::call::Caller;
use crate::config::Config;
use crate::discovery;
use crate::model::Account;
use crate::snapshot::{AuditOutcome, OrganizationFacts, Snapshot};
use crate::telemetry::Telemetry;

/// The latest snapshot; `None` until the first refresh finished.
pub type SnapshotSender = watch::Sender<Option<Arc<Snapshot>>>;
pub type SnapshotReceiver = watch::Receiver<Option<Arc<Snapshot>>>;

pub struct Refresher {
    organizations: aws_sdk_organizations::Client,
    access: Arc<dyn Access>,
    config: Arc<Config>,
    caller: Caller,
    telemetry: Telemetry,
}

impl Refresher {
    pub fn new(
        organizations: aws_sdk_organizations::Client,
        access: Arc<dyn Access>,
        config: Arc<Config>,
        telemetry: Telemetry,
    ) -> Self {
        Refresher {
            organizations,
            access,
            config,
            caller: Caller::new(telemetry.clone()),
            telemetry,
        }
    }

    /// One full refresh. Never fails: a discovery failure yields the previous data marked stale.
    pub async fn refresh(&self, previous: Option<&Snapshot>) -> Snapshot {
        let started = Instant::now();
        let org = match discovery::discover(&self.organizations, &self.caller).await {
            Ok(org) => org,
            Err(e) => {
                error!(operation = %e.operation, reason = %e.reason, error = %e.message, "cannot list the organization's accounts; keeping the previous snapshot");
                self.telemetry.record_refresh(false);
                return Snapshot::after_failed_refresh(previous, started.elapsed());
            }
        };
        let precheck = self.access.precheck().await;

        let selected: Vec<(Account, bool)> = org
            .accounts
            .into_iter()
            .map(|a| {
                let selected = self.access.reaches(&a) && self.config.selects(&a.id);
                (a, selected)
            })
            .collect();
        let targets: Vec<Account> = selected.iter().filter(|(_, s)| *s).map(|(a, _)| a.clone()).collect();
        let blocked = precheck.blocked.clone();
        let outcomes: HashMap<String, AuditOutcome> = futures::stream::iter(targets)
            .map(|account| {
                let blocked = blocked.clone();
                async move {
                    let outcome = self.audit_one(&account, blocked).await;
                    (account.id, outcome)
                }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;

        let facts = OrganizationFacts {
            id: Some(org.id),
            management_account_id: Some(org.management_account_id),
            features: precheck.features,
        };
        let snapshot = Snapshot::from_refresh(
            selected,
            outcomes,
            facts,
            previous,
            SystemTime::now(),
            started.elapsed(),
        );
        let counts = snapshot.outcome_counts();
        info!(
            audited = counts.audited,
            failed = counts.failed,
            skipped = counts.skipped,
            duration_ms = snapshot.refresh_duration.as_millis() as u64,
            "refresh finished"
        );
        self.telemetry.record_refresh(true);
        snapshot
    }

    async fn audit_one(&self, account: &Account, blocked: Option<Blocked>) -> AuditOutcome {
        if let Some(b) = blocked {
            return Err(AuditError::Blocked(b));
        }
        let checks = self.config.checks.min(self.access.max_checks());
        let work = async {
            let session = self.access.open(account).await?;
            Ok::<_, AuditError>(audit::audit(&session, checks, &self.caller).await?)
            // `session`, and the temporary credentials inside it, end here.
        };
        let outcome = match tokio::time::timeout(self.config.account_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AuditError::Timeout(self.config.account_timeout)),
        };
        match &outcome {
            Err(e) => warn!(
                account_id = %account.id, account_name = %account.name, reason = %e.reason(), error = %e,
                "root audit failed"
            ),
            Ok(f) => {
                for (operation, reason) in &f.failed_operations {
                    warn!(account_id = %account.id, account_name = %account.name, %operation, %reason, "part of the root audit failed; the summary flags are still served");
                }
            }
        }
        outcome
    }

    /// Refresh now, then every `refresh_interval` (measured start to start; a slow refresh delays
    /// the next one instead of overlapping it). Runs until the task is dropped.
    pub async fn run(self, tx: SnapshotSender) {
        let mut ticks = tokio::time::interval(self.config.refresh_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let previous = tx.borrow().clone();
            let snapshot = self.refresh(previous.as_deref()).await;
            tx.send_replace(Some(Arc::new(snapshot)));
        }
    }
}
