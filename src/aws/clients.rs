//! The one place that builds AWS SDK clients: from the standard AWS configuration chain
//! (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, instance and web-identity credentials, ...)
//! or, for `demo`, from an explicit endpoint and static credentials.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::activity::OwnSessions;
use crate::config::Config;
use crate::config::OrganizationRole;

/// Where AWS is when it is not found the usual way (the in-process simulator of `demo`).
#[derive(Debug, Clone)]
pub struct EndpointOverride {
    pub url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Clients for the management (or delegated administrator) account's own credentials.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub organizations: aws_sdk_organizations::Client,
    /// Regional STS: AssumeRoot is not served by the global endpoint.
    pub sts: aws_sdk_sts::Client,
    /// IAM with the exporter's own credentials (`ListOrganizationsFeatures`).
    pub iam: aws_sdk_iam::Client,
    /// SQS with the exporter's own credentials (the events queue).
    pub sqs: aws_sdk_sqs::Client,
    /// The shared configuration root sessions are derived from.
    pub sdk_config: SdkConfig,
    /// Where the sessions opened with these clients are remembered, so that their CloudTrail
    /// events are not taken for root activity (shared with the events consumer; see
    /// [`AwsClients::remembering`]).
    pub own_sessions: OwnSessions,
}

/// The HTTPS client every SDK client shares (the SDK's default: rustls with aws-lc, proxies from
/// the environment). Left to the SDK, each client built from the configuration, one per audited
/// account included, would get a connector of its own: a new TLS configuration (the system's
/// root certificates parsed again) and a new connection pool, for every account.
fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Organizations and IAM are global services served from us-east-1 in the `aws` partition.
const DEFAULT_GLOBAL_REGION: &str = "us-east-1";

impl AwsClients {
    /// Clients with the exporter's own credentials, or, with `role`, with the credentials of
    /// that role (assumed with the exporter's own, renewed before they expire).
    pub async fn new(
        config: &Config,
        endpoint: Option<&EndpointOverride>,
        role: Option<&OrganizationRole>,
    ) -> AwsClients {
        // Retries are the exporter's own (`call::Caller`): the SDK's standard mode keeps a
        // process-wide retry quota that sustained throttling drains, after which a long-running
        // exporter would stop retrying at all.
        let retry = RetryConfig::disabled();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(config.account_timeout.min(Duration::from_secs(30)))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts)
            .http_client(shared_http_client());
        if let Some(e) = endpoint {
            loader = loader
                .endpoint_url(&e.url)
                .region(Region::new(DEFAULT_GLOBAL_REGION))
                .credentials_provider(Credentials::new(
                    &e.access_key_id,
                    &e.secret_access_key,
                    None,
                    None,
                    "demo",
                ));
        }
        let mut sdk_config = loader.load().await;
        if sdk_config.region().is_none() {
            sdk_config = sdk_config
                .into_builder()
                .region(Region::new(DEFAULT_GLOBAL_REGION))
                .build();
        }
        if let Some(role) = role {
            // AssumeRole through the regional STS endpoint the audit uses; the SDK's identity
            // cache renews the session before it expires.
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
                .session_name(&role.session_name)
                .region(Region::new(config.sts_region.clone()))
                .configure(&sdk_config);
            if let Some(id) = &role.external_id {
                provider = provider.external_id(id);
            }
            let provider = provider.build().await;
            sdk_config = sdk_config
                .into_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                .build();
        }
        let sts = aws_sdk_sts::config::Builder::from(&sdk_config)
            .region(Region::new(config.sts_region.clone()))
            .build();
        AwsClients {
            organizations: aws_sdk_organizations::Client::new(&sdk_config),
            sts: aws_sdk_sts::Client::from_conf(sts),
            iam: aws_sdk_iam::Client::new(&sdk_config),
            sqs: aws_sdk_sqs::Client::new(&sdk_config),
            sdk_config,
            own_sessions: OwnSessions::none(),
        }
    }

    /// These clients, remembering the sessions they open in `own` (the process's one store).
    pub fn remembering(mut self, own: &OwnSessions) -> AwsClients {
        self.own_sessions = own.clone();
        self
    }

    /// An SQS client for this queue: in the queue's region (from its URL,
    /// `https://sqs.REGION.amazonaws.com/...`), or the configured one.
    pub fn sqs_for_queue(&self, queue_url: &str) -> aws_sdk_sqs::Client {
        let host = queue_url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("");
        let region = host
            .strip_prefix("sqs.")
            .and_then(|r| r.split('.').next())
            .filter(|r| r.contains('-'));
        match region {
            Some(r) => aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&self.sdk_config)
                    .region(Region::new(r.to_string()))
                    .build(),
            ),
            None => self.sqs.clone(),
        }
    }

    /// An IAM client that signs with temporary root-session credentials. The credentials live
    /// inside the client only; drop it when the audit is done.
    pub fn iam_with(&self, credentials: Credentials) -> aws_sdk_iam::Client {
        let conf = aws_sdk_iam::config::Builder::from(&self.sdk_config)
            .credentials_provider(credentials)
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_client_shares_the_one_http_client() {
        let config = crate::config::RawConfig::default().validate().unwrap();
        let endpoint = EndpointOverride {
            url: "http://127.0.0.1:9".into(),
            access_key_id: "AKIDTESTEXPORTER0001".into(),
            secret_access_key: "test".into(),
        };
        let clients = AwsClients::new(&config, Some(&endpoint), None).await;
        // The SDK puts a client of its own into each service client whose configuration has
        // none; a configured one is what every client built from it uses.
        assert!(clients.sdk_config.http_client().is_some());
        let per_account = clients.iam_with(Credentials::new(
            "ASIATEST",
            "secret",
            Some("token".into()),
            None,
            "test",
        ));
        assert!(per_account.config().http_client().is_some());
        assert!(clients.organizations.config().http_client().is_some());
    }
}
