//! Helpers for the simulator's tests: a simulator on loopback, the control API, SDK clients.
#![allow(dead_code)]

use aws_org_simulator::{RunningSimulator, Scenario};

/// The demo organization of the workspace (`config/demo-org.toml`).
pub const DEMO: &str = include_str!("../../../config/demo-org.toml");

/// A simulator serving on 127.0.0.1 until the value is dropped.
pub struct Sim {
    pub running: RunningSimulator,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Sim {
    pub async fn start(scenario_toml: &str) -> Sim {
        let scenario = Scenario::parse(scenario_toml, "test scenario").expect("test scenario parses");
        Sim::serve(&[scenario]).await
    }

    /// Several organizations in one world, one per scenario text (the first is the
    /// organization of any caller key no scenario's `caller_access_key_ids` lists); the
    /// scenarios are named `test scenario 1`, `test scenario 2`... in errors.
    pub async fn start_many(scenario_tomls: &[&str]) -> Sim {
        let scenarios: Vec<Scenario> = scenario_tomls
            .iter()
            .enumerate()
            .map(|(i, text)| Scenario::parse(text, &format!("test scenario {}", i + 1)).expect("test scenario parses"))
            .collect();
        Sim::serve(&scenarios).await
    }

    async fn serve(scenarios: &[Scenario]) -> Sim {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = aws_org_simulator::start_many(
            scenarios,
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            async {
                let _ = rx.await;
            },
        )
        .await
        .expect("the scenarios go together and the simulator binds loopback");
        Sim { running, _stop: tx }
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}{path}", self.running.control_url())
    }
}

pub async fn put_json(url: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .json(&body)
        .send()
        .await
        .expect("control API answers")
}

/// An SDK configuration for the simulator with these credentials, retries off.
pub async fn sdk_config(sim: &Sim, creds: aws_credential_types::Credentials) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sim.running.endpoint_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// The exporter's own credentials (not issued by the simulator).
pub fn own_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("AKIDTESTEXPORTER0001", "test-secret", None, None, "test")
}

/// The root-task policy of an audit.
pub const AUDIT: &str = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";

/// A root session in `target` for the audit policy, asked with the exporter's own credentials;
/// the error code when AssumeRoot refuses.
pub async fn assume_root(sim: &Sim, target: &str, seconds: i32) -> Result<aws_credential_types::Credentials, String> {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    assume_root_as(sim, own_credentials(), target, Some(seconds))
        .await
        .map_err(|e| e.code().unwrap_or("no code").to_string())
}

/// A root session in `target` for the audit policy, asked with `creds` (for `seconds`, or AWS's
/// default); the SDK's error (code, message, raw response) when AssumeRoot refuses.
pub async fn assume_root_as(
    sim: &Sim,
    creds: aws_credential_types::Credentials,
    target: &str,
    seconds: Option<i32>,
) -> Result<
    aws_credential_types::Credentials,
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_root::AssumeRootError>,
> {
    use aws_sdk_sts::types::PolicyDescriptorType;
    let out = sts(sim, creds)
        .await
        .assume_root()
        .target_principal(target)
        .task_policy_arn(PolicyDescriptorType::builder().arn(AUDIT).build())
        .set_duration_seconds(seconds)
        .send()
        .await?;
    Ok(session(out.credentials().unwrap(), "root"))
}

/// AssumeRole with `creds` as `session_name`: the session's credentials and the whole answer, or
/// the error's code and message.
pub async fn assume_role_as(
    sim: &Sim,
    creds: aws_credential_types::Credentials,
    arn: &str,
    session_name: &str,
    external_id: Option<&str>,
    seconds: Option<i32>,
) -> Result<
    (
        aws_credential_types::Credentials,
        aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
    ),
    (String, String),
> {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let out = sts(sim, creds)
        .await
        .assume_role()
        .role_arn(arn)
        .role_session_name(session_name)
        .set_external_id(external_id.map(String::from))
        .set_duration_seconds(seconds)
        .send()
        .await
        .map_err(|e| {
            (
                e.code().unwrap_or("no code").to_string(),
                e.message().unwrap_or("").to_string(),
            )
        })?;
    Ok((session(out.credentials().unwrap(), "role"), out))
}

/// Clients of the simulator's STS, IAM and Organizations with `creds`.
pub async fn sts(sim: &Sim, creds: aws_credential_types::Credentials) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&sdk_config(sim, creds).await)
}

pub async fn iam(sim: &Sim, creds: aws_credential_types::Credentials) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(sim, creds).await)
}

pub async fn org(sim: &Sim, creds: aws_credential_types::Credentials) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::new(&sdk_config(sim, creds).await)
}

/// The SDK credentials of a session STS issued.
pub fn session(c: &aws_sdk_sts::types::Credentials, name: &'static str) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().into()),
        None,
        name,
    )
}
