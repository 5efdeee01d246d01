//! Reaching accounts without AssumeRoot, through the AWS SDK for Rust: AssumeRole and role
//! sessions, GetCallerIdentity for every kind of credentials, the credential report,
//! ListVirtualMFADevices, the OU tree and tags, and a delegated administrator caller.

mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_org_simulator::Scenario;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::{AssignmentStatusType, ReportFormatType, ReportStateType, SummaryKeyType as K};
use aws_sdk_sts::types::PolicyDescriptorType;
use common::{AUDIT, DEMO, Sim, iam, org, own_credentials, put_json, sdk_config, sts};
use serde_json::json;

/// `simulator/tests/scenarios/coverage.toml`: the caller is the delegated administrator
/// 999999999999.
const COVERAGE: &str = include_str!("scenarios/coverage.toml");
const CALLER: &str = "999999999999";
const CALLER_ARN: &str = "arn:aws:sts::999999999999:assumed-role/aws-root-exporter/simulated";
const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// AssumeRole with `creds` as `coverage-test`; the error's code and message on failure.
async fn assume_role_as(
    sim: &Sim,
    creds: Credentials,
    arn: &str,
    external_id: Option<&str>,
    seconds: Option<i32>,
) -> Result<(Credentials, aws_sdk_sts::operation::assume_role::AssumeRoleOutput), (String, String)> {
    common::assume_role_as(sim, creds, arn, "coverage-test", external_id, seconds).await
}

async fn assume_role(sim: &Sim, arn: &str, external_id: Option<&str>) -> Result<Credentials, (String, String)> {
    assume_role_as(sim, own_credentials(), arn, external_id, None)
        .await
        .map(|(c, _)| c)
}

async fn assume_root(sim: &Sim, target: &str) -> Credentials {
    common::assume_root(sim, target, 120).await.unwrap()
}

#[tokio::test]
async fn assume_role_succeeds_only_into_a_trusting_role_with_its_external_id() {
    let sim = Sim::start(COVERAGE).await;
    let arn = role_arn("222222222222", "RootAuditRole");
    let (creds, out) = assume_role_as(&sim, own_credentials(), &arn, None, None).await.unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"), "{}", creds.access_key_id());
    assert!(creds.session_token().is_some_and(|t| !t.is_empty()));
    let user = out.assumed_role_user().unwrap();
    assert_eq!(
        user.arn(),
        "arn:aws:sts::222222222222:assumed-role/RootAuditRole/coverage-test"
    );
    assert!(
        user.assumed_role_id().starts_with("AROA") && user.assumed_role_id().ends_with(":coverage-test"),
        "{}",
        user.assumed_role_id()
    );
    // Default duration: an hour.
    let expiration = out.credentials().unwrap().expiration().secs();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((3590..=3610).contains(&(expiration - now)), "{}", expiration - now);
    // The role id is stable: the same in a second session.
    let (_, again) = assume_role_as(&sim, own_credentials(), &arn, None, Some(900))
        .await
        .unwrap();
    assert_eq!(
        again.assumed_role_user().unwrap().assumed_role_id(),
        user.assumed_role_id()
    );

    // The external id: required, and must match.
    let data = role_arn("333333333333", "RootAuditRole");
    for external_id in [None, Some("wrong-id")] {
        let (code, message) = assume_role(&sim, &data, external_id).await.unwrap_err();
        assert_eq!(code, "AccessDenied", "{external_id:?}");
        assert_eq!(
            message,
            format!("User: {CALLER_ARN} is not authorized to perform: sts:AssumeRole on resource: {data}")
        );
    }
    assume_role(&sim, &data, Some("coverage-external-id")).await.unwrap();
    // An external id given to a role that needs none is ignored.
    assume_role(&sim, &arn, Some("unused-id")).await.unwrap();

    // Denied alike: no such role, a role that does not trust the caller, a suspended account,
    // an account outside the organization.
    for denied in [
        role_arn("444444444444", "RootAuditRole"),
        role_arn("444444444444", "OrganizationAccountAccessRole"),
        role_arn("555555555555", "RootAuditRole"),
        role_arn("666666666666", "RootAuditRole"),
        role_arn("000000000001", "RootAuditRole"),
        role_arn("222222222222", "rootauditrole"),
    ] {
        let (code, message) = assume_role(&sim, &denied, None).await.unwrap_err();
        assert_eq!(code, "AccessDenied", "{denied}");
        assert_eq!(
            message,
            format!("User: {CALLER_ARN} is not authorized to perform: sts:AssumeRole on resource: {denied}")
        );
    }
    // The management account's role trusts the delegated administrator.
    assume_role(&sim, &role_arn("111111111111", "RootAuditRole"), None)
        .await
        .unwrap();
    assert_eq!(sim.running.calls("AssumeRole"), 13);
}

#[tokio::test]
async fn assume_role_validates_its_parameters_like_aws() {
    let sim = Sim::start(COVERAGE).await;
    let arn = role_arn("222222222222", "RootAuditRole");
    for (seconds, needle) in [
        (
            899,
            "Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
        ),
        (
            43_201,
            "Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200",
        ),
        (
            7200,
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ),
    ] {
        let (code, message) = assume_role_as(&sim, own_credentials(), &arn, None, Some(seconds))
            .await
            .unwrap_err();
        assert_eq!(code, "ValidationError", "{seconds}");
        assert!(message.contains(needle), "{seconds}: {message}");
    }
    assume_role_as(&sim, own_credentials(), &arn, None, Some(900))
        .await
        .unwrap();
    assume_role_as(&sim, own_credentials(), &arn, None, Some(3600))
        .await
        .unwrap();
    for bad in [
        "arn:aws:iam::2222:role/RootAuditRole",
        "arn:aws:iam::222222222222:user/x",
        "RootAuditRole",
    ] {
        let (code, _) = assume_role(&sim, bad, None).await.unwrap_err();
        assert_eq!(code, "ValidationError", "{bad}");
    }
    let err = sts(&sim, own_credentials())
        .await
        .assume_role()
        .role_arn(&arn)
        .role_session_name("no spaces allowed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
    let err = sts(&sim, own_credentials())
        .await
        .assume_role()
        .role_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"), "no RoleSessionName");
}

#[tokio::test]
async fn role_chaining_needs_a_trust_in_the_sessions_account_and_at_most_an_hour() {
    let sim = Sim::start(COVERAGE).await;
    // A role session in the caller's own account (its RootAuditRole trusts that account).
    let own_role = assume_role(&sim, &role_arn(CALLER, "RootAuditRole"), None)
        .await
        .unwrap();
    let (_, out) = assume_role_as(
        &sim,
        own_role.clone(),
        &role_arn("222222222222", "RootAuditRole"),
        None,
        Some(3600),
    )
    .await
    .unwrap();
    assert_eq!(
        out.assumed_role_user().unwrap().arn(),
        "arn:aws:sts::222222222222:assumed-role/RootAuditRole/coverage-test"
    );
    let (code, message) = assume_role_as(
        &sim,
        own_role,
        &role_arn("222222222222", "RootAuditRole"),
        None,
        Some(3601),
    )
    .await
    .unwrap_err();
    assert_eq!(code, "ValidationError");
    assert!(message.contains("role chaining"), "{message}");
    // From a session in 222222222222: 333333333333's role trusts only the caller account.
    let prod = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap();
    let target = role_arn("333333333333", "RootAuditRole");
    let (code, message) = assume_role_as(&sim, prod, &target, Some("coverage-external-id"), None)
        .await
        .unwrap_err();
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        format!(
            "User: arn:aws:sts::222222222222:assumed-role/RootAuditRole/coverage-test is not authorized to perform: sts:AssumeRole on resource: {target}"
        )
    );
    // Root sessions may not assume roles.
    let root = assume_root(&sim, "222222222222").await;
    let (code, _) = assume_role_as(&sim, root, &role_arn("222222222222", "RootAuditRole"), None, None)
        .await
        .unwrap_err();
    assert_eq!(code, "AccessDenied");
}

#[tokio::test]
async fn get_caller_identity_names_own_role_and_root_sessions() {
    let sim = Sim::start(COVERAGE).await;
    let me = sts(&sim, own_credentials())
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.account(), Some(CALLER));
    assert_eq!(me.arn(), Some(CALLER_ARN));

    let role = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap();
    let me = sts(&sim, role).await.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("222222222222"));
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::222222222222:assumed-role/RootAuditRole/coverage-test")
    );
    assert!(me.user_id().unwrap().starts_with("AROA") && me.user_id().unwrap().ends_with(":coverage-test"));

    let root = assume_root(&sim, "222222222222").await;
    let me = sts(&sim, root).await.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("222222222222"));
    assert_eq!(me.arn(), Some("arn:aws:iam::222222222222:root"));

    // Without caller_account_id the caller is the management account, as before.
    let sim = Sim::start(DEMO).await;
    let me = sts(&sim, own_credentials())
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.account(), Some("111111111111"));
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/aws-root-exporter/simulated")
    );
}

#[tokio::test]
async fn role_sessions_read_their_accounts_root_and_nothing_else() {
    let sim = Sim::start(COVERAGE).await;
    let role = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap();
    let iam_role = iam(&sim, role.clone()).await;
    let summary = iam_role.get_account_summary().send().await.unwrap();
    let map = summary.summary_map().unwrap();
    assert_eq!(
        (
            map[&K::AccountMfaEnabled],
            map[&K::AccountAccessKeysPresent],
            map[&K::AccountPasswordPresent],
            map[&K::AccountSigningCertificatesPresent]
        ),
        (1, 1, 1, 1)
    );
    // The management account's root, through its role: the key the exporter must see.
    let mgmt = assume_role(&sim, &role_arn("111111111111", "RootAuditRole"), None)
        .await
        .unwrap();
    let summary = iam(&sim, mgmt).await.get_account_summary().send().await.unwrap();
    assert_eq!(summary.summary_map().unwrap()[&K::AccountAccessKeysPresent], 1);

    let err = iam_role.list_users().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
    let message = err.message().unwrap();
    assert!(
        message.starts_with(
            "User: arn:aws:sts::222222222222:assumed-role/RootAuditRole/coverage-test is not authorized to perform: iam:ListUsers"
        ),
        "{message}"
    );
    let denied = [
        iam_role
            .list_access_keys()
            .send()
            .await
            .unwrap_err()
            .code()
            .map(String::from),
        iam_role
            .list_mfa_devices()
            .send()
            .await
            .unwrap_err()
            .code()
            .map(String::from),
        iam_role.get_user().send().await.unwrap_err().code().map(String::from),
        iam_role
            .list_organizations_features()
            .send()
            .await
            .unwrap_err()
            .code()
            .map(String::from),
    ];
    assert!(
        denied.iter().all(|c| c.as_deref() == Some("AccessDenied")),
        "{denied:?}"
    );
    let err = org(&sim, role.clone()).await.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let err = org(&sim, role.clone()).await.list_roots().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let err = sts(&sim, role)
        .await
        .assume_root()
        .target_principal("333333333333")
        .task_policy_arn(PolicyDescriptorType::builder().arn(AUDIT).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    // Root sessions cannot read the report or list virtual devices (not in the task policy).
    let root = iam(&sim, assume_root(&sim, "222222222222").await).await;
    assert_eq!(
        root.generate_credential_report().send().await.unwrap_err().code(),
        Some("AccessDenied")
    );
    assert_eq!(
        root.list_virtual_mfa_devices().send().await.unwrap_err().code(),
        Some("AccessDenied")
    );
}

fn rows(csv: &str) -> Vec<Vec<&str>> {
    csv.lines().map(|l| l.split(',').collect()).collect()
}

#[tokio::test]
async fn the_credential_report_is_generated_then_in_progress_then_complete() {
    let slow = COVERAGE.replace("generation_ms = 0", "generation_ms = 400");
    assert_ne!(slow, COVERAGE);
    let sim = Sim::start(&slow).await;
    let role = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap();
    let iam_role = iam(&sim, role).await;

    let err = iam_role.get_credential_report().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ReportNotPresent"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 410);
    assert!(err.into_service_error().is_credential_report_not_present_exception());

    let started = SystemTime::now();
    let out = iam_role.generate_credential_report().send().await.unwrap();
    assert_eq!(out.state(), Some(&ReportStateType::Started));
    assert!(out.description().is_some());
    let out = iam_role.generate_credential_report().send().await.unwrap();
    assert_eq!(out.state(), Some(&ReportStateType::Inprogress));
    let err = iam_role.get_credential_report().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ReportInProgress"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);
    assert!(err.into_service_error().is_credential_report_not_ready_exception());
    let info = sim.running.credential_report("222222222222").unwrap();
    assert!(!info.complete);

    tokio::time::sleep(Duration::from_millis(450)).await;
    let out = iam_role.generate_credential_report().send().await.unwrap();
    assert_eq!(out.state(), Some(&ReportStateType::Complete));
    let report = iam_role.get_credential_report().send().await.unwrap();
    assert_eq!(report.report_format(), Some(&ReportFormatType::TextCsv));
    let generated = report.generated_time().unwrap().secs();
    let started_secs = started.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(
        (started_secs - 1..=started_secs + 1).contains(&generated),
        "{generated}"
    );
    let csv = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
    let rows = rows(&csv);
    assert_eq!(csv.lines().next(), Some(HEADER));
    assert!(rows.iter().all(|r| r.len() == 22), "{csv}");
    let root: Vec<&str> = rows.iter().find(|r| r[0] == "<root_account>").unwrap().clone();
    assert_eq!(
        root,
        vec![
            "<root_account>",
            "arn:aws:iam::222222222222:root",
            "2020-01-01T00:00:00+00:00",
            "not_supported",
            "no_information", // a password never used
            "not_supported",
            "not_supported",
            "true",
            "true", // the active key
            "2019-03-02T10:00:00+00:00",
            "2025-11-01T12:00:00+00:00",
            "eu-west-1",
            "s3",
            "false", // the inactive key
            "2020-06-01T00:00:00+00:00",
            "N/A",
            "N/A",
            "N/A",
            "true", // the certificate
            "2020-01-01T00:00:00+00:00",
            "false",
            "N/A",
        ]
    );
    // IAM users follow, so a reader must pick root's row.
    let users: Vec<&str> = rows[2..].iter().map(|r| r[0]).collect();
    assert_eq!(users, ["ci-deployer", "ops-admin"]);
    assert_eq!(rows[1][0], "<root_account>");

    // Within four hours: COMPLETE, not regenerated.
    let info = sim.running.credential_report("222222222222").unwrap();
    assert!(info.complete);
    assert_eq!(info.generations, 1);
    assert_eq!(info.csv, csv);
    let out = iam_role.generate_credential_report().send().await.unwrap();
    assert_eq!(out.state(), Some(&ReportStateType::Complete));
    assert_eq!(sim.running.credential_report("222222222222").unwrap().generations, 1);

    // Four hours later: expired, and generating again starts a new one.
    let url = sim.control("/_simulator/accounts/222222222222/credential_report");
    let r = put_json(&url, json!({"age_seconds": 14400})).await;
    assert_eq!(r.status(), 200);
    let err = iam_role.get_credential_report().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ReportExpired"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 410);
    let out = iam_role.generate_credential_report().send().await.unwrap();
    assert_eq!(out.state(), Some(&ReportStateType::Started));
    let shown: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(shown["state"], "in_progress");
    assert_eq!(shown["generations"], 2);
    // Another account has no report yet; aging it is a conflict.
    let other = sim.control("/_simulator/accounts/333333333333/credential_report");
    let shown: serde_json::Value = reqwest::get(&other).await.unwrap().json().await.unwrap();
    assert_eq!(shown["state"], "none");
    assert_eq!(put_json(&other, json!({"age_seconds": 1})).await.status(), 409);
    assert_eq!(put_json(&other, json!({"age": 1})).await.status(), 400);
    assert!(sim.running.credential_report("333333333333").is_none());
}

#[tokio::test]
async fn a_stored_credential_report_can_be_broken_the_ways_a_reader_must_refuse() {
    let sim = Sim::start(COVERAGE).await;
    let role = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap();
    let iam_role = iam(&sim, role).await;
    iam_role.generate_credential_report().send().await.unwrap();
    let url = sim.control("/_simulator/accounts/222222222222/credential_report");
    let read = || async {
        let out = iam_role.get_credential_report().send().await.unwrap();
        String::from_utf8(out.content().unwrap().as_ref().to_vec()).unwrap()
    };
    let clean = read().await;
    let root_of = |csv: &str| -> Vec<String> {
        let line = csv.lines().find(|l| l.starts_with("<root_account>,")).unwrap();
        line.split(',').map(String::from).collect()
    };
    let header_len = clean.lines().next().unwrap().split(',').count();
    // (corruption, header fields, root row fields)
    for (corrupt, header, root) in [
        ("drop_field", header_len, header_len - 1),
        ("extra_field", header_len, header_len + 1),
        ("missing_column", header_len - 1, header_len - 1),
        ("bad_time", header_len, header_len),
    ] {
        // Each corruption starts from a clean report: generations make a new one.
        put_json(&url, json!({"age_seconds": 14400})).await;
        iam_role.generate_credential_report().send().await.unwrap();
        assert_eq!(read().await.lines().count(), clean.lines().count());
        let r = put_json(&url, json!({"corrupt": corrupt})).await;
        assert_eq!(r.status(), 200, "{corrupt}");
        let csv = read().await;
        assert_eq!(
            csv.lines().next().unwrap().split(',').count(),
            header,
            "{corrupt}: {csv}"
        );
        let row = root_of(&csv);
        assert_eq!(row.len(), root, "{corrupt}: {csv}");
        if corrupt == "missing_column" {
            assert!(!csv.lines().next().unwrap().contains("cert_2_active"));
            // Every row lost the field, not only root's.
            assert!(csv.lines().all(|l| l.split(',').count() == header_len - 1), "{csv}");
        }
        if corrupt == "bad_time" {
            assert!(row.contains(&"yesterday".to_string()), "{csv}");
        }
    }
    // Bodies that set nothing, or an unknown corruption, are refused with what is allowed.
    let r = put_json(&url, json!({})).await;
    assert_eq!(r.status(), 400);
    let r = put_json(&url, json!({"corrupt": "shuffle"})).await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("bad_time") && body.contains("shuffle"), "{body}");
}

#[tokio::test]
async fn own_credentials_read_the_callers_own_account() {
    let sim = Sim::start(COVERAGE).await;
    let own_iam = iam(&sim, own_credentials()).await;
    // The delegated administrator's root: a hardware device and nothing else.
    let summary = own_iam.get_account_summary().send().await.unwrap();
    let map = summary.summary_map().unwrap();
    assert_eq!(
        (
            map[&K::AccountMfaEnabled],
            map[&K::AccountAccessKeysPresent],
            map[&K::AccountPasswordPresent],
            map[&K::AccountSigningCertificatesPresent]
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(
        own_iam.generate_credential_report().send().await.unwrap().state(),
        Some(&ReportStateType::Started)
    );
    let report = own_iam.get_credential_report().send().await.unwrap();
    let csv = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
    let root = rows(&csv)
        .into_iter()
        .find(|r| r[0] == "<root_account>")
        .unwrap()
        .join(",");
    assert_eq!(
        root,
        "<root_account>,arn:aws:iam::999999999999:root,2020-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    );
    let devices = own_iam
        .list_virtual_mfa_devices()
        .assignment_status(AssignmentStatusType::Assigned)
        .send()
        .await
        .unwrap();
    assert!(
        devices
            .virtual_mfa_devices()
            .iter()
            .all(|d| d.user().unwrap().arn() != "arn:aws:iam::999999999999:root"),
        "a hardware device is not virtual"
    );
    // Other IAM calls are not the exporter's role's to make.
    assert_eq!(
        own_iam.list_users().send().await.unwrap_err().code(),
        Some("AccessDenied")
    );
    assert_eq!(
        own_iam.list_access_keys().send().await.unwrap_err().code(),
        Some("AccessDenied")
    );

    // Run in the management account (the default caller), its listed root is read directly.
    let in_management = COVERAGE.replace("caller_account_id = \"999999999999\"\n", "");
    assert_ne!(in_management, COVERAGE);
    let sim = Sim::start(&in_management).await;
    let own_iam = iam(&sim, own_credentials()).await;
    let summary = own_iam.get_account_summary().send().await.unwrap();
    let map = summary.summary_map().unwrap();
    assert_eq!(
        (
            map[&K::AccountMfaEnabled],
            map[&K::AccountAccessKeysPresent],
            map[&K::AccountPasswordPresent]
        ),
        (1, 1, 1)
    );
    own_iam.generate_credential_report().send().await.unwrap();
    let report = own_iam.get_credential_report().send().await.unwrap();
    let csv = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
    let root = rows(&csv)
        .into_iter()
        .find(|r| r[0] == "<root_account>")
        .unwrap()
        .join(",");
    assert_eq!(
        root,
        "<root_account>,arn:aws:iam::111111111111:root,2020-01-01T00:00:00+00:00,not_supported,2025-12-01T10:30:00+00:00,not_supported,not_supported,true,true,2018-01-10T09:30:00+00:00,2025-12-02T11:00:00+00:00,us-east-1,iam,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    );
    // The implicit management account (the demo): a hardware device, nothing else.
    let sim = Sim::start(DEMO).await;
    let summary = iam(&sim, own_credentials())
        .await
        .get_account_summary()
        .send()
        .await
        .unwrap();
    let map = summary.summary_map().unwrap();
    assert_eq!(
        (
            map[&K::AccountMfaEnabled],
            map[&K::AccountAccessKeysPresent],
            map[&K::AccountPasswordPresent]
        ),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn list_virtual_mfa_devices_lists_roots_virtual_device_not_its_passkey() {
    let sim = Sim::start(COVERAGE).await;
    let role = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap();
    let iam_role = iam(&sim, role).await;
    let assigned = iam_role
        .list_virtual_mfa_devices()
        .assignment_status(AssignmentStatusType::Assigned)
        .send()
        .await
        .unwrap();
    assert!(!assigned.is_truncated());
    let serials: Vec<&str> = assigned
        .virtual_mfa_devices()
        .iter()
        .map(|d| d.serial_number())
        .collect();
    assert_eq!(
        serials,
        [
            "arn:aws:iam::222222222222:mfa/ops-admin",
            "arn:aws:iam::222222222222:mfa/root-account-mfa-device"
        ]
    );
    let root_devices: Vec<_> = assigned
        .virtual_mfa_devices()
        .iter()
        .filter(|d| d.user().is_some_and(|u| u.arn() == "arn:aws:iam::222222222222:root"))
        .collect();
    assert_eq!(root_devices.len(), 1, "the passkey is not a virtual device");
    let user = root_devices[0].user().unwrap();
    assert_eq!(user.user_id(), "222222222222");
    assert_eq!(user.user_name(), "", "AWS lists root without a UserName");
    assert!(root_devices[0].enable_date().is_some());

    let unassigned = iam_role
        .list_virtual_mfa_devices()
        .assignment_status(AssignmentStatusType::Unassigned)
        .send()
        .await
        .unwrap();
    assert_eq!(unassigned.virtual_mfa_devices().len(), 1);
    assert!(unassigned.virtual_mfa_devices()[0].user().is_none());

    // Any (the default), one per page through Marker.
    let mut marker = None;
    let mut listed = Vec::new();
    loop {
        let page = iam_role
            .list_virtual_mfa_devices()
            .max_items(1)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        listed.extend(page.virtual_mfa_devices().iter().map(|d| d.serial_number().to_string()));
        if !page.is_truncated() {
            assert!(page.marker().is_none());
            break;
        }
        marker = page.marker().map(String::from);
    }
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (max, marker) in [(Some(0), None), (Some(1001), None), (None, Some("forged"))] {
        let err = iam_role
            .list_virtual_mfa_devices()
            .set_max_items(max)
            .set_marker(marker.map(String::from))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ValidationError"), "{max:?} {marker:?}");
    }
    let err = iam_role
        .list_virtual_mfa_devices()
        .assignment_status(AssignmentStatusType::from("Bogus"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"));

    // In a root session, ListMFADevices gives the same serial for the virtual device.
    let root = iam(&sim, assume_root(&sim, "222222222222").await).await;
    let devices = root.list_mfa_devices().send().await.unwrap();
    let serials: Vec<&str> = devices.mfa_devices().iter().map(|d| d.serial_number()).collect();
    assert_eq!(serials[0], "arn:aws:iam::222222222222:mfa/root-account-mfa-device");
    assert!(
        serials[1].starts_with("arn:aws:iam::222222222222:u2f/root/"),
        "{serials:?}"
    );
}

/// 25 OUs under `Teams`, one account in each, and 23 accounts in `Crowd`.
fn big_tree() -> String {
    let mut s = String::from("[organization]\nid = \"o-bigtree00001\"\nmanagement_account_id = \"111111111111\"\n");
    for n in 1..=48 {
        let ou = if n <= 25 {
            format!("Teams/Team{n:02}")
        } else {
            "Crowd".into()
        };
        s.push_str(&format!(
            "\n[[accounts]]\nid = \"{:012}\"\nname = \"account-{n}\"\nou = \"{ou}\"\n",
            200_000_000_000_u64 + n
        ));
    }
    s
}

#[tokio::test]
async fn the_ou_tree_lists_page_by_page() {
    let tree = big_tree();
    let sim = Sim::start(&tree).await;
    let org = org(&sim, own_credentials()).await;
    let roots = org.list_roots().send().await.unwrap();
    assert_eq!(roots.roots().len(), 1);
    let root = &roots.roots()[0];
    assert_eq!(root.name(), Some("Root"));
    let root_id = root.id().unwrap().to_string();
    assert!(root_id.starts_with("r-") && root_id.len() == 6, "{root_id}");
    assert!(
        root.arn()
            .unwrap()
            .ends_with(&format!(":root/o-bigtree00001/{root_id}"))
    );

    let top = org
        .list_organizational_units_for_parent()
        .parent_id(&root_id)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = top.organizational_units().iter().filter_map(|o| o.name()).collect();
    assert_eq!(names, ["Teams", "Crowd"]);
    let teams = top.organizational_units()[0].id().unwrap().to_string();
    let crowd = top.organizational_units()[1].id().unwrap().to_string();
    let prefix = format!("ou-{}-", &root_id[2..]);
    assert!(teams.starts_with(&prefix) && teams.len() == prefix.len() + 8, "{teams}");

    // 25 OUs under Teams: pages of at most 20 (and short ones), by hand and by paginator.
    let mut token = None;
    let mut ous = Vec::new();
    let mut pages = 0;
    loop {
        let page = org
            .list_organizational_units_for_parent()
            .parent_id(&teams)
            .max_results(20)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.organizational_units().len() <= 20);
        ous.extend(
            page.organizational_units()
                .iter()
                .map(|o| o.name().unwrap().to_string()),
        );
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 2);
    let want: Vec<String> = (1..=25).map(|n| format!("Team{n:02}")).collect();
    assert_eq!(ous, want);
    let pages: Vec<_> = org
        .list_organizational_units_for_parent()
        .parent_id(&teams)
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let by_paginator: usize = pages.iter().map(|p| p.organizational_units().len()).sum();
    assert_eq!(by_paginator, 25);
    assert!(pages.len() > 25 / 3, "{} pages", pages.len());

    // 23 accounts in Crowd, in pages of 5 that are sometimes short.
    let mut token = None;
    let mut accounts = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = org
            .list_accounts_for_parent()
            .parent_id(&crowd)
            .max_results(5)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        sizes.push(page.accounts().len());
        accounts.extend(page.accounts().iter().map(|a| a.id().unwrap().to_string()));
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(accounts.len(), 23);
    assert!(sizes.contains(&4), "{sizes:?}");
    assert_eq!(accounts[0], "200000000026");
    let first = org
        .list_accounts_for_parent()
        .parent_id(&crowd)
        .max_results(1)
        .send()
        .await
        .unwrap();
    let a = &first.accounts()[0];
    assert_eq!(
        (a.name(), a.state().map(|s| s.as_str())),
        (Some("account-26"), Some("ACTIVE"))
    );
    // Team07 holds account 7; the root holds only the (implicit) management account.
    let team07 = org
        .list_organizational_units_for_parent()
        .parent_id(&teams)
        .max_results(10)
        .send()
        .await
        .unwrap()
        .organizational_units()[6]
        .clone();
    assert_eq!(team07.name(), Some("Team07"));
    let in_team07 = org
        .list_accounts_for_parent()
        .parent_id(team07.id().unwrap())
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = in_team07.accounts().iter().filter_map(|a| a.id()).collect();
    assert_eq!(ids, ["200000000007"]);
    let at_root = org.list_accounts_for_parent().parent_id(&root_id).send().await.unwrap();
    let ids: Vec<&str> = at_root.accounts().iter().filter_map(|a| a.id()).collect();
    assert_eq!(ids, ["111111111111"]);
    let leaf = org
        .list_organizational_units_for_parent()
        .parent_id(team07.id().unwrap())
        .send()
        .await
        .unwrap();
    assert!(leaf.organizational_units().is_empty() && leaf.next_token().is_none());

    // Errors.
    let err = org
        .list_organizational_units_for_parent()
        .parent_id(format!("{prefix}zzzzzzzz"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ParentNotFoundException"));
    assert!(err.into_service_error().is_parent_not_found_exception());
    let err = org
        .list_accounts_for_parent()
        .parent_id("r-zzzz")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ParentNotFoundException"));
    for bad in ["bogus", "ou-ab", "222222222222"] {
        let err = org.list_accounts_for_parent().parent_id(bad).send().await.unwrap_err();
        assert_eq!(err.code(), Some("InvalidInputException"), "{bad}");
    }
    let err = org
        .list_organizational_units_for_parent()
        .parent_id(&teams)
        .max_results(21)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));
    let err = org
        .list_organizational_units_for_parent()
        .parent_id(&teams)
        .next_token("forged")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));
    let err = org.list_roots().max_results(0).send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));

    // The same scenario gives the same ids.
    let again = Sim::start(&tree).await;
    let again_org = aws_sdk_organizations::Client::new(&sdk_config(&again, own_credentials()).await);
    let again_roots = again_org.list_roots().send().await.unwrap();
    assert_eq!(again_roots.roots()[0].id(), Some(root_id.as_str()));
    let again_top = again_org
        .list_organizational_units_for_parent()
        .parent_id(&root_id)
        .send()
        .await
        .unwrap();
    assert_eq!(again_top.organizational_units()[0].id(), Some(teams.as_str()));
}

#[tokio::test]
async fn tags_are_listed_per_account_and_replaced_by_the_control_api() {
    let sim = Sim::start(COVERAGE).await;
    let org = org(&sim, own_credentials()).await;
    let tags = |out: aws_sdk_organizations::operation::list_tags_for_resource::ListTagsForResourceOutput| {
        out.tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect::<Vec<_>>()
    };
    let prod = org
        .list_tags_for_resource()
        .resource_id("222222222222")
        .send()
        .await
        .unwrap();
    assert!(prod.next_token().is_none());
    assert_eq!(
        tags(prod),
        [
            ("environment".to_string(), "prod".to_string()),
            ("owner".to_string(), "team-a".to_string())
        ]
    );
    let none = org
        .list_tags_for_resource()
        .resource_id("555555555555")
        .send()
        .await
        .unwrap();
    assert!(none.tags().is_empty());
    let root_id = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let at_root = org.list_tags_for_resource().resource_id(&root_id).send().await.unwrap();
    assert!(at_root.tags().is_empty());
    let err = org
        .list_tags_for_resource()
        .resource_id("000000000001")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("TargetNotFoundException"));
    assert!(err.into_service_error().is_target_not_found_exception());
    let err = org
        .list_tags_for_resource()
        .resource_id("bogus")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));

    let url = sim.control("/_simulator/accounts/555555555555/tags");
    let r = put_json(&url, json!({"owner": "team-c", "cost-center": "42"})).await;
    assert_eq!(r.status(), 200);
    let now = org
        .list_tags_for_resource()
        .resource_id("555555555555")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(now),
        [
            ("cost-center".to_string(), "42".to_string()),
            ("owner".to_string(), "team-c".to_string())
        ]
    );
    // Refused as the scenario file refuses it, with its message.
    let r = put_json(&url, json!({"aws:owner": "x"})).await;
    assert_eq!(r.status(), 400);
    let message = r.json::<serde_json::Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        "tags: tag key \"aws:owner\" is not allowed; the aws: prefix is AWS's"
    );
    let file = Scenario::parse(
        &COVERAGE.replace("tags = { environment = \"dev\" }", "tags = { \"aws:owner\" = \"x\" }"),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        file.ends_with("accounts[4].tags: tag key \"aws:owner\" is not allowed; the aws: prefix is AWS's"),
        "{file}"
    );
    assert_eq!(put_json(&url, json!({"owner": 1})).await.status(), 400);
    assert_eq!(
        put_json(&sim.control("/_simulator/accounts/000000000001/tags"), json!({}))
            .await
            .status(),
        404
    );
    // ListTagsForResource on an account is about that account for faults.
    let r = put_json(
        &sim.control("/_simulator/faults"),
        json!([{"operation": "ListTagsForResource", "kind": "throttling", "account_id": "222222222222"}]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let err = org
        .list_tags_for_resource()
        .resource_id("222222222222")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    org.list_tags_for_resource()
        .resource_id("333333333333")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn roles_are_replaced_by_the_control_api() {
    let sim = Sim::start(COVERAGE).await;
    let arn = role_arn("444444444444", "RootAuditRole");
    assert_eq!(assume_role(&sim, &arn, None).await.unwrap_err().0, "AccessDenied");
    let url = sim.control("/_simulator/accounts/444444444444/roles");
    let r = put_json(
        &url,
        json!(["RootAuditRole", {"name": "Other", "trusts": ["111111111111"]}]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assume_role(&sim, &arn, None).await.unwrap();
    for (body, needle) in [
        (
            json!([{"name": "x y"}]),
            "roles[0]: role name \"x y\" is not an IAM role name",
        ),
        (json!(["A", "a"]), "roles[1]: role \"a\" is listed twice"),
        (
            json!([{"name": "A", "trusts": ["12"]}]),
            "roles[0].trusts[0] \"12\" is not an account id",
        ),
        (
            json!([{"name": "A", "external_id": "x"}]),
            "roles[0].external_id \"x\" is not an external id",
        ),
        (
            json!([{"name": "A", "max_session_duration": 60}]),
            "roles[0].max_session_duration = 60",
        ),
        (json!([{"name": "A", "trust": []}]), "trust"),
        (json!([7]), "expected a role name or a table"),
    ] {
        let r = put_json(&url, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let message = r.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(needle), "{body}: {message}");
    }
    // Refused bodies changed nothing; [] removes every role.
    assume_role(&sim, &arn, None).await.unwrap();
    assert_eq!(put_json(&url, json!([])).await.status(), 200);
    assert_eq!(assume_role(&sim, &arn, None).await.unwrap_err().0, "AccessDenied");
}

#[tokio::test]
async fn a_delegated_administrator_reads_the_organization_and_assumes_root() {
    let sim = Sim::start(COVERAGE).await;
    let org = org(&sim, own_credentials()).await;
    let described = org.describe_organization().send().await.unwrap();
    assert_eq!(
        described.organization().unwrap().master_account_id(),
        Some("111111111111")
    );
    let listed = org.list_accounts().send().await.unwrap();
    assert_eq!(
        listed.accounts().len(),
        7,
        "the listed management account is not listed twice"
    );
    let features = iam(&sim, own_credentials())
        .await
        .list_organizations_features()
        .send()
        .await
        .unwrap();
    assert_eq!(features.organization_id(), Some("o-coverage0001"));
    // AssumeRoot from the delegated administrator: members yes, the management account no.
    let root = assume_root(&sim, "222222222222").await;
    let summary = iam(&sim, root).await.get_account_summary().send().await.unwrap();
    assert_eq!(summary.summary_map().unwrap()[&K::AccountAccessKeysPresent], 1);
    let err = sts(&sim, own_credentials())
        .await
        .assume_root()
        .target_principal("111111111111")
        .task_policy_arn(PolicyDescriptorType::builder().arn(AUDIT).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    let message = err.message().unwrap();
    assert!(message.starts_with(&format!("User: {CALLER_ARN} ")), "{message}");
}

#[tokio::test]
async fn faults_and_latency_reach_the_new_operations() {
    let with_faults = format!(
        "{COVERAGE}\n[latency]\nGetCredentialReport = 300\n\n[[faults]]\noperation = \"AssumeRole\"\nkind = \"throttling\"\naccount_id = \"222222222222\"\n\n[[faults]]\noperation = \"GetAccountSummary\"\nkind = \"server_error\"\naccount_id = \"{CALLER}\"\n\n[[faults]]\noperation = \"ListVirtualMFADevices\"\nkind = \"not_aws\"\ncount = 1\n"
    );
    let sim = Sim::start(&with_faults).await;
    let (code, _) = assume_role(&sim, &role_arn("222222222222", "RootAuditRole"), None)
        .await
        .unwrap_err();
    assert_eq!(code, "Throttling");
    let role = assume_role(&sim, &role_arn("111111111111", "RootAuditRole"), None)
        .await
        .unwrap();
    // The caller's own GetAccountSummary is about its account; a role session's is not.
    let err = iam(&sim, own_credentials())
        .await
        .get_account_summary()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    let iam_role = iam(&sim, role).await;
    iam_role.get_account_summary().send().await.unwrap();
    let err = iam_role.list_virtual_mfa_devices().send().await.unwrap_err();
    assert_eq!(err.code(), None, "not_aws");
    iam_role.list_virtual_mfa_devices().send().await.unwrap();
    iam_role.generate_credential_report().send().await.unwrap();
    let started = std::time::Instant::now();
    iam_role.get_credential_report().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.running.calls("GetCredentialReport"), 1);
    assert_eq!(sim.running.calls("AssumeRole"), 2);
}
