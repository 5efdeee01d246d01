//! Several organizations in one world (`start_many`, `--scenario A --scenario B`): caller keys
//! belong to their scenario's organization, a session acts in its account's organization, a
//! cross-organization AssumeRole needs the role's trust (and external id), the control API reaches
//! every organization, and scenarios that clash are refused. With the AWS SDK, over HTTP, against
//! the fixture scenarios the exporter's own tests use (tests/fixtures/scenarios/org-a.toml and
//! org-b.toml).

mod common;

use std::process::{Command, Stdio};

use aws_credential_types::Credentials;
use aws_org_simulator::{Scenario, ScenarioError, ServeError};
use aws_sdk_iam::types::SummaryKeyType as K;
use aws_sdk_sts::error::ProvideErrorMetadata;
use common::{Sim, iam, org, put_json, sdk_config, sts};
use serde_json::json;

const ORG_A: &str = include_str!("../../tests/fixtures/scenarios/org-a.toml");
const ORG_B: &str = include_str!("../../tests/fixtures/scenarios/org-b.toml");
const ORG_A_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/scenarios/org-a.toml");
const ORG_B_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/scenarios/org-b.toml");
const BIN: &str = env!("CARGO_BIN_EXE_aws-org-simulator");

/// Org A's caller key (the exporter's tests' key) and org B's.
const KEY_A: &str = "AKIDTESTEXPORTER0001";
const KEY_B: &str = "AKIDTESTORGBCALLER01";
const ACCESS_ROLE: &str = "arn:aws:iam::210000000000:role/aws-root-exporter-org-access";
const EXTERNAL_ID: &str = "org-b-external";

fn key(id: &str) -> Credentials {
    Credentials::new(id, "any-secret", None, None, "test")
}

/// AssumeRole with `creds` as `orgs-test`: the session's credentials, or the error's code and
/// message.
async fn assume_role(
    sim: &Sim,
    creds: Credentials,
    arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, (String, String)> {
    common::assume_role_as(sim, creds, arn, "orgs-test", external_id, None)
        .await
        .map(|(c, _)| c)
}

/// AssumeRoot (audit task policy) with `creds`: the root session, or the error's code and
/// message.
async fn assume_root(sim: &Sim, creds: Credentials, target: &str) -> Result<Credentials, (String, String)> {
    common::assume_root_as(sim, creds, target, None).await.map_err(|e| {
        (
            e.code().unwrap_or("no code").to_string(),
            e.message().unwrap_or("").to_string(),
        )
    })
}

/// `GetAccountSummary`'s map as `creds` read it.
async fn summary(sim: &Sim, creds: Credentials) -> std::collections::HashMap<K, i32> {
    let out = iam(sim, creds).await.get_account_summary().send().await.unwrap();
    out.summary_map().unwrap().clone()
}

async fn account_ids(sim: &Sim, creds: Credentials) -> Vec<String> {
    let out = org(sim, creds).await.list_accounts().send().await.unwrap();
    let mut ids: Vec<String> = out.accounts().iter().map(|a| a.id().unwrap().to_string()).collect();
    ids.sort();
    ids
}

async fn two_orgs() -> Sim {
    Sim::start_many(&[ORG_A, ORG_B]).await
}

/// The session of org B's access role, assumed from org A's caller with the external id.
async fn access_session(sim: &Sim) -> Credentials {
    assume_role(sim, key(KEY_A), ACCESS_ROLE, Some(EXTERNAL_ID))
        .await
        .unwrap()
}

#[tokio::test]
async fn each_caller_key_acts_in_its_own_organization() {
    let sim = two_orgs().await;
    assert_eq!(sim.running.organization_ids(), ["o-exampleorga", "o-exampleorgb"]);
    let me = sts(&sim, key(KEY_A)).await.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("111111111111"));
    assert_eq!(
        account_ids(&sim, key(KEY_A)).await,
        ["110000000001", "110000000002", "110000000003", "111111111111"]
    );
    let me = sts(&sim, key(KEY_B)).await.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("210000000000"));
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::210000000000:assumed-role/aws-root-exporter/simulated")
    );
    assert_eq!(
        account_ids(&sim, key(KEY_B)).await,
        ["210000000000", "210000000001", "210000000002", "210000000003"]
    );
    let described = org(&sim, key(KEY_B))
        .await
        .describe_organization()
        .send()
        .await
        .unwrap();
    let o = described.organization().unwrap();
    assert_eq!(
        (o.id(), o.master_account_id()),
        (Some("o-exampleorgb"), Some("210000000000"))
    );
    let features = iam(&sim, key(KEY_B))
        .await
        .list_organizations_features()
        .send()
        .await
        .unwrap();
    assert_eq!(features.organization_id(), Some("o-exampleorgb"));
    // Org B's caller reaches its members, not org A's.
    assert!(assume_root(&sim, key(KEY_B), "210000000001").await.is_ok());
    let (code, message) = assume_root(&sim, key(KEY_B), "110000000001").await.unwrap_err();
    assert_eq!(code, "AccessDenied");
    assert!(message.contains("not a member of the organization"), "{message}");
    // Org A lists its keys: any other key is refused, as with one scenario.
    let err = sts(&sim, key("AKIDSOMEONEELSE00001"))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
}

#[tokio::test]
async fn an_unlisted_key_is_the_first_scenarios_caller() {
    // Without caller_access_key_ids in the first scenario, any other key is its caller.
    let open_a = ORG_A.replace("caller_access_key_ids = [\"AKIDTESTEXPORTER0001\"]\n", "");
    assert_ne!(open_a, ORG_A);
    let sim = Sim::start_many(&[&open_a, ORG_B]).await;
    let me = sts(&sim, key("AKIDSOMEONEELSE00001"))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.account(), Some("111111111111"));
    let me = sts(&sim, key(KEY_B)).await.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("210000000000"));
}

#[tokio::test]
async fn a_cross_organization_role_needs_its_trust_and_external_id() {
    let sim = two_orgs().await;
    let session = access_session(&sim).await;
    let me = sts(&sim, session).await.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("210000000000"));
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::210000000000:assumed-role/aws-root-exporter-org-access/orgs-test")
    );
    let denied = |caller: &str, target: &str| {
        format!(
            "User: arn:aws:sts::{caller}:assumed-role/aws-root-exporter/simulated is not authorized to perform: sts:AssumeRole on resource: {target}"
        )
    };
    // Without the external id, with a wrong one: denied as AWS denies, alike.
    for external_id in [None, Some("wrong-external-id")] {
        let (code, message) = assume_role(&sim, key(KEY_A), ACCESS_ROLE, external_id)
            .await
            .unwrap_err();
        assert_eq!(code, "AccessDenied", "{external_id:?}");
        assert_eq!(message, denied("111111111111", ACCESS_ROLE));
    }
    // The role trusts org A's caller account only: not org B's own caller.
    let (code, message) = assume_role(&sim, key(KEY_B), ACCESS_ROLE, Some(EXTERNAL_ID))
        .await
        .unwrap_err();
    assert_eq!(code, "AccessDenied");
    assert_eq!(message, denied("210000000000", ACCESS_ROLE));
    // A role that does not exist, a role in an account of no organization: denied alike.
    for arn in [
        "arn:aws:iam::210000000000:role/no-such-role",
        "arn:aws:iam::999999999999:role/aws-root-exporter-org-access",
    ] {
        let (code, message) = assume_role(&sim, key(KEY_A), arn, Some(EXTERNAL_ID)).await.unwrap_err();
        assert_eq!(code, "AccessDenied", "{arn}");
        assert_eq!(message, denied("111111111111", arn));
    }
    // Org B's member roles trust org B's management account, not org A's caller.
    let member_role = "arn:aws:iam::210000000001:role/RootAuditRole";
    let (code, _) = assume_role(&sim, key(KEY_A), member_role, None).await.unwrap_err();
    assert_eq!(code, "AccessDenied");
    // Counted once per call, in every organization together.
    assert_eq!(sim.running.calls("AssumeRole"), 7);
}

#[tokio::test]
async fn the_cross_organization_session_acts_in_the_other_organization() {
    let sim = two_orgs().await;
    let session = access_session(&sim).await;
    // Organizations answers for org B.
    assert_eq!(
        account_ids(&sim, session.clone()).await,
        ["210000000000", "210000000001", "210000000002", "210000000003"]
    );
    let roots = org(&sim, session.clone()).await.list_roots().send().await.unwrap();
    assert!(roots.roots()[0].arn().unwrap().contains("o-exampleorgb"), "{roots:?}");
    let features = iam(&sim, session.clone())
        .await
        .list_organizations_features()
        .send()
        .await
        .unwrap();
    assert_eq!(features.organization_id(), Some("o-exampleorgb"));
    // AssumeRoot reaches org B's members, and not org A's (its caller's former organization),
    // nor org B's management account.
    let root = assume_root(&sim, session.clone(), "210000000001").await.unwrap();
    let map = summary(&sim, root).await;
    assert_eq!((map[&K::AccountAccessKeysPresent], map[&K::AccountMfaEnabled]), (1, 1));
    for (target, why) in [
        ("110000000001", "not a member of the organization"),
        ("210000000000", "management account"),
    ] {
        let (code, message) = assume_root(&sim, session.clone(), target).await.unwrap_err();
        assert_eq!(code, "AccessDenied", "{target}");
        assert!(
            message.starts_with(
                "User: arn:aws:sts::210000000000:assumed-role/aws-root-exporter-org-access/orgs-test is not authorized to perform: sts:AssumeRoot"
            ) && message.contains(why),
            "{target}: {message}"
        );
    }
    // The management account's own root, read with the session's own credentials.
    assert_eq!(summary(&sim, session.clone()).await[&K::AccountAccessKeysPresent], 1);
    // Role chaining into org B's member roles, which trust org B's management account.
    let member = assume_role(&sim, session, "arn:aws:iam::210000000001:role/RootAuditRole", None)
        .await
        .unwrap();
    assert_eq!(summary(&sim, member.clone()).await[&K::AccountAccessKeysPresent], 1);
    // A member's audit role reads its own account only.
    let err = org(&sim, member.clone())
        .await
        .list_accounts()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let (code, _) = assume_root(&sim, member, "210000000002").await.unwrap_err();
    assert_eq!(code, "AccessDenied");
    // Org A's own caller still acts in org A, and cannot reach org B's members directly.
    assert!(assume_root(&sim, key(KEY_A), "110000000002").await.is_ok());
    let (code, _) = assume_root(&sim, key(KEY_A), "210000000001").await.unwrap_err();
    assert_eq!(code, "AccessDenied");
}

#[tokio::test]
async fn the_control_api_reaches_every_organization() {
    let sim = two_orgs().await;
    // An account of org B, by its id.
    let resp = put_json(
        &sim.control("/_simulator/accounts/210000000003/root"),
        json!({"mfa": [], "password": false, "access_keys": ["Active"], "signing_certificates": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let session = access_session(&sim).await;
    let root = assume_root(&sim, session.clone(), "210000000003").await.unwrap();
    assert_eq!(summary(&sim, root).await[&K::AccountAccessKeysPresent], 1);
    // An account no organization has: 404.
    let resp = put_json(
        &sim.control("/_simulator/accounts/999999999999/assume_root"),
        json!({"mode": "access_denied"}),
    )
    .await;
    assert_eq!(resp.status(), 404);

    // Features of one organization, by ?organization_id=: org B loses centralized root access,
    // org A keeps it.
    let resp = put_json(
        &sim.control("/_simulator/features?organization_id=o-exampleorgb"),
        json!({"enabled": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (code, message) = assume_root(&sim, session, "210000000001").await.unwrap_err();
    assert_eq!(code, "AccessDenied");
    assert!(message.contains("RootCredentialsManagement"), "{message}");
    assert!(assume_root(&sim, key(KEY_A), "110000000001").await.is_ok());
    let resp = put_json(
        &sim.control("/_simulator/features?organization_id=o-nosuchorg0"),
        json!({"enabled": []}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("\"o-nosuchorg0\"") && message.contains("allowed: o-exampleorga, o-exampleorgb"),
        "{message}"
    );
    let resp = put_json(
        &sim.control("/_simulator/features?organisation=o-exampleorgb"),
        json!({"enabled": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);

    // Faults of one organization: calls made from it.
    let resp = put_json(
        &sim.control("/_simulator/faults?organization_id=o-exampleorgb"),
        json!([{"operation": "ListAccounts", "kind": "access_denied"}]),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let err = org(&sim, key(KEY_B)).await.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert_eq!(account_ids(&sim, key(KEY_A)).await.len(), 4);
    // A fault's account must be of that organization.
    let resp = put_json(
        &sim.control("/_simulator/faults?organization_id=o-exampleorgb"),
        json!([{"operation": "AssumeRoot", "kind": "throttling", "account_id": "110000000001"}]),
    )
    .await;
    assert_eq!(resp.status(), 400);

    // An access role only where the Organizations API answers.
    let resp = put_json(
        &sim.control("/_simulator/accounts/210000000002/roles"),
        json!([{"name": "Org", "organization_access": true}]),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("organization_access = true in account 210000000002"),
        "{body}"
    );

    // Calls are counted over every organization.
    let calls: serde_json::Value = reqwest::get(sim.control("/_simulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["ListAccounts"], 2);
    assert_eq!(calls["AssumeRoot"], 3);
}

#[tokio::test]
async fn rate_limits_are_each_organizations_own() {
    let limited_b = format!("{ORG_B}\n[rate_limits]\nListAccounts = {{ rate = 0.001, burst = 1 }}\n");
    let sim = Sim::start_many(&[ORG_A, &limited_b]).await;
    assert_eq!(account_ids(&sim, key(KEY_B)).await.len(), 4);
    let err = org(&sim, key(KEY_B)).await.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    // Org A's caller is not paced by org B's bucket.
    for _ in 0..3 {
        assert_eq!(account_ids(&sim, key(KEY_A)).await.len(), 4);
    }
    assert_eq!(sim.running.throttled("ListAccounts"), 1);
}

#[tokio::test]
async fn queues_of_the_same_name_are_kept_apart_by_their_owner() {
    let events = "\n[events]\nqueue_name = \"root-events\"\n";
    let (a, b) = (format!("{ORG_A}{events}"), format!("{ORG_B}{events}"));
    let sim = Sim::start_many(&[&a, &b]).await;
    let urls = sim.running.queue_urls();
    let endpoint = sim.running.endpoint_url();
    assert_eq!(
        urls,
        [
            format!("{endpoint}/111111111111/root-events"),
            format!("{endpoint}/210000000000/root-events")
        ]
    );
    assert_eq!(sim.running.queue_url().as_ref(), Some(&urls[0]));
    // GetQueueUrl: the caller's organization's queue, or the owner's named.
    let sqs_a = aws_sdk_sqs::Client::new(&sdk_config(&sim, key(KEY_A)).await);
    let got = sqs_a.get_queue_url().queue_name("root-events").send().await.unwrap();
    assert_eq!(got.queue_url(), Some(urls[0].as_str()));
    let got = sqs_a
        .get_queue_url()
        .queue_name("root-events")
        .queue_owner_aws_account_id("210000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_url(), Some(urls[1].as_str()));
    let sqs_b = aws_sdk_sqs::Client::new(&sdk_config(&sim, key(KEY_B)).await);
    let got = sqs_b.get_queue_url().queue_name("root-events").send().await.unwrap();
    assert_eq!(got.queue_url(), Some(urls[1].as_str()));

    // A change in org B goes to org B's queue only.
    let resp = put_json(
        &sim.control("/_simulator/accounts/210000000003/root"),
        json!({"mfa": [], "password": false, "access_keys": ["Active"], "signing_certificates": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got = sqs_a
        .receive_message()
        .queue_url(&urls[1])
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 1);
    assert!(got.messages()[0].body().unwrap().contains("210000000003"));
    let got = sqs_a.receive_message().queue_url(&urls[0]).send().await.unwrap();
    assert!(got.messages().is_empty());
    // Org B's access role reads org B's queue too (the exporter reads each organization's queue
    // with that organization's session); a member's audit role reads no queue.
    let session = access_session(&sim).await;
    let sqs_session = aws_sdk_sqs::Client::new(&sdk_config(&sim, session.clone()).await);
    let got = sqs_session
        .get_queue_url()
        .queue_name("root-events")
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_url(), Some(urls[1].as_str()));
    sqs_session.receive_message().queue_url(&urls[1]).send().await.unwrap();
    let member = assume_role(&sim, session, "arn:aws:iam::210000000001:role/RootAuditRole", None)
        .await
        .unwrap();
    let err = aws_sdk_sqs::Client::new(&sdk_config(&sim, member).await)
        .receive_message()
        .queue_url(&urls[1])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));

    // GET /_simulator/queue: the first queue, or the one ?queue_url= names.
    let queue = |query: String| {
        let url = sim.control(&format!("/_simulator/queue{query}"));
        async move {
            let resp = reqwest::get(url).await.unwrap();
            (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, first) = queue(String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (first["queue_url"].as_str(), first["sent_total"].as_u64()),
        (Some(urls[0].as_str()), Some(0))
    );
    let (status, second) = queue(format!("?queue_url={}", urls[1])).await;
    assert_eq!(status, 200);
    assert_eq!(
        (second["queue_url"].as_str(), second["sent_total"].as_u64()),
        (Some(urls[1].as_str()), Some(1))
    );
    let (status, unknown) = queue(format!("?queue_url={endpoint}/999999999999/root-events")).await;
    assert_eq!(status, 404);
    assert!(unknown["error"].as_str().unwrap().contains(&urls[1]), "{unknown}");
    // A raw message into org B's queue.
    let resp = reqwest::Client::new()
        .post(sim.control(&format!("/_simulator/queue/messages?queue_url={}", urls[1])))
        .json(&json!({"body": "{}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, second) = queue(format!("?queue_url={}", urls[1])).await;
    assert_eq!(second["sent_total"], 2);
}

fn parse(text: &str, origin: &str) -> Scenario {
    Scenario::parse(text, origin).unwrap()
}

async fn start_many(scenarios: &[Scenario]) -> Result<aws_org_simulator::RunningSimulator, ServeError> {
    aws_org_simulator::start_many(
        scenarios,
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        std::future::ready(()),
    )
    .await
}

#[tokio::test]
async fn scenarios_that_clash_are_refused_naming_both() {
    let (a, b) = (parse(ORG_A, "org-a.toml"), parse(ORG_B, "org-b.toml"));
    // An account id of org A's in org B.
    let clash = parse(&ORG_B.replace("210000000003", "110000000002"), "clash.toml");
    let Err(ServeError::Scenario(e @ ScenarioError::Conflict { .. })) = start_many(&[a.clone(), clash]).await else {
        panic!("a shared account id is refused");
    };
    let line = e.to_string();
    assert_eq!(
        line,
        "scenarios org-a.toml and clash.toml: account id 110000000002 is in both; account ids are unique across organizations"
    );
    // The same organization id.
    let same_org = parse(&ORG_B.replace("o-exampleorgb", "o-exampleorga"), "same-org.toml");
    let Err(ServeError::Scenario(e)) = start_many(&[a.clone(), same_org]).await else {
        panic!("a shared organization id is refused");
    };
    assert!(
        e.to_string().contains("organization id o-exampleorga is in both"),
        "{e}"
    );
    // The same caller key.
    let same_key = parse(&ORG_B.replace(KEY_B, KEY_A), "same-key.toml");
    let Err(ServeError::Scenario(e)) = start_many(&[a.clone(), same_key]).await else {
        panic!("a shared caller key is refused");
    };
    assert!(
        e.to_string().contains(&format!("caller access key {KEY_A} is in both")),
        "{e}"
    );
    // A key listed twice in one scenario is no clash, alone or with others.
    let twice = ORG_A.replace(
        "caller_access_key_ids = [\"AKIDTESTEXPORTER0001\"]",
        "caller_access_key_ids = [\"AKIDTESTEXPORTER0001\", \"AKIDTESTEXPORTER0001\"]",
    );
    assert_ne!(twice, ORG_A);
    let twice = parse(&twice, "twice.toml");
    assert!(start_many(&[twice.clone(), b.clone()]).await.is_ok());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let alone = aws_org_simulator::start(
        &twice,
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        async {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();
    assert_eq!(alone.organization_ids(), ["o-exampleorga"]);
    drop(tx);
    // No scenario at all.
    assert!(matches!(start_many(&[]).await, Err(ServeError::NoScenario)));
    // The two fixtures go together.
    assert!(start_many(&[a, b]).await.is_ok());
}

#[tokio::test]
async fn the_binary_serves_several_scenarios_and_refuses_a_clash_with_one_line() {
    let mut child = Command::new(BIN)
        .args(["--scenario", ORG_A_PATH, "--scenario", ORG_B_PATH])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("simulator listening on ")
        .expect(&line)
        .to_string();
    let creds = key(KEY_B);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await;
    let me = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.account(), Some("210000000000"));
    child.kill().unwrap();
    child.wait().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let clash = dir.path().join("clash.toml");
    std::fs::write(&clash, ORG_B.replace("210000000001", "110000000001")).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["--scenario", ORG_A_PATH, "--scenario"])
            .arg(&clash)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: scenarios ")
            && stderr.contains("org-a.toml and ")
            && stderr.contains("clash.toml: account id 110000000001 is in both"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
