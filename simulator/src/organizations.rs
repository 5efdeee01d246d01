//! Simulated AWS Organizations (JSON 1.1, `X-Amz-Target: AWSOrganizationsV20161128.*`).

use serde_json::{Value, json};

use super::scenario::{is_account_id, legacy_status};
use super::state::{SimAccount, World};
use super::wire::{AwsError, epoch_seconds, json_request};
use super::{Principal, Simulator};

pub(crate) const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";
/// The Organizations operations served.
pub(crate) const OPERATIONS: [&str; 6] = [
    "DescribeOrganization",
    "ListAccounts",
    "ListRoots",
    "ListOrganizationalUnitsForParent",
    "ListAccountsForParent",
    "ListTagsForResource",
];
const MAX_RESULTS: usize = 20;

/// One call, answered with the service's result document or its error.
pub(crate) async fn run(
    sim: &Simulator,
    principal: Principal,
    operation: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input = Value::Object(json_request(body, operation, &OPERATIONS)?);
    // Only the exporter's own role, in the management account or the delegated administrator,
    // and a role with `organization_access` there (another organization's access role) read the
    // organization; root and other role sessions act inside one account.
    if !principal.acts_for_organization() {
        return Err(AwsError::new(
            400,
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: organizations:{operation} because no identity-based policy allows the organizations:{operation} action",
                principal.arn()
            ),
        ));
    }
    // ListTagsForResource on an account is about that account (for faults' account_id).
    let about = match operation {
        "ListTagsForResource" => input
            .get("ResourceId")
            .and_then(Value::as_str)
            .filter(|id| is_account_id(id)),
        _ => None,
    };
    // The organization of the credentials' account answers.
    let org = sim.org_for(&principal);
    org.gate(operation, &principal, about, super::Protocol::Json).await?;
    let world = org.world();
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
        "ListAccounts" => {
            let accounts: Vec<&SimAccount> = world.accounts.iter().collect();
            list_accounts(&world, &input, &accounts)
        }
        "ListRoots" => {
            let (start, end, next) = page(&input, 1)?;
            let roots: Vec<Value> = (start..end)
                .map(|_| {
                    json!({
                        "Id": world.root_id,
                        "Arn": format!("arn:aws:organizations::{}:root/{}/{}", world.management_account_id, world.organization_id, world.root_id),
                        "Name": "Root",
                        "PolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}],
                    })
                })
                .collect();
            Ok(with_token(json!({ "Roots": roots }), next))
        }
        "ListOrganizationalUnitsForParent" => {
            let parent = parent_id(&world, &input)?;
            let ous: Vec<_> = world.ous.iter().filter(|o| o.parent_id == parent).collect();
            let (start, end, next) = page(&input, ous.len())?;
            let listed: Vec<Value> = ous[start..end]
                .iter()
                .map(|o| {
                    json!({
                        "Id": o.id,
                        "Arn": format!("arn:aws:organizations::{}:ou/{}/{}", world.management_account_id, world.organization_id, o.id),
                        "Name": o.name,
                    })
                })
                .collect();
            Ok(with_token(json!({ "OrganizationalUnits": listed }), next))
        }
        "ListAccountsForParent" => {
            let parent = parent_id(&world, &input)?;
            let accounts: Vec<&SimAccount> = world.accounts.iter().filter(|a| a.parent_id == parent).collect();
            list_accounts(&world, &input, &accounts)
        }
        "ListTagsForResource" => list_tags(&world, &input),
        _ => unreachable!("checked against OPERATIONS"),
    }
}

/// An account as ListAccounts and ListAccountsForParent list it.
fn account_json(world: &World, a: &SimAccount) -> Value {
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
}

fn list_accounts(world: &World, input: &Value, accounts: &[&SimAccount]) -> Result<Value, AwsError> {
    let (start, end, next) = page(input, accounts.len())?;
    let listed: Vec<Value> = accounts[start..end].iter().map(|a| account_json(world, a)).collect();
    Ok(with_token(json!({ "Accounts": listed }), next))
}

fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let Some(token) = next {
        out["NextToken"] = json!(token);
    }
    out
}

/// MaxResults (1 to 20) and NextToken: the slice of `len` items to answer and the next token.
/// Pages may come back short, as AWS's do: every third page holds one item fewer, so clients
/// must follow NextToken rather than count.
fn page(input: &Value, len: usize) -> Result<(usize, usize, Option<String>), AwsError> {
    let max = match input.get("MaxResults") {
        None | Some(Value::Null) => MAX_RESULTS,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => n as usize,
            n => {
                let reason = if n.is_some_and(|n| n < 1) {
                    "MIN_VALUE_EXCEEDED"
                } else {
                    "MAX_VALUE_EXCEEDED"
                };
                return Err(invalid_input(
                    reason,
                    format!(
                        "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_RESULTS}"
                    ),
                ));
            }
        },
    };
    let start = match input.get("NextToken") {
        None | Some(Value::Null) => 0,
        Some(Value::String(t)) => decode_token(t, len).ok_or_else(bad_token)?,
        Some(_) => return Err(bad_token()),
    };
    let page_no = start / max;
    let size = if max > 1 && page_no % 3 == 2 { max - 1 } else { max };
    let end = (start + size).min(len);
    Ok((start, end, (end < len).then(|| encode_token(end))))
}

fn bad_token() -> AwsError {
    invalid_input("INVALID_NEXT_TOKEN", "The NextToken value is not valid.")
}

fn is_lower_alnum(s: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `r-` then 4 to 32 lowercase letters or digits.
fn is_root_id(s: &str) -> bool {
    s.strip_prefix("r-").is_some_and(|r| is_lower_alnum(r, 4..=32))
}

/// `ou-`, 4 to 32 lowercase letters or digits, `-`, 8 to 32 more.
fn is_ou_id(s: &str) -> bool {
    s.strip_prefix("ou-")
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(root, own)| is_lower_alnum(root, 4..=32) && is_lower_alnum(own, 8..=32))
}

/// A string member the operation requires: `INPUT_REQUIRED` when absent.
fn required<'a>(input: &'a Value, member: &str, field: &str) -> Result<&'a str, AwsError> {
    match input.get(member) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(invalid_input(
            "INPUT_REQUIRED",
            format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ),
        )),
        Some(other) => Err(AwsError::new(
            400,
            "SerializationException",
            format!("{member} must be a string, not {other}"),
        )),
    }
}

/// ParentId: the root or an OU of the organization.
fn parent_id(world: &World, input: &Value) -> Result<String, AwsError> {
    let id = required(input, "ParentId", "parentId")?;
    if !is_root_id(id) && !is_ou_id(id) {
        return Err(invalid_input(
            "INVALID_PATTERN",
            format!(
                "1 validation error detected: Value '{id}' at 'parentId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(r-[0-9a-z]{{4,32}})|(ou-[0-9a-z]{{4,32}}-[a-z0-9]{{8,32}})$"
            ),
        ));
    }
    if id != world.root_id && !world.ous.iter().any(|o| o.id == id) {
        return Err(AwsError::new(
            400,
            "ParentNotFoundException",
            "We can't find a root or OU with the ParentId that you specified.",
        ));
    }
    Ok(id.to_string())
}

/// ListTagsForResource: an account's tags; a root or an OU has none. All in one page.
fn list_tags(world: &World, input: &Value) -> Result<Value, AwsError> {
    let id = required(input, "ResourceId", "resourceId")?;
    let is_policy_id = id
        .strip_prefix("p-")
        .is_some_and(|p| (8..=128).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if !is_account_id(id) && !is_root_id(id) && !is_ou_id(id) && !is_policy_id {
        return Err(invalid_input(
            "INVALID_PATTERN_TARGET_ID",
            format!(
                "1 validation error detected: Value '{id}' at 'resourceId' failed to satisfy constraint: Member must be an account, root, OU or policy id"
            ),
        ));
    }
    // The listing is never longer than a page: a NextToken can only be a forgery.
    if !matches!(input.get("NextToken"), None | Some(Value::Null)) {
        return Err(bad_token());
    }
    let not_found = || {
        AwsError::new(
            400,
            "TargetNotFoundException",
            "We can't find a root, OU, account, or policy with the TargetId that you specified.",
        )
    };
    let tags: Vec<Value> = if is_account_id(id) {
        let account = world.account(id).ok_or_else(not_found)?;
        account
            .tags
            .iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect()
    } else if id == world.root_id || world.ous.iter().any(|o| o.id == id) {
        Vec::new()
    } else {
        return Err(not_found());
    };
    Ok(json!({ "Tags": tags }))
}

fn invalid_input(reason: &'static str, message: impl Into<String>) -> AwsError {
    let mut e = AwsError::new(400, "InvalidInputException", message);
    e.reason = Some(reason);
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
    fn ids_follow_the_organizations_patterns() {
        assert!(is_root_id("r-ab12"));
        assert!(!is_root_id("r-ab1") && !is_root_id("r-AB12") && !is_root_id("ou-ab12-abcdefgh"));
        assert!(is_ou_id("ou-ab12-abcdefgh"));
        assert!(!is_ou_id("ou-ab12-abcdefg") && !is_ou_id("ou-ab1-abcdefgh") && !is_ou_id("ou-ab12"));
    }

    #[test]
    fn tokens_round_trip_and_reject_forgeries() {
        assert_eq!(decode_token(&encode_token(40), 100), Some(40));
        assert_eq!(decode_token(&encode_token(40), 40), None);
        assert_eq!(decode_token("sim1.28.0", 100), None);
        assert_eq!(decode_token("garbage", 100), None);
    }
}
