//! AWS call failures, reduced to a bounded [`FailureReason`] for labels plus a message for logs.

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::model::FailureReason;

/// One failed AWS call. `message` comes from AWS or the SDK and never holds credentials; it
/// goes to logs and reports, never into a label.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service}:{operation} failed ({reason}): {message}")]
pub struct AwsCallError {
    pub service: &'static str,
    pub operation: &'static str,
    pub reason: FailureReason,
    pub message: String,
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

/// Classify any SDK error.
pub fn classify<E>(
    service: &'static str,
    operation: &'static str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
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
        service,
        operation,
        reason,
        message,
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
}
