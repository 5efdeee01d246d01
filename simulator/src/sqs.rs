//! Simulated Amazon SQS (AWS JSON 1.0, `X-Amz-Target: AmazonSQS.*`, query-compatible errors):
//! the calls a consumer of the `[events]` queue makes.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::queue::{DeleteOutcome, Received, VisibilityOutcome};
use super::scenario::MAX_VISIBILITY_TIMEOUT_S;
use super::wire::{AwsError, json_request};
use super::{Org, Principal, Protocol, Simulator};

pub(crate) const TARGET_PREFIX: &str = "AmazonSQS.";

/// The SQS operations served.
pub(crate) const OPERATIONS: [&str; 5] = [
    "GetQueueUrl",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
];

/// The names `MessageSystemAttributeNames` (and the older `AttributeNames`) accept.
const SYSTEM_ATTRIBUTES: [&str; 10] = [
    "All",
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// Those a standard queue's messages carry.
const STANDARD_ATTRIBUTES: [&str; 4] = [
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
];

const MAX_WAIT_SECONDS: i64 = 20;
const MAX_BATCH: usize = 10;

fn invalid_value(name: &str, value: impl std::fmt::Display, reason: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("Value {value} for parameter {name} is invalid. Reason: {reason}"),
    )
}

fn no_such_queue() -> AwsError {
    AwsError::new(400, "QueueDoesNotExist", "The specified queue does not exist.")
}

fn invalid_handle(handle: &str) -> AwsError {
    AwsError::new(
        404,
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

fn required_str<'a>(input: &'a Map<String, Value>, name: &str) -> Result<&'a str, AwsError> {
    match input.get(name) {
        None | Some(Value::Null) => Err(AwsError::new(
            400,
            "MissingParameter",
            format!("The request must contain the parameter {name}."),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

/// The queue of `org`, which [`queue_of`] found.
fn queue_lock(org: &Org) -> std::sync::MutexGuard<'_, super::queue::Queue> {
    org.queue
        .as_ref()
        .expect("queue_of checked that the organization has a queue")
        .lock()
        .expect("queue state poisoned")
}

/// A parameter of the wrong JSON type.
fn wrong_type(name: &str, expected: &str, got: &Value) -> AwsError {
    AwsError::new(
        400,
        "SerializationException",
        format!("{name}: expected {expected}, got {got}"),
    )
}

fn optional_int(input: &Map<String, Value>, name: &str) -> Result<Option<i64>, AwsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(other) => Err(wrong_type(name, "an integer", other)),
    }
}

fn string_list(input: &Map<String, Value>, name: &str) -> Result<Vec<String>, AwsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    AwsError::new(
                        400,
                        "SerializationException",
                        format!("{name}: expected a list of strings, got {v}"),
                    )
                })
            })
            .collect(),
        Some(other) => Err(wrong_type(name, "a list", other)),
    }
}

/// The organization whose queue `QueueUrl` names: `http(s)://HOST/ACCOUNT/NAME` (the host is
/// not compared: AWS routes by the endpoint the request reached). Two scenarios' queues of the
/// same name are told apart by the owning (management) account in the URL.
fn queue_of<'a>(sim: &'a Simulator, input: &Map<String, Value>) -> Result<&'a Org, AwsError> {
    let url = required_str(input, "QueueUrl")?;
    let path = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, path)| path.trim_end_matches('/'));
    let Some(path) = path.filter(|p| p.split('/').count() == 2) else {
        return Err(AwsError::new(
            400,
            "InvalidAddress",
            format!("The address {url} is not valid for this endpoint."),
        ));
    };
    sim.org_of_queue_path(path).ok_or_else(no_such_queue)
}

/// One call, answered with the service's result document or its error.
pub(crate) async fn run(
    sim: &Simulator,
    principal: Principal,
    operation: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input = json_request(body, operation, &OPERATIONS)?;
    // Only the exporter's own credentials, or another organization's access role (a role with
    // `organization_access`), may use the queues; root and other role sessions act inside one
    // account.
    if !principal.acts_for_organization() {
        let resource = match &sim.org_for(&principal).queue {
            Some(q) => {
                let q = q.lock().expect("queue state poisoned");
                format!("arn:aws:sqs:us-east-1:{}:{}", q.owner, q.name)
            }
            None => "*".to_string(),
        };
        return Err(AwsError::new(
            403,
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sqs:{operation} on resource: {resource} because no identity-based policy allows the sqs:{operation} action",
                principal.arn()
            ),
        ));
    }
    // Paced and counted in the caller's organization; the queue is the one its URL names.
    let caller_org = sim.org_for(&principal);
    caller_org.gate(operation, &principal, None, Protocol::Sqs).await?;
    match operation {
        "GetQueueUrl" => get_queue_url(sim, caller_org, &input),
        "ReceiveMessage" => receive_message(sim, &input).await,
        "DeleteMessage" => {
            let org = queue_of(sim, &input)?;
            let handle = required_str(&input, "ReceiptHandle")?;
            let mut q = queue_lock(org);
            match q.delete(handle) {
                DeleteOutcome::Invalid => Err(invalid_handle(handle)),
                DeleteOutcome::Deleted | DeleteOutcome::Stale => Ok(json!({})),
            }
        }
        "DeleteMessageBatch" => delete_message_batch(sim, &input),
        "ChangeMessageVisibility" => {
            let org = queue_of(sim, &input)?;
            let handle = required_str(&input, "ReceiptHandle")?;
            let timeout = optional_int(&input, "VisibilityTimeout")?.ok_or_else(|| {
                AwsError::new(
                    400,
                    "MissingParameter",
                    "The request must contain the parameter VisibilityTimeout.",
                )
            })?;
            let timeout = visibility(timeout)?;
            let mut q = queue_lock(org);
            match q.change_visibility(handle, timeout, Instant::now()) {
                VisibilityOutcome::Changed => Ok(json!({})),
                VisibilityOutcome::Invalid => Err(invalid_handle(handle)),
                VisibilityOutcome::NotInFlight => Err(AwsError::new(
                    400,
                    "MessageNotInflight",
                    "The message referred to isn't in flight.",
                )),
                VisibilityOutcome::Gone => Err(invalid_value(
                    "ReceiptHandle",
                    handle,
                    "Message does not exist or is not available for visibility timeout change.",
                )),
            }
        }
        _ => unreachable!("checked against OPERATIONS"),
    }
}

fn visibility(seconds: i64) -> Result<Duration, AwsError> {
    if !(0..=MAX_VISIBILITY_TIMEOUT_S as i64).contains(&seconds) {
        return Err(invalid_value(
            "VisibilityTimeout",
            seconds,
            &format!("Must be >= 0 and <= {MAX_VISIBILITY_TIMEOUT_S}, if provided."),
        ));
    }
    Ok(Duration::from_secs(seconds as u64))
}

/// The queue of that name: the caller's organization's first, else another organization's
/// (`QueueOwnerAWSAccountId` picks among them).
fn get_queue_url(sim: &Simulator, caller_org: &Org, input: &Map<String, Value>) -> Result<Value, AwsError> {
    let name = required_str(input, "QueueName")?;
    let owner = match input.get("QueueOwnerAWSAccountId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return Err(AwsError::new(
                400,
                "SerializationException",
                format!("QueueOwnerAWSAccountId: expected a string, got {other}"),
            ));
        }
    };
    let orgs = std::iter::once(caller_org).chain(sim.orgs.iter());
    for org in orgs {
        let Some(queue) = &org.queue else { continue };
        let q = queue.lock().expect("queue state poisoned");
        if name == q.name && owner.is_none_or(|o| o == q.owner) {
            return Ok(json!({ "QueueUrl": sim.queue_url_of(&q) }));
        }
    }
    Err(no_such_queue())
}

async fn receive_message(sim: &Simulator, input: &Map<String, Value>) -> Result<Value, AwsError> {
    let org = queue_of(sim, input)?;
    let max = optional_int(input, "MaxNumberOfMessages")?.unwrap_or(1);
    if !(1..=MAX_BATCH as i64).contains(&max) {
        return Err(invalid_value(
            "MaxNumberOfMessages",
            max,
            "Must be between 1 and 10, if provided.",
        ));
    }
    let wait = optional_int(input, "WaitTimeSeconds")?.unwrap_or(0);
    if !(0..=MAX_WAIT_SECONDS).contains(&wait) {
        return Err(invalid_value(
            "WaitTimeSeconds",
            wait,
            &format!("Must be >= 0 and <= {MAX_WAIT_SECONDS}, if provided."),
        ));
    }
    let visibility_override = optional_int(input, "VisibilityTimeout")?.map(visibility).transpose()?;
    let mut names = string_list(input, "MessageSystemAttributeNames")?;
    names.extend(string_list(input, "AttributeNames")?);
    if let Some(bad) = names.iter().find(|n| !SYSTEM_ATTRIBUTES.contains(&n.as_str())) {
        return Err(AwsError::new(
            400,
            "InvalidAttributeName",
            format!("Unknown Attribute {bad}."),
        ));
    }
    // MessageAttributeNames: the simulated messages carry no message attributes.
    string_list(input, "MessageAttributeNames")?;
    let wanted: Vec<&str> = if names.iter().any(|n| n == "All") {
        STANDARD_ATTRIBUTES.to_vec()
    } else {
        STANDARD_ATTRIBUTES
            .into_iter()
            .filter(|a| names.iter().any(|n| n == a))
            .collect()
    };
    let queue = org.queue.as_ref().expect("checked by queue_of");
    let deadline = Instant::now() + Duration::from_secs(wait as u64);
    let received = loop {
        // Register for a wake-up before looking, so that a message sent meanwhile is not missed.
        let notified = org.queue_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = Instant::now();
        let (received, next_change) = {
            let mut q = queue.lock().expect("queue state poisoned");
            let visibility = visibility_override.unwrap_or(q.visibility_timeout);
            let received = q.receive(max as usize, visibility, now);
            (received, q.next_change(now))
        };
        if !received.is_empty() || now >= deadline || sim.is_stopping() {
            break received;
        }
        let wake = next_change.map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    };
    if received.is_empty() {
        return Ok(json!({}));
    }
    let messages: Vec<Value> = received.iter().map(|m| message_json(m, &wanted)).collect();
    Ok(json!({ "Messages": messages }))
}

fn millis(t: std::time::SystemTime) -> String {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

fn message_json(m: &Received, wanted: &[&str]) -> Value {
    let mut v = json!({
        "MessageId": m.message_id,
        "ReceiptHandle": m.receipt_handle,
        "MD5OfBody": m.md5_of_body,
        "Body": m.body,
    });
    if !wanted.is_empty() {
        let mut attributes = Map::new();
        for name in wanted {
            let value = match *name {
                "SenderId" => super::queue::EVENTS_SENDER_ID.to_string(),
                "SentTimestamp" => millis(m.sent),
                "ApproximateReceiveCount" => m.receive_count.to_string(),
                _ => millis(m.first_receive),
            };
            attributes.insert(name.to_string(), value.into());
        }
        v["Attributes"] = Value::Object(attributes);
    }
    v
}

fn is_batch_id(id: &str) -> bool {
    (1..=80).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn delete_message_batch(sim: &Simulator, input: &Map<String, Value>) -> Result<Value, AwsError> {
    let org = queue_of(sim, input)?;
    let entries = match input.get("Entries") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(AwsError::new(
                400,
                "SerializationException",
                format!("Entries: expected a list, got {other}"),
            ));
        }
    };
    if entries.is_empty() {
        return Err(AwsError::new(
            400,
            "EmptyBatchRequest",
            "There should be at least one DeleteMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(AwsError::new(
            400,
            "TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are {MAX_BATCH}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut parsed = Vec::with_capacity(entries.len());
    for entry in &entries {
        let Value::Object(entry) = entry else {
            return Err(AwsError::new(
                400,
                "SerializationException",
                format!("Entries: expected objects, got {entry}"),
            ));
        };
        let id = required_str(entry, "Id")?;
        let handle = required_str(entry, "ReceiptHandle")?;
        if !is_batch_id(id) {
            return Err(AwsError::new(
                400,
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if parsed.iter().any(|(seen, _)| *seen == id) {
            return Err(AwsError::new(
                400,
                "BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            ));
        }
        parsed.push((id, handle));
    }
    let mut q = queue_lock(org);
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (id, handle) in parsed {
        match q.delete(handle) {
            DeleteOutcome::Invalid => failed.push(json!({
                "Id": id,
                "SenderFault": true,
                "Code": "ReceiptHandleIsInvalid",
                "Message": format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
            })),
            DeleteOutcome::Deleted | DeleteOutcome::Stale => successful.push(json!({ "Id": id })),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}
