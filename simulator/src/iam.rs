//! Simulated AWS IAM (Query protocol): the calls of the `IAMAuditRootUserCredentials` task
//! policy, answered from the root session's account; `ListOrganizationsFeatures`; and what a
//! role session or the caller's own credentials read about their account's root user
//! (`GetAccountSummary`, the credential report, `ListVirtualMFADevices`).

use std::time::{Duration, SystemTime};

use super::operations::{AUDIT_ACTIONS_COUNT, IAM as OPERATIONS};
use super::scenario::{AccessKeySpec, AssumeRootMode, MfaKind, PasswordSpec};
use super::state::{REPORT_MAX_AGE, ReportState, SimAccount, UNASSIGNED_MFA_NAME, World, iam_users};
use super::sts::ROOT_TASK_POLICIES;
use super::wire::{AwsError, iso8601, xml_escape};
use super::{Params, Principal, Protocol, Simulator};

pub(crate) const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Actions `IAMAuditRootUserCredentials` allows: GetAccountSummary, GetUser, GetLoginProfile,
/// ListAccessKeys, GetAccessKeyLastUsed, ListMFADevices, ListSigningCertificates (the start of
/// the operations served).
pub(crate) const AUDIT_ACTIONS: &[&str] = OPERATIONS.split_at(AUDIT_ACTIONS_COUNT).0;

/// What a role session, or the caller's own credentials, may read about their account.
pub(crate) const ACCOUNT_ACTIONS: [&str; 4] = [
    "GetAccountSummary",
    "GenerateCredentialReport",
    "GetCredentialReport",
    "ListVirtualMFADevices",
];

/// Other IAM actions the simulator recognises, to deny them as AWS would.
const OTHER_ACTIONS: [&str; 4] = ["ListUsers", "ListRoles", "CreateUser", "DeleteAccessKey"];

fn not_authorized(who: &str, action: &str, resource: &str, why: &str) -> AwsError {
    AwsError::new(
        403,
        "AccessDenied",
        format!("User: {who} is not authorized to perform: iam:{action} on resource: {resource} {why}"),
    )
}

/// One IAM call: the inner XML of its result, or the error IAM answers (the dispatcher in
/// `lib.rs` wraps either in the Query protocol's response).
pub(crate) async fn run(
    sim: &Simulator,
    principal: Principal,
    action: &str,
    params: &Params,
) -> Result<String, AwsError> {
    if !OPERATIONS.contains(&action) && !OTHER_ACTIONS.contains(&action) {
        return Err(AwsError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version 2010-05-08"),
        ));
    }
    let account_action = ACCOUNT_ACTIONS.contains(&action);
    match &principal {
        // The exporter's own role: ListOrganizationsFeatures (it runs in the management account
        // or the delegated administrator), and its own account's root user, like any IAM
        // principal with those permissions.
        Principal::Caller { account_id } => {
            let about = account_action.then_some(account_id.as_str());
            let org = sim.org_for(&principal);
            org.gate(action, &principal, about, Protocol::Query).await?;
            let mut world = org.world();
            match action {
                "ListOrganizationsFeatures" => Ok(organizations_features(&world)),
                _ if account_action => account_call(&mut world, account_id, action, params),
                _ => Err(not_authorized(
                    &principal.arn(),
                    action,
                    "*",
                    "because no identity-based policy allows the action",
                )),
            }
        }
        // Another organization's access role reads its organization's features too.
        Principal::Role {
            organization_access: true,
            ..
        } if action == "ListOrganizationsFeatures" => {
            let org = sim.org_for(&principal);
            org.gate(action, &principal, None, Protocol::Query).await?;
            Ok(organizations_features(&org.world()))
        }
        Principal::Role { account_id, .. } => {
            if !account_action {
                return Err(not_authorized(
                    &principal.arn(),
                    action,
                    &format!("arn:aws:iam::{account_id}:*"),
                    &format!("because no identity-based policy allows the iam:{action} action"),
                ));
            }
            let org = sim.org_for(&principal);
            org.gate(action, &principal, Some(account_id), Protocol::Query).await?;
            let mut world = org.world();
            account_call(&mut world, account_id, action, params)
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
            let org = sim.org_for(&principal);
            org.gate(action, &principal, Some(account_id), Protocol::Query).await?;
            let world = org.world();
            let account = world.account(account_id).ok_or_else(|| {
                AwsError::new(
                    403,
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                )
            })?;
            if account.assume_root == AssumeRootMode::AccessDenied {
                return Err(not_authorized(
                    &who,
                    action,
                    &who,
                    "with an explicit deny in a service control policy",
                ));
            }
            root_call(account, action, params)
        }
    }
}

fn organizations_features(world: &World) -> String {
    let features: String = world
        .features
        .iter()
        .map(|f| format!("      <member>{f}</member>\n"))
        .collect();
    format!(
        "    <OrganizationId>{}</OrganizationId>\n    <EnabledFeatures>\n{features}    </EnabledFeatures>\n",
        world.organization_id
    )
}

/// What a role session or the caller's own credentials read about the account they act in.
fn account_call(world: &mut World, account_id: &str, action: &str, params: &Params) -> Result<String, AwsError> {
    let now = SystemTime::now();
    let gone = || {
        AwsError::new(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    };
    match action {
        "GetAccountSummary" => Ok(summary(world.account(account_id).ok_or_else(gone)?)),
        "GenerateCredentialReport" => {
            let state = world.generate_credential_report(account_id, now).ok_or_else(gone)?;
            let description = match state {
                ReportState::Started => {
                    "    <Description>No report exists. Starting a new report generation task</Description>\n"
                }
                _ => "",
            };
            Ok(format!("    <State>{}</State>\n{description}", state.as_str()))
        }
        "GetCredentialReport" => {
            let account = world.account(account_id).ok_or_else(gone)?;
            match &account.report {
                None => Err(AwsError::new(
                    410,
                    "ReportNotPresent",
                    "The credential report does not exist. To generate a credential report, use GenerateCredentialReport.",
                )),
                Some(r) if now < r.ready => Err(AwsError::new(
                    404,
                    "ReportInProgress",
                    "The credential report is still being generated.",
                )),
                Some(r) if now.duration_since(r.generated).unwrap_or_default() >= REPORT_MAX_AGE => Err(AwsError::new(
                    410,
                    "ReportExpired",
                    "The most recent credential report has expired. To generate a new credential report, use GenerateCredentialReport.",
                )),
                Some(r) => Ok(format!(
                    "    <Content>{}</Content>\n    <ReportFormat>text/csv</ReportFormat>\n    <GeneratedTime>{}</GeneratedTime>\n",
                    base64(r.csv.as_bytes()),
                    iso8601(r.generated)
                )),
            }
        }
        "ListVirtualMFADevices" => list_virtual_mfa_devices(world.account(account_id).ok_or_else(gone)?, params),
        _ => unreachable!("checked against ACCOUNT_ACTIONS"),
    }
}

/// One virtual MFA device as ListVirtualMFADevices lists it: serial number, its `User`
/// element (none when unassigned), enable date.
struct VirtualMfa {
    serial: String,
    user: Option<String>,
    enabled: Option<SystemTime>,
}

/// ListVirtualMFADevices: the root user's virtual devices (its `User` has only the account id,
/// the root's ARN and a creation date, as AWS lists root), `ops-admin`'s, and one unassigned
/// device; sorted by serial number, paged by Marker and MaxItems.
fn list_virtual_mfa_devices(account: &SimAccount, params: &Params) -> Result<String, AwsError> {
    let id = &account.id;
    let status = params.get("AssignmentStatus").unwrap_or("Any");
    if !["Assigned", "Unassigned", "Any"].contains(&status) {
        return Err(AwsError::new(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value '{status}' at 'assignmentStatus' failed to satisfy constraint: Member must satisfy enum value set: [Assigned, Unassigned, Any]"
            ),
        ));
    }
    let mut devices: Vec<VirtualMfa> = Vec::new();
    let root_enabled = account.joined + Duration::from_secs(86_400);
    for (kind, serial) in account.root.mfa.iter().zip(account.root.mfa_serials(id)) {
        if *kind == MfaKind::Virtual {
            devices.push(VirtualMfa {
                serial,
                user: Some(format!(
                    "        <User>\n          <UserId>{id}</UserId>\n          <Arn>arn:aws:iam::{id}:root</Arn>\n          <CreateDate>{}</CreateDate>\n        </User>\n",
                    iso8601(account.joined)
                )),
                enabled: Some(root_enabled),
            });
        }
    }
    for u in iam_users() {
        if let Some(enabled) = u.virtual_mfa {
            devices.push(VirtualMfa {
                serial: format!("arn:aws:iam::{id}:mfa/{}", u.name),
                user: Some(format!(
                    "        <User>\n          <Path>/</Path>\n          <UserName>{0}</UserName>\n          <UserId>AIDA{1}</UserId>\n          <Arn>arn:aws:iam::{id}:user/{0}</Arn>\n          <CreateDate>{2}</CreateDate>\n        </User>\n",
                    u.name,
                    user_id(id, u.name),
                    iso8601(u.created)
                )),
                enabled: Some(enabled),
            });
        }
    }
    devices.push(VirtualMfa {
        serial: format!("arn:aws:iam::{id}:mfa/{UNASSIGNED_MFA_NAME}"),
        user: None,
        enabled: None,
    });
    devices.retain(|d| match status {
        "Assigned" => d.user.is_some(),
        "Unassigned" => d.user.is_none(),
        _ => true,
    });
    devices.sort_by(|a, b| a.serial.cmp(&b.serial));
    let (start, end) = iam_page(params, devices.len())?;
    let members: String = devices[start..end]
        .iter()
        .map(|d| {
            let enabled = d
                .enabled
                .map(|t| format!("        <EnableDate>{}</EnableDate>\n", iso8601(t)))
                .unwrap_or_default();
            format!(
                "      <member>\n        <SerialNumber>{}</SerialNumber>\n{}{enabled}      </member>\n",
                xml_escape(&d.serial),
                d.user.as_deref().unwrap_or("")
            )
        })
        .collect();
    let more = if end < devices.len() {
        format!(
            "    <IsTruncated>true</IsTruncated>\n    <Marker>{}</Marker>\n",
            encode_marker(end)
        )
    } else {
        "    <IsTruncated>false</IsTruncated>\n".to_string()
    };
    Ok(format!(
        "    <VirtualMFADevices>\n{members}    </VirtualMFADevices>\n{more}"
    ))
}

/// A stable IAM user id (`AIDA` then 17 characters) for a user of an account.
fn user_id(account_id: &str, name: &str) -> String {
    let mut rng = super::rng::Rng::new(super::rng::fnv1a(&format!("{account_id}/user/{name}")));
    rng.token(super::rng::UPPER_DIGITS, 17)
}

/// IAM's Marker and MaxItems (1 to 1000, default 100): the slice of `len` items to answer.
fn iam_page(params: &Params, len: usize) -> Result<(usize, usize), AwsError> {
    let max = match params.get("MaxItems") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(AwsError::new(
                    400,
                    "ValidationError",
                    format!(
                        "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
                    ),
                ));
            }
        },
    };
    let start = match params.get("Marker") {
        None => 0,
        Some(m) => decode_marker(m, len).ok_or_else(|| {
            AwsError::new(
                400,
                "ValidationError",
                format!("Invalid Marker: {m:?} was not returned by a previous call"),
            )
        })?,
    };
    Ok((start, (start + max).min(len)))
}

fn encode_marker(offset: usize) -> String {
    format!(
        "simmfa{offset:x}.{:x}",
        (offset as u64).wrapping_mul(2_654_435_761) % 9973
    )
}

fn decode_marker(marker: &str, len: usize) -> Option<usize> {
    let (offset, check) = marker.strip_prefix("simmfa")?.split_once('.')?;
    let offset = usize::from_str_radix(offset, 16).ok()?;
    let check = u64::from_str_radix(check, 16).ok()?;
    (check == (offset as u64).wrapping_mul(2_654_435_761) % 9973 && offset > 0 && offset < len).then_some(offset)
}

/// Standard base64 with padding, as the Query protocol carries a blob.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
/// returns them. `Users` counts the two IAM users every account has.
fn summary(account: &SimAccount) -> String {
    let root = &account.root;
    let flag = |b: bool| if b { 1 } else { 0 };
    // The IAM users every account has (`state::iam_users`): ops-admin's virtual device and the
    // unassigned spare count among the MFA devices, as AWS counts them.
    let entries: [(&str, u64); 25] = [
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
        ("MFADevices", root.mfa.len() as u64 + 2),
        ("MFADevicesInUse", root.mfa.len() as u64 + 1),
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
    fn served_operations_are_the_audit_actions_list_organizations_features_and_the_account_reads() {
        let mut want: Vec<&str> = AUDIT_ACTIONS.to_vec();
        want.push("ListOrganizationsFeatures");
        want.extend(ACCOUNT_ACTIONS.iter().filter(|a| !AUDIT_ACTIONS.contains(a)));
        assert_eq!(OPERATIONS.to_vec(), want);
        assert!(OTHER_ACTIONS.iter().all(|op| !OPERATIONS.contains(op)));
    }

    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("<root_account>", "PHJvb3RfYWNjb3VudD4="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn markers_round_trip_and_reject_forgeries() {
        assert_eq!(decode_marker(&encode_marker(3), 5), Some(3));
        assert_eq!(decode_marker(&encode_marker(5), 5), None);
        assert_eq!(decode_marker("simmfa3.0", 5), None);
        assert_eq!(decode_marker("x", 5), None);
    }

    #[test]
    fn expiry_is_inclusive() {
        let now = SystemTime::now();
        assert!(expired(now));
        assert!(!expired(now + Duration::from_secs(60)));
    }
}
