//! Simulated AWS IAM (Query protocol): the calls of the `IAMAuditRootUserCredentials` task
//! policy, answered from the root session's account, and `ListOrganizationsFeatures`.

use std::time::{Duration, SystemTime};

use axum::response::Response;

use super::scenario::{AccessKeySpec, AssumeRootMode, PasswordSpec};
use super::state::{SimAccount, World};
use super::sts::ROOT_TASK_POLICIES;
use super::wire::{AwsError, iso8601, query_ok, xml_escape};
use super::{Params, Principal, Protocol, Simulator};

pub(crate) const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Actions `IAMAuditRootUserCredentials` allows.
pub(crate) const AUDIT_ACTIONS: [&str; 7] = [
    "GetAccountSummary",
    "GetUser",
    "GetLoginProfile",
    "ListAccessKeys",
    "GetAccessKeyLastUsed",
    "ListMFADevices",
    "ListSigningCertificates",
];

/// The IAM operations served: the audit task policy's, and the management account's
/// `ListOrganizationsFeatures`.
pub(crate) const OPERATIONS: [&str; 8] = [
    "GetAccountSummary",
    "GetUser",
    "GetLoginProfile",
    "ListAccessKeys",
    "GetAccessKeyLastUsed",
    "ListMFADevices",
    "ListSigningCertificates",
    "ListOrganizationsFeatures",
];

/// Other IAM actions the simulator recognises, to deny them as AWS would.
const OTHER_ACTIONS: [&str; 5] = [
    "ListOrganizationsFeatures",
    "ListUsers",
    "ListRoles",
    "CreateUser",
    "DeleteAccessKey",
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

fn not_authorized(who: &str, action: &str, resource: &str, why: &str) -> AwsError {
    AwsError::new(
        403,
        "AccessDenied",
        format!("User: {who} is not authorized to perform: iam:{action} on resource: {resource} {why}"),
    )
}

async fn run(sim: &Simulator, principal: Principal, action: &str, params: &Params) -> Result<String, AwsError> {
    if !AUDIT_ACTIONS.contains(&action) && !OTHER_ACTIONS.contains(&action) {
        return Err(AwsError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version 2010-05-08"),
        ));
    }
    // Which account the call describes, and the checks a root session is subject to.
    let account_id = match &principal {
        Principal::Management => {
            sim.gate(action, &principal, None, Protocol::Query).await?;
            let world = sim.world.lock().expect("simulator state poisoned");
            return management_call(&world, action);
        }
        Principal::Root {
            account_id,
            task_policy,
            ..
        } => {
            let who = format!("arn:aws:iam::{account_id}:root");
            let audit = task_policy == ROOT_TASK_POLICIES[0];
            if !audit || !AUDIT_ACTIONS.contains(&action) {
                return Err(not_authorized(
                    &who,
                    action,
                    &format!("arn:aws:iam::{account_id}:root"),
                    "because no session policy allows the action",
                ));
            }
            // The task policy allows these only on the root user itself.
            if let Some(user) = params.get("UserName") {
                return Err(not_authorized(
                    &who,
                    action,
                    &format!("user {user}"),
                    "because no session policy allows the action",
                ));
            }
            account_id.clone()
        }
    };
    sim.gate(action, &principal, Some(&account_id), Protocol::Query).await?;
    let world = sim.world.lock().expect("simulator state poisoned");
    let account = world.account(&account_id).ok_or_else(|| {
        AwsError::new(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    })?;
    if account.assume_root == AssumeRootMode::AccessDenied {
        return Err(not_authorized(
            &format!("arn:aws:iam::{account_id}:root"),
            action,
            &format!("arn:aws:iam::{account_id}:root"),
            "with an explicit deny in a service control policy",
        ));
    }
    root_call(account, action, params)
}

fn management_call(world: &World, action: &str) -> Result<String, AwsError> {
    match action {
        "ListOrganizationsFeatures" => {
            let features: String = world
                .features
                .iter()
                .map(|f| format!("      <member>{f}</member>\n"))
                .collect();
            Ok(format!(
                "    <OrganizationId>{}</OrganizationId>\n    <EnabledFeatures>\n{features}    </EnabledFeatures>\n",
                world.organization_id
            ))
        }
        // The exporter's own role reads its own account like any IAM principal would.
        "GetAccountSummary" => {
            let account = world
                .account(&world.management_account_id)
                .expect("management account exists");
            Ok(summary(account))
        }
        _ => Err(not_authorized(
            &format!(
                "arn:aws:sts::{}:assumed-role/aws-root-exporter/simulated",
                world.management_account_id
            ),
            action,
            "*",
            "because no identity-based policy allows the action",
        )),
    }
}

fn root_call(account: &SimAccount, action: &str, params: &Params) -> Result<String, AwsError> {
    let id = &account.id;
    let root = &account.root;
    match action {
        "GetAccountSummary" => Ok(summary(account)),
        "GetUser" => {
            let last_used = match &root.password {
                PasswordSpec::Dates { last_used: Some(t), .. } => {
                    format!("      <PasswordLastUsed>{}</PasswordLastUsed>\n", iso8601(*t))
                }
                _ => String::new(),
            };
            Ok(format!(
                "    <User>\n      <Path>/</Path>\n      <UserName>{}</UserName>\n      <UserId>{id}</UserId>\n      <Arn>arn:aws:iam::{id}:root</Arn>\n      <CreateDate>{}</CreateDate>\n{last_used}    </User>\n",
                xml_escape(&account.name),
                iso8601(account.joined)
            ))
        }
        "GetLoginProfile" => match &root.password {
            PasswordSpec::Flag(false) => Err(AwsError::new(
                404,
                "NoSuchEntity",
                "Login Profile for User root cannot be found.",
            )),
            p => {
                let created = match p {
                    PasswordSpec::Dates { created: Some(t), .. } => *t,
                    _ => account.joined,
                };
                Ok(format!(
                    "    <LoginProfile>\n      <UserName>{}</UserName>\n      <CreateDate>{}</CreateDate>\n      <PasswordResetRequired>false</PasswordResetRequired>\n    </LoginProfile>\n",
                    xml_escape(&account.name),
                    iso8601(created)
                ))
            }
        },
        "ListAccessKeys" => {
            let members: String = root
                .access_keys
                .iter()
                .map(|k| {
                    let created = match &k.spec {
                        AccessKeySpec::Detailed { created: Some(t), .. } => *t,
                        _ => account.joined,
                    };
                    format!(
                        "      <member>\n        <UserName>{}</UserName>\n        <AccessKeyId>{}</AccessKeyId>\n        <Status>{}</Status>\n        <CreateDate>{}</CreateDate>\n      </member>\n",
                        xml_escape(&account.name),
                        k.id,
                        k.spec.status().as_str(),
                        iso8601(created)
                    )
                })
                .collect();
            Ok(format!(
                "    <AccessKeyMetadata>\n{members}    </AccessKeyMetadata>\n    <IsTruncated>false</IsTruncated>\n"
            ))
        }
        "GetAccessKeyLastUsed" => {
            let key_id = params.get("AccessKeyId").ok_or_else(|| {
                AwsError::new(
                    400,
                    "MissingParameter",
                    "The request must contain the parameter AccessKeyId",
                )
            })?;
            let Some(key) = root.access_keys.iter().find(|k| k.id == key_id) else {
                return Err(not_authorized(
                    &format!("arn:aws:iam::{id}:root"),
                    "GetAccessKeyLastUsed",
                    &format!("access key {key_id}"),
                    "because the access key does not belong to this account",
                ));
            };
            let used = match &key.spec {
                AccessKeySpec::Detailed {
                    last_used: Some(t),
                    last_used_service,
                    last_used_region,
                    ..
                } => format!(
                    "      <LastUsedDate>{}</LastUsedDate>\n      <ServiceName>{}</ServiceName>\n      <Region>{}</Region>\n",
                    iso8601(*t),
                    xml_escape(last_used_service.as_deref().unwrap_or("iam")),
                    xml_escape(last_used_region.as_deref().unwrap_or("us-east-1"))
                ),
                // AWS answers N/A for a key never used, without LastUsedDate.
                _ => "      <ServiceName>N/A</ServiceName>\n      <Region>N/A</Region>\n".to_string(),
            };
            Ok(format!(
                "    <UserName>{}</UserName>\n    <AccessKeyLastUsed>\n{used}    </AccessKeyLastUsed>\n",
                xml_escape(&account.name)
            ))
        }
        "ListMFADevices" => {
            let enabled = account.joined + Duration::from_secs(86_400);
            let members: String = root
                .mfa_serials(id)
                .iter()
                .map(|serial| {
                    format!(
                        "      <member>\n        <UserName>{}</UserName>\n        <SerialNumber>{}</SerialNumber>\n        <EnableDate>{}</EnableDate>\n      </member>\n",
                        xml_escape(&account.name),
                        xml_escape(serial),
                        iso8601(enabled)
                    )
                })
                .collect();
            Ok(format!(
                "    <MFADevices>\n{members}    </MFADevices>\n    <IsTruncated>false</IsTruncated>\n"
            ))
        }
        "ListSigningCertificates" => {
            let members: String = root
                .signing_certificates
                .iter()
                .map(|c| {
                    format!(
                        "      <member>\n        <UserName>{}</UserName>\n        <CertificateId>{}</CertificateId>\n        <CertificateBody>-----BEGIN CERTIFICATE-----\nU0lNVUxBVEVE\n-----END CERTIFICATE-----</CertificateBody>\n        <Status>{}</Status>\n        <UploadDate>{}</UploadDate>\n      </member>\n",
                        xml_escape(&account.name),
                        c.id,
                        c.spec.status().as_str(),
                        iso8601(account.joined)
                    )
                })
                .collect();
            Ok(format!(
                "    <Certificates>\n{members}    </Certificates>\n    <IsTruncated>false</IsTruncated>\n"
            ))
        }
        _ => unreachable!("checked against AUDIT_ACTIONS"),
    }
}

/// `GetAccountSummary`: the four root flags among the account's quotas and counts, as AWS
/// returns them.
fn summary(account: &SimAccount) -> String {
    let root = &account.root;
    let flag = |b: bool| if b { 1 } else { 0 };
    let entries: [(&str, u64); 24] = [
        ("GroupPolicySizeQuota", 5120),
        ("InstanceProfilesQuota", 1000),
        ("Policies", 3),
        ("GroupsPerUserQuota", 10),
        ("InstanceProfiles", 0),
        ("AttachedPoliciesPerUserQuota", 10),
        ("Users", 2),
        ("PoliciesQuota", 1500),
        ("Providers", 0),
        ("AccountMFAEnabled", flag(!root.mfa.is_empty())),
        ("AccessKeysPerUserQuota", 2),
        ("AssumeRolePolicySizeQuota", 2048),
        ("PolicyVersionsInUseQuota", 10000),
        ("GlobalEndpointTokenVersion", 1),
        ("VersionsPerPolicyQuota", 5),
        ("AttachedPoliciesPerGroupQuota", 10),
        ("PolicySizeQuota", 6144),
        ("Groups", 0),
        (
            "AccountSigningCertificatesPresent",
            flag(!root.signing_certificates.is_empty()),
        ),
        ("UsersQuota", 5000),
        ("ServerCertificatesQuota", 20),
        ("MFADevices", root.mfa.len() as u64),
        ("AccountAccessKeysPresent", flag(!root.access_keys.is_empty())),
        ("AccountPasswordPresent", flag(root.password.present())),
    ];
    let body: String = entries
        .iter()
        .map(|(k, v)| format!("      <entry>\n        <key>{k}</key>\n        <value>{v}</value>\n      </entry>\n"))
        .collect();
    format!("    <SummaryMap>\n{body}    </SummaryMap>\n")
}

/// Whether temporary credentials are past their expiry.
pub(crate) fn expired(expires: SystemTime) -> bool {
    SystemTime::now() >= expires
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_operations_are_the_audit_actions_and_list_organizations_features() {
        let mut want: Vec<&str> = AUDIT_ACTIONS.to_vec();
        want.push("ListOrganizationsFeatures");
        assert_eq!(OPERATIONS.to_vec(), want);
        assert!(
            OPERATIONS
                .iter()
                .all(|op| AUDIT_ACTIONS.contains(op) || OTHER_ACTIONS.contains(op))
        );
    }

    #[test]
    fn expiry_is_inclusive() {
        let now = SystemTime::now();
        assert!(expired(now));
        assert!(!expired(now + Duration::from_secs(60)));
    }
}
