//! Learning of a root credential change without polling: EventBridge delivers the CloudTrail
//! events of root credential changes (and root console sign-ins) from every member account to an
//! SQS queue; [`consume`] long-polls it and re-audits each named account at once, coalescing
//! bursts, then deletes the messages. The periodic refresh stays the safety net.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tracing::{debug, info, warn};

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
    /// A root credential change (or root sign-in) in this account, at this time when given.
    Relevant {
        account_id: String,
        time: Option<SystemTime>,
    },
    /// A well-formed event that says nothing about root credentials.
    Irrelevant(&'static str),
    /// Not an EventBridge event (the reason, one line).
    Malformed(String),
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
    let field = |path: &[&str]| -> Option<&str> {
        let mut v = detail.get(path[0])?;
        for key in &path[1..] {
            v = v.get(key)?;
        }
        v.as_str()
    };
    let name = field(&["eventName"]).unwrap_or("");
    let by_root = field(&["userIdentity", "type"]) == Some("Root")
        || field(&["userIdentity", "sessionContext", "assumedRoot"]) == Some("true");
    let relevant = match (source, detail_type) {
        ("aws.iam", "AWS API Call via CloudTrail") => {
            field(&["eventSource"]) == Some("iam.amazonaws.com") && ROOT_CREDENTIAL_EVENTS.contains(&name)
        }
        ("aws.signin", "AWS Console Sign In via CloudTrail") => name == "ConsoleLogin",
        _ => return Verdict::Irrelevant("not an IAM call or a console sign-in"),
    };
    if !relevant {
        return Verdict::Irrelevant("not a root credential change");
    }
    if !by_root {
        return Verdict::Irrelevant("not made by the root user");
    }
    let account = field(&["recipientAccountId"])
        .or(text("account"))
        .filter(|a| is_account_id(a));
    let Some(account_id) = account else {
        return Verdict::Malformed("no 12-digit `detail.recipientAccountId` or `account`".into());
    };
    let time = text("time").and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok());
    Verdict::Relevant {
        account_id: account_id.to_string(),
        time,
    }
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
/// and the messages to delete unread by any audit.
#[derive(Default)]
struct Batch {
    pending: HashMap<String, Pending>,
    obsolete: Vec<String>,
    /// When the round ends: set by its first relevant event (`Settings::coalesce` later).
    deadline: Option<Instant>,
}

impl Batch {
    /// Sort one received message: relevant to an audited account (pending), or not (obsolete).
    fn sort(&mut self, message: aws_sdk_sqs::types::Message, snapshot: Option<&Snapshot>, consumer: &Consumer) {
        let Some(receipt) = message.receipt_handle else {
            return;
        };
        let telemetry = &consumer.telemetry;
        match classify(message.body.as_deref().unwrap_or("")) {
            Verdict::Relevant { account_id, time } => {
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
                telemetry.record_event("relevant");
                let p = self.pending.entry(account_id).or_default();
                p.receipts.push(receipt);
                p.first_event = match (p.first_event, time) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                self.deadline
                    .get_or_insert_with(|| Instant::now() + consumer.settings.coalesce);
            }
            Verdict::Irrelevant(why) => {
                debug!(why, "irrelevant event deleted");
                telemetry.record_event("irrelevant");
                self.obsolete.push(receipt);
            }
            Verdict::Malformed(why) => {
                warn!(message_id = ?message.message_id, reason = ?why, "malformed message on the events queue; deleted");
                telemetry.record_event("malformed");
                self.obsolete.push(receipt);
            }
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
}

impl Consumer {
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
) {
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
    };
    loop {
        let batch = consumer.collect(&tx).await;
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

    #[test]
    fn root_credential_changes_are_relevant() {
        for name in ROOT_CREDENTIAL_EVENTS {
            assert_eq!(
                classify(&iam_event(name, root())),
                Verdict::Relevant {
                    account_id: "222222222222".into(),
                    time: Some(humantime::parse_rfc3339("2026-11-25T01:00:00Z").unwrap()),
                },
                "{name}"
            );
        }
        let assumed_root = serde_json::json!({"type": "AssumedRoot", "sessionContext": {"assumedRoot": "true"}});
        assert!(matches!(
            classify(&iam_event("DeleteAccessKey", assumed_root)),
            Verdict::Relevant { .. }
        ));
        let signin = serde_json::json!({
            "source": "aws.signin", "detail-type": "AWS Console Sign In via CloudTrail",
            "account": "333333333333", "time": "2026-11-25T01:00:00Z",
            "detail": {"eventName": "ConsoleLogin", "userIdentity": {"type": "Root"}, "eventSource": "signin.amazonaws.com", "recipientAccountId": "333333333333"}
        });
        assert_eq!(
            classify(&signin.to_string()),
            Verdict::Relevant {
                account_id: "333333333333".into(),
                time: Some(humantime::parse_rfc3339("2026-11-25T01:00:00Z").unwrap())
            }
        );
    }

    #[test]
    fn other_events_are_irrelevant() {
        let user = serde_json::json!({"type": "IAMUser", "arn": "arn:aws:iam::222222222222:user/bob"});
        assert_eq!(
            classify(&iam_event("CreateAccessKey", user)),
            Verdict::Irrelevant("not made by the root user")
        );
        assert_eq!(
            classify(&iam_event("CreateRole", root())),
            Verdict::Irrelevant("not a root credential change")
        );
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
