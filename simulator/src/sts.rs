//! Simulated AWS STS (Query protocol): AssumeRoot and GetCallerIdentity.

use std::time::Duration;

use axum::response::Response;

use super::scenario::is_account_id;
use super::wire::{AwsError, iso8601, query_ok, xml_escape};
use super::{Params, Principal, Protocol, Simulator};

pub(crate) const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The STS operations served.
pub(crate) const OPERATIONS: [&str; 2] = ["AssumeRoot", "GetCallerIdentity"];

/// The task policies AWS accepts for AssumeRoot.
pub(crate) const ROOT_TASK_POLICIES: [&str; 5] = [
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword",
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy",
    "arn:aws:iam::aws:policy/root-task/SQSUnlockQueuePolicy",
];

pub(crate) async fn handle(
    sim: &Simulator,
    principal: Principal,
    action: &str,
    params: &Params,
    request_id: &str,
) -> Response {
    match run(sim, principal, action, params).await {
        Ok(inner) => query_ok(action, NAMESPACE, &inner, request_id),
        Err(e) => e.query_response(NAMESPACE, request_id),
    }
}

async fn run(sim: &Simulator, principal: Principal, action: &str, params: &Params) -> Result<String, AwsError> {
    match action {
        "GetCallerIdentity" => {
            sim.gate(action, &principal, principal.account_id(), Protocol::Query)
                .await?;
            let world = sim.world.lock().expect("simulator state poisoned");
            let (arn, user_id, account) = match &principal {
                Principal::Management => (
                    format!(
                        "arn:aws:sts::{}:assumed-role/aws-root-exporter/simulated",
                        world.management_account_id
                    ),
                    "AROASIMULATEDROLEID:simulated".to_string(),
                    world.management_account_id.clone(),
                ),
                Principal::Root { account_id, .. } => (
                    format!("arn:aws:iam::{account_id}:root"),
                    account_id.clone(),
                    account_id.clone(),
                ),
            };
            Ok(format!(
                "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
                xml_escape(&arn),
                xml_escape(&user_id),
                account
            ))
        }
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
    if let Principal::Root { account_id: caller, .. } = &principal {
        return Err(AwsError::new(
            403,
            "AccessDenied",
            format!(
                "User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRoot: root credentials cannot call AssumeRoot"
            ),
        ));
    }
    sim.gate("AssumeRoot", &principal, Some(&account_id), Protocol::Query)
        .await?;
    let mut world = sim.world.lock().expect("simulator state poisoned");
    let caller = format!(
        "arn:aws:sts::{}:assumed-role/aws-root-exporter/simulated",
        world.management_account_id
    );
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
    let (akid, session) = world.issue_session(&account_id, policy, Duration::from_secs(duration));
    Ok(format!(
        "    <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>\n",
        xml_escape(&session.secret),
        xml_escape(&session.token),
        iso8601(session.expires)
    ))
}
