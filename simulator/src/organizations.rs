//! Simulated AWS Organizations (JSON 1.1, `X-Amz-Target: AWSOrganizationsV20161128.*`).

use axum::response::Response;
use serde_json::{Value, json};

use super::scenario::legacy_status;
use super::wire::{AwsError, epoch_seconds, json_ok};
use super::{Principal, Simulator};

pub(crate) const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";
/// The Organizations operations served.
pub(crate) const OPERATIONS: [&str; 2] = ["DescribeOrganization", "ListAccounts"];
const MAX_RESULTS: usize = 20;

pub(crate) async fn handle(
    sim: &Simulator,
    principal: Principal,
    operation: &str,
    body: &[u8],
    request_id: &str,
) -> Response {
    match run(sim, principal, operation, body).await {
        Ok(v) => json_ok(v, request_id),
        Err(e) => e.json_response(request_id),
    }
}

async fn run(sim: &Simulator, principal: Principal, operation: &str, body: &[u8]) -> Result<Value, AwsError> {
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AwsError::new(400, "SerializationException", format!("request body is not JSON: {e}")))?
    };
    if !input.is_object() {
        return Err(AwsError::new(
            400,
            "SerializationException",
            "request body must be a JSON object",
        ));
    }
    if !OPERATIONS.contains(&operation) {
        return Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("operation {operation} is not supported by this simulator"),
        ));
    }
    if let Principal::Root { account_id, .. } = &principal {
        return Err(AwsError::new(
            400,
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{account_id}:root is not authorized to perform: organizations:{operation} because no identity-based policy allows the organizations:{operation} action"
            ),
        ));
    }
    sim.gate(operation, &principal, None, super::Protocol::Json).await?;
    let world = sim.world.lock().expect("simulator state poisoned");
    match operation {
        "DescribeOrganization" => {
            let mgmt = world
                .account(&world.management_account_id)
                .expect("management account exists");
            Ok(json!({
                "Organization": {
                    "Id": world.organization_id,
                    "Arn": format!("arn:aws:organizations::{}:organization/{}", world.management_account_id, world.organization_id),
                    "FeatureSet": "ALL",
                    "MasterAccountArn": format!("arn:aws:organizations::{0}:account/{1}/{0}", world.management_account_id, world.organization_id),
                    "MasterAccountId": world.management_account_id,
                    "MasterAccountEmail": mgmt.email,
                    "AvailablePolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}],
                }
            }))
        }
        _ => {
            let max = match input.get("MaxResults") {
                None | Some(Value::Null) => MAX_RESULTS,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_RESULTS as u64).contains(&n) => n as usize,
                    _ => {
                        return Err(invalid_input(
                            "MAX_LIMIT_EXCEEDED_FILTER",
                            format!(
                                "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_RESULTS}"
                            ),
                        ));
                    }
                },
            };
            let start = match input.get("NextToken") {
                None | Some(Value::Null) => 0,
                Some(Value::String(t)) => decode_token(t, world.accounts.len())
                    .ok_or_else(|| invalid_input("INVALID_PAGINATION_TOKEN", "The NextToken value is not valid."))?,
                Some(_) => {
                    return Err(invalid_input(
                        "INVALID_PAGINATION_TOKEN",
                        "The NextToken value is not valid.",
                    ));
                }
            };
            // Pages may come back short, as AWS's do: every third page holds one account fewer,
            // so clients must follow NextToken rather than count.
            let page_no = start / max;
            let size = if max > 1 && page_no % 3 == 2 { max - 1 } else { max };
            let end = (start + size).min(world.accounts.len());
            let accounts: Vec<Value> = world.accounts[start..end]
                .iter()
                .map(|a| {
                    let mut v = json!({
                        "Id": a.id,
                        "Arn": format!("arn:aws:organizations::{}:account/{}/{}", world.management_account_id, world.organization_id, a.id),
                        "Email": a.email,
                        "Name": a.name,
                        "JoinedMethod": if a.id == world.management_account_id { "CREATED" } else { "INVITED" },
                        "JoinedTimestamp": epoch_seconds(a.joined),
                    });
                    if a.state_fields.state() {
                        v["State"] = json!(a.status);
                    }
                    if a.state_fields.status()
                        && let Some(status) = legacy_status(&a.status)
                    {
                        v["Status"] = json!(status);
                    }
                    v
                })
                .collect();
            let mut out = json!({ "Accounts": accounts });
            if end < world.accounts.len() {
                out["NextToken"] = json!(encode_token(end));
            }
            Ok(out)
        }
    }
}

fn invalid_input(reason: &str, message: impl Into<String>) -> AwsError {
    let mut e = AwsError::new(400, "InvalidInputException", message);
    e.message = format!("{} (Reason: {reason})", e.message);
    e
}

fn encode_token(offset: usize) -> String {
    let check = (offset as u64).wrapping_mul(0x9E37_79B9).wrapping_add(17) % 9973;
    format!("sim1.{offset:x}.{check:x}")
}

fn decode_token(token: &str, len: usize) -> Option<usize> {
    let mut parts = token.strip_prefix("sim1.")?.split('.');
    let offset = usize::from_str_radix(parts.next()?, 16).ok()?;
    let check = u64::from_str_radix(parts.next()?, 16).ok()?;
    let expected = (offset as u64).wrapping_mul(0x9E37_79B9).wrapping_add(17) % 9973;
    (parts.next().is_none() && check == expected && offset > 0 && offset < len).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_forgeries() {
        assert_eq!(decode_token(&encode_token(40), 100), Some(40));
        assert_eq!(decode_token(&encode_token(40), 40), None);
        assert_eq!(decode_token("sim1.28.0", 100), None);
        assert_eq!(decode_token("garbage", 100), None);
    }
}
