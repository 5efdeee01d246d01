//! The one place an AWS call is made from: [`Caller::call`] awaits the SDK future, classifies a
//! failure into a bounded [`FailureReason`] and records the call in [`Telemetry`]. Operations are
//! the [`Operation`] enum, never strings typed at the call site.

use std::future::Future;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::model::FailureReason;
use crate::telemetry::Telemetry;

/// Every AWS API operation the exporter calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    DescribeOrganization,
    ListAccounts,
    ListOrganizationsFeatures,
    AssumeRoot,
    GetAccountSummary,
    ListAccessKeys,
    GetAccessKeyLastUsed,
    ListMfaDevices,
    GetLoginProfile,
    GetUser,
    ListSigningCertificates,
}

impl Operation {
    pub const ALL: [Operation; 11] = [
        Self::DescribeOrganization,
        Self::ListAccounts,
        Self::ListOrganizationsFeatures,
        Self::AssumeRoot,
        Self::GetAccountSummary,
        Self::ListAccessKeys,
        Self::GetAccessKeyLastUsed,
        Self::ListMfaDevices,
        Self::GetLoginProfile,
        Self::GetUser,
        Self::ListSigningCertificates,
    ];

    /// The service's endpoint prefix, as in the SigV4 credential scope.
    pub fn service(self) -> &'static str {
        match self {
            Self::DescribeOrganization | Self::ListAccounts => "organizations",
            Self::AssumeRoot => "sts",
            Self::ListOrganizationsFeatures
            | Self::GetAccountSummary
            | Self::ListAccessKeys
            | Self::GetAccessKeyLastUsed
            | Self::ListMfaDevices
            | Self::GetLoginProfile
            | Self::GetUser
            | Self::ListSigningCertificates => "iam",
        }
    }

    /// The operation's name in AWS's API reference.
    pub fn name(self) -> &'static str {
        match self {
            Self::DescribeOrganization => "DescribeOrganization",
            Self::ListAccounts => "ListAccounts",
            Self::ListOrganizationsFeatures => "ListOrganizationsFeatures",
            Self::AssumeRoot => "AssumeRoot",
            Self::GetAccountSummary => "GetAccountSummary",
            Self::ListAccessKeys => "ListAccessKeys",
            Self::GetAccessKeyLastUsed => "GetAccessKeyLastUsed",
            Self::ListMfaDevices => "ListMFADevices",
            Self::GetLoginProfile => "GetLoginProfile",
            Self::GetUser => "GetUser",
            Self::ListSigningCertificates => "ListSigningCertificates",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.service(), self.name())
    }
}

/// One failed AWS call. `message` comes from AWS or the SDK and never holds credentials; it
/// goes to logs and reports, never into a label.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed ({reason}): {message}")]
pub struct AwsCallError {
    pub operation: Operation,
    pub reason: FailureReason,
    pub message: String,
}

impl AwsCallError {
    /// An answer that arrived but cannot be used (a missing field, a value out of range).
    pub fn malformed(operation: Operation, message: impl Into<String>) -> Self {
        AwsCallError {
            operation,
            reason: FailureReason::Other,
            message: message.into(),
        }
    }
}

/// Error codes AWS uses for throttling across services and protocols.
const THROTTLING_CODES: [&str; 8] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
];

const ACCESS_DENIED_CODES: [&str; 6] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AWSOrganizationsNotInUseException",
    "AccountNotManagementOrDelegatedAdministratorException",
];

/// Map an AWS error code (and HTTP status, when known) to a reason.
pub fn reason_for_code(code: Option<&str>, status: Option<u16>) -> FailureReason {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => FailureReason::Throttled,
        Some(c) if ACCESS_DENIED_CODES.contains(&c) => FailureReason::AccessDenied,
        Some("RequestTimeout" | "RequestTimeoutException") => FailureReason::Timeout,
        _ if status == Some(429) => FailureReason::Throttled,
        _ => FailureReason::Other,
    }
}

/// Classify any SDK error of `operation`.
pub fn classify<E>(operation: Operation, err: &SdkError<E, HttpResponse>) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let reason = match err {
        SdkError::TimeoutError(_) => FailureReason::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => FailureReason::Timeout,
        SdkError::DispatchFailure(_) => FailureReason::Network,
        SdkError::ServiceError(s) => reason_for_code(s.err().code(), Some(s.raw().status().as_u16())),
        _ => FailureReason::Other,
    };
    let message = match err {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("unknown error code"),
            s.err().message().unwrap_or("no message")
        ),
        other => DisplayErrorContext(other).to_string(),
    };
    AwsCallError {
        operation,
        reason,
        message,
    }
}

/// Performs, classifies and records AWS calls. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    telemetry: Telemetry,
}

impl Caller {
    pub fn new(telemetry: Telemetry) -> Self {
        Caller { telemetry }
    }

    /// Await one SDK call of `operation`.
    pub async fn call<T, E>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, AwsCallError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.check(operation, call.await)
    }

    /// Classify and record a result already in hand (one page of a paginator).
    pub fn check<T, E>(
        &self,
        operation: Operation,
        result: Result<T, SdkError<E, HttpResponse>>,
    ) -> Result<T, AwsCallError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let result = result.map_err(|e| classify(operation, &e));
        self.telemetry
            .record_call(operation, result.as_ref().err().map(|e| e.reason));
        result
    }

    /// Like [`Caller::call`] for an operation some of whose service errors are an answer rather
    /// than a failure (`GetLoginProfile`'s `NoSuchEntity`: there is no password): `answer` picks
    /// them out, and they come back as `Ok(None)`.
    pub async fn call_or_absent<T, E>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        answer: impl FnOnce(&E) -> bool,
    ) -> Result<Option<T>, AwsCallError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match call.await {
            Err(e) if e.as_service_error().is_some_and(answer) => {
                self.telemetry.record_call(operation, None);
                Ok(None)
            }
            other => self.check(operation, other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(reason_for_code(Some("Throttling"), Some(400)), FailureReason::Throttled);
        assert_eq!(
            reason_for_code(Some("TooManyRequestsException"), Some(400)),
            FailureReason::Throttled
        );
        assert_eq!(
            reason_for_code(Some("AccessDenied"), Some(403)),
            FailureReason::AccessDenied
        );
        assert_eq!(
            reason_for_code(Some("AccessDeniedException"), Some(400)),
            FailureReason::AccessDenied
        );
        assert_eq!(reason_for_code(Some("ExpiredToken"), Some(403)), FailureReason::Other);
        assert_eq!(reason_for_code(None, Some(429)), FailureReason::Throttled);
        assert_eq!(
            reason_for_code(Some("ServiceUnavailable"), Some(503)),
            FailureReason::Other
        );
    }

    #[test]
    fn operations_name_their_service_and_aws_name() {
        assert_eq!(Operation::ListMfaDevices.to_string(), "iam:ListMFADevices");
        assert_eq!(Operation::AssumeRoot.to_string(), "sts:AssumeRoot");
        let names: std::collections::BTreeSet<_> = Operation::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Operation::ALL.len(), "names are distinct");
    }
}
