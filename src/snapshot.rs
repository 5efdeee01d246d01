//! Stage 3: the immutable picture of the organization that one refresh produces, merged with
//! what the previous snapshot knew.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aws::AwsCallError;
use crate::model::{Account, AuditFindings, FailureReason};

/// What the exporter knows about one account.
#[derive(Debug, Clone)]
pub struct AccountEntry {
    pub account: Account,
    /// Whether the exporter audits this account (an active member account that passes the
    /// filters).
    pub audited: bool,
    /// Findings of the last successful audit; `None` until the first one. Kept when a later
    /// audit fails.
    pub findings: Option<Arc<AuditFindings>>,
    pub last_success: Option<SystemTime>,
    /// Why the last attempt failed; `None` when it succeeded or there was none.
    pub failure: Option<FailureReason>,
}

impl AccountEntry {
    /// The last audit attempt succeeded.
    pub fn healthy(&self) -> bool {
        self.audited && self.failure.is_none() && self.findings.is_some()
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
    pub refresh_duration: Duration,
    pub last_refresh_success: Option<SystemTime>,
}

/// The outcome of one account's audit in this refresh.
pub type AuditOutcome = Result<AuditFindings, AwsCallError>;

impl Snapshot {
    /// A refresh whose discovery succeeded: accounts as listed now (those that left the
    /// organization are gone), each with this refresh's outcome, failures keeping the last known
    /// findings from `previous`.
    pub fn from_refresh(
        accounts: Vec<(Account, bool)>,
        mut outcomes: HashMap<String, AuditOutcome>,
        organization: OrganizationFacts,
        previous: Option<&Snapshot>,
        finished: SystemTime,
        duration: Duration,
    ) -> Snapshot {
        let before: HashMap<&str, &AccountEntry> = previous
            .map(|p| p.accounts.iter().map(|e| (e.account.id.as_str(), e)).collect())
            .unwrap_or_default();
        let entries = accounts
            .into_iter()
            .map(|(account, audited)| {
                let prior = before.get(account.id.as_str()).filter(|_| audited);
                let (findings, last_success, failure) = match outcomes.remove(&account.id) {
                    Some(Ok(f)) => (Some(Arc::new(f)), Some(finished), None),
                    Some(Err(e)) => (
                        prior.and_then(|p| p.findings.clone()),
                        prior.and_then(|p| p.last_success),
                        Some(e.reason),
                    ),
                    None => (None, None, None),
                };
                AccountEntry {
                    account,
                    audited,
                    findings,
                    last_success,
                    failure,
                }
            })
            .collect();
        Snapshot {
            accounts: Arc::new(entries),
            organization,
            refresh_ok: true,
            refresh_duration: duration,
            last_refresh_success: Some(finished),
        }
    }

    /// A refresh whose discovery failed: keep everything known, say the refresh failed.
    pub fn after_failed_refresh(previous: Option<&Snapshot>, duration: Duration) -> Snapshot {
        match previous {
            Some(p) => Snapshot {
                refresh_ok: false,
                refresh_duration: duration,
                ..p.clone()
            },
            None => Snapshot {
                accounts: Arc::new(Vec::new()),
                organization: OrganizationFacts::default(),
                refresh_ok: false,
                refresh_duration: duration,
                last_refresh_success: None,
            },
        }
    }

    /// Accounts by outcome: (audited, failed, skipped).
    pub fn outcome_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for e in self.accounts.iter() {
            if !e.audited {
                counts.2 += 1;
            } else if e.failure.is_some() || e.findings.is_none() {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RootSummary;

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            name: format!("n{id}"),
            status: "ACTIVE".into(),
            is_management: false,
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
        }
    }

    fn failure() -> AwsCallError {
        AwsCallError {
            service: "iam",
            operation: "GetAccountSummary",
            reason: FailureReason::AccessDenied,
            message: "denied".into(),
        }
    }

    #[test]
    fn failure_keeps_last_known_findings_and_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t1 = t0 + Duration::from_secs(300);
        let first = Snapshot::from_refresh(
            vec![(account("222222222222"), true)],
            HashMap::from([("222222222222".to_string(), Ok(findings(true)))]),
            OrganizationFacts::default(),
            None,
            t0,
            Duration::ZERO,
        );
        let second = Snapshot::from_refresh(
            vec![(account("222222222222"), true)],
            HashMap::from([("222222222222".to_string(), Err(failure()))]),
            OrganizationFacts::default(),
            Some(&first),
            t1,
            Duration::ZERO,
        );
        let e = &second.accounts[0];
        assert!(e.findings.as_ref().unwrap().summary.access_keys_present);
        assert_eq!(e.last_success, Some(t0));
        assert_eq!(e.failure, Some(FailureReason::AccessDenied));
        assert!(!e.healthy());
        assert_eq!(second.outcome_counts(), (0, 1, 0));
    }

    #[test]
    fn never_audited_failure_has_no_findings() {
        let s = Snapshot::from_refresh(
            vec![(account("222222222222"), true)],
            HashMap::from([("222222222222".to_string(), Err(failure()))]),
            OrganizationFacts::default(),
            None,
            SystemTime::now(),
            Duration::ZERO,
        );
        assert!(s.accounts[0].findings.is_none());
        assert!(s.accounts[0].last_success.is_none());
    }

    #[test]
    fn departed_accounts_disappear_and_failed_refresh_keeps_data() {
        let first = Snapshot::from_refresh(
            vec![(account("222222222222"), true), (account("333333333333"), true)],
            HashMap::from([
                ("222222222222".to_string(), Ok(findings(false))),
                ("333333333333".to_string(), Ok(findings(true))),
            ]),
            OrganizationFacts::default(),
            None,
            SystemTime::now(),
            Duration::ZERO,
        );
        let failed = Snapshot::after_failed_refresh(Some(&first), Duration::from_secs(3));
        assert!(!failed.refresh_ok);
        assert_eq!(failed.accounts.len(), 2);
        assert_eq!(failed.last_refresh_success, first.last_refresh_success);
        let second = Snapshot::from_refresh(
            vec![(account("222222222222"), true)],
            HashMap::from([("222222222222".to_string(), Ok(findings(false)))]),
            OrganizationFacts::default(),
            Some(&failed),
            SystemTime::now(),
            Duration::ZERO,
        );
        assert_eq!(second.accounts.len(), 1);
        assert!(second.refresh_ok);
    }
}
