//! Stage 3: the immutable picture of the organization that one refresh produces, merged with
//! what the previous snapshot knew.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::activity::ActivityLog;
use crate::audit::AuditError;
use crate::ids::Method;
use crate::model::{Account, AuditFindings, FailureReason};

/// The latest snapshot, published by the refresh loop (and event-triggered audits) to
/// `/metrics` and `/readyz`; `None` until the first refresh finished.
pub type SnapshotSender = tokio::sync::watch::Sender<Option<Arc<Snapshot>>>;
pub type SnapshotReceiver = tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>;

/// Every organization's snapshot channel, by name, in configuration order: what `/metrics` and
/// `/readyz` read.
#[derive(Debug, Clone)]
pub struct Snapshots(pub Vec<(Arc<str>, SnapshotReceiver)>);

impl Snapshots {
    /// One organization, [`crate::telemetry::DEFAULT_ORGANIZATION`].
    pub fn single(rx: SnapshotReceiver) -> Snapshots {
        Snapshots(vec![(crate::telemetry::DEFAULT_ORGANIZATION.into(), rx)])
    }

    /// The latest snapshot of each organization (none before its first refresh).
    pub fn latest(&self) -> Vec<(Arc<str>, Option<Arc<Snapshot>>)> {
        self.0
            .iter()
            .map(|(name, rx)| (name.clone(), rx.borrow().clone()))
            .collect()
    }
}

/// Findings of a successful audit and when it finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub findings: Arc<AuditFindings>,
    pub at: SystemTime,
}

/// Where one account stands. The only source of "audited", "failed" and "known" in the code.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditState {
    /// Not selected for audit: the way in cannot reach it (e.g. the management account, an
    /// account that is not ACTIVE) or `include_accounts` / `exclude_accounts` leave it out.
    Skipped,
    /// Selected, but no audit attempt has finished yet.
    Pending,
    /// The last attempt succeeded.
    Succeeded(Known),
    /// The last attempt failed; the findings of the last success, if any, are kept.
    Failed {
        reason: FailureReason,
        /// What went wrong, one line (from AWS or the exporter; never credentials): for logs and
        /// the one-shot reports, never a label.
        message: String,
        last_good: Option<Known>,
    },
}

impl AuditState {
    /// The state after one more attempt (`None`: no attempt finished this time).
    fn next(self_before: Option<&AuditState>, outcome: Option<AuditOutcome>, finished: SystemTime) -> AuditState {
        match outcome {
            Some(Ok(findings)) => AuditState::Succeeded(Known { findings, at: finished }),
            Some(Err(e)) => AuditState::Failed {
                reason: e.reason(),
                message: e.to_string(),
                last_good: self_before.and_then(AuditState::known).cloned(),
            },
            None => match self_before {
                Some(s @ (AuditState::Succeeded(_) | AuditState::Failed { .. })) => s.clone(),
                _ => AuditState::Pending,
            },
        }
    }

    /// The last successful audit's findings, also after a later failure.
    pub fn known(&self) -> Option<&Known> {
        match self {
            AuditState::Succeeded(k) => Some(k),
            AuditState::Failed { last_good, .. } => last_good.as_ref(),
            AuditState::Skipped | AuditState::Pending => None,
        }
    }
}

/// What the exporter knows about one account.
#[derive(Debug, Clone)]
pub struct AccountEntry {
    pub account: Account,
    pub state: AuditState,
    /// How the account is audited (the `method` label); `None` when it is not, or when no way in
    /// applies.
    pub method: Option<Method>,
    /// When an attempt last set `state` (a refresh's end, or an event-triggered audit).
    pub updated: Option<SystemTime>,
}

/// One listed account as a refresh planned it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub account: Account,
    /// Selected for audit (whether or not a way in applies).
    pub selected: bool,
    pub method: Option<Method>,
}

impl AccountEntry {
    /// Selected for audit: the `audited="true"` label of the account info metric.
    pub fn is_selected(&self) -> bool {
        !matches!(self.state, AuditState::Skipped)
    }

    /// The last audit attempt succeeded: `outcome="audited"` of `aws_root_exporter_accounts`,
    /// and a row of the classic report.
    pub fn succeeded(&self) -> bool {
        matches!(self.state, AuditState::Succeeded(_))
    }

    /// An attempt has finished (successfully or not): `aws_root_audit_success` is served.
    pub fn attempted(&self) -> bool {
        matches!(self.state, AuditState::Succeeded(_) | AuditState::Failed { .. })
    }

    /// Findings of the last successful audit, kept across later failures.
    pub fn findings(&self) -> Option<&AuditFindings> {
        self.state.known().map(|k| k.findings.as_ref())
    }

    pub fn last_success(&self) -> Option<SystemTime> {
        self.state.known().map(|k| k.at)
    }

    /// Why the last attempt failed; `None` when it succeeded or there was none.
    pub fn failure(&self) -> Option<FailureReason> {
        match self.state {
            AuditState::Failed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// What the last failed attempt said went wrong (one line); `None` as for [`Self::failure`].
    pub fn failure_message(&self) -> Option<&str> {
        match &self.state {
            AuditState::Failed { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Organization-level facts read once per refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganizationFacts {
    pub id: Option<String>,
    pub management_account_id: Option<String>,
    /// `iam:ListOrganizationsFeatures`: (feature, enabled). `None` when it could not be read.
    pub features: Option<Vec<(&'static str, bool)>>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    /// In listing order.
    pub accounts: Arc<Vec<AccountEntry>>,
    pub organization: OrganizationFacts,
    /// Whether the last refresh could list the organization.
    pub refresh_ok: bool,
    /// Why the last refresh could not list the organization (one line), when it could not.
    pub discovery_failure: Option<String>,
    pub refresh_duration: Duration,
    pub last_refresh_success: Option<SystemTime>,
    /// Root activity the events consumer counted (the only writer: every other snapshot carries
    /// it over from the one it replaces).
    pub activity: Arc<ActivityLog>,
}

/// `activity` without the accounts that `accounts` does not list (they left the organization);
/// shared, not copied, when there are none.
fn only_listed(activity: &Arc<ActivityLog>, accounts: &[AccountEntry]) -> Arc<ActivityLog> {
    if activity.is_empty() {
        return activity.clone();
    }
    let listed: std::collections::HashSet<&str> = accounts.iter().map(|e| e.account.id.as_str()).collect();
    if activity.iter().all(|(id, _, _)| listed.contains(id)) {
        return activity.clone();
    }
    let mut kept = (**activity).clone();
    kept.retain(|id| listed.contains(id));
    Arc::new(kept)
}

/// The outcome of one account's audit in this refresh. The findings are shared from the start:
/// the refresh holds 10,000 outcomes at once, and the snapshot keeps them without copying.
pub type AuditOutcome = Result<Arc<AuditFindings>, AuditError>;

/// Accounts by where they stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeCounts {
    /// The last attempt succeeded.
    pub audited: usize,
    /// Selected, and the last attempt failed or none finished yet.
    pub failed: usize,
    /// Not selected.
    pub skipped: usize,
}

impl Snapshot {
    /// A refresh whose discovery succeeded: accounts as listed now (those that left the
    /// organization are gone), each with this refresh's outcome; failures keep the last known
    /// findings from `previous`.
    pub fn from_refresh(
        accounts: impl IntoIterator<Item = Planned>,
        mut outcomes: HashMap<String, AuditOutcome>,
        organization: OrganizationFacts,
        previous: Option<&Snapshot>,
        finished: SystemTime,
        duration: Duration,
    ) -> Snapshot {
        let before: HashMap<&str, &AuditState> = previous
            .map(|p| p.accounts.iter().map(|e| (e.account.id.as_str(), &e.state)).collect())
            .unwrap_or_default();
        let entries = accounts
            .into_iter()
            .map(
                |Planned {
                     account,
                     selected,
                     method,
                 }| {
                    let outcome = outcomes.remove(&account.id);
                    let updated = outcome.is_some().then_some(finished);
                    let state = if selected {
                        AuditState::next(before.get(account.id.as_str()).copied(), outcome, finished)
                    } else {
                        AuditState::Skipped
                    };
                    AccountEntry {
                        account,
                        state,
                        method,
                        updated,
                    }
                },
            )
            .collect::<Vec<AccountEntry>>();
        // Accounts that left the organization leave the activity too.
        let activity = previous.map(|p| only_listed(&p.activity, &entries)).unwrap_or_default();
        Snapshot {
            accounts: Arc::new(entries),
            organization,
            refresh_ok: true,
            discovery_failure: None,
            refresh_duration: duration,
            last_refresh_success: Some(finished),
            activity,
        }
    }

    /// A refresh whose discovery failed (`why`, one line): keep everything known, say the
    /// refresh failed.
    pub fn after_failed_refresh(previous: Option<&Snapshot>, duration: Duration, why: String) -> Snapshot {
        match previous {
            Some(p) => Snapshot {
                refresh_ok: false,
                discovery_failure: Some(why),
                refresh_duration: duration,
                ..p.clone()
            },
            None => Snapshot {
                accounts: Arc::new(Vec::new()),
                organization: OrganizationFacts::default(),
                refresh_ok: false,
                discovery_failure: Some(why),
                refresh_duration: duration,
                last_refresh_success: None,
                activity: Arc::default(),
            },
        }
    }

    /// This snapshot with new outcomes for some accounts (an event-triggered audit at `at`);
    /// every other account, and the organization, stay as they are.
    pub fn with_outcomes(&self, mut outcomes: HashMap<String, AuditOutcome>, at: SystemTime) -> Snapshot {
        let entries = self
            .accounts
            .iter()
            .map(|e| match outcomes.remove(&e.account.id) {
                Some(outcome) if e.is_selected() => AccountEntry {
                    state: AuditState::next(Some(&e.state), Some(outcome), at),
                    updated: Some(at),
                    ..e.clone()
                },
                _ => e.clone(),
            })
            .collect();
        Snapshot {
            accounts: Arc::new(entries),
            ..self.clone()
        }
    }

    /// A refresh that started at `since` is about to replace `current`: keep the states that
    /// `current` learned after `since` (event-triggered audits made while this refresh ran),
    /// which are newer than what this refresh saw.
    pub fn keep_newer(mut self, current: Option<&Snapshot>, since: SystemTime) -> Snapshot {
        let Some(current) = current else { return self };
        // The consumer may have counted root activity meanwhile: its log is the newest.
        self.activity = only_listed(&current.activity, &self.accounts);
        let newer: HashMap<&str, &AccountEntry> = current
            .accounts
            .iter()
            .filter(|e| e.updated.is_some_and(|t| t > since))
            .map(|e| (e.account.id.as_str(), e))
            .collect();
        if newer.is_empty() {
            return self;
        }
        let entries = self
            .accounts
            .iter()
            .map(|e| match newer.get(e.account.id.as_str()) {
                Some(n) if e.is_selected() => AccountEntry {
                    state: n.state.clone(),
                    updated: n.updated,
                    ..e.clone()
                },
                _ => e.clone(),
            })
            .collect();
        self.accounts = Arc::new(entries);
        self
    }

    /// One picture of several organizations' snapshots, for the one-shot reports: their
    /// accounts in order (account ids are unique across organizations), listed only if every
    /// organization was, the first failure; the organization facts of the first.
    pub fn of_several(snapshots: Vec<Snapshot>) -> Snapshot {
        let mut all = snapshots.into_iter();
        let Some(mut first) = all.next() else {
            return Snapshot::after_failed_refresh(None, Duration::ZERO, "no organization is configured".into());
        };
        for s in all {
            let mut accounts = (*first.accounts).clone();
            accounts.extend(s.accounts.iter().cloned());
            first.accounts = Arc::new(accounts);
            first.refresh_ok &= s.refresh_ok;
            first.discovery_failure = first.discovery_failure.or(s.discovery_failure);
            first.refresh_duration += s.refresh_duration;
            first.last_refresh_success = match (first.last_refresh_success, s.last_refresh_success) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
        }
        first
    }

    /// This snapshot with the events consumer's new activity log.
    pub fn with_activity(&self, activity: ActivityLog) -> Snapshot {
        Snapshot {
            activity: Arc::new(activity),
            ..self.clone()
        }
    }

    /// Whether some refresh has listed the organization since the exporter started.
    pub fn ever_listed(&self) -> bool {
        self.last_refresh_success.is_some()
    }

    pub fn outcome_counts(&self) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for e in self.accounts.iter() {
            match e.state {
                AuditState::Skipped => counts.skipped += 1,
                AuditState::Succeeded(_) => counts.audited += 1,
                AuditState::Pending | AuditState::Failed { .. } => counts.failed += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AwsCallError;
    use crate::model::RootSummary;
    use crate::operation::Operation;

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            name: format!("n{id}"),
            status: "ACTIVE".into(),
            is_management: false,
            ou_path: None,
            tags: Vec::new(),
        }
    }

    fn findings(keys: bool) -> AuditFindings {
        AuditFindings {
            summary: RootSummary {
                access_keys_present: keys,
                ..RootSummary::default()
            },
            details: None,
            failed_operations: vec![],
            inconsistencies: vec![],
        }
    }

    fn failure() -> AuditError {
        AuditError::Call(AwsCallError {
            operation: Operation::GetAccountSummary,
            reason: FailureReason::AccessDenied,
            message: "denied".into(),
        })
    }

    fn refresh(
        accounts: &[(&str, bool)],
        outcomes: Vec<(&str, AuditOutcome)>,
        previous: Option<&Snapshot>,
        at: SystemTime,
    ) -> Snapshot {
        Snapshot::from_refresh(
            accounts.iter().map(|(id, sel)| Planned {
                account: account(id),
                selected: *sel,
                method: sel.then_some(Method::AssumeRoot),
            }),
            outcomes.into_iter().map(|(id, o)| (id.to_string(), o)).collect(),
            OrganizationFacts::default(),
            previous,
            at,
            Duration::ZERO,
        )
    }

    #[test]
    fn failure_keeps_last_known_findings_and_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t1 = t0 + Duration::from_secs(300);
        let first = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Ok(Arc::new(findings(true))))],
            None,
            t0,
        );
        let second = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Err(failure()))],
            Some(&first),
            t1,
        );
        let e = &second.accounts[0];
        assert!(e.findings().unwrap().summary.access_keys_present);
        assert_eq!(e.last_success(), Some(t0));
        assert_eq!(e.failure(), Some(FailureReason::AccessDenied));
        assert!(!e.succeeded() && e.attempted() && e.is_selected());
        assert_eq!(
            second.outcome_counts(),
            OutcomeCounts {
                audited: 0,
                failed: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn never_audited_failure_has_no_findings() {
        let s = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Err(failure()))],
            None,
            SystemTime::now(),
        );
        assert!(s.accounts[0].findings().is_none());
        assert!(s.accounts[0].last_success().is_none());
        assert_eq!(s.accounts[0].failure(), Some(FailureReason::AccessDenied));
    }

    #[test]
    fn deselected_account_forgets_its_findings() {
        let first = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Ok(Arc::new(findings(true))))],
            None,
            SystemTime::now(),
        );
        let second = refresh(&[("222222222222", false)], vec![], Some(&first), SystemTime::now());
        let e = &second.accounts[0];
        assert_eq!(e.state, AuditState::Skipped);
        assert!(e.findings().is_none() && !e.is_selected() && !e.attempted());
    }

    #[test]
    fn selected_account_without_an_attempt_is_pending_or_keeps_its_state() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let fresh = refresh(&[("222222222222", true)], vec![], None, t0);
        assert_eq!(fresh.accounts[0].state, AuditState::Pending);
        assert!(!fresh.accounts[0].attempted());
        assert_eq!(fresh.outcome_counts().failed, 1);
        let ok = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Ok(Arc::new(findings(false))))],
            None,
            t0,
        );
        let later = refresh(
            &[("222222222222", true)],
            vec![],
            Some(&ok),
            t0 + Duration::from_secs(60),
        );
        assert_eq!(later.accounts[0].state, ok.accounts[0].state);
    }

    #[test]
    fn departed_accounts_disappear_and_failed_refresh_keeps_data() {
        let first = refresh(
            &[("222222222222", true), ("333333333333", true)],
            vec![
                ("222222222222", Ok(Arc::new(findings(false)))),
                ("333333333333", Ok(Arc::new(findings(true)))),
            ],
            None,
            SystemTime::now(),
        );
        let failed = Snapshot::after_failed_refresh(Some(&first), Duration::from_secs(3), "no".into());
        assert!(!failed.refresh_ok && failed.ever_listed());
        assert_eq!(failed.discovery_failure.as_deref(), Some("no"));
        assert_eq!(failed.accounts.len(), 2);
        assert_eq!(failed.last_refresh_success, first.last_refresh_success);
        let second = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Ok(Arc::new(findings(false))))],
            Some(&failed),
            SystemTime::now(),
        );
        assert_eq!(second.accounts.len(), 1);
        assert!(second.refresh_ok);
    }

    #[test]
    fn an_event_audit_during_a_refresh_is_not_overwritten_by_it() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let first = refresh(
            &[("222222222222", true), ("333333333333", true)],
            vec![
                ("222222222222", Ok(Arc::new(findings(false)))),
                ("333333333333", Ok(Arc::new(findings(false)))),
            ],
            None,
            t0,
        );
        // A refresh starts at t0 + 10 and sees no key in 222222222222 ...
        let started = t0 + Duration::from_secs(10);
        // ... meanwhile an event says a key appeared, and the account is re-audited at t0 + 20.
        let evented = first.with_outcomes(
            HashMap::from([("222222222222".to_string(), Ok(Arc::new(findings(true))))]),
            t0 + Duration::from_secs(20),
        );
        assert!(evented.accounts[0].findings().unwrap().summary.access_keys_present);
        assert!(!evented.accounts[1].findings().unwrap().summary.access_keys_present);
        // The refresh ends at t0 + 30 with what it saw before the key.
        let refreshed = refresh(
            &[("222222222222", true), ("333333333333", true)],
            vec![
                ("222222222222", Ok(Arc::new(findings(false)))),
                ("333333333333", Ok(Arc::new(findings(false)))),
            ],
            Some(&first),
            t0 + Duration::from_secs(30),
        )
        .keep_newer(Some(&evented), started);
        assert!(
            refreshed.accounts[0].findings().unwrap().summary.access_keys_present,
            "the newer event audit wins"
        );
        assert_eq!(refreshed.accounts[1].updated, Some(t0 + Duration::from_secs(30)));
        // An event audit from before the refresh started does not override it.
        let later = refresh(
            &[("222222222222", true)],
            vec![("222222222222", Ok(Arc::new(findings(false))))],
            Some(&refreshed),
            t0 + Duration::from_secs(100),
        )
        .keep_newer(Some(&refreshed), t0 + Duration::from_secs(90));
        assert!(!later.accounts[0].findings().unwrap().summary.access_keys_present);
    }

    #[test]
    fn root_activity_survives_refreshes_and_leaves_with_its_account() {
        use crate::activity::ActivityKind;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ids = [("222222222222", true), ("333333333333", true)];
        let first = refresh(&ids, vec![], None, t0);
        // A refresh starts; meanwhile the consumer counts a sign-in in each account.
        let mut log = (*first.activity).clone();
        log.record("222222222222", ActivityKind::ConsoleSignin, t0);
        log.record("333333333333", ActivityKind::ApiCall, t0);
        let counted = first.with_activity(log);
        // The refresh, begun from `first`, ends: the consumer's counts are kept.
        let refreshed = refresh(&ids, vec![], Some(&first), t0 + Duration::from_secs(5))
            .keep_newer(Some(&counted), t0 + Duration::from_secs(1));
        assert_eq!(
            refreshed
                .activity
                .get("222222222222", ActivityKind::ConsoleSignin)
                .unwrap()
                .count,
            1
        );
        // An event audit keeps them too.
        let evented = refreshed.with_outcomes(HashMap::new(), t0);
        assert!(Arc::ptr_eq(&evented.activity, &refreshed.activity));
        // 333333333333 leaves the organization: its activity goes with it.
        let left = refresh(&ids[..1], vec![], Some(&evented), t0 + Duration::from_secs(9));
        assert!(left.activity.contains_account("222222222222"));
        assert!(!left.activity.contains_account("333333333333"));
        let failed = Snapshot::after_failed_refresh(Some(&left), Duration::ZERO, "down".into());
        assert!(Arc::ptr_eq(&failed.activity, &left.activity));
    }
}
