//! The refresh loop: discover, audit every selected account under a concurrency bound and a
//! per-account timeout, merge into a new snapshot, publish it atomically. Refreshes never
//! overlap; scrapes only ever read the latest published snapshot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::audit;
use crate::aws::AwsCallError;
use crate::aws::clients::AwsClients;
use crate::aws::errors::classify;
use crate::aws::session::SessionOpener;
use crate::config::Config;
use crate::discovery;
use crate::model::ORGANIZATION_FEATURES as FEATURES;
use crate::model::{Account, FailureReason};
use crate::snapshot::{AuditOutcome, OrganizationFacts, Snapshot};
use crate::telemetry::Telemetry;

/// The latest snapshot; `None` until the first refresh finished.
pub type SnapshotSender = watch::Sender<Option<Arc<Snapshot>>>;
pub type SnapshotReceiver = watch::Receiver<Option<Arc<Snapshot>>>;

pub struct Refresher {
    clients: AwsClients,
    opener: Arc<dyn SessionOpener>,
    config: Arc<Config>,
    telemetry: Telemetry,
}

impl Refresher {
    pub fn new(clients: AwsClients, opener: Arc<dyn SessionOpener>, config: Arc<Config>, telemetry: Telemetry) -> Self {
        Refresher {
            clients,
            opener,
            config,
            telemetry,
        }
    }

    /// One full refresh. Never fails: a discovery failure yields the previous data marked stale.
    pub async fn refresh(&self, previous: Option<&Snapshot>) -> Snapshot {
        let started = Instant::now();
        let org = match discovery::discover(&self.clients.organizations, &self.telemetry).await {
            Ok(org) => org,
            Err(e) => {
                error!(operation = e.operation, reason = %e.reason, error = %e.message, "cannot list the organization's accounts; keeping the previous snapshot");
                self.telemetry.record_refresh(false);
                return Snapshot::after_failed_refresh(previous, started.elapsed());
            }
        };
        let features = self.features().await;
        let root_access_off = features
            .as_ref()
            .is_some_and(|f| f.iter().any(|(name, on)| *name == "RootCredentialsManagement" && !on));
        if root_access_off {
            error!(
                organization_id = %org.id,
                "centralized root access (RootCredentialsManagement) is not enabled for this organization: no member account can be audited. Enable it with `aws iam enable-organizations-root-credentials-management` from the management account"
            );
        }

        let selected: Vec<(Account, bool)> = org
            .accounts
            .into_iter()
            .map(|a| {
                let audited = a.is_active() && !a.is_management && self.config.selects(&a.id);
                (a, audited)
            })
            .collect();
        let targets: Vec<Account> = selected
            .iter()
            .filter(|(_, audited)| *audited)
            .map(|(a, _)| a.clone())
            .collect();
        let outcomes: HashMap<String, AuditOutcome> = futures::stream::iter(targets)
            .map(|account| async move {
                let outcome = self.audit_one(&account, root_access_off).await;
                (account.id, outcome)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;

        let facts = OrganizationFacts {
            id: Some(org.id),
            management_account_id: Some(org.management_account_id),
            features,
        };
        let snapshot = Snapshot::from_refresh(
            selected,
            outcomes,
            facts,
            previous,
            SystemTime::now(),
            started.elapsed(),
        );
        let (ok, failed, skipped) = snapshot.outcome_counts();
        info!(
            audited = ok,
            failed,
            skipped,
            duration_ms = snapshot.refresh_duration.as_millis() as u64,
            "refresh finished"
        );
        self.telemetry.record_refresh(true);
        snapshot
    }

    async fn audit_one(&self, account: &Account, root_access_off: bool) -> AuditOutcome {
        if root_access_off {
            return Err(AwsCallError {
                service: "sts",
                operation: "AssumeRoot",
                reason: FailureReason::RootAccessNotEnabled,
                message: "centralized root access is not enabled for the organization".into(),
            });
        }
        let work = async {
            let session = self.opener.open(account).await?;
            audit::audit(&session, self.config.checks, &self.telemetry).await
            // `session`, and the temporary credentials inside it, end here.
        };
        let outcome = match tokio::time::timeout(self.config.account_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AwsCallError {
                service: "exporter",
                operation: "audit",
                reason: FailureReason::Timeout,
                message: format!(
                    "audit did not finish within account_timeout ({:?})",
                    self.config.account_timeout
                ),
            }),
        };
        match &outcome {
            Err(e) => warn!(
                account_id = %account.id, account_name = %account.name, operation = e.operation, reason = %e.reason, error = %e.message,
                "root audit failed"
            ),
            Ok(f) => {
                for (operation, reason) in &f.failed_operations {
                    warn!(account_id = %account.id, account_name = %account.name, operation, reason = %reason, "part of the root audit failed; the summary flags are still served");
                }
            }
        }
        outcome
    }

    /// `iam:ListOrganizationsFeatures`, once per refresh; `None` when it cannot be read.
    async fn features(&self) -> Option<Vec<(&'static str, bool)>> {
        let out = self
            .clients
            .iam
            .list_organizations_features()
            .send()
            .await
            .map_err(|e| classify("iam", "ListOrganizationsFeatures", &e));
        self.telemetry.record("iam", "ListOrganizationsFeatures", &out);
        match out {
            Ok(o) => {
                let enabled: Vec<&str> = o.enabled_features().iter().map(|f| f.as_str()).collect();
                Some(FEATURES.iter().map(|f| (*f, enabled.contains(f))).collect())
            }
            Err(e) => {
                warn!(reason = %e.reason, error = %e.message, "cannot read the organization's root access features (iam:ListOrganizationsFeatures)");
                None
            }
        }
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
