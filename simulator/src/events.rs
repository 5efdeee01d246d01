//! The events AWS delivers for root activity: a CloudTrail record of the IAM call that changes a
//! root credential, of a console sign-in (successful or failed), or of any other API call root
//! made, in the EventBridge envelope that a rule forwards to SQS, where the message body is the
//! event's JSON.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::rng::{Rng, UPPER_DIGITS, uuid4};
use super::state::RootChange;
use super::wire::iso8601;

impl RootChange {
    /// The CloudTrail `eventName`.
    pub(crate) fn event_name(&self) -> &str {
        match self {
            RootChange::CreateAccessKey { .. } => "CreateAccessKey",
            RootChange::UpdateAccessKey { .. } => "UpdateAccessKey",
            RootChange::DeleteAccessKey { .. } => "DeleteAccessKey",
            RootChange::CreateLoginProfile { .. } => "CreateLoginProfile",
            RootChange::UpdateLoginProfile => "UpdateLoginProfile",
            RootChange::DeleteLoginProfile => "DeleteLoginProfile",
            RootChange::EnableMFADevice { .. } => "EnableMFADevice",
            RootChange::DeactivateMFADevice { .. } => "DeactivateMFADevice",
            RootChange::DeleteVirtualMFADevice { .. } => "DeleteVirtualMFADevice",
            RootChange::UploadSigningCertificate { .. } => "UploadSigningCertificate",
            RootChange::UpdateSigningCertificate { .. } => "UpdateSigningCertificate",
            RootChange::DeleteSigningCertificate { .. } => "DeleteSigningCertificate",
            RootChange::ConsoleLogin { .. } => "ConsoleLogin",
            RootChange::ApiCall { event_name, .. } => event_name,
        }
    }

    /// The CloudTrail `eventSource`: `iam.amazonaws.com` for credential changes.
    fn event_source(&self) -> &str {
        match self {
            RootChange::ApiCall { event_source, .. } => event_source,
            RootChange::ConsoleLogin { .. } => "signin.amazonaws.com",
            _ => "iam.amazonaws.com",
        }
    }

    /// What the control API answers about the change.
    pub(crate) fn summary(&self) -> Value {
        let mut v = json!({ "event_name": self.event_name() });
        match self {
            RootChange::CreateAccessKey { id, .. } | RootChange::DeleteAccessKey { id } => {
                v["access_key_id"] = id.as_str().into();
            }
            RootChange::UpdateAccessKey { id, status } => {
                v["access_key_id"] = id.as_str().into();
                v["status"] = status.as_str().into();
            }
            RootChange::EnableMFADevice { serial }
            | RootChange::DeactivateMFADevice { serial }
            | RootChange::DeleteVirtualMFADevice { serial } => v["serial_number"] = serial.as_str().into(),
            RootChange::UploadSigningCertificate { id, .. } | RootChange::DeleteSigningCertificate { id } => {
                v["certificate_id"] = id.as_str().into();
            }
            RootChange::UpdateSigningCertificate { id, status } => {
                v["certificate_id"] = id.as_str().into();
                v["status"] = status.as_str().into();
            }
            RootChange::ConsoleLogin { mfa, success } => {
                v["mfa_used"] = mfa.is_some().into();
                v["outcome"] = if *success { "Success" } else { "Failure" }.into();
            }
            RootChange::ApiCall {
                event_source,
                read_only,
                ..
            } => {
                v["event_source"] = event_source.as_str().into();
                v["read_only"] = (*read_only).into();
            }
            RootChange::CreateLoginProfile { .. } | RootChange::UpdateLoginProfile | RootChange::DeleteLoginProfile => {
            }
        }
        v
    }
}

/// Where the root user acted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootSession {
    /// Signed in to the console with the root password.
    Console,
    /// Signed with one of root's own access keys (`AKIA...`), e.g. from the AWS CLI.
    AccessKey,
    /// A privileged root session opened by `sts:AssumeRoot` from the management account or the
    /// delegated administrator (CloudTrail: `sessionContext.assumedRoot = "true"`).
    AssumedRoot,
}

/// Who made the changes: the account's root user in a session.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub(crate) account_id: String,
    pub(crate) session: RootSession,
    /// Whether the console session signed in with MFA.
    pub(crate) mfa_authenticated: bool,
    /// For an AssumeRoot session: the account and principal that called AssumeRoot.
    pub(crate) issuer_account_id: String,
    pub(crate) issuer_arn: String,
    /// The access key id the call was signed with: root's own key (`AccessKey`), or the
    /// AssumeRoot session's; `None` draws a fresh `ASIA...` (a console or unnamed session).
    pub(crate) access_key_id: Option<String>,
    /// For an AssumeRoot session: whether the event carries `sessionContext.assumedRoot` and
    /// `inScopeOf`, which AWS does not promise in member-account events.
    pub(crate) hints: bool,
}

/// `s3.amazonaws.com` -> `s3`: the service's name, as EventBridge's `source` (`aws.s3`) and
/// IAM's last-used service name give it.
pub(crate) fn service_of(event_source: &str) -> &str {
    event_source.split('.').next().unwrap_or(event_source)
}

const SOURCE_IP: &str = "192.0.2.10";
const CONSOLE_USER_AGENT: &str = "AWS Internal";
const CLI_USER_AGENT: &str = "aws-cli/2.22.0 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 md/prompt#off";
const BROWSER_USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// A public certificate body for UploadSigningCertificate (not a secret; CloudTrail records it).
const CERTIFICATE_BODY: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUSIMULATEDSIGNINGCERTIFICATE0wCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";

/// The event AWS delivers for `change`, as the SQS message body would carry it (EventBridge
/// envelope, CloudTrail record in `detail`). Never a secret: CloudTrail leaves out the secret
/// access key, the password and the MFA codes.
pub(crate) fn event(change: &RootChange, actor: &Actor, at: SystemTime, rng: &mut Rng) -> Value {
    let account = actor.account_id.as_str();
    let time = iso8601(at);
    let event_id = uuid4(rng);
    let envelope_id = uuid4(rng);
    if let RootChange::ConsoleLogin { mfa, success } = change {
        let mfa = mfa.as_ref().filter(|_| *success);
        let mut additional = json!({
            "LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_0123456789abcdef",
            "MobileVersion": "No",
            "MFAUsed": if mfa.is_some() { "Yes" } else { "No" },
        });
        if let Some(serial) = mfa {
            additional["MFAIdentifier"] = serial.as_str().into();
        }
        let mut detail = json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "Root",
                "principalId": account,
                "arn": format!("arn:aws:iam::{account}:root"),
                "accountId": account,
                "accessKeyId": "",
            },
            "eventTime": time,
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": SOURCE_IP,
            "userAgent": BROWSER_USER_AGENT,
            "requestParameters": null,
            "responseElements": { "ConsoleLogin": if *success { "Success" } else { "Failure" } },
            "additionalEventData": additional,
            "eventID": event_id,
            "readOnly": false,
            "eventType": "AwsConsoleSignIn",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": tls_details("signin.aws.amazon.com"),
        });
        if !success {
            // AWS's record of a failed sign-in (CloudTrail User Guide, "AWS Management Console
            // sign-in events"): the reason, and no MFA (the password failed first).
            detail["errorMessage"] = "Failed authentication".into();
        }
        return envelope(
            envelope_id,
            "AWS Console Sign In via CloudTrail",
            "aws.signin",
            account,
            &time,
            detail,
        );
    }
    let (request, response) = parameters(change);
    let session_created = iso8601(at - std::time::Duration::from_secs(300));
    // Drawn for every call, so that the random sequence does not depend on the session.
    let fresh_key = format!("ASIA{}", rng.token(UPPER_DIGITS, 16));
    let access_key_id = actor.access_key_id.clone().unwrap_or(fresh_key);
    let event_source = change.event_source();
    let service = service_of(event_source);
    let mut identity = json!({
        "type": "Root",
        "principalId": account,
        "arn": format!("arn:aws:iam::{account}:root"),
        "accountId": account,
        "accessKeyId": access_key_id,
    });
    let cli_user_agent = || format!("{CLI_USER_AGENT} md/command#{service}.{}", kebab(change.event_name()));
    let user_agent = match actor.session {
        RootSession::Console => {
            identity["sessionContext"] = json!({
                "sessionIssuer": {},
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": session_created,
                    "mfaAuthenticated": if actor.mfa_authenticated { "true" } else { "false" },
                },
            });
            CONSOLE_USER_AGENT.to_string()
        }
        // Root's own long-term key: no session.
        RootSession::AccessKey => cli_user_agent(),
        RootSession::AssumedRoot => {
            identity["sessionContext"] = json!({
                "attributes": { "creationDate": session_created, "mfaAuthenticated": "false" },
            });
            if actor.hints {
                identity["sessionContext"]["assumedRoot"] = "true".into();
                identity["inScopeOf"] = json!({
                    "issuerAccountId": actor.issuer_account_id,
                    "credentialsIssuedTo": actor.issuer_arn,
                });
            }
            cli_user_agent()
        }
    };
    let read_only = matches!(change, RootChange::ApiCall { read_only: true, .. });
    let mut detail = json!({
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": time,
        "eventSource": event_source,
        "eventName": change.event_name(),
        "awsRegion": "us-east-1",
        "sourceIPAddress": SOURCE_IP,
        "userAgent": user_agent,
        "requestParameters": request,
        "responseElements": response,
        "requestID": uuid4(rng),
        "eventID": event_id,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": tls_details(event_source),
    });
    if actor.session == RootSession::Console {
        detail["sessionCredentialFromConsole"] = "true".into();
    }
    envelope(
        envelope_id,
        "AWS API Call via CloudTrail",
        &format!("aws.{service}"),
        account,
        &time,
        detail,
    )
}

/// How the call reached AWS: TLS 1.3 to `host`.
fn tls_details(host: &str) -> Value {
    json!({ "tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": host })
}

fn envelope(id: String, detail_type: &str, source: &str, account: &str, time: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// `requestParameters` and `responseElements` of an IAM call on the root user (no `userName`:
/// the call names no user, and root has none).
fn parameters(change: &RootChange) -> (Value, Value) {
    match change {
        RootChange::CreateAccessKey { id, created } => (
            Value::Null,
            json!({ "accessKey": { "accessKeyId": id, "status": "Active", "createDate": cloudtrail_date(*created) } }),
        ),
        RootChange::UpdateAccessKey { id, status } => {
            (json!({ "accessKeyId": id, "status": status.as_str() }), Value::Null)
        }
        RootChange::DeleteAccessKey { id } => (json!({ "accessKeyId": id }), Value::Null),
        RootChange::CreateLoginProfile { created } => (
            json!({ "passwordResetRequired": false }),
            json!({ "loginProfile": { "createDate": cloudtrail_date(*created), "passwordResetRequired": false } }),
        ),
        RootChange::UpdateLoginProfile => (json!({ "passwordResetRequired": false }), Value::Null),
        RootChange::DeleteLoginProfile => (Value::Null, Value::Null),
        RootChange::EnableMFADevice { serial }
        | RootChange::DeactivateMFADevice { serial }
        | RootChange::DeleteVirtualMFADevice { serial } => (json!({ "serialNumber": serial }), Value::Null),
        RootChange::UploadSigningCertificate { id, uploaded } => (
            json!({ "certificateBody": CERTIFICATE_BODY }),
            json!({ "certificate": {
                "certificateId": id,
                "certificateBody": CERTIFICATE_BODY,
                "status": "Active",
                "uploadDate": cloudtrail_date(*uploaded),
            } }),
        ),
        RootChange::UpdateSigningCertificate { id, status } => {
            (json!({ "certificateId": id, "status": status.as_str() }), Value::Null)
        }
        RootChange::DeleteSigningCertificate { id } => (json!({ "certificateId": id }), Value::Null),
        // What the call asked and answered is not modelled: only who made it matters here.
        RootChange::ConsoleLogin { .. } | RootChange::ApiCall { .. } => (Value::Null, Value::Null),
    }
}

/// `CreateAccessKey` -> `create-access-key`, the AWS CLI's command name.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.replace("m-f-a", "mfa")
}

/// The date form IAM's CloudTrail records carry in `responseElements`: `Nov 25, 2026, 1:10:06 AM`
/// (UTC).
pub(crate) fn cloudtrail_date(t: SystemTime) -> String {
    // 2026-11-25T01:10:06Z
    let s = iso8601(t);
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok()).unwrap_or(0);
    let (year, month, day, hour, minute, second) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[(month.clamp(1, 12) - 1) as usize];
    let (h12, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    format!("{month} {day}, {year}, {h12}:{minute:02}:{second:02} {half}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_569_006) // 2026-11-25T01:10:06Z
    }

    fn actor(session: RootSession) -> Actor {
        Actor {
            account_id: "222222222222".into(),
            session,
            mfa_authenticated: true,
            issuer_account_id: "111111111111".into(),
            issuer_arn: "arn:aws:sts::111111111111:assumed-role/aws-root-exporter/simulated".into(),
            access_key_id: None,
            hints: true,
        }
    }

    fn api_call(event_source: &str, event_name: &str, read_only: bool) -> RootChange {
        RootChange::ApiCall {
            event_source: event_source.into(),
            event_name: event_name.into(),
            read_only,
        }
    }

    /// The event as the SQS message body carries it, parsed back.
    fn round_trip(e: &Value) -> Value {
        serde_json::from_str(&e.to_string()).unwrap()
    }

    #[test]
    fn dates_take_cloudtrails_iam_form() {
        assert_eq!(cloudtrail_date(at()), "Nov 25, 2026, 1:10:06 AM");
        assert_eq!(
            cloudtrail_date(at() + Duration::from_secs(12 * 3600)),
            "Nov 25, 2026, 1:10:06 PM"
        );
        assert_eq!(cloudtrail_date(SystemTime::UNIX_EPOCH), "Jan 1, 1970, 12:00:00 AM");
    }

    #[test]
    fn create_access_key_from_the_console_has_no_secret() {
        let mut rng = Rng::new(1);
        let change = RootChange::CreateAccessKey {
            id: "AKIA2222EXAMPLE00001".into(),
            created: at(),
        };
        let e = event(&change, &actor(RootSession::Console), at(), &mut rng);
        assert_eq!(e["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(e["source"], "aws.iam");
        assert_eq!(e["account"], "222222222222");
        assert_eq!(e["time"], "2026-11-25T01:10:06Z");
        let d = &e["detail"];
        assert_eq!(d["eventName"], "CreateAccessKey");
        assert_eq!(d["userIdentity"]["type"], "Root");
        assert_eq!(d["userIdentity"]["arn"], "arn:aws:iam::222222222222:root");
        assert_eq!(
            d["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
            "true"
        );
        assert_eq!(d["requestParameters"], Value::Null);
        assert_eq!(
            d["responseElements"],
            json!({"accessKey": {"accessKeyId": "AKIA2222EXAMPLE00001", "status": "Active", "createDate": "Nov 25, 2026, 1:10:06 AM"}})
        );
        assert_eq!(d["recipientAccountId"], "222222222222");
        assert!(!e.to_string().to_lowercase().contains("secret"), "{e}");
    }

    #[test]
    fn an_assumed_root_session_is_marked_and_names_its_issuer() {
        let mut rng = Rng::new(2);
        let change = RootChange::DeleteAccessKey {
            id: "AKIA2222EXAMPLE00001".into(),
        };
        let e = event(&change, &actor(RootSession::AssumedRoot), at(), &mut rng);
        let id = &e["detail"]["userIdentity"];
        assert_eq!(id["type"], "Root");
        assert_eq!(id["sessionContext"]["assumedRoot"], "true");
        assert_eq!(id["inScopeOf"]["issuerAccountId"], "111111111111");
        assert_eq!(
            e["detail"]["requestParameters"],
            json!({"accessKeyId": "AKIA2222EXAMPLE00001"})
        );
        assert!(
            e["detail"]["userAgent"]
                .as_str()
                .unwrap()
                .ends_with("md/command#iam.delete-access-key")
        );
        assert!(e["detail"].get("sessionCredentialFromConsole").is_none());
        assert_eq!(kebab("EnableMFADevice"), "enable-mfa-device");
    }

    #[test]
    fn console_login_is_a_sign_in_event() {
        let mut rng = Rng::new(3);
        let serial = "arn:aws:iam::222222222222:mfa/root-account-mfa-device".to_string();
        let e = event(
            &RootChange::ConsoleLogin {
                mfa: Some(serial.clone()),
                success: true,
            },
            &actor(RootSession::Console),
            at(),
            &mut rng,
        );
        assert_eq!(e["source"], "aws.signin");
        assert_eq!(e["detail-type"], "AWS Console Sign In via CloudTrail");
        let d = &e["detail"];
        assert_eq!(d["eventSource"], "signin.amazonaws.com");
        assert_eq!(d["responseElements"], json!({"ConsoleLogin": "Success"}));
        assert_eq!(d["additionalEventData"]["MFAUsed"], "Yes");
        assert_eq!(d["additionalEventData"]["MFAIdentifier"], serial.as_str());
        let e = event(
            &RootChange::ConsoleLogin {
                mfa: None,
                success: true,
            },
            &actor(RootSession::Console),
            at(),
            &mut rng,
        );
        assert_eq!(e["detail"]["additionalEventData"]["MFAUsed"], "No");
        assert!(e["detail"]["additionalEventData"].get("MFAIdentifier").is_none());
    }

    #[test]
    fn a_failed_sign_in_is_awss_failure_record() {
        let mut rng = Rng::new(4);
        let change = RootChange::ConsoleLogin {
            mfa: Some("arn:aws:iam::222222222222:mfa/root-account-mfa-device".into()),
            success: false,
        };
        let e = round_trip(&event(&change, &actor(RootSession::Console), at(), &mut rng));
        assert_eq!(e["source"], "aws.signin");
        assert_eq!(e["detail-type"], "AWS Console Sign In via CloudTrail");
        assert_eq!(e["account"], "222222222222");
        let d = &e["detail"];
        assert_eq!(
            d["userIdentity"],
            json!({"type": "Root", "principalId": "222222222222", "arn": "arn:aws:iam::222222222222:root", "accountId": "222222222222", "accessKeyId": ""})
        );
        assert_eq!(d["responseElements"], json!({"ConsoleLogin": "Failure"}));
        assert_eq!(d["errorMessage"], "Failed authentication");
        assert_eq!(d["additionalEventData"]["MFAUsed"], "No");
        assert!(d["additionalEventData"].get("MFAIdentifier").is_none());
        assert_eq!(d["eventType"], "AwsConsoleSignIn");
        assert_eq!(d["eventName"], "ConsoleLogin");
        assert_eq!(d["recipientAccountId"], "222222222222");
        assert_eq!(d["eventTime"], "2026-11-25T01:10:06Z");
        assert_eq!(
            change.summary(),
            json!({"event_name": "ConsoleLogin", "mfa_used": true, "outcome": "Failure"})
        );
        // A success carries no error.
        let ok = RootChange::ConsoleLogin {
            mfa: None,
            success: true,
        };
        let e = event(&ok, &actor(RootSession::Console), at(), &mut rng);
        assert!(e["detail"].get("errorMessage").is_none());
        assert_eq!(e["detail"]["responseElements"], json!({"ConsoleLogin": "Success"}));
    }

    #[test]
    fn an_api_call_from_the_console_is_any_services_cloudtrail_record() {
        let mut rng = Rng::new(5);
        let change = api_call("s3.amazonaws.com", "PutBucketPolicy", false);
        let e = round_trip(&event(&change, &actor(RootSession::Console), at(), &mut rng));
        assert_eq!(e["source"], "aws.s3");
        assert_eq!(e["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(e["account"], "222222222222");
        assert_eq!(e["time"], "2026-11-25T01:10:06Z");
        let d = &e["detail"];
        for (k, want) in [
            ("eventSource", json!("s3.amazonaws.com")),
            ("eventName", json!("PutBucketPolicy")),
            ("readOnly", json!(false)),
            ("eventType", json!("AwsApiCall")),
            ("managementEvent", json!(true)),
            ("eventCategory", json!("Management")),
            ("awsRegion", json!("us-east-1")),
            ("recipientAccountId", json!("222222222222")),
            ("eventTime", json!("2026-11-25T01:10:06Z")),
            ("sessionCredentialFromConsole", json!("true")),
            ("userAgent", json!("AWS Internal")),
        ] {
            assert_eq!(d[k], want, "{k}: {d}");
        }
        assert!(d.get("invokedBy").is_none() && d["userIdentity"].get("invokedBy").is_none());
        assert!(d["eventID"].is_string() && d["requestID"].is_string());
        let id = &d["userIdentity"];
        assert_eq!(id["type"], "Root");
        assert!(id["accessKeyId"].as_str().unwrap().starts_with("ASIA"), "{id}");
        assert_eq!(id["sessionContext"]["attributes"]["mfaAuthenticated"], "true");
        assert!(id["sessionContext"].get("assumedRoot").is_none());
        assert!(id.get("inScopeOf").is_none());
        // A read-only call of another service.
        let e = event(
            &api_call("ec2.amazonaws.com", "DescribeInstances", true),
            &actor(RootSession::Console),
            at(),
            &mut rng,
        );
        assert_eq!(e["source"], "aws.ec2");
        assert_eq!(e["detail"]["readOnly"], true);
    }

    #[test]
    fn an_api_call_with_roots_access_key_names_the_key_and_no_session() {
        let mut rng = Rng::new(6);
        let mut a = actor(RootSession::AccessKey);
        a.access_key_id = Some("AKIA2222EXAMPLE00001".into());
        let e = round_trip(&event(
            &api_call("s3.amazonaws.com", "ListBuckets", true),
            &a,
            at(),
            &mut rng,
        ));
        let d = &e["detail"];
        assert_eq!(
            d["userIdentity"],
            json!({"type": "Root", "principalId": "222222222222", "arn": "arn:aws:iam::222222222222:root", "accountId": "222222222222", "accessKeyId": "AKIA2222EXAMPLE00001"})
        );
        assert!(d.get("sessionCredentialFromConsole").is_none());
        assert!(d["userAgent"].as_str().unwrap().ends_with("md/command#s3.list-buckets"));
    }

    #[test]
    fn an_assumed_root_api_call_carries_its_session_key_and_hints_only_when_asked() {
        let mut rng = Rng::new(7);
        let mut a = actor(RootSession::AssumedRoot);
        a.access_key_id = Some("ASIASESSIONKEY000001".into());
        let change = api_call("s3.amazonaws.com", "DeleteBucketPolicy", false);
        let e = round_trip(&event(&change, &a, at(), &mut rng));
        let id = &e["detail"]["userIdentity"];
        assert_eq!(id["type"], "Root");
        assert_eq!(id["accessKeyId"], "ASIASESSIONKEY000001");
        assert_eq!(
            id["sessionContext"],
            json!({"attributes": {"creationDate": "2026-11-25T01:05:06Z", "mfaAuthenticated": "false"}, "assumedRoot": "true"})
        );
        assert_eq!(
            id["inScopeOf"],
            json!({"issuerAccountId": "111111111111", "credentialsIssuedTo": "arn:aws:sts::111111111111:assumed-role/aws-root-exporter/simulated"})
        );
        assert!(e["detail"].get("sessionCredentialFromConsole").is_none());
        a.hints = false;
        let e = round_trip(&event(&change, &a, at(), &mut rng));
        let id = &e["detail"]["userIdentity"];
        assert_eq!(id["accessKeyId"], "ASIASESSIONKEY000001");
        assert!(id["sessionContext"].get("assumedRoot").is_none(), "{id}");
        assert!(id.get("inScopeOf").is_none(), "{id}");
        assert_eq!(id["sessionContext"]["attributes"]["mfaAuthenticated"], "false");
    }

    #[test]
    fn hostile_issuers_round_trip_through_json_unchanged() {
        let mut rng = Rng::new(8);
        for hostile in [
            r#"arn:aws:sts::111111111111:assumed-role/Admin/"quoted""#,
            r"arn:aws:sts::111111111111:assumed-role/Admin/back\slash\\",
            "arn:aws:sts::111111111111:assumed-role/Admin/new\nline\r\t",
            "arn:aws:sts::111111111111:assumed-role/Admin/ünïcødé-🔑-\u{202e}",
            "arn:\u{0}\"}]},{\"evil\":1",
        ] {
            let mut a = actor(RootSession::AssumedRoot);
            a.issuer_arn = hostile.into();
            let body = event(&api_call("s3.amazonaws.com", "GetObject", true), &a, at(), &mut rng).to_string();
            assert!(!body.contains('\n'), "a raw newline in {body}");
            let e: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(e["detail"]["userIdentity"]["inScopeOf"]["credentialsIssuedTo"], hostile);
            assert!(e.get("evil").is_none() && e["detail"].get("evil").is_none());
        }
    }

    #[test]
    fn service_names_come_from_the_event_source() {
        assert_eq!(service_of("s3.amazonaws.com"), "s3");
        assert_eq!(service_of("access-analyzer.amazonaws.com"), "access-analyzer");
        assert_eq!(kebab("PutBucketPolicy"), "put-bucket-policy");
    }
}
