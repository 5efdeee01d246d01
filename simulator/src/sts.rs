//! Simulated AWS STS (Query protocol): AssumeRoot, AssumeRole and GetCallerIdentity.

use std::time::Duration;

use super::scenario::{is_account_id, is_iam_name};
use super::state::{IssuedRootSession, SessionKind, World};
use super::wire::{AwsError, iso8601, xml_escape};
use super::{Params, Principal, Protocol, Simulator};

pub(crate) const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The task policies AWS accepts for AssumeRoot.
pub(crate) const ROOT_TASK_POLICIES: [&str; 5] = [
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword",
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy",
    "arn:aws:iam::aws:policy/root-task/SQSUnlockQueuePolicy",
];

/// One call, answered with the service's result document or its error.
pub(crate) async fn run(
    sim: &Simulator,
    principal: Principal,
    action: &str,
    params: &Params,
) -> Result<String, AwsError> {
    match action {
        "GetCallerIdentity" => {
            sim.org_for(&principal)
                .gate(action, &principal, principal.account_id(), Protocol::Query)
                .await?;
            let user_id = match &principal {
                Principal::Caller { .. } => format!("AROASIMULATEDROLEID:{}", crate::CALLER_SESSION),
                Principal::Root { account_id, .. } => account_id.clone(),
                Principal::Role {
                    role_id, session_name, ..
                } => format!("{role_id}:{session_name}"),
            };
            Ok(format!(
                "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
                xml_escape(&principal.arn()),
                xml_escape(&user_id),
                principal.acting_account()
            ))
        }
        "AssumeRole" => assume_role(sim, principal, params).await,
        "AssumeRoot" => assume_root(sim, principal, params).await,
        _ => Err(AwsError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version 2011-06-15"),
        )),
    }
}

async fn assume_root(sim: &Simulator, principal: Principal, params: &Params) -> Result<String, AwsError> {
    let target = params.get("TargetPrincipal").ok_or_else(|| {
        AwsError::new(
            400,
            "MissingParameter",
            "The request must contain the parameter TargetPrincipal",
        )
    })?;
    let policy = params.get("TaskPolicyArn.arn").ok_or_else(|| {
        AwsError::new(
            400,
            "MissingParameter",
            "The request must contain the parameter TaskPolicyArn",
        )
    })?;
    let duration = match params.get("DurationSeconds") {
        None => 900,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= 900 => n,
            _ => {
                return Err(AwsError::new(
                    400,
                    "ValidationError",
                    format!(
                        "1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 900"
                    ),
                ));
            }
        },
    };
    if !ROOT_TASK_POLICIES.contains(&policy) {
        return Err(AwsError::new(
            400,
            "ValidationError",
            format!("TaskPolicyArn {policy} is not a root task policy"),
        ));
    }
    // TargetPrincipal is an account id or the account's root ARN.
    let account_id = target
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
        .unwrap_or(target)
        .to_string();
    if !is_account_id(&account_id) {
        return Err(AwsError::new(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value '{target}' at 'targetPrincipal' failed to satisfy constraint: Member must be an account ID or root principal ARN"
            ),
        ));
    }
    match &principal {
        Principal::Caller { .. }
        | Principal::Role {
            organization_access: true,
            ..
        } => {}
        Principal::Root { account_id: caller, .. } => {
            return Err(AwsError::new(
                403,
                "AccessDenied",
                format!(
                    "User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRoot: root credentials cannot call AssumeRoot"
                ),
            ));
        }
        // Only the exporter's own role (in the management account or the delegated
        // administrator), or another organization's access role there, is allowed sts:AssumeRoot.
        Principal::Role { .. } => {
            return Err(AwsError::new(
                403,
                "AccessDenied",
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRoot on resource: arn:aws:iam::{account_id}:root because no identity-based policy allows the sts:AssumeRoot action",
                    principal.arn()
                ),
            ));
        }
    }
    // Only into the members of the organization the credentials act in.
    let org = sim.org_for(&principal);
    org.gate("AssumeRoot", &principal, Some(&account_id), Protocol::Query)
        .await?;
    let mut world = org.world();
    let caller = principal.arn();
    let denied = |why: &str| {
        AwsError::new(
            403,
            "AccessDenied",
            format!(
                "User: {caller} is not authorized to perform: sts:AssumeRoot on resource: arn:aws:iam::{account_id}:root because {why}"
            ),
        )
    };
    if !world.has_feature("RootCredentialsManagement") {
        return Err(denied(
            "centralized root access (RootCredentialsManagement) is not enabled for the organization",
        ));
    }
    if account_id == world.management_account_id {
        return Err(denied("AssumeRoot cannot target the organization's management account"));
    }
    let Some(account) = world.account(&account_id) else {
        return Err(denied("the target account is not a member of the organization"));
    };
    if account.status != "ACTIVE" {
        return Err(denied("the target account is not active"));
    }
    let (akid, session) = world.issue_session(
        &account_id,
        SessionKind::Root {
            task_policy: policy.to_string(),
        },
        Duration::from_secs(duration),
    );
    // What an event of this session carries (control API `"issued_to": "self"`).
    world.note_root_session(
        &account_id,
        IssuedRootSession {
            access_key_id: akid.clone(),
            issuer_arn: caller.clone(),
            issuer_account_id: principal.acting_account().to_string(),
        },
    );
    Ok(format!(
        "    <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>\n",
        xml_escape(&session.secret),
        xml_escape(&session.token),
        iso8601(session.expires)
    ))
}

/// `1 validation error detected: Value 'V' at 'FIELD' failed to satisfy constraint: WHY`, AWS's
/// wording for a parameter out of its model's bounds.
fn invalid_parameter(value: Option<&str>, field: &str, why: &str) -> AwsError {
    let value = match value {
        Some(v) => format!("'{v}'"),
        None => "null".into(),
    };
    AwsError::new(
        400,
        "ValidationError",
        format!("1 validation error detected: Value {value} at '{field}' failed to satisfy constraint: {why}"),
    )
}

/// AssumeRole's bounds on DurationSeconds (the role's MaxSessionDuration may lower the top).
const ROLE_DURATIONS: std::ops::RangeInclusive<u64> = 900..=43_200;
/// A session assumed with a role session's credentials (role chaining) lasts at most an hour.
const CHAINED_MAX_SECONDS: u64 = 3600;

/// An AssumeRole request whose parameters are within AWS's bounds.
struct RoleRequest<'a> {
    role_arn: &'a str,
    account_id: &'a str,
    role_name: &'a str,
    session_name: &'a str,
    duration: u64,
    external_id: Option<&'a str>,
}

async fn assume_role(sim: &Simulator, principal: Principal, params: &Params) -> Result<String, AwsError> {
    let request = role_request(params)?;
    if let Principal::Root { account_id: caller, .. } = &principal {
        return Err(AwsError::new(
            403,
            "AccessDenied",
            format!(
                "User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRole on resource: {} because no session policy allows the sts:AssumeRole action",
                request.role_arn
            ),
        ));
    }
    // Paced and counted in the caller's organization (AWS limits per caller account); the
    // role is looked up, and the session issued, in the organization of the role's account,
    // which may be another one (cross-organization trust).
    sim.org_for(&principal)
        .gate("AssumeRole", &principal, Some(request.account_id), Protocol::Query)
        .await?;
    let denied = || role_denied(&principal, &request);
    let mut world = sim.org_of_account(request.account_id).ok_or_else(denied)?.world();
    let (role_id, role_name, organization_access) = trusted_role(&world, &principal, &request)?;
    let (akid, session) = world.issue_session(
        request.account_id,
        SessionKind::Role {
            role_name: role_name.clone(),
            role_id: role_id.clone(),
            session_name: request.session_name.to_string(),
            organization_access,
        },
        Duration::from_secs(request.duration),
    );
    let session_name = request.session_name;
    Ok(format!(
        "    <AssumedRoleUser>\n      <AssumedRoleId>{role_id}:{}</AssumedRoleId>\n      <Arn>arn:aws:sts::{}:assumed-role/{}/{}</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>\n",
        xml_escape(session_name),
        request.account_id,
        xml_escape(&role_name),
        xml_escape(session_name),
        xml_escape(&session.secret),
        xml_escape(&session.token),
        iso8601(session.expires)
    ))
}

/// AssumeRole's parameters, checked in AWS's order: RoleArn and RoleSessionName present, the
/// session name, DurationSeconds, ExternalId, then the role ARN's shape.
fn role_request(params: &Params) -> Result<RoleRequest<'_>, AwsError> {
    let role_arn = params
        .get("RoleArn")
        .ok_or_else(|| invalid_parameter(None, "roleArn", "Member must not be null"))?;
    let session_name = params
        .get("RoleSessionName")
        .ok_or_else(|| invalid_parameter(None, "roleSessionName", "Member must not be null"))?;
    check_session_name(session_name)?;
    let duration = role_duration(params.get("DurationSeconds"))?;
    let external_id = params.get("ExternalId");
    if let Some(x) = external_id
        && (!(2..=1224).contains(&x.len()) || !x.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c)))
    {
        return Err(invalid_parameter(
            Some(x),
            "externalId",
            "Member must have length between 2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
        ));
    }
    let Some((account_id, role_name)) = role_arn_parts(role_arn) else {
        return Err(invalid_parameter(
            Some(role_arn),
            "roleArn",
            "Member must be a role ARN, arn:aws:iam::ACCOUNT:role/NAME",
        ));
    };
    Ok(RoleRequest {
        role_arn,
        account_id,
        role_name,
        session_name,
        duration,
        external_id,
    })
}

fn check_session_name(session_name: &str) -> Result<(), AwsError> {
    if !(2..=64).contains(&session_name.len()) {
        return Err(invalid_parameter(
            Some(session_name),
            "roleSessionName",
            "Member must have length between 2 and 64",
        ));
    }
    if !is_iam_name(session_name) {
        return Err(invalid_parameter(
            Some(session_name),
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}

/// DurationSeconds (an hour when absent), within [`ROLE_DURATIONS`].
fn role_duration(value: Option<&str>) -> Result<u64, AwsError> {
    let Some(v) = value else {
        return Ok(3600);
    };
    match v.parse::<u64>() {
        Ok(n) if ROLE_DURATIONS.contains(&n) => Ok(n),
        Ok(n) if n > *ROLE_DURATIONS.end() => Err(invalid_parameter(
            Some(v),
            "durationSeconds",
            "Member must have value less than or equal to 43200",
        )),
        _ => Err(invalid_parameter(
            Some(v),
            "durationSeconds",
            "Member must have value greater than or equal to 900",
        )),
    }
}

/// `arn:aws:iam::ACCOUNT:role/NAME` -> (ACCOUNT, NAME).
fn role_arn_parts(role_arn: &str) -> Option<(&str, &str)> {
    role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(account, resource)| Some((account, resource.strip_prefix("role/")?)))
        .filter(|(account, name)| is_account_id(account) && !name.is_empty())
}

/// AWS's answer to an AssumeRole it refuses: the same for a role or account that does not
/// exist, an untrusted caller and a wrong or missing external id.
fn role_denied(principal: &Principal, request: &RoleRequest) -> AwsError {
    AwsError::new(
        403,
        "AccessDenied",
        format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
            principal.arn(),
            request.role_arn
        ),
    )
}

/// The role the request may assume (its id, name and `organization_access`): it exists in an
/// active account of `world` (the organization of the role's account), trusts the caller's
/// account (of any organization), gets the external id it wants, and allows the session's
/// duration. A missing role, an untrusted caller, a wrong or missing external id: AWS answers
/// all alike.
fn trusted_role(
    world: &World,
    principal: &Principal,
    request: &RoleRequest,
) -> Result<(String, String, bool), AwsError> {
    let denied = || role_denied(principal, request);
    let account = world.account(request.account_id).ok_or_else(denied)?;
    if account.status != "ACTIVE" {
        return Err(denied());
    }
    let role = account
        .roles
        .iter()
        .find(|r| r.name == request.role_name)
        .ok_or_else(denied)?;
    if !role.trusts.iter().any(|t| t == principal.acting_account()) {
        return Err(denied());
    }
    if let Some(want) = &role.external_id
        && request.external_id != Some(want.as_str())
    {
        return Err(denied());
    }
    if matches!(principal, Principal::Role { .. }) && request.duration > CHAINED_MAX_SECONDS {
        return Err(AwsError::new(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if request.duration > role.max_session_duration {
        return Err(AwsError::new(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok((role.id.clone(), role.name.clone(), role.organization_access))
}
