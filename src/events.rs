//! Learning of root credential changes and root use without polling: EventBridge delivers the
//! CloudTrail events of the root user (credential changes, console sign-ins, API calls) from
//! every member account to an SQS queue; [`consume`] long-polls it, re-audits each account whose
//! root credentials changed at once (coalescing bursts), counts root activity (CIS 4.3) in the
//! snapshot's [`crate::activity::ActivityLog`], then deletes the messages. The periodic refresh
//! stays the safety net.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::activity::{ActivityKind, OwnSessions, RecentEvents};
use crate::aws::call::{Caller, Operation};
use crate::ids::is_account_id;
use crate::refresh::Refresher;
use crate::snapshot::{Snapshot, SnapshotSender};
use crate::telemetry::Telemetry;

/// IAM calls that change the root user's credentials.
pub const ROOT_CREDENTIAL_EVENTS: [&str; 12] = [
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "EnableMFADevice",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "UploadSigningCertificate",
    "UpdateSigningCertificate",
    "DeleteSigningCertificate",
];

/// What one message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An event of the root user of this account: a credential change to re-audit, root
    /// activity to count, or both.
    Root(RootEvent),
    /// A well-formed event that says nothing about root credentials or root use.
    Irrelevant(&'static str),
    /// Not an EventBridge event (the reason, one line).
    Malformed(String),
}

/// What one event says about an account's root user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEvent {
    pub account_id: String,
    /// The envelope's `time` (when EventBridge received it), for the latency histogram.
    pub time: Option<SystemTime>,
    /// A root credential change or a successful root sign-in: the account is re-audited.
    pub reaudit: bool,
    /// What root did, when the event is root activity (CIS 4.3): `None` for an event whose
    /// account is not told by `detail.recipientAccountId` (re-audited, never counted).
    pub activity: Option<ActivityKind>,
    /// `detail.eventTime` (else the envelope's `time`): when root acted.
    pub event_time: Option<SystemTime>,
    /// `detail.eventID`, to count a message delivered twice once.
    pub event_id: String,
    /// `detail.userIdentity.accessKeyId`: the exporter's own sessions are known by it.
    pub access_key_id: String,
    /// `detail.userIdentity.inScopeOf.credentialsIssuedTo`: who opened an AssumeRoot session.
    pub issued_to: String,
}

fn time_of(t: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok()
}

/// Classify one message body.
pub fn classify(body: &str) -> Verdict {
    let event: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Verdict::Malformed(format!("not JSON: {e}")),
    };
    let Some(envelope) = event.as_object() else {
        return Verdict::Malformed("not a JSON object".into());
    };
    let text = |key: &str| envelope.get(key).and_then(|v| v.as_str());
    let (Some(source), Some(detail_type)) = (text("source"), text("detail-type")) else {
        return Verdict::Malformed("no `source` or `detail-type`: not an EventBridge event".into());
    };
    let Some(detail) = envelope.get("detail").and_then(|d| d.as_object()) else {
        return Verdict::Malformed("no `detail` object".into());
    };
    let value = |path: &[&str]| -> Option<&serde_json::Value> {
        let mut v = detail.get(path[0])?;
        for key in &path[1..] {
            v = v.get(key)?;
        }
        Some(v).filter(|v| !v.is_null())
    };
    let field = |path: &[&str]| value(path).and_then(|v| v.as_str());
    let name = field(&["eventName"]).unwrap_or("");
    let identity = field(&["userIdentity", "type"]);
    let assumed_root = field(&["userIdentity", "sessionContext", "assumedRoot"]) == Some("true");
    let (reaudit, activity) = match (source, detail_type) {
        ("aws.signin", "AWS Console Sign In via CloudTrail") => {
            if name != "ConsoleLogin" {
                return Verdict::Irrelevant("a sign-in event other than ConsoleLogin");
            }
            if identity != Some("Root") {
                return Verdict::Irrelevant("not made by the root user");
            }
            match field(&["responseElements", "ConsoleLogin"]) {
                Some("Success") => (true, ActivityKind::ConsoleSignin),
                Some("Failure") => (false, ActivityKind::ConsoleSigninFailure),
                _ => return Verdict::Irrelevant("a root sign-in whose outcome is neither Success nor Failure"),
            }
        }
        (_, "AWS API Call via CloudTrail") if source.starts_with("aws.") => {
            if identity != Some("Root") && !assumed_root {
                return Verdict::Irrelevant("not made by the root user");
            }
            // What CIS 4.3's metric filter leaves out: calls an AWS service made on root's
            // behalf, and AWS's own events in the account.
            if value(&["userIdentity", "invokedBy"]).is_some() {
                return Verdict::Irrelevant("made by an AWS service on the root user's behalf (invokedBy)");
            }
            if field(&["eventType"]) == Some("AwsServiceEvent") {
                return Verdict::Irrelevant("an AWS service event, not a call by the root user");
            }
            if name == "AssumeRoot" {
                return Verdict::Irrelevant("the AssumeRoot call itself, recorded in the caller's account");
            }
            let reaudit = source == "aws.iam"
                && field(&["eventSource"]) == Some("iam.amazonaws.com")
                && ROOT_CREDENTIAL_EVENTS.contains(&name);
            let privileged = assumed_root || value(&["userIdentity", "inScopeOf"]).is_some();
            let kind = if privileged {
                ActivityKind::PrivilegedSession
            } else {
                ActivityKind::ApiCall
            };
            (reaudit, kind)
        }
        _ => return Verdict::Irrelevant("not a CloudTrail API call or console sign-in"),
    };
    let recipient = field(&["recipientAccountId"]).filter(|a| is_account_id(a));
    // Root of one account acting on a resource of another: CloudTrail delivers a copy to the
    // resource owner, whose root did nothing; the caller's own account has the event too.
    if let (Some(r), Some(own)) = (recipient, field(&["userIdentity", "accountId"]))
        && is_account_id(own)
        && r != own
    {
        return Verdict::Irrelevant("a copy delivered to the owner of the resource; root acted in another account");
    }
    let account = recipient
        .or(if reaudit { text("account") } else { None })
        .filter(|a| is_account_id(a));
    let Some(account_id) = account else {
        return Verdict::Malformed("no 12-digit `detail.recipientAccountId`".into());
    };
    let time = text("time").and_then(time_of);
    Verdict::Root(RootEvent {
        account_id: account_id.to_string(),
        time,
        reaudit,
        activity: recipient.is_some().then_some(activity),
        event_time: field(&["eventTime"]).and_then(time_of).or(time),
        event_id: field(&["eventID"]).unwrap_or("").to_string(),
        access_key_id: field(&["userIdentity", "accessKeyId"]).unwrap_or("").to_string(),
        issued_to: field(&["userIdentity", "inScopeOf", "credentialsIssuedTo"])
            .unwrap_or("")
            .to_string(),
    })
}

/// How the consumer waits and coalesces.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Long-poll wait of one receive (at most 20 s).
    pub wait: Duration,
    /// After the first relevant event, keep collecting this long before auditing, so that a
    /// burst for one account gives one audit.
    pub coalesce: Duration,
    /// Messages are invisible to other receives this long; an audit that fails leaves them to
    /// come back after it.
    pub visibility: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            wait: Duration::from_secs(20),
            coalesce: Duration::from_secs(2),
            visibility: Duration::from_secs(60),
        }
    }
}

/// Messages waiting for one account's audit.
#[derive(Default)]
struct Pending {
    receipts: Vec<String>,
    /// The earliest event time among them.
    first_event: Option<SystemTime>,
}

/// What one round of reading the queue collected: the accounts to re-audit with their messages,
/// the root activity to count, and the messages to delete unread by any audit.
#[derive(Default)]
struct Batch {
    pending: HashMap<String, Pending>,
    activity: Vec<(String, ActivityKind, SystemTime)>,
    obsolete: Vec<String>,
    /// When the round ends: set by its first event to re-audit (`Settings::coalesce` later).
    deadline: Option<Instant>,
}

impl Batch {
    /// Sort one received message: to re-audit an audited account (pending), or not (obsolete);
    /// root activity of an audited account, not the exporter's own, is counted either way.
    fn sort(&mut self, message: aws_sdk_sqs::types::Message, snapshot: Option<&Snapshot>, consumer: &mut Consumer) {
        let Some(receipt) = message.receipt_handle else {
            return;
        };
        let telemetry = consumer.telemetry.clone();
        let event = match classify(message.body.as_deref().unwrap_or("")) {
            Verdict::Root(event) => event,
            Verdict::Irrelevant(why) => {
                debug!(why, "irrelevant event deleted");
                telemetry.record_event("irrelevant");
                self.obsolete.push(receipt);
                return;
            }
            Verdict::Malformed(why) => {
                warn!(message_id = ?message.message_id, reason = ?why, "malformed message on the events queue; deleted");
                telemetry.record_event("malformed");
                self.obsolete.push(receipt);
                return;
            }
        };
        let account_id = event.account_id.as_str();
        let known = snapshot.and_then(|s| s.accounts.iter().find(|e| e.account.id == account_id));
        if !known.is_some_and(|e| e.is_selected()) {
            debug!(
                account_id,
                "event for an account that is not audited (outside the organization or filtered out); deleted"
            );
            telemetry.record_event("irrelevant");
            self.obsolete.push(receipt);
            return;
        }
        let counted = event.activity.and_then(|kind| consumer.count(&event, kind));
        if event.reaudit {
            telemetry.record_event("relevant");
            let p = self.pending.entry(event.account_id.clone()).or_default();
            p.receipts.push(receipt);
            p.first_event = match (p.first_event, event.time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.deadline
                .get_or_insert_with(|| Instant::now() + consumer.settings.coalesce);
        } else {
            telemetry.record_event(if counted.is_some() { "activity" } else { "irrelevant" });
            self.obsolete.push(receipt);
        }
        if let Some((kind, at)) = counted {
            self.activity.push((event.account_id, kind, at));
        }
    }
}

/// The queue and how it is read.
struct Consumer {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    /// One queue read and one delete at a time: no adaptive limit to speak of.
    caller: Caller,
    telemetry: Telemetry,
    settings: Settings,
    /// Before the next read after a failed one: 1 s, doubling to 60 s.
    pause: Duration,
    /// The exporter's own sessions: their events are never root activity.
    own: OwnSessions,
    /// Event ids counted lately: a message delivered twice counts once.
    recent: RecentEvents,
}

impl Consumer {
    /// Whether `event` counts as root activity of `kind`, and when root acted: not when the
    /// exporter's own session made it (by access key id, or `inScopeOf` naming the exporter),
    /// nor when the same event was counted before. An event dated in the future counts now.
    fn count(&mut self, event: &RootEvent, kind: ActivityKind) -> Option<(ActivityKind, SystemTime)> {
        let now = SystemTime::now();
        if self.own.is_own_key(&event.access_key_id, now) || self.own.is_own_principal(&event.issued_to) {
            debug!(account_id = %event.account_id, event_id = %event.event_id, "a call of the exporter's own audit session; not root activity");
            return None;
        }
        if !self.recent.first_time(&event.event_id) {
            debug!(account_id = %event.account_id, event_id = %event.event_id, "root activity counted before (delivered again)");
            return None;
        }
        let at = event.event_time.map_or(now, |t| t.min(now));
        info!(account_id = %event.account_id, kind = %kind, event_id = %event.event_id, "root activity");
        Some((kind, at))
    }

    /// Read until a round ends: the coalescing deadline of its first relevant event passes, or
    /// only obsolete messages came, or a read failed (after its pause).
    async fn collect(&mut self, tx: &SnapshotSender) -> Batch {
        let mut batch = Batch::default();
        loop {
            let wait = match batch.deadline {
                None => self.settings.wait,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if batch.deadline.is_some() && wait.is_zero() {
                return batch;
            }
            let Some(messages) = self.receive(wait).await else {
                return batch;
            };
            let snapshot = tx.borrow().clone();
            for message in messages {
                batch.sort(message, snapshot.as_deref(), self);
            }
            if batch.deadline.is_none() && !batch.obsolete.is_empty() {
                return batch;
            }
        }
    }

    /// One long poll of at most `wait`; `None` when it failed (logged, paused).
    async fn receive(&mut self, wait: Duration) -> Option<Vec<aws_sdk_sqs::types::Message>> {
        let received = self
            .caller
            .call(Operation::ReceiveMessage, || {
                self.sqs
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(wait.as_secs().clamp(0, 20) as i32)
                    .visibility_timeout(self.settings.visibility.as_secs() as i32)
                    .send()
            })
            .await;
        match received {
            Ok(out) => {
                self.telemetry.record_queue_read(true);
                self.pause = Duration::from_secs(1);
                Some(out.messages.unwrap_or_default())
            }
            Err(e) => {
                self.telemetry.record_queue_read(false);
                warn!(reason = %e.reason, error = ?e.message, retry_in = ?self.pause, "cannot read the events queue");
                tokio::time::sleep(self.pause).await;
                self.pause = (self.pause * 2).min(Duration::from_secs(60));
                None
            }
        }
    }

    /// Re-audit the accounts of `pending` and publish them; the receipts of the accounts whose
    /// audit succeeded (the others come back after their visibility timeout).
    async fn reaudit(
        &self,
        refresher: &Refresher,
        mut pending: HashMap<String, Pending>,
        tx: &SnapshotSender,
    ) -> Vec<String> {
        let ids: Vec<String> = pending.keys().cloned().collect();
        let audited = refresher.audit_accounts(&ids, tx).await;
        let published = SystemTime::now();
        let mut done = Vec::new();
        for (id, ok) in audited {
            self.telemetry.record_event_audit(ok);
            let Some(p) = pending.remove(&id) else { continue };
            if ok {
                if let Some(latency) = p.first_event.and_then(|t| event_latency(t, published)) {
                    self.telemetry.observe_event_latency(latency);
                }
                info!(account_id = %id, events = p.receipts.len(), "re-audited after root credential events");
                done.extend(p.receipts);
            } else {
                warn!(account_id = %id, "the re-audit after root credential events failed; the events come back after their visibility timeout");
            }
        }
        done
    }
}

/// Long-poll `queue_url` until the task is dropped. `refreshers` carries the current refresher
/// (it changes with the configuration); `tx` is where snapshots are published.
pub async fn consume(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    refreshers: watch::Receiver<Option<Arc<Refresher>>>,
    tx: SnapshotSender,
    telemetry: Telemetry,
    settings: Settings,
    own: OwnSessions,
) {
    telemetry.queue_not_read_yet();
    // Until a refresh has listed the organization, no event can be told from a foreign one:
    // leave the queue alone until then.
    let mut snapshots = tx.subscribe();
    if snapshots
        .wait_for(|s| s.as_deref().is_some_and(|s| s.ever_listed()))
        .await
        .is_err()
    {
        return;
    }
    info!(queue = %queue_url, "reading root credential events");
    let mut consumer = Consumer {
        caller: Caller::new(telemetry.clone(), 1),
        sqs,
        queue_url,
        telemetry,
        settings,
        pause: Duration::from_secs(1),
        own,
        recent: RecentEvents::default(),
    };
    loop {
        let batch = consumer.collect(&tx).await;
        count_activity(&tx, &batch.activity);
        delete(&consumer.sqs, &consumer.caller, &consumer.queue_url, batch.obsolete).await;
        if batch.pending.is_empty() {
            continue;
        }
        let Some(refresher) = refreshers.borrow().clone() else {
            // No refresher yet (first start): the messages come back after their visibility
            // timeout, by when the first refresh has listed the organization.
            continue;
        };
        let done = consumer.reaudit(&refresher, batch.pending, &tx).await;
        delete(&consumer.sqs, &consumer.caller, &consumer.queue_url, done).await;
    }
}

/// Publish the root activity of a round: one new snapshot for all of it (rendered at the next
/// scrape), with the latest snapshot's log as the base.
fn count_activity(tx: &SnapshotSender, activity: &[(String, ActivityKind, SystemTime)]) {
    if activity.is_empty() {
        return;
    }
    tx.send_modify(|latest| {
        if let Some(s) = latest.as_deref() {
            let mut log = (*s.activity).clone();
            for (account_id, kind, at) in activity {
                log.record(account_id, *kind, *at);
            }
            *latest = Some(Arc::new(s.with_activity(log)));
        }
    });
}

/// The oldest event time that enters the latency histogram: an event older than this is a
/// replay or a wrong clock, not a measure of how fast the pipeline is.
const MAX_EVENT_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// The time from an event's own `time` to the snapshot that answered it, for the latency
/// histogram; `None` for an event dated in the future or more than [`MAX_EVENT_AGE`] ago (its
/// re-audit still happens, but one event dated 1970 would add decades to the sum for good).
fn event_latency(event_time: SystemTime, published: SystemTime) -> Option<Duration> {
    published
        .duration_since(event_time)
        .ok()
        .filter(|age| *age <= MAX_EVENT_AGE)
}

/// Delete handled messages, ten per call. A failure only means they come back later (and are
/// then handled again, harmlessly).
async fn delete(sqs: &aws_sdk_sqs::Client, caller: &Caller, queue_url: &str, receipts: Vec<String>) {
    use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
    for chunk in receipts.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(r)
                    .build()
                    .ok()
            })
            .collect();
        let result = caller
            .call(Operation::DeleteMessageBatch, || {
                sqs.delete_message_batch()
                    .queue_url(queue_url)
                    .set_entries(Some(entries.clone()))
                    .send()
            })
            .await;
        match result {
            Ok(out) if !out.failed().is_empty() => {
                warn!(
                    failed = out.failed().len(),
                    "some handled events could not be deleted; they will be handled again"
                )
            }
            Ok(_) => {}
            Err(e) => {
                warn!(reason = %e.reason, error = ?e.message, "cannot delete handled events; they will be handled again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iam_event(name: &str, identity: serde_json::Value) -> String {
        serde_json::json!({
            "version": "0",
            "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.iam",
            "account": "222222222222",
            "time": "2026-11-25T01:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.09",
                "userIdentity": identity,
                "eventSource": "iam.amazonaws.com",
                "eventName": name,
                "recipientAccountId": "222222222222",
            }
        })
        .to_string()
    }

    fn root() -> serde_json::Value {
        serde_json::json!({"type": "Root", "arn": "arn:aws:iam::222222222222:root", "accountId": "222222222222"})
    }

    fn root_event(v: Verdict) -> RootEvent {
        match v {
            Verdict::Root(e) => e,
            other => panic!("not a root event: {other:?}"),
        }
    }

    fn t(s: &str) -> Option<SystemTime> {
        Some(humantime::parse_rfc3339(s).unwrap())
    }

    #[test]
    fn root_credential_changes_are_reaudited_and_counted() {
        for name in ROOT_CREDENTIAL_EVENTS {
            let e = root_event(classify(&iam_event(name, root())));
            assert_eq!(e.account_id, "222222222222", "{name}");
            assert_eq!(e.time, t("2026-11-25T01:00:00Z"));
            assert!(e.reaudit, "{name}");
            assert_eq!(e.activity, Some(ActivityKind::ApiCall), "{name}");
        }
        let assumed_root = serde_json::json!({"type": "AssumedRoot", "sessionContext": {"assumedRoot": "true"}});
        let e = root_event(classify(&iam_event("DeleteAccessKey", assumed_root)));
        assert!(e.reaudit);
        assert_eq!(e.activity, Some(ActivityKind::PrivilegedSession));
    }

    fn signin(outcome: serde_json::Value) -> String {
        serde_json::json!({
            "source": "aws.signin", "detail-type": "AWS Console Sign In via CloudTrail",
            "account": "333333333333", "time": "2026-11-25T01:00:05Z",
            "detail": {"eventName": "ConsoleLogin", "eventTime": "2026-11-25T01:00:00Z", "eventID": "e-1",
                "userIdentity": {"type": "Root", "accountId": "333333333333", "accessKeyId": ""},
                "eventSource": "signin.amazonaws.com", "responseElements": {"ConsoleLogin": outcome},
                "recipientAccountId": "333333333333"}
        })
        .to_string()
    }

    #[test]
    fn root_sign_ins_count_by_outcome() {
        let ok = root_event(classify(&signin("Success".into())));
        assert_eq!(ok.activity, Some(ActivityKind::ConsoleSignin));
        assert!(ok.reaudit, "a sign-in changes the password's last use");
        assert_eq!(ok.event_time, t("2026-11-25T01:00:00Z"));
        assert_eq!(ok.time, t("2026-11-25T01:00:05Z"));
        assert_eq!(ok.event_id, "e-1");
        let failed = root_event(classify(&signin("Failure".into())));
        assert_eq!(failed.activity, Some(ActivityKind::ConsoleSigninFailure));
        assert!(!failed.reaudit, "a failed sign-in changes nothing");
        assert_eq!(
            classify(&signin("Maybe".into())),
            Verdict::Irrelevant("a root sign-in whose outcome is neither Success nor Failure")
        );
        assert!(matches!(
            classify(&signin(serde_json::Value::Null)),
            Verdict::Irrelevant(_)
        ));
    }

    fn api_call(identity: serde_json::Value, extra: serde_json::Value) -> String {
        let mut detail = serde_json::json!({
            "eventVersion": "1.09", "userIdentity": identity, "eventTime": "2026-11-25T01:00:00Z",
            "eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy", "eventType": "AwsApiCall",
            "readOnly": false, "eventID": "e-2", "recipientAccountId": "222222222222",
        });
        for (k, v) in extra.as_object().unwrap() {
            detail[k] = v.clone();
        }
        serde_json::json!({"source": "aws.s3", "detail-type": "AWS API Call via CloudTrail", "account": "222222222222",
            "time": "2026-11-25T01:00:01Z", "detail": detail})
        .to_string()
    }

    #[test]
    fn root_api_calls_are_counted_by_session() {
        let key =
            serde_json::json!({"type": "Root", "accountId": "222222222222", "accessKeyId": "AKIAROOTKEY000000001"});
        let e = root_event(classify(&api_call(key.clone(), serde_json::json!({}))));
        assert_eq!(e.activity, Some(ActivityKind::ApiCall));
        assert!(!e.reaudit);
        assert_eq!(e.access_key_id, "AKIAROOTKEY000000001");
        let privileged = serde_json::json!({"type": "Root", "accountId": "222222222222", "accessKeyId": "ASIASESSION000000001",
            "sessionContext": {"assumedRoot": "true"},
            "inScopeOf": {"issuerAccountId": "111111111111", "credentialsIssuedTo": "arn:aws:sts::111111111111:assumed-role/Admin/operator"}});
        let e = root_event(classify(&api_call(privileged, serde_json::json!({}))));
        assert_eq!(e.activity, Some(ActivityKind::PrivilegedSession));
        assert_eq!(e.issued_to, "arn:aws:sts::111111111111:assumed-role/Admin/operator");
        // Only inScopeOf, no sessionContext hint: still a privileged session.
        let scoped = serde_json::json!({"type": "Root", "inScopeOf": {"credentialsIssuedTo": "arn:x"}});
        assert_eq!(
            root_event(classify(&api_call(scoped, serde_json::json!({})))).activity,
            Some(ActivityKind::PrivilegedSession)
        );
    }

    #[test]
    fn what_cis_leaves_out_is_not_activity() {
        let root = root();
        let invoked = serde_json::json!({"type": "Root", "invokedBy": "cloudformation.amazonaws.com"});
        assert!(matches!(
            classify(&api_call(invoked, serde_json::json!({}))),
            Verdict::Irrelevant(w) if w.contains("invokedBy")
        ));
        assert!(matches!(
            classify(&api_call(root.clone(), serde_json::json!({"eventType": "AwsServiceEvent"}))),
            Verdict::Irrelevant(w) if w.contains("service event")
        ));
        let role = serde_json::json!({"type": "AssumedRole", "arn": "arn:aws:sts::222222222222:assumed-role/x/y"});
        assert_eq!(
            classify(&api_call(role, serde_json::json!({}))),
            Verdict::Irrelevant("not made by the root user")
        );
        // A copy for the resource owner: another account's root acted.
        let foreign = serde_json::json!({"type": "Root", "accountId": "999999999999"});
        assert!(matches!(
            classify(&api_call(foreign, serde_json::json!({}))),
            Verdict::Irrelevant(w) if w.contains("owner of the resource")
        ));
        // No recipientAccountId: whose root it was cannot be told.
        assert!(matches!(
            classify(&api_call(root.clone(), serde_json::json!({"recipientAccountId": null}))),
            Verdict::Malformed(_)
        ));
        assert!(matches!(
            classify(&api_call(
                root,
                serde_json::json!({"recipientAccountId": "22222222222x"})
            )),
            Verdict::Malformed(_)
        ));
    }

    #[test]
    fn hostile_fields_are_kept_as_data() {
        let hostile = "arn:\"x\"\\\n\t{a=\"1\"} ünï";
        let identity =
            serde_json::json!({"type": "Root", "accessKeyId": hostile, "inScopeOf": {"credentialsIssuedTo": hostile}});
        let e = root_event(classify(&api_call(identity, serde_json::json!({"eventID": hostile}))));
        assert_eq!(e.issued_to, hostile);
        assert_eq!(e.access_key_id, hostile);
        assert_eq!(e.account_id, "222222222222");
    }

    #[test]
    fn other_events_are_irrelevant() {
        let user = serde_json::json!({"type": "IAMUser", "arn": "arn:aws:iam::222222222222:user/bob"});
        assert_eq!(
            classify(&iam_event("CreateAccessKey", user)),
            Verdict::Irrelevant("not made by the root user")
        );
        // A root call that changes no credential: counted, not re-audited.
        let e = root_event(classify(&iam_event("CreateRole", root())));
        assert!(!e.reaudit);
        assert_eq!(e.activity, Some(ActivityKind::ApiCall));
        let ec2 = serde_json::json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}});
        assert!(matches!(classify(&ec2.to_string()), Verdict::Irrelevant(_)));
    }

    #[test]
    fn malformed_messages_say_why() {
        for (body, why) in [
            ("", "not JSON"),
            ("{not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            ("{}", "not an EventBridge event"),
            (
                r#"{"source":"aws.iam","detail-type":"AWS API Call via CloudTrail"}"#,
                "no `detail`",
            ),
        ] {
            match classify(body) {
                Verdict::Malformed(m) => assert!(m.contains(why), "{body:?}: {m}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        let no_account = iam_event("CreateAccessKey", root()).replace("222222222222", "2222");
        assert!(matches!(classify(&no_account), Verdict::Malformed(_)));
    }

    #[test]
    fn only_plausible_event_times_enter_the_latency() {
        let now = SystemTime::now();
        let secs = Duration::from_secs;
        assert_eq!(event_latency(now - secs(3), now), Some(secs(3)));
        assert_eq!(
            event_latency(now - secs(13 * 24 * 3600), now),
            Some(secs(13 * 24 * 3600))
        );
        // In the future, older than 14 days, 1970: re-audited, but not measured.
        assert_eq!(event_latency(now + secs(60), now), None);
        assert_eq!(event_latency(now - secs(15 * 24 * 3600), now), None);
        assert_eq!(event_latency(SystemTime::UNIX_EPOCH, now), None);
    }
}
