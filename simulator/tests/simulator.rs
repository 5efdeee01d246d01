//! The simulator answers as AWS does, seen through the AWS SDK for Rust and raw HTTP.

mod common;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_org_simulator::Scenario;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_sts::types::PolicyDescriptorType;
use common::{DEMO, Sim, put_json};
use serde_json::json;

const AUDIT: &str = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";

async fn sdk_config(sim: &Sim, creds: Credentials) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(sim.running.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

fn management() -> Credentials {
    Credentials::new("AKIDTESTEXPORTER0001", "test-secret", None, None, "test")
}

async fn assume_root(sim: &Sim, target: &str, seconds: i32) -> Result<Credentials, String> {
    let sts = aws_sdk_sts::Client::new(&sdk_config(sim, management()).await);
    let out = sts
        .assume_root()
        .target_principal(target)
        .task_policy_arn(PolicyDescriptorType::builder().arn(AUDIT).build())
        .duration_seconds(seconds)
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("no code").to_string())?;
    let c = out.credentials().unwrap();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().into()),
        None,
        "root",
    ))
}

async fn root_iam(sim: &Sim, creds: Credentials) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(sim, creds).await)
}

#[tokio::test]
async fn root_sessions_are_distinct_bound_to_their_account_and_to_the_task_policy() {
    let sim = Sim::start(DEMO).await;
    let a = assume_root(&sim, "222222222222", 120).await.unwrap();
    let b = assume_root(&sim, "333333333333", 120).await.unwrap();
    assert_ne!(a.access_key_id(), b.access_key_id());
    assert_ne!(a.session_token(), b.session_token());
    let iam_b = root_iam(&sim, b.clone()).await;
    let summary = iam_b.get_account_summary().send().await.unwrap();
    let map = summary.summary_map().unwrap();
    assert_eq!(map[&aws_sdk_iam::types::SummaryKeyType::AccountAccessKeysPresent], 1);
    let sts_b = aws_sdk_sts::Client::new(&sdk_config(&sim, b).await);
    let me = sts_b.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::333333333333:root"));
    // Outside the task policy.
    let err = iam_b.list_users().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    // Another user than root.
    let err = iam_b.list_access_keys().user_name("alice").send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    // Organizations refuses a root session.
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, a).await);
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn assume_root_refuses_what_aws_refuses() {
    let sim = Sim::start(DEMO).await;
    for target in ["111111111111", "000000000001", "210987654321"] {
        assert_eq!(
            assume_root(&sim, target, 60).await.unwrap_err(),
            "AccessDenied",
            "{target}"
        );
    }
    assert_eq!(
        assume_root(&sim, "222222222222", 901).await.unwrap_err(),
        "ValidationError"
    );
    assert_eq!(
        assume_root(&sim, "not-an-account", 60).await.unwrap_err(),
        "ValidationError"
    );
    put_json(
        &sim.control("/_simulator/features"),
        json!({"enabled": ["RootSessions"]}),
    )
    .await;
    assert_eq!(assume_root(&sim, "222222222222", 60).await.unwrap_err(), "AccessDenied");
    // Root credentials cannot call AssumeRoot.
    put_json(
        &sim.control("/_simulator/features"),
        json!({"enabled": ["RootCredentialsManagement"]}),
    )
    .await;
    let root = assume_root(&sim, "222222222222", 60).await.unwrap();
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sim, root).await);
    let err = sts
        .assume_root()
        .target_principal("333333333333")
        .task_policy_arn(PolicyDescriptorType::builder().arn(AUDIT).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
}

#[tokio::test]
async fn temporary_credentials_need_their_token_and_expire() {
    let sim = Sim::start(DEMO).await;
    let c = assume_root(&sim, "222222222222", 1).await.unwrap();
    let without_token = Credentials::new(c.access_key_id(), c.secret_access_key(), None, None, "no token");
    let err = root_iam(&sim, without_token)
        .await
        .get_account_summary()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
    let iam = root_iam(&sim, c).await;
    iam.get_account_summary().send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = iam.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ExpiredToken"));
}

#[tokio::test]
async fn scp_blocked_account_opens_a_session_whose_iam_calls_are_denied() {
    let sim = Sim::start(DEMO).await;
    let c = assume_root(&sim, "135791357913", 60).await.unwrap();
    let err = root_iam(&sim, c).await.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    assert!(err.message().unwrap().contains("service control policy"));
}

#[tokio::test]
async fn list_accounts_validates_max_results_and_tokens() {
    let sim = Sim::start(DEMO).await;
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, management()).await);
    let err = org.list_accounts().max_results(21).send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));
    let err = org.list_accounts().next_token("forged").send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));
    let mut pages = 0;
    let mut total = 0;
    let mut token = None;
    loop {
        let page = org
            .list_accounts()
            .max_results(4)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.accounts().len() <= 4);
        total += page.accounts().len();
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(total, 13);
    assert!(pages >= 4);
    let described = org.describe_organization().send().await.unwrap();
    assert_eq!(
        described.organization().unwrap().master_account_id(),
        Some("111111111111")
    );
}

#[tokio::test]
async fn caller_keys_can_be_restricted_and_requests_must_be_signed_for_the_right_service() {
    let restricted = DEMO.replace(
        "management_account_name = \"management\"",
        "caller_access_key_ids = [\"AKIDALLOWED000000001\"]",
    );
    assert_ne!(restricted, DEMO);
    let sim = Sim::start(&restricted).await;
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, management()).await);
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let allowed = Credentials::new("AKIDALLOWED000000001", "s", None, None, "test");
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, allowed).await);
    org.list_accounts().send().await.unwrap();

    let client = reqwest::Client::new();
    let signed_for = |service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDALLOWED000000001/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            "ab".repeat(32)
        )
    };
    let r = client
        .post(sim.running.endpoint_url())
        .header("authorization", signed_for("iam"))
        .header("x-amz-target", "AWSOrganizationsV20161128.ListAccounts")
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["__type"], "SignatureDoesNotMatch");
    let r = client
        .post(sim.running.endpoint_url())
        .header("authorization", signed_for("sts"))
        .form(&[("Action", "Frobnicate"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("<Code>InvalidAction</Code>"));
}

#[tokio::test]
async fn control_api_rejects_unknown_accounts_and_bad_bodies() {
    let sim = Sim::start(DEMO).await;
    let r = put_json(
        &sim.control("/_simulator/accounts/000000000000/root"),
        json!({"mfa": []}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("000000000000"));
    let r = put_json(
        &sim.control("/_simulator/accounts/222222222222/root"),
        json!({"mfa": ["phone"]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("phone"));
    let r = put_json(
        &sim.control("/_simulator/accounts/222222222222/assume_root"),
        json!({"mode": "maybe"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = put_json(&sim.control("/_simulator/features"), json!({"enabled": ["Nope"]})).await;
    assert_eq!(r.status(), 400);
    let calls: serde_json::Value = reqwest::get(sim.control("/_simulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(calls.is_object());
}

#[tokio::test]
async fn calls_are_counted_per_operation_in_process_and_over_the_control_api() {
    let sim = Sim::start(DEMO).await;
    assert_eq!(sim.running.calls("AssumeRoot"), 0);
    assert!(sim.running.all_calls().is_empty());
    assume_root(&sim, "222222222222", 60).await.unwrap();
    // Refused calls are answered, and counted, too.
    assume_root(&sim, "111111111111", 60).await.unwrap_err();
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, management()).await);
    org.describe_organization().send().await.unwrap();
    assert_eq!(sim.running.calls("AssumeRoot"), 2);
    assert_eq!(sim.running.calls("DescribeOrganization"), 1);
    assert_eq!(sim.running.calls("ListAccounts"), 0);
    let all = sim.running.all_calls();
    assert_eq!(all.len(), 2, "{all:?}");
    let over_http: std::collections::BTreeMap<String, u64> = reqwest::get(sim.control("/_simulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, all);
}

#[tokio::test]
async fn foreign_session_credentials_act_as_the_management_account() {
    // E.g. an SSO session of the person running the tests: not issued here, so the caller is the
    // management account, token and all.
    let sim = Sim::start(DEMO).await;
    let sso = Credentials::new(
        "ASIAFOREIGNSESSION01",
        "secret",
        Some("foreign-token".into()),
        None,
        "sso",
    );
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, sso).await);
    let described = org.describe_organization().send().await.unwrap();
    assert_eq!(described.organization().unwrap().id(), Some("o-exampleorg1"));
}

#[tokio::test]
async fn scenario_fixtures_are_the_demo_with_other_features_and_refuse_assume_root() {
    let fixtures = [
        (
            include_str!("../../tests/fixtures/scenarios/no-root-access.toml"),
            r#"features = ["RootSessions"]"#,
        ),
        (
            include_str!("../../tests/fixtures/scenarios/no-features.toml"),
            "features = []",
        ),
    ];
    for (text, features) in fixtures {
        // A comment at the top, then the demo with its features line changed.
        let start = text.find("\n\n").expect("a comment, then a blank line") + 2;
        assert!(
            text[..start].lines().all(|l| l.starts_with('#') || l.is_empty()),
            "{text}"
        );
        let expected = DEMO.replace(r#"features = ["RootCredentialsManagement", "RootSessions"]"#, features);
        assert_ne!(expected, DEMO);
        assert_eq!(&text[start..], expected, "{features}");
        let sim = Sim::start(text).await;
        assert_eq!(
            assume_root(&sim, "222222222222", 60).await.unwrap_err(),
            "AccessDenied",
            "{features}"
        );
    }
}

#[test]
fn appended_scenario_fixtures_are_the_demo_plus_one_table() {
    let fixtures = [
        (
            include_str!("../../tests/fixtures/scenarios/slow-discovery.toml"),
            "\n[latency]\noperations = { DescribeOrganization = 1500 }\n",
        ),
        (
            include_str!("../../tests/fixtures/scenarios/paged-150.toml"),
            "\n[generate]\naccounts = 137\nseed = 7\naccess_keys = 0.1\npassword = 0.5\nmfa = 0.5\nsigning_certificates = 0.05\n",
        ),
    ];
    for (text, tail) in fixtures {
        let start = text.find("\n\n").expect("a comment, then a blank line") + 2;
        assert!(
            text[..start].lines().all(|l| l.starts_with('#') || l.is_empty()),
            "{text}"
        );
        assert_eq!(&text[start..], format!("{DEMO}{tail}"), "{tail}");
        Scenario::parse(text, "fixture").expect("the fixture is a valid scenario");
    }
}
