//! One refresh: discover, audit every selected account under a concurrency bound and a
//! per-account timeout, merge into a new snapshot. When refreshes run and how a snapshot is
//! published is [`schedule`] (refreshes never overlap; scrapes only ever read the latest
//! published snapshot); account tags are [`tags`]. Which way into accounts is used is the
//! `aws::access` implementation's business: a refresh sees only a [`Route`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use tracing::{debug, error, info, warn};

use crate::audit::{self, AuditError};
use crate::aws::access::{Plan, Route, Ways};
use crate::aws::call::{AwsCallError, Caller};
use crate::config::Config;
use crate::discovery;
use crate::model::Account;
use crate::snapshot::{AuditOutcome, OrganizationFacts, Planned, Snapshot, SnapshotSender};
use crate::telemetry::{Progress, Telemetry};

mod schedule;
mod tags;

pub use schedule::{Schedule, run};
pub use tags::TAGS_MAX_AGE;
use tags::TagCache;

pub struct Refresher {
    organizations: aws_sdk_organizations::Client,
    ways: Ways,
    config: Arc<Config>,
    caller: Caller,
    telemetry: Telemetry,
    tags: tokio::sync::Mutex<TagCache>,
    /// The plan of the last refresh, for event-triggered audits between refreshes.
    last_plan: std::sync::Mutex<Option<Arc<Plan>>>,
    /// Shared with the telemetry, which serves it while a refresh runs.
    progress: Arc<Progress>,
}

/// A spawned task that is aborted when its handle is dropped, so that a task a refresh started
/// ends with the refresh (a stop drops the refresh mid-way).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// The task's output; a panic in it goes on here.
    async fn join(mut self) -> T {
        match (&mut self.0).await {
            Ok(out) => out,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled: only by this handle's drop or the runtime's shutdown, and either
                // way whoever waits here is being dropped too.
                Err(_) => std::future::pending().await,
            },
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Refresher {
    /// `caller` should be the one `ways` calls through, so that both share the adaptive limits.
    pub fn new(
        organizations: aws_sdk_organizations::Client,
        ways: Ways,
        config: Arc<Config>,
        caller: Caller,
        telemetry: Telemetry,
    ) -> Self {
        Refresher {
            organizations,
            ways,
            config,
            caller,
            tags: tokio::sync::Mutex::new(HashMap::new()),
            last_plan: std::sync::Mutex::new(None),
            progress: telemetry.progress(),
            telemetry,
        }
    }

    /// Audit these accounts now (root credential events named them) and publish the snapshot
    /// with only them changed. Returns whether each audit succeeded. Accounts the snapshot does
    /// not list, or does not select, are left alone (and reported as not audited).
    pub async fn audit_accounts(&self, ids: &[String], tx: &SnapshotSender) -> Vec<(String, bool)> {
        let Some(current) = tx.borrow().clone() else {
            return ids.iter().map(|id| (id.clone(), false)).collect();
        };
        let remembered = self.last_plan.lock().expect("plan lock").clone();
        let plan = match remembered {
            Some(p) => p,
            None => Arc::new(self.ways.plan().await),
        };
        let targets: Vec<(Account, Route)> = ids
            .iter()
            .filter_map(|id| current.accounts.iter().find(|e| &e.account.id == id))
            .filter(|e| e.is_selected())
            .filter_map(|e| Some((e.account.clone(), self.route(&plan, &e.account)?)))
            .collect();
        let outcomes = self.audit_all(targets).await;
        let results: Vec<(String, bool)> = ids
            .iter()
            .map(|id| (id.clone(), outcomes.get(id).is_some_and(|o| o.is_ok())))
            .collect();
        let at = SystemTime::now();
        tx.send_modify(|latest| {
            if let Some(s) = latest.as_deref() {
                *latest = Some(Arc::new(s.with_outcomes(outcomes, at)));
            }
        });
        results
    }

    /// One full refresh. Never fails: a discovery failure yields the previous data marked stale.
    /// Audits start as soon as a page of the listing names an account (the listing and the
    /// audits overlap); the refresh ends with the last audit.
    pub async fn refresh(&self, previous: Option<&Snapshot>) -> Snapshot {
        let started = Instant::now();
        // Served as running (aws_root_exporter_refresh_in_progress_seconds) until this refresh
        // returns or is dropped.
        let _running = self.progress.start();
        // As many accounts queued as audits run: a faster listing waits for the audits.
        let (found_tx, mut found) = tokio::sync::mpsc::channel::<Account>(self.config.concurrency);
        // The listing runs as a task of its own: its `NextToken` chain is the longest path of a
        // refresh, and in the refresh's task each page would wait for the audits' CPU work
        // (signing, parsing) before the next page is asked for. Dropping the refresh (a stop)
        // aborts it.
        let listing = AbortOnDrop(tokio::spawn({
            let (client, caller, concurrency) =
                (self.organizations.clone(), self.caller.clone(), self.config.concurrency);
            async move { discovery::discover(&client, &caller, concurrency, found_tx).await }
        }));
        let discovering = async {
            let mut org = listing.join().await?;
            // The listing is done (no more audits to start); tags are read while audits run.
            self.progress.listed();
            if !self.config.account_tags.is_empty() {
                self.read_tags(&mut org.accounts).await;
            }
            Ok::<_, AwsCallError>(org)
        };
        let auditing = async {
            let plan = Arc::new(self.ways.plan().await);
            *self.last_plan.lock().expect("plan lock") = Some(plan.clone());
            let targets = futures::stream::poll_fn(|cx| found.poll_recv(cx)).filter_map(|account| {
                let target = self.route(&plan, &account).map(|route| {
                    self.progress.found();
                    (account, route)
                });
                std::future::ready(target)
            });
            let outcomes = self.audit_stream(targets).await;
            Ok::<_, AwsCallError>((plan, outcomes))
        };
        let (org, (plan, outcomes)) = match futures::try_join!(discovering, auditing) {
            Ok(done) => done,
            Err(e) => {
                error!(operation = %e.operation, reason = %e.reason, error = ?e.message, "cannot list the organization's accounts; keeping the previous snapshot");
                let why = format!("{} ({}): {}", e.reason, e.operation, e.message);
                return Snapshot::after_failed_refresh(previous, started.elapsed(), why);
            }
        };

        // Planned one by one as the snapshot takes them: a list of all of them next to the
        // listing and the snapshot's entries would be one more copy of 10,000 accounts at the
        // refresh's peak of memory.
        let planned = org.accounts.into_iter().map(|account| {
            let (selected, method) = match self.route(&plan, &account) {
                None => (false, None),
                Some(Route::Audit(access)) => (true, Some(access.method())),
                Some(Route::Fail(_)) => (true, None),
            };
            Planned {
                account,
                selected,
                method,
            }
        });

        let facts = OrganizationFacts {
            id: Some(org.id),
            management_account_id: Some(org.management_account_id),
            features: plan.features.clone(),
        };
        let snapshot = Snapshot::from_refresh(planned, outcomes, facts, previous, SystemTime::now(), started.elapsed());
        let counts = snapshot.outcome_counts();
        info!(
            audited = counts.audited,
            failed = counts.failed,
            skipped = counts.skipped,
            duration_ms = snapshot.refresh_duration.as_millis() as u64,
            "refresh finished"
        );
        snapshot
    }

    /// How `account` is audited under `plan`; `None` when it is not selected (`include_accounts`,
    /// `exclude_accounts`) or not active.
    fn route(&self, plan: &Plan, account: &Account) -> Option<Route> {
        self.config.selects(&account.id).then(|| plan.route(account)).flatten()
    }

    /// How far the running refresh is (for a progress line).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Count a finished refresh (once its snapshot is published, so that a scrape never sees the
    /// new count with the old data).
    pub fn record(&self, listed: bool) {
        self.telemetry.record_refresh(listed);
    }

    /// Fill in the configured tags of every account: from the cache when it is fresh, else with
    /// `organizations:ListTagsForResource` (a failure keeps what was known, or none).
    /// Audit these accounts, `concurrency` at a time.
    async fn audit_all(&self, targets: Vec<(Account, Route)>) -> HashMap<String, AuditOutcome> {
        self.audit_stream(futures::stream::iter(targets)).await
    }

    /// Audit the accounts as they come, `concurrency` at a time.
    async fn audit_stream(
        &self,
        targets: impl futures::Stream<Item = (Account, Route)>,
    ) -> HashMap<String, AuditOutcome> {
        targets
            .map(|(account, route)| async move {
                let outcome = self.audit_one(&account, route).await;
                self.progress.audited(outcome.is_ok());
                (account.id, outcome)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await
    }

    async fn audit_one(&self, account: &Account, route: Route) -> AuditOutcome {
        let access = match route {
            Route::Audit(access) => access,
            Route::Fail(b) => return Err(AuditError::Blocked(b)),
        };
        let started = Instant::now();
        let method = access.method().as_str();
        debug!(account_id = %account.id, account_name = ?account.name, method, checks = ?self.config.checks, "audit started");
        let report_wait = self.config.account_timeout / 2;
        let work = async {
            let session = access.open(account).await?;
            Ok::<_, AuditError>(audit::audit(&session, self.config.checks, &self.caller, report_wait).await?)
            // `session`, and the temporary credentials inside it, end here.
        };
        let deadline = Instant::now() + self.config.account_timeout;
        let work = crate::aws::call::before_deadline(deadline, work);
        let outcome = match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(r) => r.map(Arc::new),
            Err(_) => Err(AuditError::Timeout(self.config.account_timeout)),
        };
        match &outcome {
            Err(e) => warn!(
                account_id = %account.id, account_name = ?account.name, method, reason = %e.reason(), error = ?e.to_string(),
                "root audit failed"
            ),
            Ok(f) => {
                debug!(account_id = %account.id, account_name = ?account.name, duration_ms = started.elapsed().as_millis() as u64, "audit finished");
                for e in &f.failed_operations {
                    warn!(account_id = %account.id, account_name = ?account.name, method, operation = %e.operation, reason = %e.reason, error = ?e.message, "part of the root audit failed; the summary flags are still served");
                }
                if !f.inconsistencies.is_empty() {
                    let source = f.details.as_ref().map(|d| d.source.describe()).unwrap_or_default();
                    let credentials: Vec<&str> = f.inconsistencies.iter().map(|c| c.as_str()).collect();
                    warn!(account_id = %account.id, account_name = ?account.name, method, credentials = ?credentials.join(","), source = %source, "the deep figures contradict GetAccountSummary; they are withheld and the summary flags speak for these credentials");
                }
            }
        }
        outcome
    }
}
