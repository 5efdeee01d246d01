//! Root activity (CIS 4.3): what the events consumer counted of each account's root user
//! acting ([`ActivityLog`], carried by the snapshot), and the exporter's own sessions, which are
//! never activity ([`OwnSessions`], written where sessions are opened, read by the consumer).
//! A leaf: it imports nothing of the pipeline.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::label::labels;

labels! {
    /// What the root user did: the bounded `kind` label of the root activity families.
    pub enum ActivityKind {
        /// A console sign-in with the root password that succeeded.
        ConsoleSignin => "console_signin",
        /// A console sign-in as root that failed.
        ConsoleSigninFailure => "console_signin_failure",
        /// An API call by root with its console session or one of its access keys.
        ApiCall => "api_call",
        /// A call in a privileged root session opened by `sts:AssumeRoot` (not the exporter's).
        PrivilegedSession => "privileged_session",
    }
}

impl ActivityKind {
    fn index(self) -> usize {
        self as usize
    }
}

/// Events of one kind in one account: how many were counted, and the newest one's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub last: SystemTime,
}

/// Root activity counted since the exporter started, per account and kind. Only accounts of the
/// organization enter it (the consumer checks), and accounts that leave the organization leave
/// it ([`ActivityLog::retain`]): it is bounded by the organization's size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityLog {
    accounts: BTreeMap<String, [Option<Tally>; 4]>,
}

impl ActivityLog {
    /// Count one event of `kind` in `account_id` that happened at `time`.
    pub fn record(&mut self, account_id: &str, kind: ActivityKind, time: SystemTime) {
        let slot = &mut self.accounts.entry(account_id.to_string()).or_default()[kind.index()];
        *slot = Some(match *slot {
            Some(t) => Tally {
                count: t.count + 1,
                last: t.last.max(time),
            },
            None => Tally { count: 1, last: time },
        });
    }

    /// What was counted for one account and kind.
    pub fn get(&self, account_id: &str, kind: ActivityKind) -> Option<Tally> {
        self.accounts.get(account_id)?[kind.index()]
    }

    /// Every (account, kind, tally) counted, by account id then kind.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ActivityKind, Tally)> + '_ {
        self.accounts.iter().flat_map(|(id, tallies)| {
            ActivityKind::ALL
                .iter()
                .filter_map(move |k| tallies[k.index()].map(|t| (id.as_str(), *k, t)))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn contains_account(&self, account_id: &str) -> bool {
        self.accounts.contains_key(account_id)
    }

    /// Keep only the accounts `keep` says are still in the organization.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.accounts.retain(|id, _| keep(id));
    }
}

/// How long an own session's access key id is remembered: CloudTrail delivers within minutes,
/// but a queue can hold events for days after an outage; a day is what the issue of root
/// activity asks and what an AssumeRoot session (at most 15 minutes) is far inside of.
pub const OWN_SESSION_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// At most this many own access key ids are remembered (the oldest go first): 10,000 accounts
/// audited every 5 minutes open 2.9 million sessions a day; this bounds the memory to ~16 MB.
pub const OWN_SESSION_LIMIT: usize = 1_000_000;

/// The exporter's own sessions: the access key ids of the sessions it opened (AssumeRoot,
/// member and management roles) for [`OWN_SESSION_MEMORY`], and the principals it acts as
/// (`sts:GetCallerIdentity`, the management role's session). Events made with them are the
/// exporter's audit, never root activity. Cloned handles share one store. Only a keyed hash of
/// each key id is kept (key ids are not secrets, but nothing needs them whole).
/// [`OwnSessions::none`] remembers nothing, where no events consumer would ask.
#[derive(Debug, Clone)]
pub struct OwnSessions {
    inner: Option<Arc<Mutex<Own>>>,
}

impl Default for OwnSessions {
    /// A store that remembers.
    fn default() -> Self {
        OwnSessions {
            inner: Some(Arc::default()),
        }
    }
}

#[derive(Debug, Default)]
struct Own {
    hasher: RandomState,
    /// Hashes of key ids, in the order they were opened, with when.
    order: VecDeque<(u64, SystemTime)>,
    keys: HashSet<u64>,
    /// The exporter's principals, as [`principal`] reduces them.
    principals: HashSet<String>,
}

/// An ARN reduced to the principal it names: an assumed-role session ARN
/// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) to its role, so that every session of the
/// exporter's role (a restarted process, a second replica, web identity sessions with new names)
/// is the exporter; any other ARN as it is.
fn principal(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let [_, partition, "sts", _, account, resource] = parts[..]
        && let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some((role, _session)) = rest.split_once('/')
    {
        return format!("arn:{partition}:sts::{account}:assumed-role/{role}/");
    }
    arn.to_string()
}

impl OwnSessions {
    /// A store that remembers nothing (and knows no session as the exporter's): for a process
    /// that reads no events queue, so that audits of 10,000 accounts keep no key ids.
    pub fn none() -> OwnSessions {
        OwnSessions { inner: None }
    }

    fn own(&self) -> Option<std::sync::MutexGuard<'_, Own>> {
        self.inner.as_ref().map(|o| o.lock().expect("own sessions lock"))
    }

    /// A session the exporter opened now, by its access key id.
    pub fn opened(&self, access_key_id: &str, now: SystemTime) {
        if access_key_id.is_empty() {
            return;
        }
        let Some(mut own) = self.own() else {
            return;
        };
        let h = own.hasher.hash_one(access_key_id);
        own.forget_before(now.checked_sub(OWN_SESSION_MEMORY).unwrap_or(SystemTime::UNIX_EPOCH));
        while own.order.len() >= OWN_SESSION_LIMIT {
            own.pop_oldest();
        }
        if own.keys.insert(h) {
            own.order.push_back((h, now));
        }
    }

    /// A principal the exporter acts as (an IAM user, role or assumed-role session ARN).
    pub fn acting_as(&self, arn: &str) {
        if arn.is_empty() {
            return;
        }
        let Some(mut own) = self.own() else {
            return;
        };
        // A handful in practice (the caller, the management role); bounded all the same.
        if own.principals.len() < 64 {
            own.principals.insert(principal(arn));
        }
    }

    /// Whether an event made with `access_key_id` at `now` was made in one of the exporter's
    /// sessions.
    pub fn is_own_key(&self, access_key_id: &str, now: SystemTime) -> bool {
        if access_key_id.is_empty() {
            return false;
        }
        let Some(mut own) = self.own() else {
            return false;
        };
        own.forget_before(now.checked_sub(OWN_SESSION_MEMORY).unwrap_or(SystemTime::UNIX_EPOCH));
        let h = own.hasher.hash_one(access_key_id);
        own.keys.contains(&h)
    }

    /// Whether `arn` (an event's `inScopeOf.credentialsIssuedTo`) names the exporter.
    pub fn is_own_principal(&self, arn: &str) -> bool {
        !arn.is_empty() && self.own().is_some_and(|own| own.principals.contains(&principal(arn)))
    }

    /// How many key ids are remembered (for tests and the benchmark).
    pub fn remembered(&self) -> usize {
        self.own().map_or(0, |own| own.keys.len())
    }
}

impl Own {
    fn pop_oldest(&mut self) {
        if let Some((h, _)) = self.order.pop_front() {
            self.keys.remove(&h);
        }
    }

    fn forget_before(&mut self, horizon: SystemTime) {
        while self.order.front().is_some_and(|(_, at)| *at < horizon) {
            self.pop_oldest();
        }
    }
}

/// Event ids counted lately, so that a message SQS delivers twice (at-least-once delivery, a
/// delete that failed, a re-audit that failed and let its events come back) counts once.
#[derive(Debug, Default)]
pub struct RecentEvents {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

/// How many event ids [`RecentEvents`] keeps.
pub const RECENT_EVENTS: usize = 100_000;

impl RecentEvents {
    /// Whether `event_id` is new (and remember it); an empty id is always new.
    pub fn first_time(&mut self, event_id: &str) -> bool {
        if event_id.is_empty() {
            return true;
        }
        if self.seen.contains(event_id) {
            return false;
        }
        if self.order.len() >= RECENT_EVENTS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(event_id.to_string());
        self.seen.insert(event_id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_log_counts_per_account_and_kind_and_keeps_the_newest_time() {
        let mut log = ActivityLog::default();
        log.record("222222222222", ActivityKind::ConsoleSignin, at(200));
        log.record("222222222222", ActivityKind::ConsoleSignin, at(100));
        log.record("333333333333", ActivityKind::ApiCall, at(50));
        assert_eq!(
            log.get("222222222222", ActivityKind::ConsoleSignin),
            Some(Tally {
                count: 2,
                last: at(200)
            })
        );
        assert_eq!(log.get("222222222222", ActivityKind::ApiCall), None);
        let all: Vec<_> = log.iter().map(|(a, k, t)| (a.to_string(), k, t.count)).collect();
        assert_eq!(
            all,
            vec![
                ("222222222222".to_string(), ActivityKind::ConsoleSignin, 2),
                ("333333333333".to_string(), ActivityKind::ApiCall, 1)
            ]
        );
        log.retain(|id| id == "333333333333");
        assert!(!log.contains_account("222222222222"));
    }

    #[test]
    fn own_sessions_are_remembered_for_a_day_and_bounded() {
        let own = OwnSessions::default();
        own.opened("ASIAOWN0000000000001", at(1_000_000));
        assert!(own.is_own_key("ASIAOWN0000000000001", at(1_000_000 + 3600)));
        assert!(!own.is_own_key("ASIAOTHER00000000001", at(1_000_000 + 3600)));
        assert!(!own.is_own_key("", at(1_000_000)));
        // A day later it is forgotten.
        assert!(!own.is_own_key("ASIAOWN0000000000001", at(1_000_000 + 24 * 3600 + 1)));
        assert_eq!(own.remembered(), 0);
        // Clones share the store.
        let other = own.clone();
        other.opened("ASIAOWN0000000000002", at(2_000_000));
        assert!(own.is_own_key("ASIAOWN0000000000002", at(2_000_000)));
    }

    #[test]
    fn a_process_without_a_queue_remembers_no_session() {
        let none = OwnSessions::none();
        none.opened("ASIAOWN0000000000001", at(1_000_000));
        none.acting_as("arn:aws:iam::444444444444:user/auditor");
        assert_eq!(none.remembered(), 0);
        assert!(!none.is_own_key("ASIAOWN0000000000001", at(1_000_000)));
        assert!(!none.is_own_principal("arn:aws:iam::444444444444:user/auditor"));
    }

    #[test]
    fn own_principals_match_every_session_of_the_role() {
        let own = OwnSessions::default();
        own.acting_as("arn:aws:sts::111111111111:assumed-role/aws-root-exporter/pod-a");
        own.acting_as("arn:aws:iam::444444444444:user/auditor");
        assert!(own.is_own_principal("arn:aws:sts::111111111111:assumed-role/aws-root-exporter/pod-b"));
        assert!(own.is_own_principal("arn:aws:iam::444444444444:user/auditor"));
        assert!(!own.is_own_principal("arn:aws:sts::111111111111:assumed-role/Admin/operator"));
        assert!(!own.is_own_principal("arn:aws:sts::222222222222:assumed-role/aws-root-exporter/pod-a"));
        assert!(!own.is_own_principal(""));
        assert!(!own.is_own_principal("arn:aws:sts::111111111111:assumed-role/aws-root-exporter"));
    }

    #[test]
    fn an_event_id_counts_once() {
        let mut recent = RecentEvents::default();
        assert!(recent.first_time("e1"));
        assert!(!recent.first_time("e1"));
        assert!(recent.first_time("e2"));
        assert!(recent.first_time("") && recent.first_time(""));
    }
}
